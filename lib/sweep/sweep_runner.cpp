#include "sweep/sweep_runner.h"

#include <algorithm>
#include <fstream>

#include "app/startup.h"
#include "checkpoint/checkpoint_store.h"
#include "launch/launcher.h"
#include "sweep/report.h"
#include "sweep/run_folder.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"
#include "util/strings.h"

namespace cca::sweep {
namespace {

const char* state_name(const PlannedRun& p) {
  switch (p.state) {
    case RunState::finished:
      return "finished";
    case RunState::resume:
      return "resume";
    default:
      return "new";
  }
}

// Rows padded into columns, for the plan printed before a sweep starts.
std::vector<std::string> aligned(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i] + (i + 1 < row.size() ? std::string(width[i] - row[i].size() + 2, ' ') : "");
    }
    lines.push_back(line);
  }
  return lines;
}

// Parameters, KV cache and attention FLOPs of each run: what a matched comparison must check
// before spending GPU hours.
void log_plan(const SweepSpec& spec, const std::vector<PlannedRun>& planned, int world_size) {
  log::info("sweep       {}: {} run(s) in {} (base {})", spec.file, planned.size(), spec.out_dir,
            spec.base_path.empty() ? "base_config in the sweep file" : spec.base_path);
  std::vector<std::vector<std::string>> rows = {{"run", "state", "params", "active", "kv/token",
                                                 "attn FLOP/token", "tokens/step", "overrides"}};
  for (const PlannedRun& p : planned) {
    const ModelNumbers m = model_numbers(p.loaded.config, world_size);
    const std::string state =
        p.state == RunState::resume ? format("resume@{}", p.resume_step) : state_name(p);
    rows.push_back({p.run.name, state,
                    human_count(static_cast<double>(m.derived.counts.total_params)),
                    human_count(static_cast<double>(m.derived.counts.active_params)),
                    human_bytes(static_cast<double>(m.kv_bytes_per_token)),
                    human_count(m.attention_flops_per_token),
                    std::to_string(m.derived.tokens_per_step), join(p.run.variant, " ")});
  }
  for (const std::string& line : aligned(rows)) log::info("            {}", line);
}

// `arg` as a POSIX shell reads it back: the dry run's commands can be pasted.
std::string shell_quoted(const std::string& arg) {
  const bool plain = !arg.empty() && arg.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789_./=:,+-@%") == std::string::npos;
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A run without a checkpoint starts from nothing: remove what an earlier, killed attempt left
// (only the trainer's own outputs, never other files someone put there).
void clear_run_folder(const std::string& dir) {
  if (!files::is_directory(dir)) return;
  for (const char* name : {"metrics.jsonl", "config.yaml", "config.yaml.tmp"}) {
    files::remove_file(files::join(dir, name));
  }
  for (const char* name : {"checkpoints", "logs"}) files::remove_tree(files::join(dir, name));
}

// An inline base_config becomes a file the runs' --config can name.
std::string write_base_config(const SweepSpec& spec) {
  if (!spec.base_path.empty()) return spec.base_path;
  files::make_directories(spec.out_dir);
  const std::string path = files::join(spec.out_dir, "base_config.yaml");
  std::ofstream out(path, std::ios::trunc);
  out << "# Written by cca-train sweep from the base_config of " << spec.file
      << "; each run applies its --set overrides on top.\n"
      << spec.base_config;
  out.close();
  if (!out) throw Error("sweep: cannot write '" + path + "'");
  return path;
}

// The report over every run of the sweep that has started (a subset run with --only still
// reports on all of them).
void write_sweep_report(const SweepSpec& spec) {
  std::vector<RunFolder> runs;
  for (const SweepRun& run : spec.runs) {
    if (!files::is_regular_file(files::join(run.dir, "metrics.jsonl"))) continue;
    runs.push_back(load_run_folder(run.dir));
  }
  if (runs.empty()) return;
  const ReportFiles written = write_report(runs, spec.out_dir, spec.title, spec.tune_keys);
  log::info("sweep       report: {} and {} ({} runs)", written.markdown, written.html, runs.size());
}

void report_best_effort(const SweepSpec& spec) noexcept {
  try {
    write_sweep_report(spec);
  } catch (const std::exception& e) {
    log::warn("sweep       no report: {}", e.what());
  }
}

// Trains one run; returns false when the sweep must stop here (a signal, or the run stopped
// before its last step). Throws when the run fails.
bool train(const PlannedRun& p, const std::string& base_file, const SweepRequest& request,
           size_t index, size_t count) {
  const std::string what = format("[{}/{}] {}", index + 1, count, p.run.name);
  if (p.state == RunState::fresh) {
    clear_run_folder(p.run.dir);
    log::info("sweep       {}: new run in {}", what, p.run.dir);
  } else {
    log::info("sweep       {}: resuming from step {} in {}", what, p.resume_step, p.run.dir);
  }
  const int status = dist::run_self(run_arguments(p, base_file, request));
  const int signal = dist::received_stop_signal();
  if (status != 0 && signal == 0) {
    throw Error(
        format("sweep: run '{}' failed with exit status {} (its output is above); fix it "
               "and run the same command again: finished runs are skipped",
               p.run.name, status));
  }
  const std::string metrics = files::join(p.run.dir, "metrics.jsonl");
  const bool finished = files::is_regular_file(metrics) &&
                        is_finished(read_run_metrics(metrics), p.loaded.config.train.steps);
  if (signal != 0 || !finished) {
    log::warn("sweep       stopped during run '{}'{}; run the same command again to continue",
              p.run.name, signal != 0 ? format(" (signal {})", signal) : std::string());
    return false;
  }
  return true;
}

}  // namespace

