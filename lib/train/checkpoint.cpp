#include "train/checkpoint.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include <cstring>
#include <ctime>
#include <set>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/safetensors.h"
#include "config/schema.h"
#include "train/reshard.h"
#include "train/tensor_io.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strings.h"

namespace cca {
namespace {

const char* const kModelFile = "model.safetensors";
const char* const kOptimizerFile = "optimizer.safetensors";
const char* const kRngFile = "rng.safetensors";
const char* const kManifestFile = "manifest.json";
const char* const kConfigFile = "config.yaml";

std::string iso_time_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// A data-parallel checkpoint names each rank's states "cpu/rank<r>"; a single process's "cpu".
// A rank the writing run did not have (resharding) gets generators seeded from (seed, step, rank).
void restore_rng_states(const std::map<std::string, at::Tensor>& states, const std::string& file,
                        int rank, const CheckpointInfo& info) {
  std::string suffix = "/rank" + std::to_string(rank);
  auto cpu = states.find("cpu" + suffix);
  if (cpu == states.end() && rank == 0) {
    suffix.clear();
    cpu = states.find("cpu");
  }
  if (cpu == states.end() && rank >= info.world_size) {
    seed_generators_of_new_rank(static_cast<uint64_t>(info.config.config.train.seed),
                                info.progress.step, rank);
    return;
  }
  if (cpu == states.end()) {
    throw Error(file + ": missing tensor 'cpu/rank" + std::to_string(rank) + "'" +
                (rank == 0 ? " (or 'cpu')" : "") + ", the CPU generator state");
  }
  at::Generator cpu_generator = at::detail::getDefaultCPUGenerator();
  cpu_generator.set_state(cpu->second);
  const auto cuda = states.find("cuda" + suffix);
  if (cuda != states.end() && at::globalContext().hasCUDA()) {
    at::Generator cuda_generator = at::globalContext().defaultGenerator(at::Device(at::kCUDA));
    cuda_generator.set_state(cuda->second);
  } else if (cuda == states.end() && at::globalContext().hasCUDA()) {
    log::info(
        "resume      the checkpoint was written without CUDA: the CUDA generator keeps its seed");
  }
}

// Keys whose change alters the model's parameters or what they mean. RoPE scaling is left out on
// purpose: switching it on for a longer context is how a run continues past its trained length.
bool shapes_the_model(const std::string& key) {
  static const std::set<std::string> kRuntimeOnly = {"model.z_loss",
                                                     "model.init_std",
                                                     "model.depth_scaled_init",
                                                     "model.max_seq_len",
                                                     "attention.core",
                                                     "attention.cca.kernels",
                                                     "attention.rope_scaling",
                                                     "attention.rope_scaling_factor",
                                                     "attention.rope_original_max_seq_len",
                                                     "moe.aux_loss_coef",
                                                     "moe.z_loss_coef",
                                                     "moe.bias_update_rate"};
  const bool model_section =
      key.rfind("model.", 0) == 0 || key.rfind("attention.", 0) == 0 || key.rfind("moe.", 0) == 0;
  return model_section && kRuntimeOnly.count(key) == 0;
}

void log_verification(const std::string& path, const checkpoint_store::Verification& v) {
  if (v.status != checkpoint_store::Verification::Status::intact) return;
  log::info("resume      verified {}: {:.2f} GB in {:.2f} s", path,
            static_cast<double>(v.bytes) / 1e9, v.seconds);
}

}  // namespace

std::vector<NamedTensor> rng_states() {
  std::vector<NamedTensor> states;
  states.push_back({"cpu", at::detail::getDefaultCPUGenerator().get_state()});
  if (at::globalContext().hasCUDA()) {
    const at::Generator& cuda = at::globalContext().defaultGenerator(at::Device(at::kCUDA));
    states.push_back({"cuda", cuda.get_state()});
  }
  return states;
}

std::string save_checkpoint(const std::string& root, const TrainProgress& progress,
                            TransformerImpl& model, const Optimizer& optimizer,
                            const LoadedConfig& config, const CheckpointExtras& extras) {
  checkpoint_store::Staging staging(root, progress.step);
  const std::map<std::string, std::string> metadata = {{"format", "cca-train checkpoint"},
                                                       {"step", std::to_string(progress.step)}};
  const char* const tensor_files[] = {kModelFile, kOptimizerFile, kRngFile};
  staging.record(kModelFile,
                 write_tensors(staging.path(kModelFile), model_tensors(model), metadata));
  staging.record(
      kOptimizerFile,
      write_tensors(staging.path(kOptimizerFile),
                    extras.optimizer_state.empty() ? optimizer.state() : extras.optimizer_state,
                    metadata));
  staging.record(kRngFile, write_tensors(staging.path(kRngFile),
                                         extras.rng.empty() ? rng_states() : extras.rng, metadata));
  staging.write_file(kConfigFile, render_config_yaml(config, /*with_origins=*/true));

  Json::Object files;
  for (const char* name : tensor_files) {
    files[name] = static_cast<int64_t>(files::file_size(staging.path(name)));
  }
  Json::Object manifest;
  manifest["format"] = "cca-train checkpoint";
  manifest["version"] = kCheckpointFormatVersion;
  manifest["step"] = progress.step;
  manifest["tokens_seen"] = progress.tokens_seen;
  manifest["skipped_steps"] = progress.skipped_steps;
  manifest["train_seconds"] = progress.train_seconds;
  manifest["run_id"] = progress.run_id;
  manifest["world_size"] = extras.world_size;
  // One text either way: a mixture's state starts with its own magic (data::MixtureState).
  manifest["loader_state"] = progress.mixture  ? Json(progress.mixture->serialize())
                             : progress.loader ? Json(progress.loader->serialize())
                                               : Json();
  manifest["created"] = iso_time_now();
  manifest["libtorch"] = TORCH_VERSION;
  manifest["files"] = Json(std::move(files));
  staging.write_file(kManifestFile, Json(std::move(manifest)).dump(2) + "\n");
  if (extras.before_commit) extras.before_commit();
  const std::string path = staging.commit();

  for (const std::string& removed : checkpoint_store::prune(
           root, config.config.checkpoint.keep_last, config.config.checkpoint.keep_every)) {
    log::debug("checkpoint  removed {}", removed);
  }
  return path;
}

std::optional<std::string> find_resume_checkpoint(const std::string& request,
                                                  const std::string& root, const std::string& flag,
                                                  bool set_aside_corrupt) {
  const auto newest_in = [&](const std::string& folder,
                             bool set_aside) -> std::optional<std::string> {
    std::vector<std::string> warnings;
    const auto found = checkpoint_store::newest_intact(folder, &warnings, set_aside);
    for (const std::string& warning : warnings) log::warn("resume: {}", warning);
    if (!found) return std::nullopt;
    log_verification(found->entry.path, found->verification);
    return found->entry.path;
  };
  if (request == "auto") return newest_in(root, set_aside_corrupt);
  if (checkpoint_store::is_complete(request)) {
    const checkpoint_store::Verification v = checkpoint_store::verify(request);
    if (!v.usable()) {
      throw Error(
          format("{} '{}': the checkpoint is corrupt: {}. `cca-train verify` checks a "
                 "run's checkpoints; --resume auto falls back to the newest intact one",
                 flag, request, join(v.problems, "; ")));
    }
    if (v.status == checkpoint_store::Verification::Status::unverifiable) {
      log::warn(
          "resume: {} was written before checkpoints carried checksums: its file sizes are "
          "checked, its content is not",
          request);
    }
    log_verification(request, v);
    return request;
  }
  // Another run's folders are only read: their corrupt checkpoints are skipped, not moved.
  if (files::is_directory(files::join(request, "checkpoints"))) {
    if (auto found = newest_in(files::join(request, "checkpoints"), false)) return found;
  } else if (files::is_directory(request)) {
    if (auto found = newest_in(request, false)) return found;
  }
  throw Error(flag + " '" + request +
              "': not a complete, intact checkpoint (a step_NNNNNNNN folder holding DONE), nor a "
              "run or checkpoints folder that contains one");
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  if (!checkpoint_store::is_complete(path)) {
    throw Error("checkpoint '" + path +
                "' is not complete (no DONE marker): its writer was "
                "interrupted; resume from an earlier one");
  }
  CheckpointInfo info;
  info.path = path;
  const std::string manifest_path = files::join(path, kManifestFile);
  const Json manifest =
      parse_json(files::read_file(manifest_path, "manifest", 16u << 20), manifest_path);
  if (!manifest.is_object()) throw Error(manifest_path + ": expected a JSON object");
  const std::string& format_name = manifest.at("format", manifest_path).as_string("format");
  if (format_name != "cca-train checkpoint") {
    throw Error(manifest_path + ": format is '" + format_name +
                "', expected 'cca-train checkpoint'");
  }
  const int64_t version = manifest.at("version", manifest_path).as_int("version");
  if (version != kCheckpointFormatVersion) {
    throw Error(format("{}: checkpoint format version {}; this build reads version {}",
                       manifest_path, version, kCheckpointFormatVersion));
  }
  TrainProgress& p = info.progress;
  p.step = manifest.at("step", manifest_path).as_int("step", 0);
  p.tokens_seen = manifest.at("tokens_seen", manifest_path).as_int("tokens_seen", 0);
  p.skipped_steps = manifest.at("skipped_steps", manifest_path).as_int("skipped_steps", 0);
  p.run_id = manifest.at("run_id", manifest_path).as_string("run_id");
  if (const Json* seconds = manifest.find("train_seconds"))
    p.train_seconds = seconds->as_double("train_seconds");
  if (const Json* world = manifest.find("world_size"))
    info.world_size = world->as_int("world_size", 1);
  const Json& loader = manifest.at("loader_state", manifest_path);
  if (!loader.is_null()) {
    const std::string& text = loader.as_string("loader_state");
    if (data::MixtureState::is_mixture(text)) {
      p.mixture = data::MixtureState::parse(text);
    } else {
      p.loader = data::LoaderState::parse(text);
    }
  }
  for (const auto& [name, size] : manifest.at("files", manifest_path).as_object("files")) {
    const std::string file = files::join(path, name);
    if (name.find('/') != std::string::npos || !files::is_regular_file(file)) {
      throw Error(manifest_path + ": lists '" + name + "', which is not a file in the checkpoint");
    }
    const auto expected = static_cast<uint64_t>(size.as_int("files." + name, 0));
    if (files::file_size(file) != expected) {
      throw Error(format("{} is {} bytes, but the manifest says {}: truncated or replaced", file,
                         files::file_size(file), expected));
    }
  }
  info.config = load_config(files::join(path, kConfigFile));
  return info;
}

std::vector<std::string> compare_configs_for_resume(const Config& saved, const Config& current) {
  if (saved.optim.kind != current.optim.kind) {
    // The state of one optimizer means nothing to the other (Muon keeps one momentum per matrix,
    // AdamW two moments and a step count), and silently starting it afresh would be a different
    // run.
    throw Error("cannot resume: the checkpoint was trained with optim.kind " + saved.optim.kind +
                ", the config asks for " + current.optim.kind +
                "; resume with optim.kind: " + saved.optim.kind +
                ", or start a new run.dir (init.from takes the weights with a fresh optimizer)");
  }
  Config old_config = saved, new_config = current;
  std::vector<std::string> shape_changes, other_changes;
  for (const KeySpec& key : config_keys()) {
    const std::string before = value_text(key, old_config), after = value_text(key, new_config);
    if (before == after) continue;
    const std::string line = key.path + ": " + before + " -> " + after;
    (shapes_the_model(key.path) ? shape_changes : other_changes).push_back(line);
  }
  if (!shape_changes.empty()) {
    throw Error(
        "cannot resume: the config describes a different model than the checkpoint "
        "(checkpoint -> config):\n  " +
        join(shape_changes, "\n  ") +
        "\nUse the checkpoint's settings (its config.yaml) or start a new run.dir");
  }
  return other_changes;
}

void restore_checkpoint(const CheckpointInfo& info, TransformerImpl& model, Optimizer& optimizer,
                        int rank) {
  at::NoGradGuard no_grad;
  load_model_weights(files::join(info.path, kModelFile), model);
  const std::string optimizer_file = files::join(info.path, kOptimizerFile);
  optimizer.load_state(read_tensors(optimizer_file), optimizer_file);
  const std::string rng_file = files::join(info.path, kRngFile);
  restore_rng_states(read_tensors(rng_file), rng_file, rank, info);
}

int64_t export_weights(const std::string& checkpoint, const std::string& out_dir,
                       const std::string& dtype) {
  if (dtype != "fp32" && dtype != "bf16") {
    throw Error("export: --dtype must be fp32 or bf16, got '" + dtype + "'");
  }
  const CheckpointInfo info = read_checkpoint_info(checkpoint);
  const std::map<std::string, at::Tensor> saved = read_tensors(files::join(checkpoint, kModelFile));
  std::vector<NamedTensor> tensors;
  for (const auto& [name, tensor] : saved) {
    const bool cast = dtype == "bf16" && tensor.is_floating_point() &&
                      name.find("selection_bias") == std::string::npos;
    tensors.push_back({name, cast ? tensor.to(at::kBFloat16) : tensor});
  }
  files::make_directories(out_dir);
  write_tensors(files::join(out_dir, kModelFile), tensors,
                {{"format", "cca-train weights"},
                 {"step", std::to_string(info.progress.step)},
                 {"run_id", info.progress.run_id},
                 {"config", kConfigFile}});
  files::copy_file(files::join(checkpoint, kConfigFile), files::join(out_dir, kConfigFile));
  return static_cast<int64_t>(tensors.size());
}

}  // namespace cca
