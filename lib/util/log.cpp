// The one translation unit that includes spdlog (and so Debian's fmt 9).
#include "util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>

#include "util/error.h"

namespace cca::log {
namespace {

constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "off"};

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::trace:
      return spdlog::level::trace;
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::error:
      return spdlog::level::err;
    case Level::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

// Rank 0's stdout sink: progress lines only, so warnings (on stderr) are not printed twice.
class BelowWarnSink : public spdlog::sinks::sink {
 public:
  BelowWarnSink() : inner_(std::make_shared<spdlog::sinks::stdout_sink_mt>()) {}
  void log(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::warn) inner_->log(msg);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

struct State {
  std::mutex mutex;
  Level level = Level::info;
  std::shared_ptr<spdlog::logger> logger;
};

State& state() {
  static State s;
  return s;
}

std::shared_ptr<spdlog::logger> make_logger(const Options& options) {
  std::vector<spdlog::sink_ptr> sinks;
  // Warnings and errors go to stderr on every rank; progress lines to stdout on rank 0 only.
  auto err_sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  err_sink->set_level(spdlog::level::warn);
  err_sink->set_pattern(options.rank == 0
                            ? "[%H:%M:%S] %^%l%$: %v"
                            : "[%H:%M:%S] [rank " + std::to_string(options.rank) + "] %^%l%$: %v");
  sinks.push_back(err_sink);
  if (options.rank == 0) {
    auto out_sink = std::make_shared<BelowWarnSink>();
    out_sink->set_level(to_spdlog(options.level));
    out_sink->set_pattern("[%H:%M:%S] %v");
    sinks.push_back(out_sink);
  }
  if (!options.rank_file_path.empty()) {
    auto file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.rank_file_path,
                                                                         /*truncate=*/false);
    file_sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(options.rank) +
                           "] [%l] %v");
    sinks.push_back(file_sink);
  }
  auto logger = std::make_shared<spdlog::logger>("cca", sinks.begin(), sinks.end());
  logger->set_level(to_spdlog(options.level));
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace

Level parse_level(std::string_view name) {
  for (int i = 0; i < 6; ++i) {
    if (name == kNames[i]) return static_cast<Level>(i);
  }
  throw Error("unknown log level '" + std::string(name) +
              "'; allowed: trace, debug, info, warn, error, off");
}

const char* level_name(Level level) {
  return kNames[static_cast<int>(level)];
}

void init(const Options& options) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  try {
    s.logger = make_logger(options);
  } catch (const spdlog::spdlog_ex& e) {
    throw Error("cannot open log file '" + options.rank_file_path + "': " + e.what());
  }
  s.level = options.level;
}

bool enabled(Level level) {
  return level >= state().level && level != Level::off;
}

void write(Level level, const std::string& message) {
  State& s = state();
  std::shared_ptr<spdlog::logger> logger;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.logger) s.logger = make_logger(Options{});
    logger = s.logger;
  }
  logger->log(to_spdlog(level), "{}", message);
}

void flush() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.logger) s.logger->flush();
}

}  // namespace cca::log
