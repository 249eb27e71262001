// genner/train/trainer.hpp: the training loop that ties data (genner/data),
// model (genner/model), search (genner/generate) and the training utilities of
// this folder together — AdamW over the model's parameter groups, linear
// warm-up/decay, clipping, random decoder truncation and periodic evaluation on
// dev. What surrounds the loop is callbacks (train/callbacks.hpp): keeping the best
// weights, resumable checkpoints, early stopping, the JSON-lines log, the progress bar
// and the training curve.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <sstream>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/data/batching.hpp>
#include <genner/data/targets.hpp>
#include <genner/generate/pointer.hpp>
#include <genner/model/checkpoint.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/model/precision.hpp>
#include <genner/report/progress.hpp>
#include <genner/train/callbacks.hpp>
#include <genner/train/checkpoint.hpp>
#include <genner/train/distributed.hpp>
#include <genner/train/log.hpp>
#include <genner/train/metric.hpp>
#include <genner/train/optim.hpp>
#include <genner/train/schedule.hpp>

namespace genner::train {

/// Settings of a training run (the run-time half of an experiment; see configs/).
struct TrainerOptions {
  int64_t epochs = 30;
  int64_t max_steps = 0;  ///< 0: epochs decide; otherwise stop after this many steps
  double lr = 1e-4;
  double warmup = 0.01;  ///< fraction of all steps
  double weight_decay = 0.01;
  double clip_value = 0.0;  ///< 0: off
  double clip_norm = 0.0;   ///< 0: off
  double truncate_prob = 0.0;
  int64_t eval_every = 0;  ///< steps; 0: once per epoch
  bool resume = true;
  uint64_t seed = 42;
  /// Settings that shape the trajectory (JSON object), saved with every checkpoint; resuming with
  /// different values is refused (check_resume_settings). Null: not checked.
  nlohmann::json trajectory;
  size_t max_tokens = 4096;  ///< padded tokens per training batch
  size_t batch_size = 0;     ///< sentences per training batch (optimizer step); 0: max_tokens alone decides
  size_t eval_batch = 32;
  std::filesystem::path output_dir = "runs/default";
  generate::PointerDecodeOptions decode;
  /// fp32, or bf16 mixed precision (autocast forward, fp32 weights, AdamW state and loss).
  model::Precision precision = model::Precision::fp32;
  MetricRules metric = MetricRules::pointer;  ///< rules of the dev F1 (train/metric.hpp)
  /// Draw the dev decoding's progress bar on stderr (rank 0). The training bar is a callback
  /// (ProgressCallback).
  bool show_progress = true;
  /// Told about the start, every step, every evaluation and the end (rank 0 only), and asked
  /// whether to stop; see train/callbacks.hpp. By default the best weights (KeepBestWeights:
  /// best.safetensors) and the resumable checkpoint (Checkpointing: checkpoint/); the log
  /// (JsonlLogCallback), early stopping (EarlyStopping), the progress bar and curve.png are
  /// callbacks too, and standard_callbacks() (train/standard_callbacks.hpp) gives them all. Empty:
  /// the run writes nothing.
  std::vector<std::shared_ptr<TrainerCallback>> callbacks = {std::make_shared<KeepBestWeights>(),
                                                             std::make_shared<Checkpointing>()};
  /// Return after this many steps of this call, as a killed run would (tests of resume).
  int64_t interrupt_after = 0;
  /// Gradient accumulation: each rank cuts its share of a batch into this many micro-batches,
  /// run one after another; the optimizer steps (and ranks all-reduce) once per batch.
  int64_t accumulate = 1;
  /// Data-parallel group (train/distributed.hpp); null: this process alone. Rank 0 alone writes.
  dist::Group* group = nullptr;
};

/// Calls `f(key, member)` for each option that a command-line setting of the same name sets
/// (train::RunConfig): the one list the driver copies them by and writes them to JSON from.
template <typename Options, typename F>
void for_each_setting(Options& o, F&& f) {
  f("epochs", o.epochs);
  f("max_steps", o.max_steps);
  f("lr", o.lr);
  f("warmup", o.warmup);
  f("weight_decay", o.weight_decay);
  f("clip_value", o.clip_value);
  f("clip_norm", o.clip_norm);
  f("truncate_prob", o.truncate_prob);
  f("eval_every", o.eval_every);
  f("resume", o.resume);
  f("seed", o.seed);
  f("batch_size", o.batch_size);
  f("accumulate", o.accumulate);
}

/// How a run's training batches are cut (the sampler fit() draws from).
[[nodiscard]] inline data::SamplerOptions sampler_options(const TrainerOptions& o) {
  return {o.max_tokens, 1024, true, o.batch_size};
}

/// Optimizer steps per epoch and in all of a run with `o` over training examples of these lengths
/// (source + target; data::BatchSampler::lengths_of): what fit() will take.
struct StepPlan {
  int64_t per_epoch = 0, total = 0;
};
[[nodiscard]] inline StepPlan plan_steps(std::vector<std::size_t> lengths, const TrainerOptions& o) {
  const data::BatchSampler sampler(std::move(lengths), sampler_options(o), o.seed);
  const auto per_epoch = static_cast<int64_t>(sampler.batches_per_epoch());
  return {per_epoch, o.max_steps > 0 ? o.max_steps : per_epoch * o.epochs};
}

/// Predictions and scores on one data set.
struct Evaluation {
  Scores scores;
  std::vector<std::vector<data::Entity>> predictions;
  std::vector<std::vector<int64_t>> generated;  ///< decoded target indices per sentence
  size_t invalid_entities = 0;                  ///< generated entities dropped by the validity rules
  double seconds = 0.0;
};

namespace detail {
/// Scores `out` (predictions and generated indices) against `examples` by `rules`.
inline void score_evaluation(Evaluation& out, std::span<const data::Example> examples, const data::LabelSpace& labels,
                             const generate::PointerDecodeOptions& decode, MetricRules rules) {
  if (rules == MetricRules::pointer) {
    PointerMetric metric(labels.types, decode.target);
    for (size_t i = 0; i < examples.size(); ++i) metric.add(examples[i].target, out.generated[i]);
    out.scores = metric.scores();
  } else {
    EntityMetric metric;
    for (size_t i = 0; i < examples.size(); ++i) metric.add(examples[i].gold, out.predictions[i]);
    out.scores = metric.scores();
  }
}
}  // namespace detail

/// Decodes every example (no gradients) and scores the predictions against the gold targets
/// (`pointer` rules) or the gold entities (`word` rules); see train/metric.hpp.
inline Evaluation evaluate(model::NerModelCore& model, std::span<const data::Example> examples,
                           const data::LabelSpace& labels, const generate::PointerDecodeOptions& decode,
                           size_t batch_size = 32, bool show_progress = false,
                           MetricRules rules = MetricRules::pointer) {
  const auto t0 = std::chrono::steady_clock::now();
  std::ostringstream silent;
  report::ProgressOptions bar_options;
  bar_options.label = "decode";
  if (!show_progress) bar_options.out = &silent;
  report::ProgressBar bar(std::max<int64_t>(1, static_cast<int64_t>(examples.size())), bar_options);
  const bool was_training = model.is_training();
  model.eval();
  Evaluation out;
  out.predictions.resize(examples.size());
  out.generated.resize(examples.size());
  int64_t done = 0;
  const auto keep = [&](std::span<const size_t> positions, const data::Batch& batch,
                        generate::PointerDecoded& decoded) {
    for (size_t k = 0; k < positions.size(); ++k) {
      out.invalid_entities += decoded.reports[k].invalid;
      out.predictions[positions[k]] = std::move(decoded.entities[k]);
      auto row = decoded.indices[static_cast<int64_t>(k)].contiguous();
      out.generated[positions[k]].assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    }
    done += static_cast<int64_t>(positions.size());
    bar.update(done, std::nan(""), batch.src_mask.sum().item<int64_t>());
  };
  generate::decode_examples(model, examples, labels, decode, batch_size, keep);
  bar.finish();
  detail::score_evaluation(out, examples, labels, decode, rules);
  if (was_training) model.train();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

/// evaluate() over a data-parallel group: each rank decodes every world_size-th example, the
/// predictions are gathered, and every rank scores the whole set once.
inline Evaluation evaluate(dist::Group& group, model::NerModelCore& model, std::span<const data::Example> examples,
                           const data::LabelSpace& labels, const generate::PointerDecodeOptions& decode,
                           size_t batch_size = 32, bool show_progress = false,
                           MetricRules rules = MetricRules::pointer) {
  if (!group.distributed()) return evaluate(model, examples, labels, decode, batch_size, show_progress, rules);
  const auto t0 = std::chrono::steady_clock::now();
  const auto mine =
      dist::shard_positions(examples.size(), static_cast<size_t>(group.rank()), static_cast<size_t>(group.size()));
  std::vector<data::Example> shard;
  for (auto i : mine) shard.push_back(examples[i]);
  auto local = evaluate(model, shard, labels, decode, batch_size, show_progress && group.is_main(), rules);
  nlohmann::json sent = {
      {"invalid", local.invalid_entities}, {"entities", nlohmann::json::array()}, {"generated", local.generated}};
  for (const auto& sentence : local.predictions) {
    nlohmann::json ents = nlohmann::json::array();
    for (const auto& e : sentence) ents.push_back({e.type, e.fragments});
    sent["entities"].push_back(std::move(ents));
  }
  const auto all = group.all_gather(sent.dump(), "gathering dev/test predictions");
  Evaluation out;
  out.predictions.resize(examples.size());
  out.generated.resize(examples.size());
  for (size_t r = 0; r < all.size(); ++r) {
    const auto j = nlohmann::json::parse(all[r]);
    const auto positions = dist::shard_positions(examples.size(), r, all.size());
    const auto& sentences = j.at("entities");
    GENNER_CHECK(sentences.size() == positions.size(), group.who(), ": rank ", r, " sent ", sentences.size(),
                 " predictions, expected ", positions.size());
    out.invalid_entities += j.at("invalid").get<size_t>();
    const auto& generated = j.at("generated");
    GENNER_CHECK(generated.size() == positions.size(), group.who(), ": rank ", r, " sent ", generated.size(),
                 " decoded sequences, expected ", positions.size());
    for (size_t k = 0; k < positions.size(); ++k)
      out.generated[positions[k]] = generated[k].get<std::vector<int64_t>>();
    for (size_t k = 0; k < positions.size(); ++k)
      for (const auto& e : sentences[k])
        out.predictions[positions[k]].push_back(
            {e.at(0).get<std::string>(), e.at(1).get<std::vector<std::pair<int, int>>>()});
  }
  detail::score_evaluation(out, examples, labels, decode, rules);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

/// What a finished run reports.
struct TrainResult {
  int64_t steps = 0;
  int64_t best_step = -1;
  double best_dev_f1 = -1.0;
  bool stopped_early = false;
  bool resumed = false;
  std::filesystem::path best_model;  ///< trained tensors of the best dev evaluation (KeepBestWeights'; else empty)
};

/// Trains `model` on `train` and selects on `dev` (see TrainerOptions). The callbacks write the
/// files in output_dir: with the default ones `checkpoint/` (resumable state, the callbacks' states
/// included) and `best.safetensors` (trained tensors of the best dev F1); JsonlLogCallback adds
/// `log.jsonl`, PlotCallback `curve.png`.
class Trainer {
 public:
  Trainer(model::NerModelCore& model, const data::LabelSpace& labels, std::span<const data::Example> train,
          std::span<const data::Example> dev, TrainerOptions options)
      : model_(model), labels_(labels), train_(train), dev_(dev), options_(std::move(options)) {
    GENNER_CHECK(!train_.empty(), "Trainer: the training set is empty");
    GENNER_CHECK(options_.epochs > 0 || options_.max_steps > 0, "Trainer: expected epochs > 0 or max_steps > 0");
    std::vector<std::string> stateful;
    for (size_t i = 0; i < options_.callbacks.size(); ++i) {
      GENNER_CHECK(options_.callbacks[i] != nullptr, "Trainer: expected callback ", i,
                   " to be set, found a null pointer");
      if (options_.callbacks[i]->state().is_null()) continue;
      const auto name = callback_name(*options_.callbacks[i]);
      GENNER_CHECK(std::find(stateful.begin(), stateful.end(), name) == stateful.end(), "Trainer: two callbacks named '",
                   name, "' keep state; their checkpointed states would collide (describe() names them)");
      stateful.push_back(name);
    }
  }

  TrainResult fit() {
    model::require_precision(options_.precision, model_.head_device(), /*training=*/true);
    std::filesystem::create_directories(options_.output_dir);
    torch::manual_seed(options_.seed);
    GENNER_CHECK(options_.accumulate >= 1, "Trainer: expected accumulate >= 1, found ", options_.accumulate);
    dist::Group single;
    dist::Group& group = options_.group ? *options_.group : single;
    if (!group.is_main()) options_.show_progress = false;  // rank 0 alone reports
    Run run(model_, train_, options_, group);
    if (options_.resume && find_checkpoint(run.checkpoint_dir)) resume(run);
    // Every rank starts from rank 0's weights (from a checkpoint, all ranks read the same one).
    run.reducer.broadcast_values(0);
    group.barrier("start of training");
    notify(run, TrainingStart{run.step, run.total, run.per_epoch, run.result.resumed, options_.output_dir, run.curve});
    model_.train();
    const int64_t first_step = run.step;
    while (run.step < run.total) {
      if (options_.interrupt_after > 0 && run.step - first_step >= options_.interrupt_after) return finish(run, true);
      train_step(run);
      bool stop = stop_requested(run);
      if (stop || run.step % run.eval_every == 0 || run.step == run.total) {
        evaluate_and_checkpoint(run);
        stop = stop || stop_requested(run);
      }
      if (stop) {
        run.result.stopped_early = run.step < run.total;
        break;
      }
    }
    return finish(run, false);
  }

  /// Gradient all-reduce traffic of the last fit() (zero in a single process).
  [[nodiscard]] const dist::ReduceStats& reduce_stats() const { return reduce_stats_; }

 private:
  /// What one fit() works with. The members are built in declaration order, which is the order
  /// the random streams and the optimizer depend on.
  struct Run {
    Run(model::NerModelCore& model, std::span<const data::Example> train, const TrainerOptions& o, dist::Group& g)
        : group(g),
          main_rank(g.is_main()),
          sampler(data::BatchSampler::lengths_of(train), sampler_options(o), o.seed),
          per_epoch(static_cast<int64_t>(sampler.batches_per_epoch())),
          total(o.max_steps > 0 ? o.max_steps : per_epoch * o.epochs),
          eval_every(o.eval_every > 0 ? o.eval_every : per_epoch),
          optimizer(model.make_adamw(o.lr, o.weight_decay)),
          schedule(*optimizer, total, Warmup{o.warmup, true}),
          truncation(o.truncate_prob, o.seed + 1),
          params(optimizer_params(*optimizer)),
          state{model.trainable_parameters(), optimizer.get(), &schedule, nullptr, true},
          reducer(g, params),
          checkpoint_dir(o.output_dir / "checkpoint") {
      for (const auto& callback : o.callbacks)  // every rank knows where rank 0 keeps them
        if (const auto* keep = dynamic_cast<const KeepBestWeights*>(callback.get()))
          result.best_model = o.output_dir / keep->file();
    }

    dist::Group& group;
    bool main_rank;
    data::BatchSampler sampler;
    int64_t per_epoch, total, eval_every;
    std::unique_ptr<torch::optim::AdamW> optimizer;
    LinearSchedule schedule;
    DecoderTruncation truncation;
    std::vector<at::Tensor> params;
    TrainingState state;
    dist::GradientReducer reducer;
    std::filesystem::path checkpoint_dir;
    TrainResult result;
    int64_t step = 0;
    std::vector<CurvePoint> curve;
    nlohmann::json points = nlohmann::json::array();  // the curve as checkpoints keep it
    double loss_sum = 0.0;  // training loss since the last evaluation
    int64_t loss_count = 0;
  };

  /// Restores the checkpoint in run.checkpoint_dir (its settings must match options_.trajectory).
  void resume(Run& run) {
    check_resume_settings(checkpoint_settings(run.checkpoint_dir), options_.trajectory, run.checkpoint_dir.string());
    auto info = load_checkpoint(run.checkpoint_dir, run.state);
    run.step = info.step;
    run.sampler.restore({info.sampler.at("seed").get<uint64_t>(), info.sampler.at("epoch").get<uint64_t>(),
                         info.sampler.at("cursor").get<uint64_t>()});
    run.truncation.set_state(info.extra.at("truncation").get<std::string>());
    run.result.best_dev_f1 = info.extra.value("best_dev_f1", -1.0);
    run.result.best_step = info.extra.value("best_step", int64_t{-1});
    for (const auto& p : info.extra.value("curve", nlohmann::json::array())) {
      run.curve.push_back(CurvePoint::from_json(p));
      run.points.push_back(p);
    }
    const auto states = info.extra.value("callbacks", nlohmann::json::object());
    for (const auto& callback : options_.callbacks)
      if (const auto name = callback_name(*callback); states.contains(name)) callback->restore(states.at(name));
    run.result.resumed = true;
  }

  /// One optimizer step over the next global batch: gradients of every micro-batch of this
  /// rank, all-reduced across ranks, clipped, applied; the schedule advances.
  void train_step(Run& run) {
    const auto idx = run.sampler.next();
    // One draw per global batch, so every cut of it truncates alike (train/distributed.hpp).
    size_t longest = 0;
    for (auto i : idx) longest = std::max(longest, train_[i].target.size());
    const auto keep = run.truncation.draw(static_cast<int64_t>(longest));
    // Gradients start undefined rather than zeroed: backward then hands each tensor its first
    // gradient instead of adding it to zeros (one pass less over every trainable tensor, twice).
    for (auto& p : run.params) p.mutable_grad().reset();
    if (run.group.distributed())
      torch::manual_seed(options_.seed + 1000003ull * static_cast<uint64_t>(run.step) +
                         static_cast<uint64_t>(run.group.rank()) + 1);
    const auto [piece_loss_sum, shown_tokens] = accumulate_gradients(run, idx, keep);
    run.reducer.all_reduce_gradients();
    if (options_.clip_value > 0) clip_grad_value(run.params, options_.clip_value);
    if (options_.clip_norm > 0) clip_grad_norm(run.params, options_.clip_norm);
    run.optimizer->step();
    run.schedule.step();
    ++run.step;
    const double loss = run.group.sum(piece_loss_sum, "loss all-reduce");
    GENNER_CHECK(std::isfinite(loss), "Trainer: the loss became ", loss, " at step ", run.step,
                 "; lower the learning rate or enable clipping");
    run.loss_sum += loss;
    ++run.loss_count;
    notify(run, TrainingStep{run.step, run.total, loss, current_lr(run), shown_tokens});
  }

  /// Forward and backward over this rank's micro-batches of the global batch `idx`, each loss
  /// scaled to its share of the global batch's target tokens. Returns (sum of the scaled losses,
  /// source and target tokens fed).
  std::pair<double, int64_t> accumulate_gradients(Run& run, const std::vector<size_t>& idx,
                                                  const std::optional<int64_t>& keep) {
    int64_t batch_tokens = 0;  // target tokens of the whole global batch: the loss's denominator
    for (auto i : idx) batch_tokens += target_tokens(train_[i], keep);
    const auto pieces = static_cast<size_t>(run.group.size() * options_.accumulate);
    double loss_sum = 0.0;
    int64_t shown_tokens = 0;
    for (int64_t k = 0; k < options_.accumulate; ++k) {
      const auto part = static_cast<size_t>(k * run.group.size() + run.group.rank());
      std::vector<size_t> piece;
      for (auto p : dist::shard_positions(idx.size(), part, pieces)) piece.push_back(idx[p]);
      if (piece.empty()) continue;  // fewer examples than pieces: this cut contributes nothing
      auto batch = data::collate(train_, piece);
      auto dec_in = batch.decoder_input_ids, target = batch.target;
      if (keep && *keep < target.size(1)) {
        dec_in = dec_in.narrow(1, 0, *keep);
        target = target.narrow(1, 0, *keep);
      }
      model::NerOutput out;
      {
        model::Autocast autocast(options_.precision, model_.head_device());
        out = model_.forward(batch.src_ids, batch.src_mask, dec_in, target);
      }
      int64_t tokens = 0;
      for (auto i : piece) tokens += target_tokens(train_[i], keep);
      // Mean over this piece's tokens -> share of the mean over the global batch's tokens.
      auto scaled = tokens == batch_tokens ? out.loss : out.loss * (double(tokens) / double(batch_tokens));
      scaled.backward();
      loss_sum += scaled.item<double>();
      shown_tokens += batch.src_mask.sum().item<int64_t>() + (target >= 0).sum().item<int64_t>();
    }
    return {loss_sum, shown_tokens};
  }

  /// Evaluates on dev (updating the best score), tells the callbacks (which may write the weights),
  /// then writes the checkpoint if one of them asked (their states included).
  void evaluate_and_checkpoint(Run& run) {
    const double train_loss = run.loss_sum / std::max<int64_t>(1, run.loss_count);
    run.loss_sum = 0.0;
    run.loss_count = 0;
    nlohmann::json line = {{"step", run.step},
                           {"epoch", double(run.step) / double(run.per_epoch)},
                           {"kind", "eval"},
                           {"train_loss", train_loss},
                           {"lr", current_lr(run)}};
    std::optional<double> f1;
    if (!dev_.empty()) {
      f1 = evaluate_on_dev(run, line);
    } else {
      run.result.best_step = run.step;  // nothing to select on: the latest weights are the best
    }
    const CurvePoint point{run.step, train_loss, f1 && std::isfinite(*f1) ? f1 : std::nullopt};
    run.curve.push_back(point);
    run.points.push_back(point.to_json());
    bool checkpoint = false;
    TrainingEvaluation event{run.step, run.total, double(run.step) / double(run.per_epoch), point, f1,
                             run.result.best_dev_f1, run.result.best_step, current_lr(run), line,
                             options_.output_dir,
                             [this](const std::filesystem::path& file) { model::save_trained(model_, file); },
                             [&checkpoint] { checkpoint = true; }};
    notify(run, event);  // rank 0 only: the files are rank 0's to write
    if (checkpoint) save_training_state(run);
    // Other ranks read best.safetensors and the checkpoint only after rank 0 has written them.
    run.group.barrier("checkpoint");
  }

  /// Decodes and scores dev (all ranks), records the scores in `line`, updates the best score and
  /// returns the micro F1.
  double evaluate_on_dev(Run& run, nlohmann::json& line) {
    auto ev = evaluate(run.group, model_, dev_, labels_, options_.decode, options_.eval_batch,
                       options_.show_progress && run.main_rank, options_.metric);
    const double f1 = ev.scores.micro.f1();
    line["dev"] = ev.scores.to_json();
    line["dev_invalid_entities"] = ev.invalid_entities;
    line["dev_seconds"] = ev.seconds;
    if (f1 > run.result.best_dev_f1) {
      run.result.best_dev_f1 = f1;
      run.result.best_step = run.step;
    }
    return f1;
  }

  /// Rank 0 writes the resumable checkpoint: weights, optimizer, schedule, RNGs, sampler, the
  /// truncation stream, the best so far, the curve and the callbacks' states.
  void save_training_state(Run& run) {
    nlohmann::json states = nlohmann::json::object();
    for (const auto& callback : options_.callbacks)
      if (auto state = callback->state(); !state.is_null()) states[callback_name(*callback)] = std::move(state);
    nlohmann::json extra = {{"truncation", run.truncation.state()},
                            {"best_dev_f1", run.result.best_dev_f1},
                            {"best_step", run.result.best_step},
                            {"curve", run.points},
                            {"callbacks", std::move(states)}};
    if (!options_.trajectory.is_null()) extra["trajectory"] = options_.trajectory;
    const auto s = run.sampler.state();
    if (run.main_rank)
      save_checkpoint(run.checkpoint_dir, run.state, {{"seed", s.seed}, {"epoch", s.epoch}, {"cursor", s.cursor}},
                      extra);
  }

  TrainResult finish(Run& run, bool interrupted) {
    run.result.steps = run.step;
    if (!interrupted) reduce_stats_ = run.reducer.stats();
    notify(run, TrainingEnd{run.step, interrupted, run.result.stopped_early, run.result.best_dev_f1,
                            run.result.best_step, options_.output_dir});
    return run.result;
  }

  /// Calls `event`'s hook of every callback, on rank 0 only.
  template <typename Event>
  void notify(const Run& run, const Event& event) {
    if (!run.main_rank) return;
    for (const auto& callback : options_.callbacks) {
      if constexpr (std::is_same_v<Event, TrainingStart>)
        callback->on_start(event);
      else if constexpr (std::is_same_v<Event, TrainingStep>)
        callback->on_step(event);
      else if constexpr (std::is_same_v<Event, TrainingEvaluation>)
        callback->on_evaluation(event);
      else
        callback->on_end(event);
    }
  }

  /// Whether a callback asks to stop (rank 0 asks them; every rank gets the answer).
  bool stop_requested(Run& run) {
    bool stop = false;
    if (run.main_rank)
      for (const auto& callback : options_.callbacks) stop = stop || callback->stop_training();
    if (!run.group.distributed()) return stop;
    return run.group.sum(stop ? 1.0 : 0.0, "stop decision") > 0.0;
  }

  static std::string callback_name(const TrainerCallback& callback) {
    const auto d = callback.describe();
    return d.is_object() && d.contains("name") && d.at("name").is_string() ? d.at("name").get<std::string>()
                                                                             : std::string("callback");
  }

  static double current_lr(const Run& run) { return run.optimizer->param_groups().front().options().get_lr(); }

  /// Target tokens of one example that the loss counts, after truncation to `keep`.
  static int64_t target_tokens(const data::Example& e, const std::optional<int64_t>& keep) {
    const auto n = keep ? std::min<size_t>(e.target.size(), static_cast<size_t>(*keep)) : e.target.size();
    return std::count_if(e.target.begin(), e.target.begin() + static_cast<std::ptrdiff_t>(n),
                         [](int64_t t) { return t != data::kIgnoreIndex; });
  }

  model::NerModelCore& model_;
  const data::LabelSpace& labels_;
  std::span<const data::Example> train_, dev_;
  TrainerOptions options_;
  dist::ReduceStats reduce_stats_;
};

}  // namespace genner::train
