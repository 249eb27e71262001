// Parity with the original system's own outputs (GENNER_SEED_FIXTURES, default
// ../shared/fixtures/seed; its README describes every file). Every case folder found under
// metric/, pipe/, model/ and generate/ runs; with GENNER_SEED_FIXTURES set, a folder without
// cases fails.
#include <genner/genner.hpp>
#include <genner/compat.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// Sub-folders of seed/<kind>/ (sorted); fails when GENNER_SEED_FIXTURES is set and there are none.
std::vector<fs::path> seed_cases(const std::string& kind) {
  std::vector<fs::path> out;
  const auto root = genner::test::seed_fixtures_root() / kind;
  if (fs::is_directory(root))
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  if (out.empty()) {
    if (genner::test::seed_fixtures_required()) FAIL("GENNER_SEED_FIXTURES is set but " << root << " holds no case");
    WARN("no seed fixtures under " << root << "; set GENNER_SEED_FIXTURES");
  }
  return out;
}

/// The .jsonl files of a case folder (sorted); a folder with none fails.
std::vector<fs::path> jsonl_files(const fs::path& folder) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.path().extension() == ".jsonl") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  INFO(folder);
  REQUIRE(!out.empty());
  return out;
}

std::vector<json> read_jsonl(const fs::path& file) {
  std::ifstream in(file);
  INFO(file);
  REQUIRE(in.good());
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(json::parse(line));
  REQUIRE(!rows.empty());
  return rows;
}

/// The original's rounding of a fraction for its report: round(x, 4) * 100.
double original_percent(double x) { return std::round(x * 1e4) / 1e4 * 100.0; }

genner::data::TargetType target_type_of(const std::string& name) {
  if (name == "span") return genner::data::TargetType::span;
  if (name == "bpe") return genner::data::TargetType::bpe;
  REQUIRE(name == "word");
  return genner::data::TargetType::word;
}

}  // namespace

TEST_CASE("Pointer metric reproduces the original metric on every seed metric split", "[seed][metric]") {
  for (const auto& folder : seed_cases("metric")) {
    const auto summary = json::parse(std::ifstream(folder / "summary.json"));
    const auto L = summary.at("num_labels").get<std::int64_t>();
    const auto type = target_type_of(summary.at("target_type").get<std::string>());
    std::vector<std::string> types;
    for (std::int64_t k = 1; k <= L; ++k) types.push_back("type" + std::to_string(k));
    for (const auto& file : jsonl_files(folder)) {
      const std::string split = file.stem().string();
      INFO(folder.filename().string() << "/" << split);
      genner::train::PointerMetric metric(types, type);
      std::size_t disagreeing = 0, rows = 0;
      for (const auto& row : read_jsonl(file)) {
        ++rows;
        const auto pred = row.at("pred").get<std::vector<std::int64_t>>();
        const auto target = row.at("tgt_tokens").get<std::vector<std::int64_t>>();
        const auto s = metric.add(target, pred);
        const auto want_spans = row.at("pred_spans").get<std::vector<std::vector<std::int64_t>>>();
        const auto tfp = row.at("tp_fn_fp").get<std::vector<std::size_t>>();
        // The gold the metric reads off the target is the original's target_span.
        const auto gold = genner::train::target_spans(target, L);
        const bool ok = s.predicted == want_spans && s.tp == tfp.at(0) && s.fn == tfp.at(1) && s.fp == tfp.at(2) &&
                        s.exact == (row.at("em").get<int>() == 1) &&
                        gold == row.at("target_span").get<std::vector<std::vector<std::int64_t>>>();
        if (!ok) {
          ++disagreeing;
          UNSCOPED_INFO("row " << row.at("idx") << " (" << row.at("kind") << ") disagrees: tp/fn/fp " << s.tp << "/"
                               << s.fn << "/" << s.fp << " em " << s.exact);
        }
      }
      const auto& want = summary.at("splits").at(split);
      const auto& c = metric.scores().micro;
      const auto tp = want.at("counts").at("tp").get<std::size_t>();
      const auto fn = want.at("counts").at("fn").get<std::size_t>();
      const auto fp = want.at("counts").at("fp").get<std::size_t>();
      const double f = original_percent(c.f1()), p = original_percent(c.precision()), r = original_percent(c.recall());
      std::cout << "  metric " << std::left << std::setw(10) << folder.filename().string() << std::setw(6) << split
                << rows << " rows, " << disagreeing << " disagree; P/R/F1 " << std::fixed << std::setprecision(2) << p
                << "/" << r << "/" << f << " (original " << want.at("metric").at("pre").get<double>() << "/"
                << want.at("metric").at("rec").get<double>() << "/" << want.at("metric").at("f").get<double>() << ")\n";
      CHECK(disagreeing == 0);
      CHECK(rows == want.at("sentences").get<std::size_t>());
      CHECK(c.correct == tp);
      CHECK(c.gold == tp + fn);
      CHECK(c.predicted == tp + fp);
      CHECK(metric.scores().exact == want.at("counts").at("em").get<std::size_t>());
      CHECK(std::abs(f - want.at("metric").at("f").get<double>()) < 1e-6);
      CHECK(std::abs(p - want.at("metric").at("pre").get<double>()) < 1e-6);
      CHECK(std::abs(r - want.at("metric").at("rec").get<double>()) < 1e-6);
      CHECK(std::abs(std::round(metric.scores().exact_match() * 1e4) / 1e4 - want.at("metric").at("em").get<double>()) <
            1e-9);
    }
  }
}

namespace {

/// The loader the drivers use for a data-set folder name.
genner::data::Dataset load_for(const std::string& dataset, const fs::path& file) {
  if (dataset == "cadec" || dataset.rfind("share", 0) == 0) return genner::data::load_discontinuous(file);
  if (dataset == "genia" || dataset.rfind("ace", 0) == 0) return genner::data::load_nested_json(file);
  return genner::data::load_conll(file);
}

fs::path split_path(const fs::path& dir, const std::string& split) {
  for (const char* ext : {".txt", ".jsonl", ".json", ".conll"})
    if (fs::exists(dir / (split + ext))) return dir / (split + ext);
  FAIL("no " << split << " split under " << dir);
  return {};
}

}  // namespace

