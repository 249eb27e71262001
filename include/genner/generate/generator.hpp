// genner/generate/generator.hpp: Generator<M>, the search bound to one StepModel, its options
// and its logits-processor chain; the piece the NER pipeline and the LM adapter share.
#pragma once

#include <torch/types.h>

#include <span>
#include <utility>

#include <genner/generate/logits_processor.hpp>
#include <genner/generate/search.hpp>
#include <genner/generate/step_model.hpp>

namespace genner::generate {

template <typename M>
class Generator {
  static_assert((require_step_model<M>(), true));

 public:
  using State = typename M::State;

  Generator(M& model, SearchOptions options, LogitsChain chain = {})
      : model_(model), options_(std::move(options)), chain_(std::move(chain)) {}

  const SearchOptions& options() const { return options_; }
  LogitsChain& chain() { return chain_; }

  /// Decodes `batch` sources held in `state` (one row each); `source_lengths` feeds max_len_a.
  SearchResult operator()(State& state, int64_t batch, std::span<const int64_t> source_lengths = {},
                          const LogitsChain* extra = nullptr) const {
    if (extra == nullptr || extra->empty()) return search(model_, state, batch, options_, source_lengths, chain_);
    LogitsChain both = chain_;
    both.append(*extra);
    return search(model_, state, batch, options_, source_lengths, both);
  }

 private:
  M& model_;
  SearchOptions options_;
  LogitsChain chain_;
};

}  // namespace genner::generate
