// genner/model/ner_model.hpp: the generative NER model — a T5 built with the
// structure an experiment alias chooses (genner/model/policies.hpp), label-token
// embeddings, an optional soft prompt and encoder MLP, and the pointer head of
// docs/METHOD.md §1. It implements the generator contract of encoded_source.hpp.
// The body (NerModelCore) is compiled once for all experiments; NerModelImpl<E>
// only checks E at compile time and lowers it to an ExperimentSpec.
#pragma once

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <genner/core/adamw.hpp>
#include <genner/core/error.hpp>
#include <genner/core/matmul.hpp>
#include <genner/model/encoded_source.hpp>
#include <genner/model/policies.hpp>
#include <genner/model/spec.hpp>
#include <genner/t5/layers.hpp>
#include <genner/t5/model.hpp>
#include <genner/t5/pretrained.hpp>

namespace genner::model {

/// Run-time choices that do not change an experiment's structure.
struct NerOptions {
  int64_t num_types = 1;
  /// Device of each ordinal the device map names; empty: every ordinal is the CPU.
  std::vector<torch::Device> devices;
  /// Id of the first label token; default 32100 (right after T5's SentencePiece vocabulary) when
  /// the table has T5's 32128 rows, else the table's size (tiny test models).
  std::optional<int64_t> label_token_offset;
  /// The backbone shape: required for DynamicBackbone, checked against a static preset.
  std::optional<t5::T5Config> config;
  double mlp_dropout = 0.3;
  /// How the frozen T5 projections are stored (NerModelCore::store_frozen); a checkpoint loaded
  /// by from_pretrained fills them in this form directly.
  t5::WeightStorage frozen_storage = t5::WeightStorage::fp32;

  NerOptions& types(int64_t n) {
    num_types = n;
    return *this;
  }
  NerOptions& on(std::vector<torch::Device> d) {
    devices = std::move(d);
    return *this;
  }
  NerOptions& with_config(t5::T5Config c) {
    config = std::move(c);
    return *this;
  }
};

/// Teacher-forced output: logits [B, T, 1+L+S] and the mean cross-entropy over targets != -100.
struct NerOutput {
  torch::Tensor logits, loss;
};

/// A named set of parameters with its weight decay (docs/METHOD.md §3: three groups).
struct ParameterGroup {
  std::string name;
  std::vector<torch::Tensor> parameters;
  double weight_decay = 0.0;
};

class NerModelCore : public torch::nn::Module {
 public:
  /// Builds the model from `spec` on `config`; `backbone` (optional) is a T5 already built with
  /// `spec.structure(config, options.devices)` (e.g. by load_pretrained).
  NerModelCore(ExperimentSpec spec, t5::T5Config config, NerOptions options, t5::T5 backbone = nullptr)
      : spec_(std::move(spec)), config_(std::move(config)), options_(std::move(options)) {
    GENNER_CHECK(options_.num_types >= 1, "a NER model needs at least one entity type, found ", options_.num_types);
    structure_ = spec_.structure(config_, options_.devices);
    label_offset_ = options_.label_token_offset.value_or(config_.vocab_size >= 32128 ? 32100 : config_.vocab_size);
    GENNER_CHECK(label_offset_ > config_.eos_token_id && label_offset_ <= config_.vocab_size, "label_token_offset ",
                 label_offset_, " must lie in (eos id, vocab_size=", config_.vocab_size, "]");
    t5 = register_module("t5", backbone ? backbone : t5::T5(config_, structure_));
    embedding_device_ = structure_.embedding_device;
    encoder_device_ = t5->encoder->output_device();
    head_device_ = t5->decoder->output_device();

    const auto& table = t5->shared->weight;
    {
      torch::NoGradGuard no_grad;
      // Until init_label_embeddings is called: random rows with the table's statistics.
      auto init = torch::randn({options_.num_types, config_.d_model}, table.options()) * table.std() + table.mean();
      label_embeddings = register_parameter("label_embeddings", init);
    }
    if (spec_.prompt_length > 0) {
      auto rows = torch::tensor(prompt_rows(label_offset_, spec_.prompt_length), torch::kLong).to(table.device());
      soft_prompt = register_parameter("soft_prompt", table.detach().index_select(0, rows).clone());
    }
    label_tokens_ = torch::arange(label_offset_, label_offset_ + options_.num_types, torch::kLong);
    if (spec_.seed_compat) {
      torch::NoGradGuard no_grad;
      // The end index's own scoring row; imported checkpoints overwrite it.
      eos_embedding = register_parameter("eos_embedding", table.narrow(0, config_.eos_token_id, 1).detach().clone());
    }
    if (spec_.encoder_mlp) {
      const int64_t d = config_.d_model;
      encoder_mlp = register_module(
          "encoder_mlp", torch::nn::Sequential(torch::nn::Linear(d, d), torch::nn::Dropout(options_.mlp_dropout),
                                               torch::nn::ReLU(), torch::nn::Linear(d, d)));
      encoder_mlp->to(encoder_device_);  // it reads the encoder output where it is produced
    }
    apply_freezing();
    if (options_.frozen_storage != t5::WeightStorage::fp32) store_frozen(options_.frozen_storage);
  }

