#!/usr/bin/python3
"""Preprocessing golden (DECISIONS section 3): real decoded RGB24 frames -> torchvision 0.14 tensor
Resize((224, 224), InterpolationMode.BICUBIC, antialias=False) on the uint8 tensor -> /255 ->
ImageNet mean/std, exactly the official eval transform (MM/dataset/__init__.py get_test_transform).

torchvision 0.14 on a uint8 tensor: converts to float32, F.interpolate(mode="bicubic",
align_corners=False, antialias=False) (a = -0.75), clamps to [0, 255], torch.round (half to even),
casts back to uint8.  Normalisation: x = u8.float() / 255 (float32), then (x - mean) / std with
float32 mean/std (transforms.Normalize).

Frames are made with ffmpeg's lavfi sources, encoded to H.264 (yuv420p) and decoded back to RGB24
with `-pix_fmt rgb24 -f rawvideo`, so they look like real decoded video.

Usage: make_preprocess_golden.py [--out DIR] [--inputs-from DIR]
  --inputs-from DIR  reuse DIR's input frames instead of decoding (the regeneration check uses it,
                     so a different FFmpeg build cannot change the inputs)
Writes DIR/manifest.json (default DIR: tests/reference/fixtures/preprocess).
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

try:
    import torchvision
    from torchvision.transforms import InterpolationMode
    import torchvision.transforms as T
except ImportError:
    print("skipped: torchvision not available (Debian: apt install python3-torchvision)")
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SIZE = 224

# name, lavfi source, encoded size, decode filter, frame indices to keep, keep normalised floats
SOURCES = [
    ("testsrc2_320x240", "testsrc2=size=320x240:rate=25", None, [0, 12], [False, False]),
    ("mandelbrot_1280x720_to_640x360", "mandelbrot=size=1280x720:rate=25", "scale=640:360:flags=bicubic",
     [4], [True]),
    ("testsrc2_112x84_upscale", "testsrc2=size=112x84:rate=25", None, [3], [False]),
]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(cmd), r.stderr.decode(errors="replace")[-2000:]))
    return r.stdout


def decode_frames(src, vf, indices, tmp):
    n = max(indices) + 1
    mp4 = os.path.join(tmp, "v.mp4")
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", str(n), "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "23", mp4])
    info = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                "-of", "csv=p=0", mp4]).decode().strip().split(",")
    w, h = int(info[0]), int(info[1])
    cmd = ["ffmpeg", "-v", "error", "-i", mp4]
    if vf:
        cmd += ["-vf", vf]
        w, h = [int(v) for v in vf.split("=")[1].split(":")[:2]]
    raw = run(cmd + ["-frames:v", str(n), "-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, h, w, 3)
    return [frames[i].copy() for i in indices]


def resize_u8(frame_hwc):
    """torchvision 0.14 tensor path on uint8; also returns the float32 values before rounding."""
    t = torch.from_numpy(frame_hwc).permute(2, 0, 1).contiguous()             # (3, H, W) uint8
    out = T.Resize((SIZE, SIZE), interpolation=InterpolationMode.BICUBIC, antialias=False)(t)
    assert out.dtype == torch.uint8
    f = torch.nn.functional.interpolate(t.unsqueeze(0).float(), size=(SIZE, SIZE), mode="bicubic",
                                        align_corners=False)[0].clamp(0, 255)
    assert torch.equal(torch.round(f).to(torch.uint8), out), "torchvision path changed"
    return out, f


def bicubic_f64(frame_hwc):
    """Straightforward float64 bicubic (a = -0.75, align_corners=False, edge-clamped taps, rows of
    x-interpolations combined along y), used to show how far an exact implementation is from
    torchvision's float32 kernel."""
    img = frame_hwc.astype(np.float64).transpose(2, 0, 1)

    def taps(insz):
        real = (insz / SIZE) * (np.arange(SIZE) + 0.5) - 0.5
        idx = np.floor(real).astype(np.int64)
        t = real - idx
        a = -0.75

        def c1(x):
            return ((a + 2) * x - (a + 3)) * x * x + 1

        def c2(x):
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        w = np.stack([c2(t + 1), c1(t), c1(1 - t), c2(2 - t)], 1)
        return np.clip(idx[:, None] + np.arange(-1, 3)[None, :], 0, insz - 1), w

    iy, wy = taps(img.shape[1])
    ix, wx = taps(img.shape[2])
    out = 0
    for i in range(4):
        rows = img[:, iy[:, i], :]
        t = sum(rows[:, :, ix[:, j]] * wx[None, None, :, j] for j in range(4))
        out = out + t * wy[None, :, i, None]
    return np.clip(out, 0, 255)


