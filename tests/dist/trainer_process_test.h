// The fixture of the tests that run cca-train as separate processes (data and context
// parallelism on the CPU): a scratch folder holding the tiny dataset, configs written into it,
// runs spawned with a deadline, and the paths and weights of the runs' checkpoints.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_store.h"
#include "data/loader.h"
#include "dist/dist_test_util.h"
#include "train/train_test_util.h"
#include "util/files.h"
#include "util/json.h"

namespace cca::testing {

// Where each step's checkpoint left the data: (epoch, shard, windows of that shard read by all
// ranks together), and the loader world size of the run that wrote it (its ranks, or its
// data-parallel replicas under context parallelism).
struct DataPosition {
  int64_t epoch = 0, shard = 0, read = 0, world_size = 0;
};
inline std::map<int64_t, DataPosition> data_positions(const std::string& run_dir) {
  std::map<int64_t, DataPosition> out;
  const std::string root = files::join(run_dir, "checkpoints");
  for (const auto& entry : checkpoint_store::list(root)) {
    if (!entry.complete) continue;
    const std::string manifest = files::join(entry.path, "manifest.json");
    const Json json = parse_json(files::read_file(manifest), manifest);
    const data::LoaderState state =
        data::LoaderState::parse(json.at("loader_state", manifest).as_string("loader_state"));
    out[entry.step] = {state.epoch, state.shard, state.shard_windows_read(), state.world_size};
  }
  return out;
}

class TrainerProcessTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string data = write_tiny_dataset(dir / "data");
  std::string log = dir / "log.txt";

  // The tiny model's config for run folder `run` (plus `extra` YAML); returns its path.
  std::string config_file(const std::string& run, const std::string& extra = "") {
    const std::string path = dir / (run + ".yaml");
    std::ofstream(path) << tiny_config_yaml(data, dir / run, extra);
    return path;
  }
  // Runs cca-train (with `args`) to completion within the time limit; returns its exit code.
  int train(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    const std::optional<int> code = wait_for(spawn_trainer(args, log, env), 300);
    EXPECT_TRUE(code.has_value()) << "cca-train ran past 300 s\n" << log_text();
    return code.value_or(-1);
  }
  std::string log_text() { return files::read_file(log); }
  std::string file(const std::string& run, int64_t step, const std::string& name) {
    return files::join(files::join(dir / run, "checkpoints"),
                       checkpoint_store::step_folder_name(step) + "/" + name);
  }
  // Whether two runs wrote byte-identical weights, optimizer state and generators at `step`
  // (one failure per differing file, naming it and `context`).
  void expect_same_checkpoint(const std::string& run_a, const std::string& run_b, int64_t step,
                              const std::string& context) {
    for (const char* name : {"model.safetensors", "optimizer.safetensors", "rng.safetensors"}) {
      EXPECT_TRUE(files::read_file(file(run_a, step, name)) ==
                  files::read_file(file(run_b, step, name)))
          << name << " differs " << context;
    }
  }
  // The largest absolute difference between two runs' weights at `step` (infinite when the
  // tensors' names or sizes differ).
  double worst_weight_difference(const std::string& run_a, const std::string& run_b, int64_t step) {
    const auto a = read_f32_tensors(file(run_a, step, "model.safetensors"));
    const auto b = read_f32_tensors(file(run_b, step, "model.safetensors"));
    EXPECT_EQ(a.size(), b.size());
    double worst = a.size() == b.size() ? 0 : INFINITY;
    for (const auto& [name, values] : a) {
      const auto other = b.find(name);
      if (other == b.end() || other->second.size() != values.size()) {
        ADD_FAILURE() << name << " differs in name or size";
        return INFINITY;
      }
      for (size_t i = 0; i < values.size(); ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(values[i]) - other->second[i]));
      }
    }
    return worst;
  }
};

}  // namespace cca::testing
