// genner/app/report.hpp: how the command-line application shows and writes scores and predictions.
#pragma once

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/utf8.hpp>
#include <genner/data.hpp>
#include <genner/io/atomic_file.hpp>
#include <genner/train/trainer.hpp>

namespace genner::app {

inline void print_scores(const std::string& title, const train::Evaluation& ev) {
  const auto& m = ev.scores.micro;
  std::cout << std::fixed << std::setprecision(2) << title << ": P " << 100 * m.precision() << "  R "
            << 100 * m.recall() << "  F1 " << 100 * m.f1() << "  (exact match " << 100 * ev.scores.exact_match()
            << "%, " << m.correct << " correct of " << m.predicted << " predicted / " << m.gold << " gold)\n";
  for (const auto& [type, c] : ev.scores.per_type)
    std::cout << "    " << std::left << std::setw(16) << type << std::right << " P " << std::setw(6)
              << 100 * c.precision() << "  R " << std::setw(6) << 100 * c.recall() << "  F1 " << std::setw(6)
              << 100 * c.f1() << "  (gold " << c.gold << ")\n";
}

/// The words of an entity, fragments joined by " ... ".
inline std::string entity_text(const std::vector<std::string>& words, const data::Entity& e) {
  std::string out;
  for (size_t f = 0; f < e.fragments.size(); ++f) {
    if (f) out += " ... ";
    for (int w = e.fragments[f].first; w < e.fragments[f].second; ++w) {
      if (w > e.fragments[f].first) out += ' ';
      out += words[static_cast<size_t>(w)];
    }
  }
  return out;
}

inline nlohmann::json entities_json(const std::vector<std::string>& words, const std::vector<data::Entity>& ents) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : ents) {
    nlohmann::json frags = nlohmann::json::array();
    for (const auto& [s, t] : e.fragments) frags.push_back({s, t});
    out.push_back(
        {{"text", core::json_safe(entity_text(words, e))}, {"type", core::json_safe(e.type)}, {"fragments", frags}});
  }
  return out;
}

inline void print_examples(const data::Dataset& test, const train::Evaluation& ev, size_t count) {
  std::cout << "Example predictions (test):\n";
  for (size_t i = 0; i < std::min(count, test.sentences.size()); ++i) {
    const auto& s = test.sentences[i];
    std::cout << "  " << data::join_words(s.words) << "\n    gold:";
    for (const auto& e : s.entities) std::cout << " [" << entity_text(s.words, e) << "]/" << e.type;
    std::cout << "\n    pred:";
    for (const auto& e : ev.predictions[i]) std::cout << " [" << entity_text(s.words, e) << "]/" << e.type;
    std::cout << "\n";
  }
}

/// One JSON line per sentence: words, gold and predicted entities.
inline void write_predictions(const std::filesystem::path& file, const data::Dataset& d, const train::Evaluation& ev) {
  std::ostringstream text;
  for (size_t i = 0; i < d.sentences.size(); ++i)
    text << nlohmann::json{{"words", d.sentences[i].words},
                           {"gold", entities_json(d.sentences[i].words, d.sentences[i].entities)},
                           {"predicted", entities_json(d.sentences[i].words, ev.predictions[i])}}
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
         << "\n";
  io::write_text_atomically(file, text.str());
}

/// CoNLL lines (word gold pred) for conlleval.
inline void write_conll_predictions(const std::filesystem::path& file, const data::Dataset& d,
                                    const train::Evaluation& ev) {
  io::write_atomically(file, [&](std::ofstream& o) {
    for (size_t i = 0; i < d.sentences.size(); ++i) {
      (void)data::write_conll(o, d.sentences[i].words, d.sentences[i].entities, ev.predictions[i]);
      o << "\n";
    }
  });
}

}  // namespace genner::app
