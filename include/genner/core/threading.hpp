// genner/core/threading.hpp: the threads genner's products run on.
// Two pools do the work: OpenBLAS's own pthreads run every fp32 matrix product, and LibTorch's
// OpenMP threads run elementwise kernels and every bf16 and int8 product (oneDNN uses OpenMP
// threads only). OpenMP's default of spin-waiting between parallel regions steals the cores
// OpenBLAS needs (measured: 3x slower T5 forward passes with 2 spinning OpenMP threads), and the
// wait policy is read only when the OpenMP runtime loads, before main() runs: genner's programs
// restart themselves once under OMP_WAIT_POLICY=PASSIVE (and OpenBLAS's threads told to sleep soon
// after a product: preferred_environment), and then size both pools per precision.
// genner's own loops over large tensors (AdamW's update, dropout's masks: parallel_range below) run
// on plain threads, as many as the larger pool, whatever the precision.
#pragma once

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>

namespace genner::core {

/// The environment genner's programs run under unless the caller set these variables, and why:
///  - OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep between parallel regions instead of spinning
///    on the cores OpenBLAS's threads need (3x slower T5 forward passes measured otherwise);
///  - OPENBLAS_THREAD_TIMEOUT=18: OpenBLAS's threads wait 2^18 cycles (about 0.1 ms) for the next
///    product before they sleep, instead of its default 2^28 (about 0.1 s) spent spinning in
///    sched_yield; the default left every loop between products (AdamW's update, dropout, layer
///    norms) sharing the cores with spinning threads (a t5-small training step spent a fifth of its
///    CPU time in the kernel), while a short wait still serves a decoder's back-to-back products.
/// Both are read only when the runtimes load, before main() runs, hence the restart.
inline constexpr std::pair<const char*, const char*> preferred_environment[] = {
    {"OMP_WAIT_POLICY", "PASSIVE"}, {"OPENBLAS_THREAD_TIMEOUT", "18"}};

/// Restarts the program once with preferred_environment's variables that the caller did not set.
/// Call first thing in main(); returns normally when nothing needs to change.
inline void prefer_passive_openmp(char** argv) {
  if (std::getenv("GENNER_NO_REEXEC") != nullptr) return;
  bool changed = false;
  for (const auto& [name, value] : preferred_environment)
    if (std::getenv(name) == nullptr) {
      ::setenv(name, value, 1);
      changed = true;
    }
  if (!changed) return;
  ::setenv("GENNER_NO_REEXEC", "1", 1);
  ::execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the environment the runtimes already read.
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

namespace detail {
inline std::atomic<int>& loop_threads_setting() {
  static std::atomic<int> n{0};
  return n;
}
}  // namespace detail

/// Threads parallel_range splits a loop over: what use_threads chose last (the larger pool), else
/// every available core.
[[nodiscard]] inline int loop_threads() {
  const int n = detail::loop_threads_setting().load(std::memory_order_relaxed);
  return n > 0 ? n : available_cores();
}

/// Sets loop_threads() (0: every available core); use_threads calls it with the larger pool.
inline void set_loop_threads(int n) {
  GENNER_CHECK(n >= 0, "loop threads: expected 0 (every core) or a positive count, found ", n);
  detail::loop_threads_setting() = n;
}

/// Runs f(begin, end) over [0, n) cut into contiguous parts of at least `grain` (at most
/// loop_threads() parts), the calling thread taking the first. For loops whose parts are independent
/// (element-wise updates): the result does not depend on the number of parts. An exception from any
/// part is rethrown once every part has finished.
///
/// Plain threads rather than at::parallel_for: that one is OpenMP only where the caller's translation
/// unit is compiled with -fopenmp (it runs serially otherwise), and its thread count is LibTorch's
/// OpenMP pool, which fp32 keeps at one thread beside OpenBLAS's.
template <class F>
void parallel_range(int64_t n, int64_t grain, F&& f) {
  const int64_t most = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  const int parts = static_cast<int>(std::min<int64_t>(most, loop_threads()));
  if (parts <= 1) {
    f(int64_t{0}, n);
    return;
  }
  auto bound = [&](int i) { return n * i / parts; };
  std::vector<std::exception_ptr> errors(static_cast<size_t>(parts));
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(parts - 1));
  for (int i = 1; i < parts; ++i)
    workers.emplace_back([&, i] {
      try {
        f(bound(i), bound(i + 1));
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    });
  try {
    f(int64_t{0}, bound(1));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
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
    set_loop_threads(std::max(s.openmp, s.openblas));
    return s;
  }
  const int n = threads > 0 ? threads : available_cores();
  s.source = threads > 0 ? origin + " " + std::to_string(threads)
                         : "every available core (" + std::to_string(n) + ")";
  s.openmp = openmp_products ? n : 1;
  at::set_num_threads(s.openmp);
  set_loop_threads(n);
  if (const auto set = detail::openblas_function<void (*)(int)>("openblas_set_num_threads")) {
    set(n);
    s.openblas = openblas_threads();
  }
  return s;
}

}  // namespace genner::core
