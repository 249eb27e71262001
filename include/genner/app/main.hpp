// genner/app/main.hpp: main() of a genner executable. One compiled experiment per executable:
//
//   #include <genner/app.hpp>
//   using Experiment = genner::model::AdapterTuning<genner::t5::T5_3B, 768>;
//   int main(int argc, char** argv) {
//     return genner::app::run<Experiment>({"my_experiment", genner::app::Family::flat, "t5-3b",
//                                          {"configs/conll2003.json", "configs/peft.json"}}, argc, argv);
//   }
//
// A program that names no config files runs with the built-in settings of its family's sample
// (app/sample_settings.hpp) when the command line gives no --config:
//
//   int main(int argc, char** argv) {
//     return genner::app::run<genner::model::FullFineTuning<genner::t5::DynamicBackbone>>(
//         {"flat_ner", genner::app::Family::flat}, argc, argv);
//   }
//
// Commands: train (the default), plan, evaluate, predict, serve, export; settings from the option table
// (genner/train/config.hpp). Every error ends the program with a sentence and exit status 1.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include <genner/app/commands.hpp>
#include <genner/app/experiments.hpp>
#include <genner/app/sample_settings.hpp>
#include <genner/core/threading.hpp>
#include <genner/train/config.hpp>
#include <genner/train/distributed.hpp>

