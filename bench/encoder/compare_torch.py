#!/usr/bin/python3
"""vidx's vision tower against PyTorch on the same weights, in one run.

For each shape (S14, B14 …) this makes one random model in the official key layout with the
independent reference (tests/reference/internvideo2_ref.py), converts it with
scripts/convert_internvideo2.py into a vidx model directory, then times
  - vidx (build/bench/encoder/bench_vision --model DIR): fp32 and bf16, with the best GEMM rate
    it measures first;
  - PyTorch on the very same state dict, tuned as the issue asks (threads at the core count,
    OMP_WAIT_POLICY=PASSIVE, jemalloc preloaded): fp32 and bf16 autocast;
and checks that both compute the same embedding for one clip (cosine), which proves the weights
are the same. Prints ms/clip and the ratios.

    /usr/bin/python3 bench/encoder/compare_torch.py [S14 B14 ...] [--threads N] [--iters K]
        [--build build]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = {"S14": (384, 12, 6, 1536), "B14": (768, 12, 12, 3072), "L14": (1024, 24, 16, 4096)}
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def make_model(name, workdir):
    """Random official-layout checkpoint -> vidx model directory; returns (pt, model dir)."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    from internvideo2_ref import InternVideo2Vision
    width, depth, heads, mlp = SHAPES[name]
    torch.manual_seed(7)
    model = InternVideo2Vision(head="none", width=width, depth=depth, heads=heads,
                               mlp_hidden=mlp, frames=8, image_size=224, pool_heads=16,
                               pool_dim=768, gelu="tanh")
    with torch.no_grad():  # O(1)-scale values: no denormals, no vanishing blocks
        for key, p in model.state_dict().items():
            if key.endswith("gamma"):
                p.fill_(0.1)
            elif "norm" in key and key.endswith("weight"):
                p.fill_(1.0)
            elif key in ("pos_embed", "cls_token"):
                p.normal_(0, 0.02)
    pt = os.path.join(workdir, name + ".bin")
    torch.save(model.state_dict(), pt)
    out = os.path.join(workdir, name)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_internvideo2.py"),
                    "--variant", name, "--frames", "8", "--image-size", "224", "-q", pt,
                    "--out", out], check=True)
    return pt, out


TORCH_WORKER = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from internvideo2_ref import InternVideo2Vision
width, depth, heads, mlp, threads, iters = map(int, sys.argv[3:9])
torch.set_num_threads(threads)
m = InternVideo2Vision(head="none", width=width, depth=depth, heads=heads, mlp_hidden=mlp,
                       frames=8, image_size=224, pool_heads=16, pool_dim=768, gelu="tanh")
m.load_state_dict(torch.load(sys.argv[2]))
m = m.float().eval()
g = torch.Generator().manual_seed(3)
x = torch.rand((1, 3, 8, 224, 224), generator=g) * 4 - 2
out = {}
with torch.inference_mode():
    for mode in ("fp32", "bf16"):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if mode == "bf16" else torch.no_grad()
        with ctx:
            emb, _ = m(x)  # warm-up
            best = 1e30
            for _ in range(iters):
                t0 = time.perf_counter()
                emb, _ = m(x)
                best = min(best, time.perf_counter() - t0)
        out[mode] = best * 1e3
        if mode == "fp32":
            out["embedding"] = emb[0].float().tolist()
