// genner/generate/constraints.hpp: PointerConstraint, the logits processor for constrained
// pointer NER decoding (docs/METHOD.md §1, a step beyond the published code): it forbids every next
// index that would make an invalid entity, so every generated sequence parses completely.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/data/targets.hpp>
#include <genner/generate/logits_processor.hpp>

namespace genner::generate {

/// Output space per sentence: 0 end, 1..L types, L+1+p pointer to source position p.
/// Rules: inside an entity pointers strictly increase (span: do not decrease); a type closes an
/// entity only after >= 1 pointer (span: an even count >= 2); pointers stay before the source's
/// `</s>`; the end comes only between entities; an entity is never left open at the maximum
/// length; optionally no entity (pointers + type) is generated twice. Given word boundaries,
/// pointers also land where the target type puts them (`word`: first pieces; `span`: a fragment's
/// first piece of its first word, then last piece of its last word), so distinct index sequences
/// are distinct entities.
class PointerConstraint : public LogitsProcessor {
 public:
  /// `pointable[b]`: positions source b may point to (those before its `</s>`).
  /// `contiguous`: every entity is one fragment (flat and nested NER), so pointers inside an
  /// entity move to the very next word (`word`), piece (`bpe`), or close after one pair (`span`).
  PointerConstraint(int64_t num_types, data::TargetType target, std::vector<int64_t> pointable, bool no_repeat = false,
                    bool contiguous = false)
      : types_(num_types),
        target_(target),
        pointable_(std::move(pointable)),
        no_repeat_(no_repeat),
        contiguous_(contiguous) {
    GENNER_CHECK(num_types >= 1, "PointerConstraint: expected at least one entity type, found ", num_types, ".");
  }

  /// Restricts pointers to word boundaries: word_start[b] / word_end[b] are the source positions of
  /// each word's first and last piece.
  PointerConstraint& with_words(const std::vector<std::vector<int64_t>>& word_start,
                                const std::vector<std::vector<int64_t>>& word_end) {
    GENNER_CHECK(word_start.size() == pointable_.size() && word_end.size() == pointable_.size(),
                 "PointerConstraint::with_words: expected boundaries for ", pointable_.size(), " sources, found ",
                 word_start.size(), " and ", word_end.size(), ".");
    roles_.assign(pointable_.size(), {});
    for (size_t b = 0; b < pointable_.size(); ++b) {
      roles_[b].assign(static_cast<size_t>(pointable_[b]), 0);
      auto mark = [&](int64_t p, unsigned char bit) {
        if (p >= 0 && p < pointable_[b]) roles_[b][static_cast<size_t>(p)] |= bit;
      };
      for (const auto p : word_start[b]) mark(p, 1);
      for (const auto p : word_end[b]) mark(p, 2);
    }
    return *this;
  }

  /// Pointable counts from source ids [B, S] and mask [B, S]: real tokens before the first `</s>`.
  static std::vector<int64_t> pointable_from(const torch::Tensor& src_ids, const torch::Tensor& src_mask,
                                             int64_t eos_token_id = 1) {
    auto ids = src_ids.cpu();
    auto before_eos = (ids == eos_token_id).to(torch::kLong).cumsum(1) == 0;
    auto counts = before_eos.logical_and(src_mask.cpu().to(torch::kBool)).sum(1).to(torch::kLong).contiguous();
    return {counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.size(0)};
  }

  void apply(torch::Tensor& log_probs, const StepContext& ctx) override {
    const int64_t N = log_probs.size(0), V = log_probs.size(1);
    GENNER_CHECK(N == static_cast<int64_t>(pointable_.size()) * ctx.num_beams, "PointerConstraint: expected ",
                 pointable_.size(), " sources x ", ctx.num_beams, " beams = ", pointable_.size() * ctx.num_beams,
                 " rows, found ", N, ".");
    auto allowed = torch::zeros({N, V}, torch::kBool);
    auto ok = allowed.accessor<bool, 2>();
    auto history = ctx.history.contiguous();
    const int64_t T = history.size(1);
    const auto* h = history.data_ptr<int64_t>();
    const bool span = target_ == data::TargetType::span;
    std::vector<int64_t> pending;
    std::set<std::vector<int64_t>> closed;
    for (int64_t r = 0; r < N; ++r) {
      const int64_t b = r / ctx.num_beams;
      auto row = ok[r];
      const bool ended = replay(h + r * T, T, ctx.finished[static_cast<size_t>(r)], pending, closed);
      if (ended) {  // the search ignores this row; leave it untouched
        for (int64_t v = 0; v < V; ++v) row[v] = true;
        continue;
      }
      const int64_t left = ctx.max_new_tokens[static_cast<size_t>(b)] - ctx.step - 1;  // steps after this one
      const auto count = static_cast<int64_t>(pending.size());
      if (count == 0) row[0] = true;
      const bool can_close = span ? (count >= 2 && count % 2 == 0 && (!contiguous_ || count == 2)) : count >= 1;
      const bool any_type = can_close && allow_types(row, pending, closed, V);
      const bool any_pointer = allow_pointers(row, b, pending, left, V);
      if (can_close && !any_type && !any_pointer && count > 0)  // only repeats can close: allow them
        for (int64_t i = 1; i <= types_ && i < V; ++i) row[i] = true;
    }
    log_probs.masked_fill_(allowed.logical_not().to(log_probs.device()), -std::numeric_limits<float>::infinity());
  }

