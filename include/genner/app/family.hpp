// genner/app/family.hpp: the data-set families (data/family.hpp) as the command-line application
// names them, and the full fine-tuning program of each.
#pragma once

#include <genner/data/family.hpp>

namespace genner::app {

using data::Family;
using data::family_name;
using data::parse_family;

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
