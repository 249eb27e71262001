// genner/t5/layers.hpp: the building blocks of a T5 — RMS layer norm,
// projections (with optional LoRA factors), attention with relative position
// bias and an incremental key/value cache, feed-forward, adapters and blocks.
// Parameter names equal Hugging Face's so checkpoints load by name.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <genner/core/dropout.hpp>
#include <genner/core/matmul.hpp>
#include <genner/core/error.hpp>
#include <genner/core/onednn.hpp>
#include <genner/t5/config.hpp>
#include <genner/t5/structure.hpp>

namespace genner::t5 {

/// How a projection keeps its weight: fp32 (trainable or not), or — frozen only — bf16, or int8
/// with one scale per output row (NerModelCore::store_frozen).
enum class WeightStorage { fp32, bf16, int8 };

/// "fp32", "bf16" or "int8", as the frozen_precision setting spells it.
[[nodiscard]] inline const char* weight_storage_name(WeightStorage s) {
  switch (s) {
    case WeightStorage::fp32: return "fp32";
    case WeightStorage::bf16: return "bf16";
    case WeightStorage::int8: return "int8";
  }
  return "?";
}

namespace detail {
struct Construction {
  bool skip_init = false;
  WeightStorage projections = WeightStorage::fp32;
};
inline Construction& construction() {
  thread_local Construction c;
  return c;
}
}  // namespace detail

/// While alive (on this thread), the backbone weights of genner's T5 modules are created without
/// initialisation — memory a checkpoint about to be loaded fills, never written twice and not
/// resident before it is — and projection weights directly in `projections` storage (frozen,
/// bf16 or int8). Added modules (adapters, LoRA factors) are initialised as always.
class SkipInit {
 public:
  explicit SkipInit(WeightStorage projections = WeightStorage::fp32) : previous_(detail::construction()) {
    detail::construction() = {true, projections};
  }
  ~SkipInit() { detail::construction() = previous_; }
  SkipInit(const SkipInit&) = delete;
  SkipInit& operator=(const SkipInit&) = delete;

