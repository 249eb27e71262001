// genner/train/checkpoint.hpp: training checkpoints that resume bit for bit — trainable tensors,
// AdamW state, schedule step, the caller's sampler position (opaque JSON), and the random
// generators (a std::mt19937_64 and torch's default CPU generator) — in one folder that is
// replaced atomically, so a crash (kill -9) at any moment leaves the previous one loadable.
//
// Folder layout: tensors.safetensors (trainable tensors by name), optimizer.safetensors
// ("<name>.exp_avg", "<name>.exp_avg_sq", "<name>.max_exp_avg_sq", "rng.torch_cpu") and
// state.json (steps, sampler, generator states, extra), written last.
// Bit-identical resume also needs the same thread settings (OMP_NUM_THREADS): kernels may sum in
// a different order with another thread count.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/string_utils.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <genner/core/error.hpp>
#include <genner/core/json.hpp>
#include <genner/io/json_file.hpp>
#include <genner/io/atomic_file.hpp>
#include <genner/io/safetensors.hpp>
#include <genner/train/schedule.hpp>

namespace genner::train {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// What a checkpoint gives back besides the state it restores in place.
struct ResumeInfo {
  std::filesystem::path folder;  ///< the folder actually read (the fallback copy after a crash)
  int64_t step = 0;              ///< schedule step at save time
  nlohmann::json sampler;        ///< the caller's sampler position, as passed to save
  nlohmann::json extra;          ///< anything else the caller saved (metrics, best F1, ...)
};

/// References to everything a checkpoint saves and restores. `rng` and `torch_rng` are optional.
struct TrainingState {
  NamedTensors tensors;  ///< trainable tensors by name (must cover every optimizer parameter)
  torch::optim::AdamW* optimizer = nullptr;
  LinearSchedule* schedule = nullptr;
  std::mt19937_64* rng = nullptr;
  bool torch_rng = true;  ///< save/restore torch's default CPU generator (dropout, randperm)
};

namespace detail {

inline void fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);  // for power loss; a killed process needs only the renames
  ::close(fd);
}

