// Tests for genner/train: metric (checked against a port of conlleval), checkpoint/resume
// (bit-exact, kill -9 safe), schedule and optimisation helpers, config files, logs and plots.
#include <genner/data/conll.hpp>
#include <genner/data/entity.hpp>
#include <genner/core/adamw.hpp>
#include <genner/core/threading.hpp>
#include <genner/train.hpp>
#include <genner/app/options.hpp>
#include <genner/app/sample_settings.hpp>

#include "support.hpp"

#include <torch/nn/modules/linear.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <chrono>
#include <thread>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using genner::data::Entity;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// A line-by-line port of conlleval.pl's chunk counting (CoNLL-2000 shared task script, version
// 2004-01-26), kept independent of genner so it can judge genner's metric.
struct ConllevalResult {
  long correct_chunk = 0, found_correct = 0, found_guessed = 0, correct_tags = 0, tokens = 0;
  std::map<std::string, long> correct_by_type, found_correct_by_type, found_guessed_by_type;
  static double pct(long a, long b) { return b > 0 ? 100.0 * double(a) / double(b) : 0.0; }
  double precision() const { return pct(correct_chunk, found_guessed); }
  double recall() const { return pct(correct_chunk, found_correct); }
  static double fb1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }
  double f1() const { return fb1(precision(), recall()); }
  double f1(const std::string& t) const {
    const auto get = [&](const std::map<std::string, long>& m) {
      auto it = m.find(t);
      return it == m.end() ? 0L : it->second;
    };
    return fb1(pct(get(correct_by_type), get(found_guessed_by_type)),
               pct(get(correct_by_type), get(found_correct_by_type)));
  }
};

bool conlleval_end_of_chunk(const std::string& prev_tag, const std::string& tag, const std::string& prev_type,
                            const std::string& type) {
  bool end = false;
  if (prev_tag == "B" && tag == "B") end = true;
  if (prev_tag == "B" && tag == "O") end = true;
  if (prev_tag == "I" && tag == "B") end = true;
  if (prev_tag == "I" && tag == "O") end = true;
  if (prev_tag == "E" && tag == "E") end = true;
  if (prev_tag == "E" && tag == "I") end = true;
  if (prev_tag == "E" && tag == "O") end = true;
  if (prev_tag == "I" && tag == "O") end = true;
  if (prev_tag != "O" && prev_tag != "." && prev_type != type) end = true;
  if (prev_tag == "]") end = true;
  if (prev_tag == "[") end = true;
  return end;
}

bool conlleval_start_of_chunk(const std::string& prev_tag, const std::string& tag, const std::string& prev_type,
                              const std::string& type) {
  bool start = false;
  if (prev_tag == "B" && tag == "B") start = true;
  if (prev_tag == "I" && tag == "B") start = true;
  if (prev_tag == "O" && tag == "B") start = true;
  if (prev_tag == "O" && tag == "I") start = true;
  if (prev_tag == "E" && tag == "E") start = true;
  if (prev_tag == "E" && tag == "I") start = true;
  if (prev_tag == "O" && tag == "E") start = true;
  if (prev_tag == "O" && tag == "I") start = true;
  if (tag != "O" && tag != "." && prev_type != type) start = true;
  if (tag == "[") start = true;
  if (tag == "]") start = true;
  return start;
}

// Perl's /^([^-]*)-(.*)$/ split of a tag into prefix and type.
std::pair<std::string, std::string> conlleval_split(const std::string& s) {
  const auto dash = s.find('-');
  if (dash == std::string::npos) return {s, ""};
  return {s.substr(0, dash), s.substr(dash + 1)};
}

ConllevalResult conlleval(std::istream& in) {
  const std::string boundary = "-X-";
  ConllevalResult r;
  bool in_correct = false;
  std::string last_correct = "O", last_guessed = "O", last_correct_type, last_guessed_type;
  long n_features = -1;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> features;
    std::istringstream fs_(line);
    for (std::string f; fs_ >> f;) features.push_back(f);
    if (n_features < 0)
      n_features = long(features.size());
    else if (!features.empty() && n_features != long(features.size()))
      FAIL("conlleval: unexpected number of features in: " << line);
    if (features.empty() || features[0] == boundary) features = {boundary, "O", "O"};
    REQUIRE(features.size() >= 3);
    auto [guessed, guessed_type] = conlleval_split(features.back());
    features.pop_back();
    auto [correct, correct_type] = conlleval_split(features.back());
    features.pop_back();
    const std::string first_item = features.front();
    if (first_item == boundary) guessed = "O";

    const bool end_c = conlleval_end_of_chunk(last_correct, correct, last_correct_type, correct_type);
    const bool end_g = conlleval_end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type);
    if (in_correct) {
      if (end_c && end_g && last_guessed_type == last_correct_type) {
        in_correct = false;
        ++r.correct_chunk;
        ++r.correct_by_type[last_correct_type];
      } else if (end_c != end_g || guessed_type != correct_type) {
        in_correct = false;
      }
    }
    const bool start_c = conlleval_start_of_chunk(last_correct, correct, last_correct_type, correct_type);
    const bool start_g = conlleval_start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type);
    if (start_c && start_g && guessed_type == correct_type) in_correct = true;
    if (start_c) {
      ++r.found_correct;
      ++r.found_correct_by_type[correct_type];
    }
    if (start_g) {
      ++r.found_guessed;
      ++r.found_guessed_by_type[guessed_type];
    }
    if (first_item != boundary) {
      if (correct == guessed && guessed_type == correct_type) ++r.correct_tags;
      ++r.tokens;
    }
    last_guessed = guessed;
    last_correct = correct;
    last_guessed_type = guessed_type;
    last_correct_type = correct_type;
  }
  if (in_correct) {
    ++r.correct_chunk;
    ++r.correct_by_type[last_correct_type];
  }
  return r;
}

