// The whole pipeline on genner's own sample data: tokenizer training, a small T5 from scratch,
// the Trainer (learning asserted), and bit-exact resume of an interrupted run.
#include <genner/genner.hpp>
#include <genner/data/sample.hpp>

#include "support.hpp"
#include "sample_task.hpp"

namespace {

namespace fs = std::filesystem;
namespace gm = genner::model;
using Scratch = gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>;

/// Sample data, a tokenizer trained on it, labels and encoded examples.
struct Pipeline {
  genner::data::Dataset train, dev;
  genner::text::Tokenizer tokenizer;
  genner::data::LabelSpace labels;
  std::vector<genner::data::Example> train_ex, dev_ex;

  static Pipeline make(const fs::path& dir, size_t train_size, size_t dev_size) {
    auto t = genner::test::SampleTask::make(dir, 7, {train_size, dev_size, 10}, 500);
    return {std::move(t.train),  std::move(t.dev),      std::move(t.tokenizer),
            std::move(t.labels), std::move(t.train_ex), std::move(t.dev_ex)};
  }

  std::shared_ptr<gm::NerModelImpl<Scratch>> model(int64_t d_model) const {
    genner::t5::T5Config c;
    c.vocab_size = tokenizer.piece_count() + genner::text::Tokenizer::kNumExtraIds;
    c.d_model = d_model;
    c.d_ff = 2 * d_model;
    c.num_heads = 4;
    c.d_kv = d_model / 4;
    c.num_layers = 2;
    c.num_decoder_layers = 2;
    c.feed_forward = genner::t5::FeedForward::gated_gelu;
    c.tie_word_embeddings = false;
    torch::manual_seed(3);
    return std::make_shared<gm::NerModelImpl<Scratch>>(gm::NerOptions{}.types(labels.size()).with_config(c));
  }
};

genner::train::TrainerOptions options(const fs::path& out) {
  genner::train::TrainerOptions o;
  o.lr = 3e-3;
  o.warmup = 0.05;
  o.clip_norm = 1.0;
  o.truncate_prob = 0.1;  // exercises the truncation generator's state in checkpoints too
  o.max_tokens = 1200;
  o.output_dir = out;
  o.show_progress = false;
  o.decode.constrained = true;
  o.decode.search.max_length(10, 0.6);
  o.callbacks.push_back(std::make_shared<genner::train::JsonlLogCallback>());  // beside the best weights and checkpoint
  return o;
}

/// Records what a Trainer tells its callbacks.
struct Recorder : genner::train::TrainerCallback {
  std::vector<std::tuple<int64_t, bool, size_t>> starts;  // step, resumed, curve points
  std::vector<int64_t> steps, evaluations;
  std::vector<std::pair<int64_t, bool>> ends;  // steps, interrupted
  nlohmann::json last_record;
  void on_start(const genner::train::TrainingStart& s) override {
    starts.emplace_back(s.step, s.resumed, s.curve.size());
  }
  void on_step(const genner::train::TrainingStep& s) override {
    CHECK(std::isfinite(s.loss));
    CHECK(s.total_steps == 24);
    steps.push_back(s.step);
  }
  void on_evaluation(const genner::train::TrainingEvaluation& e) override {
    CHECK(e.point.step == e.step);
    CHECK(e.dev_f1.has_value());
    CHECK(e.record.at("train_loss").get<double>() == e.point.loss);
    evaluations.push_back(e.step);
    last_record = e.record;
  }
  void on_end(const genner::train::TrainingEnd& e) override { ends.emplace_back(e.steps, e.interrupted); }
};

}  // namespace

