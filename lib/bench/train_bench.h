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
  // Sequence lengths to sweep (empty: the config's own): one run per length, shortest first,
  // each with tokens/s and peak memory or reported as out of memory (longer ones are then
  // skipped); the JSON names the longest that ran. Not combined with `compare`.
  std::vector<int64_t> seq_lens;
  // With seq_lens: micro_batch_size = max(1, this / seq_len), tokens per micro-batch held about
  // constant; 0 keeps the config's micro_batch_size.
  int64_t micro_batch_tokens = 0;
  std::chrono::steady_clock::time_point process_start = std::chrono::steady_clock::now();
};

// The config is used as given except: run.dir (a scratch folder), no evaluation, checkpoints,
// validation data or progress bar, and train.steps raised to cover the benchmark. With
// options.compare the JSON is {"runs": [...], "comparison": [...]}, one run object each; with
// options.seq_lens it is {"sweep": [...], "longest_seq_len": N}.
Json run_train_bench(const ConfigRequest& request, const TrainBenchOptions& options);

}  // namespace cca::bench
