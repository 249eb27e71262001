// genner/io/atomic_file.hpp: writes a file through a temporary sibling and a rename, so a crash
// mid-write never leaves a half-written file in place, and no exit path leaves the temporary:
// an exception removes it, and so does SIGTERM, SIGINT or SIGHUP while it is being written.
// write_output streams into what is not a regular file (a FIFO, a terminal, /dev/stdout).
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include <genner/core/error.hpp>

namespace genner::io {

/// The name of this process's temporary for `path`: `<path>.tmp-<pid>`. Every file and folder
/// genner writes through a rename uses it, so a run folder's clean-up can recognise temporaries
/// (is_temporary_name) and tell whether their writer still lives.
[[nodiscard]] inline std::filesystem::path temporary_for(const std::filesystem::path& path) {
  auto clean = path;
  if (!clean.has_filename()) clean = clean.parent_path();  // "dir/" names the folder itself
  return clean.string() + ".tmp-" + std::to_string(::getpid());
}

/// The writer's process id when `name` (a file name) is of temporary_for's form, else 0.
[[nodiscard]] inline long temporary_writer(const std::string& name) {
  const auto at = name.rfind(".tmp-");
  if (at == std::string::npos || at + 5 == name.size() || name.size() - at - 5 > 9) return 0;
  if (name.find_first_not_of("0123456789", at + 5) != std::string::npos) return 0;
  return std::stol(name.substr(at + 5));
}

namespace detail {

/// Paths of the temporaries being written now, removed by the signal handler (async-signal-safe:
/// fixed buffers, unlink, then the signal's default action).
struct LiveTemporaries {
  static constexpr int kSlots = 16;
  std::array<std::array<char, 4096>, kSlots> paths{};
  std::array<volatile std::sig_atomic_t, kSlots> used{};
  std::mutex mutex;
};
inline LiveTemporaries& live_temporaries() {
  static LiveTemporaries t;
  return t;
}

inline void remove_temporaries_and_reraise(int sig) {
  auto& t = live_temporaries();
  for (int i = 0; i < LiveTemporaries::kSlots; ++i)
    if (t.used[i]) ::unlink(t.paths[i].data());
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

/// Registers `path` for removal on a terminating signal while it lives; installs the handler for
/// SIGTERM, SIGINT and SIGHUP where those still have their default action.
class TemporaryGuard {
 public:
  explicit TemporaryGuard(const std::filesystem::path& path) {
    auto& t = live_temporaries();
    const std::string s = path.string();
    if (s.size() >= t.paths[0].size()) return;  // cannot register; the run folder's clean-up still finds it
    std::lock_guard<std::mutex> lock(t.mutex);
    static const bool installed = [] {
      for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
        struct sigaction now {};
        if (::sigaction(sig, nullptr, &now) == 0 && now.sa_handler == SIG_DFL) {
          struct sigaction ours {};
          ours.sa_handler = remove_temporaries_and_reraise;
          sigemptyset(&ours.sa_mask);
          ::sigaction(sig, &ours, nullptr);
        }
      }
      return true;
    }();
    (void)installed;
    for (int i = 0; i < LiveTemporaries::kSlots; ++i) {
      if (t.used[i]) continue;
      std::memcpy(t.paths[i].data(), s.c_str(), s.size() + 1);
      t.used[i] = 1;
      slot_ = i;
      return;
    }
  }
  ~TemporaryGuard() {
    if (slot_ < 0) return;
    auto& t = live_temporaries();
    std::lock_guard<std::mutex> lock(t.mutex);
    t.used[slot_] = 0;
  }
  TemporaryGuard(const TemporaryGuard&) = delete;
  TemporaryGuard& operator=(const TemporaryGuard&) = delete;

 private:
  int slot_ = -1;
};

}  // namespace detail

/// Calls `write(stream)` on `path.tmp-<pid>`, flushes, then renames over `path`. The temporary is
/// removed when `write` throws, when writing fails (disk full) and on SIGTERM/SIGINT/SIGHUP.
template <typename Writer>
void write_atomically(const std::filesystem::path& path, Writer&& write) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::filesystem::path tmp = temporary_for(path);
  detail::TemporaryGuard guard(tmp);
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    GENNER_CHECK(out.good(), tmp.string(), ": cannot open for writing");
    write(out);
    out.flush();
    GENNER_CHECK(out.good(), tmp.string(), ": write failed (disk full?)");
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(path.string(), ": cannot rename the temporary file into place (", ec.message(), ")");
  }
}

/// Writes a whole string atomically.
inline void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  write_atomically(path, [&](std::ofstream& out) { out << text; });
}

/// Whether write_output streams into `path` rather than replacing it: /dev/stdout, /dev/stderr,
/// /dev/fd/N and /proc/self/fd/N (an open descriptor, whatever it refers to), and any existing
/// path that is not a regular file once symbolic links are followed (a FIFO, a terminal, /dev/null).
[[nodiscard]] inline bool streams_into(const std::filesystem::path& path) {
  const std::string s = path.lexically_normal().string();
  if (s == "/dev/stdout" || s == "/dev/stderr" || s.starts_with("/dev/fd/") || s.starts_with("/proc/self/fd/"))
    return true;
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
}

/// Output to `path` through `write(stream)`: streamed into it when streams_into(path), else
/// written atomically (write_atomically) — through a symbolic link, to the file it points at,
/// so the link stays a link.
template <typename Writer>
void write_output(const std::filesystem::path& path, Writer&& write) {
  if (streams_into(path)) {
    std::ofstream out(path, std::ios::binary | std::ios::out);
    GENNER_CHECK(out.good(), path.string(), ": cannot open for writing");
    write(out);
    out.flush();
    GENNER_CHECK(out.good(), path.string(), ": write failed (closed pipe or disk full?)");
    return;
  }
  // Follow symbolic links (a dangling one too) to the file they name.
  std::filesystem::path target = path;
  std::error_code ec;
  for (int hops = 0; hops < 40 && std::filesystem::is_symlink(target, ec); ++hops) {
    const auto next = std::filesystem::read_symlink(target, ec);
    if (ec) break;
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  write_atomically(target, std::forward<Writer>(write));
}

}  // namespace genner::io
