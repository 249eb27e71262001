// Tests for genner/data/sample.hpp: the built-in sample corpora load back through the project's
// own loaders unchanged and clean, carry every type (nested and discontinuous entities included),
// and are byte-identical for a seed.
#include "support.hpp"

#include <genner/data/conll.hpp>
#include <genner/data/discontinuous.hpp>
#include <genner/data/nested_json.hpp>
#include <genner/data/sample.hpp>

#include <fstream>
#include <set>
#include <sstream>

namespace gd = genner::data;
namespace gs = genner::data::sample;

namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::set<std::string> types_of(const gd::Dataset& d) {
  std::set<std::string> out;
  for (const auto& s : d.sentences)
    for (const auto& e : s.entities) out.insert(e.type);
  return out;
}

bool overlaps(const gd::Entity& a, const gd::Entity& b) { return a.start() < b.end() && b.start() < a.end(); }

std::vector<std::filesystem::path> all_files(const gs::CorpusFiles& f) {
  return {f.flat.train,          f.flat.dev,          f.flat.test,          f.nested.train, f.nested.dev, f.nested.test,
          f.discontinuous.train, f.discontinuous.dev, f.discontinuous.test, f.raw};
}

gs::CorpusOptions small_options(std::uint64_t seed) {
  gs::CorpusOptions o;
  o.seed = seed;
  o.flat = {300, 50, 40};
  o.nested = {200, 40, 30};
  o.discontinuous = {300, 50, 40};
  o.raw_lines = 7;
  return o;
}

}  // namespace

TEST_CASE("sample: Rng draws are fixed by the seed and stay in bounds", "[data]") {
  gs::Rng a(42), b(42), c(43);
  std::vector<std::uint64_t> da, db, dc;
  for (int i = 0; i < 200; ++i) {
    da.push_back(a.below(1000));
    db.push_back(b.below(1000));
    dc.push_back(c.below(1000));
  }
  CHECK(da == db);
  CHECK(da != dc);
  for (const auto v : da) CHECK(v < 1000);
  CHECK(std::vector<std::uint64_t>(da.begin(), da.begin() + 6) ==
        std::vector<std::uint64_t>{406, 824, 450, 662, 381, 428});
  // std::mt19937_64's sequence is fixed by the standard and the bounded draw is ours, so these
  // values hold on every platform (the first draws for seed 5489, the engine's default seed).
  gs::Rng d(5489);
  std::vector<std::uint64_t> first;
  for (int i = 0; i < 4; ++i) first.push_back(d.below(1000000007));
  std::mt19937_64 engine(5489);
  std::vector<std::uint64_t> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(engine() % 1000000007);  // 2^64 mod p rejections are vanishingly rare
  CHECK(first == expected);
  std::mt19937_64 reference;
  reference.discard(9999);
  CHECK(reference() == 9981545732273789042ULL);  // the standard's own check value
  gs::Rng e(7);
  std::set<int> seen;
  for (int i = 0; i < 500; ++i) {
    const int v = e.between(-2, 2);
    CHECK(v >= -2);
    CHECK(v <= 2);
    seen.insert(v);
  }
  CHECK(seen.size() == 5);
  CHECK_THROWS_AS(e.below(0), genner::Error);
}

