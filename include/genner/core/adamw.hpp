// genner/core/adamw.hpp: LibTorch's AdamW with its update of each parameter done in one pass.
//
// torch::optim::AdamW updates a parameter with nine tensor operations (decay, two moment updates
// of two operations each, square root, division, epsilon, the step), each a pass over memory, and
// two temporaries the size of the parameter. FusedAdamW computes the same formulas element by
// element in one loop over parameter, gradient and moments, in parallel (core::parallel_range); its
// state is LibTorch's (AdamWParamState: step, exp_avg, exp_avg_sq), so checkpoints, save/load and
// code that reads the state see an AdamW. A parameter the loop does not handle (not a contiguous
// CPU fp32 tensor, or amsgrad on) is updated by LibTorch's own operations, with the same result.
#pragma once

#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/threading.hpp>

namespace genner::core {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) {
      at::AutoGradMode enable_grad(true);
      loss = closure();
    }
    for (auto& group : param_groups_) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        GENNER_CHECK(!p.grad().is_sparse(), "AdamW: sparse gradients are not supported");
        update(p, o, state_of(p, o));
      }
    }
    return loss;
  }

 private:
  torch::optim::AdamWParamState& state_of(const torch::Tensor& p, const torch::optim::AdamWOptions& o) {
    const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
    auto it = state_.find(key);
    if (it == state_.end()) {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(0);
      s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
      s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      if (o.amsgrad()) s->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      it = state_.emplace(key, std::move(s)).first;
    }
    return static_cast<torch::optim::AdamWParamState&>(*it->second);
  }

  static bool fusable(const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
  }

  static void update(torch::Tensor& p, const torch::optim::AdamWOptions& o, torch::optim::AdamWParamState& s) {
    const auto& grad = p.grad();
    auto& m = s.exp_avg();
    auto& v = s.exp_avg_sq();
    s.step(s.step() + 1);
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    const double correction1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
    const double correction2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
    const double step_size = o.lr() / correction1;
    if (o.amsgrad() || !fusable(p) || !fusable(grad) || !fusable(m) || !fusable(v) ||
        grad.sizes() != p.sizes()) {
      if (o.weight_decay() != 0) p.mul_(1 - o.lr() * o.weight_decay());
      m.mul_(beta1).add_(grad, 1 - beta1);
      v.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      torch::Tensor denom;
      if (o.amsgrad()) {
        auto& vmax = s.max_exp_avg_sq();
        at::maximum_out(vmax, vmax, v);
        denom = (vmax.sqrt() / std::sqrt(correction2)).add_(o.eps());
      } else {
        denom = (v.sqrt() / std::sqrt(correction2)).add_(o.eps());
      }
      p.addcdiv_(m, denom, -step_size);
      return;
    }
    // The operations above, element by element, with the scalars in fp32 as LibTorch casts them.
    const bool decay = o.weight_decay() != 0;
    const float keep = static_cast<float>(1 - o.lr() * o.weight_decay());
    const float b1 = static_cast<float>(beta1), a1 = static_cast<float>(1 - beta1);
    const float b2 = static_cast<float>(beta2), a2 = static_cast<float>(1 - beta2);
    const float root2 = static_cast<float>(std::sqrt(correction2)), eps = static_cast<float>(o.eps());
    const float step = static_cast<float>(-step_size);
    float* pp = p.data_ptr<float>();
    float* mp = m.data_ptr<float>();
    float* vp = v.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    parallel_range(p.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float g = gp[i];
        const float w = decay ? pp[i] * keep : pp[i];
        const float mi = mp[i] * b1 + a1 * g;
        const float vi = vp[i] * b2 + a2 * g * g;
        mp[i] = mi;
        vp[i] = vi;
        pp[i] = w + step * mi / (std::sqrt(vi) / root2 + eps);
      }
    });
  }
};

}  // namespace genner::core
