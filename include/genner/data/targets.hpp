// genner/data/targets.hpp: docs/METHOD.md §1's pointer targets: entities -> target index sequence and
// teacher-forcing decoder input, and a generated index sequence -> entities.
//
// Index 0 = end, 1..L = types, L+1+p = pointer to source position p. Entities are emitted in
// Entity order (first start, last end). Nothing is lost silently: an entity on a word that had no
// SentencePiece piece still encodes (the word is an `<unk>`) and is counted in EncodeReport;
// an invalid generated entity is dropped and counted in ParseReport.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/entity.hpp>
#include <genner/data/target_type.hpp>
#include <genner/text/tokenizer.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace genner::data {

/// The order entities are written in a target. `sorted`: Entity's ordering (first start, last end,
/// fragments, type), independent of the input's order. `start_end`: first start, then last end,
/// keeping the given order among entities that share both (the original system's order; loaders
/// keep the file's order there).
enum class EntityOrder { sorted, start_end };

/// The entity types of a task and their label token ids: type i (0-based) is target index 1 + i.
struct LabelSpace {
  std::vector<std::string> types;
  std::vector<std::int64_t> token_ids;

  /// Adds each type's label token (`<<type>>`) to the tokenizer.
  [[nodiscard]] static LabelSpace make(std::vector<std::string> types, text::Tokenizer& tokenizer) {
    LabelSpace out;
    out.token_ids = tokenizer.add_labels(types);
    out.types = std::move(types);
    out.build_index();
    return out;
  }
  /// From explicit token ids (e.g. restored from a checkpoint).
  [[nodiscard]] static LabelSpace make(std::vector<std::string> types, std::vector<std::int64_t> token_ids) {
    GENNER_CHECK(types.size() == token_ids.size(), "LabelSpace: expected one token id per type (", types.size(),
                 "), found ", token_ids.size(), ".");
    LabelSpace out;
    out.types = std::move(types);
    out.token_ids = std::move(token_ids);
    out.build_index();
    return out;
  }

  [[nodiscard]] std::int64_t size() const { return static_cast<std::int64_t>(types.size()); }
  /// Target index (1..L) of a type name; throws for a type the label space does not know.
  [[nodiscard]] std::int64_t target_index(const std::string& type) const {
    const auto it = index_.find(type);
    GENNER_CHECK(it != index_.end(), "LabelSpace: expected one of the ", types.size(), " known entity types, found '",
                 type, "'.");
    return it->second + 1;
  }

 private:
  void build_index() {
    index_.clear();
    std::unordered_map<std::int64_t, std::size_t> by_token;
    for (std::size_t i = 0; i < types.size(); ++i) {
      GENNER_CHECK(index_.emplace(types[i], static_cast<std::int64_t>(i)).second,
                   "LabelSpace: expected distinct types, found '", types[i], "' twice.");
      // Label tokens are lower-cased (<<per>>), so PER and per would feed one token where the
      // pointer head scores two labels: training and inference would disagree.
      const auto [it, fresh] = by_token.emplace(token_ids[i], i);
      GENNER_CHECK(fresh, "LabelSpace: expected entity types whose label tokens differ, found '", types[it->second],
                   "' and '", types[i], "' sharing label token ", token_ids[i], " (",
                   text::Tokenizer::label_token(types[i]),
                   "; label tokens ignore case); rename one of the types in the data");
    }
  }
  std::unordered_map<std::string, std::int64_t> index_;
};

struct Target {
  std::vector<std::int64_t> indices;            ///< target index sequence, ends with 0
  std::vector<std::int64_t> decoder_input_ids;  ///< same length, shifted right, starts with 0
};

struct EncodeReport {
  std::size_t sentences = 0;
  std::size_t entities = 0;
  /// Entities touching a word that produced no piece (encoded on its `<unk>` stand-in).
  std::size_t entities_on_unk_words = 0;
  std::vector<std::string> messages;
};

