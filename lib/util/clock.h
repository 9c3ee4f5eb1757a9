// Wall and CPU clocks for measurements (benchmarks, tokenizer throughput).
#pragma once

#include <time.h>

#include <chrono>

namespace cca {

// CPU time of the calling thread, so a measurement is not inflated by other work on the machine.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace cca
