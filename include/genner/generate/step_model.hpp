// genner/generate/step_model.hpp: the StepModel concept — what any model must offer to be
// decoded by genner/generate/search.hpp (a state, one decoding step, a beam reorder).
#pragma once

#include <torch/types.h>

#include <concepts>
#include <type_traits>
#include <utility>

namespace genner::generate {

/// A model the searches can drive, one token per call.
///  - `State`: everything that persists across steps (encoder output, decoder cache, ...),
///    one row per hypothesis.
///  - `step(state, last)`: `last` [N] int64 holds the index each row chose at the previous step;
///    on the first call it is an undefined tensor (feed the decoder start token). Returns
///    logits [N, V]; V may differ between searches but is fixed within one.
///  - `reorder(state, index)`: row i of the new state is row index[i] of the old one. Before the
///    first step the searches call it once to expand each source to its beams (index may be
///    longer than the state); after that, `index` never moves a row to another source, so
///    per-source tensors (encoder output, masks) need not be gathered again.
template <typename M>
concept StepModel = requires(M& model, typename M::State& state, const torch::Tensor& tensor) {
  typename M::State;
  { model.step(state, tensor) } -> std::convertible_to<torch::Tensor>;
  {model.reorder(state, tensor)};
};

/// A StepModel that can also shrink its state: `keep_rows(state, index)` keeps rows `index` (increasing
/// positions in the current state, after the first step) and drops the others. Greedy search uses it
/// to stop decoding rows that have finished.
template <typename M>
concept RowDroppingStepModel = StepModel<M> && requires(M& model, typename M::State& state, const torch::Tensor& t) {
  {model.keep_rows(state, t)};
};
template <typename M>
inline constexpr bool can_keep_rows = RowDroppingStepModel<M>;

/// For a readable error at the call site: `static_assert(is_step_model<M>, ...)`.
template <typename M>
inline constexpr bool is_step_model = StepModel<M>;

/// Instantiated by every search and the Generator: one readable error for a type that is not a
/// StepModel, with the caller named in the instantiation notes.
template <typename M>
constexpr void require_step_model() {
  static_assert(is_step_model<M>,
                "greedy_search, beam_search, search and Generator need a StepModel: a State type, step(State&, "
                "last [N]) -> logits [N, V] and reorder(State&, index); see genner/generate/step_model.hpp.");
}

/// Beam expansion deferred to the first step, for step models whose first step is the same for
/// every beam of a source (all feed the decoder start token): the searches' reorders before that
/// step are composed here, the first step runs once per source, and only then is every row's
/// state copied to its beams.
class DeferredExpansion {
 public:
  /// A reorder before the first step: row i becomes row index[i] of the expansion so far.
  void compose(const torch::Tensor& index) {
    index_ = index_.defined() ? index_.index_select(0, index.to(index_.device())) : index.to(torch::kLong);
  }
  [[nodiscard]] bool pending() const { return index_.defined(); }

  /// Returns `step()`'s logits with their rows expanded, after `select(index)` has expanded the
  /// state's rows (index on the device of the logits).
  template <typename Step, typename Select>
  torch::Tensor first_step(Step&& step, Select&& select) {
    torch::Tensor logits = step();
    const auto index = std::exchange(index_, torch::Tensor()).to(logits.device());
    select(index);
    return logits.index_select(0, index);
  }

 private:
  torch::Tensor index_;
};

}  // namespace genner::generate
