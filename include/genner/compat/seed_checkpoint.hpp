// genner/compat/seed_checkpoint.hpp: imports a checkpoint of the original system (the T5 branch of
// BARTNER: a `state_dict.safetensors` under its own parameter names, tensors that alias one
// another stored once with the alias map in `__metadata__["aliases"]`) into a genner NER model.
//
// Names map as follows (prefix `seq2seq_model.` dropped):
//   encoder[.model].t5_encoder.X / decoder.decoder[.model].t5_encoder.X -> t5.encoder.X / t5.decoder.X,
//   with `block.i.block.layer` -> `block.i.layer`, `<Sublayer>.model.` -> `<Sublayer>.`,
//   `<Sublayer>.adapter.0` -> `adapter.down`, `<Sublayer>.adapter.2` -> `adapter.up`;
//   `...embed_tokens.weight` -> t5.shared.weight, whose rows min(label ids).. become label_embeddings
//   and row max(label ids)+1 (the original's end-index row) eos_embedding (SeedCompat models);
//   `encoder[.model].soft_prompt_embed.weight` -> soft_prompt; `decoder.encoder_mlp.i` -> encoder_mlp.i;
//   `decoder.mapping` ([</s>, label ids in type order]) -> the model's label tokens.
// Every stored tensor must find a place of the same shape, and every parameter of the model must be
// filled; otherwise genner::Error names the tensor. The original builds on T5Model, so its checkpoints
// of untied backbones (v1.1, FLAN) hold no LM head; genner's NER models build none (the pointer head
// never reads it), so there is nothing to fill and no head is invented.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/io/safetensors.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/model/policies.hpp>
#include <genner/t5/parameter_names.hpp>

