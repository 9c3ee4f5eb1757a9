// Cross-field rules: what no single key's range can express.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/error.h"

namespace cca {

// Appends one diagnostic per broken rule, located at the most relevant key that was set.
void validate_config(const Config& config, const std::map<std::string, Origin>& origins,
                     int world_size, std::vector<Diagnostic>& diagnostics);

}  // namespace cca
