// genner/data/entity.hpp: the data model shared by every loader (entities as typed word
// fragments, sentences, data sets) and the LoadReport that records what loading changed.
#pragma once

#include <genner/core/error.hpp>
#include <genner/core/utf8.hpp>

#include <algorithm>
#include <compare>
#include <cstddef>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace genner::data {

/// A typed entity: one or more word fragments [start, end), sorted, non-overlapping and
/// non-adjacent (loaders merge touching fragments, since "consecutive words form one fragment").
/// Ordering is docs/METHOD.md §1's target order: first start, then last end, then fragments, then type.
struct Entity {
  std::string type;
  std::vector<std::pair<int, int>> fragments;

  [[nodiscard]] int start() const { return fragments.front().first; }
  [[nodiscard]] int end() const { return fragments.back().second; }
  [[nodiscard]] bool discontinuous() const { return fragments.size() > 1; }

  friend bool operator==(const Entity&, const Entity&) = default;
  friend std::strong_ordering operator<=>(const Entity& a, const Entity& b) {
    if (a.fragments.empty() || b.fragments.empty()) {
      if (auto c = !a.fragments.empty() <=> !b.fragments.empty(); c != 0) return c;
    } else {
      if (auto c = a.start() <=> b.start(); c != 0) return c;
      if (auto c = a.end() <=> b.end(); c != 0) return c;
    }
    if (auto c = a.fragments <=> b.fragments; c != 0) return c;
    return a.type <=> b.type;
  }
  /// Prints `TYPE[s,e)+[s,e)` (test failures, logs).
  friend std::ostream& operator<<(std::ostream& out, const Entity& e) {
    out << e.type;
    for (std::size_t i = 0; i < e.fragments.size(); ++i)
      out << (i ? "+[" : "[") << e.fragments[i].first << ',' << e.fragments[i].second << ')';
    return out;
  }
};

/// Sorts fragments and merges overlapping or adjacent ones; returns true when it changed anything
/// besides order (so loaders can report the repair).
inline bool normalize_fragments(std::vector<std::pair<int, int>>& fragments) {
  std::sort(fragments.begin(), fragments.end());
  std::vector<std::pair<int, int>> merged;
  merged.reserve(fragments.size());
  for (const auto& f : fragments) {
    if (!merged.empty() && f.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, f.second);
    } else {
      merged.push_back(f);
    }
  }
  const bool changed = merged.size() != fragments.size();
  fragments = std::move(merged);
  return changed;
}

