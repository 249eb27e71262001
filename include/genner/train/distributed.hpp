// genner/train/distributed.hpp: data-parallel training over LibTorch's c10d — a process group
// (Gloo on CPU, NCCL on CUDA where LibTorch was built with it) joined the way torchrun launches
// ranks (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), bucketed all-reduce of the
// trainable gradients, sharding of batches and data sets, and a local launcher that starts N
// ranks of the running program itself.
//
// Every collective runs under the group's timeout: a rank that cannot reach the store, or whose
// peer died or stopped answering, throws genner::Error naming itself and the store address.
//
// How a global batch is cut (docs/METHOD.md §5): the sampler yields the same
// global batch on every rank; its examples are dealt round-robin into world_size x accumulate
// pieces, rank r processing pieces r, r + world_size, ... one after the other. Each piece's loss is
// its summed token cross-entropy divided by the target-token count of the whole global batch, so
// the summed gradients equal those of one process on the whole batch (mean over its tokens).
#pragma once

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // this LibTorch is built with Gloo; the macro only exposes its declarations
#endif

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>

namespace genner::train::dist {

/// Whether this build can use NCCL (LibTorch built with CUDA and c10d NCCL).
[[nodiscard]] constexpr bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

enum class Backend { gloo, nccl };

/// "gloo", "nccl" or "auto" (NCCL when this build has it and a CUDA device is present, else Gloo).
[[nodiscard]] inline Backend parse_backend(const std::string& name, bool cuda_present) {
  if (name == "gloo") return Backend::gloo;
  if (name == "nccl") {
    GENNER_CHECK(nccl_available(),
                 "backend 'nccl': this build of genner has no NCCL (LibTorch was built without "
                 "CUDA/NCCL); use --backend gloo");
    return Backend::nccl;
  }
  GENNER_CHECK(name == "auto", "backend: expected 'auto', 'gloo' or 'nccl', found '", name, "'");
  return nccl_available() && cuda_present ? Backend::nccl : Backend::gloo;
}
[[nodiscard]] inline const char* backend_name(Backend b) { return b == Backend::nccl ? "nccl" : "gloo"; }

/// Where this process sits in a data-parallel run, as torchrun describes it.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool from_environment = false;  ///< RANK/WORLD_SIZE were set
};

namespace detail {
inline std::optional<long> env_int(const char* name, long lo, long hi) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  GENNER_CHECK(*v && end && *end == '\0' && errno == 0 && x >= lo && x <= hi, "environment variable ", name,
               ": expected an integer in [", lo, ", ", hi, "], found '", v, "'");
  return x;
}
}  // namespace detail

/// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Neither RANK nor WORLD_SIZE set:
/// a single process. One without the other, or a rank outside the world: an error naming them.
[[nodiscard]] inline LaunchEnv launch_env_from_environment() {
  LaunchEnv e;
  const auto world = detail::env_int("WORLD_SIZE", 1, 1 << 20);
  const auto rank = detail::env_int("RANK", 0, (1 << 20) - 1);
  if (!world && !rank) return e;
  GENNER_CHECK(world && rank, "environment: RANK and WORLD_SIZE go together; found only ",
               world ? "WORLD_SIZE" : "RANK");
  GENNER_CHECK(*rank < *world, "environment: RANK=", *rank, " is outside WORLD_SIZE=", *world);
  e.from_environment = true;
  e.world_size = static_cast<int>(*world);
  e.rank = static_cast<int>(*rank);
  e.local_rank = static_cast<int>(detail::env_int("LOCAL_RANK", 0, 1 << 20).value_or(e.rank));
  if (const char* a = std::getenv("MASTER_ADDR"))
    e.master_addr = a;
  else
    GENNER_CHECK(e.world_size == 1, "environment: WORLD_SIZE=", e.world_size, " needs MASTER_ADDR (the store's host)");
  if (auto p = detail::env_int("MASTER_PORT", 1, 65535))
    e.master_port = static_cast<int>(*p);
  else
    GENNER_CHECK(e.world_size == 1, "environment: WORLD_SIZE=", e.world_size, " needs MASTER_PORT (the store's port)");
  return e;
}

