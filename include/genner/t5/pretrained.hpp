// genner/t5/pretrained.hpp: building a T5 from a Hugging Face checkpoint folder
// (config.json + weights) and writing one back that Hugging Face can load.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <genner/io/atomic_file.hpp>
#include <genner/io/checkpoint.hpp>
#include <genner/io/safetensors.hpp>
#include <genner/t5/config.hpp>
#include <genner/t5/model.hpp>
#include <genner/t5/parameter_names.hpp>

namespace genner::t5 {

/// True for parameter names that belong to the plain T5 (not adapters, LoRA factors, ...).
inline bool is_backbone_parameter(const std::string& name) { return !is_added_to_t5(parameter_kind(name)); }

/// Names Hugging Face checkpoints may hold that a genner T5 has no parameter for.
inline bool is_known_extra(const std::string& name, const T5Config& c, const T5Structure& s = {}) {
  return name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight" ||
         ((c.tie_word_embeddings || !s.lm_head) && name == "lm_head.weight") ||
         // old checkpoints carry an unused cross-attention bias table; Hugging Face ignores it too
         name == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight";
}

/// Loads the backbone weights of `model` from a checkpoint folder, one tensor at a time; strict
/// about names and shapes. Projections kept in bf16 or int8 (ProjectionImpl::store_frozen) are
/// filled in their storage form, so no full-precision copy of them is ever held.
inline io::LoadReport load_weights(T5Impl& model, const std::filesystem::path& dir) {
  const auto tensors = io::read_checkpoint_folder(dir);
  const T5Config& c = model.config();
  std::map<std::string, std::function<void(const at::Tensor&)>> stored;
  for (const auto& item : model.named_modules()) {
    auto* proj = item.value()->as<ProjectionImpl>();
    if (!proj || proj->storage() == WeightStorage::fp32) continue;
    const auto name = item.key() + ".weight";
    stored[name] = [proj, name, dir](const at::Tensor& w) { proj->load_weight(w, dir.string() + ": tensor '" + name + "'"); };
  }
  auto report = io::load_into(
      model, tensors, dir.string(), [](const std::string& n) { return is_backbone_parameter(n); },
      [&](const std::string& n) { return is_known_extra(n, c, model.structure()); },
      {{"shared.weight", {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}}}, stored);
  // A corrupt checkpoint is named here, not later as a diverging loss.
  at::NoGradGuard no_grad;
  for (const auto& p : model.named_parameters(true))
    if (is_backbone_parameter(p.key()) && p.value().is_floating_point())
      GENNER_CHECK(at::isfinite(p.value()).all().item<bool>(), dir.string(), ": tensor '", p.key(),
                   "' holds NaN or infinite values; the checkpoint is corrupt (expected finite weights)");
  return report;
}

/// Reads `dir/config.json`, checks it against the backbone policy B, builds the T5 with
/// `structure` — its backbone weights uninitialised, projection weights directly in
/// `projections` storage (bf16 or int8 where the caller's experiment freezes them) — and loads
/// its weights tensor by tensor.
template <Backbone B = DynamicBackbone>
T5 load_pretrained(const std::filesystem::path& dir, const T5Structure& structure = {},
                   io::LoadReport* report = nullptr, WeightStorage projections = WeightStorage::fp32) {
  const auto config_path = dir / "config.json";
  std::optional<T5Config> from_file;
  if (std::filesystem::exists(config_path)) from_file = T5Config::from_file(config_path);
  T5Config config = resolve_config<B>(from_file, config_path.string());
  T5 model(nullptr);
  {
    SkipInit uninitialised(projections);
    model = T5(config, structure);
  }
  auto r = load_weights(*model, dir);
  if (report) *report = std::move(r);
  return model;
}

/// Writes `dir/config.json` and `dir/model.safetensors` as Hugging Face lays them out
/// (backbone parameters only; tied aliases omitted). An untied T5 built without its LM head writes
/// none, as Hugging Face's T5Model does.
inline void save_pretrained(T5Impl& model, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& p : model.named_parameters(true))
    if (is_backbone_parameter(p.key())) tensors.emplace(p.key(), p.value());
  io::save_safetensors(dir / "model.safetensors", tensors);
  io::write_text_atomically(dir / "config.json", model.config().to_json().dump(2) + "\n");
}

}  // namespace genner::t5
