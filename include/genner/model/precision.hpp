// genner/model/precision.hpp: numeric precision as part of an experiment — fp32 (the default),
// bf16 (mixed-precision training under autocast with fp32 master weights, AdamW state and loss;
// bf16 weights for inference) and int8 (dynamically quantized projections for CPU inference).
// A precision the machine cannot run natively is refused with a sentence, never replaced by fp32.
//
//   auto p = genner::model::parse_precision("bf16");
//   genner::model::require_precision(p, torch::kCPU, /*training=*/true);
//   { genner::model::Autocast ac(p, torch::kCPU); auto out = model->forward(...); }  // then backward
//   genner::model::prepare_inference(*model, p);  // after the weights are final
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include <genner/core/error.hpp>
#include <genner/core/onednn.hpp>
#include <genner/t5/layers.hpp>

namespace genner::model {

enum class Precision { fp32, bf16, int8 };

inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::bf16: return "bf16";
    case Precision::int8: return "int8";
  }
  return "?";
}

/// "fp32", "bf16" or "int8"; anything else is an error naming the choices.
inline Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  if (name == "int8") return Precision::int8;
  fail("precision: expected fp32, bf16 or int8, found '", std::string(name), "'");
}

// ---- what this machine can run ---------------------------------------------------------------------

namespace detail {
/// The CPU feature flags of /proc/cpuinfo (empty where the file does not exist).
inline const std::set<std::string>& cpu_flags() {
  static const std::set<std::string> flags = [] {
    std::set<std::string> out;
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream words(line.substr(line.find(':') + 1));
      for (std::string w; words >> w;) out.insert(w);
      break;
    }
    return out;
  }();
  return flags;
}

inline bool has_flag(const char* f) { return cpu_flags().count(f) > 0; }

/// The largest int8 weight magnitude. x86 CPUs without VNNI multiply u8 activations by s8 weights
/// in pairs summed into saturating 16-bit integers (vpmaddubsw): 255 x 127 x 2 overflows, so
/// weights there keep 7 bits (255 x 63 x 2 = 32130 fits) and activations their 8. Measured on such
/// a CPU (the built-in default's test F1, fp32 65.40): 8-bit weights 64.40, 7-bit activations
/// instead 64.18, 7-bit weights 65.30.
inline double int8_weight_max() {
  static const bool saturating = (has_flag("avx2") || has_flag("avx512f")) &&
                                 !(has_flag("avx512_vnni") || has_flag("avx_vnni") || has_flag("amx_int8"));
  return saturating ? 63.0 : 127.0;
}

}  // namespace detail

/// Why `p` cannot run on `device` here, or an empty string when it can.
///  - bf16 on a CPU needs native bf16 instructions (avx512_bf16 or amx_bf16); elsewhere LibTorch
///    emulates bf16 more slowly than fp32. On CUDA, bf16 is left to the device.
///  - int8 runs on CPUs only, through oneDNN's int8 matmul (genner/core/onednn.hpp).
inline std::string precision_unsupported(Precision p, torch::Device device = torch::kCPU) {
  switch (p) {
    case Precision::fp32: return {};
    case Precision::bf16:
      if (device.is_cuda()) return torch::cuda::is_available() ? "" : "bf16 on CUDA: no CUDA device is available";
      if (!device.is_cpu()) return std::string("bf16 is supported on CPU and CUDA devices, not ") + device.str();
      if (detail::has_flag("avx512_bf16") || detail::has_flag("amx_bf16")) return {};
      return "bf16 on this CPU: it has no native bf16 instructions (cpuinfo flags avx512_bf16 or amx_bf16), so "
             "LibTorch would emulate bf16 more slowly than fp32; use fp32";
    case Precision::int8: {
      if (!device.is_cpu()) return std::string("int8 is CPU inference only, found device ") + device.str();
#if !GENNER_WITH_ONEDNN
      return "int8: this build of genner has no oneDNN (it was configured with GENNER_ONEDNN=OFF); install "
             "libdnnl-dev and configure with GENNER_ONEDNN=ON";
#else
      try {  // a probe: pack and apply a 4x4 projection
        auto y = core::onednn::PackedLinear::int8(torch::eye(4), detail::int8_weight_max())(torch::ones({1, 4}));
        if (!y.allclose(torch::ones({1, 4}), 0.02, 0.02)) return "int8: oneDNN's int8 matmul probe returned wrong values";
      } catch (const std::exception& e) {
        return std::string("int8: oneDNN's int8 matmul probe failed: ") + e.what();
      }
      return {};
#endif
    }
  }
  return "unknown precision";
}

/// Throws a genner::Error when `p` cannot run on `device` (for training, when `training`).
inline void require_precision(Precision p, torch::Device device = torch::kCPU, bool training = false) {
  GENNER_CHECK(!(training && p == Precision::int8),
               "precision int8 is for inference only (dynamically quantized projections have no gradient); "
               "train in fp32 or bf16 and evaluate or predict with --precision int8");
  const auto why = precision_unsupported(p, device);
  GENNER_CHECK(why.empty(), "precision ", precision_name(p), " cannot run here: ", why);
}

// ---- training: autocast ----------------------------------------------------------------------------

