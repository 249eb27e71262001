// NER decoding does NER's work only, checked with LibTorch's profiler on a model with T5's full
// 32128-row vocabulary: no product touches the vocabulary, the encoder MLP runs once per batch,
// cross-attention keys/values are computed once per batch, and finished rows leave the batch.
#include <genner/genner.hpp>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "support.hpp"

namespace {

namespace gm = genner::model;
namespace gg = genner::generate;
namespace prof = torch::autograd::profiler;

using Model = gm::NerModelImpl<gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>>;

struct Op {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;
};

/// Every operator `f` runs, with its input shapes.
template <class F>
std::vector<Op> profile(F&& f) {
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                                   /*report_input_shapes=*/true));
  f();
  auto lists = prof::disableProfilerLegacy();
  std::vector<Op> out;
  for (auto& list : lists)
    for (auto& e : list)
      if (e.kind() == prof::EventKind::PushRange) out.push_back({e.name(), e.shapes()});
  return out;
}

bool is_product(const std::string& n) {
  return n == "aten::linear" || n == "aten::matmul" || n == "aten::mm" || n == "aten::bmm" || n == "aten::addmm";
}

/// A gated T5 of width 32 (d_ff 48, 2 heads of 8), 2 encoder blocks, over `vocab` rows.
genner::t5::T5Config small_config(int64_t vocab, int64_t decoder_layers) {
  genner::t5::T5Config c;
  c.vocab_size = vocab;
  c.d_model = 32;
  c.d_ff = 48;
  c.num_heads = 2;
  c.d_kv = 8;
  c.num_layers = 2;
  c.num_decoder_layers = decoder_layers;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  return c;
}

/// Never ends a sequence early: rows run to their own length limits.
struct NoEnd : gg::LogitsProcessor {
  void apply(torch::Tensor& log_probs, const gg::StepContext&) override {
    log_probs.select(1, 0).fill_(-std::numeric_limits<float>::infinity());
  }
};

}  // namespace

TEST_CASE("pointer decoding computes no LM head, the MLP and cross keys/values once, and drops finished rows",
          "[decoding]") {
  const auto c = small_config(32128, 3);  // inner 16 (2 heads x 8): only the MLP is d x d
  torch::manual_seed(11);
  Model model(gm::NerOptions{}.types(4).with_config(c));
  model.eval();
  torch::NoGradGuard no_grad;

  // Two sources of length 13 and one of 5 (+ padding): limits 2 + 13/2 = 8 and 2 + 5/2 = 4 steps.
  const int64_t B = 3, S = 13;
  auto src = torch::randint(2, 32000, {B, S}, torch::kLong);
  auto mask = torch::ones({B, S}, torch::kLong);
  src.select(1, S - 1).fill_(1);
  src[1].narrow(0, 4, 1).fill_(1);
  src[1].narrow(0, 5, S - 5).fill_(0);
  mask[1].narrow(0, 5, S - 5).fill_(0);
  const std::vector<int64_t> lengths = {S, 5, S};
  gg::LogitsChain chain;
  chain.emplace<NoEnd>();

  auto run = [&](bool drop, std::vector<Op>* encode_ops, std::vector<Op>* loop_ops) {
    gg::PointerStepModel<Model> step_model(model);
    auto options = gg::SearchOptions{}.end_and_pad(0, 0).max_length(2, 0.5).dropping_finished(drop);
    gg::PointerStepModel<Model>::State state;
    *encode_ops = profile([&] { state = step_model.start(src, mask); });
    gg::SearchResult result;
    *loop_ops = profile([&] { result = gg::greedy_search(step_model, state, B, options, lengths, chain); });
    return result;
  };
  std::vector<Op> enc_drop, loop_drop, enc_keep, loop_keep;
  auto dropped = run(true, &enc_drop, &loop_drop);
  auto kept = run(false, &enc_keep, &loop_keep);

  // Same result either way; rows ran to their limits (8, 4, 8 indices).
  REQUIRE(dropped.sequences.sizes() == kept.sequences.sizes());
  CHECK(torch::equal(dropped.sequences, kept.sequences));
  CHECK(dropped.sequences.size(1) == 8);
  CHECK((dropped.sequences[1].narrow(0, 4, 4) == 0).all().item<bool>());
  CHECK((dropped.sequences[0] != 0).all().item<bool>());

  int64_t linear_steps_full = 0, linear_steps_short = 0, cross_kv = 0, loop_mlp = 0, vocab_products = 0;
  for (const auto* ops : {&enc_drop, &loop_drop, &enc_keep, &loop_keep})
    for (const auto& op : *ops)
      if (is_product(op.name))
        for (const auto& s : op.shapes)
          if (std::find(s.begin(), s.end(), c.vocab_size) != s.end()) ++vocab_products;
  CHECK(vocab_products == 0);  // nothing multiplies by the 32128-row table: no LM head

  auto count_mlp = [&](const std::vector<Op>& ops) {
    int64_t n = 0;  // the MLP's Linear layers are the only d x d weights (a product with W^T)
    for (const auto& op : ops)
      if (op.name == "aten::matmul" && op.shapes.size() >= 2 &&
          op.shapes[1] == std::vector<int64_t>{c.d_model, c.d_model})
        ++n;
    return n;
  };
  CHECK(count_mlp(enc_drop) == 2);
  loop_mlp = count_mlp(loop_drop) + count_mlp(loop_keep);
  CHECK(loop_mlp == 0);

  for (const auto& op : loop_drop) {
    if (op.name != "aten::linear" || op.shapes.empty() || op.shapes[0].size() != 3) continue;
    const auto& in = op.shapes[0];
    if (in[1] == S)
      ++cross_kv;  // keys/values from the encoder output
    else if (in[0] == B)
      ++linear_steps_full;
    else if (in[0] == B - 1)
      ++linear_steps_short;
  }
  CHECK(cross_kv == 2 * c.num_decoder_layers);  // k and v of each decoder block, once
  // Per decoder step: q, k, v, o (self), q, o (cross), wi_0, wi_1, wo per block.
  const int64_t per_step = 9 * c.num_decoder_layers;
  CHECK(linear_steps_full == 4 * per_step);   // steps 1-4 with all three rows
  CHECK(linear_steps_short == 4 * per_step);  // steps 5-8 without the finished row
  int64_t keep_full = 0;
  for (const auto& op : loop_keep)
    if (op.name == "aten::linear" && !op.shapes.empty() && op.shapes[0].size() == 3 && op.shapes[0][0] == B &&
        op.shapes[0][1] != S)
      ++keep_full;
  CHECK(keep_full == 8 * per_step);  // without dropping, every step runs all rows
}

