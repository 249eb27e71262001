// genner/train/metric.hpp: the evaluation metrics of docs/METHOD.md §1. Two rule sets:
//  - `pointer` (the default, the rules published F1 figures were computed with): entities are
//    compared as tuples of output indices (pointers + type) read off the generated index sequence;
//    `word`/`bpe` pointers must strictly increase, `span` pointers must be non-decreasing and even
//    in number; an entity repeated in one sentence counts once (gold and predicted alike); a
//    sequence with no end index loses its last index; a pointer to a piece other than the one the
//    target uses (e.g. a non-first piece of a word) never matches. Exact match: the generated
//    sequence up to its end equals the gold target. PointerMetric.
//  - `word`: typed entities (type + word fragments) as parsed by data::parse_target, counted with
//    multiplicity, every piece of a word standing for the word. EntityMetric, generic over any
//    entity type with `.type`, `.fragments` and `==` (genner::data::Entity fits).
// Both report micro precision/recall/F1, per-type figures and sentence exact match.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/data/targets.hpp>

namespace genner::train {

/// Anything that looks like genner::data::Entity: a type name and (start, end) word fragments.
template <typename E>
concept EntityLike = requires(const E& e) {
  { e.type } -> std::convertible_to<std::string>;
  { e.fragments.begin()->first } -> std::convertible_to<int>;
  { e.fragments.begin()->second } -> std::convertible_to<int>;
};

/// True positives, predicted and gold counts, and the figures derived from them (fractions in
/// [0, 1]; 0 when a denominator is 0, as conlleval does).
struct Counts {
  std::size_t correct = 0;
  std::size_t predicted = 0;
  std::size_t gold = 0;

  [[nodiscard]] double precision() const { return predicted ? double(correct) / double(predicted) : 0.0; }
  [[nodiscard]] double recall() const { return gold ? double(correct) / double(gold) : 0.0; }
  [[nodiscard]] double f1() const {
    const double p = precision(), r = recall();
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }
  Counts& operator+=(const Counts& o) {
    correct += o.correct;
    predicted += o.predicted;
    gold += o.gold;
    return *this;
  }
  friend bool operator==(const Counts&, const Counts&) = default;
};

/// Which rules a metric follows (see the top of this file).
enum class MetricRules { pointer, word };

[[nodiscard]] inline const char* metric_rules_name(MetricRules r) {
  return r == MetricRules::pointer ? "pointer" : "word";
}
/// "pointer" or "word"; anything else is refused.
[[nodiscard]] inline MetricRules parse_metric_rules(std::string_view name) {
  if (name == "pointer") return MetricRules::pointer;
  if (name == "word") return MetricRules::word;
  throw Error("metric: expected 'pointer' or 'word', found '" + std::string(name) + "'.");
}

/// Everything the metric reports for a set of sentences.
struct Scores {
  MetricRules rules = MetricRules::word;  ///< the rules these figures were counted by
  Counts micro;
  std::map<std::string, Counts> per_type;  ///< every type seen in gold or predictions
  std::size_t sentences = 0;
  std::size_t exact = 0;  ///< sentences whose predicted entity multiset equals the gold one

  [[nodiscard]] double exact_match() const { return sentences ? double(exact) / double(sentences) : 0.0; }

