// Tests of genner/model: experiment aliases, the pointer head, trainable sets,
// device maps and checkpoints of what was trained — on tiny T5 shapes.
#include <genner/model.hpp>

#include <torch/cuda.h>

#include <cmath>
#include <map>

#include "support.hpp"

namespace {

namespace gm = genner::model;
namespace t5 = genner::t5;

// d_model 16, d_ff 32, d_kv 4, 4 heads, 4 blocks, vocabulary 64 (label tokens from 64 on).
using Tiny = t5::StaticBackbone<16, 32, 4, 4, 4, t5::FeedForward::relu, true, 64>;
using TinyGated = t5::StaticBackbone<16, 32, 4, 4, 4, t5::FeedForward::gated_gelu, false, 64>;
constexpr int64_t D = 16, F = 32, INNER = 16, N_BLOCKS = 4, VOCAB = 64, TYPES = 3;

double num(const torch::Tensor& t) { return t.item<double>(); }
int64_t inum(const torch::Tensor& t) { return t.item<int64_t>(); }

gm::NerOptions options() { return gm::NerOptions{}.types(TYPES); }

/// A batch of two sources (second padded), decoder inputs and targets in the 1+L+S space.
struct Batch {
  torch::Tensor src, mask, dec_in, target;
};
Batch batch() {
  Batch b;
  b.src = torch::tensor({{5, 9, 12, 7, 1}, {8, 3, 1, 0, 0}}, torch::kLong);
  b.mask = (b.src != 0).to(torch::kLong);
  b.mask.index_put_({0, 0}, 1);
  // entity (pointer to position 1, type 2), end; second row: (pointer 0, type 1), end, padding
  const int64_t L = TYPES;
  b.target = torch::tensor(std::vector<int64_t>{L + 1 + 1, 2, 0, L + 1 + 0, 1, 0}, torch::kLong).view({2, 3});
  return b;
}
template <class Model>
torch::Tensor dec_input(Model& m, const Batch& b) {
  auto tokens = m->index_to_token(b.target, b.src);
  auto shifted = torch::zeros_like(tokens);
  shifted.narrow(1, 1, tokens.size(1) - 1).copy_(tokens.narrow(1, 0, tokens.size(1) - 1));
  return shifted;
}

template <class E>
gm::NerModel<E> make(uint64_t seed = 7, gm::NerOptions o = options()) {
  torch::manual_seed(seed);
  return gm::NerModel<E>(o);
}

}  // namespace

TEST_CASE("experiment aliases fill every slot with its default", "[model]") {
  using E = gm::ExperimentType<t5::T5Small>;
  STATIC_REQUIRE(std::is_same_v<E::backbone, t5::T5Small>);
  STATIC_REQUIRE(std::is_same_v<E::trainable_what, gm::Everything>);
  STATIC_REQUIRE(E::encoder_mlp::on);
  STATIC_REQUIRE(std::is_same_v<E::head::features, gm::AvgFeature>);
  using A = gm::AdapterTuning<t5::T5Base>;
  STATIC_REQUIRE(std::is_same_v<A::trainable_what, gm::AddedModules>);
  STATIC_REQUIRE(A::train_layer_norms);
  const auto spec = gm::AdapterPromptTuning<t5::T5Large, 768, 20>::spec();
  CHECK(spec.adapters.size == 768);
  CHECK(spec.prompt_length == 20);
  CHECK(spec.adapters.blocks.resolve(24, "encoder") == std::vector<int64_t>{0, 7, 15, 23});
  CHECK(gm::Experiment<>::spec().backbone == "dynamic");
  // Policies may come in any order.
  STATIC_REQUIRE(std::is_same_v<gm::Experiment<gm::SoftPrompt<4>, gm::Backbone<Tiny>>::soft_prompt, gm::SoftPrompt<4>>);
}

TEST_CASE("pointer head scores equal a hand computation", "[model]") {
  auto check_variant = [](auto model, bool mlp, gm::PointerFeatures features) {
    model->eval();
    torch::NoGradGuard no_grad;
    auto b = batch();
    auto dec = dec_input(model, b);
    auto out = model->forward(b.src, b.mask, dec, b.target);
    // By hand: encoder, decoder, then dot products against E[</s>], label rows, pointer features.
    auto& m = *model;
    auto E = m.t5->shared->weight;
    auto H = m.t5->encode(b.src, b.mask).last_hidden_state;
    auto dec_embeds = m.embed(dec);
    auto h = m.t5->decoder->forward(dec_embeds, {}, H, b.mask).last_hidden_state;
    auto Hp = mlp ? m.encoder_mlp->forward(H) : H;
    auto Es = E.index_select(0, b.src.reshape({-1})).view({2, 5, D});
    const int64_t S = 5, L = TYPES;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t t = 0; t < 3; ++t) {
        CHECK(num(out.logits[i][t][0]) == Approx(num(h[i][t].dot(E[1]))).margin(1e-4));
        for (int64_t l = 0; l < L; ++l)
          CHECK(num(out.logits[i][t][1 + l]) ==
                Approx(num(h[i][t].dot(m.label_embeddings[l]))).margin(1e-4));
        for (int64_t p = 0; p < S; ++p) {
          const bool pointable = inum(b.mask[i][p]) == 1 && p < (i == 0 ? 4 : 2);
          const double got = num(out.logits[i][t][1 + L + p]);
          if (!pointable) {
            CHECK(got == t5::lowest_value(torch::kFloat));
            continue;
          }
          double want = num(h[i][t].dot(Hp[i][p]));
          if (features != gm::PointerFeatures::hidden) want = (want + num(h[i][t].dot(Es[i][p]))) / 2;
          CHECK(got == Approx(want).margin(1e-4));
        }
      }
    // The loss is cross-entropy over target indices.
    auto logp = torch::log_softmax(out.logits.to(torch::kDouble), -1);
    double nll = 0;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t t = 0; t < 3; ++t) nll -= num(logp[i][t][inum(b.target[i][t])]);
    CHECK(num(out.loss) == Approx(nll / 6).epsilon(1e-5));
  };
  SECTION("hidden features, no MLP") {
    check_variant(make<gm::ExperimentType<Tiny, gm::NoEncoderMlp, gm::Head<gm::HiddenFeatures>>>(), false,
                  gm::PointerFeatures::hidden);
  }
  SECTION("avg_feature with MLP") {
    check_variant(make<gm::ExperimentType<Tiny>>(), true, gm::PointerFeatures::avg_feature);
  }
  SECTION("avg_score with MLP") {
    check_variant(make<gm::ExperimentType<Tiny, gm::Head<gm::AvgScore>>>(), true, gm::PointerFeatures::avg_score);
  }
}
