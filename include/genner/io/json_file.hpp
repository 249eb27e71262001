// genner/io/json_file.hpp: reading a whole JSON file with errors that name it — the one reader
// behind config.json, sharded-checkpoint indexes, run records, configs and training state.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <genner/core/error.hpp>

namespace genner::io {

/// Parses `path`; a file that cannot be opened fails with `path: <missing>`, one that is not
/// JSON with the parser's message.
inline nlohmann::json read_json_file(const std::filesystem::path& path,
                                     const std::string& missing = "file not found or unreadable") {
  std::ifstream in(path);
  GENNER_CHECK(in.good(), path.string(), ": ", missing);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    fail(path.string(), ": expected valid JSON, found a syntax error (", e.what(), ")");
  }
}

}  // namespace genner::io
