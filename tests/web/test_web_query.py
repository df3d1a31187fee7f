#!/usr/bin/python3
"""Integration test of `vidx serve --model`: the real binary over a data directory indexed here
with a tiny reference model that has a vision and a text tower (FFmpeg-made clips), driven over
loopback with Python's standard library: search by meaning with lexical over HTTP (checked
against `vidx search --json` and against cosines of vectors read from catalog.db), paging
tokens, filters, clip queries by video id and by multipart upload (a clip encoded here with
ffmpeg), the upload limit (413 before the body is read, server still fine), broken forms,
/api/info, /api/libraries, POST /api/reindex with /api/jobs until a new file is searchable, the
writer lock held elsewhere, --reindex-every, a server without a model (422 with advice), and
/metrics' query and indexing series.

Python's standard library only (Debian's /usr/bin/python3). Loopback addresses only.
"""
import fcntl
import json
import math
import os
import re
import shutil
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vxtest  # noqa: E402

VIDX = WORK = MODEL = None
DATA = LIB = EXTRA = None
# name -> (lavfi pattern, seconds); the words in the names are what lexical search finds
CLIPS = {"zebra-parade.mp4": ("testsrc", 6), "harbor-lights.mp4": ("smptebars", 8),
         "lantern-festival.mkv": ("rgbtestsrc", 4), "quiet-forest.mp4": ("testsrc2", 5)}
EXTRA_CLIPS = {"walrus-beach.mp4": ("smptehdbars", 3)}
OLD_MTIME = 1000000000  # 2001-09-09: one clip is old, for the modified_* filters


def run(*args, timeout=240):
    return vxtest.run(VIDX, *args, timeout=timeout)


def make_clip(path, pattern, secs, *extra):
    vxtest.ffmpeg("-f", "lavfi", "-i", f"{pattern}=size=64x48:rate=10:duration={secs}", *extra,
                  "-pix_fmt", "yuv420p", path)


def index(data, lib, name, *extra):
    code, out, err = run("--data", data, "--model", MODEL, "index", lib, "--library", name,
                         "--no-asr", "--no-ocr", "--jobs", "2", "--threads", "2", *extra)
    assert code == 0, out + err


class Server(vxtest.Server):
    def __init__(self, data, *extra, model=True):
        super().__init__(VIDX, data, *extra, global_args=["--model", MODEL] if model else [],
                         timeout=60, stop_timeout=60)

    def raw(self, data, timeout=10):
        return super().raw(data, timeout, tolerate_resets=True)


def multipart(fields, files, boundary="vidxtestboundary7MA4YWxk"):
    out = b""
    for k, v in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                .encode() + (v if isinstance(v, bytes) else str(v).encode()) + b"\r\n")
    for k, (fname, data) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; "
                f"filename=\"{fname}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) *
                                                        sum(y * y for y in b))


def setUpModule():
    global DATA, LIB, EXTRA
    LIB = os.path.join(WORK, "lib")
    EXTRA = os.path.join(WORK, "extra")
    DATA = os.path.join(WORK, "data")
    shutil.rmtree(DATA, ignore_errors=True)
    for folder, clips in ((LIB, CLIPS), (EXTRA, EXTRA_CLIPS)):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, (pattern, secs) in clips.items():
            make_clip(os.path.join(folder, name), pattern, secs)
    os.utime(os.path.join(LIB, "quiet-forest.mp4"), (OLD_MTIME, OLD_MTIME))
    index(DATA, LIB, "lib")
    index(DATA, EXTRA, "extra")


class QueryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(DATA, "--threads", "4", "--max-upload", "2M")
        with vxtest.open_catalog(DATA) as db:
            cls.vectors = {r[0]: vxtest.floats(r[1]) for r in db.execute(
                "SELECT e.segment_id, e.vector FROM embeddings e JOIN spaces sp ON "
                "sp.id = e.space_id WHERE sp.modality = 'vision'")}
        s, cls.info = cls.srv.get("/api/info")
        assert s == 200, cls.info

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, f"serve exited {code} on SIGTERM"

    def videos(self):
        s, j = self.srv.get("/api/videos", limit=1000)
        self.assertEqual(s, 200)
        return {os.path.basename(v["path"]): v for v in j["videos"]}

    def search(self, **args):
        s, j = self.srv.get("/api/search", **args)
        self.assertEqual(s, 200, j)
        return j

    def all_pages(self, limit, **args):
        out, token, total = [], None, None
        for _ in range(100):
            q = dict(args, limit=limit)
            if token:
                q["page_token"] = token
            j = self.search(**q)
            self.assertLessEqual(j["count"], limit)
            total = j["page_info"]["total"] if total is None else total
            self.assertEqual(j["page_info"]["total"], total)
            out += j["results"]
            token = j["page_info"]["next_page_token"]
            if not token:
                return out, total
        self.fail("paging did not end")

    # ---- /api/info -----------------------------------------------------------------------
    def test_info(self):
        j = self.info
        self.assertRegex(j["version"], r"^\d+\.\d+")
        self.assertEqual(j["data_dir_name"], "data")
        self.assertIs(j["token_required"], False)
        self.assertIsInstance(j["model"]["id"], str)
        self.assertIn("vision", j["model"]["modalities"])
        self.assertIn("lexical", j["model"]["modalities"])
        self.assertIs(j["model"]["clip"], True)
        self.assertIsInstance(j["model"]["rerank"], bool)

    # ---- text search by meaning ------------------------------------------------------------
    def test_vision_and_lexical_over_http(self):
        j = self.search(q="zebra", modalities="lexical,vision", limit=100)
        self.assertEqual(sorted(j["modalities"]), ["lexical", "vision"])
        self.assertEqual(j["results"][0]["video"]["title"], "zebra-parade")
        self.assertIn("lexical", j["results"][0]["scores"])
        # words no title holds: vision alone finds every segment, scored by cosine
        j = self.search(q="a person walking in the rain", modalities="vision", limit=1000)
        self.assertEqual(j["modalities"], ["vision"])
        seen = sorted(i for r in j["results"] for i in r["segment_ids"])
        self.assertEqual(seen, sorted(self.vectors))
        scores = [r["score"] for r in j["results"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        code, out, err = run("--model", MODEL, "--json", "embed", "--text",
                             "a person walking in the rain")
        self.assertEqual(code, 0, err)
        q = json.loads(out)["embedding"]
        for r in j["results"]:
            best = max(cosine(q, self.vectors[i]) for i in r["segment_ids"])
            self.assertAlmostEqual(r["scores"]["vision"], best, places=3)
        # the same request as the CLI's --json: one engine, one schema
        code, out, err = run("--data", DATA, "--model", MODEL, "--json", "search",
                             "a person walking in the rain", "--limit", "1000")
        self.assertEqual(code, 0, err)
        cli = json.loads(out)
        strip = lambda rs: [{k: v for k, v in r.items() if k != "took_ms"} for r in rs]
        self.assertEqual(strip(j["results"]), strip(cli["results"]))
        # lexical only on request
        j = self.search(q="a person walking in the rain", modalities="lexical")
        self.assertEqual((j["count"], j["modalities"]), (0, ["lexical"]))

    def test_rerank(self):
        if not self.info["model"]["rerank"]:
            s, j = self.srv.get("/api/search", q="zebra", rerank=4)
            self.assertEqual((s, j["error"]["code"]), (422, "needs_model"))
            return
        j = self.search(q="zebra", modalities="lexical,vision", rerank=4, limit=10)
        rr = j["rerank"]
        self.assertEqual(set(rr), {"ran", "segments", "took_ms", "budget_hit"})
        self.assertIs(rr["ran"], True)
        self.assertTrue(1 <= rr["segments"] <= 4, rr)
        self.assertNotIn("rerank", self.search(q="zebra"))
        s, j = self.srv.json("POST", "/api/search", {"query": {"text": "zebra"}, "rerank": 2})
        self.assertEqual((s, j["rerank"]["ran"]), (200, True))

    def test_post_text_and_errors(self):
        s, j = self.srv.json("POST", "/api/search", {"query": {"text": "harbor"},
                                                     "modalities": ["lexical", "vision"],
                                                     "limit": 3})
        self.assertEqual(s, 200, j)
        self.assertEqual(j["results"][0]["video"]["title"], "harbor-lights")
        self.assertLessEqual(j["count"], 3)
        for body in ({"query": {"text": "x"}, "modalities": ["sonar"]},
                     {"query": {"text": "x"}, "modalities": "vision"},
                     {"query": {"text": "x"}, "filters": {"min_duration_ms": -1}},
                     {"query": {"text": "x"}, "filters": {"colour": "red"}},
                     {"query": {"text": "x"}, "filters": []},
                     {"query": {"text": "x"}, "rerank": 100000},
                     {"query": {"text": "x", "clip": {"video_id": 1}}},
                     {"query": {"clip": {"video_id": "1"}}},
                     {"query": {"clip": {"video_id": 1, "start_ms": -5}}},
                     {"query": {"clip": {"video_id": 1, "start_ms": 3000, "end_ms": 1000}}},
                     {"query": {"clip": {}}}):
            s, j = self.srv.json("POST", "/api/search", body)
            self.assertEqual(s, 400, body)
            self.assertTrue(j["error"]["message"])
        for q in ({"q": "x", "modalities": "vision,sonar"}, {"q": "x", "min_duration_ms": "x"},
                  {"q": "x", "modified_after_ms": "-3"}, {"q": "x", "rerank": "999"}):
            s, j = self.srv.get("/api/search", **q)
            self.assertEqual(s, 400, q)

    def test_paging_tokens(self):
        one, total = self.all_pages(1000, q="sunset over water", modalities="vision")
        self.assertEqual(total, len(one))
        self.assertGreater(total, 4)
        paged, total2 = self.all_pages(2, q="sunset over water", modalities="vision")
        self.assertEqual(total2, total)
        strip = lambda rs: [(r["rank"], r["video"]["id"], r["start_ms"], r["end_ms"])
                            for r in rs]
        self.assertEqual(strip(paged), strip(one))
        self.assertEqual([r["rank"] for r in paged], list(range(1, total + 1)))
        s, j = self.srv.get("/api/search", q="sunset", page_token="p00000000x")
        self.assertEqual((s, j["error"]["code"]), (400, "bad_page_token"))

    def test_filters(self):
        vids = self.videos()
        by_id = {v["id"]: v for v in vids.values()}

        def names(**args):
            rs, _ = self.all_pages(1000, q="colour bars", modalities="vision", **args)
            return sorted({os.path.basename(by_id[r["video"]["id"]]["path"]) for r in rs})
        self.assertEqual(names(), sorted(list(CLIPS) + list(EXTRA_CLIPS)))
        self.assertEqual(names(library="extra"), sorted(EXTRA_CLIPS))
        self.assertEqual(names(library="lib"), sorted(CLIPS))
        self.assertEqual(names(path_prefix=os.path.join(LIB, "zebra")), ["zebra-parade.mp4"])
        self.assertEqual(names(path_prefix="/nowhere/"), [])
        durations = {n: v["duration_ms"] for n, v in vids.items()}
        self.assertEqual(names(min_duration_ms=5000),
                         sorted(n for n, d in durations.items() if d >= 5000))
        self.assertEqual(names(max_duration_ms=4500),
                         sorted(n for n, d in durations.items() if d <= 4500))
        self.assertEqual(names(modified_before_ms=(OLD_MTIME + 1) * 1000), ["quiet-forest.mp4"])
        self.assertNotIn("quiet-forest.mp4", names(modified_after_ms=(OLD_MTIME + 1) * 1000))
        # the same through POST filters
        s, j = self.srv.json("POST", "/api/search", {
            "query": {"text": "colour bars"}, "modalities": ["vision"], "limit": 1000,
            "filters": {"library": "lib", "min_duration_ms": 6000}})
        self.assertEqual(s, 200, j)
        got = sorted({os.path.basename(by_id[r["video"]["id"]]["path"]) for r in j["results"]})
        self.assertEqual(got, sorted(n for n, d in durations.items()
                                     if d >= 6000 and n in CLIPS))
        s, j = self.srv.get("/api/search", q="x", library="nosuch")
        self.assertEqual(s, 404)

    # ---- clip queries ----------------------------------------------------------------------
    def test_clip_by_video_id(self):
        vids = self.videos()
        zebra = vids["zebra-parade.mp4"]
        s, j = self.srv.json("POST", "/api/search", {
            "query": {"clip": {"video_id": zebra["id"], "start_ms": 0, "end_ms": 4000}},
            "limit": 10})
        self.assertEqual(s, 200, j)
        top = j["results"][0]
        self.assertEqual(top["video"]["id"], zebra["id"])
        self.assertGreater(top["scores"]["vision"], 0.99)  # the very window that was indexed
        self.assertEqual(j["page_info"]["total"], max(j["page_info"]["total"], j["count"]))
        s, j = self.srv.json("POST", "/api/search",
                             {"query": {"clip": {"video_id": 999999, "start_ms": 0}}})
        self.assertEqual((s, j["error"]["code"]), (404, "not_found"))

    def test_clip_upload(self):
        vids = self.videos()
        path = os.path.join(WORK, "upload.mp4")
        make_clip(path, "rgbtestsrc", 3)  # the lantern clip's picture, encoded anew
        with open(path, "rb") as f:
            data = f.read()
        body, h = multipart({"limit": "5", "modalities": "vision"},
                            {"clip": ("upload.mp4", data)})
        s, j = self.srv.json("POST", "/api/search", body, h)
        self.assertEqual(s, 200, j)
        self.assertEqual(j["results"][0]["video"]["id"], vids["lantern-festival.mkv"]["id"])
        self.assertLessEqual(j["count"], 5)
        # with a range and a library
        body, h = multipart({"start_ms": "0", "end_ms": "2000", "library": "extra"},
                            {"clip": ("upload.mp4", data)})
        s, j = self.srv.json("POST", "/api/search", body, h)
        self.assertEqual(s, 200, j)
        self.assertEqual({r["video"]["id"] for r in j["results"]},
                         {vids["walrus-beach.mp4"]["id"]})

    def test_upload_limits_and_broken_forms(self):
        # declared too large: 413 before the body is sent
        head = (b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                b"boundary=b\r\nContent-Length: 3000000\r\n\r\n")
        t0 = time.monotonic()
        self.assertEqual(self.srv.raw(head), 413)
        self.assertLess(time.monotonic() - t0, 5)
        # not declared (chunked) and too large: read, dropped, 413
        chunk = b"x" * 65536
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
        s = self.srv.raw(b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + body, timeout=30)
        self.assertEqual(s, 413)
        self.assertEqual(self.srv.get("/healthz")[0], 200)
        # many uploads at once: past 4 x --max-upload held in memory, the next one is 503
        body = (b'--b\r\nContent-Disposition: form-data; name="clip"; filename="a"\r\n\r\n' +
                b"y" * (1800 * 1024) + b"\r\n--b--\r\n")
        req = (b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
               b"boundary=b\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
        held = []
        try:
            for _ in range(4):  # 4 x 1.8 MiB held by bodies not finished yet
                sk = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
                sk.sendall(req[:-100])
                held.append(sk)
            time.sleep(1)
            self.assertEqual(self.srv.raw(req, timeout=30), 503)
        finally:
            for sk in held:
                sk.close()
        time.sleep(0.5)
        self.assertEqual(self.srv.get("/healthz")[0], 200)
        with open(os.path.join(LIB, "zebra-parade.mp4"), "rb") as f:
            clip = f.read()
        good, h = multipart({}, {"clip": ("a.mp4", clip)})
        cases = [
            (good[:len(good) // 2], h),                                    # cut short
            (good, {"Content-Type": "multipart/form-data"}),               # no boundary
            (good, {"Content-Type": "multipart/form-data; boundary=other"}),
            multipart({"limit": "3"}, {}),                                 # no clip
            multipart({}, {"clip": ("a.mp4", b"\x00garbage" * 300)}),      # not a video
            multipart({"start_ms": "x"}, {"clip": ("a.mp4", clip)}),
            multipart({"library": "n" * 1000}, {"clip": ("a.mp4", clip)}),
            multipart({"library": b"\xff\xfe"}, {"clip": ("a.mp4", clip)}),
            multipart({"modalities": "sonar"}, {"clip": ("a.mp4", clip)}),
        ]
        for body, hdr in cases:
            s, hd, b = self.srv.request("POST", "/api/search", body, hdr)
            self.assertEqual(s, 400, (hdr, body[:120], b))
            self.assertIn("error", json.loads(b))
        self.assertEqual(self.srv.get("/healthz")[0], 200)
        self.assertEqual(self.search(q="zebra")["results"][0]["video"]["title"], "zebra-parade")

    def test_mutated_bodies(self):
        """Valid bodies with bytes flipped, cut or repeated: always a JSON answer, 200 or 4xx,
        and the server stays up."""
        import random
        rnd = random.Random(7)
        seeds = [json.dumps(b).encode() for b in (
            {"query": {"text": "zebra"}, "limit": 5, "modalities": ["lexical", "vision"],
             "filters": {"min_duration_ms": 1000, "path_prefix": "/"}},
            {"query": {"clip": {"video_id": 1, "start_ms": 0, "end_ms": 2000}}, "rerank": 0},
            {"query": {"text": "harbor"}, "page_token": "p5a17c3eb", "library": "lib"})]
        h = {"Content-Type": "application/json"}
        for i in range(150):
            b = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(1, 4)):
                k = rnd.randrange(len(b))
                op = rnd.randrange(3)
                if op == 0:
                    b[k] = rnd.randrange(256)
                elif op == 1:
                    del b[k:k + rnd.randint(1, 8)]
                else:
                    b[k:k] = b[k:k + rnd.randint(1, 8)] * rnd.randint(1, 3)
            s, hd, body = self.srv.request("POST", "/api/search", bytes(b), h)
            self.assertTrue(s == 200 or 400 <= s < 500, (s, bytes(b), body))
            j = json.loads(body)
            self.assertTrue("results" in j or "error" in j)
        self.assertEqual(self.srv.get("/healthz")[0], 200)

    def test_similar_through_the_engine(self):
        seg = min(self.vectors)
        s, j = self.srv.get(f"/api/segments/{seg}/similar", limit=100)
        self.assertEqual(s, 200, j)
        ids = sorted(i for r in j["results"] for i in r["segment_ids"])
        self.assertEqual(ids, sorted(i for i in self.vectors if i != seg))
        for r in j["results"]:
            best = max(cosine(self.vectors[seg], self.vectors[i]) for i in r["segment_ids"])
            self.assertAlmostEqual(r["scores"]["vision"], best, places=3)
        s, j = self.srv.get(f"/api/segments/{seg}/similar", library="extra")
        self.assertEqual(s, 200, j)
        self.assertTrue(all(r["video"]["title"] == "walrus-beach" for r in j["results"]))

    # ---- libraries, metrics -----------------------------------------------------------------
    def test_libraries(self):
        s, j = self.srv.get("/api/libraries")
        self.assertEqual(s, 200, j)
        libs = {x["name"]: x for x in j["libraries"]}
        self.assertEqual(sorted(libs), ["extra", "lib"])
        self.assertEqual(libs["lib"]["root"], LIB)
        self.assertEqual(libs["lib"]["videos"], {"indexed": 4, "failed": 0, "pending": 0,
                                                 "missing": 0})
        self.assertEqual(libs["extra"]["videos"]["indexed"], 1)
        vids = self.videos()
        for name, lib in libs.items():
            segs = 0
            for v in vids.values():
                if v["library_id"] == lib["id"]:
                    segs += len(self.srv.get(f"/api/videos/{v['id']}")[1]["segments"])
            self.assertEqual(lib["segments"], segs)
            self.assertIsNone(lib["last_run"])  # no job of this server ran yet
            # ... but the catalog remembers the `vidx index` pass that built the library
            run = lib["last_index_run"]
            self.assertEqual(run["status"], "ok", run)
            self.assertEqual(run["videos_failed"], 0)
            self.assertLessEqual(run["started_ms"], run["finished_ms"])

    def test_metrics(self):
        self.search(q="zebra", modalities="lexical,vision")
        s, h, b = self.srv.request("GET", "/metrics")
        text = b.decode()
        for m in ("vision", "lexical"):
            n = re.search(r'^vidx_query_duration_seconds_count\{modality="%s"\} (\d+)$' % m,
                          text, re.M)
            self.assertTrue(n and int(n.group(1)) >= 1, m)
        for name in ("vidx_query_embeddings_total ", "vidx_reindex_running 0",
                     'vidx_reindex_files{kind="done"}', "vidx_reindex_jobs_queued 0"):
            self.assertIn(name, text)


class NoModelTest(unittest.TestCase):
    def test_bad_options(self):
        code, out, err = run("--data", DATA, "--model", os.path.join(WORK, "no-model"), "serve",
                             "--listen", "127.0.0.1:0")
        self.assertEqual(code, 1, out + err)
        self.assertIn("no-model", err)
        for bad in (["--max-upload", "12"], ["--max-upload", "lots"], ["--reindex-every", "0s"],
                    ["--play-cache-size", "1k"]):
            code, out, err = run("--data", DATA, "serve", "--listen", "127.0.0.1:0", *bad)
            self.assertEqual(code, 2, bad)

    def test_needs_model(self):
        srv = Server(DATA, "--threads", "2", model=False)
        try:
            s, j = srv.get("/api/info")
            self.assertEqual((s, j["model"]), (200, None))
            for path in ("/api/search?q=zebra&modalities=vision",
                         "/api/search?q=zebra&rerank=4"):
                s, j = srv.json("GET", path)
                self.assertEqual((s, j["error"]["code"]), (422, "needs_model"), path)
                self.assertIn("--model", j["error"]["message"])
            s, j = srv.json("POST", "/api/search", {"query": {"clip": {"video_id": 1}}})
            self.assertEqual((s, j["error"]["code"]), (422, "needs_model"))
            body, h = multipart({}, {"clip": ("a.mp4", b"0" * 1000)})
            s, hd, b = srv.request("POST", "/api/search", body, h)
            self.assertEqual(s, 422)
            j = srv.get("/api/search", q="zebra")[1]
            self.assertEqual((j["modalities"], j["results"][0]["video"]["title"]),
                             (["lexical"], "zebra-parade"))
            # stored vectors still answer find-similar
            seg = srv.get("/api/videos", limit=1)[1]["videos"][0]["id"]
            seg = srv.get(f"/api/videos/{seg}")[1]["segments"][0]["id"]
            self.assertEqual(srv.get(f"/api/segments/{seg}/similar")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)


def wait_jobs(srv, pred, timeout=180):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        s, j = srv.get("/api/jobs")
        assert s == 200, j
        if pred(j["jobs"]):
            return j["jobs"]
        time.sleep(0.2)
    raise AssertionError(f"jobs did not get there: {j}")


class ReindexTest(unittest.TestCase):
    """Each test has its own data directory: reindexing changes the catalog."""

    def setUp(self):
        self.lib = os.path.join(WORK, "ri-lib-" + self._testMethodName)
        self.data = os.path.join(WORK, "ri-data-" + self._testMethodName)
        for d in (self.lib, self.data):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(self.lib)
        make_clip(os.path.join(self.lib, "zebra-parade.mp4"), "testsrc", 4)
        index(self.data, self.lib, "ri", "--window", "2s")  # a stored option jobs must keep

    def add_walrus(self):
        make_clip(os.path.join(self.lib, "walrus-beach.mp4"), "smptehdbars", 3)

    def test_reindex_job_makes_new_file_searchable(self):
        srv = Server(self.data, "--threads", "2")
        try:
            self.add_walrus()
            j = srv.get("/api/search", q="walrus", modalities="lexical")[1]
            self.assertEqual(j["count"], 0)
            h = {"Content-Type": "application/json"}
            self.assertEqual(srv.request("POST", "/api/reindex", b"{}", {})[0], 415)
            self.assertEqual(srv.request("POST", "/api/reindex", b"{}",
                                         {"Content-Type": "text/plain"})[0], 415)
            self.assertEqual(srv.request("GET", "/api/reindex")[0], 405)
            for body in (b"{", b"[1]", b'{"library": 5}', b'{"library": "\xff"}'):
                self.assertEqual(srv.request("POST", "/api/reindex", body, h)[0], 400, body)
            s, j = srv.json("POST", "/api/reindex", {"library": "nosuch"})
            self.assertEqual(s, 404)
            s, j = srv.json("POST", "/api/reindex", {"library": "ri"})
            self.assertEqual(s, 202, j)
            self.assertEqual(set(j["job"]), {"id", "state"})
            self.assertIn(j["job"]["state"], ("queued", "running", "done"))
            job_id = j["job"]["id"]
            jobs = wait_jobs(srv, lambda js: any(x["id"] == job_id and x["state"] not in
                                                 ("queued", "running") for x in js))
            job = next(x for x in jobs if x["id"] == job_id)
            self.assertEqual(job["state"], "done", job)
            self.assertEqual(job["library"], "ri")
            self.assertEqual((job["files_total"], job["files_done"]), (2, 2))
            self.assertEqual(job["videos_failed"], 0)
            self.assertGreaterEqual(job["segments_done"], 1)
            self.assertLessEqual(job["created_ms"], job["started_ms"])
            self.assertLessEqual(job["started_ms"], job["finished_ms"])
            j = srv.get("/api/search", q="walrus", modalities="lexical")[1]
            self.assertEqual(j["results"][0]["video"]["title"], "walrus-beach")
            d = srv.get(f"/api/videos/{j['results'][0]['video']['id']}")[1]
            self.assertEqual([(x["start_ms"], x["end_ms"]) for x in d["segments"]],
                             [(0, 2000), (2000, 3000)])  # the library's 2 s windows
            lib = srv.get("/api/libraries")[1]["libraries"][0]
            self.assertEqual(lib["videos"]["indexed"], 2)
            self.assertEqual(lib["last_run"]["id"], job_id)
            # the job's pass is the catalog's latest run of the library too
            self.assertEqual(lib["last_index_run"]["status"], "ok")
            self.assertGreaterEqual(lib["last_index_run"]["started_ms"], job["started_ms"])
            # all libraries, then the history is most recent first
            s, j = srv.json("POST", "/api/reindex", {})
            self.assertEqual(s, 202)
            jobs = wait_jobs(srv, lambda js: js[0]["state"] == "done")
            self.assertIsNone(jobs[0]["library"])
            self.assertEqual([x["id"] for x in jobs], sorted((x["id"] for x in jobs),
                                                             reverse=True))
        finally:
            self.assertEqual(srv.stop(), 0)
        code, out, err = run("--data", self.data, "verify")
        self.assertEqual(code, 0, out + err)

    def test_writer_lock_held_elsewhere(self):
        srv = Server(self.data, "--threads", "1")
        try:
            with open(os.path.join(self.data, "lock"), "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                s, j = srv.json("POST", "/api/reindex", {"library": "ri"})
                self.assertEqual(s, 202)
                jobs = wait_jobs(srv, lambda js: js[0]["state"] not in ("queued", "running"))
            self.assertEqual(jobs[0]["state"], "failed")
            self.assertIn("in use by another indexer", jobs[0]["message"])
            # once the lock is free, the next job runs
            s, j = srv.json("POST", "/api/reindex", {"library": "ri"})
            jobs = wait_jobs(srv, lambda js: js[0]["state"] not in ("queued", "running"))
            self.assertEqual(jobs[0]["state"], "done", jobs[0])
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_reindex_every(self):
        code, out, err = run("--data", self.data, "serve", "--reindex-every", "soon")
        self.assertEqual(code, 2)
        srv = Server(self.data, "--threads", "1", "--reindex-every", "2s")
        try:
            # the first run at start
            jobs = wait_jobs(srv, lambda js: js and js[-1]["state"] == "done", timeout=120)
            self.assertIsNone(jobs[-1]["library"])
            self.add_walrus()
            first = jobs[0]["id"]
            jobs = wait_jobs(srv, lambda js: any(x["id"] > first and x["state"] == "done"
                                                 for x in js), timeout=120)
            j = srv.get("/api/search", q="walrus", modalities="lexical")[1]
            self.assertEqual(j["count"], 1)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_sigterm_stops_a_running_job(self):
        for i in range(6):
            make_clip(os.path.join(self.lib, f"more-{i}.mp4"), "testsrc2", 8)
        srv = Server(self.data, "--threads", "1")
        s, j = srv.json("POST", "/api/reindex", {})
        self.assertEqual(s, 202)
        jobs = wait_jobs(srv, lambda js: js[0]["state"] != "queued")
        if jobs[0]["state"] == "running":  # (on a fast machine it may be done already)
            text = srv.request("GET", "/metrics")[2].decode()
            self.assertIn("vidx_reindex_running 1", text)
            self.assertRegex(text, r'vidx_reindex_files\{kind="total"\} \d+')
        t0 = time.monotonic()
        self.assertEqual(srv.stop(), 0)
        self.assertLess(time.monotonic() - t0, 60)
        code, out, err = run("--data", self.data, "verify")
        self.assertEqual(code, 0, out + err)


def main():
    global VIDX, WORK, MODEL
    args, rest = vxtest.parse_args("--vidx", "--source-dir", "--work")
    VIDX, WORK = args.vidx, args.work
    MODEL = vxtest.reference_fixture(args.source_dir, "text", "models", "bert_1b_like")
    os.makedirs(WORK, exist_ok=True)
    vxtest.unittest_main(rest)


if __name__ == "__main__":
    main()
