#include <gtest/gtest.h>

#include "ops/device.h"
#include "util/error.h"

namespace cca {
namespace {

TEST(Device, CpuAlwaysResolves) {
  EXPECT_TRUE(resolve_device("cpu").is_cpu());
  EXPECT_NE(describe_device(at::Device(at::kCPU)).find("CPU"), std::string::npos);
  EXPECT_NE(describe_runtime().find("LibTorch 2."), std::string::npos);
}

TEST(Device, AutoPicksCudaOnlyWhenVisible) {
  EXPECT_EQ(resolve_device("auto").is_cuda(), cuda_available());
}

TEST(Device, CudaRequestWithoutGpuIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible; the no-GPU error path is not reachable";
  try {
    resolve_device("cuda");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device is usable"), std::string::npos);
  }
}

// The GPU acceptance check: a CUDA tensor operation through the built library.
TEST(DeviceCuda, MatmulOnGpuMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU matmul not exercised";
  const at::Device gpu = resolve_device("cuda");
  EXPECT_NE(describe_device(gpu).find("sm_"), std::string::npos);
  at::Tensor a = at::randn({256, 128}, at::kDouble);
  at::Tensor b = at::randn({128, 64}, at::kDouble);
  at::Tensor on_gpu = at::matmul(a.to(gpu), b.to(gpu)).cpu();
  EXPECT_TRUE(at::allclose(on_gpu, at::matmul(a, b), 1e-10, 1e-10));
}

}  // namespace
}  // namespace cca
