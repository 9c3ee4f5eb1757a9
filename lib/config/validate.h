// Cross-field rules: what no single key's range can express.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/error.h"

namespace cca {

// Appends one diagnostic per broken rule, located at the most relevant key that was set, and
// (when `warnings` is given) one per setting that is legal but likely a mistake, located the same
// way: train.steps = 0, schedule.warmup_steps >= train.steps.
void validate_config(const Config& config, const std::map<std::string, Origin>& origins,
                     int world_size, std::vector<Diagnostic>& diagnostics,
                     std::vector<Diagnostic>* warnings = nullptr);

}  // namespace cca
