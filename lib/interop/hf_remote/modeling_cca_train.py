# Copyright the cca-train authors.
#
# Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file except
# in compliance with the License. You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software distributed under the
# License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either
# express or implied. See the License for the specific language governing permissions and
# limitations under the License.
"""cca-train's decoder for transformers (remote code, loaded with trust_remote_code=True).

The same computation as cca-train's C++ model (lib/model, lib/attention, lib/moe, lib/ops) on
the same tensor names, so a checkpoint's model.safetensors loads unchanged: token embedding,
pre-norm blocks (RMSNorm -> attention -> residual, RMSNorm -> SwiGLU or MoE -> residual), final
RMSNorm, LM head (tied or not). Attention is any of cca-train's variants: mha, gqa (optionally
with per-head RMSNorm on q and k), swa (sliding window), mla (DeepSeek latent attention), cca and
ccgqa (compressed convolutional attention). RoPE rotates pairs (i, i + r/2) of the first r dims
of each head. The residual stream stays in float32 whatever the weights' dtype, as in cca-train.

Generation keeps a per-layer decode state (CcaTrainCache): keys and values (the last window - 1
for swa), MLA's normalised latent and shared RoPE key, and for CCA also the convolution's last P
raw q‖k vectors and the last token's delayed value, so each new token costs one step.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_cca_train import CcaTrainConfig

# Squared-norm epsilon of CCA's L2 normalisation, x · rsqrt(‖x‖² + eps)
# (lib/attention/cca_reference.h).
CCA_NORM_EPS = 1e-12


# ---- geometry: what the resolved sections mean (lib/config/variants, lib/config/geometry.cpp) ----


def _compute_dtype(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def dense_ffn_hidden(model):
    if model["ffn_hidden"] > 0:
        return model["ffn_hidden"]
    raw = (8 * model["d_model"] + 2) // 3
    multiple = model["ffn_multiple_of"]
    return (raw + multiple - 1) // multiple * multiple


def is_moe_layer(moe, index):
    if moe["n_experts"] == 0 or index < moe["first_dense_layers"]:
        return False
    return (index - moe["first_dense_layers"]) % moe["every"] == 0


def attention_geometry(sections):
    """Heads and widths of the attention layers, "0 = automatic" resolved as cca-train does."""
    model, att = sections["model"], sections["attention"]
    E, kind = model["d_model"], att["kind"]
    g = {"kind": kind, "model_dim": E, "qk_norm": att["qk_norm"]}
    if kind == "mla":
        mla = att["mla"]
        g.update(n_q_heads=att["n_heads"], n_kv_heads=1, rope_dim=mla["qk_rope_head_dim"],
                 nope_dim=mla["qk_nope_head_dim"], v_head_dim=mla["v_head_dim"],
                 q_lora_rank=mla["q_lora_rank"] or 0, kv_lora_rank=mla["kv_lora_rank"])
        return g
    head_dim = att["head_dim"] or E // att["n_heads"]
    rope_dim = int(math.floor(att["rope_fraction"] * head_dim + 0.5))
    if rope_dim % 2 != 0:
        raise ValueError(f"attention.rope_fraction = {att['rope_fraction']} gives {rope_dim} rotary "
                         f"dims of head_dim {head_dim}; rotate-half RoPE needs an even number")
    g.update(head_dim=head_dim, rope_dim=rope_dim)
    if kind in ("cca", "ccgqa"):
        cca = att["cca"]
        c1 = cca["q_compression"]
        c2 = cca["kv_compression"] or c1
        if E % (c1 * head_dim) or E % (c2 * head_dim) or c2 % c1:
            raise ValueError(f"attention.cca compressions {c1}/{c2} do not split model.d_model = {E} "
                             f"into whole heads of head_dim {head_dim}")
        g.update(cca, n_q_heads=E // (c1 * head_dim), n_kv_heads=E // (c2 * head_dim))
        if cca["convs"] not in (0, 1, 2):
            raise ValueError(f"attention.cca.convs = {cca['convs']}; allowed: 0, 1, 2")
        return g
    n_kv = att["n_heads"] if kind == "mha" else (att["n_kv_heads"] or att["n_heads"])
    if att["n_heads"] % n_kv:
        raise ValueError(f"attention.n_kv_heads = {n_kv} does not divide n_heads = {att['n_heads']}")
    g.update(n_q_heads=att["n_heads"], n_kv_heads=n_kv)
    if kind == "swa":
        g["window"] = att["swa"]["window"]
    return g


# ---- ops (lib/ops) -------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # Normalised in float32 (float64 for float64), returned in the weight's dtype.
        xc = x.to(_compute_dtype(x))
        normed = xc * torch.rsqrt(xc.square().mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.to(xc.dtype)).to(self.weight.dtype)


class Rotary:
    """RoPE on the first `dim` dims of each head, dim i paired with i + dim/2 (rotate-half)."""

    def __init__(self, dim, theta):
        self.dim, self.theta = dim, theta

    def apply(self, x, positions):
        """x [B, S, H, D]; positions [B or 1, S] absolute token positions."""
        if self.dim == 0:
            return x
        half = self.dim // 2
        # Angles in float64 as cca-train computes its tables, applied in float32 (float64).
        exponents = torch.arange(half, dtype=torch.float64, device=x.device) * (-2.0 / self.dim)
        inv_freq = torch.pow(torch.tensor(self.theta, dtype=torch.float64, device=x.device), exponents)
        angles = positions.to(torch.float64).unsqueeze(-1) * inv_freq  # [B, S, half]
        compute = _compute_dtype(x)
        cos = angles.cos().to(compute).unsqueeze(2)
        sin = angles.sin().to(compute).unsqueeze(2)
        rotated = x[..., : self.dim].to(compute)
        a, b = rotated[..., :half], rotated[..., half:]
        out = torch.cat([a * cos - b * sin, b * cos + a * sin], -1).to(x.dtype)
        return torch.cat([out, x[..., self.dim :]], -1) if self.dim < x.shape[-1] else out


def swiglu(x, w1, w3, w2):
    return F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)


def attend(q, k, v, scale, visible):
    """Softmax attention in float32 (float64): q [B, Hq, Sq, D], k [B, Hkv, Sk, D], v [B, Hkv, Sk, Dv];
    query head h reads kv head h // (Hq / Hkv); visible [B or 1, 1, Sq, Sk] (bool)."""
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    compute = _compute_dtype(q)
    scores = torch.matmul(q.to(compute), k.to(compute).transpose(-2, -1)) * scale
    # A query with nothing visible (a left-padding token) sees everything instead of giving NaN;
    # its output is never read by a real token.
    visible = visible | ~visible.any(-1, keepdim=True)
    probs = torch.softmax(scores.masked_fill(~visible, float("-inf")), -1)
    return torch.matmul(probs, v.to(compute)).to(q.dtype)


