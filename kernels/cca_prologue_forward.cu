// Forward CCA prologue in one launch. A block owns 64 tokens of one head of one sequence:
//   1. builds the depthwise conv output u for its rows (plus the k1-1 rows before them) from
//      z = [q⁰ ‖ k⁰] in shared memory, rounded to the input dtype as the reference's conv is;
//   2. runs the per-head d×d grouped conv as a 64×d×(k1·d) matrix product on tensor cores;
//   3. per token (one warp per row): bias, q-k mean, L2 norm·√d·τ, partial RoPE, store q̂ / k̂;
//      key-head blocks also assemble ṽ = [v_cur ‖ v_del shifted one token] for their head.
// With packed documents no tap reads before its token's document: the depthwise conv drops those
// taps, the few rows within k1-1 of a document's start redo their grouped conv with the taps
// before it reading the depthwise bias (what a sequence start reads), the value shift reads zero
// at a document's first token, and RoPE may restart there.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

#include "cca_common.cuh"

namespace cca::kernels {
namespace {

// Element strides of a [B,S,n_k,d] output whose last dim is contiguous.
struct OutputStrides {
  int64_t batch, row, head;
  __device__ __forceinline__ int64_t at(int b, int t, int head_index) const {
    return b * batch + t * row + head_index * head;
  }
};

template <typename T>
struct ForwardParams {
  ConvSource<T> src;
  const T* grouped_taps;        // [G, k1, d, d]
  const float* grouped_bias;    // [M]
  const float* key_multiplier;  // [n_k]
  const double* inv_freq;       // [r/2]
  const T* v_current;           // [B,S,W_k/2] strided
  const T* v_delayed;
  const T* shift_previous;  // [B, W_k/2] or null
  int64_t vc_batch_stride, vc_row_stride, vd_batch_stride, vd_row_stride;
  T* q_out;  // [B,S,n_q,d]
  T* k_out;  // [B,S,n_k,d] strided: a fresh tensor or a KV cache's slots
  T* v_out;  // [B,S,n_k,d] strided, or null
  T* s_out;  // [B,S,M] or null
  OutputStrides k_strides, v_strides;
  T* conv_state_out;         // [B, M, P] or null
  T* shift_state_out;        // [B, W_k/2] or null
  const int* doc_positions;  // [B,S] index of each token in its document, or null (no documents)
  int n_q, n_kv, convs, kernel_1, rope_dim;
  bool qk_mean, reset_positions;
  int64_t offset;
};

// Rows of z kept before the tile's first token: P = (k0-1)+(k1-1) <= 6.
inline constexpr int kMaxPad = 6;
// Document positions are staged from the grouped conv's longest look-back (k1-1 <= 3) before
// the tile: the position of time t is positions[t - t0 + kPositionLead] (-1 outside the sequence).
inline constexpr int kPositionLead = 3;

template <typename T, int D>
struct ForwardSmem {
  static constexpr size_t z_bytes = (kTileRows + kMaxPad) * D * sizeof(T);
  static constexpr size_t partner_bytes = kTileRows * D * sizeof(float);
  static constexpr size_t total = z_bytes + partner_bytes + conv_tile_smem_bytes<T, D>();
  // Only launches with documents add the positions, after everything else.
  static constexpr size_t positions_bytes = (kTileRows + kPositionLead) * sizeof(int);
  static_assert(total + positions_bytes <= 227 * 1024, "forward tile exceeds shared memory");
};

// Phase 1: every global read of the block at once, as 16-byte loads, so that many are in
// flight: this head's z for rows [t0 - P, t0 + 64) (history or zeros before the sequence), and
// the q-k mean's partner rows: k⁰ of the query head's KV head, or Σ q⁰ over a key head's group.
template <typename T, int D>
__device__ void stage_inputs(const ForwardParams<T>& p, int b, int head, int t0, T* z_tile,
                             float* partner, int* positions) {
  constexpr int kVec = 16 / sizeof(T), kVecs = D / kVec;
  const ConvSource<T>& src = p.src;
  if (positions != nullptr) {
    for (int r = threadIdx.x; r < kTileRows + kPositionLead; r += kThreads) {
      const int t = t0 - kPositionLead + r;
      positions[r] =
          t >= 0 && t < src.seq ? p.doc_positions[static_cast<int64_t>(b) * src.seq + t] : -1;
    }
  }
  const int pad = src.pad, group = p.n_q / p.n_kv;
  const bool query = head < p.n_q;
  const T* own = query ? src.q0 + b * src.q_batch_stride + head * D
                       : src.k0 + b * src.k_batch_stride + (head - p.n_q) * D;
  const int64_t own_rows = query ? src.q_row_stride : src.k_row_stride;
#pragma unroll 4
  for (int e = threadIdx.x; e < (kTileRows + pad) * kVecs; e += kThreads) {
    const int r = e / kVecs, v = e % kVecs * kVec, t = t0 - pad + r;
    Pack<T, kVec> val;
    if (t >= 0 && t < src.seq) {
      val = *reinterpret_cast<const Pack<T, kVec>*>(own + t * own_rows + v);
    } else {
      for (int k = 0; k < kVec; ++k)
        val.v[k] = from_float<T>(t < 0 ? src.z(b, t, head * D + v + k) : 0.f);
    }
    *reinterpret_cast<Pack<T, kVec>*>(z_tile + r * D + v) = val;
  }
  if (!p.qk_mean) return;
#pragma unroll 2
  for (int e = threadIdx.x; e < kTileRows * kVecs; e += kThreads) {
    const int r = e / kVecs, v = e % kVecs * kVec, t = t0 + r;
    float sum[kVec] = {};
    if (t < src.seq && query) {
      load_floats<T, kVec>(
          src.k0 + b * src.k_batch_stride + t * src.k_row_stride + head / group * D + v, sum);
    } else if (t < src.seq) {
      for (int h = (head - p.n_q) * group; h < (head - p.n_q + 1) * group; ++h) {
        float q[kVec];
        load_floats<T, kVec>(src.q0 + b * src.q_batch_stride + t * src.q_row_stride + h * D + v, q);
        for (int k = 0; k < kVec; ++k) sum[k] += q[k];
      }
    }
    for (int k = 0; k < kVec; ++k) partner[r * D + v + k] = sum[k];
  }
}

// Phase 2: the depthwise conv from the staged z, into the grouped conv's input tile (convs = 2,
// rows [t0 - (k1-1), t0 + 64)), or straight into the accumulators as the conv output itself.
template <typename T, int D>
__device__ void depthwise_from_tile(const ForwardParams<T>& p, int head, int t0, const T* z_tile,
                                    const int* positions, T* tile, float* acc) {
  const int lag = p.convs == 2 ? p.kernel_1 - 1 : 0, pad = p.src.pad, k0 = p.src.kernel_0;
  // kThreads is a multiple of D: each thread keeps one channel, and its taps in registers.
  const int i = threadIdx.x % D, c = head * D + i;
  float taps[4], bias = 0.f;
#pragma unroll
  for (int lag_t = 0; lag_t < 4; ++lag_t)
    taps[lag_t] =
        p.convs > 0 && lag_t < k0 ? to_float(p.src.depthwise_taps[c * k0 + k0 - 1 - lag_t]) : 0.f;
  if (p.convs > 0) bias = p.src.depthwise_bias[c];
  for (int r = threadIdx.x / D; r < kTileRows + lag; r += kThreads / D) {
    const int t = t0 - lag + r;
    float value = 0.f;
    if (t < p.src.seq && p.convs == 0) {
      value = to_float(z_tile[r * D + i]);
    } else if (t < p.src.seq) {
      // Inside documents a tap reaches back at most to the document's first token.
      const int reach = positions != nullptr && t >= 0 ? positions[t - t0 + kPositionLead] : 3;
      value = bias;  // z row of time t - τ is r + pad - lag - τ (pad - lag = k0 - 1)
#pragma unroll
      for (int lag_t = 0; lag_t < 4; ++lag_t)
        if (lag_t < k0 && lag_t <= reach)
          value += taps[lag_t] * to_float(z_tile[(r + pad - lag - lag_t) * D + i]);
    }
    if (p.convs == 2) {
      tile[r * (D + kTilePad) + i] = from_float<T>(value);
    } else {
      acc[r * (D + kAccPad) + i] = round_to<T>(value);
    }
  }
}

// Steps 3-6 for token row r of the tile, by one warp; each lane owns D/32 adjacent elements.
template <typename T, int D>
__device__ void finish_row(const ForwardParams<T>& p, int b, int t0, int r, int head,
                           const T* z_tile, const float* partner, int64_t position, float* row) {
  constexpr int kPer = D / 32;
  const int lane = threadIdx.x % 32, i0 = lane * kPer, t = t0 + r, c0 = head * D + i0;
  const bool query = head < p.n_q;
  const float inv_group = 1.f / static_cast<float>(p.n_q / p.n_kv);
  float x[kPer];
  float sum_sq = 0.f;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    float s = row[i0 + k];
    if (p.convs == 2) s = round_to<T>(s + p.grouped_bias[c0 + k]);
    x[k] = s;
  }
  const int64_t token = static_cast<int64_t>(b) * p.src.seq + t;
  if (p.s_out != nullptr) store_floats<T, kPer>(p.s_out + token * p.src.channels + c0, x);
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    if (p.qk_mean) {  // spec §2.2 step 3: m^Q = ½(q⁰_h + k⁰_j), m^K = ½(mean_h q⁰_h + k⁰_j)
      const float own = to_float(z_tile[(r + p.src.pad) * D + i0 + k]);
      const float other = partner[r * D + i0 + k];
      x[k] += query ? 0.5f * (own + other) : 0.5f * (other * inv_group + own);
    }
    sum_sq += x[k] * x[k];
  }
  sum_sq = warp_sum(sum_sq);
  float scale = rsqrtf(sum_sq + 1e-12f) * sqrtf(static_cast<float>(D));
  if (!query) scale *= p.key_multiplier[head - p.n_q];
  __syncwarp();
#pragma unroll
  for (int k = 0; k < kPer; ++k) row[i0 + k] = x[k] *= scale;
  __syncwarp();
  const int half = p.rope_dim / 2;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int i = i0 + k;
    if (i < p.rope_dim) {
      float cos_a, sin_a;
      rope_angle(p.inv_freq, i < half ? i : i - half, position, &cos_a, &sin_a);
      x[k] = i < half ? x[k] * cos_a - row[i + half] * sin_a : x[k] * cos_a + row[i - half] * sin_a;
    }
  }
  T* out =
      query ? p.q_out + (token * p.n_q + head) * D : p.k_out + p.k_strides.at(b, t, head - p.n_q);
  store_floats<T, kPer>(out + i0, x);
}

