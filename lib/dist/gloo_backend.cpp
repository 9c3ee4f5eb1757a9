// Only this file sees Gloo's headers (ProcessGroupGloo.hpp includes them; LibTorch's wheel does not
// ship them, Debian's libgloo-dev does). We call nothing of Gloo's directly and link no libgloo:
// the code is the copy inside libtorch_cpu.
#include <cstdlib>

#include "dist/backends.h"
#include "util/error.h"

#ifdef CCA_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace cca::dist {

#ifdef CCA_WITH_GLOO

namespace {

bool is_loopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

}  // namespace

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int world_size,
                                                    std::chrono::milliseconds timeout,
                                                    const std::string& master_addr) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  if (interface != nullptr && *interface != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  } else if (is_loopback(master_addr)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  // Two threads run collectives: enough to overlap a gradient bucket with the next one's launch.
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
}

#else

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>&, int,
                                                    int, std::chrono::milliseconds,
                                                    const std::string&) {
  throw Error(
      "this build has no Gloo process groups (gloo/context.h was not found at configure time), "
      "so it cannot run data parallel; install libgloo-dev (or unpack the offline bundle) and "
      "rebuild");
}

#endif

}  // namespace cca::dist