inline std::string param_key(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

inline std::filesystem::path sibling(const std::filesystem::path& dir, const std::string& suffix) {
  auto clean = dir;
  if (!clean.has_filename()) clean = clean.parent_path();
  return clean.string() + suffix;
}

inline bool checkpoint_complete(const std::filesystem::path& dir) {
  std::ifstream in(dir / "state.json");
  if (!in.good()) return false;
  try {
    nlohmann::json j;
    in >> j;
    return j.value("format", "") == "genner-train-checkpoint" && std::filesystem::exists(dir / "tensors.safetensors") &&
           std::filesystem::exists(dir / "optimizer.safetensors");
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

/// Removes the half-written folders that killed runs left beside `tmp`, the folder a save writes
/// into (one writer per checkpoint folder is assumed).
inline void remove_stale_temporaries(const std::filesystem::path& tmp) {
  namespace fs = std::filesystem;
  const std::string stale_prefix = tmp.filename().string().substr(0, tmp.filename().string().rfind('-') + 1);
  const fs::path parent = tmp.has_parent_path() ? tmp.parent_path() : fs::path(".");
  if (fs::exists(parent))
    for (const auto& e : fs::directory_iterator(parent))
      if (e.path().filename().string().rfind(stale_prefix, 0) == 0) fs::remove_all(e.path());
}

/// Collects the AdamW state of every optimizer parameter that has stepped, under the name `name_of`
/// gives its key (one of `named` tensors to save): its moments into `optim` ("<name>.exp_avg",
/// "<name>.exp_avg_sq", "<name>.max_exp_avg_sq") and its step count into `steps`. Returns the
/// learning rate of each param group.
inline nlohmann::json collect_optimizer_state(const TrainingState& state,
                                              const std::map<std::string, std::string>& name_of, std::size_t named,
                                              std::map<std::string, at::Tensor>& optim, nlohmann::json& steps) {
  nlohmann::json lrs = nlohmann::json::array();
  for (const auto& group : state.optimizer->param_groups()) {
    lrs.push_back(group.options().get_lr());
    for (const auto& p : group.params()) {
      const auto key = param_key(p);
      auto name = name_of.find(key);
      GENNER_CHECK(name != name_of.end(), "save_checkpoint: the optimizer holds a parameter of shape ", p.sizes(),
                   " that is not among the ", named, " named tensors to save");
      auto it = state.optimizer->state().find(key);
      if (it == state.optimizer->state().end()) continue;  // never stepped
      const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
      steps[name->second] = s.step();
      optim[name->second + ".exp_avg"] = s.exp_avg();
      optim[name->second + ".exp_avg_sq"] = s.exp_avg_sq();
      if (s.max_exp_avg_sq().defined()) optim[name->second + ".max_exp_avg_sq"] = s.max_exp_avg_sq();
    }
  }
  return lrs;
}

/// The generator states a checkpoint saves: the std::mt19937_64's as text (returned, under
/// "mt19937_64"), torch's default CPU generator's into `optim` ("rng.torch_cpu").
inline nlohmann::json collect_generator_states(const TrainingState& state, std::map<std::string, at::Tensor>& optim) {
  nlohmann::json rng = nlohmann::json::object();
  if (state.rng) {
    std::ostringstream text;
    text << *state.rng;
    rng["mt19937_64"] = text.str();
  }
  if (state.torch_rng) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    optim["rng.torch_cpu"] = gen.get_state();
  }
  return rng;
}

/// Puts the checkpoint written in `tmp` in place as `dir`: one renameat2(RENAME_EXCHANGE) when `dir`
/// exists, else a rename; on file systems without RENAME_EXCHANGE the old one waits aside as `prev`
/// until the new one is in. Then syncs the parent folder.
inline void swap_into_place(const std::filesystem::path& tmp, const std::filesystem::path& dir,
                            const std::filesystem::path& prev) {
  namespace fs = std::filesystem;
  if (!fs::exists(dir)) {
    fs::rename(tmp, dir);
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp);  // now holds the previous checkpoint
  } else {
    // File systems without RENAME_EXCHANGE: keep the old one aside as dir.prev until the new one is in.
    GENNER_CHECK(errno == EINVAL || errno == ENOSYS || errno == ENOTSUP, "save_checkpoint: cannot swap ", tmp.string(),
                 " into ", dir.string(), " (", std::strerror(errno), ")");
    fs::remove_all(prev);
    fs::rename(dir, prev);
    fs::rename(tmp, dir);
    fs::remove_all(prev);
  }
  fsync_path(dir.has_parent_path() ? dir.parent_path() : fs::path("."), true);
}

/// Refuses a checkpoint's state.json (`meta`, read from `where`) that lacks a field a checkpoint
/// needs or holds one of the wrong kind, or whose step lies beyond the run's schedule.
inline void check_checkpoint_meta(const nlohmann::json& meta, const std::string& where, const TrainingState& state) {
  auto expect = [&](bool ok, const char* key, const char* what) {
    GENNER_CHECK(ok, where, ": '", key, "': expected ", what, ", found ",
                 meta.is_object() && meta.contains(key) ? json_excerpt(meta[key]) : std::string("none"));
  };
  GENNER_CHECK(meta.is_object(), where, ": expected a JSON object, found ", json_excerpt(meta));
  expect(meta.contains("step") && meta["step"].is_number_unsigned() && meta["step"].get<uint64_t>() <= INT64_MAX,
         "step", "a non-negative integer");
  expect(meta.contains("lrs") && meta["lrs"].is_array(), "lrs", "an array of learning rates");
  expect(meta.contains("optimizer_steps") && meta["optimizer_steps"].is_object(), "optimizer_steps",
         "an object of per-tensor step counts");
  for (const auto& [name, n] : meta["optimizer_steps"].items())
    GENNER_CHECK(n.is_number_unsigned() && n.get<uint64_t>() <= meta["step"].get<uint64_t>(), where,
                 ": 'optimizer_steps': '", name, "': expected a step count of at most 'step' (",
                 meta["step"].get<uint64_t>(), "), found ", json_excerpt(n));
  expect(meta.contains("rng") && meta["rng"].is_object(), "rng", "an object of generator states");
  expect(!meta.contains("extra") || meta["extra"].is_null() || meta["extra"].is_object(), "extra", "an object");
  if (state.schedule)
    GENNER_CHECK(meta["step"].get<uint64_t>() <= static_cast<uint64_t>(state.schedule->total_steps()), where,
                 ": 'step': expected at most the run's ", state.schedule->total_steps(), " steps, found ",
                 meta["step"].get<uint64_t>());
}

/// Refuses a checkpoint's tensor file that lacks one of `tensors`, holds one in another shape, or
/// holds a tensor none of them names.
inline void check_saved_tensors(const io::SafetensorsFile& tensor_file, const NamedTensors& tensors) {
  std::map<std::string, at::Tensor> by_name;
  for (const auto& [name, t] : tensors) {
    by_name[name] = t;
    auto it = tensor_file.entries().find(name);
    GENNER_CHECK(it != tensor_file.entries().end(), tensor_file.path().string(), ": tensor '", name,
                 "' is missing (expected shape ", t.sizes(), ")");
    GENNER_CHECK(c10::IntArrayRef(it->second.shape) == t.sizes(), tensor_file.path().string(), ": tensor '", name,
                 "' has shape ", c10::IntArrayRef(it->second.shape), " but the model expects ", t.sizes());
  }
  for (const auto& [name, entry] : tensor_file.entries())
    GENNER_CHECK(by_name.count(name), tensor_file.path().string(), ": tensor '", name, "' matches none of the ",
                 by_name.size(), " tensors to restore");
}

/// Replaces the AdamW state of every parameter of the optimizer's `groups` with the one saved in
/// `optim_file` under its tensor's name; `steps` gives the step counts by name, and a parameter
/// without one is left without state (it was never stepped).
inline void restore_optimizer_state(const TrainingState& state,
                                    const std::vector<torch::optim::OptimizerParamGroup>& groups,
                                    const nlohmann::json& steps, const io::SafetensorsFile& optim_file) {
  std::map<std::string, std::string> name_of;
  for (const auto& [name, t] : state.tensors) name_of[param_key(t)] = name;
  for (const auto& group : groups) {
    for (const auto& p : group.params()) {
      const auto key = param_key(p);
      auto name = name_of.find(key);
      GENNER_CHECK(name != name_of.end(), "load_checkpoint: the optimizer holds a parameter of shape ", p.sizes(),
                   " that is not among the named tensors to restore");
      state.optimizer->state().erase(key);
      if (!steps.contains(name->second)) continue;
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(steps[name->second].get<int64_t>());
      s->exp_avg(optim_file.load(name->second + ".exp_avg").to(p.device()));
      s->exp_avg_sq(optim_file.load(name->second + ".exp_avg_sq").to(p.device()));
      if (optim_file.contains(name->second + ".max_exp_avg_sq"))
        s->max_exp_avg_sq(optim_file.load(name->second + ".max_exp_avg_sq").to(p.device()));
      state.optimizer->state()[key] = std::move(s);
    }
  }
}

/// Restores the generators `state` names: the std::mt19937_64 from `meta` (state.json in `folder`),
/// torch's default CPU generator from `optim_file`.
inline void restore_generator_states(const TrainingState& state, const nlohmann::json& meta,
                                     const std::filesystem::path& folder, const io::SafetensorsFile& optim_file) {
  if (state.rng) {
    GENNER_CHECK(meta["rng"].contains("mt19937_64") && meta["rng"]["mt19937_64"].is_string(), folder.string(),
                 "/state.json: expected a saved std::mt19937_64 state (rng.mt19937_64), found none");
    std::istringstream text(meta["rng"]["mt19937_64"].get<std::string>());
    text >> *state.rng;
    GENNER_CHECK(!text.fail(), folder.string(), "/state.json: rng.mt19937_64 is not a std::mt19937_64 state");
  }
  if (state.torch_rng) {
    GENNER_CHECK(optim_file.contains("rng.torch_cpu"), optim_file.path().string(),
                 ": expected torch's generator state 'rng.torch_cpu', found none");
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(optim_file.load("rng.torch_cpu"));
  }
}

}  // namespace detail

