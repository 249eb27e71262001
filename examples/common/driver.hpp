// examples/common/driver.hpp: the command-line program behind every example
// experiment (train / evaluate / predict), generic over the experiment alias
// and the data-set family. Each experiment's main() is one call to run<E>().
#pragma once

#include <genner/core/threading.hpp>
#include <genner/genner.hpp>
#include <genner/train/distributed.hpp>

#include <torch/cuda.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace genner::examples {

enum class Family { flat, nested, discontinuous };

inline const char* family_name(Family f) {
  switch (f) {
    case Family::flat: return "flat";
    case Family::nested: return "nested";
    case Family::discontinuous: return "discontinuous";
  }
  return "?";
}

namespace fs = std::filesystem;

/// The three splits of a data set, loaded with the family's loader.
struct Splits {
  data::Dataset train, dev, test;
  std::vector<std::string> types;
};

inline data::Dataset load_split(Family family, const fs::path& file, size_t length_guard = data::kDefaultLengthGuard) {
  switch (family) {
    case Family::flat: return data::load_conll(file, {data::TagScheme::automatic, length_guard});
    case Family::nested: {
      data::NestedJsonOptions o;
      o.length_guard = length_guard;
      return data::load_nested_json(file, o);
    }
    case Family::discontinuous: return data::load_discontinuous(file, {length_guard});
  }
  fail("unknown data-set family");
}

/// Finds `<dir>/<split>.<ext>` for the family's usual extensions.
inline fs::path split_file(Family family, const fs::path& dir, const std::string& split) {
  std::vector<std::string> exts;
  switch (family) {
    case Family::flat: exts = {".txt", ".conll", ".bio", "_conll", ".gold_conll"}; break;
    case Family::nested: exts = {".jsonl", ".json"}; break;
    case Family::discontinuous: exts = {".txt"}; break;
  }
  for (const auto& e : exts)
    if (fs::exists(dir / (split + e))) return dir / (split + e);
  fail(dir.string(), ": no ", split, " split found (looked for ", split, exts.front(), " and similar)");
}

inline Splits load_splits(Family family, const fs::path& dir, const train::RunConfig& cfg) {
  Splits s;
  const bool has_train = [&] {
    try {
      (void)split_file(family, dir, "train");
      return true;
    } catch (const Error&) {
      return false;
    }
  }();
  const auto guard = static_cast<size_t>(cfg.max_words);
  s.dev = load_split(family, split_file(family, dir, "dev"), guard);
  s.test = load_split(family, split_file(family, dir, "test"), guard);
  if (has_train) {
    s.train = load_split(family, split_file(family, dir, "train"), guard);
  } else {
    // GENIA as shipped here has no train split: train on dev, evaluate on test.
    std::cerr << "note: " << dir.string() << " has no train split; training on dev and selecting on dev\n";
    s.train = s.dev;
  }
  if (cfg.train_on_dev && has_train) {
    s.train.sentences.insert(s.train.sentences.end(), s.dev.sentences.begin(), s.dev.sentences.end());
  }
  if (cfg.dev_from_train > 0.0 && has_train) {
    // Carve the last share of train off as dev (GENIA's published set-up).
    const auto n = s.train.sentences.size();
    const auto k = static_cast<size_t>(cfg.dev_from_train * static_cast<double>(n));
    s.dev.sentences.assign(s.train.sentences.end() - static_cast<long>(k), s.train.sentences.end());
    s.train.sentences.resize(n - k);
  }
  // Types in first-seen order over train, dev, test: stable across runs of the same data.
  for (const auto* d : {&s.train, &s.dev, &s.test})
    for (const auto& t : d->types)
      if (std::find(s.types.begin(), s.types.end(), t) == s.types.end()) s.types.push_back(t);
  for (const auto* d : {&s.train, &s.dev, &s.test})
    if (!d->report.issues.empty())
      std::cerr << "note: " << d->report.issues.size() << " load issue(s), e.g. " << d->report.issues.front().file
                << ":" << d->report.issues.front().line << ": " << d->report.issues.front().message << "\n";
  return s;
}

inline data::TargetType target_type(const std::string& name) {
  if (name == "word") return data::TargetType::word;
  if (name == "bpe") return data::TargetType::bpe;
  if (name == "span") return data::TargetType::span;
  fail("target_type: expected word, bpe or span, found '", name, "'");
}

