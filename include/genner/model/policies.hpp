// genner/model/policies.hpp: the compile-time vocabulary of an experiment —
// one policy per slot (Backbone, Trainable, Adapters, SoftPrompt, Lora,
// EncoderMlp, Head, DeviceMap, Compat), each with an Auto-style default, and the
// Experiment alias that gathers them, rejects illegal combinations with a
// sentence, and lowers itself to a run-time ExperimentSpec (genner/model/spec.hpp).
//
//   using Mine = genner::model::ExperimentType<genner::t5::T5Base, Adapters<192>, SoftPrompt<20>>;
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <genner/model/spec.hpp>
#include <genner/t5/config.hpp>

namespace genner::model {

/// "Choose for me": the published default for the slot, given the rest of the experiment.
struct Auto {};

/// The most soft-prompt vectors: one per `<extra_id_*>` row they are initialised from.
inline constexpr int64_t max_prompt_length = 100;

namespace detail {
template <class...>
inline constexpr bool dependent_false = false;
enum class Slot { backbone, trainable, adapters, soft_prompt, lora, encoder_mlp, head, device_map, compat };
template <class P>
concept Policy = requires {
  { P::slot } -> std::convertible_to<Slot>;
};
}  // namespace detail

// ---- Backbone ------------------------------------------------------------------------------------

/// The T5 shape: a preset of genner/t5/config.hpp, or Auto = DynamicBackbone (from config.json).
template <class B = Auto>
struct Backbone {
  static constexpr detail::Slot slot = detail::Slot::backbone;
  using type = std::conditional_t<std::is_same_v<B, Auto>, t5::DynamicBackbone, B>;
  static_assert(t5::Backbone<type>,
                "Backbone<B>: B must be a backbone policy such as genner::t5::T5Base or "
                "genner::t5::DynamicBackbone; see genner/t5/config.hpp");
};

// ---- Trainable -----------------------------------------------------------------------------------

struct Everything {};      ///< full fine-tuning: every weight (three parameter groups)
struct EmbeddingsOnly {};  ///< the shared embedding table (+ what the experiment adds)
struct AddedModules {};    ///< only what the experiment adds: adapters, prompt, LoRA, MLP, label rows
struct WithLayerNorms {};
struct WithoutLayerNorms {};

/// What trains. Auto: Everything unless the experiment adds adapters, a prompt or LoRA, then
/// AddedModules; layer norms Auto: trained alongside adapters, as published.
template <class What = Auto, class LayerNorms = Auto>
struct Trainable {
  static constexpr detail::Slot slot = detail::Slot::trainable;
  using what = What;
  using layer_norms = LayerNorms;
  static_assert(std::is_same_v<What, Auto> || std::is_same_v<What, Everything> ||
                    std::is_same_v<What, EmbeddingsOnly> || std::is_same_v<What, AddedModules>,
                "Trainable<What>: What must be Auto, Everything, EmbeddingsOnly or AddedModules; "
                "see genner/model/policies.hpp");
  static_assert(std::is_same_v<LayerNorms, Auto> || std::is_same_v<LayerNorms, WithLayerNorms> ||
                    std::is_same_v<LayerNorms, WithoutLayerNorms>,
                "Trainable<What, LayerNorms>: LayerNorms must be Auto, WithLayerNorms or WithoutLayerNorms");
};

// ---- Adapters ------------------------------------------------------------------------------------

/// Which sublayer outputs get an adapter.
template <bool SelfAttention = true, bool CrossAttention = true, bool FeedForward = true>
struct AdapterSites {
  static constexpr bool self_attention = SelfAttention, cross_attention = CrossAttention, feed_forward = FeedForward;
  static_assert(SelfAttention || CrossAttention || FeedForward,
                "AdapterSites<false, false, false> places no adapter; enable a site or use NoAdapters");
};
using AllSites = AdapterSites<>;

/// Which blocks get adapters.
struct AllBlocks {
  static constexpr int64_t max_index = -1;
  static BlockSelection selection() { return {BlockSelection::Kind::all, 1, {}}; }
};
template <int64_t K>
struct EveryKth {
  static_assert(K >= 1, "EveryKth<K>: K must be at least 1 (EveryKth<1> is every block)");
  static constexpr int64_t max_index = -1;
  static BlockSelection selection() { return {BlockSelection::Kind::every_kth, K, {}}; }
};
/// Blocks {0, N/3-1, 2(N/3)-1, N-1} of each stack (integer division; N = 8: {0, 1, 3, 7}), as
/// the T5 follow-up placed them.
struct PublishedSpread {
  static constexpr int64_t max_index = -1;
  static BlockSelection selection() { return {BlockSelection::Kind::published_spread, 1, {}}; }
};
template <int64_t... I>
struct BlockList {
  static_assert(sizeof...(I) > 0, "BlockList<>: name at least one block index");
  static_assert(((I >= 0) && ...), "BlockList<I...>: block indices start at 0");
  static constexpr int64_t max_index = std::max({I...});
  static BlockSelection selection() { return {BlockSelection::Kind::list, 1, {I...}}; }
};

/// Which stacks get adapters.
template <bool Encoder = true, bool Decoder = true>
struct InStacks {
  static constexpr bool encoder = Encoder, decoder = Decoder;
  static_assert(Encoder || Decoder, "InStacks<false, false> places no adapter; use NoAdapters");
};
using BothStacks = InStacks<true, true>;
using EncoderStack = InStacks<true, false>;
using DecoderStack = InStacks<false, true>;

/// The published size for the backbone: 192 up to t5-base's width, 768 beyond.
inline constexpr int64_t auto_adapter_size = -1;

/// Bottleneck adapters `x + Up(GELU(Down(x)))` (docs/METHOD.md §3).
template <int64_t Size = auto_adapter_size, class Sites = AllSites, class Blocks = PublishedSpread,
          class Stacks = BothStacks>
struct Adapters {
  static constexpr detail::Slot slot = detail::Slot::adapters;
  static_assert(Size > 0 || Size == auto_adapter_size,
                "Adapters<Size>: the bottleneck size must be at least 1 (or leave it out for the "
                "published size); for no adapters use NoAdapters. See genner/model/policies.hpp");
  static constexpr bool enabled = true;
  static constexpr int64_t max_block = Blocks::max_index;
  static constexpr bool encoder = Stacks::encoder, decoder = Stacks::decoder;
  static AdapterPlan plan() {
    AdapterPlan p;
    p.size = Size;
    p.self_attention = Sites::self_attention;
    p.cross_attention = Sites::cross_attention;
    p.feed_forward = Sites::feed_forward;
    p.blocks = Blocks::selection();
    p.encoder = Stacks::encoder;
    p.decoder = Stacks::decoder;
    return p;
  }
};
struct NoAdapters {
  static constexpr detail::Slot slot = detail::Slot::adapters;
  static constexpr bool enabled = false;
  static constexpr int64_t max_block = -1;
  static constexpr bool encoder = false, decoder = false;
  static AdapterPlan plan() { return {}; }
};

// ---- Soft prompt ---------------------------------------------------------------------------------

/// N trainable vectors prepended to the encoder input and stripped from its output, initialised
/// from `<extra_id_89>`, `<extra_id_88>`, ... (rows 32010.. upwards; NerModelCore::prompt_rows).
template <int64_t Length = 100>
struct SoftPrompt {
  static constexpr detail::Slot slot = detail::Slot::soft_prompt;
  static_assert(Length >= 1, "SoftPrompt<N>: N must be at least 1; for no prompt use NoSoftPrompt");
  static_assert(Length <= max_prompt_length,
                "SoftPrompt<N>: N may be at most 100, the number of <extra_id_*> rows the prompt is "
                "initialised from; see genner/model/policies.hpp");
  static constexpr int64_t length = Length;
};
struct NoSoftPrompt {
  static constexpr detail::Slot slot = detail::Slot::soft_prompt;
  static constexpr int64_t length = 0;
};

// ---- LoRA ----------------------------------------------------------------------------------------

/// Projection names LoRA can target; `wi` exists on relu backbones, `wi_0`/`wi_1` on gated ones.
namespace lora {
enum class Ff { any, relu, gated };
struct Q {
  static constexpr const char* name = "q";
  static constexpr Ff needs = Ff::any;
};
struct K {
  static constexpr const char* name = "k";
  static constexpr Ff needs = Ff::any;
};
struct V {
  static constexpr const char* name = "v";
  static constexpr Ff needs = Ff::any;
};
struct O {
  static constexpr const char* name = "o";
  static constexpr Ff needs = Ff::any;
};
struct Wi {
  static constexpr const char* name = "wi";
  static constexpr Ff needs = Ff::relu;
};
struct Wi0 {
  static constexpr const char* name = "wi_0";
  static constexpr Ff needs = Ff::gated;
};
struct Wi1 {
  static constexpr const char* name = "wi_1";
  static constexpr Ff needs = Ff::gated;
};
struct Wo {
  static constexpr const char* name = "wo";
  static constexpr Ff needs = Ff::any;
};
template <class T>
concept Target = requires {
  { T::name } -> std::convertible_to<const char*>;
  { T::needs } -> std::convertible_to<Ff>;
};
}  // namespace lora

/// LoRA factors of rank `Rank`, scaled by Alpha / Rank, on the named projections of every block
/// (no targets named: q and v, as LoRA's paper).
template <int64_t Rank = 8, int64_t Alpha = 16, class... Targets>
struct Lora {
  static constexpr detail::Slot slot = detail::Slot::lora;
  static_assert(Rank >= 1, "Lora<Rank>: the rank must be at least 1; for no LoRA use NoLora");
  static_assert((lora::Target<Targets> && ...),
                "Lora<Rank, Alpha, Targets...>: targets are lora::Q, K, V, O, Wi, Wi0, Wi1 or Wo; "
                "see genner/model/policies.hpp");
  static constexpr bool enabled = true;
  static constexpr bool needs_relu = ((Targets::needs == lora::Ff::relu) || ...);
  static constexpr bool needs_gated = ((Targets::needs == lora::Ff::gated) || ...);
  static LoraPlan plan() {
    LoraPlan p;
    p.rank = Rank;
    p.alpha = static_cast<double>(Alpha);
    if constexpr (sizeof...(Targets) == 0) {
      p.targets = {"q", "v"};
    } else {
      p.targets = {Targets::name...};
    }
    return p;
  }
};
struct NoLora {
  static constexpr detail::Slot slot = detail::Slot::lora;
  static constexpr bool enabled = false, needs_relu = false, needs_gated = false;
  static LoraPlan plan() { return {}; }
};

// ---- Encoder MLP and head ------------------------------------------------------------------------

/// Linear(d,d) -> Dropout(0.3) -> ReLU -> Linear(d,d) on the encoder output before pointing.
template <bool On = true>
struct EncoderMlp {
  static constexpr detail::Slot slot = detail::Slot::encoder_mlp;
  static constexpr bool on = On;
};
using NoEncoderMlp = EncoderMlp<false>;

struct HiddenFeatures {
  static constexpr PointerFeatures value = PointerFeatures::hidden;
};
struct AvgFeature {
  static constexpr PointerFeatures value = PointerFeatures::avg_feature;
};
struct AvgScore {
  static constexpr PointerFeatures value = PointerFeatures::avg_score;
};

/// The pointer head; Auto = AvgFeature, the published default.
template <class Features = Auto>
struct Head {
  static constexpr detail::Slot slot = detail::Slot::head;
  using features = std::conditional_t<std::is_same_v<Features, Auto>, AvgFeature, Features>;
  static_assert(std::is_same_v<features, HiddenFeatures> || std::is_same_v<features, AvgFeature> ||
                    std::is_same_v<features, AvgScore>,
                "Head<F>: F must be HiddenFeatures, AvgFeature or AvgScore; see genner/model/policies.hpp");
};

// ---- Numerics of the original system -------------------------------------------------------------

/// The original system's numerics where they differ from genner's (docs/METHOD.md, departures):
/// type scores use the label rows in token-id order while the decoder is fed each type's own
/// token; the end index is scored with its own row (`eos_embedding`, fed back as `</s>`); decoder
/// cross-attention sees no source mask. Use it to reproduce the original's numbers, e.g. with a
/// checkpoint imported by genner/compat/seed_checkpoint.hpp; greedy decoding as the original ran
/// it is compat::seed_greedy.
struct SeedCompat {
  static constexpr detail::Slot slot = detail::Slot::compat;
  static constexpr bool on = true;
};
struct NoSeedCompat {
  static constexpr detail::Slot slot = detail::Slot::compat;
  static constexpr bool on = false;
};

// ---- Device maps ---------------------------------------------------------------------------------

/// Everything on one device ordinal.
template <int64_t Ordinal = 0>
struct SingleDevice {
  static constexpr detail::Slot slot = detail::Slot::device_map;
  static_assert(Ordinal >= 0, "SingleDevice<Ordinal>: ordinals start at 0");
  static constexpr int64_t min_encoder_layers = 1, min_total_layers = 1;
  static constexpr int64_t encoder_end = -1, decoder_end = -1;
  static DeviceMapPlan plan() { return {DeviceMapPlan::Kind::single, Ordinal, 1, {}, {}}; }
};

/// Encoder-then-decoder blocks cut into `Stages` near-equal runs on ordinals 0..Stages-1.
template <int64_t Stages>
struct Balanced {
  static constexpr detail::Slot slot = detail::Slot::device_map;
  static_assert(Stages >= 1, "Balanced<N>: N must be at least 1 stage");
  static constexpr int64_t min_encoder_layers = 1, min_total_layers = Stages;
  static constexpr int64_t encoder_end = -1, decoder_end = -1;
  static DeviceMapPlan plan() { return {DeviceMapPlan::Kind::balanced, 0, Stages, {}, {}}; }
};

/// Blocks [First, Last) on device ordinal `Ordinal`.
template <int64_t First, int64_t Last, int64_t Ordinal>
struct Range {
  static_assert(0 <= First && First < Last, "Range<First, Last, Ordinal>: need 0 <= First < Last (Last exclusive)");
  static_assert(Ordinal >= 0, "Range<First, Last, Ordinal>: ordinals start at 0");
  static constexpr int64_t first = First, last = Last, ordinal = Ordinal;
};
template <class... Ranges>
struct EncoderRanges {
  static constexpr std::array<int64_t, sizeof...(Ranges)> firsts{Ranges::first...}, lasts{Ranges::last...};
};
template <class... Ranges>
struct DecoderRanges {
  static constexpr std::array<int64_t, sizeof...(Ranges)> firsts{Ranges::first...}, lasts{Ranges::last...};
};

namespace detail {
template <class R>
constexpr bool contiguous() {
  int64_t next = 0;
  for (size_t i = 0; i < R::firsts.size(); ++i) {
    if (R::firsts[i] != next) return false;
    next = R::lasts[i];
  }
  return !R::firsts.empty();
}
template <class R>
constexpr int64_t end_of() {
  return R::lasts.empty() ? 0 : R::lasts.back();
}
template <class... Ranges>
std::vector<StageRange> stage_ranges(EncoderRanges<Ranges...>*) {
  return {{Ranges::first, Ranges::last, Ranges::ordinal}...};
}
template <class... Ranges>
std::vector<StageRange> stage_ranges(DecoderRanges<Ranges...>*) {
  return {{Ranges::first, Ranges::last, Ranges::ordinal}...};
}
}  // namespace detail

/// Explicit layer ranges per stack, e.g.
/// `LayerRanges<EncoderRanges<Range<0, 12, 0>>, DecoderRanges<Range<0, 6, 0>, Range<6, 12, 1>>>`.
template <class Encoder, class Decoder>
struct LayerRanges {
  static constexpr detail::Slot slot = detail::Slot::device_map;
  static_assert(detail::contiguous<Encoder>() && detail::contiguous<Decoder>(),
                "LayerRanges: each stack's ranges must start at block 0 and follow each other without "
                "gaps, e.g. Range<0, 3, 0>, Range<3, 6, 1>; see genner/model/policies.hpp");
  static constexpr int64_t min_encoder_layers = 1, min_total_layers = 1;
  static constexpr int64_t encoder_end = detail::end_of<Encoder>(), decoder_end = detail::end_of<Decoder>();
  static DeviceMapPlan plan() {
    DeviceMapPlan p;
    p.kind = DeviceMapPlan::Kind::ranges;
    p.encoder = detail::stage_ranges(static_cast<Encoder*>(nullptr));
    p.decoder = detail::stage_ranges(static_cast<Decoder*>(nullptr));
    return p;
  }
};

/// The device-map slot; its argument is SingleDevice<>, Balanced<N> or LayerRanges<...>.
template <class Map = SingleDevice<>>
struct DeviceMap : Map {
  static_assert(detail::Policy<Map> && Map::slot == detail::Slot::device_map,
                "DeviceMap<M>: M must be SingleDevice<>, Balanced<N> or LayerRanges<...>; "
                "see genner/model/policies.hpp");
};

// ---- The experiment ------------------------------------------------------------------------------

namespace detail {
template <Slot S, class... Ps>
inline constexpr int count_slot = ((Ps::slot == S ? 1 : 0) + ... + 0);

template <Slot S, class Default, class... Ps>
struct find_slot {
  using type = Default;
};
template <Slot S, class Default, class P, class... Ps>
struct find_slot<S, Default, P, Ps...> {
  using type = std::conditional_t<P::slot == S, P, typename find_slot<S, Default, Ps...>::type>;
};

template <class B>
constexpr int64_t static_layers() {
  if constexpr (B::is_static)
    return B::num_layers;
  else
    return std::numeric_limits<int64_t>::max();
}
template <class B>
constexpr int64_t static_decoder_layers() {
  if constexpr (B::is_static)
    return B::num_decoder_layers;
  else
    return std::numeric_limits<int64_t>::max();
}
template <class B>
constexpr bool static_gated() {
  if constexpr (B::is_static)
    return B::feed_forward == t5::FeedForward::gated_gelu;
  else
    return false;
}
template <class B>
constexpr bool static_relu() {
  if constexpr (B::is_static)
    return B::feed_forward == t5::FeedForward::relu;
  else
    return false;
}
}  // namespace detail

/// One experiment: policies in any order, at most one per slot; a missing slot takes its default.
template <class... Policies>
struct Experiment {
  static_assert((detail::Policy<Policies> && ...),
                "Experiment<...>: every argument must be a policy (Backbone<>, Trainable<>, Adapters<>, "
                "SoftPrompt<>, Lora<>, EncoderMlp<>, Head<>, DeviceMap<>, SeedCompat); see genner/model/policies.hpp");