/// The folder to resume from: `dir` when complete, else the copy kept aside by an interrupted
/// save (`dir.prev`), else nothing.
[[nodiscard]] inline std::optional<std::filesystem::path> find_checkpoint(const std::filesystem::path& dir) {
  if (detail::checkpoint_complete(dir)) return dir;
  const auto prev = detail::sibling(dir, ".prev");
  if (detail::checkpoint_complete(prev)) return prev;
  return std::nullopt;
}

/// Refuses to resume when settings that shape the training trajectory differ from those a
/// checkpoint recorded: `saved` and `now` are JSON objects of settings; every key present in both
/// must be equal. The error lists each difference and how to start over instead.
inline void check_resume_settings(const nlohmann::json& saved, const nlohmann::json& now, const std::string& where) {
  if (!saved.is_object() || !now.is_object()) return;
  std::string diffs;
  for (const auto& [key, value] : now.items()) {
    if (!saved.contains(key) || saved[key] == value) continue;
    diffs += (diffs.empty() ? "" : ", ") + key + " " + json_excerpt(value) + " (checkpoint: " + json_excerpt(saved[key]) + ")";
  }
  GENNER_CHECK(diffs.empty(), where,
               ": cannot resume: settings that shape training differ from the checkpoint's: ", diffs,
               "; run with the checkpoint's settings, or with --resume false to start over in this folder");
}

/// The settings a checkpoint in `dir` (or its fallback) recorded under extra.trajectory, or null.
[[nodiscard]] inline nlohmann::json checkpoint_settings(const std::filesystem::path& dir) {
  const auto found = find_checkpoint(dir);
  if (!found) return nullptr;
  const auto meta = io::read_json_file(*found / "state.json");
  if (!meta.contains("extra") || !meta["extra"].is_object() || !meta["extra"].contains("trajectory")) return nullptr;
  return meta["extra"]["trajectory"];
}

