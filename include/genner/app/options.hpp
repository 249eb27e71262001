// genner/app/options.hpp: every option of a genner executable in one typed table — the run-time
// settings of a run (docs/METHOD.md §3-4: target type, lengths, beams, LR, batch, epochs, warm-up...),
// read from JSON config files and the command line and recorded in run.json, and the options of a
// single command (predict's --input, serve's --port, ...). Each entry names the commands that obey
// it, whether evaluate/predict/serve take the trained run's recorded value, and whether a resumed run
// must keep it; parsing, validation, per-command --help, the refusal of an option a command does
// not obey, config.json and the settings a resume checks are all derived from it.
//
// File format: a flat JSON object of settings. Precedence: defaults < the executable's defaults <
// config files in the order given < command line. What an executable is compiled for (PEFT mode,
// adapter size, prompt length, encoder MLP, head) is not a setting: compiled_keys() name it, and a
// program checks such names against its compiled experiment (genner/app/structure.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <genner/app/family.hpp>
#include <genner/app/serve_options.hpp>
#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data/target_type.hpp>
#include <genner/generate/defaults.hpp>
#include <genner/io/json_file.hpp>
#include <genner/model/precision.hpp>
#include <genner/recognize/recognizer.hpp>
#include <genner/t5/layers.hpp>
#include <genner/text/pretokenize.hpp>
#include <genner/train/metric.hpp>

