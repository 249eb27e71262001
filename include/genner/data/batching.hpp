// genner/data/batching.hpp: encoded examples, padding into int64 tensors, and a resumable
// token-bounded, length-bucketed batch sampler (deterministic from a seed).
#pragma once

#include <genner/core/error.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data/entity.hpp>
#include <genner/data/targets.hpp>
#include <genner/text/tokenizer.hpp>

#include <ATen/ATen.h>
#include <range/v3/algorithm/stable_sort.hpp>
#include <range/v3/view/chunk.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace genner::data {

/// Target positions holding this value are ignored by the loss (PyTorch's default ignore_index).
inline constexpr std::int64_t kIgnoreIndex = -100;

/// One sentence ready for the model.
struct Example {
  std::vector<std::int64_t> src_ids;
  std::vector<std::int64_t> word_start;
  std::vector<std::int64_t> word_end;
  std::vector<std::int64_t> target;
  std::vector<std::int64_t> decoder_input_ids;
  std::vector<Entity> gold;
};

/// Encodes a whole data set; `report` counts entities on words that produced no piece.
[[nodiscard]] inline std::vector<Example> encode_dataset(const Dataset& data, text::Tokenizer& tokenizer,
                                                         const LabelSpace& labels, TargetType type,
                                                         EncodeReport* report = nullptr,
                                                         EntityOrder order = EntityOrder::sorted) {
  std::vector<Example> out;
  out.reserve(data.sentences.size());
  for (const auto& s : data.sentences) {
    auto src = tokenizer.encode_words(s.words);
    auto t = encode_target(src, s.entities, labels, type, report, order);
    out.push_back({std::move(src.ids), std::move(src.word_start), std::move(src.word_end), std::move(t.indices),
                   std::move(t.decoder_input_ids), s.entities});
  }
  return out;
}

/// Pieces per word the length guard allows on average: a sentence within `--max_words` words may
/// still hold one enormous word (60,000 characters become ~57,000 pieces), so the guard also caps
/// a source at max_words × kGuardPiecesPerWord pieces (English averages about 1.3 with T5's
/// vocabulary).
inline constexpr std::size_t kGuardPiecesPerWord = 4;

/// Refuses an encoded sentence of `data` longer than the length guard in pieces (see
/// kGuardPiecesPerWord; `max_words` 0: off), naming `what`, the sentence, its longest word and the
/// setting. Called on every split before training starts, so no run dies for it at the end.
inline void check_source_lengths(std::span<const Example> examples, const Dataset& data, std::size_t max_words,
                                 const std::string& what) {
  if (max_words == 0) return;
  const std::size_t limit = max_words * kGuardPiecesPerWord;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    if (e.src_ids.size() <= limit) continue;
    std::size_t widest = 0;
    if (i < data.sentences.size())
      for (std::size_t w = 0; w < data.sentences[i].words.size(); ++w)
        if (data.sentences[i].words[w].size() > data.sentences[i].words[widest].size()) widest = w;
    const auto& words = i < data.sentences.size() ? data.sentences[i].words : std::vector<std::string>{};
    fail(what, ": sentence ", i + 1, " (", words.size(), " words) has ", e.src_ids.size(),
         " SentencePiece pieces, more than the length guard allows (", limit, " = --max_words ", max_words, " x ",
         kGuardPiecesPerWord, " pieces per word)",
         words.empty() ? std::string() : "; its longest word has " + std::to_string(words[widest].size()) +
                                             " bytes and starts '" + core::printable(words[widest], 40) + "'",
         ". Split or shorten it in the data, or raise --max_words (0 turns the guard off)");
  }
}

/// A padded batch. Source pad 0 (mask 0); word_start/word_end pad 0 (word_mask 0);
/// target pad kIgnoreIndex; decoder input pad 0.
struct Batch {
  at::Tensor src_ids;                ///< [B, S]
  at::Tensor src_mask;               ///< [B, S], 1 on real tokens
  at::Tensor src_lengths;            ///< [B]
  at::Tensor word_start;             ///< [B, W]
  at::Tensor word_end;               ///< [B, W]
  at::Tensor word_mask;              ///< [B, W]
  at::Tensor target;                 ///< [B, T]
  at::Tensor decoder_input_ids;      ///< [B, T]
  std::vector<std::size_t> indices;  ///< example indices, in batch order
};

