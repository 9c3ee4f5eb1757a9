#include "dist/communicator.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "dist/backends.h"
#include "dist/context_group.h"
#include "util/error.h"
#include "util/format.h"
#include "util/log.h"

namespace cca::dist {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

// c10 errors carry a C++ backtrace in what(); users need the first line of the cause.
std::string cause_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    return c10_error->what_without_backtrace();
  }
  return e.what();
}

}  // namespace

Communicator::Communicator(const WorldEnvironment& world, const DistributedConfig& config,
                           const at::Device& device)
    : world_(world), device_(device), timeout_s_(config.timeout_s) {
  connect_store();
  create_groups(config);
}

Communicator::~Communicator() {
  // Unwinding from a failure, or after a failed collective: a peer may be gone or stuck, and the
  // backends' destructors would wait for it (up to the timeout). The process is about to exit, so
  // the groups are leaked on purpose.
  if (failed_ || std::uncaught_exceptions() > 0) {
    (void)device_group_.release();
    (void)host_group_.release();
    (void)context_backend_.release();
    (void)store_.release();
  }
}

void Communicator::connect_store() {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(world_.master_port);
  // torchrun's agent already serves a store on MASTER_PORT and says so; rank 0 is a client then.
  const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  const bool under_agent = agent_store != nullptr && std::string(agent_store) == "True";
  options.isServer = world_.rank == 0 && !under_agent;
  options.numWorkers = static_cast<size_t>(world_.world_size);
  options.waitWorkers = true;
  options.timeout = to_ms(timeout_s_);
  const Clock::time_point start = Clock::now();
  try {
    c10::intrusive_ptr<c10d::Store> tcp =
        c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
    // A restarted torchrun attempt reuses the agent's store: keep each attempt's keys apart.
    const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
    store_ = c10::make_intrusive<c10d::PrefixStore>(
        std::string("cca-train/attempt") + (restart != nullptr ? restart : "0"), tcp);
  } catch (const std::exception& e) {
    const std::string role =
        world_.rank == 0 ? format(
                               "could not host the rendezvous store on port {} or not every "
                               "one of the {} ranks reached it",
                               world_.master_port, world_.world_size)
                         : format("could not reach the rendezvous store at {}:{}",
                                  world_.master_addr, world_.master_port);
    throw Error(format(
        "rank {}: {} within {:.0f} s (distributed.timeout_s; MASTER_ADDR/MASTER_PORT from {}): {}",
        world_.rank, role, timeout_s_, world_.source, cause_of(e)));
  }
  log::debug("dist        rendezvous done in {:.2f} s",
             std::chrono::duration<double>(Clock::now() - start).count());
}

void Communicator::create_groups(const DistributedConfig& config) {
  const std::string wanted =
      config.backend == "auto" ? (device_.is_cuda() ? "nccl" : "gloo") : config.backend;
  if (wanted == "nccl" && !device_.is_cuda()) {
    throw Error("distributed.backend nccl needs CUDA tensors, but training runs on " +
                device_.str() + "; use distributed.backend: gloo or auto");
  }
  const std::chrono::milliseconds timeout = to_ms(timeout_s_);
  try {
    const auto host_store = c10::make_intrusive<c10d::PrefixStore>("host", store_);
    host_group_ =
        make_gloo_backend(host_store, world_.rank, world_.world_size, timeout, world_.master_addr);
    if (wanted == "nccl") {
      set_cuda_device(device_.index());
      const auto device_store = c10::make_intrusive<c10d::PrefixStore>("device", store_);
      device_group_ = make_nccl_backend(device_store, world_.rank, world_.world_size, timeout);
    } else {
      device_group_ = host_group_;  // one Gloo group serves both
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(format("rank {}: cannot create the {} process group: {}", world_.rank, wanted,
                       cause_of(e)));
  }
  backend_name_ = wanted;
  if (config.context_parallel > 1) create_context_group(static_cast<int>(config.context_parallel));
}

void Communicator::create_context_group(int context_parallel) {
  const ContextLayout layout{context_parallel, world_.world_size};
  if (world_.world_size % context_parallel != 0) {
    throw Error(format(
        "distributed.context_parallel = {} does not divide the {} ranks; allowed: a divisor of "
        "the world size (world = data-parallel replicas x context_parallel)",
        context_parallel, world_.world_size));
  }
  const int replica = layout.replica_of(world_.rank), position = layout.position_of(world_.rank);
  try {
    // Each replica's group rendezvouses under its own prefix of the one store.
    const auto store =
        c10::make_intrusive<c10d::PrefixStore>("context" + std::to_string(replica), store_);
    context_backend_ = backend_name_ == "nccl"
                           ? make_nccl_backend(store, position, context_parallel, to_ms(timeout_s_))
                           : make_gloo_backend(store, position, context_parallel, to_ms(timeout_s_),
                                               world_.master_addr);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(format("rank {}: cannot create the context-parallel group of replica {}: {}",
                       world_.rank, replica, cause_of(e)));
  }
  context_group_ =
      std::make_shared<ContextGroup>(*this, context_backend_, position, context_parallel);
}

c10::intrusive_ptr<c10d::Work> Communicator::start_checked(
    const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  try {
    return start();
  } catch (const std::exception& e) {
    fail(what, cause_of(e));
  }
}

void Communicator::fail(const std::string& what, const std::string& cause) {
  failed_ = true;
  throw Error(
      format("rank {} of {}: {} failed: {}. If another rank died, its own error (or the launcher's "
             "message) names the first failure; a rank that stops answering ends every collective "
             "after distributed.timeout_s ({:.0f} s)",
             world_.rank, world_.world_size, what, cause, timeout_s_));
}

void Communicator::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  try {
    // Gloo blocks the host anyway, so a deadline costs nothing and guards against any stall.
    // NCCL's wait only orders streams (no host sync); its watchdog enforces the timeout.
    const auto deadline =
        device_group_->getBackendName() == "nccl" ? ::kNoTimeout : to_ms(timeout_s_ + 5.0);
    if (!work->wait(deadline)) fail(what, "the operation did not complete");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, cause_of(e));
  }
}

