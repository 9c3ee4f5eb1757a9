#include "ops/precision.h"

#include <ATen/autocast_mode.h>

namespace cca {

Precision resolve_precision(const std::string& requested, const at::Device& device) {
  Precision precision;
  const bool bf16 = requested == "bf16" || (requested == "auto" && device.is_cuda());
  if (bf16) {
    precision.autocast = true;
    precision.compute_dtype = at::kBFloat16;
  }
  return precision;
}

AutocastScope::AutocastScope(const Precision& precision, const at::Device& device)
    : active_(precision.autocast), device_type_(device.type()) {
  if (!active_) return;
  previous_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_dtype(device_type_, precision.compute_dtype);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, previous_enabled_);
  at::autocast::set_autocast_dtype(device_type_, previous_dtype_);
}

StepCastCache::StepCastCache(const Precision& precision) : active_(precision.autocast) {
  if (active_) at::autocast::increment_nesting();
}

StepCastCache::~StepCastCache() {
  if (active_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace cca
