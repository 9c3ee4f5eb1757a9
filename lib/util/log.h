// Logging for every app. The implementation (log.cpp) is the only place that sees spdlog and
// fmt 9; it is built as its own library without torch headers (see format.h for why).
#pragma once

#include <string>
#include <string_view>

#include "util/format.h"

namespace cca::log {

enum class Level { trace, debug, info, warn, error, off };

// Parses "trace|debug|info|warn|error|off"; throws cca::Error naming the allowed values.
Level parse_level(std::string_view name);
const char* level_name(Level level);

struct Options {
  Level level = Level::info;
  int rank = 0;                // only rank 0 writes info-and-below to the console
  std::string rank_file_path;  // if set, this rank also logs everything at `level` to that file
};

// Safe to call more than once (the last call wins); logging before init uses the defaults.
void init(const Options& options);
bool enabled(Level level);
void write(Level level, const std::string& message);
void flush();

template <class... Args>
void trace(std::string_view pattern, const Args&... args) {
  if (enabled(Level::trace)) write(Level::trace, cca::format(pattern, args...));
}
template <class... Args>
void debug(std::string_view pattern, const Args&... args) {
  if (enabled(Level::debug)) write(Level::debug, cca::format(pattern, args...));
}
template <class... Args>
void info(std::string_view pattern, const Args&... args) {
  if (enabled(Level::info)) write(Level::info, cca::format(pattern, args...));
}
template <class... Args>
void warn(std::string_view pattern, const Args&... args) {
  if (enabled(Level::warn)) write(Level::warn, cca::format(pattern, args...));
}
template <class... Args>
void error(std::string_view pattern, const Args&... args) {
  if (enabled(Level::error)) write(Level::error, cca::format(pattern, args...));
}

}  // namespace cca::log
