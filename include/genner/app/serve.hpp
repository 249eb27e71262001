// genner/app/serve.hpp: the serve command's HTTP server — POST /v1/recognize (JSON in, predict's
// records out), GET /health and GET /metrics on loopback, over cpp-httplib — with every request
// decoded through one recognize::Batcher (one model in memory, dynamic batching), limits that
// refuse with a JSON error and a status code, and graceful shutdown on SIGINT / SIGTERM.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/app/serve_options.hpp>
#include <genner/core/error.hpp>
#include <genner/recognize/batcher.hpp>
#include <genner/recognize/predict.hpp>
#include <genner/recognize/recognizer.hpp>
#include <genner/text/pretokenize.hpp>

namespace genner::app {

/// A reply of the recognize endpoint, before it meets a socket.
struct Reply {
  int status = 200;
  nlohmann::json body;
  double retry_after_s = 0;  ///< 503: the Retry-After header (seconds)
};

[[nodiscard]] inline Reply error_reply(int status, std::string message) {
  return {status, {{"error", std::move(message)}}, 0};
}

/// The recognition server: one Recognizer (which must outlive it) behind one Batcher and an HTTP
/// listener on loopback. start() listens, stop() begins a graceful shutdown (new requests get 503,
/// those in flight are answered), wait() returns once every connection is closed.
class NerServer {
 public:
  NerServer(const recognize::Recognizer& recognizer, ServeOptions options)
      : recognizer_(recognizer),
        options_((options.check(), std::move(options))),
        batcher_(recognizer, options_.batching),
        started_(std::chrono::steady_clock::now()) {
    routes();
  }
  NerServer(const NerServer&) = delete;
  NerServer& operator=(const NerServer&) = delete;
  ~NerServer() {
    stop();
    wait();
  }

  [[nodiscard]] const ServeOptions& options() const { return options_; }

  /// Binds the port and starts listening on a thread of its own; returns the port.
  int start() {
    GENNER_CHECK(!listener_.joinable(), "NerServer: already started");
    const int port = options_.port == 0 ? http_.bind_to_any_port(options_.host)
                                        : (http_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    GENNER_CHECK(port > 0, "--port ", options_.port, ": cannot listen on ", options_.host, ":", options_.port,
                 " (is the port in use, or below 1024 without the right to bind it?)");
    port_ = port;
    listener_ = std::thread([this] { listened_ = http_.listen_after_bind(); });
    // stop() only reaches a listener that is running.
    for (int i = 0; i < 10000 && !http_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    GENNER_CHECK(http_.is_running(), "serve: the listener on port ", port, " did not start");
    return port;
  }

  [[nodiscard]] int port() const { return port_; }

  /// Graceful shutdown, first step: refuse new requests (503), close the listening socket. Requests
  /// in flight are still decoded and answered. Thread-safe and idempotent.
  void stop() {
    stopping_ = true;
    http_.stop();
  }

  /// Waits for the listener to end (after stop()), then for the batcher to answer what it holds.
  void wait() {
    std::lock_guard lock(wait_mutex_);
    if (listener_.joinable()) listener_.join();
    batcher_.stop();
  }

  [[nodiscard]] bool stopping() const { return stopping_; }

  /// GET /metrics: responses by status, the batcher's counters, queue, batch-size histogram and
  /// latency percentiles, and the limits in force.
  [[nodiscard]] nlohmann::json metrics() const {
    auto j = batcher_.stats().to_json();
    nlohmann::json statuses = nlohmann::json::object();
    {
      std::lock_guard lock(status_mutex_);
      for (const auto& [status, count] : statuses_) statuses[std::to_string(status)] = count;
    }
    j["responses"] = std::move(statuses);
    j["uptime_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    j["limits"] = {{"max_batch", options_.batching.max_batch},
                   {"max_wait_ms", static_cast<double>(options_.batching.max_wait.count()) / 1000.0},
                   {"max_queue", options_.batching.max_queue},
                   {"timeout_ms", options_.batching.timeout.count()},
                   {"max_texts", options_.max_texts},
                   {"max_body_bytes", options_.max_body_bytes},
                   {"max_source_pieces", recognizer_.options().max_source_pieces},
                   {"long_texts", options_.split_long_texts ? "split" : "refuse"},
                   {"http_threads", options_.http_threads}};
    return j;
  }

  /// GET /health.
  [[nodiscard]] Reply health() const {
    nlohmann::json j = options_.info;
    j["status"] = stopping_ ? "stopping" : "ok";
    j["flat"] = recognizer_.flat();
    j["types"] = recognizer_.labels().types;
    j["max_source_pieces"] = recognizer_.options().max_source_pieces;
    return {stopping_ ? 503 : 200, std::move(j), 0};
  }

  /// POST /v1/recognize with `body`: {"text": "..."} answers predict's record of the text,
  /// {"texts": ["...", ...]} answers {"results": [record, ...]}; refusals are {"error": "..."}.
  /// `content_type` empty: not given. Blocks until the batch holding the texts is decoded.
  [[nodiscard]] Reply recognize(const std::string& body, std::string_view content_type = "application/json") {
    if (stopping_) return error_reply(503, "the server is shutting down");
    if (!content_type.empty()) {
      const auto media = content_type.substr(0, content_type.find(';'));
      if (media != "application/json")
        return error_reply(415, "Content-Type: expected application/json, found '" + std::string(content_type) + "'");
    }
    if (body.size() > options_.max_body_bytes)
      return error_reply(413, "the request body holds " + std::to_string(body.size()) + " bytes, over the limit of " +
                                  std::to_string(options_.max_body_bytes) + " bytes (--max_body_bytes)");
    Request request;
    if (auto refused = read_request(body, request)) return std::move(*refused);
    if (auto refused = check_texts(request)) return std::move(*refused);
    return answer(request);
  }

 private:
  /// The texts of a request, and whether it gave one ("text") or a list ("texts").
  struct Request {
    std::vector<std::string> texts;
    bool one = false;
  };

  /// Reads the JSON body into `out`, or the refusal of a malformed one.
  [[nodiscard]] std::optional<Reply> read_request(const std::string& body, Request& out) const {
    nlohmann::json request;
    try {
      request = nlohmann::json::parse(body);
    } catch (const nlohmann::json::parse_error& e) {
      return error_reply(400, std::string("malformed JSON: ") + e.what() +
                                  R"(; expected {"text": "..."} or {"texts": ["...", ...]})");
    }
    if (!request.is_object())
      return error_reply(400, std::string("expected a JSON object {\"text\": ...} or {\"texts\": [...]}, found ") +
                                  request.type_name());
    for (const auto& [key, value] : request.items())
      if (key != "text" && key != "texts")
        return error_reply(400, "unknown key '" + key + "'; expected \"text\" or \"texts\"");
    out.one = request.contains("text");
    if (out.one == request.contains("texts"))
      return error_reply(400, out.one ? "give \"text\" or \"texts\", not both" : "missing \"text\" or \"texts\"");
    if (out.one) {
      if (!request["text"].is_string())
        return error_reply(400, std::string("\"text\": expected a string, found ") + request["text"].type_name());
      out.texts.push_back(request["text"].get<std::string>());
      return std::nullopt;
    }
    const auto& list = request["texts"];
    if (!list.is_array())
      return error_reply(400, std::string("\"texts\": expected an array of strings, found ") + list.type_name());
    if (list.size() > options_.max_texts)
      return error_reply(413, "\"texts\" holds " + std::to_string(list.size()) + " texts, over the limit of " +
                                  std::to_string(options_.max_texts) + " per request (--max_texts)");
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string())
        return error_reply(400, "\"texts\"[" + std::to_string(i) + "]: expected a string, found " + list[i].type_name());
      out.texts.push_back(list[i].get<std::string>());
    }
    return std::nullopt;
  }