TEST_CASE("Pipe: genner's loader, tokenizer and target encoder give the original's ids", "[seed][pipe]") {
  const auto spiece = genner::test::t5_spiece_model();
  for (const auto& folder : seed_cases("pipe")) {
    const std::string dataset = folder.filename().string();
    INFO("pipe/" << dataset);
    REQUIRE(fs::exists(spiece));
    const auto data_dir = genner::test::data_root() / dataset;
    INFO("data folder " << data_dir);
    REQUIRE(fs::is_directory(data_dir));
    const auto labels_json = json::parse(std::ifstream(folder / "labels.json"));
    const auto type = target_type_of(labels_json.at("target_type").get<std::string>());
    std::map<std::string, genner::data::Dataset> splits;
    std::vector<const genner::data::Dataset*> order;
    for (const auto& name : labels_json.at("bundle_order").get<std::vector<std::string>>()) {
      splits.emplace(name, load_for(dataset, split_path(data_dir, name)));
      order.push_back(&splits.at(name));
    }
    auto tokenizer = genner::text::Tokenizer::load(spiece);
    const auto labels = genner::data::make_original_label_space(dataset, order, tokenizer);
    // Label token ids in the original's type order, and the target shift.
    CHECK(labels.token_ids == labels_json.at("label_ids").get<std::vector<std::int64_t>>());
    CHECK(labels.size() + 1 == labels_json.at("target_shift").get<std::int64_t>());
    for (const auto& [token, id] : labels_json.at("mapping2id").items()) {
      INFO("label token " << token);
      CHECK(tokenizer.token_to_id(token) == std::optional<std::int64_t>(id.get<std::int64_t>()));
    }
    for (const auto& file : jsonl_files(folder)) {
      const std::string split = file.stem().string();
      INFO("split " << split);
      REQUIRE(splits.count(split) == 1);
      const auto examples = genner::data::encode_dataset(splits.at(split), tokenizer, labels, type, nullptr,
                                                         genner::data::EntityOrder::start_end);
      const auto rows = read_jsonl(file);
      CHECK(rows.size() == examples.size());
      std::size_t src_bad = 0, tgt_bad = 0;
      for (const auto& row : rows) {
        const auto i = row.at("idx").get<std::size_t>();
        REQUIRE(i < examples.size());
        const auto& ex = examples[i];
        if (ex.src_ids != row.at("src_tokens").get<std::vector<std::int64_t>>() ||
            ex.word_start != row.at("word_first").get<std::vector<std::int64_t>>()) {
          if (++src_bad <= 3) UNSCOPED_INFO("sentence " << i << ": source ids differ");
        }
        if (ex.target != row.at("tgt_tokens").get<std::vector<std::int64_t>>()) {
          if (++tgt_bad <= 3) UNSCOPED_INFO("sentence " << i << ": target differs");
        }
      }
      std::cout << "  pipe " << std::left << std::setw(10) << dataset << std::setw(6) << split << rows.size()
                << " sentences, source mismatches " << src_bad << ", target mismatches " << tgt_bad << "\n";
      CHECK(src_bad == 0);
      CHECK(tgt_bad == 0);
    }
  }
}

// ---- model numerics and decoding -----------------------------------------------------------------

namespace {

namespace gm = genner::model;
namespace gc = genner::compat;
using genner::io::SafetensorsFile;

/// Worst relative difference (support.hpp's rule) per tensor group; prints them and checks them.
struct SeedTally {
  std::string variant;
  std::map<std::string, std::pair<double, std::string>> worst;  // group -> (difference, tensor)
  void add(const std::string& group, const std::string& tensor, const torch::Tensor& ours, const torch::Tensor& ref) {
    INFO(variant << ": " << tensor << " ours " << ours.sizes() << " reference " << ref.sizes());
    REQUIRE(ours.sizes() == ref.sizes());
    const double d = genner::test::relative_difference(ours, ref);
    auto& w = worst[group];
    if (d >= w.first) w = {d, tensor};
  }
  void check() const {
    for (const auto& [group, w] : worst)
      std::cout << "  seed " << std::left << std::setw(20) << variant << std::setw(20) << group << std::scientific
                << std::setprecision(2) << w.first << "  (" << w.second << ")\n";
    for (const auto& [group, w] : worst) {
      INFO(variant << ": worst tensor in group '" << group << "' is " << w.second << " off by " << w.first);
      CHECK(w.first <= genner::test::parity_tolerance);
    }
  }
};

/// Model variant folders (those holding state_dict.safetensors).
std::vector<fs::path> model_variants() {
  std::vector<fs::path> out;
  for (const auto& f : seed_cases("model"))
    if (fs::exists(f / "state_dict.safetensors")) out.push_back(f);
  if (out.empty() && genner::test::seed_fixtures_required())
    FAIL("GENNER_SEED_FIXTURES is set but no model/<variant>/state_dict.safetensors was found");
  return out;
}

std::string meta_mode(const json& meta) { return meta.at("mode").get<std::string>(); }

/// Calls f.template operator()<E>() with the genner experiment matching the variant's mode.
template <class F>
void with_experiment(const json& meta, F&& f) {
  const auto mode = meta_mode(meta);
  const auto& args = meta.at("build_args");
  const bool adapter = args.value("use_adapter", false);
  const int64_t size = adapter ? args.at("adapter_size").get<int64_t>() : 0;
  const int64_t prompt = args.value("num_prompt_tokens", int64_t{0});
  INFO("mode " << mode << ", adapter size " << size << ", prompt tokens " << prompt);
  REQUIRE(args.value("use_encoder_mlp", 0) == 1);
  REQUIRE(args.at("decoder_type").is_null());
  if (mode == "finetune") {
    f.template operator()<gc::SeedFinetune<>>();
  } else if (mode == "adapter" && size == 16) {
    f.template operator()<gc::SeedAdapter<gm::Auto, 16>>();
  } else if (mode == "prompt" && prompt == 1) {
    f.template operator()<gc::SeedPrompt<gm::Auto, 1>>();
  } else if (mode == "adapter+prompt" && size == 16 && prompt == 1) {
    f.template operator()<gc::SeedAdapterPrompt<gm::Auto, 16, 1>>();
  } else {
    FAIL("no compiled genner experiment for this variant; add one to with_experiment()");
  }
}

template <class E>
gm::NerModel<E> import_variant(const fs::path& folder, const json& meta) {
  const auto label_ids = meta.at("build_args").at("label_ids").get<std::vector<int64_t>>();
  auto config = genner::t5::T5Config::from_file(folder / "config.json");
  gm::NerModel<E> m(gm::NerOptions{}.types(static_cast<int64_t>(label_ids.size())).with_config(config));
  const auto placed = gc::load_seed_state_dict(*m, folder / "state_dict.safetensors");
  CHECK(placed.label_tokens == label_ids);
  m->eval();
  return m;
}

/// genner's name(s) of an original parameter; the embedding table is three genner tensors.
std::vector<std::string> genner_names(const std::string& original, const gm::NerModelCore& m) {
  const auto name = gc::seed_parameter_name(original);
  REQUIRE(name.has_value());
  if (*name != "t5.shared.weight") return {*name};
  std::vector<std::string> out{"t5.shared.weight", "label_embeddings"};
  if (m.eos_embedding.defined()) out.push_back("eos_embedding");
  return out;
}

}  // namespace

