// genner/core/dropout.hpp: dropout whose mask is drawn in parallel by a counter-based generator and
// kept as bits.
//
// The distribution is torch::dropout's: in training each element is kept with probability 1 - p and
// scaled by 1 / (1 - p), otherwise zeroed. On the CPU, LibTorch draws a noise tensor with
// bernoulli_, one mt19937 draw per element on one thread, multiplies by it and keeps it for
// backward. Here element i's fate is the half of the SplitMix64 output for counter i / 2 under a key
// drawn once per call from LibTorch's default CPU generator, so the mask is a function of (key, i),
// drawn in parallel; forward writes `x * noise` without a noise tensor and keeps the mask as one bit
// per element for backward (an fp32 noise tensor, as LibTorch keeps, takes 32). torch::manual_seed
// (and genner's --seed) fixes every mask, a mask does not depend on the number of threads that drew
// it, and restoring the generator's state (activation checkpointing, train checkpoints) repeats it.
// Other devices and dtypes use torch::dropout.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/threading.hpp>

namespace genner::core {

namespace detail {
__attribute__((always_inline)) inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// One 64-bit key from LibTorch's default CPU generator (advancing it, as a draw does).
inline uint64_t dropout_key() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

/// Bytes [begin, end) of the mask of `key` (see draw_mask), eight at a time: their 32 draws in one
/// loop the compiler vectorises, then packed.
__attribute__((always_inline)) inline void draw_bytes(uint8_t* out, int64_t begin, int64_t end, uint64_t key,
                                                      uint64_t threshold) {
  constexpr int64_t kBytes = 8, kDraws = 4 * kBytes;
  for (int64_t b = begin; b < end; b += kBytes) {
    uint64_t h[kDraws];
    const auto first = static_cast<uint64_t>(4 * b);
    for (int64_t i = 0; i < kDraws; ++i) h[i] = splitmix64(key + (first + static_cast<uint64_t>(i)) * 0x9E3779B97F4A7C15ull);
    uint8_t low[kDraws], high[kDraws];
    for (int64_t i = 0; i < kDraws; ++i) {
      low[i] = (h[i] & 0xFFFFFFFFull) < threshold ? 1 : 0;
      high[i] = (h[i] >> 32) < threshold ? 1 : 0;
    }
    for (int64_t k = 0; k < std::min(kBytes, end - b); ++k) {  // draws 4k .. 4k+3: elements 8k .. 8k+7
      uint8_t byte = 0;
      for (int64_t j = 0; j < 4; ++j)
        byte |= static_cast<uint8_t>((low[4 * k + j] << (2 * j)) | (high[4 * k + j] << (2 * j + 1)));
      out[b + k] = byte;  // bits past n are never read
    }
  }
}
inline void draw_bytes_any_cpu(uint8_t* out, int64_t begin, int64_t end, uint64_t key, uint64_t threshold) {
  draw_bytes(out, begin, end, key, threshold);
}
#if defined(__x86_64__)
#define GENNER_DROPOUT_AVX512 1
/// The same on AVX-512's eight 64-bit lanes, where the CPU has them (the draws are most of a mask's cost).
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) inline void draw_bytes_avx512(
    uint8_t* out, int64_t begin, int64_t end, uint64_t key, uint64_t threshold) {
  draw_bytes(out, begin, end, key, threshold);
}
/// Whether this CPU runs draw_bytes_avx512.
inline bool has_avx512_draws() {
  static const bool yes = __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512bw");
  return yes;
}
#else
#define GENNER_DROPOUT_AVX512 0
#endif

/// The mask of `key`: bit i of bits[i / 8] (i in [0, n)) says whether element i is kept. Each
/// 64-bit draw decides two elements, one kept when its 32-bit half falls below keep * 2^32
/// (probabilities exact to 2^-32).
inline torch::Tensor draw_mask(int64_t n, uint64_t key, double keep) {
  const auto threshold = static_cast<uint64_t>(std::llround(keep * 4294967296.0));
  auto bits = torch::empty({(n + 7) / 8}, torch::kUInt8);
  uint8_t* out = bits.data_ptr<uint8_t>();
  auto* draw = draw_bytes_any_cpu;
#if GENNER_DROPOUT_AVX512
  if (has_avx512_draws()) draw = draw_bytes_avx512;
#endif
  parallel_range(bits.numel(), 1 << 12, [&](int64_t begin, int64_t end) { draw(out, begin, end, key, threshold); });
  return bits;
}

/// out[i] = x[i] * noise_i for i in [0, n): noise_i = 1 / keep (rounded to T) where `bits` keeps
/// element i, else 0; the product is T's, as LibTorch's `x * noise`. Each mask byte picks its eight
/// factors from a table, so the products run as vector multiplies.
template <class T>
void apply_mask(const T* x, T* out, int64_t n, const uint8_t* bits, double keep) {
  const T scale = static_cast<T>(1.0 / keep), zero = static_cast<T>(0.0);
  std::vector<T> factors(256 * 8);
  for (size_t byte = 0; byte < 256; ++byte)
    for (size_t k = 0; k < 8; ++k) factors[8 * byte + k] = ((byte >> k) & 1u) ? scale : zero;
  const T* table = factors.data();
  parallel_range((n + 7) / 8, 1 << 12, [&](int64_t begin, int64_t end) {
    const int64_t whole = std::min(end, n / 8);
    for (int64_t b = begin; b < whole; ++b) {
      const T* __restrict f = table + 8 * bits[b];
      const T* __restrict in = x + 8 * b;
      T* __restrict o = out + 8 * b;
      for (int k = 0; k < 8; ++k) o[k] = static_cast<T>(in[k] * f[k]);
    }
    for (int64_t b = std::max(begin, whole); b < end; ++b) {  // the last, partial byte
      const T* f = table + 8 * bits[b];
      for (int64_t k = 0; k < n - 8 * b; ++k) out[8 * b + k] = static_cast<T>(x[8 * b + k] * f[k]);
    }
  });
}

/// `x * noise` for the mask `bits` (x: a CPU float, double or bfloat16 tensor).
inline torch::Tensor masked(const torch::Tensor& x, const torch::Tensor& bits, double keep) {
  const auto in = x.contiguous();
  auto out = torch::empty(in.sizes(), in.options());
  const auto n = in.numel();
  const uint8_t* m = bits.data_ptr<uint8_t>();
  switch (in.scalar_type()) {
    case torch::kFloat: apply_mask(in.data_ptr<float>(), out.data_ptr<float>(), n, m, keep); break;
    case torch::kDouble: apply_mask(in.data_ptr<double>(), out.data_ptr<double>(), n, m, keep); break;
    default: apply_mask(in.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), n, m, keep); break;
  }
  return out;
}

