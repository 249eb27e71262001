// genner/app/family.hpp: the three data-set families the command-line application serves.
#pragma once

#include <string>
#include <string_view>

#include <genner/core/error.hpp>

namespace genner::app {

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

/// The full fine-tuning program of a family (examples/).
inline const char* family_program(Family f) {
  switch (f) {
    case Family::flat: return "flat_ner";
    case Family::nested: return "nested_ner";
    case Family::discontinuous: return "discontinuous_ner";
  }
  return "?";
}

}  // namespace genner::app
