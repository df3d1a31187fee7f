#!/usr/bin/python3
"""Generate vidx's audio-tower golden fixtures from the independent reference (audio_ref.py).

A tiny s2-6B-like model (tiny vision trunk + tiny BEATs with the real bucket count / max distance,
deep norm, GRU-gated relative bias, weight-normed conv positional embedding; audio_proj; av_fusion),
EVERY parameter random at O(1) scale, saved in the official layout (the shared relative-bias table
repeated under every layer, weight_g / weight_v), converted with scripts/convert_internvideo2.py
--audio into fixtures/audio/models/beats_like/. Inputs are short deterministic waveforms (a chirp
with noise, a short burst); goldens: the audio embedding, the encoder tokens, and the joint
audio-visual vector for a given raw vision_proj vector. Needs torchaudio (kaldi fbank).

Usage: make_audio_fixtures.py [--out DIR]   (default tests/reference/fixtures/audio)
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
import audio_ref  # noqa: E402
import internvideo2_ref as vref  # noqa: E402

TOLERANCE = 1e-4
SPEC = dict(d0=16, width=32, heads=4, ffn=64, layers=2, num_buckets=320, max_distance=800,
            conv_pos=8, conv_pos_groups=4, patch=16, embed_dim=16)


def rng_for(*parts):
    return np.random.RandomState(zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF)


def save_npy(path, arr):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(np.asarray(arr).astype("<f4")), version=(1, 0),
                                  allow_pickle=False)


def waveforms():
    sr = 16000
    t = np.arange(int(2.0 * sr)) / sr
    r = rng_for("wave")
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 900 * t * t)) + 0.05 * r.standard_normal(t.size)
    chirp[8000:9000] *= 0.0                                   # a silent gap
    burst = 0.3 * rng_for("burst").standard_normal(int(0.3 * sr)) * np.hanning(int(0.3 * sr))
    return collections.OrderedDict([("chirp_2s", chirp.astype(np.float32)),
                                    ("burst_300ms", burst.astype(np.float32))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures", "audio"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("models", "inputs", "expected"):
        os.makedirs(os.path.join(out, sub))
    m = audio_ref.AudioTower(**SPEC)
    sd = m.state_dict()
    new = collections.OrderedDict()
    for k, v in sd.items():
        r = rng_for("beats", k)
        n = r.standard_normal(tuple(v.shape))
        leaf = k.split(".")[-1]
        if "norm" in k and leaf == "weight":
            val = 1.0 + 0.2 * n
        elif leaf == "bias":
            val = 0.2 * n
        elif leaf == "grep_a":
            val = 1.0 + 0.3 * n
        elif leaf == "weight_g":
            val = 1.0 + 0.2 * n
        elif "relative_attention_bias" in k:
            val = n
        elif len(v.shape) >= 2:
            val = n / np.sqrt(int(np.prod(v.shape[1:])))
        else:
            val = n
        new[k] = torch.from_numpy(val.astype(np.float32))
    # the shared table: the same tensor under every layer
    rk = "audio_encoder.encoder.layers.%d.self_attn.relative_attention_bias.weight"
    for j in range(1, SPEC["layers"]):
        new[rk % j] = new[rk % 0].clone()
    m.load_state_dict(new)
    m = m.double().eval()
    E = SPEC["embed_dim"]
    vis = vref.InternVideo2Vision(head="proj", embed_dim=E, width=32, depth=1, heads=2, mlp_hidden=64, frames=1,
                                  image_size=28, pool_heads=16, pool_dim=32, img_pos_embed=False, gelu="tanh")
    ck = collections.OrderedDict((k, torch.from_numpy(rng_for("beats-vision", k).standard_normal(tuple(v.shape))
                                                      .astype(np.float32) * 0.3)) for k, v in vis.state_dict().items())
    ck.update(new)
    ck["av_concat_audio_proj.0.weight"] = torch.zeros(8, SPEC["width"])
    ck["avtm_head.weight"] = torch.zeros(2, 8)
    work = tempfile.mkdtemp(prefix="vidx-audioref-")
    man = collections.OrderedDict([
        ("format", "vidx-audio-fixtures"), ("version", 1),
        ("generator", "tests/reference/make_audio_fixtures.py (reference: audio_ref.py, float64 math after "
                      "torchaudio's float32 fbank)"),
        ("tolerance", TOLERANCE), ("error", "max|a-b| / max(max|b|, 1e-6)"),
        ("model", "models/beats_like"), ("cases", [])])
    try:
        p = os.path.join(work, "beats_like.pt")
        torch.save({"module": ck}, p)
        cmd = [sys.executable, CONVERTER, "--variant", "custom", "--heads", "2", "--image-size", "28", "--audio",
               "--quiet", "--out", os.path.join(out, "models", "beats_like"), p]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit("converter failed: %s" % r.stderr.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    vproj = rng_for("vision-proj").standard_normal(E).astype(np.float32)
    save_npy(os.path.join(out, "inputs", "vision_proj.npy"), vproj)
    for i, (name, wave) in enumerate(waveforms().items()):
        fb = audio_ref.fbank_features(torch.from_numpy(wave)).double()
        with torch.no_grad():
            emb, raw, tok = m(fb)
            joint = m.fuse(raw, torch.from_numpy(vproj.astype(np.float64)))
            if i == 0:
                for j in range(SPEC["layers"]):
                    e2 = m(fb, skip_layer=j)[0]
                    de = vref.rel_err(e2.numpy(), emb.numpy())
                    print("beats skip layer %d: embedding err %.3g" % (j, de))
                    assert de > 100 * TOLERANCE, "weak fixture"
        save_npy(os.path.join(out, "inputs", name + ".npy"), wave)
        save_npy(os.path.join(out, "expected", name + ".emb.npy"), emb.numpy())
        save_npy(os.path.join(out, "expected", name + ".tokens.npy"), tok.numpy())
        save_npy(os.path.join(out, "expected", name + ".joint.npy"), joint.numpy())
        man["cases"].append(collections.OrderedDict([
            ("name", name), ("input", "inputs/%s.npy" % name), ("samples", int(wave.size)),
            ("embedding", "expected/%s.emb.npy" % name), ("tokens", "expected/%s.tokens.npy" % name),
            ("vision_proj", "inputs/vision_proj.npy"), ("joint", "expected/%s.joint.npy" % name)]))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, fn)) for d, _, fs in os.walk(out) for fn in fs)
    print("wrote %d audio cases into %s (%.2f MB)" % (len(man["cases"]), out, total / 1e6))


if __name__ == "__main__":
    main()
