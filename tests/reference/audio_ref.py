"""Independent PyTorch reference of the InternVideo2 s2-6B audio tower (BEATs) (vidx test oracle).

Written from the vidx fact sheet (/work/shared/INTERNVIDEO2.md §4, §7.2) and the BEATs facts
confirmed in the official code (bucket formula, GRU gate, deep-norm alpha, shared relative bias);
no code copied. Official parameter names under `audio_encoder.`, plus `audio_proj.*` and
`av_fusion.*`:

  features: waveform (16 kHz mono, [-1, 1]) * 2^15 -> torchaudio.compliance.kaldi.fbank(
      num_mel_bins=64, frame_length=25, frame_shift=10, sample_frequency=16000, dither=0) ->
      (f - 15.41663) / (2 * 6.55582) -> zero rows appended to 998 frames (first 998 kept)
  BEATs: Conv2d(1 -> D0, k = s = 16) over (time, mel) -> tokens t-major, mel-minor -> LN ->
      post_extract_proj -> x + GELU(SamePad(Conv1d(x, k=conv_pos, pad conv_pos/2, groups))) ->
      LN -> layers: a = MHA(x) with relative bias rel[bucket(j - i)] * gate_i (per head, query) ->
      x = LN(alpha * x + a); x = LN(alpha * x + fc2(gelu(fc1(x)))), alpha = (2 layers)^(1/4)
  pooled = mean over tokens; audio_proj; L2.  Joint: av_fusion(cat[audio_proj, vision_proj]); L2.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

FBANK_MEAN, FBANK_STD = 15.41663, 6.55582


def fbank_features(wave, mel_bins=64, frames=998):
    """wave: 1-D float tensor in [-1, 1] at 16 kHz -> (frames, mel_bins) normalised, float32."""
    import torchaudio.compliance.kaldi as kaldi
    w = wave.to(torch.float32).reshape(1, -1) * (2 ** 15)
    if w.shape[1] >= 400:
        fb = kaldi.fbank(w, num_mel_bins=mel_bins, sample_frequency=16000, frame_length=25,
                         frame_shift=10, dither=0.0)
    else:
        fb = torch.zeros(0, mel_bins)
    fb = (fb - FBANK_MEAN) / (2 * FBANK_STD)
    out = torch.zeros(frames, mel_bins)
    n = min(frames, fb.shape[0])
    out[:n] = fb[:n]
    return out


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def bucket(rel, num_buckets, max_distance):
    """T5-style bidirectional bucket of relative position rel = key - query (int tensor)."""
    nb = num_buckets // 2
    out = (rel > 0).long() * nb
    n = rel.abs()
    max_exact = nb // 2
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (nb - max_exact)).long()
    large = torch.clamp(large, max=nb - 1)
    return out + torch.where(n < max_exact, n, large)


class _Lin(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(o, i))
        self.bias = nn.Parameter(torch.zeros(o))


class _LN(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))


class _Attn(nn.Module):
    def __init__(self, w, heads, buckets):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = _Lin(w, w), _Lin(w, w), _Lin(w, w), _Lin(w, w)
        self.grep_linear = _Lin(w // heads, 8)
        self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        self.relative_attention_bias = nn.Embedding(buckets, heads)


class _Layer(nn.Module):
    def __init__(self, w, heads, ffn, buckets):
        super().__init__()
        self.self_attn = _Attn(w, heads, buckets)
        self.self_attn_layer_norm = _LN(w)
        self.fc1, self.fc2 = _Lin(w, ffn), _Lin(ffn, w)
        self.final_layer_norm = _LN(w)


class _PosConv(nn.Module):
    def __init__(self, w, k, groups):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, k))
        self.weight_v = nn.Parameter(torch.zeros(w, w // groups, k))
        self.bias = nn.Parameter(torch.zeros(w))


class _Encoder(nn.Module):
    def __init__(self, w, heads, ffn, layers, buckets, k, groups):
        super().__init__()
        self.pos_conv = nn.ModuleList([_PosConv(w, k, groups)])
        self.layer_norm = _LN(w)
        self.layers = nn.ModuleList([_Layer(w, heads, ffn, buckets) for _ in range(layers)])


class _Beats(nn.Module):
    def __init__(self, d0, w, heads, ffn, layers, buckets, k, groups, patch):
        super().__init__()
        self.patch_embedding = nn.Conv2d(1, d0, kernel_size=patch, stride=patch, bias=False)
        self.layer_norm = _LN(d0)
        self.post_extract_proj = _Lin(d0, w)
        self.encoder = _Encoder(w, heads, ffn, layers, buckets, k, groups)


class AudioTower(nn.Module):
    def __init__(self, d0=512, width=768, heads=12, ffn=3072, layers=12, num_buckets=320, max_distance=800,
                 conv_pos=128, conv_pos_groups=16, patch=16, embed_dim=768, eps=1e-5):
        super().__init__()
        self.heads, self.layers, self.max_distance, self.eps = heads, layers, max_distance, eps
        self.num_buckets, self.conv_pos, self.groups = num_buckets, conv_pos, conv_pos_groups
        self.audio_encoder = _Beats(d0, width, heads, ffn, layers, num_buckets, conv_pos, conv_pos_groups, patch)
        self.audio_proj = _Lin(width, embed_dim)
        self.av_fusion = _Lin(2 * embed_dim, embed_dim)

    def _ln(self, x, ln):
        return F.layer_norm(x, (x.shape[-1],), ln.weight, ln.bias, self.eps)

    def pos_conv_weight(self):
        pc = self.audio_encoder.encoder.pos_conv[0]
        v = pc.weight_v
        # norm over every dim except 2 (weight_norm dim=2)
        norm = v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        return v * (pc.weight_g / norm)

    def tokens(self, fbank, skip_layer=None):
        """fbank (frames, mel) -> encoder output (T, W)."""
        b = self.audio_encoder
        x = F.conv2d(fbank[None, None].to(b.patch_embedding.weight.dtype), b.patch_embedding.weight,
                     b.patch_embedding.bias, stride=b.patch_embedding.stride)
        x = x.reshape(x.shape[1], -1).t()                       # (T, D0): time-major, mel-minor
        x = self._ln(x, b.layer_norm)
        x = F.linear(x, b.post_extract_proj.weight, b.post_extract_proj.bias)
        T, W = x.shape
        e = b.encoder
        pc = e.pos_conv[0]
        c = F.conv1d(x.t()[None], self.pos_conv_weight(), pc.bias, padding=self.conv_pos // 2, groups=self.groups)
        if self.conv_pos % 2 == 0:
            c = c[..., :-1]
        x = x + gelu_erf(c[0].t())
        x = self._ln(x, e.layer_norm)
        pos = torch.arange(T)
        buckets = bucket(pos[None, :] - pos[:, None], self.num_buckets, self.max_distance)
        rel = e.layers[0].self_attn.relative_attention_bias.weight[buckets].permute(2, 0, 1)  # (H, T, T)
        alpha = (2 * self.layers) ** 0.25
        H, d = self.heads, W // self.heads
        for j, lay in enumerate(e.layers):
            if j == skip_layer:
                continue
            a = lay.self_attn
            q = F.linear(x, a.q_proj.weight, a.q_proj.bias).view(T, H, d).transpose(0, 1)
            k = F.linear(x, a.k_proj.weight, a.k_proj.bias).view(T, H, d).transpose(0, 1)
            v = F.linear(x, a.v_proj.weight, a.v_proj.bias).view(T, H, d).transpose(0, 1)
            g = torch.sigmoid(F.linear(q, a.grep_linear.weight, a.grep_linear.bias).view(H, T, 2, 4).sum(-1))
            ga, gb = g[..., 0:1], g[..., 1:2]                  # (H, T, 1)
            gate = ga * (gb * a.grep_a.view(H, 1, 1) - 1.0) + 2.0
            s = q @ k.transpose(1, 2) / math.sqrt(d) + gate * rel
            o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(T, W)
            x = self._ln(alpha * x + F.linear(o, a.out_proj.weight, a.out_proj.bias), lay.self_attn_layer_norm)
            h = F.linear(gelu_erf(F.linear(x, lay.fc1.weight, lay.fc1.bias)), lay.fc2.weight, lay.fc2.bias)
            x = self._ln(alpha * x + h, lay.final_layer_norm)
        return x

    def forward(self, fbank, skip_layer=None):
        """-> (audio embedding L2, raw audio_proj, tokens)."""
        t = self.tokens(fbank, skip_layer)
        p = F.linear(t.mean(0), self.audio_proj.weight, self.audio_proj.bias)
        return p / p.norm(), p, t

    def fuse(self, audio_proj_raw, vision_proj_raw):
        y = F.linear(torch.cat([audio_proj_raw, vision_proj_raw]), self.av_fusion.weight, self.av_fusion.bias)
        return y / y.norm()
