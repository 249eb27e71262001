// genner/data/detail/lines.hpp: file reading and splitting helpers for the loaders (do not rely on this).
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <genner/core/error.hpp>
#include <genner/core/utf8.hpp>

#include <filesystem>
#include <fstream>
#include <istream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genner::data::detail {

/// Reads a whole file as bytes; throws when it is missing, unreadable or empty.
inline std::string read_text(const std::filesystem::path& file, const char* who) {
  GENNER_CHECK(std::filesystem::is_regular_file(file), who, ": expected a data file at '", file.string(),
               "', found none.");
  std::ifstream in(file, std::ios::binary);
  GENNER_CHECK(in.good(), who, ": could not open '", file.string(), "'.");
  std::stringstream buffer;
  buffer << in.rdbuf();
  GENNER_CHECK(!in.bad(), who, ": could not read '", file.string(), "'.");
  return buffer.str();
}

/// Splits file text into lines at LF, CRLF or a lone CR (files from any platform), after dropping
/// a UTF-8 byte-order mark; every line must be valid UTF-8 (the error names file:line and column).
inline std::vector<std::string> text_lines(std::string_view text, const std::filesystem::path& file, const char* who) {
  GENNER_CHECK(!text.empty(), who, ": expected data in '", file.string(), "', found an empty file.");
  if (core::has_utf8_bom(text)) text.remove_prefix(3);
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(pos, end - pos));
    core::check_utf8(lines.back(), std::string(who) + ": " + file.string() + ":" + std::to_string(lines.size()));
    pos = end + (end + 1 < text.size() && text[end] == '\r' && text[end + 1] == '\n' ? 2 : 1);
  }
  return lines;
}

/// Reads a stream or a file descriptor line by line, a line ending at LF, CRLF or a lone CR (a
/// CR ends the line at once, so a pipe is never waited on for the LF that may follow it). A line
/// longer than `max_bytes` fails naming `name` and the line, so no input (say /dev/zero) grows
/// memory without bound. Memory: one block of input plus the current line.
class LineReader {
 public:
  static constexpr std::size_t kDefaultMaxBytes = std::size_t{64} << 20;
  LineReader(std::istream& in, std::string name, std::size_t max_bytes = kDefaultMaxBytes)
      : in_(&in), name_(std::move(name)), max_bytes_(max_bytes), buf_(std::size_t{1} << 16) {}
  LineReader(int fd, std::string name, std::size_t max_bytes = kDefaultMaxBytes)
      : fd_(fd), name_(std::move(name)), max_bytes_(max_bytes), buf_(std::size_t{1} << 16) {}

  /// The next line without its line break; false at the end of the input.
  bool next(std::string& line) {
    line.clear();
    bool any = false;
    for (;;) {
      const int c = get();
      if (c < 0) {
        if (any) ++lines_;
        return any;
      }
      const bool after_cr = after_cr_;
      after_cr_ = false;
      if (c == '\n' && after_cr && !any) {  // the LF of a CRLF
        ++breaks_;
        continue;
      }
      if (!any) breaks_before_line_ = breaks_;
      if (c == '\n' || c == '\r') {
        after_cr_ = c == '\r';
        ++breaks_;
        ++lines_;
        return true;
      }
      any = true;
      line.push_back(static_cast<char>(c));
      GENNER_CHECK(line.size() <= max_bytes_, name_, ":", lines_ + 1, ": expected lines of at most ", max_bytes_,
                   " bytes, found a longer one (is the input a text file?)");
    }
  }
  /// Whether next() can start without waiting: input is buffered, the end was reached, or (reading
  /// a descriptor) the descriptor has input now. A stream is always ready.
  [[nodiscard]] bool ready() {
    if (pos_ < end_ || eof_ || fd_ < 0) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  /// Lines returned so far.
  [[nodiscard]] std::size_t lines() const { return lines_; }
  /// Line-break characters (CR and LF, each counted) before the line last returned.
  [[nodiscard]] std::size_t breaks_before_line() const { return breaks_before_line_; }

 private:
  int get() {
    if (pos_ == end_ && !refill()) return -1;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  bool refill() {
    if (eof_) return false;
    pos_ = end_ = 0;
    if (fd_ >= 0) {
      for (;;) {
        const auto n = ::read(fd_, buf_.data(), buf_.size());
        if (n < 0 && errno == EINTR) continue;
        GENNER_CHECK(n >= 0, name_, ": read error after line ", lines_, " (", std::strerror(errno), ")");
        end_ = static_cast<std::size_t>(n);
        break;
      }
    } else {
      end_ = static_cast<std::size_t>(in_->rdbuf()->sgetn(buf_.data(), static_cast<std::streamsize>(buf_.size())));
      GENNER_CHECK(!in_->bad(), name_, ": read error after line ", lines_);
    }
    eof_ = end_ == 0;
    return !eof_;
  }

  std::istream* in_ = nullptr;
  int fd_ = -1;
  std::string name_;
  std::size_t max_bytes_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  std::size_t lines_ = 0;
  std::size_t breaks_ = 0;
  std::size_t breaks_before_line_ = 0;
  bool after_cr_ = false;
};

/// Reads a whole file into lines (see text_lines); throws when missing or empty.
inline std::vector<std::string> read_lines(const std::filesystem::path& file, const char* who) {
  return text_lines(read_text(file, who), file, who);
}

/// Splits on any of `seps`, skipping empty fields.
inline std::vector<std::string_view> split_fields(std::string_view line, std::string_view seps) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && seps.find(line[i]) != std::string_view::npos) ++i;
    std::size_t j = i;
    while (j < line.size() && seps.find(line[j]) == std::string_view::npos) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

/// Parses a non-negative decimal integer; false when `s` is not one.
inline bool parse_int(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

inline std::string where(const std::filesystem::path& file, std::size_t line) {
  return file.string() + ":" + std::to_string(line);
}

}  // namespace genner::data::detail
