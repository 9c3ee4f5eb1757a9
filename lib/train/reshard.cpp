#include "train/reshard.h"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>

#include <algorithm>
#include <mutex>

#include "data/rng.h"
#include "util/error.h"
#include "util/format.h"

namespace cca {
namespace {

std::string count_text(int64_t n, const std::string& unit) {
  return format("{} {}{}", n, unit, n == 1 ? "" : "s");
}

std::string ranks_text(int64_t n) {
  return count_text(n, "rank");
}

// "rank 3" or "ranks 2-5"
std::string rank_range(int64_t first, int64_t last) {
  return first == last ? format("rank {}", first) : format("ranks {}-{}", first, last);
}

// What the global batch multiplies by: ranks, or replicas when either side splits sequences.
struct BatchUnits {
  int64_t count = 1;
  std::string unit;  // "rank" or "replica"
  std::string text;  // the layout for the messages: "2 ranks" or "2 replicas × CP 2 (4 ranks)"
};

BatchUnits batch_units(const ParallelLayout& layout, bool by_replica) {
  if (!by_replica) return {layout.world, "rank", ranks_text(layout.world)};
  return {layout.replicas(), "replica",
          format("{} ({})", layout_text(layout), ranks_text(layout.world))};
}

// "train.micro_batch_size 4 × train.grad_accum 1 × 2 ranks"
std::string batch_text(const TrainConfig& train, const BatchUnits& units) {
  return format("train.micro_batch_size {} × train.grad_accum {} × {}", train.micro_batch_size,
                train.grad_accum, count_text(units.count, units.unit));
}

// A --set that gives `target` sequences per step on `units`, changing as little as possible:
// grad_accum first, then micro_batch_size, then both.
std::string keeping_setting(int64_t target, const TrainConfig& current, const BatchUnits& units) {
  const int64_t world = units.count;
  if (target % world != 0) {
    return format("no setting keeps {} sequences per step on {} ({} is not a multiple of {})",
                  target, count_text(world, units.unit), target, world);
  }
  const int64_t per_rank = target / world;
  if (per_rank % current.micro_batch_size == 0) {
    return format("keep it with --set train.grad_accum={}", per_rank / current.micro_batch_size);
  }
  if (per_rank % current.grad_accum == 0) {
    return format("keep it with --set train.micro_batch_size={}", per_rank / current.grad_accum);
  }
  int64_t micro = std::min(current.micro_batch_size, per_rank);
  while (per_rank % micro != 0) --micro;
  return format("keep it with --set train.micro_batch_size={} --set train.grad_accum={}", micro,
                per_rank / micro);
}

bool splits_sequences(const ParallelLayout& a, const ParallelLayout& b) {
  return a.context_parallel > 1 || b.context_parallel > 1;
}

// The data position's lines. Under context parallelism the loader's world is the replicas, and
// a line says how each sequence's split changes (nothing in the checkpoint depends on it).
std::vector<std::string> describe_data_reshard(const CheckpointInfo& info,
                                               const ParallelLayout& saved,
                                               const ParallelLayout& layout, bool by_replica) {
  const int64_t world = by_replica ? layout.replicas() : layout.world;
  const std::string unit = by_replica ? "replica" : "rank";
  const std::string prefix =
      by_replica ? format("{} → {}; ", layout_text(saved), layout_text(layout)) : "";
  std::vector<std::string> lines;
  if (info.progress.loader) {
    lines.push_back("data: " + prefix +
                    describe_loader_reshard(*info.progress.loader, world, unit));
  }
  if (info.progress.mixture) {
    for (const data::SourcePosition& source : info.progress.mixture->sources) {
      lines.push_back(format("data source '{}': {}{}", source.name, prefix,
                             describe_loader_reshard(source.state, world, unit)));
    }
  }
  if (by_replica && saved.context_parallel != layout.context_parallel) {
    const auto split = [](int64_t cp) {
      return cp == 1 ? std::string("whole on each rank")
                     : format("split into {} chunks over the {} ranks of a replica", 2 * cp, cp);
    };
    lines.push_back(format("sequences: {} (was {})", split(layout.context_parallel),
                           split(saved.context_parallel)));
  }
  return lines;
}

// Ranks the writing run had restore their generators; new ranks get derived seeds.
std::string describe_generators(const CheckpointInfo& info, int64_t saved, int64_t world) {
  if (world > saved) {
    std::string seeds;
    for (int64_t r = saved; r < world; ++r) {
      seeds += format("{}rank {} 0x{:x}", r == saved ? "" : ", ", r,
                      derived_rank_seed(static_cast<uint64_t>(info.config.config.train.seed),
                                        info.progress.step, r));
    }
    return format(
        "generators: {} restored; {} did not exist in that run, seeded from (train.seed {}, "
        "step {}, rank): {}",
        rank_range(0, saved - 1), rank_range(saved, world - 1), info.config.config.train.seed,
        info.progress.step, seeds);
  }
  if (world == saved) return format("generators: {} restored", rank_range(0, world - 1));
  return format("generators: {} restored; the checkpoint's states of {} are not used",
                rank_range(0, world - 1), rank_range(world, saved - 1));
}

}  // namespace

int64_t global_batch(const TrainConfig& train, int64_t world_size) {
  return train.micro_batch_size * train.grad_accum * world_size;
}

std::string layout_text(const ParallelLayout& layout) {
  return format("{} × CP {}", count_text(layout.replicas(), "replica"), layout.context_parallel);
}

std::vector<std::string> check_resume_world_size(const std::string& checkpoint,
                                                 const TrainConfig& saved, int64_t saved_world,
                                                 const TrainConfig& current, int64_t world) {
  return check_resume_layout(checkpoint, saved, {saved_world, 1}, current, {world, 1});
}

std::vector<std::string> check_resume_layout(const std::string& checkpoint,
                                             const TrainConfig& saved, ParallelLayout saved_layout,
                                             const TrainConfig& current, ParallelLayout layout) {
  if (saved_layout == layout) return {};
  const bool by_replica = splits_sequences(saved_layout, layout);
  const BatchUnits was = batch_units(saved_layout, by_replica);
  const BatchUnits now = batch_units(layout, by_replica);
  const int64_t before = global_batch(saved, was.count), after = global_batch(current, now.count);
  if (before == after) return {};
  const std::string change =
      format("the global batch changes from {} sequences per step ({}) to {} ({})", before,
             batch_text(saved, was), after, batch_text(current, now));
  if (current.global_batch_size == after) {  // asked for explicitly (validated against the rest)
    return {format(
        "resume: {} with {} instead of {}, as train.global_batch_size = {} asks. The schedule "
        "counts steps: every remaining step reads {} sequences instead of {}, so the run ends "
        "at train.steps {} having seen a different number of tokens",
        change, now.text, was.text, after, after, before, current.steps)};
  }
  const std::string replicas_note =
      by_replica ? format(
                       " (the replicas are the ranks / distributed.context_parallel: {} / {} "
                       "before, {} / {} now)",
                       saved_layout.world, saved_layout.context_parallel, layout.world,
                       layout.context_parallel)
                 : "";
  throw Error(format(
      "cannot resume {} with {}: it was written by {}, and {}{}. Resharding keeps the data "
      "position and the schedule aligned only with the same global batch: {}, or accept the "
      "new batch with --set train.global_batch_size={} (the schedule counts steps, so the rest "
      "of the run then reads {} instead of {} sequences per step)",
      checkpoint, now.text, was.text, change, replicas_note, keeping_setting(before, current, now),
      after, after, before));
}

std::string describe_loader_reshard(const data::LoaderState& saved, int64_t world,
                                    const std::string& unit) {
  const data::LoaderState now = saved.for_world_size(world);
  return format(
      "epoch {}, shard {}: {} window(s) of the shard read by {}; {} continue from there "
      "(offset {}, position {})",
      saved.epoch, saved.shard, saved.shard_windows_read(), count_text(saved.world_size, unit),
      count_text(world, unit), now.offset, now.position);
}

int64_t saved_world_size(const CheckpointInfo& info) {
  const data::LoaderState* loader = info.progress.loader ? &*info.progress.loader : nullptr;
  if (info.progress.mixture) loader = &info.progress.mixture->sources.front().state;
  return loader != nullptr ? std::max(loader->world_size, info.world_size) : info.world_size;
}

ParallelLayout saved_layout(const CheckpointInfo& info) {
  return {saved_world_size(info),
          std::max<int64_t>(info.config.config.distributed.context_parallel, 1)};
}

std::vector<std::string> describe_reshard(const CheckpointInfo& info, int64_t world, bool zero1) {
  return describe_reshard(info, ParallelLayout{world, 1}, zero1);
}

std::vector<std::string> describe_reshard(const CheckpointInfo& info, ParallelLayout layout,
                                          bool zero1) {
  const ParallelLayout saved = saved_layout(info);
  const bool by_replica = splits_sequences(saved, layout);
  std::vector<std::string> lines;
  if (by_replica) {
    lines.push_back(format(
        "resharding: the checkpoint was written by {} with distributed.context_parallel = {}, "
        "this run has {} with distributed.context_parallel = {}",
        ranks_text(saved.world), saved.context_parallel, ranks_text(layout.world),
        layout.context_parallel));
  } else {
    lines.push_back(format("resharding: the checkpoint was written by {}, this run has {}",
                           ranks_text(saved.world), ranks_text(layout.world)));
  }
  for (std::string& line : describe_data_reshard(info, saved, layout, by_replica)) {
    lines.push_back(std::move(line));
  }
  const char* state = info.config.config.optim.kind == "muon" ? "Muon and AdamW" : "AdamW";
  lines.push_back(zero1 && layout.world > 1
                      ? format("optimizer: the checkpoint's full {} state, re-partitioned into "
                               "ZeRO-1 shards over {}",
                               state, ranks_text(layout.world))
                      : format("optimizer: the checkpoint's full {} state, on every rank", state));
  lines.push_back(describe_generators(info, saved.world, layout.world));
  return lines;
}

uint64_t derived_rank_seed(uint64_t seed, int64_t step, int64_t rank) {
  // The loader's counter-based generator, on its own stream: "rank" spelled as ASCII.
  data::Rng rng(seed ^ 0x72616E6BULL, static_cast<uint64_t>(step), static_cast<uint64_t>(rank));
  return rng.next();
}

void seed_generators_of_new_rank(uint64_t seed, int64_t step, int64_t rank) {
  const uint64_t derived = derived_rank_seed(seed, step, rank);
  at::Generator cpu = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_current_seed(derived);
  }
  if (at::globalContext().hasCUDA()) {
    at::Generator cuda = at::globalContext().defaultGenerator(at::Device(at::kCUDA));
    std::lock_guard<std::mutex> lock(cuda.mutex());
    cuda.set_current_seed(derived);
  }
}

}  // namespace cca
