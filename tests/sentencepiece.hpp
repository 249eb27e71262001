// tests/sentencepiece.hpp: SentencePiece, loaded in isolation — the reference the tests hold
// genner's own encoder (include/genner/text/unigram.hpp) against. Not part of the library.
//
// Debian's libsentencepiece carries its own copy of protobuf 3.14, while
// libtorch links the system protobuf 3.21. Linked into one program, one copy's
// symbols interpose on the other's: the program segfaults at start-up (torch's
// protobuf users bind to 3.14) or, with libprotobuf linked first, aborts in
// protobuf's version check as soon as a model is loaded (SentencePiece binds
// to 3.21). The tests therefore never link libsentencepiece: they open it with
// RTLD_DEEPBIND, so the library binds to its own protobuf, creates processors
// through the library's own constructor and calls their virtual functions
// through the vtable slots the header lays out — no symbol of the library is
// referenced at link time. (Its trainer is not called this way: its logging
// writes to std::cerr, which under DEEPBIND binds to libstdc++'s own object
// rather than the program's copy and crashes; genner/text/tokenizer.hpp runs spm_train
// as a child process instead. genner's own encoder, genner/text/unigram.hpp, is what
// encodes; this processor serves to cross-check it.)
#pragma once

#include <dlfcn.h>
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include <string>
#include <string_view>

#include <genner/core/error.hpp>

namespace genner::test::detail {

/// The two SentencePiece libraries, opened once with their own symbols bound first.
struct SpmLibrary {
  void* processor_lib = nullptr;
  void (*construct)(void*) = nullptr;
  void (*status_destroy)(void*) = nullptr;
  void (*status_copy)(void*, const void*) = nullptr;
  std::string (*status_to_string)(const void*) = nullptr;
  struct StatusStorage;

  static void* open(const char* name) {
    void* handle = ::dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    GENNER_CHECK(handle != nullptr, "cannot open ", name, " (", ::dlerror(),
                 "); install Debian's libsentencepiece0 (scripts/setup.sh does)");
    return handle;
  }
  template <typename F>
  static F symbol(void* lib, const char* name, const char* what) {
    void* p = ::dlsym(lib, name);
    GENNER_CHECK(p != nullptr, "libsentencepiece has no ", what, " (", name,
                 "); genner expects SentencePiece 0.1.9x as Debian 12 ships it");
    return reinterpret_cast<F>(p);
  }

  SpmLibrary() {
    processor_lib = open("libsentencepiece.so.0");
    construct = symbol<void (*)(void*)>(processor_lib, "_ZN13sentencepiece22SentencePieceProcessorC1Ev",
                                        "SentencePieceProcessor constructor");
    status_destroy = symbol<void (*)(void*)>(processor_lib, "_ZN13sentencepiece4util6StatusD1Ev", "Status destructor");
    status_copy = symbol<void (*)(void*, const void*)>(processor_lib, "_ZN13sentencepiece4util6StatusC1ERKS1_",
                                                       "Status copy constructor");
    status_to_string = symbol<std::string (*)(const void*)>(
        processor_lib, "_ZNK13sentencepiece4util6Status8ToStringB5cxx11Ev", "Status::ToString");
  }

  static SpmLibrary& get() {
    static SpmLibrary library;
    return library;
  }
};

/// The bytes of a sentencepiece::util::Status (one pointer, null when ok). Its destructor
/// is user-provided, so it is returned through a hidden pointer exactly like Status.
struct SpmLibrary::StatusStorage {
  void* rep = nullptr;
  StatusStorage() = default;
  StatusStorage(const StatusStorage&) = delete;
  StatusStorage& operator=(const StatusStorage&) = delete;
  ~StatusStorage() {
    if (rep) SpmLibrary::get().status_destroy(this);
  }
  bool ok() const { return rep == nullptr; }
  std::string message() const { return SpmLibrary::get().status_to_string(this); }
};
static_assert(sizeof(SpmLibrary::StatusStorage) == sizeof(sentencepiece::util::Status),
              "sentencepiece::util::Status is expected to hold exactly one pointer");

/// The vtable slot of a virtual member function, from its pointer-to-member (Itanium C++ ABI).
template <typename Pmf>
std::size_t vtable_slot(Pmf pmf) {
  struct {
    std::uintptr_t ptr;
    std::ptrdiff_t adj;
  } raw;
  static_assert(sizeof(raw) == sizeof(pmf));
  std::memcpy(&raw, &pmf, sizeof raw);
  GENNER_CHECK((raw.ptr & 1) != 0 && raw.adj == 0, "internal: SentencePiece member is not a plain virtual function");
  return (raw.ptr - 1) / sizeof(void*);
}

/// Calls virtual slot `slot` of `object` as `R(object, args...)`.
template <typename R, typename... Args>
R call_slot(const void* object, std::size_t slot, Args... args) {
  auto vtable = *static_cast<void* const* const*>(object);
  auto fn = reinterpret_cast<R (*)(const void*, Args...)>(vtable[slot]);
  return fn(object, args...);
}

}  // namespace genner::test::detail

