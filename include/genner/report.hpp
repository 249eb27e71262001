// genner/report.hpp: umbrella header of what a person reads while genner works — the terminal
// progress bar and the training-curve chart (PNG).
#pragma once

#include <genner/report/progress.hpp>
#include <genner/report/chart.hpp>
