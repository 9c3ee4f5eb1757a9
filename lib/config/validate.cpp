#include "config/validate.h"

#include <cmath>
#include <initializer_list>

#include "config/geometry.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca {
namespace {

class Rules {
 public:
  Rules(const Config& c, const std::map<std::string, Origin>& origins, int world_size,
        std::vector<Diagnostic>& out)
      : c_(c), origins_(origins), world_size_(world_size), out_(out) {}

  void check_all() {
    check_heads();
    check_rope();
    check_cca();
    check_mla();
    check_moe();
    check_lengths_and_batch();
    check_misc();
  }

 private:
  // Reports at the first of `keys` that was set explicitly, else the first key's default.
  void fail(std::initializer_list<const char*> keys, const std::string& message) {
    for (const char* k : keys) {
      auto it = origins_.find(k);
      if (it != origins_.end()) {
        out_.push_back({it->second, message});
        return;
      }
    }
    out_.push_back({Origin{}, message});
  }

  void check_heads() {
    const AttentionConfig& a = c_.attention;
    const int64_t E = c_.model.d_model;
    if (a.kind != "mla" && a.head_dim == 0 && E % a.n_heads != 0) {
      fail({"attention.n_heads", "model.d_model"},
           format("model.d_model = {} is not divisible by attention.n_heads = {}; choose n_heads "
                  "from {} or set attention.head_dim",
                  E, a.n_heads, divisors_text(E)));
    }
    if (a.kind == "mha" && a.n_kv_heads != 0 && a.n_kv_heads != a.n_heads) {
      fail({"attention.n_kv_heads", "attention.kind"},
           format("attention.n_kv_heads = {} with kind mha, which has one KV head per query head "
                  "({}); use kind: gqa, or n_kv_heads: 0",
                  a.n_kv_heads, a.n_heads));
    }
    if (a.qk_norm && a.kind != "mha" && a.kind != "gqa") {
      fail({"attention.qk_norm"}, format("attention.qk_norm applies to mha and gqa; {} normalises "
                                         "its own latents (set qk_norm: false)",
                                         a.kind));
    }
    if (a.kind == "gqa" && a.n_kv_heads == 0) {
      fail({"attention.kind"}, format("kind gqa needs attention.n_kv_heads; valid values divide "
                                      "attention.n_heads = {}: {}",
                                      a.n_heads, divisors_text(a.n_heads)));
    }
    if (a.kind == "gqa" && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads != 0) {
      fail({"attention.n_kv_heads", "attention.n_heads"},
           format("attention.n_kv_heads = {} does not divide attention.n_heads = {}; valid "
                  "values: {}",
                  a.n_kv_heads, a.n_heads, divisors_text(a.n_heads)));
    }
  }

  void check_rope() {
    const AttentionConfig& a = c_.attention;
    if (a.kind == "mla") return;
    if (a.head_dim == 0 && c_.model.d_model % a.n_heads != 0) return;  // reported by check_heads
    const AttentionGeometry g = attention_geometry(c_);
    const double rotary = a.rope_fraction * static_cast<double>(g.head_dim);
    const bool whole = std::fabs(rotary - std::round(rotary)) < 1e-9;
    if (g.head_dim > 0 && (!whole || static_cast<int64_t>(std::llround(rotary)) % 2 != 0)) {
      fail({"attention.rope_fraction", "attention.head_dim"},
           format("attention.rope_fraction = {} gives {} rotary dims of head_dim {}; rotate-half "
                  "RoPE needs an even whole number (e.g. rope_fraction 0.5 or 1.0)",
                  a.rope_fraction, rotary, g.head_dim));
    }
  }