namespace genner::app {

/// The default config files as paths: names resolved against the program's config folder.
inline std::vector<fs::path> default_config_paths(const Program& program) {
  std::vector<fs::path> out;
  for (const auto& c : program.configs) {
    const fs::path p(c);
    out.push_back(p.is_absolute() || program.config_dir.empty() ? p : program.config_dir / p);
  }
  return out;
}

/// What stands in for --config: the program's default config files, or, when it names none, the
/// built-in settings of its family's sample (app/sample_settings.hpp; for a program of any family,
/// of the family the command line chooses; a static backbone keeps its own shape).
template <class E>
train::DefaultConfigs default_configs(const Program& program) {
  if (!program.configs.empty()) return train::config_files(default_config_paths(program));
  return [program](const nlohmann::json& command_line) {
    const bool chosen = program.any_family && command_line.contains("family");
    return std::vector<train::ConfigFile>{
        sample_settings(chosen ? parse_family(command_line.at("family").get<std::string>()) : program.family,
                        /*scratch_shape=*/!E::backbone::is_static)};
  };
}

/// The executable's own settings, applied before its config files: where its weights come from,
/// the family of its data and its run folder (runs/<name>).
inline nlohmann::json program_defaults(const Program& program) {
  return {{"model", program.model}, {"family", family_name(program.family)}, {"output_dir", "runs/" + program.name}};
}

template <class E>
void print_usage(const std::string& executable, const Program& program, const train::RunConfig& defaults) {
  const char* data_env = std::getenv("GENNER_DATA");
  const ServeOptions serve;
  std::cout << "usage: " << executable
            << " [train|plan|evaluate|predict|serve|export] [--config FILE]... [--key value | --key=value]...\n\n"
            << "  train     train on <data_dir>/train, select on dev, report test (the default command)\n"
            << "  plan      resolve everything train would use (data, tokenizer, model, optimisation, decoding,\n"
            << "            steps per epoch and in all) and print it as JSON on standard output, without\n"
            << "            training or creating anything\n"
            << "  evaluate  score the run in --output_dir: [--split dev|test (test)] [--output metrics.json]\n"
            << "            (precision, recall and F1 on a 0-100 scale, overall and per type); flat data also\n"
            << "            gets a CoNLL file for conlleval\n"
            << "  predict   --input FILE|- (one text per line; - is standard input) [--predictions FILE|-]\n"
            << "            [--format jsonl|conll|brat|html (default: from the extension of --predictions\n"
            << "            .jsonl .conll .ann .html, else jsonl)] [--pretokenized true|false]\n"
            << "            [--split_sentences true|false] [--max_source_pieces N (512)]\n"
            << "            [--threshold P (0: all; keep entities of probability exp(score) >= P)]:\n"
            << "            one record per input line; \"begin\"/\"end\" count characters (code points, as\n"
            << "            Python and jq slice), \"byte_begin\"/\"byte_end\" bytes; throughput on standard error\n"
            << "  serve     answer NER requests over HTTP on 127.0.0.1 with the run in --output_dir, the same\n"
            << "            precision, decoding and --pretokenized/--split_sentences/--max_source_pieces as predict:\n"
            << "            POST /v1/recognize {\"text\": \"...\"} or {\"texts\": [...]} (predict's records out),\n"
            << "            GET /health, GET /metrics; concurrent requests are decoded in batches. Options:\n"
            << "            --port N (" << serve.port << "; 0: any free port, printed)\n"
            << "            --max_batch N (" << serve.batching.max_batch
            << ") texts decoded together; 1 decodes each request alone\n"
            << "            --max_wait_ms X (" << static_cast<double>(serve.batching.max_wait.count()) / 1000.0
            << ") the longest a request waits for others to join its batch\n"
            << "            --max_queue N (" << serve.batching.max_queue
            << ") texts waiting at most; beyond it 503 with Retry-After\n"
            << "            --max_texts N (" << serve.max_texts << ") texts per request; --max_body_bytes N ("
            << serve.max_body_bytes << "); over either: 413\n"
            << "            --timeout_ms N (" << serve.batching.timeout.count()
            << ") per request, arrival to answer; then 504\n"
            << "            --long_texts refuse|split (refuse): a text over --max_source_pieces gets 413, or is\n"
            << "            decoded in windows as predict does; --http_threads N (" << serve.http_threads
            << ") connections served at once\n"
            << "            Refusals are JSON {\"error\": \"...\"}; SIGINT/SIGTERM answer what is in flight, then exit 0\n"
            << "  export    write the run in --output_dir for other tools: --to DIR (a new folder) [--format hf|peft\n"
            << "            (peft for a LoRA run, else hf)]: hf is a Hugging Face folder (config.json,\n"
            << "            model.safetensors, spiece.model; LoRA factors merged into the weights) of the trained T5 --\n"
            << "            a run whose adapters or soft prompt would be lost is refused; peft is a PEFT LoRA folder\n"
            << "            (adapter_config.json, adapter_model.safetensors). The NER head (encoder MLP, label rows)\n"
            << "            has no place in either and stays in best.safetensors\n"
            << "  evaluate, predict and serve read the run's settings from run.json; on their command line they obey\n"
            << "  only the decoding settings, precision, batch_size (and evaluate: data_dir, dataset,\n"
            << "  max_words, metric); others are refused\n\n"
            << "Experiment " << program.name << " ("
            << (program.any_family ? "NER of the family --family names: flat, nested or discontinuous; now " +
                                         defaults.family
                                   : std::string(family_name(program.family)) + " NER")
            << "), compiled for:\n  "
            << describe(E::spec()) << "\n"
            << "What it is compiled for is not a setting: peft, adapter_size, prompt_length, encoder_mlp and\n"
            << "avg_feature in a config file or on the command line are checked against it, and a contradicting\n"
            << "value (or scratch_* for a static backbone) is refused, naming the executables that have it.\n\n"
            << "Defaults of this executable (shown with each option below): --model " << defaults.model
            << "; config files:";
  if (program.configs.empty())
    std::cout << " none; the built-in settings of the " << (program.any_family ? "chosen family's" : "family's")
              << " sample stand in (--config replaces them)";
  for (const auto& p : default_config_paths(program)) std::cout << ' ' << p.string();
  std::cout << "\n--model: 'scratch' (random weights), a folder of that name in the current directory, a name\n"
            << "under $GENNER_MODELS (now " << models_root().string() << "), or a path starting with /, ./ or ../\n"
            << "Data: --data_dir, else $GENNER_DATA/<dataset> (GENNER_DATA is now "
            << (data_env && *data_env ? std::string(data_env) : std::string("unset: ../shared/data")) << ")\n";
  if (defaults.dataset == "sample" && defaults.model == "scratch")
    std::cout << "Without settings this executable trains a small model from scratch on genner's synthetic sample\n"
              << "data: it fits that data only and is no model for real text (train on a real data set for that).\n";
  std::cout << "\n" << train::help_text(executable, defaults, /*usage=*/false);
}

/// What a predict file name's extension says about its format ("" when it says nothing).
inline std::string format_of_extension(const std::string& file) {
  auto ext = fs::path(file).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return "jsonl";
  if (ext == ".conll" || ext == ".bio") return "conll";
  if (ext == ".ann") return "brat";
  if (ext == ".html" || ext == ".htm") return "html";
  return "";
}

/// Options that belong to one command, taken out of `args` before the settings parser sees them.
struct CommandFlags {
  std::string input, predictions;
  PredictFlags predict;
  EvaluateFlags evaluate;
  ExportFlags export_;
};

/// The command flags as given: key (with --) -> value; a bare switch reads "true".
using GivenFlags = std::map<std::string, std::string>;

/// Takes every command flag out of `args` (`--key value` or `--key=value`); a flag of another
/// command is refused.
inline GivenFlags take_given_flags(std::vector<std::string>& args, const std::string& command) {
  struct Flag {
    const char* key;
    bool is_switch;
    const char* commands;  ///< one command, or two ("predict serve")
  };
  static const std::vector<Flag> table = {
      {"--input", false, "predict"},           {"--predictions", false, "predict"},
      {"--format", false, "predict export"},   {"--to", false, "export"},
      {"--max_source_pieces", false, "predict serve"}, {"--threshold", false, "predict"},
      {"--pretokenized", true, "predict serve"},       {"--split_sentences", true, "predict serve"},
      {"--split", false, "evaluate"},          {"--output", false, "evaluate"}};
  GivenFlags given;
  for (size_t i = 0; i < args.size();) {
    const Flag* hit = nullptr;
    std::string value;
    size_t used = 0;
    for (const auto& f : table) {
      const std::string key = f.key;
      if (args[i] == key) {
        const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
        if (f.is_switch && !(next_is_value && (args[i + 1] == "true" || args[i + 1] == "false"))) {
          value = "true", used = 1;  // a bare switch means true
        } else {
          GENNER_CHECK(i + 1 < args.size(), key, ": expected a value, found the end of the command line");
          value = args[i + 1], used = 2;
        }
      } else if (args[i].rfind(key + "=", 0) == 0) {
        value = args[i].substr(key.size() + 1), used = 1;
      }
      if (used) {
        hit = &f;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    const std::string owners = hit->commands;
    const auto space = owners.find(' ');
    const bool belongs = owners == command || (space != std::string::npos && (owners.substr(0, space) == command ||
                                                                              owners.substr(space + 1) == command));
    GENNER_CHECK(belongs, hit->key, " belongs to the ",
                 space == std::string::npos
                     ? owners + " command"
                     : owners.substr(0, space) + " and " + owners.substr(space + 1) + " commands",
                 ", not to ", command, " (see --help)");
    given[hit->key] = value;
    args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i + used));
  }
  return given;
}

/// The value of flag `key`, or empty when it was not given.
inline std::string given_value(const GivenFlags& given, const std::string& key) {
  const auto it = given.find(key);
  return it == given.end() ? std::string() : it->second;
}

/// evaluate's flags: --split dev|test, --output FILE.
inline EvaluateFlags evaluate_flags(const GivenFlags& given) {
  EvaluateFlags out;
  if (const auto split = given_value(given, "--split"); !split.empty()) {
    GENNER_CHECK(split == "dev" || split == "test", "--split: expected dev or test, found '", split, "'");
    out.split = split;
  }
  out.output = given_value(given, "--output");
  GENNER_CHECK(!given.count("--output") || !out.output.empty(),
               "--output: expected a file name for the metrics JSON, found an empty one");
  return out;
}

/// export's flags: --to DIR (required), --format hf|peft.
inline ExportFlags export_flags(const GivenFlags& given) {
  const auto to = given_value(given, "--to"), format = given_value(given, "--format");
  GENNER_CHECK(!to.empty(), "export needs --to DIR: the new folder to write");
  GENNER_CHECK(format.empty() || format == "hf" || format == "peft",
               "--format: export writes hf (a Hugging Face folder) or peft (a PEFT LoRA folder), found '", format, "'");
  return {to, format};
}

/// An integer option's value, at least `min`.
inline long long parse_integer_option(const std::string& key, const std::string& value, long long min) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  GENNER_CHECK(used == value.size() && !value.empty() && v >= min, key, ": expected an integer of at least ", min,
               ", found '", value, "'");
  return v;
}