c10::intrusive_ptr<c10d::Work> Communicator::start_all_reduce_sum(
    std::vector<at::Tensor>& tensors) {
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  try {
    return device_group_->allreduce(tensors, options);
  } catch (const std::exception& e) {
    fail("starting an all-reduce", cause_of(e));
  }
}

void Communicator::all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  wait(start_all_reduce_sum(tensors), what);
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (at::Tensor& tensor : tensors) {  // one tensor per call: Gloo wants them on one device
    std::vector<at::Tensor> one = {tensor};
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = device_group_->broadcast(one, options);
    } catch (const std::exception& e) {
      fail(what, cause_of(e));
    }
    wait(work, what);
  }
}

int64_t Communicator::host_reduce(int64_t value, c10d::ReduceOp op, const std::string& what) {
  std::vector<at::Tensor> tensors = {at::full({1}, value, at::TensorOptions().dtype(at::kLong))};
  c10d::AllreduceOptions options;
  options.reduceOp = op;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = host_group_->allreduce(tensors, options);
  } catch (const std::exception& e) {
    fail(what, cause_of(e));
  }
  wait(work, what);
  return tensors[0].item<int64_t>();
}

int64_t Communicator::sum(int64_t value, const std::string& what) {
  return host_reduce(value, c10d::ReduceOp::SUM, what);
}

int64_t Communicator::max(int64_t value, const std::string& what) {
  return host_reduce(value, c10d::ReduceOp::MAX, what);
}

std::vector<std::string> Communicator::all_gather(const std::string& bytes,
                                                  const std::string& what) {
  // Gloo gathers equal-sized tensors: agree on the longest, pad, then cut each back.
  const int64_t longest = max(static_cast<int64_t>(bytes.size()), what + " (sizes)");
  const auto u8 = at::TensorOptions().dtype(at::kByte);
  at::Tensor mine = at::zeros({longest + 8}, u8);
  const int64_t size = static_cast<int64_t>(bytes.size());
  std::memcpy(mine.data_ptr(), &size, sizeof size);
  if (!bytes.empty()) std::memcpy(mine.data_ptr<uint8_t>() + 8, bytes.data(), bytes.size());
  std::vector<at::Tensor> inputs = {mine};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < world_.world_size; ++r) outputs[0].push_back(at::empty_like(mine));
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = host_group_->allgather(outputs, inputs);
  } catch (const std::exception& e) {
    fail(what, cause_of(e));
  }
  wait(work, what);
  std::vector<std::string> result;
  for (const at::Tensor& t : outputs[0]) {
    int64_t length = 0;
    std::memcpy(&length, t.data_ptr(), sizeof length);
    length = std::clamp<int64_t>(length, 0, longest);
    result.emplace_back(reinterpret_cast<const char*>(t.data_ptr<uint8_t>() + 8),
                        static_cast<size_t>(length));
  }
  return result;
}

void Communicator::barrier(const std::string& what) {
  // A one-element all-reduce rather than Backend::barrier: NCCL's barrier needs a device guess
  // and Gloo's has no timeout of its own; this goes through the same checked wait as the rest.
  (void)host_reduce(0, c10d::ReduceOp::SUM, what);
}

}  // namespace cca::dist
