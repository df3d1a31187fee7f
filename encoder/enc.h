/* encoder/ — the InternVideo2 encoders on the CPU: model directories (config.json +
 * safetensors weights, mapped read-only and validated once), the vision tower (patch embedding,
 * RMSNorm/QK-norm transformer blocks, attention pooling, head, L2 normalisation), the text towers
 * (BERT-large query path + video-text matching head for s2 models, MobileCLIP-B for clip-S/B/L)
 * with their tokenizers, the s2-6B audio tower (Kaldi fbank + BEATs), and the small file
 * readers they need (safetensors, .npy).
 *
 * Thread safety:
 *   - An enc_model is immutable after enc_model_open() returns: any number of threads may read it
 *     and create encoder instances from it at the same time. Close it only after every instance
 *     created from it has been freed.
 *   - An enc_vision instance owns its scratch memory (one arena) and oneDNN stream: one thread at
 *     a time may call enc_vision_forward() on it. The same holds for enc_text and enc_audio
 *     instances. For parallel encoding create one instance per
 *     thread (they share the model's weights). The forward parallelises inside itself with
 *     OpenMP using `threads` threads.
 *   - enc_st, enc_npy: plain values owned by the caller; no hidden shared state.
 *
 * Usage:
 *
 *     vx_err err;
 *     enc_model *model = NULL;
 *     if (enc_model_open("models/s2-1b", &model, &err) != VX_OK) { puts(err.msg); return 1; }
 *     const enc_model_info *info = enc_model_get_info(model);
 *     enc_vision *vis = NULL;
 *     // 0 = the model's own frame count / image size / all CPUs
 *     if (enc_vision_create(model, 8, 0, 0, ENC_PRECISION_FP32, &vis, &err) != VX_OK) { ... }
 *     float *emb = malloc(enc_vision_embed_dim(vis) * sizeof(float));
 *     // pixels: [3, 8, 224, 224] float32, RGB, ImageNet-normalised
 *     if (enc_vision_forward(vis, pixels, emb, NULL, &err) != VX_OK) { ... }
 *     enc_vision_free(vis);
 *     enc_model_close(model);
 *
 * Errors: every failing call returns a vx_status and fills the caller's vx_err with one line that
 * names the file, tensor or config field concerned (e.g. "model.safetensors: tensor
 * vision.blocks.3.attn.qkv.weight: shape (96, 32), expected (96, 33)").
 */
#ifndef ENC_H
#define ENC_H

#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENC_MAX_DIMS 8

/* ---- tensors in a safetensors file ------------------------------------------------------- */

typedef enum enc_dtype {
    ENC_DTYPE_F32 = 0,
    ENC_DTYPE_F16,
    ENC_DTYPE_BF16,
    ENC_DTYPE_I64, /* tolerated in files, never used by the towers */
} enc_dtype;

/* "F32", "F16", "BF16", "I64". */
const char *enc_dtype_name(enc_dtype dtype);

/* One tensor of a safetensors file. All pointers live as long as the enc_st (or enc_model) that
 * returned it. data points into the mapped file (read-only, aligned to the element size). */
typedef struct enc_tensor_info {
    const char *name;
    enc_dtype dtype;
    int ndim;
    int64_t shape[ENC_MAX_DIMS];
    int64_t numel;
    uint64_t offset_bytes; /* from the start of the file */
    uint64_t size_bytes;
    const void *data;
} enc_tensor_info;

/* A parsed safetensors file: header validated (JSON, dtypes, shapes, offsets within the data,
 * no overlap, element alignment, header length sane), tensors sorted by name. */
typedef struct enc_st enc_st;

/* Maps path read-only and parses it. *out owns the mapping; free with enc_st_close(). */
vx_status enc_st_open(const char *path, enc_st **out, vx_err *err);
/* Parses a safetensors image already in memory (the fuzz entry point). buf is borrowed: it must
 * outlive *out and is never written. name is used in messages only ("<memory>" when NULL). */