/// A TCP port that was free on 127.0.0.1 a moment ago (for a local launch).
[[nodiscard]] inline int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  GENNER_CHECK(fd >= 0, "free_local_port: cannot open a socket (", std::strerror(errno), ")");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  GENNER_CHECK(ok, "free_local_port: cannot bind a socket on 127.0.0.1 (", std::strerror(errno), ")");
  return ntohs(addr.sin_port);
}

struct GroupOptions {
  Backend backend = Backend::gloo;
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};  ///< store connection and every collective
  bool connect_alone = false;  ///< build a process group even for one rank (to measure c10d's own cost)
};

/// Bytes and wall time spent in gradient all-reduces (the benchmark reports them).
struct ReduceStats {
  int64_t calls = 0;
  int64_t bytes = 0;
  int64_t buckets = 0;
  double seconds = 0.0;
};

/// A c10d process group, or the trivial group of one process (every collective a no-op).
class Group {
 public:
  Group() = default;

  /// Joins the group `env` describes: rank 0 hosts the TCP store at MASTER_ADDR:MASTER_PORT.
  static Group connect(const LaunchEnv& env, const GroupOptions& options = {}) {
    Group g;
    g.rank_ = env.rank;
    g.size_ = env.world_size;
    g.local_rank_ = env.local_rank;
    g.address_ = env.master_addr + ":" + std::to_string(env.master_port);
    g.backend_ = options.backend;
    g.timeout_ = options.timeout;
    if (g.size_ == 1 && !options.connect_alone) return g;
    const double seconds = std::chrono::duration<double>(options.timeout).count();
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(env.master_port);
      so.isServer = env.rank == 0;
      so.numWorkers = static_cast<std::size_t>(env.world_size);
      so.waitWorkers = true;
      so.timeout = options.timeout;
      g.store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    } catch (const std::exception& e) {
      fail(g.who(), ": cannot ", env.rank == 0 ? "host the store with every rank connected" : "reach the store", " at ",
           g.address_, " within ", seconds, " s (", first_line(e), ")");
    }
    try {
      if (options.backend == Backend::gloo) {
        auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
        if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (is_loopback(env.master_addr))
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
          o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        o->threads = 2;
        g.pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(g.store_, env.rank, env.world_size, o);
      } else {
#ifdef USE_C10D_NCCL
        auto o = c10d::ProcessGroupNCCL::Options::create();
        o->timeout = options.timeout;
        g.pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(g.store_, env.rank, env.world_size, o);
#else
        fail("backend nccl: this build of genner has no NCCL; use gloo");
#endif
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(g.who(), ": cannot connect to its peers (", backend_name(options.backend), ", store ", g.address_,
           ", timeout ", seconds, " s): ", first_line(e));
    }
    return g;
  }

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] int local_rank() const { return local_rank_; }
  [[nodiscard]] bool is_main() const { return rank_ == 0; }
  /// Whether collectives go through c10d (more than one rank, or connect_alone).
  [[nodiscard]] bool distributed() const { return static_cast<bool>(pg_); }
  [[nodiscard]] Backend backend() const { return backend_; }
  [[nodiscard]] const std::string& address() const { return address_; }
  /// "rank 1 of 2 (store 127.0.0.1:29500)", the prefix of every error.
  [[nodiscard]] std::string who() const {
    return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
           (address_.empty() ? std::string() : " (store " + address_ + ")");
  }
  /// Where this group's collectives want their tensors (CPU for Gloo, the rank's GPU for NCCL).
  [[nodiscard]] at::Device device() const {
    return backend_ == Backend::nccl ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank_))
                                     : at::Device(at::kCPU);
  }

  void barrier(std::string_view what) {
    if (!distributed()) return;
    // A one-element all-reduce rather than c10d's barrier: it honours the same timeout on every backend.
    auto t = at::zeros({1}, at::TensorOptions().device(device()));
    all_reduce_sum(t, what);
  }

  /// Sums `t` (one contiguous tensor) over all ranks, in place.
  void all_reduce_sum(at::Tensor& t, std::string_view what) {
    if (!distributed()) return;
    check_device(t, what);
    std::vector<at::Tensor> v{t};
    run(what, [&] { return pg_->allreduce(v); });
  }

  /// Copies root's `t` into every rank's `t`.
  void broadcast(at::Tensor& t, std::string_view what, int root = 0) {
    if (!distributed()) return;
    check_device(t, what);
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    run(what, [&] { return pg_->broadcast(v, o); });
  }

  /// Every rank's string, in rank order.
  [[nodiscard]] std::vector<std::string> all_gather(const std::string& mine, std::string_view what) {
    if (!distributed()) return {mine};
    const auto opts = at::TensorOptions().device(device());
    auto len = at::full({1}, static_cast<int64_t>(mine.size()), opts.dtype(at::kLong));
    std::vector<std::vector<at::Tensor>> lens(1);
    for (int r = 0; r < size_; ++r) lens[0].push_back(at::empty_like(len));
    std::vector<at::Tensor> in{len};
    run(what, [&] { return pg_->allgather(lens, in); });
    int64_t longest = 0;
    std::vector<int64_t> sizes;
    for (auto& l : lens[0]) sizes.push_back(l.cpu().item<int64_t>()), longest = std::max(longest, sizes.back());
    auto bytes = at::zeros({std::max<int64_t>(1, longest)}, at::kByte);
    std::memcpy(bytes.data_ptr<uint8_t>(), mine.data(), mine.size());
    std::vector<at::Tensor> payload{bytes.to(device())};
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < size_; ++r) outs[0].push_back(at::empty_like(payload[0]));
    run(what, [&] { return pg_->allgather(outs, payload); });
    std::vector<std::string> result;
    for (int r = 0; r < size_; ++r) {
      auto cpu = outs[0][static_cast<size_t>(r)].cpu();
      result.emplace_back(reinterpret_cast<const char*>(cpu.data_ptr<uint8_t>()), static_cast<size_t>(sizes[r]));
    }
    return result;
  }

  /// A double summed over ranks.
  [[nodiscard]] double sum(double v, std::string_view what) {
    if (!distributed()) return v;
    auto t = at::full({1}, v, at::TensorOptions().dtype(at::kDouble).device(device()));
    all_reduce_sum(t, what);
    return t.cpu().item<double>();
  }

 private:
  static bool is_loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  }
  static std::string first_line(const std::exception& e) {
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    std::string s = c10 ? c10->what_without_backtrace() : e.what();
    if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
    return s;
  }
  void check_device(const at::Tensor& t, std::string_view what) const {
    GENNER_CHECK(t.is_contiguous(), who(), ": ", what, ": expected a contiguous tensor");
    GENNER_CHECK(backend_ != Backend::nccl || t.is_cuda(), who(), ": ", what,
                 ": NCCL reduces CUDA tensors only, "
                 "found one on ",
                 t.device().str(), "; train on CUDA or use --backend gloo");
  }
  template <class F>
  void run(std::string_view what, F&& start) {
    try {
      auto work = start();
      work->wait(timeout_);
    } catch (const std::exception& e) {
      fail(who(), ": ", what, " failed (a peer died, stopped answering within ",
           std::chrono::duration<double>(timeout_).count(), " s, or disagrees on shapes): ", first_line(e));
    }
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string address_;
  Backend backend_ = Backend::gloo;
  std::chrono::milliseconds timeout_{std::chrono::seconds(300)};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
};

