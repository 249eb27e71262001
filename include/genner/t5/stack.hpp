// genner/t5/stack.hpp: a T5 encoder or decoder stack — blocks, final norm,
// masks and the shared position bias — placed block by block on the devices
// its structure names; activations move only where consecutive blocks differ.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <limits>
#include <vector>

#include <genner/t5/layers.hpp>
#include <genner/t5/recompute.hpp>

namespace genner::t5 {

/// What a stack returns: the normed last hidden state, and optionally every block's
/// output (before the final norm) and block 0's position bias (without masks).
struct StackOutput {
  torch::Tensor last_hidden_state;
  std::vector<torch::Tensor> block_outputs;
  torch::Tensor position_bias;
};

/// The most negative finite value of a floating type, which T5 adds at masked positions.
inline double lowest_value(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    case torch::kBFloat16: return -3.3895313892515355e38;
    case torch::kHalf: return -65504.0;
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

/// Turns a 1/0 keep-mask (any broadcastable shape) into an additive one: 0 kept, lowest masked.
inline torch::Tensor additive_mask(const torch::Tensor& keep, torch::ScalarType dtype) {
  return (1.0 - keep.to(dtype)) * lowest_value(dtype);
}

class T5StackImpl : public torch::nn::Module {
 public:
  T5StackImpl(const T5Config& c, bool is_decoder, const StackStructure& s) : config_(c), is_decoder_(is_decoder) {
    const int64_t n = is_decoder ? c.num_decoder_layers : c.num_layers;
    block = register_module("block", torch::nn::ModuleList());
    for (int64_t i = 0; i < n; ++i) {
      auto bs = s.block(static_cast<size_t>(i));
      auto b = T5Block(c, is_decoder, i == 0, bs);
      b->to(bs.device);
      block->push_back(b);
      blocks_.push_back(b);
      devices_.push_back(bs.device);
    }
    final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
    final_layer_norm->to(devices_.back());
  }

  int64_t size() const { return static_cast<int64_t>(blocks_.size()); }
  const std::vector<torch::Device>& devices() const { return devices_; }
  torch::Device input_device() const { return devices_.front(); }
  torch::Device output_device() const { return devices_.back(); }
  T5Block block_at(int64_t i) const { return blocks_.at(static_cast<size_t>(i)); }
  T5Attention bias_owner() const { return blocks_.front()->self_attention()->attention; }

  /// Activation checkpointing (off by default): while training with gradients on, each block keeps
  /// only its inputs for backward and runs again there (genner/t5/recompute.hpp).
  void set_checkpointing(bool on) { checkpointing_ = on; }
  bool checkpointing() const { return checkpointing_; }

  /// embeds [B, L, d]; mask [B, L] 1/0 (undefined: all ones). Decoder only: encoder_hidden
  /// [B, S, d], encoder_mask [B, S]; `cache` (optional) makes the call incremental.
  /// The additive mask of self-attention for L new positions after `past` cached ones: padding
  /// (`mask` [B, past + L] 1/0, undefined: none) and, in the decoder, causality; in `like`'s dtype
  /// and on its device, [B, 1, 1, K] or [B, 1, L, K].
  torch::Tensor self_attention_mask(const torch::Tensor& mask, int64_t B, int64_t L, int64_t past,
                                    const torch::Tensor& like) const {
    const int64_t K = past + L;
    torch::Tensor mask01;
    if (mask.defined()) {
      mask01 = mask.to(like.device());
    } else {
      mask01 = torch::ones({B, K}, torch::TensorOptions().dtype(like.scalar_type()).device(like.device()));
    }
    torch::Tensor keep = mask01.to(like.scalar_type()).unsqueeze(1).unsqueeze(1);  // [B,1,1,K]
    if (is_decoder_ && L > 1) {
      auto causal = torch::ones({L, K}, keep.options()).tril(past).unsqueeze(0).unsqueeze(0);
      keep = keep * causal;  // [B,1,L,K]
    }
    return additive_mask(keep, like.scalar_type());
  }

  StackOutput forward(torch::Tensor embeds, const torch::Tensor& mask, const torch::Tensor& encoder_hidden = {},
                      const torch::Tensor& encoder_mask = {}, DecoderCache* cache = nullptr,
                      bool keep_block_outputs = false) {
    const int64_t past = cache ? cache->length() : 0;
    check_inputs(embeds, mask, encoder_hidden, encoder_mask, past);
    const int64_t B = embeds.size(0), L = embeds.size(1);
    const int64_t K = past + L;
    if (cache) {
      cache->self_attention.resize(blocks_.size());
      cache->cross_attention.resize(blocks_.size());
    }
    torch::Device device = input_device();
    auto hidden = embeds.to(device);
    hidden = core::dropout(hidden, config_.dropout_rate, is_training());

    // Position bias of block 0, then masks, combined once and moved with the activations.
    auto position_bias = bias_owner()->compute_bias(L, K).to(device);
    auto self_bias = position_bias + self_attention_mask(mask, B, L, past, hidden);
    torch::Tensor enc_hidden = encoder_hidden, cross_bias;
    if (is_decoder_) {
      auto em =
          encoder_mask.defined() ? encoder_mask : torch::ones({B, encoder_hidden.size(1)}, encoder_hidden.options());
      cross_bias = additive_mask(em.to(device).unsqueeze(1).unsqueeze(1), hidden.scalar_type());
      enc_hidden = enc_hidden.to(device);
    }

    StackOutput out;
    const bool recompute = checkpointing_ && !cache && is_training() && torch::GradMode::is_enabled();
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (devices_[i] != device) {  // a stage boundary: move the activations, never the weights
        device = devices_[i];
        hidden = hidden.to(device);
        self_bias = self_bias.to(device);
        if (is_decoder_) {
          enc_hidden = enc_hidden.to(device);
          cross_bias = cross_bias.to(device);
        }
      }
      if (recompute)
        hidden = checkpointed_block(*blocks_[i], hidden, self_bias, enc_hidden, cross_bias);
      else
        hidden = blocks_[i]->forward(hidden, self_bias, enc_hidden, cross_bias,
                                     cache ? &cache->self_attention[i] : nullptr,
                                     cache ? &cache->cross_attention[i] : nullptr);
      if (keep_block_outputs) out.block_outputs.push_back(hidden);
    }
    hidden = final_layer_norm(hidden);
    out.last_hidden_state = core::dropout(hidden, config_.dropout_rate, is_training());
    out.position_bias = position_bias;
    return out;
  }

  torch::nn::ModuleList block{nullptr};
  T5LayerNorm final_layer_norm{nullptr};

 private:
  /// The shapes forward() needs, checked before any tensor reaches a kernel.
  void check_inputs(const torch::Tensor& embeds, const torch::Tensor& mask, const torch::Tensor& encoder_hidden,
                    const torch::Tensor& encoder_mask, int64_t past) const {
    const char* stack = is_decoder_ ? "T5 decoder" : "T5 encoder";
    const int64_t d = config_.d_model;
    GENNER_CHECK(embeds.defined() && embeds.dim() == 3 && embeds.size(2) == d, stack, ": expected input embeddings ",
                 "[batch, length, ", d, "], found ", embeds.defined() ? embeds.sizes() : c10::IntArrayRef{});
    const int64_t K = past + embeds.size(1);
    if (mask.defined())
      GENNER_CHECK(mask.dim() == 2 && mask.size(1) == K, stack, ": expected an attention mask [batch, ", K, "] (", past,
                   " cached + ", embeds.size(1), " new positions), found ", mask.sizes());
    if (!is_decoder_) return;
    GENNER_CHECK(encoder_hidden.defined(), stack, ": expected encoder hidden states [batch, source length, ", d,
                 "], found none");
    GENNER_CHECK(encoder_hidden.dim() == 3 && encoder_hidden.size(2) == d, stack,
                 ": expected encoder hidden states [batch, source length, ", d, "], found ", encoder_hidden.sizes());
    if (encoder_mask.defined())
      GENNER_CHECK(encoder_mask.dim() == 2 && encoder_mask.size(1) == encoder_hidden.size(1), stack,
                   ": expected an encoder mask [batch, ", encoder_hidden.size(1),
                   "] (one entry per source position), found ", encoder_mask.sizes());
  }

  T5Config config_;
  bool is_decoder_;
  bool checkpointing_ = false;
  std::vector<T5Block> blocks_;
  std::vector<torch::Device> devices_;
};
TORCH_MODULE(T5Stack);

}  // namespace genner::t5
