// Raw text in, entities with character offsets out: CoNLL-style pretokenization (a table of
// tricky cases), the flat-overlap rule, and Recognizer / predict_lines on a small model.
#include <genner/genner.hpp>
#include <genner/data/sample.hpp>
#include <genner/app/options.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <thread>

#include "support.hpp"
#include "sample_task.hpp"

namespace {

namespace fs = std::filesystem;
namespace gm = genner::model;
namespace gr = genner::recognize;
using genner::text::pretokenize;
using Scratch = gm::ExperimentType<genner::t5::DynamicBackbone, gm::Trainable<gm::Everything>>;

std::vector<std::string> words_of(std::string_view text, genner::text::PretokenizeOptions o = {}) {
  return pretokenize(text, o).words;
}

/// A tokenizer trained on genner's sample data and an untrained small model over it: its
/// constrained decoding returns entities (arbitrary ones), which is what offset bookkeeping needs.
struct Small {
  genner::text::Tokenizer tokenizer;
  genner::data::LabelSpace labels;
  std::shared_ptr<gm::NerModelImpl<Scratch>> model;
  std::vector<std::string> types;

  static Small make(const fs::path& dir) {
    auto t = genner::test::SampleTask::make(dir, 11, {300, 10, 10}, 300);
    const auto c = t.config(32, 1);
    auto& tok = t.tokenizer;
    auto& labels = t.labels;
    auto& train = t.train;
    torch::manual_seed(5);
    auto m = std::make_shared<gm::NerModelImpl<Scratch>>(gm::NerOptions{}.types(labels.size()).with_config(c));
    return {std::move(tok), labels, m, train.types};
  }

  gr::Recognizer recognizer(gr::RecognizerOptions o) const {
    auto tok = genner::text::Tokenizer::load(tokenizer.model_file());
    auto l = genner::data::LabelSpace::make(types, tok);
    return gr::Recognizer(model, std::move(tok), std::move(l), std::move(o));
  }
};

gr::RecognizerOptions options(bool flat, bool contiguous) {
  gr::RecognizerOptions o;
  o.flat = flat;
  genner::generate::PointerDecodeOptions d;
  d.constrained = true;
  d.contiguous = contiguous;
  d.search.max_length(12, 1.0);
  o.decode = d;
  return o;
}

const std::vector<std::string> kRaw = {
    "John Smith lives in Paris.",
    "New York, he said, is \"bigger\" (much bigger) than Boston.",
    "I don't think Acme Corp.'s 3% rise in the U.S. will last; can't you see?",
    "Write to jane.doe@example.org or visit https://example.org/news?id=7.",
    "Zürich’s mayor met Émile Dupont in São Paulo on Monday...",
    "",
    "The club , which was founded in 1899 , won 2-1 at Lyon !",
};

/// Characters [begin, end) of UTF-8 `text`, sliced as Python's text[begin:end] slices.
std::string char_slice(const std::string& text, size_t begin, size_t end) {
  std::string out;
  size_t cp = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++cp;  // a lead byte starts a character
    if (cp >= begin && cp < end) out += text[i];
  }
  return out;
}

/// Checks every offset of a result against its text; returns the entity count.
size_t check_offsets(const std::string& text, const gr::Result& r) {
  for (size_t w = 0; w < r.words.size(); ++w)
    REQUIRE(text.substr(r.spans[w].begin, r.spans[w].end - r.spans[w].begin) == r.words[w]);
  // code points: the number of UTF-8 lead bytes before each byte offset
  auto cps = [&](size_t byte) {
    size_t n = 0;
    for (size_t i = 0; i < byte; ++i) n += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    return n;
  };
  for (const auto& e : r.entities) {
    INFO(text << " -> " << e.type << " chars [" << e.begin << ", " << e.end << ") bytes [" << e.byte_begin << ", "
              << e.byte_end << ") '" << e.text << "'");
    REQUIRE(e.byte_begin < e.byte_end);
    REQUIRE(e.byte_end <= text.size());
    CHECK(text.substr(e.byte_begin, e.byte_end - e.byte_begin) == e.text);
    CHECK(e.begin == cps(e.byte_begin));
    CHECK(e.end == cps(e.byte_end));
    CHECK(char_slice(text, e.begin, e.end) == e.text);
    REQUIRE(!e.fragments.empty());
    CHECK(e.word_begin == e.fragments.front().word_begin);
    CHECK(e.word_end == e.fragments.back().word_end);
    CHECK(e.byte_begin == r.spans[static_cast<size_t>(e.word_begin)].begin);
    CHECK(e.byte_end == r.spans[static_cast<size_t>(e.word_end - 1)].end);
    for (const auto& f : e.fragments) {
      CHECK(text.substr(f.byte_begin, f.byte_end - f.byte_begin) == f.text);
      CHECK(char_slice(text, f.begin, f.end) == f.text);
    }
  }
  return r.entities.size();
}

