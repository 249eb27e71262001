// genner/model/checkpoint.hpp: checkpoints of what an experiment trained — only
// the trainable tensors (label rows included) as safetensors with a JSON
// description of the experiment in __metadata__ — and LoRA factors in Hugging
// Face PEFT's layout (adapter_config.json + adapter_model.safetensors).
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/io/atomic_file.hpp>
#include <genner/io/safetensors.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/t5/parameter_names.hpp>

namespace genner::model {

/// What a trained-tensors checkpoint must agree on with the model it is loaded into.
inline nlohmann::json trained_description(const NerModelCore& m) {
  return {{"experiment", m.spec().to_json()},
          {"config", m.config().to_json()},
          {"num_types", m.num_types()},
          {"label_token_offset", m.label_token_offset()}};
}

/// Writes the trainable tensors of `m` to `path` (temporary file, then rename).
inline void save_trained(const NerModelCore& m, const std::filesystem::path& path) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, p] : m.trainable_parameters()) tensors.emplace(name, p);
  io::save_safetensors(path, tensors, {{"format", "pt"}, {"genner", trained_description(m).dump()}});
}

/// Loads a save_trained checkpoint; a checkpoint of another experiment, backbone shape or
/// number of types is an error that names both.
inline void load_trained(NerModelCore& m, const std::filesystem::path& path) {
  io::SafetensorsFile file(path);
  const auto& meta = file.metadata();
  GENNER_CHECK(meta.is_object() && meta.contains("genner") && meta["genner"].is_string(), path.string(),
               ": not a genner checkpoint of trained tensors (no 'genner' entry in __metadata__)");
  const nlohmann::json saved = parse_json(meta["genner"].get<std::string>(), path.string() + ": the 'genner' metadata");
  const auto ours = trained_description(m);
  GENNER_CHECK(saved.value("experiment", nlohmann::json()) == ours["experiment"], path.string(),
               ": was trained with experiment ", json_excerpt(saved.value("experiment", nlohmann::json()), 400),
               " but this model is ", ours["experiment"].dump(),
               "; build the model with the experiment alias the checkpoint was saved from");
  const auto saved_config = t5::T5Config::from_json(saved.value("config", nlohmann::json::object()), path.string());
  GENNER_CHECK(saved_config.same_structure(m.config()), path.string(), ": was trained on a backbone with ",
               saved_config.describe(), " but this model has ", m.config().describe());
  GENNER_CHECK(saved.value("num_types", int64_t{-1}) == m.num_types() &&
                   saved.value("label_token_offset", int64_t{-1}) == m.label_token_offset(),
               path.string(), ": was trained with ", saved.value("num_types", int64_t{-1}),
               " entity types (label tokens from id ", saved.value("label_token_offset", int64_t{-1}),
               ") but this model has ", m.num_types(), " (from id ", m.label_token_offset(), ")");
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : m.trainable_parameters()) {
    expected.insert(name);
    GENNER_CHECK(file.contains(name), path.string(), ": tensor '", name, "' is missing");
    auto t = file.load(name);
    GENNER_CHECK(t.sizes() == p.sizes(), path.string(), ": tensor '", name, "' has shape ", t.sizes(),
                 " but the model expects ", p.sizes());
    io::check_finite_weights(t, path, name);
    p.copy_(t.to(p.device()).to(p.scalar_type()));
  }
  for (const auto& [name, entry] : file.entries())
    GENNER_CHECK(expected.count(name), path.string(), ": tensor '", name,
                 "' is not a trainable parameter of this model");
}

/// The frozen parameters of `m` (every parameter that save_trained leaves out), by name.
inline std::map<std::string, at::Tensor> frozen_parameters(const NerModelCore& m) {
  std::set<std::string> trainable;
  for (const auto& [name, p] : m.trainable_parameters()) trainable.insert(name);
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters(true))
    if (!trainable.count(p.key())) out.emplace(p.key(), p.value());
  return out;
}

/// Writes the frozen parameters of `m`: with save_trained's file, everything needed to restore
/// a model whose frozen part is not a published checkpoint (a randomly initialised backbone).
inline void save_frozen(const NerModelCore& m, const std::filesystem::path& path) {
  io::save_safetensors(path, frozen_parameters(m), {{"format", "pt"}, {"genner", trained_description(m).dump()}});
}

