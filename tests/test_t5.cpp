// Parity of genner's T5 with Hugging Face's, on every fixture folder found.
#include <sys/wait.h>
#include <unistd.h>

#include <genner/t5.hpp>

#include <atomic>
#include <iomanip>
#include <iostream>
#include <map>

#include "support.hpp"

namespace {

using genner::io::SafetensorsFile;
namespace fs = std::filesystem;

std::vector<std::string> cases_of(const SafetensorsFile& ref) {
  std::vector<std::string> out;
  for (const auto& [name, e] : ref.entries()) {
    const auto dot = name.find(".input_ids");
    if (dot != std::string::npos && dot + 10 == name.size()) out.push_back(name.substr(0, dot));
  }
  return out;
}

/// Worst relative difference (support.hpp's rule) per tensor group, for the report and the assertion.
struct Tally {
  std::string preset;
  std::map<std::string, std::pair<double, std::string>> worst;  // group -> (diff, tensor)
  void add(const std::string& group, const std::string& tensor, const torch::Tensor& ours, const torch::Tensor& ref) {
    INFO(preset << ": " << tensor << " ours " << ours.sizes() << " reference " << ref.sizes());
    REQUIRE(ours.sizes() == ref.sizes());
    const double d = genner::test::relative_difference(ours, ref);
    auto& w = worst[group];
    if (d >= w.first) w = {d, tensor};
  }
  void check(double tolerance) const {
    for (const auto& [group, w] : worst) {
      std::cout << "  " << std::left << std::setw(10) << preset << std::setw(26) << group << std::scientific
                << std::setprecision(2) << w.first << "  (" << w.second << ")\n";
    }
    for (const auto& [group, w] : worst) {
      INFO(preset << ": worst tensor in group '" << group << "' is " << w.second << " off by " << w.first);
      CHECK(w.first <= tolerance);
    }
  }
};

}  // namespace

TEST_CASE("T5 matches Hugging Face on every fixture preset", "[t5][parity]") {
  const auto folders = genner::test::fixture_folders();
  if (folders.empty()) {
    WARN("no fixtures under " << genner::test::fixtures_root() << "; set GENNER_FIXTURES");
    return;
  }
  torch::NoGradGuard no_grad;
  for (const auto& folder : folders) {
    const std::string preset = folder.filename().string();
    INFO("preset " << preset);
    genner::t5::T5 model{nullptr};
    REQUIRE_NOTHROW(model = genner::t5::load_pretrained(folder));
    model->eval();
    SafetensorsFile ref(folder / "reference.safetensors");
    Tally tally{preset, {}};
    const auto cases = cases_of(ref);
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
      auto R = [&](const std::string& n) { return ref.load(c + "." + n); };
      auto ids = R("input_ids"), mask = R("attention_mask"), labels = R("labels"), dec_in = R("decoder_input_ids");
      tally.add("decoder_input_ids", c + ".decoder_input_ids", model->shift_right(labels), dec_in);
      auto out = model->forward(ids, mask, labels, dec_in, /*keep_block_outputs=*/true);
      tally.add("embeddings", c + ".encoder.embeddings", model->embed(ids), R("encoder.embeddings"));
      tally.add("embeddings", c + ".decoder.embeddings", model->embed(dec_in), R("decoder.embeddings"));
      for (size_t i = 0; i < out.encoder.block_outputs.size(); ++i) {
        const auto n = "encoder.block." + std::to_string(i) + ".output";
        tally.add("encoder blocks", c + "." + n, out.encoder.block_outputs[i], R(n));
      }
      for (size_t i = 0; i < out.decoder.block_outputs.size(); ++i) {
        const auto n = "decoder.block." + std::to_string(i) + ".output";
        tally.add("decoder blocks", c + "." + n, out.decoder.block_outputs[i], R(n));
      }
      tally.add("final hidden states", c + ".encoder.last_hidden_state", out.encoder.last_hidden_state,
                R("encoder.last_hidden_state"));
      tally.add("final hidden states", c + ".decoder.last_hidden_state", out.decoder.last_hidden_state,
                R("decoder.last_hidden_state"));
      tally.add("position bias", c + ".encoder.position_bias", out.encoder.position_bias, R("encoder.position_bias"));
      tally.add("position bias", c + ".decoder.position_bias", out.decoder.position_bias, R("decoder.position_bias"));
      const int64_t S = ids.size(1), T = dec_in.size(1);
      auto enc_owner = model->encoder->bias_owner(), dec_owner = model->decoder->bias_owner();
      tally.add("buckets", c + ".encoder.relative_position_bucket", enc_owner->buckets(S, S, torch::kCPU),
                R("encoder.relative_position_bucket"));
      tally.add("buckets", c + ".decoder.relative_position_bucket", dec_owner->buckets(T, T, torch::kCPU),
                R("decoder.relative_position_bucket"));
      tally.add("logits", c + ".logits", out.logits, R("logits"));
      tally.add("loss", c + ".loss", out.loss.reshape({1}), R("loss"));

      // The cached decoder, fed one token at a time, reproduces the full-sequence pass.
      genner::t5::DecoderCache cache;
      std::vector<torch::Tensor> steps;
      for (int64_t t = 0; t < T; ++t) {
        auto step = model->decode(dec_in.slice(1, t, t + 1), out.encoder.last_hidden_state, mask, &cache);
        steps.push_back(step.last_hidden_state);
      }
      CHECK(cache.length() == T);
      tally.add("cached decoding", c + ".decoder.last_hidden_state (cached)", torch::cat(steps, 1),
                R("decoder.last_hidden_state"));

      // Gradients of every parameter, where the fixture has them.
      if (ref.contains(c + ".grad.shared.weight")) {
        torch::AutoGradMode grad_on(true);
        model->zero_grad();
        auto o = model->forward(ids, mask, labels, dec_in);
        o.loss.backward();
        size_t compared = 0;
        for (const auto& p : model->named_parameters()) {
          const auto n = c + ".grad." + p.key();
          INFO("gradient of " << p.key());
          REQUIRE(ref.contains(n));
          REQUIRE(p.value().grad().defined());
          tally.add("gradients", n, p.value().grad(), ref.load(n));
          ++compared;
        }
        CHECK(compared == model->parameters().size());
      }
    }
    tally.check(genner::test::parity_tolerance);
  }
}

