// genner/data/ontonotes.hpp: OntoNotes 5 CoNLL-2012 `*_conll` files (word column 3, bracketed
// named-entity column 10) into a Dataset, with the bracket and slash escapes undone.
//
// Escapes are undone on whole tokens only: -LRB- ( -RRB- ) -LSB- [ -RSB- ] -LCB- { -RCB- } and
// /. . /? ? /- -. An entity still open at the sentence end, a close without an open, or an open
// inside an open entity throws: OntoNotes names never nest, so any of these means a broken file.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/detail/lines.hpp>
#include <genner/data/entity.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace genner::data {

/// Undoes OntoNotes' token escapes (whole tokens only).
[[nodiscard]] inline std::string unescape_ontonotes(std::string_view word) {
  static constexpr std::pair<std::string_view, std::string_view> kEscapes[] = {
      {"-LRB-", "("}, {"-RRB-", ")"}, {"-LSB-", "["}, {"-RSB-", "]"}, {"-LCB-", "{"},
      {"-RCB-", "}"}, {"/.", "."},    {"/?", "?"},    {"/-", "-"}};
  for (const auto& [from, to] : kEscapes)
    if (word == from) return std::string(to);
  return std::string(word);
}

namespace detail {

/// The entity the named-entity column has opened and not closed yet.
struct OntonotesOpenEntity {
  int start = -1;  ///< its first word; -1 while no entity is open
  std::string type;
  std::size_t line = 0;  ///< the line that opened it
};

/// Reads the named-entity field `ne` of word `k`, on line `line_no` of `file`: opens an entity in
/// `open`, closes it (appending it to `current`) or continues it; throws for a malformed field.
inline void read_ontonotes_entity(std::string_view ne, int k, const std::filesystem::path& file, std::size_t line_no,
                                  OntonotesOpenEntity& open, Sentence& current) {
  const auto bad = [&] {
    fail("load_ontonotes: ", detail::where(file, line_no),
         ": expected a named-entity field like '(TYPE*', '*', '*)' or '(TYPE)', found '", ne, "'.");
  };
  if (ne.starts_with("(")) {
    GENNER_CHECK(open.start < 0, "load_ontonotes: ", detail::where(file, line_no), ": entity opens inside entity '",
                 open.type, "' opened at line ", open.line, "; expected them not to nest.");
    const auto stop = ne.find_first_of("*)");
    if (stop == std::string_view::npos || stop == 1) bad();
    open.type = std::string(ne.substr(1, stop - 1));
    open.start = k;
    open.line = line_no;
    ne = ne.substr(stop);
    if (ne == ")" || ne == "*)") {
      current.entities.push_back({open.type, {{open.start, k + 1}}});
      open.start = -1;
    } else if (ne != "*") {
      bad();
    }
  } else if (ne == "*)") {
    GENNER_CHECK(open.start >= 0, "load_ontonotes: ", detail::where(file, line_no),
                 ": expected an open entity before '*)', found none.");
    current.entities.push_back({open.type, {{open.start, k + 1}}});
    open.start = -1;
  } else if (ne != "*") {
    bad();
  }
}

}  // namespace detail

[[nodiscard]] inline Dataset load_ontonotes(const std::filesystem::path& file) {
  const auto lines = detail::read_lines(file, "load_ontonotes");
  Dataset out;
  Sentence current;
  std::size_t sentence_line = 0;
  detail::OntonotesOpenEntity open;
  const auto flush = [&](std::size_t line_no) {
    GENNER_CHECK(open.start < 0, "load_ontonotes: ", detail::where(file, open.line), ": entity '", open.type,
                 "' opened here is still open at the end of the sentence (line ", line_no, ").");
    if (!current.words.empty()) {
      detail::finish_sentence(current, file.string(), sentence_line, out.report, out.types);
      out.sentences.push_back(std::move(current));
    }
    current = {};
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const auto fields = detail::split_fields(line, " \t");
    if (fields.empty()) {
      flush(i + 1);
      continue;
    }
    if (line.starts_with("#begin document") || line.starts_with("#end document")) {
      flush(i + 1);
      continue;
    }
    GENNER_CHECK(fields.size() >= 11, "load_ontonotes: ", detail::where(file, i + 1),
                 ": expected at least 11 columns (word in column 4, entity in column 11), found ", fields.size(), ".");
    if (current.words.empty()) sentence_line = i + 1;
    const int k = static_cast<int>(current.words.size());
    current.words.push_back(unescape_ontonotes(fields[3]));
    detail::read_ontonotes_entity(fields[10], k, file, i + 1, open, current);
  }
  flush(lines.size());
  GENNER_CHECK(!out.sentences.empty(), "load_ontonotes: expected sentences in '", file.string(), "', found none.");
  detail::finish_types(out.types);
  return out;
}

}  // namespace genner::data
