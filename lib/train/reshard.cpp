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

std::string ranks_text(int64_t n) {
  return format("{} rank{}", n, n == 1 ? "" : "s");
}

// "rank 3" or "ranks 2-5"
std::string rank_range(int64_t first, int64_t last) {
  return first == last ? format("rank {}", first) : format("ranks {}-{}", first, last);
}

// "train.micro_batch_size 4 × train.grad_accum 1 × 2 ranks"
std::string batch_text(const TrainConfig& train, int64_t world) {
  return format("train.micro_batch_size {} × train.grad_accum {} × {}", train.micro_batch_size,
                train.grad_accum, ranks_text(world));
}

// A --set that gives `target` sequences per step on `world` ranks, changing as little as
// possible: grad_accum first, then micro_batch_size, then both.
std::string keeping_setting(int64_t target, const TrainConfig& current, int64_t world) {
  if (target % world != 0) {
    return format("no setting keeps {} sequences per step on {} ({} is not a multiple of {})",
                  target, ranks_text(world), target, world);
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

}  // namespace

int64_t global_batch(const TrainConfig& train, int64_t world_size) {
  return train.micro_batch_size * train.grad_accum * world_size;
}

std::vector<std::string> check_resume_world_size(const std::string& checkpoint,
                                                 const TrainConfig& saved, int64_t saved_world,
                                                 const TrainConfig& current, int64_t world) {
  if (saved_world == world) return {};
  const int64_t before = global_batch(saved, saved_world), after = global_batch(current, world);
  if (before == after) return {};
  const std::string change =
      format("the global batch changes from {} sequences per step ({}) to {} ({})", before,
             batch_text(saved, saved_world), after, batch_text(current, world));
  if (current.global_batch_size == after) {  // asked for explicitly (validated against the rest)
    return {format(
        "resume: {} with {} instead of {}, as train.global_batch_size = {} asks. The schedule "
        "counts steps: every remaining step reads {} sequences instead of {}, so the run ends "
        "at train.steps {} having seen a different number of tokens",
        change, ranks_text(world), ranks_text(saved_world), after, after, before, current.steps)};
  }
  throw Error(format(
      "cannot resume {} with {}: it was written by {}, and {}. Resharding keeps the data "
      "position and the schedule aligned only with the same global batch: {}, or accept the "
      "new batch with --set train.global_batch_size={} (the schedule counts steps, so the rest "
      "of the run then reads {} instead of {} sequences per step)",
      checkpoint, ranks_text(world), ranks_text(saved_world), change,
      keeping_setting(before, current, world), after, after, before));
}

std::string describe_loader_reshard(const data::LoaderState& saved, int64_t world) {
  const data::LoaderState now = saved.for_world_size(world);
  return format(
      "epoch {}, shard {}: {} window(s) of the shard read by {}; {} continue from there "
      "(offset {}, position {})",
      saved.epoch, saved.shard, saved.shard_windows_read(), ranks_text(saved.world_size),
      ranks_text(world), now.offset, now.position);
}

int64_t saved_world_size(const CheckpointInfo& info) {
  const data::LoaderState* loader = info.progress.loader ? &*info.progress.loader : nullptr;
  if (info.progress.mixture) loader = &info.progress.mixture->sources.front().state;
  return loader != nullptr ? std::max(loader->world_size, info.world_size) : info.world_size;
}

std::vector<std::string> describe_reshard(const CheckpointInfo& info, int64_t world, bool zero1) {
  const int64_t saved = saved_world_size(info);
  std::vector<std::string> lines;
  lines.push_back(format("resharding: the checkpoint was written by {}, this run has {}",
                         ranks_text(saved), ranks_text(world)));
  if (info.progress.loader) {
    lines.push_back("data: " + describe_loader_reshard(*info.progress.loader, world));
  }
  if (info.progress.mixture) {
    for (const data::SourcePosition& source : info.progress.mixture->sources) {
      lines.push_back(format("data source '{}': {}", source.name,
                             describe_loader_reshard(source.state, world)));
    }
  }
  const char* state = info.config.config.optim.kind == "muon" ? "Muon and AdamW" : "AdamW";
  lines.push_back(zero1 && world > 1
                      ? format("optimizer: the checkpoint's full {} state, re-partitioned into "
                               "ZeRO-1 shards over {}",
                               state, ranks_text(world))
                      : format("optimizer: the checkpoint's full {} state, on every rank", state));
  if (world > saved) {
    std::string seeds;
    for (int64_t r = saved; r < world; ++r) {
      seeds += format("{}rank {} 0x{:x}", r == saved ? "" : ", ", r,
                      derived_rank_seed(static_cast<uint64_t>(info.config.config.train.seed),
                                        info.progress.step, r));
    }
    lines.push_back(
        format("generators: {} restored; {} did not exist in that run, seeded from (train.seed {}, "
               "step {}, rank): {}",
               rank_range(0, saved - 1), rank_range(saved, world - 1),
               info.config.config.train.seed, info.progress.step, seeds));
  } else {
    lines.push_back(format("generators: {} restored; the checkpoint's states of {} are not used",
                           rank_range(0, world - 1), rank_range(world, saved - 1)));
  }
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
