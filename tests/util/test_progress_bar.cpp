// The one progress bar: its line for each caller's style, and what it actually writes to a
// terminal (a pseudo-terminal stands in for one): throttling, the final redraw, clearing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "util/progress_bar.h"

namespace cca {
namespace {

// Points stderr at a pseudo-terminal while it lives, so the bar draws; drawn() reads back what
// reached the terminal since the last call.
class StderrOnTerminal {
 public:
  StderrOnTerminal() {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY);
    EXPECT_GE(master_, 0);
    EXPECT_EQ(::grantpt(master_), 0);
    EXPECT_EQ(::unlockpt(master_), 0);
    const int terminal = ::open(::ptsname(master_), O_RDWR | O_NOCTTY);
    EXPECT_GE(terminal, 0);
    termios raw{};
    ::tcgetattr(terminal, &raw);
    ::cfmakeraw(&raw);  // bytes pass unchanged
    ::tcsetattr(terminal, TCSANOW, &raw);
    std::fflush(stderr);
    saved_stderr_ = ::dup(STDERR_FILENO);
    ::dup2(terminal, STDERR_FILENO);
    ::close(terminal);
  }
  ~StderrOnTerminal() {
    std::fflush(stderr);
    ::dup2(saved_stderr_, STDERR_FILENO);
    ::close(saved_stderr_);
    ::close(master_);
  }

  std::string drawn() {
    std::fflush(stderr);
    std::string out;
    pollfd p{master_, POLLIN, 0};
    // The first bytes may take a moment to cross the pseudo-terminal; then read until it is quiet.
    int wait_ms = 500;
    while (::poll(&p, 1, wait_ms) > 0) {
      char buffer[4096];
      const ssize_t n = ::read(master_, buffer, sizeof buffer);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
      wait_ms = 50;
    }
    return out;
  }

 private:
  int master_ = -1;
  int saved_stderr_ = -1;
};

TEST(ProgressBar, TrainerStyleShowsTheCount) {
  EXPECT_EQ(ProgressBar::render({}, 120, 300, ""), "[############..................] 120/300 ");
  EXPECT_EQ(ProgressBar::render({}, 300, 300, "done"),
            "[" + std::string(30, '#') + "] 300/300 done");
}

TEST(ProgressBar, LabelledStyleWithoutCount) {
  ProgressBarStyle style;
  style.label = "prepare";
  style.width = 24;
  style.show_count = false;
  EXPECT_EQ(ProgressBar::render(style, 25, 100, "25.0% ETA 0:03"),
            "prepare [######..................] 25.0% ETA 0:03");
}

TEST(ProgressBar, FractionStaysInsideTheBar) {
  ProgressBarStyle style;
  style.width = 4;
  style.show_count = false;
  EXPECT_EQ(ProgressBar::render(style, 7, 5, ""), "[####] ");
  EXPECT_EQ(ProgressBar::render(style, -1, 5, ""), "[....] ");
  EXPECT_EQ(ProgressBar::render(style, 0, 0, ""), "[####] ");  // nothing to do is done
}

TEST(ProgressBar, DrawsOnATerminalThrottlesAndClears) {
  StderrOnTerminal terminal;
  ProgressBarStyle style;
  style.width = 10;
  style.redraw_ms = 60000;  // nothing but the first and the final state may draw
  ProgressBar bar(true, 10, style);
  ASSERT_TRUE(bar.enabled());
  bar.update(3, "a");
  EXPECT_EQ(terminal.drawn(), "\r\033[K[###.......] 3/10 a");
  bar.update(5, "b");
  EXPECT_EQ(terminal.drawn(), "");
  bar.update(10, "c");
  EXPECT_EQ(terminal.drawn(), "\r\033[K[##########] 10/10 c");
  bar.clear();
  EXPECT_EQ(terminal.drawn(), "\r\033[K");
  bar.clear();  // nothing drawn since: nothing to clear
  EXPECT_EQ(terminal.drawn(), "");
}

TEST(ProgressBar, StatusIsFormattedOnlyWhenDrawn) {
  StderrOnTerminal terminal;
  ProgressBarStyle style;
  style.redraw_ms = 60000;
  ProgressBar bar(true, 100, style);
  int calls = 0;
  const auto status = [&](double seconds) {
    ++calls;
    EXPECT_GE(seconds, 0.0);
    return std::string("s");
  };
  for (int done = 1; done <= 100; ++done) bar.update(done, status);
  EXPECT_EQ(calls, 2);  // the first state and the last
}

TEST(ProgressBar, DisabledOrNotATerminalDrawsNothing) {
  StderrOnTerminal terminal;
  {
    ProgressBar bar(false, 10);
    EXPECT_FALSE(bar.enabled());
    bar.update(10, "x");
  }
  EXPECT_EQ(terminal.drawn(), "");
}

}  // namespace
}  // namespace cca
