// `cca-bench attention`: per-layer latency of every attention variant at one width, over sequence
// lengths with batch × sequence held constant, plus the CCA prologue fused vs plain LibTorch ops
// and the SDPA backend chosen for each core by measurement. Ratios come from one run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/json.h"

namespace cca::bench {

struct AttentionBenchOptions {
  int64_t model_dim = 2048;
  int64_t head_dim = 128;
  int64_t tokens = 32768;  // B·S for every sequence length
  std::vector<int64_t> seq_lens = {1024, 2048, 4096, 8192, 16384, 32768};
  // mha, gqa4, gqa8, mla, cca4, ccgqa2x8, cca8 (labels as in the issue)
  std::vector<std::string> variants = {"mha", "gqa4", "gqa8", "mla", "cca4", "ccgqa2x8", "cca8"};
  std::string dtype = "bf16";
  int warmup = 3;
  int iters = 10;
  bool prologue = true;  // also time the fused vs plain-ops prologue of the CCA variants
  // Document masking: when non-empty, every layer is timed again over packed documents whose
  // lengths are drawn uniformly (seeded) from these, each row's last one cut at S, and the
  // overhead over the unmasked layer is reported.
  std::vector<int64_t> document_lengths;
  std::string device = "cuda";  // "cuda", or "cpu" (layers only: math core, no prologue)
};

// Runs everything on `device` (the current CUDA device by default); prints the console tables as
// it goes and returns the JSON document. Throws cca::Error for a CUDA run without a GPU.
Json run_attention_bench(const AttentionBenchOptions& options);

}  // namespace cca::bench
