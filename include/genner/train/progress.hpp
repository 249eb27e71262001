// genner/train/progress.hpp: ProgressCallback, a Trainer's progress bar (report/progress.hpp)
// with a line per evaluation under it.
#pragma once

#include <unistd.h>

#include <cmath>
#include <optional>
#include <utility>

#include <genner/report/progress.hpp>
#include <genner/train/callbacks.hpp>

namespace genner::train {

/// The training run's progress bar (step/total, smoothed loss, tokens/s, ETA) and, after each
/// evaluation with a dev set, a line of its own under it: loss, dev F1 and the best so far.
class ProgressCallback : public TrainerCallback {
 public:
  explicit ProgressCallback(report::ProgressOptions options = {}) : options_(std::move(options)) {}

  void on_start(const TrainingStart& s) override {
    bar_.reset();
    bar_.emplace(s.total_steps, options_);
    if (s.step > 0) bar_->update(s.step, std::nan(""), 0);
  }
  void on_step(const TrainingStep& s) override {
    if (bar_) bar_->update(s.step, s.loss, s.tokens);
  }
  void on_evaluation(const TrainingEvaluation& e) override {
    if (!e.dev_f1) return;
    const bool tty = options_.tty.value_or(::isatty(STDERR_FILENO) == 1);
    *options_.out << (tty ? "\r\x1b[K" : "") << "step " << e.step << ": loss " << report::format_fixed(e.point.loss, 4)
                  << ", dev F1 " << report::format_fixed(100 * *e.dev_f1, 2) << " (best "
                  << report::format_fixed(100 * e.best_dev_f1, 2) << " at step " << e.best_step << ")\n"
                  << std::flush;
  }
  void on_end(const TrainingEnd&) override {
    if (bar_) bar_->finish();
    bar_.reset();
  }
  [[nodiscard]] nlohmann::json describe() const override { return {{"name", "progress"}}; }

 private:
  report::ProgressOptions options_;
  std::optional<report::ProgressBar> bar_;
};

}  // namespace genner::train
