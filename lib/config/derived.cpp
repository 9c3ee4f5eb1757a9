#include "config/derived.h"

#include <algorithm>

#include "util/format.h"

namespace cca {

namespace {
constexpr int64_t kBf16Bytes = 2;
constexpr int64_t kFp32Bytes = 4;

// Which parameters each optimizer of optim.kind muon takes, and the state it keeps for them
// (Muon: one fp32 momentum buffer; AdamW: two fp32 moments), as the optimizer groups them.
void describe_muon_groups(const DerivedValues& d, std::vector<std::string>& lines) {
  const int64_t muon = d.counts.hidden_matrix_params;
  const int64_t adamw = d.counts.total_params - muon;
  lines.push_back(format(
      "optimizer   muon  {} parameters, {} of momentum: attention and FFN projection matrices{}",
      human_count(static_cast<double>(muon)), human_bytes(static_cast<double>(muon * kFp32Bytes)),
      d.moe_layers > 0 ? ", expert matrices (each expert on its own)" : ""));
  lines.push_back(format(
      "optimizer   adamw {} parameters, {} of moments: embeddings, norms{}{} and other vectors",
      human_count(static_cast<double>(adamw)),
      human_bytes(static_cast<double>(2 * adamw * kFp32Bytes)), d.moe_layers > 0 ? ", routers" : "",
      attention_params(d.attention).conv > 0 ? ", attention convolutions" : ""));
}

}  // namespace

DerivedValues derive_values(const Config& c, int world_size) {
  DerivedValues d;
  d.attention = attention_geometry(c);
  d.counts = count_model(c);
  d.ffn_hidden = dense_ffn_hidden(c);
  d.expert_hidden = expert_ffn_hidden(c);
  d.n_layers = c.model.n_layers;
  d.moe_layers = moe_layer_count(c);
  d.train_flops_per_token = training_flops_per_token(c);
  d.kv_elements_per_token_per_layer = kv_cache_elements_per_token(d.attention);
  d.decode_state_elements_per_layer = decode_state_elements(d.attention);
  d.kv_bytes_per_token_per_layer = d.kv_elements_per_token_per_layer * kBf16Bytes;
  d.kv_bytes_per_sequence =
      c.model.n_layers * kBf16Bytes * decode_cache_elements(d.attention, c.train.seq_len);
  d.world_size = world_size;
  d.context_parallel = std::max<int64_t>(c.distributed.context_parallel, 1);
  // The ranks of one context-parallel group share their sequences.
  const int64_t replicas =
      world_size % d.context_parallel == 0 ? world_size / d.context_parallel : world_size;
  d.sequences_per_step = c.train.micro_batch_size * c.train.grad_accum * replicas;
  d.tokens_per_step = d.sequences_per_step * c.train.seq_len;
  d.optimizer_kind = c.optim.kind;
  return d;
}

std::vector<std::string> describe_derived(const DerivedValues& d) {
  std::vector<std::string> lines;
  lines.push_back("attention   " + attention_summary(d.attention));
  if (d.moe_layers > 0) {
    lines.push_back(
        format("ffn         {} dense layers (hidden {}), {} MoE layers (expert hidden {})",
               d.n_layers - d.moe_layers, d.ffn_hidden, d.moe_layers, d.expert_hidden));
  } else {
    lines.push_back(format("ffn         SwiGLU hidden {}", d.ffn_hidden));
  }
  lines.push_back(format("parameters  {} total ({}), {} active, {} in embeddings",
                         human_count(static_cast<double>(d.counts.total_params)),
                         d.counts.total_params,
                         human_count(static_cast<double>(d.counts.active_params)),
                         human_count(static_cast<double>(d.counts.embedding_params))));
  lines.push_back(format("attention   {} parameters per layer",
                         human_count(static_cast<double>(d.counts.attention_params_per_layer))));
  lines.push_back(format("flops       {} training FLOPs per token (6N + causal attention)",
                         human_count(d.train_flops_per_token)));
  std::string kv = format("kv cache    {} elements = {} per token per layer (bf16)",
                          d.kv_elements_per_token_per_layer,
                          human_bytes(static_cast<double>(d.kv_bytes_per_token_per_layer)));
  if (d.decode_state_elements_per_layer > 0) {
    kv += format(" + {} constant state elements per layer", d.decode_state_elements_per_layer);
  }
  lines.push_back(kv);
  lines.push_back(format("kv cache    {} per sequence at train.seq_len, all layers",
                         human_bytes(static_cast<double>(d.kv_bytes_per_sequence))));
  const bool split = d.context_parallel > 1 && d.world_size % d.context_parallel == 0;
  const std::string ranks = split ? format("{} data-parallel replicas of {} ranks",
                                           d.world_size / d.context_parallel, d.context_parallel)
                                  : format("world size {}", d.world_size);
  lines.push_back(format("batch       {} sequences = {} tokens per optimizer step ({})",
                         d.sequences_per_step, d.tokens_per_step, ranks));
  if (d.context_parallel > 1 && !split) {
    lines.push_back(format(
        "parallel    distributed.context_parallel = {} needs a multiple of {} ranks (this is {}); "
        "launch with --nproc-per-node or set WORLD_SIZE",
        d.context_parallel, d.context_parallel, d.world_size));
  } else if (split) {
    // What a layer's forward gathers per token is what its KV cache holds per token (the
    // keys and values, CCA's compressed ones, MLA's latent and shared rope key).
    lines.push_back(format(
        "parallel    world {} = {} data-parallel x {} context-parallel; each rank holds {} of "
        "{} tokens per sequence and gathers {} per token per layer in the forward (bf16)",
        d.world_size, d.world_size / d.context_parallel, d.context_parallel,
        d.tokens_per_step / std::max<int64_t>(d.sequences_per_step, 1) / d.context_parallel,
        d.tokens_per_step / std::max<int64_t>(d.sequences_per_step, 1),
        human_bytes(static_cast<double>(d.kv_bytes_per_token_per_layer))));
  }
  if (d.optimizer_kind == "muon") describe_muon_groups(d, lines);
  return lines;
}

}  // namespace cca
