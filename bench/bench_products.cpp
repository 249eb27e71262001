// bench_products: one T5 projection `x W^T` at the shapes t5-small's searches and training run —
// 32 rows (a decoder step of a 32-sentence batch), 992 rows (16 sentences of 62 tokens, the training
// batch of bench_ner) and 1024 rows — in each way genner or LibTorch can compute it:
//   fp32          at::linear, OpenBLAS
//   bf16_aten     at::linear on bf16 operands (oneDNN, W reordered on every call)
//   bf16_aligned  the same with rows padded to a multiple of 64 on several threads, as T5's
//                 projections run in bf16 training (genner::core::onednn::aligned_rows)
//   bf16_packed   genner::core::onednn::PackedLinear::bf16 (W reordered once)
//   int8_aten     quantized::linear_dynamic (LibTorch's dynamic quantization, oneDNN engine)
//   int8_packed   genner::core::onednn::PackedLinear::int8 (W reordered once, zero point and
//                 scales fused into the matmul)
// and attention's two batched products in fp32 (t5-small: 8 heads of 64, sequences of 62 tokens,
// batch 16), forward and backward, in each of two ways:
//   aten     torch::matmul (LibTorch's CPU bmm: contiguous copies, one BLAS call per matrix)
//   strided  genner::core::matmul (one oneDNN matmul over the views' strides)
// Threads: genner's policy for the precision (genner/core/threading.hpp); the counters name them.
#include <benchmark/benchmark.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <genner/genner.hpp>

#include "support.hpp"

namespace {

namespace dnn = genner::core::onednn;

enum Way { fp32, bf16_aten, bf16_aligned, bf16_packed, int8_aten, int8_packed };

c10::IValue aten_int8(const torch::Tensor& w) {
  const auto scales = (w.abs().amax(1) / genner::model::detail::int8_weight_max()).to(torch::kDouble);
  auto q = at::quantize_per_channel(w, scales, torch::zeros({w.size(0)}, torch::kLong), 0, at::kQInt8);
  torch::jit::Stack stack{q, c10::IValue()};
  c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "").callBoxed(&stack);
  return stack.at(0);
}

void BM_Projection(benchmark::State& state, Way way) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const auto t = genner::core::use_threads(0, way != fp32, "bench");
  state.counters["openmp_threads"] = t.openmp;
  state.counters["openblas_threads"] = t.openblas;
  if ((way == bf16_aten || way == bf16_aligned || way == bf16_packed) && !genner::model::precision_unsupported(genner::model::Precision::bf16).empty()) {
    state.SkipWithError("bf16: this CPU has no native bf16 instructions");
    return;
  }
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  const auto w = torch::randn({out, in}) / 20, x = torch::randn({rows, in});
  const auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16);
  std::function<torch::Tensor()> run;
  switch (way) {
    case fp32: run = [&] { return at::linear(x, w); }; break;
    case bf16_aten: run = [&] { return at::linear(xb, wb); }; break;
    case bf16_aligned:
      run = [&] { return genner::t5::detail::aligned_product(xb, [&](const torch::Tensor& r) { return at::linear(r, wb); }); };
      break;
    case bf16_packed: run = [p = dnn::PackedLinear::bf16(w), &xb] { return p(xb); }; break;
    case int8_aten: {
      at::globalContext().setQEngine(at::QEngine::ONEDNN);
      const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
      run = [packed = aten_int8(w), op, &x] {
        torch::jit::Stack stack{x, packed, false};
        op.callBoxed(&stack);
        return stack.at(0).toTensor();
      };
      break;
    }
    case int8_packed:
      run = [p = dnn::PackedLinear::int8(w, genner::model::detail::int8_weight_max()), &x] { return p(x); };
      break;
  }
  for (auto _ : state) benchmark::DoNotOptimize(run());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(rows * in * out) * state.iterations(),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (const int64_t rows : {32, 992, 1024})
    for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{{512, 512}, {512, 2048}, {2048, 512}})
      b->Args({rows, in, out});
  b->ArgNames({"rows", "in", "out"})->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(0.5);
}

BENCHMARK_CAPTURE(BM_Projection, fp32, fp32)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Projection, bf16_aten, bf16_aten)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Projection, bf16_aligned, bf16_aligned)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Projection, bf16_packed, bf16_packed)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Projection, int8_aten, int8_aten)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Projection, int8_packed, int8_packed)->Apply(shapes);

/// scores = q k^T and out = softmax(scores) v on T5's [B, H, T, d_kv] views, then backward.
void BM_Attention(benchmark::State& state, bool strided) {
  const int64_t B = 16, H = 8, T = state.range(0), D = 64;
  const auto t = genner::core::use_threads(0, false, "bench");
  state.counters["openmp_threads"] = t.openmp;
  state.counters["openblas_threads"] = t.openblas;
  torch::manual_seed(0);
  auto view = [&] { return torch::randn({B, T, H * D}).view({B, T, H, D}).transpose(1, 2).requires_grad_(); };
  auto q = view(), k = view(), v = view();
  auto product = [strided](const torch::Tensor& a, const torch::Tensor& b) {
    return strided ? genner::core::matmul(a, b) : torch::matmul(a, b);
  };
  for (auto _ : state) {
    auto out = product(torch::softmax(product(q, k.transpose(2, 3)), -1), v);
    out.sum().backward();
    benchmark::DoNotOptimize(q.grad());
    q.mutable_grad().reset();
    k.mutable_grad().reset();
    v.mutable_grad().reset();
  }
}
BENCHMARK_CAPTURE(BM_Attention, aten, false)->ArgName("tokens")->Arg(30)->Arg(62)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Attention, strided, true)->ArgName("tokens")->Arg(30)->Arg(62)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return genner::bench::run_like_genner_programs(argc, argv); }
