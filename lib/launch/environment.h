// Where this process stands in a data-parallel job, read from the environment that torchrun,
// Slurm's srun or `cca-train --nproc-per-node` set. Torch-free (cca_launch), so the launcher and
// the config loader can use it before LibTorch starts.
#pragma once

#include <functional>
#include <string>

namespace cca::dist {

struct WorldEnvironment {
  bool distributed = false;  // false: a plain single process (no process group is created)
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // 0 when the launcher did not say (some Slurm setups)
  std::string master_addr;
  int master_port = 0;
  std::string source;  // which variables were used, for the topology line and error messages

  // "rank 1/4 (local 1/2, node 0) via torchrun variables, rendezvous 10.0.0.1:29500".
  std::string describe() const;
};

// Returns the value of an environment variable, or nullptr when unset.
using EnvLookup = std::function<const char*(const char*)>;

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun and
// cca-train's launcher), else SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE
// (srun with more than one task) with MASTER_ADDR/MASTER_PORT exported by the job script.
// Neither: a single process. Throws cca::Error naming the variable and its value for anything
// missing, malformed or inconsistent (rank >= world size, ...).
WorldEnvironment read_world_environment(const EnvLookup& lookup);
// The same with the process environment.
WorldEnvironment read_world_environment();

}  // namespace cca::dist
