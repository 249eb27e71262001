// Tests for genner/data: loaders (exact counts on the real corpora, synthetic edge cases and
// errors), pointer targets (hand-checked example, round-trip property on every real sentence).
#include "support.hpp"

#include <genner/data.hpp>
#include <genner/text.hpp>

#include <fstream>
#include <limits>
#include <map>

namespace gd = genner::data;
using Ids = std::vector<std::int64_t>;
using Frags = std::vector<std::pair<int, int>>;

namespace {

using genner::test::check_error;
using genner::test::write_file;

bool have_data() {
  if (std::filesystem::exists(genner::test::data_root() / "conll2003")) return true;
  WARN("real data not found under " << genner::test::data_root() << "; skipping");
  return false;
}

std::size_t discontinuous_count(const gd::Dataset& d) {
  std::size_t n = 0;
  for (const auto& s : d.sentences)
    for (const auto& e : s.entities) n += e.discontinuous() ? 1 : 0;
  return n;
}

}  // namespace

// ---------------------------------------------------------------- real corpora, exact counts

TEST_CASE("CoNLL-2003 (IOB1) loads with the published counts", "[data]") {
  if (!have_data()) return;
  const auto root = genner::test::data_root() / "conll2003";
  const std::map<std::string, std::pair<std::size_t, std::size_t>> expected = {
      {"train", {14041, 23499}}, {"dev", {3250, 5942}}, {"test", {3453, 5648}}};
  for (const auto& [split, counts] : expected) {
    INFO(split);
    const auto d = gd::load_conll(root / (split + ".txt"));
    CHECK(d.sentences.size() == counts.first);
    CHECK(d.entity_count() == counts.second);
    CHECK(d.types == std::vector<std::string>{"LOC", "MISC", "ORG", "PER"});
    CHECK(d.report.empty());  // IOB1's B- only splits same-type neighbours: nothing to repair
  }
  const auto train = gd::load_conll(root / "train.txt");
  // First sentence: "EU rejects German call to boycott British lamb ."
  REQUIRE(train.sentences[0].words.size() == 9);
  CHECK(train.sentences[0].words[0] == "EU");
  CHECK(train.sentences[0].entities ==
        std::vector<gd::Entity>{{"ORG", {{0, 1}}}, {"MISC", {{2, 3}}}, {"MISC", {{6, 7}}}});
  CHECK(train.sentences[1].entities == std::vector<gd::Entity>{{"PER", {{0, 2}}}});
}

TEST_CASE("WNUT-17 (BIO, tabs) loads with the expected counts", "[data]") {
  if (!have_data()) return;
  const auto root = genner::test::data_root() / "wnut17";
  // Entity counts cross-checked with: awk -F'\t' '$1==""{...} $2 ~ /^B-/{e++}' (one B- per entity,
  // and no I- tag opens a chunk, so the report is empty).
  const std::map<std::string, std::pair<std::size_t, std::size_t>> expected = {
      {"train", {3394, 1975}}, {"dev", {1009, 836}}, {"test", {1287, 1079}}};
  for (const auto& [split, counts] : expected) {
    INFO(split);
    const auto d = gd::load_conll(root / (split + ".conll"));
    CHECK(d.sentences.size() == counts.first);
    CHECK(d.entity_count() == counts.second);
    CHECK(d.types ==
          std::vector<std::string>{"corporation", "creative-work", "group", "location", "person", "product"});
    CHECK(d.report.empty());
  }
}

TEST_CASE("GENIA (nested JSON lines) loads with the expected counts", "[data]") {
  if (!have_data()) return;
  const auto root = genner::test::data_root() / "genia";
  const std::map<std::string, std::pair<std::size_t, std::size_t>> expected = {{"dev", {1765, 4714}},
                                                                               {"test", {1732, 5119}}};
  for (const auto& [split, counts] : expected) {
    INFO(split);
    const auto d = gd::load_nested_json(root / (split + ".jsonl"));
    CHECK(d.sentences.size() == counts.first);
    CHECK(d.entity_count() == counts.second);
    CHECK(d.types == std::vector<std::string>{"DNA", "RNA", "cell_line", "cell_type", "protein"});
    CHECK(d.report.empty());  // longest sentence is 136 words: no split; no duplicates
  }
  const auto dev = gd::load_nested_json(root / "dev.jsonl");
  // First sentence: [[2,2,DNA],[4,4,DNA],[6,7,DNA]] in inclusive ends.
  CHECK(dev.sentences[0].entities == std::vector<gd::Entity>{{"DNA", {{2, 3}}}, {"DNA", {{4, 5}}}, {"DNA", {{6, 8}}}});
  // Nested: [13,13,protein], [15,15,protein], [13,20,cell_line] ordered by (start, end).
  CHECK(dev.sentences[1].entities[0] == gd::Entity{"protein", {{13, 14}}});
  CHECK(dev.sentences[1].entities[1] == gd::Entity{"cell_line", {{13, 21}}});
}

