// How the training loop runs across processes, as torchtitan's parallelize wraps a single-device
// model: the trainer always holds one Parallelism and calls it, unconditionally, at every point
// where ranks must agree. SingleProcess (dist/single_process.h) answers each call locally;
// DataParallel (dist/data_parallel.h) owns the process groups, the gradient buckets and ZeRO-1.
// In call order:
//   data        data_rank, data_world_size, context_group (context parallelism: which sequences
//               this rank reads, and the group it splits them with)
//   start       make_optimizer, check_cuda_graphs, start (config and resumed step agree, rank 0's
//               weights and optimizer state everywhere, gradient buckets attached)
//   each step   global_valid_tokens, before_backward per micro-batch, finish_gradients (gradient
//               and loss sums), update (clip, optimizer step, clear gradients), sum_expert_counts,
//               any (stop agreement), check_replicas (periodic checksums)
//   evaluation  sum, sum_in_place
//   checkpoint  gather_rng_states, gather_optimizer_state, barrier (is_main writes)
//   end         barrier
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/transformer.h"
#include "ops/named_tensor.h"
#include "ops/sequence_shard.h"
#include "optim/optimizer.h"

namespace cca::dist {

// Charges the time since the previous lap to `phase` (cca-bench train's phase split); called
// after communication, so a single process, which has none, reports no "communication" phase.
using PhaseLap = std::function<void(const char* phase)>;

class Parallelism {
 public:
  virtual ~Parallelism() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // The rank on this node, which picks the GPU (cuda:local_rank).
  virtual int local_rank() const = 0;
  bool is_main() const { return rank() == 0; }
  // Context parallelism (distributed.context_parallel): the ranks of one replica share its
  // sequences, so the data is split over the replicas: this rank's replica and their number.
  // Without it every rank is its own replica.
  virtual int data_rank() const { return rank(); }
  virtual int data_world_size() const { return world_size(); }
  // The group that splits each sequence (ops/sequence_shard.h); null without context parallelism.
  virtual std::shared_ptr<SequenceGroup> context_group() const { return nullptr; }

  // optim.kind's optimizer (optim/optimizer.h) over the model's parameters: all of them, or
  // (ZeRO-1) the ones this rank owns.
  virtual std::unique_ptr<Optimizer> make_optimizer(std::vector<NamedTensor> parameters,
                                                    const OptimConfig& optim) = 0;
  // Throws cca::Error when a step cannot be replayed as a CUDA graph (train.cuda_graphs).
  virtual void check_cuda_graphs() const = 0;
  // Once the model is built and any checkpoint restored; returns the run id every rank uses.
  virtual std::string start(const Config& config, int64_t resumed_step, const std::string& run_id,
                            TransformerImpl& model, const Optimizer& optimizer) = 0;

  // The step's valid-target count over every rank (the micro-batches' shares are of it).
  virtual int64_t global_valid_tokens(int64_t local, int64_t step, const PhaseLap& lap) = 0;
  // Whether the next backward is the step's last micro-batch (only that one communicates).
  virtual void before_backward(bool last_micro_batch) = 0;
  // After the last backward: every gradient and `loss_sum` become sums over ranks.
  virtual void finish_gradients(at::Tensor& loss_sum, int64_t step, const PhaseLap& lap) = 0;
  // Clips, applies the optimizer at `lr` (skipped as Optimizer::step says) and clears the gradients
  // for the next step: released, unless `keep_gradients` (a CUDA graph accumulates into the same
  // memory at every replay) or the gradients are views that must stay (data parallelism's buckets).
  virtual StepReport update(Optimizer& optimizer, double lr, const at::Tensor& loss,
                            const at::Tensor& frozen, int64_t step, bool keep_gradients) = 0;
  // Sums every MoE layer's pending expert counts over all ranks (the context-parallel ranks too:
  // each counted its own tokens), so every rank moves its selection bias identically.
  virtual void sum_expert_counts(TransformerImpl& model) = 0;
  // Whether `flag` is set on any rank (a signal may reach one rank only).
  virtual bool any(bool flag, const std::string& what) = 0;
  // Every distributed.verify_every steps: throws cca::Error if the ranks' parameters differ.
  virtual void check_replicas(TransformerImpl& model, int64_t step) = 0;

  // Sums over ranks (each rank evaluated its share of the validation sequences).
  virtual int64_t sum(int64_t value, const std::string& what) = 0;
  virtual void sum_in_place(at::Tensor& tensor, const std::string& what) = 0;

  // What a checkpoint holds for every rank (all ranks call; rank 0 writes): the generator
  // states ("<generator>/rank<r>" with several ranks) and the full optimizer state.
  virtual std::vector<NamedTensor> gather_rng_states(const std::vector<NamedTensor>& mine) = 0;
  virtual std::vector<NamedTensor> gather_optimizer_state(const Optimizer& optimizer) = 0;
  virtual void barrier(const std::string& what) = 0;
};

}  // namespace cca::dist
