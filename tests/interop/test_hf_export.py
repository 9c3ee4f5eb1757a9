"""cca-train export --format hf, loaded by transformers: for each variant a tiny CPU model trained
a few steps, exported, loaded with AutoModelForCausalLM (the stock class we expect, or our remote
code); its fp32 logits must equal cca-generate's (max abs <= 1e-4), greedy generation must give
the same ids, and importing the export back must give bit-identical weights.
Usage: test_hf_export.py BIN_DIR VARIANT..."""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_common import Tools, check, same_tensors

HEADS = "model: {d_model: 64, n_layers: 3, vocab_size: 320, ffn_hidden: 96}\n"
MLA = ("model: {d_model: 64, n_layers: 3, vocab_size: 320, ffn_hidden: 96, norm_eps: 1.0e-6}\n"
       "attention: {kind: mla, n_heads: 4, mla: {q_lora_rank: 32, kv_lora_rank: 24, "
       "qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 12}}\n")
VARIANTS = {
    # name: (config, expected class)
    "mha": (HEADS + "attention: {kind: mha, n_heads: 4, rope_theta: 500000.0}\n"
            "model_extra: {}\n", "LlamaForCausalLM"),
    "gqa": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n", "LlamaForCausalLM"),
    "gqa_qk_norm": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\n",
                    "Qwen3ForCausalLM"),
    "rope_half": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_fraction: 0.5}\n",
                  "Phi3ForCausalLM"),
    "mla": (MLA, "DeepseekV3ForCausalLM"),
    "moe_softmax": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\n"
                    "moe: {n_experts: 4, top_k: 2, expert_hidden: 48, first_dense_layers: 1}\n",
                    "Qwen3MoeForCausalLM"),
    "moe_mixtral": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n"
                    "moe: {n_experts: 4, top_k: 2, expert_hidden: 48, first_dense_layers: 0}\n",
                    "MixtralForCausalLM"),
    "moe_sigmoid": (MLA + "moe: {n_experts: 4, top_k: 2, expert_hidden: 48, first_dense_layers: 1,"
                    " score: sigmoid, shared_experts: 1, bias_update_rate: 0.01}\n",
                    "DeepseekV3ForCausalLM"),
    # attention.rope_scaling as rope_parameters (yarn, linear) or an enlarged base (ntk). Base 10
    # and original length 16 put YaRN's ramp inside the 8 pairs of a 16-dim head.
    "gqa_yarn": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_theta: 10.0, "
                 "rope_scaling: yarn, rope_scaling_factor: 2, rope_original_max_seq_len: 16}\n",
                 "LlamaForCausalLM"),
    "qwen3_linear": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true, "
                     "rope_scaling: linear, rope_scaling_factor: 2.5}\n", "Qwen3ForCausalLM"),
    "llama_ntk": (HEADS + "attention: {kind: mha, n_heads: 4, rope_scaling: ntk, "
                  "rope_scaling_factor: 4}\n", "LlamaForCausalLM"),
    # No stock class: our remote code (lib/interop/hf_remote), loaded with trust_remote_code.
    "cca": (HEADS + "attention: {kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}\n",
            "CcaTrainForCausalLM"),
    "ccgqa": (HEADS + "attention: {kind: ccgqa, n_heads: 4, n_kv_heads: 2, rope_fraction: 0.5,"
              " cca: {q_compression: 2}}\n", "CcaTrainForCausalLM"),
    "swa": (HEADS + "attention: {kind: swa, n_heads: 4, n_kv_heads: 2, swa: {window: 8}}\n",
            "CcaTrainForCausalLM"),
    "moe_softmax_shared": (HEADS + "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n"
                           "moe: {n_experts: 4, top_k: 2, expert_hidden: 48, shared_experts: 1}\n",
                           "CcaTrainForCausalLM"),
}

PROMPT = "the moon and the old river"


def compare_with_transformers(tools, name, checkpoint, export, expected_class):
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32,
                                                 trust_remote_code=True)
    model.eval()
    check(type(model).__name__ == expected_class,
          f"{name}: loads as {type(model).__name__} (expected {expected_class})")
    tokenizer = AutoTokenizer.from_pretrained(export, trust_remote_code=True)
    ids = tokenizer(PROMPT).input_ids
    our_ids, our_logits = tools.our_logits(checkpoint, ids)
    # The same ids as our own tokenizer gives for the text prompt (cca-generate adds BOS first).
    tools.run("cca-generate", "--checkpoint", checkpoint, "--device", "cpu",
                         "--prompt", PROMPT, "--dump-logits", tools.path("text.safetensors"))
    ours_text = load_file(tools.path("text.safetensors"))["input_ids"][0].tolist()
    check(ours_text == ids, f"{name}: the exported tokenizer encodes like ours ({ids})")
    with torch.no_grad():
        hf_logits = model(torch.tensor([ids])).logits.numpy()
    diff = float(np.abs(hf_logits - our_logits).max())
    check(diff <= 1e-4, f"{name}: logits match cca-generate's (max abs diff {diff:.2e})")
    stops = [tokenizer.eos_token_id, tokenizer.bos_token_id]
    ours = tools.our_greedy(checkpoint, ids, 12)
    with torch.no_grad():
        generated = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                                   eos_token_id=stops, pad_token_id=stops[0])
    theirs = generated[0, len(ids):].tolist()
    check(theirs == ours, f"{name}: greedy ids match ({ours})")
    return diff