namespace detail {
inline at::Tensor pad_rows(const std::vector<const std::vector<std::int64_t>*>& rows, std::int64_t pad) {
  std::size_t width = 0;
  for (const auto* r : rows) width = std::max(width, r->size());
  auto out = at::full({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(width)}, pad, at::kLong);
  auto* data = out.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy(rows[i]->begin(), rows[i]->end(), data + i * width);
  return out;
}
}  // namespace detail

[[nodiscard]] inline Batch collate(std::span<const Example> examples, std::span<const std::size_t> indices) {
  GENNER_CHECK(!indices.empty(), "collate: expected at least one example index, found none.");
  std::vector<const std::vector<std::int64_t>*> src, ws, we, tgt, dec;
  for (const auto i : indices) {
    GENNER_CHECK(i < examples.size(), "collate: expected indices below ", examples.size(), ", found ", i, ".");
    const auto& e = examples[i];
    GENNER_CHECK(e.target.size() == e.decoder_input_ids.size(), "collate: example ", i,
                 ": expected target and decoder input of equal length, found ", e.target.size(), " and ",
                 e.decoder_input_ids.size(), ".");
    src.push_back(&e.src_ids);
    ws.push_back(&e.word_start);
    we.push_back(&e.word_end);
    tgt.push_back(&e.target);
    dec.push_back(&e.decoder_input_ids);
  }
  Batch b;
  b.src_ids = detail::pad_rows(src, text::Tokenizer::kPadId);
  b.src_lengths = at::empty({static_cast<std::int64_t>(indices.size())}, at::kLong);
  for (std::size_t k = 0; k < indices.size(); ++k)
    b.src_lengths[static_cast<std::int64_t>(k)] = static_cast<std::int64_t>(src[k]->size());
  b.src_mask = (at::arange(b.src_ids.size(1), at::kLong).unsqueeze(0) < b.src_lengths.unsqueeze(1)).to(at::kLong);
  b.word_start = detail::pad_rows(ws, 0);
  b.word_end = detail::pad_rows(we, 0);
  auto word_counts = at::empty({static_cast<std::int64_t>(indices.size())}, at::kLong);
  for (std::size_t k = 0; k < indices.size(); ++k)
    word_counts[static_cast<std::int64_t>(k)] = static_cast<std::int64_t>(ws[k]->size());
  b.word_mask = (at::arange(b.word_start.size(1), at::kLong).unsqueeze(0) < word_counts.unsqueeze(1)).to(at::kLong);
  b.target = detail::pad_rows(tgt, kIgnoreIndex);
  b.decoder_input_ids = detail::pad_rows(dec, text::Tokenizer::kPadId);
  b.indices.assign(indices.begin(), indices.end());
  return b;
}

/// Where a sampler is: enough to resume a run exactly (serialise the three numbers).
struct SamplerState {
  std::uint64_t seed = 0;
  std::uint64_t epoch = 0;
  std::uint64_t cursor = 0;  ///< next batch within the epoch
  friend bool operator==(const SamplerState&, const SamplerState&) = default;
};

struct SamplerOptions {
  /// Upper bound on padded tokens per batch: batch size * (max source + max target length).
  std::size_t max_tokens = 4096;
  /// Examples sorted by length inside windows of this many, so batches hold similar lengths.
  std::size_t bucket_window = 1024;
  bool shuffle = true;
  /// Upper bound on examples per batch; 0: only max_tokens bounds a batch. With max_tokens out of
  /// reach, every batch but an epoch's last of a bucket holds exactly this many examples.
  std::size_t max_examples = 0;
};