namespace detail {

/// The entities in the order their target writes them (see EntityOrder).
inline std::vector<const Entity*> entities_in_order(std::span<const Entity> entities, EntityOrder entity_order) {
  std::vector<const Entity*> order;
  order.reserve(entities.size());
  for (const auto& e : entities) order.push_back(&e);
  if (entity_order == EntityOrder::sorted) {
    std::stable_sort(order.begin(), order.end(), [](const Entity* a, const Entity* b) { return *a < *b; });
  } else {
    std::stable_sort(order.begin(), order.end(), [](const Entity* a, const Entity* b) {
      if (a->fragments.empty() || b->fragments.empty()) return a->fragments.empty() && !b->fragments.empty();
      return std::pair(a->start(), a->end()) < std::pair(b->start(), b->end());
    });
  }
  return order;
}

/// Appends the pointers of entity `e` (of a sentence of `n` words, encoded as `src`) to the target's
/// `indices` (L types before the pointers) and their source tokens to `tokens`; returns whether the
/// entity covers a word with no SentencePiece piece.
inline bool append_entity_pointers(const text::Encoding& src, const Entity& e, TargetType type, std::int64_t L, int n,
                                   std::vector<std::int64_t>& indices, std::vector<std::int64_t>& tokens) {
  const auto pointer = [&](std::int64_t p) {
    indices.push_back(L + 1 + p);
    tokens.push_back(src.ids[static_cast<std::size_t>(p)]);
  };
  GENNER_CHECK(!e.fragments.empty(),
               "encode_target: expected an entity with at least one fragment, found none (type '", e.type, "').");
  bool on_unk = false;
  for (const auto& [s, t] : e.fragments) {
    GENNER_CHECK(0 <= s && s < t && t <= n, "encode_target: expected fragments inside the sentence's ", n,
                 " words, found [", s, ", ", t, ") (type '", e.type, "').");
    for (int w = s; w < t; ++w)
      on_unk = on_unk || std::binary_search(src.unk_fallback_words.begin(), src.unk_fallback_words.end(),
                                            static_cast<std::size_t>(w));
    const auto ws = [&](int w) { return src.word_start[static_cast<std::size_t>(w)]; };
    const auto we = [&](int w) { return src.word_end[static_cast<std::size_t>(w)]; };
    switch (type) {
      case TargetType::word:
        for (int w = s; w < t; ++w) pointer(ws(w));
        break;
      case TargetType::bpe:
        for (int w = s; w < t; ++w)
          for (auto p = ws(w); p <= we(w); ++p) pointer(p);
        break;
      case TargetType::span:
        pointer(ws(s));
        pointer(we(t - 1));
        break;
    }
  }
  return on_unk;
}

}  // namespace detail

/// Encodes gold entities of one sentence into its target (docs/METHOD.md §1).
[[nodiscard]] inline Target encode_target(const text::Encoding& src, std::span<const Entity> entities,
                                          const LabelSpace& labels, TargetType type, EncodeReport* report = nullptr,
                                          EntityOrder entity_order = EntityOrder::sorted) {
  const auto order = detail::entities_in_order(entities, entity_order);
  const auto L = labels.size();
  const auto n = static_cast<int>(src.num_words());
  Target out;
  std::vector<std::int64_t> tokens;  // decoder tokens, one per index
  for (const Entity* e : order) {
    const bool on_unk = detail::append_entity_pointers(src, *e, type, L, n, out.indices, tokens);
    const auto ti = labels.target_index(e->type);
    out.indices.push_back(ti);
    tokens.push_back(labels.token_ids[static_cast<std::size_t>(ti - 1)]);
    if (report && on_unk) {
      ++report->entities_on_unk_words;
      report->messages.push_back("entity '" + e->type + "' at word " + std::to_string(e->start()) +
                                 " covers a word with no SentencePiece piece (encoded as <unk>)");
    }
  }
  out.indices.push_back(0);
  tokens.push_back(text::Tokenizer::kEosId);
  out.decoder_input_ids.reserve(tokens.size());
  out.decoder_input_ids.push_back(text::Tokenizer::kPadId);  // T5's decoder start token
  out.decoder_input_ids.insert(out.decoder_input_ids.end(), tokens.begin(), tokens.end() - 1);
  if (report) {
    ++report->sentences;
    report->entities += entities.size();
  }
  return out;
}

