// The growing decode state: appends equal concatenation, decode steps write into spare capacity
// without reallocating, and appends under autograd keep working through backward.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include "attention/kv_cache.h"

namespace cca {
namespace {

TEST(SequenceBuffer, AppendsEqualConcatenationAndReuseCapacity) {
  at::manual_seed(0);
  const at::NoGradGuard no_grad;
  SequenceBuffer buffer(2);
  EXPECT_EQ(buffer.length(), 0);
  EXPECT_EQ(buffer.bytes(), 0);
  // A transposed prefill, as the layers hand it over: kept as given.
  const at::Tensor prefill = at::randn({2, 37, 3, 8}).transpose(1, 2);
  buffer.append(prefill);
  EXPECT_TRUE(buffer.filled().is_same(prefill));
  EXPECT_EQ(buffer.capacity(), 0);
  at::Tensor expected = prefill;
  const void* storage = nullptr;
  for (int step = 0; step < 300; ++step) {
    const at::Tensor token = at::randn({2, 3, 1, 8});
    buffer.append(token);
    expected = at::cat({expected, token}, 2);
    if (step == 0) {
      EXPECT_GE(buffer.capacity(), 38 + 256);
      storage = buffer.filled().data_ptr();
    } else if (step < 256) {
      EXPECT_EQ(buffer.filled().data_ptr(), storage) << "reallocated at step " << step;
    }
  }
  EXPECT_EQ(buffer.length(), 337);
  EXPECT_TRUE(at::equal(buffer.filled(), expected));
  EXPECT_EQ(buffer.bytes(), expected.numel() * 4);
  EXPECT_GE(buffer.capacity(), 337);
}

TEST(SequenceBuffer, ChunksOfAnySizeAndDtypeChanges) {
  const at::NoGradGuard no_grad;
  SequenceBuffer buffer(1);
  at::Tensor expected = at::arange(6, at::kFloat).view({1, 6});
  buffer.append(expected);
  for (const int64_t chunk : {int64_t{1}, int64_t{500}, int64_t{3}, int64_t{1000}}) {
    const at::Tensor part = at::rand({1, chunk});
    buffer.append(part);
    expected = at::cat({expected, part}, 1);
    EXPECT_TRUE(at::equal(buffer.filled(), expected)) << "after a chunk of " << chunk;
  }
  // A new dtype moves the history over (generation switching precision mid-stream).
  const at::Tensor wider = at::rand({1, 4}).to(at::kDouble);
  buffer.append(wider);
  EXPECT_EQ(buffer.filled().scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(buffer.filled(), at::cat({expected.to(at::kDouble), wider}, 1)));
}

// The slots a kernel writes into (the fused CCA decode step): reserve, write, commit.
TEST(SequenceBuffer, ReservedSlotsBecomeFilledOnCommit) {
  const at::NoGradGuard no_grad;
  SequenceBuffer buffer(2);
  at::Tensor slots = buffer.reserve({1, 2, 5, 4}, at::kFloat);
  EXPECT_EQ(buffer.length(), 0);
  EXPECT_EQ(buffer.capacity(), 5);  // exactly a prefill's size
  at::Tensor expected = at::randn({1, 2, 5, 4});
  slots.copy_(expected);
  buffer.commit(5);
  EXPECT_TRUE(at::equal(buffer.filled(), expected));
  for (const int64_t chunk : {int64_t{1}, int64_t{1}, int64_t{300}}) {
    const at::Tensor part = at::randn({1, 2, chunk, 4});
    // Writing through a transposed view, as the kernel sees [B, S, H, d].
    buffer.reserve(part.sizes(), at::kFloat).transpose(1, 2).copy_(part.transpose(1, 2));
    buffer.commit(chunk);
    expected = at::cat({expected, part}, 2);
    EXPECT_TRUE(at::equal(buffer.filled(), expected)) << "after " << chunk;
  }
  EXPECT_GE(buffer.capacity(), 307);
  // A first append kept as given, then slots in another dtype: the history moves over.
  SequenceBuffer mixed(1);
  const at::Tensor first = at::rand({2, 3});
  mixed.append(first);
  mixed.reserve({2, 1}, at::kDouble).fill_(7.0);
  mixed.commit(1);
  EXPECT_EQ(mixed.filled().scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(
      mixed.filled(), at::cat({first.to(at::kDouble), at::full({2, 1}, 7.0, at::kDouble)}, 1)));
}

TEST(SequenceBuffer, AppendsUnderAutogradConcatenateAndDifferentiate) {
  KeyValueCache cache;
  const at::Tensor k1 = at::randn({1, 2, 3, 4}, at::kDouble).requires_grad_(true);
  const at::Tensor k2 = at::randn({1, 2, 2, 4}, at::kDouble).requires_grad_(true);
  cache.append(k1, k1 * 2);
  const at::Tensor first = cache.keys.filled().sum();
  cache.append(k2, k2 * 2);
  EXPECT_EQ(cache.keys.capacity(), 0);  // no shared buffer under autograd
  const at::Tensor loss = first + (cache.keys.filled() * 3).sum() + cache.values.filled().sum();
  const auto grads = torch::autograd::grad({loss}, {k1, k2});
  EXPECT_TRUE(at::allclose(grads[0], at::full_like(k1, 6.0)));
  EXPECT_TRUE(at::allclose(grads[1], at::full_like(k2, 5.0)));
  EXPECT_EQ(cache.bytes(), 2 * (1 * 2 * 5 * 4) * 8);
}

}  // namespace
}  // namespace cca
