#!/usr/bin/python3
"""Integration test of `vidx serve`: the real binary over a data directory indexed here (FFmpeg
made clips, a tiny reference model so there are vectors and thumbnails, titles as texts), driven
with Python's own http.client and raw sockets: every endpoint, paging, Range streaming, errors,
hostile requests (malformed JSON, huge bodies, a slow client, path traversal, invalid UTF-8,
50 concurrent connections), the token, and a clean exit on SIGTERM.

Python's standard library only (Debian's /usr/bin/python3). Loopback addresses only.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vxtest  # noqa: E402
from vxtest import ffmpeg  # noqa: E402

VIDX = WORK = MODEL = None
DATA = DATA_NOVEC = LIB = None
CLIPS = {  # name -> (seconds, ffmpeg args)
    "clip-alpha.mp4": (6, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "clip-beta.webm": (5, ["-c:v", "libvpx", "-pix_fmt", "yuv420p", "-deadline", "realtime"]),
    "clip-gamma.mkv": (3, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "clip-delta.mp4": (4, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "clip-epsilon.mov": (2, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "clip-zeta.avi": (2, ["-c:v", "mpeg4"]),  # no browser plays MPEG-4 Part 2: transcoded
}
PATTERNS = ["testsrc", "smptebars", "testsrc2", "rgbtestsrc", "smptehdbars", "testsrc"]
# what /stream serves for each (DECISIONS §10): the file itself, or a copy a browser plays
PLAYBACK = {".mp4": ("video/mp4", "as-is"), ".webm": ("video/webm", "as-is"),
            ".mov": ("video/mp4", "as-is"), ".mkv": ("video/mp4", "remux"),
            ".avi": ("video/mp4", "transcode")}


def run(*args, timeout=120):
    return vxtest.run(VIDX, *args, timeout=timeout, errors="strict")


class Server(vxtest.Server):
    def __init__(self, data, *extra):
        super().__init__(VIDX, data, *extra)


def setUpModule():
    global DATA, DATA_NOVEC, LIB
    LIB = os.path.join(WORK, "lib")
    DATA = os.path.join(WORK, "data")
    DATA_NOVEC = os.path.join(WORK, "data-novec")
    shutil.rmtree(DATA, ignore_errors=True)
    shutil.rmtree(DATA_NOVEC, ignore_errors=True)
    os.makedirs(LIB, exist_ok=True)
    for i, (name, (secs, args)) in enumerate(CLIPS.items()):
        path = os.path.join(LIB, name)
        if not os.path.exists(path):
            ffmpeg("-f", "lavfi", "-i", f"{PATTERNS[i]}=s=64x48:r=25:d={secs}", *args, path)
    code, out, err = run("--data", DATA, "--model", MODEL, "index", LIB, "--library", "lib",
                         "--no-asr", "--no-ocr", "--jobs", "2", "--threads", "2", timeout=240)
    assert code == 0, err
    code, out, err = run("--data", DATA_NOVEC, "index", LIB, "--library", "novec", "--no-asr",
                         "--no-ocr", "--no-thumbnails", timeout=240)
    assert code == 0, err


class WebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(DATA, "--threads", "4", "--timeout", "2", "--max-body", "64k")

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, f"serve exited {code} on SIGTERM"

    def get(self, path):
        return self.srv.json("GET", path)

    # ---- health, search ------------------------------------------------------------------
    def test_healthz(self):
        s, j = self.get("/healthz")
        self.assertEqual((s, j), (200, {"status": "ok"}))

    def test_search_paging_get_and_post(self):
        code, out, err = run("--data", DATA, "--json", "search", "clip", "--limit", "1000")
        self.assertEqual(code, 0, err)
        cli = json.loads(out)
        self.assertEqual(cli["count"], len(CLIPS))
        seen, token, pages = [], None, 0
        while pages < 10:
            q = {"q": "clip", "limit": "2"}
            if token:
                q["page_token"] = token
            s, j = self.get("/api/search?" + urllib.parse.urlencode(q))
            self.assertEqual(s, 200, j)
            for k in ("query", "lexical_query", "modalities", "took_ms", "count", "results"):
                self.assertIn(k, j)
            self.assertEqual(j["page_info"]["total"], len(CLIPS))
            self.assertLessEqual(j["count"], 2)
            seen += j["results"]
            pages += 1
            token = j["page_info"]["next_page_token"]
            if not token:
                break
        self.assertEqual(pages, 3)
        self.assertEqual([r["rank"] for r in seen], list(range(1, len(CLIPS) + 1)))
        strip = lambda rs: [{k: v for k, v in r.items()} for r in rs]
        self.assertEqual(strip(seen), strip(cli["results"]))  # same schema, same order
        # POST gives the same pages
        seen_post, token = [], None
        for _ in range(10):
            body = {"query": {"text": "clip"}, "limit": 2}
            if token:
                body["page_token"] = token
            s, j = self.srv.json("POST", "/api/search", json.dumps(body),
                                 {"Content-Type": "application/json"})
            self.assertEqual(s, 200, j)
            seen_post += j["results"]
            token = j["page_info"]["next_page_token"]
            if not token:
                break
        self.assertEqual(seen_post, seen)
        # library filter
        s, j = self.get("/api/search?q=clip&library=lib")
        self.assertEqual((s, j["page_info"]["total"]), (200, len(CLIPS)))
        s, j = self.get("/api/search?q=clip&library=nosuch")
        self.assertEqual(s, 404)

    def test_search_empty_and_errors(self):
        s, j = self.get("/api/search?q=zebraxylophone")
        self.assertEqual((s, j["count"], j["results"]), (200, 0, []))
        self.assertEqual(j["page_info"], {"next_page_token": None, "total": 0})
        for path in ("/api/search", "/api/search?q=", "/api/search?q=clip&limit=0",
                     "/api/search?q=clip&limit=x", "/api/search?q=clip&page_token=zz",
                     "/api/search?q=clip&modalities=sonar", "/api/search?q=%ff%fe",
                     "/api/search?q=caf%c3", "/api/search?q=" + "a%20" * 40,
                     "/api/search?q=-only"):
            s, j = self.get(path)
            self.assertEqual(s, 400, path)
            self.assertIsInstance(j["error"]["code"], str)
            self.assertTrue(j["error"]["message"])
        # a server without --model: search by meaning is 422 with the way to enable it
        s, j = self.get("/api/search?q=clip&modalities=vision")
        self.assertEqual((s, j["error"]["code"]), (422, "needs_model"))
        self.assertIn("--model", j["error"]["message"])

    def test_post_errors(self):
        h = {"Content-Type": "application/json"}
        for body in (b"{", b"not json", b"[1,2]", b'{"query": "x"}', b'{"query":{"text":1}}',
                     b'{"query":{"text":"clip"},"limit":"2"}', b'{"query":{"text":"\xff"}}',
                     b""):
            s, j = self.srv.json("POST", "/api/search", body, h)
            self.assertEqual(s, 400, body)
            self.assertIn("error", j)
        s, j = self.srv.json("POST", "/api/search", b"x" * (200 * 1024), h)
        self.assertEqual((s, j["error"]["code"]), (413, "body_too_large"))
        for method, path in (("PUT", "/api/search"), ("DELETE", "/api/videos"),
                             ("POST", "/api/videos/1"), ("PATCH", "/healthz")):
            s, hd, b = self.srv.request(method, path, b"{}")
            self.assertEqual(s, 405, (method, path))
            self.assertEqual(json.loads(b)["error"]["code"], "method_not_allowed")

    # ---- videos, stream, thumbnails ------------------------------------------------------
    def videos(self):
        out, token = [], None
        for _ in range(10):
            s, j = self.get("/api/videos?limit=2" + (f"&page_token={token}" if token else ""))
            self.assertEqual(s, 200)
            self.assertEqual(j["page_info"]["total"], len(CLIPS))
            out += j["videos"]
            token = j["page_info"]["next_page_token"]
            if not token:
                return out
        self.fail("paging did not end")

    def test_videos(self):
        vids = self.videos()
        self.assertEqual(sorted(os.path.basename(v["path"]) for v in vids), sorted(CLIPS))
        self.assertEqual(len({v["id"] for v in vids}), len(CLIPS))
        v = next(v for v in vids if v["path"].endswith("clip-alpha.mp4"))
        s, d = self.get(f"/api/videos/{v['id']}")
        self.assertEqual(s, 200)
        self.assertEqual((d["id"], d["status"], d["title"]), (v["id"], "indexed", "clip-alpha"))
        self.assertEqual([(x["start_ms"], x["end_ms"]) for x in d["segments"]],
                         [(0, 4000), (4000, 6000)])
        for path in ("/api/videos/999999", "/api/videos/abc", "/api/videos/0",
                     "/api/videos/-1", "/api/videos/1x", "/api/videos/1/", "/api/nothing"):
            s, j = self.get(path)
            self.assertEqual(s, 404, path)
            self.assertEqual(j["error"]["code"], "not_found")

    def stream_whole(self, url):
        """GET url until the conversion (if any) is ready: 503 + Retry-After meanwhile."""
        for _ in range(120):
            s, h, b = self.srv.request("GET", url)
            if s != 503:
                return s, h, b
            self.assertGreaterEqual(int(h["retry-after"]), 1)
            time.sleep(0.5)
        self.fail(f"{url} was not ready in time")

    def test_stream_ranges(self):
        for v in self.videos():
            with open(v["path"], "rb") as f:
                original = f.read()
            url = f"/api/videos/{v['id']}/stream"
            s, h, data = self.stream_whole(url)
            mime, playback = PLAYBACK[os.path.splitext(v["path"])[1]]
            self.assertEqual((s, h["content-type"], h["x-vidx-playback"]), (200, mime, playback),
                             v["path"])
            if playback == "as-is":
                self.assertEqual(data, original)
            else:  # an MP4 made for the browser, never the original bytes
                self.assertNotEqual(data, original)
                self.assertEqual(data[4:8], b"ftyp")
            self.assertEqual(h["accept-ranges"], "bytes")
            n = len(data)
            for rng, a, z in (("bytes=10-99", 10, 99), ("bytes=100-", 100, n - 1),
                              ("bytes=-100", n - 100, n - 1), ("bytes=0-0", 0, 0),
                              (f"bytes={n - 5}-{n + 1000}", n - 5, n - 1),
                              (f"bytes=-{n + 7}", 0, n - 1)):
                s, h, b = self.srv.request("GET", url, headers={"Range": rng})
                self.assertEqual(s, 206, rng)
                self.assertEqual(h["content-range"], f"bytes {a}-{z}/{n}", rng)
                self.assertEqual(b, data[a:z + 1], rng)
            # If-Range with the current ETag keeps the range; another one gets it all
            s, h, _ = self.srv.request("GET", url, headers={"Range": "bytes=0-9"})
            etag = h["etag"]
            s, _, b = self.srv.request("GET", url, headers={"Range": "bytes=0-9", "If-Range": etag})
            self.assertEqual((s, b), (206, data[:10]))
            s, _, b = self.srv.request("GET", url, headers={"Range": "bytes=0-9",
                                                            "If-Range": '"old"'})
            self.assertEqual((s, b), (200, data))
            for bad in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=abc", "bytes=5-2",
                        "bytes=-0", "items=0-1", "bytes=-"):
                s, h, b = self.srv.request("GET", url, headers={"Range": bad})
                self.assertEqual(s, 416, bad)
                self.assertEqual(h["content-range"], f"bytes */{n}", bad)
        s, _ = self.get("/api/videos/999999/stream")
        self.assertEqual(s, 404)

    def segments(self):
        out = []
        for v in self.videos():
            s, d = self.get(f"/api/videos/{v['id']}")
            out += d["segments"]
        return out

    def test_thumbnails(self):
        segs = self.segments()
        self.assertTrue(segs)
        for seg in segs:
            self.assertEqual(seg["thumbnail_url"], f"/api/segments/{seg['id']}/thumbnail")
            s, h, b = self.srv.request("GET", seg["thumbnail_url"])
            self.assertEqual(s, 200)
            self.assertEqual(h["content-type"], "image/jpeg")
            self.assertEqual(b[:3], b"\xff\xd8\xff")
        s, _ = self.get("/api/segments/999999/thumbnail")
        self.assertEqual(s, 404)

    def test_similar(self):
        segs = self.segments()
        seg = segs[0]
        s, j = self.get(f"/api/segments/{seg['id']}/similar?limit=100")
        self.assertEqual(s, 200, j)
        self.assertEqual(j["modalities"], ["vision"])
        ids = [i for r in j["results"] for i in r["segment_ids"]]
        self.assertNotIn(seg["id"], ids)
        self.assertEqual(sorted(ids), sorted(x["id"] for x in segs if x["id"] != seg["id"]))
        scores = [r["score"] for r in j["results"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual([r["rank"] for r in j["results"]], list(range(1, len(scores) + 1)))
        for r in j["results"]:
            self.assertIn("vision", r["scores"])
            self.assertLessEqual(r["scores"]["vision"], 1.0001)
        s, j2 = self.get(f"/api/segments/{seg['id']}/similar?limit=1")
        self.assertEqual((s, j2["count"]), (200, 1))
        self.assertEqual(j2["results"][0]["segment_ids"], j["results"][0]["segment_ids"])
        s, j = self.get("/api/segments/999999/similar")
        self.assertEqual((s, j["error"]["code"]), (404, "not_found"))
        s, j = self.get(f"/api/segments/{seg['id']}/similar?limit=0")
        self.assertEqual(s, 400)

    def test_metrics(self):
        def count(text, endpoint, status):
            m = re.search(r'^vidx_http_requests_total\{endpoint="%s",status="%s"\} (\d+)$'
                          % (endpoint, status), text, re.M)
            return int(m.group(1)) if m else 0
        s, h, b = self.srv.request("GET", "/metrics")
        self.assertEqual(s, 200)
        self.assertTrue(h["content-type"].startswith("text/plain"))
        before = b.decode()
        self.get("/healthz")
        self.get("/api/videos/999999")
        s, h, b = self.srv.request("GET", "/metrics")
        after = b.decode()
        self.assertEqual(count(after, "healthz", 200), count(before, "healthz", 200) + 1)
        self.assertEqual(count(after, "video", 404), count(before, "video", 404) + 1)
        for name in ("vidx_http_request_duration_seconds_bucket{le=\"+Inf\"}",
                     "vidx_catalog_segments ",
                     f"vidx_catalog_videos{{status=\"indexed\"}} {len(CLIPS)}",
                     "vidx_index_vectors{model=", "vidx_index_file_bytes{model=",
                     "vidx_disk_bytes{part=\"catalog\"}"):
            self.assertIn(name, after)

    # ---- hostile requests ----------------------------------------------------------------
    def test_path_traversal(self):
        for path in (b"/api/videos/../../etc/passwd", b"/api/videos/%2e%2e/%2e%2e/etc/passwd",
                     b"/api/videos/1/stream/../../../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd",
                     b"/api/segments/%2e%2e%2fetc%2fpasswd/thumbnail", b"/../../etc/passwd",
                     b"/api/videos/1%00/stream", b"/api/videos/%ff/stream", b"/etc/passwd",
                     b"/api/videos/..%2f..%2fetc%2fpasswd/stream"):
            s = self.srv.raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertIn(s, (400, 404), path)
        self.assertEqual(self.get("/healthz")[0], 200)

    def test_slow_client_times_out(self):
        sk = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        try:
            for ch in b"GET /healthz HTTP/1.1\r\nHost: loc":
                sk.sendall(bytes([ch]))
                time.sleep(0.01)
            # while it stalls, others are served
            self.assertEqual(self.get("/healthz")[0], 200)
            t0 = time.monotonic()
            got = b""
            try:
                got = sk.recv(100)
            except (ConnectionResetError, socket.timeout):
                got = b"timeout"
            self.assertIn(got, (b"", b"timeout"))
            self.assertLess(time.monotonic() - t0, 9)  # closed by the server's 2 s timeout
        finally:
            sk.close()
        self.assertEqual(self.get("/healthz")[0], 200)

    def test_concurrent_connections(self):
        results, lock = [], threading.Lock()

        def worker(i):
            try:
                path = ["/api/search?q=clip", "/api/videos", "/healthz", "/api/videos/999999",
                        "/api/search?q=%ff"][i % 5]
                s, _, _ = self.srv.request("GET", path, timeout=30)
            except Exception as e:  # noqa: BLE001 - recorded and checked below
                s = repr(e)
            with lock:
                results.append((i, s))
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        want = {0: 200, 1: 200, 2: 200, 3: 404, 4: 400}
        self.assertEqual(sorted(results), [(i, want[i % 5]) for i in range(50)])
        s, j = self.get("/api/search?q=clip")
        self.assertEqual((s, j["count"]), (200, len(CLIPS)))

    def test_garbage_requests(self):
        for data in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 100000 +
                     b"\r\n\r\n"):
            try:
                s = self.srv.raw(data)
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                s = None
            self.assertTrue(s is None or 400 <= s < 600, (data[:20], s))
        self.assertEqual(self.get("/healthz")[0], 200)


class TokenTest(unittest.TestCase):
    def test_token_on_loopback_and_no_vectors(self):
        srv = Server(DATA_NOVEC, "--token", "s3cret", "--threads", "2")
        try:
            self.assertEqual(srv.json("GET", "/healthz")[0], 200)
            s, j = srv.json("GET", "/api/videos")
            self.assertEqual((s, j["error"]["code"]), (401, "unauthorized"))
            s, j = srv.json("GET", "/api/videos", headers={"Authorization": "Bearer wrong"})
            self.assertEqual(s, 401)
            s, j = srv.json("GET", "/api/videos", headers={"Authorization": "Bearer s3cret"})
            self.assertEqual((s, j["page_info"]["total"]), (200, len(CLIPS)))
            s, j = srv.json("GET", "/api/videos?token=s3cret")
            self.assertEqual(s, 200)
            self.assertEqual(srv.json("GET", "/metrics?token=nope")[0], 401)
            # /api/info tells a client that it needs the token, and nothing more without it
            s, ij = srv.json("GET", "/api/info")
            self.assertEqual(s, 200)
            self.assertEqual((ij["token_required"], ij["authorized"], ij["data_dir_name"],
                              ij["model"]), (True, False, None, None))
            s, ij = srv.json("GET", "/api/info?token=s3cret")
            self.assertEqual((ij["authorized"], ij["data_dir_name"]), (True, "data-novec"))
            for path in ("/api/libraries", "/api/jobs"):
                self.assertEqual(srv.json("GET", path)[0], 401, path)
            # an upload without the token is refused before its body is read
            head = (b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data;"
                    b" boundary=b\r\nContent-Length: 100000000\r\n\r\n")
            self.assertEqual(srv.raw(head), 401)
            s, ij = srv.json("POST", "/api/reindex", b"{}", {"Content-Type": "application/json"})
            self.assertEqual(s, 401, ij)
            vid = j["videos"][0]["id"]
            s, d = srv.json("GET", f"/api/videos/{vid}?token=s3cret")
            seg = d["segments"][0]
            self.assertIsNone(seg["thumbnail_url"])
            s, j = srv.json("GET", f"/api/segments/{seg['id']}/thumbnail?token=s3cret")
            self.assertEqual(s, 404)
            s, j = srv.json("GET", f"/api/segments/{seg['id']}/similar?token=s3cret")
            self.assertEqual((s, j["error"]["code"]), (409, "no_vectors"))
            self.assertIn("model", j["error"]["message"])
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_refuses_beyond_loopback_without_token(self):
        # refused before anything is bound, so no non-loopback socket is ever opened
        code, out, err = run("--data", DATA, "serve", "--listen", "0.0.0.0:0", timeout=30)
        self.assertEqual(code, 1)
        self.assertIn("token", err)
        code, out, err = run("--data", DATA, "serve", "--listen", "nohost", timeout=30)
        self.assertEqual(code, 1)
        code, out, err = run("--data", DATA, "serve", "--bogus", timeout=30)
        self.assertEqual(code, 2)
        code, out, err = run("--data", os.path.join(WORK, "nonexistent"), "serve", "--listen",
                             "127.0.0.1:0", timeout=30)
        self.assertEqual(code, 1)

    def test_sigint_exits_zero(self):
        srv = Server(DATA, "--threads", "1")
        self.assertEqual(srv.json("GET", "/healthz")[0], 200)
        srv.p.send_signal(signal.SIGINT)
        self.assertEqual(srv.stop(), 0)

    def test_sigterm_lets_requests_in_flight_finish(self):
        srv = Server(DATA, "--threads", "2")
        results, lock = [], threading.Lock()

        def worker():
            try:
                s, _, b = srv.request("GET", "/api/search?q=clip&limit=1000", timeout=30)
                out = (s, len(json.loads(b)["results"]))
            except (ConnectionRefusedError, ConnectionResetError,
                    http.client.RemoteDisconnected):
                out = "refused"  # arrived after the server stopped accepting
            except Exception as e:  # noqa: BLE001 - a cut response fails the test
                out = repr(e)
            with lock:
                results.append(out)
        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        srv.p.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        self.assertEqual(srv.p.wait(timeout=15), 0)
        srv.stop()
        self.assertEqual(len(results), 20)
        for r in results:
            self.assertIn(r, ((200, len(CLIPS)), "refused"))
        self.assertIn((200, len(CLIPS)), results)

def main():
    global VIDX, WORK, MODEL
    args, rest = vxtest.parse_args("--vidx", "--source-dir", "--work")
    VIDX, WORK = args.vidx, args.work
    MODEL = vxtest.reference_fixture(args.source_dir, "models", "distilled_like_f32")
    os.makedirs(WORK, exist_ok=True)
    vxtest.unittest_main(rest)


if __name__ == "__main__":
    main()