namespace genner::app {

/// The commands of an executable, as bits of a set (OptionSpec::commands).
enum class Command : unsigned { train = 1, plan = 2, evaluate = 4, predict = 8, serve = 16, export_ = 32 };

/// Sets of commands.
namespace commands {
inline constexpr unsigned train = static_cast<unsigned>(Command::train);
inline constexpr unsigned plan = static_cast<unsigned>(Command::plan);
inline constexpr unsigned evaluate = static_cast<unsigned>(Command::evaluate);
inline constexpr unsigned predict = static_cast<unsigned>(Command::predict);
inline constexpr unsigned serve = static_cast<unsigned>(Command::serve);
inline constexpr unsigned export_ = static_cast<unsigned>(Command::export_);
inline constexpr unsigned training = train | plan;                       ///< the commands that build a run
inline constexpr unsigned restoring = evaluate | predict | serve;        ///< those that decode a trained run
inline constexpr unsigned all = training | restoring | export_;
}  // namespace commands

/// One command: its name, its arguments in the usage line and what it does.
struct CommandInfo {
  Command command;
  const char* name;
  const char* synopsis;
  const char* summary;
};

/// The commands, in the order --help lists them (train is the default).
[[nodiscard]] inline const std::vector<CommandInfo>& command_list() {
  static const std::vector<CommandInfo> list = {
      {Command::train, "train", "",
       "train on <data_dir>/train, select on dev, report test (the default command)"},
      {Command::plan, "plan", "",
       "resolve everything train would use (data, tokenizer, model, optimisation, decoding, steps per epoch and in "
       "all, memory) and print it as JSON on standard output, without training or creating anything"},
      {Command::evaluate, "evaluate", "--output_dir RUN",
       "score the run in --output_dir on a split: precision, recall and F1 on a 0-100 scale, overall and per type; "
       "flat data also gets a CoNLL file for conlleval"},
      {Command::predict, "predict", "--output_dir RUN --input FILE|-",
       "tag raw text with the run in --output_dir, one record per input line; \"begin\"/\"end\" count characters "
       "(code points, as Python and jq slice), \"byte_begin\"/\"byte_end\" bytes; throughput on standard error"},
      {Command::serve, "serve", "--output_dir RUN",
       "answer NER requests over HTTP on 127.0.0.1 with the run in --output_dir: POST /v1/recognize "
       "{\"text\": \"...\"} or {\"texts\": [...]} (predict's records out), GET /health, GET /metrics; concurrent "
       "requests are decoded in batches; refusals are JSON {\"error\": \"...\"}; SIGINT/SIGTERM answer what is in "
       "flight, then exit 0"},
      {Command::export_, "export", "--output_dir RUN --to DIR",
       "write the run in --output_dir for other tools: a Hugging Face folder (config.json, model.safetensors, "
       "spiece.model; LoRA factors merged) of the trained T5, or a PEFT LoRA folder (adapter_config.json, "
       "adapter_model.safetensors); a run whose adapters or soft prompt would be lost is refused. The NER head "
       "(encoder MLP, label rows) has no place in either and stays in best.safetensors"}};
  return list;
}

[[nodiscard]] inline const CommandInfo& command_info(Command c) {
  for (const auto& info : command_list())
    if (info.command == c) return info;
  fail("unknown command ", static_cast<unsigned>(c));
}

/// The command called `name`, or an error listing the commands.
[[nodiscard]] inline Command parse_command(const std::string& name) {
  std::string names;
  for (const auto& info : command_list()) {
    if (name == info.name) return info.command;
    names += (names.empty() ? "" : ", ") + std::string(info.name);
  }
  fail("unknown command '", name, "'; expected one of ", names, " (see --help)");
}

/// The names of the commands in `set`: "predict", "predict and serve", "evaluate, predict and serve".
[[nodiscard]] inline std::string command_names(unsigned set) {
  std::vector<std::string> names;
  for (const auto& info : command_list())
    if (set & static_cast<unsigned>(info.command)) names.emplace_back(info.name);
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out;
}

/// Every run-time setting, with the published defaults (docs/METHOD.md §4 "All:" row, CoNLL-2003).
/// Choices are held as the library's enums, parsed once by the option table.
struct RunConfig {
  // Data
  Family family = Family::flat;      ///< how the data reads and entities decode
  std::string dataset = "conll2003";
  std::string data_dir;              ///< empty: <data root>/<dataset>
  int64_t sample_size = 3000;        ///< dataset "sample": training sentences genner writes (dev and test: 2/15 of it)
  data::TargetType target_type = data::TargetType::word;
  bool train_on_dev = false;         ///< CoNLL-2003 trains on train+dev
  double dev_from_train = 0.0;       ///< GENIA: fraction of train carved out as dev
  int64_t max_words = 512;           ///< length guard: longer sentences are split where no entity crosses, else refused
  int64_t max_train_samples = 0;     ///< use only the first N training sentences; 0: all
  int64_t max_eval_samples = 0;      ///< use only the first N dev and test sentences; 0: all
  // Model
  std::string model = "t5-base";  ///< scratch | a name under the models root | a path (./dir, /dir)
  double mlp_dropout = 0.3;       ///< dropout inside the encoder MLP
  // From-scratch backbone (model "scratch" with a DynamicBackbone)
  int64_t scratch_d_model = 128;
  int64_t scratch_d_ff = 256;
  int64_t scratch_heads = 4;
  int64_t scratch_layers = 2;
  double scratch_dropout = 0.1;
  int64_t spm_vocab_size = 2000;
  // Decoding
  int64_t max_len = generate::kMaxLen;  ///< generate/defaults.hpp
  double max_len_a = generate::kMaxLenA;
  int64_t beams = 1;
  double length_penalty = 1.0;
  bool constrained = false;        ///< mask illegal next indices (beyond the published code)
  bool contiguous = false;         ///< with constrained: one fragment per entity (flat and nested data)
  train::MetricRules metric = train::MetricRules::pointer;  ///< train/metric.hpp
  // Optimisation
  double lr = 1e-5;
  int64_t batch_size = 16;
  int64_t epochs = 30;
  int64_t max_steps = 0;  ///< 0: epochs decide
  int64_t patience = 0;   ///< evaluations without a better dev F1 before stopping; 0: never
  double warmup = 0.01;   ///< fraction of the total steps
  double weight_decay = 0.01;
  double clip_value = 0.0;  ///< 0: off (PEFT runs used 0.1)
  double clip_norm = 0.0;   ///< 0: off
  double truncate_prob = 0.05;
  // Run
  model::Precision precision = model::Precision::fp32;  ///< bf16: mixed-precision training, bf16 inference; int8: CPU inference
  t5::WeightStorage frozen_precision = t5::WeightStorage::fp32;  ///< how a frozen backbone's projections are stored
  bool gradient_checkpointing = false;    ///< recompute each block's activations in backward
  std::string memory_budget;              ///< e.g. 20GB; empty: the machine's memory
  int64_t threads = 0;  ///< threads of each pool (genner/core/threading.hpp); 0: the environment's, else every core
  int64_t seed = 42;
  std::string output_dir = "runs";
  int64_t eval_every = 0;  ///< steps; 0: once per epoch (a checkpoint is written at every evaluation)
  int64_t logging_steps = 0;  ///< a training-loss line in log.jsonl/log.csv every N steps; 0: with evaluations only
  bool resume = true;
  std::string description;
  // Data parallelism (genner/train/distributed.hpp)
  int64_t nproc = 1;  ///< local ranks the driver starts itself (RANK/WORLD_SIZE in the environment also make a rank)
  int64_t accumulate = 1;        ///< micro-batches per batch and rank; one optimizer step per batch
  std::string backend = "auto";  ///< auto | gloo | nccl (resolved against the build and the device: dist::parse_backend)
  double dist_timeout = 300;     ///< seconds a rank waits for the store or a peer before failing
};

/// The options of single commands: given on the command line only, never recorded with a run.
/// Defaults are the library's own (recognize::RecognizerOptions, ServeOptions).
struct CommandOptions {
  // predict
  std::string input;        ///< one text per line; - reads standard input
  std::string predictions;  ///< empty or -: standard output
  std::string format;       ///< predict: jsonl | conll | brat | html; export: hf | peft; empty: chosen by the command
  double threshold = recognize::RecognizerOptions{}.threshold;
  // predict and serve: how text becomes sources
  bool pretokenized = text::PretokenizeOptions{}.pretokenized;
  bool split_sentences = text::PretokenizeOptions{}.split_sentences;
  int64_t max_source_pieces = recognize::RecognizerOptions{}.max_source_pieces;
  // evaluate
  std::string split = "test";  ///< dev | test
  std::string output;          ///< metrics JSON file; empty: none
  // export
  std::string to;  ///< the folder to write (new, or empty)
  // serve
  int64_t port = ServeOptions{}.port;
  int64_t max_batch = static_cast<int64_t>(recognize::BatcherOptions{}.max_batch);
  double max_wait_ms = static_cast<double>(recognize::BatcherOptions{}.max_wait.count()) / 1000.0;
  int64_t max_queue = static_cast<int64_t>(recognize::BatcherOptions{}.max_queue);
  int64_t max_texts = static_cast<int64_t>(ServeOptions{}.max_texts);
  int64_t max_body_bytes = static_cast<int64_t>(ServeOptions{}.max_body_bytes);
  int64_t timeout_ms = recognize::BatcherOptions{}.timeout.count();
  int64_t http_threads = static_cast<int64_t>(ServeOptions{}.http_threads);
  std::string long_texts = ServeOptions{}.split_long_texts ? "split" : "refuse";  ///< refuse | split
};

/// The server's settings from serve's options (the option table checked each on its own).
inline ServeOptions serve_options(const CommandOptions& o) {
  ServeOptions s;
  s.port = static_cast<int>(o.port);
  s.batching.max_batch = static_cast<std::size_t>(o.max_batch);
  s.batching.max_wait = std::chrono::microseconds(static_cast<long long>(std::llround(o.max_wait_ms * 1000.0)));
  s.batching.max_queue = static_cast<std::size_t>(o.max_queue);
  s.batching.timeout = std::chrono::milliseconds(o.timeout_ms);
  s.max_texts = static_cast<std::size_t>(o.max_texts);
  s.max_body_bytes = static_cast<std::size_t>(o.max_body_bytes);
  s.http_threads = static_cast<std::size_t>(o.http_threads);
  s.split_long_texts = o.long_texts == "split";
  s.check();
  return s;
}

/// One option of the table: its key, kind, range, help, the commands that obey it, and how to read
/// and write it in RunConfig (a setting) or CommandOptions (a command's own option).
struct OptionSpec {
  enum class Kind { integer, number, boolean, string, choice };
  std::string key;
  Kind kind;
  std::string section;
  std::string help;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false;  ///< range excludes min (e.g. lr > 0)
  std::vector<std::string> choices;
  unsigned commands = commands::training;  ///< the commands that obey it
  bool setting = true;          ///< a setting of the run (RunConfig, config files, run.json); else a command's own
  bool from_run = true;         ///< evaluate, predict, serve and export take the run's recorded value unless given
  bool checked_on_resume = true;  ///< a resumed run must keep the checkpoint's value
  std::function<nlohmann::json(const RunConfig&, const CommandOptions&)> get;
  std::function<void(RunConfig&, CommandOptions&, const nlohmann::json&)> set;

  [[nodiscard]] bool obeyed_by(Command c) const { return (commands & static_cast<unsigned>(c)) != 0; }