 private:
  detail::Construction previous_;
};
inline bool initialising() { return !detail::construction().skip_init; }

/// T5's layer norm: scale only, no mean subtraction, no bias; statistics in fp32.
class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(int64_t d_model, double eps) : eps_(eps) {
    weight = register_parameter("weight", initialising() ? torch::ones({d_model}) : torch::empty({d_model}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);
    auto normed = x * torch::rsqrt(variance + eps_);
    if (weight.scalar_type() == torch::kHalf || weight.scalar_type() == torch::kBFloat16)
      normed = normed.to(weight.scalar_type());
    return weight * normed;
  }
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(T5LayerNorm);

namespace detail {

/// The dtype a product with `x` runs in: autocast's where it is on for x's device, else x's own.
inline torch::ScalarType compute_dtype(const torch::Tensor& x) {
  if (x.is_cpu() && at::autocast::is_cpu_enabled()) return at::autocast::get_autocast_cpu_dtype();
  if (x.is_cuda() && at::autocast::is_enabled()) return at::autocast::get_autocast_gpu_dtype();
  return x.scalar_type();
}

/// `product(x)` for x [..., in] with x's rows padded with zeros to a multiple of 64 when the
/// product runs in bf16 on the CPU on several threads (core::onednn::aligned_rows says why), the
/// padding rows dropped from the result; backward's products see the padded rows too.
template <class Product>
torch::Tensor aligned_product(const torch::Tensor& x, Product product) {
  const int64_t in = x.dim() > 0 ? x.size(-1) : 0;
  const int64_t rows = in > 0 ? x.numel() / in : 0;
  if (!x.is_cpu() || compute_dtype(x) != torch::kBFloat16 || core::onednn::aligned_rows(rows) == rows)
    return product(x);
  const int64_t padded = core::onednn::padded_rows(rows);
  // Padded in bf16 (the cast the product would make), moving half the bytes of an fp32 x.
  auto flat = x.reshape({rows, in}).to(torch::kBFloat16);
  auto y = product(torch::constant_pad_nd(flat, {0, 0, 0, padded - rows})).narrow(0, 0, rows);
  auto sizes = x.sizes().vec();
  sizes.back() = y.size(-1);
  return y.view(sizes);
}

/// W in `dtype` from its stored form: itself (any float dtype) or int8 rows times their scales
/// (`scale` undefined or empty: no scales).
inline torch::Tensor dense_weight(const torch::Tensor& stored, const torch::Tensor& scale, torch::ScalarType dtype) {
  if (!scale.defined() || scale.numel() == 0) return stored.to(dtype);
  return stored.to(dtype) * scale.to(dtype).unsqueeze(1);
}

/// Rows of a stored weight widened at a time in an fp32 product: 2 MiB of fp32, so that a block is
/// widened into the core's cache and multiplied there instead of a whole widened copy going through
/// memory (t5-11b's feed-forward weights are 256 MiB each in fp32; a decoding step reads each once).
inline int64_t widen_block_rows(int64_t in) { return std::max<int64_t>(64, (int64_t{1} << 19) / std::max<int64_t>(in, 1)); }

/// x [rows, in] times the stored W [out, in] transposed (`transpose_w` false: x [rows, out] times W),
/// W widened to `dtype` block by block of widen_block_rows output rows when the product runs in fp32.
inline torch::Tensor stored_product(const torch::Tensor& x, const torch::Tensor& stored, const torch::Tensor& scale,
                                    torch::ScalarType dtype, bool transpose_w) {
  const int64_t out = stored.size(0);
  const int64_t block = widen_block_rows(stored.size(1));
  auto block_scale = [&](int64_t r, int64_t n) {
    return !scale.defined() || scale.numel() == 0 ? scale : scale.narrow(0, r, n);
  };
  if (dtype != torch::kFloat || out <= block) {
    const auto w = dense_weight(stored, scale, dtype);
    return transpose_w ? at::linear(x, w) : at::matmul(x, w);
  }
  const auto rows = x.reshape({-1, x.size(-1)});
  auto sizes = x.sizes().vec();
  torch::Tensor y;
  if (transpose_w) {  // y[:, r:r+n] = x W[r:r+n]^T
    y = at::empty({rows.size(0), out}, rows.options());
    for (int64_t r = 0; r < out; r += block) {
      const int64_t n = std::min(block, out - r);
      auto part = y.narrow(1, r, n);
      at::mm_out(part, rows, dense_weight(stored.narrow(0, r, n), block_scale(r, n), dtype).t());
    }
    sizes.back() = out;
  } else {  // y = sum over blocks x[:, r:r+n] W[r:r+n]
    y = at::zeros({rows.size(0), stored.size(1)}, rows.options());
    for (int64_t r = 0; r < out; r += block) {
      const int64_t n = std::min(block, out - r);
      y.addmm_(rows.narrow(1, r, n), dense_weight(stored.narrow(0, r, n), block_scale(r, n), dtype));
    }
    sizes.back() = stored.size(1);
  }
  return y.view(sizes);
}

/// `x W^T` for a frozen W kept in a storage dtype (bf16, or int8 with per-row scales): W is widened
/// to the compute dtype in forward and again in backward (stored_product: block by block for fp32
/// products), so the graph holds the stored W only — never a widened copy per projection. No
/// gradient flows to W (it is frozen).
struct FrozenLinear : public torch::autograd::Function<FrozenLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& stored, const torch::Tensor& scale) {
    const auto dtype = compute_dtype(x);
    ctx->save_for_backward({stored, scale});
    ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
    ctx->saved_data["input_dtype"] = static_cast<int64_t>(x.scalar_type());
    c10::impl::ExcludeDispatchKeyGuard no_recast(c10::autocast_dispatch_keyset);  // runs in `dtype`, as chosen here
    return stored_product(x.to(dtype), stored, scale, dtype, /*transpose_w=*/true);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["dtype"].toInt());
    const auto input_dtype = static_cast<torch::ScalarType>(ctx->saved_data["input_dtype"].toInt());
    c10::impl::ExcludeDispatchKeyGuard no_recast(c10::autocast_dispatch_keyset);
    auto grad_x = stored_product(grads[0].to(dtype), saved[0], saved[1], dtype, /*transpose_w=*/false).to(input_dtype);
    return {grad_x, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace detail

/// A bias-free linear projection `x W^T`, optionally with LoRA factors
/// (`lora_A` [r, in], `lora_B` [out, r], scaled by alpha / r) that can be merged into W.
class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(int64_t in, int64_t out, int64_t lora_rank = 0, double lora_alpha = 16.0) : in_(in), out_(out) {
    const auto stored = initialising() ? WeightStorage::fp32 : detail::construction().projections;
    if (stored == WeightStorage::fp32) {
      weight = register_parameter("weight", torch::empty({out, in}));
      if (initialising()) torch::nn::init::normal_(weight, 0.0, 1.0 / std::sqrt(static_cast<double>(in)));
    } else {  // a frozen weight about to be loaded, created in its storage form
      const auto dtype = stored == WeightStorage::bf16 ? torch::kBFloat16 : torch::kChar;
      weight = register_parameter("weight", torch::empty({out, in}, dtype), /*requires_grad=*/false);
      if (stored == WeightStorage::int8) weight_scale = torch::empty({out});
      storage_ = stored;
    }
    if (lora_rank > 0) {
      scaling_ = lora_alpha / static_cast<double>(lora_rank);
      lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in, lora_rank).bias(false)));
      lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(lora_rank, out).bias(false)));
      torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));
      torch::nn::init::zeros_(lora_B->weight);  // starts as the identity update, as LoRA does
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = kernel ? kernel(x) : detail::aligned_product(x, [this](const torch::Tensor& rows) {
      return storage_ == WeightStorage::fp32 || (rows.scalar_type() == weight.scalar_type() && !weight_scale.defined())
                 ? at::linear(rows, weight)
                 : detail::FrozenLinear::apply(rows, weight,
                                               weight_scale.defined() ? weight_scale : torch::empty({0}, rows.options()));
    });
    if (lora_A && !merged_) y = y + lora_B(lora_A(x)) * scaling_;
    return y;
  }

  /// Keeps the (frozen) weight in bf16, or in int8 with a symmetric scale per output row; the
  /// product widens it on the fly. A trainable weight is refused: it needs fp32 for AdamW.
  void store_frozen(WeightStorage s) {
    GENNER_CHECK(s == WeightStorage::fp32 || !weight.requires_grad(),
                 "a trainable projection keeps its weight in fp32 (its optimizer updates it)");
    GENNER_CHECK(storage_ == WeightStorage::fp32 || s == storage_, "a projection's stored weight cannot change form");
    if (s == storage_) return;
    torch::NoGradGuard no_grad;
    const auto w = weight.to(torch::kFloat);
    if (s == WeightStorage::bf16) {
      weight.set_data(w.to(torch::kBFloat16));
    } else {
      weight_scale = (w.abs().amax(1) / 127.0).clamp_min(1e-12);
      weight.set_data((w / weight_scale.unsqueeze(1)).round().clamp(-127, 127).to(torch::kChar));
    }
    storage_ = s;
  }
  WeightStorage storage() const { return storage_; }
  /// Fills the weight from a checkpoint tensor `w` [out, in] in this projection's storage form
  /// (int8: the scales are recomputed from `w`); `name` names it in errors.
  void load_weight(const torch::Tensor& w, const std::string& name) {
    GENNER_CHECK(w.sizes() == weight.sizes(), name, ": expected shape ", weight.sizes(), ", found ", w.sizes());
    GENNER_CHECK(w.is_floating_point() && at::isfinite(w).all().item<bool>(), name,
                 ": expected finite floating-point weights; the checkpoint is corrupt");
    torch::NoGradGuard no_grad;
    if (storage_ != WeightStorage::int8) {
      weight.copy_(w);
      return;
    }
    const auto f = w.to(weight_scale.device(), torch::kFloat);
    weight_scale.copy_((f.abs().amax(1) / 127.0).clamp_min(1e-12));
    weight.copy_((f / weight_scale.unsqueeze(1)).round().clamp(-127, 127).to(torch::kChar));
  }
  /// W as a dense tensor of `dtype` (int8 storage: dequantized).
  torch::Tensor dense_weight(torch::ScalarType dtype = torch::kFloat) const {
    return detail::dense_weight(weight, weight_scale, dtype);
  }
  bool has_lora() const { return !lora_A.is_empty(); }
  /// A replacement for `x W^T` computed from a packed copy of W (bf16 and int8 inference,
  /// genner/model/precision.hpp); empty: `weight` itself is used.
  std::function<torch::Tensor(const torch::Tensor&)> kernel;
  double lora_scaling() const { return scaling_; }
  /// Folds B A * scaling into W; the factors stay registered but stop contributing.
  void merge_lora() {
    if (!has_lora() || merged_) return;
    torch::NoGradGuard no_grad;
    if (storage_ == WeightStorage::int8) {  // the merged weight is a new one: dense fp32 again
      weight.set_data(dense_weight());
      weight_scale = torch::Tensor();
      storage_ = WeightStorage::fp32;
    }
    weight.add_((torch::matmul(lora_B->weight, lora_A->weight) * scaling_).to(weight.scalar_type()));
    merged_ = true;
  }
  bool merged() const { return merged_; }

  torch::Tensor weight;
  /// int8 storage: the scale of each output row ([out], fp32); undefined otherwise.
  torch::Tensor weight_scale;
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};

 private:
  WeightStorage storage_ = WeightStorage::fp32;
  int64_t in_, out_;
  double scaling_ = 1.0;
  bool merged_ = false;
};
TORCH_MODULE(Projection);