// Deterministic "predictions": gold with entities dropped, retyped, re-bounded, and spurious ones
// added; predictions never overlap so that BIO can hold them exactly.
std::vector<Entity> perturb(const std::vector<Entity>& gold, std::size_t n, const std::vector<std::string>& types,
                            std::mt19937_64& rng) {
  std::vector<char> used(n, 0);
  std::vector<Entity> out;
  const auto free = [&](int s, int e) {
    if (s < 0 || e > int(n) || s >= e) return false;
    for (int k = s; k < e; ++k)
      if (used[std::size_t(k)]) return false;
    return true;
  };
  const auto take = [&](Entity e) {
    for (int k = e.fragments[0].first; k < e.fragments[0].second; ++k) used[std::size_t(k)] = 1;
    out.push_back(std::move(e));
  };
  std::uniform_int_distribution<int> pct(0, 99);
  for (const auto& g : gold) {
    const int roll = pct(rng);
    Entity e = g;
    auto& [s, t] = e.fragments[0];
    if (roll < 8) continue;  // missed
    if (roll < 16)
      e.type = types[std::size_t(pct(rng)) % types.size()];  // retyped (maybe to itself)
    else if (roll < 20)
      --s;  // boundary errors
    else if (roll < 24)
      ++t;
    else if (roll < 27 && t - s > 1)
      ++s;
    else if (roll < 30 && t - s > 1)
      --t;
    if (!free(s, t)) e = g;  // would overlap: keep gold's boundaries instead
    if (!free(e.fragments[0].first, e.fragments[0].second)) continue;
    take(std::move(e));
  }
  for (int k = 0; k < int(n); ++k) {  // spurious entities on free words
    if (pct(rng) >= 3) continue;
    const int len = 1 + pct(rng) % 3;
    if (free(k, k + len)) take({types[std::size_t(pct(rng)) % types.size()], {{k, k + len}}});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("metric counts entities with multiplicity, per type, and exact matches", "[train]") {
  using genner::train::EntityMetric;
  EntityMetric m;
  // Sentence 1: one right, one wrong type, one missed; a discontinuous entity matched.
  m.add(std::vector<Entity>{{"PER", {{0, 2}}}, {"LOC", {{3, 4}}}, {"ORG", {{5, 6}}}, {"ADR", {{7, 8}, {9, 10}}}},
        std::vector<Entity>{{"PER", {{0, 2}}}, {"ORG", {{3, 4}}}, {"ADR", {{7, 8}, {9, 10}}}});
  // Sentence 2: exact match, including a duplicated (nested-corpus) entity.
  m.add(std::vector<Entity>{{"PER", {{0, 1}}}, {"PER", {{0, 1}}}},
        std::vector<Entity>{{"PER", {{0, 1}}}, {"PER", {{0, 1}}}});
  // Sentence 3: predicted twice, present once: one right, one wrong.
  m.add(std::vector<Entity>{{"LOC", {{1, 3}}}}, std::vector<Entity>{{"LOC", {{1, 3}}}, {"LOC", {{1, 3}}}});
  // Sentence 4: fragments matter, not only the outer span.
  m.add(std::vector<Entity>{{"ADR", {{0, 1}, {2, 3}}}}, std::vector<Entity>{{"ADR", {{0, 3}}}});
  const auto& s = m.scores();
  CHECK(s.micro.gold == 8);
  CHECK(s.micro.predicted == 8);
  CHECK(s.micro.correct == 5);
  CHECK(s.micro.f1() == Approx(5.0 / 8.0));
  CHECK(s.sentences == 4);
  CHECK(s.exact == 1);
  CHECK(s.per_type.at("PER").correct == 3);
  CHECK(s.per_type.at("LOC").gold == 2);
  CHECK(s.per_type.at("LOC").predicted == 2);
  CHECK(s.per_type.at("LOC").correct == 1);
  CHECK(s.per_type.at("ORG").f1() == 0.0);
  CHECK(s.per_type.at("ADR").precision() == Approx(0.5));
  const auto j = s.to_json();
  CHECK(j["per_type"]["PER"]["gold"] == 3);
  CHECK(j["exact_match"].get<double>() == Approx(25.0));  // JSON figures are percentages
  CHECK(j["f1"].get<double>() == Approx(62.5));
  CHECK(j["per_type"]["ADR"]["precision"].get<double>() == Approx(50.0));
  CHECK(j["scale"] == "percent");
  EntityMetric empty;
  CHECK(empty.scores().micro.f1() == 0.0);
}

TEST_CASE("metric F1 equals conlleval's on CoNLL-2003 test with perturbed predictions", "[train]") {
  const auto file = genner::test::data_root() / "conll2003" / "test.txt";
  if (!fs::exists(file)) {
    WARN("CoNLL-2003 not found at " << file << "; skipping the conlleval agreement check");
    return;
  }
  const auto data = genner::data::load_conll(file);
  REQUIRE(data.sentences.size() > 3000);
  genner::test::TempDir tmp;
  const auto out_path = tmp.path / "pred.conll";
  genner::train::EntityMetric metric;
  std::mt19937_64 rng(20240611);
  {
    std::ofstream out(out_path);
    for (const auto& s : data.sentences) {
      auto pred = perturb(s.entities, s.words.size(), data.types, rng);
      metric.add(s.entities, pred);
      REQUIRE(genner::data::write_conll(out, s.words, s.entities, pred) == 0);
    }
  }
  std::ifstream in(out_path);
  const auto ref = conlleval(in);
  const auto& g = metric.scores();
  INFO("genner P/R/F1 " << 100 * g.micro.precision() << " " << 100 * g.micro.recall() << " " << 100 * g.micro.f1()
                        << "; conlleval " << ref.precision() << " " << ref.recall() << " " << ref.f1());
  CHECK(long(g.micro.gold) == ref.found_correct);
  CHECK(long(g.micro.predicted) == ref.found_guessed);
  CHECK(long(g.micro.correct) == ref.correct_chunk);
  CHECK(std::abs(100 * g.micro.f1() - ref.f1()) < 1e-9);
  CHECK(g.micro.f1() > 0.7);  // the perturbation really leaves a realistic score
  CHECK(g.micro.f1() < 0.95);
  for (const auto& [type, c] : g.per_type) {
    INFO(type);
    CHECK(std::abs(100 * c.f1() - ref.f1(type)) < 1e-9);
  }
  // conlleval prints two decimals: the printed figures agree too.
  char a[32], b[32];
  std::snprintf(a, sizeof a, "%6.2f", 100 * g.micro.f1());
  std::snprintf(b, sizeof b, "%6.2f", ref.f1());
  CHECK(std::string(a) == std::string(b));
  // The gold file itself scores 100 against itself through both paths.
  std::ostringstream self;
  for (const auto& s : data.sentences) genner::data::write_conll(self, s.words, s.entities, s.entities);
  std::istringstream self_in(self.str());
  CHECK(conlleval(self_in).f1() == Approx(100.0));
  WARN("CoNLL-2003 test, perturbed: genner F1 " << 100 * g.micro.f1() << " vs conlleval-port F1 " << ref.f1() << " ("
                                                << g.micro.correct << "/" << g.micro.predicted << "/" << g.micro.gold
                                                << ")");
}

// ---------------------------------------------------------------------------------------------
// Resume: a tiny model trained with AdamW + schedule + dropout + a shuffled sampler.
namespace {

struct TinyNetImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  TinyNetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 4));
  }
  at::Tensor forward(const at::Tensor& x) { return fc2(at::dropout(at::relu(fc1(x)), 0.3, is_training())); }
};
TORCH_MODULE(TinyNet);

// A shuffling sampler driven by the run's mt19937_64; its position is what the checkpoint stores.
struct ShuffledSampler {
  std::vector<int64_t> order;
  std::size_t cursor = 0;
  int64_t epoch = 0;
  std::vector<int64_t> next(std::mt19937_64& rng, std::size_t n, std::size_t batch) {
    std::vector<int64_t> out;
    while (out.size() < batch) {
      if (cursor == order.size()) {
        order.resize(n);
        for (std::size_t i = 0; i < n; ++i) order[i] = int64_t(i);
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
        ++epoch;
      }
      out.push_back(order[cursor++]);
    }
    return out;
  }
  nlohmann::json to_json() const { return {{"order", order}, {"cursor", cursor}, {"epoch", epoch}}; }
  void from_json(const nlohmann::json& j) {
    order = j["order"].get<std::vector<int64_t>>();
    cursor = j["cursor"].get<std::size_t>();
    epoch = j["epoch"].get<int64_t>();
  }
};

constexpr int64_t kResumeSteps = 60;

// Two AdamW groups: the parameters whose name starts with `prefix` (learning rate `first_lr`, no
// weight decay), then all others (`rest_lr`, weight decay 0.01).
std::vector<torch::optim::OptimizerParamGroup> two_groups(const std::vector<std::pair<std::string, at::Tensor>>& named,
                                                          const std::string& prefix, double first_lr, double rest_lr) {
  std::vector<at::Tensor> first, rest;
  for (const auto& [name, p] : named) (name.rfind(prefix, 0) == 0 ? first : rest).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      first, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(first_lr).weight_decay(0.0)));
  groups.emplace_back(
      rest, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(rest_lr).weight_decay(0.01)));
  return groups;
}

struct TinyRun {
  TinyNet net;
  at::Tensor x, y;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<genner::train::LinearSchedule> schedule;
  std::mt19937_64 rng{1234};
  ShuffledSampler sampler;
  genner::train::DecoderTruncation truncation{0.2, 99};
  int64_t steps;

