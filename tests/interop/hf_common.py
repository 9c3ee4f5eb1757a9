"""Shared helpers of the Hugging Face interop tests: a tiny corpus and tokenizer made with
cca-data, tiny CPU runs of cca-train, and running our binaries."""
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file


class Tools:
    def __init__(self, bin_dir):
        self.bin_dir = os.path.abspath(bin_dir)
        self.work = tempfile.mkdtemp(prefix="cca-hf-")

    def run(self, program, *args, expect_ok=True):
        result = subprocess.run([os.path.join(self.bin_dir, program), *map(str, args)],
                                capture_output=True, text=True, cwd=self.work)
        if expect_ok and result.returncode != 0:
            sys.exit(f"FAIL {program} {' '.join(map(str, args))}: exit {result.returncode}\n"
                     f"{result.stdout}\n{result.stderr}")
        return result

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def make_data(self):
        """A corpus of short sentences, a 320-piece BPE tokenizer with byte fallback, shards."""
        rng = random.Random(3)
        words = ("the a moon sun star light night day sea river stone tree bird song wind fire "
                 "cold warm old new small great").split()
        with open(self.path("corpus.txt"), "w") as f:
            for _ in range(2000):
                f.write(" ".join(rng.choice(words) for _ in range(rng.randint(5, 15))) + ".\n")
        self.run("cca-data", "tokenizer", "train", "-i", "corpus.txt", "-o", "tok",
                 "--vocab-size", 320, "--byte-fallback")
        self.run("cca-data", "prepare", "-i", "corpus.txt", "-t", "tok.model", "-o", "data",
                 "--text-unit", "line", "--no-progress")

    def train(self, name, yaml_body, steps=10):
        """A tiny CPU run of `steps` steps; returns its folder."""
        config = self.path(f"{name}.yaml")
        with open(config, "w") as f:
            f.write(yaml_body + f"""
train: {{steps: {steps}, seq_len: 32, micro_batch_size: 4, eval_every: 0, device: cpu, seed: 5}}
schedule: {{warmup_steps: 1}}
optim: {{lr: 1.0e-2}}
checkpoint: {{every: {steps}}}
logging: {{every: {steps}, progress_bar: false}}
data: {{train: 'data/train_*.bin', val: 'data/val_*.bin', val_tokens: 0}}
run: {{dir: '{name}'}}
""")
        self.run("cca-train", "--config", config)
        return self.path(name)

    def checkpoint_weights(self, run_dir):
        """The tensors of a run's newest checkpoint (numpy, exact)."""
        folder = os.path.join(run_dir, "checkpoints")
        newest = sorted(d for d in os.listdir(folder) if d.startswith("step_"))[-1]
        return load_file(os.path.join(folder, newest, "model.safetensors"))

    def our_logits(self, checkpoint, ids):
        out = self.path("logits.safetensors")
        self.run("cca-generate", "--checkpoint", checkpoint, "--device", "cpu",
                 "--token-ids", ",".join(map(str, ids)), "--dump-logits", out)
        tensors = load_file(out)
        return tensors["input_ids"], tensors["logits"]

    def our_greedy(self, checkpoint, ids, new_tokens):
        result = self.run("cca-generate", "--checkpoint", checkpoint, "--device", "cpu",
                          "--token-ids", ",".join(map(str, ids)), "--print-ids",
                          "--temperature", 0, "--max-new-tokens", new_tokens)
        return [int(t) for t in result.stdout.split()]


def same_tensors(a, b):
    """Names that differ between two {name: array} maps (missing, shape, dtype or any bit)."""
    problems = [f"missing {n}" for n in sorted(set(a) ^ set(b))]
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
            problems.append(f"{name} differs")
    return problems


def check(condition, message):
    if not condition:
        sys.exit("FAIL " + message)
    print("ok   " + message)
