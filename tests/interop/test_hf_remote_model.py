"""A tiny cca-train model of one kind, trained a few CPU steps, loaded by transformers through
our remote code (AutoModelForCausalLM, trust_remote_code=True), must compute what cca-train
computes: the run's final validation loss, cca-generate's fp32 logits (max abs <= 1e-4), the same
logits again through the decode cache (prefill, then token by token), and cca-generate's greedy
continuations, alone and as a left-padded batch.
Usage: test_hf_remote_model.py BIN_DIR KIND   (KIND: a key of hf_remote_fixtures.VARIANTS)
"""

import os
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_remote_fixtures as fx  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

LOGITS_TOLERANCE = 1e-4
STEPS = 12  # at lr 2e-2 enough to follow the data's chains, so greedy ids vary
NEW_TOKENS = 12


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok  ", message)


def validation_loss(model, val_tokens, seq_len=32, count=512):
    """cca-train's evaluation: the first count // seq_len windows of seq_len + 1 tokens."""
    rows = torch.tensor([val_tokens[i * seq_len : (i + 1) * seq_len + 1] for i in range(count // seq_len)])
    logits = model(rows[:, :-1], use_cache=False).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), rows[:, 1:].reshape(-1)).item()


def cca_generate(bin_dir, run_dir, prompts, *flags):
    command = [os.path.join(bin_dir, "cca-generate"), "--checkpoint", run_dir, "--device", "cpu"]
    for prompt in prompts:
        command += ["--token-ids", ",".join(map(str, prompt))]
    return fx.run(command + list(flags))


def check_logits(model, bin_dir, run_dir, prompt, work):
    path = os.path.join(work, "logits.safetensors")
    cca_generate(bin_dir, run_dir, [prompt], "--dump-logits", path)
    theirs = load_file(path)
    ids = torch.tensor([prompt])
    check(torch.equal(theirs["input_ids"], ids), "cca-generate dumped the prompt's ids")
    whole = model(ids, use_cache=False).logits
    diff = (whole - theirs["logits"]).abs().max().item()
    check(diff <= LOGITS_TOLERANCE, f"logits equal cca-generate's: max abs {diff:.2e}")
    # Through the cache: a prefill of 5 tokens, one chunk of 3, then one token at a time.
    output = model(ids[:, :5], use_cache=True)
    cache, pieces = output.cache, [output.logits]
    for start, end in [(5, 8)] + [(t, t + 1) for t in range(8, len(prompt))]:
        output = model(ids[:, start:end], cache=cache, use_cache=True)
        pieces.append(output.logits)
    diff = (torch.cat(pieces, 1) - whole).abs().max().item()
    check(diff <= LOGITS_TOLERANCE, f"cached prefill + decode equals one pass: max abs {diff:.2e}")


def check_greedy(model, bin_dir, run_dir, prompts):
    printed = cca_generate(bin_dir, run_dir, prompts, "--print-ids", "--temperature", "0",
                           "--max-new-tokens", str(NEW_TOKENS))
    theirs = [[int(t) for t in line.split()] for line in printed.strip().splitlines()]
    check(len(theirs) == len(prompts), f"cca-generate printed one line per prompt: {printed!r}")
    for prompt, expected in zip(prompts, theirs):
        out = model.generate(torch.tensor([prompt]), max_new_tokens=len(expected), do_sample=False,
                             pad_token_id=0)
        ours = out[0, len(prompt) :].tolist()
        check(ours == expected, f"greedy ids equal cca-generate's: {ours} vs {expected}")
    # The same prompts as one left-padded batch.
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
    batched = [row[width : width + len(e)] for row, e in zip(out.tolist(), theirs)]
    check(batched == theirs, f"left-padded batch generates the same ids: {batched} vs {theirs}")


def main():
    bin_dir, kind = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        val = fx.write_dataset(os.path.join(work, "data"))
        run_dir, checkpoint = fx.train(bin_dir, work, kind, steps=STEPS, lr=2e-2)
        folder, made = fx.export_folder(bin_dir, checkpoint, os.path.join(work, "hf"))
        print("folder:", made)
        model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
        check(type(model).__name__ == "CcaTrainForCausalLM", f"loaded {type(model).__name__}")
        with torch.no_grad():
            loss, expected = validation_loss(model, val), fx.final_val_loss(run_dir)
            check(abs(loss - expected) <= 1e-5, f"validation loss equals cca-train's: {loss:.6f} vs {expected:.6f}")
            check_logits(model, bin_dir, run_dir, val[100:120], work)
        check_greedy(model, bin_dir, run_dir, [val[300:309], val[500:503]])
    print(f"{kind}: the remote-code model computes what cca-train computes")


if __name__ == "__main__":
    main()