TEST_CASE("Imported checkpoints reproduce the original's numerics and trainable sets", "[seed][model]") {
  for (const auto& folder : model_variants()) {
    const std::string variant = folder.filename().string();
    INFO("model/" << variant);
    const auto meta = json::parse(std::ifstream(folder / "meta.json"));
    with_experiment(meta, [&]<class E>() {
      auto m = import_variant<E>(folder, meta);
      SeedTally tally{variant, {}};
      SafetensorsFile ref(folder / "reference.safetensors");
      const auto src = ref.load("batch.src_tokens"), mask = ref.load("encoder.mask");
      const auto tgt = ref.load("batch.tgt_tokens"), tlen = ref.load("batch.tgt_seq_len");
      const int64_t B = tgt.size(0), T = tgt.size(1);
      const auto valid = torch::arange(T).unsqueeze(0) < tlen.unsqueeze(1);

      // Decoder input through genner's index -> token map, shifted right behind the start token.
      const auto tokens = m->index_to_token(tgt.masked_fill(valid.logical_not(), -1), src);
      const auto dec_in = torch::cat({torch::zeros({B, 1}, torch::kLong), tokens.narrow(1, 0, T - 1)}, 1);
      CHECK(torch::equal(dec_in, ref.load("decoder.input_ids")));
      const auto targets = tgt.masked_fill(valid.logical_not(), genner::data::kIgnoreIndex);

      {
        torch::NoGradGuard no_grad;
        auto source = m->encode(src, mask);
        tally.add("encoder", "encoder.output", source.hidden, ref.load("encoder.output"));
        tally.add("encoder", "encoder_mlp.output", source.features, ref.load("encoder_mlp.output"));
        auto h = m->t5->decoder->forward(m->embed(dec_in), torch::Tensor(), source.hidden, m->cross_mask(source))
                     .last_hidden_state;
        tally.add("decoder", "decoder.last_hidden_state", h, ref.load("decoder.last_hidden_state"));
        tally.add("pointer scores", "pred", m->scores(h, source), ref.load("pred"));
      }
      // The training forward pass: logits, loss, and the gradient of every trainable tensor.
      m->zero_grad();
      auto out = m->forward(src, mask, dec_in, targets);
      tally.add("pointer scores", "pred (forward)", out.logits, ref.load("pred"));
      tally.add("loss", "loss", out.loss.reshape({1}), ref.load("loss"));
      out.loss.backward();

      std::set<std::string> expected;
      for (const auto& original : meta.at("trainable_param_names").get<std::vector<std::string>>()) {
        const auto names = genner_names(original, *m);
        expected.insert(names.begin(), names.end());
        const auto ref_grad = ref.load("grad." + original);
        auto params = m->named_parameters(true);
        if (names.size() == 1) {
          INFO("gradient of " << original);
          REQUIRE(params[names[0]].grad().defined());
          tally.add("gradients", "grad." + original, params[names[0]].grad(), ref_grad);
        } else {  // the table: genner's table gradient with the label and end rows' gradients in place
          const auto table = params["t5.shared.weight"];
          REQUIRE(table.grad().defined());
          auto g = table.grad().clone();
          const auto lo = m->label_token_offset(), L = m->num_types();
          g.narrow(0, lo, L).add_(params["label_embeddings"].grad());
          g.narrow(0, lo + L, 1).add_(params["eos_embedding"].grad());
          tally.add("gradients", "grad." + original, g, ref_grad);
        }
      }
      // Trainable sets (docs/METHOD.md, departures: behaviour 6): genner trains exactly the
      // original's trainable tensors under the imported experiment.
      std::set<std::string> ours;
      for (const auto& [name, p] : m->trainable_parameters()) ours.insert(name);
      CHECK(ours == expected);
      tally.check();
    });
  }
}

TEST_CASE("Greedy decoding of imported checkpoints reproduces the original's", "[seed][generate]") {
  const auto cases = seed_cases("generate");
  for (const auto& folder : cases) {
    const std::string variant = folder.filename().string();
    INFO("generate/" << variant);
    const auto model_dir = genner::test::seed_fixtures_root() / "model" / variant;
    REQUIRE(fs::exists(model_dir / "state_dict.safetensors"));
    const auto meta = json::parse(std::ifstream(model_dir / "meta.json"));
    const auto settings = json::parse(std::ifstream(folder / "generate.json")).at("settings");
    with_experiment(meta, [&]<class E>() {
      auto m = import_variant<E>(model_dir, meta);
      SeedTally tally{variant + " greedy", {}};
      SafetensorsFile ref(folder / "generate.safetensors");
      const auto src = ref.load("batch.src_tokens"), len = ref.load("batch.src_seq_len");
      const auto mask = (torch::arange(src.size(1)).unsqueeze(0) < len.unsqueeze(1)).to(torch::kLong);
      const gc::SeedGreedyResult r = gc::seed_greedy(*m, src, mask, settings.at("max_length").get<int64_t>(),
                                                     settings.at("max_len_a").get<double>());
      const auto pred = ref.load("greedy.pred");
      INFO("pred ours " << r.pred.sizes() << " reference " << pred.sizes());
      REQUIRE(r.pred.sizes() == pred.sizes());
      const auto mismatched = r.pred.ne(pred).sum().item<int64_t>();
      std::cout << "  seed " << std::left << std::setw(20) << (variant + " greedy") << std::setw(20) << "pred"
                << mismatched << " of " << pred.numel() << " indices differ\n";
      CHECK(mismatched == 0);
      CHECK(torch::equal(r.step_tokens, ref.load("greedy.step_tokens")));
      tally.add("step scores", "greedy.step_scores", r.step_scores, ref.load("greedy.step_scores"));
      tally.check();
    });
  }
}

