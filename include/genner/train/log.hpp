// genner/train/log.hpp: the run's metrics log — one JSON object per line (train loss, dev
// scores per evaluation), appended and flushed line by line so a killed run keeps every line it
// wrote and a resumed run continues the same file. plot.hpp draws curves from it. Optionally a
// CSV mirror (log.csv: fixed columns, one row per line) for spreadsheets, pandas.read_csv,
// gnuplot and experiment trackers' CSV importers. JsonlLogCallback writes a training run's log.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <unistd.h>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/io/atomic_file.hpp>
#include <genner/train/callbacks.hpp>

namespace genner::train {

class JsonlLog {
 public:
  /// The CSV mirror's columns: JSON keys, "dev.x" for x inside the line's "dev" object.
  static constexpr const char* kCsvColumns[] = {"step",    "epoch",         "kind",       "train_loss",
                                                "lr",      "dev.precision", "dev.recall", "dev.f1",
                                                "dev_seconds", "time"};

  /// Opens `path` for appending (creating folders); `truncate` starts a fresh file. With `csv`,
  /// every line is also a row of that CSV file, which is rebuilt from `path` when appending (so
  /// a resumed run's two files always agree).
  explicit JsonlLog(std::filesystem::path path, bool truncate = false, std::filesystem::path csv = {})
      : path_(std::move(path)), csv_path_(std::move(csv)) {
    if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
    out_.open(path_, truncate ? std::ios::trunc : std::ios::app);
    GENNER_CHECK(out_.good(), path_.string(), ": cannot open the metrics log for appending");
    if (csv_path_.empty()) return;
    std::string rows = csv_header();
    if (!truncate && std::filesystem::exists(path_))
      for (const auto& line : read(path_)) rows += csv_row(line);
    csv_.open(csv_path_, std::ios::trunc);
    csv_ << rows;
    csv_.flush();
    GENNER_CHECK(csv_.good(), csv_path_.string(), ": cannot write the CSV metrics log");
  }

  [[nodiscard]] static std::string csv_header() {
    std::string out;
    for (const char* c : kCsvColumns) out += (out.empty() ? "" : ",") + std::string(c);
    return out + "\n";
  }
  /// One CSV row of a log line: numbers as JSON writes them, text as is, absent keys empty.
  [[nodiscard]] static std::string csv_row(const nlohmann::json& line) {
    std::string out;
    bool first = true;
    for (const std::string c : kCsvColumns) {
      if (!first) out += ',';
      first = false;
      const auto dot = c.find('.');
      const nlohmann::json* v = nullptr;
      if (dot == std::string::npos) {
        if (line.contains(c)) v = &line[c];
      } else if (const auto outer = c.substr(0, dot); line.contains(outer) && line[outer].is_object() &&
                                                      line[outer].contains(c.substr(dot + 1))) {
        v = &line[outer][c.substr(dot + 1)];
      }
      if (!v || v->is_null()) continue;
      if (v->is_string()) {
        const auto text = v->get<std::string>();
        GENNER_CHECK(text.find_first_of(",\"\n") == std::string::npos, "metrics log: column '", c,
                     "' holds text CSV would have to quote: '", text, "'");
        out += text;
      } else if (v->is_number()) {
        out += v->dump();
      }
    }
    return out + "\n";
  }