TEST_CASE("T5 refuses malformed inputs with genner::Error naming the tensor and both shapes", "[t5]") {
  genner::t5::T5Config c;
  c.vocab_size = 50;
  c.d_model = 16;
  c.d_ff = 32;
  c.d_kv = 4;
  c.num_heads = 4;
  c.num_layers = 1;
  c.num_decoder_layers = 2;
  genner::t5::T5 model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor({{4, 5, 6}}, torch::kLong);
  const auto mask = torch::ones({1, 3}, torch::kLong);
  const auto hidden = model->encode(ids, mask).last_hidden_state;  // well-formed: runs
  CHECK(hidden.sizes() == std::vector<int64_t>{1, 3, 16});
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(model->encode(ids, torch::ones({1, 4}, torch::kLong)), genner::Error);
  CHECK_THROWS_WITH(model->encode(ids, torch::ones({1, 4}, torch::kLong)),
                    Contains("T5 encoder: expected an attention mask [batch, 3]") && Contains("found [1, 4]"));
  CHECK_THROWS_WITH(model->encode(torch::tensor({{4, 50}}, torch::kLong)),
                    Contains("T5: token ids: expected ids in [0, 50)") && Contains("from 4 to 50"));
  CHECK_THROWS_WITH(model->encode(torch::tensor({{-1, 3}}, torch::kLong)), Contains("from -1 to 3"));
  CHECK_THROWS_WITH(model->encode(torch::ones({1, 3}, torch::kFloat)),
                    Contains("expected an integer tensor, found Float"));
  CHECK_THROWS_WITH(model->decoder->forward(torch::zeros({1, 2, 16}), torch::Tensor()),
                    Contains("T5 decoder: expected encoder hidden states [batch, source length, 16], found none"));
  CHECK_THROWS_WITH(model->decoder->forward(torch::zeros({1, 2, 16}), torch::Tensor(), torch::zeros({1, 3, 8})),
                    Contains("found [1, 3, 8]"));
  CHECK_THROWS_WITH(model->decode(torch::tensor({{0}}, torch::kLong), hidden, torch::ones({1, 5}, torch::kLong)),
                    Contains("expected an encoder mask [batch, 3]") && Contains("found [1, 5]"));
  CHECK_THROWS_WITH(model->encoder->forward(torch::zeros({1, 3, 8}), torch::Tensor()),
                    Contains("T5 encoder: expected input embeddings [batch, length, 16], found [1, 3, 8]"));
  CHECK_THROWS_WITH(model->decoder->block_at(1)->self_attention()->attention->compute_bias(1, 1),
                    Contains("expected the layer that owns the relative position bias table"));
  CHECK_NOTHROW(model->decoder->block_at(0)->self_attention()->attention->compute_bias(2, 2));
}

