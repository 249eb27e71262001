// Serving: the Batcher (arrival order, batch bound, latency bound, queue limit, timeout, shutdown)
// with a scripted decoder, and the HTTP server on loopback with a small Recognizer — concurrent
// clients get the Recognizer's own records, batches form, limits and malformed bodies are refused
// with JSON errors, shutdown answers what is in flight, and a soak of mixed requests.
#include <genner/genner.hpp>
#include <genner/app/serve.hpp>

#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "sample_task.hpp"
#include "support.hpp"

namespace {

namespace fs = std::filesystem;
namespace gm = genner::model;
namespace gr = genner::recognize;
namespace ga = genner::app;
using Scratch = gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>;
using namespace std::chrono_literals;

/// A decoder for Batcher tests: records every batch, answers each text with one word (the text),
/// and holds the first call until released.
struct Scripted {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  bool fail = false;
  std::vector<std::vector<std::string>> batches;

  std::vector<gr::Result> operator()(std::span<const std::string_view> texts) {
    {
      std::unique_lock lock(m);
      batches.emplace_back(texts.begin(), texts.end());
      cv.wait(lock, [&] { return open; });
      if (fail) throw genner::Error("scripted failure");
    }
    std::vector<gr::Result> out(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) out[i].words = {std::string(texts[i])};
    return out;
  }
  void release() {
    {
      std::lock_guard lock(m);
      open = true;
    }
    cv.notify_all();
  }
  size_t calls() {
    std::lock_guard lock(m);
    return batches.size();
  }
};

/// Waits (at most 20 s) until `pred` holds.
template <class P>
bool eventually(P pred) {
  for (int i = 0; i < 4000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

TEST_CASE("Batcher batches in arrival order up to max_batch texts, and answers every caller its own", "[serve]") {
  Scripted script;
  gr::BatcherOptions o;
  o.max_batch = 4;
  o.max_wait = 20ms;
  gr::Batcher batcher([&](auto texts) { return script(texts); }, o);
  std::vector<gr::Answer> answers(8);
  std::vector<std::thread> threads;
  // r0 is decoded alone (the decoder holds it); r1..r6 queue up behind it, one after another.
  threads.emplace_back([&] { answers[0] = batcher.submit({"r0"}); });
  REQUIRE(eventually([&] { return script.calls() == 1; }));
  for (size_t i = 1; i <= 6; ++i) {
    threads.emplace_back([&, i] { answers[i] = batcher.submit({"r" + std::to_string(i)}); });
    REQUIRE(eventually([&] { return batcher.stats().queued_requests == i; }));
  }
  // a request larger than max_batch waits its turn and is decoded alone, not split
  threads.emplace_back([&] { answers[7] = batcher.submit({"b0", "b1", "b2", "b3", "b4"}); });
  REQUIRE(eventually([&] { return batcher.stats().queued_texts == 11; }));
  CHECK(batcher.stats().decoding_texts == 1);
  script.release();
  for (auto& t : threads) t.join();
  REQUIRE(script.batches.size() == 4);
  CHECK(script.batches[0] == std::vector<std::string>{"r0"});
  CHECK(script.batches[1] == std::vector<std::string>{"r1", "r2", "r3", "r4"});
  CHECK(script.batches[2] == std::vector<std::string>{"r5", "r6"});
  CHECK(script.batches[3] == std::vector<std::string>{"b0", "b1", "b2", "b3", "b4"});
  for (size_t i = 0; i <= 6; ++i) {
    REQUIRE(answers[i].outcome == gr::Outcome::ok);
    REQUIRE(answers[i].results.size() == 1);
    CHECK(answers[i].results[0].words == std::vector<std::string>{"r" + std::to_string(i)});
  }
  REQUIRE(answers[7].results.size() == 5);
  CHECK(answers[7].results[4].words == std::vector<std::string>{"b4"});
  const auto s = batcher.stats();
  CHECK(s.batches == 4);
  CHECK(s.texts == 12);
  CHECK(s.ok == 8);
  CHECK(s.batch_sizes == std::map<size_t, size_t>{{1, 1}, {2, 1}, {4, 1}, {5, 1}});
  CHECK(s.queued_texts == 0);
  CHECK(s.latency_count == 8);
  CHECK(s.p50 <= s.p99);
  CHECK(s.p99 <= s.max);
  CHECK(s.max > 0);
  const auto j = s.to_json();
  CHECK(j["batch_size_histogram"]["4"] == 1);
  CHECK(j["requests"]["ok"] == 8);
}

TEST_CASE("Batcher waits at most max_wait for a batch to fill; max_batch 1 decodes each request alone", "[serve]") {
  Scripted script;
  script.release();
  gr::BatcherOptions o;
  o.max_batch = 64;
  o.max_wait = 30ms;
  gr::Batcher batcher([&](auto texts) { return script(texts); }, o);
  const auto t0 = std::chrono::steady_clock::now();
  const auto a = batcher.submit({"alone"});
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(a.outcome == gr::Outcome::ok);
  CHECK(waited >= 30ms);  // a batch that does not fill starts at the latency bound
  CHECK(waited < 5s);
  // An empty list is answered at once, without a batch.
  CHECK(batcher.submit({}).outcome == gr::Outcome::ok);
  CHECK(batcher.stats().batches == 1);

  Scripted one;
  one.release();
  gr::BatcherOptions single;
  single.max_batch = 1;
  single.max_wait = 100ms;
  gr::Batcher unbatched([&](auto texts) { return one(texts); }, single);
  std::vector<std::thread> threads;
  std::atomic<int> answered{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] { answered += unbatched.submit({"x"}).outcome == gr::Outcome::ok; });
  for (auto& t : threads) t.join();
  CHECK(answered == 6);
  CHECK(unbatched.stats().batch_sizes == std::map<size_t, size_t>{{1, 6}});
  CHECK_THROWS_WITH(gr::Batcher([&](auto texts) { return one(texts); }, gr::BatcherOptions{.max_batch = 0}),
                    Catch::Contains("max_batch"));
}

TEST_CASE("Batcher refuses over max_queue, times out, reports decode failures and drains on stop", "[serve]") {
  Scripted script;
  gr::BatcherOptions o;
  o.max_batch = 2;
  o.max_wait = 0ms;
  o.max_queue = 3;
  o.timeout = 10s;
  auto batcher = std::make_unique<gr::Batcher>([&](auto texts) { return script(texts); }, o);
  std::vector<std::thread> threads;
  std::vector<gr::Answer> answers(3);
  threads.emplace_back([&] { answers[0] = batcher->submit({"held"}); });
  REQUIRE(eventually([&] { return script.calls() == 1; }));
  threads.emplace_back([&] { answers[1] = batcher->submit({"q1", "q2"}); });
  REQUIRE(eventually([&] { return batcher->stats().queued_texts == 2; }));
  // 2 queued + 2 more would be over max_queue 3
  const auto full = batcher->submit({"f1", "f2"});
  CHECK(full.outcome == gr::Outcome::queue_full);
  CHECK(full.retry_after_s >= 1);
  CHECK(batcher->stats().queue_full == 1);
  // stop() refuses new requests but decodes and answers the queued ones
  threads.emplace_back([&] { batcher->stop(); });
  REQUIRE(eventually([&] { return batcher->stopping(); }));
  CHECK(batcher->submit({"late"}).outcome == gr::Outcome::stopping);
  script.release();
  for (auto& t : threads) t.join();
  CHECK(answers[0].outcome == gr::Outcome::ok);
  CHECK(answers[1].outcome == gr::Outcome::ok);
  CHECK(answers[1].results.size() == 2);
  batcher.reset();

  // a request not answered within the timeout is taken out of the queue
  Scripted stuck;
  gr::BatcherOptions t;
  t.max_wait = 0ms;
  t.timeout = 50ms;
  gr::Batcher slow([&](auto texts) { return stuck(texts); }, t);
  gr::Outcome first_outcome = gr::Outcome::ok;
  std::thread first([&] { first_outcome = slow.submit({"decoding"}).outcome; });
  REQUIRE(eventually([&] { return stuck.calls() == 1; }));
  CHECK(slow.submit({"queued"}).outcome == gr::Outcome::timed_out);
  CHECK(slow.stats().queued_texts == 0);
  first.join();
  CHECK(first_outcome == gr::Outcome::timed_out);
  CHECK(slow.stats().timed_out == 2);
  {
    std::lock_guard lock(stuck.m);
    stuck.fail = true;
  }
  stuck.release();
  // a decoder that throws: the request fails with its message; the worker carries on
  const auto failed = slow.submit({"boom"});
  CHECK(failed.outcome == gr::Outcome::failed);
  CHECK_THAT(failed.error, Catch::Contains("scripted failure"));
  CHECK(slow.stats().failed == 1);
}

/// A small untrained Recognizer over genner's sample data (constrained decoding returns entities),
/// built once for the server tests.
struct Model {
  genner::test::TempDir tmp;
  std::optional<gr::Recognizer> recognizer;

  static const Model& get() {
    static const Model m = [] {
      Model out;
      auto t = genner::test::SampleTask::make(out.tmp.path, 11, {200, 10, 10}, 300);
      torch::manual_seed(5);
      auto model = std::make_shared<gm::NerModelImpl<Scratch>>(
          gm::NerOptions{}.types(t.labels.size()).with_config(t.config(32, 1)));
      gr::RecognizerOptions o;
      o.flat = true;
      genner::generate::PointerDecodeOptions d;
      d.constrained = true;
      d.search.max_length(8, 0.5);
      o.decode = d;
      o.max_source_pieces = 48;
      o.batch_size = 16;
      out.recognizer.emplace(model, std::move(t.tokenizer), std::move(t.labels), o);
      return out;
    }();
    return m;
  }
  Model() = default;
  Model(Model&& o) noexcept : recognizer(std::move(o.recognizer)) { std::swap(tmp.path, o.tmp.path); }
};

const std::vector<std::string> kTexts = {
    "John Smith lives in Paris.",
    "New York, he said, is bigger than Boston.",
    "Zürich’s mayor met Émile Dupont in São Paulo on Monday...",
    "",
    "The club , which was founded in 1899 , won 2-1 at Lyon !",
    "Acme Corp. hired Mary Jones .",
};

/// The record predict would write for `text`, scores aside; the scores checked apart.
void check_record(const nlohmann::json& got, const std::string& text, const gr::Recognizer& rec) {
  auto want = gr::to_json(rec.predict(text), text, rec.options().max_source_pieces);
  auto g = got;
  REQUIRE(g["entities"].size() == want["entities"].size());
  for (size_t k = 0; k < want["entities"].size(); ++k) {
    auto& ge = g["entities"][k];
    auto& we = want["entities"][k];
    // Scores of one text can differ in the last bits when it is decoded in another batch.
    if (we["score"].is_null())
      CHECK(ge["score"].is_null());
    else
      CHECK(ge["score"].get<double>() == Approx(we["score"].get<double>()).margin(1e-4));
    ge.erase("score");
    we.erase("score");
  }
  CHECK(g == want);
}

/// A keep-alive client; no Catch2 macros (it runs on client threads): callers check the results.
struct Client {
  httplib::Client http;
  explicit Client(int port) : http("127.0.0.1", port) {
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);  // the body leaves without waiting for the headers' acknowledgement
    http.set_read_timeout(60, 0);
    http.set_connection_timeout(10, 0);
  }
  /// Status and parsed body of a POST (status -1 when no response came; a body that is not JSON
  /// parses as discarded, or as the string "not application/json" when the type is another).
  std::pair<int, nlohmann::json> post(const std::string& body, const std::string& type = "application/json",
                                      const std::string& path = "/v1/recognize") {
    return answer(http.Post(path.c_str(), body, type.c_str()));
  }
  std::pair<int, nlohmann::json> get(const std::string& path) { return answer(http.Get(path.c_str())); }

  static std::pair<int, nlohmann::json> answer(const httplib::Result& res) {
    if (!res) return {-1, nullptr};
    if (res->get_header_value("Content-Type") != "application/json") return {res->status, "not application/json"};
    return {res->status, nlohmann::json::parse(res->body, nullptr, false)};
  }
};

ga::ServeOptions serve_options() {
  ga::ServeOptions o;
  o.port = 0;
  o.http_threads = 16;
  return o;
}

TEST_CASE("serve answers concurrent clients with the Recognizer's own records, in batches", "[serve]") {
  const auto& rec = *Model::get().recognizer;
  for (const size_t max_batch : {size_t{8}, size_t{1}}) {
    INFO("max_batch " << max_batch);
    auto o = serve_options();
    o.batching.max_batch = max_batch;
    o.batching.max_wait = 50ms;
    ga::NerServer server(rec, o);
    const int port = server.start();
    REQUIRE(port > 0);
    constexpr int kClients = 8, kEach = 6;
    std::vector<std::vector<std::pair<int, nlohmann::json>>> got(kClients);
    std::atomic<int> ready{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c)
      clients.emplace_back([&, c] {
        Client client(port);
        ++ready;
        while (ready < kClients) std::this_thread::yield();
        for (int r = 0; r < kEach; ++r) {
          const auto& text = kTexts[static_cast<size_t>(c + r) % kTexts.size()];
          got[static_cast<size_t>(c)].push_back(client.post(nlohmann::json{{"text", text}}.dump()));
        }
      });
    for (auto& t : clients) t.join();
    for (int c = 0; c < kClients; ++c)
      for (int r = 0; r < kEach; ++r) {
        const auto& [status, body] = got[static_cast<size_t>(c)][static_cast<size_t>(r)];
        const auto& text = kTexts[static_cast<size_t>(c + r) % kTexts.size()];
        INFO("client " << c << " request " << r << ": " << body.dump());
        REQUIRE(status == 200);
        CHECK(body["text"] == text);
        check_record(body, text, rec);
      }
    // a list of texts: one record each, in order
    Client client(port);
    const auto [status, body] = client.post(nlohmann::json{{"texts", kTexts}}.dump());
    REQUIRE(status == 200);
    REQUIRE(body["results"].size() == kTexts.size());
    for (size_t i = 0; i < kTexts.size(); ++i) check_record(body["results"][i], kTexts[i], rec);
    const auto [mstatus, metrics] = client.get("/metrics");
    REQUIRE(mstatus == 200);
    INFO(metrics.dump());
    CHECK(metrics["requests"]["ok"] == kClients * kEach + 1);
    CHECK(metrics["texts"] == kClients * kEach + kTexts.size());
    // responses are counted once written: the last ones may land just after the client has read them
    CHECK(eventually([&] { return server.metrics()["responses"]["200"] == kClients * kEach + 2; }));
    size_t largest = 0, batches = 0;
    for (const auto& [size, count] : metrics["batch_size_histogram"].items()) {
      largest = std::max<size_t>(largest, std::stoul(size));
      batches += count.get<size_t>();
    }
    CHECK(batches == metrics["batches"]);
    if (max_batch == 1) {
      // every request alone (the list of texts is one request: one batch)
      CHECK(metrics["batches"] == kClients * kEach + 1);
      CHECK(largest == kTexts.size());
    } else {
      // eight clients at once within a 50 ms bound: requests shared batches
      CHECK(metrics["batches"].get<size_t>() < static_cast<size_t>(kClients * kEach));
      CHECK(largest > 1);
      CHECK(metrics["mean_batch"].get<double>() > 1.0);
    }
    CHECK(metrics["latency_ms"]["p50"].get<double>() > 0);
    CHECK(metrics["latency_ms"]["p50"].get<double>() <= metrics["latency_ms"]["p99"].get<double>());
    const auto [hstatus, health] = client.get("/health");
    CHECK(hstatus == 200);
    CHECK(health["status"] == "ok");
    CHECK(health["flat"] == true);
    server.stop();
    server.wait();
  }
}

TEST_CASE("serve refuses malformed bodies and requests over its limits with JSON errors", "[serve]") {
  const auto& rec = *Model::get().recognizer;
  auto o = serve_options();
  o.max_body_bytes = 4096;
  o.max_texts = 3;
  o.batching.max_queue = 3;
  ga::NerServer server(rec, o);
  Client client(server.start());
  const auto refused = [&](const std::string& body, int status, const std::string& says,
                           const std::string& type = "application/json") {
    INFO(body.substr(0, 200));
    const auto [got, j] = client.post(body, type);
    CHECK(got == status);
    REQUIRE(j.is_object());
    REQUIRE(j.contains("error"));
    CHECK_THAT(j["error"].get<std::string>(), Catch::Contains(says));
  };
  refused("{\"text\": ", 400, "malformed JSON");
  refused("", 400, "malformed JSON");
  refused("[\"a\"]", 400, "expected a JSON object");
  refused("{\"text\": 3}", 400, "\"text\": expected a string, found number");
  refused("{\"texts\": \"a\"}", 400, "expected an array of strings");
  refused("{\"texts\": [\"a\", null]}", 400, "\"texts\"[1]: expected a string, found null");
  refused("{\"text\": \"a\", \"texts\": [\"b\"]}", 400, "not both");
  refused("{}", 400, "missing \"text\" or \"texts\"");
  refused("{\"text\": \"a\", \"lang\": \"en\"}", 400, "unknown key 'lang'");
  refused("{\"text\": \"bad \xff byte\"}", 400, "malformed JSON");
  refused("{\"text\": \"a\"}", 415, "Content-Type: expected application/json", "text/plain");
  refused("{\"texts\": [\"a\", \"b\", \"c\", \"d\"]}", 413, "over the limit of 3 per request (--max_texts)");
  refused("{\"text\": \"" + std::string(5000, 'a') + "\"}", 413, "over the limit of 4096 bytes (--max_body_bytes)");
  // the length guard: a text longer than max_source_pieces (48) is refused, naming it
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "word" + std::to_string(i) + " ";
  refused(nlohmann::json{{"texts", {"short", long_text}}}.dump(), 413,
          "\"texts\"[1]: a text of ");
  refused(nlohmann::json{{"text", long_text}}.dump(), 413, "is over the model's limit of 48 (--max_source_pieces)");
  {
    const auto [status, j] = client.post("{\"text\": \"a\"}", "application/json", "/v2/nothing");
    CHECK(status == 404);
    CHECK_THAT(j["error"].get<std::string>(), Catch::Contains("no such endpoint"));
  }
  {
    const auto [status, j] = client.get("/v1/recognize");
    CHECK(status == 405);
    CHECK_THAT(j["error"].get<std::string>(), Catch::Contains("expected POST"));
  }
  // Content-Type with parameters is JSON too
  CHECK(client.post("{\"text\": \"Paris\"}", "application/json; charset=utf-8").first == 200);
  const auto [mstatus, metrics] = client.get("/metrics");
  CHECK(metrics["responses"]["400"] == 10);
  CHECK(metrics["responses"]["413"] == 4);
  CHECK(metrics["responses"]["415"] == 1);
  CHECK(metrics["limits"]["max_texts"] == 3);
  server.stop();
  server.wait();

  // With long texts split, the same text is decoded in windows, as predict does.
  auto split = serve_options();
  split.split_long_texts = true;
  ga::NerServer windows(rec, split);
  Client wclient(windows.start());
  const auto [status, j] = wclient.post(nlohmann::json{{"text", long_text}}.dump());
  REQUIRE(status == 200);
  CHECK(j["split"] == true);
  check_record(j, long_text, rec);
}

TEST_CASE("serve answers 503 with Retry-After when the queue is full, 504 past the timeout", "[serve]") {
  const auto& rec = *Model::get().recognizer;
  auto o = serve_options();
  o.max_texts = 2;
  o.batching.max_queue = 2;
  o.batching.max_batch = 64;
  o.batching.max_wait = 400ms;  // the first request waits for company: the queue stays full meanwhile
  ga::NerServer server(rec, o);
  const int port = server.start();
  std::pair<int, nlohmann::json> first;
  std::thread waiting([&] {
    Client c(port);
    first = c.post(R"({"texts": ["Paris", "John Smith"]})");
  });
  REQUIRE(eventually([&] { return server.metrics()["queue"]["texts"] == 2; }));
  httplib::Client raw("127.0.0.1", port);
  auto res = raw.Post("/v1/recognize", R"({"text": "Lyon"})", "application/json");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(std::stoi(res->get_header_value("Retry-After")) >= 1);
  CHECK_THAT(res->body, Catch::Contains("the queue is full"));
  waiting.join();
  CHECK(first.first == 200);
  CHECK(first.second["results"].size() == 2);
  server.stop();
  server.wait();

  auto t = serve_options();
  t.batching.timeout = 5ms;
  t.batching.max_wait = 200ms;
  ga::NerServer impatient(rec, t);
  Client client(impatient.start());
  const auto [status, j] = client.post(R"({"text": "Paris"})");
  CHECK(status == 504);
  CHECK_THAT(j["error"].get<std::string>(), Catch::Contains("--timeout_ms"));
  CHECK(impatient.metrics()["requests"]["timed_out"] == 1);
}

TEST_CASE("serve shuts down gracefully: requests in flight are answered, new ones are not accepted", "[serve]") {
  const auto& rec = *Model::get().recognizer;
  auto o = serve_options();
  o.batching.max_wait = 300ms;
  ga::NerServer server(rec, o);
  const int port = server.start();
  std::pair<int, nlohmann::json> in_flight;
  std::thread client([&] {
    Client c(port);
    in_flight = c.post(R"({"text": "John Smith lives in Paris."})");
  });
  REQUIRE(eventually([&] { return server.metrics()["queue"]["requests"] == 1; }));
  server.stop();
  CHECK(server.stopping());
  CHECK(server.health().status == 503);
  CHECK(server.recognize(R"({"text": "late"})").status == 503);
  server.wait();
  client.join();
  CHECK(in_flight.first == 200);
  check_record(in_flight.second, "John Smith lives in Paris.", rec);
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1, 0);
  CHECK(!after.Get("/health"));  // nobody listens any more
}

