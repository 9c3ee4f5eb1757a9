// Compressed Convolutional Attention (kind cca, n_q = n_k) and its grouped form (kind ccgqa),
// per ../shared/docs/cca-spec.md §2-§4: attention inside a compressed latent whose queries and
// keys are mixed by a causal depthwise + per-head conv stack, coupled by a q-k mean, L2-normalised
// with a learned key temperature, and whose values are half current-token, half previous-token.
// The prologue between the projections and the attention core lives in cca_reference.cpp.
#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cca_fused.h"
#include "attention/cca_reference.h"
#include "ops/rope.h"
#include "util/error.h"

namespace cca {
namespace {

void check_geometry(const AttentionGeometry& g, const AttentionOptions& options) {
  if (g.n_q_heads <= 0 || g.n_kv_heads <= 0 || g.head_dim <= 0 || g.n_q_heads % g.n_kv_heads != 0) {
    throw Error("cca: need n_q_heads a positive multiple of n_kv_heads and head_dim > 0, got " +
                std::to_string(g.n_q_heads) + "/" + std::to_string(g.n_kv_heads) + "/" +
                std::to_string(g.head_dim));
  }
  if (g.convs < 0 || g.convs > 2 || (g.convs >= 1 && g.conv_kernel_0 < 1) ||
      (g.convs == 2 && g.conv_kernel_1 < 1)) {
    throw Error("cca: convs must be 0, 1 or 2 with kernels >= 1");
  }
  if (g.value_shift && g.kv_latent_width() % 2 != 0) {
    throw Error("cca: value shift splits the kv latent in halves; its width must be even");
  }
  if (options.cca_temperature != "exp" && options.cca_temperature != "raw") {
    throw Error("cca: unknown temperature form '" + options.cca_temperature + "' (exp | raw)");
  }
}

torch::nn::Linear linear(int64_t in, int64_t out, double std) {
  torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
  init_normal(layer->weight, std);
  return layer;
}

// The convs start as the identity (current-token tap 1, or I_d per head; other taps and biases
// 0), so at step 0 the stack passes q⁰, k⁰ through and CCA starts as normalised attention on
// the projections plus the q-k mean. The zero taps still get gradients (they multiply earlier
// tokens), so the convs learn from there. PyTorch's default uniform init would instead shrink
// the grouped conv's output by ~√3 and add random bias offsets to every query and key.
torch::nn::Conv1d depthwise_conv(int64_t channels, int64_t kernel) {
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(channels, channels, kernel).groups(channels));
  at::NoGradGuard no_grad;
  conv->weight.zero_();
  conv->weight.select(2, kernel - 1).fill_(1.0);
  conv->bias.zero_();
  return conv;
}

torch::nn::Conv1d grouped_conv(int64_t channels, int64_t groups, int64_t kernel) {
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(channels, channels, kernel).groups(groups));
  const int64_t d = channels / groups;
  at::NoGradGuard no_grad;
  conv->weight.zero_();
  conv->weight.select(2, kernel - 1).view({groups, d, d}).copy_(at::eye(d).expand({groups, d, d}));
  conv->bias.zero_();
  return conv;
}

