// genner/text/unigram.hpp: a self-contained reader and encoder for SentencePiece unigram models
// (spiece.model): protobuf wire-format parsing, the precompiled NFKC normaliser and Viterbi
// segmentation, reproducing libsentencepiece's output without linking it.
//
// Why not libsentencepiece: Debian's build embeds protobuf-lite 3.14 with exported symbols, and
// libtorch loads libprotobuf 3.21; in one process either the version check aborts or static
// initialisation crashes, whichever library binds first. The algorithms below follow
// sentencepiece 0.1.97 (normalizer.cc, unigram_model.cc EncodeOptimized, darts-clone).
#pragma once

#include <genner/core/error.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace genner::text {

/// One entry of the vocabulary (SentencePiece's ModelProto.SentencePiece).
struct Piece {
  enum class Type : int { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };
  std::string text;
  float score = 0.0F;
  Type type = Type::normal;
};

namespace detail {

/// Minimal protobuf wire-format reader: enough for ModelProto.
class WireReader {
 public:
  WireReader(std::string_view data, const std::string& what) : data_(data), what_(what) {}
  [[nodiscard]] bool done() const { return pos_ >= data_.size(); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      GENNER_CHECK(pos_ < data_.size(), "SentencePiece model '", what_, "': expected a varint, found the end of data.");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("SentencePiece model '", what_, "': expected a varint of at most 10 bytes, found a longer one.");
  }
  std::string_view bytes() {
    const auto n = varint();
    GENNER_CHECK(n <= data_.size() - pos_, "SentencePiece model '", what_, "': expected ", n,
                 " bytes of a field, found ", data_.size() - pos_, ".");
    const auto out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  float fixed32_float() {
    GENNER_CHECK(data_.size() - pos_ >= 4, "SentencePiece model '", what_,
                 "': expected a 4-byte float, found the end.");
    float f = 0;
    std::memcpy(&f, data_.data() + pos_, 4);  // little-endian host assumed (x86, ARM)
    pos_ += 4;
    return f;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: (void)varint(); break;
      case 1: advance(8); break;
      case 2: (void)bytes(); break;
      case 5: advance(4); break;
      default:
        fail("SentencePiece model '", what_, "': expected a protobuf wire type 0, 1, 2 or 5, found ", wire_type, ".");
    }
  }

