// genner/text/pretokenize.hpp: raw text to words the way the NER corpora are tokenized
// (CoNLL / Penn Treebank style), keeping each word's byte offsets into the original text,
// with optional sentence splitting. Words are always exact substrings of the input, so
// `text.substr(begin, end - begin)` is the word (quotes are not rewritten to `` and '').
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>

namespace genner::text {

/// Settings of pretokenize().
struct PretokenizeOptions {
  /// The text is already tokenized: words are the whitespace-separated chunks, untouched.
  bool pretokenized = false;
  /// Split into sentences (after `.`, `!`, `?`, `...` followed by an upper-case letter, a digit or an
  /// opening quote / bracket, and at blank lines); otherwise the whole text is one sentence.
  bool split_sentences = false;
};

/// A word of the input: bytes [begin, end) of the original text.
struct WordSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
  friend bool operator==(const WordSpan&, const WordSpan&) = default;
};

/// The words of one text and, when asked for, its sentences (word ranges [first, last)).
struct Pretokenized {
  std::vector<std::string> words;                              ///< words[i] == text.substr(spans[i].begin, ...)
  std::vector<WordSpan> spans;                                 ///< byte offsets of each word
  std::vector<std::pair<std::size_t, std::size_t>> sentences;  ///< word ranges; one range without splitting
};

namespace detail {

/// Length of the UTF-8 sequence starting at text[i], or 0 when it is malformed.
inline std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0)
    n = 2, cp = b0 & 0x1F;
  else if ((b0 & 0xF0) == 0xE0)
    n = 3, cp = b0 & 0x0F;
  else if ((b0 & 0xF8) == 0xF0)
    n = 4, cp = b0 & 0x07;
  else
    return 0;
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  if (cp > 0x10FFFF) return 0;
  return n;
}

/// The code point at text[i] (text is valid UTF-8) and its length.
inline std::pair<std::uint32_t, std::size_t> code_point_at(std::string_view text, std::size_t i) {
  const auto n = utf8_length(text, i);
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (n == 1) return {b0, 1};
  std::uint32_t cp = n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  return {cp, n};
}