TEST_CASE("CADEC (discontinuous 3-line format) loads with the published counts", "[data]") {
  if (!have_data()) return;
  const auto root = genner::test::data_root() / "cadec";
  struct Expect {
    std::string split;
    std::size_t sentences, entities, discontinuous;
  };
  for (const auto& x :
       std::vector<Expect>{{"train", 5340, 4428, 491}, {"dev", 1097, 897, 93}, {"test", 1160, 990, 94}}) {
    INFO(x.split);
    const auto d = gd::load_discontinuous(root / (x.split + ".txt"));
    CHECK(d.sentences.size() == x.sentences);
    CHECK(d.entity_count() == x.entities);
    CHECK(discontinuous_count(d) == x.discontinuous);
    CHECK(d.types == std::vector<std::string>{"ADR"});
    CHECK(d.report.empty());  // no adjacent/overlapping fragments or duplicates in CADEC
  }
  const auto train = gd::load_discontinuous(root / "train.txt");
  // "Muscle aches and weakness in neck , arms , ...": 3,4,7,7 ADR is "weakness in ... arms".
  const auto it = std::find_if(train.sentences.begin(), train.sentences.end(), [](const gd::Sentence& x) {
    return x.words.size() == 16 && x.words[0] == "Muscle" && x.words[1] == "aches";
  });
  REQUIRE(it != train.sentences.end());
  const auto& s = *it;
  CHECK(std::count(s.entities.begin(), s.entities.end(), gd::Entity{"ADR", {{3, 5}, {7, 8}}}) == 1);
  CHECK(train.sentences[2].entities.empty());
}

// ---------------------------------------------------------------- CoNLL synthetic cases

