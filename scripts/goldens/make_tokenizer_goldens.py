#!/usr/bin/env python3
"""Tokenizer fixtures and goldens for tests/model/tokenizer_golden_test.cc.

Reference: Hugging Face `tokenizers`, pinned:
    pip install tokenizers==0.23.3        (never install or upgrade torch for this)

Usage:
    make_tokenizer_goldens.py train           # retrain the small tokenizers of
                                              # tests/data/tokenizer/*, then write their goldens
    make_tokenizer_goldens.py goldens DIR...  # (re)write DIR/tokenizer_goldens.json from
                                              # DIR/tokenizer.json, e.g. for a model fixture
    make_tokenizer_goldens.py                 # goldens for every tests/data/tokenizer/* dir

The golden test scans tests/data for every directory holding tokenizer.json and
tokenizer_goldens.json, so a new fixture needs only the second command.

Goldens, for each test string: the ids `tokenizers` produces (with and without special
tokens), the words of its pre-tokenizer, and decode() of the ids (keeping and skipping special
tokens). Decode-only cases: byte tokens that cut UTF-8 sequences, invalid byte sequences,
random ids, ids past the vocabulary, with `tokenizers`' lossy decode as expected text. bos/eos
ids come from tokenizer_config.json next to tokenizer.json when there is one.
"""
import argparse
import glob
import json
import os
import random
import sys
import unicodedata

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data", "tokenizer")
PINNED = "0.23.3"

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# A word that only ignore_merges can produce as one token (added to the llama3-style vocab).
IGNORE_MERGES_WORD = "\u0120zyxwvutsrq"  # "Ġzyxwvutsrq" = " zyxwvutsrq" byte-level mapped

MIXED = ("The quick brown fox jumps over the lazy dog. It's 2024-06-01, 12:34:56 UTC; "
         "café/naïve, 中文测试，日本語のテキスト、한국어 텍스트, Привет мир, 😀👍🏽👨‍👩‍👧‍👦 "
         "x = [1, 22, 333, 4444]; if (a && b) { return c->d; }\n\tTabbed\r\nCRLF   spaces  ")

ACCENTS = "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m \u00fcber S\u00e3o Paulo"