// The grouped conv of token row r, `position` < k1-1 tokens into its document, again: the tile's
// product read u across the document's start, where a sequence start reads the depthwise bias.
// One warp; lane l computes u of channels l, l+32, ... (rounded as the tile stores u), shares them
// by shuffles, and owns outputs [l·D/32, (l+1)·D/32) of `row`. Rare: k1-1 rows per document.
template <typename T, int D>
__device__ void regroup_document_start(const ForwardParams<T>& p, int head, int r, int position,
                                       const T* z_tile, float* row) {
  constexpr int kPer = D / 32, kVec = 16 / sizeof(T);
  const int lane = threadIdx.x % 32, i0 = lane * kPer, k0 = p.src.kernel_0, pad = p.src.pad;
  float out[kPer] = {};
#pragma unroll 1
  for (int tap = 0; tap < p.kernel_1; ++tap) {
    float u[kPer];  // u at time t - tap, channel lane + 32m
#pragma unroll
    for (int m = 0; m < kPer; ++m) {
      const int c = head * D + lane + 32 * m;
      float value = p.src.depthwise_bias[c];
      // z row of time t - tap - lag is r + pad - tap - lag (>= r: tap + lag <= pad).
      for (int lag = 0; lag < k0 && lag <= position - tap; ++lag)
        value += to_float(p.src.depthwise_taps[c * k0 + k0 - 1 - lag]) *
                 to_float(z_tile[(r + pad - tap - lag) * D + lane + 32 * m]);
      u[m] = round_to<T>(value);
    }
    const T* w = p.grouped_taps + (static_cast<int64_t>(head) * p.kernel_1 + tap) * D * D;
#pragma unroll
    for (int m = 0; m < kPer; ++m) {
#pragma unroll 1
      for (int from = 0; from < 32; from += kVec) {
        float v[kVec], wv[kVec];
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] = __shfl_sync(0xffffffffu, u[m], from + k);
#pragma unroll
        for (int e = 0; e < kPer; ++e) {
          load_floats<T, kVec>(w + (i0 + e) * D + 32 * m + from, wv);
#pragma unroll
          for (int k = 0; k < kVec; ++k) out[e] += wv[k] * v[k];
        }
      }
    }
  }
