#!/usr/bin/python3
"""Generate vidx's vision golden fixtures from the independent reference (internvideo2_ref.py).

For each tiny model structure (s2-1B-like, s2-6B-like, distilled, clip-small-like) this script
  1. builds the reference module and gives EVERY parameter a deterministic O(1) random value
     (numpy MT19937 seeded per model and tensor name, so the bytes do not depend on the torch
     version): layer-scale gammas, norm weights (1 + noise) and biases, pos_embed, CLS, pool, heads;
  2. saves an official-style checkpoint (.pt, torch.save of a dict like the released files, with
     train-only and other-tower tensors mixed in) into a scratch directory;
  3. runs scripts/convert_internvideo2.py on it, writing fixtures/models/<name>/;
  4. runs the reference (float64 math) on deterministic normalised inputs and writes the
     L2-normalised embedding and the raw tokens.

Usage: make_fixtures.py [--out DIR] [--keep-checkpoints DIR]
Default DIR is tests/reference/fixtures (the committed set). See README.md for the manifest.
"""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONVERTER = os.path.join(ROOT, "scripts", "convert_internvideo2.py")
sys.path.insert(0, HERE)
import internvideo2_ref as ref  # noqa: E402

TOLERANCE = 1e-4
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])

# Tiny structures.  width/heads/mlp chosen to differ between models (head_dim 16 and 8, pool
# head_dim 4/3/2, a non-ratio-4 MLP like 1B's 48/11: int(64*48/11) = 279).
MODELS = collections.OrderedDict([
    ("s2_1b_like", dict(structure="s2-1B-like", layout="s2", head="proj", embed_dim=24,
                        trunk=dict(width=64, depth=2, heads=4, mlp_hidden=279, frames=4, image_size=42,
                                   pool_heads=16, pool_dim=32, img_pos_embed=True, gelu="tanh"))),
    ("s2_6b_like", dict(structure="s2-6B-like", layout="s2-6b", head="proj", embed_dim=32,
                        trunk=dict(width=48, depth=2, heads=3, mlp_hidden=192, frames=4, image_size=56,
                                   pool_heads=16, pool_dim=32, img_pos_embed=False, gelu="tanh"))),
    ("distilled_like", dict(structure="distilled", layout="flat", head="none", embed_dim=None,
                            trunk=dict(width=32, depth=2, heads=2, mlp_hidden=128, frames=8, image_size=28,
                                       pool_heads=16, pool_dim=32, img_pos_embed=False, gelu="erf"))),
    ("clip_small_like", dict(structure="clip-small-like", layout="clip", head="align", embed_dim=16,
                             trunk=dict(width=32, depth=2, heads=4, mlp_hidden=96, frames=2, image_size=224,
                                        pool_heads=16, pool_dim=24, img_pos_embed=False, gelu="tanh"))),
])

# (model, weight dtype, frames, image size, what it exercises)
CASES = [
    ("s2_1b_like", "F32", 4, 42, "native table"),
    ("s2_1b_like", "F32", 8, 42, "temporal linear 4->8"),
    ("s2_1b_like", "F32", 1, 42, "T=1 img_pos_embed"),
    ("s2_1b_like", "F32", 4, 56, "spatial bicubic 3x3->4x4"),
    ("s2_1b_like", "F32", 1, 224, "T=1 img_pos_embed, bicubic 3x3->16x16"),
    ("s2_1b_like", "BF16", 4, 42, "bf16 weights, native table"),
    ("s2_1b_like", "BF16", 8, 42, "bf16 weights, temporal 4->8"),
    ("s2_6b_like", "F32", 4, 56, "native table"),
    ("s2_6b_like", "F32", 1, 56, "T=1 CLS + temporal mean"),
    ("s2_6b_like", "F32", 4, 42, "spatial bicubic 4x4->3x3"),
    ("s2_6b_like", "F32", 8, 42, "temporal 4->8 and bicubic 4x4->3x3"),
    ("distilled_like", "F32", 8, 28, "native table, erf GELU, head none"),
    ("distilled_like", "F32", 4, 28, "temporal linear 8->4"),
    ("distilled_like", "F32", 1, 28, "T=1 temporal mean of 8"),
    ("distilled_like", "F32", 8, 42, "spatial bicubic 2x2->3x3"),
    ("clip_small_like", "F32", 1, 224, "224x224, T=1 temporal mean of 2"),
    ("clip_small_like", "F32", 2, 56, "spatial bicubic 16x16->4x4"),
    ("clip_small_like", "F32", 4, 56, "temporal 2->4 and bicubic 16x16->4x4"),
]

