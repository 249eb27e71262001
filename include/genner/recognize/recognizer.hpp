// genner/recognize/recognizer.hpp: Recognizer, the downstream API — raw text in, typed entities
// with character (code point) and byte offsets out. It tokenizes like the corpora (text/pretokenize.hpp),
// splits long texts into windows the model can read, decodes in length-sorted batches and maps
// every entity back to the original text.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/data/batching.hpp>
#include <genner/data/entity.hpp>
#include <genner/data/targets.hpp>
#include <genner/generate/pointer.hpp>
#include <genner/recognize/run_record.hpp>
#include <genner/io/json_file.hpp>
#include <genner/model/checkpoint.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/model/policies.hpp>
#include <genner/t5/config.hpp>
#include <genner/text/pretokenize.hpp>
#include <genner/text/tokenizer.hpp>

namespace genner::recognize {

/// Settings of a Recognizer.
struct RecognizerOptions {
  /// Decoding settings; unset: those the run was trained with (run.json), or the defaults of
  /// generate::PointerDecodeOptions for a model given in memory.
  std::optional<generate::PointerDecodeOptions> decode;
  /// Whether entities are flat (no two share a word; generate/overlaps.hpp gives the rule).
  /// Unset: the run's family in run.json; a model given in memory must say.
  std::optional<bool> flat;
  /// How text becomes words (`pretokenized`: split on whitespace only) and whether texts are
  /// split into sentences, each decoded on its own.
  text::PretokenizeOptions tokenize;
  /// The longest source the model reads, in SentencePiece pieces including `</s>`; longer
  /// sentences are decoded in windows (reported in Result::windows and Result::split).
  std::int64_t max_source_pieces = 512;
  /// Windows decoded together (sorted by length, so batches carry little padding).
  std::size_t batch_size = 32;
  /// Compute Entity::score (one teacher-forced pass over the generated sequence per batch).
  bool scores = true;
  /// Keep only entities whose probability exp(Entity::score) is at least this, in [0, 1]; 0 keeps
  /// all. Needs `scores`.
  double threshold = 0.0;
};

/// One contiguous piece of an entity.
struct Fragment {
  /// Characters (Unicode code points) [begin, end) of the original text: what Python's
  /// `text[begin:end]`, spaCy's start_char/end_char and Hugging Face pipelines' start/end count.
  std::size_t begin = 0, end = 0;
  std::size_t byte_begin = 0, byte_end = 0;  ///< the same in UTF-8 bytes (`text_in.substr(byte_begin, ...)`)
  int word_begin = 0, word_end = 0;          ///< words [word_begin, word_end) of Result::words
  std::string text;                          ///< the original text of [begin, end)
};

/// An entity found in a text.
struct Entity {
  std::string type;
  /// Characters (code points) [begin, end): first fragment's begin, last fragment's end.
  std::size_t begin = 0, end = 0;
  std::size_t byte_begin = 0, byte_end = 0;  ///< the same in UTF-8 bytes
  int word_begin = 0, word_end = 0;          ///< words [word_begin, word_end) of Result::words
  /// The original text of characters [begin, end): always `text_in.substr(byte_begin, byte_end -
  /// byte_begin)`. A
  /// discontinuous entity's text includes its gaps; its fragments carry the pieces.
  std::string text;
  std::vector<Fragment> fragments;  ///< one for flat and nested entities
  /// Mean log-probability the model gives the entity's generated tokens (its pointers and its type
  /// token), without decoding constraints: in (-inf, 0], higher is more confident; exp(score) is
  /// the geometric-mean token probability. NaN when RecognizerOptions::scores is off.
  double score = std::nan("");
};

/// What a Recognizer returns for one text.
struct Result {
  std::vector<std::string> words;     ///< the text's words (exact substrings)
  std::vector<text::WordSpan> spans;  ///< byte offsets of each word
  std::vector<Entity> entities;       ///< sorted by begin, then end
  std::size_t sentences = 0;          ///< sentences decoded (1 without sentence splitting)
  std::size_t windows = 0;            ///< source windows decoded (more than sentences when split)
  bool split = false;                 ///< a sentence was longer than max_source_pieces and was split
  std::vector<int> unread_words;      ///< words longer than max_source_pieces on their own: never read
  std::size_t overlaps_removed = 0;   ///< flat: entities dropped by the overlap rule
  std::size_t below_threshold = 0;    ///< entities dropped by RecognizerOptions::threshold
};

/// Decoding settings from a run's recorded settings (run.json "settings"); keys that are absent
/// keep the defaults of generate/defaults.hpp (those of train::RunConfig).
[[nodiscard]] inline generate::PointerDecodeOptions decode_options_from(const nlohmann::json& settings,
                                                                        const std::string& where) {
  generate::PointerDecodeOptions d;
  try {
    d.search.num_beams = settings.value("beams", int64_t{1});
    d.search.max_length(settings.value("max_len", d.search.max_len), settings.value("max_len_a", d.search.max_len_a));
    d.search.length_penalty = settings.value("length_penalty", 1.0);
    d.target = data::parse_target_type(settings.value("target_type", std::string("word")), where + ": 'target_type'");
    d.constrained = settings.value("constrained", false);
    d.contiguous = settings.value("contiguous", false);
    GENNER_CHECK(d.search.num_beams >= 1, where, ": 'beams': expected at least 1, found ", d.search.num_beams);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": malformed decoding settings (", e.what(), ")");
  }
  return d;
}