/// Bottleneck adapter `x + up(gelu(down(x)))`, initialised close to the identity.
class AdapterImpl : public torch::nn::Module {
 public:
  AdapterImpl(int64_t d_model, int64_t size) {
    down = register_module("down", torch::nn::Linear(d_model, size));
    up = register_module("up", torch::nn::Linear(size, d_model));
    torch::nn::init::normal_(down->weight, 0.0, 1e-2);
    torch::nn::init::zeros_(down->bias);
    torch::nn::init::normal_(up->weight, 0.0, 1e-2);
    torch::nn::init::zeros_(up->bias);
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + up(torch::gelu(down(x))); }
  torch::nn::Linear down{nullptr}, up{nullptr};
};
TORCH_MODULE(Adapter);

/// Keys and values of one attention layer, [batch, heads, length, d_kv]. Self-attention appends
/// a step's keys and values; without gradients they are written into buffers of spare capacity
/// (doubled when full), so a step copies only its own keys and values; with gradients they are
/// concatenated, so autograd sees every step's keys and values.
struct LayerCache {
  torch::Tensor key, value;  ///< the filled part (views of the buffers when they are used)
  torch::Tensor key_buffer, value_buffer;

  bool empty() const { return !key.defined(); }

  void append(const torch::Tensor& k, const torch::Tensor& v) {
    if (empty()) {
      key_buffer = value_buffer = torch::Tensor();
      if (c10::GradMode::is_enabled()) {
        key = k;
        value = v;
        return;
      }
    } else if (!key_buffer.defined()) {  // concatenation mode (gradients)
      key = torch::cat({key, k}, 2);
      value = torch::cat({value, v}, 2);
      return;
    }
    const int64_t filled = empty() ? 0 : key.size(2), add = k.size(2);
    if (!key_buffer.defined() || key_buffer.size(2) < filled + add) {
      const int64_t capacity = std::max<int64_t>(32, 2 * (filled + add));
      auto grow = [&](const torch::Tensor& old, const torch::Tensor& x) {
        auto b = torch::empty({x.size(0), x.size(1), capacity, x.size(3)}, x.options());
        if (filled) b.narrow(2, 0, filled).copy_(old);
        return b;
      };
      key_buffer = grow(key, k);
      value_buffer = grow(value, v);
    }
    key_buffer.narrow(2, filled, add).copy_(k);
    value_buffer.narrow(2, filled, add).copy_(v);
    key = key_buffer.narrow(2, 0, filled + add);
    value = value_buffer.narrow(2, 0, filled + add);
  }