  /// The refusal of a text that is not UTF-8 or (unless long texts are split) over the length guard.
  [[nodiscard]] std::optional<Reply> check_texts(const Request& request) const {
    const auto limit = static_cast<std::size_t>(recognizer_.options().max_source_pieces);
    for (std::size_t i = 0; i < request.texts.size(); ++i) {
      const std::string where = request.one ? std::string("\"text\"") : "\"texts\"[" + std::to_string(i) + "]";
      try {
        text::check_utf8(request.texts[i], where);
        if (options_.split_long_texts) continue;
        const auto pieces = recognizer_.longest_source_pieces(request.texts[i], where);
        if (pieces > limit)
          return error_reply(413, where + ": " +
                                      (recognizer_.options().tokenize.split_sentences ? "a sentence of " : "a text of ") +
                                      std::to_string(pieces) + " pieces is over the model's limit of " +
                                      std::to_string(limit) +
                                      " (--max_source_pieces); send shorter texts, or serve with --long_texts split "
                                      "to decode long ones in windows");
      } catch (const Error& e) {
        return error_reply(400, e.what());
      }
    }
    return std::nullopt;
  }

  /// Decodes the request's texts in the batcher and answers their records, or the batcher's refusal.
  [[nodiscard]] Reply answer(const Request& request) {
    const auto& texts = request.texts;
    auto submitted = batcher_.submit(texts);
    switch (submitted.outcome) {
      case recognize::Outcome::ok: break;
      case recognize::Outcome::queue_full: {
        auto r = error_reply(503, "the queue is full (" + std::to_string(options_.batching.max_queue) +
                                      " texts, --max_queue); retry later");
        r.retry_after_s = submitted.retry_after_s;
        return r;
      }
      case recognize::Outcome::stopping: return error_reply(503, "the server is shutting down");
      case recognize::Outcome::timed_out:
        return error_reply(504, "not answered within " + std::to_string(options_.batching.timeout.count()) +
                                    " ms (--timeout_ms)");
      case recognize::Outcome::failed: return error_reply(500, "decoding failed: " + submitted.error);
    }
    const auto max_pieces = recognizer_.options().max_source_pieces;
    if (request.one) return {200, recognize::to_json(submitted.results.front(), texts.front(), max_pieces), 0};
    nlohmann::json results = nlohmann::json::array();
    for (std::size_t i = 0; i < texts.size(); ++i)
      results.push_back(recognize::to_json(submitted.results[i], texts[i], max_pieces));
    return {200, {{"results", std::move(results)}}, 0};
  }

