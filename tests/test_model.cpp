// Tests of genner/model: experiment aliases, the pointer head, trainable sets,
// device maps and checkpoints of what was trained — on tiny T5 shapes.
#include <genner/core/memory.hpp>
#include <genner/model.hpp>

#include <torch/cuda.h>

#include <cmath>
#include <map>
#include <set>

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
          CHECK(num(out.logits[i][t][1 + l]) == Approx(num(h[i][t].dot(m.label_embeddings[l]))).margin(1e-4));
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

TEST_CASE("index_to_token maps end, types and pointers to decoder tokens", "[model]") {
  auto m = make<gm::ExperimentType<Tiny>>();
  auto b = batch();
  auto idx = torch::tensor(std::vector<int64_t>{0, 1, 3, 4, 8, -100}, torch::kLong).view({1, 6});
  auto tok = m->index_to_token(idx, b.src.narrow(0, 0, 1));
  // 0 -> </s>; type 1 -> 64 (first label token); type 3 -> 66; pointer 0 -> src[0]=5; pointer 4 -> 1; pad -> 0
  CHECK(torch::equal(tok, torch::tensor(std::vector<int64_t>{1, 64, 66, 5, 1, 0}, torch::kLong).view({1, 6})));
  CHECK(m->label_token_id(2) == 65);
}

TEST_CASE("pointer positions at padding and at or after </s> are masked", "[model]") {
  auto m = make<gm::ExperimentType<Tiny>>();
  m->eval();
  torch::NoGradGuard no_grad;
  auto src = torch::tensor(std::vector<int64_t>{5, 1, 9, 0, 7, 8, 9, 1}, torch::kLong).view({2, 4});
  auto mask = torch::tensor(std::vector<int64_t>{1, 1, 1, 0, 1, 1, 1, 1}, torch::kLong).view({2, 4});
  auto logits = m->forward(src, mask, torch::zeros({2, 1}, torch::kLong)).logits;
  const double low = t5::lowest_value(torch::kFloat);
  auto ptr = logits.narrow(-1, 1 + TYPES, 4).squeeze(1);
  CHECK(num(ptr[0][0]) != low);
  CHECK(num(ptr[0][1]) == low);  // </s>
  CHECK(num(ptr[0][2]) == low);  // after </s>
  CHECK(num(ptr[0][3]) == low);  // padding
  for (int p = 0; p < 3; ++p) CHECK(num(ptr[1][p]) != low);
  CHECK(num(ptr[1][3]) == low);
  CHECK(torch::isfinite(logits).all().item<bool>());
}

TEST_CASE("label embeddings start at the mean of their name's pieces, rescaled to the table", "[model]") {
  auto m = make<gm::ExperimentType<Tiny>>();
  {
    torch::NoGradGuard no_grad;
    m->t5->shared->weight.mul_(3.0).add_(0.5);  // table statistics far from the standard normal
  }
  m->init_label_embeddings({{10, 11}, {12}, {13, 14, 15}});
  const auto& table = m->t5->shared->weight;
  for (int64_t t = 0; t < TYPES; ++t) {
    auto row = m->label_embeddings[t];
    CHECK(num(row.mean()) == Approx(num(table.mean())).margin(1e-4));
    CHECK(num(row.std()) == Approx(num(table.std())).epsilon(1e-4));
  }
  // Same direction as the plain mean of the pieces (standardising keeps the shape).
  auto plain = table.index_select(0, torch::tensor(std::vector<int64_t>{10, 11})).mean(0);
  auto centred = plain - plain.mean();
  auto got = m->label_embeddings[0] - m->label_embeddings[0].mean();
  CHECK(num(torch::cosine_similarity(centred, got, 0)) == Approx(1.0).margin(1e-5));
  CHECK_THROWS_AS(m->init_label_embeddings({{1}}), genner::Error);
}

TEST_CASE("the initial loss on a random sentence is sane", "[model]") {
  auto m = make<gm::AdapterTuning<Tiny, 8>>();
  m->init_label_embeddings({{10}, {11, 12}, {13}});
  torch::manual_seed(3);
  auto src = torch::randint(2, 60, {4, 12}, torch::kLong);
  src.select(1, 11).fill_(1);
  auto mask = torch::ones_like(src);
  // entities: pointer, type, end
  auto target = torch::tensor(std::vector<int64_t>{4 + 2, 1, 4 + 5, 2, 0}, torch::kLong).view({1, 5}).repeat({4, 1});
  auto dec = dec_input(m, {src, mask, {}, target});
  auto out = m->forward(src, mask, dec, target);
  const double uniform = std::log(1.0 + TYPES + 12);
  INFO("initial loss " << num(out.loss) << ", uniform guess " << uniform);
  CHECK(std::isfinite(num(out.loss)));
  CHECK(num(out.loss) < 10 * uniform);  // the published failure mode is > 200
}

