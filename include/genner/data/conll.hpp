// genner/data/conll.hpp: CoNLL column files (word first, tag last; IOB1, BIO or BIOES) into a
// Dataset, and the BIO "word gold pred" writer the conlleval script scores.
//
// Tag decoding follows conlleval: a chunk starts at B-X, at I-X after O / after another type /
// at sentence start, at S-X, and (BIOES) after E-X or S-X. IOB1 and BIO therefore decode alike; in
// BIO and BIOES files an I-X/E-X that has to open a chunk, or a chunk left open without E-, is a
// repair and is listed in the LoadReport with its file:line. An unknown tag prefix throws.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/detail/lines.hpp>
#include <genner/data/entity.hpp>

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace genner::data {

enum class TagScheme { automatic, iob1, bio, bioes };

struct ConllOptions {
  TagScheme scheme = TagScheme::automatic;
  std::size_t length_guard = kDefaultLengthGuard;  ///< see entity.hpp; 0: off
};

namespace detail {

struct Tag {
  char prefix = 'O';  // O, B, I, E, S
  std::string type;
};

inline Tag parse_tag(std::string_view tag, const std::filesystem::path& file, std::size_t line) {
  if (tag == "O") return {};
  GENNER_CHECK(tag.size() >= 3 && tag[1] == '-' && std::string_view("BIES").find(tag[0]) != std::string_view::npos,
               "load_conll: ", where(file, line), ": expected a tag O, B-X, I-X, E-X or S-X, found '", tag, "'.");
  return {tag[0], std::string(tag.substr(2))};
}

struct TaggedSentence {
  std::vector<std::string> words;
  std::vector<Tag> tags;
  std::vector<std::size_t> lines;
};

/// IOB1 when I-X opens more chunks than B-X does (IOB1 uses B- only between two chunks of one
/// type, so a stray B- opening is an annotation slip there); BIO otherwise, where every I-X that
/// opens a chunk is a repair that the report lists with its line.
inline TagScheme detect_scheme(const std::vector<TaggedSentence>& sentences) {
  std::size_t i_opens = 0, b_opens = 0;
  for (const auto& s : sentences) {
    for (std::size_t k = 0; k < s.tags.size(); ++k) {
      const auto& t = s.tags[k];
      if (t.prefix == 'E' || t.prefix == 'S') return TagScheme::bioes;
      const bool opens = k == 0 || s.tags[k - 1].prefix == 'O' || s.tags[k - 1].type != t.type;
      if (t.prefix == 'I' && opens) ++i_opens;
      if (t.prefix == 'B' && opens) ++b_opens;
    }
  }
  return i_opens > b_opens ? TagScheme::iob1 : TagScheme::bio;
}

inline Sentence decode_tags(TaggedSentence&& in, TagScheme scheme, const std::filesystem::path& file,
                            LoadReport& report, std::vector<std::string>& types) {
  Sentence out;
  out.words = std::move(in.words);
  const auto n = static_cast<int>(in.tags.size());
  int open_start = -1;
  std::string open_type;
  const auto close = [&](int end) {
    if (open_start >= 0) out.entities.push_back({open_type, {{open_start, end}}});
    open_start = -1;
  };
  const auto repair = [&](int k, const std::string& what) {
    report.add(LoadIssue::Kind::repaired, file.string(), in.lines[static_cast<std::size_t>(k)], what);
  };
  for (int k = 0; k < n; ++k) {
    const auto& t = in.tags[static_cast<std::size_t>(k)];
    const std::string tag_text = std::string(1, t.prefix) + "-" + t.type;
    if (scheme != TagScheme::bioes)
      GENNER_CHECK(t.prefix == 'O' || t.prefix == 'B' || t.prefix == 'I',
                   "load_conll: ", where(file, in.lines[static_cast<std::size_t>(k)]),
                   ": expected an IOB1/BIO tag (O, B-X, I-X), found '", tag_text, "'.");
    const bool continues = open_start >= 0 && open_type == t.type;
    switch (t.prefix) {
      case 'O': close(k); break;
      case 'B':
        if (scheme == TagScheme::bioes && open_start >= 0) repair(k - 1, "chunk without E- closed before " + tag_text);
        close(k);
        open_start = k;
        open_type = t.type;
        break;
      case 'I':
      case 'E':
        if (!continues) {
          if (scheme != TagScheme::iob1) repair(k, tag_text + " opens a chunk (treated as B-" + t.type + ")");
          if (scheme == TagScheme::bioes && open_start >= 0)
            repair(k - 1, "chunk without E- closed before " + tag_text);
          close(k);
          open_start = k;
          open_type = t.type;
        }
        if (t.prefix == 'E') close(k + 1);
        break;
      case 'S':
        if (open_start >= 0) repair(k - 1, "chunk without E- closed before " + tag_text);
        close(k);
        out.entities.push_back({t.type, {{k, k + 1}}});
        break;
      default: break;
    }
  }
  if (scheme == TagScheme::bioes && open_start >= 0) repair(n - 1, "chunk without E- closed at sentence end");
  close(n);
  finish_sentence(out, file.string(), in.lines.empty() ? 0 : in.lines.front(), report, types);
  return out;
}

}  // namespace detail

/// The line predict's CoNLL output writes for a blank input line, so that its blocks stay aligned
/// with the input's lines (consecutive blank lines would otherwise merge): "# blank input line N".
[[nodiscard]] inline std::string blank_line_mark(std::size_t line) {
  return "# blank input line " + std::to_string(line);
}
[[nodiscard]] inline bool is_blank_line_mark(std::string_view line) {
  constexpr std::string_view prefix = "# blank input line ";
  return line.size() > prefix.size() && line.substr(0, prefix.size()) == prefix &&
         line.find_first_not_of("0123456789", prefix.size()) == std::string_view::npos;
}

/// Parses CoNLL column text (see load_conll); `file` names it in errors and reports.
[[nodiscard]] inline Dataset parse_conll(std::string_view text, const std::filesystem::path& file,
                                         const ConllOptions& options = {}) {
  const auto lines = detail::text_lines(text, file, "load_conll");
  std::size_t columns = 0, columns_line = 0;  // every token line has as many columns as the first
  std::vector<detail::TaggedSentence> tagged;
  detail::TaggedSentence current;
  const auto flush = [&] {
    if (!current.words.empty()) tagged.push_back(std::move(current));
    current = {};
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const bool tabs = line.find('\t') != std::string_view::npos;
    const auto fields = detail::split_fields(line, tabs ? "\t" : " ");
    bool blank = true;
    for (const auto f : fields) blank = blank && f.find_first_not_of(" \t") == std::string_view::npos;
    if (blank) {
      flush();
      continue;
    }
    if (fields.front() == "-DOCSTART-" || is_blank_line_mark(line)) {
      flush();
      continue;
    }
    GENNER_CHECK(fields.size() >= 2, "load_conll: ", detail::where(file, i + 1),
                 ": expected at least two columns (word ... tag), found '", line, "'.");
    if (columns == 0) columns = fields.size(), columns_line = i + 1;
    GENNER_CHECK(fields.size() == columns, "load_conll: ", detail::where(file, i + 1), ": expected ", columns,
                 " columns as on line ", columns_line, ", found ", fields.size(), " in '", line,
                 "' (a missing tag column would make another column the tag).");
    current.words.emplace_back(fields.front());
    current.tags.push_back(detail::parse_tag(fields.back(), file, i + 1));
    current.lines.push_back(i + 1);
  }
  flush();
  GENNER_CHECK(!tagged.empty(), "load_conll: expected sentences in '", file.string(), "', found none.");
  const auto scheme = options.scheme == TagScheme::automatic ? detail::detect_scheme(tagged) : options.scheme;
  Dataset out;
  out.sentences.reserve(tagged.size());
  for (auto& s : tagged) {
    const std::size_t first_line = s.lines.empty() ? 0 : s.lines.front();
    detail::add_guarded(out.sentences, detail::decode_tags(std::move(s), scheme, file, out.report, out.types),
                        options.length_guard, file.string(), first_line, out.report, "load_conll");
  }
  detail::finish_types(out.types);
  return out;
}

/// Loads a CoNLL column file: word in the first column, tag in the last, separated by tabs when
/// the line has one, else by spaces; blank lines end sentences; -DOCSTART- lines and blank_line_mark
/// lines are skipped.
/// The file must be UTF-8 (a leading byte-order mark is dropped) with the same number of columns
/// on every token line; sentences longer than the length guard are split or refused (entity.hpp).
[[nodiscard]] inline Dataset load_conll(const std::filesystem::path& file, const ConllOptions& options = {}) {
  return parse_conll(detail::read_text(file, "load_conll"), file, options);
}

/// BIO tags for the entities of a sentence of `n` words. Entities that overlap an earlier one
/// (in Entity order) cannot be written in BIO: they are skipped and counted in `skipped`;
/// each fragment of a discontinuous entity is written as its own chunk.
[[nodiscard]] inline std::vector<std::string> to_bio(std::size_t n, const std::vector<Entity>& entities,
                                                     std::size_t* skipped = nullptr) {
  std::vector<std::string> tags(n, "O");
  for (const auto& e : entities) {
    bool free = true;
    for (const auto& [s, t] : e.fragments) {
      GENNER_CHECK(s >= 0 && s < t && static_cast<std::size_t>(t) <= n, "to_bio: expected fragments inside [0, ", n,
                   "), found [", s, ", ", t, ").");
      for (int k = s; k < t; ++k) free = free && tags[static_cast<std::size_t>(k)] == "O";
    }
    if (!free) {
      if (skipped) ++*skipped;
      continue;
    }
    for (const auto& [s, t] : e.fragments)
      for (int k = s; k < t; ++k) tags[static_cast<std::size_t>(k)] = (k == s ? "B-" : "I-") + e.type;
  }
  return tags;
}

/// Writes one sentence as "word gold pred" lines and a blank line (conlleval's input).
/// Returns the number of entities that could not be written (overlaps).
inline std::size_t write_conll(std::ostream& out, const std::vector<std::string>& words,
                               const std::vector<Entity>& gold, const std::vector<Entity>& pred) {
  std::size_t skipped = 0;
  const auto g = to_bio(words.size(), gold, &skipped);
  const auto p = to_bio(words.size(), pred, &skipped);
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i].empty() ? "_" : words[i];
    // conlleval splits on whitespace; keep each line at three fields.
    for (auto& c : w)
      if (c == ' ' || c == '\t') c = '_';
    out << w << ' ' << g[i] << ' ' << p[i] << '\n';
  }
  out << '\n';
  return skipped;
}

}  // namespace genner::data
