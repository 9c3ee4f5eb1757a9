#include "attention/cca_fused.h"

#include <torch/autograd.h>

#include "util/error.h"

#ifdef CCA_WITH_CUDA
#include "cca_prologue.h"
#endif

namespace cca {

at::Tensor cca_rope_inverse_frequencies(int64_t rope_dim, double theta, const RopeScaling& scaling,
                                        const at::Device& device) {
  if (rope_dim == 0) return at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(device));
  // Rotary's own frequencies, so both paths rotate by bit-identical angles.
  return rope_inverse_frequencies(rope_dim, theta, scaling).to(device);
}

#ifndef CCA_WITH_CUDA

bool cca_fused_supported(const CcaGeometry&, const at::Tensor&) {
  return false;
}

CcaPrologueOutput cca_prologue_fused(const CcaGeometry&, const at::Tensor&, const CcaConvWeights&,
                                     const at::Tensor&, const CcaProjections&, const Documents*) {
  throw Error("cca: this build has no CUDA kernels (fused prologue unavailable)");
}

CcaPreparedWeights cca_prepare_weights(const CcaGeometry&, const CcaConvWeights&, const at::Tensor&,
                                       at::ScalarType) {
  throw Error("cca: this build has no CUDA kernels (fused prologue unavailable)");
}

at::Tensor cca_step_fused(const CcaGeometry&, const at::Tensor&, const CcaPreparedWeights&,
                          const CcaProjections&, CcaCache&) {
  throw Error("cca: this build has no CUDA kernels (fused prologue unavailable)");
}

#else

