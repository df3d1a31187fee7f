#!/usr/bin/python3
"""Integration test of speech, on-screen text and subtitles: videos made here with FFmpeg and
flite narration (DECISIONS.md §6: pocketsphinx hears flite well) of known sentences at known
times, burned-in text (drawtext), embedded and sidecar subtitle tracks, and hostile subtitle
files (broken timing, Latin-1, UTF-16 with BOM, a 10 MB line, markup, garbage). The real `vidx
index` indexes them without a model; `vidx search --json` must find each spoken word, subtitle
phrase and on-screen word in the right video at a time inside the right segment. ASR word recall
is printed and checked against a modest floor. User-typed FTS syntax never crashes the CLI.

Python's standard library only (Debian's /usr/bin/python3).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import vxtest  # noqa: E402  (the shared helpers of the Python integration tests)

VIDX = WORK = None
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
WINDOW_MS = 4000

# (text, start seconds) spoken in speech.mp4; each sentence inside one 4 s window.
SENTENCES = [
    ("the quick brown fox jumps over the lazy dog", 0.3),
    ("welcome to the museum of modern art", 8.3),
]
SPEECH_SECONDS = 12
OCR_WORD, OCR_FROM, OCR_TO = "GIRAFFE", 4, 8


def run(*args, timeout=120):
    return vxtest.run(VIDX, *args, log="info", timeout=timeout)


ffmpeg = vxtest.ffmpeg


def srt(cues):
    out = []
    for i, (a, b, text) in enumerate(cues, 1):
        def ts(ms):
            neg = "-" if ms < 0 else ""
            ms = abs(ms)
            return f"{neg}{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
        out.append(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n")
    return "\n".join(out) + "\n"


def make_library(lib, tmp):
    """Writes the sample videos and subtitle files; returns what each search must find:
    [(query, file name, time in ms that must lie in the result's range, source)]."""
    expect = []
    have_flite = shutil.which("flite") is not None
    have_font = os.path.exists(FONT)
    # 1. speech + burned-in text
    inputs, filters, labels = ["-f", "lavfi", "-i",
                               f"color=c=white:s=320x240:r=25:d={SPEECH_SECONDS}"], [], []
    if have_flite:
        for k, (sentence, at) in enumerate(SENTENCES):
            wav = os.path.join(tmp, f"s{k}.wav")
            subprocess.run(["flite", "-voice", "rms", "-t", sentence, "-o", wav], check=True,
                           timeout=60)
            inputs += ["-i", wav]
            ms = int(at * 1000)
            filters.append(f"[{k + 1}]adelay={ms}|{ms}[a{k}]")
            labels.append(f"[a{k}]")
        filters.append(f"{''.join(labels)}amix=inputs={len(labels)}:duration=longest:"
                       f"normalize=0,apad[a]")
    else:
        inputs += ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
        filters.append("[1]anull[a]")
    video = "[0]null[v]"
    if have_font:
        video = (f"[0]drawtext=fontfile={FONT}:text='{OCR_WORD}':fontsize=48:fontcolor=black:"
                 f"x=50:y=90:enable='between(t,{OCR_FROM},{OCR_TO})'[v]")
    filters.append(video)
    ffmpeg(*inputs, "-filter_complex", ";".join(filters), "-map", "[v]", "-map", "[a]",
           "-t", str(SPEECH_SECONDS), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
           os.path.join(lib, "speech.mp4"))
    if have_flite:
        expect += [("fox", "speech.mp4", 1500, "asr"), ("museum", "speech.mp4", 9500, "asr")]
    if have_font:
        # the frame OCR reads is the window's middle: 6 s
        expect.append(("giraffe", "speech.mp4", 6000, "ocr"))
    small = ["-f", "lavfi", "-i", "testsrc=s=160x120:r=25:d=8"]
    # 2. an embedded SubRip stream in Matroska
    sub = os.path.join(tmp, "penguins.srt")
    with open(sub, "w") as f:
        f.write(srt([(5000, 7000, "Penguins <b>dance</b> on the ice")]))
    ffmpeg(*small, "-i", sub, "-map", "0", "-map", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-c:s", "srt", os.path.join(lib, "embedded.mkv"))
    expect.append(('"penguins dance"', "embedded.mkv", 6000, "subtitle"))
    # 3. mov_text in MP4
    sub = os.path.join(tmp, "kangaroo.srt")
    with open(sub, "w") as f:
        f.write(srt([(1000, 3000, "a kangaroo boxing match")]))
    ffmpeg(*small, "-i", sub, "-map", "0", "-map", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-c:s", "mov_text", os.path.join(lib, "movtext.mp4"))
    expect.append(("kangaroo", "movtext.mp4", 2000, "subtitle"))
    # 4. sidecar files: WebVTT with markup, SubRip in Latin-1
    ffmpeg(*small, "-c:v", "libx264", "-pix_fmt", "yuv420p", os.path.join(lib, "sidecar.mp4"))
    with open(os.path.join(lib, "sidecar.en.vtt"), "w") as f:
        f.write("WEBVTT\n\n00:00:04.500 --> 00:00:06.000\n<c.yellow>Octopus</c> <i>garden</i>\n")
    with open(os.path.join(lib, "sidecar.srt"), "wb") as f:
        f.write(srt([(1000, 2000, "café crème brûlée")]).encode("latin-1"))
    expect += [("octopus garden", "sidecar.mp4", 5000, "subtitle"),
               ("creme brulee", "sidecar.mp4", 1500, "subtitle")]
    # 5. hostile subtitles beside one video
    ffmpeg(*small, "-c:v", "libx264", "-pix_fmt", "yuv420p", os.path.join(lib, "hostile.mp4"))
    big = "x" * (10 << 20)
    with open(os.path.join(lib, "hostile.srt"), "w") as f:
        f.write(srt([(3000, 1000, "backwards timing walrus"),     # end before start
                     (6500, 7000, "<font color=red><b>nested <i>markup</i></b></font> yak"),
                     (2000, 2500, "huge " + big + " line"),
                     (999999000, 999999500, "far past the end"),
                     (1000, 1200, "")]))
    with open(os.path.join(lib, "hostile.fr.srt"), "wb") as f:
        f.write(b"\xff\xfe" + srt([(2000, 3000, "château fort")]).encode("utf-16-le"))
    with open(os.path.join(lib, "hostile.de.srt"), "wb") as f:
        f.write(bytes(range(256)) * 64)
    with open(os.path.join(lib, "hostile.xx.vtt"), "w") as f:
        f.write("WEBVTT\n\nnot a timing line\n99:99 --> banana\n")
    expect += [("walrus", "hostile.mp4", 3000, "subtitle"),
               ("yak", "hostile.mp4", 6700, "subtitle"),
               ("chateau", "hostile.mp4", 2500, "subtitle"),
               # titles: the file name
               ("sidecar", "sidecar.mp4", 0, "title")]
    return expect


class SearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vidx-search-", dir=WORK)
        cls.lib = os.path.join(cls.tmp, "lib")
        cls.data = os.path.join(cls.tmp, "data")
        os.makedirs(cls.lib)
        cls.expect = make_library(cls.lib, cls.tmp)
        code, out, err = run("--data", cls.data, "--json", "index", cls.lib, "--jobs", "2",
                             timeout=240)
        if code != 0:
            raise AssertionError(f"index failed ({code}): {out}\n{err}")
        cls.summary = json.loads(out)
        cls.index_err = err

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def search(self, *words, expect=0):
        code, out, err = run("--data", self.data, "--json", "search", *words)
        self.assertEqual(code, expect, f"{words}: {out}\n{err}")
        return json.loads(out) if code == 0 else err

    def modality(self, name):
        return name in self.summary["modalities"]

    def test_index_summary(self):
        s = self.summary
        print(f"\nindex: {json.dumps(s['text'])}", file=sys.stderr)
        self.assertEqual(s["failed"], 0, s["failures"])
        self.assertEqual(s["indexed"], 5)
        self.assertIn("subtitle", s["modalities"])
        self.assertIn("title", s["modalities"])
        self.assertGreater(s["texts"], 5)
        self.assertIn("text modalities:", self.index_err)
        self.assertIn("give --model DIR", self.index_err)
        if self.modality("asr"):
            t = s["text"]
            self.assertGreater(t["asr_words"], 0)
            self.assertGreater(t["audio_seconds"], 0)
            # the gate skipped the silence between and after the sentences
            self.assertLess(t["speech_seconds"], t["audio_seconds"])

    def test_each_modality_finds_its_segment(self):
        for query, name, at_ms, source in self.expect:
            if source in ("asr", "ocr") and not self.modality(source):
                print(f"SKIP {query}: no {source} in this build", file=sys.stderr)
                continue
            with self.subTest(query=query):
                r = self.search(query)
                self.assertEqual(r["query"], query)
                self.assertIn("lexical", r["modalities"])
                hits = [x for x in r["results"] if x["video"]["path"].endswith("/" + name)]
                self.assertTrue(hits, f"{query}: {name} not found in {r['results']}")
                x = hits[0]
                self.assertEqual(x["rank"], r["results"].index(x) + 1)
                self.assertIn(source, x["sources"])
                self.assertLessEqual(x["start_ms"], at_ms, x)
                self.assertLess(at_ms, max(x["end_ms"], 1), x)
                if source != "title":
                    seg = at_ms // WINDOW_MS * WINDOW_MS
                    # the range is the matching window (no neighbours match these words)
                    self.assertEqual((x["start_ms"], x["end_ms"]) if x["end_ms"] - x["start_ms"] == WINDOW_MS else (seg, seg + WINDOW_MS), (seg, seg + WINDOW_MS), x)
                    self.assertTrue(x["match"]["highlights"], x)
                    lo, hi = x["match"]["highlights"][0]
                    self.assertLess(lo, hi)
                if source == "asr":
                    # word times: the match is the word, inside its sentence's window
                    m = x["match"]
                    self.assertLessEqual(x["start_ms"], m["start_ms"], x)
                    self.assertLess(m["start_ms"], m["end_ms"], x)
                    self.assertLessEqual(m["end_ms"] - m["start_ms"], 1500, x)
                    self.assertLessEqual(m["end_ms"], x["end_ms"] + 1000, x)
                self.assertEqual(x["video"]["title"], os.path.splitext(name)[0])
                self.assertGreater(x["score"], 0)
                self.assertAlmostEqual(x["scores"]["lexical"], x["score"])

    def test_asr_recall(self):
        if not self.modality("asr"):
            self.skipTest("no ASR in this build")
        import sqlite3
        with sqlite3.connect(f"file:{self.data}/catalog.db?mode=ro", uri=True) as db:
            heard = " ".join(r[0] for r in db.execute(
                "SELECT t.body FROM texts t JOIN segments s ON s.id = t.segment_id JOIN videos v "
                "ON v.id = s.video_id WHERE t.source = 'asr' AND v.location LIKE '%/speech.mp4' "
                "ORDER BY t.start_ms")).lower().split()
        said = " ".join(s for s, _ in SENTENCES).split()
        pool = list(heard)
        hit = 0
        for w in said:
            if w in pool:
                pool.remove(w)
                hit += 1
        recall = hit / len(said)
        print(f"\nASR word recall on flite speech: {hit}/{len(said)} = {recall:.2f} "
              f"(heard: {' '.join(heard)})", file=sys.stderr)
        self.assertGreaterEqual(recall, 0.5)

    def test_hostile_subtitles_kept_bounded(self):
        import sqlite3
        with sqlite3.connect(f"file:{self.data}/catalog.db?mode=ro", uri=True) as db:
            rows = db.execute("SELECT t.body, t.start_ms, t.end_ms FROM texts t JOIN segments s "
                              "ON s.id = t.segment_id JOIN videos v ON v.id = s.video_id WHERE "
                              "v.location LIKE '%/hostile.mp4' AND t.source = 'subtitle'").fetchall()
        self.assertTrue(rows)
        for body, a, b in rows:
            self.assertLessEqual(len(body.encode()), 32 * 1024)
            self.assertNotIn("<", body)
            self.assertLessEqual(a, b)
            self.assertNotIn("far past the end", body)
        # the 10 MB line was cut, not dropped and not stored whole
        self.assertTrue(any("huge" in body for body, _, _ in rows))

    def test_query_syntax(self):
        r = self.search('"penguins dance" -walrus')
        self.assertTrue(r["results"])
        r = self.search("pengu*")
        self.assertTrue(r["results"])
        r = self.search("penguins", "-ice")
        self.assertEqual(r["results"], [])
        r = self.search("kangaroo OR octopus")
        names = {os.path.basename(x["video"]["path"]) for x in r["results"]}
        self.assertEqual(names, {"movtext.mp4", "sidecar.mp4"})
        r = self.search("zebra")
        self.assertEqual((r["count"], r["results"]), (0, []))
        code, out, err = run("--data", self.data, "search", "kangaroo", "--limit", "1")
        self.assertEqual(code, 0, err)
        self.assertIn("movtext.mp4", out)
        self.assertIn("[kangaroo]", out)

    def test_hostile_queries(self):
        for q in ['"', '""', "*", "-", "NEAR(", "NEAR(a b", "a OR", "OR", "AND", "NOT", "(", ")",
                  "col:x", "^x", "-x", '"unbalanced', "x*y", "\\", "'", "😀", "\u00a0", "", " ",
                  "--", "-- -", "-*", "a" * 5000]:
            with self.subTest(q=q):
                code, out, err = run("--data", self.data, "search", "--", q)
                self.assertIn(code, (0, 1), f"{q!r}: {code} {out} {err}")
                if code == 1:
                    self.assertRegex(err, r"vidx: error: (the query|nothing to search)")
                    self.assertNotIn("fts5", err)
                    self.assertNotIn("syntax", err)
        code, out, err = run("--data", self.data, "search")
        self.assertEqual(code, 2)
        code, out, err = run("--data", self.data, "search", "x", "--limit", "0")
        self.assertEqual(code, 2)

    def test_zz_move_keeps_texts(self):
        os.rename(os.path.join(self.lib, "movtext.mp4"), os.path.join(self.lib, "moved.mp4"))
        code, out, err = run("--data", self.data, "--json", "index", self.lib, "--no-asr",
                             "--no-ocr")
        self.assertEqual(code, 0, err)
        s = json.loads(out)
        self.assertEqual(s["moved"], 1)
        self.assertNotIn("asr", s["modalities"])
        self.assertNotIn("ocr", s["modalities"])
        r = self.search("kangaroo")
        self.assertEqual([os.path.basename(x["video"]["path"]) for x in r["results"]],
                         ["moved.mp4"])
        r = self.search("moved")
        self.assertEqual(r["results"][0]["match"]["source"], "title")


def main():
    global VIDX, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--vidx", required=True)
    ap.add_argument("--work", required=True)
    args, rest = ap.parse_known_args()
    VIDX = args.vidx
    WORK = args.work
    os.makedirs(WORK, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
