// Benchmark: load, tokenize and encode all of CoNLL-2003 train with the real T5 spiece.model
// (target: under 1 s). Skips with a message when the data or model is absent.
#include <genner/data.hpp>
#include <genner/text.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

namespace {

std::filesystem::path data_root() {
  if (const char* env = std::getenv("GENNER_DATA")) return env;
  return std::filesystem::path(GENNER_SOURCE_DIR) / ".." / "shared" / "data";
}
std::filesystem::path spiece() {
  if (const char* env = std::getenv("GENNER_SPIECE")) return env;
  return std::filesystem::path(GENNER_SOURCE_DIR) / ".." / "shared" / "models" / "t5-spiece" / "spiece.model";
}

void BM_Conll2003TrainLoadTokenizeEncode(benchmark::State& state) {
  const auto file = data_root() / "conll2003" / "train.txt";
  if (!std::filesystem::exists(file) || !std::filesystem::exists(spiece())) {
    state.SkipWithError("CoNLL-2003 or spiece.model not found (set GENNER_DATA / GENNER_SPIECE)");
    return;
  }
  std::size_t tokens = 0;
  for (auto _ : state) {
    auto tokenizer = genner::text::Tokenizer::load(spiece());  // fresh cache each time: cold numbers
    const auto data = genner::data::load_conll(file);
    const auto labels = genner::data::LabelSpace::make(data.types, tokenizer);
    const auto examples = genner::data::encode_dataset(data, tokenizer, labels, genner::data::TargetType::word);
    tokens = 0;
    for (const auto& e : examples) tokens += e.src_ids.size();
    benchmark::DoNotOptimize(examples.data());
  }
  state.counters["sentences"] = 14041;
  state.counters["source_tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_Conll2003TrainLoadTokenizeEncode)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
