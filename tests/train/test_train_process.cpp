// cca-train as separate processes: exact resume across processes, SIGKILL while a checkpoint is
// being committed, SIGTERM mid-run. Runs the built binary on the tiny CPU config.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "checkpoint/checkpoint_store.h"
#include "testing/process.h"
#include "train/train_test_util.h"
#include "util/files.h"

namespace cca {
namespace {

using testing::ScratchDir;

using testing::spawn_trainer;
using testing::wait_for;
using testing::wait_until;

class TrainProcessTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  std::string log = dir / "log.txt";

  std::string config_file(const std::string& run) {
    const std::string path = dir / (run + ".yaml");
    std::ofstream(path) << testing::tiny_config_yaml(data, dir / run);
    return path;
  }
  int train(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    return wait_for(spawn_trainer(args, log, env)).value_or(-1);
  }
  std::string log_text() { return files::read_file(log); }
  std::string file(const std::string& run, int64_t step, const std::string& name) {
    return files::read_file(files::join(files::join(dir / run, "checkpoints"),
                                        checkpoint_store::step_folder_name(step) + "/" + name));
  }
};

TEST_F(TrainProcessTest, ResumeInANewProcessGivesBitIdenticalWeights) {
  ASSERT_EQ(train({"--config", config_file("whole")}), 0) << log_text();
  ASSERT_EQ(train({"--config", config_file("split"), "--stop-at-step", "4"}), 0) << log_text();
  ASSERT_EQ(train({"--config", config_file("split"), "--resume", "auto"}), 0) << log_text();
  EXPECT_TRUE(file("whole", 8, "model.safetensors") == file("split", 8, "model.safetensors"));
  EXPECT_TRUE(file("whole", 8, "optimizer.safetensors") ==
              file("split", 8, "optimizer.safetensors"));
}

TEST_F(TrainProcessTest, KillDuringCheckpointCommitKeepsThePreviousOne) {
  const std::string config = config_file("run");
  ASSERT_EQ(train({"--config", config, "--stop-at-step", "4"}), 0) << log_text();
  const std::string root = dir / "run/checkpoints";
  const pid_t pid = spawn_trainer({"--config", config, "--resume", "auto"}, log,
                                  {"CCA_TEST_CHECKPOINT_PAUSE_MS=60000"});
  // The pause holds the step-8 commit after its files (DONE included) are written to staging.
  const bool paused = wait_until(
      [&] {
        for (const std::string& name : files::list_directory(root)) {
          if (name.rfind(".staging-step_00000008", 0) == 0 &&
              files::exists(files::join(files::join(root, name), "DONE")))
            return true;
        }
        return false;
      },
      60);
  ASSERT_TRUE(paused) << log_text();
  kill(pid, SIGKILL);
  EXPECT_EQ(wait_for(pid), 128 + SIGKILL);
  const auto newest = checkpoint_store::newest_complete(root, nullptr);
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->step, 4);

  ASSERT_EQ(train({"--config", config, "--resume", "auto"}), 0) << log_text();
  EXPECT_NE(log_text().find("resume      " + root + "/step_00000004"), std::string::npos)
      << log_text();
  EXPECT_EQ(checkpoint_store::newest_complete(root, nullptr)->step, 8);
}

TEST_F(TrainProcessTest, SigtermFinishesTheStepCheckpointsAndExitsZero) {
  const pid_t pid =
      spawn_trainer({"--config", config_file("run"), "--set", "train.steps=100000", "--set",
                     "checkpoint.every=100000", "--set", "train.eval_every=0"},
                    log);
  const std::string metrics = dir / "run/metrics.jsonl";
  const auto reached_step_3 = [&] {
    return files::exists(metrics) &&
           files::read_file(metrics).find("\"step\":3,") != std::string::npos;
  };
  bool exited = false;
  wait_until([&] { return reached_step_3() || (exited = waitpid(pid, nullptr, WNOHANG) == pid); },
             60);
  ASSERT_FALSE(exited) << log_text();
  ASSERT_TRUE(reached_step_3()) << log_text();
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_for(pid), 0) << log_text();
  const auto newest = checkpoint_store::newest_complete(dir / "run/checkpoints", nullptr);
  ASSERT_TRUE(newest.has_value()) << log_text();
  EXPECT_GE(newest->step, 3);
  EXPECT_NE(log_text().find("stopped by signal 15 at step " + std::to_string(newest->step)),
            std::string::npos)
      << log_text();
}

}  // namespace
}  // namespace cca
