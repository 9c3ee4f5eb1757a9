// Launchers of the add + RMSNorm kernels: rows up to kWarpRowMaxDim wide go to the warp-row
// kernels (add_rms_norm_warp_rows.cuh), wider ones to the block-row kernels
// (add_rms_norm_wide_rows.cuh). Both come with 4-element packs when E % 4 == 0 and single
// elements otherwise. The weight gradient's per-block partials are then added by one more kernel
// in a fixed order, so every result is bit-reproducible.
#include "add_rms_norm.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <type_traits>

#include "add_rms_norm_warp_rows.cuh"
#include "add_rms_norm_wide_rows.cuh"
#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

// out[c] = Σ_p partials[p][c], p ascending within each of 8 strided lanes, then the 8 lanes in
// order: the same bits on every run.
__global__ void sum_weight_partials_kernel(const float* partials, float* out, int parts, int dim) {
  __shared__ float lanes[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float total = 0.0f;
  if (c < dim) {
    for (int p = threadIdx.y; p < parts; p += 8) total += partials[int64_t{p} * dim + c];
  }
  lanes[threadIdx.y][threadIdx.x] = total;
  __syncthreads();
  if (threadIdx.y == 0 && c < dim) {
    float sum = 0.0f;
#pragma unroll
    for (int y = 0; y < 8; ++y) sum += lanes[y][threadIdx.x];
    out[c] = sum;
  }
}

template <typename T>
using ForwardKernel = void (*)(const float*, const T*, const float*, float*, T*, float*, int64_t,
                               int, float);
template <typename T>
using BackwardKernel = void (*)(const T*, const float*, const float*, const float*, const float*,
                                float*, T*, float*, int64_t, int);

// The kernel that takes rows of one width, and its launch shape.
template <typename Kernel>
struct RowKernel {
  Kernel kernel;
  int threads;
  int rows_per_block;

  int64_t blocks_needed(int64_t rows) const { return (rows + rows_per_block - 1) / rows_per_block; }
};

// Warp rows with the fewest elements per lane (8, 16, 32, 64) that cover E; wider rows on 8
// warps up to 4096, 32 beyond.
template <typename T, int kVec>
RowKernel<ForwardKernel<T>> forward_kernel_for(int dim) {
  constexpr int kWarps = kWarpRowForwardWarps;
  if (dim <= 256) return {add_rms_norm_forward_kernel<T, kVec, 8 / kVec>, kWarps * 32, kWarps};
  if (dim <= 512) return {add_rms_norm_forward_kernel<T, kVec, 16 / kVec>, kWarps * 32, kWarps};
  if (dim <= 1024) return {add_rms_norm_forward_kernel<T, kVec, 32 / kVec>, kWarps * 32, kWarps};
  if (dim <= kWarpRowMaxDim) {
    return {add_rms_norm_forward_kernel<T, kVec, 64 / kVec>, kWarps * 32, kWarps};
  }
  if (dim <= 4096) return {add_rms_norm_forward_wide_kernel<T, kVec, 8>, 8 * 32, 1};
  return {add_rms_norm_forward_wide_kernel<T, kVec, 32>, 32 * 32, 1};
}

template <typename T, int kVec>
RowKernel<BackwardKernel<T>> backward_kernel_for(int dim) {
  constexpr int kWarps = kWarpRowBackwardWarps;
  if (dim <= 256) return {add_rms_norm_backward_kernel<T, kVec, 8 / kVec>, kWarps * 32, kWarps};
  if (dim <= 512) return {add_rms_norm_backward_kernel<T, kVec, 16 / kVec>, kWarps * 32, kWarps};
  if (dim <= 1024) return {add_rms_norm_backward_kernel<T, kVec, 32 / kVec>, kWarps * 32, kWarps};
  if (dim <= kWarpRowMaxDim) {
    return {add_rms_norm_backward_kernel<T, kVec, 64 / kVec>, kWarps * 32, kWarps};
  }
  if (dim <= 4096) return {add_rms_norm_backward_wide_kernel<T, kVec, 8>, 8 * 32, 1};
  return {add_rms_norm_backward_wide_kernel<T, kVec, 32>, 32 * 32, 1};
}

// Elements per pack: 4 (16 bytes of the fp32 rows) when every row starts on a multiple of 4.
int pack_elements(int64_t dim) {
  return dim % 4 == 0 ? 4 : 1;
}

// t contiguous and aligned for packs of `vec` elements.
at::Tensor packable(const at::Tensor& t, int64_t vec) {
  return aligned_contiguous(t, vec * t.element_size());
}

// Calls f(T{}, std::integral_constant<int, kVec>{}) for the output dtype and E's packs.
template <typename F>
void dispatch(at::ScalarType dtype, int64_t dim, F&& f) {
  dispatch_float_dtype(dtype, "add_rms_norm", [&](auto tag) {
    if (pack_elements(dim) == 4) return f(tag, std::integral_constant<int, 4>{});
    return f(tag, std::integral_constant<int, 1>{});
  });
}

}  // namespace

bool add_rms_norm_supported(int64_t dim, const at::Tensor& delta, at::ScalarType out_dtype) {
  const bool out_ok =
      out_dtype == at::kBFloat16 || out_dtype == at::kHalf || out_dtype == at::kFloat;
  const bool delta_ok = !delta.defined() || delta.scalar_type() == out_dtype;
  return out_ok && delta_ok && dim > 0 && dim <= kAddRmsNormMaxDim;
}

