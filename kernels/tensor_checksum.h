#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cca::kernels {

// CUDA implementation of cca::tensor_checksum for a contiguous CUDA tensor.
uint64_t tensor_checksum_cuda(const at::Tensor& contiguous);

}  // namespace cca::kernels
