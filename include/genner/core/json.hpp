// genner/core/json.hpp: the one parser for untrusted JSON (configs, nested JSON lines, run.json,
// state.json, safetensors headers), which also refuses a key given twice in one object, and a
// bounded excerpt of a JSON value for error messages.
//
// Nesting is bounded while parsing (kMaxJsonDepth levels), so no value that reaches the rest of
// genner can make a recursive operation (dump, comparison, copy) exhaust the stack; an excerpt
// prints at most a few dozen characters and a few levels, whatever the value holds.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <genner/core/error.hpp>

namespace genner {

/// Deepest nesting of arrays and objects accepted in any JSON that genner reads (its own formats
/// need fewer than ten levels).
inline constexpr int kMaxJsonDepth = 64;

namespace detail {
inline void json_excerpt_into(std::string& out, const nlohmann::json& j, std::size_t max_chars, int depth) {
  if (out.size() > max_chars) return;
  if (j.is_array() || j.is_object()) {
    const bool array = j.is_array();
    out += array ? '[' : '{';
    if (depth >= 4 && !j.empty()) {
      out += "...";
    } else {
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (out.size() > max_chars) {
          out += "...";
          break;
        }
        if (!first) out += ',';
        first = false;
        if (!array) out += nlohmann::json(it.key()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + ':';
        json_excerpt_into(out, *it, max_chars, depth + 1);
      }
    }
    out += array ? ']' : '}';
  } else if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    const std::size_t room = max_chars > out.size() ? max_chars - out.size() : 0;
    out += nlohmann::json(s.size() > room ? s.substr(0, room) + "..." : s)
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (j.is_number_float() && !std::isfinite(j.get<double>())) {
    const double x = j.get<double>();
    out += std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");  // dump() would print null
  } else {
    out += j.dump();
  }
}
}  // namespace detail

/// At most about `max_chars` characters of `j` as JSON (longer values end in "..."), at most four
/// levels deep, with ill-formed UTF-8 replaced: safe to put any untrusted value into a message.
[[nodiscard]] inline std::string json_excerpt(const nlohmann::json& j, std::size_t max_chars = 80) {
  std::string out;
  detail::json_excerpt_into(out, j, max_chars, 0);
  if (out.size() > max_chars + 3) out = out.substr(0, max_chars) + "...";
  return out;
}

/// Parses `text` as one JSON value. Invalid JSON, a number out of range (1e999), nesting deeper
/// than kMaxJsonDepth or a key given twice in one object (which would silently keep the last)
/// fail with genner::Error `<where>: expected <what>, found ...`.
[[nodiscard]] inline nlohmann::json parse_json(std::string_view text, std::string_view where,
                                               std::string_view what = "valid JSON") {
  std::string problem;
  std::vector<std::unordered_set<std::string>> keys;  // of each open object
  const nlohmann::json::parser_callback_t check = [&](int depth, nlohmann::json::parse_event_t event,
                                                      nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && depth >= kMaxJsonDepth) {
      problem = detail::concat("nested at most ", kMaxJsonDepth, " levels deep, found deeper nesting");
      throw Error("");  // unwinds the parser; reported below
    }
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty() && parsed.is_string() &&
        !keys.back().insert(parsed.get_ref<const std::string&>()).second) {
      problem = "with each key once per object, found " + json_excerpt(parsed) + " twice";
      throw Error("");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check);
  } catch (const Error&) {
    if (problem.empty()) throw;
    fail(where, ": expected ", what, " ", problem);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    fail(where, ": expected ", what, ", found invalid JSON (", e.what(), ")");
  }
}

}  // namespace genner
