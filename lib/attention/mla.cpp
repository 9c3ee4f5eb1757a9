// Multi-head latent attention (DeepSeek-V2/V3, spec §8). Keys and values are decompressed from one
// normalised latent c_kv per token, and all heads share one roped key k_rope. Training attends over
// the decompressed per-head keys and values; with a cache, the layer runs the absorbed ("MQA mode")
// path, which stores only [c_kv ‖ k_rope] per token and never decompresses the cached tokens.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include <cmath>

#include "attention/attention.h"
#include "attention/kv_cache.h"
#include "config/variants/mla.h"
#include "ops/fp8_linear.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace cca {
namespace {

struct MlaCache : AttentionCache {
  // [B, L, r_kv + rope]: the normalised latent c_kv followed by the roped shared key. One tensor,
  // so the MQA keys are the cache itself and the values a view of its first r_kv columns.
  SequenceBuffer latent{1};
  int64_t bytes() const override { return latent.bytes(); }
};

class MlaAttention : public Attention {
 public:
  MlaAttention(const variants::MlaGeometry& g, const AttentionOptions& options)
      : heads_(g.n_q_heads),
        nope_(g.qk_nope_dim),
        rope_(g.rope_dim),
        v_dim_(g.v_head_dim),
        kv_rank_(g.kv_lora_rank),
        core_(options.core),
        scale_(attention_scale(g.qk_nope_dim + g.rope_dim, options)),
        rotary_(g.rope_dim, options.rope_theta, options.rope_scaling) {
    const int64_t E = g.model_dim;
    const int64_t q_width = heads_ * (nope_ + rope_);
    const double std = options.init_std;
    if (g.q_lora_rank > 0) {
      q_a_proj_ = register_module("q_a_proj", linear(E, g.q_lora_rank, std));
      q_a_norm_ = register_module("q_a_norm",
                                  std::make_shared<RMSNormImpl>(g.q_lora_rank, options.norm_eps));
      q_b_proj_ = register_module("q_b_proj", linear(g.q_lora_rank, q_width, std));
    } else {
      q_proj_ = register_module("q_proj", linear(E, q_width, std));
    }
    // Joint down-projection ("kv_a_proj_with_mqa"): the latent and the shared rope key.
    kv_a_proj_ = register_module("kv_a_proj", linear(E, kv_rank_ + rope_, std));
    kv_a_norm_ =
        register_module("kv_a_norm", std::make_shared<RMSNormImpl>(kv_rank_, options.norm_eps));
    // Rows grouped per head as [k_nope (nope) ‖ v (v_dim)], as in the DeepSeek checkpoints.
    kv_b_proj_ = register_module("kv_b_proj", linear(kv_rank_, heads_ * (nope_ + v_dim_), std));
    o_proj_ = register_module("o_proj", linear(heads_ * v_dim_, E, options.output_init_std));
  }

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache,
                     const Documents* documents) override {
    check_documents_without_cache(documents, cache);
    const int64_t offset = cache ? cache->length : 0;
    at::Tensor q_nope, q_rope, c_kv, k_rope;
    queries(x, offset, documents, q_nope, q_rope);
    latent(x, offset, documents, c_kv, k_rope);
    // A prefill into an empty cache attends like training (per-head keys, any fused core) and
    // only stores the latent; the absorbed form would materialise every score at head dim
    // r_kv + rope, which no fused kernel takes. Later chunks and decode steps use the latent.
    at::Tensor o;
    if (cache != nullptr && cache->length > 0) {
      o = absorbed(q_nope, q_rope, c_kv, k_rope, *cache);
    } else {
      o = decompressed(q_nope, q_rope, c_kv, k_rope, documents);
      if (cache != nullptr) remember(c_kv, k_rope, *cache);
    }
    // o: [B, H, S, v_dim] -> [B, S, H·v_dim]
    return hidden_linear(o.transpose(1, 2).reshape({x.size(0), x.size(1), heads_ * v_dim_}),
                         o_proj_->weight);
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<MlaCache>();
  }

 private:
  static torch::nn::Linear linear(int64_t in, int64_t out, double std) {
    torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
    init_normal(layer->weight, std);
    return layer;
  }

  // q_nope [B, H, S, nope] and the roped q_rope [B, H, S, rope] of tokens at offset, offset+1, ...
  void queries(const at::Tensor& x, int64_t offset, const Documents* documents, at::Tensor& q_nope,
               at::Tensor& q_rope) {
    const at::Tensor q_flat =
        q_proj_ ? hidden_linear(x, q_proj_->weight)
                : hidden_linear(q_a_norm_->forward(hidden_linear(x, q_a_proj_->weight)),
                                q_b_proj_->weight);
    const at::Tensor q = q_flat.view({x.size(0), x.size(1), heads_, nope_ + rope_});
    q_nope = q.narrow(-1, 0, nope_).transpose(1, 2);
    q_rope = rotate(rotary_, q.narrow(-1, nope_, rope_), offset, documents).transpose(1, 2);
  }

  // The normalised latent c_kv [B, S, r_kv] and the roped shared key k_rope [B, S, rope].
  void latent(const at::Tensor& x, int64_t offset, const Documents* documents, at::Tensor& c_kv,
              at::Tensor& k_rope) {
    const at::Tensor joint = hidden_linear(x, kv_a_proj_->weight);
    c_kv = kv_a_norm_->forward(joint.narrow(-1, 0, kv_rank_));
    // Rotary wants [B, S, heads, D]: the shared key is a single head.
    k_rope = rotate(rotary_, joint.narrow(-1, kv_rank_, rope_).unsqueeze(2), offset, documents)
                 .squeeze(2);
  }

