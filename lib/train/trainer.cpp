#include "train/trainer.h"
#include "config/data_sources.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "app/startup.h"
#include "checkpoint/checkpoint_store.h"
#include "config/accounting.h"
#include "data/dataset.h"
#include "dist/parallelism.h"
#include "dist/single_process.h"
#include "ops/device.h"
#include "ops/fp8_linear.h"
#include "train/device_batch.h"
#include "train/mfu.h"
#include "train/reshard.h"
#include "train/signals.h"
#include "train/warm_start.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"

namespace cca {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string new_run_id() {
  std::random_device entropy;
  const uint64_t high = entropy(), low = entropy();
  const uint64_t now = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  return format("{:x}", (high << 32 | low) ^ now);
}

std::string checkpoint_root(const Config& config) {
  return files::join(config.run.dir, "checkpoints");
}

std::shared_ptr<dist::Parallelism> given_or_single_process(std::shared_ptr<dist::Parallelism> given,
                                                           const DistributedConfig& config) {
  if (given) return given;
  return std::make_shared<dist::SingleProcess>(config);
}

}  // namespace

Trainer::Trainer(LoadedConfig loaded, TrainOptions options)
    : loaded_(std::move(loaded)),
      config_(loaded_.config),
      options_(std::move(options)),
      parallelism_(given_or_single_process(options_.parallel, config_.distributed)),
      device_(resolve_device(config_.train.device, parallelism_->local_rank())),
      precision_(resolve_precision(config_.train.precision, device_, config_.train.fp8.scaling)),
      phase_start_(Clock::now()) {
  phases_.emplace_back("start-up before the trainer", seconds_since(options_.process_start));
  phase_done("device");
  files::make_directories(config_.run.dir);
  locate_resume();  // before the slow phases: a wrong --resume or config fails at once
  build_data();
  // After the data checks (missing shards, sources of another tokenizer): a launch refused there
  // leaves the run folder's config.yaml as the last good launch wrote it.
  if (rank() == 0) save_launch_config();
  build_model();
  resume_if_requested();
}

Trainer::~Trainer() = default;

int Trainer::rank() const {
  return parallelism_->rank();
}
int Trainer::world_size() const {
  return parallelism_->world_size();
}
int Trainer::data_rank() const {
  return parallelism_->data_rank();
}
int Trainer::data_world_size() const {
  return parallelism_->data_world_size();
}

double Trainer::training_time() const {
  return train_seconds_at_start_ + seconds_since(training_start_) - eval_seconds_ -
         checkpoint_seconds_;
}

void Trainer::phase_done(const std::string& name) {
  phases_.emplace_back(name, seconds_since(phase_start_));
  phase_start_ = Clock::now();
}

void Trainer::build_model() {
  at::manual_seed(static_cast<uint64_t>(config_.train.seed));
  // Initialised on the CPU, then moved: the same seed gives the same weights on every device.
  model_ = std::make_shared<TransformerImpl>(config_);
  if (!config_.init.from.empty()) warm_start();
  model_->set_activation_checkpointing(config_.train.activation_checkpointing);
  model_->to(device_);
  model_->train();
  std::vector<NamedTensor> parameters;
  for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
    parameters.push_back({item.key(), item.value()});
  }
  optimizer_ = parallelism_->make_optimizer(std::move(parameters), config_.optim);
  schedule_ = std::make_unique<LrSchedule>(config_.schedule, config_.optim.lr, config_.train.steps);
  if (config_.train.cuda_graphs) build_step_graph();
  flops_per_token_ = training_flops_per_token(config_);
  if (config_.logging.peak_tflops > 0) {
    peak_flops_ = config_.logging.peak_tflops * 1e12;
  } else if (device_.is_cuda()) {
    peak_flops_ = peak_flops_for_device(device_name(device_));
  }
  const auto zeros = [&](at::ScalarType dtype) {
    return at::zeros({}, at::TensorOptions(device_).dtype(dtype));
  };
  interval_loss_sum_ = zeros(at::kFloat);
  interval_loss_steps_ = zeros(at::kFloat);
  last_grad_norm_ = zeros(at::kFloat);
  skipped_total_ = zeros(at::kFloat);
  halted_ = zeros(at::kFloat);
  first_bad_step_ = zeros(at::kLong) - 1;
  const bool skipping = config_.train.nonfinite == "skip";
  skip_streak_ =
      std::make_unique<SkipStreak>(device_, skipping ? config_.train.max_consecutive_skips : 0);
  log::info("model       {} parameters on {}, {}; {}", count_model(config_).total_params,
            describe_device(device_), precision_.name(), optimizer_->describe());
  phase_done("model + optimizer");
}

