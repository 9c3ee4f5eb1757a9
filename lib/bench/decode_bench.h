// `cca-bench decode`: per attention variant, the decode cache's bytes per token (measured from
// the cache's tensors and compared with the spec's formula), prefill latency, and single-token
// decode throughput over context lengths and batch sizes. One layer at width E, so the ratios
// between variants are those of a whole model's attention.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/variants.h"
#include "util/json.h"

namespace cca::bench {

struct DecodeBenchOptions {
  int64_t model_dim = 2048;
  int64_t head_dim = 128;
  std::vector<int64_t> contexts = {1024, 4096, 16384, 32768};
  std::vector<int64_t> batches = {1, 8, 64};
  std::vector<std::string> variants = kBenchVariants;
  std::string dtype = "bf16";
  int steps = 32;             // decode steps per timed window (five windows; the median counts)
  double max_cache_gib = 40;  // skip (batch, context) points whose cache would exceed this
};

// Runs on the first CUDA device (or the CPU when none, for smoke tests with small sizes); prints
// a console table and returns the JSON document.
Json run_decode_bench(const DecodeBenchOptions& options);

}  // namespace cca::bench
