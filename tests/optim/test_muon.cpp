// Muon against a textbook implementation written here (CPU fp32), the Newton–Schulz band, the
// split of parameters between Muon and AdamW, skipped steps, and the state round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "config/config.h"
#include "ops/device.h"
#include "optim/adamw.h"
#include "optim/muon.h"
#include "optim/newton_schulz.h"
#include "optim/optimizer.h"
#include "optim/weight_decay.h"
#include "util/error.h"

namespace cca {
namespace {

OptimConfig muon_config(double clip = 0.0) {
  OptimConfig c = default_config().optim;
  c.kind = "muon";
  c.weight_decay = 0.1;
  c.grad_clip = clip;
  c.muon.momentum = 0.95;
  c.muon.nesterov = true;
  c.muon.ns_steps = 5;
  return c;
}

// The published reference (Jordan's Muon, Moonlight's scaling), one matrix at a time, spelled out.
at::Tensor textbook_newton_schulz(const at::Tensor& g, int64_t steps) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  at::Tensor x = g.clone();
  const bool tall = g.size(0) > g.size(1);
  if (tall) x = x.t();
  x = x / (x.norm() + 1e-7);
  for (int64_t i = 0; i < steps; ++i) {
    const at::Tensor A = at::mm(x, x.t());
    const at::Tensor B = b * A + c * at::mm(A, A);
    x = a * x + at::mm(B, x);
  }
  return tall ? x.t() : x;
}

void textbook_muon_step(at::Tensor& w, at::Tensor& buffer, const at::Tensor& grad, double lr,
                        const OptimConfig& o) {
  buffer = buffer * o.muon.momentum + grad;
  const at::Tensor u = o.muon.nesterov ? grad + o.muon.momentum * buffer : buffer;
  std::vector<at::Tensor> orthogonal;
  const at::Tensor stack = u.dim() == 2 ? u.unsqueeze(0) : u;
  for (int64_t e = 0; e < stack.size(0); ++e) {
    orthogonal.push_back(textbook_newton_schulz(stack[e], o.muon.ns_steps));
  }
  const at::Tensor o_full = at::stack(orthogonal).view(u.sizes());
  const double scale = 0.2 * std::sqrt(static_cast<double>(std::max(w.size(-2), w.size(-1))));
  w = w * (1 - lr * o.weight_decay) - lr * scale * o_full;
}

at::Tensor leaf(const at::Tensor& values) {
  return values.clone().set_requires_grad(true);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// Three steps over wide, tall and stacked [experts, out, in] matrices, two of each of two shapes
// (orthogonalised as one batch per shape), with the embedding and a norm beside them: the
// matrices follow the textbook one at a time, the rest follows AdamW exactly.
TEST(Muon, MatchesTheTextbookUpdateAndLeavesTheRestToAdamW) {
  const OptimConfig c = muon_config();
  at::manual_seed(3);
  const std::vector<std::pair<std::string, at::Tensor>> shapes = {
      {"blocks.0.attention.q_proj.weight", at::randn({6, 10})},
      {"blocks.0.ffn.w2", at::randn({12, 5})},
      {"blocks.1.moe.expert_w1", at::randn({3, 7, 4})},
      {"blocks.1.attention.q_proj.weight", at::randn({6, 10})},
      {"blocks.2.moe.expert_w1", at::randn({3, 7, 4})},
      {"embedding", at::randn({16, 6})},
      {"blocks.0.ffn_norm.weight", at::randn({6})}};
  const size_t n_matrices = 5;
  std::vector<NamedTensor> params, adamw_params;
  for (const auto& [name, value] : shapes) {
    params.push_back({name, leaf(value)});
    if (value.dim() < 2 || name == "embedding") adamw_params.push_back({name, leaf(value)});
  }
  Muon muon(params, c);
  AdamW adamw(adamw_params, c);
  EXPECT_EQ(muon.describe(), "Muon: 5 matrices (348 parameters); AdamW: 0 tensors decayed, 2 not");
  std::vector<at::Tensor> reference, buffers;
  for (size_t k = 0; k < n_matrices; ++k) {
    reference.push_back(params[k].tensor.detach().clone());
    buffers.push_back(at::zeros_like(reference.back()));
  }
  for (int step = 0; step < 3; ++step) {
    for (size_t k = 0; k < params.size(); ++k) {
      const at::Tensor g = at::randn(params[k].tensor.sizes());
      params[k].tensor.mutable_grad() = g.clone();
      if (k < n_matrices) textbook_muon_step(reference[k], buffers[k], g, 2e-2, c);
      if (k >= n_matrices) adamw_params[k - n_matrices].tensor.mutable_grad() = g.clone();
    }
    muon.step(2e-2, at::zeros({}));
    adamw.step(2e-2, at::zeros({}));
    for (size_t k = 0; k < n_matrices; ++k) {
      EXPECT_LT(max_diff(params[k].tensor, reference[k]), 2e-6) << params[k].name << " " << step;
    }
    for (size_t k = n_matrices; k < params.size(); ++k) {
      EXPECT_TRUE(at::equal(params[k].tensor, adamw_params[k - n_matrices].tensor))
          << params[k].name;
    }
  }
  // The update moved the matrices by lr·scale·O, far beyond the tolerance.
  EXPECT_GT(max_diff(params[0].tensor, shapes[0].second), 1e-2);
  EXPECT_GT(max_diff(params[3].tensor, shapes[3].second), 1e-2);
}

TEST(Muon, WithoutNesterovOrthogonalisesTheBuffer) {
  OptimConfig c = muon_config();
  c.muon.nesterov = false;
  c.muon.momentum = 0.5;
  at::manual_seed(4);
  at::Tensor w = leaf(at::randn({5, 8}));
  at::Tensor reference = w.detach().clone(), buffer = at::zeros_like(w);
  Muon muon({{"blocks.0.attention.o_proj.weight", w}}, c);
  for (int step = 0; step < 2; ++step) {
    const at::Tensor g = at::randn({5, 8});
    w.mutable_grad() = g.clone();
    textbook_muon_step(reference, buffer, g, 1e-2, c);
    muon.step(1e-2, at::zeros({}));
  }
  EXPECT_LT(max_diff(w, reference), 2e-6);
}

// One global norm over both groups: clipping scales the AdamW group's gradients by
// clip / ‖all gradients‖, the Muon matrices' included.
TEST(Muon, ClipsByTheGlobalNormOfBothGroups) {
  const OptimConfig c = muon_config(/*clip=*/0.5);
  at::manual_seed(5);
  at::Tensor matrix = leaf(at::randn({4, 4})), norm = leaf(at::randn({4}));
  at::Tensor norm_copy = leaf(norm.detach());
  Muon muon({{"blocks.0.ffn.w1", matrix}, {"final_norm.weight", norm}}, c);
  OptimConfig unclipped = c;
  unclipped.grad_clip = 0;
  AdamW adamw({{"final_norm.weight", norm_copy}}, unclipped);
  const at::Tensor g_matrix = at::randn({4, 4}) * 3, g_norm = at::randn({4});
  matrix.mutable_grad() = g_matrix.clone();
  norm.mutable_grad() = g_norm.clone();
  const StepReport report = muon.step(1e-2, at::zeros({}));
  const double total =
      std::sqrt(g_matrix.square().sum().item<double>() + g_norm.square().sum().item<double>());
  EXPECT_NEAR(report.grad_norm.item<double>(), total, 1e-5 * total);
  norm_copy.mutable_grad() = g_norm * static_cast<float>(0.5 / (total + 1e-6));
  adamw.step(1e-2, at::zeros({}));
  EXPECT_LT(max_diff(norm, norm_copy), 1e-7);
}

TEST(Muon, NonFiniteOrFrozenStepsChangeNothing) {
  const OptimConfig c = muon_config(1.0);
  at::Tensor w = leaf(at::randn({4, 6})), bias = leaf(at::randn({4}));
  Muon muon({{"blocks.0.ffn.w1", w}, {"blocks.0.attention.conv_qk.0.bias", bias}}, c);
  w.mutable_grad() = at::randn({4, 6});
  bias.mutable_grad() = at::randn({4});
  muon.step(1e-2, at::zeros({}));
  const at::Tensor w_after = w.detach().clone(), bias_after = bias.detach().clone();
  std::vector<at::Tensor> state_after;
  for (const NamedTensor& t : muon.state()) state_after.push_back(t.tensor.clone());

  w.mutable_grad().fill_(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(muon.step(1e-2, at::zeros({})).skipped.item<float>(), 1.0f);
  w.mutable_grad().fill_(0.1);
  EXPECT_EQ(muon.step(1e-2, at::full({}, INFINITY)).skipped.item<float>(), 1.0f);
  EXPECT_EQ(muon.step(1e-2, at::zeros({}), at::ones({})).skipped.item<float>(), 1.0f);
  EXPECT_TRUE(at::equal(w, w_after));
  EXPECT_TRUE(at::equal(bias, bias_after));
  const std::vector<NamedTensor> state = muon.state();
  ASSERT_EQ(state.size(), state_after.size());
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_TRUE(at::equal(state[i].tensor, state_after[i])) << state[i].name;
  }
  // Clipping by a NaN norm poisoned every gradient in place; fresh finite ones step again.
  w.mutable_grad().fill_(0.1);
  bias.mutable_grad().fill_(0.1);
  EXPECT_EQ(muon.step(1e-2, at::zeros({})).skipped.item<float>(), 0.0f);
  EXPECT_FALSE(at::equal(w, w_after));
}

// A restored optimizer continues bit-identically; state() follows state_layout() (what ZeRO-1
// gathers), and a checkpoint without Muon's momentum is refused by name.
TEST(Muon, StateRoundTripsAndFollowsTheLayout) {
  const OptimConfig c = muon_config(1.0);
  at::manual_seed(6);
  auto make_params = [] {
    at::manual_seed(7);
    return std::vector<NamedTensor>{{"embedding", leaf(at::randn({8, 4}))},
                                    {"blocks.0.attention.linear_q.weight", leaf(at::randn({4, 4}))},
                                    {"blocks.0.attention.temp", leaf(at::randn({2}))},
                                    {"blocks.0.moe.expert_w2", leaf(at::randn({2, 4, 3}))},
                                    {"blocks.0.moe.router_weight", leaf(at::randn({2, 4}))}};
  };
  std::vector<NamedTensor> a = make_params(), b = make_params();
  Muon first(a, c);
  auto give_gradients = [](std::vector<NamedTensor>& params, int seed) {
    at::manual_seed(seed);
    for (NamedTensor& p : params) p.tensor.mutable_grad() = at::randn(p.tensor.sizes());
  };
  for (int step = 0; step < 2; ++step) {
    give_gradients(a, 10 + step);
    first.step(1e-2, at::zeros({}));
  }
  const std::vector<NamedTensor> saved = first.state();
  const std::vector<StateEntry> layout = state_layout(a, c);
  ASSERT_EQ(saved.size(), layout.size());
  for (size_t i = 0; i < saved.size(); ++i) EXPECT_EQ(saved[i].name, layout[i].name);
  EXPECT_EQ(saved.front().name, "muon_momentum/blocks.0.attention.linear_q.weight");

  std::map<std::string, at::Tensor> tensors;
  for (const NamedTensor& t : saved) tensors[t.name] = t.tensor.clone();
  for (size_t k = 0; k < a.size(); ++k) b[k].tensor.detach().copy_(a[k].tensor.detach());
  Muon second(b, c);
  second.load_state(tensors, "optimizer.safetensors");
  give_gradients(a, 20);
  give_gradients(b, 20);
  first.step(1e-2, at::zeros({}));
  second.step(1e-2, at::zeros({}));
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(at::equal(a[k].tensor, b[k].tensor)) << k;

  tensors.erase("muon_momentum/blocks.0.moe.expert_w2");
  try {
    second.load_state(tensors, "ckpt/optimizer.safetensors");
    ADD_FAILURE() << "a missing momentum buffer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing optimizer tensor "
                                         "'muon_momentum/blocks.0.moe.expert_w2'"),
              std::string::npos)
        << e.what();
  }
}