TEST_CASE("incremental decode_step reproduces teacher-forced logits", "[model]") {
  auto m = make<gm::ExperimentType<Tiny, gm::SoftPrompt<4>, gm::Head<gm::AvgScore>>>();
  m->eval();
  torch::NoGradGuard no_grad;
  auto b = batch();
  auto dec = dec_input(m, b);
  auto full = m->forward(b.src, b.mask, dec).logits;
  auto source = m->encode(b.src, b.mask);
  CHECK(source.hidden.size(1) == 5);    // the prompt is stripped before cross-attention
  CHECK(source.features.size(1) == 5);  // and before pointing
  t5::DecoderCache cache;
  for (int64_t t = 0; t < 3; ++t) {
    auto step = m->decode_step(dec.narrow(1, t, 1), source, cache);
    CHECK(step.sizes() == torch::IntArrayRef{2, 1 + TYPES + 5});
    CHECK(torch::allclose(step, full.select(1, t), 1e-4, 1e-4));
  }
}

// ---- trainable sets ----------------------------------------------------------------------------

namespace {

// Closed forms for Tiny: d=16, d_ff=32, inner=16, 4+4 blocks, 4 heads, 32 buckets, vocab 64, 3 types.
constexpr int64_t LABELS = TYPES * D;
constexpr int64_t MLP = 2 * (D * D + D);
constexpr int64_t NORMS = (N_BLOCKS * 2 + 1) * D + (N_BLOCKS * 3 + 1) * D;
constexpr int64_t ATTN = 4 * D * INNER, FF = 2 * D * F, BIAS = 32 * 4;
constexpr int64_t BACKBONE = VOCAB * D + N_BLOCKS * (ATTN + FF) + N_BLOCKS * (2 * ATTN + FF) + 2 * BIAS + NORMS;
constexpr int64_t adapter(int64_t m) { return 2 * D * m + m + D; }
// Published spread of 4 blocks = {0, 1, 3}: encoder 3 blocks x 2 sites, decoder 3 blocks x 3 sites.
constexpr int64_t ADAPTER_SITES = 3 * 2 + 3 * 3;
// LoRA on q and v of every attention: 4 encoder + 8 decoder attentions.
constexpr int64_t lora_qv(int64_t r) { return 12 * 2 * r * (D + INNER); }

using FullE = gm::FullFineTuning<Tiny>;
using EmbedE = gm::EmbeddingTuning<Tiny>;
using PromptE = gm::PromptTuning<Tiny, 5>;
using AdapterE = gm::AdapterTuning<Tiny, 8>;
using AdapterPromptE = gm::AdapterPromptTuning<Tiny, 8, 5>;
using LoraE = gm::LoraTuning<Tiny, 2>;
using LoraGatedE =
    gm::ExperimentType<TinyGated, gm::Lora<2, 4, gm::lora::Q, gm::lora::Wi0, gm::lora::Wi1, gm::lora::Wo>,
                       gm::NoEncoderMlp>;
using AdapterEncoderE =
    gm::ExperimentType<Tiny, gm::Adapters<4, gm::AdapterSites<false, false, true>, gm::EveryKth<2>, gm::EncoderStack>,
                       gm::Trainable<gm::AddedModules, gm::WithoutLayerNorms>>;

template <class E>
int64_t expected_trainable();
template <>
int64_t expected_trainable<FullE>() {
  return BACKBONE + MLP + LABELS;
}
template <>
int64_t expected_trainable<EmbedE>() {
  return VOCAB * D + MLP + LABELS;
}
template <>
int64_t expected_trainable<PromptE>() {
  return 5 * D + MLP + LABELS;
}
template <>
int64_t expected_trainable<AdapterE>() {
  return ADAPTER_SITES * adapter(8) + NORMS + MLP + LABELS;
}
template <>
int64_t expected_trainable<AdapterPromptE>() {
  return ADAPTER_SITES * adapter(8) + 5 * D + NORMS + MLP + LABELS;
}
template <>
int64_t expected_trainable<LoraE>() {
  return lora_qv(2) + MLP + LABELS;
}
// q on 12 attentions; wi_0, wi_1 [32x16] and wo [16x32] on 8 feed-forwards; no MLP.
template <>
int64_t expected_trainable<LoraGatedE>() {
  return 12 * 2 * (D + INNER) + 8 * 3 * 2 * (D + F) + LABELS;
}
// Feed-forward only, encoder blocks {0, 2}.
template <>
int64_t expected_trainable<AdapterEncoderE>() {
  return 2 * adapter(4) + MLP + LABELS;
}

}  // namespace