#pragma unroll
  for (int e = 0; e < kPer; ++e) row[i0 + e] = out[e];
  __syncwarp();
}

// Step 4 for the key-head block's value head j: the first W_k/2 flattened channels are the
// current token's, the rest the previous token's delayed projection (the carried state at t = 0).
template <typename T, int D>
__device__ void assemble_values(const ForwardParams<T>& p, int b, int t0, int j,
                                const int* positions) {
  constexpr int kVec = 16 / sizeof(T), kVecs = D / kVec;
  const int half = p.n_kv * D / 2, S = p.src.seq;
#pragma unroll 4
  for (int e = threadIdx.x; e < kTileRows * kVecs; e += kThreads) {
    const int r = e / kVecs, v = e % kVecs * kVec, t = t0 + r, c = j * D + v;
    if (t >= S) continue;
    const T* from = nullptr;
    if (c < half) {
      from = p.v_current + b * p.vc_batch_stride + t * p.vc_row_stride + c;
    } else if (t > 0 && (positions == nullptr || positions[r + kPositionLead] > 0)) {
      from = p.v_delayed + b * p.vd_batch_stride + (t - 1) * p.vd_row_stride + (c - half);
    } else if (p.shift_previous != nullptr) {
      from = p.shift_previous + static_cast<int64_t>(b) * half + (c - half);
    }
    Pack<T, kVec> val;
    if (from != nullptr) {
      val = *reinterpret_cast<const Pack<T, kVec>*>(from);
    } else {
      for (int k = 0; k < kVec; ++k) val.v[k] = from_float<T>(0.f);
    }
    *reinterpret_cast<Pack<T, kVec>*>(p.v_out + p.v_strides.at(b, t, j) + v) = val;
  }
}

