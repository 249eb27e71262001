// genner/generate/overlaps.hpp: the resolution rule that keeps flat NER flat.
#pragma once

#include <cstddef>
#include <set>
#include <vector>

#include <genner/data/entity.hpp>

namespace genner::generate {

/// Flat NER never returns two entities that share a word. Rule: entities are kept in the order
/// they were generated (the decoder writes them left to right, as the training targets order
/// them), and an entity that shares a word with one kept before it is dropped. Returns the number
/// of entities dropped.
inline std::size_t remove_overlaps(std::vector<data::Entity>& entities) {
  std::set<int> taken;
  std::vector<data::Entity> kept;
  kept.reserve(entities.size());
  std::size_t dropped = 0;
  for (auto& e : entities) {
    bool clash = false;
    for (const auto& [s, t] : e.fragments)
      for (int w = s; w < t && !clash; ++w) clash = taken.count(w) > 0;
    if (clash) {
      ++dropped;
      continue;
    }
    for (const auto& [s, t] : e.fragments)
      for (int w = s; w < t; ++w) taken.insert(w);
    kept.push_back(std::move(e));
  }
  entities = std::move(kept);
  return dropped;
}

}  // namespace genner::generate