  /// Appends one record (adding "time": seconds since the epoch when absent) and flushes.
  void write(nlohmann::json record) {
    GENNER_CHECK(record.is_object(), path_.string(), ": expected a JSON object per log line, found ",
                 record.type_name());
    if (!record.contains("time"))
      record["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string line = record.dump();
    std::lock_guard<std::mutex> lock(mutex_);
    out_ << line << '\n';
    out_.flush();
    GENNER_CHECK(out_.good(), path_.string(), ": write failed (disk full?)");
    if (csv_.is_open()) {
      csv_ << csv_row(record);
      csv_.flush();
      GENNER_CHECK(csv_.good(), csv_path_.string(), ": write failed (disk full?)");
    }
  }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  /// Drops the lines a killed run wrote after its last checkpoint (those with "step" above
  /// `step`) and a torn last line, so that the resumed run does not log them twice. The file is
  /// rewritten atomically; nothing happens when it does not exist.
  static void keep_until_step(const std::filesystem::path& path, int64_t step) {
    if (!std::filesystem::exists(path)) return;
    std::string kept;
    for (const auto& line : read(path))
      if (!line.contains("step") || !line["step"].is_number() || line["step"].get<int64_t>() <= step)
        kept += line.dump() + "\n";
    io::write_text_atomically(path, kept);
  }

  /// Reads every complete line back; a torn last line (killed mid-write) is skipped, any other
  /// bad line is an error naming its line number.
  [[nodiscard]] static std::vector<nlohmann::json> read(const std::filesystem::path& path) {
    std::ifstream in(path);
    GENNER_CHECK(in.good(), path.string(), ": metrics log not found");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> lines;
    std::istringstream split(text);
    for (std::string line; std::getline(split, line);) lines.push_back(line);
    const bool torn_tail = !text.empty() && text.back() != '\n';
    std::vector<nlohmann::json> out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      const std::string at = path.string() + ":" + std::to_string(i + 1);
      try {
        out.push_back(parse_json(lines[i], at, "a JSON object"));
      } catch (const Error&) {
        if (i + 1 == lines.size() && torn_tail) break;
        throw;
      }
    }
    return out;
  }

 private:
  std::filesystem::path path_, csv_path_;
  std::ofstream out_, csv_;
  std::mutex mutex_;
};

/// Writes a training run's log, <output_dir>/log.jsonl with its mirror log.csv: every evaluation's
/// line and, every `logging_steps` steps (0: never), a line {"kind": "train", step, epoch,
/// train_loss (mean since the previous such line), lr}. A resumed run keeps the lines up to its
/// checkpoint's step and continues the same files; a fresh run starts them anew.
class JsonlLogCallback : public TrainerCallback {
 public:
  explicit JsonlLogCallback(int64_t logging_steps = 0) : logging_steps_(logging_steps) {
    GENNER_CHECK(logging_steps >= 0, "JsonlLogCallback: expected logging_steps >= 0, found ", logging_steps);
  }
  void on_start(const TrainingStart& s) override {
    const auto path = s.output_dir / "log.jsonl";
    if (s.resumed) JsonlLog::keep_until_step(path, s.step);
    log_.emplace(path, /*truncate=*/!s.resumed, s.output_dir / "log.csv");
    steps_per_epoch_ = std::max<int64_t>(1, s.steps_per_epoch);
    loss_sum_ = 0.0;
    losses_ = 0;
  }
  void on_step(const TrainingStep& s) override {
    if (logging_steps_ == 0) return;
    loss_sum_ += s.loss;
    ++losses_;
    if (s.step % logging_steps_ != 0) return;
    log_->write({{"step", s.step},
                 {"epoch", double(s.step) / double(steps_per_epoch_)},
                 {"kind", "train"},
                 {"train_loss", loss_sum_ / double(losses_)},
                 {"lr", s.lr}});
    loss_sum_ = 0.0;
    losses_ = 0;
  }
  void on_evaluation(const TrainingEvaluation& e) override { log_->write(e.record); }
  [[nodiscard]] nlohmann::json describe() const override {
    return {{"name", "log"}, {"files", {"log.jsonl", "log.csv"}}, {"logging_steps", logging_steps_}};
  }

 private:
  int64_t logging_steps_;
  std::optional<JsonlLog> log_;
  int64_t steps_per_epoch_ = 1;
  double loss_sum_ = 0.0;  // training loss since the last "train" line
  int64_t losses_ = 0;
};

}  // namespace genner::train