vx_status enc_st_parse(const void *buf, size_t len, const char *name, enc_st **out, vx_err *err);
/* NULL is fine. */
void enc_st_close(enc_st *st);
int64_t enc_st_count(const enc_st *st);
/* i in [0, count); sorted by name. NULL when out of range. */
const enc_tensor_info *enc_st_tensor(const enc_st *st, int64_t i);
/* NULL when no tensor has that name. */
const enc_tensor_info *enc_st_find(const enc_st *st, const char *name);
/* A string value of "__metadata__", or NULL. Lives as long as st. */
const char *enc_st_metadata(const enc_st *st, const char *key);

/* ---- .npy files (float32 / uint8, C order) --------------------------------------------- */

typedef enum enc_npy_dtype { ENC_NPY_F32 = 0, ENC_NPY_U8 } enc_npy_dtype;

/* An array read from or written to .npy. data is malloc'd by the reader and freed by
 * enc_npy_free(); the struct itself is caller-owned. */
typedef struct enc_npy {
    enc_npy_dtype dtype;
    int ndim;
    int64_t shape[ENC_MAX_DIMS];
    int64_t numel;
    void *data; /* numel elements, 64-byte aligned */
} enc_npy;

/* Reads a version 1/2/3 .npy file ('<f4' or '|u1' / '<u1', fortran_order False, ndim <= 8). */
vx_status enc_npy_read(const char *path, enc_npy *out, vx_err *err);
/* The same from memory (the fuzz entry point); buf is only read. */
vx_status enc_npy_parse(const void *buf, size_t len, const char *name, enc_npy *out,
                        vx_err *err);
/* Writes data (numel = product of shape) as a version 1 .npy file, atomically. */
vx_status enc_npy_write(const char *path, enc_npy_dtype dtype, int ndim, const int64_t *shape,
                        const void *data, vx_err *err);
/* Frees out->data and zeroes the struct; NULL is fine. */
void enc_npy_free(enc_npy *npy);

/* ---- model directories ------------------------------------------------------------------ */

typedef struct enc_model enc_model;

/* The vision tower's numbers from config.json (docs/model-format.md). */
typedef struct enc_vision_config {
    int width;       /* C */
    int depth;
    int heads;
    int mlp_hidden;  /* H */
    int patch_size;  /* P */
    int tubelet;     /* always 1 */
    int image_size;  /* S: the resolution pos_embed was trained for */
    int frames;      /* the frame count pos_embed was trained for */
    float norm_eps;  /* RMSNorm eps of the blocks */
    int qk_norm;     /* 1 = RMSNorm of q and k over the full width */
    int gelu_erf;    /* 0 = tanh approximation, 1 = exact erf */
    int img_pos_embed; /* 1 = the file has vision.img_pos_embed (used for T = 1) */
    int pool_heads;
    int pool_dim;    /* D */
    float pool_norm_eps;
    const char *head; /* "proj", "align" or "none" */
} enc_vision_config;

/* The text tower's numbers from config.json "text" (docs/model-format.md). */
typedef struct enc_text_config {
    const char *arch;       /* "bert" (s2-1B/6B) or "mobileclip" (clip-S/B/L) */
    int width, layers, heads, ffn, vocab_size;
    int max_positions;      /* rows of the position table (BERT 512, MobileCLIP context 77) */
    float norm_eps;         /* LayerNorm eps (BERT 1e-12, MobileCLIP 1e-5) */
    /* BERT only: */
    int type_vocab;
    int fusion_layer;       /* the unimodal query stops here; the matching head runs the rest */
    int itm;                /* 1 = cross-attention layers and itm_head present */
    int encoder_width;      /* cross-attention key/value input width */
    int vision_width;       /* width of the vision tokens the matching head takes */
    int fusion_proj;        /* 1 = vision tokens go through Linear + LayerNorm first (s2-6B) */
    float fusion_proj_norm_eps;
    /* tokenizer: */
    const char *tokenizer;  /* "wordpiece" or "clip_bpe" */
    const char *vocab_file; /* in the model directory */
    int max_len;            /* query length in tokens (BERT default 32, CLIP 77) */
    int pre_text;           /* 1 = enc_tok_pre_text caption cleaning before tokenising */
} enc_text_config;

