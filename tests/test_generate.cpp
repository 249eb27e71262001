// Tests of genner/generate: Hugging Face parity of greedy and beam search on every fixture preset,
// beam-search semantics on a toy model, pointer NER decoding and its constraints.
#include <genner/generate.hpp>
#include <genner/io/safetensors.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/t5.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <iomanip>
#include <iostream>
#include <map>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;
namespace gen = genner::generate;
using genner::io::SafetensorsFile;

/// support.hpp's relative rule.
double rel_diff(const torch::Tensor& ours, const torch::Tensor& ref) {
  return genner::test::relative_difference(ours, ref);
}

}  // namespace

TEST_CASE("greedy and beam search match Hugging Face on every fixture preset", "[generate][parity]") {
  const auto folders = genner::test::fixture_folders();
  if (folders.empty()) {
    WARN("no fixtures under " << genner::test::fixtures_root() << "; set GENNER_FIXTURES");
    return;
  }
  torch::NoGradGuard no_grad;
  for (const auto& folder : folders) {
    const std::string preset = folder.filename().string();
    INFO("preset " << preset);
    auto model = genner::t5::load_pretrained(folder);
    model->eval();
    SafetensorsFile ref(folder / "reference.safetensors");
    for (const std::string c : {"short", "long"}) {
      INFO("case " << c);
      auto R = [&](const std::string& n) { return ref.load(c + "." + n); };
      const auto ids = R("input_ids"), mask = R("attention_mask");
      for (const bool use_cache : {true, false}) {
        INFO("cache " << use_cache);
        // greedy: raw logits per step, then ids
        auto greedy = gen::generate_lm(model, ids, mask, gen::SearchOptions{}.max_length(8).scores(), {}, use_cache);
        const auto ref_greedy_scores = R("greedy.scores");
        REQUIRE(static_cast<int64_t>(greedy.scores.size()) == ref_greedy_scores.size(0));
        const double greedy_diff = rel_diff(torch::stack(greedy.scores), ref_greedy_scores);
        CHECK(greedy_diff <= genner::test::parity_tolerance);
        const auto ref_greedy = R("greedy.sequences");
        REQUIRE(greedy.sequences.sizes() == ref_greedy.sizes());
        CHECK(torch::equal(greedy.sequences, ref_greedy));

        // beam 4: log-softmax per step (rows batch*4+beam), sequence scores, then ids
        auto beam = gen::generate_lm(model, ids, mask,
                                     gen::SearchOptions{}.beams(4).max_length(8).penalty(1.0).scores(), {}, use_cache);
        const auto ref_beam_scores = R("beam4.scores");
        REQUIRE(static_cast<int64_t>(beam.scores.size()) == ref_beam_scores.size(0));
        const double beam_diff = rel_diff(torch::stack(beam.scores), ref_beam_scores);
        CHECK(beam_diff <= genner::test::parity_tolerance);
        const double seq_score_diff = rel_diff(beam.sequence_scores, R("beam4.sequences_scores"));
        CHECK(seq_score_diff <= genner::test::parity_tolerance);
        const auto ref_beam = R("beam4.sequences");
        REQUIRE(beam.sequences.sizes() == ref_beam.sizes());
        CHECK(torch::equal(beam.sequences, ref_beam));
        std::cout << "  generate parity " << std::left << std::setw(9) << preset << std::setw(6) << c
                  << (use_cache ? "cache   " : "nocache ") << std::scientific << std::setprecision(2)
                  << "greedy.scores " << greedy_diff << "  beam4.scores " << beam_diff << "  beam4.sequences_scores "
                  << seq_score_diff << "\n";
      }
    }
  }
}

namespace {

/// A Markov toy: the logits of a step depend on the step and the previous index only.
struct TableModel {
  struct State {
    int64_t rows = 0;
    int64_t step = 0;
  };
  torch::Tensor table;  // [T, V (previous; row 0 also the start), V]
  torch::Tensor step(State& s, const torch::Tensor& last) {
    auto prev = last.defined() ? last : torch::zeros({s.rows}, torch::kLong);
    return table[s.step++].index_select(0, prev);
  }
  void reorder(State& s, const torch::Tensor& index) { s.rows = index.size(0); }
};
static_assert(gen::StepModel<TableModel>);

}  // namespace

