#include "dist/gradient_buckets.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "dist/communicator.h"
#include "util/error.h"
#include "util/format.h"

namespace cca::dist {
namespace {

class ReadyHook : public torch::autograd::PostAccumulateGradHook {
 public:
  ReadyHook(GradientBuckets* owner, size_t parameter) : owner_(owner), parameter_(parameter) {}
  void operator()(const torch::autograd::Variable& /*tensor*/) override {
    owner_->gradient_ready(parameter_);
  }

 private:
  GradientBuckets* owner_;
  size_t parameter_;
};

}  // namespace

GradientBuckets::GradientBuckets(Communicator& communicator,
                                 const std::vector<NamedTensor>& parameters, int64_t bucket_bytes)
    : communicator_(communicator), parameters_(parameters) {
  if (parameters_.empty()) throw Error("gradient buckets: no parameters");
  const at::TensorOptions options = parameters_.front().tensor.options();
  bucket_of_.assign(parameters_.size(), 0);
  arrived_.assign(parameters_.size(), false);
  // Reverse registration order: the output side's gradients come first in backward.
  std::vector<std::vector<size_t>> groups(1);
  int64_t filled = 0;
  for (size_t k = parameters_.size(); k-- > 0;) {
    const at::Tensor& p = parameters_[k].tensor;
    if (p.scalar_type() != options.dtype().toScalarType() || p.device() != options.device()) {
      throw Error("gradient buckets: parameter '" + parameters_[k].name +
                  "' differs in dtype or device from '" + parameters_.front().name + "'");
    }
    const int64_t bytes = p.numel() * p.element_size();
    if (!groups.back().empty() && filled + bytes > bucket_bytes) {
      groups.emplace_back();
      filled = 0;
    }
    groups.back().push_back(k);
    filled += bytes;
  }
  at::NoGradGuard no_grad;
  for (const std::vector<size_t>& members : groups) {
    int64_t numel = 0;
    for (size_t k : members) numel += parameters_[k].tensor.numel();
    Bucket bucket;
    bucket.buffer = at::zeros({numel}, options.requires_grad(false));
    bucket.members = members;
    int64_t offset = 0;
    for (size_t k : members) {
      at::Tensor& p = parameters_[k].tensor;
      at::Tensor view = bucket.buffer.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) view.copy_(p.grad());
      p.mutable_grad() = view;  // autograd accumulates in place into a defined .grad
      offset += p.numel();
      bucket_of_[k] = buckets_.size();
      torch::autograd::impl::set_post_acc_grad_hooks(p, std::make_unique<ReadyHook>(this, k));
    }
    buckets_.push_back(std::move(bucket));
  }
  reset_counts();
}

GradientBuckets::~GradientBuckets() {
  for (NamedTensor& p : parameters_) {
    torch::autograd::impl::set_post_acc_grad_hooks(p.tensor, nullptr);
  }
}

std::string GradientBuckets::describe() const {
  int64_t bytes = 0;
  for (const Bucket& b : buckets_) bytes += b.buffer.numel() * b.buffer.element_size();
  return format("{} gradient buckets, {:.1f} MiB in all", buckets_.size(),
                static_cast<double>(bytes) / (1024.0 * 1024.0));
}

void GradientBuckets::reset_counts() {
  for (Bucket& b : buckets_) {
    b.waiting = b.members.size();
    b.work.reset();
  }
  arrived_.assign(parameters_.size(), false);
  next_to_start_ = 0;
}

void GradientBuckets::set_last_micro_batch(bool last) {
  std::lock_guard<std::mutex> lock(mutex_);
  last_micro_batch_ = last;
}

void GradientBuckets::gradient_ready(size_t parameter) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!last_micro_batch_ || arrived_[parameter]) return;
  arrived_[parameter] = true;
  Bucket& bucket = buckets_[bucket_of_[parameter]];
  --bucket.waiting;
  if (bucket.waiting == 0 && overlap_) start_ready_buckets(/*from_hook=*/true);
}

void GradientBuckets::start_ready_buckets(bool from_hook) {
  while (next_to_start_ < buckets_.size() &&
         (buckets_[next_to_start_].waiting == 0 || !from_hook)) {
    Bucket& bucket = buckets_[next_to_start_++];
    std::vector<at::Tensor> tensors = {bucket.buffer};
    bucket.work = communicator_.start_all_reduce_sum(tensors);
  }
}

void GradientBuckets::finish(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  started_during_backward_ = static_cast<int64_t>(next_to_start_);
  start_ready_buckets(/*from_hook=*/false);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    communicator_.wait(buckets_[b].work, format("all-reduce of gradient bucket {}/{} at step {}",
                                                b + 1, buckets_.size(), step));
  }
  // A .grad replaced behind our back (set to a fresh tensor) would silently stop being reduced.
  for (const Bucket& bucket : buckets_) {
    for (size_t k : bucket.members) {
      const at::Tensor& grad = parameters_[k].tensor.grad();
      if (!grad.defined() || !grad.is_alias_of(bucket.buffer)) {
        throw Error("gradient of '" + parameters_[k].name +
                    "' is no longer a view of its all-reduce bucket (was .grad reset to None?)");
      }
    }
  }
  reset_counts();
  last_micro_batch_ = true;
}

}  // namespace cca::dist