/// The natural-language name of a type for label initialisation ("PER" -> "person").
inline std::string type_description(const std::string& type) {
  static const std::map<std::string, std::string> known = {
      {"PER", "person"}, {"LOC", "location"}, {"ORG", "organization"}, {"MISC", "miscellaneous"},
      {"GPE", "country city state"}, {"ADR", "adverse drug reaction"}, {"cell_type", "cell type"},
      {"cell_line", "cell line"}, {"DNA", "DNA"}, {"RNA", "RNA"}, {"protein", "protein"},
      {"corporation", "corporation"}, {"creative-work", "creative work"}, {"group", "group"},
      {"location", "location"}, {"person", "person"}, {"product", "product"}};
  if (auto it = known.find(type); it != known.end()) return it->second;
  std::string out;
  for (char c : type) out += (c == '_' || c == '-') ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Everything a finished run needs to be evaluated or used again, next to its weights.
struct RunRecord {
  nlohmann::json settings;
  std::vector<std::string> types;
  std::vector<int64_t> label_token_ids;
  t5::T5Config config;
  std::string tokenizer;   ///< path of spiece.model (relative to the run folder when inside it)
  std::string pretrained;  ///< Hugging Face folder the backbone came from, or empty
  std::string family;      ///< flat, nested or discontinuous (recognize::Recognizer::load reads it)
  std::string data_dir;    ///< the data folder trained on (relative to the run folder when inside it)
  std::string frozen;      ///< file of the frozen weights when they are not a published checkpoint, or empty

  nlohmann::json to_json() const {
    return {{"settings", settings}, {"types", types}, {"label_token_ids", label_token_ids},
            {"config", config.to_json()}, {"tokenizer", tokenizer}, {"pretrained", pretrained},
            {"family", family}, {"data_dir", data_dir}, {"frozen", frozen}};
  }
  static RunRecord read(const fs::path& file) {
    const auto j = io::read_json_file(file, "no run record here; train first (the train command writes it)");
    RunRecord r;
    try {
      r.settings = j.at("settings");
      r.types = j.at("types").get<std::vector<std::string>>();
      r.label_token_ids = j.at("label_token_ids").get<std::vector<int64_t>>();
      r.config = t5::T5Config::from_json(j.at("config"), file.string());
      r.tokenizer = j.at("tokenizer").get<std::string>();
      r.pretrained = j.value("pretrained", "");
      r.family = j.value("family", "");
      r.data_dir = j.value("data_dir", "");
      r.frozen = j.value("frozen", "");
    } catch (const nlohmann::json::exception& e) {
      fail(file.string(), ": missing or malformed field (", e.what(), ")");
    }
    return r;
  }
};

/// A small T5 for training from scratch, shaped by the scratch_* settings.
inline t5::T5Config scratch_config(const train::RunConfig& cfg, int64_t vocab_size) {
  train::check_consistency(cfg);
  t5::T5Config c;
  c.vocab_size = vocab_size;
  c.d_model = cfg.scratch_d_model;
  c.d_ff = cfg.scratch_d_ff;
  c.num_heads = cfg.scratch_heads;
  c.d_kv = cfg.scratch_d_model / cfg.scratch_heads;
  c.num_layers = cfg.scratch_layers;
  c.num_decoder_layers = cfg.scratch_layers;
  c.feed_forward = t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  c.dropout_rate = cfg.scratch_dropout;
  return c;
}

inline generate::PointerDecodeOptions decode_options(const train::RunConfig& cfg, Family family) {
  generate::PointerDecodeOptions d;
  d.search.num_beams = cfg.beams;
  d.search.max_length(cfg.max_len, cfg.max_len_a);
  d.search.length_penalty = cfg.length_penalty;
  d.target = target_type(cfg.target_type);
  d.constrained = cfg.constrained;
  d.contiguous = cfg.contiguous;
  d.flat = family == Family::flat;  // flat entities never overlap (generate/overlaps.hpp)
  return d;
}

inline void print_scores(const std::string& title, const train::Evaluation& ev) {
  const auto& m = ev.scores.micro;
  std::cout << std::fixed << std::setprecision(2) << title << ": P " << 100 * m.precision() << "  R "
            << 100 * m.recall() << "  F1 " << 100 * m.f1() << "  (exact match " << 100 * ev.scores.exact_match()
            << "%, " << m.correct << " correct of " << m.predicted << " predicted / " << m.gold << " gold)\n";
  for (const auto& [type, c] : ev.scores.per_type)
    std::cout << "    " << std::left << std::setw(16) << type << std::right << " P " << std::setw(6)
              << 100 * c.precision() << "  R " << std::setw(6) << 100 * c.recall() << "  F1 " << std::setw(6)
              << 100 * c.f1() << "  (gold " << c.gold << ")\n";
}

inline std::string entity_text(const std::vector<std::string>& words, const data::Entity& e) {
  std::string out;
  for (size_t f = 0; f < e.fragments.size(); ++f) {
    if (f) out += " ... ";
    for (int w = e.fragments[f].first; w < e.fragments[f].second; ++w) {
      if (w > e.fragments[f].first) out += ' ';
      out += words[static_cast<size_t>(w)];
    }
  }
  return out;
}

inline nlohmann::json entities_json(const std::vector<std::string>& words, const std::vector<data::Entity>& ents) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : ents) {
    nlohmann::json frags = nlohmann::json::array();
    for (const auto& [s, t] : e.fragments) frags.push_back({s, t});
    out.push_back({{"text", core::json_safe(entity_text(words, e))}, {"type", core::json_safe(e.type)}, {"fragments", frags}});
  }
  return out;
}