TEST_CASE("beam search with beams to spare is exhaustive under Hugging Face's length penalty", "[generate][beam]") {
  torch::manual_seed(7);
  const int64_t T = 4, V = 3;  // index 0 ends
  TableModel model{torch::randn({T, V, V}) * 2};
  for (const double lp : {0.0, 1.0, 2.0}) {
    INFO("length_penalty " << lp);
    // brute force: every sequence up to T tokens; length counts the start token, not the end
    double best = -1e300;
    std::vector<int64_t> best_seq;
    auto logp = torch::log_softmax(model.table, -1);
    std::function<void(std::vector<int64_t>&, double)> walk = [&](std::vector<int64_t>& seq, double sum) {
      const int64_t t = static_cast<int64_t>(seq.size());
      const int64_t prev = seq.empty() ? 0 : seq.back();
      if (t == T) {
        const double s = sum / std::pow(1.0 + t, lp);
        if (s > best) best = s, best_seq = seq;
        return;
      }
      for (int64_t v = 0; v < V; ++v) {
        const double next = sum + logp[t][prev][v].item<double>();
        if (v == 0) {
          const double s = next / std::pow(1.0 + t, lp);
          if (s > best) best = s, best_seq = seq, best_seq.push_back(0);
        } else {
          seq.push_back(v);
          walk(seq, next);
          seq.pop_back();
        }
      }
    };
    std::vector<int64_t> seq;
    walk(seq, 0.0);
    TableModel::State state{1, 0};
    auto r =
        gen::beam_search(model, state, 1, gen::SearchOptions{}.beams(32).max_length(T).penalty(lp).end_and_pad(0, 0));
    INFO("best brute-force sequence " << torch::tensor(best_seq) << " found " << r.sequences);
    CHECK(std::abs(r.sequence_scores.item<double>() - best) < 1e-5);
    auto got = r.sequences[0];
    for (size_t i = 0; i < best_seq.size(); ++i) CHECK(got[static_cast<int64_t>(i)].item<int64_t>() == best_seq[i]);
  }
}

namespace {

/// Stand-in for genner::model::NerModel (the pointer contract): a random tiny T5 plus a
/// dot-product pointer head over the encoder output.
struct TinyNer {
  genner::t5::T5 t5{nullptr};
  int64_t types = 3;
  int64_t label_offset = 90;

  explicit TinyNer(int64_t seed) {
    torch::manual_seed(seed);
    genner::t5::T5Config c;
    c.vocab_size = 100;
    c.d_model = 32;
    c.d_ff = 64;
    c.d_kv = 8;
    c.num_heads = 4;
    c.num_layers = c.num_decoder_layers = 2;
    t5 = genner::t5::T5(c);
    t5->eval();
  }
  int64_t num_types() const { return types; }
  genner::model::EncodedSource encode(const torch::Tensor& src_ids, const torch::Tensor& src_mask) {
    auto h = t5->encode(src_ids, src_mask).last_hidden_state;
    return {h, src_mask, src_ids, src_mask, h};
  }
  torch::Tensor index_to_token(const torch::Tensor& indices, const torch::Tensor& src_ids) const {
    auto pointer = (indices - (types + 1)).clamp(0, src_ids.size(1) - 1);
    auto out = torch::gather(src_ids, 1, pointer);
    out = torch::where(indices <= types, indices + (label_offset - 1), out);
    return torch::where(indices == 0, torch::ones_like(indices), out);
  }
  torch::Tensor decode_step(const torch::Tensor& token_ids, const genner::model::EncodedSource& src,
                            genner::t5::DecoderCache& cache) {
    auto h = t5->decode(token_ids, src.hidden, src.mask, &cache).last_hidden_state;  // [N, 1, d]
    auto E = t5->shared->weight;
    auto rows = torch::cat({E.narrow(0, 1, 1), E.narrow(0, label_offset, types)});
    auto fixed = torch::matmul(h, rows.t());
    auto pointer = torch::matmul(h, src.features.transpose(1, 2));
    auto keep = ((src.src_ids == 1).to(torch::kLong).cumsum(1) == 0).logical_and(src.src_mask.to(torch::kBool));
    pointer = pointer.masked_fill(keep.logical_not().unsqueeze(1), genner::t5::lowest_value(pointer.scalar_type()));
    return torch::cat({fixed, pointer}, -1);  // [N, 1, 1+L+S]
  }
};

/// A random batch: words of 1-2 pieces, `</s>` last, padded with 0.
struct PointerBatch {
  torch::Tensor ids, mask;
  std::vector<std::vector<int64_t>> word_start, word_end;
};

PointerBatch random_batch(int64_t B, std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> words(3, 9), pieces(1, 2), token(3, 89);
  std::vector<std::vector<int64_t>> rows;
  PointerBatch out;
  int64_t S = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> row, ws, we;
    const auto n = words(rng);
    for (int64_t w = 0; w < n; ++w) {
      ws.push_back(static_cast<int64_t>(row.size()));
      for (auto p = pieces(rng); p > 0; --p) row.push_back(token(rng));
      we.push_back(static_cast<int64_t>(row.size()) - 1);
    }
    row.push_back(1);
    S = std::max<int64_t>(S, static_cast<int64_t>(row.size()));
    rows.push_back(row);
    out.word_start.push_back(ws);
    out.word_end.push_back(we);
  }
  out.ids = torch::zeros({B, S}, torch::kLong);
  out.mask = torch::zeros({B, S}, torch::kLong);
  for (int64_t b = 0; b < B; ++b)
    for (size_t i = 0; i < rows[b].size(); ++i) {
      out.ids[b][static_cast<int64_t>(i)] = rows[b][i];
      out.mask[b][static_cast<int64_t>(i)] = 1;
    }
  return out;
}

}  // namespace

