// Blocks stride over rows, each thread holding up to kCols columns of a row in registers, so a row
// is read from memory once per pass. The weight gradient is accumulated per block in registers
// over the block's rows and the per-block partials are summed in block order by a second kernel:
// no atomics, the same bits on every run.
#include "rms_norm.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <type_traits>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

constexpr int kCols = 16;

// Sum over the block, the same value in every thread, added in a fixed order.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += scratch[w];
  __syncthreads();  // scratch is reused by the next row
  return total;
}

template <typename T, int kBlock>
__global__ void __launch_bounds__(kBlock)
    rms_norm_forward_kernel(const float* x, const float* weight, T* out, float* rstd, int64_t rows,
                            int dim, float eps) {
  __shared__ float scratch[32];
  float w[kCols];
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    const int c = threadIdx.x + i * kBlock;
    w[i] = c < dim ? weight[c] : 0.0f;
  }
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * dim;
    float v[kCols];
    float squares = 0.0f;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kBlock;
      v[i] = c < dim ? row[c] : 0.0f;
      squares += v[i] * v[i];
    }
    const float scale = rsqrtf(block_sum(squares, scratch) / dim + eps);
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kBlock;
      if (c < dim) out[r * dim + c] = from_float<T>(v[i] * scale * w[i]);
    }
    if (threadIdx.x == 0) rstd[r] = scale;
  }
}

// dx = rstd · (g − x̂ · mean(g · x̂)) with g = dy · w and x̂ = x · rstd; dw = Σ_rows dy · x̂.
template <typename T, int kBlock>
__global__ void __launch_bounds__(kBlock)
    rms_norm_backward_kernel(const T* grad_out, const float* x, const float* weight,
                             const float* rstd, float* grad_x, float* weight_partials, int64_t rows,
                             int dim) {
  __shared__ float scratch[32];
  float w[kCols], acc[kCols];
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    const int c = threadIdx.x + i * kBlock;
    w[i] = c < dim ? weight[c] : 0.0f;
    acc[i] = 0.0f;
  }
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float scale = rstd[r];
    float normed[kCols], g[kCols];
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kBlock;
      const float dy = c < dim ? to_float(grad_out[r * dim + c]) : 0.0f;
      normed[i] = c < dim ? x[r * dim + c] * scale : 0.0f;
      g[i] = dy * w[i];
      acc[i] += dy * normed[i];
      dot += g[i] * normed[i];
    }
    const float mean_dot = block_sum(dot, scratch) / dim;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kBlock;
      if (c < dim) grad_x[r * dim + c] = scale * (g[i] - normed[i] * mean_dot);
    }
  }
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    const int c = threadIdx.x + i * kBlock;
    if (c < dim) weight_partials[int64_t{blockIdx.x} * dim + c] = acc[i];
  }
}

__global__ void sum_partials_kernel(const float* partials, float* out, int parts, int dim) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  float sum = 0.0f;
  for (int p = 0; p < parts; ++p) sum += partials[int64_t{p} * dim + c];
  out[c] = sum;
}

template <int kBlock>
int blocks_for(int64_t rows) {
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(rows, multiprocessors() * (2048 / kBlock))));
}

void check_inputs(const at::Tensor& x, const at::Tensor& weight) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 2 && x.is_contiguous() && x.scalar_type() == at::kFloat,
              "rms_norm: x must be a contiguous CUDA fp32 [M, E] tensor");
  TORCH_CHECK(x.size(1) > 0 && x.size(1) <= kRmsNormMaxDim, "rms_norm: E = ", x.size(1),
              " outside 1..", kRmsNormMaxDim);
  TORCH_CHECK(weight.is_contiguous() && weight.scalar_type() == at::kFloat &&
                  weight.device() == x.device() && weight.numel() == x.size(1),
              "rms_norm: weight must be fp32 [E] on x's device");
}

// Calls f(T{}, std::integral_constant<int, kBlock>{}) for the dtype and row width.
template <typename F>
void dispatch_rms_norm(at::ScalarType dtype, int64_t dim, F&& f) {
  dispatch_float_dtype(dtype, "rms_norm", [&](auto tag) {
    if (dim <= 256 * kCols) return f(tag, std::integral_constant<int, 256>{});
    return f(tag, std::integral_constant<int, 1024>{});
  });
}

}  // namespace

RmsNormForward rms_norm_forward_cuda(const at::Tensor& x, const at::Tensor& weight, double eps,
                                     at::ScalarType out_dtype) {
  check_inputs(x, weight);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = x.size(0);
  const int dim = static_cast<int>(x.size(1));
  RmsNormForward result{at::empty(x.sizes(), x.options().dtype(out_dtype)),
                        at::empty({rows}, x.options())};
  if (rows == 0) return result;
  const auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_rms_norm(out_dtype, dim, [&](auto tag, auto block) {
    using T = decltype(tag);
    constexpr int kBlock = decltype(block)::value;
    launch_checked(rms_norm_forward_kernel<T, kBlock>, blocks_for<kBlock>(rows), kBlock, 0, stream,
                   x.data_ptr<float>(), weight.data_ptr<float>(), mutable_ptr<T>(result.out),
                   result.rstd.data_ptr<float>(), rows, dim, static_cast<float>(eps));
  });
  return result;
}

RmsNormBackward rms_norm_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x,
                                       const at::Tensor& weight, const at::Tensor& rstd) {
  check_inputs(x, weight);
  TORCH_CHECK(
      grad_out.is_contiguous() && grad_out.sizes() == x.sizes() && grad_out.device() == x.device(),
      "rms_norm backward: grad_out must be contiguous and shaped like x");
  TORCH_CHECK(rstd.scalar_type() == at::kFloat && rstd.numel() == x.size(0),
              "rms_norm backward: rstd must be the forward's fp32 [M]");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = x.size(0);
  const int dim = static_cast<int>(x.size(1));
  RmsNormBackward result{at::empty_like(x), at::zeros_like(weight)};
  if (rows == 0) return result;
  const auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_rms_norm(grad_out.scalar_type(), dim, [&](auto tag, auto block) {
    using T = decltype(tag);
    constexpr int kBlock = decltype(block)::value;
    const int parts = blocks_for<kBlock>(rows);
    at::Tensor partials = at::empty({parts, dim}, x.options());
    launch_checked(rms_norm_backward_kernel<T, kBlock>, parts, kBlock, 0, stream, ptr<T>(grad_out),
                   x.data_ptr<float>(), weight.data_ptr<float>(), rstd.data_ptr<float>(),
                   result.grad_x.data_ptr<float>(), partials.data_ptr<float>(), rows, dim);
    launch_checked(sum_partials_kernel, (dim + 255) / 256, 256, 0, stream,
                   partials.data_ptr<float>(), result.grad_weight.data_ptr<float>(), parts, dim);
  });
  return result;
}

}  // namespace cca::kernels