SKIP_CHECK_CASE = ("s2_1b_like", "F32", 4, 42)


def rng_for(*parts):
    return np.random.RandomState(zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF)


def random_value(model_name, key, shape):
    """O(1) random values by parameter role (DECISIONS section 2)."""
    r = rng_for(model_name, key)
    n = r.standard_normal(shape)
    leaf = key.split(".")[-1]
    is_norm = any(s in key for s in ("norm1.", "norm2.", "q_norm.", "k_norm.", "norm1_q.", "norm1_k.",
                                     "norm1_v.", "vision_align.0.", ".norm.", "LayerNorm"))
    if key.endswith("gamma"):                       # layer scale
        return r.uniform(0.4, 1.2, size=shape)
    if is_norm and leaf == "weight":
        return 1.0 + 0.2 * n
    if is_norm and leaf == "bias":
        return 0.2 * n
    if leaf in ("cls_token",):
        return n
    if "pos_embed" in leaf:
        return 0.5 * n
    if leaf.endswith("bias"):                       # linear / conv / pool q,k,v biases
        return 0.2 * n
    if leaf == "weight" and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return n / np.sqrt(fan_in)
    return n


def build_model(name, spec):
    m = ref.InternVideo2Vision(head=spec["head"], embed_dim=spec["embed_dim"], **spec["trunk"])
    sd = m.state_dict()
    new = collections.OrderedDict()
    for k, v in sd.items():
        new[k] = torch.from_numpy(random_value(name, k, tuple(v.shape)).astype(np.float32))
    m.load_state_dict(new)
    return m, new


