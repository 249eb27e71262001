// genner/train/optim.hpp: optimisation helpers of the training loop — gradient clipping and the
// T5 follow-up's random truncation of the decoder input. (The optimizer's parameter groups come
// from the model: model::NerModelCore::parameter_groups.)
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>

namespace genner::train {

/// Named parameters of a module as a vector (the form the helpers here take).
inline std::vector<std::pair<std::string, at::Tensor>> named_parameters(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

/// Clamps every gradient element to [-clip, clip] (the published PEFT runs used 0.1).
inline void clip_grad_value(const std::vector<at::Tensor>& params, double clip) {
  GENNER_CHECK(clip > 0, "clip_grad_value: expected a positive clip value, found ", clip);
  at::NoGradGuard no_grad;
  for (const auto& p : params)
    if (p.grad().defined()) p.mutable_grad().clamp_(-clip, clip);
}

/// Rescales all gradients so their joint L2 norm is at most `max_norm`; returns the norm before.
inline double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  GENNER_CHECK(max_norm > 0, "clip_grad_norm: expected a positive max norm, found ", max_norm);
  at::NoGradGuard no_grad;
  double sq = 0;
  for (const auto& p : params)
    if (p.grad().defined()) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
  const double norm = std::sqrt(sq);
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1)
    for (const auto& p : params)
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
  return norm;
}

/// Every parameter of every group of an optimizer (what the clipping helpers take).
inline std::vector<at::Tensor> optimizer_params(const torch::optim::Optimizer& optimizer) {
  std::vector<at::Tensor> out;
  for (const auto& g : optimizer.param_groups()) out.insert(out.end(), g.params().begin(), g.params().end());
  return out;
}

/// Random decoder-input truncation: with probability p per training step, the decoder input and
/// targets (batch x T) are cut to a random length in [1, T-1], so the model also learns from
/// prefixes (the T5 follow-up used p = 0.05). Seeded; its state goes into checkpoints.
class DecoderTruncation {
 public:
  explicit DecoderTruncation(double probability = 0.05, uint64_t seed = 0) : p_(probability), rng_(seed) {
    GENNER_CHECK(probability >= 0 && probability <= 1, "DecoderTruncation: expected a probability in [0, 1], found ",
                 probability);
  }

  /// The length to keep for a sequence of `length` this step, or nothing (no truncation).
  /// Draws a fixed number of random values per call so the stream stays in step on resume.
  std::optional<int64_t> draw(int64_t length) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    const uint64_t r = rng_();
    if (u >= p_ || length < 2) return std::nullopt;
    return 1 + int64_t(r % uint64_t(length - 1));
  }

  /// Applies one draw to a (decoder input, targets) pair along dimension 1.
  std::pair<at::Tensor, at::Tensor> apply(const at::Tensor& decoder_input, const at::Tensor& targets) {
    GENNER_CHECK(decoder_input.dim() == 2 && targets.dim() == 2 && decoder_input.size(1) == targets.size(1),
                 "DecoderTruncation: expected decoder input and targets of the same shape batch x T, found ",
                 decoder_input.sizes(), " and ", targets.sizes());
    const auto keep = draw(decoder_input.size(1));
    if (!keep) return {decoder_input, targets};
    return {decoder_input.narrow(1, 0, *keep), targets.narrow(1, 0, *keep)};
  }

  [[nodiscard]] double probability() const { return p_; }
  /// The generator's state as text (std::mt19937_64's operator<<), for checkpoints.
  [[nodiscard]] std::string state() const {
    std::ostringstream out;
    out << rng_;
    return out.str();
  }
  void set_state(const std::string& state) {
    std::istringstream in(state);
    in >> rng_;
    GENNER_CHECK(!in.fail(), "DecoderTruncation::set_state: expected a std::mt19937_64 state, found '",
                 state.substr(0, 40), "...'");
  }

 private:
  double p_;
  std::mt19937_64 rng_;
};

}  // namespace genner::train
