#!/usr/bin/python3
"""Golden files for vidx's resize and normalisation (media_preproc.c), made by the reference:
torchvision 0.14's tensor Resize((224, 224), BICUBIC) and Normalize(ImageNet mean/std), on
real decoded frames (the FFmpeg CLI encodes test patterns and decodes them back to RGB24).

Usage: /usr/bin/python3 tests/media/make_resize_golden.py [--extra] OUT_DIR
With --extra it adds synthetic frames (seeded noise and checkerboards from 1x1 to 1920x1080,
which overshoot and exercise the clamps); ctest runs that into the build folder when torch is
installed. The committed set (tests/media/golden) is made without it.
Writes into OUT_DIR:
  NAME.in.npy          uint8 [H, W, 3]    the decoded frame
  NAME.out.npy         uint8 [224, 224, 3] torchvision's resize of it
  normalize_lut.npy    float32 [3, 256]   Normalize(x.float().div(255)) for every level
and manifest.txt (one NAME a line). Run with Debian's /usr/bin/python3 (torch 1.13,
torchvision 0.14); other versions differ in antialias defaults.
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from torchvision import transforms
from torchvision.transforms import InterpolationMode

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# name, lavfi source, codec args, frame to take: sizes exercise downscale in both axes with
# odd sizes, upscale in both axes, and mixed.
FRAMES = [
    ("testsrc_317x239_vp9", "testsrc=s=317x239:r=25:d=1,format=yuv420p", ["-c:v", "libvpx-vp9", "-crf", "35", "-b:v", "0", "-deadline", "realtime"], 7),
    ("mandelbrot_96x72_h264", "mandelbrot=s=96x72:r=25", ["-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p"], 12),
    ("smptehd_251x163_vp8", "smptehdbars=s=251x163:r=25:d=1,format=yuv420p", ["-c:v", "libvpx", "-b:v", "300k"], 3),
]


def decode_frame(src, codec_args, index, tmp):
    w, h = (int(v) for v in re.search(r"[=:]s=(\d+x\d+)", src).group(1).split("x"))
    clip = os.path.join(tmp, "clip.mkv")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src,
                    "-frames:v", str(index + 1), *codec_args, clip], check=True)
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", clip, "-vf",
                          f"select=eq(n\\,{index})", "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).copy()


def main():
    args = sys.argv[1:]
    extra = "--extra" in args
    args = [a for a in args if a != "--extra"]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    os.makedirs(out, exist_ok=True)
    assert torchvision.__version__.startswith("0.14"), torchvision.__version__
    resize = transforms.Resize((224, 224), interpolation=InterpolationMode.BICUBIC)
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, src, codec_args, index in FRAMES:
            frame = decode_frame(src, codec_args, index, tmp)
            chw = torch.from_numpy(frame).permute(2, 0, 1).contiguous()  # [3, H, W] uint8
            resized = resize(chw)
            assert resized.dtype == torch.uint8
            np.save(os.path.join(out, name + ".in.npy"), frame)
            np.save(os.path.join(out, name + ".out.npy"),
                    resized.permute(1, 2, 0).contiguous().numpy())
            names.append(name)
    if extra:
        rng = np.random.default_rng(20261126)
        for h, w in [(1, 1), (2, 3), (13, 1000), (1000, 13), (223, 224), (224, 225),
                     (480, 640), (1080, 1920)]:
            noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            yy, xx = np.mgrid[0:h, 0:w]
            checker = (((yy // 3 + xx // 2) % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2)
            for kind, frame in (("noise", noise), ("checker", checker)):
                name = f"{kind}_{w}x{h}"
                chw = torch.from_numpy(frame).permute(2, 0, 1).contiguous()
                np.save(os.path.join(out, name + ".in.npy"), frame)
                np.save(os.path.join(out, name + ".out.npy"),
                        resize(chw).permute(1, 2, 0).contiguous().numpy())
                names.append(name)
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 256).expand(3, 1, 256)
    x = levels.float().div(255.0)  # the InternVideo2 test transform's ToFloat step
    lut = transforms.Normalize(MEAN, STD)(x).reshape(3, 256).contiguous()
    np.save(os.path.join(out, "normalize_lut.npy"), lut.numpy().astype(np.float32))
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    print(f"wrote {len(names)} frames to {out} (torch {torch.__version__}, "
          f"torchvision {torchvision.__version__})")


if __name__ == "__main__":
    main()
