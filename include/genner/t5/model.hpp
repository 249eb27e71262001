// genner/t5/model.hpp: T5 for conditional generation — the shared embedding,
// encoder and decoder stacks, tied (scaled) or separate LM head, and the loss.
// Numerically Hugging Face's T5ForConditionalGeneration; parameter names equal its.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <cmath>

#include <genner/core/error.hpp>
#include <genner/t5/config.hpp>
#include <genner/t5/stack.hpp>
#include <genner/t5/structure.hpp>

namespace genner::t5 {

/// Label value ignored by the loss, as in Hugging Face.
inline constexpr int64_t ignore_index = -100;

/// Checks that `ids` are integer token ids in [0, vocab_size), as an embedding lookup needs;
/// `what` names them in the error.
inline void check_token_ids(const torch::Tensor& ids, int64_t vocab_size, const char* what) {
  GENNER_CHECK(ids.defined() && !ids.is_floating_point() && !ids.is_complex() && ids.scalar_type() != torch::kBool,
               what, ": expected an integer tensor, found ", ids.defined() ? c10::toString(ids.scalar_type()) : "none");
  if (ids.numel() == 0) return;
  const auto [lo, hi] = torch::aminmax(ids);
  const auto min = lo.item<int64_t>(), max = hi.item<int64_t>();
  GENNER_CHECK(min >= 0 && max < vocab_size, what, ": expected ids in [0, ", vocab_size, ") (the vocabulary), found ",
               "ids from ", min, " to ", max);
}

class T5Impl : public torch::nn::Module {
 public:
  explicit T5Impl(T5Config config, T5Structure structure = {})
      : config_(std::move(config)), structure_(std::move(structure)) {
    shared = register_module("shared", torch::nn::Embedding(config_.vocab_size, config_.d_model));
    if (initialising()) torch::nn::init::normal_(shared->weight, 0.0, 1.0);
    shared->to(structure_.embedding_device);
    encoder = register_module("encoder", T5Stack(config_, false, structure_.encoder));
    decoder = register_module("decoder", T5Stack(config_, true, structure_.decoder));
    if (!config_.tie_word_embeddings && structure_.lm_head) {
      lm_head = register_module(
          "lm_head", torch::nn::Linear(torch::nn::LinearOptions(config_.d_model, config_.vocab_size).bias(false)));
      lm_head->to(decoder->output_device());
    } else if (!config_.tie_word_embeddings) {
      // Built without its head: the head's initial values are still drawn and dropped, so every
      // module built after it starts from the same random values as with it (seeded runs reproduce).
      (void)torch::nn::Linear(torch::nn::LinearOptions(config_.d_model, config_.vocab_size).bias(false));
    }
  }

  const T5Config& config() const { return config_; }
  const T5Structure& structure() const { return structure_; }

  /// Looks ids up in the shared table (on its device); the result stays there.
  torch::Tensor embed(const torch::Tensor& ids) {
    check_token_ids(ids, config_.vocab_size, "T5: token ids");
    return shared(ids.to(shared->weight.device()));
  }

  /// Runs the encoder on ids [B, S] with mask [B, S] (1 real, 0 padding).
  StackOutput encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                     bool keep_block_outputs = false) {
    return encoder->forward(embed(input_ids), attention_mask, torch::Tensor(), torch::Tensor(), nullptr,
                            keep_block_outputs);
  }

  /// Runs the decoder on ids [B, T]: the whole sequence, or (with a cache) the next steps.
  StackOutput decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                     const torch::Tensor& encoder_mask = {}, DecoderCache* cache = nullptr,
                     bool keep_block_outputs = false, const torch::Tensor& decoder_mask = {}) {
    return decoder->forward(embed(decoder_input_ids), decoder_mask, encoder_hidden, encoder_mask, cache,
                            keep_block_outputs);
  }

  /// LM logits [B, T, V] from decoder hidden states (tied heads rescale by d_model^-0.5).
  torch::Tensor lm_logits(const torch::Tensor& decoder_hidden) {
    if (config_.tie_word_embeddings) {
      auto h = decoder_hidden.to(shared->weight.device()) * std::pow(static_cast<double>(config_.d_model), -0.5);
      return at::linear(h, shared->weight);
    }
    GENNER_CHECK(!lm_head.is_empty(), "T5: this untied backbone was built without its LM head (T5Structure::lm_head ",
                 "is false, as NER models build it), so it computes no LM logits");
    return lm_head(decoder_hidden.to(lm_head->weight.device()));
  }

  /// Labels shifted right behind the decoder start token; ignored labels become padding.
  torch::Tensor shift_right(const torch::Tensor& labels) const {
    auto out = torch::full_like(labels, config_.pad_token_id);
    out.index_put_({torch::indexing::Slice(), 0}, config_.decoder_start_token_id);
    out.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1)},
                   labels.index({torch::indexing::Slice(), torch::indexing::Slice(torch::indexing::None, -1)}));
    return out.masked_fill(out == ignore_index, config_.pad_token_id);
  }

  struct Output {
    torch::Tensor logits, loss;
    StackOutput encoder, decoder;
  };

  /// Full forward pass with teacher forcing; loss is the mean cross-entropy over labels != -100.
  Output forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, const torch::Tensor& labels,
                 const torch::Tensor& decoder_input_ids = {}, bool keep_block_outputs = false) {
    Output out;
    out.encoder = encode(input_ids, attention_mask, keep_block_outputs);
    auto dec_in = decoder_input_ids.defined() ? decoder_input_ids : shift_right(labels);
    out.decoder = decode(dec_in, out.encoder.last_hidden_state, attention_mask, nullptr, keep_block_outputs);
    out.logits = lm_logits(out.decoder.last_hidden_state);
    if (labels.defined()) out.loss = loss(out.logits, labels);
    return out;
  }

  static torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& labels) {
    return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat),
                                  labels.to(logits.device()).reshape({-1}), /*weight=*/{}, at::Reduction::Mean,
                                  ignore_index);
  }

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  torch::nn::Linear lm_head{nullptr};

 private:
  T5Config config_;
  T5Structure structure_;
};
TORCH_MODULE(T5);

}  // namespace genner::t5
