// A batch becomes a step: micro-batches through the model (eagerly or from a CUDA graph), the
// optimizer update, the device-side running statistics. The rest of Trainer is in trainer.cpp.
#include <algorithm>
#include <optional>

#include "dist/parallelism.h"
#include "train/device_batch.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/format.h"
#include "util/log.h"

namespace cca {

std::pair<at::Tensor, at::Tensor> to_device(const data::Batch& batch, const at::Device& device) {
  const auto options = at::TensorOptions().dtype(at::kLong).pinned_memory(device.is_cuda());
  at::Tensor host = at::empty({2, batch.batch_size, batch.seq_len}, options);
  int64_t* out = host.data_ptr<int64_t>();
  const size_t n = batch.inputs.size();
  std::copy(batch.inputs.begin(), batch.inputs.end(), out);
  std::copy(batch.targets.begin(), batch.targets.end(), out + n);
  at::Tensor moved = host.to(device, /*non_blocking=*/true);
  return {moved[0], moved[1]};
}

int64_t count_valid_targets(const data::Batch& batch) {
  return static_cast<int64_t>(
      std::count_if(batch.targets.begin(), batch.targets.end(), [](int32_t t) { return t >= 0; }));
}

void Trainer::build_step_graph() {
  if (!device_.is_cuda()) {
    throw Error("train.cuda_graphs: true needs a CUDA device, and this run trains on " +
                device_.str() + "; set train.cuda_graphs: false or train.device: cuda");
  }
  parallelism_->check_cuda_graphs();
  graph_ = std::make_unique<MicroBatchGraph>(*model_, config_, precision_, device_);
  log::info(
      "graphs      one micro-batch's forward and backward as a CUDA graph (captured after "
      "3 eager micro-batches)");
}

void Trainer::run_bare_steps(int64_t steps, PhaseClock* clock) {
  for (int64_t i = 0; i < steps; ++i) train_step(clock);
}

std::optional<Documents> Trainer::documents_of(const data::Batch& batch) const {
  if (!document_separator_) return std::nullopt;
  return batch_documents(batch, *document_separator_, config_.data.reset_positions, device_);
}

// Under context parallelism every rank of a replica pulled the same sequences: it keeps its two
// chunks of each, and the documents of the whole sequences (one per row without masking) go
// with them, so the attention layers know where its tokens sit.
Trainer::RankBatch Trainer::rank_batch(data::Batch batch) const {
  const std::shared_ptr<SequenceGroup> group = parallelism_->context_group();
  if (!group && config_.distributed.context_parallel > 1) {
    throw Error(format(
        "distributed.context_parallel = {} splits each sequence over that many ranks, but this "
        "run is a single process; launch it with --nproc-per-node {} (or torchrun, srun)",
        config_.distributed.context_parallel, config_.distributed.context_parallel));
  }
  if (!group) {
    std::optional<Documents> documents = documents_of(batch);
    return {std::move(batch), std::move(documents)};
  }
  const std::optional<Documents> whole = documents_of(batch);
  Documents documents =
      shard_documents(whole ? &*whole : nullptr, batch.batch_size, batch.seq_len, group, device_);
  data::Batch mine = shard_batch(batch, *documents.shard);
  return {std::move(mine), std::move(documents)};
}

at::Tensor Trainer::eager_micro_batch(const at::Tensor& inputs, const at::Tensor& targets,
                                      int64_t valid, int64_t step_valid, PhaseClock* clock,
                                      const Documents* documents) {
  LossBreakdown parts;
  {
    AutocastScope autocast(precision_, device_);
    parts = model_->loss(inputs, targets, valid, documents);
  }
  // Token-level terms are weighted by this micro-batch's share of the step's valid tokens, so
  // the step minimises the mean over all its tokens however they fall into micro-batches;
  // the MoE terms are per-batch averages and are averaged over micro-batches (of all replicas).
  // Under context parallelism each rank's MoE terms are its part of its replica's micro-batch
  // (moe/moe.h), so they count once per replica, not once per rank.
  const at::Tensor& moe_part = parts.moe_weighted;
  const double accum = static_cast<double>(config_.train.grad_accum * data_world_size());
  const double share =
      static_cast<double>(valid) / static_cast<double>(std::max<int64_t>(step_valid, 1));
  const at::Tensor objective = (parts.total - moe_part) * share + moe_part / accum;
  if (clock) clock->lap("forward");
  objective.backward();
  return parts.cross_entropy.detach();
}

void Trainer::train_step(PhaseClock* clock) {
  const dist::PhaseLap lap = [clock](const char* phase) {
    if (clock) clock->lap(phase);
  };
  if (clock) clock->start();
  const int64_t step = progress_.step;
  last_lr_ = schedule_->at(step);
  std::vector<RankBatch> batches;
  int64_t step_valid = 0;
  for (int64_t i = 0; i < config_.train.grad_accum; ++i) {
    batches.push_back(rank_batch(loader_->next()));
    step_valid += count_valid_targets(batches.back().batch);
  }
  lap("data");
  // With data parallelism the shares below are of the global count and the gradients are summed
  // over ranks, so the step is the mean over every rank's tokens.
  step_valid = parallelism_->global_valid_tokens(step_valid, step, lap);
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions(device_).dtype(at::kFloat));
  std::optional<StepCastCache> cast_cache(std::in_place, precision_);
  for (size_t i = 0; i < batches.size(); ++i) {
    const data::Batch& batch = batches[i].batch;
    const std::optional<Documents>& documents = batches[i].documents;
    parallelism_->before_backward(i + 1 == batches.size());
    auto [inputs, targets] = to_device(batch, device_);
    lap("data");
    const int64_t valid = count_valid_targets(batch);
    // A phase clock synchronises between forward and backward, which a graph cannot.
    const at::Tensor cross_entropy =
        graph_ && clock == nullptr ? graph_->run(inputs, targets, valid, step_valid)
                                   : eager_micro_batch(inputs, targets, valid, step_valid, clock,
                                                       documents ? &*documents : nullptr);
    loss_sum += cross_entropy.to(at::kFloat) * static_cast<double>(valid);
    lap("backward");
  }
  cast_cache.reset();
  parallelism_->finish_gradients(loss_sum, step + 1, lap);
  const at::Tensor step_loss = loss_sum / static_cast<double>(std::max<int64_t>(step_valid, 1));
  const bool halt_policy = config_.train.nonfinite == "halt";
  const StepReport report = update(step_loss, step + 1);
  if (config_.moe.bias_update_rate > 0) parallelism_->sum_expert_counts(*model_);
  for (const auto& moe : model_->moe_layers()) moe->update_selection_bias();