  // ---- the generator contract (encoded_source.hpp) ----

  int64_t num_types() const { return options_.num_types; }
  int64_t label_token_id(int64_t type) const { return label_tokens_[type - 1].item<int64_t>(); }  // type in 1..L
  int64_t label_token_offset() const { return label_offset_; }

  /// The rows a soft prompt of `length` vectors starts from: `<extra_id_89>` (row offset-90) and
  /// upwards to the last SentencePiece row, then downwards below offset-90 (docs/METHOD.md §3).
  static std::vector<int64_t> prompt_rows(int64_t label_offset, int64_t length) {
    GENNER_CHECK(length <= label_offset, "a soft prompt of ", length, " vectors needs as many rows below id ",
                 label_offset);
    const int64_t start = std::max<int64_t>(0, label_offset - 90);
    std::vector<int64_t> rows;
    for (int64_t r = start; r < label_offset && static_cast<int64_t>(rows.size()) < length; ++r) rows.push_back(r);
    for (int64_t r = start - 1; static_cast<int64_t>(rows.size()) < length; --r) rows.push_back(r);
    return rows;
  }

  /// The token id each type is fed to the decoder as (type i -> ids[i-1]); default: consecutive
  /// ids from the label offset. Every id must be a label token id (label offset .. + L - 1).
  void set_label_tokens(const std::vector<int64_t>& ids) {
    GENNER_CHECK(static_cast<int64_t>(ids.size()) == options_.num_types, "set_label_tokens: expected ",
                 options_.num_types, " label token ids, found ", ids.size());
    for (const auto id : ids)
      GENNER_CHECK(id >= label_offset_ && id < label_offset_ + options_.num_types,
                   "set_label_tokens: expected ids in [", label_offset_, ", ", label_offset_ + options_.num_types,
                   "), found ", id);
    label_tokens_ = torch::tensor(ids, torch::kLong);
  }
  const torch::Tensor& label_tokens() const { return label_tokens_; }

  /// Encodes src_ids [B, S] (each row ends with </s>) under src_mask [B, S].
  EncodedSource encode(const torch::Tensor& src_ids, const torch::Tensor& src_mask) {
    GENNER_CHECK(src_ids.defined() && src_ids.dim() == 2 && src_mask.defined() && src_mask.sizes() == src_ids.sizes(),
                 "NerModel::encode: expected src_ids and src_mask of one shape [batch, length], found ",
                 src_ids.defined() ? src_ids.sizes() : c10::IntArrayRef{}, " and ",
                 src_mask.defined() ? src_mask.sizes() : c10::IntArrayRef{});
    t5::check_token_ids(src_ids, config_.vocab_size, "NerModel::encode: src_ids");
    EncodedSource out;
    out.src_ids = src_ids;
    out.src_mask = src_mask;
    auto embeds = embed(src_ids);
    if (spec_.features == PointerFeatures::avg_score) out.embeds = embeds;  // the head's second term, looked up once
    auto mask = src_mask.to(embedding_device_);
    const int64_t P = spec_.prompt_length;
    if (P > 0) {
      const int64_t B = src_ids.size(0);
      embeds = torch::cat({soft_prompt.unsqueeze(0).expand({B, P, config_.d_model}), embeds}, 1);
      mask = torch::cat({torch::ones({B, P}, mask.options()), mask}, 1);
    }
    auto hidden = t5->encoder->forward(embeds, mask).last_hidden_state;
    // The prompt is stripped: the decoder and the pointer head see the source positions only.
    out.hidden = P > 0 ? hidden.narrow(1, P, src_ids.size(1)) : hidden;
    out.mask = src_mask.to(out.hidden.device());
    auto H = out.hidden;
    if (spec_.encoder_mlp) H = mlp_forward(H);
    if (spec_.features == PointerFeatures::avg_feature) {
      auto src_embeds = P > 0 ? embeds.narrow(1, P, src_ids.size(1)) : embeds;
      H = (H + src_embeds.to(H.device())) / 2;
    }
    out.features = H.to(head_device_);
    return out;
  }

