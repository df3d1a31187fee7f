#!/usr/bin/python3
"""Expected outputs of enc_tok_pre_text, computed with Python's own str and re, the way
InternVideo2's MM/dataset/utils.py pre_text cleans captions (INTERNVIDEO2.md §3.1):
lower(); delete , . ' ! ? " ( ) * # : ; ~; '-' and '/' -> ' '; '<person>' -> 'person';
\\s{2,} -> ' '; rstrip('\\n'); strip(' '); optionally keep the first max_l words.

usage: pre_text_ref.py OUT.json   (inputs: hard strings built here; bytes are decoded with
errors='replace', as the C function does)"""
import json
import random
import re
import sys


def pre_text(text, max_l=None):
    text = re.sub(r"([,.'!?\"()*#:;~])", "", text.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    text = re.sub(r"\s{2,}", " ", text)
    text = text.rstrip("\n").strip(" ")
    if max_l:
        words = text.split(" ")
        if len(words) > max_l:
            text = " ".join(words[:max_l])
    return text


def inputs():
    fixed = [
        "A man, wearing a hat, is RUNNING!", "<PERSON> walks a dog.", "<per.son> x",
        "<<person>person>", "a man/woman in a red-shirt", "  leading  and\t\ttrailing \n",
        "single\ttab kept", "x -- y", "ÉCOLE Ünïcödé", "", "?!.,", "\n\n\n", "a\n", "a \n",
        " \n a", "İstanbul ΣΟΦΟΣ Straße ẞ", "a\u00a0\u00a0b", "a\u3000b\u2003\u2003c",
        "a\x1c\x1db", "a\x85\x85b", "tab\t", "x\u200b\u200by", "\"quoted\" (paren) *star* #tag",
        "don't stop: go; now~", "日本語 テキスト", "emoji 😀😀 ok", "a  b   c    d",
        "\r\n", "end\r\n", "multi\n\nline", "ǅ ǈ Ⅻ", "-/-/-", "  ", " x ",
    ]
    out = [(s.encode(), 0) for s in fixed]
    out += [(b"one two three four", 2), (b"one  two", 1), (b" a b", 1), (b"a b c", 5),
            (b"a\xffb", 0), (b"\xc3(x", 0), (b"\xed\xa0\x80 y", 0), (b"\xf0\x9f\x98", 0)]
    rng = random.Random(5)
    pool = list("abcXYZ ,.'!?\"()*#:;~-/<>person\t\n\r") + ["<person>", "<PERSON>", "  ", "\u00a0",
            "\u3000", "\x1c", "é", "É", "ß", "İ", "Σ", "😀", "\u0301", "\x00"]
    for _ in range(300):
        s = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 30)))
        out.append((s.encode(), rng.choice([0, 0, 0, 1, 3])))
    return out


def main():
    cases = []
    for raw, max_l in inputs():
        text = raw.decode("utf-8", errors="replace")
        cases.append({"hex": raw.hex(), "max_words": max_l,
                      "out_hex": pre_text(text, max_l).encode().hex()})
    with open(sys.argv[1], "w") as f:
        json.dump(cases, f)
    print("pre_text_ref: %d cases" % len(cases))


if __name__ == "__main__":
    main()
