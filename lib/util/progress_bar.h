// The one progress bar of cca-train (the trainer's steps, cca-data prepare's bytes): one line on
// stderr, "[label ][#####.....] [done/total ]status", redrawn in place. Drawn only when enabled and
// stderr is a terminal, so logs and CI output stay free of carriage-return noise. clear() before
// anything else writes to the console.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace cca {

struct ProgressBarStyle {
  std::string label;       // before the bar, e.g. "prepare"; none when empty
  int width = 30;          // characters between the brackets
  int redraw_ms = 200;     // at most one redraw per interval, so a fast loop does not flood
  bool show_count = true;  // "120/300" after the bar
};

class ProgressBar {
 public:
  ProgressBar(bool enabled, int64_t total, ProgressBarStyle style = {});
  ~ProgressBar();  // clears the line
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Redraws at most every style.redraw_ms, and always once `done` reaches the total (so the bar
  // never stops short of the end).
  void update(int64_t done, const std::string& status);
  // As above; `status` runs only when the bar redraws and gets the seconds since the bar was made
  // (for rates and ETAs), so callers pay for formatting only on a redraw.
  void update(int64_t done, const std::function<std::string(double seconds)>& status);
  void clear();
  bool enabled() const { return enabled_; }

  // The line as drawn, without the carriage return and erase sequence; for tests.
  static std::string render(const ProgressBarStyle& style, int64_t done, int64_t total,
                            const std::string& status);
  static bool stderr_is_terminal();

 private:
  ProgressBarStyle style_;
  int64_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace cca
