// Converting one YAML value to a key's type, with the range and choice checks.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "config/schema.h"

namespace cca {

// Stores `value` into the key's field. Returns "" on success, else what is wrong with the value
// (without the key path, which the caller adds).
std::string assign_value(const KeySpec& key, const YAML::Node& value, Config& config);

}  // namespace cca
