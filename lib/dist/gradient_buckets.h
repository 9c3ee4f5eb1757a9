// Gradient all-reduce in buckets, overlapped with the backward pass (the DDP scheme, written for
// this trainer). Parameters are grouped, in reverse order of registration (roughly the order in
// which backward produces their gradients), into buckets of about distributed.bucket_mb; every
// parameter's .grad becomes a view into its bucket's flat buffer, so a bucket is all-reduced in
// place without copies. A post-accumulate-grad hook counts the gradients each bucket still waits
// for; when a bucket is complete it is started, but only after every bucket before it, so all
// ranks issue the same collectives in the same order whatever order their hooks fire in.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "ops/named_tensor.h"

namespace cca::dist {

class Communicator;

class GradientBuckets {
 public:
  // `parameters` must share one dtype and device. Existing .grad values are kept (copied in).
  GradientBuckets(Communicator& communicator, const std::vector<NamedTensor>& parameters,
                  int64_t bucket_bytes);
  ~GradientBuckets();  // removes the hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // Whether the next backward is the step's last micro-batch (the only one that communicates;
  // earlier ones accumulate locally, like DDP's no_sync).
  void set_last_micro_batch(bool last);
  // For benchmarks: false starts every bucket only in finish() (no overlap with backward).
  void set_overlap(bool overlap) { overlap_ = overlap; }
  // Starts the buckets not started yet (parameters without a gradient this step), in order, and
  // waits for all. Afterwards every .grad holds the sum over ranks. `step` is for messages.
  void finish(int64_t step);

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets started from a hook, i.e. while backward was still running, in the last finish().
  int64_t started_during_backward() const { return started_during_backward_; }
  // "3 buckets of <= 25 MiB (27.1 MiB of fp32 gradients)".
  std::string describe() const;

  // Called by the hooks.
  void gradient_ready(size_t parameter);

 private:
  struct Bucket {
    at::Tensor buffer;  // flat, holds the gradients of `members`
    std::vector<size_t> members;
    size_t waiting = 0;  // members whose gradient has not arrived this step
    c10::intrusive_ptr<c10d::Work> work;
  };
  void start_ready_buckets(bool from_hook);
  void reset_counts();

  Communicator& communicator_;
  std::vector<NamedTensor> parameters_;
  std::vector<size_t> bucket_of_;  // parameter -> bucket
  std::vector<bool> arrived_;      // parameter -> gradient seen this step
  std::vector<Bucket> buckets_;
  size_t next_to_start_ = 0;
  bool last_micro_batch_ = true;
  bool overlap_ = true;
  int64_t started_during_backward_ = 0;
  std::mutex mutex_;  // hooks run on the autograd engine's device thread on CUDA
};

}  // namespace cca::dist