  /// Also obeyed by `more` (a setting evaluate, predict or serve applies to a trained run).
  [[nodiscard]] OptionSpec also(unsigned more) && {
    commands |= more;
    return std::move(*this);
  }
  /// The run's recorded value is not restored: it belongs to this process (a folder, threads).
  [[nodiscard]] OptionSpec not_from_run() && {
    from_run = false;
    return std::move(*this);
  }
  /// A resumed run may change it: it changes how the run is carried out, not what it computes.
  [[nodiscard]] OptionSpec free_on_resume() && {
    checked_on_resume = false;
    return std::move(*this);
  }

  /// The value's kind as --help shows it.
  [[nodiscard]] const char* metavar() const {
    switch (kind) {
      case Kind::integer: return "INT";
      case Kind::number: return "NUM";
      case Kind::boolean: return "BOOL";
      default: return "STR";
    }
  }

  [[nodiscard]] std::string expected() const {
    std::ostringstream out;
    switch (kind) {
      case Kind::integer: out << "an integer"; break;
      case Kind::number: out << "a number"; break;
      case Kind::boolean: return "true or false";
      case Kind::string: return "a string";
      case Kind::choice: {
        out << "one of";
        for (const auto& c : choices) out << " '" << c << "'";
        return out.str();
      }
    }
    const bool lo = std::isfinite(min), hi = std::isfinite(max);
    if (lo && hi)
      out << " in " << (min_open ? "(" : "[") << min << ", " << max << "]";
    else if (lo)
      out << (min_open ? " > " : " >= ") << min;
    else if (hi)
      out << " <= " << max;
    return out.str();
  }
};

namespace detail {

/// The part of the option values a member pointer reads: RunConfig or CommandOptions.
inline RunConfig& part(RunConfig& c, CommandOptions&, RunConfig*) { return c; }
inline CommandOptions& part(RunConfig&, CommandOptions& o, CommandOptions*) { return o; }
inline const RunConfig& part(const RunConfig& c, const CommandOptions&, RunConfig*) { return c; }
inline const CommandOptions& part(const RunConfig&, const CommandOptions& o, CommandOptions*) { return o; }

template <typename Owner, typename T, typename ToJson, typename FromJson>
OptionSpec make_option(std::string key, T Owner::*member, OptionSpec::Kind kind, std::string section, std::string help,
                       ToJson to_json, FromJson from_json) {
  OptionSpec o;
  o.key = std::move(key);
  o.kind = kind;
  o.section = std::move(section);
  o.help = std::move(help);
  o.setting = std::is_same_v<Owner, RunConfig>;
  o.get = [member, to_json](const RunConfig& c, const CommandOptions& f) {
    return to_json(part(c, f, static_cast<Owner*>(nullptr)).*member);
  };
  o.set = [member, from_json](RunConfig& c, CommandOptions& f, const nlohmann::json& v) {
    part(c, f, static_cast<Owner*>(nullptr)).*member = from_json(v);
  };
  return o;
}
template <typename Owner, typename T>
OptionSpec plain_option(std::string key, T Owner::*member, OptionSpec::Kind kind, std::string section,
                        std::string help) {
  return make_option(
      std::move(key), member, kind, std::move(section), std::move(help), [](const T& v) { return nlohmann::json(v); },
      [](const nlohmann::json& v) { return v.get<T>(); });
}
template <typename Owner>
OptionSpec int_opt(std::string key, int64_t Owner::*m, std::string section, double lo, double hi, std::string help) {
  auto o = plain_option(std::move(key), m, OptionSpec::Kind::integer, std::move(section), std::move(help));
  o.min = lo;
  o.max = hi;
  return o;
}
template <typename Owner>
OptionSpec num_opt(std::string key, double Owner::*m, std::string section, double lo, double hi, bool open,
                   std::string help) {
  auto o = plain_option(std::move(key), m, OptionSpec::Kind::number, std::move(section), std::move(help));
  o.min = lo;
  o.max = hi;
  o.min_open = open;
  return o;
}
template <typename Owner>
OptionSpec bool_opt(std::string key, bool Owner::*m, std::string section, std::string help) {
  return plain_option(std::move(key), m, OptionSpec::Kind::boolean, std::move(section), std::move(help));
}
template <typename Owner>
OptionSpec str_opt(std::string key, std::string Owner::*m, std::string section, std::string help) {
  return plain_option(std::move(key), m, OptionSpec::Kind::string, std::move(section), std::move(help));
}
template <typename Owner>
OptionSpec choice_opt(std::string key, std::string Owner::*m, std::string section, std::vector<std::string> choices,
                      std::string help) {
  auto o = plain_option(std::move(key), m, OptionSpec::Kind::choice, std::move(section), std::move(help));
  o.choices = std::move(choices);
  return o;
}
/// A choice held as an enum whose values are 0, 1, ... in the order of `names`.
template <typename Enum>
OptionSpec enum_opt(std::string key, Enum RunConfig::*m, std::string section, std::vector<std::string> names,
                    std::string help) {
  auto o = make_option(
      std::move(key), m, OptionSpec::Kind::choice, std::move(section), std::move(help),
      [names](Enum v) { return nlohmann::json(names.at(static_cast<std::size_t>(v))); },
      [names](const nlohmann::json& v) {
        const auto it = std::find(names.begin(), names.end(), v.get<std::string>());
        return static_cast<Enum>(it - names.begin());  // the table checked the name first
      });
  o.choices = std::move(names);
  return o;
}
/// The names of an enum's values 0..n-1 as `name` spells them.
template <typename Enum, typename Name>
std::vector<std::string> enum_names(int n, Name name) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.emplace_back(name(static_cast<Enum>(i)));
  return out;
}

inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

inline constexpr double kInf = std::numeric_limits<double>::infinity();

/// Settings of the data a run reads.
inline std::vector<OptionSpec> data_options() {
  return {
      enum_opt("family", &RunConfig::family, "data", enum_names<Family>(3, data::family_name),
               "the data set's family: flat (CoNLL, OntoNotes, WNUT), nested (ACE, GENIA) or discontinuous (CADEC, "
               "ShARe); it decides the data's reader and that flat entities never overlap. The family programs "
               "(flat_ner, ...) serve their own; the tuning-mode programs (ner_lora, ...) serve any"),
      str_opt("dataset", &RunConfig::dataset, "data",
              "data set name (conll2003, ontonotes, ace04, ace05, genia, cadec, share13, share14, wnut17)")
          .also(commands::evaluate),
      str_opt("data_dir", &RunConfig::data_dir, "data",
              "folder holding the data set's files (empty: <data root>/<dataset>)")
          .also(commands::evaluate)
          .free_on_resume(),
      int_opt("sample_size", &RunConfig::sample_size, "data", 50, 1000000,
              "dataset 'sample': training sentences genner writes itself (dev and test get 2/15 of it each)"),
      enum_opt("target_type", &RunConfig::target_type, "data",
               {std::begin(data::kTargetTypeNames), std::end(data::kTargetTypeNames)},
               "pointer scheme of the target sequence (docs/METHOD.md §1)"),
      bool_opt("train_on_dev", &RunConfig::train_on_dev, "data",
               "train on train+dev (the published CoNLL-2003 setting)"),
      int_opt("max_words", &RunConfig::max_words, "data", 0, 1000000,
              "length guard: sentences longer than this are split where no entity crosses, else refused with "
              "file:line; 0: off (memory then grows with the square of the longest sentence)")
          .also(commands::evaluate),
      num_opt("dev_from_train", &RunConfig::dev_from_train, "data", 0, 0.5, false,
              "fraction of train carved out as dev (GENIA); 0: use the dev file"),
      int_opt("max_train_samples", &RunConfig::max_train_samples, "data", 0, 9.0e15,
              "train on the first N training sentences only (quick runs); 0: all"),
      int_opt("max_eval_samples", &RunConfig::max_eval_samples, "data", 0, 9.0e15,
              "evaluate on the first N dev and test sentences only (quick runs); 0: all")
          .also(commands::evaluate),
  };
}

/// Settings of the backbone and of a backbone trained from scratch.
inline std::vector<OptionSpec> model_options() {
  return {
      str_opt(
          "model", &RunConfig::model, "model",
          "the backbone to start from: 'scratch' (random, shaped by the scratch_* settings or the compiled preset), a "
          "name (a folder of that name in the current directory first, as Hugging Face looks, then under the models "
          "root $GENNER_MODELS, default ../shared/models), e.g. t5-base or google/flan-t5-base, or a path starting "
          "with /, ./ or ../; the folder holds config.json, model.safetensors and spiece.model"),
      num_opt("mlp_dropout", &RunConfig::mlp_dropout, "model", 0, 1, false, "dropout inside the encoder MLP"),
      int_opt("scratch_d_model", &RunConfig::scratch_d_model, "scratch model", 8, 65536, "from scratch: hidden size"),
      int_opt("scratch_d_ff", &RunConfig::scratch_d_ff, "scratch model", 8, 262144, "from scratch: feed-forward size"),
      int_opt("scratch_heads", &RunConfig::scratch_heads, "scratch model", 1, 256,
              "from scratch: attention heads (must divide scratch_d_model)"),
      int_opt("scratch_layers", &RunConfig::scratch_layers, "scratch model", 1, 64,
              "from scratch: layers of the encoder and of the decoder"),
      num_opt("scratch_dropout", &RunConfig::scratch_dropout, "scratch model", 0, 1, false,
              "from scratch: dropout rate"),
      int_opt("spm_vocab_size", &RunConfig::spm_vocab_size, "scratch model", 100, 1000000,
              "from scratch: SentencePiece vocabulary size (an upper bound on small corpora)"),
  };
}

/// Decoding settings: a trained run's are the defaults of evaluate, predict and serve.
inline std::vector<OptionSpec> decoding_options() {
  return {
      int_opt("max_len", &RunConfig::max_len, "decoding", 1, 4096, "constant part of the maximum target length")
          .also(commands::restoring),
      num_opt("max_len_a", &RunConfig::max_len_a, "decoding", 0, 16, false,
              "maximum target length grows by this times the source length")
          .also(commands::restoring),
      int_opt("beams", &RunConfig::beams, "decoding", 1, 64, "beam size (1: greedy)").also(commands::restoring),
      num_opt("length_penalty", &RunConfig::length_penalty, "decoding", -kInf, kInf, false,
              "beam score = log-prob / length^penalty")
          .also(commands::restoring),
      bool_opt("constrained", &RunConfig::constrained, "decoding",
               "mask next indices that would make an invalid entity")
          .also(commands::restoring),
      bool_opt("contiguous", &RunConfig::contiguous, "decoding",
               "with constrained: entities are single fragments (flat and nested data); refused without constrained")
          .also(commands::restoring),
      enum_opt(
          "metric", &RunConfig::metric, "decoding", enum_names<train::MetricRules>(2, train::metric_rules_name),
          "F1 rules: pointer (the published figures' rules, on output indices) or word (entities as word fragments)")
          .also(commands::evaluate),
  };
}

/// Settings of the optimisation.
inline std::vector<OptionSpec> optimisation_options() {
  return {
      num_opt("lr", &RunConfig::lr, "optimisation", 0, 1, true,
              "peak learning rate of the backbone (also --learning_rate)"),
      int_opt("batch_size", &RunConfig::batch_size, "optimisation", 1, 65536,
              "sentences per optimizer step (all ranks and micro-batches together; batches are cut from "
              "length-sorted buckets); evaluate and predict decode this many at a time")
          .also(commands::restoring),
      int_opt("epochs", &RunConfig::epochs, "optimisation", 1, 10000,
              "passes over the training data (also --num_train_epochs)"),
      int_opt("max_steps", &RunConfig::max_steps, "optimisation", 0, 9.0e15,
              "stop after this many optimizer steps; 0: epochs decide"),
      int_opt("patience", &RunConfig::patience, "optimisation", 0, 1000000,
              "stop after this many evaluations without a better dev F1; 0: never")
          .free_on_resume(),
      num_opt("warmup", &RunConfig::warmup, "optimisation", 0, 1, false,
              "linear warm-up as a fraction of all steps, then linear decay (also --warmup_ratio)"),
      num_opt("weight_decay", &RunConfig::weight_decay, "optimisation", 0, 1, false,
              "AdamW weight decay (layer norms get none)"),
      num_opt("clip_value", &RunConfig::clip_value, "optimisation", 0, kInf, false,
              "clip each gradient element to [-v, v]; 0: off"),
      num_opt("clip_norm", &RunConfig::clip_norm, "optimisation", 0, kInf, false,
              "clip the global gradient norm; 0: off (also --max_grad_norm)"),
      num_opt("truncate_prob", &RunConfig::truncate_prob, "optimisation", 0, 1, false,
              "probability per step of cutting the decoder input at a random length"),
  };
}

/// Settings of how a run is carried out and recorded.
inline std::vector<OptionSpec> run_options() {
  return {
      enum_opt("precision", &RunConfig::precision, "run", enum_names<model::Precision>(3, model::precision_name),
               "fp32; bf16: train in mixed precision (fp32 weights, optimizer state and final scores), "
               "evaluate/predict with bf16 weights; int8: evaluate/predict with int8 projections (CPU) "
               "(genner/model/precision.hpp)")
          .also(commands::restoring),
      enum_opt("frozen_precision", &RunConfig::frozen_precision, "run",
               enum_names<t5::WeightStorage>(3, t5::weight_storage_name),
               "storage of the frozen backbone's projections in parameter-efficient runs: bf16, or int8 with a "
               "scale per output row, widened on the fly (trainable tensors, gradients and AdamW state stay "
               "fp32); refused where nothing is frozen"),
      bool_opt("gradient_checkpointing", &RunConfig::gradient_checkpointing, "run",
               "keep only each T5 block's inputs for backward and recompute the rest there (same gradients, less "
               "memory, about a third more compute)"),
      str_opt("memory_budget", &RunConfig::memory_budget, "run",
              "refuse a training run whose memory plan (plan prints it) needs more than this on one device, e.g. "
              "20GB or 512MiB; empty: the machine's memory")
          .free_on_resume(),
      int_opt("threads", &RunConfig::threads, "run", 0, 4096,
              "threads of this process: OpenBLAS runs fp32 products on this many, and bf16 and int8 runs give "
              "as many OpenMP threads to oneDNN (fp32 keeps one); 0: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS when "
              "set, else every available core")
          .also(commands::restoring)
          .not_from_run()
          .free_on_resume(),
      int_opt("seed", &RunConfig::seed, "run", 0, 9.0e15, "random seed (sampler, dropout, initialisation)"),
      str_opt("output_dir", &RunConfig::output_dir, "run",
              "the run's folder: train writes logs, plots, checkpoints and best weights there; evaluate, predict, "
              "serve and export read the trained run from it")
          .also(commands::all)
          .not_from_run()
          .free_on_resume(),
      int_opt("eval_every", &RunConfig::eval_every, "run", 0, 9.0e15,
              "evaluate (and checkpoint) every N steps; 0: once per epoch (also --eval_steps)"),
      int_opt("logging_steps", &RunConfig::logging_steps, "run", 0, 9.0e15,
              "write a training-loss line (mean loss of the last N steps, learning rate) to log.jsonl and "
              "log.csv every N steps; 0: only the lines of the evaluations")
          .free_on_resume(),
      bool_opt("resume", &RunConfig::resume, "run", "resume from output_dir's checkpoint when there is one")
          .not_from_run()
          .free_on_resume(),
      str_opt("description", &RunConfig::description, "run", "free text recorded with the run").free_on_resume(),
  };
}

/// Settings of data parallelism (genner/train/distributed.hpp).
inline std::vector<OptionSpec> parallel_options() {
  return {
      int_opt("nproc", &RunConfig::nproc, "parallel", 1, 1024,
              "data-parallel ranks to start on this machine (batch_size is split between them)"),
      int_opt("accumulate", &RunConfig::accumulate, "parallel", 1, 65536,
              "micro-batches per batch and rank (gradient accumulation; batch_size stays the update's batch) (also "
              "--gradient_accumulation_steps)"),
      choice_opt("backend", &RunConfig::backend, "parallel", {"auto", "gloo", "nccl"},
                 "c10d backend: gloo (CPU), nccl (CUDA builds only); auto: nccl when available with a GPU, else "
                 "gloo")
          .free_on_resume(),
      num_opt("dist_timeout", &RunConfig::dist_timeout, "parallel", 1, 86400, false,
              "seconds a rank waits for the store or a peer before failing")
          .free_on_resume(),
  };
}

/// An option of single commands (CommandOptions): obeyed by `by` only, never recorded.
inline OptionSpec command_option(OptionSpec o, unsigned by) {
  o.commands = by;
  o.from_run = false;
  o.checked_on_resume = false;
  return o;
}

/// The options of evaluate, predict and export.
inline std::vector<OptionSpec> output_options() {
  using C = CommandOptions;
  return {
      command_option(choice_opt("split", &C::split, "evaluate", {"dev", "test"}, "the split to score"),
                     commands::evaluate),
      command_option(str_opt("output", &C::output, "evaluate",
                             "also write the scores as JSON (percent) to this file; empty: none"),
                     commands::evaluate),
      command_option(str_opt("input", &C::input, "predict", "the text to tag, one text per line; - reads standard input"),
                     commands::predict),
      command_option(str_opt("predictions", &C::predictions, "predict",
                             "the file the records go to; empty or -: standard output"),
                     commands::predict),
      command_option(num_opt("threshold", &C::threshold, "predict", 0, 1, false,
                             "keep entities of probability exp(score) >= P; 0: all"),
                     commands::predict),
      command_option(str_opt("format", &C::format, "predict and export",
                             "predict: jsonl | conll | brat | html (empty: from the extension of --predictions: "
                             ".jsonl .conll .ann .html, else jsonl); export: hf (a Hugging Face folder) | peft (a "
                             "PEFT LoRA folder) (empty: peft for a LoRA run, else hf)"),
                     commands::predict | commands::export_),
      command_option(str_opt("to", &C::to, "export", "the folder to write (new, or empty)"), commands::export_),
  };
}

/// The options of predict and serve that say how text becomes sources.
inline std::vector<OptionSpec> text_options() {
  using C = CommandOptions;
  const unsigned by = commands::predict | commands::serve;
  return {
      command_option(bool_opt("pretokenized", &C::pretokenized, "text",
                              "the text is tokenized already: words are its whitespace-separated chunks"),
                     by),
      command_option(bool_opt("split_sentences", &C::split_sentences, "text",
                              "split each text into sentences and decode each on its own"),
                     by),
      command_option(int_opt("max_source_pieces", &C::max_source_pieces, "text", 2, 1000000,
                             "the longest source in SentencePiece pieces; longer sentences are decoded in windows "
                             "(serve: see --long_texts)"),
                     by),
  };
}

/// The options of serve.
inline std::vector<OptionSpec> serve_options() {
  using C = CommandOptions;
  auto serve = [](OptionSpec o) { return command_option(std::move(o), commands::serve); };
  return {
      serve(int_opt("port", &C::port, "serve", 0, 65535, "TCP port on 127.0.0.1; 0: any free port (printed)")),
      serve(int_opt("max_batch", &C::max_batch, "serve", 1, kInf,
                    "texts decoded together; 1 decodes each request alone")),
      serve(num_opt("max_wait_ms", &C::max_wait_ms, "serve", 0, 60000, false,
                    "the longest a request waits for others to join its batch (milliseconds, fractions allowed)")),
      serve(int_opt("max_queue", &C::max_queue, "serve", 1, kInf,
                    "texts waiting at most; beyond it 503 with Retry-After")),
      serve(int_opt("max_texts", &C::max_texts, "serve", 1, kInf, "texts per request; over it: 413")),
      serve(int_opt("max_body_bytes", &C::max_body_bytes, "serve", 2, kInf, "request body size; over it: 413")),
      serve(int_opt("timeout_ms", &C::timeout_ms, "serve", 1, kInf, "per request, arrival to answer; then 504")),
      serve(choice_opt("long_texts", &C::long_texts, "serve", {"refuse", "split"},
                       "a text over --max_source_pieces gets 413 (refuse), or is decoded in windows as predict "
                       "does (split)")),
      serve(int_opt("http_threads", &C::http_threads, "serve", 1, kInf, "connections served at once")),
  };
}

}  // namespace detail