 private:
  template <detail::Slot S>
  static constexpr bool unique = detail::count_slot<S, Policies...> <= 1;
  static_assert(unique<detail::Slot::backbone> && unique<detail::Slot::trainable> && unique<detail::Slot::adapters> &&
                    unique<detail::Slot::soft_prompt> && unique<detail::Slot::lora> &&
                    unique<detail::Slot::encoder_mlp> && unique<detail::Slot::head> &&
                    unique<detail::Slot::device_map> && unique<detail::Slot::compat>,
                "Experiment<...>: a slot is given twice; keep one policy per slot");
  template <detail::Slot S, class D>
  using pick = typename detail::find_slot<S, D, Policies...>::type;

 public:
  using backbone_policy = pick<detail::Slot::backbone, Backbone<>>;
  using backbone = typename backbone_policy::type;
  using adapters = pick<detail::Slot::adapters, NoAdapters>;
  using soft_prompt = pick<detail::Slot::soft_prompt, NoSoftPrompt>;
  using lora_policy = pick<detail::Slot::lora, NoLora>;
  using encoder_mlp = pick<detail::Slot::encoder_mlp, EncoderMlp<>>;
  using head = pick<detail::Slot::head, Head<>>;
  using device_map = pick<detail::Slot::device_map, SingleDevice<>>;
  using trainable_policy = pick<detail::Slot::trainable, Trainable<>>;
  using compat = pick<detail::Slot::compat, NoSeedCompat>;

