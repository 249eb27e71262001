// genner/generate/search.hpp: greedy and beam search over any StepModel (step_model.hpp),
// with the logits-processor chain (logits_processor.hpp) between the model and the choice.
// Beam search follows Hugging Face transformers 4.30's BeamSearchScorer (early_stopping=false):
// 2 * num_beams candidates per step, finished hypotheses scored sum_logprobs / length^penalty
// where length counts the decoder start token and every generated token except the end token,
// a source is done once it holds num_beams finished hypotheses none of which the best running
// beam can still beat. Deliberate differences: a done source keeps its rows in place (Hugging Face
// points them at row 0; only the scores of rows nobody reads differ); end candidates scored -inf
// (forbidden by a processor) never become hypotheses; maximum lengths are per source; min_len and
// the repetition penalty count generated tokens only (Hugging Face also counts the start token).
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/generate/logits_processor.hpp>
#include <genner/generate/step_model.hpp>

namespace genner::generate {

/// Run-time search settings (none of them changes a model's structure).
struct SearchOptions {
  int64_t num_beams = 1;  ///< 1: greedy search
  int64_t max_len = 20;   ///< new tokens at most: max_len + floor(max_len_a * source length)
  double max_len_a = 0.0;
  int64_t min_len = 0;              ///< the end index is forbidden before this many new tokens
  double length_penalty = 1.0;      ///< beam search: finished score = sum_logprobs / length^length_penalty
  double repetition_penalty = 1.0;  ///< 1: off
  int64_t eos_index = 1;            ///< index that ends a sequence
  int64_t pad_index = 0;            ///< index written after the end
  bool return_scores = false;       ///< keep per-step scores (greedy: raw logits; beam: processed log-probs)
  /// Greedy search with a model that can drop rows (keep_rows, step_model.hpp): finished rows leave
  /// the batch instead of being decoded to the length limit. Results are the same either way; with
  /// return_scores, a dropped row's later scores are 0.
  bool drop_finished = true;

  SearchOptions& beams(int64_t v) {
    num_beams = v;
    return *this;
  }
  SearchOptions& max_length(int64_t fixed, double per_source_token = 0.0) {
    max_len = fixed;
    max_len_a = per_source_token;
    return *this;
  }
  SearchOptions& min_length(int64_t v) {
    min_len = v;
    return *this;
  }
  SearchOptions& penalty(double v) {
    length_penalty = v;
    return *this;
  }
  SearchOptions& repetition(double v) {
    repetition_penalty = v;
    return *this;
  }
  SearchOptions& end_and_pad(int64_t eos, int64_t pad) {
    eos_index = eos;
    pad_index = pad;
    return *this;
  }
  SearchOptions& scores(bool v = true) {
    return_scores = v;
    return *this;
  }
  SearchOptions& dropping_finished(bool v = true) {
    drop_finished = v;
    return *this;
  }
};

/// What a search returns, one row per source.
struct SearchResult {
  torch::Tensor sequences;            ///< [B, T] int64 generated indices (no start token), pad after the end
  torch::Tensor sequence_scores;      ///< [B] float: beam: the length-penalised score; greedy: sum of log-probs
  std::vector<torch::Tensor> scores;  ///< per step, [B * beams, V] (only with return_scores)
};

/// Per-source maximum of new tokens: max_len + floor(max_len_a * source_length), at least 1.
inline std::vector<int64_t> max_new_tokens(const SearchOptions& o, int64_t batch,
                                           std::span<const int64_t> source_lengths = {}) {
  GENNER_CHECK(source_lengths.empty() || static_cast<int64_t>(source_lengths.size()) == batch,
               "max_new_tokens: expected one source length per batch row (", batch, "), found ", source_lengths.size(),
               ".");
  std::vector<int64_t> out(static_cast<size_t>(batch), o.max_len);
  for (size_t b = 0; b < source_lengths.size(); ++b)
    out[b] = o.max_len + static_cast<int64_t>(std::floor(o.max_len_a * static_cast<double>(source_lengths[b])));
  for (auto& m : out) m = std::max<int64_t>(m, 1);
  return out;
}

namespace detail {

/// The processors every search applies before the caller's: minimum length, repetition penalty.
inline void apply_builtin(torch::Tensor& log_probs, const SearchOptions& o, const StepContext& ctx) {
  if (o.min_len > 0) MinLength(o.min_len, o.eos_index).apply(log_probs, ctx);
  if (o.repetition_penalty != 1.0) RepetitionPenalty(o.repetition_penalty).apply(log_probs, ctx);
}

/// Hugging Face's BeamHypotheses: the num_beams best finished hypotheses of one source.
class BeamHypotheses {
 public:
  struct Hypothesis {
    double score;
    std::vector<int64_t> tokens;  ///< generated indices, without the end index
  };
  BeamHypotheses(int64_t num_beams, double length_penalty) : beams_(num_beams), penalty_(length_penalty) {}

