// Multi-head attention and grouped-query attention (n_kv_heads < n_heads; 1 = MQA), with optional
// per-head RMSNorm on q and k, and optionally CCA's causal convs on q‖k and its value shift
// (attention.mha.*: the control of issue 20's component ablation). The convs and the shift run on
// the raw projections, before QK-norm and RoPE, where CCA runs them (cca_reference.cpp), with
// CCA's functions and CCA's identity initialisation.
#include <ATen/ATen.h>

#include <cmath>

#include "attention/attention.h"
#include "attention/cca_reference.h"
#include "attention/head_projections.h"
#include "attention/kv_cache.h"
#include "attention/qk_convs.h"
#include "config/variants/mha.h"

namespace cca {
namespace {

using variants::HeadConvSettings;

int64_t mha_state_bytes(const at::Tensor& t) {
  return t.defined() ? t.numel() * t.element_size() : 0;
}

struct MhaCache : AttentionCache {
  KeyValueCache kv;
  // With attention.mha.*, as CcaCache: the last P raw q‖k rows [B, M, P], oldest first, and the
  // previous token's delayed value half [B, W_kv/2] (undefined = zeros, a fresh sequence).
  at::Tensor conv;
  at::Tensor shift;
  int64_t bytes() const override {
    return kv.bytes() + mha_state_bytes(conv) + mha_state_bytes(shift);
  }
};

class MhaAttention : public Attention {
 public:
  MhaAttention(const AttentionGeometry& g, const AttentionOptions& options)
      : core_(options.core),
        scale_(attention_scale(g.head_dim, options)),
        projections_(*this, g, options),
        mix_(variants::head_conv_settings(g)) {
    const variants::ConvStack stack = variants::head_conv_stack(g);
    convs_ = QkConvModules(*this, stack.convs, stack.channels, g.n_q_heads + g.n_kv_heads,
                           stack.kernel_0, stack.kernel_1);
    padding_ = stack.padding();
  }

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache,
                     const Documents* documents) override {
    check_documents_without_cache(documents, cache);
    auto* state = static_cast<MhaCache*>(cache);
    RawHeads raw = projections_.raw(x, cache != nullptr);
    if (mix_.any()) mix(raw, state, documents);
    HeadTensors t = projections_.finish(raw, cache ? cache->length : 0, documents);
    if (documents != nullptr)
      return projections_.output(document_attention(t.q, t.k, t.v, scale_, *documents, 0, core_));
    if (state != nullptr) {
      state->kv.append(t.k, t.v);
      state->length += x.size(1);
      t.k = state->kv.keys.filled();
      t.v = state->kv.values.filled();
    }
    return projections_.output(core_attention(t.q, t.k, t.v, scale_, core_));
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<MhaCache>();
  }

 private:
  // CCA's step 2 on z = [q ‖ k] (queries first, head-major, so conv group γ = head γ) and its
  // step 4 on the values, continuing the cache's states when decoding.
  void mix(RawHeads& h, MhaCache* state, const Documents* documents) {
    const int64_t B = h.q.size(0), S = h.q.size(1);
    if (mix_.convs > 0) {
      const int64_t width_q = h.q.size(2) * h.q.size(3), width_k = h.k.size(2) * h.k.size(3);
      const at::Tensor z =
          at::cat({h.q.reshape({B, S, width_q}), h.k.reshape({B, S, width_k})}, -1);
      const CausalMixOutput s = cca_causal_convs(
          convs_.weights(), z, state ? state->conv : at::Tensor(), padding_, documents);
      h.q = s.out.narrow(2, 0, width_q).reshape(h.q.sizes());
      h.k = s.out.narrow(2, width_q, width_k).reshape(h.k.sizes());
      if (state != nullptr) state->conv = s.state;
    }
    if (mix_.value_shift) {
      const at::Tensor v = h.v.reshape({B, S, -1});
      const int64_t half = v.size(2) / 2;
      const CausalMixOutput shifted =
          cca_shifted_values(v.narrow(2, 0, half), v.narrow(2, half, half),
                             state ? state->shift : at::Tensor(), h.v.size(2), documents);
      h.v = shifted.out;
      if (state != nullptr) state->shift = shifted.state;
    }
  }

  CoreBackend core_;
  double scale_;
  HeadProjections projections_;
  HeadConvSettings mix_;
  QkConvModules convs_;
  int64_t padding_ = 0;
};

}  // namespace

std::shared_ptr<Attention> make_mha_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<MhaAttention>(g, options);
}

std::shared_ptr<Attention> make_gqa_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<MhaAttention>(g, options);
}

}  // namespace cca
