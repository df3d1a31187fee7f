"""Small stand-alone safetensors reader that also checks vidx's layout rules
(docs/model-format.md): 8-byte little-endian header length, JSON header padded with spaces so the
data starts on a 64-byte boundary, every tensor offset 64-byte aligned, dtypes F32/F16/BF16,
__metadata__ {"format": "vidx", "model_id": ...}.  numpy only (no torch)."""

import json
import struct

import numpy as np

ALIGN = 64
DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2)}


class FormatError(Exception):
    pass


def read(path, strict=True):
    """Returns (metadata dict, OrderedDict name -> (dtype string, raw numpy array)).
    BF16 tensors come back as uint16 bit patterns; use to_f32() for values."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise FormatError("header length %d beyond end of file" % n)
    raw = blob[8:8 + n]
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_ordered)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("bad header JSON: %s" % e)
    data_start = 8 + n
    if strict:
        if data_start % ALIGN:
            raise FormatError("data starts at %d, not %d-byte aligned" % (data_start, ALIGN))
        if raw.rstrip(b" ") != raw.rstrip():
            raise FormatError("header padded with something other than spaces")
    meta = header.pop("__metadata__", None)
    if strict:
        if not isinstance(meta, dict) or meta.get("format") != "vidx" or not meta.get("model_id"):
            raise FormatError("__metadata__ must hold format=vidx and a model_id, got %r" % (meta,))
    data = blob[data_start:]
    out = _ordered([])
    spans = []
    for name, e in header.items():
        dt = e.get("dtype")
        if dt not in DTYPES:
            raise FormatError("%s: dtype %s not in F32/F16/BF16" % (name, dt))
        shape = e["shape"]
        b, end = e["data_offsets"]
        np_dt, size = DTYPES[dt]
        count = int(np.prod(shape)) if shape else 1
        if end - b != count * size:
            raise FormatError("%s: %d bytes for shape %s %s" % (name, end - b, shape, dt))
        if end > len(data) or b < 0:
            raise FormatError("%s: data beyond end of file" % name)
        if strict and b % ALIGN:
            raise FormatError("%s: offset %d not %d-byte aligned" % (name, b, ALIGN))
        spans.append((b, end, name))
        out[name] = (dt, np.frombuffer(data, dtype=np_dt, count=count, offset=b).reshape(shape))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise FormatError("tensors %s and %s overlap" % (n0, n1))
    return meta, out


def to_f32(dt, arr):
    if dt == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def load_f32(path):
    meta, t = read(path)
    return meta, {k: to_f32(dt, a) for k, (dt, a) in t.items()}


def _ordered(pairs):
    import collections
    return collections.OrderedDict(pairs)
