// Tests for genner/text: T5's SentencePiece tokenizer, id layout, label tokens, training.
#include "sentencepiece.hpp"
#include "support.hpp"

#include <genner/text.hpp>

#include <fstream>
#include <set>

using genner::text::Encoding;
using genner::text::Tokenizer;
using Ids = std::vector<std::int64_t>;

namespace {

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

Ids with_eos(Ids ids) {
  ids.push_back(1);
  return ids;
}

}  // namespace

TEST_CASE("Tokenizer matches T5's SentencePiece ids and word boundaries", "[text]") {
  const auto model = genner::test::t5_spiece_model();
  if (!std::filesystem::exists(model)) {
    WARN("T5 spiece.model not found at " << model << "; skipping");
    return;
  }
  auto tok = Tokenizer::load(model);
  CHECK(tok.piece_count() == 32000);
  CHECK(tok.size() == 32100);

  // Expected ids obtained with Debian's spm_encode:
  //   echo "<sentence>" | spm_encode --model=../shared/models/t5-spiece/spiece.model --output_format=id
  // (whole-line encoding equals word-by-word encoding for these sentences), then </s> = 1 appended.
  struct Case {
    std::string text;
    Ids ids;
    Ids word_start;
    Ids word_end;
  };
  const std::vector<Case> cases = {
      {"EU rejects German call to boycott British lamb .",
       with_eos({3371, 15092, 7, 2968, 580, 12, 30242, 2390, 17871, 3, 5}),
       {0, 1, 3, 4, 5, 6, 7, 8, 9},
       {0, 2, 3, 4, 5, 6, 7, 8, 10}},
      {"Peter Blackburn", with_eos({2737, 1589, 7223}), {0, 1}, {0, 2}},
      {"The European Commission said on Thursday it disagreed with German advice .",
       with_eos({37, 1611, 3527, 243, 30, 2721, 34, 15788, 26, 28, 2968, 1867, 3, 5}),
       {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12},
       {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13}},
      {"IL-2 gene expression and NF-kappa B activation through CD28 requires reactive oxygen production by "
       "5-lipoxygenase .",
       with_eos({3,    3502, 4949, 6510,  3893,  11,  3,  12619, 18,   157,  3096, 9, 272, 5817, 257, 190,
                 3190, 2577, 2311, 28360, 11035, 999, 57, 7670,  7446, 9773, 729,  9, 7,   15,   3,   5}),
       {},
       {}},
      {"Muscle aches and weakness in neck , arms , shoulders , upper back , legs .",
       with_eos(
           {6887, 2482, 3, 14693, 11, 18724, 16, 5378, 3, 6, 6026, 3, 6, 15424, 3, 6, 4548, 223, 3, 6, 6217, 3, 5}),
       {},
       {}},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto words = words_of(c.text);
    const Encoding enc = tok.encode_words(words);
    CHECK(enc.ids == c.ids);
    REQUIRE(enc.num_words() == words.size());
    CHECK(enc.unk_fallback_words.empty());
    if (!c.word_start.empty()) {
      CHECK(enc.word_start == c.word_start);
      CHECK(enc.word_end == c.word_end);
    }
    // Every word's pieces are contiguous, in order, and the first carries the ▁ marker.
    for (std::size_t i = 0; i < words.size(); ++i) {
      CHECK(enc.word_start[i] <= enc.word_end[i]);
      if (i > 0) CHECK(enc.word_start[i] == enc.word_end[i - 1] + 1);
      CHECK(tok.id_to_token(enc.ids[static_cast<std::size_t>(enc.word_start[i])]).starts_with("\xe2\x96\x81"));
    }
    CHECK(enc.word_end.back() + 2 == static_cast<std::int64_t>(enc.ids.size()));
    CHECK(tok.encode(c.text).ids == enc.ids);
    CHECK(tok.decode(enc.ids, /*skip_special=*/true) == c.text);
  }
}

