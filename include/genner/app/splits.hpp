// genner/app/splits.hpp: a data set's splits as the command-line application reads them
// (data/splits.hpp), with the application's own words for a missing folder (GENNER_DATA,
// --data_dir) and its notes on standard error.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <genner/data/splits.hpp>
#include <genner/app/options.hpp>

namespace genner::app {

namespace fs = std::filesystem;
using data::check_known_types;
using data::find_split;
using data::load_split;
using data::split_file;
using data::Splits;

/// The splits in `dir` as the settings `cfg` choose them; notes go to standard error.
inline Splits load_splits(data::Family family, const fs::path& dir, const RunConfig& cfg) {
  const char* env = std::getenv("GENNER_DATA");
  data::SplitOptions o;
  o.folder_hint = cfg.data_dir.empty()
                      ? "; it is $GENNER_DATA/" + cfg.dataset + " (GENNER_DATA " +
                            (env && *env ? std::string("is ") + env : std::string("is unset: ../shared/data")) +
                            "); set GENNER_DATA to the folder holding " + cfg.dataset +
                            "/, or give --data_dir the folder of its train/dev/test files"
                      : "; --data_dir names the folder holding the train/dev/test files";
  o.max_words = static_cast<std::size_t>(cfg.max_words);
  o.train_on_dev = cfg.train_on_dev;
  o.dev_from_train = cfg.dev_from_train;
  o.max_train_samples = cfg.max_train_samples;
  o.max_eval_samples = cfg.max_eval_samples;
  auto splits = data::load_splits(family, dir, o);
  for (const auto& note : splits.notes) std::cerr << "note: " << note << "\n";
  return splits;
}

}  // namespace genner::app
