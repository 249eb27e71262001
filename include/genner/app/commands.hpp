// genner/app/commands.hpp: the commands of the command-line application — train, plan, evaluate,
// predict, serve — for one compiled experiment E (genner/model/policies.hpp). The compiled experiment is
// the one truth about structure: settings that contradict it are refused (genner/app/structure.hpp);
// every other setting is obeyed.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <unistd.h>

#include <genner/app/experiments.hpp>
#include <genner/app/family.hpp>
#include <genner/app/options.hpp>
#include <genner/app/report.hpp>
#include <genner/app/serve.hpp>
#include <genner/app/splits.hpp>
#include <genner/app/structure.hpp>
#include <genner/core/memory.hpp>
#include <genner/core/threading.hpp>
#include <genner/data.hpp>
#include <genner/data/sample.hpp>
#include <genner/io/atomic_file.hpp>
#include <genner/model.hpp>
#include <genner/recognize.hpp>
#include <genner/text.hpp>
#include <genner/train.hpp>
#include <genner/train/distributed.hpp>

namespace genner::app {

using recognize::RunRecord;

/// A small T5 for training from scratch, shaped by the scratch_* settings.
inline t5::T5Config scratch_config(const RunConfig& cfg, int64_t vocab_size) {
  check_consistency(cfg);
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

inline generate::PointerDecodeOptions decode_options(const RunConfig& cfg, Family family) {
  generate::PointerDecodeOptions d;
  d.search.num_beams = cfg.beams;
  d.search.max_length(cfg.max_len, cfg.max_len_a);
  d.search.length_penalty = cfg.length_penalty;
  d.target = cfg.target_type;
  d.constrained = cfg.constrained;
  d.contiguous = cfg.contiguous;
  d.flat = family == Family::flat;  // flat entities never overlap (generate/overlaps.hpp)
  return d;
}

inline nlohmann::json to_json(const generate::PointerDecodeOptions& d) {
  return {{"beams", d.search.num_beams},
          {"max_len", d.search.max_len},
          {"max_len_a", d.search.max_len_a},
          {"length_penalty", d.search.length_penalty},
          {"target", data::target_type_name(d.target)},
          {"constrained", d.constrained},
          {"contiguous", d.contiguous},
          {"flat", d.flat}};
}

inline nlohmann::json to_json(const train::TrainerOptions& t) {
  nlohmann::json out = nlohmann::json::object();
  train::for_each_setting(t, [&](const char* key, const auto& value) { out[key] = value; });
  out["max_tokens"] = t.max_tokens == std::numeric_limits<size_t>::max() ? nlohmann::json() : nlohmann::json(t.max_tokens);
  out["output_dir"] = t.output_dir.string();
  out["decode"] = to_json(t.decode);
  out["precision"] = model::precision_name(t.precision);
  out["metric"] = train::metric_rules_name(t.metric);
  out["callbacks"] = nlohmann::json::array();
  for (const auto& c : t.callbacks) out["callbacks"].push_back(c->describe());
  return out;
}

/// The keys that shape a from-scratch backbone, and those that apply only to a from-scratch start.
inline const std::vector<std::string>& scratch_keys() {
  static const std::vector<std::string> k = {"scratch_d_model", "scratch_d_ff",    "scratch_heads",
                                             "scratch_layers",  "scratch_dropout", "spm_vocab_size"};
  return k;
}

/// The commands for experiment E.
template <class E>
class Commands {
 public:
  Commands(Program program, CommandLine cl, train::dist::Group* group = nullptr)
      : program_(std::move(program)),
        cfg_(std::move(cl.config)),
        options_(std::move(cl.options)),
        given_(std::move(cl.given)),
        origin_(std::move(cl.origin)),
        compiled_(std::move(cl.compiled)),
        group_(group ? group : &single_) {
    use_family(origin_.count("family") ? origin_.at("family") : std::string("family"));
  }

  /// One line naming the compiled experiment.
  static std::string experiment_line() { return describe(E::spec()); }

  /// Everything train would do, resolved, without training: printed as JSON on standard output
  /// (notes go to standard error). Creates nothing: no run folder, lock or tokenizer; the sample
  /// data set is written to a temporary folder that is removed again.
  int plan_command() {
    Prepared p;
    threads_ = use_threads();
    prepare(p, /*for_training=*/false);
    std::cout << plan_json(p).dump(2) << "\n";
    check_stdout();
    return 0;
  }

  int train_command() {
    Prepared p;
    threads_ = use_threads();
    prepare(p, /*for_training=*/true);
    auto& model = *p.model;
    const auto& out = p.topt.output_dir;
    if (group_->is_main()) start_run_folder(p, cfg_.resume && train::find_checkpoint(out / "checkpoint").has_value());
    if (group_->distributed())
      std::cout << "  data parallel: " << group_->size() << " ranks (" << train::dist::backend_name(group_->backend())
                << ", store " << group_->address() << "), " << cfg_.accumulate
                << " micro-batch(es) per rank and step\n";
    std::cout << "  threads: " << threads_.describe() << "\n";
    model.store_frozen(frozen_storage());
    check_memory_plan(p);
    train::Trainer trainer(model, p.labels, p.train, p.dev, p.topt);
    const auto result = trainer.fit();
    std::cout << "  trained " << result.steps << " steps" << (result.resumed ? " (resumed)" : "")
              << (result.stopped_early ? " (stopped early)" : "") << "; best dev F1 " << std::fixed
              << std::setprecision(2) << 100 * result.best_dev_f1 << " at step " << result.best_step << "\n";
    model::load_trained(model, result.best_model);
    auto dev_eval = train::evaluate(*group_, model, p.dev, p.labels, p.topt.decode, 32, true, p.topt.metric);
    auto test_eval = train::evaluate(*group_, model, p.test, p.labels, p.topt.decode, 32, true, p.topt.metric);
    print_scores("dev ", dev_eval);
    print_scores("test", test_eval);
    if (!group_->is_main()) return 0;
    write_predictions(out / "test_predictions.jsonl", p.splits.test, test_eval);
    io::write_text_atomically(out / "results.json", nlohmann::json{{"dev", dev_eval.scores.to_json()},
                                                                   {"test", test_eval.scores.to_json()},
                                                                   {"best_step", result.best_step},
                                                                   {"steps", result.steps}}
                                                            .dump(2) +
                                                        "\n");
    print_examples(p.splits.test, test_eval, 5);
    std::cout << "Wrote " << (out / "run.json").string() << ", best.safetensors, log.jsonl, curve.png, results.json\n";
    return 0;
  }

  int evaluate_command() {
    GENNER_CHECK(!cfg_.output_dir.empty(), "--output_dir: expected the run folder to evaluate, found an empty path");
    const auto& flags = options_;
    const fs::path out = cfg_.output_dir;
    auto record = RunRecord::read(out / "run.json");
    use_recorded_settings(record, out);
    threads_ = use_threads();
    train::RunLock lock(out);
    auto [model, tokenizer, labels] = recognize::restore_run<E>(out, record);
    model->eval();
    model->store_frozen(frozen_storage());  // as the run was trained
    model::prepare_inference(*model, precision());
    const fs::path data_dir = recorded_data_dir(record, out);
    auto splits = load_splits(program_.family, data_dir, cfg_);
    const bool dev = flags.split == "dev";
    const auto& split = dev ? splits.dev : splits.test;
    // A dev split carved from train (dev_from_train) comes from the train file.
    const auto split_source = split_file(program_.family, data_dir, dev && cfg_.dev_from_train > 0.0 ? "train" : flags.split);
    check_known_types(split, flags.split, split_source, labels.types, out);
    auto examples = data::encode_dataset(split, tokenizer, labels, cfg_.target_type);
    data::check_source_lengths(examples, split, static_cast<size_t>(cfg_.max_words),
                               std::string("the ") + (dev ? "dev" : "test") + " split of " + data_dir.string());
    const auto rules = cfg_.metric;
    auto ev = train::evaluate(*model, examples, labels, decode_options(cfg_, program_.family),
                              static_cast<size_t>(cfg_.batch_size), true, rules);
    print_scores(dev ? "dev " : "test", ev);
    if (!flags.output.empty()) {
      const auto rules_text =
          rules == train::MetricRules::pointer
              ? "pointer: entities compared as tuples of output indices (pointers and type) read off the generated "
                "sequence, each distinct entity of a sentence counted once, as the published figures were counted"
              : "word: typed entities (type and word fragments) compared exactly, counted with multiplicity";
      nlohmann::json metrics = ev.scores.to_json();
      metrics["split"] = flags.split;
      metrics["data_dir"] = data_dir.string();
      metrics["run"] = out.string();
      metrics["rules"] = std::string(rules_text) +
                         "; micro precision, recall and F1 over all entities, and per type; exact match: sentences "
                         "predicted exactly; all figures in percent (0-100)";
      metrics["invalid_entities"] = ev.invalid_entities;
      metrics["decoding"] = to_json(decode_options(cfg_, program_.family));
      metrics["precision_mode"] = model::precision_name(cfg_.precision);
      io::write_text_atomically(flags.output, metrics.dump(2) + "\n");
      std::cout << "Metrics (percent): " << flags.output << "\n";
    }
    if (program_.family == Family::flat) {
      const auto file = out / (dev ? "dev_predictions.conll" : "test_predictions.conll");
      write_conll_predictions(file, split, ev);
      std::cout << "CoNLL-format predictions (word gold pred) for conlleval: " << file.string() << "\n";
    }
    check_stdout();
    return 0;
  }

  /// Raw text (one text per line; `-` reads standard input) to entities, one output record per
  /// input line; the logic lives in genner/recognize/predict.hpp.
  int predict_command() {
    const std::string& input = options_.input;
    const fs::path output = options_.predictions;
    // Checked first: a descriptor opened later (a weight file) could take the number 0.
    GENNER_CHECK(input != "-" || ::fcntl(STDIN_FILENO, F_GETFD) != -1,
                 "--input -: expected text on standard input, found it closed; pipe text in or give --input FILE");
    GENNER_CHECK(input == "-" || !fs::is_directory(input),
                 "--input: expected a text file (one text per line) or -, found the folder '", input, "'");
    GENNER_CHECK(output.empty() || !fs::is_directory(output),
                 "--predictions: expected a file to write, found the folder '", output.string(), "'");
    const auto recognizer = load_recognizer("predict");
    recognize::PredictOptions po;
    po.format = recognize::parse_format(options_.format);
    std::ifstream file;
    std::istream* in = &std::cin;
    if (input == "-") {
      po.input_fd = STDIN_FILENO;
    } else {
      // Streamed line by line; a regular file is counted first (in blocks) for the progress bar.
      file.open(input, std::ios::binary);
      GENNER_CHECK(file.good(), input, ": cannot read the input text (one text per line; - reads standard input)");
      po.input_name = input;
      if (fs::is_regular_file(input)) {
        std::vector<char> block(std::size_t{1} << 20);
        while (file.read(block.data(), static_cast<std::streamsize>(block.size())) || file.gcount() > 0)
          po.total_lines += static_cast<size_t>(std::count(block.begin(), block.begin() + file.gcount(), '\n'));
        file.clear();
        file.seekg(0);
      }
      in = &file;
    }
    if (output.empty() || output == "-") {
      (void)recognize::predict_lines(recognizer, *in, std::cout, po);
      check_stdout();
    } else {
      recognize::PredictStats stats;
      io::write_output(output, [&](std::ofstream& o) { stats = recognize::predict_lines(recognizer, *in, o, po); });
      std::cerr << "Wrote " << stats.lines << " predictions to " << output.string() << "\n";
    }
    return 0;
  }

  /// Answers NER requests over HTTP on loopback (genner/app/serve.hpp) with the run in --output_dir,
  /// the same Recognizer, precision and decoding settings as predict, until SIGINT or SIGTERM.
  int serve_command() {
    auto options = serve_options(options_);
    const auto recognizer = load_recognizer("serve");
    recognize::RecognizerOptions ro = recognizer.options();
    options.info = {{"program", program_.name},
                    {"run", cfg_.output_dir},
                    {"precision", model::precision_name(cfg_.precision)},
                    {"decode", to_json(recognizer.decode_options())},
                    {"pretokenized", ro.tokenize.pretokenized},
                    {"split_sentences", ro.tokenize.split_sentences}};
    NerServer server(recognizer, std::move(options));
    const int port = server.start();
    std::cout << "serve: listening on http://" << server.options().host << ":" << port
              << " (POST /v1/recognize, GET /health, GET /metrics); SIGINT or SIGTERM stops it" << std::endl;
    (void)serve_until_signalled(server, std::cerr);
    const auto s = server.metrics();
    std::cerr << "serve: stopped; responses by status " << s["responses"].dump() << "; " << s["texts"].get<size_t>()
              << " text(s) decoded in " << s["batches"].get<size_t>() << " batch(es) (mean " << std::fixed
              << std::setprecision(2) << s["mean_batch"].get<double>() << " texts)\n";
    return 0;
  }

  /// Writes the trained run in --output_dir for other tools: a Hugging Face folder (hf: the trained
  /// T5 with LoRA factors merged, its config.json and the run's spiece.model, so that it is a --model
  /// folder too) or a PEFT LoRA folder (peft). The folder appears whole or not at all.
  int export_command() {
    GENNER_CHECK(!cfg_.output_dir.empty(), "--output_dir: expected the run folder to export, found an empty path");
    const auto& flags = options_;
    const fs::path out = cfg_.output_dir;
    const auto spec = E::spec();
    const std::string format = !flags.format.empty() ? flags.format : spec.lora.enabled() ? "peft" : "hf";
    const fs::path to = flags.to;
    std::error_code ec;
    GENNER_CHECK(!fs::exists(to, ec) || (fs::is_directory(to, ec) && fs::is_empty(to, ec)), "--to ", to.string(),
                 ": expected a new or empty folder, found ",
                 fs::is_directory(to, ec) ? "a folder with files in it" : "a file",
                 "; export writes a whole folder and replaces nothing");
    if (format == "peft")
      GENNER_CHECK(spec.lora.enabled(), "--format peft: a PEFT folder holds LoRA factors, and ", program_.name,
                   " trains none (peft ", peft_mode(spec), "); --format hf writes a Hugging Face folder");
    else
      GENNER_CHECK(!spec.adapters.enabled() && spec.prompt_length == 0, "--format hf: Hugging Face's T5 has no place for ",
                   spec.adapters.enabled() && spec.prompt_length > 0 ? "the adapters and soft prompt"
                   : spec.adapters.enabled()                         ? "the adapters"
                                                                     : "the soft prompt",
                   " this run trained (", program_.name, ", peft ", peft_mode(spec),
                   "), so the folder would hold only the backbone it started from; the trained run is ",
                   (out / "best.safetensors").string(), " with its run.json (evaluate, predict, serve)");
    auto record = RunRecord::read(out / "run.json");
    use_recorded_settings(record, out);
    train::RunLock lock(out);
    auto [model, tokenizer, labels] = recognize::restore_run<E>(out, record);
    model->eval();
    const std::string base =
        record.pretrained.empty() ? std::string()
                                  : recognize::locate_recorded(out, record.pretrained, "", out / "run.json").string();
    const auto tmp = io::temporary_for(to);
    fs::remove_all(tmp, ec);
    try {
      fs::create_directories(tmp);
      if (format == "peft") {
        model::export_peft_lora(*model, tmp, base);
      } else {
        model->merge_lora();
        t5::save_pretrained(*model->t5, tmp);
        fs::copy_file(recognize::locate_recorded(out, record.tokenizer, "spiece.model", out / "run.json"),
                      tmp / "spiece.model");
      }
      if (fs::exists(to, ec)) fs::remove(to, ec);  // the empty folder checked above
      fs::rename(tmp, to);
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
    std::cout << "Wrote " << to.string() << ": "
              << (format == "peft" ? "a PEFT LoRA folder (adapter_config.json, adapter_model.safetensors) for the "
                                     "base model " +
                                         (base.empty() ? std::string("trained from scratch (none named)") : base)
                                   : std::string("a Hugging Face T5 folder (config.json, model.safetensors, "
                                                 "spiece.model)") +
                                         (spec.lora.enabled() ? " with the LoRA factors merged" : ""))
              << "; the NER head (encoder MLP, label rows) stays in " << (out / "best.safetensors").string() << "\n";
    check_stdout();
    return 0;
  }

 private:
  /// Output that did not reach standard output (a full disk, a closed pipe) is a failure.
  static void check_stdout() {
    GENNER_CHECK(std::cout.flush().good(), "standard output: the write failed (disk full or closed pipe?)");
  }

  /// The Recognizer predict and serve use: the run in --output_dir with its recorded settings,
  /// decoding settings and precision from the command line over them.
  recognize::Recognizer load_recognizer(const std::string& command) {
    GENNER_CHECK(!cfg_.output_dir.empty(), "--output_dir: expected the run folder to ", command,
                 " with, found an empty path");
    const auto& flags = options_;
    const auto record = RunRecord::read(fs::path(cfg_.output_dir) / "run.json");
    use_recorded_settings(record, cfg_.output_dir);
    threads_ = use_threads();
    recognize::RecognizerOptions ro;
    ro.decode = decode_options(cfg_, program_.family);
    ro.batch_size = static_cast<size_t>(cfg_.batch_size);
    ro.threshold = flags.threshold;
    ro.flat = program_.family == Family::flat;
    ro.tokenize.pretokenized = flags.pretokenized;
    ro.tokenize.split_sentences = flags.split_sentences;
    ro.max_source_pieces = flags.max_source_pieces;
    auto recognizer = recognize::Recognizer::load<E>(cfg_.output_dir, record, ro);
    recognizer.model().store_frozen(frozen_storage());  // as the run was trained
    model::prepare_inference(recognizer.model(), precision());
    return recognizer;
  }

  /// A run, resolved: data, tokenizer, labels, model and the trainer's options.
  struct Prepared {
    Splits splits;
    std::optional<text::Tokenizer> tokenizer;
    data::LabelSpace labels;
    std::shared_ptr<model::NerModelImpl<E>> model;
    model::NerOptions model_options;
    std::vector<data::Example> train, dev, test;
    train::TrainerOptions topt;
    RunRecord record;
    fs::path data_dir;
    std::optional<train::RunLock> lock;
    /// plan: the folder the sample data set is written to instead of the run folder (removed after).
    struct TempFolder {
      fs::path path;
      TempFolder() {
        std::string pattern = (fs::temp_directory_path() / "genner-plan-XXXXXX").string();
        GENNER_CHECK(::mkdtemp(pattern.data()) != nullptr, "plan: cannot create a temporary folder under ",
                     fs::temp_directory_path().string(), " (", std::strerror(errno), ")");
        path = pattern;
      }
      TempFolder(const TempFolder&) = delete;
      TempFolder& operator=(const TempFolder&) = delete;
      ~TempFolder() {
        std::error_code ec;
        fs::remove_all(path, ec);
      }
    };
    std::optional<TempFolder> temp;
    bool tokenizer_planned = false;  ///< plan from scratch: the tokenizer train would train is not trained
  };

  /// Rank 0 of a training run: the run folder's records before the first step (a fresh start first
  /// removes what an earlier run left), and the manifest after every save of the best weights.
  void start_run_folder(Prepared& p, bool resuming) {
    const auto& out = p.topt.output_dir;
    auto& model = *p.model;
    // A fresh start leaves nothing of an earlier run beside the new run.json (the manifest goes first).
    if (!resuming)
      for (const char* f : {"manifest.json", "best.safetensors", "checkpoint", "checkpoint.prev", "results.json",
                            "test_predictions.jsonl"})
        fs::remove_all(out / f);
    if (p.record.pretrained.empty() && !model::frozen_parameters(model).empty()) {
      // A random frozen backbone exists only in this process: keep it, or the run cannot be evaluated.
      p.record.frozen = "frozen.safetensors";
      model::save_frozen(model, out / p.record.frozen);
    }
    io::write_text_atomically(out / "run.json", p.record.to_json().dump(2) + "\n");
    io::write_text_atomically(out / "config.json", to_json(cfg_).dump(2) + "\n");
    if (resuming && fs::exists(out / "best.safetensors")) recognize::write_run_manifest(out, p.record);
    // The manifest follows every save of best.safetensors (KeepBestWeights, earlier in the list, writes it).
    struct ManifestWriter : train::TrainerCallback {
      ManifestWriter(fs::path d, RunRecord r) : dir(std::move(d)), record(std::move(r)) {}
      void on_evaluation(const train::TrainingEvaluation&) override {
        if (fs::exists(dir / "best.safetensors")) recognize::write_run_manifest(dir, record);
      }
      fs::path dir;
      RunRecord record;
    };
    p.topt.callbacks.push_back(std::make_shared<ManifestWriter>(out, p.record));
  }

  /// Prints the memory plan of a training step and refuses one over the budget.
  void check_memory_plan(const Prepared& p) const {
    const auto plan = memory_plan(p);
    const auto budget = memory_budget();
    plan.check_budget(budget.bytes, budget.origin);
    std::cout << "  memory plan: " << model::format_bytes(plan.largest().total(plan.checkpointing)) << " on "
              << plan.largest().device << " (weights " << model::format_bytes(plan.largest().weight_bytes())
              << ", gradients and AdamW state " << model::format_bytes(plan.largest().gradients + plan.largest().optimizer)
              << ", activations " << model::format_bytes(plan.checkpointing ? plan.largest().activations_checkpointed
                                                                            : plan.largest().activations)
              << "); budget " << model::format_bytes(budget.bytes) << "\n";
  }

  void prepare(Prepared& p, bool for_training) {
    // Rank 0 owns the folder (checks, lock, clean-up), writes the sample data and trains the
    // tokenizer; the other ranks then read them. A plan touches no run folder.
    const bool main_rank = group_->is_main();
    std::ostream& note = for_training ? std::cout : std::cerr;
    const fs::path out = claim_output_dir(p, for_training);
    const auto trajectory = trajectory_settings();
    if (for_training && cfg_.resume) {
      const auto saved = train::checkpoint_settings(out / "checkpoint");
      refuse_longer_schedule(saved, trajectory, (out / "checkpoint").string());
      train::check_resume_settings(saved, trajectory, (out / "checkpoint").string());
    }
    // The backbone first: a contradiction with the compiled experiment stops the run before any work
    // (a static preset's shape is known before its checkpoint is found).
    if constexpr (E::backbone::is_static) check_structure(E::backbone::config());
    const auto source = resolve_model(cfg_.model);
    const auto shape = backbone_shape(source);
    if constexpr (!E::backbone::is_static) check_structure(shape);

    read_data(p, out, for_training, note);

    auto& record = p.record;
    record.settings = to_json(cfg_);
    record.types = p.splits.types;
    record.pretrained = source.scratch ? std::string() : train::path_for_record(fs::absolute(source.folder), out);
    record.family = family_name(program_.family);
    record.data_dir = train::path_for_record(p.data_dir, out);
    record.program = program_.name;
    record.experiment = E::spec().to_json();
    if (!for_training && source.scratch) {
      // train would train a SentencePiece model here; the plan says so and sizes the model for the
      // largest vocabulary it can have.
      p.tokenizer_planned = true;
      record.tokenizer = train::path_for_record(out / "spiece.model", out);
    } else {
      if (main_rank) p.tokenizer.emplace(make_tokenizer(p.splits, source, out, record));
      group_->barrier("tokenizer");
      if (!main_rank) p.tokenizer.emplace(make_tokenizer(p.splits, source, out, record, /*train=*/false));
      p.labels = data::LabelSpace::make(p.splits.types, *p.tokenizer);
      record.label_token_ids = p.labels.token_ids;
    }

    // LibTorch seeds its generator at random in each process: --seed also decides the initial weights.
    torch::manual_seed(static_cast<uint64_t>(cfg_.seed));
    p.model_options.types(static_cast<int64_t>(record.types.size()));
    p.model_options.mlp_dropout = cfg_.mlp_dropout;
    // A checkpoint fills frozen projections in their storage form; a random backbone is stored
    // after it is saved (train_command).
    if (!source.scratch) p.model_options.frozen_storage = frozen_storage();
    p.model = build_model(source, shape, p.model_options,
                          p.tokenizer ? p.tokenizer->piece_count() : cfg_.spm_vocab_size);
    record.config = p.model->config();
    if (p.tokenizer) encode_splits(p);
    p.model->set_checkpointing(cfg_.gradient_checkpointing);
    // A random frozen backbone is saved in fp32 before training (train_command), then stored.
    if (!for_training) p.model->store_frozen(frozen_storage());
    note << "  model: " << p.model->config().describe() << "; trainable parameters " << p.model->count_trainable()
         << (p.tokenizer_planned ? " (at most: the vocabulary is not trained yet)" : "") << "\n";
    p.topt = trainer_options(out, trajectory);
  }

  /// The run folder: rank 0 of a training run creates it, locks it and removes what a killed run
  /// left; a plan and the other ranks only name it.
  fs::path claim_output_dir(Prepared& p, bool for_training) {
    GENNER_CHECK(!cfg_.output_dir.empty(), "--output_dir: expected a folder, found an empty path");
    const bool owner = group_->is_main() && for_training;
    const fs::path out = owner ? train::prepare_output_dir(cfg_.output_dir) : fs::path(cfg_.output_dir);
    if (owner) {
      p.lock.emplace(out);
      for (const auto& f : train::remove_stale_temporaries(out))
        std::cerr << "note: removed " << f.string() << ", left by a killed run\n";
    }
    return out;
  }

  /// Finds (or, for the sample, writes) the data and loads its splits; a resumed run must read the
  /// data it was trained on.
  void read_data(Prepared& p, const fs::path& out, bool for_training, std::ostream& note) {
    const bool main_rank = group_->is_main();
    if (!for_training && cfg_.data_dir.empty() && cfg_.dataset == "sample") {
      p.temp.emplace();
      p.data_dir = resolve_data_dir(p.temp->path / "run");  // read below; reported where train writes it
    } else {
      if (main_rank) p.data_dir = resolve_data_dir(out);
      group_->barrier("sample data");
      if (!main_rank) p.data_dir = resolve_data_dir(out, /*write=*/false);
    }
    if (for_training && cfg_.resume && train::find_checkpoint(out / "checkpoint") && fs::exists(out / "run.json")) {
      // The checkpoint's weights and tokenizer belong to the data they were trained on.
      const auto before = RunRecord::read(out / "run.json").data_dir;
      const auto was = fs::weakly_canonical(train::path_from_record(before, out));
      GENNER_CHECK(before.empty() || was == fs::weakly_canonical(p.data_dir), (out / "checkpoint").string(),
                   ": cannot resume: the run was trained on the data in ", was.string(), ", not ",
                   p.data_dir.string(), "; resume with that --data_dir, or --resume false to start over in this folder");
    }
    const auto data_read = p.data_dir;
    if (p.temp) p.data_dir = out / "sample_data";
    note << "genner " << program_.name << " (" << family_name(program_.family) << " NER): data " << p.data_dir.string()
         << ", output " << out.string() << "\n  experiment: " << experiment_line() << "\n";
    p.splits = load_splits(program_.family, data_read, cfg_);
    note << "  sentences: train " << p.splits.train.sentences.size() << ", dev " << p.splits.dev.sentences.size()
         << ", test " << p.splits.test.sentences.size() << "; types:";
    for (const auto& t : p.splits.types) note << ' ' << t;
    note << "\n";
    if (cfg_.dataset == "sample" && cfg_.data_dir.empty())
      note << "  note: the sample data is synthetic (genner/data/sample.hpp); a model trained on it fits that data "
              "only, not real text: train on a real data set (--dataset, --data_dir) for that\n";
  }

  /// Encodes the three splits with the run's tokenizer and labels (label rows initialised from the
  /// type names), refusing sources the length guard would cut.
  void encode_splits(Prepared& p) {
    const auto& record = p.record;
    auto& tokenizer = *p.tokenizer;
    recognize::check_vocabulary(tokenizer, record.config.vocab_size, record.tokenizer);
    model::init_labels_from_names(*p.model, p.splits.types, tokenizer);
    const auto type = cfg_.target_type;
    data::EncodeReport report;
    p.train = data::encode_dataset(p.splits.train, tokenizer, p.labels, type, &report);
    p.dev = data::encode_dataset(p.splits.dev, tokenizer, p.labels, type, &report);
    p.test = data::encode_dataset(p.splits.test, tokenizer, p.labels, type, &report);
    const auto guard = static_cast<size_t>(cfg_.max_words);
    data::check_source_lengths(p.train, p.splits.train, guard, "the train split of " + p.data_dir.string());
    data::check_source_lengths(p.dev, p.splits.dev, guard, "the dev split of " + p.data_dir.string());
    data::check_source_lengths(p.test, p.splits.test, guard, "the test split of " + p.data_dir.string());
    if (report.entities_on_unk_words)
      std::cerr << "note: " << report.entities_on_unk_words << " entities cover words with no SentencePiece piece\n";
  }

  train::TrainerOptions trainer_options(const fs::path& out, const nlohmann::json& trajectory) {
    train::TrainerOptions topt;
    const auto settings = to_json(cfg_);  // the settings TrainerOptions shares by name
    train::for_each_setting(topt, [&](const char* key, auto& member) {
      member = settings.at(key).template get<std::remove_reference_t<decltype(member)>>();
    });
    topt.trajectory = trajectory;
    // batch_size is sentences per optimizer step, as Hugging Face reads it; no token bound.
    topt.max_tokens = std::numeric_limits<size_t>::max();
    topt.output_dir = out;
    topt.decode = decode_options(cfg_, program_.family);
    topt.metric = cfg_.metric;
    topt.precision = precision();
    topt.group = group_;
    // log.jsonl and log.csv, early stopping, the progress bar and curve.png
    topt.callbacks = train::standard_callbacks({topt.show_progress, cfg_.logging_steps, cfg_.patience});
    return topt;
  }

  /// Sizes this process's thread pools for --precision (--threads; genner/core/threading.hpp).
  core::ThreadSetting use_threads() const {
    const auto it = origin_.find("threads");
    return core::use_threads(static_cast<int>(cfg_.threads), precision() != model::Precision::fp32,
                             it == origin_.end() || it->second == "--threads" ? std::string("--threads")
                                                                               : it->second + ": threads");
  }

  model::Precision precision() const { return cfg_.precision; }
  t5::WeightStorage frozen_storage() const { return cfg_.frozen_precision; }

  /// The memory plan of training on the longest training sentences, batch_size at a time. Before
  /// a tokenizer exists (plan from scratch), lengths are bounded from the words: two pieces a word
  /// and </s>, two pointers a fragment and a type an entity, and the end.
  model::MemoryPlan memory_plan(const Prepared& p) const {
    model::MemoryShape shape;
    shape.batch = cfg_.batch_size;
    shape.source = shape.target = 1;
    for (const auto& e : p.train) {
      shape.source = std::max<int64_t>(shape.source, static_cast<int64_t>(e.src_ids.size()));
      shape.target = std::max<int64_t>(shape.target, static_cast<int64_t>(e.target.size()) + 1);
    }
    if (p.train.empty())
      for (const auto& sentence : p.splits.train.sentences) {
        int64_t target = 2;
        for (const auto& entity : sentence.entities) target += 2 * static_cast<int64_t>(entity.fragments.size()) + 1;
        shape.source = std::max<int64_t>(shape.source, 2 * static_cast<int64_t>(sentence.words.size()) + 1);
        shape.target = std::max(shape.target, target);
      }
    return model::plan_memory(*p.model, shape, precision(), cfg_.gradient_checkpointing);
  }

  /// The memory a run may plan for, and where that figure comes from.
  struct Budget {
    int64_t bytes = 0;
    std::string origin;
  };
  /// --memory_budget in bytes, or, when it is not set, the memory this process may use (the least
  /// of the machine's memory, ulimit -v / -d and the cgroup's memory.max).
  Budget memory_budget() const {
    if (cfg_.memory_budget.empty()) {
      const auto limit = core::memory_limit();
      return {limit.bytes, limit.source};
    }
    const auto it = origin_.find("memory_budget");
    auto origin = it == origin_.end() ? std::string("memory_budget") : it->second + ": memory_budget";
    return {model::parse_bytes(cfg_.memory_budget, origin), origin};
  }

  /// The plan: what every setting resolved to, taken from the objects a training run uses.
  nlohmann::json plan_json(const Prepared& p) const {
    double checksum = 0;
    for (const auto& t : p.model->parameters()) checksum += t.detach().abs().sum().template item<double>();
    nlohmann::json source_pieces, target_length;  // null until a tokenizer exists
    std::vector<size_t> lengths;
    if (p.tokenizer) {
      int64_t sp = 0, tl = 0;
      for (const auto& e : p.train) sp += static_cast<int64_t>(e.src_ids.size()), tl += static_cast<int64_t>(e.target.size());
      source_pieces = sp;
      target_length = tl;
      lengths = data::BatchSampler::lengths_of(p.train);
    } else {
      // Batches are cut by sentence count alone (no token bound), so word counts give the same steps.
      for (const auto& s : p.splits.train.sentences) lengths.push_back(s.words.size() + 1);
    }
    const auto steps = train::plan_steps(std::move(lengths), p.topt);
    std::vector<std::string> first_words;
    if (!p.splits.train.sentences.empty()) first_words = p.splits.train.sentences.front().words;
    const auto backend =
        train::dist::backend_name(train::dist::parse_backend(cfg_.backend, torch::cuda::is_available()));
    nlohmann::json tokenizer = {{"file", p.record.tokenizer}};
    if (p.tokenizer) {
      tokenizer["pieces"] = p.tokenizer->piece_count();
    } else {
      tokenizer["pieces"] = nullptr;
      tokenizer["train_would_train"] = {{"vocab_size_at_most", cfg_.spm_vocab_size},
                                        {"corpus_sentences", p.splits.train.sentences.size()}};
    }
    const auto eval_every = cfg_.eval_every > 0 ? cfg_.eval_every : steps.per_epoch;
    return {{"program", program_.name},
            {"experiment", E::spec().to_json()},
            {"data",
             {{"family", family_name(program_.family)},
              {"dir", p.data_dir.string()},
              {"written_by_train", p.temp.has_value()},
              {"sentences",
               {p.splits.train.sentences.size(), p.splits.dev.sentences.size(), p.splits.test.sentences.size()}},
              {"types", p.splits.types},
              {"first_train_sentence", first_words},
              {"train_source_pieces", source_pieces},
              {"train_target_length", target_length}}},
            {"tokenizer", tokenizer},
            {"model",
             {{"config", p.model->config().to_json()},
              {"vocab_size_is_upper_bound", p.tokenizer_planned},
              {"from", p.record.pretrained.empty() ? std::string("scratch") : p.record.pretrained},
              {"mlp_dropout", p.model_options.mlp_dropout},
              {"trainable_parameters", p.model->count_trainable()},
              {"initial_weights_abs_sum", checksum}}},
            {"steps",
             {{"sentences_per_step", cfg_.batch_size},
              {"per_epoch", steps.per_epoch},
              {"total", steps.total},
              {"evaluations", eval_every > 0 ? (steps.total + eval_every - 1) / eval_every : 0}}},
            {"trainer", to_json(p.topt)},
            {"memory", memory_json(p)},
            {"parallel", {{"ranks", cfg_.nproc}, {"backend", backend}, {"timeout_s", cfg_.dist_timeout}}},
            {"threads", {{"openmp", threads_.openmp}, {"openblas", threads_.openblas}, {"from", threads_.source}}},
            {"record", {{"description", cfg_.description}, {"settings_checked_on_resume", p.topt.trajectory}}}};
  }

  nlohmann::json memory_json(const Prepared& p) const {
    const auto plan = memory_plan(p);
    auto j = plan.to_json();
    j["frozen_precision"] = t5::weight_storage_name(cfg_.frozen_precision);
    const auto budget = memory_budget();
    j["budget"] = budget.bytes;
    j["budget_from"] = budget.origin;
    j["fits"] = plan.largest().total(plan.checkpointing) <= budget.bytes;
    return j;
  }

  /// The backbone's shape before any weight is read: config.json of the model folder, the static
  /// preset, or the scratch_* settings (vocabulary size still open).
  t5::T5Config backbone_shape(const ModelSource& source) {
    using B = typename E::backbone;
    auto configured = [&](const std::string& key) { return origin_.count(key) != 0; };
    if (!source.scratch) {
      for (const auto& k : scratch_keys()) {
        if (!configured(k)) continue;
        GENNER_CHECK(!origin_.at(k).starts_with("--"), "--", k,
                     " applies only with --model scratch; the backbone and its "
                     "tokenizer come from ",
                     source.folder.string());
        std::cerr << "note: " << origin_.at(k) << ": '" << k
                  << "' does not apply: the backbone and its tokenizer come from " << source.folder.string() << "\n";
      }
      const auto file = t5::T5Config::from_file(source.folder / "config.json");
      if constexpr (B::is_static) {
        const auto preset = B::config();
        if (!preset.same_structure(file)) {
          const auto others = executables_with(program_.family, "", nullptr, file);
          fail("--model ", cfg_.model, ": ", (source.folder / "config.json").string(), " describes ", file.describe(),
               ", but ", program_.name, " is compiled for the static backbone ", preset.describe(),
               "; a checkpoint of another shape needs an executable compiled for it",
               others.empty() ? std::string() : " (" + list_names(others) + ")",
               " or an experiment alias with genner::t5::DynamicBackbone");
        }
      }
      return file;
    }
    if constexpr (B::is_static) {
      const auto preset = B::config();
      const std::vector<std::pair<std::string, int64_t>> shape = {{"scratch_d_model", preset.d_model},
                                                                  {"scratch_d_ff", preset.d_ff},
                                                                  {"scratch_heads", preset.num_heads},
                                                                  {"scratch_layers", preset.num_layers}};
      const auto settings = to_json(cfg_);
      for (const auto& [k, v] : shape) {
        const auto value = settings[k].template get<int64_t>();
        GENNER_CHECK(
            !configured(k) || value == v, origin_.count(k) ? origin_.at(k) : k, ": ", k, " ", value,
            " contradicts the compiled experiment: ", program_.name, " is compiled for the static backbone ",
            preset.describe(), " (", k, " ", v,
            "); drop the setting, or use an executable compiled with "
            "genner::t5::DynamicBackbone (such as flat_ner), whose from-scratch shape the scratch_* settings choose");
      }
      auto c = preset;
      c.dropout_rate = cfg_.scratch_dropout;
      return c;
    } else {
      return scratch_config(cfg_, /*vocab_size=*/1);
    }
  }

  /// Refuses what a config file or the command line says of the structure (train::compiled_keys())
  /// where it contradicts E on backbone `shape`; what agrees changes nothing.
  void check_structure(const t5::T5Config& shape) {
    const auto compiled = structure_settings(E::spec(), shape);
    for (const auto& [key, value] : compiled_.items()) {
      const auto it = origin_.find(key);
      const auto where = it == origin_.end() ? key : it->second;
      check_structure_value(key, value, where);
      if (value == compiled[key]) continue;
      std::vector<std::string> built, published;
      for (auto& name : executables_with(program_.family, key, value))
        (name.starts_with("ner_") ? built : published).push_back(std::move(name));
      std::string honour;
      if (!built.empty())
        honour = "Programs with " + key + " " + value.dump() + " for any backbone and family (built by default): " +
                 list_names(built) + ". ";
      if (!published.empty())
        honour += "Published experiments with it for " + std::string(family_name(program_.family)) +
                  " data: " + list_names(published) + " (cmake -DGENNER_BUILD_EXPERIMENTS=ON builds them). ";
      if (honour.empty())
        honour = std::string("No listed executable for ") + family_name(program_.family) + " data has it. ";
      fail(where, ": ", key, " ", value.dump(),
           " contradicts the compiled experiment: ", program_.name, " is compiled for ", experiment_line(), ", where ",
           key, " is ", compiled[key].dump(), ". ", honour, "Or compile an executable of your own with ",
           alias_for(key, value), " (genner/model/policies.hpp)");
    }
  }

  /// The `family` setting: the program's own family, or, for a program of any family, the one it
  /// names. `where` says where the setting came from.
  void use_family(const std::string& where) {
    const auto chosen = cfg_.family;
    if (chosen == program_.family) return;
    const std::string other = family_name(chosen);
    GENNER_CHECK(program_.any_family, where == "family" ? std::string("family") : where + ": family", " ", other,
                 " contradicts the program: ", program_.name, " serves ", family_name(program_.family), " data. For ",
                 other, " data use ", family_program(chosen), " (full fine-tuning) or a tuning-mode program with --family ",
                 other, " (ner_adapters, ner_lora, ner_prompt, ner_adapters_prompt, ner_embeddings)");
    program_.family = chosen;
  }

  /// A run extended by raising epochs or max_steps (and nothing else) is refused with the reason:
  /// the schedule already taken depends on the total number of steps.
  static void refuse_longer_schedule(const nlohmann::json& saved, const nlohmann::json& now, const std::string& where) {
    if (!saved.is_object() || !now.is_object()) return;
    std::string changed;
    for (const auto& [key, value] : now.items()) {
      if (!saved.contains(key) || saved[key] == value) continue;
      if (key != "epochs" && key != "max_steps") return;  // other differences: the general refusal
      changed += (changed.empty() ? "" : ", ") + key + " " + value.dump() + " (checkpoint: " + saved[key].dump() + ")";
    }
    if (changed.empty()) return;
    fail(where, ": cannot extend this run to ", changed,
         ": the learning rate warms up over warmup x the total steps and decays linearly to 0 at the last step, so "
         "every step this run took had the rate of its own total; a longer run would have had other rates from "
         "step 1, and continuing would give neither run. Train the longer run from the start (--resume false, or "
         "another --output_dir), or keep this one's epochs and max_steps");
  }

  bool on_command_line(const std::string& key) const {
    return std::find(given_.begin(), given_.end(), key) != given_.end();
  }

  fs::path resolve_data_dir(const fs::path& out, bool write = true) {
    if (!cfg_.data_dir.empty()) {
      GENNER_CHECK(!on_command_line("sample_size"),
                   "--sample_size applies only to --dataset sample without --data_dir; "
                   "this run reads ",
                   cfg_.data_dir);
      GENNER_CHECK(!(on_command_line("dataset") && on_command_line("data_dir")), "--dataset ", cfg_.dataset,
                   " and --data_dir ", cfg_.data_dir, " both name the data; give one");
      return cfg_.data_dir;
    }
    if (cfg_.dataset == "sample") {
      // The built-in default: a data set genner writes itself (genner/data/sample.hpp).
      const auto dir = out / "sample_data";
      if (!write) return dir;
      data::sample::Options o;
      o.seed = static_cast<uint64_t>(cfg_.seed);
      const auto n = static_cast<size_t>(cfg_.sample_size);
      o.sizes = {n, std::max<size_t>(1, n * 2 / 15), std::max<size_t>(1, n * 2 / 15)};
      data::sample::SplitFiles files;
      switch (program_.family) {
        case Family::flat: files = data::sample::write_flat(dir, o); break;
        case Family::nested: files = data::sample::write_nested(dir, o); break;
        case Family::discontinuous: files = data::sample::write_discontinuous(dir, o); break;
      }
      // Unannotated text for the predict command: new sentences for flat, test sentences otherwise.
      if (program_.family == Family::flat) {
        data::sample::write_raw(dir / "raw.txt", 20, o.seed);
      } else {
        std::string text;
        const auto test = load_split(program_.family, files.test);
        for (size_t i = 0; i < std::min<size_t>(20, test.sentences.size()); ++i)
          text += data::join_words(test.sentences[i].words) + "\n";
        io::write_text_atomically(dir / "raw.txt", text);
      }
      return dir;
    }
    GENNER_CHECK(!on_command_line("sample_size"), "--sample_size applies only to --dataset sample; this run reads ",
                 cfg_.dataset);
    const char* env = std::getenv("GENNER_DATA");
    return fs::path(env ? env : "../shared/data") / cfg_.dataset;
  }

  text::Tokenizer make_tokenizer(const Splits& s, const ModelSource& source, const fs::path& out, RunRecord& record,
                                 bool train = true) {
    if (!source.scratch) {
      const auto spm = fs::absolute(source.folder / "spiece.model");
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
    std::cout << "  training a SentencePiece model (vocabulary up to " << opt.vocab_size << ") on " << corpus.size()
              << " sentences\n";
    return text::Tokenizer::train(corpus, file, opt);
  }

  /// The model on `shape` (backbone_shape): a checkpoint's weights, or random ones with the
  /// tokenizer's vocabulary.
  std::shared_ptr<model::NerModelImpl<E>> build_model(const ModelSource& source, t5::T5Config shape,
                                                      model::NerOptions opt, int64_t pieces) {
    if (!source.scratch) return model::NerModelImpl<E>::from_pretrained(source.folder, opt);
    shape.vocab_size = pieces + text::Tokenizer::kNumExtraIds;
    check_scratch_size(shape);
    opt.with_config(shape);
    return std::make_shared<model::NerModelImpl<E>>(opt);
  }

  /// Refuses, before anything is allocated, a from-scratch model whose fp32 weights alone exceed
  /// the memory budget (the plan checks weights, gradients, optimizer state and activations once
  /// the model exists; a model too large to build would end in the allocator's own error).
  void check_scratch_size(const t5::T5Config& c) const {
    const int64_t inner = c.num_heads * c.d_kv;
    const int64_t ff = (c.feed_forward == t5::FeedForward::gated_gelu ? 3 : 2) * c.d_model * c.d_ff;
    const int64_t bias = c.relative_attention_num_buckets * c.num_heads;
    const double params = static_cast<double>(c.vocab_size) * static_cast<double>(c.d_model) +
                          static_cast<double>(c.num_layers) * static_cast<double>(4 * c.d_model * inner + ff) +
                          static_cast<double>(c.num_decoder_layers) * static_cast<double>(8 * c.d_model * inner + ff) +
                          2.0 * static_cast<double>(bias) +
                          (E::spec().encoder_mlp ? 2.0 * static_cast<double>(c.d_model) * static_cast<double>(c.d_model) : 0.0);
    const double bytes = 4.0 * params;
    const auto budget = memory_budget();
    if (bytes <= static_cast<double>(budget.bytes)) return;
    std::ostringstream size;
    size << std::setprecision(3) << params / 1e9 << " billion parameters";
    const std::string budget_text = " of fp32 weights alone, more than the memory budget " +
                                    model::format_bytes(budget.bytes) + " (" + budget.origin + ")";
    if constexpr (E::backbone::is_static)
      fail("--model scratch: ", program_.name, "'s static backbone ", c.describe(), " has about ", size.str(), ": ",
           model::format_bytes(static_cast<int64_t>(bytes)), budget_text,
           "; random weights are made in fp32 before a frozen backbone is stored. Start from a checkpoint of that "
           "shape instead (--model DIR: it loads tensor by tensor, frozen weights directly in --frozen_precision "
           "bf16 or int8)",
           cfg_.memory_budget.empty() ? "" : ", or give a larger --memory_budget");
    fail("the from-scratch model of --scratch_d_model ", cfg_.scratch_d_model, " --scratch_d_ff ", cfg_.scratch_d_ff,
         " --scratch_heads ", cfg_.scratch_heads, " --scratch_layers ", cfg_.scratch_layers, " has about ", size.str(),
         ": ", model::format_bytes(static_cast<int64_t>(bytes)), budget_text, "; choose smaller scratch_* settings",
         cfg_.memory_budget.empty() ? "" : " or a larger --memory_budget");
  }

  /// Settings of the recorded run, except those given on this command line. A run trained with
  /// another experiment is refused, naming the executable that trained it.
  void use_recorded_settings(const RunRecord& record, const fs::path& out) {
    const auto file = (out / "run.json").string();
    const auto compiled = E::spec().to_json();
    if (!record.experiment.is_null() && record.experiment != compiled)
      fail(file, ": this run was trained by ",
           record.program.empty() ? std::string("another executable") : record.program, " with the experiment ",
           json_excerpt(record.experiment, 400), "; ", program_.name, " is compiled for ", compiled.dump(),
           ". Evaluate and predict with ",
           record.program.empty() ? std::string("the executable that trained it") : record.program);
    // The run's family decides how its entities decode (flat ones never overlap) and which data it reads.
    if (!record.family.empty() && record.family != family_name(program_.family) && !program_.any_family)
      fail(file, ": this run was trained on ", record.family, " data",
           record.program.empty() ? std::string() : " by " + record.program, "; ", program_.name, " is compiled for ",
           family_name(program_.family), " data. Evaluate and predict with ",
           record.program.empty() ? "an executable for " + record.family + " data" : record.program);
    RunConfig merged = cfg_;
    CommandOptions unused;
    std::vector<std::string> unknown;
    if (record.settings.is_object()) {
      for (const auto& [key, value] : record.settings.items()) {
        // What trains and how the model is wired is the run's experiment, not a setting.
        if (is_compiled_key(key) || std::find(given_.begin(), given_.end(), key) != given_.end()) continue;
        const auto* o = lookup_option(key);
        if (!o || !o->setting) {
          unknown.push_back(key);
          continue;
        }
        // Where the run's folder is, whether to resume and how many threads this machine gives are
        // not the run's to record (OptionSpec::from_run).
        if (!o->from_run) continue;
        check_value(*o, value, file + ": settings: '" + key + "'");
        o->set(merged, unused, value);
      }
    }
    if (!unknown.empty()) {
      std::cerr << "note: " << file << " records settings this version does not have; they are not used:";
      for (const auto& k : unknown) std::cerr << ' ' << k;
      std::cerr << "\n";
    }
    cfg_ = merged;
    if (!record.family.empty()) cfg_.family = parse_family(record.family);
    use_family(file + ": family");
  }

  fs::path recorded_data_dir(const RunRecord& record, const fs::path& out) {
    if (on_command_line("dataset") && !on_command_line("data_dir")) {
      cfg_.data_dir.clear();  // --dataset names the data, not the recorded folder
      return resolve_data_dir(out, /*write=*/false);
    }
    if (!on_command_line("data_dir") && !record.data_dir.empty())
      return recognize::locate_recorded(out, record.data_dir, "", out / "run.json");
    return resolve_data_dir(out);
  }

  /// Settings whose change would make a resumed run a different run (checked against the checkpoint;
  /// the table's OptionSpec::checked_on_resume).
  nlohmann::json trajectory_settings() const { return resume_settings(cfg_); }

  Program program_;
  RunConfig cfg_;
  CommandOptions options_;  ///< the command's own options
  std::vector<std::string> given_;             ///< settings given on the command line (they override a run's record)
  std::map<std::string, std::string> origin_;  ///< where each non-default setting came from
  nlohmann::json compiled_;                    ///< what config files and the command line say of the structure
  train::dist::Group single_;
  core::ThreadSetting threads_;  ///< what use_threads() set for the command being run
  train::dist::Group* group_;
};

}  // namespace genner::app
