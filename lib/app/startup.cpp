#include "app/startup.h"

#include <cstdlib>
#include <iostream>

#include "config/derived.h"
#include "util/error.h"
#include "util/files.h"
#include "util/log.h"
#include "util/strings.h"

namespace cca {
namespace {

int env_int(const char* primary, const char* fallback, int otherwise) {
  for (const char* name : {primary, fallback}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    const long parsed = std::strtol(value, &end, 10);
    if (*end != '\0' || parsed < 0) {
      throw Error(std::string("environment variable ") + name + "='" + value +
                  "' is not a non-negative integer");
    }
    return static_cast<int>(parsed);
  }
  return otherwise;
}

}  // namespace

int guarded_main(const std::function<int()>& body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    log::flush();
    std::cerr << "error: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const UsageError& e) {
    log::flush();
    std::cerr << "error: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const std::exception& e) {
    log::flush();
    std::cerr << "error: " << e.what() << std::endl;
    return kExitFailure;
  } catch (...) {
    std::cerr << "error: unknown failure" << std::endl;
    return kExitFailure;
  }
}

int world_size_from_environment() {
  const int world = env_int("WORLD_SIZE", "SLURM_NTASKS", 1);
  if (world < 1) throw Error("WORLD_SIZE must be at least 1");
  return world;
}

int rank_from_environment() {
  return env_int("RANK", "SLURM_PROCID", 0);
}

LoadedConfig load_run_config(const ConfigRequest& request) {
  LoadOptions options;
  options.overrides = request.overrides;
  options.world_size = request.world_size > 0 ? request.world_size : world_size_from_environment();
  LoadedConfig loaded = load_config(request.path, options);
  log::Options log_options;
  log_options.level =
      log::parse_level(request.log_level.empty() ? loaded.config.logging.level : request.log_level);
  log_options.rank = rank_from_environment();
  log::init(log_options);
  if (log_options.rank == 0) {
    for (const Diagnostic& w : loaded.warnings) {
      log::warn("config      {}: {}", w.origin.describe(), w.message);
    }
  }
  return loaded;
}

void attach_rank_log_file(const Config& config, const std::string& log_level_override) {
  if (!config.logging.per_rank_files) return;
  const std::string dir = files::join(config.run.dir, "logs");
  std::string reason;
  if (!files::make_directories(dir, reason)) {
    throw Error("cannot create log folder '" + dir + "': " + reason);
  }
  log::Options options;
  options.level =
      log::parse_level(log_level_override.empty() ? config.logging.level : log_level_override);
  options.rank = rank_from_environment();
  options.rank_file_path = files::join(dir, "rank" + std::to_string(options.rank) + ".log");
  log::init(options);
}

void log_run_summary(const LoadedConfig& loaded, int world_size) {
  std::vector<std::string> files = loaded.files;
  log::info("config      {}", files.empty() ? std::string("(defaults)") : join(files, ", "));
  for (const std::string& line : describe_derived(derive_values(loaded.config, world_size))) {
    log::info("{}", line);
  }
}

}  // namespace cca
