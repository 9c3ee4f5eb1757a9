#!/usr/bin/env python3
"""Encoding speed of our byte-level BPE (cca-data tokenize) against Hugging Face `tokenizers` on
one thread, same tokenizer.json, same texts; also checks that both give the same ids.

    scripts/interop-env.sh   # once: the pinned `tokenizers`
    $VENV/bin/python scripts/bench_tokenizer.py --tokenizer T.json --corpus data/builtin/corpus.jsonl

The corpus is JSONL with a "text" field (data/builtin/corpus.jsonl from `cca-data builtin`).
`tokenizers` runs encode() per text (the way cca-data encodes documents) and encode_batch() with
RAYON_NUM_THREADS=1. Wall and CPU seconds are both printed: on a busy machine CPU time is the
steadier figure. docs/benchmarks.md records the results."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ours(bin_dir, tokenizer, corpus):
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "ids.jsonl")
        log = subprocess.run([os.path.join(bin_dir, "cca-data"), "tokenize", "--tokenizer",
                              tokenizer, "--input", corpus, "--output", out],
                             check=True, capture_output=True, text=True)
        text = log.stdout + log.stderr
        match = re.search(r"took ([0-9.]+) s \(([0-9.]+) s CPU\)", text)
        if not match:
            raise SystemExit(f"cca-data tokenize printed no timing:\n{text}")
        with open(out, encoding="utf-8") as f:
            ids = [json.loads(line)["ids"] for line in f]
        return ids, float(match.group(1)), float(match.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--bin", default="build/bin")
    args = parser.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    tok = Tokenizer.from_file(args.tokenizer)

    rows = []
    ids, wall, cpu = ours(args.bin, args.tokenizer, args.corpus)
    rows.append(("cca-data tokenize", wall, cpu))
    theirs, wall, cpu = timed(lambda: [tok.encode(t, add_special_tokens=False).ids for t in texts])
    rows.append(("tokenizers encode()", wall, cpu))
    _, wall, cpu = timed(lambda: tok.encode_batch(texts, add_special_tokens=False))
    rows.append(("tokenizers encode_batch(), 1 thread", wall, cpu))

    tokens = sum(len(x) for x in ids)
    print(f"{args.tokenizer}: {len(texts)} texts, {mb:.1f} MB, {tokens} tokens; "
          f"identical ids: {ids == theirs}")
    for name, wall, cpu in rows:
        print(f"  {name:38s} {mb / wall:7.2f} MB/s wall ({wall:6.2f} s)   "
              f"{mb / cpu:7.2f} MB/s CPU ({cpu:6.2f} s)")
    if ids != theirs:
        sys.exit(1)


if __name__ == "__main__":
    main()