bool overlapping(const gr::Entity& a, const gr::Entity& b) {
  for (const auto& f : a.fragments)
    for (const auto& g : b.fragments)
      if (f.word_begin < g.word_end && g.word_begin < f.word_end) return true;
  return false;
}

}  // namespace

TEST_CASE("pretokenize splits raw text the way CoNLL and the Penn Treebank do", "[recognize]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> table = {
      {"John Smith lives in Paris.", {"John", "Smith", "lives", "in", "Paris", "."}},
      {"New York, he said.", {"New", "York", ",", "he", "said", "."}},
      {"I don't know; can't you? Won't!", {"I", "do", "n't", "know", ";", "ca", "n't", "you", "?", "Wo", "n't", "!"}},
      {"John's dog and the students' books", {"John", "'s", "dog", "and", "the", "students", "'", "books"}},
      {"they're, we've, I'll, she'd, I'm",
       {"they", "'re", ",", "we", "'ve", ",", "I", "'ll", ",", "she", "'d", ",", "I", "'m"}},
      {"\"Hello,\" she said (quietly).", {"\"", "Hello", ",", "\"", "she", "said", "(", "quietly", ")", "."}},
      {"[a] {b}", {"[", "a", "]", "{", "b", "}"}},
      {"Prices rose 3% to $5.50 on 1,000.5 shares.",
       {"Prices", "rose", "3", "%", "to", "$", "5.50", "on", "1,000.5", "shares", "."}},
      {"the U.S. and Mr. Smith of Acme Inc. met J. Doe",
       {"the", "U.S.", "and", "Mr.", "Smith", "of", "Acme", "Inc.", "met", "J.", "Doe"}},
      {"It grew 3.5.", {"It", "grew", "3.5", "."}},
      {"Anglo-Dutch 2-1 win at 10:30 a.m.", {"Anglo-Dutch", "2-1", "win", "at", "10:30", "a.m."}},
      {"Mail john.smith@example.com now.", {"Mail", "john.smith@example.com", "now", "."}},
      {"See https://example.com/a?b=1&c=2.", {"See", "https://example.com/a?b=1&c=2", "."}},
      {"(www.example.org/x)", {"(", "www.example.org/x", ")"}},
      {"Wait... what?!", {"Wait", "...", "what", "?", "!"}},
      {"Note: see below", {"Note", ":", "see", "below"}},
      {"\xE2\x80\x9CQuoted\xE2\x80\x9D \xC2\xABtext\xC2\xBB caf\xC3\xA9\xE2\x80\x99s",
       {"\xE2\x80\x9C", "Quoted", "\xE2\x80\x9D", "\xC2\xAB", "text", "\xC2\xBB", "caf\xC3\xA9", "\xE2\x80\x99s"}},
      {"  tabs\tand\u00A0no-break\nspaces  ", {"tabs", "and", "no-break", "spaces"}},
      {"John 's n't", {"John", "'s", "n't"}},
      {"", {}},
  };
  for (const auto& [text, expected] : table) {
    INFO("input: '" << text << "'");
    const auto p = pretokenize(text);
    CHECK(p.words == expected);
    REQUIRE(p.spans.size() == p.words.size());
    for (size_t i = 0; i < p.words.size(); ++i)
      CHECK(text.substr(p.spans[i].begin, p.spans[i].end - p.spans[i].begin) == p.words[i]);
    CHECK(p.sentences.size() == (expected.empty() ? 0u : 1u));
  }
}

