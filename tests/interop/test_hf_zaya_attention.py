"""Pins our remote-code CCA/CCGQA attention to the one transformers ships (models/zaya,
ZayaAttention), which nobody here wrote: the same weights and inputs must give the same outputs,
for whole sequences and token by token through each implementation's own decode state.

Weights come from tiny trained cca-train checkpoints (cca and ccgqa, every layer), then from
random weights over the settings both implementations have: conv kernel sizes, rope fraction,
rope theta, temperature exp/raw (ZAYA stores the multiplier exp(β) itself), kv groups.
Not comparable, because ZAYA has no such setting: attention.cca.convs 0 or 1, qk_mean false,
value_shift false. Usage: test_hf_zaya_attention.py BIN_DIR
"""

import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_remote_fixtures as fx  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.cache_utils import DynamicCache  # noqa: E402
from transformers.models.zaya.configuration_zaya import ZayaConfig  # noqa: E402
from transformers.models.zaya.modeling_zaya import ZayaAttention, ZayaRotaryEmbedding  # noqa: E402

TOLERANCE = 1e-5  # fp32, max abs over the attention outputs
SEQ = 12


def zaya_twin(ours, geometry, theta, fraction):
    """A ZayaAttention with our layer's weights."""
    config = ZayaConfig(
        vocab_size=16, hidden_size=geometry["model_dim"], num_hidden_layers=1,
        num_attention_heads=geometry["n_q_heads"], num_key_value_heads=geometry["n_kv_heads"],
        head_dim=geometry["head_dim"], cca_time0=geometry["conv_kernel_0"],
        cca_time1=geometry["conv_kernel_1"], layer_types=["hybrid"], num_experts=2,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
        rope_parameters={"hybrid": {"rope_type": "default", "rope_theta": theta,
                                    "partial_rotary_factor": fraction}})
    config._attn_implementation = "eager"
    zaya = ZayaAttention(config, layer_idx=0).eval()
    mapping = {
        "qkv_proj.q_proj.weight": ours.linear_q.weight,
        "qkv_proj.k_proj.weight": ours.linear_k.weight,
        "qkv_proj.v_proj_current.weight": ours.val_proj1.weight,
        "qkv_proj.v_proj_delayed.weight": ours.val_proj2.weight,
        "qkv_proj.conv_qk_depthwise.weight": ours.conv_qk[0].weight,
        "qkv_proj.conv_qk_depthwise.bias": ours.conv_qk[0].bias,
        "qkv_proj.conv_qk_grouped.weight": ours.conv_qk[1].weight,
        "qkv_proj.conv_qk_grouped.bias": ours.conv_qk[1].bias,
        # Our temp is β under temperature: exp; ZAYA keeps the multiplier exp(β) itself.
        "qk_norm.temp": ours.key_multiplier(),
        "o_proj.weight": ours.o_proj.weight,
    }
    state = zaya.state_dict()
    if set(state) != set(mapping):
        raise AssertionError(f"ZayaAttention's parameters changed: {sorted(state)}")
    zaya.load_state_dict({name: value.detach().clone() for name, value in mapping.items()})
    return zaya, config


def zaya_outputs(zaya, config, x, step_by_step):
    rotary = ZayaRotaryEmbedding(config)
    if not step_by_step:
        positions = torch.arange(x.shape[1]).unsqueeze(0)
        causal = torch.full((x.shape[1], x.shape[1]), float("-inf")).triu(1)[None, None]
        embeddings = rotary(x, positions, "hybrid")
        return zaya(x, {"causal": causal, "conv": None}, None, embeddings)[0]
    cache, outputs = DynamicCache(config=config), []
    for t in range(x.shape[1]):
        embeddings = rotary(x, torch.tensor([[t]]), "hybrid")
        outputs.append(zaya(x[:, t : t + 1], {"causal": None, "conv": None}, cache, embeddings)[0])
    return torch.cat(outputs, 1)