inline bool is_space(std::uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

/// Characters that are always words of their own: brackets, double quotes, ; ! ?
inline bool is_hard_punct(std::uint32_t cp) {
  switch (cp) {
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case '"':
    case ';':
    case '!':
    case '?':
    case 0x201C:
    case 0x201D:
    case 0x201E:
    case 0xAB:
    case 0xBB:  // “ ” „ « »
      return true;
    default: return false;
  }
}

/// Peeled off the front of a word: single quotes, backquotes, currency and number signs.
inline bool is_leading_punct(std::uint32_t cp) {
  switch (cp) {
    case '\'':
    case '`':
    case '$':
    case '#':
    case 0x2018:
    case 0x2019:
    case 0xA3:
    case 0x20AC:
    case 0xA5:
    case '<':
    case '*': return true;
    default: return false;
  }
}

/// Peeled off the end of a word (`.` has its own rule for abbreviations).
inline bool is_trailing_punct(std::uint32_t cp) {
  switch (cp) {
    case ',':
    case ':':
    case '\'':
    case '%':
    case 0x2019:
    case '>':
    case '*': return true;
    default: return false;
  }
}

inline bool ascii_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
inline bool ascii_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

inline std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Words whose final period is part of the word.
inline bool is_abbreviation(std::string_view core) {
  if (core.empty()) return false;
  // U.S. e.g. a.m.: letters with inner periods (3.5 at a sentence end is a number and a period)
  if (core.find('.') != std::string_view::npos)
    return std::all_of(core.begin(), core.end(), [](char c) { return c == '.' || ascii_alpha(c); });
  if (core.size() == 1) return std::isupper(static_cast<unsigned char>(core[0])) != 0;  // initials: J. Smith
  static constexpr std::string_view known[] = {
      "mr",  "mrs", "ms",  "dr",  "prof", "st",  "jr",  "sr",   "inc", "ltd",  "corp", "co",     "vs",
      "etc", "jan", "feb", "mar", "apr",  "jun", "jul", "aug",  "sep", "sept", "oct",  "nov",    "dec",
      "gen", "gov", "sen", "rep", "col",  "lt",  "sgt", "capt", "mt",  "ft",   "cf",   "approx", "dept"};
  const auto l = lower_ascii(core);
  return std::find(std::begin(known), std::end(known), l) != std::end(known);
}

/// A clitic written as its own word ('s, n't, ...): never split further.
inline bool is_clitic(std::string_view w) {
  const auto l = lower_ascii(w);
  for (std::string_view apos : {std::string_view("'"), std::string_view("\xE2\x80\x99")}) {
    if (l == "n" + std::string(apos) + "t") return true;
    for (std::string_view c : {"s", "re", "ve", "ll", "d", "m"})
      if (l == std::string(apos) + std::string(c)) return true;
  }
  return false;
}

/// URL or e-mail address: kept whole (apart from punctuation that ends a sentence or clause).
inline bool is_url_or_email(std::string_view w) {
  const auto l = lower_ascii(w.substr(0, std::min<std::size_t>(w.size(), 8)));
  if (l.starts_with("http://") || l.starts_with("https://") || l.starts_with("ftp://") || l.starts_with("www."))
    return w.size() > 4;
  const auto at = w.find('@');
  if (at == std::string_view::npos || at == 0 || w.find('@', at + 1) != std::string_view::npos) return false;
  const auto dot = w.find('.', at + 2);
  return dot != std::string_view::npos && dot + 1 < w.size();
}

/// A URL or e-mail address in the whitespace-free chunk [b, e) of `text`: opening punctuation before it
/// and closing punctuation after it become one-byte words, the address one word, all appended to `out`.
/// Returns false, appending nothing, when the chunk holds no URL or address.
inline bool split_url_chunk(std::string_view text, std::size_t b, std::size_t e, std::vector<WordSpan>& out) {
  std::size_t s = b;
  while (s < e && (text[s] == '(' || text[s] == '"' || text[s] == '<' || text[s] == '[' || text[s] == '\'')) ++s;
  std::size_t t = e;
  while (t > s && std::string_view(".,;:!?)]}>\"'").find(text[t - 1]) != std::string_view::npos) --t;
  if (t > s && is_url_or_email(text.substr(s, t - s))) {
    for (std::size_t k = b; k < s; ++k) out.push_back({k, k + 1});
    out.push_back({s, t});
    for (std::size_t k = t; k < e; ++k) out.push_back({k, k + 1});
    return true;
  }
  return false;
}

/// The chunk [b, e) of `text` cut at hard punctuation and at commas not between digits (1,000):
/// each such mark is a piece of its own, and so is each stretch between them.
inline std::vector<WordSpan> punct_pieces(std::string_view text, std::size_t b, std::size_t e) {
  std::vector<WordSpan> pieces;
  std::size_t start = b;
  for (std::size_t i = b; i < e;) {
    const auto [cp, n] = code_point_at(text, i);
    const bool digit_comma = cp == ',' && i > b && i + 1 < e && ascii_digit(text[i - 1]) && ascii_digit(text[i + 1]);
    if (is_hard_punct(cp) || (cp == ',' && !digit_comma)) {
      if (i > start) pieces.push_back({start, i});
      pieces.push_back({i, i + n});
      start = i + n;
    }
    i += n;
  }
  if (e > start) pieces.push_back({start, e});
  return pieces;
}

/// Leading quotes and signs of the word [s, t), each appended to `out` as a word of its own (the
/// word's last code point is never taken); returns where the rest of the word starts.
inline std::size_t split_leading_punct(std::string_view text, std::size_t s, std::size_t t,
                                       std::vector<WordSpan>& out) {
  while (s < t) {
    const auto [cp, n] = code_point_at(text, s);
    if (!is_leading_punct(cp) || s + n >= t) break;
    out.push_back({s, s + n});
    s += n;
  }
  return s;
}

/// Trailing `...`, periods that do not end an abbreviation and trailing punctuation of the word
/// [s, t), collected in `tail` from the end (last word first); `t` moves back before them.
inline void split_trailing_punct(std::string_view text, std::size_t s, std::size_t& t, std::vector<WordSpan>& tail) {
  // is_abbreviation of every prefix [s, t - 1) in O(1): the first period and the first character
  // that is neither a period nor an ASCII letter, found once (a rescan per stripped period made
  // a word like "a.).).)..." quadratic).
  std::size_t first_dot = t, first_other = t;
  for (std::size_t i = s; i < t && (first_dot == t || first_other == t); ++i) {
    if (text[i] == '.' && first_dot == t) first_dot = i;
    if (text[i] != '.' && !ascii_alpha(text[i]) && first_other == t) first_other = i;
  }
  auto abbreviation_before = [&](std::size_t end) {
    if (end <= s) return false;
    if (first_dot < end) return first_other >= end;
    return end - s <= 6 && is_abbreviation(text.substr(s, end - s));  // the longest listed one is 6
  };
  while (t > s) {
    const std::string_view w = text.substr(s, t - s);
    if (w.size() > 3 && w.ends_with("...")) {
      tail.push_back({t - 3, t});
      t -= 3;
      continue;
    }
    if (w.size() > 1 && w.back() == '.') {
      if (abbreviation_before(t - 1)) break;
      tail.push_back({t - 1, t});
      t -= 1;
      continue;
    }
    // last code point
    std::size_t q = t - 1;
    while (q > s && (static_cast<unsigned char>(text[q]) & 0xC0) == 0x80) --q;
    const auto cp = code_point_at(text, q).first;
    if (q > s && is_trailing_punct(cp)) {
      // a clitic ('s, n't, ...) is handled below; a lone trailing apostrophe is punctuation
      tail.push_back({q, t});
      t = q;
      continue;
    }
    break;
  }
}

/// Where the clitic ending `w` starts (n't, 's, 're, 've, 'll, 'd, 'm, with an ASCII or typographic
/// apostrophe, after at least one other byte), or std::string::npos when `w` ends in none.
inline std::size_t clitic_start(std::string_view w) {
  const auto l = lower_ascii(w);
  std::size_t cut = std::string::npos;
  for (std::string_view apos : {std::string_view("'"), std::string_view("\xE2\x80\x99")}) {
    const std::string nt = "n" + std::string(apos) + "t";
    if (l.size() > nt.size() && l.ends_with(nt)) {
      cut = l.size() - nt.size();
      break;
    }
    for (std::string_view c : {"s", "re", "ve", "ll", "d", "m"}) {
      const std::string clitic = std::string(apos) + std::string(c);
      if (l.size() > clitic.size() && l.ends_with(clitic)) {
        cut = l.size() - clitic.size();
        break;
      }
    }
    if (cut != std::string::npos) break;
  }
  return cut;
}

/// Splits one piece `p` of a chunk (no hard punctuation inside, unless it is that mark alone) into
/// words appended to `out`: leading punctuation, the word (and its clitic), trailing punctuation.
inline void split_piece(std::string_view text, const WordSpan& p, std::vector<WordSpan>& out) {
  if (p.end - p.begin == 1 || is_hard_punct(code_point_at(text, p.begin).first) ||
      is_clitic(text.substr(p.begin, p.end - p.begin))) {
    out.push_back(p);
    return;
  }
  // leading quotes and signs, each its own word
  const std::size_t s = split_leading_punct(text, p.begin, p.end, out);
  std::size_t t = p.end;
  std::vector<WordSpan> tail;  // collected from the end, reversed at the end
  split_trailing_punct(text, s, t, tail);
  // clitics: n't, 's, 're, 've, 'll, 'd, 'm (ASCII or typographic apostrophe)
  if (t > s) {
    const std::size_t cut = clitic_start(text.substr(s, t - s));
    if (cut != std::string::npos) {
      out.push_back({s, s + cut});
      out.push_back({s + cut, t});
    } else {
      out.push_back({s, t});
    }
  }
  out.insert(out.end(), tail.rbegin(), tail.rend());
}

/// Splits one whitespace-free chunk [b, e) of `text` into words, appended to `out`.
inline void split_chunk(std::string_view text, std::size_t b, std::size_t e, std::vector<WordSpan>& out) {
  // URLs and e-mail addresses: only closing punctuation at the very end is split off.
  if (split_url_chunk(text, b, e, out)) return;
  // Hard punctuation splits the chunk into pieces; commas split too unless between digits (1,000).
  for (const auto& p : punct_pieces(text, b, e)) split_piece(text, p, out);
}

inline bool ends_sentence(std::string_view w) {
  return w == "." || w == "!" || w == "?" || w == "..." || w == "\xE2\x80\xA6";
}
inline bool closes(std::string_view w) {
  return w == ")" || w == "]" || w == "}" || w == "\"" || w == "'" || w == "\xE2\x80\x9D" || w == "\xE2\x80\x99" ||
         w == "\xC2\xBB";
}
inline bool may_start_sentence(std::string_view w) {
  if (w.empty()) return false;
  const auto c = static_cast<unsigned char>(w[0]);
  if (std::isupper(c) || std::isdigit(c) || c >= 0x80) return true;  // non-ASCII: no case rule attempted
  return w == "(" || w == "[" || w == "\"" || w == "'" || w == "`";
}

}  // namespace detail

