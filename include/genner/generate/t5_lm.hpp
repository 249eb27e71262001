// genner/generate/t5_lm.hpp: T5LmStepModel, the StepModel for plain T5 language-model
// generation (indices are token ids), and generate_lm(), Hugging Face's generate() in genner.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/generate/generator.hpp>
#include <genner/generate/search.hpp>
#include <genner/generate/step_model.hpp>
#include <genner/t5/model.hpp>

namespace genner::generate {

/// Drives a T5's decoder one token at a time. With the cache (the default) each step runs the
/// decoder on the new token only; without it each step re-runs the decoder on the whole prefix
/// (the baseline the benchmark compares against).
class T5LmStepModel {
 public:
  struct State {
    torch::Tensor encoder_hidden;  ///< [N, S, d]
    torch::Tensor encoder_mask;    ///< [N, S]
    t5::DecoderCache cache;        ///< self-attention grows per step; cross-attention computed once
    torch::Tensor tokens;          ///< [N, t] decoder input so far (only without the cache)
    DeferredExpansion expand;      ///< beam expansion waiting for the first step
    bool started = false;
    int64_t rows() const { return encoder_hidden.size(0); }
  };

  explicit T5LmStepModel(t5::T5 model, bool use_cache = true) : model_(std::move(model)), use_cache_(use_cache) {}

  /// Encodes source ids [B, S] with mask [B, S] (1 real, 0 padding).
  State start(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    GENNER_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
                 "T5LmStepModel::start: expected input_ids and attention_mask [B, S] of equal shape, found ",
                 input_ids.sizes(), " and ", attention_mask.sizes(), ".");
    State s;
    s.encoder_hidden = model_->encode(input_ids, attention_mask).last_hidden_state;
    s.encoder_mask = attention_mask.to(s.encoder_hidden.device());
    return s;
  }

  torch::Tensor step(State& s, const torch::Tensor& last) {
    if (s.started || !s.expand.pending()) return step_unexpanded(s, last);
    GENNER_CHECK(!last.defined(), "T5LmStepModel::step: expected no previous tokens at the first step");
    return s.expand.first_step([&] { return step_unexpanded(s, last); },
                               [&](const torch::Tensor& index) {
                                 s.encoder_hidden = s.encoder_hidden.index_select(0, index);
                                 s.encoder_mask = s.encoder_mask.index_select(0, index);
                                 s.cache.reorder(index);
                                 if (s.tokens.defined()) s.tokens = s.tokens.index_select(0, index);
                               });
  }

  void reorder(State& s, const torch::Tensor& index) {
    if (!s.started) return s.expand.compose(index);
    GENNER_CHECK(index.size(0) == s.rows(), "T5LmStepModel::reorder: expected ", s.rows(),
                 " indices after the first step, found ", index.size(0), ".");
    s.cache.reorder(index);
    if (s.tokens.defined()) s.tokens = s.tokens.index_select(0, index.to(s.tokens.device()));
  }

  t5::T5& model() { return model_; }

 private:
  torch::Tensor step_unexpanded(State& s, const torch::Tensor& last) {
    const int64_t N = s.rows();
    const auto device = s.encoder_hidden.device();
    torch::Tensor input = last.defined() ? last.view({N, 1}).to(device)
                                         : torch::full({N, 1}, model_->config().decoder_start_token_id,
                                                       torch::TensorOptions().dtype(torch::kLong).device(device));
    s.started = true;
    torch::Tensor hidden;
    if (use_cache_) {
      hidden = model_->decode(input, s.encoder_hidden, s.encoder_mask, &s.cache).last_hidden_state;
    } else {
      s.tokens = s.tokens.defined() ? torch::cat({s.tokens, input}, 1) : input;
      hidden = model_->decode(s.tokens, s.encoder_hidden, s.encoder_mask).last_hidden_state;
      hidden = hidden.narrow(1, hidden.size(1) - 1, 1);
    }
    return model_->lm_logits(hidden).select(1, 0);
  }

  t5::T5 model_;
  bool use_cache_;
};

static_assert(is_step_model<T5LmStepModel>, "T5LmStepModel must satisfy StepModel (genner/generate/step_model.hpp).");

/// Hugging Face-shaped output of generate_lm: sequences start with the decoder start token.
struct LmOutput {
  torch::Tensor sequences;        ///< [B, 1 + T]
  torch::Tensor sequence_scores;  ///< [B]
  std::vector<torch::Tensor> scores;
};

/// T5 generation as transformers' generate(): eos 1 and pad 0 unless options say otherwise.
inline LmOutput generate_lm(t5::T5 model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                            SearchOptions options, const LogitsChain& chain = {}, bool use_cache = true) {
  T5LmStepModel step_model(model, use_cache);
  auto state = step_model.start(input_ids, attention_mask);
  const auto mask = attention_mask.to(torch::kLong).sum(1).cpu().contiguous();
  std::vector<int64_t> lengths(mask.data_ptr<int64_t>(), mask.data_ptr<int64_t>() + mask.size(0));
  Generator<T5LmStepModel> generator(step_model, std::move(options), chain);
  auto r = generator(state, input_ids.size(0), lengths);
  auto start = torch::full({r.sequences.size(0), 1}, model->config().decoder_start_token_id, torch::kLong);
  return {torch::cat({start, r.sequences}, 1), r.sequence_scores, std::move(r.scores)};
}

}  // namespace genner::generate
