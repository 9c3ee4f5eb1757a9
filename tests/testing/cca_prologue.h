// The CCA prologue's inputs as gradient leaves, one run of the fused or the reference prologue
// over them, and the tolerances per dtype: shared by the fused-kernel tests with and without
// packed documents (test_cca_kernels.cpp, test_cca_kernels_documents.cpp).
#pragma once

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cca_fused.h"
#include "attention/cca_reference.h"
#include "config/geometry.h"
#include "ops/documents.h"
#include "ops/rope.h"
#include "testing/documents.h"

namespace cca::testing {

inline constexpr double kPrologueTheta = 500.0;  // small, so short sequences rotate many turns

struct PrologueShape {
  int64_t head_dim, n_q, n_kv, convs, k0, k1;
  bool qk_mean, value_shift;
  double rope_fraction;
};

// The settings are what a module is built from; the typed view is read back from them.
inline CcaGeometry prologue_geometry(const PrologueShape& c, const std::string& kernels = "auto") {
  AttentionGeometry g;
  g.kind = c.n_q == c.n_kv ? "cca" : "ccgqa";
  g.n_q_heads = c.n_q;
  g.n_kv_heads = c.n_kv;
  g.head_dim = c.head_dim;
  g.v_head_dim = c.head_dim;
  g.rope_dim = static_cast<int64_t>(std::llround(c.rope_fraction * c.head_dim)) / 2 * 2;
  g.model_dim = c.n_q * c.head_dim;
  VariantSettings& s = g.settings;
  s.set("attention.cca.q_compression", 1);
  s.set("attention.cca.kv_compression", c.n_q / c.n_kv);
  s.set("attention.cca.convs", c.convs);
  s.set("attention.cca.conv_kernel_0", c.k0);
  s.set("attention.cca.conv_kernel_1", c.k1);
  s.set("attention.cca.qk_mean", c.qk_mean);
  s.set("attention.cca.value_shift", c.value_shift);
  s.set("attention.cca.temperature", "exp");
  s.set("attention.cca.kernels", kernels);
  return variants::cca_geometry(g);
}

// Every input of the prologue, as leaves that require gradients.
struct PrologueLeaves {
  at::Tensor q0, k0, v_current, v_delayed, dw_w, dw_b, g_w, g_b, tau;
  std::vector<at::Tensor> list() const {
    std::vector<at::Tensor> all;
    for (const at::Tensor& t : {q0, k0, v_current, v_delayed, dw_w, dw_b, g_w, g_b, tau})
      if (t.defined()) all.push_back(t);
    return all;
  }
  PrologueLeaves to(const at::TensorOptions& o) const {
    auto conv = [&](const at::Tensor& t) {
      return t.defined() ? t.detach().to(o).requires_grad_(true) : at::Tensor();
    };
    return {conv(q0),   conv(k0),  conv(v_current), conv(v_delayed), conv(dw_w),
            conv(dw_b), conv(g_w), conv(g_b),       conv(tau)};
  }
};

inline PrologueLeaves random_prologue_leaves(const CcaGeometry& g, int64_t B, int64_t S) {
  const int64_t d = g.head_dim, M = g.conv_channels(), width_k = g.kv_latent_width();
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  PrologueLeaves l;
  l.q0 = at::randn({B, S, g.q_latent_width()}, f64);
  l.k0 = at::randn({B, S, width_k}, f64);
  l.v_current = at::randn({B, S, g.value_shift ? width_k / 2 : width_k}, f64);
  if (g.value_shift) l.v_delayed = at::randn({B, S, width_k / 2}, f64);
  if (g.convs >= 1) {
    l.dw_w = at::randn({M, 1, g.conv_kernel_0}, f64) * 0.5;
    l.dw_b = at::randn({M}, f64) * 0.5;  // nonzero: a tap before a document reads it
  }
  if (g.convs == 2) {
    l.g_w = at::randn({M, d, g.conv_kernel_1}, f64) / std::sqrt(double(d * g.conv_kernel_1));
    l.g_b = at::randn({M}, f64) * 0.5;
  }
  l.tau = at::rand({g.n_kv_heads}, f64) + 0.5;
  return l;
}

struct PrologueResult {
  std::vector<at::Tensor> outputs;  // q̂, k̂, ṽ
  std::vector<at::Tensor> grads;    // one per leaf
};

// One path (fused kernels or reference ops) over `leaves`, and optionally packed `documents`,
// backpropagating fixed upstream gradients.
inline PrologueResult run_prologue(const CcaGeometry& g, const PrologueLeaves& leaves, bool fused,
                                   const std::vector<at::Tensor>& upstream,
                                   const Documents* documents = nullptr) {
  const CcaConvWeights w{leaves.dw_w, leaves.dw_b, leaves.g_w, leaves.g_b};
  const CcaProjections p{leaves.q0, leaves.k0, leaves.v_current, leaves.v_delayed};
  const CcaPrologueOutput o =
      fused
          ? cca_prologue_fused(
                g, cca_rope_inverse_frequencies(g.rope_dim, kPrologueTheta, {}, leaves.q0.device()),
                w, leaves.tau, p, documents)
          : cca_prologue(g, Rotary(g.rope_dim, kPrologueTheta), w, leaves.tau, p, {}, {}, 0,
                         documents);
  PrologueResult r;
  r.outputs = {o.q, o.k, o.v};
  at::Tensor loss = at::zeros({}, o.q.options().dtype(at::kDouble));
  for (size_t i = 0; i < 3; ++i)
    loss = loss + (r.outputs[i].to(at::kDouble) * upstream[i].to(r.outputs[i].device())).sum();
  r.grads = torch::autograd::grad({loss}, leaves.list());
  return r;
}

struct PrologueTolerance {
  double forward, backward;
};

// A few units of each dtype's rounding (the conv output is stored in the input dtype, as the
// reference stores it).
inline PrologueTolerance prologue_tolerance(at::ScalarType t) {
  if (t == at::kFloat) return {2e-5, 1e-4};
  if (t == at::kHalf) return {4e-3, 8e-3};
  return {2.5e-2, 4e-2};
}

}  // namespace cca::testing