TEST_CASE("dropout keeps 1 - p of the elements, scaled, with masks fixed by the seed and not by threads", "[t5]") {
  namespace core = genner::core;
  torch::manual_seed(11);
  const auto x = torch::rand({1000, 1001}) + 0.5;  // no zeros: a zero of the result is a dropped element
  CHECK(core::dropout(x, 0.1, /*train=*/false).is_same(x));
  CHECK(core::dropout(x, 0.0, /*train=*/true).is_same(x));
  CHECK(core::dropout(x, 1.0, true).abs().max().item<double>() == 0.0);
  CHECK_THROWS_WITH(core::dropout(x, 1.5, true), Catch::Contains("[0, 1], found 1.5"));

  const int threads = core::loop_threads();
  for (const double p : {0.1, 0.5}) {
    INFO("p = " << p);
    torch::manual_seed(5);
    core::set_loop_threads(1);
    const auto a = core::dropout(x, p, true);
    const auto b = core::dropout(x, p, true);  // the next draw: another mask
    torch::manual_seed(5);
    core::set_loop_threads(3);
    const auto c = core::dropout(x, p, true);
    core::set_loop_threads(threads);
    const auto kept = a != 0;
    // 1e6 draws: the kept fraction's standard deviation is below 5e-4.
    CHECK(std::abs(kept.to(torch::kDouble).mean().item<double>() - (1 - p)) < 4e-3);
    CHECK(torch::allclose(a.masked_select(kept), (x / (1 - p)).masked_select(kept), 1e-6, 0.0));
    CHECK(torch::equal(a, c));
    CHECK_FALSE(torch::equal(a, b));
    // Neighbouring elements (two halves of one draw) and rows are independent: P(both kept) = (1-p)^2.
    const auto both = (kept.flatten().narrow(0, 0, 500000) & kept.flatten().narrow(0, 1, 500000)).to(torch::kDouble);
    CHECK(std::abs(both.mean().item<double>() - (1 - p) * (1 - p)) < 6e-3);
  }
  // The gradient is the noise it multiplied by (kept as bits, read back in backward), for sizes that
  // are no multiple of 8 and for views that are not contiguous; bf16 is scaled in bf16.
  for (const auto& shape : {std::vector<int64_t>{1000, 1001}, std::vector<int64_t>{3, 5}, std::vector<int64_t>{1}}) {
    const auto base = torch::rand(shape) + 0.5;
    for (const bool transposed : {false, true}) {
      INFO("shape " << base.sizes() << (transposed ? " transposed" : ""));
      const auto leaf = base.clone().requires_grad_(true);
      torch::manual_seed(3);
      const auto in = transposed ? leaf.t() : leaf;
      const auto y = core::dropout(in, 0.2, true);
      const auto weights = torch::rand(y.sizes());
      (y * weights).sum().backward();
      const auto expected = (y.detach() / in.detach()) * weights;  // noise times the incoming gradient
      CHECK(torch::allclose(leaf.grad(), transposed ? expected.t() : expected, 1e-6, 1e-6));
    }
  }
  // The mask is its definition's: element i kept when half i % 2 of SplitMix64(key + (i / 2) * golden)
  // is below keep * 2^32, whichever CPU path drew it.
  const uint64_t key = 0x243F6A8885A308D3ull;
  const int64_t n = 1001;
  const auto bits = core::detail::draw_mask(n, key, 0.7);
  const auto threshold = static_cast<uint64_t>(std::llround(0.7 * 4294967296.0));
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t h = core::detail::splitmix64(key + static_cast<uint64_t>(i / 2) * 0x9E3779B97F4A7C15ull);
    const bool kept = (i % 2 == 0 ? (h & 0xFFFFFFFFull) : (h >> 32)) < threshold;
    differ += kept != (((bits[i / 8].item<uint8_t>() >> (i % 8)) & 1) != 0);
  }
  CHECK(differ == 0);
