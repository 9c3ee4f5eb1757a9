// Helpers every kernel file shares: element conversions, 16-byte packs, the warp sum, the
// alignment test behind every vectorised path, dtype dispatch and the checked launch.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace cca::kernels {

// ---- Element conversions (math is fp32; each stored value is rounded once) -------------------

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

// x as it reads back after a store in T.
template <typename T>
__device__ __forceinline__ float round_to(float x) {
  return to_float(from_float<T>(x));
}

__device__ __forceinline__ float warp_sum(float x) {
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// ---- Packs: N consecutive elements moved as one aligned access (16 bytes for 8 bf16) ---------

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// src must be aligned to the pack (sizeof(T)·N bytes): see is_aligned.
template <typename T, int N>
__device__ __forceinline__ void load_floats(const T* src, float* dst) {
  const Pack<T, N> p = *reinterpret_cast<const Pack<T, N>*>(src);
#pragma unroll
  for (int k = 0; k < N; ++k) dst[k] = to_float(p.v[k]);
}

template <typename T, int N>
__device__ __forceinline__ void store_floats(T* dst, const float* src) {
  Pack<T, N> p;
#pragma unroll
  for (int k = 0; k < N; ++k) p.v[k] = from_float<T>(src[k]);
  *reinterpret_cast<Pack<T, N>*>(dst) = p;
}

// N elements copied as they are, no conversion.
template <typename T, int N>
__device__ __forceinline__ void copy_pack(T* dst, const T* src) {
  *reinterpret_cast<Pack<T, N>*>(dst) = *reinterpret_cast<const Pack<T, N>*>(src);
}

// ---- Host side: alignment, pointers, dtype dispatch, launches ---------------------------------

// Whether t's first element sits on a multiple of `bytes`: the test every vectorised path makes
// on its pointers (strides and lengths are the caller's to check).
inline bool is_aligned(const at::Tensor& t, int64_t bytes) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % bytes == 0;
}

inline bool all_aligned(std::initializer_list<const at::Tensor*> tensors, int64_t bytes) {
  return std::all_of(tensors.begin(), tensors.end(),
                     [&](const at::Tensor* t) { return is_aligned(*t, bytes); });
}

// t contiguous and starting on a multiple of `bytes`: t itself when it is, else a copy (a view
// at an odd storage offset moves to a fresh, aligned allocation).
inline at::Tensor aligned_contiguous(const at::Tensor& t, int64_t bytes) {
  const at::Tensor c = t.contiguous();
  return is_aligned(c, bytes) ? c : c.clone();
}

template <typename T>
const T* ptr(const at::Tensor& t) {
  return t.defined() ? reinterpret_cast<const T*>(t.data_ptr()) : nullptr;
}
template <typename T>
T* mutable_ptr(at::Tensor& t) {
  return t.defined() ? reinterpret_cast<T*>(t.data_ptr()) : nullptr;
}

// Calls f(T{}) with T the CUDA element type of dtype (bf16, fp16 or fp32); `what` names the
// caller in the error for any other dtype.
template <typename F>
void dispatch_float_dtype(at::ScalarType dtype, const char* what, F&& f) {
  switch (dtype) {
    case at::kBFloat16:
      f(__nv_bfloat16{});
      return;
    case at::kHalf:
      f(__half{});
      return;
    case at::kFloat:
      f(float{});
      return;
    default:
      TORCH_CHECK(false, what, ": bf16, fp16 or fp32 expected, got ", dtype);
  }
}

inline int multiprocessors() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

// As many blocks as are resident at once, at most `needed`: a grid-stride kernel then runs in one
// wave (a grid of 1.5 waves leaves half the device idle for the last third of the time).
template <typename... Params>
int resident_blocks(void (*kernel)(Params...), int threads, int64_t needed,
                    size_t dynamic_smem = 0) {
  int per_multiprocessor = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_multiprocessor, kernel, threads,
                                                               dynamic_smem));
  const int64_t resident = int64_t{std::max(per_multiprocessor, 1)} * multiprocessors();
  return static_cast<int>(std::min(needed, resident));
}

// kernel<<<grid, block, shared_bytes, stream>>>(args...), then the launch's own error (a bad
// grid, too much shared memory) raised here, naming this launch, instead of surfacing at some
// later call on the stream.
template <typename... Params, typename... Args>
void launch_checked(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                    cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cca::kernels
