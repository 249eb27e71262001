// genner/train/config.hpp: the run-time settings of a training run (docs/METHOD.md §3-4: target type,
// lengths, beams, LR, batch, epochs, warm-up...) read from JSON files in configs/ and overridden on
// the command line. One declarative option table drives the file reader, the `--key value` /
// `--key=value` parser, validation and the generated --help.
//
// File format: a flat JSON object of settings. Precedence: defaults < the executable's defaults <
// config files in the order given < command line. What an executable is compiled for (PEFT mode,
// adapter size, prompt length, encoder MLP, head) is not a setting: compiled_keys() name it, and a
// program checks such names against its compiled experiment (genner/app/structure.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
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

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data/target_type.hpp>
#include <genner/generate/defaults.hpp>
#include <genner/io/json_file.hpp>

namespace genner::train {

/// Every run-time setting, with the published defaults (docs/METHOD.md §4 "All:" row, CoNLL-2003).
struct RunConfig {
  // Data
  std::string family = "flat";       ///< flat | nested | discontinuous: how the data reads and entities decode
  std::string dataset = "conll2003";
  std::string data_dir;              ///< empty: <data root>/<dataset>
  int64_t sample_size = 3000;        ///< dataset "sample": training sentences genner writes (dev and test: 2/15 of it)
  std::string target_type = "word";  ///< word | bpe | span
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
  std::string metric = "pointer";  ///< pointer | word (train/metric.hpp)
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
  std::string precision = "fp32";  ///< fp32 | bf16 (mixed-precision training, bf16 inference) | int8 (CPU inference)
  std::string frozen_precision = "fp32";  ///< fp32 | bf16 | int8: how a frozen backbone's projections are stored
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
  std::string backend = "auto";  ///< auto | gloo | nccl
  double dist_timeout = 300;     ///< seconds a rank waits for the store or a peer before failing
};

/// One setting of the table: its key, kind, range, help, and how to read/write it in RunConfig.
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
  std::function<nlohmann::json(const RunConfig&)> get;
  std::function<void(RunConfig&, const nlohmann::json&)> set;

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

template <typename T>
OptionSpec make_option(std::string key, T RunConfig::*member, OptionSpec::Kind kind, std::string section,
                       std::string help) {
  OptionSpec o;
  o.key = std::move(key);
  o.kind = kind;
  o.section = std::move(section);
  o.help = std::move(help);
  o.get = [member](const RunConfig& c) { return nlohmann::json(c.*member); };
  o.set = [member](RunConfig& c, const nlohmann::json& v) { c.*member = v.get<T>(); };
  return o;
}
inline OptionSpec int_opt(std::string key, int64_t RunConfig::*m, std::string section, double lo, double hi,
                          std::string help) {
  auto o = make_option(std::move(key), m, OptionSpec::Kind::integer, std::move(section), std::move(help));
  o.min = lo;
  o.max = hi;
  return o;
}
inline OptionSpec num_opt(std::string key, double RunConfig::*m, std::string section, double lo, double hi, bool open,
                          std::string help) {
  auto o = make_option(std::move(key), m, OptionSpec::Kind::number, std::move(section), std::move(help));
  o.min = lo;
  o.max = hi;
  o.min_open = open;
  return o;
}
inline OptionSpec bool_opt(std::string key, bool RunConfig::*m, std::string section, std::string help) {
  return make_option(std::move(key), m, OptionSpec::Kind::boolean, std::move(section), std::move(help));
}
inline OptionSpec str_opt(std::string key, std::string RunConfig::*m, std::string section, std::string help) {
  return make_option(std::move(key), m, OptionSpec::Kind::string, std::move(section), std::move(help));
}
inline OptionSpec choice_opt(std::string key, std::string RunConfig::*m, std::string section,
                             std::vector<std::string> choices, std::string help) {
  auto o = make_option(std::move(key), m, OptionSpec::Kind::choice, std::move(section), std::move(help));
  o.choices = std::move(choices);
  return o;
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

}  // namespace detail

/// The option table: the single source of truth for keys, kinds, ranges and help.
[[nodiscard]] inline const std::vector<OptionSpec>& option_table() {
  using namespace detail;
  constexpr double inf = std::numeric_limits<double>::infinity();
  static const std::vector<OptionSpec> table = {
      choice_opt("family", &RunConfig::family, "data", {"flat", "nested", "discontinuous"},
                 "the data set's family: flat (CoNLL, OntoNotes, WNUT), nested (ACE, GENIA) or discontinuous (CADEC, "
                 "ShARe); it decides the data's reader and that flat entities never overlap. The family programs "
                 "(flat_ner, ...) serve their own; the tuning-mode programs (ner_lora, ...) serve any"),
      str_opt("dataset", &RunConfig::dataset, "data",
              "data set name (conll2003, ontonotes, ace04, ace05, genia, cadec, share13, share14, wnut17)"),
      str_opt("data_dir", &RunConfig::data_dir, "data",
              "folder holding the data set's files (empty: <data root>/<dataset>)"),
      int_opt("sample_size", &RunConfig::sample_size, "data", 50, 1000000,
              "dataset 'sample': training sentences genner writes itself (dev and test get 2/15 of it each)"),
      choice_opt("target_type", &RunConfig::target_type, "data", {std::begin(data::kTargetTypeNames), std::end(data::kTargetTypeNames)},
                 "pointer scheme of the target sequence (docs/METHOD.md §1)"),
      bool_opt("train_on_dev", &RunConfig::train_on_dev, "data",
               "train on train+dev (the published CoNLL-2003 setting)"),
      int_opt("max_words", &RunConfig::max_words, "data", 0, 1000000,
              "length guard: sentences longer than this are split where no entity crosses, else refused with "
              "file:line; 0: off (memory then grows with the square of the longest sentence)"),
      num_opt("dev_from_train", &RunConfig::dev_from_train, "data", 0, 0.5, false,
              "fraction of train carved out as dev (GENIA); 0: use the dev file"),
      int_opt("max_train_samples", &RunConfig::max_train_samples, "data", 0, 9.0e15,
              "train on the first N training sentences only (quick runs); 0: all"),
      int_opt("max_eval_samples", &RunConfig::max_eval_samples, "data", 0, 9.0e15,
              "evaluate on the first N dev and test sentences only (quick runs); 0: all"),
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
      int_opt("max_len", &RunConfig::max_len, "decoding", 1, 4096, "constant part of the maximum target length"),
      num_opt("max_len_a", &RunConfig::max_len_a, "decoding", 0, 16, false,
              "maximum target length grows by this times the source length"),
      int_opt("beams", &RunConfig::beams, "decoding", 1, 64, "beam size (1: greedy)"),
      num_opt("length_penalty", &RunConfig::length_penalty, "decoding", -inf, inf, false,
              "beam score = log-prob / length^penalty"),
      bool_opt("constrained", &RunConfig::constrained, "decoding",
               "mask next indices that would make an invalid entity"),
      bool_opt("contiguous", &RunConfig::contiguous, "decoding",
               "with constrained: entities are single fragments (flat and nested data); refused without constrained"),
      choice_opt(
          "metric", &RunConfig::metric, "decoding", {"pointer", "word"},
          "F1 rules: pointer (the published figures' rules, on output indices) or word (entities as word fragments)"),
      num_opt("lr", &RunConfig::lr, "optimisation", 0, 1, true,
              "peak learning rate of the backbone (also --learning_rate)"),
      int_opt("batch_size", &RunConfig::batch_size, "optimisation", 1, 65536,
              "sentences per optimizer step (all ranks and micro-batches together; batches are cut from "
              "length-sorted buckets); evaluate and predict decode this many at a time"),
      int_opt("epochs", &RunConfig::epochs, "optimisation", 1, 10000,
              "passes over the training data (also --num_train_epochs)"),
      int_opt("max_steps", &RunConfig::max_steps, "optimisation", 0, 9.0e15,
              "stop after this many optimizer steps; 0: epochs decide"),
      int_opt("patience", &RunConfig::patience, "optimisation", 0, 1000000,
              "stop after this many evaluations without a better dev F1; 0: never"),
      num_opt("warmup", &RunConfig::warmup, "optimisation", 0, 1, false,
              "linear warm-up as a fraction of all steps, then linear decay (also --warmup_ratio)"),
      num_opt("weight_decay", &RunConfig::weight_decay, "optimisation", 0, 1, false,
              "AdamW weight decay (layer norms get none)"),
      num_opt("clip_value", &RunConfig::clip_value, "optimisation", 0, inf, false,
              "clip each gradient element to [-v, v]; 0: off"),
      num_opt("clip_norm", &RunConfig::clip_norm, "optimisation", 0, inf, false,
              "clip the global gradient norm; 0: off (also --max_grad_norm)"),
      num_opt("truncate_prob", &RunConfig::truncate_prob, "optimisation", 0, 1, false,
              "probability per step of cutting the decoder input at a random length"),
      choice_opt(
          "precision", &RunConfig::precision, "run", {"fp32", "bf16", "int8"},
          "fp32; bf16: train in mixed precision (fp32 weights, optimizer state and final scores), evaluate/predict "
          "with bf16 weights; int8: evaluate/predict with int8 projections (CPU) (genner/model/precision.hpp)"),
      choice_opt("frozen_precision", &RunConfig::frozen_precision, "run", {"fp32", "bf16", "int8"},
                 "storage of the frozen backbone's projections in parameter-efficient runs: bf16, or int8 with a "
                 "scale per output row, widened on the fly (trainable tensors, gradients and AdamW state stay "
                 "fp32); refused where nothing is frozen"),
      bool_opt("gradient_checkpointing", &RunConfig::gradient_checkpointing, "run",
               "keep only each T5 block's inputs for backward and recompute the rest there (same gradients, less "
               "memory, about a third more compute)"),
      str_opt("memory_budget", &RunConfig::memory_budget, "run",
              "refuse a training run whose memory plan (plan prints it) needs more than this on one device, e.g. "
              "20GB or 512MiB; empty: the machine's memory"),
      int_opt("threads", &RunConfig::threads, "run", 0, 4096,
              "threads of this process: OpenBLAS runs fp32 products on this many, and bf16 and int8 runs give "
              "as many OpenMP threads to oneDNN (fp32 keeps one); 0: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS when "
              "set, else every available core"),
      int_opt("seed", &RunConfig::seed, "run", 0, 9.0e15, "random seed (sampler, dropout, initialisation)"),
      str_opt("output_dir", &RunConfig::output_dir, "run", "folder for logs, plots and checkpoints"),
      int_opt("eval_every", &RunConfig::eval_every, "run", 0, 9.0e15,
              "evaluate (and checkpoint) every N steps; 0: once per epoch (also --eval_steps)"),
      int_opt("logging_steps", &RunConfig::logging_steps, "run", 0, 9.0e15,
              "write a training-loss line (mean loss of the last N steps, learning rate) to log.jsonl and "
              "log.csv every N steps; 0: only the lines of the evaluations"),
      bool_opt("resume", &RunConfig::resume, "run", "resume from output_dir's checkpoint when there is one"),
      str_opt("description", &RunConfig::description, "run", "free text recorded with the run"),
      int_opt("nproc", &RunConfig::nproc, "parallel", 1, 1024,
              "data-parallel ranks to start on this machine (batch_size is split between them)"),
      int_opt("accumulate", &RunConfig::accumulate, "parallel", 1, 65536,
              "micro-batches per batch and rank (gradient accumulation; batch_size stays the update's batch) (also "
              "--gradient_accumulation_steps)"),
      choice_opt("backend", &RunConfig::backend, "parallel", {"auto", "gloo", "nccl"},
                 "c10d backend: gloo (CPU), nccl (CUDA builds only); auto: nccl when available with a GPU, else gloo"),
      num_opt("dist_timeout", &RunConfig::dist_timeout, "parallel", 1, 86400, false,
              "seconds a rank waits for the store or a peer before failing"),
  };
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

/// The spec for `key`, or null when the table has no such setting.
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

/// Converts command-line text to the JSON value the spec wants (errors name the option).
[[nodiscard]] inline nlohmann::json parse_value(const OptionSpec& o, const std::string& text,
                                                const std::string& where) {
  nlohmann::json v;
  switch (o.kind) {
    case OptionSpec::Kind::integer: {
      int64_t x = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
      GENNER_CHECK(ec == std::errc() && end == text.data() + text.size(), where, ": expected ", o.expected(),
                   ", found '", text, "'");
      v = x;
      break;
    }
    case OptionSpec::Kind::number: {
      char* end = nullptr;
      const double x = std::strtod(text.c_str(), &end);
      GENNER_CHECK(!text.empty() && end == text.c_str() + text.size(), where, ": expected ", o.expected(), ", found '",
                   text, "'");
      v = x;
      break;
    }
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
/// Applies a JSON object of settings; `origin` records where each key came from.
inline void apply_object(RunConfig& config, const nlohmann::json& object, const std::string& where,
                         std::map<std::string, std::string>* origin = nullptr) {
  GENNER_CHECK(object.is_object(), where, ": expected a JSON object of settings, found ", object.type_name());
  for (const auto& [key, value] : object.items()) {
    GENNER_CHECK(key != "by_model", where,
                 ": 'by_model' sections are not read: what trains (PEFT mode, adapter "
                 "size, prompt) is compiled into each executable, and the PEFT runs' optimisation settings are in "
                 "configs/peft.json; remove the section and pick the executable of the experiment (see --help)");
    const auto name = canonical_key(key, where);
    GENNER_CHECK(name == key || !object.contains(name), where, ": '", key, "' and '", name,
                 "' are one setting; give one");
    const auto& o = find_option(name, where);
    check_value(o, value, where + ": '" + key + "'");
    o.set(config, value);
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

/// All settings as a JSON object (recorded next to the run's logs).
[[nodiscard]] inline nlohmann::json to_json(const RunConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& o : option_table()) out[o.key] = o.get(config);
  return out;
}

/// --help text generated from the table: every option with its kind, default and explanation.
/// `defaults`: what the program uses when the command line sets nothing (its own defaults and
/// config files applied); `usage`: start with a usage line (off when the caller printed one).
[[nodiscard]] inline std::string help_text(const std::string& program, const RunConfig& defaults = {},
                                           bool usage = true) {
  std::ostringstream out;
  if (usage) out << "usage: " << program << " [--config FILE] [--key value | --key=value]...\n\n";
  out << "Settings come from defaults, then the config files (--config, in the order given; without\n"
      << "one, the executable's own), then the command line. Booleans take true or false (a bare\n"
      << "--key means true).\n\n"
      << "  --config FILE              JSON config file (may be given more than once)\n"
      << "  --help                     this text\n";
  std::string section;
  for (const auto& o : option_table()) {
    if (o.section != section) {
      section = o.section;
      out << "\n" << section << ":\n";
    }
    std::string lhs = "  --" + o.key + " " +
                      (o.kind == OptionSpec::Kind::integer   ? "INT"
                       : o.kind == OptionSpec::Kind::number  ? "NUM"
                       : o.kind == OptionSpec::Kind::boolean ? "BOOL"
                                                             : "STR");
    out << std::left << std::setw(29) << lhs << o.help << "\n"
        << std::string(29, ' ') << "expects " << o.expected() << "; default " << o.get(defaults).dump() << "\n";
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
  RunConfig config;
  std::vector<std::string> given;  ///< keys set on the command line itself (they override a run's record)
  /// Where each setting that is not a default came from: a config file's path or "--key".
  std::map<std::string, std::string> origin;
  bool help = false;
  std::vector<std::filesystem::path> config_files;
  /// compiled_keys() named by a config file or the command line (the latter wins), with origin.
  nlohmann::json compiled = nlohmann::json::object();
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
/// What the command line itself says: --help, --config files, settings (parsed by the table) and
/// the compiled keys (as given).
struct Arguments {
  bool help = false;
  std::vector<std::filesystem::path> config_files;
  nlohmann::json settings = nlohmann::json::object();
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

inline Arguments read_arguments(const std::vector<std::string>& args) {
  Arguments out;
  std::map<std::string, std::string> spelled;  // the table's name -> how the command line spelled it
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    GENNER_CHECK(arg.rfind("--", 0) == 0 && arg.size() > 2, "command line: expected an option --key, found '", arg,
                 "'");
    std::string key = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    std::replace(key.begin(), key.end(), '-', '_');
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
    const auto v = option_value(args, i, name, value, o.kind == OptionSpec::Kind::boolean, o.expected());
    out.settings[name] = parse_value(o, v, "--" + name);
  }
  return out;
}
}  // namespace detail

/// Parses `--key value`, `--key=value` (a boolean alone means true) and `--config FILE` (repeatable).
/// `defaults` (settings of the executable itself) apply before the config files; `default_configs`
/// stand in when no --config is given; the command line's settings apply last.
[[nodiscard]] inline CommandLine parse_command_line(const std::vector<std::string>& args,
                                                    const nlohmann::json& defaults = nlohmann::json::object(),
                                                    const DefaultConfigs& default_configs = {}) {
  auto given = detail::read_arguments(args);
  CommandLine out;
  out.help = given.help;
  out.config_files = given.config_files;
  detail::apply_object(out.config, defaults, "the executable's defaults");
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
  for (const auto& [key, value] : given.compiled.items()) {
    out.compiled[key] = value;
    out.given.push_back(key);
    out.origin[key] = "--" + key;
  }
  for (const auto& [key, value] : given.settings.items()) {
    find_option(key, "--" + key).set(out.config, value);
    out.given.push_back(key);
    out.origin[key] = "--" + key;
  }
  check_consistency(out.config);
  return out;
}

/// argc/argv form (skips the program name).
[[nodiscard]] inline CommandLine parse_command_line(int argc, const char* const* argv) {
  return parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
}

}  // namespace genner::train
