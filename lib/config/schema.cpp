#include "config/schema.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "config/attention_variant.h"
#include "config/data_sources.h"
#include "util/strings.h"

namespace cca {
namespace {

// The YAML path of a key is the member path inside Config, so the two cannot drift apart.
#define CCA_KEY(member) #member, [](Config & c) -> FieldRef { return &c.member; }

std::function<FieldRef(Config&)> source_list_field(std::string DataConfig::*single,
                                                   std::vector<DataSource> DataConfig::*list) {
  return [single, list](Config& c) -> FieldRef {
    return SourceListRef{&(c.data.*single), &(c.data.*list)};
  };
}

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The keys of the attention section that every variant shares.
std::vector<KeySpec> common_keys_before_variants() {
  return {
      // model
      {CCA_KEY(model.d_model), IntSpec{768, 8, 1 << 16}, "Residual stream width E."},
      {CCA_KEY(model.n_layers), IntSpec{12, 1, 1024}, "Number of decoder blocks."},
      {CCA_KEY(model.vocab_size), IntSpec{50304, 2, 1 << 24},
       "Embedding rows; at least the tokenizer's vocabulary (pad to a multiple of 64 for speed)."},
      {CCA_KEY(model.ffn_hidden), IntSpec{0, 0, 1 << 20},
       "SwiGLU hidden width; 0 = 8/3·E rounded up to model.ffn_multiple_of."},
      {CCA_KEY(model.ffn_multiple_of), IntSpec{256, 1, 1 << 16},
       "Rounding multiple for the automatic SwiGLU width."},
      {CCA_KEY(model.max_seq_len), IntSpec{0, 0, 1 << 22},
       "Longest sequence the model supports (RoPE tables); 0 = train.seq_len."},
      {CCA_KEY(model.norm_eps), FloatSpec{1e-5, 0.0, 1.0}, "RMSNorm epsilon."},
      {CCA_KEY(model.tie_embeddings), BoolSpec{true},
       "Share the token embedding with the LM head."},
      {CCA_KEY(model.init_std), FloatSpec{0.02, 0.0, 1.0}, "Std of the normal weight init."},
      {CCA_KEY(model.depth_scaled_init), BoolSpec{true},
       "Scale output projections' init by 1/sqrt(2·n_layers)."},
      {CCA_KEY(model.z_loss), FloatSpec{0.0, 0.0, 1.0},
       "Coefficient of the LM-head z-loss (mean logsumexp²); 0 = off."},

      // attention
      {CCA_KEY(attention.kind), EnumSpec{"mha", attention_variant_names()}, "Attention variant."},
      {CCA_KEY(attention.n_heads), IntSpec{12, 1, 4096},
       "Query heads (mha/gqa/mla). For cca/ccgqa: head count of the uncompressed MHA reference, "
       "used only to derive head_dim."},
      {CCA_KEY(attention.n_kv_heads), IntSpec{0, 0, 4096},
       "Key/value heads for gqa (1 = MQA); 0 = n_heads. Not used by mla, cca, ccgqa."},
      {CCA_KEY(attention.head_dim), IntSpec{0, 0, 1024},
       "Per-head dimension d; 0 = model.d_model / attention.n_heads."},
      {CCA_KEY(attention.qk_norm), BoolSpec{false}, "RMSNorm on per-head q and k (mha/gqa)."},
      {CCA_KEY(attention.rope_theta), FloatSpec{10000.0, 1.0, 1e12}, "RoPE base θ."},
      {CCA_KEY(attention.rope_fraction), FloatSpec{1.0, 0.0, 1.0},
       "Fraction of each head's dims that get RoPE (rotate-half pairing); CCA uses 0.5."},
      {CCA_KEY(attention.rope_scaling), EnumSpec{"none", {"none", "linear", "ntk", "yarn"}},
       "Context extension of every variant's rotary dims: linear (position interpolation), ntk "
       "(NTK-aware base), yarn (ramp + attention temperature); none = plain RoPE."},
      {CCA_KEY(attention.rope_scaling_factor), FloatSpec{1.0, 1.0, 1024.0},
       "How many times longer than attention.rope_original_max_seq_len the context becomes."},
      {CCA_KEY(attention.rope_original_max_seq_len), IntSpec{0, 0, 1 << 22},
       "Sequence length the model was trained at before scaling (YaRN's ramp needs it); 0 = "
       "unset."},
      {CCA_KEY(attention.core), EnumSpec{"auto", {"auto", "math", "flash", "cudnn", "efficient"}},
       "Core attention kernel on CUDA; auto = fastest measured. CPU always uses exact math."},
  };
}

std::vector<KeySpec> keys_after_variants() {
  return {
      // moe
      {CCA_KEY(moe.n_experts), IntSpec{0, 0, 4096},
       "Routed experts per MoE layer; 0 = dense model."},
      {CCA_KEY(moe.top_k), IntSpec{2, 1, 64}, "Experts chosen per token."},
      {CCA_KEY(moe.expert_hidden), IntSpec{0, 0, 1 << 20},
       "SwiGLU hidden width of each expert; 0 = the dense FFN width."},
      {CCA_KEY(moe.shared_experts), IntSpec{0, 0, 16}, "Always-on shared experts per MoE layer."},
      {CCA_KEY(moe.first_dense_layers), IntSpec{1, 0, 1024},
       "Leading layers that keep a dense FFN."},
      {CCA_KEY(moe.every), IntSpec{1, 1, 1024},
       "After the dense layers, every n-th layer is MoE (1 = all of them)."},
      {CCA_KEY(moe.score), EnumSpec{"softmax", {"softmax", "sigmoid"}}, "Router score function."},
      {CCA_KEY(moe.renormalize), BoolSpec{true},
       "Renormalise the chosen experts' weights to sum 1."},
      {CCA_KEY(moe.aux_loss_coef), FloatSpec{0.01, 0.0, 10.0},
       "Switch load-balancing loss weight."},
      {CCA_KEY(moe.z_loss_coef), FloatSpec{0.001, 0.0, 10.0}, "Router z-loss weight."},
      {CCA_KEY(moe.bias_update_rate), FloatSpec{0.0, 0.0, 1.0},
       "Aux-loss-free balancing: per-step move of the selection bias; 0 = off."},

      // optim
      {CCA_KEY(optim.kind), EnumSpec{"adamw", {"adamw", "muon"}},
       "adamw for every parameter, or muon for the hidden weight matrices (attention and FFN "
       "projections, experts) with AdamW for the rest; docs/training.md."},
      {CCA_KEY(optim.lr), FloatSpec{6e-4, 0.0, 10.0},
       "Peak learning rate (AdamW; with muon the same for both groups, Muon's update being "
       "scaled to AdamW's RMS); 0 is refused (it would train nothing)."},
      {CCA_KEY(optim.beta1), FloatSpec{0.9, 0.0, 1.0}, "AdamW β1."},
      {CCA_KEY(optim.beta2), FloatSpec{0.95, 0.0, 1.0}, "AdamW β2."},
      {CCA_KEY(optim.eps), FloatSpec{1e-8, 0.0, 1.0}, "AdamW ε."},
      {CCA_KEY(optim.weight_decay), FloatSpec{0.1, 0.0, 10.0}, "Decoupled weight decay."},
      {CCA_KEY(optim.grad_clip), FloatSpec{1.0, 0.0, kInf}, "Global-norm clip; 0 = off."},
      {CCA_KEY(optim.decay_norms_and_biases), BoolSpec{false},
       "Apply weight decay to norm weights, biases and temperatures too."},
      {CCA_KEY(optim.decay_embeddings), BoolSpec{false}, "Apply weight decay to embeddings."},
      {CCA_KEY(optim.muon.momentum), FloatSpec{0.95, 0.0, 1.0},
       "Muon momentum μ (buffer = μ·buffer + gradient); below 1."},
      {CCA_KEY(optim.muon.nesterov), BoolSpec{true},
       "Muon orthogonalises gradient + μ·buffer (Nesterov) instead of the buffer."},
      {CCA_KEY(optim.muon.ns_steps), IntSpec{5, 1, 100},
       "Quintic Newton–Schulz iterations per Muon update."},

      // schedule
      {CCA_KEY(schedule.kind), EnumSpec{"cosine", {"cosine", "wsd", "constant"}},
       "LR schedule after warmup: cosine, warmup-stable-decay, or constant."},
      {CCA_KEY(schedule.warmup_steps), IntSpec{100, 0, kMaxInt}, "Linear warmup steps."},
      {CCA_KEY(schedule.min_lr_ratio), FloatSpec{0.1, 0.0, 1.0}, "Final LR as a fraction of peak."},
      {CCA_KEY(schedule.decay_fraction), FloatSpec{0.2, 0.0, 1.0},
       "WSD: fraction of train.steps spent in the final decay."},
      {CCA_KEY(schedule.decay_shape), EnumSpec{"linear", {"linear", "sqrt"}},
       "WSD cool-down shape: linear or 1 - sqrt."},

      // data
      {"data.train", source_list_field(&DataConfig::train, &DataConfig::train_sources),
       SourceListSpec{"data/builtin/train_*.bin", true},
       "Training shards: a file, folder or glob (llm.c format), or a weighted mixture: a list of "
       "{name, path, weight} drawn in proportion to the weights (docs/data.md)."},
      {"data.val", source_list_field(&DataConfig::val, &DataConfig::val_sources),
       SourceListSpec{"data/builtin/val_*.bin", false},
       "Validation shards, or a list of named sets {name, path}: each eval reports "
       "val_loss/<name> and the token-weighted mean."},
      {CCA_KEY(data.stages), StageListSpec{},
       "Curriculum stages: a list of {name, start_step | start_tokens, weights: {<source>: w}, "
       "seq_len, tokens_per_step}; each stage draws data.train's sources at its own weights "
       "from its start on, optionally at its own seq_len (default train.seq_len) with "
       "micro_batch_size x seq_len kept (keep, the default) or the micro-batch kept (scale)."},
      {CCA_KEY(data.on_exhausted), EnumSpec{"wrap", {"wrap", "error"}},
       "When a mixture's source has no unread window left: start it over in a new order (logged) "
       "or stop with an error naming it."},
      {CCA_KEY(data.tokenizer), StringSpec{""},
       "Tokenizer model the shards were made with; empty = take it from the shards' manifest."},
      {CCA_KEY(data.val_tokens), IntSpec{1 << 20, 0, kMaxInt},
       "Validation tokens per evaluation (a fixed prefix of the val set)."},
      {CCA_KEY(data.prefetch), IntSpec{4, 0, 1024}, "Batches the loader thread prepares ahead."},
      {CCA_KEY(data.document_masking), BoolSpec{false},
       "Attention (and CCA's convs and value shift) stay inside each document of a packed "
       "sequence; documents split at the manifest's separator token."},
      {CCA_KEY(data.reset_positions), BoolSpec{false},
       "With data.document_masking: RoPE positions restart at 0 at every document."},

      // train
      {CCA_KEY(train.steps), IntSpec{1000, 0, kMaxInt},
       "Optimizer steps to train; 0 only evaluates the initial or resumed weights (warned)."},
      {CCA_KEY(train.seq_len), IntSpec{1024, 2, 1 << 22}, "Tokens per training sequence."},
      {CCA_KEY(train.micro_batch_size), IntSpec{8, 1, 1 << 20},
       "Sequences per micro-batch per rank."},
      {CCA_KEY(train.grad_accum), IntSpec{1, 1, 1 << 20}, "Micro-batches per optimizer step."},
      {CCA_KEY(train.global_batch_size), IntSpec{0, 0, kMaxInt},
       "Sequences per optimizer step over all ranks; 0 = micro_batch_size·grad_accum·world_size. "
       "When set it must equal that product."},
      {CCA_KEY(train.seed), IntSpec{1337, 0, kMaxInt}, "Seed for init, data order and dropout."},
      {CCA_KEY(train.eval_every), IntSpec{250, 0, kMaxInt}, "Steps between evaluations; 0 = off."},
      {CCA_KEY(train.device), EnumSpec{"auto", {"auto", "cpu", "cuda"}},
       "auto = CUDA when a GPU is visible, else CPU."},
      {CCA_KEY(train.precision), EnumSpec{"auto", {"auto", "fp32", "bf16", "fp8"}},
       "auto = bf16 compute on CUDA (fp32 master weights), fp32 on CPU. fp8 = the attention "
       "projections and FFNs in FP8 (e4m3 forward, e5m2 gradients), the rest bf16; needs a GPU "
       "of compute capability 8.9+ (H100)."},
      {CCA_KEY(train.fp8.scaling), EnumSpec{"tensor", {"tensor", "row"}},
       "With train.precision: fp8, how operands are scaled into FP8's range: one scale per "
       "tensor, or one per row (per token, per output feature; an outlier row costs only its "
       "own precision)."},
      {CCA_KEY(train.nonfinite), EnumSpec{"skip", {"skip", "halt"}},
       "On a non-finite loss or gradient: drop the step (counted) or stop with an error."},
      {CCA_KEY(train.max_consecutive_skips), IntSpec{10, 0, kMaxInt},
       "With train.nonfinite: skip, stop with an error once this many steps in a row were "
       "dropped (the run is not learning: diverged, or non-finite weights); 0 = never."},
      {CCA_KEY(train.activation_checkpointing), BoolSpec{false},
       "Recompute each block's activations in the backward pass: ~1/3 more compute, far less "
       "activation memory (longer sequences or bigger micro-batches fit)."},
      {CCA_KEY(train.cuda_graphs), BoolSpec{false},
       "Record one micro-batch's forward and backward as a CUDA graph after 3 eager ones and "
       "replay it (one process on CUDA, fixed shapes): no per-kernel launch cost on the host. "
       "Pays when the host is the bottleneck (GPT-2-small CCA: 10-18% faster); docs/training.md."},

      // checkpoint
      {CCA_KEY(checkpoint.every), IntSpec{1000, 0, kMaxInt},
       "Steps between checkpoints; 0 = only at the end."},
      {CCA_KEY(checkpoint.keep_last), IntSpec{3, 1, 1 << 20},
       "Newest complete checkpoints kept on disk."},
      {CCA_KEY(checkpoint.keep_every), IntSpec{0, 0, kMaxInt},
       "Also keep every checkpoint whose step is a multiple of this, permanently; 0 = none."},
      {CCA_KEY(checkpoint.max_write_failures), IntSpec{3, 1, 1000},
       "Checkpoint writes that may fail in a row (disk full, I/O error) before the run stops; "
       "each failure is logged, the previous checkpoint stays, and the write is retried at the "
       "next interval."},

      // distributed
      {CCA_KEY(distributed.backend), EnumSpec{"auto", {"auto", "nccl", "gloo"}},
       "Process-group backend; auto = NCCL on CUDA, Gloo on CPU."},
      {CCA_KEY(distributed.bucket_mb), IntSpec{25, 1, 4096},
       "Gradient all-reduce bucket size (MiB)."},
      {CCA_KEY(distributed.timeout_s), FloatSpec{600.0, 1.0, 86400.0},
       "A collective that takes longer fails with an error naming the rank and operation."},
      {CCA_KEY(distributed.verify_every), IntSpec{0, 0, kMaxInt},
       "Steps between cross-rank parameter checksum checks; 0 = off."},
      {CCA_KEY(distributed.zero1), BoolSpec{false}, "Shard optimizer state across ranks (ZeRO-1)."},
      {CCA_KEY(distributed.context_parallel), IntSpec{1, 1, 1024},
       "Ranks that share each sequence (context parallelism): each holds 2 of its 2N chunks "
       "(load-balanced causal split) and attention gathers keys and values from the others; "
       "world = data-parallel replicas x context_parallel. 1 = off."},

      // logging
      {CCA_KEY(logging.level), EnumSpec{"info", {"trace", "debug", "info", "warn", "error", "off"}},
       "Console log level (--log-level overrides)."},
      {CCA_KEY(logging.every), IntSpec{10, 1, kMaxInt}, "Steps between console/metrics lines."},
      {CCA_KEY(logging.per_rank_files), BoolSpec{false},
       "Each rank also writes run.dir/logs/rank<N>.log."},
      {CCA_KEY(logging.progress_bar), BoolSpec{true},
       "Draw a progress bar between console lines when stderr is a terminal."},
      {CCA_KEY(logging.peak_tflops), FloatSpec{0.0, 0.0, 1e7},
       "Device dense bf16 peak in TFLOP/s for MFU; 0 = the built-in table (GPUs only)."},
      {CCA_KEY(logging.tensorboard), BoolSpec{false},
       "Rank 0 also writes the metrics as TensorBoard event files in run.dir/tensorboard/."},

      // init
      {CCA_KEY(init.from), StringSpec{""},
       "Start from these weights (fresh optimizer, step 0): a run folder (its newest checkpoint), "
       "a checkpoint or a Hugging Face folder (docs/interop.md); empty = random init. Ignored "
       "when resuming."},

      // run
      {CCA_KEY(run.dir), StringSpec{"runs/default"},
       "Run folder: resolved config, logs, metrics.jsonl, checkpoints/."},
      {CCA_KEY(run.name), StringSpec{""}, "Human-readable run name; empty = run.dir's last part."},
  };
}

#undef CCA_KEY

// The common keys, then each registered variant's own keys (a key two variants share is listed
// once, where it first appears), then the other sections.
std::vector<KeySpec> build_keys() {
  std::vector<KeySpec> keys = common_keys_before_variants();
  std::set<std::string> seen;
  for (const AttentionVariant* variant : attention_variants()) {
    for (KeySpec& key : variant->keys()) {
      if (seen.insert(key.path).second) keys.push_back(std::move(key));
    }
  }
  for (KeySpec& key : keys_after_variants()) keys.push_back(std::move(key));
  return keys;
}

const std::map<std::string, std::string>& section_helps() {
  static const std::map<std::string, std::string> helps = {
      {"model", "transformer shape, initialisation and LM-head options"},
      {"attention", "attention variant and its geometry"},
      {"moe", "Mixture-of-Experts feed-forward layers"},
      {"optim", "optimizer (AdamW or Muon) and gradient clipping"},
      {"schedule", "learning-rate schedule"},
      {"data", "token shards and tokenizer"},
      {"train", "steps, batch, precision, device"},
      {"checkpoint", "checkpoint cadence and retention"},
      {"distributed", "data-parallel settings"},
      {"logging", "console, files and metrics cadence"},
      {"init", "weights to start from (warm start)"},
      {"run", "the run folder"},
  };
  return helps;
}

std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  // The shortest text that reads back as exactly the same double.
  std::string text;
  for (int precision = 6; precision <= 17; ++precision) {
    std::ostringstream out;
    out << std::setprecision(precision) << v;
    text = out.str();
    if (std::strtod(text.c_str(), nullptr) == v) break;
  }
  // Keep floats recognisable as floats in YAML output.
  if (text.find_first_of(".eE") == std::string::npos && text.find("inf") == std::string::npos) {
    text += ".0";
  }
  return text;
}

std::string yaml_quoted(const std::string& s) {
  const bool plain = std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == '\\' || c == '"';
  });
  if (plain) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }
  // Double quotes keep line breaks and tabs exactly (single quotes would fold them).
  std::string out;
  append_quoted(out, s);
  return out;
}