// The decode states of the chunk's end, for head `head`: conv state column c holds z at time
// S - P + c (the history when that is before the chunk), written by the block whose staged rows
// hold that time; the key-head block of the last token copies its share of v_delayed.
template <typename T, int D>
__device__ void store_states(const ForwardParams<T>& p, int b, int head, int t0, const T* z_tile) {
  const int pad = p.src.pad, S = p.src.seq;
  if (p.conv_state_out != nullptr) {
    for (int e = threadIdx.x; e < pad * D; e += kThreads) {
      const int c = e / D, i = e % D, t = S - pad + c;
      if ((t < 0 ? 0 : t / kTileRows) != static_cast<int>(blockIdx.x)) continue;
      p.conv_state_out[(static_cast<int64_t>(b) * p.src.channels + head * D + i) * pad + c] =
          z_tile[(t - t0 + pad) * D + i];
    }
  }
  if (p.shift_state_out == nullptr || head < p.n_q ||
      (S - 1) / kTileRows != static_cast<int>(blockIdx.x))
    return;
  const int half = p.n_kv * D / 2, j = head - p.n_q;
  const T* last = p.v_delayed + b * p.vd_batch_stride + (S - 1) * p.vd_row_stride;
  for (int c = j * D / 2 + threadIdx.x; c < (j + 1) * D / 2; c += kThreads)
    p.shift_state_out[static_cast<int64_t>(b) * half + c] = last[c];
}

