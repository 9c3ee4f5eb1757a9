// Reads a run's YAML (with includes and --set overrides) into a validated Config.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/error.h"

namespace cca {

struct LoadedConfig {
  Config config;
  std::map<std::string, Origin> origins;  // keys set explicitly, and where
  std::vector<std::string> files;         // every file read, in the order opened
  // Settings that are legal but likely not meant (train.steps 0, a warmup as long as the run):
  // logged at start (load_run_config), never refused. Same form as the errors.
  std::vector<Diagnostic> warnings;
};

struct LoadOptions {
  std::vector<std::string> overrides;  // "key.path=value", applied after the files
  int world_size = 1;                  // for batch-consistency checks
};

// Throws ConfigError listing every problem (syntax, unknown keys, types, ranges, cross-field
// rules) at once; the cross-field warnings go to LoadedConfig::warnings. An empty `path` starts
// from the defaults.
LoadedConfig load_config(const std::string& path, const LoadOptions& options = {});
// The same from YAML text; `name` stands in for the file name in messages, and includes resolve
// relative to the current directory.
LoadedConfig load_config_text(const std::string& yaml, const std::string& name,
                              const LoadOptions& options = {});

// The resolved config as YAML; explicitly set values carry a comment naming where they came from.
std::string render_config_yaml(const LoadedConfig& loaded, bool with_origins);
// Every key with type, default, allowed values and help, grouped by section (--help-config).
std::string render_config_help();

}  // namespace cca
