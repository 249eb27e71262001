// genner/compat/seed_greedy.hpp: greedy decoding exactly as the original system ran it for T5
// (docs/METHOD.md, departures: behaviour 11). Step 0 feeds the start token (`<pad>`); each later
// step feeds the index chosen before (an end index as `</s>`); rows that have ended keep decoding
// and are padded with 0; each row's limit is int(source length · max_len_a) + max_len indices
// counting the start token (soft-prompt positions not counted), and the index that reaches it is
// forced to the end index.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/model/encoded_source.hpp>
#include <genner/t5/layers.hpp>

namespace genner::compat {

struct SeedGreedyResult {
  torch::Tensor pred;         ///< [B, steps] generated indices (no start token), ended rows padded with 0
  torch::Tensor step_scores;  ///< [steps, B, 1+L+S] scores before each argmax
  torch::Tensor step_tokens;  ///< [steps, B] index fed at each step (step 0: the start token 0)
};

/// Greedy decoding of `model` (a genner NER model; SeedCompat for the original's numerics) on
/// src_ids / src_mask [B, S].
template <class Model>
SeedGreedyResult seed_greedy(Model& model, const torch::Tensor& src_ids, const torch::Tensor& src_mask,
                             int64_t max_len = 10, double max_len_a = 0.6) {
  GENNER_CHECK(src_ids.dim() == 2 && src_mask.sizes() == src_ids.sizes(),
               "seed_greedy: expected src_ids and src_mask [B, S] of equal shape, found ", src_ids.sizes(), " and ",
               src_mask.sizes());
  torch::NoGradGuard no_grad;
  const int64_t B = src_ids.size(0);
  model::EncodedSource source = model.encode(src_ids, src_mask);
  t5::DecoderCache cache;
  auto lengths = (src_mask.to(torch::kLong).sum(1).to(torch::kFloat) * max_len_a).to(torch::kLong) + max_len;
  const int64_t real_max = lengths.max().item<int64_t>();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(src_ids.device());
  std::vector<torch::Tensor> scores, fed, out;
  // Step 0: the start token.
  auto tokens = torch::zeros({B, 1}, long_opts);
  torch::Tensor logits = model.decode_step(tokens, source, cache);
  if (logits.dim() == 3) logits = logits.squeeze(1);
  scores.push_back(logits);
  fed.push_back(torch::zeros({B}, long_opts));
  auto next = logits.argmax(-1).to(torch::kLong);
  auto dones = next.eq(0);
  out.push_back(next);
  lengths = lengths.to(next.device());
  for (int64_t cur = 2; cur < real_max; ++cur) {
    fed.push_back(next);
    logits = model.decode_step(model.index_to_token(next.view({B, 1}), source.src_ids), source, cache);
    if (logits.dim() == 3) logits = logits.squeeze(1);
    scores.push_back(logits);
    next = logits.argmax(-1).to(torch::kLong);
    next = next.masked_fill(lengths.eq(cur + 1), 0);  // the limit forces the end index
    next = next.masked_fill(dones, 0);                // ended rows are padded
    out.push_back(next);
    dones = dones.logical_or(next.eq(0));
    if (dones.all().item<bool>()) break;
  }
  return {torch::stack(out, 1), torch::stack(scores, 0), torch::stack(fed, 0)};
}

}  // namespace genner::compat
