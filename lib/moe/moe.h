// Mixture-of-Experts feed-forward layer: fp32 router (softmax or sigmoid scores), top-k, optional
// renormalisation, Switch aux loss, router z-loss, aux-loss-free selection bias, dropless
// permute -> per-expert SwiGLU -> weighted unpermute, optional shared experts.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>

#include "config/config.h"

namespace cca {

// Unweighted auxiliary losses of one forward pass (the caller applies the coefficients).
struct MoeLosses {
  at::Tensor load_balance;  // Switch: n_experts · Σ_e f_e · P_e  (f = token fraction, P = mean score)
  at::Tensor router_z;      // mean over tokens of logsumexp(router logits)²
};

class MoeImpl : public torch::nn::Module {
 public:
  MoeImpl(int64_t model_dim, const MoeConfig& config, int64_t expert_hidden, double init_std,
          double output_init_std);

  // x: [B, S, E] -> [B, S, E]. Fills `losses` (scalars, differentiable).
  at::Tensor forward(const at::Tensor& x, MoeLosses& losses);

  // Tokens routed to each expert in the last forward, as fractions of all routed slots [n_experts].
  at::Tensor last_expert_load() const { return last_load_; }
  // Aux-loss-free balancing: bias_e += rate · sign(mean load − load_e), from the loads summed
  // since the previous call. No-op when moe.bias_update_rate is 0.
  void update_selection_bias();

  at::Tensor router_weight;      // [n_experts, E], kept in fp32
  at::Tensor expert_w1, expert_w3;  // [n_experts, hidden, E]
  at::Tensor expert_w2;          // [n_experts, E, hidden]
  at::Tensor shared_w1, shared_w3, shared_w2;  // shared experts stacked along hidden; undefined if none
  at::Tensor selection_bias;     // buffer [n_experts], used only to choose experts

 private:
  MoeConfig config_;
  at::Tensor last_load_;
  at::Tensor load_since_update_;
};

}  // namespace cca
