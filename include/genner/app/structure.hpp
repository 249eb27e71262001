// genner/app/structure.hpp: the compiled experiment as the command-line application shows and
// checks it. An executable is compiled for one experiment alias (genner/model/policies.hpp): its
// backbone shape, what trains, adapters, soft prompt, encoder MLP and head. The names peft,
// adapter_size, prompt_length, encoder_mlp and avg_feature (train::compiled_keys()) are not
// settings: a config file or command line may name them, and a value that contradicts the
// compiled experiment is refused, never obeyed at run time.
// --model names where the backbone's weights come from: `scratch`, a name under the models root,
// or a path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/model/spec.hpp>
#include <genner/t5/config.hpp>

namespace genner::app {

namespace fs = std::filesystem;

/// The PEFT mode an experiment amounts to (the values of the `peft` setting).
inline std::string peft_mode(const model::ExperimentSpec& s) {
  if (s.trainable.backbone) return "full";
  if (s.trainable.embeddings) return "embeddings";
  if (s.adapters.enabled() && s.prompt_length > 0) return "adapters+prompt";
  if (s.adapters.enabled()) return "adapters";
  if (s.prompt_length > 0) return "prompt";
  if (s.lora.enabled()) return "lora";
  return "added";
}

/// The PEFT modes `peft` may name.
inline const std::vector<std::string>& peft_modes() {
  static const std::vector<std::string> m = {"full", "embeddings", "prompt", "adapters", "adapters+prompt", "lora",
                                             "added"};
  return m;
}

/// Refuses a value no experiment could have: peft one of peft_modes(), adapter_size and
/// prompt_length integers of at least 0, encoder_mlp and avg_feature true or false.
inline void check_structure_value(const std::string& key, const nlohmann::json& v, const std::string& where) {
  if (key == "peft") {
    const auto& modes = peft_modes();
    if (v.is_string() && std::find(modes.begin(), modes.end(), v.get<std::string>()) != modes.end()) return;
    std::string list;
    for (const auto& m : modes) list += (list.empty() ? "" : ", ") + m;
    fail(where, ": peft: expected one of ", list, ", found ", v.dump());
  } else if (key == "adapter_size" || key == "prompt_length") {
    GENNER_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, where, ": ", key,
                 ": expected an integer of at least 0, found ", v.dump());
  } else {
    GENNER_CHECK(v.is_boolean(), where, ": ", key, ": expected true or false, found ", v.dump());
  }
}

/// The structure an experiment fixes on backbone `c` (adapter size resolved on it), under the
/// names of train::compiled_keys().
inline nlohmann::json structure_settings(const model::ExperimentSpec& s, const t5::T5Config& c) {
  return {{"peft", peft_mode(s)},
          {"adapter_size", s.adapters.enabled() ? s.adapters.resolved_size(c) : 0},
          {"prompt_length", s.prompt_length},
          {"encoder_mlp", s.encoder_mlp},
          {"avg_feature", s.features == model::PointerFeatures::avg_feature}};
}

/// One line: backbone, what trains, added modules, head, device map.
inline std::string describe(const model::ExperimentSpec& s) {
  std::ostringstream out;
  out << (s.backbone == "dynamic" ? std::string("backbone shape from the checkpoint (DynamicBackbone)")
                                  : "static backbone " + s.backbone.substr(0, s.backbone.find(" vocab=")));
  out << "; trains "
      << (s.trainable.backbone     ? "everything"
          : s.trainable.embeddings ? "embeddings + added modules"
                                   : "added modules");
  if (!s.trainable.backbone && s.trainable.layer_norms) out << " + layer norms";
  out << " (peft " << peft_mode(s) << ")";
  if (s.adapters.enabled()) {
    out << "; adapters "
        << (s.adapters.size > 0 ? std::to_string(s.adapters.size)
                                : std::string("of the published size (192 up to d_model 768, 768 beyond)"))
        << " at blocks " << s.adapters.blocks.to_json().dump() << " of the "
        << (s.adapters.encoder && s.adapters.decoder ? "encoder and decoder"
            : s.adapters.encoder                     ? "encoder"
                                                     : "decoder");
  }
  if (s.prompt_length > 0) out << "; soft prompt " << s.prompt_length;
  if (s.lora.enabled()) {
    out << "; LoRA rank " << s.lora.rank << ", alpha " << s.lora.alpha << " on";
    for (const auto& t : s.lora.targets) out << ' ' << t;
  }
  out << "; encoder MLP " << (s.encoder_mlp ? "on" : "off") << "; head " << model::to_string(s.features);
  if (s.seed_compat) out << "; the original's numerics (SeedCompat)";
  out << "; device map " << s.device_map.to_json().dump();
  return out.str();
}

