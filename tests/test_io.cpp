// Checkpoint I/O: safetensors round trips, Hugging Face folders, and clear errors on bad input.
#include <genner/t5.hpp>
#include "sentencepiece.hpp"

#include <fstream>

#include "support.hpp"

namespace {
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

genner::t5::T5Config tiny_config(genner::t5::FeedForward ff = genner::t5::FeedForward::relu, bool tied = true) {
  genner::t5::T5Config c;
  c.vocab_size = 50;
  c.d_model = 16;
  c.d_ff = 32;
  c.d_kv = 4;
  c.num_heads = 4;
  c.num_layers = 2;
  c.num_decoder_layers = 3;
  c.feed_forward = ff;
  c.tie_word_embeddings = tied;
  return c;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}
/// Replaces the header of a safetensors file by `header` (keeps the data section).
void rewrite_header(const fs::path& p, const std::string& header) {
  auto bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write_bytes(p, out + header + bytes.substr(8 + n));
}
std::string header_of(const fs::path& p) {
  auto bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  return bytes.substr(8, n);
}

bool same_weights(genner::t5::T5Impl& a, genner::t5::T5Impl& b) {
  auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters())
    if (!pb.contains(p.key()) || !torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}
}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes and bytes", "[io]") {
  genner::test::TempDir tmp;
  std::map<std::string, at::Tensor> tensors = {{"a.f32", torch::randn({3, 4})},
                                               {"b.i64", torch::arange(7)},
                                               {"c.bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
                                               {"d.f16", torch::randn({5}).to(torch::kHalf)},
                                               {"e.bool", torch::tensor({true, false, true})},
                                               {"f.scalar", torch::tensor(3.5)},
                                               {"g.empty", torch::zeros({0, 3})}};
  const auto path = tmp.path / "t.safetensors";
  genner::io::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});
  genner::io::SafetensorsFile f(path);
  CHECK(f.metadata()["note"] == "x");
  REQUIRE(f.entries().size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    auto back = f.load(name);
    INFO(name);
    CHECK(back.scalar_type() == t.scalar_type());
    CHECK(back.sizes() == t.sizes());
    CHECK(torch::equal(back, t));
  }
  CHECK(header_of(path).size() % 8 == 0);
  // No temporary file is left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path)) ++files;
  CHECK(files == 1);
}

TEST_CASE("bad safetensors files give errors naming file and tensor", "[io]") {
  genner::test::TempDir tmp;
  const auto path = tmp.path / "bad.safetensors";
  const std::map<std::string, at::Tensor> good = {{"w", torch::randn({4, 4})}, {"v", torch::randn({2})}};
  auto fresh = [&] { genner::io::save_safetensors(path, good); };

  SECTION("missing file") {
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(tmp.path / "nope.safetensors"),
                      Contains("nope.safetensors") && Contains("not found"));
  }
  SECTION("shorter than the length field") {
    write_bytes(path, "abc");
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("bad.safetensors") && Contains("too short"));
  }
  SECTION("truncated data") {
    fresh();
    auto bytes = read_bytes(path);
    write_bytes(path, bytes.substr(0, bytes.size() - 10));
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("bad.safetensors") && Contains("truncated"));
  }
  SECTION("header length beyond the file") {
    fresh();
    auto bytes = read_bytes(path);
    bytes[5] = '\x7f';
    write_bytes(path, bytes);
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("header length"));
  }
  SECTION("header lies about offsets") {
    fresh();
    auto h = nlohmann::json::parse(header_of(path));
    h["w"]["data_offsets"] = {0, 60};
    rewrite_header(path, h.dump());
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("tensor 'w'") && Contains("need 64"));
  }
  SECTION("overlapping tensors") {
    fresh();
    auto h = nlohmann::json::parse(header_of(path));
    h["v"]["data_offsets"] = {8, 16};  // "w" occupies [8, 72)
    rewrite_header(path, h.dump());
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("overlap"));
  }
  SECTION("unknown dtype") {
    fresh();
    auto h = nlohmann::json::parse(header_of(path));
    h["v"]["dtype"] = "F8_E9";
    rewrite_header(path, h.dump());
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("tensor 'v'") && Contains("unknown dtype 'F8_E9'"));
  }
  SECTION("header is not JSON") {
    fresh();
    rewrite_header(path, "{not json");
    CHECK_THROWS_WITH(genner::io::SafetensorsFile(path), Contains("header: expected valid JSON"));
  }
}