  // Training: per-head keys [k_nope_h ‖ k_rope] and values v_h decompressed from c_kv. Under
  // context parallelism the compressed [c_kv ‖ k_rope] of the whole sequence is gathered (r_kv +
  // rope values per token instead of H·(nope + rope + v)) and decompressed on every rank.
  at::Tensor decompressed(const at::Tensor& q_nope, const at::Tensor& q_rope,
                          const at::Tensor& local_c_kv, const at::Tensor& local_k_rope,
                          const Documents* documents) {
    const bool sharded = documents != nullptr && documents->shard;
    at::Tensor c_kv = local_c_kv, k_rope = local_k_rope;
    if (sharded) {
      const at::Tensor joint = at::cat({c_kv, k_rope}, -1).unsqueeze(1);  // one "head"
      const at::Tensor all = gather_sequence(joint, *documents).squeeze(1);
      c_kv = all.narrow(-1, 0, kv_rank_);
      k_rope = all.narrow(-1, kv_rank_, rope_);
    }
    const int64_t B = c_kv.size(0), S = c_kv.size(1);
    const at::Tensor kv =
        hidden_linear(c_kv, kv_b_proj_->weight).view({B, S, heads_, nope_ + v_dim_});
    const at::Tensor k_nope = kv.narrow(-1, 0, nope_);
    const at::Tensor v = kv.narrow(-1, nope_, v_dim_).transpose(1, 2);
    const at::Tensor k_shared = k_rope.unsqueeze(2).expand({B, S, heads_, rope_});
    const at::Tensor k = at::cat({k_nope, k_shared}, -1).transpose(1, 2);
    const at::Tensor q = at::cat({q_nope, q_rope}, -1);
    if (sharded) return sharded_attention(q, k, v, scale_, *documents);
    if (documents != nullptr) return document_attention(q, k, v, scale_, *documents, 0, core_);
    return core_attention(q, k, v, scale_, core_);
  }

  // Appends the tokens' [c_kv ‖ k_rope] to the cache.
  static const MlaCache& remember(const at::Tensor& c_kv, const at::Tensor& k_rope,
                                  AttentionCache& cache) {
    auto& state = static_cast<MlaCache&>(cache);
    state.latent.append(at::cat({c_kv, k_rope}, -1));
    state.length += c_kv.size(1);
    return state;
  }

  // Cached: q_nope_h·W_UK,h moves the nope scores into the latent (q_nope·k_nope =
  // q_nope·W_UK·c_kv), so the layer attends as MQA over [c_kv ‖ k_rope] with the latent as values,
  // and W_UV,h maps the attended latent back to head h's values. Scores and outputs equal the
  // training path's.
  at::Tensor absorbed(const at::Tensor& q_nope, const at::Tensor& q_rope, const at::Tensor& c_kv,
                      const at::Tensor& k_rope, AttentionCache& cache) {
    const MlaCache& state = remember(c_kv, k_rope, cache);

    // kv_b_proj weight [H·(nope + v), r_kv] -> per head W_UK [H, nope, r_kv], W_UV [H, v, r_kv].
    const at::Tensor w = kv_b_proj_->weight.view({heads_, nope_ + v_dim_, kv_rank_});
    const at::Tensor w_uk = w.narrow(1, 0, nope_);
    const at::Tensor w_uv = w.narrow(1, nope_, v_dim_);
    const at::Tensor q = at::cat({at::matmul(q_nope, w_uk), q_rope}, -1);  // [B, H, S, r_kv+rope]
    const at::Tensor keys = state.latent.filled().unsqueeze(1);            // [B, 1, L, r_kv+rope]
    const at::Tensor values = keys.narrow(-1, 0, kv_rank_);                // [B, 1, L, r_kv]
    // No fused SDPA kernel takes these shapes (Dv != D, one kv head for dense inputs, head dim
    // r_kv + rope > 256), so a forced attention.core backend would fail here: let LibTorch pick.
    // A single token needs no mask, and its heads are just rows against the one shared latent.
    const at::Tensor o_latent =
        q.size(2) == 1 ? single_query_attention(q, keys, values)
                       : core_attention(q, keys, values, scale_, CoreBackend::automatic);
    return at::matmul(o_latent, w_uv.transpose(1, 2));  // [B, H, S, v]
  }

  // q [B, H, 1, D] against keys [B, 1, L, D] and values [B, 1, L, Dv] as two batched GEMMs over
  // B: the math core would broadcast the shared latent to every head (H·L·D per sequence, each
  // step: gigabytes at a 16k context). Softmax in float32, as the core does.
  at::Tensor single_query_attention(const at::Tensor& q, const at::Tensor& keys,
                                    const at::Tensor& values) const {
    const int64_t B = q.size(0), H = q.size(1);
    const at::Tensor rows = q.reshape({B, H, q.size(3)});
    const at::ScalarType compute = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor scores = at::bmm(rows, keys.squeeze(1).transpose(1, 2)).to(compute);
    const at::Tensor probs = at::softmax(scores * scale_, -1).to(values.scalar_type());
    return at::bmm(probs, values.squeeze(1)).view({B, H, 1, values.size(3)});
  }

  int64_t heads_, nope_, rope_, v_dim_, kv_rank_;
  CoreBackend core_;
  double scale_;
  Rotary rotary_;
  torch::nn::Linear q_a_proj_{nullptr}, q_b_proj_{nullptr}, q_proj_{nullptr};
  torch::nn::Linear kv_a_proj_{nullptr}, kv_b_proj_{nullptr}, o_proj_{nullptr};
  std::shared_ptr<RMSNormImpl> q_a_norm_, kv_a_norm_;
};

}  // namespace

std::shared_ptr<Attention> make_mla_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<MlaAttention>(variants::mla_geometry(g), options);
}

}  // namespace cca