bool cca_fused_supported(const CcaGeometry& g, const at::Tensor& q0) {
  const at::ScalarType t = q0.scalar_type();
  const bool dtype_ok = t == at::kBFloat16 || t == at::kHalf || t == at::kFloat;
  const bool dim_ok = g.head_dim == 64 || g.head_dim == 128 || g.head_dim == 256;
  const bool convs_ok =
      g.convs == 0 || (g.conv_kernel_0 <= 4 && (g.convs < 2 || g.conv_kernel_1 <= 4));
  return q0.is_cuda() && dtype_ok && dim_ok && convs_ok && g.n_kv_heads > 0;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

kernels::CcaPrologueShape shape_of(const CcaGeometry& g, const at::Tensor& q0, int64_t offset) {
  kernels::CcaPrologueShape s;
  s.batch = q0.size(0);
  s.seq = q0.size(1);
  s.n_q = g.n_q_heads;
  s.n_kv = g.n_kv_heads;
  s.head_dim = g.head_dim;
  s.convs = g.convs;
  s.kernel_0 = g.convs >= 1 ? g.conv_kernel_0 : 1;
  s.kernel_1 = g.convs == 2 ? g.conv_kernel_1 : 1;
  s.qk_mean = g.qk_mean;
  s.value_shift = g.value_shift;
  s.rope_dim = g.rope_dim;
  s.offset = offset;
  return s;
}

void use_weights(const CcaPreparedWeights& w, kernels::CcaPrologueInputs& in) {
  in.depthwise_taps = w.depthwise_taps;
  in.depthwise_bias = w.depthwise_bias;
  in.grouped_taps = w.grouped_taps;
  in.grouped_bias = w.grouped_bias;
  in.key_multiplier = w.key_multiplier;
}

// The forward kernel reads rows as 16-byte vectors; other layouts are copied first.
at::Tensor aligned_rows(const at::Tensor& t) {
  if (!t.defined()) return t;
  const int64_t e = t.element_size();
  const bool ok = reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0 && t.stride(2) == 1 &&
                  t.stride(0) * e % 16 == 0 && t.stride(1) * e % 16 == 0;
  return ok ? t : t.contiguous();
}

// The kernels' view of packed documents (none when `documents` is null): int32 positions, and
// the ids and their count, which the backward's padded rows need.
kernels::CcaDocumentLayout document_layout(const Documents* documents) {
  kernels::CcaDocumentLayout layout;
  if (documents == nullptr) return layout;
  layout.positions = documents->positions.to(at::kInt).contiguous();
  layout.ids = documents->ids.contiguous();
  layout.count = documents->cu_seqlens.size(0) - 1;
  layout.reset_positions = documents->reset_positions;
  return layout;
}

// The layout travels to the backward in saved_data (no gradient flows to it).
void save_documents(AutogradContext* ctx, const kernels::CcaDocumentLayout& documents) {
  ctx->saved_data["documents"] = documents.defined();
  if (!documents.defined()) return;
  ctx->saved_data["document_positions"] = documents.positions;
  ctx->saved_data["document_ids"] = documents.ids;
  ctx->saved_data["document_count"] = documents.count;
  ctx->saved_data["reset_positions"] = documents.reset_positions;
}

kernels::CcaDocumentLayout saved_documents(AutogradContext* ctx) {
  kernels::CcaDocumentLayout documents;
  if (!ctx->saved_data["documents"].toBool()) return documents;
  documents.positions = ctx->saved_data["document_positions"].toTensor();
  documents.ids = ctx->saved_data["document_ids"].toTensor();
  documents.count = ctx->saved_data["document_count"].toInt();
  documents.reset_positions = ctx->saved_data["reset_positions"].toBool();
  return documents;
}

// Inputs: q0, k0, v_current, v_delayed, depthwise w/b, grouped w/b, key multiplier, then the
// non-tensor geometry, frequencies and documents. Outputs: q̂, k̂ and, with value shift, ṽ.
struct CcaPrologueFunction : torch::autograd::Function<CcaPrologueFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& q0, const at::Tensor& k0,
                               const at::Tensor& v_current, const at::Tensor& v_delayed,
                               const at::Tensor& dw_weight, const at::Tensor& dw_bias,
                               const at::Tensor& g_weight, const at::Tensor& g_bias,
                               const at::Tensor& multiplier, const CcaGeometry& g,
                               const at::Tensor& inv_freq,
                               const kernels::CcaDocumentLayout& documents) {
    const kernels::CcaPrologueShape s = shape_of(g, q0, 0);
    kernels::CcaPrologueInputs in;
    in.documents = documents;
    in.q0 = aligned_rows(q0);
    in.k0 = aligned_rows(k0);
    if (s.value_shift) {
      in.v_current = aligned_rows(v_current);
      in.v_delayed = aligned_rows(v_delayed);
    }
    use_weights(cca_prepare_weights(g, {dw_weight, dw_bias, g_weight, g_bias}, multiplier,
                                    q0.scalar_type()),
                in);
    in.inv_freq = inv_freq;
    kernels::CcaForwardOptions options;
    options.keep_conv_output = true;
    const kernels::CcaPrologueOutputs out = kernels::cca_prologue_forward(s, in, options);
    ctx->save_for_backward({in.q0, in.k0, in.depthwise_taps, in.depthwise_bias, in.grouped_taps,
                            in.grouped_bias, in.key_multiplier, inv_freq, out.s});
    ctx->saved_data["geometry"] = std::vector<int64_t>{
        g.n_q_heads,     g.n_kv_heads, g.head_dim,    g.convs,   g.conv_kernel_0,
        g.conv_kernel_1, g.qk_mean,    g.value_shift, g.rope_dim};
    save_documents(ctx, documents);
    if (s.value_shift) return {out.q, out.k, out.v};
    return {out.q, out.k};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const std::vector<int64_t> v = ctx->saved_data["geometry"].toIntVector();
    CcaGeometry g;
    g.n_q_heads = v[0];
    g.n_kv_heads = v[1];
    g.head_dim = v[2];
    g.convs = v[3];
    g.conv_kernel_0 = v[4];
    g.conv_kernel_1 = v[5];
    g.qk_mean = v[6] != 0;
    g.value_shift = v[7] != 0;
    g.rope_dim = v[8];
    const at::Tensor& q0 = saved[0];
    const kernels::CcaPrologueShape s = shape_of(g, q0, 0);
    kernels::CcaPrologueInputs in;
    in.q0 = q0;
    in.k0 = saved[1];
    in.depthwise_taps = saved[2];
    in.depthwise_bias = saved[3];
    in.grouped_taps = saved[4];
    in.grouped_bias = saved[5];
    in.key_multiplier = saved[6];
    in.inv_freq = saved[7];
    in.documents = saved_documents(ctx);
    const at::Tensor grad_v = s.value_shift ? grads[2] : at::Tensor();
    const kernels::CcaPrologueGrads gr =
        kernels::cca_prologue_backward(s, in, saved[8], grads[0], grads[1], grad_v);
    const int64_t M = s.channels(), d = s.head_dim;
    variable_list result(12);
    result[0] = gr.q0;
    result[1] = gr.k0;
    result[2] = gr.v_current;
    result[3] = gr.v_delayed;
    if (s.convs >= 1) {
      result[4] = gr.depthwise_taps.view({M, 1, s.kernel_0});
      result[5] = gr.depthwise_bias;
    }
    if (s.convs == 2) {  // [G, τ, i, j] -> PyTorch's [γd + i, j, k1 - 1 - τ]
      result[6] = gr.grouped_taps.permute({0, 2, 3, 1}).flip({3}).reshape({M, d, s.kernel_1});
      result[7] = gr.grouped_bias;
    }
    result[8] = gr.key_multiplier;
    return result;
  }
};

