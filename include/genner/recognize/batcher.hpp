// genner/recognize/batcher.hpp: Batcher, dynamic batching of recognition requests — callers on any
// number of threads submit texts; one worker thread takes the queued requests in arrival order,
// up to a number of texts or a waiting-time bound, decodes them in one call and hands every caller
// its results — and BatcherStats, what it has done (the server's metrics). No sockets: the HTTP
// server (genner/app/serve.hpp) is one caller among others.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/recognize/recognizer.hpp>

namespace genner::recognize {

/// Settings of a Batcher.
struct BatcherOptions {
  /// Texts decoded together at most (1: every request alone, no batching). A request holding more
  /// texts than this is decoded on its own, never split.
  std::size_t max_batch = 32;
  /// How long the oldest queued request may wait for others to join its batch (the latency bound).
  std::chrono::microseconds max_wait{5000};
  /// Texts waiting at most; a request that would exceed it is refused (Outcome::queue_full).
  std::size_t max_queue = 1024;
  /// Time from submission to answer; a request still waiting then is taken out of the queue, one
  /// being decoded is answered Outcome::timed_out and its results are dropped.
  std::chrono::milliseconds timeout{30000};
  /// Latencies kept for the percentiles of BatcherStats (the most recent ones).
  std::size_t latency_window = 4096;

  void check() const {
    GENNER_CHECK(max_batch >= 1, "max_batch: expected at least 1, found ", max_batch);
    GENNER_CHECK(max_wait.count() >= 0, "max_wait: expected a duration of at least 0, found ", max_wait.count(),
                 " us");
    GENNER_CHECK(max_queue >= 1, "max_queue: expected at least 1, found ", max_queue);
    GENNER_CHECK(timeout.count() >= 1, "timeout: expected at least 1 ms, found ", timeout.count(), " ms");
    GENNER_CHECK(latency_window >= 1, "latency_window: expected at least 1, found ", latency_window);
  }
};

/// How a submitted request ended.
enum class Outcome {
  ok,          ///< decoded; Answer::results holds one Result per text
  queue_full,  ///< refused: the queue holds max_queue texts (Answer::retry_after_s says when to retry)
  stopping,    ///< refused: the batcher is shutting down
  timed_out,   ///< not answered within the timeout
  failed,      ///< decoding threw; Answer::error says what
};

[[nodiscard]] inline const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::queue_full: return "queue_full";
    case Outcome::stopping: return "stopping";
    case Outcome::timed_out: return "timed_out";
    case Outcome::failed: return "failed";
  }
  return "?";
}

/// The answer to one submitted request.
struct Answer {
  Outcome outcome = Outcome::ok;
  std::vector<Result> results;
  std::string error;
  double retry_after_s = 0;  ///< queue_full: the time the queue needs to drain at the recent throughput
  double latency_s = 0;      ///< submission to answer
};

/// What a Batcher has done since it started.
struct BatcherStats {
  std::size_t submitted = 0, ok = 0, queue_full = 0, stopping = 0, timed_out = 0, failed = 0;
  std::size_t texts = 0;    ///< texts decoded
  std::size_t batches = 0;  ///< decode calls
  std::map<std::size_t, std::size_t> batch_sizes;  ///< texts in a batch -> how many batches held that many
  std::size_t queued_requests = 0, queued_texts = 0;
  std::size_t decoding_texts = 0;  ///< texts of the batch being decoded now
  double decode_seconds = 0;       ///< time spent decoding
  /// Latency (submission to answer) of recent answered requests: percentiles in seconds.
  std::size_t latency_count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;

  [[nodiscard]] double mean_batch() const {
    return batches ? static_cast<double>(texts) / static_cast<double>(batches) : 0.0;
  }

  [[nodiscard]] nlohmann::json to_json() const {
    nlohmann::json hist = nlohmann::json::object();
    for (const auto& [size, count] : batch_sizes) hist[std::to_string(size)] = count;
    auto ms = [](double s) { return std::round(s * 1e6) / 1e3; };
    return {{"requests",
             {{"submitted", submitted},
              {"ok", ok},
              {"queue_full", queue_full},
              {"stopping", stopping},
              {"timed_out", timed_out},
              {"failed", failed}}},
            {"texts", texts},
            {"batches", batches},
            {"mean_batch", mean_batch()},
            {"batch_size_histogram", std::move(hist)},
            {"queue", {{"requests", queued_requests}, {"texts", queued_texts}, {"decoding_texts", decoding_texts}}},
            {"decode_seconds", decode_seconds},
            {"latency_ms",
             {{"count", latency_count}, {"p50", ms(p50)}, {"p90", ms(p90)}, {"p99", ms(p99)}, {"max", ms(max)}}}};
  }
};