  static constexpr bool adds_modules = adapters::enabled || soft_prompt::length > 0 || lora_policy::enabled;
  using trainable_what =
      std::conditional_t<std::is_same_v<typename trainable_policy::what, Auto>,
                         std::conditional_t<adds_modules, AddedModules, Everything>, typename trainable_policy::what>;
  static constexpr bool train_layer_norms =
      std::is_same_v<typename trainable_policy::layer_norms, Auto>
          ? adapters::enabled
          : std::is_same_v<typename trainable_policy::layer_norms, WithLayerNorms>;

  // ---- illegal combinations ----
  static_assert(!std::is_same_v<trainable_what, AddedModules> || adds_modules || encoder_mlp::on,
                "Trainable<AddedModules> trains only what the experiment adds, but it adds no adapters, "
                "soft prompt, LoRA or encoder MLP; add one or choose Trainable<Everything>");
  static_assert(adapters::max_block < detail::static_layers<backbone>() || !adapters::encoder,
                "Adapters<..., BlockList<...>>: a listed block does not exist in the backbone's encoder; "
                "list indices below the backbone's num_layers (see genner/t5/config.hpp)");
  static_assert(adapters::max_block < detail::static_decoder_layers<backbone>() || !adapters::decoder,
                "Adapters<..., BlockList<...>>: a listed block does not exist in the backbone's decoder; "
                "list indices below the backbone's num_decoder_layers (see genner/t5/config.hpp)");
  static_assert(!(lora_policy::needs_relu && detail::static_gated<backbone>()),
                "Lora<..., lora::Wi>: a gated-gelu backbone (v1.1, LM-adapted, FLAN) has no 'wi' projection; "
                "target lora::Wi0 and lora::Wi1 instead (see genner/t5/layers.hpp)");
  static_assert(!(lora_policy::needs_gated && detail::static_relu<backbone>()),
                "Lora<..., lora::Wi0/Wi1>: a relu backbone (T5 v1.0) has no 'wi_0'/'wi_1' projection; "
                "target lora::Wi instead (see genner/t5/layers.hpp)");
  static_assert(device_map::min_total_layers <=
                    (backbone::is_static ? detail::static_layers<backbone>() + detail::static_decoder_layers<backbone>()
                                         : std::numeric_limits<int64_t>::max()),
                "Balanced<N>: the device map has more stages than the backbone has blocks (encoder + decoder); "
                "use fewer stages (see genner/model/policies.hpp)");
  static_assert(!backbone::is_static || device_map::encoder_end < 0 ||
                    (device_map::encoder_end == detail::static_layers<backbone>() &&
                     device_map::decoder_end == detail::static_decoder_layers<backbone>()),
                "LayerRanges: the last encoder/decoder range must end at the backbone's number of blocks; "
                "cover every block exactly once (see genner/model/policies.hpp)");

