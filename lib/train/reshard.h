// Resuming a checkpoint with another number of ranks (docs/distributed.md, "Resuming with another
// world size"). A checkpoint already holds everything once for the whole run: the weights, the
// full optimizer state (ZeRO-1 shards are gathered on save and each owner takes its tensors on
// load, so they re-partition by themselves), and a loader state that says how many windows of
// the current shard the ranks have read together (data::LoaderState::for_world_size reshards it).
// What is left is decided here: whether the global batch may change, what to log, and the
// generator states of ranks the writing run did not have.
//
// Under context parallelism (distributed.context_parallel = CP) the loader's world is the number
// of data-parallel replicas (world / CP): every rank of a replica reads the same whole sequences
// and keeps its own part, so rank 0's loader state is every replica's, counted in replicas. A
// resume under another layout (DP_a x CP_a -> DP_b x CP_b, either CP may be 1) is therefore the
// data-parallel reshard from DP_a to DP_b replicas; the split of each sequence changes nothing
// that a checkpoint holds (weights and optimizer state are whole, ZeRO-1 shards re-partition
// over the new world).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/loader.h"
#include "train/checkpoint.h"

namespace cca {

// Sequences per optimizer step: micro_batch_size × grad_accum × world size (the number of
// data-parallel replicas under context parallelism).
int64_t global_batch(const TrainConfig& train, int64_t world_size);

// How a run's ranks are arranged: `world` ranks, `context_parallel` of them sharing each sequence.
struct ParallelLayout {
  int64_t world = 1;
  int64_t context_parallel = 1;
  // The ranks that read different sequences (the loader's world size). The world itself when
  // context_parallel does not divide it (as config validation counts; such a run is refused at
  // start, e.g. a single process with context_parallel > 1).
  int64_t replicas() const {
    return context_parallel > 0 && world % context_parallel == 0 ? world / context_parallel : world;
  }
  bool operator==(const ParallelLayout& o) const {
    return world == o.world && context_parallel == o.context_parallel;
  }
  bool operator!=(const ParallelLayout& o) const { return !(*this == o); }
};
// "2 replicas × CP 2"
std::string layout_text(const ParallelLayout& layout);

// Checks a resume of a checkpoint written by `saved_world` ranks (with the config `saved`) by
// `world` ranks (with `current`). The global batch must stay the same, unless the new config asks
// for the new one explicitly with train.global_batch_size: otherwise a cca::Error names the keys,
// their values on both sides and a setting that keeps the batch. Returns the warnings to log (a
// batch that changes on purpose). Nothing to check when the world sizes agree.
std::vector<std::string> check_resume_world_size(const std::string& checkpoint,
                                                 const TrainConfig& saved, int64_t saved_world,
                                                 const TrainConfig& current, int64_t world);

// The same check between two layouts: the global batch counts replicas, not ranks. Both
// without context parallelism: exactly check_resume_world_size. Otherwise the refusal names
// both layouts, distributed.context_parallel and the batch keys; nothing to check when the
// layouts agree.
std::vector<std::string> check_resume_layout(const std::string& checkpoint,
                                             const TrainConfig& saved, ParallelLayout saved_layout,
                                             const TrainConfig& current, ParallelLayout layout);

// How a loader state moves to another world size, e.g. "epoch 0, shard 1: 25 window(s) of the
// shard read by 1 rank; 2 ranks continue from there (offset 1, position 12)". `unit` names what
// the loader's world counts: "rank", or "replica" under context parallelism.
std::string describe_loader_reshard(const data::LoaderState& saved, int64_t world,
                                    const std::string& unit = "rank");

// The world size of the run that wrote a checkpoint (the manifest's, or its loader state's).
int64_t saved_world_size(const CheckpointInfo& info);
// Its layout: that world size and the checkpoint's distributed.context_parallel (1 for
// checkpoints written before context parallelism existed).
ParallelLayout saved_layout(const CheckpointInfo& info);

// What a resume with `world` ranks does to a checkpoint of another world size, one line each
// (the data position, the optimizer state, the generators), for the start-up log.
std::vector<std::string> describe_reshard(const CheckpointInfo& info, int64_t world, bool zero1);
// The same for a resume under `layout`: with context parallelism on either side, the data line
// names the layout change ("data: 2 replicas × CP 2 → 1 replica × CP 4; ...") and a line says
// how the sequences' split changes.
std::vector<std::string> describe_reshard(const CheckpointInfo& info, ParallelLayout layout,
                                          bool zero1);

// The seed of a rank that the writing run did not have: a pure function of (train.seed, step,
// rank), so the same resume gives the same generators on every machine.
uint64_t derived_rank_seed(uint64_t seed, int64_t step, int64_t rank);
// Seeds this process's CPU (and CUDA) generators with derived_rank_seed(seed, step, rank).
void seed_generators_of_new_rank(uint64_t seed, int64_t step, int64_t rank);

}  // namespace cca