TEMPLATE_TEST_CASE("trainable-parameter counts equal the closed form", "[model]", FullE, EmbedE, PromptE, AdapterE,
                   AdapterPromptE, LoraE, LoraGatedE, AdapterEncoderE) {
  auto m = make<TestType>();
  CHECK(m->count_trainable() == expected_trainable<TestType>());
  int64_t flagged = 0;
  for (const auto& p : m->parameters()) flagged += p.requires_grad() ? p.numel() : 0;
  CHECK(flagged == expected_trainable<TestType>());  // frozen = requires_grad false, nothing else
}

TEMPLATE_TEST_CASE("after AdamW steps frozen parameters are bit-identical and trainable ones moved", "[model]", FullE,
                   EmbedE, PromptE, AdapterE, AdapterPromptE, LoraE, LoraGatedE) {
  auto m = make<TestType>();
  m->train();
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : m->named_parameters()) before[p.key()] = p.value().detach().clone();
  auto opt = m->make_adamw(1e-2);
  auto b = batch();
  auto dec = dec_input(m, b);
  for (int step = 0; step < 3; ++step) {
    opt->zero_grad();
    m->forward(b.src, b.mask, dec, b.target).loss.backward();
    opt->step();
  }
  for (const auto& p : m->named_parameters()) {
    INFO(p.key());
    if (m->is_trainable(p.key())) {
      CHECK_FALSE(torch::equal(p.value(), before[p.key()]));
    } else {
      CHECK(torch::equal(p.value(), before[p.key()]));
      CHECK_FALSE(p.value().grad().defined());
    }
  }
}

TEST_CASE("full fine-tuning has three parameter groups with the published weight decay", "[model]") {
  auto m = make<FullE>();
  auto groups = m->parameter_groups();
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].name == "new_modules");
  CHECK(groups[1].name == "backbone");
  CHECK(groups[1].weight_decay == 0.01);
  CHECK(groups[2].name == "layer_norms");
  CHECK(groups[2].weight_decay == 0.0);
  int64_t norms = 0, added = 0;
  for (const auto& p : groups[2].parameters) norms += p.numel();
  for (const auto& p : groups[0].parameters) added += p.numel();
  CHECK(norms == NORMS);
  CHECK(added == MLP + LABELS);
  auto a = make<AdapterE>()->parameter_groups();
  REQUIRE(a.size() == 2);  // new modules and layer norms; the backbone is frozen
}

TEST_CASE("merged LoRA factors reproduce the unmerged outputs", "[model]") {
  auto m = make<LoraE>();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1);
  }
  m->eval();
  torch::NoGradGuard no_grad;
  auto b = batch();
  auto dec = dec_input(m, b);
  auto before = m->forward(b.src, b.mask, dec).logits;
  m->merge_lora();
  auto after = m->forward(b.src, b.mask, dec).logits;
  CHECK(torch::allclose(before, after, 1e-4, 1e-4));
}

// ---- device maps ---------------------------------------------------------------------------------

namespace {
template <class Model>
void copy_parameters(Model& to, const gm::NerModelCore& from) {
  torch::NoGradGuard no_grad;
  auto src = from.named_parameters();
  for (auto& p : to->named_parameters()) p.value().copy_(src[p.key()].to(p.value().device()));
}
using Single = gm::ExperimentType<Tiny, gm::Adapters<4>, gm::SoftPrompt<3>>;
using Staged = gm::ExperimentType<Tiny, gm::Adapters<4>, gm::SoftPrompt<3>, gm::DeviceMap<gm::Balanced<3>>>;
using Ranged =
    gm::ExperimentType<Tiny, gm::Adapters<4>, gm::SoftPrompt<3>,
                       gm::DeviceMap<gm::LayerRanges<gm::EncoderRanges<gm::Range<0, 1, 0>, gm::Range<1, 4, 1>>,
                                                     gm::DecoderRanges<gm::Range<0, 2, 1>, gm::Range<2, 4, 0>>>>>;
}  // namespace

