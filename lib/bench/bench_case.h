// One benchmark case that may not fit the device (a long sequence, a wide model): measured with
// its peak memory, or reported as out of memory in the JSON instead of ending the benchmark.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>

#include "util/json.h"

namespace cca::bench {

// Runs `body` (which returns the case's measured fields) after starting a new memory peak on
// `device`, and returns its fields plus "status": "ok" and "peak_memory_gib". An out-of-memory
// error becomes "status": "out_of_memory" and a LibTorch or cca error "status": "error", each
// with "error" (the message's first line); the allocator's cached blocks are released so that
// the next case starts clean. `identity` (variant, seq, batch, ...) heads every outcome.
Json::Object run_fallible_case(const at::Device& device, const Json::Object& identity,
                               const std::function<Json::Object()>& body);

// Whether a case's outcome is "status": "ok".
bool case_succeeded(const Json::Object& outcome);

}  // namespace cca::bench
