// genner/recognize/predict.hpp: the predict command's logic — lines of raw text in, one record per
// line out as JSON lines, CoNLL columns, brat standoff annotations or an HTML page with the
// entities highlighted by type (as displaCy draws them) — for programs, pipes and people.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <istream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <genner/core/error.hpp>
#include <genner/core/utf8.hpp>
#include <genner/data/conll.hpp>
#include <genner/data/detail/lines.hpp>
#include <genner/recognize/recognizer.hpp>
#include <genner/text/pretokenize.hpp>
#include <genner/report/progress.hpp>

namespace genner::recognize {

/// Output formats of predict_lines().
enum class Format {
  jsonl,  ///< one JSON object per input line (blank line in: empty entity list out); character offsets
  conll,  ///< "word<TAB>BIO-tag" lines, one block per input line ended by a blank line (flat only);
          ///< a blank input line is the block "# blank input line N" (data::blank_line_mark)
  brat,   ///< brat standoff (.ann): "T<n><TAB>TYPE begin end<TAB>text", character (code point) offsets into the whole input
  html,   ///< one HTML page: a paragraph per input line, entities highlighted by type (to_html)
};

[[nodiscard]] inline Format parse_format(std::string_view name) {
  if (name == "jsonl") return Format::jsonl;
  if (name == "conll") return Format::conll;
  if (name == "brat") return Format::brat;
  if (name == "html") return Format::html;
  fail("--format: expected jsonl, conll, brat or html, found '", name, "'");
}

/// Settings of predict_lines().
struct PredictOptions {
  Format format = Format::jsonl;
  std::string input_name = "stdin";  ///< named in errors ("<input_name> line N")
  std::size_t chunk_lines = 256;     ///< lines read, decoded and written together
  /// Lines in the input, for the progress bar (0: unknown, no bar). The bar is drawn only when
  /// standard error is a terminal.
  std::size_t total_lines = 0;
  std::ostream* log = &std::cerr;  ///< where the closing throughput line goes (nullptr: nowhere)
  /// Read this file descriptor instead of the stream (0: standard input). A chunk then holds the
  /// lines that have arrived, so a line written into a pipe gets its record without waiting for more.
  int input_fd = -1;
};

/// What predict_lines() did.
struct PredictStats {
  std::size_t lines = 0;      ///< input lines, blank ones included
  std::size_t sentences = 0;  ///< sentences decoded
  std::size_t windows = 0;    ///< source windows decoded
  std::size_t split = 0;      ///< lines with a sentence longer than the model's limit (decoded in windows)
  std::size_t entities = 0;
  double seconds = 0.0;
  [[nodiscard]] double sentences_per_second() const {
    return seconds > 0 ? static_cast<double>(sentences) / seconds : 0.0;
  }
};

/// `text` for the text field of a brat line: each control, separator or invisible character
/// (TAB, VT, FF, CR, U+2028, ...) becomes one space, as brat writes multi-line spans, so a record
/// stays one line of three fields and its offsets still count code points of the input.
[[nodiscard]] inline std::string brat_text(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t from = i;
    out.append(core::is_nonprinting(core::next_code_point(text, i)) ? std::string_view(" ")
                                                                      : text.substr(from, i - from));
  }
  return out;
}