TEST(Muon, AdamWStateFollowsTheLayoutToo) {
  OptimConfig c = muon_config();
  c.kind = "adamw";
  std::vector<NamedTensor> params = {{"blocks.0.ffn_norm.weight", leaf(at::ones({4}))},
                                     {"blocks.0.ffn.w1", leaf(at::ones({4, 4}))}};
  const std::unique_ptr<Optimizer> adamw = make_optimizer(params, c);
  const std::vector<NamedTensor> state = adamw->state();
  const std::vector<StateEntry> layout = state_layout(params, c);
  ASSERT_EQ(state.size(), layout.size());
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_EQ(state[i].name, layout[i].name);
    EXPECT_EQ(state[i].tensor.dim() == 0, layout[i].scalar) << state[i].name;
  }
  EXPECT_EQ(clipping_order(params, c), (std::vector<size_t>{1, 0}));  // decayed first
}

TEST(Muon, TakesTheHiddenMatricesOnly) {
  const at::Tensor matrix = at::zeros({4, 4}), vector = at::zeros({4});
  EXPECT_TRUE(orthogonalised_by_muon("blocks.0.attention.linear_q.weight", matrix));
  EXPECT_TRUE(orthogonalised_by_muon("blocks.0.attention.kv_a_proj.weight", matrix));
  EXPECT_TRUE(orthogonalised_by_muon("blocks.0.moe.expert_w1", at::zeros({4, 4, 2})));
  EXPECT_TRUE(orthogonalised_by_muon("blocks.0.moe.shared_w2", matrix));
  EXPECT_FALSE(orthogonalised_by_muon("embedding", matrix));
  EXPECT_FALSE(orthogonalised_by_muon("lm_head", matrix));
  EXPECT_FALSE(orthogonalised_by_muon("blocks.0.moe.router_weight", matrix));
  EXPECT_FALSE(orthogonalised_by_muon("blocks.0.attention.conv_qk.1.weight", at::zeros({4, 2, 3})));
  EXPECT_FALSE(orthogonalised_by_muon("blocks.0.attention.conv_qk.0.bias", vector));
  EXPECT_FALSE(orthogonalised_by_muon("blocks.0.attention.temp", vector));
  EXPECT_FALSE(orthogonalised_by_muon("blocks.0.ffn_norm.weight", vector));
}