/// predict's and serve's flags: the output format (--format, else the extension of
/// --predictions), --pretokenized, --split_sentences, --max_source_pieces, --threshold.
inline PredictFlags predict_flags(const GivenFlags& given, const std::string& predictions) {
  PredictFlags flags;
  auto boolean = [&](const std::string& key, bool& into) {
    const auto v = given_value(given, key);
    if (v.empty()) return;
    GENNER_CHECK(v == "true" || v == "false", key, ": expected true or false, found '", v, "'");
    into = v == "true";
  };
  boolean("--pretokenized", flags.pretokenized);
  boolean("--split_sentences", flags.split_sentences);
  const auto format = given_value(given, "--format");
  const auto implied = predictions.empty() || predictions == "-" ? std::string() : format_of_extension(predictions);
  if (!format.empty()) {
    (void)recognize::parse_format(format);
    GENNER_CHECK(implied.empty() || implied == format, "--format ", format, " disagrees with --predictions ",
                 predictions, ", whose extension means ", implied, "; drop --format or rename the file");
    flags.format = format;
  } else if (!implied.empty()) {
    flags.format = implied;
  }
  if (const auto max_pieces = given_value(given, "--max_source_pieces"); !max_pieces.empty())
    flags.max_source_pieces = parse_integer_option("--max_source_pieces", max_pieces, 2);
  if (const auto threshold = given_value(given, "--threshold"); !threshold.empty()) {
    char* end = nullptr;
    flags.threshold = std::strtod(threshold.c_str(), &end);
    GENNER_CHECK(end == threshold.c_str() + threshold.size() && flags.threshold >= 0 && flags.threshold <= 1,
                 "--threshold: expected a probability in [0, 1], found '", threshold, "'");
  }
  return flags;
}

