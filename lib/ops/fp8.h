// FP8 quantisation and scaled matrix products (train.precision: fp8), in plain ATen so that the
// scaling logic runs, and is tested, on the CPU too. A tensor is quantised with a scale computed
// just in time from its absolute maximum ("current scaling"): the largest magnitude maps to the
// format's largest finite value, so nothing overflows and the format's few mantissa bits cover
// the tensor's actual range. Forward operands use e4m3 (more precision), gradients e5m2 (more
// range); docs/training.md#fp8 says the same for users.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace cca {

// One scale per tensor, or one per row of the [rows, K] operand (K the reduction dimension):
// a row of outliers then costs precision only in its own row.
enum class Fp8Scaling { kTensor, kRow };

// "tensor" | "row"; throws cca::Error naming train.fp8.scaling otherwise.
Fp8Scaling parse_fp8_scaling(const std::string& name);
const char* fp8_scaling_name(Fp8Scaling scaling);

// The largest finite value of an fp8 format: 448 for e4m3fn, 57344 for e5m2.
double fp8_max(at::ScalarType fp8_type);

// A quantised operand: `data` (fp8, row-major [rows, K]) times `scale` (fp32; [] for tensor-wise,
// [rows, 1] for row-wise) is the original. `scale` is the dequantisation factor, as
// at::_scaled_mm takes it.
struct Fp8Tensor {
  at::Tensor data;
  at::Tensor scale;
};

// The quantisation factor format_max / amax (fp32), with amax floored so an all-zero tensor gets
// a finite factor. `amax` may be a scalar or a column of row maxima.
at::Tensor fp8_scale_from_amax(const at::Tensor& amax, at::ScalarType fp8_type);

// `x` [rows, K] (any float dtype, any strides) quantised to `fp8_type`, saturating at the format's
// largest value. Row-wise takes each row's own maximum over K.
Fp8Tensor quantize_fp8(const at::Tensor& x, at::ScalarType fp8_type, Fp8Scaling scaling);

// data · scale in fp32: what the quantised operand stands for.
at::Tensor dequantize_fp8(const Fp8Tensor& q);

// The transpose of a tensor-wise quantised operand, row-major again (a one-byte copy). A row-wise
// one cannot be transposed this way: its scales run along the other dimension.
Fp8Tensor transpose_fp8(const Fp8Tensor& q);

// a · bᵀ for a [M, K] and b [N, K] (both K-major, the layout FP8 tensor cores take), in
// `out_dtype`. CUDA: at::_scaled_mm; elsewhere the same product from the dequantised operands,
// so the CPU tests exercise the quantisation the GPU path uses.
at::Tensor fp8_matmul_nt(const Fp8Tensor& a, const Fp8Tensor& b, at::ScalarType out_dtype,
                         bool fast_accumulation);

// Whether a GPU of compute capability major.minor has FP8 tensor cores (sm_89 and newer).
bool fp8_capable(int major, int minor);

// Throws cca::Error naming train.precision, the device and the precisions allowed there unless
// `device` is a GPU with FP8 tensor cores.
void require_fp8_support(const at::Device& device);

}  // namespace cca
