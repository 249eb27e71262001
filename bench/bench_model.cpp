// Training-step cost of each tuning mode on a t5-small-shaped NER model: one
// forward + backward + AdamW step at batch 8, source 64, target 16. Counters:
// trainable parameters, bytes held by parameters + gradients + optimizer state,
// and the process's peak resident set (getrusage) after the policy ran. LibTorch
// runs one intra-op thread here, so CPU time is the stable figure on a loaded
// machine; run one policy per process (--benchmark_filter) for a per-policy peak RSS.
#include <genner/model.hpp>

#include <benchmark/benchmark.h>

#include "support.hpp"
#include <sys/resource.h>

namespace {

namespace gm = genner::model;
using Small = genner::t5::T5Small;

constexpr int64_t kBatch = 8, kSrc = 64, kTgt = 16, kTypes = 4;

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

template <class E>
void BM_TrainStep(benchmark::State& state) {
  torch::manual_seed(0);
  gm::NerModel<E> model(gm::NerOptions{}.types(kTypes));
  genner::bench::time_train_step(state, *model, kBatch, kSrc, kTgt, kTypes, 32000);
  state.counters["peak_rss_MB"] = peak_rss_mb();
}

using Full = gm::FullFineTuning<Small>;
using Adapters = gm::AdapterTuning<Small>;  // size 192 in blocks {0, 1, 3, 5}, + layer norms
using Prompt = gm::PromptTuning<Small, 100>;
using AdapterPrompt = gm::AdapterPromptTuning<Small, gm::auto_adapter_size, 100>;
using Lora = gm::LoraTuning<Small, 8>;
using Embeddings = gm::EmbeddingTuning<Small>;

}  // namespace

BENCHMARK_TEMPLATE(BM_TrainStep, Full)->Name("train_step/full")->Unit(benchmark::kMillisecond)->Iterations(4);
BENCHMARK_TEMPLATE(BM_TrainStep, Adapters)->Name("train_step/adapters")->Unit(benchmark::kMillisecond)->Iterations(4);
BENCHMARK_TEMPLATE(BM_TrainStep, Prompt)->Name("train_step/prompt")->Unit(benchmark::kMillisecond)->Iterations(4);
BENCHMARK_TEMPLATE(BM_TrainStep, AdapterPrompt)
    ->Name("train_step/adapters+prompt")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(4);
BENCHMARK_TEMPLATE(BM_TrainStep, Lora)->Name("train_step/lora")->Unit(benchmark::kMillisecond)->Iterations(4);
BENCHMARK_TEMPLATE(BM_TrainStep, Embeddings)
    ->Name("train_step/embeddings")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(4);

BENCHMARK_MAIN();