TEST_CASE("load_conll decodes IOB1, BIO and BIOES and reports repairs", "[data]") {
  genner::test::TempDir dir;
  SECTION("IOB1 as conlleval: I-X after O or another type starts; B-X splits same type") {
    const auto f = write_file(dir, "iob1.txt",
                              "-DOCSTART- -X- O O\n\n"
                              "a x I-PER\nb x I-PER\nc x B-PER\nd x I-LOC\ne x O\nf x I-ORG\n\n\n"
                              "g x O\n");
    const auto d = gd::load_conll(f);
    REQUIRE(d.sentences.size() == 2);
    CHECK(d.sentences[0].entities ==
          std::vector<gd::Entity>{{"PER", {{0, 2}}}, {"PER", {{2, 3}}}, {"LOC", {{3, 4}}}, {"ORG", {{5, 6}}}});
    CHECK(d.sentences[1].entities.empty());
    CHECK(d.report.empty());
    CHECK(d.types == std::vector<std::string>{"LOC", "ORG", "PER"});
  }
  SECTION("BIO with tabs; a stray I- opens a chunk and is reported with its line") {
    const auto f = write_file(dir, "bio.conll", "a\tB-PER\nb\tI-PER\nc\tO\n\t\nd\tB-LOC\ne\tI-PER\n");
    const auto d = gd::load_conll(f, {gd::TagScheme::bio});
    REQUIRE(d.sentences.size() == 2);
    CHECK(d.sentences[0].entities == std::vector<gd::Entity>{{"PER", {{0, 2}}}});
    CHECK(d.sentences[1].entities == std::vector<gd::Entity>{{"LOC", {{0, 1}}}, {"PER", {{1, 2}}}});
    REQUIRE(d.report.repaired() == 1);
    CHECK(d.report.issues[0].line == 6);
    CHECK(d.report.issues[0].file == f.string());
  }
  SECTION("BIOES is detected from E-/S- tags") {
    const auto f = write_file(dir, "bioes.txt", "a S-PER\nb B-ORG\nc I-ORG\nd E-ORG\ne O\nf B-LOC\ng E-LOC\n");
    const auto d = gd::load_conll(f);
    REQUIRE(d.sentences.size() == 1);
    CHECK(d.sentences[0].entities == std::vector<gd::Entity>{{"PER", {{0, 1}}}, {"ORG", {{1, 4}}}, {"LOC", {{5, 7}}}});
    CHECK(d.report.empty());
    const auto bad = write_file(dir, "bioes-bad.txt", "a B-PER\nb O\nc E-LOC\n");
    const auto r = gd::load_conll(bad, {gd::TagScheme::bioes});
    CHECK(r.sentences[0].entities == std::vector<gd::Entity>{{"PER", {{0, 1}}}, {"LOC", {{2, 3}}}});
    CHECK(r.report.repaired() == 1);  // E-LOC opening a chunk
  }
  SECTION("bad input throws naming file, line, expected and found") {
    check_error([&] { (void)gd::load_conll(write_file(dir, "p.txt", "a O\nb X-PER\n")); },
                {"p.txt:2", "expected a tag", "X-PER"});
    check_error([&] { (void)gd::load_conll(write_file(dir, "q.txt", "a O\nb\n")); },
                {"q.txt:2", "at least two columns"});
    check_error([&] { (void)gd::load_conll(write_file(dir, "s.txt", "a S-PER\n"), {gd::TagScheme::bio}); },
                {"s.txt:1", "IOB1/BIO", "S-PER"});
    check_error([&] { (void)gd::load_conll(write_file(dir, "e.txt", "")); }, {"e.txt", "empty file"});
    check_error([&] { (void)gd::load_conll(dir.path / "none.txt"); }, {"none.txt", "found none"});
    check_error([&] { (void)gd::load_conll(write_file(dir, "d.txt", "-DOCSTART- O\n\n")); }, {"d.txt", "no"});
  }
}

TEST_CASE("write_conll emits BIO lines conlleval can read", "[data]") {
  std::ostringstream out;
  const std::vector<std::string> words = {"Peter", "Black burn", "visited", "Lisbon"};
  const std::vector<gd::Entity> gold = {{"PER", {{0, 2}}}, {"LOC", {{3, 4}}}};
  const std::vector<gd::Entity> pred = {{"PER", {{0, 1}}}, {"ORG", {{0, 2}}}};
  CHECK(gd::write_conll(out, words, gold, pred) == 1);  // ORG overlaps PER: not representable
  CHECK(out.str() == "Peter B-PER B-PER\nBlack_burn I-PER O\nvisited O O\nLisbon B-LOC O\n\n");
  // Round trip: what we write loads back (last column = pred) as the same entities.
  genner::test::TempDir dir;
  const auto f = write_file(dir, "out.txt", out.str());
  CHECK(gd::load_conll(f, {gd::TagScheme::bio}).sentences[0].entities == std::vector<gd::Entity>{{"PER", {{0, 1}}}});
}

// ---------------------------------------------------------------- OntoNotes, JSON, discontinuous