TEST_CASE("device maps place blocks by stage; multi-stage maps onto cpu match one device", "[model]") {
  auto plan = Staged::spec().device_map;
  auto [enc, dec] = plan.ordinals(4, 4);
  CHECK(enc == std::vector<int64_t>{0, 0, 0, 1});
  CHECK(dec == std::vector<int64_t>{1, 1, 2, 2});
  auto ranged = Ranged::spec().device_map.ordinals(4, 4);
  CHECK(ranged.first == std::vector<int64_t>{0, 1, 1, 1});
  CHECK(ranged.second == std::vector<int64_t>{1, 1, 0, 0});
  CHECK_THROWS_WITH(gm::NerModel<Staged>(options().on({torch::kCPU, torch::kCPU})),
                    Catch::Contains("lists only 2 devices"));
  // A CUDA device this LibTorch cannot see (every device on a CPU-only build): a sentence naming it.
  const auto visible = static_cast<int64_t>(torch::cuda::device_count());
  const torch::Device absent(torch::kCUDA, static_cast<c10::DeviceIndex>(visible));
  CHECK_THROWS_AS(gm::NerModel<Staged>(options().on({torch::kCPU, absent, absent})), genner::Error);
  CHECK_THROWS_WITH(gm::NerModel<Staged>(options().on({torch::kCPU, absent, absent})),
                    Catch::Contains("ordinal 1 is " + absent.str()) &&
                        Catch::Contains(visible == 0 ? "sees no CUDA device" : "CUDA device(s) are visible"));

  auto one = make<Single>();
  one->eval();
  auto b = batch();
  auto dec_in = dec_input(one, b);
  auto ref = one->forward(b.src, b.mask, dec_in, b.target);
  auto check = [&](auto staged) {
    copy_parameters(staged, *one);
    staged->eval();
    auto out = staged->forward(b.src, b.mask, dec_in, b.target);
    CHECK(torch::equal(out.logits, ref.logits));
    CHECK(num(out.loss) == num(ref.loss));
  };
  check(gm::NerModel<Staged>(options().on({torch::kCPU, torch::kCPU, torch::kCPU})));
  check(gm::NerModel<Ranged>(options().on({torch::kCPU, torch::kCPU})));
}

TEST_CASE("a model split across cpu and cuda:0 matches the cpu model and trains", "[model][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("CUDA is not available: skipping the cpu + cuda:0 device-map test");
    return;
  }
  const torch::Device cpu(torch::kCPU), gpu(torch::kCUDA, 0);
  auto one = make<Single>();
  one->eval();
  auto b = batch();
  auto dec_in = dec_input(one, b);
  auto ref = one->forward(b.src, b.mask, dec_in, b.target);
  auto staged = gm::NerModel<Staged>(options().on({cpu, gpu, gpu}));
  copy_parameters(staged, *one);
  // Every module was placed at build: embeddings and prompt on stage 0, the last blocks on cuda.
  CHECK(staged->t5->shared->weight.device() == cpu);
  CHECK(staged->soft_prompt.device() == cpu);
  CHECK(staged->t5->encoder->block_at(3)->parameters().front().device() == gpu);
  CHECK(staged->t5->decoder->block_at(3)->parameters().front().device() == gpu);
  CHECK(staged->encoder_mlp->parameters().front().device() == gpu);
  staged->eval();
  auto out = staged->forward(b.src, b.mask, dec_in, b.target);
  CHECK(out.logits.device() == gpu);
  CHECK(torch::allclose(out.logits.cpu(), ref.logits, 1e-4, 1e-4));
  CHECK(num(out.loss.cpu()) == Approx(num(ref.loss)).margin(1e-4));
  staged->train();
  auto opt = staged->make_adamw(1e-3);
  std::map<std::string, torch::Device> placed;
  for (const auto& p : staged->named_parameters()) placed.emplace(p.key(), p.value().device());
  opt->zero_grad();
  staged->forward(b.src, b.mask, dec_in, b.target).loss.backward();
  opt->step();
  for (const auto& p : staged->named_parameters()) {
    INFO(p.key());
    CHECK(p.value().device() == placed.at(p.key()));  // nothing moved weights
    if (p.value().grad().defined()) CHECK(p.value().grad().device() == p.value().device());
  }
}

// ---- checkpoints ---------------------------------------------------------------------------------

TEST_CASE("checkpoints hold only the trainable tensors and refuse another experiment", "[model]") {
  genner::test::TempDir dir;
  const auto path = dir.path / "trained.safetensors";
  auto m = make<AdapterPromptE>(1);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters())
      if (p.requires_grad()) p.add_(0.25);
  }
  gm::save_trained(*m, path);
  genner::io::SafetensorsFile file(path);
  CHECK(static_cast<int64_t>(file.entries().size()) == static_cast<int64_t>(m->trainable_parameters().size()));
  CHECK(file.contains("label_embeddings"));
  CHECK(file.contains("soft_prompt"));
  CHECK_FALSE(file.contains("t5.shared.weight"));

  auto fresh = make<AdapterPromptE>(2);
  gm::load_trained(*fresh, path);
  auto theirs = m->named_parameters();
  for (const auto& p : fresh->named_parameters())
    if (fresh->is_trainable(p.key())) CHECK(torch::equal(p.value(), theirs[p.key()]));

  auto other = make<AdapterE>();
  CHECK_THROWS_WITH(gm::load_trained(*other, path), Catch::Contains("was trained with experiment") &&
                                                        Catch::Contains("build the model with the experiment alias"));
  auto more_types = make<AdapterPromptE>(2, gm::NerOptions{}.types(TYPES + 1));
  CHECK_THROWS_WITH(gm::load_trained(*more_types, path), Catch::Contains("entity types"));
}

