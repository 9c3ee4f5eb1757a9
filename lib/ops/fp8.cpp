#include "ops/fp8.h"

#include "ops/device.h"
#include "util/error.h"
#include "util/format.h"

#ifdef CCA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace cca {
namespace {

// The floor under amax: an all-zero tensor (a fresh zero-initialised layer, a masked gradient)
// gets a large finite factor instead of a division by zero.
constexpr double kAmaxFloor = 1e-12;

}  // namespace

Fp8Scaling parse_fp8_scaling(const std::string& name) {
  if (name == "tensor") return Fp8Scaling::kTensor;
  if (name == "row") return Fp8Scaling::kRow;
  throw Error(
      format("train.fp8.scaling is '{}'; allowed: tensor (one scale per tensor), row (one "
             "scale per row of each operand)",
             name));
}

const char* fp8_scaling_name(Fp8Scaling scaling) {
  return scaling == Fp8Scaling::kRow ? "row" : "tensor";
}

double fp8_max(at::ScalarType fp8_type) {
  if (fp8_type == at::kFloat8_e4m3fn) return 448.0;
  if (fp8_type == at::kFloat8_e5m2) return 57344.0;
  throw Error(format("fp8_max: {} is not an fp8 format (e4m3fn or e5m2)", c10::toString(fp8_type)));
}

at::Tensor fp8_scale_from_amax(const at::Tensor& amax, at::ScalarType fp8_type) {
  return at::reciprocal(amax.to(at::kFloat).clamp_min(kAmaxFloor)).mul_(fp8_max(fp8_type));
}

Fp8Tensor quantize_fp8(const at::Tensor& x, at::ScalarType fp8_type, Fp8Scaling scaling) {
  if (x.dim() != 2) {
    throw Error(format("quantize_fp8: expected a [rows, K] matrix, got {} dimensions", x.dim()));
  }
  // Two passes over x, the least plain ATen allows: min and max in one read (no |x| temporary),
  // then scale and cast in one kernel writing one byte per element. No clamp is needed: the
  // product overshoots format_max by at most a rounding of x's dtype (448 → 450 in bf16), which
  // the cast rounds back to 448 (e4m3fn turns only values from 464 up into NaN).
  const auto [low, high] =
      scaling == Fp8Scaling::kRow ? at::aminmax(x, /*dim=*/1, /*keepdim=*/true) : at::aminmax(x);
  const at::Tensor amax = at::maximum(high.abs(), low.abs());
  at::Tensor factor = fp8_scale_from_amax(amax, fp8_type);
  // A 0-dim factor does not promote a bf16 x: the kernel multiplies by the factor rounded to bf16.
  // Rounding it here keeps the dequantisation scale the exact reciprocal of what was applied.
  if (factor.dim() == 0 && x.scalar_type() != at::kFloat) {
    factor = factor.to(x.scalar_type()).to(at::kFloat);
  }
  // Row-major [rows, K] whatever x's strides (a transposed view quantises to its own copy).
  at::Tensor data = at::empty(x.sizes(), x.options().dtype(fp8_type));
  at::mul_out(data, x, factor);
  return {std::move(data), at::reciprocal(factor)};
}

at::Tensor dequantize_fp8(const Fp8Tensor& q) {
  return q.data.to(at::kFloat).mul(q.scale);
}

Fp8Tensor transpose_fp8(const Fp8Tensor& q) {
  if (q.scale.numel() != 1) {
    throw Error(
        "transpose_fp8: a row-wise quantised operand cannot be transposed; quantise the "
        "transposed original instead");
  }
  return {q.data.t().contiguous(), q.scale};
}

at::Tensor fp8_matmul_nt(const Fp8Tensor& a, const Fp8Tensor& b, at::ScalarType out_dtype,
                         bool fast_accumulation) {
  if (a.data.size(1) != b.data.size(1)) {
    throw Error(
        format("fp8_matmul_nt: reduction sizes differ ({} vs {})", a.data.size(1), b.data.size(1)));
  }
  if (a.data.is_cuda()) {
    // _scaled_mm takes its second operand column-major [K, N]: bᵀ as a view of row-major b.
    return at::_scaled_mm(a.data, b.data.t(), a.scale, b.scale.t(), std::nullopt, std::nullopt,
                          out_dtype, fast_accumulation);
  }
  return at::mm(dequantize_fp8(a), dequantize_fp8(b).t()).to(out_dtype);
}

bool fp8_capable(int major, int minor) {
  return major > 8 || (major == 8 && minor >= 9);
}

void require_fp8_support(const at::Device& device) {
  const char* why =
      "train.precision: fp8 needs an NVIDIA GPU with FP8 tensor cores (compute capability 8.9 or "
      "newer: Ada, Hopper, Blackwell)";
  if (!device.is_cuda()) {
    throw Error(format("{}, but this run's device is {}; allowed there: auto, fp32, bf16", why,
                       describe_device(device)));
  }
#ifdef CCA_WITH_CUDA
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device.index());
  const bool capable = fp8_capable(prop->major, prop->minor);
#else
  const bool capable = false;  // built without CUDA: no GPU path at all
#endif
  if (!capable) {
    throw Error(format("{}, but this run's device is {}; allowed there: auto, fp32, bf16", why,
                       describe_device(device)));
  }
}

}  // namespace cca
