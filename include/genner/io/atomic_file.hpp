// genner/io/atomic_file.hpp: writes a file through a temporary sibling and a
// rename, so a crash mid-write never leaves a half-written file in place.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <genner/core/error.hpp>

namespace genner::io {

/// Calls `write(stream)` on `path.tmp-<pid>`, flushes, then renames over `path`.
template <typename Writer>
void write_atomically(const std::filesystem::path& path, Writer&& write) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    GENNER_CHECK(out.good(), tmp.string(), ": cannot open for writing");
    write(out);
    out.flush();
    if (!out.good()) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      fail(tmp.string(), ": write failed (disk full?)");
    }
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

}  // namespace genner::io
