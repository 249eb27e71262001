// genner/model/spec.hpp: the run-time mirror of an experiment alias — which
// adapters, prompt, LoRA factors, head and device map a NER model gets, which
// parameters train, and how that becomes a genner::t5::T5Structure. The
// compile-time policies (genner/model/policies.hpp) are lowered into this so
// every experiment shares one compiled model body; DynamicBackbone shapes are
// checked here at run time.
#pragma once

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/t5/config.hpp>
#include <genner/t5/parameter_names.hpp>
#include <genner/t5/structure.hpp>

namespace genner::model {

/// How pointer features are formed from the encoder output (docs/METHOD.md §1, pointer head).
enum class PointerFeatures {
  hidden,       ///< H' = MLP(H) (or H)
  avg_feature,  ///< H' = (MLP(H) + E[src]) / 2 — the published default
  avg_score,    ///< score = (h·MLP(H) + h·E[src]) / 2
};

inline const char* to_string(PointerFeatures f) {
  switch (f) {
    case PointerFeatures::hidden: return "hidden";
    case PointerFeatures::avg_feature: return "avg_feature";
    default: return "avg_score";
  }
}

/// Which blocks of a stack get adapters.
struct BlockSelection {
  enum class Kind { all, every_kth, published_spread, list } kind = Kind::published_spread;
  int64_t k = 1;
  std::vector<int64_t> list;

  /// The chosen block indices of an n-block stack, sorted and unique.
  std::vector<int64_t> resolve(int64_t n, std::string_view stack) const {
    std::set<int64_t> out;
    switch (kind) {
      case Kind::all:
        for (int64_t i = 0; i < n; ++i) out.insert(i);
        break;
      case Kind::every_kth:
        for (int64_t i = 0; i < n; i += k) out.insert(i);
        break;
      case Kind::published_spread:  // {0, N/3-1, 2(N/3)-1, N-1} in integer division, as published
        for (int64_t i : {int64_t{0}, n / 3 - 1, 2 * (n / 3) - 1, n - 1})
          if (i >= 0) out.insert(i);
        break;
      case Kind::list:
        for (int64_t i : list) {
          GENNER_CHECK(i >= 0 && i < n, "adapter block ", i, " does not exist: the ", stack, " has ", n,
                       " blocks; fix the BlockList of the Adapters policy");
          out.insert(i);
        }
        break;
    }
    return {out.begin(), out.end()};
  }

  nlohmann::json to_json() const {
    switch (kind) {
      case Kind::all: return "all";
      case Kind::every_kth: return {{"every", k}};
      case Kind::published_spread: return "published_spread";
      default: return list;
    }
  }
};

/// Adapters: bottleneck size (-1 = the published size for the backbone), sites, blocks and stacks.
struct AdapterPlan {
  int64_t size = 0;  ///< 0: no adapters
  bool self_attention = true, cross_attention = true, feed_forward = true;
  BlockSelection blocks;
  bool encoder = true, decoder = true;

  bool enabled() const { return size != 0; }
  /// 192 for models up to t5-base's width, 768 beyond (docs/METHOD.md §3).
  int64_t resolved_size(const t5::T5Config& c) const { return size > 0 ? size : (c.d_model <= 768 ? 192 : 768); }
};

/// LoRA on named projections of every block of both stacks.
struct LoraPlan {
  int64_t rank = 0;  ///< 0: no LoRA
  double alpha = 16.0;
  std::vector<std::string> targets;
  bool enabled() const { return rank > 0; }
};

/// A run of consecutive blocks `[first, last)` placed on device ordinal `ordinal`.
struct StageRange {
  int64_t first = 0, last = 0, ordinal = 0;
};

/// Where blocks live: device ordinals per block, indexes into NerOptions::devices.
struct DeviceMapPlan {
  enum class Kind { single, balanced, ranges } kind = Kind::single;
  int64_t ordinal = 0;                       ///< single
  int64_t stages = 1;                        ///< balanced
  std::vector<StageRange> encoder, decoder;  ///< ranges

