// genner/train/callbacks.hpp: everything around the training loop. The Trainer
// (train/trainer.hpp) calls every TrainerCallback of its options, on rank 0 only, when it starts,
// after each optimizer step, after each evaluation (once the best weights are kept, before the
// checkpoint) and when it returns. A callback may stop training (stop_training) and may carry state
// across a resume (state / restore: saved in every checkpoint). EarlyStopping is here;
// JsonlLogCallback (train/log.hpp) writes log.jsonl and log.csv, ProgressCallback
// (train/progress.hpp) draws the progress bar, PlotCallback (train/plot.hpp) writes curve.png;
// train::standard_callbacks (train/standard_callbacks.hpp) gives the command line's set.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>

namespace genner::train {

/// One evaluation's point of the training curve: the mean training loss since the previous
/// evaluation and the dev F1 (none without a dev set, or when it is not a number).
struct CurvePoint {
  int64_t step = 0;
  double loss = 0.0;
  std::optional<double> dev_f1;

  /// [step, loss, f1 or null], the form checkpoints keep.
  [[nodiscard]] nlohmann::json to_json() const {
    return {step, loss, dev_f1 ? nlohmann::json(*dev_f1) : nlohmann::json()};
  }
  [[nodiscard]] static CurvePoint from_json(const nlohmann::json& p) {
    GENNER_CHECK(p.is_array() && p.size() >= 2 && p.at(0).is_number() && p.at(1).is_number(),
                 "training curve: expected a point [step, loss, f1 or null], found ", json_excerpt(p));
    CurvePoint out{p.at(0).get<int64_t>(), p.at(1).get<double>(), std::nullopt};
    if (p.size() > 2 && p.at(2).is_number()) out.dev_f1 = p.at(2).get<double>();
    return out;
  }
};

/// fit() begins (a resumed run begins past step 0, with the curve of its earlier evaluations).
struct TrainingStart {
  int64_t step = 0;  ///< steps already done
  int64_t total_steps = 0;
  int64_t steps_per_epoch = 0;
  bool resumed = false;
  std::filesystem::path output_dir;
  std::vector<CurvePoint> curve;
};

/// An optimizer step is done.
struct TrainingStep {
  int64_t step = 0;  ///< steps done, this one included
  int64_t total_steps = 0;
  double loss = 0.0;   ///< this step's loss over the whole (global) batch
  double lr = 0.0;     ///< the first parameter group's learning rate after this step's schedule update
  int64_t tokens = 0;  ///< source and target tokens this process fed the model in the step
};

/// An evaluation is done and the best weights kept (the checkpoint follows, with every callback's
/// state()).
struct TrainingEvaluation {
  int64_t step = 0;
  int64_t total_steps = 0;
  double epoch = 0.0;
  CurvePoint point;              ///< mean training loss since the last evaluation, dev F1
  std::optional<double> dev_f1;  ///< the dev set's micro F1 as computed (none without a dev set)
  double best_dev_f1 = -1.0;
  int64_t best_step = -1;
  double lr = 0.0;
  nlohmann::json record;  ///< the evaluation's line of the log (JsonlLogCallback writes it)
  std::filesystem::path output_dir;
};

/// fit() returns.
struct TrainingEnd {
  int64_t steps = 0;
  bool interrupted = false;  ///< stopped by TrainerOptions::interrupt_after, as a killed run would
  bool stopped_early = false;  ///< a callback stopped training (stop_training)
  double best_dev_f1 = -1.0;
  int64_t best_step = -1;
  std::filesystem::path output_dir;
};

/// Observes a training run; every hook does nothing unless overridden.
class TrainerCallback {
 public:
  virtual ~TrainerCallback() = default;
  virtual void on_start(const TrainingStart&) {}
  virtual void on_step(const TrainingStep&) {}
  virtual void on_evaluation(const TrainingEvaluation&) {}
  virtual void on_end(const TrainingEnd&) {}
  /// Asked after every step and every evaluation: true ends training there on every rank. A stop
  /// between evaluations evaluates and checkpoints first, so the run ends selected and resumable.
  [[nodiscard]] virtual bool stop_training() const { return false; }
  /// What the callback is and what it was given ({"name": ..., settings}): plans show it, and a
  /// callback with state() is found again by its name on resume.
  [[nodiscard]] virtual nlohmann::json describe() const { return {{"name", "callback"}}; }
  /// What the callback carries across a resume (null: nothing). Saved with every checkpoint;
  /// restore() gets it back before on_start of the resumed run.
  [[nodiscard]] virtual nlohmann::json state() const { return nullptr; }
  virtual void restore(const nlohmann::json&) {}
};

/// Stops training after `patience` evaluations in a row without a better dev F1 than the best so
/// far. Runs without a dev set never stop this way.
class EarlyStopping : public TrainerCallback {
 public:
  explicit EarlyStopping(int64_t patience) : patience_(patience) {
    GENNER_CHECK(patience >= 1, "EarlyStopping: expected a patience of at least 1 evaluation, found ", patience);
  }
  void on_evaluation(const TrainingEvaluation& e) override {
    if (!e.dev_f1) return;  // nothing to select on
    since_best_ = e.best_step == e.step ? 0 : since_best_ + 1;
  }
  [[nodiscard]] bool stop_training() const override { return since_best_ >= patience_; }
  [[nodiscard]] nlohmann::json describe() const override {
    return {{"name", "early_stopping"}, {"patience", patience_}};
  }
  [[nodiscard]] nlohmann::json state() const override { return {{"since_best", since_best_}}; }
  void restore(const nlohmann::json& s) override {
    GENNER_CHECK(s.is_object() && s.contains("since_best") && s.at("since_best").is_number_integer(),
                 "early stopping: expected the checkpoint's state {\"since_best\": N}, found ", json_excerpt(s));
    since_best_ = s.at("since_best").get<int64_t>();
  }
  [[nodiscard]] int64_t evaluations_since_best() const { return since_best_; }

 private:
  int64_t patience_;
  int64_t since_best_ = 0;
};

}  // namespace genner::train
