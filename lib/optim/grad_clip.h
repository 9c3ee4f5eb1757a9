// Global-norm gradient clipping with a device-side non-finite guard: what every optimizer step
// runs before its update, sharded (ZeRO-1) or not, so both agree bitwise.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace cca {

// What one optimizer step did, as device tensors (read them when logging, not every step).
struct StepReport {
  at::Tensor grad_norm;  // global L2 norm of the gradients before clipping (fp32 scalar)
  at::Tensor skipped;    // 1.0 when the step was dropped (non-finite loss or gradient), else 0.0
};

// The global L2 norm of `grads` (returned as reported before clipping), the non-finite flag
// (non-finite norm or loss, or `frozen` set), then clipping of `grads` in place to `grad_clip`
// when > 0. Every optimizer step runs exactly this, so sharded and unsharded runs agree bitwise.
StepReport check_and_clip(std::vector<at::Tensor>& grads, double grad_clip, const at::Tensor& loss,
                          const at::Tensor& frozen);

}  // namespace cca
