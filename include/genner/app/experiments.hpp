// genner/app/experiments.hpp: the published experiments as compile-time entries, one executable
// each (examples/CMakeLists.txt: one genner_add_experiment line per entry). An entry carries the
// experiment alias (structure), its data-set family, the model it starts from by default and its
// default config files (run-time settings only). The list is a Boost.Hana tuple of types: the
// command-line application walks it to name the executables that would honour a refused setting.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/hana/for_each.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include <genner/app/family.hpp>
#include <genner/app/structure.hpp>
#include <genner/model/policies.hpp>

namespace genner::app {

/// A string usable as a template argument.
template <std::size_t N>
struct Text {
  char value[N]{};
  constexpr Text(const char (&s)[N]) { std::copy_n(s, N, value); }  // NOLINT: implicit by design
  [[nodiscard]] constexpr std::string_view view() const { return {value, N - 1}; }
};

/// One compiled experiment: name, family, alias, default --model, default config files.
template <Text Name, Family F, class E, Text Model, Text... Configs>
struct Compiled {
  using experiment = E;
  static constexpr Family family = F;
  static constexpr bool any_family = false;
  static std::string name() { return std::string(Name.view()); }
  static std::string model() { return std::string(Model.view()); }
  static std::vector<std::string> configs() { return {std::string(Configs.view())...}; }
};

/// One tuning mode on a backbone of any shape, for data of any family (the `family` setting; flat
/// unless a config file or the command line says otherwise). Without Configs and without --config
/// it runs with the built-in settings of the chosen family's sample. Built by default: ner_lora,
/// ner_adapters, ...
template <Text Name, class E, Text... Configs>
struct AnyFamily {
  using experiment = E;
  static constexpr Family family = Family::flat;
  static constexpr bool any_family = true;
  static std::string name() { return std::string(Name.view()); }
  static std::string model() { return "scratch"; }
  static std::vector<std::string> configs() { return {std::string(Configs.view())...}; }
};

/// What the command-line application needs to know about the executable it runs as.
struct Program {
  std::string name;  ///< the experiment's name (reported in --help, the start-up line, run.json)
  Family family = Family::flat;  ///< the data's family; with any_family only the default of the `family` setting
  std::string model = "scratch";     ///< --model unless a config file or the command line says otherwise
  std::vector<std::string> configs;  ///< default config files: paths, or names under config_dir
  std::filesystem::path config_dir;  ///< where default config names are found (empty: the working directory)
  bool any_family = false;  ///< the `family` setting chooses (else a family other than `family` is refused)
};

template <class Entry>
Program program_of(const std::filesystem::path& config_dir) {
  return {Entry::name(), Entry::family, Entry::model(), Entry::configs(), config_dir, Entry::any_family};
}

namespace experiments {
using namespace genner::model;
using namespace genner::t5;
template <class B>
using Full = FullFineTuning<B>;
template <class B>
using FullNoMlp = ExperimentType<B, Trainable<Everything>, NoEncoderMlp>;
template <class B>
using Adapters768 = AdapterTuning<B, 768>;
template <class B>
using Adapters768NoMlp = ExperimentType<B, Adapters<768>, Trainable<AddedModules, WithLayerNorms>, NoEncoderMlp>;

constexpr auto flat = Family::flat;
constexpr auto nested = Family::nested;
constexpr auto discontinuous = Family::discontinuous;

// Full fine-tuning of t5-base and the published adapters (size 768, blocks {0, N/3-1, 2N/3-1, N-1},
// layer norms trained) of t5-3b and t5-11b, per data set (docs/METHOD.md §3-4).
#define GENNER_DATASET_EXPERIMENTS(D, FAMILY, FULL, ADAPTERS)                                    \
  using D##_t5_base = Compiled<#D "_t5_base", FAMILY, FULL<T5Base>, "t5-base", #D ".json">;      \
  using D##_t5_3b_adapters =                                                                     \
      Compiled<#D "_t5_3b_adapters", FAMILY, ADAPTERS<T5_3B>, "t5-3b", #D ".json", "peft.json">; \
  using D##_t5_11b_adapters =                                                                    \
      Compiled<#D "_t5_11b_adapters", FAMILY, ADAPTERS<T5_11B>, "t5-11b", #D ".json", "peft.json">;
GENNER_DATASET_EXPERIMENTS(conll2003, flat, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(ontonotes, flat, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(wnut17, flat, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(ace04, nested, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(ace05, nested, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(genia, nested, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(cadec, discontinuous, Full, Adapters768)
GENNER_DATASET_EXPERIMENTS(share13, discontinuous, FullNoMlp, Adapters768NoMlp)  // published without the encoder MLP
GENNER_DATASET_EXPERIMENTS(share14, discontinuous, Full, Adapters768)
#undef GENNER_DATASET_EXPERIMENTS

// CoNLL-2003's other published rows: full fine-tuning of t5-large and t5-11b, the soft prompt and
// adapters + soft prompt on t5-11b.
using conll2003_t5_large = Compiled<"conll2003_t5_large", flat, Full<T5Large>, "t5-large", "conll2003.json">;
using conll2003_t5_11b = Compiled<"conll2003_t5_11b", flat, Full<T5_11B>, "t5-11b", "conll2003.json">;
using conll2003_t5_11b_prompt =
    Compiled<"conll2003_t5_11b_prompt", flat, PromptTuning<T5_11B, 100>, "t5-11b", "conll2003.json", "peft.json">;
using conll2003_t5_11b_adapter_prompt =
    Compiled<"conll2003_t5_11b_adapter_prompt", flat, AdapterPromptTuning<T5_11B, 768, 100>, "t5-11b", "conll2003.json",
             "peft.json">;

// The tiny static preset: adapters on T5Tiny, for end-to-end runs that take seconds on a CPU.
using tiny_adapters = Compiled<"tiny_adapters", flat, AdapterTuning<T5Tiny>, "scratch", "sample_tiny.json">;

// One program per parameter-efficient tuning mode, on a backbone of any shape (--model decides it;
// DynamicBackbone) and data of any family (--family; a data set's config file names its own). Full
// fine-tuning is flat_ner, nested_ner and discontinuous_ner. Built by default.
using ner_adapters = AnyFamily<"ner_adapters", AdapterTuning<DynamicBackbone>>;
using ner_lora = AnyFamily<"ner_lora", LoraTuning<DynamicBackbone, 8>>;
using ner_prompt = AnyFamily<"ner_prompt", PromptTuning<DynamicBackbone, 100>>;
using ner_adapters_prompt =
    AnyFamily<"ner_adapters_prompt", AdapterPromptTuning<DynamicBackbone, auto_adapter_size, 100>>;
using ner_embeddings = AnyFamily<"ner_embeddings", EmbeddingTuning<DynamicBackbone>>;
inline constexpr auto modes = boost::hana::tuple_t<ner_adapters, ner_lora, ner_prompt, ner_adapters_prompt, ner_embeddings>;

inline constexpr auto all =
    boost::hana::tuple_t<conll2003_t5_base, conll2003_t5_3b_adapters, conll2003_t5_11b_adapters, conll2003_t5_large,
                         conll2003_t5_11b, conll2003_t5_11b_prompt, conll2003_t5_11b_adapter_prompt, ontonotes_t5_base,
                         ontonotes_t5_3b_adapters, ontonotes_t5_11b_adapters, wnut17_t5_base, wnut17_t5_3b_adapters,
                         wnut17_t5_11b_adapters, ace04_t5_base, ace04_t5_3b_adapters, ace04_t5_11b_adapters,
                         ace05_t5_base, ace05_t5_3b_adapters, ace05_t5_11b_adapters, genia_t5_base,
                         genia_t5_3b_adapters, genia_t5_11b_adapters, cadec_t5_base, cadec_t5_3b_adapters,
                         cadec_t5_11b_adapters, share13_t5_base, share13_t5_3b_adapters, share13_t5_11b_adapters,
                         share14_t5_base, share14_t5_3b_adapters, share14_t5_11b_adapters, tiny_adapters>;
}  // namespace experiments

/// Names of the listed executables for `family` whose compiled structure has `key` = `value`
/// (and, when `shape` is given, whose static backbone has that shape).
inline std::vector<std::string> executables_with(Family family, const std::string& key, const nlohmann::json& value,
                                                 const std::optional<t5::T5Config>& shape = {}) {
  std::vector<std::string> out;
  // The tuning-mode programs first (built by default; any family, any shape).
  if (!key.empty() && !shape)
    boost::hana::for_each(experiments::modes, [&](auto t) {
      using Entry = typename decltype(t)::type;
      using E = typename Entry::experiment;
      if (structure_settings(E::spec(), t5::T5Config{}).at(key) == value) out.push_back(Entry::name());
    });
  boost::hana::for_each(experiments::all, [&](auto t) {
    using Entry = typename decltype(t)::type;
    using E = typename Entry::experiment;
    if (Entry::family != family) return;
    const auto c = E::backbone::config();
    if (shape && !c.same_structure(*shape)) return;
    if (!key.empty() && structure_settings(E::spec(), c).at(key) != value) return;
    out.push_back(Entry::name());
  });
  return out;
}

inline std::string list_names(const std::vector<std::string>& names, size_t most = 6) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < most; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > most) out += ", ...";
  return out;
}

}  // namespace genner::app
