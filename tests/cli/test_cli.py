#!/usr/bin/python3
"""Integration tests that drive the real `vidx` binary on real data directories.

st_fill (tests/cli/st_fill.c) writes catalogs and FAISS indexes through storage/'s public API;
the checks read the catalog back with Python's own sqlite3 module, independently of vidx.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vxtest  # noqa: E402

VIDX = ST_FILL = SOURCE_DIR = None


def run(*args, env=None, timeout=120):
    """Runs vidx with args; returns (exit code, stdout, stderr)."""
    return vxtest.run(VIDX, *args, log=None, env=env, timeout=timeout, errors="strict")


def fill(data, *args):
    p = subprocess.run([ST_FILL, data, *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


class TempDirTest(vxtest.TempDirTest):
    prefix = "vidx-cli-"

    def status(self):
        code, out, err = run("--data", self.data, "status", "--json")
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def verify(self, *extra):
        code, out, err = run("--data", self.data, "verify", "--json", *extra)
        self.assertIn(code, (0, 3), err)
        return code, json.loads(out)


class Basics(TempDirTest):
    def test_help_lists_commands_and_exit_codes(self):
        code, out, _ = run("help")
        self.assertEqual(code, 0)
        for word in ("status", "verify", "model info", "embed", "Exit codes", "VIDX_DATA"):
            self.assertIn(word, out)
        code, out2, _ = run("--help")
        self.assertEqual((code, out2), (0, out))

    def test_command_help(self):
        for cmd in ("status", "verify", "model", "embed"):
            code, out, _ = run("help", cmd)
            self.assertEqual(code, 0)
            self.assertIn("Usage: vidx " + cmd, out)
            code, out2, _ = run(cmd, "--help")
            self.assertEqual((code, out2), (0, out))

    def test_version(self):
        code, out, _ = run("--version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^vidx \d+\.\d+\.\d+")

    def test_usage_errors_exit_2_with_one_line(self):
        for args in (["bogus"], ["--bogus"], ["status", "extra"], ["verify", "--fix"],
                     ["model"], ["model", "list"], ["embed", "x.mp4"], ["--data"], []):
            code, out, err = run(*args)
            self.assertEqual(code, 2, args)
            self.assertTrue(err.strip(), args)

    def test_status_of_a_missing_data_directory(self):
        code, out, err = run("--data", self.data, "status")
        self.assertEqual(code, 0, err)
        self.assertIn("nothing is indexed", out)
        self.assertFalse(os.path.exists(self.data), "status must not create anything")
        self.assertEqual(self.status(), {"data_dir": self.data, "exists": False})

    def test_data_dir_from_environment(self):
        fill(self.data, "fill", 2, 2)
        code, out, err = run("status", "--json", env={"VIDX_DATA": self.data})
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["videos"]["total"], 2)

    def test_verify_of_a_missing_data_directory_fails_clearly(self):
        code, _, err = run("--data", self.data, "verify")
        self.assertEqual(code, 1)
        self.assertIn(self.data, err)
        self.assertEqual(len(err.strip().splitlines()), 1)

    def test_model_info_errors_name_the_path(self):
        code, _, err = run("model", "info", os.path.join(self.tmp, "no-model"))
        self.assertEqual(code, 1)
        self.assertIn("no-model", err)
        bad = os.path.join(self.tmp, "bad-model")
        os.makedirs(bad)
        with open(os.path.join(bad, "config.json"), "w") as f:
            f.write("{not json")
        code, _, err = run("model", "info", bad)
        self.assertEqual(code, 1)
        self.assertIn("config.json", err)

    def test_garbage_catalog_is_a_clear_error(self):
        os.makedirs(self.data)
        with open(os.path.join(self.data, "catalog.db"), "wb") as f:
            f.write(b"this is not a database" * 100)
        for cmd in ("status", "verify"):
            code, _, err = run("--data", self.data, cmd)
            self.assertEqual(code, 1, err)
            self.assertIn("catalog.db", err)


class DataDirectory(TempDirTest):
    def setUp(self):
        super().setUp()
        fill(self.data, "fill", 6, 5)

    def index_files(self):
        d = os.path.join(self.data, "index")
        return [os.path.join(d, f) for f in os.listdir(d) if not f.startswith(".")]

    def test_status_counts_match_the_catalog(self):
        s = self.status()
        self.assertTrue(s["exists"])
        self.assertEqual(s["libraries"], 1)
        self.assertEqual(s["videos"]["total"], 6)
        self.assertEqual(s["videos"]["indexed"], 6)
        self.assertEqual(s["segments"]["total"], 30)
        self.assertEqual(s["embeddings"], 30)
        self.assertEqual(len(s["indexes"]), 1)
        idx = s["indexes"][0]
        self.assertEqual((idx["model"], idx["modality"], idx["dim"]),
                         ("test-model-v1", "vision", 16))
        self.assertEqual((idx["vectors"], idx["file_vectors"], idx["state"]), (30, 30, "fresh"))
        self.assertGreater(s["disk_bytes"]["catalog"], 0)
        self.assertGreater(s["disk_bytes"]["index"], 0)
        # Independent check of the numbers with Python's sqlite3.
        db = vxtest.open_catalog(self.data)
        self.assertEqual(db.execute("select count(*) from segments").fetchone()[0], 30)
        db.close()
        code, out, _ = run("--data", self.data, "status")
        self.assertEqual(code, 0)
        self.assertIn("test-model-v1", out)
        self.assertIn("fresh", out)

    def test_verify_passes_on_a_good_directory(self):
        code, report = self.verify()
        self.assertEqual(code, 0, report)
        self.assertTrue(report["ok"])
        self.assertEqual(report["problems"], 0)
        code, out, _ = run("--data", self.data, "verify")
        self.assertEqual(code, 0)
        self.assertIn("ok", out)

    def check_detected_and_repaired(self, damage, kinds):
        damage()
        code, report = self.verify()
        self.assertEqual(code, 3, report)
        self.assertFalse(report["ok"])
        found = {p["kind"] for p in report["details"]}
        self.assertTrue(found & set(kinds), report)
        code, report = self.verify("--repair")
        self.assertEqual(code, 0, report)
        self.assertGreaterEqual(report["repaired"], 1)
        code, report = self.verify()
        self.assertEqual((code, report["problems"]), (0, 0), report)
        s = self.status()
        self.assertEqual((s["indexes"][0]["state"], s["indexes"][0]["file_vectors"]),
                         ("fresh", 30))

    def test_truncated_index_is_detected_and_rebuilt(self):
        def damage():
            for f in self.index_files():
                size = os.path.getsize(f)
                with open(f, "r+b") as fh:
                    fh.truncate(size // 2)
        self.check_detected_and_repaired(damage, ["index-corrupt"])

    def test_deleted_index_is_detected_and_rebuilt(self):
        def damage():
            for f in self.index_files():
                os.unlink(f)
        self.check_detected_and_repaired(damage, ["index-missing"])

    def test_flipped_bytes_in_index_are_detected(self):
        def damage():
            for f in self.index_files():
                with open(f, "r+b") as fh:
                    fh.seek(os.path.getsize(f) - 100)
                    fh.write(b"\xff" * 8)
        self.check_detected_and_repaired(damage, ["index-corrupt"])

    def test_orphan_thumbnail_is_found_and_removed(self):
        thumbs = os.path.join(self.data, "thumbs")
        os.makedirs(thumbs, exist_ok=True)
        orphan = os.path.join(thumbs, "nobody.jpg")

        def damage():
            with open(orphan, "wb") as f:
                f.write(b"\xff\xd8\xff")
        self.check_detected_and_repaired(damage, ["orphan-file"])
        self.assertFalse(os.path.exists(orphan))

    def test_second_writer_gets_exit_4_naming_the_holder(self):
        holder = subprocess.Popen([ST_FILL, self.data, "hold", "60"], stdout=subprocess.PIPE,
                                  text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "holding")
            holder.stdout.close()
            code, _, err = run("--data", self.data, "verify", "--repair")
            self.assertEqual(code, 4, err)
            self.assertIn(str(holder.pid), err)
            # Readers never wait for the writer.
            start = time.monotonic()
            code, _, err = run("--data", self.data, "status")
            self.assertEqual(code, 0, err)
            code, _, err = run("--data", self.data, "verify")
            self.assertEqual(code, 0, err)
            self.assertLess(time.monotonic() - start, 10)
        finally:
            holder.kill()
            holder.wait()


class KillTest(TempDirTest):
    """SIGKILL a writer at random moments (inside transactions and index saves); afterwards
    `vidx verify` passes and every video it reported committed is there, whole, once."""

    ROUNDS = 20

    def test_sigkill_loses_nothing_committed(self):
        rnd = random.Random(1234)
        committed = {}
        for round_no in range(self.ROUNDS):
            p = subprocess.Popen([ST_FILL, self.data, "loop", str(round_no)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(rnd.uniform(0.05, 0.8))
            p.send_signal(signal.SIGKILL)
            out, err = p.communicate()
            self.assertEqual(p.returncode, -signal.SIGKILL, err)
            for line in out.splitlines():
                if line.startswith("committed "):
                    _, vid, segs = line.split()
                    committed[int(vid)] = int(segs)
            code, out, err = run("--data", self.data, "verify", "--json")
            self.assertEqual(code, 0, "round %d: %s %s" % (round_no, out, err))
        self.assertGreater(len(committed), self.ROUNDS, "the writer never got going")
        db = vxtest.open_catalog(self.data)
        rows = dict(db.execute(
            "select v.id, count(s.id) from videos v left join segments s on s.video_id = v.id "
            "group by v.id").fetchall())
        for vid, segs in committed.items():
            self.assertEqual(rows.get(vid), segs, "video %d lost or partial" % vid)
        # Nothing half-written: every video has its segments, every segment its vector.
        self.assertEqual(db.execute("select count(*) from videos v where not exists "
                                    "(select 1 from segments s where s.video_id = v.id)")
                         .fetchone()[0], 0)
        self.assertEqual(db.execute("select count(*) from segments s where not exists "
                                    "(select 1 from embeddings e where e.segment_id = s.id)")
                         .fetchone()[0], 0)
        locs = db.execute("select count(*), count(distinct location) from videos").fetchone()
        self.assertEqual(locs[0], locs[1])
        db.close()
        s = self.status()
        self.assertEqual(s["embeddings"], sum(rows.values()))


def main():
    global VIDX, ST_FILL, SOURCE_DIR
    args, rest = vxtest.parse_args("--vidx", "--st-fill", "--source-dir")
    VIDX, ST_FILL, SOURCE_DIR = args.vidx, args.st_fill, args.source_dir
    vxtest.unittest_main(rest)


if __name__ == "__main__":
    main()