/// Positions of `n` items that rank `part` of `parts` handles: part, part + parts, ... (round-robin,
/// so length-sorted inputs give every part similar lengths).
[[nodiscard]] inline std::vector<size_t> shard_positions(size_t n, size_t part, size_t parts) {
  GENNER_CHECK(parts >= 1 && part < parts, "shard_positions: expected part < parts, found ", part, " of ", parts);
  std::vector<size_t> out;
  for (size_t i = part; i < n; i += parts) out.push_back(i);
  return out;
}

/// Bucketed collectives over a fixed list of tensors (the trainable parameters). The layout —
/// buckets of at most `bucket_bytes`, never mixing devices or dtypes — depends only on the list,
/// so it is the same on every rank. Frozen parameters are simply not in the list: they send nothing.
class GradientReducer {
 public:
  GradientReducer(Group& group, std::vector<at::Tensor> params, size_t bucket_bytes = 25u << 20)
      : group_(group), params_(std::move(params)) {
    std::map<std::pair<std::string, int>, size_t> open;  // (device, dtype) -> bucket being filled
    for (size_t i = 0; i < params_.size(); ++i) {
      const auto& p = params_[i];
      const auto key = std::make_pair(p.device().str(), static_cast<int>(p.scalar_type()));
      const size_t bytes = static_cast<size_t>(p.numel()) * p.element_size();
      auto it = open.find(key);
      if (it == open.end() || buckets_[it->second].bytes + bytes > bucket_bytes) {
        buckets_.push_back({{}, 0, p.device(), p.scalar_type()});
        open[key] = buckets_.size() - 1;
        it = open.find(key);
      }
      buckets_[it->second].members.push_back(i);
      buckets_[it->second].bytes += bytes;
    }
  }

