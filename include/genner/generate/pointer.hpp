// genner/generate/pointer.hpp: pointer NER decoding — PointerStepModel adapts a NER model
// (the contract of genner/model/encoded_source.hpp) to the searches, and decode_entities()
// runs search + optional constraints and parses the indices into entities (genner/data/targets.hpp).
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/data/batching.hpp>
#include <genner/data/entity.hpp>
#include <genner/data/targets.hpp>
#include <genner/generate/constraints.hpp>
#include <genner/generate/defaults.hpp>
#include <genner/generate/generator.hpp>
#include <genner/generate/overlaps.hpp>
#include <genner/generate/search.hpp>
#include <genner/generate/step_model.hpp>
#include <genner/model/encoded_source.hpp>
#include <genner/t5/layers.hpp>

namespace genner::generate {

/// What pointer decoding needs from a NER model (genner::model::NerModel satisfies it):
///  - `encode(src_ids [B,S], src_mask [B,S]) -> model::EncodedSource`
///  - `index_to_token(indices [N,T], src_ids [N,S]) -> token ids` (0 -> `</s>`, type i -> its label
///    token, L+1+p -> src_ids[p])
///  - `decode_step(token_ids [N,1], const EncodedSource&, t5::DecoderCache&) -> logits [N, 1+L+S]`
///    (or [N, 1, 1+L+S]) with unpointable positions already masked
///  - `num_types() -> L`
template <typename M>
concept PointerNerModel = requires(M& m, const torch::Tensor& t, const model::EncodedSource& source,
                                   t5::DecoderCache& cache) {
  { m.encode(t, t) } -> std::convertible_to<model::EncodedSource>;
  { m.index_to_token(t, t) } -> std::convertible_to<torch::Tensor>;
  { m.decode_step(t, source, cache) } -> std::convertible_to<torch::Tensor>;
  { m.num_types() } -> std::convertible_to<int64_t>;
};

namespace detail {
/// The module behind a TORCH_MODULE holder, or the object itself.
template <typename T>
decltype(auto) module_of(T& m) {
  if constexpr (requires {
                  m.ptr();
                  *m;
                }) {
    return (*m);
  } else {
    return (m);
  }
}
template <typename T>
using module_t = std::remove_reference_t<decltype(module_of(std::declval<T&>()))>;
}  // namespace detail

/// A StepModel over a pointer NER model: indices are the per-sentence output space.
template <typename NerModel>
class PointerStepModel {
  static_assert(PointerNerModel<detail::module_t<NerModel>>,
                "PointerStepModel<NerModel> needs encode(), index_to_token(), decode_step() and num_types() "
                "as described in genner/generate/pointer.hpp (genner/model/encoded_source.hpp is the contract).");

 public:
  struct State {
    model::EncodedSource source;
    t5::DecoderCache cache;
    bool started = false;
    DeferredExpansion expand;  ///< beam expansion waiting for the first step
  };

  /// `decoder_start_token`: the first decoder input (T5: `<pad>` = 0).
  explicit PointerStepModel(NerModel& model, int64_t decoder_start_token = 0)
      : model_(model), start_token_(decoder_start_token) {}

  State start(const torch::Tensor& src_ids, const torch::Tensor& src_mask) {
    GENNER_CHECK(src_ids.dim() == 2 && src_mask.sizes() == src_ids.sizes(),
                 "PointerStepModel::start: expected src_ids and src_mask [B, S] of equal shape, found ",
                 src_ids.sizes(), " and ", src_mask.sizes(), ".");
    return {detail::module_of(model_).encode(src_ids, src_mask), {}, false, {}};
  }

  torch::Tensor step(State& s, const torch::Tensor& last) {
    if (s.started || !s.expand.pending()) return step_unexpanded(s, last);
    return s.expand.first_step([&] { return step_unexpanded(s, last); },
                               [&](const torch::Tensor& index) {
                                 s.source = s.source.select(index);
                                 s.cache.reorder(index);
                               });
  }

  void reorder(State& s, const torch::Tensor& index) {
    if (!s.started) return s.expand.compose(index);
    GENNER_CHECK(index.size(0) == s.source.batch(), "PointerStepModel::reorder: expected ", s.source.batch(),
                 " indices after the first step, found ", index.size(0), ".");
    s.cache.reorder(index);
  }

  /// Keeps rows `index` of the state (encoder output, pointer features, caches) and drops the rest:
  /// finished rows leave the batch (greedy search, step_model.hpp).
  void keep_rows(State& s, const torch::Tensor& index) {
    GENNER_CHECK(s.started && !s.expand.pending(),
                 "PointerStepModel::keep_rows: rows can be dropped only after the first step.");
    s.source = s.source.select(index);
    s.cache.reorder(index);
  }

  int64_t num_types() { return detail::module_of(model_).num_types(); }

 private:
  torch::Tensor step_unexpanded(State& s, const torch::Tensor& last) {
    auto& m = detail::module_of(model_);
    const int64_t N = s.source.batch();
    torch::Tensor tokens =
        last.defined() ? m.index_to_token(last.view({N, 1}).to(s.source.src_ids.device()), s.source.src_ids)
                       : torch::full({N, 1}, start_token_,
                                     torch::TensorOptions().dtype(torch::kLong).device(s.source.src_ids.device()));
    s.started = true;
    torch::Tensor logits = m.decode_step(tokens, s.source, s.cache);
    if (logits.dim() == 3) logits = logits.squeeze(1);
    GENNER_CHECK(logits.dim() == 2 && logits.size(0) == N, "PointerStepModel::step: expected logits [", N,
                 ", 1+L+S] from decode_step(), found ", logits.sizes(), ".");
    return logits;
  }

