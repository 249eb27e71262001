// genner/report/progress.hpp: a cheap terminal progress bar for long loops (training, decoding,
// prediction): step/total, smoothed loss, tokens/s and ETA. Redrawn in place with '\r' on a
// terminal (at most every `min_interval` seconds); on a pipe or CI log it prints one plain line
// every `plain_every_percent` percent instead. update() may be called from several threads.
// train::ProgressCallback (train/progress.hpp) draws one for a Trainer.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>

#include <genner/core/error.hpp>

namespace genner::report {


struct ProgressOptions {
  std::string label = "train";
  std::ostream* out = &std::cerr;
  std::optional<bool> tty;        ///< unset: whether stderr is a terminal
  int plain_every_percent = 10;   ///< non-terminal: one line per this many percent
  double min_interval = 0.1;      ///< terminal: seconds between redraws
  int width = 24;                 ///< bar characters
  double loss_smoothing = 0.9;    ///< exponential moving average of the loss
  std::function<double()> clock;  ///< seconds; unset: steady_clock (tests inject one)
};

/// `v` with `digits` decimals, or "n/a" when it is not finite.
[[nodiscard]] inline std::string format_fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// Formats seconds as H:MM:SS or M:SS.
[[nodiscard]] inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

class ProgressBar {
 public:
  explicit ProgressBar(int64_t total, ProgressOptions options = {}) : total_(total), o_(std::move(options)) {
    GENNER_CHECK(total > 0, "ProgressBar: expected a positive total, found ", total);
    GENNER_CHECK(o_.plain_every_percent >= 1 && o_.plain_every_percent <= 100,
                 "ProgressBar: expected plain_every_percent in [1, 100], found ", o_.plain_every_percent);
    if (!o_.clock) {
      o_.clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      };
    }
    tty_ = o_.tty.value_or(::isatty(STDERR_FILENO) == 1);
    start_ = o_.clock();
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Records that `step` of total is done, with this step's loss and tokens processed.
  void update(int64_t step, double loss, int64_t tokens = 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    step_ = step;
    tokens_ += tokens;
    if (std::isfinite(loss)) loss_ = have_loss_ ? o_.loss_smoothing * loss_ + (1 - o_.loss_smoothing) * loss : loss;
    have_loss_ = have_loss_ || std::isfinite(loss);
    const double now = o_.clock();
    if (tty_) {
      if (now - last_draw_ < o_.min_interval && step < total_) return;
      last_draw_ = now;
      *o_.out << '\r' << render(now) << "\x1b[K" << std::flush;  // clear what a longer line left
    } else {
      const int64_t bucket = step * 100 / total_ / o_.plain_every_percent;
      if (bucket <= last_bucket_) return;
      last_bucket_ = bucket;
      *o_.out << render(now) << '\n' << std::flush;
    }
  }

  /// Ends the bar (a newline on a terminal).
  void finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (tty_) *o_.out << '\r' << render(o_.clock()) << "\x1b[K\n" << std::flush;
  }
  ~ProgressBar() {
    try {
      finish();
    } catch (...) {
    }
  }

  /// The current line, without drawing it (tests, logs).
  [[nodiscard]] std::string line() {
    std::lock_guard<std::mutex> lock(mutex_);
    return render(o_.clock());
  }

 private:
  std::string render(double now) const {
    const double elapsed = now - start_;
    const double frac = std::min(1.0, double(step_) / double(total_));
    std::string out = o_.label + " ";
    if (tty_) {
      const int filled = static_cast<int>(frac * o_.width);
      out += '[' + std::string(filled, '#') + std::string(o_.width - filled, '.') + "] ";
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "%lld/%lld (%3d%%)", (long long)step_, (long long)total_, int(frac * 100));
    out += buf;
    if (have_loss_) {
      std::snprintf(buf, sizeof buf, " loss %.4f", loss_);
      out += buf;
    }
    if (tokens_ > 0 && elapsed > 0) {
      std::snprintf(buf, sizeof buf, " %.0f tok/s", double(tokens_) / elapsed);
      out += buf;
    }
    const double eta = step_ > 0 ? elapsed / double(step_) * double(total_ - step_) : NAN;
    out += " elapsed " + format_duration(elapsed) + " eta " + format_duration(eta);
    return out;
  }

  int64_t total_;
  ProgressOptions o_;
  bool tty_ = false;
  std::mutex mutex_;
  double start_ = 0;
  double last_draw_ = -1e300;
  int64_t last_bucket_ = 0;
  int64_t step_ = 0;
  int64_t tokens_ = 0;
  double loss_ = 0;
  bool have_loss_ = false;
  bool finished_ = false;
};

}  // namespace genner::report
