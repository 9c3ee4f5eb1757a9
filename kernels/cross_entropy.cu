// One block per row. Pass 1 keeps a running (max, sum of exp) per thread, merged across the
// block; pass 2 re-reads the row (mostly from L2: a 50k-vocab bf16 row is 100 KB) and writes the
// gradient in place. Loads are 16 bytes wide when the row layout allows.
#include "cross_entropy.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cfloat>
#include <cstdint>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

constexpr int kRowThreads = 512;

struct MaxSum {
  float max;
  float sum;
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  if (a.max < b.max) {
    const MaxSum t = a;
    a = b;
    b = t;
  }
  if (b.max == -FLT_MAX) return a;
  return {a.max, a.sum + b.sum * __expf(b.max - a.max)};
}

__device__ __forceinline__ MaxSum add_value(MaxSum a, float x) {
  if (x > a.max) return {x, a.sum * __expf(a.max - x) + 1.0f};
  return {a.max, a.sum + __expf(x - a.max)};
}

__device__ MaxSum block_merge(MaxSum v) {
  __shared__ MaxSum partial[kRowThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) {
    MaxSum other;
    other.max = __shfl_xor_sync(0xffffffffu, v.max, offset);
    other.sum = __shfl_xor_sync(0xffffffffu, v.sum, offset);
    v = merge(v, other);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kRowThreads / 32 ? partial[lane] : MaxSum{-FLT_MAX, 0.0f};
    for (int offset = 16; offset > 0; offset /= 2) {
      MaxSum other;
      other.max = __shfl_xor_sync(0xffffffffu, v.max, offset);
      other.sum = __shfl_xor_sync(0xffffffffu, v.sum, offset);
      v = merge(v, other);
    }
    if (lane == 0) partial[0] = v;
  }
  __syncthreads();
  return partial[0];
}

template <typename T, int N>
__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_rows_kernel(T* logits, const int64_t* targets, int64_t vocab, float z_weight,
                              bool write_grad, float* loss, float* z) {
  const int64_t row = blockIdx.x;
  T* x = logits + row * vocab;
  const int64_t packs = vocab / N;
  MaxSum acc{-FLT_MAX, 0.0f};
  for (int64_t p = threadIdx.x; p < packs; p += kRowThreads) {
    const Pack<T, N> pack = reinterpret_cast<const Pack<T, N>*>(x)[p];
#pragma unroll
    for (int i = 0; i < N; ++i) acc = add_value(acc, to_float(pack.v[i]));
  }
  const MaxSum total = block_merge(acc);
  const float lse = total.max + __logf(total.sum);
  const int64_t target = targets[row];
  const bool valid = target >= 0;
  if (threadIdx.x == 0) {
    loss[row] = valid ? lse - to_float(x[target]) : 0.0f;
    z[row] = valid ? lse * lse : 0.0f;
  }
  if (!write_grad) return;
  __syncthreads();  // x[target] is read before it is overwritten
  const float scale = valid ? 1.0f + 2.0f * z_weight * lse : 0.0f;
  for (int64_t p = threadIdx.x; p < packs; p += kRowThreads) {
    Pack<T, N> pack = reinterpret_cast<Pack<T, N>*>(x)[p];
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const int64_t column = p * N + i;
      float g = __expf(to_float(pack.v[i]) - lse) * scale;
      if (column == target) g -= 1.0f;
      pack.v[i] = from_float<T>(g);
    }
    reinterpret_cast<Pack<T, N>*>(x)[p] = pack;
  }
}

template <typename T>
void launch(at::Tensor& logits, const at::Tensor& targets, float z_weight, bool write_grad,
            at::Tensor& loss, at::Tensor& z) {
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  T* data = reinterpret_cast<T*>(logits.data_ptr());
  constexpr int kWide = 16 / sizeof(T);
  const bool aligned = is_aligned(logits, 16) && vocab % kWide == 0;
  const auto kernel =
      aligned ? cross_entropy_rows_kernel<T, kWide> : cross_entropy_rows_kernel<T, 1>;
  launch_checked(kernel, rows, kRowThreads, 0, at::cuda::getCurrentCUDAStream(), data,
                 targets.data_ptr<int64_t>(), vocab, z_weight, write_grad, loss.data_ptr<float>(),
                 z.data_ptr<float>());
}

}  // namespace

void cross_entropy_rows_cuda(at::Tensor& logits, const at::Tensor& targets, double z_weight,
                             bool write_grad, at::Tensor& loss, at::Tensor& z) {
  TORCH_CHECK(logits.is_cuda() && logits.dim() == 2 && logits.is_contiguous(),
              "cross_entropy_rows_cuda: logits must be a contiguous CUDA [n, V] tensor");
  TORCH_CHECK(targets.scalar_type() == at::kLong && targets.is_contiguous() &&
                  targets.numel() == logits.size(0),
              "cross_entropy_rows_cuda: targets must be contiguous int64 [n]");
  const c10::cuda::CUDAGuard guard(logits.device());
  const auto options = logits.options().dtype(at::kFloat);
  loss = at::empty({logits.size(0)}, options);
  z = at::empty({logits.size(0)}, options);
  if (logits.size(0) == 0) return;
  const float zw = static_cast<float>(z_weight);
  switch (logits.scalar_type()) {
    case at::kBFloat16:
      launch<__nv_bfloat16>(logits, targets, zw, write_grad, loss, z);
      break;
    case at::kHalf:
      launch<__half>(logits, targets, zw, write_grad, loss, z);
      break;
    case at::kFloat:
      launch<float>(logits, targets, zw, write_grad, loss, z);
      break;
    default:
      TORCH_CHECK(false, "cross_entropy_rows_cuda: bf16, fp16 or fp32 logits, got ",
                  logits.scalar_type());
  }
}

}  // namespace cca::kernels