/// Queues requests from many threads and decodes them in batches on one worker thread, which alone
/// calls the decode function (for a Recognizer: one model in memory, shared by every caller).
/// Batches take requests in arrival order, first come first served: a batch starts as soon as the
/// queue holds max_batch texts, or when its oldest request has waited max_wait; a request never
/// waits behind a later one, so none is starved.
class Batcher {
 public:
  /// Decodes texts: one Result per text, in order.
  using Decode = std::function<std::vector<Result>(std::span<const std::string_view>)>;

  Batcher(Decode decode, BatcherOptions options) : decode_(std::move(decode)), options_(options) {
    GENNER_CHECK(static_cast<bool>(decode_), "Batcher: expected a decode function, found none");
    options_.check();
    latencies_.reserve(options_.latency_window);
    worker_ = std::thread([this] { work(); });
  }

  /// Decodes with `recognizer`, which must outlive the Batcher.
  Batcher(const Recognizer& recognizer, BatcherOptions options)
      : Batcher([&recognizer](std::span<const std::string_view> texts) { return recognizer.predict(texts); },
                options) {}

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;
  ~Batcher() { stop(); }

  [[nodiscard]] const BatcherOptions& options() const { return options_; }

  /// Queues `texts` and waits for their results (at most the timeout). Thread-safe.
  Answer submit(std::vector<std::string> texts) {
    const auto t0 = Clock::now();
    auto job = std::make_shared<Job>();
    job->texts = std::move(texts);
    job->arrival = t0;
    const auto n = job->texts.size();
    std::unique_lock lock(mutex_);
    ++stats_.submitted;
    Answer answer;
    if (stopping_) {
      ++stats_.stopping;
      answer.outcome = Outcome::stopping;
      return answer;
    }
    if (n == 0) {
      ++stats_.ok;
      return answer;
    }
    if (stats_.queued_texts + n > options_.max_queue) {
      ++stats_.queue_full;
      answer.outcome = Outcome::queue_full;
      answer.retry_after_s = drain_seconds(stats_.queued_texts + stats_.decoding_texts);
      return answer;
    }
    queue_.push_back(job);
    ++stats_.queued_requests;
    stats_.queued_texts += n;
    work_cv_.notify_one();
    const bool answered = job->cv.wait_until(lock, t0 + options_.timeout, [&] { return job->done; });
    if (!answered) {
      if (!job->taken) {
        queue_.erase(std::find(queue_.begin(), queue_.end(), job));
        --stats_.queued_requests;
        stats_.queued_texts -= n;
        work_cv_.notify_one();  // the worker may be waiting on this request's age
      }
      job->abandoned = true;
      ++stats_.timed_out;
      answer.outcome = Outcome::timed_out;
      answer.latency_s = seconds_since(t0);
      return answer;
    }
    answer.latency_s = seconds_since(t0);
    if (!job->error.empty()) {
      ++stats_.failed;
      answer.outcome = Outcome::failed;
      answer.error = std::move(job->error);
      return answer;
    }
    ++stats_.ok;
    record_latency(answer.latency_s);
    answer.results = std::move(job->results);
    return answer;
  }

