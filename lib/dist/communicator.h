// One data-parallel job's process groups: the TCPStore rendezvous, a device group for tensors on
// the training device (NCCL on CUDA, Gloo on CPU) and a host group for small CPU values (Gloo;
// the same group on CPU). Every collective either completes or throws cca::Error naming this
// rank and the operation; none waits longer than distributed.timeout_s.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "launch/environment.h"
#include "ops/sequence_shard.h"

namespace cca::dist {

class Communicator {
 public:
  // Rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts the store and waits for every rank),
  // then creates the groups. `device` is where training runs (cuda:LOCAL_RANK or cpu).
  Communicator(const WorldEnvironment& world, const DistributedConfig& config,
               const at::Device& device);
  // After a failed collective the groups are abandoned, not destroyed: destroying them would
  // wait for peers that may be gone.
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return world_.rank; }
  int world_size() const { return world_.world_size; }
  const WorldEnvironment& world() const { return world_; }
  const at::Device& device() const { return device_; }
  const std::string& backend_name() const { return backend_name_; }
  double timeout_seconds() const { return timeout_s_; }

  // Device tensors (in place), blocking. `what` names the operation in errors.
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what);
  void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what);
  // Starts a sum all-reduce on the device group; finish it with wait().
  c10::intrusive_ptr<c10d::Work> start_all_reduce_sum(std::vector<at::Tensor>& tensors);
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);

  // Runs `start` (which starts a collective and returns its work), turning an exception into
  // the same error as a failed wait.
  c10::intrusive_ptr<c10d::Work> start_checked(
      const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& start);

  // distributed.context_parallel > 1: this rank's context-parallel group (dist/context_group.h),
  // the ranks replica * N .. replica * N + N - 1; null otherwise.
  const std::shared_ptr<SequenceGroup>& context_group() const { return context_group_; }

  // Host values over the host group.
  int64_t sum(int64_t value, const std::string& what);
  int64_t max(int64_t value, const std::string& what);
  // Every rank's `bytes`, by rank (lengths may differ).
  std::vector<std::string> all_gather(const std::string& bytes, const std::string& what);
  void barrier(const std::string& what);

 private:
  void connect_store();
  void create_groups(const DistributedConfig& config);
  void create_context_group(int context_parallel);
  int64_t host_reduce(int64_t value, c10d::ReduceOp op, const std::string& what);
  [[noreturn]] void fail(const std::string& what, const std::string& cause);

  WorldEnvironment world_;
  at::Device device_;
  double timeout_s_ = 0;
  std::string backend_name_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> device_group_, host_group_, context_backend_;
  std::shared_ptr<SequenceGroup> context_group_;
  bool failed_ = false;
};

}  // namespace cca::dist
