#include "bench/train_bench.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include "bench/bench_case.h"
#include "bench/kernel_profile.h"
#include "ops/device.h"
#include "train/mfu.h"
#include "train/phase_clock.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"

namespace cca::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A scratch run folder, removed when the benchmark ends (also on an error).
class ScratchRun {
 public:
  ScratchRun() {
    std::string pattern = files::join(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                                      "cca-bench-train-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      throw Error("cannot create a scratch folder " + pattern + ": " + std::strerror(errno));
    }
    path_ = pattern;
  }
  ~ScratchRun() { files::remove_tree(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

LoadedConfig bench_config(const ConfigRequest& request, const TrainBenchOptions& o,
                          const std::string& run_dir) {
  const int64_t needed = 1 + o.warmup + o.steps + o.phase_steps + o.profile_steps;
  ConfigRequest adjusted = request;
  const LoadedConfig as_given = load_run_config(request);
  for (const std::string& set :
       {"run.dir=" + run_dir, std::string("train.eval_every=0"), std::string("checkpoint.every=0"),
        std::string("data.val_tokens=0"), std::string("logging.progress_bar=false"),
        format("train.steps={}", std::max(needed, as_given.config.train.steps))}) {
    adjusted.overrides.push_back(set);
  }
  return load_run_config(adjusted);
}

Json phase_json(const PhaseClock& clock, int64_t steps, double unobserved_ms) {
  Json::Object phases;
  double total = 0;
  for (const auto& [name, seconds] : clock.seconds()) {
    phases[name] = 1e3 * seconds / static_cast<double>(steps);
    total += 1e3 * seconds / static_cast<double>(steps);
  }
  std::cout << format(
      "phases per step ({} observed steps, {:.2f} ms in all vs {:.2f} ms "
      "unobserved):\n",
      steps, total, unobserved_ms);
  for (const auto& [name, seconds] : clock.seconds()) {
    const double ms = 1e3 * seconds / static_cast<double>(steps);
    std::cout << format("  {:<14} {:9.2f} ms  {:5.1f}%\n", name, ms, 100.0 * ms / total);
  }
  return Json(Json::Object{{"ms_per_step", Json(std::move(phases))}, {"observed_ms", total}});
}

Json bench_one(const ConfigRequest& request, const TrainBenchOptions& o) {
  const ScratchRun scratch;
  LoadedConfig loaded = bench_config(request, o, scratch.path());
  reset_peak_memory(resolve_device(loaded.config.train.device));
  const Config config = loaded.config;
  TrainOptions train_options;
  train_options.handle_signals = false;
  train_options.process_start = o.process_start;
  Trainer trainer(std::move(loaded), train_options);
  const at::Device device = trainer.device();

  trainer.run_bare_steps(1);
  synchronize(device);
  const double first_step_s = seconds_since(o.process_start);
  std::cout << format("first step done {:.2f} s after launch\n", first_step_s);
  trainer.run_bare_steps(o.warmup);
  synchronize(device);
  const Clock::time_point start = Clock::now();
  trainer.run_bare_steps(o.steps);
  synchronize(device);
  const double step_ms = 1e3 * seconds_since(start) / static_cast<double>(o.steps);
  const double tokens_per_s = static_cast<double>(trainer.tokens_per_step()) / (step_ms / 1e3);
  const std::optional<double> mfu =
      model_flops_utilisation(tokens_per_s, trainer.flops_per_token(), trainer.peak_flops());
  std::cout << format("{} tokens/step, {:.2f} ms/step, {:.0f} tokens/s", trainer.tokens_per_step(),
                      step_ms, tokens_per_s);
  if (mfu) std::cout << format(", MFU {:.1f}%", 100.0 * *mfu);
  std::cout << "\n";

  Json::Object doc{{"benchmark", "train"},
                   {"config", request.path + (config.data.document_masking ? " +docmask" : "")},
                   {"document_masking", config.data.document_masking},
                   {"device", describe_device(device)},
                   {"attention", config.attention.kind},
                   {"tokens_per_step", trainer.tokens_per_step()},
                   {"flops_per_token", trainer.flops_per_token()},
                   {"steps", o.steps},
                   {"ms_per_step", step_ms},
                   {"tokens_per_s", tokens_per_s},
                   {"time_to_first_step_s", first_step_s}};
  if (mfu) doc["mfu"] = *mfu;
  Json::Object startup;
  for (const auto& [name, seconds] : trainer.phases()) startup[name] = seconds;
  doc["startup_s"] = Json(std::move(startup));
  if (o.phase_steps > 0) {
    PhaseClock clock(device);
    trainer.run_bare_steps(o.phase_steps, &clock);
    doc["phases"] = phase_json(clock, o.phase_steps, step_ms);
  }
  if (o.profile_steps > 0 && device.is_cuda()) {
    const KernelProfile profile = profile_kernels([&] { trainer.run_bare_steps(1); },
                                                  static_cast<int>(o.profile_steps), o.trace_path);
    std::cout << render_profile(profile);
    doc["profile"] = profile_json(profile);
  } else if (o.profile_steps > 0) {
    // Said rather than silently dropped: the profile sums CUDA kernels, and a run on the CPU
    // has none.
    const std::string why = "kernel profile skipped: it sums CUDA kernels and this run is on " +
                            device.str() + (o.trace_path.empty() ? "" : " (no trace written)");
    std::cout << why << "\n";
    doc["profile_skipped"] = why;
  }
  doc["peak_memory_gib"] = memory_use(device).peak_bytes / (1024.0 * 1024.0 * 1024.0);
  std::cout << format("peak memory {:.2f} GiB\n", memory_use(device).peak_bytes / 1073741824.0);
  return Json(std::move(doc));
}

// The runs in order: --config, then each --compare config; with --document-masking each of them
// with masking off, then on.
std::vector<ConfigRequest> bench_requests(const ConfigRequest& request,
                                          const TrainBenchOptions& o) {
  std::vector<ConfigRequest> configs = {request};
  for (const std::string& path : o.compare) {
    configs.push_back(request);
    configs.back().path = path;
  }
  if (!o.document_masking) return configs;
  std::vector<ConfigRequest> requests;
  for (const ConfigRequest& config : configs) {
    for (const char* masking : {"false", "true"}) {
      requests.push_back(config);
      requests.back().overrides.push_back(std::string("data.document_masking=") + masking);
    }
  }
  return requests;
}

double number(const Json& run, const std::string& key) {
  return run.at(key, "train benchmark").as_double(key);
}

// One line per config: tokens/s, ms/step and their ratios to the first config's.
Json comparison(const std::vector<Json>& runs) {
  const double base_tokens = number(runs.front(), "tokens_per_s");
  const double base_ms = number(runs.front(), "ms_per_step");
  std::cout << format("\n{:<40} {:>12} {:>10} {:>10}\n", "config", "tokens/s", "vs first",
                      "ms/step");
  Json::Array rows;
  for (const Json& run : runs) {
    const double tokens = number(run, "tokens_per_s"), ms = number(run, "ms_per_step");
    const std::string& config = run.at("config", "train benchmark").as_string("config");
    std::cout << format("{:<40} {:>12.0f} {:>9.3f}x {:>10.2f}\n", config, tokens,
                        tokens / base_tokens, ms);
    rows.push_back(Json(Json::Object{{"config", config},
                                     {"tokens_per_s_ratio", tokens / base_tokens},
                                     {"ms_per_step_ratio", ms / base_ms}}));
  }
  return Json(std::move(rows));
}

// The request for one length of a sweep: seq_len (and max_seq_len where the config caps it
// lower), and the micro-batch from micro_batch_tokens.
ConfigRequest at_length(const ConfigRequest& request, const Config& as_given, int64_t seq_len,
                        const TrainBenchOptions& o) {
  ConfigRequest r = request;
  r.overrides.push_back(format("train.seq_len={}", seq_len));
  if (as_given.model.max_seq_len > 0 && as_given.model.max_seq_len < seq_len)
    r.overrides.push_back(format("model.max_seq_len={}", seq_len));
  if (o.micro_batch_tokens > 0) {
    r.overrides.push_back(
        format("train.micro_batch_size={}", std::max<int64_t>(1, o.micro_batch_tokens / seq_len)));
    r.overrides.push_back("train.global_batch_size=0");
  }
  return r;
}

void print_sweep(const Json::Array& sweep) {
  std::cout << format("\n{:>9} {:>6} {:>12} {:>10} {:>9}  {}\n", "seq_len", "micro", "tokens/s",
                      "ms/step", "peak GiB", "status");
  for (const Json& row : sweep) {
    const Json::Object& r = row.as_object("sweep row");
    const auto number = [&](const char* key) {
      const auto it = r.find(key);
      return it == r.end() ? 0.0 : it->second.as_double(key);
    };
    std::cout << format("{:>9} {:>6} {:>12.0f} {:>10.2f} {:>9.2f}  {}\n", number("seq_len"),
                        number("micro_batch_size"), number("tokens_per_s"), number("ms_per_step"),
                        number("peak_memory_gib"), r.at("status").as_string("status"));
  }
}

// One run per sequence length, shortest first, until one runs out of memory.
Json sweep_seq_lens(const ConfigRequest& request, const TrainBenchOptions& o) {
  if (!o.compare.empty()) {
    throw Error("cca-bench train: --seq-lens sweeps one config; run --compare separately");
  }
  std::vector<int64_t> lengths = o.seq_lens;
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  const Config as_given = load_run_config(request).config;
  for (const int64_t S : lengths) {  // every length is validated before the first one runs
    if (S < 2) throw Error(format("cca-bench train: --seq-lens {} is not a sequence length", S));
    (void)load_run_config(at_length(request, as_given, S, o));
  }
  const at::Device device = resolve_device(as_given.train.device);
  Json::Array sweep;
  Json longest;
  std::string stopped;
  for (const int64_t S : lengths) {
    const ConfigRequest r = at_length(request, as_given, S, o);
    const int64_t micro = load_run_config(r).config.train.micro_batch_size;
    const Json::Object identity{{"seq_len", S}, {"micro_batch_size", micro}};
    if (!stopped.empty()) {
      Json::Object skipped = identity;
      skipped["status"] = "skipped";
      skipped["error"] = stopped;
      sweep.push_back(Json(std::move(skipped)));
      continue;
    }
    std::cout << format("\nseq_len {} (micro-batch {})\n", S, micro);
    TrainBenchOptions one = o;
    if (S != lengths.front()) one.trace_path.clear();
    one.process_start = Clock::now();
    const Json::Object outcome = run_fallible_case(
        device, identity, [&] { return bench_one(r, one).as_object("train benchmark"); });
    if (case_succeeded(outcome)) longest = Json(S);
    if (outcome.at("status").as_string("status") == "out_of_memory")
      stopped = format("not run: seq_len {} already ran out of memory", S);
    sweep.push_back(Json(outcome));
  }
  print_sweep(sweep);
  return Json(Json::Object{{"benchmark", "train"},
                           {"config", request.path},
                           {"device", describe_device(device)},
                           {"activation_checkpointing", as_given.train.activation_checkpointing},
                           {"sweep", Json(std::move(sweep))},
                           {"longest_seq_len", longest}});
}

}  // namespace

Json run_train_bench(const ConfigRequest& request, const TrainBenchOptions& o) {
  if (o.steps < 1 || o.warmup < 0 || o.phase_steps < 0 || o.profile_steps < 0) {
    throw Error(
        "cca-bench train: --steps must be ≥ 1 and --warmup, --phase-steps, "
        "--profile-steps ≥ 0");
  }
  if (!o.trace_path.empty() && o.profile_steps == 0) {
    throw Error("cca-bench train: --trace " + o.trace_path +
                " records the profiled steps; it needs --profile-steps ≥ 1");
  }
  if (!o.seq_lens.empty()) {
    if (o.document_masking) {
      throw Error(
          "cca-bench train: --seq-lens and --document-masking are separate sweeps; run them "
          "one at a time");
    }
    return sweep_seq_lens(request, o);
  }
  const std::vector<ConfigRequest> requests = bench_requests(request, o);
  if (requests.size() == 1) return bench_one(requests.front(), o);
  // Every config is validated before the first one runs.
  for (const ConfigRequest& r : requests) (void)load_run_config(r);
  std::vector<Json> runs;
  for (size_t i = 0; i < requests.size(); ++i) {
    TrainBenchOptions next = o;
    if (i > 0) {
      next.trace_path.clear();
      next.process_start = Clock::now();  // its time to first step counts from here
      std::cout << "\n";
    }
    runs.push_back(bench_one(requests[i], next));
  }
  Json::Object doc{{"benchmark", "train"}, {"comparison", comparison(runs)}};
  doc["runs"] = Json(Json::Array(runs.begin(), runs.end()));
  return Json(std::move(doc));
}

}  // namespace cca::bench
