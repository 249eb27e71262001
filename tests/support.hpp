// Shared helpers for genner's tests: where fixtures and real data live.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace genner::test {

/// Root of the Hugging Face reference fixtures: $GENNER_FIXTURES or ../shared/fixtures/t5.
inline std::filesystem::path fixtures_root() {
  if (const char* env = std::getenv("GENNER_FIXTURES")) return env;
  return std::filesystem::path(GENNER_SOURCE_DIR) / ".." / "shared" / "fixtures" / "t5";
}

/// Root of the real data sets: $GENNER_DATA or ../shared/data.
inline std::filesystem::path data_root() {
  if (const char* env = std::getenv("GENNER_DATA")) return env;
  return std::filesystem::path(GENNER_SOURCE_DIR) / ".." / "shared" / "data";
}

/// The real T5 SentencePiece model, if present.
inline std::filesystem::path t5_spiece_model() {
  if (const char* env = std::getenv("GENNER_SPIECE")) return env;
  return std::filesystem::path(GENNER_SOURCE_DIR) / ".." / "shared" / "models" / "t5-spiece" / "spiece.model";
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

/// A fresh temporary directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "genner-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::error_code ec; std::filesystem::remove_all(path, ec); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace genner::test
