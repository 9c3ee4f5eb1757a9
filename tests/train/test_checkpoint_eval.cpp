// `cca-train eval` in process (lib/train/checkpoint_eval.h): a tiny run's checkpoints evaluated
// afterwards reproduce the val_loss training recorded, the run folder is left byte for byte as it
// was, and bad requests fail with messages naming what is wrong. The CUDA test compares a bf16 GPU
// evaluation with the CPU reference path (skipped without a GPU).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "ops/device.h"
#include "testing/tolerance.h"
#include "train/checkpoint_eval.h"
#include "train/train_test_util.h"
#include "util/json.h"

namespace cca {
namespace {

using testing::ScratchDir;

// Every file under `dir` and its bytes.
std::map<std::string, std::string> folder_bytes(const std::string& dir) {
  std::vector<std::string> paths;
  files::walk_files(dir, paths);
  std::map<std::string, std::string> bytes;
  for (const std::string& path : paths) bytes[path] = files::read_file(path);
  return bytes;
}

std::string error_of(const CheckpointEvalRequest& request) {
  return testing::error_of([&] { evaluate_checkpoint(request); });
}

class CheckpointEvalTest : public ::testing::Test {
 protected:
  // 8 steps, eval and checkpoint at steps 4 and 8.
  double train(const std::vector<std::string>& overrides = {}) {
    Trainer trainer(testing::tiny_config(data, run, overrides), testing::quiet_options());
    const TrainResult result = trainer.run();
    EXPECT_TRUE(result.final_val_loss.has_value());
    return result.final_val_loss.value_or(0);
  }
  CheckpointEvalRequest cpu_request(const std::string& checkpoint = "latest") const {
    CheckpointEvalRequest request;
    request.run_dir = run;
    request.checkpoint = checkpoint;
    request.device = "cpu";
    request.precision = "fp32";
    return request;
  }

  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  std::string run = dir / "run";
};

TEST_F(CheckpointEvalTest, ReproducesTheRecordedValLossAndWritesNothing) {
  const double final_val_loss = train();
  const std::map<std::string, std::string> before = folder_bytes(run);
  for (const char* which : {"latest", "8", "4"}) {
    const CheckpointEvalResult result = evaluate_checkpoint(cpu_request(which));
    EXPECT_EQ(result.step, which == std::string("4") ? 4 : 8) << which;
    ASSERT_TRUE(result.recorded_val_loss.has_value()) << which;
    EXPECT_NEAR(result.val_loss, *result.recorded_val_loss, 1e-6) << which;
    EXPECT_EQ(result.val_tokens, 1024) << which;
    EXPECT_EQ(result.precision, "fp32");
    if (result.step == 8) {
      EXPECT_NEAR(result.val_loss, final_val_loss, 1e-6);
    }
    const std::string report = render_checkpoint_eval(result);
    EXPECT_NE(report.find("recorded val loss at step"), std::string::npos) << report;
  }
  const std::string json = dir / "out/eval.json";
  const CheckpointEvalResult latest = evaluate_checkpoint(cpu_request());
  write_checkpoint_eval_json(latest, json, run);
  const Json parsed = parse_json(files::read_file(json), json);
  EXPECT_EQ(parsed.at("step", "eval").as_int("step"), 8);
  EXPECT_NEAR(parsed.at("difference", "eval").as_double("difference"), 0.0, 1e-6);
  const Json& only_set = parsed.at("sets", "eval").as_array("sets").at(0);
  EXPECT_NEAR(only_set.at("difference", "sets[0]").as_double("difference"), 0.0, 1e-6);
  EXPECT_EQ(folder_bytes(run), before) << "eval must leave the run folder byte-identical";
}

TEST_F(CheckpointEvalTest, ValTokensAndOverridesChangeWhatIsEvaluated) {
  train();
  CheckpointEvalRequest request = cpu_request();
  request.val_tokens = 512;
  const CheckpointEvalResult fewer = evaluate_checkpoint(request);
  EXPECT_EQ(fewer.val_tokens, 512);
  const CheckpointEvalResult all = evaluate_checkpoint(cpu_request());
  EXPECT_NE(fewer.val_loss, all.val_loss) << "another token count must give another mean";
  request.val_tokens.reset();
  request.overrides = {"train.micro_batch_size=2"};  // other batches, same sequences
  EXPECT_NEAR(evaluate_checkpoint(request).val_loss, all.val_loss, 1e-5);
}

TEST_F(CheckpointEvalTest, NamedValidationSetsEachMatchTheirRecord) {
  const std::string code = testing::write_tiny_dataset(dir / "code", 101);
  train(testing::tiny_mixture_overrides(data, code));
  const CheckpointEvalResult result = evaluate_checkpoint(cpu_request());
  ASSERT_EQ(result.sets.size(), 2u);
  EXPECT_EQ(result.sets[0].name, "web");
  EXPECT_EQ(result.sets[1].name, "code");
  for (const EvalSetMetrics& set : result.sets) {
    ASSERT_EQ(result.recorded_set_losses.count(set.name), 1u) << set.name;
    EXPECT_NEAR(set.val_loss, result.recorded_set_losses.at(set.name), 1e-6) << set.name;
  }
  ASSERT_TRUE(result.recorded_val_loss.has_value());
  EXPECT_NEAR(result.val_loss, *result.recorded_val_loss, 1e-6);
  const std::string report = render_checkpoint_eval(result);
  EXPECT_NE(report.find("set web"), std::string::npos) << report;
}

TEST_F(CheckpointEvalTest, DocumentMaskingIsAppliedAsInTraining) {
  testing::write_tiny_manifest(data, "bos", 3, 5);
  train({"data.document_masking=true", "data.reset_positions=true"});
  const CheckpointEvalResult masked = evaluate_checkpoint(cpu_request());
  ASSERT_TRUE(masked.recorded_val_loss.has_value());
  EXPECT_NEAR(masked.val_loss, *masked.recorded_val_loss, 1e-6);
  CheckpointEvalRequest unmasked = cpu_request();
  unmasked.overrides = {"data.document_masking=false", "data.reset_positions=false"};
  EXPECT_GT(std::abs(evaluate_checkpoint(unmasked).val_loss - masked.val_loss), 1e-5)
      << "without the masks the same weights see other attention, so another loss";
}

TEST_F(CheckpointEvalTest, BadRequestsNameWhatIsWrong) {
  CheckpointEvalRequest missing = cpu_request();
  missing.run_dir = dir / "nowhere";
  EXPECT_NE(error_of(missing).find("does not exist"), std::string::npos) << error_of(missing);

  train();
  const std::string no_step = error_of(cpu_request("5"));
  EXPECT_NE(no_step.find("no complete checkpoint of step 5"), std::string::npos) << no_step;
  EXPECT_NE(no_step.find("steps 4, 8"), std::string::npos) << no_step;
  EXPECT_NE(error_of(cpu_request("five")).find("expected a step number"), std::string::npos);

  EXPECT_THROW(check_eval_json_destination(run + "/eval.json", run), Error);
  EXPECT_NO_THROW(check_eval_json_destination(dir / "elsewhere/eval.json", run));

  if (!cuda_available()) {
    CheckpointEvalRequest cuda = cpu_request();
    cuda.device = "cuda";
    EXPECT_NE(error_of(cuda).find("--device cuda"), std::string::npos) << error_of(cuda);
  }

  const std::string weights = run + "/checkpoints/step_00000008/model.safetensors";
  std::string bytes = files::read_file(weights);
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(weights, std::ios::binary | std::ios::trunc) << bytes;
  const std::string corrupt = error_of(cpu_request("8"));
  EXPECT_NE(corrupt.find("corrupt"), std::string::npos) << corrupt;
  EXPECT_NE(corrupt.find("model.safetensors"), std::string::npos) << corrupt;
  EXPECT_NO_THROW(evaluate_checkpoint(cpu_request("4")));
}

// The check of docs/ablations.md item 6: a GPU-trained checkpoint evaluated on the GPU in bf16
// and on the CPU reference path in fp32 agree to bf16 rounding.
TEST_F(CheckpointEvalTest, CudaBf16AgreesWithTheCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU eval test skipped";
  train({"train.device=cuda", "train.precision=bf16"});
  CheckpointEvalRequest gpu = cpu_request();
  gpu.device = "cuda";
  gpu.precision = "bf16";
  const CheckpointEvalResult on_gpu = evaluate_checkpoint(gpu);
  const CheckpointEvalResult on_cpu = evaluate_checkpoint(cpu_request());
  ASSERT_TRUE(on_gpu.recorded_val_loss.has_value());
  EXPECT_NEAR(on_gpu.val_loss, *on_gpu.recorded_val_loss, 1e-4)
      << "the GPU evaluation repeats training's own (same kernels, same precision)";
  EXPECT_NEAR(on_cpu.val_loss, on_gpu.val_loss,
              testing::rounding_tolerance(at::kBFloat16) * (on_cpu.val_loss + 1.0));
}

}  // namespace
}  // namespace cca