/// The option table: the single source of truth for keys, kinds, ranges, help, the commands that
/// obey each option and what a run records of it.
[[nodiscard]] inline const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = [] {
    std::vector<OptionSpec> all;
    for (auto part : {detail::data_options(), detail::model_options(), detail::decoding_options(),
                      detail::optimisation_options(), detail::run_options(), detail::parallel_options(),
                      detail::output_options(), detail::text_options(), detail::serve_options()})
      for (auto& o : part) all.push_back(std::move(o));
    return all;
  }();
  return table;
}

/// Names Hugging Face users know, each standing for a setting of the table; one spelling per run
/// (both is an error). Recorded and reported under the table's own name.
[[nodiscard]] inline const std::map<std::string, std::string>& option_aliases() {
  static const std::map<std::string, std::string> aliases = {{"learning_rate", "lr"},
                                                             {"num_train_epochs", "epochs"},
                                                             {"gradient_accumulation_steps", "accumulate"},
                                                             {"max_grad_norm", "clip_norm"},
                                                             {"warmup_ratio", "warmup"},
                                                             {"eval_steps", "eval_every"}};
  return aliases;
}

/// Names of other tools' settings that genner refuses with the reason.
[[nodiscard]] inline const std::map<std::string, std::string>& refused_names() {
  static const std::map<std::string, std::string> refused = {
      {"save_total_limit",
       "genner keeps one resumable checkpoint (<output_dir>/checkpoint, replaced at every evaluation) and the best "
       "weights (best.safetensors); there are no numbered checkpoints to limit"},
      {"per_device_train_batch_size",
       "use --batch_size: sentences per optimizer step over all ranks (each of --nproc ranks takes its share)"}};
  return refused;
}

