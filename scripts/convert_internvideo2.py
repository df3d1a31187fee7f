#!/usr/bin/python3
"""Convert official InternVideo2 checkpoints into a vidx model directory.

Writes DIR/config.json and DIR/model.safetensors as described in docs/model-format.md
(vision tower; the text tower with --vocab / --bpe; the audio tower is recognised, not converted yet).

Usage:
  convert_internvideo2.py --variant VARIANT CHECKPOINT [CHECKPOINT ...] --out DIR [options]

Several checkpoints are merged in order, later files overriding earlier ones (as the official
loaders do), e.g. for clip-S14: the distilled vision file, then the CLIP file.

Where to get the checkpoints (Hugging Face):
  s2-1B      OpenGVLab/InternVideo2-Stage2_1B-224p-f4   InternVideo2-stage2_1b-224p-f4.pt (bf16)
  s2-6B      OpenGVLab/InternVideo2-Stage2_6B-224p-f4
             internvideo2-s2_6b-224p-f4_with_audio_encoder.pt (fp32, pickles an EasyDict)
  S14/B14/L14  OpenGVLab/InternVideo2_distillation_models
             stage1/{S14,B14,L14}/{X}_dist_1B_stage2/pytorch_model.bin (keys without prefix)
  clip-S14/B14/L14  same repository, clip/{S14,B14,L14}/pytorch_model.bin (vision_align; pass the
             distilled vision file first when the CLIP file lacks the trunk)
  1B/6B      vision-only checkpoints in the official layout (keys with or without vision_encoder.)
Sizes (width, depth, MLP, patch, pool/embed dims) come from the tensor shapes; heads, GELU flavour
and image size come from --variant or the explicit options, so non-standard sizes convert too.

Loading: checkpoints are read with torch.load(weights_only=True) unless --trust-pickle is given.
Files that pickle Python objects need --trust-pickle, i.e. torch.load(weights_only=False) with a
stand-in for utils.easydict.EasyDict: the s2-6B .pt pickles an EasyDict and, by its Hugging Face
file listing, the s2-1B .pt a set. Only pass it for files from a source you trust. Converting
needs RAM for the whole checkpoint on torch < 2.1 (no mmap); tensors are written one at a time.

Output: model.safetensors with vidx tensor names (data and every tensor 64-byte aligned, header
__metadata__ {"format": "vidx", "model_id"}) and config.json (docs/model-format.md). model_id is
internvideo2-<variant>-p<patch>-f<frames>-<first 12 hex of the SHA-256 of the data section>.
Train-only tensors are dropped; the text tower (BERT + matching head for s2 with --vocab, MobileCLIP
for clip-S/B/L with --bpe) is converted and its vocabulary copied into DIR; without them, and for the
audio tower, the keys are recognised and reported, not converted;
anything else is an error.
"""

import argparse
import collections
import contextlib
import hashlib
import importlib.util
import inspect
import io
import json
import math
import os
import pickle
import re
import sys
import types
import zipfile

FORMAT_VERSION = 1
ALIGN = 64

# what shapes cannot tell: attention heads, GELU flavour, nominal frames, expected head
VARIANTS = {
    "S14":      dict(heads=6,  gelu="tanh", frames=8, head="none"),
    "B14":      dict(heads=12, gelu="tanh", frames=8, head="none"),
    "L14":      dict(heads=16, gelu="tanh", frames=8, head="none"),
    "1B":       dict(heads=16, gelu="tanh", frames=None, head="none"),
    "6B":       dict(heads=25, gelu="tanh", frames=None, head="none"),
    "s2-1B":    dict(heads=16, gelu="tanh", frames=4, head="proj"),
    "s2-6B":    dict(heads=25, gelu="tanh", frames=4, head="proj"),
    "clip-S14": dict(heads=6,  gelu="tanh", frames=8, head="align"),
    "clip-B14": dict(heads=12, gelu="tanh", frames=8, head="align"),
    "clip-L14": dict(heads=16, gelu="tanh", frames=8, head="align"),
    "custom":   dict(heads=None, gelu="tanh", frames=None, head=None),
}

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

TRUNK_TOP = ("patch_embed.", "cls_token", "pos_embed", "img_pos_embed", "blocks.", "clip_projector.",
             "clip_decoder.", "final_clip_decoder.", "clip_pos_embed", "clip_img_pos_embed",
             "mae_decoder.", "mae_pos_embed", "pos_embed_spatial", "pos_embed_temporal",
             "pos_embed_cls")

# train-only tensors: dropped silently (fact sheet sections 2 and 7, docs/model-format.md)
TRAIN_ONLY = [
    re.compile(r"^vision_encoder\.(clip_decoder|final_clip_decoder|mae_decoder)\..*"),
    re.compile(r"^vision_encoder\.(clip_pos_embed|clip_img_pos_embed|mae_pos_embed)(_spatial|_temporal|_cls)?$"),
    re.compile(r"^text_encoder\.cls\..*"),
    re.compile(r"^temp$"),
]

# other towers: recognised; the text tower is converted when its vocabulary is given (--vocab for
# BERT, --bpe for MobileCLIP), the audio tower is not converted yet
OTHER_TOWERS = [
    ("text", re.compile(r"^(text_encoder\.|text_proj\.|itm_head\.)")),
    ("audio", re.compile(r"^(audio_encoder\.|audio_proj\.|av_concat_audio_proj\.|av_fusion\.|avtm_head\.)")),
    ("text-fusion (av_concat_vision_proj)", re.compile(r"^av_concat_vision_proj\.")),
]


class ConvertError(Exception):
    pass


def die(msg):
    print("convert_internvideo2: error: " + msg, file=sys.stderr)
    sys.exit(2)


# --------------------------------------------------------------------------------------------
# loading

