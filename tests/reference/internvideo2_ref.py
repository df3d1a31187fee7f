"""Independent PyTorch reference of the InternVideo2 vision tower (vidx test oracle).

Written from the vidx fact sheet (/work/shared/INTERNVIDEO2.md, section 2), not from the official
code.  The module tree reproduces the *official* parameter names so that
`state_dict()` keys look like the released checkpoints:

    s2 models      vision_encoder.<trunk>  +  vision_proj.{weight,bias}
    clip-S/B/L     vision_encoder.<trunk>  +  vision_align.{0,1}.{weight,bias}
    distilled      <trunk> without any prefix (head "none")

where <trunk> is patch_embed.proj.*, cls_token, pos_embed, [img_pos_embed], blocks.{i}.*,
clip_projector.*.

Forward (fact sheet section 2):
  Conv3d patch embed (kernel = stride = (1, P, P)) -> tokens (B, T*g*g, C), time-major, row-major;
  CLS prepended; learned pos_embed added to every token (interpolated for another frame count
  (linear, align_corners=False, CLS row kept) and/or resolution (bicubic, align_corners=False));
  T=1 uses img_pos_embed when present, else CLS row + mean over the frames of the video table;
  blocks: x += ls1 * Attn(RMSNorm(x)); x += ls2 * MLP(RMSNorm(x)), RMSNorm eps 1e-6 computed in
  fp32 (or wider), qkv without bias, QK-norm = RMSNorm over the full width C before the head split;
  no final norm; attention pool: query = mean of all tokens, LayerNorms (eps 1e-5) on q/k/v inputs,
  q/k/v weights with separate biases, 16 heads, proj to pool_dim; then vision_proj / vision_align /
  nothing; L2 normalisation.

`forward()` returns (embedding (B, E) L2-normalised, tokens (B, N, C)).

The computation dtype follows the parameters: the fixtures run this module in float64 (the exact
math, an ideal target for float32 C code); float32 works too.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        # at least fp32, as the official RMSNorm upcasts half/bf16 inputs
        dt = torch.promote_types(x.dtype, torch.float32)
        xf = x.to(dt)
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight.to(dt) * y


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_norm = RMSNorm(dim)
        self.k_norm = RMSNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        h = self.heads
        d = C // h
        q, k, v = self.qkv(x).split(C, dim=-1)      # rows [q | k | v]
        q = self.q_norm(q)                          # over the full width C
        k = self.k_norm(k)

        def heads(t):                               # (B, N, C) -> (B, h, N, d), head-major channels
            return t.reshape(B, N, h, d).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        logits = torch.matmul(q * (d ** -0.5), k.transpose(-1, -2))
        probs = torch.softmax(logits, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, N, C)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, hidden, gelu):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        assert gelu in ("tanh", "erf")
        self.approximate = "tanh" if gelu == "tanh" else "none"

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, gelu):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = RMSNorm(dim)
        self.mlp = Mlp(dim, hidden, gelu)
        self.ls2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return x


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv3d(3, dim, kernel_size=(1, patch, patch), stride=(1, patch, patch))


class PoolCrossAttention(nn.Module):
    def __init__(self, dim, heads, out_dim):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.k_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, xq, xk, xv):
        B, N, C = xk.shape
        h = self.heads
        d = C // h
        q = F.linear(xq, self.q.weight, self.q_bias).reshape(B, 1, h, d).transpose(1, 2)
        k = F.linear(xk, self.k.weight, self.k_bias).reshape(B, N, h, d).transpose(1, 2)
        v = F.linear(xv, self.v.weight, self.v_bias).reshape(B, N, h, d).transpose(1, 2)
        probs = torch.softmax(torch.matmul(q * (d ** -0.5), k.transpose(-1, -2)), dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, C)
        return self.proj(out)


class AttentionPool(nn.Module):
    def __init__(self, dim, heads, out_dim, eps=1e-5):
        super().__init__()
        self.norm1_q = nn.LayerNorm(dim, eps=eps)
        self.norm1_k = nn.LayerNorm(dim, eps=eps)
        self.norm1_v = nn.LayerNorm(dim, eps=eps)
        self.cross_attn = PoolCrossAttention(dim, heads, out_dim)

    def forward(self, x):
        xq = x.mean(dim=1, keepdim=True)            # mean over all tokens, CLS included
        return self.cross_attn(self.norm1_q(xq), self.norm1_k(x), self.norm1_v(x))


def resize_pos_table(table, src_frames, src_grid, dst_frames, dst_grid):
    """(1, 1 + Ts*gs*gs, C) -> (1, 1 + Td*gd*gd, C).  CLS row kept; time first (linear,
    align_corners=False), then space per frame (bicubic, align_corners=False)."""
    C = table.shape[-1]
    cls_row = table[:, :1]
    grid = table[:, 1:].reshape(src_frames, src_grid * src_grid, C)
    if dst_frames != src_frames:
        g = grid.permute(1, 2, 0)                  # (HW, C, T)
        g = F.interpolate(g, size=dst_frames, mode="linear", align_corners=False)
        grid = g.permute(2, 0, 1)                  # (T', HW, C)
    if dst_grid != src_grid:
        g = grid.reshape(dst_frames, src_grid, src_grid, C).permute(0, 3, 1, 2)
        g = F.interpolate(g, size=(dst_grid, dst_grid), mode="bicubic", align_corners=False)
        grid = g.permute(0, 2, 3, 1).reshape(dst_frames, dst_grid * dst_grid, C)
    return torch.cat([cls_row, grid.reshape(1, -1, C)], dim=1)


class VisionTrunk(nn.Module):
    """Official trunk names: patch_embed.proj, cls_token, pos_embed, img_pos_embed, blocks, clip_projector."""

    def __init__(self, width, depth, heads, mlp_hidden, frames, image_size, patch=14,
                 pool_heads=16, pool_dim=768, img_pos_embed=False, gelu="tanh"):
        super().__init__()
        self.width, self.frames, self.patch = width, frames, patch
        self.grid = image_size // patch
        self.patch_embed = PatchEmbed(width, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + frames * self.grid ** 2, width))
        if img_pos_embed:
            self.img_pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid ** 2, width))
        else:
            self.img_pos_embed = None
        self.blocks = nn.ModuleList([Block(width, heads, mlp_hidden, gelu) for _ in range(depth)])
        self.clip_projector = AttentionPool(width, pool_heads, pool_dim)

    def pos_table(self, T, grid):
        if T == 1:
            if self.img_pos_embed is not None:
                tab = self.img_pos_embed
            else:
                C = self.width
                rows = self.pos_embed[:, 1:].reshape(self.frames, self.grid ** 2, C)
                tab = torch.cat([self.pos_embed[:, :1], rows.mean(dim=0, keepdim=True)], dim=1)
            return resize_pos_table(tab, 1, self.grid, 1, grid)
        return resize_pos_table(self.pos_embed, self.frames, self.grid, T, grid)

    def forward(self, x, skip_block=None):
        B, _, T, H, W = x.shape
        assert H == W and H % self.patch == 0, "square input, multiple of the patch size"
        g = H // self.patch
        t = self.patch_embed.proj(x)                         # (B, C, T, g, g)
        t = t.flatten(3).permute(0, 2, 3, 1).reshape(B, T * g * g, -1)
        t = torch.cat([self.cls_token.expand(B, -1, -1), t], dim=1)
        t = t + self.pos_table(T, g)
        for i, blk in enumerate(self.blocks):
            if i != skip_block:
                t = blk(t)
        return t, self.clip_projector(t)


class VisionAlign(nn.Sequential):
    def __init__(self, pool_dim, embed_dim, eps=1e-5):
        super().__init__(nn.LayerNorm(pool_dim, eps=eps), nn.Linear(pool_dim, embed_dim))


class InternVideo2Vision(nn.Module):
    """head = 'proj' (s2: vision_encoder.* + vision_proj.*), 'align' (clip-S/B/L: vision_encoder.* +
    vision_align.*) or 'none' (distilled; state_dict keys carry no prefix)."""

    def __init__(self, head="proj", embed_dim=None, **trunk_args):
        super().__init__()
        self.head = head
        trunk = VisionTrunk(**trunk_args)
        pool_dim = trunk_args.get("pool_dim", 768)
        if head == "none":
            # register the trunk's children directly so that keys have no prefix
            self.trunk_is_root = True
            self._trunk = [trunk]
            for name, mod in trunk.named_children():
                self.add_module(name, mod)
            for name, p in trunk.named_parameters(recurse=False):
                self.register_parameter(name, p)
        else:
            self.trunk_is_root = False
            self.vision_encoder = trunk
            if head == "proj":
                self.vision_proj = nn.Linear(pool_dim, embed_dim)
            elif head == "align":
                self.vision_align = VisionAlign(pool_dim, embed_dim)
            else:
                raise ValueError(head)

    @property
    def trunk(self):
        return self._trunk[0] if self.trunk_is_root else self.vision_encoder

    def forward(self, x, skip_block=None):
        tokens, pooled = self.trunk(x, skip_block=skip_block)
        if self.head == "proj":
            emb = self.vision_proj(pooled)
        elif self.head == "align":
            emb = self.vision_align(pooled)
        else:
            emb = pooled
        emb = emb / emb.norm(dim=-1, keepdim=True)
        return emb, tokens


def rel_err(a, b):
    """vidx's tensor error (DECISIONS section 2): max|a-b| / max(max|b|, 1e-6)."""
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-6))
