// Backward of the fused CCA prologue, in three kernels and k1 matrix products:
//   1. norm_backward, one block per token row: undoes RoPE, the norm·√d·τ and the q-k mean for
//      all heads of the row (the mean couples heads), giving g_s, the q-k mean's share of g_z,
//      the temperature's per-row partials and the value-shift split; it also recomputes the
//      depthwise output u, which the grouped conv's weight gradient needs;
//   2. conv_transpose, tiled like the forward: g_u_t = Σ_τ A_τᵀ g_s_{t+τ} on tensor cores;
//   3. depthwise_backward, one thread per channel over a chunk of rows: g_z and the depthwise
//      weight / bias partials.
// The grouped conv's weight gradient is Σ_t g_s_t ⊗ u_{t-τ}, a matrix product with the token
// count as its inner dimension (cuBLAS, fp32 out). Rows are kept per sequence with k1-1 leading
// rows (u at t < 0 is the depthwise bias, spec §2.2 step 2), so one flat product per tap never
// mixes sequences: g_s is zero on those leading rows. Partials are summed in a fixed order.
// With packed documents and a grouped conv that looks back, every document gets k1-1 leading rows
// of its own in one flat run of rows, so the same products never mix documents either: a tap
// before a document reads the depthwise bias there, and the gradient through it reaches the bias.
// The depthwise taps, the value shift and RoPE read the tokens' positions in their documents.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "cca_common.cuh"