TEST_CASE("self-attention caches fill buffers allocated once per batch, with the results of concatenation",
          "[decoding]") {
  const auto c = small_config(300, 2);
  torch::manual_seed(12);
  Model model(gm::NerOptions{}.types(3).with_config(c));
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t B = 4, S = 9;
  auto src = torch::randint(2, 290, {B, S}, torch::kLong);
  src.select(1, S - 1).fill_(1);
  auto mask = torch::ones({B, S}, torch::kLong);
  const std::vector<int64_t> lengths(B, S);
  gg::LogitsChain chain;
  chain.emplace<NoEnd>();

  // Step by step: one buffer per layer for the whole batch; keys and values are views of it.
  gg::PointerStepModel<Model> step_model(model);
  auto state = step_model.start(src, mask);
  auto last = torch::zeros({B, 1}, torch::kLong);
  const void* buffer = nullptr;
  for (int t = 0; t < 12; ++t) {
    auto logits = step_model.step(state, last);
    last = logits.argmax(-1, true);
    const auto& layer = state.cache.self_attention.at(1);
    REQUIRE(layer.key_buffer.defined());
    CHECK(layer.key.size(2) == t + 1);
    CHECK(layer.key.data_ptr() == layer.key_buffer.data_ptr());
    if (t == 0) buffer = layer.key_buffer.data_ptr();
    CHECK(layer.key_buffer.data_ptr() == buffer);  // 12 steps fit the first allocation
  }

  // Greedy (with rows leaving the batch) and beam search: the same as with the caches autograd
  // gets, concatenated step by step.
  auto decode = [&](int64_t beams, bool buffered) {
    torch::AutoGradMode grad(!buffered);
    gg::PointerStepModel<Model> m(model);
    auto s = m.start(src, mask);
    auto o = gg::SearchOptions{}.end_and_pad(0, 0).max_length(3, 0.5).beams(beams);
    auto r = beams == 1 ? gg::greedy_search(m, s, B, o, lengths, chain) : gg::beam_search(m, s, B, o, lengths, chain);
    if (!buffered) CHECK_FALSE(s.cache.self_attention.at(1).key_buffer.defined());
    return r;
  };
  for (int64_t beams : {1, 3}) {
    INFO("beams " << beams);
    auto buffered = decode(beams, true), concatenated = decode(beams, false);
    CHECK(torch::equal(buffered.sequences, concatenated.sequences));
    CHECK(torch::allclose(buffered.sequence_scores, concatenated.sequence_scores, 1e-5, 1e-6));
  }
}
