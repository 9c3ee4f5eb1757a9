// What every app does before its real work: turn exceptions into exit codes, load the config,
// set up logging and show the derived values.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "util/error.h"

namespace cca {

enum ExitCode { kExitOk = 0, kExitFailure = 1, kExitUsage = 2 };

// A command line the app cannot act on (a required flag left out): exit status kExitUsage, like
// ConfigError and CLI11's own parse errors (apps/cli.h).
class UsageError : public Error {
 public:
  using Error::Error;
};

// Runs `body`, printing any cca::Error (or other exception) as "error: ..." on stderr and
// returning kExitUsage (2) for configuration and usage errors, kExitFailure (1) for the rest. No
// exception escapes.
int guarded_main(const std::function<int()>& body);

struct ConfigRequest {
  std::string path;                    // --config
  std::vector<std::string> overrides;  // --set
  std::string log_level;               // --log-level, overrides logging.level when set
  int world_size = 0;                  // ranks to validate the batch for; 0 = from the environment
};

// World size and rank as announced (WORLD_SIZE else SLURM_NTASKS; RANK else SLURM_PROCID), else
// 1 and 0: for validating and describing the config (a dry run may set WORLD_SIZE alone). The
// full, cross-checked reading a data-parallel run joins with is dist::read_world_environment.
int world_size_from_environment();
int rank_from_environment();

// Loads and validates the config (throws ConfigError) and initialises logging from it.
LoadedConfig load_run_config(const ConfigRequest& request);
// When logging.per_rank_files is on, every rank also logs to run.dir/logs/rank<N>.log (created,
// appended on resume). Call once the run folder may be written.
void attach_rank_log_file(const Config& config, const std::string& log_level_override);
// Logs the config source and the derived values (parameters, FLOPs, KV cache, batch).
void log_run_summary(const LoadedConfig& loaded, int world_size);

}  // namespace cca
