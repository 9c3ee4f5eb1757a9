#include "dist/overlap_bench.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

#include "dist/communicator.h"
#include "dist/gradient_buckets.h"
#include "launch/environment.h"
#include "launch/launcher.h"
#include "model/transformer.h"
#include "ops/device.h"
#include "ops/precision.h"
#include "util/format.h"
#include "util/log.h"

namespace cca::dist {
namespace {

WorldEnvironment bench_world() {
  WorldEnvironment world = read_world_environment();
  if (world.distributed) return world;
  world.distributed = true;  // a one-rank group of our own
  world.master_addr = "127.0.0.1";
  world.master_port = pick_free_local_port();
  world.source = "cca-bench (one rank)";
  return world;
}

// Median milliseconds of `body` over options.iters runs after options.warmup.
double time_ms(const std::function<void()>& body, const at::Device& device,
               const OverlapBenchOptions& options) {
  for (int i = 0; i < options.warmup; ++i) body();
  std::vector<double> ms;
  for (int i = 0; i < options.iters; ++i) {
    synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    body();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

Json run_overlap_bench(const LoadedConfig& loaded, const OverlapBenchOptions& options) {
  const Config& config = loaded.config;
  const WorldEnvironment world = bench_world();
  const at::Device device = resolve_device(config.train.device, world.local_rank);
  const Precision precision =
      resolve_precision(config.train.precision, device, config.train.fp8.scaling);
  Communicator communicator(world, config.distributed, device);

  at::manual_seed(static_cast<uint64_t>(config.train.seed));
  auto model = std::make_shared<TransformerImpl>(config);
  model->set_activation_checkpointing(config.train.activation_checkpointing);
  model->to(device);
  model->train();
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor tokens = at::randint(
      config.model.vocab_size, {config.train.micro_batch_size, config.train.seq_len}, long_options);
  const at::Tensor targets = tokens.roll(-1, 1);
  std::vector<NamedTensor> parameters;
  for (const auto& item : model->named_parameters(true)) {
    item.value().mutable_grad() = at::zeros_like(item.value());
    parameters.push_back({item.key(), item.value()});
  }
  const auto forward_backward = [&] {
    LossBreakdown parts;
    {
      AutocastScope autocast(precision, device);
      parts = model->loss(tokens, targets);
    }
    parts.total.backward();
  };

  const double plain = time_ms(forward_backward, device, options);
  GradientBuckets buckets(communicator, parameters,
                          config.distributed.bucket_mb * int64_t{1024 * 1024});
  int64_t step = 0;
  const auto with_buckets = [&] {
    forward_backward();
    buckets.finish(++step);
  };
  const double overlapped = time_ms(with_buckets, device, options);
  const int64_t early = buckets.started_during_backward();
  buckets.set_overlap(false);
  const double after = time_ms(with_buckets, device, options);
  const double exposed_without = after - plain;
  const double hidden = exposed_without > 0 ? (after - overlapped) / exposed_without : 0.0;

  log::info("ddp bench   {} rank(s), {} backend, {}, {} on {}", communicator.world_size(),
            communicator.backend_name(), buckets.describe(), precision.name(),
            describe_device(device));
  log::info("            forward+backward, no communication     {:8.2f} ms", plain);
  log::info(
      "            + all-reduce overlapped with backward  {:8.2f} ms ({} of {} buckets "
      "started during backward)",
      overlapped, early, buckets.bucket_count());
  log::info("            + all-reduce after backward            {:8.2f} ms", after);
  log::info("            overlap hides {:.0f}% of the communication time", hidden * 100.0);

  Json::Object ms;
  ms["no_communication"] = plain;
  ms["overlapped"] = overlapped;
  ms["after_backward"] = after;
  Json::Object out;
  out["bench"] = "ddp";
  out["world_size"] = static_cast<int64_t>(communicator.world_size());
  out["backend"] = communicator.backend_name();
  out["device"] = describe_device(device);
  out["precision"] = precision.name();
  out["bucket_mb"] = config.distributed.bucket_mb;
  out["buckets"] = buckets.bucket_count();
  out["buckets_started_during_backward"] = early;
  out["micro_batch_size"] = config.train.micro_batch_size;
  out["seq_len"] = config.train.seq_len;
  out["ms"] = Json(std::move(ms));
  out["hidden_fraction"] = hidden;
  return Json(std::move(out));
}

}  // namespace cca::dist
