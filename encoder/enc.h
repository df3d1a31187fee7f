/* encoder/ — the InternVideo2 encoders on the CPU: model directories (config.json +
 * safetensors weights, mapped read-only and validated once), the vision tower (patch embedding,
 * RMSNorm/QK-norm transformer blocks, attention pooling, head, L2 normalisation), and the small
 * file readers they need (safetensors, .npy).
 *
 * Thread safety:
 *   - An enc_model is immutable after enc_model_open() returns: any number of threads may read it
 *     and create encoder instances from it at the same time. Close it only after every instance
 *     created from it has been freed.
 *   - An enc_vision instance owns its scratch memory (one arena) and oneDNN stream: one thread at
 *     a time may call enc_vision_forward() on it. For parallel encoding create one instance per
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

/* Everything `vidx model info` shows. Strings live as long as the model. */
typedef struct enc_model_info {
    const char *dir;
    const char *model_id;
    const char *variant;
    int format_version;
    int embed_dim;            /* E */
    int has_vision, has_text, has_audio;
    enc_vision_config vision; /* valid when has_vision */
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
 * rejects unknown vision.* tensors; converts F16/BF16 weights to F32 once. Exception
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

#ifdef __cplusplus
}
#endif
#endif