TEST_STRINGS = [
    ("empty", ""),
    ("single_space", " "),
    ("single_newline", "\n"),
    ("hello", "Hello world"),
    ("space_runs", "a  b   c    d\t\te   \t f"),
    ("leading_trailing", "   leading and trailing   "),
    ("only_spaces", "        "),
    ("tabs", "\tindented\n\t\tdouble\ttab\t"),
    ("crlf", "line one\r\nline two\r\n\r\nline four\r"),
    ("newlines", "a\n\nb\n\n\n\nc\n"),
    ("spaces_around_newlines", "x   \n   y  \n\n  z \n \n"),
    ("digits", "0 1 12 123 1234 12345 3.14159 -42 1e10 0x1F 007"),
    ("long_number", "3141592653589793238462643383279502884197169399375105820974944592307816"
                    "4062862089986280348253421170679"),
    ("punctuation", "Hello, world! How's it going? (fine); [ok] {x: 1} <tag/> a->b && c||d "
                    "... !!! ??? --- ___ ~~~ @#$%^&*"),
    ("code", "def f(x):\n    return x**2 + 1  # comment\n\nif __name__ == '__main__':\n"
             "\tprint(f(3))\n"),
    ("contractions_lower", "it's we're they've I'm you'll he'd can't 's 'd"),
    ("contractions_upper", "IT'S WE'RE THEY'VE I'M YOU'LL HE'D CAN'T 'S 'LL"),
    ("contractions_mixed", "It'S We'Re They'vE i'M"),
    ("apostrophes", "rock 'n' roll, 'quoted', O'Neil\u2019s \u2019s ''s"),
    ("accents_nfc", ACCENTS),
    ("accents_nfd", unicodedata.normalize("NFD", ACCENTS)),
    ("combining_marks", "e\u0301\u0301 \u0301x a\u0308\u0304 \u1e9b\u0323"),
    ("hangul_nfd", unicodedata.normalize("NFD", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8")),
    ("cjk", "中文测试：你好，世界！日本語のテキスト、カタカナ。한국어 텍스트"),
    ("emoji", "I \u2764\ufe0f emoji 😀😃😄 👍🏽 ✅"),
    ("emoji_zwj", "family 👨\u200d👩\u200d👧\u200d👦 and 🏳\ufe0f\u200d🌈 and 👩🏾\u200d💻"),
    ("flags", "🇫🇷🇯🇵🇺🇸"),
    ("chat_template", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n"
                      "Hello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi!"),
    ("special_adjacent", "<|endoftext|><|endoftext|>text<|endoftext|>"),
    ("special_partial", "<|im_start <|endoftext| |>endoftext<| <|im_end|"),
    ("special_spaces", "  <|endoftext|>  x <|endoftext|>\n"),
    ("llama_header", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"),
    ("added_normalized", "caf\u00e9 cafe\u0301 Caf\u00e9 cafés"),
    ("added_lstrip_rstrip", "a <mask> b  <mask>c<mask>  <rs>   d <rs>\n e"),
    ("added_single_word", "[word] x[word] [word]y ([word]) _[word] [word]_ é[word]"),
    ("ignore_merges", "zyxwvutsrq zyxwvutsrq zyxwvutsrqp xzyxwvutsrq"),
    ("mongolian_vowel_separator", "a\u180eb x \u180e y\u180e\u180e  \u180e"),
    ("unicode_spaces",
     "a\u00a0b\u2003c\u3000d\u0085e\u2028f\u200bg\u1680h \u00a0 i\u180e \u180e\u180e j"),
    ("control_chars", "\x00\x01\x7f\x1b[0m bell\x07 \x0b\x0c"),
    ("math_symbols", "∀x∈ℝ: x² ≥ 0 ≠ ∞ ½ ⅓ ① Ⅻ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
    ("mixed_scripts", "Привет мир Γειά σου κόσμε שלום עולם مرحبا بالعالم नमस्ते"),
    ("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis" * 8),
    ("long_letters", "a" * 500),
    ("long_spaces", " " * 300 + "x"),
    ("long_newlines", "\n" * 64),
    ("url", "https://example.com/path?query=1&b=2#frag user@mail.org"),
]


def mixed_5k():
    rng = random.Random(20240601)
    pieces = [s for _, s in TEST_STRINGS if s] + [MIXED]
    seps = [" ", "\n", "\t", "  ", "\r\n", "", "\n\n"]
    out = []
    n = 0
    while n < 5000:
        p = rng.choice(pieces)
        out.append(p)
        out.append(rng.choice(seps))
        n += len(p.encode("utf-8")) + 1
    return "".join(out)


def all_test_strings():
    return TEST_STRINGS + [("mixed_5k", mixed_5k())]


# ---------------------------------------------------------------------------------------------
# Training (fixtures)

def training_corpus():
    files = sorted(glob.glob("/usr/share/common-licenses/*"))
    pylib = os.path.dirname(os.__file__)
    files += [os.path.join(pylib, f) for f in ("textwrap.py", "string.py", "json/decoder.py",
                                               "codecs.py")]
    lines = []
    for path in files:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            lines.extend(f.read().splitlines(keepends=True))
    # A little non-Latin text so some multi-byte merges exist.
    lines += [s for _, s in TEST_STRINGS] * 3 + [MIXED] * 20
    return lines


def compact_json(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def save(tok, name, rewrite=None, config=None):
    out = os.path.join(DATA, name)
    os.makedirs(out, exist_ok=True)
    obj = json.loads(tok.to_str())
    if rewrite:
        rewrite(obj)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(compact_json(obj) + "\n")
    cfg_path = os.path.join(out, "tokenizer_config.json")
    if config is not None:
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
            f.write("\n")
    elif os.path.exists(cfg_path):
        os.remove(cfg_path)
    return out


def train_bpe(pre_tokenizer, normalizer, vocab_size, special_in_vocab=(), ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=list(special_in_vocab))
    tok.train_from_iterator(training_corpus(), trainer)
    return tok


def train_qwen2_style():
    # Qwen2/Qwen3 layout: NFC, Split(regex) + ByteLevel(use_regex=false), special tokens
    # appended after the BPE vocabulary, merges stored as "a b" strings.
    tok = train_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)]),
        normalizers.NFC(), 2000)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in
                            ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False),
                    AddedToken("caf\u00e9", special=False, normalized=True)])

    def merges_as_strings(obj):
        obj["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m
                                  for m in obj["model"]["merges"]]
    return save(tok, "qwen2-style", merges_as_strings,
                {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})


def train_gpt2_style():
    # GPT-2 layout: ByteLevel(use_regex=true) alone, no normalizer, <|endoftext|> inside the
    # BPE vocabulary. add_prefix_space=true and lstrip/rstrip/single_word added tokens cover
    # the rarer options.
    tok = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), None, 1500,
                    special_in_vocab=["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("[word]", special=False, single_word=True, normalized=False),
                    AddedToken("<rs>", special=False, rstrip=True, normalized=False)])
    return save(tok, "gpt2-style")


