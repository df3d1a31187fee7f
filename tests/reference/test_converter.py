#!/usr/bin/python3
"""ctest reference_converter: tests of scripts/convert_internvideo2.py.

Round trips of synthetic official-layout checkpoints of every structure (tensors compared
bit-exactly through an independent safetensors reader, config.json numbers, model_id), the
EasyDict pickle, "model"/"module"/flat top levels, named variants, dtype conversion, and bad files
(missing/unknown keys, wrong shapes, truncated files, not a pickle) -> exit status 2 with one
clear line on stderr.  Without torch: prints "skipped: torch not available" and exits 0.
"""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__

import collections
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONVERTER = os.path.join(ROOT, "scripts", "convert_internvideo2.py")

try:
    import numpy as np
    import torch
except ImportError:
    print("skipped: torch not available (%s has no torch/numpy)" % sys.executable)
    sys.exit(0)

sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402
import safetensors_io  # noqa: E402
from check_reference import official_name  # noqa: E402

_spec = importlib.util.spec_from_file_location("convert_internvideo2", CONVERTER)
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)


def run_conv(args):
    """Run the converter in-process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = conv.main(args)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def std_args(name, extra=()):
    t = mf.MODELS[name]["trunk"]
    return ["--variant", "custom", "--heads", str(t["heads"]), "--image-size", str(t["image_size"]),
            "--gelu", t["gelu"]] + list(extra)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.tmp = tempfile.mkdtemp(prefix="vidx-convtest-")
        cls.models = {}
        for name, spec in mf.MODELS.items():
            model, sd = mf.build_model(name, spec)
            cls.models[name] = sd

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *p):
        d = os.path.join(self.tmp, self.id().split(".")[-1])
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, *p)

    def ckpts(self, name, dtype="F32"):
        d = self.path("ckpt_" + name + "_" + dtype)
        os.makedirs(d, exist_ok=True)
        sd = self.models[name]
        if dtype == "BF16":
            sd = collections.OrderedDict((k, v.to(torch.bfloat16).float()) for k, v in sd.items())
        return mf.write_checkpoints(name, mf.MODELS[name], sd, dtype, d)

    def expect_error(self, args, pattern):
        rc, out, err = run_conv(args)
        self.assertEqual(rc, 2, "expected failure, got rc=%s out=%r err=%r" % (rc, out, err))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, "error must be one line: %r" % err)
        self.assertRegex(lines[0], r"^convert_internvideo2: error: ")
        self.assertRegex(lines[0], pattern)
        return lines[0]

    def check_dir(self, outdir, name, sd, dtype, variant="custom"):
        """Every tensor bit-exact against the source state dict; config numbers."""
        spec = mf.MODELS[name]
        t = spec["trunk"]
        with open(os.path.join(outdir, "config.json")) as f:
            cfg = json.load(f)
        meta, tensors = safetensors_io.read(os.path.join(outdir, "model.safetensors"))
        self.assertEqual(meta["format"], "vidx")
        self.assertEqual(meta["model_id"], cfg["model_id"])
        # model_id = internvideo2-<variant>-p<P>-f<frames>-<sha256(data section)[:12]>
        with open(os.path.join(outdir, "model.safetensors"), "rb") as f:
            blob = f.read()
        n = int.from_bytes(blob[:8], "little")
        sha = hashlib.sha256(blob[8 + n:]).hexdigest()[:12]
        self.assertEqual(cfg["model_id"], "internvideo2-%s-p14-f%d-%s" % (variant.lower(), t["frames"], sha))
        v = cfg["vision"]
        self.assertEqual(cfg["format"], "vidx-model")
        self.assertEqual(cfg["format_version"], 1)
        self.assertEqual(cfg["variant"], variant)
        for k in ("width", "depth", "heads", "mlp_hidden", "frames", "image_size", "pool_heads",
                  "pool_dim", "img_pos_embed", "gelu"):
            self.assertEqual(v[k], t[k], k)
        self.assertEqual(v["patch_size"], 14)
        self.assertEqual(v["tubelet"], 1)
        self.assertEqual(v["head"], spec["head"])
        self.assertEqual(cfg["embed_dim"], spec["embed_dim"] or t["pool_dim"])
        self.assertEqual(v["norm_eps"], 1e-6)
        self.assertEqual(v["pool_norm_eps"], 1e-5)
        self.assertTrue(v["qk_norm"])
        self.assertEqual(cfg["preprocess"]["frames"], t["frames"])
        self.assertEqual(cfg["preprocess"]["image_size"], t["image_size"])
        self.assertEqual(cfg["preprocess"]["mean"], [0.485, 0.456, 0.406])
        self.assertEqual(cfg["preprocess"]["std"], [0.229, 0.224, 0.225])
        self.assertFalse(cfg["preprocess"]["antialias"])
        self.assertIsNone(cfg["text"])
        self.assertIsNone(cfg["audio"])
        # tensors: exactly the model's parameters, no more (train-only / other towers dropped)
        seen = set()
        for vname, (dt, arr) in tensors.items():
            kind, oname = official_name(vname).split(":", 1)
            if kind == "T" and spec["head"] != "none":
                oname = "vision_encoder." + oname
            self.assertIn(oname, sd, vname)
            src = sd[oname]
            self.assertEqual(list(arr.shape), list(src.shape), vname)
            self.assertEqual(dt, dtype, vname)
            if dtype == "BF16":
                want = src.to(torch.bfloat16).contiguous().view(torch.int16).numpy().view("<u2")
            elif dtype == "F16":
                want = src.to(torch.float16).numpy().astype("<f2")
            else:
                want = src.float().numpy().astype("<f4")
            self.assertEqual(arr.tobytes(), want.tobytes(), "%s not bit-exact" % vname)
            seen.add(oname)
        self.assertEqual(seen, set(sd.keys()))
        return cfg


class RoundTrip(Base):
    def test_s2_1b_like_f32(self):
        out = self.path("out")
        rc, o, e = run_conv(std_args("s2_1b_like") + ["--out", out] + self.ckpts("s2_1b_like"))
        self.assertEqual(rc, 0, e)
        self.check_dir(out, "s2_1b_like", self.models["s2_1b_like"], "F32")
        # recognised towers reported on one line, not converted
        notes = [ln for ln in o.splitlines() if ln.startswith("not converted yet")]
        self.assertEqual(len(notes), 1, o)
        self.assertIn("text tower", notes[0])

    def test_s2_1b_like_bf16_keep(self):
        out = self.path("out")
        rc, o, e = run_conv(std_args("s2_1b_like") + ["--out", out] + self.ckpts("s2_1b_like", "BF16"))
        self.assertEqual(rc, 0, e)
        self.check_dir(out, "s2_1b_like", self.models["s2_1b_like"], "BF16")

    def test_dtype_conversions(self):
        ck = self.ckpts("s2_1b_like")
        for dt in ("bf16", "f16", "f32"):
            out = self.path("out_" + dt)
            rc, o, e = run_conv(std_args("s2_1b_like", ["--dtype", dt, "-q"]) + ["--out", out] + ck)
            self.assertEqual(rc, 0, e)
            self.check_dir(out, "s2_1b_like", self.models["s2_1b_like"], dt.upper())

    def test_s2_6b_like_easydict(self):
        ck = self.ckpts("s2_6b_like")
        with open(ck[0], "rb") as f:
            self.assertIn(b"utils.easydict", f.read())
        # without --trust-pickle: refused, and the message says what to do
        self.expect_error(std_args("s2_6b_like") + ["--out", self.path("no")] + ck, r"--trust-pickle")
        out = self.path("out")
        rc, o, e = run_conv(std_args("s2_6b_like", ["--trust-pickle"]) + ["--out", out] + ck)
        self.assertEqual(rc, 0, e)
        self.check_dir(out, "s2_6b_like", self.models["s2_6b_like"], "F32")
        self.assertNotIn("utils.easydict", sys.modules)
        self.assertRegex(o, r"not converted yet.*audio tower")

    def test_distilled_flat(self):
        out = self.path("out")
        rc, o, e = run_conv(std_args("distilled_like") + ["--out", out] + self.ckpts("distilled_like"))
        self.assertEqual(rc, 0, e)
        cfg = self.check_dir(out, "distilled_like", self.models["distilled_like"], "F32")
        self.assertEqual(cfg["vision"]["gelu"], "erf")

    def test_clip_two_files(self):
        out = self.path("out")
        ck = self.ckpts("clip_small_like")
        rc, o, e = run_conv(std_args("clip_small_like") + ["--out", out] + ck)
        self.assertEqual(rc, 0, e)
        # the CLIP file (second) overrides the stale clip_projector of the trunk file
        self.check_dir(out, "clip_small_like", self.models["clip_small_like"], "F32")
        # the trunk file alone lacks vision_align -> custom detects head none; clip-S14 demands align
        self.expect_error(["--variant", "clip-S14", "--heads", "4", "--image-size", "224", "--out",
                           self.path("x"), ck[0]], r"missing keys.*vision_align")

    def test_top_level_containers(self):
        sd = self.models["s2_1b_like"]
        ex = mf.extra_tensors("s2_1b_like", mf.MODELS["s2_1b_like"], sd)
        full = collections.OrderedDict(list(sd.items()) + list(ex.items()))
        blobs = []
        for kind in ("model", "module", "flat", "ddp"):
            p = self.path(kind + ".pt")
            if kind == "flat":
                torch.save(full, p)
            elif kind == "ddp":
                torch.save(collections.OrderedDict(("module." + k, v) for k, v in full.items()), p)
            else:
                torch.save({kind: full, "epoch": 1}, p)
            out = self.path("out_" + kind)
            rc, o, e = run_conv(std_args("s2_1b_like", ["-q"]) + ["--out", out, p])
            self.assertEqual(rc, 0, "%s: %s" % (kind, e))
            with open(os.path.join(out, "model.safetensors"), "rb") as f:
                blobs.append(f.read())
        self.assertTrue(all(b == blobs[0] for b in blobs))

    def test_legacy_serialization(self):
        sd = self.models["distilled_like"]
        p = self.path("legacy.bin")
        torch.save(sd, p, _use_new_zipfile_serialization=False)
        rc, o, e = run_conv(std_args("distilled_like", ["-q"]) + ["--out", self.path("out"), p])
        self.assertEqual(rc, 0, e)
        self.check_dir(self.path("out"), "distilled_like", sd, "F32")


class Variants(Base):
    def test_named_variants(self):
        cases = [
            ("s2_1b_like", "s2-1B", []),
            ("s2_6b_like", "s2-6B", ["--trust-pickle"]),
            ("distilled_like", "S14", ["--gelu", "erf"]),
            ("clip_small_like", "clip-S14", []),
        ]
        for name, variant, extra in cases:
            t = mf.MODELS[name]["trunk"]
            out = self.path("out_" + variant)
            rc, o, e = run_conv(["--variant", variant, "--heads", str(t["heads"]), "--image-size",
                                 str(t["image_size"]), "--out", out] + extra + self.ckpts(name))
            self.assertEqual(rc, 0, "%s: %s" % (variant, e))
            self.check_dir(out, name, self.models[name], "F32", variant=variant)

    def test_frames_derive_image_size(self):
        out = self.path("out")
        t = mf.MODELS["s2_1b_like"]["trunk"]
        rc, o, e = run_conv(["--variant", "custom", "--heads", "4", "--frames", "4", "-q", "--out", out]
                            + self.ckpts("s2_1b_like"))
        self.assertEqual(rc, 0, e)
        with open(os.path.join(out, "config.json")) as f:
            self.assertEqual(json.load(f)["vision"]["image_size"], t["image_size"])

    def test_frames_inconsistent(self):
        self.expect_error(std_args("s2_1b_like", ["--frames", "8"]) + ["--out", self.path("o")]
                          + self.ckpts("s2_1b_like"), r"wrong shapes.*pos_embed")

    def test_default_image_size_mismatch(self):
        # 37 rows cannot be 1 + frames*256 (224 px): tells the user what to pass
        self.expect_error(["--variant", "custom", "--heads", "4", "--out", self.path("o")]
                          + self.ckpts("s2_1b_like"), r"--image-size")

    def test_custom_needs_heads(self):
        self.expect_error(["--variant", "custom", "--image-size", "42", "--out", self.path("o")]
                          + self.ckpts("s2_1b_like"), r"--heads")

    def test_heads_not_dividing(self):
        self.expect_error(std_args("s2_1b_like")[:2] + ["--heads", "5", "--image-size", "42", "--out",
                          self.path("o")] + self.ckpts("s2_1b_like"), r"not divisible")

    def test_variant_head_mismatch(self):
        # a distilled (head none) file given as s2-1B: vision_proj is missing
        self.expect_error(["--variant", "s2-1B", "--heads", "2", "--image-size", "28", "--out",
                           self.path("o")] + self.ckpts("distilled_like"), r"missing keys.*vision_proj")

    def test_help(self):
        r = subprocess.run([sys.executable, CONVERTER, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for s in ("OpenGVLab/InternVideo2-Stage2_1B-224p-f4", "OpenGVLab/InternVideo2-Stage2_6B-224p-f4",
                  "OpenGVLab/InternVideo2_distillation_models", "--trust-pickle", "--variant"):
            self.assertIn(s, r.stdout)


class RealShapes(Base):
    """Released widths at reduced depth, converted with the variant defaults only."""

    def real_sd(self, prefix, C, H, D, E, frames, depth, img_pos, head, dtype):
        g = torch.Generator().manual_seed(C)
        V = prefix

        def r(*shape):
            return torch.randn(*shape, generator=g).to(dtype)
        sd = collections.OrderedDict()
        sd[V + "patch_embed.proj.weight"] = r(C, 3, 1, 14, 14)
        sd[V + "patch_embed.proj.bias"] = r(C)
        sd[V + "cls_token"] = r(1, 1, C)
        sd[V + "pos_embed"] = r(1, 1 + frames * 256, C)
        if img_pos:
            sd[V + "img_pos_embed"] = r(1, 257, C)
        for i in range(depth):
            b = V + "blocks.%d." % i
            for k, s in (("norm1.weight", (C,)), ("attn.qkv.weight", (3 * C, C)), ("attn.q_norm.weight", (C,)),
                         ("attn.k_norm.weight", (C,)), ("attn.proj.weight", (C, C)), ("attn.proj.bias", (C,)),
                         ("ls1.gamma", (C,)), ("norm2.weight", (C,)), ("mlp.fc1.weight", (H, C)),
                         ("mlp.fc1.bias", (H,)), ("mlp.fc2.weight", (C, H)), ("mlp.fc2.bias", (C,)),
                         ("ls2.gamma", (C,))):
                sd[b + k] = r(*s)
        P = V + "clip_projector."
        for x in "qkv":
            sd[P + "norm1_%s.weight" % x] = r(C)
            sd[P + "norm1_%s.bias" % x] = r(C)
            sd[P + "cross_attn.%s.weight" % x] = r(C, C)
            sd[P + "cross_attn.%s_bias" % x] = r(C)
        sd[P + "cross_attn.proj.weight"] = r(D, C)
        sd[P + "cross_attn.proj.bias"] = r(D)
        if head == "proj":
            sd["vision_proj.weight"] = r(E, D)
            sd["vision_proj.bias"] = r(E)
        return sd

    def convert_real(self, variant, sd, container, extra=()):
        p = self.path(variant + ".pt")
        torch.save(container(sd), p)
        out = self.path("out")
        rc, o, e = run_conv(["--variant", variant, "-q", "--out", out, p] + list(extra))
        self.assertEqual(rc, 0, e)
        with open(os.path.join(out, "config.json")) as f:
            cfg = json.load(f)
        meta, tensors = safetensors_io.read(os.path.join(out, "model.safetensors"))
        # real sizes are multiples of 64 bytes: no gaps between tensors, so strict readers (the
        # HF safetensors crate requires contiguous data_offsets) accept the file too
        for name, (dt, arr) in tensors.items():
            self.assertEqual(arr.nbytes % 64, 0, name)
        return cfg, tensors

    def test_s14_defaults(self):
        sd = self.real_sd("", 384, 1536, 768, None, 8, 2, False, "none", torch.float32)
        cfg, tensors = self.convert_real("S14", sd, lambda d: d)
        v = cfg["vision"]
        self.assertEqual((v["width"], v["depth"], v["heads"], v["mlp_hidden"], v["frames"], v["image_size"],
                          v["pool_dim"], v["head"], cfg["embed_dim"]), (384, 2, 6, 1536, 8, 224, 768, "none", 768))
        self.assertTrue(cfg["model_id"].startswith("internvideo2-s14-p14-f8-"))
        self.assertEqual(tensors["vision.pos_embed"][1].shape, (1, 2049, 384))

    def test_s2_1b_defaults_bf16(self):
        sd = self.real_sd("vision_encoder.", 1408, 6144, 768, 512, 4, 1, True, "proj", torch.bfloat16)
        cfg, tensors = self.convert_real("s2-1B", sd, lambda d: {"model": d})
        v = cfg["vision"]
        self.assertEqual((v["width"], v["heads"], v["mlp_hidden"], v["frames"], v["img_pos_embed"], cfg["embed_dim"]),
                         (1408, 16, 6144, 4, True, 512))
        self.assertEqual(tensors["vision.blocks.0.mlp.fc1.weight"][0], "BF16")
        self.assertTrue(cfg["model_id"].startswith("internvideo2-s2-1b-p14-f4-"))


class BadFiles(Base):
    def save_modified(self, fn):
        sd = collections.OrderedDict(self.models["s2_1b_like"])
        fn(sd)
        p = self.path("bad.pt")
        torch.save({"model": sd}, p)
        return p

    def test_missing_key(self):
        p = self.save_modified(lambda sd: sd.pop("vision_encoder.blocks.1.attn.proj.bias"))
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), p],
                          r"missing keys.*vision_encoder\.blocks\.1\.attn\.proj\.bias")

    def test_missing_block(self):
        # blocks 0 and 2 present, 1 absent
        def f(sd):
            for k in [k for k in sd if k.startswith("vision_encoder.blocks.1.")]:
                sd[k.replace("blocks.1.", "blocks.2.")] = sd.pop(k)
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), self.save_modified(f)],
                          r"missing keys.*blocks\.1\.")

    def test_unknown_key(self):
        def f(sd):
            sd["vision_encoder.blocks.0.attn.qkv.bias"] = torch.zeros(192)
            sd["vision_encoder.fc_norm.weight"] = torch.zeros(64)
        line = self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), self.save_modified(f)],
                                 r"unknown keys")
        self.assertIn("vision_encoder.blocks.0.attn.qkv.bias", line)
        self.assertIn("vision_encoder.fc_norm.weight", line)

    def test_wrong_shape(self):
        def f(sd):
            sd["vision_encoder.blocks.0.ls1.gamma"] = torch.ones(63)
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), self.save_modified(f)],
                          r"wrong shapes.*blocks\.0\.ls1\.gamma \(63,\) \(expected \(64,\)\)")

    def test_wrong_shape_qkv(self):
        def f(sd):
            sd["vision_encoder.blocks.1.attn.qkv.weight"] = torch.ones(64, 64)
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), self.save_modified(f)],
                          r"wrong shapes.*attn\.qkv\.weight")

    def test_truncated_zip(self):
        src = self.ckpts("s2_1b_like")[0]
        p = self.path("trunc.pt")
        with open(src, "rb") as f:
            data = f.read()
        for cut in (len(data) // 2, len(data) - 100):
            with open(p, "wb") as f:
                f.write(data[:cut])
            self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), p], r"truncated")

    def test_truncated_legacy(self):
        p0 = self.path("legacy.bin")
        torch.save(self.models["distilled_like"], p0, _use_new_zipfile_serialization=False)
        with open(p0, "rb") as f:
            data = f.read()
        p = self.path("legacy_trunc.bin")
        for cut in (len(data) // 2, 40):
            with open(p, "wb") as f:
                f.write(data[:cut])
            self.expect_error(std_args("distilled_like") + ["--out", self.path("o"), p], r"truncated")

    def test_not_a_pickle(self):
        p = self.path("notes.txt")
        with open(p, "w") as f:
            f.write("this is not a checkpoint\n")
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), p], r"not a PyTorch checkpoint")

    def test_empty_and_missing_file(self):
        p = self.path("empty.pt")
        open(p, "wb").close()
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), p], r"empty file")
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), self.path("nope.pt")],
                          r"no such file")

    def test_not_a_state_dict(self):
        p = self.path("list.pt")
        torch.save([1, 2, 3], p)
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), p], r"not a state dict")

    def test_foreign_object_refused(self):
        p = self.path("obj.pt")
        torch.save({"model": self.models["s2_1b_like"], "cfg": collections.Counter(a=1)}, p)
        self.expect_error(std_args("s2_1b_like") + ["--out", self.path("o"), p], r"--trust-pickle")
        rc, o, e = run_conv(std_args("s2_1b_like", ["-q", "--trust-pickle"]) + ["--out", self.path("o"), p])
        self.assertEqual(rc, 0, e)

    def test_exit_status_subprocess(self):
        p = self.path("notes.txt")
        with open(p, "w") as f:
            f.write("x")
        r = subprocess.run([sys.executable, CONVERTER] + std_args("s2_1b_like") + ["--out", self.path("o"), p],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