  /// Keeps rows `index` (beam reordering, finished rows leaving the batch).
  void select_rows(const torch::Tensor& index) {
    if (empty()) return;
    auto i = index.to(key.device());
    if (key_buffer.defined()) {
      const int64_t filled = key.size(2);
      key_buffer = key_buffer.index_select(0, i);
      value_buffer = value_buffer.index_select(0, i);
      key = key_buffer.narrow(2, 0, filled);
      value = value_buffer.narrow(2, 0, filled);
    } else {
      key = key.index_select(0, i);
      value = value.index_select(0, i);
    }
  }
};

/// The decoder state for incremental decoding: self-attention caches that grow by
/// one step per call, and cross-attention caches computed once per source.
struct DecoderCache {
  std::vector<LayerCache> self_attention;
  std::vector<LayerCache> cross_attention;
  int64_t length() const {
    return self_attention.empty() || self_attention[0].empty() ? 0 : self_attention[0].key.size(2);
  }
  /// Reorders every cached row by `index` (beam search), on each tensor's own device.
  void reorder(const torch::Tensor& index) {
    for (auto& c : self_attention) c.select_rows(index);
    for (auto& c : cross_attention) c.select_rows(index);
  }
};

/// T5 relative position bucket for (query, key) pairs, as Hugging Face computes it.
inline torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                              int64_t num_buckets, int64_t max_distance) {
  auto buckets = torch::zeros_like(relative_position);
  auto rp = relative_position;
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (rp > 0).to(torch::kLong) * num_buckets;
    rp = rp.abs();
  } else {
    rp = -torch::clamp_max(rp, 0);
  }
  const int64_t max_exact = num_buckets / 2;
  auto is_small = rp < max_exact;
  auto if_large = max_exact + (torch::log(rp.to(torch::kFloat) / max_exact) /
                               std::log(static_cast<double>(max_distance) / max_exact) * (num_buckets - max_exact))
                                  .to(torch::kLong);
  if_large = torch::clamp_max(if_large, num_buckets - 1);
  return buckets + torch::where(is_small, rp, if_large);
}

