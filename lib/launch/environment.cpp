#include "launch/environment.h"

#include <cstdlib>
#include <optional>

#include "util/error.h"
#include "util/format.h"

namespace cca::dist {
namespace {

class Reader {
 public:
  explicit Reader(const EnvLookup& lookup) : lookup_(lookup) {}

  bool has(const char* name) const {
    const char* value = lookup_(name);
    return value != nullptr && *value != '\0';
  }
  std::string text(const char* name) const { return has(name) ? lookup_(name) : ""; }

  // A non-negative integer, nullopt when unset. `leading_only` accepts Slurm's "4(x2)" forms.
  std::optional<int> integer(const char* name, bool leading_only = false) const {
    if (!has(name)) return std::nullopt;
    const std::string value = lookup_(name);
    char* end = nullptr;
    const long parsed = std::strtol(value.c_str(), &end, 10);
    const bool complete = end != value.c_str() && (leading_only || *end == '\0');
    if (!complete || parsed < 0 || parsed > (1L << 30)) {
      throw Error(
          format("environment variable {}='{}' is not a non-negative integer", name, value));
    }
    return static_cast<int>(parsed);
  }
  int required(const char* name, const std::string& why) const {
    if (auto value = integer(name)) return *value;
    throw Error(format("environment variable {} is not set; {}", name, why));
  }

 private:
  const EnvLookup& lookup_;
};

void read_rendezvous(const Reader& env, WorldEnvironment& world, const std::string& hint) {
  if (!env.has("MASTER_ADDR")) {
    throw Error("environment variable MASTER_ADDR is not set (" + world.source +
                " announce a data-parallel job of " + std::to_string(world.world_size) +
                " ranks); it must name the host of rank 0" + hint);
  }
  world.master_addr = env.text("MASTER_ADDR");
  const std::optional<int> port = env.integer("MASTER_PORT");
  if (!port) {
    throw Error("environment variable MASTER_PORT is not set; it must be a free TCP port on " +
                world.master_addr + " (1-65535)" + hint);
  }
  if (*port < 1 || *port > 65535) {
    throw Error(format("environment variable MASTER_PORT={} is not a TCP port (1-65535)", *port));
  }
  world.master_port = *port;
}

void check_consistency(const WorldEnvironment& w, const char* rank_name, const char* world_name,
                       const char* local_rank_name, const char* local_world_name) {
  if (w.world_size < 1)
    throw Error(format("environment variable {}=0: need at least 1", world_name));
  if (w.rank >= w.world_size) {
    throw Error(format("environment variable {}={} is not below {}={}", rank_name, w.rank,
                       world_name, w.world_size));
  }
  if (w.local_world_size == 0) return;  // not announced: nothing to cross-check
  if (w.local_world_size > w.world_size) {
    throw Error(format("environment variable {}={} is larger than {}={}", local_world_name,
                       w.local_world_size, world_name, w.world_size));
  }
  if (w.local_rank >= w.local_world_size) {
    throw Error(format("environment variable {}={} is not below {}={}", local_rank_name,
                       w.local_rank, local_world_name, w.local_world_size));
  }
}

WorldEnvironment from_torchrun(const Reader& env) {
  WorldEnvironment w;
  w.distributed = true;
  w.source = "torchrun variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE)";
  const std::string why =
      "torchrun and cca-train --nproc-per-node set RANK and WORLD_SIZE together";
  w.rank = env.required("RANK", why);
  w.world_size = env.required("WORLD_SIZE", why);
  // A hand-made launch may leave out the local values: one node is assumed then.
  w.local_rank = env.integer("LOCAL_RANK").value_or(w.rank);
  w.local_world_size = env.integer("LOCAL_WORLD_SIZE").value_or(w.world_size);
  check_consistency(w, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
  read_rendezvous(env, w, "");
  return w;
}

WorldEnvironment from_slurm(const Reader& env) {
  WorldEnvironment w;
  w.distributed = true;
  w.source = "Slurm variables (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID)";
  w.rank = *env.integer("SLURM_PROCID");
  w.world_size = *env.integer("SLURM_NTASKS");
  w.local_rank = env.required("SLURM_LOCALID", "srun sets it for every task; launch with srun");
  w.local_world_size = env.integer("SLURM_NTASKS_PER_NODE", /*leading_only=*/true).value_or(0);
  check_consistency(w, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE");
  read_rendezvous(env, w,
                  "; in the job script: export MASTER_ADDR=$(scontrol show hostnames "
                  "\"$SLURM_JOB_NODELIST\" | head -n 1) MASTER_PORT=29500");
  return w;
}

}  // namespace

std::string WorldEnvironment::describe() const {
  if (!distributed) return "single process";
  const std::string local_size = local_world_size > 0 ? std::to_string(local_world_size) : "?";
  const std::string node =
      local_world_size > 0 ? format(", node {}", rank / local_world_size) : std::string();
  return format("rank {}/{} (local {}/{}{}) via {}, rendezvous {}:{}", rank, world_size, local_rank,
                local_size, node, source, master_addr, master_port);
}

WorldEnvironment read_world_environment(const EnvLookup& lookup) {
  const Reader env(lookup);
  if (env.has("RANK") || env.has("WORLD_SIZE")) return from_torchrun(env);
  // Slurm sets these in every allocation, even for a plain single process in an salloc shell:
  // only a multi-task srun step is a data-parallel job.
  if (env.has("SLURM_PROCID") && env.has("SLURM_NTASKS") && env.integer("SLURM_NTASKS") > 1) {
    return from_slurm(env);
  }
  WorldEnvironment single;
  single.source = "no launcher variables";
  return single;
}

WorldEnvironment read_world_environment() {
  return read_world_environment([](const char* name) { return std::getenv(name); });
}

}  // namespace cca::dist
