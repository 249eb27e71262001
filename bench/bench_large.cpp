// bench_large: a published large-model experiment at its real shape, end to end on this machine —
// load a Hugging Face checkpoint folder (genner_write_checkpoint writes random ones), train a few
// steps on real CoNLL-2003 sentences, decode one batch — reporting load, step and decode times,
// peak resident memory at each stage and the memory plan's prediction beside it (one JSON line).
//
//   bench_large --experiment adapters-3b --model /data/t5-3b --frozen_precision bf16 --steps 3
//               [--checkpointing true] [--batch 8] [--source 64] [--device cuda:0] [--data FILE] [--seed 42]
//   experiments: full-large (FullFineTuning<T5Large>), adapters-3b / adapters-11b (AdapterTuning
//   <T5_3B|T5_11B, 768>: published spread, layer norms, encoder MLP)
#include <genner/core/memory.hpp>
#include <genner/data.hpp>
#include <genner/model.hpp>
#include <genner/text.hpp>
#include <genner/train.hpp>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace gm = genner::model;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double gib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

struct Settings {
  std::string experiment, model, data, frozen = "fp32", device = "cpu";
  bool checkpointing = false;
  int64_t batch = 8, steps = 3, source = 64, decode = 0;  // decode 0: one batch of `batch` sentences
  uint64_t seed = 42;
};

template <class E>
nlohmann::json run(const Settings& s) {
  nlohmann::json out = {{"experiment", s.experiment}, {"seed", s.seed}, {"frozen_precision", s.frozen},
                        {"gradient_checkpointing", s.checkpointing}, {"batch", s.batch}};
  const int64_t rss0 = genner::core::current_rss_bytes();
  // Data first: the tokenizer of the model folder, real sentences of at most `source` pieces.
  auto tokenizer = genner::text::Tokenizer::load(fs::path(s.model) / "spiece.model");
  const auto data = genner::data::load_conll(s.data);
  auto labels = genner::data::LabelSpace::make(data.types, tokenizer);
  auto all = genner::data::encode_dataset(data, tokenizer, labels, genner::data::TargetType::word);
  std::vector<genner::data::Example> examples;
  for (auto& e : all)
    if (static_cast<int64_t>(e.src_ids.size()) <= s.source && e.target.size() > 1) examples.push_back(std::move(e));
  const auto needed = static_cast<size_t>(s.batch * s.steps);
  GENNER_CHECK(examples.size() >= needed, s.data, ": ", examples.size(), " sentences of at most ", s.source,
               " pieces, ", needed, " needed");
  examples.resize(needed);

  gm::NerOptions options;
  options.types(static_cast<int64_t>(data.types.size()));
  const torch::Device device(s.device);
  if (!device.is_cpu()) options.on({device});
  options.frozen_storage = s.frozen == "bf16"   ? genner::t5::WeightStorage::bf16
                           : s.frozen == "int8" ? genner::t5::WeightStorage::int8
                                                : genner::t5::WeightStorage::fp32;
  torch::manual_seed(s.seed);  // dropout masks and the adapters' initialisation: a rerun repeats the run
  auto t = Clock::now();
  auto model = gm::NerModelImpl<E>::from_pretrained(s.model, options);
  out["load_s"] = seconds_since(t);
  out["peak_rss_load_GiB"] = gib(genner::core::peak_rss_bytes());
  int64_t model_bytes = 0;
  for (const auto& p : model->parameters()) model_bytes += p.numel() * static_cast<int64_t>(p.element_size());
  out["model_GiB"] = gib(model_bytes);
  out["rss_before_load_GiB"] = gib(rss0);
  model->set_checkpointing(s.checkpointing);
  model->train();
  gm::MemoryShape shape{s.batch, 1, 1};
  for (const auto& e : examples) {
    shape.source = std::max<int64_t>(shape.source, static_cast<int64_t>(e.src_ids.size()));
    shape.target = std::max<int64_t>(shape.target, static_cast<int64_t>(e.target.size()) + 1);
  }
  const auto plan = gm::plan_memory(*model, shape, gm::Precision::fp32, s.checkpointing);
  out["plan_GiB"] = gib(plan.total());
  out["plan"] = plan.to_json();
  out["trainable"] = model->count_trainable();

  auto optimizer = model->make_adamw(1e-4);
  std::vector<double> steps;
  for (int64_t k = 0; k < s.steps; ++k) {
    std::vector<size_t> idx;
    for (int64_t i = 0; i < s.batch; ++i) idx.push_back(static_cast<size_t>(k * s.batch + i));
    auto batch = genner::data::collate(examples, idx);
    t = Clock::now();
    optimizer->zero_grad();
    auto loss = model->forward(batch.src_ids.to(device), batch.src_mask.to(device), batch.decoder_input_ids.to(device),
                               batch.target.to(device))
                    .loss;
    loss.backward();
    optimizer->step();
    steps.push_back(seconds_since(t));
    std::cerr << "  step " << k + 1 << ": loss " << loss.template item<double>() << ", " << steps.back() << " s, peak RSS "
              << gib(genner::core::peak_rss_bytes()) << " GiB\n";
  }
  out["step_s"] = steps;
  out["peak_rss_train_GiB"] = gib(genner::core::peak_rss_bytes());
  optimizer.reset();
  const int64_t n_decode = s.decode > 0 ? s.decode : s.batch;
  std::vector<genner::data::Example> decode_set(examples.begin(),
                                                examples.begin() + std::min<int64_t>(n_decode, examples.size()));
  genner::generate::PointerDecodeOptions decode;
  decode.search.max_length(10, 0.6);
  decode.flat = true;
  t = Clock::now();
  const auto ev = genner::train::evaluate(*model, decode_set, labels, decode, decode_set.size());
  out["decode_s"] = seconds_since(t);
  out["decoded_sentences"] = decode_set.size();
  out["peak_rss_GiB"] = gib(genner::core::peak_rss_bytes());
#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    out["peak_cuda_allocated_GiB"] = gib(stats.allocated_bytes[0].peak);
  }