TEST_CASE("LoRA factors round-trip through the Hugging Face PEFT layout", "[model]") {
  genner::test::TempDir dir;
  auto m = make<LoraE>(1);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->named_parameters())
      if (p.key().find("lora_") != std::string::npos) p.value().normal_();
  }
  gm::export_peft_lora(*m, dir.path, "t5-small");
  auto config = nlohmann::json::parse(std::ifstream(dir.path / "adapter_config.json"));
  CHECK(config["peft_type"] == "LORA");
  CHECK(config["r"] == 2);
  CHECK(config["lora_alpha"] == 16.0);
  CHECK(config["target_modules"] == nlohmann::json({"q", "v"}));
  genner::io::SafetensorsFile file(dir.path / "adapter_model.safetensors");
  CHECK(file.contains("base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight"));
  CHECK(file.contains("base_model.model.decoder.block.3.layer.1.EncDecAttention.v.lora_B.weight"));
  CHECK(file.entries().size() == 12 * 2 * 2);

  auto fresh = make<LoraE>(2);
  gm::import_peft_lora(*fresh, dir.path);
  auto theirs = m->named_parameters();
  for (const auto& p : fresh->named_parameters())
    if (p.key().find("lora_") != std::string::npos) CHECK(torch::equal(p.value(), theirs[p.key()]));
  auto rank4 = make<gm::LoraTuning<Tiny, 4>>();
  CHECK_THROWS_WITH(gm::import_peft_lora(*rank4, dir.path), Catch::Contains("r=2"));
}

TEST_CASE("from_pretrained loads a Hugging Face folder under an adapter experiment", "[model]") {
  genner::test::TempDir dir;
  torch::manual_seed(5);
  t5::T5 plain(Tiny::config());
  t5::save_pretrained(*plain, dir.path);
  using E = gm::AdapterPromptTuning<Tiny, 4, 2>;
  gm::NerModel<E> m(gm::NerModelImpl<E>::from_pretrained(dir.path, options()));
  CHECK(torch::equal(m->t5->shared->weight, plain->shared->weight));
  CHECK(torch::equal(m->t5->decoder->block_at(3)->feed_forward()->dense->wo->weight,
                     plain->decoder->block_at(3)->feed_forward()->dense->wo->weight));
  CHECK_FALSE(m->t5->encoder->block_at(0)->self_attention()->adapter.is_empty());
  // The prompt starts from the rows prompt_rows() names (offset-90 upwards; row 0 on this tiny table).
  const auto rows = gm::NerModelCore::prompt_rows(VOCAB, 2);
  CHECK(rows == std::vector<int64_t>{0, 1});
  CHECK(torch::equal(m->soft_prompt[0], plain->shared->weight[rows[0]]));
  CHECK(torch::equal(m->soft_prompt[1], plain->shared->weight[rows[1]]));
  CHECK(m->count_trainable() ==
        expected_trainable<AdapterPromptE>() - ADAPTER_SITES * (adapter(8) - adapter(4)) - 3 * D);
}

namespace {
/// Gradients of every trainable tensor of `m` after one backward pass on batch(), with dropout on
/// and seeded (two models of the same weights draw the same dropout masks), or off.
template <class M>
std::map<std::string, torch::Tensor> trainable_gradients(M& m, bool dropout = true) {
  if (dropout) m->train();
  else m->eval();
  auto b = batch();
  auto dec = dec_input(m, b);
  torch::manual_seed(11);
  m->forward(b.src, b.mask, dec, b.target).loss.backward();
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m->named_parameters())
    if (p.value().requires_grad()) out[p.key()] = p.value().grad().clone();
  return out;
}

template <class E>
std::map<std::string, torch::Tensor> gradients(bool checkpointing) {
  auto m = make<E>();
  m->set_checkpointing(checkpointing);
  return trainable_gradients(m);
}
}  // namespace

TEMPLATE_TEST_CASE("activation checkpointing gives the gradients of the plain backward pass", "[model]", FullE,
                   AdapterE, PromptE, LoraE, AdapterEncoderE) {
  const auto plain = gradients<TestType>(false);
  const auto recomputed = gradients<TestType>(true);
  REQUIRE(plain.size() == recomputed.size());
  REQUIRE_FALSE(plain.empty());
  int64_t nonzero = 0;
  for (const auto& [name, g] : plain) {
    INFO(name);
    REQUIRE(recomputed.count(name));
    const auto& r = recomputed.at(name);
    REQUIRE(r.defined());
    const double scale = std::max(num(g.abs().max()), 1e-30);
    CHECK(num((g - r).abs().max()) / scale <= 1e-6);
    nonzero += num(g.abs().sum()) > 0;
  }
  CHECK(nonzero > 0);
}

namespace {
/// How many recomputing block nodes the graph behind `t` holds.
int64_t recomputed_blocks(const torch::Tensor& t) {
  std::vector<torch::autograd::Node*> todo{t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  int64_t n = 0;
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    n += node->name().find("BlockRecompute") != std::string::npos;
    for (const auto& e : node->next_edges()) todo.push_back(e.function.get());
  }
  return n;
}
}  // namespace

