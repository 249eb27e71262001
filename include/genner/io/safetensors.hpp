// genner/io/safetensors.hpp: reading and writing the safetensors format
// (8-byte little-endian header length, JSON header, raw little-endian data),
// the format Hugging Face checkpoints and genner's own checkpoints use.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/io/atomic_file.hpp>

namespace genner::io {

/// Maps a safetensors dtype string to a torch scalar type; throws for unknown ones.
inline at::ScalarType safetensors_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, at::ScalarType> table = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool}};
  auto it = table.find(name);
  GENNER_CHECK(it != table.end(), where, ": unknown dtype '", name,
               "'; expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
  return it->second;
}

/// The safetensors name of a torch scalar type.
inline std::string safetensors_dtype_name(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return "F64";
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: fail("safetensors cannot store tensors of type ", c10::toString(type));
  }
}

/// One tensor's entry in a safetensors header.
struct TensorEntry {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

/// A safetensors file whose header has been read and checked; tensors are read on demand.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(std::filesystem::path path) : path_(std::move(path)) { read_header(); }

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorEntry>& entries() const { return entries_; }
  const nlohmann::json& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  /// Reads one tensor (CPU, contiguous, owning its memory).
  at::Tensor load(const std::string& name) const {
    auto it = entries_.find(name);
    GENNER_CHECK(it != entries_.end(), path_.string(), ": no tensor named '", name, "'");
    const TensorEntry& e = it->second;
    at::Tensor out = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    std::ifstream in(path_, std::ios::binary);
    GENNER_CHECK(in.good(), path_.string(), ": cannot open for reading tensor '", name, "'");
    in.seekg(static_cast<std::streamoff>(data_start_ + e.begin));
    in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    GENNER_CHECK(in.gcount() == static_cast<std::streamsize>(e.end - e.begin), path_.string(), ": tensor '", name,
                 "' is truncated: expected ", e.end - e.begin, " bytes, read ", in.gcount());
    return out;
  }

  /// Reads every tensor.
  std::map<std::string, at::Tensor> load_all() const {
    std::map<std::string, at::Tensor> out;
    for (const auto& [name, entry] : entries_) out.emplace(name, load(name));
    return out;
  }

 private:
  void read_header() {
    GENNER_CHECK(std::filesystem::is_regular_file(path_), path_.string(), ": safetensors file not found");
    const uint64_t file_size = std::filesystem::file_size(path_);
    GENNER_CHECK(file_size >= 8, path_.string(), ": file is ", file_size,
                 " bytes, too short for a safetensors header (at least 8 expected)");
    std::ifstream in(path_, std::ios::binary);
    GENNER_CHECK(in.good(), path_.string(), ": cannot open for reading");
    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    GENNER_CHECK(header_len <= file_size - 8, path_.string(), ": header length ", header_len, " exceeds the file (",
                 file_size - 8, " bytes after the length field)");
    std::string header(header_len, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_len));
    data_start_ = 8 + header_len;
    const nlohmann::json json = parse_json(header, path_.string() + ": header");
    GENNER_CHECK(json.is_object(), path_.string(), ": header must be a JSON object");
    const uint64_t data_size = file_size - data_start_;
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& [name, value] : json.items()) {
      if (name == "__metadata__") {
        metadata_ = value;
        continue;
      }
      TensorEntry e = read_entry(value, path_.string() + ": tensor '" + name + "'", data_size);
      spans.emplace_back(e.begin, e.end);
      entries_.emplace(name, std::move(e));
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
      GENNER_CHECK(spans[i].first >= spans[i - 1].second, path_.string(),
                   ": tensors overlap in the data section at byte ", spans[i].first);
  }

  /// One tensor's header entry `value` (`where` names it in errors), checked: a known dtype, a shape
  /// of non-negative sizes, data_offsets that hold exactly its bytes within the data section.
  static TensorEntry read_entry(const nlohmann::json& value, const std::string& where, uint64_t data_size) {
    GENNER_CHECK(
        value.is_object() && value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
        where, ": expected an object with dtype, shape and data_offsets");
    TensorEntry e;
    GENNER_CHECK(value["dtype"].is_string(), where, ": expected a dtype string, found ", json_excerpt(value["dtype"]));
    e.dtype = safetensors_dtype(value["dtype"].get<std::string>(), where);
    GENNER_CHECK(value["shape"].is_array(), where, ": expected a shape array, found ", json_excerpt(value["shape"]));
    uint64_t numel = 1;
    for (const auto& d : value["shape"]) {
      GENNER_CHECK(d.is_number_unsigned(), where, ": shape entries must be non-negative integers, found ",
                   json_excerpt(d));
      GENNER_CHECK(d.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX) &&
                       !__builtin_mul_overflow(numel, d.get<uint64_t>(), &numel),
                   where, ": shape ", json_excerpt(value["shape"]), " has more elements than 2^64");
      e.shape.push_back(d.get<int64_t>());
    }
    const auto& off = value["data_offsets"];
    GENNER_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                 where, ": data_offsets must be [begin, end] of non-negative integers, found ", json_excerpt(off));
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    uint64_t expected = 0;
    GENNER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(at::elementSize(e.dtype)), &expected), where,
                 ": shape ", json_excerpt(value["shape"]), " needs more than 2^64 bytes");
    GENNER_CHECK(e.begin <= e.end && e.end - e.begin == expected, where, ": data_offsets [", e.begin, ", ", e.end,
                 ") hold ", e.end - e.begin, " bytes but dtype ", value["dtype"].get<std::string>(), " and shape ",
                 json_excerpt(value["shape"]), " need ", expected);
    GENNER_CHECK(e.end <= data_size, where, ": data_offsets end at byte ", e.end, " but the data section has only ",
                 data_size, " bytes (truncated file?)");
    return e;
  }

  std::filesystem::path path_;
  std::map<std::string, TensorEntry> entries_;
  nlohmann::json metadata_ = nlohmann::json::object();
  uint64_t data_start_ = 0;
};

