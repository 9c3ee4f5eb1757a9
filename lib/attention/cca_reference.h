// The CCA / CCGQA prologue in plain LibTorch ops (../shared/docs/cca-spec.md §2.2 steps 2-6):
// everything between the q/k/v down-projections and the attention core. It is kept apart from
// the module (cca.cpp) so that fused kernels can replace it as a whole and be tested against it,
// and so that tests can inspect the decode state.
#pragma once

#include <ATen/ATen.h>

#include <utility>

#include "attention/attention.h"
#include "attention/kv_cache.h"
#include "config/variants/cca.h"
#include "ops/rope.h"

namespace cca {

using variants::CcaGeometry;

// One CCA layer's decode state (spec §4): the growing KV cache plus two constant-size states.
struct CcaCache : AttentionCache {
  KeyValueCache kv;  // k̂ after norm, temperature and RoPE; ṽ with both value halves
  at::Tensor conv;  // [B, M, P]: the last P raw z = [q⁰ ‖ k⁰], oldest first (undefined = zeros)
  at::Tensor shift;  // [B, W_k/2]: the last token's val_proj2 output (undefined = zeros)
  int64_t bytes() const override;
};

// Conv weights as stored in the module (PyTorch layout: the last tap is the current token).
// Undefined tensors mean the conv is absent (geometry.convs < 1 or < 2).
struct CcaConvWeights {
  at::Tensor depthwise_weight;  // [M, 1, k0]
  at::Tensor depthwise_bias;    // [M]
  at::Tensor grouped_weight;    // [M, d, k1], groups = n_q + n_k
  at::Tensor grouped_bias;      // [M]
};

// The projections feeding the prologue, each [B, S, width].
struct CcaProjections {
  at::Tensor q0;         // x W_Q, [B, S, W_q]
  at::Tensor k0;         // x W_K, [B, S, W_k]
  at::Tensor v_current;  // x W_V1 ([B, S, W_k/2]); x W_V ([B, S, W_k]) without value shift
  at::Tensor v_delayed;  // x W_V2, [B, S, W_k/2]; undefined without value shift
};

struct CcaPrologueOutput {
  at::Tensor q;            // q̂ [B, S, n_q, d]: √d-normalised, rotated
  at::Tensor k;            // k̂ [B, S, n_k, d]: τ·√d-normalised, rotated
  at::Tensor v;            // ṽ [B, S, n_k, d]
  at::Tensor conv_state;   // the new [B, M, P] conv state
  at::Tensor shift_state;  // the new [B, W_k/2] value-shift state (undefined without value shift)
};

// Squared-norm epsilon of the L2 normalisation, x · rsqrt(‖x‖² + eps) (as in [VLLM]). It only
// guards all-zero heads: for fp32 it is below rounding once ‖x‖² > 1e-5.
inline constexpr double kCcaNormEps = 1e-12;

// Step 2: the causal conv stack over `padded` [B, M, P + S], which is z = [q⁰ ‖ k⁰] with the
// P-step history (zeros for a fresh sequence) prepended once, at the input of the stack: the
// convs add no padding of their own. The weights say the rest: no grouped weight = convs 1, and
// its groups are M / head_dim, one per head. Returns s [B, M, S].
at::Tensor cca_conv_stack(const CcaConvWeights& w, const at::Tensor& padded);

// Step 2 over packed documents: the conv stack over z [B, S, M] (no history) where no tap reads
// across a document start: a tap before the token's document reads zeros, as at a sequence
// start (for the grouped conv: the depthwise output of zeros, its bias). `positions` [B, S] are
// the tokens' indices inside their documents. Returns s [B, S, M].
at::Tensor cca_document_conv_stack(const CcaConvWeights& w, const at::Tensor& z,
                                   const at::Tensor& positions);

// What the stack or the value shift leaves for the next chunk of a sequence.
struct CausalMixOutput {
  at::Tensor out;    // s [B, S, M] after the convs, or ṽ [B, S, n_k, d] after the value shift
  at::Tensor state;  // the new conv state [B, M, P] or shift state [B, W/2]; undefined with
                     // documents
};

// Step 2 as a whole, for any q‖k heads (CCA's latent heads, or MHA/GQA's own heads): z [B, S, M]
// continuing `history` [B, M, padding] (undefined = a fresh sequence), or, with `documents`, a
// fresh packed sequence restarting at every document.
CausalMixOutput cca_causal_convs(const CcaConvWeights& w, const at::Tensor& z,
                                 const at::Tensor& history, int64_t padding,
                                 const Documents* documents);

// Step 3: the parameter-free q-k means from the pre-conv heads q0 [B, S, n_q, d] and
// k0 [B, S, n_k, d]. Returns {m^Q [B, S, n_q, d], m^K [B, S, n_k, d]}.
std::pair<at::Tensor, at::Tensor> cca_qk_mean(const at::Tensor& q0, const at::Tensor& k0);

// Step 4: ṽ = [v_current ‖ v_delayed shifted one token later], split into n_k heads over the
// flattened channels. `previous` [B, W_k/2] is the delayed value of the token before the chunk
// (undefined = zeros).
at::Tensor cca_value_shift(const at::Tensor& v_current, const at::Tensor& v_delayed,
                           const at::Tensor& previous, int64_t n_kv_heads);

// x shifted `steps` tokens later along dim 1 of [B, S, C], zeros entering at the front;
// with `positions` [B, S] also zero wherever the shift would cross a document start.
at::Tensor shift_tokens(const at::Tensor& x, int64_t steps, const at::Tensor& positions);

// Step 4 as a whole: ṽ from the current and delayed halves [B, S, W/2] continuing `previous`
// (as in cca_value_shift), or, with `documents`, restarting at every document.
CausalMixOutput cca_shifted_values(const at::Tensor& v_current, const at::Tensor& v_delayed,
                                   const at::Tensor& previous, int64_t n_kv_heads,
                                   const Documents* documents);

// Step 5: √d · x / ‖x‖ per head of x [B, S, H, d], times multiplier[H] when defined; computed in
// float32 (float64 for float64 inputs) and returned in that precision.
at::Tensor cca_normalize(const at::Tensor& x, const at::Tensor& multiplier);

// Steps 2-6 for a chunk whose first token sits at absolute position `offset`, continuing the
// conv state `conv_history` [B, M, P] and value-shift state `shift_previous` [B, W_k/2]
// (undefined = a fresh sequence). `key_multiplier` [n_k] is τ. Outputs are in q0's dtype.
// With `documents` (a fresh packed sequence: no history, offset 0) the convs and the value
// shift restart at every document, RoPE too when documents->reset_positions, and no decode
// states are made.
CcaPrologueOutput cca_prologue(const CcaGeometry& g, const Rotary& rotary, const CcaConvWeights& w,
                               const at::Tensor& key_multiplier, const CcaProjections& p,
                               const at::Tensor& conv_history, const at::Tensor& shift_previous,
                               int64_t offset, const Documents* documents = nullptr);

}  // namespace cca