  /// Sums every parameter's gradient over the ranks (a missing gradient counts as zero and is
  /// created). One all-reduce per bucket.
  void all_reduce_gradients() {
    if (!group_.distributed()) return;
    const auto t0 = std::chrono::steady_clock::now();
    at::NoGradGuard no_grad;
    for (auto& b : buckets_) {
      std::vector<at::Tensor> flat;
      for (auto i : b.members) {
        const auto& p = params_[i];
        flat.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}, p.options()));
      }
      auto buffer = at::cat(flat);
      group_.all_reduce_sum(buffer, "gradient all-reduce");
      int64_t offset = 0;
      for (auto i : b.members) {
        auto& p = params_[i];
        auto slice = buffer.narrow(0, offset, p.numel()).view(p.sizes());
        if (p.grad().defined())
          p.mutable_grad().copy_(slice);
        else
          p.mutable_grad() = slice.clone();
        offset += p.numel();
      }
      stats_.bytes += static_cast<int64_t>(b.bytes);
    }
    stats_.buckets += static_cast<int64_t>(buckets_.size());
    ++stats_.calls;
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  /// Copies rank `root`'s values of every tensor to all ranks (identical starting weights).
  void broadcast_values(int root = 0) {
    if (!group_.distributed()) return;
    at::NoGradGuard no_grad;
    for (auto& b : buckets_) {
      std::vector<at::Tensor> flat;
      for (auto i : b.members) flat.push_back(params_[i].detach().reshape({-1}));
      auto buffer = at::cat(flat);
      group_.broadcast(buffer, "parameter broadcast", root);
      int64_t offset = 0;
      for (auto i : b.members) {
        params_[i].detach().copy_(buffer.narrow(0, offset, params_[i].numel()).view(params_[i].sizes()));
        offset += params_[i].numel();
      }
    }
  }

  [[nodiscard]] size_t bucket_count() const { return buckets_.size(); }
  [[nodiscard]] int64_t bytes_per_reduce() const {
    int64_t n = 0;
    for (const auto& b : buckets_) n += static_cast<int64_t>(b.bytes);
    return n;
  }
  [[nodiscard]] const ReduceStats& stats() const { return stats_; }

 private:
  struct Bucket {
    std::vector<size_t> members;
    size_t bytes = 0;
    at::Device device{at::kCPU};
    at::ScalarType dtype = at::kFloat;
  };
  Group& group_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
  ReduceStats stats_;
};

