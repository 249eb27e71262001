// genner/io/checkpoint.hpp: reading a folder of named tensors written by
// Hugging Face (model.safetensors, sharded model.safetensors.index.json, or
// pytorch_model.bin) and loading named tensors into a module, strictly.
#pragma once

#include <torch/nn/module.h>
#include <torch/serialize.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/io/json_file.hpp>
#include <genner/io/safetensors.hpp>

namespace genner::io {

/// A named tensor together with the file it came from (for error messages).
struct NamedTensor {
  at::Tensor tensor;
  std::string file;
};
using TensorMap = std::map<std::string, NamedTensor>;

namespace detail {
inline void add_safetensors(TensorMap& out, const std::filesystem::path& file) {
  SafetensorsFile f(file);
  for (const auto& [name, entry] : f.entries()) {
    GENNER_CHECK(!out.count(name), file.string(), ": tensor '", name, "' also appears in ", out[name].file);
    out[name] = {f.load(name), file.string()};
  }
}

inline void add_pickle(TensorMap& out, const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  GENNER_CHECK(in.good(), file.string(), ": cannot open for reading");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    fail(file.string(), ": not a readable PyTorch checkpoint (", e.what(), ")");
  }
  GENNER_CHECK(value.isGenericDict(), file.string(), ": expected a dictionary of tensors, found ", value.tagKind());
  for (const auto& item : value.toGenericDict()) {
    GENNER_CHECK(item.key().isString() && item.value().isTensor(), file.string(),
                 ": expected string keys and tensor values, found ", item.key().tagKind(), " -> ",
                 item.value().tagKind());
    out[item.key().toStringRef()] = {item.value().toTensor().contiguous(), file.string()};
  }
}
}  // namespace detail

/// Reads every tensor of a checkpoint folder: model.safetensors, or the shards listed in
/// model.safetensors.index.json, or pytorch_model.bin (in that order of preference).
inline TensorMap read_checkpoint_folder(const std::filesystem::path& dir) {
  GENNER_CHECK(std::filesystem::is_directory(dir), dir.string(), ": checkpoint folder not found");
  TensorMap out;
  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  const auto bin = dir / "pytorch_model.bin";
  if (std::filesystem::exists(single)) {
    detail::add_safetensors(out, single);
  } else if (std::filesystem::exists(index)) {
    const nlohmann::json j = read_json_file(index);
    GENNER_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
                 ": expected an object 'weight_map' from tensor names to shard files");
    std::map<std::string, std::set<std::string>> shards;
    for (const auto& [name, shard] : j["weight_map"].items()) shards[shard.get<std::string>()].insert(name);
    for (const auto& [shard, names] : shards) {
      const auto path = dir / shard;
      GENNER_CHECK(std::filesystem::exists(path), index.string(), ": shard '", shard, "' (holding '", *names.begin(),
                   "') is missing");
      TensorMap part;
      detail::add_safetensors(part, path);
      for (const auto& name : names)
        GENNER_CHECK(part.count(name), index.string(), ": says '", name, "' is in ", shard,
                     " but that shard does not hold it");
      for (auto& [name, t] : part) out[name] = std::move(t);
    }
  } else if (std::filesystem::exists(bin)) {
    detail::add_pickle(out, bin);
  } else {
    fail(dir.string(), ": no model.safetensors, model.safetensors.index.json or pytorch_model.bin found");
  }
  return out;
}

/// What a strict load did besides loading: names it ignored on purpose.
struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> ignored;
};

/// Copies tensors into `module`'s parameters and buffers by name. Every parameter for which
/// `required(name)` holds must be present with its exact shape; `aliases` maps a parameter
/// name to alternative names to look for; names in `ignorable` may be present and are skipped;
/// any other tensor in `tensors` is an error. Checks everything before copying anything.
template <typename Required, typename Ignorable>
LoadReport load_into(torch::nn::Module& module, const TensorMap& tensors, const std::string& source,
                     Required&& required, Ignorable&& ignorable,
                     const std::map<std::string, std::vector<std::string>>& aliases = {}) {
  LoadReport report;
  std::vector<std::pair<at::Tensor, const NamedTensor*>> plan;
  std::set<std::string> used;
  auto targets = module.named_parameters(true);
  for (const auto& b : module.named_buffers(true)) targets.insert(b.key(), b.value());
  for (const auto& item : targets) {
    const std::string& name = item.key();
    const NamedTensor* found = nullptr;
    std::string found_name = name;
    if (auto it = tensors.find(name); it != tensors.end()) {
      found = &it->second;
    } else if (auto a = aliases.find(name); a != aliases.end()) {
      for (const auto& alt : a->second)
        if (auto it2 = tensors.find(alt); it2 != tensors.end()) {
          found = &it2->second;
          found_name = alt;
          break;
        }
    }
    if (!found) {
      GENNER_CHECK(!required(name), source, ": tensor '", name, "' is missing (expected shape ", item.value().sizes(),
                   ")");
      continue;
    }
    GENNER_CHECK(found->tensor.sizes() == item.value().sizes(), found->file, ": tensor '", found_name, "' has shape ",
                 found->tensor.sizes(), " but the model expects ", item.value().sizes());
    GENNER_CHECK(at::isFloatingType(found->tensor.scalar_type()) == at::isFloatingType(item.value().scalar_type()),
                 found->file, ": tensor '", found_name, "' has dtype ", found->tensor.scalar_type(),
                 " but the model expects ", item.value().scalar_type());
    used.insert(found_name);
    plan.emplace_back(item.value(), found);
    report.loaded.push_back(name);
  }
  for (const auto& [name, t] : tensors) {
    if (used.count(name)) continue;
    GENNER_CHECK(ignorable(name), t.file, ": tensor '", name, "' matches no parameter of the model");
    report.ignored.push_back(name);
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, src] : plan) target.copy_(src->tensor.to(target.device(), target.scalar_type()));
  return report;
}

}  // namespace genner::io
