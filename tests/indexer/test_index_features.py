#!/usr/bin/python3
"""Integration tests of what `vidx index` stores beside the vision vectors, and of how it finds
and remembers libraries:

- "speech" vectors: with a model that has a text tower (tests/reference/fixtures/text/models),
  every window whose subtitle or recognised speech has text gets the text tower's vector of
  that text (subtitles first, then speech, one space between), equal to `vidx embed --text`;
  windows without text get none. A model change embeds them again from the stored texts.
- "audio" vectors: with a model that has an audio tower (fixtures/audio/models/beats_like), each
  window of a video with an audio stream gets the audio tower's vector of its 16 kHz audio,
  equal to `vidx embed --audio FILE --start --end`; a video without audio gets none.
- stored library options: `vidx index --library NAME` re-crawls with the options the library
  was indexed with (window, text modalities, model); options given again replace them.
- a manifest of URLs (a .txt file on a loopback HTTP server) crawled like a listing.

The checks read catalog.db with Python's sqlite3, independently of vidx. Python's standard
library only (Debian's /usr/bin/python3).
"""
import functools
import http.server
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vxtest  # noqa: E402
from vxtest import ffmpeg  # noqa: E402

VIDX = FIXTURES = None


def run(*args, timeout=180):
    return vxtest.run(VIDX, *args, log="info", timeout=timeout)


def rel_err(got, want):
    """DECISIONS.md §2: max|a - b| / max(max|b|, 1e-6) over the whole vector."""
    return max(abs(a - b) for a, b in zip(got, want)) / max(max(abs(b) for b in want), 1e-6)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def srt(cues):
    ts = vxtest.srt_time
    return "\n".join(f"{i + 1}\n{ts(a)} --> {ts(b)}\n{t}\n" for i, (a, b, t) in
                     enumerate(cues)) + "\n"


class Base(vxtest.TempDirTest):
    prefix, lib_name = "vidx-index-features-", "lib"

    def index(self, *extra, model=None, expect=0):
        args = ["--data", self.data] + (["--model", model] if model else [])
        code, out, err = run(*args, "--json", "index", *extra)
        self.assertEqual(code, expect, f"stdout: {out}\nstderr: {err}")
        return (json.loads(out) if out.strip() else None), err

    def vectors(self, modality, model_id=None):
        """{(location, start_ms, end_ms): floats} of one modality."""
        q = ("SELECT v.location, s.start_ms, s.end_ms, e.vector, sp.model FROM embeddings e "
             "JOIN spaces sp ON sp.id = e.space_id JOIN segments s ON s.id = e.segment_id "
             "JOIN videos v ON v.id = s.video_id WHERE sp.modality = ?")
        with self.db() as db:
            rows = db.execute(q, (modality,)).fetchall()
        return {(r[0], r[1], r[2]): vxtest.floats(r[3]) for r in rows
                if model_id is None or r[4] == model_id}

    def verify(self):
        code, out, err = run("--data", self.data, "verify")
        self.assertEqual(code, 0, out + err)