#endif
  return out;
}

int main_(int argc, char** argv) {
  Settings s;
  s.data = "../shared/data/conll2003/train.txt";
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); i += 2) {
    GENNER_CHECK(i + 1 < args.size(), args[i], " needs a value");
    const auto& k = args[i];
    const auto& v = args[i + 1];
    if (k == "--experiment") s.experiment = v;
    else if (k == "--model") s.model = v;
    else if (k == "--data") s.data = v;
    else if (k == "--frozen_precision") s.frozen = v;
    else if (k == "--checkpointing") s.checkpointing = v == "true";
    else if (k == "--batch") s.batch = std::stoll(v);
    else if (k == "--steps") s.steps = std::stoll(v);
    else if (k == "--source") s.source = std::stoll(v);
    else if (k == "--decode") s.decode = std::stoll(v);
    else if (k == "--device") s.device = v;
    else if (k == "--seed") s.seed = std::stoull(v);
    else genner::fail("unknown option '", k, "'");
  }
  GENNER_CHECK(!s.model.empty(), "--model DIR is required (genner_write_checkpoint writes one)");
  nlohmann::json result;
  if (s.experiment == "full-large")
    result = run<gm::FullFineTuning<genner::t5::T5Large>>(s);
  else if (s.experiment == "adapters-3b")
    result = run<gm::AdapterTuning<genner::t5::T5_3B, 768>>(s);
  else if (s.experiment == "adapters-11b")
    result = run<gm::AdapterTuning<genner::t5::T5_11B, 768>>(s);
  else
    genner::fail("--experiment: expected full-large, adapters-3b or adapters-11b, found '", s.experiment, "'");
  result.erase("plan");
  std::cout << result.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_large: error: " << e.what() << "\n";
    return 1;
  }
}
