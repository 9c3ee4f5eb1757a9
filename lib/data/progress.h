// A one-line progress bar with throughput and ETA, drawn on stderr only when stderr is a
// terminal: logs and CI output stay free of carriage-return noise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cca::data {

class Progress {
 public:
  // `total` bytes of input; `enabled` defaults to "stderr is a terminal".
  Progress(std::string label, uint64_t total);
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();

  // Redraws at most every 100 ms. `tokens` is shown as a rate too.
  void update(uint64_t done, int64_t tokens);
  // Clears the line (the caller logs the summary).
  void finish();
  bool enabled() const { return enabled_; }

  static bool stderr_is_terminal();
  // "45.2% 18.1 MiB/40.0 MiB 5.3 MiB/s 1.2M tok/s ETA 0:04", for tests and the bar.
  static std::string render(uint64_t done, uint64_t total, int64_t tokens, double seconds);

 private:
  std::string label_;
  uint64_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace cca::data
