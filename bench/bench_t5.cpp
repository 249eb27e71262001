// T5 throughput on a t5-small-shaped model with random weights: encoder forward,
// decoder forward and a full forward+backward, batch 8, source 64, target 16; the
// forward+backward also under bf16 mixed precision (genner/model/precision.hpp), side by side.
#include <genner/model/precision.hpp>
#include <genner/t5.hpp>

#include <benchmark/benchmark.h>

namespace {

constexpr int64_t kBatch = 8, kSource = 64, kTarget = 16;

struct Workload {
  genner::t5::T5 model{genner::t5::T5Small::config()};
  torch::Tensor ids = torch::randint(2, 32000, {kBatch, kSource});
  torch::Tensor mask = torch::ones({kBatch, kSource}, torch::kLong);
  torch::Tensor labels = torch::randint(2, 32000, {kBatch, kTarget});
  Workload() { model->eval(); }
  static Workload& get() {
    static Workload w;
    return w;
  }
};

/// Multiply-add FLOPs (2 per MAC) of the forward pass, from the shapes alone.
double encoder_flops(const genner::t5::T5Config& c) {
  const double inner = c.num_heads * c.d_kv;
  const double per_token = 4 * 2 * c.d_model * inner + 2 * 2 * kSource * inner +
                           (c.feed_forward == genner::t5::FeedForward::relu ? 2 : 3) * 2 * c.d_model * c.d_ff;
  return per_token * kBatch * kSource * c.num_layers;
}
double decoder_flops(const genner::t5::T5Config& c) {
  const double inner = c.num_heads * c.d_kv;
  const double ff = (c.feed_forward == genner::t5::FeedForward::relu ? 2 : 3) * 2 * c.d_model * c.d_ff;
  const double per_target = 4 * 2 * c.d_model * inner + 2 * 2 * kTarget * inner    // self-attention
                            + 2 * 2 * c.d_model * inner + 2 * 2 * kSource * inner  // cross q, o and scores
                            + ff;
  const double cross_kv = 2 * 2 * c.d_model * inner * kSource;  // per sequence
  return (per_target * kTarget + cross_kv) * kBatch * c.num_decoder_layers +
         2.0 * c.d_model * c.vocab_size * kBatch * kTarget;
}

void report(benchmark::State& state, double tokens, double flops) {
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_EncoderForward(benchmark::State& state) {
  auto& w = Workload::get();
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(w.model->encode(w.ids, w.mask).last_hidden_state);
  report(state, kBatch * kSource, encoder_flops(w.model->config()));
}

void BM_DecoderForward(benchmark::State& state) {
  auto& w = Workload::get();
  torch::NoGradGuard no_grad;
  auto enc = w.model->encode(w.ids, w.mask).last_hidden_state;
  auto dec_in = w.model->shift_right(w.labels);
  for (auto _ : state)
    benchmark::DoNotOptimize(w.model->lm_logits(w.model->decode(dec_in, enc, w.mask).last_hidden_state));
  report(state, kBatch * kTarget, decoder_flops(w.model->config()));
}

/// state.range(0): 0 fp32, 1 bf16 mixed precision (autocast forward, fp32 weights and loss).
void BM_ForwardBackward(benchmark::State& state) {
  auto& w = Workload::get();
  const auto precision = static_cast<genner::model::Precision>(state.range(0));
  genner::model::require_precision(precision, torch::kCPU, /*training=*/true);
  w.model->train();
  for (auto _ : state) {
    w.model->zero_grad();
    genner::t5::T5Impl::Output out;
    {
      genner::model::Autocast autocast(precision);
      out = w.model->forward(w.ids, w.mask, w.labels);
    }
    out.loss.to(torch::kFloat).backward();
  }
  w.model->eval();
  report(state, kBatch * (kSource + kTarget),
         3 * (encoder_flops(w.model->config()) + decoder_flops(w.model->config())));
}

}  // namespace

BENCHMARK(BM_EncoderForward)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_DecoderForward)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_ForwardBackward)
    ->ArgName("bf16")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();
// The same pair in process CPU time, for shared machines (OpenBLAS's own threads included).
BENCHMARK(BM_ForwardBackward)
    ->ArgName("bf16")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->MeasureProcessCPUTime();
BENCHMARK_MAIN();
