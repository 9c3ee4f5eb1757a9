// AdamW with decoupled weight decay over two parameter groups (decayed / not decayed, by
// optim/weight_decay.h), run by LibTorch's fused kernel (_fused_adamw_, on CPU and CUDA), with
// global-norm clipping and a device-side non-finite guard (optim/grad_clip.h), so a step needs no
// host synchronisation.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "ops/named_tensor.h"
#include "optim/grad_clip.h"

namespace cca {

class AdamW {
 public:
  // `parameters` must all live on one device with dtype float32 (the master weights).
  AdamW(std::vector<NamedTensor> parameters, const OptimConfig& optim);

  // Clips the gradients to optim.grad_clip (when > 0) and applies one AdamW update at `lr`,
  // unless `loss` or the gradient norm is non-finite or `frozen` (a 0-dim tensor, nonzero = skip
  // every step, used by train.nonfinite=halt) is set: then nothing changes, step counts included.
  StepReport step(double lr, const at::Tensor& loss, const at::Tensor& frozen = {});
  // Clears the gradients for the next step. `release`: drop them instead of zeroing, so the next
  // backward's first gradient becomes .grad as it is (no zero-fill, no add) and only later
  // micro-batches add; a parameter left without a gradient gets zeros at step(). Zeroing keeps
  // the tensors, for callers that hold views of them (data parallelism's buckets).
  void zero_grad(bool release = false);

  // Optimizer state as named tensors: "exp_avg/<param>", "exp_avg_sq/<param>", "step/<param>".
  std::vector<NamedTensor> state() const;
  // Restores state() output; throws cca::Error naming the first missing or mis-shaped entry.
  void load_state(const std::map<std::string, at::Tensor>& tensors, const std::string& source);

  int64_t decayed_count() const { return static_cast<int64_t>(decayed_.params.size()); }
  int64_t undecayed_count() const { return static_cast<int64_t>(undecayed_.params.size()); }
  const std::vector<std::string>& undecayed_names() const { return undecayed_.names; }

 private:
  struct Group {
    std::vector<std::string> names;
    std::vector<at::Tensor> params, exp_avgs, exp_avg_sqs, steps;
    double weight_decay = 0;
  };
  void update_group(Group& group, double lr, const at::Tensor& skip);
  std::vector<at::Tensor> gradients() const;
  void materialize_missing_gradients();

  OptimConfig optim_;
  Group decayed_, undecayed_;
};

}  // namespace cca