class SpeechAndAudioVectors(Base):
    def speech_texts(self):
        """{(location, start, end): the text the indexer embeds} for every window segment."""
        with self.db() as db:
            segs = db.execute("SELECT s.id, v.location, s.start_ms, s.end_ms FROM segments s "
                              "JOIN videos v ON v.id = s.video_id").fetchall()
            out = {}
            for sid, loc, a, b in segs:
                parts = []
                for source in ("subtitle", "asr"):
                    parts += [r[0] for r in db.execute(
                        "SELECT body FROM texts WHERE segment_id = ? AND source = ? ORDER BY id",
                        (sid, source))]
                out[(loc, a, b)] = " ".join(p for p in parts if p)
        return out

    def text_vector(self, model, text):
        code, out, err = run("--model", model, "--json", "embed", "--text", text)
        self.assertEqual(code, 0, out + err)
        return json.loads(out)["embedding"]

    def check_speech(self, model):
        model_id = read_json(os.path.join(model, "config.json"))["model_id"]
        texts = self.speech_texts()
        speech = self.vectors("speech", model_id)
        with_text = {k for k, t in texts.items() if t}
        self.assertTrue(with_text, "no window has text: the test proves nothing")
        self.assertTrue(set(texts) - with_text, "every window has text: the test proves little")
        self.assertEqual(set(speech), with_text)
        for key in sorted(with_text):
            want = self.text_vector(model, texts[key])
            self.assertLess(rel_err(speech[key], want), 1e-5, (key, texts[key]))
        return len(with_text)

    def test_speech_vectors(self):
        """Subtitle cues (sidecar .srt) and flite narration (when flite is installed) in some
        windows of a 12 s clip, nothing in others."""
        have_flite = shutil.which("flite") is not None
        clip = os.path.join(self.lib, "talk.mp4")
        inputs = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=12"]
        if have_flite:
            wav = os.path.join(self.tmp, "s.wav")
            subprocess.run(["flite", "-voice", "rms", "-t", "the quick brown fox jumps over the "
                            "lazy dog", "-o", wav], check=True, timeout=60)
            inputs += ["-i", wav, "-filter_complex", "[1]adelay=500|500,apad[a]", "-map", "0:v",
                       "-map", "[a]"]
        else:
            inputs += ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
        ffmpeg(*inputs, "-t", "12", "-pix_fmt", "yuv420p", "-c:a", "aac", clip)
        with open(os.path.join(self.lib, "talk.srt"), "w") as f:
            f.write(srt([(1000, 2000, "a harbor at dawn"), (9000, 10000, "zebra crossing")]))
        # a clip without any text: no speech vector at all
        ffmpeg("-f", "lavfi", "-i", "smptebars=size=64x48:rate=10:duration=5", "-pix_fmt",
               "yuv420p", os.path.join(self.lib, "quiet.mp4"))
        model = os.path.join(FIXTURES, "text", "models", "bert_1b_like")
        s, err = self.index(self.lib, "--no-ocr", model=model)
        self.assertIn("speech", s["modalities"])
        if have_flite and s["text"]["audio_seconds"] > 0:  # pocketsphinx is installed
            with self.db() as db:
                heard = " ".join(r[0] for r in db.execute(
                    "SELECT body FROM texts WHERE source = 'asr'"))
            # recognised speech, not only subtitles, gets speech vectors
            self.assertTrue({"quick", "brown", "fox", "lazy", "dog"} & set(heard.split()), heard)
        n = self.check_speech(model)
        self.assertEqual(s["embeddings"], len(self.vectors("vision")) + n)
        self.verify()
        # A new model: the stored segments get its vectors, speech ones from the stored texts.
        other = os.path.join(FIXTURES, "text", "models", "mobileclip_like")
        s, _ = self.index("--library", "lib", model=other)
        self.assertEqual(s["embedded_only"], 2, s)
        self.check_speech(other)
        self.verify()

    def test_audio_vectors(self):
        beats = os.path.join(FIXTURES, "audio", "models", "beats_like")
        tone = os.path.join(self.lib, "tone.mkv")
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=6", "-f", "lavfi", "-i",
               "aevalsrc=0.5*sin(2*PI*(200+150*t)*t):s=16000:d=6", "-pix_fmt", "yuv420p",
               "-c:a", "pcm_s16le", tone)
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=5", "-pix_fmt",
               "yuv420p", os.path.join(self.lib, "silent_film.mp4"))
        s, err = self.index(self.lib, "--no-ocr", "--no-asr", model=beats)
        self.assertIn("audio", s["modalities"])
        audio = self.vectors("audio")
        self.assertEqual(set(audio), {(tone, 0, 4000), (tone, 4000, 6000)})
        # A chirp: each window sounds different, so a window's vector is its own.
        self.assertGreater(rel_err(audio[(tone, 0, 4000)], audio[(tone, 4000, 6000)]), 0.05)
        for (loc, a, b), got in audio.items():
            code, out, err = run("--model", beats, "--json", "embed", "--audio", loc,
                                 "--start", f"{a}ms", "--end", f"{b}ms")
            self.assertEqual(code, 0, out + err)
            # 16 kHz PCM: the same samples whichever way the window is reached (a resampled
            # source may start a window at another sub-sample phase after a seek)
            self.assertLess(rel_err(got, json.loads(out)["embedding"]), 1e-5, (a, b))
        self.verify()


