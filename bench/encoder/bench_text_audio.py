#!/usr/bin/python3
"""Text-query and audio-tower latency: vidx (C) against the PyTorch reference on the same weights.

Builds random-weight model directories at the real shapes (not committed; under --work):
  bert19      BERT-large to layer 19 (the s2 query path): 1024 wide, 16 heads, FFN 4096, vocab 30522,
              32 tokens (every token real)
  mobileclip  MobileCLIP-B text: 12 layers, 512 wide, 8 heads, FFN 2048, vocab 49408, 77 tokens
  itm         the s2-1B matching head: BERT-large 24 layers (cross-attention from 19, width 1408),
              32 tokens against one 4-frame video's 1025 vision tokens (query path included)
  beats       the s2-6B audio tower: BEATs 12 x 768, 10 s of audio (fbank included on both sides)
through scripts/convert_internvideo2.py's own planners (so the names are the converter's), then
times `bench_text_audio` (C) and the reference modules (tests/reference/text_ref.py, audio_ref.py)
in fp32, PyTorch tuned: threads = cores, OMP_WAIT_POLICY=PASSIVE, jemalloc preloaded (vidx runs
with OMP_WAIT_POLICY=PASSIVE too). Prints a Markdown table.

Usage: bench_text_audio.py --bench BUILD/bench/encoder/bench_text_audio [--work DIR] [--iters N]
                           [--only bert19,mobileclip,beats]
"""

import sys
sys.dont_write_bytecode = True