  int64_t size() const { return static_cast<int64_t>(hyps_.size()); }

  /// `length` as Hugging Face's hyp.shape[-1]: start token plus the tokens kept.
  void add(std::vector<int64_t> tokens, double sum_logprobs, int64_t length) {
    const double score = sum_logprobs / std::pow(static_cast<double>(length), penalty_);
    if (size() < beams_ || score > worst_) {
      hyps_.push_back({score, std::move(tokens)});
      if (size() > beams_) {
        // drop the worst (first of equals), the new worst is the next one
        std::vector<size_t> order(hyps_.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return hyps_[a].score < hyps_[b].score; });
        worst_ = hyps_[order[1]].score;
        hyps_.erase(hyps_.begin() + static_cast<std::ptrdiff_t>(order[0]));
      } else {
        worst_ = std::min(score, worst_);
      }
    }
  }

  /// early_stopping=false: done when full and the best running sum cannot beat the worst kept.
  bool is_done(double best_sum_logprobs, int64_t current_length) const {
    if (size() < beams_) return false;
    return worst_ >= best_sum_logprobs / std::pow(static_cast<double>(current_length), penalty_);
  }

  /// The best hypothesis (the last added among equal scores, as Python's sorted().pop()).
  const Hypothesis& best() const {
    GENNER_CHECK(!hyps_.empty(), "BeamHypotheses::best: expected at least one finished hypothesis, found none.");
    const Hypothesis* out = &hyps_.front();
    for (const auto& h : hyps_)
      if (h.score >= out->score) out = &h;
    return *out;
  }

 private:
  int64_t beams_;
  double penalty_;
  double worst_ = 1e9;
  std::vector<Hypothesis> hyps_;
};

inline std::vector<int64_t> row_of(const torch::Tensor& history, int64_t row) {
  const auto r = history[row];
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.size(0)};
}

/// The running state of a beam search: `k` rows per source (row b*k+j is beam j of source b),
/// their scores and token histories, and each source's finished hypotheses.
struct BeamState {
  BeamState(int64_t batch_size, int64_t beams, double length_penalty)
      : batch(batch_size),
        k(beams),
        rows(batch_size * beams),
        hyps(static_cast<size_t>(batch_size), BeamHypotheses(beams, length_penalty)),
        done(static_cast<size_t>(batch_size), false),
        row_done(static_cast<size_t>(rows), false),
        scores(static_cast<size_t>(rows), 0.0f),
        history(torch::empty({rows, 0}, torch::TensorOptions().dtype(torch::kLong))) {
    // Only the first beam of each source starts live, so the first step does not pick k copies.
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t j = 1; j < k; ++j) scores[static_cast<size_t>(b * k + j)] = -1e9f;
  }

  int64_t batch, k, rows;
  std::vector<BeamHypotheses> hyps;
  std::vector<bool> done, row_done;
  std::vector<float> scores;
  torch::Tensor history;  ///< [rows, steps so far], on the CPU
};

/// The rows that run on after a step: their scores, last tokens and the rows they continue.
struct BeamChoice {
  std::vector<float> scores;
  torch::Tensor tokens, index;
};

