// One process on one device: every agreement is with itself, so each call is local (sums and
// gathers return their input, barriers return at once) and the optimizer steps over every
// parameter.
#pragma once

#include "dist/parallelism.h"

namespace cca::dist {

class SingleProcess : public Parallelism {
 public:
  // Warns about distributed.* settings that only mean something with several ranks.
  explicit SingleProcess(const DistributedConfig& config);

  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }

  std::unique_ptr<Optimizer> make_optimizer(std::vector<NamedTensor> parameters,
                                            const OptimConfig& optim) override;
  void check_cuda_graphs() const override {}
  std::string start(const Config& config, int64_t resumed_step, const std::string& run_id,
                    TransformerImpl& model, const Optimizer& optimizer) override;

  int64_t global_valid_tokens(int64_t local, int64_t step, const PhaseLap& lap) override;
  void before_backward(bool /*last_micro_batch*/) override {}
  void finish_gradients(at::Tensor& loss_sum, int64_t step, const PhaseLap& lap) override;
  StepReport update(Optimizer& optimizer, double lr, const at::Tensor& loss,
                    const at::Tensor& frozen, int64_t step, bool keep_gradients) override;
  void sum_expert_counts(TransformerImpl& /*model*/) override {}
  bool any(bool flag, const std::string& /*what*/) override { return flag; }
  void check_replicas(TransformerImpl& /*model*/, int64_t /*step*/) override {}

  int64_t sum(int64_t value, const std::string& /*what*/) override { return value; }
  void sum_in_place(at::Tensor& /*tensor*/, const std::string& /*what*/) override {}

  std::vector<NamedTensor> gather_rng_states(const std::vector<NamedTensor>& mine) override;
  std::vector<NamedTensor> gather_optimizer_state(const Optimizer& optimizer) override;
  void barrier(const std::string& /*what*/) override {}
};

}  // namespace cca::dist
