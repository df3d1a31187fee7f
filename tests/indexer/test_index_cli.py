#!/usr/bin/python3
"""Integration tests of `vidx index`: the real binary over a library made with the FFmpeg CLI.

The clips have known durations (frame counts at 25 fps), so every segment's start and end is
known in advance; the checks read catalog.db with Python's own sqlite3 module, independently
of vidx. A tiny reference model (tests/reference/fixtures/models/) keeps embedding fast.
"""
import argparse
import fcntl
import functools
import http.server
import threading
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vxtest  # noqa: E402
from vxtest import ffmpeg  # noqa: E402

VIDX = SOURCE_DIR = SAMPLES = None
MODEL = MODEL2 = None
CLIPS = None  # folder of generated clips, shared by the tests


def run(*args, env=None, timeout=120):
    return vxtest.run(VIDX, *args, log="info", env=env, timeout=timeout, errors="strict")


def src(seconds, pattern="testsrc", size="64x48"):
    return ["-f", "lavfi", "-i", f"{pattern}=s={size}:r=25:d={seconds}"]


TONE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=30"]

# name -> (nominal duration in ms, ffmpeg arguments before the output path)
GOOD = {
    "a_h264.mp4": (6000, src(6) + TONE + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a",
                                           "aac", "-shortest"]),
    "b_vp9.mkv": (5000, src(5, "smptebars") + ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p",
                                                   "-deadline", "realtime"]),
    "c_vp8.webm": (2000, src(2, "rgbtestsrc") + ["-c:v", "libvpx", "-pix_fmt", "yuv420p", "-deadline",
                                                  "realtime"]),
    "d_mpeg4.avi": (4400, src(4.4) + ["-c:v", "mpeg4", "-pix_fmt", "yuv420p"]),
    "e_h264.mov": (3000, src(3, "smptehdbars") + ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "f_mpeg2.ts": (5000, src(5) + TONE + ["-c:v", "mpeg2video", "-pix_fmt", "yuv420p", "-c:a",
                                             "mp2", "-shortest"]),
    "g_noaudio.mp4": (9000, src(9, "testsrc2") + ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "sub/h_h264.mkv": (2000, src(2, "smptebars") + ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    # No extension: recognised by probing.
    "clip_without_extension": (2000, src(2, "testsrc2") + ["-c:v", "libx264", "-pix_fmt",
                                                           "yuv420p", "-f", "mp4"]),
}
EXTRA = {
    "i_new.mp4": (2000, src(2, "rgbtestsrc") + ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "c_vp8_v2.webm": (3000, src(3, "smptebars") + ["-c:v", "libvpx", "-pix_fmt", "yuv420p", "-deadline",
                                                  "realtime"]),
    "fixed.mp4": (2000, src(2, "smptehdbars") + ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "long.mp4": (20000, src(20, "testsrc2", "48x32") + ["-c:v", "libx264", "-pix_fmt",
                                                         "yuv420p", "-g", "25"]),
}


def make_clips(folder):
    for table in (GOOD, EXTRA):
        for name, (_, args) in table.items():
            path = os.path.join(folder, name)
            if os.path.exists(path):
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            ext = os.path.splitext(name)[1] or ".mp4"
            tmp = os.path.join(folder, f".tmp{os.getpid()}{ext}")
            ffmpeg(*args, tmp)
            os.replace(tmp, path)
    path = os.path.join(folder, "audio_only.m4a")
    if not os.path.exists(path):
        tmp = os.path.join(folder, f".tmp{os.getpid()}.m4a")
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", tmp)
        os.replace(tmp, path)


def windows(duration_ms, window_ms=4000, overlap_ms=0):
    """The documented rule, written again here: full windows, a last partial one if >= 1 s,
    one window for a video shorter than a window."""
    out, start, step = [], 0, window_ms - overlap_ms
    while start < duration_ms:
        end = min(start + window_ms, duration_ms)
        if end - start == window_ms or end - start >= 1000 or not out:
            out.append((start, end))
        if end >= duration_ms:
            break
        start += step
    return out


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    """A small archive server for the HTTP tests: listings, HEAD and GET with ETag and
    Last-Modified, If-None-Match / If-Modified-Since (304), single Range requests (206), and
    faults injected per path: `fail` answers 500 that many times, `slow` sleeps that many
    seconds before answering (once). Every request is logged as (method, path, range, code)."""
    root = None
    fail = {}
    always_fail = set()
    slow = {}
    log = []
    received = []  # (method, path) as each request arrives (a slow one logs late)
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _answer(self, head):
        rel = self.path.split("?")[0].lstrip("/")
        path = os.path.join(self.root, rel)
        rng = self.headers.get("Range")
        with self.lock:
            self.received.append((self.command, rel))
            delay = self.slow.pop(rel, 0)
            failing = rel in self.always_fail or self.fail.get(rel, 0) > 0
            if self.fail.get(rel, 0) > 0:
                self.fail[rel] -= 1
        if delay:
            time.sleep(delay)
        try:
            code = self._serve(head, rel, path, rng, failing)
        except (BrokenPipeError, ConnectionResetError):
            code = -1  # the client gave up (a timeout)
        with self.lock:
            self.log.append((self.command, rel, rng, code))

    def _serve(self, head, rel, path, rng, failing):
        if failing:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 500
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            body = "".join(f'<a href="{n}{"/" if os.path.isdir(os.path.join(path, n)) else ""}">'
                           f'{n}</a>\n' for n in names).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return 200
        if not os.path.isfile(path):
            self.send_error(404)
            return 404
        st = os.stat(path)
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        last_modified = self.date_time_string(int(st.st_mtime))
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return 304
        ims = self.headers.get("If-Modified-Since")
        if ims and not self.headers.get("If-None-Match"):
            import email.utils
            t = email.utils.parsedate_to_datetime(ims).timestamp()
            if int(st.st_mtime) <= t:
                self.send_response(304)
                self.end_headers()
                return 304
        start, end, code = 0, st.st_size - 1, 200
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            start, end, code = int(a), min(int(b), st.st_size - 1), 206
        self.send_response(code)
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{st.st_size}")
        self.end_headers()
        if not head:
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))
        return code

    def do_HEAD(self):
        self._answer(True)

    def do_GET(self):
        self._answer(False)


def read_vectors(db, video_id):
    """{start_ms: (model, floats)} for a video's window segments."""
    rows = db.execute(
        "SELECT s.start_ms, sp.model, e.vector FROM segments s JOIN embeddings e ON "
        "e.segment_id = s.id JOIN spaces sp ON sp.id = e.space_id WHERE s.video_id = ? "
        "ORDER BY s.start_ms, sp.model", (video_id,)).fetchall()
    return {(r[0], r[1]): vxtest.floats(r[2]) for r in rows}


class IndexTest(vxtest.TempDirTest):
    prefix, lib_name = "vidx-index-", "lib"

    def put(self, name, as_name=None):
        dst = os.path.join(self.lib, as_name or name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(CLIPS, name), dst)
        return dst

    def index(self, *extra, model=None, expect=0):
        args = ["--data", self.data]
        if model:
            args += ["--model", model]
        code, out, err = run(*args, "--json", "index", *extra)
        self.assertEqual(code, expect, f"stdout: {out}\nstderr: {err}")
        return json.loads(out) if out.strip() else None, err

    def verify(self):
        code, out, err = run("--data", self.data, "verify")
        self.assertEqual(code, 0, out + err)

    def videos(self):
        with self.db() as db:
            return {r[0]: r for r in db.execute(
                "SELECT location, id, status, last_error, size_bytes, mtime_ms, content_hash "
                "FROM videos")}

    def check_segments(self, durations, model_count=1):
        """Every indexed video has exactly its windows, each with a thumbnail and a vector per
        model; no duplicates."""
        with self.db() as db:
            for loc, dur in durations.items():
                row = db.execute("SELECT id, status FROM videos WHERE location = ?",
                                 (os.path.join(self.lib, loc),)).fetchone()
                self.assertIsNotNone(row, loc)
                self.assertEqual(row[1], 1, f"{loc} not indexed")
                segs = db.execute("SELECT id, start_ms, end_ms, thumb, level FROM segments "
                                  "WHERE video_id = ? ORDER BY start_ms", (row[0],)).fetchall()
                want = windows(dur)
                self.assertEqual(len(segs), len(want), f"{loc}: {segs}")
                for (sid, s, e, thumb, level), (ws, we) in zip(segs, want):
                    self.assertEqual(level, 0)
                    self.assertEqual(s, ws, loc)
                    if we == dur:  # the last window ends where the file does (within a frame)
                        self.assertLessEqual(abs(e - we), 45, f"{loc}: end {e}, expected {we}")
                    else:
                        self.assertEqual(e, we, loc)
                    self.assertIsNotNone(thumb)
                    with open(os.path.join(self.data, "thumbs", thumb), "rb") as f:
                        jpeg = f.read()
                    self.assertEqual(jpeg[:2], b"\xff\xd8", thumb)
                    n = db.execute("SELECT COUNT(*) FROM embeddings WHERE segment_id = ?",
                                   (sid,)).fetchone()[0]
                    self.assertEqual(n, model_count, f"{loc} segment {s}")

    def test_lifecycle(self):
        for name in GOOD:
            self.put(name)
        # Broken files, and files the crawl must skip.
        with open(os.path.join(CLIPS, "g_noaudio.mp4"), "rb") as f:
            g = f.read()
        with open(os.path.join(CLIPS, "b_vp9.mkv"), "rb") as f:
            b = f.read()
        with open(os.path.join(self.lib, "truncated.mkv"), "wb") as f:
            f.write(b[: len(b) * 35 // 100])
        with open(os.path.join(self.lib, "truncated_moov.mp4"), "wb") as f:
            f.write(g[: len(g) // 3])
        open(os.path.join(self.lib, "zero.mp4"), "wb").close()
        rnd = random.Random(7)
        with open(os.path.join(self.lib, "garbage.mp4"), "wb") as f:
            f.write(bytes(rnd.randrange(256) for _ in range(20000)))
        self.put("audio_only.m4a")
        with open(os.path.join(self.lib, "notes.txt"), "w") as f:
            f.write("not a video\n")
        with open(os.path.join(self.lib, "random.dat"), "wb") as f:  # probed, not a video
            f.write(bytes(rnd.randrange(256) for _ in range(3000)))
        self.put("c_vp8.webm", ".hidden.webm")
        self.put("c_vp8.webm", "download.mp4.part")
        self.put("c_vp8.webm", "half.mkv.crdownload")
        os.symlink("..", os.path.join(self.lib, "sub", "loop"))
        broken = {"truncated.mkv", "truncated_moov.mp4", "zero.mp4", "garbage.mp4",
                  "audio_only.m4a"}

        # --- first run ---
        t0 = time.time()
        s, err = self.index(self.lib, "--jobs", "2", model=MODEL)
        self.assertIn("modalities: vision", err)
        self.assertEqual(s["status"], "ok")
        self.assertEqual(s["library"], "lib")
        self.assertEqual(s["indexed"], len(GOOD), s)
        self.assertEqual(s["failed"], len(broken), s)
        self.assertEqual((s["unchanged"], s["moved"], s["deleted"]), (0, 0, 0))
        self.assertEqual(s["not_video"], 1)
        self.assertEqual(s["crawl"]["loops_skipped"], 1)
        self.assertEqual(s["crawl"]["hidden_skipped"], 1)
        self.assertEqual(s["crawl"]["temporary_skipped"], 2)
        nseg = sum(len(windows(d)) for d, _ in GOOD.values())
        self.assertEqual((s["segments"], s["embeddings"]), (nseg, nseg))
        failures = {os.path.relpath(f["location"], self.lib): f["reason"] for f in s["failures"]}
        self.assertEqual(set(failures), broken)
        self.assertIn("audio", failures["audio_only.m4a"])
        self.assertIn("empty", failures["zero.mp4"])
        for r in failures.values():
            self.assertTrue(r)
        vids = self.videos()
        self.assertEqual(len(vids), len(GOOD) + len(broken))
        for name in broken:
            row = vids[os.path.join(self.lib, name)]
            self.assertEqual(row[2], 2, name)  # failed
            self.assertTrue(row[3])  # with the reason
        for loc, row in vids.items():
            size = os.stat(loc).st_size
            self.assertEqual(row[4], size)
        self.check_segments({k: v[0] for k, v in GOOD.items()})
        with self.db() as db:
            runs = db.execute("SELECT status, videos_done, videos_failed FROM index_runs").fetchall()
            self.assertEqual(runs, [("ok", len(GOOD), len(broken))])
        self.verify()
        code, out, _ = run("--data", self.data, "status", "--json")
        self.assertEqual(code, 0)
        print(f"first run: {time.time() - t0:.1f} s", file=sys.stderr)

        # --- unchanged re-run: nothing embedded, nothing written ---
        with self.db() as db:
            gen = db.execute("SELECT generation FROM state").fetchone()[0]
            emb = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        s, _ = self.index("--library", "lib", model=MODEL)
        self.assertEqual((s["indexed"], s["failed"], s["moved"], s["deleted"]), (0, 0, 0, 0))
        self.assertEqual(s["unchanged"], len(GOOD) + len(broken))
        self.assertEqual(s["failed_unchanged"], len(broken))
        self.assertEqual((s["segments"], s["embeddings"]), (0, 0))
        with self.db() as db:
            self.assertEqual(db.execute("SELECT generation FROM state").fetchone()[0], gen)
            self.assertEqual(db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0], emb)

        # --- add, modify, rename, delete, touch, fix ---
        before = self.videos()
        with self.db() as db:
            moved_vecs = read_vectors(db, before[os.path.join(self.lib, "a_h264.mp4")][1])
            moved_segs = db.execute(
                "SELECT start_ms, end_ms FROM segments WHERE video_id = ? ORDER BY start_ms",
                (before[os.path.join(self.lib, "a_h264.mp4")][1],)).fetchall()
            moved_seg_ids = db.execute(
                "SELECT id FROM segments WHERE video_id = ? ORDER BY id",
                (before[os.path.join(self.lib, "a_h264.mp4")][1],)).fetchall()
            # vector ids are segment ids: the embedding rows of the moved video's segments
            moved_emb_ids = db.execute(
                "SELECT e.segment_id, e.space_id FROM embeddings e JOIN segments s"
                " ON s.id = e.segment_id WHERE s.video_id = ? ORDER BY 1, 2",
                (before[os.path.join(self.lib, "a_h264.mp4")][1],)).fetchall()
            deleted_id = before[os.path.join(self.lib, "e_h264.mov")][1]
        self.put("i_new.mp4")
        self.put("c_vp8_v2.webm", "c_vp8.webm")
        os.rename(os.path.join(self.lib, "a_h264.mp4"),
                  os.path.join(self.lib, "sub", "a_renamed.mp4"))
        os.remove(os.path.join(self.lib, "e_h264.mov"))
        d_path = os.path.join(self.lib, "d_mpeg4.avi")
        st = os.stat(d_path)
        os.utime(d_path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.put("fixed.mp4", "zero.mp4")
        s, _ = self.index(self.lib, model=MODEL)
        self.assertEqual(s["indexed"], 3, s)  # i_new, c_vp8 (changed), zero (fixed)
        self.assertEqual(s["moved"], 1, s)
        self.assertEqual(s["deleted"], 1, s)
        self.assertEqual(s["failed"], 0, s)
        self.assertEqual(s["unchanged"], len(GOOD) + len(broken) - 4, s)
        after = self.videos()
        self.assertNotIn(os.path.join(self.lib, "a_h264.mp4"), after)
        self.assertNotIn(os.path.join(self.lib, "e_h264.mov"), after)
        self.assertFalse(os.path.exists(os.path.join(self.data, "thumbs", f"v{deleted_id}"))
                         and deleted_id not in {r[1] for r in after.values()})
        new_a = after[os.path.join(self.lib, "sub", "a_renamed.mp4")]
        self.assertEqual(new_a[6], before[os.path.join(self.lib, "a_h264.mp4")][6])
        # Moved in place: the same video row, segment ids and vector ids.
        self.assertEqual(new_a[1], before[os.path.join(self.lib, "a_h264.mp4")][1])
        with self.db() as db:
            self.assertEqual(db.execute("SELECT id FROM segments WHERE video_id = ? ORDER BY id",
                                        (new_a[1],)).fetchall(), moved_seg_ids)
            self.assertEqual(db.execute(
                "SELECT e.segment_id, e.space_id FROM embeddings e JOIN segments s"
                " ON s.id = e.segment_id WHERE s.video_id = ? ORDER BY 1, 2",
                (new_a[1],)).fetchall(), moved_emb_ids)
            self.assertTrue(moved_emb_ids)
        with self.db() as db:
            # The moved file kept its segments and vectors (no re-encoding).
            self.assertEqual(read_vectors(db, new_a[1]), moved_vecs)
            self.assertEqual(db.execute(
                "SELECT start_ms, end_ms FROM segments WHERE video_id = ? ORDER BY start_ms",
                (new_a[1],)).fetchall(), moved_segs)
        # The touched file is unchanged and now carries its new mtime.
        self.assertEqual(after[d_path][5], (st.st_mtime_ns + 5_000_000_000) // 1_000_000)
        self.assertEqual(after[d_path][1], before[d_path][1])
        durations = {k: v[0] for k, v in GOOD.items() if k not in ("a_h264.mp4", "e_h264.mov")}
        durations.update({"sub/a_renamed.mp4": 6000, "i_new.mp4": 2000, "c_vp8.webm": 3000,
                          "zero.mp4": 2000})
        self.check_segments(durations)
        self.verify()

        # --- a move alone (there and back): same ids, no new generation, indexes untouched ---
        renamed = os.path.join(self.lib, "sub", "a_renamed.mp4")
        elsewhere = os.path.join(self.lib, "sub", "deeper", "a_elsewhere.mp4")
        os.makedirs(os.path.dirname(elsewhere))
        for frm, to in ((renamed, elsewhere), (elsewhere, renamed)):
            with self.db() as db:
                gen = db.execute("SELECT generation FROM state").fetchone()[0]
            index_files = {n: os.stat(os.path.join(self.data, "index", n)).st_mtime_ns
                           for n in os.listdir(os.path.join(self.data, "index"))}
            os.rename(frm, to)
            s, _ = self.index(self.lib, model=MODEL)
            self.assertEqual((s["moved"], s["indexed"], s["deleted"], s["embeddings"]),
                             (1, 0, 0, 0), s)
            row = self.videos()[to]
            self.assertEqual(row[1], new_a[1])
            self.assertNotIn(frm, self.videos())
            with self.db() as db:
                self.assertEqual(db.execute("SELECT generation FROM state").fetchone()[0], gen)
                self.assertEqual(db.execute("SELECT id FROM segments WHERE video_id = ? ORDER "
                                            "BY id", (row[1],)).fetchall(), moved_seg_ids)
                self.assertEqual(read_vectors(db, row[1]), moved_vecs)
            self.assertEqual({n: os.stat(os.path.join(self.data, "index", n)).st_mtime_ns
                              for n in os.listdir(os.path.join(self.data, "index"))},
                             index_files)
        os.rmdir(os.path.dirname(elsewhere))
        self.verify()

        # --- another model: only the vectors are computed, segments are kept ---
        with self.db() as db:
            seg_ids = db.execute("SELECT id FROM segments ORDER BY id").fetchall()
        indexed = len(durations)
        s, _ = self.index("--library", "lib", "--dry-run", model=MODEL2)
        self.assertEqual((s["indexed"], s["unchanged"]), (indexed, len(broken) - 1))  # zero.mp4 was fixed
        s, _ = self.index("--library", "lib", model=MODEL2)
        self.assertEqual((s["indexed"], s["embedded_only"], s["segments"]), (indexed, indexed, 0))
        self.assertEqual(s["embeddings"], sum(len(windows(d)) for d in durations.values()))
        with self.db() as db:
            self.assertEqual(db.execute("SELECT id FROM segments ORDER BY id").fetchall(), seg_ids)
        self.check_segments(durations, model_count=2)
        self.verify()
        s, _ = self.index("--library", "lib", model=MODEL2)
        self.assertEqual((s["indexed"], s["embeddings"]), (0, 0))

        # --- dry run and no model ---
        self.put("i_new.mp4", "j_dry.mp4")
        s, _ = self.index("--library", "lib", "--dry-run")
        self.assertTrue(s["dry_run"])
        self.assertEqual(s["indexed"], 1)
        self.assertNotIn(os.path.join(self.lib, "j_dry.mp4"), self.videos())
        # The library stored its model: --no-model runs without one.
        s, err = self.index("--library", "lib", "--no-model")
        self.assertIn("--model", err)  # says how to enable vision
        self.assertEqual((s["indexed"], s["embeddings"], s["segments"]), (1, 0, 1))
        self.verify()

    def test_errors(self):
        code, _, err = run("--data", self.data, "index")
        self.assertEqual(code, 2)
        code, _, err = run("--data", self.data, "index", "--library", "nope")
        self.assertEqual(code, 1)
        self.assertIn("nope", err)
        code, _, err = run("--data", self.data, "index", os.path.join(self.tmp, "missing"))
        self.assertEqual(code, 1)
        self.assertIn("missing", err)
        code, _, err = run("--data", self.data, "index", self.lib, "--overlap", "4s")
        self.assertEqual(code, 2)
        # An unreachable server: a clear error, and no empty library left behind.
        code, _, err = run("--data", self.data, "index", "http://127.0.0.1:1/videos/")
        self.assertEqual(code, 1)
        self.assertIn("127.0.0.1:1", err)
        # Another indexer holds the data directory: exit 4, naming the holder.
        s, _ = self.index(self.lib)
        self.assertEqual(s["library_id"], 1)  # the failed runs above created no library
        with open(os.path.join(self.data, "lock"), "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            code, _, err = run("--data", self.data, "index", self.lib)
        self.assertEqual(code, 4, err)
        self.assertIn("pid", err)
        # Same name, other folder.
        other = os.path.join(self.tmp, "other", "lib")
        os.makedirs(other)
        code, _, err = run("--data", self.data, "index", other)
        self.assertEqual(code, 1)
        self.assertIn("--library", err)

    def test_overlap_and_window(self):
        self.put("g_noaudio.mp4")
        s, _ = self.index(self.lib, "--window", "3s", "--overlap", "1s", "--no-thumbnails")
        self.assertEqual(s["segments"], len(windows(9000, 3000, 1000)))
        with self.db() as db:
            rows = db.execute("SELECT start_ms, end_ms, thumb FROM segments ORDER BY start_ms"
                              ).fetchall()
        self.assertEqual([r[0] for r in rows], [w[0] for w in windows(9000, 3000, 1000)])
        self.assertTrue(all(r[2] is None for r in rows))

    def test_every_reruns_until_sigterm(self):
        self.put("c_vp8.webm")
        e = dict(os.environ, VIDX_LOG="info")
        p = subprocess.Popen([VIDX, "--data", self.data, "index", self.lib, "--every", "1s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        deadline, runs = time.time() + 30, 0
        added = False
        while time.time() < deadline and p.poll() is None:
            try:
                with self.db() as db:
                    runs = db.execute("SELECT COUNT(*) FROM index_runs WHERE status = 'ok'"
                                      ).fetchone()[0]
            except sqlite3.Error:
                runs = 0
            if runs >= 1 and not added:
                self.put("i_new.mp4")  # picked up by a later round
                added = True
            if runs >= 3:
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertGreaterEqual(runs, 3)
        self.assertIn("next run in", err)
        self.assertEqual(out.count("1 indexed"), 2, out)  # c_vp8, then i_new
        self.assertEqual(len(self.videos()), 2)
        self.verify()

    def test_watch(self):
        """`vidx index --watch`: a clip written slowly in two parts is taken only once its
        size settles; a clip moved into a new subfolder is found; a deletion leaves the
        catalog; SIGTERM stops cleanly and the catalog verifies."""
        self.put("c_vp8.webm")
        p = subprocess.Popen([VIDX, "--data", self.data, "index", self.lib, "--watch", "--settle",
                              "2s", "--no-asr", "--no-ocr"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=vxtest.clean_env("info"))

        def rows():
            try:
                with self.db() as db:
                    return {r[0]: r[1:] for r in db.execute(
                        "SELECT location, status, size_bytes FROM videos")}
            except sqlite3.Error:
                return {}

        def wait_for(cond, seconds=40):  # generous: CI machines may be busy
            deadline = time.time() + seconds
            while time.time() < deadline:
                if p.poll() is not None:
                    self.fail(f"vidx exited early: {p.communicate()}")
                got = rows()
                if cond(got):
                    return got
                time.sleep(0.1)
            self.fail(f"timed out; catalog: {rows()}")

        try:
            first = os.path.join(self.lib, "c_vp8.webm")
            wait_for(lambda r: r.get(first, (0,))[0] == 1)
            # Written in two parts, 0.6 s apart (well under the 2 s settle time, with room for
            # a busy machine): never taken half.
            with open(os.path.join(CLIPS, "i_new.mp4"), "rb") as f:
                clip = f.read()
            slow = os.path.join(self.lib, "slow.mp4")
            with open(slow, "wb") as f:
                f.write(clip[:len(clip) // 2])
                f.flush()
                time.sleep(0.6)
                self.assertNotIn(slow, rows())
                f.write(clip[len(clip) // 2:])
            got = wait_for(lambda r: slow in r and r[slow][0] == 1)
            self.assertEqual(got[slow][1], len(clip))
            # A new subfolder, and a complete file moved into it.
            os.makedirs(os.path.join(self.lib, "new", "deeper"))
            time.sleep(0.3)
            outside = os.path.join(self.tmp, "g_noaudio.mp4")
            shutil.copyfile(os.path.join(CLIPS, "g_noaudio.mp4"), outside)
            moved_in = os.path.join(self.lib, "new", "deeper", "g.mp4")
            os.rename(outside, moved_in)
            wait_for(lambda r: r.get(moved_in, (0,))[0] == 1)
            # Gone: leaves the catalog.
            os.remove(slow)
            wait_for(lambda r: slow not in r)
            with self.db() as db:
                failed = db.execute("SELECT COALESCE(SUM(videos_failed), 0) FROM index_runs"
                                    ).fetchone()[0]
            self.assertEqual(failed, 0)  # no half-written file was ever tried
        finally:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
        self.assertIn(p.returncode, (0, 130), err)
        self.assertIn("watching", err)
        self.assertEqual(set(self.videos()), {first, moved_in})
        self.verify()

    def test_http_archive(self):
        """An HTTP directory listing (Python's http.server) as a library: files found through
        the listing pages, sizes and mtimes from HEAD, decoded from temporary copies."""
        for name in ("c_vp8.webm", "g_noaudio.mp4", "sub/h_h264.mkv"):
            self.put(name)
        self.put("c_vp8.webm", ".hidden.webm")
        self.put("c_vp8.webm", "part.mp4.part")
        with open(os.path.join(self.lib, "notes.txt"), "w") as f:
            f.write("text\n")
        handler = functools.partial(QuietHandler, directory=self.lib)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            s, _ = self.index(url, "--library", "web", model=MODEL)
            self.assertEqual((s["indexed"], s["failed"]), (3, 0), s)
            self.assertEqual(s["crawl"]["hidden_skipped"], 1)
            self.assertEqual(s["crawl"]["temporary_skipped"], 1)
            with self.db() as db:
                rows = dict(db.execute("SELECT location, id FROM videos").fetchall())
                self.assertEqual(set(rows), {url + "c_vp8.webm", url + "g_noaudio.mp4",
                                             url + "sub/h_h264.mkv"})
                segs = db.execute("SELECT start_ms FROM segments WHERE video_id = ? ORDER BY "
                                  "start_ms", (rows[url + "g_noaudio.mp4"],)).fetchall()
                self.assertEqual([r[0] for r in segs], [w[0] for w in windows(9000)])
            self.verify()
            s, _ = self.index("--library", "web", model=MODEL)
            self.assertEqual((s["indexed"], s["unchanged"]), (0, 3))
            os.rename(os.path.join(self.lib, "g_noaudio.mp4"),
                      os.path.join(self.lib, "sub", "g_moved.mp4"))
            os.remove(os.path.join(self.lib, "c_vp8.webm"))
            s, _ = self.index("--library", "web", model=MODEL)
            self.assertEqual((s["indexed"], s["moved"], s["deleted"], s["unchanged"]),
                             (0, 1, 1, 1), s)
            self.verify()
        finally:
            server.shutdown()
            server.server_close()

    def test_http_validators_ranges_retries(self):
        """HTTP archive details against a server that sends ETags, honours Range and injects
        faults: retries with backoff on 500s and on a slow answer (timeout), a size cap, 304s
        for unchanged files, a touched file hashed from its two ends by Range requests."""
        big = os.path.join(self.lib, "big.mp4")
        ffmpeg(*src(2, "testsrc2", "320x240"), "-c:v", "libx264", "-qp", "0", "-pix_fmt",
               "yuv444p", big)
        self.assertGreater(os.path.getsize(big), 3 * 128 * 1024)
        self.put("c_vp8.webm")
        self.put("g_noaudio.mp4")
        self.put("c_vp8.webm", "down.webm")
        with open(os.path.join(self.lib, "huge.mp4"), "wb") as f:
            f.write(b"\0" * (os.path.getsize(big) + 1))
        cap = str(os.path.getsize(big) + 1 - 1)  # big fits exactly; huge is one byte over
        ArchiveHandler.root = self.lib
        ArchiveHandler.fail = {"c_vp8.webm": 2}
        ArchiveHandler.always_fail = {"down.webm"}
        ArchiveHandler.slow = {"g_noaudio.mp4": 2.5}
        ArchiveHandler.log = []
        ArchiveHandler.received = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ArchiveHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        opts = ("--library", "web", "--http-timeout", "1s", "--http-retries", "2",
                "--max-size", cap)
        try:
            t0 = time.time()
            s, _ = self.index(url, *opts)
            self.assertEqual((s["indexed"], s["failed"]), (3, 1), s)
            self.assertEqual(s["crawl"]["errors"], 1, s)  # down.webm: 500 after the retries
            self.assertIn("size cap", s["failures"][0]["reason"])
            self.assertEqual(s["failures"][0]["location"], url + "huge.mp4")
            log = list(ArchiveHandler.log)
            self.assertEqual([c for m, p, r, c in log if p == "c_vp8.webm" and m == "HEAD"],
                             [500, 500, 200])
            self.assertEqual([c for m, p, r, c in log if p == "down.webm"], [500, 500, 500])
            # g_noaudio: the first HEAD timed out (its answer came too late), the retry won.
            self.assertEqual(ArchiveHandler.received.count(("HEAD", "g_noaudio.mp4")), 2)
            self.assertFalse([1 for m, p, r, c in log if p == "huge.mp4" and m == "GET"])
            with self.db() as db:
                rows = {r[0]: r[1:] for r in db.execute(
                    "SELECT location, status, etag, last_error FROM videos")}
            self.assertEqual(rows[url + "huge.mp4"][0], 2)
            self.assertIn("size cap", rows[url + "huge.mp4"][2])
            for name in ("big.mp4", "c_vp8.webm", "g_noaudio.mp4"):
                self.assertEqual(rows[url + name][0], 1, name)
                self.assertTrue(rows[url + name][1].startswith('"'), rows[url + name])
            self.assertNotIn(url + "down.webm", rows)
            self.verify()

            # Unchanged: every known file's conditional HEAD gets 304; nothing is downloaded.
            ArchiveHandler.log = []
            s, _ = self.index("--library", "web", *opts[2:])
            self.assertEqual((s["indexed"], s["unchanged"], s["failed_unchanged"]), (0, 4, 1), s)
            log = list(ArchiveHandler.log)
            heads = {p: c for m, p, r, c in log if m == "HEAD"}
            for name in ("big.mp4", "c_vp8.webm", "g_noaudio.mp4", "huge.mp4"):
                self.assertEqual(heads[name], 304, (name, log))
            self.assertFalse([1 for m, p, r, c in log if m == "GET" and "." in p], log)

            # Touched (new mtime, same bytes): a new ETag, so the two ends are fetched with
            # Range requests (never the whole file); unchanged, with the new ETag stored.
            st = os.stat(big)
            os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
            ArchiveHandler.log = []
            s, _ = self.index("--library", "web", *opts[2:])
            self.assertEqual((s["indexed"], s["unchanged"], s["moved"]), (0, 4, 0), s)
            gets = [(r, c) for m, p, r, c in ArchiveHandler.log if m == "GET" and p == "big.mp4"]
            size = os.path.getsize(big)
            self.assertEqual(sorted(gets), sorted([("bytes=0-65535", 206),
                                                   (f"bytes={size - 65536}-{size - 1}", 206)]))
            with self.db() as db:
                etag = db.execute("SELECT etag FROM videos WHERE location = ?",
                                  (url + "big.mp4",)).fetchone()[0]
            self.assertIn(f"{os.stat(big).st_mtime_ns:x}", etag)

            # Deleted on the server: leaves the catalog; the failing one is kept out still.
            os.remove(os.path.join(self.lib, "c_vp8.webm"))
            s, _ = self.index("--library", "web", *opts[2:])
            self.assertEqual((s["deleted"], s["indexed"]), (1, 0), s)
            self.verify()
            print(f"http details: {time.time() - t0:.1f} s", file=sys.stderr)
        finally:
            server.shutdown()
            server.server_close()

    def test_sample_media_library(self):
        """The media module's sample library (scripts/make_sample_media.sh: many containers,
        codecs, colour formats, rotation, VFR, subtitles, a Unicode name, broken files):
        every file is indexed or recorded as failed, nothing crashes, verify passes."""
        if not SAMPLES:
            self.skipTest("no sample media folder given")
        lib = os.path.join(self.tmp, "samples")
        shutil.copytree(SAMPLES, lib, ignore=shutil.ignore_patterns("truth"))
        s, _ = self.index(lib, model=MODEL)
        self.assertEqual(s["status"], "ok")
        with self.db() as db:
            rows = db.execute("SELECT location, status, last_error, (SELECT COUNT(*) FROM "
                              "segments WHERE video_id = videos.id) FROM videos").fetchall()
        by_name = {os.path.relpath(r[0], lib): r for r in rows}
        self.assertEqual(len(rows), s["indexed"] + s["failed"])
        for name in ("audio_only.m4a", "audio_only.wav", "broken/empty.mp4",
                     "broken/garbage.mp4", "broken/text.mkv"):
            self.assertEqual(by_name[name][1], 2, name)
            self.assertTrue(by_name[name][2], name)
        for name in ("grey_h264.mp4", "grey_vp9.mkv", "grey_mpeg4.avi", "grey_h264.ts",
                     "grey_vfr.mkv", "rotated90.mp4", "subs.mkv", "ünïcödé 視頻.mp4",
                     "solid_bt2020_hevc10.mp4", "av_prores_pcm.mov"):
            self.assertEqual(by_name[name][1], 1, f"{name}: {by_name[name][2]}")
            self.assertGreaterEqual(by_name[name][3], 1, name)
        for loc, status, error, nseg in rows:
            self.assertIn(status, (1, 2), loc)
            self.assertEqual(nseg > 0, status == 1, loc)
        self.verify()
        s, _ = self.index(lib, model=MODEL)
        self.assertEqual((s["indexed"], s["failed"], s["unchanged"]), (0, 0, len(rows)))

    def library_of_copies(self, count):
        """count copies of the 20 s clip (5 windows each)."""
        for i in range(count):
            self.put("long.mp4", f"v{i:02d}.mp4")

    def check_consistent(self, complete):
        """Indexed videos have all their windows and vectors, pending ones none; nothing is
        duplicated."""
        with self.db() as db:
            rows = db.execute("SELECT id, status FROM videos").fetchall()
            for vid, status in rows:
                segs = db.execute("SELECT start_ms, end_ms FROM segments WHERE video_id = ? "
                                  "ORDER BY start_ms", (vid,)).fetchall()
                if status == 1:
                    self.assertEqual([s for s, _ in segs], [s for s, _ in windows(20000)])
                    n = db.execute("SELECT COUNT(*) FROM embeddings e JOIN segments s ON "
                                   "s.id = e.segment_id WHERE s.video_id = ?", (vid,)).fetchone()
                    self.assertEqual(n[0], len(segs))
                else:
                    self.assertFalse(complete, f"video {vid} has status {status}")
                    self.assertEqual(segs, [])
            return sum(1 for _, st in rows if st == 1)

    def test_sigint_stops_after_video_in_flight(self):
        self.library_of_copies(24)
        e = dict(os.environ, VIDX_LOG="info")
        p = subprocess.Popen([VIDX, "--data", self.data, "--model", MODEL, "--json", "index",
                              self.lib, "--jobs", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=e)
        deadline = time.time() + 60
        done = 0
        while time.time() < deadline and p.poll() is None:
            try:
                with self.db() as db:
                    done = db.execute("SELECT COUNT(*) FROM videos WHERE status = 1").fetchone()[0]
            except sqlite3.Error:
                done = 0
            if done >= 1:
                break
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        if p.returncode == 0:
            self.skipTest("the run finished before the signal arrived")
        self.assertEqual(p.returncode, 130, err)
        s = json.loads(out)
        self.assertTrue(s["interrupted"])
        indexed = self.check_consistent(complete=False)
        self.assertEqual(indexed, s["indexed"])
        self.assertLess(indexed, 24)
        self.verify()
        with self.db() as db:
            self.assertEqual(db.execute("SELECT status FROM index_runs").fetchall(), [("interrupted",)])
        s, _ = self.index("--library", "lib", model=MODEL)
        self.assertEqual(s["indexed"], 24 - indexed)
        self.assertEqual(self.check_consistent(complete=True), 24)
        self.verify()

    def test_sigkill_loses_at_most_the_videos_in_flight(self):
        self.library_of_copies(12)
        rnd = random.Random(11)
        e = dict(os.environ, VIDX_LOG="warn")
        for _ in range(4):
            p = subprocess.Popen([VIDX, "--data", self.data, "--model", MODEL, "index", self.lib,
                                  "--jobs", "2"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=e)
            time.sleep(rnd.uniform(0.05, 0.5))
            p.kill()
            p.wait()
            if os.path.exists(os.path.join(self.data, "catalog.db")):
                self.check_consistent(complete=False)
        s, _ = self.index("--library", "lib", model=MODEL)
        self.assertEqual(s["failed"], 0)
        self.assertEqual(self.check_consistent(complete=True), 12)
        self.verify()
        s, _ = self.index("--library", "lib", model=MODEL)
        self.assertEqual((s["indexed"], s["unchanged"]), (0, 12))


def main():
    global VIDX, SOURCE_DIR, MODEL, MODEL2, CLIPS, SAMPLES
    ap = argparse.ArgumentParser()
    ap.add_argument("--vidx", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--clips", help="folder for the generated clips (kept between runs)")
    ap.add_argument("--samples", help="folder made by scripts/make_sample_media.sh")
    args, rest = ap.parse_known_args()
    VIDX, SOURCE_DIR = args.vidx, args.source_dir
    SAMPLES = args.samples if args.samples and os.path.isdir(args.samples) else None
    models = os.path.join(SOURCE_DIR, "tests", "reference", "fixtures", "models")
    MODEL = os.path.join(models, "distilled_like_f32")  # 8 frames of 28x28: fast
    MODEL2 = os.path.join(models, "s2_1b_like_f32")    # 4 frames of 42x42
    CLIPS = args.clips or os.path.join(tempfile.gettempdir(), f"vidx-index-clips-{os.getuid()}")
    os.makedirs(CLIPS, exist_ok=True)
    make_clips(CLIPS)
    vxtest.unittest_main(rest)


if __name__ == "__main__":
    main()