/* The audio tower's numbers from config.json "audio" (s2-6B BEATs, docs/model-format.md). */
typedef struct enc_audio_config {
    const char *arch;          /* "beats" */
    int width, layers, heads, ffn;
    int patch_dim, patch_size; /* D0 (patch embedding channels), P */
    int mel_bins, frames;      /* fbank input: frames x mel_bins (998 x 64 = 10 s) */
    int sample_rate;           /* 16000 */
    float fbank_mean, fbank_std;
    int conv_pos, conv_pos_groups;
    int num_buckets, max_distance;
    int gru_rel_pos, deep_norm;
    float norm_eps;
    int av_fusion;             /* 1 = av_fusion Linear(2E -> E) for the joint audio-visual vector */
} enc_audio_config;

/* Everything `vidx model info` shows. Strings live as long as the model. */
typedef struct enc_model_info {
    const char *dir;
    const char *model_id;
    const char *variant;
    int format_version;
    int embed_dim;            /* E */
    int has_vision, has_text, has_audio;
    enc_vision_config vision; /* valid when has_vision */
    enc_text_config text;     /* valid when has_text */
    enc_audio_config audio;   /* valid when has_audio */
    int64_t tensor_count;     /* tensors in model.safetensors */
    int64_t param_count;      /* elements over all tensors */
    uint64_t weights_bytes;   /* size of model.safetensors */
    enc_dtype weights_dtype;  /* dtype of most parameters in the file */
    uint64_t converted_bytes; /* F16/BF16 weights widened to F32 at load (0 for F32 files) */
    int gemm_weights_bf16;    /* 1: the BF16 matrix weights are used as stored (not widened),
                                 for models too big for fp32 (see enc_model_open) */
} enc_model_info;

/* Opens a model directory: parses and checks config.json (format_version 1), maps
 * model.safetensors, checks every tensor the configured towers need (name, shape, dtype) and
 * rejects unknown vision.*, text.* and audio.* tensors; converts F16/BF16 weights to F32 once. Exception
 * (DECISIONS.md §8): BF16 matrix weights stay as stored when widening them would exceed
 * VIDX_WIDEN_LIMIT_GB (default 8 GiB) or VIDX_KEEP_BF16=1; bf16-precision encoders then read
 * them in place, fp32 encoders convert a copy. On failure *out is NULL and err names the file
 * and the field or tensor. Free with enc_model_close(). */
vx_status enc_model_open(const char *dir, enc_model **out, vx_err *err);
/* NULL is fine. Every enc_vision made from the model must be freed first. */
void enc_model_close(enc_model *model);
/* Lives as long as the model. */
const enc_model_info *enc_model_get_info(const enc_model *model);
/* Tensor iteration for `vidx model info --tensors`: i in [0, tensor_count), sorted by name.
 * The pointer lives as long as the model; NULL when out of range. */
const enc_tensor_info *enc_model_tensor(const enc_model *model, int64_t i);

/* ---- the vision tower ------------------------------------------------------------------- */

typedef enum enc_precision {
    ENC_PRECISION_FP32 = 0, /* the fidelity path */
    ENC_PRECISION_BF16,     /* speed mode: GEMMs in bf16 through oneDNN, attention products in
                               bf16 on AMX CPUs; norms, softmax and accumulation in fp32.
                               Checked against fp32: embedding cosine >= 0.999 */
} enc_precision;