 private:
  void advance(std::size_t n) {
    GENNER_CHECK(data_.size() - pos_ >= n, "SentencePiece model '", what_, "': truncated field.");
    pos_ += n;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  const std::string& what_;
};

/// Length of the UTF-8 character starting at s[0] (1 for invalid bytes, as SentencePiece).
inline std::size_t utf8_len(std::string_view s) {
  const auto c = static_cast<unsigned char>(s[0]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (n > s.size()) return 1;
  for (std::size_t i = 1; i < n; ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return 1;
  return n;
}

inline bool utf8_valid_char(std::string_view s, std::size_t& len) {
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) {
    len = 1;
    return true;
  }
  len = utf8_len(s);
  if (len == 1) return false;
  // Reject overlong forms and surrogates like SentencePiece's DecodeUTF8.
  std::uint32_t cp = 0;
  if (len == 2) cp = ((c & 0x1F) << 6) | (s[1] & 0x3F);
  if (len == 3) cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  if (len == 4) cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
  const bool ok = (len == 2 && cp >= 0x80) || (len == 3 && cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF)) ||
                  (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
  return ok;
}

/// darts-clone double array: common-prefix search over bytes.
class DoubleArray {
 public:
  DoubleArray() = default;
  explicit DoubleArray(std::string_view blob) : units_(blob.size() / 4) {
    if (!units_.empty()) std::memcpy(units_.data(), blob.data(), units_.size() * 4);  // no null pointer to memcpy
  }
  [[nodiscard]] bool empty() const { return units_.empty(); }
  /// Calls f(value, length) for every key that is a prefix of `key`.
  template <typename F>
  void common_prefix_search(std::string_view key, F&& f) const {
    std::uint32_t id = 0;
    std::uint32_t unit = units_[0];
    id ^= offset(unit);
    for (std::size_t i = 0; i < key.size(); ++i) {
      const auto c = static_cast<unsigned char>(key[i]);
      id ^= c;
      if (id >= units_.size()) return;
      unit = units_[id];
      if (label(unit) != c) return;
      id ^= offset(unit);
      if (has_leaf(unit)) f(static_cast<int>(units_[id] & 0x7FFFFFFFU), i + 1);
    }
  }

 private:
  static std::uint32_t offset(std::uint32_t u) { return (u >> 10) << ((u & (1U << 9)) >> 6); }
  static std::uint32_t label(std::uint32_t u) { return u & ((1U << 31) | 0xFFU); }
  static bool has_leaf(std::uint32_t u) { return ((u >> 8) & 1U) == 1U; }
  std::vector<std::uint32_t> units_;
};

/// Byte trie over the vocabulary for Viterbi (simple and fast enough: vocabularies are small).
class PieceTrie {
 public:
  void insert(std::string_view key, int id) {
    std::uint32_t node = 0;
    for (const char ch : key) {
      const auto c = static_cast<unsigned char>(ch);
      const auto k = (static_cast<std::uint64_t>(node) << 8) | c;
      auto it = edges_.find(k);
      if (it == edges_.end()) {
        it = edges_.emplace(k, static_cast<std::uint32_t>(values_.size())).first;
        values_.push_back(-1);
      }
      node = it->second;
    }
    values_[node] = id;
  }
  /// Calls f(id, end) for every vocabulary piece equal to s[begin, end).
  template <typename F>
  void prefixes(std::string_view s, std::size_t begin, F&& f) const {
    std::uint32_t node = 0;
    for (std::size_t i = begin; i < s.size(); ++i) {
      const auto k = (static_cast<std::uint64_t>(node) << 8) | static_cast<unsigned char>(s[i]);
      const auto it = edges_.find(k);
      if (it == edges_.end()) return;
      node = it->second;
      if (values_[node] >= 0) f(values_[node], i + 1);
    }
  }

 private:
  std::unordered_map<std::uint64_t, std::uint32_t> edges_;
  std::vector<int> values_{-1};
};

/// The fields of a NormalizerSpec the encoder uses (defaults as in SentencePiece).
struct NormalizerSpec {
  std::string_view charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

/// One ModelProto.SentencePiece message: text, score and type.
inline Piece read_piece(std::string_view bytes, const std::string& what) {
  WireReader pr(bytes, what);
  Piece p;
  while (!pr.done()) {
    const auto t = pr.varint();
    const int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
    if (f == 1 && w == 2)
      p.text = std::string(pr.bytes());
    else if (f == 2 && w == 5)
      p.score = pr.fixed32_float();
    else if (f == 3 && w == 0)
      p.type = static_cast<Piece::Type>(pr.varint());
    else
      pr.skip(w);
  }
  return p;
}

/// A TrainerSpec message: sets `model_type` when the message holds one.
inline void read_trainer_spec(std::string_view bytes, const std::string& what, int& model_type) {
  WireReader tr(bytes, what);
  while (!tr.done()) {
    const auto t = tr.varint();
    if ((t >> 3) == 3 && (t & 7) == 0)
      model_type = static_cast<int>(tr.varint());
    else
      tr.skip(static_cast<int>(t & 7));
  }
}

/// A NormalizerSpec message: sets the fields of `spec` the message holds.
inline void read_normalizer_spec(std::string_view bytes, const std::string& what, NormalizerSpec& spec) {
  WireReader nr(bytes, what);
  while (!nr.done()) {
    const auto t = nr.varint();
    const int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
    if (f == 2 && w == 2)
      spec.charsmap = nr.bytes();
    else if (f == 3 && w == 0)
      spec.add_dummy_prefix = nr.varint() != 0;
    else if (f == 4 && w == 0)
      spec.remove_extra_whitespaces = nr.varint() != 0;
    else if (f == 5 && w == 0)
      spec.escape_whitespaces = nr.varint() != 0;
    else
      nr.skip(w);
  }
}

}  // namespace detail

/// A SentencePiece unigram model read from a serialised ModelProto.
class UnigramModel {
 public:
  [[nodiscard]] static UnigramModel load(const std::filesystem::path& file) {
    GENNER_CHECK(std::filesystem::is_regular_file(file), "SentencePiece model: expected a file at '", file.string(),
                 "', found nothing there.");
    std::ifstream in(file, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return from_bytes(buffer.str(), file.string());
  }

  [[nodiscard]] static UnigramModel from_bytes(const std::string& data, const std::string& what) {
    UnigramModel m;
    detail::WireReader top(data, what);
    detail::NormalizerSpec normalizer;
    int model_type = 1;
    while (!top.done()) {
      const auto tag = top.varint();
      const int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
      if (field == 1 && wire == 2) {
        m.pieces_.push_back(detail::read_piece(top.bytes(), what));
      } else if (field == 2 && wire == 2) {
        detail::read_trainer_spec(top.bytes(), what, model_type);
      } else if (field == 3 && wire == 2) {
        detail::read_normalizer_spec(top.bytes(), what, normalizer);
      } else {
        top.skip(wire);
      }
    }
    GENNER_CHECK(!m.pieces_.empty(), "SentencePiece model '", what,
                 "': expected pieces, found none (not a model file?).");
    GENNER_CHECK(model_type == 1, "SentencePiece model '", what, "': expected a unigram model (type 1), found type ",
                 model_type, ".");
    m.add_dummy_prefix_ = normalizer.add_dummy_prefix;
    m.remove_extra_whitespaces_ = normalizer.remove_extra_whitespaces;
    m.escape_whitespaces_ = normalizer.escape_whitespaces;
    if (!normalizer.charsmap.empty()) m.read_charsmap(normalizer.charsmap, what);
    m.index_pieces();
    GENNER_CHECK(m.unk_id_ >= 0, "SentencePiece model '", what, "': expected an <unk> piece, found none.");
    return m;
  }

  [[nodiscard]] std::size_t size() const { return pieces_.size(); }
  [[nodiscard]] const Piece& piece(std::size_t id) const { return pieces_[id]; }
  [[nodiscard]] int unk_id() const { return unk_id_; }
  /// Id of a piece, or -1.
  [[nodiscard]] int piece_to_id(std::string_view text) const {
    const auto it = ids_.find(std::string(text));
    return it == ids_.end() ? -1 : it->second;
  }

  /// SentencePiece's Normalizer::Normalize (whitespace escaped to U+2581, dummy prefix added).
  [[nodiscard]] std::string normalize(std::string_view input) const {
    std::string out;
    if (remove_extra_whitespaces_) {
      while (!input.empty()) {
        const auto [piece, consumed] = normalize_prefix(input);
        if (piece != " ") break;
        input.remove_prefix(consumed);
      }
    }
    if (input.empty()) return out;
    out.reserve(input.size() * 3);
    if (add_dummy_prefix_) out += escape_whitespaces_ ? kSpace : " ";
    bool prev_space = remove_extra_whitespaces_;
    while (!input.empty()) {
      auto [piece, consumed] = normalize_prefix(input);
      if (prev_space && remove_extra_whitespaces_)
        while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
      if (!piece.empty()) {
        for (const char c : piece) {
          if (escape_whitespaces_ && c == ' ')
            out += kSpace;
          else
            out += c;
        }
        prev_space = piece.back() == ' ';
      }
      input.remove_prefix(consumed);
      if (!remove_extra_whitespaces_) prev_space = false;
    }
    if (remove_extra_whitespaces_) {
      const std::string_view space = escape_whitespaces_ ? kSpace : " ";
      while (out.size() >= space.size() && std::string_view(out).ends_with(space))
        out.resize(out.size() - space.size());
    }
    return out;
  }

  /// Viterbi segmentation of normalised text into piece ids (unigram_model.cc EncodeOptimized,
  /// including its arithmetic: candidates are summed and compared in double, stored as float,
  /// which is what decides between equal-scoring segmentations); runs of unknown characters
  /// become one `<unk>`, as SentencePieceProcessor does.
  [[nodiscard]] std::vector<int> encode_normalized(std::string_view s) const {
    struct Best {
      int id = -1;
      float score = 0;
      int starts_at = -1;
    };
    const int size = static_cast<int>(s.size());
    const float unk_score = min_score_ - 10.0F;
    std::vector<Best> best(static_cast<std::size_t>(size) + 1);
    int starts_at = 0;
    while (starts_at < size) {
      const float here = best[static_cast<std::size_t>(starts_at)].score;
      const int mblen = std::min<int>(static_cast<int>(detail::utf8_len(s.substr(static_cast<std::size_t>(starts_at)))),
                                      size - starts_at);
      bool has_single = false;
      trie_.prefixes(s, static_cast<std::size_t>(starts_at), [&](int id, std::size_t end) {
        const auto& p = pieces_[static_cast<std::size_t>(id)];
        const int length = static_cast<int>(end) - starts_at;
        const double score = p.type == Piece::Type::user_defined ? length * static_cast<double>(max_score_) - 0.1
                                                                 : static_cast<double>(p.score);
        auto& target = best[end];
        const double candidate = score + here;
        if (target.starts_at == -1 || candidate > target.score) target = {id, static_cast<float>(candidate), starts_at};
        if (length == mblen) has_single = true;
      });
      if (!has_single) {
        auto& target = best[static_cast<std::size_t>(starts_at + mblen)];
        const float candidate = unk_score + here;
        if (target.starts_at == -1 || candidate > target.score) target = {unk_id_, candidate, starts_at};
      }
      starts_at += mblen;
    }
    std::vector<int> out;
    for (int end = size; end > 0;) {
      const auto& node = best[static_cast<std::size_t>(end)];
      out.push_back(node.id);
      end = node.starts_at;
    }
    std::reverse(out.begin(), out.end());
    std::vector<int> merged;
    merged.reserve(out.size());
    for (const int id : out)
      if (!(id == unk_id_ && !merged.empty() && merged.back() == unk_id_)) merged.push_back(id);
    return merged;
  }

  [[nodiscard]] std::vector<int> encode(std::string_view text) const { return encode_normalized(normalize(text)); }

  /// Pieces -> text: U+2581 becomes a space, the dummy prefix's leading space is dropped,
  /// `<unk>` reads " ⁇ " and control pieces vanish (SentencePiece's decoder).
  [[nodiscard]] std::string decode(const std::vector<int>& ids) const {
    std::string out;
    bool first = true;
    for (const int id : ids) {
      const auto& p = pieces_.at(static_cast<std::size_t>(id));
      if (p.type == Piece::Type::control) continue;
      std::string text = p.type == Piece::Type::unknown ? std::string(" \xE2\x81\x87 ") : p.text;
      std::string spaced;
      for (std::size_t i = 0; i < text.size();) {
        if (std::string_view(text).substr(i).starts_with(kSpace)) {
          spaced += ' ';
          i += kSpace.size();
        } else {
          spaced += text[i++];
        }
      }
      if (first && add_dummy_prefix_ && !spaced.empty() && spaced.front() == ' ' && p.type != Piece::Type::unknown)
        spaced.erase(0, 1);
      first = false;
      out += spaced;
    }
    return out;
  }

 private:
  static constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

  /// Splits a precompiled_charsmap (trie size, darts-clone trie, replacement strings) into the
  /// normaliser's trie and strings.
  void read_charsmap(std::string_view charsmap, const std::string& what) {
    GENNER_CHECK(charsmap.size() >= 4, "SentencePiece model '", what, "': truncated precompiled_charsmap.");
    std::uint32_t trie_size = 0;
    std::memcpy(&trie_size, charsmap.data(), 4);
    GENNER_CHECK(trie_size <= charsmap.size() - 4, "SentencePiece model '", what, "': bad precompiled_charsmap.");
    norm_trie_ = detail::DoubleArray(charsmap.substr(4, trie_size));
    norm_strings_ = std::string(charsmap.substr(4 + trie_size));
  }

  /// Fills the id map, the Viterbi trie (normal and user-defined pieces), the `<unk>` id and the
  /// score range of normal pieces from pieces_.
  void index_pieces() {
    min_score_ = std::numeric_limits<float>::max();
    max_score_ = std::numeric_limits<float>::lowest();
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      const auto& p = pieces_[i];
      if (p.type == Piece::Type::unknown) unk_id_ = static_cast<int>(i);
      if (p.type == Piece::Type::normal || p.type == Piece::Type::user_defined) {
        trie_.insert(p.text, static_cast<int>(i));
        ids_.emplace(p.text, static_cast<int>(i));
      } else {
        ids_.emplace(p.text, static_cast<int>(i));
      }
      if (p.type == Piece::Type::normal) {
        min_score_ = std::min(min_score_, p.score);
        max_score_ = std::max(max_score_, p.score);
      }
    }
  }

  /// Longest charsmap rule at the start of `input` -> (replacement, bytes consumed).
  [[nodiscard]] std::pair<std::string_view, std::size_t> normalize_prefix(std::string_view input) const {
    std::size_t longest = 0;
    int value = 0;
    if (!norm_trie_.empty()) {
      norm_trie_.common_prefix_search(input, [&](int v, std::size_t len) {
        if (len > longest) {
          longest = len;
          value = v;
        }
      });
    }
    if (longest == 0) {
      std::size_t len = 1;
      if (!detail::utf8_valid_char(input, len)) return {"\xEF\xBF\xBD", 1};
      return {input.substr(0, len), len};
    }
    const char* s = norm_strings_.data() + value;
    return {std::string_view(s, std::strlen(s)), longest};
  }

  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int> ids_;
  detail::PieceTrie trie_;
  detail::DoubleArray norm_trie_;
  std::string norm_strings_;
  bool add_dummy_prefix_ = true;
  bool remove_extra_whitespaces_ = true;
  bool escape_whitespaces_ = true;
  float min_score_ = 0, max_score_ = 0;
  int unk_id_ = -1;
};

}  // namespace genner::text