TEST_CASE("pointer decoding: unconstrained output often fails to parse, constrained never does",
          "[generate][pointer]") {
  static_assert(gen::StepModel<gen::PointerStepModel<TinyNer>>);
  static_assert(gen::PointerNerModel<genner::model::NerModelCore>, "the real NER model keeps the pointer contract");
  torch::NoGradGuard no_grad;
  const auto labels = genner::data::LabelSpace::make({"per", "loc", "org"}, std::vector<int64_t>{90, 91, 92});
  std::mt19937 rng(11);
  using genner::data::TargetType;
  for (const auto target : {TargetType::word, TargetType::span}) {
    for (const int64_t beams : {1, 4}) {
      for (const bool no_repeat : {false, true}) {
        INFO("target " << static_cast<int>(target) << " beams " << beams << " no_repeat " << no_repeat);
        int64_t sentences = 0, bad_free = 0, bad_constrained = 0, entities = 0;
        for (int64_t seed = 0; seed < 4; ++seed) {
          TinyNer model(100 + seed);
          const auto batch = random_batch(6, rng);
          gen::PointerDecodeOptions o;
          o.search.beams(beams).max_length(6, 0.5);
          o.target = target;
          o.no_repeat = no_repeat;
          auto free_run =
              gen::decode_entities(model, batch.ids, batch.mask, batch.word_start, batch.word_end, labels, o);
          o.constrained = true;
          auto constrained =
              gen::decode_entities(model, batch.ids, batch.mask, batch.word_start, batch.word_end, labels, o);
          const auto lengths = batch.mask.sum(1);
          for (int64_t b = 0; b < 6; ++b) {
            ++sentences;
            bad_free += free_run.reports[b].invalid > 0;
            bad_constrained += constrained.reports[b].invalid > 0;
            entities += static_cast<int64_t>(constrained.entities[b].size());
            // per-sentence maximum: max_len + floor(max_len_a * source length)
            const int64_t max_new = 6 + lengths[b].item<int64_t>() / 2;
            auto row = constrained.indices[b];
            int64_t generated = row.size(0);  // tokens before the end (0 is both end and pad)
            for (int64_t t = 0; t < row.size(0); ++t)
              if (row[t].item<int64_t>() == 0) {
                generated = t;
                break;
              }
            CHECK(generated <= max_new);
            if (no_repeat) {
              auto es = constrained.entities[b];
              std::sort(es.begin(), es.end());
              CHECK(std::adjacent_find(es.begin(), es.end()) == es.end());
            }
          }
        }
        std::cout << "  pointer " << (target == TargetType::word ? "word" : "span") << " beams " << beams
                  << (no_repeat ? " no-repeat" : "          ") << ": sentences with invalid entities, unconstrained "
                  << bad_free << "/" << sentences << ", constrained " << bad_constrained << "/" << sentences << " ("
                  << entities << " valid entities)\n";
        CHECK(bad_free * 4 >= sentences);  // a good share fails without constraints
        CHECK(bad_constrained == 0);
      }
    }
  }
}

TEST_CASE("contiguous constraints give single-fragment entities on consecutive words", "[generate][pointer]") {
  torch::NoGradGuard no_grad;
  const auto labels = genner::data::LabelSpace::make({"per", "loc", "org"}, std::vector<int64_t>{90, 91, 92});
  std::mt19937 rng(5);
  using genner::data::TargetType;
  for (const auto target : {TargetType::word, TargetType::bpe, TargetType::span}) {
    for (const int64_t beams : {1, 3}) {
      INFO("target " << static_cast<int>(target) << " beams " << beams);
      int64_t gapped_free = 0, gapped_contiguous = 0, entities = 0;
      for (int64_t seed = 0; seed < 4; ++seed) {
        TinyNer model(300 + seed);
        const auto batch = random_batch(6, rng);
        gen::PointerDecodeOptions o;
        o.search.beams(beams).max_length(8, 0.5);
        o.target = target;
        o.constrained = true;
        auto free_run = gen::decode_entities(model, batch.ids, batch.mask, batch.word_start, batch.word_end, labels, o);
        o.contiguous = true;
        auto contiguous =
            gen::decode_entities(model, batch.ids, batch.mask, batch.word_start, batch.word_end, labels, o);
        for (int64_t b = 0; b < 6; ++b) {
          CHECK(contiguous.reports[b].invalid == 0);
          for (const auto& e : free_run.entities[b]) gapped_free += e.fragments.size() > 1;
          for (const auto& e : contiguous.entities[b]) {
            gapped_contiguous += e.fragments.size() > 1;
            ++entities;
          }
        }
      }
      CHECK(gapped_free > 0);  // without the flag, random models do produce gapped entities
      CHECK(gapped_contiguous == 0);
      CHECK(entities > 0);
    }
  }
}