  NerModel& model_;
  int64_t start_token_;
};

/// Settings of pointer decoding. The output space ends sequences with index 0 and pads with 0.
struct PointerDecodeOptions {
  SearchOptions search = SearchOptions{}.end_and_pad(0, 0).max_length(kMaxLen, kMaxLenA);  ///< defaults.hpp
  data::TargetType target = data::TargetType::word;
  bool constrained = false;  ///< mask illegal next indices (PointerConstraint)
  bool no_repeat = false;    ///< with constrained: never generate the same entity twice
  bool contiguous = false;   ///< with constrained: one fragment per entity (flat and nested NER)
  bool flat = false;         ///< flat NER: no two entities share a word (rule: generate/overlaps.hpp)
};

/// Decoded sentences: raw indices, entities and what parsing dropped.
struct PointerDecoded {
  torch::Tensor indices;                            ///< [B, T] generated indices
  torch::Tensor scores;                             ///< [B]
  std::vector<std::vector<data::Entity>> entities;  ///< per sentence
  std::vector<data::ParseReport> reports;           ///< per sentence
  std::vector<std::size_t> overlaps_removed;        ///< per sentence (options.flat)
};

/// Decodes a batch: src_ids / src_mask [B, S]; word_start / word_end per sentence (source positions
/// of each word's first and last piece). Entities come from data::parse_target.
template <typename NerModel>
PointerDecoded decode_entities(NerModel& model, const torch::Tensor& src_ids, const torch::Tensor& src_mask,
                               std::span<const std::vector<int64_t>> word_start,
                               std::span<const std::vector<int64_t>> word_end, const data::LabelSpace& labels,
                               const PointerDecodeOptions& options, int64_t eos_token_id = 1) {
  const int64_t B = src_ids.size(0);
  GENNER_CHECK(static_cast<int64_t>(word_start.size()) == B && static_cast<int64_t>(word_end.size()) == B,
               "decode_entities: expected word_start and word_end for each of the ", B, " sentences, found ",
               word_start.size(), " and ", word_end.size(), ".");
  PointerStepModel<NerModel> step_model(model);
  GENNER_CHECK(step_model.num_types() == labels.size(), "decode_entities: the model has ", step_model.num_types(),
               " entity types but the label space has ", labels.size(), ".");
  auto state = step_model.start(src_ids, src_mask);
  auto lengths_t = src_mask.to(torch::kLong).sum(1).cpu().contiguous();
  std::vector<int64_t> lengths(lengths_t.data_ptr<int64_t>(), lengths_t.data_ptr<int64_t>() + B);
  LogitsChain chain;
  if (options.constrained) {
    auto constraint = std::make_shared<PointerConstraint>(
        labels.size(), options.target, PointerConstraint::pointable_from(src_ids, src_mask, eos_token_id),
        options.no_repeat, options.contiguous);
    constraint->with_words({word_start.begin(), word_start.end()}, {word_end.begin(), word_end.end()});
    chain.add(constraint);
  }
  auto result = search(step_model, state, B, options.search, lengths, chain);
  PointerDecoded out;
  out.indices = result.sequences.contiguous();
  out.scores = result.sequence_scores;
  const int64_t T = out.indices.size(1);
  for (int64_t b = 0; b < B; ++b) {
    std::span<const int64_t> row(out.indices.data_ptr<int64_t>() + b * T, static_cast<size_t>(T));
    data::ParseReport report;
    auto entities = data::parse_target(row, word_start[b], word_end[b], labels, options.target, &report);
    if (options.no_repeat) {
      // The constraint lets a repeat close an entity only when nothing else can (at the length
      // limit); such a repeat is dropped here, so no entity is ever returned twice.
      std::vector<data::Entity> unique;
      for (auto& e : entities)
        if (std::find(unique.begin(), unique.end(), e) == unique.end()) unique.push_back(std::move(e));
      entities = std::move(unique);
    }
    out.overlaps_removed.push_back(options.flat ? remove_overlaps(entities) : 0);
    out.entities.push_back(std::move(entities));
    out.reports.push_back(report);
  }
  return out;
}

/// Decodes `examples` without gradients in batches of at most `batch_size` sentences, shortest
/// first (data::length_sorted_batches), and calls `visit(positions, batch, decoded)` once per
/// batch: positions[k] is the index in `examples` of the batch's k-th sentence, `batch` its
/// collated tensors and `decoded` what decode_entities() made of them.
template <typename NerModel, typename Visit>
void decode_examples(NerModel& model, std::span<const data::Example> examples, const data::LabelSpace& labels,
                     const PointerDecodeOptions& options, std::size_t batch_size, Visit&& visit) {
  torch::NoGradGuard no_grad;
  for (const auto& positions : data::length_sorted_batches(examples, batch_size)) {
    const auto batch = data::collate(examples, positions);
    std::vector<std::vector<int64_t>> word_start, word_end;
    for (const auto i : positions) {
      word_start.push_back(examples[i].word_start);
      word_end.push_back(examples[i].word_end);
    }
    auto decoded = decode_entities(model, batch.src_ids, batch.src_mask, word_start, word_end, labels, options);
    visit(std::span<const std::size_t>(positions), batch, decoded);
  }
}

}  // namespace genner::generate
