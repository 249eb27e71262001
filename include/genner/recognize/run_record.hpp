// genner/recognize/run_record.hpp: run.json, everything a finished run needs to be evaluated or used
// again next to its weights — settings, types, label rows, backbone shape, tokenizer, the backbone
// folder it started from, its data and the compiled experiment it was trained with — and
// restore_run, which rebuilds the trained model, its tokenizer and label space from a run folder
// (the Recognizer and the evaluate command both start from it).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/data/targets.hpp>
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

/// Rebuilds the run in `run_dir` described by `record` for experiment E: checks that E is the
/// experiment it was trained with, loads its tokenizer, checks the label rows, builds the backbone
/// (the recorded checkpoint folder, or a random one of the recorded shape), then loads the frozen
/// weights a from-scratch run saved and the trained tensors of best.safetensors.
template <class E>
RestoredRun<E> restore_run(const std::filesystem::path& run_dir, const RunRecord& record) {
  const auto file = run_dir / "run.json";
  GENNER_CHECK(record.experiment.is_null() || record.experiment == E::spec().to_json(), file.string(),
               ": the run was trained with the experiment ", record.experiment.dump(), " but it is loaded as ",
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
