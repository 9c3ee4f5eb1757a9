// NCCL process groups, compiled with USE_C10D_NCCL where nccl.h was found (the CUDA build of
// LibTorch ships it in the nvidia-nccl wheel); a stub otherwise.
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "dist/backends.h"
#include "util/error.h"

#ifdef CCA_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace cca::dist {

#ifdef CCA_WITH_NCCL

bool nccl_built() {
  return true;
}

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int world_size,
                                                    std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  // NCCL's watchdog aborts a collective that runs past this and ends the process with a message
  // naming the operation (WorkNCCL(OpType=..., Timeout(ms)=...)); the launcher then reports it.
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
}

#else

bool nccl_built() {
  return false;
}

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int,
                                                    int, std::chrono::milliseconds) {
  throw Error(
      "distributed.backend nccl: this build has no NCCL (nccl.h was not found at configure time); "
      "use distributed.backend: gloo, or rebuild against the CUDA build of LibTorch");
}

#endif

void set_cuda_device(int index) {
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)
      ->setDevice(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index)));
}

}  // namespace cca::dist
