#include <gtest/gtest.h>

#include "ops/checksum.h"
#include "ops/device.h"

namespace cca {
namespace {

TEST(Checksum, DependsOnValuesAndPositions) {
  at::Tensor a = at::arange(1000, at::kFloat);
  at::Tensor b = a.clone();
  EXPECT_EQ(tensor_checksum(a), tensor_checksum(b));
  b[500] = 500.5f;
  EXPECT_NE(tensor_checksum(a), tensor_checksum(b));
  // Swapping two elements changes the sum of position-mixed hashes.
  at::Tensor c = a.clone();
  c[1] = 2.0f;
  c[2] = 1.0f;
  EXPECT_NE(tensor_checksum(a), tensor_checksum(c));
}

TEST(Checksum, LogicalOrderNotMemoryLayout) {
  at::Tensor m = at::randn({64, 48});
  EXPECT_EQ(tensor_checksum(m.t()), tensor_checksum(m.t().contiguous()));
  EXPECT_NE(tensor_checksum(m.t()), tensor_checksum(m));
}

TEST(Checksum, OddByteCountsAreCovered) {
  at::Tensor bytes = at::arange(7, at::kByte);
  at::Tensor changed = bytes.clone();
  changed[6] = 99;
  EXPECT_NE(tensor_checksum(bytes), tensor_checksum(changed));
}

TEST(ChecksumCuda, MatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU checksum not exercised";
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf, at::kByte}) {
    for (int64_t n : {1, 3, 1000, 1 << 20, (1 << 22) + 7}) {
      at::Tensor cpu = at::randn({n}).mul(100).to(dtype);
      at::Tensor gpu = cpu.to(at::kCUDA);
      EXPECT_EQ(tensor_checksum(cpu), tensor_checksum(gpu)) << "dtype " << dtype << " n " << n;
    }
  }
  // A view whose storage offset breaks 4-byte alignment.
  at::Tensor base = at::arange(101, at::TensorOptions().dtype(at::kHalf));
  EXPECT_EQ(tensor_checksum(base.slice(0, 1)), tensor_checksum(base.to(at::kCUDA).slice(0, 1)));
}

}  // namespace
}  // namespace cca
