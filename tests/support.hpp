// Shared helpers for genner's tests: where fixtures and real data live.
#pragma once
#include <torch/types.h>
#include <catch2/catch.hpp>

#include <genner/core/error.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace genner::test {

/// The source tree this test executable was built from: $GENNER_SOURCE_DIR, or the
/// CMAKE_HOME_DIRECTORY recorded in the CMakeCache.txt of the build folder above the executable
/// (a path read at run time, so that builds of several checkouts share compiler-cache entries).
inline const std::filesystem::path& source_dir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("GENNER_SOURCE_DIR")) return fs::path(env);
    std::error_code ec;
    for (fs::path p = fs::read_symlink("/proc/self/exe", ec).parent_path(); !ec && !p.empty(); p = p.parent_path()) {
      std::ifstream cache(p / "CMakeCache.txt");
      for (std::string line; cache && std::getline(cache, line);)
        if (line.rfind("CMAKE_HOME_DIRECTORY:INTERNAL=", 0) == 0) return fs::path(line.substr(line.find('=') + 1));
      if (p == p.root_path()) break;
    }
    throw std::runtime_error("tests: cannot find the source tree; set GENNER_SOURCE_DIR");
  }();
  return dir;
}

/// Root of the Hugging Face reference fixtures: $GENNER_FIXTURES or ../shared/fixtures/t5.
inline std::filesystem::path fixtures_root() {
  if (const char* env = std::getenv("GENNER_FIXTURES")) return env;
  return source_dir() / ".." / "shared" / "fixtures" / "t5";
}

/// Root of the original system's reference outputs: $GENNER_SEED_FIXTURES or ../shared/fixtures/seed.
inline std::filesystem::path seed_fixtures_root() {
  if (const char* env = std::getenv("GENNER_SEED_FIXTURES")) return env;
  return source_dir() / ".." / "shared" / "fixtures" / "seed";
}
/// Whether GENNER_SEED_FIXTURES is set (then an empty case folder is a failure, not a skip).
inline bool seed_fixtures_required() { return std::getenv("GENNER_SEED_FIXTURES") != nullptr; }

/// Root of the real data sets: $GENNER_DATA or ../shared/data.
inline std::filesystem::path data_root() {
  if (const char* env = std::getenv("GENNER_DATA")) return env;
  return source_dir() / ".." / "shared" / "data";
}

/// The real T5 SentencePiece model, if present.
inline std::filesystem::path t5_spiece_model() {
  if (const char* env = std::getenv("GENNER_SPIECE")) return env;
  return source_dir() / ".." / "shared" / "models" / "t5-spiece" / "spiece.model";
}

/// Every preset folder under the fixture root (those holding reference.safetensors), sorted.
inline std::vector<std::filesystem::path> fixture_folders() {
  std::vector<std::filesystem::path> out;
  const auto root = fixtures_root();
  if (!std::filesystem::is_directory(root)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(root))
    if (std::filesystem::exists(entry.path() / "reference.safetensors")) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// The project's parity rule for one tensor: max|ours - ref| / max(1, max|ref|), the maximum over
/// the reference's ordinary entries. Fill values (|ref| >= `fill`) and non-finite entries must be
/// reproduced exactly; when one is not, the result is +infinity. Pass: <= 1e-5.
inline double relative_difference(const torch::Tensor& ours, const torch::Tensor& ref, double fill = 1e30) {
  auto o = ours.detach().to(torch::kDouble).cpu();
  auto r = ref.detach().to(torch::kDouble).cpu();
  if (o.sizes() != r.sizes()) return std::numeric_limits<double>::infinity();
  if (r.numel() == 0) return 0.0;
  auto special = r.isfinite().logical_not().logical_or(r.abs() >= fill);
  if (special.any().item<bool>() && !torch::equal(o.masked_select(special), r.masked_select(special)))
    return std::numeric_limits<double>::infinity();
  auto ordinary = special.logical_not();
  if (!ordinary.any().item<bool>()) return 0.0;
  auto ro = r.masked_select(ordinary), oo = o.masked_select(ordinary);
  const double scale = std::max(1.0, ro.abs().max().item<double>());
  return (oo - ro).abs().max().item<double>() / scale;
}
inline constexpr double parity_tolerance = 1e-5;

/// A fresh temporary directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "genner-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// Writes `text` (bytes as given) to `dir/name` and returns the path.
inline std::filesystem::path write_file(const std::filesystem::path& dir, const std::string& name,
                                        const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}
inline std::filesystem::path write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  return write_file(dir.path, name, text);
}

/// Runs `f`, expecting genner::Error whose message contains every one of `parts`.
template <typename F>
void check_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected genner::Error");
  } catch (const genner::Error& e) {
    for (const auto& p : parts) CHECK_THAT(e.what(), Catch::Contains(p));
  }
}

}  // namespace genner::test
