// genner/model/label_init.hpp: each type's label row started from the word pieces of its
// natural-language name (data::type_description), as genner's programs start every run.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <genner/data/type_description.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/text/tokenizer.hpp>

namespace genner::model {

/// Label rows of `types` (in the model's type order) from the pieces of their descriptions
/// ("PER" -> "person"); a description without pieces starts from the unknown piece.
inline void init_labels_from_names(NerModelCore& model, const std::vector<std::string>& types,
                                   text::Tokenizer& tokenizer) {
  std::vector<std::vector<int64_t>> names;
  for (const auto& t : types) {
    std::vector<int64_t> pieces;
    std::istringstream words(data::type_description(t));
    for (std::string w; words >> w;) {
      const auto& p = tokenizer.word_pieces(w);
      pieces.insert(pieces.end(), p.begin(), p.end());
    }
    if (pieces.empty()) pieces.push_back(text::Tokenizer::kUnkId);
    names.push_back(std::move(pieces));
  }
  model.init_label_embeddings(names);
}

}  // namespace genner::model
