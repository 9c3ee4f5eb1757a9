#pragma once

#include <torch/nn/module.h>

namespace cca {

// SwiGLU feed-forward: w2( silu(w1 x) * w3 x ). Weights [out, in] as in nn.Linear.
class SwiGluImpl : public torch::nn::Module {
 public:
  SwiGluImpl(int64_t model_dim, int64_t hidden, double init_std, double output_init_std);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor w1, w3, w2;
};

}  // namespace cca
