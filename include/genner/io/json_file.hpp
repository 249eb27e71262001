// genner/io/json_file.hpp: reading a whole JSON file with errors that name it — the one reader
// behind config.json, sharded-checkpoint indexes, run records, configs and training state.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>

namespace genner::io {

/// Parses `path`; a file that cannot be opened fails with `path: <missing>`, one that is not
/// JSON (or nests deeper than kMaxJsonDepth) with the parser's message.
inline nlohmann::json read_json_file(const std::filesystem::path& path,
                                     const std::string& missing = "file not found or unreadable") {
  GENNER_CHECK(!std::filesystem::is_directory(path), path.string(), ": expected a JSON file, found a folder");
  std::ifstream in(path, std::ios::binary);
  GENNER_CHECK(in.good(), path.string(), ": ", missing);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  GENNER_CHECK(!in.bad(), path.string(), ": ", missing);
  return parse_json(text, path.string());
}

}  // namespace genner::io