  /// The run-time spec every NerModel is built from.
  static ExperimentSpec spec() {
    ExperimentSpec s;
    if constexpr (backbone::is_static) {
      auto c = backbone::config();
      s.backbone = c.describe();
    }
    s.trainable.backbone = std::is_same_v<trainable_what, Everything>;
    s.trainable.embeddings = std::is_same_v<trainable_what, EmbeddingsOnly>;
    s.trainable.layer_norms = train_layer_norms;
    s.adapters = adapters::plan();
    s.prompt_length = soft_prompt::length;
    s.lora = lora_policy::plan();
    s.encoder_mlp = encoder_mlp::on;
    s.features = head::features::value;
    s.device_map = device_map::plan();
    s.seed_compat = compat::on;
    return s;
  }
};

/// The mlpack-style spelling: the backbone first, then any other policies.
template <class B, class... Policies>
using ExperimentType = Experiment<Backbone<B>, Policies...>;

// ---- The published tuning modes (docs/METHOD.md §3) ----------------------------------------------------

template <class B>
using FullFineTuning = ExperimentType<B, Trainable<Everything>>;
template <class B>
using EmbeddingTuning = ExperimentType<B, Trainable<EmbeddingsOnly>>;
template <class B, int64_t N = 100>
using PromptTuning = ExperimentType<B, SoftPrompt<N>>;
template <class B, int64_t Size = auto_adapter_size>
using AdapterTuning = ExperimentType<B, Adapters<Size>, Trainable<AddedModules, WithLayerNorms>>;
template <class B, int64_t Size = auto_adapter_size, int64_t N = 100>
using AdapterPromptTuning = ExperimentType<B, Adapters<Size>, SoftPrompt<N>, Trainable<AddedModules, WithLayerNorms>>;
template <class B, int64_t Rank = 8>
using LoraTuning = ExperimentType<B, Lora<Rank>>;

}  // namespace genner::model
