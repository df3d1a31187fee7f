#!/usr/bin/python3
"""PyTorch baseline for bench_vision: the same InternVideo2 vision-tower shapes (RMSNorm blocks,
QK-norm over the full width, LayerScale, tanh-GELU MLP, attention pool) with random weights,
8 frames x 224 px, timed in fp32 and under bf16 autocast with the same thread count.

    /usr/bin/python3 bench/encoder/bench_vision_torch.py [S14|B14 ...] [--threads N] [--iters K]

Prints ms/clip; compare with `bench_vision` run right before or after on the same machine.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = {"S14": (384, 12, 6, 1536), "B14": (768, 12, 12, 3072), "L14": (1024, 24, 16, 4096)}


class RMSNorm(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.w = nn.Parameter(torch.ones(c))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return (self.w * x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class Block(nn.Module):
    def __init__(self, c, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = RMSNorm(c), RMSNorm(c)
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.q_norm, self.k_norm = RMSNorm(c), RMSNorm(c)
        self.proj = nn.Linear(c, c)
        self.fc1, self.fc2 = nn.Linear(c, hidden), nn.Linear(hidden, c)
        self.ls1 = nn.Parameter(torch.full((c,), 0.1))
        self.ls2 = nn.Parameter(torch.full((c,), 0.1))

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        att = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        x = x + self.ls1 * self.proj(o)
        return x + self.ls2 * self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class Tower(nn.Module):
    def __init__(self, c, depth, heads, hidden, frames=8):
        super().__init__()
        self.patch = nn.Conv3d(3, c, (1, 14, 14), (1, 14, 14))
        self.cls = nn.Parameter(torch.zeros(1, 1, c))
        self.pos = nn.Parameter(torch.randn(1, 1 + frames * 256, c) * 0.02)
        self.blocks = nn.ModuleList(Block(c, heads, hidden) for _ in range(depth))
        self.nq, self.nk, self.nv = nn.LayerNorm(c), nn.LayerNorm(c), nn.LayerNorm(c)
        self.q, self.k, self.v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.out = nn.Linear(c, 768)

    def forward(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        q = self.q(self.nq(x.mean(1, keepdim=True)))
        k, v = self.k(self.nk(x)), self.v(self.nv(x))
        b, n, c = k.shape
        q, k, v = (t.reshape(b, -1, 16, c // 16).transpose(1, 2) for t in (q, k, v))
        o = ((q * (c // 16) ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
        e = self.out(o.transpose(1, 2).reshape(b, 1, c))[:, 0]
        return F.normalize(e, dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="*", default=["S14", "B14"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, 8 frames, 224 px")
    for name in args.variants:
        model = Tower(*VARIANTS[name]).eval()
        px = torch.randn(1, 3, 8, 224, 224)
        for mode in ("fp32", "bf16-autocast"):
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if mode != "fp32" else torch.no_grad()
            with torch.no_grad(), ctx:
                model(px)
                best = 1e9
                for _ in range(args.iters):
                    t0 = time.perf_counter()
                    model(px)
                    best = min(best, time.perf_counter() - t0)
            print(f"{name} {mode}: {best * 1e3:.1f} ms/clip")


if __name__ == "__main__":
    main()