/// The experiment the example drivers train by default (full fine-tuning of a T5 of any shape).
using DefaultExperiment = model::ExperimentType<t5::DynamicBackbone, model::Trainable<model::Everything>>;

/// Appends `e` to `found` unless an entity of the same type and word fragments is there already
/// (the decoder may generate one entity twice, as nested and discontinuous models do); a
/// duplicate keeps the higher score.
inline void add_unique_entity(std::vector<Entity>& found, Entity e) {
  const auto same = std::find_if(found.begin(), found.end(), [&](const Entity& f) {
    return f.type == e.type && std::equal(f.fragments.begin(), f.fragments.end(), e.fragments.begin(),
                                          e.fragments.end(), [](const Fragment& x, const Fragment& y) {
                                            return x.word_begin == y.word_begin && x.word_end == y.word_end;
                                          });
  });
  if (same == found.end())
    found.push_back(std::move(e));
  else if (std::isnan(same->score) || e.score > same->score)
    same->score = e.score;
}

/// Raw text to entities. Thread safety: predict() may be called from several threads at once on
/// one Recognizer — the model is only read (inference without gradients) and tokenization, which
/// fills the tokenizer's cache, is serialized by an internal mutex. Do not train or modify the
/// model while predictions run.
class Recognizer {
 public:
  /// From a model, tokenizer and label space in memory (the model is switched to eval mode).
  Recognizer(std::shared_ptr<model::NerModelCore> model, text::Tokenizer tokenizer, data::LabelSpace labels,
             RecognizerOptions options = {})
      : model_(std::move(model)),
        tokenizer_(std::move(tokenizer)),
        labels_(std::move(labels)),
        options_(std::move(options)) {
    GENNER_CHECK(model_ != nullptr, "Recognizer: expected a model, found a null pointer");
    check_vocabulary(tokenizer_, model_->config().vocab_size, "Recognizer");
    GENNER_CHECK(model_->num_types() == labels_.size(), "Recognizer: the model has ", model_->num_types(),
                 " entity types but the label space has ", labels_.size());
    GENNER_CHECK(options_.flat.has_value(),
                 "Recognizer: say whether the entities are flat (RecognizerOptions::flat); "
                 "flat models never return overlapping entities");
    GENNER_CHECK(options_.max_source_pieces >= 2, "Recognizer: max_source_pieces must be at least 2, found ",
                 options_.max_source_pieces);
    GENNER_CHECK(options_.batch_size >= 1, "Recognizer: batch_size must be at least 1");
    GENNER_CHECK(options_.threshold >= 0.0 && options_.threshold <= 1.0,
                 "Recognizer: threshold: expected a probability in [0, 1], found ", options_.threshold);
    GENNER_CHECK(options_.threshold == 0.0 || options_.scores,
                 "Recognizer: threshold ", options_.threshold, " needs scores (RecognizerOptions::scores is off)");
    decode_ = options_.decode.value_or(generate::PointerDecodeOptions{});
    decode_.flat = *options_.flat;
    model_->eval();
  }

  /// From a trained run folder: run.json (types, label token ids, backbone shape, settings,
  /// family), best.safetensors (the trained tensors) and spiece.model. `E` must be the experiment
  /// alias the run was trained with (run.json records it; another alias is refused). The example
  /// executables flat_ner / nested_ner / discontinuous_ner use DefaultExperiment. Runs that started
  /// from a pretrained folder load its weights first.
  template <class E = DefaultExperiment>
  [[nodiscard]] static Recognizer load(const std::filesystem::path& run_dir, RecognizerOptions options = {}) {
    return load<E>(run_dir, RunRecord::read(run_dir / "run.json"), std::move(options));
  }

