// genner/train/trainer.hpp: the training loop that ties data (genner/data),
// model (genner/model), search (genner/generate) and the training utilities of
// this folder together — AdamW over the model's parameter groups, linear
// warm-up/decay, clipping, random decoder truncation, periodic evaluation on
// dev with keep-best and early stopping, resumable checkpoints, a progress bar,
// a JSON-lines log and a training-curve image.
#pragma once

#include <torch/types.h>

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <sstream>
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/data/batching.hpp>
#include <genner/data/targets.hpp>
#include <genner/generate/pointer.hpp>
#include <genner/model/checkpoint.hpp>
#include <genner/model/ner_model.hpp>
#include <genner/model/precision.hpp>
#include <genner/train/checkpoint.hpp>
#include <genner/train/distributed.hpp>
#include <genner/train/log.hpp>
#include <genner/train/metric.hpp>
#include <genner/train/optim.hpp>
#include <genner/train/plot.hpp>
#include <genner/train/progress.hpp>
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
  int64_t patience = 0;    ///< evaluations without a better dev F1 before stopping; 0: never stop early
  bool resume = true;
  uint64_t seed = 42;
  /// Settings that shape the trajectory (JSON object), saved with every checkpoint; resuming with
  /// different values is refused (check_resume_settings). Null: not checked.
  nlohmann::json trajectory;
  size_t max_tokens = 4096;  ///< padded tokens per training batch
  size_t eval_batch = 32;
  std::filesystem::path output_dir = "runs/default";
  generate::PointerDecodeOptions decode;
  /// fp32, or bf16 mixed precision (autocast forward, fp32 weights, AdamW state and loss).
  model::Precision precision = model::Precision::fp32;
  MetricRules metric = MetricRules::pointer;  ///< rules of the dev F1 (train/metric.hpp)
  bool show_progress = true;
  /// Return after this many steps of this call, as a killed run would (tests of resume).
  int64_t interrupt_after = 0;
  /// Gradient accumulation: each rank cuts its share of a batch into this many micro-batches,
  /// run one after another; the optimizer steps (and ranks all-reduce) once per batch.
  int64_t accumulate = 1;
  /// Data-parallel group (train/distributed.hpp); null: this process alone. Rank 0 alone writes.
  dist::Group* group = nullptr;
};

/// Predictions and scores on one data set.
struct Evaluation {
  Scores scores;
  std::vector<std::vector<data::Entity>> predictions;
  std::vector<std::vector<int64_t>> generated;  ///< decoded target indices per sentence
  size_t invalid_entities = 0;  ///< generated entities dropped by the validity rules
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
  ProgressOptions bar_options;
  bar_options.label = "decode";
  if (!show_progress) bar_options.out = &silent;
  ProgressBar bar(std::max<int64_t>(1, static_cast<int64_t>(examples.size())), bar_options);
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Evaluation out;
  out.predictions.resize(examples.size());
  out.generated.resize(examples.size());
  auto& generated = out.generated;
  // Sentences sorted by length decode in tight batches; results go back to their own slots.
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return examples[a].src_ids.size() < examples[b].src_ids.size(); });
  for (size_t begin = 0; begin < order.size(); begin += batch_size) {
    const size_t end = std::min(order.size(), begin + batch_size);
    std::span<const size_t> idx(order.data() + begin, end - begin);
    auto batch = data::collate(examples, idx);
    std::vector<std::vector<int64_t>> ws, we;
    for (auto i : idx) {
      ws.push_back(examples[i].word_start);
      we.push_back(examples[i].word_end);
    }
    auto decoded = generate::decode_entities(model, batch.src_ids, batch.src_mask, ws, we, labels, decode);
    for (size_t k = 0; k < idx.size(); ++k) {
      out.invalid_entities += decoded.reports[k].invalid;
      out.predictions[idx[k]] = std::move(decoded.entities[k]);
      auto row = decoded.indices[static_cast<int64_t>(k)].contiguous();
      generated[idx[k]].assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    }
    bar.update(static_cast<int64_t>(end), std::nan(""), batch.src_mask.sum().item<int64_t>());
  }
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
  const auto mine = dist::shard_positions(examples.size(), static_cast<size_t>(group.rank()),
                                          static_cast<size_t>(group.size()));
  std::vector<data::Example> shard;
  for (auto i : mine) shard.push_back(examples[i]);
  auto local = evaluate(model, shard, labels, decode, batch_size, show_progress && group.is_main(), rules);
  nlohmann::json sent = {{"invalid", local.invalid_entities}, {"entities", nlohmann::json::array()},
                         {"generated", local.generated}};
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
    for (size_t k = 0; k < positions.size(); ++k) out.generated[positions[k]] = generated[k].get<std::vector<int64_t>>();
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
  std::filesystem::path best_model;  ///< trained tensors of the best dev evaluation
};

