// Data parallelism over c10d (Gloo on loopback, ranks as threads of this process): 2 ranks x half
// a batch give the weights of 1 rank x the whole batch, for full fine-tuning, adapters and models
// split by a device map; gradient accumulation equals one larger batch; sharded evaluation equals
// the unsharded one; resume under data parallelism; failures name the rank and the store.
#include <genner/genner.hpp>
#include <genner/data/sample.hpp>

#include "support.hpp"
#include "sample_task.hpp"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <thread>

namespace {

namespace fs = std::filesystem;
namespace gm = genner::model;
namespace dist = genner::train::dist;
using Full = gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>;
using Adapter = gm::AdapterTuning<genner::t5::DynamicBackbone, 8>;
using Staged =
    gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>, gm::DeviceMap<gm::Balanced<2>>>;

/// Sample data, a tokenizer trained on it, and encoded examples (made once for the whole file).
struct Data {
  genner::text::Tokenizer tokenizer;
  genner::data::LabelSpace labels;
  std::vector<genner::data::Example> train, dev;
};

const Data& data() {
  static genner::test::TempDir dir;
  static const Data d = [] {
    auto t = genner::test::SampleTask::make(dir.path, 11, {160, 21, 5}, 300);
    return Data{std::move(t.tokenizer), std::move(t.labels), std::move(t.train_ex), std::move(t.dev_ex)};
  }();
  return d;
}

/// A small T5 without dropout (dropout masks differ between ranks by design), seeded alike.
template <class E>
std::shared_ptr<gm::NerModelImpl<E>> make_model(std::vector<torch::Device> devices = {torch::kCPU}) {
  genner::t5::T5Config c;
  c.vocab_size = data().tokenizer.piece_count() + genner::text::Tokenizer::kNumExtraIds;
  c.d_model = 32;
  c.d_ff = 64;
  c.num_heads = 4;
  c.d_kv = 8;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  c.dropout_rate = 0.0;
  gm::NerOptions o;
  o.types(data().labels.size()).with_config(c).on(devices);
  o.mlp_dropout = 0.0;
  torch::manual_seed(5);
  return std::make_shared<gm::NerModelImpl<E>>(o);
}

genner::train::TrainerOptions options(const fs::path& out) {
  genner::train::TrainerOptions o;
  o.lr = 2e-3;
  o.warmup = 0.25;
  o.clip_norm = 1.0;
  o.truncate_prob = 0.5;  // truncation must cut the global batch alike on every rank
  o.max_tokens = 900;     // about 16 sentences per batch
  o.max_steps = 4;
  o.eval_every = 4;
  o.resume = false;
  o.output_dir = out;
  o.show_progress = false;
  o.decode.constrained = true;
  o.decode.search.max_length(8, 0.5);
  o.callbacks.push_back(std::make_shared<genner::train::JsonlLogCallback>());
  return o;
}

/// Runs fn(rank, group) on `world` threads joined in one Gloo group on loopback; rethrows the
/// first failure.
void run_ranks(int world, const std::function<void(int, dist::Group&)>& fn,
               std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const int port = dist::free_local_port();
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        dist::LaunchEnv env;
        env.rank = r;
        env.world_size = world;
        env.local_rank = r;
        env.master_port = port;
        auto group = dist::Group::connect(env, {dist::Backend::gloo, timeout});
        fn(r, group);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

/// Largest ||a - b|| / ||b|| over the trainable tensors.
double relative_difference(const gm::NerModelCore& a, const gm::NerModelCore& b) {
  auto pa = a.trainable_parameters(), pb = b.trainable_parameters();
  REQUIRE(pa.size() == pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    REQUIRE(pa[i].first == pb[i].first);
    const double diff = (pa[i].second.cpu() - pb[i].second.cpu()).norm().item<double>();
    const double norm = pb[i].second.norm().item<double>();
    worst = std::max(worst, diff / std::max(norm, 1e-12));
  }
  return worst;
}

bool identical(const gm::NerModelCore& a, const gm::NerModelCore& b) {
  auto pa = a.trainable_parameters(), pb = b.trainable_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i].second.cpu(), pb[i].second.cpu())) return false;
  return pa.size() == pb.size();
}