std::vector<PlannedRun> plan_runs(const std::vector<SweepRun>& runs,
                                  const std::vector<LoadedConfig>& configs) {
  std::vector<PlannedRun> planned;
  for (size_t i = 0; i < runs.size(); ++i) {
    PlannedRun p{runs[i], configs[i], RunState::fresh, 0};
    const std::string metrics = files::join(p.run.dir, "metrics.jsonl");
    const auto checkpoint =
        checkpoint_store::newest_complete(files::join(p.run.dir, "checkpoints"), nullptr);
    if (files::is_regular_file(metrics) &&
        is_finished(read_run_metrics(metrics), p.loaded.config.train.steps)) {
      p.state = RunState::finished;
    } else if (checkpoint) {
      p.state = RunState::resume;
      p.resume_step = checkpoint->step;
    }
    planned.push_back(std::move(p));
  }
  return planned;
}

std::vector<std::string> run_arguments(const PlannedRun& planned, const std::string& base_file,
                                       const SweepRequest& request) {
  std::vector<std::string> args = {"--config", base_file};
  for (const Override& o : planned.run.overrides) {
    args.push_back("--set");
    args.push_back(o.text);
  }
  if (planned.state == RunState::resume) args.insert(args.end(), {"--resume", "auto"});
  if (request.nproc_per_node > 0) {
    args.insert(args.end(), {"--nproc-per-node", std::to_string(request.nproc_per_node)});
  }
  if (!request.log_level.empty()) args.insert(args.end(), {"--log-level", request.log_level});
  return args;
}

int run_sweep(const SweepRequest& request) {
  if (world_size_from_environment() > 1) {
    throw Error(
        "sweep: run it as a single process (not under torchrun or srun); "
        "--nproc-per-node N makes each run data parallel");
  }
  const SweepSpec spec = read_sweep_spec(request.file, request.overrides);
  const std::vector<SweepRun> runs = select_runs(spec, request.only);
  const int world_size = std::max(request.nproc_per_node, 1);
  const std::vector<PlannedRun> planned = plan_runs(runs, load_all(spec, runs, world_size));
  log_plan(spec, planned, world_size);
  const std::string base_file =
      spec.base_path.empty() ? files::join(spec.out_dir, "base_config.yaml") : spec.base_path;
  if (request.dry_run) {
    for (const PlannedRun& p : planned) {
      if (p.state == RunState::finished) continue;
      std::vector<std::string> words;
      for (const std::string& arg : run_arguments(p, base_file, request)) {
        words.push_back(shell_quoted(arg));
      }
      log::info("            {}: cca-train {}", p.run.name, join(words, " "));
    }
    return kExitOk;
  }
  write_base_config(spec);
  dist::catch_stop_signals();  // a Ctrl-C between runs stops the sweep instead of killing it
  bool complete = true;
  for (size_t i = 0; i < planned.size() && complete; ++i) {
    if (planned[i].state == RunState::finished) {
      log::info("sweep       [{}/{}] {}: finished already, skipped", i + 1, planned.size(),
                planned[i].run.name);
      continue;
    }
    try {
      complete = dist::received_stop_signal() == 0 &&
                 train(planned[i], base_file, request, i, planned.size());
    } catch (const Error&) {
      report_best_effort(spec);  // the runs that did finish are worth seeing
      throw;
    }
  }
  if (complete) log::info("sweep       all {} run(s) finished", planned.size());
  write_sweep_report(spec);
  return kExitOk;
}

}  // namespace cca::sweep
