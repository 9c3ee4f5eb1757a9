#include "attention/cca_reference.h"

#include <array>
#include <cmath>

namespace cca {
namespace {

// Stride 1, no padding of its own (the stack's single left pad is in the input), dilation 1.
constexpr std::array<int64_t, 1> kOne{1};
constexpr std::array<int64_t, 1> kZero{0};

int64_t tensor_bytes(const at::Tensor& t) {
  return t.defined() ? t.numel() * t.element_size() : 0;
}

// Normalisation and the additions before it run in float32 (float64 for float64 inputs), as in
// [VLLM]: in bf16 the q-k mean would be rounded before the norm amplifies its error.
at::ScalarType compute_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace

int64_t CcaCache::bytes() const {
  return kv.bytes() + tensor_bytes(conv) + tensor_bytes(shift);
}

at::Tensor cca_conv_stack(const CcaConvWeights& w, const at::Tensor& padded) {
  const int64_t channels = padded.size(1);
  // Depthwise: [B, M, P + S] -> [B, M, S + k1 - 1]. The k1 - 1 leading outputs whose taps see
  // only the zero history equal the bias b1 (spec §2.2 step 2), which the grouped conv reads.
  at::Tensor u =
      at::conv1d(padded, w.depthwise_weight, w.depthwise_bias, kOne, kZero, kOne, channels);
  if (!w.grouped_weight.defined()) return u;
  // Grouped, one group per head: [B, M, S + k1 - 1] -> [B, M, S].
  return at::conv1d(u, w.grouped_weight, w.grouped_bias, kOne, kZero, kOne,
                    channels / w.grouped_weight.size(1));
}

at::Tensor shift_tokens(const at::Tensor& x, int64_t steps, const at::Tensor& positions) {
  const int64_t S = x.size(1);
  if (steps == 0) return x;
  if (steps >= S) return at::zeros_like(x);
  at::Tensor shifted = at::constant_pad_nd(x.narrow(1, 0, S - steps), {0, 0, steps, 0});
  if (positions.defined()) shifted = shifted * positions.ge(steps).unsqueeze(-1).to(x.dtype());
  return shifted;
}

at::Tensor cca_document_conv_stack(const CcaConvWeights& w, const at::Tensor& z,
                                   const at::Tensor& positions) {
  // Tap j of a kernel of size k reads the token j steps back, weight index k - 1 - j.
  const int64_t k0 = w.depthwise_weight.size(2);
  at::Tensor u = w.depthwise_bias.view({1, 1, -1}).to(z.dtype()).expand_as(z);
  for (int64_t j = 0; j < k0; ++j) {
    const at::Tensor tap = w.depthwise_weight.select(2, k0 - 1 - j).view({1, 1, -1});
    u = u + shift_tokens(z, j, positions) * tap;
  }
  if (!w.grouped_weight.defined()) return u;
  const int64_t B = z.size(0), S = z.size(1);
  const int64_t k1 = w.grouped_weight.size(2), d = w.grouped_weight.size(1), groups = z.size(2) / d;
  // Before a document the depthwise conv saw only zeros, so the grouped conv reads its bias.
  const at::Tensor before = w.depthwise_bias.view({1, 1, -1}).to(z.dtype());
  at::Tensor s = w.grouped_bias.view({1, 1, -1}).to(z.dtype()).expand_as(z);
  for (int64_t j = 0; j < k1; ++j) {
    const at::Tensor inside = positions.ge(j).unsqueeze(-1);
    const at::Tensor read = at::where(inside, shift_tokens(u, j, {}), before);
    const at::Tensor taps = w.grouped_weight.select(2, k1 - 1 - j).view({groups, d, d});
    s = s + at::einsum("bsgi,goi->bsgo", {read.view({B, S, groups, d}), taps}).reshape({B, S, -1});
  }
  return s;
}

CausalMixOutput cca_causal_convs(const CcaConvWeights& w, const at::Tensor& z,
                                 const at::Tensor& history, int64_t padding,
                                 const Documents* documents) {
  if (documents != nullptr && documents->shard) {
    // Context parallelism: each chunk continues the previous chunk's last `padding` tokens.
    const auto stack = [&w](const at::Tensor& x, const at::Tensor& positions) {
      return cca_document_conv_stack(w, x, positions);
    };
    return {mix_with_halo(z, padding, *documents->shard, stack), {}};
  }
  if (documents != nullptr) return {cca_document_conv_stack(w, z, documents->positions), {}};
  const int64_t B = z.size(0), S = z.size(1);
  const at::Tensor before = history.defined() ? history.to(z.scalar_type())
                                              : at::zeros({B, z.size(2), padding}, z.options());
  const at::Tensor padded = at::cat({before, z.transpose(1, 2)}, 2);  // [B, M, P + S]
  CausalMixOutput out;
  out.state = padded.narrow(2, S, padding).clone(at::MemoryFormat::Contiguous);
  out.out = cca_conv_stack(w, padded).transpose(1, 2);
  return out;
}

std::pair<at::Tensor, at::Tensor> cca_qk_mean(const at::Tensor& q0, const at::Tensor& k0) {
  const int64_t n_kv = k0.size(2);
  const int64_t group = q0.size(2) / n_kv;
  // m^Q_h = ½(q⁰_h + k⁰_{h/g}) (B_group), m^K_j = mean of m^Q over group j (E_group).
  const at::Tensor mean_q = (q0 + k0.repeat_interleave(group, 2)).mul(0.5);
  const at::Tensor mean_k = mean_q.unflatten(2, {n_kv, group}).mean(3);
  return {mean_q, mean_k};
}

at::Tensor cca_value_shift(const at::Tensor& v_current, const at::Tensor& v_delayed,
                           const at::Tensor& previous, int64_t n_kv_heads) {
  const int64_t B = v_current.size(0), S = v_current.size(1), half = v_delayed.size(2);
  const at::Tensor before = previous.defined() ? previous.to(v_delayed.scalar_type()).unsqueeze(1)
                                               : at::zeros({B, 1, half}, v_delayed.options());
  const at::Tensor shifted = at::cat({before, v_delayed.narrow(1, 0, S - 1)}, 1);
  // The split is over flattened channels (spec §9.6): with odd n_k it falls inside a head.
  return at::cat({v_current, shifted}, -1).view({B, S, n_kv_heads, -1});
}

CausalMixOutput cca_shifted_values(const at::Tensor& v_current, const at::Tensor& v_delayed,
                                   const at::Tensor& previous, int64_t n_kv_heads,
                                   const Documents* documents) {
  const int64_t B = v_current.size(0), S = v_current.size(1);
  if (documents != nullptr) {
    const auto shift = [](const at::Tensor& x, const at::Tensor& positions) {
      return shift_tokens(x, 1, positions);
    };
    // Context parallelism: the token before each chunk comes from the rank that holds it.
    const at::Tensor shifted = documents->shard
                                   ? mix_with_halo(v_delayed, 1, *documents->shard, shift)
                                   : shift(v_delayed, documents->positions);
    return {at::cat({v_current, shifted}, -1).view({B, S, n_kv_heads, -1}), {}};
  }
  return {cca_value_shift(v_current, v_delayed, previous, n_kv_heads),
          v_delayed.select(1, S - 1).clone(at::MemoryFormat::Contiguous)};
}

at::Tensor cca_normalize(const at::Tensor& x, const at::Tensor& multiplier) {
  const at::Tensor xc = x.to(compute_type(x));
  const double root_d = std::sqrt(static_cast<double>(x.size(-1)));
  at::Tensor scale = at::rsqrt(xc.square().sum(-1, /*keepdim=*/true).add(kCcaNormEps)).mul(root_d);
  if (multiplier.defined()) scale = scale * multiplier.to(xc.scalar_type()).view({1, 1, -1, 1});
  return xc * scale;
}

CcaPrologueOutput cca_prologue(const CcaGeometry& g, const Rotary& rotary, const CcaConvWeights& w,
                               const at::Tensor& key_multiplier, const CcaProjections& p,
                               const at::Tensor& conv_history, const at::Tensor& shift_previous,
                               int64_t offset, const Documents* documents) {
  TORCH_CHECK(
      documents == nullptr || (!conv_history.defined() && !shift_previous.defined() && offset == 0),
      "cca_prologue: documents need a fresh sequence");
  const int64_t B = p.q0.size(0), S = p.q0.size(1), d = g.head_dim;
  const int64_t n_q = g.n_q_heads, n_kv = g.n_kv_heads, width_q = g.q_latent_width();
  const at::ScalarType compute = compute_type(p.q0);
  CcaPrologueOutput out;

  // Step 2: convs over z = [q⁰ ‖ k⁰], queries first, head-major, so conv group γ = head γ.
  at::Tensor s = at::cat({p.q0, p.k0}, -1);  // [B, S, M]
  if (g.convs > 0) {
    CausalMixOutput convs = cca_causal_convs(w, s, conv_history, g.conv_padding(), documents);
    s = convs.out;
    out.conv_state = convs.state;
  }
  at::Tensor q = s.narrow(2, 0, width_q).reshape({B, S, n_q, d}).to(compute);
  at::Tensor k = s.narrow(2, width_q, n_kv * d).reshape({B, S, n_kv, d}).to(compute);

  // Step 3: q-k mean of the pre-conv projections, a skip connection around the convs.
  if (g.qk_mean) {
    const auto [mean_q, mean_k] = cca_qk_mean(p.q0.reshape({B, S, n_q, d}).to(compute),
                                              p.k0.reshape({B, S, n_kv, d}).to(compute));
    q = q + mean_q;
    k = k + mean_k;
  }

  // Step 4: values, not convolved.
  if (g.value_shift) {
    CausalMixOutput shifted =
        cca_shifted_values(p.v_current, p.v_delayed, shift_previous, n_kv, documents);
    out.v = shifted.out;
    out.shift_state = shifted.state;
  } else {
    out.v = p.v_current.reshape({B, S, n_kv, d});
  }

  // Steps 5-6: normalise, scale keys by τ, then rotate (norm-preserving, so τ survives).
  const at::ScalarType dtype = p.q0.scalar_type();
  out.q = rotate(rotary, cca_normalize(q, {}), offset, documents).to(dtype);
  out.k = rotate(rotary, cca_normalize(k, key_multiplier), offset, documents).to(dtype);
  return out;
}

}  // namespace cca