/// One process, the whole batch (with `accumulate` micro-batches).
template <class E>
std::shared_ptr<gm::NerModelImpl<E>> train_single(const fs::path& out, int64_t accumulate = 1,
                                                  genner::train::TrainResult* result = nullptr) {
  auto m = make_model<E>();
  auto o = options(out);
  o.accumulate = accumulate;
  auto r = genner::train::Trainer(*m, data().labels, data().train, data().dev, o).fit();
  if (result) *result = r;
  return m;
}

struct RankRun {
  std::vector<std::shared_ptr<gm::NerModelCore>> models;
  std::vector<genner::train::TrainResult> results;
  std::vector<dist::ReduceStats> stats;
};

/// `world` ranks sharing one output folder; each builds its model with `make`.
RankRun train_ranks(int world, const fs::path& out, const std::function<std::shared_ptr<gm::NerModelCore>()>& make,
                    int64_t accumulate = 1) {
  RankRun run;
  for (int r = 0; r < world; ++r) run.models.push_back(make());
  run.results.resize(static_cast<size_t>(world));
  run.stats.resize(static_cast<size_t>(world));
  run_ranks(world, [&](int r, dist::Group& group) {
    auto o = options(out);
    o.group = &group;
    o.accumulate = accumulate;
    genner::train::Trainer trainer(*run.models[static_cast<size_t>(r)], data().labels, data().train, data().dev, o);
    run.results[static_cast<size_t>(r)] = trainer.fit();
    run.stats[static_cast<size_t>(r)] = trainer.reduce_stats();
  });
  return run;
}

int64_t trainable_bytes(const gm::NerModelCore& m) { return m.count_trainable() * 4; }

}  // namespace

TEST_CASE("2 ranks x half a batch give the weights of 1 rank x the whole batch (full fine-tuning)", "[distributed]") {
  genner::test::TempDir tmp;
  genner::train::TrainResult single_result;
  auto single = train_single<Full>(tmp.path / "one", 1, &single_result);
  auto init = make_model<Full>();
  REQUIRE(relative_difference(*single, *init) > 1e-3);  // training moved the weights

  auto dp = train_ranks(2, tmp.path / "two", [] { return make_model<Full>(); });
  INFO("relative difference to one process: " << relative_difference(*dp.models[0], *single));
  CHECK(relative_difference(*dp.models[0], *single) <= 1e-6);
  CHECK(identical(*dp.models[0], *dp.models[1]));  // identical optimizer steps on both ranks
  CHECK(dp.results[0].steps == 4);
  CHECK(dp.results[0].best_dev_f1 == dp.results[1].best_dev_f1);
  CHECK(std::abs(dp.results[0].best_dev_f1 - single_result.best_dev_f1) < 1e-9);
  // One all-reduce per step, of every trainable gradient and nothing else.
  CHECK(dp.stats[0].calls == 4);
  CHECK(dp.stats[0].bytes == 4 * trainable_bytes(*dp.models[0]));
  // Rank 0 alone wrote: one log line per evaluation.
  CHECK(genner::train::JsonlLog::read(tmp.path / "two" / "log.jsonl").size() == 1);
  CHECK(fs::exists(tmp.path / "two" / "checkpoint" / "state.json"));
}

