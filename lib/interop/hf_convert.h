// Moving tensors through a TensorMap (hf_tensor_map.h): our checkpoint's tensors to the HF
// layout (export), and an HF folder's tensors to ours (import), checking every name and shape
// first and reporting all problems in one error. Torch-free: bytes, shapes and dtype names.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"
#include "interop/hf_tensor_map.h"
#include "interop/hf_weights.h"

namespace cca::interop {

using Shapes = std::map<std::string, std::vector<int64_t>>;

// The HF tensors, in the map's order, in `dtype` ("F32" or "BF16"; the MoE selection bias stays
// F32). Throws cca::Error when a tensor of `ours` has no place in the map or a zero-filled one
// is not zero (the target class would compute something else).
std::vector<std::pair<std::string, HostTensor>> to_hf_tensors(const TensorMap& map,
                                                              const safetensors::File& ours,
                                                              const std::string& dtype);

// Our tensors (F32) with the shapes in `expected` (every tensor of the model), read from an HF
// folder. Throws one cca::Error listing every mismatched shape (name, expected, found), every
// missing and every unexpected tensor.
std::map<std::string, HostTensor> from_hf_tensors(const TensorMap& map, const HfWeights& hf,
                                                  const Shapes& expected);

// One cca::Error listing every tensor whose shape differs (name, expected, found), every
// expected one missing from `found` and every unexpected one, or nothing when they agree.
void check_shapes(const Shapes& expected, const Shapes& found, const std::string& source);

}  // namespace cca::interop