/// Names that are not settings: what trains, adapters, soft prompt, encoder MLP and head are
/// compiled into each executable (its experiment alias, which run.json records). Config files and
/// the command line may still name them; parse_command_line() collects them in
/// CommandLine::compiled, for the program to check against what it is compiled for.
[[nodiscard]] inline const std::vector<std::string>& compiled_keys() {
  static const std::vector<std::string> k = {"peft", "adapter_size", "prompt_length", "encoder_mlp", "avg_feature"};
  return k;
}
[[nodiscard]] inline bool is_compiled_key(const std::string& key) {
  return std::find(compiled_keys().begin(), compiled_keys().end(), key) != compiled_keys().end();
}

/// The table's name for `key`: an alias resolved; a refused name is an error giving the reason.
[[nodiscard]] inline std::string canonical_key(const std::string& key, const std::string& where) {
  if (const auto it = option_aliases().find(key); it != option_aliases().end()) return it->second;
  if (const auto it = refused_names().find(key); it != refused_names().end())
    fail(where, ": '", key, "' is not a genner setting: ", it->second);
  return key;
}

/// The spec for `key`, or null when the table has no such option.
[[nodiscard]] inline const OptionSpec* lookup_option(const std::string& key) {
  for (const auto& o : option_table())
    if (o.key == key) return &o;
  return nullptr;
}