// The kernels' inputs for a no-grad chunk continuing (or starting) a sequence.
kernels::CcaPrologueInputs step_inputs(const CcaGeometry& g, const at::Tensor& inv_freq,
                                       const CcaPreparedWeights& w, const CcaProjections& p,
                                       const at::Tensor& conv_history,
                                       const at::Tensor& shift_previous) {
  kernels::CcaPrologueInputs in;
  in.q0 = aligned_rows(p.q0);
  in.k0 = aligned_rows(p.k0);
  if (g.value_shift) {
    in.v_current = aligned_rows(p.v_current);
    in.v_delayed = aligned_rows(p.v_delayed);
  }
  use_weights(w, in);
  in.inv_freq = inv_freq;
  const at::ScalarType dtype = p.q0.scalar_type();
  if (conv_history.defined()) in.conv_history = conv_history.to(dtype).contiguous();
  if (shift_previous.defined()) in.shift_previous = shift_previous.to(dtype).contiguous();
  return in;
}

}  // namespace

CcaPrologueOutput cca_prologue_fused(const CcaGeometry& g, const at::Tensor& inv_freq,
                                     const CcaConvWeights& w, const at::Tensor& key_multiplier,
                                     const CcaProjections& p, const Documents* documents) {
  if (!cca_fused_supported(g, p.q0)) throw Error("cca: fused prologue does not support this layer");
  const int64_t B = p.q0.size(0), S = p.q0.size(1);
  const kernels::CcaDocumentLayout layout = document_layout(documents);
  CcaPrologueOutput out;
  bool needs_grad = false;
  if (at::GradMode::is_enabled()) {
    for (const at::Tensor& t : {p.q0, p.k0, p.v_current, p.v_delayed, w.depthwise_weight,
                                w.depthwise_bias, w.grouped_weight, w.grouped_bias, key_multiplier})
      needs_grad = needs_grad || (t.defined() && t.requires_grad());
  }
  if (needs_grad) {
    // Autograd functions take no undefined tensors: absent parts travel as empty placeholders,
    // which the geometry says to ignore.
    const at::Tensor none = at::empty({0}, p.q0.options());
    const auto or_none = [&](const at::Tensor& t) { return t.defined() ? t : none; };
    const variable_list r = CcaPrologueFunction::apply(
        p.q0, p.k0, or_none(p.v_current), or_none(p.v_delayed), or_none(w.depthwise_weight),
        or_none(w.depthwise_bias), or_none(w.grouped_weight), or_none(w.grouped_bias),
        key_multiplier, g, inv_freq, layout);
    out.q = r[0];
    out.k = r[1];
    if (g.value_shift) out.v = r[2];
  } else {
    const at::NoGradGuard no_grad;
    const CcaPreparedWeights prepared =
        cca_prepare_weights(g, w, key_multiplier, p.q0.scalar_type());
    kernels::CcaPrologueInputs in = step_inputs(g, inv_freq, prepared, p, {}, {});
    in.documents = layout;
    const kernels::CcaPrologueOutputs k =
        kernels::cca_prologue_forward(shape_of(g, p.q0, 0), in, {});
    out.q = k.q;
    out.k = k.k;
    out.v = k.v;
  }
  if (!g.value_shift) out.v = p.v_current.reshape({B, S, g.n_kv_heads, g.head_dim});
  return out;
}

