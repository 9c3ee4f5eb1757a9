#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace cca {

LrSchedule::LrSchedule(const ScheduleConfig& s, double peak_lr, int64_t total_steps)
    : peak_(peak_lr),
      min_ratio_(s.min_lr_ratio),
      total_(std::max<int64_t>(total_steps, 1)),
      warmup_(std::min(s.warmup_steps, total_)),
      sqrt_decay_(s.decay_shape == "sqrt") {
  if (s.kind == "cosine") {
    kind_ = Kind::cosine;
  } else if (s.kind == "wsd") {
    kind_ = Kind::wsd;
  } else if (s.kind == "constant") {
    kind_ = Kind::constant;
  } else {
    throw Error("unknown schedule.kind '" + s.kind + "'; allowed: cosine, wsd, constant");
  }
  const auto decay_steps = static_cast<int64_t>(std::llround(s.decay_fraction * total_));
  decay_start_ = std::max(warmup_, total_ - decay_steps);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_) return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  return after_warmup(std::min(step, total_ - 1));
}

double LrSchedule::after_warmup(int64_t step) const {
  const double low = floor();
  switch (kind_) {
    case Kind::constant:
      return peak_;
    case Kind::cosine: {
      // Progress reaches 1 at the last step, so the run ends exactly at the floor.
      const double span = static_cast<double>(std::max<int64_t>(total_ - 1 - warmup_, 1));
      const double p = std::clamp(static_cast<double>(step - warmup_) / span, 0.0, 1.0);
      return low + (peak_ - low) * 0.5 * (1.0 + std::cos(M_PI * p));
    }
    case Kind::wsd: {
      if (step < decay_start_) return peak_;
      const double span = static_cast<double>(std::max<int64_t>(total_ - 1 - decay_start_, 1));
      const double q =
          std::clamp(static_cast<double>(step - decay_start_ + 1) / (span + 1), 0.0, 1.0);
      const double shape = sqrt_decay_ ? 1.0 - std::sqrt(q) : 1.0 - q;
      return low + (peak_ - low) * shape;
    }
  }
  return peak_;
}

}  // namespace cca