TEST_CASE("a T5 written with save_pretrained loads back identically, both flavours", "[io]") {
  genner::test::TempDir tmp;
  for (bool v11 : {false, true}) {
    auto cfg = tiny_config(v11 ? genner::t5::FeedForward::gated_gelu : genner::t5::FeedForward::relu, !v11);
    genner::t5::T5 a(cfg);
    const auto dir = tmp.path / (v11 ? "v11" : "v10");
    genner::t5::save_pretrained(*a, dir);
    genner::io::SafetensorsFile f(dir / "model.safetensors");
    CHECK(f.contains("shared.weight"));
    CHECK_FALSE(f.contains("encoder.embed_tokens.weight"));
    CHECK(f.contains("lm_head.weight") == v11);
    genner::io::LoadReport report;
    auto b = genner::t5::load_pretrained(dir, {}, &report);
    CHECK(b->config().same_structure(cfg));
    CHECK(same_weights(*a, *b));
    CHECK(report.ignored.empty());
  }
}

TEST_CASE("loading accepts tied aliases and rejects missing, misshapen and unknown tensors", "[io]") {
  genner::test::TempDir tmp;
  auto cfg = tiny_config();
  genner::t5::T5 a(cfg);
  const auto dir = tmp.path / "m";
  genner::t5::save_pretrained(*a, dir);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& p : a->named_parameters()) tensors.emplace(p.key(), p.value());
  auto write = [&](std::map<std::string, at::Tensor> t) { genner::io::save_safetensors(dir / "model.safetensors", t); };

  SECTION("shared weight only under its encoder alias, plus the old unused bias table") {
    auto t = tensors;
    t["encoder.embed_tokens.weight"] = t["shared.weight"];
    t.erase("shared.weight");
    t["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch::zeros({32, 4});
    write(t);
    genner::io::LoadReport report;
    auto b = genner::t5::load_pretrained(dir, {}, &report);
    CHECK(same_weights(*a, *b));
    CHECK(report.ignored.size() == 1);
  }
  SECTION("missing tensor") {
    auto t = tensors;
    t.erase("decoder.block.2.layer.1.EncDecAttention.k.weight");
    write(t);
    CHECK_THROWS_WITH(
        genner::t5::load_pretrained(dir),
        Contains("'decoder.block.2.layer.1.EncDecAttention.k.weight' is missing") && Contains("[16, 16]"));
  }
  SECTION("wrong shape") {
    auto t = tensors;
    t["encoder.block.1.layer.1.DenseReluDense.wi.weight"] = torch::zeros({31, 16});
    write(t);
    CHECK_THROWS_WITH(genner::t5::load_pretrained(dir),
                      Contains("model.safetensors") && Contains("encoder.block.1.layer.1.DenseReluDense.wi.weight") &&
                          Contains("[31, 16]") && Contains("[32, 16]"));
  }
  SECTION("unknown tensor") {
    auto t = tensors;
    t["encoder.block.9.layer.0.SelfAttention.q.weight"] = torch::zeros({16, 16});
    write(t);
    CHECK_THROWS_WITH(genner::t5::load_pretrained(dir),
                      Contains("encoder.block.9.layer.0.SelfAttention.q.weight") && Contains("matches no parameter"));
  }
  SECTION("nothing is half-loaded: a failed load leaves the target untouched") {
    auto t = tensors;
    t["shared.weight"] = torch::zeros_like(t["shared.weight"]);
    t["encoder.final_layer_norm.weight"] = torch::zeros({3});
    genner::t5::T5 target(cfg);
    auto before = target->shared->weight.clone();
    genner::io::TensorMap map;
    for (auto& [k, v] : t) map[k] = {v, "x.safetensors"};
    CHECK_THROWS(genner::io::load_into(
        *target, map, "x", [](auto&) { return true; }, [](auto&) { return false; }));
    CHECK(torch::equal(before, target->shared->weight));
  }
  SECTION("no weights at all") {
    fs::remove(dir / "model.safetensors");
    CHECK_THROWS_WITH(genner::t5::load_pretrained(dir), Contains("no model.safetensors"));
  }
}