/// Mixed precision for the scope of one forward pass: under bf16, matrix products run in bf16 while
/// parameters (master weights), their gradients and the optimizer state stay fp32; genner computes
/// the loss from fp32 logits. fp32 does nothing. Run backward after the scope, as autocast expects.
class Autocast {
 public:
  explicit Autocast(Precision p, torch::Device device = torch::kCPU) : on_(p == Precision::bf16) {
    GENNER_CHECK(p != Precision::int8, "Autocast: int8 is for inference only; use prepare_inference");
    if (!on_) return;
    cuda_ = device.is_cuda();
    if (cuda_) {
      was_enabled_ = at::autocast::is_enabled();
      was_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      was_enabled_ = at::autocast::is_cpu_enabled();
      was_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
    at::autocast::increment_nesting();
  }
  ~Autocast() {
    if (!on_) return;
    // Casts of the weights are cached while autocast is on; drop them once the outermost scope
    // ends, so that the next scope sees the updated fp32 weights.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(was_enabled_);
      at::autocast::set_autocast_gpu_dtype(was_dtype_);
    } else {
      at::autocast::set_cpu_enabled(was_enabled_);
      at::autocast::set_autocast_cpu_dtype(was_dtype_);
    }
  }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_ = false, cuda_ = false, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

// ---- inference ---------------------------------------------------------------------------------------

#if GENNER_WITH_ONEDNN
namespace detail {
/// Installs `packed` as the product of projection `name`, refusing gradients.
inline void use_packed(t5::ProjectionImpl& proj, const std::string& name, core::onednn::PackedLinear packed) {
  proj.kernel = [packed = std::move(packed), name](const torch::Tensor& x) {
    GENNER_CHECK(!torch::GradMode::is_enabled(), "the packed ", core::onednn::form_name(packed.form()), " projection ",
                 name, " is for inference only; run it under torch::NoGradGuard (evaluation does)");
    return packed(x);
  };
}
}  // namespace detail
#endif

/// Converts a trained model for inference in `p` (call it after loading the final weights; it
/// switches the model to eval mode):
///  - fp32: nothing;
///  - bf16: every parameter and buffer becomes bf16 (T5 keeps its layer-norm statistics and
///    attention softmax in fp32; searches take log-softmax in fp32), and every T5 projection
///    multiplies through oneDNN with its weight reordered once into the matmul's blocked layout
///    (genner/core/onednn.hpp; AMX tiles where the CPU has them); a build without oneDNN
///    (GENNER_ONEDNN=OFF) and CUDA models keep LibTorch's bf16 products;
///  - int8: the feed-forward (wi*, wo) and cross-attention (q, k, v, o) projections compute `x W^T`
///    from packed per-output-channel int8 weights through oneDNN, activations quantized per call
///    (uint8, one scale and zero point per tensor); self-attention projections, embeddings, layer
///    norms, the encoder MLP and the pointer head stay fp32. T5 does not scale its attention
///    scores, so errors of q and k reach the softmax unscaled: on two trained built-in defaults,
///    quantizing self-attention too cost 0.9 and 0.6 test F1 against fp32, keeping it fp32 -0.05
///    and +0.11 (keeping the feed-forward fp32 instead: -0.31 and +0.06).
/// LoRA factors are merged first. The packed weights are copies: the stored weights stay as they
/// are (bf16, or fp32 for int8). Gradients through packed projections are refused afterwards.
/// Returns the number of projections quantized (int8) or of tensors converted (bf16).
inline int64_t prepare_inference(torch::nn::Module& model, Precision p) {
  require_precision(p, torch::kCPU, /*training=*/false);
  model.eval();
  int64_t n = 0;
  const auto projections = [&model] {
    std::vector<std::pair<std::string, t5::ProjectionImpl*>> out;
    for (const auto& item : model.named_modules())
      if (auto* proj = item.value()->as<t5::ProjectionImpl>()) out.emplace_back(item.key(), proj);
    return out;
  };
  switch (p) {
    case Precision::fp32: break;
    case Precision::bf16:
      for (auto& [name, proj] : projections()) proj->merge_lora();
      model.to(torch::kBFloat16);
      n = static_cast<int64_t>(model.parameters().size() + model.buffers().size());
#if GENNER_WITH_ONEDNN
      for (auto& [name, proj] : projections())
        if (proj->weight.device().is_cpu()) detail::use_packed(*proj, name, core::onednn::PackedLinear::bf16(proj->weight));
#endif
      break;
    case Precision::int8:
      for (auto& [name, proj] : projections()) {
        GENNER_CHECK(proj->weight.device().is_cpu(), "prepare_inference: int8 needs the model on the CPU; ", name,
                     " is on ", proj->weight.device().str());
        proj->merge_lora();
        if (name.find("SelfAttention.") != std::string::npos) continue;  // stays fp32 (see above)
#if GENNER_WITH_ONEDNN
        detail::use_packed(*proj, name, core::onednn::PackedLinear::int8(proj->dense_weight(), detail::int8_weight_max()));
        ++n;
#endif
      }
      GENNER_CHECK(n > 0, "prepare_inference: int8 found no T5 projection to quantize in this model");
      break;
  }
  return n;
}

}  // namespace genner::model