TEST_CASE("load_ontonotes reads the CoNLL-2012 columns and undoes escapes", "[data]") {
  const auto d =
      gd::load_ontonotes(genner::test::source_dir() / "tests" / "data" / "ontonotes_sample.gold_conll");
  REQUIRE(d.sentences.size() == 4);
  CHECK(d.sentences[0].words == std::vector<std::string>{"Mara", "Okonkwo", "visited", "Lisbon", "on", "Tuesday", "."});
  CHECK(d.sentences[0].entities ==
        std::vector<gd::Entity>{{"PERSON", {{0, 2}}}, {"GPE", {{3, 4}}}, {"DATE", {{5, 6}}}});
  CHECK(d.sentences[1].words ==
        std::vector<std::string>{"The", "Harbour", "Trust", "(", "HT", ")", "agreed", "-", "again", "?"});
  CHECK(d.sentences[1].entities == std::vector<gd::Entity>{{"ORG", {{0, 3}}}, {"ORG", {{4, 5}}}});
  CHECK(d.sentences[2].entities.empty());
  CHECK(d.sentences[3].words == std::vector<std::string>{"[", "Three", "hundred", "]", "{", "Berlin", "}"});
  CHECK(d.sentences[3].entities == std::vector<gd::Entity>{{"CARDINAL", {{1, 3}}}, {"GPE", {{5, 6}}}});
  CHECK(d.types == std::vector<std::string>{"CARDINAL", "DATE", "GPE", "ORG", "PERSON"});
  CHECK(d.report.empty());

  genner::test::TempDir dir;
  const std::string row = "doc 0 0 word NN * - - - Speaker#1 ";
  check_error([&] { (void)gd::load_ontonotes(write_file(dir, "o1", row + "(PERSON*\n\n")); }, {"o1:1", "still open"});
  check_error([&] { (void)gd::load_ontonotes(write_file(dir, "o2", row + "*)\n")); }, {"o2:1", "open entity"});
  check_error([&] { (void)gd::load_ontonotes(write_file(dir, "o3", row + "(A*\n" + row + "(B*)\n")); },
              {"o3:2", "nest"});
  check_error([&] { (void)gd::load_ontonotes(write_file(dir, "o4", row + "PERSON\n")); }, {"o4:1", "'PERSON'"});
  check_error([&] { (void)gd::load_ontonotes(write_file(dir, "o5", "doc 0 0 word\n")); }, {"o5:1", "11 columns"});
}

TEST_CASE("load_nested_json: nesting, order, duplicates, splitting, errors", "[data]") {
  genner::test::TempDir dir;
  const auto f = write_file(dir, "n.jsonl",
                            R"({"ners": [[[1, 3, "b"], [0, 0, "a"], [1, 1, "a"], [1, 1, "a"]], []],)"
                            R"( "sentences": [["w0", "w1", "w2", "w3"], ["x"]]})"
                            "\n\n");
  const auto d = gd::load_nested_json(f);
  REQUIRE(d.sentences.size() == 2);
  CHECK(d.sentences[0].entities == std::vector<gd::Entity>{{"a", {{0, 1}}}, {"a", {{1, 2}}}, {"b", {{1, 4}}}});
  REQUIRE(d.report.dropped() == 1);
  CHECK(d.report.issues[0].line == 1);
  CHECK(d.types == std::vector<std::string>{"a", "b"});

  // 10 words, limit 4: entity [2,6) forbids cuts 3..5, so cuts fall at 2, then 6 (nearest above), then 10.
  const auto g =
      write_file(dir, "long.jsonl",
                 R"({"ners": [[[2, 5, "t"], [7, 7, "u"]]], "sentences": [["0","1","2","3","4","5","6","7","8","9"]]})"
                 "\n");
  const auto split = gd::load_nested_json(g, {4});
  REQUIRE(split.sentences.size() == 3);
  CHECK(split.sentences[0].words == std::vector<std::string>{"0", "1"});
  CHECK(split.sentences[1].words == std::vector<std::string>{"2", "3", "4", "5"});
  CHECK(split.sentences[1].entities == std::vector<gd::Entity>{{"t", {{0, 4}}}});
  CHECK(split.sentences[2].entities == std::vector<gd::Entity>{{"u", {{1, 2}}}});
  CHECK(split.report.split() == 1);
  CHECK(split.entity_count() == 2);  // no entity lost by splitting
  CHECK(gd::load_nested_json(g).sentences.size() == 1);

  check_error([&] { (void)gd::load_nested_json(write_file(dir, "bad1", "{\"ners\": [\n")); },
              {"bad1:1", "invalid JSON"});
  check_error(
      [&] {
        (void)gd::load_nested_json(write_file(dir, "bad2", R"({"ners": [[[0, 5, "a"]]], "sentences": [["x"]]})"));
      },
      {"bad2:1", "inside the sentence", "[0,5,\"a\"]"});
  check_error([&] { (void)gd::load_nested_json(write_file(dir, "bad3", R"({"ners": [], "sentences": [["x"]]})")); },
              {"bad3:1", "as many"});
  check_error(
      [&] { (void)gd::load_nested_json(write_file(dir, "bad4", R"({"ners": [[[0, "a"]]], "sentences": [["x"]]})")); },
      {"bad4:1", "[start, end_inclusive, type]"});
  check_error([&] { (void)gd::load_nested_json(write_file(dir, "bad5", R"([1, 2])")); }, {"bad5:1", "\"ners\""});
}