namespace cca::kernels {
namespace {

template <typename T>
struct BackwardParams {
  ConvSource<T> src;
  const T* s;       // kept conv output [B,S,M] (null when convs = 0: s = z)
  const T* grad_q;  // [B,S,n_q,d]
  const T* grad_k;  // [B,S,n_k,d]
  const T* grad_v;  // [B,S,n_k,d] or null
  const float* key_multiplier;
  const double* inv_freq;
  const T* taps_by_lag;  // depthwise taps as [k0][M]: one coalesced row per lag
  T* u_padded;           // [runs, rows, M] (PaddedRows) or null
  T* gs_padded;          // [runs, rows, M] or null (convs = 0)
  float* grad_mean;      // [B,S,M] or null
  float* temp_partials;  // [B·S, n_k]
  T* grad_q0;            // [B,S,W_q]
  T* grad_k0;            // [B,S,W_k]
  T* grad_vc;            // [B,S,W_k/2] or null
  T* grad_vd;
  const int* doc_positions;  // [B·S] index of each token in its document, or null
  // Documents with a grouped lag: padded row -> flat token b·S + t, or -1 for a document's
  // leading row (the padded rows are then one run, grid.y = 1). Null otherwise.
  const int* row_token;
  int n_q, n_kv, convs, lag, rope_dim;
  bool qk_mean, reset_positions;
  int64_t offset;
};

// Row t of z (channels [c, c + N)) as floats, as N-wide vector loads; zeros before the sequence.
template <typename T, int N>
__device__ __forceinline__ void load_z(const ConvSource<T>& s, int b, int t, int c, float* out) {
  if (t < 0) {
    for (int k = 0; k < N; ++k) out[k] = 0.f;
  } else if (c < s.width_q) {
    load_floats<T, N>(s.q0 + b * s.q_batch_stride + t * s.q_row_stride + c, out);
  } else {
    load_floats<T, N>(s.k0 + b * s.k_batch_stride + t * s.k_row_stride + c - s.width_q, out);
  }
}

// N floats as 16-byte stores (scalar stores of 8 consecutive floats per thread conflict 8-way).
template <int N>
__device__ __forceinline__ void store_to_shared(float* dst, const float* v) {
#pragma unroll
  for (int k = 0; k < N; k += 4)
    *reinterpret_cast<float4*>(dst + k) = make_float4(v[k], v[k + 1], v[k + 2], v[k + 3]);
}

// x = s + m and the incoming gradient of one token row into shared memory, 8 channels a thread.
template <typename T, int D>
__device__ void load_row(const BackwardParams<T>& p, int b, int t, float* x, float* g) {
  constexpr int kVec = 16 / sizeof(T);
  const int M = p.src.channels, group = p.n_q / p.n_kv, width_q = p.src.width_q;
  const int64_t row = static_cast<int64_t>(b) * p.src.seq + t;
  for (int c = threadIdx.x * kVec; c < M; c += blockDim.x * kVec) {
    const int head = c / D, i = c % D;
    float s[kVec], grad[kVec];
    if (p.s != nullptr) {
      load_floats<T, kVec>(p.s + row * M + c, s);
    } else {
      load_z<T, kVec>(p.src, b, t, c, s);
    }
    if (c < width_q) {
      load_floats<T, kVec>(p.grad_q + row * width_q + c, grad);
    } else {
      load_floats<T, kVec>(p.grad_k + row * (M - width_q) + c - width_q, grad);
    }
    if (p.qk_mean) {
      float own[kVec], other[kVec] = {};
      load_z<T, kVec>(p.src, b, t, c, own);
      if (head < p.n_q) {
        load_z<T, kVec>(p.src, b, t, width_q + head / group * D + i, other);
      } else {
        for (int h = (head - p.n_q) * group; h < (head - p.n_q + 1) * group; ++h) {
          float q[kVec];
          load_z<T, kVec>(p.src, b, t, h * D + i, q);
          for (int k = 0; k < kVec; ++k) other[k] += q[k];
        }
      }
      for (int k = 0; k < kVec; ++k)
        s[k] += head < p.n_q ? 0.5f * (own[k] + other[k]) : 0.5f * (other[k] / group + own[k]);
    }
    store_to_shared<kVec>(x + c, s);
    store_to_shared<kVec>(g + c, grad);
  }
}

// One head by one warp: g (in place) becomes the gradient of x = q̃ or k̃.
template <typename T, int D>
__device__ void head_backward(const BackwardParams<T>& p, int b, int t, int64_t position, int head,
                              const float* x, float* g) {
  constexpr int kPerLane = D / 32;
  const int lane = threadIdx.x % 32, half = p.rope_dim / 2;
  float gy[kPerLane], xv[kPerLane];
  float sum_sq = 0.f, dot = 0.f;
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) {
    const int i = lane + 32 * e;
    float v = g[i];
    if (i < p.rope_dim) {  // RoPE is a rotation: its backward rotates back
      float cos_a, sin_a;
      rope_angle(p.inv_freq, i < half ? i : i - half, position, &cos_a, &sin_a);
      v = i < half ? v * cos_a + g[i + half] * sin_a : v * cos_a - g[i - half] * sin_a;
    }
    gy[e] = v;
    xv[e] = x[i];
    sum_sq += xv[e] * xv[e];
    dot += v * xv[e];
  }
  sum_sq = warp_sum(sum_sq);
  dot = warp_sum(dot);
  const float rn = rsqrtf(sum_sq + 1e-12f), root_d = sqrtf(static_cast<float>(D));
  float multiplier = 1.f;
  if (head >= p.n_q) {
    multiplier = p.key_multiplier[head - p.n_q];
    if (lane == 0) {
      p.temp_partials[(static_cast<int64_t>(b) * p.src.seq + t) * p.n_kv + head - p.n_q] =
          root_d * rn * dot;
    }
  }
  // y = τ√d·x·rn with rn = (‖x‖² + ε)^-½:  g_x = τ√d·(rn·g_y − rn³·(g_y·x)·x).
  const float a = multiplier * root_d * rn, bcoef = multiplier * root_d * rn * rn * rn * dot;
  __syncwarp();
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) g[lane + 32 * e] = a * gy[e] - bcoef * xv[e];
}