namespace genner::test {

/// A SentencePieceProcessor created inside the isolated library.
class SpmProcessor {
  using Spp = sentencepiece::SentencePieceProcessor;
  using Status = detail::SpmLibrary::StatusStorage;

 public:
  SpmProcessor() {
    auto& lib = detail::SpmLibrary::get();
    void* memory = ::operator new(sizeof(Spp));
    lib.construct(memory);
    object_.reset(memory);
  }

  /// Loads a model file; throws genner::Error naming the file on failure.
  void load(const std::string& path) {
    static const auto slot =
        detail::vtable_slot(static_cast<sentencepiece::util::Status (Spp::*)(std::string_view)>(&Spp::Load));
    auto status = detail::call_slot<Status>(object_.get(), slot, std::string_view(path));
    GENNER_CHECK(status.ok(), path, ": cannot load the SentencePiece model (", status.message(), ")");
  }

  /// Loads a model from its serialized bytes; `where` names it in errors.
  void load_serialized(std::string_view bytes, const std::string& where) {
    static const auto slot = detail::vtable_slot(&Spp::LoadFromSerializedProto);
    auto status = detail::call_slot<Status>(object_.get(), slot, bytes);
    GENNER_CHECK(status.ok(), where, ": cannot load the SentencePiece model (", status.message(), ")");
  }

  /// Pieces of `text` (SentencePiece normalises and adds the leading ▁ itself).
  std::vector<std::string> encode_pieces(std::string_view text) const {
    static const auto slot = detail::vtable_slot(
        static_cast<sentencepiece::util::Status (Spp::*)(std::string_view, std::vector<std::string>*) const>(
            &Spp::Encode));
    std::vector<std::string> out;
    auto status = detail::call_slot<Status>(object_.get(), slot, text, &out);
    GENNER_CHECK(status.ok(), "SentencePiece cannot encode '", text, "' (", status.message(), ")");
    return out;
  }

  /// Piece ids of `text`.
  std::vector<int> encode_ids(std::string_view text) const {
    static const auto slot = detail::vtable_slot(
        static_cast<sentencepiece::util::Status (Spp::*)(std::string_view, std::vector<int>*) const>(&Spp::Encode));
    std::vector<int> out;
    auto status = detail::call_slot<Status>(object_.get(), slot, text, &out);
    GENNER_CHECK(status.ok(), "SentencePiece cannot encode '", text, "' (", status.message(), ")");
    return out;
  }

  /// Text of piece ids (control pieces such as <pad> and </s> render as nothing).
  std::string decode_ids(const std::vector<int>& ids) const {
    static const auto slot = detail::vtable_slot(
        static_cast<sentencepiece::util::Status (Spp::*)(const std::vector<int>&, std::string*) const>(&Spp::Decode));
    std::string out;
    auto status = detail::call_slot<Status>(object_.get(), slot, &ids, &out);
    GENNER_CHECK(status.ok(), "SentencePiece cannot decode ", ids.size(), " ids (", status.message(), ")");
    return out;
  }

  int piece_size() const {
    static const auto slot = detail::vtable_slot(&Spp::GetPieceSize);
    return detail::call_slot<int>(object_.get(), slot);
  }
  int piece_to_id(std::string_view piece) const {
    static const auto slot = detail::vtable_slot(&Spp::PieceToId);
    return detail::call_slot<int>(object_.get(), slot, piece);
  }
  std::string id_to_piece(int id) const {
    static const auto slot = detail::vtable_slot(static_cast<const std::string& (Spp::*)(int) const>(&Spp::IdToPiece));
    return *detail::call_slot<const std::string*>(object_.get(), slot, id);
  }
  bool is_unknown(int id) const {
    static const auto slot = detail::vtable_slot(&Spp::IsUnknown);
    return detail::call_slot<bool>(object_.get(), slot, id);
  }
  bool is_control(int id) const {
    static const auto slot = detail::vtable_slot(&Spp::IsControl);
    return detail::call_slot<bool>(object_.get(), slot, id);
  }
  float score(int id) const {
    static const auto slot = detail::vtable_slot(&Spp::GetScore);
    return detail::call_slot<float>(object_.get(), slot, id);
  }

 private:
  struct Destroy {
    void operator()(void* p) const {
      static const auto slot = 1;  // Itanium: slot 0 complete destructor, slot 1 deleting destructor
      auto vtable = *static_cast<void* const* const*>(p);
      reinterpret_cast<void (*)(void*)>(vtable[slot])(p);
    }
  };
  std::unique_ptr<void, Destroy> object_;
};

}  // namespace genner::test
