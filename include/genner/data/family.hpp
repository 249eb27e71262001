// genner/data/family.hpp: the three families of NER data sets — flat (CoNLL, OntoNotes, WNUT),
// nested (ACE, GENIA) and discontinuous (CADEC, ShARe) — each with its own file format and reader.
#pragma once

#include <string>

#include <genner/core/error.hpp>

namespace genner::data {

/// Flat (CoNLL, OntoNotes, WNUT), nested (ACE, GENIA) or discontinuous (CADEC, ShARe) NER.
enum class Family { flat, nested, discontinuous };

inline const char* family_name(Family f) {
  switch (f) {
    case Family::flat: return "flat";
    case Family::nested: return "nested";
    case Family::discontinuous: return "discontinuous";
  }
  return "?";
}

/// The family a `family` setting names.
inline Family parse_family(const std::string& name) {
  if (name == "flat") return Family::flat;
  if (name == "nested") return Family::nested;
  if (name == "discontinuous") return Family::discontinuous;
  fail("family: expected flat, nested or discontinuous, found '", name, "'");
}

}  // namespace genner::data
