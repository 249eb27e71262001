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
// Commands: train (the default), plan, evaluate, predict, serve, export; options from the option table
// (genner/app/options.hpp). Every error ends the program with a sentence and exit status 1.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include <genner/app/commands.hpp>
#include <genner/app/experiments.hpp>
#include <genner/app/options.hpp>
#include <genner/app/sample_settings.hpp>
#include <genner/core/threading.hpp>
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
DefaultConfigs default_configs(const Program& program) {
  if (!program.configs.empty()) return config_files(default_config_paths(program));
  return [program](const nlohmann::json& command_line) {
    const bool chosen = program.any_family && command_line.contains("family");
    return std::vector<ConfigFile>{
        sample_settings(chosen ? parse_family(command_line.at("family").get<std::string>()) : program.family,
                        /*scratch_shape=*/!E::backbone::is_static)};
  };
}

/// The executable's own settings, applied before its config files: where its weights come from,
/// the family of its data and its run folder (runs/<name>).
inline nlohmann::json program_defaults(const Program& program) {
  return {{"model", program.model}, {"family", family_name(program.family)}, {"output_dir", "runs/" + program.name}};
}

/// `text` in lines of at most `width` characters, each but the first indented by `indent` spaces.
inline std::string wrap(const std::string& text, std::size_t indent, std::size_t width = 100) {
  std::istringstream words(text);
  std::string out, line, word;
  while (words >> word) {
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

/// The first part of --help: the usage line and the commands (all of them, or the one asked about).
inline void print_commands(std::ostream& out, const std::string& executable, Command command) {
  if (command != Command::train) {
    const auto& info = command_info(command);
    out << "usage: " << executable << " " << info.name << (command == Command::plan ? " [--config FILE]..." : "")
        << (*info.synopsis ? " " : "") << info.synopsis << " [--key value | --key=value]...\n\n  "
        << wrap(info.summary, 2) << "\n";
    return;
  }
  out << "usage: " << executable << " [";
  for (const auto& info : command_list()) out << (info.command == Command::train ? "" : "|") << info.name;
  out << "] [--config FILE]... [--key value | --key=value]...\n\n";
  for (const auto& info : command_list())
    out << "  " << std::left << std::setw(9) << info.name << " " << wrap(info.summary, 12) << "\n";
  out << "\n  `" << executable << " COMMAND --help` lists the options of that command; evaluate, predict, serve and\n"
      << "  export read the run's settings from run.json and refuse an option they would not obey.\n\n";
}

/// The part of --help that names the compiled experiment, its defaults and where data and models are found.
template <class E>
void print_experiment(std::ostream& out, const Program& program, const RunConfig& defaults) {
  const char* data_env = std::getenv("GENNER_DATA");
  out << "Experiment " << program.name << " ("
      << (program.any_family
              ? "NER of the family --family names: flat, nested or discontinuous; now " +
                    std::string(family_name(defaults.family))
              : std::string(family_name(program.family)) + " NER")
      << "), compiled for:\n  " << describe(E::spec()) << "\n"
      << "What it is compiled for is not a setting: peft, adapter_size, prompt_length, encoder_mlp and\n"
      << "avg_feature in a config file or on the command line are checked against it, and a contradicting\n"
      << "value (or scratch_* for a static backbone) is refused, naming the executables that have it.\n\n"
      << "Defaults of this executable (shown with each option below): --model " << defaults.model
      << "; config files:";
  if (program.configs.empty())
    out << " none; the built-in settings of the " << (program.any_family ? "chosen family's" : "family's")
        << " sample stand in (--config replaces them)";
  for (const auto& p : default_config_paths(program)) out << ' ' << p.string();
  out << "\n--model: 'scratch' (random weights), a folder of that name in the current directory, a name\n"
      << "under $GENNER_MODELS (now " << models_root().string() << "), or a path starting with /, ./ or ../\n"
      << "Data: --data_dir, else $GENNER_DATA/<dataset> (GENNER_DATA is now "
      << (data_env && *data_env ? std::string(data_env) : std::string("unset: ../shared/data")) << ")\n";
  if (defaults.dataset == "sample" && defaults.model == "scratch")
    out << "Without settings this executable trains a small model from scratch on genner's synthetic sample\n"
        << "data: it fits that data only and is no model for real text (train on a real data set for that).\n";
}

/// --help of `command`: its usage, what the executable is compiled for (train and plan), and every
/// option the command obeys with this executable's defaults.
template <class E>
void print_usage(const std::string& executable, const Program& program, const RunConfig& defaults,
                 Command command = Command::train) {
  print_commands(std::cout, executable, command);
  if (command == Command::train || command == Command::plan) print_experiment<E>(std::cout, program, defaults);
  std::cout << "\n" << help_text(executable, defaults, /*usage=*/false, command);
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

/// Checks what the option table cannot of a command's own options and resolves what they leave to
/// the command: predict's format (--format, else the extension of --predictions, else jsonl) and
/// export's (hf or peft; empty: chosen by the run).
inline void resolve_command_options(CommandLine& cl) {
  const auto command = cl.command;
  auto& o = cl.options;
  if (command == Command::evaluate)
    GENNER_CHECK(!cl.on_command_line("output") || !o.output.empty(),
                 "--output: expected a file name for the metrics JSON, found an empty one");
  if (command == Command::predict) {
    GENNER_CHECK(!o.input.empty(), "predict needs --input FILE (one text per line; - reads standard input)");
    const auto implied =
        o.predictions.empty() || o.predictions == "-" ? std::string() : format_of_extension(o.predictions);
    if (!o.format.empty()) {
      (void)recognize::parse_format(o.format);
      GENNER_CHECK(implied.empty() || implied == o.format, "--format ", o.format, " disagrees with --predictions ",
                   o.predictions, ", whose extension means ", implied, "; drop --format or rename the file");
    } else {
      o.format = implied.empty() ? "jsonl" : implied;
    }
  }
  if (command == Command::export_) {
    GENNER_CHECK(!o.to.empty(), "export needs --to DIR: the new folder to write");
    GENNER_CHECK(o.format.empty() || o.format == "hf" || o.format == "peft",
                 "--format: export writes hf (a Hugging Face folder) or peft (a PEFT LoRA folder), found '", o.format,
                 "'");
  }
}

/// Data parallelism: RANK/WORLD_SIZE in the environment make this process one rank; --nproc N
/// without them starts N local ranks of this program, waits for them and returns their status.
inline std::optional<int> launch_ranks(const CommandLine& cl, train::dist::Group& group, char** argv) {
  const RunConfig& cfg = cl.config;
  const bool training = cl.command == Command::train || cl.command == Command::plan;
  const auto env = train::dist::launch_env_from_environment();
  GENNER_CHECK(training || (cfg.nproc == 1 && env.world_size == 1), command_info(cl.command).name,
               " runs in one process; drop --nproc ", cfg.nproc, " / WORLD_SIZE=", env.world_size);
  GENNER_CHECK(!env.from_environment || cfg.nproc == 1 || cfg.nproc == env.world_size, "--nproc ", cfg.nproc,
               " disagrees with WORLD_SIZE=", env.world_size, " set in the environment");
  const auto backend =
      train::dist::parse_backend(cfg.backend, torch::cuda::is_available());  // refuses nccl without NCCL
  if (cl.command != Command::train) return std::nullopt;
  if (cfg.nproc > 1 && !env.from_environment) return train::dist::spawn_local_ranks(static_cast<int>(cfg.nproc), argv);
  if (env.world_size > 1) {
    group = train::dist::Group::connect(
        env, {backend, std::chrono::milliseconds(static_cast<int64_t>(cfg.dist_timeout * 1000))});
    if (!group.is_main()) std::cout.setstate(std::ios::badbit);  // rank 0 alone reports
  }
  return std::nullopt;
}

template <class E>
int run_command(const Program& program, Command command, const std::vector<std::string>& args, char** argv) {
  if (!(static_cast<unsigned>(command) & commands::training))
    for (const auto& a : args)
      GENNER_CHECK(a != "--config" && !a.starts_with("--config="), command_info(command).name,
                   " reads the run's settings from <output_dir>/run.json, not from config files; give a change as "
                   "--key value (see ", command_info(command).name, " --help for those it obeys)");
  auto cl = parse_command_line(args, program_defaults(program), default_configs<E>(program), command);
  if (cl.help) {
    // What this executable uses when nothing is given: its own defaults and config files applied.
    const auto defaults = parse_command_line({}, program_defaults(program), default_configs<E>(program));
    print_usage<E>(fs::path(argv[0]).filename().string(), program, defaults.config, command);
    return 0;
  }
  resolve_command_options(cl);
  train::dist::Group group;
  if (const auto status = launch_ranks(cl, group, argv)) return *status;
  Commands<E> commands(program, std::move(cl), &group);
  switch (command) {
    case Command::train: return commands.train_command();
    case Command::plan: return commands.plan_command();
    case Command::evaluate: return commands.evaluate_command();
    case Command::predict: return commands.predict_command();
    case Command::serve: return commands.serve_command();
    case Command::export_: return commands.export_command();
  }
  return 1;
}

/// main() of an executable compiled for experiment E.
template <class E>
int run(const Program& program, int argc, char** argv) {
  core::prefer_passive_openmp(argv);
  const std::string executable = fs::path(argv[0]).filename().string();
  std::cout << std::unitbuf;  // progress notes interleave with stderr and show up in logs as they happen
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    Command command = Command::train;
    if (!args.empty() && args.front().rfind("--", 0) != 0 && args.front() != "-h") {
      command = parse_command(args.front());
      args.erase(args.begin());
    }
    return run_command<E>(program, command, args, argv);
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
