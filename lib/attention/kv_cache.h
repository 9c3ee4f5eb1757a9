// Decode state that grows along the sequence: the key/value cache of the variants that store
// per-head keys and values, and the building block MLA's latent cache uses.
#pragma once

#include <ATen/ATen.h>

namespace cca {

// A tensor that grows along one dimension. The first append is kept as given (a prefill sees
// exactly its own tensors). Later appends made for generation write into spare capacity, a
// quarter of the length or at least 256 positions, so a decode step copies only its own tokens
// instead of the whole history; appends that autograd must see (inputs requiring grad under
// grad mode) concatenate instead, since writing into a shared buffer would invalidate what
// backward saved.
class SequenceBuffer {
 public:
  explicit SequenceBuffer(int64_t dim) : dim_(dim) {}

  void append(const at::Tensor& fresh);
  // Slots for `added` more positions, shaped like a `like`-sized append and in its dtype and
  // device, for a kernel to write into; commit() then makes them part of filled(). Never under
  // autograd. An empty buffer gets exactly `added` positions, as a first append would.
  at::Tensor reserve(at::IntArrayRef sizes, const at::TensorOptions& options);
  void commit(int64_t added);
  // The filled part (undefined before the first append).
  const at::Tensor& filled() const { return filled_; }
  int64_t length() const { return filled_.defined() ? filled_.size(dim_) : 0; }
  // Bytes of the filled part; spare capacity is not counted.
  int64_t bytes() const {
    return filled_.defined() ? filled_.numel() * static_cast<int64_t>(filled_.element_size()) : 0;
  }
  // Positions that fit before the next reallocation (0 while no buffer is held).
  int64_t capacity() const { return storage_.defined() ? storage_.size(dim_) : 0; }

 private:
  int64_t dim_;
  at::Tensor storage_;  // contiguous, capacity() positions along dim_
  at::Tensor filled_;   // storage_'s first length() positions, or the first append as given
};

struct KeyValueCache {
  SequenceBuffer keys{2};    // [B, H, L, Dk]
  SequenceBuffer values{2};  // [B, H, L, Dv]

  // Appends [B, H, S, D] keys and values along the sequence.
  void append(const at::Tensor& new_keys, const at::Tensor& new_values) {
    keys.append(new_keys);
    values.append(new_values);
  }
  int64_t bytes() const { return keys.bytes() + values.bytes(); }
};

}  // namespace cca
