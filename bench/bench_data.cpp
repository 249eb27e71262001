// Benchmarks: load, tokenize and encode all of CoNLL-2003 train with the real T5 spiece.model
// (target: under 1 s; skips with a message when the data or model is absent); and the
// pretokenizer on 1 MB of adversarial text, in three shapes that were quadratic once (quotes
// between sentence ends, one word of alternating periods and brackets, abbreviations), where
// linear work means about the time of 1 MB of ordinary text.
#include <genner/data.hpp>
#include <genner/text.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

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

// 1 MB of input built from `unit`, pretokenized with sentence splitting (as predict does).
void pretokenize_mb(benchmark::State& state, const std::string& unit, bool spaced) {
  std::string text;
  while (text.size() < (std::size_t{1} << 20)) text += unit + (spaced ? " " : "");
  genner::text::PretokenizeOptions o;
  o.split_sentences = true;
  std::size_t words = 0;
  for (auto _ : state) {
    const auto r = genner::text::pretokenize(text, o);
    words = r.words.size();
    benchmark::DoNotOptimize(r.words.data());
  }
  state.counters["words"] = static_cast<double>(words);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
void BM_PretokenizeOrdinary1MB(benchmark::State& state) {
  pretokenize_mb(state, "The European Commission said on Thursday it disagreed with German advice.", true);
}
void BM_PretokenizeQuotesNoSentenceEnd1MB(benchmark::State& state) { pretokenize_mb(state, "\" a. a", true); }
void BM_PretokenizeOneWordPeriodsBrackets1MB(benchmark::State& state) { pretokenize_mb(state, ".)", false); }
void BM_PretokenizeAbbreviations1MB(benchmark::State& state) { pretokenize_mb(state, "U.S.", false); }
BENCHMARK(BM_PretokenizeOrdinary1MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PretokenizeQuotesNoSentenceEnd1MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PretokenizeOneWordPeriodsBrackets1MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PretokenizeAbbreviations1MB)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