  explicit TinyRun(int64_t total = kResumeSteps) : steps(total) {
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(42);
    }
    net = TinyNet();
    auto data_gen = at::detail::createCPUGenerator(7);
    x = at::randn({64, 8}, data_gen);
    y = at::randint(0, 4, {64}, data_gen);
    optimizer =
        std::make_unique<torch::optim::AdamW>(two_groups(genner::train::named_parameters(*net), "fc2.", 3e-2, 1e-2));
    schedule = std::make_unique<genner::train::LinearSchedule>(*optimizer, total, genner::train::Warmup::fraction(0.1));
  }
  genner::train::TrainingState state() {
    return {genner::train::named_parameters(*net), optimizer.get(), schedule.get(), &rng, true};
  }
  nlohmann::json sampler_json() const { return {{"sampler", sampler.to_json()}, {"truncation", truncation.state()}}; }
  void resume(const fs::path& dir) {
    auto info = genner::train::load_checkpoint(dir, state());
    sampler.from_json(info.sampler["sampler"]);
    truncation.set_state(info.sampler["truncation"].get<std::string>());
  }
  void train_step() {
    net->train();
    const auto idx = sampler.next(rng, 64, 8);
    const auto batch = at::tensor(idx, at::kLong);
    // Exercise the truncation RNG stream on a fake (input, target) pair.
    truncation.apply(at::zeros({8, 5}, at::kLong), at::zeros({8, 5}, at::kLong));
    const auto logits = net->forward(x.index_select(0, batch));
    const auto loss = at::nll_loss(at::log_softmax(logits, 1), y.index_select(0, batch));
    optimizer->zero_grad();
    loss.backward();
    genner::train::clip_grad_norm(genner::train::optimizer_params(*optimizer), 1.0);
    optimizer->step();
    schedule->step();
  }
  void train_until(int64_t step, const fs::path* checkpoint_every_step = nullptr) {
    while (schedule->current_step() < step) {
      train_step();
      if (checkpoint_every_step) genner::train::save_checkpoint(*checkpoint_every_step, state(), sampler_json());
    }
  }
};

void require_same(TinyRun& a, TinyRun& b) {
  const auto pa = genner::train::named_parameters(*a.net);
  const auto pb = genner::train::named_parameters(*b.net);
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(at::equal(pa[i].second, pb[i].second));
  }
  CHECK(a.schedule->current_step() == b.schedule->current_step());
  for (std::size_t g = 0; g < a.optimizer->param_groups().size(); ++g)
    CHECK(a.optimizer->param_groups()[g].options().get_lr() == b.optimizer->param_groups()[g].options().get_lr());
}

}  // namespace

TEST_CASE("linear schedule warms up then decays each group from its own base LR", "[train]") {
  auto p1 = at::zeros({2}).requires_grad_();
  auto p2 = at::zeros({2}).requires_grad_();
  torch::optim::AdamW opt(two_groups({{"new.w", p1}, {"backbone.w", p2}}, "new.", 1e-3, 1e-5));
  REQUIRE(opt.param_groups()[0].params().size() == 1);
  REQUIRE(opt.param_groups()[0].params()[0].is_same(p1));
  CHECK(static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[1].options()).weight_decay() == 0.01);
  genner::train::LinearSchedule s(opt, 100, genner::train::Warmup::fraction(0.1));
  CHECK(s.warmup_steps() == 10);
  CHECK(opt.param_groups()[0].options().get_lr() == 0.0);
  for (int i = 0; i < 5; ++i) s.step();
  CHECK(opt.param_groups()[0].options().get_lr() == Approx(0.5e-3));
  CHECK(opt.param_groups()[1].options().get_lr() == Approx(0.5e-5));
  s.set_step(10);
  CHECK(opt.param_groups()[0].options().get_lr() == Approx(1e-3));
  s.set_step(55);
  CHECK(opt.param_groups()[1].options().get_lr() == Approx(0.5e-5));
  s.set_step(100);
  CHECK(opt.param_groups()[0].options().get_lr() == 0.0);
  std::vector<torch::optim::OptimizerParamGroup> one;
  one.emplace_back(std::vector<at::Tensor>{p1},
                   std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(2e-3).weight_decay(0.0)));
  torch::optim::AdamW fresh(one);
  genner::train::LinearSchedule no_warmup(fresh, 100, genner::train::Warmup::steps(0));
  CHECK(fresh.param_groups()[0].options().get_lr() == Approx(2e-3));
  CHECK_THROWS_WITH(genner::train::LinearSchedule(opt, 100, genner::train::Warmup::fraction(1.5)),
                    Catch::Contains("fraction in [0, 1]"));
}

TEST_CASE("gradient clipping by value and by norm; decoder truncation is seeded", "[train]") {
  auto p = at::zeros({4}).requires_grad_();
  p.mutable_grad() = at::tensor({3.0f, -4.0f, 0.05f, 0.0f});
  genner::train::clip_grad_value({p}, 0.1);
  CHECK(at::allclose(p.grad(), at::tensor({0.1f, -0.1f, 0.05f, 0.0f})));
  p.mutable_grad() = at::tensor({3.0f, -4.0f, 0.0f, 0.0f});
  CHECK(genner::train::clip_grad_norm({p}, 1.0) == Approx(5.0));
  CHECK(p.grad().norm().item<double>() == Approx(1.0).epsilon(1e-5));

  genner::train::DecoderTruncation a(0.05, 7), b(0.05, 7);
  int cut = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto ka = a.draw(10), kb = b.draw(10);
    REQUIRE(ka == kb);
    if (ka) {
      ++cut;
      CHECK(*ka >= 1);
      CHECK(*ka <= 9);
    }
  }
  CHECK(cut > 60);
  CHECK(cut < 150);
  genner::train::DecoderTruncation always(1.0, 3);
  auto [in, tg] = always.apply(at::ones({2, 6}, at::kLong), at::ones({2, 6}, at::kLong));
  CHECK(in.size(1) < 6);
  CHECK(in.size(1) == tg.size(1));
  const auto saved = always.state();
  const auto k1 = always.draw(100);
  always.set_state(saved);
  CHECK(always.draw(100) == k1);
}

TEST_CASE("a state.json with a step beyond the run, fields of the wrong type or NaN weights is refused",
          "[hardening]") {
  genner::test::TempDir tmp;
  const auto dir = tmp.path / "ckpt";
  TinyRun first;
  first.train_until(5);
  genner::train::save_checkpoint(dir, first.state(), first.sampler_json());
  const auto good = genner::io::read_json_file(dir / "state.json");
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    auto j = good;
    j[key] = value;
    genner::io::write_text_atomically(dir / "state.json", j.dump());
  };
  const auto state_json = (dir / "state.json").string();
  with("step", 1000000000000LL);
  CHECK_THROWS_WITH(genner::train::load_checkpoint(dir, TinyRun().state()),
                    Catch::Contains(state_json + ": 'step': expected at most the run's") &&
                        Catch::Contains("found 1000000000000"));
  with("step", -3);
  CHECK_THROWS_WITH(genner::train::load_checkpoint(dir, TinyRun().state()),
                    Catch::Contains("'step': expected a non-negative integer, found -3"));
  with("lrs", "fast");
  CHECK_THROWS_WITH(genner::train::load_checkpoint(dir, TinyRun().state()),
                    Catch::Contains("'lrs': expected an array of learning rates, found \"fast\""));
  with("optimizer_steps", {{"fc1.weight", 99}});
  CHECK_THROWS_WITH(genner::train::load_checkpoint(dir, TinyRun().state()),
                    Catch::Contains("'fc1.weight': expected a step count of at most 'step' (5)"));
  genner::io::write_text_atomically(dir / "state.json", good.dump());
  CHECK_NOTHROW(genner::train::load_checkpoint(dir, TinyRun().state()));

  // NaN in the checkpoint's weights: named at load.
  std::map<std::string, at::Tensor> bad;
  for (const auto& [name, t] : genner::train::named_parameters(*first.net)) bad[name] = t.detach().clone();
  bad.begin()->second.view(-1)[0] = std::nan("");
  genner::io::save_safetensors(dir / "tensors.safetensors", bad);
  CHECK_THROWS_WITH(genner::train::load_checkpoint(dir, TinyRun().state()),
                    Catch::Contains("tensors.safetensors: tensor '" + bad.begin()->first + "' holds 1 NaN") &&
                        Catch::Contains("expected finite weights"));
  CHECK_THROWS_WITH(genner::io::check_finite_weights(at::tensor({1.0, INFINITY}), "w.safetensors", "x"),
                    Catch::Contains("w.safetensors: tensor 'x' holds 1 NaN or infinite value(s) (+inf at flat index 1)"));
  CHECK_NOTHROW(genner::io::check_finite_weights(at::tensor({1, 2}), "w.safetensors", "ints"));
}

