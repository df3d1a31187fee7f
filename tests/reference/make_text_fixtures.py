#!/usr/bin/python3
"""Generate vidx's text-tower golden fixtures from the independent reference (text_ref.py).

Tiny random models in the official key layout, EVERY parameter at O(1) scale (DECISIONS §2):
  bert_1b_like  : s2-1B-like (tiny vision trunk + BERT with cross-attention layers + ITM head),
                  a small real-looking vocab.txt written here;
  bert_6b_like  : s2-6B-like (av_concat_vision_proj Linear + LayerNorm before the cross-attention);
  mobileclip_like: clip-S/B/L-like (MobileCLIP text tower, a tiny BPE merges file written here).
Each is saved as an official-style checkpoint, converted with scripts/convert_internvideo2.py
(--vocab / --bpe) into fixtures/text/models/<name>/, and the reference (float64) writes:
  the text embedding for fixed token ids (inputs/<case>.ids.npy, float32 ids), and for BERT the
  ITM match logit against random vision tokens (inputs/<name>.vision.npy).
Also checks that skipping one layer moves every output far beyond the tolerance.

Usage: make_text_fixtures.py [--out DIR]   (default tests/reference/fixtures/text)
"""

import sys
sys.dont_write_bytecode = True

import argparse
import collections
import json
import os
import shutil
import subprocess
import tempfile
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONVERTER = os.path.join(ROOT, "scripts", "convert_internvideo2.py")
sys.path.insert(0, HERE)
import internvideo2_ref as vref  # noqa: E402
import text_ref  # noqa: E402

TOLERANCE = 1e-4

WORDS = ("a the of and to in is man woman dog cat car runs running walks play playing ball "
         "red blue green video people person street water on with at an his her two "
         "kitchen cooking food guitar music dance dancing").split()
SUFFIXES = ("##s", "##ing", "##ed", "##er", "##ly", "##a", "##e", "##o", "##n", "##t")


def rng_for(*parts):
    return np.random.RandomState(zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF)


def vocab_lines():
    """[PAD] [unused0..9] [UNK] [CLS] [SEP] [MASK], punctuation, letters, words, ## pieces."""
    v = ["[PAD]"] + ["[unused%d]" % i for i in range(10)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    v += list("!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~")
    v += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    v += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    v += WORDS + list(SUFFIXES)
    seen, out = set(), []
    for p in v:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def wordpiece(text, vocab, max_len):
    """Greedy longest-match WordPiece for the simple lower-case ASCII test sentences."""
    ids = [vocab["[CLS]"]]
    for word in text.lower().replace(",", " , ").replace(".", " . ").split():
        start, pieces = 0, []
        while start < len(word):
            end, cur = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in vocab:
                    cur = sub
                    break
                end -= 1
            if cur is None:
                pieces = ["[UNK]"]
                break
            pieces.append(cur)
            start = end
        ids += [vocab[p] for p in pieces]
    ids = ids[:max_len - 1] + [vocab["[SEP]"]]
    n = len(ids)
    return ids + [0] * (max_len - n), [1] * n + [0] * (max_len - n)


BPE_MERGES = ["#version: 0.2"] + ["a n", "t h", "th e</w>", "d o", "do g</w>", "c a", "ca t</w>",
                                  "r u", "ru n", "run s</w>", "a </w>", "i n", "in g</w>", "o n</w>",
                                  "p l", "pl a", "pla y", "play ing</w>", "b a", "ba l", "bal l</w>"]


def randomise(model, name):
    sd = model.state_dict()
    new = collections.OrderedDict()
    for k, v in sd.items():
        r = rng_for(name, k)
        n = r.standard_normal(tuple(v.shape))
        leaf = k.split(".")[-1]
        is_norm = ("LayerNorm" in k or "norm" in k.lower() or "pre_norm_mha.0." in k or "pre_norm_ffn.0." in k
                   or k.startswith("av_concat_vision_proj.1."))
        if is_norm and leaf == "weight":
            val = 1.0 + 0.2 * n
        elif leaf == "bias":
            val = 0.2 * n
        elif "embedding" in k or "pos_embed" in k:
            val = n
        elif len(v.shape) >= 2:
            fan_in = v.shape[0] if leaf == "projection_layer" else int(np.prod(v.shape[1:]))
            val = n / np.sqrt(fan_in)
        else:
            val = n
        new[k] = torch.from_numpy(val.astype(np.float32))
    model.load_state_dict(new)
    return new


def tiny_vision(name, width, embed_dim):
    m = vref.InternVideo2Vision(head="proj", embed_dim=embed_dim, width=width, depth=1, heads=2,
                                mlp_hidden=2 * width, frames=1, image_size=28, pool_heads=16,
                                pool_dim=32, img_pos_embed=False, gelu="tanh")
    sd = m.state_dict()
    return collections.OrderedDict((k, torch.from_numpy(rng_for(name, "vision", k).standard_normal(
        tuple(v.shape)).astype(np.float32) * 0.3)) for k, v in sd.items())


def save_npy(path, arr):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr.astype("<f4")), version=(1, 0), allow_pickle=False)