def extra_tensors(name, spec, sd):
    """Train-only tensors and other towers, as found in the official files."""
    t = spec["trunk"]
    C, D = t["width"], t["pool_dim"]
    V = "" if spec["layout"] in ("flat", "clip") else "vision_encoder."

    def rnd(key, shape):
        return torch.from_numpy(rng_for(name, "extra", key).standard_normal(shape).astype(np.float32))

    ex = collections.OrderedDict()
    pe_key = "vision_encoder.pos_embed" if "vision_encoder.pos_embed" in sd else "pos_embed"
    ex[V + "clip_pos_embed"] = rnd("cpe", tuple(sd[pe_key].shape))
    if t["img_pos_embed"]:
        ex[V + "clip_img_pos_embed"] = rnd("cipe", (1, 1 + (t["image_size"] // 14) ** 2, C))
    for i in range(2):
        ex[V + "clip_decoder.%d.head.weight" % i] = rnd("cdw%d" % i, (8, C))
        ex[V + "clip_decoder.%d.head.bias" % i] = rnd("cdb%d" % i, (8,))
        ex[V + "clip_decoder.%d.norm.weight" % i] = rnd("cdn%d" % i, (8,))
        ex[V + "clip_decoder.%d.norm.bias" % i] = rnd("cdnb%d" % i, (8,))
    ex[V + "final_clip_decoder.head.weight"] = rnd("fw", (8, D))
    ex[V + "final_clip_decoder.head.bias"] = rnd("fb", (8,))
    ex[V + "final_clip_decoder.norm.weight"] = rnd("fn", (8,))
    ex[V + "final_clip_decoder.norm.bias"] = rnd("fnb", (8,))
    if spec["layout"] in ("s2", "s2-6b"):
        ex["text_encoder.bert.embeddings.word_embeddings.weight"] = rnd("we", (10, 8))
        ex["text_encoder.bert.embeddings.position_ids"] = torch.arange(6).unsqueeze(0)
        ex["text_encoder.bert.encoder.layer.0.attention.self.query.weight"] = rnd("q", (8, 8))
        ex["text_encoder.cls.predictions.bias"] = rnd("mlm", (10,))
        ex["text_proj.weight"] = rnd("tp", (spec["embed_dim"], 8))
        ex["text_proj.bias"] = rnd("tpb", (spec["embed_dim"],))
        ex["itm_head.weight"] = rnd("itm", (2, 8))
        ex["itm_head.bias"] = rnd("itmb", (2,))
        ex["temp"] = torch.tensor(0.07)
    if spec["layout"] == "s2-6b":
        ex["audio_encoder.layer_norm.weight"] = rnd("aln", (6,))
        ex["audio_proj.weight"] = rnd("ap", (spec["embed_dim"], 6))
        ex["av_concat_vision_proj.0.weight"] = rnd("avp", (8, C))
        ex["av_concat_vision_proj.1.weight"] = rnd("avpn", (8,))
        ex["av_fusion.weight"] = rnd("avf", (8, 16))
        ex["avtm_head.weight"] = rnd("avtm", (2, 8))
    return ex


class _EasyDict(dict):
    """Pickled as utils.easydict.EasyDict, as in the official s2-6B file."""

    def __getattr__(self, k):
        return self[k]


def _easydict_module():
    utils = types.ModuleType("utils")
    ed = types.ModuleType("utils.easydict")
    _EasyDict.__module__ = "utils.easydict"
    _EasyDict.__qualname__ = "EasyDict"
    _EasyDict.__name__ = "EasyDict"
    ed.EasyDict = _EasyDict
    utils.easydict = ed
    return utils, ed


def save_easydict_checkpoint(obj, path):
    utils, ed = _easydict_module()
    saved = {k: sys.modules.get(k) for k in ("utils", "utils.easydict")}
    sys.modules["utils"], sys.modules["utils.easydict"] = utils, ed
    try:
        torch.save(obj, path)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_checkpoints(name, spec, sd, dtype, workdir):
    """Official-style file(s) for the model; returns the list of paths."""
    cast = (lambda t: t.to(torch.bfloat16) if t.is_floating_point() else t) if dtype == "BF16" else (lambda t: t)
    ex = extra_tensors(name, spec, sd)
    layout = spec["layout"]
    paths = []
    if layout == "s2":
        d = collections.OrderedDict((k, cast(v)) for k, v in list(sd.items()) + list(ex.items()))
        p = os.path.join(workdir, "%s_%s.pt" % (name, dtype.lower()))
        torch.save({"model": d, "epoch": 3}, p)
        paths.append(p)
    elif layout == "s2-6b":
        d = collections.OrderedDict((k, cast(v)) for k, v in list(sd.items()) + list(ex.items()))
        p = os.path.join(workdir, "%s_%s.pt" % (name, dtype.lower()))
        cfg = _EasyDict(model=_EasyDict(model_cls="InternVideo2_Stage2_audiovisual"), num_frames=4)
        save_easydict_checkpoint({"module": d, "config": cfg}, p)
        paths.append(p)
    elif layout == "flat":
        d = collections.OrderedDict((k, cast(v)) for k, v in list(sd.items()) + list(ex.items()))
        p = os.path.join(workdir, "%s_%s_pytorch_model.bin" % (name, dtype.lower()))
        torch.save(d, p)
        paths.append(p)
    elif layout == "clip":
        # file 1: distilled-style trunk without prefix, with a *different* clip_projector that
        # the CLIP file must override; file 2: vision_encoder.clip_projector.*, vision_align.*, text
        trunk = collections.OrderedDict()
        clipf = collections.OrderedDict()
        for k, v in sd.items():
            if k.startswith("vision_encoder."):
                short = k[len("vision_encoder."):]
                if short.startswith("clip_projector."):
                    trunk[short] = cast(v * 0.5 + 1.0)           # stale pool, must be overridden
                    clipf[k] = cast(v)
                else:
                    trunk[short] = cast(v)
            else:
                clipf[k] = cast(v)
        trunk.update((k, cast(v)) for k, v in ex.items())
        clipf["text_encoder.embedding_layer.weight"] = torch.zeros(10, 8)
        clipf["text_encoder.projection_layer"] = torch.zeros(8, 8)
        p1 = os.path.join(workdir, "%s_%s_vision.bin" % (name, dtype.lower()))
        p2 = os.path.join(workdir, "%s_%s_clip.bin" % (name, dtype.lower()))
        torch.save(trunk, p1)
        torch.save(clipf, p2)
        paths += [p1, p2]
    return paths


def make_input(T, S):
    """(1, 3, T, S, S) float32, ImageNet-normalised random uint8 pixels."""
    r = rng_for("input", T, S)
    px = r.randint(0, 256, size=(1, 3, T, S, S)).astype(np.float64) / 255.0
    x = (px - MEAN.reshape(1, 3, 1, 1, 1)) / STD.reshape(1, 3, 1, 1, 1)
    return x.astype("<f4")


def save_npy(path, arr):
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.dtype("<f4"), np.dtype("u1"))
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def run_reference(model, x64, skip_block=None):
    with torch.no_grad():
        emb, tok = model(x64, skip_block=skip_block)
    return emb[0].numpy(), tok[0].numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--keep-checkpoints", metavar="DIR", help="also keep the official-style .pt files here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = os.path.abspath(args.out)
    for sub in ("models", "inputs", "expected"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))

    work = args.keep_checkpoints or tempfile.mkdtemp(prefix="vidx-ref-")
    os.makedirs(work, exist_ok=True)
    manifest = collections.OrderedDict([
        ("format", "vidx-reference-fixtures"), ("version", 1),
        ("generator", "tests/reference/make_fixtures.py (reference: internvideo2_ref.py, float64 math)"),
        ("tolerance", TOLERANCE),
        ("error", "max|a-b| / max(max|b|, 1e-6) over the whole tensor"),
        ("models", collections.OrderedDict()), ("cases", [])])
    try:
        built = {}
        for (mname, dtype, T, S, what) in CASES:
            spec = MODELS[mname]
            key = (mname, dtype)
            if key not in built:
                model, sd = build_model(mname, spec)
                if dtype == "BF16":
                    sd = collections.OrderedDict((k, v.to(torch.bfloat16).float()) for k, v in sd.items())
                    model.load_state_dict(sd)
                model = model.double().eval()
                ckpts = write_checkpoints(mname, spec, sd, dtype, work)
                mdir = "models/%s_%s" % (mname, dtype.lower())
                cmd = [sys.executable, CONVERTER, "--variant", "custom", "--heads", str(spec["trunk"]["heads"]),
                       "--image-size", str(spec["trunk"]["image_size"]), "--gelu", spec["trunk"]["gelu"],
                       "--dtype", "keep", "--quiet", "--out", os.path.join(out, mdir)] + ckpts
                if spec["layout"] == "s2-6b":
                    cmd.insert(2, "--trust-pickle")        # pickles utils.easydict.EasyDict
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit("converter failed on %s: %s" % (mname, r.stderr.strip()))
                with open(os.path.join(out, mdir, "config.json")) as f:
                    cfg = json.load(f)
                built[key] = model
                manifest["models"][mdir] = collections.OrderedDict([
                    ("structure", spec["structure"]), ("dtype", dtype), ("model_id", cfg["model_id"]),
                    ("checkpoint_layout", spec["layout"]),
                    ("checkpoints", [os.path.basename(p) for p in ckpts])])
            model = built[key]
            inp = "inputs/t%d_s%d.npy" % (T, S)
            x = make_input(T, S)
            if not os.path.exists(os.path.join(out, inp)):
                save_npy(os.path.join(out, inp), x)
            emb, tok = run_reference(model, torch.from_numpy(x.astype(np.float64)))
            cname = "%s_%s_t%d_s%d" % (mname, dtype.lower(), T, S)
            e_path, t_path = "expected/%s.emb.npy" % cname, "expected/%s.tokens.npy" % cname
            save_npy(os.path.join(out, e_path), emb.astype("<f4"))
            save_npy(os.path.join(out, t_path), tok.astype("<f4"))
            case = collections.OrderedDict([
                ("name", cname), ("model", "models/%s_%s" % (mname, dtype.lower())),
                ("structure", MODELS[mname]["structure"]), ("dtype", dtype),
                ("input", inp), ("frames", T), ("image_size", S),
                ("embedding", e_path), ("tokens", t_path),
                ("embed_dim", int(emb.shape[0])), ("tokens_shape", list(tok.shape)),
                ("exercises", what)])
            if (mname, dtype, T, S) == SKIP_CHECK_CASE:
                e2, t2 = run_reference(model, torch.from_numpy(x.astype(np.float64)), skip_block=1)
                de, dt = ref.rel_err(e2, emb), ref.rel_err(t2, tok)
                print("skip-block check (%s, block 1 skipped): embedding err %.3g, tokens err %.3g "
                      "(tolerance %g)" % (cname, de, dt, TOLERANCE))
                assert de > 100 * TOLERANCE and dt > 100 * TOLERANCE, "blocks barely matter: weak fixture"
                e0, t0 = run_reference(model, torch.from_numpy(x.astype(np.float64)), skip_block=0)
                de0, dt0 = ref.rel_err(e0, emb), ref.rel_err(t0, tok)
                print("skip-block check (%s, block 0 skipped): embedding err %.3g, tokens err %.3g"
                      % (cname, de0, dt0))
                assert de0 > 100 * TOLERANCE and dt0 > 100 * TOLERANCE
                case["skip_block_errors"] = {"block0": [round(de0, 4), round(dt0, 4)],
                                             "block1": [round(de, 4), round(dt, 4)]}
            manifest["cases"].append(case)
    finally:
        if not args.keep_checkpoints:
            shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, fn)) for d, _, fs in os.walk(out) for fn in fs)
    print("wrote %d cases, %d models into %s (%.2f MB)"
          % (len(manifest["cases"]), len(manifest["models"]), out, total / 1e6))


if __name__ == "__main__":
    main()
