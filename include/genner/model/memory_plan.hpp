// genner/model/memory_plan.hpp: what a training run of a NER model will hold in memory, per device
// of its device map — weights by dtype (as stored: fp32, or bf16 / int8 for a frozen backbone),
// gradients and AdamW state of the trainable tensors, and an estimate of the activations kept for
// backward at a given batch and lengths, with and without activation checkpointing. Weights,
// gradients and optimizer state are exact (counted from the model's tensors); activations follow
// the saved tensors of genner's T5 layers (genner/t5/layers.hpp) and are an estimate.
//
//   auto plan = genner::model::plan_memory(model, {.batch = 8, .source = 64, .target = 20});
//   std::cout << plan.to_json().dump(2);   // plan.total() bytes; plan.check_budget(budget, "--memory_budget")
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/model/precision.hpp>

namespace genner::model {

/// The batch a plan is made for: sentences, source pieces and target length of the longest.
struct MemoryShape {
  int64_t batch = 16;
  int64_t source = 64;
  int64_t target = 16;
};

/// Bytes on one device.
struct DeviceMemory {
  std::string device;
  std::map<std::string, int64_t> weights;  ///< by dtype ("fp32", "bf16", "int8")
  int64_t gradients = 0;
  int64_t optimizer = 0;
  int64_t activations = 0;               ///< kept for backward without checkpointing (+ working set)
  int64_t activations_checkpointed = 0;  ///< with activation checkpointing

  int64_t weight_bytes() const {
    int64_t n = 0;
    for (const auto& [dtype, b] : weights) n += b;
    return n;
  }
  int64_t total(bool checkpointing) const {
    return weight_bytes() + gradients + optimizer + (checkpointing ? activations_checkpointed : activations);
  }
};

/// Formats bytes for people: "1.23 GiB", "45.6 MiB", "789 KiB".
inline std::string format_bytes(int64_t bytes) {
  std::ostringstream out;
  out.precision(3);
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024)
    out << b / (1024.0 * 1024 * 1024) << " GiB";
  else if (b >= 1024.0 * 1024)
    out << b / (1024.0 * 1024) << " MiB";
  else
    out << b / 1024.0 << " KiB";
  return out.str();
}

struct MemoryPlan {
  std::vector<DeviceMemory> devices;
  MemoryShape shape;
  bool training = true;
  bool checkpointing = false;
  Precision precision = Precision::fp32;

  int64_t total() const {
    int64_t n = 0;
    for (const auto& d : devices) n += d.total(checkpointing);
    return n;
  }
  /// The device whose total is largest.
  const DeviceMemory& largest() const {
    return *std::max_element(devices.begin(), devices.end(), [&](const auto& a, const auto& b) {
      return a.total(checkpointing) < b.total(checkpointing);
    });
  }

  nlohmann::json to_json() const {
    nlohmann::json per_device = nlohmann::json::array();
    for (const auto& d : devices)
      per_device.push_back({{"device", d.device},
                            {"weights", d.weights},
                            {"gradients", d.gradients},
                            {"optimizer", d.optimizer},
                            {"activations", d.activations},
                            {"activations_checkpointed", d.activations_checkpointed},
                            {"total", d.total(checkpointing)},
                            {"total_human", format_bytes(d.total(checkpointing))}});
    return {{"batch", {{"sentences", shape.batch}, {"source", shape.source}, {"target", shape.target}}},
            {"training", training},
            {"gradient_checkpointing", checkpointing},
            {"precision", precision_name(precision)},
            {"devices", per_device},
            {"total", total()},
            {"total_human", format_bytes(total())}};
  }

  /// Refuses a plan whose largest device needs more than `budget` bytes (0: no budget); `what`
  /// names where the budget came from.
  void check_budget(int64_t budget, const std::string& what) const {
    if (budget <= 0) return;
    const auto& d = largest();
    const auto need = d.total(checkpointing);
    GENNER_CHECK(need <= budget, what, ": the memory plan needs ", format_bytes(need), " on ", d.device,
                 " (weights ", format_bytes(d.weight_bytes()), ", gradients ", format_bytes(d.gradients),
                 ", optimizer state ", format_bytes(d.optimizer), ", activations ",
                 format_bytes(checkpointing ? d.activations_checkpointed : d.activations), " for batches of ",
                 shape.batch, " sentences of up to ", shape.source, " source pieces and ", shape.target,
                 " target steps), more than the budget of ", format_bytes(budget),
                 checkpointing ? "; lower batch_size or store the frozen backbone in bf16/int8 (frozen_precision)"
                               : "; lower batch_size, turn on gradient_checkpointing, or store the frozen backbone "
                                 "in bf16/int8 (frozen_precision)");
  }
};

