// genner/core/matmul.hpp: batched matrix products (attention's scores and weighted values) with
// autograd, through one oneDNN matmul over the operands' strides where it fits
// (core::onednn::strided_matmul: fp32 CPU batches of equal batch sizes), else torch::matmul.
//
// LibTorch's CPU bmm in a build without MKL copies transposed operands to contiguous ones and calls
// BLAS once per matrix: for T5's [batch, heads, length, d_kv] attention that is one call (and one
// `select` per operand) for every batch row and head, in forward and twice more in backward. Here
// forward and both backward products are one kernel call each, reading the views as they are, and
// backward saves the operands themselves rather than contiguous copies. Under CPU autocast, on
// other devices and dtypes, or without oneDNN the product is torch::matmul's.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>
#include <torch/types.h>

#include <genner/core/onednn.hpp>

namespace genner::core {

namespace detail {
#if GENNER_WITH_ONEDNN
/// a @ b with backward dA = dC b^T, dB = a^T dC, each product taken by core::matmul again.
struct StridedMatmul : public torch::autograd::Function<StridedMatmul> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b);
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads);
};
#endif
}  // namespace detail

/// `a @ b` for a [..., M, K] and b [..., K, N] (torch::matmul's broadcasting where the fast path does
/// not apply); the result is contiguous on the fast path.
inline torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b) {
#if GENNER_WITH_ONEDNN
  if (!at::autocast::is_cpu_enabled() && onednn::strided_matmul_fits(a, b)) {
    const bool grad = c10::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
    return grad ? detail::StridedMatmul::apply(a, b) : onednn::strided_matmul(a, b);
  }
#endif
  return torch::matmul(a, b);
}

#if GENNER_WITH_ONEDNN
inline torch::Tensor detail::StridedMatmul::forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                                                    const torch::Tensor& b) {
  ctx->save_for_backward({a, b});
  return onednn::strided_matmul(a, b);
}
inline torch::autograd::tensor_list detail::StridedMatmul::backward(torch::autograd::AutogradContext* ctx,
                                                                    torch::autograd::tensor_list grads) {
  const auto saved = ctx->get_saved_variables();
  const auto& a = saved[0];
  const auto& b = saved[1];
  const auto& g = grads[0];
  torch::Tensor ga, gb;
  if (ctx->needs_input_grad(0)) ga = core::matmul(g, b.transpose(-1, -2));
  if (ctx->needs_input_grad(1)) gb = core::matmul(a.transpose(-1, -2), g);
  return {ga, gb};
}
#endif

}  // namespace genner::core
