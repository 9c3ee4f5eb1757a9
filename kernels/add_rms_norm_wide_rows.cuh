// Rows wider than a warp holds (E > kWarpRowMaxDim), one block of kWarps warps per row: thread t
// holds packs t, t + kThreads, ... (kWideElements elements in all), so a row up to kThreads ·
// kWideElements wide (4096 on 8 warps, 16384 on 32) is read from memory once per pass and each
// thread's weight-gradient columns stay in its registers over the block's rows. (A warp per row
// would need a row of weight-gradient accumulators per warp in flight, which shared memory holds
// for only a few warps per SM at these widths, or would read each row twice from DRAM.)
//
// Wider rows are swept in segments of kThreads · kWideElements: the second sweep reads the row
// again (the forward the sum it wrote, or the residual), and the weight gradient adds up in the
// block's row of partials in global memory, each thread on its own columns (no atomics).
#pragma once

#include <cstdint>

#include "device_helpers.cuh"

namespace cca::kernels {

inline constexpr int kWideElements = 16;  // per thread, kept in registers between the sweeps

// Sum over the block, the same value in every thread: each warp's sum, then the warps in order.
template <int kWarps>
__device__ __forceinline__ float block_sum(float v, float* partial) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) total += partial[w];
  __syncthreads();  // partial is reused by the next row
  return total;
}

// The thread's packs of a row of `count` packs: pack i of segment s is index(s, i) (elements
// kVec · index onwards), for i < kChunks, while that is below count.
template <int kVec, int kWarps>
struct WideRowPacks {
  static constexpr int kThreads = kWarps * 32, kChunks = kWideElements / kVec;
  static constexpr int kPerSegment = kThreads * kChunks;
  int count, segments;

  __device__ explicit WideRowPacks(int dim)
      : count(dim / kVec), segments((dim / kVec + kPerSegment - 1) / kPerSegment) {}
  __device__ int index(int segment, int i) const {
    return static_cast<int>(threadIdx.x) + kThreads * (i + kChunks * segment);
  }
};

template <typename T, int kVec, int kWarps>
__global__ void __launch_bounds__(kWarps * 32)
    add_rms_norm_forward_wide_kernel(const float* residual, const T* delta, const float* weight,
                                     float* sum, T* out, float* rstd, int64_t rows, int dim,
                                     float eps) {
  using Packs = WideRowPacks<kVec, kWarps>;
  constexpr int kChunks = Packs::kChunks;
  __shared__ float partial[kWarps];
  const Packs packs(dim);
  // h is re-read from here when it no longer fits in registers.
  const float* h_source = delta != nullptr ? sum : residual;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = r * dim;
    float h[kChunks][kVec];
    float squares = 0.0f;
    for (int s = 0; s < packs.segments; ++s) {
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        const int p = packs.index(s, i);
        if (p >= packs.count) continue;
        load_floats<float, kVec>(residual + base + kVec * p, h[i]);
        if (delta != nullptr) {
          float d[kVec];
          load_floats<T, kVec>(delta + base + kVec * p, d);
#pragma unroll
          for (int k = 0; k < kVec; ++k) h[i][k] += d[k];
          store_floats<float, kVec>(sum + base + kVec * p, h[i]);
        }
#pragma unroll
        for (int k = 0; k < kVec; ++k) squares += h[i][k] * h[i][k];
      }
    }
    const float scale = rsqrtf(block_sum<kWarps>(squares, partial) / dim + eps);
    for (int s = 0; s < packs.segments; ++s) {
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        const int p = packs.index(s, i);
        if (p >= packs.count) continue;
        if (packs.segments > 1) load_floats<float, kVec>(h_source + base + kVec * p, h[i]);
        float w[kVec], y[kVec];
        load_floats<float, kVec>(weight + kVec * p, w);
#pragma unroll
        for (int k = 0; k < kVec; ++k) y[k] = h[i][k] * scale * w[k];
        store_floats<T, kVec>(out + base + kVec * p, y);
      }
    }
    if (threadIdx.x == 0) rstd[r] = scale;
  }
}