std::string int_text(int64_t v) {
  return v == kMaxInt ? std::string("max") : std::to_string(v);
}

}  // namespace

std::string yaml_number_text(double value) {
  return number_text(value);
}
std::string yaml_quoted_text(const std::string& text) {
  return yaml_quoted(text);
}

KeySpec setting_key(const std::string& path, TypeSpec type, std::string help) {
  struct Slot {
    VariantSettings& settings;
    const std::string& path;
    FieldRef operator()(const IntSpec&) const { return &settings.slot<int64_t>(path); }
    FieldRef operator()(const FloatSpec&) const { return &settings.slot<double>(path); }
    FieldRef operator()(const BoolSpec&) const { return &settings.slot<bool>(path); }
    FieldRef operator()(const StringSpec&) const { return &settings.slot<std::string>(path); }
    FieldRef operator()(const EnumSpec&) const { return &settings.slot<std::string>(path); }
    FieldRef operator()(const OptionalIntSpec&) const {
      return &settings.slot<std::optional<int64_t>>(path);
    }
    FieldRef operator()(const SourceListSpec&) const {
      throw std::logic_error(path + ": a variant setting cannot be a source list");
    }
    FieldRef operator()(const StageListSpec&) const {
      throw std::logic_error(path + ": a variant setting cannot be a stage list");
    }
  };
  auto field = [path, type](Config& c) -> FieldRef {
    return std::visit(Slot{c.attention.settings, path}, type);
  };
  return KeySpec{path, std::move(field), std::move(type), std::move(help)};
}

