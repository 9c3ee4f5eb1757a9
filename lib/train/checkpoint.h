// Checkpoints of a training run (docs/checkpoints.md): a folder per step under run.dir/checkpoints
// with model.safetensors (the fp32 master weights and buffers), optimizer.safetensors (AdamW
// moments and step counts; with optim.kind muon also Muon's momentum), rng.safetensors (generator
// states), manifest.json (step, counters, loader state, run id, file sizes, versions), config.yaml
// (the resolved config) and DONE.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "data/loader.h"
#include "model/transformer.h"
#include "optim/optimizer.h"
#include "train/tensor_io.h"

namespace cca {

inline constexpr int kCheckpointFormatVersion = 1;

// Everything about the run's position that is not a tensor.
struct TrainProgress {
  int64_t step = 0;  // optimizer steps completed
  int64_t tokens_seen = 0;
  int64_t skipped_steps = 0;
  double train_seconds = 0;  // wall time in training steps (no eval, checkpoints, start-up)
  std::string run_id;
  std::optional<data::LoaderState> loader;  // unset when the run has no training data yet
  // Instead of `loader` when data.train is a mixture: the stage and where each source stands.
  std::optional<data::MixtureState> mixture;
};

// What a data-parallel run adds to a checkpoint (rank 0 writes it for every rank).
struct CheckpointExtras {
  int64_t world_size = 1;        // recorded in the manifest; resuming needs the same
  std::vector<NamedTensor> rng;  // "cpu/rank<r>" ... replacing this process's "cpu" (and "cuda")
  std::vector<NamedTensor> optimizer_state;  // replaces optimizer.state() (ZeRO-1: gathered)
  // Called once every file is in the staging folder, before DONE: a barrier, so no checkpoint is
  // marked complete unless every rank reached it.
  std::function<void()> before_commit;
};

// Writes a complete checkpoint for progress.step under `root` (atomically: staging folder,
// fsync, rename, DONE last), then prunes old ones per checkpoint.keep_last / keep_every.
// Returns the checkpoint's folder.
std::string save_checkpoint(const std::string& root, const TrainProgress& progress,
                            TransformerImpl& model, const Optimizer& optimizer,
                            const LoadedConfig& config, const CheckpointExtras& extras = {});

// This process's generator states: "cpu" (and "cuda" where CUDA is present), uint8 tensors.
std::vector<NamedTensor> rng_states();

struct CheckpointInfo {
  std::string path;
  TrainProgress progress;
  LoadedConfig config;     // as saved beside the weights
  int64_t world_size = 1;  // ranks of the run that wrote it (manifest "world_size"; 1 if absent)
};

// The folder `--resume` names, after checking its files against the sizes and XXH64s in its DONE
// marker (checkpoint_store::verify):
//   "auto": the newest intact checkpoint under `root`, nullopt when there is none. Torn ones are
//     skipped with a warning; corrupt ones too, and moved aside (renamed, never deleted) when
//     `set_aside_corrupt` (the rank that owns the run's files).
//   a checkpoint folder: itself, and a corrupt one is a cca::Error naming the damaged file.
//   a run or checkpoints folder: its newest intact checkpoint (corrupt ones skipped, not moved).
// `flag` names the option in messages.
std::optional<std::string> find_resume_checkpoint(const std::string& request,
                                                  const std::string& root,
                                                  const std::string& flag = "--resume",
                                                  bool set_aside_corrupt = false);
// Reads manifest.json and config.yaml; throws cca::Error naming the file and field on anything
// malformed.
CheckpointInfo read_checkpoint_info(const std::string& path);

// Differences between the saved and current config. Throws cca::Error listing every key that
// changes the model's shape; returns one "key: old -> new" line per other difference.
std::vector<std::string> compare_configs_for_resume(const Config& saved, const Config& current);

// Loads weights, optimizer state and RNG states into already-built objects. Names, shapes and
// dtypes are checked against the model; any mismatch is a cca::Error naming the tensor. A
// checkpoint of a data-parallel run restores rank `rank`'s generator states ("cpu/rank<r>"); a
// rank the writing run did not have seeds them from (train.seed, step, rank) (train/reshard.h).
void restore_checkpoint(const CheckpointInfo& info, TransformerImpl& model, Optimizer& optimizer,
                        int rank = 0);

// `cca-train export`: weights-only safetensors (fp32 or bf16) plus config.yaml into `out_dir`.
// Returns the number of tensors written.
int64_t export_weights(const std::string& checkpoint, const std::string& out_dir,
                       const std::string& dtype);

}  // namespace cca
