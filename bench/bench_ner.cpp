// NER prediction and training on a t5-small-shaped NER model with random weights, per precision:
//  - predict: greedy decoding of the first 256 CoNLL-2003 test sentences in batches of 32, at most
//    10 + floor(0.6 * source length) new indices per sentence, unconstrained; sentences/s. Variants
//    take the sentences in file order or sorted by length, and keep finished rows in the batch or
//    drop them, so that each change's share shows.
//  - train_step: forward, loss, backward and AdamW at batch 16 (the first 16 test sentences with
//    their gold targets): the original's two timed modes (seed_finetune, seed_adapter: its
//    experiments as genner::compat reproduces them) and genner's published full fine-tuning and
//    adapters.
// The predicting model is the original's architecture (compat::SeedFinetune); with
// $GENNER_ORIGINAL_BENCH set to the folder the original's seed_bench.py writes
// (out/seed/bench/small: state_dict.safetensors, config.json), it decodes the very weights the
// original timed (scripts/bench_original.sh runs both). Training time does not depend on the weights.
// Threads: genner's own policy (genner/core/threading.hpp) for each benchmark's precision, or
// OMP_NUM_THREADS / OPENBLAS_NUM_THREADS when set; the counters name what ran. Like genner's
// programs, the benchmark restarts itself under core::preferred_environment's variables the caller
// did not set, and runs on tcmalloc (genner_use_tcmalloc).
// GENNER_PROFILE=DIR: each training benchmark also writes a LibTorch profiler trace of one step
// there, each prediction benchmark one of a whole prediction.
// Data: $GENNER_DATA/conll2003/test.txt (default ../shared/data) and the T5 spiece.model in
// $GENNER_SPIECE (default ../shared/models/t5-spiece/spiece.model).
#include <genner/compat.hpp>
#include <genner/genner.hpp>

#include "support.hpp"

#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <numeric>

namespace {

namespace fs = std::filesystem;
namespace gm = genner::model;
using genner::model::Precision;
using Small = genner::t5::T5Small;
using Full = gm::FullFineTuning<Small>;
using Adapters = gm::AdapterTuning<Small>;
using SeedFinetune = genner::compat::SeedFinetune<Small>;
using SeedAdapter = genner::compat::SeedAdapter<Small, 16>;
/// The name a profiler trace of experiment E is written under.
template <class E> constexpr const char* label = nullptr;
template <> constexpr const char* label<Full> = "full";
template <> constexpr const char* label<Adapters> = "adapters";
template <> constexpr const char* label<SeedFinetune> = "seed_finetune";
template <> constexpr const char* label<SeedAdapter> = "seed_adapter";

constexpr size_t kSentences = 256, kPredictBatch = 32, kTrainBatch = 16;

fs::path data_file() {
  const char* env = std::getenv("GENNER_DATA");
  return fs::path(env ? env : GENNER_SOURCE_DIR "/../shared/data") / "conll2003" / "test.txt";
}
fs::path spiece_file() {
  const char* env = std::getenv("GENNER_SPIECE");
  return env ? fs::path(env) : fs::path(GENNER_SOURCE_DIR "/../shared/models/t5-spiece/spiece.model");
}

struct Corpus {
  genner::data::LabelSpace labels;
  std::vector<genner::data::Example> examples;  ///< the first kSentences test sentences

