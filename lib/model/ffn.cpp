#include "model/ffn.h"

#include <ATen/ATen.h>

#include "ops/fp8_linear.h"
#include "ops/init.h"
#include "ops/swiglu.h"

namespace cca {

SwiGluImpl::SwiGluImpl(int64_t model_dim, int64_t hidden, double init_std, double output_init_std) {
  w1 = register_parameter("w1", at::empty({hidden, model_dim}));
  w3 = register_parameter("w3", at::empty({hidden, model_dim}));
  w2 = register_parameter("w2", at::empty({model_dim, hidden}));
  init_normal(w1, init_std);
  init_normal(w3, init_std);
  init_normal(w2, output_init_std);
}

at::Tensor SwiGluImpl::forward(const at::Tensor& x) const {
  return hidden_linear(swiglu_product(hidden_linear(x, w1), hidden_linear(x, w3)), w2);
}

}  // namespace cca