/// Trains `model` on `train` and selects on `dev` (see TrainerOptions). Files in output_dir:
/// `checkpoint/` (resumable state), `best.safetensors` (trained tensors of the best dev F1),
/// `log.jsonl` (one line per evaluation), `curve.png` (loss and dev F1 over steps).
class Trainer {
 public:
  Trainer(model::NerModelCore& model, const data::LabelSpace& labels, std::span<const data::Example> train,
          std::span<const data::Example> dev, TrainerOptions options)
      : model_(model), labels_(labels), train_(train), dev_(dev), options_(std::move(options)) {
    GENNER_CHECK(!train_.empty(), "Trainer: the training set is empty");
    GENNER_CHECK(options_.epochs > 0 || options_.max_steps > 0, "Trainer: expected epochs > 0 or max_steps > 0");
  }

  TrainResult fit() {
    namespace fs = std::filesystem;
    model::require_precision(options_.precision, model_.head_device(), /*training=*/true);
    fs::create_directories(options_.output_dir);
    torch::manual_seed(options_.seed);
    GENNER_CHECK(options_.accumulate >= 1, "Trainer: expected accumulate >= 1, found ", options_.accumulate);
    dist::Group single;
    dist::Group& group = options_.group ? *options_.group : single;
    const bool main_rank = group.is_main();
    if (!main_rank) options_.show_progress = false;  // rank 0 alone reports
    data::BatchSampler sampler(data::BatchSampler::lengths_of(train_), {options_.max_tokens, 1024, true}, options_.seed);
    const int64_t per_epoch = static_cast<int64_t>(sampler.batches_per_epoch());
    const int64_t total = options_.max_steps > 0 ? options_.max_steps : per_epoch * options_.epochs;
    const int64_t eval_every = options_.eval_every > 0 ? options_.eval_every : per_epoch;

    auto optimizer = model_.make_adamw(options_.lr, options_.weight_decay);
    LinearSchedule schedule(*optimizer, total, Warmup{options_.warmup, true});
    DecoderTruncation truncation(options_.truncate_prob, options_.seed + 1);
    const auto params = optimizer_params(*optimizer);
    TrainingState state{model_.trainable_parameters(), optimizer.get(), &schedule, nullptr, true};
    dist::GradientReducer reducer(group, params);

    TrainResult result;
    result.best_model = options_.output_dir / "best.safetensors";
    int64_t step = 0, since_best = 0;
    Series loss_curve, f1_curve;
    nlohmann::json points = nlohmann::json::array();  // [step, loss, f1 or null], kept in checkpoints
    const auto checkpoint_dir = options_.output_dir / "checkpoint";
    if (options_.resume && find_checkpoint(checkpoint_dir)) {
      check_resume_settings(checkpoint_settings(checkpoint_dir), options_.trajectory, checkpoint_dir.string());
      auto info = load_checkpoint(checkpoint_dir, state);
      step = info.step;
      sampler.restore({info.sampler.at("seed").get<uint64_t>(), info.sampler.at("epoch").get<uint64_t>(),
                       info.sampler.at("cursor").get<uint64_t>()});
      truncation.set_state(info.extra.at("truncation").get<std::string>());
      result.best_dev_f1 = info.extra.value("best_dev_f1", -1.0);
      result.best_step = info.extra.value("best_step", int64_t{-1});
      since_best = info.extra.value("since_best", int64_t{0});
      for (const auto& p : info.extra.value("curve", nlohmann::json::array())) add_point(loss_curve, f1_curve, points, p);
      result.resumed = true;
      JsonlLog::keep_until_step(options_.output_dir / "log.jsonl", step);
    }
    // Every rank starts from rank 0's weights (from a checkpoint, all ranks read the same one).
    reducer.broadcast_values(0);
    group.barrier("start of training");
    std::optional<JsonlLog> log;
    if (main_rank) log.emplace(options_.output_dir / "log.jsonl", /*truncate=*/!result.resumed);
    ProgressOptions bar_options;
    if (!options_.show_progress || !main_rank) bar_options.out = &null_stream_;
    ProgressBar bar(total, bar_options);
    if (step > 0) bar.update(step, std::nan(""), 0);

    model_.train();
    double loss_sum = 0.0;
    int64_t loss_count = 0;
    double last_loss = std::nan("");
    const int64_t first_step = step;
    while (step < total) {
      if (options_.interrupt_after > 0 && step - first_step >= options_.interrupt_after) {
        result.steps = step;
        return result;
      }
      const auto idx = sampler.next();
      // One draw per global batch, so every cut of it truncates alike (train/distributed.hpp).
      size_t longest = 0;
      for (auto i : idx) longest = std::max(longest, train_[i].target.size());
      const auto keep = truncation.draw(static_cast<int64_t>(longest));
      int64_t batch_tokens = 0;  // target tokens of the whole global batch: the loss's denominator
      for (auto i : idx) batch_tokens += target_tokens(train_[i], keep);
      optimizer->zero_grad();
      if (group.distributed()) torch::manual_seed(options_.seed + 1000003ull * static_cast<uint64_t>(step) +
                                                  static_cast<uint64_t>(group.rank()) + 1);
      const auto pieces = static_cast<size_t>(group.size() * options_.accumulate);
      double piece_loss_sum = 0.0;
      int64_t shown_tokens = 0;
      for (int64_t k = 0; k < options_.accumulate; ++k) {
        const auto part = static_cast<size_t>(k * group.size() + group.rank());
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
        piece_loss_sum += scaled.item<double>();
        shown_tokens += batch.src_mask.sum().item<int64_t>() + (target >= 0).sum().item<int64_t>();
      }
      reducer.all_reduce_gradients();
      if (options_.clip_value > 0) clip_grad_value(params, options_.clip_value);
      if (options_.clip_norm > 0) clip_grad_norm(params, options_.clip_norm);
      optimizer->step();
      schedule.step();
      ++step;
      const double loss = group.sum(piece_loss_sum, "loss all-reduce");
      GENNER_CHECK(std::isfinite(loss), "Trainer: the loss became ", loss, " at step ", step,
                   "; lower the learning rate or enable clipping");
      loss_sum += loss;
      ++loss_count;
      bar.update(step, loss, shown_tokens);

      if (step % eval_every == 0 || step == total) {
        last_loss = loss_sum / std::max<int64_t>(1, loss_count);
        loss_sum = 0.0;
        loss_count = 0;
        double f1 = std::nan("");
        nlohmann::json line = {{"step", step}, {"epoch", double(step) / double(per_epoch)}, {"train_loss", last_loss},
                               {"lr", optimizer->param_groups().front().options().get_lr()}};
        if (!dev_.empty()) {
          auto ev = evaluate(group, model_, dev_, labels_, options_.decode, options_.eval_batch,
                             options_.show_progress && main_rank, options_.metric);
          f1 = ev.scores.micro.f1();
          line["dev"] = ev.scores.to_json();
          line["dev_invalid_entities"] = ev.invalid_entities;
          line["dev_seconds"] = ev.seconds;
          if (f1 > result.best_dev_f1) {
            result.best_dev_f1 = f1;
            result.best_step = step;
            since_best = 0;
            if (main_rank) model::save_trained(model_, result.best_model);
          } else {
            ++since_best;
          }
          note("step " + std::to_string(step) + ": loss " + format_fixed(last_loss, 4) + ", dev F1 " +
                   format_fixed(100 * f1, 2) + " (best " + format_fixed(100 * result.best_dev_f1, 2) + " at step " +
                   std::to_string(result.best_step) + ")");
        } else {
          if (main_rank) model::save_trained(model_, result.best_model);
          result.best_step = step;
        }
        if (main_rank) log->write(line);
        const nlohmann::json point = {step, last_loss, std::isfinite(f1) ? nlohmann::json(f1) : nlohmann::json()};
        add_point(loss_curve, f1_curve, points, point);
        nlohmann::json extra = {{"truncation", truncation.state()}, {"best_dev_f1", result.best_dev_f1},
                                {"best_step", result.best_step}, {"since_best", since_best},
                                {"curve", points}};
        if (!options_.trajectory.is_null()) extra["trajectory"] = options_.trajectory;
        const auto s = sampler.state();
        if (main_rank) {
          save_checkpoint(checkpoint_dir, state, {{"seed", s.seed}, {"epoch", s.epoch}, {"cursor", s.cursor}}, extra);
          plot_training_curves(loss_curve, f1_curve, "training: loss and dev F1")
              .write_png(options_.output_dir / "curve.png");
        }
        // Other ranks read best.safetensors and the checkpoint only after rank 0 has written them.
        group.barrier("checkpoint");
        if (options_.patience > 0 && since_best >= options_.patience) {
          result.stopped_early = true;
          break;
        }
      }
    }
    bar.finish();
    result.steps = step;
    reduce_stats_ = reducer.stats();
    return result;
  }

