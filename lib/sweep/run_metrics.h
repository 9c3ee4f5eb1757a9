// Reads a run's metrics.jsonl (written by lib/train/metrics.h; fields in docs/training.md) into
// per-step records, resolving resumes: a `start` or `resume` record at step k drops what earlier
// launches logged after step k (that stretch was rolled back to the checkpoint), and for a step
// logged twice the later record counts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cca::sweep {

struct TrainRecord {
  int64_t step = 0;
  double loss = 0;
  double tokens_per_s = 0;
  double memory_gib = 0;
  std::optional<double> mfu;
  std::optional<int64_t> tokens_seen;
  std::optional<double> time_s;  // training wall time since the run's first launch
};

struct EvalRecord {
  int64_t step = 0;
  double val_loss = 0;
  std::optional<int64_t> tokens_seen;
  std::optional<double> time_s;
  std::map<std::string, double> set_losses;  // val_loss/<name> of named validation sets
};

struct SummaryRecord {
  int64_t step = 0;
  double tokens_per_s = 0;
  double peak_memory_gib = 0;
  bool stopped_early = false;
  std::optional<double> val_loss;
  std::optional<double> mfu;
  std::optional<int64_t> tokens_seen;
  std::optional<double> time_s;
};

// The first logged stretch of a launch carries its warm-up (CUDA context, kernel selection,
// allocator growth): the seconds it took beyond the launch's typical per-step time.
struct Warmup {
  int64_t step = 0;  // the launch's first train record
  double seconds = 0;
};

struct RunMetrics {
  std::string path;
  int launches = 0;                    // start and resume records
  std::vector<TrainRecord> train;      // one per step, sorted by step
  std::vector<EvalRecord> eval;        // one per step, sorted by step
  std::vector<SummaryRecord> summary;  // one per launch that ended normally, in file order
  bool last_launch_ended = false;      // the latest launch wrote its summary
  std::vector<Warmup> warmups;         // one per launch that logged enough to tell
};

// The warm-up seconds of every launch whose first train record is at or before `step`: what
// time_s minus this leaves is training time without start-up, comparable between runs.
double warmup_through(const RunMetrics& metrics, int64_t step);

// Throws cca::Error naming `path` and the line for unreadable files, malformed JSON and missing
// or mistyped fields. Blank lines and unknown record kinds are skipped.
RunMetrics read_run_metrics(const std::string& path);

// A run is finished when a summary says it ran to `steps` without stopping early.
bool is_finished(const RunMetrics& metrics, int64_t steps);

// What a report shows for one run, from its records.
struct RunOutcome {
  int64_t step = 0;  // the last step logged
  std::optional<int64_t> tokens_seen;
  std::optional<double> time_s;          // time_s less every launch's warm-up (warmup_through)
  double warmup_s = 0;                   // what was left out
  std::optional<EvalRecord> final_eval;  // the evaluation at the last evaluated step
  std::optional<EvalRecord> best_eval;   // the lowest validation loss (earliest on ties)
  // From the last summary (the latest launch's own measurement, which leaves out the first
  // step, evaluations and checkpoints); from the last train record while there is none.
  std::optional<double> tokens_per_s;
  std::optional<double> mfu;
  std::optional<double> peak_memory_gib;  // the highest over all launches
  bool from_summary = false;              // whether tokens_per_s/mfu came from a summary
};

RunOutcome summarize(const RunMetrics& metrics);

}  // namespace cca::sweep