// The q-k mean's share of g_z for channels [c, c + N) of one head (spec §2.2 step 3,
// differentiated); zero without the mean. g: the row's gradient after head_backward.
template <int D, int N, typename P>
__device__ __forceinline__ void qk_mean_gradient(const P& p, int c, const float* g, float* mean) {
  for (int k = 0; k < N; ++k) mean[k] = 0.f;
  if (!p.qk_mean) return;
  const int head = c / D, i = c % D, group = p.n_q / p.n_kv, width_q = p.src.width_q;
  if (head < p.n_q) {
    const float* partner = g + width_q + head / group * D + i;
    for (int k = 0; k < N; ++k) mean[k] = 0.5f * g[c + k] + 0.5f / group * partner[k];
    return;
  }
  const int j = head - p.n_q;
  for (int h = j * group; h < (j + 1) * group; ++h)
    for (int k = 0; k < N; ++k) mean[k] += g[h * D + i + k];
  for (int k = 0; k < N; ++k) mean[k] = 0.5f * mean[k] + 0.5f * g[c + k];
}

// One vector of channels per thread, whole warps, 64 to 256 threads: the kernel is bound by the
// latency of its few dependent loads per row, so small blocks let an SM keep 4x more rows in flight
// than 256-thread blocks would (at most 32 blocks per SM on Hopper).
template <typename T>
int norm_backward_threads(int64_t channels) {
  const int64_t vectors = (channels * static_cast<int64_t>(sizeof(T)) + 15) / 16;
  return static_cast<int>(std::clamp<int64_t>((vectors + 31) / 32 * 32, 64, kThreads));
}

// kDocuments (as the depthwise kernel's): an instantiation of its own, so that without documents
// the kernel is the one it was before documents, registers included.
template <typename T, int D, bool kDocuments>
__global__ void __launch_bounds__(kThreads) norm_backward_kernel(BackwardParams<T> p) {
  extern __shared__ __align__(16) float row_smem[];
  const int M = p.src.channels, width_q = p.src.width_q, rows = p.src.seq + p.lag;
  const int R = blockIdx.x;
  int b = blockIdx.y, t = R - p.lag;
  int64_t padded_row = static_cast<int64_t>(b) * rows + R;
  int reach = p.src.kernel_0 - 1;  // how far back the depthwise taps read
  int64_t position = p.offset + t;
  if constexpr (kDocuments) {
    if (p.row_token != nullptr) {  // documents' own leading rows: t = -1 there
      const int token = p.row_token[R];
      padded_row = R;
      b = token < 0 ? 0 : token / p.src.seq;
      t = token < 0 ? -1 : token % p.src.seq;
    }
    if (t >= 0) {
      const int in_document = p.doc_positions[static_cast<int64_t>(b) * p.src.seq + t];
      reach = min(reach, in_document);
      position = p.reset_positions ? in_document : p.offset + t;
    }
  }
  if (p.u_padded != nullptr) {  // u_t = b1 + Σ_τ a_τ z_{t-τ}, recomputed for the weight gradient
    constexpr int kVec = 16 / sizeof(T);
    const int k0 = p.src.kernel_0;
    for (int c = threadIdx.x * kVec; c < M; c += blockDim.x * kVec) {
      float u[kVec], z[kVec], tap[kVec];
#pragma unroll
      for (int k = 0; k < kVec; k += 4) load_floats<float, 4>(p.src.depthwise_bias + c + k, u + k);
      for (int lag = 0; lag <= reach; ++lag) {
        load_z<T, kVec>(p.src, b, t - lag, c, z);
        load_floats<T, kVec>(p.taps_by_lag + (k0 - 1 - lag) * M + c, tap);
#pragma unroll
        for (int k = 0; k < kVec; ++k) u[k] += tap[k] * z[k];
      }
      store_floats<T, kVec>(p.u_padded + padded_row * M + c, u);
    }
  }
  if (t < 0) {  // a leading row: no token, zero g_s (u above is the bias there)
    constexpr int kVec = 16 / sizeof(T);
    const float zeros[kVec] = {};
    for (int c = threadIdx.x * kVec; c < M; c += blockDim.x * kVec)
      store_floats<T, kVec>(p.gs_padded + padded_row * M + c, zeros);
    return;
  }
  float* x = row_smem;
  float* g = row_smem + M;
  load_row<T, D>(p, b, t, x, g);
  __syncthreads();
  for (int head = threadIdx.x / 32; head < p.n_q + p.n_kv; head += blockDim.x / 32)
    head_backward<T, D>(p, b, t, position, head, x + head * D, g + head * D);
  __syncthreads();
  const int64_t row = static_cast<int64_t>(b) * p.src.seq + t;
  constexpr int kVec = 16 / sizeof(T);
  for (int c = threadIdx.x * kVec; c < M; c += blockDim.x * kVec) {
    float own[kVec], mean[kVec];
    for (int k = 0; k < kVec; ++k) own[k] = g[c + k];
    qk_mean_gradient<D, kVec>(p, c, g, mean);
    if (p.convs == 0) {  // s = z: the whole g_z is known here
      for (int k = 0; k < kVec; ++k) own[k] += mean[k];
      if (c < width_q)
        store_floats<T, kVec>(p.grad_q0 + row * width_q + c, own);
      else
        store_floats<T, kVec>(p.grad_k0 + row * (M - width_q) + c - width_q, own);
    } else {
      store_floats<T, kVec>(p.gs_padded + padded_row * M + c, own);
      if (p.grad_mean != nullptr) store_floats<float, kVec>(p.grad_mean + row * M + c, mean);
    }
  }
  if (p.grad_v != nullptr) {  // ṽ = [v_cur_t ‖ v_del_{t-1}]: route the halves back
    const int width_k = M - width_q, half = width_k / 2;
    using Vec = Pack<T, kVec>;
    for (int c = threadIdx.x * kVec; c < half; c += blockDim.x * kVec) {
      *reinterpret_cast<Vec*>(p.grad_vc + row * half + c) =
          *reinterpret_cast<const Vec*>(p.grad_v + row * width_k + c);
      Vec delayed{};  // zero where the next token starts a document
      if (t + 1 < p.src.seq && (!kDocuments || p.doc_positions[row + 1] != 0))
        delayed = *reinterpret_cast<const Vec*>(p.grad_v + (row + 1) * width_k + half + c);
      *reinterpret_cast<Vec*>(p.grad_vd + row * half + c) = delayed;
    }
  }
}