  /// The same, from the run's record already read.
  template <class E = DefaultExperiment>
  [[nodiscard]] static Recognizer load(const std::filesystem::path& run_dir, const RunRecord& record,
                                       RecognizerOptions options = {}) {
    const auto file = (run_dir / "run.json").string();
    if (!options.decode) options.decode = decode_options_from(record.settings, file);
    if (!options.flat) {
      GENNER_CHECK(!record.family.empty(), file,
                   ": no 'family' recorded; set RecognizerOptions::flat "
                   "(true for flat NER, false for nested or discontinuous)");
      GENNER_CHECK(record.family == "flat" || record.family == "nested" || record.family == "discontinuous", file,
                   ": 'family': expected flat, nested or discontinuous, found '", record.family, "'");
      options.flat = record.family == "flat";
    }
    auto run = restore_run<E>(run_dir, record);
    return Recognizer(std::move(run.model), std::move(run.tokenizer), std::move(run.labels), std::move(options));
  }

  [[nodiscard]] const data::LabelSpace& labels() const { return labels_; }
  [[nodiscard]] const RecognizerOptions& options() const { return options_; }
  [[nodiscard]] const generate::PointerDecodeOptions& decode_options() const { return decode_; }
  [[nodiscard]] bool flat() const { return decode_.flat; }
  [[nodiscard]] model::NerModelCore& model() const { return *model_; }

  /// Entities of one text.
  [[nodiscard]] Result predict(std::string_view text) const {
    return std::move(predict(std::span<const std::string_view>(&text, 1)).front());
  }

  /// Entities of each text (same order). Invalid UTF-8 is an error naming the text's index.
  [[nodiscard]] std::vector<Result> predict(std::span<const std::string_view> texts) const {
    std::vector<Result> results(texts.size());
    std::vector<Window> windows;
    for (std::size_t i = 0; i < texts.size(); ++i) plan(texts[i], i, texts.size(), results[i], windows);
    decode(windows);
    for (auto& w : windows) {
      auto& r = results[w.text];
      r.overlaps_removed += w.overlaps_removed;
      for (auto& e : w.found) {
        if (options_.threshold > 0.0 && !(std::exp(e.score) >= options_.threshold)) {
          ++r.below_threshold;
          continue;
        }
        r.entities.push_back(std::move(e));
      }
    }
    for (std::size_t i = 0; i < texts.size(); ++i) finish_entities(texts[i], results[i]);
    return results;
  }

  [[nodiscard]] std::vector<Result> predict(const std::vector<std::string>& texts) const {
    std::vector<std::string_view> views(texts.begin(), texts.end());
    return predict(std::span<const std::string_view>(views));
  }

  /// Pieces (`</s>` included) of the longest source `text` makes before any window is cut: its
  /// longest sentence with sentence splitting, the whole text without (0 for a text without
  /// words). Above max_source_pieces, predict() decodes that source in windows (Result::split).
  [[nodiscard]] std::size_t longest_source_pieces(std::string_view text, std::string_view where = "text") const {
    const auto pre = text::pretokenize(text, options_.tokenize, where);
    std::size_t longest = 0;
    std::lock_guard lock(*tokenizer_mutex_);
    for (const auto& [first, last] : pre.sentences) {
      std::size_t pieces = 1;
      for (std::size_t w = first; w < last; ++w) pieces += std::max<std::size_t>(1, tokenizer_.word_pieces(pre.words[w]).size());
      longest = std::max(longest, pieces);
    }
    return longest;
  }

 private:
  /// A piece of one text decoded as one source: words [first, last) of the text.
  struct Window {
    std::size_t text = 0;
    std::vector<int> words;  ///< text word indices of this window's words, in order
    data::Example example;
    std::vector<Entity> found;  ///< entities with word indices into the text (offsets filled later)
    std::size_t overlaps_removed = 0;
  };

