#include "config/validate.h"

#include <algorithm>
#include <initializer_list>

#include "config/attention_variant.h"
#include "config/data_sources.h"
#include "config/geometry.h"
#include "config/variants/common.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca {
namespace {

class Rules : public RuleSink {
 public:
  Rules(const Config& c, const std::map<std::string, Origin>& origins, int world_size,
        std::vector<Diagnostic>& out, std::vector<Diagnostic>* warnings)
      : c_(c), origins_(origins), world_size_(world_size), out_(out), warnings_(warnings) {}

  void check_all() {
    check_attention();
    check_rope_scaling();
    check_moe();
    check_lengths_and_batch();
    check_schedule();
    check_optimizer();
    check_misc();
  }

 private:
  // Reports at the first of `keys` that was set explicitly, else the first key's default.
  void fail(std::initializer_list<const char*> keys, const std::string& message) override {
    out_.push_back({locate(keys), message});
  }
  // The same for a setting that is allowed but probably not meant: the run goes ahead.
  void warn(std::initializer_list<const char*> keys, const std::string& message) {
    if (warnings_ != nullptr) warnings_->push_back({locate(keys), message});
  }
  Origin locate(std::initializer_list<const char*> keys) const {
    for (const char* k : keys) {
      auto it = origins_.find(k);
      if (it != origins_.end()) return it->second;
    }
    return Origin{};
  }

  // Heads, RoPE and the variant's own keys: its descriptor's rules.
  void check_attention() {
    const std::vector<std::string> names = attention_variant_names();
    // An unknown kind was already reported by the schema.
    if (std::find(names.begin(), names.end(), c_.attention.kind) == names.end()) return;
    const AttentionVariant& variant = attention_variant(c_.attention.kind);
    variant.validate(c_, *this);
    if (!variant.uses_head_convs()) variants::reject_head_convs(c_, *this);
  }

  // The scaling keys mean something only together: a factor without a kind (or the reverse) is a
  // half-made edit, and YaRN's ramp is measured in rotations over the original length.
  void check_rope_scaling() {
    const AttentionConfig& a = c_.attention;
    if (a.rope_scaling == "none") {
      if (a.rope_scaling_factor != 1.0 || a.rope_original_max_seq_len != 0) {
        fail({"attention.rope_scaling_factor", "attention.rope_original_max_seq_len",
              "attention.rope_scaling"},
             format("attention.rope_scaling_factor = {} / rope_original_max_seq_len = {} have no "
                    "effect with attention.rope_scaling: none; set rope_scaling to linear, ntk or "
                    "yarn, or remove them",
                    a.rope_scaling_factor, a.rope_original_max_seq_len));
      }
      return;
    }
    if (a.rope_scaling_factor <= 1.0) {
      fail({"attention.rope_scaling_factor", "attention.rope_scaling"},
           format("attention.rope_scaling: {} needs attention.rope_scaling_factor above 1 (the new "
                  "context over the original, e.g. 4 for 4k → 16k), got {}",
                  a.rope_scaling, a.rope_scaling_factor));
    }
    if (a.rope_scaling == "yarn" && a.rope_original_max_seq_len == 0) {
      fail({"attention.rope_original_max_seq_len", "attention.rope_scaling"},
           "attention.rope_scaling: yarn needs attention.rope_original_max_seq_len, the sequence "
           "length the model was trained at (e.g. 4096)");
    }
    const double covered = a.rope_scaling_factor * static_cast<double>(a.rope_original_max_seq_len);
    const int64_t longest = max_sequence_length(c_);
    if (a.rope_original_max_seq_len > 0 && static_cast<double>(longest) > covered) {
      warn({"attention.rope_scaling_factor", "model.max_seq_len", "train.seq_len"},
           format("sequences of {} tokens exceed what attention.rope_scaling_factor {} × "
                  "rope_original_max_seq_len {} = {} covers; positions past it extrapolate",
                  longest, a.rope_scaling_factor, a.rope_original_max_seq_len, covered));
    }
  }

  void check_moe() {
    const MoeConfig& m = c_.moe;
    if (m.n_experts == 0) return;
    if (m.top_k > m.n_experts) {
      fail({"moe.top_k", "moe.n_experts"},
           format("moe.top_k = {} exceeds moe.n_experts = {}", m.top_k, m.n_experts));
    }
    if (m.first_dense_layers >= c_.model.n_layers) {
      fail({"moe.first_dense_layers", "model.n_layers"},
           format("moe.first_dense_layers = {} leaves no MoE layer in model.n_layers = {}; lower "
                  "it, or set moe.n_experts: 0 for a dense model",
                  m.first_dense_layers, c_.model.n_layers));
    }
  }