AddRmsNormForward add_rms_norm_forward_cuda(const at::Tensor& residual, const at::Tensor& delta,
                                            const at::Tensor& weight, double eps,
                                            at::ScalarType out_dtype) {
  TORCH_CHECK(residual.is_cuda() && residual.dim() == 2 && residual.scalar_type() == at::kFloat,
              "add_rms_norm: residual must be a CUDA fp32 [M, E] tensor");
  const int64_t rows = residual.size(0);
  const int dim = static_cast<int>(residual.size(1));
  TORCH_CHECK(add_rms_norm_supported(residual.size(1), delta, out_dtype),
              "add_rms_norm: unsupported width or dtypes (E = ", residual.size(1), ")");
  TORCH_CHECK(!delta.defined() || delta.sizes() == residual.sizes(),
              "add_rms_norm: delta must be shaped like residual");
  TORCH_CHECK(weight.scalar_type() == at::kFloat && weight.numel() == dim,
              "add_rms_norm: weight must be fp32 [E]");
  const c10::cuda::CUDAGuard guard(residual.device());
  const int64_t vec = pack_elements(dim);
  const at::Tensor x = packable(residual, vec), w = packable(weight, vec);
  const at::Tensor d = delta.defined() ? packable(delta, vec) : delta;
  AddRmsNormForward result;
  result.sum = d.defined() ? at::empty_like(x) : at::Tensor();
  result.out = at::empty(x.sizes(), x.options().dtype(out_dtype));
  result.rstd = at::empty({rows}, x.options());
  if (rows == 0) return result;
  const auto stream = at::cuda::getCurrentCUDAStream();
  dispatch(out_dtype, dim, [&](auto tag, auto pack) {
    using T = decltype(tag);
    const auto choice = forward_kernel_for<T, decltype(pack)::value>(dim);
    const int blocks = resident_blocks(choice.kernel, choice.threads, choice.blocks_needed(rows));
    launch_checked(choice.kernel, blocks, choice.threads, 0, stream, x.data_ptr<float>(), ptr<T>(d),
                   w.data_ptr<float>(), d.defined() ? result.sum.data_ptr<float>() : nullptr,
                   mutable_ptr<T>(result.out), result.rstd.data_ptr<float>(), rows, dim,
                   static_cast<float>(eps));
  });
  return result;
}

AddRmsNormBackward add_rms_norm_backward_cuda(const at::Tensor& grad_out, const at::Tensor& h,
                                              const at::Tensor& weight, const at::Tensor& rstd,
                                              const at::Tensor& grad_through,
                                              std::optional<at::ScalarType> delta_dtype) {
  TORCH_CHECK(
      h.is_cuda() && h.dim() == 2 && h.scalar_type() == at::kFloat && grad_out.sizes() == h.sizes(),
      "add_rms_norm backward: h must be CUDA fp32 [M, E] and grad_out shaped like it");
  const int64_t rows = h.size(0);
  const int dim = static_cast<int>(h.size(1));
  TORCH_CHECK(add_rms_norm_supported(h.size(1), at::Tensor(), grad_out.scalar_type()),
              "add_rms_norm backward: unsupported width or dtype (E = ", h.size(1), ")");
  TORCH_CHECK(!delta_dtype || *delta_dtype == grad_out.scalar_type(),
              "add_rms_norm backward: delta's gradient must be in the output's dtype");
  TORCH_CHECK(!grad_through.defined() ||
                  (grad_through.scalar_type() == at::kFloat && grad_through.sizes() == h.sizes()),
              "add_rms_norm backward: grad_through must be fp32 and shaped like h");
  const c10::cuda::CUDAGuard guard(h.device());
  const int64_t vec = pack_elements(dim);
  const at::Tensor dy = packable(grad_out, vec), x = packable(h, vec), w = packable(weight, vec);
  const at::Tensor through = grad_through.defined() ? packable(grad_through, vec) : grad_through;
  AddRmsNormBackward result;
  result.grad_sum = at::empty_like(x);
  result.grad_delta = delta_dtype ? at::empty_like(dy) : at::Tensor();
  result.grad_weight = at::zeros({dim}, x.options());
  if (rows == 0) return result;
  const auto stream = at::cuda::getCurrentCUDAStream();
  at::Tensor partials;
  int parts = 0;
  dispatch(dy.scalar_type(), dim, [&](auto tag, auto pack) {
    using T = decltype(tag);
    const auto choice = backward_kernel_for<T, decltype(pack)::value>(dim);
    // The grid depends on the device only, so the weight gradient's summation order is fixed.
    parts = resident_blocks(choice.kernel, choice.threads, choice.blocks_needed(rows));
    partials = at::empty({parts, dim}, x.options());
    launch_checked(choice.kernel, parts, choice.threads, 0, stream, ptr<T>(dy), x.data_ptr<float>(),
                   w.data_ptr<float>(), rstd.data_ptr<float>(),
                   through.defined() ? through.data_ptr<float>() : nullptr,
                   result.grad_sum.data_ptr<float>(), mutable_ptr<T>(result.grad_delta),
                   partials.data_ptr<float>(), rows, dim);
  });
  launch_checked(sum_weight_partials_kernel, (dim + 31) / 32, dim3(32, 8), 0, stream,
                 partials.data_ptr<float>(), result.grad_weight.data_ptr<float>(), parts, dim);
  return result;
}

}  // namespace cca::kernels
