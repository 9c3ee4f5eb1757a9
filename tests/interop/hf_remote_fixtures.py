"""Shared pieces of the remote-code tests: a tiny token dataset, tiny cca-train runs on the CPU,
remote-code folders made from their checkpoints, and cca-train's own numbers to compare with.

Folders come from `cca-train export --format hf --hf-target remote-code` when the binary has it;
until then the test lays one out itself as the export contract says (model.safetensors with our
tensor names, config.json with cca_train_config and auto_map, the two .py files). Either way the
tests load it as a user would: AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True).
"""

import atexit
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile

import yaml

# transformers copies remote code into a modules cache (read when it is imported); a private one
# per test process keeps parallel tests and the user's ~/.cache out of each other's way.
_MODULES = tempfile.mkdtemp(prefix="cca-hf-modules-")
atexit.register(shutil.rmtree, _MODULES, ignore_errors=True)
os.environ["HF_MODULES_CACHE"] = _MODULES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REMOTE_CODE = os.path.join(REPO, "lib", "interop", "hf_remote")
VOCAB = 128
TINY_MODEL = "model: {d_model: 64, n_layers: 2, vocab_size: 128, ffn_hidden: 96, tie_embeddings: %s}\n"

# One tiny model per attention variant (and MoE routers); each a few settings off the defaults so
# the less common paths (untied head, QK-norm, partial RoPE, q latent, window) run somewhere.
VARIANTS = {
    "mha": "attention: {kind: mha, n_heads: 4, rope_fraction: 0.5}\n",
    "gqa": "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true, rope_theta: 500.0}\n",
    "mla": "attention: {kind: mla, n_heads: 4, mla: {q_lora_rank: 24, kv_lora_rank: 16, "
    "qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 12}}\n",
    "cca": "attention: {kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}\n",
    "ccgqa": "attention: {kind: ccgqa, n_heads: 8, rope_fraction: 0.5, "
    "cca: {q_compression: 2, kv_compression: 4, conv_kernel_0: 3, temperature: raw}}\n",
    "cca_ablated": "attention: {kind: cca, n_heads: 4, cca: {q_compression: 2, convs: 1, conv_kernel_0: 3, "
    "qk_mean: false, value_shift: false}}\n",
    "swa": "attention: {kind: swa, n_heads: 4, n_kv_heads: 2, swa: {window: 5}}\n",
    "moe_softmax": "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n"
    "moe: {n_experts: 4, top_k: 2, expert_hidden: 32, shared_experts: 1, first_dense_layers: 1}\n",
    "moe_sigmoid": "attention: {kind: ccgqa, n_heads: 4, cca: {q_compression: 1, kv_compression: 2, convs: 0}}\n"
    "moe: {n_experts: 4, top_k: 2, expert_hidden: 32, first_dense_layers: 0, score: sigmoid, "
    "bias_update_rate: 0.01}\n",
}
UNTIED = {"mla", "swa", "moe_sigmoid"}


class _Loader(yaml.SafeLoader):
    """YAML as cca-train writes it: 1e-05 is a float (PyYAML's YAML 1.1 wants a dot in it)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?$|^[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$"
               r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def read_yaml(path):
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def _shard(path, count, seed):
    """An llm.c-format shard of mostly-deterministic successor chains (t -> 7t + 3 mod V)."""
    rng, token, tokens = random.Random(seed), 1, []
    for _ in range(count):
        token = rng.randrange(VOCAB) if rng.random() < 0.2 else (7 * token + 3) % VOCAB
        tokens.append(token)
    header = [20240520, 1, count, VOCAB] + [0] * 252
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header) + struct.pack(f"<{count}H", *tokens))
    return tokens


def write_dataset(folder):
    os.makedirs(folder, exist_ok=True)
    _shard(os.path.join(folder, "train_000000.bin"), 20000, 1)
    return _shard(os.path.join(folder, "val_000000.bin"), 2000, 2)


def run(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def train(bin_dir, work, name, steps=6, lr=1e-2):
    """Trains the tiny `name` model for a few CPU steps; returns (run dir, checkpoint dir)."""
    data, run_dir = os.path.join(work, "data"), os.path.join(work, "run-" + name)
    config = os.path.join(work, name + ".yaml")
    with open(config, "w") as f:
        f.write(TINY_MODEL % ("false" if name in UNTIED else "true") + VARIANTS[name])
        f.write(f"train: {{steps: {steps}, seq_len: 32, micro_batch_size: 4, eval_every: 0, device: cpu,"
                f" seed: 5}}\nschedule: {{warmup_steps: 1}}\noptim: {{lr: {lr}}}\n"
                f"checkpoint: {{every: {steps}}}\nlogging: {{every: {steps}, progress_bar: false}}\n"
                f"data: {{train: '{data}/train_*.bin', val: '{data}/val_*.bin', val_tokens: 512,"
                f" prefetch: 1}}\nrun: {{dir: '{run_dir}'}}\n")
    run([os.path.join(bin_dir, "cca-train"), "--config", config, "--log-level", "warn"])
    return run_dir, os.path.join(run_dir, "checkpoints", f"step_{steps:08d}")


def final_val_loss(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r["val_loss"] for r in records if r.get("kind") == "eval"][-1]


def export_folder(bin_dir, checkpoint, folder):
    """A remote-code folder for `checkpoint`: cca-train's own export when it has one, else made
    here. Returns the folder and which way it was made."""
    train_binary = os.path.join(bin_dir, "cca-train")
    if "--hf-target" in run([train_binary, "export", "--help"]):
        run([train_binary, "export", "--checkpoint", checkpoint, "--out", folder, "--format", "hf",
             "--hf-target", "remote-code"])
        return folder, "cca-train export --format hf"
    return remote_code_folder(checkpoint, folder), "laid out by the test (no cca-train export --format hf)"


def remote_code_folder(checkpoint, folder):
    """A remote-code export folder from a checkpoint, laid out as the export contract says."""
    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(checkpoint, "model.safetensors"), folder)
    for name in ("configuration_cca_train.py", "modeling_cca_train.py"):
        shutil.copy(os.path.join(REMOTE_CODE, name), folder)
    resolved = read_yaml(os.path.join(checkpoint, "config.yaml"))
    model = resolved["model"]
    config = {
        "model_type": "cca_train",
        "architectures": ["CcaTrainForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_cca_train.CcaTrainConfig",
            "AutoModelForCausalLM": "modeling_cca_train.CcaTrainForCausalLM",
        },
        "vocab_size": model["vocab_size"],
        "hidden_size": model["d_model"],
        "num_hidden_layers": model["n_layers"],
        "num_attention_heads": resolved["attention"]["n_heads"],
        "max_position_embeddings": model["max_seq_len"] or resolved["train"]["seq_len"],
        "tie_word_embeddings": model["tie_embeddings"],
        "bos_token_id": None,
        "eos_token_id": None,
        "torch_dtype": "float32",
        "cca_train_config": {k: resolved[k] for k in ("model", "attention", "moe")},
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return folder
