// Several projections of one input as one matrix product.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace cca {

// x·Wᵢᵀ for each weight Wᵢ [outᵢ, in], computed with the weights stacked: one wide GEMM runs
// faster than several narrow ones (at E = 768 about twice as fast), and backward needs one input
// GEMM instead of several plus their sum. The outputs come back through split_with_sizes, whose
// backward is a single concatenation (narrowed views would each make a zero-filled full-size
// gradient and add them). Under autocast each weight is cast through autocast's cache first, so
// the stacking copies bf16 rather than fp32. Under train.precision: fp8 the stacked fp32 weights
// go to fp8_linear instead (ops/fp8_linear.h).
std::vector<at::Tensor> stacked_linear(const at::Tensor& x, const std::vector<at::Tensor>& weights);

}  // namespace cca