class EasyDictStandIn(dict):
    """Stand-in for utils.easydict.EasyDict (pickled inside the s2-6B file)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k)

    def __setattr__(self, k, v):
        self[k] = v

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


EasyDictStandIn.__module__ = "utils.easydict"
EasyDictStandIn.__qualname__ = "EasyDict"
EasyDictStandIn.__name__ = "EasyDict"

def make_pickle_module():
    """pickle with utils.easydict.EasyDict mapped to the stand-in (used with --trust-pickle)."""
    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module in ("utils.easydict", "easydict") and name == "EasyDict":
                return EasyDictStandIn
            return super().find_class(module, name)

    mod = types.ModuleType("vidx_pickle")
    mod.Unpickler = Unpickler
    mod.Pickler = pickle.Pickler
    mod.load = lambda f, **kw: Unpickler(f, **kw).load()
    mod.loads = lambda b, **kw: Unpickler(io.BytesIO(b), **kw).load()
    mod.dump = pickle.dump
    mod.dumps = pickle.dumps
    mod.__name__ = "pickle"
    return mod


@contextlib.contextmanager
def easydict_stub(active):
    """Some torch versions ignore pickle_module: provide utils.easydict in sys.modules while loading."""
    if not active:
        yield
        return
    saved = {k: sys.modules.get(k) for k in ("utils", "utils.easydict")}
    try:
        have = importlib.util.find_spec("utils.easydict") is not None
    except (ImportError, ValueError, AttributeError):
        have = False
    if not have:
        ed = types.ModuleType("utils.easydict")
        ed.EasyDict = EasyDictStandIn
        if saved["utils"] is None:
            pkg = types.ModuleType("utils")
            pkg.__path__ = []
            sys.modules["utils"] = pkg
        sys.modules["utils"].easydict = ed
        sys.modules["utils.easydict"] = ed
    try:
        yield
    finally:
        if not have:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v


def torch_major():
    import torch
    m = re.match(r"(\d+)\.(\d+)", torch.__version__)
    return int(m.group(1)), int(m.group(2))


def load_checkpoint(path, trust):
    import torch
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if size == 0:
        raise ConvertError("%s: empty file, not a PyTorch checkpoint" % path)
    is_zip = head[:4] == b"PK\x03\x04"
    if is_zip:
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ConvertError("%s: truncated or corrupt checkpoint (zip archive unreadable: %s)"
                               % (path, e))
        if not any(n.endswith("data.pkl") for n in names):
            raise ConvertError("%s: zip file without data.pkl, not a PyTorch checkpoint" % path)
    elif head[:1] != b"\x80":
        raise ConvertError("%s: not a PyTorch checkpoint (no zip or pickle signature)" % path)

    kwargs = dict(map_location="cpu")
    major = torch_major()
    has_weights_only = "weights_only" in inspect.signature(torch.load).parameters
    if trust:
        if has_weights_only:
            kwargs["weights_only"] = False
        # honoured by torch versions that use pickle_module; the sys.modules stub covers the rest
        kwargs["pickle_module"] = make_pickle_module()
    elif has_weights_only:
        kwargs["weights_only"] = True
        try:   # torch >= 2.4: allow the EasyDict stand-in in safe mode
            torch.serialization.add_safe_globals([EasyDictStandIn])
        except Exception:
            pass
    else:
        raise ConvertError("%s: torch %s cannot load pickles safely (no weights_only); re-run with "
                           "--trust-pickle if you trust the file" % (path, torch.__version__))
    if is_zip and major >= (2, 1):
        kwargs["mmap"] = True
    try:
        with easydict_stub(trust):
            obj = torch.load(path, **kwargs)
    except ConvertError as e:
        raise ConvertError("%s: %s" % (path, e))
    except pickle.UnpicklingError as e:
        msg = str(e)
        if not trust and "weights only load failed" in msg.lower():
            detail = msg.split("WeightsUnpickler error:")[-1].strip().splitlines()
            raise ConvertError("%s: the checkpoint pickles Python objects that torch.load(weights_only=True) "
                               "refuses (%s); re-run with --trust-pickle if you trust the file"
                               % (path, detail[0] if detail else "?"))
        if is_zip:
            raise ConvertError("%s: truncated or corrupt checkpoint (%s)" % (path, msg.splitlines()[0] if msg else "unpickling failed"))
        raise ConvertError("%s: not a PyTorch checkpoint or truncated (%s)" % (path, msg.splitlines()[0] if msg else "unpickling failed"))
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError,
            ImportError, IndexError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, EOFError) or "failed finding central directory" in msg or "reading" in msg \
                or "truncated" in msg.lower() or "invalid header" in msg or "corrupt" in msg.lower():
            raise ConvertError("%s: truncated or corrupt checkpoint (%s)" % (path, msg))
        raise ConvertError("%s: cannot load checkpoint (%s: %s)" % (path, type(e).__name__, msg))
    return obj


def state_dict_of(obj, path):
    """'model', else 'module', else 'state_dict', else the flat dict (fact sheet section 7)."""
    import torch
    if not isinstance(obj, dict):
        raise ConvertError("%s: checkpoint holds a %s, not a state dict" % (path, type(obj).__name__))
    for k in ("model", "module", "state_dict"):
        if k in obj and isinstance(obj[k], dict):
            obj = obj[k]
            break
    sd = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError("%s: non-string key %r, not a state dict" % (path, k))
        if not torch.is_tensor(v):
            raise ConvertError("%s: entry %s is a %s, not a tensor (not a state dict?)"
                               % (path, k, type(v).__name__))
        sd[k] = v
    if not sd:
        raise ConvertError("%s: checkpoint holds no tensors" % path)
    # DataParallel/DDP prefix
    if all(k.startswith("module.") for k in sd):
        sd = collections.OrderedDict((k[len("module."):], v) for k, v in sd.items())
    # single-modality / distilled files: trunk keys without prefix
    if not any(k.startswith("vision_encoder.") for k in sd) and any(k.startswith(TRUNK_TOP) for k in sd):
        sd = collections.OrderedDict(
            (("vision_encoder." + k) if k.startswith(TRUNK_TOP) else k, v) for k, v in sd.items())
    return sd


# --------------------------------------------------------------------------------------------
# mapping

def vidx_names(depth, img_pos, head):
    """[(vidx name, official name)] in file order (docs/model-format.md)."""
    V = "vision_encoder."
    m = [("vision.patch_embed.weight", V + "patch_embed.proj.weight"),
         ("vision.patch_embed.bias", V + "patch_embed.proj.bias"),
         ("vision.cls_token", V + "cls_token"),
         ("vision.pos_embed", V + "pos_embed")]
    if img_pos:
        m.append(("vision.img_pos_embed", V + "img_pos_embed"))
    for i in range(depth):
        b = "blocks.%d." % i
        for vn, on in (("norm1.weight", "norm1.weight"), ("attn.qkv.weight", "attn.qkv.weight"),
                       ("attn.q_norm.weight", "attn.q_norm.weight"),
                       ("attn.k_norm.weight", "attn.k_norm.weight"),
                       ("attn.proj.weight", "attn.proj.weight"), ("attn.proj.bias", "attn.proj.bias"),
                       ("ls1", "ls1.gamma"), ("norm2.weight", "norm2.weight"),
                       ("mlp.fc1.weight", "mlp.fc1.weight"), ("mlp.fc1.bias", "mlp.fc1.bias"),
                       ("mlp.fc2.weight", "mlp.fc2.weight"), ("mlp.fc2.bias", "mlp.fc2.bias"),
                       ("ls2", "ls2.gamma")):
            m.append(("vision." + b + vn, V + b + on))
    P = V + "clip_projector."
    for x in ("q", "k", "v"):
        m.append(("vision.pool.norm_%s.weight" % x, P + "norm1_%s.weight" % x))
        m.append(("vision.pool.norm_%s.bias" % x, P + "norm1_%s.bias" % x))
    for x in ("q", "k", "v"):
        m.append(("vision.pool.%s.weight" % x, P + "cross_attn.%s.weight" % x))
        m.append(("vision.pool.%s.bias" % x, P + "cross_attn.%s_bias" % x))
    m.append(("vision.pool.proj.weight", P + "cross_attn.proj.weight"))
    m.append(("vision.pool.proj.bias", P + "cross_attn.proj.bias"))
    if head == "proj":
        m += [("vision.proj.weight", "vision_proj.weight"), ("vision.proj.bias", "vision_proj.bias")]
    elif head == "align":
        m += [("vision.align.norm.weight", "vision_align.0.weight"),
              ("vision.align.norm.bias", "vision_align.0.bias"),
              ("vision.align.proj.weight", "vision_align.1.weight"),
              ("vision.align.proj.bias", "vision_align.1.bias")]
    return m


def expected_shapes(C, H, P, D, E, N, NI, depth, img_pos, head):
    s = {"vision.patch_embed.weight": (C, 3, 1, P, P), "vision.patch_embed.bias": (C,),
         "vision.cls_token": (1, 1, C), "vision.pos_embed": (1, N, C)}
    if img_pos:
        s["vision.img_pos_embed"] = (1, NI, C)
    for i in range(depth):
        b = "vision.blocks.%d." % i
        s.update({b + "norm1.weight": (C,), b + "attn.qkv.weight": (3 * C, C),
                  b + "attn.q_norm.weight": (C,), b + "attn.k_norm.weight": (C,),
                  b + "attn.proj.weight": (C, C), b + "attn.proj.bias": (C,), b + "ls1": (C,),
                  b + "norm2.weight": (C,), b + "mlp.fc1.weight": (H, C), b + "mlp.fc1.bias": (H,),
                  b + "mlp.fc2.weight": (C, H), b + "mlp.fc2.bias": (C,), b + "ls2": (C,)})
    for x in ("q", "k", "v"):
        s["vision.pool.norm_%s.weight" % x] = (C,)
        s["vision.pool.norm_%s.bias" % x] = (C,)
        s["vision.pool.%s.weight" % x] = (C, C)
        s["vision.pool.%s.bias" % x] = (C,)
    s["vision.pool.proj.weight"] = (D, C)
    s["vision.pool.proj.bias"] = (D,)
    if head == "proj":
        s["vision.proj.weight"] = (E, D)
        s["vision.proj.bias"] = (E,)
    elif head == "align":
        s["vision.align.norm.weight"] = (D,)
        s["vision.align.norm.bias"] = (D,)
        s["vision.align.proj.weight"] = (E, D)
        s["vision.align.proj.bias"] = (E,)
    return s


def short_list(keys, n=12):
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    if len(keys) > n:
        s += ", ... (%d in all)" % len(keys)
    return s


def shape_of(sd, key, ndim, what):
    if key not in sd:
        raise ConvertError("missing keys: %s (%s)" % (key, what))
    t = sd[key]
    if t.dim() != ndim:
        raise ConvertError("wrong shapes: %s is %s, expected a %d-d tensor"
                           % (key, tuple(t.shape), ndim))
    return tuple(t.shape)


def plan(sd, args):
    """Check the merged state dict; return (config dict, [(vidx name, tensor)], notes)."""
    V = "vision_encoder."
    variant = VARIANTS[args.variant]

    if any(k.startswith(V + n) for k in sd for n in ("pos_embed_spatial", "pos_embed_temporal",
                                                        "pos_embed_cls")):
        raise ConvertError("separable positional embeddings (sep_pos_embed) are not supported")

    # classify keys
    dropped, towers, vision = [], collections.OrderedDict(), collections.OrderedDict()
    for k, v in sd.items():
        if any(p.match(k) for p in TRAIN_ONLY):
            dropped.append(k)
            continue
        tower = next((name for name, p in OTHER_TOWERS if p.match(k)), None)
        if tower is not None:
            towers.setdefault(tower, []).append(k)
            continue
        vision[k] = v

    # sizes from shapes
    C = shape_of(vision, V + "cls_token", 3, "CLS token")[2]
    pe = shape_of(vision, V + "patch_embed.proj.weight", 5, "patch embedding")
    if pe[2] != 1:
        raise ConvertError("wrong shapes: %spatch_embed.proj.weight %s: tubelet %d, only 1 is supported"
                           % (V, pe, pe[2]))
    if pe[3] != pe[4]:
        raise ConvertError("wrong shapes: %spatch_embed.proj.weight %s: non-square patch" % (V, pe))
    P = pe[3]
    blk = set()
    for k in vision:
        m = re.match(r"^vision_encoder\.blocks\.(\d+)\.", k)
        if m:
            blk.add(int(m.group(1)))
    if not blk:
        raise ConvertError("missing keys: %sblocks.* (no transformer blocks)" % V)
    depth = max(blk) + 1
    H = shape_of(vision, V + "blocks.0.mlp.fc1.weight", 2, "MLP")[0]
    D = shape_of(vision, V + "clip_projector.cross_attn.proj.weight", 2, "attention pool")[0]

    if args.variant == "custom":
        head = "proj" if "vision_proj.weight" in vision else \
               "align" if "vision_align.1.weight" in vision else "none"
    else:
        head = variant["head"]
    if head == "proj":
        E = shape_of(vision, "vision_proj.weight", 2, "vision_proj (the s2 head)")[0]
    elif head == "align":
        E = shape_of(vision, "vision_align.1.weight", 2, "vision_align (the clip-S/B/L head)")[0]
    else:
        E = D

    # frames / image size from the pos_embed rows
    rows = shape_of(vision, V + "pos_embed", 3, "positional embedding")[1]
    n = rows - 1
    if args.image_size is None and args.frames is not None:
        if n % args.frames:
            raise ConvertError("wrong shapes: pos_embed has %d rows, not 1 + %d*g*g" % (rows, args.frames))
        g = int(round(math.sqrt(n // args.frames)))
        if g * g * args.frames != n:
            raise ConvertError("wrong shapes: pos_embed has %d rows, not 1 + %d*g*g" % (rows, args.frames))
        image_size = g * P
    else:
        image_size = args.image_size or 224
    if image_size % P:
        raise ConvertError("--image-size %d is not a multiple of the patch size %d" % (image_size, P))
    g = image_size // P
    if n % (g * g):
        raise ConvertError("wrong shapes: pos_embed has %d rows, not 1 + frames*%d (image size %d, "
                           "patch %d); give the right --image-size or --frames" % (rows, g * g, image_size, P))
    frames = n // (g * g)
    if args.frames is not None and args.frames != frames:
        raise ConvertError("wrong shapes: pos_embed has %d rows = 1 + %d frames x %d patches, "
                           "not %d frames" % (rows, frames, g * g, args.frames))
    if variant["frames"] and frames != variant["frames"] and not args.quiet:
        print("note: %s checkpoints are normally %d-frame; this pos_embed is %d-frame"
              % (args.variant, variant["frames"], frames))

    heads = args.heads or variant["heads"]
    if heads is None:
        raise ConvertError("--variant custom needs --heads (attention heads cannot be read from shapes)")
    if C % heads:
        raise ConvertError("width %d is not divisible by %d heads (wrong --variant or --heads?)" % (C, heads))
    pool_heads = args.pool_heads
    if C % pool_heads:
        raise ConvertError("width %d is not divisible by %d pool heads" % (C, pool_heads))
    gelu = args.gelu or variant["gelu"]
    img_pos = (V + "img_pos_embed") in vision

    names = vidx_names(depth, img_pos, head)
    shapes = expected_shapes(C, H, P, D, E, rows, 1 + g * g, depth, img_pos, head)
    official = {o for _, o in names}
    missing = [o for _, o in names if o not in vision]
    unknown = [k for k in vision if k not in official]
    if missing:
        raise ConvertError("missing keys for %s (depth %d, head %s): %s"
                           % (args.variant, depth, head, short_list(missing)))
    if unknown:
        raise ConvertError("unknown keys for %s (head %s): %s" % (args.variant, head, short_list(unknown)))
    bad = []
    for vn, on in names:
        got = tuple(vision[on].shape)
        if got != shapes[vn]:
            bad.append("%s %s (expected %s)" % (on, got, shapes[vn]))
        if not vision[on].is_floating_point():
            bad.append("%s has dtype %s (expected floating point)" % (on, vision[on].dtype))
    if bad:
        raise ConvertError("wrong shapes: " + "; ".join(bad[:8]) + (" ... (%d in all)" % len(bad) if len(bad) > 8 else ""))

    config = collections.OrderedDict([
        ("format", "vidx-model"),
        ("format_version", FORMAT_VERSION),
        ("model_id", None),
        ("variant", args.variant),
        ("embed_dim", E),
        ("vision", collections.OrderedDict([
            ("width", C), ("depth", depth), ("heads", heads), ("mlp_hidden", H),
            ("patch_size", P), ("tubelet", 1), ("image_size", image_size), ("frames", frames),
            ("norm_eps", 1e-6), ("qk_norm", True), ("gelu", gelu),
            ("img_pos_embed", img_pos),
            ("pool_heads", pool_heads), ("pool_dim", D), ("pool_norm_eps", 1e-5),
            ("head", head)])),
        ("preprocess", collections.OrderedDict([
            ("frames", frames), ("sampling", "middle"), ("image_size", image_size),
            ("resize", "bicubic"), ("antialias", False),
            ("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)])),
        ("text", None),
        ("audio", None),
    ])
    tensors = [(vn, vision[on]) for vn, on in names]
    return config, tensors, dropped, towers


# --------------------------------------------------------------------------------------------
# text towers (docs/model-format.md, "Tensor names (text)")

BERT_PREFIXES = ("text_encoder.bert.", "text_encoder.")


def _bert_prefix(sd):
    for p in BERT_PREFIXES:
        if p + "embeddings.word_embeddings.weight" in sd:
            return p
    return None


def plan_bert(sd, args, vision_cfg, E):
    """s2 BERT-large text tower + matching head -> (text config, [(vidx name, tensor)])."""
    B = _bert_prefix(sd)
    if B is None:
        raise ConvertError("--vocab given but the checkpoint has no BERT text tower "
                           "(text_encoder.bert.embeddings.word_embeddings.weight)")
    Vv, W = shape_of(sd, B + "embeddings.word_embeddings.weight", 2, "BERT word embeddings")
    maxpos = shape_of(sd, B + "embeddings.position_embeddings.weight", 2, "BERT positions")[0]
    ntypes = shape_of(sd, B + "embeddings.token_type_embeddings.weight", 2, "BERT token types")[0]
    layers = 1 + max(int(m.group(1)) for m in (re.match(re.escape(B) + r"encoder\.layer\.(\d+)\.", k)
                                               for k in sd) if m)
    cross = sorted({int(m.group(1)) for m in (re.match(re.escape(B) + r"encoder\.layer\.(\d+)\.crossattention\.", k)
                                                for k in sd) if m})
    fusion = cross[0] if cross else layers
    if cross != list(range(fusion, layers)):
        raise ConvertError("BERT cross-attention layers %s are not the last layers %d..%d" % (cross, fusion, layers - 1))
    if args.fusion_layer is not None and args.fusion_layer != fusion:
        raise ConvertError("--fusion-layer %d, but the checkpoint's cross-attention starts at layer %d"
                           % (args.fusion_layer, fusion))
    F_ = shape_of(sd, B + "encoder.layer.0.intermediate.dense.weight", 2, "BERT FFN")[0]
    heads = args.text_heads or 16
    if W % heads:
        raise ConvertError("text width %d is not divisible by %d heads (--text-heads)" % (W, heads))
    fusion_proj = "av_concat_vision_proj.0.weight" in sd
    Cv = vision_cfg["width"]
    enc_w = shape_of(sd, "av_concat_vision_proj.0.weight", 2, "av_concat_vision_proj")[0] if fusion_proj else Cv
    T = []

    def add(vn, on, shape):
        if on not in sd:
            raise ConvertError("missing keys: %s (text tower)" % on)
        got = tuple(sd[on].shape)
        if got != tuple(shape):
            raise ConvertError("wrong shapes: %s %s (expected %s)" % (on, got, tuple(shape)))
        T.append((vn, sd[on]))

    e = B + "embeddings."
    add("text.embed.word", e + "word_embeddings.weight", (Vv, W))
    add("text.embed.pos", e + "position_embeddings.weight", (maxpos, W))
    add("text.embed.type", e + "token_type_embeddings.weight", (ntypes, W))
    add("text.embed.norm.weight", e + "LayerNorm.weight", (W,))
    add("text.embed.norm.bias", e + "LayerNorm.bias", (W,))
    for j in range(layers):
        o = B + "encoder.layer.%d." % j
        v = "text.layers.%d." % j
        parts = [("attn", "attention", W)] + ([("cross", "crossattention", enc_w)] if j >= fusion else [])
        for vp, op, kvw in parts:
            for x, on in (("q", "query"), ("k", "key"), ("v", "value")):
                add(v + vp + ".%s.weight" % x, o + op + ".self.%s.weight" % on, (W, W if x == "q" else kvw))
                add(v + vp + ".%s.bias" % x, o + op + ".self.%s.bias" % on, (W,))
            add(v + vp + ".o.weight", o + op + ".output.dense.weight", (W, W))
            add(v + vp + ".o.bias", o + op + ".output.dense.bias", (W,))
            add(v + vp + "_norm.weight", o + op + ".output.LayerNorm.weight", (W,))
            add(v + vp + "_norm.bias", o + op + ".output.LayerNorm.bias", (W,))
        add(v + "fc1.weight", o + "intermediate.dense.weight", (F_, W))
        add(v + "fc1.bias", o + "intermediate.dense.bias", (F_,))
        add(v + "fc2.weight", o + "output.dense.weight", (W, F_))
        add(v + "fc2.bias", o + "output.dense.bias", (W,))
        add(v + "ffn_norm.weight", o + "output.LayerNorm.weight", (W,))
        add(v + "ffn_norm.bias", o + "output.LayerNorm.bias", (W,))
    add("text.proj.weight", "text_proj.weight", (E, W))
    add("text.proj.bias", "text_proj.bias", (E,))
    if cross:
        add("text.itm.weight", "itm_head.weight", (2, W))
        add("text.itm.bias", "itm_head.bias", (2,))
    if fusion_proj:
        add("text.fusion_proj.weight", "av_concat_vision_proj.0.weight", (enc_w, Cv))
        add("text.fusion_proj.bias", "av_concat_vision_proj.0.bias", (enc_w,))
        add("text.fusion_proj_norm.weight", "av_concat_vision_proj.1.weight", (enc_w,))
        add("text.fusion_proj_norm.bias", "av_concat_vision_proj.1.bias", (enc_w,))
    used = {id(t) for _, t in T}
    if not cross:    # a matching head without cross-attention layers cannot run: dropped
        used |= {id(sd[k]) for k in sd if k.startswith("itm_head.")}
    unknown = [k for k in sd if (k.startswith(("text_encoder.", "text_proj.", "itm_head.", "av_concat_vision_proj."))
                                 and not any(p.match(k) for p in TRAIN_ONLY)
                                 and id(sd[k]) not in used and not k.endswith("position_ids"))]
    if unknown:
        raise ConvertError("unknown text keys: %s" % short_list(unknown))
    cfg = collections.OrderedDict([
        ("arch", "bert"), ("width", W), ("layers", layers), ("heads", heads), ("ffn", F_),
        ("vocab_size", Vv), ("max_positions", maxpos), ("type_vocab", ntypes), ("norm_eps", 1e-12),
        ("fusion_layer", fusion), ("encoder_width", enc_w), ("vision_width", Cv),
        ("fusion_proj", fusion_proj), ("fusion_proj_norm_eps", 1e-5), ("itm", bool(cross)),
        ("tokenizer", "wordpiece"), ("vocab_file", "vocab.txt"),
        ("max_len", args.text_max_len or 32), ("pre_text", bool(getattr(args, "pre_text", False)))])
    if cfg["max_len"] > maxpos:
        raise ConvertError("--text-max-len %d exceeds the %d positions" % (cfg["max_len"], maxpos))
    return cfg, T


def plan_mobileclip(sd, args, E):
    """clip-S/B/L MobileCLIP text tower -> (text config, [(vidx name, tensor)])."""
    P = "text_encoder."
    Vv, W = shape_of(sd, P + "embedding_layer.weight", 2, "MobileCLIP token embedding")
    pe = shape_of(sd, P + "positional_embedding.pos_embed.pos_embed", 4, "MobileCLIP positions")
    if pe[:2] != (1, 1) or pe[3] != W:
        raise ConvertError("wrong shapes: %spositional_embedding.pos_embed.pos_embed %s" % (P, pe))
    ctx = pe[2]
    layers = 1 + max(int(m.group(1)) for m in (re.match(r"^text_encoder\.transformer\.(\d+)\.", k) for k in sd) if m)
    F_ = shape_of(sd, P + "transformer.0.pre_norm_ffn.1.weight", 2, "MobileCLIP FFN")[0]
    proj = shape_of(sd, P + "projection_layer", 2, "MobileCLIP projection")
    if proj != (W, E):
        raise ConvertError("wrong shapes: %sprojection_layer %s (expected %s)" % (P, proj, (W, E)))
    heads = args.text_heads or 8
    if W % heads:
        raise ConvertError("text width %d is not divisible by %d heads (--text-heads)" % (W, heads))
    T = []

    def add(vn, on, shape, t=None):
        if on not in sd:
            raise ConvertError("missing keys: %s (text tower)" % on)
        got = tuple(sd[on].shape)
        if t is None and got != tuple(shape):
            raise ConvertError("wrong shapes: %s %s (expected %s)" % (on, got, tuple(shape)))
        T.append((vn, sd[on] if t is None else t))

    add("text.embed.word", P + "embedding_layer.weight", (Vv, W))
    add("text.embed.pos", P + "positional_embedding.pos_embed.pos_embed", None,
        sd[P + "positional_embedding.pos_embed.pos_embed"].reshape(ctx, W))
    for j in range(layers):
        o = P + "transformer.%d." % j
        v = "text.layers.%d." % j
        add(v + "attn_norm.weight", o + "pre_norm_mha.0.weight", (W,))
        add(v + "attn_norm.bias", o + "pre_norm_mha.0.bias", (W,))
        add(v + "attn.qkv.weight", o + "pre_norm_mha.1.qkv_proj.weight", (3 * W, W))
        add(v + "attn.qkv.bias", o + "pre_norm_mha.1.qkv_proj.bias", (3 * W,))
        add(v + "attn.o.weight", o + "pre_norm_mha.1.out_proj.weight", (W, W))
        add(v + "attn.o.bias", o + "pre_norm_mha.1.out_proj.bias", (W,))
        add(v + "ffn_norm.weight", o + "pre_norm_ffn.0.weight", (W,))
        add(v + "ffn_norm.bias", o + "pre_norm_ffn.0.bias", (W,))
        add(v + "fc1.weight", o + "pre_norm_ffn.1.weight", (F_, W))
        add(v + "fc1.bias", o + "pre_norm_ffn.1.bias", (F_,))
        add(v + "fc2.weight", o + "pre_norm_ffn.4.weight", (W, F_))
        add(v + "fc2.bias", o + "pre_norm_ffn.4.bias", (W,))
    add("text.final_norm.weight", P + "final_layer_norm.weight", (W,))
    add("text.final_norm.bias", P + "final_layer_norm.bias", (W,))
    # x @ projection_layer (W, E) is stored as a Linear weight (E, W), like every other matrix
    add("text.proj.weight", P + "projection_layer", None, sd[P + "projection_layer"].t().contiguous())
    used = {id(sd[o]) for o in sd if o.startswith(P)} & {id(sd[k]) for k in sd}
    known = set(k for k in sd if k.startswith(P) and (
        re.match(r"^text_encoder\.(embedding_layer\.weight|positional_embedding\.pos_embed\.pos_embed|"
                 r"final_layer_norm\.(weight|bias)|projection_layer|logit_scale)$", k) or
        re.match(r"^text_encoder\.transformer\.\d+\.pre_norm_(mha\.0|mha\.1\.qkv_proj|mha\.1\.out_proj|"
                 r"ffn\.0|ffn\.1|ffn\.4)\.(weight|bias)$", k)))
    unknown = [k for k in sd if k.startswith(P) and k not in known]
    del used
    if unknown:
        raise ConvertError("unknown text keys: %s" % short_list(unknown))
    cfg = collections.OrderedDict([
        ("arch", "mobileclip"), ("width", W), ("layers", layers), ("heads", heads), ("ffn", F_),
        ("vocab_size", Vv), ("max_positions", ctx), ("norm_eps", 1e-5), ("causal", True),
        ("tokenizer", "clip_bpe"), ("vocab_file", "bpe_simple_vocab_16e6.txt"),
        ("max_len", args.text_max_len or ctx)])
    if cfg["max_len"] > ctx:
        raise ConvertError("--text-max-len %d exceeds the context %d" % (cfg["max_len"], ctx))
    return cfg, T


def plan_audio(sd, args, E):
    """s2-6B BEATs audio tower + audio_proj (+ av_fusion) -> (audio config, [(vidx name, tensor)])."""
    import torch
    A = "audio_encoder."
    d0, one, p1, p2 = shape_of(sd, A + "patch_embedding.weight", 4, "BEATs patch embedding")
    if one != 1 or p1 != p2:
        raise ConvertError("wrong shapes: %spatch_embedding.weight %s" % (A, (d0, one, p1, p2)))
    W = shape_of(sd, A + "post_extract_proj.weight", 2, "BEATs post_extract_proj")[0]
    layers = 1 + max(int(m.group(1)) for m in (re.match(r"^audio_encoder\.encoder\.layers\.(\d+)\.", k) for k in sd) if m)
    F_ = shape_of(sd, A + "encoder.layers.0.fc1.weight", 2, "BEATs FFN")[0]
    nb, heads = shape_of(sd, A + "encoder.layers.0.self_attn.relative_attention_bias.weight", 2, "BEATs relative bias")
    if args.audio_heads and args.audio_heads != heads:
        raise ConvertError("--audio-heads %d, but the relative bias table has %d heads" % (args.audio_heads, heads))
    if W % heads:
        raise ConvertError("audio width %d not divisible by %d heads" % (W, heads))
    gv = shape_of(sd, A + "encoder.pos_conv.0.weight_v", 3, "BEATs conv positional embedding")
    K = gv[2]
    groups = W // gv[1]
    gru = (A + "encoder.layers.0.self_attn.grep_linear.weight") in sd
    T = []
    used = set()

    def add(vn, on, shape, t=None):
        if on not in sd:
            raise ConvertError("missing keys: %s (audio tower)" % on)
        used.add(on)
        got = tuple(sd[on].shape)
        if t is None and tuple(shape) != got:
            raise ConvertError("wrong shapes: %s %s (expected %s)" % (on, got, tuple(shape)))
        T.append((vn, sd[on] if t is None else t))

    add("audio.patch.weight", A + "patch_embedding.weight", (d0, 1, p1, p1))
    if A + "patch_embedding.bias" in sd:
        add("audio.patch.bias", A + "patch_embedding.bias", (d0,))
    add("audio.patch_norm.weight", A + "layer_norm.weight", (d0,))
    add("audio.patch_norm.bias", A + "layer_norm.bias", (d0,))
    add("audio.in_proj.weight", A + "post_extract_proj.weight", (W, d0))
    add("audio.in_proj.bias", A + "post_extract_proj.bias", (W,))
    # weight norm materialised: w = g * v / ||v||, the norm over every dim except 2
    g = sd[A + "encoder.pos_conv.0.weight_g"].double()
    v = sd[A + "encoder.pos_conv.0.weight_v"].double()
    if tuple(g.shape) != (1, 1, K):
        raise ConvertError("wrong shapes: %sencoder.pos_conv.0.weight_g %s (expected %s)" % (A, tuple(g.shape), (1, 1, K)))
    w = (v * (g / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt())).float()
    used.update({A + "encoder.pos_conv.0.weight_g", A + "encoder.pos_conv.0.weight_v"})
    T.append(("audio.pos_conv.weight", w))
    add("audio.pos_conv.bias", A + "encoder.pos_conv.0.bias", (W,))
    add("audio.norm.weight", A + "encoder.layer_norm.weight", (W,))
    add("audio.norm.bias", A + "encoder.layer_norm.bias", (W,))
    rel0 = sd[A + "encoder.layers.0.self_attn.relative_attention_bias.weight"]
    add("audio.rel_bias", A + "encoder.layers.0.self_attn.relative_attention_bias.weight", (nb, heads))
    for j in range(layers):
        o = A + "encoder.layers.%d." % j
        v_ = "audio.layers.%d." % j
        for x in ("q", "k", "v"):
            add(v_ + "attn.%s.weight" % x, o + "self_attn.%s_proj.weight" % x, (W, W))
            add(v_ + "attn.%s.bias" % x, o + "self_attn.%s_proj.bias" % x, (W,))
        add(v_ + "attn.o.weight", o + "self_attn.out_proj.weight", (W, W))
        add(v_ + "attn.o.bias", o + "self_attn.out_proj.bias", (W,))
        if gru:
            add(v_ + "attn.gate.weight", o + "self_attn.grep_linear.weight", (8, W // heads))
            add(v_ + "attn.gate.bias", o + "self_attn.grep_linear.bias", (8,))
            add(v_ + "attn.gate_a", o + "self_attn.grep_a", None, sd[o + "self_attn.grep_a"].reshape(heads))
        rk = o + "self_attn.relative_attention_bias.weight"
        if j and rk in sd:      # the shared table, repeated under every layer by state_dict()
            if not torch.equal(sd[rk], rel0):
                raise ConvertError("%s differs from layer 0's (the table is shared)" % rk)
            used.add(rk)
        add(v_ + "attn_norm.weight", o + "self_attn_layer_norm.weight", (W,))
        add(v_ + "attn_norm.bias", o + "self_attn_layer_norm.bias", (W,))
        add(v_ + "fc1.weight", o + "fc1.weight", (F_, W))
        add(v_ + "fc1.bias", o + "fc1.bias", (F_,))
        add(v_ + "fc2.weight", o + "fc2.weight", (W, F_))
        add(v_ + "fc2.bias", o + "fc2.bias", (W,))
        add(v_ + "ffn_norm.weight", o + "final_layer_norm.weight", (W,))
        add(v_ + "ffn_norm.bias", o + "final_layer_norm.bias", (W,))
    add("audio.proj.weight", "audio_proj.weight", (E, W))
    add("audio.proj.bias", "audio_proj.bias", (E,))
    fusion = "av_fusion.weight" in sd
    if fusion:
        add("audio.av_fusion.weight", "av_fusion.weight", (E, 2 * E))
        add("audio.av_fusion.bias", "av_fusion.bias", (E,))
    # recognised but unused for retrieval: the audio-visual matching inputs
    skip = re.compile(r"^(av_concat_audio_proj\.|avtm_head\.|atm_head\.)")
    unknown = [k for k in sd if k.startswith(("audio_encoder.", "audio_proj.", "av_fusion."))
               and k not in used]
    if unknown:
        raise ConvertError("unknown audio keys: %s" % short_list(unknown))
    cfg = collections.OrderedDict([
        ("arch", "beats"), ("width", W), ("layers", layers), ("heads", heads), ("ffn", F_),
        ("patch_dim", d0), ("patch_size", p1), ("mel_bins", args.audio_mel_bins), ("frames", 998),
        ("sample_rate", 16000), ("fbank_mean", 15.41663), ("fbank_std", 6.55582),
        ("conv_pos", K), ("conv_pos_groups", groups), ("num_buckets", nb),
        ("max_distance", args.audio_max_distance), ("gru_rel_pos", gru), ("deep_norm", not args.audio_no_deep_norm),
        ("norm_eps", 1e-5), ("av_fusion", fusion)])
    if cfg["mel_bins"] % p1 or 998 < p1:
        raise ConvertError("--audio-mel-bins %d is not a multiple of the patch size %d" % (cfg["mel_bins"], p1))
    return cfg, T, [k for k in sd if skip.match(k)]


def read_vocab_file(path, kind):
    """The vocabulary's bytes (gzip-compressed BPE merges are decompressed)."""
    import gzip
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError("%s: %s" % (path, e.strerror or e))
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ConvertError("%s: corrupt gzip file (%s)" % (path, e))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConvertError("%s: not UTF-8 text" % path)
    if kind == "wordpiece":
        pieces = set(ln.rstrip() for ln in text.split("\n"))
        miss = [p for p in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if p not in pieces]
        if miss:
            raise ConvertError("%s: not a BERT vocab.txt (no %s)" % (path, ", ".join(miss)))
    else:
        lines = text.split("\n")
        if len(lines) < 2 or not lines[0].startswith("#"):
            raise ConvertError("%s: not a CLIP BPE merges file (first line must be #version)" % path)
    return data


