// Running cca-train as separate processes for the data-parallel tests: spawn with extra
// environment (a hand-made torchrun), wait with a deadline, read metrics and checkpoints.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/safetensors.h"
#include "testing/process.h"
#include "util/files.h"
#include "util/json.h"

extern char** environ;

namespace cca::testing {

// torchrun's variables for rank `rank` of `world` on this machine.
inline std::vector<std::string> rank_env(int rank, int world, int port) {
  return {"RANK=" + std::to_string(rank),
          "WORLD_SIZE=" + std::to_string(world),
          "LOCAL_RANK=" + std::to_string(rank),
          "LOCAL_WORLD_SIZE=" + std::to_string(world),
          "MASTER_ADDR=127.0.0.1",
          "MASTER_PORT=" + std::to_string(port)};
}

// Every F32 tensor of a safetensors file, as plain floats.
inline std::map<std::string, std::vector<float>> read_f32_tensors(const std::string& path) {
  const safetensors::File file = safetensors::File::open(path);
  std::map<std::string, std::vector<float>> out;
  for (const safetensors::TensorInfo& info : file.tensors()) {
    if (info.dtype != "F32") continue;
    std::vector<float> values(info.bytes() / sizeof(float));
    if (!values.empty()) std::memcpy(values.data(), file.data(info), info.bytes());
    out.emplace(info.name, std::move(values));
  }
  return out;
}

}  // namespace cca::testing
