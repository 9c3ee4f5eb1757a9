// Weight initialisation shared by every module (attention, FFN, MoE experts).
#pragma once

#include <ATen/ATen.h>

namespace cca {

// Initialises a weight from N(0, std²) in place, outside autograd.
void init_normal(at::Tensor& weight, double std);

}  // namespace cca
