#!/usr/bin/python3
"""ctest encoder_cli_towers: `vidx embed --text`, `vidx embed --audio` and `vidx model info` on the
text/audio fixture models, against the reference goldens (1e-4).

  - --text on each BERT / MobileCLIP-free case with a caption: the JSON's token ids and
    embedding match the fixture (tests/reference/fixtures/text);
  - --audio on the fixture waveform written as a 16 kHz 16-bit WAV (the file's own quantisation
    is the only difference, so 1e-3 here): the embedding matches the golden;
  - a model without a text / audio tower: exit status 1 and a one-line error naming it;
  - model info --json lists the towers with their numbers.
Only the standard library (numpy-free): .npy goldens are read with a tiny parser.

Usage: check_cli_towers.py VIDX FIXTURES_DIR
"""

import sys
sys.dont_write_bytecode = True

import json
import os
import struct
import subprocess
import tempfile
import wave


def read_npy_f32(path):
    with open(path, "rb") as f:
        data = f.read()
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode("latin1")
    assert "'<f4'" in header, header
    body = data[10 + hlen:]
    return list(struct.unpack("<%df" % (len(body) // 4), body))


def rel_err(a, b):
    return max(abs(x - y) for x, y in zip(a, b)) / max(max(abs(y) for y in b), 1e-6)


def vidx(exe, *args):
    r = subprocess.run([exe] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def main():
    exe, fx = sys.argv[1], sys.argv[2]
    failures = []
    tx = os.path.join(fx, "text")
    with open(os.path.join(tx, "manifest.json")) as f:
        man = json.load(f)
    n = 0
    for c in man["cases"]:
        if "text" not in c:
            continue
        rc, out, err = vidx(exe, "embed", "--model", os.path.join(tx, c["model"]), "--text", c["text"])
        if rc:
            failures.append("%s: exit %d: %s" % (c["name"], rc, err.strip()))
            continue
        j = json.loads(out)
        ids = read_npy_f32(os.path.join(tx, c["ids"]))
        L = len(ids) // 2
        want_ids = [int(v) for v, m in zip(ids[:L], ids[L:]) if m]
        if j["token_ids"] != want_ids or j["modality"] != "text":
            failures.append("%s: token ids %s, want %s" % (c["name"], j["token_ids"], want_ids))
        e = rel_err(j["embedding"], read_npy_f32(os.path.join(tx, c["embedding"])))
        if e > man["tolerance"]:
            failures.append("%s: embedding error %.3g" % (c["name"], e))
        n += 1
    ax = os.path.join(fx, "audio")
    with open(os.path.join(ax, "manifest.json")) as f:
        aman = json.load(f)
    tmp = tempfile.mkdtemp(prefix="vidx-cli-towers-")
    try:
        for c in aman["cases"]:
            samples = read_npy_f32(os.path.join(ax, c["input"]))
            path = os.path.join(tmp, c["name"] + ".wav")
            with wave.open(path, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(b"".join(struct.pack("<h", max(-32768, min(32767, int(round(s * 32768)))))
                                       for s in samples))
            rc, out, err = vidx(exe, "embed", "--model", os.path.join(ax, aman["model"]), "--audio", path)
            if rc:
                failures.append("%s: exit %d: %s" % (c["name"], rc, err.strip()))
                continue
            j = json.loads(out)
            e = rel_err(j["embedding"], read_npy_f32(os.path.join(ax, c["embedding"])))
            if e > 1e-3 or j["modality"] != "audio":
                failures.append("%s: audio embedding error %.3g" % (c["name"], e))
            n += 1
        novis = os.path.join(fx, "models", "distilled_like_f32")
        rc, _, err = vidx(exe, "embed", "--model", novis, "--text", "a dog")
        if rc != 1 or "no text tower" not in err:
            failures.append("no-text model: exit %d, %r" % (rc, err))
        rc, _, err = vidx(exe, "embed", "--model", os.path.join(tx, "models/bert_1b_like"), "--audio",
                          os.path.join(tmp, aman["cases"][0]["name"] + ".wav"))
        if rc != 1 or "no audio tower" not in err:
            failures.append("no-audio model: exit %d, %r" % (rc, err))
    finally:
        for f_ in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f_))
        os.rmdir(tmp)
    rc, out, err = vidx(exe, "--json", "model", "info", os.path.join(tx, "models/bert_6b_like"))
    if rc:
        failures.append("model info: exit %d: %s" % (rc, err))
    else:
        j = json.loads(out)
        t = j.get("text", {})
        if j.get("towers") != ["vision", "text"] or t.get("fusion_layer") != 2 or not t.get("fusion_proj"):
            failures.append("model info: %s" % json.dumps(j)[:300])
        # the default precision, measured: bf16 only with the agreement shown
        p, why, cs = j.get("default_precision"), j.get("default_precision_reason"), j.get("bf16_fp32_cosine")
        if p not in ("fp32", "bf16") or not why or (p == "bf16" and cs is not None and cs < 0.999):
            failures.append("model info precision: %r %r %r" % (p, why, cs))
    # without bf16 hardware (kernels capped at AVX2) the default is fp32, and the text says why
    env = dict(os.environ, VIDX_ISA="avx2")
    r = subprocess.run([exe, "model", "info", os.path.join(tx, "models/bert_6b_like")],
                       capture_output=True, text=True, env=env)
    line = [l for l in r.stdout.splitlines() if l.startswith("precision")]
    if r.returncode or not line or "fp32 by default" not in line[0] or "no bf16 hardware" not in line[0]:
        failures.append("model info precision without bf16 hardware: %r" % (line or r.stderr))
    for f_ in failures:
        print("FAIL: " + f_)
    print("%d CLI tower runs, %d failure(s)" % (n, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