TEST(Muon, UpdateRmsMatchesAdamWScale) {
  // 0.2·sqrt(max(out, in)) times an orthogonal update of RMS 1/sqrt(max(out, in)) is 0.2.
  at::manual_seed(8);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{64, 256}, {256, 64}, {96, 96}}) {
    const at::Tensor o = newton_schulz(at::randn(shape), 5, at::kFloat);
    const double rms = o.square().mean().sqrt().item<double>();
    EXPECT_NEAR(Muon::rms_matching_scale(o) * rms, 0.2, 0.04) << shape[0] << "x" << shape[1];
  }
}

// Singular values of the result land in the band the coefficients promise, whatever the input's
// scale, as long as the smallest input singular value is not far below the Frobenius norm (five
// iterations multiply a tiny one by at most 3.4445⁵ ≈ 484); and the singular vectors are kept:
// the result is close to the polar factor U·Vᵀ.
void expect_in_band(const at::Tensor& g, at::ScalarType dtype, double low, double high,
                    double min_cosine) {
  const at::Tensor o = newton_schulz(g, 5, dtype).to(at::kFloat).cpu();
  ASSERT_EQ(o.sizes(), g.sizes());
  const at::Tensor s = at::linalg_svdvals(o);
  EXPECT_GT(s.min().item<double>(), low) << g.sizes();
  EXPECT_LT(s.max().item<double>(), high) << g.sizes();
  const auto [u, sigma, vh] = at::linalg_svd(g.to(at::kFloat).cpu(), /*full_matrices=*/false);
  const at::Tensor polar = at::matmul(u, vh);
  const double cosine = ((o * polar).sum() / (o.norm() * polar.norm())).item<double>();
  EXPECT_GT(cosine, min_cosine) << g.sizes();
}

