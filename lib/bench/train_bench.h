// `cca-bench train`: a run config's training step measured in one process — time to first step,
// tokens/s and MFU over unobserved steps, the step split into phases (data, forward, backward,
// communication, optimizer) over observed steps, peak memory, and on CUDA a kernel profile
// saying where the GPU time goes. The run writes nothing but a scratch folder, removed at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "app/startup.h"
#include "util/json.h"

namespace cca::bench {

struct TrainBenchOptions {
  int64_t steps = 20;         // timed (unobserved) steps
  int64_t warmup = 3;         // steps after the first before timing
  int64_t phase_steps = 5;    // steps with the phase clock
  int64_t profile_steps = 3;  // steps under the kernel profiler (CUDA; 0 = none)
  std::string trace_path;     // Chrome trace of the profiled steps (the first config's)
  // Further configs run after the first in the same process, with the same overrides, each
  // reported with its tokens/s and ms/step as a ratio to the first's.
  std::vector<std::string> compare;
  // Every config runs twice, data.document_masking off then on, the second reported beside the
  // first (the documents are the config's own data's).
  bool document_masking = false;
  std::chrono::steady_clock::time_point process_start = std::chrono::steady_clock::now();
};

// The config is used as given except: run.dir (a scratch folder), no evaluation, checkpoints,
// validation data or progress bar, and train.steps raised to cover the benchmark. With
// options.compare the JSON is {"runs": [...], "comparison": [...]}, one run object each.
Json run_train_bench(const ConfigRequest& request, const TrainBenchOptions& options);

}  // namespace cca::bench
