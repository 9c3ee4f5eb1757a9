// One finished or unfinished run as a report sees it: its resolved config.yaml (written by the
// trainer at every launch), the model accounting derived from it (lib/config/accounting.h) and
// its metrics.jsonl.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/derived.h"
#include "config/loader.h"
#include "sweep/run_metrics.h"

namespace cca::sweep {

// What reports and sweep plans show about a model, from lib/config/accounting.h.
struct ModelNumbers {
  DerivedValues derived;                 // parameters, training FLOPs, geometry
  int64_t kv_bytes_per_token = 0;        // bf16, all layers (derived.h's convention)
  double attention_flops_per_token = 0;  // forward, all layers, causal at train.seq_len
};

// `world_size`: the ranks a run has (only tokens per step depends on it).
ModelNumbers model_numbers(const Config& config, int world_size = 1);

struct RunFolder {
  std::string dir;
  std::string name;  // run.name, else the folder's name
  LoadedConfig loaded;
  ModelNumbers model;
  RunMetrics metrics;
  RunOutcome outcome;
  bool finished = false;  // ran to train.steps (run_metrics.h's is_finished)
};

// Throws cca::Error naming the folder when it lacks metrics.jsonl or config.yaml, and the file
// (and line) when one of them is malformed.
RunFolder load_run_folder(const std::string& dir);

// The run folders that `paths` name: a folder holding metrics.jsonl is a run; a folder without
// one that holds run folders (a sweep's out_dir) stands for them, sorted by name. Anything else
// is an error naming the path.
std::vector<std::string> expand_run_dirs(const std::vector<std::string>& paths);

}  // namespace cca::sweep
