// Pieces shared by the CCA prologue kernels alone: the causal depthwise conv of one channel, RoPE
// angles, the per-head d×d conv of a 64-row tile on tensor cores, and the launchers' dispatch
// and input checks. Generic helpers are in device_helpers.cuh.
#pragma once

#include <mma.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "cca_prologue.h"
#include "device_helpers.cuh"

namespace cca::kernels {

// Rows (tokens) per block in the tiled kernels, and threads per block.
inline constexpr int kTileRows = 64;
inline constexpr int kThreads = 256;
// Extra elements per shared-memory row: keeps WMMA pointers 32-byte aligned when a tap shifts
// the tile by one row, and spreads rows over banks.
inline constexpr int kTilePad = 16;
inline constexpr int kAccPad = 8;

// Everything a kernel needs to read z = [q⁰ ‖ k⁰] and the depthwise conv, by value.
template <typename T>
struct ConvSource {
  const T* q0;
  const T* k0;
  int64_t q_batch_stride, q_row_stride, k_batch_stride, k_row_stride;
  const T* history;             // [B, M, P] or null (zeros)
  const T* depthwise_taps;      // [M, k0], last tap = current token
  const float* depthwise_bias;  // [M]
  int seq, width_q, channels, pad, kernel_0;

  // z at time t (may be negative: the history, or zero) of channel c in batch b.
  __device__ __forceinline__ float z(int b, int t, int c) const {
    if (t < 0) {
      if (history == nullptr) return 0.f;
      return to_float(history[(static_cast<int64_t>(b) * channels + c) * pad + pad + t]);
    }
    if (c < width_q) return to_float(q0[b * q_batch_stride + t * q_row_stride + c]);
    return to_float(k0[b * k_batch_stride + t * k_row_stride + (c - width_q)]);
  }

