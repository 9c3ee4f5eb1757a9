#pragma once

#include <torch/nn/module.h>

namespace cca {

// The residual stream after an add, and its normalised copy.
struct NormedSum {
  at::Tensor sum;     // residual + delta, in the residual's dtype
  at::Tensor normed;  // RMSNorm(sum), in the dtype forward() would return
};

// RMSNorm over the last dimension with a learned scale (initialised to 1).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;
  // residual + delta and its norm. On CUDA, for an fp32 residual and a delta in the output's
  // dtype, one kernel each way (kernels/add_rms_norm.h); elsewhere the add, then forward().
  // An undefined delta means nothing to add: {residual, forward(residual)}.
  NormedSum forward_add(const at::Tensor& residual, const at::Tensor& delta) const;
  at::Tensor weight;

 private:
  int64_t dim_;
  double eps_;
};

}  // namespace cca