// g_u for 64 padded rows of one head: g_u_{t'} = Σ_τ A_τᵀ g_s_{t'+τ}.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    conv_transpose_kernel(const T* gs_padded, const T* grouped_taps, T* gu_padded, int rows,
                          int channels, int k1) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* tile = reinterpret_cast<T*>(smem);
  float* acc = reinterpret_cast<float*>(smem);
  const int r0 = blockIdx.x * kTileRows, head = blockIdx.y, b = blockIdx.z;
  const int64_t base = static_cast<int64_t>(b) * rows;
  constexpr int kVec = 16 / sizeof(T), kVecs = D / kVec;
#pragma unroll 4
  for (int e = threadIdx.x; e < (kTileRows + k1 - 1) * kVecs; e += kThreads) {
    const int r = e / kVecs, i = e % kVecs * kVec;
    Pack<T, kVec> val;
    if (r0 + r < rows) {
      val = *reinterpret_cast<const Pack<T, kVec>*>(gs_padded + (base + r0 + r) * channels +
                                                    head * D + i);
    } else {
      for (int k = 0; k < kVec; ++k) val.v[k] = from_float<T>(0.f);
    }
    *reinterpret_cast<Pack<T, kVec>*>(tile + r * (D + kTilePad) + i) = val;
  }
  __syncthreads();
  grouped_conv_tile<T, D, true>(tile, grouped_taps + static_cast<int64_t>(head) * k1 * D * D, k1,
                                acc);
  __syncthreads();
  for (int e = threadIdx.x; e < kTileRows * D; e += kThreads) {
    const int r = e / D, i = e % D;
    if (r0 + r < rows)
      gu_padded[(base + r0 + r) * channels + head * D + i] =
          from_float<T>(acc[r * (D + kAccPad) + i]);
  }
}

