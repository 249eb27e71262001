// genner/t5/config.hpp: the shape of a T5 backbone, as a run-time struct read
// from Hugging Face's config.json and as compile-time preset policy types.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/io/json_file.hpp>

namespace genner::t5 {

/// The feed-forward flavour: v1.0 relu, or v1.1 / LM-adapted / FLAN gated-gelu (tanh approximation).
enum class FeedForward { relu, gated_gelu };

/// Everything that fixes a T5's structure and numerics. Defaults are T5's own.
struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_ff = 2048;
  int64_t d_kv = 64;
  int64_t num_heads = 8;
  int64_t num_layers = 6;
  int64_t num_decoder_layers = 6;
  FeedForward feed_forward = FeedForward::relu;
  bool tie_word_embeddings = true;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  double dropout_rate = 0.1;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;

  /// Compares the fields that decide the shapes and the computation.
  bool same_structure(const T5Config& o) const {
    return d_model == o.d_model && d_ff == o.d_ff && d_kv == o.d_kv && num_heads == o.num_heads &&
           num_layers == o.num_layers && num_decoder_layers == o.num_decoder_layers && feed_forward == o.feed_forward &&
           tie_word_embeddings == o.tie_word_embeddings &&
           relative_attention_num_buckets == o.relative_attention_num_buckets &&
           relative_attention_max_distance == o.relative_attention_max_distance;
  }

  std::string describe() const {
    return detail::concat("d_model=", d_model, " d_ff=", d_ff, " d_kv=", d_kv, " heads=", num_heads,
                          " layers=", num_layers, "/", num_decoder_layers,
                          " ff=", feed_forward == FeedForward::relu ? "relu" : "gated-gelu",
                          " tied=", tie_word_embeddings ? "yes" : "no", " buckets=", relative_attention_num_buckets,
                          " max_distance=", relative_attention_max_distance, " vocab=", vocab_size);
  }

  /// Parses Hugging Face's config.json object; absent keys keep T5's defaults.
  static T5Config from_json(const nlohmann::json& j, const std::string& where = "config.json") {
    T5Config c;
    auto get = [&](const char* key, auto& field) {
      if (!j.contains(key) || j[key].is_null()) return;
      try {
        field = j[key].get<std::decay_t<decltype(field)>>();
      } catch (const nlohmann::json::exception&) {
        fail(where, ": key '", key, "' has the wrong type (found ", json_excerpt(j[key]), ")");
      }
    };
    GENNER_CHECK(j.is_object(), where, ": expected a JSON object");
    get("vocab_size", c.vocab_size);
    get("d_model", c.d_model);
    get("d_ff", c.d_ff);
    get("d_kv", c.d_kv);
    get("num_heads", c.num_heads);
    get("num_layers", c.num_layers);
    c.num_decoder_layers = c.num_layers;
    get("num_decoder_layers", c.num_decoder_layers);
    get("tie_word_embeddings", c.tie_word_embeddings);
    get("relative_attention_num_buckets", c.relative_attention_num_buckets);
    get("relative_attention_max_distance", c.relative_attention_max_distance);
    get("layer_norm_epsilon", c.layer_norm_epsilon);
    get("dropout_rate", c.dropout_rate);
    get("pad_token_id", c.pad_token_id);
    get("eos_token_id", c.eos_token_id);
    get("decoder_start_token_id", c.decoder_start_token_id);
    std::string ff = "relu";
    get("feed_forward_proj", ff);
    if (ff == "relu") {
      c.feed_forward = FeedForward::relu;
    } else if (ff == "gated-gelu" || ff == "gated-gelu_new") {
      c.feed_forward = FeedForward::gated_gelu;
    } else {
      fail(where, ": feed_forward_proj '", ff, "' is not supported; expected 'relu' or 'gated-gelu'");
    }
    GENNER_CHECK(c.d_model > 0 && c.d_ff > 0 && c.d_kv > 0 && c.num_heads > 0 && c.num_layers > 0 &&
                     c.num_decoder_layers > 0 && c.vocab_size > 0,
                 where, ": sizes must be positive, found ", c.describe());
    return c;
  }

  nlohmann::json to_json() const {
    return {{"architectures", {"T5ForConditionalGeneration"}},
            {"model_type", "t5"},
            {"vocab_size", vocab_size},
            {"d_model", d_model},
            {"d_ff", d_ff},
            {"d_kv", d_kv},
            {"num_heads", num_heads},
            {"num_layers", num_layers},
            {"num_decoder_layers", num_decoder_layers},
            {"feed_forward_proj", feed_forward == FeedForward::relu ? "relu" : "gated-gelu"},
            {"dense_act_fn", feed_forward == FeedForward::relu ? "relu" : "gelu_new"},
            {"is_gated_act", feed_forward == FeedForward::gated_gelu},
            {"tie_word_embeddings", tie_word_embeddings},
            {"relative_attention_num_buckets", relative_attention_num_buckets},
            {"relative_attention_max_distance", relative_attention_max_distance},
            {"layer_norm_epsilon", layer_norm_epsilon},
            {"dropout_rate", dropout_rate},
            {"pad_token_id", pad_token_id},
            {"eos_token_id", eos_token_id},
            {"decoder_start_token_id", decoder_start_token_id},
            {"is_encoder_decoder", true},
            {"torch_dtype", "float32"}};
  }

