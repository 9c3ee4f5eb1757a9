// One warp per row: lane l holds float4 chunks l, l + 32, ... of the row, so a row is one
// coalesced 16-byte-per-lane sweep and its sum of squares one warp shuffle, with no block-wide
// barrier per row. The backward keeps each warp's weight-gradient columns in registers over its
// rows, adds the block's warps in shared memory in warp order, and a column-parallel kernel adds
// the blocks in block order.
#include "add_rms_norm.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>
#include <type_traits>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

constexpr int kForwardWarps = 8;
constexpr int kBackwardWarps = 4;  // × kAddRmsNormMaxDim floats of shared memory = 32 KB

template <typename T, int kChunks>
__global__ void __launch_bounds__(kForwardWarps * 32)
    add_rms_norm_forward_kernel(const float* residual, const T* delta, const float* weight,
                                float* sum, T* out, float* rstd, int64_t rows, int dim, float eps) {
  const int lane = threadIdx.x % 32;
  const int vecs = dim / 4;
  for (int64_t r = int64_t{blockIdx.x} * kForwardWarps + threadIdx.x / 32; r < rows;
       r += int64_t{gridDim.x} * kForwardWarps) {
    const int64_t base = r * dim;
    float h[kChunks][4];
    float squares = 0.0f;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      load_floats<float, 4>(residual + base + 4 * v, h[i]);
      if (delta != nullptr) {
        float d[4];
        load_floats<T, 4>(delta + base + 4 * v, d);
#pragma unroll
        for (int k = 0; k < 4; ++k) h[i][k] += d[k];
        store_floats<float, 4>(sum + base + 4 * v, h[i]);
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) squares += h[i][k] * h[i][k];
    }
    const float scale = rsqrtf(warp_sum(squares) / dim + eps);
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      float w[4], y[4];
      load_floats<float, 4>(weight + 4 * v, w);
#pragma unroll
      for (int k = 0; k < 4; ++k) y[k] = h[i][k] * scale * w[k];
      store_floats<T, 4>(out + base + 4 * v, y);
    }
    if (lane == 0) rstd[r] = scale;
  }
}

// dh = rstd · (g − ĥ · mean(g · ĥ)) + grad_through with g = dy · w, ĥ = h · rstd;
// dw = Σ_rows dy · ĥ. Rows up to 1024 wide stay in registers between the two sweeps; wider
// rows are read again (from L1/L2). Each warp sums its rows' dw in its own shared-memory row
// (each lane owns its columns: no conflicts, no atomics), which keeps the registers, and so the
// warps in flight, for the loads this kernel waits on.
template <typename T, int kChunks>
__global__ void __launch_bounds__(kBackwardWarps * 32)
    add_rms_norm_backward_kernel(const T* grad_out, const float* h, const float* weight,
                                 const float* rstd, const float* grad_through, float* grad_sum,
                                 T* grad_delta, float* weight_partials, int64_t rows, int dim) {
  constexpr bool kKeep = kChunks <= 8;
  constexpr int kKept = kKeep ? kChunks : 1;
  __shared__ __align__(16) float block_acc[kBackwardWarps][kAddRmsNormMaxDim];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int vecs = dim / 4;
  float* acc = block_acc[warp];
  for (int v = lane; v < vecs; v += 32) *reinterpret_cast<float4*>(acc + 4 * v) = float4{};
  for (int64_t r = int64_t{blockIdx.x} * kBackwardWarps + warp; r < rows;
       r += int64_t{gridDim.x} * kBackwardWarps) {
    const int64_t base = r * dim;
    const float scale = rstd[r];
    float kept_h[kKept][4], kept_dy[kKept][4];
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      float x[4], dy[4], w[4];
      load_floats<float, 4>(h + base + 4 * v, x);
      load_floats<T, 4>(grad_out + base + 4 * v, dy);
      load_floats<float, 4>(weight + 4 * v, w);
      float normed[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) normed[k] = x[k] * scale;
      float4& column = *reinterpret_cast<float4*>(acc + 4 * v);
      const float4 sum = column;
      column = make_float4(sum.x + dy[0] * normed[0], sum.y + dy[1] * normed[1],
                           sum.z + dy[2] * normed[2], sum.w + dy[3] * normed[3]);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        dot += dy[k] * w[k] * normed[k];
        if constexpr (kKeep) {
          kept_h[i][k] = x[k];
          kept_dy[i][k] = dy[k];
        }
      }
    }
    const float mean_dot = warp_sum(dot) / dim;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      float x[4], dy[4], w[4], dx[4];
      if constexpr (kKeep) {
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          x[k] = kept_h[i][k];
          dy[k] = kept_dy[i][k];
        }
      } else {
        load_floats<float, 4>(h + base + 4 * v, x);
        load_floats<T, 4>(grad_out + base + 4 * v, dy);
      }
      load_floats<float, 4>(weight + 4 * v, w);