/// The alias that would compile a wanted structure value (for error messages).
inline std::string alias_for(const std::string& key, const nlohmann::json& value) {
  if (key == "peft") {
    const auto v = value.get<std::string>();
    if (v == "full") return "genner::model::FullFineTuning<B>";
    if (v == "embeddings") return "genner::model::EmbeddingTuning<B>";
    if (v == "prompt") return "genner::model::PromptTuning<B, 100>";
    if (v == "adapters") return "genner::model::AdapterTuning<B>";
    if (v == "adapters+prompt") return "genner::model::AdapterPromptTuning<B>";
    if (v == "lora") return "genner::model::LoraTuning<B, 8>";
    return "genner::model::ExperimentType<B, genner::model::Trainable<genner::model::AddedModules>>";
  }
  if (key == "adapter_size")
    return value.get<int64_t>() == 0 ? "an experiment without the Adapters policy"
                                     : "genner::model::AdapterTuning<B, " + value.dump() + ">";
  if (key == "prompt_length")
    return value.get<int64_t>() == 0 ? "an experiment without the SoftPrompt policy"
                                     : "genner::model::PromptTuning<B, " + value.dump() + ">";
  if (key == "encoder_mlp")
    return value.get<bool>() ? "an experiment without genner::model::NoEncoderMlp"
                             : "genner::model::ExperimentType<B, ..., genner::model::NoEncoderMlp>";
  if (key == "avg_feature")
    return value.get<bool>() ? "genner::model::Head<genner::model::AvgFeature>"
                             : "genner::model::Head<genner::model::HiddenFeatures> or Head<AvgScore>";
  return "another experiment alias";
}

/// Where the backbone's weights come from.
struct ModelSource {
  bool scratch = true;
  fs::path folder;  ///< config.json, model.safetensors (or .bin, sharded) and spiece.model
};

/// The folder named models live in: $GENNER_MODELS, or ../shared/models when unset.
inline fs::path models_root() {
  const char* env = std::getenv("GENNER_MODELS");
  return env && *env ? fs::path(env) : fs::path("../shared/models");
}

/// `scratch`; a path (starting with /, ./ or ../); or a name: a folder of that name in the current
/// directory first (as Hugging Face's from_pretrained looks), else one under models_root().
inline ModelSource resolve_model(const std::string& model) {
  if (model == "scratch") return {};
  const bool path = model.starts_with("/") || model.starts_with("./") || model.starts_with("../");
  std::error_code ec;
  const bool local = !path && fs::is_directory(fs::path(model), ec);
  const fs::path folder = path || local ? fs::path(model) : models_root() / model;
  const std::string where =
      path || local ? std::string()
                    : " (looked for ./" + model +
                          " first, then under the models root: $GENNER_MODELS, or ../shared/models when unset; set "
                          "GENNER_MODELS to the folder holding " +
                          model + "/, or give --model a path starting with /, ./ or ../)";
  GENNER_CHECK(fs::is_directory(folder), "--model ", model, ": no model folder at ", folder.string(), where,
               "; --model scratch trains a T5 from random weights");
  for (const char* file : {"config.json", "spiece.model"})
    GENNER_CHECK(
        fs::exists(folder / file), "--model ", model, ": ", (folder / file).string(),
        " is missing; a model folder holds config.json, model.safetensors and spiece.model (Hugging Face's layout)");
  return {false, folder};
}

}  // namespace genner::app
