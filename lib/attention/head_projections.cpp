#include "attention/head_projections.h"

#include <vector>

#include "ops/fp8_linear.h"
#include "ops/stacked_linear.h"

namespace cca {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out, double std) {
  torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
  init_normal(layer->weight, std);
  return layer;
}

}  // namespace

HeadProjections::HeadProjections(torch::nn::Module& owner, const AttentionGeometry& g,
                                 const AttentionOptions& options)
    : n_q_heads_(g.n_q_heads),
      n_kv_heads_(g.n_kv_heads),
      head_dim_(g.head_dim),
      rotary_(g.rope_dim, options.rope_theta, options.rope_scaling) {
  const int64_t E = g.model_dim;
  const int64_t q_width = g.n_q_heads * g.head_dim;
  const int64_t kv_width = g.n_kv_heads * g.head_dim;
  q_proj_ = owner.register_module("q_proj", linear(E, q_width, options.init_std));
  k_proj_ = owner.register_module("k_proj", linear(E, kv_width, options.init_std));
  v_proj_ = owner.register_module("v_proj", linear(E, kv_width, options.init_std));
  o_proj_ = owner.register_module("o_proj", linear(q_width, E, options.output_init_std));
  if (g.qk_norm) {
    q_norm_ = owner.register_module("q_norm",
                                    std::make_shared<RMSNormImpl>(g.head_dim, options.norm_eps));
    k_norm_ = owner.register_module("k_norm",
                                    std::make_shared<RMSNormImpl>(g.head_dim, options.norm_eps));
  }
}

RawHeads HeadProjections::raw(const at::Tensor& x, bool generating) {
  const int64_t B = x.size(0), S = x.size(1), d = head_dim_;
  const std::vector<at::Tensor> qkv =
      generating ? std::vector<at::Tensor>{hidden_linear(x, q_proj_->weight),
                                           hidden_linear(x, k_proj_->weight),
                                           hidden_linear(x, v_proj_->weight)}
                 : stacked_linear(x, {q_proj_->weight, k_proj_->weight, v_proj_->weight});
  // The attention keeps v for backward; as a view it would keep the whole stacked output
  // (q and k too, 3.6 GiB at 1B) alive until then. RoPE already gives q and k their own.
  at::Tensor v = (generating ? qkv[2] : qkv[2].contiguous()).view({B, S, n_kv_heads_, d});
  return {qkv[0].view({B, S, n_q_heads_, d}), qkv[1].view({B, S, n_kv_heads_, d}), v};
}

HeadTensors HeadProjections::finish(const RawHeads& heads, int64_t offset,
                                    const Documents* documents) {
  at::Tensor q = heads.q, k = heads.k;
  if (q_norm_) {
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  return {rotate(rotary_, q, offset, documents).transpose(1, 2),
          rotate(rotary_, k, offset, documents).transpose(1, 2), heads.v.transpose(1, 2)};
}

at::Tensor HeadProjections::output(const at::Tensor& o) {
  const int64_t B = o.size(0), S = o.size(2);
  return hidden_linear(o.transpose(1, 2).reshape({B, S, n_q_heads_ * head_dim_}), o_proj_->weight);
}

}  // namespace cca
