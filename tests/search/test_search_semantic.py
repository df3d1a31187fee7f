#!/usr/bin/python3
"""Search by meaning: a few FFmpeg-made clips indexed with a tiny model that has both a vision and
a text tower (tests/reference/fixtures/text/models/bert_1b_like), then `vidx search --json --model
DIR`. The query goes through the text tower: each result's `scores.vision` must equal the cosine
between `vidx embed --text` and the best stored vector of its segments (read from catalog.db),
`modalities` lists "vision", ranks follow the fused score, a title word still ranks its video
first, and without --model the output is lexical only as before.

Python's standard library only (Debian's /usr/bin/python3).
"""
import argparse
import json
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import unittest

VIDX = MODEL = OTHER_MODEL = None
CLIPS = [("zebra", "testsrc"), ("harbor", "smptebars"), ("lantern", "rgbtestsrc")]


def run(*args, timeout=120):
    e = dict(os.environ)
    e.pop("VIDX_DATA", None)
    e.pop("VIDX_MODEL", None)
    e["VIDX_LOG"] = "info"
    p = subprocess.run([VIDX, *args], capture_output=True, text=True, env=e, timeout=timeout,
                       errors="replace")
    return p.returncode, p.stdout, p.stderr


def cosine(a, b):
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


class SemanticSearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vidx-semantic-")
        cls.data = os.path.join(cls.tmp, "data")
        lib = os.path.join(cls.tmp, "lib")
        os.makedirs(lib)
        for name, pattern in CLIPS:
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                            "-f", "lavfi", "-i", f"{pattern}=size=64x48:rate=10:duration=6",
                            "-pix_fmt", "yuv420p", os.path.join(lib, name + ".mp4")],
                           check=True, timeout=60)
        code, out, err = run("--data", cls.data, "--model", MODEL, "--json", "index", lib,
                             "--no-asr", "--no-ocr", timeout=240)
        assert code == 0, out + err
        with sqlite3.connect(f"file:{cls.data}/catalog.db?mode=ro", uri=True) as db:
            cls.vectors = {r[0]: struct.unpack(f"{len(r[1]) // 4}f", r[1]) for r in db.execute(
                "SELECT e.segment_id, e.vector FROM embeddings e JOIN spaces sp ON "
                "sp.id = e.space_id WHERE sp.modality = 'vision'")}
        assert cls.vectors, "no stored vectors"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def search(self, *words, model=True):
        args = ["--data", self.data]
        if model:
            args += ["--model", model if isinstance(model, str) else MODEL]
        code, out, err = run(*args, "--json", "search", *words)
        self.assertEqual(code, 0, out + err)
        return json.loads(out), err

    def query_vector(self, text):
        code, out, err = run("--model", MODEL, "--json", "embed", "--text", text)
        self.assertEqual(code, 0, out + err)
        return json.loads(out)["embedding"]

    def test_vision_scores_are_text_tower_cosines(self):
        q = "a striped animal walking"
        r, _ = self.search(q)
        self.assertEqual(r["modalities"], ["lexical", "vision"])  # what ran
        self.assertGreater(r["count"], 0)
        for item in r["results"]:  # no word of it is in any text
            self.assertNotIn("lexical", item["scores"])
        qv = self.query_vector(q)
        for item in r["results"]:
            self.assertIn("vision", item["scores"])
            best = max(cosine(qv, self.vectors[s]) for s in item["segment_ids"])
            self.assertAlmostEqual(item["scores"]["vision"], best, places=4)
            self.assertEqual(item["match"]["source"], "vision")
        scores = [x["score"] for x in r["results"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual([x["rank"] for x in r["results"]], list(range(1, r["count"] + 1)))
        self.assertAlmostEqual(scores[0], 1.0, places=6)  # min-max: the best candidate is 1

    def test_title_word_ranks_its_video_first(self):
        r, _ = self.search("zebra")
        self.assertEqual(r["modalities"], ["lexical", "vision"])
        first = r["results"][0]
        self.assertEqual(first["video"]["title"], "zebra")
        self.assertIn("lexical", first["scores"])
        self.assertIn("vision", first["scores"])
        self.assertIn("title", first["sources"])
        scores = [x["score"] for x in r["results"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        # ranges never overlap within a video
        seen = {}
        for x in r["results"]:
            for a, b in seen.get(x["video"]["id"], []):
                self.assertTrue(x["end_ms"] <= a or x["start_ms"] >= b, r)
            seen.setdefault(x["video"]["id"], []).append((x["start_ms"], x["end_ms"]))

    def test_without_model_lexical_only(self):
        r, err = self.search("zebra", model=False)
        self.assertEqual(r["modalities"], ["lexical"])
        self.assertEqual(r["count"], 1)
        self.assertEqual(list(r["results"][0]["scores"]), ["lexical"])
        self.assertIn("--model", err)
        # errors of a lexical-only search stay
        code, out, err = run("--data", self.data, "search", "--", "-zebra")
        self.assertNotEqual(code, 0)

    def test_only_excluded_words_still_search_by_meaning(self):
        r, _ = self.search("--", "-zebra")
        self.assertEqual(r["modalities"], ["vision"])
        self.assertGreater(r["count"], 0)
        r, _ = self.search("NEAR(", "\"")
        self.assertIn("vision", r["modalities"])

    def test_model_without_vectors_is_lexical_with_notice(self):
        r, err = self.search("zebra", model=OTHER_MODEL)
        self.assertEqual(r["modalities"], ["lexical"])
        self.assertEqual(r["results"][0]["video"]["title"], "zebra")
        self.assertIn("no vectors of model", err)

    def test_model_without_text_tower(self):
        r, err = self.search("zebra", model=VISION_ONLY)
        self.assertEqual(r["modalities"], ["lexical"])
        self.assertIn("no text tower", err)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--vidx", required=True)
    ap.add_argument("--fixtures", required=True)
    args, rest = ap.parse_known_args()
    VIDX = args.vidx
    MODEL = os.path.join(args.fixtures, "text", "models", "bert_1b_like")
    OTHER_MODEL = os.path.join(args.fixtures, "text", "models", "mobileclip_like")
    VISION_ONLY = os.path.join(args.fixtures, "models", "s2_1b_like_f32")
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