// init.from: weights from another run or a Hugging Face folder, before step 0. A resumed run has
// its own weights (and a checkpoint that already started from these).
void Trainer::warm_start() {
  if (resume_info_) {
    log::info("init        init.from '{}' ignored: resuming from {}", config_.init.from,
              resume_info_->path);
    return;
  }
  load_initial_weights(config_.init.from, *model_);
  log::info("init        weights from {} (fresh optimizer, step 0)", config_.init.from);
}

// run.dir/config.yaml: the resolved config of the latest launch, with where each value came from
// (each checkpoint keeps its own copy). Written beside and renamed, so it is never half there.
void Trainer::save_launch_config() const {
  const std::string path = files::join(config_.run.dir, "config.yaml");
  const std::string staging = path + ".tmp";
  std::ofstream out(staging, std::ios::binary | std::ios::trunc);
  out << render_config_yaml(loaded_, /*with_origins=*/true);
  out.close();
  if (!out) throw Error("cannot write '" + staging + "'");
  files::rename_path(staging, path);
}

void Trainer::locate_resume() {
  const std::string root = checkpoint_root(config_);
  std::optional<std::string> path;
  if (!options_.resume.empty()) {
    path = find_resume_checkpoint(options_.resume, root, "--resume", is_main());
    if (!path) log::info("resume      no intact checkpoint in {}: starting fresh", root);
  } else if (auto existing = checkpoint_store::newest_complete(root, nullptr)) {
    throw Error("run.dir '" + config_.run.dir + "' already holds checkpoint '" + existing->path +
                "'; continue it with --resume auto, or start a new run elsewhere with --set "
                "run.dir=<new folder>");
  }
  if (!path) return;
  resume_info_ = read_checkpoint_info(*path);
  const std::vector<std::string> changes =
      compare_configs_for_resume(resume_info_->config.config, config_);
  for (const std::string& change : changes)
    log::warn("resume: changed since the checkpoint: {}", change);
  check_world_size(*resume_info_);
}

void Trainer::resume_if_requested() {
  if (resume_info_) {
    const CheckpointInfo& info = *resume_info_;
    restore_checkpoint(info, *model_, *optimizer_, rank());
    progress_ = info.progress;
    skipped_at_start_ = progress_.skipped_steps;
    newest_checkpoint_ = info.path;
    log::info("resume      {} (step {}, {} tokens seen, run id {})", info.path, progress_.step,
              progress_.tokens_seen, progress_.run_id);
    if (saved_layout(info) != layout()) {
      for (const std::string& line : describe_reshard(info, layout(), config_.distributed.zero1))
        log::info("resume      {}", line);
    }
  } else {
    progress_.run_id = new_run_id();
  }
  build_loader(resume_info_ ? &resume_info_->progress : nullptr);
  progress_.run_id =
      parallelism_->start(config_, progress_.step, progress_.run_id, *model_, *optimizer_);
  phase_done(resume_info_ ? "resume" : "loader");
}

