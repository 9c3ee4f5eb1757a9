// Data parallelism behind the trainer's Parallelism interface, so the model and the loop stay
// single-device code: agreement at start (same config, same resumed step, rank 0's weights and
// optimizer state everywhere), the gradient buckets (dist/gradient_buckets.h), global token
// counts and loss sums, ZeRO-1 (dist/zero1.h, distributed.zero1), MoE expert counts, stop
// agreement, checksum verification, and the per-rank state a checkpoint needs.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "dist/parallelism.h"
#include "launch/environment.h"

namespace cca::dist {

class Communicator;
class GradientBuckets;
class Zero1;

class DataParallel : public Parallelism {
 public:
  DataParallel(std::shared_ptr<Communicator> communicator, const DistributedConfig& config);
  ~DataParallel() override;

  int rank() const override;
  int world_size() const override;
  int local_rank() const override;
  const WorldEnvironment& world() const;
  // Replica-major layout (dist/context_group.h): replica = rank / context_parallel.
  int data_rank() const override;
  int data_world_size() const override;
  std::shared_ptr<SequenceGroup> context_group() const override;

  // With distributed.zero1, this rank's optimizer holds state for the parameters it owns only.
  std::unique_ptr<Optimizer> make_optimizer(std::vector<NamedTensor> parameters,
                                            const OptimConfig& optim) override;
  void check_cuda_graphs() const override;
  // Checks that every rank loaded the same config (per-key comparison, differences named) and
  // resumed the same step, copies rank 0's weights, buffers and optimizer state (in place; with
  // ZeRO-1 each rank restored its own shard) to every rank and attaches the gradient buckets.
  // Returns rank 0's run id.
  std::string start(const Config& config, int64_t resumed_step, const std::string& run_id,
                    TransformerImpl& model, const Optimizer& optimizer) override;

  int64_t global_valid_tokens(int64_t local, int64_t step, const PhaseLap& lap) override;
  void before_backward(bool last_micro_batch) override;
  // Waits for the gradient all-reduces, then sums the loss.
  void finish_gradients(at::Tensor& loss_sum, int64_t step, const PhaseLap& lap) override;
  // ZeRO-1: the global clip here, this rank's shard updated, then every rank's updated
  // parameters shared. Gradients are always zeroed in place (they are views of the buckets).
  StepReport update(Optimizer& optimizer, double lr, const at::Tensor& loss,
                    const at::Tensor& frozen, int64_t step, bool keep_gradients) override;
  void sum_expert_counts(TransformerImpl& model) override;
  bool any(bool flag, const std::string& what) override;
  void check_replicas(TransformerImpl& model, int64_t step) override;

  int64_t sum(int64_t value, const std::string& what) override;
  void sum_in_place(at::Tensor& tensor, const std::string& what) override;  // training device

  // Every rank's generator states, named "<generator>/rank<r>" (all ranks call; all get them).
  std::vector<NamedTensor> gather_rng_states(const std::vector<NamedTensor>& mine) override;
  // ZeRO-1: every rank's shard, in Optimizer::state()'s order, so the checkpoint looks exactly like
  // an unsharded run's.
  std::vector<NamedTensor> gather_optimizer_state(const Optimizer& optimizer) override;
  void barrier(const std::string& what) override;

 private:
  void check_same_start(const Config& config, int64_t resumed_step);
  // Compares per-parameter checksums of every rank with rank 0's; throws naming the first
  // parameter and rank that differ.
  void verify_parameters(TransformerImpl& model, int64_t step);

  std::shared_ptr<Communicator> communicator_;
  DistributedConfig config_;
  std::unique_ptr<GradientBuckets> buckets_;
  std::unique_ptr<Zero1> zero1_;  // distributed.zero1
};

}  // namespace cca::dist
