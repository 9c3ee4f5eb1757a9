#include "util/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace cca {

bool ProgressBar::stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

ProgressBar::ProgressBar(bool enabled, int64_t total, ProgressBarStyle style)
    : style_(std::move(style)),
      total_(total),
      enabled_(enabled && stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  clear();
}

std::string ProgressBar::render(const ProgressBarStyle& style, int64_t done, int64_t total,
                                const std::string& status) {
  // Nothing to do counts as done; more than the total (or less than none) stays inside the bar.
  const double fraction =
      total > 0 ? std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0)
                : 1.0;
  const int width = std::max(0, style.width);
  const int filled = static_cast<int>(fraction * width);
  std::string line = style.label.empty() ? "" : style.label + " ";
  line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  if (style.show_count) line += std::to_string(done) + "/" + std::to_string(total) + " ";
  return line + status;
}

void ProgressBar::update(int64_t done, const std::string& status) {
  update(done, [&status](double) { return status; });
}

void ProgressBar::update(int64_t done, const std::function<std::string(double seconds)>& status) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool finished = done >= total_;
  if (drawn_ && !finished && now - last_draw_ < std::chrono::milliseconds(style_.redraw_ms)) {
    return;
  }
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const std::string line = render(style_, done, total_, status(seconds));
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace cca
