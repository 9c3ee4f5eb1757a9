#include "interop/hf_export.h"

#include <unistd.h>

#include <cctype>
#include <fstream>

#include "app/startup.h"
#include "config/geometry.h"
#include "config/loader.h"
#include "config/variants/mha.h"
#include "data/dataset.h"
#include "data/manifest.h"
#include "data/tokenizer.h"
#include "interop/hf_config.h"
#include "interop/hf_convert.h"
#include "interop/hf_tensor_map.h"
#include "interop/remote_code.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"
#include "util/strings.h"

namespace cca::interop {
namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error("cannot write '" + path + "'");
}

// The staging folder beside `out`; removed unless committed.
class Staging {
 public:
  explicit Staging(const std::string& out)
      : out_(out), path_(format("{}.staging-{}", out, ::getpid())) {
    files::remove_tree(path_);
    files::make_directories(path_);
  }
  ~Staging() {
    if (!committed_) files::remove_tree(path_);
  }
  std::string file(const std::string& name) const { return files::join(path_, name); }
  // Swaps the finished folder in: an old `out` is moved aside first and removed last.
  void commit() {
    const std::string old = format("{}.replaced-{}", out_, ::getpid());
    const bool replacing = files::exists(out_);
    if (replacing) files::rename_path(out_, old);
    files::rename_path(path_, out_);
    committed_ = true;
    if (replacing) files::remove_tree(old);
  }

 private:
  std::string out_, path_;
  bool committed_ = false;
};

// The remote-code model rotates with plain RoPE: a scaled model would compute other logits there.
void refuse_scaled_remote_code(const Config& config) {
  if (config.attention.rope_scaling == "none") return;
  throw Error("export: attention.rope_scaling = " + config.attention.rope_scaling +
              " has no Hugging Face form for this model: only the stock Llama, Qwen3, Mixtral and "
              "Qwen3-MoE classes are exported with scaled RoPE (rope_parameters), and this model "
              "needs the remote-code fallback, which computes unscaled RoPE");
}

// CCA's convs and value shift on MHA/GQA heads (attention.mha.*) exist in no transformers class,
// stock or ours: any export would compute other logits.
void refuse_head_convs(const Config& config) {
  const variants::HeadConvSettings s = variants::head_conv_settings(attention_geometry(config));
  if (!s.any()) return;
  const std::string key = s.convs > 0 ? format("attention.mha.convs = {}", s.convs)
                                      : std::string("attention.mha.value_shift = true");
  throw Error("export: " + key + " (CCA's causal convolutions / value shift on " +
              config.attention.kind +
              " heads) has no Hugging Face form: no stock transformers class and not cca-train's "
              "remote-code model computes it; export a model trained with attention.mha.convs: 0 "
              "and attention.mha.value_shift: false");
}

HfTarget resolve_target(const HfExportRequest& request, const Config& config,
                        HfExportResult& result) {
  refuse_head_convs(config);
  if (request.target == "auto") {
    const TargetChoice choice = choose_target(config);
    if (choice.target == HfTarget::remote_code) refuse_scaled_remote_code(config);
    if (choice.target == HfTarget::remote_code && choice.closest) {
      for (const std::string& p : choice.problems) {
        result.fallback_reasons.push_back(architecture(*choice.closest) + ": " + p);
      }
    }
    return choice.target;
  }
  const HfTarget target = parse_target(request.target);
  if (target == HfTarget::remote_code) refuse_scaled_remote_code(config);
  const std::vector<std::string> problems = target_problems(target, config);
  if (!problems.empty()) {
    throw Error("export --hf-target " + request.target + ": " + architecture(target) +
                " does not compute this model:\n  " + join(problems, "\n  ") +
                "\n(leave out --hf-target to fall back to remote code)");
  }
  return target;
}

std::string find_tokenizer(const HfExportRequest& request, const Config& config) {
  if (!request.tokenizer.empty()) return request.tokenizer;
  if (!config.data.tokenizer.empty()) return config.data.tokenizer;
  const std::string manifest = data::manifest_path_for_shards(config.data.train);
  if (files::exists(manifest)) {
    return data::manifest_tokenizer_path(manifest, data::read_manifest(manifest));
  }
  return "";
}

