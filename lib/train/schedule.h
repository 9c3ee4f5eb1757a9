// Learning-rate schedules: linear warmup, then cosine, warmup-stable-decay (linear or 1 - sqrt
// cool-down) or constant, never below peak × schedule.min_lr_ratio after warmup.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace cca {

class LrSchedule {
 public:
  LrSchedule(const ScheduleConfig& schedule, double peak_lr, int64_t total_steps);

  // The learning rate for optimizer step `step` (0-based). Steps past the end keep the final LR.
  double at(int64_t step) const;
  double peak() const { return peak_; }
  double floor() const { return peak_ * min_ratio_; }

 private:
  double after_warmup(int64_t step) const;

  enum class Kind { cosine, wsd, constant } kind_;
  double peak_;
  double min_ratio_;
  int64_t total_;
  int64_t warmup_;
  int64_t decay_start_;  // WSD: first step of the cool-down
  bool sqrt_decay_;
};

}  // namespace cca