/* "fp32" / "bf16". */
const char *enc_precision_name(enc_precision precision);
/* Parses "fp32" / "bf16". */
vx_status enc_precision_parse(const char *text, enc_precision *out, vx_err *err);

/* The vision tower's precision for this model on this CPU when none is asked for
 * (DECISIONS.md §1), with why it was chosen:
 *   - fp32 when the CPU (or VIDX_ISA) lacks bf16 hardware (AVX512-BF16 dot products or AMX
 *     tiles): bf16 would be emulated, slower than fp32;
 *   - bf16 without measuring for a model whose bf16 weights are kept as stored (too big for
 *     fp32, DECISIONS.md §8);
 *   - otherwise, measure != 0: one synthetic 1-frame clip at the model's resolution is embedded
 *     in both precisions; bf16 when the embeddings' cosine is >= 0.999 (about two forwards of
 *     257 tokens: milliseconds for S/14, seconds for 1B), else fp32; measure == 0: bf16,
 *     unmeasured.
 * *cosine (may be NULL) gets the measured cosine, or -1 when nothing was measured; *why (may be
 * NULL) a static phrase for `vidx model info`. Errors only from the measurement (memory). */
vx_status enc_default_precision(const enc_model *model, int measure, enc_precision *out,
                                double *cosine, const char **why, vx_err *err);

typedef struct enc_vision enc_vision;

/* Creates an encoder instance for one input geometry: frames T (0 = the model's frames),
 * image_size S' (0 = the model's image_size; must be a multiple of patch_size), threads
 * (0 = OpenMP's default). pos_embed is interpolated here once (linear in time, bicubic in
 * space, align_corners=False); oneDNN GEMM primitives are created and the arena is allocated
 * here, so the forward allocates nothing. GEMM weights are reordered once into oneDNN's blocked
 * layout when that copy is at most 1 GiB (fp32) or always (bf16, converted on the way; half
 * the size); larger fp32 models are read in place from the mapping. The instance borrows
 * model, which must outlive it. Free with enc_vision_free().
 * Environment (for tests and comparisons): VIDX_ISA=portable|avx2|avx512 caps the SIMD
 * kernels (default: the best the CPU has, AMX included); VIDX_GEMM_PREPACK=0|1 forces the
 * weight layout; VIDX_FUSE=0 runs GELU and the LayerScale residuals as separate passes
 * instead of GEMM epilogues; VIDX_ATTN_BF16=0|1 keeps the bf16 mode's attention in fp32 /
 * forces it to bf16 (default: bf16 where AMX makes it faster). */
vx_status enc_vision_create(const enc_model *model, int frames, int image_size, int threads,
                            enc_precision precision, enc_vision **out, vx_err *err);
/* NULL is fine. */
void enc_vision_free(enc_vision *vis);

int enc_vision_frames(const enc_vision *vis);      /* T */
int enc_vision_image_size(const enc_vision *vis);  /* S' */
int64_t enc_vision_token_count(const enc_vision *vis); /* N = 1 + T·(S'/P)² */
int enc_vision_width(const enc_vision *vis);       /* C */
int enc_vision_embed_dim(const enc_vision *vis);   /* E */
/* What runs the forward, for logs and `vidx embed --json`: e.g. "avx512+amx, fp32 GEMMs
 * (oneDNN, prepacked weights, fused epilogues), fp32 attention". Lives as long as vis. */
const char *enc_vision_backend(const enc_vision *vis);
/* Bytes the instance holds: arena (activations, interpolated pos_embed, attention scratch),
 * bf16 staging, and its packed copy of the GEMM weights when it made one. */
size_t enc_vision_arena_bytes(const enc_vision *vis);

/* pixels: [3, T, S', S'] float32, RGB, normalised (x/255 - mean) / std
 *   -> embedding_out: [E], L2-normalised
 *   -> tokens_out (optional, may be NULL): [N, C], the last block's output, no norm,
 *      order [CLS, t0 (row-major), t1, ...].
 * All buffers are caller-owned. Non-finite output (from non-finite input) is reported as
 * VX_EINVAL. */
