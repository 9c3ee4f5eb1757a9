// Autocast scopes: the step-wide cast cache makes every micro-batch's forward reuse one bf16 copy
// of each weight, and drops it when the step ends (the optimizer then changes the weights).
#include <gtest/gtest.h>

#include "ops/autocast.h"
#include "ops/precision.h"

namespace cca {
namespace {

Precision bf16() {
  return resolve_precision("bf16", at::Device(at::kCPU));
}

// The bf16 copy a forward under autocast would use for `weight`.
at::Tensor cast_in_a_forward(const at::Tensor& weight) {
  const AutocastScope autocast(bf16(), weight.device());
  return autocast_weight(weight, at::kBFloat16);
}

TEST(StepCastCache, MicroBatchesShareOneCastPerWeightWithinAStep) {
  const at::Tensor weight = at::randn({4, 4}).requires_grad_(true);
  {
    const StepCastCache step(bf16());
    const at::Tensor first = cast_in_a_forward(weight);
    EXPECT_TRUE(cast_in_a_forward(weight).is_same(first)) << "cast again in the same step";
  }
  // A new step (after the optimizer) casts the updated weight afresh.
  {
    at::NoGradGuard no_grad;
    weight.add_(1.0);
  }
  const StepCastCache next(bf16());
  const at::Tensor again = cast_in_a_forward(weight);
  EXPECT_TRUE(at::equal(again, weight.detach().to(at::kBFloat16)));
}

TEST(StepCastCache, WithoutItEachForwardCastsAgainAndFp32DoesNothing) {
  const at::Tensor weight = at::randn({4, 4}).requires_grad_(true);
  const at::Tensor a = cast_in_a_forward(weight);
  EXPECT_FALSE(cast_in_a_forward(weight).is_same(a));
  {
    at::NoGradGuard no_grad;
    weight.mul_(2.0);
  }
  EXPECT_TRUE(at::equal(cast_in_a_forward(weight), weight.detach().to(at::kBFloat16)));
  EXPECT_FALSE(at::equal(cast_in_a_forward(weight), a));
  const StepCastCache fp32(resolve_precision("fp32", at::Device(at::kCPU)));
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
}

}  // namespace
}  // namespace cca