  /// Maps output indices [N, T] to decoder input token ids: 0 -> </s>, type i -> its label
  /// token, L+1+p -> src_ids[p]; anything negative (padding) -> <pad>.
  torch::Tensor index_to_token(const torch::Tensor& indices, const torch::Tensor& src_ids) const {
    const int64_t L = options_.num_types;
    auto idx = indices.to(torch::kLong);
    auto src = src_ids.to(idx.device()).to(torch::kLong);
    auto pointer = (idx - (L + 1)).clamp(0, src.size(1) - 1);
    auto out = torch::gather(src, 1, pointer);
    auto type_token =
        label_tokens_.to(idx.device()).index_select(0, (idx - 1).clamp(0, L - 1).reshape({-1})).view(idx.sizes());
    out = torch::where(idx <= L, type_token, out);
    out = torch::where(idx == 0, torch::full_like(idx, config_.eos_token_id), out);
    return torch::where(idx < 0, torch::full_like(idx, config_.pad_token_id), out);
  }

  /// One incremental decoder step: token_ids [N, 1] -> logits [N, 1+L+S].
  torch::Tensor decode_step(const torch::Tensor& token_ids, const EncodedSource& source, t5::DecoderCache& cache) {
    auto h = t5->decoder->forward(embed(token_ids), torch::Tensor(), source.hidden, cross_mask(source), &cache)
                 .last_hidden_state;
    return scores(h, source).squeeze(1);
  }

  /// Teacher forcing: decoder_input_ids [B, T] (token ids, shifted right), target_indices [B, T]
  /// (-100 = ignore). Undefined targets: logits only.
  NerOutput forward(const torch::Tensor& src_ids, const torch::Tensor& src_mask, const torch::Tensor& decoder_input_ids,
                    const torch::Tensor& target_indices = {}) {
    auto source = encode(src_ids, src_mask);
    auto h = t5->decoder->forward(embed(decoder_input_ids), torch::Tensor(), source.hidden, cross_mask(source))
                 .last_hidden_state;
    NerOutput out;
    out.logits = scores(h, source);
    if (target_indices.defined()) out.loss = loss(out.logits, target_indices);
    return out;
  }

