// genner/core/dropout.hpp: dropout whose mask is drawn in parallel by a counter-based generator.
//
// The distribution is torch::dropout's: in training each element is kept with probability 1 - p and
// scaled by 1 / (1 - p), otherwise zeroed; the result is `x * noise`, so autograd keeps the same
// noise tensor for backward as torch::dropout does. On the CPU, LibTorch draws that noise with
// bernoulli_, one mt19937 draw per element on one thread; here element i of a call's noise is the
// half of the SplitMix64 output for counter i / 2 under a key drawn once per call from LibTorch's default CPU
// generator. So torch::manual_seed (and genner's --seed) fixes every mask, a mask does not depend on
// the number of threads that drew it, and restoring the generator's state (activation
// checkpointing, train checkpoints) repeats it. Other devices use torch::dropout.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <mutex>

#include <genner/core/error.hpp>

namespace genner::core {

namespace detail {
inline uint64_t splitmix64(uint64_t z) {
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

template <class T>
void fill_noise(T* out, int64_t n, uint64_t key, double keep) {
  // Each 64-bit draw decides two elements: one is kept when its 32-bit half falls below
  // keep * 2^32 (probabilities exact to 2^-32).
  const auto threshold = static_cast<uint64_t>(std::llround(keep * 4294967296.0));
  const T scale = static_cast<T>(1.0 / keep), zero = static_cast<T>(0.0);
  const int64_t pairs = (n + 1) / 2;
  at::parallel_for(0, pairs, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const uint64_t h = splitmix64(key + static_cast<uint64_t>(j) * 0x9E3779B97F4A7C15ull);
      out[2 * j] = (h & 0xFFFFFFFFull) < threshold ? scale : zero;
      if (2 * j + 1 < n) out[2 * j + 1] = (h >> 32) < threshold ? scale : zero;
    }
  });
}
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
  auto noise = torch::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const uint64_t key = detail::dropout_key();
  const double keep = 1.0 - p;
  if (t == torch::kFloat) detail::fill_noise(noise.data_ptr<float>(), noise.numel(), key, keep);
  else if (t == torch::kDouble) detail::fill_noise(noise.data_ptr<double>(), noise.numel(), key, keep);
  else detail::fill_noise(noise.data_ptr<at::BFloat16>(), noise.numel(), key, keep);
  return x * noise;
}

}  // namespace genner::core