  /// The device ordinal of every encoder block, then every decoder block.
  std::pair<std::vector<int64_t>, std::vector<int64_t>> ordinals(int64_t enc, int64_t dec) const {
    std::vector<int64_t> e(static_cast<size_t>(enc), ordinal), d(static_cast<size_t>(dec), ordinal);
    if (kind == Kind::balanced) {
      const int64_t total = enc + dec;
      GENNER_CHECK(stages >= 1 && stages <= total, "Balanced<", stages,
                   "> has more stages than the backbone has blocks (", enc, " encoder + ", dec,
                   " decoder); use at most ", total, " stages");
      // Encoder-then-decoder blocks cut into `stages` runs of near-equal length.
      for (int64_t j = 0; j < total; ++j) (j < enc ? e[j] : d[j - enc]) = j * stages / total;
    } else if (kind == Kind::ranges) {
      auto fill = [](std::vector<int64_t>& out, const std::vector<StageRange>& ranges, const char* stack) {
        const int64_t n = static_cast<int64_t>(out.size());
        int64_t next = 0;
        for (const auto& r : ranges) {
          GENNER_CHECK(r.first == next && r.last > r.first, "LayerRanges: the ", stack,
                       " ranges must be contiguous and non-empty from block 0, found [", r.first, ", ", r.last,
                       ") after block ", next);
          for (int64_t i = r.first; i < std::min(r.last, n); ++i) out[i] = r.ordinal;
          next = r.last;
        }
        GENNER_CHECK(next == n, "LayerRanges: the ", stack, " ranges cover ", next, " blocks but the backbone has ", n,
                     "; make the last range end at ", n);
      };
      fill(e, encoder, "encoder");
      fill(d, decoder, "decoder");
    }
    return {e, d};
  }

  nlohmann::json to_json() const {
    switch (kind) {
      case Kind::single: return {{"single", ordinal}};
      case Kind::balanced: return {{"balanced", stages}};
      default: {
        auto ranges = [](const std::vector<StageRange>& rs) {
          nlohmann::json j = nlohmann::json::array();
          for (const auto& r : rs) j.push_back({r.first, r.last, r.ordinal});
          return j;
        };
        return {{"encoder", ranges(encoder)}, {"decoder", ranges(decoder)}};
      }
    }
  }
};

/// The part a parameter plays, decided from its name alone.
enum class ParameterRole {
  added,       ///< label embeddings, soft prompt, encoder MLP, adapters, LoRA factors
  embedding,   ///< the shared embedding table
  layer_norm,  ///< T5 layer norms (scale only)
  backbone,    ///< every other pretrained weight
  unused,      ///< an untied LM head: the pointer head never reads it
};

/// The role of a parameter of a NER model, from t5::parameter_kind's name table.
inline ParameterRole role_of(std::string_view name) {
  const auto kind = t5::parameter_kind(name);
  if (t5::is_new_module(kind)) return ParameterRole::added;
  switch (kind) {
    case t5::ParameterKind::shared_embedding: return ParameterRole::embedding;
    case t5::ParameterKind::lm_head: return ParameterRole::unused;
    case t5::ParameterKind::layer_norm: return ParameterRole::layer_norm;
    default: return ParameterRole::backbone;
  }
}

/// Freezing as a predicate over names: what trains besides the added modules, which always do.
struct TrainableSet {
  bool backbone = false, embeddings = false, layer_norms = false;

  bool contains(std::string_view name) const {
    switch (role_of(name)) {
      case ParameterRole::added: return true;
      case ParameterRole::embedding: return embeddings || backbone;
      case ParameterRole::layer_norm: return layer_norms || backbone;
      case ParameterRole::backbone: return backbone;
      default: return false;
    }
  }
  nlohmann::json to_json() const {
    return {{"backbone", backbone}, {"embeddings", embeddings}, {"layer_norms", layer_norms}};
  }
};

/// Everything an experiment alias decides, as values.
struct ExperimentSpec {
  std::string backbone = "dynamic";
  TrainableSet trainable;
  AdapterPlan adapters;
  int64_t prompt_length = 0;
  LoraPlan lora;
  bool encoder_mlp = true;
  PointerFeatures features = PointerFeatures::avg_feature;
  DeviceMapPlan device_map;
  bool seed_compat = false;  ///< the original system's numerics (SeedCompat, genner/model/policies.hpp)