  /// {"precision", "recall", "f1", "exact_match", "correct", "predicted", "gold", "per_type": {...},
  /// "metric", "scale"}. Precision, recall, F1 and exact match are percentages (0-100), the scale
  /// conlleval, the papers and every line genner prints use; Counts' methods give fractions.
  [[nodiscard]] nlohmann::json to_json() const {
    const auto one = [](const Counts& c) {
      return nlohmann::json{{"precision", 100 * c.precision()}, {"recall", 100 * c.recall()},
                            {"f1", 100 * c.f1()},               {"correct", c.correct},
                            {"predicted", c.predicted},         {"gold", c.gold}};
    };
    nlohmann::json out = one(micro);
    out["metric"] = metric_rules_name(rules);
    out["scale"] = "percent";
    out["exact_match"] = 100 * exact_match();
    out["sentences"] = sentences;
    out["per_type"] = nlohmann::json::object();
    for (const auto& [type, c] : per_type) out["per_type"][type] = one(c);
    return out;
  }
};

/// Accumulates Scores sentence by sentence: `metric.add(gold, predicted)` per sentence.
class EntityMetric {
 public:
  /// Adds one sentence. Entities are matched as multisets: an entity predicted twice but
  /// present once in gold counts one correct and one wrong prediction.
  template <EntityLike E>
  void add(const std::vector<E>& gold, const std::vector<E>& predicted) {
    auto g = keys(gold);
    auto p = keys(predicted);
    ++scores_.sentences;
    if (g == p) ++scores_.exact;
    for (const auto& k : g) {
      ++scores_.per_type[k.first].gold;
      ++scores_.micro.gold;
    }
    for (const auto& k : p) {
      ++scores_.per_type[k.first].predicted;
      ++scores_.micro.predicted;
    }
    // Both sorted: a merge walk counts min(multiplicity in gold, multiplicity in predictions).
    auto gi = g.begin();
    auto pi = p.begin();
    while (gi != g.end() && pi != p.end()) {
      if (*gi < *pi) {
        ++gi;
      } else if (*pi < *gi) {
        ++pi;
      } else {
        ++scores_.per_type[gi->first].correct;
        ++scores_.micro.correct;
        ++gi;
        ++pi;
      }
    }
  }

  /// Adds whole corpora, sentence i of `gold` against sentence i of `predicted`.
  template <EntityLike E>
  void add_all(const std::vector<std::vector<E>>& gold, const std::vector<std::vector<E>>& predicted) {
    GENNER_CHECK(gold.size() == predicted.size(),
                 "EntityMetric::add_all: expected as many predicted sentences as gold ones (", gold.size(), "), found ",
                 predicted.size());
    for (std::size_t i = 0; i < gold.size(); ++i) add(gold[i], predicted[i]);
  }

  [[nodiscard]] const Scores& scores() const { return scores_; }
  void reset() { scores_ = {}; }

 private:
  using Key = std::pair<std::string, std::vector<std::pair<int, int>>>;

