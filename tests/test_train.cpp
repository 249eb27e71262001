// Tests for genner/train: metric (checked against a port of conlleval), checkpoint/resume
// (bit-exact, kill -9 safe), schedule and optimisation helpers, config files, logs and plots.
#include <genner/data/conll.hpp>
#include <genner/data/entity.hpp>
#include <genner/train.hpp>

#include "support.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using genner::data::Entity;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// A line-by-line port of conlleval.pl's chunk counting (CoNLL-2000 shared task script, version
// 2004-01-26), kept independent of genner so it can judge genner's metric.
struct ConllevalResult {
  long correct_chunk = 0, found_correct = 0, found_guessed = 0, correct_tags = 0, tokens = 0;
  std::map<std::string, long> correct_by_type, found_correct_by_type, found_guessed_by_type;
  static double pct(long a, long b) { return b > 0 ? 100.0 * double(a) / double(b) : 0.0; }
  double precision() const { return pct(correct_chunk, found_guessed); }
  double recall() const { return pct(correct_chunk, found_correct); }
  static double fb1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }
  double f1() const { return fb1(precision(), recall()); }
  double f1(const std::string& t) const {
    const auto get = [&](const std::map<std::string, long>& m) { auto it = m.find(t); return it == m.end() ? 0L : it->second; };
    return fb1(pct(get(correct_by_type), get(found_guessed_by_type)), pct(get(correct_by_type), get(found_correct_by_type)));
  }
};

bool conlleval_end_of_chunk(const std::string& prev_tag, const std::string& tag, const std::string& prev_type,
                            const std::string& type) {
  bool end = false;
  if (prev_tag == "B" && tag == "B") end = true;
  if (prev_tag == "B" && tag == "O") end = true;
  if (prev_tag == "I" && tag == "B") end = true;
  if (prev_tag == "I" && tag == "O") end = true;
  if (prev_tag == "E" && tag == "E") end = true;
  if (prev_tag == "E" && tag == "I") end = true;
  if (prev_tag == "E" && tag == "O") end = true;
  if (prev_tag == "I" && tag == "O") end = true;
  if (prev_tag != "O" && prev_tag != "." && prev_type != type) end = true;
  if (prev_tag == "]") end = true;
  if (prev_tag == "[") end = true;
  return end;
}

bool conlleval_start_of_chunk(const std::string& prev_tag, const std::string& tag, const std::string& prev_type,
                              const std::string& type) {
  bool start = false;
  if (prev_tag == "B" && tag == "B") start = true;
  if (prev_tag == "I" && tag == "B") start = true;
  if (prev_tag == "O" && tag == "B") start = true;
  if (prev_tag == "O" && tag == "I") start = true;
  if (prev_tag == "E" && tag == "E") start = true;
  if (prev_tag == "E" && tag == "I") start = true;
  if (prev_tag == "O" && tag == "E") start = true;
  if (prev_tag == "O" && tag == "I") start = true;
  if (tag != "O" && tag != "." && prev_type != type) start = true;
  if (tag == "[") start = true;
  if (tag == "]") start = true;
  return start;
}

// Perl's /^([^-]*)-(.*)$/ split of a tag into prefix and type.
std::pair<std::string, std::string> conlleval_split(const std::string& s) {
  const auto dash = s.find('-');
  if (dash == std::string::npos) return {s, ""};
  return {s.substr(0, dash), s.substr(dash + 1)};
}

