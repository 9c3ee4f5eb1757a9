"""tokenizer.json end to end: a GPT-2-style byte-level BPE (trained here with `tokenizers`) ->
cca-data prepare -> cca-train (a tiny model, a few CPU steps) -> cca-generate, which must find
the tokenizer through the shards' manifest whether data.train names the dataset folder or its
shard files, and print valid UTF-8 that starts with the prompt; then `cca-train export --format hf`,
whose tokenizer transformers' AutoTokenizer loads and runs as `tokenizers` does.

usage: bpe_generate.py BIN_DIR"""

import glob
import os
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

CONFIG = """model: {{d_model: 64, n_layers: 2, vocab_size: 576, ffn_hidden: 128}}
attention: {{kind: gqa, n_heads: 4, n_kv_heads: 2}}
train: {{steps: 6, seq_len: 32, micro_batch_size: 4, grad_accum: 1, eval_every: 6, device: cpu,
        seed: 5}}
schedule: {{warmup_steps: 2}}
optim: {{lr: 3.0e-3}}
checkpoint: {{every: 6, keep_last: 1}}
logging: {{every: 1, progress_bar: false}}
data: {{train: '{train}', val: '{val}', val_tokens: 256, prefetch: 2}}
run: {{dir: '{run}'}}
"""


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, **kwargs)
    if result.returncode != 0:
        sys.stderr.write(result.stderr.decode("utf-8", "replace"))
        raise SystemExit(f"{args[0]} exited with {result.returncode}")
    return result.stdout


def main():
    bin_dir = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    docs = sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    with tempfile.TemporaryDirectory() as work:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train(docs, trainers.BpeTrainer(
            vocab_size=512, special_tokens=["<|endoftext|>"], show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tokenizer = os.path.join(work, "tokenizer.json")
        tok.save(tokenizer)
        data = os.path.join(work, "data")
        run([os.path.join(bin_dir, "cca-data"), "prepare", "--input", *docs, "--tokenizer",
             tokenizer, "--output", data, "--text-unit", "paragraph", "--val-fraction", "0.05",
             "--no-progress"])
        run([os.path.join(bin_dir, "cca-data"), "inspect", "--verify", data])
        specs = {"folder": (data, data),
                 "files": (os.path.join(data, "train_*.bin"), os.path.join(data, "val_*.bin"))}
        for name, (train, val) in specs.items():
            run_dir = os.path.join(work, "run_" + name)
            config = os.path.join(work, name + ".yaml")
            with open(config, "w") as f:
                f.write(CONFIG.format(train=train, val=val, run=run_dir))
            run([os.path.join(bin_dir, "cca-train"), "--config", config])
            out = run([os.path.join(bin_dir, "cca-generate"), "--checkpoint", run_dir, "--prompt",
                       "The tokenizer \u00e9", "--max-new-tokens", "24", "--device", "cpu"])
            text = out.decode("utf-8")  # raises on invalid UTF-8
            # The log's lines come first; the text is the rest.
            text = text[text.find("The tokenizer"):]
            if not text.startswith("The tokenizer \u00e9"):
                raise SystemExit(f"data.train as {name}: output {text!r} lacks the prompt")
            print(f"data.train as {name}: {text!r}")
        check_hf_export(bin_dir, os.path.join(work, "run_folder"), tok, work)


def check_hf_export(bin_dir, run_dir, tok, work):
    """The export carries the tokenizer.json with a tokenizer_config.json naming its special
    tokens: transformers' AutoTokenizer loads it and encodes as `tokenizers` does."""
    from transformers import AutoTokenizer
    out = os.path.join(work, "hf")
    run([os.path.join(bin_dir, "cca-train"), "export", "--checkpoint", run_dir, "--format", "hf",
         "--out", out])
    hf = AutoTokenizer.from_pretrained(out)
    if hf.eos_token != "<|endoftext|>" or not hf.is_fast:
        raise SystemExit(f"exported tokenizer: eos {hf.eos_token!r}, fast {hf.is_fast}")
    text = "The tokenizer \u00e9 reads   tokenizer.json <|endoftext|> 2026"
    want = tok.encode(text).ids
    got = hf(text, add_special_tokens=True)["input_ids"]
    if got != want:
        raise SystemExit(f"exported tokenizer: ids {got} != tokenizers' {want}")
    print(f"export: AutoTokenizer {type(hf).__name__}, eos {hf.eos_token!r}, {len(got)} ids equal")


if __name__ == "__main__":
    main()
