// genner/train/metric.hpp: the evaluation metric of docs/METHOD.md §1 — micro precision/recall/F1
// over typed entities (type + word fragments) counted with multiplicity, per-type figures and
// sentence exact match. Used by evaluation during training and by the example drivers; it is
// generic over any entity type with `.type`, `.fragments` and `==` (genner::data::Entity fits).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>

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

/// Everything the metric reports for a set of sentences.
struct Scores {
  Counts micro;
  std::map<std::string, Counts> per_type;  ///< every type seen in gold or predictions
  std::size_t sentences = 0;
  std::size_t exact = 0;  ///< sentences whose predicted entity multiset equals the gold one

  [[nodiscard]] double exact_match() const { return sentences ? double(exact) / double(sentences) : 0.0; }

  /// {"precision", "recall", "f1", "exact_match", "correct", "predicted", "gold", "per_type": {...}}.
  [[nodiscard]] nlohmann::json to_json() const {
    const auto one = [](const Counts& c) {
      return nlohmann::json{{"precision", c.precision()}, {"recall", c.recall()}, {"f1", c.f1()},
                            {"correct", c.correct},       {"predicted", c.predicted}, {"gold", c.gold}};
    };
    nlohmann::json out = one(micro);
    out["exact_match"] = exact_match();
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
    GENNER_CHECK(gold.size() == predicted.size(), "EntityMetric::add_all: expected as many predicted sentences as gold ones (",
                 gold.size(), "), found ", predicted.size());
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
[[nodiscard]] Scores score_entities(const std::vector<std::vector<E>>& gold, const std::vector<std::vector<E>>& predicted) {
  EntityMetric m;
  m.add_all(gold, predicted);
  return m.scores();
}

}  // namespace genner::train
