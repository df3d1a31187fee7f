#!/usr/bin/python3
"""Integration test of `vidx index --snap-to-shots`: a clip of five lavfi sources joined at known
cut times (tests/media/make_shot_clip.sh: 2.60, 6.20, 10.44, 14.00 s, with a flash and a fade
that are not cuts) is indexed with the real vidx and a tiny reference model; the segments in
catalog.db (read with Python's sqlite3, independently of vidx) must start and end on the cuts,
none may straddle a cut, and every segment gets its vector. The option is stored with the
library: a re-crawl by name snaps a new file's windows too, and --no-snap-to-shots brings the
fixed windows back. Python's standard library only (Debian's /usr/bin/python3).
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vxtest  # noqa: E402
from vxtest import ffmpeg  # noqa: E402

VIDX = CLIP_SCRIPT = MODEL = None
CUTS_MS = [2600, 6200, 10440, 14000]


def run(*args, timeout=180):
    return vxtest.run(VIDX, *args, timeout=timeout)


class SnapToShots(vxtest.TempDirTest):
    prefix, lib_name = "vidx-index-shots-", "shots"

    def setUp(self):
        super().setUp()
        clip = os.path.join(self.tmp, "made", "cuts.mp4")  # the script also makes a twin
        subprocess.run([CLIP_SCRIPT, clip], check=True, timeout=120)
        shutil.copy(clip, os.path.join(self.lib, "cuts.mp4"))

    def index(self, *extra):
        code, out, err = run("--data", self.data, "--json", "index", "--no-asr", "--no-ocr",
                             "--no-subtitles", "--jobs", "1", *extra)
        self.assertEqual(code, 0, f"stdout: {out}\nstderr: {err}")
        return json.loads(out)

    def segments(self, name):
        with self.db() as db:
            rows = db.execute(
                "SELECT s.start_ms, s.end_ms, (SELECT count(*) FROM embeddings e WHERE "
                "e.segment_id = s.id) FROM segments s JOIN videos v ON v.id = s.video_id "
                "WHERE v.location LIKE ? ORDER BY s.start_ms", ("%/" + name,)).fetchall()
            opts = dict(db.execute("SELECT key, value FROM library_options"))
        return rows, opts

    def test_segments_land_on_cuts(self):
        s = self.index(self.lib, "--snap-to-shots", "--model", MODEL)
        self.assertEqual(s["indexed"], 1, s)
        self.assertEqual(s["failed"], 0, s)
        self.assertEqual(s["shots"]["videos"], 1, s)
        self.assertEqual(s["shots"]["cuts"], len(CUTS_MS), s)
        self.assertEqual(s["shots"]["frames"], 425, s)
        self.assertGreater(s["shots"]["seconds"], 0, s)
        rows, opts = self.segments("cuts.mp4")
        bounds = [(a, b) for a, b, _ in rows]
        # idx.h's rule on these cuts (window 4 s: ends move to a cut within [-2 s, +1 s]).
        self.assertEqual(bounds, [(0, 2600), (2600, 6200), (6200, 10440), (10440, 14000),
                                  (14000, 17000)])
        for a, b in bounds:
            for c in CUTS_MS:
                self.assertFalse(a < c < b, f"segment {a}-{b} straddles the cut at {c}")
        self.assertTrue(all(n == 1 for _, _, n in rows), rows)  # every segment embedded
        self.assertEqual(opts.get("snap_to_shots"), "1", opts)

        # Stored: a re-crawl by name snaps a new file (cut at 3.0 s) as well ...
        ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x90:r=25:d=3", "-f", "lavfi",
               "-i", "smptebars=s=160x90:r=25:d=3", "-filter_complex",
               "[0][1]concat=n=2:v=1:a=0,format=yuv420p[v]", "-map", "[v]", "-c:v", "libx264",
               "-preset", "veryfast", os.path.join(self.lib, "two.mp4"))
        s = self.index("--library", "shots")
        self.assertEqual((s["indexed"], s["unchanged"], s["shots"]["cuts"]), (1, 1, 1), s)
        rows, _ = self.segments("two.mp4")
        self.assertEqual([(a, b) for a, b, _ in rows], [(0, 3000), (3000, 6000)])

        # ... and --no-snap-to-shots stores fixed windows again (a changed file re-segments).
        os.remove(os.path.join(self.lib, "two.mp4"))
        ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x90:r=25:d=3", "-f", "lavfi",
               "-i", "smptebars=s=160x90:r=25:d=3", "-filter_complex",
               "[0][1]concat=n=2:v=1:a=0,format=yuv420p[v]", "-map", "[v]", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "30", os.path.join(self.lib, "two.mp4"))
        s = self.index("--library", "shots", "--no-snap-to-shots")
        self.assertEqual(s["shots"]["videos"], 0, s)
        rows, opts = self.segments("two.mp4")
        self.assertEqual([(a, b) for a, b, _ in rows], [(0, 4000), (4000, 6000)])
        self.assertEqual(opts.get("snap_to_shots"), "0", opts)
        code, out, err = run("--data", self.data, "verify")
        self.assertEqual(code, 0, out + err)


def main():
    global VIDX, CLIP_SCRIPT, MODEL
    args, rest = vxtest.parse_args("--vidx", "--source-dir")
    VIDX = args.vidx
    CLIP_SCRIPT = os.path.join(args.source_dir, "tests", "media", "make_shot_clip.sh")
    # 8 frames of 28x28: fast
    MODEL = vxtest.reference_fixture(args.source_dir, "models", "distilled_like_f32")
    vxtest.unittest_main(rest)


if __name__ == "__main__":
    main()