/// Takes predict's, evaluate's and export's own options out of `args`; one of another command is refused.
inline CommandFlags take_command_flags(std::vector<std::string>& args, const std::string& command) {
  const auto given = take_given_flags(args, command);
  CommandFlags out;
  out.input = given_value(given, "--input");
  out.predictions = given_value(given, "--predictions");
  if (command == "evaluate") out.evaluate = evaluate_flags(given);
  if (command == "export") out.export_ = export_flags(given);
  if (command != "predict" && command != "serve") return out;
  GENNER_CHECK(command != "predict" || !out.input.empty(),
               "predict needs --input FILE (one text per line; - reads standard input)");
  out.predict = predict_flags(given, out.predictions);
  return out;
}

/// Takes the serve command's own options out of `args` (the settings parser never sees them).
inline ServeOptions take_serve_flags(std::vector<std::string>& args, const std::string& command) {
  ServeOptions o;
  const std::vector<std::string> keys = {"--port",      "--max_batch",      "--max_wait_ms", "--max_queue",
                                         "--max_texts", "--max_body_bytes", "--timeout_ms",  "--http_threads",
                                         "--long_texts"};
  std::map<std::string, std::string> given;
  for (size_t i = 0; i < args.size();) {
    std::string key, value;
    bool found = false;
    for (const auto& k : keys) {
      if (args[i] == k) {
        GENNER_CHECK(i + 1 < args.size(), k, " needs a value");
        key = k;
        value = args[i + 1];
        args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
        found = true;
      } else if (args[i].rfind(k + "=", 0) == 0) {
        key = k;
        value = args[i].substr(k.size() + 1);
        args.erase(args.begin() + static_cast<long>(i));
        found = true;
      }
      if (found) break;
    }
    if (!found) {
      ++i;
      continue;
    }
    GENNER_CHECK(command == "serve", key, " belongs to the serve command, not to ", command);
    given[key] = value;
  }
  if (command != "serve") return o;
  auto count = [&](const std::string& key, long long min, long long fallback) {
    const auto it = given.find(key);
    return it == given.end() ? fallback : parse_integer_option(key, it->second, min);
  };
  o.port = static_cast<int>(count("--port", 0, o.port));
  GENNER_CHECK(o.port <= 65535, "--port: expected 0 (any free port) to 65535, found ", o.port);
  o.batching.max_batch = static_cast<size_t>(count("--max_batch", 1, static_cast<long long>(o.batching.max_batch)));
  o.batching.max_queue = static_cast<size_t>(count("--max_queue", 1, static_cast<long long>(o.batching.max_queue)));
  o.batching.timeout = std::chrono::milliseconds(count("--timeout_ms", 1, o.batching.timeout.count()));
  o.max_texts = static_cast<size_t>(count("--max_texts", 1, static_cast<long long>(o.max_texts)));
  o.max_body_bytes = static_cast<size_t>(count("--max_body_bytes", 2, static_cast<long long>(o.max_body_bytes)));
  o.http_threads = static_cast<size_t>(count("--http_threads", 1, static_cast<long long>(o.http_threads)));
  if (const auto it = given.find("--max_wait_ms"); it != given.end()) {
    size_t used = 0;
    double ms = -1;
    try {
      ms = std::stod(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    GENNER_CHECK(used == it->second.size() && used > 0 && ms >= 0 && ms <= 60000,
                 "--max_wait_ms: expected milliseconds from 0 to 60000 (fractions allowed), found '", it->second, "'");
    o.batching.max_wait = std::chrono::microseconds(static_cast<long long>(std::llround(ms * 1000.0)));
  }
  if (const auto it = given.find("--long_texts"); it != given.end()) {
    GENNER_CHECK(it->second == "refuse" || it->second == "split", "--long_texts: expected refuse or split, found '",
                 it->second, "'");
    o.split_long_texts = it->second == "split";
  }
  o.check();
  return o;
}

template <class E>
int run_command(const Program& program, const std::string& command, std::vector<std::string> args, char** argv) {
  const auto flags = take_command_flags(args, command);
  auto serve_options = take_serve_flags(args, command);
  if (command == "evaluate" || command == "predict" || command == "serve" || command == "export")
    for (const auto& a : args)
      GENNER_CHECK(a != "--config" && !a.starts_with("--config="), command,
                   " reads the run's settings from <output_dir>/run.json, not from config files; give a change as "
                   "--key value (see --help for those ",
                   command, " obeys)");
  auto cl = train::parse_command_line(args, program_defaults(program), default_configs<E>(program));
  if (cl.help) {
    // What this executable uses when nothing is given: its own defaults and config files applied.
    const auto defaults = train::parse_command_line({}, program_defaults(program), default_configs<E>(program));
    print_usage<E>(fs::path(argv[0]).filename().string(), program, defaults.config);
    return 0;
  }
  const train::RunConfig& cfg = cl.config;
  // Data parallelism: RANK/WORLD_SIZE in the environment make this process one rank; --nproc N
  // without them starts N local ranks of this program and waits for them.
  const auto env = train::dist::launch_env_from_environment();
  GENNER_CHECK(command == "train" || command == "plan" || (cfg.nproc == 1 && env.world_size == 1), command,
               " runs in one process; drop --nproc ", cfg.nproc, " / WORLD_SIZE=", env.world_size);
  GENNER_CHECK(!env.from_environment || cfg.nproc == 1 || cfg.nproc == env.world_size, "--nproc ", cfg.nproc,
               " disagrees with WORLD_SIZE=", env.world_size, " set in the environment");
  const auto backend =
      train::dist::parse_backend(cfg.backend, torch::cuda::is_available());  // refuses nccl without NCCL
  if (command == "train" && cfg.nproc > 1 && !env.from_environment)
    return train::dist::spawn_local_ranks(static_cast<int>(cfg.nproc), argv);
  train::dist::Group group;
  if (env.world_size > 1 && command == "train") {
    group = train::dist::Group::connect(
        env, {backend, std::chrono::milliseconds(static_cast<int64_t>(cfg.dist_timeout * 1000))});
    if (!group.is_main()) std::cout.setstate(std::ios::badbit);  // rank 0 alone reports
  }
  Commands<E> commands(program, std::move(cl), &group);
  if (command == "train") return commands.train_command();
  if (command == "plan") return commands.plan_command();
  if (command == "evaluate") return commands.evaluate_command(flags.evaluate);
  if (command == "serve") return commands.serve_command(flags.predict, std::move(serve_options));
  if (command == "export") return commands.export_command(flags.export_);
  return commands.predict_command(flags.input, flags.predictions, flags.predict);
}

/// main() of an executable compiled for experiment E.
template <class E>
int run(const Program& program, int argc, char** argv) {
  core::prefer_passive_openmp(argv);
  const std::string executable = fs::path(argv[0]).filename().string();
  std::cout << std::unitbuf;  // progress notes interleave with stderr and show up in logs as they happen
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string command = "train";
    if (!args.empty() && args.front().rfind("--", 0) != 0 && args.front() != "-h") {
      command = args.front();
      args.erase(args.begin());
      GENNER_CHECK(command == "train" || command == "plan" || command == "evaluate" || command == "predict" ||
                       command == "serve" || command == "export",
                   "unknown command '", command,
                   "'; expected train, plan, evaluate, predict, serve or export (see --help)");
    }
    return run_command<E>(program, command, std::move(args), argv);
  } catch (const Error& e) {
    std::cerr << executable << ": error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << executable << ": error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // Anything a check did not name: still a message and an exit code, never terminate().
    std::cerr << executable << ": error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << executable << ": error: unknown exception\n";
    return 1;
  }
}

/// main() of a listed experiment (genner/app/experiments.hpp); default config names resolve
/// against `config_dir`.
template <class Entry>
int run_listed(const std::filesystem::path& config_dir, int argc, char** argv) {
  return run<typename Entry::experiment>(program_of<Entry>(config_dir), argc, argv);
}

}  // namespace genner::app