/// Positions of `examples` in batches of at most `batch_size`, shortest sources first (a stable
/// sort, so equal lengths keep their order): the batches decoding runs in, each padded little.
[[nodiscard]] inline std::vector<std::vector<std::size_t>> length_sorted_batches(std::span<const Example> examples,
                                                                                std::size_t batch_size) {
  GENNER_CHECK(batch_size > 0, "length_sorted_batches: expected a batch size above 0, found 0.");
  std::vector<std::size_t> order(examples.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  ranges::stable_sort(order, std::less<>{}, [&](std::size_t i) { return examples[i].src_ids.size(); });
  std::vector<std::vector<std::size_t>> out;
  for (auto batch : order | ranges::views::chunk(static_cast<std::ptrdiff_t>(batch_size)))
    out.emplace_back(batch.begin(), batch.end());
  return out;
}

/// Token- and/or example-bounded, length-bucketed batches. An epoch's plan is a pure function of (seed, epoch),
/// so restoring SamplerState recreates the same batches from the same cursor. An example longer
/// than max_tokens gets a batch of its own (never dropped).
class BatchSampler {
 public:
  BatchSampler(std::vector<std::size_t> lengths, SamplerOptions options, std::uint64_t seed = 0)
      : lengths_(std::move(lengths)), options_(options), state_{seed, 0, 0} {
    GENNER_CHECK(options_.max_tokens > 0 && options_.bucket_window > 0,
                 "BatchSampler: expected max_tokens and bucket_window above 0.");
    plan();
  }
  [[nodiscard]] static std::vector<std::size_t> lengths_of(std::span<const Example> examples) {
    std::vector<std::size_t> out;
    for (const auto& e : examples) out.push_back(e.src_ids.size() + e.target.size());
    return out;
  }

  [[nodiscard]] const SamplerState& state() const { return state_; }
  void restore(const SamplerState& s) {
    state_ = s;
    plan();
    GENNER_CHECK(state_.cursor <= batches_.size(), "BatchSampler::restore: expected a cursor at most ", batches_.size(),
                 ", found ", state_.cursor, ".");
  }
  [[nodiscard]] std::size_t batches_per_epoch() const { return batches_.size(); }

  /// The next batch's example indices; moves to the next epoch after the last one.
  [[nodiscard]] std::vector<std::size_t> next() {
    if (state_.cursor >= batches_.size()) {
      ++state_.epoch;
      state_.cursor = 0;
      plan();
    }
    return batches_[state_.cursor++];
  }

 private:
  void plan() {
    std::vector<std::size_t> order(lengths_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::seed_seq seq{static_cast<std::uint32_t>(state_.seed), static_cast<std::uint32_t>(state_.seed >> 32),
                      static_cast<std::uint32_t>(state_.epoch), static_cast<std::uint32_t>(state_.epoch >> 32)};
    std::mt19937_64 rng(seq);
    if (options_.shuffle) std::shuffle(order.begin(), order.end(), rng);
    batches_.clear();
    for (auto window : order | ranges::views::chunk(static_cast<std::ptrdiff_t>(options_.bucket_window))) {
      std::vector<std::size_t> w(window.begin(), window.end());
      ranges::stable_sort(w, std::less<>{}, [this](std::size_t i) { return lengths_[i]; });
      std::vector<std::size_t> current;
      std::size_t longest = 0;
      for (const auto i : w) {
        const auto l = std::max(longest, lengths_[i]);
        const bool full = options_.max_examples > 0 && current.size() >= options_.max_examples;
        if (!current.empty() && (full || l * (current.size() + 1) > options_.max_tokens)) {
          batches_.push_back(std::move(current));
          current.clear();
          longest = 0;
        }
        current.push_back(i);
        longest = std::max(longest, lengths_[i]);
      }
      if (!current.empty()) batches_.push_back(std::move(current));
    }
    if (options_.shuffle) std::shuffle(batches_.begin(), batches_.end(), rng);
  }

  std::vector<std::size_t> lengths_;
  SamplerOptions options_;
  SamplerState state_;
  std::vector<std::vector<std::size_t>> batches_;
};

}  // namespace genner::data