import argparse
import collections
import json
import os
import subprocess
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def build_models(work, only):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    import convert_internvideo2 as conv
    import text_ref
    import audio_ref
    torch.manual_seed(0)
    dirs = {}

    def randomise(m):
        with torch.no_grad():
            for k, p in m.named_parameters():
                if "norm" in k.lower() or "LayerNorm" in k:
                    p.copy_(1 + 0.1 * torch.randn_like(p) if k.endswith("weight") else 0.1 * torch.randn_like(p))
                elif p.dim() >= 2:
                    p.copy_(torch.randn_like(p) / (p.shape[-1] ** 0.5))
                else:
                    p.copy_(0.1 * torch.randn_like(p))

    def write(name, text_cfg, audio_cfg, tensors, E, vocab_name=None, vocab_bytes=None):
        d = os.path.join(work, name)
        cfg = collections.OrderedDict([("format", "vidx-model"), ("format_version", 1), ("model_id", None),
                                       ("variant", "custom"), ("embed_dim", E), ("vision", None),
                                       ("preprocess", None), ("text", text_cfg), ("audio", audio_cfg)])
        conv.write_model(d, cfg, tensors, "f32", "bench-%s" % name)
        if vocab_name:
            with open(os.path.join(d, vocab_name), "wb") as f:
                f.write(vocab_bytes)
        return d

    args = types.SimpleNamespace(text_heads=None, text_max_len=None, fusion_layer=None, audio_heads=None,
                                 audio_mel_bins=64, audio_max_distance=800, audio_no_deep_norm=False)
    if "bert19" in only:
        m = text_ref.BertText(30522, 1024, 19, 16, 4096, 512, 19, 1408, 512)
        randomise(m)
        sd = m.state_dict()
        tcfg, tensors = conv.plan_bert(sd, args, {"width": 1408}, 512)
        vocab = ["[PAD]"] + ["[unused%d]" % i for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab += ["w%d" % i for i in range(30522 - len(vocab))]
        dirs["bert19"] = (write("bert19", tcfg, None, tensors, 512, "vocab.txt", "\n".join(vocab).encode()), m)
    if "itm" in only:
        m = text_ref.BertText(30522, 1024, 24, 16, 4096, 512, 19, 1408, 512)
        randomise(m)
        tcfg, tensors = conv.plan_bert(m.state_dict(), args, {"width": 1408}, 512)
        vocab = ["[PAD]"] + ["[unused%d]" % i for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab += ["w%d" % i for i in range(30522 - len(vocab))]
        dirs["itm"] = (write("itm", tcfg, None, tensors, 512, "vocab.txt", "\n".join(vocab).encode()), m)
    if "mobileclip" in only:
        m = text_ref.MobileClipText(49408, 512, 12, 8, 2048, 77, 512)
        randomise(m)
        tcfg, tensors = conv.plan_mobileclip(m.state_dict(), args, 512)
        merges = ["#version: 0.2"] + ["%s %s" % (chr(97 + i % 26), chr(97 + (i // 26) % 26)) for i in range(48894)]
        dirs["mobileclip"] = (write("mobileclip", tcfg, None, tensors, 512, "bpe_simple_vocab_16e6.txt",
                                    "\n".join(merges).encode()), m)
    if "beats" in only:
        m = audio_ref.AudioTower(d0=512, width=768, heads=12, ffn=3072, layers=12, num_buckets=320,
                                 max_distance=800, conv_pos=128, conv_pos_groups=16, patch=16, embed_dim=768)
        randomise(m)
        layers = m.audio_encoder.encoder.layers
        with torch.no_grad():       # one shared relative-bias table, as in BEATs
            for lay in layers[1:]:
                lay.self_attn.relative_attention_bias.weight.copy_(layers[0].self_attn.relative_attention_bias.weight)
        acfg, tensors, _ = conv.plan_audio(m.state_dict(), args, 768)
        dirs["beats"] = (write("beats", None, acfg, tensors, 768), m)
    return dirs


TORCH_CHILD = r"""
import sys, os, time, json, math
sys.dont_write_bytecode = True
sys.path.insert(0, %(ref)r)
import torch, numpy as np
torch.set_num_threads(%(threads)d)
kind, iters = %(kind)r, %(iters)d
m = torch.load(%(pt)r)
m.eval()
times = []
with torch.no_grad():
    if kind == "beats":
        import audio_ref
        n = 159920
        i = np.arange(n)
        r = np.random.RandomState(0)
        wave = torch.from_numpy((0.3 * np.sin(0.07 * i) + 0.05 * (r.rand(n) - 0.5)).astype(np.float32))
        run = lambda: m(audio_ref.fbank_features(wave))
    elif kind == "itm":
        ids = torch.tensor([101] + [1000 + (j * 37) %% 20000 for j in range(1, 31)] + [102])
        mask = torch.ones(32, dtype=torch.long)
        vis = torch.sin(0.001 * torch.arange(1025 * 1408, dtype=torch.float32)).reshape(1025, 1408)
        run = lambda: m.itm(ids, mask, vis)
    else:
        L = 32 if kind == "bert19" else 77
        ids = torch.tensor([101] + [1000 + (j * 37) %% 20000 for j in range(1, L - 1)] + [102 if kind == "bert19" else 49407])
        mask = torch.ones(L, dtype=torch.long)
        run = (lambda: m.text(ids, mask)) if kind == "bert19" else (lambda: m(ids))
    for it in range(iters + 2):
        t0 = time.perf_counter()
        run()
        if it >= 2:
            times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2], "min_ms": times[0], "torch": torch.__version__}))
"""


def run_torch(kind, model, work, iters, threads):
    import torch
    pt = os.path.join(work, kind + ".torch.pt")
    torch.save(model.float(), pt)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads))
    if os.path.exists(JEMALLOC):
        env["LD_PRELOAD"] = JEMALLOC
    code = TORCH_CHILD % dict(ref=os.path.join(ROOT, "tests", "reference"), threads=threads, kind=kind,
                              iters=iters, pt=pt)
    r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit("torch run failed: " + r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path to the bench_text_audio binary")
    ap.add_argument("--work", default=None)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--only", default="bert19,mobileclip,beats")
    args = ap.parse_args()
    threads = os.cpu_count()
    work = args.work or tempfile.mkdtemp(prefix="vidx-bench-ta-")
    os.makedirs(work, exist_ok=True)
    only = args.only.split(",")
    t0 = time.time()
    dirs = build_models(work, only)
    print("models built in %.0f s under %s" % (time.time() - t0, work))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    rows = []
    for kind in only:
        d, model = dirs[kind]
        # the same runtime tuning as PyTorch's: on a shared, loaded machine libgomp's default
        # spin-waiting costs vidx about 2x (measured: MobileCLIP 345 -> 167 ms)
        cenv = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        mode = {"beats": "audio", "itm": "itm"}.get(kind, "text")
        r = subprocess.run([args.bench, mode, d, str(args.iters), str(threads)],
                           capture_output=True, text=True, env=cenv)
        if r.returncode:
            raise SystemExit("C bench failed: " + r.stderr)
        c = json.loads(r.stdout.strip().splitlines()[-1])
        t = run_torch(kind, model, work, args.iters, threads)
        rows.append((kind, c, t))
        print("%s: vidx p50 %.1f ms (min %.1f), PyTorch %s p50 %.1f ms (min %.1f)"
              % (kind, c["p50_ms"], c["min_ms"], t["torch"], t["p50_ms"], t["min_ms"]))
    print()
    print("| shape | vidx fp32 p50 (min) ms | PyTorch fp32 tuned p50 (min) ms | vidx / PyTorch |")
    print("|---|---|---|---|")
    names = {"bert19": "BERT-large to layer 19, 32 tokens", "mobileclip": "MobileCLIP-B text, 77 tokens",
             "beats": "BEATs audio tower, 10 s (fbank included)",
             "itm": "matching head (s2-1B): 32 tokens x 1025 vision tokens"}
    for kind, c, t in rows:
        print("| %s | %.1f (%.1f) | %.1f (%.1f) | %.2f |" % (names[kind], c["p50_ms"], c["min_ms"], t["p50_ms"],
                                                          t["min_ms"], c["p50_ms"] / t["p50_ms"]))
    print()
    print("threads %d, load average %s, C backend: %s" % (threads, " ".join(load),
                                                          "; ".join(c["backend"] for _, c, _ in rows)))


if __name__ == "__main__":
    main()