ConllevalResult conlleval(std::istream& in) {
  const std::string boundary = "-X-";
  ConllevalResult r;
  bool in_correct = false;
  std::string last_correct = "O", last_guessed = "O", last_correct_type, last_guessed_type;
  long n_features = -1;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> features;
    std::istringstream fs_(line);
    for (std::string f; fs_ >> f;) features.push_back(f);
    if (n_features < 0) n_features = long(features.size());
    else if (!features.empty() && n_features != long(features.size())) FAIL("conlleval: unexpected number of features in: " << line);
    if (features.empty() || features[0] == boundary) features = {boundary, "O", "O"};
    REQUIRE(features.size() >= 3);
    auto [guessed, guessed_type] = conlleval_split(features.back());
    features.pop_back();
    auto [correct, correct_type] = conlleval_split(features.back());
    features.pop_back();
    const std::string first_item = features.front();
    if (first_item == boundary) guessed = "O";

    const bool end_c = conlleval_end_of_chunk(last_correct, correct, last_correct_type, correct_type);
    const bool end_g = conlleval_end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type);
    if (in_correct) {
      if (end_c && end_g && last_guessed_type == last_correct_type) {
        in_correct = false;
        ++r.correct_chunk;
        ++r.correct_by_type[last_correct_type];
      } else if (end_c != end_g || guessed_type != correct_type) {
        in_correct = false;
      }
    }
    const bool start_c = conlleval_start_of_chunk(last_correct, correct, last_correct_type, correct_type);
    const bool start_g = conlleval_start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type);
    if (start_c && start_g && guessed_type == correct_type) in_correct = true;
    if (start_c) {
      ++r.found_correct;
      ++r.found_correct_by_type[correct_type];
    }
    if (start_g) {
      ++r.found_guessed;
      ++r.found_guessed_by_type[guessed_type];
    }
    if (first_item != boundary) {
      if (correct == guessed && guessed_type == correct_type) ++r.correct_tags;
      ++r.tokens;
    }
    last_guessed = guessed;
    last_correct = correct;
    last_guessed_type = guessed_type;
    last_correct_type = correct_type;
  }
  if (in_correct) {
    ++r.correct_chunk;
    ++r.correct_by_type[last_correct_type];
  }
  return r;
}

