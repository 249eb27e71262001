// genner/train/plot.hpp: PlotCallback, which draws a Trainer's curve.png (report/chart.hpp).
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include <genner/report/chart.hpp>
#include <genner/train/callbacks.hpp>

namespace genner::train {

/// Writes `output_dir/curve.png` (plot_training_curves of the loss and dev F1 of every
/// evaluation so far, a resumed run's earlier ones included) after each evaluation.
class PlotCallback : public TrainerCallback {
 public:
  explicit PlotCallback(std::string file_name = "curve.png", std::string title = "training: loss and dev F1")
      : file_name_(std::move(file_name)), title_(std::move(title)) {}

  void on_start(const TrainingStart& s) override {
    loss_ = {};
    f1_ = {};
    for (const auto& p : s.curve) add(p);
  }
  void on_evaluation(const TrainingEvaluation& e) override {
    add(e.point);
    report::plot_training_curves(loss_, f1_, title_).write_png(e.output_dir / file_name_);
  }
  [[nodiscard]] nlohmann::json describe() const override { return {{"name", "plot"}, {"file", file_name_}}; }

 private:
  void add(const CurvePoint& p) {
    loss_.steps.push_back(static_cast<double>(p.step));
    loss_.values.push_back(p.loss);
    if (p.dev_f1) {
      f1_.steps.push_back(static_cast<double>(p.step));
      f1_.values.push_back(*p.dev_f1);
    }
  }

  std::string file_name_, title_;
  report::Series loss_, f1_;
};

}  // namespace genner::train