TEST_CASE("load_discontinuous: fragments sorted, adjacent merged and reported, errors", "[data]") {
  genner::test::TempDir dir;
  const auto f =
      write_file(dir, "c.txt", "a b c d e f\n5,5,0,1 ADR|2,2,3,3 ADR|0,1 ADR|0,1 ADR\n\nno entities here\n\n\n");
  const auto d = gd::load_discontinuous(f);
  REQUIRE(d.sentences.size() == 2);
  CHECK(d.sentences[0].entities ==
        std::vector<gd::Entity>{{"ADR", {{0, 2}}}, {"ADR", {{0, 2}, {5, 6}}}, {"ADR", {{2, 4}}}});
  CHECK(d.report.repaired() == 1);  // 2,2,3,3 -> [2,4)
  CHECK(d.report.dropped() == 1);   // the duplicate 0,1
  CHECK(d.sentences[1].entities.empty());

  check_error([&] { (void)gd::load_discontinuous(write_file(dir, "b1", "a b\n0,2 ADR\n\n")); },
              {"b1:2", "inside the sentence", "0,2"});
  check_error([&] { (void)gd::load_discontinuous(write_file(dir, "b2", "a b\n0,1,1 ADR\n\n")); },
              {"b2:2", "even number"});
  check_error([&] { (void)gd::load_discontinuous(write_file(dir, "b3", "a b\n0,x ADR\n\n")); }, {"b3:2", "integers"});
  check_error([&] { (void)gd::load_discontinuous(write_file(dir, "b4", "a b\n0,0\n\n")); }, {"b4:2", "TYPE"});
  check_error([&] { (void)gd::load_discontinuous(write_file(dir, "b5", "a b\n0,0 ADR\nextra\n")); },
              {"b5:3", "blank line"});
  check_error([&] { (void)gd::load_discontinuous(write_file(dir, "b6", "a b\n")); }, {"b6:1", "entity line"});
}

// ---------------------------------------------------------------- targets

TEST_CASE("encode_target follows docs/METHOD.md §1 for word, bpe and span", "[data]") {
  // A hand-built encoding: words w0 (pieces 10,11) w1 (12) w2 (13,14) w3 (15) + </s>.
  genner::text::Encoding src;
  src.ids = {10, 11, 12, 13, 14, 15, 1};
  src.word_start = {0, 2, 3, 5};
  src.word_end = {1, 2, 4, 5};
  const auto labels = gd::LabelSpace::make({"LOC", "PER"}, {32100, 32101});  // L = 2, pointer p -> 3 + p
  const std::vector<gd::Entity> gold = {{"LOC", {{2, 4}}}, {"PER", {{0, 1}, {2, 3}}}, {"PER", {{0, 2}}}};

  const auto word = gd::encode_target(src, gold, labels, gd::TargetType::word);
  // order: PER[0,2) (start 0, end 2), PER[0,1)+[2,3) (end 3), LOC[2,4)
  CHECK(word.indices == Ids{3, 5, 2, 3, 6, 2, 6, 8, 1, 0});
  CHECK(word.decoder_input_ids == Ids{0, 10, 12, 32101, 10, 13, 32101, 13, 15, 32100});
  const auto bpe = gd::encode_target(src, gold, labels, gd::TargetType::bpe);
  CHECK(bpe.indices == Ids{3, 4, 5, 2, 3, 4, 6, 7, 2, 6, 7, 8, 1, 0});
  const auto span = gd::encode_target(src, gold, labels, gd::TargetType::span);
  CHECK(span.indices == Ids{3, 5, 2, 3, 4, 6, 7, 2, 6, 8, 1, 0});
  CHECK(span.decoder_input_ids.size() == span.indices.size());

  for (const auto type : {gd::TargetType::word, gd::TargetType::bpe, gd::TargetType::span}) {
    const auto t = gd::encode_target(src, gold, labels, type);
    gd::ParseReport rep;
    auto back = gd::parse_target(t.indices, src, labels, type, &rep);
    std::sort(back.begin(), back.end());
    auto sorted = gold;
    std::sort(sorted.begin(), sorted.end());
    CHECK(back == sorted);
    CHECK(rep.invalid == 0);
    CHECK(rep.ended);
  }
  // No entities: just the end index.
  CHECK(gd::encode_target(src, {}, labels, gd::TargetType::word).indices == Ids{0});
  CHECK(gd::encode_target(src, {}, labels, gd::TargetType::word).decoder_input_ids == Ids{0});
  // Unknown type and out-of-range fragments are errors, not silent drops.
  CHECK_THROWS_AS(gd::encode_target(src, std::vector<gd::Entity>{{"ORG", {{0, 1}}}}, labels, gd::TargetType::word),
                  genner::Error);
  CHECK_THROWS_AS(gd::encode_target(src, std::vector<gd::Entity>{{"LOC", {{3, 5}}}}, labels, gd::TargetType::word),
                  genner::Error);
}

