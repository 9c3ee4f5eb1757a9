// `cca-train sweep`: validates every run of a sweep file up front, then trains the unfinished
// ones one after another, each as a child cca-train process in out_dir/<name>, and finally
// writes the report for out_dir. Re-running the same command continues a stopped or killed
// sweep: finished runs are skipped, runs with a checkpoint resume (--resume auto), and a run
// without one starts again in an emptied folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/loader.h"
#include "sweep/sweep_spec.h"

namespace cca::sweep {

struct SweepRequest {
  std::string file;
  std::vector<std::string> overrides;  // --set, for every run
  std::vector<std::string> only;       // run names; empty = all
  bool dry_run = false;
  int nproc_per_node = 0;  // > 0: each run is data parallel over this many local ranks
  std::string log_level;   // passed on to the runs
};

enum class RunState { fresh, resume, finished };

struct PlannedRun {
  SweepRun run;
  LoadedConfig loaded;
  RunState state = RunState::fresh;
  int64_t resume_step = 0;  // the newest complete checkpoint's step, for RunState::resume
};

// Each run's state from its folder: finished (metrics.jsonl's summary reached train.steps),
// resume (it has a complete checkpoint) or fresh.
std::vector<PlannedRun> plan_runs(const std::vector<SweepRun>& runs,
                                  const std::vector<LoadedConfig>& configs);

// The cca-train arguments that train `planned` (the base config file, the run's overrides as
// --set, --resume auto when it resumes). `base_file` replaces spec.base_path for an inline
// base_config.
std::vector<std::string> run_arguments(const PlannedRun& planned, const std::string& base_file,
                                       const SweepRequest& request);

// The whole command. Returns the exit status: 0 when every selected run finished or the sweep
// was stopped by a signal (its runs checkpointed; re-run to continue), a failed run's status
// otherwise.
int run_sweep(const SweepRequest& request);

}  // namespace cca::sweep
