#pragma once

#include <torch/nn/module.h>

namespace cca {

// RMSNorm over the last dimension with a learned scale (initialised to 1).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight;

 private:
  int64_t dim_;
  double eps_;
};

}  // namespace cca
