// Tests of genner/generate: Hugging Face parity of greedy and beam search on every fixture preset,
// beam-search semantics on a toy model, pointer NER decoding and its constraints.
#include <genner/generate.hpp>
#include <genner/io/safetensors.hpp>
#include <genner/t5.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;
namespace gen = genner::generate;
using genner::io::SafetensorsFile;

std::vector<fs::path> generate_fixture_folders() {
  std::vector<fs::path> out;
  const auto root = genner::test::fixtures_root();
  if (!fs::is_directory(root)) return out;
  for (const auto& entry : fs::directory_iterator(root))
    if (fs::exists(entry.path() / "reference.safetensors")) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble).cpu() - b.to(torch::kDouble).cpu()).abs().max().item<double>();
}

}  // namespace

TEST_CASE("greedy and beam search match Hugging Face on every fixture preset", "[generate][parity]") {
  const auto folders = generate_fixture_folders();
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
        const double greedy_diff = max_abs_diff(torch::stack(greedy.scores), ref_greedy_scores);
        CHECK(greedy_diff <= 1e-4);
        const auto ref_greedy = R("greedy.sequences");
        REQUIRE(greedy.sequences.sizes() == ref_greedy.sizes());
        CHECK(torch::equal(greedy.sequences, ref_greedy));

        // beam 4: log-softmax per step (rows batch*4+beam), sequence scores, then ids
        auto beam = gen::generate_lm(model, ids, mask, gen::SearchOptions{}.beams(4).max_length(8).penalty(1.0).scores(),
                                     {}, use_cache);
        const auto ref_beam_scores = R("beam4.scores");
        REQUIRE(static_cast<int64_t>(beam.scores.size()) == ref_beam_scores.size(0));
        const double beam_diff = max_abs_diff(torch::stack(beam.scores), ref_beam_scores);
        CHECK(beam_diff <= 1e-4);
        const double seq_score_diff = max_abs_diff(beam.sequence_scores, R("beam4.sequences_scores"));
        CHECK(seq_score_diff <= 1e-4);
        const auto ref_beam = R("beam4.sequences");
        REQUIRE(beam.sequences.sizes() == ref_beam.sizes());
        CHECK(torch::equal(beam.sequences, ref_beam));
        std::cout << "  generate parity " << std::left << std::setw(9) << preset << std::setw(6) << c
                  << (use_cache ? "cache   " : "nocache ") << std::scientific << std::setprecision(2)
                  << "greedy.scores " << greedy_diff << "  beam4.scores " << beam_diff
                  << "  beam4.sequences_scores " << seq_score_diff << "\n";
      }
    }
  }
}