TEST_CASE("activation checkpointing applies to every block, only while training with gradients", "[model]") {
  auto m = make<AdapterE>();
  auto b = batch();
  auto dec = dec_input(m, b);
  m->train();
  CHECK(recomputed_blocks(m->forward(b.src, b.mask, dec, b.target).loss) == 0);
  m->set_checkpointing(true);
  CHECK(recomputed_blocks(m->forward(b.src, b.mask, dec, b.target).loss) == 2 * N_BLOCKS);
  m->eval();
  torch::NoGradGuard no_grad;
  auto c = m->forward(b.src, b.mask, dec, b.target).loss;
  m->set_checkpointing(false);
  auto a = m->forward(b.src, b.mask, dec, b.target).loss;
  CHECK(torch::equal(a, c));
}

namespace {
/// Trainable gradients of one backward pass with the frozen projections stored as `storage`, with
/// dropout off: each mask realisation would weigh the rounding differently.
template <class E>
std::map<std::string, torch::Tensor> gradients_with_storage(t5::WeightStorage storage, int64_t* stored = nullptr) {
  auto m = make<E>();
  const auto n = m->store_frozen(storage);
  if (stored) *stored = n;
  return trainable_gradients(m, false);
}
/// The relative difference ||a - b|| / ||a|| of all trainable gradients taken as one vector.
double worst_relative(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  double diff = 0, norm = 0;
  for (const auto& [k, g] : a) {
    diff += (g - b.at(k)).pow(2).sum().item<double>();
    norm += g.pow(2).sum().item<double>();
  }
  return std::sqrt(diff / norm);
}
}  // namespace

TEMPLATE_TEST_CASE("frozen weights stored in bf16 or int8 give the fp32-stored gradients within tolerance", "[model]",
                   AdapterE, PromptE, LoraE, EmbedE, LoraGatedE) {
  int64_t stored_bf16 = 0, stored_int8 = 0;
  const auto fp32 = gradients_with_storage<TestType>(t5::WeightStorage::fp32);
  const auto bf16 = gradients_with_storage<TestType>(t5::WeightStorage::bf16, &stored_bf16);
  const auto int8 = gradients_with_storage<TestType>(t5::WeightStorage::int8, &stored_int8);
  CHECK(stored_bf16 > 0);
  CHECK(stored_int8 == stored_bf16);
  REQUIRE(bf16.size() == fp32.size());
  REQUIRE(int8.size() == fp32.size());
  // Relative L2 difference of all trainable gradients against the fp32-stored backbone: the
  // rounding of the frozen weights alone (bf16: 8 bits of mantissa; int8: half a step per row).
  const double e_bf16 = worst_relative(fp32, bf16), e_int8 = worst_relative(fp32, int8);
  INFO("relative gradient difference: bf16 " << e_bf16 << ", int8 " << e_int8);
  CHECK(e_bf16 > 0);  // the storage is really used
  CHECK(e_bf16 <= 0.08);
  CHECK(e_int8 > 0);
  CHECK(e_int8 <= 0.08);
}

TEMPLATE_TEST_CASE("stored frozen weights compute exactly what their widened values compute", "[model]", AdapterE,
                   LoraGatedE) {
  // The same weights once as int8 (or bf16) storage and once as fp32 parameters holding the
  // widened values: forward and backward must agree, so the storage adds no error of its own.
  for (auto storage : {t5::WeightStorage::bf16, t5::WeightStorage::int8}) {
    auto stored = make<TestType>();
    stored->store_frozen(storage);
    auto dense = make<TestType>();
    {
      torch::NoGradGuard no_grad;
      auto a = stored->named_modules();
      auto b = dense->named_modules();
      for (const auto& item : a) {
        auto* p = item.value()->template as<t5::ProjectionImpl>();
        if (p && p->storage() != t5::WeightStorage::fp32)
          b[item.key()]->template as<t5::ProjectionImpl>()->weight.copy_(p->dense_weight());
      }
    }
    const auto gs = trainable_gradients(stored), gd = trainable_gradients(dense);
    CHECK(worst_relative(gd, gs) <= 1e-5);
  }
}