inline void print_examples(const data::Dataset& test, const train::Evaluation& ev, size_t count) {
  std::cout << "Example predictions (test):\n";
  for (size_t i = 0; i < std::min(count, test.sentences.size()); ++i) {
    const auto& s = test.sentences[i];
    std::cout << "  " << data::join_words(s.words) << "\n    gold:";
    for (const auto& e : s.entities) std::cout << " [" << entity_text(s.words, e) << "]/" << e.type;
    std::cout << "\n    pred:";
    for (const auto& e : ev.predictions[i]) std::cout << " [" << entity_text(s.words, e) << "]/" << e.type;
    std::cout << "\n";
  }
}

/// Split words on whitespace.
inline std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

/// Options of the predict command (taken out of the arguments before the settings parser).
struct PredictFlags {
  std::string format = "jsonl";
  bool pretokenized = false;
  bool split_sentences = false;
  int64_t max_source_pieces = 512;
};

/// The experiment-specific half: building, training, evaluating and predicting with model E.
template <class E>
class Experiment {
 public:
  Experiment(Family family, train::RunConfig cfg, train::dist::Group* group = nullptr)
      : family_(family), cfg_(std::move(cfg)), group_(group ? group : &single_) {}

  int train_command() {
    // Rank 0 owns the folder (checks, lock, clean-up), writes the sample data and trains the
    // tokenizer; the other ranks then read them.
    const bool main_rank = group_->is_main();
    const fs::path out = main_rank ? train::prepare_output_dir(cfg_.output_dir) : fs::path(cfg_.output_dir);
    std::optional<train::RunLock> lock;
    if (main_rank) {
      lock.emplace(out);
      for (const auto& p : train::remove_stale_temporaries(out))
        std::cerr << "note: removed " << p.string() << ", left by a killed run\n";
    }
    const auto trajectory = trajectory_settings();
    if (cfg_.resume) train::check_resume_settings(train::checkpoint_settings(out / "checkpoint"), trajectory,
                                                  (out / "checkpoint").string());
    fs::path data_dir;
    if (main_rank) data_dir = resolve_data_dir(out);
    group_->barrier("sample data");
    if (!main_rank) data_dir = resolve_data_dir(out, /*write=*/false);
    std::cout << "genner " << family_name(family_) << " NER: data " << data_dir.string() << ", output "
              << out.string() << "\n";
    auto splits = load_splits(family_, data_dir, cfg_);
    std::cout << "  sentences: train " << splits.train.sentences.size() << ", dev " << splits.dev.sentences.size()
              << ", test " << splits.test.sentences.size() << "; types:";
    for (const auto& t : splits.types) std::cout << ' ' << t;
    std::cout << "\n";

    RunRecord record;
    record.settings = train::to_json(cfg_);
    record.types = splits.types;
    record.pretrained = cfg_.pretrained;
    record.family = family_name(family_);
    record.data_dir = train::path_for_record(data_dir, out);
    std::optional<text::Tokenizer> made;
    if (group_->is_main()) made.emplace(make_tokenizer(splits, out, record));
    group_->barrier("tokenizer");
    if (!group_->is_main()) made.emplace(make_tokenizer(splits, out, record, /*train=*/false));
    text::Tokenizer tokenizer = std::move(*made);
    auto labels = data::LabelSpace::make(splits.types, tokenizer);
    record.label_token_ids = labels.token_ids;

    // LibTorch seeds its generator at random in each process: --seed also decides the initial weights.
    torch::manual_seed(static_cast<uint64_t>(cfg_.seed));
    auto model = build_model(record, tokenizer.piece_count());
    record.config = model->config();
    check_vocabulary(tokenizer, record);
    std::vector<std::vector<int64_t>> names;
    for (const auto& t : splits.types) {
      std::vector<std::string> words = split_words(type_description(t));
      std::vector<int64_t> pieces;
      for (const auto& w : words) {
        const auto& p = tokenizer.word_pieces(w);
        pieces.insert(pieces.end(), p.begin(), p.end());
      }
      if (pieces.empty()) pieces.push_back(text::Tokenizer::kUnkId);
      names.push_back(pieces);
    }
    model->init_label_embeddings(names);
    if (group_->is_main()) {
      if (record.pretrained.empty() && !model::frozen_parameters(*model).empty()) {
        // A random frozen backbone exists only in this process: keep it, or the run cannot be evaluated.
        record.frozen = "frozen.safetensors";
        model::save_frozen(*model, out / record.frozen);
      }
      io::write_text_atomically(out / "run.json", record.to_json().dump(2) + "\n");
      io::write_text_atomically(out / "config.json", train::to_json(cfg_).dump(2) + "\n");
    }

    const auto type = target_type(cfg_.target_type);
    data::EncodeReport report;
    auto train_ex = data::encode_dataset(splits.train, tokenizer, labels, type, &report);
    auto dev_ex = data::encode_dataset(splits.dev, tokenizer, labels, type, &report);
    auto test_ex = data::encode_dataset(splits.test, tokenizer, labels, type, &report);
    if (report.entities_on_unk_words)
      std::cerr << "note: " << report.entities_on_unk_words << " entities cover words with no SentencePiece piece\n";
    std::cout << "  model: " << model->config().describe() << "; trainable parameters "
              << model->count_trainable() << "\n";

    train::TrainerOptions topt;
    topt.epochs = cfg_.epochs;
    topt.max_steps = cfg_.max_steps;
    topt.lr = cfg_.lr;
    topt.warmup = cfg_.warmup;
    topt.weight_decay = cfg_.weight_decay;
    topt.clip_value = cfg_.clip_value;
    topt.clip_norm = cfg_.clip_norm;
    topt.truncate_prob = cfg_.truncate_prob;
    topt.eval_every = cfg_.eval_every;
    topt.patience = cfg_.patience;
    topt.resume = cfg_.resume;
    topt.seed = static_cast<uint64_t>(cfg_.seed);
    topt.trajectory = trajectory;
    topt.max_tokens = tokens_per_batch(train_ex);
    topt.output_dir = out;
    topt.decode = decode_options(cfg_, family_);
    topt.metric = train::parse_metric_rules(cfg_.metric);
    topt.precision = model::parse_precision(cfg_.precision);
    topt.accumulate = cfg_.accumulate;
    topt.group = group_;
    topt.callbacks = train::standard_callbacks(topt);  // progress bar and curve.png
    if (group_->distributed())
      std::cout << "  data parallel: " << group_->size() << " ranks (" << train::dist::backend_name(group_->backend())
                << ", store " << group_->address() << "), " << cfg_.accumulate << " micro-batch(es) per rank and step\n";
    train::Trainer trainer(*model, labels, train_ex, dev_ex, topt);
    const auto result = trainer.fit();
    std::cout << "  trained " << result.steps << " steps" << (result.resumed ? " (resumed)" : "")
              << (result.stopped_early ? " (stopped early)" : "") << "; best dev F1 " << std::fixed
              << std::setprecision(2) << 100 * result.best_dev_f1 << " at step " << result.best_step << "\n";
    model::load_trained(*model, result.best_model);
    auto dev_eval = train::evaluate(*group_, *model, dev_ex, labels, topt.decode, 32, true, topt.metric);
    auto test_eval = train::evaluate(*group_, *model, test_ex, labels, topt.decode, 32, true, topt.metric);
    print_scores("dev ", dev_eval);
    print_scores("test", test_eval);
    if (!group_->is_main()) return 0;
    write_predictions(out / "test_predictions.jsonl", splits.test, test_eval);
    io::write_text_atomically(out / "results.json",
                              nlohmann::json{{"dev", dev_eval.scores.to_json()}, {"test", test_eval.scores.to_json()},
                                             {"best_step", result.best_step}, {"steps", result.steps}}
                                      .dump(2) +
                                  "\n");
    print_examples(splits.test, test_eval, 5);
    std::cout << "Wrote " << (out / "run.json").string() << ", best.safetensors, log.jsonl, curve.png, results.json\n";
    return 0;
  }