// Another world size or context-parallel layout reshards (train/reshard.h): the weights and the
// full optimizer state are in the checkpoint once, the loader state (counted in data-parallel
// replicas) reshards itself and new ranks get derived generator seeds. Checked here, before the
// slow phases: the global batch must stay (or be asked for).
void Trainer::check_world_size(const CheckpointInfo& info) const {
  for (const std::string& warning : check_resume_layout(
           info.path, info.config.config.train, saved_layout(info), config_.train, layout())) {
    log::warn("{}", warning);
  }
}

ParallelLayout Trainer::layout() const {
  return {world_size(), std::max<int64_t>(config_.distributed.context_parallel, 1)};
}

void Trainer::check_halt() {
  if (config_.train.nonfinite != "halt" || halted_.item<float>() == 0.0f) return;
  throw Error(format(
      "non-finite loss or gradient at step {} (rank {}); train.nonfinite is halt, so training "
      "stops. That step and every later one were not applied and no checkpoint was written after "
      "it: the newest checkpoint in {} is intact. Lower optim.lr or raise schedule.warmup_steps, "
      "or set train.nonfinite: skip to drop such steps",
      first_bad_step_.item<int64_t>(), rank_from_environment(), checkpoint_root(config_)));
}

void Trainer::check_skip_streak() {
  if (!skip_streak_->tripped_at()) return;
  throw Error(skip_streak_->explain(*model_, resume_info_ ? resume_info_->path : ""));
}

std::map<std::string, double> Trainer::layer_statistics() const {
  std::map<std::string, double> stats;
  double load_max = 0, load_min = 1e30;
  for (const auto& moe : model_->moe_layers()) {
    const at::Tensor load = moe->last_expert_load();
    if (!load.defined()) continue;
    const double experts = static_cast<double>(load.numel());
    load_max = std::max(load_max, load.max().item<double>() * experts);
    load_min = std::min(load_min, load.min().item<double>() * experts);
  }
  if (load_max > 0) {
    stats["moe_load_max"] = load_max;  // busiest expert's load relative to a uniform split
    stats["moe_load_min"] = load_min;
  }
  std::map<std::string, std::vector<at::Tensor>> logged;  // each variant's own values
  for (const auto& block : model_->blocks) {
    for (auto& [name, values] : block->attention->logged_values()) {
      logged[name].push_back(values.flatten().to(at::kDouble));
    }
  }
  for (const auto& [name, parts] : logged) {
    const at::Tensor all = at::cat(parts);
    stats[name + "_min"] = all.min().item<double>();
    stats[name + "_mean"] = all.mean().item<double>();
    stats[name + "_max"] = all.max().item<double>();
  }
  return stats;
}

// Which layer shapes the first step ran in fp8 and which fell back to bf16 (and why): known only
// once every layer has run.
void Trainer::log_fp8_layers() const {
  const bool moe = config_.moe.n_experts > 0;
  log::info("fp8 layers  {}{}", fp8_layer_summary(),
            moe ? "; routed MoE experts bf16 (no fp8 grouped GEMM for their gradients)" : "");
}