TEST_CASE("checkpoint resume is bit-identical to an uninterrupted run", "[train]") {
  TinyRun straight;
  straight.train_until(kResumeSteps);

  genner::test::TempDir tmp;
  const auto dir = tmp.path / "ckpt";
  {
    TinyRun first;
    first.train_until(23);
    genner::train::save_checkpoint(dir, first.state(), first.sampler_json(), {{"best_f1", 0.5}});
    first.train_until(30);  // diverges from the saved state; must not leak into the resume
    REQUIRE(fs::exists(dir / "state.json"));
    TinyRun second;  // a fresh process-like start: re-seeded, re-initialised
    second.train_until(10);
    genner::train::save_checkpoint(dir, second.state(), second.sampler_json());  // replaces (exchange path)
  }
  {
    TinyRun first;
    first.train_until(23);
    genner::train::save_checkpoint(dir, first.state(), first.sampler_json(), {{"best_f1", 0.5}});
  }
  at::randn({100});  // disturb torch's generator: load must restore it
  TinyRun resumed;
  resumed.resume(dir);
  CHECK(resumed.schedule->current_step() == 23);
  resumed.train_until(kResumeSteps);
  require_same(straight, resumed);
  CHECK(!fs::exists(tmp.path / ("ckpt.tmp-" + std::to_string(::getpid()))));

  // Mismatched model: clear errors naming the tensor.
  TinyRun other;
  auto bad = other.state();
  bad.tensors.pop_back();
  CHECK_THROWS_WITH(genner::train::load_checkpoint(dir, bad), Catch::Contains("matches none"));
  CHECK_THROWS_WITH(genner::train::load_checkpoint(tmp.path / "nothing", other.state()),
                    Catch::Contains("expected a complete checkpoint"));
}

// The child side of the kill -9 test: trains from the checkpoint (if any) and saves after every
// step until killed. Hidden; run only by the test below through GENNER_TRAIN_CHILD.
TEST_CASE("checkpoint kill -9 child", "[.][train_kill_child]") {
  const char* dir_env = std::getenv("GENNER_TRAIN_CHILD");
  if (!dir_env) return;
  const fs::path dir = dir_env;
  TinyRun run(kResumeSteps * 20);
  if (genner::train::find_checkpoint(dir)) run.resume(dir);
  run.train_until(kResumeSteps * 20, &dir);
}

TEST_CASE("checkpoint survives kill -9 at any moment and resumes bit-identically", "[train]") {
  const int64_t total = kResumeSteps * 20;
  TinyRun straight(total);
  straight.train_until(total);

  genner::test::TempDir tmp;
  const auto dir = tmp.path / "ckpt";
  char exe[4096];
  const auto len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  REQUIRE(len > 0);
  exe[len] = 0;
  std::string env_dir = "GENNER_TRAIN_CHILD=" + dir.string();
  // The child inherits the parent's environment (thread counts included, so kernels match).
  std::vector<std::string> env_strings{env_dir};
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).rfind("GENNER_TRAIN_CHILD=", 0) != 0) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string tag = "[train_kill_child]";
  char* argv[] = {exe, tag.data(), nullptr};

  const auto saved_step = [&]() -> int64_t {
    const auto f = genner::train::find_checkpoint(dir);
    if (!f) return -1;
    try {
      std::ifstream in(*f / "state.json");
      return nlohmann::json::parse(in)["step"].get<int64_t>();
    } catch (...) {
      return -1;
    }
  };
  std::mt19937_64 delays(5);
  int mid_save = 0;
  int64_t last = -1;
  for (int round = 0; round < 4; ++round) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execve(exe, argv, envp.data());
      ::_exit(127);
    }
    // Let it write a few checkpoints beyond the last one, then kill it at a random moment.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (saved_step() < last + 4 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::microseconds(delays() % 20000));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    for (const auto& e : fs::directory_iterator(tmp.path))  // save_checkpoint clears these on its next call
      if (e.path().filename().string().find(".tmp-") != std::string::npos) ++mid_save;
    const auto now = saved_step();
    REQUIRE(now > last);  // progress survived
    REQUIRE(now < total);
    last = now;
  }
  TinyRun resumed(total);
  resumed.resume(dir);
  resumed.train_until(total);
  require_same(straight, resumed);
  WARN("kill -9 test: 4 kills, last surviving checkpoint at step " << last << ", " << mid_save
                                                                   << " kill(s) left a half-written temporary folder");
}

// ---------------------------------------------------------------------------------------------
// Config files and command line.
TEST_CASE("every config file in configs/ parses with its published settings", "[train]") {
  using genner::app::RunConfig;
  const fs::path dir = genner::test::source_dir() / "configs";
  std::map<std::string, RunConfig> configs;
  for (const char* name :
       {"conll2003", "ontonotes", "ace04", "ace05", "genia", "cadec", "share13", "share14", "wnut17"}) {
    INFO(name);
    const auto cl = genner::app::parse_command_line({"--config", (dir / (std::string(name) + ".json")).string()});
    CHECK(cl.config.dataset == name);
    CHECK(cl.config.epochs == 30);
    configs[name] = cl.config;
  }
  CHECK(configs["conll2003"].train_on_dev);
  CHECK(configs["conll2003"].max_len_a == 0.6);
  CHECK(configs["ontonotes"].max_len_a == 0.8);
  CHECK(configs["ace04"].max_len == 50);
  CHECK(configs["ace04"].lr == 4e-5);
  CHECK(configs["ace05"].beams == 4);
  CHECK(configs["ace05"].batch_size == 12);
  CHECK(configs["ace05"].warmup == 0.1);
  CHECK(configs["genia"].target_type == genner::data::TargetType::span);
  CHECK(configs["cadec"].max_len_a == 1.6);
  CHECK(configs["share14"].lr == 1e-5);
  // Several config files apply in order (the PEFT runs' settings on top of a data set's); the
  // command line wins last, and every non-default setting remembers where it came from.
  const auto peft = genner::app::parse_command_line({"--config", (dir / "conll2003.json").string(), "--config",
                                                       (dir / "peft.json").string(), "--beams", "2", "--constrained"});
  CHECK(peft.config.lr == 3e-3);
  CHECK(peft.config.clip_value == 0.1);
  CHECK(peft.config.train_on_dev);
  CHECK(peft.config.beams == 2);
  CHECK(peft.config.constrained);
  CHECK(peft.origin.at("lr") == (dir / "peft.json").string());
  CHECK(peft.origin.at("train_on_dev") == (dir / "conll2003.json").string());
  CHECK(peft.origin.at("beams") == "--beams");
  CHECK(peft.given == std::vector<std::string>{"beams", "constrained"});
  // The executable's own defaults and config files stand in when no --config is given.
  const auto own = genner::app::parse_command_line({"--epochs", "3"}, {{"model", "t5-3b"}},
                                                      genner::app::config_files({dir / "ace05.json"}));
  CHECK(own.config.model == "t5-3b");
  CHECK(own.config.beams == 4);
  CHECK(own.config.epochs == 3);
  CHECK(own.origin.count("model") == 0);  // a default of the executable, not a choice of the user
}

