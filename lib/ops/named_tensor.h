// A tensor with its name: a model parameter path ("blocks.0.ffn_norm.weight"), an optimizer state
// entry ("exp_avg/<param>") or a generator state ("cpu"), as checkpoints, the optimizer and data
// parallelism pass them around.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace cca {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

}  // namespace cca