TEST_CASE("parse_target drops invalid entities and counts them", "[data]") {
  genner::text::Encoding src;
  src.ids = {10, 11, 12, 13, 14, 15, 1};
  src.word_start = {0, 2, 3, 5};
  src.word_end = {1, 2, 4, 5};
  const auto labels = gd::LabelSpace::make({"LOC", "PER"}, {32100, 32101});
  gd::ParseReport rep;
  // word: [5,3] not increasing; [2] type without pointers; [3,5]->PER ok; [9] points at </s>; then end.
  auto out = gd::parse_target(Ids{5, 3, 1, 2, 3, 5, 2, 9, 1, 0, 3, 1}, src, labels, gd::TargetType::word, &rep);
  CHECK(out == std::vector<gd::Entity>{{"PER", {{0, 2}}}});
  CHECK(rep.invalid == 3);
  CHECK(rep.ended);
  // bpe: pointers inside one word collapse; strictly increasing required.
  out = gd::parse_target(Ids{6, 7, 8, 1, 3, 3, 1}, src, labels, gd::TargetType::bpe, &rep);
  CHECK(out == std::vector<gd::Entity>{{"LOC", {{2, 4}}}});
  CHECK(rep.invalid == 1);
  CHECK_FALSE(rep.ended);
  // span: odd count invalid; decreasing invalid; equal allowed; trailing pointers invalid.
  out = gd::parse_target(Ids{3, 4, 6, 1, 4, 3, 1, 6, 6, 2, 8}, src, labels, gd::TargetType::span, &rep);
  CHECK(out == std::vector<gd::Entity>{{"PER", {{2, 3}}}});
  CHECK(rep.invalid == 3);
  // Indices below zero or past the source are invalid pointers, never a crash.
  out = gd::parse_target(Ids{-4, 1, 100, 2, 0}, src, labels, gd::TargetType::word, &rep);
  CHECK(out.empty());
  CHECK(rep.invalid == 2);
}

TEST_CASE("targets round-trip every sentence of every real data set", "[data]") {
  if (!have_data()) return;
  const auto model = genner::test::t5_spiece_model();
  if (!std::filesystem::exists(model)) {
    WARN("T5 spiece.model not found; skipping");
    return;
  }
  const auto root = genner::test::data_root();
  std::vector<std::pair<std::string, gd::Dataset>> sets;
  for (const auto* s : {"train", "dev", "test"}) {
    sets.emplace_back(std::string("conll2003/") + s, gd::load_conll(root / "conll2003" / (std::string(s) + ".txt")));
    sets.emplace_back(std::string("wnut17/") + s, gd::load_conll(root / "wnut17" / (std::string(s) + ".conll")));
    sets.emplace_back(std::string("cadec/") + s, gd::load_discontinuous(root / "cadec" / (std::string(s) + ".txt")));
  }
  for (const auto* s : {"dev", "test"})
    sets.emplace_back(std::string("genia/") + s, gd::load_nested_json(root / "genia" / (std::string(s) + ".jsonl")));

  auto tok = genner::text::Tokenizer::load(model);
  std::size_t sentences = 0, entities = 0;
  std::map<std::string, std::size_t> unk_entities;
  for (const auto& [name, d] : sets) {
    const auto labels = gd::LabelSpace::make(d.types, tok);
    for (const auto type : {gd::TargetType::word, gd::TargetType::bpe, gd::TargetType::span}) {
      gd::EncodeReport enc_report;
      std::size_t failures = 0;
      for (const auto& s : d.sentences) {
        const auto src = tok.encode_words(s.words);
        const auto target = gd::encode_target(src, s.entities, labels, type, &enc_report);
        REQUIRE(target.decoder_input_ids.size() == target.indices.size());
        gd::ParseReport rep;
        auto back = gd::parse_target(target.indices, src, labels, type, &rep);
        std::sort(back.begin(), back.end());
        auto gold = s.entities;  // loaders keep the file's order among entities sharing start and end
        std::sort(gold.begin(), gold.end());
        if (back != gold || rep.invalid != 0 || !rep.ended) {
          if (failures++ < 3) UNSCOPED_INFO(name << ": round trip failed for sentence starting '" << s.words[0] << "'");
        }
      }
      INFO(name);
      CHECK(failures == 0);
      CHECK(enc_report.sentences == d.sentences.size());
      CHECK(enc_report.entities == d.entity_count());
      if (type == gd::TargetType::word) {
        unk_entities[name] = enc_report.entities_on_unk_words;
        sentences += d.sentences.size();
        entities += d.entity_count();
      }
    }
  }
  CHECK(sentences == 14041 + 3250 + 3453 + 3394 + 1009 + 1287 + 5340 + 1097 + 1160 + 1765 + 1732);
  CHECK(entities == 23499 + 5942 + 5648 + 1975 + 836 + 1079 + 4428 + 897 + 990 + 4714 + 5119);
  // Entities on words SentencePiece erases (encoded on <unk>, still round-trip): expected none.
  for (const auto& [name, n] : unk_entities) {
    INFO(name);
    CHECK(n == 0);
  }
}