TEST_CASE("a small T5 from scratch learns flat NER on the sample data", "[pipeline]") {
  genner::test::TempDir tmp;
  auto p = Pipeline::make(tmp.path, 800, 100);
  auto model = p.model(64);
  auto before = genner::train::evaluate(*model, p.dev_ex, p.labels, options(tmp.path).decode);
  auto o = options(tmp.path / "run");
  o.epochs = 6;
  o.callbacks.push_back(std::make_shared<genner::train::PlotCallback>());
  genner::train::Trainer trainer(*model, p.labels, p.train_ex, p.dev_ex, o);
  const auto result = trainer.fit();
  const auto log = genner::train::JsonlLog::read(tmp.path / "run" / "log.jsonl");
  REQUIRE(log.size() == 6);
  const double first = log.front()["train_loss"].get<double>(), last = log.back()["train_loss"].get<double>();
  INFO("mean training loss of the first epoch " << first << ", of the last " << last << "; best dev F1 "
                                                << result.best_dev_f1 << ", before training "
                                                << before.scores.micro.f1());
  CHECK(last < 0.5 * first);
  CHECK(result.best_dev_f1 > 0.15);
  CHECK(result.best_dev_f1 > before.scores.micro.f1() + 0.1);
  CHECK(before.invalid_entities == 0);  // constrained decoding never yields an invalid entity
  CHECK(fs::exists(tmp.path / "run" / "curve.png"));
  CHECK(fs::exists(tmp.path / "run" / "best.safetensors"));
}

TEST_CASE("an interrupted training run resumes to bit-identical weights", "[pipeline]") {
  genner::test::TempDir tmp;
  auto p = Pipeline::make(tmp.path, 200, 20);
  auto recorder = std::make_shared<Recorder>();
  auto run = [&](const fs::path& out, std::vector<int64_t> pieces) {
    auto model = p.model(32);
    for (auto stop : pieces) {
      auto o = options(out);
      o.max_steps = 24;
      o.eval_every = 6;
      o.interrupt_after = stop;  // 0: run to the end
      o.callbacks.push_back(recorder);
      o.callbacks.push_back(std::make_shared<genner::train::PlotCallback>());
      // A fresh model object each time, as after a crash: only the checkpoint carries state over.
      if (stop != pieces.front()) model = p.model(32);
      genner::train::Trainer(*model, p.labels, p.train_ex, p.dev_ex, o).fit();
      torch::manual_seed(12345);  // disturb torch's generator: resume must restore it
    }
    return model;
  };
  auto straight = run(tmp.path / "straight", {0});
  auto interrupted =
      run(tmp.path / "interrupted", {8, 7, 0});  // stops at 8 (after the checkpoint at 6), then 12+1, ...
  auto a = straight->named_parameters(), b = interrupted->named_parameters();
  REQUIRE(a.size() == b.size());
  size_t identical = 0;
  for (const auto& item : a) {
    INFO(item.key());
    CHECK(torch::equal(item.value(), b[item.key()]));
    identical += torch::equal(item.value(), b[item.key()]);
  }
  CHECK(identical == a.size());
  // And the resumed run really resumed: its log has one line per evaluation, no duplicates.
  const auto log = genner::train::JsonlLog::read(tmp.path / "interrupted" / "log.jsonl");
  std::vector<int64_t> steps;
  for (const auto& l : log) steps.push_back(l["step"].get<int64_t>());
  CHECK(steps.back() == 24);
  // The callbacks saw every piece: each start where the previous piece stopped, with the curve of
  // the evaluations before it; every step once; the evaluations every 6 steps; the ends.
  const auto& r = *recorder;
  REQUIRE(r.starts.size() == 4);  // straight, then three pieces
  CHECK(r.starts[0] == std::tuple<int64_t, bool, size_t>{0, false, 0});
  CHECK(r.starts[1] == std::tuple<int64_t, bool, size_t>{0, false, 0});
  CHECK(r.starts[2] == std::tuple<int64_t, bool, size_t>{6, true, 1});  // stopped at 8, resumed from 6
  CHECK(r.starts[3] == std::tuple<int64_t, bool, size_t>{12, true, 2});
  CHECK(r.ends == std::vector<std::pair<int64_t, bool>>{{24, false}, {8, true}, {13, true}, {24, false}});
  CHECK(r.steps.size() == 24 + 8 + 7 + 12);
  CHECK(r.evaluations == std::vector<int64_t>{6, 12, 18, 24, 6, 12, 18, 24});
  CHECK(r.last_record.at("step") == 24);
  CHECK(r.last_record.contains("dev"));
  CHECK(fs::exists(tmp.path / "interrupted" / "curve.png"));
  // What a run writes is its callbacks': with the default ones its checkpoint and best weights, no
  // log and no image; with none, nothing.
  auto model = p.model(32);
  auto o = options(tmp.path / "plain");
  o.max_steps = 2;
  o.callbacks = genner::train::TrainerOptions{}.callbacks;
  const auto plain = genner::train::Trainer(*model, p.labels, p.train_ex, p.dev_ex, o).fit();
  CHECK(plain.best_model == tmp.path / "plain" / "best.safetensors");
  CHECK(fs::exists(tmp.path / "plain" / "best.safetensors"));
  CHECK(fs::exists(tmp.path / "plain" / "checkpoint" / "state.json"));
  CHECK_FALSE(fs::exists(tmp.path / "plain" / "log.jsonl"));
  CHECK_FALSE(fs::exists(tmp.path / "plain" / "curve.png"));
  o = options(tmp.path / "bare");
  o.max_steps = 2;
  o.callbacks.clear();
  const auto bare = genner::train::Trainer(*model, p.labels, p.train_ex, p.dev_ex, o).fit();
  CHECK(bare.best_model.empty());
  CHECK(bare.steps == 2);
  CHECK_FALSE(fs::exists(tmp.path / "bare" / "best.safetensors"));
  CHECK_FALSE(fs::exists(tmp.path / "bare" / "checkpoint"));
}

