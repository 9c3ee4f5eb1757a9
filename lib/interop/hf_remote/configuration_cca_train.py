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
"""Configuration of a cca-train model exported for transformers as remote code.

`cca_train_config` holds the run's resolved `model`, `attention` and `moe` sections exactly as
cca-train's config.yaml names them; everything the model needs is read from there, so the
modeling file (modeling_cca_train.py) computes what cca-train computes. The usual top-level fields
(hidden_size, ...) are kept for tools that read them; they are set from the sections.
"""

import copy

from transformers import PreTrainedConfig

# Defaults of the keys the decoder reads (cca-train's docs/config-keys.txt). An export writes
# every key; these fill in a hand-written config that leaves some out.
_DEFAULTS = {
    "model": {
        "d_model": 768,
        "n_layers": 12,
        "vocab_size": 50304,
        "ffn_hidden": 0,
        "ffn_multiple_of": 256,
        "max_seq_len": 0,
        "norm_eps": 1e-5,
        "tie_embeddings": True,
        "init_std": 0.02,
        "depth_scaled_init": True,
    },
    "attention": {
        "kind": "mha",
        "n_heads": 12,
        "n_kv_heads": 0,
        "head_dim": 0,
        "qk_norm": False,
        "rope_theta": 10000.0,
        "rope_fraction": 1.0,
        "mla": {
            "q_lora_rank": None,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
        },
        "cca": {
            "q_compression": 4,
            "kv_compression": 0,
            "convs": 2,
            "conv_kernel_0": 2,
            "conv_kernel_1": 2,
            "qk_mean": True,
            "value_shift": True,
            "temperature": "exp",
        },
        "swa": {"window": 4096},
    },
    "moe": {
        "n_experts": 0,
        "top_k": 2,
        "expert_hidden": 0,
        "shared_experts": 0,
        "first_dense_layers": 1,
        "every": 1,
        "score": "softmax",
        "renormalize": True,
    },
}

ATTENTION_KINDS = ("mha", "gqa", "mla", "cca", "ccgqa", "swa")
_CHOICES = {
    ("attention", "kind"): ATTENTION_KINDS,
    ("attention", "cca", "temperature"): ("exp", "raw"),
    ("moe", "score"): ("softmax", "sigmoid"),
}


def _merge(defaults, given, path):
    """`given` over `defaults`, recursively; nested sections must stay sections."""
    merged = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if isinstance(defaults.get(key), dict):
            if not isinstance(value, dict):
                raise ValueError(f"cca_train_config.{path}{key} must be a mapping, got {value!r}")
            merged[key] = _merge(defaults[key], value, f"{path}{key}.")
        else:
            merged[key] = value
    return merged


def resolve_cca_train_config(sections):
    """The model/attention/moe sections with defaults filled in and the choices checked."""
    if not isinstance(sections, dict):
        raise ValueError(f"cca_train_config must be a mapping of sections, got {type(sections).__name__}")
    resolved = {name: _merge(_DEFAULTS[name], sections.get(name), f"{name}.") for name in _DEFAULTS}
    for path, allowed in _CHOICES.items():
        value = resolved
        for part in path:
            value = value[part]
        if value not in allowed:
            raise ValueError(
                f"cca_train_config.{'.'.join(path)} = {value!r} is not supported; allowed: "
                f"{', '.join(allowed)}"
            )
    return resolved


class CcaTrainConfig(PreTrainedConfig):
    model_type = "cca_train"

    vocab_size: int = 50304
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 1024
    tie_word_embeddings: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    use_cache: bool = True
    cca_train_config: dict | None = None

    def __post_init__(self, **kwargs):
        if self.cca_train_config is not None:
            self.cca_train_config = resolve_cca_train_config(self.cca_train_config)
            # The sections are what the model computes with; the usual fields follow them.
            model, attention = self.cca_train_config["model"], self.cca_train_config["attention"]
            self.vocab_size = model["vocab_size"]
            self.hidden_size = model["d_model"]
            self.num_hidden_layers = model["n_layers"]
            self.num_attention_heads = attention["n_heads"]
            self.tie_word_embeddings = model["tie_embeddings"]
            if model["max_seq_len"] > 0:
                self.max_position_embeddings = model["max_seq_len"]
        super().__post_init__(**kwargs)


__all__ = ["CcaTrainConfig", "resolve_cca_train_config"]
