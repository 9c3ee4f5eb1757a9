// AdamW with decoupled weight decay over two parameter groups (decayed / not decayed, by
// optim/weight_decay.h), run by LibTorch's fused kernel (_fused_adamw_, on CPU and CUDA), with
// global-norm clipping and a device-side non-finite guard (optim/grad_clip.h), so a step needs no
// host synchronisation. Muon (optim/muon.h) runs one for the parameters it does not orthogonalise.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "ops/named_tensor.h"
#include "optim/grad_clip.h"
#include "optim/optimizer.h"

namespace cca {

// Throws cca::Error naming `name` unless `parameter` is float32: optimizers update master
// weights, never bf16 copies.
void require_master_weight(const std::string& name, const at::Tensor& parameter);

class AdamW : public Optimizer {
 public:
  // `parameters` must all live on one device with dtype float32 (the master weights).
  AdamW(std::vector<NamedTensor> parameters, const OptimConfig& optim);

  StepReport step(double lr, const at::Tensor& loss, const at::Tensor& frozen = {}) override;
  void zero_grad(bool release = false) override;
  // "exp_avg/<param>", "exp_avg_sq/<param>", "step/<param>", decayed parameters first.
  std::vector<NamedTensor> state() const override;
  void load_state(const std::map<std::string, at::Tensor>& tensors,
                  const std::string& source) override;
  std::string describe() const override;

  // For an optimizer that runs AdamW on some of its parameters and checks and clips all
  // gradients together (Muon): the gradients in clipping order (a missing one becomes zeros),
  // then the update alone, skipped where `skipped` (0-dim, 1.0 = skip) is set.
  std::vector<at::Tensor> step_gradients();
  void update(double lr, const at::Tensor& skipped);

  int64_t decayed_count() const { return static_cast<int64_t>(decayed_.params.size()); }
  int64_t undecayed_count() const { return static_cast<int64_t>(undecayed_.params.size()); }
  const std::vector<std::string>& undecayed_names() const { return undecayed_.names; }

 private:
  struct Group {
    std::vector<std::string> names;
    std::vector<at::Tensor> params, exp_avgs, exp_avg_sqs, steps;
    double weight_decay = 0;
  };
  void update_group(Group& group, double lr, const at::Tensor& skip);
  std::vector<at::Tensor> gradients() const;

  OptimConfig optim_;
  Group decayed_, undecayed_;
};

}  // namespace cca
