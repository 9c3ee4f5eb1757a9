#include "dist/zero1.h"

#include <map>

#include "dist/communicator.h"
#include "optim/optimizer.h"
#include "util/error.h"
#include "util/format.h"

namespace cca::dist {

Zero1::Zero1(Communicator& communicator, const std::vector<NamedTensor>& parameters,
             const OptimConfig& optim)
    : communicator_(communicator), parameters_(parameters), optim_(optim) {
  // Greedy by size in registration order: deterministic, so every rank computes the same owners.
  std::vector<int64_t> load(static_cast<size_t>(communicator_.world_size()), 0);
  for (const NamedTensor& p : parameters_) {
    size_t lightest = 0;
    for (size_t r = 1; r < load.size(); ++r) {
      if (load[r] < load[lightest]) lightest = r;
    }
    owner_.push_back(static_cast<int>(lightest));
    load[lightest] += p.tensor.numel();
  }
  clipping_order_ = clipping_order(parameters_, optim_);
}

std::vector<NamedTensor> Zero1::owned_parameters() const {
  std::vector<NamedTensor> owned;
  for (size_t k = 0; k < parameters_.size(); ++k) {
    if (owner_[k] == communicator_.rank()) owned.push_back(parameters_[k]);
  }
  if (owned.empty()) {
    throw Error(
        format("distributed.zero1: rank {} of {} owns no parameter (the model has {} "
               "tensors); use fewer ranks or distributed.zero1: false",
               communicator_.rank(), communicator_.world_size(), parameters_.size()));
  }
  return owned;
}

OptimConfig Zero1::local_optim() const {
  OptimConfig local = optim_;
  local.grad_clip = 0;  // clip() already clipped by the global norm
  return local;
}

std::string Zero1::describe() const {
  int64_t tensors = 0, elements = 0, total = 0;
  for (size_t k = 0; k < parameters_.size(); ++k) {
    total += parameters_[k].tensor.numel();
    if (owner_[k] != communicator_.rank()) continue;
    ++tensors;
    elements += parameters_[k].tensor.numel();
  }
  return format("ZeRO-1: this rank keeps {} state for {} of {} tensors ({:.1f}% of elements)",
                optim_.kind == "muon" ? "Muon and AdamW" : "AdamW", tensors, parameters_.size(),
                100.0 * static_cast<double>(elements) / total);
}

StepReport Zero1::clip(const at::Tensor& loss, const at::Tensor& frozen) {
  // Over every gradient in the optimizer's order, so the result is bit-identical to the unsharded
  // step.
  std::vector<at::Tensor> grads;
  for (size_t k : clipping_order_) grads.push_back(parameters_[k].tensor.grad());
  return check_and_clip(grads, optim_.grad_clip, loss, frozen);
}

void Zero1::zero_grad() {
  std::vector<at::Tensor> grads;
  for (const NamedTensor& p : parameters_) {
    if (p.tensor.grad().defined()) grads.push_back(p.tensor.grad());
  }
  if (!grads.empty()) at::_foreach_zero_(grads);
}

void Zero1::share_parameters(int64_t step) {
  at::NoGradGuard no_grad;
  for (int r = 0; r < communicator_.world_size(); ++r) {
    std::vector<at::Tensor> owned;
    for (size_t k = 0; k < parameters_.size(); ++k) {
      if (owner_[k] == r) owned.push_back(parameters_[k].tensor.detach());
    }
    std::vector<at::Tensor> flat;
    if (r == communicator_.rank()) {
      std::vector<at::Tensor> pieces;
      for (const at::Tensor& p : owned) pieces.push_back(p.reshape({-1}));
      flat.push_back(at::cat(pieces));
    } else {
      int64_t numel = 0;
      for (const at::Tensor& p : owned) numel += p.numel();
      flat.push_back(at::empty({numel}, owned.front().options()));
    }
    communicator_.broadcast(
        flat, r, format("broadcast of rank {}'s updated parameters at step {}", r, step));
    if (r == communicator_.rank()) continue;
    int64_t offset = 0;
    for (at::Tensor& p : owned) {
      p.copy_(flat[0].narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
  }
}

std::vector<NamedTensor> Zero1::gather_state(const std::vector<NamedTensor>& local_state) {
  std::map<std::string, at::Tensor> mine;
  for (const NamedTensor& t : local_state) mine[t.name] = t.tensor;
  std::vector<NamedTensor> all;
  for (const StateEntry& entry : state_layout(parameters_, optim_)) {
    const NamedTensor& p = parameters_[entry.parameter];
    std::vector<at::Tensor> slot;
    if (owner_[entry.parameter] == communicator_.rank()) {
      slot.push_back(mine.at(entry.name).clone());
    } else {
      slot.push_back(entry.scalar ? at::zeros({}, p.tensor.options()) : at::empty_like(p.tensor));
    }
    communicator_.broadcast(slot, owner_[entry.parameter], "gathering the sharded optimizer state");
    all.push_back({entry.name, slot[0]});
  }
  return all;
}

}  // namespace cca::dist
