// genner/core/memory.hpp: measuring memory — the process's resident set (now and at its peak)
// and the bytes of tensor storage that LibTorch's CPU allocator hands out (TensorMemoryCounter:
// live and peak, for checking a memory plan against what a workload really allocates).
#pragma once

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <unordered_map>

namespace genner::core {

/// The peak resident set of this process so far, in bytes (getrusage).
inline int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

/// The resident set of this process now, in bytes (/proc/self/statm; 0 where it is missing).
inline int64_t current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

/// The memory this process may use and what sets it: the least of the machine's physical memory,
/// the address-space and data-segment limits (ulimit -v / -d) and the cgroup's memory.max
/// (containers), so that a plan is checked against the limit that would really stop the run.
struct MemoryLimit {
  int64_t bytes = 0;
  const char* source = "the machine's memory";
};

inline MemoryLimit memory_limit() {
  MemoryLimit out{static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<int64_t>(sysconf(_SC_PAGESIZE)),
                  "the machine's memory"};
  const auto take = [&](int64_t bytes, const char* source) {
    if (bytes > 0 && bytes < out.bytes) out = {bytes, source};
  };
  rlimit r{};
  if (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    take(static_cast<int64_t>(r.rlim_cur), "the address-space limit (ulimit -v)");
  if (getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    take(static_cast<int64_t>(r.rlim_cur), "the data-segment limit (ulimit -d)");
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");
  int64_t max = 0;
  if (cgroup >> max) take(max, "the cgroup's memory.max");  // "max" (no limit) does not parse
  return out;
}

/// Counts the bytes of every CPU tensor allocated after install(): live now and the peak since
/// the last reset_peak(). It wraps the CPU allocator in place, so tensors allocated before keep
/// their own deleters and are not counted.
class TensorMemoryCounter final : public c10::Allocator {
 public:
  /// Installs the counter as LibTorch's CPU allocator (once per process) and returns it.
  static TensorMemoryCounter& install() {
    static TensorMemoryCounter* counter = [] {
      auto* c = new TensorMemoryCounter(c10::GetCPUAllocator());
      instance() = c;
      c10::SetCPUAllocator(c, /*priority=*/100);
      return c;
    }();
    return *counter;
  }

  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(live_.load()); }

  c10::DataPtr allocate(size_t n) const override {
    void* data = base_->raw_allocate(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[data] = static_cast<int64_t>(n);
    }
    const int64_t now = live_.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t seen = peak_.load();
    while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

 private:
  explicit TensorMemoryCounter(c10::Allocator* base) : base_(base) {}
  static TensorMemoryCounter*& instance() {
    static TensorMemoryCounter* c = nullptr;
    return c;
  }
  static void release(void* data) {
    auto* self = instance();
    int64_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      const auto it = self->sizes_.find(data);
      if (it != self->sizes_.end()) {
        bytes = it->second;
        self->sizes_.erase(it);
      }
    }
    self->live_.fetch_sub(bytes);
    self->base_->raw_deallocate(data);
  }

  c10::Allocator* base_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, int64_t> sizes_;
  mutable std::atomic<int64_t> live_{0};
  mutable std::atomic<int64_t> peak_{0};
};

}  // namespace genner::core