namespace genner::compat {

namespace gm = genner::model;

/// The original's four tuning modes as genner experiments reproducing its numerics (SeedCompat):
/// no avg_feature (the original's `decoder_type=None`), encoder MLP on; in the adapter modes the
/// layer norms stay frozen (the original lists them for the optimizer but never trains them).
template <class B = gm::Auto>
using SeedFinetune = gm::ExperimentType<B, gm::Trainable<gm::Everything>, gm::Head<gm::HiddenFeatures>, gm::SeedCompat>;
template <class B = gm::Auto, int64_t N = 1>
using SeedPrompt = gm::ExperimentType<B, gm::SoftPrompt<N>, gm::Head<gm::HiddenFeatures>, gm::SeedCompat>;
template <class B = gm::Auto, int64_t Size = 16>
using SeedAdapter = gm::ExperimentType<B, gm::Adapters<Size>, gm::Trainable<gm::AddedModules, gm::WithoutLayerNorms>,
                                       gm::Head<gm::HiddenFeatures>, gm::SeedCompat>;
template <class B = gm::Auto, int64_t Size = 16, int64_t N = 1>
using SeedAdapterPrompt =
    gm::ExperimentType<B, gm::Adapters<Size>, gm::SoftPrompt<N>, gm::Trainable<gm::AddedModules, gm::WithoutLayerNorms>,
                       gm::Head<gm::HiddenFeatures>, gm::SeedCompat>;

/// genner's name for one of the original's parameter names; nullopt when it has no place.
/// The embedding table and `decoder.mapping` are handled by load_seed_state_dict.
[[nodiscard]] inline std::optional<std::string> seed_parameter_name(std::string_view original) {
  std::string n(original);
  const std::string prefix = "seq2seq_model.";
  if (n.rfind(prefix, 0) != 0) return std::nullopt;
  n = n.substr(prefix.size());
  static const std::regex stack(R"(^(encoder(\.model)?|decoder\.decoder(\.model)?)\.t5_encoder\.)");
  std::smatch m;
  if (std::regex_search(n, m, stack)) {
    const std::string which = m.str(1).rfind("encoder", 0) == 0 ? "t5.encoder." : "t5.decoder.";
    n = which + m.suffix().str();
    if (n.ends_with(".embed_tokens.weight")) return "t5.shared.weight";
    n = std::regex_replace(n, std::regex(R"(\.block\.(\d+)\.block\.layer\.)"), ".block.$1.layer.");
    n = std::regex_replace(n, std::regex(R"(\.(SelfAttention|EncDecAttention|DenseReluDense)\.model\.)"), ".$1.");
    // genner's adapter belongs to the sublayer (layer.j.adapter), the original's to the module in it.
    n = std::regex_replace(n, std::regex(R"(\.(SelfAttention|EncDecAttention|DenseReluDense)\.adapter\.0\.)"),
                           ".adapter.down.");
    n = std::regex_replace(n, std::regex(R"(\.(SelfAttention|EncDecAttention|DenseReluDense)\.adapter\.2\.)"),
                           ".adapter.up.");
    return n;
  }
  if (n == "encoder.soft_prompt_embed.weight" || n == "encoder.model.soft_prompt_embed.weight") return "soft_prompt";
  if (n == "encoder.embed_tokens.weight" || n == "decoder.decoder.embed_tokens.weight" ||
      n == "decoder.decoder.model.embed_tokens.weight")
    return "t5.shared.weight";
  if (n.rfind("decoder.encoder_mlp.", 0) == 0) return n.substr(std::string("decoder.").size());
  return std::nullopt;
}

/// What an import placed.
struct SeedImport {
  std::vector<int64_t> label_tokens;          ///< token id of each type, in type order
  std::map<std::string, std::string> placed;  ///< original name -> genner name
};

namespace detail {

/// Throws unless every alias in the file's `__metadata__["aliases"]` points at a stored tensor.
inline void check_seed_aliases(const io::SafetensorsFile& st, const std::string& where) {
  // Aliases must point at stored tensors.
  if (st.metadata().is_object() && st.metadata().contains("aliases")) {
    const auto& raw = st.metadata().at("aliases");
    const auto aliases = raw.is_string() ? parse_json(raw.get<std::string>(), where + ": metadata 'aliases'") : raw;
    for (const auto& [alias, target] : aliases.items())
      GENNER_CHECK(st.contains(target.get<std::string>()), where, ": alias '", alias, "' points at '",
                   target.get<std::string>(), "', which the file does not store");
  }
}

/// Throws unless the import `filled` every parameter of `params` (an untied LM head has its own message).
inline void check_seed_filled(const torch::OrderedDict<std::string, torch::Tensor>& params,
                              const std::set<std::string>& filled, const std::string& where) {
  for (const auto& p : params) {
    // The original builds on T5Model, which has no LM head; genner's NER models build none either.
    GENNER_CHECK(filled.count(p.key()) == 1 || t5::parameter_kind(p.key()) != t5::ParameterKind::lm_head, where,
                 ": the model has an untied LM head '", p.key(),
                 "', but the original's checkpoints hold none (it builds on T5Model and its NER model never reads "
                 "one); build the backbone without it (t5::T5Structure::lm_head = false, as genner's NER models do) "
                 "rather than keep a head no checkpoint fills");
    GENNER_CHECK(filled.count(p.key()) == 1, where, ": no tensor of the checkpoint fills genner's '", p.key(),
                 "' (shape ", p.value().sizes(), ")");
  }
}

}  // namespace detail

/// Loads the original's `state_dict.safetensors` into `model` (see the top of this file). The
/// model must have as many types as the checkpoint has labels, and its label offset must be the
/// smallest label id.
inline SeedImport load_seed_state_dict(gm::NerModelCore& model, const std::filesystem::path& file) {
  const io::SafetensorsFile st(file);
  const std::string where = file.string();
  detail::check_seed_aliases(st, where);
  SeedImport out;
  // Label tokens from the decoder's mapping: [</s>, label ids in type order].
  const std::string mapping_name = "seq2seq_model.decoder.mapping";
  GENNER_CHECK(st.contains(mapping_name), where, ": expected the tensor '", mapping_name,
               "' (</s> and the label token ids), found none");
  const auto mapping = st.load(mapping_name).to(torch::kLong).contiguous();
  GENNER_CHECK(mapping.dim() == 1 && mapping.size(0) == model.num_types() + 1, where, ": '", mapping_name,
               "' has shape ", mapping.sizes(), " but the model has ", model.num_types(), " types (expected [",
               model.num_types() + 1, "])");
  out.label_tokens.assign(mapping.data_ptr<int64_t>() + 1, mapping.data_ptr<int64_t>() + mapping.size(0));
  const int64_t lo = *std::min_element(out.label_tokens.begin(), out.label_tokens.end());
  const int64_t hi = *std::max_element(out.label_tokens.begin(), out.label_tokens.end());
  GENNER_CHECK(lo == model.label_token_offset() && hi == lo + model.num_types() - 1, where,
               ": the label token ids run from ", lo, " to ", hi, " but the model's label tokens are ",
               model.label_token_offset(), "..", model.label_token_offset() + model.num_types() - 1);

  auto params = model.named_parameters(true);
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  const auto place = [&](const std::string& original, const std::string& name, const torch::Tensor& value) {
    auto* p = params.find(name);
    GENNER_CHECK(p != nullptr, where, ": tensor '", original, "' maps to genner's '", name,
                 "', which this model does not have (a different tuning mode or structure?)");
    GENNER_CHECK(p->sizes() == value.sizes(), where, ": tensor '", original, "' has shape ", value.sizes(),
                 " but genner's '", name, "' has shape ", p->sizes());
    p->copy_(value.to(p->dtype()).to(p->device()));
    filled.insert(name);
    out.placed.emplace(original, name);
  };
  for (const auto& [original, entry] : st.entries()) {
    if (original == mapping_name) continue;
    const auto name = seed_parameter_name(original);
    GENNER_CHECK(name.has_value(), where, ": cannot place tensor '", original, "' (shape ",
                 c10::IntArrayRef(entry.shape), "): no genner parameter corresponds to it");
    const auto value = st.load(original);
    if (*name == "t5.shared.weight") {
      place(original, *name, value);
      GENNER_CHECK(hi + 1 < value.size(0), where, ": the embedding table '", original, "' has ", value.size(0),
                   " rows, too few for the end-index row ", hi + 1);
      place(original + "[label rows]", "label_embeddings", value.narrow(0, lo, model.num_types()));
      if (params.find("eos_embedding") != nullptr)
        place(original + "[end row]", "eos_embedding", value.narrow(0, hi + 1, 1));
      continue;
    }
    place(original, *name, value);
  }
  detail::check_seed_filled(params, filled, where);
  model.set_label_tokens(out.label_tokens);
  return out;
}

}  // namespace genner::compat