// ĥ = h · rstd, g = dy · w and dy of pack p of a row.
template <typename T, int kVec>
__device__ __forceinline__ void load_backward_terms(const T* grad_out, const float* h,
                                                    const float* weight, int64_t base, int p,
                                                    float scale, float* normed, float* g,
                                                    float* dy) {
  float x[kVec], w[kVec];
  load_floats<float, kVec>(h + base + kVec * p, x);
  load_floats<T, kVec>(grad_out + base + kVec * p, dy);
  load_floats<float, kVec>(weight + kVec * p, w);
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    normed[k] = x[k] * scale;
    g[k] = dy[k] * w[k];
  }
}

// The warp-row backward's formulas: dh = rstd · (g − ĥ · mean(g · ĥ)) + grad_through;
// this block's rows' dw = Σ dy · ĥ goes to its row of weight_partials. ĥ and g stay in registers
// between the sweeps on 8 warps (E ≤ 4096); the 32-warp blocks read the row again (from L1/L2),
// which keeps them within their 64 registers a thread.
template <typename T, int kVec, int kWarps>
__global__ void __launch_bounds__(kWarps * 32)
    add_rms_norm_backward_wide_kernel(const T* grad_out, const float* h, const float* weight,
                                      const float* rstd, const float* grad_through, float* grad_sum,
                                      T* grad_delta, float* weight_partials, int64_t rows,
                                      int dim) {
  using Packs = WideRowPacks<kVec, kWarps>;
  constexpr int kChunks = Packs::kChunks;
  constexpr bool kKeep = kWarps <= 8;
  __shared__ float partial[kWarps];
  const Packs packs(dim);
  const bool one_segment = packs.segments == 1;  // dw in registers, else in block_dw
  float* block_dw = weight_partials + int64_t{blockIdx.x} * dim;
  float acc[kChunks][kVec] = {};
  if (!one_segment) {
    const float zeros[kVec] = {};
    for (int s = 0; s < packs.segments; ++s) {
      for (int i = 0; i < kChunks; ++i) {
        const int p = packs.index(s, i);
        if (p < packs.count) store_floats<float, kVec>(block_dw + kVec * p, zeros);
      }
    }
  }
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = r * dim;
    const float scale = rstd[r];
    float kept_normed[kChunks][kVec], kept_g[kChunks][kVec];  // used if kKeep
    float dot = 0.0f;
    for (int s = 0; s < packs.segments; ++s) {
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        const int p = packs.index(s, i);
        if (p >= packs.count) continue;
        float normed[kVec], g[kVec], dy[kVec], dw[kVec];
        load_backward_terms<T, kVec>(grad_out, h, weight, base, p, scale, normed, g, dy);
        if (!one_segment) load_floats<float, kVec>(block_dw + kVec * p, dw);
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          dot += g[k] * normed[k];
          if (one_segment) {
            acc[i][k] = acc[i][k] + dy[k] * normed[k];
          } else {
            dw[k] = dw[k] + dy[k] * normed[k];
          }
          if constexpr (kKeep) {
            kept_normed[i][k] = normed[k];
            kept_g[i][k] = g[k];
          }
        }
        if (!one_segment) store_floats<float, kVec>(block_dw + kVec * p, dw);
      }
    }
    const float mean_dot = block_sum<kWarps>(dot, partial) / dim;
    for (int s = 0; s < packs.segments; ++s) {
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        const int p = packs.index(s, i);
        if (p >= packs.count) continue;
        float normed[kVec], g[kVec], dy[kVec], dx[kVec];
        if (kKeep && one_segment) {
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            normed[k] = kept_normed[i][k];
            g[k] = kept_g[i][k];
          }
        } else {
          load_backward_terms<T, kVec>(grad_out, h, weight, base, p, scale, normed, g, dy);
        }
#pragma unroll
        for (int k = 0; k < kVec; ++k) dx[k] = scale * (g[k] - normed[k] * mean_dot);
        if (grad_through != nullptr) {
          float through[kVec];
          load_floats<float, kVec>(grad_through + base + kVec * p, through);
#pragma unroll
          for (int k = 0; k < kVec; ++k) dx[k] += through[k];
        }
        store_floats<float, kVec>(grad_sum + base + kVec * p, dx);
        if (grad_delta != nullptr) store_floats<T, kVec>(grad_delta + base + kVec * p, dx);
      }
    }
  }
  if (!one_segment) return;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int p = packs.index(0, i);
    if (p < packs.count) store_floats<float, kVec>(block_dw + kVec * p, acc[i]);
  }
}

}  // namespace cca::kernels
