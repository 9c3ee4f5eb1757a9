// A deterministic 64-bit checksum of a tensor's contents, equal on CPU and CUDA, used to verify
// that data-parallel ranks hold identical parameters and to fingerprint checkpoints.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cca {

// Hashes the tensor's bytes in logical (contiguous) order, 32-bit word by word; the result depends
// on dtype, shape-as-flattened and values, not on the device or on how the work was split.
uint64_t tensor_checksum(const at::Tensor& tensor);

// The per-word mixing both implementations share (splitmix64 finaliser of word ⊕ position).
inline uint64_t checksum_mix(uint32_t word, uint64_t index) {
  uint64_t z = (static_cast<uint64_t>(word) << 1 | 1) ^ (index * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace cca