TEST_CASE("2 ranks x half a batch equal 1 rank for an adapter experiment; frozen weights send nothing",
          "[distributed]") {
  genner::test::TempDir tmp;
  auto single = train_single<Adapter>(tmp.path / "one");
  auto dp = train_ranks(2, tmp.path / "two", [] { return make_model<Adapter>(); });
  INFO("relative difference to one process: " << relative_difference(*dp.models[0], *single));
  CHECK(relative_difference(*dp.models[0], *single) <= 1e-6);
  CHECK(identical(*dp.models[0], *dp.models[1]));
  int64_t all = 0;
  for (const auto& p : dp.models[0]->parameters()) all += p.numel() * 4;
  CHECK(trainable_bytes(*dp.models[0]) < all / 2);
  CHECK(dp.stats[0].bytes == 4 * trainable_bytes(*dp.models[0]));
}

TEST_CASE("gradient accumulation: K micro-batches give the update of one K-times-larger batch", "[distributed]") {
  genner::test::TempDir tmp;
  auto whole = train_single<Full>(tmp.path / "k1", 1);
  auto three = train_single<Full>(tmp.path / "k3", 3);
  INFO("relative difference, 3 micro-batches vs 1: " << relative_difference(*three, *whole));
  CHECK(relative_difference(*three, *whole) <= 1e-6);
  // With 2 ranks, still one all-reduce per update, not per micro-batch.
  auto dp = train_ranks(
      2, tmp.path / "dp", [] { return make_model<Full>(); }, 2);
  CHECK(relative_difference(*dp.models[0], *whole) <= 1e-6);
  CHECK(dp.stats[0].calls == 4);
}

TEST_CASE("2 ranks x 2 pipeline stages (DeviceMap<Balanced<2>> on cpu) equal one process", "[distributed]") {
  genner::test::TempDir tmp;
  auto single = train_single<Full>(tmp.path / "one");
  auto dp = train_ranks(2, tmp.path / "two", [] { return make_model<Staged>({torch::kCPU, torch::kCPU}); });
  const auto [enc, dec] = Staged::spec().device_map.ordinals(2, 2);
  REQUIRE(enc.front() == 0);
  REQUIRE(dec.back() == 1);  // two stages: encoder on the first device, decoder on the second
  INFO("relative difference to one process: " << relative_difference(*dp.models[0], *single));
  CHECK(relative_difference(*dp.models[0], *single) <= 1e-6);
  CHECK(identical(*dp.models[0], *dp.models[1]));
}

TEST_CASE("sharded evaluation gathers the same predictions and scores as one process", "[distributed]") {
  auto model = make_model<Full>();
  {
    genner::test::TempDir tmp;
    auto o = options(tmp.path);
    o.max_steps = 6;
    genner::train::Trainer(*model, data().labels, data().train, data().dev, o).fit();
  }
  const auto decode = options("").decode;
  auto one = genner::train::evaluate(*model, data().dev, data().labels, decode, 4);
  REQUIRE(one.scores.micro.predicted > 0);
  std::vector<genner::train::Evaluation> got(2);
  auto second = make_model<Full>();
  {
    torch::NoGradGuard g;
    auto a = model->named_parameters(), b = second->named_parameters();
    for (auto& p : b) p.value().copy_(a[p.key()]);
  }
  run_ranks(2, [&](int r, dist::Group& group) {
    got[static_cast<size_t>(r)] =
        genner::train::evaluate(group, r == 0 ? *model : *second, data().dev, data().labels, decode, 4);
  });
  for (const auto& ev : got) {
    CHECK(ev.predictions == one.predictions);
    CHECK(ev.scores.micro.correct == one.scores.micro.correct);
    CHECK(ev.scores.micro.predicted == one.scores.micro.predicted);
    CHECK(ev.invalid_entities == one.invalid_entities);
  }
}