inline constexpr int kDepthwiseRows = 16;
inline constexpr int64_t kMaxGridYZ = 65535;

// One thread per channel over 16 padded rows (short chunks: more threads in flight): g_z =
// Σ_τ a_τ g_u_{t+τ} + the mean's share, and this chunk's partial sums of the depthwise weight
// (by kernel index) and bias gradients. Documents: a tap reaches no further back than its
// token's document, and g_z gathers only from the same document.
template <typename T, bool kDocuments>
__device__ __forceinline__ void depthwise_chunk(const BackwardParams<T>& p, const T* gu_padded,
                                                float* partials, int rows, int chunks, int chunk,
                                                int c, const float* tap) {
  const int b = blockIdx.z, M = p.src.channels, k0 = p.src.kernel_0, S = p.src.seq;
  float weight_sum[4] = {0.f, 0.f, 0.f, 0.f}, bias_sum = 0.f;
  const int64_t base = static_cast<int64_t>(b) * rows;
  const int end = min(rows, (chunk + 1) * kDepthwiseRows);
  for (int R = chunk * kDepthwiseRows; R < end; ++R) {
    const float gu = to_float(gu_padded[(base + R) * M + c]);
    bias_sum += gu;
    int tb = b, t = R - p.lag, reach = 3, in_document = 0;  // the token's row, time, taps' reach
    if constexpr (kDocuments) {
      if (p.row_token != nullptr) {
        const int token = p.row_token[R];
        if (token < 0) continue;  // a document's leading row: z is zero there
        tb = token / S;
        t = token % S;
      }
      if (t >= 0) reach = in_document = p.doc_positions[static_cast<int64_t>(tb) * S + t];
    }
#pragma unroll
    for (int lag = 0; lag < 4; ++lag)  // constant bounds keep weight_sum in registers
      if (lag < k0 && lag <= reach) weight_sum[lag] += gu * p.src.z(tb, t - lag, c);
    if (t < 0) continue;
    const int64_t row = static_cast<int64_t>(tb) * S + t;
    float gz = 0.f;
#pragma unroll
    for (int lag = 0; lag < 4; ++lag) {
      if (lag >= k0 || t + lag >= S) continue;
      if (kDocuments && p.doc_positions[row + lag] != in_document + lag)
        continue;  // token t + lag is in a later document
      gz += tap[lag] * to_float(gu_padded[(base + R + lag) * M + c]);
    }
    if (p.grad_mean != nullptr) gz += p.grad_mean[row * M + c];
    const int width_q = p.src.width_q;
    if (c < width_q)
      p.grad_q0[row * width_q + c] = from_float<T>(gz);
    else
      p.grad_k0[row * (M - width_q) + c - width_q] = from_float<T>(gz);
  }
  float* out = partials + (static_cast<int64_t>(b) * chunks + chunk) * (k0 + 1) * M;
#pragma unroll
  for (int lag = 0; lag < 4; ++lag)
    if (lag < k0) out[(k0 - 1 - lag) * M + c] = weight_sum[lag];
  out[k0 * M + c] = bias_sum;
}

// Without documents chunk = blockIdx.y (the launch problem keeps the chunks within grid.y); with
// them a block takes chunks blockIdx.y, + gridDim.y, ... (one run of all tokens may need more).
template <typename T, bool kDocuments>
__global__ void depthwise_backward_kernel(BackwardParams<T> p, const T* gu_padded, float* partials,
                                          int rows, int chunks) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x, k0 = p.src.kernel_0;
  if (c >= p.src.channels) return;
  float tap[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int lag = 0; lag < 4; ++lag)
    if (lag < k0) tap[lag] = to_float(p.taps_by_lag[(k0 - 1 - lag) * p.src.channels + c]);
  if constexpr (kDocuments) {
    for (int chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y)
      depthwise_chunk<T, true>(p, gu_padded, partials, rows, chunks, chunk, c, tap);
  } else {
    depthwise_chunk<T, false>(p, gu_padded, partials, rows, chunks, blockIdx.y, c, tap);
  }
}