  int evaluate_command() {
    GENNER_CHECK(!cfg_.output_dir.empty(), "--output_dir: expected the run folder to evaluate, found an empty path");
    const fs::path out = cfg_.output_dir;
    auto record = RunRecord::read(out / "run.json");
    use_recorded_settings(record, out);
    train::RunLock lock(out);
    auto [model, tokenizer, labels] = restore(record, out);
    const fs::path data_dir = recorded_data_dir(record, out);
    auto splits = load_splits(family_, data_dir, cfg_);
    auto test_ex = data::encode_dataset(splits.test, tokenizer, labels, target_type(cfg_.target_type));
    auto ev = train::evaluate(*model, test_ex, labels, decode_options(cfg_, family_), 32, true,
                              train::parse_metric_rules(cfg_.metric));
    print_scores("test", ev);
    if (family_ == Family::flat) {
      const auto file = out / "test_predictions.conll";
      io::write_atomically(file, [&](std::ofstream& o) {
        for (size_t i = 0; i < splits.test.sentences.size(); ++i) {
          (void)data::write_conll(o, splits.test.sentences[i].words, splits.test.sentences[i].entities, ev.predictions[i]);
          o << "\n";
        }
      });
      std::cout << "CoNLL-format predictions (word gold pred) for conlleval: " << file.string() << "\n";
    }
    return 0;
  }

