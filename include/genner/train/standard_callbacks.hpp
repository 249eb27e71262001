// genner/train/standard_callbacks.hpp: the callbacks the command-line driver gives every training
// run — the best weights, the resumable checkpoint, the log, early stopping, the progress bar and
// the training-curve image. A library user picks from them (or writes its own: train/callbacks.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <genner/train/callbacks.hpp>
#include <genner/train/log.hpp>
#include <genner/train/plot.hpp>
#include <genner/train/progress.hpp>

namespace genner::train {

/// What standard_callbacks() gives.
struct StandardCallbacks {
  bool progress = true;       ///< the progress bar on stderr (ProgressCallback)
  int64_t logging_steps = 0;  ///< JsonlLogCallback: a training-loss line every N steps; 0: evaluations only
  int64_t patience = 0;       ///< EarlyStopping after N evaluations without a better dev F1; 0: never
};

/// best.safetensors, checkpoint/, log.jsonl and log.csv, early stopping (with a patience), the
/// progress bar (when asked) and curve.png, in that order.
[[nodiscard]] inline std::vector<std::shared_ptr<TrainerCallback>> standard_callbacks(const StandardCallbacks& o = {}) {
  std::vector<std::shared_ptr<TrainerCallback>> out;
  out.push_back(std::make_shared<KeepBestWeights>());
  out.push_back(std::make_shared<Checkpointing>());
  out.push_back(std::make_shared<JsonlLogCallback>(o.logging_steps));
  if (o.patience > 0) out.push_back(std::make_shared<EarlyStopping>(o.patience));
  if (o.progress) out.push_back(std::make_shared<ProgressCallback>());
  out.push_back(std::make_shared<PlotCallback>());
  return out;
}

}  // namespace genner::train