  static torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& target_indices) {
    return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat),
                                  target_indices.to(logits.device()).to(torch::kLong).reshape({-1}),
                                  /*weight=*/{}, at::Reduction::Mean, t5::ignore_index);
  }

  /// Pointer-head logits [B, T, 1+L+S] from decoder states h [B, T, d] (docs/METHOD.md §1).
  /// The head always scores in fp32: under bf16 autocast or with bf16 weights, logits of magnitude
  /// ~10 would otherwise be rounded to steps of ~0.06 before the softmax that picks the pointer.
  torch::Tensor scores(const torch::Tensor& decoder_hidden, const EncodedSource& source) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    auto h = decoder_hidden.to(head_device_, torch::kFloat);
    // E[</s>] and the label rows are gathered on the embedding device; the rows, not the table, move.
    auto rows = torch::cat({end_row(), type_rows()}).to(head_device_, torch::kFloat);
    auto fixed = torch::matmul(h, rows.t());                                              // [B, T, 1+L]
    auto pointer = core::matmul(h, source.features.to(torch::kFloat).transpose(1, 2));  // [B, T, S]
    if (spec_.features == PointerFeatures::avg_score) {
      GENNER_CHECK(source.embeds.defined(), "NerModel::scores: avg_score needs the source embeddings encode() keeps");
      auto src_embeds = source.embeds.to(head_device_, torch::kFloat);
      pointer = (pointer + core::matmul(h, src_embeds.transpose(1, 2))) / 2;
    }
    auto keep = pointable(source.src_ids, source.src_mask).to(head_device_);  // [B, S]
    // SeedCompat: the original's fill value -1e32 instead of the type's lowest value.
    pointer = pointer.masked_fill(keep.logical_not().unsqueeze(1),
                                  spec_.seed_compat ? -1e32 : t5::lowest_value(pointer.scalar_type()));
    return torch::cat({fixed, pointer}, -1);
  }

  /// The row the end index is scored with: E[</s>]; SeedCompat: its own row `eos_embedding`.
  torch::Tensor end_row() const {
    return spec_.seed_compat ? eos_embedding : t5->shared->weight.narrow(0, config_.eos_token_id, 1);
  }
  /// The rows types 1..L are scored with: each type's own token row; SeedCompat: the label rows in
  /// token-id order, whatever token each type is fed as.
  torch::Tensor type_rows() const {
    if (spec_.seed_compat) return label_embeddings;
    return label_embeddings.index_select(0, (label_tokens_ - label_offset_).to(label_embeddings.device()));
  }
  /// The source mask decoder cross-attention uses; SeedCompat: none (padding is attended to).
  torch::Tensor cross_mask(const EncodedSource& source) const {
    return spec_.seed_compat ? torch::Tensor() : source.mask;
  }

  /// Positions a pointer may name: real tokens strictly before the first </s>.
  torch::Tensor pointable(const torch::Tensor& src_ids, const torch::Tensor& src_mask) const {
    auto before_eos = (src_ids == config_.eos_token_id).to(torch::kLong).cumsum(1) == 0;
    return before_eos.logical_and(src_mask.to(before_eos.device()).to(torch::kBool));
  }

  /// Token embeddings (label tokens from `label_embeddings`, the rest from the shared table),
  /// on the embedding device.
  torch::Tensor embed(const torch::Tensor& ids) {
    auto i = ids.to(embedding_device_).to(torch::kLong);
    auto is_label = i >= label_offset_;
    auto base = t5->shared(i.masked_fill(is_label, 0));
    auto label = label_embeddings.index_select(0, (i - label_offset_).clamp(0, options_.num_types - 1).reshape({-1}))
                     .view(base.sizes());
    return torch::where(is_label.unsqueeze(-1), label, base);
  }

  // ---- label tokens ----

  /// Each type's row (the row of the token it is fed as) = mean of the shared-table rows of the
  /// pieces of its natural-language name, then standardised to the table's mean and std (without
  /// it the initial loss explodes). SeedCompat: standardised to the original's fixed 0.4356 / -0.0094
  /// (unbiased std over d_model), and the end-index row set to E[</s>] standardised the same way.
  /// No vocabulary row is ever changed; compat::seed_init_label_embeddings reproduces the original's
  /// procedure, which does change some (docs/METHOD.md §6, behaviours 3 and 4).
  void init_label_embeddings(const std::vector<std::vector<int64_t>>& name_pieces) {
    GENNER_CHECK(static_cast<int64_t>(name_pieces.size()) == options_.num_types, "init_label_embeddings: got ",
                 name_pieces.size(), " type names but the model has ", options_.num_types, " types");
    torch::NoGradGuard no_grad;
    const auto& table = t5->shared->weight;
    const auto mean = spec_.seed_compat ? torch::tensor(-0.0094, table.options()) : table.mean();
    const auto std = spec_.seed_compat ? torch::tensor(0.4356, table.options()) : table.std();
    const auto standardise = [&](torch::Tensor row) {
      const auto row_std = row.std();
      return row_std.item<double>() > 0 ? (row - row.mean()) / row_std * std + mean : row - row.mean() + mean;
    };
    for (size_t t = 0; t < name_pieces.size(); ++t) {
      GENNER_CHECK(!name_pieces[t].empty(), "init_label_embeddings: type ", t + 1, " has an empty name");
      auto ids = torch::tensor(name_pieces[t], torch::TensorOptions().dtype(torch::kLong)).to(table.device());
      auto row = standardise(table.index_select(0, ids).mean(0));
      const auto r = label_tokens_[static_cast<int64_t>(t)].item<int64_t>() - label_offset_;
      label_embeddings[r].copy_(row.to(label_embeddings.device()));
    }
    if (spec_.seed_compat) eos_embedding[0].copy_(standardise(table[config_.eos_token_id]).to(eos_embedding.device()));
  }

  // ---- training ----

  const ExperimentSpec& spec() const { return spec_; }
  const t5::T5Config& config() const { return config_; }
  const t5::T5Structure& structure() const { return structure_; }
  torch::Device embedding_device() const { return embedding_device_; }
  torch::Device head_device() const { return head_device_; }

  /// Whether a parameter trains. SeedCompat: the label and end-index rows belong to the embedding
  /// table, as in the original, and train only when the table does.
  bool is_trainable(const std::string& name) const {
    if (spec_.seed_compat && t5::parameter_kind(name) == t5::ParameterKind::label_rows)
      return spec_.trainable.embeddings || spec_.trainable.backbone;
    return spec_.trainable.contains(name);
  }

  /// The trainable parameters, by name.
  std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters() const {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& p : named_parameters(true))
      if (is_trainable(p.key())) out.emplace_back(p.key(), p.value());
    return out;
  }
  int64_t count_trainable() const {
    int64_t n = 0;
    for (const auto& [name, p] : trainable_parameters()) n += p.numel();
    return n;
  }

  /// Three groups of trainable parameters: modules new to T5 (decay), backbone weights (decay),
  /// layer norms (no decay); empty groups are left out.
  std::vector<ParameterGroup> parameter_groups(double weight_decay = 0.01) const {
    ParameterGroup added{"new_modules", {}, weight_decay}, backbone{"backbone", {}, weight_decay},
        norms{"layer_norms", {}, 0.0};
    for (const auto& [name, p] : trainable_parameters()) {
      switch (role_of(name)) {
        case ParameterRole::added: added.parameters.push_back(p); break;
        case ParameterRole::layer_norm: norms.parameters.push_back(p); break;
        default: backbone.parameters.push_back(p); break;
      }
    }
    std::vector<ParameterGroup> out;
    for (auto* g : {&added, &backbone, &norms})
      if (!g->parameters.empty()) out.push_back(std::move(*g));
    return out;
  }

  /// An AdamW over parameter_groups(), each group with its own weight decay (core::FusedAdamW:
  /// LibTorch's AdamW, each parameter updated in one pass).
  std::unique_ptr<torch::optim::AdamW> make_adamw(double lr, double weight_decay = 0.01) const {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (auto& g : parameter_groups(weight_decay))
      groups.emplace_back(g.parameters, std::make_unique<torch::optim::AdamWOptions>(
                                            torch::optim::AdamWOptions(lr).weight_decay(g.weight_decay)));
    return std::make_unique<core::FusedAdamW>(std::move(groups), torch::optim::AdamWOptions(lr));
  }

  /// Activation checkpointing of every encoder and decoder block while training (off by
  /// default): gradients are unchanged, activations are recomputed in backward (genner/t5/recompute.hpp).
  void set_checkpointing(bool on) {
    t5->encoder->set_checkpointing(on);
    t5->decoder->set_checkpointing(on);
  }
  bool checkpointing() const { return t5->encoder->checkpointing(); }

  /// Keeps the weight of every frozen T5 projection (q, k, v, o, wi, wo) in `storage`: bf16, or
  /// int8 with a symmetric scale per output row, widened on the fly in forward and backward;
  /// trainable tensors, their gradients and AdamW state stay fp32. Returns the number of
  /// projections stored; an experiment with no frozen projection is refused for bf16 and int8.
  int64_t store_frozen(t5::WeightStorage storage) {
    if (storage == t5::WeightStorage::fp32) return 0;
    int64_t n = 0;
    for (const auto& m : t5->modules(/*include_self=*/false)) {
      auto* p = m->as<t5::ProjectionImpl>();
      if (!p || p->weight.requires_grad()) continue;
      p->store_frozen(storage);
      ++n;
    }
    GENNER_CHECK(n > 0, "frozen_precision ", t5::weight_storage_name(storage), ": ",
                 "this experiment trains every T5 projection, so there is no frozen weight to store; "
                 "frozen storage applies to parameter-efficient experiments (adapters, LoRA, soft prompt, embeddings)");
    return n;
  }

  /// Folds every LoRA factor into its projection (inference after LoRA tuning).
  void merge_lora() {
    for (const auto& m : t5->modules(/*include_self=*/false))
      if (auto* p = m->as<t5::ProjectionImpl>()) p->merge_lora();
  }

  t5::T5 t5{nullptr};
  torch::Tensor label_embeddings;  ///< [L, d] rows of the label tokens
  torch::Tensor soft_prompt;       ///< [P, d] (undefined without a prompt)
  torch::Tensor eos_embedding;     ///< [1, d] end-index scoring row (SeedCompat only)
  torch::nn::Sequential encoder_mlp{nullptr};

 private:
  /// encoder_mlp (Linear, Dropout, ReLU, Linear) with its two products on aligned rows, as T5's
  /// projections run them (t5::detail::aligned_product).
  torch::Tensor mlp_forward(const torch::Tensor& H) {
    auto linear = [this](size_t i, const torch::Tensor& x) {
      auto layer = encoder_mlp->ptr<torch::nn::LinearImpl>(i);
      return t5::detail::aligned_product(x, [&](const torch::Tensor& rows) { return layer->forward(rows); });
    };
    auto h = encoder_mlp->ptr<torch::nn::DropoutImpl>(1)->forward(linear(0, H));
    return linear(3, torch::relu(h));
  }

  /// Freezing is the spec's name predicate; frozen weights get requires_grad=false, so backward
  /// computes no gradient for them at all.
  void apply_freezing() {
    for (auto& p : named_parameters(true)) p.value().set_requires_grad(is_trainable(p.key()));
  }

  ExperimentSpec spec_;
  t5::T5Config config_;
  NerOptions options_;
  t5::T5Structure structure_;
  int64_t label_offset_ = 32100;
  torch::Tensor label_tokens_;  ///< [L] token id each type is fed as
  torch::Device embedding_device_{torch::kCPU}, encoder_device_{torch::kCPU}, head_device_{torch::kCPU};
};

