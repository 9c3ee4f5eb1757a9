// Compressed Convolutional Attention (kind cca, n_q = n_k) and its grouped form (kind ccgqa),
// per ../shared/docs/cca-spec.md §2-§4: attention inside a compressed latent whose queries and
// keys are mixed by a causal depthwise + per-head conv stack, coupled by a q-k mean, L2-normalised
// with a learned key temperature, and whose values are half current-token, half previous-token.
// The prologue between the projections and the attention core lives in cca_reference.cpp.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cca_fused.h"
#include "attention/cca_reference.h"
#include "attention/qk_convs.h"
#include "ops/autocast.h"
#include "ops/fp8_linear.h"
#include "ops/rope.h"
#include "ops/stacked_linear.h"
#include "util/error.h"

namespace cca {
namespace {

void check_geometry(const CcaGeometry& g) {
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
  if (g.temperature != "exp" && g.temperature != "raw") {
    throw Error("cca: unknown temperature form '" + g.temperature + "' (exp | raw)");
  }
}

torch::nn::Linear linear(int64_t in, int64_t out, double std) {
  torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
  init_normal(layer->weight, std);
  return layer;
}

class CcaAttention : public Attention {
 public:
  CcaAttention(const CcaGeometry& g, const AttentionOptions& options)
      : geometry_(g),
        options_(options),
        rotary_(g.rope_dim, options.rope_theta, options.rope_scaling) {
    check_geometry(g);
    const int64_t E = g.model_dim, width_q = g.q_latent_width(), width_k = g.kv_latent_width();
    linear_q_ = register_module("linear_q", linear(E, width_q, options.init_std));
    linear_k_ = register_module("linear_k", linear(E, width_k, options.init_std));
    if (g.value_shift) {
      val_proj1_ = register_module("val_proj1", linear(E, width_k / 2, options.init_std));
      val_proj2_ = register_module("val_proj2", linear(E, width_k / 2, options.init_std));
    } else {
      val_proj_ = register_module("val_proj", linear(E, width_k, options.init_std));
    }
    convs_ = QkConvModules(*this, g.convs, g.conv_channels(), g.n_q_heads + g.n_kv_heads,
                           g.conv_kernel_0, g.conv_kernel_1);
    // Both forms start with τ = 1, i.e. logits √d·cos (spec §9.1); raw zeros would give
    // uniform attention and no q/k gradients at step 0.
    const bool exp_form = g.temperature == "exp";
    temp_ =
        register_parameter("temp", exp_form ? at::zeros({g.n_kv_heads}) : at::ones({g.n_kv_heads}));
    o_proj_ = register_module("o_proj", linear(width_q, E, options.output_init_std));
  }

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache,
                     const Documents* documents) override {
    const int64_t S = x.size(1);
    if (at::GradMode::is_enabled()) decode_weights_ = {};  // training: drop generation's copy
    check_documents_without_cache(documents, cache);
    if (documents != nullptr) return forward_documents(x, *documents);
    CcaCache* state = nullptr;
    if (cache != nullptr) {
      state = dynamic_cast<CcaCache*>(cache);
      if (state == nullptr) throw Error("cca: forward was given another variant's cache");
    }
    if (state != nullptr && fused_step_possible(x)) {
      // Generation: the stacked projection and the kernels' weight layouts are made once per
      // weight update, and the prologue writes into the cache directly.
      const DecodeWeights& w = decode_weights(x);
      const CcaProjections p = projections_from(
          at::split_with_sizes(at::linear(x, w.projection), projection_widths(), -1));
      if (cca_fused_supported(geometry_, p.q0)) {
        const at::Tensor q =
            cca_step_fused(geometry_, rope_frequencies(x.device()), w.prepared, p, *state);
        return attend_and_project(q, state->kv.keys.filled(), state->kv.values.filled());
      }
    }
    const CcaProjections p = projections_from(stacked_linear(x, projection_weights()));
    // The fused kernels replace the reference prologue on CUDA (attention.cca.kernels = auto)
    // for fresh sequences; a cached one without autograd took cca_step_fused above, and under
    // autograd it keeps the reference path (no fused backward for a continued sequence).
    const bool fused =
        geometry_.fused_kernels && state == nullptr && cca_fused_supported(geometry_, p.q0);
    const at::Tensor history = state ? state->conv : at::Tensor();
    const at::Tensor shift = state ? state->shift : at::Tensor();
    const int64_t offset = state ? state->length : 0;
    const CcaPrologueOutput pro = fused
                                      ? cca_prologue_fused(geometry_, rope_frequencies(x.device()),
                                                           conv_weights(), key_multiplier(), p)
                                      : cca_prologue(geometry_, rotary_, conv_weights(),
                                                     key_multiplier(), p, history, shift, offset);
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
    return attend_and_project(pro.q, k, v);
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<CcaCache>();
  }