// tokenizer.model + tokenizer_config.json (transformers builds its LlamaTokenizer from them), or
// tokenizer.json + a tokenizer_config.json naming its special tokens. Returns the special tokens
// for the configs.
SpecialTokens write_tokenizer(const std::string& path, const Config& config, Staging& staging,
                              std::vector<std::string>& written) {
  SpecialTokens tokens;
  if (path.empty()) {
    log::warn(
        "export: no tokenizer (no data.tokenizer, no manifest beside data.train); the "
        "folder has none: pass --tokenizer PATH to include one");
    return tokens;
  }
  const bool hf_json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  const data::Tokenizer tokenizer(path);
  if (tokenizer.bos_id() >= 0) tokens.bos = tokenizer.bos_id();
  if (tokenizer.eos_id() >= 0) tokens.eos = tokenizer.eos_id();
  files::copy_file(path, staging.file(hf_json ? "tokenizer.json" : "tokenizer.model"));
  Json::Object o;
  if (tokens.bos) o["bos_token"] = tokenizer.piece(*tokens.bos);
  if (tokens.eos) o["eos_token"] = tokenizer.piece(*tokens.eos);
  if (hf_json) {
    // The file's own post-processor decides about BOS, as in cca-data; the config names the
    // special tokens, which tokenizer.json alone does not.
    o["tokenizer_class"] = "PreTrainedTokenizerFast";
  } else {
    o["tokenizer_class"] = "LlamaTokenizer";
    o["add_bos_token"] = tokens.bos.has_value();  // every document starts with BOS, as in training
    o["add_eos_token"] = false;
    o["legacy"] = true;  // SentencePiece's own handling of the leading space
  }
  o["model_max_length"] = max_sequence_length(config);
  o["clean_up_tokenization_spaces"] = false;
  write_text(staging.file("tokenizer_config.json"), Json(std::move(o)).dump(2) + "\n");
  written.push_back(hf_json ? "tokenizer.json" : "tokenizer.model");
  written.push_back("tokenizer_config.json");
  return tokens;
}

void write_remote_code(Staging& staging, std::vector<std::string>& written) {
  const std::vector<EmbeddedFile>& code = remote_code_files();
  if (code.empty()) {
    throw Error(
        "export: this model needs the remote-code target, and this build of cca-train "
        "embeds no lib/interop/hf_remote/*.py files");
  }
  for (const EmbeddedFile& f : code) {
    write_text(staging.file(f.name), f.text);
    written.push_back(f.name);
  }
}

void check_out(const HfExportRequest& request) {
  if (!files::exists(request.out)) return;
  if (!files::is_directory(request.out)) {
    throw Error("export --out '" + request.out + "' exists and is not a folder");
  }
  if (!files::list_directory(request.out).empty() && !request.force) {
    throw Error("export --out '" + request.out + "' is not empty; pass --force to replace it");
  }
}

}  // namespace

uint64_t parse_size(const std::string& text, const std::string& flag) {
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) != 0)) {
    ++digits;
  }
  std::string unit = text.substr(digits);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const std::pair<const char*, uint64_t> units[] = {{"", 1},
                                                    {"B", 1},
                                                    {"KB", 1000},
                                                    {"MB", 1000000},
                                                    {"GB", 1000000000},
                                                    {"KIB", 1ull << 10},
                                                    {"MIB", 1ull << 20},
                                                    {"GIB", 1ull << 30}};
  if (digits > 0 && digits <= 15) {
    for (const auto& [name, factor] : units) {
      if (unit == name) return std::stoull(text.substr(0, digits)) * factor;
    }
  }
  throw UsageError(flag + " '" + text + "': expected a size such as 5GB, 500MB, 2GiB or 1000000");
}

HfExportResult export_hf(const HfExportRequest& request) {
  if (request.dtype != "fp32" && request.dtype != "bf16") {
    throw UsageError("export --dtype must be fp32 or bf16, got '" + request.dtype + "'");
  }
  check_out(request);
  const LoadedConfig loaded = load_config(files::join(request.checkpoint, "config.yaml"));
  const Config& config = loaded.config;
  HfExportResult result;
  result.target = resolve_target(request, config, result);
  const safetensors::File ours =
      safetensors::File::open(files::join(request.checkpoint, "model.safetensors"));
  std::vector<std::string> names;
  for (const safetensors::TensorInfo& t : ours.tensors()) names.push_back(t.name);
  const TensorMap map = tensor_map(result.target, config, names);
  const std::string dtype = request.dtype == "bf16" ? "BF16" : "F32";
  const auto tensors = to_hf_tensors(map, ours, dtype);
  result.tensors = tensors.size();

  Staging staging(request.out);
  result.files = write_weights(staging.file(""), tensors, request.max_shard_bytes);
  const SpecialTokens tokens =
      write_tokenizer(find_tokenizer(request, config), config, staging, result.files);
  const std::string torch_dtype = request.dtype == "bf16" ? "bfloat16" : "float32";
  write_text(staging.file("config.json"),
             hf_config(result.target, config, tokens, torch_dtype).dump(2) + "\n");
  write_text(staging.file("generation_config.json"), generation_config(tokens).dump(2) + "\n");
  result.files.push_back("config.json");
  result.files.push_back("generation_config.json");
  if (result.target == HfTarget::remote_code) write_remote_code(staging, result.files);
  staging.commit();
  return result;
}

}  // namespace cca::interop
