// train.precision: fp8 end to end on a GPU with FP8 tensor cores (skipped elsewhere): a tiny
// model of each projection family trains with finite, falling loss, close to the same run in
// bf16, and its layers really ran in fp8. On the CPU: the run is refused with a clear message.
#include <gtest/gtest.h>

#include <ATen/cuda/CUDAContext.h>

#include <cmath>

#include "ops/device.h"
#include "ops/fp8.h"
#include "ops/fp8_linear.h"
#include "testing/error_of.h"
#include "train/train_test_util.h"
#include "train/trainer.h"

namespace cca {
namespace {

using testing::ScratchDir;

bool fp8_gpu_available() {
  if (!cuda_available()) return false;
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(0);
  return fp8_capable(prop->major, prop->minor);
}

// The tiny config (every hidden width a multiple of 16) on the GPU in `precision`.
std::vector<std::string> fp8_overrides(const std::string& variant, const std::string& precision) {
  std::vector<std::string> sets = {"train.device=cuda", "train.precision=" + precision,
                                   "train.steps=16", "checkpoint.every=0", "train.eval_every=0"};
  const bool moe = variant == "mha_moe";
  sets.push_back("attention.kind=" + std::string(moe ? "mha" : variant));
  if (variant == "mla") {
    sets.insert(sets.end(), {"attention.mla.kv_lora_rank=32", "attention.mla.qk_nope_head_dim=16",
                             "attention.mla.qk_rope_head_dim=16", "attention.mla.v_head_dim=16"});
  }
  if (moe) {
    sets.insert(sets.end(),
                {"moe.n_experts=4", "moe.top_k=2", "moe.expert_hidden=64", "moe.shared_experts=1"});
  }
  return sets;
}

double final_val_loss(const std::string& variant, const std::vector<std::string>& sets) {
  ScratchDir dir;
  const std::string data = testing::write_tiny_dataset(dir / "data");
  Trainer trainer(testing::tiny_config(data, dir / "run", sets), testing::quiet_options());
  const TrainResult result = trainer.run();
  EXPECT_EQ(trainer.progress().skipped_steps, 0) << variant;
  return result.final_val_loss.value_or(NAN);
}

class TrainerFp8CudaTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!fp8_gpu_available()) GTEST_SKIP() << "no GPU with FP8 tensor cores (sm_89+) visible";
  }
};

TEST_P(TrainerFp8CudaTest, TrainsWithFallingLossCloseToBf16) {
  for (const std::string scaling : {"tensor", "row"}) {
    std::vector<std::string> sets = fp8_overrides(GetParam(), "fp8");
    sets.push_back("train.fp8.scaling=" + scaling);
    const double fp8 = final_val_loss(GetParam(), sets);
    const double bf16 = final_val_loss(GetParam(), fp8_overrides(GetParam(), "bf16"));
    ASSERT_TRUE(std::isfinite(fp8)) << scaling;
    EXPECT_LT(fp8, std::log(static_cast<double>(testing::kTinyVocab)) - 0.3)
        << scaling << ": 16 fp8 steps should beat a uniform guess (ln 128 = 4.85) clearly";
    EXPECT_NEAR(fp8, bf16, 0.05 * bf16) << scaling;
  }
  const std::string summary = fp8_layer_summary();
  EXPECT_EQ(summary.rfind("fp8: none", 0), std::string::npos) << summary;
  EXPECT_NE(summary.find("64→"), std::string::npos) << summary;
}

INSTANTIATE_TEST_SUITE_P(Variants, TrainerFp8CudaTest,
                         ::testing::Values("mha", "gqa", "mla", "cca", "mha_moe"));

// The recomputation of checkpointed blocks runs in fp8 too, on the autograd thread.
TEST(TrainerFp8Cuda, ActivationCheckpointingTrains) {
  if (!fp8_gpu_available()) GTEST_SKIP() << "no GPU with FP8 tensor cores (sm_89+) visible";
  std::vector<std::string> sets = fp8_overrides("cca", "fp8");
  const double plain = final_val_loss("cca", sets);
  sets.push_back("train.activation_checkpointing=true");
  const double recomputed = final_val_loss("cca", sets);
  ASSERT_TRUE(std::isfinite(recomputed));
  EXPECT_NEAR(recomputed, plain, 0.01 * plain);
}

TEST(TrainerFp8Cuda, RefusedWithoutFp8TensorCores) {
  if (fp8_gpu_available()) GTEST_SKIP() << "this GPU has FP8 tensor cores";
  ScratchDir dir;
  const std::string data = testing::write_tiny_dataset(dir / "data");
  // train.device auto: a CPU-only machine gets the CPU, a pre-Ada GPU its GPU.
  const std::string message = testing::error_of([&] {
    Trainer trainer(
        testing::tiny_config(data, dir / "run", {"train.device=auto", "train.precision=fp8"}),
        testing::quiet_options());
  });
  EXPECT_NE(message.find("train.precision: fp8 needs an NVIDIA GPU"), std::string::npos) << message;
  EXPECT_NE(message.find("allowed there: auto, fp32, bf16"), std::string::npos) << message;
}

}  // namespace
}  // namespace cca
