// genner/data/nested_json.hpp: nested NER in JSON lines (GENIA, ACE as prepared by the published
// code): {"ners": [[[start, end_inclusive, type], ...] per sentence], "sentences": [[tokens] ...]}.
//
// Sentences longer than `max_words` are split, as the published code did, only at positions no
// entity crosses: the cut nearest below the limit, else the nearest above it, else none. Every
// split is listed in the LoadReport (kind split); exact duplicate entities are dropped and listed.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/detail/lines.hpp>
#include <genner/data/entity.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace genner::data {

struct NestedJsonOptions {
  std::size_t max_words = 150;  ///< 0 disables splitting
};

namespace detail {

/// Cuts `s` into pieces of at most `max_words` words where possible, never inside an entity.
inline std::vector<Sentence> split_sentence(Sentence s, std::size_t max_words, const std::string& file,
                                            std::size_t line, LoadReport& report) {
  std::vector<Sentence> out;
  const int n = static_cast<int>(s.words.size());
  if (max_words == 0 || s.words.size() <= max_words) {
    out.push_back(std::move(s));
    return out;
  }
  const auto crosses = [&](int c) {
    for (const auto& e : s.entities)
      if (e.start() < c && c < e.end()) return true;
    return false;
  };
  const int limit = static_cast<int>(max_words);
  std::vector<int> cuts{0};
  while (n - cuts.back() > limit) {
    const int from = cuts.back();
    int cut = -1;
    for (int c = from + limit; c > from && cut < 0; --c)
      if (!crosses(c)) cut = c;
    for (int c = from + limit + 1; c < n && cut < 0; ++c)
      if (!crosses(c)) cut = c;
    if (cut < 0) break;
    cuts.push_back(cut);
  }
  cuts.push_back(n);
  for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
    const int a = cuts[k], b = cuts[k + 1];
    Sentence piece;
    piece.words.assign(s.words.begin() + a, s.words.begin() + b);
    for (const auto& e : s.entities) {
      if (e.start() >= a && e.end() <= b) {
        Entity shifted = e;
        for (auto& f : shifted.fragments) f = {f.first - a, f.second - a};
        piece.entities.push_back(std::move(shifted));
      }
    }
    out.push_back(std::move(piece));
  }
  report.add(LoadIssue::Kind::split, file, line,
             "sentence of " + std::to_string(n) + " words split into " + std::to_string(out.size()) + " pieces" +
                 (n - cuts[cuts.size() - 2] > limit ? " (the last is still longer than the limit: entities cross every cut)"
                                                    : ""));
  return out;
}

}  // namespace detail

[[nodiscard]] inline Dataset load_nested_json(const std::filesystem::path& file, const NestedJsonOptions& options = {}) {
  const auto lines = detail::read_lines(file, "load_nested_json");
  Dataset out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;
    const auto at = detail::where(file, i + 1);
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::parse_error& e) {
      fail("load_nested_json: ", at, ": expected a JSON object, found invalid JSON (", e.what(), ").");
    }
    GENNER_CHECK(doc.is_object() && doc.contains("ners") && doc.contains("sentences") && doc["ners"].is_array() &&
                     doc["sentences"].is_array(),
                 "load_nested_json: ", at, ": expected an object with arrays \"ners\" and \"sentences\", found ",
                 doc.dump().substr(0, 80), ".");
    const auto& ners = doc["ners"];
    const auto& sentences = doc["sentences"];
    GENNER_CHECK(ners.size() == sentences.size(), "load_nested_json: ", at, ": expected as many \"ners\" lists as ",
                 "sentences (", sentences.size(), "), found ", ners.size(), ".");
    for (std::size_t k = 0; k < sentences.size(); ++k) {
      Sentence s;
      GENNER_CHECK(sentences[k].is_array() && !sentences[k].empty(), "load_nested_json: ", at, ": sentence ", k,
                   ": expected a non-empty array of tokens, found ", sentences[k].dump().substr(0, 80), ".");
      for (const auto& token : sentences[k]) {
        GENNER_CHECK(token.is_string(), "load_nested_json: ", at, ": sentence ", k,
                     ": expected string tokens, found ", token.dump(), ".");
        s.words.push_back(token.get<std::string>());
      }
      const int n = static_cast<int>(s.words.size());
      GENNER_CHECK(ners[k].is_array(), "load_nested_json: ", at, ": sentence ", k, ": expected an entity list, found ",
                   ners[k].dump().substr(0, 80), ".");
      for (const auto& e : ners[k]) {
        GENNER_CHECK(e.is_array() && e.size() == 3 && e[0].is_number_integer() && e[1].is_number_integer() &&
                         e[2].is_string(),
                     "load_nested_json: ", at, ": sentence ", k, ": expected [start, end_inclusive, type], found ",
                     e.dump(), ".");
        const int start = e[0].get<int>(), last = e[1].get<int>();
        GENNER_CHECK(0 <= start && start <= last && last < n, "load_nested_json: ", at, ": sentence ", k,
                     ": expected an entity span inside the sentence's ", n, " words, found ", e.dump(), ".");
        s.entities.push_back({e[2].get<std::string>(), {{start, last + 1}}});
      }
      detail::finish_sentence(s, file.string(), i + 1, out.report, out.types);
      for (auto& piece : detail::split_sentence(std::move(s), options.max_words, file.string(), i + 1, out.report))
        out.sentences.push_back(std::move(piece));
    }
  }
  GENNER_CHECK(!out.sentences.empty(), "load_nested_json: expected sentences in '", file.string(), "', found none.");
  detail::finish_types(out.types);
  return out;
}

}  // namespace genner::data
