// The attention variants the benchmarks compare, as configs at one width: mha, gqa4, gqa8, mla,
// cca4, ccgqa2x8, cca8 (ZAYA1-style CCA: k0 = k1 = 2, q-k mean, value shift, RoPE on half of
// each head; MLA per spec §8.2).
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace cca::bench {

inline const std::vector<std::string> kBenchVariants = {"mha",  "gqa4",     "gqa8", "mla",
                                                        "cca4", "ccgqa2x8", "cca8"};

// Whether the benchmark variant `name` is CCA or CCGQA (has a prologue to time apart).
bool has_cca_prologue(const std::string& name);
// The variant `name` at model width E and head dim d; throws cca::Error naming the choices.
Config variant_config(const std::string& name, int64_t E, int64_t d);
// --dtype of the benchmarks: bf16 | fp16 | fp32; throws cca::Error naming the choices.
c10::ScalarType parse_bench_dtype(const std::string& name);

}  // namespace cca::bench