vx_status enc_vision_forward(enc_vision *vis, const float *pixels, float *embedding_out,
                             float *tokens_out, vx_err *err);
/* The L2 norm the last enc_vision_forward divided by (embedding · norm = the head's raw output,
 * e.g. s2's vision_proj, which av_fusion takes); 0 before the first forward. */
float enc_vision_embedding_norm(const enc_vision *vis);

/* ---- the text towers (encoder/text.c) ---------------------------------------------------
 *
 * BERT-large (s2-1B/6B, INTERNVIDEO2.md §3.1): embeddings (word + type 0 + position, LN) ->
 * post-LN layers 0 .. fusion_layer-1 -> [CLS] -> text.proj -> L2 (the query vector); the matching
 * head continues with layers fusion_layer .. layers-1 (self-attention, cross-attention to the
 * vision tokens, FFN) -> [CLS] -> itm_head, logit 1 ("match", no softmax).
 * MobileCLIP (clip-S/B/L, §3.3): pre-LN causal transformer, final LN, the token at argmax(id)
 * (<end_of_text>) @ projection -> L2.
 *
 * Padding changes nothing (masked keys weigh exp(-10000) = 0 in float; causal MobileCLIP never
 * looks right), so the forward runs only up to the last real token. The instance owns its
 * scratch; one thread at a time per instance. The matching head's vision buffers grow to the
 * largest token count seen (one allocation when it grows, none otherwise). */

typedef struct enc_text enc_text;
typedef struct enc_tok enc_tok;

/* Loads the tokenizer named by the config from the model directory and allocates the scratch.
 * threads: 0 = OpenMP's default. Borrows model (must outlive it). VX_EUNSUPPORTED when the model
 * has no text tower. Free with enc_text_free(). */
vx_status enc_text_create(const enc_model *model, int threads, enc_text **out, vx_err *err);
void enc_text_free(enc_text *text); /* NULL is fine */
int enc_text_embed_dim(const enc_text *text);
int enc_text_max_len(const enc_text *text);
int enc_text_has_itm(const enc_text *text);
/* The tokenizer (lives as long as text). */
const enc_tok *enc_text_tokenizer(const enc_text *text);
/* "bert" / "mobileclip", and the kernels used (for --json). */
const char *enc_text_backend(const enc_text *text);

/* Tokenises (after enc_tok_pre_text when the config says pre_text) into max_len ids + mask.
 * ids, mask: [max_len], caller-owned. *n_tokens, *truncated may be NULL. Any bytes are valid. */
vx_status enc_text_tokenize(const enc_text *text, const char *utf8, size_t len, int32_t *ids,
                            int32_t *mask, size_t *n_tokens, int *truncated, vx_err *err);
/* ids, mask: [max_len] (as enc_text_tokenize makes them; mask may be NULL = ids != pad)
 *   -> embedding_out: [E], L2-normalised. Ids outside the vocabulary are VX_EINVAL. */
vx_status enc_text_forward_ids(enc_text *text, const int32_t *ids, const int32_t *mask,
                               float *embedding_out, vx_err *err);
/* Tokenise + forward. */
vx_status enc_text_embed(enc_text *text, const char *utf8, size_t len, float *embedding_out,
                         vx_err *err);
/* The matching head (BERT models with itm): ids/mask as above; vision_tokens: [n_tokens,
 * vision_width], the raw tokens of one video from enc_vision_forward (CLS included)
 *   -> *logit_out: itm_head output 1. VX_EUNSUPPORTED without a matching head. */
vx_status enc_text_itm(enc_text *text, const int32_t *ids, const int32_t *mask,
                       const float *vision_tokens, int64_t n_tokens, float *logit_out,
                       vx_err *err);