 private:
  /// One row of the history: `ended` (the row finished before) or an end index among `row`'s `T`
  /// indices makes it ended, which is returned; otherwise `pending` holds the pointers of the entity
  /// still open and, with no_repeat, `closed` the entities closed so far (pointers, then the negated type).
  bool replay(const int64_t* row, int64_t T, bool ended, std::vector<int64_t>& pending,
              std::set<std::vector<int64_t>>& closed) const {
    pending.clear();
    closed.clear();
    for (int64_t t = 0; t < T && !ended; ++t) {
      const int64_t x = row[t];
      if (x == 0) {
        ended = true;
      } else if (x <= types_) {
        if (no_repeat_) {
          pending.push_back(-x);  // the key: pointers then the (negated) type
          closed.insert(pending);
        }
        pending.clear();
      } else {
        pending.push_back(x - types_ - 1);
      }
    }
    return ended;
  }

  /// Allows in `row` the types that may close the open entity `pending` (with no_repeat, those that
  /// make no entity of `closed` again); returns whether it allowed any.
  bool allow_types(at::TensorAccessor<bool, 1> row, const std::vector<int64_t>& pending,
                   const std::set<std::vector<int64_t>>& closed, int64_t V) const {
    bool any_type = false;
    for (int64_t i = 1; i <= types_ && i < V; ++i) {
      bool fresh = true;
      if (no_repeat_) {
        auto key = pending;
        key.push_back(-i);
        fresh = closed.count(key) == 0;
      }
      row[i] = fresh;
      any_type = any_type || fresh;
    }
    return any_type;
  }

  /// Allows in `row` the pointers into source `b` that may follow the open entity `pending` with
  /// `left` steps after this one; returns whether it allowed any.
  bool allow_pointers(at::TensorAccessor<bool, 1> row, int64_t b, const std::vector<int64_t>& pending, int64_t left,
                      int64_t V) const {
    const bool span = target_ == data::TargetType::span;
    const auto count = static_cast<int64_t>(pending.size());
    // after one more pointer, the steps still needed to close the entity
    const int64_t need = span && (count + 1) % 2 == 1 ? 2 : 1;
    bool any_pointer = false;
    if (left >= need) {
      const int64_t lo = count == 0 ? 0 : (span ? pending.back() : pending.back() + 1);
      const int64_t hi = std::min(pointable_[static_cast<size_t>(b)], V - types_ - 1);
      // with word boundaries: which role the next pointer plays (1 a start, 2 an end, 0 any)
      const unsigned char role = roles_.empty() || target_ == data::TargetType::bpe ? 0
                                 : (span && count % 2 == 1)                         ? 2
                                                                                    : 1;
      // one fragment: after the first pointer only the next word / piece may follow (span: its end)
      const bool next_only = contiguous_ && count > 0 && !span;
      const bool closed_span = contiguous_ && span && count >= 2;
      for (int64_t p = lo; p < hi && !closed_span; ++p) {
        if (role != 0 && (roles_[static_cast<size_t>(b)][static_cast<size_t>(p)] & role) == 0) continue;
        row[types_ + 1 + p] = true;
        any_pointer = true;
        if (next_only) break;  // the first admissible position after the last pointer
      }
    }
    return any_pointer;
  }

  int64_t types_;
  data::TargetType target_;
  std::vector<int64_t> pointable_;
  bool no_repeat_;
  bool contiguous_;
  std::vector<std::vector<unsigned char>> roles_;  ///< per source, per position: 1 word start, 2 word end
};

}  // namespace genner::generate
