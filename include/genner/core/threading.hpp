// genner/core/threading.hpp: the threading set-up genner's programs start with.
// LibTorch here runs its own OpenMP pool next to OpenBLAS's pthreads; OpenMP's
// default of spin-waiting between parallel regions steals the cores OpenBLAS
// needs (measured: 3x slower T5 forward passes with 2 OpenMP threads), and the
// wait policy is read only when the OpenMP runtime loads, before main() runs.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace genner::core {

/// Restarts the program once with OMP_WAIT_POLICY=PASSIVE unless the caller chose a policy.
/// Call first thing in main(); returns normally when nothing needs to change.
inline void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GENNER_NO_REEXEC") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::setenv("GENNER_NO_REEXEC", "1", 1);
  ::execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the policy the runtime already has.
}

}  // namespace genner::core
