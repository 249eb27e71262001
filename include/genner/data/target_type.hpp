// genner/data/target_type.hpp: how entity targets point into the source (word, bpe, span) and
// the one list of their names, shared by the option table, run.json and the decoding record.
#pragma once

#include <iterator>
#include <string>

#include <genner/core/error.hpp>

namespace genner::data {

enum class TargetType { word, bpe, span };

/// The names of the target types, as the option table, run.json and the decoding record spell them.
inline constexpr const char* kTargetTypeNames[] = {"word", "bpe", "span"};

[[nodiscard]] inline const char* target_type_name(TargetType t) { return kTargetTypeNames[static_cast<int>(t)]; }

/// The target type named `name`; `where` prefixes the error (a setting, a file's key).
[[nodiscard]] inline TargetType parse_target_type(const std::string& name, const std::string& where = "target_type") {
  for (size_t i = 0; i < std::size(kTargetTypeNames); ++i)
    if (name == kTargetTypeNames[i]) return static_cast<TargetType>(i);
  fail(where, ": expected word, bpe or span, found '", name, "'");
}

}  // namespace genner::data