TEST_CASE("the built-in settings of each family's sample stand in for config files, and --config replaces them",
          "[train]") {
  using genner::app::Family;
  for (const auto family : {Family::flat, Family::nested, Family::discontinuous}) {
    const auto builtin = genner::app::sample_settings(family);
    INFO(builtin.path);
    CHECK(builtin.settings.at("family") == genner::app::family_name(family));
    CHECK(builtin.settings.at("dataset") == "sample");
    CHECK(builtin.settings.at("target_type") == (family == Family::nested ? "span" : "word"));
    CHECK(builtin.settings.value("contiguous", false) == (family != Family::discontinuous));
    CHECK(builtin.settings.contains("scratch_d_model"));
    CHECK_FALSE(genner::app::sample_settings(family, /*scratch_shape=*/false).settings.contains("scratch_d_model"));
  }
  const genner::app::DefaultConfigs builtin = [](const nlohmann::json&) {
    return std::vector<genner::app::ConfigFile>{genner::app::sample_settings(Family::nested)};
  };
  const auto plain = genner::app::parse_command_line({"--epochs", "3"}, nlohmann::json::object(), builtin);
  CHECK(plain.config.dataset == "sample");
  CHECK(plain.config.family == Family::nested);
  CHECK(plain.config.epochs == 3);
  CHECK(plain.origin.at("dataset") == "built-in settings of the nested sample");
  genner::test::TempDir tmp;
  const auto other = genner::test::write_file(tmp, "other.json", R"({"dataset": "genia", "lr": 0.001})");
  const auto replaced = genner::app::parse_command_line({"--config", other.string()}, nlohmann::json::object(), builtin);
  CHECK(replaced.config.dataset == "genia");
  CHECK(replaced.config.family == Family::flat);  // nothing of the built-in settings is left
  CHECK(replaced.config.spm_vocab_size == genner::app::RunConfig{}.spm_vocab_size);
}

TEST_CASE("config and command-line errors name the place, what was expected and what was found", "[train]") {
  using genner::app::parse_command_line;
  genner::test::TempDir tmp;
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp.path / name) << text;
    return (tmp.path / name).string();
  };
  CHECK_THROWS_WITH(parse_command_line({"--lrr", "1e-5"}),
                    Catch::Contains("unknown setting 'lrr'") && Catch::Contains("did you mean 'lr'"));
  CHECK_THROWS_WITH(parse_command_line({"--beams", "four"}),
                    Catch::Contains("--beams: expected an integer in [1, 64], found 'four'"));
  CHECK_THROWS_WITH(parse_command_line({"--beams", "0"}),
                    Catch::Contains("--beams: expected an integer in [1, 64], found number 0"));
  CHECK_THROWS_WITH(parse_command_line({"--lr=0"}), Catch::Contains("--lr: expected a number in (0, 1]"));
  CHECK_THROWS_WITH(parse_command_line({"--target_type", "char"}), Catch::Contains("one of 'word' 'bpe' 'span'"));
  CHECK_THROWS_WITH(parse_command_line({"--constrained=maybe"}),
                    Catch::Contains("expected true or false, found 'maybe'"));
  // What an executable is compiled for is not a setting: it is collected as given, for the program to check.
  const auto compiled = parse_command_line({"--encoder_mlp=maybe", "--adapter_size", "16", "--avg_feature"});
  CHECK(compiled.compiled == nlohmann::json{{"encoder_mlp", "maybe"}, {"adapter_size", 16}, {"avg_feature", true}});
  CHECK(compiled.origin.at("adapter_size") == "--adapter_size");
  CHECK_THROWS_WITH(parse_command_line({"--max_len"}), Catch::Contains("found the end of the command line"));
  CHECK_THROWS_WITH(parse_command_line({"beams"}), Catch::Contains("expected an option --key, found 'beams'"));
  const auto bad_json = write("bad.json", "{\"lr\": 1e-5,}");
  CHECK_THROWS_WITH(parse_command_line({"--config", bad_json}), Catch::Contains("bad.json: expected valid JSON"));
  const auto unknown = write("unknown.json", "{\"bemas\": 4}");
  CHECK_THROWS_WITH(parse_command_line({"--config", unknown}),
                    Catch::Contains("unknown.json: unknown setting 'bemas'; did you mean 'beams'"));
  const auto wrong_type = write("type.json", "{\"max_len\": \"10\"}");
  CHECK_THROWS_WITH(parse_command_line({"--config", wrong_type}),
                    Catch::Contains("type.json: 'max_len': expected an integer in [1, 4096], found string \"10\""));
  const auto not_int = write("float.json", "{\"batch_size\": 16.5}");
  CHECK_THROWS_WITH(parse_command_line({"--config", not_int}), Catch::Contains("'batch_size': expected an integer"));
  const auto bad_section = write("section.json", "{\"by_model\": {\"t5-3b\": {\"peft\": \"adapters\"}}}");
  CHECK_THROWS_WITH(
      parse_command_line({"--config", bad_section}),
      Catch::Contains("section.json: 'by_model' sections are not read") && Catch::Contains("configs/peft.json"));
  CHECK_THROWS_WITH(parse_command_line({"--config", (tmp.path / "missing.json").string()}),
                    Catch::Contains("missing.json: config file not found"));
  const auto help = genner::app::help_text("genner-train");
  for (const auto& o : genner::app::option_table())
    if (o.setting) CHECK_THAT(help, Catch::Contains("--" + o.key));
  CHECK_THAT(help, Catch::Contains("expects an integer in [1, 64]; default 1"));
  CHECK(parse_command_line({"--help"}).help);
  // --help shows the defaults it is given (an executable's own), and "usage:" only when asked
  genner::app::RunConfig mine;
  mine.epochs = 20;
  const auto own = genner::app::help_text("x", mine, /*usage=*/false);
  CHECK_THAT(own, Catch::Contains("passes over the training data (also --num_train_epochs)\n") &&
                      Catch::Contains("default 20\n"));
  CHECK(own.find("usage:") == std::string::npos);
  // Hugging Face names stand for the table's settings, recorded under the table's name
  const auto hf = parse_command_line({"--learning_rate", "0.02", "--num_train_epochs=3", "--gradient-accumulation-steps",
                                      "2", "--max_grad_norm", "0.5", "--warmup_ratio", "0.1", "--eval_steps", "7"});
  CHECK(hf.config.lr == 0.02);
  CHECK(hf.config.epochs == 3);
  CHECK(hf.config.accumulate == 2);
  CHECK(hf.config.clip_norm == 0.5);
  CHECK(hf.config.warmup == 0.1);
  CHECK(hf.config.eval_every == 7);
  CHECK(std::find(hf.given.begin(), hf.given.end(), "lr") != hf.given.end());
  CHECK(hf.origin.at("lr") == "--lr");
  CHECK_THROWS_WITH(parse_command_line({"--lr", "0.1", "--learning_rate", "0.2"}),
                    Catch::Contains("--learning_rate and --lr are one setting"));
  const auto alias_file = write("alias.json", "{\"learning_rate\": 0.005, \"num_train_epochs\": 4}");
  const auto from_file = parse_command_line({"--config", alias_file});
  CHECK(from_file.config.lr == 0.005);
  CHECK(from_file.config.epochs == 4);
  const auto both = write("both.json", "{\"learning_rate\": 0.005, \"lr\": 0.004}");
  CHECK_THROWS_WITH(parse_command_line({"--config", both}), Catch::Contains("are one setting"));
  CHECK_THROWS_WITH(parse_command_line({"--save_total_limit", "2"}),
                    Catch::Contains("save_total_limit") && Catch::Contains("no numbered checkpoints"));
  // contiguous without constrained would change nothing: refused
  CHECK_THROWS_WITH(parse_command_line({"--contiguous", "true"}),
                    Catch::Contains("contiguous true applies only with constrained true"));
  CHECK(parse_command_line({"--contiguous", "true", "--constrained", "true"}).config.contiguous);
}

