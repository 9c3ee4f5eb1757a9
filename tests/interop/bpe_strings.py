"""Varied test strings for byte-level BPE: Unicode scripts, combining marks, whitespace runs
(\\r\\n, \\t, NEL, ideographic space), digit runs, emoji with ZWJ and skin tones, contractions in
every case, control characters and special tokens embedded. Seeded, so every run checks the same
strings."""

import random

WORDS = [
    "the", "cat", "tokenizer", "Hello", "WORLD", "naïve", "café", "über", "straße", "I", "a",
    "don't", "it's", "WE'LL", "They'Re", "you'VE", "I'm", "she'd", "O'Neil", "rock'n'roll",
    "it’s", "l'été", "'s", "'t", "'S", "'ll", "'D", "ſ", "Ǆ", "ﬁ", "K",
]
SCRIPTS = [
    "Привет мир", "Ελληνικά", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "你好，世界", "日本語のテキスト", "カタカナ", "한국어 텍스트", "ქართული", "Հայերեն",
    "ᚠᛇᚻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ﾊﾝｶｸ", "Ａｂｃ１２３", "ℕ ℤ ℚ ℝ", "Ⅻ ⅻ ½ ¾ ²³",
]
COMBINING = ["e\u0301", "a\u0308\u0323", "n\u0303", "\u0301", "Z\u0351\u0352\u0353", "ᄀ\u1161\u11a8",
             "\u0915\u094d\u0937"]
EMOJI = ["👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "👍🏽", "🇫🇷", "😀", "❤\ufe0f", "1\ufe0f\u20e3",
         "🧑\u200d💻", "\u200d", "\u200b", "\ufeff"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\r", "\u00a0", "\u3000", "\u2028",
          "\u2029", "\x85", "\u180e", "\x0b", "\x0c", "\u2009", "\u202f", " \t \n", "      "]
DIGITS = ["0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "٣٤٥",
          "१२३", "²", "0x1F", "v2.0.1", "2026-12-07"]
PUNCT = [".", ",", "!", "?", "...", "--", "—", "(", ")", "[1913 Webster]", "\"", "'", "''",
         "#", "$%^&*", "<", ">", "<|", "|>", "`code`", "@user", "\\", "/", "~", "¿¡", "«»"]
CONTROL = ["\x00", "\x01", "\x1b[31m", "\x1c", "\x7f", "\ufffd"]


def fragment(rng, specials):
    pools = [WORDS, WORDS, WORDS, SCRIPTS, COMBINING, EMOJI, SPACES, SPACES, DIGITS, PUNCT,
             CONTROL]
    if specials:
        pools.append(specials)
    pool = rng.choice(pools)
    return rng.choice(pool)


def make_strings(count, specials=(), seed=1):
    """`count` strings; `specials` are embedded in some of them."""
    rng = random.Random(seed)
    out = ["", " ", "a", "\n", "hello world", "Hello  world  ", "   leading", "trailing   ",
           "x" * 300, " " * 300, "9" * 50, "ab" * 200, "\r\n" * 20, "你好" * 100]
    out += [s for s in specials]
    out += [s + " " + s for s in specials]
    while len(out) < count:
        n = rng.randint(1, 12)
        joiner = rng.choice(["", " ", "", " "])
        out.append(joiner.join(fragment(rng, list(specials)) for _ in range(n)))
    return out


def training_text(paths, seed=2, repeats=3):
    """Repository text plus the generated strings, so every kind of piece gets merges."""
    chunks = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            chunks.append(f.read())
    chunks += make_strings(3000, seed=seed) * repeats
    return chunks
