// genner/data/label_convention.hpp: the original system's label convention, as an option next to
// genner's own (LabelSpace::make). The original names some data sets' label tokens by hand
// (CoNLL-2003 `loc` -> `<<location>>`, ...; others `<<type>>`), numbers the types in that table's
// order (or in order of first appearance over its splits), and adds the tokens to the vocabulary
// after a stable sort by string length, longest first, so token ids do not follow type order.
// Together with EntityOrder::start_end this gives the original's targets token for token.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/entity.hpp>
#include <genner/data/targets.hpp>
#include <genner/text/tokenizer.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genner::data {

/// How label tokens are named, numbered and ordered.
enum class LabelConvention {
  genner,    ///< types in the given (sorted) order, tokens `<<type>>` added in that order
  original,  ///< the original system's tables, type order and length-sorted token ids
};

[[nodiscard]] inline LabelConvention parse_label_convention(std::string_view name) {
  if (name == "genner") return LabelConvention::genner;
  if (name == "original") return LabelConvention::original;
  throw Error("label_convention: expected 'genner' or 'original', found '" + std::string(name) + "'.");
}

/// The original's hand-written (lower-case type, label token) table of a data set, in its order;
/// empty for data sets whose label tokens it derives as `<<type>>`.
[[nodiscard]] inline std::vector<std::pair<std::string, std::string>> original_label_table(std::string_view dataset) {
  if (dataset == "conll2003")
    return {{"loc", "<<location>>"}, {"per", "<<person>>"}, {"org", "<<organization>>"}, {"misc", "<<others>>"}};
  if (dataset == "ontonotes" || dataset == "en-ontonotes")
    return {{"person", "<<person>>"},   {"gpe", "<<government>>"},    {"org", "<<organization>>"},
            {"date", "<<date>>"},       {"cardinal", "<<cardinal>>"}, {"norp", "<<nationality>>"},
            {"money", "<<money>>"},     {"percent", "<<percent>>"},   {"ordinal", "<<ordinal>>"},
            {"loc", "<<location>>"},    {"time", "<<time>>"},         {"work_of_art", "<<work_of_art>>"},
            {"fac", "<<buildings>>"},   {"event", "<<event>>"},       {"quantity", "<<quantity>>"},
            {"product", "<<product>>"}, {"language", "<<language>>"}, {"law", "<<law>>"}};
  if (dataset == "ace04" || dataset == "en_ace04")
    return {{"loc", "<<location>>"}, {"gpe", "<<government>>"},   {"wea", "<<weapon>>"},   {"veh", "<<vehicle>>"},
            {"per", "<<person>>"},   {"org", "<<organization>>"}, {"fac", "<<buildings>>"}};
  return {};
}

namespace detail {
inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace detail

/// The original's label space for `dataset`, whose splits are given in the order the original reads
/// them (dev, test, train). Types are named as genner's loaders name them; a type is matched to the
/// table case-insensitively. Label tokens are added to `tokenizer` (longest first).
[[nodiscard]] inline LabelSpace make_original_label_space(std::string_view dataset,
                                                          std::span<const Dataset* const> splits,
                                                          text::Tokenizer& tokenizer) {
  // Types in order of first appearance over the splits, with the loaders' spelling.
  std::vector<std::string> seen;
  for (const auto* d : splits) {
    GENNER_CHECK(d != nullptr, "make_original_label_space: expected a data set, found a null pointer.");
    for (const auto& s : d->sentences)
      for (const auto& e : s.entities)
        if (std::find(seen.begin(), seen.end(), e.type) == seen.end()) seen.push_back(e.type);
  }
  std::vector<std::pair<std::string, std::string>> table = original_label_table(dataset);
  std::vector<std::string> types;
  std::vector<std::string> tokens;
  if (table.empty()) {
    for (const auto& t : seen) {
      types.push_back(t);
      tokens.push_back(text::Tokenizer::label_token(t));
    }
  } else {
    for (const auto& t : seen) {
      const bool known =
          std::any_of(table.begin(), table.end(), [&](const auto& kv) { return kv.first == detail::lower(t); });
      GENNER_CHECK(known, "make_original_label_space: data set '", dataset, "' has entity type '", t,
                   "', which the original's label table for it does not list.");
    }
    for (const auto& [key, token] : table) {
      const auto it =
          std::find_if(seen.begin(), seen.end(), [&](const std::string& t) { return detail::lower(t) == key; });
      types.push_back(it != seen.end() ? *it : key);
      tokens.push_back(token);
    }
  }
  GENNER_CHECK(!types.empty(), "make_original_label_space: expected entities in the splits of '", dataset,
               "', found none.");
  std::vector<std::size_t> by_length(tokens.size());
  for (std::size_t i = 0; i < by_length.size(); ++i) by_length[i] = i;
  std::stable_sort(by_length.begin(), by_length.end(),
                   [&](std::size_t a, std::size_t b) { return tokens[a].size() > tokens[b].size(); });
  std::vector<std::int64_t> ids(tokens.size());
  for (const auto i : by_length) ids[i] = tokenizer.add_token(tokens[i]);
  return LabelSpace::make(std::move(types), std::move(ids));
}

}  // namespace genner::data