TEST_CASE("pretokenize splits paragraphs into sentences when asked", "[recognize]") {
  genner::text::PretokenizeOptions o;
  o.split_sentences = true;
  const std::string text =
      "She went home. Then (at 5) he left! Why? \"Because.\" Mr. Smith stayed in the U.S. today.\n\nNew "
      "paragraph without a stop\n\nlast one";
  const auto p = pretokenize(text, o);
  std::vector<std::string> sentences;
  for (const auto& [a, b] : p.sentences) {
    std::string s;
    for (size_t w = a; w < b; ++w) s += (w > a ? " " : "") + p.words[w];
    sentences.push_back(s);
  }
  CHECK(sentences == std::vector<std::string>{"She went home .", "Then ( at 5 ) he left !", "Why ?", "\" Because . \"",
                                              "Mr. Smith stayed in the U.S. today .", "New paragraph without a stop",
                                              "last one"});
}

TEST_CASE("pretokenized input passes through untouched", "[recognize]") {
  genner::text::PretokenizeOptions o;
  o.pretokenized = true;
  CHECK(words_of("Paris . York , do n't \"x\"  U.S.", o) ==
        std::vector<std::string>{"Paris", ".", "York", ",", "do", "n't", "\"x\"", "U.S."});
  CHECK(words_of("Paris. don't", o) == std::vector<std::string>{"Paris.", "don't"});
}