  void check_cca() {
    const AttentionConfig& a = c_.attention;
    if (a.kind != "cca" && a.kind != "ccgqa") return;
    const int64_t E = c_.model.d_model;
    const AttentionGeometry g = attention_geometry(c_);
    const int64_t d = g.head_dim;
    if (d <= 0) return;  // reported by check_heads
    if (d % 2 != 0) {
      fail({"attention.head_dim", "attention.n_heads"},
           format("{} needs an even head_dim (value shift and RoPE split heads in halves); got {}",
                  a.kind, d));
    }
    const int64_t c1 = a.cca.q_compression;
    const int64_t c2 = a.cca.kv_compression > 0 ? a.cca.kv_compression : c1;
    if (a.kind == "cca" && c2 != c1) {
      fail({"attention.cca.kv_compression", "attention.kind"},
           format(
               "kind cca compresses q and kv alike, but attention.cca.kv_compression = {} differs "
               "from q_compression = {}; use kind: ccgqa for different factors",
               c2, c1));
      return;
    }
    const std::string valid = E % d == 0 ? divisors_text(E / d) : std::string("none");
    if (E % (c1 * d) != 0) {
      fail({"attention.cca.q_compression", "attention.head_dim", "model.d_model"},
           format("attention.cca.q_compression = {} does not split model.d_model = {} into whole "
                  "heads of head_dim {}; valid compression factors: {}",
                  c1, E, d, valid));
      return;
    }
    if (c2 < c1 || c2 % c1 != 0) {
      fail({"attention.cca.kv_compression", "attention.cca.q_compression"},
           format("attention.cca.kv_compression = {} must be a multiple of q_compression = {} "
                  "(each kv head serves a whole group of query heads)",
                  c2, c1));
      return;
    }
    if (E % (c2 * d) != 0) {
      fail({"attention.cca.kv_compression", "attention.head_dim", "model.d_model"},
           format("attention.cca.kv_compression = {} does not split model.d_model = {} into whole "
                  "heads of head_dim {}; valid compression factors: {}",
                  c2, E, d, valid));
    }
  }

  void check_mla() {
    const MlaConfig& m = c_.attention.mla;
    if (c_.attention.kind != "mla") return;
    const int64_t qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
    if (c_.attention.core == "flash" && m.v_head_dim != qk_dim) {
      fail({"attention.core", "attention.mla.v_head_dim"},
           format("attention.core flash needs equal q/k and v head dims, but mla has {} + {} = {} "
                  "vs v_head_dim {}; use core auto or cudnn",
                  m.qk_nope_head_dim, m.qk_rope_head_dim, qk_dim, m.v_head_dim));
    }
    if (m.qk_rope_head_dim % 2 != 0) {
      fail({"attention.mla.qk_rope_head_dim"},
           format("attention.mla.qk_rope_head_dim = {} must be even (rotate-half RoPE)",
                  m.qk_rope_head_dim));
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
    const int64_t product = t.micro_batch_size * t.grad_accum * world_size_;
    if (t.global_batch_size > 0 && t.global_batch_size != product) {
      std::string hint;
      const int64_t per_accum = t.micro_batch_size * world_size_;
      if (t.global_batch_size % per_accum == 0) {
        hint = format("; grad_accum: {} would match", t.global_batch_size / per_accum);
      }
      fail({"train.global_batch_size", "train.grad_accum", "train.micro_batch_size"},
           format("train.global_batch_size = {} but micro_batch_size {} × grad_accum {} × world "
                  "size {} = {}{}",
                  t.global_batch_size, t.micro_batch_size, t.grad_accum, world_size_, product,
                  hint));
    }
    if (t.steps > 0 && c_.schedule.warmup_steps > t.steps) {
      fail({"schedule.warmup_steps", "train.steps"},
           format("schedule.warmup_steps = {} exceeds train.steps = {}", c_.schedule.warmup_steps,
                  t.steps));
    }
  }

  void check_misc() {
    if (c_.data.train.empty())
      fail({"data.train"}, "data.train is empty; name the training shards");
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
  }

  const Config& c_;
  const std::map<std::string, Origin>& origins_;
  int world_size_;
  std::vector<Diagnostic>& out_;
};

}  // namespace

void validate_config(const Config& config, const std::map<std::string, Origin>& origins,
                     int world_size, std::vector<Diagnostic>& diagnostics) {
  Rules(config, origins, world_size, diagnostics).check_all();
}

}  // namespace cca