  /// Tokenizes a text and cuts it into windows of at most max_source_pieces pieces.
  void plan(std::string_view text, std::size_t index, std::size_t count, Result& r, std::vector<Window>& out) const {
    auto tokenize = options_.tokenize;
    const bool by_sentence = tokenize.split_sentences;
    tokenize.split_sentences = true;  // sentence ends are the preferred places to split a long text
    const std::string where = count == 1 ? std::string("text") : "text " + std::to_string(index);
    auto pre = text::pretokenize(text, tokenize, where);
    r.words = std::move(pre.words);
    r.spans = std::move(pre.spans);
    if (r.words.empty()) return;
    const auto pieces = word_piece_counts(r.words);
    std::vector<bool> sentence_end(r.words.size() + 1, false);
    for (const auto& [first, last] : pre.sentences) sentence_end[last] = true;
    std::vector<std::pair<std::size_t, std::size_t>> units;
    if (by_sentence)
      units = pre.sentences;
    else
      units.emplace_back(0, r.words.size());
    r.sentences = units.size();
    const auto limit = static_cast<std::size_t>(options_.max_source_pieces) - 1;  // room for </s>
    for (const auto& [first, last] : units) {
      std::size_t w = first;
      bool first_window = true;
      while (w < last) {
        // fill the window; when a word does not fit, cut at the last sentence end inside it, if any
        std::size_t used = 0, end = w, best_cut = w;
        while (end < last && (pieces[end] > limit || used + pieces[end] <= limit)) {
          if (pieces[end] <= limit) used += pieces[end];
          ++end;
          if (sentence_end[end]) best_cut = end;
        }
        if (end < last && best_cut > w) end = best_cut;
        if (!first_window || end < last) r.split = true;
        first_window = false;
        Window win;
        win.text = index;
        for (std::size_t k = w; k < end; ++k) {
          if (pieces[k] > limit) {
            r.unread_words.push_back(static_cast<int>(k));
            continue;
          }
          win.words.push_back(static_cast<int>(k));
        }
        w = end;
        if (win.words.empty()) continue;
        win.example = window_example(win, r.words);
        ++r.windows;
        out.push_back(std::move(win));
      }
    }
  }

  /// Pieces of each of `words` as the tokenizer cuts it (at least 1 for a word that makes none).
  std::vector<std::size_t> word_piece_counts(const std::vector<std::string>& words) const {
    std::vector<std::size_t> pieces(words.size());
    std::lock_guard lock(*tokenizer_mutex_);
    for (std::size_t w = 0; w < words.size(); ++w)
      pieces[w] = std::max<std::size_t>(1, tokenizer_.word_pieces(words[w]).size());
    return pieces;
  }

  /// The source the model reads for `win`: its words of `text_words`, encoded into pieces.
  data::Example window_example(const Window& win, const std::vector<std::string>& text_words) const {
    std::vector<std::string> words;
    for (int k : win.words) words.push_back(text_words[static_cast<std::size_t>(k)]);
    text::Encoding enc;
    {
      std::lock_guard lock(*tokenizer_mutex_);
      enc = tokenizer_.encode_words(words);
    }
    return {std::move(enc.ids), std::move(enc.word_start), std::move(enc.word_end), {0}, {0}, {}};
  }

  /// Decodes every window in length-sorted batches.
  void decode(std::vector<Window>& windows) const {
    if (windows.empty()) return;
    std::vector<data::Example> examples;
    examples.reserve(windows.size());
    for (auto& w : windows) examples.push_back(w.example);
    generate::decode_examples(*model_, examples, labels_, decode_, options_.batch_size,
                              [&](std::span<const std::size_t> positions, const data::Batch& batch,
                                  const generate::PointerDecoded& decoded) {
                                keep_decoded(windows, positions, batch, decoded);
                              });
  }

  /// Stores one decoded batch's entities (scored when options_.scores) in their windows.
  void keep_decoded(std::vector<Window>& windows, std::span<const std::size_t> positions, const data::Batch& batch,
                    const generate::PointerDecoded& decoded) const {
    torch::Tensor token_logp;  // [B, T]: log-probability of each generated index
    if (options_.scores) token_logp = score_tokens(batch.src_ids, batch.src_mask, decoded.indices);
    const int64_t T = decoded.indices.size(1);
    const auto indices = decoded.indices.contiguous();
    for (std::size_t k = 0; k < positions.size(); ++k) {
      auto& win = windows[positions[k]];
      const auto& example = win.example;
      std::vector<double> logp;
      if (token_logp.defined()) {
        auto row = token_logp[static_cast<int64_t>(k)].to(torch::kDouble).contiguous();
        logp.assign(row.data_ptr<double>(), row.data_ptr<double>() + T);
      }
      const auto* row = indices.data_ptr<int64_t>() + static_cast<int64_t>(k) * T;
      const auto scores =
          entity_scores({row, static_cast<std::size_t>(T)}, logp, example.word_start, example.word_end);
      for (const auto& e : decoded.entities[k]) add_unique_entity(win.found, window_entity(win, e, scores));
      win.overlaps_removed = decoded.overlaps_removed[k];
    }
  }