TEST_CASE("invalid UTF-8 is a clear error naming the input and the byte", "[recognize]") {
  const std::vector<std::string> bad = {"ab\xff", "\xC3", "caf\xC3(", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"};
  for (const auto& b : bad) {
    INFO("input bytes: " << b.size());
    try {
      (void)pretokenize(b, {}, "input.txt line 3");
      FAIL("no error");
    } catch (const genner::Error& e) {
      const std::string what = e.what();
      CHECK(what.find("input.txt line 3") != std::string::npos);
      CHECK(what.find("UTF-8") != std::string::npos);
      CHECK(what.find("byte offset") != std::string::npos);
    }
  }
  CHECK_NOTHROW(genner::text::check_utf8("Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80"));
  const auto cps = genner::text::code_point_offsets(
      "a\xC3\xBC"
      "b\xF0\x9F\x98\x80");
  CHECK(cps == std::vector<size_t>{0, 1, 2, 2, 3, 4, 4, 4, 4});
}

TEST_CASE("the flat rule keeps the first-generated of overlapping entities", "[recognize]") {
  using genner::data::Entity;
  std::vector<Entity> e = {{"PER", {{0, 2}}},  {"LOC", {{0, 1}}}, {"ORG", {{3, 4}}},
                           {"MISC", {{1, 4}}}, {"LOC", {{5, 6}}}, {"X", {{2, 3}, {5, 6}}}};
  CHECK(genner::generate::remove_overlaps(e) == 3);
  CHECK(e == std::vector<Entity>{{"PER", {{0, 2}}}, {"ORG", {{3, 4}}}, {"LOC", {{5, 6}}}});
}

TEST_CASE("Recognizer maps raw text to entities with exact character and byte offsets", "[recognize]") {
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  const auto rec = small.recognizer(options(true, true));
  const auto results = rec.predict(kRaw);
  REQUIRE(results.size() == kRaw.size());
  size_t entities = 0;
  for (size_t i = 0; i < kRaw.size(); ++i) {
    entities += check_offsets(kRaw[i], results[i]);
    for (const auto& e : results[i].entities) {
      CHECK(std::isfinite(e.score));
      CHECK(e.score <= 0.0);
    }
  }
  INFO("an untrained model with constrained decoding still returns entities");
  CHECK(entities > 0);
  CHECK(results[5].words.empty());
  CHECK(results[5].entities.empty());
  CHECK(results[5].windows == 0);
  CHECK(results[0].words == std::vector<std::string>{"John", "Smith", "lives", "in", "Paris", "."});

  // one text, and one text at a time, give the same entities as the batch
  for (size_t i : {0u, 2u, 4u}) {
    const auto one = rec.predict(std::string_view(kRaw[i]));
    REQUIRE(one.entities.size() == results[i].entities.size());
    for (size_t k = 0; k < one.entities.size(); ++k) {
      CHECK(one.entities[k].begin == results[i].entities[k].begin);
      CHECK(one.entities[k].type == results[i].entities[k].type);
    }
  }
  // scores off: NaN
  auto o = options(true, true);
  o.scores = false;
  for (const auto& e : small.recognizer(o).predict(std::string_view(kRaw[0])).entities) CHECK(std::isnan(e.score));

  // invalid UTF-8 names the text
  const std::vector<std::string> bad = {"fine", "bro\xffken"};
  CHECK_THROWS_WITH(rec.predict(bad), Catch::Contains("text 1") && Catch::Contains("UTF-8"));
}

TEST_CASE("long texts are decoded in windows at sentence and word boundaries, never cut", "[recognize]") {
  genner::test::TempDir tmp;
  auto small = Small::make(tmp.path);
  const std::string sentence = "John Smith of Acme Corp. visited Paris and Lyon last week. ";
  std::string para;
  for (int i = 0; i < 6; ++i) para += sentence;
  // a limit that holds one sentence but not two
  const auto one = static_cast<int64_t>(small.tokenizer.encode_words(pretokenize(sentence).words).ids.size());
  auto o = options(true, true);
  const auto whole = small.recognizer(o).predict(std::string_view(para));
  CHECK_FALSE(whole.split);
  CHECK(whole.windows == 1);
  o.max_source_pieces = one + 2;
  const auto rec = small.recognizer(o);
  const auto r = rec.predict(std::string_view(para));
  CHECK(r.split);
  CHECK(r.windows > 1);
  CHECK(r.words == whole.words);  // every word is still there
  CHECK(r.unread_words.empty());
  check_offsets(para, r);
  // Windows end at sentence ends when one fits: each window of this text is whole sentences, so
  // the result equals decoding every sentence on its own.
  o.tokenize.split_sentences = true;
  const auto by_sentence = small.recognizer(o).predict(std::string_view(para));
  CHECK(by_sentence.sentences == 6);
  REQUIRE(by_sentence.entities.size() == r.entities.size());
  for (size_t k = 0; k < r.entities.size(); ++k) {
    CHECK(r.entities[k].begin == by_sentence.entities[k].begin);
    CHECK(r.entities[k].end == by_sentence.entities[k].end);
    CHECK(r.entities[k].type == by_sentence.entities[k].type);
  }
  // a sentence with no sentence end inside the limit is split between words
  std::string run_on;
  for (int i = 0; i < 30; ++i) run_on += "word" + std::to_string(i) + " ";
  const auto ro = rec.predict(std::string_view(run_on));
  CHECK(ro.split);
  CHECK(ro.windows >= 2);
  CHECK(ro.words.size() == 30);
  check_offsets(run_on, ro);
  // a single word longer than the limit is reported, not silently dropped
  o.max_source_pieces = 4;
  const std::string huge = "a Supercalifragilisticexpialidocious word";
  const auto hw = small.recognizer(o).predict(std::string_view(huge));
  CHECK(hw.unread_words == std::vector<int>{1});
}

TEST_CASE("flat recognizers never return overlapping entities; nested ones keep theirs", "[recognize]") {
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  // non-contiguous constrained decoding of an untrained model generates overlapping entities
  std::vector<std::string> texts;
  for (int i = 0; i < 8; ++i)
    for (const auto& t : kRaw) texts.push_back(t + " " + std::to_string(i));
  const auto nested = small.recognizer(options(false, false)).predict(texts);
  const auto flat = small.recognizer(options(true, false)).predict(texts);
  size_t overlaps_nested = 0, removed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (size_t a = 0; a < nested[i].entities.size(); ++a)
      for (size_t b = a + 1; b < nested[i].entities.size(); ++b)
        overlaps_nested += overlapping(nested[i].entities[a], nested[i].entities[b]);
    for (size_t a = 0; a < flat[i].entities.size(); ++a)
      for (size_t b = a + 1; b < flat[i].entities.size(); ++b)
        CHECK_FALSE(overlapping(flat[i].entities[a], flat[i].entities[b]));
    // Nested results hold each entity once (the decoder repeats some); the flat ones are a subset
    // of them, the overlap rule having dropped the rest (duplicates included).
    for (size_t a = 0; a < nested[i].entities.size(); ++a)
      for (size_t b = a + 1; b < nested[i].entities.size(); ++b)
        CHECK_FALSE((nested[i].entities[a].type == nested[i].entities[b].type &&
                     nested[i].entities[a].begin == nested[i].entities[b].begin &&
                     nested[i].entities[a].end == nested[i].entities[b].end));
    for (const auto& f : flat[i].entities)
      CHECK(std::any_of(nested[i].entities.begin(), nested[i].entities.end(), [&](const gr::Entity& n) {
        return n.type == f.type && n.begin == f.begin && n.end == f.end;
      }));
    CHECK(flat[i].entities.size() + flat[i].overlaps_removed >= nested[i].entities.size());
    CHECK(nested[i].overlaps_removed == 0);
    removed += flat[i].overlaps_removed;
    check_offsets(texts[i], flat[i]);
    check_offsets(texts[i], nested[i]);
  }
  INFO("the nested run must contain overlaps for this test to mean anything");
  CHECK(overlaps_nested > 0);
  CHECK(removed > 0);
}

