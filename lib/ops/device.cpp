#include "ops/device.h"

#include <ATen/Parallel.h>
#include <ATen/cuda/CUDAContext.h>
#include <torch/cuda.h>

#include "util/error.h"
#include "util/format.h"
#include "util/torch_compat.h"

namespace cca {

bool built_with_cuda_kernels() {
#ifdef CCA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
  return torch::cuda::is_available();
}

at::Device resolve_device(const std::string& requested, int local_rank) {
  if (requested == "cpu") return at::Device(at::kCPU);
  const bool have_cuda = cuda_available();
  if (requested == "cuda" && !have_cuda) {
    throw Error("train.device is cuda, but no CUDA device is usable here (LibTorch sees " +
                std::to_string(static_cast<int>(torch::cuda::device_count())) +
                " devices); use train.device: cpu or auto");
  }
  if (!have_cuda) return at::Device(at::kCPU);
  const int count = static_cast<int>(torch::cuda::device_count());
  if (local_rank >= count) {
    throw Error(
        format("local rank {} needs a GPU of its own, but only {} are visible", local_rank, count));
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

std::string describe_device(const at::Device& device) {
  if (device.is_cpu()) return format("CPU ({} threads)", at::get_num_threads());
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device.index());
  return format("{} (sm_{}{}, {:.1f} GiB)", prop->name, prop->major, prop->minor,
                static_cast<double>(prop->totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
}

std::string describe_runtime() {
  std::string text = format("LibTorch {}", TORCH_VERSION);
  text += built_with_cuda_kernels() ? ", CUDA kernels built" : ", no CUDA kernels";
  if (cuda_available()) {
    text += format(", {} GPU(s) visible", static_cast<int>(torch::cuda::device_count()));
  }
  return text;
}

}  // namespace cca