class AttentionInputs:
    """What every attention layer of one forward call shares: the new tokens' positions and which
    cached or new keys each query may see (causal, padding, window)."""

    def __init__(self, positions, key_padding, past_length, length):
        self.positions = positions  # [B or 1, S] absolute positions (RoPE)
        self.key_padding = key_padding  # [B, past + S] bool (True = a real token) or None
        self.past_length, self.length = past_length, length

    def visible(self, first_key, keys, window=None, device=None):
        """[B or 1, 1, S, keys] for keys at sequence indices first_key .. first_key + keys - 1."""
        query_index = torch.arange(self.past_length, self.past_length + self.length, device=device)
        key_index = torch.arange(first_key, first_key + keys, device=device)
        distance = query_index[:, None] - key_index[None, :]
        visible = distance >= 0
        if window is not None:
            visible = visible & (distance < window)
        visible = visible[None, None]
        if self.key_padding is not None:
            visible = visible & self.key_padding[:, None, None, first_key : first_key + keys]
        return visible


# ---- attention variants (lib/attention) --------------------------------------------------------


def _linear(in_features, out_features):
    return nn.Linear(in_features, out_features, bias=False)


class HeadAttention(nn.Module):
    """mha, gqa and swa: per-head q, k, v and o, optional RMSNorm on q and k, RoPE."""

    def __init__(self, g, theta, eps):
        super().__init__()
        self.n_q, self.n_kv, self.d = g["n_q_heads"], g["n_kv_heads"], g["head_dim"]
        self.window = g.get("window")
        self.rotary = Rotary(g["rope_dim"], theta)
        E = g["model_dim"]
        self.q_proj = _linear(E, self.n_q * self.d)
        self.k_proj = _linear(E, self.n_kv * self.d)
        self.v_proj = _linear(E, self.n_kv * self.d)
        self.o_proj = _linear(self.n_q * self.d, E)
        if g["qk_norm"]:
            self.q_norm, self.k_norm = RMSNorm(self.d, eps), RMSNorm(self.d, eps)

    def forward(self, x, inputs, state):
        B, S, _ = x.shape
        q = self.q_proj(x).view(B, S, self.n_q, self.d)
        k = self.k_proj(x).view(B, S, self.n_kv, self.d)
        v = self.v_proj(x).view(B, S, self.n_kv, self.d)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q = self.rotary.apply(q, inputs.positions).transpose(1, 2)
        k = self.rotary.apply(k, inputs.positions).transpose(1, 2)
        v = v.transpose(1, 2)
        first_key = inputs.past_length
        if state is not None and state.keys is not None:
            first_key -= state.keys.shape[2]
            k, v = torch.cat([state.keys, k], 2), torch.cat([state.values, v], 2)
        visible = inputs.visible(first_key, k.shape[2], self.window, x.device)
        o = attend(q, k, v, 1.0 / math.sqrt(self.d), visible)
        if state is not None:
            # A sliding window never needs more than its last window - 1 keys again.
            keep = k.shape[2] if self.window is None else min(self.window - 1, k.shape[2])
            state.keys, state.values = k[:, :, k.shape[2] - keep :], v[:, :, v.shape[2] - keep :]
        return self.o_proj(o.transpose(1, 2).reshape(B, S, self.n_q * self.d))


