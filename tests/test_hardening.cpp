// Tests of hostile input: every fault class of README "Reliability" ends in a genner::Error that
// names the file, line or key (or is handled correctly), never in an abort or a silent change.
#include "support.hpp"

#include <genner/core/utf8.hpp>
#include <genner/data.hpp>
#include <genner/t5.hpp>
#include <genner/text.hpp>
#include <genner/train.hpp>

#include <sys/stat.h>
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

  write_file(dir.path, "run.json.tmp-123", "x");
  fs::create_directories(dir.path / "checkpoint.tmp-77");
  write_file(dir.path, "checkpoint.tmp-77/state.json", "{");
  fs::create_directories(dir.path / "checkpoint");
  write_file(dir.path, "checkpoint/state.json.tmp-9", "x");
  write_file(dir.path, "keep.tmp-x", "x");
  write_file(dir.path, "tmp-1", "x");
  const auto removed = genner::train::remove_stale_temporaries(dir.path);
  CHECK(removed.size() == 3);
  CHECK_FALSE(fs::exists(dir.path / "run.json.tmp-123"));
  CHECK_FALSE(fs::exists(dir.path / "checkpoint.tmp-77"));
  CHECK_FALSE(fs::exists(dir.path / "checkpoint/state.json.tmp-9"));
  CHECK(fs::exists(dir.path / "keep.tmp-x"));
  CHECK(fs::exists(dir.path / "tmp-1"));

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
        (void)genner::train::parse_command_line({"--scratch_d_model", "32", "--scratch_heads", "3"});
      },
      {"--scratch_heads", "divisor of scratch_d_model (32)", "found 3"});
  CHECK(genner::train::parse_command_line({"--scratch_d_model", "32", "--scratch_heads", "4"}).given.size() == 2);
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
        (void)genner::train::parse_command_line({"--description", "caf\xe9"});
      },
      {"--description", "expected UTF-8", "0xE9"});
}