/// The spec for `key`, or an error naming `where` with a suggestion of the closest key.
[[nodiscard]] inline const OptionSpec& find_option(const std::string& key, const std::string& where) {
  if (const auto* o = lookup_option(key)) return *o;
  const auto& table = option_table();
  const OptionSpec* best = nullptr;
  std::size_t best_d = 3;
  for (const auto& o : table)
    if (auto d = detail::edit_distance(key, o.key); d < best_d) best = &o, best_d = d;
  fail(where, ": unknown setting '", key, "'", best ? "; did you mean '" + best->key + "'?" : std::string(),
       " (see --help for the list)");
}

/// The options `command` obeys, as "--a, --b and --c".
[[nodiscard]] inline std::string obeyed_options(Command command) {
  std::vector<std::string> keys;
  for (const auto& o : option_table())
    if (o.obeyed_by(command)) keys.push_back("--" + o.key);
  std::string out;
  for (std::size_t i = 0; i < keys.size(); ++i) out += (i == 0 ? "" : i + 1 == keys.size() ? " and " : ", ") + keys[i];
  return out;
}

/// Refuses an option `command` does not obey, saying which commands do.
inline void check_obeyed(const OptionSpec& o, Command command) {
  if (o.obeyed_by(command)) return;
  const std::string name = command_info(command).name;
  if (!o.setting)
    fail("--", o.key, " belongs to the ", command_names(o.commands),
         std::has_single_bit(o.commands) ? " command" : " commands", ", not to ", name, " (see ", name, " --help)");
  fail("--", o.key, " does not apply to ", name, ": it restores the trained run in --output_dir with the ",
       "settings recorded in its run.json, and ", o.key, " would change nothing there; ", name, " obeys only ",
       obeyed_options(command));
}

/// Checks a JSON value against a spec; `where` names the file or option for the message.
inline void check_value(const OptionSpec& o, const nlohmann::json& v, const std::string& where) {
  bool ok = false;
  switch (o.kind) {
    case OptionSpec::Kind::integer: ok = v.is_number_integer(); break;
    case OptionSpec::Kind::number: ok = v.is_number(); break;
    case OptionSpec::Kind::boolean: ok = v.is_boolean(); break;
    case OptionSpec::Kind::string: ok = v.is_string(); break;
    case OptionSpec::Kind::choice:
      ok = v.is_string() && std::find(o.choices.begin(), o.choices.end(), v.get<std::string>()) != o.choices.end();
      break;
  }
  if (ok && v.is_number()) {
    const double x = v.get<double>();
    ok = std::isfinite(x) && (o.min_open ? x > o.min : x >= o.min) && x <= o.max;
  }
  GENNER_CHECK(ok, where, ": expected ", o.expected(), ", found ", v.type_name(), " ", json_excerpt(v));
}

namespace detail {
/// Command-line text as a number of the spec's kind, or null when it does not read as one.
inline nlohmann::json parse_number(const OptionSpec& o, const std::string& text) {
  if (o.kind == OptionSpec::Kind::integer) {
    int64_t x = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
    return ec == std::errc() && end == text.data() + text.size() ? nlohmann::json(x) : nlohmann::json();
  }
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() ? nlohmann::json(x) : nlohmann::json();
}
}  // namespace detail