/// One line's record: {"text", "entities": [{type, begin, end, byte_begin, byte_end, text, words,
/// fragments?, score}], "sentences", "windows", "split", "max_source_pieces" (when split),
/// "unread_words" (when any)}. `begin`/`end` count characters (code points) of `text`, as Python,
/// jq, spaCy and Hugging Face pipelines slice; `byte_begin`/`byte_end` are the same span in UTF-8
/// bytes; `words` is [first, last) into the line's words, listed under "words". The one
/// serialisation of a record: every writer of JSON records calls it.
[[nodiscard]] inline nlohmann::json to_json(const Result& r, std::string_view text, std::int64_t max_source_pieces) {
  nlohmann::json entities = nlohmann::json::array();
  for (const auto& e : r.entities) {
    nlohmann::json j = {{"type", e.type},
                        {"begin", e.begin},
                        {"end", e.end},
                        {"byte_begin", e.byte_begin},
                        {"byte_end", e.byte_end},
                        {"text", e.text},
                        {"words", {e.word_begin, e.word_end}}};
    if (e.fragments.size() > 1) {
      nlohmann::json frags = nlohmann::json::array();
      for (const auto& f : e.fragments)
        frags.push_back({{"begin", f.begin},
                         {"end", f.end},
                         {"byte_begin", f.byte_begin},
                         {"byte_end", f.byte_end},
                         {"text", f.text},
                         {"words", {f.word_begin, f.word_end}}});
      j["fragments"] = std::move(frags);
    }
    j["score"] = std::isfinite(e.score) ? nlohmann::json(e.score) : nlohmann::json();
    entities.push_back(std::move(j));
  }
  nlohmann::json out = {
      {"text", text},         {"words", r.words}, {"entities", std::move(entities)}, {"sentences", r.sentences},
      {"windows", r.windows}, {"split", r.split}};
  if (r.split) out["max_source_pieces"] = max_source_pieces;
  if (!r.unread_words.empty()) out["unread_words"] = r.unread_words;
  if (r.overlaps_removed) out["overlaps_removed"] = r.overlaps_removed;
  if (r.below_threshold) out["below_threshold"] = r.below_threshold;
  return out;
}

namespace detail {
inline void html_escape(std::string_view text, std::string& out) {
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}
/// displaCy's colours for the usual types; others get one of a fixed palette by name.
inline std::string_view type_colour(std::string_view type) {
  if (type == "PER" || type == "PERSON") return "#aa9cfc";
  if (type == "ORG") return "#7aecec";
  if (type == "LOC") return "#ff9561";
  if (type == "GPE") return "#feca74";
  if (type == "MISC" || type == "NORP") return "#c887fb";
  static constexpr std::string_view palette[] = {"#bfeeb7", "#e4e7d2", "#ffeb80", "#f0d0ff",
                                                 "#bfe1d9", "#fdd5c0", "#c5d5f7", "#e0e0a8"};
  std::size_t h = 0;
  for (const char c : type) h = h * 31 + static_cast<unsigned char>(c);
  return palette[h % std::size(palette)];
}
}  // namespace detail

/// The start and end of the HTML page Format::html writes around the lines' to_html() blocks.
inline constexpr std::string_view kHtmlHead =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>genner predictions</title>\n"
    "<style>\nbody { font-family: sans-serif; line-height: 2.5; margin: 2em; }\n"
    "mark.entity { padding: 0.2em 0.35em; margin: 0 0.15em; border-radius: 0.35em; }\n"
    "mark.entity span.type { font-size: 0.75em; font-weight: bold; margin-left: 0.4em; "
    "text-transform: uppercase; vertical-align: middle; }\n"
    "</style>\n</head>\n<body>\n";
inline constexpr std::string_view kHtmlTail = "</body>\n</html>\n";

/// One line as an HTML paragraph: the text, HTML-escaped, with every entity fragment in a
/// `<mark class="entity" data-type="TYPE">` coloured by type, its type after it (displaCy's "ent"
/// style). Nested entities nest; a fragment crossing an open one is left unmarked (counted in
/// `unmarked` when given).
[[nodiscard]] inline std::string to_html(const Result& r, std::string_view text, std::size_t* unmarked = nullptr) {
  struct Span {
    std::size_t begin, end;
    const std::string* type;
  };
  std::vector<Span> spans;
  for (const auto& e : r.entities)
    for (const auto& f : e.fragments) spans.push_back({f.byte_begin, f.byte_end, &e.type});
  std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  std::string out = "<p class=\"line\">";
  std::vector<Span> open;
  std::size_t pos = 0;
  const auto close = [&] {
    detail::html_escape(text.substr(pos, open.back().end - pos), out);
    pos = open.back().end;
    out += "<span class=\"type\">";
    detail::html_escape(*open.back().type, out);
    out += "</span></mark>";
    open.pop_back();
  };
  for (const auto& s : spans) {
    while (!open.empty() && open.back().end <= s.begin) close();
    if (!open.empty() && s.end > open.back().end) {
      if (unmarked) ++*unmarked;
      continue;
    }
    detail::html_escape(text.substr(pos, s.begin - pos), out);
    pos = s.begin;
    out += "<mark class=\"entity\" data-type=\"";
    detail::html_escape(*s.type, out);
    out += "\" style=\"background: ";
    out += detail::type_colour(*s.type);
    out += "\">";
    open.push_back(s);
  }
  while (!open.empty()) close();
  detail::html_escape(text.substr(pos), out);
  out += "</p>\n";
  return out;
}