namespace {
/// Asks to stop once `at` steps are done.
struct StopAt : genner::train::TrainerCallback {
  explicit StopAt(int64_t s) : at(s) {}
  void on_step(const genner::train::TrainingStep& s) override { done = s.step; }
  bool stop_training() const override { return done >= at; }
  nlohmann::json describe() const override { return {{"name", "stop_at"}}; }
  int64_t at, done = 0;
};
}  // namespace

TEST_CASE("a callback stops training: evaluated and checkpointed where it stopped, its state checkpointed",
          "[pipeline]") {
  genner::test::TempDir tmp;
  auto p = Pipeline::make(tmp.path, 200, 20);
  auto model = p.model(32);
  auto o = options(tmp.path / "run");
  o.max_steps = 24;
  o.eval_every = 6;
  auto patience = std::make_shared<genner::train::EarlyStopping>(100);
  o.callbacks.push_back(patience);
  o.callbacks.push_back(std::make_shared<StopAt>(9));
  const auto result = genner::train::Trainer(*model, p.labels, p.train_ex, p.dev_ex, o).fit();
  CHECK(result.steps == 9);
  CHECK(result.stopped_early);
  std::vector<int64_t> evaluated;
  for (const auto& line : genner::train::JsonlLog::read(tmp.path / "run" / "log.jsonl"))
    evaluated.push_back(line.at("step").get<int64_t>());
  CHECK(evaluated == std::vector<int64_t>{6, 9});  // the stop between evaluations evaluated first
  const auto state = genner::io::read_json_file(tmp.path / "run" / "checkpoint" / "state.json", "checkpoint");
  CHECK(state.at("step") == 9);
  CHECK(state.at("extra").at("callbacks").at("early_stopping") ==
        nlohmann::json{{"since_best", patience->evaluations_since_best()}});
  CHECK_FALSE(state.at("extra").at("callbacks").contains("stop_at"));  // no state(): nothing saved
  // Resumed, the early-stopping count comes back from the checkpoint.
  auto again = std::make_shared<genner::train::EarlyStopping>(100);
  auto resumed = options(tmp.path / "run");
  resumed.max_steps = 24;
  resumed.eval_every = 6;
  resumed.interrupt_after = 1;
  resumed.callbacks.push_back(again);
  genner::train::Trainer(*model, p.labels, p.train_ex, p.dev_ex, resumed).fit();
  CHECK(again->evaluations_since_best() == patience->evaluations_since_best());
}