def import_round_trip(tools, name, run_dir, export):
    back = tools.path(f"{name}-imported")
    tools.run("cca-train", "import", "--from", export, "--out", back)
    problems = same_tensors(tools.checkpoint_weights(run_dir), tools.checkpoint_weights(back))
    check(not problems, f"{name}: import of the export gives bit-identical weights {problems}")


def shards_refusals_and_bf16(tools, name, run_dir):
    """Sharding with its index, --dtype bf16, and the refusals (checked on the first variant)."""
    sharded = tools.path(f"{name}-sharded")
    tools.run("cca-train", "export", "--checkpoint", run_dir, "--format", "hf", "--out", sharded,
              "--max-shard-size", "40KB")
    index = json.load(open(os.path.join(sharded, "model.safetensors.index.json")))
    files = sorted(set(index["weight_map"].values()))
    check(len(files) > 1 and not os.path.exists(os.path.join(sharded, "model.safetensors")),
          f"{name}: --max-shard-size 40KB writes {len(files)} shards and the index")
    model = AutoModelForCausalLM.from_pretrained(sharded, dtype=torch.float32, trust_remote_code=True)
    ids = [1, 5, 77, 140, 200, 33]
    _, ours = tools.our_logits(run_dir, ids)
    with torch.no_grad():
        diff = float(np.abs(model(torch.tensor([ids])).logits.numpy() - ours).max())
    check(diff <= 1e-4, f"{name}: the sharded export computes the same logits ({diff:.2e})")
    again = tools.run("cca-train", "export", "--checkpoint", run_dir, "--format", "hf",
                      "--out", sharded, expect_ok=False)
    check(again.returncode != 0 and "--force" in again.stderr,
          f"{name}: a non-empty --out is refused without --force")
    half = tools.path(f"{name}-bf16")
    tools.run("cca-train", "export", "--checkpoint", run_dir, "--format", "hf", "--out", half,
              "--dtype", "bf16")
    model = AutoModelForCausalLM.from_pretrained(half, trust_remote_code=True)
    state = model.state_dict()
    weight = next(state[k] for k in state
                  if k.endswith("embed_tokens.weight") or k.split(".")[-1] == "embedding")
    ours = torch.from_numpy(tools.checkpoint_weights(run_dir)["embedding"]).to(torch.bfloat16)
    check(weight.dtype == torch.bfloat16 and torch.equal(weight, ours),
          f"{name}: --dtype bf16 writes the bf16 rounding of our weights")


def warm_start(tools, name, run_dir, export):
    """init.from an HF folder: step 0 starts from its weights; a model of another shape lists
    every tensor that does not fit."""
    ok = tools.run("cca-train", "--config", tools.path(f"{name}.yaml"), "--set",
                   f"run.dir={name}-warm", "--set", f"init.from={export}", "--set",
                   "train.steps=1")
    check("init        weights from" in ok.stdout, f"{name}: init.from loads an HF folder")
    wrong = tools.run("cca-train", "--config", tools.path(f"{name}.yaml"), "--set",
                      f"run.dir={name}-wrong", "--set", f"init.from={export}", "--set",
                      "model.ffn_hidden=64", "--set", "train.steps=1", expect_ok=False)
    mismatches = wrong.stderr.count("shape mismatch:")
    named = "mlp.gate_proj" in wrong.stderr or "ffn.w1" in wrong.stderr  # stock or remote names
    check(wrong.returncode != 0 and mismatches >= 3 and named,
          f"{name}: init.from into another FFN width lists each mismatch ({mismatches})")


def refusal(tools, name, run_dir, target, expected):
    result = tools.run("cca-train", "export", "--checkpoint", run_dir, "--format", "hf", "--out",
                       tools.path(f"{name}-{target}"), "--hf-target", target, expect_ok=False)
    check(result.returncode != 0 and expected in result.stderr and
          not os.path.exists(tools.path(f"{name}-{target}")),
          f"{name}: --hf-target {target} is refused naming '{expected}'")


REFUSALS = {
    "gqa_qk_norm": ("llama", "attention.qk_norm = true"),
    "rope_half": ("llama", "attention.rope_fraction = 0.5"),
    "moe_mixtral": ("qwen3_moe", "attention.qk_norm = false"),
    "moe_sigmoid": ("qwen3_moe", "attention.kind = mla"),
}


def main():
    tools = Tools(sys.argv[1])
    tools.make_data()
    for position, name in enumerate(sys.argv[2:]):
        config, expected = VARIANTS[name]
        run_dir = tools.train(name, config.replace("model_extra: {}\n", ""))
        export = tools.path(f"{name}-hf")
        tools.run("cca-train", "export", "--checkpoint", run_dir, "--format", "hf", "--out", export)
        compare_with_transformers(tools, name, run_dir, export, expected)
        import_round_trip(tools, name, run_dir, export)
        if position == 0:
            shards_refusals_and_bf16(tools, name, run_dir)
            warm_start(tools, name, run_dir, export)
        if name in REFUSALS:
            refusal(tools, name, run_dir, *REFUSALS[name])


if __name__ == "__main__":
    main()
