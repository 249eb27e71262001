// genner/compat/seed_label_init.hpp: the original system's label initialisation reproduced
// exactly, defects included (docs/METHOD.md §6, behaviours 3, 4 and 13). The original visits its
// tokenizer's list of unsplittable label tokens; for each it takes the row of the first piece of the
// label's name as a *view* of the shared embedding table, adds the rows of the other pieces into it
// and divides by the piece count in place — so that vocabulary row is overwritten, and a later
// label whose name starts with the same piece averages the overwritten row — then writes
// (x - mean) / std * 0.4356 - 0.0094 (unbiased std over d_model) into the label's row. The end
// index's scoring row becomes E[</s>] standardised the same way, after every label.
// genner's own NerModelCore::init_label_embeddings never writes a vocabulary row.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/text/tokenizer.hpp>

namespace genner::compat {

/// One visit of the original's label-initialisation loop: a label token and the pieces of its name.
struct SeedLabelPass {
  int64_t token = 0;
  std::vector<int64_t> pieces;
};

/// The order in which the original visits the label tokens: its tokenizer's `unique_no_split_tokens`.
/// Adding several tokens at once leaves that list as their sorted set (byte order); adding a single
/// one inserts it by bisection into a list the data pipe had already appended it to, unsorted, so it
/// is listed — and visited — twice (CADEC's `<<adr>>`).
[[nodiscard]] inline std::vector<std::string> seed_label_init_order(std::vector<std::string> label_tokens) {
  GENNER_CHECK(!label_tokens.empty(), "seed_label_init_order: expected at least one label token, found none");
  if (label_tokens.size() == 1) return {label_tokens[0], label_tokens[0]};
  std::sort(label_tokens.begin(), label_tokens.end());
  label_tokens.erase(std::unique(label_tokens.begin(), label_tokens.end()), label_tokens.end());
  return label_tokens;
}

/// The original's passes for the label tokens `label_ids` (each `<<name>>`): in seed_label_init_order,
/// each with the pieces of `name` tokenized as one word.
[[nodiscard]] inline std::vector<SeedLabelPass> seed_label_passes(text::Tokenizer& tokenizer,
                                                                  const std::vector<int64_t>& label_ids) {
  std::vector<std::string> tokens;
  for (const auto id : label_ids) {
    auto token = tokenizer.id_to_token(id);
    GENNER_CHECK(token.size() > 4 && token.rfind("<<", 0) == 0 && token.ends_with(">>"), "seed_label_passes: token ",
                 id, " is '", token, "', expected a label token '<<name>>'");
    tokens.push_back(std::move(token));
  }
  std::vector<SeedLabelPass> out;
  for (const auto& token : seed_label_init_order(tokens)) {
    const auto id = tokenizer.token_to_id(token);
    GENNER_CHECK(id.has_value(), "seed_label_passes: the tokenizer has no id for '", token, "'");
    const auto& pieces = tokenizer.word_pieces(token.substr(2, token.size() - 4));
    out.push_back({*id, std::vector<int64_t>(pieces.begin(), pieces.end())});
  }
  return out;
}

/// The original's standardisation of a d_model vector: (x - mean) / std * 0.4356 - 0.0094, unbiased std.
[[nodiscard]] inline torch::Tensor seed_normalize(const torch::Tensor& x) {
  return (x - x.mean()) / x.std() * 0.4356 - 0.0094;
}

/// Runs the original's label initialisation on a SeedCompat model: label rows, the end-index row,
/// and — the defect — the vocabulary rows of the names' first pieces, which it overwrites.
/// Returns the vocabulary rows it changed (sorted).
inline std::vector<int64_t> seed_init_label_embeddings(model::NerModelCore& model,
                                                       const std::vector<SeedLabelPass>& passes) {
  GENNER_CHECK(model.spec().seed_compat,
               "seed_init_label_embeddings: the original's label initialisation overwrites vocabulary rows and needs "
               "the end-index row of a SeedCompat model; genner's own NerModelCore::init_label_embeddings is the one "
               "for other experiments (it never changes a vocabulary row)");
  const int64_t lo = model.label_token_offset(), L = model.num_types();
  std::vector<bool> seen(static_cast<size_t>(L), false);
  std::vector<int64_t> changed;
  torch::NoGradGuard no_grad;
  auto table = model.t5->shared->weight;
  for (const auto& pass : passes) {
    GENNER_CHECK(pass.token >= lo && pass.token < lo + L, "seed_init_label_embeddings: label token ", pass.token,
                 " is not one of the model's label tokens ", lo, "..", lo + L - 1);
    GENNER_CHECK(!pass.pieces.empty(), "seed_init_label_embeddings: label token ", pass.token, " has an empty name");
    for (const auto p : pass.pieces)
      GENNER_CHECK(p >= 0 && p < lo, "seed_init_label_embeddings: piece ", p, " of label token ", pass.token,
                   " is not a vocabulary row (expected [0, ", lo, "))");
    auto row = table[pass.pieces[0]];  // a view: the in-place sum below overwrites this vocabulary row
    for (size_t i = 1; i < pass.pieces.size(); ++i) row.add_(table[pass.pieces[i]]);
    row.div_(static_cast<double>(pass.pieces.size()));
    if (pass.pieces.size() > 1) changed.push_back(pass.pieces[0]);
    model.label_embeddings[pass.token - lo].copy_(seed_normalize(row).to(model.label_embeddings.device()));
    seen[static_cast<size_t>(pass.token - lo)] = true;
  }
  for (int64_t k = 0; k < L; ++k)
    GENNER_CHECK(seen[static_cast<size_t>(k)], "seed_init_label_embeddings: no pass initialises label token ", lo + k);
  model.eos_embedding[0].copy_(
      seed_normalize(table[model.config().eos_token_id]).to(model.eos_embedding.device()));
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  return changed;
}

}  // namespace genner::compat
