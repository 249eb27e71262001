// genner/model/encoded_source.hpp: what a NER model's encoder hands to its
// decoder and to the generator — the contract between genner/model and
// genner/generate.
#pragma once

#include <torch/types.h>

namespace genner::model {

/// The encoded source of a batch, with any soft prompt already stripped.
struct EncodedSource {
  torch::Tensor hidden;    ///< [B, S, d] encoder output the decoder cross-attends to (prompt stripped)
  torch::Tensor mask;      ///< [B, S] 1 real, 0 padding, matching `hidden`
  torch::Tensor src_ids;   ///< [B, S] source token ids, `</s>` last on each row, padding 0
  torch::Tensor src_mask;  ///< [B, S] 1 real, 0 padding
  torch::Tensor features;  ///< [B, S, d] pointer features (encoder MLP / avg_feature applied)
  torch::Tensor embeds;    ///< [B, S, d] source token embeddings (avg_score's second term); else undefined

  int64_t batch() const { return src_ids.size(0); }

  /// Rows picked by `index` (beam expansion and reordering), on each tensor's own device.
  EncodedSource select(const torch::Tensor& index) const {
    auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, index.to(t.device())) : t; };
    return {pick(hidden), pick(mask), pick(src_ids), pick(src_mask), pick(features), pick(embeds)};
  }
};

}  // namespace genner::model
