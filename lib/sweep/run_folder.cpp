#include "sweep/run_folder.h"

#include "config/accounting.h"
#include "util/error.h"
#include "util/files.h"

namespace cca::sweep {
namespace {

constexpr const char* kMetricsFile = "metrics.jsonl";
constexpr const char* kConfigFile = "config.yaml";

// A folder the trainer wrote into (load_run_folder says what is missing, if anything).
bool is_run_dir(const std::string& dir) {
  return files::is_regular_file(files::join(dir, kMetricsFile)) ||
         files::is_regular_file(files::join(dir, kConfigFile));
}

std::string trimmed(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

LoadedConfig load_run_config_file(const std::string& path) {
  LoadOptions options;
  // The batch rule depends on the world size the run had, which the folder does not record; the
  // report's numbers do not depend on it.
  options.overrides = {"train.global_batch_size=0"};
  return load_config(path, options);
}

}  // namespace

ModelNumbers model_numbers(const Config& c, int world_size) {
  ModelNumbers m;
  m.derived = derive_values(c, world_size);
  m.kv_bytes_per_token = m.derived.kv_bytes_per_token_per_layer * c.model.n_layers;
  m.attention_flops_per_token =
      static_cast<double>(c.model.n_layers) *
      attention_forward_flops_per_token(m.derived.attention, c.train.seq_len, /*causal=*/true);
  return m;
}

RunFolder load_run_folder(const std::string& dir_argument) {
  const std::string dir = trimmed(dir_argument);
  if (!files::is_directory(dir)) throw Error("report: run folder '" + dir + "' does not exist");
  const std::string metrics_path = files::join(dir, kMetricsFile);
  const std::string config_path = files::join(dir, kConfigFile);
  if (!files::is_regular_file(metrics_path)) {
    throw Error("report: run folder '" + dir + "' has no " + kMetricsFile +
                " (the run has not started, or this is not a run folder)");
  }
  if (!files::is_regular_file(config_path)) {
    throw Error("report: run folder '" + dir + "' has no " + kConfigFile +
                " (cca-train writes it when a run starts)");
  }
  RunFolder run;
  run.dir = dir;
  run.loaded = load_run_config_file(config_path);
  const Config& c = run.loaded.config;
  run.name = c.run.name.empty() ? files::file_name(dir) : c.run.name;
  run.model = model_numbers(c);
  run.metrics = read_run_metrics(metrics_path);
  run.outcome = summarize(run.metrics);
  run.finished = is_finished(run.metrics, c.train.steps);
  return run;
}

std::vector<std::string> expand_run_dirs(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& argument : paths) {
    const std::string path = trimmed(argument);
    if (!files::is_directory(path)) throw Error("report: folder '" + path + "' does not exist");
    if (is_run_dir(path)) {
      out.push_back(path);
      continue;
    }
    size_t found = 0;
    for (const std::string& name : files::list_directory(path)) {
      const std::string child = files::join(path, name);
      if (files::is_directory(child) && is_run_dir(child)) {
        out.push_back(child);
        ++found;
      }
    }
    if (found == 0) {
      throw Error("report: '" + path + "' has no " + kMetricsFile +
                  ", and no run folders with one inside: not a run folder or a sweep's out_dir");
    }
  }
  return out;
}

}  // namespace cca::sweep