/// Refuses weights `t` (tensor `name` of `file`) holding NaN or infinite values: a corrupt or
/// diverged file is named at load, never discovered as a model that finds nothing.
inline void check_finite_weights(const at::Tensor& t, const std::filesystem::path& file, const std::string& name) {
  if (!at::isFloatingType(t.scalar_type())) return;
  const auto bad = at::isfinite(t).logical_not();
  if (!bad.any().item<bool>()) return;
  const auto first = bad.flatten().nonzero()[0].item<int64_t>();
  const double v = t.flatten()[first].item<double>();
  fail(file.string(), ": tensor '", name, "' holds ", bad.sum().item<int64_t>(), " NaN or infinite value(s) (",
       std::isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf"), " at flat index ", first,
       "); expected finite weights: the file is corrupt or training diverged");
}

/// A tensor a streamed safetensors file will hold: its name, dtype and shape.
struct TensorPlan {
  std::string name;
  at::ScalarType dtype = at::kFloat;
  std::vector<int64_t> shape;
  uint64_t bytes() const {
    uint64_t n = static_cast<uint64_t>(c10::elementSize(dtype));
    for (auto d : shape) n *= static_cast<uint64_t>(d);
    return n;
  }
};

/// Writes a safetensors file whose tensors are made one at a time by `make(name)` (each written,
/// then released), so a file larger than memory can be written; atomically (temporary file, then
/// rename). Every made tensor must match its plan. `metadata` must be a flat object of strings.
inline void save_safetensors_streamed(const std::filesystem::path& path, const std::vector<TensorPlan>& plans,
                                      const std::function<at::Tensor(const std::string&)>& make,
                                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& p : plans) {
    header[p.name] = {{"dtype", safetensors_dtype_name(p.dtype)},
                      {"shape", p.shape},
                      {"data_offsets", {offset, offset + p.bytes()}}};
    offset += p.bytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  // The data section holds the tensors in the order of `plans`, as their offsets say.
  write_atomically(path, [&](std::ofstream& out) {
    uint64_t n = text.size();
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& p : plans) {
      at::Tensor t = make(p.name).detach().to(at::kCPU).contiguous();
      GENNER_CHECK(t.scalar_type() == p.dtype && t.sizes().vec() == p.shape, path.string(), ": tensor '", p.name,
                   "' was planned as ", p.dtype, " ", c10::IntArrayRef(p.shape), " but made as ", t.scalar_type(), " ",
                   t.sizes());
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(p.bytes()));
    }
  });
}

/// Writes tensors as one safetensors file (atomically: temporary file, then rename).
/// `metadata` must be a flat object of strings, as the format requires.
inline void save_safetensors(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {{"format", "pt"}}) {
  std::vector<TensorPlan> plans;
  for (const auto& [name, tensor] : tensors)
    plans.push_back({name, tensor.scalar_type(), tensor.sizes().vec()});
  save_safetensors_streamed(
      path, plans, [&](const std::string& name) { return tensors.at(name); }, metadata);
}

}  // namespace genner::io