TEST_CASE("Original adapter blocks and prompt rows are genner's defaults", "[seed][model]") {
  gm::BlockSelection spread;  // the default of Adapters<>
  CHECK(spread.resolve(2, "encoder") == std::vector<int64_t>{0, 1});
  CHECK(spread.resolve(8, "encoder") == std::vector<int64_t>{0, 1, 3, 7});
  CHECK(spread.resolve(12, "encoder") == std::vector<int64_t>{0, 3, 7, 11});
  CHECK(spread.resolve(24, "encoder") == std::vector<int64_t>{0, 7, 15, 23});
  CHECK(gm::NerModelCore::prompt_rows(32100, 3) == std::vector<int64_t>{32010, 32011, 32012});
  const auto rows = gm::NerModelCore::prompt_rows(32100, 100);
  CHECK(rows.size() == 100);
  CHECK(rows[89] == 32099);
  CHECK(rows[90] == 32009);
  CHECK(std::set<int64_t>(rows.begin(), rows.end()).size() == 100);
}

TEST_CASE("Checkpoint import names what it cannot place", "[seed][model]") {
  const auto variants = model_variants();
  if (variants.empty()) return;
  // An adapter checkpoint into a model without adapters: the first adapter tensor is named.
  fs::path adapter_dir;
  for (const auto& v : variants)
    if (json::parse(std::ifstream(v / "meta.json")).at("mode") == "adapter") adapter_dir = v;
  REQUIRE(!adapter_dir.empty());
  const auto meta = json::parse(std::ifstream(adapter_dir / "meta.json"));
  const auto L = static_cast<int64_t>(meta.at("build_args").at("label_ids").size());
  auto config = genner::t5::T5Config::from_file(adapter_dir / "config.json");
  gm::NerModel<gc::SeedFinetune<>> plain(gm::NerOptions{}.types(L).with_config(config));
  try {
    (void)gc::load_seed_state_dict(*plain, adapter_dir / "state_dict.safetensors");
    FAIL("an adapter checkpoint loaded into a model without adapters");
  } catch (const genner::Error& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("adapter") && Catch::Matchers::Contains("does not have"));
  }
  // Wrong number of types: the mapping's shape is named.
  gm::NerModel<gc::SeedAdapter<gm::Auto, 16>> wrong(gm::NerOptions{}.types(L + 1).with_config(config));
  CHECK_THROWS_WITH(gc::load_seed_state_dict(*wrong, adapter_dir / "state_dict.safetensors"),
                    Catch::Matchers::Contains("seq2seq_model.decoder.mapping"));
  // Wrong adapter size: the shape mismatch is named.
  gm::NerModel<gc::SeedAdapter<gm::Auto, 8>> small(gm::NerOptions{}.types(L).with_config(config));
  CHECK_THROWS_WITH(gc::load_seed_state_dict(*small, adapter_dir / "state_dict.safetensors"),
                    Catch::Matchers::Contains("has shape"));
}

TEST_CASE("Label initialisation under SeedCompat reproduces every row the original changed", "[seed][model]") {
  const auto root = genner::test::seed_fixtures_root() / "model";
  std::vector<fs::path> cases;
  if (fs::is_directory(root / "label_init"))
    for (const auto& e : fs::directory_iterator(root / "label_init"))
      if (e.path().extension() == ".json") cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  if (cases.empty()) {
    if (genner::test::seed_fixtures_required()) FAIL("GENNER_SEED_FIXTURES is set but model/label_init holds no case");
    return;
  }
  const auto spiece = genner::test::t5_spiece_model();
  REQUIRE(fs::exists(spiece));
  for (const auto& file : cases) {
    const std::string dataset = file.stem().string();
    INFO("label_init/" << dataset);
    const auto info = json::parse(std::ifstream(file));
    const auto labels_json =
        json::parse(std::ifstream(genner::test::seed_fixtures_root() / "pipe" / dataset / "labels.json"));
    std::vector<genner::data::Dataset> splits;
    for (const auto& name : labels_json.at("bundle_order").get<std::vector<std::string>>())
      splits.push_back(load_for(dataset, split_path(genner::test::data_root() / dataset, name)));
    std::vector<const genner::data::Dataset*> order;
    for (const auto& d : splits) order.push_back(&d);
    auto tokenizer = genner::text::Tokenizer::load(spiece);
    const auto labels = genner::data::make_original_label_space(dataset, order, tokenizer);
    CHECK(labels.token_ids == info.at("label_ids").get<std::vector<int64_t>>());
    // The original's passes: its visiting order (CADEC's single token twice) and each name's pieces.
    const auto passes = gc::seed_label_passes(tokenizer, labels.token_ids);
    std::vector<std::string> visited;
    for (const auto& p : passes) {
      visited.push_back(tokenizer.id_to_token(p.token));
      CHECK(p.pieces == info.at("word_pieces").at(visited.back()).get<std::vector<int64_t>>());
    }
    CHECK(visited == info.at("label_tokens_in_iteration_order").get<std::vector<std::string>>());

    auto m =
        gm::NerModelImpl<gc::SeedFinetune<>>::from_pretrained(root / "t5-relu", gm::NerOptions{}.types(labels.size()));
    m->set_label_tokens(labels.token_ids);
    const auto before = m->t5->shared->weight.detach().clone();
    const auto overwritten = gc::seed_init_label_embeddings(*m, passes);
    const auto& table = m->t5->shared->weight;
    // Every row the original changed, in genner's places: vocabulary rows in the table (the
    // defect reproduced), label rows in label_embeddings, the end row in eos_embedding.
    SafetensorsFile ref(file.parent_path() / (dataset + ".safetensors"));
    const auto rows = ref.load("rows"), seed_rows = ref.load("seed_rows");
    CHECK(rows.size(0) == static_cast<int64_t>(info.at("changed_rows").size()));
    SeedTally tally{"label_init/" + dataset, {}};
    std::vector<int64_t> vocabulary_rows;
    for (int64_t k = 0; k < rows.size(0); ++k) {
      const auto row = rows[k].item<int64_t>();
      const auto name = "row " + std::to_string(row);
      if (row >= m->label_token_offset() && row < m->label_token_offset() + m->num_types()) {
        tally.add("label rows", name, m->label_embeddings[row - m->label_token_offset()], seed_rows[k]);
      } else if (row == info.at("eos_score_row").get<int64_t>()) {
        tally.add("end row", name, m->eos_embedding[0], seed_rows[k]);
      } else {
        vocabulary_rows.push_back(row);
        tally.add("overwritten vocabulary rows", name, table[row], seed_rows[k]);
      }
    }
    CHECK(overwritten == vocabulary_rows);
    // Nothing else of the table moved.
    auto untouched = torch::ones({table.size(0)}, torch::kBool);
    for (const auto r : vocabulary_rows) untouched[r] = false;
    CHECK(torch::equal(table.detach().index({untouched}), before.index({untouched})));
    std::cout << "  seed label_init/" << dataset << ": the original overwrites " << vocabulary_rows.size()
              << " vocabulary row(s); SeedCompat's compat::seed_init_label_embeddings reproduces them\n";
    tally.check();
  }
}

