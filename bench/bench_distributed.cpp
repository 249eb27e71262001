// Data-parallel scaling on this machine (CPU, Gloo on loopback): one training step (forward +
// backward + gradient all-reduce + AdamW) of the built-in default's model shape (d_model 128,
// d_ff 256, 2+2 layers, gated-gelu, 1100 pieces, 4 types) on a global batch of 32 sentences
// (source 40, target 12), run by 1 rank and by 2 ranks of 16 sentences each; and the bare
// all-reduce of 1, 4 and 16 MB between 2 ranks. Ranks are separate processes of this program
// (started like --nproc does), each with cores / ranks OpenBLAS threads.
//
// Reported per step: wall time (manual time = rank 0's mean step), tokens/s (source + target
// tokens of the global batch), allreduce_ms (time in the gradient all-reduce), allreduce_MB (data
// each rank sends into it) and allreduce_ms_per_MB. The 1-rank step runs without c10d (c10d:0)
// and through a one-rank process group (c10d:1), which prices c10d's own overhead.
// GENNER_BENCH_CUDA=1 (a CUDA build of LibTorch with NCCL): the model and batch on each rank's GPU
// (cuda:LOCAL_RANK) and NCCL instead of Gloo (scripts/gpu_distributed.sh).
#include <genner/model.hpp>
#include <genner/train/distributed.hpp>
#include <genner/train/optim.hpp>

#include <benchmark/benchmark.h>

#include "support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace gm = genner::model;
namespace dist = genner::train::dist;
using Scratch = gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>;

constexpr int64_t kGlobalBatch = 32, kSrc = 40, kTgt = 12, kTypes = 4, kVocab = 1100;
constexpr int kWarmup = 2, kSteps = 8;

char** g_argv = nullptr;

/// Worker: one rank's training steps; rank 0 writes "step_seconds reduce_seconds reduce_bytes".
int train_worker(const dist::LaunchEnv& env, const std::string& out, bool alone_with_c10d) {
  const bool cuda = std::getenv("GENNER_BENCH_CUDA") != nullptr;
  const auto device =
      cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank)) : torch::Device(torch::kCPU);
  auto group = dist::Group::connect(env, {cuda ? dist::parse_backend("nccl", true) : dist::Backend::gloo,
                                          std::chrono::seconds(120), alone_with_c10d});
  genner::t5::T5Config c;
  c.vocab_size = kVocab;
  c.d_model = 128;
  c.d_ff = 256;
  c.num_heads = 4;
  c.d_kv = 32;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  torch::manual_seed(0);
  gm::NerModel<Scratch> model(gm::NerOptions{}.types(kTypes).with_config(c).on({device}));
  model->train();
  auto opt = model->make_adamw(1e-4);
  const auto params = genner::train::optimizer_params(*opt);
  dist::GradientReducer reducer(group, params);
  const int64_t b = kGlobalBatch / env.world_size;
  torch::manual_seed(100 + env.rank);
  auto batch = genner::bench::random_batch(*model, b, kSrc, kTgt, kTypes, 1000);
  auto &src = batch.src, &mask = batch.mask, &dec_in = batch.dec_in, &target = batch.target;
  src = src.to(device), mask = mask.to(device), dec_in = dec_in.to(device), target = target.to(device);
  auto sync = [&] {
    if (cuda) (void)src.sum().item<int64_t>();  // waits for the device's queue
  };
  auto step = [&] {
    opt->zero_grad();
    auto loss = model->forward(src, mask, dec_in, target).loss * (1.0 / env.world_size);
    loss.backward();
    reducer.all_reduce_gradients();
    opt->step();
    sync();
  };
  for (int i = 0; i < kWarmup; ++i) step();
  group.barrier("bench start");
  const auto before = reducer.stats();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kSteps; ++i) step();
  group.barrier("bench end");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto after = reducer.stats();
  if (group.is_main())
    std::ofstream(out) << seconds / kSteps << " " << (after.seconds - before.seconds) / kSteps << " "
                       << reducer.bytes_per_reduce() << "\n";
  return 0;
}