at::Tensor with_spectrum(int64_t rows, int64_t cols, double largest, double smallest) {
  const int64_t k = std::min(rows, cols);
  const at::Tensor u = std::get<0>(at::linalg_qr(at::randn({rows, k})));
  const at::Tensor v = std::get<0>(at::linalg_qr(at::randn({cols, k})));
  const at::Tensor s = at::logspace(std::log10(largest), std::log10(smallest), k);
  return at::matmul(u * s, v.t());
}

TEST(NewtonSchulz, SingularValuesLandInTheBand) {
  at::manual_seed(9);
  for (const auto& [rows, cols] :
       std::vector<std::pair<int64_t, int64_t>>{{32, 128}, {128, 32}, {96, 200}, {200, 96}}) {
    expect_in_band(at::randn({rows, cols}) * 0.01, at::kFloat, 0.68, 1.21, 0.97);
    expect_in_band(with_spectrum(rows, cols, 1000.0, 100.0), at::kFloat, 0.68, 1.21, 0.97);
  }
  expect_in_band(with_spectrum(64, 64, 10.0, 1.0), at::kFloat, 0.68, 1.21, 0.97);
}

TEST(NewtonSchulz, StacksAreOrthogonalisedMatrixByMatrix) {
  at::manual_seed(10);
  const at::Tensor stack = at::randn({3, 12, 5});
  stack[1].mul_(100);  // each matrix is normalised by its own norm, not the stack's
  const at::Tensor together = newton_schulz(stack, 5, at::kFloat);
  for (int64_t e = 0; e < 3; ++e) {
    EXPECT_LT(max_diff(together[e], newton_schulz(stack[e], 5, at::kFloat)), 1e-6) << e;
    EXPECT_LT(max_diff(together[e], textbook_newton_schulz(stack[e], 5)), 1e-5) << e;
  }
  EXPECT_THROW(newton_schulz(at::randn({4}), 5, at::kFloat), Error);
}