const std::vector<KeySpec>& config_keys() {
  static const std::vector<KeySpec> keys = build_keys();
  return keys;
}

const KeySpec* find_key(const std::string& path) {
  static const std::map<std::string, const KeySpec*> index = [] {
    std::map<std::string, const KeySpec*> m;
    for (const KeySpec& k : config_keys()) m[k.path] = &k;
    return m;
  }();
  auto it = index.find(path);
  return it == index.end() ? nullptr : it->second;
}

bool is_section(const std::string& path) {
  if (path.empty()) return false;
  const std::string prefix = path + ".";
  for (const KeySpec& k : config_keys()) {
    if (k.path.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

std::string section_help(const std::string& section) {
  auto it = section_helps().find(section);
  return it == section_helps().end() ? std::string() : it->second;
}

std::string KeySpec::type_name() const {
  struct Visitor {
    std::string operator()(const IntSpec&) const { return "int"; }
    std::string operator()(const FloatSpec&) const { return "float"; }
    std::string operator()(const BoolSpec&) const { return "bool"; }
    std::string operator()(const StringSpec&) const { return "string"; }
    std::string operator()(const EnumSpec&) const { return "enum"; }
    std::string operator()(const OptionalIntSpec&) const { return "int or null"; }
    std::string operator()(const SourceListSpec&) const { return "path or list"; }
    std::string operator()(const StageListSpec&) const { return "list"; }
  };
  return std::visit(Visitor{}, type);
}

std::string KeySpec::default_text() const {
  struct Visitor {
    std::string operator()(const IntSpec& s) const { return std::to_string(s.fallback); }
    std::string operator()(const FloatSpec& s) const { return number_text(s.fallback); }
    std::string operator()(const BoolSpec& s) const { return s.fallback ? "true" : "false"; }
    std::string operator()(const StringSpec& s) const { return yaml_quoted(s.fallback); }
    std::string operator()(const EnumSpec& s) const { return s.fallback; }
    std::string operator()(const OptionalIntSpec&) const { return "null"; }
    std::string operator()(const SourceListSpec& s) const { return yaml_quoted(s.fallback); }
    std::string operator()(const StageListSpec&) const { return "[]"; }
  };
  return std::visit(Visitor{}, type);
}

std::string KeySpec::allowed_text() const {
  struct Visitor {
    std::string operator()(const IntSpec& s) const {
      return int_text(s.min) + " .. " + int_text(s.max);
    }
    std::string operator()(const FloatSpec& s) const {
      return number_text(s.min) + " .. " + number_text(s.max);
    }
    std::string operator()(const BoolSpec&) const { return "true | false"; }
    std::string operator()(const StringSpec&) const { return ""; }
    std::string operator()(const EnumSpec& s) const {
      std::string out;
      for (const std::string& c : s.choices) out += (out.empty() ? "" : " | ") + c;
      return out;
    }
    std::string operator()(const OptionalIntSpec& s) const {
      return "null | " + int_text(s.min) + " .. " + int_text(s.max);
    }
    std::string operator()(const SourceListSpec& s) const {
      return s.weighted ? "path | [{name, path, weight > 0}, ...]" : "path | [{name, path}, ...]";
    }
    std::string operator()(const StageListSpec&) const {
      return "[{name, start_step | start_tokens, weights: {<source>: w >= 0}, seq_len >= 1, "
             "tokens_per_step: keep | scale}, ...]";
    }
  };
  return std::visit(Visitor{}, type);
}

std::string value_text(const KeySpec& key, Config& config) {
  struct Visitor {
    std::string operator()(int64_t* v) const { return std::to_string(*v); }
    std::string operator()(double* v) const { return number_text(*v); }
    std::string operator()(bool* v) const { return *v ? "true" : "false"; }
    std::string operator()(std::string* v) const { return yaml_quoted(*v); }
    std::string operator()(std::optional<int64_t>* v) const {
      return v->has_value() ? std::to_string(**v) : "null";
    }
    std::string operator()(const SourceListRef& v) const {
      return render_source_list(*v.single, *v.list,
                                weighted ? SourceListKind::train : SourceListKind::validation);
    }
    std::string operator()(std::vector<DataStage>* v) const { return render_stage_list(*v); }
    bool weighted;
  };
  // Enums print bare, like they are written.
  if (std::holds_alternative<EnumSpec>(key.type)) return *std::get<std::string*>(key.field(config));
  const auto* sources = std::get_if<SourceListSpec>(&key.type);
  return std::visit(Visitor{sources != nullptr && sources->weighted}, key.field(config));
}

Config default_config() {
  Config config;
  for (const KeySpec& key : config_keys()) {
    FieldRef field = key.field(config);
    std::visit(
        [&](const auto& spec) {
          using S = std::decay_t<decltype(spec)>;
          if constexpr (std::is_same_v<S, IntSpec>) *std::get<int64_t*>(field) = spec.fallback;
          if constexpr (std::is_same_v<S, FloatSpec>) *std::get<double*>(field) = spec.fallback;
          if constexpr (std::is_same_v<S, BoolSpec>) *std::get<bool*>(field) = spec.fallback;
          if constexpr (std::is_same_v<S, StringSpec>)
            *std::get<std::string*>(field) = spec.fallback;
          if constexpr (std::is_same_v<S, EnumSpec>) *std::get<std::string*>(field) = spec.fallback;
          if constexpr (std::is_same_v<S, OptionalIntSpec>) {
            *std::get<std::optional<int64_t>*>(field) = std::nullopt;
          }
          if constexpr (std::is_same_v<S, SourceListSpec>) {
            *std::get<SourceListRef>(field).single = spec.fallback;
            std::get<SourceListRef>(field).list->clear();
          }
          if constexpr (std::is_same_v<S, StageListSpec>) {
            std::get<std::vector<DataStage>*>(field)->clear();
          }
        },
        key.type);
  }
  return config;
}

}  // namespace cca