// Conv weights in the kernels' layouts and dtype: depthwise [M, k0]; grouped [G, k1, d_out, d_in]
// with tap τ = lag τ (PyTorch stores lag τ at kernel index k1-1-τ).
CcaPreparedWeights cca_prepare_weights(const CcaGeometry& g, const CcaConvWeights& w,
                                       const at::Tensor& key_multiplier, at::ScalarType dtype) {
  const int64_t M = g.conv_channels(), G = g.n_q_heads + g.n_kv_heads, d = g.head_dim;
  CcaPreparedWeights out;
  if (g.convs >= 1) {
    out.depthwise_taps = w.depthwise_weight.reshape({M, g.conv_kernel_0}).to(dtype).contiguous();
    out.depthwise_bias = w.depthwise_bias.to(at::kFloat).contiguous();
  }
  if (g.convs == 2) {
    out.grouped_taps = w.grouped_weight.view({G, d, d, g.conv_kernel_1})
                           .flip({3})
                           .permute({0, 3, 1, 2})
                           .to(dtype)
                           .contiguous();
    out.grouped_bias = w.grouped_bias.to(at::kFloat).contiguous();
  }
  out.key_multiplier = key_multiplier.to(at::kFloat).contiguous();
  return out;
}

at::Tensor cca_step_fused(const CcaGeometry& g, const at::Tensor& inv_freq,
                          const CcaPreparedWeights& w, const CcaProjections& p, CcaCache& cache) {
  if (!cca_fused_supported(g, p.q0) || at::GradMode::is_enabled()) {
    throw Error("cca: the fused decode step needs supported CUDA inputs and no autograd");
  }
  const int64_t B = p.q0.size(0), S = p.q0.size(1), n_kv = g.n_kv_heads, d = g.head_dim;
  const auto opts = p.q0.options();
  kernels::CcaForwardOptions options;
  options.write_states = true;
  // The KV buffers are [B, n_k, L, d]; the kernel writes [B, S, n_k, d] views of their slots.
  options.k_into = cache.kv.keys.reserve({B, n_kv, S, d}, opts).transpose(1, 2);
  if (g.value_shift)
    options.v_into = cache.kv.values.reserve({B, n_kv, S, d}, opts).transpose(1, 2);
  const kernels::CcaPrologueOutputs out = kernels::cca_prologue_forward(
      shape_of(g, p.q0, cache.length), step_inputs(g, inv_freq, w, p, cache.conv, cache.shift),
      options);
  cache.kv.keys.commit(S);
  if (g.value_shift) {
    cache.kv.values.commit(S);
    cache.shift = out.shift_state;
  } else {
    cache.kv.values.append(p.v_current.reshape({B, S, n_kv, d}).transpose(1, 2));
  }
  if (g.convs > 0) cache.conv = out.conv_state;
  cache.length += S;
  return out.q;
}

#endif

}  // namespace cca
