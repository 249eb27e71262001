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

/// Never ends a sequence early: rows run to their own length limits.
struct NoEnd : gg::LogitsProcessor {
  void apply(torch::Tensor& log_probs, const gg::StepContext&) override {
    log_probs.select(1, 0).fill_(-std::numeric_limits<float>::infinity());
  }
};

}  // namespace

TEST_CASE("pointer decoding computes no LM head, the MLP and cross keys/values once, and drops finished rows",
          "[decoding]") {
  genner::t5::T5Config c;
  c.vocab_size = 32128;
  c.d_model = 32;
  c.d_ff = 48;
  c.num_heads = 2;
  c.d_kv = 8;  // inner 16: only the MLP is d x d
  c.num_layers = 2;
  c.num_decoder_layers = 3;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
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