/// Worker: `iters` all-reduces of `mb` MB; rank 0 writes the mean seconds per all-reduce.
int allreduce_worker(const dist::LaunchEnv& env, const std::string& out, int64_t mb) {
  auto group = dist::Group::connect(env, {dist::Backend::gloo, std::chrono::seconds(120)});
  auto t = torch::ones({mb * (1 << 20) / 4});
  group.all_reduce_sum(t, "warm-up");
  const int iters = 10;
  group.barrier("start");
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) group.all_reduce_sum(t, "all-reduce");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  if (group.is_main()) std::ofstream(out) << seconds << "\n";
  return 0;
}

/// Starts `ranks` processes of this program in worker `mode`; returns rank 0's numbers.
std::vector<double> run_ranks(int ranks, const std::string& mode, int64_t arg) {
  const std::string out = "/tmp/genner-bench-distributed-" + std::to_string(::getpid());
  ::setenv("GENNER_BENCH_WORKER", mode.c_str(), 1);
  ::setenv("GENNER_BENCH_OUT", out.c_str(), 1);
  ::setenv("GENNER_BENCH_ARG", std::to_string(arg).c_str(), 1);
  const int rc = dist::spawn_local_ranks(ranks, g_argv);
  ::unsetenv("GENNER_BENCH_WORKER");
  GENNER_CHECK(rc == 0, "bench_distributed: a worker rank failed with status ", rc);
  std::ifstream in(out);
  std::vector<double> v;
  for (double x; in >> x;) v.push_back(x);
  std::remove(out.c_str());
  GENNER_CHECK(!v.empty(), "bench_distributed: the workers wrote no result to ", out);
  return v;
}

/// Args: ranks, and whether a lone rank still goes through a c10d process group.
void BM_DataParallelStep(benchmark::State& state) {
  const int ranks = static_cast<int>(state.range(0));
  std::vector<double> r;
  for (auto _ : state) {
    r = run_ranks(ranks, "train", state.range(1));
    state.SetIterationTime(r[0]);
  }
  const double tokens = static_cast<double>(kGlobalBatch * (kSrc + kTgt));
  state.counters["tokens/s"] = tokens / r[0];
  state.counters["allreduce_ms"] = 1e3 * r[1];
  state.counters["allreduce_MB"] = r[2] / (1 << 20);
  state.counters["allreduce_ms_per_MB"] = r[1] > 0 ? 1e3 * r[1] / (r[2] / (1 << 20)) : 0.0;
  state.counters["allreduce_share"] = r[1] / r[0];
}
BENCHMARK(BM_DataParallelStep)
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({2, 1})
    ->ArgNames({"ranks", "c10d"})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_AllReduce2Ranks(benchmark::State& state) {
  const int64_t mb = state.range(0);
  std::vector<double> r;
  for (auto _ : state) {
    r = run_ranks(2, "allreduce", mb);
    state.SetIterationTime(r[0]);
  }
  state.counters["ms_per_MB"] = 1e3 * r[0] / static_cast<double>(mb);
  state.counters["GB/s"] = static_cast<double>(mb) / 1024.0 / r[0];
}
BENCHMARK(BM_AllReduce2Ranks)->Arg(1)->Arg(4)->Arg(16)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  g_argv = argv;
  if (const char* mode = std::getenv("GENNER_BENCH_WORKER")) {
    try {
      const auto env = dist::launch_env_from_environment();
      const std::string out = std::getenv("GENNER_BENCH_OUT");
      if (std::string(mode) == "train") return train_worker(env, out, std::atoll(std::getenv("GENNER_BENCH_ARG")) != 0);
      return allreduce_worker(env, out, std::atoll(std::getenv("GENNER_BENCH_ARG")));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_distributed worker: %s\n", e.what());
      return 2;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
