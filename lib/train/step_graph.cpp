#include "train/step_graph.h"

#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "model/transformer.h"

namespace cca {
namespace {

// Eager micro-batches before the capture: cuBLAS workspaces, cuDNN plans, RoPE tables and the
// kernels' one-time attributes are all made by then, on the stream the graph is captured on.
constexpr int64_t kWarmupRuns = 3;

// Autocast's cast cache would hand the capture a bf16 weight made outside it (then the graph
// would not recast updated weights), or keep one made inside it: off while this lives.
class NoCastCache {
 public:
  NoCastCache() : previous_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~NoCastCache() { at::autocast::set_autocast_cache_enabled(previous_); }
  NoCastCache(const NoCastCache&) = delete;
  NoCastCache& operator=(const NoCastCache&) = delete;

 private:
  bool previous_;
};

}  // namespace

struct MicroBatchGraph::State {
  State(TransformerImpl& model, const Precision& precision, const at::Device& device, double accum,
        c10::cuda::CUDAStream stream)
      : model(model), precision(precision), device(device), accum(accum), stream(stream) {}

  TransformerImpl& model;
  Precision precision;
  at::Device device;
  double accum;
  c10::cuda::CUDAStream stream;  // capture needs a stream other than the default one
  at::Tensor tokens, targets, inverse_valid, share, cross_entropy;
  at::cuda::CUDAGraph graph;
  int64_t eager_runs = 0;
  bool captured = false;
};

MicroBatchGraph::MicroBatchGraph(TransformerImpl& model, const Config& config,
                                 const Precision& precision, const at::Device& device)
    : state_(new State(model, precision, device, static_cast<double>(config.train.grad_accum),
                       c10::cuda::getStreamFromPool(false, device.index()))) {
  const auto f32 = at::TensorOptions(device).dtype(at::kFloat);
  state_->inverse_valid = at::zeros({}, f32);
  state_->share = at::zeros({}, f32);
  state_->cross_entropy = at::zeros({}, f32);
}

MicroBatchGraph::~MicroBatchGraph() = default;

bool MicroBatchGraph::captured() const {
  return state_->captured;
}

// The trainer's micro-batch objective (train_step.cpp) with the per-micro-batch numbers read from
// the static buffers.
void MicroBatchGraph::forward_backward() {
  State& s = *state_;
  LossBreakdown parts;
  {
    const AutocastScope autocast(s.precision, s.device);
    parts = s.model.loss(s.tokens, s.targets, s.inverse_valid);
  }
  const at::Tensor& moe_part = parts.moe_weighted;
  const at::Tensor objective = (parts.total - moe_part) * s.share + moe_part / s.accum;
  objective.backward();
  s.cross_entropy.copy_(parts.cross_entropy.detach());
}

at::Tensor MicroBatchGraph::run(const at::Tensor& tokens, const at::Tensor& targets, int64_t valid,
                                int64_t step_valid) {
  State& s = *state_;
  if (!s.tokens.defined()) {
    s.tokens = at::empty_like(tokens);
    s.targets = at::empty_like(targets);
  }
  TORCH_CHECK(tokens.sizes() == s.tokens.sizes(),
              "train.cuda_graphs: micro-batch shape changed from ", s.tokens.sizes(), " to ",
              tokens.sizes());
  // On the trainer's stream, where the batch arrived; the graph's stream waits for it.
  s.tokens.copy_(tokens, /*non_blocking=*/true);
  s.targets.copy_(targets, /*non_blocking=*/true);
  s.inverse_valid.fill_(1.0 / static_cast<double>(std::max<int64_t>(valid, 1)));
  s.share.fill_(static_cast<double>(valid) / static_cast<double>(std::max<int64_t>(step_valid, 1)));
  const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(s.device.index());
  at::cuda::CUDAEvent inputs_ready;
  inputs_ready.record(main);
  inputs_ready.block(s.stream);
  {
    const c10::cuda::CUDAStreamGuard on_graph_stream(s.stream);
    const NoCastCache no_cast_cache;
    if (s.eager_runs < kWarmupRuns) {
      forward_backward();
      ++s.eager_runs;
    } else if (!s.captured) {
      // The warm-up's activations sit cached for this stream; the capture gets a pool of its
      // own, so hand them back first rather than hold both.
      c10::cuda::device_synchronize();
      c10::cuda::CUDACachingAllocator::emptyCache();
      s.graph.capture_begin();
      forward_backward();
      s.graph.capture_end();
      s.captured = true;
      s.graph.replay();  // the capture recorded the work without running it
    } else {
      s.graph.replay();
    }
  }
  at::cuda::CUDAEvent done;
  done.record(s.stream);
  done.block(main);
  return s.cross_entropy;
}

}  // namespace cca