  /// Gradient all-reduce traffic of the last fit() (zero in a single process).
  [[nodiscard]] const dist::ReduceStats& reduce_stats() const { return reduce_stats_; }

 private:
  /// Target tokens of one example that the loss counts, after truncation to `keep`.
  static int64_t target_tokens(const data::Example& e, const std::optional<int64_t>& keep) {
    const auto n = keep ? std::min<size_t>(e.target.size(), static_cast<size_t>(*keep)) : e.target.size();
    return std::count_if(e.target.begin(), e.target.begin() + static_cast<std::ptrdiff_t>(n),
                         [](int64_t t) { return t != data::kIgnoreIndex; });
  }

  /// A [step, loss, f1-or-null] point added to the two curves.
  static void add_point(Series& loss, Series& f1, nlohmann::json& points, const nlohmann::json& p) {
    points.push_back(p);
    loss.steps.push_back(p.at(0).get<double>());
    loss.values.push_back(p.at(1).get<double>());
    if (p.size() > 2 && p.at(2).is_number()) {
      f1.steps.push_back(p.at(0).get<double>());
      f1.values.push_back(p.at(2).get<double>());
    }
  }

  /// A line of its own under the progress bar.
  void note(const std::string& text) {
    if (!options_.show_progress) return;
    std::cerr << (::isatty(STDERR_FILENO) ? "\r\x1b[K" : "") << text << "\n" << std::flush;
  }

  static std::string format_fixed(double v, int digits) {
    if (!std::isfinite(v)) return "n/a";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
  }

  model::NerModelCore& model_;
  const data::LabelSpace& labels_;
  std::span<const data::Example> train_, dev_;
  TrainerOptions options_;
  std::ostringstream null_stream_;
  dist::ReduceStats reduce_stats_;
};

}  // namespace genner::train