TEST_CASE("genner's own label initialisation never changes a vocabulary row", "[seed][model]") {
  // GENIA's and CADEC's names share first pieces (row 3 '▁', row 2358 '▁cell'): the original's
  // in-place writes would overwrite those rows; genner's init_label_embeddings must not, with or
  // without SeedCompat.
  auto tokenizer = genner::text::Tokenizer::load(genner::test::t5_spiece_model());
  std::vector<std::vector<int64_t>> names;
  for (const char* n : {"cell_line", "cell_type", "dna", "protein", "rna", "adr"}) {
    const auto& p = tokenizer.word_pieces(n);
    names.emplace_back(p.begin(), p.end());
  }
  REQUIRE(names[0].size() > 1);
  REQUIRE(names[0][0] == names[1][0]);  // '▁cell' starts both
  REQUIRE(names[2][0] == names[4][0]);  // '▁' starts dna and rna
  genner::t5::T5Config config;  // T5's 32128 rows, so the label tokens sit at 32100.. as in the original
  config.d_model = 16;
  config.d_ff = 32;
  config.d_kv = 4;
  config.num_heads = 4;
  config.num_layers = 1;
  config.num_decoder_layers = 1;
  const auto check = [&]<class E>() {
    torch::manual_seed(3);
    gm::NerModel<E> m(gm::NerOptions{}.types(static_cast<int64_t>(names.size())).with_config(config));
    const auto before = m->t5->shared->weight.detach().clone();
    const auto labels_before = m->label_embeddings.detach().clone();
    m->init_label_embeddings(names);
    CHECK(torch::equal(m->t5->shared->weight.detach(), before));
    CHECK_FALSE(torch::equal(m->label_embeddings.detach(), labels_before));
    // Each label row is its own name's mean, standardised: cell_type's row does not depend on cell_line's.
    gm::NerModel<E> alone(gm::NerOptions{}.types(1).with_config(config));
    {
      torch::NoGradGuard no_grad;
      alone->t5->shared->weight.copy_(before);
    }
    alone->init_label_embeddings({names[1]});
    CHECK(torch::allclose(alone->label_embeddings[0], m->label_embeddings[1], 1e-6, 1e-6));
  };
  check.template operator()<gm::FullFineTuning<genner::t5::DynamicBackbone>>();
  check.template operator()<gc::SeedFinetune<>>();
  // The original's procedure is refused outside SeedCompat, so it cannot change genner's defaults.
  gm::NerModel<gm::FullFineTuning<genner::t5::DynamicBackbone>> plain(gm::NerOptions{}.types(1).with_config(config));
  CHECK_THROWS_WITH(gc::seed_init_label_embeddings(*plain, {{plain->label_token_offset(), names[0]}}),
                    Catch::Matchers::Contains("SeedCompat"));
}

TEST_CASE("The original's label visiting order", "[seed][model]") {
  CHECK(gc::seed_label_init_order({"<<adr>>"}) == std::vector<std::string>{"<<adr>>", "<<adr>>"});
  CHECK(gc::seed_label_init_order({"<<rna>>", "<<cell_type>>", "<<dna>>"}) ==
        std::vector<std::string>{"<<cell_type>>", "<<dna>>", "<<rna>>"});
  CHECK_THROWS_AS(gc::seed_label_init_order({}), genner::Error);
}

TEST_CASE("Loaders keep the file's order among entities sharing start and end; EntityOrder picks the target's",
          "[seed][pipe]") {
  genner::test::TempDir dir;
  const auto file = dir.path / "tie.txt";
  std::ofstream(file) << "a b c d\n0,1,3,3 X|0,0,2,3 X\n\n";
  const auto d = genner::data::load_discontinuous(file);
  REQUIRE(d.sentences.size() == 1);
  const auto& e = d.sentences[0].entities;
  REQUIRE(e.size() == 2);
  CHECK(e[0].fragments == std::vector<std::pair<int, int>>{{0, 2}, {3, 4}});  // file order kept
  CHECK(e[1].fragments == std::vector<std::pair<int, int>>{{0, 1}, {2, 4}});
  auto tokenizer = genner::text::Tokenizer::load(genner::test::t5_spiece_model());
  const auto labels = genner::data::LabelSpace::make({"X"}, tokenizer);
  const auto src = tokenizer.encode_words(d.sentences[0].words);
  const auto p = [&](int w) { return labels.size() + 1 + src.word_start[static_cast<std::size_t>(w)]; };
  const auto given = genner::data::encode_target(src, e, labels, genner::data::TargetType::word, nullptr,
                                                 genner::data::EntityOrder::start_end);
  CHECK(given.indices == std::vector<std::int64_t>{p(0), p(1), p(3), 1, p(0), p(2), p(3), 1, 0});
  const auto sorted = genner::data::encode_target(src, e, labels, genner::data::TargetType::word);
  CHECK(sorted.indices == std::vector<std::int64_t>{p(0), p(2), p(3), 1, p(0), p(1), p(3), 1, 0});
}

TEST_CASE("Pointer metric rules on hand-made sequences", "[seed][metric]") {
  using genner::data::TargetType;
  genner::train::PointerMetric word({"A", "B"}, TargetType::word);
  // gold: (3,4,A) (6,B); predicted: (4,3,A) not increasing, (6,B) twice, no end index: last dropped.
  const auto s =
      word.add(std::vector<std::int64_t>{3, 4, 1, 6, 2, 0}, std::vector<std::int64_t>{4, 3, 1, 6, 2, 6, 2, 7});
  CHECK(s.predicted == std::vector<std::vector<std::int64_t>>{{6, 2}, {6, 2}});
  CHECK(s.tp == 1);
  CHECK(s.fn == 1);
  CHECK(s.fp == 0);
  CHECK_FALSE(s.exact);
  genner::train::PointerMetric span({"A"}, TargetType::span);
  const auto t = span.add(std::vector<std::int64_t>{3, 3, 1, 0}, std::vector<std::int64_t>{3, 3, 1, 4, 1, 0});
  CHECK(t.predicted == std::vector<std::vector<std::int64_t>>{{3, 3, 1}});  // an odd pointer count is dropped
  CHECK(t.tp == 1);
  CHECK(t.fp == 0);
  CHECK(span.scores().micro.f1() == 1.0);
  CHECK(span.scores().rules == genner::train::MetricRules::pointer);
  CHECK(span.scores().to_json().at("metric") == "pointer");
  CHECK_THROWS_AS(genner::train::parse_metric_rules("words"), genner::Error);
}

