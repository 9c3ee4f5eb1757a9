// Muon (optim.kind: muon): each hidden weight matrix (optim/weight_decay.h says which) takes
// Nesterov momentum, orthogonalised by the quintic Newton–Schulz iteration
// (optim/newton_schulz.h), scaled by 0.2·sqrt(max(out, in)) so that the update's RMS matches
// AdamW's (Liu et al., "Muon is Scalable for LLM Training", 2025, the Moonlight recipe; an AdamW
// learning rate carries over), with decoupled weight decay. Every other parameter goes to an
// AdamW (optim/adamw.h) with the same learning rate and optim.beta1/beta2/eps. The gradients of
// both groups are clipped by one global norm with one non-finite guard, so a skipped step
// changes nothing in either, without a host synchronisation. Per matrix:
//   m ← μ·m + g;   u ← g + μ·m (nesterov) or m;   O ← NS(u);   W ← W·(1 − lr·λ) −
//   lr·0.2·√max(out,in)·O
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "ops/named_tensor.h"
#include "optim/adamw.h"
#include "optim/optimizer.h"

namespace cca {

class Muon : public Optimizer {
 public:
  // `parameters` must all live on one device with dtype float32 (the master weights).
  Muon(std::vector<NamedTensor> parameters, const OptimConfig& optim);

  StepReport step(double lr, const at::Tensor& loss, const at::Tensor& frozen = {}) override;
  void zero_grad(bool release = false) override;
  // "muon_momentum/<param>" for each orthogonalised matrix (registration order), then AdamW's.
  std::vector<NamedTensor> state() const override;
  void load_state(const std::map<std::string, at::Tensor>& tensors,
                  const std::string& source) override;
  // "Muon: 84 matrices (84.93M parameters); AdamW: 0 tensors decayed, 26 not"
  std::string describe() const override;

  // 0.2·sqrt(max(out, in)) of a [out, in] or [n, out, in] parameter: the factor that gives the
  // orthogonalised update (RMS ≈ 1/sqrt(max(out, in))) AdamW's typical RMS of about 0.2.
  static double rms_matching_scale(const at::Tensor& parameter);

 private:
  struct Matrix {
    std::string name;
    at::Tensor param, momentum;
  };
  void update_matrices(double lr, const at::Tensor& skipped);
  void update_group(const std::vector<size_t>& group, double lr, const at::Tensor& keep,
                    at::ScalarType dtype);

  OptimConfig optim_;
  std::vector<Matrix> matrices_;
  // Indices into matrices_ of the matrices that share one shape: each group is orthogonalised
  // as one batched Newton–Schulz iteration (a few launches per group instead of per matrix).
  std::vector<std::vector<size_t>> shape_groups_;
  std::unique_ptr<AdamW> adamw_;
};

// The prefix of Muon's momentum buffers in Optimizer::state().
inline constexpr const char* kMuonMomentumPrefix = "muon_momentum/";

}  // namespace cca