namespace detail {

inline std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "fp32";
    case torch::kBFloat16: return "bf16";
    case torch::kHalf: return "fp16";
    case torch::kChar: return "int8";
    case torch::kDouble: return "fp64";
    default: return c10::toString(t);
  }
}

/// Elements one T5 block keeps for backward, following the saved tensors of genner's layers.
/// n: tokens of the block's own sequence, ns: source tokens (cross-attention), a / ac: entries of
/// the self / cross attention maps. What a product keeps depends on what trains: a trainable
/// weight keeps the product's input, a frozen one only what the input's gradient needs.
struct BlockActivation {
  int64_t d, ff, inner;
  bool gated;
  bool dr;          ///< dropout on
  bool weights;     ///< the projection weights train (full fine-tuning)
  bool norms;       ///< the layer norms train
  bool lora_attn;   ///< LoRA factors on some attention projection (they keep its input)
  bool lora_ff;     ///< LoRA factors on some feed-forward projection
  int64_t norm(int64_t n, bool lora) const { return (norms ? n * d : 0) + (weights || lora ? n * d : 0); }
  /// A dropout mask over `elements`, in fp32 elements: one bit each (core::dropout).
  int64_t mask(int64_t elements) const { return dr ? (elements + 31) / 32 : 0; }
  // Dropout on the attention map keeps its output (the product with the values reads it); on a
  // sublayer's output it keeps only its mask (the residual sum reads nothing back).
  int64_t self(int64_t n, int64_t a, int64_t adapter) const {
    const int64_t k = dr, w = weights;
    return norm(n, lora_attn) + 3 * n * inner + a * (1 + k) + mask(a) + w * n * inner + mask(n * d) + n * d +
           adapted(n, adapter);
  }
  int64_t cross(int64_t n, int64_t ns, int64_t ac, int64_t adapter) const {
    const int64_t k = dr, w = weights;
    return norm(n, lora_attn) + n * inner + 2 * ns * inner + ac * (1 + k) + mask(ac) + w * n * inner + mask(n * d) +
           n * d + adapted(n, adapter);
  }
  int64_t feed_forward(int64_t n, int64_t adapter) const {
    const int64_t k = dr, w = weights;
    const int64_t hidden = gated ? n * ff * (3 + w) + mask(n * ff) : n * ff * (1 + w * k) + mask(n * ff);
    return norm(n, lora_ff) + hidden + mask(n * d) + n * d + adapted(n, adapter);
  }
  int64_t adapted(int64_t n, int64_t size) const { return size > 0 ? 2 * n * size + 2 * n * d : 0; }
};

/// The entry of `by_device` for `dev`, made (and named) on first use.
inline DeviceMemory& device_entry(std::map<std::string, DeviceMemory>& by_device, const torch::Device& dev) {
  auto& d = by_device[dev.str()];
  d.device = dev.str();
  return d;
}

/// Adds the weights of `model` to the devices they live on, by dtype: parameters, buffers and the
/// scales of int8-stored projections; under training also the gradients and AdamW state of the
/// trainable parameters. Returns, per device, the bytes of autocast's bf16 copies of the fp32
/// projection weights there.
inline std::map<std::string, int64_t> count_weights(std::map<std::string, DeviceMemory>& by_device, NerModelCore& model,
                                                    bool training) {
  auto at = [&](const torch::Device& dev) -> DeviceMemory& { return device_entry(by_device, dev); };
  for (const auto& p : model.parameters()) {
    auto& d = at(p.device());
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    d.weights[dtype_name(p.scalar_type())] += bytes;
    if (training && p.requires_grad()) {
      d.gradients += bytes;
      d.optimizer += 2 * bytes;  // AdamW: first and second moments
    }
  }
  for (const auto& b : model.buffers())
    at(b.device()).weights[dtype_name(b.scalar_type())] += b.numel() * static_cast<int64_t>(b.element_size());
  // Scales of int8-stored projections and autocast's bf16 copies of fp32 projection weights.
  // The copies live where their weights do.
  std::map<std::string, int64_t> autocast_copies;
  for (const auto& m : model.t5->modules(false)) {
    auto* p = m->as<t5::ProjectionImpl>();
    if (!p) continue;
    if (p->weight_scale.defined()) at(p->weight.device()).weights["fp32"] += p->weight_scale.numel() * 4;
    if (p->weight.scalar_type() == torch::kFloat) autocast_copies[at(p->weight.device()).device] += p->weight.numel() * 2;
  }
  return autocast_copies;
}