  void check_lengths_and_batch() {
    const TrainConfig& t = c_.train;
    if (world_size_ < 1) {
      fail({}, format("world size {} is not a positive number of ranks", world_size_));
      return;
    }
    if (c_.model.max_seq_len > 0 && t.seq_len > c_.model.max_seq_len) {
      fail({"train.seq_len", "model.max_seq_len"},
           format("train.seq_len = {} exceeds model.max_seq_len = {}", t.seq_len,
                  c_.model.max_seq_len));
    }
    // Under context parallelism the ranks of one replica share its sequences.
    const int64_t replicas = data_replicas();
    const int64_t product = t.micro_batch_size * t.grad_accum * replicas;
    if (t.global_batch_size > 0 && t.global_batch_size != product) {
      std::string hint;
      const int64_t per_accum = t.micro_batch_size * replicas;
      if (t.global_batch_size % per_accum == 0) {
        hint = format("; grad_accum: {} would match", t.global_batch_size / per_accum);
      }
      fail({"train.global_batch_size", "train.grad_accum", "train.micro_batch_size"},
           format("train.global_batch_size = {} but micro_batch_size {} × grad_accum {} × {} = "
                  "{}{}",
                  t.global_batch_size, t.micro_batch_size, t.grad_accum,
                  replicas == world_size_ ? format("world size {}", world_size_)
                                          : format("data-parallel replicas {}", replicas),
                  product, hint));
    }
  }

  // train.steps = 0 is a run that only evaluates (the trainer takes no step, writes no checkpoint
  // and reports the validation loss of the initial or resumed weights), so it is allowed with a
  // warning. A warmup of the whole run is clipped to it by the schedule (lib/train/schedule.cpp):
  // legal, but it leaves no decay. A learning rate of 0 trains nothing and is refused.
  void check_schedule() {
    const int64_t steps = c_.train.steps;
    const int64_t warmup = c_.schedule.warmup_steps;
    if (c_.optim.lr == 0.0) {
      fail({"optim.lr"},
           "optim.lr = 0 would leave the weights unchanged; allowed: a learning rate above 0 "
           "(up to 10), e.g. 6e-4");
    }
    if (steps == 0) {
      warn({"train.steps"},
           "train.steps = 0: nothing is trained; the run only evaluates the initial (or resumed) "
           "weights on data.val, if set, and writes no checkpoint");
    } else if (warmup >= steps) {
      warn({"schedule.warmup_steps", "train.steps"},
           format("schedule.warmup_steps = {} is not below train.steps = {}: the whole run is "
                  "warmup, the learning rate climbs over all {} steps to optim.lr, reaches it "
                  "only at the last one and never decays; set schedule.warmup_steps below {}",
                  warmup, steps, steps, steps));
    }
  }

  // Muon's buffer sums gradients with weight μ^k, so μ = 1 never forgets (and grows without
  // bound); Muon keys under optim.kind adamw are allowed (a sweep may set them) but do nothing.
  void check_optimizer() {
    const OptimConfig& o = c_.optim;
    if (o.kind != "muon") {
      for (const char* key :
           {"optim.muon.momentum", "optim.muon.nesterov", "optim.muon.ns_steps"}) {
        if (origins_.count(key) != 0) {
          warn({key}, format("{} has no effect with optim.kind {}; it applies to optim.kind muon",
                             key, o.kind));
        }
      }
      return;
    }
    if (o.muon.momentum >= 1.0) {
      fail({"optim.muon.momentum"},
           format("optim.muon.momentum = {} never forgets old gradients; allowed: 0 <= momentum "
                  "< 1, e.g. 0.95",
                  o.muon.momentum));
    }
  }