TEST_CASE("a stored weight widened block by block gives the whole widened weight's product and gradient", "[model]") {
  // More output rows than one widening block (t5::detail::widen_block_rows), and a last block cut short.
  const int64_t in = 64, out = 2 * t5::detail::widen_block_rows(in) + 37;
  torch::manual_seed(5);
  const auto dense = torch::randn({out, in}) / 8;
  const auto scale = dense.abs().amax(1) / 127;
  const auto int8 = (dense / scale.unsqueeze(1)).round().clamp(-127, 127).to(torch::kChar);
  for (const auto& [stored, s] : {std::pair{dense.to(torch::kBFloat16), torch::Tensor()}, std::pair{int8, scale}}) {
    const auto widened = t5::detail::dense_weight(stored, s, torch::kFloat);
    auto x = torch::randn({3, 5, in}, torch::requires_grad());
    auto x_ref = x.detach().clone().requires_grad_();
    auto y = t5::detail::FrozenLinear::apply(x, stored, s.defined() ? s : torch::empty({0}));
    auto y_ref = at::linear(x_ref, widened);
    CHECK(y.sizes() == y_ref.sizes());
    CHECK(((y - y_ref).norm() / y_ref.norm()).item<double>() <= 1e-6);
    const auto g = torch::randn_like(y);
    y.backward(g);
    y_ref.backward(g);
    CHECK(((x.grad() - x_ref.grad()).norm() / x_ref.grad().norm()).item<double>() <= 1e-6);
  }
}

TEST_CASE("frozen storage keeps only the stored form and refuses a model with nothing frozen", "[model]") {
  auto m = make<AdapterE>();
  int64_t fp32_bytes = 0;
  for (const auto& p : m->parameters()) fp32_bytes += p.numel() * static_cast<int64_t>(p.element_size());
  m->store_frozen(t5::WeightStorage::int8);
  int64_t bytes = 0, int8_tensors = 0;
  for (const auto& item : m->named_modules()) {
    auto* proj = item.value()->as<t5::ProjectionImpl>();
    if (!proj) continue;
    INFO(item.key());
    CHECK(proj->weight.scalar_type() == torch::kChar);
    CHECK(proj->weight_scale.defined());
    CHECK(proj->storage() == t5::WeightStorage::int8);
    ++int8_tensors;
  }
  for (const auto& p : m->parameters()) bytes += p.numel() * static_cast<int64_t>(p.element_size());
  CHECK(int8_tensors > 0);
  CHECK(bytes < fp32_bytes);
  // The dequantized weight is within half a step of each row's scale of the original.
  auto fresh = make<AdapterE>();
  auto* q = m->t5->encoder->block_at(0)->self_attention()->attention->q.get();
  auto* w = fresh->t5->encoder->block_at(0)->self_attention()->attention->q.get();
  const auto err = (q->dense_weight() - w->weight).abs().amax(1);
  CHECK((err <= q->weight_scale * 0.5 + 1e-7).all().item<bool>());

  auto full = make<FullE>();
  CHECK_THROWS_WITH(full->store_frozen(t5::WeightStorage::bf16), Catch::Contains("no frozen weight to store"));
}

namespace {
using PlanD = t5::StaticBackbone<64, 256, 16, 4, 2, t5::FeedForward::relu, true, 400>;
using PlanGated = t5::StaticBackbone<64, 192, 16, 4, 2, t5::FeedForward::gated_gelu, false, 400>;

/// The plan's total beside the peak bytes of tensor storage that two training steps allocate.
template <class E>
std::pair<int64_t, int64_t> planned_and_measured(bool checkpointing, t5::WeightStorage storage,
                                                 gm::Precision precision = gm::Precision::fp32) {
  auto& counter = genner::core::TensorMemoryCounter::install();
  const int64_t before = counter.live();
  const int64_t B = 8, S = 40, T = 12, L = 4;
  torch::manual_seed(3);
  auto m = gm::NerModel<E>(gm::NerOptions{}.types(L));
  m->store_frozen(storage);
  m->set_checkpointing(checkpointing);
  m->train();
  const auto plan = gm::plan_memory(*m, {B, S, T}, precision, checkpointing);
  auto opt = m->make_adamw(1e-3);
  auto src = torch::randint(2, 400, {B, S}, torch::kLong);
  src.select(1, S - 1).fill_(1);
  auto mask = torch::ones_like(src);
  auto target = torch::randint(1 + L, 1 + L + S - 1, {B, T}, torch::kLong);
  target.select(1, T - 1).fill_(0);
  auto tokens = m->index_to_token(target, src);
  auto dec = torch::zeros_like(tokens);
  dec.narrow(1, 1, T - 1).copy_(tokens.narrow(1, 0, T - 1));
  counter.reset_peak();
  for (int step = 0; step < 2; ++step) {
    opt->zero_grad();
    {
      gm::Autocast ac(precision);
      auto loss = m->forward(src, mask, dec, target).loss;
      loss.backward();
    }
    opt->step();
  }
  return {plan.total(), counter.peak() - before};
}
}  // namespace

