// genner/t5/parameter_names.hpp: the one table that says what a parameter is from its name —
// read by the freezing rules and optimizer groups (model/spec.hpp), the Hugging Face backbone
// import/export (t5/pretrained.hpp) and the PEFT LoRA export/import (model/checkpoint.hpp).
// Names are as a NER model (model/ner_model.hpp) spells them, its T5 under `t5.`; the adapter
// and LoRA patterns match a bare T5's names too.
#pragma once

#include <array>
#include <string_view>

namespace genner::t5 {

/// What a parameter is.
enum class ParameterKind {
  adapter,           ///< bottleneck adapter weights (`....adapter.`)
  lora,              ///< LoRA factors (`....lora_A.`, `....lora_B.`)
  label_rows,        ///< the NER model's label-token rows and end-index row
  soft_prompt,       ///< the NER model's soft prompt
  encoder_mlp,       ///< the NER model's MLP over encoder states
  shared_embedding,  ///< T5's shared embedding table
  lm_head,           ///< an untied LM head
  layer_norm,        ///< T5 layer norms (scale only)
  weight,            ///< every other pretrained T5 weight
};

/// How a pattern is compared with a name.
enum class NameMatch { contains, equals, prefix };

struct ParameterNamePattern {
  NameMatch match;
  std::string_view text;
  ParameterKind kind;
};

/// First matching row wins; a name no row matches is a ParameterKind::weight.
inline constexpr std::array<ParameterNamePattern, 10> kParameterNames = {{
    {NameMatch::contains, ".adapter.", ParameterKind::adapter},
    {NameMatch::contains, ".lora_A.", ParameterKind::lora},
    {NameMatch::contains, ".lora_B.", ParameterKind::lora},
    {NameMatch::equals, "label_embeddings", ParameterKind::label_rows},
    {NameMatch::equals, "eos_embedding", ParameterKind::label_rows},
    {NameMatch::equals, "soft_prompt", ParameterKind::soft_prompt},
    {NameMatch::prefix, "encoder_mlp.", ParameterKind::encoder_mlp},
    {NameMatch::equals, "t5.shared.weight", ParameterKind::shared_embedding},
    {NameMatch::prefix, "t5.lm_head.", ParameterKind::lm_head},
    {NameMatch::contains, "layer_norm.", ParameterKind::layer_norm},
}};

[[nodiscard]] constexpr bool matches(const ParameterNamePattern& p, std::string_view name) {
  switch (p.match) {
    case NameMatch::contains: return name.find(p.text) != std::string_view::npos;
    case NameMatch::equals: return name == p.text;
    default: return name.starts_with(p.text);
  }
}

[[nodiscard]] constexpr ParameterKind parameter_kind(std::string_view name) {
  for (const auto& p : kParameterNames)
    if (matches(p, name)) return p.kind;
  return ParameterKind::weight;
}

/// Modules added to T5 by adapters or LoRA (what a Hugging Face T5 checkpoint does not hold).
[[nodiscard]] constexpr bool is_added_to_t5(ParameterKind k) {
  return k == ParameterKind::adapter || k == ParameterKind::lora;
}

/// Modules new to T5 altogether: adapters, LoRA factors and the NER model's own parameters.
[[nodiscard]] constexpr bool is_new_module(ParameterKind k) {
  return is_added_to_t5(k) || k == ParameterKind::label_rows || k == ParameterKind::soft_prompt ||
         k == ParameterKind::encoder_mlp;
}

static_assert(parameter_kind("t5.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight") == ParameterKind::lora);
static_assert(parameter_kind("t5.decoder.block.1.layer.2.adapter.down.weight") == ParameterKind::adapter);
static_assert(parameter_kind("t5.encoder.final_layer_norm.weight") == ParameterKind::layer_norm);
static_assert(parameter_kind("t5.shared.weight") == ParameterKind::shared_embedding);
static_assert(parameter_kind("shared.weight") == ParameterKind::weight);
static_assert(parameter_kind("encoder.block.0.layer.1.DenseReluDense.wi.weight") == ParameterKind::weight);

}  // namespace genner::t5
