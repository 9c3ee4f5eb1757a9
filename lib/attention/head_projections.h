// The projections of the variants that attend with per-head queries, keys and values (mha, gqa,
// swa): q, k, v and o, optional per-head RMSNorm on q and k, and RoPE. They register on the
// owning module under the same names for every such variant (q_proj, k_proj, v_proj, o_proj,
// q_norm, k_norm), so checkpoints of these variants share one layout.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <memory>

#include "attention/attention.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace cca {

struct HeadTensors {
  at::Tensor q;  // [B, Hq, S, d], normalised and rotated
  at::Tensor k;  // [B, Hkv, S, d], normalised and rotated
  at::Tensor v;  // [B, Hkv, S, d]
};

// The projections before QK-norm and RoPE, [B, S, heads, d]: where mha/gqa run CCA's convs and
// value shift (attention.mha.*), as CCA runs them on its raw latents.
struct RawHeads {
  at::Tensor q;  // [B, S, Hq, d]
  at::Tensor k;  // [B, S, Hkv, d]
  at::Tensor v;  // [B, S, Hkv, d]
};

class HeadProjections {
 public:
  HeadProjections(torch::nn::Module& owner, const AttentionGeometry& g,
                  const AttentionOptions& options);

  // x: [B, S, E] at absolute positions offset, offset + 1, ... (or, with documents that reset
  // positions, at each token's position in its document). `generating` keeps the projections
  // apart (stacking copies the weights on every call, which only pays for whole sequences).
  HeadTensors project(const at::Tensor& x, int64_t offset, bool generating,
                      const Documents* documents = nullptr) {
    return finish(raw(x, generating), offset, documents);
  }
  // project() in two halves: the q/k/v projections, then QK-norm, RoPE and the [B, H, S, d]
  // layout.
  RawHeads raw(const at::Tensor& x, bool generating);
  HeadTensors finish(const RawHeads& heads, int64_t offset, const Documents* documents);
  // o: [B, Hq, S, d] -> [B, S, E].
  at::Tensor output(const at::Tensor& o);

 private:
  int64_t n_q_heads_, n_kv_heads_, head_dim_;
  Rotary rotary_;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, o_proj_{nullptr};
  std::shared_ptr<RMSNormImpl> q_norm_, k_norm_;
};

}  // namespace cca