/// Multi-head attention without scaling or biases; the first layer of each stack owns
/// the relative position bias table that every layer of the stack reuses.
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5Config& c, bool has_relative_bias, bool bidirectional, const LoraSpec& lora)
      : heads_(c.num_heads),
        d_kv_(c.d_kv),
        inner_(c.num_heads * c.d_kv),
        buckets_(c.relative_attention_num_buckets),
        max_distance_(c.relative_attention_max_distance),
        bidirectional_(bidirectional),
        dropout_(c.dropout_rate) {
    auto proj = [&](const char* name, int64_t in, int64_t out) {
      const bool with_lora = lora.targets_projection(name);
      return register_module(name, Projection(in, out, with_lora ? lora.rank : 0, lora.alpha));
    };
    q = proj("q", c.d_model, inner_);
    k = proj("k", c.d_model, inner_);
    v = proj("v", c.d_model, inner_);
    o = proj("o", inner_, c.d_model);
    if (has_relative_bias)
      relative_attention_bias = register_module("relative_attention_bias", torch::nn::Embedding(buckets_, heads_));
    // T5's own initialisation: with no 1/sqrt(d_kv) in the scores, q starts that much smaller.
    if (!initialising()) return;
    torch::NoGradGuard no_grad;
    q->weight.normal_(0.0, std::pow(static_cast<double>(c.d_model * c.d_kv), -0.5));
    k->weight.normal_(0.0, std::pow(static_cast<double>(c.d_model), -0.5));
    v->weight.normal_(0.0, std::pow(static_cast<double>(c.d_model), -0.5));
    o->weight.normal_(0.0, std::pow(static_cast<double>(inner_), -0.5));
    if (has_relative_bias) relative_attention_bias->weight.normal_(0.0, std::pow(static_cast<double>(c.d_model), -0.5));
  }

  bool has_relative_bias() const { return !relative_attention_bias.is_empty(); }

  /// Bucket ids [q_len, k_len] for queries at positions k_len-q_len .. k_len-1.
  torch::Tensor buckets(int64_t q_len, int64_t k_len, torch::Device device) const {
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
    auto context = torch::arange(k_len - q_len, k_len, opts).unsqueeze(1);
    auto memory = torch::arange(k_len, opts).unsqueeze(0);
    return relative_position_bucket(memory - context, bidirectional_, buckets_, max_distance_);
  }

  /// Position bias [1, heads, q_len, k_len].
  torch::Tensor compute_bias(int64_t q_len, int64_t k_len) {
    GENNER_CHECK(has_relative_bias(), "T5Attention::compute_bias: expected the layer that owns the relative position ",
                 "bias table (block 0 of a stack), found a layer without one");
    auto values = relative_attention_bias(buckets(q_len, k_len, relative_attention_bias->weight.device()));
    return values.permute({2, 0, 1}).unsqueeze(0);
  }

  /// hidden [B, Lq, d]; `kv_source` undefined for self-attention, encoder states for
  /// cross-attention; `bias` [B or 1, H, Lq, Lk] (position bias plus mask, may be undefined).
  /// With a cache: self-attention appends this step's keys/values, cross-attention
  /// computes them on first use and reuses them after.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& kv_source, const torch::Tensor& bias,
                        LayerCache* cache) {
    const int64_t B = hidden.size(0);
    auto shape = [&](const torch::Tensor& x) { return x.view({B, -1, heads_, d_kv_}).transpose(1, 2); };
    auto query = shape(q(hidden));
    torch::Tensor key, value;
    const bool cross = kv_source.defined();
    if (cross) {
      if (cache && !cache->empty()) {
        key = cache->key;
        value = cache->value;
      } else {
        key = shape(k(kv_source));
        value = shape(v(kv_source));
        if (cache) {
          cache->key = key;
          cache->value = value;
        }
      }
    } else {
      key = shape(k(hidden));
      value = shape(v(hidden));
      if (cache) {
        cache->append(key, value);
        key = cache->key;
        value = cache->value;
      }
    }
    auto scores = core::matmul(query, key.transpose(2, 3));
    if (bias.defined()) scores = scores + bias;
    auto weights = torch::softmax(scores.to(torch::kFloat), -1).to(scores.scalar_type());
    weights = core::dropout(weights, dropout_, is_training());
    auto out = core::matmul(weights, value).transpose(1, 2).contiguous().view({B, -1, inner_});
    return o(out);
  }

  Projection q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};

 private:
  int64_t heads_, d_kv_, inner_, buckets_, max_distance_;
  bool bidirectional_;
  double dropout_;
};
TORCH_MODULE(T5Attention);

