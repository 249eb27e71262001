// Tests of hostile input: every fault class of README "Reliability" ends in a genner::Error that
// names the file, line or key (or is handled correctly), never in an abort or a silent change.
#include "support.hpp"

#include <genner/core/json.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data.hpp>
#include <genner/io.hpp>
#include <genner/recognize.hpp>
#include <genner/t5.hpp>
#include <genner/text.hpp>
#include <genner/train.hpp>
#include <genner/app/options.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace gd = genner::data;
namespace fs = std::filesystem;

namespace {

using genner::test::check_error;
using genner::test::write_file;

std::string words_line(std::size_t n, const std::string& tag_every = "O") {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += "w" + std::to_string(i) + " " + tag_every + "\n";
  return out;
}

}  // namespace

TEST_CASE("UTF-8 validation: well-formed text passes, each kind of ill-formed byte is located", "[hardening]") {
  using genner::core::first_invalid_utf8;
  CHECK_FALSE(first_invalid_utf8("plain ascii").has_value());
  CHECK_FALSE(first_invalid_utf8("Zürich – 東京 🙂").has_value());
  CHECK(first_invalid_utf8("ab\xff").value() == 2);            // never a UTF-8 byte
  CHECK(first_invalid_utf8("a\xc3").value() == 1);             // truncated sequence
  CHECK(first_invalid_utf8("\xc0\xaf").value() == 0);          // overlong '/'
  CHECK(first_invalid_utf8("x\xed\xa0\x80").value() == 1);     // UTF-16 surrogate
  CHECK(first_invalid_utf8("\xf4\x90\x80\x80").value() == 0);  // above U+10FFFF
  CHECK(first_invalid_utf8("\xe2\x82").value() == 0);
  CHECK(genner::core::json_safe("a\xff"
                                "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(genner::core::json_safe("ok") == "ok");
}

TEST_CASE("loaders refuse invalid UTF-8 with file:line and strip a byte-order mark", "[hardening]") {
  genner::test::TempDir dir;
  check_error([&] { (void)gd::load_conll(write_file(dir.path, "c.txt", "a O\nb O\nM\xfcller B-PER\n")); },
              {"c.txt:3", "UTF-8", "0xFC", "column 2"});
  check_error(
      [&] {
        (void)gd::load_nested_json(
            write_file(dir.path, "n.jsonl",
                       "{\"ners\": [[]], \"sentences\": [[\"a\"]]}\n{\"ners\": [[]], \"sentences\": [[\"\xe9\"]]}\n"));
      },
      {"n.jsonl:2", "UTF-8"});
  check_error([&] { (void)gd::load_discontinuous(write_file(dir.path, "d.txt", "a b\n\n\nx \xc3\n0,0 T\n")); },
              {"d.txt:4", "UTF-8"});

  const auto bom = write_file(dir.path, "bom.txt",
                              "\xEF\xBB\xBF"
                              "EU B-ORG\nrejects O\n");
  const auto d = gd::load_conll(bom);
  REQUIRE(d.sentences.size() == 1);
  CHECK(d.sentences[0].words.front() == "EU");
  const auto bom_doc = write_file(dir.path, "bomdoc.txt", "\xEF\xBB\xBF-DOCSTART- O\n\nEU B-ORG\n");
  CHECK(gd::load_conll(bom_doc).sentences.size() == 1);  // no sentence made of the -DOCSTART- line
  const auto bom_json = write_file(dir.path, "bom.jsonl", "\xEF\xBB\xBF{\"ners\": [[]], \"sentences\": [[\"a\"]]}\n");
  CHECK(gd::load_nested_json(bom_json).sentences.size() == 1);
}

TEST_CASE("CoNLL: a line with a missing column is refused; a BIO file's stray I- is a reported repair", "[hardening]") {
  genner::test::TempDir dir;
  // The NER column is missing on line 2: the chunk column must not become the tag.
  check_error([&] { (void)gd::load_conll(write_file(dir.path, "m.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP\n")); },
              {"m.txt:2", "expected 4 columns as on line 1", "found 3"});
  // B- after O makes this BIO, so I-LOC after O is a repair with its line, not an IOB1 reading.
  const auto f = write_file(dir.path, "bio.txt", "a B-PER\nb O\nc I-LOC\nd I-LOC\n");
  const auto d = gd::load_conll(f);
  REQUIRE(d.report.repaired() == 1);
  CHECK(d.report.issues[0].line == 3);
  CHECK(d.sentences[0].entities == std::vector<gd::Entity>{{"PER", {{0, 1}}}, {"LOC", {{2, 4}}}});
  // Genuine IOB1 (B- only between two chunks of one type) stays IOB1, with no repairs.
  const auto iob1 = gd::load_conll(write_file(dir.path, "iob1.txt", "a I-PER\nb B-PER\nc O\nd I-LOC\n"));
  CHECK(iob1.report.empty());
  CHECK(iob1.sentences[0].entities == std::vector<gd::Entity>{{"PER", {{0, 1}}}, {"PER", {{1, 2}}}, {"LOC", {{3, 4}}}});
}

TEST_CASE("nested offsets are range-checked as 64-bit integers; empty types are refused", "[hardening]") {
  genner::test::TempDir dir;
  // 2^32 would wrap to 0 as a 32-bit int; 2^64-1 would wrap to -1 as a signed 64-bit one.
  for (const std::string big : {"4294967296", "4294967297", "18446744073709551615"}) {
    const auto f = write_file(dir.path, "big.jsonl",
                              "{\"ners\": [[[" + big + ", " + big + ", \"a\"]]], \"sentences\": [[\"x\", \"y\"]]}\n");
    check_error([&] { (void)gd::load_nested_json(f); }, {"big.jsonl:1", "inside the sentence's 2 words", big});
  }
  check_error(
      [&] {
        (void)gd::load_nested_json(
            write_file(dir.path, "neg.jsonl", "{\"ners\": [[[-1, 0, \"a\"]]], \"sentences\": [[\"x\"]]}\n"));
      },
      {"neg.jsonl:1"});
  check_error(
      [&] {
        (void)gd::load_nested_json(
            write_file(dir.path, "e.jsonl", "{\"ners\": [[[0, 0, \"\"]]], \"sentences\": [[\"x\"]]}\n"));
      },
      {"e.jsonl:1", "entity type", "''"});
}

TEST_CASE("length guard: long sentences are split where no entity crosses, else refused with file:line",
          "[hardening]") {
  genner::test::TempDir dir;
  // 5000 words, an entity every 100 words: split into pieces of at most 512 words, nothing lost.
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "w" + std::to_string(i) + (i % 100 == 5 ? " B-X\n" : " O\n");
  const auto f = write_file(dir.path, "long.txt", "a O\n\n" + text);
  const auto d = gd::load_conll(f);
  CHECK(d.sentences.size() == 1 + 10);
  for (const auto& s : d.sentences) CHECK(s.words.size() <= gd::kDefaultLengthGuard);
  CHECK(d.entity_count() == 50);
  CHECK(d.report.split() == 1);
  CHECK(d.report.issues[0].line == 3);
  // With the guard off the sentence stays whole.
  CHECK(gd::load_conll(f, {gd::TagScheme::automatic, 0}).sentences.size() == 2);
  // One entity over 600 words: no cut can shorten it below the guard.
  std::string one = "a B-X\n";
  for (int i = 1; i < 600; ++i) one += "b I-X\n";
  check_error([&] { (void)gd::load_conll(write_file(dir.path, "one.txt", "x O\n\n" + one)); },
              {"one.txt:3", "600 words", "length guard (512 words)", "--max_words"});
  // The other families obey the same guard.
  std::string tokens;
  for (int i = 0; i < 20; ++i) tokens += "t ";
  check_error([&] { (void)gd::load_discontinuous(write_file(dir.path, "dis.txt", tokens + "\n0,19 T\n"), {8}); },
              {"dis.txt:1", "20 words"});
  CHECK(gd::load_discontinuous(write_file(dir.path, "dis2.txt", tokens + "\n0,1 T\n"), {8}).sentences.size() == 3);
  std::string json_tokens;
  for (int i = 0; i < 20; ++i) json_tokens += std::string(i ? "," : "") + "\"t\"";
  gd::NestedJsonOptions no;
  no.max_words = 0;
  no.length_guard = 8;
  check_error(
      [&] {
        (void)gd::load_nested_json(
            write_file(dir.path, "nj.jsonl",
                       "{\"ners\": [[[0, 19, \"a\"]]], \"sentences\": [[" + json_tokens + "]]}\n"),
            no);
      },
      {"nj.jsonl:1", "length guard (8 words)"});
}

TEST_CASE("output folder: empty, a file, under a file, not creatable, not writable", "[hardening]") {
  genner::test::TempDir dir;
  using genner::train::prepare_output_dir;
  check_error([&] { (void)prepare_output_dir(""); }, {"--output_dir", "empty path"});
  const auto file = write_file(dir.path, "afile", "x");
  check_error([&] { (void)prepare_output_dir(file.string()); }, {"--output_dir", "afile", "a file of that name"});
  check_error([&] { (void)prepare_output_dir((file / "sub" / "run").string()); }, {"--output_dir", "is a file"});
  check_error([&] { (void)prepare_output_dir("/proc/genner-no-such/run"); }, {"--output_dir", "cannot create"});
  CHECK(fs::is_directory(prepare_output_dir((dir.path / "a" / "b").string())));
  if (::geteuid() != 0) {  // permission bits do not bind root; the /proc case above covers root
    const auto ro = dir.path / "ro";
    fs::create_directories(ro);
    ::chmod(ro.c_str(), 0555);
    check_error([&] { (void)prepare_output_dir(ro.string()); }, {"not writable"});
    check_error([&] { (void)prepare_output_dir((ro / "x").string()); }, {"cannot create"});
    ::chmod(ro.c_str(), 0755);
  }
}

TEST_CASE("run folder: an exclusive lock naming its holder, stale temporaries removed, relocatable paths",
          "[hardening]") {
  genner::test::TempDir dir;
  {
    genner::train::RunLock first(dir.path);
    check_error([&] { genner::train::RunLock second(dir.path); },
                {dir.path.string(), "in use by another run", "PID " + std::to_string(::getpid())});
  }
  genner::train::RunLock again(dir.path);  // released when the holder ends

  // A writer that has ended: its PID names the temporaries it left.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = std::to_string(child), live = std::to_string(::getpid());
  write_file(dir.path, "run.json.tmp-" + dead, "x");
  fs::create_directories(dir.path / ("checkpoint.tmp-" + dead));
  write_file(dir.path, "checkpoint.tmp-" + dead + "/state.json", "{");
  fs::create_directories(dir.path / "checkpoint");
  write_file(dir.path, "checkpoint/state.json.tmp-" + dead, "x");
  write_file(dir.path, "keep.tmp-x", "x");
  write_file(dir.path, "tmp-1", "x");
  write_file(dir.path, "notes.txt.tmp-" + dead, "a user's file");         // not a file genner writes
  write_file(dir.path, "best.safetensors.tmp-" + live, "being written");  // its writer is alive
  fs::create_directories(dir.path / "other");
  write_file(dir.path, "other/run.json.tmp-" + dead, "another folder's");
  const auto removed = genner::train::remove_stale_temporaries(dir.path);
  CHECK(removed.size() == 3);
  CHECK_FALSE(fs::exists(dir.path / ("run.json.tmp-" + dead)));
  CHECK_FALSE(fs::exists(dir.path / ("checkpoint.tmp-" + dead)));
  CHECK_FALSE(fs::exists(dir.path / ("checkpoint/state.json.tmp-" + dead)));
  CHECK(fs::exists(dir.path / "keep.tmp-x"));
  CHECK(fs::exists(dir.path / "tmp-1"));
  CHECK(fs::exists(dir.path / ("notes.txt.tmp-" + dead)));
  CHECK(fs::exists(dir.path / ("best.safetensors.tmp-" + live)));
  CHECK(fs::exists(dir.path / ("other/run.json.tmp-" + dead)));

  using genner::train::path_for_record;
  CHECK(path_for_record(dir.path / "spiece.model", dir.path) == "spiece.model");
  CHECK(path_for_record(dir.path / "sample_data", dir.path) == "sample_data");
  CHECK(fs::path(path_for_record("/usr/share", dir.path)).is_absolute());
  CHECK(genner::train::path_from_record("spiece.model", "/moved/run") == fs::path("/moved/run/spiece.model"));
  CHECK(genner::train::path_from_record("/abs/x", "/moved/run") == fs::path("/abs/x"));
}

TEST_CASE("resume is refused when trajectory settings differ; a resumed log has no duplicate lines", "[hardening]") {
  const nlohmann::json saved = {{"epochs", 2}, {"batch_size", 16}, {"seed", 42}};
  genner::train::check_resume_settings(saved, saved, "ckpt");
  genner::train::check_resume_settings(nullptr, saved, "ckpt");  // an older checkpoint records none
  check_error(
      [&] {
        genner::train::check_resume_settings(saved, {{"epochs", 3}, {"batch_size", 16}, {"seed", 7}}, "ckpt");
      },
      {"ckpt", "epochs 3 (checkpoint: 2)", "seed 7 (checkpoint: 42)", "--resume false"});

  genner::test::TempDir dir;
  const auto log = dir.path / "log.jsonl";
  write_file(dir.path, "log.jsonl", "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4,\"tr");
  genner::train::JsonlLog::keep_until_step(log, 2);
  const auto lines = genner::train::JsonlLog::read(log);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["step"] == 2);
}

TEST_CASE("settings: heads must divide d_model", "[hardening]") {
  check_error(
      [] {
        (void)genner::app::parse_command_line({"--scratch_d_model", "32", "--scratch_heads", "3"});
      },
      {"--scratch_heads", "divisor of scratch_d_model (32)", "found 3"});
  CHECK(genner::app::parse_command_line({"--scratch_d_model", "32", "--scratch_heads", "4"}).given.size() == 2);
}

TEST_CASE("a checkpoint with NaN weights is named at load, not as a diverging loss", "[hardening]") {
  genner::test::TempDir dir;
  genner::t5::T5Config c;
  c.vocab_size = 40;
  c.d_model = 8;
  c.d_ff = 16;
  c.num_heads = 2;
  c.d_kv = 4;
  c.num_layers = 1;
  c.num_decoder_layers = 1;
  genner::t5::T5 model(c);
  genner::t5::save_pretrained(*model, dir.path / "good");
  CHECK_NOTHROW(genner::t5::load_pretrained(dir.path / "good"));
  {
    torch::NoGradGuard g;
    model->named_parameters()["shared.weight"][3][1] = std::nan("");
  }
  genner::t5::save_pretrained(*model, dir.path / "bad");
  check_error([&] { (void)genner::t5::load_pretrained(dir.path / "bad"); }, {"bad", "shared.weight", "NaN"});
}

TEST_CASE("SentencePiece training that leaves a truncated model writes nothing in place", "[hardening]") {
  genner::test::TempDir dir;
  // A trainer that "succeeds" but writes a truncated file, as one that ran out of disk can.
  const auto fake = write_file(
      dir.path, "spm_train_truncating",
      "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --model_prefix=*) p=\"${a#--model_prefix=}\";; esac; done\n"
      "printf '\\n\\x05trun' > \"$p.model\"\nexit 0\n");
  ::chmod(fake.c_str(), 0755);
  const char* old = std::getenv("GENNER_SPM_TRAIN");
  const std::string saved = old ? old : "";
  ::setenv("GENNER_SPM_TRAIN", fake.c_str(), 1);
  const std::vector<std::string> corpus = {"a b c", "d e f"};
  check_error([&] { (void)genner::text::Tokenizer::train(corpus, dir.path / "spiece.model"); },
              {"unreadable", "nothing was written", "spiece.model"});
  if (old)
    ::setenv("GENNER_SPM_TRAIN", saved.c_str(), 1);
  else
    ::unsetenv("GENNER_SPM_TRAIN");
  CHECK_FALSE(fs::exists(dir.path / "spiece.model"));
  CHECK_FALSE(fs::exists(dir.path / "spiece.model.tmp.model"));
}

TEST_CASE("a command-line string that is not UTF-8 is refused before it reaches a JSON record", "[hardening]") {
  check_error(
      [] {
        (void)genner::app::parse_command_line({"--description", "caf\xe9"});
      },
      {"--description", "expected UTF-8", "0xE9"});
}

TEST_CASE("JSON nested 100,000 deep is refused at parse time everywhere; messages print a bounded excerpt",
          "[hardening]") {
  genner::test::TempDir dir;
  const std::size_t n = 100000;
  const std::string deep = std::string(n, '[') + std::string(n, ']');
  const std::vector<std::string> too_deep = {"nested at most 64 levels deep"};
  check_error([&] { (void)genner::parse_json(deep, "x.json"); }, {"x.json", too_deep[0]});
  CHECK(genner::parse_json(std::string(64, '[') + std::string(64, ']'), "ok.json").is_array());
  check_error([&] { (void)genner::parse_json(std::string(65, '[') + std::string(65, ']'), "x"); }, too_deep);

  // Every reader of untrusted JSON goes through that bound.
  const auto state = write_file(dir, "state.json", "{\"step\": 3, \"extra\": {\"trajectory\": {\"seed\": " + deep + "}}}");
  check_error([&] { (void)genner::io::read_json_file(state); }, {state.string(), too_deep[0]});
  const auto config = write_file(dir, "c.json", "{\"lr\": " + deep + "}");
  check_error([&] { (void)genner::app::read_config_file(config); }, {config.string(), too_deep[0]});
  const auto run = write_file(dir, "run.json", "{\"experiment\": " + deep + "}");
  check_error([&] { (void)genner::recognize::RunRecord::read(run); }, {run.string(), too_deep[0]});
  check_error([&] { (void)gd::parse_nested_json("{\"ners\":[[" + deep + "]],\"sentences\":[[\"a\"]]}\n", "n.jsonl"); },
              {"n.jsonl:1", too_deep[0]});
  const std::string header = "{\"w\":{\"dtype\":" + deep + ",\"shape\":[1],\"data_offsets\":[0,4]}}";
  std::string st(8, '\0');
  for (int i = 0; i < 8; ++i) st[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  const auto tensors = write_file(dir, "w.safetensors", st + header + std::string(4, '\0'));
  check_error([&] { (void)genner::io::SafetensorsFile(tensors); }, {tensors.string(), "header", too_deep[0]});

  // A key given twice (the last would silently win) is refused, in a config file as in any JSON.
  const auto twice = write_file(dir, "twice.json", "{\"lr\": 0.1, \"epochs\": 2, \"lr\": 0.5}");
  check_error([&] { (void)genner::app::read_config_file(twice); },
              {twice.string(), "each key once per object, found \"lr\" twice"});
  CHECK(genner::parse_json("{\"a\": {\"k\": 1}, \"b\": {\"k\": 2}}", "ok").size() == 2);
  check_error([] { (void)genner::parse_json("[{\"k\": 1, \"k\": 1}]", "n"); }, {"\"k\" twice"});

  // A shallow but huge value in a message is cut to an excerpt.
  std::string wide = "[";
  for (int i = 0; i < 100000; ++i) wide += "[1],";
  wide += "[1]]";
  try {
    (void)gd::parse_nested_json("{\"ners\":[[" + wide + "]],\"sentences\":[[\"a\"]]}\n", "w.jsonl");
    FAIL("expected genner::Error");
  } catch (const genner::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("w.jsonl:1") && Catch::Contains("..."));
    CHECK(std::string(e.what()).size() < 400);
  }
  check_error([&] { genner::train::check_resume_settings({{"seed", 1}}, {{"seed", std::string(1 << 20, 'x')}}, "ck"); },
              {"ck", "seed \"xxxx"});
  // The excerpt never recurses past four levels, nor throws on ill-formed UTF-8.
  nlohmann::json built = 1;
  for (int i = 0; i < 1000; ++i) built = nlohmann::json::array({std::move(built)});
  CHECK(genner::json_excerpt(built) == "[[[[[...]]]]]");
  CHECK(genner::json_excerpt(nlohmann::json(std::string("a\xff"))) == "\"a\xEF\xBF\xBD\"");
  CHECK(genner::json_excerpt(nlohmann::json(std::string(1000, 'y'))).size() <= 90);
}

TEST_CASE("entity types with control, separator or invisible characters are refused, naming the code point",
          "[hardening]") {
  const std::vector<std::pair<std::string, std::string>> bad = {{"PER\\r", "U+000D"},       {"PER\\u000b", "U+000B"},
                                                                {"PER\\u00a0X", "U+00A0"},  {"P\\u2028", "U+2028"},
                                                                {"\\u200bPER", "U+200B"},   {"PER\\u0085", "U+0085"},
                                                                {"PER\\u0000", "U+0000"}};
  for (const auto& [type, cp] : bad) {
    const std::string line = "{\"ners\":[[[0,0,\"" + type + "\"]]],\"sentences\":[[\"a\"]]}\n";
    check_error([&] { (void)gd::parse_nested_json(line, "t.jsonl"); },
                {"t.jsonl:1", "expected an entity type without spaces, control or invisible characters", cp});
  }
  // The message shows the character by name, never raw.
  try {
    (void)gd::parse_nested_json("{\"ners\":[[[0,0,\"PER\\r\"]]],\"sentences\":[[\"a\"]]}\n", "t.jsonl");
  } catch (const genner::Error& e) {
    CHECK(std::string(e.what()).find('\r') == std::string::npos);
    CHECK_THAT(e.what(), Catch::Contains("'PER<U+000D>'"));
  }
  // CoNLL: a vertical tab or a no-break space inside the tag's type.
  check_error([] { (void)gd::parse_conll("EU B-ORG\x0B\nrejects O\n", "v.txt"); }, {"v.txt:1", "U+000B"});
  check_error([] { (void)gd::parse_conll("EU B-OR\xC2\xA0G\n", "n.txt"); }, {"n.txt:1", "U+00A0"});
  CHECK(gd::parse_nested_json("{\"ners\":[[[0,0,\"Gène-X_1\"]]],\"sentences\":[[\"a\"]]}\n", "ok.jsonl").types ==
        std::vector<std::string>{"Gène-X_1"});
  CHECK(genner::core::printable("a\tb\xff") == "a<U+0009>b<0xFF>");
}

TEST_CASE("types differing only in case cannot share a label token", "[hardening]") {
  CHECK(genner::text::Tokenizer::label_token("PER") == genner::text::Tokenizer::label_token("per"));
  check_error([] { (void)gd::LabelSpace::make({"LOC", "PER", "per"}, std::vector<std::int64_t>{300, 301, 301}); },
              {"'PER' and 'per'", "label token 301", "<<per>>", "rename one of the types"});
  CHECK(gd::LabelSpace::make({"LOC", "PER"}, std::vector<std::int64_t>{300, 301}).size() == 2);
}

TEST_CASE("brat text fields hold no raw control or separator characters", "[hardening]") {
  CHECK(genner::recognize::brat_text("a\tb\x0B" "c\r\xE2\x80\xA8" "d\xC2\xA0" "e") == "a b c  d e");
  CHECK(genner::recognize::brat_text("Zürich 東京") == "Zürich 東京");
}

TEST_CASE("line readers accept LF, CRLF and a lone CR", "[hardening]") {
  const std::string conll = "EU B-ORG\rrejects O\r\rGerman B-MISC\rcall O\r";
  const auto cr = gd::parse_conll(conll, "cr.txt");
  REQUIRE(cr.sentences.size() == 2);
  CHECK(cr.sentences[0].words == std::vector<std::string>{"EU", "rejects"});
  CHECK(cr.sentences[1].entities.at(0).type == "MISC");
  const auto mixed = gd::parse_conll("EU B-ORG\r\nrejects O\n\rGerman B-MISC\r\n", "mixed.txt");
  CHECK(mixed.sentences.size() == 2);
  CHECK(gd::parse_nested_json("{\"ners\":[[]],\"sentences\":[[\"a\"]]}\r{\"ners\":[[]],\"sentences\":[[\"b\"]]}\r",
                              "cr.jsonl")
            .sentences.size() == 2);

  std::istringstream in("a\r\nb\rc\n\nd");
  gd::detail::LineReader reader(in, "stdin");
  std::vector<std::string> lines;
  std::vector<std::size_t> breaks;
  for (std::string line; reader.next(line);) {
    lines.push_back(line);
    breaks.push_back(reader.breaks_before_line());
  }
  CHECK(lines == std::vector<std::string>{"a", "b", "c", "", "d"});
  CHECK(breaks == std::vector<std::size_t>{0, 2, 3, 4, 5});
  std::istringstream endless(std::string(100, 'x'));
  gd::detail::LineReader bounded(endless, "zero", 64);
  std::string line;
  check_error([&] { (void)bounded.next(line); }, {"zero:1", "at most 64 bytes"});
}

TEST_CASE("a recognized entity generated twice is kept once, with the higher score", "[hardening]") {
  namespace gr = genner::recognize;
  auto entity = [](std::string type, std::vector<std::pair<int, int>> words, double score) {
    gr::Entity e;
    e.type = std::move(type);
    for (const auto& [a, b] : words) {
      gr::Fragment f;
      f.word_begin = a;
      f.word_end = b;
      e.fragments.push_back(f);
    }
    e.score = score;
    return e;
  };
  std::vector<gr::Entity> found;
  gr::add_unique_entity(found, entity("G", {{0, 2}}, -1.0));
  gr::add_unique_entity(found, entity("G", {{0, 2}}, -0.5));        // duplicate, better score
  gr::add_unique_entity(found, entity("P", {{0, 2}}, -2.0));        // another type
  gr::add_unique_entity(found, entity("G", {{0, 1}, {3, 4}}, -3.0));  // discontinuous
  gr::add_unique_entity(found, entity("G", {{0, 1}, {3, 4}}, -4.0));  // duplicate, worse score
  REQUIRE(found.size() == 3);
  CHECK(found[0].score == -0.5);
  CHECK(found[2].score == -3.0);
}

TEST_CASE("the length guard counts pieces: one enormous word is refused before training", "[hardening]") {
  gd::Dataset data;
  data.sentences.push_back({{"short", "sentence"}, {}});
  data.sentences.push_back({{"a", std::string(60000, 'q')}, {}});
  std::vector<gd::Example> examples(2);
  examples[0].src_ids.assign(3, 5);
  examples[1].src_ids.assign(57000, 5);
  gd::check_source_lengths(std::span(examples).first(1), data, 512, "train");
  check_error([&] { gd::check_source_lengths(examples, data, 512, "the train split of d"); },
              {"the train split of d: sentence 2 (2 words) has 57000 SentencePiece pieces", "2048 = --max_words 512",
               "60000 bytes", "--max_words"});
  gd::check_source_lengths(examples, data, 0, "off");  // --max_words 0: no guard
}

TEST_CASE("the tokenizer's word cache stays bounded; the pretokenizer's rewritten scans keep their results",
          "[hardening]") {
  const auto model = genner::test::t5_spiece_model();
  INFO("the real T5 spiece.model is expected at " << model << " (GENNER_SPIECE)");
  REQUIRE(fs::exists(model));
  auto tok = genner::text::Tokenizer::load(model);
  const auto first = tok.word_pieces("w0");
  const std::size_t n = genner::text::Tokenizer::kMaxCachedWords + 1000;
  for (std::size_t i = 0; i < n; ++i) (void)tok.word_pieces("w" + std::to_string(i));
  CHECK(tok.cached_words() <= genner::text::Tokenizer::kMaxCachedWords);
  CHECK(tok.word_pieces("w0") == first);
  const std::string huge(10000, 'z');
  const auto pieces = tok.word_pieces(huge);
  CHECK(tok.word_pieces(huge) == pieces);

  using genner::text::pretokenize;
  CHECK(pretokenize("He met Mr. Smith in the U.S. today.").words ==
        std::vector<std::string>{"He", "met", "Mr.", "Smith", "in", "the", "U.S.", "today", "."});
  CHECK(pretokenize("x.).)").words == std::vector<std::string>{"x", ".", ")", ".", ")"});
}
