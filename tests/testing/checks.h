// Checks every attention variant (and the MoE layer) must pass, shared by their test files.
// All in float64 on CPU so tolerances can be tight.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <functional>
#include <string>
#include <vector>

#include "attention/attention.h"

namespace cca::testing {

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// Perturbing token t must leave every output at positions < t unchanged.
inline void expect_causal(const std::function<at::Tensor(const at::Tensor&)>& f, int64_t batch,
                          int64_t seq, int64_t width, double tol = 1e-12) {
  at::manual_seed(7);
  const at::Tensor x = at::randn({batch, seq, width}, at::kDouble);
  const at::Tensor base = f(x);
  for (int64_t t : {int64_t{0}, seq / 2, seq - 1}) {
    at::Tensor y = x.clone();
    y.select(1, t).add_(at::randn({batch, width}, at::kDouble));
    const at::Tensor out = f(y);
    if (t > 0) {
      EXPECT_LT(max_abs_diff(out.narrow(1, 0, t), base.narrow(1, 0, t)), tol)
          << "output before position " << t << " changed when token " << t << " changed";
    }
    EXPECT_GT(max_abs_diff(out.narrow(1, t, 1), base.narrow(1, t, 1)), 1e-9)
        << "output at position " << t << " ignores its own token";
  }
}

// Whole-sequence forward == chunked prefill (chunks of `chunks` sizes, then the rest) ==
// one-token-at-a-time decode, for a layer with a cache.
inline void expect_prefill_chunked_decode_agree(Attention& layer, int64_t batch, int64_t seq,
                                                int64_t width, std::vector<int64_t> chunks,
                                                double tol = 1e-10) {
  at::manual_seed(11);
  const at::Tensor x = at::randn({batch, seq, width}, at::kDouble);
  const at::Tensor full = layer.forward(x, nullptr);

  auto chunked_cache = layer.new_cache();
  std::vector<at::Tensor> pieces;
  int64_t start = 0;
  for (int64_t size : chunks) {
    if (start + size > seq) break;
    pieces.push_back(layer.forward(x.narrow(1, start, size), chunked_cache.get()));
    start += size;
  }
  if (start < seq)
    pieces.push_back(layer.forward(x.narrow(1, start, seq - start), chunked_cache.get()));
  EXPECT_EQ(chunked_cache->length, seq);
  EXPECT_LT(max_abs_diff(at::cat(pieces, 1), full), tol) << "chunked prefill differs from prefill";

  auto step_cache = layer.new_cache();
  std::vector<at::Tensor> steps;
  for (int64_t t = 0; t < seq; ++t)
    steps.push_back(layer.forward(x.narrow(1, t, 1), step_cache.get()));
  EXPECT_EQ(step_cache->length, seq);
  EXPECT_LT(max_abs_diff(at::cat(steps, 1), full), tol) << "token-by-token decode differs";
  EXPECT_GT(step_cache->bytes(), 0);
}

// Central finite differences against autograd for every parameter of `module` (a sample of
// `per_tensor` entries each) and for the input, of the scalar loss(module(x)).
inline void expect_gradients_match(torch::nn::Module& module,
                                   const std::function<at::Tensor(const at::Tensor&)>& f,
                                   const at::Tensor& input, int64_t per_tensor = 6,
                                   double eps = 1e-6, double tol = 1e-6) {
  at::manual_seed(3);
  at::Tensor x = input.detach().clone().set_requires_grad(true);
  // A fixed random projection makes the scalar sensitive to every output element.
  const at::Tensor probe = at::randn_like(f(x).detach());
  auto scalar = [&](const at::Tensor& in) { return (f(in) * probe).sum(); };
  module.zero_grad();
  scalar(x).backward();
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : module.named_parameters()) targets.emplace_back(p.key(), p.value());
  targets.emplace_back("input", x);
  for (auto& [name, tensor] : targets) {
    ASSERT_TRUE(tensor.grad().defined()) << name << " got no gradient";
    const at::Tensor grad = tensor.grad().reshape({-1});
    at::Tensor flat = tensor.detach().view({-1});
    const int64_t n = flat.numel();
    for (int64_t s = 0; s < std::min(per_tensor, n); ++s) {
      const int64_t i = (s * 7919 + 13) % n;
      const double saved = flat[i].item<double>();
      at::NoGradGuard no_grad;
      flat[i] = saved + eps;
      const double plus = scalar(x).item<double>();
      flat[i] = saved - eps;
      const double minus = scalar(x).item<double>();
      flat[i] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      const double analytic = grad[i].item<double>();
      EXPECT_NEAR(analytic, numeric, tol * std::max(1.0, std::fabs(numeric)))
          << name << "[" << i << "]";
    }
  }
}

}  // namespace cca::testing