struct ParseReport {
  std::size_t entities = 0;  ///< valid entities returned
  std::size_t invalid = 0;   ///< entities dropped by the validity rules
  bool ended = false;        ///< whether an end index (0) was seen
};

/// Parses a generated index sequence back into entities: pointers are collected until a type
/// index closes an entity; `word`/`bpe` need strictly increasing pointers, `span` an even,
/// non-decreasing list; pointers outside the words (the `</s>` or beyond) make an entity invalid.
/// Pointers map to words through word_start/word_end; consecutive words form one fragment.
[[nodiscard]] inline std::vector<Entity> parse_target(std::span<const std::int64_t> indices,
                                                      std::span<const std::int64_t> word_start,
                                                      std::span<const std::int64_t> word_end, const LabelSpace& labels,
                                                      TargetType type, ParseReport* report = nullptr) {
  GENNER_CHECK(word_start.size() == word_end.size(),
               "parse_target: expected word_start and word_end of equal size, found ", word_start.size(), " and ",
               word_end.size(), ".");
  const auto L = labels.size();
  const std::int64_t positions = word_end.empty() ? 0 : word_end.back() + 1;
  std::vector<int> word_of(static_cast<std::size_t>(positions), -1);
  for (std::size_t w = 0; w < word_start.size(); ++w)
    for (auto p = word_start[w]; p <= word_end[w]; ++p) word_of[static_cast<std::size_t>(p)] = static_cast<int>(w);
  ParseReport local;
  ParseReport& rep = report ? *report : local;
  rep = {};
  std::vector<Entity> out;
  std::vector<std::int64_t> pending;
  const auto close = [&](std::int64_t ti) {
    bool valid = !pending.empty();
    for (const auto p : pending) valid = valid && p >= 0 && p < positions && word_of[static_cast<std::size_t>(p)] >= 0;
    for (std::size_t k = 1; valid && k < pending.size(); ++k)
      valid = type == TargetType::span ? pending[k - 1] <= pending[k] : pending[k - 1] < pending[k];
    if (type == TargetType::span) valid = valid && pending.size() % 2 == 0;
    if (!valid) {
      ++rep.invalid;
      pending.clear();
      return;
    }
    Entity e{labels.types[static_cast<std::size_t>(ti - 1)], {}};
    const auto wo = [&](std::int64_t p) { return word_of[static_cast<std::size_t>(p)]; };
    if (type == TargetType::span) {
      for (std::size_t k = 0; k < pending.size(); k += 2)
        e.fragments.emplace_back(wo(pending[k]), wo(pending[k + 1]) + 1);
    } else {
      for (const auto p : pending) e.fragments.emplace_back(wo(p), wo(p) + 1);
    }
    normalize_fragments(e.fragments);
    out.push_back(std::move(e));
    ++rep.entities;
    pending.clear();
  };
  for (const auto index : indices) {
    if (index == 0) {
      rep.ended = true;
      break;
    }
    if (index >= 1 && index <= L) {
      close(index);
    } else {
      pending.push_back(index - L - 1);  // negative or past the words: caught as invalid in close()
    }
  }
  if (!pending.empty()) ++rep.invalid;  // pointers never closed by a type
  return out;
}

[[nodiscard]] inline std::vector<Entity> parse_target(std::span<const std::int64_t> indices, const text::Encoding& src,
                                                      const LabelSpace& labels, TargetType type,
                                                      ParseReport* report = nullptr) {
  return parse_target(indices, src.word_start, src.word_end, labels, type, report);
}

}  // namespace genner::data