void Trainer::log_step(double seconds, int64_t steps) {
  check_halt();
  check_skip_streak();
  StepMetrics m;
  m.step = progress_.step;
  m.total_steps = config_.train.steps;
  const double kept = interval_loss_steps_.item<double>();
  m.loss = kept > 0 ? interval_loss_sum_.item<double>() / kept : std::nan("");
  m.lr = last_lr_;
  m.grad_norm = last_grad_norm_.item<double>();
  m.tokens_per_s =
      seconds > 0 ? static_cast<double>(steps * tokens_per_step_at(progress_.step - 1)) / seconds
                  : 0;
  if (peak_flops_ && !mfu_warned_) {
    try {
      m.mfu = model_flops_utilisation(m.tokens_per_s / world_size(), flops_per_token_, peak_flops_);
    } catch (const Error& error) {
      log::warn("MFU not reported: {}", error.what());
      mfu_warned_ = true;
    }
  }
  m.memory_gib = memory_use(device_).peak_bytes / (1024.0 * 1024.0 * 1024.0);
  const double step_seconds = steps > 0 ? seconds / static_cast<double>(steps) : 0;
  m.eta_s = step_seconds * static_cast<double>(config_.train.steps - progress_.step);
  m.skipped_steps = skipped_at_start_ + static_cast<int64_t>(skipped_total_.item<double>());
  m.tokens_seen = progress_.tokens_seen;
  m.time_s = training_time();
  m.extra = layer_statistics();
  m.stage = stage_name(progress_.step - 1);
  if (!m.stage.empty()) {
    const auto stage = static_cast<size_t>(stage_at_step(progress_.step - 1));
    m.stage_seq_len = stage_seq_len(config_.data.stages[stage], config_);
    m.stage_tokens_per_step = tokens_per_step_at(progress_.step - 1);
  }
  m.source_tokens = source_tokens();
  interval_loss_sum_.zero_();
  interval_loss_steps_.zero_();
  progress_.skipped_steps = m.skipped_steps;
  if (progress_bar_) progress_bar_->clear();
  log::info("{}", render_step_line(m));
  write_record(step_record(m));
}

void Trainer::write_record(const Json& record) {
  if (metrics_) metrics_->write(record);
  if (tensorboard_) {
    const int64_t step = record.at("step", "metrics record").as_int("step");
    tensorboard_->write_scalars(step, tensorboard_scalars(record));
  }
}

void Trainer::open_tensorboard() {
  // Steps after the one this launch starts from are trained again: their records go.
  tensorboard_ = std::make_unique<tensorboard::EventFileWriter>(
      files::join(config_.run.dir, "tensorboard"), progress_.step);
  const tensorboard::DropReport& dropped = tensorboard_->dropped();
  if (dropped.records_dropped > 0) {
    log::info("tensorboard dropped {} records of steps after {} from earlier launches",
              dropped.records_dropped, progress_.step);
  }
  if (dropped.damaged_bytes > 0) {
    log::warn("tensorboard: cut {} bytes after a torn or corrupt record off earlier event files",
              dropped.damaged_bytes);
  }
  log::info("tensorboard {}", tensorboard_->path());
}

