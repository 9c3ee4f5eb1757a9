// What the trainer needs from data parallelism, in one object (null in a single process), so the
// model and the loop stay single-device code: agreement at start (same config, same resumed
// step, rank 0's weights and optimizer state everywhere), the gradient buckets, global token
// counts and loss sums, MoE expert counts, stop agreement, checksum verification, and the
// per-rank state a checkpoint needs.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "dist/environment.h"
#include "model/transformer.h"
#include "ops/named_tensor.h"

namespace cca::dist {

class Communicator;
class GradientBuckets;

class DataParallel {
 public:
  DataParallel(std::shared_ptr<Communicator> communicator, const DistributedConfig& config);
  ~DataParallel();

  int rank() const;
  int world_size() const;
  bool is_main() const { return rank() == 0; }
  const WorldEnvironment& world() const;
  Communicator& communicator() { return *communicator_; }

  // Once the model is built and any checkpoint restored: checks that every rank loaded the same
  // config (per-key comparison, differences named) and resumed the same step, copies rank 0's
  // weights, buffers and optimizer state (AdamW::state(), in place) to every rank and attaches the
  // gradient buckets. Returns rank 0's run id.
  std::string start(const Config& config, int64_t resumed_step, const std::string& run_id,
                    TransformerImpl& model, const std::vector<NamedTensor>& optimizer_state);

  // Whether the next backward is the step's last micro-batch (only that one communicates).
  void before_backward(bool last_micro_batch);
  // Waits for the gradient all-reduces: afterwards every gradient is the sum over ranks.
  void finish_gradients(int64_t step);
  GradientBuckets& buckets() { return *buckets_; }

  int64_t sum(int64_t value, const std::string& what);
  bool any(bool flag, const std::string& what);
  void sum_in_place(at::Tensor& tensor, const std::string& what);  // on the training device
  // Sums every MoE layer's pending expert counts over ranks (one collective), so every rank moves
  // its selection bias identically.
  void sum_expert_counts(TransformerImpl& model);
  // Compares per-parameter checksums of every rank with rank 0's; throws naming the first
  // parameter and rank that differ.
  void verify_parameters(TransformerImpl& model, int64_t step);
  // Every rank's generator states, named "<generator>/rank<r>" (all ranks call; all get them).
  std::vector<NamedTensor> gather_rng_states(const std::vector<NamedTensor>& mine);
  void barrier(const std::string& what);

 private:
  void check_same_start(const Config& config, int64_t resumed_step);

  std::shared_ptr<Communicator> communicator_;
  DistributedConfig config_;
  std::unique_ptr<GradientBuckets> buckets_;
};

}  // namespace cca::dist
