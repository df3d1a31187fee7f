#!/usr/bin/python3
"""Search by meaning: a few FFmpeg-made clips indexed with a tiny model that has both a vision and
a text tower (tests/reference/fixtures/text/models/bert_1b_like), then `vidx search --json --model
DIR`. The query goes through the text tower: each result's `scores.vision` must equal the cosine
between `vidx embed --text` and the best stored vector of its segments (read from catalog.db),
`modalities` lists "vision", ranks follow the fused score, a title word still ranks its video
first, and without --model the output is lexical only as before. The query engine through the
CLI: clip queries (--clip, --video) find their own window, `vidx similar`, pages, filters,
--modalities, --rerank and their errors; semantic speech (a subtitle embedded by the indexer)
and the fused score recomputed from docs/api.md's weights.

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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import vxtest  # noqa: E402  (the shared helpers of the Python integration tests)

VIDX = MODEL = OTHER_MODEL = None
CLIPS = [("zebra", "testsrc"), ("harbor", "smptebars"), ("lantern", "rgbtestsrc")]


def run(*args, timeout=120):
    return vxtest.run(VIDX, *args, log="info", timeout=timeout)


def cosine(a, b):
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


class SemanticSearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vidx-semantic-")
        cls.data = os.path.join(cls.tmp, "data")
        lib = cls.lib = os.path.join(cls.tmp, "lib")
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


    # ---- the query engine through the CLI: clips, similar, paging, filters, re-ranking ----

    def cli(self, *args, model=True):
        pre = ["--data", self.data]
        if model:
            pre += ["--model", model if isinstance(model, str) else MODEL]
        return run(*pre, *args)

    def test_clip_file_finds_its_own_segment(self):
        code, out, err = self.cli("--json", "search", "--clip",
                                  os.path.join(self.lib, "zebra.mp4"), "--start", "0",
                                  "--end", "4")  # the first indexed window
        self.assertEqual(code, 0, out + err)
        r = json.loads(out)
        self.assertEqual(r["modalities"], ["vision"])
        self.assertTrue(r["query"].startswith("clip:"), r["query"])
        top = r["results"][0]
        self.assertEqual(top["video"]["title"], "zebra")
        self.assertAlmostEqual(top["scores"]["vision"], 1.0, places=3)
        # the same window by video id
        code, out, err = self.cli("--json", "search", "--video", str(top["video"]["id"]),
                                  "--start", "0s", "--end", "4000ms")
        self.assertEqual(code, 0, out + err)
        r2 = json.loads(out)
        self.assertEqual(r2["results"][0]["video"]["id"], top["video"]["id"])
        self.assertAlmostEqual(r2["results"][0]["scores"]["vision"], 1.0, places=3)

    def test_clip_errors(self):
        clip = os.path.join(self.lib, "zebra.mp4")
        code, out, err = self.cli("search", "--clip", clip, "--start", "5", "--end", "3")
        self.assertEqual(code, 1, out + err)
        self.assertIn("bad range", err)
        code, out, err = self.cli("search", "--clip", clip, "--start", "60")
        self.assertEqual(code, 1, out + err)
        self.assertIn("bad range", err)
        code, out, err = self.cli("search", "--video", "99999", "--start", "0")
        self.assertEqual(code, 1, out + err)
        code, out, err = self.cli("search", "--clip", os.path.join(self.tmp, "none.mp4"))
        self.assertEqual(code, 1, out + err)
        code, out, err = self.cli("search", "--clip", clip, model=False)
        self.assertEqual(code, 1, out + err)
        self.assertIn("vision tower", err)
        code, out, err = self.cli("search", "zebra", "--clip", clip)
        self.assertEqual(code, 2, out + err)
        code, out, err = self.cli("search", "--video", "1")
        self.assertEqual(code, 2, out + err)
        code, out, err = self.cli("search", "zebra", "--modalities", "smell")
        self.assertEqual(code, 2, out + err)

    def test_similar(self):
        r, _ = self.search("zebra")
        seg = r["results"][0]["segment_ids"][0]
        code, out, err = self.cli("--json", "similar", str(seg), model=False)
        self.assertEqual(code, 0, out + err)
        s = json.loads(out)
        self.assertEqual(s["query"], f"segment:{seg}")
        self.assertGreater(s["count"], 0)
        for item in s["results"]:
            self.assertNotIn(seg, item["segment_ids"])
            self.assertIn("vision", item["scores"])
        code, out, err = self.cli("similar", "987654", model=False)
        self.assertEqual(code, 1, out + err)
        code, out, err = self.cli("similar", "abc", model=False)
        self.assertEqual(code, 2, out + err)
        code, out, err = self.cli("similar", model=False)
        self.assertEqual(code, 2, out + err)

    def test_pages(self):
        q = "a striped animal walking"
        whole, _ = self.search(q, "--limit", "4")
        self.assertGreaterEqual(whole["count"], 3)
        pages = []
        for page in (1, 2):
            r, _ = self.search(q, "--limit", "2", "--page", str(page))
            self.assertEqual(r["offset"], 2 * (page - 1))
            pages += r["results"]
        self.assertEqual([x["rank"] for x in pages], list(range(1, len(pages) + 1)))
        self.assertEqual([x["segment_ids"] for x in pages],
                         [x["segment_ids"] for x in whole["results"][:len(pages)]])

    def test_filters(self):
        r, _ = self.search("a striped animal walking", "--path-prefix",
                           os.path.join(self.lib, "harbor"))
        self.assertGreater(r["count"], 0)
        self.assertEqual({x["video"]["title"] for x in r["results"]}, {"harbor"})
        r, _ = self.search("a striped animal walking", "--library", "lib")
        self.assertEqual(len({x["video"]["id"] for x in r["results"]}), len(CLIPS))
        code, out, err = self.cli("search", "zebra", "--library", "no-such-library")
        self.assertEqual(code, 1, out + err)

    def test_modalities(self):
        r, _ = self.search("zebra", "--modalities", "vision")
        self.assertEqual(r["modalities"], ["vision"])
        for item in r["results"]:
            self.assertEqual(list(item["scores"]), ["vision"])
        r, _ = self.search("zebra", "--modalities", "lexical")
        self.assertEqual(r["modalities"], ["lexical"])

    def test_rerank(self):
        r, err = self.search("a striped animal walking", "--rerank", "2")
        self.assertGreaterEqual(r["count"], 2)
        head = [x for x in r["results"] if "rerank_score" in x]
        self.assertEqual(len(head), 2)
        self.assertEqual(r["results"][:2], head)  # the re-ranked come first
        self.assertGreaterEqual(head[0]["rerank_score"], head[1]["rerank_score"])
        self.assertEqual(r["rerank"]["segments"], 2)  # what ran and cost, as the HTTP API says
        self.assertTrue(r["rerank"]["ran"])
        self.assertGreater(r["rerank"]["took_ms"], 0)
        self.assertFalse(r["rerank"]["budget_hit"])
        code, out, err = self.cli("search", "zebra", "--rerank", "2", model=False)
        self.assertEqual(code, 1, out + err)
        self.assertIn("matching head", err)
        code, out, err = self.cli("search", "zebra", "--rerank", "2", model=OTHER_MODEL)
        self.assertEqual(code, 1, out + err)

    def test_help(self):
        code, out, err = run("help", "search")
        self.assertEqual(code, 0, out + err)
        for opt in ("--clip", "--video", "--page", "--rerank", "--path-prefix", "--library"):
            self.assertIn(opt, out)
        code, out, err = run("help", "similar")
        self.assertEqual(code, 0, out + err)
        self.assertIn("SEGMENT_ID", out)


class SpeechSearchTest(unittest.TestCase):
    """Semantic speech: a subtitle's text embedded by the indexer (space "speech") is searched
    with the query's text vector, and the fused score follows docs/api.md's weights."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vidx-speech-")
        cls.data = os.path.join(cls.tmp, "data")
        lib = os.path.join(cls.tmp, "lib")
        os.makedirs(lib)
        for name, pattern in CLIPS:
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                            "-f", "lavfi", "-i", f"{pattern}=size=64x48:rate=10:duration=6",
                            "-pix_fmt", "yuv420p", os.path.join(lib, name + ".mp4")],
                           check=True, timeout=60)
        with open(os.path.join(lib, "harbor.srt"), "w") as f:
            f.write("1\n00:00:01,000 --> 00:00:03,000\nthe lighthouse keeper waves\n")
        code, out, err = run("--data", cls.data, "--model", MODEL, "--json", "index", lib,
                             "--no-asr", "--no-ocr", timeout=240)
        assert code == 0, out + err
        cls.vectors = {}
        with sqlite3.connect(f"file:{cls.data}/catalog.db?mode=ro", uri=True) as db:
            for seg, modality, blob in db.execute(
                    "SELECT e.segment_id, sp.modality, e.vector FROM embeddings e JOIN spaces sp"
                    " ON sp.id = e.space_id"):
                cls.vectors.setdefault(modality, {})[seg] = struct.unpack(
                    f"{len(blob) // 4}f", blob)
        assert cls.vectors.get("speech"), "the indexer stored no speech vectors"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def search(self, *words):
        code, out, err = run("--data", self.data, "--model", MODEL, "--json", "search", *words)
        self.assertEqual(code, 0, out + err)
        return json.loads(out)

    def query_vector(self, text):
        code, out, err = run("--model", MODEL, "--json", "embed", "--text", text)
        self.assertEqual(code, 0, out + err)
        return json.loads(out)["embedding"]

    def test_speech_space_alone(self):
        r = self.search("the lighthouse keeper waves", "--modalities", "speech")
        self.assertEqual(r["modalities"], ["speech"])
        self.assertEqual(r["count"], 1)
        top = r["results"][0]
        self.assertEqual(top["video"]["title"], "harbor")
        self.assertEqual(top["match"]["source"], "speech")
        qv = self.query_vector("the lighthouse keeper waves")
        best = max(cosine(qv, self.vectors["speech"][s]) for s in top["segment_ids"]
                   if s in self.vectors["speech"])
        self.assertAlmostEqual(top["scores"]["speech"], best, places=4)
        self.assertAlmostEqual(best, 1.0, places=4)  # the subtitle's own text

    def test_fused_weights(self):
        q = "lighthouse keeper"
        r = self.search(q)
        self.assertEqual(r["modalities"], ["lexical", "vision", "speech"])
        qv = self.query_vector(q)
        vis = {s: cosine(qv, v) for s, v in self.vectors["vision"].items()}
        lo, hi = min(vis.values()), max(vis.values())  # every segment is a candidate
        for item in r["results"]:
            nv = (max(vis[s] for s in item["segment_ids"] if s in vis) - lo) / (hi - lo)
            if item["video"]["title"] == "harbor":
                # lexical 1 (the only lexical range), speech 1 (one speech candidate), all
                # weights 1 (subtitle text, vision vectors)
                self.assertEqual(sorted(item["scores"]), ["lexical", "speech", "vision"])
                want = (1 + nv + 1) / 3
            else:
                # no lexical match, no speech at all: weight 0 for speech, not a penalty
                self.assertEqual(list(item["scores"]), ["vision"])
                want = nv / 2
            self.assertAlmostEqual(item["score"], want, places=5, msg=item)
        self.assertEqual(r["results"][0]["video"]["title"], "harbor")


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