TrainResult Trainer::run() {
  TrainResult result;
  if (is_main()) {  // rank 0 alone writes metrics
    metrics_ = std::make_unique<MetricsFile>(files::join(config_.run.dir, "metrics.jsonl"));
    Json::Object start;
    start["kind"] = options_.resume.empty() || progress_.step == 0 ? "start" : "resume";
    start["step"] = progress_.step;
    start["run_id"] = progress_.run_id;
    metrics_->write(Json(std::move(start)));
    if (config_.logging.tensorboard) open_tensorboard();
  }
  if (options_.handle_signals) install_stop_signal_handlers();
  progress_bar_ =
      std::make_unique<ProgressBar>(config_.logging.progress_bar && is_main(), config_.train.steps);
  const int64_t first_step = progress_.step;
  if (first_step >= config_.train.steps) {
    log::info("nothing to train: the checkpoint is at step {} and train.steps is {}", first_step,
              config_.train.steps);
  }
  Clock::time_point interval_start = Clock::now(), training_start = Clock::now();
  training_start_ = training_start;
  train_seconds_at_start_ = progress_.train_seconds;
  Clock::time_point after_first_step = training_start;
  int64_t interval_steps = 0;
  while (progress_.step < config_.train.steps) {
    announce_stage();
    train_step();
    ++interval_steps;
    const int64_t step = progress_.step;
    if (step == first_step + 1) {
      (void)last_grad_norm_.item<float>();  // waits for the device: the first step is done
      after_first_step = Clock::now();
      phases_.emplace_back("first step", seconds_since(training_start));
      log::info("first step  done {:.2f} s after launch", seconds_since(options_.process_start));
      if (precision_.fp8) log_fp8_layers();
    }
    const bool last = step == config_.train.steps;
    // A signal may reach one rank only: every rank stops after the same step or none does.
    const bool signalled = parallelism_->any(stop_requested(), "agreeing on a stop request");
    const bool stopping = signalled || (options_.stop_at_step && step >= *options_.stop_at_step);
    parallelism_->check_replicas(*model_, step);
    if (step % config_.logging.every == 0 || last || stopping) {
      log_step(seconds_since(interval_start), interval_steps);
      interval_start = Clock::now();
      interval_steps = 0;
    } else {
      progress_bar_->update(step, stage_starts_.empty() ? "" : "stage " + stage_name(step - 1));
    }
    if (!validation_sets_.empty() && config_.train.eval_every > 0 &&
        step % config_.train.eval_every == 0 && !last) {
      evaluate();
      interval_start = Clock::now();
    }
    const bool periodic = config_.checkpoint.every > 0 && step % config_.checkpoint.every == 0;
    if (periodic || last || stopping) {
      std::string path = write_checkpoint();
      // The run's last checkpoint has no next interval: it is retried now, up to the limit.
      while (path.empty() && (last || stopping)) {
        std::this_thread::sleep_for(std::chrono::seconds(write_failures_));
        path = write_checkpoint();
      }
      if (!path.empty()) result.last_checkpoint = path;
      interval_start = Clock::now();
    }
    if (stopping) {
      result.stopped_early = true;
      if (signalled && !stop_requested()) {
        log::warn("stopped at step {}: another rank received a stop signal; checkpoint written",
                  step);
      } else if (signalled) {
        log::warn(
            "stopped by signal {} at step {}: checkpoint written; continue with --resume auto",
            stop_signal(), step);
      } else {
        log::info("stopped at step {} as asked (--stop-at-step); continue with --resume auto",
                  step);
      }
      break;
    }
  }
  const double training_seconds = seconds_since(training_start);
  progress_bar_->clear();
  check_halt();
  check_skip_streak();
  if (!result.stopped_early && !validation_sets_.empty()) result.final_val_loss = evaluate();

  const int64_t timed_steps = progress_.step - first_step - 1;
  const double timed_seconds =
      seconds_since(after_first_step) - eval_seconds_ - checkpoint_seconds_;
  if (timed_steps > 0 && timed_seconds > 0) {
    result.tokens_per_s = static_cast<double>(timed_steps * tokens_per_step_) / timed_seconds;
    if (peak_flops_ && !mfu_warned_) {
      try {
        result.mfu = model_flops_utilisation(result.tokens_per_s, flops_per_token_, peak_flops_);
      } catch (const Error&) {
      }
    }
  }
  result.final_step = progress_.step;
  result.source_tokens = source_tokens();
  log_source_tokens(result.source_tokens);
  result.peak_memory_gib = memory_use(device_).peak_bytes / (1024.0 * 1024.0 * 1024.0);
  phases_.emplace_back("training (incl. eval and checkpoints)", training_seconds);
  phases_.emplace_back("evaluation", eval_seconds_);
  phases_.emplace_back("checkpoints", checkpoint_seconds_);
  result.phase_seconds = phases_;
  parallelism_->barrier("barrier at the end of training");
  if (!metrics_) return result;
  Json::Object summary;
  summary["kind"] = "summary";
  summary["step"] = result.final_step;
  summary["tokens_seen"] = progress_.tokens_seen;
  summary["time_s"] = training_time();
  summary["tokens_per_s"] = result.tokens_per_s;
  summary["peak_memory_gib"] = result.peak_memory_gib;
  if (result.final_val_loss) summary["val_loss"] = *result.final_val_loss;
  if (result.mfu) summary["mfu"] = *result.mfu;
  for (const auto& [name, tokens] : result.source_tokens) summary["tokens/" + name] = tokens;
  summary["stopped_early"] = result.stopped_early;
  metrics_->write(Json(std::move(summary)));
  return result;
}

}  // namespace cca
