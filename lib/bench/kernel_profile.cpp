#include "bench/kernel_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <set>
#include <utility>

#include "util/format.h"

namespace cca::bench {
namespace {

bool contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<KernelTotal> sorted_by_time(const std::map<std::string, KernelTotal>& totals,
                                        size_t limit) {
  std::vector<KernelTotal> out;
  for (const auto& [name, total] : totals) out.push_back(total);
  std::sort(out.begin(), out.end(),
            [](const KernelTotal& a, const KernelTotal& b) { return a.ms > b.ms; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::string short_name(const std::string& name, size_t width) {
  return name.size() <= width ? name : name.substr(0, width - 3) + "...";
}

}  // namespace

std::string kernel_category(const std::string& kernel_name) {
  std::string n = kernel_name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  // Order matters: the first rule that matches wins (a cuDNN attention kernel names "gemm" too).
  if (contains(n, "nccl")) return "communication";
  if (contains(n, "cca_")) return "cca kernels";
  if (contains(n, "flash") || contains(n, "fmha") || contains(n, "attention") ||
      contains(n, "cudnn") || contains(n, "sdpa")) {
    return "attention core";
  }
  if (contains(n, "gemm") || contains(n, "nvjet") || contains(n, "cutlass") ||
      contains(n, "xmma") || contains(n, "sm90_") || contains(n, "sm80_") ||
      contains(n, "cublas")) {
    return "gemm";
  }
  if (contains(n, "adam") || contains(n, "multi_tensor") || contains(n, "foreach")) {
    return "optimizer";
  }
  if (contains(n, "rms") || contains(n, "norm")) return "normalisation";
  if (contains(n, "softmax") || contains(n, "logsumexp") || contains(n, "nll") ||
      contains(n, "cross_entropy") || contains(n, "scatter_gather")) {
    return "cross-entropy";
  }
  if (contains(n, "rope") || contains(n, "rotary")) return "rope";
  if (contains(n, "memcpy") || contains(n, "memset") || contains(n, "copy")) return "copies";
  if (contains(n, "reduce")) return "reductions";
  if (contains(n, "elementwise") || contains(n, "vectorized") || contains(n, "unrolled")) {
    return "elementwise";
  }
  if (contains(n, "index") || contains(n, "gather") || contains(n, "scatter") ||
      contains(n, "sort") || contains(n, "embedding")) {
    return "indexing";
  }
  return "other";
}

KernelProfile profile_kernels(const std::function<void()>& body, int repetitions,
                              const std::string& trace_path, size_t top) {
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
  const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
  torch::cuda::synchronize();
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repetitions; ++i) body();
  torch::cuda::synchronize();
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const std::unique_ptr<prof::ProfilerResult> result = prof::disableProfiler();
  if (!trace_path.empty()) result->save(trace_path);

  const double reps = static_cast<double>(std::max(repetitions, 1));
  KernelProfile profile;
  profile.wall_ms = wall / reps;
  std::map<std::string, KernelTotal> by_name, by_category;
  for (const prof::KinetoEvent& event : result->events()) {
    if (event.deviceType() != c10::DeviceType::CUDA) continue;
    const std::string name = event.name();
    const double ms = static_cast<double>(event.durationNs()) / 1e6 / reps;
    const std::string category = kernel_category(name);
    for (auto* totals : {&by_name, &by_category}) {
      KernelTotal& t = (*totals)[totals == &by_name ? name : category];
      t.name = totals == &by_name ? name : category;
      t.category = category;
      t.ms += ms;
      t.calls += 1;
    }
    profile.busy_ms += ms;
  }
  for (auto* totals : {&by_name, &by_category}) {
    for (auto& [key, t] : *totals) t.calls = static_cast<int64_t>(t.calls / reps + 0.5);
  }
  profile.categories = sorted_by_time(by_category, by_category.size());
  profile.kernels = sorted_by_time(by_name, top);
  return profile;
}

Json profile_json(const KernelProfile& p) {
  const auto rows = [&p](const std::vector<KernelTotal>& totals) {
    Json::Array out;
    for (const KernelTotal& t : totals) {
      out.push_back(Json(Json::Object{{"name", t.name},
                                      {"category", t.category},
                                      {"ms", t.ms},
                                      {"share_of_wall", p.wall_ms > 0 ? t.ms / p.wall_ms : 0.0},
                                      {"calls", t.calls}}));
    }
    return Json(std::move(out));
  };
  return Json(Json::Object{{"wall_ms", p.wall_ms},
                           {"gpu_busy_ms", p.busy_ms},
                           {"gpu_idle_ms", std::max(0.0, p.wall_ms - p.busy_ms)},
                           {"categories", rows(p.categories)},
                           {"top_kernels", rows(p.kernels)}});
}

std::string render_profile(const KernelProfile& p) {
  std::string out =
      format("GPU time per step: {:.2f} ms busy of {:.2f} ms wall ({:.1f}% idle)\n", p.busy_ms,
             p.wall_ms, p.wall_ms > 0 ? 100.0 * (1.0 - p.busy_ms / p.wall_ms) : 0.0);
  for (const KernelTotal& t : p.categories) {
    out += format("  {:<16} {:8.2f} ms  {:5.1f}%  {:6} kernels\n", t.category, t.ms,
                  100.0 * t.ms / p.wall_ms, t.calls);
  }
  out += "top kernels:\n";
  for (const KernelTotal& t : p.kernels) {
    out += format("  {:8.3f} ms {:5.1f}% x{:<5} [{}] {}\n", t.ms, 100.0 * t.ms / p.wall_ms, t.calls,
                  t.category, short_name(t.name, 90));
  }
  return out;
}

}  // namespace cca::bench