TEST_CASE("Tokenizer: extra ids count down, label tokens follow, decode renders them", "[text]") {
  const auto model = genner::test::t5_spiece_model();
  if (!std::filesystem::exists(model)) {
    WARN("T5 spiece.model not found at " << model << "; skipping");
    return;
  }
  auto tok = Tokenizer::load(model);
  CHECK(tok.extra_id(0) == 32099);
  CHECK(tok.extra_id(99) == 32000);
  CHECK(tok.token_to_id("<extra_id_0>") == 32099);
  CHECK(tok.token_to_id("<extra_id_99>") == 32000);
  CHECK(tok.id_to_token(32099) == "<extra_id_0>");
  CHECK(tok.id_to_token(32000) == "<extra_id_99>");
  CHECK(tok.token_to_id("<pad>") == 0);
  CHECK(tok.token_to_id("</s>") == 1);
  CHECK(tok.token_to_id("<unk>") == 2);
  CHECK_FALSE(tok.token_to_id("<<person>>").has_value());
  CHECK_THROWS_AS(tok.extra_id(100), genner::Error);

  CHECK(Tokenizer::label_token("PER") == "<<per>>");
  const std::vector<std::string> types = {"person", "location"};
  const auto ids = tok.add_labels(types);
  CHECK(ids == Ids{32100, 32101});
  CHECK(tok.add_token("<<person>>") == 32100);  // idempotent
  CHECK(tok.size() == 32102);
  CHECK(tok.token_to_id("<<location>>") == 32101);
  CHECK(tok.id_to_token(32101) == "<<location>>");
  CHECK_THROWS_AS(tok.add_token("▁the"), genner::Error);
  CHECK_THROWS_AS(tok.id_to_token(32102), genner::Error);

  const Ids seq = {2737, 1589, 7223, 32100, 32099, 1};
  CHECK(tok.decode(seq) == "Peter Blackburn <<person>> <extra_id_0> </s>");
  CHECK(tok.decode(seq, true) == "Peter Blackburn <<person>> <extra_id_0>");
  CHECK_THROWS_AS(tok.decode(Ids{40000}), genner::Error);
}

TEST_CASE("Tokenizer: a word with no piece falls back to <unk> and is reported", "[text]") {
  const auto model = genner::test::t5_spiece_model();
  if (!std::filesystem::exists(model)) {
    WARN("T5 spiece.model not found at " << model << "; skipping");
    return;
  }
  auto tok = Tokenizer::load(model);
  // A lone zero-width space is erased by NFKC normalisation: SentencePiece yields nothing.
  CHECK(tok.word_pieces("\xe2\x80\x8b").empty());
  const std::vector<std::string> words = {"Peter", "\xe2\x80\x8b", "Blackburn"};
  const auto enc = tok.encode_words(words);
  CHECK(enc.ids == Ids{2737, 2, 1589, 7223, 1});
  CHECK(enc.word_start == Ids{0, 1, 2});
  CHECK(enc.word_end == Ids{0, 1, 3});
  CHECK(enc.unk_fallback_words == std::vector<std::size_t>{1});
  // An empty sentence is just </s>.
  CHECK(tok.encode_words(std::vector<std::string>{}).ids == Ids{1});
}

TEST_CASE("Tokenizer: load errors name the file", "[text]") {
  genner::test::TempDir dir;
  try {
    (void)Tokenizer::load(dir.path / "missing.model");
    FAIL("expected genner::Error");
  } catch (const genner::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("missing.model"));
  }
  { std::ofstream(dir.path / "garbage.model") << "not a model"; }
  CHECK_THROWS_AS(Tokenizer::load(dir.path / "garbage.model"), genner::Error);
}