TEST_CASE("serve survives a soak of 10,000 mixed valid and malformed requests", "[serve]") {
  const auto& rec = *Model::get().recognizer;
  auto o = serve_options();
  o.max_body_bytes = 64 * 1024;
  o.max_texts = 4;
  o.batching.max_wait = 2ms;
  ga::NerServer server(rec, o);
  const int port = server.start();
  constexpr int kClients = 8, kEach = 1250;
  std::atomic<int> ok{0}, client_errors{0}, unexpected{0}, transport{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<unsigned>(1000 + c));
      Client client(port);
      for (int r = 0; r < kEach; ++r) {
        std::string body;
        int expect = 400;
        switch (rng() % 12) {
          case 0: body = nlohmann::json{{"text", kTexts[rng() % kTexts.size()]}}.dump(); expect = 200; break;
          case 1: body = rng() % 2 ? R"({"texts": []})" : R"({"texts": ["", " "]})"; expect = 200; break;
          case 2: {  // random bytes
            body.resize(rng() % 64);
            for (auto& ch : body) ch = static_cast<char>(rng());
            break;
          }
          case 3: {  // a valid body cut short
            body = nlohmann::json{{"text", kTexts[1]}}.dump();
            body.resize(rng() % body.size());
            break;
          }
          case 4: body = std::string(1 + rng() % 3000, '[') + std::string(rng() % 2 ? 0 : 10, ']'); break;
          case 5: body = R"({"texts": ["a", "a", "a", "a", "b"]})"; expect = 413; break;
          case 6: body = "{\"text\": \"ok\xc3\x28\"}"; break;
          case 7: body = "{\"text\": \"x\"}" + std::string(1, "]}x"[rng() % 3]); break;
          case 8: body = "{\"texts\": [1, 2, {\"a\": []}]}"; break;
          case 9: body = std::string(70 * 1024, ' '); expect = 413; break;
          case 10: body = "{\"text\": \"\\ud800 lone surrogate\"}"; break;
          default: body = "{\"text\": \"" + std::string(rng() % 40, ' ') + "\"}"; expect = 200; break;
        }
        auto res = client.http.Post("/v1/recognize", body, "application/json");
        if (!res) {
          ++transport;
          continue;
        }
        const auto j = nlohmann::json::parse(res->body, nullptr, false);
        const bool is_error = !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string();
        if (res->status == 200 && expect == 200 && !j.is_discarded() && (j.contains("entities") || j.contains("results")))
          ++ok;
        else if (res->status == expect && is_error)
          ++client_errors;
        else
          ++unexpected;
      }
    });
  for (auto& t : clients) t.join();
  INFO("ok " << ok << ", refused " << client_errors << ", unexpected " << unexpected << ", transport " << transport);
  CHECK(unexpected == 0);
  CHECK(transport == 0);
  CHECK(ok + client_errors == kClients * kEach);
  CHECK(ok > 2000);  // cases 0, 1 and 11: a quarter of the requests
  Client client(port);
  const auto [status, metrics] = client.get("/metrics");
  REQUIRE(status == 200);
  CHECK(metrics["requests"]["ok"] == ok.load());
  // still serving, and still right
  const auto [s, j] = client.post(nlohmann::json{{"text", kTexts[0]}}.dump());
  CHECK(s == 200);
  check_record(j, kTexts[0], rec);
}

}  // namespace