#if GENNER_DROPOUT_AVX512
  if (core::detail::has_avx512_draws()) {
    std::vector<uint8_t> plain(126), wide(126);
    core::detail::draw_bytes_any_cpu(plain.data(), 3, 126, key, threshold);
    core::detail::draw_bytes_avx512(wide.data(), 3, 126, key, threshold);
    CHECK(std::equal(plain.begin() + 3, plain.end(), wide.begin() + 3));
  }
#endif
  const auto yb = core::dropout(x.to(torch::kBFloat16), 0.2, true);
  CHECK(yb.scalar_type() == torch::kBFloat16);
  CHECK(std::abs((yb != 0).to(torch::kDouble).mean().item<double>() - 0.8) < 4e-3);
  const auto scale = static_cast<float>(at::BFloat16(static_cast<float>(1.0 / 0.8)));  // the scale, rounded to bf16
  const auto xb = x.to(torch::kBFloat16);
  CHECK(torch::equal(yb.masked_select(yb != 0), (xb * scale).masked_select(yb != 0)));
}

TEST_CASE("parallel_range covers [0, n) once, in parts of at least the grain, and passes exceptions on", "[t5]") {
  namespace core = genner::core;
  const int threads = core::loop_threads();
  for (const int t : {1, 2, 3}) {
    core::set_loop_threads(t);
    for (const int64_t n : {0, 1, 7, 100, 1001}) {
      for (const int64_t grain : {1, 10, 2000}) {
        INFO("threads " << t << ", n " << n << ", grain " << grain);
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        std::atomic<int> parts{0};
        std::atomic<bool> short_part{false};
        core::parallel_range(n, grain, [&](int64_t begin, int64_t end) {
          ++parts;
          if (end - begin < std::min(grain, n)) short_part = true;
          for (int64_t i = begin; i < end; ++i) ++seen[static_cast<size_t>(i)];
        });
        for (const auto& s : seen) CHECK(s.load() == 1);
        CHECK(parts.load() <= t);
        CHECK(parts.load() == std::max<int64_t>(1, std::min<int64_t>(t, n / grain)));
        CHECK_FALSE(short_part.load());
      }
    }
    CHECK_THROWS_WITH(core::parallel_range(1000, 1, [](int64_t, int64_t end) {
                        if (end == 1000) throw std::runtime_error("the last part failed");
                      }),
                      Catch::Contains("the last part failed"));
  }
  // Loops from two threads at once, and a loop inside a part (the workers are busy: the part starts
  // threads of its own), each still cover their range once.
  core::set_loop_threads(2);
  auto count = [&](int64_t n) {
    std::atomic<int64_t> sum{0};
    core::parallel_range(n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum += i;
    });
    return sum.load();
  };
  std::atomic<int> wrong{0};
  auto many = [&] {
    for (int r = 0; r < 200; ++r)
      if (count(1000) != 999 * 1000 / 2) ++wrong;
  };
  std::thread other(many);
  many();
  other.join();
  CHECK(wrong.load() == 0);
  std::atomic<int64_t> nested{0};
  core::parallel_range(4, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) nested += count(100);
  });
  CHECK(nested.load() == 4 * 99 * 100 / 2);
  // A child of fork() (genner's launcher starts ranks so) has none of its parent's workers: its loops
  // run on workers of its own instead of waiting for threads that are not there.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(count(1000) == 999 * 1000 / 2 && count(5000) == 4999 * 5000 / 2 ? 0 : 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  core::set_loop_threads(threads);
  CHECK_THROWS_WITH(core::set_loop_threads(-1), Catch::Contains("found -1"));
}

TEST_CASE("OpenMpThreads sets the calling thread's OpenMP thread count for a scope", "[t5]") {
  namespace core = genner::core;
  const int before = core::OpenMpThreads::current();
  {
    const core::OpenMpThreads scope(before + 1);
    CHECK(core::OpenMpThreads::current() == before + 1);
    CHECK(at::get_num_threads() == before + 1);
  }
  CHECK(core::OpenMpThreads::current() == before);
  CHECK(at::get_num_threads() == before);
}

