#include "train/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace cca {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int signal) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, signal)) {
    static const char kMessage[] = "\nsecond signal: exiting now (no checkpoint written)\n";
    const ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    (void)ignored;
    ::_exit(128 + signal);
  }
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

bool stop_requested() {
  return g_signal.load() != 0;
}
int stop_signal() {
  return g_signal.load();
}
void reset_stop_request() {
  g_signal.store(0);
}

}  // namespace cca
