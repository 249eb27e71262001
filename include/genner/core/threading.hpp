// genner/core/threading.hpp: the threads genner's products run on.
// Two pools do the work: OpenBLAS's own pthreads run every fp32 matrix product, and LibTorch's
// OpenMP threads run elementwise kernels and every bf16 and int8 product (oneDNN uses OpenMP
// threads only). OpenMP's default of spin-waiting between parallel regions steals the cores
// OpenBLAS needs (measured: 3x slower T5 forward passes with 2 spinning OpenMP threads), and the
// wait policy is read only when the OpenMP runtime loads, before main() runs: genner's programs
// restart themselves once under OMP_WAIT_POLICY=PASSIVE, and then size both pools per precision.
#pragma once

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <genner/core/error.hpp>

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

/// Cores this process may run on (its CPU affinity mask), at least 1.
[[nodiscard]] inline int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

namespace detail {
template <class F>
F openblas_function(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_DEFAULT, name));
}
}  // namespace detail

/// OpenBLAS's thread count; 0 when the BLAS this process runs is not OpenBLAS.
[[nodiscard]] inline int openblas_threads() {
  const auto get = detail::openblas_function<int (*)()>("openblas_get_num_threads");
  return get ? get() : 0;
}

/// How many threads each pool runs, and why.
struct ThreadSetting {
  int openmp = 1;    ///< LibTorch's intra-op OpenMP threads (elementwise work, bf16 and int8 products)
  int openblas = 0;  ///< OpenBLAS's threads (fp32 products); 0: the BLAS is not OpenBLAS
  std::string source;
  std::string describe() const {
    return "OpenMP " + std::to_string(openmp) + ", OpenBLAS " +
           (openblas > 0 ? std::to_string(openblas) : std::string("n/a (not OpenBLAS)")) + " (" + source + ")";
  }
};

/// Sizes both pools. `threads` > 0: that many (from `origin`, e.g. "--threads"); 0: the
/// environment's OMP_NUM_THREADS / OPENBLAS_NUM_THREADS when either is set, else every available
/// core. fp32 work (`openmp_products` false) runs its products in OpenBLAS and keeps one OpenMP
/// thread; bf16 and int8 (`openmp_products` true), whose products oneDNN runs on OpenMP threads, get
/// as many OpenMP threads as OpenBLAS. Returns what was set.
inline ThreadSetting use_threads(int threads, bool openmp_products, const std::string& origin = "--threads") {
  GENNER_CHECK(threads >= 0, origin, ": expected 0 (every core) or a positive thread count, found ", threads);
  const bool from_env = std::getenv("OMP_NUM_THREADS") != nullptr || std::getenv("OPENBLAS_NUM_THREADS") != nullptr;
  ThreadSetting s;
  if (threads == 0 && from_env) {  // the caller chose: keep it, and say so
    s.openmp = at::get_num_threads();
    s.openblas = openblas_threads();
    s.source = "OMP_NUM_THREADS / OPENBLAS_NUM_THREADS of the environment";
    return s;
  }
  const int n = threads > 0 ? threads : available_cores();
  s.source = threads > 0 ? origin + " " + std::to_string(threads)
                         : "every available core (" + std::to_string(n) + ")";
  s.openmp = openmp_products ? n : 1;
  at::set_num_threads(s.openmp);
  if (const auto set = detail::openblas_function<void (*)(int)>("openblas_set_num_threads")) {
    set(n);
    s.openblas = openblas_threads();
  }
  return s;
}

}  // namespace genner::core