/// A score that is neither infinite nor masked to the lowest float.
inline bool finite_score(double v) { return std::isfinite(v) && v > -1e30; }

/// Each source's best 2k (beam, token) continuations of the running scores: scores and ids
/// (beam * V + token) [batch, min(2k, kV)], best first.
inline std::pair<torch::Tensor, torch::Tensor> top_continuations(const torch::Tensor& log_probs, BeamState& s) {
  const int64_t V = log_probs.size(1);
  auto totals = (log_probs + torch::from_blob(s.scores.data(), {s.rows, 1}, torch::kFloat)).view({s.batch, s.k * V});
  auto [top_scores, top_ids] = totals.topk(std::min(2 * s.k, s.k * V), 1, true, true);
  return {top_scores.contiguous(), top_ids.contiguous()};
}

/// Walks each unfinished source's candidates best first: an end token among the first k closes a
/// hypothesis, the first k other tokens run on. Finished sources keep their rows, fed padding.
inline BeamChoice choose_beams(BeamState& s, const torch::Tensor& top_scores, const torch::Tensor& top_ids, int64_t V,
                               int64_t cur_len, const SearchOptions& options) {
  const int64_t C = top_ids.size(1), k = s.k;
  const auto* ts = top_scores.data_ptr<float>();
  const auto* ti = top_ids.data_ptr<int64_t>();
  auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  BeamChoice out{std::vector<float>(static_cast<size_t>(s.rows), 0.0f),
                 torch::full({s.rows}, options.pad_index, cpu_long), torch::arange(s.rows, cpu_long)};
  auto* nt = out.tokens.data_ptr<int64_t>();
  auto* ni = out.index.data_ptr<int64_t>();
  for (int64_t b = 0; b < s.batch; ++b) {
    if (s.done[b]) continue;
    int64_t j = 0;
    for (int64_t rank = 0; rank < C && j < k; ++rank) {
      const int64_t id = ti[b * C + rank];
      const double score = ts[b * C + rank];
      const int64_t beam = id / V, token = id % V;
      const int64_t row = b * k + beam;
      if (token == options.eos_index) {
        if (rank >= k || !finite_score(score)) continue;
        s.hyps[b].add(row_of(s.history, row), score, cur_len);
      } else {
        out.scores[b * k + j] = static_cast<float>(score);
        nt[b * k + j] = token;
        ni[b * k + j] = row;
        ++j;
      }
    }
    GENNER_CHECK(j == k, "beam_search: expected ", k, " running beams for source ", b, ", found ", j,
                 " (fewer than 2 * num_beams candidates).");
    s.done[b] = s.hyps[b].is_done(ts[b * C], cur_len);
  }
  return out;
}

/// Sources at their own maximum length after step t: their running beams become hypotheses.
/// Returns whether every source is done.
inline bool close_finished_sources(BeamState& s, int64_t t, std::span<const int64_t> max_new, int64_t cur_len) {
  bool all_done = true;
  for (int64_t b = 0; b < s.batch; ++b) {
    if (!s.done[b] && t + 1 >= max_new[b]) {
      for (int64_t j = 0; j < s.k; ++j) {
        const double score = s.scores[b * s.k + j];
        if (finite_score(score) || s.hyps[b].size() == 0)
          s.hyps[b].add(row_of(s.history, b * s.k + j), score, cur_len + 1);
      }
      s.done[b] = true;
    }
    for (int64_t j = 0; j < s.k; ++j) s.row_done[b * s.k + j] = s.done[b];
    all_done = all_done && s.done[b];
  }
  return all_done;
}