/// What one block of `model` keeps for backward, by what trains: read off the first encoder block
/// (freezing is uniform across blocks) and the LoRA factors of its projections.
inline BlockActivation block_activation(NerModelCore& model, bool dropout) {
  const auto& c = model.config();
  auto first_block = model.t5->encoder->block_at(0);
  auto attention = first_block->self_attention()->attention;
  const bool weights_train = attention->q->weight.requires_grad();
  const bool norms_train = first_block->self_attention()->layer_norm->weight.requires_grad();
  bool lora_attn = false, lora_ff = false;
  for (const auto& item : model.t5->named_modules()) {
    auto* p = item.value()->as<t5::ProjectionImpl>();
    if (!p || !p->has_lora()) continue;
    (item.key().find("DenseReluDense") != std::string::npos ? lora_ff : lora_attn) = true;
  }
  return {c.d_model, c.d_ff,        c.num_heads * c.d_kv, c.feed_forward == t5::FeedForward::gated_gelu,
          dropout,   weights_train, norms_train,          lora_attn,
          lora_ff};
}

/// The adapter size of part `k` (0: self-attention, 1: cross-attention, 2: feed-forward) of block
/// `i` of a stack, 0 when that part has no adapter.
inline int64_t adapter_size(const t5::StackStructure& ss, size_t i, int k) {
  const auto b = ss.block(i);
  if (b.adapter.size <= 0) return int64_t{0};
  const bool on = k == 0 ? b.adapter.self_attention : k == 1 ? b.adapter.cross_attention : b.adapter.feed_forward;
  return on ? b.adapter.size : int64_t{0};
}

/// Bytes of `elements` activations kept in fp32, times `scale` (0.75 where autocast keeps products in bf16).
inline int64_t activation_bytes(int64_t elements, double scale) {
  return static_cast<int64_t>(static_cast<double>(elements) * 4 * scale);
}

/// A batch's sizes as the blocks' activations count them.
struct BatchSizes {
  int64_t ns, nt;                 ///< source and target tokens
  int64_t enc_a, dec_a, cross_a;  ///< entries of the encoder self, decoder self and cross attention maps
  double scale;                   ///< bytes per element relative to fp32 (activation_bytes)
};

/// Adds the activations of every encoder and decoder block of `model` to the device the block runs
/// on, and to `inputs_kept` the bytes of the block inputs kept under checkpointing, per device.
/// Returns the bytes of the largest block.
inline int64_t add_block_activations(std::map<std::string, DeviceMemory>& by_device, NerModelCore& model,
                                     const BlockActivation& block, const BatchSizes& n,
                                     std::map<std::string, int64_t>& inputs_kept) {
  const auto& st = model.structure();
  const int64_t d_model = model.config().d_model;
  auto bytes = [&](int64_t elements) { return activation_bytes(elements, n.scale); };
  int64_t largest_block = 0;
  for (size_t i = 0; i < static_cast<size_t>(model.t5->encoder->size()); ++i) {
    const auto e = block.self(n.ns, n.enc_a, adapter_size(st.encoder, i, 0)) +
                   block.feed_forward(n.ns, adapter_size(st.encoder, i, 2));
    auto& d = device_entry(by_device, model.t5->encoder->devices()[i]);
    d.activations += bytes(e);
    inputs_kept[d.device] += bytes(n.ns * d_model);
    largest_block = std::max(largest_block, bytes(e));
  }
  for (size_t i = 0; i < static_cast<size_t>(model.t5->decoder->size()); ++i) {
    const auto e = block.self(n.nt, n.dec_a, adapter_size(st.decoder, i, 0)) +
                   block.cross(n.nt, n.ns, n.cross_a, adapter_size(st.decoder, i, 1)) +
                   block.feed_forward(n.nt, adapter_size(st.decoder, i, 2));
    auto& d = device_entry(by_device, model.t5->decoder->devices()[i]);
    d.activations += bytes(e);
    inputs_kept[d.device] += bytes(n.nt * d_model);
    largest_block = std::max(largest_block, bytes(e));
  }
  return largest_block;
}

}  // namespace detail

