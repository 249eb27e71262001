// genner/app/sample_settings.hpp: the built-in default of each family — genner's own sample data
// of that family (data/sample.hpp), its own SentencePiece model and a small T5 trained from
// scratch on CPU. A program that names no default config files runs with these when the command
// line gives no --config (flat_ner with no arguments); --config replaces them.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include <genner/app/family.hpp>
#include <genner/app/options.hpp>

namespace genner::app {

/// The built-in settings for data of `family`, as a config file would hold them (validated by the
/// option table like one; named so in errors and in the origin of each setting). Without
/// `scratch_shape` they leave the from-scratch shape (scratch_d_model, _d_ff, _heads, _layers) to
/// a static backbone's own.
[[nodiscard]] inline ConfigFile sample_settings(Family family, bool scratch_shape = true) {
  const std::string name = family_name(family);
  nlohmann::json s = {{"family", name},
                      {"dataset", "sample"},
                      {"target_type", family == Family::nested ? "span" : "word"},
                      {"max_len", 10},
                      {"beams", 1},
                      {"constrained", true},
                      {"lr", 0.003},
                      {"batch_size", 32},
                      {"epochs", 20},
                      {"warmup", 0.05},
                      {"weight_decay", 0.01},
                      {"clip_norm", 1.0},
                      {"truncate_prob", 0.0},
                      {"model", "scratch"},
                      {"scratch_d_model", 128},
                      {"scratch_d_ff", 256},
                      {"scratch_heads", 4},
                      {"scratch_layers", 2},
                      {"scratch_dropout", 0.1},
                      {"spm_vocab_size", 1000}};
  if (!scratch_shape)
    for (const char* k : {"scratch_d_model", "scratch_d_ff", "scratch_heads", "scratch_layers"}) s.erase(k);
  // Room for the family's entities: a flat sentence's few entities, nested spans, discontinuous
  // fragments; one fragment per entity except for discontinuous data.
  switch (family) {
    case Family::flat:
      s["max_len_a"] = 0.6;
      s["contiguous"] = true;
      s["description"] =
          "Built-in default: genner's own flat sample data (PER LOC ORG MISC), its own SentencePiece model and a "
          "small T5 trained from scratch on CPU.";
      break;
    case Family::nested:
      s["max_len_a"] = 0.5;
      s["contiguous"] = true;
      s["description"] =
          "Built-in default: genner's own nested sample data (GENIA-style types), its own SentencePiece model and a "
          "small T5 trained from scratch on CPU.";
      break;
    case Family::discontinuous:
      s["max_len_a"] = 1.6;
      s["description"] =
          "Built-in default: genner's own discontinuous sample data (ADR), its own SentencePiece model and a small "
          "T5 trained from scratch on CPU.";
      break;
  }
  return check_config_file({"built-in settings of the " + name + " sample", std::move(s)});
}

}  // namespace genner::app