/// Hugging Face's finalize: each source's best hypothesis in a [batch, width] matrix, width =
/// min(longest + 1, steps), the end index after the shorter ones, padding after that.
inline void write_best_hypotheses(const BeamState& s, int64_t steps, const SearchOptions& options, SearchResult& out) {
  int64_t longest = 0;
  for (const auto& h : s.hyps) longest = std::max<int64_t>(longest, static_cast<int64_t>(h.best().tokens.size()));
  const int64_t width = std::min(longest + 1, steps);
  out.sequences = torch::full({s.batch, width}, options.pad_index, torch::TensorOptions().dtype(torch::kLong));
  out.sequence_scores = torch::empty({s.batch}, torch::kFloat);
  auto* seq = out.sequences.data_ptr<int64_t>();
  for (int64_t b = 0; b < s.batch; ++b) {
    const auto& best = s.hyps[b].best();
    const auto len = static_cast<int64_t>(best.tokens.size());
    std::copy(best.tokens.begin(), best.tokens.end(), seq + b * width);
    if (len < width) seq[b * width + len] = options.eos_index;
    out.sequence_scores[b] = best.score;
  }
}

/// Greedy search's bookkeeping after step t: finished rows get the pad index in `next`, the others add
/// their `picked` log-probability to `sums` and finish on the end index or at their maximum length.
/// Returns whether every row has finished.
inline bool record_greedy_step(int64_t* next, const double* picked, int64_t batch, int64_t t,
                               const std::vector<int64_t>& max_new, const SearchOptions& options,
                               std::vector<bool>& finished, std::vector<double>& sums) {
  bool all_done = true;
  for (int64_t b = 0; b < batch; ++b) {
    if (finished[b]) {
      next[b] = options.pad_index;
    } else {
      sums[b] += picked[b];
      if (next[b] == options.eos_index || t + 1 >= max_new[b]) finished[b] = true;
    }
    all_done = all_done && finished[b];
  }
  return all_done;
}

/// Drops the finished rows from the model's `state` (keep_rows, step_model.hpp) when there are any;
/// `active` lists the batch rows the state holds, in order, and keeps listing them.
template <typename M>
void drop_finished_rows(M& model, typename M::State& state, const std::vector<bool>& finished,
                        const torch::Device& device, std::vector<int64_t>& active) {
  std::vector<int64_t> keep, rows;  // positions in the current state, and their batch rows
  for (size_t i = 0; i < active.size(); ++i)
    if (!finished[static_cast<size_t>(active[i])]) {
      keep.push_back(static_cast<int64_t>(i));
      rows.push_back(active[i]);
    }
  if (rows.size() < active.size()) {
    model.keep_rows(state, torch::tensor(keep, torch::TensorOptions().dtype(torch::kLong)).to(device));
    active = std::move(rows);
  }
}

}  // namespace detail

/// Greedy search over `batch` sources; `state` holds one row per source.
template <typename M>
SearchResult greedy_search(M& model, typename M::State& state, int64_t batch, const SearchOptions& options,
                           std::span<const int64_t> source_lengths = {}, const LogitsChain& chain = {}) {
  require_step_model<M>();
  const auto max_new = max_new_tokens(options, batch, source_lengths);
  const int64_t steps = *std::max_element(max_new.begin(), max_new.end());
  auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  torch::Tensor history = torch::empty({batch, 0}, cpu_long);
  std::vector<bool> finished(static_cast<size_t>(batch), false);
  std::vector<double> sums(static_cast<size_t>(batch), 0.0);
  SearchResult out;
  torch::Tensor last;
  // The batch rows the model's state holds, in order (all of them unless finished rows are dropped).
  std::vector<int64_t> active(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) active[static_cast<size_t>(b)] = b;
  for (int64_t t = 0; t < steps; ++t) {
    torch::Tensor logits = model.step(state, last);
    const auto A = static_cast<int64_t>(active.size());
    GENNER_CHECK(logits.dim() == 2 && logits.size(0) == A, "greedy_search: expected logits [", A,
                 ", V] from step(), found ", logits.sizes(), ".");
    if (A < batch) {  // dropped rows read 0; their choice is overwritten with the pad index below
      auto full = torch::zeros({batch, logits.size(1)}, logits.options());
      full.index_copy_(0, torch::tensor(active, cpu_long).to(logits.device()), logits);
      logits = full;
    }
    if (options.return_scores) out.scores.push_back(logits.detach().to(torch::kFloat).cpu());
    auto log_probs = torch::log_softmax(logits.to(torch::kFloat), -1).cpu();
    const StepContext ctx{history, t, 1, max_new, finished};
    detail::apply_builtin(log_probs, options, ctx);
    chain.apply(log_probs, ctx);
    auto next = log_probs.argmax(-1).contiguous();
    auto picked = log_probs.gather(1, next.unsqueeze(1)).squeeze(1).to(torch::kDouble).contiguous();
    const bool all_done = detail::record_greedy_step(next.data_ptr<int64_t>(), picked.data_ptr<double>(), batch, t,
                                                     max_new, options, finished, sums);
    history = torch::cat({history, next.unsqueeze(1)}, 1);
    if (all_done) break;
    if constexpr (can_keep_rows<M>) {
      if (options.drop_finished) detail::drop_finished_rows(model, state, finished, logits.device(), active);
    }
    last = active.size() < static_cast<size_t>(batch) ? next.index_select(0, torch::tensor(active, cpu_long)) : next;
    last = last.to(logits.device());
  }
  out.sequences = history;
  out.sequence_scores = torch::tensor(sums, torch::kDouble).to(torch::kFloat);
  return out;
}

