// genner/recognize/run_record.hpp: run.json, everything a finished run needs to be evaluated or used
// again next to its weights — settings, types, label rows, backbone shape, tokenizer, the backbone
// folder it started from, its data and the compiled experiment it was trained with — and
// restore_run, which rebuilds the trained model, its tokenizer and label space from a run folder
// (the Recognizer and the evaluate command both start from it), after checking the run's manifest
// (manifest.json: SHA-256 of run.json, tokenizer and weights, written when the weights are saved).
#pragma once

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/core/sha256.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data/targets.hpp>
#include <genner/io/atomic_file.hpp>
#include <genner/io/json_file.hpp>
#include <genner/model/checkpoint.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/t5/config.hpp>
#include <genner/text/tokenizer.hpp>

namespace genner::recognize {

struct RunRecord {
  nlohmann::json settings = nlohmann::json::object();
  std::vector<std::string> types;
  std::vector<int64_t> label_token_ids;
  t5::T5Config config;
  std::string tokenizer;      ///< path of spiece.model (relative to the run folder when inside it)
  std::string pretrained;     ///< folder the backbone came from (--model), or empty for a random start
  std::string family;         ///< flat, nested or discontinuous
  std::string data_dir;       ///< the data folder trained on (relative to the run folder when inside it)
  std::string frozen;         ///< file of the frozen weights when they are not a published checkpoint, or empty
  std::string program;        ///< the executable that trained the run
  nlohmann::json experiment;  ///< the compiled experiment (model::ExperimentSpec::to_json), or null

