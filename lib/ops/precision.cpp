#include "ops/precision.h"

#include <ATen/autocast_mode.h>

#include "util/format.h"

namespace cca {

std::string Precision::name() const {
  if (fp8) {
    return format(
        "fp8 (e4m3 forward, e5m2 gradients, {}-wise scaling) for the hidden linear "
        "layers, bf16 autocast elsewhere, fp32 master",
        fp8_scaling_name(fp8_scaling));
  }
  return autocast ? "bf16 (autocast, fp32 master)" : "fp32";
}

Precision resolve_precision(const std::string& requested, const at::Device& device,
                            const std::string& fp8_scaling) {
  Precision precision;
  if (requested == "fp8") {
    require_fp8_support(device);
    precision.fp8 = true;
    precision.fp8_scaling = parse_fp8_scaling(fp8_scaling);
  }
  const bool bf16 =
      requested == "bf16" || requested == "fp8" || (requested == "auto" && device.is_cuda());
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
  if (precision.fp8) fp8_.emplace(Fp8Mode{true, precision.fp8_scaling});
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
