// Fused RoPE: one pass over [B, S, H, D] that rotates the first r dims of every head and copies
// the rest, so the layer pays one read and one write of q and k instead of the plain-ops path's
// narrow → cast → 4 products → cat → cast → cat chain (and the same again in the backward).
//
// Work item: N consecutive rotation pairs (i, i + r/2) of one row, or N pass-through elements.
// N is the widest vector (16 bytes) the row layout allows, 1 for arbitrary strides.
#include "rope.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <limits>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

// Strides in elements; the output is contiguous. sin_sign = -1 rotates backwards.
template <typename T>
struct RopeParams {
  const T* x;
  T* out;
  const float* cos;
  const float* sin;
  int64_t stride_b, stride_s, stride_h, stride_d;
  int64_t offset;
  int64_t total;  // rows × items per row
  int seq, heads, dim, half, rot_items, items;
  float sin_sign;
};

// Index: 32-bit when every item index fits (the common case; 64-bit division is slow).
template <typename T, int N, typename Index>
__global__ void __launch_bounds__(256) rope_kernel(const RopeParams<T> p) {
  const Index total = static_cast<Index>(p.total);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index idx = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const Index row = idx / p.items;
    const int item = static_cast<int>(idx - row * p.items);
    const Index bs = row / p.heads;
    const int h = static_cast<int>(row - bs * p.heads);
    const Index b = bs / p.seq;
    const int s = static_cast<int>(bs - b * p.seq);
    const T* src = p.x + b * p.stride_b + s * p.stride_s + h * p.stride_h;
    T* dst = p.out + static_cast<int64_t>(row) * p.dim;
    if (item < p.rot_items) {
      const int j = item * N;
      float a[N], bb[N], c[N], sn[N], ya[N], yb[N];
      load_floats<T, N>(src + j * p.stride_d, a);
      load_floats<T, N>(src + (j + p.half) * p.stride_d, bb);
      const int64_t t = (p.offset + s) * p.half + j;
      load_floats<float, N>(p.cos + t, c);
      load_floats<float, N>(p.sin + t, sn);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float si = p.sin_sign * sn[k];
        // Separately rounded, like the plain ops (x·cos − y·sin as mul, mul, sub): no FMA.
        ya[k] = __fsub_rn(__fmul_rn(a[k], c[k]), __fmul_rn(bb[k], si));
        yb[k] = __fadd_rn(__fmul_rn(bb[k], c[k]), __fmul_rn(a[k], si));
      }
      store_floats<T, N>(dst + j, ya);
      store_floats<T, N>(dst + j + p.half, yb);
    } else {
      const int j = 2 * p.half + (item - p.rot_items) * N;
      if constexpr (N == 1) {
        dst[j] = src[j * p.stride_d];
      } else {
        copy_pack<T, N>(dst + j, src + j);  // rows are contiguous whenever N > 1
      }
    }
  }
}

// The widest vector width (elements) that every row start, pair and table row allows.
int vector_width(const at::Tensor& x, int64_t half) {
  const int64_t D = x.size(3);
  int n = static_cast<int>(16 / x.element_size());
  if (x.stride(3) != 1 && D > 1) return 1;
  for (; n > 1; n /= 2) {
    bool ok = half % n == 0 && D % n == 0 && is_aligned(x, n * x.element_size());
    for (int d = 0; d < 3; ++d) ok = ok && (x.size(d) == 1 || x.stride(d) % n == 0);
    if (ok) return n;
  }
  return 1;
}

template <typename T, int N>
void launch(const RopeParams<T>& p) {
  constexpr int kBlock = 256;
  const int64_t needed = (p.total + kBlock - 1) / kBlock;
  // A grid-stride loop: enough blocks to fill the GPU many times over, no more.
  const int blocks = static_cast<int>(std::min<int64_t>(needed, int64_t{multiprocessors()} * 32));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (p.total + int64_t{kBlock} * blocks < std::numeric_limits<uint32_t>::max()) {
    launch_checked(rope_kernel<T, N, uint32_t>, blocks, kBlock, 0, stream, p);
  } else {
    launch_checked(rope_kernel<T, N, int64_t>, blocks, kBlock, 0, stream, p);
  }
}

template <typename T>
void dispatch_width(int n, const RopeParams<T>& p) {
  switch (n) {
    case 8:
      if constexpr (sizeof(T) == 2) return launch<T, 8>(p);
      break;
    case 4:
      return launch<T, 4>(p);
    case 2:
      return launch<T, 2>(p);
    default:
      break;
  }
  launch<T, 1>(p);
}

template <typename T>
void run(const at::Tensor& x, at::Tensor& out, const at::Tensor& cos, const at::Tensor& sin,
         int64_t offset, int64_t rotary_dim, bool inverse) {
  RopeParams<T> p{};
  p.x = reinterpret_cast<const T*>(x.data_ptr());
  p.out = reinterpret_cast<T*>(out.data_ptr());
  p.cos = cos.data_ptr<float>();
  p.sin = sin.data_ptr<float>();
  p.stride_b = x.stride(0);
  p.stride_s = x.stride(1);
  p.stride_h = x.stride(2);
  p.stride_d = x.stride(3);
  p.offset = offset;
  p.seq = static_cast<int>(x.size(1));
  p.heads = static_cast<int>(x.size(2));
  p.dim = static_cast<int>(x.size(3));
  p.half = static_cast<int>(rotary_dim / 2);
  const int n = vector_width(x, p.half);
  p.rot_items = p.half / n;
  p.items = p.rot_items + static_cast<int>((x.size(3) - rotary_dim) / n);
  p.total = x.size(0) * x.size(1) * x.size(2) * p.items;
  p.sin_sign = inverse ? -1.f : 1.f;
  dispatch_width<T>(n, p);
}

}  // namespace

at::Tensor rope_apply_cuda(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                           int64_t offset, int64_t rotary_dim, bool inverse) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 4, "rope_apply_cuda: x must be a 4-d CUDA tensor");
  TORCH_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= x.size(3),
              "rope_apply_cuda: bad rotary_dim ", rotary_dim, " for head dim ", x.size(3));
  TORCH_CHECK(cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat &&
                  cos.is_contiguous() && sin.is_contiguous() && cos.device() == x.device() &&
                  sin.device() == x.device() && cos.size(1) == rotary_dim / 2,
              "rope_apply_cuda: tables must be contiguous float32 [L, r/2] on x's device");
  TORCH_CHECK(offset >= 0 && offset + x.size(1) <= cos.size(0),
              "rope_apply_cuda: positions beyond the table");
  TORCH_CHECK(x.size(1) <= std::numeric_limits<int>::max() &&
                  x.size(2) <= std::numeric_limits<int>::max() &&
                  x.size(3) <= std::numeric_limits<int>::max(),
              "rope_apply_cuda: dimension too large");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  switch (x.scalar_type()) {
    case at::kBFloat16:
      run<__nv_bfloat16>(x, out, cos, sin, offset, rotary_dim, inverse);
      break;
    case at::kHalf:
      run<__half>(x, out, cos, sin, offset, rotary_dim, inverse);
      break;
    case at::kFloat:
      run<float>(x, out, cos, sin, offset, rotary_dim, inverse);
      break;
    default:
      TORCH_CHECK(false, "rope_apply_cuda: dtype must be bf16, fp16 or fp32, got ",
                  x.scalar_type());
  }
  return out;
}

}  // namespace cca::kernels