class LibraryOptions(Base):
    def put(self, name, seconds):
        ffmpeg("-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={seconds}",
               "-pix_fmt", "yuv420p", os.path.join(self.lib, name))

    def starts(self, name):
        with self.db() as db:
            return [r[0] for r in db.execute(
                "SELECT s.start_ms FROM segments s JOIN videos v ON v.id = s.video_id WHERE "
                "v.location = ? ORDER BY s.start_ms", (os.path.join(self.lib, name),))]

    def stored(self):
        with self.db() as db:
            return dict(db.execute("SELECT key, value FROM library_options"))

    def test_recrawl_by_name_with_stored_options(self):
        model = os.path.join(FIXTURES, "models", "distilled_like_f32")
        self.put("a.mp4", 5)
        s, _ = self.index(self.lib, "--library", "films", "--window", "2s", "--no-asr",
                          "--no-ocr", model=model)
        self.assertEqual(self.starts("a.mp4"), [0, 2000, 4000])
        opts = self.stored()
        self.assertEqual((opts["window_ms"], opts["asr"], opts["ocr"]), ("2000", "0", "0"))
        self.assertEqual(opts["model_dir"], os.path.realpath(model))
        # No PATH, no --window, no --model: the stored root, window and model.
        self.put("b.mp4", 5)
        s, err = self.index("--library", "films")
        self.assertEqual((s["indexed"], s["unchanged"]), (1, 1), s)
        self.assertEqual(self.starts("b.mp4"), [0, 2000, 4000])
        self.assertEqual(s["model_id"], read_json(os.path.join(model, "config.json"))
                         ["model_id"])
        self.assertEqual(s["embeddings"], 3)
        self.assertNotIn("asr", s["modalities"])
        # An option given again replaces the stored one; the others stay.
        self.put("c.mp4", 5)
        s, _ = self.index("--library", "films", "--window", "2500ms", "--asr")
        self.assertEqual(self.starts("c.mp4"), [0, 2500])
        opts = self.stored()
        self.assertEqual((opts["window_ms"], opts["asr"], opts["ocr"]), ("2500", "1", "0"))
        # The folder given again without --library finds the library by its root.
        self.put("d.mp4", 3)
        s, _ = self.index(self.lib, "--no-model")
        self.assertEqual(s["library"], "films")
        self.assertEqual(self.starts("d.mp4"), [0])  # one 2.5 s window + a 0.5 s rest: one
        self.assertEqual(s["embeddings"], 0)
        self.assertNotIn("model_dir", self.stored())
        self.verify()

    def test_precision(self):
        """--precision bf16 is stored with the library and gives vectors close to fp32's."""
        model = os.path.join(FIXTURES, "models", "distilled_like_f32")
        self.put("a.mp4", 5)
        code, out, err = run("--data", self.data, "index", self.lib, "--precision", "fp16")
        self.assertEqual(code, 2, out + err)
        s, err = self.index(self.lib, "--no-asr", "--no-ocr", "--precision", "bf16", model=model)
        self.assertIn("bf16", err)
        self.assertEqual(self.stored()["precision"], "bf16")
        bf16 = self.vectors("vision")
        fp32_data = os.path.join(self.tmp, "fp32")
        # fp32 by name: with no --precision the model's default on this CPU may be bf16.
        code, out, err = run("--data", fp32_data, "--model", model, "index", self.lib,
                             "--no-asr", "--no-ocr", "--precision", "fp32")
        self.assertEqual(code, 0, out + err)
        self.data, bf16_data = fp32_data, self.data
        fp32 = self.vectors("vision")
        self.assertEqual(set(fp32), set(bf16))
        for k in fp32:
            a, b = fp32[k], bf16[k]
            cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) *
                                                            sum(y * y for y in b))
            self.assertGreater(cos, 0.999, k)
            self.assertNotEqual(a, b)  # bf16 really ran
        # A re-run by name keeps bf16.
        self.data = bf16_data
        self.put("b.mp4", 3)
        s, err = self.index("--library", "lib")
        self.assertIn("bf16", err)

    def test_bad_stored_options(self):
        self.put("a.mp4", 2)
        self.index(self.lib, "--no-asr", "--no-ocr")
        # A damaged value (written behind vidx's back) is a clear error naming the key.
        db = sqlite3.connect(os.path.join(self.data, "catalog.db"))
        db.execute("UPDATE library_options SET value = 'lots' WHERE key = 'window_ms'")
        db.commit()
        db.close()
        code, out, err = run("--data", self.data, "index", "--library", "lib")
        self.assertEqual(code, 1, out + err)
        self.assertIn("window_ms", err)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Manifest(Base):
    def test_manifest_of_urls(self):
        for name, pattern in (("a.mp4", "testsrc"), ("b.webm", "smptebars"),
                              ("sub/c.mkv", "rgbtestsrc"), ("d.mp4", "testsrc"),
                              ("my film.mp4", "testsrc")):
            os.makedirs(os.path.dirname(os.path.join(self.lib, name)), exist_ok=True)
            ffmpeg("-f", "lavfi", "-i", f"{pattern}=size=64x48:rate=10:duration=3", "-pix_fmt",
                   "yuv420p", os.path.join(self.lib, name))
        handler = functools.partial(QuietHandler, directory=self.lib)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        manifest = os.path.join(self.lib, "list.txt")
        try:
            with open(manifest, "w") as f:
                f.write("\ufeff# my archive\n\n"
                        f"  {base}a.mp4  \r\n"
                        "sub/c.mkv\n"            # relative to the manifest's folder
                        "my film.mp4\n"          # fetched as my%20film.mp4
                        f"{base}a.mp4\n"         # listed twice: indexed once
                        "notes.txt\n"            # not media: skipped
                        "ftp://example.org/x.mp4\n"  # another scheme: skipped
                        "../escape.mp4\n"        # leaves the folder: skipped
                        "#EXTINF:-1,ignored\n")
            s, _ = self.index(base + "list.txt", "--no-asr", "--no-ocr")
            self.assertEqual(s["library"], "list.txt")
            self.assertEqual((s["indexed"], s["failed"]), (3, 0), s)
            with self.db() as db:
                locs = {r[0] for r in db.execute("SELECT location FROM videos")}
                root = db.execute("SELECT root FROM libraries").fetchone()[0]
            self.assertEqual(locs, {base + "a.mp4", base + "sub/c.mkv", base + "my%20film.mp4"})
            self.assertEqual(root, base + "list.txt")  # no '/' added to a manifest
            # An entry removed, another added: one deletion, one new video; a re-run by name.
            with open(manifest, "w") as f:
                f.write(f"{base}b.webm\nsub/c.mkv\n")
            s, _ = self.index("--library", "list.txt")
            self.assertEqual((s["indexed"], s["deleted"], s["unchanged"]), (1, 2, 1), s)
            self.verify()
            # Hostile manifest content: binary bytes, a NUL, a 100 kB line, lone '#', spaces
            # only, an entry that is just a folder: no crash, only the one good entry.
            with open(os.path.join(self.lib, "junk.m3u"), "wb") as f:
                f.write(bytes(range(1, 256)) + b"\n" + b"x" * 100000 + b".mp4\n#\n   \n"
                        b"sub/\n\xff\xfe.mp4\nd.mp4\n\x00a.mp4\n")
            s, _ = self.index(base + "junk.m3u", "--no-asr", "--no-ocr")
            self.assertEqual(s["indexed"], 1, s)
            # A manifest that cannot be read: an error, and nothing deleted.
            os.remove(manifest)
            code, out, err = run("--data", self.data, "index", "--library", "list.txt")
            self.assertEqual(code, 1, out + err)
            self.assertIn("list.txt", err)
            with self.db() as db:
                self.assertEqual(db.execute(
                    "SELECT count(*) FROM videos v JOIN libraries l ON l.id = v.library_id "
                    "WHERE l.name = 'list.txt'").fetchone()[0], 2)
        finally:
            server.shutdown()
            server.server_close()


def main():
    global VIDX, FIXTURES
    args, rest = vxtest.parse_args("--vidx", "--fixtures")
    VIDX, FIXTURES = args.vidx, args.fixtures
    vxtest.unittest_main(rest)


if __name__ == "__main__":
    main()
