// genner/text/tokenizer.hpp: T5's SentencePiece tokenizer (id layout, extra ids,
// label tokens) and word-by-word encoding; the source side of docs/METHOD.md §1.
// Encoding runs on genner's own unigram reader (unigram.hpp: no protobuf clash, fast); training
// runs SentencePiece's trainer (spm_train) in a child process: libsentencepiece cannot be linked
// beside libtorch (each carries its own protobuf), and opened in isolation with RTLD_DEEPBIND its
// trainer crashes in its logging (iostreams bound to libstdc++'s uninitialised objects, a known
// DEEPBIND hazard). genner does not load libsentencepiece at all; the tests open it that way
// (tests/sentencepiece.hpp) only to cross-check unigram.hpp against it.
#pragma once

#include <genner/core/error.hpp>
#include <genner/text/unigram.hpp>

#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace genner::text {

/// A sentence encoded word by word: `ids` = pieces(w_0) ++ ... ++ pieces(w_{n-1}) ++ [</s>].
/// `word_start[i]` / `word_end[i]` are the positions of the first / last piece of word i.
/// A word that yields no piece (e.g. a lone zero-width space, which NFKC erases) is encoded as
/// one `<unk>` so every word keeps a position; its index is listed in `unk_fallback_words`.
struct Encoding {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> word_start;
  std::vector<std::int64_t> word_end;
  std::vector<std::size_t> unk_fallback_words;

  [[nodiscard]] std::size_t num_words() const { return word_start.size(); }
};

/// Options for training a fresh SentencePiece model (T5's conventions are the defaults).
struct TrainOptions {
  int vocab_size = 8000;
  std::string model_type = "unigram";
  double character_coverage = 1.0;
  /// Extra `key=value` trainer options, passed through unchanged.
  std::map<std::string, std::string> extra;
};

/// T5's tokenizer: SentencePiece pieces 0..n-1 (pad 0, eos 1, unk 2), then 100 `<extra_id_i>`
/// with extra_id_i = n + 99 - i (Hugging Face counts down), then label tokens (`<<person>>`).
/// Not thread-safe: encoding fills a word -> pieces cache.
class Tokenizer {
 public:
  static constexpr std::int64_t kPadId = 0;
  static constexpr std::int64_t kEosId = 1;
  static constexpr std::int64_t kUnkId = 2;
  static constexpr int kNumExtraIds = 100;

  /// Loads a `spiece.model`; throws genner::Error when missing or unreadable.
  [[nodiscard]] static Tokenizer load(const std::filesystem::path& model_file) {
    GENNER_CHECK(std::filesystem::is_regular_file(model_file), "Tokenizer: expected a SentencePiece model file at '",
                 model_file.string(), "', found nothing there.");
    return Tokenizer(std::make_unique<UnigramModel>(UnigramModel::load(model_file)), model_file);
  }

