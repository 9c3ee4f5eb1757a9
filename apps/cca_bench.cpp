// cca-bench: attention, training and decode benchmarks with JSON output.
#include "cli.h"
#include "ops/device.h"
#include "util/error.h"
#include "util/log.h"

int main(int argc, char** argv) {
  CLI::App app{"cca-bench: measure attention layers, training steps and decoding side by side."};
  app.require_subcommand(1);
  auto* device = app.add_subcommand("device", "Show the device and runtime this build sees");
  auto* attention = app.add_subcommand("attention", "Per-layer attention latency per variant");
  auto* train = app.add_subcommand("train", "Training-step throughput, MFU and phase breakdown");
  auto* decode = app.add_subcommand("decode", "KV-cache size and decode throughput per variant");
  cca::cli::ConfigFlags flags;
  cca::cli::add_config_flags(*train, flags);
  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;
  return cca::guarded_main([&]() -> int {
    if (device->parsed()) {
      const at::Device resolved = cca::resolve_device("auto");
      std::cout << cca::describe_runtime() << "\n" << cca::describe_device(resolved) << "\n";
      return cca::kExitOk;
    }
    if (train->parsed() && flags.dry_run) {
      const cca::LoadedConfig loaded = cca::load_run_config(flags.request);
      cca::log_run_summary(loaded, cca::world_size_from_environment());
      return cca::kExitOk;
    }
    const std::string which = app.get_subcommands().front()->get_name();
    (void)attention;
    (void)decode;
    throw cca::Error("cca-bench " + which + " is not available in this build yet");
  });
}