 private:
  // Packed documents: the prologue restarts the convs and the value shift at every document
  // (fused kernels under the same conditions as a fresh sequence, else the reference ops), then
  // the document-aware core. Context parallelism comes here too (documents.shard).
  at::Tensor forward_documents(const at::Tensor& x, const Documents& documents) {
    const CcaProjections p = projections_from(stacked_linear(x, projection_weights()));
    // The fused kernels take no halo, so context parallelism runs the reference prologue.
    const bool fused =
        geometry_.fused_kernels && !documents.shard && cca_fused_supported(geometry_, p.q0);
    const CcaPrologueOutput pro =
        fused ? cca_prologue_fused(geometry_, rope_frequencies(x.device()), conv_weights(),
                                   key_multiplier(), p, &documents)
              : cca_prologue(geometry_, rotary_, conv_weights(), key_multiplier(), p, {}, {}, 0,
                             &documents);
    return attend_and_project(pro.q, pro.k.transpose(1, 2), pro.v.transpose(1, 2), &documents);
  }

  // Generation's copy of the weights in the kernels' layouts, valid while `stamp` (each
  // parameter's storage and version counter, which every in-place update bumps) is unchanged.
  struct DecodeWeights {
    std::vector<std::pair<const void*, int64_t>> stamp;
    at::Tensor projection;  // the stacked projections, in the activations' dtype
    CcaPreparedWeights prepared;
  };

  std::vector<at::Tensor> projection_weights() const {
    if (geometry_.value_shift)
      return {linear_q_->weight, linear_k_->weight, val_proj1_->weight, val_proj2_->weight};
    return {linear_q_->weight, linear_k_->weight, val_proj_->weight};
  }

  std::vector<int64_t> projection_widths() const {
    std::vector<int64_t> widths;
    for (const at::Tensor& w : projection_weights()) widths.push_back(w.size(0));
    return widths;
  }

  // The q, k and value projections come from one stacked GEMM (ops/stacked_linear.h).
  CcaProjections projections_from(const std::vector<at::Tensor>& parts) const {
    CcaProjections p{parts[0], parts[1], parts[2], {}};
    if (geometry_.value_shift) p.v_delayed = parts[3];
    return p;
  }

  bool fused_step_possible(const at::Tensor& x) const {
    return geometry_.fused_kernels && x.is_cuda() && !at::GradMode::is_enabled();
  }

  const DecodeWeights& decode_weights(const at::Tensor& x) {
    const at::ScalarType dtype = autocast_dtype(x).value_or(x.scalar_type());
    std::vector<std::pair<const void*, int64_t>> stamp;
    for (const at::Tensor& t : parameters()) stamp.emplace_back(t.data_ptr(), t._version());
    stamp.emplace_back(nullptr, static_cast<int64_t>(dtype));
    if (stamp != decode_weights_.stamp) {
      decode_weights_.projection = at::cat(projection_weights(), 0).to(dtype);
      decode_weights_.prepared =
          cca_prepare_weights(geometry_, conv_weights(), key_multiplier(), dtype);
      decode_weights_.stamp = std::move(stamp);
    }
    return decode_weights_;
  }

  // q [B, S, n_q, d] against the keys and values [B, n_k, L, d], then the output projection.
  at::Tensor attend_and_project(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const Documents* documents = nullptr) {
    const int64_t B = q.size(0), S = q.size(1);
    const double scale = attention_scale(geometry_.head_dim, options_);
    const at::Tensor o =
        documents != nullptr
            ? document_attention(q.transpose(1, 2), k, v, scale, *documents, 0, options_.core)
            : core_attention(q.transpose(1, 2), k, v, scale, options_.core);
    return hidden_linear(o.transpose(1, 2).reshape({B, S, geometry_.q_latent_width()}),
                         o_proj_->weight);
  }

  CcaConvWeights conv_weights() const { return convs_.weights(); }

  // RoPE's inverse frequencies on the layer's device, made once for the fused kernels.
  const at::Tensor& rope_frequencies(const at::Device& device) {
    if (!inv_freq_.defined() || inv_freq_.device() != device)
      inv_freq_ = cca_rope_inverse_frequencies(geometry_.rope_dim, options_.rope_theta,
                                               options_.rope_scaling, device);
    return inv_freq_;
  }

  at::Tensor key_multiplier() const { return geometry_.temperature == "exp" ? temp_.exp() : temp_; }

  std::vector<std::pair<std::string, at::Tensor>> logged_values() const override {
    return {{"cca_temp", key_multiplier().detach()}};
  }

  CcaGeometry geometry_;
  AttentionOptions options_;
  Rotary rotary_;
  torch::nn::Linear linear_q_{nullptr}, linear_k_{nullptr}, o_proj_{nullptr};
  torch::nn::Linear val_proj1_{nullptr}, val_proj2_{nullptr}, val_proj_{nullptr};
  QkConvModules convs_;
  at::Tensor temp_;
  at::Tensor inv_freq_;  // not a parameter or buffer: derived from the geometry
  DecodeWeights decode_weights_;
};

}  // namespace

std::shared_ptr<Attention> make_cca_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<CcaAttention>(variants::cca_geometry(g), options);
}

std::shared_ptr<Attention> make_ccgqa_attention(const AttentionGeometry& g,
                                                const AttentionOptions& options) {
  return make_cca_attention(g, options);
}

}  // namespace cca
