#include "model/transformer.h"

#include <torch/nn/modules/container/modulelist.h>

#include <cmath>
#include <functional>
#include <string>

#include "config/geometry.h"
#include "ops/cross_entropy.h"
#include "util/error.h"

namespace cca {
namespace {

double output_init_std(const Config& c) {
  if (!c.model.depth_scaled_init) return c.model.init_std;
  return c.model.init_std / std::sqrt(2.0 * static_cast<double>(c.model.n_layers));
}

void add_loss(at::Tensor& sum, const at::Tensor& term) {
  if (!term.defined()) return;
  sum = sum.defined() ? sum + term : term;
}

}  // namespace

AttentionOptions attention_options(const Config& c) {
  AttentionOptions o;
  o.rope_theta = c.attention.rope_theta;
  o.rope_scaling = RopeScaling::parse(c.attention.rope_scaling, c.attention.rope_scaling_factor,
                                      c.attention.rope_original_max_seq_len);
  o.core = parse_core_backend(c.attention.core);
  o.norm_eps = c.model.norm_eps;
  o.init_std = c.model.init_std;
  o.output_init_std = output_init_std(c);
  return o;
}

BlockImpl::BlockImpl(const Config& c, int64_t layer_index) {
  const int64_t E = c.model.d_model;
  attention_norm =
      register_module("attention_norm", std::make_shared<RMSNormImpl>(E, c.model.norm_eps));
  attention =
      register_module("attention", make_attention(attention_geometry(c), attention_options(c)));
  ffn_norm = register_module("ffn_norm", std::make_shared<RMSNormImpl>(E, c.model.norm_eps));
  if (is_moe_layer(c, layer_index)) {
    moe = register_module("moe", std::make_shared<MoeImpl>(E, c.moe, expert_ffn_hidden(c),
                                                           c.model.init_std, output_init_std(c)));
  } else {
    ffn = register_module("ffn", std::make_shared<SwiGluImpl>(
                                     E, dense_ffn_hidden(c), c.model.init_std, output_init_std(c)));
  }
}

ResidualStream BlockImpl::forward(const ResidualStream& x, AttentionCache* cache, MoeLosses& losses,
                                  const Documents* documents) {
  const NormedSum before_attention = attention_norm->forward_add(x.residual, x.pending);
  const at::Tensor attention_out = attention->forward(before_attention.normed, cache, documents);
  const NormedSum before_ffn = ffn_norm->forward_add(before_attention.sum, attention_out);
  if (ffn) return {before_ffn.sum, ffn->forward(before_ffn.normed)};
  MoeLosses layer;
  // Under context parallelism the router's statistics are the whole sequences' (moe/moe.h).
  at::Tensor moe_out =
      moe->forward(before_ffn.normed, layer, documents ? documents->shard.get() : nullptr);
  add_loss(losses.load_balance, layer.load_balance);
  add_loss(losses.router_z, layer.router_z);
  return {before_ffn.sum, moe_out};
}

at::Tensor BlockImpl::recomputed_forward(const at::Tensor& x, MoeLosses& losses,
                                         const Documents* documents) {
  recompute_documents_.reset();
  if (documents != nullptr) recompute_documents_ = *documents;
  const std::vector<at::Tensor> out = recomputed(*this, x);
  if (moe) {
    add_loss(losses.load_balance, out[1]);
    add_loss(losses.router_z, out[2]);
  }
  return out[0];
}

std::vector<at::Tensor> BlockImpl::recomputable_forward(const at::Tensor& x) {
  MoeLosses losses;
  const Documents* documents = recompute_documents_ ? &*recompute_documents_ : nullptr;
  std::vector<at::Tensor> out{
      forward({x, at::Tensor()}, nullptr, losses, documents).materialized()};
  if (moe) {
    out.push_back(losses.load_balance);
    out.push_back(losses.router_z);
  }
  return out;
}

int64_t ModelCache::bytes() const {
  int64_t total = 0;
  for (const auto& layer : layers) total += layer->bytes();
  return total;
}

TransformerImpl::TransformerImpl(const Config& config) : config_(config) {
  const int64_t E = config.model.d_model, V = config.model.vocab_size;
  embedding = register_parameter("embedding", at::empty({V, E}));
  init_normal(embedding, config.model.init_std);
  // A ModuleList names parameters "blocks.<i>.…"; `blocks` keeps typed access.
  auto block_list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.model.n_layers; ++i) {
    blocks.push_back(std::make_shared<BlockImpl>(config, i));
    block_list->push_back(blocks.back());
  }
  final_norm =
      register_module("final_norm", std::make_shared<RMSNormImpl>(E, config.model.norm_eps));
  if (!config.model.tie_embeddings) {
    lm_head = register_parameter("lm_head", at::empty({V, E}));
    init_normal(lm_head, config.model.init_std);
  }
}

