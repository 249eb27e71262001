// genner/t5/recompute.hpp: activation checkpointing of one T5 block. The block runs without
// keeping its activations; backward runs it again (same random-number state, same autocast state)
// and back-propagates through the recomputed graph. Gradients equal those of the plain block; the
// memory kept for backward per block is its inputs instead of every intermediate activation.
// Used by T5StackImpl when checkpointing is on (T5StackImpl::set_checkpointing).
#pragma once

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include <genner/t5/layers.hpp>

namespace genner::t5 {

namespace detail {

/// The random-number and autocast state a recomputation must see to repeat the forward pass.
struct ForwardState {
  torch::Device device = torch::kCPU;  ///< whose generator the block's dropout draws from
  torch::Tensor rng;
  bool autocast_cpu = false;
  at::ScalarType autocast_cpu_dtype = at::kBFloat16;

  static ForwardState capture(torch::Device device) {
    ForwardState s;
    s.device = device;
    auto gen = at::globalContext().defaultGenerator(device);
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      s.rng = gen.get_state();
    }
    s.autocast_cpu = at::autocast::is_cpu_enabled();
    s.autocast_cpu_dtype = at::autocast::get_autocast_cpu_dtype();
    return s;
  }
};

/// Restores a captured state for the lifetime of the scope, then puts the current one back, so the
/// recomputation neither sees other random numbers nor changes those drawn after it.
class ReplayScope {
 public:
  explicit ReplayScope(const ForwardState& s) : current_(ForwardState::capture(s.device)) {
    set_rng(s.device, s.rng);
    at::autocast::set_autocast_cpu_dtype(s.autocast_cpu_dtype);
    at::autocast::set_cpu_enabled(s.autocast_cpu);
    if (s.autocast_cpu) at::autocast::increment_nesting();
    nested_ = s.autocast_cpu;
  }
  ~ReplayScope() {
    if (nested_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(current_.autocast_cpu);
    at::autocast::set_autocast_cpu_dtype(current_.autocast_cpu_dtype);
    set_rng(current_.device, current_.rng);
  }
  ReplayScope(const ReplayScope&) = delete;
  ReplayScope& operator=(const ReplayScope&) = delete;

 private:
  static void set_rng(torch::Device device, const torch::Tensor& state) {
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }
  ForwardState current_;
  bool nested_ = false;
};

/// The autograd function: inputs are the block's tensors (and, where none of them requires a
/// gradient but the block trains, a zero-size tensor that does, so the result joins the graph).
struct BlockRecompute : public torch::autograd::Function<BlockRecompute> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor hidden, torch::Tensor self_bias,
                               torch::Tensor encoder_hidden, torch::Tensor cross_bias, torch::Tensor anchor,
                               T5BlockImpl* block, bool decoder) {
    (void)anchor;
    if (!decoder) encoder_hidden = cross_bias = torch::Tensor();  // placeholders of an encoder block
    const auto state = ForwardState::capture(hidden.device());
    // The block outlives its graph (the module owns it); only its address is kept.
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);
    ctx->saved_data["decoder"] = decoder;
    ctx->saved_data["rng"] = state.rng;
    ctx->saved_data["autocast"] = state.autocast_cpu;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(state.autocast_cpu_dtype);
    ctx->save_for_backward(decoder ? torch::autograd::variable_list{hidden, self_bias, encoder_hidden, cross_bias}
                                   : torch::autograd::variable_list{hidden, self_bias});
    return block->forward(hidden, self_bias, encoder_hidden, cross_bias, nullptr, nullptr);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* block = reinterpret_cast<T5BlockImpl*>(ctx->saved_data["block"].toInt());
    auto saved = ctx->get_saved_variables();
    ForwardState state;
    state.device = saved[0].device();
    state.rng = ctx->saved_data["rng"].toTensor();
    state.autocast_cpu = ctx->saved_data["autocast"].toBool();
    state.autocast_cpu_dtype = static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt());
    std::vector<torch::Tensor> inputs;
    for (auto& t : saved) inputs.push_back(t.detach().requires_grad_(t.requires_grad()));
    inputs.resize(4);  // an encoder block: no encoder states, no cross bias
    torch::Tensor out;
    {
      torch::AutoGradMode grad_on(true);
      ReplayScope replay(state);
      out = block->forward(inputs[0], inputs[1], inputs[2], inputs[3], nullptr, nullptr);
    }
    if (out.requires_grad()) torch::autograd::backward({out}, {grads[0]});
    torch::autograd::variable_list result;
    for (auto& t : inputs) result.push_back(t.defined() && t.requires_grad() ? t.grad() : torch::Tensor());
    result.resize(7);  // the anchor, the block and the decoder flag get none
    return result;
  }
};

}  // namespace detail

/// One block's forward pass with activation checkpointing; call it only while training with
/// gradients on and without a decoder cache.
inline torch::Tensor checkpointed_block(T5BlockImpl& block, const torch::Tensor& hidden,
                                        const torch::Tensor& self_bias, const torch::Tensor& encoder_hidden,
                                        const torch::Tensor& cross_bias) {
  auto needs = [](const torch::Tensor& t) { return t.defined() && t.requires_grad(); };
  bool trains = false;
  for (const auto& p : block.parameters()) trains = trains || p.requires_grad();
  const bool joined = needs(hidden) || needs(self_bias) || needs(encoder_hidden) || needs(cross_bias);
  if (!trains && !joined) return block.forward(hidden, self_bias, encoder_hidden, cross_bias, nullptr, nullptr);
  // Every tensor argument must be defined: zero-size placeholders stand for the missing ones.
  const auto none = torch::empty({0}, hidden.options());
  const bool decoder = encoder_hidden.defined();
  auto anchor = joined ? none : torch::empty({0}, hidden.options().dtype(torch::kFloat)).requires_grad_();
  return detail::BlockRecompute::apply(hidden, self_bias, decoder ? encoder_hidden : none,
                                       decoder && cross_bias.defined() ? cross_bias : none, anchor, &block, decoder);
}

}  // namespace genner::t5
