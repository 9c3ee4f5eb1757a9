// Multi-head attention and grouped-query attention (n_kv_heads < n_heads; 1 = MQA), with optional
// per-head RMSNorm on q and k.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <vector>

#include "attention/attention.h"
#include "attention/kv_cache.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/stacked_linear.h"

namespace cca {
namespace {

struct MhaCache : AttentionCache {
  KeyValueCache kv;
  int64_t bytes() const override { return kv.bytes(); }
};

class MhaAttention : public Attention {
 public:
  MhaAttention(const AttentionGeometry& g, const AttentionOptions& options)
      : geometry_(g), options_(options), rotary_(g.rope_dim, options.rope_theta) {
    const int64_t E = g.model_dim;
    const int64_t q_width = g.n_q_heads * g.head_dim;
    const int64_t kv_width = g.n_kv_heads * g.head_dim;
    q_proj_ = register_module("q_proj", linear(E, q_width, options.init_std));
    k_proj_ = register_module("k_proj", linear(E, kv_width, options.init_std));
    v_proj_ = register_module("v_proj", linear(E, kv_width, options.init_std));
    o_proj_ = register_module("o_proj", linear(q_width, E, options.output_init_std));
    if (g.qk_norm) {
      q_norm_ =
          register_module("q_norm", std::make_shared<RMSNormImpl>(g.head_dim, options.norm_eps));
      k_norm_ =
          register_module("k_norm", std::make_shared<RMSNormImpl>(g.head_dim, options.norm_eps));
    }
  }

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache) override {
    const int64_t B = x.size(0), S = x.size(1), d = geometry_.head_dim;
    // Without a cache the three projections run as one stacked GEMM; generation keeps them
    // apart, since stacking copies the weights on every call.
    const std::vector<at::Tensor> qkv =
        cache == nullptr ? stacked_linear(x, {q_proj_->weight, k_proj_->weight, v_proj_->weight})
                         : std::vector<at::Tensor>{q_proj_->forward(x), k_proj_->forward(x),
                                                   v_proj_->forward(x)};
    at::Tensor q = qkv[0].view({B, S, geometry_.n_q_heads, d});
    at::Tensor k = qkv[1].view({B, S, geometry_.n_kv_heads, d});
    // The attention keeps v for backward; as a view it would keep the whole stacked output
    // (q and k too, 3.6 GiB at 1B) alive until then. RoPE already gives q and k their own.
    at::Tensor v =
        (cache == nullptr ? qkv[2].contiguous() : qkv[2]).view({B, S, geometry_.n_kv_heads, d});
    if (q_norm_) {
      q = q_norm_->forward(q);
      k = k_norm_->forward(k);
    }
    const int64_t offset = cache ? cache->length : 0;
    q = rotary_.apply(q, offset).transpose(1, 2);
    k = rotary_.apply(k, offset).transpose(1, 2);
    v = v.transpose(1, 2);
    if (cache != nullptr) {
      auto& state = static_cast<MhaCache&>(*cache);
      state.kv.append(k, v);
      state.length += S;
      k = state.kv.keys.filled();
      v = state.kv.values.filled();
    }
    const at::Tensor o =
        core_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(d)), options_.core);
    return o_proj_->forward(o.transpose(1, 2).reshape({B, S, geometry_.n_q_heads * d}));
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<MhaCache>();
  }

 private:
  static torch::nn::Linear linear(int64_t in, int64_t out, double std) {
    torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
    init_normal(layer->weight, std);
    return layer;
  }

  AttentionGeometry geometry_;
  AttentionOptions options_;
  Rotary rotary_;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, o_proj_{nullptr};
  std::shared_ptr<RMSNormImpl> q_norm_, k_norm_;
};

}  // namespace

std::shared_ptr<Attention> make_mha_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<MhaAttention>(g, options);
}

}  // namespace cca