class LatentAttention(nn.Module):
    """mla: keys and values from one normalised latent c_kv per token, one RoPE key shared by all
    heads; the cache holds [c_kv ‖ k_rope] and is decompressed for each step."""

    def __init__(self, g, theta, eps):
        super().__init__()
        self.heads, self.nope, self.rope = g["n_q_heads"], g["nope_dim"], g["rope_dim"]
        self.v_dim, self.rank = g["v_head_dim"], g["kv_lora_rank"]
        self.rotary = Rotary(self.rope, theta)
        E, q_width = g["model_dim"], self.heads * (self.nope + self.rope)
        if g["q_lora_rank"] > 0:
            self.q_a_proj = _linear(E, g["q_lora_rank"])
            self.q_a_norm = RMSNorm(g["q_lora_rank"], eps)
            self.q_b_proj = _linear(g["q_lora_rank"], q_width)
        else:
            self.q_proj = _linear(E, q_width)
        self.kv_a_proj = _linear(E, self.rank + self.rope)
        self.kv_a_norm = RMSNorm(self.rank, eps)
        self.kv_b_proj = _linear(self.rank, self.heads * (self.nope + self.v_dim))
        self.o_proj = _linear(self.heads * self.v_dim, E)

    def forward(self, x, inputs, state):
        B, S, _ = x.shape
        if hasattr(self, "q_proj"):
            q = self.q_proj(x)
        else:
            q = self.q_b_proj(self.q_a_norm(self.q_a_proj(x)))
        q = q.view(B, S, self.heads, self.nope + self.rope)
        q_rope = self.rotary.apply(q[..., self.nope :], inputs.positions)
        q = torch.cat([q[..., : self.nope], q_rope], -1).transpose(1, 2)
        joint = self.kv_a_proj(x)
        c_kv = self.kv_a_norm(joint[..., : self.rank])
        k_rope = self.rotary.apply(joint[..., self.rank :].unsqueeze(2), inputs.positions).squeeze(2)
        latent = torch.cat([c_kv, k_rope], -1)  # [B, S, rank + rope]
        if state is not None:
            if state.keys is not None:
                latent = torch.cat([state.keys, latent], 1)
            state.keys = latent
        L = latent.shape[1]
        kv = self.kv_b_proj(latent[..., : self.rank]).view(B, L, self.heads, self.nope + self.v_dim)
        shared = latent[..., self.rank :].unsqueeze(2).expand(B, L, self.heads, self.rope)
        k = torch.cat([kv[..., : self.nope], shared], -1).transpose(1, 2)
        v = kv[..., self.nope :].transpose(1, 2)
        visible = inputs.visible(0, L, None, x.device)
        o = attend(q, k, v, 1.0 / math.sqrt(self.nope + self.rope), visible)
        return self.o_proj(o.transpose(1, 2).reshape(B, S, self.heads * self.v_dim))