/// The NER model of experiment E (an Experiment<...> alias of genner/model/policies.hpp).
template <class E>
class NerModelImpl : public NerModelCore {
 public:
  using experiment = E;
  using backbone = typename E::backbone;

  /// A freshly initialised model (tests, training from scratch).
  explicit NerModelImpl(NerOptions options = {})
      : NerModelCore(E::spec(), t5::resolve_config<backbone>(options.config), options) {}

  /// Wraps a T5 built with this experiment's structure (see from_pretrained).
  NerModelImpl(NerOptions options, t5::T5 built) : NerModelCore(E::spec(), built->config(), options, built) {}

  /// Builds the structure, then loads the Hugging Face checkpoint in `dir` into it.
  static std::shared_ptr<NerModelImpl> from_pretrained(const std::filesystem::path& dir, NerOptions options = {}) {
    std::optional<t5::T5Config> from_file = options.config;
    if (std::filesystem::exists(dir / "config.json")) from_file = t5::T5Config::from_file(dir / "config.json");
    const auto config = t5::resolve_config<backbone>(from_file, (dir / "config.json").string());
    const auto spec = E::spec();
    // Projections are frozen together (the backbone role); trained ones stay fp32, and the
    // constructor refuses a frozen storage for them.
    const auto storage = spec.trainable.backbone ? t5::WeightStorage::fp32 : options.frozen_storage;
    auto t5 = t5::load_pretrained<backbone>(dir, spec.structure(config, options.devices), nullptr, storage);
    options.config = config;
    return std::make_shared<NerModelImpl>(options, t5);
  }
};

/// TORCH_MODULE for a template: `NerModel<E> m(NerOptions{}.types(4));`.
template <class E>
class NerModel : public torch::nn::ModuleHolder<NerModelImpl<E>> {
 public:
  using torch::nn::ModuleHolder<NerModelImpl<E>>::ModuleHolder;
  using Impl = NerModelImpl<E>;
};

}  // namespace genner::model
