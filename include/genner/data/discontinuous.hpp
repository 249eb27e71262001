// genner/data/discontinuous.hpp: discontinuous NER in the 3-line format of Dai et al. (CADEC,
// ShARe): tokens; entities `s,e[,s,e...] TYPE` joined by `|` (inclusive word indices; empty when
// none); a blank line.
//
// Fragments are sorted; overlapping or adjacent fragments are merged into one (reported as a
// repair) because "consecutive words form one fragment" when pointers are decoded, so unmerged
// touching fragments could never be predicted. Exact duplicate entities are dropped and reported.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/detail/lines.hpp>
#include <genner/data/entity.hpp>

#include <filesystem>
#include <string_view>
#include <string>
#include <vector>

namespace genner::data {

struct DiscontinuousOptions {
  std::size_t length_guard = kDefaultLengthGuard;  ///< see entity.hpp; 0: off
};

/// Parses the 3-line format from text (see load_discontinuous); `file` names it in errors.
[[nodiscard]] inline Dataset parse_discontinuous(std::string_view text, const std::filesystem::path& file,
                                                 const DiscontinuousOptions& options = {}) {
  const auto lines = detail::text_lines(text, file, "load_discontinuous");
  Dataset out;
  std::size_t i = 0;
  const auto blank = [&](std::size_t k) { return lines[k].find_first_not_of(" \t") == std::string::npos; };
  while (i < lines.size()) {
    if (blank(i)) {
      ++i;
      continue;
    }
    Sentence s;
    const std::size_t token_line = i + 1;
    for (const auto w : detail::split_fields(lines[i], " \t")) s.words.emplace_back(w);
    const int n = static_cast<int>(s.words.size());
    GENNER_CHECK(i + 1 < lines.size(), "load_discontinuous: ", detail::where(file, token_line),
                 ": expected an entity line after the tokens, found the end of the file.");
    const std::size_t entity_line = i + 2;
    const auto at = detail::where(file, entity_line);
    for (const auto item : detail::split_fields(lines[i + 1], "|")) {
      const auto parts = detail::split_fields(item, " ");
      if (parts.empty()) continue;
      GENNER_CHECK(parts.size() == 2, "load_discontinuous: ", at, ": expected 's,e[,s,e...] TYPE', found '", item,
                   "'.");
      const auto numbers = detail::split_fields(parts[0], ",");
      GENNER_CHECK(!numbers.empty() && numbers.size() % 2 == 0, "load_discontinuous: ", at,
                   ": expected an even number of word indices, found '", parts[0], "'.");
      Entity e{std::string(parts[1]), {}};
      for (std::size_t k = 0; k < numbers.size(); k += 2) {
        int s0 = 0, e0 = 0;
        GENNER_CHECK(detail::parse_int(numbers[k], s0) && detail::parse_int(numbers[k + 1], e0),
                     "load_discontinuous: ", at, ": expected non-negative integers, found '", parts[0], "'.");
        GENNER_CHECK(s0 <= e0 && e0 < n, "load_discontinuous: ", at, ": expected spans inside the sentence's ", n,
                     " words with start <= end, found ", s0, ",", e0, ".");
        e.fragments.emplace_back(s0, e0 + 1);
      }
      if (normalize_fragments(e.fragments))
        out.report.add(LoadIssue::Kind::repaired, file.string(), entity_line,
                       "overlapping or adjacent fragments of '" + std::string(item) + "' merged");
      s.entities.push_back(std::move(e));
    }
    GENNER_CHECK(i + 2 >= lines.size() || blank(i + 2), "load_discontinuous: ", detail::where(file, i + 3),
                 ": expected a blank line after the entity line, found '", lines[i + 2], "'.");
    detail::finish_sentence(s, file.string(), token_line, out.report, out.types);
    detail::add_guarded(out.sentences, std::move(s), options.length_guard, file.string(), token_line, out.report,
                        "load_discontinuous");
    i += 3;
  }
  GENNER_CHECK(!out.sentences.empty(), "load_discontinuous: expected sentences in '", file.string(), "', found none.");
  detail::finish_types(out.types);
  return out;
}

/// Loads a discontinuous-NER file (UTF-8; a byte-order mark is dropped; length guard as in entity.hpp).
[[nodiscard]] inline Dataset load_discontinuous(const std::filesystem::path& file,
                                                const DiscontinuousOptions& options = {}) {
  return parse_discontinuous(detail::read_text(file, "load_discontinuous"), file, options);
}

}  // namespace genner::data