BERT_MODELS = collections.OrderedDict([
    ("bert_1b_like", dict(width=32, layers=5, heads=4, ffn=80, maxpos=24, fusion=3, vision_width=48,
                          fusion_proj=None, embed_dim=24, max_len=16)),
    ("bert_6b_like", dict(width=32, layers=4, heads=2, ffn=64, maxpos=20, fusion=2, vision_width=64,
                          fusion_proj=24, embed_dim=16, max_len=12)),
])
TEXTS = ["a man playing guitar in the kitchen", "two dogs running on the street with a red ball",
         "the cat", "people dancing, music and food. a woman walks with her dog on the street at "
         "the water playing with two blue balls"]
CLIP_MODEL = dict(width=32, layers=3, heads=4, ffn=128, context=20, embed_dim=16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures", "text"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("models", "inputs", "expected"):
        os.makedirs(os.path.join(out, sub))
    work = tempfile.mkdtemp(prefix="vidx-textref-")
    man = collections.OrderedDict([
        ("format", "vidx-text-fixtures"), ("version", 1),
        ("generator", "tests/reference/make_text_fixtures.py (reference: text_ref.py, float64 math)"),
        ("tolerance", TOLERANCE), ("error", "max|a-b| / max(max|b|, 1e-6); logits |a-b| <= tol*max(1,|b|)"),
        ("models", collections.OrderedDict()), ("cases", [])])
    vlines = vocab_lines()
    vocab = {p: i for i, p in enumerate(vlines)}
    try:
        vocab_path = os.path.join(work, "vocab.txt")
        with open(vocab_path, "w") as f:
            f.write("\n".join(vlines) + "\n")
        for name, s in BERT_MODELS.items():
            m = text_ref.BertText(len(vlines), s["width"], s["layers"], s["heads"], s["ffn"], s["maxpos"],
                                  s["fusion"], s["vision_width"], s["embed_dim"], s["fusion_proj"])
            sd = randomise(m, name)
            m = m.double().eval()
            ck = collections.OrderedDict(tiny_vision(name, s["vision_width"], s["embed_dim"]))
            ck.update(sd)
            ck["text_encoder.bert.embeddings.position_ids"] = torch.arange(s["maxpos"]).unsqueeze(0)
            ck["text_encoder.cls.predictions.bias"] = torch.zeros(len(vlines))
            ck["temp"] = torch.tensor(0.07)
            p = os.path.join(work, name + ".pt")
            torch.save({"model": ck}, p)
            mdir = "models/" + name
            cmd = [sys.executable, CONVERTER, "--variant", "custom", "--heads", "2", "--image-size", "28",
                   "--vocab", vocab_path, "--text-heads", str(s["heads"]), "--text-max-len", str(s["max_len"]),
                   "--quiet", "--out", os.path.join(out, mdir), p]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                sys.exit("converter failed on %s: %s" % (name, r.stderr.strip()))
            with open(os.path.join(out, mdir, "config.json")) as f:
                cfg = json.load(f)
            man["models"][mdir] = {"structure": name, "model_id": cfg["model_id"]}
            vis = rng_for(name, "vision-tokens").standard_normal((5, s["vision_width"])).astype(np.float32)
            vpath = "inputs/%s.vision.npy" % name
            save_npy(os.path.join(out, vpath), vis)
            v64 = torch.from_numpy(vis.astype(np.float64))
            for ti, text in enumerate(TEXTS):
                ids, mask = wordpiece(text, vocab, s["max_len"])
                ids_t, mask_t = torch.tensor(ids), torch.tensor(mask)
                with torch.no_grad():
                    emb = m.text(ids_t, mask_t).numpy()
                    logit = float(m.itm(ids_t, mask_t, v64))
                    if ti == 0:
                        for j in range(s["layers"]):
                            e2 = m.text(ids_t, mask_t, skip_layer=j).numpy() if j < s["fusion"] else emb
                            l2 = float(m.itm(ids_t, mask_t, v64, skip_layer=j))
                            de = vref.rel_err(e2, emb) if j < s["fusion"] else None
                            dl = abs(l2 - logit) / max(1.0, abs(logit))
                            print("%s skip layer %d: embedding err %s, logit err %.3g"
                                  % (name, j, "%.3g" % de if de is not None else "-", dl))
                            assert (de is None or de > 100 * TOLERANCE) and dl > 100 * TOLERANCE, "weak fixture"
                cname = "%s_text%d" % (name, ti)
                ipath, epath = "inputs/%s.ids.npy" % cname, "expected/%s.emb.npy" % cname
                save_npy(os.path.join(out, ipath), np.array([ids, mask], dtype=np.float32))
                save_npy(os.path.join(out, epath), emb)
                man["cases"].append(collections.OrderedDict([
                    ("name", cname), ("model", mdir), ("kind", "bert"), ("text", text), ("ids", ipath),
                    ("embedding", epath), ("vision_tokens", vpath), ("itm_logit", logit)]))
        # MobileCLIP
        s = CLIP_MODEL
        nmerges = len(BPE_MERGES) - 1
        nvocab = 512 + nmerges + 2
        m = text_ref.MobileClipText(nvocab, s["width"], s["layers"], s["heads"], s["ffn"], s["context"], s["embed_dim"])
        sd = randomise(m, "mobileclip_like")
        m = m.double().eval()
        ck = collections.OrderedDict()
        for k, v in tiny_vision("mobileclip_like", 32, s["embed_dim"]).items():
            if k.startswith("vision_proj."):
                continue
            ck[k] = v
        r = rng_for("mobileclip_like", "align")
        ck["vision_align.0.weight"] = torch.from_numpy((1 + 0.2 * r.standard_normal(32)).astype(np.float32))
        ck["vision_align.0.bias"] = torch.from_numpy((0.2 * r.standard_normal(32)).astype(np.float32))
        ck["vision_align.1.weight"] = torch.from_numpy((r.standard_normal((s["embed_dim"], 32)) / 6).astype(np.float32))
        ck["vision_align.1.bias"] = torch.from_numpy((0.2 * r.standard_normal(s["embed_dim"])).astype(np.float32))
        ck.update(sd)
        p = os.path.join(work, "mobileclip_like.bin")
        torch.save(ck, p)
        bpe_path = os.path.join(work, "bpe_simple_vocab_16e6.txt")
        with open(bpe_path, "w") as f:
            f.write("\n".join(BPE_MERGES) + "\n")
        mdir = "models/mobileclip_like"
        cmd = [sys.executable, CONVERTER, "--variant", "custom", "--heads", "2", "--image-size", "28",
               "--bpe", bpe_path, "--text-heads", str(s["heads"]), "--quiet", "--out", os.path.join(out, mdir), p]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit("converter failed on mobileclip_like: %s" % r.stderr.strip())
        with open(os.path.join(out, mdir, "config.json")) as f:
            cfg = json.load(f)
        man["models"][mdir] = {"structure": "mobileclip_like", "model_id": cfg["model_id"]}
        sot, eot = 512 + nmerges, 512 + nmerges + 1
        for ti in range(3):
            rr = rng_for("clip-ids", ti)
            n = [5, 9, s["context"] - 2][ti]
            ids = [sot] + list(rr.randint(1, 512 + nmerges, size=n)) + [eot]
            ids = ids + [0] * (s["context"] - len(ids))
            ids_t = torch.tensor(ids)
            with torch.no_grad():
                emb = m(ids_t).numpy()
                if ti == 0:
                    for j in range(s["layers"]):
                        de = vref.rel_err(m(ids_t, skip_layer=j).numpy(), emb)
                        print("mobileclip skip layer %d: embedding err %.3g" % (j, de))
                        assert de > 100 * TOLERANCE, "weak fixture"
            cname = "mobileclip_like_ids%d" % ti
            ipath, epath = "inputs/%s.ids.npy" % cname, "expected/%s.emb.npy" % cname
            save_npy(os.path.join(out, ipath), np.array([ids, [1 if i else 0 for i in ids]], dtype=np.float32))
            save_npy(os.path.join(out, epath), emb)
            man["cases"].append(collections.OrderedDict([
                ("name", cname), ("model", mdir), ("kind", "mobileclip"), ("ids", ipath), ("embedding", epath)]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, fn)) for d, _, fs in os.walk(out) for fn in fs)
    print("wrote %d text cases, %d models into %s (%.2f MB)" % (len(man["cases"]), len(man["models"]), out, total / 1e6))


if __name__ == "__main__":
    main()
