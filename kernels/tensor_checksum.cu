// Deterministic tensor checksum: a sum of per-word hashes mod 2^64. Integer addition is
// associative, so the result is independent of the launch shape and equals the CPU version.
#include "tensor_checksum.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "device_helpers.cuh"

namespace cca::kernels {
namespace {

__device__ __forceinline__ unsigned long long mix(uint32_t word, unsigned long long index) {
  unsigned long long z =
      (static_cast<unsigned long long>(word) << 1 | 1ULL) ^ (index * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

__global__ void checksum_kernel(const unsigned char* __restrict__ bytes, size_t n_bytes,
                                unsigned long long* __restrict__ out) {
  const size_t n_words = (n_bytes + 3) / 4;
  const size_t full_words = n_bytes / 4;
  const auto* words = reinterpret_cast<const uint32_t*>(bytes);
  unsigned long long local = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n_words;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t word = 0;
    if (i < full_words) {
      word = words[i];
    } else {  // the last, partial word: little-endian bytes, zero padded
      for (size_t b = 0; 4 * i + b < n_bytes; ++b) word |= uint32_t(bytes[4 * i + b]) << (8 * b);
    }
    local += mix(word, i);
  }
  // Warp reduction, then one atomic per warp.
  for (int offset = 16; offset > 0; offset /= 2)
    local += __shfl_down_sync(0xffffffffu, local, offset);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, local);
}

}  // namespace

uint64_t tensor_checksum_cuda(const at::Tensor& contiguous) {
  TORCH_CHECK(contiguous.is_cuda() && contiguous.is_contiguous(),
              "tensor_checksum_cuda needs a contiguous CUDA tensor");
  const c10::cuda::CUDAGuard guard(contiguous.device());
  at::Tensor out = at::zeros({1}, contiguous.options().dtype(at::kLong));
  const size_t n_bytes = contiguous.numel() * contiguous.element_size();
  if (n_bytes == 0) return 0;
  // Storage offsets keep 4-byte alignment only for 4-byte dtypes; others go through a copy.
  const at::Tensor source = aligned_contiguous(contiguous, 4);
  const int threads = 256;
  const size_t n_words = (n_bytes + 3) / 4;
  const int blocks = static_cast<int>(std::min<size_t>((n_words + threads - 1) / threads, 4096));
  launch_checked(checksum_kernel, blocks, threads, 0, at::cuda::getCurrentCUDAStream(),
                 static_cast<const unsigned char*>(source.data_ptr()), n_bytes,
                 reinterpret_cast<unsigned long long*>(out.data_ptr<int64_t>()));
  return static_cast<uint64_t>(out.item<int64_t>());
}

}  // namespace cca::kernels
