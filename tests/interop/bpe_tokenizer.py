"""Our byte-level BPE (cca-data tokenize) against Hugging Face `tokenizers` on the same
tokenizer.json files: identical ids for thousands of varied strings, and identical decoded text,
which for tokenizers without a normalizer or stripping tokens is the input itself.

The tokenizers are trained here (nothing is downloaded): GPT-2-style ByteLevel, the same with the
older "a b" merge strings, a Llama-3-style Split regex + ignore_merges + special tokens +
TemplateProcessing, a Qwen-style NFC normalizer with non-special, normalized and stripping added
tokens and add_prefix_space, and one with every Split behavior (String and Regex patterns, invert,
Digits). When scripts/gpt2_tokenizer.py has made GPT-2's real tokenizer.json
(CCA_GPT2_TOKENIZER, or its default place in the venv), that one is checked as well.

usage: bpe_tokenizer.py BIN_DIR"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unicodedata

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers, AddedToken

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_strings  # noqa: E402

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
STRINGS = 4000


def train(pre_tokenizer, specials, vocab_size, corpus, normalizer=None):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return tok


def gpt2_style(corpus):
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"], 3000, corpus)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok, ["<|endoftext|>"]


def with_string_merges(tok):
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    return Tokenizer.from_str(json.dumps(data))


def llama3_style(corpus):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|reserved_special_token_0|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok = train(pre, specials, 4000, corpus)
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(data))
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    return tok, specials


def qwen_style(corpus):
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False),
    ])
    tok = train(pre, specials, 3000, corpus, normalizer=normalizers.NFC())
    tok.add_tokens([AddedToken("tokenizer", normalized=True),
                    AddedToken("Hello", single_word=True, normalized=False),
                    AddedToken("[MASK]", lstrip=True, rstrip=True, special=True),
                    AddedToken("café", normalized=True)])
    return tok, specials + ["[MASK]", "café"]


def split_behaviors(corpus):
    """Every Split behavior, String and Regex patterns, invert, Digits, and GPT-2's regex after."""
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\p{N}"), behavior="contiguous"),
        pre_tokenizers.Split("-", behavior="removed"),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="merged_with_previous", invert=True),
        pre_tokenizers.Split(Regex(r"\s"), behavior="isolated", invert=True),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return train(pre, ["<|endoftext|>"], 2000, corpus), ["<|endoftext|>"]


def run_ours(bin_dir, tokenizer_path, strings, work):
    texts = os.path.join(work, "texts.jsonl")
    out = os.path.join(work, "ours.jsonl")
    with open(texts, "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    subprocess.run([os.path.join(bin_dir, "cca-data"), "tokenize", "--tokenizer", tokenizer_path,
                    "--input", texts, "--output", out], check=True)
    with open(out, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def compare(name, bin_dir, tok, strings, work, round_trip):
    path = os.path.join(work, name + ".json")
    tok.save(path)
    ours = run_ours(bin_dir, path, strings, work)
    assert len(ours) == len(strings), f"{name}: {len(ours)} results for {len(strings)} strings"
    failures = []
    for s, got in zip(strings, ours):
        ids = tok.encode(s, add_special_tokens=False).ids
        if got["ids"] != ids:
            failures.append(f"ids of {s!r}: ours {got['ids'][:24]} tokenizers {ids[:24]}")
            continue
        text = tok.decode(ids, skip_special_tokens=False)
        if got["decoded"] != text:
            failures.append(f"decode of {s!r}: ours {got['decoded']!r} tokenizers {text!r}")
        elif round_trip(s) and text != s:
            failures.append(f"round trip of {s!r} gave {text!r}")
    tokens = sum(len(r["ids"]) for r in ours)
    print(f"{name}: {len(strings)} strings, {tokens} tokens, {len(failures)} mismatches")
    for line in failures[:10]:
        print("  " + line)
    return not failures


def gpt2_real_path():
    default = os.path.join(sys.prefix, "share", "cca-train", "gpt2", "tokenizer.json")
    return os.environ.get("CCA_GPT2_TOKENIZER", default)


def main():
    bin_dir = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    corpus = bpe_strings.training_text(sorted(glob.glob(os.path.join(root, "docs", "*.md"))))
    ok = True
    with tempfile.TemporaryDirectory() as work:
        gpt2, gpt2_specials = gpt2_style(corpus)
        strings = bpe_strings.make_strings(STRINGS, gpt2_specials, seed=11)
        ok &= compare("gpt2_style", bin_dir, gpt2, strings, work, lambda s: True)
        ok &= compare("gpt2_string_merges", bin_dir, with_string_merges(gpt2), strings[:500], work,
                      lambda s: True)

        llama, llama_specials = llama3_style(corpus)
        strings = bpe_strings.make_strings(STRINGS, llama_specials, seed=12)
        ok &= compare("llama3_style", bin_dir, llama, strings, work, lambda s: True)

        qwen, qwen_specials = qwen_style(corpus)
        strings = bpe_strings.make_strings(STRINGS, qwen_specials + ["tokenizer", "Hello"], seed=13)
        # NFC changes some strings, [MASK] swallows the spaces around it, and the byte-level
        # prefix space is kept by the decoder: compare with `tokenizers`' decoding only.
        ok &= compare("qwen_style", bin_dir, qwen, strings, work, lambda s: False)

        splits, split_specials = split_behaviors(corpus)
        strings = bpe_strings.make_strings(STRINGS, split_specials, seed=15)
        # "removed" drops the hyphens: compare with `tokenizers`' decoding only.
        ok &= compare("split_behaviors", bin_dir, splits, strings, work, lambda s: "-" not in s)

        real = gpt2_real_path()
        if os.path.exists(real):
            strings = bpe_strings.make_strings(STRINGS, ["<|endoftext|>"], seed=14)
            ok &= compare("gpt2_real", bin_dir, Tokenizer.from_file(real), strings, work,
                          lambda s: True)
        else:
            print(f"gpt2_real: {real} not made (scripts/gpt2_tokenizer.py); not checked")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