  /// Trains a new unigram model on the lines of `corpus_file` with SentencePiece's own trainer
  /// (the `spm_train` program, run as a child process; see the header comment), writes it to `model_file` (via a
  /// temporary name, then rename) and loads it.
  [[nodiscard]] static Tokenizer train(const std::filesystem::path& corpus_file,
                                       const std::filesystem::path& model_file, const TrainOptions& options = {}) {
    GENNER_CHECK(std::filesystem::is_regular_file(corpus_file), "Tokenizer::train: expected a corpus file at '",
                 corpus_file.string(), "', found nothing there.");
    GENNER_CHECK(std::filesystem::file_size(corpus_file) > 0,
                 "Tokenizer::train: expected a non-empty corpus file, found '", corpus_file.string(), "' empty.");
    const auto tmp_prefix = model_file.string() + ".tmp";
    const auto args = spm_train_arguments(corpus_file, tmp_prefix, options);
    std::vector<std::string> argv_storage = {spm_train_program()};
    for (const auto& [key, value] : args) argv_storage.push_back("--" + key + "=" + value);
    const int wstatus = run_spm_train(argv_storage);
    std::error_code ec;
    const bool ok =
        WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 && std::filesystem::is_regular_file(tmp_prefix + ".model");
    std::filesystem::remove(tmp_prefix + ".vocab", ec);
    if (!ok) {
      std::filesystem::remove(tmp_prefix + ".model", ec);
      const std::string how = !WIFEXITED(wstatus) ? "was killed by signal " + std::to_string(WTERMSIG(wstatus))
                              : WEXITSTATUS(wstatus) != 0
                                  ? "failed (exit status " + std::to_string(WEXITSTATUS(wstatus)) + ")"
                                  : "exited 0 but wrote no model at " + tmp_prefix + ".model";
      fail("Tokenizer::train: SentencePiece training on '", corpus_file.string(), "' ", how, "; run '",
           argv_storage[0], "' by hand with the same options to see its message.");
    }
    // A trainer that ran out of disk may still exit 0 with a truncated file: read it before it
    // replaces anything.
    try {
      (void)load(tmp_prefix + ".model");
    } catch (const Error& e) {
      std::filesystem::remove(tmp_prefix + ".model", ec);
      fail("Tokenizer::train: the trained model is unreadable, nothing was written to '", model_file.string(),
           "' (disk full?): ", e.what());
    }
    std::filesystem::rename(tmp_prefix + ".model", model_file, ec);
    GENNER_CHECK(!ec, "Tokenizer::train: could not move the trained model to '", model_file.string(),
                 "': ", ec.message());
    return load(model_file);
  }

