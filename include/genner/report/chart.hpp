// genner/report/chart.hpp: training-curve images — an RGB canvas with lines and a built-in 5x7
// bitmap font, written as PNG (chunks here; deflate and CRC-32 by zlib), and
// plot_training_curves(): loss (left axis) and dev F1 (right axis) over steps.
// train::PlotCallback (train/plot.hpp) draws a Trainer's curve.png with it.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include <genner/core/error.hpp>
#include <genner/io/atomic_file.hpp>

namespace genner::report {


struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

namespace detail {

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column. Lower case draws as upper case.
inline const std::array<uint8_t, 7>* glyph(char c) {
  struct Entry {
    char c;
    std::array<uint8_t, 7> rows;
  };
  static const Entry font[] = {
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
      {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
      {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
      {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
      {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
      {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
      {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
      {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
      {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
      {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
      {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
      {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
      {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
      {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
      {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
      {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
  };
  const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& e : font)
    if (e.c == u) return &e.rows;
  return nullptr;
}

inline void put_be32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFF));
}

inline void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  const auto crc = ::crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  put_be32(out, static_cast<uint32_t>(crc));
}

}  // namespace detail

/// An RGB canvas with the few drawing operations a chart needs.
class Image {
 public:
  Image(int width, int height, Rgb background = {255, 255, 255}) : w_(width), h_(height) {
    GENNER_CHECK(width > 0 && height > 0 && width <= 16384 && height <= 16384,
                 "Image: expected a size within 1..16384 pixels, found ", width, "x", height);
    pixels_.assign(std::size_t(width) * std::size_t(height), background);
  }
  [[nodiscard]] int width() const { return w_; }
  [[nodiscard]] int height() const { return h_; }
  [[nodiscard]] Rgb at(int x, int y) const { return pixels_[std::size_t(y) * std::size_t(w_) + std::size_t(x)]; }
  void set(int x, int y, Rgb c) {
    if (x >= 0 && y >= 0 && x < w_ && y < h_) pixels_[std::size_t(y) * std::size_t(w_) + std::size_t(x)] = c;
  }
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c) {
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y)
      for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) set(x, y, c);
  }
  /// Bresenham line, `thickness` pixels wide.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      fill_rect(x0 - (thickness - 1) / 2, y0 - (thickness - 1) / 2, x0 + thickness / 2, y0 + thickness / 2, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  /// Text in the 5x7 font, `scale` pixels per font dot; returns the width drawn.
  int text(int x, int y, const std::string& s, Rgb c, int scale = 1) {
    int cx = x;
    for (char ch : s) {
      if (const auto* g = detail::glyph(ch))
        for (int row = 0; row < 7; ++row)
          for (int col = 0; col < 5; ++col)
            if ((*g)[std::size_t(row)] & (0x10 >> col))
              fill_rect(cx + col * scale, y + row * scale, cx + col * scale + scale - 1, y + row * scale + scale - 1,
                        c);
      cx += 6 * scale;
    }
    return cx - x;
  }
  [[nodiscard]] static int text_width(const std::string& s, int scale = 1) { return int(s.size()) * 6 * scale - scale; }

  /// PNG bytes: 8-bit RGB, filter 0 on every row, one zlib (deflate) stream.
  [[nodiscard]] std::string encode_png() const {
    std::vector<uint8_t> raw;
    raw.reserve(std::size_t(h_) * (1 + 3 * std::size_t(w_)));
    for (int y = 0; y < h_; ++y) {
      raw.push_back(0);
      for (int x = 0; x < w_; ++x) {
        const Rgb p = at(x, y);
        raw.insert(raw.end(), {p.r, p.g, p.b});
      }
    }
    // zlib's deflate (Debian zlib1g): a plot is mostly background, which compresses ~50-fold.
    uLongf size = ::compressBound(static_cast<uLong>(raw.size()));
    std::string z(size, '\0');
    const int rc = ::compress2(reinterpret_cast<Bytef*>(z.data()), &size, raw.data(), static_cast<uLong>(raw.size()),
                               Z_BEST_COMPRESSION);
    GENNER_CHECK(rc == Z_OK, "encode_png: zlib's compress2 failed with code ", rc);
    z.resize(size);
    std::string png = "\x89PNG\r\n\x1a\n";
    std::string ihdr;
    detail::put_be32(ihdr, uint32_t(w_));
    detail::put_be32(ihdr, uint32_t(h_));
    ihdr += std::string{char(8), char(2), char(0), char(0), char(0)};  // 8-bit, RGB, deflate, filter 0, no interlace
    detail::put_chunk(png, "IHDR", ihdr);
    detail::put_chunk(png, "IDAT", z);
    detail::put_chunk(png, "IEND", "");
    return png;
  }
  void write_png(const std::filesystem::path& path) const { io::write_text_atomically(path, encode_png()); }

 private:
  int w_, h_;
  std::vector<Rgb> pixels_;
};

/// A series of (step, value) points.
struct Series {
  std::vector<double> steps;
  std::vector<double> values;
};

namespace detail {

/// "Nice" tick spacing (1, 2 or 5 times a power of ten) for about `target` ticks over [lo, hi].
inline double nice_step(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(1, target);
  if (!(raw > 0) || !std::isfinite(raw)) return 1.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

inline std::string tick_label(double v, double step) {
  char buf[32];
  if (std::abs(v) < step * 1e-6) v = 0;
  if (std::abs(v) >= 1e5 || (std::abs(v) < 1e-3 && v != 0))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else if (step >= 1)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", std::min(6, int(std::ceil(-std::log10(step)))), v);
  return buf;
}

inline std::pair<double, double> padded_range(const std::vector<double>& v, bool from_zero) {
  double lo = from_zero ? 0.0 : 1e300, hi = -1e300;
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  if (hi < lo) return {0, 1};
  if (hi == lo) hi = lo + 1;
  return {lo, hi};
}

/// Where a training-curve chart draws: the plot rectangle in pixels, and the step axis (x), the loss
/// axis (left) and the F1 axis (right), each a range with its tick spacing.
struct ChartFrame {
  int left, right, top, bottom;
  double x_lo, x_hi, xs;
  double l_lo, l_hi, ls;
  double f_lo, f_hi, fs;

  /// The column of step `x`.
  [[nodiscard]] int px(double x) const { return left + int(std::lround((x - x_lo) / (x_hi - x_lo) * (right - left))); }
  /// The row of value `v` on an axis from `lo` to `hi`.
  [[nodiscard]] int py(double v, double lo, double hi) const {
    return bottom - int(std::lround((v - lo) / (hi - lo) * (bottom - top)));
  }
};

/// The frame of a `width` x `height` chart of `loss` and `f1`: ranges from zero with "nice" ticks,
/// each top rounded up to a tick and the loss axis's bottom down to one.
inline ChartFrame chart_frame(const Series& loss, const Series& f1, int width, int height) {
  const int left = 78, right = width - 78, top = 44, bottom = height - 56;
  std::vector<double> all_steps = loss.steps;
  all_steps.insert(all_steps.end(), f1.steps.begin(), f1.steps.end());
  auto [x_lo, x_hi] = padded_range(all_steps, true);
  auto [l_lo, l_hi] = padded_range(loss.values, true);
  auto [f_lo, f_hi] = padded_range(f1.values, true);
  const double xs = nice_step(x_lo, x_hi, 8), ls = nice_step(l_lo, l_hi, 6), fs = nice_step(f_lo, f_hi, 6);
  x_hi = std::ceil(x_hi / xs) * xs;
  l_hi = std::ceil(l_hi / ls) * ls;
  f_hi = std::ceil(f_hi / fs) * fs;
  l_lo = std::floor(l_lo / ls) * ls;
  return {left, right, top, bottom, x_lo, x_hi, xs, l_lo, l_hi, ls, f_lo, f_hi, fs};
}

/// Grid and ticks: steps below the plot, loss on the left, F1 on the right; then the plot's border.
inline void draw_grid_and_ticks(Image& img, const ChartFrame& c, Rgb black, Rgb grid, Rgb blue, Rgb orange) {
  for (double x = c.x_lo; x <= c.x_hi + c.xs * 1e-9; x += c.xs) {
    const int X = c.px(x);
    img.line(X, c.top, X, c.bottom, grid);
    img.line(X, c.bottom, X, c.bottom + 4, black);
    const auto s = tick_label(x, c.xs);
    img.text(X - Image::text_width(s) / 2, c.bottom + 8, s, black);
  }
  for (double v = c.l_lo; v <= c.l_hi + c.ls * 1e-9; v += c.ls) {
    const int Y = c.py(v, c.l_lo, c.l_hi);
    img.line(c.left, Y, c.right, Y, grid);
    img.line(c.left - 4, Y, c.left, Y, blue);
    const auto s = tick_label(v, c.ls);
    img.text(c.left - 8 - Image::text_width(s), Y - 3, s, blue);
  }
  for (double v = c.f_lo; v <= c.f_hi + c.fs * 1e-9; v += c.fs) {
    const int Y = c.py(v, c.f_lo, c.f_hi);
    img.line(c.right, Y, c.right + 4, Y, orange);
    img.text(c.right + 8, Y - 3, tick_label(v, c.fs), orange);
  }
  img.line(c.left, c.top, c.left, c.bottom, black);
  img.line(c.right, c.top, c.right, c.bottom, black);
  img.line(c.left, c.bottom, c.right, c.bottom, black);
  img.line(c.left, c.top, c.right, c.top, black);
}

/// The loss curve (blue) and the F1 curve (orange, a marker on each point).
inline void draw_curves(Image& img, const ChartFrame& c, const Series& loss, const Series& f1, Rgb blue, Rgb orange) {
  for (std::size_t i = 1; i < loss.steps.size(); ++i)
    img.line(c.px(loss.steps[i - 1]), c.py(loss.values[i - 1], c.l_lo, c.l_hi), c.px(loss.steps[i]),
             c.py(loss.values[i], c.l_lo, c.l_hi), blue, 2);
  for (std::size_t i = 0; i < f1.steps.size(); ++i) {
    const int X = c.px(f1.steps[i]), Y = c.py(f1.values[i], c.f_lo, c.f_hi);
    if (i > 0) img.line(c.px(f1.steps[i - 1]), c.py(f1.values[i - 1], c.f_lo, c.f_hi), X, Y, orange, 2);
    img.fill_rect(X - 3, Y - 3, X + 3, Y + 3, orange);
  }
}

/// The legend, in the plot corner the curves cross least.
inline void draw_legend(Image& img, const ChartFrame& c, Rgb black, Rgb blue, Rgb orange) {
  const int left = c.left, right = c.right, top = c.top, bottom = c.bottom;
  const int box_w = 102, box_h = 42;
  int lx = right - 110, ly = top + 10;
  int best = -1;
  for (const auto& [cx, cy] : {std::pair{right - 110, top + 10}, std::pair{left + 16, top + 10},
                               std::pair{right - 110, bottom - box_h - 2}, std::pair{left + 16, bottom - box_h - 2}}) {
    int ink = 0;
    for (int y = cy - 8; y <= cy - 8 + box_h; ++y)
      for (int x = cx - 8; x <= cx - 8 + box_w; ++x) ink += img.at(x, y) == blue || img.at(x, y) == orange;
    if (best < 0 || ink < best) best = ink, lx = cx, ly = cy;
  }
  img.fill_rect(lx - 8, ly - 8, lx - 8 + box_w, ly - 8 + box_h, {255, 255, 255});
  for (int y : {ly - 8, ly - 8 + box_h}) img.line(lx - 8, y, lx - 8 + box_w, y, black);
  for (int x : {lx - 8, lx - 8 + box_w}) img.line(x, ly - 8, x, ly - 8 + box_h, black);
  img.line(lx, ly + 3, lx + 22, ly + 3, blue, 2);
  img.text(lx + 30, ly, "loss", black);
  img.line(lx, ly + 21, lx + 22, ly + 21, orange, 2);
  img.fill_rect(lx + 8, ly + 18, lx + 14, ly + 24, orange);
  img.text(lx + 30, ly + 18, "dev F1", black);
}

}  // namespace detail

/// Draws loss (left axis, blue) and dev F1 (right axis, orange, with markers) against steps, with
/// ticks, axis titles, a legend and a title. Either series may be empty.
[[nodiscard]] inline Image plot_training_curves(const Series& loss, const Series& f1,
                                                const std::string& title = "training curves", int width = 800,
                                                int height = 480) {
  GENNER_CHECK(loss.steps.size() == loss.values.size() && f1.steps.size() == f1.values.size(),
               "plot_training_curves: expected as many steps as values, found ", loss.steps.size(), "/",
               loss.values.size(), " (loss) and ", f1.steps.size(), "/", f1.values.size(), " (F1)");
  GENNER_CHECK(width >= 200 && height >= 150, "plot_training_curves: expected at least 200x150 pixels, found ", width,
               "x", height);
  const Rgb black{0, 0, 0}, grid{225, 225, 225}, blue{31, 119, 180}, orange{230, 110, 10};
  Image img(width, height);
  const auto frame = detail::chart_frame(loss, f1, width, height);
  const int left = frame.left, right = frame.right, top = frame.top;
  detail::draw_grid_and_ticks(img, frame, black, grid, blue, orange);
  detail::draw_curves(img, frame, loss, f1, blue, orange);

  // Titles and legend.
  img.text((width - Image::text_width(title, 2)) / 2, 12, title, black, 2);
  img.text((left + right - Image::text_width("step")) / 2, height - 20, "step", black);
  img.text(left - Image::text_width("loss") / 2, top - 14, "loss", blue);
  img.text(right - Image::text_width("dev F1") / 2, top - 14, "dev F1", orange);
  detail::draw_legend(img, frame, black, blue, orange);
  return img;
}

}  // namespace genner::report