  void check_misc() {
    if (c_.data.train.empty())
      fail({"data.train"}, "data.train is empty; name the training shards");
    for (const std::string& problem :
         validate_data_sources(c_, static_cast<int>(data_replicas()))) {
      fail({"data.stages", "data.train"}, problem);
    }
    if (c_.run.dir.empty()) fail({"run.dir"}, "run.dir is empty; name the run folder");
    if (c_.distributed.backend == "nccl" && c_.train.device == "cpu") {
      fail({"distributed.backend", "train.device"},
           "distributed.backend nccl needs CUDA, but train.device is cpu; use gloo or auto");
    }
    if (c_.train.cuda_graphs && c_.train.device == "cpu") {
      fail({"train.cuda_graphs", "train.device"},
           "train.cuda_graphs needs CUDA, but train.device is cpu; set train.cuda_graphs: false");
    }
    if (c_.train.cuda_graphs && c_.train.activation_checkpointing) {
      fail({"train.cuda_graphs", "train.activation_checkpointing"},
           "train.cuda_graphs and train.activation_checkpointing cannot be combined yet (the "
           "recomputation runs inside backward under its own autocast state); choose one");
    }
    check_fp8();
    check_context_parallel();
    if (c_.data.reset_positions && !c_.data.document_masking) {
      fail({"data.reset_positions", "data.document_masking"},
           "data.reset_positions restarts RoPE at each document, which needs "
           "data.document_masking: true (documents are only found then)");
    }
    if (c_.data.document_masking && c_.train.cuda_graphs) {
      fail({"data.document_masking", "train.cuda_graphs"},
           "data.document_masking and train.cuda_graphs cannot be combined (the documents' "
           "lengths change every batch, a captured graph cannot); choose one");
    }
  }

  // FP8 products need FP8 tensor cores; whether the GPU has them is checked when the run starts
  // (ops/fp8.h), a CPU run is refused here already.
  void check_fp8() {
    if (c_.train.precision == "fp8" && c_.train.device == "cpu") {
      fail({"train.precision", "train.device"},
           "train.precision: fp8 needs an NVIDIA GPU with FP8 tensor cores (compute capability "
           "8.9 or newer, e.g. H100), but train.device is cpu; allowed on the CPU: auto, fp32, "
           "bf16");
    }
    if (c_.train.precision != "fp8" && origins_.count("train.fp8.scaling") != 0) {
      warn({"train.fp8.scaling"},
           format("train.fp8.scaling has no effect with train.precision: {} (only with fp8)",
                  c_.train.precision));
    }
  }

  // The ranks that read different sequences: world / context_parallel (the world when that does
  // not divide it; check_context_parallel reports that).
  int64_t data_replicas() const {
    const int64_t cp = c_.distributed.context_parallel;
    return cp > 1 && world_size_ % cp == 0 ? world_size_ / cp : world_size_;
  }

  // distributed.context_parallel: the ranks divide into replicas of that many, and every
  // sequence into 2 x that many equal chunks.
  void check_context_parallel() {
    const int64_t cp = c_.distributed.context_parallel;
    if (cp <= 1) return;
    // A single process (world 1: --dry-run, a config check) is told at start (Trainer).
    if (world_size_ > 1 && world_size_ % cp != 0) {
      fail({"distributed.context_parallel"},
           format("distributed.context_parallel = {} does not divide the {} ranks; allowed: a "
                  "divisor of the world size (world = data-parallel replicas x context_parallel)",
                  cp, world_size_));
    }
    if (c_.train.seq_len % (2 * cp) != 0) {
      fail({"distributed.context_parallel", "train.seq_len"},
           format("train.seq_len = {} does not split into 2 x distributed.context_parallel = {} "
                  "equal chunks; allowed: a seq_len that is a multiple of {}",
                  c_.train.seq_len, 2 * cp, 2 * cp));
    }
    if (c_.train.cuda_graphs) {
      fail({"distributed.context_parallel", "train.cuda_graphs"},
           "distributed.context_parallel > 1 cannot run under train.cuda_graphs (the attention "
           "layers exchange keys and values between ranks inside the step); choose one");
    }
    for (size_t i = 0; i < c_.data.stages.size(); ++i) {
      const int64_t len = c_.data.stages[i].seq_len;
      if (len > 0 && len % (2 * cp) != 0) {
        fail({"distributed.context_parallel", "data.stages"},
             format("data.stages[{}].seq_len = {} does not split into 2 x "
                    "distributed.context_parallel = {} equal chunks",
                    i, len, 2 * cp));
      }
    }
  }

  const Config& c_;
  const std::map<std::string, Origin>& origins_;
  int world_size_;
  std::vector<Diagnostic>& out_;
  std::vector<Diagnostic>* warnings_;
};

}  // namespace

void validate_config(const Config& config, const std::map<std::string, Origin>& origins,
                     int world_size, std::vector<Diagnostic>& diagnostics,
                     std::vector<Diagnostic>* warnings) {
  Rules(config, origins, world_size, diagnostics, warnings).check_all();
}

}  // namespace cca