/// The plan for training `model` on batches of `shape` (inference: `training` false keeps
/// weights only, plus the encoder's activations of one batch).
inline MemoryPlan plan_memory(NerModelCore& model, MemoryShape shape, Precision precision = Precision::fp32,
                              bool checkpointing = false, bool training = true) {
  MemoryPlan plan;
  plan.shape = shape;
  plan.precision = precision;
  plan.checkpointing = checkpointing;
  plan.training = training;
  std::map<std::string, DeviceMemory> by_device;
  auto at = [&](const torch::Device& dev) -> DeviceMemory& { return detail::device_entry(by_device, dev); };
  auto autocast_copies = detail::count_weights(by_device, model, training);

  const auto& c = model.config();
  const auto& s = model.spec();
  const int64_t B = shape.batch, S = shape.source + s.prompt_length, T = shape.target, H = c.num_heads;
  const bool dropout = training && c.dropout_rate > 0;
  const auto block = detail::block_activation(model, dropout);
  const int64_t ns = B * S, nt = B * T;
  const double scale = precision == Precision::bf16 ? 0.75 : 1.0;  // autocast keeps products in bf16
  auto bytes = [&](int64_t elements) { return detail::activation_bytes(elements, scale); };
  const int64_t enc_a = B * H * S * S, dec_a = B * H * T * T, cross_a = B * H * T * S;
  std::map<std::string, int64_t> inputs_kept;  // per device: block inputs kept under checkpointing
  const int64_t largest_block =
      detail::add_block_activations(by_device, model, block, {ns, nt, enc_a, dec_a, cross_a, scale}, inputs_kept);
  // Around the stacks: embeddings, final norms, the encoder MLP, the pointer head and its loss,
  // plus backward's working set (the gradient of the largest activations in flight).
  const int64_t k = dropout ? 1 : 0;
  const int64_t L = model.num_types();
  // Dropout masks of the stacks' inputs and outputs are bits (block.mask); the encoder MLP's
  // torch::nn::Dropout keeps an fp32 noise tensor.
  const int64_t around_encoder = ns * c.d_model + block.mask(ns * c.d_model) + 2 * ns * c.d_model +
                                 2 * block.mask(ns * c.d_model) + (s.encoder_mlp ? (3 + k) * ns * c.d_model : 0) +
                                 ns * c.d_model;
  const int64_t around_decoder = nt * c.d_model + block.mask(nt * c.d_model) + 2 * nt * c.d_model +
                                 2 * block.mask(nt * c.d_model) + 4 * nt * (1 + L + S);
  const int64_t working = 2 * std::max({enc_a, B * S * c.d_ff, nt * c.d_ff, cross_a});
  auto& first = at(model.t5->encoder->output_device());
  auto& last = at(model.t5->decoder->output_device());
  if (training) {
    first.activations += bytes(around_encoder);
    last.activations += bytes(around_decoder + working);
    // Checkpointed: the blocks' inputs, and the larger of what is alive at the end of forward
    // (everything around the stacks) and what backward holds while it recomputes one block
    // (that block's activations beside the embeddings it started from).
    const int64_t embedded = bytes(ns * c.d_model + block.mask(ns * c.d_model));
    for (auto& [name, d] : by_device) {
      const int64_t outside = (&d == &first ? bytes(around_encoder) : 0) + (&d == &last ? bytes(around_decoder) : 0);
      const int64_t recompute = inputs_kept[name] > 0 ? largest_block + (&d == &first ? embedded : 0) : 0;
      d.activations_checkpointed = inputs_kept[name] + std::max(outside, recompute) + (&d == &last ? bytes(working) : 0);
    }
    if (precision == Precision::bf16)
      for (auto& [name, d] : by_device) {
        d.activations += autocast_copies[name];
        d.activations_checkpointed += autocast_copies[name];
      }
  } else {
    first.activations = first.activations_checkpointed = bytes(2 * ns * c.d_model + 2 * std::max(enc_a, ns * c.d_ff));
  }
  for (auto& [name, d] : by_device) plan.devices.push_back(d);
  return plan;
}

/// Bytes from a budget such as "20GB", "512MiB", "1.5G" or a plain number of bytes; `what` names
/// the setting in the error.
inline int64_t parse_bytes(const std::string& text, const std::string& what) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) { return std::tolower(ch); });
  const std::map<std::string, double> units = {{"", 1.0},          {"b", 1.0},
                                               {"k", 1024.0},      {"kb", 1e3},
                                               {"kib", 1024.0},    {"m", 1048576.0},
                                               {"mb", 1e6},        {"mib", 1048576.0},
                                               {"g", 1073741824.0}, {"gb", 1e9},
                                               {"gib", 1073741824.0}, {"t", 1099511627776.0},
                                               {"tb", 1e12},       {"tib", 1099511627776.0}};
  const auto it = units.find(unit);
  GENNER_CHECK(used > 0 && it != units.end() && value >= 0, what,
               ": expected a size such as 20GB, 512MiB or a number of bytes, found '", text, "'");
  return static_cast<int64_t>(value * it->second);
}

}  // namespace genner::model