TEST_CASE("one option table serves every command: each option is obeyed by the commands it names, refused by "
          "the others, and shown in their --help alone", "[train]") {
  namespace ga = genner::app;
  using ga::Command;
  const auto parse = [](std::vector<std::string> args, Command c) {
    return ga::parse_command_line(args, nlohmann::json::object(), {}, c);
  };
  for (const auto& info : ga::command_list()) {
    INFO(info.name);
    const auto help = ga::help_text("x", {}, true, info.command);
    for (const auto& o : ga::option_table()) {
      INFO(o.key);
      CHECK((help.find("  --" + o.key + " ") != std::string::npos) == o.obeyed_by(info.command));
    }
  }
  // A command's own option given to another command names the commands it belongs to.
  CHECK_THROWS_WITH(parse({"--port", "1"}, Command::predict),
                    Catch::Contains("--port belongs to the serve command, not to predict"));
  CHECK_THROWS_WITH(parse({"--format", "conll"}, Command::serve),
                    Catch::Contains("--format belongs to the predict and export commands, not to serve"));
  CHECK_THROWS_WITH(parse({"--input", "x.txt"}, Command::train),
                    Catch::Contains("--input belongs to the predict command, not to train"));
  // A training setting given to a command that restores a run would change nothing: refused, with
  // the list of what that command obeys.
  CHECK_THROWS_WITH(parse({"--lr", "0.5"}, Command::evaluate),
                    Catch::Contains("--lr does not apply to evaluate") && Catch::Contains("--split") &&
                        Catch::Contains("--metric") && !Catch::Contains("--port"));
  CHECK_THROWS_WITH(parse({"--beams", "2"}, Command::export_), Catch::Contains("--beams does not apply to export"));
  // The table validates command options as it validates settings.
  CHECK_THROWS_WITH(parse({"--max_batch", "0"}, Command::serve),
                    Catch::Contains("--max_batch: expected an integer >= 1, found number 0"));
  CHECK_THROWS_WITH(parse({"--split", "train"}, Command::evaluate),
                    Catch::Contains("--split: expected one of 'dev' 'test', found string \"train\""));
  CHECK_THROWS_WITH(parse({"--threshold", "1.5"}, Command::predict), Catch::Contains("--threshold: expected a number in [0, 1]"));
  const auto serve = parse({"--max_batch", "4", "--max_wait_ms=2.5", "--long_texts", "split", "--beams", "3", "--threads", "1"},
                           Command::serve);
  CHECK(serve.options.max_batch == 4);
  CHECK(serve.config.beams == 3);
  CHECK(serve.config.threads == 1);
  CHECK(serve.given == std::vector<std::string>{"beams", "threads"});  // settings only: they replace the run's
  const auto server = ga::serve_options(serve.options);
  CHECK(server.batching.max_batch == 4);
  CHECK(server.batching.max_wait == std::chrono::microseconds(2500));
  CHECK(server.split_long_texts);
  const auto predict = parse({"--input", "-", "--pretokenized", "--threshold", "0.5"}, Command::predict);
  CHECK(predict.options.pretokenized);
  CHECK(predict.options.threshold == 0.5);
  CHECK(predict.on_command_line("input"));
  CHECK_FALSE(predict.on_command_line("predictions"));
  // A command's options are not settings of a run: a config file naming one is refused, and neither
  // config.json nor run.json record them.
  genner::test::TempDir tmp;
  const auto port = genner::test::write_file(tmp, "port.json", R"({"port": 9000})");
  CHECK_THROWS_WITH(ga::parse_command_line({"--config", port.string()}),
                    Catch::Contains("port.json: 'port' is an option of the serve command line"));
  const auto settings = ga::to_json(ga::RunConfig{});
  CHECK(settings.contains("beams"));
  CHECK_FALSE(settings.contains("port"));
  CHECK_FALSE(settings.contains("input"));
  // Choices are enums in RunConfig and names in JSON, both ways.
  const auto bf16 = ga::parse_command_line({"--precision", "bf16", "--frozen_precision", "int8", "--metric", "word"});
  CHECK(bf16.config.precision == genner::model::Precision::bf16);
  CHECK(bf16.config.frozen_precision == genner::t5::WeightStorage::int8);
  CHECK(bf16.config.metric == genner::train::MetricRules::word);
  CHECK(ga::to_json(bf16.config)["frozen_precision"] == "int8");
  // The settings a resume checks come from the table: what a run computes, not how it is carried out.
  const auto resume = ga::resume_settings(ga::RunConfig{});
  CHECK(resume.contains("lr"));
  CHECK(resume.contains("seed"));
  for (const char* free : {"output_dir", "resume", "threads", "patience", "memory_budget", "backend", "description"})
    CHECK_FALSE(resume.contains(free));
  // The command options' defaults are the library's own.
  const ga::CommandOptions defaults;
  const ga::ServeOptions library;
  const auto derived = ga::serve_options(defaults);
  CHECK(derived.port == library.port);
  CHECK(derived.batching.max_batch == library.batching.max_batch);
  CHECK(derived.batching.max_wait == library.batching.max_wait);
  CHECK(derived.batching.max_queue == library.batching.max_queue);
  CHECK(derived.batching.timeout == library.batching.timeout);
  CHECK(derived.max_texts == library.max_texts);
  CHECK(derived.max_body_bytes == library.max_body_bytes);
  CHECK(derived.http_threads == library.http_threads);
  CHECK(derived.split_long_texts == library.split_long_texts);
  CHECK(defaults.max_source_pieces == genner::recognize::RecognizerOptions{}.max_source_pieces);
}

// ---------------------------------------------------------------------------------------------
// Progress bar, metrics log, PNG plot.
TEST_CASE("progress bar: plain lines every N percent off a terminal, in-place redraws on one", "[train]") {
  double now = 0;
  std::ostringstream plain;
  {
    genner::report::ProgressOptions o;
    o.out = &plain;
    o.tty = false;
    o.plain_every_percent = 25;
    o.clock = [&] { return now; };
    genner::report::ProgressBar bar(100, o);
    for (int s = 1; s <= 100; ++s) {
      now += 0.5;
      bar.update(s, 2.0, 100);
    }
  }
  const auto text = plain.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);
  CHECK(text.find('\r') == std::string::npos);
  CHECK_THAT(text, Catch::Contains("train 25/100 ( 25%) loss 2.0000 200 tok/s elapsed 0:13 eta 0:38"));
  CHECK_THAT(text, Catch::Contains("100/100 (100%)"));
  std::ostringstream tty;
  {
    genner::report::ProgressOptions o;
    o.out = &tty;
    o.tty = true;
    o.clock = [&] { return now; };
    genner::report::ProgressBar bar(10, o);
    for (int s = 1; s <= 10; ++s) {
      now += 0.05;  // two updates per redraw interval
      bar.update(s, 1.0);
    }
  }
  const auto t = tty.str();
  CHECK(std::count(t.begin(), t.end(), '\r') >= 5);
  CHECK(std::count(t.begin(), t.end(), '\r') <= 8);
  CHECK(t.back() == '\n');
  CHECK_THAT(t, Catch::Contains("[########################]"));
  CHECK(genner::report::format_duration(3725) == "1:02:05");
}

