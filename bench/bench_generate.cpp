// Benchmark of genner/generate: greedy and beam-4 decoding of a t5-small-shaped model (random
// weights), batch 8, source 64, exactly 16 new tokens, with the decoder cache and without it
// (re-running the decoder on the whole prefix each step). Run with OMP_WAIT_POLICY=PASSIVE.
#include <genner/generate.hpp>
#include <genner/t5.hpp>

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace {

constexpr int64_t kBatch = 8, kSource = 64, kNewTokens = 16;

struct Workload {
  genner::t5::T5 model{nullptr};
  torch::Tensor ids, mask;
  Workload() {
    // Intra-op threads: $GENNER_THREADS, else one per core (as PyTorch from Python does; this
    // LibTorch build would otherwise start with one).
    const char* env = std::getenv("GENNER_THREADS");
    at::set_num_threads(env ? std::atoi(env) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    torch::manual_seed(0);
    model = genner::t5::T5(genner::t5::T5Small::config());
    model->eval();
    ids = torch::randint(2, 32000, {kBatch, kSource}, torch::kLong);
    ids.select(1, kSource - 1).fill_(1);  // </s> last
    mask = torch::ones({kBatch, kSource}, torch::kLong);
  }
};

Workload& workload() {
  static Workload w;
  return w;
}

void generate(benchmark::State& state, int64_t beams, bool use_cache) {
  auto& w = workload();
  torch::NoGradGuard no_grad;
  // min length = max length: the end token is never chosen, every run takes 16 steps
  const auto options = genner::generate::SearchOptions{}.beams(beams).max_length(kNewTokens).min_length(kNewTokens);
  for (auto _ : state) {
    auto out = genner::generate::generate_lm(w.model, w.ids, w.mask, options, {}, use_cache);
    benchmark::DoNotOptimize(out.sequences.data_ptr());
    if (out.sequences.size(1) != kNewTokens + 1) state.SkipWithError("expected 16 new tokens");
  }
  state.counters["threads"] = at::get_num_threads();
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(kBatch * kNewTokens) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

/// The encoder alone: the floor under every decoding figure above it.
void encode_only(benchmark::State& state) {
  auto& w = workload();
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(w.model->encode(w.ids, w.mask).last_hidden_state.data_ptr());
  state.counters["threads"] = at::get_num_threads();
}

}  // namespace

BENCHMARK(encode_only)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(generate, greedy_cache, 1, true)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK_CAPTURE(generate, greedy_recompute, 1, false)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK_CAPTURE(generate, beam4_cache, 4, true)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK_CAPTURE(generate, beam4_recompute, 4, false)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

BENCHMARK_MAIN();