// ---- untied backbones (T5 v1.1, FLAN) --------------------------------------------------------------

TEST_CASE("NER models of untied backbones build no LM head; the original's checkpoints of them import",
          "[seed][model]") {
  const auto variants = model_variants();
  if (variants.empty()) return;
  fs::path adapter_dir;
  for (const auto& v : variants)
    if (json::parse(std::ifstream(v / "meta.json")).at("mode") == "adapter") adapter_dir = v;
  REQUIRE(!adapter_dir.empty());
  const auto meta = json::parse(std::ifstream(adapter_dir / "meta.json"));
  const auto L = static_cast<int64_t>(meta.at("build_args").at("label_ids").size());
  auto config = genner::t5::T5Config::from_file(adapter_dir / "config.json");
  config.tie_word_embeddings = false;  // as T5 v1.1 / FLAN; the original's T5Model has no head either way
  using E = gc::SeedAdapter<gm::Auto, 16>;
  gm::NerModel<E> untied(gm::NerOptions{}.types(L).with_config(config));
  CHECK(untied->named_parameters(true).find("t5.lm_head.weight") == nullptr);
  CHECK_THROWS_WITH(untied->t5->lm_logits(torch::zeros({1, 1, config.d_model})), Catch::Matchers::Contains("LM head"));
  const auto placed = gc::load_seed_state_dict(*untied, adapter_dir / "state_dict.safetensors");
  for (const auto& [original, name] : placed.placed) CHECK(name.find("lm_head") == std::string::npos);
  untied->eval();
  auto tied = import_variant<E>(adapter_dir, meta);
  SafetensorsFile ref(adapter_dir / "reference.safetensors");
  const auto src = ref.load("batch.src_tokens"), mask = ref.load("encoder.mask");
  const auto dec_in = ref.load("decoder.input_ids");
  torch::NoGradGuard no_grad;
  const auto a = untied->forward(src, mask, dec_in).logits, b = tied->forward(src, mask, dec_in).logits;
  CHECK(torch::equal(a, b));
  CHECK(genner::test::relative_difference(a, ref.load("pred")) <= genner::test::parity_tolerance);

  // A backbone built with a head (a plain T5's default) has a tensor no checkpoint of the original fills.
  auto structure = E::spec().structure(config, {});
  structure.lm_head = true;
  gm::NerModel<E> with_head(std::make_shared<gm::NerModelImpl<E>>(gm::NerOptions{}.types(L).with_config(config),
                                                                 genner::t5::T5(config, structure)));
  CHECK_THROWS_WITH(gc::load_seed_state_dict(*with_head, adapter_dir / "state_dict.safetensors"),
                    Catch::Matchers::Contains("t5.lm_head.weight") && Catch::Matchers::Contains("T5Model"));
}

TEST_CASE("A Hugging Face checkpoint's untied LM head is skipped by NER models and kept by a plain T5",
          "[seed][model]") {
  genner::t5::T5Config c;
  c.vocab_size = 64;
  c.d_model = 16;
  c.d_ff = 32;
  c.d_kv = 4;
  c.num_heads = 2;
  c.num_layers = 1;
  c.num_decoder_layers = 1;
  c.feed_forward = genner::t5::FeedForward::gated_gelu;
  c.tie_word_embeddings = false;
  genner::test::TempDir dir;
  torch::manual_seed(11);
  genner::t5::T5 plain(c);
  REQUIRE(!plain->lm_head.is_empty());
  genner::t5::save_pretrained(*plain, dir.path);
  genner::io::LoadReport report;
  auto again = genner::t5::load_pretrained(dir.path, {}, &report);
  CHECK(torch::equal(again->lm_head->weight, plain->lm_head->weight));
  using E = gm::FullFineTuning<genner::t5::DynamicBackbone>;
  auto m = gm::NerModelImpl<E>::from_pretrained(dir.path, gm::NerOptions{}.types(2));
  CHECK(m->named_parameters(true).find("t5.lm_head.weight") == nullptr);
  CHECK(torch::equal(m->t5->shared->weight, plain->shared->weight));
  auto headless = genner::t5::load_pretrained(dir.path, E::spec().structure(c, {}), &report);
  CHECK(std::count(report.ignored.begin(), report.ignored.end(), "lm_head.weight") == 1);
  // A headless T5 still draws its head's initial values: what is built after it starts alike.
  genner::t5::T5Structure no_head;
  no_head.lm_head = false;
  torch::manual_seed(12);
  genner::t5::T5 a(c);
  const auto after_a = torch::randn({8});
  torch::manual_seed(12);
  genner::t5::T5 b(c, no_head);
  const auto after_b = torch::randn({8});
  CHECK(b->lm_head.is_empty());
  CHECK(torch::equal(after_a, after_b));
  CHECK(torch::equal(a->decoder->named_parameters().values().back(), b->decoder->named_parameters().values().back()));
  // Written back without a head, as Hugging Face's T5Model writes an untied backbone.
  genner::test::TempDir out;
  genner::t5::save_pretrained(*headless, out.path);
  CHECK_FALSE(SafetensorsFile(out.path / "model.safetensors").contains("lm_head.weight"));
}

// ---- optimisation trajectories -------------------------------------------------------------------