  static Corpus& get() {
    static Corpus c = [] {
      auto tokenizer = genner::text::Tokenizer::load(spiece_file());
      auto test = genner::data::load_conll(data_file());
      GENNER_CHECK(test.sentences.size() >= kSentences, data_file().string(), ": expected at least ", kSentences,
                   " sentences, found ", test.sentences.size());
      test.sentences.resize(kSentences);
      Corpus out;
      out.labels = genner::data::LabelSpace::make({"PER", "LOC", "ORG", "MISC"}, tokenizer);
      out.examples = genner::data::encode_dataset(test, tokenizer, out.labels, genner::data::TargetType::word);
      return out;
    }();
    return c;
  }
};

/// The original's bench folder ($GENNER_ORIGINAL_BENCH), or empty.
fs::path original_weights() {
  const char* env = std::getenv("GENNER_ORIGINAL_BENCH");
  return env && *env ? fs::path(env) : fs::path();
}

/// Sizes the thread pools for `p` as genner's programs do; the counters name the result, and the
/// allocator (1: tcmalloc, linked by genner_use_tcmalloc).
void use_threads(benchmark::State& state, Precision p) {
  const auto t = genner::core::use_threads(0, p != Precision::fp32, "bench");
  state.counters["openmp_threads"] = t.openmp;
  state.counters["openblas_threads"] = t.openblas;
  state.counters["tcmalloc"] = ::dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr ? 1 : 0;
}

/// The same weights for every precision: the original's (GENNER_ORIGINAL_BENCH, SeedCompat
/// experiments only) or random ones (seeded); converted for inference unless for training.
template <class E>
gm::NerModel<E> make_model(Precision p, bool for_training) {
  torch::manual_seed(1234);
  const auto dir = original_weights();
  const bool original = !dir.empty() && E::spec().seed_compat && !for_training;
  auto options = gm::NerOptions{}.types(4);
  if (original) options.with_config(genner::t5::T5Config::from_file(dir / "config.json"));
  gm::NerModel<E> model(options);
  if (original) (void)genner::compat::load_seed_state_dict(*model, dir / "state_dict.safetensors");
  if (for_training) {
    gm::require_precision(p, torch::kCPU, true);
  } else {
    model->eval();
    gm::prepare_inference(*model, p);
  }
  return model;
}

/// state.range(0): precision (0 fp32, 1 bf16, 2 int8); range(1): 1 = sort by length; range(2): 1 = drop
/// finished rows.
void BM_Predict(benchmark::State& state) try {
  const auto p = static_cast<Precision>(state.range(0));
  const bool sorted = state.range(1) != 0, drop = state.range(2) != 0;
  use_threads(state, p);
  auto& corpus = Corpus::get();
  auto model = make_model<SeedFinetune>(p, false);
  genner::generate::PointerDecodeOptions decode;
  decode.search.max_length(10, 0.6);
  decode.search.drop_finished = drop;
  std::vector<size_t> order(corpus.examples.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (sorted)
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return corpus.examples[a].src_ids.size() < corpus.examples[b].src_ids.size();
    });
  torch::NoGradGuard no_grad;
  int64_t generated = 0, at_limit = 0, padded_rows_steps = 0;
  auto predict = [&] {
    generated = at_limit = padded_rows_steps = 0;
    for (size_t begin = 0; begin < order.size(); begin += kPredictBatch) {
      std::span<const size_t> idx(order.data() + begin, std::min(kPredictBatch, order.size() - begin));
      auto batch = genner::data::collate(corpus.examples, idx);
      std::vector<std::vector<int64_t>> ws, we;
      for (auto i : idx) {
        ws.push_back(corpus.examples[i].word_start);
        we.push_back(corpus.examples[i].word_end);
      }
      auto out =
          genner::generate::decode_entities(*model, batch.src_ids, batch.src_mask, ws, we, corpus.labels, decode);
      const int64_t T = out.indices.size(1);
      padded_rows_steps += T * static_cast<int64_t>(idx.size());
      auto lengths = batch.src_mask.sum(1);
      for (int64_t b = 0; b < out.indices.size(0); ++b) {
        const int64_t limit = 10 + static_cast<int64_t>(0.6 * lengths[b].item<double>());
        int64_t n = 0;
        while (n < T && out.indices[b][n].item<int64_t>() != 0) ++n;
        n = std::min(n + 1, limit);
        generated += n;
        at_limit += n == limit;
      }
    }
    benchmark::DoNotOptimize(generated);
  };
  for (auto _ : state) predict();
  // GENNER_PROFILE=DIR: one more prediction under LibTorch's profiler, as the training benchmarks do.
  if (const char* dir = std::getenv("GENNER_PROFILE")) {
    const std::string name = "predict_precision" + std::to_string(state.range(0)) + "_sorted" +
                             std::to_string(state.range(1)) + "_drop" + std::to_string(state.range(2));
    torch::autograd::profiler::RecordProfile profile(std::string(dir) + "/" + name + ".json");
    predict();
  }
  state.counters["sentences/s"] =
      benchmark::Counter(static_cast<double>(order.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["rows_at_limit_%"] = 100.0 * static_cast<double>(at_limit) / static_cast<double>(order.size());
  state.counters["row_steps"] = static_cast<double>(generated);
  state.counters["batch_row_steps"] = static_cast<double>(padded_rows_steps);
  state.counters["original_weights"] = original_weights().empty() ? 0 : 1;
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

/// state.range(0): precision (0 fp32, 1 bf16).
template <class E>
void BM_TrainStep(benchmark::State& state) try {
  const auto p = static_cast<Precision>(state.range(0));
  use_threads(state, p);
  auto& corpus = Corpus::get();
  auto model = make_model<E>(p, true);
  model->train();
  auto opt = model->make_adamw(1e-4);
  std::vector<size_t> idx(kTrainBatch);
  std::iota(idx.begin(), idx.end(), size_t{0});
  auto batch = genner::data::collate(corpus.examples, idx);
  auto params = genner::train::optimizer_params(*opt);
  auto step = [&] {
    for (auto& t : params) t.mutable_grad().reset();  // as the Trainer does: gradients start undefined
    gm::NerOutput out;
    {
      gm::Autocast autocast(p);
      out = model->forward(batch.src_ids, batch.src_mask, batch.decoder_input_ids, batch.target);
    }
    out.loss.backward();
    opt->step();
  };
  // Two warm-up steps (the first allocates gradients and optimizer state), then the timed ones; each
  // step's wall time is kept, and their median reported beside the mean, as the original's
  // seed_bench.py reports its steps (two warm-up steps, the median of five).
  step();
  step();
  std::vector<double> wall;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    step();
    wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(wall.begin(), wall.end());
  state.counters["step_median_ms"] = wall.size() % 2 == 1 ? wall[wall.size() / 2]
                                                          : (wall[wall.size() / 2 - 1] + wall[wall.size() / 2]) / 2;
  // GENNER_PROFILE=DIR: one more step under LibTorch's profiler, its trace (chrome://tracing JSON,
  // one event per operator) written to DIR/train_step_<experiment>_precision<p>.json.
  if (const char* dir = std::getenv("GENNER_PROFILE")) {
    static_assert(label<E> != nullptr, "give the experiment a label for its profiler trace");
    const std::string name = std::string(label<E>) + "_precision" + std::to_string(state.range(0));
    torch::autograd::profiler::RecordProfile profile(std::string(dir) + "/train_step_" + name + ".json");
    step();
  }
  state.counters["src_tokens"] = static_cast<double>(batch.src_ids.size(1));
  state.counters["tgt_tokens"] = static_cast<double>(batch.target.size(1));
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

/// Every training-step benchmark: fp32 and bf16, five timed steps after two warm-up ones.
void train_step_runs(benchmark::internal::Benchmark* b) {
  b->ArgName("precision")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(5)->MeasureProcessCPUTime();
}

}  // namespace

// Prediction: file order with finished rows kept (as the original decodes), then genner's default
// (sorted by length, finished rows dropped) per precision, and each change left out one at a time. Process CPU time (OpenBLAS's own threads
// included) is the figure to read on a shared machine; with one thread it equals the wall time.
BENCHMARK(BM_Predict)
    ->ArgNames({"precision", "sorted", "drop"})
    ->Args({0, 0, 0})
    ->Args({0, 1, 1})
    ->Args({1, 1, 1})
    ->Args({2, 1, 1})
    ->Args({0, 1, 0})
    ->Args({0, 0, 1})
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->MeasureProcessCPUTime();
BENCHMARK_TEMPLATE(BM_TrainStep, SeedFinetune)->Name("train_step/seed_finetune")->Apply(train_step_runs);
BENCHMARK_TEMPLATE(BM_TrainStep, SeedAdapter)->Name("train_step/seed_adapter")->Apply(train_step_runs);
BENCHMARK_TEMPLATE(BM_TrainStep, Full)->Name("train_step/full")->Apply(train_step_runs);
BENCHMARK_TEMPLATE(BM_TrainStep, Adapters)->Name("train_step/adapters")->Apply(train_step_runs);

int main(int argc, char** argv) { return genner::bench::run_like_genner_programs(argc, argv); }