  /// A decoded entity in the words of its text, scored by `scores` (NaN when not scored).
  static Entity window_entity(const Window& win, const data::Entity& e,
                              const std::vector<std::pair<data::Entity, double>>& scores) {
    Entity out;
    out.type = e.type;
    for (const auto& [a, b] : e.fragments) {
      Fragment f;
      f.word_begin = win.words[static_cast<std::size_t>(a)];
      f.word_end = win.words[static_cast<std::size_t>(b - 1)] + 1;
      out.fragments.push_back(std::move(f));
    }
    out.score = std::nan("");
    for (const auto& [ent, score] : scores)
      if (ent == e) {
        out.score = score;
        break;
      }
    return out;
  }

  /// Teacher-forced log-probabilities of the generated indices [B, T] (unconstrained model).
  torch::Tensor score_tokens(const torch::Tensor& src_ids, const torch::Tensor& src_mask,
                             const torch::Tensor& indices) const {
    auto idx = indices.to(torch::kLong);
    auto tokens = model_->index_to_token(idx.to(src_ids.device()), src_ids);
    auto start = torch::zeros({tokens.size(0), 1}, tokens.options());
    auto decoder_in = torch::cat({start, tokens.narrow(1, 0, tokens.size(1) - 1)}, 1);
    auto logits = model_->forward(src_ids, src_mask, decoder_in).logits.to(torch::kFloat);
    auto logp = torch::log_softmax(logits, -1).gather(2, idx.to(logits.device()).unsqueeze(2)).squeeze(2);
    return logp.cpu();
  }

  /// Each closed entity of a generated row with the mean log-probability of its tokens.
  std::vector<std::pair<data::Entity, double>> entity_scores(std::span<const int64_t> row,
                                                             const std::vector<double>& logp,
                                                             const std::vector<int64_t>& ws,
                                                             const std::vector<int64_t>& we) const {
    std::vector<std::pair<data::Entity, double>> out;
    if (logp.empty()) return out;
    std::vector<int64_t> segment;
    double sum = 0;
    const auto L = labels_.size();
    for (std::size_t t = 0; t < row.size(); ++t) {
      const auto x = row[t];
      if (x == 0) break;
      segment.push_back(x);
      sum += logp[t];
      if (x >= 1 && x <= L) {
        segment.push_back(0);
        auto parsed = data::parse_target(segment, ws, we, labels_, decode_.target);
        if (parsed.size() == 1)
          out.emplace_back(std::move(parsed.front()), sum / static_cast<double>(segment.size() - 1));
        segment.clear();
        sum = 0;
      }
    }
    return out;
  }

  /// Character, byte and text fields of every entity, sorted by position. Windows never share a
  /// word, so merging them cannot make flat entities overlap.
  static void finish_entities(std::string_view text, Result& r) {
    if (r.entities.empty()) return;
    const auto cps = text::code_point_offsets(text);
    for (auto& e : r.entities) {
      for (auto& f : e.fragments) {
        f.byte_begin = r.spans[static_cast<std::size_t>(f.word_begin)].begin;
        f.byte_end = r.spans[static_cast<std::size_t>(f.word_end - 1)].end;
        f.begin = cps[f.byte_begin];
        f.end = cps[f.byte_end];
        f.text = std::string(text.substr(f.byte_begin, f.byte_end - f.byte_begin));
      }
      e.byte_begin = e.fragments.front().byte_begin;
      e.byte_end = e.fragments.back().byte_end;
      e.begin = cps[e.byte_begin];
      e.end = cps[e.byte_end];
      e.word_begin = e.fragments.front().word_begin;
      e.word_end = e.fragments.back().word_end;
      e.text = std::string(text.substr(e.byte_begin, e.byte_end - e.byte_begin));
    }
    std::stable_sort(r.entities.begin(), r.entities.end(), [](const Entity& a, const Entity& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
  }

  std::shared_ptr<model::NerModelCore> model_;
  mutable text::Tokenizer tokenizer_;
  data::LabelSpace labels_;
  RecognizerOptions options_;
  generate::PointerDecodeOptions decode_;
  std::unique_ptr<std::mutex> tokenizer_mutex_ = std::make_unique<std::mutex>();
};

}  // namespace genner::recognize
