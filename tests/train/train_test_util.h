// Trainer tests' helpers: the tiny dataset and config (testing/tiny_run.h) loaded in process, and
// quiet trainer options.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "config/loader.h"
#include "testing/error_of.h"
#include "testing/scratch_dir.h"
#include "testing/tiny_run.h"
#include "train/tensor_io.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"

namespace cca::testing {

inline LoadedConfig tiny_config(const std::string& data_dir, const std::string& run_dir,
                                const std::vector<std::string>& overrides = {}) {
  LoadOptions options;
  options.overrides = overrides;
  return load_config_text(tiny_config_yaml(data_dir, run_dir), "tiny.yaml", options);
}

// Trainer options for tests: no signal handlers (the test process owns them).
inline TrainOptions quiet_options(std::string resume = "",
                                  std::optional<int64_t> stop_at = std::nullopt) {
  TrainOptions options;
  options.resume = std::move(resume);
  options.stop_at_step = stop_at;
  options.handle_signals = false;
  return options;
}

// A copy of the trainer's weights by name, to compare runs bit for bit.
inline std::map<std::string, at::Tensor> snapshot(Trainer& trainer) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, tensor] : model_tensors(trainer.model()))
    out[name] = tensor.detach().clone();
  return out;
}

}  // namespace cca::testing