// ---------------------------------------------------------------- batching

TEST_CASE("collate pads with the documented values; sampler is bounded and resumable", "[data]") {
  std::vector<gd::Example> ex(3);
  ex[0] = {{5, 6, 1}, {0, 1}, {0, 1}, {3, 1, 0}, {0, 6, 32100}, {}};
  ex[1] = {{7, 1}, {0}, {0}, {0}, {0}, {}};
  ex[2] = {{8, 9, 10, 11, 1}, {0, 2, 3}, {1, 2, 3}, {0}, {0}, {}};
  const std::vector<std::size_t> idx = {0, 1, 2};
  const auto b = gd::collate(ex, idx);
  CHECK(b.src_ids.sizes() == at::IntArrayRef{3, 5});
  CHECK(b.src_ids.scalar_type() == at::kLong);
  CHECK(b.src_ids[1].equal(at::tensor({7, 1, 0, 0, 0}, at::kLong)));
  CHECK(b.src_mask[1].equal(at::tensor({1, 1, 0, 0, 0}, at::kLong)));
  CHECK(b.src_lengths.equal(at::tensor({3, 2, 5}, at::kLong)));
  CHECK(b.word_start[2].equal(at::tensor({0, 2, 3}, at::kLong)));
  CHECK(b.word_mask[1].equal(at::tensor({1, 0, 0}, at::kLong)));
  CHECK(b.target[1].equal(at::tensor(std::vector<std::int64_t>{0, gd::kIgnoreIndex, gd::kIgnoreIndex}, at::kLong)));
  CHECK(b.decoder_input_ids[1].equal(at::tensor({0, 0, 0}, at::kLong)));
  CHECK_THROWS_AS(gd::collate(ex, std::vector<std::size_t>{3}), genner::Error);

  std::vector<std::size_t> lengths;
  for (std::size_t i = 0; i < 500; ++i) lengths.push_back(5 + (i * 37) % 90);
  lengths.push_back(400);  // longer than max_tokens: gets its own batch
  gd::SamplerOptions opt;
  opt.max_tokens = 300;
  opt.bucket_window = 64;
  gd::BatchSampler sampler(lengths, opt, 42);
  std::vector<int> seen(lengths.size(), 0);
  const auto n = sampler.batches_per_epoch();
  for (std::size_t k = 0; k < n; ++k) {
    const auto batch = sampler.next();
    std::size_t longest = 0;
    for (const auto i : batch) {
      ++seen[i];
      longest = std::max(longest, lengths[i]);
    }
    CHECK((longest * batch.size() <= opt.max_tokens || batch.size() == 1));
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));  // every example once per epoch
  {  // batch_size as Hugging Face reads it: sentences per batch, whatever their length
    gd::SamplerOptions by_count;
    by_count.max_tokens = std::numeric_limits<std::size_t>::max();
    by_count.bucket_window = 64;
    by_count.max_examples = 16;
    gd::BatchSampler counted(lengths, by_count, 42);
    // 501 examples in windows of 64: seven full windows of 4 batches and one of 53 (4 batches)
    CHECK(counted.batches_per_epoch() == 7 * 4 + 4);
    std::size_t full = 0, total = 0;
    for (std::size_t k = 0; k < counted.batches_per_epoch(); ++k) {
      const auto batch = counted.next();
      CHECK(batch.size() <= 16);
      full += batch.size() == 16;
      total += batch.size();
    }
    CHECK(total == lengths.size());
    CHECK(full == 7 * 4 + 3);
  }
  // Resume: a fresh sampler restored to a saved state yields the same next batches.
  (void)sampler.next();
  const auto saved = sampler.state();
  CHECK(saved.epoch == 1);
  CHECK(saved.cursor == 1);
  const auto a1 = sampler.next(), a2 = sampler.next();
  gd::BatchSampler resumed(lengths, opt, 7);
  resumed.restore(saved);
  CHECK(resumed.next() == a1);
  CHECK(resumed.next() == a2);
  // Another epoch or seed shuffles differently.
  gd::BatchSampler other(lengths, opt, 43);
  gd::BatchSampler same(lengths, opt, 42);
  CHECK(other.next() != same.next());
}