// On the GPU the iteration runs in bf16: the band is wider by bf16's rounding, and a CUDA
// Muon step follows the fp32 CPU step to bf16 accuracy.
TEST(NewtonSchulzCuda, Bf16OnTheGpuStaysInTheBand) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: bf16 Newton–Schulz not exercised";
  EXPECT_EQ(newton_schulz_dtype(at::Device(at::kCUDA)), at::kBFloat16);
  at::manual_seed(11);
  for (const auto& [rows, cols] :
       std::vector<std::pair<int64_t, int64_t>>{{768, 2048}, {2048, 768}}) {
    expect_in_band(at::randn({rows, cols}).cuda(), at::kBFloat16, 0.6, 1.3, 0.95);
  }
  expect_in_band(with_spectrum(256, 512, 10.0, 1.0).cuda(), at::kBFloat16, 0.6, 1.3, 0.95);
}

TEST(MuonCuda, StepFollowsTheCpuStep) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: Muon on CUDA not exercised";
  const OptimConfig c = muon_config(1.0);
  at::manual_seed(12);
  const at::Tensor w0 = at::randn({256, 512}) * 0.02, e0 = at::randn({4, 128, 64}) * 0.02;
  const at::Tensor g = at::randn({256, 512}), ge = at::randn({4, 128, 64});
  std::vector<at::Tensor> weights;
  for (const at::Device device : {at::Device(at::kCPU), at::Device(at::kCUDA)}) {
    at::Tensor w = leaf(w0.to(device)), e = leaf(e0.to(device));
    Muon muon({{"blocks.0.ffn.w1", w}, {"blocks.0.moe.expert_w1", e}}, c);
    w.mutable_grad() = g.to(device);
    e.mutable_grad() = ge.to(device);
    muon.step(1e-2, at::zeros({}, at::TensorOptions(device)));
    weights.push_back(at::cat({w.detach().flatten(), e.detach().flatten()}).cpu());
  }
  const at::Tensor moved = weights[0] - at::cat({w0.flatten(), e0.flatten()});
  // bf16 keeps ~3 significant digits and Newton–Schulz compounds five iterations of it: as a
  // whole the update differs by a few percent of its size (norms), single elements by more (an
  // H100 measured 5.05% of the largest element, against 5% allowed then).
  const double moved_norm = moved.norm().item<double>();
  EXPECT_LT((weights[0] - weights[1]).norm().item<double>(), 0.05 * moved_norm);
  EXPECT_LT(max_diff(weights[0], weights[1]), 0.15 * moved.abs().max().item<double>());
}

}  // namespace
}  // namespace cca
