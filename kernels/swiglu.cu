// Grid-stride loops over the flat tensors, 16-byte accesses when every pointer and the length
// allow them. fp32 math throughout, one rounding per output.
#include "swiglu.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

constexpr int kBlock = 256;

__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + __expf(-x));
}

template <typename T, int N>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, int64_t packs) {
  for (int64_t p = blockIdx.x * int64_t{kBlock} + threadIdx.x; p < packs;
       p += int64_t{gridDim.x} * kBlock) {
    float g[N], u[N], o[N];
    load_floats<T, N>(gate + p * N, g);
    load_floats<T, N>(up + p * N, u);
#pragma unroll
    for (int i = 0; i < N; ++i) o[i] = g[i] * sigmoid(g[i]) * u[i];
    store_floats<T, N>(out + p * N, o);
  }
}

template <typename T, int N>
__global__ void swiglu_backward_kernel(const T* grad, const T* gate, const T* up, T* grad_gate,
                                       T* grad_up, int64_t packs) {
  for (int64_t p = blockIdx.x * int64_t{kBlock} + threadIdx.x; p < packs;
       p += int64_t{gridDim.x} * kBlock) {
    float d[N], g[N], u[N], dg[N], du[N];
    load_floats<T, N>(grad + p * N, d);
    load_floats<T, N>(gate + p * N, g);
    load_floats<T, N>(up + p * N, u);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const float s = sigmoid(g[i]);
      du[i] = d[i] * g[i] * s;
      dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
    store_floats<T, N>(grad_gate + p * N, dg);
    store_floats<T, N>(grad_up + p * N, du);
  }
}

int grid_for(int64_t packs) {
  return static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>((packs + kBlock - 1) / kBlock, int64_t{multiprocessors()} * 16)));
}

void check_pair(const at::Tensor& a, const at::Tensor& b, const char* what) {
  TORCH_CHECK(a.is_cuda() && a.is_contiguous() && b.is_contiguous() && a.sizes() == b.sizes() &&
                  a.scalar_type() == b.scalar_type() && a.device() == b.device(),
              what, ": contiguous CUDA tensors of one shape and dtype expected");
}

template <typename T>
void launch_forward(const at::Tensor& gate, const at::Tensor& up, at::Tensor& out, bool wide) {
  constexpr int kWide = 16 / sizeof(T);
  const int64_t n = gate.numel();
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto* g = static_cast<const T*>(gate.data_ptr());
  const auto* u = static_cast<const T*>(up.data_ptr());
  auto* o = static_cast<T*>(out.data_ptr());
  if (wide) {
    launch_checked(swiglu_forward_kernel<T, kWide>, grid_for(n / kWide), kBlock, 0, stream, g, u, o,
                   n / kWide);
  } else {
    launch_checked(swiglu_forward_kernel<T, 1>, grid_for(n), kBlock, 0, stream, g, u, o, n);
  }
}

template <typename T>
void launch_backward(const at::Tensor& grad, const at::Tensor& gate, const at::Tensor& up,
                     at::Tensor& grad_gate, at::Tensor& grad_up, bool wide) {
  constexpr int kWide = 16 / sizeof(T);
  const int64_t n = gate.numel();
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto* d = static_cast<const T*>(grad.data_ptr());
  const auto* g = static_cast<const T*>(gate.data_ptr());
  const auto* u = static_cast<const T*>(up.data_ptr());
  auto* dg = static_cast<T*>(grad_gate.data_ptr());
  auto* du = static_cast<T*>(grad_up.data_ptr());
  if (wide) {
    launch_checked(swiglu_backward_kernel<T, kWide>, grid_for(n / kWide), kBlock, 0, stream, d, g,
                   u, dg, du, n / kWide);
  } else {
    launch_checked(swiglu_backward_kernel<T, 1>, grid_for(n), kBlock, 0, stream, d, g, u, dg, du,
                   n);
  }
}

}  // namespace

at::Tensor swiglu_forward_cuda(const at::Tensor& gate, const at::Tensor& up) {
  check_pair(gate, up, "swiglu_forward_cuda");
  const c10::cuda::CUDAGuard guard(gate.device());
  at::Tensor out = at::empty_like(gate);
  const int64_t n = gate.numel();
  if (n == 0) return out;
  const int64_t vec = 16 / static_cast<int64_t>(gate.element_size());
  const bool wide = n % vec == 0 && all_aligned({&gate, &up, &out}, 16);
  dispatch_float_dtype(gate.scalar_type(), "swiglu",
                       [&](auto tag) { launch_forward<decltype(tag)>(gate, up, out, wide); });
  return out;
}

std::pair<at::Tensor, at::Tensor> swiglu_backward_cuda(const at::Tensor& grad_out,
                                                       const at::Tensor& gate,
                                                       const at::Tensor& up) {
  check_pair(gate, up, "swiglu_backward_cuda");
  check_pair(gate, grad_out, "swiglu_backward_cuda");
  const c10::cuda::CUDAGuard guard(gate.device());
  at::Tensor grad_gate = at::empty_like(gate), grad_up = at::empty_like(up);
  const int64_t n = gate.numel();
  if (n == 0) return {grad_gate, grad_up};
  const int64_t vec = 16 / static_cast<int64_t>(gate.element_size());
  const bool wide = n % vec == 0 && all_aligned({&grad_out, &gate, &up, &grad_gate, &grad_up}, 16);
  dispatch_float_dtype(gate.scalar_type(), "swiglu", [&](auto tag) {
    launch_backward<decltype(tag)>(grad_out, gate, up, grad_gate, grad_up, wide);
  });
  return {grad_gate, grad_up};
}

}  // namespace cca::kernels
