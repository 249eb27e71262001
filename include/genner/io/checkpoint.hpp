// genner/io/checkpoint.hpp: reading a folder of named tensors written by
// Hugging Face (model.safetensors, sharded model.safetensors.index.json, or
// pytorch_model.bin) and loading named tensors into a module, strictly.
#pragma once

#include <torch/nn/module.h>
#include <torch/serialize.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/io/json_file.hpp>
#include <genner/io/safetensors.hpp>

namespace genner::io {

/// A named tensor of a checkpoint: its shape, dtype and file (for error messages), and either the
/// tensor itself or a reader that fetches it from its file when it is needed, so a checkpoint is
/// loaded one tensor at a time.
struct NamedTensor {
  NamedTensor() = default;
  NamedTensor(at::Tensor t, std::string f)
      : shape(t.sizes().vec()), dtype(t.scalar_type()), file(std::move(f)), tensor(std::move(t)) {}
  NamedTensor(std::vector<int64_t> s, at::ScalarType d, std::string f, std::function<at::Tensor()> r)
      : shape(std::move(s)), dtype(d), file(std::move(f)), read(std::move(r)) {}

  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
  std::string file;
  at::Tensor tensor;                 ///< in memory already (pytorch_model.bin), or undefined
  std::function<at::Tensor()> read;  ///< reads the tensor from `file` (safetensors)

  c10::IntArrayRef sizes() const { return shape; }
  at::Tensor load() const { return tensor.defined() ? tensor : read(); }
};
using TensorMap = std::map<std::string, NamedTensor>;

namespace detail {
inline void add_safetensors(TensorMap& out, const std::filesystem::path& file) {
  auto f = std::make_shared<SafetensorsFile>(file);  // headers now, data tensor by tensor later
  for (const auto& [name, entry] : f->entries()) {
    GENNER_CHECK(!out.count(name), file.string(), ": tensor '", name, "' also appears in ", out[name].file);
    out[name] = NamedTensor(entry.shape, entry.dtype, file.string(), [f, name = name] { return f->load(name); });
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

/// Lists every tensor of a checkpoint folder: model.safetensors, or the shards listed in
/// model.safetensors.index.json, or pytorch_model.bin (in that order of preference). Safetensors
/// are read lazily (NamedTensor::load); a pickle is read whole.
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
/// any other tensor in `tensors` is an error. Checks everything before copying anything; then
/// reads and copies one tensor at a time. `custom` names targets that take their tensor through
/// a function instead of a copy (a weight kept in another storage form).
template <typename Required, typename Ignorable>
LoadReport load_into(torch::nn::Module& module, const TensorMap& tensors, const std::string& source,
                     Required&& required, Ignorable&& ignorable,
                     const std::map<std::string, std::vector<std::string>>& aliases = {},
                     const std::map<std::string, std::function<void(const at::Tensor&)>>& custom = {}) {
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
    GENNER_CHECK(found->sizes() == item.value().sizes(), found->file, ": tensor '", found_name, "' has shape ",
                 found->sizes(), " but the model expects ", item.value().sizes());
    const bool stored_differently = custom.count(name) > 0;  // e.g. int8 storage of a floating weight
    GENNER_CHECK(stored_differently || at::isFloatingType(found->dtype) == at::isFloatingType(item.value().scalar_type()),
                 found->file, ": tensor '", found_name, "' has dtype ", found->dtype, " but the model expects ",
                 item.value().scalar_type());
    used.insert(found_name);
    plan.emplace_back(item.value(), found);
    report.loaded.push_back(name);
  }
  for (const auto& [name, t] : tensors) {
    if (used.count(name)) continue;
    GENNER_CHECK(ignorable(name), t.file, ": tensor '", name, "' matches no parameter of the model");
    report.ignored.push_back(name);
  }
  // One checkpoint tensor in memory at a time beyond the module itself.
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < plan.size(); ++i) {
    auto& [target, src] = plan[i];
    const auto it = custom.find(report.loaded[i]);
    if (it != custom.end())
      it->second(src->load());
    else
      target.copy_(src->load().to(target.device(), target.scalar_type()));
  }
  return report;
}

}  // namespace genner::io
