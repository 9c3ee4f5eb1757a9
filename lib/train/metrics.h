// What a training run reports: the console line every logging.every steps and
// run.dir/metrics.jsonl (one JSON object per line, documented in docs/training.md); the step bar
// between those lines is util/progress_bar.h. Torch-free: the trainer hands over plain numbers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/json.h"
#include "util/tensorboard_records.h"

namespace cca {

struct StepMetrics {
  int64_t step = 0;  // optimizer steps completed
  int64_t total_steps = 0;
  double loss = 0;  // mean training cross-entropy over the steps since the previous line
  double lr = 0;
  double grad_norm = 0;  // of the last step, before clipping
  double tokens_per_s = 0;
  std::optional<double> mfu;  // fraction; nullopt when the device peak is unknown
  double memory_gib = 0;      // peak device memory (CUDA) or peak RSS (CPU) so far
  double eta_s = 0;
  int64_t skipped_steps = 0;  // total non-finite steps dropped so far
  int64_t tokens_seen = 0;
  double time_s = 0;  // training wall time so far, across resumes (TrainProgress::train_seconds)
  std::map<std::string, double> extra;  // MoE load and CCA temperature statistics
  std::string stage;                    // the data.stages entry of the last step; "" without
  int64_t stage_seq_len = 0;            // with a stage: its sequence length
  int64_t stage_tokens_per_step = 0;    // with a stage: its tokens per step over all ranks
  std::vector<std::pair<std::string, int64_t>> source_tokens;  // a mixture's tokens per source
};

// One named validation set's part of an evaluation (data.val as a list).
struct EvalSetMetrics {
  std::string name;
  double val_loss = 0;
  int64_t val_tokens = 0;
};

struct EvalMetrics {
  int64_t step = 0;
  double val_loss = 0;
  int64_t val_tokens = 0;
  double seconds = 0;
  int64_t tokens_seen = 0;
  double time_s = 0;                 // training wall time at this evaluation
  std::vector<EvalSetMetrics> sets;  // each named set; val_loss is their token-weighted mean
};

// "step   120/300 | loss 4.1234 | lr 1.80e-03 | gnorm 0.812 | 41.2k tok/s | MFU 12.3% | mem 1.2
// GiB | ETA 1:05"; MFU is left out when unknown, skipped steps shown when there are any.
std::string render_step_line(const StepMetrics& m);
// "eval step 100: val loss 4.0123, ppl 55.3 (65536 tokens, 0.8 s)", then for named sets
// "; web 4.1000, code 3.9000". A mixture's step line ends with " | stage <name>" under stages;
// its records carry "stage", "seq_len", "tokens_per_step" and "tokens/<source>", an eval record
// "val_loss/<set>".
std::string render_eval_line(const EvalMetrics& m);
Json step_record(const StepMetrics& m);
Json eval_record(const EvalMetrics& m);

// The TensorBoard scalars of a metrics.jsonl record (logging.tensorboard): a `train` record's
// numbers but its step as train/<field> (train/loss, train/lr, train/mfu, train/moe_load_max, ...),
// an `eval` record's val_loss and val_ppl as eval/loss and eval/ppl, val_loss/<set> as
// eval/loss/<set>; other kinds have none.
std::vector<tensorboard::Scalar> tensorboard_scalars(const Json& record);

// Appends JSON lines to a file, flushed per line so a crash loses nothing already logged.
class MetricsFile {
 public:
  MetricsFile() = default;
  explicit MetricsFile(const std::string& path);  // creates or appends; throws cca::Error
  ~MetricsFile();
  MetricsFile(const MetricsFile&) = delete;
  MetricsFile& operator=(const MetricsFile&) = delete;
  void write(const Json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace cca
