#include "optim/adamw.h"

#include "optim/weight_decay.h"
#include "util/error.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca {
namespace {

at::Tensor zeros_like_state(const at::Tensor& parameter) {
  return at::zeros_like(parameter, at::MemoryFormat::Contiguous);
}

}  // namespace

void require_master_weight(const std::string& name, const at::Tensor& parameter) {
  if (parameter.scalar_type() != at::kFloat) {
    throw Error("optimizer: parameter '" + name + "' is " +
                std::string(c10::toString(parameter.scalar_type())) +
                "; the master weights must be float32");
  }
}

AdamW::AdamW(std::vector<NamedTensor> parameters, const OptimConfig& optim) : optim_(optim) {
  decayed_.weight_decay = optim.weight_decay;
  undecayed_.weight_decay = 0.0;
  for (auto& [name, parameter] : parameters) {
    require_master_weight(name, parameter);
    if (!parameter.grad().defined()) {
      // Parameters that receive no gradient in a step still take a (zero-gradient) update, as
      // in every fused AdamW: the kernel needs a gradient tensor for each parameter.
      parameter.mutable_grad() = at::zeros_like(parameter);
    }
    Group& group = takes_weight_decay(name, parameter, optim) ? decayed_ : undecayed_;
    group.names.push_back(name);
    group.params.push_back(parameter);
    group.exp_avgs.push_back(zeros_like_state(parameter));
    group.exp_avg_sqs.push_back(zeros_like_state(parameter));
    group.steps.push_back(at::zeros({}, parameter.options()));
  }
}

std::vector<at::Tensor> AdamW::gradients() const {
  std::vector<at::Tensor> grads;
  for (const Group* group : {&decayed_, &undecayed_}) {
    for (const at::Tensor& p : group->params) grads.push_back(p.grad());
  }
  return grads;
}

void AdamW::zero_grad(bool release) {
  if (release) {
    for (Group* group : {&decayed_, &undecayed_}) {
      for (at::Tensor& p : group->params) p.mutable_grad().reset();
    }
    return;
  }
  std::vector<at::Tensor> grads = gradients();
  if (!grads.empty()) at::_foreach_zero_(grads);
}

// Parameters that received no gradient in a step still take a (zero-gradient) update, as in
// every fused AdamW: the kernel needs a gradient tensor for each parameter.
std::vector<at::Tensor> AdamW::step_gradients() {
  for (Group* group : {&decayed_, &undecayed_}) {
    for (at::Tensor& p : group->params) {
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    }
  }
  return gradients();
}

StepReport AdamW::step(double lr, const at::Tensor& loss, const at::Tensor& frozen) {
  std::vector<at::Tensor> grads = step_gradients();
  const StepReport report = check_and_clip(grads, optim_.grad_clip, loss, frozen);
  update(lr, report.skipped);
  return report;
}

void AdamW::update(double lr, const at::Tensor& skipped) {
  update_group(decayed_, lr, skipped);
  update_group(undecayed_, lr, skipped);
}

std::string AdamW::describe() const {
  return format("AdamW: {} tensors decayed, {} not", decayed_.params.size(),
                undecayed_.params.size());
}

void AdamW::update_group(Group& group, double lr, const at::Tensor& skip) {
  if (group.params.empty()) return;
  std::vector<at::Tensor> grads;
  grads.reserve(group.params.size());
  for (const at::Tensor& p : group.params) grads.push_back(p.grad());
  // The kernel reads the already-incremented step for bias correction and returns early when
  // found_inf is 1, so a skipped step must not advance the counters either.
  at::_foreach_add_(group.steps, 1.0 - skip);
  at::_fused_adamw_(group.params, grads, group.exp_avgs, group.exp_avg_sqs, {}, group.steps, lr,
                    optim_.beta1, optim_.beta2, group.weight_decay, optim_.eps,
                    /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/std::nullopt,
                    /*found_inf=*/skip);
}

std::vector<NamedTensor> AdamW::state() const {
  std::vector<NamedTensor> out;
  for (const Group* group : {&decayed_, &undecayed_}) {
    for (size_t i = 0; i < group->names.size(); ++i) {
      out.push_back({"exp_avg/" + group->names[i], group->exp_avgs[i]});
      out.push_back({"exp_avg_sq/" + group->names[i], group->exp_avg_sqs[i]});
      out.push_back({"step/" + group->names[i], group->steps[i]});
    }
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& tensors,
                       const std::string& source) {
  at::NoGradGuard no_grad;
  for (Group* group : {&decayed_, &undecayed_}) {
    for (size_t i = 0; i < group->names.size(); ++i) {
      const std::pair<const char*, at::Tensor*> slots[] = {{"exp_avg/", &group->exp_avgs[i]},
                                                           {"exp_avg_sq/", &group->exp_avg_sqs[i]},
                                                           {"step/", &group->steps[i]}};
      for (const auto& [prefix, slot] : slots) {
        const std::string key = prefix + group->names[i];
        const auto found = tensors.find(key);
        if (found == tensors.end())
          throw Error(source + ": missing optimizer tensor '" + key + "'");
        if (found->second.sizes() != slot->sizes()) {
          throw Error(source + ": optimizer tensor '" + key + "' has shape " +
                      shape_text(found->second.sizes().vec()) + ", expected " +
                      shape_text(slot->sizes().vec()));
        }
        slot->copy_(found->second);
      }
    }
  }
}

}  // namespace cca