  const at::Tensor kept = 1.0 - report.skipped;
  interval_loss_sum_ += at::where(kept > 0, step_loss, at::zeros_like(step_loss));
  interval_loss_steps_ += kept;
  skipped_total_ += report.skipped;
  last_grad_norm_ = report.grad_norm.detach();
  const at::Tensor newly_bad = report.skipped.gt(0).logical_and(first_bad_step_.lt(0));
  first_bad_step_ = at::where(newly_bad, at::full_like(first_bad_step_, step + 1), first_bad_step_);
  if (halt_policy) halted_ = at::maximum(halted_, report.skipped);
  skip_streak_->add(report.skipped, step_loss, report.grad_norm, step + 1);
  progress_.step = step + 1;
  progress_.tokens_seen += tokens_per_step_at(step);
  lap("optimizer");
}

// Clip and apply the optimizer (as the parallelism shards it), then clear the gradients; a CUDA
// graph accumulates into the same gradient memory at every replay, so it keeps it.
StepReport Trainer::update(const at::Tensor& step_loss, int64_t step) {
  const at::Tensor frozen = config_.train.nonfinite == "halt" ? halted_ : at::Tensor();
  return parallelism_->update(*optimizer_, last_lr_, step_loss, frozen, step,
                              /*keep_gradients=*/graph_ != nullptr);
}

}  // namespace cca