/// Feed-forward: v1.0 `wo(relu(wi x))`, v1.1 `wo(gelu_tanh(wi_0 x) * wi_1 x)`.
class DenseReluDenseImpl : public torch::nn::Module {
 public:
  DenseReluDenseImpl(const T5Config& c, const LoraSpec& lora)
      : gated_(c.feed_forward == FeedForward::gated_gelu), dropout_(c.dropout_rate) {
    auto proj = [&](const char* name, int64_t in, int64_t out) {
      const bool with_lora = lora.targets_projection(name);
      return register_module(name, Projection(in, out, with_lora ? lora.rank : 0, lora.alpha));
    };
    if (gated_) {
      wi_0 = proj("wi_0", c.d_model, c.d_ff);
      wi_1 = proj("wi_1", c.d_model, c.d_ff);
    } else {
      wi = proj("wi", c.d_model, c.d_ff);
    }
    wo = proj("wo", c.d_ff, c.d_model);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h;
    if (gated_) {
      h = torch::gelu(wi_0(x), "tanh") * wi_1(x);
    } else {
      h = torch::relu(wi(x));
    }
    h = core::dropout(h, dropout_, is_training());
    return wo(h);
  }
  Projection wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};

 private:
  bool gated_;
  double dropout_;
};
TORCH_MODULE(DenseReluDense);

