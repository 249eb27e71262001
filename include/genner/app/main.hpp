// genner/app/main.hpp: main() of a genner executable. One compiled experiment per executable:
//
//   #include <genner/app.hpp>
//   using Experiment = genner::model::AdapterTuning<genner::t5::T5_3B, 768>;
//   int main(int argc, char** argv) {
//     return genner::app::run<Experiment>({"my_experiment", genner::app::Family::flat, "t5-3b",
//                                          {"configs/conll2003.json", "configs/peft.json"}}, argc, argv);
//   }
//
// Commands: train (the default), plan, evaluate, predict, serve; settings from the option table
// (genner/train/config.hpp). Every error ends the program with a sentence and exit status 1.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include <genner/app/commands.hpp>
#include <genner/app/experiments.hpp>
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

template <class E>
void print_usage(const std::string& executable, const Program& program) {
  const ServeOptions serve;
  std::cout << "usage: " << executable << " [train|plan|evaluate|predict|serve] [--config FILE]... [--key value]...\n\n"
            << "  train     train on <data_dir>/train, select on dev, report test (the default command)\n"
            << "  plan      resolve everything train would use (data, tokenizer, model, optimisation, decoding)\n"
            << "            and print it as JSON, without training\n"
            << "  evaluate  score the run in --output_dir on the test split; flat data also gets a CoNLL file\n"
            << "  predict   --input FILE|- (one text per line; - is standard input) [--predictions FILE|-]\n"
            << "            [--format jsonl|conll|brat] [--pretokenized] [--split_sentences]\n"
            << "            [--max_source_pieces N (512)]: one record per input line, character offsets\n"
            << "            (brat: code points of the whole input); throughput on standard error\n"
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
            << "            decoded in windows as predict does; --threads N (" << serve.threads
            << ") connections served at once\n"
            << "            Refusals are JSON {\"error\": \"...\"}; SIGINT/SIGTERM answer what is in flight, then exit 0\n\n"
            << "Experiment " << program.name << " (" << family_name(program.family) << " NER), compiled for:\n  "
            << describe(E::spec()) << "\n"
            << "Settings that contradict it (peft, adapter_size, prompt_length, encoder_mlp, avg_feature, and\n"
            << "scratch_* for a static backbone) are refused; the error names the executables that have them.\n\n"
            << "Defaults of this executable: --model " << program.model << "; config files:";
  for (const auto& p : default_config_paths(program)) std::cout << ' ' << p.string();
  std::cout << "\n--model: 'scratch' (random weights), a name under $GENNER_MODELS (now " << models_root().string()
            << "), or a path starting with /, ./ or ../\n\n";
  std::cout << train::help_text(executable);
}

/// Takes predict's own options out of `args` (the settings parser never sees them).
inline PredictFlags take_predict_flags(std::vector<std::string>& args, const std::string& command, std::string& input,
                                       std::string& predictions) {
  PredictFlags flags;
  std::string max_pieces;
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
    if (take("--input", input) || take("--predictions", predictions) || take("--format", flags.format))
      GENNER_CHECK(command == "predict", "--input, --predictions and --format belong to the predict command, not to ",
                   command);
    else if (take("--max_source_pieces", max_pieces) || flag("--pretokenized", flags.pretokenized) ||
             flag("--split_sentences", flags.split_sentences))
      GENNER_CHECK(command == "predict" || command == "serve",
                   "--pretokenized, --split_sentences and --max_source_pieces belong to the predict and serve "
                   "commands, not to ",
                   command);
    else
      ++i;
  }
  if (command != "predict" && command != "serve") return flags;
  GENNER_CHECK(command != "predict" || !input.empty(),
               "predict needs --input FILE (one text per line; - reads standard input)");
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
  return flags;
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

/// Takes the serve command's own options out of `args` (the settings parser never sees them).
inline ServeOptions take_serve_flags(std::vector<std::string>& args, const std::string& command) {
  ServeOptions o;
  const std::vector<std::string> keys = {"--port",      "--max_batch",      "--max_wait_ms", "--max_queue",
                                         "--max_texts", "--max_body_bytes", "--timeout_ms",  "--threads",
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
  o.threads = static_cast<size_t>(count("--threads", 1, static_cast<long long>(o.threads)));
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
  std::string input, predictions;
  const auto flags = take_predict_flags(args, command, input, predictions);
  auto serve_options = take_serve_flags(args, command);
  auto cl = train::parse_command_line(args, {{"model", program.model}}, default_config_paths(program));
  if (cl.help) {
    print_usage<E>(fs::path(argv[0]).filename().string(), program);
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
  if (command == "evaluate") return commands.evaluate_command();
  if (command == "serve") return commands.serve_command(flags, std::move(serve_options));
  return commands.predict_command(input, predictions, flags);
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
                       command == "serve",
                   "unknown command '", command, "'; expected train, plan, evaluate, predict or serve (see --help)");
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
