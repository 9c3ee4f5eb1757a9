// Splits training steps' wall time into phases (data, forward, backward, communication,
// optimizer) for cca-bench train. Each lap waits for the device so the split is exact; the
// price is that an observed step runs a little slower than an unobserved one, which is why the
// benchmark measures throughput on separate, unobserved steps.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <map>
#include <string>

namespace cca {

class PhaseClock {
 public:
  explicit PhaseClock(at::Device device) : device_(device) {}
  // Starts the first phase: waits for the device so earlier work is not charged to it.
  void start();
  // Ends the running phase and charges its time to `phase`; the next phase starts now.
  void lap(const std::string& phase);
  const std::map<std::string, double>& seconds() const { return seconds_; }

 private:
  at::Device device_;
  std::chrono::steady_clock::time_point last_;
  std::map<std::string, double> seconds_;
};

}  // namespace cca
