// The optimizer behind optim.kind: AdamW (optim/adamw.h) or Muon with AdamW for the rest
// (optim/muon.h), one interface for the trainer, the parallelism (ZeRO-1 shards by whole
// parameters and must know each optimizer's clipping order and state names) and checkpoints.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "ops/named_tensor.h"
#include "optim/grad_clip.h"

namespace cca {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Clips the gradients to optim.grad_clip (when > 0) and applies one update at `lr`, unless
  // `loss` or the gradient norm is non-finite or `frozen` (a 0-dim tensor, nonzero = skip every
  // step, used by train.nonfinite=halt and by ZeRO-1) is set: then nothing changes, state
  // included. No host synchronisation.
  virtual StepReport step(double lr, const at::Tensor& loss, const at::Tensor& frozen = {}) = 0;
  // Clears the gradients for the next step. `release`: drop them instead of zeroing, so the next
  // backward's first gradient becomes .grad as it is; a parameter left without a gradient gets
  // zeros at step(). Zeroing keeps the tensors, for callers that hold views of them (data
  // parallelism's buckets).
  virtual void zero_grad(bool release = false) = 0;

  // The state as named tensors, in the order state_layout() gives for the same parameters.
  virtual std::vector<NamedTensor> state() const = 0;
  // Restores state() output; throws cca::Error naming the first missing or mis-shaped entry.
  virtual void load_state(const std::map<std::string, at::Tensor>& tensors,
                          const std::string& source) = 0;
  // Which parameters go where, for the start-up log ("AdamW: 10 tensors decayed, 5 not").
  virtual std::string describe() const = 0;
};

// optim.kind's optimizer over `parameters` (float32 master weights on one device).
std::unique_ptr<Optimizer> make_optimizer(std::vector<NamedTensor> parameters,
                                          const OptimConfig& optim);

// The order (indices into `parameters`) in which optim.kind's optimizer hands the gradients to
// check_and_clip: ZeRO-1 clips in the same order, so its norm is bit-identical.
std::vector<size_t> clipping_order(const std::vector<NamedTensor>& parameters,
                                   const OptimConfig& optim);

// One tensor of Optimizer::state(): its name, the parameter it belongs to, and whether it is a
// 0-dim counter (otherwise it has the parameter's shape).
struct StateEntry {
  std::string name;
  size_t parameter = 0;
  bool scalar = false;
};
// Optimizer::state()'s names and order for `parameters`, without building the optimizer: what
// ZeRO-1 gathers from the ranks that own each parameter.
std::vector<StateEntry> state_layout(const std::vector<NamedTensor>& parameters,
                                     const OptimConfig& optim);

}  // namespace cca