class CompressedConvolutionalAttention(nn.Module):
    """cca and ccgqa (../shared/docs/cca-spec.md §2-§4, lib/attention/cca_reference.cpp): q and k
    down-projected into a latent, causal depthwise then per-head convs over q‖k, a q-k mean of
    the pre-conv projections, values half from the previous token, L2 normalisation to √d with a
    key temperature, partial RoPE, attention in the latent, up-projection."""

    def __init__(self, g, theta, eps):
        super().__init__()
        self.n_q, self.n_kv, self.d = g["n_q_heads"], g["n_kv_heads"], g["head_dim"]
        self.convs, self.qk_mean, self.value_shift = g["convs"], g["qk_mean"], g["value_shift"]
        self.exp_temperature = g["temperature"] == "exp"
        self.rotary = Rotary(g["rope_dim"], theta)
        E, width_q, width_k = g["model_dim"], self.n_q * self.d, self.n_kv * self.d
        if self.value_shift and width_k % 2:
            raise ValueError("attention.cca.value_shift splits the kv latent in halves; its width "
                             f"{width_k} must be even")
        self.linear_q, self.linear_k = _linear(E, width_q), _linear(E, width_k)
        if self.value_shift:
            self.val_proj1, self.val_proj2 = _linear(E, width_k // 2), _linear(E, width_k // 2)
        else:
            self.val_proj = _linear(E, width_k)
        M = width_q + width_k
        self.padding = 0
        if self.convs >= 1:
            k0, k1 = g["conv_kernel_0"], g["conv_kernel_1"]
            convs = [nn.Conv1d(M, M, k0, groups=M)]
            self.padding = k0 - 1
            if self.convs == 2:
                convs.append(nn.Conv1d(M, M, k1, groups=self.n_q + self.n_kv))
                self.padding += k1 - 1
            self.conv_qk = nn.ModuleList(convs)
        # Both forms start as the multiplier 1: exp(0), or raw 1.
        start = torch.zeros if self.exp_temperature else torch.ones
        self.temp = nn.Parameter(start(self.n_kv))
        self.o_proj = _linear(width_q, E)

    def key_multiplier(self):
        return self.temp.exp() if self.exp_temperature else self.temp

    def _convolve(self, z, state):
        """z [B, S, M] -> s [B, S, M]: the conv stack over z with the P-step history (zeros for a
        fresh sequence) prepended once, at the input of the stack."""
        B, S, M = z.shape
        history = state.conv if state is not None else None
        if history is None:
            history = z.new_zeros(B, M, self.padding)
        padded = torch.cat([history.to(z.dtype), z.transpose(1, 2)], 2)
        if state is not None:
            state.conv = padded[:, :, S:]
        for conv in self.conv_qk:
            padded = F.conv1d(padded, conv.weight, conv.bias, groups=conv.groups)
        return padded.transpose(1, 2)

    def _values(self, x, state):
        B, S, _ = x.shape
        if not self.value_shift:
            return self.val_proj(x).view(B, S, self.n_kv, self.d)
        current, delayed = self.val_proj1(x), self.val_proj2(x)
        if state is not None and state.shift is not None:
            before = state.shift.to(delayed.dtype).unsqueeze(1)
        else:
            before = delayed.new_zeros(B, 1, delayed.shape[-1])
        if state is not None:
            state.shift = delayed[:, -1]
        shifted = torch.cat([before, delayed[:, : S - 1]], 1)
        # The split is over flattened channels: with an odd kv head count it falls inside a head.
        return torch.cat([current, shifted], -1).view(B, S, self.n_kv, self.d)

    def _normalize(self, x, multiplier=None):
        scale = torch.rsqrt(x.square().sum(-1, keepdim=True) + CCA_NORM_EPS) * math.sqrt(self.d)
        if multiplier is not None:
            scale = scale * multiplier.to(x.dtype).view(1, 1, -1, 1)
        return x * scale

    def forward(self, x, inputs, state):
        B, S, _ = x.shape
        if inputs.key_padding is not None:
            # Padding tokens feed zeros to the convs and the value shift, as a fresh sequence does.
            x = x * inputs.key_padding[:, inputs.past_length :, None].to(x.dtype)
        q0, k0 = self.linear_q(x), self.linear_k(x)
        s = torch.cat([q0, k0], -1)
        if self.convs > 0:
            s = self._convolve(s, state)
        compute, width_q = _compute_dtype(x), self.n_q * self.d
        q = s[..., :width_q].reshape(B, S, self.n_q, self.d).to(compute)
        k = s[..., width_q:].reshape(B, S, self.n_kv, self.d).to(compute)
        if self.qk_mean:
            group = self.n_q // self.n_kv
            heads_q = q0.reshape(B, S, self.n_q, self.d).to(compute)
            heads_k = k0.reshape(B, S, self.n_kv, self.d).to(compute)
            mean_q = (heads_q + heads_k.repeat_interleave(group, 2)) * 0.5
            q = q + mean_q
            k = k + mean_q.unflatten(2, (self.n_kv, group)).mean(3)
        v = self._values(x, state).transpose(1, 2)
        q = self.rotary.apply(self._normalize(q), inputs.positions).to(x.dtype).transpose(1, 2)
        k = self.rotary.apply(self._normalize(k, self.key_multiplier()), inputs.positions)
        k = k.to(x.dtype).transpose(1, 2)
        if state is not None:
            if state.keys is not None:
                k, v = torch.cat([state.keys, k], 2), torch.cat([state.values, v], 2)
            state.keys, state.values = k, v
        o = attend(q, k, v, 1.0 / math.sqrt(self.d), inputs.visible(0, k.shape[2], None, x.device))
        return self.o_proj(o.transpose(1, 2).reshape(B, S, width_q))


ATTENTION_CLASSES = {
    "mha": HeadAttention,
    "gqa": HeadAttention,
    "swa": HeadAttention,
    "mla": LatentAttention,
    "cca": CompressedConvolutionalAttention,
    "ccgqa": CompressedConvolutionalAttention,
}


# ---- feed-forward layers (lib/model/ffn.cpp, lib/moe/moe.cpp) ----------------------------------


class SwiGlu(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(hidden, dim))
        self.w3 = nn.Parameter(torch.empty(hidden, dim))
        self.w2 = nn.Parameter(torch.empty(dim, hidden))

    def forward(self, x):
        return swiglu(x, self.w1, self.w3, self.w2)


class MixtureOfExperts(nn.Module):
    """Dropless top-k MoE: router in float32, softmax or sigmoid scores, experts chosen on the scores
    plus the selection bias (which never weights), optional renormalisation of the chosen scores,
    SwiGLU experts, shared experts always added (stacked along their hidden dim)."""

    def __init__(self, dim, moe, hidden):
        super().__init__()
        n, self.top_k = moe["n_experts"], moe["top_k"]
        self.sigmoid, self.renormalize = moe["score"] == "sigmoid", moe["renormalize"]
        if not 1 <= self.top_k <= n:
            raise ValueError(f"moe.top_k = {self.top_k} must be in [1, moe.n_experts = {n}]")
        self.router_weight = nn.Parameter(torch.empty(n, dim))
        self.expert_w1 = nn.Parameter(torch.empty(n, hidden, dim))
        self.expert_w3 = nn.Parameter(torch.empty(n, hidden, dim))
        self.expert_w2 = nn.Parameter(torch.empty(n, dim, hidden))
        if moe["shared_experts"] > 0:
            shared = moe["shared_experts"] * hidden
            self.shared_w1 = nn.Parameter(torch.empty(shared, dim))
            self.shared_w3 = nn.Parameter(torch.empty(shared, dim))
            self.shared_w2 = nn.Parameter(torch.empty(dim, shared))
        self.register_buffer("selection_bias", torch.zeros(n))

    def forward(self, x):
        tokens = x.reshape(-1, x.shape[-1])
        router = torch.promote_types(tokens.dtype, torch.float32)
        logits = F.linear(tokens.to(router), self.router_weight.to(router))
        scores = torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, -1)
        experts = torch.topk(scores + self.selection_bias.to(router), self.top_k, -1).indices
        gates = scores.gather(-1, experts)
        if self.renormalize:
            gates = gates / gates.sum(-1, keepdim=True)
        # Each token's k expert outputs, then summed in choice order as cca-train combines them.
        outputs = tokens.new_zeros(tokens.shape[0], self.top_k, tokens.shape[1])
        for e in torch.unique(experts).tolist():
            token, choice = torch.nonzero(experts == e, as_tuple=True)
            weights = self.expert_w1[e], self.expert_w3[e], self.expert_w2[e]
            outputs[token, choice] = swiglu(tokens[token], *weights)
        out = (outputs * gates.to(outputs.dtype).unsqueeze(-1)).sum(1)
        if hasattr(self, "shared_w1"):
            out = out + swiglu(tokens, self.shared_w1, self.shared_w3, self.shared_w2)
        return out.view(x.shape)


