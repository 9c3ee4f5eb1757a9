// train.cuda_graphs: one micro-batch's forward and backward recorded once as a CUDA graph and
// replayed for every later micro-batch. At GPT-2 size the host otherwise spends longer launching
// a micro-batch's 1,000–4,000 kernels than some of them take, and the GPU waits (7–12% of a step
// in docs/benchmarks.md). The replay reads static device buffers: the batch, 1/(valid targets)
// of the micro-batch and its share of the step's valid targets. One process on CUDA, fixed
// shapes; the optimizer step stays eager (its learning rate changes every step).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

#include "config/config.h"
#include "ops/precision.h"

namespace cca {

class TransformerImpl;

class MicroBatchGraph {
 public:
  MicroBatchGraph(TransformerImpl& model, const Config& config, const Precision& precision,
                  const at::Device& device);
  ~MicroBatchGraph();
  MicroBatchGraph(const MicroBatchGraph&) = delete;
  MicroBatchGraph& operator=(const MicroBatchGraph&) = delete;

  // Forward and backward of one micro-batch (tokens and targets [B, S] int64 on the device);
  // `valid` counts its valid targets, `step_valid` the step's. Gradients accumulate into the
  // parameters' .grad, which must exist and stay (zeroed, not released, between steps). The
  // first few calls run eagerly (warm-up: workspaces, plans, lazily built tables), the next one
  // is captured. Returns the micro-batch's mean cross-entropy, a 0-dim fp32 device tensor that
  // the next call overwrites.
  at::Tensor run(const at::Tensor& tokens, const at::Tensor& targets, int64_t valid,
                 int64_t step_valid);
  bool captured() const;

 private:
  struct State;
  void forward_backward();
  std::unique_ptr<State> state_;
};

}  // namespace cca