TEST_CASE("core::matmul gives torch::matmul's products and gradients on attention's strided views", "[t5]") {
  namespace core = genner::core;
  torch::manual_seed(4);
  // T5's layout: [B, T, H * D] viewed as [B, H, T, D]; keys transposed; odd lengths.
  const int64_t B = 3, H = 4, T = 7, S = 5, D = 16;
  auto heads = [&](int64_t len) { return torch::randn({B, len, H * D}).view({B, len, H, D}).transpose(1, 2); };
  auto q = heads(T).requires_grad_(), k = heads(S).requires_grad_(), v = heads(S).requires_grad_();
  if (core::onednn::available) {
    // The fast path is taken for these layouts (else this test would compare torch with itself).
    CHECK(core::onednn::strided_matmul_fits(q, k.transpose(2, 3)));
    CHECK(core::onednn::strided_matmul_fits(q.narrow(2, 0, 1), k.transpose(2, 3)));  // a decoder step
    CHECK(core::onednn::strided_matmul_fits(torch::randn({B, T, D}), torch::randn({B, S, D}).transpose(1, 2)));
    // Broadcast batches, bf16 and integer tensors take torch::matmul.
    CHECK_FALSE(core::onednn::strided_matmul_fits(q, k.transpose(2, 3).narrow(0, 0, 1).expand({B, H, D, S})));
    CHECK_FALSE(core::onednn::strided_matmul_fits(q.to(torch::kBFloat16), k.transpose(2, 3).to(torch::kBFloat16)));
    CHECK_FALSE(core::onednn::strided_matmul_fits(q.narrow(0, 0, 1), k.transpose(2, 3)));
    CHECK_THROWS_WITH(core::onednn::strided_matmul(q.to(torch::kBFloat16), k.transpose(2, 3)),
                      Catch::Contains("expected fp32 CPU batches"));
  }
  auto run = [&](bool ours) {
    for (auto* t : {&q, &k, &v}) t->mutable_grad().reset();
    auto product = [ours](const torch::Tensor& a, const torch::Tensor& b) {
      return ours ? core::matmul(a, b) : torch::matmul(a, b);
    };
    auto scores = product(q, k.transpose(2, 3));
    auto out = product(torch::softmax(scores, -1), v);
    (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
    return std::vector<torch::Tensor>{scores.detach(), out.detach(), q.grad().clone(), k.grad().clone(),
                                      v.grad().clone()};
  };
  const auto ref = run(false), ours = run(true);
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO("tensor " << i);
    CHECK(ours[i].sizes() == ref[i].sizes());
    CHECK(torch::allclose(ours[i], ref[i], 1e-5, 1e-6));
  }
  // Without gradients and under autocast the results are torch::matmul's too.
  torch::NoGradGuard no_grad;
  CHECK(torch::allclose(core::matmul(q, k.transpose(2, 3)), ref[0], 1e-5, 1e-6));
  {
    at::autocast::set_cpu_enabled(true);
    const auto under = core::matmul(q, k.transpose(2, 3));
    at::autocast::set_cpu_enabled(false);
    CHECK(under.scalar_type() == torch::kBFloat16);
  }
  // Products of 2^22 multiply-adds or more run on every core's OpenMP threads, with the same results;
  // the caller's OpenMP setting is as it was afterwards.
  const int openmp = core::OpenMpThreads::current();
  auto big = [&](int64_t len) { return torch::randn({2, len, 8 * 64}).view({2, len, 8, 64}).transpose(1, 2); };
  const auto bq = big(70), bk = big(70);
  if (core::onednn::available) {
    CHECK(core::onednn::detail::strided_threads(bq, bk.transpose(2, 3)) == std::max(openmp, core::loop_threads()));
    CHECK(core::onednn::detail::strided_threads(q, k.transpose(2, 3)) == openmp);
  }
  CHECK(torch::allclose(core::matmul(bq, bk.transpose(2, 3)), torch::matmul(bq, bk.transpose(2, 3)), 1e-5, 1e-5));
  CHECK(core::OpenMpThreads::current() == openmp);
}
