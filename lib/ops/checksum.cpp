#include "ops/checksum.h"

#include <cstring>

#include "util/error.h"

#ifdef CCA_WITH_CUDA
#include "tensor_checksum.h"
#endif

namespace cca {
namespace {

uint64_t checksum_cpu(const at::Tensor& contiguous) {
  const auto* bytes = static_cast<const unsigned char*>(contiguous.data_ptr());
  const size_t n_bytes = contiguous.numel() * contiguous.element_size();
  uint64_t sum = 0;
  const size_t n_words = (n_bytes + 3) / 4;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t word = 0;
    std::memcpy(&word, bytes + 4 * i, std::min<size_t>(4, n_bytes - 4 * i));
    sum += checksum_mix(word, i);
  }
  return sum;
}

}  // namespace

uint64_t tensor_checksum(const at::Tensor& tensor) {
  const at::Tensor contiguous = tensor.contiguous();
  if (contiguous.is_cpu()) return checksum_cpu(contiguous);
#ifdef CCA_WITH_CUDA
  if (contiguous.is_cuda()) return kernels::tensor_checksum_cuda(contiguous);
#endif
  throw Error("tensor_checksum: unsupported device " + contiguous.device().str());
}

}  // namespace cca
