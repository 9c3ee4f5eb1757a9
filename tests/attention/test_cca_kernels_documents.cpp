// The fused CCA prologue over packed documents (data.document_masking) against the reference
// prologue with the same documents (lib/attention/cca_reference.cpp, cca_document_conv_stack),
// forward and every gradient.
//
// Truth is the reference path in float64 on the CPU, fed the same (rounded) inputs; the fused path
// is measured against it as the relative Frobenius error of every output and gradient, with the
// tolerances of test_cca_kernels.cpp. Layouts: one document per row; a document start at every
// position ≡ 0 mod 3; documents of length 1 at positions 0 and 1; many documents of different
// lengths, different in each row, with starts at and around the kernels' 64-token tiles. Skipped
// without a GPU.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cca_fused.h"
#include "attention/cca_reference.h"
#include "config/geometry.h"
#include "ops/device.h"
#include "ops/documents.h"
#include "ops/rope.h"
#include "testing/cca_prologue.h"
#include "testing/documents.h"

namespace cca {
namespace {

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused CCA kernels not exercised"

constexpr double kTheta = testing::kPrologueTheta;
using Leaves = testing::PrologueLeaves;
using Result = testing::PrologueResult;
using testing::relative_error;

enum class Layout { one, every_third, two_singles, mixed };

struct DocumentCase {
  std::string name;
  at::ScalarType dtype;
  int64_t head_dim, n_q, n_kv, convs, k0, k1;
  bool qk_mean, value_shift, reset_positions;
  double rope_fraction;
  Layout layout;
  int64_t batch, seq;
};

// Document lengths of row `row` (summing to `seq`).
std::vector<int64_t> row_lengths(Layout layout, int64_t seq, int64_t row) {
  std::vector<int64_t> pattern;
  switch (layout) {
    case Layout::one:
      return {seq};
    case Layout::every_third:
      pattern = {3};
      break;
    case Layout::two_singles:
      return seq > 2 ? std::vector<int64_t>{1, 1, seq - 2} : std::vector<int64_t>(seq, 1);
    case Layout::mixed:
      // Starts at 0, 1, 6, 64 (a tile's first row), 66, 67, 133, ...; rows start at other points.
      pattern = {1, 5, 58, 2, 1, 66, 3, 4, 63, 7, 1, 2, 30};
      std::rotate(pattern.begin(), pattern.begin() + (row * 5) % pattern.size(), pattern.end());
      break;
  }
  std::vector<int64_t> lengths;
  int64_t filled = 0;
  for (size_t i = 0; filled < seq; ++i) {
    const int64_t length = std::min(pattern[i % pattern.size()], seq - filled);
    lengths.push_back(length);
    filled += length;
  }
  return lengths;
}

testing::PackedDocuments pack(const DocumentCase& c) {
  std::vector<std::vector<int64_t>> rows;
  for (int64_t r = 0; r < c.batch; ++r) rows.push_back(row_lengths(c.layout, c.seq, r));
  return testing::pack_documents(rows, 100);
}

CcaGeometry geometry_of(const DocumentCase& c) {
  return testing::prologue_geometry(
      {c.head_dim, c.n_q, c.n_kv, c.convs, c.k0, c.k1, c.qk_mean, c.value_shift, c.rope_fraction});
}

std::vector<std::string> gradient_names(const Leaves& l) {
  const char* names[] = {"q0",
                         "k0",
                         "v_current",
                         "v_delayed",
                         "depthwise weight",
                         "depthwise bias",
                         "grouped weight",
                         "grouped bias",
                         "temperature"};
  std::vector<std::string> out;
  int slot = 0;
  for (const at::Tensor& t :
       {l.q0, l.k0, l.v_current, l.v_delayed, l.dw_w, l.dw_b, l.g_w, l.g_b, l.tau}) {
    if (t.defined()) out.push_back(names[slot]);
    ++slot;
  }
  return out;
}

class CcaKernelDocumentCase : public ::testing::TestWithParam<DocumentCase> {};

TEST_P(CcaKernelDocumentCase, ForwardAndBackwardMatchReference) {
  REQUIRE_GPU();
  const DocumentCase& c = GetParam();
  const CcaGeometry g = geometry_of(c);
  at::manual_seed(7);
  const testing::PackedDocuments packed = pack(c);
  const Documents on_cpu = testing::test_documents(packed, c.reset_positions, at::kCPU);
  const Documents on_gpu = testing::test_documents(packed, c.reset_positions, at::kCUDA);
  const Leaves base = testing::random_prologue_leaves(g, c.batch, c.seq);
  const auto cuda = at::TensorOptions().device(at::kCUDA).dtype(c.dtype);
  const Leaves gpu_leaves = base.to(cuda);  // rounded once: every path sees the same values
  const Leaves truth_in = gpu_leaves.to(at::TensorOptions().dtype(at::kDouble).device(at::kCPU));
  const int64_t d = c.head_dim;
  const std::vector<at::Tensor> upstream = {at::randn({c.batch, c.seq, c.n_q, d}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, d}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, d}, at::kDouble)};
  const Result truth = testing::run_prologue(g, truth_in, false, upstream, &on_cpu);
  const Result reference = testing::run_prologue(g, gpu_leaves, false, upstream, &on_gpu);
  const Result fused = testing::run_prologue(g, gpu_leaves, true, upstream, &on_gpu);
  const testing::PrologueTolerance tol = testing::prologue_tolerance(c.dtype);
  const char* out_names[] = {"q", "k", "v"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LT(relative_error(fused.outputs[i], truth.outputs[i]), tol.forward)
        << out_names[i] << ": reference path's error "
        << relative_error(reference.outputs[i], truth.outputs[i]);
  }
  const std::vector<std::string> names = gradient_names(base);
  ASSERT_EQ(fused.grads.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_TRUE(fused.grads[i].defined()) << names[i];
    EXPECT_LT(relative_error(fused.grads[i], truth.grads[i]), tol.backward)
        << "grad of " << names[i] << ": reference path's error "
        << relative_error(reference.grads[i], truth.grads[i]);
  }
}