  /// Raw text (one text per line; `-` reads standard input) to entities, one output record per
  /// input line; the logic lives in genner/recognize/predict.hpp.
  int predict_command(const std::string& input, const fs::path& output, const PredictFlags& flags) {
    GENNER_CHECK(input == "-" || !fs::is_directory(input),
                 "--input: expected a text file (one text per line) or -, found the folder '", input, "'");
    GENNER_CHECK(output.empty() || !fs::is_directory(output), "--predictions: expected a file to write, found the folder '",
                 output.string(), "'");
    GENNER_CHECK(!cfg_.output_dir.empty(), "--output_dir: expected the run folder to predict with, found an empty path");
    use_recorded_settings(RunRecord::read(fs::path(cfg_.output_dir) / "run.json"), cfg_.output_dir);
    recognize::RecognizerOptions ro;
    ro.decode = decode_options(cfg_, family_);
    ro.flat = family_ == Family::flat;
    ro.tokenize.pretokenized = flags.pretokenized;
    ro.tokenize.split_sentences = flags.split_sentences;
    ro.max_source_pieces = flags.max_source_pieces;
    const auto recognizer = recognize::Recognizer::load<E>(cfg_.output_dir, ro);
    model::prepare_inference(recognizer.model(), model::parse_precision(cfg_.precision));
    recognize::PredictOptions po;
    po.format = recognize::parse_format(flags.format);
    std::ifstream file;
    std::istream* in = &std::cin;
    if (input != "-") {
      file.open(input);
      GENNER_CHECK(file.good(), input, ": cannot read the input text (one text per line; - reads standard input)");
      po.input_name = input;
      std::ifstream count(input);
      po.total_lines = static_cast<size_t>(std::count(std::istreambuf_iterator<char>(count), {}, '\n'));
      in = &file;
    }
    if (output.empty() || output == "-") {
      (void)recognize::predict_lines(recognizer, *in, std::cout, po);
    } else {
      recognize::PredictStats stats;
      io::write_atomically(output, [&](std::ofstream& o) { stats = recognize::predict_lines(recognizer, *in, o, po); });
      std::cerr << "Wrote " << stats.lines << " predictions to " << output.string() << "\n";
    }
    return 0;
  }