import numpy as np
np.save(sys.argv[9], x.numpy())
print(json.dumps(out))
"""


def time_torch(name, pt, threads, iters, workdir):
    width, depth, heads, mlp = SHAPES[name]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    if os.path.exists(JEMALLOC):
        env["LD_PRELOAD"] = JEMALLOC
    x_npy = os.path.join(workdir, name + "-input.npy")
    p = subprocess.run([sys.executable, "-c", TORCH_WORKER, os.path.join(ROOT, "tests", "reference"),
                        pt, str(width), str(depth), str(heads), str(mlp), str(threads), str(iters),
                        x_npy], capture_output=True, text=True, env=env, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1]), x_npy


def time_vidx(build, model_dir, threads, iters):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    p = subprocess.run([os.path.join(build, "bench", "encoder", "bench_vision"), "--model",
                        model_dir, "--threads", str(threads), "--iters", str(iters)],
                       capture_output=True, text=True, env=env, check=True)
    res = {"log": p.stdout}
    for m in re.finditer(r"(fp32|bf16): ([\d.]+) ms/clip .*?([\d.]+) GFLOP/s, best GEMM ([\d.]+) "
                         r"GFLOP/s \((\d+)%\)", p.stdout):
        res[m.group(1)] = {"ms": float(m.group(2)), "gflops": float(m.group(3)),
                           "gemm_peak": float(m.group(4)), "fraction": int(m.group(5))}
    # the same ratio on CPU time (bench_vision's second line): with one thread on a loaded
    # machine, the figure to trust
    for m in re.finditer(r"(fp32|bf16): [\d.]+ ms/clip \(([\d.]+) CPU-ms\).*\n\s+on CPU time: "
                         r"([\d.]+) GFLOP/s, best GEMM ([\d.]+) GFLOP/s \((\d+)%\)", p.stdout):
        res[m.group(1)].update({"cpu_ms": float(m.group(2)), "cpu_gemm_peak": float(m.group(4)),
                                "cpu_fraction": int(m.group(5))})
    kern = re.search(r"kernels: (\S+)", p.stdout)
    res["kernels"] = kern.group(1).rstrip(",") if kern else "?"
    return res


def vidx_embedding(build, model_dir, x_npy):
    p = subprocess.run([os.path.join(build, "cli", "vidx"), "embed", "--model", model_dir,
                        "--input", x_npy], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)["embedding"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", default=["S14", "B14"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print("machine: %s, %d threads, load average %s, %s" % (cpu, args.threads, load,
                                                             time.strftime("%Y-%m-%d %H:%M")))
    with tempfile.TemporaryDirectory(prefix="vidx-compare-") as work:
        for name in args.variants:
            pt, model_dir = make_model(name, work)
            c = time_vidx(args.build, model_dir, args.threads, args.iters)
            t, x_npy = time_torch(name, pt, args.threads, args.iters, work)
            emb = vidx_embedding(args.build, model_dir, x_npy)
            dot = sum(a * b for a, b in zip(emb, t["embedding"]))
            print("%s (8 frames, 224 px), vidx kernels %s; same weights: embedding cosine %.6f"
                  % (name, c["kernels"], dot))
            for mode in ("fp32", "bf16"):
                if mode not in c:
                    continue
                print("  %s  vidx %8.1f ms/clip (%3d%% of best GEMM %5.0f GFLOP/s)   "
                      "PyTorch%s %8.1f ms/clip   vidx is %.2fx faster"
                      % (mode, c[mode]["ms"], c[mode]["fraction"], c[mode]["gemm_peak"],
                         " autocast" if mode == "bf16" else "         ", t[mode],
                         t[mode] / c[mode]["ms"]))
                if "cpu_ms" in c[mode]:
                    print("        on CPU time: vidx %8.1f ms/clip (%3d%% of best GEMM %5.0f GFLOP/s)"
                          % (c[mode]["cpu_ms"], c[mode]["cpu_fraction"], c[mode]["cpu_gemm_peak"]))
            if "fp32" in c:
                print("  vidx bf16 vs PyTorch bf16 autocast: %.2fx; vidx fp32 vs PyTorch bf16: "
                      "%.2fx" % (t["bf16"] / c["bf16"]["ms"], t["bf16"] / c["fp32"]["ms"]))
            if dot < 0.999:
                print("  WARNING: embeddings differ: the two runs did not compute the same thing")


if __name__ == "__main__":
    main()
