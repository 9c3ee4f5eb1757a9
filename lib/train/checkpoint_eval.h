// `cca-train eval RUN_DIR`: the validation loss of one of a run's checkpoints on a chosen device
// and precision, next to the val_loss its metrics.jsonl recorded at that step (docs/training.md,
// "Evaluating a checkpoint"). Read-only: nothing is written into the run folder.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "train/metrics.h"
#include "util/json.h"

namespace cca {

struct CheckpointEvalRequest {
  std::string run_dir;
  std::string checkpoint = "latest";   // a step number, or the newest complete checkpoint
  std::string device;                  // cpu | cuda; "" = the run's train.device
  std::string precision;               // fp32 | bf16; "" = the run's train.precision
  std::optional<int64_t> val_tokens;   // instead of the run's data.val_tokens
  std::vector<std::string> overrides;  // "key=value" on top of the run's config.yaml
};

struct CheckpointEvalResult {
  std::string checkpoint;  // the folder evaluated
  int64_t step = 0;
  std::string device;                // as describe_device() says it
  std::string precision;             // "fp32" or "bf16"
  std::vector<EvalSetMetrics> sets;  // every set; name "" for data.val as one dataset
  double val_loss = 0;               // the sets' token-weighted mean
  int64_t val_tokens = 0;
  std::optional<double> recorded_val_loss;            // metrics.jsonl's eval record at `step`
  std::map<std::string, double> recorded_set_losses;  // its val_loss/<name>
  double seconds = 0;
};

// Throws cca::Error for a missing run folder or config, a step with no complete checkpoint (the
// message lists those there), a corrupt checkpoint (naming the damaged file), an unavailable
// device, and a config without validation data.
CheckpointEvalResult evaluate_checkpoint(const CheckpointEvalRequest& request);

// The console report: a line per set, the mean, the recorded value and the difference.
std::string render_checkpoint_eval(const CheckpointEvalResult& result);
Json checkpoint_eval_json(const CheckpointEvalResult& result);
// Throws cca::Error for a FILE inside `run_dir` (checked before evaluating; creates FILE's folder).
void check_eval_json_destination(const std::string& file, const std::string& run_dir);
// `--json FILE`: writes the JSON (creating FILE's folder). Refuses a FILE inside `run_dir`, which
// eval leaves untouched.
void write_checkpoint_eval_json(const CheckpointEvalResult& result, const std::string& file,
                                const std::string& run_dir);

}  // namespace cca