TEST_CASE("Recognizer loads a run folder and is safe to share between threads", "[recognize]") {
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  const auto run = tmp.path / "run";
  fs::create_directories(run);
  gm::save_trained(*small.model, run / "best.safetensors");
  fs::copy_file(small.tokenizer.model_file(), run / "spiece.model");
  nlohmann::json record = {
      {"types", small.types},
      {"label_token_ids", small.labels.token_ids},
      {"config", small.model->config().to_json()},
      {"tokenizer", "spiece.model"},
      {"pretrained", ""},
      {"settings", {{"constrained", true}, {"contiguous", true}, {"max_len", 12}, {"max_len_a", 1.0}}}};
  genner::io::write_text_atomically(run / "run.json", record.dump(2));
  // no family recorded and none given: a clear error
  CHECK_THROWS_WITH(gr::Recognizer::load(run), Catch::Contains("family") && Catch::Contains("flat"));
  record["family"] = "flat";
  genner::io::write_text_atomically(run / "run.json", record.dump(2));
  CHECK_THROWS_WITH(gr::Recognizer::load<Scratch>(run), Catch::Contains("manifest.json"));
  gr::write_run_manifest(run, gr::RunRecord::read(run / "run.json"));
  const auto loaded = gr::Recognizer::load<Scratch>(run);
  CHECK(loaded.flat());
  CHECK(loaded.decode_options().constrained);
  CHECK(loaded.decode_options().contiguous);
  const auto memory = small.recognizer(options(true, true));
  const auto a = loaded.predict(kRaw), b = memory.predict(kRaw);
  for (size_t i = 0; i < kRaw.size(); ++i) {
    REQUIRE(a[i].entities.size() == b[i].entities.size());
    for (size_t k = 0; k < a[i].entities.size(); ++k) {
      CHECK(a[i].entities[k].begin == b[i].entities[k].begin);
      CHECK(a[i].entities[k].end == b[i].entities[k].end);
      CHECK(a[i].entities[k].type == b[i].entities[k].type);
    }
  }
  // concurrent predict() on one shared Recognizer gives what a single thread gives
  std::vector<std::vector<gr::Result>> out(3);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < out.size(); ++t) threads.emplace_back([&, t] { out[t] = loaded.predict(kRaw); });
  for (auto& t : threads) t.join();
  for (const auto& o : out)
    for (size_t i = 0; i < kRaw.size(); ++i) {
      REQUIRE(o[i].entities.size() == a[i].entities.size());
      for (size_t k = 0; k < a[i].entities.size(); ++k) CHECK(o[i].entities[k].text == a[i].entities[k].text);
    }
  // a missing tokenizer is named
  fs::remove(run / "spiece.model");
  CHECK_THROWS_WITH(gr::Recognizer::load<Scratch>(run), Catch::Contains("spiece.model"));
}