/* ---- the audio tower (encoder/audio.c) ---------------------------------------------------
 *
 * s2-6B only (INTERNVIDEO2.md §4). Kaldi-compatible log-mel fbank (torchaudio.compliance.kaldi
 * .fbank defaults: 25/10 ms frames, snip edges, DC removed, pre-emphasis 0.97, povey window, FFT
 * 512 through libavutil's av_tx, power spectrum, mel filters 20 Hz..Nyquist, log with a floor of
 * float32 eps, no dither), then (f - 15.41663) / (2·6.55582), zero rows up to 998 frames (10 s),
 * BEATs, mean over the tokens, audio_proj, L2. One thread at a time per instance. */

/* Frames the fbank gives for n samples (0 below one 400-sample window). */
int64_t enc_fbank_frames(int64_t n_samples);
/* samples: [n] at 16 kHz in Kaldi's scale (16-bit range) -> out: [frames, mel_bins] log-mel.
 * Non-finite samples are VX_EINVAL. Allocates its FFT plan per call. */
vx_status enc_fbank(const float *samples, int64_t n, int mel_bins, float *out, int64_t *frames_out,
                    vx_err *err);

typedef struct enc_audio enc_audio;

/* VX_EUNSUPPORTED when the model has no audio tower. Borrows model. Free with enc_audio_free. */
vx_status enc_audio_create(const enc_model *model, int threads, enc_audio **out, vx_err *err);
void enc_audio_free(enc_audio *audio); /* NULL is fine */
int enc_audio_embed_dim(const enc_audio *audio);
int64_t enc_audio_token_count(const enc_audio *audio); /* T = (998/P)·(mel_bins/P) = 248 */
int enc_audio_width(const enc_audio *audio);
int enc_audio_has_fusion(const enc_audio *audio);
/* What runs the forward (for logs and --json); lives as long as audio. */
const char *enc_audio_backend(const enc_audio *audio);
/* Samples the model looks at: what 998 fbank frames cover (159,920, the first 10 s at 16 kHz);
 * longer input is cut there. */
int64_t enc_audio_max_samples(const enc_audio *audio);
/* samples: [n] 16 kHz mono in [-1, 1] (silence, or fewer than 400 samples, gives the all-padding
 * input: a defined vector) -> embedding_out [E] L2-normalised; proj_raw_out (optional) [E] the
 * audio_proj output before normalisation (for enc_audio_fuse); tokens_out (optional) [T, W] the
 * encoder output. Non-finite samples: VX_EINVAL. */
vx_status enc_audio_forward(enc_audio *audio, const float *samples, int64_t n,
                            float *embedding_out, float *proj_raw_out, float *tokens_out,
                            vx_err *err);
/* The joint audio-visual vector: L2(av_fusion(cat[audio_proj_raw, vision_proj_raw])), both [E],
 * before normalisation (vision: enc_vision_forward's embedding times enc_vision_embedding_norm). */
vx_status enc_audio_fuse(const enc_audio *audio, const float *audio_proj_raw,
                         const float *vision_proj_raw, float *joint_out, vx_err *err);