 private:
  fs::path resolve_data_dir(const fs::path& out, bool write = true) {
    if (!cfg_.data_dir.empty()) return cfg_.data_dir;
    if (cfg_.dataset == "sample") {
      // The built-in default: a data set genner writes itself (genner/data/sample.hpp).
      const auto dir = out / "sample_data";
      if (!write) return dir;
      data::sample::Options o;
      o.seed = static_cast<uint64_t>(cfg_.seed);
      const auto n = static_cast<size_t>(cfg_.sample_size);
      o.sizes = {n, std::max<size_t>(1, n * 2 / 15), std::max<size_t>(1, n * 2 / 15)};
      data::sample::SplitFiles files;
      switch (family_) {
        case Family::flat: files = data::sample::write_flat(dir, o); break;
        case Family::nested: files = data::sample::write_nested(dir, o); break;
        case Family::discontinuous: files = data::sample::write_discontinuous(dir, o); break;
      }
      // Unannotated text for the predict command: new sentences for flat, test sentences otherwise.
      if (family_ == Family::flat) {
        data::sample::write_raw(dir / "raw.txt", 20, o.seed);
      } else {
        std::string text;
        const auto test = load_split(family_, files.test);
        for (size_t i = 0; i < std::min<size_t>(20, test.sentences.size()); ++i)
          text += data::join_words(test.sentences[i].words) + "\n";
        io::write_text_atomically(dir / "raw.txt", text);
      }
      return dir;
    }
    const char* env = std::getenv("GENNER_DATA");
    return fs::path(env ? env : "../shared/data") / cfg_.dataset;
  }

  text::Tokenizer make_tokenizer(const Splits& s, const fs::path& out, RunRecord& record, bool train = true) {
    if (!cfg_.pretrained.empty()) {
      const auto spm = fs::path(cfg_.pretrained) / "spiece.model";
      record.tokenizer = train::path_for_record(spm, out);
      return text::Tokenizer::load(spm);
    }
    std::vector<std::string> corpus;
    for (const auto& sent : s.train.sentences) corpus.push_back(data::join_words(sent.words));
    const auto file = out / "spiece.model";
    record.tokenizer = train::path_for_record(file, out);
    if (!train) return text::Tokenizer::load(file);
    text::TrainOptions opt;
    opt.vocab_size = static_cast<int>(cfg_.spm_vocab_size);
    std::cout << "  training a SentencePiece model (vocabulary up to " << opt.vocab_size << ") on "
              << corpus.size() << " sentences\n";
    return text::Tokenizer::train(corpus, file, opt);
  }

  std::shared_ptr<model::NerModelImpl<E>> build_model(const RunRecord& record, int64_t pieces) {
    model::NerOptions opt;
    opt.types(static_cast<int64_t>(record.types.size()));
    opt.mlp_dropout = cfg_.mlp_dropout;
    if (!record.pretrained.empty()) return model::NerModelImpl<E>::from_pretrained(record.pretrained, opt);
    opt.with_config(scratch_config(cfg_, pieces + text::Tokenizer::kNumExtraIds));
    return std::make_shared<model::NerModelImpl<E>>(opt);
  }

  struct Restored {
    std::shared_ptr<model::NerModelImpl<E>> model;
    text::Tokenizer tokenizer;
    data::LabelSpace labels;
  };
  Restored restore(const RunRecord& record, const fs::path& out) {
    auto tokenizer = text::Tokenizer::load(recorded_path(record.tokenizer, out));
    auto labels = data::LabelSpace::make(record.types, tokenizer);
    GENNER_CHECK(labels.token_ids == record.label_token_ids, (out / "run.json").string(),
                 ": label token ids differ from the tokenizer's; was spiece.model replaced?");
    model::NerOptions opt;
    opt.types(static_cast<int64_t>(record.types.size()));
    std::shared_ptr<model::NerModelImpl<E>> m;
    if (!record.pretrained.empty()) {
      m = model::NerModelImpl<E>::from_pretrained(record.pretrained, opt);
    } else {
      opt.with_config(record.config);
      m = std::make_shared<model::NerModelImpl<E>>(opt);
    }
    check_vocabulary(tokenizer, record);
    if (!record.frozen.empty()) model::load_frozen(*m, train::path_from_record(record.frozen, out));
    model::load_trained(*m, out / "best.safetensors");
    m->eval();
    model::prepare_inference(*m, model::parse_precision(cfg_.precision));  // evaluate / predict
    return {m, std::move(tokenizer), std::move(labels)};
  }

  /// A path from run.json: relative to the run folder; a record of an older run may hold one
  /// relative to the working directory instead.
  static fs::path recorded_path(const std::string& recorded, const fs::path& out) {
    const auto p = train::path_from_record(recorded, out);
    return fs::exists(p) || !fs::exists(recorded) ? p : fs::path(recorded);
  }

