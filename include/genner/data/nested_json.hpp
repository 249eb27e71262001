// genner/data/nested_json.hpp: nested NER in JSON lines (GENIA, ACE as prepared by the published
// code): {"ners": [[[start, end_inclusive, type], ...] per sentence], "sentences": [[tokens] ...]}.
//
// Sentences longer than `max_words` are split, as the published code did, only at positions no
// entity crosses: the cut nearest below the limit, else the nearest above it, else none. Every
// split is listed in the LoadReport (kind split); exact duplicate entities are dropped and listed.
#pragma once

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/data/detail/lines.hpp>
#include <genner/data/entity.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <string>
#include <vector>

namespace genner::data {

struct NestedJsonOptions {
  std::size_t max_words = 150;                     ///< 0 disables splitting
  std::size_t length_guard = kDefaultLengthGuard;  ///< see LengthGuard in entity.hpp; 0: off
};

/// Parses nested JSON lines from text (see load_nested_json); `file` names it in errors.
[[nodiscard]] inline Dataset parse_nested_json(std::string_view text, const std::filesystem::path& file,
                                               const NestedJsonOptions& options = {}) {
  const auto lines = detail::text_lines(text, file, "load_nested_json");
  Dataset out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;
    const auto at = detail::where(file, i + 1);
    const nlohmann::json doc = parse_json(lines[i], "load_nested_json: " + at, "a JSON object");
    GENNER_CHECK(doc.is_object() && doc.contains("ners") && doc.contains("sentences") && doc["ners"].is_array() &&
                     doc["sentences"].is_array(),
                 "load_nested_json: ", at, ": expected an object with arrays \"ners\" and \"sentences\", found ",
                 json_excerpt(doc), ".");
    const auto& ners = doc["ners"];
    const auto& sentences = doc["sentences"];
    GENNER_CHECK(ners.size() == sentences.size(), "load_nested_json: ", at, ": expected as many \"ners\" lists as ",
                 "sentences (", sentences.size(), "), found ", ners.size(), ".");
    for (std::size_t k = 0; k < sentences.size(); ++k) {
      Sentence s;
      GENNER_CHECK(sentences[k].is_array() && !sentences[k].empty(), "load_nested_json: ", at, ": sentence ", k,
                   ": expected a non-empty array of tokens, found ", json_excerpt(sentences[k]), ".");
      for (const auto& token : sentences[k]) {
        GENNER_CHECK(token.is_string(), "load_nested_json: ", at, ": sentence ", k, ": expected string tokens, found ",
                     json_excerpt(token), ".");
        s.words.push_back(token.get<std::string>());
      }
      const int n = static_cast<int>(s.words.size());
      GENNER_CHECK(ners[k].is_array(), "load_nested_json: ", at, ": sentence ", k, ": expected an entity list, found ",
                   json_excerpt(ners[k]), ".");
      for (const auto& e : ners[k]) {
        GENNER_CHECK(
            e.is_array() && e.size() == 3 && e[0].is_number_integer() && e[1].is_number_integer() && e[2].is_string(),
            "load_nested_json: ", at, ": sentence ", k, ": expected [start, end_inclusive, type], found ", json_excerpt(e),
            ".");
        // Compared as 64-bit (an offset of 2^32 or more must not wrap to a small number).
        const auto start64 = e[0].get<std::int64_t>(), last64 = e[1].get<std::int64_t>();
        GENNER_CHECK(
            e[0].is_number_unsigned() && e[1].is_number_unsigned() && 0 <= start64 && start64 <= last64 && last64 < n,
            "load_nested_json: ", at, ": sentence ", k, ": expected an entity span inside the sentence's ", n,
            " words, found ", json_excerpt(e), ".");
        const auto start = static_cast<int>(start64), last = static_cast<int>(last64);
        s.entities.push_back({e[2].get<std::string>(), {{start, last + 1}}});
      }
      detail::finish_sentence(s, file.string(), i + 1, out.report, out.types);
      for (auto& piece : detail::split_sentence(std::move(s), options.max_words, file.string(), i + 1, out.report))
        detail::add_guarded(out.sentences, std::move(piece), options.length_guard, file.string(), i + 1, out.report,
                            "load_nested_json");
    }
  }
  GENNER_CHECK(!out.sentences.empty(), "load_nested_json: expected sentences in '", file.string(), "', found none.");
  detail::finish_types(out.types);
  return out;
}

/// Loads a nested-NER JSON-lines file (UTF-8; a byte-order mark is dropped; offsets are checked
/// as 64-bit integers; the length guard of entity.hpp applies after the max_words split).
[[nodiscard]] inline Dataset load_nested_json(const std::filesystem::path& file,
                                              const NestedJsonOptions& options = {}) {
  return parse_nested_json(detail::read_text(file, "load_nested_json"), file, options);
}

}  // namespace genner::data