namespace detail {

/// The progress bar of predict_lines(): drawn when the number of lines is known and standard error
/// is a terminal, else none.
[[nodiscard]] inline std::unique_ptr<report::ProgressBar> predict_progress_bar(const PredictOptions& options) {
  std::unique_ptr<report::ProgressBar> bar;
  if (options.total_lines > 0 && ::isatty(STDERR_FILENO) == 1) {
    report::ProgressOptions po;
    po.label = "predict";
    po.tty = true;
    bar = std::make_unique<report::ProgressBar>(static_cast<int64_t>(options.total_lines), po);
  }
  return bar;
}

/// Reads the next chunk into `lines` (at most `chunk_lines`, fewer when no more has arrived yet) and
/// the line-break characters before each into `breaks`; returns whether the input ended.
inline bool read_chunk(data::detail::LineReader& reader, std::size_t chunk_lines, std::vector<std::string>& lines,
                       std::vector<std::size_t>& breaks) {
  lines.clear();
  breaks.clear();
  for (std::string line; lines.size() < chunk_lines;) {
    if (!lines.empty() && !reader.ready()) break;  // decode what has arrived
    if (!reader.next(line)) return true;
    lines.push_back(std::move(line));
    breaks.push_back(reader.breaks_before_line());
  }
  return false;
}

/// Writes one line's record as a CoNLL block: "word<TAB>BIO-tag" lines and a blank line, or the
/// blank-line mark of input line `line_number` when the line has no words.
inline void write_conll(std::ostream& chunk, const Result& r, std::size_t line_number) {
  std::vector<data::Entity> ents;
  for (const auto& e : r.entities) {
    data::Entity d{e.type, {}};
    for (const auto& f : e.fragments) d.fragments.emplace_back(f.word_begin, f.word_end);
    ents.push_back(std::move(d));
  }
  if (r.words.empty()) chunk << data::blank_line_mark(line_number) << '\n';
  const auto tags = data::to_bio(r.words.size(), ents);
  for (std::size_t w = 0; w < r.words.size(); ++w) chunk << r.words[w] << '\t' << tags[w] << '\n';
  chunk << '\n';
}

/// Writes one line's entities as brat standoff lines, numbered on from `brat_id`, with offsets into
/// the whole input: `doc_cp` code points before the line's `breaks_before` line-break characters.
/// Adds the line's code points to `doc_cp`.
inline void write_brat(std::ostream& chunk, const Result& r, std::string_view line, std::size_t breaks_before,
                       std::size_t& doc_cp, std::size_t& brat_id) {
  for (const auto& e : r.entities) {
    chunk << 'T' << ++brat_id << '\t' << e.type << ' ';
    std::string text;
    for (std::size_t f = 0; f < e.fragments.size(); ++f) {
      const auto& fr = e.fragments[f];
      chunk << (f ? ";" : "") << doc_cp + breaks_before + fr.begin << ' ' << doc_cp + breaks_before + fr.end;
      text += (f ? " " : "") + fr.text;
    }
    chunk << '\t' << brat_text(text) << '\n';
  }
  doc_cp += text::code_point_offsets(line).back();
}

/// Writes predict_lines()'s closing line to `log`: lines, sentences and entities, the time and
/// throughput, and how many lines were decoded in windows.
inline void log_predict_summary(std::ostream& log, const PredictStats& stats, const RecognizerOptions& options) {
  log << "predict: " << stats.lines << " lines, " << stats.sentences << " sentences, " << stats.entities
      << " entities in " << std::fixed << std::setprecision(2) << stats.seconds << " s (" << std::setprecision(1)
      << stats.sentences_per_second() << " sentences/s, in batches of up to " << options.batch_size << " windows)";
  if (stats.split)
    log << "; " << stats.split << " line(s) held a sentence longer than " << options.max_source_pieces
        << " pieces and were decoded in windows (\"split\": true)";
  log << "\n";
}

}  // namespace detail

