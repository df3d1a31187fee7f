#!/usr/bin/python3
"""ctest reference_converter_towers: the converter's text and audio towers.

BERT (--vocab), MobileCLIP (--bpe, also gzip'd), BEATs (--audio): tensors land under the vidx
names (docs/model-format.md) bit-exactly (the materialised conv weight and the transposed
projection checked against their formulas), config.json numbers, the vocabulary file copied; and
errors: --vocab without a text tower, a vocab.txt without [CLS], a BPE file without #version, an
unknown text key, a shared relative-bias copy that differs, --vocab with --bpe. Without torch it
prints "skipped" and exits 0.
"""

import sys
sys.dont_write_bytecode = True

import collections
import contextlib
import gzip
import importlib.util
import io
import json
import os
import shutil
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
import make_text_fixtures as mtf  # noqa: E402
import make_audio_fixtures as maf  # noqa: E402
import audio_ref  # noqa: E402
import safetensors_io  # noqa: E402
import text_ref  # noqa: E402

_spec = importlib.util.spec_from_file_location("convert_internvideo2", CONVERTER)
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)


def run_conv(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = conv.main(args)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


class Towers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.tmp = tempfile.mkdtemp(prefix="vidx-convtowers-")
        vis = mtf.tiny_vision("conv-test", 48, 24)
        s = mtf.BERT_MODELS["bert_1b_like"]
        m = text_ref.BertText(200, s["width"], s["layers"], s["heads"], s["ffn"], s["maxpos"], s["fusion"],
                              s["vision_width"], s["embed_dim"])
        cls.bert_sd = mtf.randomise(m, "conv-test-bert")
        cls.bert_ckpt = collections.OrderedDict(vis)
        cls.bert_ckpt.update(cls.bert_sd)
        cls.vocab = os.path.join(cls.tmp, "vocab.txt")
        with open(cls.vocab, "w") as f:
            f.write("\n".join(mtf.vocab_lines()) + "\n")
        c = mtf.CLIP_MODEL
        mc = text_ref.MobileClipText(300, c["width"], c["layers"], c["heads"], c["ffn"], c["context"], 24)
        cls.clip_sd = mtf.randomise(mc, "conv-test-clip")
        cls.clip_ckpt = collections.OrderedDict(vis)
        cls.clip_ckpt.update(cls.clip_sd)
        cls.bpe = os.path.join(cls.tmp, "merges.txt")
        with open(cls.bpe, "w") as f:
            f.write("\n".join(mtf.BPE_MERGES) + "\n")
        a = audio_ref.AudioTower(**dict(maf.SPEC, embed_dim=24))
        cls.audio_sd = collections.OrderedDict((k, torch.randn(v.shape)) for k, v in a.state_dict().items())
        rk = "audio_encoder.encoder.layers.%d.self_attn.relative_attention_bias.weight"
        cls.audio_sd[rk % 1] = cls.audio_sd[rk % 0].clone()
        cls.audio_ckpt = collections.OrderedDict(vis)
        cls.audio_ckpt.update(cls.audio_sd)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def save(self, name, sd):
        p = os.path.join(self.tmp, name)
        torch.save({"model": sd}, p)
        return p

    def convert(self, name, ckpt, extra):
        out = os.path.join(self.tmp, "out-" + name)
        args = ["--variant", "custom", "--heads", "2", "--image-size", "28", "--out", out] + extra + [ckpt]
        return run_conv(args) + (out,)

    def load(self, out):
        with open(os.path.join(out, "config.json")) as f:
            cfg = json.load(f)
        _, t = safetensors_io.load_f32(os.path.join(out, "model.safetensors"))
        return cfg, t

    def test_bert(self):
        p = self.save("bert.pt", self.bert_ckpt)
        rc, o, e, out = self.convert("bert", p, ["--vocab", self.vocab, "--text-heads", "4", "--text-max-len", "16"])
        self.assertEqual(rc, 0, e)
        self.assertIn("text tower bert", o)
        cfg, t = self.load(out)
        tc = cfg["text"]
        self.assertEqual((tc["layers"], tc["fusion_layer"], tc["heads"], tc["max_len"], tc["encoder_width"]),
                         (5, 3, 4, 16, 48))
        self.assertTrue(tc["itm"])
        B = "text_encoder.bert."
        np.testing.assert_array_equal(np.array(t["text.embed.word"]), self.bert_sd[B + "embeddings.word_embeddings.weight"].numpy())
        np.testing.assert_array_equal(np.array(t["text.layers.4.cross.k.weight"]),
                                      self.bert_sd[B + "encoder.layer.4.crossattention.self.key.weight"].numpy())
        np.testing.assert_array_equal(np.array(t["text.itm.weight"]), self.bert_sd["itm_head.weight"].numpy())
        self.assertNotIn("text.layers.2.cross.q.weight", t)
        with open(os.path.join(out, "vocab.txt")) as f, open(self.vocab) as g:
            self.assertEqual(f.read(), g.read())

    def test_bert_without_vocab_is_video_only(self):
        p = self.save("bert2.pt", self.bert_ckpt)
        rc, o, e, out = self.convert("bert-novocab", p, [])
        self.assertEqual(rc, 0, e)
        self.assertIn("no text tower written", o)
        cfg, t = self.load(out)
        self.assertIsNone(cfg["text"])
        self.assertFalse(any(k.startswith("text.") for k in t))

    def test_fusion_layer_checked(self):
        p = self.save("bert3.pt", self.bert_ckpt)
        rc, _, e, _ = self.convert("bert-fl", p, ["--vocab", self.vocab, "--text-heads", "4", "--fusion-layer", "19"])
        self.assertEqual(rc, 2)
        self.assertIn("cross-attention starts at layer 3", e)

    def test_vocab_errors(self):
        p = self.save("bert4.pt", self.bert_ckpt)
        bad = os.path.join(self.tmp, "bad_vocab.txt")
        with open(bad, "w") as f:
            f.write("[PAD]\n[UNK]\n[SEP]\nthe\n")
        rc, _, e, _ = self.convert("bert-badvocab", p, ["--vocab", bad, "--text-heads", "4"])
        self.assertEqual(rc, 2)
        self.assertIn("[CLS]", e)
        rc, _, e, _ = self.convert("bert-both", p, ["--vocab", self.vocab, "--bpe", self.bpe])
        self.assertEqual(rc, 2)
        self.assertIn("not both", e)
        vis_only = self.save("vis.pt", mtf.tiny_vision("conv-test", 48, 24))
        rc, _, e, _ = self.convert("vis-vocab", vis_only, ["--vocab", self.vocab])
        self.assertEqual(rc, 2)
        self.assertIn("no BERT text tower", e)

    def test_unknown_text_key(self):
        sd = collections.OrderedDict(self.bert_ckpt)
        sd["text_encoder.bert.encoder.layer.0.attention.self.extra"] = torch.zeros(3)
        p = self.save("bert5.pt", sd)
        rc, _, e, _ = self.convert("bert-unknown", p, ["--vocab", self.vocab, "--text-heads", "4"])
        self.assertEqual(rc, 2)
        self.assertIn("unknown text keys", e)

    def test_mobileclip_gzip(self):
        p = self.save("clip.pt", self.clip_ckpt)
        gz = os.path.join(self.tmp, "merges.txt.gz")
        with open(self.bpe, "rb") as f, gzip.open(gz, "wb") as g:
            g.write(f.read())
        rc, o, e, out = self.convert("clip", p, ["--bpe", gz, "--text-heads", "4"])
        self.assertEqual(rc, 0, e)
        cfg, t = self.load(out)
        self.assertEqual(cfg["text"]["arch"], "mobileclip")
        self.assertEqual(cfg["text"]["max_len"], mtf.CLIP_MODEL["context"])
        P = "text_encoder."
        np.testing.assert_array_equal(np.array(t["text.proj.weight"]), self.clip_sd[P + "projection_layer"].t().numpy())
        np.testing.assert_array_equal(np.array(t["text.embed.pos"]),
                                      self.clip_sd[P + "positional_embedding.pos_embed.pos_embed"][0, 0].numpy())
        with open(os.path.join(out, "bpe_simple_vocab_16e6.txt")) as f, open(self.bpe) as g:
            self.assertEqual(f.read(), g.read())      # stored uncompressed
        bad = os.path.join(self.tmp, "nobpe.txt")
        with open(bad, "w") as f:
            f.write("a b\n")
        rc, _, e, _ = self.convert("clip-bad", p, ["--bpe", bad])
        self.assertEqual(rc, 2)
        self.assertIn("#version", e)

    def test_audio(self):
        p = self.save("audio.pt", self.audio_ckpt)
        rc, o, e, out = self.convert("audio", p, ["--audio"])
        self.assertEqual(rc, 0, e)
        cfg, t = self.load(out)
        a = cfg["audio"]
        self.assertEqual((a["layers"], a["heads"], a["num_buckets"], a["conv_pos"], a["conv_pos_groups"]),
                         (2, 4, 320, 8, 4))
        self.assertTrue(a["gru_rel_pos"] and a["deep_norm"] and a["av_fusion"])
        A = "audio_encoder.encoder."
        g, v = self.audio_sd[A + "pos_conv.0.weight_g"].double(), self.audio_sd[A + "pos_conv.0.weight_v"].double()
        w = v * g / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        np.testing.assert_allclose(np.array(t["audio.pos_conv.weight"]), w.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(np.array(t["audio.layers.1.attn.gate_a"]),
                                      self.audio_sd[A + "layers.1.self_attn.grep_a"].reshape(-1).numpy())
        self.assertEqual(np.array(t["audio.rel_bias"]).shape, (320, 4))

    def test_audio_shared_bias_must_match(self):
        sd = collections.OrderedDict(self.audio_ckpt)
        rk = "audio_encoder.encoder.layers.1.self_attn.relative_attention_bias.weight"
        sd[rk] = sd[rk] + 1
        p = self.save("audio2.pt", sd)
        rc, _, e, _ = self.convert("audio-bad", p, ["--audio"])
        self.assertEqual(rc, 2)
        self.assertIn("differs from layer 0", e)

    def test_audio_not_converted_without_flag(self):
        p = self.save("audio3.pt", self.audio_ckpt)
        rc, o, e, out = self.convert("audio-noflag", p, [])
        self.assertEqual(rc, 0, e)
        self.assertRegex(o, r"not converted yet.*audio tower")
        cfg, _ = self.load(out)
        self.assertIsNone(cfg["audio"])


if __name__ == "__main__":
    unittest.main(verbosity=1)
