// One warp per token: lane l holds 16-byte column packs l, l + 32, ... of the token's row, and the
// token's k row indices and gates sit in registers (k ≤ kMaxTopK, unrolled). The backward writes
// each expert row's gradient exactly once (row_of_slot is a permutation) and reduces each gate's
// dot product over the warp in a fixed order, so both directions give the same bits every run.
#include "moe_combine.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

constexpr int kWarps = 8;    // tokens per block
constexpr int kMaxTopK = 8;  // choices per token the kernels unroll

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    moe_combine_forward_kernel(const T* rows, const int64_t* row_of_slot, const float* gates,
                               T* out, int64_t tokens, int k, int width) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t t = int64_t{blockIdx.x} * kWarps + threadIdx.x / 32;
  if (t >= tokens) return;
  int64_t row[kMaxTopK];
  float gate[kMaxTopK];
#pragma unroll
  for (int j = 0; j < kMaxTopK; ++j) {
    row[j] = j < k ? row_of_slot[t * k + j] : 0;
    gate[j] = j < k ? gates[t * k + j] : 0.f;
  }
  for (int c = threadIdx.x % 32 * kVec; c < width; c += 32 * kVec) {
    float acc[kVec] = {};
#pragma unroll
    for (int j = 0; j < kMaxTopK; ++j) {
      if (j >= k) break;
      float r[kVec];
      load_floats<T, kVec>(rows + row[j] * width + c, r);
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[e] += gate[j] * r[e];
    }
    store_floats<T, kVec>(out + t * width + c, acc);
  }
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    moe_combine_backward_kernel(const T* grad_out, const T* rows, const int64_t* row_of_slot,
                                const float* gates, T* grad_rows, float* grad_gates, int64_t tokens,
                                int k, int width) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t t = int64_t{blockIdx.x} * kWarps + threadIdx.x / 32;
  if (t >= tokens) return;
  int64_t row[kMaxTopK];
  float gate[kMaxTopK], dot[kMaxTopK];
#pragma unroll
  for (int j = 0; j < kMaxTopK; ++j) {
    row[j] = j < k ? row_of_slot[t * k + j] : 0;
    gate[j] = j < k ? gates[t * k + j] : 0.f;
    dot[j] = 0.f;
  }
  for (int c = threadIdx.x % 32 * kVec; c < width; c += 32 * kVec) {
    float g[kVec];
    load_floats<T, kVec>(grad_out + t * width + c, g);
#pragma unroll
    for (int j = 0; j < kMaxTopK; ++j) {
      if (j >= k) break;
      float r[kVec], scaled[kVec];
      load_floats<T, kVec>(rows + row[j] * width + c, r);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        dot[j] += g[e] * r[e];
        scaled[e] = gate[j] * g[e];
      }
      store_floats<T, kVec>(grad_rows + row[j] * width + c, scaled);
    }
  }
#pragma unroll
  for (int j = 0; j < kMaxTopK; ++j) {
    if (j >= k) break;
    const float total = warp_sum(dot[j]);
    if (threadIdx.x % 32 == 0) grad_gates[t * k + j] = total;
  }
}

// The kernels move 16-byte packs.
constexpr int64_t kPackBytes = 16;

void check_arguments(const at::Tensor& rows, const at::Tensor& row_of_slot,
                     const at::Tensor& gates) {
  TORCH_CHECK(moe_combine_supported(rows, gates),
              "moe_combine: rows must be CUDA [T·k, E] bf16/fp16/fp32 with 16-byte rows, gates "
              "fp32 [T, k] with 1 ≤ k ≤ ",
              kMaxTopK);
  TORCH_CHECK(row_of_slot.scalar_type() == at::kLong && row_of_slot.numel() == rows.size(0) &&
                  gates.numel() == rows.size(0) && row_of_slot.device() == rows.device() &&
                  gates.device() == rows.device(),
              "moe_combine: row_of_slot (int64) and gates must have one entry per row");
}

int blocks_for(int64_t tokens) {
  return static_cast<int>((tokens + kWarps - 1) / kWarps);
}

}  // namespace

bool moe_combine_supported(const at::Tensor& rows, const at::Tensor& gates) {
  const at::ScalarType dtype = rows.scalar_type();
  const bool dtype_ok = dtype == at::kBFloat16 || dtype == at::kHalf || dtype == at::kFloat;
  return rows.is_cuda() && dtype_ok && rows.dim() == 2 &&
         rows.size(1) % (16 / rows.element_size()) == 0 && gates.dim() == 2 &&
         gates.scalar_type() == at::kFloat && gates.size(1) >= 1 && gates.size(1) <= kMaxTopK;
}

at::Tensor moe_combine_forward_cuda(const at::Tensor& rows, const at::Tensor& row_of_slot,
                                    const at::Tensor& gates) {
  check_arguments(rows, row_of_slot, gates);
  const c10::cuda::CUDAGuard guard(rows.device());
  const at::Tensor r = aligned_contiguous(rows, kPackBytes), index = row_of_slot.contiguous(),
                   g = gates.contiguous();
  const int64_t tokens = gates.size(0);
  const int k = static_cast<int>(gates.size(1)), width = static_cast<int>(rows.size(1));
  at::Tensor out = at::empty({tokens, width}, rows.options());
  if (tokens == 0) return out;
  const auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_float_dtype(rows.scalar_type(), "moe_combine", [&](auto tag) {
    using T = decltype(tag);
    launch_checked(moe_combine_forward_kernel<T>, blocks_for(tokens), kWarps * 32, 0, stream,
                   ptr<T>(r), index.data_ptr<int64_t>(), g.data_ptr<float>(), mutable_ptr<T>(out),
                   tokens, k, width);
  });
  return out;
}

MoeCombineGrads moe_combine_backward_cuda(const at::Tensor& grad_out, const at::Tensor& rows,
                                          const at::Tensor& row_of_slot, const at::Tensor& gates) {
  check_arguments(rows, row_of_slot, gates);
  TORCH_CHECK(grad_out.scalar_type() == rows.scalar_type() &&
                  grad_out.sizes() == at::IntArrayRef({gates.size(0), rows.size(1)}),
              "moe_combine backward: grad_out must be [T, E] in rows' dtype");
  const c10::cuda::CUDAGuard guard(rows.device());
  const at::Tensor go = aligned_contiguous(grad_out, kPackBytes),
                   r = aligned_contiguous(rows, kPackBytes);
  const at::Tensor index = row_of_slot.contiguous(), g = gates.contiguous();
  const int64_t tokens = gates.size(0);
  const int k = static_cast<int>(gates.size(1)), width = static_cast<int>(rows.size(1));
  MoeCombineGrads grads;
  grads.rows = at::empty_like(r);
  grads.gates = at::empty_like(g);
  if (tokens == 0) return grads;
  const auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_float_dtype(rows.scalar_type(), "moe_combine", [&](auto tag) {
    using T = decltype(tag);
    launch_checked(moe_combine_backward_kernel<T>, blocks_for(tokens), kWarps * 32, 0, stream,
                   ptr<T>(go), ptr<T>(r), index.data_ptr<int64_t>(), g.data_ptr<float>(),
                   mutable_ptr<T>(grads.rows), grads.gates.data_ptr<float>(), tokens, k, width);
  });
  return grads;
}

}  // namespace cca::kernels
