// Serving throughput: a run folder's Recognizer behind the HTTP server (genner/app/serve.hpp) on
// loopback, driven by 1, 8 and 32 concurrent keep-alive clients, each sending one text per request
// as soon as its previous one is answered, with dynamic batching (--max_batch 32) and without it
// (--max_batch 1). Prints requests/s, client-side p50/p99 latency and the server's mean batch.
// Texts: sentences of genner's flat sample corpus (fixed seed), shared round-robin.
// Usage: bench_serve RUN_DIR [--requests N (512 per setting)] [--precision fp32|bf16|int8]
//                            [--max_wait_ms X (5)]
#include <genner/genner.hpp>
#include <genner/app/serve.hpp>
#include <genner/data/sample.hpp>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace gr = genner::recognize;

struct Figures {
  double requests_per_s = 0, p50_ms = 0, p99_ms = 0, mean_batch = 0;
  size_t failed = 0, retried = 0;
};

Figures drive(const gr::Recognizer& recognizer, const std::vector<std::string>& bodies, size_t max_batch,
              int clients, size_t requests, double max_wait_ms) {
  genner::app::ServeOptions o;
  o.port = 0;
  o.http_threads = 64;
  o.batching.max_batch = max_batch;
  o.batching.max_wait = std::chrono::microseconds(static_cast<long long>(max_wait_ms * 1000));
  o.batching.max_queue = 4096;
  o.batching.timeout = std::chrono::milliseconds(600000);
  genner::app::NerServer server(recognizer, o);
  const int port = server.start();
  std::atomic<size_t> next{0}, failed{0}, retried{0};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  const auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);  // else Nagle holds each body until the headers are acknowledged
      client.set_read_timeout(600, 0);
      for (size_t i; (i = next++) < requests;) {
        const auto s = std::chrono::steady_clock::now();
        auto res = client.Post("/v1/recognize", bodies[i % bodies.size()], "application/json");
        if (!res) {
          // The server closed the keep-alive connection as the request left (its idle timeout
          // on a starved client thread): HTTP clients retry idempotent requests once.
          ++retried;
          res = client.Post("/v1/recognize", bodies[i % bodies.size()], "application/json");
        }
        if (!res || res->status != 200) ++failed;
        latencies[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
      }
    });
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto at = [&](double q) { return all[std::min(all.size() - 1, static_cast<size_t>(q * static_cast<double>(all.size())))]; };
  Figures f;
  f.requests_per_s = static_cast<double>(requests) / wall;
  f.p50_ms = at(0.50);
  f.p99_ms = at(0.99);
  f.mean_batch = server.metrics()["mean_batch"].get<double>();
  f.failed = failed;
  f.retried = retried;
  server.stop();
  server.wait();
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  genner::core::prefer_passive_openmp(argv);
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    GENNER_CHECK(!args.empty() && args[0].rfind("--", 0) != 0,
                 "usage: bench_serve RUN_DIR [--requests N] [--precision fp32|bf16|int8] [--max_wait_ms X]");
    const fs::path run = args[0];
    size_t requests = 512;
    std::string precision = "fp32";
    double max_wait_ms = 5;
    for (size_t i = 1; i + 1 < args.size(); i += 2) {
      if (args[i] == "--requests")
        requests = std::stoul(args[i + 1]);
      else if (args[i] == "--precision")
        precision = args[i + 1];
      else if (args[i] == "--max_wait_ms")
        max_wait_ms = std::stod(args[i + 1]);
      else
        genner::fail("bench_serve: unknown option '", args[i], "'");
    }
    GENNER_CHECK(args.size() % 2 == 1, "bench_serve: option '", args.back(), "' needs a value");
    auto recognizer = gr::Recognizer::load(run);
    genner::model::prepare_inference(recognizer.model(), genner::model::parse_precision(precision));

    const auto tmp = fs::temp_directory_path() / ("genner-bench-serve-" + std::to_string(::getpid()));
    genner::data::sample::Options so;
    so.seed = 3;
    so.sizes = {10, 10, 256};
    const auto files = genner::data::sample::write_flat(tmp, so);
    const auto test = genner::data::load_conll(files.test);
    fs::remove_all(tmp);
    std::vector<std::string> bodies;
    for (const auto& s : test.sentences) bodies.push_back(nlohmann::json{{"text", genner::data::join_words(s.words)}}.dump());

    std::printf("serve benchmark: run %s, precision %s, %zu requests per setting, one text each (%zu distinct "
                "sample sentences), max_wait %.1f ms, torch threads %d\n",
                run.string().c_str(), precision.c_str(), requests, bodies.size(), max_wait_ms,
                static_cast<int>(at::get_num_threads()));
    std::printf("%-9s %-8s %12s %10s %10s %11s\n", "batching", "clients", "requests/s", "p50 ms", "p99 ms",
                "mean batch");
    for (const size_t max_batch : {size_t{1}, size_t{32}})
      for (const int clients : {1, 8, 32}) {
        const auto f = drive(recognizer, bodies, max_batch, clients, requests, max_wait_ms);
        std::string note;
        if (f.retried) note += " retried: " + std::to_string(f.retried);
        if (f.failed) note += " FAILED: " + std::to_string(f.failed);
        std::printf("%-9s %-8d %12.1f %10.1f %10.1f %11.2f%s\n", max_batch == 1 ? "off (1)" : "on (32)", clients,
                    f.requests_per_s, f.p50_ms, f.p99_ms, f.mean_batch, note.c_str());
      }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_serve: error: " << e.what() << "\n";
    return 1;
  }
}