namespace detail {
inline volatile std::sig_atomic_t launcher_signal = 0;
inline void record_launcher_signal(int sig) { launcher_signal = sig; }

/// Sets the environment of local rank `r` of `nproc` as torchrun would (the store at `addr`:`port`),
/// with `share` OpenBLAS threads and one OpenMP thread unless those are set already.
inline void set_rank_environment(int r, int nproc, const std::string& addr, const std::string& port,
                                 const std::string& share) {
  ::setenv("RANK", std::to_string(r).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", addr.c_str(), 1);
  ::setenv("MASTER_PORT", port.c_str(), 1);
  ::setenv("OPENBLAS_NUM_THREADS", share.c_str(), 0);
  ::setenv("OMP_NUM_THREADS", "1", 0);
}

/// Waits for the ranks in `children` (each set to 0 once it ended), forwarding the signals the
/// launcher receives to every rank still running (`signalled`: the last one, 0 for none) and
/// stopping the others with SIGTERM when one fails. Returns the exit status of the first rank that
/// failed (128 + the signal for one killed), 0 when none did.
inline int wait_for_ranks(std::vector<pid_t>& children, int& signalled) {
  int status_out = 0;
  size_t running = children.size();
  while (running > 0) {
    if (const int sig = launcher_signal; sig != 0) {
      launcher_signal = 0;
      if (signalled == 0) std::fprintf(stderr, "nproc: signal %d; stopping every rank\n", sig);
      signalled = sig;
      for (auto child : children)
        if (child > 0) ::kill(child, sig);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    size_t r = 0;
    while (r < children.size() && children[r] != pid) ++r;
    if (r == children.size()) continue;
    children[r] = 0;
    --running;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && status_out == 0) {
      status_out = code;
      if (signalled == 0) std::fprintf(stderr, "rank %zu exited with status %d; stopping the other ranks\n", r, code);
      for (auto other : children)
        if (other > 0) ::kill(other, SIGTERM);
    }
  }
  return status_out;
}

}  // namespace detail

/// Starts `nproc` ranks of this program (/proc/self/exe with `argv`) on this machine, as torchrun
/// would: each child gets RANK = LOCAL_RANK = i, WORLD_SIZE = LOCAL_WORLD_SIZE = nproc,
/// MASTER_ADDR = 127.0.0.1 (unless set) and MASTER_PORT (a free port unless set), and a share of the
/// cores for OpenBLAS/OpenMP unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set. Waits for all;
/// when one fails, stops the others and returns its exit status (0 when all succeed). SIGTERM,
/// SIGINT and SIGHUP to the launcher are forwarded to every rank (it then returns 128 + the
/// signal), and each rank gets SIGTERM when the launcher dies (PR_SET_PDEATHSIG), so no rank
/// outlives it holding the run folder's lock.
[[nodiscard]] inline int spawn_local_ranks(int nproc, char** argv) {
  GENNER_CHECK(nproc >= 1, "nproc: expected at least 1, found ", nproc);
  const std::string addr = std::getenv("MASTER_ADDR") ? std::getenv("MASTER_ADDR") : "127.0.0.1";
  const std::string port = std::getenv("MASTER_PORT") ? std::getenv("MASTER_PORT") : std::to_string(free_local_port());
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string share = std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc)));
  std::vector<pid_t> children;
  const pid_t launcher = ::getpid();
  // Handlers without SA_RESTART: a signal interrupts waitpid, and wait_for_ranks forwards it.
  detail::launcher_signal = 0;
  struct sigaction forward {}, previous[3];
  forward.sa_handler = detail::record_launcher_signal;
  sigemptyset(&forward.sa_mask);
  const int forwarded[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) ::sigaction(forwarded[i], &forward, &previous[i]);
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    GENNER_CHECK(pid >= 0, "nproc: cannot start rank ", r, " (fork: ", std::strerror(errno), ")");
    if (pid == 0) {
      for (int i = 0; i < 3; ++i) ::sigaction(forwarded[i], &previous[i], nullptr);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(128 + SIGTERM);  // the launcher died before prctl
      if (detail::launcher_signal != 0) ::_exit(128 + detail::launcher_signal);
      detail::set_rank_environment(r, nproc, addr, port, share);
      ::execv("/proc/self/exe", argv);
      std::fprintf(stderr, "rank %d: cannot start %s (%s)\n", r, argv[0], std::strerror(errno));
      ::_exit(127);
    }
    children.push_back(pid);
  }
  int signalled = 0;
  const int status_out = detail::wait_for_ranks(children, signalled);
  for (int i = 0; i < 3; ++i) ::sigaction(forwarded[i], &previous[i], nullptr);
  return signalled != 0 ? 128 + signalled : status_out;
}

}  // namespace genner::train::dist