# --------------------------------------------------------------------------------------------
# safetensors writer

_ST_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def out_dtype(t, dtype):
    import torch
    if dtype == "keep":
        return {torch.bfloat16: "BF16", torch.float16: "F16"}.get(t.dtype, "F32")
    return {"f32": "F32", "bf16": "BF16", "f16": "F16"}[dtype]


def tensor_bytes(t, st):
    """Little-endian bytes of t as safetensors dtype st (bf16 through 16-bit integer views)."""
    import torch
    tt = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[st]
    t = t.detach().cpu().to(tt).contiguous()
    if st == "BF16":
        return t.view(torch.int16).numpy().astype("<i2", copy=False).tobytes()
    if st == "F16":
        return t.numpy().astype("<f2", copy=False).tobytes()
    return t.numpy().astype("<f4", copy=False).tobytes()


def write_model(outdir, config, tensors, dtype, id_prefix):
    """Writes model.safetensors (data start and every tensor 64-byte aligned) and config.json.
    Tensors are converted and written one at a time (no second full copy in memory); the model id
    (prefix + first 12 hex of the SHA-256 of the data section, i.e. everything after the header)
    is patched into the header afterwards.  Returns the model id."""
    entries = collections.OrderedDict()
    off = 0
    plan_ = []
    for name, t in tensors:
        st = out_dtype(t, dtype)
        nbytes = t.numel() * _ST_SIZE[st]
        pad = (-off) % ALIGN
        off += pad
        entries[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [off, off + nbytes]}
        plan_.append((name, t, st, pad, nbytes))
        off += nbytes

    def header_bytes(model_id):
        header = collections.OrderedDict([("__metadata__", {"format": "vidx", "model_id": model_id})])
        header.update(entries)
        hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
        return hj + b" " * ((-(8 + len(hj))) % ALIGN)

    placeholder = "%s-%s" % (id_prefix, "0" * 12)
    hj = header_bytes(placeholder)
    os.makedirs(outdir, exist_ok=True)
    st_path = os.path.join(outdir, "model.safetensors")
    tmp = st_path + ".tmp"
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as f:
            f.write(len(hj).to_bytes(8, "little"))
            f.write(hj)
            for name, t, st, pad, nbytes in plan_:
                b = tensor_bytes(t, st)
                assert len(b) == nbytes, name
                f.write(b"\0" * pad)
                f.write(b)
                h.update(b"\0" * pad)
                h.update(b)
                del b
            model_id = "%s-%s" % (id_prefix, h.hexdigest()[:12])
            hj2 = header_bytes(model_id)
            assert len(hj2) == len(hj)
            f.seek(8)
            f.write(hj2)
        os.replace(tmp, st_path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConvertError("cannot write %s: %s" % (st_path, e))
    config["model_id"] = model_id
    cfg_path = os.path.join(outdir, "config.json")
    with open(cfg_path + ".tmp", "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(cfg_path + ".tmp", cfg_path)
    return model_id


# --------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="convert_internvideo2.py",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                    help="official checkpoint file(s) (.pt / .pth / pytorch_model.bin); later files "
                         "override earlier ones")
    ap.add_argument("--out", "-o", required=True, metavar="DIR", help="model directory to write")
    ap.add_argument("--variant", required=True, choices=list(VARIANTS),
                    help="model variant (gives heads, GELU flavour, head type)")
    ap.add_argument("--heads", type=int, help="trunk attention heads (overrides the variant)")
    ap.add_argument("--pool-heads", type=int, default=16, help="attention-pool heads (default 16)")
    ap.add_argument("--gelu", choices=("tanh", "erf"), help="MLP activation (default tanh, the "
                    "released models' fused MLP)")
    ap.add_argument("--frames", type=int, help="frames the checkpoint's pos_embed holds (checked "
                    "against its rows; derived from them when omitted)")
    ap.add_argument("--image-size", type=int, help="training image size (default 224)")
    ap.add_argument("--dtype", choices=("keep", "f32", "bf16", "f16"), default="keep",
                    help="weight dtype to write (keep: as stored; float64 becomes F32)")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow arbitrary pickled Python objects (torch>=2: weights_only=False)")
    ap.add_argument("--vocab", metavar="VOCAB_TXT", help="BERT vocab.txt (bert-large-uncased): converts "
                    "the s2 text tower and matching head, copied into DIR as vocab.txt")
    ap.add_argument("--bpe", metavar="MERGES", help="open_clip BPE merges (bpe_simple_vocab_16e6.txt[.gz]): "
                    "converts the clip-S/B/L MobileCLIP text tower; stored uncompressed in DIR")
    ap.add_argument("--text-heads", type=int, help="text attention heads (default 16 BERT, 8 MobileCLIP)")
    ap.add_argument("--text-max-len", type=int, help="query token length (default 32 BERT, 77 CLIP)")
    ap.add_argument("--pre-text", action="store_true", help="BERT queries get InternVideo2's caption "
                    "cleaning (pre_text) before tokenising, as its evaluation does (default: off, as the demo)")
    ap.add_argument("--fusion-layer", type=int, help="BERT layer where cross-attention starts (checked "
                    "against the checkpoint; default: read from it)")
    ap.add_argument("--audio", action="store_true", help="convert the s2-6B BEATs audio tower (audio_encoder.*, "
                    "audio_proj, av_fusion)")
    ap.add_argument("--audio-heads", type=int, help="audio attention heads (checked against the relative bias table)")
    ap.add_argument("--audio-mel-bins", type=int, default=64, help="fbank mel bins (InternVideo2: 64)")
    ap.add_argument("--audio-max-distance", type=int, default=800,
                    help="BEATs relative-position max distance (default 800, BEATs' released configs; "
                         "not stored in the InternVideo2 checkpoint)")
    ap.add_argument("--audio-no-deep-norm", action="store_true", help="BEATs without deep-norm residual scaling")
    ap.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for opt in ("heads", "frames", "image_size", "pool_heads", "text_heads", "text_max_len"):
        v = getattr(args, opt)
        if v is not None and v <= 0:
            die("--%s must be positive" % opt.replace("_", "-"))
    try:
        import torch
        torch.set_num_threads(min(2, torch.get_num_threads()))
    except ImportError:
        die("PyTorch is needed to read checkpoints (Debian: apt install python3-torch)")
    try:
        merged = collections.OrderedDict()
        for path in args.checkpoints:
            sd = state_dict_of(load_checkpoint(path, args.trust_pickle), path)
            merged.update(sd)
        config, tensors, dropped, towers = plan(merged, args)
        if args.vocab and args.bpe:
            raise ConvertError("give --vocab (BERT, s2 models) or --bpe (MobileCLIP, clip-S/B/L), not both")
        vocab_bytes = None
        if args.vocab or args.bpe:
            kind = "wordpiece" if args.vocab else "clip_bpe"
            vocab_bytes = read_vocab_file(args.vocab or args.bpe, kind)
            if args.vocab:
                tcfg, ttensors = plan_bert(merged, args, config["vision"], config["embed_dim"])
                towers.pop("text-fusion (av_concat_vision_proj)", None)
            else:
                tcfg, ttensors = plan_mobileclip(merged, args, config["embed_dim"])
            towers.pop("text", None)
            config["text"] = tcfg
            tensors = tensors + ttensors
        if args.audio:
            acfg, atensors, askipped = plan_audio(merged, args, config["embed_dim"])
            towers.pop("audio", None)
            config["audio"] = acfg
            tensors = tensors + atensors
        frames = config["vision"]["frames"]
        prefix = "internvideo2-%s-p%d-f%d" % (args.variant.lower(), config["vision"]["patch_size"], frames)
        model_id = write_model(args.out, config, tensors, args.dtype, prefix)
        if vocab_bytes is not None:
            vp = os.path.join(args.out, config["text"]["vocab_file"])
            with open(vp + ".tmp", "wb") as f:
                f.write(vocab_bytes)
            os.replace(vp + ".tmp", vp)
    except ConvertError as e:
        die(str(e))
    except MemoryError:
        die("out of memory while converting")
    if not args.quiet:
        v = config["vision"]
        t = config["text"]
        print("wrote %s: %s, width %d, depth %d, heads %d, mlp %d, %d frames x %d px, head %s, "
              "embed %d, %d tensors (%d train-only dropped)"
              % (args.out, model_id, v["width"], v["depth"], v["heads"], v["mlp_hidden"], v["frames"],
                 v["image_size"], v["head"], config["embed_dim"], len(tensors), len(dropped)))
        if t:
            print("text tower %s: width %d, %d layers, heads %d, ffn %d, vocab %d, max_len %d%s"
                  % (t["arch"], t["width"], t["layers"], t["heads"], t["ffn"], t["vocab_size"], t["max_len"],
                     ", matching head from layer %d (encoder width %d)" % (t["fusion_layer"], t["encoder_width"])
                     if t.get("itm") else ""))
        elif "text" in towers:
            print("note: no text tower written (pass --vocab vocab.txt for BERT or --bpe for MobileCLIP): "
                  "this model embeds video only")
        if towers:
            print("not converted yet (recognised): %s"
                  % "; ".join("%s tower (%d tensors)" % (k, len(v)) for k, v in towers.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