/// Words joined by single spaces: the plain-text form of a sentence (corpora, raw input, display).
[[nodiscard]] inline std::string join_words(std::span<const std::string> words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

struct Sentence {
  std::vector<std::string> words;
  std::vector<Entity> entities;  ///< by first start and last end; file order among ties
  friend bool operator==(const Sentence&, const Sentence&) = default;
};

/// One thing a loader changed in the input: where (file:line) and what.
struct LoadIssue {
  enum class Kind { dropped, repaired, split };
  Kind kind;
  std::string file;
  std::size_t line = 0;
  std::string message;
};

/// What a loader dropped, repaired or split. Nothing is lost silently: every change is here.
struct LoadReport {
  std::vector<LoadIssue> issues;

  void add(LoadIssue::Kind kind, std::string file, std::size_t line, std::string message) {
    issues.push_back({kind, std::move(file), line, std::move(message)});
  }
  [[nodiscard]] std::size_t count(LoadIssue::Kind kind) const {
    return static_cast<std::size_t>(
        std::count_if(issues.begin(), issues.end(), [kind](const LoadIssue& i) { return i.kind == kind; }));
  }
  [[nodiscard]] std::size_t dropped() const { return count(LoadIssue::Kind::dropped); }
  [[nodiscard]] std::size_t repaired() const { return count(LoadIssue::Kind::repaired); }
  [[nodiscard]] std::size_t split() const { return count(LoadIssue::Kind::split); }
  [[nodiscard]] bool empty() const { return issues.empty(); }
};

/// A loaded split: sentences, entity type names (sorted, so every split of a corpus agrees
/// when they share types), and the report.
struct Dataset {
  std::vector<Sentence> sentences;
  std::vector<std::string> types;
  LoadReport report;

  [[nodiscard]] std::size_t entity_count() const {
    std::size_t n = 0;
    for (const auto& s : sentences) n += s.entities.size();
    return n;
  }
};

/// Sorted union of type names, for a type list shared by several splits.
[[nodiscard]] inline std::vector<std::string> merge_types(const std::vector<std::vector<std::string>>& lists) {
  std::vector<std::string> out;
  for (const auto& l : lists) out.insert(out.end(), l.begin(), l.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// The length guard of every loader: a sentence longer than `length_guard` words is split where
/// no entity crosses (reported as a split); a piece that still exceeds the guard, because entities
/// cross every cut, is refused with its file:line. Memory of training and decoding grows with the
/// square of the source length (attention) and linearly in the batch's tokens, so this bound is
/// what keeps one sentence from exhausting memory (README "Reliability").
inline constexpr std::size_t kDefaultLengthGuard = 512;

namespace detail {

/// Cuts `s` into pieces of at most `max_words` words where possible, never inside an entity.
inline std::vector<Sentence> split_sentence(Sentence s, std::size_t max_words, const std::string& file,
                                            std::size_t line, LoadReport& report) {
  std::vector<Sentence> out;
  const int n = static_cast<int>(s.words.size());
  if (max_words == 0 || s.words.size() <= max_words) {
    out.push_back(std::move(s));
    return out;
  }
  const auto crosses = [&](int c) {
    for (const auto& e : s.entities)
      if (e.start() < c && c < e.end()) return true;
    return false;
  };
  const int limit = static_cast<int>(max_words);
  std::vector<int> cuts{0};
  while (n - cuts.back() > limit) {
    const int from = cuts.back();
    int cut = -1;
    for (int c = from + limit; c > from && cut < 0; --c)
      if (!crosses(c)) cut = c;
    for (int c = from + limit + 1; c < n && cut < 0; ++c)
      if (!crosses(c)) cut = c;
    if (cut < 0) break;
    cuts.push_back(cut);
  }
  cuts.push_back(n);
  for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
    const int a = cuts[k], b = cuts[k + 1];
    Sentence piece;
    piece.words.assign(s.words.begin() + a, s.words.begin() + b);
    for (const auto& e : s.entities) {
      if (e.start() >= a && e.end() <= b) {
        Entity shifted = e;
        for (auto& f : shifted.fragments) f = {f.first - a, f.second - a};
        piece.entities.push_back(std::move(shifted));
      }
    }
    out.push_back(std::move(piece));
  }
  report.add(
      LoadIssue::Kind::split, file, line,
      "sentence of " + std::to_string(n) + " words split into " + std::to_string(out.size()) + " pieces" +
          (n - cuts[cuts.size() - 2] > limit ? " (the last is still longer than the limit: entities cross every cut)"
                                             : ""));
  return out;
}

/// Appends `s` to `out` under the length guard `limit` (0: off); see kDefaultLengthGuard.
inline void add_guarded(std::vector<Sentence>& out, Sentence s, std::size_t limit, const std::string& file,
                        std::size_t line, LoadReport& report, const char* who) {
  if (limit == 0 || s.words.size() <= limit) {
    out.push_back(std::move(s));
    return;
  }
  const std::size_t n = s.words.size();
  LoadReport local;
  auto pieces = split_sentence(std::move(s), limit, file, line, local);
  for (const auto& p : pieces)
    GENNER_CHECK(p.words.size() <= limit, who, ": ", file, ":", line, ": a sentence of ", n,
                 " words is longer than the length guard (", limit,
                 " words) and entities cross every cut that would shorten it; split it in the file or raise the "
                 "guard (--max_words)");
  for (auto& i : local.issues) report.issues.push_back(std::move(i));
  for (auto& p : pieces) out.push_back(std::move(p));
}

/// Orders the sentence's entities by first start and last end, keeping the file's order among
/// entities that share both (the order the original system writes them in its targets); drops
/// exact duplicates (reported) and collects type names.
inline void finish_sentence(Sentence& s, const std::string& file, std::size_t line, LoadReport& report,
                            std::vector<std::string>& types) {
  for (const auto& e : s.entities) {
    const auto bad = core::first_nonprinting(e.type);
    GENNER_CHECK(!e.type.empty() && !bad, file, ":", line,
                 ": expected an entity type without spaces, control or invisible characters, found '",
                 core::printable(e.type), "'", bad ? " (" + core::code_point_name(*bad) + ")" : std::string());
  }
  std::stable_sort(s.entities.begin(), s.entities.end(), [](const Entity& a, const Entity& b) {
    if (a.fragments.empty() || b.fragments.empty()) return a.fragments.empty() && !b.fragments.empty();
    return std::pair(a.start(), a.end()) < std::pair(b.start(), b.end());
  });
  for (std::size_t i = 1; i < s.entities.size();) {
    if (std::find(s.entities.begin(), s.entities.begin() + static_cast<std::ptrdiff_t>(i), s.entities[i]) !=
        s.entities.begin() + static_cast<std::ptrdiff_t>(i)) {
      report.add(LoadIssue::Kind::dropped, file, line, "duplicate entity of type '" + s.entities[i].type + "' dropped");
      s.entities.erase(s.entities.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (const auto& e : s.entities) types.push_back(e.type);
}

inline void finish_types(std::vector<std::string>& types) {
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
}

}  // namespace detail
}  // namespace genner::data