#pragma unroll
      for (int k = 0; k < 4; ++k) dx[k] = scale * (dy[k] * w[k] - x[k] * scale * mean_dot);
      if (grad_through != nullptr) {
        float through[4];
        load_floats<float, 4>(grad_through + base + 4 * v, through);
#pragma unroll
        for (int k = 0; k < 4; ++k) dx[k] += through[k];
      }
      store_floats<float, 4>(grad_sum + base + 4 * v, dx);
      if (grad_delta != nullptr) store_floats<T, 4>(grad_delta + base + 4 * v, dx);
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < dim; c += blockDim.x) {
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kBackwardWarps; ++w) total += block_acc[w][c];
    weight_partials[int64_t{blockIdx.x} * dim + c] = total;
  }
}

// out[c] = Σ_p partials[p][c], p ascending within each of 8 strided lanes, then the 8 lanes in
// order: the same bits on every run.
__global__ void sum_weight_partials_kernel(const float* partials, float* out, int parts, int dim) {
  __shared__ float lanes[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float total = 0.0f;
  if (c < dim) {
    for (int p = threadIdx.y; p < parts; p += 8) total += partials[int64_t{p} * dim + c];
  }
  lanes[threadIdx.y][threadIdx.x] = total;
  __syncthreads();
  if (threadIdx.y == 0 && c < dim) {
    float sum = 0.0f;
#pragma unroll
    for (int y = 0; y < 8; ++y) sum += lanes[y][threadIdx.x];
    out[c] = sum;
  }
}

// A contiguous copy when t's start is not aligned for 4-element packs.
at::Tensor packable(const at::Tensor& t) {
  return aligned_contiguous(t, 4 * t.element_size());
}

// Calls f(T{}, std::integral_constant<int, kChunks>{}): the smallest chunk count covering E.
template <typename F>
void dispatch_add_rms_norm(at::ScalarType dtype, int64_t dim, F&& f) {
  dispatch_float_dtype(dtype, "add_rms_norm", [&](auto tag) {
    if (dim <= 256) return f(tag, std::integral_constant<int, 2>{});
    if (dim <= 512) return f(tag, std::integral_constant<int, 4>{});
    if (dim <= 1024) return f(tag, std::integral_constant<int, 8>{});
    return f(tag, std::integral_constant<int, 16>{});
  });
}

}  // namespace

bool add_rms_norm_supported(int64_t dim, const at::Tensor& delta, at::ScalarType out_dtype) {
  const bool out_ok =
      out_dtype == at::kBFloat16 || out_dtype == at::kHalf || out_dtype == at::kFloat;
  const bool delta_ok = !delta.defined() || delta.scalar_type() == out_dtype;
  return out_ok && delta_ok && dim > 0 && dim % 4 == 0 && dim <= kAddRmsNormMaxDim;
}