namespace {

/// The trajectory cases: GENNER_SEED_FIXTURES/trajectory when that folder exists, else the ones
/// committed under tests/data/seed/trajectory (tools/seed_trajectory.py wrote both).
std::vector<fs::path> trajectory_cases() {
  auto root = genner::test::seed_fixtures_root() / "trajectory";
  if (!fs::is_directory(root)) root = genner::test::source_dir() / "tests" / "data" / "seed" / "trajectory";
  std::vector<fs::path> out;
  if (fs::is_directory(root))
    for (const auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "trajectory.json")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  INFO("trajectory root " << root);
  CHECK(!out.empty());  // the committed cases always exist
  return out;
}

/// tools/seed_trajectory.py's backbone weights: a splitmix64 finaliser over fnv1a64(name) + (i+1)·golden
/// gives u = (z >> 40)·2^-24; layer norms 1 + (2u-1)/2, other tensors (2u-1)·std·sqrt(3) with std 1
/// for the table and the relative bias, in^-0.5 for a Linear weight [out, in].
torch::Tensor trajectory_weight(const std::string& name, c10::IntArrayRef shape) {
  std::uint64_t key = 0xCBF29CE484222325ull;
  for (const unsigned char ch : name) key = (key ^ ch) * 0x100000001B3ull;
  const bool norm = name.ends_with("layer_norm.weight");
  const bool unit = name == "shared.weight" || name.ends_with("relative_attention_bias.weight");
  REQUIRE((norm || shape.size() == 2));
  const double half = norm ? 0.0 : (unit ? 1.0 : std::pow(double(shape[1]), -0.5)) * std::sqrt(3.0);
  auto out = torch::empty(shape, torch::kFloat);
  auto* v = out.data_ptr<float>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    std::uint64_t z = key + std::uint64_t(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = double(z >> 40) * 0x1p-24;
    v[i] = static_cast<float>(norm ? 1.0 + (2.0 * u - 1.0) * 0.5 : (2.0 * u - 1.0) * half);
  }
  return out;
}

genner::t5::T5Config trajectory_config(const json& j) {
  auto c = genner::t5::T5Config::from_json(j, "trajectory.json:config");
  return c;
}

template <class E>
void run_trajectory(const fs::path& folder, const json& meta) {
  const std::string variant = folder.filename().string();
  const auto label_ids = meta.at("label_ids").get<std::vector<int64_t>>();
  const auto L = static_cast<int64_t>(label_ids.size());
  const auto config = trajectory_config(meta.at("config"));
  gm::NerModel<E> m(gm::NerOptions{}.types(L).with_config(config));
  // The backbone, rebuilt from the generator's rule: exactly its parameter names.
  std::set<std::string> ours, theirs;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->t5->named_parameters(true)) {
      if (!genner::t5::is_backbone_parameter(p.key())) continue;
      ours.insert(p.key());
      p.value().copy_(trajectory_weight(p.key(), p.value().sizes()));
    }
  }
  for (const auto& n : meta.at("backbone_names")) theirs.insert(n.get<std::string>());
  CHECK(ours == theirs);
  const auto table0 = m->t5->shared->weight.detach().clone();
  // The label tokens as the original's tokenizer numbers them, and its label initialisation.
  auto tokenizer = genner::text::Tokenizer::load(genner::test::t5_spiece_model());
  std::vector<std::pair<int64_t, std::string>> by_id;
  for (const auto& [token, id] : meta.at("mapping2id").items()) by_id.emplace_back(id.template get<int64_t>(), token);
  std::sort(by_id.begin(), by_id.end());
  for (const auto& [id, token] : by_id) REQUIRE(tokenizer.add_token(token) == id);
  m->set_label_tokens(label_ids);
  const auto overwritten = gc::seed_init_label_embeddings(*m, gc::seed_label_passes(tokenizer, label_ids));
  SafetensorsFile initial(folder / "initial.safetensors");
  SeedTally tally{"trajectory " + variant, {}};
  {
    const auto rows = initial.load("embed.rows"), values = initial.load("embed.values");
    const int64_t lo = m->label_token_offset();
    for (int64_t k = 0; k < rows.size(0); ++k) {
      const auto r = rows[k].item<int64_t>();
      const auto ours_row = r >= lo && r < lo + L ? m->label_embeddings[r - lo]
                            : r == lo + L        ? m->eos_embedding[0]
                                                 : m->t5->shared->weight[r];
      tally.add("initial rows", "row " + std::to_string(r), ours_row, values[k]);
    }
    CHECK(rows.size(0) == L + 1 + static_cast<int64_t>(overwritten.size()));
  }
  // The original's initial adapters and encoder MLP.
  auto params = m->named_parameters(true);
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, entry] : initial.entries()) {
      if (name.rfind("embed.", 0) == 0) continue;
      const auto g = gc::seed_parameter_name(name);
      INFO("initial tensor " << name);
      REQUIRE(g.has_value());
      REQUIRE(params.find(*g) != nullptr);
      params[*g].copy_(initial.load(name));
    }
  }
  m->eval();  // dropout off, as the fixture ran

  // Optimiser: genner's three groups must give every tensor the original's lr and weight decay.
  const auto lr = meta.at("groups").at(0).at("lr").get<double>();
  std::map<std::string, double> original_decay;
  for (const auto& g : meta.at("groups")) {
    CHECK(g.at("lr").get<double>() == lr);
    for (const auto& n : g.at("params")) original_decay[n.get<std::string>()] = g.at("weight_decay").get<double>();
  }
  auto optimizer = m->make_adamw(lr, 0.01);
  std::map<const void*, std::string> name_of;
  for (const auto& p : params) name_of[p.value().unsafeGetTensorImpl()] = p.key();
  std::map<std::string, double> genner_decay;
  for (auto& group : optimizer->param_groups())
    for (const auto& p : group.params())
      genner_decay[name_of.at(p.unsafeGetTensorImpl())] =
          static_cast<torch::optim::AdamWOptions&>(group.options()).weight_decay();
  std::set<std::string> expected;
  for (const auto& original : meta.at("trainable").get<std::vector<std::string>>()) {
    for (const auto& g : genner_names(original, *m)) {
      expected.insert(g);
      INFO("weight decay of " << original << " (genner's " << g << ")");
      REQUIRE(genner_decay.count(g) == 1);
      CHECK(genner_decay.at(g) == original_decay.at(original));
    }
  }
  std::set<std::string> trained;
  for (const auto& [name, p] : m->trainable_parameters()) trained.insert(name);
  CHECK(trained == expected);
  const auto steps = meta.at("steps").get<int64_t>();
  genner::train::LinearSchedule schedule(*optimizer, meta.at("schedule").at("total_steps").get<int64_t>(),
                                         genner::train::Warmup::fraction(meta.at("schedule").at("warmup").get<double>()),
                                         genner::train::ScheduleConvention::original);
  const auto clip = meta.at("clip_value").get<double>();
  const auto trainable = genner::train::optimizer_params(*optimizer);

  SafetensorsFile batches(folder / "batches.safetensors");
  const auto order = meta.at("batch_order").get<std::vector<int64_t>>();
  REQUIRE(static_cast<int64_t>(order.size()) == steps);
  std::vector<double> losses;
  for (int64_t step = 0; step < steps; ++step) {
    const auto b = "batch." + std::to_string(order[static_cast<size_t>(step)]) + ".";
    const auto src = batches.load(b + "src_tokens"), len = batches.load(b + "src_seq_len");
    const auto tgt = batches.load(b + "tgt_tokens"), tlen = batches.load(b + "tgt_seq_len");
    const auto mask = (torch::arange(src.size(1)).unsqueeze(0) < len.unsqueeze(1)).to(torch::kLong);
    const int64_t B = tgt.size(0), T = tgt.size(1);
    const auto valid = torch::arange(T).unsqueeze(0) < tlen.unsqueeze(1);
    const auto tokens = m->index_to_token(tgt.masked_fill(valid.logical_not(), -1), src);
    const auto dec_in = torch::cat({torch::zeros({B, 1}, torch::kLong), tokens.narrow(1, 0, T - 1)}, 1);
    const auto targets = tgt.masked_fill(valid.logical_not(), genner::data::kIgnoreIndex);
    // Every group runs at the original's learning rate of this update (all its groups share one).
    const auto& want_lrs = meta.at("lr").at(static_cast<size_t>(step));
    for (const auto& w : want_lrs) REQUIRE(w.get<double>() == want_lrs.at(0).get<double>());
    for (auto& group : optimizer->param_groups()) {
      const auto want = want_lrs.at(0).get<double>(), got = group.options().get_lr();
      INFO("step " << step + 1 << " lr ours " << got << " original " << want);
      CHECK(std::abs(got - want) <= 1e-12 * lr);
    }
    optimizer->zero_grad();
    auto out = m->forward(src, mask, dec_in, targets);
    losses.push_back(out.loss.template item<double>());
    const auto want = meta.at("loss").at(static_cast<size_t>(step)).get<double>();
    const int64_t first = step / 10 * 10 + 1;
    tally.add("loss steps " + std::to_string(first) + "-" + std::to_string(std::min(steps, first + 9)),
              "loss at step " + std::to_string(step + 1), out.loss.detach().reshape({1}),
              torch::tensor({want}, torch::kDouble));
    out.loss.backward();
    genner::train::clip_grad_value(trainable, clip);
    optimizer->step();
    schedule.step();
  }

  // Every trainable tensor after the last step.
  SafetensorsFile final_state(folder / "final.safetensors");
  params = m->named_parameters(true);
  for (const auto& original : meta.at("trainable").get<std::vector<std::string>>()) {
    const auto names = genner_names(original, *m);
    if (names.size() == 1) {
      tally.add("tensors after step " + std::to_string(steps), original, params[names[0]],
                final_state.load(original));
      continue;
    }
    // The table: rows that never received a gradient only decay (as the generator checked, bit for
    // bit); the others are stored. genner keeps the label and end rows apart.
    const double wd = original_decay.at(original);
    auto ref = table0.clone();
    const auto rows = initial.load("embed.rows");
    ref.index_copy_(0, rows, initial.load("embed.values"));
    for (const auto& lrs : meta.at("lr")) ref.mul_(1 - lrs.at(0).get<double>() * wd);
    ref.index_copy_(0, final_state.load("embed.touched_rows"), final_state.load("embed.touched_values"));
    auto g = params["t5.shared.weight"].detach().clone();
    const auto lo = m->label_token_offset();
    g.narrow(0, lo, L).copy_(params["label_embeddings"]);
    g.narrow(0, lo + L, 1).copy_(params["eos_embedding"]);
    tally.add("tensors after step " + std::to_string(steps), original, g, ref);
  }
  std::cout << "  seed trajectory " << variant << ": loss " << std::fixed << std::setprecision(6) << losses.front()
            << " -> " << losses.back() << " over " << steps << " steps\n";
  tally.check();
}

}  // namespace