  /// Settings of the recorded run, except those given on this command line.
  void use_recorded_settings(const RunRecord& record, const fs::path& out) {
    train::RunConfig merged = cfg_;
    if (record.settings.is_object()) {
      for (const auto& [key, value] : record.settings.items()) {
        if (key == "output_dir" || key == "resume" || std::find(given_.begin(), given_.end(), key) != given_.end())
          continue;
        try {
          const auto& o = train::find_option(key, (out / "run.json").string());
          train::check_value(o, value, (out / "run.json").string() + ": settings: '" + key + "'");
          o.set(merged, value);
        } catch (const Error&) {
          // A setting this version no longer knows: the command line's value stands.
        }
      }
    }
    cfg_ = merged;
  }

  fs::path recorded_data_dir(const RunRecord& record, const fs::path& out) {
    const bool given = std::find(given_.begin(), given_.end(), "data_dir") != given_.end();
    if (!given && !record.data_dir.empty()) return recorded_path(record.data_dir, out);
    return resolve_data_dir(out);
  }

  /// Settings whose change would make a resumed run a different run (checked against the checkpoint).
  nlohmann::json trajectory_settings() const {
    auto j = train::to_json(cfg_);
    for (const char* k : {"output_dir", "resume", "description", "log_every", "checkpoint_every", "patience", "data_dir",
                          "pretrained", "model_dir"})
      j.erase(k);
    return j;
  }

  /// The tokenizer's pieces must all be rows of the model's embedding table.
  static void check_vocabulary(const text::Tokenizer& tokenizer, const RunRecord& record) {
    GENNER_CHECK(tokenizer.piece_count() <= record.config.vocab_size, record.tokenizer, ": the tokenizer has ",
                 tokenizer.piece_count(), " pieces but the model's vocabulary (vocab_size) holds ",
                 record.config.vocab_size, "; use the spiece.model that belongs to the checkpoint");
  }

  /// Padded tokens per batch so that a batch holds about batch_size sentences of average length.
  size_t tokens_per_batch(const std::vector<data::Example>& ex) const {
    double mean = 0;
    for (const auto& e : ex) mean += static_cast<double>(e.src_ids.size() + e.target.size());
    mean /= std::max<size_t>(1, ex.size());
    return static_cast<size_t>(std::max(1.0, mean * 1.3 * static_cast<double>(cfg_.batch_size)));
  }

  void write_predictions(const fs::path& file, const data::Dataset& d, const train::Evaluation& ev) {
    std::ostringstream text;
    for (size_t i = 0; i < d.sentences.size(); ++i)
      text << nlohmann::json{{"words", d.sentences[i].words},
                             {"gold", entities_json(d.sentences[i].words, d.sentences[i].entities)},
                             {"predicted", entities_json(d.sentences[i].words, ev.predictions[i])}}
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
           << "\n";
    io::write_text_atomically(file, text.str());
  }

  Family family_;
  train::RunConfig cfg_;
  train::dist::Group single_;
  train::dist::Group* group_;

 public:
  std::vector<std::string> given_;  ///< settings given on the command line (they override a run's record)
};

inline void print_usage(const std::string& program, Family family) {
  std::cout << "usage: " << program << " [train|evaluate|predict] [--config FILE] [--key value]...\n\n"
            << "  train     train on <data_dir>/train, select on dev, report test (the default command)\n"
            << "  evaluate  score the run in --output_dir on the test split; flat data also gets a CoNLL file\n"
            << "  predict   --input FILE|- (one text per line; - is standard input) [--predictions FILE|-]\n"
            << "            [--format jsonl|conll|brat] [--pretokenized] [--split_sentences]\n"
            << "            [--max_source_pieces N (512)]: one record per input line, character offsets\n"
            << "            (brat: code points of the whole input); throughput on standard error\n\n"
            << "With no arguments: the built-in default — a " << family_name(family)
            << " sample data set written by genner, a SentencePiece model and a small T5 trained from scratch.\n"
            << "With --pretrained DIR (a Hugging Face T5 folder with spiece.model) training starts from its weights.\n\n";
  std::cout << train::help_text(program);
}