  /// Refuses new requests, decodes those already queued, answers them and ends the worker.
  /// Idempotent; the destructor calls it.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    std::lock_guard join_lock(join_mutex_);
    if (worker_.joinable()) worker_.join();
  }

  [[nodiscard]] bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  /// A snapshot of the counters, queue and latency percentiles. Thread-safe.
  [[nodiscard]] BatcherStats stats() const {
    std::vector<double> sorted;
    BatcherStats s;
    {
      std::lock_guard lock(mutex_);
      s = stats_;
      sorted = latencies_;
    }
    std::sort(sorted.begin(), sorted.end());
    s.latency_count = sorted.size();
    if (!sorted.empty()) {
      auto at = [&](double q) {
        const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))) - 1;
        return sorted[std::min(i, sorted.size() - 1)];
      };
      s.p50 = at(0.50);
      s.p90 = at(0.90);
      s.p99 = at(0.99);
      s.max = sorted.back();
    }
    return s;
  }

 private:
  using Clock = std::chrono::steady_clock;

  struct Job {
    std::vector<std::string> texts;
    Clock::time_point arrival;
    std::condition_variable cv;
    bool taken = false, done = false, abandoned = false;
    std::vector<Result> results;
    std::string error;
  };

  static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

  /// Seconds to decode `texts` at the recent throughput (at least 1, at most 60).
  [[nodiscard]] double drain_seconds(std::size_t texts) const {
    const double per_text = stats_.texts ? stats_.decode_seconds / static_cast<double>(stats_.texts) : 0.0;
    return std::clamp(std::ceil(per_text * static_cast<double>(texts)), 1.0, 60.0);
  }

  void record_latency(double s) {
    if (latencies_.size() < options_.latency_window)
      latencies_.push_back(s);
    else
      latencies_[next_latency_] = s;
    next_latency_ = (next_latency_ + 1) % options_.latency_window;
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      // Wait for the batch to fill, or for its oldest request to reach the latency bound.
      while (!queue_.empty() && !stopping_ && stats_.queued_texts < options_.max_batch) {
        const auto due = queue_.front()->arrival + options_.max_wait;
        if (Clock::now() >= due) break;
        work_cv_.wait_until(lock, due);
      }
      if (queue_.empty()) {
        if (stopping_) return;
        continue;
      }
      std::size_t texts = 0;
      const auto batch = take_batch(texts);
      lock.unlock();
      auto decoded = decode_batch(batch, texts);
      lock.lock();
      answer_batch(batch, texts, decoded);
    }
  }

  /// What one decode call gave: one Result per text, or the error it threw; and the time it took.
  struct Decoded {
    std::vector<Result> results;
    std::string error;
    double seconds = 0;
  };

  /// Takes the oldest queued requests, up to max_batch texts (the oldest request even when it holds
  /// more), off the queue; `texts` is set to the number of texts they hold. Called with mutex_ held and
  /// the queue not empty.
  std::vector<std::shared_ptr<Job>> take_batch(std::size_t& texts) {
    std::vector<std::shared_ptr<Job>> batch;
    texts = 0;
    do {
      auto job = std::move(queue_.front());
      queue_.pop_front();
      job->taken = true;
      texts += job->texts.size();
      batch.push_back(std::move(job));
    } while (!queue_.empty() && texts + queue_.front()->texts.size() <= options_.max_batch);
    stats_.queued_requests -= batch.size();
    stats_.queued_texts -= texts;
    stats_.decoding_texts = texts;
    return batch;
  }

  /// Decodes the `texts` texts of `batch` in one call of the decode function. Called without mutex_.
  Decoded decode_batch(const std::vector<std::shared_ptr<Job>>& batch, std::size_t texts) const {
    std::vector<std::string_view> views;
    views.reserve(texts);
    for (const auto& job : batch) views.insert(views.end(), job->texts.begin(), job->texts.end());
    Decoded d;
    const auto t0 = Clock::now();
    try {
      d.results = decode_(std::span<const std::string_view>(views));
      GENNER_CHECK(d.results.size() == views.size(), "Batcher: the decode function returned ", d.results.size(),
                   " results for ", views.size(), " texts");
    } catch (const c10::Error& e) {
      d.error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      d.error = e.what();
    } catch (...) {
      d.error = "unknown exception while decoding";
    }
    d.seconds = seconds_since(t0);
    return d;
  }

  /// Counts the decoded batch and hands each of its requests its results (or the error), waking
  /// their callers; abandoned requests get nothing. Called with mutex_ held.
  void answer_batch(const std::vector<std::shared_ptr<Job>>& batch, std::size_t texts, Decoded& decoded) {
    auto& results = decoded.results;
    const auto& error = decoded.error;
    stats_.decoding_texts = 0;
    ++stats_.batches;
    ++stats_.batch_sizes[texts];
    stats_.decode_seconds += decoded.seconds;
    if (error.empty()) stats_.texts += texts;
    std::size_t at = 0;
    for (const auto& job : batch) {
      const auto n = job->texts.size();
      if (!job->abandoned) {
        if (error.empty())
          job->results.assign(std::make_move_iterator(results.begin() + static_cast<std::ptrdiff_t>(at)),
                              std::make_move_iterator(results.begin() + static_cast<std::ptrdiff_t>(at + n)));
        else
          job->error = error;
      }
      at += n;
      job->done = true;
      job->cv.notify_all();
    }
  }

  Decode decode_;
  BatcherOptions options_;
  mutable std::mutex mutex_;
  std::mutex join_mutex_;
  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  BatcherStats stats_;
  std::vector<double> latencies_;
  std::size_t next_latency_ = 0;
  std::thread worker_;
};

}  // namespace genner::recognize
