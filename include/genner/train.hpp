// genner/train.hpp: umbrella header for genner's training utilities (metric, schedule,
// optimisation helpers, checkpoints, the trainer and its callbacks: log, early stopping,
// progress bar, curve.png).
#pragma once

#include <genner/train/metric.hpp>
#include <genner/train/schedule.hpp>
#include <genner/train/optim.hpp>
#include <genner/train/checkpoint.hpp>
#include <genner/train/callbacks.hpp>
#include <genner/train/progress.hpp>
#include <genner/train/log.hpp>
#include <genner/train/run_folder.hpp>
#include <genner/train/plot.hpp>
#include <genner/train/distributed.hpp>
#include <genner/train/trainer.hpp>
#include <genner/train/standard_callbacks.hpp>
