// cca-generate: stream text from a cca-train checkpoint or an exported model folder.
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

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
#include "util/strings.h"

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

// "1,2,3" (spaces allowed) -> ids; throws cca::UsageError naming the bad entry.
std::vector<int32_t> parse_token_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string item;
  std::stringstream stream(text);
  while (std::getline(stream, item, ',')) {
    const size_t first = item.find_first_not_of(' ');
    const size_t last = item.find_last_not_of(' ');
    const std::string trimmed =
        first == std::string::npos ? "" : item.substr(first, last - first + 1);
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(trimmed, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (trimmed.empty() || used != trimmed.size() || id < 0 || id > INT32_MAX) {
      throw cca::UsageError("--token-ids '" + text + "': '" + trimmed +
                            "' is not a token id (expected comma-separated integers >= 0)");
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  if (ids.empty()) throw cca::UsageError("--token-ids '" + text + "': no ids");
  return ids;
}

// The prompts as token ids: each --token-ids as given, then each text prompt encoded after BOS
// (the tokenizer is opened only when a text prompt needs it). No prompt at all = an empty text
// prompt, which starts a document.
struct Prompt {
  std::vector<int32_t> ids;
  bool from_text = false;
};

std::vector<Prompt> read_prompts(const std::vector<std::string>& id_flags,
                                 std::vector<std::string> texts, const std::string& file,
                                 const std::function<const cca::data::Tokenizer&()>& tokenizer) {
  std::vector<Prompt> prompts;
  for (const std::string& flag : id_flags) prompts.push_back({parse_token_ids(flag), false});
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw cca::Error("--prompts-file '" + file + "': cannot open it");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) texts.push_back(line);
    }
  }
  if (prompts.empty() && texts.empty()) texts.push_back("");
  for (const std::string& text : texts) {
    Prompt prompt{{}, true};
    if (tokenizer().bos_id() >= 0) prompt.ids.push_back(tokenizer().bos_id());
    tokenizer().encode(text, prompt.ids);
    if (prompt.ids.empty()) {
      throw cca::Error("the prompt '" + text +
                       "' encodes to no tokens and the tokenizer has no BOS");
    }
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

// --dump-logits: one fp32 forward pass over the prompt; input_ids int64 [1, T], logits fp32
// [1, T, V] (what an exported model's logits are compared against).
void dump_logits(cca::TransformerImpl& model, const std::vector<int32_t>& ids,
                 const std::string& path) {
  at::NoGradGuard no_grad;
  model.eval();
  const std::vector<int64_t> wide(ids.begin(), ids.end());
  const at::Tensor input = at::tensor(wide, at::kLong).view({1, -1});
  const at::Tensor logits = model.forward(input.to(model.embedding.device())).to(at::kFloat);
  cca::write_tensors(path, {{"input_ids", input}, {"logits", logits}}, {{"format", "pt"}});
  cca::log::info("logits      {} tokens x {} -> {}", ids.size(), logits.size(-1), path);
}

// BOS and EOS end a continuation. Printing ids needs no tokenizer: without one there are none.
std::vector<int32_t> stop_tokens(const std::function<const cca::data::Tokenizer&()>& tokenizer,
                                 bool ids_only) {
  std::vector<int32_t> stops;
  try {
    for (int32_t id : {tokenizer().bos_id(), tokenizer().eos_id()}) {
      if (id >= 0) stops.push_back(id);
    }
  } catch (const cca::Error& e) {
    if (!ids_only) throw;
    cca::log::warn("no stop tokens ({})", e.what());
  }
  return stops;
}

// Streams the continuation as text. Decoding prompt and continuation together keeps the spaces
// between them right; DecodeStream holds back a character whose bytes span tokens. Only ids of the
// tokenizer's vocabulary are drawn, never the model's padding rows.
void stream_text(cca::TransformerImpl& model, const cca::data::Tokenizer& tokenizer,
                 const Prompt& prompt, cca::SamplingOptions sampling) {
  sampling.vocab_limit = tokenizer.vocab_size();
  const size_t skip = prompt.from_text && tokenizer.bos_id() >= 0 ? 1 : 0;
  cca::data::DecodeStream stream(
      tokenizer, std::vector<int32_t>(prompt.ids.begin() + static_cast<std::ptrdiff_t>(skip),
                                      prompt.ids.end()));
  std::cout << stream.shown() << std::flush;
  cca::generate(model, prompt.ids, sampling, [&](int32_t token) {
    if (std::find(sampling.stop_tokens.begin(), sampling.stop_tokens.end(), token) !=
        sampling.stop_tokens.end())
      return false;
    std::cout << stream.push(token) << std::flush;
    return true;
  });
  std::cout << stream.finish() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cca-generate: stream text from a cca-train checkpoint or exported model.\n"
      "Example: cca-generate --checkpoint runs/quickstart --prompt \"The moon\""};
  std::string checkpoint, prompts_file, tokenizer_flag, device_flag = "auto", dtype = "auto";
  std::string dump_path;
  std::vector<std::string> prompt_flags, token_id_flags;
  bool print_ids = false;
  cca::SamplingOptions sampling;
  sampling.temperature = 0.8;
  sampling.top_k = 50;
  app.add_option("--checkpoint", checkpoint,
                 "Checkpoint folder, run folder (newest checkpoint) or export folder")
      ->required();
  app.add_option("--prompt", prompt_flags, "Prompt text (repeatable; empty = start a document)");
  app.add_option("--prompts-file", prompts_file, "One prompt per line");
  app.add_option("--token-ids", token_id_flags,
                 "A prompt as token ids, e.g. 1,2,3 (repeatable; no BOS is added)");
  app.add_option("--dump-logits", dump_path,
                 "Run one fp32 forward pass over the (single) prompt and write input_ids and "
                 "logits [1, T, vocab] to this safetensors file instead of generating");
  app.add_flag("--print-ids", print_ids,
               "Print the generated token ids (one line of space-separated ids per prompt, a "
               "final BOS/EOS included) instead of text");
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
    if (print_ids) {  // stdout carries only the ids
      cca::log::Options quiet;
      quiet.level = cca::log::Level::warn;
      cca::log::init(quiet);
    }
    const std::string folder = model_folder(checkpoint);
    const cca::LoadedConfig loaded = cca::load_config(cca::files::join(folder, "config.yaml"));
    std::optional<cca::data::Tokenizer> tokenizer;
    const auto open_tokenizer = [&]() -> const cca::data::Tokenizer& {
      if (!tokenizer) {
        tokenizer.emplace(tokenizer_path(tokenizer_flag, loaded.config));
        if (tokenizer->vocab_size() > loaded.config.model.vocab_size) {
          throw cca::Error(cca::format("{}: {} tokens, more than the model's vocab_size {}",
                                       tokenizer->path(), tokenizer->vocab_size(),
                                       loaded.config.model.vocab_size));
        }
      }
      return *tokenizer;
    };
    if (!dump_path.empty() && dtype == "bf16") {
      throw cca::UsageError("--dump-logits runs in fp32; leave out --dtype bf16");
    }
    const at::Device device = cca::resolve_device(device_flag);
    auto model = std::make_shared<cca::TransformerImpl>(loaded.config);
    cca::load_model_weights(cca::files::join(folder, "model.safetensors"), *model);
    model->to(device);
    const bool bf16 = dtype == "bf16" || (dtype == "auto" && device.is_cuda() && dump_path.empty());
    if (bf16) model->to(at::kBFloat16);
    cca::log::info("model       {} on {} ({})", folder, cca::describe_device(device),
                   bf16 ? "bf16" : "fp32");
    const std::vector<Prompt> prompts =
        read_prompts(token_id_flags, prompt_flags, prompts_file, open_tokenizer);
    if (!dump_path.empty()) {
      if (prompts.size() != 1) {
        throw cca::UsageError("--dump-logits takes exactly one prompt; got " +
                              std::to_string(prompts.size()));
      }
      dump_logits(*model, prompts.front().ids, dump_path);
      return cca::kExitOk;
    }
    sampling.stop_tokens = stop_tokens(open_tokenizer, print_ids);
    for (const Prompt& prompt : prompts) {
      if (print_ids) {
        const std::vector<int32_t> produced = cca::generate(*model, prompt.ids, sampling);
        std::vector<std::string> words;
        for (int32_t id : produced) words.push_back(std::to_string(id));
        std::cout << cca::join(words, " ") << "\n" << std::flush;
        continue;
      }
      stream_text(*model, open_tokenizer(), prompt, sampling);
    }
    return cca::kExitOk;
  });
}
