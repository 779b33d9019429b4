#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/: four Hugging Face tokenizer.json files of the pipelines
real checkpoints use, trained here with the `tokenizers` package on a small corpus, and what
that package makes of at least 500 varied strings with each (ids, tokens, ids with the
post-processor's special tokens, and the decoded text). rlxf's tokenizer.json reader must
give the same ids and the same decoded text on every string (issue 13); the C++ tests read
the committed files and never run Python.

  wordpiece_uncased   BERT uncased: BertNormalizer (lowercase, accents stripped, CJK spaced,
                      control characters cleaned), BertPreTokenizer, WordPiece ("##",
                      [UNK]), TemplateProcessing [CLS] $A [SEP], WordPiece decoder
  bpe_byte_fallback   LLaMA 2 / SentencePiece style: normalizer Prepend("\u2581") +
                      Replace(" ", "\u2581"), no pre-tokenizer, BPE with byte_fallback and
                      fuse_unk over <0x00>..<0xFF>, TemplateProcessing <s> $A, decoder
                      Replace + ByteFallback + Fuse + Strip(left 1)
  byte_level_llama3   LLaMA 3: Split(the LLaMA 3 regex, isolated) + ByteLevel(no prefix
                      space, no regex), BPE with ignore_merges, ByteLevel + Template
                      <|begin_of_text|> $A post-processing, ByteLevel decoder
  byte_level_qwen2    Qwen 2: NFC, Split(the Qwen 2 regex: digits one by one) + ByteLevel,
                      BPE, ByteLevel post-processor and decoder

Each folder holds tokenizer.json and cases.json:
  {"tokenizer": NAME, "tokenizers_version": "...", "cases": [
     {"text": "...", "ids": [...], "tokens": [...], "ids_with_special": [...], "decoded": "..."}]}
`ids` / `tokens`: encode(text, add_special_tokens=False); `ids_with_special`: with the
post-processor; `decoded`: decode(ids, skip_special_tokens=False).

Invalid UTF-8 is not among the strings: the Python API takes str, which cannot hold it (the
C++ reader's answer to invalid bytes is its own to define and test).

Usage (see tools/README.md):
  python3 -m venv /root/.venvs/rlxf-tok && /root/.venvs/rlxf-tok/bin/pip install tokenizers==0.23.3
  /root/.venvs/rlxf-tok/bin/python tools/make_tokenizer_fixtures.py [--out DIR]
Deterministic: two runs write byte-identical files (it prints their sha256 prefixes).
"""
import argparse
import collections
import csv
import hashlib
import json
import os
import pathlib
import random
import sys
import unicodedata

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # training order fixed

import tokenizers  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

PINNED = "0.23.3"
ROOT = pathlib.Path(__file__).resolve().parent.parent

# The pre-tokenizer patterns of the real tokenizer.json files (format facts).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


# ---- the strings ----

WORDS = ("the program condition was met structural benchmark fiscal deficit arrears budget central bank reserves "
         "quantitative performance criterion review waiver indicative target revenue tax reform audit").split()
ACCENTED = ["café", "naïve", "résumé", "São Paulo", "Côte d'Ivoire", "Zürich", "España", "Ærøskøbing", "Łódź",
            "crème brûlée", "déjà vu", "façade", "Ångström", "İstanbul", "ﬁnance"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "A\u030a"]  # NFD forms
CJK = ["中华人民共和国", "財政赤字", "日本銀行", "大韓民國", "国际货币基金组织", "ひらがな", "カタカナ", "한국어", "金融政策の目標"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇵🇰", "❤️", "🧪", "🚀✨", "1️⃣", "🏳️‍🌈"]
OTHER_SCRIPTS = ["Ελληνικά", "русский язык", "العربية", "עברית", "हिन्दी", "ภาษาไทย", "ქართული", "Հայերեն"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\u00a0", "\u2009", "\u3000", "\u2028", "\u200b", "\ufeff"]
PUNCT = [".", ",", ";", ":", "!", "?", "...", "--", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "%", "$", "€", "£",
         "¥", "&", "@", "#", "/", "\\", "|", "*", "+", "=", "<", ">", "~", "^", "_", "«", "»", "—", "–", "“", "”"]
CONTROL = [chr(c) for c in list(range(0x00, 0x09)) + [0x0b, 0x0c] + list(range(0x0e, 0x20)) + [0x7f, 0x85, 0x9f]]
CONTRACTIONS = ["it's", "don't", "we're", "they've", "I'm", "you'll", "she'd", "IT'S", "Don'T", "o'clock"]


def number(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randrange(10 ** rng.randrange(1, 12)))
    if kind == 1:
        return f"{rng.uniform(0, 1e4):.{rng.randrange(1, 5)}f}"
    if kind == 2:
        return f"{rng.randrange(1990, 2030)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if kind == 3:
        return f"{rng.randrange(1, 100)}.{rng.randrange(1, 10)}%"
    return "٣٤٥" if rng.random() < 0.5 else "１２３"  # Arabic-Indic and full-width digits


def piece(rng):
    kind = rng.randrange(12)
    if kind < 3:
        w = rng.choice(WORDS)
        return w.upper() if rng.random() < 0.15 else w.capitalize() if rng.random() < 0.2 else w
    pool = [ACCENTED, COMBINING, CJK, EMOJI, OTHER_SCRIPTS, SPACES, PUNCT, CONTROL, None][kind - 3]
    return number(rng) if pool is None else rng.choice(pool)


def strings(descriptions):
    """At least 500 strings: fixed edge cases, MONA descriptions, and seeded mixtures."""
    fixed = ["", " ", "  ", "\n", "\t", "a", "A", "hello world", " hello world", "hello  world", "hello world ",
             "Hello World!", "don't stop", "I'M HERE", "12345678901234567890", "3.14159", "1,000,000",
             "x" * 300, "ab" * 150, " " * 17, "\n" * 5 + "x", "a\r\nb", "tab\tseparated\tvalues", "trailing\n",
             "\u00a0nbsp\u00a0", "zero\u200bwidth", "\ufeffbom", "e\u0301 vs \u00e9", "ﬁ ligature", "Ⅻ roman",
             "x² + y³", "½ ¼", "ＡＢＣ full width", "İı Iı", "ß ẞ", "Σίσυφος", "ǅ titlecase"]
    fixed += CJK + EMOJI + OTHER_SCRIPTS + ACCENTED + CONTRACTIONS + CONTROL + SPACES + PUNCT
    rng = random.Random(20261208)
    out = list(fixed)
    out += rng.sample(descriptions, min(120, len(descriptions)))
    while len(out) < 560:
        n = rng.randrange(1, 14)
        sep = rng.choice(["", " ", " ", " ", "  ", "\n"])
        out.append(sep.join(piece(rng) for _ in range(n)))
    return out


def corpus(descriptions):
    """The training text: the MONA descriptions and seeded mixtures (not the test strings)."""
    rng = random.Random(7)
    text = list(descriptions)
    for _ in range(3000):
        text.append(" ".join(piece(rng) for _ in range(rng.randrange(3, 20))))
    return text


# ---- the tokenizers ----

def wordpiece_uncased(text):
    # The vocabulary is built here, not by WordPieceTrainer, whose ties fall differently from
    # run to run: every character alone and as "##c", the 500 commonest words, and the 200
    # commonest word beginnings and endings of 2 to 5 characters (ties by the string).
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                            lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words = collections.Counter(w for line in text for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)))
    commonest = lambda counter, n: [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
    starts, ends = collections.Counter(), collections.Counter()
    for w, n in words.items():
        for k in range(2, min(5, len(w) - 1) + 1):
            starts[w[:k]] += n
            ends[w[-k:]] += n
    chars = sorted({c for w in words for c in w})
    entries = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    entries += commonest(words, 500) + commonest(starts, 200) + ["##" + e for e in commonest(ends, 200)]
    vocab = {}
    for e in entries:
        vocab.setdefault(e, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##",
                                     max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return tok


def bpe_byte_fallback(text):
    # Train a plain BPE over the metaspace-normalized text, then rebuild it with the 256 byte
    # tokens SentencePiece's byte fallback needs (ids 3..258, after <unk> <s> </s>, as LLaMA 2).
    normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    base = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    base.normalizer = normalizer
    base.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"],
                                                       show_progress=False, limit_alphabet=400))
    trained = json.loads(base.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizer
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    return tok


def byte_level(text, pattern, ignore_merges, nfc, bos):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    special = [bos] if bos else []
    special += ["<|endoftext|>"]
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1500, special_tokens=special, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1",
                                          special_tokens=[(bos, bos_id)])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def cases_json(name, cases):
    """One case a line (diffs stay readable), UTF-8 as is."""
    head = json.dumps({"tokenizer": name, "tokenizers_version": tokenizers.__version__}, ensure_ascii=False)[:-1]
    lines = ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases)
    return f'{head}, "cases": [\n{lines}\n]}}\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "tokenizers"))
    ap.add_argument("--allow-other-versions", action="store_true")
    args = ap.parse_args()
    if tokenizers.__version__ != PINNED and not args.allow_other_versions:
        sys.exit(f"tokenizers {tokenizers.__version__} is installed; the fixtures are made with {PINNED} "
                 "(--allow-other-versions to go on anyway)")
    with open(ROOT / "data" / "mona_synthetic.csv", newline="", encoding="utf-8") as f:
        descriptions = sorted({row["Description"] for row in csv.DictReader(f) if row["Description"]})
    text, tests = corpus(descriptions), strings(descriptions)
    made = {
        "wordpiece_uncased": wordpiece_uncased(text),
        "bpe_byte_fallback": bpe_byte_fallback(text),
        "byte_level_llama3": byte_level(text, LLAMA3_PATTERN, True, False, "<|begin_of_text|>"),
        "byte_level_qwen2": byte_level(text, QWEN2_PATTERN, False, True, None),
    }
    for name, tok in made.items():
        folder = pathlib.Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        cases = []
        for s in tests:
            plain = tok.encode(s, add_special_tokens=False)
            cases.append({"text": s, "ids": plain.ids, "tokens": plain.tokens,
                          "ids_with_special": tok.encode(s).ids,
                          "decoded": tok.decode(plain.ids, skip_special_tokens=False)})
        # A check of the fixture itself: the byte-level tokenizers lose nothing (Qwen 2's text
        # comes back NFC-normalized).
        if name.startswith("byte_level"):
            for c in cases:
                want = unicodedata.normalize("NFC", c["text"]) if name.endswith("qwen2") else c["text"]
                assert c["decoded"] == want, (name, c)
        files = {"tokenizer.json": tok.to_str(pretty=True) + "\n",
                 "cases.json": cases_json(name, cases)}
        for fname, content in files.items():
            (folder / fname).write_text(content, encoding="utf-8")
            digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:12]
            print(f"{folder / fname}: {len(content.encode('utf-8'))} bytes, sha256 {digest}")
        print(f"  {name}: {len(cases)} strings, vocabulary {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()
