#include "dist/context_group.h"

#include <torch/csrc/distributed/c10d/Work.hpp>

#include <vector>

#include "dist/communicator.h"

namespace cca::dist {

ContextGroup::ContextGroup(Communicator& communicator, c10::intrusive_ptr<c10d::Backend> backend,
                           int rank, int size)
    : communicator_(communicator),
      backend_(std::move(backend)),
      rank_(rank),
      size_(size),
      nccl_(backend_->getBackendName() == "nccl") {}

at::Tensor ContextGroup::all_gather(const at::Tensor& mine) {
  const at::Tensor input = mine.contiguous();
  std::vector<int64_t> sizes = {size_};
  for (int64_t s : input.sizes()) sizes.push_back(s);
  at::Tensor out = at::empty(sizes, input.options());
  const std::string what = "context-parallel all-gather";
  if (nccl_) {  // one flat buffer, no copies
    at::Tensor flat_input = input;
    communicator_.wait(communicator_.start_checked(
                           what, [&] { return backend_->_allgather_base(out, flat_input); }),
                       what);
    return out;
  }
  std::vector<at::Tensor> inputs = {input};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < size_; ++r) outputs[0].push_back(out[r]);
  communicator_.wait(
      communicator_.start_checked(what, [&] { return backend_->allgather(outputs, inputs); }),
      what);
  return out;
}

at::Tensor ContextGroup::reduce_scatter(const at::Tensor& full) {
  const std::string what = "context-parallel reduce-scatter (the gathered tensors' gradients)";
  at::Tensor input = full.contiguous();
  if (nccl_) {
    at::Tensor out = at::empty_like(input[0]);
    c10d::ReduceScatterOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    communicator_.wait(
        communicator_.start_checked(
            what, [&] { return backend_->_reduce_scatter_base(out, input, options); }),
        what);
    return out;
  }
  // Gloo has no reduce-scatter on one flat tensor: sum the whole buffer, keep this rank's slice.
  // The CPU path carries N times the bytes; it exists for exactness tests and small runs.
  at::Tensor summed = input.clone();
  std::vector<at::Tensor> tensors = {summed};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  communicator_.wait(
      communicator_.start_checked(what, [&] { return backend_->allreduce(tensors, options); }),
      what);
  return summed[rank_].clone();
}

}  // namespace cca::dist