TEST_CASE("sample: default corpus loads back clean through the project's loaders", "[data]") {
  genner::test::TempDir dir;
  const auto files = gs::write_corpus(dir.path);
  CHECK(files.flat.train == dir.path / "flat" / "train.txt");
  CHECK(files.nested.dev == dir.path / "nested" / "dev.jsonl");
  CHECK(files.discontinuous.test == dir.path / "discontinuous" / "test.txt");
  CHECK(files.raw == dir.path / "flat" / "raw.txt");

  const std::size_t sizes[3] = {3000, 400, 400};
  const std::filesystem::path flat[3] = {files.flat.train, files.flat.dev, files.flat.test};
  const std::filesystem::path nested[3] = {files.nested.train, files.nested.dev, files.nested.test};
  const std::filesystem::path disc[3] = {files.discontinuous.train, files.discontinuous.dev, files.discontinuous.test};
  for (int k = 0; k < 3; ++k) {
    INFO("split " << k);
    const auto f = gd::load_conll(flat[k], {gd::TagScheme::bio});
    CHECK(f.sentences.size() == sizes[k]);
    CHECK(f.report.empty());
    CHECK(f.types == std::vector<std::string>{"LOC", "MISC", "ORG", "PER"});
    CHECK(types_of(f).size() == 4);

    const auto n = gd::load_nested_json(nested[k]);
    CHECK(n.sentences.size() == sizes[k]);
    CHECK(n.report.empty());
    CHECK(n.types == std::vector<std::string>{"DNA", "RNA", "cell_line", "cell_type", "protein"});

    const auto d = gd::load_discontinuous(disc[k]);
    CHECK(d.sentences.size() == sizes[k]);
    CHECK(d.report.empty());
    CHECK(d.types == std::vector<std::string>{"ADR"});
  }
  // The automatic scheme detection must read the files as BIO too (no I- opening a chunk).
  CHECK(gd::load_conll(files.flat.train).report.empty());

  std::ifstream raw(files.raw);
  std::string line;
  std::size_t lines = 0;
  while (std::getline(raw, line)) {
    ++lines;
    CHECK(line.find_first_not_of(' ') != std::string::npos);
    CHECK(line.find('\t') == std::string::npos);
  }
  CHECK(lines == 20);
}

TEST_CASE("sample: loaded splits equal the generated sentences", "[data]") {
  genner::test::TempDir dir;
  const std::uint64_t seed = 99;
  const gs::Options options{seed, {120, 30, 25}};
  const auto flat = gs::write_flat(dir.path / "f", options);
  const auto nested = gs::write_nested(dir.path / "n", options);
  const auto disc = gs::write_discontinuous(dir.path / "d", options);
  // The writers draw split k from mix_seed(seed, k + 1).
  // (Sentences have no operator<<, so compare into bools.)
  const bool flat_train =
      gd::load_conll(flat.train).sentences == gs::flatten(gs::flat_documents(120, gs::mix_seed(seed, 1)));
  const bool flat_test =
      gd::load_conll(flat.test).sentences == gs::flatten(gs::flat_documents(25, gs::mix_seed(seed, 3)));
  const bool nested_dev =
      gd::load_nested_json(nested.dev).sentences == gs::flatten(gs::nested_abstracts(30, gs::mix_seed(seed, 2)));
  const bool disc_train =
      gd::load_discontinuous(disc.train).sentences == gs::discontinuous_sentences(120, gs::mix_seed(seed, 1));
  CHECK(flat_train);
  CHECK(flat_test);
  CHECK(nested_dev);
  CHECK(disc_train);
  // Splits differ from one another.
  CHECK(slurp(flat.dev) != slurp(flat.test));
  // Several sentences per JSON line (abstracts), one DOCSTART per document.
  std::ifstream in(nested.train);
  std::string line;
  std::size_t objects = 0;
  while (std::getline(in, line)) objects += line.empty() ? 0 : 1;
  CHECK(objects > 0);
  CHECK(objects < 120 / 2);
  const auto conll = slurp(flat.train);
  CHECK(conll.rfind("-DOCSTART- -X- -X- O\n\n", 0) == 0);
}

