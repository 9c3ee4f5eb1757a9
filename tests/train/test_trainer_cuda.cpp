// The trainer on a GPU (skipped without one): bf16 autocast training of every attention variant,
// dense and MoE, and checkpoints moving between CPU and GPU runs.
#include <gtest/gtest.h>

#include "ops/device.h"
#include "train/train_test_util.h"
#include "train/trainer.h"

namespace cca {
namespace {

using testing::ScratchDir;

class TrainerCudaTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU trainer tests skipped";
  }
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
};

// "cca", "mla_moe", ...: the variant and whether its FFNs are MoE.
std::vector<std::string> variant_overrides(const std::string& name) {
  const bool moe = name.size() > 4 && name.compare(name.size() - 4, 4, "_moe") == 0;
  std::string kind = moe ? name.substr(0, name.size() - 4) : name;
  const bool convs = kind == "mha_convs";  // MHA with CCA's convs and value shift
  if (convs) kind = "mha";
  std::vector<std::string> sets = {"attention.kind=" + kind, "train.device=cuda",
                                   "train.precision=bf16",   "train.steps=12",
                                   "checkpoint.every=0",     "train.eval_every=0"};
  if (kind == "gqa" || kind == "ccgqa" || kind == "swa") sets.push_back("attention.n_kv_heads=2");
  if (kind == "swa") sets.push_back("attention.swa.window=16");
  if (convs) sets.insert(sets.end(), {"attention.mha.convs=2", "attention.mha.value_shift=true"});
  if (kind == "mla") {
    sets.insert(sets.end(), {"attention.mla.kv_lora_rank=32", "attention.mla.qk_nope_head_dim=16",
                             "attention.mla.qk_rope_head_dim=16", "attention.mla.v_head_dim=16"});
  }
  if (moe) {
    sets.insert(sets.end(), {"moe.n_experts=4", "moe.top_k=2", "moe.expert_hidden=64"});
  }
  return sets;
}

TEST_P(TrainerCudaTest, Bf16TrainingLowersTheLoss) {
  Trainer trainer(testing::tiny_config(data, dir / "run", variant_overrides(GetParam())),
                  testing::quiet_options());
  const TrainResult result = trainer.run();
  ASSERT_TRUE(result.final_val_loss.has_value());
  EXPECT_TRUE(std::isfinite(*result.final_val_loss));
  EXPECT_LT(*result.final_val_loss, std::log(static_cast<double>(testing::kTinyVocab)) - 0.3)
      << "12 bf16 steps should beat a uniform guess (ln 128 = 4.85) clearly";
  EXPECT_EQ(trainer.progress().skipped_steps, 0);
}

INSTANTIATE_TEST_SUITE_P(Variants, TrainerCudaTest,
                         ::testing::Values("mha", "gqa", "mla", "cca", "ccgqa", "swa", "mha_moe",
                                           "cca_moe", "ccgqa_moe", "mha_convs"));

// train.cuda_graphs: the same steps replayed from a graph as run eagerly. With grad_accum 2 the
// capture happens at the second step's second micro-batch, so later steps are all replays. The
// graph scales by 1/valid where the eager step divides, so dense weights agree to rounding, not
// bits; with MoE a rounding can flip a token's expert choice, so only the validation loss is
// compared there.
TEST(TrainerCudaGraphs, ReplayedStepsMatchEagerOnes) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: CUDA graph training skipped";
  for (const std::string variant : {"mha", "cca", "cca_moe"}) {
    ScratchDir dir;
    const std::string data = testing::write_tiny_dataset(dir / "data");
    std::vector<std::string> sets = variant_overrides(variant);
    Trainer eager(testing::tiny_config(data, dir / "eager", sets), testing::quiet_options());
    const TrainResult eager_result = eager.run();
    sets.push_back("train.cuda_graphs=true");
    Trainer graphed(testing::tiny_config(data, dir / "graphed", sets), testing::quiet_options());
    const TrainResult graphed_result = graphed.run();
    EXPECT_TRUE(graphed.cuda_graph_captured()) << variant;
    ASSERT_TRUE(eager_result.final_val_loss && graphed_result.final_val_loss) << variant;
    EXPECT_NEAR(*graphed_result.final_val_loss, *eager_result.final_val_loss,
                1e-2 * *eager_result.final_val_loss)
        << variant;
    if (variant == "cca_moe") continue;
    const auto expected = model_tensors(eager.model());
    const auto actual = model_tensors(graphed.model());
    ASSERT_EQ(expected.size(), actual.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const double diff = (actual[i].tensor - expected[i].tensor).abs().max().item<double>();
      EXPECT_LT(diff, 1e-3) << variant << " " << expected[i].name;
    }
  }
}

// Half the steps on one device, the rest on the other, in fp32: the weights end close to a run
// that stayed on the CPU (devices differ in rounding, not in what was restored).
void check_cross_device_resume(const std::string& data, const ScratchDir& dir,
                               const std::string& first, const std::string& second) {
  const auto config = [&](const std::string& run, const std::string& device) {
    return testing::tiny_config(data, dir / run,
                                {"train.device=" + device, "train.precision=fp32"});
  };
  Trainer reference(config("reference", "cpu"), testing::quiet_options());
  reference.run();
  Trainer(config("moved", first), testing::quiet_options("", 4)).run();
  Trainer resumed(config("moved", second), testing::quiet_options("auto"));
  EXPECT_EQ(resumed.progress().step, 4);
  resumed.run();
  const auto expected = model_tensors(reference.model());
  const auto actual = model_tensors(resumed.model());
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const at::Tensor a = actual[i].tensor.detach().cpu(), e = expected[i].tensor.detach();
    EXPECT_LT((a - e).abs().max().item<double>(), 2e-3) << expected[i].name;
  }
}

TEST(TrainerCrossDevice, CpuCheckpointResumesOnTheGpuAndBack) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: cross-device resume skipped";
  ScratchDir dir;
  const std::string data = testing::write_tiny_dataset(dir / "data");
  check_cross_device_resume(data, dir, "cpu", "cuda");
  ScratchDir other;
  check_cross_device_resume(testing::write_tiny_dataset(other / "data"), other, "cuda", "cpu");
}

}  // namespace
}  // namespace cca
