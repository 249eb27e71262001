// genner/app/run_record.hpp: run.json, everything a finished run needs to be evaluated or used
// again next to its weights: settings, types, label rows, backbone shape, tokenizer, the backbone
// folder it started from, its data and the compiled experiment it was trained with.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/io/json_file.hpp>
#include <genner/t5/config.hpp>

namespace genner::app {

struct RunRecord {
  nlohmann::json settings;
  std::vector<std::string> types;
  std::vector<int64_t> label_token_ids;
  t5::T5Config config;
  std::string tokenizer;      ///< path of spiece.model (relative to the run folder when inside it)
  std::string pretrained;     ///< folder the backbone came from (--model), or empty for a random start
  std::string family;         ///< flat, nested or discontinuous (recognize::Recognizer::load reads it)
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
  static RunRecord read(const std::filesystem::path& file) {
    const auto j = io::read_json_file(file, "no run record here; train first (the train command writes it)");
    RunRecord r;
    try {
      r.settings = j.at("settings");
      r.types = j.at("types").get<std::vector<std::string>>();
      r.label_token_ids = j.at("label_token_ids").get<std::vector<int64_t>>();
      r.config = t5::T5Config::from_json(j.at("config"), file.string());
      r.tokenizer = j.at("tokenizer").get<std::string>();
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

}  // namespace genner::app