TEST_CASE("begin and end count characters: non-ASCII text slices by them as Python and jq slice", "[recognize]") {
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  const auto rec = small.recognizer(options(true, true));
  std::vector<std::string> texts = {
      "Jos\xC3\xA9 M\xC3\xBCller wohnt in M\xC3\xBCnchen und arbeitet f\xC3\xBCr die Stadt .",
      "\xC3\x85sa \xC3\x96" "berg traf Zo\xC3\xAB \xC3\x91\xC3\xBA\xC3\xB1" "ez in Krak\xC3\xB3w am Montag .",
      "\xE6\x9D\xB1\xE4\xBA\xAC und \xF0\x9F\x98\x80 Paris , Berlin und Rom ."};
  // and the texts the offset test finds entities in, each after a non-ASCII word
  for (const auto& t : kRaw)
    if (!t.empty()) texts.push_back("\xC3\x9C" "ber " + t);
  std::ostringstream input;
  for (const auto& t : texts) input << t << "\n";
  std::istringstream in(input.str());
  std::ostringstream out;
  gr::PredictOptions po;
  po.log = nullptr;
  (void)gr::predict_lines(rec, in, out, po);
  std::istringstream lines(out.str());
  size_t n = 0, shifted = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    const std::string text = j.at("text");
    REQUIRE(text == texts.at(n));
    for (const auto& e : j.at("entities")) {
      const size_t b = e.at("begin"), en = e.at("end"), bb = e.at("byte_begin"), be = e.at("byte_end");
      INFO(text << ": chars [" << b << ", " << en << ") bytes [" << bb << ", " << be << ")");
      CHECK(char_slice(text, b, en) == e.at("text").get<std::string>());
      CHECK(text.substr(bb, be - bb) == e.at("text").get<std::string>());
      shifted += bb != b;
    }
  }
  CHECK(n == texts.size());
  INFO("entities after a non-ASCII character: their character and byte offsets differ");
  CHECK(shifted > 0);
  // The helper itself: "Jos\xC3\xA9 M\xC3\xBCller" is characters [0, 11), bytes [0, 13).
  CHECK(char_slice(texts[0], 0, 11) == "Jos\xC3\xA9 M\xC3\xBCller");
  CHECK(char_slice(texts[0], 1, 4) == "os\xC3\xA9");
}

TEST_CASE("predict_lines writes one record per input line as JSON lines, CoNLL or brat", "[recognize]") {
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  const auto rec = small.recognizer(options(true, true));
  std::string input;
  for (const auto& t : kRaw) input += t + "\n";
  input += "trailing line without a newline \xC3\xA9t\xC3\xA9";

  gr::PredictOptions po;
  po.log = nullptr;
  po.chunk_lines = 3;  // several chunks
  {
    std::istringstream in(input);
    std::ostringstream out;
    const auto stats = gr::predict_lines(rec, in, out, po);
    CHECK(stats.lines == kRaw.size() + 1);
    std::istringstream lines(out.str());
    size_t n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
      const auto j = nlohmann::json::parse(line);
      const std::string text = j.at("text");
      CHECK(text == (n < kRaw.size() ? kRaw[n] : std::string("trailing line without a newline \xC3\xA9t\xC3\xA9")));
      for (const auto& e : j.at("entities")) {
        const size_t b = e.at("begin"), en = e.at("end");  // characters, as jq and Python slice
        CHECK(char_slice(text, b, en) == e.at("text").get<std::string>());
        const size_t bb = e.at("byte_begin"), be = e.at("byte_end");
        CHECK(text.substr(bb, be - bb) == e.at("text").get<std::string>());
      }
      if (text.empty()) CHECK(j.at("entities").empty());
    }
    CHECK(n == kRaw.size() + 1);
  }
  {  // brat: offsets in code points of the whole input
    po.format = gr::Format::brat;
    std::istringstream in(input);
    std::ostringstream out;
    (void)gr::predict_lines(rec, in, out, po);
    // the input as code points (UTF-32 by hand)
    std::vector<std::string> cps;
    for (size_t i = 0; i < input.size();) {
      size_t n = 1;
      const auto c = static_cast<unsigned char>(input[i]);
      if (c >= 0xF0)
        n = 4;
      else if (c >= 0xE0)
        n = 3;
      else if (c >= 0xC0)
        n = 2;
      cps.push_back(input.substr(i, n));
      i += n;
    }
    std::istringstream lines(out.str());
    size_t count = 0;
    for (std::string line; std::getline(lines, line); ++count) {
      INFO(line);
      REQUIRE(line.rfind("T" + std::to_string(count + 1) + "\t", 0) == 0);
      const auto tab2 = line.find('\t', line.find('\t') + 1);
      std::istringstream spec(line.substr(line.find('\t') + 1, tab2 - line.find('\t') - 1));
      std::string type;
      size_t b = 0, e = 0;
      spec >> type >> b >> e;
      std::string covered;
      for (size_t k = b; k < e; ++k) covered += cps.at(k);
      CHECK(covered == line.substr(tab2 + 1));
    }
    CHECK(count > 0);
  }
  {  // CoNLL: one block per line, a blank input line -> the block "# blank input line N"
    po.format = gr::Format::conll;
    std::istringstream in("Paris is nice .\n\nLyon\n");
    std::ostringstream out;
    (void)gr::predict_lines(rec, in, out, po);
    const std::string s = out.str();
    CHECK(s.rfind("Paris\t", 0) == 0);
    CHECK(s.find("\n\n# blank input line 2\n\nLyon\t") != std::string::npos);
    CHECK(std::count(s.begin(), s.end(), '\n') == 4 + 1 + 1 + 1 + 1 + 1);
    const auto nested = small.recognizer(options(false, true));
    std::istringstream in2("x\n");
    CHECK_THROWS_WITH(gr::predict_lines(nested, in2, out, po), Catch::Contains("--format conll"));
  }
  {  // a bad line is named
    po.format = gr::Format::jsonl;
    std::istringstream in("good\nbad \xff line\n");
    std::ostringstream out;
    po.input_name = "raw.txt";
    CHECK_THROWS_WITH(gr::predict_lines(rec, in, out, po), Catch::Contains("raw.txt:2: expected UTF-8"));
  }
  CHECK_THROWS_WITH(gr::parse_format("xml"), Catch::Contains("jsonl, conll, brat or html"));
}

