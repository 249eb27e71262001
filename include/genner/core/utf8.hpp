// genner/core/utf8.hpp: UTF-8 validation for text that reaches tokenizers and JSON writers.
// Input files are validated when they are read, so an error names the file and line; JSON
// output additionally never sees invalid bytes (see json_safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <genner/core/error.hpp>

namespace genner::core {

/// Byte offset of the first byte that does not start a well-formed UTF-8 sequence (overlong
/// forms, surrogates and code points above U+10FFFF count as ill-formed), or nullopt.
[[nodiscard]] inline std::optional<std::size_t> first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    else
      return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return std::nullopt;
}

/// Throws genner::Error "<where>: expected UTF-8 text, found byte 0xNN at column C" when `s`
/// is not valid UTF-8 (column counts bytes from 1).
inline void check_utf8(std::string_view s, const std::string& where) {
  if (const auto bad = first_invalid_utf8(s)) {
    static const char* hex = "0123456789ABCDEF";
    const auto b = static_cast<unsigned char>(s[*bad]);
    fail(where, ": expected UTF-8 text, found the byte 0x", hex[b >> 4], hex[b & 15], " at column ", *bad + 1,
         " (re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8)");
  }
}

/// `s` with every ill-formed byte replaced by U+FFFD: what JSON writers get, so that output
/// can never abort on text that slipped past validation.
[[nodiscard]] inline std::string json_safe(std::string_view s) {
  if (!first_invalid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  while (!s.empty()) {
    const auto bad = first_invalid_utf8(s);
    if (!bad) {
      out.append(s);
      break;
    }
    out.append(s.substr(0, *bad));
    out.append("\xEF\xBF\xBD");
    s.remove_prefix(*bad + 1);
  }
  return out;
}

/// True when `text` starts with the UTF-8 byte-order mark EF BB BF.
[[nodiscard]] inline bool has_utf8_bom(std::string_view text) { return text.substr(0, 3) == "\xEF\xBB\xBF"; }

}  // namespace genner::core
