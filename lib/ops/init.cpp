#include "ops/init.h"

#include <ATen/core/grad_mode.h>

namespace cca {

void init_normal(at::Tensor& weight, double std) {
  at::NoGradGuard no_grad;
  weight.normal_(0.0, std);
}

}  // namespace cca