// Where the rows of g_s, u and g_u lie: `runs` runs of `rows` rows each. Without documents (or
// without a grouped lag) one run per sequence of S + lag rows; with documents and a lag one run
// of all B·S tokens plus lag leading rows per document, token b·S + t at row b·S + t +
// lag·(id + 1), and `row_token` the way back (-1 on leading rows).
struct PaddedRows {
  int64_t runs, rows;
  at::Tensor row_token;  // int32 [rows], or undefined
};

PaddedRows padded_rows(const CcaPrologueShape& sh, const CcaDocumentLayout& documents) {
  const int64_t lag = sh.grouped_lag(), tokens = sh.batch * sh.seq;
  if (!documents.defined() || lag == 0) return {sh.batch, sh.seq + lag, {}};
  const auto on_device = documents.positions.options();
  TORCH_CHECK(documents.ids.defined() && documents.ids.numel() == tokens && documents.count > 0,
              "cca backward: documents need ids [", sh.batch, ", ", sh.seq,
              "] and their count, got ", documents.ids.sizes(), " and ", documents.count);
  const at::Tensor token = at::arange(tokens, on_device.dtype(at::kLong));
  const at::Tensor row =
      token + (documents.ids.reshape({-1}).to(on_device.dtype(at::kLong)) + 1) * lag;
  const int64_t rows = tokens + lag * documents.count;
  at::Tensor row_token = at::full({rows}, -1, on_device.dtype(at::kInt));
  row_token.index_put_({row}, token.to(at::kInt));
  return {1, rows, row_token};
}

struct BackwardLaunch {
  const CcaPrologueShape& sh;
  const CcaPrologueInputs& in;
  const at::Tensor& s;
  const at::Tensor& grad_q;
  const at::Tensor& grad_k;
  const at::Tensor& grad_v;
  CcaPrologueGrads& out;