class CcaAttention : public Attention {
 public:
  CcaAttention(const AttentionGeometry& g, const AttentionOptions& options)
      : geometry_(g), options_(options), rotary_(g.rope_dim, options.rope_theta) {
    check_geometry(g, options);
    const int64_t E = g.model_dim, width_q = g.q_latent_width(), width_k = g.kv_latent_width();
    linear_q_ = register_module("linear_q", linear(E, width_q, options.init_std));
    linear_k_ = register_module("linear_k", linear(E, width_k, options.init_std));
    if (g.value_shift) {
      val_proj1_ = register_module("val_proj1", linear(E, width_k / 2, options.init_std));
      val_proj2_ = register_module("val_proj2", linear(E, width_k / 2, options.init_std));
    } else {
      val_proj_ = register_module("val_proj", linear(E, width_k, options.init_std));
    }
    if (g.convs >= 1) {
      const int64_t M = g.conv_channels();
      conv_qk_ = register_module("conv_qk", torch::nn::ModuleList());
      depthwise_ = depthwise_conv(M, g.conv_kernel_0);
      conv_qk_->push_back(depthwise_);
      if (g.convs == 2) {
        grouped_ = grouped_conv(M, g.n_q_heads + g.n_kv_heads, g.conv_kernel_1);
        conv_qk_->push_back(grouped_);
      }
    }
    // Both forms start with τ = 1, i.e. logits √d·cos (spec §9.1); raw zeros would give
    // uniform attention and no q/k gradients at step 0.
    const bool exp_form = options.cca_temperature == "exp";
    temp_ =
        register_parameter("temp", exp_form ? at::zeros({g.n_kv_heads}) : at::ones({g.n_kv_heads}));
    o_proj_ = register_module("o_proj", linear(width_q, E, options.output_init_std));
  }

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache) override {
    const int64_t B = x.size(0), S = x.size(1), d = geometry_.head_dim;
    CcaCache* state = nullptr;
    if (cache != nullptr) {
      state = dynamic_cast<CcaCache*>(cache);
      if (state == nullptr) throw Error("cca: forward was given another variant's cache");
    }
    const CcaProjections p = project(x);
    // The fused kernels replace the reference prologue on CUDA (attention.cca.kernels = auto);
    // a continued sequence under autograd keeps the reference path (no fused backward there).
    const bool fused = options_.cca_fused_kernels && cca_fused_supported(geometry_, p.q0) &&
                       (state == nullptr || !at::GradMode::is_enabled());
    const at::Tensor history = state ? state->conv : at::Tensor();
    const at::Tensor shift = state ? state->shift : at::Tensor();
    const int64_t offset = state ? state->length : 0;
    const CcaPrologueOutput pro =
        fused ? cca_prologue_fused(geometry_, rope_frequencies(x.device()), conv_weights(),
                                   key_multiplier(), p, history, shift, offset, state != nullptr)
              : cca_prologue(geometry_, rotary_, conv_weights(), key_multiplier(), p, history,
                             shift, offset);
    const at::Tensor q = pro.q.transpose(1, 2);
    at::Tensor k = pro.k.transpose(1, 2);
    at::Tensor v = pro.v.transpose(1, 2);
    if (state != nullptr) {
      state->kv.append(k, v);
      state->conv = pro.conv_state;
      state->shift = pro.shift_state;
      state->length += S;
      k = state->kv.keys.filled();
      v = state->kv.values.filled();
    }
    const at::Tensor o =
        core_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(d)), options_.core);
    return o_proj_->forward(o.transpose(1, 2).reshape({B, S, geometry_.q_latent_width()}));
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<CcaCache>();
  }

 private:
  // The q, k and value projections as one matrix product (one wide GEMM runs faster than four
  // narrow ones), handed on as column views of its output.
  CcaProjections project(const at::Tensor& x) const {
    std::vector<at::Tensor> weights = {linear_q_->weight, linear_k_->weight};
    if (geometry_.value_shift) {
      weights.push_back(val_proj1_->weight);
      weights.push_back(val_proj2_->weight);
    } else {
      weights.push_back(val_proj_->weight);
    }
    const at::Tensor all = at::linear(x, at::cat(weights, 0));
    std::vector<at::Tensor> parts;
    int64_t start = 0;
    for (const at::Tensor& w : weights) {
      parts.push_back(all.narrow(-1, start, w.size(0)));
      start += w.size(0);
    }
    CcaProjections p{parts[0], parts[1], parts[2], {}};
    if (geometry_.value_shift) p.v_delayed = parts[3];
    return p;
  }

  CcaConvWeights conv_weights() const {
    CcaConvWeights w;
    if (depthwise_) w = {depthwise_->weight, depthwise_->bias, {}, {}};
    if (grouped_) {
      w.grouped_weight = grouped_->weight;
      w.grouped_bias = grouped_->bias;
    }
    return w;
  }

  // RoPE's inverse frequencies on the layer's device, made once for the fused kernels.
  const at::Tensor& rope_frequencies(const at::Device& device) {
    if (!inv_freq_.defined() || inv_freq_.device() != device)
      inv_freq_ = cca_rope_inverse_frequencies(geometry_.rope_dim, options_.rope_theta, device);
    return inv_freq_;
  }

  at::Tensor key_multiplier() const {
    return options_.cca_temperature == "exp" ? temp_.exp() : temp_;
  }

  AttentionGeometry geometry_;
  AttentionOptions options_;
  Rotary rotary_;
  torch::nn::Linear linear_q_{nullptr}, linear_k_{nullptr}, o_proj_{nullptr};
  torch::nn::Linear val_proj1_{nullptr}, val_proj2_{nullptr}, val_proj_{nullptr};
  torch::nn::ModuleList conv_qk_{nullptr};
  torch::nn::Conv1d depthwise_{nullptr}, grouped_{nullptr};
  at::Tensor temp_;
  at::Tensor inv_freq_;  // not a parameter or buffer: derived from the geometry
};

}  // namespace

std::shared_ptr<Attention> make_cca_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<CcaAttention>(g, options);
}

}  // namespace cca
