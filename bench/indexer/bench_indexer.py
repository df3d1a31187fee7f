#!/usr/bin/python3
"""Indexer benchmarks (issue 5), each against a baseline timed in the same run:

  decode   decode+segment throughput alone (bench_decode: 4 s windows, 8 frames each by the
           middle rule, preprocessed to 3x8x224x224, plus the thumbnail) on a 1080p H.264 file
           made here with FFmpeg's lavfi; × real time, against the FFmpeg CLI decoding every
           frame of the same file (`ffmpeg -i F -f null -`).
  e2e      end-to-end clips/s of `vidx index` with an S/14-shaped random model on the CPU (made
           and converted as bench/encoder/compare_torch.py does: the independent reference +
           scripts/convert_internvideo2.py), against the vision tower alone on the same weights
           (bench_vision --model DIR, fp32).
  rescan   a second `vidx index` over 10,000 unchanged files (one small clip copied; the first
           run with --no-asr --no-ocr and no model), against `find` + stat of the same tree.

  /usr/bin/python3 bench/indexer/bench_indexer.py --build BUILD_DIR [decode e2e rescan]
      [--seconds 30] [--clips 6] [--files 10000] [--threads N] [--work DIR]

Not a test: prints numbers (record them in bench/README.md).
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)


def vidx(build, *args, threads=None):
    env = dict(os.environ, VIDX_LOG="warn")
    env.pop("VIDX_MODEL", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(build, "cli", "vidx"), *args], capture_output=True,
                       text=True, env=env)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"vidx {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout), wall


def bench_decode(build, work, seconds):
    src = os.path.join(work, f"h264_1080p_{seconds}s.mp4")
    if not os.path.exists(src):
        print(f"making {src} (1080p30 H.264, {seconds} s) ...", flush=True)
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
               "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", src)
    def ffmpeg_decode(*threads):
        best, best_cpu = 1e30, 1e30
        for _ in range(3):
            t0, r0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            ffmpeg(*threads, "-i", src, "-f", "null", "-")
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            best = min(best, time.monotonic() - t0)
            best_cpu = min(best_cpu, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        return best, best_cpu
    best_ff, cpu_ff = ffmpeg_decode()
    best_ff1, _ = ffmpeg_decode("-threads", "1")
    p = subprocess.run([os.path.join(build, "bench", "indexer", "bench_decode"), src,
                        "--window-ms", "4000", "--frames", "8", "--size", "224", "--iters", "3"],
                       capture_output=True, text=True, check=True)
    print(p.stdout.strip())
    m = re.search(r"in ([\d.]+) s \(best of \d+; ([\d.]+) CPU-s\)", p.stdout)
    ours, ours_cpu = float(m.group(1)), float(m.group(2))
    print(f"baseline: ffmpeg CLI decoding every frame (best of 3): {best_ff:.2f} s "
          f"({cpu_ff:.2f} CPU-s) = {seconds / best_ff:.1f}x real time; with -threads 1: "
          f"{best_ff1:.2f} s = {seconds / best_ff1:.1f}x")
    print(f"decode+segment {seconds / ours:.1f}x real time; {best_ff / ours:.2f}x the speed of "
          f"the full decode in wall time, {cpu_ff / ours_cpu:.2f}x in CPU time\n")


def bench_e2e(build, work, clips, threads):
    sys.path.insert(0, os.path.join(ROOT, "bench", "encoder"))
    import compare_torch
    model = os.path.join(work, "S14")
    if not os.path.exists(os.path.join(model, "config.json")):
        print("making an S/14 random model (reference + converter) ...", flush=True)
        compare_torch.make_model("S14", work)
    tower = compare_torch.time_vidx(build, model, threads or os.cpu_count(), 2)
    ms = tower["fp32"]["ms"]
    def index_library(n):
        lib = os.path.join(work, f"e2e_lib{n}")
        shutil.rmtree(lib, ignore_errors=True)
        os.makedirs(lib)
        for i in range(n):
            ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=8", "-c:v",
                   "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                   os.path.join(lib, f"c{i}.mp4"))
        data = os.path.join(work, f"e2e_data{n}")
        shutil.rmtree(data, ignore_errors=True)
        args = ["--data", data, "--model", model, "--json", "index", lib, "--no-asr", "--no-ocr"]
        if threads:
            args += ["--threads", str(threads)]
        s, _ = vidx(build, *args, threads=threads)
        return s["segments"], s["seconds"]
    # A one-clip run measures the fixed cost (model load, first-clip warm-up); the steady rate
    # is what the larger run adds over it.
    seg1, t1 = index_library(1)
    segs, secs = index_library(clips)
    rate, steady = segs / secs, (segs - seg1) / (secs - t1)
    print(f"vision tower alone (bench_vision, fp32, kernels {tower['kernels']}): {ms:.0f} ms/clip"
          f" = {1000 / ms:.2f} clips/s")
    print(f"vidx index end to end: {segs} clips of 8x224 in {secs:.1f} s = {rate:.2f} clips/s "
          f"(fixed cost included: {seg1} clips took {t1:.1f} s); steady {steady:.2f} clips/s = "
          f"{steady / (1000 / ms):.2f}x the tower alone\n")


def bench_rescan(build, work, files):
    tree = os.path.join(work, f"rescan_{files}")
    data = os.path.join(work, f"rescan_{files}_data")
    if not os.path.exists(os.path.join(data, "catalog.db")):
        shutil.rmtree(tree, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
        one = os.path.join(work, "one.mp4")
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=1", "-pix_fmt",
               "yuv420p", one)
        per_dir = 100
        for i in range(files):
            d = os.path.join(tree, f"d{i // per_dir:03d}")
            if i % per_dir == 0:
                os.makedirs(d)
            shutil.copyfile(one, os.path.join(d, f"f{i:05d}.mp4"))
        print(f"first run over {files} files (no model, --no-asr --no-ocr) ...", flush=True)
        s, wall = vidx(build, "--data", data, "--json", "index", tree, "--no-asr", "--no-ocr",
                       "--no-thumbnails")
        print(f"  first run: {s['indexed']} indexed in {wall:.1f} s")
    best_find = 1e30
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run(["find", tree, "-type", "f", "-printf", "%s %T@\n"], check=True,
                       stdout=subprocess.DEVNULL)
        best_find = min(best_find, time.monotonic() - t0)
    best = None
    for _ in range(3):
        s, wall = vidx(build, "--data", data, "--json", "index", "--library",
                       os.path.basename(tree))
        assert s["unchanged"] == files and s["indexed"] == 0, s
        if best is None or wall < best[1]:
            best = (s["seconds"], wall)
    print(f"rescan of {files} unchanged files: {best[0]:.3f} s in the run ({best[1]:.3f} s "
          f"wall, process start and catalog open included); goal < 1 s")
    print(f"baseline: find + stat of the tree: {best_find:.3f} s; rescan = "
          f"{best[0] / best_find:.1f}x that\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="*", default=["decode", "e2e", "rescan"])
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--work", help="keeps the generated files between runs")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="vidx-bench-indexer-")
    os.makedirs(work, exist_ok=True)
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    try:
        for w in a.what:
            {"decode": lambda: bench_decode(a.build, work, a.seconds),
             "e2e": lambda: bench_e2e(a.build, work, a.clips, a.threads),
             "rescan": lambda: bench_rescan(a.build, work, a.files)}[w]()
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
