// Error measures for comparing a kernel's output with a float64 reference, and the tolerance of
// one rounding to each dtype.
#pragma once

#include <ATen/ATen.h>

namespace cca::testing {

// Largest |got − want| / (|want| + 1): relative for large values, absolute near zero.
inline double worst_error(const at::Tensor& got, const at::Tensor& want) {
  if (want.numel() == 0) return 0.0;
  const at::Tensor w = want.to(at::kDouble).cpu();
  return ((got.to(at::kDouble).cpu() - w).abs() / (w.abs() + 1.0)).max().item<double>();
}

// Largest |got − want| against the largest |want|: for sums over many rows, whose elements near
// zero carry the rounding of the large partial sums.
inline double error_of_sum(const at::Tensor& got, const at::Tensor& want) {
  if (want.numel() == 0) return 0.0;
  const at::Tensor w = want.to(at::kDouble).cpu();
  return (got.to(at::kDouble).cpu() - w).abs().max().item<double>() /
         (w.abs().max().item<double>() + 1.0);
}

// One rounding to t of a value computed in fp32, as a worst_error bound.
inline double rounding_tolerance(at::ScalarType t) {
  if (t == at::kBFloat16) return 1.0 / 128;
  if (t == at::kHalf) return 1e-3;
  if (t == at::kFloat) return 1e-5;
  return 1e-12;
}

}  // namespace cca::testing