/// Reads lines from `in` (LF, CRLF or CR line ends; one line at a time, so memory stays bounded),
/// finds their entities with `recognizer` and writes one record per line to `out` in
/// `options.format`, chunk by chunk, flushed after each (output flows while a pipe is still read).
/// Ends with a throughput line ("... sentences/s") on options.log.
inline PredictStats predict_lines(const Recognizer& recognizer, std::istream& in, std::ostream& out,
                                  const PredictOptions& options = {}) {
  GENNER_CHECK(options.format != Format::conll || recognizer.flat(),
               "--format conll writes BIO tags, which cannot hold nested or discontinuous entities; "
               "use --format jsonl or brat");
  GENNER_CHECK(options.chunk_lines >= 1, "predict: chunk_lines must be at least 1");
  const auto t0 = std::chrono::steady_clock::now();
  PredictStats stats;
  auto bar = detail::predict_progress_bar(options);
  if (options.format == Format::html) out << kHtmlHead;
  std::size_t doc_cp = 0;  // brat: code points of the input's text before the current line
  std::size_t brat_id = 0;
  std::vector<std::string> lines;
  std::vector<std::size_t> breaks;  // brat: line-break characters (LF, CRLF or CR) before each line
  auto reader = options.input_fd >= 0 ? data::detail::LineReader(options.input_fd, options.input_name)
                                       : data::detail::LineReader(in, options.input_name);
  bool eof = false;
  while (!eof) {
    eof = detail::read_chunk(reader, options.chunk_lines, lines, breaks);
    GENNER_CHECK(!in.bad(), options.input_name, ": read error after line ", stats.lines + lines.size());
    if (lines.empty()) break;
    std::vector<std::string_view> views;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      views.emplace_back(lines[i]);
      text::check_utf8(views.back(), options.input_name + ":" + std::to_string(stats.lines + i + 1));
    }
    const auto results = recognizer.predict(std::span<const std::string_view>(views));
    std::ostringstream chunk;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const auto& r = results[i];
      stats.sentences += r.sentences;
      stats.windows += r.windows;
      stats.split += r.split;
      stats.entities += r.entities.size();
      switch (options.format) {
        case Format::jsonl: chunk << to_json(r, views[i], recognizer.options().max_source_pieces).dump() << '\n'; break;
        case Format::conll: detail::write_conll(chunk, r, stats.lines + i + 1); break;
        case Format::brat: detail::write_brat(chunk, r, views[i], breaks[i], doc_cp, brat_id); break;
        case Format::html: chunk << to_html(r, views[i]); break;
      }
    }
    out << chunk.str() << std::flush;
    GENNER_CHECK(out.good(), "predict: cannot write the output (disk full or closed pipe?)");
    stats.lines += lines.size();
    if (bar) bar->update(static_cast<int64_t>(std::min(stats.lines, options.total_lines)), std::nan(""));
  }
  if (options.format == Format::html) {
    out << kHtmlTail << std::flush;
    GENNER_CHECK(out.good(), "predict: cannot write the output (disk full or closed pipe?)");
  }
  if (bar) bar->finish();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (options.log) detail::log_predict_summary(*options.log, stats, recognizer.options());
  return stats;
}

}  // namespace genner::recognize
