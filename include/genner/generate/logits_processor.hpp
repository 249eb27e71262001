// genner/generate/logits_processor.hpp: the hook between a model's log-probabilities and the
// search's choice (CTranslate2's logits-processor chain): minimum length, repetition penalty,
// and the interface constrained NER decoding (constraints.hpp) implements.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>

namespace genner::generate {

/// What a processor may look at when it edits one step's scores.
struct StepContext {
  const torch::Tensor& history;                ///< [N, t] int64 indices chosen so far (no start token), on CPU
  int64_t step;                                ///< t: index of the token being chosen (0 = first)
  int64_t num_beams;                           ///< rows per source; row r belongs to source r / num_beams
  const std::vector<int64_t>& max_new_tokens;  ///< per source: tokens it may generate in all
  const std::vector<bool>& finished;           ///< per row: already ended (the search ignores its scores)
};

/// Edits log-probabilities [N, V] in place (set a score to -inf to forbid an index).
class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  virtual void apply(torch::Tensor& log_probs, const StepContext& context) = 0;
};

/// Processors applied in order.
class LogitsChain {
 public:
  LogitsChain() = default;
  LogitsChain& add(std::shared_ptr<LogitsProcessor> processor) {
    GENNER_CHECK(processor != nullptr, "LogitsChain::add: expected a processor, found a null pointer.");
    processors_.push_back(std::move(processor));
    return *this;
  }
  template <typename P, typename... Args>
  LogitsChain& emplace(Args&&... args) {
    return add(std::make_shared<P>(std::forward<Args>(args)...));
  }
  /// Appends every processor of `other` after this chain's own.
  LogitsChain& append(const LogitsChain& other) {
    processors_.insert(processors_.end(), other.processors_.begin(), other.processors_.end());
    return *this;
  }
  bool empty() const { return processors_.empty(); }
  void apply(torch::Tensor& log_probs, const StepContext& context) const {
    for (const auto& p : processors_) p->apply(log_probs, context);
  }

 private:
  std::vector<std::shared_ptr<LogitsProcessor>> processors_;
};

/// Forbids the end index before `min_new_tokens` tokens (forces a fixed length when equal to the maximum).
class MinLength : public LogitsProcessor {
 public:
  MinLength(int64_t min_new_tokens, int64_t eos_index) : min_(min_new_tokens), eos_(eos_index) {}
  void apply(torch::Tensor& log_probs, const StepContext& context) override {
    if (context.step < min_) log_probs.select(1, eos_).fill_(-std::numeric_limits<float>::infinity());
  }

 private:
  int64_t min_, eos_;
};

/// CTRL's repetition penalty as Hugging Face applies it: every index already generated in a row
/// has its score multiplied by `penalty` when negative, divided by it when positive.
class RepetitionPenalty : public LogitsProcessor {
 public:
  explicit RepetitionPenalty(double penalty) : penalty_(penalty) {
    GENNER_CHECK(penalty > 0.0, "RepetitionPenalty: expected a positive penalty, found ", penalty, ".");
  }
  void apply(torch::Tensor& log_probs, const StepContext& context) override {
    if (context.history.size(1) == 0 || penalty_ == 1.0) return;
    auto index = context.history.to(log_probs.device());
    auto picked = log_probs.gather(1, index);
    picked = torch::where(picked < 0, picked * penalty_, picked / penalty_);
    log_probs.scatter_(1, index, picked);
  }

 private:
  double penalty_;
};

}  // namespace genner::generate
