// The fused CCA prologue kernels (kernels/cca_prologue_*.cu through lib/attention/cca_fused.cpp)
// against the reference prologue (lib/attention/cca_reference.cpp), forward and backward.
//
// Truth is the reference path in float64 on the CPU, fed the same (rounded) inputs. Both the fused
// path and the reference path in the test dtype are measured against it, as the relative
// Frobenius error ‖got − truth‖ / ‖truth‖ of every output and every gradient. Tolerances:
//   fp32 2e-5 (forward) / 1e-4 (gradients);  fp16 4e-3 / 8e-3;  bf16 2.5e-2 / 4e-2,
// which are a few units of each dtype's rounding (the conv output is stored in the input dtype,
// as the reference stores it). Skipped without a GPU.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cca_fused.h"
#include "attention/cca_reference.h"
#include "config/geometry.h"
#include "ops/device.h"
#include "ops/rope.h"
#include "testing/cca_prologue.h"

#ifdef CCA_WITH_CUDA
#include "cca_prologue.h"
#endif

namespace cca {
namespace {

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused CCA kernels not exercised"

constexpr double kTheta = testing::kPrologueTheta;
using Leaves = testing::PrologueLeaves;
using Result = testing::PrologueResult;
using testing::relative_error;

struct KernelCase {
  std::string name;
  at::ScalarType dtype;
  int64_t head_dim, n_q, n_kv, convs, k0, k1;
  bool qk_mean, value_shift;
  double rope_fraction;
  int64_t batch, seq;
};

CcaGeometry geometry_of(const KernelCase& c, const std::string& kernels = "auto") {
  return testing::prologue_geometry(
      {c.head_dim, c.n_q, c.n_kv, c.convs, c.k0, c.k1, c.qk_mean, c.value_shift, c.rope_fraction},
      kernels);
}

class CcaKernelCase : public ::testing::TestWithParam<KernelCase> {};

TEST_P(CcaKernelCase, ForwardAndBackwardMatchReference) {
  REQUIRE_GPU();
  const KernelCase& c = GetParam();
  const CcaGeometry g = geometry_of(c);
  at::manual_seed(3);
  const Leaves base = testing::random_prologue_leaves(g, c.batch, c.seq);
  // Round the inputs to the test dtype once, so every path sees the same values.
  const auto cuda = at::TensorOptions().device(at::kCUDA).dtype(c.dtype);
  const Leaves on_gpu = base.to(cuda);
  const Leaves truth_in = on_gpu.to(at::TensorOptions().dtype(at::kDouble).device(at::kCPU));
  const int64_t d = c.head_dim;
  const std::vector<at::Tensor> upstream = {at::randn({c.batch, c.seq, c.n_q, d}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, d}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, d}, at::kDouble)};
  const Result truth = testing::run_prologue(g, truth_in, false, upstream);
  const Result reference = testing::run_prologue(g, on_gpu, false, upstream);
  const Result fused = testing::run_prologue(g, on_gpu.to(cuda), true, upstream);
  const testing::PrologueTolerance tol = testing::prologue_tolerance(c.dtype);
  const char* out_names[] = {"q", "k", "v"};
  for (size_t i = 0; i < 3; ++i) {
    const double err = relative_error(fused.outputs[i], truth.outputs[i]);
    EXPECT_LT(err, tol.forward) << out_names[i] << ": reference path's error "
                                << relative_error(reference.outputs[i], truth.outputs[i]);
  }
  const char* grad_names[] = {"q0",
                              "k0",
                              "v_current",
                              "v_delayed",
                              "depthwise weight",
                              "depthwise bias",
                              "grouped weight",
                              "grouped bias",
                              "temperature"};
  std::vector<std::string> names;
  const Leaves& l = base;
  int slot = 0;
  for (const at::Tensor& t :
       {l.q0, l.k0, l.v_current, l.v_delayed, l.dw_w, l.dw_b, l.g_w, l.g_b, l.tau}) {
    if (t.defined()) names.push_back(grad_names[slot]);
    ++slot;
  }
  ASSERT_EQ(fused.grads.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_TRUE(fused.grads[i].defined()) << names[i];
    const double err = relative_error(fused.grads[i], truth.grads[i]);
    EXPECT_LT(err, tol.backward) << "grad of " << names[i] << ": reference path's error "
                                 << relative_error(reference.grads[i], truth.grads[i]);
  }
}

const at::ScalarType kBf16 = at::kBFloat16, kF16 = at::kHalf, kF32 = at::kFloat;

