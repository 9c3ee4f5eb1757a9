#include "attention/kv_cache.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <vector>

namespace cca {
namespace {

constexpr int64_t kMinSpare = 256;

// A contiguous tensor shaped like `like` but `capacity` long along dim, holding `like` first.
at::Tensor grown(const at::Tensor& like, int64_t dim, int64_t capacity) {
  std::vector<int64_t> shape = like.sizes().vec();
  shape[dim] = capacity;
  at::Tensor storage = at::empty(shape, like.options().memory_format(at::MemoryFormat::Contiguous));
  storage.narrow(dim, 0, like.size(dim)).copy_(like);
  return storage;
}

}  // namespace

void SequenceBuffer::append(const at::Tensor& fresh) {
  if (!filled_.defined()) {
    filled_ = fresh;
    return;
  }
  const bool tracked =
      at::GradMode::is_enabled() && (fresh.requires_grad() || filled_.requires_grad());
  if (tracked) {
    storage_ = at::Tensor();
    filled_ = at::cat({filled_, fresh}, dim_);
    return;
  }
  reserve(fresh.sizes(), fresh.options()).copy_(fresh);
  commit(fresh.size(dim_));
}

at::Tensor SequenceBuffer::reserve(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const int64_t added = sizes[dim_];
  if (!filled_.defined()) {
    storage_ = at::empty(sizes, options);
    filled_ = storage_.narrow(dim_, 0, 0);
    return storage_;
  }
  const int64_t length = filled_.size(dim_), needed = length + added;
  // No storage while filled_ is a first append kept as given or a concatenation.
  if (!storage_.defined() || needed > capacity() ||
      storage_.scalar_type() != options.dtype().toScalarType()) {
    storage_ = grown(filled_.to(options.dtype().toScalarType()), dim_,
                     needed + std::max(kMinSpare, needed / 4));
    filled_ = storage_.narrow(dim_, 0, length);
  }
  return storage_.narrow(dim_, length, added);
}

void SequenceBuffer::commit(int64_t added) {
  filled_ = storage_.narrow(dim_, 0, filled_.size(dim_) + added);
}

}  // namespace cca
