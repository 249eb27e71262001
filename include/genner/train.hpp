// genner/train.hpp: umbrella header for genner's training utilities (metric, schedule,
// optimisation helpers, checkpoints, config, progress, logs and plots).
#pragma once

#include <genner/train/metric.hpp>