// kDocuments: an instantiation of its own, so that without documents (positions null, every
// document branch folded away) the kernel is the one it was before documents, registers included.
template <typename T, int D, bool kDocuments>
__global__ void __launch_bounds__(kThreads) cca_prologue_forward_kernel(ForwardParams<T> p) {
  extern __shared__ __align__(128) unsigned char smem[];
  using Smem = ForwardSmem<T, D>;
  T* z_tile = reinterpret_cast<T*>(smem);
  float* partner = reinterpret_cast<float*>(smem + Smem::z_bytes);
  unsigned char* conv = smem + Smem::z_bytes + Smem::partner_bytes;
  T* tile = reinterpret_cast<T*>(conv);
  float* acc = reinterpret_cast<float*>(conv);
  int* positions = kDocuments ? reinterpret_cast<int*>(smem + Smem::total) : nullptr;
  const int t0 = blockIdx.x * kTileRows, head = blockIdx.y, b = blockIdx.z;
  stage_inputs<T, D>(p, b, head, t0, z_tile, partner, positions);
  __syncthreads();
  store_states<T, D>(p, b, head, t0, z_tile);
  depthwise_from_tile<T, D>(p, head, t0, z_tile, positions, tile, acc);
  __syncthreads();
  if (p.convs == 2) {
    grouped_conv_tile<T, D, false>(tile, p.grouped_taps + head * p.kernel_1 * D * D, p.kernel_1,
                                   acc);
    __syncthreads();
  }
  const int warp = threadIdx.x / 32;
  for (int r = warp; r < kTileRows && t0 + r < p.src.seq; r += kThreads / 32) {
    float* row = acc + r * (D + kAccPad);
    int64_t position = p.offset + t0 + r;
    if (positions != nullptr) {
      const int in_document = positions[r + kPositionLead];
      if (p.convs == 2 && in_document < p.kernel_1 - 1)
        regroup_document_start<T, D>(p, head, r, in_document, z_tile, row);
      if (p.reset_positions) position = in_document;
    }
    finish_row<T, D>(p, b, t0, r, head, z_tile, partner, position, row);
  }
  if (p.v_out != nullptr && head >= p.n_q) assemble_values<T, D>(p, b, t0, head - p.n_q, positions);
}

// Vector loads and stores need 16-byte aligned rows (and heads, for outputs).
bool rows_aligned(const at::Tensor& t) {
  const int64_t e = t.element_size();
  bool ok = is_aligned(t, 16);
  for (int64_t dim = 0; dim + 1 < t.dim(); ++dim) ok = ok && t.stride(dim) * e % 16 == 0;
  return ok;
}

OutputStrides strides_of(const at::Tensor& t) {
  return {t.stride(0), t.stride(1), t.stride(2)};
}

// k_into / v_into when given (checked against the shape and dtype), else a fresh tensor.
at::Tensor output_into(const at::Tensor& into, const CcaPrologueShape& sh,
                       const at::TensorOptions& opts, const char* name) {
  if (!into.defined()) return at::empty({sh.batch, sh.seq, sh.n_kv, sh.head_dim}, opts);
  TORCH_CHECK(into.sizes() == at::IntArrayRef({sh.batch, sh.seq, sh.n_kv, sh.head_dim}) &&
                  into.scalar_type() == opts.dtype().toScalarType() &&
                  into.device() == opts.device() && into.stride(3) == 1 && rows_aligned(into),
              "cca forward: ", name, " must be an aligned [B,S,n_k,d] view in the input's dtype");
  return into;
}

struct ForwardLaunch {
  const CcaPrologueShape& sh;
  const CcaPrologueInputs& in;
  CcaPrologueOutputs& out;