/// One pre-norm sublayer of a block: self-attention, cross-attention or feed-forward,
/// with its residual connection and an optional adapter on the sublayer's output.
class T5SublayerImpl : public torch::nn::Module {
 public:
  enum class Kind { self_attention, cross_attention, feed_forward };

  T5SublayerImpl(const T5Config& c, Kind kind, bool has_relative_bias, bool bidirectional, const BlockStructure& s)
      : kind_(kind), dropout_(c.dropout_rate) {
    switch (kind) {
      case Kind::self_attention:
        attention = register_module("SelfAttention", T5Attention(c, has_relative_bias, bidirectional, s.lora));
        break;
      case Kind::cross_attention:
        attention = register_module("EncDecAttention", T5Attention(c, false, true, s.lora));
        break;
      case Kind::feed_forward: dense = register_module("DenseReluDense", DenseReluDense(c, s.lora)); break;
    }
    layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
    const bool adapted = s.adapter.size > 0 && ((kind == Kind::self_attention && s.adapter.self_attention) ||
                                                (kind == Kind::cross_attention && s.adapter.cross_attention) ||
                                                (kind == Kind::feed_forward && s.adapter.feed_forward));
    if (adapted) adapter = register_module("adapter", Adapter(c.d_model, s.adapter.size));
  }

  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& kv_source, const torch::Tensor& bias,
                        LayerCache* cache) {
    auto normed = layer_norm(hidden);
    auto out = kind_ == Kind::feed_forward ? dense(normed) : attention->forward(normed, kv_source, bias, cache);
    if (!adapter.is_empty()) out = adapter(out);
    return hidden + core::dropout(out, dropout_, is_training());
  }

  Kind kind() const { return kind_; }
  T5Attention attention{nullptr};
  DenseReluDense dense{nullptr};
  T5LayerNorm layer_norm{nullptr};
  Adapter adapter{nullptr};

 private:
  Kind kind_;
  double dropout_;
};
TORCH_MODULE(T5Sublayer);

/// A block: `layer.0` self-attention, (decoder) `layer.1` cross-attention, then feed-forward.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& c, bool is_decoder, bool has_relative_bias, const BlockStructure& s)
      : is_decoder_(is_decoder) {
    using Kind = T5SublayerImpl::Kind;
    layer = register_module("layer", torch::nn::ModuleList());
    self_ = T5Sublayer(c, Kind::self_attention, has_relative_bias, !is_decoder, s);
    layer->push_back(self_);
    if (is_decoder) {
      cross_ = T5Sublayer(c, Kind::cross_attention, false, true, s);
      layer->push_back(cross_);
    }
    ff_ = T5Sublayer(c, Kind::feed_forward, false, false, s);
    layer->push_back(ff_);
  }

  torch::Tensor forward(torch::Tensor hidden, const torch::Tensor& self_bias, const torch::Tensor& encoder_hidden,
                        const torch::Tensor& cross_bias, LayerCache* self_cache, LayerCache* cross_cache) {
    hidden = self_->forward(hidden, torch::Tensor(), self_bias, self_cache);
    if (is_decoder_) hidden = cross_->forward(hidden, encoder_hidden, cross_bias, cross_cache);
    return ff_->forward(hidden, torch::Tensor(), torch::Tensor(), nullptr);
  }

  T5Sublayer self_attention() const { return self_; }
  T5Sublayer cross_attention() const { return cross_; }
  T5Sublayer feed_forward() const { return ff_; }
  torch::nn::ModuleList layer{nullptr};

 private:
  bool is_decoder_;
  T5Sublayer self_{nullptr}, cross_{nullptr}, ff_{nullptr};
};
TORCH_MODULE(T5Block);

}  // namespace genner::t5