/// Saves `state` (plus the sampler position and extra JSON) into folder `dir`, replacing any
/// previous checkpoint there atomically: everything is written to `dir.tmp-<pid>` and swapped in
/// with one renameat2(RENAME_EXCHANGE); the old folder stays intact until that instant.
inline void save_checkpoint(const std::filesystem::path& dir, const TrainingState& state,
                            const nlohmann::json& sampler = nlohmann::json::object(),
                            const nlohmann::json& extra = nlohmann::json::object()) {
  namespace fs = std::filesystem;
  GENNER_CHECK(state.optimizer && state.schedule, "save_checkpoint: expected an optimizer and a schedule, found ",
               state.optimizer ? "" : "no optimizer ", state.schedule ? "" : "no schedule");
  const fs::path prev = detail::sibling(dir, ".prev");
  if (!fs::exists(dir) && detail::checkpoint_complete(prev)) fs::rename(prev, dir);  // finish an interrupted swap
  const fs::path tmp = io::temporary_for(dir);
  detail::remove_stale_temporaries(tmp);
  fs::create_directories(tmp);

  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> name_of;
  for (const auto& [name, t] : state.tensors) {
    GENNER_CHECK(!tensors.count(name), "save_checkpoint: tensor name '", name, "' appears twice");
    tensors[name] = t;
    name_of[detail::param_key(t)] = name;
  }
  std::map<std::string, at::Tensor> optim;
  nlohmann::json steps = nlohmann::json::object();
  const nlohmann::json lrs = detail::collect_optimizer_state(state, name_of, tensors.size(), optim, steps);
  const nlohmann::json rng = detail::collect_generator_states(state, optim);
  io::save_safetensors(tmp / "tensors.safetensors", tensors);
  io::save_safetensors(tmp / "optimizer.safetensors", optim);
  const nlohmann::json meta = {{"format", "genner-train-checkpoint"},
                               {"version", 1},
                               {"step", state.schedule->current_step()},
                               {"lrs", lrs},
                               {"optimizer_steps", steps},
                               {"rng", rng},
                               {"sampler", sampler},
                               {"extra", extra}};
  io::write_text_atomically(tmp / "state.json", meta.dump(1));
  for (const char* f : {"tensors.safetensors", "optimizer.safetensors", "state.json"})
    detail::fsync_path(tmp / f, false);
  detail::fsync_path(tmp, true);

  detail::swap_into_place(tmp, dir, prev);
}

/// Restores `state` in place from the checkpoint in `dir` (or its interrupted-save fallback).
/// Strict: every saved tensor must match a given name with the same shape, and vice versa.
inline ResumeInfo load_checkpoint(const std::filesystem::path& dir, const TrainingState& state) {
  GENNER_CHECK(state.optimizer && state.schedule, "load_checkpoint: expected an optimizer and a schedule");
  const auto found = find_checkpoint(dir);
  GENNER_CHECK(found.has_value(),
               "load_checkpoint: expected a complete checkpoint (state.json, tensors.safetensors, "
               "optimizer.safetensors) in ",
               dir.string(), " or ", detail::sibling(dir, ".prev").string(), ", found none");
  const auto& folder = *found;
  const nlohmann::json meta = io::read_json_file(folder / "state.json");
  detail::check_checkpoint_meta(meta, (folder / "state.json").string(), state);
  io::SafetensorsFile tensor_file(folder / "tensors.safetensors");
  io::SafetensorsFile optim_file(folder / "optimizer.safetensors");
  // Check everything before changing anything.
  detail::check_saved_tensors(tensor_file, state.tensors);
  const auto& groups = state.optimizer->param_groups();
  GENNER_CHECK(meta["lrs"].size() == groups.size(), folder.string(), "/state.json: saved with ", meta["lrs"].size(),
               " optimizer param groups, but the optimizer has ", groups.size());

  {
    at::NoGradGuard no_grad;
    for (const auto& [name, t] : state.tensors) {
      auto saved = tensor_file.load(name);
      io::check_finite_weights(saved, tensor_file.path(), name);
      t.copy_(saved);
    }
  }
  detail::restore_optimizer_state(state, groups, meta["optimizer_steps"], optim_file);
  state.schedule->set_step(meta["step"].get<int64_t>());
  detail::restore_generator_states(state, meta, folder, optim_file);
  return {folder, meta["step"].get<int64_t>(), meta["sampler"], meta["extra"]};
}

}  // namespace genner::train