namespace {
/// An entity over bytes [b, e) of `text` (character offsets filled as the Recognizer fills them).
gr::Entity entity_at(const std::string& text, const std::string& type, size_t b, size_t e) {
  const auto cps = genner::text::code_point_offsets(text);
  gr::Entity out;
  out.type = type;
  out.byte_begin = b, out.byte_end = e, out.begin = cps[b], out.end = cps[e];
  out.text = text.substr(b, e - b);
  gr::Fragment f;
  f.byte_begin = b, f.byte_end = e, f.begin = cps[b], f.end = cps[e], f.text = out.text;
  out.fragments.push_back(f);
  return out;
}
}  // namespace

TEST_CASE("predict --format html highlights entities by type, HTML-escaped, nested ones nested", "[recognize]") {
  const std::string text = "Tom & <Jerry> of Bank of S\xC3\xA3o Paulo said \"hi\" O'Neil";
  gr::Result r;
  const auto at = [&](const std::string& s) { return text.find(s); };
  r.entities.push_back(entity_at(text, "PER", 0, 3));
  r.entities.push_back(entity_at(text, "ORG", at("<Jerry>"), at("<Jerry>") + 7));
  r.entities.push_back(entity_at(text, "ORG", at("Bank"), at(" said")));
  r.entities.push_back(entity_at(text, "LOC", at("S\xC3\xA3o"), at(" said")));
  r.entities.push_back(entity_at(text, "X<y>", at("O'Neil"), text.size()));
  size_t unmarked = 0;
  const auto html = gr::to_html(r, text, &unmarked);
  CHECK(unmarked == 0);
  CHECK_THAT(html, Catch::StartsWith("<p class=\"line\"><mark class=\"entity\" data-type=\"PER\" style=\"background: "
                                     "#aa9cfc\">Tom<span class=\"type\">PER</span></mark> &amp; <mark"));
  CHECK_THAT(html, Catch::Contains(">&lt;Jerry&gt;<span class=\"type\">ORG</span></mark>"));
  // LOC inside ORG: the inner mark closes before the outer one
  CHECK_THAT(html, Catch::Contains("Bank of <mark class=\"entity\" data-type=\"LOC\" style=\"background: #ff9561\">"
                                   "S\xC3\xA3o Paulo<span class=\"type\">LOC</span></mark><span class=\"type\">ORG"
                                   "</span></mark> said &quot;hi&quot; "));
  CHECK_THAT(html, Catch::Contains("data-type=\"X&lt;y&gt;\""));
  CHECK_THAT(html, Catch::Contains(">O&#39;Neil<span class=\"type\">X&lt;y&gt;</span></mark></p>\n"));
  // a fragment crossing an open one is left unmarked, and counted
  gr::Result crossing;
  crossing.entities.push_back(entity_at(text, "A", 0, 9));
  crossing.entities.push_back(entity_at(text, "B", 6, 13));
  unmarked = 0;
  const auto h2 = gr::to_html(crossing, text, &unmarked);
  CHECK(unmarked == 1);
  CHECK(h2.find("data-type=\"B\"") == std::string::npos);
  // the page predict writes: head, one paragraph per line, tail
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  const auto rec = small.recognizer(options(true, true));
  std::istringstream in("John <b>Smith</b> lives in Paris.\n\nZ\xC3\xBCrich & Co.\n");
  std::ostringstream out;
  gr::PredictOptions po;
  po.log = nullptr;
  po.format = gr::Format::html;
  (void)gr::predict_lines(rec, in, out, po);
  const auto page = out.str();
  CHECK_THAT(page, Catch::StartsWith(std::string(gr::kHtmlHead)));
  CHECK_THAT(page, Catch::EndsWith(std::string(gr::kHtmlTail)));
  size_t paragraphs = 0;
  for (size_t p = page.find("<p class=\"line\">"); p != std::string::npos; p = page.find("<p class=\"line\">", p + 1))
    ++paragraphs;
  CHECK(paragraphs == 3);
  CHECK(page.find("<b>") == std::string::npos);  // the input's markup is text, never markup
  CHECK_THAT(page, Catch::Contains("&lt;b&gt;") || Catch::Contains("&lt;/b&gt;"));
}