  template <EntityLike E>
  static std::vector<Key> keys(const std::vector<E>& entities) {
    std::vector<Key> out;
    out.reserve(entities.size());
    for (const auto& e : entities) {
      Key k{std::string(e.type), {}};
      for (const auto& f : e.fragments) k.second.emplace_back(int(f.first), int(f.second));
      std::sort(k.second.begin(), k.second.end());  // fragment order carries no meaning
      out.push_back(std::move(k));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Scores scores_;
};

/// Scores a whole corpus at once.
template <EntityLike E>
[[nodiscard]] Scores score_entities(const std::vector<std::vector<E>>& gold,
                                    const std::vector<std::vector<E>>& predicted) {
  EntityMetric m;
  m.add_all(gold, predicted);
  return m.scores();
}

/// The entities of a generated index sequence under the `pointer` rules: each is its pointers
/// followed by its type index (1..num_types). Reading stops at the first 0; a sequence with no 0
/// loses its last index. `word`/`bpe`: pointers strictly increasing; `span`: non-decreasing and
/// even in number; a type index with no pointer before it closes nothing.
[[nodiscard]] inline std::vector<std::vector<std::int64_t>> pointer_spans(std::span<const std::int64_t> indices,
                                                                          std::int64_t num_types,
                                                                          data::TargetType type) {
  const auto end = std::find(indices.begin(), indices.end(), std::int64_t{0});
  auto stop = end;
  if (end == indices.end() && !indices.empty()) --stop;  // no end index: the last index is dropped
  std::vector<std::vector<std::int64_t>> out;
  std::vector<std::int64_t> pending;
  for (auto it = indices.begin(); it != stop; ++it) {
    const auto j = *it;
    if (j <= num_types) {
      bool valid = !pending.empty();
      for (std::size_t k = 1; valid && k < pending.size(); ++k)
        valid = type == data::TargetType::span ? pending[k - 1] <= pending[k] : pending[k - 1] < pending[k];
      if (type == data::TargetType::span) valid = valid && pending.size() % 2 == 0;
      if (valid) {
        pending.push_back(j);
        out.push_back(pending);
      }
      pending.clear();
    } else {
      pending.push_back(j);
    }
  }
  return out;
}

/// The entities of a gold target sequence (pointers + type, up to its 0), taken as they are.
[[nodiscard]] inline std::vector<std::vector<std::int64_t>> target_spans(std::span<const std::int64_t> target,
                                                                         std::int64_t num_types) {
  std::vector<std::vector<std::int64_t>> out;
  std::vector<std::int64_t> pending;
  for (const auto j : target) {
    if (j == 0) break;
    pending.push_back(j);
    if (j <= num_types) {
      GENNER_CHECK(pending.size() > 1, "target_spans: expected pointers before type index ", j,
                   " in a gold target, found none.");
      out.push_back(std::move(pending));
      pending.clear();
    }
  }
  GENNER_CHECK(pending.empty(),
               "target_spans: expected a gold target whose pointers are closed by a type index, found ", pending.size(),
               " pointers left open.");
  return out;
}

/// Per-sentence figures of the `pointer` rules.
struct PointerSentence {
  std::vector<std::vector<std::int64_t>> predicted;  ///< pointer_spans() of the prediction
  std::size_t tp = 0, fn = 0, fp = 0;
  bool exact = false;
};

/// Accumulates Scores under the `pointer` rules (see the top of this file), sentence by sentence
/// from the gold target and the generated index sequence.
class PointerMetric {
 public:
  /// `types[i]` names type index i + 1.
  PointerMetric(std::vector<std::string> types, data::TargetType type) : types_(std::move(types)), type_(type) {
    scores_.rules = MetricRules::pointer;
  }

  /// Adds one sentence: `target` the gold index sequence (ending with 0), `predicted` the generated
  /// one (padding after the end is ignored).
  PointerSentence add(std::span<const std::int64_t> target, std::span<const std::int64_t> predicted) {
    const auto L = static_cast<std::int64_t>(types_.size());
    PointerSentence out;
    out.predicted = pointer_spans(predicted, L, type_);
    const auto gold = target_spans(target, L);
    const std::set<std::vector<std::int64_t>> g(gold.begin(), gold.end());
    const std::set<std::vector<std::int64_t>> p(out.predicted.begin(), out.predicted.end());
    for (const auto& k : g) {
      auto& c = per_type(k.back());
      ++c.gold;
      ++scores_.micro.gold;
      if (p.count(k)) {
        ++c.correct;
        ++scores_.micro.correct;
        ++out.tp;
      } else {
        ++out.fn;
      }
    }
    for (const auto& k : p) {
      ++per_type(k.back()).predicted;
      ++scores_.micro.predicted;
      if (!g.count(k)) ++out.fp;
    }
    out.exact = sequence_before_end(target) == sequence_before_end(predicted);
    ++scores_.sentences;
    if (out.exact) ++scores_.exact;
    return out;
  }

  [[nodiscard]] const Scores& scores() const { return scores_; }
  void reset() {
    scores_ = {};
    scores_.rules = MetricRules::pointer;
  }

 private:
  /// The indices before the first 0; with no 0, all but the last.
  static std::vector<std::int64_t> sequence_before_end(std::span<const std::int64_t> s) {
    const auto end = std::find(s.begin(), s.end(), std::int64_t{0});
    if (end == s.end()) return {s.begin(), s.empty() ? s.end() : s.end() - 1};
    return {s.begin(), end};
  }
  Counts& per_type(std::int64_t index) {
    GENNER_CHECK(index >= 1 && index <= static_cast<std::int64_t>(types_.size()),
                 "PointerMetric: expected a type index in 1..", types_.size(), ", found ", index, ".");
    return scores_.per_type[types_[static_cast<std::size_t>(index - 1)]];
  }

  std::vector<std::string> types_;
  data::TargetType type_;
  Scores scores_;
};

}  // namespace genner::train
