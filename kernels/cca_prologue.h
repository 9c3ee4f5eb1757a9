// Fused CCA / CCGQA prologue kernels (../shared/docs/cca-spec.md §2.2 steps 2-6): from the q/k
// down-projections to the q̂ / k̂ / ṽ that the attention core reads, and the matching backward.
// The plain-ops version of the same math is lib/attention/cca_reference.cpp; the autograd
// wrapper is lib/attention/cca_fused.cpp. bf16, fp16 and fp32; head dims 64, 128 and 256.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace cca::kernels {

// The shape of one layer's prologue. Channels of z = [q⁰ ‖ k⁰] are head-major, query heads first,
// so conv group γ is head γ (G = n_q + n_k heads, M = G·d channels).
struct CcaPrologueShape {
  int64_t batch = 0, seq = 0;
  int64_t n_q = 0, n_kv = 0, head_dim = 0;
  int64_t convs = 2;     // 0, 1 or 2
  int64_t kernel_0 = 2;  // depthwise taps k0 (1..4)
  int64_t kernel_1 = 2;  // grouped taps k1 (1..4)
  bool qk_mean = true;
  bool value_shift = true;  // v_current / v_delayed halves, else no value work
  int64_t rope_dim = 0;     // rotated dims per head (even, <= head_dim)
  int64_t offset = 0;       // absolute position of the first token
  int64_t heads() const { return n_q + n_kv; }
  int64_t channels() const { return heads() * head_dim; }
  // Length of the left pad (the decode conv state), P = (k0-1) + (k1-1).
  int64_t pad() const { return convs == 0 ? 0 : (kernel_0 - 1) + (convs == 2 ? kernel_1 - 1 : 0); }
  // The grouped conv's look-back, k1 - 1 (0 without it).
  int64_t grouped_lag() const { return convs == 2 ? kernel_1 - 1 : 0; }
};

// Why the kernels cannot launch `shape` ("" when they can), naming the limit: grid.y and grid.z
// hold at most 65,535 blocks (heads, batch, and the depthwise backward's 16-row chunks of a
// sequence), and a token's channels must fit a 32-bit index. Offsets into the activations are
// 64-bit, so B·S·channels may exceed 2^31 (S = 131,072 with 128 heads of 256 dims is 2^32).
std::string cca_launch_problem(const CcaPrologueShape& shape);

// Packed documents (data.document_masking) of a fresh sequence: every conv tap and the value
// shift stop at a document's start, so each document is convolved as if it ran alone (a tap
// before it reads what a sequence start reads), and RoPE may restart there. Undefined positions
// mean no documents: the kernels then take their usual path.
struct CcaDocumentLayout {
  at::Tensor positions;  // int32 [B, S], contiguous: each token's index inside its document
  at::Tensor ids;        // integer [B, S]: documents numbered over the batch from 0 (backward)
  int64_t count = 0;     // documents in the batch (ids run 0 .. count - 1)
  bool reset_positions = false;  // RoPE at `positions` instead of offset + t
  bool defined() const { return positions.defined(); }
};

// Tensors of the forward pass. q0 [B,S,W_q], k0 [B,S,W_k], v_current / v_delayed [B,S,W_k/2] may
// be strided views (last dim contiguous). Weights come prepared by the caller in the input dtype:
// depthwise_taps [M, k0] (PyTorch order: the last tap is the current token), grouped_taps
// [G, k1, d, d] with tap τ = lag τ, [i][j] = out i, in j; biases [M] in float32. inv_freq [r/2]
// float64. key_multiplier [n_k] float32. conv_history [B, M, P] / shift_previous [B, W_k/2]: the
// decode states of a continued sequence, or undefined for a fresh one. `documents` needs a fresh
// sequence (no history or carried value, offset 0) and makes no decode states.
struct CcaPrologueInputs {
  at::Tensor q0, k0, v_current, v_delayed;
  at::Tensor depthwise_taps, depthwise_bias, grouped_taps, grouped_bias;
  at::Tensor key_multiplier, inv_freq;
  at::Tensor conv_history, shift_previous;
  CcaDocumentLayout documents;
};

// Where the forward writes besides q̂. Training keeps s for the backward pass; a generation
// step points k̂ / ṽ at its KV cache's next slots and takes the decode states of the chunk's end
// from the same launch, so a decode step is the projection GEMM, this kernel and the core.
struct CcaForwardOptions {
  bool keep_conv_output = false;  // store s
  bool write_states = false;      // conv_state and shift_state
  at::Tensor k_into, v_into;      // [B,S,n_k,d] views with a contiguous last dim, or undefined
};

struct CcaPrologueOutputs {
  at::Tensor q, k, v;     // [B,S,n_q,d], [B,S,n_k,d], [B,S,n_k,d] (v undefined without value shift)
  at::Tensor s;           // the conv output [B,S,M] in the input dtype, kept for backward
  at::Tensor conv_state;  // [B, M, P]: the last P raw z (history first when S < P)
  at::Tensor shift_state;  // [B, W_k/2]: v_delayed of the last token
};

// One launch: convs (tensor cores for bf16/fp16), q-k mean, L2 norm·√d, temperature, partial
// RoPE, the value-shift assembly and, if asked, the decode states.
CcaPrologueOutputs cca_prologue_forward(const CcaPrologueShape& shape, const CcaPrologueInputs& in,
                                        const CcaForwardOptions& options);

struct CcaPrologueGrads {
  at::Tensor q0, k0, v_current, v_delayed;    // in the input dtype
  at::Tensor depthwise_taps, depthwise_bias;  // float32, [M, k0] and [M]
  at::Tensor grouped_taps, grouped_bias;      // float32, [G, k1, d, d] and [M]
  at::Tensor key_multiplier;                  // float32 [n_k]
};

// The backward of a fresh-sequence forward (no conv history), with the forward's documents. grad_q
// / grad_k / grad_v are the gradients of q̂, k̂, ṽ (grad_v undefined without value shift); `s` is the
// kept conv output. Every reduction (conv weights and biases, temperature) is a fixed-order
// two-stage sum, so the result is deterministic.
CcaPrologueGrads cca_prologue_backward(const CcaPrologueShape& shape, const CcaPrologueInputs& in,
                                       const at::Tensor& s, const at::Tensor& grad_q,
                                       const at::Tensor& grad_k, const at::Tensor& grad_v);

}  // namespace cca::kernels