TEST_CASE("Training under SeedCompat follows the original's trajectory: loss at every step, tensors after the last",
          "[seed][trajectory]") {
  for (const auto& folder : trajectory_cases()) {
    INFO("trajectory/" << folder.filename().string());
    const auto meta = json::parse(std::ifstream(folder / "trajectory.json"));
    const auto mode = meta.at("mode").get<std::string>();
    REQUIRE(meta.at("use_encoder_mlp").get<int>() == 1);
    if (mode == "finetune") {
      run_trajectory<gc::SeedFinetune<>>(folder, meta);
    } else if (mode == "adapter" && meta.at("adapter_size").get<int64_t>() == 16) {
      run_trajectory<gc::SeedAdapter<gm::Auto, 16>>(folder, meta);
    } else {
      FAIL("no compiled genner experiment for trajectory mode " << mode << "; add one to this test");
    }
  }
}

TEST_CASE("The original's linear schedule counts updates from 1 and keeps a fractional warm-up", "[seed][trajectory]") {
  using genner::train::original_linear_warmup_decay;
  // fastNLP's WarmupCallback('linear') at 30 updates and warm-up 0.1: updates 1, 2 warm up; 30 gets 0.
  CHECK(original_linear_warmup_decay(1, 30, 0.1) == Approx(1.0 / 3.0));
  CHECK(original_linear_warmup_decay(3, 30, 0.1) == Approx(1.0));
  CHECK(original_linear_warmup_decay(4, 30, 0.1) == Approx(26.0 / 27.0));
  CHECK(original_linear_warmup_decay(30, 30, 0.1) == 0.0);
  // train_t5.py's 1% of 1000 updates: the first update already moves (genner's own schedule gives 0).
  CHECK(original_linear_warmup_decay(1, 1000, 0.01) == Approx(0.1));
  CHECK(genner::train::linear_warmup_decay(0, 1000, 10) == 0.0);
  auto p = torch::zeros({1}, torch::requires_grad());
  torch::optim::AdamW opt({p}, torch::optim::AdamWOptions(1.0));
  CHECK_THROWS_AS(genner::train::LinearSchedule(opt, 10, genner::train::Warmup::fraction(1.0),
                                                genner::train::ScheduleConvention::original),
                  genner::Error);
  genner::train::LinearSchedule s(opt, 30, genner::train::Warmup::fraction(0.1),
                                  genner::train::ScheduleConvention::original);
  CHECK(opt.param_groups()[0].options().get_lr() == Approx(1.0 / 3.0));
  s.step();
  CHECK(opt.param_groups()[0].options().get_lr() == Approx(2.0 / 3.0));
}