/// Forward: `x * noise` under a mask drawn now; backward: the gradient times the same noise. The
/// mask is kept as one bit per element (an fp32 noise tensor would take 32).
struct Dropout : public torch::autograd::Function<Dropout> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double keep) {
    auto bits = draw_mask(x.numel(), dropout_key(), keep);
    ctx->save_for_backward({bits});
    ctx->saved_data["keep"] = keep;
    return masked(x, bits, keep);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto& g = grads[0];
    if (!g.defined()) return {torch::Tensor(), torch::Tensor()};
    return {masked(g, ctx->get_saved_variables()[0], ctx->saved_data["keep"].toDouble()), torch::Tensor()};
  }
};
}  // namespace detail

/// `x` with each element zeroed with probability `p` and the rest scaled by 1 / (1 - p) when
/// `train`; `x` itself otherwise (or when p is 0).
inline torch::Tensor dropout(const torch::Tensor& x, double p, bool train) {
  GENNER_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability must lie in [0, 1], found ", p);
  if (!train || p == 0.0) return x;
  if (p == 1.0) return x * torch::zeros_like(x);
  const auto t = x.scalar_type();
  if (!x.device().is_cpu() || (t != torch::kFloat && t != torch::kBFloat16 && t != torch::kDouble))
    return torch::dropout(x, p, train);
  return detail::Dropout::apply(x, 1.0 - p);
}

}  // namespace genner::core
