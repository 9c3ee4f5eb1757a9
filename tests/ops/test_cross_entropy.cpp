// The chunked LM-head cross-entropy against the plain one (full logits, LibTorch's autograd):
// sums, gradients for hidden and weight, masking, the z-loss term, any chunk size; on CUDA the
// bf16 autocast path against fp32.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include "ops/cross_entropy.h"
#include "ops/device.h"
#include "ops/precision.h"

namespace cca {
namespace {

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().max().item<double>();
}

struct Reference {
  at::Tensor objective, cross_entropy, z;
};

Reference plain(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                double z_weight) {
  const at::Tensor logits = at::linear(hidden, weight);
  const at::Tensor valid = targets.ne(-1).to(logits.scalar_type());
  const at::Tensor ce = at::cross_entropy_loss(logits, targets, {}, at::Reduction::Sum, -1);
  const at::Tensor lse = at::logsumexp(logits, {-1});
  const at::Tensor z = (lse * lse * valid).sum();
  return {ce + z_weight * z, ce, z};
}

struct Inputs {
  at::Tensor hidden, weight, targets;
};

Inputs make_inputs(int64_t N, int64_t E, int64_t V, at::TensorOptions options,
                   double weight_scale = 0.3) {
  at::manual_seed(3);
  Inputs in;
  in.hidden = at::randn({N, E}, options).requires_grad_(true);
  in.weight = (at::randn({V, E}, options) * weight_scale).requires_grad_(true);
  in.targets = at::randint(0, V, {N}, options.dtype(at::kLong));
  in.targets.index_put_({at::arange(0, N, 4, in.targets.options())}, -1);  // every 4th ignored
  return in;
}

class ChunkedCrossEntropy : public ::testing::TestWithParam<int64_t> {};

TEST_P(ChunkedCrossEntropy, MatchesFullLogitsInFloat64) {
  const int64_t chunk = GetParam();
  for (const double z_weight : {0.0, 1e-2}) {
    const Inputs in = make_inputs(13, 8, 29, at::TensorOptions().dtype(at::kDouble));
    const Reference want = plain(in.hidden, in.weight, in.targets, z_weight);
    const auto grads_want = torch::autograd::grad({want.objective * 0.7}, {in.hidden, in.weight});
    const CrossEntropySums got =
        linear_cross_entropy(in.hidden, in.weight, in.targets, z_weight, chunk);
    EXPECT_NEAR(got.cross_entropy.item<double>(), want.cross_entropy.item<double>(), 1e-10);
    EXPECT_NEAR(got.z.item<double>(), want.z.item<double>(), 1e-10);
    EXPECT_NEAR(got.objective.item<double>(), want.objective.item<double>(), 1e-10);
    EXPECT_FALSE(got.cross_entropy.requires_grad());
    const auto grads = torch::autograd::grad({got.objective * 0.7}, {in.hidden, in.weight});
    EXPECT_LT(max_abs_diff(grads[0], grads_want[0]), 1e-12) << "chunk " << chunk;
    EXPECT_LT(max_abs_diff(grads[1], grads_want[1]), 1e-12) << "chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, ChunkedCrossEntropy, ::testing::Values(1, 4, 5, 13, 100));

TEST(ChunkedCrossEntropy, WithoutGradientsGivesTheSameSums) {
  const Inputs in = make_inputs(10, 6, 17, at::TensorOptions().dtype(at::kDouble));
  const CrossEntropySums with = linear_cross_entropy(in.hidden, in.weight, in.targets, 1e-3, 3);
  at::NoGradGuard no_grad;
  const CrossEntropySums without = linear_cross_entropy(in.hidden, in.weight, in.targets, 1e-3, 3);
  EXPECT_FALSE(without.objective.requires_grad());
  EXPECT_EQ(with.objective.item<double>(), without.objective.item<double>());
}

TEST(ChunkedCrossEntropy, AllTargetsIgnoredGivesZeroAndZeroGradient) {
  Inputs in = make_inputs(6, 4, 9, at::TensorOptions().dtype(at::kDouble));
  in.targets.fill_(-1);
  const CrossEntropySums got = linear_cross_entropy(in.hidden, in.weight, in.targets, 1e-2, 4);
  EXPECT_EQ(got.objective.item<double>(), 0.0);
  const auto grads = torch::autograd::grad({got.objective}, {in.hidden, in.weight});
  EXPECT_EQ(grads[0].abs().max().item<double>(), 0.0);
  EXPECT_EQ(grads[1].abs().max().item<double>(), 0.0);
}

TEST(ChunkedCrossEntropy, RejectsMismatchedShapes) {
  const auto options = at::TensorOptions().dtype(at::kFloat);
  EXPECT_THROW(linear_cross_entropy(at::zeros({4, 8}, options), at::zeros({16, 6}, options),
                                    at::zeros({4}, at::kLong), 0.0),
               c10::Error);
  EXPECT_THROW(linear_cross_entropy(at::zeros({4, 8}, options), at::zeros({16, 8}, options),
                                    at::zeros({5}, at::kLong), 0.0),
               c10::Error);
}

// bf16 logits under autocast against the fp32 computation: a GEMM-rounding-sized difference.
// Logits of a trained LM are O(1)-O(10) (weight scale 0.05 here gives a std of 0.8); with the
// default scale's std of 4.8 a bf16 logit near 20 is off by up to 0.03, i.e. 3% in its softmax
// probability, which is the rounding of bf16 logits itself (as autocast's linear has it too).
TEST(ChunkedCrossEntropyCuda, Bf16AutocastCloseToFp32) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: the bf16 autocast path is GPU-only";
  const at::Device cuda(at::kCUDA, 0);
  const Inputs in =
      make_inputs(4096, 256, 8192, at::TensorOptions().dtype(at::kFloat).device(cuda), 0.05);
  const Reference want = plain(in.hidden, in.weight, in.targets, 1e-3);
  const auto grads_want = torch::autograd::grad({want.objective}, {in.hidden, in.weight});
  CrossEntropySums got;
  {
    AutocastScope autocast(resolve_precision("bf16", cuda), cuda);
    got = linear_cross_entropy(in.hidden, in.weight, in.targets, 1e-3, 1000);
  }
  const double n = 3072;  // valid tokens
  EXPECT_NEAR(got.cross_entropy.item<double>() / n, want.cross_entropy.item<double>() / n, 2e-2);
  const auto grads = torch::autograd::grad({got.objective}, {in.hidden, in.weight});
  EXPECT_EQ(grads[0].scalar_type(), at::kFloat);
  EXPECT_EQ(grads[1].scalar_type(), at::kFloat);
  const double scale_h = grads_want[0].abs().max().item<double>();
  const double scale_w = grads_want[1].abs().max().item<double>();
  EXPECT_LT(max_abs_diff(grads[0], grads_want[0]), 2e-2 * scale_h);
  EXPECT_LT(max_abs_diff(grads[1], grads_want[1]), 2e-2 * scale_w);
}

// fp32 on CUDA goes through the row kernel too: it must agree with LibTorch's fp32 ops closely,
// with vocabularies that allow 16-byte loads (8192) and ones that do not (1001).
TEST(ChunkedCrossEntropyCuda, Fp32KernelMatchesPlainOps) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: the row kernel is GPU-only";
  const at::Device cuda(at::kCUDA, 0);
  for (const int64_t vocab : {8192, 1001}) {
    const Inputs in =
        make_inputs(700, 64, vocab, at::TensorOptions().dtype(at::kFloat).device(cuda));
    const Reference want = plain(in.hidden, in.weight, in.targets, 1e-3);
    const auto grads_want = torch::autograd::grad({want.objective}, {in.hidden, in.weight});
    const CrossEntropySums got = linear_cross_entropy(in.hidden, in.weight, in.targets, 1e-3, 256);
    const double ce = want.cross_entropy.item<double>(), z = want.z.item<double>();
    EXPECT_NEAR(got.cross_entropy.item<double>(), ce, 1e-5 * ce) << "vocab " << vocab;
    EXPECT_NEAR(got.z.item<double>(), z, 1e-5 * z) << "vocab " << vocab;
    const auto grads = torch::autograd::grad({got.objective}, {in.hidden, in.weight});
    EXPECT_LT(max_abs_diff(grads[0], grads_want[0]),
              1e-4 * grads_want[0].abs().max().item<double>());
    EXPECT_LT(max_abs_diff(grads[1], grads_want[1]),
              1e-4 * grads_want[1].abs().max().item<double>());
  }
}

}  // namespace
}  // namespace cca