  template <typename T, int D>
  void operator()() const {
    const auto stream = at::cuda::getCurrentCUDAStream();
    const int64_t B = sh.batch, S = sh.seq, M = sh.channels(), lag = sh.grouped_lag();
    const PaddedRows layout = padded_rows(sh, in.documents);
    const int64_t runs = layout.runs, rows = layout.rows, G = sh.heads();
    const auto opts = in.q0.options();
    at::Tensor gs = sh.convs > 0 ? at::empty({runs, rows, M}, opts) : at::Tensor();
    at::Tensor u = sh.convs == 2 ? at::empty({runs, rows, M}, opts) : at::Tensor();
    at::Tensor grad_mean =
        sh.convs > 0 && sh.qk_mean ? at::empty({B, S, M}, opts.dtype(at::kFloat)) : at::Tensor();
    at::Tensor temp_partials = at::zeros({B * S, sh.n_kv}, opts.dtype(at::kFloat));

    BackwardParams<T> p{};
    p.src = conv_source<T>(sh, in);
    p.src.history = nullptr;  // the backward serves fresh sequences only
    p.s = sh.convs > 0 ? ptr<T>(s) : nullptr;
    p.grad_q = ptr<T>(grad_q);
    p.grad_k = ptr<T>(grad_k);
    p.grad_v = ptr<T>(grad_v);
    p.key_multiplier = in.key_multiplier.data_ptr<float>();
    p.inv_freq = sh.rope_dim > 0 ? in.inv_freq.data_ptr<double>() : nullptr;
    const at::Tensor taps_by_lag =
        sh.convs > 0 ? in.depthwise_taps.t().contiguous() : at::Tensor();  // [M,k0] → [k0,M]
    p.taps_by_lag = ptr<T>(taps_by_lag);
    const at::Tensor bias = sh.convs > 0 ? aligned_contiguous(in.depthwise_bias, 16) : at::Tensor();
    if (bias.defined()) p.src.depthwise_bias = bias.data_ptr<float>();  // read as 16-byte vectors
    p.u_padded = mutable_ptr<T>(u);
    p.gs_padded = mutable_ptr<T>(gs);
    p.grad_mean = grad_mean.defined() ? grad_mean.data_ptr<float>() : nullptr;
    p.temp_partials = temp_partials.data_ptr<float>();
    p.grad_q0 = mutable_ptr<T>(out.q0);
    p.grad_k0 = mutable_ptr<T>(out.k0);
    p.grad_vc = mutable_ptr<T>(out.v_current);
    p.grad_vd = mutable_ptr<T>(out.v_delayed);
    p.n_q = static_cast<int>(sh.n_q);
    p.n_kv = static_cast<int>(sh.n_kv);
    p.convs = static_cast<int>(sh.convs);
    p.lag = static_cast<int>(lag);
    p.rope_dim = static_cast<int>(sh.rope_dim);
    p.qk_mean = sh.qk_mean;
    p.offset = sh.offset;
    if (in.documents.defined()) {
      p.doc_positions = in.documents.positions.data_ptr<int>();
      p.reset_positions = in.documents.reset_positions;
      if (layout.row_token.defined()) p.row_token = layout.row_token.data_ptr<int>();
    }

    const size_t row_smem = 2 * M * sizeof(float);
    TORCH_CHECK(row_smem <= 227 * 1024, "cca backward: a token's ", M, " channels need ", row_smem,
                " bytes of shared memory (at most 232448)");
    const auto norm_kernel = in.documents.defined() ? norm_backward_kernel<T, D, true>
                                                    : norm_backward_kernel<T, D, false>;
    C10_CUDA_CHECK(
        cudaFuncSetAttribute(norm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, row_smem));
    launch_checked(norm_kernel, dim3(rows, runs), norm_backward_threads<T>(M), row_smem, stream, p);
    out.key_multiplier = temp_partials.sum(0);
    if (sh.convs == 0) return;

    at::Tensor gu = gs;
    if (sh.convs == 2) {
      gu = at::empty({runs, rows, M}, opts);
      constexpr size_t smem = conv_tile_smem_bytes<T, D>();
      C10_CUDA_CHECK(cudaFuncSetAttribute(conv_transpose_kernel<T, D>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
      const dim3 grid((rows + kTileRows - 1) / kTileRows, G, runs);
      launch_checked(conv_transpose_kernel<T, D>, grid, kThreads, smem, stream, ptr<T>(gs),
                     ptr<T>(in.grouped_taps), mutable_ptr<T>(gu), static_cast<int>(rows),
                     static_cast<int>(M), static_cast<int>(sh.kernel_1));
      // g_A_τ[i][j] = Σ_rows g_s[row][i] · u[row - τ][j], per head; g_s is zero on each
      // sequence's (document's) leading rows, so the flat shift never pairs rows of two of them.
      const int64_t N = runs * rows;
      const at::Tensor gs_flat = gs.view({N, M}), u_flat = u.view({N, M});
      std::vector<at::Tensor> taps;
      for (int64_t tap = 0; tap < sh.kernel_1; ++tap) {
        const at::Tensor lhs =
            gs_flat.narrow(0, tap, N - tap).view({N - tap, G, D}).permute({1, 2, 0});
        const at::Tensor rhs =
            u_flat.narrow(0, 0, N - tap).view({N - tap, G, D}).permute({1, 0, 2});
        taps.push_back(at::bmm(lhs, rhs, at::kFloat));
      }
      out.grouped_taps = at::stack(taps, 1);  // [G, k1, d, d]
      out.grouped_bias = at::sum(gs_flat, {0}, false, at::kFloat);
    }
    const int chunks = static_cast<int>((rows + kDepthwiseRows - 1) / kDepthwiseRows);
    at::Tensor partials = at::empty({runs * chunks, sh.kernel_0 + 1, M}, opts.dtype(at::kFloat));
    const dim3 grid((M + 255) / 256, std::min<int64_t>(chunks, kMaxGridYZ), runs);
    const auto depthwise_kernel = in.documents.defined() ? depthwise_backward_kernel<T, true>
                                                         : depthwise_backward_kernel<T, false>;
    launch_checked(depthwise_kernel, grid, 256, 0, stream, p, ptr<T>(gu),
                   partials.data_ptr<float>(), static_cast<int>(rows), chunks);
    const at::Tensor sums = partials.sum(0);  // [k0 + 1, M]
    out.depthwise_taps = sums.narrow(0, 0, sh.kernel_0).t().contiguous();
    out.depthwise_bias = sums.select(0, sh.kernel_0).contiguous();
  }
};

// Contiguous and 16-byte aligned (the kernels read rows as vectors), or zeros when undefined.
at::Tensor contiguous_or_zeros(const at::Tensor& t, at::IntArrayRef sizes,
                               const at::TensorOptions& opts) {
  return t.defined() ? aligned_contiguous(t, 16) : at::zeros(sizes, opts);
}

}  // namespace

std::string cca_launch_problem(const CcaPrologueShape& sh) {
  const int64_t chunks = (sh.seq + sh.grouped_lag() + kDepthwiseRows - 1) / kDepthwiseRows;
  const auto too_many = [](const char* what, int64_t value, const char* where) {
    return std::string(what) + " " + std::to_string(value) + " exceeds CUDA's " +
           std::to_string(kMaxGridYZ) + " blocks in " + where;
  };
  if (sh.batch > kMaxGridYZ) return too_many("batch", sh.batch, "grid.z");
  if (sh.heads() > kMaxGridYZ) return too_many("heads", sh.heads(), "grid.y");
  if (chunks > kMaxGridYZ) {
    return too_many("sequence length", sh.seq,
                    "grid.y of the depthwise backward (16 rows a block)");
  }
  if (sh.channels() * 2 > std::numeric_limits<int>::max()) {
    return "a token's " + std::to_string(sh.channels()) + " channels exceed a 32-bit index";
  }
  return "";
}

CcaPrologueGrads cca_prologue_backward(const CcaPrologueShape& sh, const CcaPrologueInputs& in,
                                       const at::Tensor& s, const at::Tensor& grad_q,
                                       const at::Tensor& grad_k, const at::Tensor& grad_v) {
  check_inputs(sh, in);
  TORCH_CHECK(sh.convs == 0 || (s.defined() && s.is_contiguous()),
              "backward needs the conv output");
  const c10::cuda::CUDAGuard guard(in.q0.device());
  const auto opts = in.q0.options();
  const int64_t B = sh.batch, S = sh.seq, d = sh.head_dim, width_k = sh.n_kv * d;
  const at::Tensor gq = contiguous_or_zeros(grad_q, {B, S, sh.n_q, d}, opts);
  const at::Tensor gk = contiguous_or_zeros(grad_k, {B, S, sh.n_kv, d}, opts);
  at::Tensor gv;
  CcaPrologueGrads out;
  out.q0 = at::empty({B, S, sh.n_q * d}, opts);
  out.k0 = at::empty({B, S, width_k}, opts);
  if (sh.value_shift) {
    gv = contiguous_or_zeros(grad_v, {B, S, sh.n_kv, d}, opts);
    out.v_current = at::empty({B, S, width_k / 2}, opts);
    out.v_delayed = at::empty({B, S, width_k / 2}, opts);
  }
  if (B == 0 || S == 0) {
    out.q0.zero_();
    out.k0.zero_();
    return out;
  }
  dispatch_dtype_and_dim(in.q0.scalar_type(), d, BackwardLaunch{sh, in, s, gq, gk, gv, out});
  return out;
}

}  // namespace cca::kernels