const at::ScalarType kBf16 = at::kBFloat16, kF16 = at::kHalf, kF32 = at::kFloat;
constexpr Layout kOne = Layout::one, kThird = Layout::every_third, kSingles = Layout::two_singles,
                 kMixed = Layout::mixed;

std::vector<DocumentCase> document_cases() {
  return {
      // name, dtype, d, n_q, n_kv, convs, k0, k1, qk_mean, value_shift, reset, rope, layout, B, S
      {"bf16_g4_k2k2_mixed_reset", kBf16, 128, 8, 2, 2, 2, 2, true, true, true, 0.5, kMixed, 2,
       200},
      {"bf16_g4_k2k2_mixed", kBf16, 128, 8, 2, 2, 2, 2, true, true, false, 0.5, kMixed, 2, 200},
      {"bf16_cca_k3k4_every_third", kBf16, 64, 4, 4, 2, 3, 4, true, true, false, 0.5, kThird, 2,
       131},
      {"bf16_cca_k4k4_singles_reset", kBf16, 64, 4, 4, 2, 4, 4, true, true, true, 1.0, kSingles, 2,
       70},
      {"bf16_g2_k4k1_singles", kBf16, 128, 4, 2, 2, 4, 1, true, true, true, 0.5, kSingles, 2, 70},
      {"bf16_mqa_k1k3_mixed", kBf16, 128, 8, 1, 2, 1, 3, true, true, true, 1.0, kMixed, 2, 150},
      {"bf16_d256_g2_k4k4_mixed", kBf16, 256, 4, 2, 2, 4, 4, true, true, true, 0.5, kMixed, 1, 140},
      {"bf16_k1k1_every_third", kBf16, 64, 4, 2, 2, 1, 1, true, true, true, 0.5, kThird, 2, 65},
      {"bf16_k2k3_one_document", kBf16, 128, 4, 2, 2, 2, 3, true, true, true, 0.5, kOne, 2, 130},
      {"bf16_convs0_mixed", kBf16, 128, 4, 2, 0, 2, 2, true, true, true, 0.5, kMixed, 2, 100},
      {"bf16_convs1_k4_every_third", kBf16, 128, 4, 2, 1, 4, 2, true, true, false, 0.5, kThird, 2,
       100},
      {"bf16_convs1_k2_singles", kBf16, 64, 4, 4, 1, 2, 2, true, true, true, 0.5, kSingles, 2, 66},
      {"bf16_no_mean_mixed", kBf16, 128, 4, 2, 2, 3, 2, false, true, true, 0.5, kMixed, 2, 140},
      {"bf16_no_value_shift_mixed", kBf16, 128, 4, 2, 2, 2, 2, true, false, true, 0.5, kMixed, 2,
       140},
      {"fp16_d64_g2_k2k3_mixed", kF16, 64, 4, 2, 2, 2, 3, true, true, true, 0.25, kMixed, 2, 160},
      {"fp32_d64_g2_k2k3_mixed", kF32, 64, 4, 2, 2, 2, 3, true, true, true, 0.5, kMixed, 2, 150},
      {"fp32_d64_g2_k2k3_mixed_no_reset", kF32, 64, 4, 2, 2, 2, 3, true, true, false, 0.5, kMixed,
       2, 150},
      {"fp32_d128_cca_k4k4_every_third", kF32, 128, 2, 2, 2, 4, 4, true, true, false, 0.5, kThird,
       1, 100},
      {"fp32_d256_g4_k2k2_singles", kF32, 256, 4, 1, 2, 2, 2, true, true, true, 0.5, kSingles, 1,
       70},
      {"fp32_convs1_no_shift_mixed", kF32, 64, 8, 8, 1, 3, 2, true, false, true, 1.0, kMixed, 2,
       130},
      {"fp32_convs0_every_third", kF32, 64, 4, 2, 0, 2, 2, true, true, true, 0.5, kThird, 2, 70},
      {"fp32_k3k2_one_document", kF32, 128, 4, 2, 2, 3, 2, true, true, false, 0.5, kOne, 2, 90},
  };
}