TEST_CASE("the CoNLL reader skips the marks predict writes for blank input lines, and nothing else", "[data]") {
  CHECK(gd::blank_line_mark(7) == "# blank input line 7");
  CHECK(gd::is_blank_line_mark("# blank input line 12"));
  CHECK_FALSE(gd::is_blank_line_mark("# blank input line "));
  CHECK_FALSE(gd::is_blank_line_mark("# blank input line 3 O"));
  const std::string text = "John\tB-PER\nSmith\tI-PER\n\n" + gd::blank_line_mark(2) + "\n\n" + gd::blank_line_mark(3) +
                           "\n\nParis\tB-LOC\n\n";
  const auto d = gd::parse_conll(text, "predicted.conll");
  REQUIRE(d.sentences.size() == 2);
  CHECK(d.sentences[0].words == std::vector<std::string>{"John", "Smith"});
  CHECK(d.sentences[1].words == std::vector<std::string>{"Paris"});
  // A token "#" is still a token.
  const auto hash = gd::parse_conll("#\tO\nblank\tO\n\n", "hash.conll");
  REQUIRE(hash.sentences.size() == 1);
  CHECK(hash.sentences[0].words.front() == "#");
}

TEST_CASE("a data set's splits from its folder: the family's reader, dev standing in for a missing train split",
          "[data]") {
  genner::test::TempDir tmp;
  const std::string conll = "John B-PER\nlives O\nin O\nParis B-LOC\n\nAcme B-ORG\nhired O\nme O\n\n";
  genner::test::write_file(tmp, "dev.txt", conll);
  genner::test::write_file(tmp, "test.txt", conll + "Rome B-LOC\n\n");
  genner::data::SplitOptions o;
  o.max_eval_samples = 1;
  const auto s = genner::data::load_splits(genner::data::Family::flat, tmp.path, o);
  CHECK(s.train.sentences.size() == 2);  // dev trains, in full
  CHECK(s.dev.sentences.size() == 1);
  CHECK(s.test.sentences.size() == 1);
  CHECK(s.types == std::vector<std::string>{"LOC", "ORG", "PER"});  // each split lists its types sorted
  REQUIRE(s.notes.size() == 1);
  CHECK_THAT(s.notes.front(), Catch::Contains("has no train split"));
  o.train_on_dev = true;
  CHECK_THROWS_WITH(genner::data::load_splits(genner::data::Family::flat, tmp.path, o),
                    Catch::Contains("train_on_dev") && Catch::Contains("no train split"));
  CHECK_THROWS_WITH(genner::data::load_splits(genner::data::Family::nested, tmp.path),
                    Catch::Contains("no dev split found"));
  genner::data::SplitOptions hinted;
  hinted.folder_hint = "; it is $DATA/none";
  CHECK_THROWS_WITH(genner::data::load_splits(genner::data::Family::flat, tmp.path / "none", hinted),
                    Catch::Contains("none: no such folder: the data set is not there; it is $DATA/none"));
}
