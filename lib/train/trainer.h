// The training loop: a config becomes a model, loader, optimizer and schedule; every step pulls
// grad_accum micro-batches, runs forward/backward under the chosen precision, clips, updates,
// and reports; evaluation and checkpoints happen on their cadence (docs/architecture.md).
// The model stays single-device code, and so does the loop: it always holds a dist::Parallelism
// (lib/dist: one process, or data parallelism passed in) and calls it at the points where ranks
// must agree (docs/distributed.md).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "data/loader.h"
#include "data/validation_set.h"
#include "model/transformer.h"
#include "ops/precision.h"
#include "optim/optimizer.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/phase_clock.h"
#include "train/reshard.h"
#include "train/schedule.h"
#include "train/skip_streak.h"
#include "train/step_graph.h"
#include "util/progress_bar.h"
#include "util/tensorboard_writer.h"

namespace cca {

namespace dist {
class Parallelism;
}  // namespace dist

struct TrainOptions {
  std::string resume;                   // "" (fresh run), "auto", or a checkpoint/run folder
  std::optional<int64_t> stop_at_step;  // checkpoint and return after this step (exit 0)
  bool handle_signals = true;           // SIGTERM/SIGINT: checkpoint and return
  std::chrono::steady_clock::time_point process_start = std::chrono::steady_clock::now();
  std::shared_ptr<dist::Parallelism> parallel;  // null: a single process
};

struct TrainResult {
  int64_t final_step = 0;
  bool stopped_early = false;  // by a signal or stop_at_step
  std::optional<double> final_val_loss;
  double tokens_per_s = 0;  // over the steps of this process, the first one excluded
  std::optional<double> mfu;
  double peak_memory_gib = 0;
  std::string last_checkpoint;
  std::vector<std::pair<std::string, double>> phase_seconds;  // start-up phases, training, ...
  // Input tokens drawn from each source of a mixture over the whole run (empty for one dataset).
  std::vector<std::pair<std::string, int64_t>> source_tokens;
};

class Trainer {
 public:
  Trainer(LoadedConfig loaded, TrainOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainResult run();
  // For cca-bench train: `steps` optimizer steps and nothing else (no logs, evaluation or
  // checkpoints). With a clock, each phase of each step is timed (the device is synchronised at
  // every phase boundary).
  void run_bare_steps(int64_t steps, PhaseClock* clock = nullptr);
  // Start-up phases so far (seconds), in order.
  const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }
  double flops_per_token() const { return flops_per_token_; }
  std::optional<double> peak_flops() const { return peak_flops_; }
  // Tokens per optimizer step over all ranks at train.seq_len (a stage may have its own:
  // tokens_per_step_at).
  int64_t tokens_per_step() const { return tokens_per_step_; }
  int64_t tokens_per_step_at(int64_t step) const;
  at::Device device() const { return device_; }
  // train.cuda_graphs: whether the micro-batch graph has been captured (and replays).
  bool cuda_graph_captured() const { return graph_ && graph_->captured(); }
  TransformerImpl& model() { return *model_; }
  const TrainProgress& progress() const { return progress_; }