  /// Same, from sentences in memory (written one per line to a file next to `model_file`).
  [[nodiscard]] static Tokenizer train(std::span<const std::string> sentences, const std::filesystem::path& model_file,
                                       const TrainOptions& options = {}) {
    GENNER_CHECK(!sentences.empty(), "Tokenizer::train: expected at least one sentence, found none.");
    const auto corpus = std::filesystem::path(model_file.string() + ".corpus.txt");
    {
      std::ofstream out(corpus);
      GENNER_CHECK(out.good(), "Tokenizer::train: could not write '", corpus.string(), "'.");
      for (const auto& s : sentences) out << s << '\n';
      out.flush();
      if (!out.good()) {
        std::error_code ec;
        std::filesystem::remove(corpus, ec);
        fail("Tokenizer::train: could not write '", corpus.string(), "' (disk full?).");
      }
    }
    struct Cleanup {
      std::filesystem::path path;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
      }
    } cleanup{corpus};
    return train(corpus, model_file, options);
  }

  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;

  [[nodiscard]] const std::filesystem::path& model_file() const { return model_file_; }
  /// Number of SentencePiece pieces (32000 for T5).
  [[nodiscard]] std::int64_t piece_count() const { return piece_count_; }
  /// Pieces + extra ids + label tokens.
  [[nodiscard]] std::int64_t size() const {
    return piece_count_ + kNumExtraIds + static_cast<std::int64_t>(labels_.size());
  }
  [[nodiscard]] std::int64_t extra_id(int i) const {
    GENNER_CHECK(i >= 0 && i < kNumExtraIds, "Tokenizer::extra_id: expected 0..", kNumExtraIds - 1, ", found ", i, ".");
    return piece_count_ + kNumExtraIds - 1 - i;
  }

  /// The label token for a type name: `<<` + lower-case name + `>>`.
  [[nodiscard]] static std::string label_token(std::string_view type) {
    std::string out = "<<";
    for (const char c : type) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out + ">>";
  }

  /// Adds `token` after the extra ids (idempotent) and returns its id.
  std::int64_t add_token(const std::string& token) {
    if (const auto id = token_to_id(token)) {
      GENNER_CHECK(*id >= piece_count_ + kNumExtraIds, "Tokenizer::add_token: '", token,
                   "' is already a SentencePiece piece or extra id (", *id, "); choose another label token.");
      return *id;
    }
    labels_.push_back(token);
    const auto id = size() - 1;
    label_ids_.emplace(token, id);
    return id;
  }
  /// Adds the label token of each type (`label_token`) and returns their ids in the same order.
  std::vector<std::int64_t> add_labels(std::span<const std::string> types) {
    std::vector<std::int64_t> ids;
    ids.reserve(types.size());
    for (const auto& t : types) ids.push_back(add_token(label_token(t)));
    return ids;
  }

  [[nodiscard]] std::optional<std::int64_t> token_to_id(std::string_view token) const {
    if (const auto it = label_ids_.find(std::string(token)); it != label_ids_.end()) return it->second;
    constexpr std::string_view prefix = "<extra_id_";
    if (token.starts_with(prefix) && token.ends_with(">")) {
      const auto digits = token.substr(prefix.size(), token.size() - prefix.size() - 1);
      int i = 0;
      if (!digits.empty() && digits.size() <= 2 && std::all_of(digits.begin(), digits.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          })) {
        i = std::stoi(std::string(digits));
        return extra_id(i);
      }
    }
    const int id = model_->piece_to_id(token);
    if (id < 0) return std::nullopt;
    return id;
  }

  [[nodiscard]] std::string id_to_token(std::int64_t id) const {
    GENNER_CHECK(id >= 0 && id < size(), "Tokenizer::id_to_token: expected an id in [0, ", size(), "), found ", id,
                 ".");
    if (id < piece_count_) return model_->piece(static_cast<std::size_t>(id)).text;
    if (id < piece_count_ + kNumExtraIds)
      return "<extra_id_" + std::to_string(piece_count_ + kNumExtraIds - 1 - id) + ">";
    return labels_[static_cast<std::size_t>(id - piece_count_ - kNumExtraIds)];
  }

  /// Words the piece cache holds at most: it starts over when full, so memory stays bounded
  /// however many distinct words pass through (a predict server, say).
  static constexpr std::size_t kMaxCachedWords = std::size_t{1} << 18;
  /// Words longer than this (bytes) are never cached.
  static constexpr std::size_t kMaxCachedWordBytes = 256;

  /// Pieces of one word tokenized alone (cached). Empty when SentencePiece yields nothing. The
  /// reference is valid until the next call.
  [[nodiscard]] const std::vector<std::int64_t>& word_pieces(std::string_view word) {
    if (const auto it = cache_.find(word); it != cache_.end()) return it->second;
    const auto ids = model_->encode(word);
    if (word.size() > kMaxCachedWordBytes) {
      uncached_.assign(ids.begin(), ids.end());
      return uncached_;
    }
    if (cache_.size() >= kMaxCachedWords) cache_.clear();
    auto [it, inserted] = cache_.emplace(std::string(word), std::vector<std::int64_t>(ids.begin(), ids.end()));
    return it->second;
  }
  /// Words in the piece cache now (at most kMaxCachedWords).
  [[nodiscard]] std::size_t cached_words() const { return cache_.size(); }

  /// Encodes a sentence given as words (docs/METHOD.md §1, source side).
  [[nodiscard]] Encoding encode_words(std::span<const std::string> words) {
    Encoding out;
    out.ids.reserve(words.size() * 2 + 1);
    out.word_start.reserve(words.size());
    out.word_end.reserve(words.size());
    for (std::size_t i = 0; i < words.size(); ++i) {
      const auto& pieces = word_pieces(words[i]);
      out.word_start.push_back(static_cast<std::int64_t>(out.ids.size()));
      if (pieces.empty()) {
        out.ids.push_back(kUnkId);
        out.unk_fallback_words.push_back(i);
      } else {
        out.ids.insert(out.ids.end(), pieces.begin(), pieces.end());
      }
      out.word_end.push_back(static_cast<std::int64_t>(out.ids.size()) - 1);
    }
    out.ids.push_back(kEosId);
    return out;
  }

  /// Encodes whitespace-separated text (split on ASCII spaces and tabs) word by word.
  [[nodiscard]] Encoding encode(std::string_view text) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ' && text[j] != '\t' && text[j] != '\n') ++j;
      if (j > i) words.emplace_back(text.substr(i, j - i));
      i = j;
    }
    return encode_words(words);
  }

  /// Decodes ids to text; extra ids and label tokens appear as their strings, separated by spaces
  /// from the surrounding text. `<pad>` and `</s>` are kept unless `skip_special` is set.
  [[nodiscard]] std::string decode(std::span<const std::int64_t> ids, bool skip_special = false) const {
    std::string out;
    std::vector<int> run;
    const auto append = [&out](const std::string& part) {
      if (part.empty()) return;
      if (!out.empty() && out.back() != ' ') out += ' ';
      out += part;
    };
    const auto flush = [&] {
      if (run.empty()) return;
      append(model_->decode(run));
      run.clear();
    };
    for (const auto id : ids) {
      GENNER_CHECK(id >= 0 && id < size(), "Tokenizer::decode: expected ids in [0, ", size(), "), found ", id, ".");
      const bool control = id == kPadId || id == kEosId;
      if (id < piece_count_ && !control) {
        run.push_back(static_cast<int>(id));
        continue;
      }
      flush();
      if (!(control && skip_special)) append(id_to_token(id));
    }
    flush();
    return out;
  }

 private:
  Tokenizer(std::unique_ptr<UnigramModel> model, std::filesystem::path file)
      : model_(std::move(model)),
        model_file_(std::move(file)),
        piece_count_(static_cast<std::int64_t>(model_->size())) {
    GENNER_CHECK(
        model_->piece_to_id("<pad>") == kPadId && model_->piece_to_id("</s>") == kEosId && model_->unk_id() == kUnkId,
        "Tokenizer: expected T5's layout (<pad> 0, </s> 1, <unk> 2) in '", model_file_.string(), "', found <pad> ",
        model_->piece_to_id("<pad>"), ", </s> ", model_->piece_to_id("</s>"), ", <unk> ", model_->unk_id(), ".");
  }

  /// spm_train's options (without the dashes): T5's conventions, then `options`, whose `extra`
  /// entries override any of them.
  static std::map<std::string, std::string> spm_train_arguments(const std::filesystem::path& corpus_file,
                                                                const std::string& tmp_prefix,
                                                                const TrainOptions& options) {
    std::map<std::string, std::string> args = {
        {"input", corpus_file.string()},
        {"model_prefix", tmp_prefix},
        {"vocab_size", std::to_string(options.vocab_size)},
        {"model_type", options.model_type},
        {"character_coverage", std::to_string(options.character_coverage)},
        // T5's layout: no BOS, pad 0, eos 1, unk 2.
        {"pad_id", "0"},
        {"eos_id", "1"},
        {"unk_id", "2"},
        {"bos_id", "-1"},
        {"pad_piece", "<pad>"},
        {"eos_piece", "</s>"},
        {"unk_piece", "<unk>"},
        // Small corpora cannot reach a large vocabulary; treat vocab_size as an upper bound.
        {"hard_vocab_limit", "false"},
        {"minloglevel", "2"},
    };
    for (const auto& [key, value] : options.extra) args[key] = value;
    return args;
  }

  /// Runs SentencePiece's trainer argv_storage[0] (looked up on PATH) with the arguments after it, its
  /// output and errors sent to /dev/null, and waits for it; returns its wait status. Throws when it
  /// cannot start.
  static int run_spm_train(std::vector<std::string>& argv_storage) {
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    GENNER_CHECK(rc == 0, "Tokenizer::train: expected SentencePiece's trainer '", argv_storage[0],
                 "' on PATH (Debian package sentencepiece; or set GENNER_SPM_TRAIN), found none (", std::strerror(rc),
                 ").");
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    return wstatus;
  }

  static std::string spm_train_program() {
    if (const char* env = std::getenv("GENNER_SPM_TRAIN")) return env;
    return "spm_train";
  }

  // Heterogeneous lookup so cache hits do not allocate a std::string.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::unique_ptr<UnigramModel> model_;
  std::filesystem::path model_file_;
  std::int64_t piece_count_ = 0;
  std::vector<std::string> labels_;
  std::unordered_map<std::string, std::int64_t> label_ids_;
  std::unordered_map<std::string, std::vector<std::int64_t>, StringHash, std::equal_to<>> cache_;
  std::vector<std::int64_t> uncached_;  // word_pieces' answer for a word too long to cache
};

}  // namespace genner::text
