// Command-line pieces the apps share. CLI11 stays in apps/ (it is slow to compile and only mains
// need it).
#pragma once

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "app/startup.h"
#include "config/loader.h"

namespace cca::cli {

struct ConfigFlags {
  ConfigRequest request;
  bool dry_run = false;
  bool print_config = false;
  bool help_config = false;
};

// --config, --set, --dry-run, --print-config, --help-config, --log-level.
inline void add_config_flags(CLI::App& app, ConfigFlags& flags) {
  app.add_option("-c,--config", flags.request.path, "Run config (YAML)")->check(CLI::ExistingFile);
  app.add_option("--set", flags.request.overrides,
                 "Override a key: --set train.steps=100 (repeatable, validated like the file)")
      ->take_all();
  app.add_flag("--dry-run", flags.dry_run,
               "Validate the config, print the derived values and exit");
  app.add_flag("--print-config", flags.print_config,
               "Print the resolved config (with where each value came from) and exit");
  app.add_flag("--help-config", flags.help_config, "List every config key and exit");
  app.add_option("--log-level", flags.request.log_level,
                 "trace|debug|info|warn|error|off (default: logging.level)");
}

// Handles --help-config and --print-config. Returns true when the app should exit now.
inline bool handle_config_queries(const ConfigFlags& flags, const LoadedConfig* loaded) {
  if (flags.help_config) {
    std::cout << render_config_help();
    return true;
  }
  if (flags.print_config && loaded != nullptr) {
    std::cout << render_config_yaml(*loaded, /*with_origins=*/true);
    return true;
  }
  return false;
}

// Parses argv. --help and --version print and exit 0; any other CLI11 error (an unknown flag, a
// missing required option, a --config file that does not exist, a value out of range) prints
// "error: <CLI11's message>" and exits kExitUsage (2), the documented status for usage and config
// errors, instead of CLI11's own codes (105, 106, 109, ...).
inline int parse(CLI::App& app, int argc, char** argv, bool& done) {
  done = false;
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "error: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    done = true;
    return app.exit(e) == static_cast<int>(CLI::ExitCodes::Success) ? kExitOk : kExitUsage;
  }
  return kExitOk;
}

}  // namespace cca::cli
