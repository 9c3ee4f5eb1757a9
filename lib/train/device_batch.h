// A host micro-batch on its way to the device, shared by the training step and evaluation.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

#include "data/loader.h"

namespace cca {

// Host batch -> int64 tensors on the device. The staging buffer is pinned on CUDA so the copy is
// asynchronous (a pageable copy would synchronise the stream every micro-batch).
std::pair<at::Tensor, at::Tensor> to_device(const data::Batch& batch, const at::Device& device);

// Targets that count (>= 0; -1 marks padding).
int64_t count_valid_targets(const data::Batch& batch);

}  // namespace cca