at::Tensor TransformerImpl::hidden_states(const at::Tensor& tokens, ModelCache* cache,
                                          MoeLosses& losses, const Documents* documents) {
  TORCH_CHECK(tokens.dim() == 2, "tokens must be [batch, seq]");
  if (cache != nullptr && !cache->layers.empty())
    check_documents_without_cache(documents, cache->layers.front().get());
  if (cache != nullptr && cache->layers.size() != blocks.size()) {
    throw Error("model cache has " + std::to_string(cache->layers.size()) + " layers, model has " +
                std::to_string(blocks.size()));
  }
  ResidualStream stream{at::embedding(embedding, tokens), at::Tensor()};
  const bool recompute =
      activation_checkpointing_ && cache == nullptr && is_training() && at::GradMode::is_enabled();
  for (size_t i = 0; i < blocks.size(); ++i) {
    // A recomputed block keeps one saved input, so its stream is handed over added.
    stream = recompute ? ResidualStream{blocks[i]->recomputed_forward(stream.materialized(), losses,
                                                                      documents),
                                        at::Tensor()}
                       : blocks[i]->forward(stream, cache ? cache->layers[i].get() : nullptr,
                                            losses, documents);
  }
  return final_norm->forward_add(stream.residual, stream.pending).normed;
}

at::Tensor TransformerImpl::forward(const at::Tensor& tokens, ModelCache* cache,
                                    const Documents* documents) {
  MoeLosses losses;
  const at::Tensor h = hidden_states(tokens, cache, losses, documents);
  return at::linear(h, lm_head.defined() ? lm_head : embedding);
}

LossBreakdown TransformerImpl::loss(const at::Tensor& tokens, const at::Tensor& targets,
                                    int64_t valid_tokens, const Documents* documents) {
  // Counting on the device would stall the host until the forward pass so far has run.
  if (valid_tokens < 0) valid_tokens = targets.ne(-1).sum().item<int64_t>();
  const double denominator = static_cast<double>(std::max<int64_t>(valid_tokens, 1));
  LossBreakdown out = loss_with(
      tokens, targets, [denominator](const at::Tensor& sum) { return sum / denominator; },
      documents);
  out.valid_tokens = valid_tokens;
  return out;
}

LossBreakdown TransformerImpl::loss(const at::Tensor& tokens, const at::Tensor& targets,
                                    const at::Tensor& inverse_valid) {
  LossBreakdown out = loss_with(
      tokens, targets, [&inverse_valid](const at::Tensor& sum) { return sum * inverse_valid; },
      nullptr);
  out.valid_tokens = -1;
  return out;
}

LossBreakdown TransformerImpl::loss_with(
    const at::Tensor& tokens, const at::Tensor& targets,
    const std::function<at::Tensor(const at::Tensor&)>& per_valid_token,
    const Documents* documents) {
  MoeLosses moe_losses;
  const at::Tensor h = hidden_states(tokens, nullptr, moe_losses, documents);
  const at::Tensor flat_targets = targets.reshape({-1});
  LossBreakdown out;
  const CrossEntropySums sums =
      linear_cross_entropy(h.reshape({-1, h.size(-1)}), lm_head.defined() ? lm_head : embedding,
                           flat_targets, config_.model.z_loss);
  out.cross_entropy = per_valid_token(sums.cross_entropy);
  out.lm_z_loss = per_valid_token(sums.z);
  out.total = per_valid_token(sums.objective);
  const at::Tensor zero = at::zeros({}, out.total.options());
  out.moe_load_balance = moe_losses.load_balance.defined() ? moe_losses.load_balance : zero;
  out.moe_router_z = moe_losses.router_z.defined() ? moe_losses.router_z : zero;
  out.moe_weighted = zero;
  if (moe_losses.load_balance.defined()) {
    const at::Tensor balance = config_.moe.aux_loss_coef * out.moe_load_balance;
    const at::Tensor router_z = config_.moe.z_loss_coef * out.moe_router_z;
    out.moe_weighted = balance + router_z;
    out.total = out.total + balance + router_z;
  }
  return out;
}

ModelCache TransformerImpl::new_cache() const {
  ModelCache cache;
  for (const auto& block : blocks) cache.layers.push_back(block->attention->new_cache());
  return cache;
}

std::vector<std::shared_ptr<MoeImpl>> TransformerImpl::moe_layers() const {
  std::vector<std::shared_ptr<MoeImpl>> layers;
  for (const auto& block : blocks) {
    if (block->moe) layers.push_back(block->moe);
  }
  return layers;
}

}  // namespace cca
