#!/usr/bin/python3
"""Generates encoder/unicode_tables.c: the Unicode data the text tokenizers need.

Run from the repository root:  /usr/bin/python3 scripts/gen_unicode_tables.py > encoder/unicode_tables.c

Sources (both Debian's, both Unicode 14.0.0; the script refuses other versions so the committed
file is reproducible):
  - Python's `unicodedata` (categories, canonical decompositions, combining classes, lower case);
  - perl's Unicode::UCD for the properties Python does not expose: Present_In ("In=8.0",
    which code points were assigned in Unicode 8.0), Cased and Case_Ignorable (the context of
    Python's final-sigma rule in str.lower()).

Why Unicode 8.0 appears at all: the reference for the BERT WordPiece tokenizer is HF
`tokenizers` (Rust, npm tokenizers 0.13). Its BertNormalizer and BertPreTokenizer take
categories (control/format/private-use, non-spacing mark, punctuation) from the
`unicode_categories` crate and NFD from `unicode-normalization-alignments`, whose tables are
old. Measured by sending every code point through the reference (the sweep in
tests/tokenizer/strings.js): they behave exactly as "14.0 data restricted to the code points
assigned in Unicode 8.0", with the 8.0 category for the few characters whose category changed
since (CATEGORY_8_0_CHANGED below); unassigned (Cn) code points are kept, not dropped.
Whitespace and lower case come from Rust's std and match 14.0. The model itself was trained
with the Python BertTokenizer, whose tables are the training Python's; the two differ only in
corner cases, chiefly marks, format characters and punctuation assigned after Unicode 8.0 and
unassigned code points (which the Python tokenizer drops).

Also emitted: Python's html.entities.html5 and html.unescape's numeric-reference rules, for
open_clip's basic_clean.

The CLIP BPE tokenizer (open_clip, Python `regex` module) and pre_text (Python `re`, str.lower)
use the 14.0 data as is: letters (L*), numbers (N*), Python's str.isspace().
"""
import subprocess
import sys
import unicodedata as ud

UNICODE_VERSION = "14.0.0"
OLD_VERSION = "8.0"
# Characters assigned in 8.0 whose General_Category differs between 8.0 and 14.0 in a way that
# matters here (control/format, Mn, P*). Value: the 8.0 category (UnicodeData.txt 8.0.0).
CATEGORY_8_0_CHANGED = {
    0x166D: "Po",   # CANADIAN SYLLABICS CHI SIGN: Po -> So in 12.0
    0x1734: "Mn",   # HANUNOO SIGN PAMUDPOD: Mn -> Mc in 14.0
    0x1885: "Lo",   # MONGOLIAN LETTER ALI GALI BALUDA: Lo -> Mn in 9.0
    0x1886: "Lo",   # MONGOLIAN LETTER ALI GALI THREE BALUDA: Lo -> Mn in 9.0
    0xA9BD: "Mc",   # JAVANESE CONSONANT SIGN KERET: Mc -> Mn in 12.0
    0x111C9: "Po",  # SHARADA SANDHI MARK: Po -> Mn in 13.0
}

# Flag bits (keep in step with encoder/tokenizer.c).
F_DROP8 = 1 << 0    # Cc, Cf, Co, Cs in 8.0: removed by BertNormalizer's clean_text
F_MN8 = 1 << 1      # Mn in 8.0: removed by strip_accents after NFD
F_PUNCT8 = 1 << 2   # P* in 8.0: isolated by BertPreTokenizer
F_LETTER = 1 << 3   # L* (14.0): \p{L} in open_clip's pattern
F_NUMBER = 1 << 4   # N* (14.0): \p{N}
F_PYSPACE = 1 << 5  # Python str.isspace() (14.0): \s in Python's re / regex
F_WSPACE = 1 << 6   # White_Space property: Rust char::is_whitespace
F_CASED = 1 << 7    # Cased (14.0): Python's lower() Final_Sigma context
F_CASE_IGN = 1 << 8 # Case_Ignorable (14.0): same
F_LETTER_I = 1 << 9 # L* or a case variant is (14.0): \p{L} under open_clip's IGNORECASE
FLAG_BITS = 10


