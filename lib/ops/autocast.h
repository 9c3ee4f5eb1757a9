// The dtype autocast would run a matmul in, for code that calls kernels autocast does not know.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include <optional>

namespace cca {

// bf16/fp16 when autocast is on for x's device and x is a float tensor; nullopt otherwise.
inline std::optional<at::ScalarType> autocast_dtype(const at::Tensor& x) {
  const c10::DeviceType type = x.device().type();
  if (!at::autocast::is_autocast_enabled(type) || !at::isFloatingType(x.scalar_type()) ||
      x.scalar_type() == at::kDouble) {
    return std::nullopt;
  }
  return at::autocast::get_autocast_dtype(type);
}

// `weight` in autocast's dtype, through autocast's per-region cache (one cast per forward).
inline at::Tensor autocast_weight(const at::Tensor& weight, at::ScalarType dtype) {
  return at::autocast::cached_cast(dtype, weight, weight.device().type());
}

}  // namespace cca
