// Mixture-of-Experts feed-forward layer: fp32 router (softmax or sigmoid scores), top-k, optional
// renormalisation, Switch aux loss, router z-loss, aux-loss-free selection bias, dropless
// permute -> per-expert SwiGLU -> weighted unpermute, optional shared experts.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>

#include "config/config.h"
#include "ops/sequence_shard.h"

namespace cca {

// Unweighted auxiliary losses of one forward pass (the caller applies the coefficients).
struct MoeLosses {
  at::Tensor
      load_balance;  // Switch: n_experts · Σ_e f_e · P_e  (f = token fraction, P = mean score)
  at::Tensor router_z;  // mean over tokens of logsumexp(router logits)²
};

// How the routed experts' matrix products run. kAuto: one grouped GEMM (at::_grouped_mm) for
// CUDA bf16/fp16 inputs with 16-byte-aligned widths, else a loop over experts.
enum class MoeExpertKernel { kAuto, kLoop, kGrouped };

class MoeImpl : public torch::nn::Module {
 public:
  MoeImpl(int64_t model_dim, const MoeConfig& config, int64_t expert_hidden, double init_std,
          double output_init_std);

  // x: [B, S, E] -> [B, S, E]. Fills `losses` (scalars, differentiable). Under context
  // parallelism `shard` (ops/sequence_shard.h) says that x holds this rank's share of the
  // sequences: the token fractions of the Switch loss are then those of the whole sequences
  // (counts all-gathered over shard->group), and both losses are this rank's part of the
  // sequence batch's loss, so the group's ranks' losses sum to the one-device value.
  at::Tensor forward(const at::Tensor& x, MoeLosses& losses, const SequenceShard* shard = nullptr);

  // Tokens routed to each expert in the last forward, as fractions of all routed slots
  // [n_experts] (of the whole sequences under context parallelism).
  at::Tensor last_expert_load() const { return last_load_; }
  // Aux-loss-free balancing: bias_e += rate · sign(mean load − load_e), from the loads summed
  // since the previous call. No-op when moe.bias_update_rate is 0.
  void update_selection_bias();
  // Routed-slot counts per expert [n_experts] (int64) summed over training-mode forwards since
  // the last update_selection_bias(); undefined before the first training forward. This rank's
  // tokens only, also under context parallelism: the trainer all-reduces (sums) it in place over
  // every rank, data- and context-parallel, before updating so every rank moves its bias
  // identically.
  at::Tensor& pending_expert_counts() { return load_since_update_; }

  // Casting the layer (e.g. the model to bf16) keeps router_weight and selection_bias at fp32
  // or wider: bias steps of ~1e-3 vanish in bf16, and the router runs at fp32 anyway.
  using torch::nn::Module::to;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;

  // For tests and benchmarks: force one expert kernel (kGrouped needs float32/bf16/fp16).
  void set_expert_kernel(MoeExpertKernel kernel) { kernel_ = kernel; }

  at::Tensor router_weight;         // [n_experts, E], fp32 (fp64 in a fp64 layer)
  at::Tensor expert_w1, expert_w3;  // [n_experts, hidden, E]
  at::Tensor expert_w2;             // [n_experts, E, hidden]
  // Shared experts stacked along hidden: w1/w3 [S·hidden, E], w2 [E, S·hidden]; undefined if none.
  at::Tensor shared_w1, shared_w3, shared_w2;
  at::Tensor selection_bias;  // buffer [n_experts], used only to choose experts

 private:
  struct Routing {
    at::Tensor logits;   // [T, n_experts], router dtype (fp32, or fp64 for fp64 inputs)
    at::Tensor scores;   // [T, n_experts] softmax or sigmoid of logits
    at::Tensor experts;  // [T, k] chosen expert ids (int64)
    at::Tensor gates;    // [T, k] weights of the chosen experts, router dtype
    at::Tensor counts;   // [n_experts] routed slots per expert (int64)
  };

  // What the router's statistics are taken over: this rank's tokens, or the whole sequences.
  struct SequenceCounts {
    at::Tensor counts;   // [n_experts] routed slots per expert (int64)
    int64_t tokens = 0;  // tokens they were routed from
  };

  Routing route(const at::Tensor& tokens) const;
  SequenceCounts sequence_counts(const Routing& r, const SequenceShard* shard) const;
  MoeLosses router_losses(const Routing& r, const SequenceCounts& whole) const;
  void record_load(const Routing& r, const SequenceCounts& whole);
  at::Tensor routed_experts(const at::Tensor& tokens, const Routing& r) const;
  at::Tensor expert_loop(const at::Tensor& permuted, const at::Tensor& counts) const;
  at::Tensor expert_grouped(const at::Tensor& permuted, const at::Tensor& counts) const;
  bool use_grouped(const at::Tensor& x) const;
  void restore_router_precision(const at::Tensor& router, const at::Tensor& bias);

  MoeConfig config_;
  int64_t model_dim_;
  int64_t hidden_;
  MoeExpertKernel kernel_ = MoeExpertKernel::kAuto;
  at::Tensor last_load_;
  at::Tensor load_since_update_;
};

}  // namespace cca
