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

}  // namespace genner::app
