// genner/data/splits.hpp: a data set's three splits as a folder holds them — the family's reader,
// the usual file names (train/dev/test with the family's extensions), GENIA's missing train split,
// train+dev, dev carved from train, the first N sentences for quick runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data/conll.hpp>
#include <genner/data/discontinuous.hpp>
#include <genner/data/entity.hpp>
#include <genner/data/family.hpp>
#include <genner/data/nested_json.hpp>

namespace genner::data {

namespace fs = std::filesystem;

/// How load_splits() cuts and combines the splits.
struct SplitOptions {
  std::size_t max_words = kDefaultLengthGuard;  ///< length guard of the readers
  bool train_on_dev = false;                    ///< train on train + dev (CoNLL-2003's published set-up)
  double dev_from_train = 0.0;                  ///< the last share of train becomes dev (GENIA's)
  int64_t max_train_samples = 0;                ///< the first N training sentences only; 0: all
  int64_t max_eval_samples = 0;                 ///< the first N dev and test sentences only; 0: all
  std::string folder_hint;  ///< appended when `dir` is not a folder: where that folder should come from
};

/// The three splits of a data set, loaded with the family's loader.
struct Splits {
  Dataset train, dev, test;
  std::vector<std::string> types;  ///< first-seen order over train, dev, test
  std::vector<std::string> notes;  ///< what a reader should know (no train split, load issues)
};

inline Dataset load_split(Family family, const fs::path& file, size_t length_guard = kDefaultLengthGuard) {
  switch (family) {
    case Family::flat: return load_conll(file, {TagScheme::automatic, length_guard});
    case Family::nested: {
      NestedJsonOptions o;
      o.length_guard = length_guard;
      return load_nested_json(file, o);
    }
    case Family::discontinuous: return load_discontinuous(file, {length_guard});
  }
  fail("unknown data-set family");
}

/// The family's usual extensions of a split file.
inline std::vector<std::string> split_extensions(Family family) {
  switch (family) {
    case Family::flat: return {".txt", ".conll", ".bio", "_conll", ".gold_conll"};
    case Family::nested: return {".jsonl", ".json"};
    case Family::discontinuous: return {".txt"};
  }
  return {};
}

/// `<dir>/<split>.<ext>` for the family's usual extensions, or empty.
inline fs::path find_split(Family family, const fs::path& dir, const std::string& split) {
  for (const auto& e : split_extensions(family))
    if (fs::exists(dir / (split + e))) return dir / (split + e);
  return {};
}

/// Finds `<dir>/<split>.<ext>`, or an error saying where it looked.
inline fs::path split_file(Family family, const fs::path& dir, const std::string& split) {
  auto file = find_split(family, dir, split);
  GENNER_CHECK(!file.empty(), dir.string(), ": no ", split, " split found (looked for ", split,
               split_extensions(family).front(), " and similar)");
  return file;
}

[[nodiscard]] inline Splits load_splits(Family family, const fs::path& dir, const SplitOptions& cfg = {}) {
  Splits s;
  std::error_code ec;
  GENNER_CHECK(fs::is_directory(dir, ec), dir.string(),
               fs::exists(dir, ec) ? ": expected the data set's folder, found a file"
                                   : ": no such folder: the data set is not there",
               cfg.folder_hint);
  const bool has_train = !find_split(family, dir, "train").empty();
  const auto guard = cfg.max_words;
  s.dev = load_split(family, split_file(family, dir, "dev"), guard);
  s.test = load_split(family, split_file(family, dir, "test"), guard);
  if (has_train) {
    s.train = load_split(family, split_file(family, dir, "train"), guard);
  } else {
    // GENIA as shipped here has no train split: train on dev, evaluate on test.
    s.notes.push_back(dir.string() + " has no train split; training on dev and selecting on dev");
    s.train = s.dev;
  }
  GENNER_CHECK(!(cfg.train_on_dev && !has_train), "train_on_dev: ", dir.string(),
               " has no train split, so training already uses dev; drop train_on_dev");
  GENNER_CHECK(!(cfg.dev_from_train > 0.0 && !has_train), "dev_from_train: ", dir.string(),
               " has no train split to carve dev from; drop dev_from_train");
  if (cfg.train_on_dev)
    s.train.sentences.insert(s.train.sentences.end(), s.dev.sentences.begin(), s.dev.sentences.end());
  if (cfg.dev_from_train > 0.0) {
    // Carve the last share of train off as dev (GENIA's published set-up).
    const auto n = s.train.sentences.size();
    const auto k = static_cast<size_t>(cfg.dev_from_train * static_cast<double>(n));
    GENNER_CHECK(k >= 1 && k < n, "dev_from_train ", cfg.dev_from_train, ": carves ", k, " of ", n,
                 " training sentences; choose a share that leaves both parts non-empty");
    s.dev.sentences.assign(s.train.sentences.end() - static_cast<long>(k), s.train.sentences.end());
    s.train.sentences.resize(n - k);
  }
  // Types in first-seen order over train, dev, test: stable across runs of the same data.
  for (const auto* d : {&s.train, &s.dev, &s.test})
    for (const auto& t : d->types)
      if (std::find(s.types.begin(), s.types.end(), t) == s.types.end()) s.types.push_back(t);
  // Quick runs: the first sentences only (types are those of the whole data, so the model keeps its shape).
  const auto cut = [](Dataset& d, int64_t n) {
    if (n > 0 && d.sentences.size() > static_cast<size_t>(n)) d.sentences.resize(static_cast<size_t>(n));
  };
  cut(s.train, cfg.max_train_samples);
  cut(s.dev, cfg.max_eval_samples);
  cut(s.test, cfg.max_eval_samples);
  for (const auto* d : {&s.train, &s.dev, &s.test})
    if (!d->report.issues.empty())
      s.notes.push_back(std::to_string(d->report.issues.size()) + " load issue(s), e.g. " +
                        d->report.issues.front().file + ":" + std::to_string(d->report.issues.front().line) + ": " +
                        d->report.issues.front().message);
  return s;
}

/// Refuses a split that holds an entity type the run was not trained on, naming the split's file, the
/// sentence and the type (encoding it would fail later with no file to look at).
inline void check_known_types(const Dataset& split, const std::string& name, const fs::path& file,
                              const std::vector<std::string>& known, const fs::path& run) {
  for (std::size_t i = 0; i < split.sentences.size(); ++i)
    for (const auto& e : split.sentences[i].entities) {
      if (std::find(known.begin(), known.end(), e.type) != known.end()) continue;
      std::string list;
      for (const auto& t : known) list += (list.empty() ? "" : ", ") + t;
      const auto& words = split.sentences[i].words;
      std::string start;
      for (std::size_t w = 0; w < words.size() && w < 8; ++w) start += (w ? " " : "") + words[w];
      fail(file.string(), ": sentence ", i + 1, " of the ", name, " split (\"", core::printable(start, 60), "\") has entity type '",
           core::printable(e.type), "', which the run in ", run.string(), " was not trained on (its types: ", list,
           "); evaluate on data of the run's types, or train a run on data that has it");
    }
}

}  // namespace genner::data