TEST_CASE("threshold keeps the entities whose probability reaches it and counts the others", "[recognize]") {
  genner::test::TempDir tmp;
  const auto small = Small::make(tmp.path);
  const auto all = small.recognizer(options(true, true)).predict(kRaw);
  std::vector<double> probabilities;
  for (const auto& r : all)
    for (const auto& e : r.entities) probabilities.push_back(std::exp(e.score));
  REQUIRE(probabilities.size() >= 2);
  std::sort(probabilities.begin(), probabilities.end());
  const double t = probabilities[probabilities.size() / 2];
  auto o = options(true, true);
  o.threshold = t;
  const auto kept = small.recognizer(o).predict(kRaw);
  size_t n_kept = 0, n_below = 0;
  for (size_t i = 0; i < kRaw.size(); ++i) {
    for (const auto& e : kept[i].entities) CHECK(std::exp(e.score) >= t);
    n_kept += kept[i].entities.size();
    n_below += kept[i].below_threshold;
    CHECK(kept[i].entities.size() + kept[i].below_threshold == all[i].entities.size());
  }
  CHECK(n_kept == static_cast<size_t>(std::count_if(probabilities.begin(), probabilities.end(),
                                                    [&](double p) { return p >= t; })));
  CHECK(n_below > 0);
  o.threshold = 1.5;
  CHECK_THROWS_WITH(small.recognizer(o), Catch::Contains("threshold") && Catch::Contains("[0, 1]"));
  o.threshold = 0.5;
  o.scores = false;
  CHECK_THROWS_WITH(small.recognizer(o), Catch::Contains("needs scores"));
}

TEST_CASE("the command line, pointer decoding, the Trainer and a Recognizer share one set of decoding defaults",
          "[recognize]") {
  const genner::app::RunConfig cfg;
  const genner::generate::PointerDecodeOptions pointer;
  const genner::train::TrainerOptions trainer;
  // A run.json that records no decoding settings decodes as a Recognizer built in memory does.
  const auto recorded = genner::recognize::decode_options_from(nlohmann::json::object(), "run.json");
  for (const auto* d : {&pointer, &trainer.decode, &recorded}) {
    CHECK(d->search.max_len == cfg.max_len);
    CHECK(d->search.max_len_a == cfg.max_len_a);
    CHECK(d->search.num_beams == cfg.beams);
    CHECK(d->search.length_penalty == cfg.length_penalty);
  }
  // The published setting.
  CHECK(cfg.max_len == 10);
  CHECK(cfg.max_len_a == 0.6);
}
