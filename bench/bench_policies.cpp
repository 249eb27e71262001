// Every combination of tuning mode x pointer head x device map on the t5-small shape, as one
// compile-time list: Boost.Hana forms the cartesian product of three type lists, and each
// element becomes an experiment alias and one registered benchmark (a training step:
// forward + backward + AdamW at batch 8, source 64, target 16). Counters: trainable
// parameters and the bytes held by parameters + gradients + optimizer state.
//
//   ./build/bench/bench_policies --benchmark_filter='adapters/.*/single'
#include <genner/model.hpp>

#include <benchmark/benchmark.h>

#include "support.hpp"
#include <boost/hana.hpp>

#include <string>

namespace {

namespace hana = boost::hana;
namespace gm = genner::model;
using Small = genner::t5::T5Small;

constexpr int64_t kBatch = 8, kSrc = 64, kTgt = 16, kTypes = 4;

/// A named list of policies: one tuning mode, one head, one device map.
template <class... Policies>
struct Named {
  const char* name;
};
template <class... Policies>
constexpr auto named(const char* name) {
  return Named<Policies...>{name};
}

// The three axes. Each element carries its policies in its type and its name as a value.
const auto tunings = hana::make_tuple(
    named<gm::Trainable<gm::Everything>>("full"), named<gm::Trainable<gm::EmbeddingsOnly>>("embeddings"),
    named<gm::SoftPrompt<20>>("prompt20"),
    named<gm::Adapters<>, gm::Trainable<gm::AddedModules, gm::WithLayerNorms>>("adapters"),
    named<gm::Adapters<>, gm::SoftPrompt<20>, gm::Trainable<gm::AddedModules, gm::WithLayerNorms>>("adapters+prompt20"),
    named<gm::Lora<8>>("lora8"));
const auto heads =
    hana::make_tuple(named<gm::Head<gm::HiddenFeatures>>("hidden"), named<gm::Head<gm::AvgFeature>>("avg_feature"),
                     named<gm::Head<gm::AvgScore>>("avg_score"));
const auto maps = hana::make_tuple(named<gm::DeviceMap<gm::SingleDevice<>>>("single"),
                                   named<gm::DeviceMap<gm::Balanced<2>>>("balanced2"));

template <class... A, class... B, class... C>
auto experiment_of(Named<A...>, Named<B...>, Named<C...>) -> gm::ExperimentType<Small, A..., B..., C...>;

template <class E>
void train_step(benchmark::State& state, int64_t stages) {
  torch::manual_seed(0);
  std::vector<torch::Device> devices(static_cast<size_t>(stages), torch::Device(torch::kCPU));
  gm::NerModel<E> model(gm::NerOptions{}.types(kTypes).on(devices));
  genner::bench::time_train_step(state, *model, kBatch, kSrc, kTgt, kTypes, 32000);
}

template <class M>
constexpr int64_t stages_of(M) {
  return 1;
}
constexpr int64_t stages_of(Named<gm::DeviceMap<gm::Balanced<2>>>) { return 2; }

int register_all() {
  int count = 0;
  hana::for_each(hana::cartesian_product(hana::make_tuple(tunings, heads, maps)), [&](auto combo) {
    auto tuning = hana::at_c<0>(combo);
    auto head = hana::at_c<1>(combo);
    auto map = hana::at_c<2>(combo);
    using E = decltype(experiment_of(tuning, head, map));
    const int64_t stages = stages_of(map);
    const std::string name = std::string("train_step/") + tuning.name + "/" + head.name + "/" + map.name;
    benchmark::RegisterBenchmark(name.c_str(), [stages](benchmark::State& s) { train_step<E>(s, stages); })
        ->Unit(benchmark::kMillisecond)
        ->Iterations(2);
    ++count;
  });
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  const int registered = register_all();
  static_assert(
      decltype(hana::length(hana::cartesian_product(hana::make_tuple(tunings, heads, maps))))::value == 6 * 3 * 2,
      "every tuning x head x device-map combination is registered");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("combinations", std::to_string(registered));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
