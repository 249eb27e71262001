// genner/generate/defaults.hpp: the one set of NER decoding defaults. The command line
// (train::RunConfig), pointer decoding (PointerDecodeOptions), the Trainer's evaluation, the
// Recognizer (built in memory or restored from a run that records no decoding settings) and the
// examples all take their target-length limits from here, so they decode a model identically.
#pragma once

#include <cstdint>

namespace genner::generate {

/// New indices at most per sentence: kMaxLen + floor(kMaxLenA * source length), the published
/// setting (max_len 10, max_len_a 0.6).
inline constexpr std::int64_t kMaxLen = 10;
inline constexpr double kMaxLenA = 0.6;

}  // namespace genner::generate