def train_llama3_style():
    # Llama 3 layout: no normalizer, Split(regex with \p{N}{1,3}) + ByteLevel, ignore_merges,
    # TemplateProcessing that prepends <|begin_of_text|>.
    tok = train_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]),
        None, 1500)
    # One vocabulary word that the merges cannot build: only ignore_merges yields it whole.
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    vocab[IGNORE_MERGES_WORD] = len(vocab)
    tok.model = models.BPE(vocab, [tuple(m) for m in model["merges"]], ignore_merges=True)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
            special_tokens=[("<|begin_of_text|>", bos)])])

    return save(tok, "llama3-style", None,
                {"bos_token": "<|begin_of_text|>",
                 "eos_token": {"content": "<|eot_id|>", "lstrip": False, "normalized": False,
                               "rstrip": False, "single_word": False, "__type": "AddedToken"}})


# ---------------------------------------------------------------------------------------------
# Goldens

def byte_token_ids(tok, data):
    """Ids of the single-byte tokens spelling `data` (GPT-2 byte-to-unicode mapping)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    ids = [tok.token_to_id(chr(table[b])) for b in data]
    return None if any(i is None for i in ids) else ids


def decode_cases(tok):
    size = tok.get_vocab_size(with_added_tokens=True)
    seqs = []
    byte_seqs = [
        "😀".encode(), "😀".encode()[:1], "😀".encode()[:2], "😀".encode()[:3],
        "é".encode()[:1] + b"A", "中".encode()[:2] + b"x", b"\x80", b"\x80\x80abc",
        b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98",
        b"\xff\xfe", b"a\xf0\x9f\x98\x80\xf0\x9f", b"\xe2\x28\xa1", b"\xf8\x88\x80\x80\x80",
        b"\xc2", b"\xef\xbf\xbd",
    ]
    for data in byte_seqs:
        ids = byte_token_ids(tok, data)
        if ids is not None:
            seqs.append(ids)
    rng = random.Random(7)
    for _ in range(24):
        seqs.append([rng.randrange(size) for _ in range(rng.randrange(1, 40))])
    # Ids past the vocabulary are skipped by tokenizers' decode.
    seqs.append([size + 5, 0, size, 1, 2 ** 31 - 1])
    seqs.append([])
    return [{"ids": ids,
             "decoded": tok.decode(ids, skip_special_tokens=False),
             "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)} for ids in seqs]


def token_content(value):
    if isinstance(value, dict):
        return value.get("content")
    return value


def golden_json(golden):
    """One case per line: small diffs, still readable."""
    lines = ["{"]
    items = list(golden.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if isinstance(value, list):
            lines.append(f" {json.dumps(key)}: [")
            lines += [" " + compact_json(v) + ("," if j + 1 < len(value) else "")
                      for j, v in enumerate(value)]
            lines.append(" ]" + comma)
        else:
            lines.append(f" {json.dumps(key)}: {compact_json(value)}{comma}")
    return "\n".join(lines) + "\n}\n"


def write_goldens(directory):
    path = os.path.join(directory, "tokenizer.json")
    tok = Tokenizer.from_file(path)
    cases = []
    for name, text in all_test_strings():
        plain = tok.encode(text, add_special_tokens=False).ids
        special = tok.encode(text, add_special_tokens=True).ids
        normalized = tok.normalizer.normalize_str(text) if tok.normalizer else text
        words = ([w for w, _ in tok.pre_tokenizer.pre_tokenize_str(normalized)]
                 if tok.pre_tokenizer else [normalized])
        cases.append({"name": name, "text": text, "words": [w for w in words if w],
                      "ids": plain, "ids_with_special": special,
                      "decoded": tok.decode(plain, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(plain, skip_special_tokens=True)})
    golden = {"generator": "scripts/goldens/make_tokenizer_goldens.py, "
                           f"tokenizers=={tokenizers.__version__}",
              "vocab_size": tok.get_vocab_size(with_added_tokens=True),
              "cases": cases, "decode_cases": decode_cases(tok)}
    cfg_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
        for key in ("bos", "eos"):
            if f"{key}_token" in cfg:
                content = token_content(cfg[f"{key}_token"])
                golden[f"{key}_id"] = None if content is None else tok.token_to_id(content)
    out = os.path.join(directory, "tokenizer_goldens.json")
    with open(out, "w", encoding="utf-8") as f:
        f.write(golden_json(golden))
    print(f"wrote {os.path.relpath(out, REPO)}: {len(cases)} cases, "
          f"{sum(len(c['ids']) for c in cases)} ids")


def main():
    if tokenizers.__version__ != PINNED:
        sys.exit(f"need tokenizers=={PINNED} (pip install tokenizers=={PINNED}), "
                 f"found {tokenizers.__version__}")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="goldens", choices=["train", "goldens"])
    parser.add_argument("dirs", nargs="*")
    args = parser.parse_args()
    if args.command == "train":
        dirs = [train_qwen2_style(), train_gpt2_style(), train_llama3_style()]
    else:
        dirs = args.dirs or sorted(os.path.dirname(p) for p in
                                   glob.glob(os.path.join(DATA, "*", "tokenizer.json")))
    for d in dirs:
        write_goldens(d)


if __name__ == "__main__":
    main()