def our_outputs(module, remote, x, step_by_step):
    if not step_by_step:
        inputs = remote.AttentionInputs(torch.arange(x.shape[1]).unsqueeze(0), None, 0, x.shape[1])
        return module(x, inputs, None)
    state, outputs = remote.CcaTrainLayerCache(), []
    for t in range(x.shape[1]):
        outputs.append(module(x[:, t : t + 1], remote.AttentionInputs(torch.tensor([[t]]), None, t, 1), state))
    return torch.cat(outputs, 1)


def compare(label, module, remote, geometry, theta, fraction):
    zaya, config = zaya_twin(module, geometry, theta, fraction)
    x = torch.randn(2, SEQ, geometry["model_dim"], generator=torch.Generator().manual_seed(3))
    worst = 0.0
    with torch.no_grad():
        reference = zaya_outputs(zaya, config, x, step_by_step=False)
        for ours_steps, zaya_steps in ((False, False), (True, False), (True, True)):
            zaya_out = reference if not zaya_steps else zaya_outputs(zaya, config, x, True)
            diff = (our_outputs(module, remote, x, ours_steps) - zaya_out).abs().max().item()
            worst = max(worst, diff)
            if not diff <= TOLERANCE:
                raise AssertionError(f"{label}: ours ({'decode' if ours_steps else 'whole'}) vs ZAYA "
                                     f"({'decode' if zaya_steps else 'whole'}) differ by {diff:.3g}")
    print(f"ok   {label}: max abs {worst:.2e} (whole, decode vs whole, decode vs decode)")


def trained_layers(bin_dir, work, name):
    _, checkpoint = fx.train(bin_dir, work, name)
    folder, _ = fx.export_folder(bin_dir, checkpoint, os.path.join(work, "hf-" + name))
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    remote = sys.modules[type(model).__module__]
    sections = model.config.cca_train_config
    geometry = remote.attention_geometry(sections)
    attention = sections["attention"]
    for i, block in enumerate(model.blocks):
        yield (f"trained {name} layer {i}", block.attention, remote, geometry,
               attention["rope_theta"], attention["rope_fraction"])


def random_layers(remote):
    # (query heads, kv heads, head_dim, k0, k1, rope fraction, theta, temperature)
    cases = [(2, 2, 16, 1, 1, 1.0, 1e4, "exp"), (4, 2, 8, 2, 3, 0.5, 5e6, "raw"),
             (4, 1, 8, 3, 1, 0.25, 1e4, "exp"), (4, 4, 8, 4, 4, 0.0, 1e4, "raw"),
             (8, 2, 4, 1, 2, 0.5, 500.0, "exp")]
    torch.manual_seed(0)
    for n_q, n_kv, d, k0, k1, fraction, theta, temperature in cases:
        rope_dim = int(fraction * d)
        geometry = dict(kind="ccgqa", model_dim=32, qk_norm=False, n_q_heads=n_q,
                        n_kv_heads=n_kv, head_dim=d, rope_dim=rope_dim, conv_kernel_0=k0,
                        conv_kernel_1=k1, temperature=temperature, convs=2, qk_mean=True,
                        value_shift=True)
        module = remote.CompressedConvolutionalAttention(geometry, theta, 1e-5).eval()
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
        label = f"random {n_q}q/{n_kv}kv d{d} k{k0}/{k1} rope {fraction} θ {theta:g} temp {temperature}"
        yield label, module, remote, geometry, theta, fraction


def main():
    bin_dir = sys.argv[1]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        fx.write_dataset(os.path.join(work, "data"))
        checks, remote = [], None
        for name in ("cca", "ccgqa"):
            for check in trained_layers(bin_dir, work, name):
                checks.append(check)
                remote = check[2]
        checks.extend(random_layers(remote))
        for check in checks:
            compare(*check)
    print(f"{len(checks)} attention layers agree with ZayaAttention")


if __name__ == "__main__":
    main()
