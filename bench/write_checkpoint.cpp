// genner_write_checkpoint: writes a T5 of a published shape with random weights as a Hugging Face
// checkpoint folder (config.json, model.safetensors or shards with model.safetensors.index.json,
// and optionally spiece.model), one tensor at a time, so a checkpoint larger than memory (t5-11b)
// can be written on a small machine. Weights follow T5's own initialisation (seeded).
//
//   genner_write_checkpoint DIR --preset t5-3b [--dtype fp32|bf16] [--max_shard_size 10GB]
//                               [--seed 0] [--spiece PATH]
#include <genner/model/memory_plan.hpp>
#include <genner/t5.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace t5 = genner::t5;

namespace {

t5::T5Config preset(const std::string& name) {
  const std::map<std::string, t5::T5Config> presets = {
      {"t5-small", t5::T5Small::config()},           {"t5-base", t5::T5Base::config()},
      {"t5-large", t5::T5Large::config()},           {"t5-3b", t5::T5_3B::config()},
      {"t5-11b", t5::T5_11B::config()},              {"flan-t5-small", t5::FlanT5Small::config()},
      {"flan-t5-base", t5::FlanT5Base::config()},    {"flan-t5-large", t5::FlanT5Large::config()},
      {"flan-t5-xl", t5::FlanT5XL::config()},        {"flan-t5-xxl", t5::FlanT5XXL::config()},
  };
  const auto it = presets.find(name);
  if (it == presets.end()) {
    std::string names;
    for (const auto& [k, v] : presets) names += " " + k;
    genner::fail("--preset: expected one of", names, ", found '", name, "'");
  }
  return it->second;
}

/// T5's initialisation of one backbone tensor (Hugging Face's _init_weights, factor 1).
torch::Tensor initial(const std::string& name, const std::vector<int64_t>& shape, const t5::T5Config& c) {
  const auto ends = [&](const char* s) { return name.ends_with(s); };
  if (ends("layer_norm.weight")) return torch::ones(shape);
  double std = 1.0;
  const double d = static_cast<double>(c.d_model), kv = static_cast<double>(c.d_kv);
  const double inner = static_cast<double>(c.num_heads * c.d_kv), ff = static_cast<double>(c.d_ff);
  if (ends(".q.weight"))
    std = 1.0 / std::sqrt(d * kv);
  else if (ends(".k.weight") || ends(".v.weight") || ends("relative_attention_bias.weight"))
    std = 1.0 / std::sqrt(d);
  else if (ends(".o.weight"))
    std = 1.0 / std::sqrt(inner);
  else if (ends(".wo.weight"))
    std = 1.0 / std::sqrt(ff);
  else if (ends(".wi.weight") || ends(".wi_0.weight") || ends(".wi_1.weight") || ends("lm_head.weight"))
    std = 1.0 / std::sqrt(d);
  return torch::randn(shape) * std;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: genner_write_checkpoint DIR --preset NAME [--dtype fp32|bf16] [--max_shard_size 10GB]\n"
                 "                               [--seed 0] [--spiece PATH]\n"
                 "Writes a T5 of a published shape with random weights as a Hugging Face folder, one tensor\n"
                 "at a time (presets: t5-small, t5-base, t5-large, t5-3b, t5-11b, flan-t5-small .. flan-t5-xxl).\n";
    return args.empty() ? 2 : 0;
  }
  const fs::path dir = args[0];
  std::map<std::string, std::string> opt = {
      {"--preset", ""}, {"--dtype", "fp32"}, {"--max_shard_size", "10GB"}, {"--seed", "0"}, {"--spiece", ""}};
  for (size_t i = 1; i < args.size(); i += 2) {
    GENNER_CHECK(opt.count(args[i]), "unknown option '", args[i], "' (see --help)");
    GENNER_CHECK(i + 1 < args.size(), args[i], " needs a value");
    opt[args[i]] = args[i + 1];
  }
  GENNER_CHECK(!opt["--preset"].empty(), "--preset is required (see --help)");
  GENNER_CHECK(opt["--dtype"] == "fp32" || opt["--dtype"] == "bf16", "--dtype: expected fp32 or bf16, found '",
               opt["--dtype"], "'");
  const auto dtype = opt["--dtype"] == "bf16" ? torch::kBFloat16 : torch::kFloat;
  const auto shard_limit = genner::model::parse_bytes(opt["--max_shard_size"], "--max_shard_size");
  const auto config = preset(opt["--preset"]);
  torch::manual_seed(std::stoull(opt["--seed"]));

  // Names and shapes from a T5 whose weights are never touched.
  std::vector<genner::io::TensorPlan> all;
  {
    t5::SkipInit uninitialised;
    t5::T5 shape(config);
    for (const auto& p : shape->named_parameters(true)) all.push_back({p.key(), dtype, p.value().sizes().vec()});
  }
  std::vector<std::vector<genner::io::TensorPlan>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const auto& p : all) {
    if (in_shard > 0 && in_shard + p.bytes() > static_cast<uint64_t>(shard_limit)) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(p);
    in_shard += p.bytes();
    total += p.bytes();
  }
  fs::create_directories(dir);
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json weight_map = nlohmann::json::object();
  size_t written = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : name;
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& p : shards[s]) shapes[p.name] = p.shape;
    genner::io::save_safetensors_streamed(dir / file, shards[s], [&](const std::string& n) {
      ++written;
      std::cerr << "\r  " << written << " / " << all.size() << " tensors" << std::flush;
      return initial(n, shapes.at(n), config).to(dtype);
    });
    for (const auto& p : shards[s]) weight_map[p.name] = file;
  }
  std::cerr << "\n";
  if (shards.size() > 1)
    genner::io::write_text_atomically(
        dir / "model.safetensors.index.json",
        nlohmann::json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(2) + "\n");
  genner::io::write_text_atomically(dir / "config.json", config.to_json().dump(2) + "\n");
  if (!opt["--spiece"].empty()) fs::copy_file(opt["--spiece"], dir / "spiece.model", fs::copy_options::overwrite_existing);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "Wrote " << opt["--preset"] << " (" << config.describe() << ") to " << dir.string() << ": "
            << all.size() << " tensors, " << genner::model::format_bytes(static_cast<int64_t>(total)) << " in "
            << shards.size() << " file(s), " << opt["--dtype"] << ", in " << seconds << " s\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "genner_write_checkpoint: error: " << e.what() << "\n";
    return 1;
  }
}
