// libFuzzer target for every parser of untrusted input. One binary; the parser is chosen by
// GENNER_FUZZ_TARGET (safetensors, spiece, conll, nested, discontinuous, config, run_json).
// A parser may reject input only with genner::Error; any other exception, a crash or a
// sanitizer report is a finding (and then a regression case in tests/fuzz/regressions/).
#include <genner/app.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

std::string g_target;
std::filesystem::path g_file;  // scratch file for parsers that read from a path

void write_scratch(const std::string& bytes) {
  std::ofstream out(g_file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void run_one(const std::string& bytes) {
  namespace gd = genner::data;
  if (g_target == "conll") {
    (void)gd::parse_conll(bytes, "fuzz.conll", {gd::TagScheme::automatic, 64});
  } else if (g_target == "nested") {
    gd::NestedJsonOptions o;
    o.max_words = 16;
    o.length_guard = 64;
    (void)gd::parse_nested_json(bytes, "fuzz.jsonl", o);
  } else if (g_target == "discontinuous") {
    (void)gd::parse_discontinuous(bytes, "fuzz.txt", {64});
  } else if (g_target == "spiece") {
    const auto m = genner::text::UnigramModel::from_bytes(bytes, "fuzz.model");
    if (m.size() > 0) (void)m.encode_normalized(m.normalize("Fuzzing the unigram model: ünïcödé 123"));
  } else if (g_target == "safetensors") {
    write_scratch(bytes);
    genner::io::SafetensorsFile f(g_file);
    std::size_t bytes_read = 0;
    for (const auto& [name, e] : f.entries()) {
      if (e.end - e.begin > (1u << 20) || bytes_read > (4u << 20)) continue;  // bounded work per input
      bytes_read += e.end - e.begin;
      (void)f.load(name);
    }
  } else if (g_target == "config") {
    write_scratch(bytes);
    const auto file = genner::app::read_config_file(g_file);
    genner::app::RunConfig c;
    genner::app::apply_config_file(c, file);
    genner::app::check_consistency(c);
  } else if (g_target == "run_json") {
    write_scratch(bytes);
    (void)genner::recognize::RunRecord::read(g_file);
  } else {
    std::fprintf(stderr, "GENNER_FUZZ_TARGET: unknown parser '%s'\n", g_target.c_str());
    std::abort();
  }
}

}  // namespace

// GCC's trace-cmp also reports floating-point comparisons, which libFuzzer does not use.
extern "C" __attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_cmpf(float, float) {}
extern "C" __attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_cmpd(double, double) {}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* t = std::getenv("GENNER_FUZZ_TARGET");
  if (!t) {
    std::fprintf(stderr,
                 "set GENNER_FUZZ_TARGET to safetensors, spiece, conll, nested, discontinuous, config or run_json\n");
    std::exit(2);
  }
  g_target = t;
  const char* dir = std::getenv("TMPDIR");
  g_file = std::filesystem::path(dir ? dir : "/tmp") / ("genner-fuzz-" + g_target + "-" + std::to_string(::getpid()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run_one(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const genner::Error&) {
    // a clear rejection: the expected outcome for malformed input
  }
  return 0;
}