/* ---- text tokenizers (encoder/tokenizer.c) -----------------------------------------------
 *
 * The text tokenizers of the InternVideo2 text towers.
 *
 *   - WordPiece, the bert-large-uncased rules of the s2 models (HF BertTokenizer / `tokenizers`
 *     BertNormalizer + BertPreTokenizer + WordPiece): clean text, CJK ideographs spaced, accents
 *     stripped (NFD, non-spacing marks dropped), lower case, punctuation and whitespace split,
 *     greedy longest-match-first pieces with "##" continuations, words over 100 characters ->
 *     [UNK]; the output is [CLS] pieces [SEP], truncated and padded with [PAD] to max_len.
 *     Special tokens typed in the text ("[SEP]", "[MASK]", exact case) are taken as those tokens,
 *     as HF's tokenizers do. The vocabulary is the model's vocab.txt (one piece a line, id = line
 *     number starting at 0).
 *   - CLIP BPE, open_clip's SimpleTokenizer of "ViT-B-16" (MobileCLIP text tower of clip-S/B/L):
 *     HTML entities unescaped twice, whitespace collapsed, lower case, the pre-split pattern
 *     <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+, bytes
 *     mapped to characters, BPE merges ranked by line, "</w>" word ends; output
 *     <start_of_text>=49406 pieces <end_of_text>=49407, padded with 0 to max_len (77), a
 *     truncated sequence keeps <end_of_text> last. open_clip's ftfy.fix_text is not applied
 *     (mojibake repair, NFC, curly quotes, full-width forms, ligatures stay as typed), and its
 *     \s is taken as Python's str.isspace() (U+001C..U+001F included; not checked against the
 *     `regex` module, which is not installed here).
 *   - enc_tok_pre_text: the caption cleaning InternVideo2 applies before tokenising at evaluation.
 *
 * Text is UTF-8 with a length (NUL bytes allowed). Invalid UTF-8 is decoded as U+FFFD per maximal
 * invalid subsequence (as Rust's from_utf8_lossy and WHATWG decoders do); the WordPiece normalizer
 * then drops U+FFFD like the reference, so invalid bytes vanish.
 *
 * Unicode data: 14.0.0 (encoder/unicode_tables.c, generated by scripts/gen_unicode_tables.py);
 * the WordPiece categories follow the reference's Unicode 8.0 tables (see the script).
 *
 * Ownership and threads: a loaded enc_tok is immutable; any number of threads may encode with it
 * at the same time (it keeps no global or hidden mutable state). enc_tok_encode allocates nothing
 * for WordPiece (fixed buffers on the stack; it stops reading once max_len is filled) and, for
 * CLIP, nothing for a text up to 256 bytes, else one block per call plus one per word longer than
 * 128 bytes. Free the tokenizer with enc_tok_free after the last encode.
 *
 * Cost: a 32-token query takes a few microseconds; loading bert's vocab.txt builds a hash table
 * once (about 1 ms).
 *
 * Usage:
 *
 *     vx_err err;
 *     enc_tok *tok = NULL;
 *     if (enc_tok_wordpiece_load("models/s2-1b/vocab.txt", &tok, &err) != VX_OK) { ... }
 *     int32_t ids[32], mask[32];
 *     size_t n = 0;
 *     if (enc_tok_encode(tok, "a dog runs", 10, 32, ids, mask, &n, NULL, &err) != VX_OK) { ... }
 *     // ids: 101 1037 3899 3216 102 0 0 ... ; mask: 1 1 1 1 1 0 0 ... ; n = 5
 *     enc_tok_free(tok);
 */

typedef struct enc_tok enc_tok;

typedef enum enc_tok_kind {
    ENC_TOK_WORDPIECE = 0, /* BERT uncased WordPiece (s2-1B, s2-6B) */
    ENC_TOK_CLIP_BPE,      /* open_clip byte-level BPE (clip-S/B/L MobileCLIP text tower) */
} enc_tok_kind;

/* The longest word WordPiece splits into pieces; a longer one becomes [UNK] (HF's
 * max_input_chars_per_word). */
#define ENC_TOK_WORDPIECE_MAX_WORD_CHARS 100
/* CLIP's context length and special ids (open_clip, bpe_simple_vocab_16e6). */
#define ENC_TOK_CLIP_CONTEXT 77

/* Loads a WordPiece vocabulary: vocab.txt, one piece a line (trailing whitespace and CR trimmed,
 * as HF does), id = line number from 0; a piece listed twice keeps its last line. [PAD], [UNK],
 * [CLS], [SEP] must be present (VX_EFORMAT naming the missing one otherwise); [MASK] is optional.
 * *out is the caller's; free with enc_tok_free. */
