// Turns CUDA autocast on for a scope, as the trainer does around a forward pass.
#pragma once

#include <ATen/autocast_mode.h>

namespace cca::testing {

class CudaAutocast {
 public:
  explicit CudaAutocast(at::ScalarType dtype)
      : enabled_(at::autocast::is_autocast_enabled(at::kCUDA)),
        dtype_(at::autocast::get_autocast_dtype(at::kCUDA)) {
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
  }
  ~CudaAutocast() {
    at::autocast::set_autocast_enabled(at::kCUDA, enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype_);
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
  at::ScalarType dtype_;
};

}  // namespace cca::testing
