// genner/core/threading.hpp: the threads genner's products run on.
// Two pools do the work: OpenBLAS's own pthreads run every fp32 matrix product, and LibTorch's
// OpenMP threads run elementwise kernels and every bf16 and int8 product (oneDNN uses OpenMP
// threads only). OpenMP's default of spin-waiting between parallel regions steals the cores
// OpenBLAS needs (measured: 3x slower T5 forward passes with 2 spinning OpenMP threads), and the
// wait policy is read only when the OpenMP runtime loads, before main() runs: genner's programs
// restart themselves once under OMP_WAIT_POLICY=PASSIVE (and OpenBLAS's threads told to sleep soon
// after a product: preferred_environment), and then size both pools per precision.
// genner's own loops over large tensors (AdamW's update, dropout's masks: parallel_range below) run
// on worker threads of their own, as many as the larger pool, whatever the precision.
#pragma once

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
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
/// A function of a runtime this process has loaded (OpenBLAS, OpenMP), by name; null when absent.
template <class F>
F runtime_function(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_DEFAULT, name));
}
}  // namespace detail

/// OpenBLAS's thread count; 0 when the BLAS this process runs is not OpenBLAS.
[[nodiscard]] inline int openblas_threads() {
  const auto get = detail::runtime_function<int (*)()>("openblas_get_num_threads");
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

namespace detail {
/// Worker threads parallel_range hands its parts to, started on first use and kept (asleep on a
/// condition variable between loops): starting and joining a thread took about 40 us, handing a
/// part to a sleeping worker about 6 (2-core AMD EPYC), and a training step runs some 200 loops
/// (dropout's masks, AdamW). One loop at a time; a loop that
/// finds the workers busy (another thread's loop, or a loop inside a part) starts threads of its own.
class LoopWorkers {
 public:
  /// This process's workers (a child of fork() gets its own: the parent's threads are not in it).
  static LoopWorkers& of_this_process() {
    static std::atomic<LoopWorkers*> current{nullptr};
    LoopWorkers* w = current.load();
    if (w == nullptr || w->owner_ != ::getpid()) {
      auto* fresh = new LoopWorkers();  // never deleted: its threads sleep until the process ends
      fresh->parent_ = w;               // the parent's, kept reachable in a child
      if (current.compare_exchange_strong(w, fresh)) return *fresh;
      delete fresh;
    }
    return *w;
  }

  /// Runs part(i) for every i in [0, parts), part 0 on the calling thread; false (nothing run) when
  /// the workers are busy.
  bool run(int parts, const std::function<void(int)>& part) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    std::unique_lock<std::mutex> lock(mutex_);
    for (; threads_ < parts - 1; ++threads_)
      std::thread([this, index = threads_ + 1, seen = generation_] { work(index, seen); }).detach();
    job_ = &part;
    parts_ = parts;
    remaining_ = parts - 1;
    ++generation_;
    lock.unlock();
    wake_.notify_all();
    part(0);
    lock.lock();
    done_.wait(lock, [&] { return remaining_ == 0; });
    job_ = nullptr;
    return true;
  }

 private:
  LoopWorkers() : owner_(::getpid()) {}
  void work(int index, uint64_t seen) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (index >= parts_) continue;
      const auto* job = job_;
      lock.unlock();
      (*job)(index);
      lock.lock();
      if (--remaining_ == 0) done_.notify_one();
    }
  }

  const pid_t owner_;
  LoopWorkers* parent_ = nullptr;
  std::mutex busy_, mutex_;
  std::condition_variable wake_, done_;
  int threads_ = 0;  ///< workers started (detached: they live as long as the process)
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0, remaining_ = 0;
  uint64_t generation_ = 0;
};
}  // namespace detail

/// Runs f(begin, end) over [0, n) cut into contiguous parts of at least `grain` (at most
/// loop_threads() parts), the calling thread taking the first and kept worker threads the others.
/// For loops whose parts are independent (element-wise updates): the result does not depend on the
/// number of parts. An exception from any part is rethrown once every part has finished.
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
  std::vector<std::exception_ptr> errors(static_cast<size_t>(parts));
  const std::function<void(int)> part = [&](int i) {
    try {
      f(n * i / parts, n * (i + 1) / parts);
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  };
  if (!detail::LoopWorkers::of_this_process().run(parts, part)) {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(parts - 1));
    for (int i = 1; i < parts; ++i) threads.emplace_back(part, i);
    part(0);
    for (auto& t : threads) t.join();
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

/// OpenMP's thread count for the calling thread's parallel regions (oneDNN's primitives among them),
/// set to `n` for the scope's life; nothing changes where this process has no OpenMP runtime.
class OpenMpThreads {
 public:
  explicit OpenMpThreads(int n) {
    if (get() != nullptr && set() != nullptr && n > 0 && (before_ = get()()) != n) set()(n);
  }
  ~OpenMpThreads() {
    if (before_ > 0 && set() != nullptr) set()(before_);
  }
  OpenMpThreads(const OpenMpThreads&) = delete;
  OpenMpThreads& operator=(const OpenMpThreads&) = delete;
  /// The calling thread's OpenMP thread count (1 without an OpenMP runtime).
  static int current() { return get() != nullptr ? get()() : 1; }

 private:
  static int (*get())() {
    static const auto f = detail::runtime_function<int (*)()>("omp_get_max_threads");
    return f;
  }
  static void (*set())(int) {
    static const auto f = detail::runtime_function<void (*)(int)>("omp_set_num_threads");
    return f;
  }
  int before_ = 0;
};

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
  if (const auto set = detail::runtime_function<void (*)(int)>("openblas_set_num_threads")) {
    set(n);
    s.openblas = openblas_threads();
  }
  return s;
}

}  // namespace genner::core