  /// What was trained and how it is wired; the device map is left out (it does not change weights).
  nlohmann::json to_json() const {
    nlohmann::json a = nullptr, l = nullptr;
    if (adapters.enabled())
      a = {{"size", adapters.size},
           {"sites", {adapters.self_attention, adapters.cross_attention, adapters.feed_forward}},
           {"blocks", adapters.blocks.to_json()},
           {"stacks", {adapters.encoder, adapters.decoder}}};
    if (lora.enabled()) l = {{"rank", lora.rank}, {"alpha", lora.alpha}, {"targets", lora.targets}};
    nlohmann::json out = {{"backbone", backbone},
                          {"trainable", trainable.to_json()},
                          {"adapters", a},
                          {"soft_prompt", prompt_length},
                          {"lora", l},
                          {"encoder_mlp", encoder_mlp},
                          {"pointer_features", to_string(features)}};
    if (seed_compat) out["seed_compat"] = true;
    return out;
  }

  /// Run-time checks of what a DynamicBackbone could not check at compile time.
  void check_against(const t5::T5Config& c) const {
    const bool gated = c.feed_forward == t5::FeedForward::gated_gelu;
    for (const auto& t : lora.targets) {
      GENNER_CHECK(t != "wi" || !gated, "LoRA target 'wi' does not exist on a gated-gelu backbone; use wi_0 and wi_1");
      GENNER_CHECK((t != "wi_0" && t != "wi_1") || gated, "LoRA target '", t,
                   "' exists only on gated-gelu backbones; use wi on a relu backbone");
    }
    if (adapters.enabled()) {
      if (adapters.encoder) (void)adapters.blocks.resolve(c.num_layers, "encoder");
      if (adapters.decoder) (void)adapters.blocks.resolve(c.num_decoder_layers, "decoder");
    }
    (void)device_map.ordinals(c.num_layers, c.num_decoder_layers);
  }

  /// The T5Structure this experiment builds on `c`, with ordinals mapped through `devices`.
  t5::T5Structure structure(const t5::T5Config& c, const std::vector<c10::Device>& devices) const {
    check_against(c);
    auto [enc_ord, dec_ord] = device_map.ordinals(c.num_layers, c.num_decoder_layers);
    auto device_of = [&](int64_t ordinal) {
      if (devices.empty()) return c10::Device(c10::kCPU);  // no list given: every ordinal on the CPU
      GENNER_CHECK(ordinal >= 0 && ordinal < static_cast<int64_t>(devices.size()), "the device map uses ordinal ",
                   ordinal, " but NerOptions::devices lists only ", devices.size(), " devices");
      const auto d = devices[static_cast<size_t>(ordinal)];
      GENNER_CHECK(d.is_cpu() || d.is_cuda(), "NerOptions::devices: ordinal ", ordinal, " is ", d.str(),
                   "; genner places modules on the CPU and on CUDA devices");
      if (d.is_cuda()) {
        const auto visible = static_cast<int64_t>(torch::cuda::device_count());
        GENNER_CHECK(visible > 0 && d.index() < visible, "NerOptions::devices: ordinal ", ordinal, " is ", d.str(),
                     ", but ",
                     visible == 0 ? std::string("this LibTorch sees no CUDA device (a CPU-only build, or no GPU)")
                                  : "only " + std::to_string(visible) + " CUDA device(s) are visible",
                     "; list devices this machine has (torch::kCPU is always there)");
      }
      return d;
    };
    auto stack = [&](int64_t n, bool decoder, const std::vector<int64_t>& ordinals) {
      t5::StackStructure s;
      s.blocks.resize(static_cast<size_t>(n));
      std::vector<int64_t> adapted;
      if (adapters.enabled() && (decoder ? adapters.decoder : adapters.encoder))
        adapted = adapters.blocks.resolve(n, decoder ? "decoder" : "encoder");
      for (int64_t i = 0; i < n; ++i) {
        auto& b = s.blocks[static_cast<size_t>(i)];
        b.device = device_of(ordinals[static_cast<size_t>(i)]);
        if (std::find(adapted.begin(), adapted.end(), i) != adapted.end()) {
          b.adapter.size = adapters.resolved_size(c);
          b.adapter.self_attention = adapters.self_attention;
          b.adapter.cross_attention = adapters.cross_attention;
          b.adapter.feed_forward = adapters.feed_forward;
        }
        if (lora.enabled()) b.lora = {lora.rank, lora.alpha, lora.targets};
      }
      return s;
    };
    t5::T5Structure out;
    out.encoder = stack(c.num_layers, false, enc_ord);
    out.decoder = stack(c.num_decoder_layers, true, dec_ord);
    out.embedding_device = out.encoder.blocks.front().device;
    out.lm_head = false;  // the pointer head never reads an untied LM head (docs/METHOD.md §6)
    return out;
  }
};

}  // namespace genner::model
