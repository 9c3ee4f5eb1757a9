// `cca-bench ddp`: what the bucketed gradient all-reduce costs a training micro-batch, and how
// much of it the overlap with backward hides. One forward + backward of the config's model on
// one micro-batch of random tokens, timed three ways on the same process group:
//   no_communication  plain forward + backward (the floor);
//   overlapped        buckets started from the gradient hooks during backward, then waited for;
//   after_backward    the same buckets started only once backward is done (no overlap).
// hidden_fraction = (after_backward − overlapped) / (after_backward − no_communication).
// Under torchrun / --nproc-per-node it measures the real job; alone it makes a one-rank group
// (NCCL on CUDA, where the all-reduce is a device-local copy: the overlap machinery's cost).
#pragma once

#include "config/loader.h"
#include "util/json.h"

namespace cca::dist {

struct OverlapBenchOptions {
  int warmup = 3;
  int iters = 10;
};

// Prints one line per mode (rank 0) and returns the JSON document.
Json run_overlap_bench(const LoadedConfig& loaded, const OverlapBenchOptions& options);

}  // namespace cca::dist
