#include "optim/muon.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "optim/newton_schulz.h"
#include "optim/weight_decay.h"
#include "util/error.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca {

Muon::Muon(std::vector<NamedTensor> parameters, const OptimConfig& optim) : optim_(optim) {
  std::vector<NamedTensor> rest;
  for (NamedTensor& p : parameters) {
    if (!orthogonalised_by_muon(p.name, p.tensor)) {
      rest.push_back(std::move(p));
      continue;
    }
    require_master_weight(p.name, p.tensor);
    matrices_.push_back({p.name, p.tensor, at::zeros_like(p.tensor, at::MemoryFormat::Contiguous)});
  }
  adamw_ = std::make_unique<AdamW>(std::move(rest), optim);
  std::map<std::vector<int64_t>, size_t> group_of_shape;
  for (size_t i = 0; i < matrices_.size(); ++i) {
    const auto [it, added] =
        group_of_shape.emplace(matrices_[i].param.sizes().vec(), shape_groups_.size());
    if (added) shape_groups_.emplace_back();
    shape_groups_[it->second].push_back(i);
  }
}

double Muon::rms_matching_scale(const at::Tensor& parameter) {
  return 0.2 * std::sqrt(static_cast<double>(std::max(parameter.size(-2), parameter.size(-1))));
}

StepReport Muon::step(double lr, const at::Tensor& loss, const at::Tensor& frozen) {
  std::vector<at::Tensor> grads;
  for (Matrix& m : matrices_) {
    if (!m.param.grad().defined()) m.param.mutable_grad() = at::zeros_like(m.param);
    grads.push_back(m.param.grad());
  }
  for (at::Tensor& g : adamw_->step_gradients()) grads.push_back(g);
  const StepReport report = check_and_clip(grads, optim_.grad_clip, loss, frozen);
  update_matrices(lr, report.skipped);
  adamw_->update(lr, report.skipped);
  return report;
}

// Each matrix's new momentum and weight are computed aside and committed with a device-side
// select, so a skipped step (even with NaN gradients, which a blend by 0 would let through)
// leaves both as they were.
void Muon::update_matrices(double lr, const at::Tensor& skipped) {
  if (matrices_.empty()) return;
  at::NoGradGuard no_grad;
  const at::Tensor keep = skipped.ne(0);
  const at::ScalarType dtype = newton_schulz_dtype(matrices_.front().param.device());
  for (const std::vector<size_t>& group : shape_groups_) update_group(group, lr, keep, dtype);
}

void Muon::update_group(const std::vector<size_t>& group, double lr, const at::Tensor& keep,
                        at::ScalarType dtype) {
  const double mu = optim_.muon.momentum;
  std::vector<at::Tensor> grads, momenta, params;
  for (size_t i : group) {
    grads.push_back(matrices_[i].param.grad());
    momenta.push_back(matrices_[i].momentum);
    params.push_back(matrices_[i].param);
  }
  std::vector<at::Tensor> momentum = at::_foreach_mul(momenta, mu);
  at::_foreach_add_(momentum, grads);
  const std::vector<at::Tensor> direction =
      optim_.muon.nesterov ? at::_foreach_add(grads, momentum, mu) : momentum;
  // [n, out, in] expert stacks and plain [out, in] matrices alike become one [N, out, in] batch.
  const at::Tensor& first = params.front();
  const at::Tensor stacked = at::stack(direction);
  const at::Tensor orthogonal = newton_schulz(stacked.reshape({-1, first.size(-2), first.size(-1)}),
                                              optim_.muon.ns_steps, dtype)
                                    .to(at::kFloat)
                                    .reshape(stacked.sizes());
  std::vector<at::Tensor> weight = at::_foreach_mul(params, 1.0 - lr * optim_.weight_decay);
  at::_foreach_add_(weight, orthogonal.unbind(0), -lr * rms_matching_scale(first));
  for (size_t j = 0; j < group.size(); ++j) {
    momenta[j].copy_(at::where(keep, momenta[j], momentum[j]));
    params[j].copy_(at::where(keep, params[j], weight[j]));
  }
}

void Muon::zero_grad(bool release) {
  for (Matrix& m : matrices_) {
    if (release) {
      m.param.mutable_grad().reset();
    } else if (m.param.grad().defined()) {
      m.param.mutable_grad().zero_();
    }
  }
  adamw_->zero_grad(release);
}

std::vector<NamedTensor> Muon::state() const {
  std::vector<NamedTensor> out;
  for (const Matrix& m : matrices_) out.push_back({kMuonMomentumPrefix + m.name, m.momentum});
  for (NamedTensor& t : adamw_->state()) out.push_back(std::move(t));
  return out;
}

void Muon::load_state(const std::map<std::string, at::Tensor>& tensors, const std::string& source) {
  at::NoGradGuard no_grad;
  for (Matrix& m : matrices_) {
    const std::string key = kMuonMomentumPrefix + m.name;
    const auto found = tensors.find(key);
    if (found == tensors.end()) {
      throw Error(source + ": missing optimizer tensor '" + key +
                  "' (a checkpoint of optim.kind adamw cannot continue with muon)");
    }
    if (found->second.sizes() != m.momentum.sizes()) {
      throw Error(source + ": optimizer tensor '" + key + "' has shape " +
                  shape_text(found->second.sizes().vec()) + ", expected " +
                  shape_text(m.momentum.sizes().vec()));
    }
    m.momentum.copy_(found->second);
  }
  adamw_->load_state(tensors, source);
}

std::string Muon::describe() const {
  int64_t elements = 0;
  for (const Matrix& m : matrices_) elements += m.param.numel();
  return format("Muon: {} matrices ({} parameters); {}", matrices_.size(),
                human_count(static_cast<double>(elements)), adamw_->describe());
}

}  // namespace cca
