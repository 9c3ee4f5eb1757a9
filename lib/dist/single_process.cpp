#include "dist/single_process.h"

#include "util/log.h"

namespace cca::dist {

SingleProcess::SingleProcess(const DistributedConfig& config) {
  if (config.zero1) log::warn("distributed.zero1 has no effect in a single process");
}

std::unique_ptr<Optimizer> SingleProcess::make_optimizer(std::vector<NamedTensor> parameters,
                                                         const OptimConfig& optim) {
  return cca::make_optimizer(std::move(parameters), optim);
}

std::string SingleProcess::start(const Config& /*config*/, int64_t /*resumed_step*/,
                                 const std::string& run_id, TransformerImpl& /*model*/,
                                 const Optimizer& /*optimizer*/) {
  return run_id;
}

int64_t SingleProcess::global_valid_tokens(int64_t local, int64_t /*step*/,
                                           const PhaseLap& /*lap*/) {
  return local;
}

void SingleProcess::finish_gradients(at::Tensor& /*loss_sum*/, int64_t /*step*/,
                                     const PhaseLap& /*lap*/) {}

StepReport SingleProcess::update(Optimizer& optimizer, double lr, const at::Tensor& loss,
                                 const at::Tensor& frozen, int64_t /*step*/, bool keep_gradients) {
  const StepReport report = optimizer.step(lr, loss, frozen);
  // Nothing else holds views of the gradients, so they are released rather than zeroed.
  optimizer.zero_grad(/*release=*/!keep_gradients);
  return report;
}

std::vector<NamedTensor> SingleProcess::gather_rng_states(const std::vector<NamedTensor>& mine) {
  return mine;
}

std::vector<NamedTensor> SingleProcess::gather_optimizer_state(const Optimizer& optimizer) {
  return optimizer.state();
}

}  // namespace cca::dist
