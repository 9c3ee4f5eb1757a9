#!/usr/bin/env python3
"""Writes GPT-2's tokenizer.json (Hugging Face format, byte-level BPE, 50257 tokens) from the
GPT-2 BPE ranks that OpenAI ships in the `openai-whisper` package on PyPI
(whisper/assets/gpt2.tiktoken; MIT licence, Copyright (c) 2022 OpenAI; the vocabulary itself is
GPT-2's, github.com/openai/gpt-2, modified MIT licence). Standard library only.

    python3 scripts/gpt2_tokenizer.py [--output PATH] [--tiktoken FILE]

Without --tiktoken the sdist openai-whisper==20250625 is fetched with `pip download --no-deps`
(no install) and the file is checked against its SHA-256. The output defaults to
$VENV/share/cca-train/gpt2/tokenizer.json for the running interpreter's venv, where the interop
tests look for it (scripts/interop-env.sh runs this).

A tiktoken file lists "base64(token bytes) rank" per line: rank = GPT-2 id, the first 256 are the
single bytes, and token 256 + i is merge i. Each merge is recovered by running BPE on the token's
bytes with the merges ranked below it, which must leave exactly two parts."""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

WHISPER = "openai-whisper==20250625"
MEMBER = "whisper/assets/gpt2.tiktoken"
SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's byte -> character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def fetch_tiktoken(work):
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "-d", work, WHISPER],
                   check=True)
    archives = [f for f in os.listdir(work) if f.endswith(".tar.gz")]
    if len(archives) != 1:
        raise SystemExit(f"expected one sdist of {WHISPER} in {work}, found {archives}")
    with tarfile.open(os.path.join(work, archives[0])) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(MEMBER))
        return tar.extractfile(member).read()


def read_ranks(data):
    ranks = {}
    for number, line in enumerate(data.decode("ascii").splitlines(), 1):
        if not line.strip():
            continue
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise SystemExit("the ranks are not 0..N-1")
    return ranks


def split_by_merges(ranks, token, below):
    """BPE on `token`'s bytes using only merges ranked below `below`."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, best_rank = None, below
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best is None:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


def build(ranks):
    chars = bytes_to_unicode()
    spell = lambda raw: "".join(chars[b] for b in raw)  # noqa: E731
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    merges = []
    for token, rank in by_rank:
        if len(token) == 1:
            continue
        parts = split_by_merges(ranks, token, rank)
        if len(parts) != 2:
            raise SystemExit(f"token {token!r} (rank {rank}) is not one merge of lower ranks")
        merges.append([spell(parts[0]), spell(parts[1])])
    vocab = {spell(token): rank for token, rank in by_rank}
    eot = len(vocab)
    vocab[END_OF_TEXT] = eot
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eot, "content": END_OF_TEXT, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": {"type": "ByteLevel", **byte_level},
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.path.join(sys.prefix, "share", "cca-train", "gpt2", "tokenizer.json")
    parser.add_argument("--output", default=default)
    parser.add_argument("--tiktoken", help="gpt2.tiktoken already at hand (skips the download)")
    args = parser.parse_args()
    if args.tiktoken:
        with open(args.tiktoken, "rb") as f:
            data = f.read()
    else:
        with tempfile.TemporaryDirectory() as work:
            data = fetch_tiktoken(work)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"gpt2.tiktoken has SHA-256 {digest}, expected {SHA256}")
    tokenizer = build(read_ranks(data))
    if len(tokenizer["model"]["vocab"]) != 50257 or len(tokenizer["model"]["merges"]) != 50000:
        raise SystemExit("expected GPT-2's 50257 tokens and 50000 merges")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    partial = args.output + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    os.replace(partial, args.output)
    print(f"wrote {args.output}: 50257 tokens, 50000 merges (GPT-2, from {WHISPER})")


if __name__ == "__main__":
    main()