/// Loads a save_frozen file; every frozen parameter must be there with its shape.
inline void load_frozen(NerModelCore& m, const std::filesystem::path& path) {
  io::SafetensorsFile file(path);
  const auto frozen = frozen_parameters(m);
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : frozen) {
    GENNER_CHECK(file.contains(name), path.string(), ": frozen tensor '", name, "' is missing");
    auto t = file.load(name);
    GENNER_CHECK(t.sizes() == p.sizes(), path.string(), ": tensor '", name, "' has shape ", t.sizes(),
                 " but the model expects ", p.sizes());
    io::check_finite_weights(t, path, name);
    p.copy_(t.to(p.device()).to(p.scalar_type()));
  }
  for (const auto& [name, entry] : file.entries())
    GENNER_CHECK(frozen.count(name), path.string(), ": tensor '", name, "' is not a frozen parameter of this model");
}

// ---- Hugging Face PEFT (LoRA) --------------------------------------------------------------------

namespace detail {
inline bool is_lora_name(const std::string& n) { return t5::parameter_kind(n) == t5::ParameterKind::lora; }
/// `t5.encoder...q.lora_A.weight` -> `base_model.model.encoder...q.lora_A.weight`.
inline std::string peft_name(const std::string& n) { return "base_model.model." + n.substr(3); }
}  // namespace detail

/// Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors` as PEFT lays them out.
inline void export_peft_lora(const NerModelCore& m, const std::filesystem::path& dir,
                             const std::string& base_model_name_or_path = "") {
  const auto& lora = m.spec().lora;
  GENNER_CHECK(lora.enabled(), "export_peft_lora: the experiment has no LoRA factors; add a Lora<...> policy");
  std::map<std::string, at::Tensor> tensors;
  for (const auto& p : m.named_parameters(true))
    if (detail::is_lora_name(p.key())) tensors.emplace(detail::peft_name(p.key()), p.value());
  nlohmann::json config = {{"peft_type", "LORA"},
                           {"task_type", "SEQ_2_SEQ_LM"},
                           {"r", lora.rank},
                           {"lora_alpha", lora.alpha},
                           {"target_modules", lora.targets},
                           {"lora_dropout", 0.0},
                           {"bias", "none"},
                           {"fan_in_fan_out", false},
                           {"inference_mode", true},
                           {"init_lora_weights", true},
                           {"modules_to_save", nullptr},
                           {"layers_to_transform", nullptr},
                           {"base_model_name_or_path", base_model_name_or_path}};
  std::filesystem::create_directories(dir);
  io::save_safetensors(dir / "adapter_model.safetensors", tensors);
  io::write_text_atomically(dir / "adapter_config.json", config.dump(2) + "\n");
}

/// Loads PEFT LoRA factors into `m`; rank, alpha and targets must equal the experiment's.
inline void import_peft_lora(NerModelCore& m, const std::filesystem::path& dir) {
  const auto config_path = dir / "adapter_config.json";
  std::ifstream in(config_path);
  GENNER_CHECK(in.good(), config_path.string(), ": cannot open the PEFT adapter config");
  nlohmann::json c;
  try {
    in >> c;
  } catch (const nlohmann::json::exception& e) {
    fail(config_path.string(), ": not valid JSON (", e.what(), ")");
  }
  const auto& lora = m.spec().lora;
  GENNER_CHECK(c.value("peft_type", "") == "LORA", config_path.string(), ": peft_type is '", c.value("peft_type", ""),
               "', expected 'LORA'");
  GENNER_CHECK(lora.enabled(), config_path.string(), ": holds LoRA factors but the experiment has no Lora<...> policy");
  auto targets = c.value("target_modules", std::vector<std::string>{});
  auto ours = lora.targets;
  std::sort(targets.begin(), targets.end());
  std::sort(ours.begin(), ours.end());
  GENNER_CHECK(c.value("r", int64_t{-1}) == lora.rank && c.value("lora_alpha", -1.0) == lora.alpha && targets == ours,
               config_path.string(), ": has r=", c.value("r", int64_t{-1}), " lora_alpha=", c.value("lora_alpha", -1.0),
               " target_modules=", nlohmann::json(targets).dump(), " but the experiment has Lora<", lora.rank, ", ",
               lora.alpha, "> on ", nlohmann::json(ours).dump());
  io::SafetensorsFile file(dir / "adapter_model.safetensors");
  torch::NoGradGuard no_grad;
  for (const auto& p : m.named_parameters(true)) {
    if (!detail::is_lora_name(p.key())) continue;
    const auto name = detail::peft_name(p.key());
    GENNER_CHECK(file.contains(name), file.path().string(), ": tensor '", name, "' is missing");
    auto t = file.load(name);
    GENNER_CHECK(t.sizes() == p.value().sizes(), file.path().string(), ": tensor '", name, "' has shape ", t.sizes(),
                 " but the model expects ", p.value().sizes());
    io::check_finite_weights(t, file.path(), name);
    p.value().copy_(t.to(p.value().device()).to(p.value().scalar_type()));
  }
}

}  // namespace genner::model
