"""Independent PyTorch reference of the InternVideo2 text towers (vidx test oracle).

Written from the vidx fact sheet (/work/shared/INTERNVIDEO2.md, sections 3.1, 3.3, 7), not from
the official code. Module trees reproduce the official parameter names:

  BertText (s2-1B / s2-6B): text_encoder.bert.embeddings.*, text_encoder.bert.encoder.layer.{j}.*,
      text_proj.*, itm_head.*, and for s2-6B av_concat_vision_proj.{0,1}.*
      - embeddings: word + token_type(0) + position, LayerNorm(eps 1e-12)
      - post-LN layers: x = LN(x + O(SelfAttn(x, additive mask (1-mask)*-10000)));
        [j >= fusion_layer: x = LN(x + O(CrossAttn(q = x, k/v = vision tokens)))];
        x = LN(x + W2 gelu_erf(W1 x))
      - text(): layers 0..fusion_layer-1, token 0, text_proj, L2
      - itm(): layers fusion_layer..layers-1 on those hidden states with the vision tokens
        (s2-6B: first Linear + LayerNorm(eps 1e-5) of av_concat_vision_proj), token 0, itm_head,
        logit index 1.
  MobileClipText (clip-S/B/L): text_encoder.embedding_layer.weight,
      text_encoder.positional_embedding.pos_embed.pos_embed (1,1,ctx,W),
      text_encoder.transformer.{j}.pre_norm_mha.{0 LN, 1.qkv_proj, 1.out_proj},
      .pre_norm_ffn.{0 LN, 1 fc1, 4 fc2}, text_encoder.final_layer_norm,
      text_encoder.projection_layer (W, E) used as x @ P.
      - pre-LN causal transformer, exact GELU, LN eps 1e-5, feature at argmax(ids), @ P, L2.

The math runs in the parameters' dtype (float64 for the fixtures).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def mha(q_in, kv_in, wq, bq, wk, bk, wv, bv, heads, add_mask=None):
    """q_in (L, W), kv_in (N, Wkv) -> (L, W); add_mask (L or 1, N) added to the scores."""
    q = F.linear(q_in, wq, bq)
    k = F.linear(kv_in, wk, bk)
    v = F.linear(kv_in, wv, bv)
    L, W = q.shape
    N = k.shape[0]
    d = W // heads
    q = q.view(L, heads, d).transpose(0, 1)
    k = k.view(N, heads, d).transpose(0, 1)
    v = v.view(N, heads, d).transpose(0, 1)
    s = q @ k.transpose(1, 2) / math.sqrt(d)
    if add_mask is not None:
        s = s + add_mask
    p = torch.softmax(s, dim=-1)
    return (p @ v).transpose(0, 1).reshape(L, W)


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


class _SelfQKV(nn.Module):
    def __init__(self, w, wkv):
        super().__init__()
        self.query = _Lin(w, w)
        self.key = _Lin(wkv, w)
        self.value = _Lin(wkv, w)


class _Out(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = _Lin(i, o)
        self.LayerNorm = _LN(o)


class _Attention(nn.Module):
    def __init__(self, w, wkv):
        super().__init__()
        self.self = _SelfQKV(w, wkv)
        self.output = _Out(w, w)


class _Inter(nn.Module):
    def __init__(self, w, f):
        super().__init__()
        self.dense = _Lin(w, f)


class _BertLayer(nn.Module):
    def __init__(self, w, f, cross_width):
        super().__init__()
        self.attention = _Attention(w, w)
        if cross_width:
            self.crossattention = _Attention(w, cross_width)
        self.intermediate = _Inter(w, f)
        self.output = _Out(f, w)


class _Emb(nn.Module):
    def __init__(self, vocab, w, maxpos, types):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, w)
        self.position_embeddings = nn.Embedding(maxpos, w)
        self.token_type_embeddings = nn.Embedding(types, w)
        self.LayerNorm = _LN(w)


class _Encoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class _Bert(nn.Module):
    def __init__(self, vocab, w, layers, f, maxpos, fusion_layer, encoder_width):
        super().__init__()
        self.embeddings = _Emb(vocab, w, maxpos, 2)
        self.encoder = _Encoder([_BertLayer(w, f, encoder_width if j >= fusion_layer else 0)
                                 for j in range(layers)])


class _TextEncoder(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert


class BertText(nn.Module):
    def __init__(self, vocab, width, layers, heads, ffn, max_positions, fusion_layer, vision_width,
                 embed_dim, fusion_proj_width=None, eps=1e-12):
        super().__init__()
        self.heads, self.fusion_layer, self.layers, self.eps = heads, fusion_layer, layers, eps
        enc_w = fusion_proj_width or vision_width
        self.text_encoder = _TextEncoder(_Bert(vocab, width, layers, ffn, max_positions, fusion_layer, enc_w))
        self.text_proj = _Lin(width, embed_dim)
        self.itm_head = _Lin(width, 2)
        self.fusion_proj = fusion_proj_width is not None
        if self.fusion_proj:
            self.av_concat_vision_proj = nn.Sequential(nn.Linear(vision_width, fusion_proj_width),
                                                       nn.LayerNorm(fusion_proj_width))

    def _ln(self, x, ln):
        return F.layer_norm(x, (x.shape[-1],), ln.weight, ln.bias, self.eps)

    def _attn_block(self, x, kv, att, add_mask):
        s = att.self
        h = mha(x, kv, s.query.weight, s.query.bias, s.key.weight, s.key.bias, s.value.weight,
                s.value.bias, self.heads, add_mask)
        return self._ln(x + F.linear(h, att.output.dense.weight, att.output.dense.bias), att.output.LayerNorm)

    def _layer(self, j, x, add_mask, vision=None, skip=False):
        lay = self.text_encoder.bert.encoder.layer[j]
        if skip:
            return x
        x = self._attn_block(x, x, lay.attention, add_mask)
        if vision is not None:
            x = self._attn_block(x, vision, lay.crossattention, None)
        h = gelu_erf(F.linear(x, lay.intermediate.dense.weight, lay.intermediate.dense.bias))
        return self._ln(x + F.linear(h, lay.output.dense.weight, lay.output.dense.bias), lay.output.LayerNorm)

    def hidden(self, ids, mask, skip_layer=None):
        """ids, mask (L,) int -> hidden states after layer fusion_layer-1 (L, W)."""
        e = self.text_encoder.bert.embeddings
        L = ids.shape[0]
        x = e.word_embeddings.weight[ids] + e.token_type_embeddings.weight[0] + e.position_embeddings.weight[:L]
        x = self._ln(x, e.LayerNorm)
        add_mask = ((1.0 - mask.to(x.dtype)) * -10000.0).view(1, L)
        for j in range(self.fusion_layer):
            x = self._layer(j, x, add_mask, skip=(j == skip_layer))
        return x, add_mask

    def text(self, ids, mask, skip_layer=None):
        x, _ = self.hidden(ids, mask, skip_layer)
        y = F.linear(x[0], self.text_proj.weight, self.text_proj.bias)
        return y / y.norm()

    def itm(self, ids, mask, vision_tokens, skip_layer=None):
        """vision_tokens (N, vision_width) -> the match logit (itm_head output index 1)."""
        x, add_mask = self.hidden(ids, mask, skip_layer)
        v = vision_tokens
        if self.fusion_proj:
            lin, ln = self.av_concat_vision_proj[0], self.av_concat_vision_proj[1]
            v = F.layer_norm(F.linear(v, lin.weight, lin.bias), (lin.weight.shape[0],), ln.weight, ln.bias, 1e-5)
        for j in range(self.fusion_layer, self.layers):
            x = self._layer(j, x, add_mask, vision=v, skip=(j == skip_layer))
        return F.linear(x[0], self.itm_head.weight, self.itm_head.bias)[1]


# ---- MobileCLIP-B text -----------------------------------------------------------------------

class _PosInner(nn.Module):
    def __init__(self, ctx, w):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, ctx, w))


class _Pos(nn.Module):
    def __init__(self, ctx, w):
        super().__init__()
        self.pos_embed = _PosInner(ctx, w)


class _MHA(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.qkv_proj = _Lin(w, 3 * w)
        self.out_proj = _Lin(w, w)


class _Drop(nn.Module):
    pass


class _ClipLayer(nn.Module):
    def __init__(self, w, f):
        super().__init__()
        self.pre_norm_mha = nn.ModuleList([_LN(w), _MHA(w)])
        self.pre_norm_ffn = nn.ModuleList([_LN(w), _Lin(w, f), _Drop(), _Drop(), _Lin(f, w)])


class _ClipText(nn.Module):
    def __init__(self, vocab, w, layers, f, ctx, embed_dim):
        super().__init__()
        self.embedding_layer = nn.Embedding(vocab, w)
        self.positional_embedding = _Pos(ctx, w)
        self.transformer = nn.ModuleList([_ClipLayer(w, f) for _ in range(layers)])
        self.final_layer_norm = _LN(w)
        self.projection_layer = nn.Parameter(torch.zeros(w, embed_dim))


class MobileClipText(nn.Module):
    def __init__(self, vocab, width, layers, heads, ffn, context, embed_dim, eps=1e-5):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.text_encoder = _ClipText(vocab, width, layers, ffn, context, embed_dim)

    def _ln(self, x, ln):
        return F.layer_norm(x, (x.shape[-1],), ln.weight, ln.bias, self.eps)

    def forward(self, ids, skip_layer=None):
        t = self.text_encoder
        L = ids.shape[0]
        W = t.embedding_layer.weight.shape[1]
        x = t.embedding_layer.weight[ids] + t.positional_embedding.pos_embed.pos_embed[0, 0, :L]
        causal = torch.triu(torch.full((L, L), float("-inf"), dtype=x.dtype), diagonal=1)
        d = W // self.heads
        for j, lay in enumerate(t.transformer):
            if j == skip_layer:
                continue
            ln, att = lay.pre_norm_mha[0], lay.pre_norm_mha[1]
            h = self._ln(x, ln)
            qkv = F.linear(h, att.qkv_proj.weight, att.qkv_proj.bias).view(L, 3, self.heads, d)
            q, k, v = (qkv[:, i].transpose(0, 1) for i in range(3))
            s = q @ k.transpose(1, 2) / math.sqrt(d) + causal
            o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(L, W)
            x = x + F.linear(o, att.out_proj.weight, att.out_proj.bias)
            ff = lay.pre_norm_ffn
            h = self._ln(x, ff[0])
            h = F.linear(gelu_erf(F.linear(h, ff[1].weight, ff[1].bias)), ff[4].weight, ff[4].bias)
            x = x + h
        x = self._ln(x, t.final_layer_norm)
        y = x[int(torch.argmax(ids))] @ t.projection_layer
        return y / y.norm()