/// Throws genner::Error unless `text` is valid UTF-8; `where` names the input (file and line).
inline void check_utf8(std::string_view text, std::string_view where = "text") {
  for (std::size_t i = 0; i < text.size();) {
    const auto n = detail::utf8_length(text, i);
    if (n == 0) {
      static constexpr char hex[] = "0123456789abcdef";
      const auto b = static_cast<unsigned char>(text[i]);
      fail(where, ": expected UTF-8 text, found the invalid byte 0x", hex[b >> 4], hex[b & 15], " at byte offset ", i,
           " (convert the input to UTF-8, e.g. with iconv)");
    }
    i += n;
  }
}

/// Code-point offset of every byte offset 0..text.size(): out[i] is the number of code points that
/// start before byte i (for a byte inside a sequence, the count includes the sequence's own lead byte).
[[nodiscard]] inline std::vector<std::size_t> code_point_offsets(std::string_view text) {
  std::vector<std::size_t> out(text.size() + 1, 0);
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    out[i] = count;
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++count;
  }
  out[text.size()] = count;
  return out;
}

namespace detail {
/// The words of `text` as byte spans (whitespace-separated chunks, split by split_chunk unless
/// `pretokenized`); `breaks` gets the word indices after which a blank line occurred.
inline std::vector<WordSpan> word_spans(std::string_view text, bool pretokenized, std::vector<std::size_t>& breaks) {
  std::vector<WordSpan> spans;
  std::size_t newlines = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto [cp, n] = code_point_at(text, i);
    if (is_space(cp)) {
      if (cp == '\n') ++newlines;
      i += n;
      continue;
    }
    if (newlines >= 2 && !spans.empty()) breaks.push_back(spans.size());
    newlines = 0;
    std::size_t j = i;
    while (j < text.size()) {
      const auto [c2, n2] = code_point_at(text, j);
      if (is_space(c2)) break;
      j += n2;
    }
    if (pretokenized) {
      spans.push_back({i, j});
    } else {
      split_chunk(text, i, j, spans);
    }
    i = j;
  }
  return spans;
}

