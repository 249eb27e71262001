// genner/train/schedule.hpp: the published learning-rate schedule — linear warm-up to each
// parameter group's own base LR, then linear decay to 0 (docs/METHOD.md §3-4) — applied to the
// param groups of a torch::optim optimizer. Its only state is the step, saved by checkpoint.hpp.
#pragma once

#include <torch/optim/optimizer.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <genner/core/error.hpp>

namespace genner::train {

/// Warm-up length: a fraction of the total steps (the published 0.01 / 0.1) or a step count.
struct Warmup {
  double value = 0.0;
  bool is_fraction = true;
  static Warmup fraction(double f) { return {f, true}; }
  static Warmup steps(int64_t n) { return {double(n), false}; }
};

/// LR factor at `step` of `total`: step/warmup while warming up, then (total-step)/(total-warmup)
/// down to 0, as Hugging Face's get_linear_schedule_with_warmup (the original's: original_linear_warmup_decay).
[[nodiscard]] inline double linear_warmup_decay(int64_t step, int64_t total, int64_t warmup) {
  if (step < warmup) return double(step) / double(std::max<int64_t>(1, warmup));
  return std::max(0.0, double(total - step) / double(std::max<int64_t>(1, total - warmup)));
}

/// The original system's linear schedule (fastNLP's WarmupCallback, `schedule='linear'`): update k,
/// counted from 1, of `total` gets p/w while p = k/total < w, then max((p - 1)/(w - 1), 0), with the
/// warm-up fraction w not rounded to whole steps (docs/METHOD.md §6). The first update thus gets
/// 1/(w·total) of the LR where linear_warmup_decay gives 0.
[[nodiscard]] inline double original_linear_warmup_decay(int64_t update, int64_t total, double warmup_fraction) {
  const double p = double(update) / double(std::max<int64_t>(2, total));
  if (p < warmup_fraction) return p / warmup_fraction;
  return std::max((p - 1.0) / (warmup_fraction - 1.0), 0.0);
}

/// Whose counting a LinearSchedule follows: genner's (Hugging Face's: the first update is step 0,
/// warm-up in whole steps) or the original system's (original_linear_warmup_decay).
enum class ScheduleConvention { genner, original };

/// Drives the LR of every param group of an optimizer: group i gets base_lr[i] * factor(step).
/// Base LRs are the groups' LRs when the schedule is built (new modules may have their own).
/// Use: build after the optimizer; after each optimizer.step() call schedule.step().
class LinearSchedule {
 public:
  LinearSchedule(torch::optim::Optimizer& optimizer, int64_t total_steps, Warmup warmup,
                 ScheduleConvention convention = ScheduleConvention::genner)
      : optimizer_(&optimizer), total_(total_steps), convention_(convention) {
    GENNER_CHECK(total_steps > 0, "LinearSchedule: expected a positive number of total steps, found ", total_steps);
    GENNER_CHECK(warmup.value >= 0 && (!warmup.is_fraction || warmup.value <= 1.0),
                 "LinearSchedule: expected warm-up as a fraction in [0, 1] or a step count >= 0, found ", warmup.value,
                 warmup.is_fraction ? " (fraction)" : " (steps)");
    warmup_ = warmup.is_fraction ? int64_t(warmup.value * double(total_steps)) : int64_t(warmup.value);
    GENNER_CHECK(warmup_ <= total_, "LinearSchedule: expected at most ", total_, " warm-up steps, found ", warmup_);
    warmup_fraction_ = warmup.is_fraction ? warmup.value : warmup.value / double(total_steps);
    GENNER_CHECK(convention_ != ScheduleConvention::original || warmup_fraction_ < 1.0,
                 "LinearSchedule: the original's schedule divides by (warm-up fraction - 1); expected a warm-up "
                 "fraction below 1, found ", warmup_fraction_);
    for (auto& group : optimizer.param_groups()) base_lrs_.push_back(group.options().get_lr());
    apply();
  }

  /// Advances one step and sets the LRs for the next optimizer step.
  void step() {
    ++step_;
    apply();
  }
  /// Jumps to `step` (resume) and sets the LRs accordingly.
  void set_step(int64_t step) {
    GENNER_CHECK(step >= 0, "LinearSchedule::set_step: expected a step >= 0, found ", step);
    step_ = step;
    apply();
  }

  [[nodiscard]] int64_t current_step() const { return step_; }
  [[nodiscard]] int64_t total_steps() const { return total_; }
  [[nodiscard]] int64_t warmup_steps() const { return warmup_; }
  [[nodiscard]] double factor() const {
    return convention_ == ScheduleConvention::original ? original_linear_warmup_decay(step_ + 1, total_, warmup_fraction_)
                                                       : linear_warmup_decay(step_, total_, warmup_);
  }
  [[nodiscard]] const std::vector<double>& base_lrs() const { return base_lrs_; }

 private:
  void apply() {
    auto& groups = optimizer_->param_groups();
    GENNER_CHECK(groups.size() == base_lrs_.size(), "LinearSchedule: the optimizer had ", base_lrs_.size(),
                 " param groups when the schedule was built, found ", groups.size());
    const double f = factor();
    for (std::size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(base_lrs_[i] * f);
  }

  torch::optim::Optimizer* optimizer_;
  int64_t total_;
  ScheduleConvention convention_ = ScheduleConvention::genner;
  int64_t warmup_ = 0;
  double warmup_fraction_ = 0.0;
  int64_t step_ = 0;
  std::vector<double> base_lrs_;
};

}  // namespace genner::train
