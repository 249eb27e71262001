// genner/core/error.hpp: the one exception type genner throws, and the check
// macro that builds its message. Every run-time error says what was expected
// and what was found, and names the file, line or tensor involved.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace genner {

/// Thrown for every recoverable error: bad input files, bad configurations,
/// shape mismatches. `what()` is a complete sentence meant for a person.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
[[nodiscard]] std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

/// Throws genner::Error with the concatenation of `parts`.
template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace genner

/// GENNER_CHECK(cond, parts...): throws genner::Error built from parts when cond is false.
#define GENNER_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::genner::fail(__VA_ARGS__); \
  } while (false)