  // u_t = b1 + Σ_τ a_τ z_{t-τ}, the depthwise conv output at time t (t >= -(k1-1)), in float.
  __device__ __forceinline__ float depthwise(int b, int t, int c) const {
    float acc = depthwise_bias[c];
    for (int lag = 0; lag < kernel_0; ++lag)
      acc += to_float(depthwise_taps[c * kernel_0 + kernel_0 - 1 - lag]) * z(b, t - lag, c);
    return acc;
  }
};

// cos/sin of position·θ^{-2p/r}: the angle in float64 (as the reference does), reduced to
// [-π, π] there, so float32 sincos stays exact to rounding at any position.
__device__ __forceinline__ void rope_angle(const double* inv_freq, int pair, int64_t position,
                                           float* cos_out, float* sin_out) {
  const double angle = static_cast<double>(position) * inv_freq[pair];
  const double two_pi = 6.283185307179586476925286766559;
  const double reduced = angle - two_pi * rint(angle * (1.0 / two_pi));
  sincosf(static_cast<float>(reduced), sin_out, cos_out);
}

// acc[r][i] = Σ_τ Σ_j W_τ[i][j] · tile[r + row_of(τ)][j] for a 64-row tile of one head, with
// row_of(τ) = τ (kLookAhead, the transposed conv of the backward pass, which also transposes
// W) or k1-1-τ (the causal forward conv). tile: shared, [64 + k1 - 1][D + kTilePad]; taps:
// global [k1][D][D] of this head; acc: shared, [64][D + kAccPad] float. The caller syncs before.
// 8 warps: 2 row groups of 32 rows × 4 column groups of D/4 columns.
template <typename T, int D, bool kLookAhead>
__device__ void grouped_conv_tile_mma(const T* tile, const T* taps, int k1, float* acc) {
  using namespace nvcuda;
  constexpr int kCols = D / 64;  // 16-wide column tiles per warp
  constexpr int ld = D + kTilePad;
  using BLayout = typename std::conditional<kLookAhead, wmma::row_major, wmma::col_major>::type;
  const int warp = threadIdx.x / 32, row_group = warp & 1, col_group = warp >> 1;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[2][kCols];
  for (int s = 0; s < 2; ++s)
    for (int n = 0; n < kCols; ++n) wmma::fill_fragment(c[s][n], 0.f);
  for (int tap = 0; tap < k1; ++tap) {
    const int shift = kLookAhead ? tap : k1 - 1 - tap;
    const T* w = taps + static_cast<int64_t>(tap) * D * D;
#pragma unroll 2
    for (int k = 0; k < D; k += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
      for (int s = 0; s < 2; ++s)
        wmma::load_matrix_sync(a[s], tile + (row_group * 32 + s * 16 + shift) * ld + k, ld);
#pragma unroll
      for (int n = 0; n < kCols; ++n) {
        const int col = (col_group * kCols + n) * 16;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, BLayout> bfrag;
        // Forward: B[k=j][n=i] = W[i][j] (column-major, ld D). Backward: B[k=i][n=j] = W[i][j].
        wmma::load_matrix_sync(bfrag, kLookAhead ? w + k * D + col : w + col * D + k, D);
        for (int s = 0; s < 2; ++s) wmma::mma_sync(c[s][n], a[s], bfrag, c[s][n]);
      }
    }
  }
  __syncthreads();  // acc may alias the tile
  for (int s = 0; s < 2; ++s)
    for (int n = 0; n < kCols; ++n)
      wmma::store_matrix_sync(
          acc + (row_group * 32 + s * 16) * (D + kAccPad) + (col_group * kCols + n) * 16, c[s][n],
          D + kAccPad, wmma::mem_row_major);
}

// The same contraction with plain FMAs, for float32 (no 16-bit tensor-core path) — exact.
template <typename T, int D, bool kLookAhead>
__device__ void grouped_conv_tile_fma(const T* tile, const T* taps, int k1, float* acc) {
  constexpr int ld = D + kTilePad;
  float results[kTileRows * D / kThreads];
  int slot = 0;
  for (int e = threadIdx.x; e < kTileRows * D; e += kThreads, ++slot) {
    const int r = e / D, i = e % D;
    float sum = 0.f;
    for (int tap = 0; tap < k1; ++tap) {
      const int shift = kLookAhead ? tap : k1 - 1 - tap;
      const T* w = taps + static_cast<int64_t>(tap) * D * D;
      const T* row = tile + (r + shift) * ld;
      for (int j = 0; j < D; ++j) {
        const float wij = kLookAhead ? to_float(w[j * D + i]) : to_float(w[i * D + j]);
        sum += wij * to_float(row[j]);
      }
    }
    results[slot] = sum;
  }
  __syncthreads();  // acc may alias the tile
  slot = 0;
  for (int e = threadIdx.x; e < kTileRows * D; e += kThreads, ++slot)
    acc[(e / D) * (D + kAccPad) + e % D] = results[slot];
}

template <typename T, int D, bool kLookAhead>
__device__ __forceinline__ void grouped_conv_tile(const T* tile, const T* taps, int k1,
                                                  float* acc) {
  if constexpr (std::is_same<T, float>::value) {
    grouped_conv_tile_fma<T, D, kLookAhead>(tile, taps, k1, acc);
  } else {
    grouped_conv_tile_mma<T, D, kLookAhead>(tile, taps, k1, acc);
  }
}

// Shared memory of a tiled conv kernel: the input tile, then (aliased) the float accumulators.
template <typename T, int D>
constexpr size_t conv_tile_smem_bytes() {
  const size_t tile = (kTileRows + 16) * (D + kTilePad) * sizeof(T);
  const size_t acc = kTileRows * (D + kAccPad) * sizeof(float);
  return tile > acc ? tile : acc;
}

// Calls f.template operator()<T, D>() for the input dtype and head dim.
template <typename F>
void dispatch_dtype_and_dim(at::ScalarType dtype, int64_t head_dim, F&& f) {
  auto with_dim = [&](auto tag) {
    using T = decltype(tag);
    switch (head_dim) {
      case 64:
        f.template operator()<T, 64>();
        return;
      case 128:
        f.template operator()<T, 128>();
        return;
      case 256:
        f.template operator()<T, 256>();
        return;
      default:
        TORCH_CHECK(false, "cca kernels: head_dim must be 64, 128 or 256, got ", head_dim);
    }
  };
  dispatch_float_dtype(dtype, "cca kernels", with_dim);
}

template <typename T>
ConvSource<T> conv_source(const CcaPrologueShape& sh, const CcaPrologueInputs& in) {
  ConvSource<T> s{};
  s.q0 = ptr<T>(in.q0);
  s.k0 = ptr<T>(in.k0);
  s.q_batch_stride = in.q0.stride(0);
  s.q_row_stride = in.q0.stride(1);
  s.k_batch_stride = in.k0.stride(0);
  s.k_row_stride = in.k0.stride(1);
  s.history = sh.convs > 0 ? ptr<T>(in.conv_history) : nullptr;
  s.depthwise_taps = sh.convs > 0 ? ptr<T>(in.depthwise_taps) : nullptr;
  s.depthwise_bias = sh.convs > 0 ? in.depthwise_bias.data_ptr<float>() : nullptr;
  s.seq = static_cast<int>(sh.seq);
  s.width_q = static_cast<int>(sh.n_q * sh.head_dim);
  s.channels = static_cast<int>(sh.channels());
  s.pad = static_cast<int>(sh.pad());
  s.kernel_0 = static_cast<int>(sh.kernel_0);
  return s;
}

// Documents come with a fresh sequence and a position for every token.
inline void check_documents(const CcaPrologueShape& sh, const CcaPrologueInputs& in) {
  const at::Tensor& pos = in.documents.positions;
  TORCH_CHECK(pos.scalar_type() == at::kInt && pos.is_contiguous() &&
                  pos.sizes() == at::IntArrayRef({sh.batch, sh.seq}) &&
                  pos.device() == in.q0.device(),
              "cca kernels: documents.positions must be a contiguous int32 [", sh.batch, ", ",
              sh.seq, "] tensor on ", in.q0.device(), ", got ", pos.scalar_type(), " ", pos.sizes(),
              " on ", pos.device());
  TORCH_CHECK(!in.conv_history.defined() && !in.shift_previous.defined() && sh.offset == 0,
              "cca kernels: documents need a fresh sequence (no conv history, carried value or "
              "position offset)");
  TORCH_CHECK(
      sh.batch * sh.seq + sh.grouped_lag() * in.documents.count < std::numeric_limits<int>::max(),
      "cca kernels: ", sh.batch * sh.seq, " tokens in ", in.documents.count,
      " documents exceed a 32-bit token index");
}

// The checks every launcher makes on the shared inputs.
inline void check_inputs(const CcaPrologueShape& sh, const CcaPrologueInputs& in) {
  TORCH_CHECK(in.q0.is_cuda() && in.k0.is_cuda(), "cca kernels need CUDA tensors");
  TORCH_CHECK(in.q0.stride(2) == 1 && in.k0.stride(2) == 1, "q0/k0 need a contiguous last dim");
  TORCH_CHECK(in.k0.scalar_type() == in.q0.scalar_type(), "q0 and k0 differ in dtype");
  TORCH_CHECK(sh.n_q % sh.n_kv == 0, "n_q must be a multiple of n_kv");
  TORCH_CHECK(sh.kernel_0 >= 1 && sh.kernel_0 <= 4 && sh.kernel_1 >= 1 && sh.kernel_1 <= 4,
              "cca kernels: conv kernel sizes 1..4");
  TORCH_CHECK(sh.rope_dim % 2 == 0 && sh.rope_dim <= sh.head_dim, "bad rope_dim");
  const std::string problem = cca_launch_problem(sh);
  TORCH_CHECK(problem.empty(), "cca kernels: ", problem);
  if (sh.convs > 0) {
    TORCH_CHECK(in.depthwise_taps.is_contiguous() && in.depthwise_bias.scalar_type() == at::kFloat,
                "depthwise taps must be contiguous, biases float32");
  }
  if (sh.convs == 2) {
    TORCH_CHECK(in.grouped_taps.is_contiguous() && in.grouped_bias.scalar_type() == at::kFloat,
                "grouped taps must be contiguous, biases float32");
  }
  if (in.documents.defined()) check_documents(sh, in);
}

}  // namespace cca::kernels