TEST_CASE("the memory plan predicts the peak tensor memory of training within 15%", "[model][memory]") {
  using Full = gm::FullFineTuning<PlanD>;
  using Adapt = gm::AdapterTuning<PlanGated, 16>;
  struct Case {
    const char* name;
    std::pair<int64_t, int64_t> result;
  };
  const std::vector<Case> cases = {
      {"full fine-tuning", planned_and_measured<Full>(false, t5::WeightStorage::fp32)},
      {"full fine-tuning, checkpointing", planned_and_measured<Full>(true, t5::WeightStorage::fp32)},
      {"adapters, gated", planned_and_measured<Adapt>(false, t5::WeightStorage::fp32)},
      {"adapters, gated, checkpointing", planned_and_measured<Adapt>(true, t5::WeightStorage::fp32)},
      {"adapters, bf16-stored backbone", planned_and_measured<Adapt>(false, t5::WeightStorage::bf16)},
      {"adapters, int8-stored backbone, checkpointing", planned_and_measured<Adapt>(true, t5::WeightStorage::int8)},
  };
  for (const auto& c : cases) {
    const auto [planned, measured] = c.result;
    INFO(c.name << ": planned " << planned << " bytes, measured peak " << measured << " bytes");
    CHECK(measured > 0);
    CHECK(std::abs(static_cast<double>(planned - measured)) / static_cast<double>(measured) <= 0.15);
  }
  // Checkpointing and a narrower backbone each lower the measured peak.
  CHECK(cases[1].result.second < cases[0].result.second);
  CHECK(cases[3].result.second < cases[2].result.second);
  CHECK(cases[4].result.second < cases[2].result.second);
}

TEST_CASE("a memory budget below the plan is refused with the plan's parts", "[model][memory]") {
  auto m = make<AdapterE>();
  const auto plan = gm::plan_memory(*m, {8, 30, 10});
  CHECK_NOTHROW(plan.check_budget(plan.total() * 2, "--memory_budget"));
  CHECK_NOTHROW(plan.check_budget(0, "--memory_budget"));
  CHECK_THROWS_WITH(plan.check_budget(plan.total() / 2, "--memory_budget"),
                    Catch::Contains("--memory_budget: the memory plan needs") && Catch::Contains("gradient_checkpointing"));
  CHECK(gm::parse_bytes("20GB", "b") == 20000000000LL);
  CHECK(gm::parse_bytes("1.5GiB", "b") == 1610612736LL);
  CHECK(gm::parse_bytes("4096", "b") == 4096);
  CHECK_THROWS_WITH(gm::parse_bytes("lots", "--memory_budget"), Catch::Contains("--memory_budget: expected a size"));
}

TEST_CASE("a checkpoint loads tensor by tensor into its storage form, beside one checkpoint tensor at most",
          "[model][memory]") {
  using Adapt = gm::AdapterTuning<PlanD, 16>;
  genner::test::TempDir tmp;
  int64_t largest = 0;
  std::map<std::string, torch::Tensor> source;
  {
    torch::manual_seed(5);
    t5::T5 written(PlanD::config());
    t5::save_pretrained(*written, tmp.path);
    for (const auto& p : written->named_parameters()) {
      largest = std::max<int64_t>(largest, p.value().numel() * 4);
      source[p.key()] = p.value().detach().clone();
    }
  }
  auto& counter = genner::core::TensorMemoryCounter::install();
  for (auto storage : {t5::WeightStorage::fp32, t5::WeightStorage::bf16, t5::WeightStorage::int8}) {
    INFO("storage " << static_cast<int>(storage));
    const int64_t before = counter.live();
    counter.reset_peak();
    auto options = gm::NerOptions{}.types(4);
    options.frozen_storage = storage;
    auto m = gm::NerModelImpl<Adapt>::from_pretrained(tmp.path, options);
    const int64_t peak = counter.peak() - before;
    int64_t model_bytes = 0;
    for (const auto& p : m->parameters()) model_bytes += p.numel() * static_cast<int64_t>(p.element_size());
    for (const auto& b : m->buffers()) model_bytes += b.numel() * static_cast<int64_t>(b.element_size());
    for (const auto& item : m->t5->named_modules()) {
      auto* p = item.value()->as<t5::ProjectionImpl>();
      if (!p) continue;
      CHECK(p->storage() == storage);
      if (p->weight_scale.defined()) model_bytes += p->weight_scale.numel() * 4;
      const auto& w = source.at(item.key() + ".weight");
      const auto dense = p->dense_weight();
      if (storage == t5::WeightStorage::fp32) CHECK(torch::equal(dense, w));
      if (storage == t5::WeightStorage::int8)
        CHECK((dense - w).abs().amax(1).le(p->weight_scale * 0.5 + 1e-7).all().item<bool>());
      if (storage == t5::WeightStorage::bf16) CHECK(torch::allclose(dense, w, 1e-2, 1e-6));
    }
    INFO("peak " << peak << " bytes, model " << model_bytes << " bytes, largest tensor " << largest << " bytes");
    CHECK(peak <= model_bytes + 3 * largest);
  }
}
