// Where a training step's GPU time goes: runs a piece of work under LibTorch's Kineto profiler
// and sums the device kernels by name and by category (GEMM, attention core, CCA kernels,
// normalisation, cross-entropy, elementwise, reductions, optimizer, copies, communication).
// The gap between the wall time and the kernels' busy time is what the GPU spent waiting on the
// host (launch overhead, syncs, data).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/json.h"

namespace cca::bench {

struct KernelTotal {
  std::string name;
  std::string category;
  double ms = 0;      // per repetition
  int64_t calls = 0;  // per repetition (rounded)
};

struct KernelProfile {
  double wall_ms = 0;                   // per repetition
  double busy_ms = 0;                   // kernels + copies, per repetition
  std::vector<KernelTotal> categories;  // by time, largest first
  std::vector<KernelTotal> kernels;     // the top ones by time
};

// The category a kernel name belongs to ("gemm", "attention", ...).
std::string kernel_category(const std::string& kernel_name);

// Runs `body` `repetitions` times under the profiler (CUDA devices only) and returns per-
// repetition figures; with trace_path set, also writes a Chrome trace there.
KernelProfile profile_kernels(const std::function<void()>& body, int repetitions,
                              const std::string& trace_path = "", size_t top = 25);

Json profile_json(const KernelProfile& profile);
// A table for the console: categories, then the top kernels.
std::string render_profile(const KernelProfile& profile);

}  // namespace cca::bench