std::vector<KernelCase> kernel_cases() {
  return {
      // name, dtype, d, n_q, n_kv, convs, k0, k1, qk_mean, value_shift, rope, B, S
      {"zaya_bf16_d128_g4", kBf16, 128, 8, 2, 2, 2, 2, true, true, 0.5, 2, 67},
      {"cca_bf16_d128_g1_long", kBf16, 128, 4, 4, 2, 2, 2, true, true, 0.5, 2, 1000},
      {"bf16_d64_g1_k3_k4", kBf16, 64, 4, 4, 2, 3, 4, true, true, 0.5, 2, 131},
      {"bf16_d256_g2_k4_k1", kBf16, 256, 4, 2, 2, 4, 1, true, true, 0.5, 1, 33},
      {"bf16_d128_g8_mqa_split_in_head", kBf16, 128, 8, 1, 2, 1, 3, true, true, 1.0, 2, 7},
      {"bf16_d64_seq1", kBf16, 64, 2, 2, 2, 2, 2, true, true, 0.5, 3, 1},
      {"bf16_convs0", kBf16, 128, 4, 2, 0, 2, 2, true, true, 0.5, 2, 65},
      {"bf16_convs1_k4", kBf16, 128, 4, 2, 1, 4, 2, true, true, 0.5, 2, 65},
      {"bf16_no_mean", kBf16, 128, 4, 2, 2, 2, 2, false, true, 0.5, 2, 65},
      {"bf16_no_value_shift", kBf16, 128, 4, 2, 2, 2, 2, true, false, 0.5, 2, 65},
      {"bf16_no_rope", kBf16, 128, 4, 4, 2, 2, 2, true, true, 0.0, 2, 65},
      {"fp16_d128_g4", kF16, 128, 8, 2, 2, 2, 3, true, true, 0.5, 2, 97},
      {"fp16_d256_g8", kF16, 256, 8, 1, 2, 3, 2, true, false, 0.5, 1, 41},
      {"fp16_d64_g2", kF16, 64, 4, 2, 2, 1, 1, true, true, 0.25, 2, 200},
      {"fp32_d64_g2", kF32, 64, 4, 2, 2, 2, 3, true, true, 0.5, 2, 45},
      {"fp32_d128_g1", kF32, 128, 2, 2, 2, 4, 4, true, true, 0.5, 1, 70},
      {"fp32_d256_g4", kF32, 256, 4, 1, 2, 2, 2, false, true, 0.5, 1, 19},
      {"fp32_convs1_no_shift", kF32, 64, 8, 8, 1, 3, 2, true, false, 1.0, 2, 30},
  };
}

INSTANTIATE_TEST_SUITE_P(Shapes, CcaKernelCase, ::testing::ValuesIn(kernel_cases()),
                         [](const auto& info) { return info.param.name; });

// The reductions (conv weights and biases, temperature) are fixed-order: two backward passes give
// bit-identical gradients.
TEST(CcaKernels, BackwardIsDeterministic) {
  REQUIRE_GPU();
  const KernelCase c{"det", kBf16, 128, 8, 2, 2, 2, 2, true, true, 0.5, 4, 777};
  const CcaGeometry g = geometry_of(c);
  at::manual_seed(9);
  const Leaves leaves = testing::random_prologue_leaves(g, c.batch, c.seq)
                            .to(at::TensorOptions().device(at::kCUDA).dtype(kBf16));
  const std::vector<at::Tensor> upstream = {at::randn({c.batch, c.seq, c.n_q, 128}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, 128}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, 128}, at::kDouble)};
  const Result a = testing::run_prologue(g, leaves, true, upstream),
               b = testing::run_prologue(g, leaves, true, upstream);
  for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_TRUE(at::equal(a.grads[i], b.grads[i])) << i;
}