def perl_property(prop):
    """The code points that have a property, from perl's Unicode::UCD (an inversion list)."""
    out = subprocess.run(
        ["perl", "-MUnicode::UCD", "-e",
         'print Unicode::UCD::UnicodeVersion(), "\\n", '
         'join(",", Unicode::UCD::prop_invlist("%s")), "\\n"' % prop],
        check=True, capture_output=True, text=True).stdout.split("\n")
    if out[0] != UNICODE_VERSION:
        sys.exit("perl's Unicode::UCD is %s, expected %s" % (out[0], UNICODE_VERSION))
    inv = [int(x) for x in out[1].split(",")]
    has = bytearray(0x110000)
    for i in range(0, len(inv), 2):
        end = inv[i + 1] if i + 1 < len(inv) else 0x110000
        for cp in range(inv[i], end):
            has[cp] = 1
    return has


def present_in_old():
    return perl_property("In=" + OLD_VERSION)


# Rust's char::is_whitespace (White_Space, unchanged since Unicode 6.3).
WHITE_SPACE = set([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
                   0x202F, 0x205F, 0x3000] + list(range(0x2000, 0x200B)))


def main():
    if ud.unidata_version != UNICODE_VERSION:
        sys.exit("unicodedata is %s, expected %s" % (ud.unidata_version, UNICODE_VERSION))
    present = present_in_old()
    cased = perl_property("Cased")
    case_ignorable = perl_property("Case_Ignorable")

    def cat8(cp):
        if cp in CATEGORY_8_0_CHANGED:
            return CATEGORY_8_0_CHANGED[cp]
        return ud.category(chr(cp)) if present[cp] else "Cn"

    flags = [0] * 0x110000
    for cp in range(0x110000):
        c8 = cat8(cp)
        c14 = ud.category(chr(cp))
        f = 0
        if c8 in ("Cc", "Cf", "Co", "Cs"):
            f |= F_DROP8
        if c8 == "Mn":
            f |= F_MN8
        if c8.startswith("P"):
            f |= F_PUNCT8
        if c14.startswith("L"):
            f |= F_LETTER | F_LETTER_I
        elif not (0xD800 <= cp <= 0xDFFF):
            c = chr(cp)
            variants = [v for v in (c.upper(), c.lower(), c.casefold(), c.title()) if len(v) == 1]
            if any(ud.category(v).startswith("L") for v in variants):
                f |= F_LETTER_I  # only U+0345 in 14.0
        if c14.startswith("N"):
            f |= F_NUMBER
        if 0xD800 <= cp <= 0xDFFF:
            pass  # never reaches the tokenizers (invalid UTF-8 becomes U+FFFD)
        elif chr(cp).isspace():
            f |= F_PYSPACE
        if cp in WHITE_SPACE:
            f |= F_WSPACE
        if cased[cp]:
            f |= F_CASED
        if case_ignorable[cp]:
            f |= F_CASE_IGN
        flags[cp] = f

    # Runs of equal flags: (first code point, flags); a run lasts until the next one starts.
    runs = []
    for cp in range(0x110000):
        if not runs or runs[-1][1] != flags[cp]:
            runs.append((cp, flags[cp]))

    # Canonical decompositions (full NFD of one character), 8.0 code points, Hangul excluded
    # (decomposed arithmetically). Decompositions of a code point never change once assigned.
    decomp = []
    for cp in range(0x110000):
        if not present[cp] or 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF:
            continue
        d = ud.normalize("NFD", chr(cp))
        if d != chr(cp):
            decomp.append((cp, [ord(x) for x in d]))
    # Canonical combining classes of 8.0 code points.
    ccc = [(cp, ud.combining(chr(cp))) for cp in range(0x110000)
           if present[cp] and not (0xD800 <= cp <= 0xDFFF) and ud.combining(chr(cp))]
    # Full lower-case mappings (14.0), character by character (no Final_Sigma context).
    lower = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        low = chr(cp).lower()
        if low != chr(cp):
            lower.append((cp, [ord(x) for x in low]))

    # HTML5 named character references (Python's html.entities.html5), for open_clip's
    # basic_clean (html.unescape).
    import html.entities
    entities = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())

    w = sys.stdout.write
    w("/* encoder/unicode_tables.c: GENERATED by scripts/gen_unicode_tables.py; do not edit.\n")
    w(" * Unicode %s (Python unicodedata, perl Unicode::UCD). The categories the BERT tokenizer\n"
      " * uses are restricted to code points assigned in Unicode %s, as its reference does (see\n"
      " * the script). Plain integer arrays, so the extern declarations in tokenizer.c need no\n"
      " * shared private header. */\n" % (UNICODE_VERSION, OLD_VERSION))
    w("#include <stdint.h>\n\n")
    w('const char enc_uni_version[] = "%s";\n\n' % UNICODE_VERSION)

    w("/* flags of U+0000..U+007F, for a lookup without search */\n")
    w("const uint16_t enc_uni_ascii_flags[128] = {\n")
    for i in range(0, 128, 16):
        w("    " + " ".join("0x%X," % flags[cp] for cp in range(i, i + 16)) + "\n")
    w("};\n\n")
    w("/* (first code point << %d) | flags; a run lasts until the next one starts. */\n" % FLAG_BITS)
    w("const uint32_t enc_uni_runs[] = {\n")
    for i in range(0, len(runs), 8):
        w("    " + " ".join("0x%X," % ((cp << FLAG_BITS) | f) for cp, f in runs[i:i + 8]) + "\n")
    w("};\nconst uint32_t enc_uni_run_count = %d;\n\n" % len(runs))

    def emit_map(name, entries):
        pool = []
        vals = []
        for cp, seq in entries:
            vals.append((len(pool) << 3) | len(seq))
            pool.extend(seq)
        w("/* %s_keys: sorted code points; %s_vals: (offset in %s_pool << 3) | length */\n"
          % (name, name, name))
        for suffix, arr in (("keys", [cp for cp, _ in entries]), ("vals", vals), ("pool", pool)):
            w("const uint32_t %s_%s[] = {\n" % (name, suffix))
            for i in range(0, len(arr), 10):
                w("    " + " ".join("0x%X," % x for x in arr[i:i + 10]) + "\n")
            w("};\n")
        w("const uint32_t %s_count = %d;\n\n" % (name, len(entries)))
        return max(len(s) for _, s in entries)

    max_nfd = emit_map("enc_uni_nfd", decomp)
    max_lower = emit_map("enc_uni_lower", lower)

    w("/* (code point << 8) | canonical combining class, sorted, nonzero classes only */\n")
    w("const uint32_t enc_uni_ccc[] = {\n")
    for i in range(0, len(ccc), 8):
        w("    " + " ".join("0x%X," % ((cp << 8) | c) for cp, c in ccc[i:i + 8]) + "\n")
    w("};\nconst uint32_t enc_uni_ccc_count = %d;\n\n" % len(ccc))

    def cstr(s):
        out = []
        for c in s:
            if 32 <= ord(c) < 127 and c not in '"\\?':
                out.append(c)
            else:
                out.append("".join("\\%03o" % b for b in c.encode("utf-8")))
        return '"' + "".join(out) + '"'
    w("/* HTML5 named character references (Python's html.entities.html5; some names lack the\n"
      " * ';', as in HTML), sorted by name in byte order, with their UTF-8 text. */\n")
    w("const char *const enc_uni_entity_names[] = {\n")
    for name, _ in entities:
        w("    %s,\n" % cstr(name))
    w("};\nconst char *const enc_uni_entity_texts[] = {\n")
    for _, text in entities:
        w("    %s,\n" % cstr(text))
    w("};\nconst uint32_t enc_uni_entity_count = %d;\n\n" % len(entities))

    # html.unescape's numeric references: the replacements HTML prescribes for some numbers
    # (Windows-1252 for 0x80-0x9F) and the code points it drops.
    import html
    repl = sorted(html._invalid_charrefs.items())
    w("/* html.unescape: (number << 32) | replacement code point, sorted */\n")
    w("const uint64_t enc_uni_charref_repl[] = {\n")
    for i in range(0, len(repl), 6):
        w("    " + " ".join("0x%XULL," % ((k << 32) | ord(v)) for k, v in repl[i:i + 6]) + "\n")
    w("};\nconst uint32_t enc_uni_charref_repl_count = %d;\n" % len(repl))
    drop = sorted(html._invalid_codepoints)
    w("/* html.unescape: numbers that become nothing, sorted */\n")
    w("const uint32_t enc_uni_charref_drop[] = {\n")
    for i in range(0, len(drop), 10):
        w("    " + " ".join("0x%X," % x for x in drop[i:i + 10]) + "\n")
    w("};\nconst uint32_t enc_uni_charref_drop_count = %d;\n" % len(drop))
    assert max_nfd <= 4 and max_lower <= 3, (max_nfd, max_lower)


if __name__ == "__main__":
    main()
