// cca-bench: attention, training and decode benchmarks with JSON output.
#include <fstream>
#include <memory>

#include "bench/attention_bench.h"
#include "bench/decode_bench.h"
#include "bench/train_bench.h"
#include "cli.h"
#include "data/bench.h"
#include "data/dataset.h"
#include "dist/overlap_bench.h"
#include "ops/device.h"
#include "util/error.h"
#include "util/log.h"

namespace {

// --json PATH: the document also goes to a file (nothing when PATH is empty).
void write_json(const std::string& path, const std::string& json) {
  if (path.empty()) return;
  std::ofstream out(path);
  if (!(out << json << "\n")) throw cca::Error("cannot write '" + path + "'");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cca-bench: measure attention layers, training steps and decoding side by side."};
  app.require_subcommand(1);
  auto* device = app.add_subcommand("device", "Show the device and runtime this build sees");
  auto* attention = app.add_subcommand("attention", "Per-layer attention latency per variant");
  cca::bench::AttentionBenchOptions attention_options;
  std::string attention_json;
  attention->add_option("--seq", attention_options.seq_lens,
                        "Sequence lengths (B·S is constant: B = max(1, tokens / S)); a case that "
                        "runs out of memory is reported as such in the JSON");
  attention->add_option("--tokens", attention_options.tokens, "Tokens per batch, B·S");
  attention->add_option("--variants", attention_options.variants,
                        "mha gqa4 gqa8 mla cca4 ccgqa2x8 cca8");
  attention->add_option("--dtype", attention_options.dtype, "bf16 | fp16 | fp32");
  attention->add_option("--iters", attention_options.iters, "Timed calls per measurement")
      ->check(CLI::PositiveNumber);
  attention->add_flag("!--no-prologue", attention_options.prologue,
                      "Skip the fused-vs-plain prologue timings");
  attention->add_option("--doc-lengths", attention_options.document_lengths,
                        "Also time every layer with document masking over packed documents of "
                        "these lengths (drawn uniformly), e.g. --doc-lengths 1024 8192");
  attention->add_option("--device", attention_options.device,
                        "cuda | cpu (cpu: layers on the exact math core, no prologue table)");
  attention->add_option("--json", attention_json, "Also write the JSON here");
  auto* train = app.add_subcommand("train", "Training-step throughput, MFU and phase breakdown");
  auto* decode = app.add_subcommand("decode", "KV-cache size and decode throughput per variant");
  cca::bench::DecodeBenchOptions decode_options;
  std::string decode_json;
  decode->add_option("--contexts", decode_options.contexts, "Context lengths");
  decode->add_option("--batches", decode_options.batches, "Batch sizes");
  decode->add_option("--variants", decode_options.variants,
                     "mha gqa4 gqa8 mla cca4 ccgqa2x8 cca8 (default: all)");
  decode->add_option("--dim", decode_options.model_dim, "Model width E");
  decode->add_option("--dtype", decode_options.dtype, "bf16 | fp16 | fp32");
  decode
      ->add_option("--steps", decode_options.steps,
                   "Decode steps per timed window (five windows per point; the median counts)")
      ->check(CLI::PositiveNumber);
  decode->add_option("--max-cache-gib", decode_options.max_cache_gib,
                     "Skip points whose cache would exceed this");
  decode->add_option("--json", decode_json, "Also write the JSON here");
  cca::cli::ConfigFlags flags;
  cca::cli::add_config_flags(*train, flags);
  cca::bench::TrainBenchOptions train_options;
  std::string train_json;
  train->add_option("--steps", train_options.steps, "Timed steps (after the warm-up)")
      ->check(CLI::PositiveNumber);
  train->add_option("--warmup", train_options.warmup, "Untimed steps after the first one");
  train->add_option("--phase-steps", train_options.phase_steps,
                    "Steps split into phases (the device is synchronised between phases)");
  train->add_option("--profile-steps", train_options.profile_steps,
                    "Steps under the kernel profiler (CUDA; 0 = no profile)");
  train->add_option("--trace", train_options.trace_path,
                    "Write a Chrome trace of the profiled steps here");
  train->add_option("--compare", train_options.compare,
                    "Further configs, run after --config in this process with the same --set "
                    "overrides; prints tokens/s as ratios to the first");
  train->add_flag("--document-masking", train_options.document_masking,
                  "Run each config with data.document_masking off, then on (documents of its "
                  "own data), and report the ratios");
  train->add_option(
      "--seq-lens", train_options.seq_lens,
      "Sweep these sequence lengths (one run each, shortest first; a length that runs "
      "out of memory ends the sweep and the JSON names the longest that ran). "
      "Activation checkpointing: --set train.activation_checkpointing=true");
  train
      ->add_option("--micro-batch-tokens", train_options.micro_batch_tokens,
                   "With --seq-lens: micro_batch_size = max(1, N / seq_len)")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--json", train_json, "Also write the JSON here");
  auto* ddp = app.add_subcommand(
      "ddp", "Backward with and without the bucketed gradient all-reduce overlapped (JSON)");
  cca::cli::ConfigFlags ddp_flags;
  cca::cli::add_config_flags(*ddp, ddp_flags);
  cca::dist::OverlapBenchOptions ddp_options;
  std::string ddp_json;
  ddp->add_option("--iters", ddp_options.iters, "Timed micro-batches per mode")
      ->check(CLI::PositiveNumber);
  ddp->add_option("--json", ddp_json, "Also write the JSON here");
  auto* data = app.add_subcommand("data", "Tokenizer encode and loader throughput (JSON)");
  std::string dataset = "data/builtin", json_path;
  cca::data::LoaderOptions loader_options;
  loader_options.batch_size = 16;
  int threads = 0;
  int64_t batches = 2000;
  std::string bench_tokenizer;
  data->add_option("--dataset", dataset, "Dataset folder (tokenizer.model, corpus, shards)");
  data->add_option("--tokenizer", bench_tokenizer,
                   "Encode with this .model or tokenizer.json (default: the dataset's)");
  data->add_option("--seq-len", loader_options.seq_len, "Sequence length");
  data->add_option("--batch", loader_options.batch_size, "Sequences per batch");
  data->add_option("--batches", batches, "Batches to time")->check(CLI::PositiveNumber);
  data->add_option("--threads", threads, "Encoding threads (0 = all cores)");
  data->add_option("--json", json_path, "Also write the JSON here");
  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;
  return cca::guarded_main([&]() -> int {
    if (device->parsed()) {
      const at::Device resolved = cca::resolve_device("auto");
      std::cout << cca::describe_runtime() << "\n" << cca::describe_device(resolved) << "\n";
      return cca::kExitOk;
    }
    if (data->parsed()) {
      auto shards = std::make_shared<const cca::data::ShardSet>(
          cca::data::open_shards(dataset + "/train_*.bin", "train"));
      const std::string tokenizer =
          bench_tokenizer.empty() ? dataset + "/tokenizer.model" : bench_tokenizer;
      const auto encode =
          cca::data::bench_encode(tokenizer, {dataset + "/corpus.jsonl"}, threads, 64 << 20);
      const auto loader = cca::data::bench_loader(shards, loader_options, batches);
      const std::string json = cca::data::render_bench_json(encode, loader, loader_options);
      std::cout << json << "\n";
      write_json(json_path, json);
      return cca::kExitOk;
    }
    if (attention->parsed()) {
      const std::string json = cca::bench::run_attention_bench(attention_options).dump(2);
      write_json(attention_json, json);
      return cca::kExitOk;
    }
    if (decode->parsed()) {
      const std::string json = cca::bench::run_decode_bench(decode_options).dump(2);
      write_json(decode_json, json);
      return cca::kExitOk;
    }
    if (ddp->parsed()) {
      if (ddp_flags.request.path.empty()) throw cca::Error("cca-bench ddp needs --config FILE");
      const cca::LoadedConfig loaded = cca::load_run_config(ddp_flags.request);
      const std::string json = cca::dist::run_overlap_bench(loaded, ddp_options).dump(2);
      if (cca::rank_from_environment() != 0) return cca::kExitOk;  // rank 0 reports
      std::cout << json << "\n";
      write_json(ddp_json, json);
      return cca::kExitOk;
    }
    if (train->parsed()) {
      if (flags.request.path.empty()) throw cca::Error("cca-bench train needs --config FILE");
      if (flags.dry_run) {
        const cca::LoadedConfig loaded = cca::load_run_config(flags.request);
        cca::log_run_summary(loaded, cca::world_size_from_environment());
        return cca::kExitOk;
      }
      const std::string json = cca::bench::run_train_bench(flags.request, train_options).dump(2);
      if (train_json.empty()) std::cout << json << "\n";
      write_json(train_json, json);
      return cca::kExitOk;
    }
    const std::string which = app.get_subcommands().front()->get_name();
    throw cca::Error("cca-bench " + which + " is not available in this build yet");
  });
}