/// Converts command-line text to the JSON value the spec wants (errors name the option).
[[nodiscard]] inline nlohmann::json parse_value(const OptionSpec& o, const std::string& text,
                                                const std::string& where) {
  nlohmann::json v;
  switch (o.kind) {
    case OptionSpec::Kind::integer:
    case OptionSpec::Kind::number:
      v = detail::parse_number(o, text);
      GENNER_CHECK(!v.is_null(), where, ": expected ", o.expected(), ", found '", text, "'");
      break;
    case OptionSpec::Kind::boolean:
      if (text == "true" || text == "1" || text == "yes" || text == "on")
        v = true;
      else if (text == "false" || text == "0" || text == "no" || text == "off")
        v = false;
      else
        fail(where, ": expected true or false, found '", text, "'");
      break;
    default:
      core::check_utf8(text, where);  // settings are recorded as JSON, which holds only UTF-8
      v = text;
  }
  check_value(o, v, where);
  return v;
}

namespace detail {
/// Applies a JSON object of settings; `origin` records where each key came from. Options of single
/// commands are not settings and are refused.
inline void apply_object(RunConfig& config, const nlohmann::json& object, const std::string& where,
                         std::map<std::string, std::string>* origin = nullptr) {
  GENNER_CHECK(object.is_object(), where, ": expected a JSON object of settings, found ", object.type_name());
  CommandOptions unused;
  for (const auto& [key, value] : object.items()) {
    GENNER_CHECK(key != "by_model", where,
                 ": 'by_model' sections are not read: what trains (PEFT mode, adapter "
                 "size, prompt) is compiled into each executable, and the PEFT runs' optimisation settings are in "
                 "configs/peft.json; remove the section and pick the executable of the experiment (see --help)");
    const auto name = canonical_key(key, where);
    GENNER_CHECK(name == key || !object.contains(name), where, ": '", key, "' and '", name,
                 "' are one setting; give one");
    const auto& o = find_option(name, where);
    GENNER_CHECK(o.setting, where, ": '", key, "' is an option of the ", command_names(o.commands),
                 " command line, not a setting of a run; give it as --", key);
    check_value(o, value, where + ": '" + key + "'");
    o.set(config, unused, value);
    if (origin) (*origin)[name] = where;
  }
}
}  // namespace detail

/// A parsed config file (already validated).
struct ConfigFile {
  std::filesystem::path path;
  nlohmann::json settings = nlohmann::json::object();
  nlohmann::json compiled = nlohmann::json::object();  ///< compiled_keys() the file names, taken out of settings
};

/// Validates a config file's settings: unknown keys, wrong kinds and ranges are errors naming the
/// file (or whatever `file.path` names) and the key.
[[nodiscard]] inline ConfigFile check_config_file(ConfigFile file) {
  GENNER_CHECK(file.settings.is_object(), file.path.string(), ": expected a JSON object of settings, found ",
               file.settings.type_name());
  for (const auto& key : compiled_keys())
    if (file.settings.contains(key)) {
      file.compiled[key] = file.settings[key];
      file.settings.erase(key);
    }
  RunConfig scratch;
  detail::apply_object(scratch, file.settings, file.path.string());
  return file;
}

/// Reads and validates a config file (check_config_file).
[[nodiscard]] inline ConfigFile read_config_file(const std::filesystem::path& path) {
  return check_config_file({path, io::read_json_file(path, "config file not found or unreadable")});
}

/// Applies a config file's settings.
inline void apply_config_file(RunConfig& config, const ConfigFile& file,
                              std::map<std::string, std::string>* origin = nullptr) {
  detail::apply_object(config, file.settings, file.path.string(), origin);
}

/// All settings as a JSON object (recorded next to the run's logs and in run.json).
[[nodiscard]] inline nlohmann::json to_json(const RunConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  const CommandOptions none;
  for (const auto& o : option_table())
    if (o.setting) out[o.key] = o.get(config, none);
  return out;
}

/// The settings a resumed run must keep, as the checkpoint records them.
[[nodiscard]] inline nlohmann::json resume_settings(const RunConfig& config) {
  auto out = to_json(config);
  for (const auto& o : option_table())
    if (o.setting && !o.checked_on_resume) out.erase(o.key);
  return out;
}

/// --help text of `command` generated from the table: every option it obeys with its kind, default
/// and explanation. `defaults`: what the program uses when the command line sets nothing (its own
/// defaults and config files applied); `usage`: start with a usage line (off when the caller printed one).
[[nodiscard]] inline std::string help_text(const std::string& program, const RunConfig& defaults = {},
                                           bool usage = true, Command command = Command::train) {
  const bool training = (static_cast<unsigned>(command) & commands::training) != 0;
  const std::string name = command_info(command).name;
  std::ostringstream out;
  if (usage)
    out << "usage: " << program << (training ? " [--config FILE]" : " " + name) << " [--key value | --key=value]...\n\n";
  if (training)
    out << "Settings come from defaults, then the config files (--config, in the order given; without\n"
        << "one, the executable's own), then the command line. Booleans take true or false (a bare\n"
        << "--key means true).\n\n"
        << "  --config FILE              JSON config file (may be given more than once)\n";
  else
    out << name << " reads the run's settings from <output_dir>/run.json; a setting given here replaces the\n"
        << "run's. Booleans take true or false (a bare --key means true).\n\n";
  out << "  --help                     this text\n";
  std::string section;
  const CommandOptions command_defaults;
  for (const auto& o : option_table()) {
    if (!o.obeyed_by(command)) continue;
    if (o.section != section) out << "\n" << (section = o.section) << ":\n";
    const std::string lhs = "  --" + o.key + " " + o.metavar();
    const std::string value = !training && o.setting && o.from_run ? std::string("the run's")
                                                                    : o.get(defaults, command_defaults).dump();
    out << std::left << std::setw(29) << lhs << o.help << "\n"
        << std::string(29, ' ') << "expects " << o.expected() << "; default " << value << "\n";
  }
  return out.str();
}

/// Checks what the option table cannot: relations between settings.
inline void check_consistency(const RunConfig& c) {
  GENNER_CHECK(c.scratch_d_model % c.scratch_heads == 0, "--scratch_heads: expected a divisor of scratch_d_model (",
               c.scratch_d_model, "), found ", c.scratch_heads);
  GENNER_CHECK(!c.contiguous || c.constrained,
               "contiguous true applies only with constrained true (it restricts constrained decoding to "
               "single-fragment entities), found constrained false; set --constrained true or --contiguous false");
}

