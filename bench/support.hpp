// Shared pieces of the benchmarks: a random NER batch in the model's own id space, the bytes a
// training step keeps (parameters, gradients, AdamW moments), and a main() that runs as genner's
// programs do.
#pragma once

#include <genner/core/threading.hpp>
#include <genner/model.hpp>

#include <benchmark/benchmark.h>

namespace genner::bench {

/// A teacher-forced batch: sources of random pieces ending with `</s>`, targets of random pointers
/// ending with end-of-sequence, and the decoder input the model builds from them.
struct RandomBatch {
  torch::Tensor src, mask, dec_in, target;
};

inline RandomBatch random_batch(const model::NerModelCore& model, int64_t batch, int64_t src_len, int64_t tgt_len,
                                int64_t types, int64_t vocab) {
  RandomBatch b;
  b.src = torch::randint(2, vocab, {batch, src_len}, torch::kLong);
  b.src.select(1, src_len - 1).fill_(1);
  b.mask = torch::ones_like(b.src);
  b.target = torch::randint(1 + types, 1 + types + src_len - 1, {batch, tgt_len}, torch::kLong);
  b.target.select(1, tgt_len - 1).fill_(0);
  auto tokens = model.index_to_token(b.target, b.src);
  b.dec_in = torch::zeros_like(tokens);
  b.dec_in.narrow(1, 1, tgt_len - 1).copy_(tokens.narrow(1, 0, tgt_len - 1));
  return b;
}

/// Bytes held by the model's parameters, their gradients and the optimizer's moments.
inline double training_megabytes(const model::NerModelCore& model, torch::optim::AdamW& opt) {
  int64_t bytes = 0;
  for (const auto& p : model.parameters()) {
    bytes += p.nbytes();
    if (p.grad().defined()) bytes += p.grad().nbytes();
  }
  for (const auto& [key, s] : opt.state()) {
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*s);
    bytes += st.exp_avg().nbytes() + st.exp_avg_sq().nbytes();
  }
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

/// Times one training step (forward, backward, AdamW) of `model` on a random batch of
/// batch x src_len sources and tgt_len targets, after one warm-up step that allocates gradients
/// and optimizer state; sets the counters `trainable` and `tensor_MB`.
inline void time_train_step(benchmark::State& state, model::NerModelCore& model, int64_t batch, int64_t src_len,
                            int64_t tgt_len, int64_t types, int64_t vocab) {
  model.train();
  auto opt = model.make_adamw(1e-4);
  const auto b = random_batch(model, batch, src_len, tgt_len, types, vocab);
  auto step = [&] {
    opt->zero_grad();
    model.forward(b.src, b.mask, b.dec_in, b.target).loss.backward();
    opt->step();
  };
  step();
  for (auto _ : state) step();
  state.counters["trainable"] = static_cast<double>(model.count_trainable());
  state.counters["tensor_MB"] = training_megabytes(model, *opt);
}

/// The body of main() for a Google Benchmark executable that runs as genner's programs do: restarted
/// under core::preferred_environment's variables the caller did not set, then every benchmark the
/// command line selects; unknown arguments are refused.
inline int run_like_genner_programs(int argc, char** argv) {
  core::prefer_passive_openmp(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace genner::bench
