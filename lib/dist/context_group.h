// The context-parallel group of one data-parallel replica (distributed.context_parallel): the
// collectives the model's attention layers call through SequenceGroup (ops/sequence_shard.h),
// on a c10d backend of their own (Gloo on the CPU, NCCL on CUDA), so they never interleave
// with the world group's gradient all-reduces.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>

#include <string>

#include "ops/sequence_shard.h"

namespace cca::dist {

class Communicator;

// World ranks are laid out replica-major: replica = rank / N, position in the group = rank % N,
// so one sequence's ranks are neighbours (on one node, where NVLink joins them).
struct ContextLayout {
  int context_parallel = 1;
  int world_size = 1;
  int replicas() const { return world_size / context_parallel; }
  int replica_of(int rank) const { return rank / context_parallel; }
  int position_of(int rank) const { return rank % context_parallel; }
};

class ContextGroup : public SequenceGroup {
 public:
  // `communicator` outlives the group and turns failed collectives into errors naming the rank.
  ContextGroup(Communicator& communicator, c10::intrusive_ptr<c10d::Backend> backend, int rank,
               int size);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  at::Tensor all_gather(const at::Tensor& mine) override;
  at::Tensor reduce_scatter(const at::Tensor& full) override;

 private:
  Communicator& communicator_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  int rank_, size_;
  bool nccl_;
};

}  // namespace cca::dist
