// genner/app/serve_options.hpp: the settings of the serve command's HTTP server (NerServer,
// genner/app/serve.hpp), apart from the server so that the option table can take its defaults.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/recognize/batcher.hpp>

namespace genner::app {

/// Settings of a NerServer (the serve command's options).
struct ServeOptions {
  std::string host = "127.0.0.1";  ///< loopback only: 127.0.0.1 or ::1
  int port = 8080;                 ///< 0: any free port (NerServer::port() tells which)
  recognize::BatcherOptions batching;
  std::size_t max_body_bytes = std::size_t{1} << 20;  ///< larger bodies: 413
  std::size_t max_texts = 64;                         ///< texts per request at most (more: 413)
  /// A text whose longest source (a sentence with --split_sentences, else the whole text) is over
  /// the Recognizer's max_source_pieces: refused with 413 (false), or decoded in windows like
  /// predict does (true).
  bool split_long_texts = false;
  std::size_t http_threads = 64;  ///< connections served at once (HTTP worker threads)
  /// Shown by GET /health (the run folder, precision, ...).
  nlohmann::json info = nlohmann::json::object();

  void check() const {
    GENNER_CHECK(host == "127.0.0.1" || host == "::1" || host == "localhost",
                 "serve listens on loopback only (127.0.0.1, ::1 or localhost), found the host '", host, "'");
    GENNER_CHECK(port >= 0 && port <= 65535, "--port: expected 0 (any free port) to 65535, found ", port);
    batching.check();
    GENNER_CHECK(max_body_bytes >= 2, "--max_body_bytes: expected at least 2, found ", max_body_bytes);
    GENNER_CHECK(max_texts >= 1, "--max_texts: expected at least 1, found ", max_texts);
    GENNER_CHECK(batching.max_queue >= max_texts, "--max_queue ", batching.max_queue,
                 " is below --max_texts ", max_texts, ": a request of max_texts texts could never be queued");
    GENNER_CHECK(http_threads >= 1, "--http_threads: expected at least 1, found ", http_threads);
  }
};

}  // namespace genner::app
