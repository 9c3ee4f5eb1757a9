// Choosing and describing the compute device.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace cca {

// Whether this binary was built with our CUDA kernels.
bool built_with_cuda_kernels();
// Whether a CUDA device is usable right now (driver present, at least one GPU visible).
bool cuda_available();
// Resolves train.device ("auto" | "cpu" | "cuda"); throws cca::Error if cuda is asked for and
// none is usable, saying why.
at::Device resolve_device(const std::string& requested, int local_rank = 0);
// "NVIDIA H200 (sm_90, 139.8 GiB)" or "CPU (16 threads)".
std::string describe_device(const at::Device& device);
// The name CUDA reports ("NVIDIA H200"), or "CPU".
std::string device_name(const at::Device& device);
// "LibTorch 2.11.0, CUDA 13.0, cuDNN 91900, NCCL ..." as far as this build knows.
std::string describe_runtime();

// Waits until every queued kernel on `device` has finished (nothing on CPU).
void synchronize(const at::Device& device);

// Memory in use and its peak so far, in bytes: the caching allocator's allocated bytes on CUDA,
// the process's resident set (VmRSS, VmHWM) on CPU.
struct MemoryUse {
  double current_bytes = 0;
  double peak_bytes = 0;
};
MemoryUse memory_use(const at::Device& device);

// Starts a new peak for memory_use: on CUDA frees the allocator's cached blocks and resets its
// peak; on CPU resets the resident-set high-water mark where the kernel allows it.
void reset_peak_memory(const at::Device& device);

}  // namespace cca