def normalise(u8_chw):
    x = u8_chw.float().div(255.0)
    return T.Normalize(MEAN, STD)(x)


def save_npy(path, arr):
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.dtype("<f4"), np.dtype("u1"))
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures", "preprocess"))
    ap.add_argument("--inputs-from", metavar="DIR")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = os.path.abspath(args.out)
    if args.inputs_from and os.path.abspath(args.inputs_from) == out:
        sys.exit("--inputs-from must differ from --out")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)

    frames = []   # (name, uint8 HWC, keep_float, source description)
    if args.inputs_from:
        with open(os.path.join(args.inputs_from, "manifest.json")) as f:
            old = json.load(f)
        for c in old["cases"]:
            frames.append((c["name"], np.load(os.path.join(args.inputs_from, c["input"])),
                           "normalized" in c, c["source"]))
    else:
        if shutil.which("ffmpeg") is None:
            sys.exit("ffmpeg not found")
        tmp = tempfile.mkdtemp(prefix="vidx-pre-")
        try:
            for name, src, vf, idx, keep in SOURCES:
                for i, fr, kf in zip(idx, decode_frames(src, vf, idx, tmp), keep):
                    desc = "ffmpeg lavfi %s, libx264 yuv420p crf 23, decoded%s to rgb24, frame %d" % (
                        src, " with -vf " + vf if vf else "", i)
                    frames.append(("%s_f%d" % (name, i), fr, kf, desc))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    man = collections.OrderedDict([
        ("format", "vidx-preprocess-fixtures"), ("version", 1),
        ("generator", "tests/reference/make_preprocess_golden.py (torch %s, torchvision %s)"
         % (torch.__version__, torchvision.__version__)),
        ("transform", "torchvision 0.14 tensor Resize((224,224), BICUBIC, antialias=False) on uint8: "
                      "float32 bicubic a=-0.75 align_corners=False, clamp [0,255], round half to even; "
                      "then float32 x/255, (x-mean)/std"),
        ("mean", MEAN), ("std", STD), ("size", SIZE),
        ("compare", "resized: exact, except that elements whose torchvision float value (before "
                    "rounding) lies within 0.01 of k+0.5 may differ by 1 - near_half counts them, "
                    "float64_mismatches says how many an exact float64 bicubic gets wrong; normalized: "
                    "from the uint8 resized values, max abs error 1e-6"),
        ("layouts", {"input": "uint8 (H, W, 3) RGB24 as decoded", "resized": "uint8 (224, 224, 3) RGB",
                     "normalized": "float32 (3, 224, 224) RGB planes, the model's input layout"}),
        ("cases", [])])
    for name, fr, keep_float, desc in frames:
        inp = "inputs/%s.u8.npy" % name
        os.makedirs(os.path.join(out, "inputs"), exist_ok=True)
        os.makedirs(os.path.join(out, "expected"), exist_ok=True)
        save_npy(os.path.join(out, inp), fr)
        u8, f = resize_u8(fr)
        frac = (f - torch.floor(f)).numpy()
        near = np.abs(frac - 0.5) < 1e-2
        near_half = int(near.sum())
        exact = np.rint(bicubic_f64(fr)).astype(np.uint8)
        diff = exact.astype(np.int16) - u8.numpy().astype(np.int16)
        assert np.abs(diff).max() <= 1 and not (diff != 0)[~near].any(), "float64 bicubic disagrees off-boundary"
        f64_mismatch = int((diff != 0).sum())
        res = "expected/%s.resized.u8.npy" % name
        save_npy(os.path.join(out, res), u8.permute(1, 2, 0).contiguous().numpy())
        case = collections.OrderedDict([
            ("name", name), ("source", desc), ("input", inp), ("input_shape", list(fr.shape)),
            ("resized", res),
            ("near_half", near_half), ("float64_mismatches", f64_mismatch)])
        if keep_float:
            nrm = "expected/%s.normalized.f32.npy" % name
            save_npy(os.path.join(out, nrm), normalise(u8).numpy().astype("<f4"))
            case["normalized"] = nrm
        man["cases"].append(case)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, fn)) for d, _, fs in os.walk(out) for fn in fs)
    print("wrote %d preprocessing cases into %s (%.2f MB)" % (len(man["cases"]), out, total / 1e6))


if __name__ == "__main__":
    main()