/// What the command line asked for.
struct CommandLine {
  Command command = Command::train;
  RunConfig config;
  CommandOptions options;          ///< the command's own options (defaults where not given)
  std::vector<std::string> given;  ///< settings set on the command line itself (they override a run's record)
  /// Where each setting that is not a default came from: a config file's path or "--key".
  std::map<std::string, std::string> origin;
  bool help = false;
  std::vector<std::filesystem::path> config_files;
  /// compiled_keys() named by a config file or the command line (the latter wins), with origin.
  nlohmann::json compiled = nlohmann::json::object();

  /// Whether option `key` (a setting or a command's own) was given on the command line.
  [[nodiscard]] bool on_command_line(const std::string& key) const {
    const auto it = origin.find(key);
    return it != origin.end() && it->second == "--" + key;
  }
};

/// What stands in for --config when the command line gives none: given the command line's own
/// settings, the config files (read and validated) to apply.
using DefaultConfigs = std::function<std::vector<ConfigFile>(const nlohmann::json& command_line)>;

/// Default config files given by path, read when they stand in.
[[nodiscard]] inline DefaultConfigs config_files(std::vector<std::filesystem::path> paths) {
  return [paths = std::move(paths)](const nlohmann::json&) {
    std::vector<ConfigFile> out;
    for (const auto& p : paths) out.push_back(read_config_file(p));
    return out;
  };
}

namespace detail {
/// What the command line itself says: --help, --config files, settings and the command's own
/// options (parsed by the table), and the compiled keys (as given).
struct Arguments {
  bool help = false;
  std::vector<std::filesystem::path> config_files;
  nlohmann::json settings = nlohmann::json::object();
  nlohmann::json options = nlohmann::json::object();
  nlohmann::json compiled = nlohmann::json::object();
};

/// The value of option `key` at args[i] (`--key=value` already split off into `value`): the next
/// argument, or true for a bare boolean (`boolean`); moves `i` past what it reads.
inline std::string option_value(const std::vector<std::string>& args, std::size_t& i, const std::string& key,
                                std::optional<std::string> value, bool boolean, const std::string& expected) {
  if (value) return *value;
  const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
  if (boolean && !next_is_value) return "true";
  GENNER_CHECK(next_is_value, "--", key, ": expected ", expected, ", found ",
               i + 1 < args.size() ? "option '" + args[i + 1] + "'" : std::string("the end of the command line"));
  return args[++i];
}

/// `--key` or `--key=value` at args[i]: the key (dashes read as underscores) and the value, if given.
inline std::pair<std::string, std::optional<std::string>> split_option(const std::string& arg) {
  GENNER_CHECK(arg.rfind("--", 0) == 0 && arg.size() > 2, "command line: expected an option --key, found '", arg,
               "'");
  std::string key = arg.substr(2);
  std::optional<std::string> value;
  if (auto eq = key.find('='); eq != std::string::npos) {
    value = key.substr(eq + 1);
    key = key.substr(0, eq);
  }
  std::replace(key.begin(), key.end(), '-', '_');
  return {key, value};
}

inline Arguments read_arguments(const std::vector<std::string>& args, Command command) {
  Arguments out;
  std::map<std::string, std::string> spelled;  // the table's name -> how the command line spelled it
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      out.help = true;
      continue;
    }
    const auto [key, value] = split_option(args[i]);
    if (is_compiled_key(key)) {
      // Not a setting: kept as given (JSON when it reads as JSON, else text) for the program to check.
      const auto v = option_value(args, i, key, value, /*boolean=*/true, "a value");
      out.compiled[key] = nlohmann::json::accept(v) ? nlohmann::json::parse(v) : nlohmann::json(v);
      continue;
    }
    if (key == "config") {
      out.config_files.emplace_back(option_value(args, i, key, value, false, "a file name"));
      continue;
    }
    const auto name = canonical_key(key, "--" + key);
    GENNER_CHECK(!spelled.count(name) || spelled[name] == key, "--", key, " and --", spelled[name],
                 " are one setting; give one");
    spelled[name] = key;
    const auto& o = find_option(name, "--" + name);
    check_obeyed(o, command);
    const auto v = option_value(args, i, name, value, o.kind == OptionSpec::Kind::boolean, o.expected());
    (o.setting ? out.settings : out.options)[name] = parse_value(o, v, "--" + name);
  }
  return out;
}

/// Applies the executable's defaults and the config files (the given ones, else the defaults')
/// to `out`.
inline void apply_config_files(CommandLine& out, const nlohmann::json& defaults, const DefaultConfigs& default_configs,
                               const Arguments& given) {
  apply_object(out.config, defaults, "the executable's defaults");
  std::vector<ConfigFile> files;
  for (const auto& f : out.config_files) files.push_back(read_config_file(f));
  if (out.config_files.empty() && default_configs) {
    files = default_configs(given.settings);
    for (const auto& f : files) out.config_files.push_back(f.path);
  }
  for (const auto& f : files) {
    apply_config_file(out.config, f, &out.origin);
    for (const auto& [key, value] : f.compiled.items()) {
      out.compiled[key] = value;
      out.origin[key] = f.path.string();
    }
  }
}
}  // namespace detail

/// Parses the command line of `command`: `--key value`, `--key=value` (a boolean alone means true)
/// and `--config FILE` (repeatable). `defaults` (settings of the executable itself) apply before the
/// config files; `default_configs` stand in when no --config is given; the command line's settings
/// apply last. An option `command` does not obey is refused, naming the commands that do.
[[nodiscard]] inline CommandLine parse_command_line(const std::vector<std::string>& args,
                                                    const nlohmann::json& defaults = nlohmann::json::object(),
                                                    const DefaultConfigs& default_configs = {},
                                                    Command command = Command::train) {
  const auto given = detail::read_arguments(args, command);
  CommandLine out;
  out.command = command;
  out.help = given.help;
  out.config_files = given.config_files;
  detail::apply_config_files(out, defaults, default_configs, given);
  for (const auto& [key, value] : given.compiled.items()) {
    out.compiled[key] = value;
    out.given.push_back(key);
    out.origin[key] = "--" + key;
  }
  for (const auto* part : {&given.settings, &given.options})
    for (const auto& [key, value] : part->items()) {
      find_option(key, "--" + key).set(out.config, out.options, value);
      if (part == &given.settings) out.given.push_back(key);
      out.origin[key] = "--" + key;
    }
  check_consistency(out.config);
  return out;
}

/// argc/argv form (skips the program name).
[[nodiscard]] inline CommandLine parse_command_line(int argc, const char* const* argv) {
  return parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
}

}  // namespace genner::app