INSTANTIATE_TEST_SUITE_P(Layouts, CcaKernelDocumentCase, ::testing::ValuesIn(document_cases()),
                         [](const auto& info) { return info.param.name; });

// The row layout of the tests themselves: every layout fills its rows exactly.
TEST(CcaKernelDocumentLayouts, RowsAddUpAndDiffer) {
  for (const Layout layout : {kOne, kThird, kSingles, kMixed}) {
    for (const int64_t seq : {1, 2, 3, 65, 200}) {
      const std::vector<int64_t> lengths = row_lengths(layout, seq, 1);
      int64_t sum = 0;
      for (const int64_t length : lengths) {
        EXPECT_GT(length, 0);
        sum += length;
      }
      EXPECT_EQ(sum, seq);
    }
  }
  EXPECT_NE(row_lengths(kMixed, 200, 0), row_lengths(kMixed, 200, 1));
  EXPECT_EQ(row_lengths(kSingles, 70, 0), (std::vector<int64_t>{1, 1, 68}));
}

// With documents the reductions stay fixed-order: two backward passes are bit-identical.
TEST(CcaKernelDocuments, BackwardIsDeterministic) {
  REQUIRE_GPU();
  const DocumentCase c{"det", kBf16, 128, 8, 2, 2, 3, 3, true, true, true, 0.5, kMixed, 3, 300};
  const CcaGeometry g = geometry_of(c);
  at::manual_seed(9);
  const Documents documents = testing::test_documents(pack(c), true, at::kCUDA);
  const Leaves leaves = testing::random_prologue_leaves(g, c.batch, c.seq)
                            .to(at::TensorOptions().device(at::kCUDA).dtype(kBf16));
  const std::vector<at::Tensor> upstream = {at::randn({c.batch, c.seq, c.n_q, 128}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, 128}, at::kDouble),
                                            at::randn({c.batch, c.seq, c.n_kv, 128}, at::kDouble)};
  const Result a = testing::run_prologue(g, leaves, true, upstream, &documents);
  const Result b = testing::run_prologue(g, leaves, true, upstream, &documents);
  for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_TRUE(at::equal(a.grads[i], b.grads[i])) << i;
}

// Without gradients the fused forward takes documents too (evaluation under document masking).
TEST(CcaKernelDocuments, NoGradForwardMatchesTheAutogradOne) {
  REQUIRE_GPU();
  const DocumentCase c{"nograd", kBf16, 64, 4, 2, 2, 2, 2, true, true, true, 0.5, kMixed, 2, 130};
  const CcaGeometry g = geometry_of(c);
  at::manual_seed(11);
  const Documents documents = testing::test_documents(pack(c), true, at::kCUDA);
  const Leaves l = testing::random_prologue_leaves(g, c.batch, c.seq)
                       .to(at::TensorOptions().device(at::kCUDA).dtype(kBf16));
  const CcaConvWeights w{l.dw_w, l.dw_b, l.g_w, l.g_b};
  const CcaProjections p{l.q0, l.k0, l.v_current, l.v_delayed};
  const at::Tensor inv_freq = cca_rope_inverse_frequencies(g.rope_dim, kTheta, {}, at::kCUDA);
  const CcaPrologueOutput with_grad = cca_prologue_fused(g, inv_freq, w, l.tau, p, &documents);
  const at::NoGradGuard no_grad;
  const CcaPrologueOutput without = cca_prologue_fused(g, inv_freq, w, l.tau, p, &documents);
  EXPECT_TRUE(at::equal(with_grad.q.detach(), without.q));
  EXPECT_TRUE(at::equal(with_grad.k.detach(), without.k));
  EXPECT_TRUE(at::equal(with_grad.v.detach(), without.v));
}

}  // namespace
}  // namespace cca
