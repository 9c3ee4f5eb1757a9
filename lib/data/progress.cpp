#include "data/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "util/format.h"

namespace cca::data {
namespace {

std::string two_digits(long long v) {
  return (v < 10 ? "0" : "") + std::to_string(v);
}

std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return format("{}:{}:{}", s / 3600, two_digits((s / 60) % 60), two_digits(s % 60));
  return format("{}:{}", s / 60, two_digits(s % 60));
}

}  // namespace

bool Progress::stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string label, uint64_t total)
    : Progress(std::move(label), total, stderr_is_terminal()) {}

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

std::string Progress::render(uint64_t done, uint64_t total, int64_t tokens, double seconds) {
  const double fraction = total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 0.0;
  const double rate = seconds > 0 ? done / seconds : 0.0;
  const double token_rate = seconds > 0 ? tokens / seconds : 0.0;
  std::string eta = "--:--";
  if (rate > 0 && done <= total) eta = clock_text((total - done) / rate);
  return format("{:.1f}% {}/{} {}/s {} tok/s ETA {}", 100.0 * fraction, human_bytes(done),
                human_bytes(total), human_bytes(rate), human_count(token_rate), eta);
}

void Progress::update(uint64_t done, int64_t tokens) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done) / total_) : 0.0;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(fraction * kWidth);
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %s", label_.c_str(), bar.c_str(),
               render(done, total_, tokens, seconds).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace cca::data