/// Cuts `out.words` into sentences: after a sentence-ending word (with the closing quotes and
/// brackets that follow it) before a word that may start one, and at the blank lines in `breaks`.
inline void split_sentences(Pretokenized& out, const std::vector<std::size_t>& breaks) {
  const std::size_t n = out.words.size();
  // Straight quotes among words [0, k): counted once, so a sentence's count costs O(1).
  std::vector<std::size_t> quotes_before(n + 1, 0);
  for (std::size_t k = 0; k < n; ++k) quotes_before[k + 1] = quotes_before[k] + (out.words[k] == "\"");
  std::size_t first = 0, b = 0;
  for (std::size_t w = 0; w < n; ++w) {
    while (b < breaks.size() && breaks[b] <= w) {
      if (breaks[b] > first) {
        out.sentences.emplace_back(first, breaks[b]);
        first = breaks[b];
      }
      ++b;
    }
    if (!ends_sentence(out.words[w])) continue;
    // closing quotes and brackets right after the end belong to the sentence; a straight quote
    // closes only when the sentence has an odd number of them (otherwise it opens the next one)
    std::size_t straight = quotes_before[w + 1] - quotes_before[first];
    std::size_t last = w + 1;
    while (last < n && closes(out.words[last])) {
      if (out.words[last] == "\"") {
        if (straight % 2 == 0) break;
        ++straight;
      }
      ++last;
    }
    if (last == n || may_start_sentence(out.words[last])) {
      out.sentences.emplace_back(first, last);
      first = last;
      w = last - 1;
    }
  }
  if (first < n) out.sentences.emplace_back(first, n);
}
}  // namespace detail

/// Splits raw text into words (CoNLL / Penn Treebank conventions): `Paris.` -> `Paris` `.`,
/// `York,` -> `York` `,`, `don't` -> `do` `n't`, `John's` -> `John` `'s`, `3%` -> `3` `%`,
/// `$5` -> `$` `5`, brackets and double quotes are words, `...` is one word; abbreviations (`U.S.`,
/// `Mr.`, `J.`) keep their period; numbers keep inner commas and periods (`1,000.5`); hyphenated
/// words stay whole; URLs and e-mail addresses are kept whole. Invalid UTF-8 is an error.
[[nodiscard]] inline Pretokenized pretokenize(std::string_view text, const PretokenizeOptions& options = {},
                                              std::string_view where = "text") {
  check_utf8(text, where);
  Pretokenized out;
  std::vector<std::size_t> breaks;  // word indices after which a blank line occurred
  out.spans = detail::word_spans(text, options.pretokenized, breaks);
  out.words.reserve(out.spans.size());
  for (const auto& s : out.spans) out.words.emplace_back(text.substr(s.begin, s.end - s.begin));
  if (!options.split_sentences) {
    if (!out.words.empty()) out.sentences.emplace_back(0, out.words.size());
    return out;
  }
  detail::split_sentences(out, breaks);
  return out;
}

}  // namespace genner::text
