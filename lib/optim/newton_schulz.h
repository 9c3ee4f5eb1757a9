// Muon's orthogonalisation: the quintic Newton–Schulz iteration that maps a matrix G = U·S·Vᵀ to
// approximately U·Vᵀ (every singular value moved into a band around 1) with matrix products only.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cca {

// The published coefficients (Jordan et al., Muon, 2024): steep at 0 (a = 3.4445), so small
// singular values grow fast; they do not converge to exactly 1 but oscillate in about
// [0.7, 1.2], which costs nothing in training and saves iterations.
struct NewtonSchulzCoefficients {
  static constexpr double a = 3.4445;
  static constexpr double b = -4.7750;
  static constexpr double c = 2.0315;
};

// `steps` iterations X ← a·X + (b·A + c·A²)·X, A = X·Xᵀ, from X = G / (‖G‖_F + 1e-7), on the
// last two dimensions of `matrices` ([rows, cols] or a stack [n, rows, cols], each matrix on its
// own). A tall matrix is transposed first, so A is the smaller Gram matrix. Computed in
// `compute_dtype` (bf16 on CUDA, where the products run on tensor cores; fp32 on the CPU);
// returned in that dtype, with the input's shape.
at::Tensor newton_schulz(const at::Tensor& matrices, int64_t steps, at::ScalarType compute_dtype);

// bf16 on CUDA, fp32 elsewhere.
at::ScalarType newton_schulz_dtype(const at::Device& device);

}  // namespace cca
