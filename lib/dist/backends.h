// Creating c10d process-group backends. Gloo (CPU; headers from Debian's libgloo-dev, code inside
// libtorch_cpu) and NCCL (CUDA; libtorch_cuda) live in their own translation units because their
// headers are heavy and NCCL's exist only where the CUDA build of LibTorch does.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

namespace cca::dist {

// Gloo over TCP. `master_addr` chooses the network interface: a loopback address keeps a
// one-node job on 127.0.0.1; otherwise GLOO_SOCKET_IFNAME, else the host name's address.
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int world_size,
                                                    std::chrono::milliseconds timeout,
                                                    const std::string& master_addr);

// Whether this build can create NCCL process groups.
bool nccl_built();
// NCCL on the current CUDA device (call set_cuda_device first). Throws cca::Error when this build
// has no NCCL.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int world_size,
                                                    std::chrono::milliseconds timeout);
// Makes `index` the current CUDA device of this process (one GPU per local rank).
void set_cuda_device(int index);

}  // namespace cca::dist
