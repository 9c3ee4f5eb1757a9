#include "train/phase_clock.h"

#include "ops/device.h"

namespace cca {

void PhaseClock::start() {
  synchronize(device_);
  last_ = std::chrono::steady_clock::now();
}

void PhaseClock::lap(const std::string& phase) {
  synchronize(device_);
  const auto now = std::chrono::steady_clock::now();
  seconds_[phase] += std::chrono::duration<double>(now - last_).count();
  last_ = now;
}

}  // namespace cca
