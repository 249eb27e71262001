// genner/t5/structure.hpp: the run-time description of what is added to or
// placed around a T5 when it is built — adapters, LoRA factors and the device
// of every block. Compile-time policies (genner/model) are turned into this.
#pragma once

#include <c10/core/Device.h>

#include <algorithm>
#include <string>
#include <vector>

namespace genner::t5 {

/// A bottleneck adapter `x + Up(GELU(Down(x)))` on sublayer outputs; size 0 means none.
struct AdapterSpec {
  int64_t size = 0;
  bool self_attention = true;
  bool cross_attention = true;
  bool feed_forward = true;
};

/// LoRA factors on named projections (q k v o of every attention, wi wi_0 wi_1 wo); rank 0 means none.
struct LoraSpec {
  int64_t rank = 0;
  double alpha = 16.0;
  std::vector<std::string> targets = {"q", "v"};
  bool targets_projection(const std::string& name) const {
    return rank > 0 && std::find(targets.begin(), targets.end(), name) != targets.end();
  }
};

/// What one block gets: its adapters, its LoRA factors and its device.
struct BlockStructure {
  AdapterSpec adapter;
  LoraSpec lora;
  c10::Device device = c10::Device(c10::kCPU);
};

/// One entry per block; a missing entry means a plain block on the CPU.
struct StackStructure {
  std::vector<BlockStructure> blocks;
  BlockStructure block(size_t i) const { return i < blocks.size() ? blocks[i] : BlockStructure{}; }
};

struct T5Structure {
  StackStructure encoder;
  StackStructure decoder;
  /// Where the shared embedding table (and a tied output head) lives.
  c10::Device embedding_device = c10::Device(c10::kCPU);
  /// Whether an untied backbone (v1.1, FLAN) gets its LM head `lm_head.weight`. NER models build
  /// without it: the pointer head never reads it, so a checkpoint's head is skipped when loading
  /// (listed in the load report as ignored) and none is kept in memory or written.
  bool lm_head = true;
};

}  // namespace genner::t5