AddRmsNormForward add_rms_norm_forward_cuda(const at::Tensor& residual, const at::Tensor& delta,
                                            const at::Tensor& weight, double eps,
                                            at::ScalarType out_dtype) {
  TORCH_CHECK(residual.is_cuda() && residual.dim() == 2 && residual.scalar_type() == at::kFloat,
              "add_rms_norm: residual must be a CUDA fp32 [M, E] tensor");
  const int64_t rows = residual.size(0);
  const int dim = static_cast<int>(residual.size(1));
  TORCH_CHECK(add_rms_norm_supported(dim, delta, out_dtype),
              "add_rms_norm: unsupported width or dtypes (E = ", dim, ")");
  TORCH_CHECK(!delta.defined() || delta.sizes() == residual.sizes(),
              "add_rms_norm: delta must be shaped like residual");
  TORCH_CHECK(weight.scalar_type() == at::kFloat && weight.numel() == dim,
              "add_rms_norm: weight must be fp32 [E]");
  const c10::cuda::CUDAGuard guard(residual.device());
  const at::Tensor x = packable(residual), w = packable(weight);
  const at::Tensor d = delta.defined() ? packable(delta) : delta;
  AddRmsNormForward result;
  result.sum = d.defined() ? at::empty_like(x) : at::Tensor();
  result.out = at::empty(x.sizes(), x.options().dtype(out_dtype));
  result.rstd = at::empty({rows}, x.options());
  if (rows == 0) return result;
  const auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_add_rms_norm(out_dtype, dim, [&](auto tag, auto chunks) {
    using T = decltype(tag);
    const auto kernel = add_rms_norm_forward_kernel<T, decltype(chunks)::value>;
    const int blocks =
        resident_blocks(kernel, kForwardWarps * 32, (rows + kForwardWarps - 1) / kForwardWarps);
    launch_checked(kernel, blocks, kForwardWarps * 32, 0, stream, x.data_ptr<float>(), ptr<T>(d),
                   w.data_ptr<float>(), d.defined() ? result.sum.data_ptr<float>() : nullptr,
                   mutable_ptr<T>(result.out), result.rstd.data_ptr<float>(), rows, dim,
                   static_cast<float>(eps));
  });
  return result;
}

AddRmsNormBackward add_rms_norm_backward_cuda(const at::Tensor& grad_out, const at::Tensor& h,
                                              const at::Tensor& weight, const at::Tensor& rstd,
                                              const at::Tensor& grad_through,
                                              std::optional<at::ScalarType> delta_dtype) {
  TORCH_CHECK(
      h.is_cuda() && h.dim() == 2 && h.scalar_type() == at::kFloat && grad_out.sizes() == h.sizes(),
      "add_rms_norm backward: h must be CUDA fp32 [M, E] and grad_out shaped like it");
  const int64_t rows = h.size(0);
  const int dim = static_cast<int>(h.size(1));
  TORCH_CHECK(add_rms_norm_supported(dim, at::Tensor(), grad_out.scalar_type()),
              "add_rms_norm backward: unsupported width or dtype (E = ", dim, ")");
  TORCH_CHECK(!delta_dtype || *delta_dtype == grad_out.scalar_type(),
              "add_rms_norm backward: delta's gradient must be in the output's dtype");
  TORCH_CHECK(!grad_through.defined() ||
                  (grad_through.scalar_type() == at::kFloat && grad_through.sizes() == h.sizes()),
              "add_rms_norm backward: grad_through must be fp32 and shaped like h");
  const c10::cuda::CUDAGuard guard(h.device());
  const at::Tensor dy = packable(grad_out), x = packable(h), w = packable(weight);
  const at::Tensor through = grad_through.defined() ? packable(grad_through) : grad_through;
  AddRmsNormBackward result;
  result.grad_sum = at::empty_like(x);
  result.grad_delta = delta_dtype ? at::empty_like(dy) : at::Tensor();
  result.grad_weight = at::zeros({dim}, x.options());
  if (rows == 0) return result;
  const auto stream = at::cuda::getCurrentCUDAStream();
  at::Tensor partials;
  int parts = 0;
  dispatch_add_rms_norm(dy.scalar_type(), dim, [&](auto tag, auto chunks) {
    using T = decltype(tag);
    const auto kernel = add_rms_norm_backward_kernel<T, decltype(chunks)::value>;
    // The grid depends on the device only, so the weight gradient's summation order is fixed.
    parts =
        resident_blocks(kernel, kBackwardWarps * 32, (rows + kBackwardWarps - 1) / kBackwardWarps);
    partials = at::empty({parts, dim}, x.options());
    launch_checked(kernel, parts, kBackwardWarps * 32, 0, stream, ptr<T>(dy), x.data_ptr<float>(),
                   w.data_ptr<float>(), rstd.data_ptr<float>(),
                   through.defined() ? through.data_ptr<float>() : nullptr,
                   result.grad_sum.data_ptr<float>(), mutable_ptr<T>(result.grad_delta),
                   partials.data_ptr<float>(), rows, dim);
  });
  launch_checked(sum_weight_partials_kernel, (dim + 31) / 32, dim3(32, 8), 0, stream,
                 partials.data_ptr<float>(), result.grad_weight.data_ptr<float>(), parts, dim);
  return result;
}

}  // namespace cca::kernels