  static void send(httplib::Response& res, const Reply& reply) {
    res.status = reply.status;
    if (reply.retry_after_s > 0)
      res.set_header("Retry-After", std::to_string(static_cast<long long>(std::ceil(reply.retry_after_s))));
    // Invalid UTF-8 cannot reach a reply (requests are checked), but never throw while answering.
    res.set_content(reply.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                    "application/json");
  }

  static std::string reason(int status) {
    switch (status) {
      case 400: return "malformed HTTP request";
      case 404: return "not found";
      case 405: return "method not allowed";
      case 413: return "request too large";
      case 414: return "request URI too long";
      case 416: return "range not satisfiable";
      case 431: return "request header fields too large";
      case 500: return "internal server error";
      case 503: return "service unavailable";
      default: return "HTTP status " + std::to_string(status);
    }
  }

  void routes() {
    http_.new_task_queue = [n = options_.http_threads] { return new httplib::ThreadPool(n); };
    // The limit is enforced while the body is read, before it is held in memory.
    http_.set_payload_max_length(options_.max_body_bytes);
    http_.set_keep_alive_max_count(1000);
    http_.set_keep_alive_timeout(2);  // an idle connection delays shutdown at most this long
    http_.set_tcp_nodelay(true);
    http_.Post("/v1/recognize", [this](const httplib::Request& req, httplib::Response& res) {
      send(res, recognize(req.body, req.has_header("Content-Type") ? req.get_header_value("Content-Type") : ""));
    });
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) { send(res, health()); });
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { send(res, {200, metrics(), 0}); });
    auto only = [](const char* allowed) {
      return [allowed](const httplib::Request& req, httplib::Response& res) {
        res.set_header("Allow", allowed);
        send(res, error_reply(405, req.method + " " + req.path + ": method not allowed; expected " + allowed));
      };
    };
    http_.Get("/v1/recognize", only("POST"));
    http_.Put("/v1/recognize", only("POST"));
    http_.Delete("/v1/recognize", only("POST"));
    http_.Post("/health", only("GET"));
    http_.Post("/metrics", only("GET"));
    // Refusals httplib makes itself (unknown path, oversized body, malformed request) get a JSON body too.
    http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                        httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours already
      std::string message = reason(res.status);
      if (res.status == 404)
        message = req.method + " " + req.path + ": no such endpoint; expected POST /v1/recognize, GET /health or GET "
                  "/metrics";
      else if (res.status == 413)
        message = "the request body is over the limit of " + std::to_string(options_.max_body_bytes) +
                  " bytes (--max_body_bytes)";
      send(res, error_reply(res.status, message));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string message = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
      }
      send(res, error_reply(500, "internal error: " + message));
    });
    http_.set_logger([this](const httplib::Request&, const httplib::Response& res) {
      std::lock_guard lock(status_mutex_);
      ++statuses_[res.status];
    });
  }

  const recognize::Recognizer& recognizer_;
  ServeOptions options_;
  recognize::Batcher batcher_;
  std::chrono::steady_clock::time_point started_;
  httplib::Server http_;
  std::thread listener_;
  std::atomic<bool> listened_{false};
  std::atomic<bool> stopping_{false};
  int port_ = 0;
  std::mutex wait_mutex_;
  mutable std::mutex status_mutex_;
  std::map<int, std::size_t> statuses_;
};

namespace detail {
inline std::atomic<int> serve_signal_fd{-1};
inline void on_serve_signal(int sig) {
  const int fd = serve_signal_fd.load();
  const char c = static_cast<char>(sig);
  if (fd >= 0) (void)!::write(fd, &c, 1);
}
}  // namespace detail

/// Runs `server` (started) until SIGINT or SIGTERM, then shuts it down gracefully: in-flight requests
/// are answered, then the listener ends. Notes on `log`; returns the signal number.
inline int serve_until_signalled(NerServer& server, std::ostream& log) {
  int fds[2];
  GENNER_CHECK(::pipe(fds) == 0, "serve: cannot create a pipe for signal handling (errno ", errno, ")");
  detail::serve_signal_fd = fds[1];
  struct sigaction action = {}, old_int = {}, old_term = {};
  action.sa_handler = detail::on_serve_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  char sig = 0;
  while (::read(fds[0], &sig, 1) < 0 && errno == EINTR) {
  }
  log << "serve: " << (sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal")
      << " received; answering the requests in flight, then stopping\n";
  server.stop();
  server.wait();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  detail::serve_signal_fd = -1;
  ::close(fds[0]);
  ::close(fds[1]);
  return sig;
}

}  // namespace genner::app
