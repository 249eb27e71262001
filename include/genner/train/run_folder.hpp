// genner/train/run_folder.hpp: a run's output folder made trustworthy — checked and created with
// errors that name it, held by one process at a time (an exclusive lock that a killed process
// releases), cleared of temporaries that killed writers left, and paths recorded relative to it
// so that the folder can be moved.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/io/atomic_file.hpp>

namespace genner::train {

/// Creates `dir` (and its parents) as a writable folder, or fails with a sentence naming `key`
/// and the path: empty, an existing file, a path under a file, not creatable, not writable.
inline std::filesystem::path prepare_output_dir(const std::string& dir, const std::string& key = "--output_dir") {
  namespace fs = std::filesystem;
  GENNER_CHECK(!dir.empty(), key, ": expected a folder, found an empty path");
  const fs::path path(dir);
  std::error_code ec;
  // The nearest existing ancestor must be a folder (a path under a file cannot be created).
  for (fs::path p = path; !p.empty(); p = p.parent_path()) {
    const auto st = fs::status(p, ec);
    if (st.type() == fs::file_type::not_found) {
      if (p == p.parent_path()) break;
      continue;
    }
    GENNER_CHECK(fs::is_directory(st), key, ": expected a folder at '", dir, "', found ",
                 p == path ? std::string("a file of that name") : "that '" + p.string() + "' is a file",
                 "; choose another --output_dir");
    break;
  }
  fs::create_directories(path, ec);
  GENNER_CHECK(!ec, key, ": cannot create the folder '", dir, "' (", ec.message(), ")");
  GENNER_CHECK(::access(path.c_str(), W_OK | X_OK) == 0, key, ": the folder '", dir, "' is not writable (",
               std::strerror(errno), "); choose another --output_dir");
  return path;
}

/// An exclusive lock on a run folder (flock on `<dir>/.lock`, which holds the owner's PID). A
/// second holder, in this process or another, is refused with the first one's PID; the kernel
/// releases the lock when its process ends, kill -9 included, so a stale lock never blocks.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir) : file_(dir / ".lock") {
    fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    GENNER_CHECK(fd_ >= 0, file_.string(), ": cannot open the run folder's lock file (", std::strerror(errno), ")");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {};
      const auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      fd_ = -1;
      GENNER_CHECK(err != EWOULDBLOCK, dir.string(), ": the run folder is in use by another run (PID ",
                   n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("unknown"),
                   "); wait for it to finish or choose another --output_dir");
      fail(file_.string(), ": cannot lock the run folder (", std::strerror(err), ")");
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // The lock holds regardless; only the PID shown to a refused second run is missing.
    }
  }
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

/// True for the names io::temporary_for gives temporaries: `<name>.tmp-<pid>`.
[[nodiscard]] inline bool is_temporary_name(const std::string& name) { return io::temporary_writer(name) > 0; }

/// Whether process `pid` is alive (a temporary named after it may still be being written).
[[nodiscard]] inline bool process_alive(long pid) {
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

/// Whether `path` (inside run folder `dir`) is a temporary of a file a genner run writes there —
/// run.json, the weights, the log, the checkpoint folders and their files, the sample data — whose
/// writer is no longer alive. A user's own `*.tmp-<digits>` file and another process's live
/// temporary are never matched.
[[nodiscard]] inline bool is_stale_run_temporary(const std::filesystem::path& path, const std::filesystem::path& dir) {
  const auto name = path.filename().string();
  const long writer = io::temporary_writer(name);
  if (writer <= 0 || process_alive(writer)) return false;
  const auto stem = name.substr(0, name.rfind(".tmp-"));
  const auto parent = path.parent_path().lexically_relative(dir).string();
  static const std::vector<std::string> top = {
      "run.json",    "config.json", "manifest.json",     "results.json",    "best.safetensors",      "frozen.safetensors",
      "spiece.model", "log.jsonl",  "curve.png",         "checkpoint",      "checkpoint.prev",       "sample_data",
      "test_predictions.jsonl", "test_predictions.txt"};
  static const std::vector<std::string> in_checkpoint = {"state.json", "tensors.safetensors", "optimizer.safetensors"};
  auto listed = [&](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), stem) != names.end();
  };
  if (parent == ".") return listed(top);
  if (parent == "checkpoint" || parent == "checkpoint.prev") return listed(in_checkpoint);
  return parent == "sample_data";
}

/// Removes the temporaries that killed writers of this run folder left in `dir` and its
/// sub-folders (two levels; see is_stale_run_temporary); call it while holding the RunLock.
/// Returns what it removed.
inline std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (is_temporary_name(it->path().filename().string())) {
      if (is_stale_run_temporary(it->path(), dir)) found.push_back(it->path());
      it.disable_recursion_pending();
    } else if (it.depth() >= 1) {
      it.disable_recursion_pending();
    }
  }
  for (const auto& p : found) fs::remove_all(p, ec);
  return found;
}

/// `path` as recorded in a run folder: relative to `dir` when it lies inside it, else absolute,
/// so that a moved folder still finds its own files.
[[nodiscard]] inline std::string path_for_record(const std::filesystem::path& path, const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto abs_path = fs::weakly_canonical(fs::absolute(path), ec);
  const auto abs_dir = fs::weakly_canonical(fs::absolute(dir), ec);
  const auto rel = abs_path.lexically_relative(abs_dir);
  if (!rel.empty() && *rel.begin() != "..") return rel.string();
  return abs_path.string();
}

/// A path read from a run record: relative ones are resolved against the run folder.
[[nodiscard]] inline std::filesystem::path path_from_record(const std::string& recorded,
                                                            const std::filesystem::path& dir) {
  const std::filesystem::path p(recorded);
  return p.is_relative() ? dir / p : p;
}

}  // namespace genner::train
