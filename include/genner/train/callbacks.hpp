// genner/train/callbacks.hpp: everything around the training loop. The Trainer
// (train/trainer.hpp) calls every TrainerCallback of its options, on rank 0 only and in their
// order, when it starts, after each optimizer step, after each evaluation and when it returns. A
// callback may stop training (stop_training), may carry state across a resume (state / restore:
// saved in every checkpoint), and at an evaluation may have the Trainer write the trained weights
// or the resumable checkpoint (TrainingEvaluation::save_weights, ::checkpoint). Here: KeepBestWeights
// (best.safetensors), Checkpointing (checkpoint/) and EarlyStopping; JsonlLogCallback (train/log.hpp)
// writes log.jsonl and log.csv, ProgressCallback (train/progress.hpp) draws the progress bar,
// PlotCallback (train/plot.hpp) writes curve.png; train::standard_callbacks
// (train/standard_callbacks.hpp) gives the command line's set.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
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

/// An evaluation is done: dev is scored and the best score so far updated. A callback may have the
/// Trainer write the trained weights (at once) or the resumable checkpoint (once every callback has
/// seen the evaluation, so that it holds their state() after it).
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
  /// Writes the trained tensors (model::save_trained) to a file, atomically. Unset outside fit().
  std::function<void(const std::filesystem::path&)> save_weights;
  /// Asks for the resumable checkpoint in <output_dir>/checkpoint (weights, optimizer, schedule,
  /// random streams, sampler, best score, curve, callbacks' states). Unset outside fit().
  std::function<void()> checkpoint;
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

/// Observes a training run and acts around it; every hook does nothing unless overridden.
class TrainerCallback {
 public:
  virtual ~TrainerCallback() = default;
  virtual void on_start(const TrainingStart&) {}
  virtual void on_step(const TrainingStep&) {}
  virtual void on_evaluation(const TrainingEvaluation&) {}
  virtual void on_end(const TrainingEnd&) {}
  /// Asked after every step and every evaluation: true ends training there on every rank. A stop
  /// between evaluations evaluates first (keeping weights and checkpointing as the callbacks do at
  /// every evaluation), so the run ends selected and resumable.
  [[nodiscard]] virtual bool stop_training() const { return false; }
  /// What the callback is and what it was given ({"name": ..., settings}): plans show it, and a
  /// callback with state() is found again by its name on resume.
  [[nodiscard]] virtual nlohmann::json describe() const { return {{"name", "callback"}}; }
  /// What the callback carries across a resume (null: nothing). Saved with every checkpoint;
  /// restore() gets it back before on_start of the resumed run.
  [[nodiscard]] virtual nlohmann::json state() const { return nullptr; }
  virtual void restore(const nlohmann::json&) {}
};

/// Keeps the weights of the best evaluation: writes the trained tensors to <output_dir>/`file` at
/// every evaluation that improves the best dev F1 (at every evaluation without a dev set). The
/// Trainer reports that file as TrainResult::best_model. One of TrainerOptions' default callbacks.
class KeepBestWeights : public TrainerCallback {
 public:
  explicit KeepBestWeights(std::filesystem::path file = "best.safetensors") : file_(std::move(file)) {
    GENNER_CHECK(!file_.empty(), "KeepBestWeights: expected a file name, found an empty one");
  }
  void on_evaluation(const TrainingEvaluation& e) override {
    if (e.best_step == e.step && e.save_weights) e.save_weights(e.output_dir / file_);
  }
  [[nodiscard]] nlohmann::json describe() const override {
    return {{"name", "keep_best_weights"}, {"file", file_.string()}};
  }
  [[nodiscard]] const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

/// Makes a run resumable: asks for the checkpoint at every evaluation, so that a killed run goes on
/// from its last evaluation. One of TrainerOptions' default callbacks; without it a run leaves no
/// checkpoint and starts over.
class Checkpointing : public TrainerCallback {
 public:
  void on_evaluation(const TrainingEvaluation& e) override {
    if (e.checkpoint) e.checkpoint();
  }
  [[nodiscard]] nlohmann::json describe() const override { return {{"name", "checkpointing"}, {"folder", "checkpoint"}}; }
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