/// main() of an example experiment.
template <class E>
int run(Family family, const std::string& default_config, int argc, char** argv) {
  core::prefer_passive_openmp(argv);
  const std::string program = fs::path(argv[0]).filename().string();
  std::cout << std::unitbuf;  // progress notes interleave with stderr and show up in logs as they happen
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string command = "train";
    if (!args.empty() && args.front().rfind("--", 0) != 0) {
      command = args.front();
      args.erase(args.begin());
      GENNER_CHECK(command == "train" || command == "evaluate" || command == "predict",
                   "unknown command '", command, "'; expected train, evaluate or predict (see --help)");
    }
    // predict's own options are taken out before the settings parser sees the rest.
    std::string input, predictions, max_pieces;
    PredictFlags flags;
    for (size_t i = 0; i < args.size();) {
      auto take = [&](const std::string& key, std::string& into) {
        if (args[i] == key) {
          GENNER_CHECK(i + 1 < args.size(), key, " needs a value");
          into = args[i + 1];
          args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
          return true;
        }
        if (args[i].rfind(key + "=", 0) == 0) {
          into = args[i].substr(key.size() + 1);
          args.erase(args.begin() + static_cast<long>(i));
          return true;
        }
        return false;
      };
      auto flag = [&](const std::string& key, bool& into) {
        if (args[i] != key) return false;
        into = true;
        args.erase(args.begin() + static_cast<long>(i));
        return true;
      };
      if (!take("--input", input) && !take("--predictions", predictions) && !take("--format", flags.format) &&
          !take("--max_source_pieces", max_pieces) && !flag("--pretokenized", flags.pretokenized) &&
          !flag("--split_sentences", flags.split_sentences))
        ++i;
      else
        GENNER_CHECK(command == "predict", "--input, --predictions, --format, --pretokenized, "
                     "--split_sentences and --max_source_pieces belong to the predict command, not to ", command);
    }
    const bool has_config = std::any_of(args.begin(), args.end(), [](const std::string& a) {
      return a == "--config" || a.rfind("--config=", 0) == 0;
    });
    if (!has_config) args.insert(args.begin(), {"--config", default_config});
    auto cl = train::parse_command_line(args);
    if (cl.help) {
      print_usage(program, family);
      return 0;
    }
    const train::RunConfig& cfg = cl.config;
    // Data parallelism: RANK/WORLD_SIZE in the environment make this process one rank; --nproc N
    // without them starts N local ranks of this program and waits for them.
    const auto env = train::dist::launch_env_from_environment();
    GENNER_CHECK(command == "train" || (cfg.nproc == 1 && env.world_size == 1), command,
                 " runs in one process; drop --nproc ", cfg.nproc, " / WORLD_SIZE=", env.world_size);
    GENNER_CHECK(!env.from_environment || cfg.nproc == 1 || cfg.nproc == env.world_size, "--nproc ", cfg.nproc,
                 " disagrees with WORLD_SIZE=", env.world_size, " set in the environment");
    if (command == "train" && cfg.nproc > 1 && !env.from_environment)
      return train::dist::spawn_local_ranks(static_cast<int>(cfg.nproc), argv);
    train::dist::Group group;
    if (env.world_size > 1) {
      const auto backend = train::dist::parse_backend(cfg.backend, torch::cuda::is_available());
      group = train::dist::Group::connect(
          env, {backend, std::chrono::milliseconds(static_cast<int64_t>(cfg.dist_timeout * 1000))});
      if (!group.is_main()) std::cout.setstate(std::ios::badbit);  // rank 0 alone reports
    } else {
      (void)train::dist::parse_backend(cfg.backend, torch::cuda::is_available());  // refuses nccl without NCCL
    }
    Experiment<E> experiment(family, cfg, &group);
    experiment.given_ = cl.given;
    if (command == "train") return experiment.train_command();
    if (command == "evaluate") return experiment.evaluate_command();
    GENNER_CHECK(!input.empty(), "predict needs --input FILE (one text per line; - reads standard input)");
    (void)recognize::parse_format(flags.format);
    if (!max_pieces.empty()) {
      size_t used = 0;
      try {
        flags.max_source_pieces = std::stoll(max_pieces, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      GENNER_CHECK(used == max_pieces.size() && flags.max_source_pieces >= 2,
                   "--max_source_pieces: expected an integer of at least 2, found '", max_pieces, "'");
    }
    return experiment.predict_command(input, predictions, flags);
  } catch (const Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << program << ": error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // Anything a check did not name: still a message and an exit code, never terminate().
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << program << ": error: unknown exception\n";
    return 1;
  }
}

}  // namespace genner::examples
