// Every LibTorch version difference lives here. cca-train targets LibTorch 2.x only (2.11 on the
// GPU machine and from PyPI elsewhere); this header refuses anything older at compile time.
#pragma once

#include <torch/version.h>

static_assert(TORCH_VERSION_MAJOR >= 2, "cca-train needs LibTorch 2.x");

#define CCA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||      \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
