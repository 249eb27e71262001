// genner/data/type_description.hpp: the natural-language name of an entity type, from which a
// model's label row starts (genner/model/label_init.hpp): "PER" -> "person".
#pragma once

#include <cctype>
#include <map>
#include <string>

namespace genner::data {

/// The words a type's label row starts from: a known data set's type names spelled out, anything
/// else lower-cased with '_' and '-' read as spaces ("cell_type" -> "cell type").
[[nodiscard]] inline std::string type_description(const std::string& type) {
  static const std::map<std::string, std::string> known = {{"PER", "person"},
                                                           {"LOC", "location"},
                                                           {"ORG", "organization"},
                                                           {"MISC", "miscellaneous"},
                                                           {"GPE", "country city state"},
                                                           {"ADR", "adverse drug reaction"},
                                                           {"cell_type", "cell type"},
                                                           {"cell_line", "cell line"},
                                                           {"DNA", "DNA"},
                                                           {"RNA", "RNA"},
                                                           {"protein", "protein"},
                                                           {"corporation", "corporation"},
                                                           {"creative-work", "creative work"},
                                                           {"group", "group"},
                                                           {"location", "location"},
                                                           {"person", "person"},
                                                           {"product", "product"}};
  if (auto it = known.find(type); it != known.end()) return it->second;
  std::string out;
  for (char c : type)
    out += (c == '_' || c == '-') ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace genner::data
