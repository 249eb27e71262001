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

/// Decodes the code point starting at byte `i` of well-formed UTF-8 `s` and advances `i` past it.
[[nodiscard]] inline std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  const std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  std::uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (std::size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

/// Whether code point `cp` is a control character, a space or separator, or an invisible format
/// character (C0, DEL, C1, NBSP, the Unicode spaces, zero-width characters, U+2028/U+2029, BOM).
[[nodiscard]] inline bool is_nonprinting(std::uint32_t cp) {
  return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD || cp == 0x1680 || cp == 0x180E ||
         (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) ||
         cp == 0x3000 || cp == 0xFEFF;
}

/// The first non-printing code point of well-formed UTF-8 `s` (see is_nonprinting), or nullopt.
[[nodiscard]] inline std::optional<std::uint32_t> first_nonprinting(std::string_view s) {
  for (std::size_t i = 0; i < s.size();)
    if (const auto cp = next_code_point(s, i); is_nonprinting(cp)) return cp;
  return std::nullopt;
}

/// "U+000D" for a code point.
[[nodiscard]] inline std::string code_point_name(std::uint32_t cp) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string digits;
  for (; cp != 0 || digits.size() < 4; cp >>= 4) digits.insert(digits.begin(), hex[cp & 0xF]);
  return "U+" + digits;
}

/// `s` (valid UTF-8 or not) for an error message: every non-printing character is written as
/// <U+XXXX>, every ill-formed byte as <0xNN>, and text past `max_bytes` as "...".
[[nodiscard]] inline std::string printable(std::string_view s, std::size_t max_bytes = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (out.size() >= max_bytes) return out + "...";
    const auto bad = first_invalid_utf8(s.substr(i, 4));
    if (bad && *bad == 0) {
      static constexpr char hex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(s[i++]);
      out += std::string("<0x") + hex[b >> 4] + hex[b & 0xF] + ">";
      continue;
    }
    const std::size_t from = i;
    const auto cp = next_code_point(s, i);
    if (is_nonprinting(cp) && cp != ' ')
      out += "<" + code_point_name(cp) + ">";
    else
      out.append(s.substr(from, i - from));
  }
  return out;
}

/// True when `text` starts with the UTF-8 byte-order mark EF BB BF.
[[nodiscard]] inline bool has_utf8_bom(std::string_view text) { return text.substr(0, 3) == "\xEF\xBB\xBF"; }

}  // namespace genner::core