TEST_CASE("Tokenizer::train builds a T5-layout unigram model offline", "[text][deepbind]") {
  genner::test::TempDir dir;
  std::vector<std::string> corpus;
  const std::vector<std::string> base = {
      "the quick brown fox jumps over the lazy dog", "peter blackburn lives in brussels",
      "the european commission said on thursday",    "german call to boycott british lamb",
      "protein expression in human cells",           "weakness in neck arms and shoulders"};
  for (int r = 0; r < 30; ++r)
    for (const auto& s : base) corpus.push_back(s + " " + std::to_string(r));
  genner::text::TrainOptions options;
  options.vocab_size = 120;
  auto tok = Tokenizer::train(corpus, dir.path / "tiny.model", options);
  CHECK(std::filesystem::exists(dir.path / "tiny.model"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "tiny.model.tmp.model"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "tiny.model.corpus.txt"));
  CHECK(tok.piece_count() <= 120);
  CHECK(tok.piece_count() > 40);
  CHECK(tok.id_to_token(0) == "<pad>");
  CHECK(tok.id_to_token(1) == "</s>");
  CHECK(tok.id_to_token(2) == "<unk>");
  CHECK(tok.extra_id(0) == tok.piece_count() + 99);
  const auto ids = tok.add_labels(std::vector<std::string>{"ADR"});
  CHECK(ids.front() == tok.piece_count() + 100);

  const auto enc = tok.encode("the lazy fox in brussels");
  CHECK(enc.num_words() == 5);
  CHECK(enc.ids.back() == 1);
  CHECK(enc.unk_fallback_words.empty());
  CHECK(tok.decode(enc.ids, true) == "the lazy fox in brussels");
  // Reloading the written file gives the same encoding.
  auto again = Tokenizer::load(dir.path / "tiny.model");
  CHECK(again.encode("the lazy fox in brussels").ids == enc.ids);
  // The native encoder agrees with SentencePiece on the trained model too.
  genner::test::SpmProcessor spm;
  spm.load((dir.path / "tiny.model").string());
  for (const auto& s : corpus) {
    const auto e = tok.encode(s);
    auto expected = spm.encode_ids(s);
    expected.push_back(1);
    CHECK(Ids(expected.begin(), expected.end()) == e.ids);
  }

  CHECK_THROWS_AS(Tokenizer::train(std::vector<std::string>{}, dir.path / "empty.model"), genner::Error);
  CHECK_THROWS_AS(Tokenizer::train(dir.path / "no-corpus.txt", dir.path / "x.model"), genner::Error);
}

TEST_CASE("Native unigram encoder equals libsentencepiece on every word of the real corpora", "[text][deepbind]") {
  const auto model = genner::test::t5_spiece_model();
  const auto root = genner::test::data_root();
  if (!std::filesystem::exists(model) || !std::filesystem::exists(root / "conll2003")) {
    WARN("T5 spiece.model or real data not found; skipping");
    return;
  }
  // Reference: SentencePiece itself (isolated library), word by word.
  genner::test::SpmProcessor spm;
  spm.load(model.string());
  auto tok = Tokenizer::load(model);
  std::set<std::string> words;
  for (const auto* file : {"conll2003/train.txt", "conll2003/test.txt", "wnut17/train.conll", "wnut17/test.conll"}) {
    std::ifstream in(root / file);
    for (std::string line; std::getline(in, line);) {
      const auto cut = line.find_first_of(" \t");
      if (cut != 0 && cut != std::string::npos) words.insert(line.substr(0, cut));
    }
  }
  REQUIRE(words.size() > 30000);
  std::size_t mismatches = 0, empty = 0;
  for (const auto& w : words) {
    const auto expected = spm.encode_ids(w);
    const auto& got = tok.word_pieces(w);
    empty += got.empty() ? 1 : 0;
    if (!std::equal(expected.begin(), expected.end(), got.begin(), got.end())) {
      if (mismatches++ < 5) UNSCOPED_INFO("mismatch on '" << w << "'");
    }
    // Decoding a word's pieces gives SentencePiece's own detokenisation.
    if (mismatches == 0 && !got.empty()) REQUIRE(tok.decode(got) == spm.decode_ids(expected));
  }
  CHECK(mismatches == 0);
  CHECK(empty == 0);  // no word of these splits normalises to nothing
}