TEST_CASE("sample: the data has the structure each task needs", "[data]") {
  const auto flat = gs::flatten(gs::flat_documents(3000, 1));
  const auto nested = gs::flatten(gs::nested_abstracts(3000, 1));
  const auto disc = gs::discontinuous_sentences(3000, 1);

  SECTION("flat: multi-word entities, sentences without entities, and ambiguity") {
    std::size_t multi = 0, empty = 0, lone_surname = 0, city_in_org = 0, capital_initial_o = 0;
    std::set<std::string> loc_words;
    for (const auto& s : flat)
      for (const auto& e : s.entities)
        if (e.type == "LOC" && e.end() - e.start() == 1) loc_words.insert(s.words[static_cast<std::size_t>(e.start())]);
    for (const auto& s : flat) {
      if (s.entities.empty()) ++empty;
      std::vector<bool> inside(s.words.size(), false);
      for (std::size_t i = 1; i < s.entities.size(); ++i) CHECK_FALSE(overlaps(s.entities[i - 1], s.entities[i]));
      for (const auto& e : s.entities) {
        for (int k = e.start(); k < e.end(); ++k) inside[static_cast<std::size_t>(k)] = true;
        if (e.end() - e.start() > 1) ++multi;
        if (e.type == "PER" && e.end() - e.start() == 1) ++lone_surname;
        if (e.type == "ORG")
          for (int k = e.start(); k < e.end(); ++k)
            city_in_org += loc_words.count(s.words[static_cast<std::size_t>(k)]);
      }
      if (!inside.empty() && !inside[0] && s.words[0].size() > 1 && s.words[0][0] >= 'A' && s.words[0][0] <= 'Z')
        ++capital_initial_o;
    }
    CHECK(multi > 500);
    CHECK(empty > 100);
    CHECK(lone_surname > 100);
    CHECK(city_in_org > 100);        // "Bank of Lisbon", "Leeds United", bare-city clubs ...
    CHECK(capital_initial_o > 300);  // "The", "Police", "Shares", "In" ... are not entities
  }
  SECTION("nested: entities inside entities") {
    std::size_t pairs = 0, proper_nesting = 0;
    for (const auto& s : nested) {
      for (std::size_t i = 0; i < s.entities.size(); ++i)
        for (std::size_t j = i + 1; j < s.entities.size(); ++j) {
          const auto& a = s.entities[i];
          const auto& b = s.entities[j];
          if (overlaps(a, b)) ++pairs;
          if (a.start() <= b.start() && b.end() <= a.end() && a != b) ++proper_nesting;
        }
    }
    CHECK(pairs > 1000);
    CHECK(proper_nesting > 1000);
  }
  SECTION("discontinuous: ADRs with two or more fragments, and sentences without ADR") {
    std::size_t two = 0, empty = 0;
    for (const auto& s : disc) {
      if (s.entities.empty()) ++empty;
      for (const auto& e : s.entities) {
        if (e.fragments.size() >= 2) ++two;
        for (std::size_t f = 1; f < e.fragments.size(); ++f)
          CHECK(e.fragments[f - 1].second < e.fragments[f].first);  // neither touching nor overlapping
      }
    }
    CHECK(two > 200);
    CHECK(empty > 200);
  }
}

TEST_CASE("sample: a seed reproduces the corpus byte for byte; another seed differs", "[data]") {
  genner::test::TempDir a, b, c;
  const auto fa = all_files(gs::write_corpus(a.path, small_options(7)));
  const auto fb = all_files(gs::write_corpus(b.path, small_options(7)));
  const auto fc = all_files(gs::write_corpus(c.path, small_options(8)));
  for (std::size_t i = 0; i < fa.size(); ++i) {
    INFO(fa[i]);
    const auto text = slurp(fa[i]);
    CHECK_FALSE(text.empty());
    CHECK(text == slurp(fb[i]));
    CHECK(text != slurp(fc[i]));
  }
  // Rewriting over an existing corpus gives the same bytes and leaves no temporary files.
  gs::write_corpus(a.path, small_options(7));
  for (std::size_t i = 0; i < fa.size(); ++i) CHECK(slurp(fa[i]) == slurp(fb[i]));
  std::size_t entries = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(a.path)) entries += entry.is_regular_file();
  CHECK(entries == fa.size());
}

TEST_CASE("sample: writers reject what their format cannot hold", "[data]") {
  gd::Sentence overlapping{{"New", "York", "Times"}, {{"LOC", {{0, 2}}}, {"ORG", {{0, 3}}}}};
  CHECK_THROWS_AS(gs::conll_text({{overlapping}}), genner::Error);
  gd::Sentence split{{"muscle", "and", "joint", "pain"}, {{"ADR", {{0, 1}, {3, 4}}}}};
  CHECK_THROWS_AS(gs::conll_text({{split}}), genner::Error);
  CHECK_THROWS_AS(gs::nested_jsonl_text({{split}}), genner::Error);
  CHECK(gs::discontinuous_text({split}) == "muscle and joint pain\n0,0,3,3 ADR\n\n");
  gd::Sentence spaced{{"New York"}, {}};
  CHECK_THROWS_AS(gs::discontinuous_text({spaced}), genner::Error);
  genner::test::TempDir dir;
  CHECK_THROWS_AS(gs::write_flat(dir.path, {1, {10, 0, 10}}), genner::Error);
}