class Block(nn.Module):
    def __init__(self, sections, geometry, index):
        super().__init__()
        model, moe = sections["model"], sections["moe"]
        E, eps, theta = model["d_model"], model["norm_eps"], sections["attention"]["rope_theta"]
        self.attention_norm = RMSNorm(E, eps)
        self.attention = ATTENTION_CLASSES[geometry["kind"]](geometry, theta, eps)
        self.ffn_norm = RMSNorm(E, eps)
        if is_moe_layer(moe, index):
            self.moe = MixtureOfExperts(E, moe, moe["expert_hidden"] or dense_ffn_hidden(model))
        else:
            self.ffn = SwiGlu(E, dense_ffn_hidden(model))

    def forward(self, residual, inputs, state):
        attended = self.attention(self.attention_norm(residual), inputs, state)
        residual = residual + attended.to(residual.dtype)
        normed = self.ffn_norm(residual)
        out = self.moe(normed) if hasattr(self, "moe") else self.ffn(normed)
        return residual + out.to(residual.dtype)


# ---- decode state ---------------------------------------------------------------------------------


class CcaTrainLayerCache(CacheLayerMixin):
    """One layer's decode state: `keys`/`values` [B, H, L, d] (mla: `keys` is the latent
    [B, L, r_kv + rope], swa: only the last window - 1), CCA's `conv` [B, M, P] and `shift`
    [B, W_k/2], and `length`, the tokens seen so far."""

    is_croppable = False
    supports_early_init = False
    _STATE = ("keys", "values", "conv", "shift")

    def __init__(self):
        super().__init__()
        self.conv = self.shift = None
        self.length = 0

    def lazy_initialization(self, key_states, value_states):
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        raise NotImplementedError("cca-train layers update their own decode state")

    def get_mask_sizes(self, query_length):
        return self.length + query_length, 0

    def get_seq_length(self):
        return self.length

    def get_max_length(self):
        return -1

    def _map(self, fn):
        for name in self._STATE:
            if getattr(self, name) is not None:
                setattr(self, name, fn(getattr(self, name)))

    def reset(self):
        for name in self._STATE:
            setattr(self, name, None)
        self.length, self.is_initialized = 0, False

    def reorder_cache(self, beam_idx):
        self._map(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats):
        self._map(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices):
        self._map(lambda t: t[indices])

    def crop(self, tokens_to_remove):
        # The conv and value-shift states cannot be rolled back to an earlier token.
        raise NotImplementedError("cca-train caches cannot be cropped (no assisted or speculative "
                                  "decoding)")


