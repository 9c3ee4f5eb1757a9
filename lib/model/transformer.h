// The Llama-style decoder: token embedding, pre-norm blocks (RMSNorm -> attention -> residual,
// RMSNorm -> SwiGLU or MoE -> residual), final norm, LM head (tied or untied).
// Single-device code: data parallelism wraps it without edits.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "attention/attention.h"
#include "config/config.h"
#include "model/ffn.h"
#include "moe/moe.h"
#include "ops/norm.h"
#include "ops/recompute.h"

namespace cca {

AttentionOptions attention_options(const Config& config);

// The residual stream between blocks as residual + pending: the last block's output is not yet
// added, so the next norm adds and normalises in one kernel (RMSNormImpl::forward_add).
struct ResidualStream {
  at::Tensor residual;  // fp32 under autocast
  at::Tensor pending;   // undefined when nothing is pending
  at::Tensor materialized() const { return pending.defined() ? residual + pending : residual; }
};

class BlockImpl : public torch::nn::Module, private RecomputableLayer {
 public:
  BlockImpl(const Config& config, int64_t layer_index);
  // Adds this block's MoE losses (if any) into `losses`. The output's pending part is the
  // FFN/MoE output.
  // `documents` (packed training sequences, no cache) keep attention inside each document.
  ResidualStream forward(const ResidualStream& x, AttentionCache* cache, MoeLosses& losses,
                         const Documents* documents = nullptr);
  // The same for a materialized stream, without a cache, with the block's activations
  // recomputed in backward (activation checkpointing, ops/recompute.h).
  at::Tensor recomputed_forward(const at::Tensor& x, MoeLosses& losses,
                                const Documents* documents = nullptr);

  std::shared_ptr<RMSNormImpl> attention_norm, ffn_norm;
  std::shared_ptr<Attention> attention;
  std::shared_ptr<SwiGluImpl> ffn;  // null in MoE layers
  std::shared_ptr<MoeImpl> moe;     // null in dense layers

 private:
  // The block's output, then (MoE blocks) its load-balance and router-z losses.
  std::vector<at::Tensor> recomputable_forward(const at::Tensor& x) override;
  // The documents of the last recomputed_forward, kept for its recomputation in backward.
  std::optional<Documents> recompute_documents_;
};

// Decode state of the whole model: one attention cache per layer.
struct ModelCache {
  std::vector<std::unique_ptr<AttentionCache>> layers;
  int64_t length() const { return layers.empty() ? 0 : layers.front()->length; }
  int64_t bytes() const;
};

struct LossBreakdown {
  at::Tensor total;             // what backward() is called on
  at::Tensor cross_entropy;     // mean over valid targets
  at::Tensor lm_z_loss;         // unweighted mean logsumexp²
  at::Tensor moe_load_balance;  // unweighted, summed over MoE layers (0 when dense)
  at::Tensor moe_router_z;      // unweighted, summed over MoE layers
  at::Tensor moe_weighted;      // the MoE terms as weighted into total (0 when dense)
  int64_t valid_tokens = 0;
};

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const Config& config);

  // tokens [B, S] (int64) -> logits [B, S, vocab]. With a cache, tokens continue it. With
  // `documents` (ops/documents.h; no cache) every row is a pack of documents and each token sees
  // only its own document, so each document's logits equal those of the document alone.
  at::Tensor forward(const at::Tensor& tokens, ModelCache* cache = nullptr,
                     const Documents* documents = nullptr);
  // Next-token loss for targets [B, S]; targets equal to -1 are ignored. Includes the weighted LM
  // z-loss and MoE losses of this forward pass. The head and its cross-entropy run in chunks
  // (ops/cross_entropy.h); pass valid_tokens when known so the count needs no device sync.
  LossBreakdown loss(const at::Tensor& tokens, const at::Tensor& targets, int64_t valid_tokens = -1,
                     const Documents* documents = nullptr);
  // The same with 1 / (valid targets) given as a device scalar, as a captured CUDA graph needs
  // (no host value may differ between its replays); valid_tokens in the result is -1.
  LossBreakdown loss(const at::Tensor& tokens, const at::Tensor& targets,
                     const at::Tensor& inverse_valid);
  ModelCache new_cache() const;
  std::vector<std::shared_ptr<MoeImpl>> moe_layers() const;
  // Training forwards recompute every block in backward instead of keeping its activations
  // (the trainer sets it from train.activation_checkpointing). Off by default.
  void set_activation_checkpointing(bool enabled) { activation_checkpointing_ = enabled; }
  bool activation_checkpointing() const { return activation_checkpointing_; }
  const Config& config() const { return config_; }

  at::Tensor embedding;  // [vocab, E]
  at::Tensor lm_head;    // [vocab, E]; undefined when tied
  std::vector<std::shared_ptr<BlockImpl>> blocks;
  std::shared_ptr<RMSNormImpl> final_norm;

 private:
  at::Tensor hidden_states(const at::Tensor& tokens, ModelCache* cache, MoeLosses& losses,
                           const Documents* documents);
  LossBreakdown loss_with(const at::Tensor& tokens, const at::Tensor& targets,
                          const std::function<at::Tensor(const at::Tensor&)>& per_valid_token,
                          const Documents* documents);
  Config config_;
  bool activation_checkpointing_ = false;
};

}  // namespace cca