// A continued sequence (conv history, carried value, position offset) through the fused forward:
// prefill in chunks and token-by-token decode equal one pass, on the module.
TEST(CcaKernels, ModuleFusedMatchesReferenceAndDecodes) {
  REQUIRE_GPU();
  for (const at::ScalarType dtype : {kF32, kBf16}) {
    const KernelCase shape{"m", dtype, 128, 4, 2, 2, 2, 3, true, true, 0.5, 1, 1};
    CcaGeometry g = geometry_of(shape), reference_g = geometry_of(shape, "reference");
    g.model_dim = reference_g.model_dim = 512;
    AttentionOptions fused_opts, ref_opts;
    fused_opts.rope_theta = ref_opts.rope_theta = kTheta;
    fused_opts.init_std = ref_opts.init_std = 0.05;
    at::manual_seed(4);
    auto fused = make_attention(g, fused_opts);
    auto reference = make_attention(reference_g, ref_opts);
    {
      at::NoGradGuard no_grad;
      auto src = fused->named_parameters();
      for (auto& item : reference->named_parameters()) {
        at::Tensor value = src[item.key()];
        if (item.key().rfind("conv_qk", 0) == 0) value.copy_(at::randn_like(value) * 0.1);
        item.value().copy_(value);
      }
    }
    fused->to(at::kCUDA, dtype);
    reference->to(at::kCUDA, dtype);
    // cuDNN's conv (the reference path) would run fp32 in TF32 and dominate the comparison.
    const bool tf32 = at::globalContext().allowTF32CuDNN();
    at::globalContext().setAllowTF32CuDNN(false);
    const int64_t length = 130;
    const at::Tensor x =
        at::randn({2, length, 512}, at::TensorOptions().device(at::kCUDA).dtype(dtype));
    const at::Tensor yf = fused->forward(x, nullptr), yr = reference->forward(x, nullptr);
    const double tol = dtype == kF32 ? 1e-4 : 3e-2;
    EXPECT_LT(relative_error(yf, yr), tol) << "module forward, dtype " << dtype;
    // Gradients of every parameter through the module.
    const auto gf = torch::autograd::grad({yf.to(at::kFloat).square().sum()}, fused->parameters());
    const auto gr =
        torch::autograd::grad({yr.to(at::kFloat).square().sum()}, reference->parameters());
    for (size_t i = 0; i < gf.size(); ++i)
      EXPECT_LT(relative_error(gf[i], gr[i]), dtype == kF32 ? 1e-3 : 6e-2) << "param " << i;
    // Chunked prefill and decode on the fused step: chunks shorter than the conv state (P = 3),
    // single tokens, and one whose last P tokens straddle the kernel's 64-row tiles.
    at::NoGradGuard no_grad;
    const auto run_chunks = [&](Attention& layer, AttentionCache& cache) {
      std::vector<at::Tensor> pieces;
      int64_t start = 0;
      for (int64_t size : {1, 2, 20, 1, 1, 1, 65}) {
        pieces.push_back(layer.forward(x.narrow(1, start, size), &cache));
        start += size;
      }
      pieces.push_back(layer.forward(x.narrow(1, start, length - start), &cache));
      return at::cat(pieces, 1);
    };
    auto fused_cache = fused->new_cache(), reference_cache = reference->new_cache();
    EXPECT_LT(relative_error(run_chunks(*fused, *fused_cache), yf), tol) << dtype;
    run_chunks(*reference, *reference_cache);
    const auto& fs = dynamic_cast<const CcaCache&>(*fused_cache);
    const auto& rs = dynamic_cast<const CcaCache&>(*reference_cache);
    EXPECT_EQ(fs.length, length);
    // The states hold raw projections: the fused step copies them, so they match to rounding.
    EXPECT_LT(relative_error(fs.conv, rs.conv), tol) << "conv state, " << dtype;
    EXPECT_LT(relative_error(fs.shift, rs.shift), tol) << "shift state, " << dtype;
    EXPECT_LT(relative_error(fs.kv.keys.filled(), rs.kv.keys.filled()), tol) << dtype;
    EXPECT_LT(relative_error(fs.kv.values.filled(), rs.kv.values.filled()), tol) << dtype;
    // An in-place weight update (as the optimizer makes) reaches the next decode: generation's
    // prepared copy of the weights must not go stale.
    for (auto* layer : {fused.get(), reference.get()}) {
      for (auto& item : layer->named_parameters()) item.value().mul_(1.5);
    }
    auto updated_cache = fused->new_cache();
    const at::Tensor after = reference->forward(x, nullptr);
    EXPECT_LT(relative_error(run_chunks(*fused, *updated_cache), after), tol) << "after update";
    at::globalContext().setAllowTF32CuDNN(tf32);
  }
}

#ifdef CCA_WITH_CUDA
// The launchers' limits (CPU): long sequences are bounded by memory, not by 32-bit offsets; what
// CUDA's grid cannot hold is refused naming the dimension.
TEST(CcaKernelLimits, LongSequencesLaunchAndGridLimitsAreNamed) {
  kernels::CcaPrologueShape sh;
  sh.batch = 1;
  sh.seq = 131072;
  sh.n_q = 64;
  sh.n_kv = 64;
  sh.head_dim = 128;
  sh.rope_dim = 64;
  EXPECT_EQ(sh.batch * sh.seq * sh.channels(), int64_t{1} << 31);  // once refused as too large
  EXPECT_EQ(kernels::cca_launch_problem(sh), "");
  sh.head_dim = 256;  // 2^32 elements per activation
  EXPECT_EQ(kernels::cca_launch_problem(sh), "");
  const auto problem = [&](auto change) {
    kernels::CcaPrologueShape other = sh;
    change(other);
    return kernels::cca_launch_problem(other);
  };
  EXPECT_NE(problem([](auto& s) { s.batch = 70000; }).find("batch 70000 exceeds CUDA's 65535"),
            std::string::npos);
  EXPECT_NE(problem([](auto& s) { s.n_q = s.n_kv = 40000; }).find("heads 80000"),
            std::string::npos);
  EXPECT_NE(problem([](auto& s) { s.seq = int64_t{1} << 21; })
                .find("sequence length 2097152 exceeds CUDA's 65535 blocks in grid.y of the "
                      "depthwise backward"),
            std::string::npos);
  EXPECT_EQ(problem([](auto& s) { s.seq = 65535 * 16 - 1; }), "");  // the longest that launches
}
#endif