/// Beam search over `batch` sources; `state` holds one row per source and is expanded here.
template <typename M>
SearchResult beam_search(M& model, typename M::State& state, int64_t batch, const SearchOptions& options,
                         std::span<const int64_t> source_lengths = {}, const LogitsChain& chain = {}) {
  require_step_model<M>();
  const int64_t k = options.num_beams;
  GENNER_CHECK(k >= 1, "beam_search: expected num_beams >= 1, found ", k, ".");
  const auto max_new = max_new_tokens(options, batch, source_lengths);
  const int64_t steps = *std::max_element(max_new.begin(), max_new.end());
  model.reorder(state, torch::arange(batch, torch::TensorOptions().dtype(torch::kLong)).repeat_interleave(k));
  detail::BeamState beams(batch, k, options.length_penalty);
  SearchResult out;
  torch::Tensor last;
  for (int64_t t = 0; t < steps; ++t) {
    torch::Tensor logits = model.step(state, last);
    GENNER_CHECK(logits.dim() == 2 && logits.size(0) == beams.rows, "beam_search: expected logits [", beams.rows,
                 ", V] from step(), found ", logits.sizes(), ".");
    auto log_probs = torch::log_softmax(logits.to(torch::kFloat), -1).cpu();
    const StepContext ctx{beams.history, t, k, max_new, beams.row_done};
    detail::apply_builtin(log_probs, options, ctx);
    chain.apply(log_probs, ctx);
    if (options.return_scores) out.scores.push_back(log_probs.clone());
    const auto [top_scores, top_ids] = detail::top_continuations(log_probs, beams);
    const int64_t cur_len = t + 1;  // Hugging Face's input_ids length before this step's token
    auto next = detail::choose_beams(beams, top_scores, top_ids, logits.size(1), cur_len, options);
    beams.scores = std::move(next.scores);
    beams.history = torch::cat({beams.history.index_select(0, next.index), next.tokens.unsqueeze(1)}, 1);
    if (detail::close_finished_sources(beams, t, max_new, cur_len)) break;
    model.reorder(state, next.index.to(logits.device()));
    last = next.tokens.to(logits.device());
  }
  detail::write_best_hypotheses(beams, steps, options, out);
  return out;
}

/// Greedy when options.num_beams == 1, beam search otherwise.
template <typename M>
SearchResult search(M& model, typename M::State& state, int64_t batch, const SearchOptions& options,
                    std::span<const int64_t> source_lengths = {}, const LogitsChain& chain = {}) {
  require_step_model<M>();
  return options.num_beams == 1 ? greedy_search(model, state, batch, options, source_lengths, chain)
                                : beam_search(model, state, batch, options, source_lengths, chain);
}

}  // namespace genner::generate
