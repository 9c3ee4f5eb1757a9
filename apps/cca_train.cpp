// cca-train: train a model from a YAML config, resume it, evaluate a checkpoint, export its
// weights (ours or a Hugging Face folder), import a Hugging Face model, run a sweep of variants or
// compare runs in a report.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "checkpoint/verify_run.h"
#include "cli.h"
#include "config/schema.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "interop/hf_export.h"
#include "launch/environment.h"
#include "launch/launcher.h"
#include "ops/device.h"
#include "sweep/report.h"
#include "sweep/sweep_runner.h"
#include "train/checkpoint.h"
#include "train/checkpoint_eval.h"
#include "train/trainer.h"
#include "train/warm_start.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"
#include "util/strings.h"

namespace {

void log_summary(const cca::TrainResult& result) {
  cca::log::info("summary     step {}{}", result.final_step,
                 result.stopped_early ? " (stopped early; resume with --resume auto)" : "");
  if (result.final_val_loss) {
    cca::log::info("            final val loss {:.4f} (ppl {:.2f})", *result.final_val_loss,
                   std::exp(*result.final_val_loss));
  }
  std::string speed = cca::format("            {:.0f} tokens/s", result.tokens_per_s);
  if (result.mfu) speed += cca::format(", MFU {:.1f}%", *result.mfu * 100.0);
  cca::log::info("{}, peak memory {:.2f} GiB", speed, result.peak_memory_gib);
  for (const auto& [phase, seconds] : result.phase_seconds) {
    cca::log::info("            {:<40} {:>8.2f} s", phase, seconds);
  }
  if (!result.last_checkpoint.empty()) {
    cca::log::info("            last checkpoint {}", result.last_checkpoint);
  }
}

// `--nproc-per-node N`: validate the config once for N ranks, then run N copies of ourselves.
int launch(cca::cli::ConfigFlags& flags, int nproc, int argc, char** argv) {
  const cca::dist::WorldEnvironment world = cca::dist::read_world_environment();
  if (world.distributed) {
    throw cca::Error("--nproc-per-node starts the ranks itself, but this process is already rank " +
                     std::to_string(world.rank) + " of a job (" + world.source +
                     "); leave out --nproc-per-node under torchrun or srun");
  }
  flags.request.world_size = nproc;
  const cca::LoadedConfig loaded = cca::load_run_config(flags.request);
  if (cca::cli::handle_config_queries(flags, &loaded)) return cca::kExitOk;
  if (flags.dry_run) {  // otherwise rank 0 prints the summary
    cca::log_run_summary(loaded, nproc);
    return cca::kExitOk;
  }
  cca::dist::LaunchRequest request;
  request.nproc = nproc;
  request.arguments = cca::dist::arguments_without_nproc(argc, argv);
  return cca::dist::launch_local_ranks(request);
}

// Under torchrun, srun or our launcher: rendezvous and build the data-parallel helper.
std::shared_ptr<cca::dist::DataParallel> join_job(const cca::Config& config) {
  const cca::dist::WorldEnvironment world = cca::dist::read_world_environment();
  if (!world.distributed) return nullptr;
  cca::log::info(
      "dist        rendezvous at {}:{} for {} ranks (up to distributed.timeout_s = {:.0f} s)",
      world.master_addr, world.master_port, world.world_size, config.distributed.timeout_s);
  const at::Device device = cca::resolve_device(config.train.device, world.local_rank);
  auto communicator = std::make_shared<cca::dist::Communicator>(world, config.distributed, device);
  return std::make_shared<cca::dist::DataParallel>(communicator, config.distributed);
}

void init_console_log(const std::string& level) {
  cca::log::Options options;
  options.level = cca::log::parse_level(level.empty() ? "info" : level);
  cca::log::init(options);
}

CLI::App* add_sweep_command(CLI::App& app, cca::sweep::SweepRequest& request) {
  auto* sweep = app.add_subcommand(
      "sweep",
      "Train every run of a sweep file one after another (docs/ablations.md), then write the "
      "report; run it again to continue a stopped sweep");
  sweep->add_option("-c,--config", request.file, "Sweep file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  sweep->add_option("--set", request.overrides, "Override a key in every run (repeatable)")
      ->take_all();
  sweep->add_option("--only", request.only, "Train only these runs (names from the sweep file)")
      ->take_all();
  sweep->add_flag("--dry-run", request.dry_run,
                  "Validate every run, print the plan and each run's command, and exit");
  sweep
      ->add_option("--nproc-per-node", request.nproc_per_node,
                   "Make each run data parallel over N local ranks (all GPUs per run)")
      ->check(CLI::PositiveNumber);
  sweep->add_option("--log-level", request.log_level, "trace|debug|info|warn|error|off");
  return sweep;
}

struct ReportRequest {
  std::vector<std::string> dirs;
  std::string out;
  std::string title;
  std::vector<std::string> tune = cca::sweep::kDefaultTuneKeys;
};

CLI::App* add_report_command(CLI::App& app, ReportRequest& request) {
  auto* report = app.add_subcommand(
      "report",
      "Compare runs: report.md, report.html, report.json and SVG plots (a summary per variant "
      "with its difference from the first; one colour per variant, one line style per seed)");
  report->add_option("run_dirs", request.dirs, "Run folders, or a sweep's out_dir")->required();
  report->add_option("--out", request.out,
                     "Output folder (default: the one folder given, else the runs' parent)");
  report->add_option("--title", request.title, "Report heading (default: the output folder)");
  report->add_option("--tune", request.tune,
                     "Config keys to compare each treatment at its best value of (default "
                     "optim.lr; 'none': every value is its own treatment)");
  return report;
}

int write_report(const ReportRequest& request) {
  init_console_log("");
  const std::vector<std::string> dirs = cca::sweep::expand_run_dirs(request.dirs);
  std::vector<cca::sweep::RunFolder> runs;
  for (const std::string& dir : dirs) runs.push_back(cca::sweep::load_run_folder(dir));
  const std::string out =
      request.out.empty() ? cca::sweep::default_report_dir(request.dirs, dirs) : request.out;
  std::string title = request.title.empty() ? cca::files::file_name(out) : request.title;
  if (title.empty() || title == "." || title == "..") title = "cca-train report";
  std::vector<std::string> tune = request.tune;
  if (tune.size() == 1 && tune.front() == "none") tune.clear();
  for (const std::string& key : tune) {
    if (cca::find_key(key) == nullptr) {
      throw cca::Error("report: --tune '" + key + "' is not a config key");
    }
  }
  const cca::sweep::ReportFiles written = cca::sweep::write_report(runs, out, title, tune);
  cca::log::info("report      {} runs: {}, {}, {} and {} plots", runs.size(), written.markdown,
                 written.html, written.json, written.plots.size());
  return cca::kExitOk;
}

struct ExportFlags {
  std::string format = "weights";
  std::string max_shard_size = "5GB";
  cca::interop::HfExportRequest request;
};

CLI::App* add_export_command(CLI::App& app, ExportFlags& flags) {
  auto* exporter = app.add_subcommand(
      "export",
      "Write a checkpoint's weights and config.yaml into a folder (--format weights), or a "
      "Hugging Face folder that transformers loads (--format hf; docs/interop.md)");
  exporter
      ->add_option("--checkpoint", flags.request.checkpoint,
                   "Checkpoint folder, or a run folder (its newest complete checkpoint)")
      ->required();
  exporter->add_option("--out", flags.request.out, "Output folder")->required();
  exporter->add_option("--format", flags.format, "weights (ours) or hf (Hugging Face)")
      ->check(CLI::IsMember({"weights", "hf"}));
  exporter->add_option("--dtype", flags.request.dtype, "fp32 or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  exporter->add_option("--hf-target", flags.request.target,
                       "hf: auto (the stock class that computes the model exactly, else remote "
                       "code), or one of llama, qwen3, phi3, mixtral, qwen3_moe, deepseek_v3, "
                       "remote-code");
  exporter->add_option("--max-shard-size", flags.max_shard_size,
                       "hf: largest weight file before sharding (5GB, 500MB, 2GiB, bytes)");
  exporter->add_option("--tokenizer", flags.request.tokenizer,
                       "hf: tokenizer to include (default: the run's)");
  exporter->add_flag("--force", flags.request.force, "hf: replace a non-empty --out");
  return exporter;
}

int run_export(ExportFlags& flags) {
  init_console_log("");
  cca::interop::HfExportRequest& request = flags.request;
  const auto found =
      cca::find_resume_checkpoint(request.checkpoint, request.checkpoint, "--checkpoint");
  if (!found) throw cca::Error("export: no complete checkpoint in '" + request.checkpoint + "'");
  if (flags.format == "weights") {
    const int64_t count = cca::export_weights(*found, request.out, request.dtype);
    cca::log::info("exported {} tensors ({}) from {} to {}/model.safetensors + config.yaml", count,
                   request.dtype, *found, request.out);
    return cca::kExitOk;
  }
  request.checkpoint = *found;
  request.max_shard_bytes = cca::interop::parse_size(flags.max_shard_size, "--max-shard-size");
  const cca::interop::HfExportResult result = cca::interop::export_hf(request);
  for (const std::string& reason : result.fallback_reasons) {
    cca::log::warn("export: no stock class computes this model ({}); writing remote code", reason);
  }
  cca::log::info("exported {} tensors ({}) from {} to {} as {} ({})", result.tensors, request.dtype,
                 *found, request.out, cca::interop::architecture(result.target),
                 cca::join(result.files, ", "));
  return cca::kExitOk;
}

CLI::App* add_import_command(CLI::App& app, cca::ImportRequest& request) {
  auto* importer = app.add_subcommand(
      "import",
      "Turn a Hugging Face folder (Llama, Mistral, Qwen3, Phi3, Mixtral, Qwen3-MoE, DeepSeek-V3 "
      "or our export) into a run folder with a step-0 checkpoint (docs/interop.md)");
  importer->add_option("--from", request.from, "Hugging Face folder")->required();
  importer->add_option("--out", request.out, "Run folder to create")->required();
  importer->add_option("--set", request.overrides, "Override a key of the new run (repeatable)")
      ->take_all();
  importer->add_flag("--force", request.force, "Replace a non-empty --out");
  return importer;
}

int run_import(const cca::ImportRequest& request) {
  init_console_log("");
  const cca::ImportResult result = cca::import_hf(request);
  cca::log::info(
      "imported {} parameters from {} into {} ({}); continue with: cca-train --config "
      "{} --set data.train=... --resume auto",
      result.parameters, request.from, request.out, result.checkpoint, result.config_path);
  return cca::kExitOk;
}

struct EvalFlags {
  cca::CheckpointEvalRequest request;
  std::optional<int64_t> val_tokens;
  std::string json;
};

CLI::App* add_eval_command(CLI::App& app, EvalFlags& flags) {
  auto* eval = app.add_subcommand(
      "eval",
      "Evaluate a run's checkpoint on the run's validation data on a chosen device and precision, "
      "beside the val_loss metrics.jsonl recorded at its step (read-only; docs/training.md)");
  cca::CheckpointEvalRequest& request = flags.request;
  eval->add_option("run_dir", request.run_dir, "Run folder")->required();
  eval->add_option("--checkpoint", request.checkpoint,
                   "Step of the checkpoint, or latest (the newest complete one; default)");
  eval->add_option("--device", request.device, "cpu (reference path) or cuda (default: the run's)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  eval->add_option("--precision", request.precision, "fp32 or bf16 (default: the run's)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  eval->add_option("--val-tokens", flags.val_tokens,
                   "Validation tokens per set (default: the run's data.val_tokens)")
      ->check(CLI::PositiveNumber);
  eval->add_option("--set", request.overrides, "Override a key of the run's config (repeatable)")
      ->take_all();
  eval->add_option("--json", flags.json, "Also write the results as JSON to this file");
  return eval;
}

int run_eval(EvalFlags& flags) {
  init_console_log("");
  flags.request.val_tokens = flags.val_tokens;
  if (!flags.json.empty()) cca::check_eval_json_destination(flags.json, flags.request.run_dir);
  const cca::CheckpointEvalResult result = cca::evaluate_checkpoint(flags.request);
  std::cout << cca::render_checkpoint_eval(result) << std::flush;
  if (!flags.json.empty()) {
    cca::write_checkpoint_eval_json(result, flags.json, flags.request.run_dir);
  }
  return cca::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  const auto process_start = std::chrono::steady_clock::now();
  CLI::App app{
      "cca-train: pretrain a dense or MoE decoder with MHA, GQA, MLA, CCA or CCGQA.\n"
      "Example: cca-train --config configs/quickstart.yaml --set train.steps=200"};
  cca::cli::ConfigFlags flags;
  std::string resume;
  std::optional<int64_t> stop_at_step;
  cca::cli::add_config_flags(app, flags);
  app.add_option("--resume", resume,
                 "auto (newest complete checkpoint in run.dir) or a checkpoint/run folder");
  app.add_option("--stop-at-step", stop_at_step,
                 "Checkpoint and exit 0 after this step (planned preemption); resume later")
      ->check(CLI::PositiveNumber);
  std::optional<int> nproc_per_node;
  app.add_option("--nproc-per-node", nproc_per_node,
                 "Data parallel on this machine: start N ranks (like torchrun --nproc-per-node N)")
      ->check(CLI::PositiveNumber);

  ExportFlags export_flags;
  auto* exporter = add_export_command(app, export_flags);
  cca::ImportRequest import_request;
  auto* importer = add_import_command(app, import_request);

  auto* verifier = app.add_subcommand(
      "verify",
      "Check a run's checkpoints against the sizes and XXH64 checksums in their DONE markers "
      "(read-only; exit 1 if one is corrupt)");
  std::string verify_path;
  bool verify_json = false;
  verifier->add_option("path", verify_path, "Run folder, its checkpoints folder, or one checkpoint")
      ->required();
  verifier->add_flag("--json", verify_json, "One JSON object instead of the table");

  EvalFlags eval_flags;
  auto* evaluator = add_eval_command(app, eval_flags);

  cca::sweep::SweepRequest sweep_request;
  auto* sweeper = add_sweep_command(app, sweep_request);
  ReportRequest report_request;
  auto* reporter = add_report_command(app, report_request);

  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;

  bool distributed = false;
  const int exit_status = cca::guarded_main([&]() -> int {
    if (exporter->parsed()) return run_export(export_flags);
    if (importer->parsed()) return run_import(import_request);
    if (evaluator->parsed()) return run_eval(eval_flags);
    if (verifier->parsed()) {
      return cca::checkpoint_store::verify_run(verify_path, verify_json, std::cout);
    }
    if (sweeper->parsed()) {
      init_console_log(sweep_request.log_level);
      return cca::sweep::run_sweep(sweep_request);
    }
    if (reporter->parsed()) return write_report(report_request);
    if (cca::cli::handle_config_queries(flags, nullptr)) return cca::kExitOk;
    if (flags.request.path.empty()) throw cca::UsageError("--config FILE is required (see --help)");
    if (nproc_per_node) return launch(flags, *nproc_per_node, argc, argv);
    const cca::LoadedConfig loaded = cca::load_run_config(flags.request);
    if (cca::cli::handle_config_queries(flags, &loaded)) return cca::kExitOk;
    cca::log_run_summary(loaded, cca::world_size_from_environment());
    cca::log::info("runtime     {}", cca::describe_runtime());
    if (flags.dry_run) return cca::kExitOk;
    cca::attach_rank_log_file(loaded.config, flags.request.log_level);

    cca::TrainOptions options;
    options.parallel = join_job(loaded.config);
    distributed = options.parallel != nullptr;
    options.resume = resume;
    options.stop_at_step = stop_at_step;
    options.process_start = process_start;
    cca::Trainer trainer(loaded, options);
    log_summary(trainer.run());
    return cca::kExitOk;
  });
  if (distributed && exit_status != cca::kExitOk) {
    // Skip static destructors: the process groups of a failed job were abandoned (not joined),
    // and their threads may still wait for a peer that is gone.
    cca::log::flush();
    std::fflush(nullptr);
    std::_Exit(exit_status);
  }
  return exit_status;
}
