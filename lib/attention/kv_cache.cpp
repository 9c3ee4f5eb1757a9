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
  const int64_t length = filled_.size(dim_), added = fresh.size(dim_);
  if (length + added > capacity() || storage_.scalar_type() != fresh.scalar_type()) {
    const int64_t needed = length + added;
    storage_ =
        grown(filled_.to(fresh.scalar_type()), dim_, needed + std::max(kMinSpare, needed / 4));
  }
  storage_.narrow(dim_, length, added).copy_(fresh);
  filled_ = storage_.narrow(dim_, 0, length + added);
}

}  // namespace cca
