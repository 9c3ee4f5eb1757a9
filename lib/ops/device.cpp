#include "ops/device.h"

#include <ATen/Parallel.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>

#include <fstream>
#include <string>

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

std::string device_name(const at::Device& device) {
  if (!device.is_cuda()) return "CPU";
  return at::cuda::getDeviceProperties(device.index())->name;
}

namespace {

// Reads "VmRSS:   123 kB"-style fields of /proc/self/status; 0 where absent (not Linux).
double proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024.0;
  }
  return 0;
}

}  // namespace

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

namespace {

// "cuda" without an index means the current device; the allocator wants a real index.
c10::DeviceIndex cuda_index(const at::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}

}  // namespace

MemoryUse memory_use(const at::Device& device) {
  MemoryUse use;
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device));
    const auto& allocated =
        stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)];
    use.current_bytes = static_cast<double>(allocated.current);
    use.peak_bytes = static_cast<double>(allocated.peak);
    return use;
  }
  use.current_bytes = proc_status_bytes("VmRSS");
  use.peak_bytes = proc_status_bytes("VmHWM");
  return use;
}

void reset_peak_memory(const at::Device& device) {
  if (device.is_cuda()) {
    // The allocator knows no device before the first CUDA tensor (it would say "Invalid device
    // argument"); a run being measured has not made one yet.
    (void)at::empty({1}, at::TensorOptions().device(device));
    synchronize(device);
    c10::cuda::CUDACachingAllocator::emptyCache();
    c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device));
    return;
  }
  std::ofstream clear_refs("/proc/self/clear_refs");
  if (clear_refs) clear_refs << "5";  // "5": reset VmHWM to VmRSS (Linux ≥ 4.0)
}

}  // namespace cca