TEST_CASE("an interrupted 2-rank run resumes from the same global position", "[distributed]") {
  genner::test::TempDir tmp;
  auto run = [&](const fs::path& out, std::vector<int64_t> stops) {
    std::vector<std::shared_ptr<gm::NerModelCore>> models;
    for (auto stop : stops) {
      models = {make_model<Full>(), make_model<Full>()};  // fresh objects, as after a crash
      run_ranks(2, [&](int r, dist::Group& group) {
        auto o = options(out);
        o.max_steps = 6;
        o.eval_every = 2;
        o.resume = true;
        o.interrupt_after = stop;
        o.group = &group;
        genner::train::Trainer(*models[static_cast<size_t>(r)], data().labels, data().train, data().dev, o).fit();
      });
    }
    return models;
  };
  auto straight = run(tmp.path / "straight", {0});
  auto resumed = run(tmp.path / "resumed", {3, 0});  // stops after step 3 (checkpoint at 2), resumes from 2
  CHECK(identical(*straight[0], *resumed[0]));
  CHECK(identical(*resumed[0], *resumed[1]));
  std::vector<int64_t> steps;
  for (const auto& l : genner::train::JsonlLog::read(tmp.path / "resumed" / "log.jsonl"))
    steps.push_back(l["step"].get<int64_t>());
  CHECK(steps == std::vector<int64_t>{2, 4, 6});
}

TEST_CASE("a rank that cannot reach the store or loses its peer fails in bounded time, naming rank and store",
          "[distributed]") {
  const int port = dist::free_local_port();
  dist::LaunchEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_port = port;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(dist::Group::connect(env, {dist::Backend::gloo, std::chrono::seconds(2)}),
                    Catch::Contains("rank 1 of 2") && Catch::Contains("127.0.0.1:" + std::to_string(port)) &&
                        Catch::Contains("reach the store"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));

  // Rank 1 leaves after joining; rank 0's next all-reduce must fail, not hang.
  std::string message;
  const auto t1 = std::chrono::steady_clock::now();
  run_ranks(
      2,
      [&](int r, dist::Group& group) {
        group.barrier("join");
        if (r == 1) return;  // this rank's group is destroyed: its connections close
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        try {
          auto t = at::ones({8});
          group.all_reduce_sum(t, "gradient all-reduce");
        } catch (const genner::Error& e) {
          message = e.what();
        }
      },
      std::chrono::seconds(3));
  INFO(message);
  CHECK(message.find("rank 0 of 2 (store 127.0.0.1:") != std::string::npos);
  CHECK(message.find("gradient all-reduce failed") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::seconds(30));
}

TEST_CASE("launch variables: torchrun's names, checked", "[distributed]") {
  auto with_env = [](std::vector<std::pair<const char*, const char*>> vars, auto&& fn) {
    for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(k);
    for (auto [k, v] : vars) ::setenv(k, v, 1);
    fn();
    for (auto [k, v] : vars) ::unsetenv(k);
  };
  with_env({}, [] { CHECK(!dist::launch_env_from_environment().from_environment); });
  with_env(
      {{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "10.0.0.2"}, {"MASTER_PORT", "29555"}},
      [] {
        auto e = dist::launch_env_from_environment();
        CHECK(e.from_environment);
        CHECK(e.rank == 1);
        CHECK(e.world_size == 4);
        CHECK(e.master_addr == "10.0.0.2");
        CHECK(e.master_port == 29555);
      });
  with_env({{"RANK", "1"}}, [] {
    CHECK_THROWS_WITH(dist::launch_env_from_environment(), Catch::Contains("RANK and WORLD_SIZE go together"));
  });
  with_env({{"RANK", "4"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}, [] {
    CHECK_THROWS_WITH(dist::launch_env_from_environment(), Catch::Contains("RANK=4 is outside WORLD_SIZE=4"));
  });
  with_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "http"}}, [] {
    CHECK_THROWS_WITH(dist::launch_env_from_environment(), Catch::Contains("MASTER_PORT: expected an integer"));
  });
  CHECK_THROWS_WITH(dist::parse_backend("mpi", false), Catch::Contains("expected 'auto', 'gloo' or 'nccl'"));
  if (!dist::nccl_available()) CHECK_THROWS_WITH(dist::parse_backend("nccl", false), Catch::Contains("has no NCCL"));
  CHECK(dist::parse_backend("auto", false) == dist::Backend::gloo);
}