  static T5Config from_file(const std::filesystem::path& path) {
    return from_json(io::read_json_file(path, "cannot open config file"), path.string());
  }
};

// ---- Compile-time backbone presets -------------------------------------------------------

/// A backbone whose shape is fixed at compile time.
template <int64_t DModel, int64_t DFf, int64_t DKv, int64_t Heads, int64_t Layers, FeedForward Ff, bool Tied,
          int64_t Vocab = 32128>
struct StaticBackbone {
  static constexpr bool is_static = true;
  static constexpr int64_t d_model = DModel, d_ff = DFf, d_kv = DKv, num_heads = Heads;
  static constexpr int64_t num_layers = Layers, num_decoder_layers = Layers, vocab_size = Vocab;
  static constexpr FeedForward feed_forward = Ff;
  static constexpr bool tie_word_embeddings = Tied;
  static T5Config config() {
    T5Config c;
    c.d_model = d_model;
    c.d_ff = d_ff;
    c.d_kv = d_kv;
    c.num_heads = num_heads;
    c.num_layers = num_layers;
    c.num_decoder_layers = num_decoder_layers;
    c.vocab_size = vocab_size;
    c.feed_forward = feed_forward;
    c.tie_word_embeddings = Tied;
    return c;
  }
};

using T5Small = StaticBackbone<512, 2048, 64, 8, 6, FeedForward::relu, true>;
using T5Base = StaticBackbone<768, 3072, 64, 12, 12, FeedForward::relu, true>;
using T5Large = StaticBackbone<1024, 4096, 64, 16, 24, FeedForward::relu, true>;
using T5_3B = StaticBackbone<1024, 16384, 128, 32, 24, FeedForward::relu, true>;
using T5_11B = StaticBackbone<1024, 65536, 128, 128, 24, FeedForward::relu, true>;
// v1.1, LM-adapted and FLAN-T5 share shapes: gated-gelu, untied head.
using T5V11Small = StaticBackbone<512, 1024, 64, 6, 8, FeedForward::gated_gelu, false>;
using T5V11Base = StaticBackbone<768, 2048, 64, 12, 12, FeedForward::gated_gelu, false>;
using T5V11Large = StaticBackbone<1024, 2816, 64, 16, 24, FeedForward::gated_gelu, false>;
using T5V11XL = StaticBackbone<2048, 5120, 64, 32, 24, FeedForward::gated_gelu, false>;
using T5V11XXL = StaticBackbone<4096, 10240, 64, 64, 24, FeedForward::gated_gelu, false>;
using T5LmAdaptedBase = T5V11Base;
using FlanT5Small = T5V11Small;
using FlanT5Base = T5V11Base;
using FlanT5Large = T5V11Large;
using FlanT5XL = T5V11XL;
using FlanT5XXL = T5V11XXL;
/// A T5 of a few thousand weights per layer (v1.1 flavour): tests and examples that must run in
/// seconds on a CPU use it as a compile-time shape.
using T5Tiny = StaticBackbone<32, 64, 8, 4, 2, FeedForward::gated_gelu, false>;

/// A backbone whose shape comes from config.json (or a T5Config) at run time.
struct DynamicBackbone {
  static constexpr bool is_static = false;
};

template <typename B>
concept Backbone = requires {
  { B::is_static } -> std::convertible_to<bool>;
};

/// The configuration a backbone policy builds: a static preset's own shape, checked against
/// `from_file` when one is given; a dynamic backbone's comes from `from_file` alone.
template <Backbone B>
T5Config resolve_config(const std::optional<T5Config>& from_file, std::string_view where = "config.json") {
  if constexpr (B::is_static) {
    T5Config c = B::config();
    if (from_file) {
      GENNER_CHECK(c.same_structure(*from_file), where,
                   " does not match the compile-time backbone preset: the preset has ", c.describe(),
                   " but the file says ", from_file->describe(),
                   "; use genner::t5::DynamicBackbone or the preset that matches the checkpoint");
      T5Config merged = *from_file;  // keeps the file's vocabulary size and token ids
      return merged;
    }
    return c;
  } else {
    GENNER_CHECK(from_file.has_value(), where,
                 ": a DynamicBackbone takes its shape from config.json, but none was given");
    return *from_file;
  }
}

}  // namespace genner::t5