// Deterministic "predictions": gold with entities dropped, retyped, re-bounded, and spurious ones
// added; predictions never overlap so that BIO can hold them exactly.
std::vector<Entity> perturb(const std::vector<Entity>& gold, std::size_t n, const std::vector<std::string>& types,
                            std::mt19937_64& rng) {
  std::vector<char> used(n, 0);
  std::vector<Entity> out;
  const auto free = [&](int s, int e) {
    if (s < 0 || e > int(n) || s >= e) return false;
    for (int k = s; k < e; ++k)
      if (used[std::size_t(k)]) return false;
    return true;
  };
  const auto take = [&](Entity e) {
    for (int k = e.fragments[0].first; k < e.fragments[0].second; ++k) used[std::size_t(k)] = 1;
    out.push_back(std::move(e));
  };
  std::uniform_int_distribution<int> pct(0, 99);
  for (const auto& g : gold) {
    const int roll = pct(rng);
    Entity e = g;
    auto& [s, t] = e.fragments[0];
    if (roll < 8) continue;                                      // missed
    if (roll < 16) e.type = types[std::size_t(pct(rng)) % types.size()];  // retyped (maybe to itself)
    else if (roll < 20) --s;                                     // boundary errors
    else if (roll < 24) ++t;
    else if (roll < 27 && t - s > 1) ++s;
    else if (roll < 30 && t - s > 1) --t;
    if (!free(s, t)) e = g;  // would overlap: keep gold's boundaries instead
    if (!free(e.fragments[0].first, e.fragments[0].second)) continue;
    take(std::move(e));
  }
  for (int k = 0; k < int(n); ++k) {  // spurious entities on free words
    if (pct(rng) >= 3) continue;
    const int len = 1 + pct(rng) % 3;
    if (free(k, k + len)) take({types[std::size_t(pct(rng)) % types.size()], {{k, k + len}}});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("metric counts entities with multiplicity, per type, and exact matches", "[train]") {
  using genner::train::EntityMetric;
  EntityMetric m;
  // Sentence 1: one right, one wrong type, one missed; a discontinuous entity matched.
  m.add(std::vector<Entity>{{"PER", {{0, 2}}}, {"LOC", {{3, 4}}}, {"ORG", {{5, 6}}}, {"ADR", {{7, 8}, {9, 10}}}},
        std::vector<Entity>{{"PER", {{0, 2}}}, {"ORG", {{3, 4}}}, {"ADR", {{7, 8}, {9, 10}}}});
  // Sentence 2: exact match, including a duplicated (nested-corpus) entity.
  m.add(std::vector<Entity>{{"PER", {{0, 1}}}, {"PER", {{0, 1}}}}, std::vector<Entity>{{"PER", {{0, 1}}}, {"PER", {{0, 1}}}});
  // Sentence 3: predicted twice, present once: one right, one wrong.
  m.add(std::vector<Entity>{{"LOC", {{1, 3}}}}, std::vector<Entity>{{"LOC", {{1, 3}}}, {"LOC", {{1, 3}}}});
  // Sentence 4: fragments matter, not only the outer span.
  m.add(std::vector<Entity>{{"ADR", {{0, 1}, {2, 3}}}}, std::vector<Entity>{{"ADR", {{0, 3}}}});
  const auto& s = m.scores();
  CHECK(s.micro.gold == 8);
  CHECK(s.micro.predicted == 8);
  CHECK(s.micro.correct == 5);
  CHECK(s.micro.f1() == Approx(5.0 / 8.0));
  CHECK(s.sentences == 4);
  CHECK(s.exact == 1);
  CHECK(s.per_type.at("PER").correct == 3);
  CHECK(s.per_type.at("LOC").gold == 2);
  CHECK(s.per_type.at("LOC").predicted == 2);
  CHECK(s.per_type.at("LOC").correct == 1);
  CHECK(s.per_type.at("ORG").f1() == 0.0);
  CHECK(s.per_type.at("ADR").precision() == Approx(0.5));
  const auto j = s.to_json();
  CHECK(j["per_type"]["PER"]["gold"] == 3);
  CHECK(j["exact_match"].get<double>() == Approx(0.25));
  EntityMetric empty;
  CHECK(empty.scores().micro.f1() == 0.0);
}

TEST_CASE("metric F1 equals conlleval's on CoNLL-2003 test with perturbed predictions", "[train]") {
  const auto file = genner::test::data_root() / "conll2003" / "test.txt";
  if (!fs::exists(file)) {
    WARN("CoNLL-2003 not found at " << file << "; skipping the conlleval agreement check");
    return;
  }
  const auto data = genner::data::load_conll(file);
  REQUIRE(data.sentences.size() > 3000);
  genner::test::TempDir tmp;
  const auto out_path = tmp.path / "pred.conll";
  genner::train::EntityMetric metric;
  std::mt19937_64 rng(20240611);
  {
    std::ofstream out(out_path);
    for (const auto& s : data.sentences) {
      auto pred = perturb(s.entities, s.words.size(), data.types, rng);
      metric.add(s.entities, pred);
      REQUIRE(genner::data::write_conll(out, s.words, s.entities, pred) == 0);
    }
  }
  std::ifstream in(out_path);
  const auto ref = conlleval(in);
  const auto& g = metric.scores();
  INFO("genner P/R/F1 " << 100 * g.micro.precision() << " " << 100 * g.micro.recall() << " " << 100 * g.micro.f1()
                        << "; conlleval " << ref.precision() << " " << ref.recall() << " " << ref.f1());
  CHECK(long(g.micro.gold) == ref.found_correct);
  CHECK(long(g.micro.predicted) == ref.found_guessed);
  CHECK(long(g.micro.correct) == ref.correct_chunk);
  CHECK(std::abs(100 * g.micro.f1() - ref.f1()) < 1e-9);
  CHECK(g.micro.f1() > 0.7);  // the perturbation really leaves a realistic score
  CHECK(g.micro.f1() < 0.95);
  for (const auto& [type, c] : g.per_type) {
    INFO(type);
    CHECK(std::abs(100 * c.f1() - ref.f1(type)) < 1e-9);
  }
  // conlleval prints two decimals: the printed figures agree too.
  char a[32], b[32];
  std::snprintf(a, sizeof a, "%6.2f", 100 * g.micro.f1());
  std::snprintf(b, sizeof b, "%6.2f", ref.f1());
  CHECK(std::string(a) == std::string(b));
  // The gold file itself scores 100 against itself through both paths.
  std::ostringstream self;
  for (const auto& s : data.sentences) genner::data::write_conll(self, s.words, s.entities, s.entities);
  std::istringstream self_in(self.str());
  CHECK(conlleval(self_in).f1() == Approx(100.0));
  WARN("CoNLL-2003 test, perturbed: genner F1 " << 100 * g.micro.f1() << " vs conlleval-port F1 " << ref.f1() << " ("
                                                 << g.micro.correct << "/" << g.micro.predicted << "/" << g.micro.gold << ")");
}
