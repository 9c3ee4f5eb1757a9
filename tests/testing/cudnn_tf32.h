// cuDNN's TF32 default (on) rounds fp32 convolutions to 10-bit mantissas (relative errors near
// 1e-4 to 3e-4 in CCA's convs, seen on an H100 and an H200); tests that check float32 arithmetic
// turn it off for their scope.
#pragma once

#include <ATen/Context.h>

namespace cca::testing {

struct NoCudnnTf32 {
  const bool saved = at::globalContext().allowTF32CuDNN();
  NoCudnnTf32() { at::globalContext().setAllowTF32CuDNN(false); }
  ~NoCudnnTf32() { at::globalContext().setAllowTF32CuDNN(saved); }
  NoCudnnTf32(const NoCudnnTf32&) = delete;
  NoCudnnTf32& operator=(const NoCudnnTf32&) = delete;
};

}  // namespace cca::testing
