// Rows up to kWarpRowMaxDim wide, one warp per row: lane l holds packs l, l + 32, ... of kVec
// elements (16-byte float4 packs when E % 4 == 0, single elements otherwise), so a row is one
// coalesced sweep and its sum of squares one warp shuffle, with no block-wide barrier per row.
// The backward keeps each warp's weight-gradient columns in shared memory over its rows, adds the
// block's warps there in warp order, and a column-parallel kernel adds the blocks in block order.
#pragma once

#include <cstdint>

#include "device_helpers.cuh"

namespace cca::kernels {

inline constexpr int kWarpRowMaxDim = 2048;  // 32 lanes × 64 elements
inline constexpr int kWarpRowForwardWarps = 8;
inline constexpr int kWarpRowBackwardWarps = 4;  // × kWarpRowMaxDim floats of shared memory = 32 KB

template <typename T, int kVec, int kChunks>
__global__ void __launch_bounds__(kWarpRowForwardWarps * 32)
    add_rms_norm_forward_kernel(const float* residual, const T* delta, const float* weight,
                                float* sum, T* out, float* rstd, int64_t rows, int dim, float eps) {
  const int lane = threadIdx.x % 32;
  const int vecs = dim / kVec;
  for (int64_t r = int64_t{blockIdx.x} * kWarpRowForwardWarps + threadIdx.x / 32; r < rows;
       r += int64_t{gridDim.x} * kWarpRowForwardWarps) {
    const int64_t base = r * dim;
    float h[kChunks][kVec];
    float squares = 0.0f;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      load_floats<float, kVec>(residual + base + kVec * v, h[i]);
      if (delta != nullptr) {
        float d[kVec];
        load_floats<T, kVec>(delta + base + kVec * v, d);
#pragma unroll
        for (int k = 0; k < kVec; ++k) h[i][k] += d[k];
        store_floats<float, kVec>(sum + base + kVec * v, h[i]);
      }
#pragma unroll
      for (int k = 0; k < kVec; ++k) squares += h[i][k] * h[i][k];
    }
    const float scale = rsqrtf(warp_sum(squares) / dim + eps);
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      float w[kVec], y[kVec];
      load_floats<float, kVec>(weight + kVec * v, w);
#pragma unroll
      for (int k = 0; k < kVec; ++k) y[k] = h[i][k] * scale * w[k];
      store_floats<T, kVec>(out + base + kVec * v, y);
    }
    if (lane == 0) rstd[r] = scale;
  }
}

// dh = rstd · (g − ĥ · mean(g · ĥ)) + grad_through with g = dy · w, ĥ = h · rstd;
// dw = Σ_rows dy · ĥ. Rows up to 1024 wide stay in registers between the two sweeps; wider
// rows are read again (from L1/L2). Each warp sums its rows' dw in its own shared-memory row
// (each lane owns its columns: no conflicts, no atomics), which keeps the registers, and so the
// warps in flight, for the loads this kernel waits on.
template <typename T, int kVec, int kChunks>
__global__ void __launch_bounds__(kWarpRowBackwardWarps * 32)
    add_rms_norm_backward_kernel(const T* grad_out, const float* h, const float* weight,
                                 const float* rstd, const float* grad_through, float* grad_sum,
                                 T* grad_delta, float* weight_partials, int64_t rows, int dim) {
  using Column = Pack<float, kVec>;
  constexpr bool kKeep = kChunks * kVec <= 32;
  constexpr int kKept = kKeep ? kChunks : 1;
  __shared__ __align__(16) float block_acc[kWarpRowBackwardWarps][kWarpRowMaxDim];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int vecs = dim / kVec;
  float* acc = block_acc[warp];
  for (int v = lane; v < vecs; v += 32) *reinterpret_cast<Column*>(acc + kVec * v) = Column{};
  for (int64_t r = int64_t{blockIdx.x} * kWarpRowBackwardWarps + warp; r < rows;
       r += int64_t{gridDim.x} * kWarpRowBackwardWarps) {
    const int64_t base = r * dim;
    const float scale = rstd[r];
    float kept_h[kKept][kVec], kept_dy[kKept][kVec];
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int v = lane + 32 * i;
      if (v >= vecs) continue;
      float x[kVec], dy[kVec], w[kVec];
      load_floats<float, kVec>(h + base + kVec * v, x);
      load_floats<T, kVec>(grad_out + base + kVec * v, dy);
      load_floats<float, kVec>(weight + kVec * v, w);
      float normed[kVec];
#pragma unroll
      for (int k = 0; k < kVec; ++k) normed[k] = x[k] * scale;
      Column& column = *reinterpret_cast<Column*>(acc + kVec * v);
      Column total = column;
#pragma unroll
      for (int k = 0; k < kVec; ++k) total.v[k] = total.v[k] + dy[k] * normed[k];
      column = total;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
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
      float x[kVec], dy[kVec], w[kVec], dx[kVec];
      if constexpr (kKeep) {
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          x[k] = kept_h[i][k];
          dy[k] = kept_dy[i][k];
        }
      } else {
        load_floats<float, kVec>(h + base + kVec * v, x);
        load_floats<T, kVec>(grad_out + base + kVec * v, dy);
      }
      load_floats<float, kVec>(weight + kVec * v, w);
#pragma unroll
      for (int k = 0; k < kVec; ++k) dx[k] = scale * (dy[k] * w[k] - x[k] * scale * mean_dot);
      if (grad_through != nullptr) {
        float through[kVec];
        load_floats<float, kVec>(grad_through + base + kVec * v, through);
#pragma unroll
        for (int k = 0; k < kVec; ++k) dx[k] += through[k];
      }
      store_floats<float, kVec>(grad_sum + base + kVec * v, dx);
      if (grad_delta != nullptr) store_floats<T, kVec>(grad_delta + base + kVec * v, dx);
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < dim; c += blockDim.x) {
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarpRowBackwardWarps; ++w) total += block_acc[w][c];
    weight_partials[int64_t{blockIdx.x} * dim + c] = total;
  }
}

}  // namespace cca::kernels