 private:
  // lib/train/trainer_data.cpp: the datasets, the loader (one dataset or a mixture with its
  // stages), the validation sets and what is logged about them.
  void build_data();
  void log_mixture() const;
  void check_resumed_data_kind() const;
  void check_validation_separator(const data::ShardSet& val) const;
  void build_loader(const TrainProgress* resumed);
  // The index of the data.stages entry in force at `step` (0 without stages), and its name ("").
  int64_t stage_at_step(int64_t step) const;
  std::string stage_name(int64_t step) const;
  // Logs the stage the next step is in, when it is another one than before.
  void announce_stage();
  std::vector<std::pair<std::string, int64_t>> source_tokens() const;
  void log_source_tokens(const std::vector<std::pair<std::string, int64_t>>& tokens) const;
  // The validation loss summed over a set's valid targets (all ranks), and their count.
  std::pair<double, int64_t> validation_loss_sum(const data::ValidationSet& set);
  void build_model();
  void warm_start();
  void save_launch_config() const;
  void locate_resume();
  void resume_if_requested();
  void build_step_graph();
  void train_step(PhaseClock* clock = nullptr);
  at::Tensor eager_micro_batch(const at::Tensor& inputs, const at::Tensor& targets, int64_t valid,
                               int64_t step_valid, PhaseClock* clock, const Documents* documents);
  // The batch's documents on the device with data.document_masking, else none.
  std::optional<Documents> documents_of(const data::Batch& batch) const;
  // A micro-batch as this rank trains on it (train_step.cpp).
  struct RankBatch {
    data::Batch batch;
    std::optional<Documents> documents;
  };
  RankBatch rank_batch(data::Batch batch) const;
  StepReport update(const at::Tensor& step_loss, int64_t step);
  double evaluate();
  void log_fp8_layers() const;
  void log_step(double seconds, int64_t steps);
  void open_tensorboard();
  // A metrics.jsonl record, and its scalars to TensorBoard (logging.tensorboard); rank 0 only.
  void write_record(const Json& record);
  void check_halt();
  void check_skip_streak();
  // The checkpoint's folder, or "" when the write failed and the run survives it
  // (checkpoint.max_write_failures; lib/train/trainer_checkpoint.cpp).
  std::string write_checkpoint();
  std::map<std::string, double> layer_statistics() const;
  void phase_done(const std::string& name);
  // Wall time spent in training steps, across resumes (eval and checkpoint time left out).
  double training_time() const;
  int rank() const;
  int world_size() const;
  // The data-parallel replicas (world / distributed.context_parallel) and this rank's.
  int data_rank() const;
  int data_world_size() const;
  bool is_main() const { return rank() == 0; }
  void check_world_size(const CheckpointInfo& info) const;
  // This run's ranks and distributed.context_parallel.
  ParallelLayout layout() const;

  LoadedConfig loaded_;
  const Config& config_;
  TrainOptions options_;
  std::shared_ptr<dist::Parallelism> parallelism_;  // options_.parallel, or one process
  at::Device device_;
  Precision precision_;
  std::shared_ptr<TransformerImpl> model_;
  std::unique_ptr<Optimizer> optimizer_;  // distributed.zero1: over this rank's shard only
  std::unique_ptr<LrSchedule> schedule_;
  std::unique_ptr<MicroBatchGraph> graph_;              // train.cuda_graphs
  std::shared_ptr<const data::ShardSet> train_shards_;  // one dataset
  std::vector<data::MixtureSource> train_sources_;      // a mixture (data.train as a list)
  data::MixtureOptions mixture_options_;
  std::vector<int64_t> stage_starts_;           // data.stages' first steps
  std::vector<int64_t> stage_tokens_per_step_;  // and their tokens per step
  int64_t announced_stage_ = -1;
  std::optional<DocumentSeparator> document_separator_;  // data.document_masking
  std::optional<CheckpointInfo> resume_info_;  // what --resume found, checked before data/model
  std::unique_ptr<data::TrainLoader> loader_;
  struct NamedValidation {
    std::string name;  // "" for data.val as one dataset
    std::unique_ptr<data::ValidationSet> set;
  };
  std::vector<NamedValidation> validation_sets_;
  std::unique_ptr<MetricsFile> metrics_;
  std::unique_ptr<tensorboard::EventFileWriter> tensorboard_;  // logging.tensorboard, rank 0
  std::unique_ptr<ProgressBar> progress_bar_;
  TrainProgress progress_;

  double flops_per_token_ = 0;
  std::optional<double> peak_flops_;
  bool mfu_warned_ = false;
  int64_t tokens_per_step_ = 0;
  double last_lr_ = 0;

  // Device-side running values, read only when logging (no host sync per step).
  at::Tensor interval_loss_sum_, interval_loss_steps_, last_grad_norm_, skipped_total_;
  at::Tensor halted_, first_bad_step_;
  std::unique_ptr<SkipStreak> skip_streak_;  // train.max_consecutive_skips
  int64_t skipped_at_start_ = 0;
  int64_t write_failures_ = 0;     // checkpoint writes failed in a row
  std::string newest_checkpoint_;  // written by this run, or resumed from

  std::chrono::steady_clock::time_point phase_start_;
  std::vector<std::pair<std::string, double>> phases_;
  double eval_seconds_ = 0, checkpoint_seconds_ = 0;
  std::chrono::steady_clock::time_point training_start_;
  double train_seconds_at_start_ = 0;  // progress_.train_seconds when this launch began training
};

}  // namespace cca
