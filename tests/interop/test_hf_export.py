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
}

PROMPT = "the moon and the old river"


def compare_with_transformers(tools, name, checkpoint, export, expected_class):
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32,
                                                 trust_remote_code=True)
    model.eval()
    check(type(model).__name__ == expected_class,
          f"{name}: loads as {type(model).__name__} (expected {expected_class})")
    tokenizer = AutoTokenizer.from_pretrained(export)
    ids = tokenizer(PROMPT).input_ids
    our_ids, our_logits = tools.our_logits(checkpoint, ids)
    # The same ids as our own tokenizer gives for the text prompt (cca-generate adds BOS first).
    text_ids = tools.run("cca-generate", "--checkpoint", checkpoint, "--device", "cpu",
                         "--prompt", PROMPT, "--dump-logits", tools.path("text.safetensors"))
    from safetensors.numpy import load_file
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


def main():
    tools = Tools(sys.argv[1])
    tools.make_data()
    for name in sys.argv[2:]:
        config, expected = VARIANTS[name]
        run_dir = tools.train(name, config.replace("model_extra: {}\n", ""))
        export = tools.path(f"{name}-hf")
        tools.run("cca-train", "export", "--checkpoint", run_dir, "--format", "hf", "--out", export)
        compare_with_transformers(tools, name, run_dir, export, expected)
        import_round_trip(tools, name, run_dir, export)


if __name__ == "__main__":
    main()