  [[nodiscard]] nlohmann::json to_json() const {
    return {{"settings", settings},       {"types", types},          {"label_token_ids", label_token_ids},
            {"config", config.to_json()}, {"tokenizer", tokenizer},  {"pretrained", pretrained},
            {"family", family},           {"data_dir", data_dir},    {"frozen", frozen},
            {"program", program},         {"experiment", experiment}};
  }
  /// Reads `file`; types, label token ids and config are required, the rest may be absent.
  static RunRecord read(const std::filesystem::path& file) {
    const auto j = io::read_json_file(file, "not a run folder; train first (the train command writes run.json)");
    RunRecord r;
    try {
      r.settings = j.value("settings", nlohmann::json::object());
      r.types = j.at("types").get<std::vector<std::string>>();
      r.label_token_ids = j.at("label_token_ids").get<std::vector<int64_t>>();
      r.config = t5::T5Config::from_json(j.at("config"), file.string());
      r.tokenizer = j.value("tokenizer", "");
      r.pretrained = j.value("pretrained", "");
      r.family = j.value("family", "");
      r.data_dir = j.value("data_dir", "");
      r.frozen = j.value("frozen", "");
      r.program = j.value("program", "");
      r.experiment = j.value("experiment", nlohmann::json());
    } catch (const nlohmann::json::exception& e) {
      fail(file.string(), ": missing or malformed field (", e.what(), ")");
    }
    std::set<std::string> seen;
    for (const auto& t : r.types) {
      GENNER_CHECK(!t.empty() && !core::first_invalid_utf8(t) && !core::first_nonprinting(t), file.string(),
                   ": 'types': expected names without spaces or control characters, found '", core::printable(t), "'");
      GENNER_CHECK(seen.insert(t).second, file.string(), ": 'types': expected distinct types, found '", t, "' twice");
    }
    GENNER_CHECK(r.label_token_ids.size() == r.types.size(), file.string(), ": 'label_token_ids': expected one per type (",
                 r.types.size(), "), found ", r.label_token_ids.size());
    return r;
  }
};

/// A file a run record names: relative paths are relative to the run folder (records are
/// relocatable); a record of an older run may hold one relative to the working directory; with no
/// recorded path, `fallback` inside the run folder. `file` (run.json) names the error.
inline std::filesystem::path locate_recorded(const std::filesystem::path& run_dir, const std::string& recorded,
                                             const std::string& fallback, const std::filesystem::path& file) {
  std::vector<std::filesystem::path> tried;
  if (!recorded.empty()) {
    const std::filesystem::path p(recorded);
    const std::filesystem::path resolved = p.is_relative() ? run_dir / p : p;
    if (std::filesystem::exists(resolved)) return resolved;
    tried.push_back(resolved);
    if (p.is_relative() && std::filesystem::exists(p)) return p;
  }
  if (!fallback.empty()) {
    if (std::filesystem::exists(run_dir / fallback)) return run_dir / fallback;
    tried.push_back(run_dir / fallback);
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t.string();
  fail(file.string(), ": cannot find '", recorded.empty() ? fallback : recorded, "' (looked at ", list, ")");
}

/// Every piece the tokenizer can emit needs an embedding row.
inline void check_vocabulary(const text::Tokenizer& tokenizer, int64_t vocab_size, const std::string& where) {
  GENNER_CHECK(tokenizer.piece_count() <= vocab_size, where, ": the tokenizer has ", tokenizer.piece_count(),
               " pieces but the model's vocabulary (vocab_size) holds ", vocab_size,
               "; use the spiece.model that belongs to the checkpoint");
}

/// A trained run, rebuilt: the model (in training mode, weights as trained), tokenizer and labels.
template <class E>
struct RestoredRun {
  std::shared_ptr<model::NerModelImpl<E>> model;
  text::Tokenizer tokenizer;
  data::LabelSpace labels;
};

/// The files of a run that must belong together, as recorded (relative to the run folder when
/// inside it): run.json, its tokenizer, best.safetensors and, for a from-scratch run with a frozen
/// backbone, the saved frozen weights.
[[nodiscard]] inline std::vector<std::string> manifest_files(const RunRecord& record) {
  std::vector<std::string> out = {"run.json", record.tokenizer.empty() ? std::string("spiece.model") : record.tokenizer,
                                  "best.safetensors"};
  if (!record.frozen.empty()) out.push_back(record.frozen);
  return out;
}

/// Writes `run_dir`/manifest.json, the SHA-256 of each of manifest_files(record), atomically:
/// training refreshes it after every save of best.safetensors, so it always names the last
/// complete set. A run without one (or one whose files changed since) is refused at load.
inline void write_run_manifest(const std::filesystem::path& run_dir, const RunRecord& record) {
  nlohmann::json hashes = nlohmann::json::object();
  for (const auto& f : manifest_files(record)) {
    const std::filesystem::path p(f);
    hashes[f] = core::sha256_file(p.is_relative() ? run_dir / p : p);
  }
  io::write_text_atomically(run_dir / "manifest.json", nlohmann::json{{"sha256", hashes}}.dump(2) + "\n");
}

/// Checks `run_dir`/manifest.json against the files it lists: every file of manifest_files(record)
/// must be listed with its present SHA-256, so a record, tokenizer and weights that were not
/// saved together (a file replaced or edited, a restarted run's leftovers) are refused.
inline void check_run_manifest(const std::filesystem::path& run_dir, const RunRecord& record) {
  const auto file = run_dir / "manifest.json";
  GENNER_CHECK(std::filesystem::exists(file), file.string(),
               ": expected the run's manifest (written with every save of best.safetensors), found none: the run "
               "has not saved its weights yet, or its folder was assembled by hand "
               "(genner::recognize::write_run_manifest writes one)");
  const auto j = io::read_json_file(file);
  GENNER_CHECK(j.is_object() && j.contains("sha256") && j["sha256"].is_object(), file.string(),
               ": expected an object with \"sha256\": {file: hash}, found ", json_excerpt(j));
  const auto& hashes = j["sha256"];
  for (const auto& f : manifest_files(record)) {
    GENNER_CHECK(hashes.contains(f) && hashes[f].is_string(), file.string(), ": expected a SHA-256 for '", f,
                 "', found none; the run's files were not saved together (train again)");
    const std::filesystem::path p(f);
    const auto path = p.is_relative() ? run_dir / p : p;
    GENNER_CHECK(std::filesystem::exists(path), file.string(), ": '", f, "' is listed but ", path.string(),
                 " does not exist");
    const auto now = core::sha256_file(path);
    GENNER_CHECK(now == hashes[f].get<std::string>(), path.string(), ": expected SHA-256 ",
                 json_excerpt(hashes[f]), " as manifest.json records, found ", now,
                 ": the file changed since training saved the run, so the record, tokenizer and weights may not "
                 "belong together; restore the file or train again");
  }
}

/// Rebuilds the run in `run_dir` described by `record` for experiment E: checks that E is the
/// experiment it was trained with, loads its tokenizer, checks the label rows, builds the backbone
/// (the recorded checkpoint folder, or a random one of the recorded shape), then loads the frozen
/// weights a from-scratch run saved and the trained tensors of best.safetensors.
template <class E>
RestoredRun<E> restore_run(const std::filesystem::path& run_dir, const RunRecord& record) {
  const auto file = run_dir / "run.json";
  check_run_manifest(run_dir, record);
  GENNER_CHECK(record.experiment.is_null() || record.experiment == E::spec().to_json(), file.string(),
               ": the run was trained with the experiment ", json_excerpt(record.experiment, 400), " but it is loaded as ",
               E::spec().to_json().dump(), "; load it with the alias it was trained with");
  auto tokenizer = text::Tokenizer::load(locate_recorded(run_dir, record.tokenizer, "spiece.model", file));
  auto labels = data::LabelSpace::make(record.types, tokenizer);
  GENNER_CHECK(labels.token_ids == record.label_token_ids, file.string(),
               ": label token ids differ from the tokenizer's; was spiece.model replaced?");
  model::NerOptions opt;
  opt.types(static_cast<int64_t>(record.types.size()));
  std::shared_ptr<model::NerModelImpl<E>> m;
  if (!record.pretrained.empty()) {
    m = model::NerModelImpl<E>::from_pretrained(locate_recorded(run_dir, record.pretrained, "", file), opt);
  } else {
    opt.with_config(record.config);
    m = std::make_shared<model::NerModelImpl<E>>(opt);
  }
  check_vocabulary(tokenizer, m->config().vocab_size, file.string());
  // A from-scratch run with a frozen backbone saved that random backbone beside its trained tensors.
  if (!record.frozen.empty()) model::load_frozen(*m, locate_recorded(run_dir, record.frozen, "", file));
  model::load_trained(*m, run_dir / "best.safetensors");
  return {std::move(m), std::move(tokenizer), std::move(labels)};
}

}  // namespace genner::recognize