vx_status enc_tok_wordpiece_load(const char *vocab_path, enc_tok **out, vx_err *err);
/* The same from vocab.txt's bytes in memory (copied; text need not outlive the call). */
vx_status enc_tok_wordpiece_from_memory(const char *text, size_t len, enc_tok **out, vx_err *err);

/* Loads the CLIP BPE from open_clip's merges file (bpe_simple_vocab_16e6.txt, uncompressed: a
 * version line, then "left right" merges, best first; the first 48,894 are used, as open_clip
 * does). The vocabulary is built the way open_clip builds it: 256 byte characters, the same with
 * "</w>", the merges joined, <start_of_text>, <end_of_text> (49,408 entries). */
vx_status enc_tok_clip_load(const char *merges_path, enc_tok **out, vx_err *err);
vx_status enc_tok_clip_from_memory(const char *text, size_t len, enc_tok **out, vx_err *err);

/* Frees a tokenizer; NULL is fine. */
void enc_tok_free(enc_tok *tok);

enc_tok_kind enc_tok_get_kind(const enc_tok *tok);
/* Number of ids (largest id + 1). */
size_t enc_tok_vocab_size(const enc_tok *tok);
/* The id of a vocabulary entry ("the", "##ing", "[CLS]", "dog</w>"), or -1 when absent. */
int32_t enc_tok_piece_id(const enc_tok *tok, const char *piece, size_t len);
/* The text of an id, NUL-terminated, living as long as tok; NULL when no entry has that id. */
const char *enc_tok_piece(const enc_tok *tok, int32_t id);
/* Ids of the special tokens: for WordPiece [CLS], [SEP], [PAD], [UNK]; for CLIP
 * <start_of_text>, <end_of_text>, 0 (padding), -1 (none). */
typedef struct enc_tok_specials {
    int32_t begin, end, pad, unk;
} enc_tok_specials;
enc_tok_specials enc_tok_get_specials(const enc_tok *tok);

/* Tokenises text (UTF-8, text_len bytes) into exactly max_len ids:
 *   ids:  [max_len] begin, pieces..., end, then pad ids;
 *   mask: [max_len] 1 for begin..end, 0 for padding (may be NULL).
 * Pieces beyond max_len - 2 are cut (WordPiece: [SEP] follows the last kept piece; CLIP: the
 * last kept slot holds <end_of_text>, as open_clip does). *n_tokens (may be NULL): ids that are
 * not padding, *truncated (may be NULL): 1 when pieces were cut. max_len >= 2. Any bytes are
 * valid input; only a bad argument fails (VX_EINVAL), or, for CLIP, a failed scratch allocation
 * (VX_ENOMEM). */
vx_status enc_tok_encode(const enc_tok *tok, const char *text, size_t text_len, size_t max_len,
                         int32_t *ids, int32_t *mask, size_t *n_tokens, int *truncated,
                         vx_err *err);

/* InternVideo2's caption cleaning before tokenisation at evaluation (MM/dataset/utils.py
 * pre_text): lower case as Python's str.lower() (full mappings, final sigma); delete , . ' ! ? " (
 * ) * # : ; ~; '-' and '/' become spaces; "<person>" becomes "person"; every run of two or more
 * whitespace characters (Python's str.isspace) becomes one space; a trailing newline is dropped and
 * spaces stripped at both ends; then, when max_words > 0, only the first max_words space-separated
 * words are kept. Invalid UTF-8 becomes U+FFFD. *out is a new NUL-terminated string (free with
 * free()); *out_len (may be NULL) its length. */
vx_status enc_tok_pre_text(const char *text, size_t text_len, size_t max_words, char **out,
                           size_t *out_len, vx_err *err);

/* The Unicode version of the tables ("14.0.0"). */
const char *enc_tok_unicode_version(void);

#ifdef __cplusplus
}
#endif
#endif
