#include "dist/data_parallel.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "config/schema.h"
#include "dist/communicator.h"
#include "dist/gradient_buckets.h"
#include "dist/zero1.h"
#include "moe/moe.h"
#include "ops/checksum.h"
#include "util/error.h"
#include "util/format.h"
#include "util/log.h"
#include "util/strings.h"

namespace cca::dist {
namespace {

// One "key: value" line per config key, then the resumed step: what must agree across ranks.
std::vector<std::string> start_lines(const Config& config, int64_t resumed_step) {
  Config copy = config;
  std::vector<std::string> lines;
  for (const KeySpec& key : config_keys()) lines.push_back(key.path + ": " + value_text(key, copy));
  lines.push_back("resumed step: " + std::to_string(resumed_step));
  return lines;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "rank 1/2 (local 1/2, node 0) via ..., host gpu7, pid 4242, cuda:1", one line per rank.
void log_topology(Communicator& communicator) {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  const std::string mine = format("{}, host {}, pid {}, {}", communicator.world().describe(), host,
                                  static_cast<int>(getpid()), communicator.device().str());
  for (const std::string& line : communicator.all_gather(mine, "gathering the topology")) {
    log::info("dist        {}", line);
  }
}

std::string tensor_bytes(const at::Tensor& tensor) {
  const at::Tensor host = tensor.detach().to(at::kCPU).contiguous();
  return std::string(static_cast<const char*>(host.data_ptr()),
                     static_cast<size_t>(host.numel() * host.element_size()));
}

}  // namespace

DataParallel::DataParallel(std::shared_ptr<Communicator> communicator,
                           const DistributedConfig& config)
    : communicator_(std::move(communicator)), config_(config) {}

DataParallel::~DataParallel() = default;

int DataParallel::rank() const {
  return communicator_->rank();
}
int DataParallel::world_size() const {
  return communicator_->world_size();
}
int DataParallel::local_rank() const {
  return communicator_->world().local_rank;
}
const WorldEnvironment& DataParallel::world() const {
  return communicator_->world();
}
int DataParallel::data_rank() const {
  return rank() / static_cast<int>(std::max<int64_t>(config_.context_parallel, 1));
}
int DataParallel::data_world_size() const {
  return world_size() / static_cast<int>(std::max<int64_t>(config_.context_parallel, 1));
}
std::shared_ptr<SequenceGroup> DataParallel::context_group() const {
  return communicator_->context_group();
}

std::unique_ptr<Optimizer> DataParallel::make_optimizer(std::vector<NamedTensor> parameters,
                                                        const OptimConfig& optim) {
  if (!config_.zero1) return cca::make_optimizer(std::move(parameters), optim);
  zero1_ = std::make_unique<Zero1>(*communicator_, parameters, optim);
  auto optimizer = cca::make_optimizer(zero1_->owned_parameters(), zero1_->local_optim());
  log::info("dist        {}", zero1_->describe());
  return optimizer;
}

void DataParallel::check_cuda_graphs() const {
  throw Error(
      "train.cuda_graphs: true is not supported with data parallelism (the gradient "
      "all-reduce runs from backward hooks, outside what a graph replays); set it to false");
}

void DataParallel::check_same_start(const Config& config, int64_t resumed_step) {
  const std::vector<std::string> mine = start_lines(config, resumed_step);
  const std::vector<std::string> all =
      communicator_->all_gather(join(mine, "\n"), "comparing the config across ranks");
  const std::vector<std::string> reference = split_lines(all[0]);
  std::vector<std::string> problems;
  for (size_t r = 1; r < all.size(); ++r) {
    const std::vector<std::string> theirs = split_lines(all[r]);
    for (size_t i = 0; i < reference.size() && i < theirs.size(); ++i) {
      if (reference[i] != theirs[i]) {
        problems.push_back(
            format("rank {} has '{}' where rank 0 has '{}'", r, theirs[i], reference[i]));
      }
    }
    if (theirs.size() != reference.size()) {
      problems.push_back(format("rank {} runs a build with another set of config keys", r));
    }
  }
  if (problems.empty()) return;
  const bool resume_problem = problems.front().find("resumed step") != std::string::npos;
  throw Error("the ranks do not start from the same state:\n  " + join(problems, "\n  ") +
              (resume_problem ? "\nEvery rank must see the same run.dir (a shared file system)"
                              : "\nPass every rank the same --config and --set options"));
}

std::string DataParallel::start(const Config& config, int64_t resumed_step,
                                const std::string& run_id, TransformerImpl& model,
                                const Optimizer& optimizer) {
  log_topology(*communicator_);
  check_same_start(config, resumed_step);
  const std::string main_run_id =
      communicator_->all_gather(run_id, "sharing the run id")[0];  // rank 0's wins
  std::vector<at::Tensor> state;
  {
    at::NoGradGuard no_grad;
    for (const auto& item : model.named_parameters(true)) state.push_back(item.value().detach());
    for (const auto& item : model.named_buffers(true)) state.push_back(item.value());
    if (!zero1_) {  // ZeRO-1 shards were each restored by their owner
      for (const NamedTensor& t : optimizer.state()) state.push_back(t.tensor);
    }
    communicator_->broadcast(state, 0, "broadcasting rank 0's weights and optimizer state");
  }
  std::vector<NamedTensor> parameters;
  for (const auto& item : model.named_parameters(true)) {
    if (item.value().requires_grad()) parameters.push_back({item.key(), item.value()});
  }
  buckets_ = std::make_unique<GradientBuckets>(*communicator_, parameters,
                                               config_.bucket_mb * int64_t{1024 * 1024});
  log::info("dist        {} ranks, {} backend; {} (distributed.bucket_mb {})", world_size(),
            communicator_->backend_name(), buckets_->describe(), config_.bucket_mb);
  if (config_.context_parallel > 1) {
    log::info(
        "dist        {} data-parallel x {} context-parallel: ranks {}..{} share each sequence of "
        "replica {}",
        data_world_size(), config_.context_parallel, data_rank() * config_.context_parallel,
        (data_rank() + 1) * config_.context_parallel - 1, data_rank());
  }
  verify_parameters(model, resumed_step);
  return main_run_id;
}

int64_t DataParallel::global_valid_tokens(int64_t local, int64_t step, const PhaseLap& lap) {
  const int64_t global = sum(local, format("all-reduce of the valid-token count at step {}", step));
  lap("communication");
  return global;
}

void DataParallel::before_backward(bool last_micro_batch) {
  buckets_->set_last_micro_batch(last_micro_batch);
}

void DataParallel::finish_gradients(at::Tensor& loss_sum, int64_t step, const PhaseLap& lap) {
  buckets_->finish(step);
  sum_in_place(loss_sum, format("all-reduce of the training loss at step {}", step));
  lap("communication");
}

StepReport DataParallel::update(Optimizer& optimizer, double lr, const at::Tensor& loss,
                                const at::Tensor& frozen, int64_t step, bool /*keep_gradients*/) {
  if (!zero1_) {
    const StepReport report = optimizer.step(lr, loss, frozen);
    optimizer.zero_grad(/*release=*/false);
    return report;
  }
  const StepReport report = zero1_->clip(loss, frozen);
  optimizer.step(lr, loss, report.skipped);
  zero1_->share_parameters(step);
  zero1_->zero_grad();
  return report;
}

int64_t DataParallel::sum(int64_t value, const std::string& what) {
  return communicator_->sum(value, what);
}

bool DataParallel::any(bool flag, const std::string& what) {
  return communicator_->max(flag ? 1 : 0, what) != 0;
}

void DataParallel::sum_in_place(at::Tensor& tensor, const std::string& what) {
  std::vector<at::Tensor> tensors = {tensor};
  communicator_->all_reduce_sum(tensors, what);
}

void DataParallel::sum_expert_counts(TransformerImpl& model) {
  std::vector<at::Tensor> counts;
  for (const auto& moe : model.moe_layers()) {
    if (moe->pending_expert_counts().defined()) counts.push_back(moe->pending_expert_counts());
  }
  if (counts.empty()) return;
  at::Tensor flat = at::cat(counts);
  sum_in_place(flat, "all-reduce of MoE expert counts");
  int64_t offset = 0;
  for (at::Tensor& c : counts) {
    c.copy_(flat.narrow(0, offset, c.numel()));
    offset += c.numel();
  }
}

void DataParallel::check_replicas(TransformerImpl& model, int64_t step) {
  if (config_.verify_every > 0 && step % config_.verify_every == 0) verify_parameters(model, step);
}

void DataParallel::verify_parameters(TransformerImpl& model, int64_t step) {
  std::vector<std::string> names;
  std::vector<uint64_t> sums;
  for (const auto& item : model.named_parameters(true)) {
    names.push_back(item.key());
    sums.push_back(tensor_checksum(item.value().detach()));
  }
  const std::string mine(reinterpret_cast<const char*>(sums.data()), sums.size() * 8);
  const std::vector<std::string> all =
      communicator_->all_gather(mine, format("parameter checksums at step {}", step));
  for (size_t r = 1; r < all.size(); ++r) {
    for (size_t i = 0; i < names.size() && i * 8 < all[r].size(); ++i) {
      if (std::memcmp(all[r].data() + i * 8, all[0].data() + i * 8, 8) != 0) {
        throw Error(format(
            "parameter '{}' differs between rank 0 and rank {} at step {} (checksum "
            "verification, distributed.verify_every): the ranks have diverged; this is a bug or "
            "a hardware fault, report it with the run's logs",
            names[i], r, step));
      }
    }
  }
  log::debug("dist        parameters identical on all ranks at step {}", step);
}

std::vector<NamedTensor> DataParallel::gather_rng_states(const std::vector<NamedTensor>& mine) {
  std::vector<NamedTensor> out;
  for (const NamedTensor& state : mine) {
    const std::vector<std::string> all =
        communicator_->all_gather(tensor_bytes(state.tensor), "gathering RNG states");
    for (size_t r = 0; r < all.size(); ++r) {
      at::Tensor t =
          at::empty({static_cast<int64_t>(all[r].size())}, at::TensorOptions().dtype(at::kByte));
      if (!all[r].empty()) std::memcpy(t.data_ptr(), all[r].data(), all[r].size());
      out.push_back({format("{}/rank{}", state.name, r), t});
    }
  }
  return out;
}

std::vector<NamedTensor> DataParallel::gather_optimizer_state(const Optimizer& optimizer) {
  return zero1_ ? zero1_->gather_state(optimizer.state()) : optimizer.state();
}

void DataParallel::barrier(const std::string& what) {
  communicator_->barrier(what);
}

}  // namespace cca::dist