TEST_CASE("sharded safetensors and pytorch_model.bin folders load", "[io]") {
  genner::test::TempDir tmp;
  auto cfg = tiny_config(genner::t5::FeedForward::gated_gelu, false);
  genner::t5::T5 a(cfg);
  std::map<std::string, at::Tensor> first, second;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& p : a->named_parameters()) {
    const bool to_first = p.key().rfind("encoder", 0) == 0;
    (to_first ? first : second).emplace(p.key(), p.value());
    index["weight_map"][p.key()] = to_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  const auto sharded = tmp.path / "sharded";
  fs::create_directories(sharded);
  genner::io::write_text_atomically(sharded / "config.json", cfg.to_json().dump());
  genner::io::save_safetensors(sharded / "model-00001-of-00002.safetensors", first);
  genner::io::save_safetensors(sharded / "model-00002-of-00002.safetensors", second);
  genner::io::write_text_atomically(sharded / "model.safetensors.index.json", index.dump());
  auto b = genner::t5::load_pretrained(sharded);
  CHECK(same_weights(*a, *b));

  SECTION("a missing shard is named") {
    fs::remove(sharded / "model-00002-of-00002.safetensors");
    CHECK_THROWS_WITH(genner::t5::load_pretrained(sharded),
                      Contains("model-00002-of-00002.safetensors") && Contains("missing"));
  }

  const auto bin = tmp.path / "bin";
  fs::create_directories(bin);
  genner::io::write_text_atomically(bin / "config.json", cfg.to_json().dump());
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& p : a->named_parameters()) dict.insert(p.key(), p.value().detach());
  auto bytes = torch::pickle_save(dict);
  write_bytes(bin / "pytorch_model.bin", std::string(bytes.begin(), bytes.end()));
  auto c = genner::t5::load_pretrained(bin);
  CHECK(same_weights(*a, *c));
}

TEST_CASE("config.json: defaults, presets and mismatches", "[io]") {
  auto c = genner::t5::T5Config::from_json(nlohmann::json{{"d_model", 64}, {"num_layers", 3}});
  CHECK(c.feed_forward == genner::t5::FeedForward::relu);
  CHECK(c.tie_word_embeddings);
  CHECK(c.relative_attention_num_buckets == 32);
  CHECK(c.relative_attention_max_distance == 128);
  CHECK(c.num_decoder_layers == 3);
  CHECK_THROWS_WITH(genner::t5::T5Config::from_json(nlohmann::json{{"feed_forward_proj", "swish"}}, "cfg.json"),
                    Contains("cfg.json") && Contains("swish"));
  CHECK_THROWS_WITH(genner::t5::T5Config::from_json(nlohmann::json{{"d_model", "big"}}, "cfg.json"),
                    Contains("'d_model'"));

  // A static preset accepts its own shape and refuses another.
  auto small = genner::t5::T5Small::config();
  CHECK(genner::t5::resolve_config<genner::t5::T5Small>(small).d_model == 512);
  auto base = genner::t5::T5Base::config();
  CHECK_THROWS_WITH(genner::t5::resolve_config<genner::t5::T5Small>(base, "dir/config.json"),
                    Contains("dir/config.json") && Contains("d_model=512") && Contains("d_model=768"));
  CHECK_THROWS(genner::t5::resolve_config<genner::t5::DynamicBackbone>(std::nullopt));

  const auto fixtures = genner::test::fixtures_root() / "tiny";
  if (fs::exists(fixtures / "config.json")) {
    CHECK_THROWS_WITH(genner::t5::load_pretrained<genner::t5::T5Small>(fixtures),
                      Contains("does not match the compile-time backbone preset"));
  }
}

TEST_CASE("libtorch and sentencepiece live in one program", "[io][deepbind]") {
  // libsentencepiece embeds its own protobuf; genner opens it in isolation so that
  // tensors and real tokenization work side by side in one process.
  genner::test::SpmProcessor sp;
  CHECK_THROWS_WITH(sp.load("/nonexistent/spiece.model"), Contains("/nonexistent/spiece.model"));
  const auto model = genner::test::t5_spiece_model();
  if (fs::exists(model)) {
    sp.load(model.string());
    // ids from `spm_encode --output_format=id` with the same model
    CHECK(sp.encode_ids("Hello world, EU rejects German call") ==
          std::vector<int>{8774, 296, 6, 3371, 15092, 7, 2968, 580});
    CHECK(sp.piece_size() == 32000);
  } else {
    WARN("real T5 spiece.model absent; checked the isolated loader only");
  }
  auto t = torch::ones({2, 3}, torch::kFloat).matmul(torch::ones({3, 2}));
  CHECK(t.sum().item<float>() == 12.0f);
}
