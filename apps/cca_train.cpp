// cca-train: train a model from a YAML config, or resume one.
#include "cli.h"
#include "ops/device.h"
#include "util/error.h"
#include "util/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "cca-train: pretrain a dense or MoE decoder with MHA, GQA, MLA, CCA or CCGQA.\n"
      "Example: cca-train --config configs/quickstart.yaml --set train.steps=200"};
  cca::cli::ConfigFlags flags;
  std::string resume;
  cca::cli::add_config_flags(app, flags);
  app.add_option("--resume", resume, "auto (newest complete checkpoint in run.dir) or a path");
  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;

  return cca::guarded_main([&]() -> int {
    if (cca::cli::handle_config_queries(flags, nullptr)) return cca::kExitOk;
    if (flags.request.path.empty()) throw cca::Error("--config FILE is required (see --help)");
    const cca::LoadedConfig loaded = cca::load_run_config(flags.request);
    if (cca::cli::handle_config_queries(flags, &loaded)) return cca::kExitOk;
    cca::log_run_summary(loaded, cca::world_size_from_environment());
    cca::log::info("runtime     {}", cca::describe_runtime());
    if (flags.dry_run) return cca::kExitOk;
    throw cca::Error(
        "training is not available in this build yet: the trainer lands with the "
        "models, data and trainer issues; use --dry-run to check a config");
  });
}
