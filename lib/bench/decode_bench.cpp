#include "bench/decode_bench.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <vector>

#include "attention/attention.h"
#include "config/accounting.h"
#include "config/geometry.h"
#include "model/transformer.h"
#include "ops/device.h"
#include "util/error.h"

namespace cca::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct DecodePoint {
  int64_t batch = 0, context = 0;
  double prefill_ms = 0, decode_ms_per_step = 0, tokens_per_s = 0;
};

// Windows of decode steps timed; the median window counts. At batch 1 a step is ~0.1 ms of
// launches, and one host hiccup in a single window halved the rate (docs/benchmarks.md).
constexpr int kDecodeWindows = 5;

// Prefills `context` tokens of a batch, then times kDecodeWindows windows of `steps`
// single-token steps. The prefill is timed on its second run: the first of a shape pays one-time
// costs (attention plan builds, first allocations) that are not the layer's.
DecodePoint time_decode(Attention& layer, int64_t E, int64_t batch, int64_t context, int steps,
                        const at::TensorOptions& options) {
  DecodePoint p{batch, context};
  const at::Tensor prompt = at::randn({batch, context, E}, options);
  const at::Tensor token = at::randn({batch, 1, E}, options);
  layer.forward(prompt, layer.new_cache().get());
  auto cache = layer.new_cache();
  synchronize(options.device());
  auto start = Clock::now();
  layer.forward(prompt, cache.get());
  synchronize(options.device());
  p.prefill_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  layer.forward(token, cache.get());  // warm-up step
  synchronize(options.device());
  std::vector<double> windows;
  for (int w = 0; w < kDecodeWindows; ++w) {
    start = Clock::now();
    for (int i = 0; i < steps; ++i) layer.forward(token, cache.get());
    synchronize(options.device());
    windows.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::nth_element(windows.begin(), windows.begin() + kDecodeWindows / 2, windows.end());
  const double ms = windows[kDecodeWindows / 2];
  p.decode_ms_per_step = ms / steps;
  p.tokens_per_s = static_cast<double>(batch) * steps / (ms / 1000.0);
  return p;
}

// Cache bytes per token: the growth of the cache's tensors between two lengths.
double measured_bytes_per_token(Attention& layer, int64_t E, const at::TensorOptions& options) {
  auto cache = layer.new_cache();
  layer.forward(at::randn({1, 64, E}, options), cache.get());
  const int64_t at_64 = cache->bytes();
  layer.forward(at::randn({1, 64, E}, options), cache.get());
  return static_cast<double>(cache->bytes() - at_64) / 64.0;
}

}  // namespace

Json run_decode_bench(const DecodeBenchOptions& o) {
  const at::Device device = resolve_device("auto");
  const at::ScalarType dtype = parse_bench_dtype(o.dtype);
  const auto options = at::TensorOptions(device).dtype(dtype);
  at::NoGradGuard no_grad;
  std::cout << "decode, one layer, E=" << o.model_dim << " d=" << o.head_dim << " " << o.dtype
            << " on " << describe_device(device) << "\n";
  Json::Array variants;
  double mha_bytes = 0;
  std::map<std::pair<int64_t, int64_t>, double> mha_rate;
  for (const std::string& name : o.variants) {
    const Config c = variant_config(name, o.model_dim, o.head_dim);
    const AttentionGeometry g = attention_geometry(c);
    auto layer = make_attention(g, attention_options(c));
    layer->to(device, dtype);
    layer->eval();
    const double measured = measured_bytes_per_token(*layer, o.model_dim, options);
    const double formula = static_cast<double>(kv_cache_elements_per_token(g)) *
                           static_cast<double>(c10::elementSize(dtype));
    if (name == "mha") mha_bytes = measured;
    std::cout << std::left << std::setw(10) << name << std::right << " cache " << std::fixed
              << std::setprecision(0) << std::setw(7) << measured << " B/token (formula " << formula
              << ")" << std::defaultfloat;
    if (mha_bytes > 0)
      std::cout << ", " << std::setprecision(3) << mha_bytes / measured << "x smaller than MHA";
    std::cout << "\n";
    Json::Array points;
    for (int64_t batch : o.batches) {
      for (int64_t context : o.contexts) {
        const double cache_gib =
            measured * static_cast<double>(batch * (context + kDecodeWindows * o.steps + 1)) /
            (1 << 30);
        if (cache_gib > o.max_cache_gib) continue;
        DecodePoint p;
        try {
          p = time_decode(*layer, o.model_dim, batch, context, o.steps, options);
        } catch (const c10::OutOfMemoryError&) {
          // Some variants' prefill needs more than the cache (e.g. MLA's absorbed path keeps the
          // full score matrix): report the point as out of memory and go on.
          if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
          std::cout << "    B=" << std::setw(3) << batch << " ctx=" << std::setw(6) << context
                    << "  out of memory\n";
          points.push_back(Json(
              Json::Object{{"batch", batch}, {"context", context}, {"error", "out of memory"}}));
          continue;
        }
        Json::Object point{{"batch", p.batch},
                           {"context", p.context},
                           {"prefill_ms", p.prefill_ms},
                           {"decode_ms_per_step", p.decode_ms_per_step},
                           {"tokens_per_s", p.tokens_per_s}};
        if (name == "mha") mha_rate[{batch, context}] = p.tokens_per_s;
        const auto base = mha_rate.find({batch, context});
        if (base != mha_rate.end()) point["speedup_vs_mha"] = p.tokens_per_s / base->second;
        std::cout << "    B=" << std::setw(3) << batch << " ctx=" << std::setw(6) << context
                  << "  prefill " << std::setw(9) << std::fixed << std::setprecision(2)
                  << p.prefill_ms << " ms  decode " << std::setw(8) << p.decode_ms_per_step
                  << " ms/step  " << std::setw(10) << std::setprecision(0) << p.tokens_per_s
                  << " tok/s";
        if (base != mha_rate.end())
          std::cout << std::setprecision(2) << "  " << p.tokens_per_s / base->second << "x MHA";
        std::cout << std::defaultfloat << "\n";
        points.push_back(Json(std::move(point)));
      }
    }
    Json::Object v{{"variant", name},
                   {"cache_bytes_per_token", measured},
                   {"formula_bytes_per_token", formula},
                   {"points", Json(std::move(points))}};
    if (mha_bytes > 0) v["cache_ratio_vs_mha"] = mha_bytes / measured;
    variants.push_back(Json(std::move(v)));
    layer.reset();
    if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
  }
  return Json(Json::Object{{"benchmark", "decode"},
                           {"device", describe_device(device)},
                           {"dtype", o.dtype},
                           {"model_dim", o.model_dim},
                           {"head_dim", o.head_dim},
                           {"variants", Json(std::move(variants))}});
}

}  // namespace cca::bench
