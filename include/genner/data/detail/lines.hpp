// genner/data/detail/lines.hpp: file reading and splitting helpers for the loaders (do not rely on this).
#pragma once

#include <genner/core/error.hpp>
#include <genner/core/utf8.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace genner::data::detail {

/// Reads a whole file as bytes; throws when it is missing, unreadable or empty.
inline std::string read_text(const std::filesystem::path& file, const char* who) {
  GENNER_CHECK(std::filesystem::is_regular_file(file), who, ": expected a data file at '", file.string(),
               "', found none.");
  std::ifstream in(file, std::ios::binary);
  GENNER_CHECK(in.good(), who, ": could not open '", file.string(), "'.");
  std::stringstream buffer;
  buffer << in.rdbuf();
  GENNER_CHECK(!in.bad(), who, ": could not read '", file.string(), "'.");
  return buffer.str();
}

/// Splits file text into lines (without '\n' or a trailing '\r'), after dropping a UTF-8
/// byte-order mark; every line must be valid UTF-8 (the error names file:line and column).
inline std::vector<std::string> text_lines(std::string_view text, const std::filesystem::path& file, const char* who) {
  GENNER_CHECK(!text.empty(), who, ": expected data in '", file.string(), "', found an empty file.");
  if (core::has_utf8_bom(text)) text.remove_prefix(3);
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::size_t end = nl;
    if (end > pos && text[end - 1] == '\r') --end;
    lines.emplace_back(text.substr(pos, end - pos));
    core::check_utf8(lines.back(), std::string(who) + ": " + file.string() + ":" + std::to_string(lines.size()));
    pos = nl + 1;
  }
  return lines;
}

/// Reads a whole file into lines (see text_lines); throws when missing or empty.
inline std::vector<std::string> read_lines(const std::filesystem::path& file, const char* who) {
  return text_lines(read_text(file, who), file, who);
}

/// Splits on any of `seps`, skipping empty fields.
inline std::vector<std::string_view> split_fields(std::string_view line, std::string_view seps) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && seps.find(line[i]) != std::string_view::npos) ++i;
    std::size_t j = i;
    while (j < line.size() && seps.find(line[j]) == std::string_view::npos) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

/// Parses a non-negative decimal integer; false when `s` is not one.
inline bool parse_int(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

inline std::string where(const std::filesystem::path& file, std::size_t line) {
  return file.string() + ":" + std::to_string(line);
}

}  // namespace genner::data::detail