class CcaTrainCache(Cache):
    def __init__(self, num_layers):
        super().__init__(layers=[CcaTrainLayerCache() for _ in range(num_layers)])


# ---- the model --------------------------------------------------------------------------------------


class CcaTrainPreTrainedModel(PreTrainedModel):
    config_class = CcaTrainConfig
    base_model_prefix = ""
    _no_split_modules = ["Block"]
    supports_gradient_checkpointing = False
    # cca-train keeps the router and its selection bias in fp32 when the model is cast (bias steps
    # of ~1e-3 vanish in bf16).
    _keep_in_fp32_modules_strict = ["router_weight", "selection_bias"]

    def _init_weights(self, module):
        # cca-train's initialisation (normal(init_std), output projections depth-scaled, convs
        # as the identity, temperature 1), for models built from a config rather than loaded.
        if isinstance(module, nn.Linear):
            return  # initialised by the layer that owns it, which knows its role
        model = self.config.cca_train_config["model"]
        std = model["init_std"]
        out_std = std / math.sqrt(2 * model["n_layers"]) if model["depth_scaled_init"] else std
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, RMSNorm):
                init.ones_(param)
            elif isinstance(module, nn.Conv1d):
                self._init_conv(module, name, param)
            elif name == "temp":
                init.zeros_(param) if module.exp_temperature else init.ones_(param)
            elif name in ("w2", "expert_w2", "shared_w2"):
                init.normal_(param, mean=0.0, std=out_std)
            else:
                init.normal_(param, mean=0.0, std=std)
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                init.normal_(child.weight, mean=0.0, std=out_std if name == "o_proj" else std)
        if isinstance(module, MixtureOfExperts):
            init.zeros_(module.selection_bias)

    @staticmethod
    def _init_conv(conv, name, param):
        if name == "bias":
            init.zeros_(param)
            return
        taps = param.shape[-1]
        identity = torch.zeros_like(param)
        per_group = param.shape[1]
        eye = torch.eye(per_group, dtype=param.dtype, device=param.device)
        identity[..., taps - 1] = eye.repeat(param.shape[0] // per_group, 1)
        init.copy_(param, identity)


class CcaTrainForCausalLM(CcaTrainPreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        if config.cca_train_config is None:
            raise ValueError("config.json has no cca_train_config (the run's resolved model, "
                             "attention and moe sections); export the model with cca-train")
        sections = config.cca_train_config
        model = sections["model"]
        geometry = attention_geometry(sections)
        self.embedding = nn.Parameter(torch.empty(model["vocab_size"], model["d_model"]))
        self.blocks = nn.ModuleList(Block(sections, geometry, i) for i in range(model["n_layers"]))
        self.final_norm = RMSNorm(model["d_model"], model["norm_eps"])
        if not model["tie_embeddings"]:
            self.lm_head = nn.Parameter(torch.empty(model["vocab_size"], model["d_model"]))
        self.post_init()

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, *args, **kwargs):
        # The decode state of every variant lives in CcaTrainCache, never in a DynamicCache.
        if generation_config.cache_implementation not in (None, "dynamic"):
            raise ValueError(f"cache_implementation={generation_config.cache_implementation!r} is "
                             "not supported: cca-train models keep their own growing CcaTrainCache")
        if model_kwargs.get("cache") is None and generation_config.use_cache is not False:
            model_kwargs["cache"] = CcaTrainCache(len(self.blocks))

    def _inputs(self, cache, attention_mask, position_ids, batch, length, device):
        past = cache.get_seq_length() if cache is not None else 0
        key_padding = None
        if attention_mask is not None:
            if attention_mask.dim() != 2 or attention_mask.shape != (batch, past + length):
                raise ValueError(f"attention_mask must be 2-d [batch, past + new tokens] = "
                                 f"[{batch}, {past + length}], got {tuple(attention_mask.shape)}")
            if not bool(attention_mask.all()):
                key_padding = attention_mask.to(device=device, dtype=torch.bool)
        if position_ids is None:
            if key_padding is not None:
                # Left padding: each sequence counts its positions from its first real token.
                position_ids = (key_padding.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
            else:
                position_ids = torch.arange(past, past + length, device=device).unsqueeze(0)
        return AttentionInputs(position_ids.to(device), key_padding, past, length)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0,
                past_key_values=None, **kwargs):
        cache = cache if cache is not None else past_key_values
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if cache is not None and not isinstance(cache, CcaTrainCache):
            raise TypeError(f"cca-train models keep their decode state in CcaTrainCache, got "
                            f"{type(cache).__name__}; pass cache=None to get one")
        if cache is None and use_cache and labels is None:
            cache = CcaTrainCache(len(self.blocks))
        hidden = inputs_embeds if inputs_embeds is not None else F.embedding(input_ids, self.embedding)
        B, S = hidden.shape[:2]
        inputs = self._inputs(cache, attention_mask, position_ids, B, S, hidden.device)
        residual = hidden.float() if hidden.dtype != torch.float64 else hidden
        for i, block in enumerate(self.blocks):
            residual = block(residual, inputs, cache.layers[i] if cache is not None else None)
        if cache is not None:
            for layer in cache.layers:
                layer.length += S
                layer.is_initialized = True
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            residual = residual[:, -logits_to_keep:]
        head = self.lm_head if hasattr(self, "lm_head") else self.embedding
        logits = F.linear(self.final_norm(residual), head)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache if use_cache else None)


__all__ = ["CcaTrainForCausalLM", "CcaTrainPreTrainedModel", "CcaTrainCache"]