  template <typename T, int D>
  void operator()() const {
    ForwardParams<T> p{};
    p.src = conv_source<T>(sh, in);
    p.grouped_taps = sh.convs == 2 ? ptr<T>(in.grouped_taps) : nullptr;
    p.grouped_bias = sh.convs == 2 ? in.grouped_bias.data_ptr<float>() : nullptr;
    p.key_multiplier = in.key_multiplier.data_ptr<float>();
    p.inv_freq = sh.rope_dim > 0 ? in.inv_freq.data_ptr<double>() : nullptr;
    if (out.v.defined()) {
      p.v_current = ptr<T>(in.v_current);
      p.v_delayed = ptr<T>(in.v_delayed);
      p.shift_previous = ptr<T>(in.shift_previous);
      p.vc_batch_stride = in.v_current.stride(0);
      p.vc_row_stride = in.v_current.stride(1);
      p.vd_batch_stride = in.v_delayed.stride(0);
      p.vd_row_stride = in.v_delayed.stride(1);
      p.v_out = mutable_ptr<T>(out.v);
      p.v_strides = strides_of(out.v);
      p.shift_state_out = mutable_ptr<T>(out.shift_state);
    }
    p.q_out = mutable_ptr<T>(out.q);
    p.k_out = mutable_ptr<T>(out.k);
    p.k_strides = strides_of(out.k);
    p.s_out = mutable_ptr<T>(out.s);
    p.conv_state_out = mutable_ptr<T>(out.conv_state);
    p.n_q = static_cast<int>(sh.n_q);
    p.n_kv = static_cast<int>(sh.n_kv);
    p.convs = static_cast<int>(sh.convs);
    p.kernel_1 = static_cast<int>(sh.kernel_1);
    p.rope_dim = static_cast<int>(sh.rope_dim);
    p.qk_mean = sh.qk_mean;
    p.offset = sh.offset;
    if (in.documents.defined()) {
      p.doc_positions = in.documents.positions.data_ptr<int>();
      p.reset_positions = in.documents.reset_positions;
    }
    const dim3 grid((sh.seq + kTileRows - 1) / kTileRows, sh.heads(), sh.batch);
    if (in.documents.defined()) {
      launch<T, D, true>(p, grid);
    } else {
      launch<T, D, false>(p, grid);
    }
  }

  template <typename T, int D, bool kDocuments>
  static void launch(const ForwardParams<T>& p, const dim3& grid) {
    using Smem = ForwardSmem<T, D>;
    constexpr size_t smem = Smem::total + (kDocuments ? Smem::positions_bytes : 0);
    // Once per instantiation (and so per process: one device is assumed to be like the others).
    static const bool attribute_set = [] {
      C10_CUDA_CHECK(cudaFuncSetAttribute(cca_prologue_forward_kernel<T, D, kDocuments>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
      return true;
    }();
    (void)attribute_set;
    launch_checked(cca_prologue_forward_kernel<T, D, kDocuments>, grid, kThreads, smem,
                   at::cuda::getCurrentCUDAStream(), p);
  }
};

}  // namespace

CcaPrologueOutputs cca_prologue_forward(const CcaPrologueShape& sh, const CcaPrologueInputs& in,
                                        const CcaForwardOptions& options) {
  check_inputs(sh, in);
  for (const at::Tensor& t : {in.q0, in.k0, in.v_current, in.v_delayed})
    TORCH_CHECK(!t.defined() || rows_aligned(t), "cca forward: rows must be 16-byte aligned");
  TORCH_CHECK(!in.documents.defined() || !options.write_states,
              "cca forward: documents make no decode states");
  const c10::cuda::CUDAGuard guard(in.q0.device());
  const auto opts = in.q0.options();
  CcaPrologueOutputs out;
  out.q = at::empty({sh.batch, sh.seq, sh.n_q, sh.head_dim}, opts);
  out.k = output_into(options.k_into, sh, opts, "k_into");
  if (sh.value_shift) {
    TORCH_CHECK(in.v_current.stride(2) == 1 && in.v_delayed.stride(2) == 1,
                "values need a contiguous last dim");
    out.v = output_into(options.v_into, sh, opts, "v_into");
  }
  if (options.keep_conv_output && sh.convs > 0)
    out.s = at::empty({sh.batch, sh.seq, sh.channels()}, opts);
  if (options.write_states && sh.convs > 0)
    out.conv_state = at::empty({sh.batch, sh.channels(), sh.pad()}, opts);
  if (options.write_states && sh.value_shift)
    out.shift_state = at::empty({sh.batch, sh.n_kv * sh.head_dim / 2}, opts);
  if (sh.seq == 0 || sh.batch == 0) return out;
  dispatch_dtype_and_dim(in.q0.scalar_type(), sh.head_dim, ForwardLaunch{sh, in, out});
  return out;
}

}  // namespace cca::kernels
