// A sweep file (docs/ablations.md): a base config, overrides for every run, and named overlays
// and/or a grid over keys, expanded into one named run per variant, each in out_dir/<name>.
//
//   base: ../quickstart.yaml            # relative to the sweep file; or base_config: {...}
//   set: {train.steps: 300}             # every run
//   runs:                               # named overlays (flat dotted keys or nested maps)
//     mha: {attention.kind: mha}
//     cca: {attention.kind: cca, attention.cca.q_compression: 4}
//   grid: {attention.cca.convs: [0, 1, 2]}   # every combination (times each run, if both)
//   out_dir: runs/ablations/attention   # relative to the current directory, like run.dir
//   title: Attention variants           # the report's heading (optional)
//   tune: [optim.lr]                    # keys the report picks each treatment's best value of
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/loader.h"
#include "util/error.h"

namespace cca::sweep {

// One "key=value" override (the syntax of --set) and where it was written.
struct Override {
  std::string text;
  Origin origin;
};

struct SweepRun {
  std::string name;
  std::string dir;                   // out_dir/name: the run's run.dir
  std::vector<Override> overrides;   // in order: set, overlay, grid point, --set, run.dir
  std::vector<std::string> variant;  // what sets it apart: its overlay and grid point overrides
  std::vector<std::string> override_texts() const;
};

struct SweepSpec {
  std::string file;
  std::string title;
  std::string base_path;    // the base config file ("" with base_config)
  std::string base_config;  // the inline base_config as YAML text (for the runs' --config)
  std::vector<Override> base_overrides;  // the same as overrides (for load_run)
  std::string out_dir;
  std::vector<std::string> tune_keys;  // default: optim.lr (report.h)
  std::vector<SweepRun> runs;          // in file order: runs, each crossed with the grid in order
};

// Reads and expands a sweep file; `cli_overrides` ("key=value", from --set) apply to every run,
// after the file's own. Throws ConfigError naming the file, line and key for every problem in
// the sweep file itself (its config keys are checked by load_run / load_all).
SweepSpec read_sweep_spec(const std::string& path, const std::vector<std::string>& cli_overrides);
// The same from text; `name` stands for the file (and its folder anchors `base:`).
SweepSpec parse_sweep_spec(const std::string& yaml, const std::string& name,
                           const std::vector<std::string>& cli_overrides);

// The runs named in `only` (all when empty), in file order. Unknown names are an error that lists
// the known ones.
std::vector<SweepRun> select_runs(const SweepSpec& spec, const std::vector<std::string>& only);

// The run's config: the base plus its overrides, validated for `world_size` ranks. Throws
// ConfigError naming the sweep file and the run, with the sweep file's line for keys set there.
LoadedConfig load_run(const SweepSpec& spec, const SweepRun& run, int world_size);
// Every run's config; all problems of all runs are reported together (each once, naming the
// runs it affects) before anything starts.
std::vector<LoadedConfig> load_all(const SweepSpec& spec, const std::vector<SweepRun>& runs,
                                   int world_size);

}  // namespace cca::sweep
