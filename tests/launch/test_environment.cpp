// Reading the launcher's environment (torchrun, Slurm, none) and the local launcher's argv
// handling: every error names the variable and its value.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "launch/environment.h"
#include "launch/launcher.h"
#include "util/error.h"

namespace cca::dist {
namespace {

using Env = std::map<std::string, std::string>;

WorldEnvironment read(const Env& env) {
  return read_world_environment([&](const char* name) -> const char* {
    const auto found = env.find(name);
    return found == env.end() ? nullptr : found->second.c_str();
  });
}

std::string error_of(const Env& env) {
  try {
    read(env);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const Env kTorchrun = {{"RANK", "3"},
                       {"WORLD_SIZE", "8"},
                       {"LOCAL_RANK", "1"},
                       {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "10.1.2.3"},
                       {"MASTER_PORT", "29500"}};

Env with(Env env, const std::string& name, const std::string& value) {
  env[name] = value;
  return env;
}

Env without(Env env, const std::string& name) {
  env.erase(name);
  return env;
}

TEST(WorldEnvironment, NoLauncherVariablesIsASingleProcess) {
  const WorldEnvironment w = read({});
  EXPECT_FALSE(w.distributed);
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.world_size, 1);
  EXPECT_EQ(w.describe(), "single process");
}

TEST(WorldEnvironment, TorchrunVariables) {
  const WorldEnvironment w = read(kTorchrun);
  EXPECT_TRUE(w.distributed);
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_world_size, 2);
  EXPECT_EQ(w.master_addr, "10.1.2.3");
  EXPECT_EQ(w.master_port, 29500);
  EXPECT_NE(w.describe().find("rank 3/8 (local 1/2, node 1)"), std::string::npos) << w.describe();
}

TEST(WorldEnvironment, TorchrunWinsOverSlurmInsideAnAllocation) {
  Env env = kTorchrun;
  env["SLURM_PROCID"] = "0";
  env["SLURM_NTASKS"] = "2";
  EXPECT_EQ(read(env).rank, 3);
}

TEST(WorldEnvironment, WithoutLocalValuesOneNodeIsAssumed) {
  const WorldEnvironment w = read(without(without(kTorchrun, "LOCAL_RANK"), "LOCAL_WORLD_SIZE"));
  EXPECT_EQ(w.local_rank, 3);
  EXPECT_EQ(w.local_world_size, 8);
}

TEST(WorldEnvironment, ErrorsNameTheVariable) {
  EXPECT_NE(error_of(without(kTorchrun, "WORLD_SIZE")).find("WORLD_SIZE is not set"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "RANK", "8")).find("RANK=8 is not below WORLD_SIZE=8"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "RANK", "two")).find("RANK='two' is not a non-negative"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "LOCAL_RANK", "2"))
                .find("LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "LOCAL_WORLD_SIZE", "9"))
                .find("LOCAL_WORLD_SIZE=9 is larger than WORLD_SIZE=8"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "WORLD_SIZE", "0")).find("WORLD_SIZE=0"), std::string::npos);
  EXPECT_NE(error_of(without(kTorchrun, "MASTER_ADDR")).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(error_of(without(kTorchrun, "MASTER_PORT")).find("MASTER_PORT is not set"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "MASTER_PORT", "70000")).find("MASTER_PORT=70000"),
            std::string::npos);
}

const Env kSlurm = {{"SLURM_PROCID", "5"},      {"SLURM_NTASKS", "8"},
                    {"SLURM_LOCALID", "1"},     {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                    {"MASTER_ADDR", "node001"}, {"MASTER_PORT", "29501"}};

TEST(WorldEnvironment, SlurmVariables) {
  const WorldEnvironment w = read(kSlurm);
  EXPECT_TRUE(w.distributed);
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_world_size, 4);
  EXPECT_NE(w.describe().find("node 1"), std::string::npos) << w.describe();
}

TEST(WorldEnvironment, ASingleSlurmTaskIsNotAJob) {
  EXPECT_FALSE(read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).distributed);
}

TEST(WorldEnvironment, SlurmWithoutMasterAddrSaysHowToSetIt) {
  const std::string message = error_of(without(kSlurm, "MASTER_ADDR"));
  EXPECT_NE(message.find("MASTER_ADDR is not set"), std::string::npos) << message;
  EXPECT_NE(message.find("scontrol show hostnames"), std::string::npos) << message;
  EXPECT_NE(error_of(without(kSlurm, "SLURM_LOCALID")).find("SLURM_LOCALID is not set"),
            std::string::npos);
  EXPECT_NE(error_of(with(kSlurm, "SLURM_PROCID", "8")).find("SLURM_PROCID=8 is not below"),
            std::string::npos);
}

TEST(Launcher, ArgumentsWithoutNprocKeepEverythingElseInOrder) {
  const char* argv[] = {"cca-train", "--config", "a.yaml", "--nproc-per-node",
                        "2",         "--set",    "x=1",    "--nproc-per-node=4",
                        "--resume",  "auto"};
  EXPECT_EQ(arguments_without_nproc(10, argv),
            (std::vector<std::string>{"--config", "a.yaml", "--set", "x=1", "--resume", "auto"}));
}

TEST(Launcher, FreePortIsAUsablePortNumber) {
  const int port = pick_free_local_port();
  EXPECT_GT(port, 0);
  EXPECT_LE(port, 65535);
}

}  // namespace
}  // namespace cca::dist