TEST_CASE("trainer callbacks: the progress bar with its evaluation lines, and curve.png across a resume", "[train]") {
  namespace gt = genner::train;
  double now = 0;
  std::ostringstream text;
  genner::report::ProgressOptions o;
  o.out = &text;
  o.tty = false;
  o.plain_every_percent = 50;
  o.clock = [&] { return now; };
  gt::ProgressCallback progress(o);
  genner::test::TempDir tmp;
  gt::PlotCallback plot;
  // A run resumed at step 4 with one earlier evaluation, evaluating at 6 and 8.
  const gt::TrainingStart start{4, 8, 2, true, tmp.path, {{2, 3.0, 0.25}}};
  progress.on_start(start);
  plot.on_start(start);
  for (int64_t step = 5; step <= 8; ++step) {
    now += 1.0;
    progress.on_step({step, 8, 1.5, 1e-4, 10});
    if (step % 2 == 0) {
      gt::TrainingEvaluation e{step, 8, step / 2.0, {step, 1.25, 0.5}, 0.5, 0.5, 6, 1e-4, {}, tmp.path};
      progress.on_evaluation(e);
      plot.on_evaluation(e);
    }
  }
  progress.on_end({8, false, false, 0.5, 6, tmp.path});
  CHECK_THAT(text.str(), Catch::Contains("train 4/8 ( 50%)"));
  CHECK_THAT(text.str(), Catch::Contains("step 6: loss 1.2500, dev F1 50.00 (best 50.00 at step 6)\n"));
  CHECK_THAT(text.str(), Catch::Contains("train 8/8 (100%) loss"));
  // curve.png holds the resumed point and both new ones, as plot_training_curves draws them.
  genner::report::Series loss{{2, 6, 8}, {3.0, 1.25, 1.25}}, f1{{2, 6, 8}, {0.25, 0.5, 0.5}};
  std::ifstream in(tmp.path / "curve.png", std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(written == genner::report::plot_training_curves(loss, f1, "training: loss and dev F1").encode_png());
  // Without a dev set there is no evaluation line.
  std::ostringstream quiet;
  o.out = &quiet;
  gt::ProgressCallback no_dev(o);
  no_dev.on_start({0, 2, 2, false, tmp.path, {}});
  no_dev.on_evaluation({2, 2, 1.0, {2, 1.0, std::nullopt}, std::nullopt, -1.0, 2, 1e-4, {}, tmp.path});
  CHECK(quiet.str().find("dev F1") == std::string::npos);
  // The driver's set: the best weights, the checkpoint and the log always, early stopping with a
  // patience, a bar when asked, the plot always.
  const auto standard = gt::standard_callbacks();
  REQUIRE(standard.size() == 5);
  CHECK(dynamic_cast<gt::KeepBestWeights*>(standard[0].get()) != nullptr);
  CHECK(dynamic_cast<gt::Checkpointing*>(standard[1].get()) != nullptr);
  CHECK(dynamic_cast<gt::JsonlLogCallback*>(standard[2].get()) != nullptr);
  CHECK(dynamic_cast<gt::ProgressCallback*>(standard[3].get()) != nullptr);
  const auto quiet_set = gt::standard_callbacks({.progress = false, .logging_steps = 5, .patience = 2});
  REQUIRE(quiet_set.size() == 5);
  CHECK(quiet_set[2]->describe().at("logging_steps") == 5);
  CHECK(quiet_set[3]->describe() == nlohmann::json{{"name", "early_stopping"}, {"patience", 2}});
  CHECK(dynamic_cast<gt::PlotCallback*>(quiet_set[4].get()) != nullptr);
  // The default callbacks of TrainerOptions keep the best weights and the checkpoint.
  const gt::TrainerOptions defaults;
  REQUIRE(defaults.callbacks.size() == 2);
  CHECK(defaults.callbacks[0]->describe() == nlohmann::json{{"name", "keep_best_weights"}, {"file", "best.safetensors"}});
  CHECK(defaults.callbacks[1]->describe().at("name") == "checkpointing");
  // KeepBestWeights writes at an evaluation that is the best so far, and only then; Checkpointing
  // asks for the checkpoint at every evaluation.
  std::vector<fs::path> saved;
  int checkpoints = 0;
  gt::TrainingEvaluation e;
  e.output_dir = tmp.path;
  e.save_weights = [&](const fs::path& f) { saved.push_back(f); };
  e.checkpoint = [&] { ++checkpoints; };
  gt::KeepBestWeights keep("weights.safetensors");
  gt::Checkpointing checkpointing;
  for (const auto& [step, best] : std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {4, 2}, {6, 6}}) {
    e.step = step;
    e.best_step = best;
    keep.on_evaluation(e);
    checkpointing.on_evaluation(e);
  }
  CHECK(saved == std::vector<fs::path>{tmp.path / "weights.safetensors", tmp.path / "weights.safetensors"});
  CHECK(checkpoints == 3);
}

TEST_CASE("early stopping counts evaluations without a better dev F1 and carries the count across a resume",
          "[train]") {
  namespace gt = genner::train;
  gt::EarlyStopping stop(2);
  auto evaluation = [](int64_t step, int64_t best_step, std::optional<double> f1) {
    gt::TrainingEvaluation e;
    e.step = step;
    e.best_step = best_step;
    e.dev_f1 = f1;
    return e;
  };
  stop.on_evaluation(evaluation(1, 1, 0.5));
  CHECK_FALSE(stop.stop_training());
  stop.on_evaluation(evaluation(2, 1, 0.4));
  CHECK_FALSE(stop.stop_training());
  stop.on_evaluation(evaluation(3, 1, 0.3));
  CHECK(stop.stop_training());
  // Resumed from a checkpoint saved after step 2: one evaluation without a better F1 so far.
  gt::EarlyStopping resumed(2);
  resumed.restore(nlohmann::json{{"since_best", 1}});
  CHECK(resumed.evaluations_since_best() == 1);
  resumed.on_evaluation(evaluation(3, 3, 0.6));  // better: the count starts again
  CHECK(resumed.evaluations_since_best() == 0);
  resumed.on_evaluation(evaluation(4, 3, std::nullopt));  // no dev set: nothing to count
  CHECK(resumed.evaluations_since_best() == 0);
  CHECK(resumed.state() == nlohmann::json{{"since_best", 0}});
  CHECK_THROWS_WITH(resumed.restore(nlohmann::json{{"since", 1}}), Catch::Contains("since_best"));
  CHECK_THROWS_WITH(gt::EarlyStopping(0), Catch::Contains("at least 1"));
}

TEST_CASE("metrics log appends flushed JSON lines and survives a torn last line", "[train]") {
  genner::test::TempDir tmp;
  const auto path = tmp.path / "run" / "metrics.jsonl";
  {
    genner::train::JsonlLog log(path);
    log.write({{"step", 10}, {"loss", 3.5}});
    CHECK(genner::train::JsonlLog::read(path).size() == 1);  // flushed already
  }
  {
    genner::train::JsonlLog log(path);  // a resumed run appends
    log.write({{"step", 20}, {"dev_f1", 0.5}});
  }
  std::ofstream(path, std::ios::app) << "{\"step\": 30, \"lo";  // killed mid-write
  const auto records = genner::train::JsonlLog::read(path);
  REQUIRE(records.size() == 2);
  CHECK(records[1]["dev_f1"] == 0.5);
  CHECK(records[0].contains("time"));
  std::ofstream(path, std::ios::app) << "\n{}\n";
  CHECK_THROWS_WITH(genner::train::JsonlLog::read(path), Catch::Contains("metrics.jsonl:3: expected a JSON object"));
}