// S = 131,072 with 64 + 64 heads of 128 dims: every activation has B·S·channels = 2^31 elements,
// past a 32-bit index. The fused forward and backward over the whole sequence must equal the
// float32 reference run on windows of it (at their absolute positions, conv history zero): rows
// from the conv's reach on are exact, and away from a window's end so are their gradients.
TEST(CcaKernels, LongSequencePastA32BitIndexMatchesReferenceWindows) {
  REQUIRE_GPU();
  const int64_t S = 131072, d = 128, heads = 64, width = heads * d;
  const KernelCase c{"long", kBf16, d, heads, heads, 2, 2, 2, true, true, 0.5, 1, S};
  const CcaGeometry g = geometry_of(c);
  const int64_t M = g.conv_channels();
  const auto bf16 = at::TensorOptions().device(at::kCUDA).dtype(kBf16);
  at::manual_seed(12);
  const auto leaf = [&](const at::Tensor& t) { return t.to(bf16).requires_grad_(true); };
  Leaves l;
  l.q0 = leaf(at::randn({1, S, width}, bf16));
  l.k0 = leaf(at::randn({1, S, width}, bf16));
  l.v_current = leaf(at::randn({1, S, width / 2}, bf16));
  l.v_delayed = leaf(at::randn({1, S, width / 2}, bf16));
  l.dw_w = leaf(at::randn({M, 1, 2}, bf16) * 0.5);
  l.dw_b = leaf(at::randn({M}, bf16) * 0.5);
  l.g_w = leaf(at::randn({M, d, 2}, bf16) / std::sqrt(2.0 * d));
  l.g_b = leaf(at::randn({M}, bf16) * 0.5);
  l.tau = leaf(at::rand({heads}, bf16) + 0.5);
  const std::vector<at::Tensor> upstream = {at::randn({1, S, heads, d}, bf16),
                                            at::randn({1, S, heads, d}, bf16),
                                            at::randn({1, S, heads, d}, bf16)};
  const CcaConvWeights w{l.dw_w, l.dw_b, l.g_w, l.g_b};
  const CcaPrologueOutput fused =
      cca_prologue_fused(g, cca_rope_inverse_frequencies(g.rope_dim, kTheta, {}, l.q0.device()), w,
                         l.tau, {l.q0, l.k0, l.v_current, l.v_delayed});
  const std::vector<at::Tensor> outputs = {fused.q, fused.k, fused.v};
  const std::vector<at::Tensor> inputs = {l.q0, l.k0, l.v_current, l.v_delayed};
  const std::vector<at::Tensor> grads = torch::autograd::grad(outputs, inputs, upstream);
  const int64_t window = 192, margin = 8;
  for (const int64_t start : {int64_t{0}, S / 2 - 100, S - window}) {
    const auto slice = [&](const at::Tensor& t) {
      return t.detach().narrow(1, start, window).to(at::kFloat).requires_grad_(true);
    };
    const auto plain = [](const at::Tensor& t) { return t.detach().to(at::kFloat); };
    const std::vector<at::Tensor> win = {slice(l.q0), slice(l.k0), slice(l.v_current),
                                         slice(l.v_delayed)};
    const CcaPrologueOutput ref = cca_prologue(
        g, Rotary(g.rope_dim, kTheta), {plain(l.dw_w), plain(l.dw_b), plain(l.g_w), plain(l.g_b)},
        plain(l.tau), {win[0], win[1], win[2], win[3]}, {}, {}, start);
    std::vector<at::Tensor> ref_upstream;
    for (const at::Tensor& u : upstream) ref_upstream.push_back(slice(u).detach());
    const std::vector<at::Tensor> ref_grads =
        torch::autograd::grad({ref.q, ref.k, ref.v}, win, ref_upstream);
    const int64_t last = start + window == S ? window : window - margin;  // later tokens feed back
    const auto rows = [&](const at::Tensor& t, int64_t from) {
      return t.narrow(1, from + margin, last - margin);
    };
    const std::vector<at::Tensor> ref_outputs = {ref.q, ref.k, ref.v};
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_LT(relative_error(rows(outputs[i], start), rows(ref_outputs[i], 0)), 2.5e-2)
          << "output " << i << " at " << start;
    }
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_LT(relative_error(rows(grads[i], start), rows(ref_grads[i], 0)), 4e-2)
          << "gradient " << i << " at " << start;
    }
  }
}

}  // namespace
}  // namespace cca
