// cca-generate: stream text from a cca-train checkpoint or an exported model folder.
#include <algorithm>
#include <fstream>
#include <iostream>

#include "cli.h"
#include "data/dataset.h"
#include "data/manifest.h"
#include "data/tokenizer.h"
#include "model/generate.h"
#include "ops/device.h"
#include "train/checkpoint.h"
#include "train/tensor_io.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"

namespace {

// A folder with model.safetensors + config.yaml (an export or a complete checkpoint), or a run /
// checkpoints folder whose newest complete checkpoint is taken.
std::string model_folder(const std::string& path) {
  const bool has_weights = cca::files::exists(cca::files::join(path, "model.safetensors")) &&
                           cca::files::exists(cca::files::join(path, "config.yaml"));
  const bool torn = cca::files::exists(cca::files::join(path, "manifest.json")) &&
                    !cca::files::exists(cca::files::join(path, "DONE"));
  if (has_weights && !torn) return path;
  const auto found = cca::find_resume_checkpoint(path, path, "--checkpoint");
  if (!found) throw cca::Error("--checkpoint '" + path + "': no complete checkpoint found");
  return *found;
}

// --tokenizer, else data.tokenizer, else the tokenizer the training shards' manifest names (in
// data.train when it is a dataset folder, beside it when it names shard files).
std::string tokenizer_path(const std::string& flag, const cca::Config& config) {
  if (!flag.empty()) return flag;
  if (!config.data.tokenizer.empty()) return config.data.tokenizer;
  const std::string manifest = cca::data::manifest_path_for_shards(config.data.train);
  if (cca::files::exists(manifest)) {
    return cca::data::manifest_tokenizer_path(manifest, cca::data::read_manifest(manifest));
  }
  throw cca::Error("no tokenizer: the model's config has no data.tokenizer and '" + manifest +
                   "' does not exist; pass --tokenizer PATH");
}

std::vector<std::string> read_prompts(const std::vector<std::string>& flags,
                                      const std::string& file) {
  std::vector<std::string> prompts = flags;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw cca::Error("--prompts-file '" + file + "': cannot open it");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) prompts.push_back(line);
    }
  }
  if (prompts.empty()) prompts.push_back("");
  return prompts;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cca-generate: stream text from a cca-train checkpoint or exported model.\n"
      "Example: cca-generate --checkpoint runs/quickstart --prompt \"The moon\""};
  std::string checkpoint, prompts_file, tokenizer_flag, device_flag = "auto", dtype = "auto";
  std::vector<std::string> prompt_flags;
  cca::SamplingOptions sampling;
  sampling.temperature = 0.8;
  sampling.top_k = 50;
  app.add_option("--checkpoint", checkpoint,
                 "Checkpoint folder, run folder (newest checkpoint) or export folder")
      ->required();
  app.add_option("--prompt", prompt_flags, "Prompt text (repeatable; empty = start a document)");
  app.add_option("--prompts-file", prompts_file, "One prompt per line");
  app.add_option("--max-new-tokens", sampling.max_new_tokens, "Tokens to generate per prompt")
      ->check(CLI::PositiveNumber);
  app.add_option("--temperature", sampling.temperature, "Sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", sampling.top_k, "Keep the k most likely tokens; 0 = all")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", sampling.top_p, "Nucleus sampling mass; 1 = off")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", sampling.seed, "Sampling seed");
  app.add_option("--device", device_flag, "auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--dtype", dtype, "auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
  app.add_option("--tokenizer", tokenizer_flag,
                 "SentencePiece .model or tokenizer.json (default: the run's)");
  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;
  return cca::guarded_main([&]() -> int {
    const std::string folder = model_folder(checkpoint);
    const cca::LoadedConfig loaded = cca::load_config(cca::files::join(folder, "config.yaml"));
    const cca::data::Tokenizer tokenizer(tokenizer_path(tokenizer_flag, loaded.config));
    if (tokenizer.vocab_size() > loaded.config.model.vocab_size) {
      throw cca::Error(cca::format("{}: {} tokens, more than the model's vocab_size {}",
                                   tokenizer.path(), tokenizer.vocab_size(),
                                   loaded.config.model.vocab_size));
    }
    const at::Device device = cca::resolve_device(device_flag);
    auto model = std::make_shared<cca::TransformerImpl>(loaded.config);
    cca::load_model_weights(cca::files::join(folder, "model.safetensors"), *model);
    model->to(device);
    if (dtype == "bf16" || (dtype == "auto" && device.is_cuda())) model->to(at::kBFloat16);
    cca::log::info("model       {} on {} ({})", folder, cca::describe_device(device),
                   dtype == "auto" ? (device.is_cuda() ? "bf16" : "fp32") : dtype);
    sampling.vocab_limit = tokenizer.vocab_size();  // never the model's padding rows
    for (int32_t id : {tokenizer.bos_id(), tokenizer.eos_id()}) {
      if (id >= 0) sampling.stop_tokens.push_back(id);
    }
    for (const std::string& prompt : read_prompts(prompt_flags, prompts_file)) {
      std::vector<int32_t> ids;
      if (tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
      tokenizer.encode(prompt, ids);
      // Decoding prompt and continuation together keeps the spaces between them right.
      std::vector<int32_t> text_ids(ids.begin() + (tokenizer.bos_id() >= 0 ? 1 : 0), ids.end());
      cca::data::DecodeStream stream(tokenizer, std::move(text_ids));
      std::cout << stream.shown() << std::flush;
      cca::generate(*model, ids, sampling, [&](int32_t token) {
        if (std::find(sampling.stop_tokens.begin(), sampling.stop_tokens.end(), token) !=
            sampling.stop_tokens.end())
          return false;
        std::cout << stream.push(token) << std::flush;
        return true;
      });
      std::cout << stream.finish();
      std::cout << "\n";
    }
    return cca::kExitOk;
  });
}