namespace {
uint32_t be32(const std::string& s, std::size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 | uint32_t(uint8_t(s[at + 2])) << 8 |
         uint8_t(s[at + 3]);
}
/// Bit by bit, as the PNG specification defines them: references independent of zlib's tables.
uint32_t reference_crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (const char ch : bytes) {
    c ^= uint8_t(ch);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}
uint32_t reference_adler32(const std::string& bytes) {
  uint32_t a = 1, b = 0;
  for (const char ch : bytes) {
    a = (a + uint8_t(ch)) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}
}  // namespace

TEST_CASE("training-curve PNG decodes: signature, chunk CRCs, IHDR, a deflate stream zlib inflates, Adler-32", "[train]") {
  genner::report::Series loss, f1;
  for (int s = 0; s <= 3000; s += 25) {
    loss.steps.push_back(s);
    loss.values.push_back(0.15 + 4.0 * std::exp(-s / 400.0) + 0.05 * std::sin(s * 0.07));
  }
  for (int s = 300; s <= 3000; s += 300) {
    f1.steps.push_back(s);
    f1.values.push_back(92.0 - 60.0 * std::exp(-s / 500.0));
  }
  const auto img = genner::report::plot_training_curves(loss, f1, "conll2003 t5-base");
  const std::string png = img.encode_png();
  REQUIRE(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  std::size_t at = 8;
  std::vector<std::string> types;
  std::string idat;
  uint32_t w = 0, h = 0;
  while (at < png.size()) {
    REQUIRE(at + 12 <= png.size());
    const uint32_t len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    REQUIRE(at + 12 + len <= png.size());
    const std::string body = png.substr(at + 4, 4 + len);
    CHECK(be32(png, at + 8 + len) == reference_crc32(body));
    if (type == "IHDR") {
      w = be32(png, at + 8);
      h = be32(png, at + 12);
      CHECK(int(png[at + 16]) == 8);
      CHECK(int(png[at + 17]) == 2);
    }
    if (type == "IDAT") idat += png.substr(at + 8, len);
    types.push_back(type);
    at += 12 + len;
  }
  CHECK(types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
  CHECK(w == 800);
  CHECK(h == 480);
  // The references give the known CRC-32 / Adler-32 check values.
  CHECK(reference_crc32("123456789") == 0xCBF43926u);
  CHECK(reference_adler32("Wikipedia") == 0x11E60398u);
  // zlib: a deflate stream that zlib's own inflate reads back to every row, at a fraction of the
  // raw size (an 800x480 plot was 1.15 MB in stored blocks).
  REQUIRE(idat.size() > 6);
  CHECK((uint8_t(idat[0]) * 256 + uint8_t(idat[1])) % 31 == 0);
  CHECK((uint8_t(idat[0]) & 0x0F) == 8);
  std::string raw(std::size_t(h) * (1 + 3 * w), '\0');
  uLongf raw_size = static_cast<uLongf>(raw.size());
  REQUIRE(::uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size, reinterpret_cast<const Bytef*>(idat.data()),
                       static_cast<uLong>(idat.size())) == Z_OK);
  CHECK(raw_size == raw.size());
  INFO("PNG of " << png.size() << " bytes for " << raw.size() << " raw bytes");
  CHECK(png.size() * 20 < raw.size());
  CHECK(reference_adler32(raw) == be32(idat, idat.size() - 4));
  for (uint32_t y = 0; y < h; ++y) CHECK(raw[y * (1 + 3 * w)] == 0);
  // Something of each colour was drawn; the corner stays background.
  CHECK(img.at(0, 0) == genner::report::Rgb{255, 255, 255});
  int blue = 0, orange = 0;
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) {
      blue += img.at(x, y) == genner::report::Rgb{31, 119, 180};
      orange += img.at(x, y) == genner::report::Rgb{230, 110, 10};
    }
  CHECK(blue > 500);
  CHECK(orange > 300);
  if (const char* keep = std::getenv("GENNER_KEEP_PLOT")) img.write_png(keep);
}

TEST_CASE("use_threads sizes OpenBLAS and OpenMP per precision, keeps the environment's choice, names its source",
          "[train]") {
  const int openmp_before = at::get_num_threads(), openblas_before = genner::core::openblas_threads();
  REQUIRE(openblas_before > 0);  // setup installs OpenBLAS: the pool this test sizes must exist
  std::map<std::string, std::string> saved;
  for (const char* k : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    if (const char* v = std::getenv(k)) saved[k] = v;
    ::unsetenv(k);
  }
  // fp32: products in OpenBLAS on every thread given, one OpenMP thread beside it.
  auto s = genner::core::use_threads(2, /*openmp_products=*/false);
  CHECK(s.openmp == 1);
  CHECK(at::get_num_threads() == 1);
  CHECK(s.openblas == 2);
  CHECK(genner::core::openblas_threads() == 2);
  CHECK(s.source == "--threads 2");
  // bf16 / int8: oneDNN runs on OpenMP threads, as many as OpenBLAS gets.
  s = genner::core::use_threads(2, /*openmp_products=*/true, "run.json: threads");
  CHECK(s.openmp == 2);
  CHECK(at::get_num_threads() == 2);
  CHECK(s.openblas == 2);
  CHECK(s.source == "run.json: threads 2");
  s = genner::core::use_threads(1, true);
  CHECK((at::get_num_threads() == 1 && genner::core::openblas_threads() == 1));
  // 0: every core this process may use.
  s = genner::core::use_threads(0, true);
  CHECK(s.openmp == genner::core::available_cores());
  CHECK(s.openblas == genner::core::available_cores());
  CHECK_THAT(s.source, Catch::Contains("every available core"));
  // 0 with a count in the environment: nothing changes, and the description says where it came from.
  genner::core::use_threads(1, false);
  ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
  s = genner::core::use_threads(0, true);
  CHECK((s.openmp == 1 && s.openblas == 1 && at::get_num_threads() == 1));
  CHECK_THAT(s.describe(), Catch::Contains("OpenMP 1, OpenBLAS 1") && Catch::Contains("environment"));
  CHECK_THROWS_WITH(genner::core::use_threads(-1, false), Catch::Contains("--threads") && Catch::Contains("-1"));
  ::unsetenv("OPENBLAS_NUM_THREADS");
  for (const auto& [k, v] : saved) ::setenv(k.c_str(), v.c_str(), 1);
  genner::core::use_threads(openblas_before, false);  // OpenBLAS as it was (and one OpenMP thread)
  at::set_num_threads(openmp_before);
}

TEST_CASE("FusedAdamW takes LibTorch's AdamW steps in one pass per parameter", "[train]") {
  for (const bool amsgrad : {false, true}) {
    INFO("amsgrad " << amsgrad);
    torch::manual_seed(21);
    // A contiguous matrix (large enough for the loop to be split over threads), a transposed view
    // (not contiguous: LibTorch's operations), a vector that never gets a gradient.
    const std::vector<torch::Tensor> init{torch::randn({300, 701}), torch::randn({5, 9}).t(), torch::randn({4})};
    auto make = [&] {
      std::vector<torch::Tensor> ps;
      for (const auto& t : init) ps.push_back(t.clone().requires_grad_(true));
      ps[1] = init[1].t().clone().t().requires_grad_(true);
      return ps;
    };
    auto ours = make(), theirs = make();
    REQUIRE_FALSE(ours[1].is_contiguous());
    auto options = [&](double wd) { return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(3e-2).weight_decay(wd).amsgrad(amsgrad)); };
    auto groups = [&](std::vector<torch::Tensor>& ps) {
      std::vector<torch::optim::OptimizerParamGroup> g;
      g.emplace_back(std::vector<torch::Tensor>{ps[0]}, options(0.01));
      g.emplace_back(std::vector<torch::Tensor>{ps[1], ps[2]}, options(0.0));
      return g;
    };
    genner::core::FusedAdamW fused(groups(ours));
    torch::optim::AdamW reference(groups(theirs));
    for (int step = 0; step < 6; ++step) {
      for (size_t i = 0; i < 2; ++i) {
        const auto g = torch::randn(init[i].sizes()) * (step + 1);
        ours[i].mutable_grad() = g.clone();
        theirs[i].mutable_grad() = g.clone();
      }
      fused.step();
      reference.step();
    }
    for (size_t i = 0; i < ours.size(); ++i) {
      INFO("parameter " << i);
      CHECK(torch::allclose(ours[i], theirs[i], 1e-5, 1e-6));  // a few ulps: LibTorch fuses some products
    }
    CHECK(torch::equal(ours[2], init[2]));  // no gradient, no step
    for (size_t i = 0; i < 2; ++i) {
      const auto key = c10::guts::to_string(ours[i].unsafeGetTensorImpl());
      const auto other = c10::guts::to_string(theirs[i].unsafeGetTensorImpl());
      const auto& a = static_cast<const torch::optim::AdamWParamState&>(*fused.state().at(key));
      const auto& b = static_cast<const torch::optim::AdamWParamState&>(*reference.state().at(other));
      CHECK(a.step() == 6);
      CHECK(torch::allclose(a.exp_avg(), b.exp_avg(), 1e-5, 1e-6));
      CHECK(torch::allclose(a.exp_avg_sq(), b.exp_avg_sq(), 1e-5, 1e-6));
    }
  }
}
