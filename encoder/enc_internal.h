/* encoder/ internals shared by its source files and by tests/encoder (which checks the kernels
 * directly). Not part of the public API: nothing outside encoder/ and its tests includes this.
 *
 * Three layers:
 *   - enc_kernels: a table of hand-written row kernels (norms, GELU, attention tiles, bf16
 *     conversion), one table per instruction set (portable C, AVX2+FMA, AVX-512), chosen at run
 *     time from the CPU's features (as ggml's CPU backend fills its op table);
 *   - enc_linear: one GEMM y = x·Wᵀ + b through oneDNN's matmul primitive, created once per
 *     shape and bound to fixed buffers, so executing it allocates nothing;
 *   - the model's validated weights (enc_vision_weights), all F32 after load. */
#ifndef ENC_INTERNAL_H
#define ENC_INTERNAL_H

#include "enc.h"

#include <stdint.h>

/* ---- kernels ------------------------------------------------------------------------------ */

typedef enum enc_isa {
    ENC_ISA_PORTABLE = 0,
    ENC_ISA_AVX2,
    ENC_ISA_AVX512, /* + AVX512-BF16 dot products where the CPU has them */
    ENC_ISA_AMX,    /* AVX-512 + AMX tiles for the bf16 attention */
    ENC_ISA_COUNT
} enc_isa;

/* Attention tiles: a query block of at most ENC_ATTN_BQ rows meets keys ENC_ATTN_BK at a time;
 * the scratch per call holds the score tile, the running output and the softmax state. */
#ifndef ENC_ATTN_BQ
#define ENC_ATTN_BQ 64
#endif
#ifndef ENC_ATTN_BK
#define ENC_ATTN_BK 128
#endif
static inline int64_t enc_attn_scratch_floats(int head_dim) {
    return (int64_t)ENC_ATTN_BQ * ENC_ATTN_BK * 3 / 2 /* scores f32 + probabilities bf16 */ +
           (int64_t)ENC_ATTN_BQ * (head_dim + 16) + 17 * ENC_ATTN_BQ /* max, sum lanes */ + 64;
}

/* Floats of one head's blocked Kᵀ for nk keys. */
static inline int64_t enc_attn_kt_floats(int64_t nk, int head_dim) {
    return (nk + ENC_ATTN_BK - 1) / ENC_ATTN_BK * ENC_ATTN_BK * head_dim;
}
/* k: [nk, d] rows at k_stride -> kt: [ceil(nk / BK), d, BK] (tail columns zero). */
void enc_attn_pack_k(const float *k, int64_t k_stride, int64_t nk, int d, float *kt);
/* bf16 attention operands (d even), each packed with dp >= d channels (dp even; channels past
 * d are zero, see enc_attn_bf16_dpad), enc_attn_kt_floats(nk, dp) elements each:
 * k -> kt: [ceil(nk / BK), dp/2, BK, 2]: channel pairs per key, so one 32-bit lane holds the
 *      pair a bf16 dot-product instruction consumes;
 * v -> vp: [ceil(nk / BK), BK/2, dp, 2]: key pairs per channel. Tails are zero.
 * The portable versions; the kernel tables hold the fastest (bit-identical on finite input). */
void enc_attn_pack_k_bf16(const float *k, int64_t k_stride, int64_t nk, int d, int dp,
                          uint16_t *kt);
void enc_attn_pack_v_bf16(const float *v, int64_t v_stride, int64_t nk, int d, int dp,
                          uint16_t *vp);

typedef struct enc_kernels {
    const char *name;
    /* x: [n] -> y: [n] = scale · w ⊙ x / sqrt(mean(x²) + eps); y may equal x. */
    void (*rmsnorm)(const float *x, const float *w, float *y, int64_t n, float eps, float scale);
    /* x: [n] -> y: [n] = w ⊙ (x − mean) / sqrt(var + eps) + b; y may equal x. */
    void (*layernorm)(const float *x, const float *w, const float *b, float *y, int64_t n,
                      float eps);
    /* x: [n] in place: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
    void (*gelu_tanh)(float *x, int64_t n);
    /* x: [n] += g ⊙ y (LayerScale residual). */
    void (*add_scaled)(float *x, const float *y, const float *g, int64_t n);
    /* One head, one query block, all keys, online softmax (no [nq, nk] matrix):
     * q: [nq, d] rows at q_stride (already scaled by d^-0.5);
     * kt: K transposed in key blocks, [ceil(nk / BK), d, BK] (enc_attn_pack_k): each block is
     *     contiguous, so the kernel walks it without cache-set conflicts;
     * v: [nk, d] rows at v_stride -> out: [nq, d] rows at out_stride.
     * nq <= ENC_ATTN_BQ; scratch: enc_attn_scratch_floats(d) floats, 64-byte aligned. */
    void (*attention)(const float *q, int64_t q_stride, const float *kt, const float *v,
                      int64_t v_stride, float *out, int64_t out_stride, int nq, int64_t nk,
                      int d, float *scratch);
    /* The same attention with bf16 operands and fp32 softmax and accumulation (the bf16 speed
     * mode), d even: the operands hold dp = enc_attn_bf16_dpad(table, d) channels, zero past
     * d: q: [nq, dp] bf16 rows at q_stride; kt / v packed by pack_{k,v}_bf16 with dp; out gets
     * d channels. scratch: enc_attn_scratch_floats(dp) floats. NULL in tables whose CPU lacks
     * bf16 dot products (the caller then runs fp32). */
    void (*attention_bf16)(const uint16_t *q, int64_t q_stride, const uint16_t *kt,
                           const uint16_t *v, float *out, int64_t out_stride, int nq, int64_t nk,
                           int d, float *scratch);
    /* attention_bf16 pads head_dim to a multiple of attention_bf16_dmul (AMX: 32, so the 1B's
     * 88 runs as 96) and needs q rows readable up to the next multiple of 16 past nq; it is
     * used by default (bf16 mode) only when it beats the fp32 kernel (attention_bf16_fast),
     * else on request (VIDX_ATTN_BF16=1). */
    int attention_bf16_dmul;
    int attention_bf16_fast;
    /* x: [n] f32 -> y: [n] bf16 (round to nearest even). */
    void (*f32_to_bf16)(const float *x, uint16_t *y, int64_t n);
    /* enc_attn_pack_{k,v}_bf16 (the same contract and output). */
    void (*pack_k_bf16)(const float *k, int64_t k_stride, int64_t nk, int d, int dp, uint16_t *kt);
    void (*pack_v_bf16)(const float *v, int64_t v_stride, int64_t nk, int d, int dp, uint16_t *vp);
} enc_kernels;

/* The channel count the table's bf16 attention operands are padded to. */
static inline int enc_attn_bf16_dpad(const enc_kernels *k, int d) {
    int m = k->attention_bf16_dmul > 2 ? k->attention_bf16_dmul : 2;
    return (d + m - 1) / m * m;
}

/* The table for isa, or NULL when this CPU (or this build) lacks it. */
const enc_kernels *enc_kernels_for(enc_isa isa);
/* The fastest table this CPU supports (VIDX_ISA=portable|avx2|avx512 caps it, for tests and
 * comparisons). */
const enc_kernels *enc_kernels_best(void);
const char *enc_isa_name(enc_isa isa);

/* AMX: CPU support and the Linux permission for tile state (requested here, once per process
 * is enough); the AMX bf16 attention (see kernels_amx.c). */
int enc_amx_available(void);
void enc_attention_bf16_amx(const uint16_t *q, int64_t q_stride, const uint16_t *kt,
                            const uint16_t *v, float *out, int64_t out_stride, int nq, int64_t nk,
                            int d, float *scratch);
void enc_attn_pack_k_bf16_amx(const float *k, int64_t k_stride, int64_t nk, int d, int dp,
                              uint16_t *kt);
void enc_attn_pack_v_bf16_amx(const float *v, int64_t v_stride, int64_t nk, int d, int dp,
                              uint16_t *vp);

/* Exact GELU (erf); scalar on every path: no released model uses it on a hot path. */
void enc_gelu_erf(float *x, int64_t n);
float enc_bf16_to_f32(uint16_t h);
float enc_f16_to_f32(uint16_t h);

/* ---- pos_embed interpolation (PyTorch F.interpolate semantics, align_corners=False) ------ */

/* src: [t_in, C] rows -> dst: [t_out, C], 'linear' along the row axis; applied per spatial
 * position by the caller through strides: rows are `row_stride` floats apart. */
void enc_interp_linear(const float *src, int64_t t_in, float *dst, int64_t t_out, int64_t c,
                       int64_t row_stride_src, int64_t row_stride_dst);
/* src: [g_in, g_in, C] -> dst: [g_out, g_out, C], 'bicubic' (a = −0.75), indices clamped at
 * the edges. */
void enc_interp_bicubic(const float *src, int64_t g_in, float *dst, int64_t g_out, int64_t c);

/* ---- GEMM through oneDNN ----------------------------------------------------------------- */

/* A GEMM weight [o, k] as the model holds it: f32 (mapped or widened at load) or, for models
 * whose bf16 weights are kept as stored (enc_model_info.gemm_weights_bf16), bf16 in the map. */
typedef struct enc_gemm_weight {
    const void *data;
    int bf16;
} enc_gemm_weight;

typedef struct enc_gemm_ctx enc_gemm_ctx;
typedef struct enc_linear enc_linear;

/* One engine + stream + primitive cache (keyed by shape) per encoder instance. */
vx_status enc_gemm_ctx_create(enc_gemm_ctx **out, vx_err *err);
void enc_gemm_ctx_free(enc_gemm_ctx *ctx);
/* The context's oneDNN scratchpad (user mode), shared by its linears. */
size_t enc_gemm_ctx_scratch_bytes(const enc_gemm_ctx *ctx);

/* y: [m, o] = x: [m, k] · wᵀ (w: [o, k], PyTorch layout, f32 or bf16) + b: [o] (b may be NULL).
 * x, b, y are bound now and must stay valid while the linear lives; w too unless prepack.
 * prepack: w is reordered once into oneDNN's preferred blocked layout (a copy the linear owns);
 * forced when w's type differs from the compute type.
 * bf16: the GEMM runs in bf16; x_bf16 ([m, k]) receives x converted before each run (x NULL:
 * the caller writes x_bf16 itself, e.g. a norm that emits bf16 rows); the output stays f32
 * unless post->y_bf16. A bf16 w without prepack is read in place (models kept as stored). */
enum { ENC_GELU_NONE = 0, ENC_GELU_TANH, ENC_GELU_ERF };
/* Work fused into the GEMM's epilogue (oneDNN post-ops), applied in this order:
 * y' = gelu(x·wᵀ + b); y' = col_scale ⊙ y'; y = accumulate ? y + y' : y'. */
typedef struct enc_linear_post {
    int gelu;               /* ENC_GELU_* */
    const float *col_scale; /* [o] or NULL (LayerScale) */
    int accumulate;         /* add into y (the residual) */
    int y_bf16;             /* y is written as bf16 ([m, o] uint16_t at y), e.g. the next
                               bf16 GEMM's input, so no conversion pass is needed */
} enc_linear_post;
vx_status enc_linear_create(enc_gemm_ctx *ctx, int64_t m, int64_t k, int64_t o, const float *x,
                            enc_gemm_weight w, const float *b, float *y, int bf16, int prepack,
                            uint16_t *x_bf16, const enc_linear_post *post, enc_linear **out,
                            vx_err *err);
/* Bytes of the linear's own weight copy (0 when it reads w in place). */
size_t enc_linear_packed_bytes(const enc_linear *lin);
vx_status enc_linear_run(enc_linear *lin, const enc_kernels *kern, vx_err *err);
void enc_linear_free(enc_linear *lin);

/* Naive reference: y = x·wᵀ + b (tests, and tiny GEMVs). */
void enc_linear_ref(int64_t m, int64_t k, int64_t o, const float *x, const float *w,
                    const float *b, float *y);

/* ---- profiling (bench) --------------------------------------------------------------------- */

enum { ENC_PROF_GEMM = 0, ENC_PROF_ATTN, ENC_PROF_ROWS, ENC_PROF_POOL, ENC_PROF_COUNT };
/* Seconds spent per phase, summed over every forward of the instance. */
void enc_vision_profile(const enc_vision *v, double out_s[ENC_PROF_COUNT]);

/* ---- model ------------------------------------------------------------------------------- */

typedef struct enc_block_weights {
    const float *norm1, *q_norm, *k_norm, *proj_b, *ls1;
    const float *norm2, *fc1_b, *fc2_b, *ls2;
    enc_gemm_weight qkv, proj_w, fc1_w, fc2_w;
} enc_block_weights;

typedef struct enc_vision_weights {
    enc_gemm_weight patch_w, pool_k_w, pool_v_w;
    const float *patch_b, *cls, *pos, *img_pos;
    enc_block_weights *blocks; /* [depth] */
    const float *pool_nq_w, *pool_nq_b, *pool_nk_w, *pool_nk_b, *pool_nv_w, *pool_nv_b;
    const float *pool_q_w, *pool_q_b, *pool_k_b, *pool_v_b;
    const float *pool_proj_w, *pool_proj_b;
    const float *head_norm_w, *head_norm_b, *head_w, *head_b; /* head = align / proj */
} enc_vision_weights;

enum { ENC_HEAD_NONE = 0, ENC_HEAD_PROJ, ENC_HEAD_ALIGN };

/* Text tower weights, all F32. BERT: attn/cross q, k, v separate; MobileCLIP: attn_q_w/_b hold
 * the fused qkv [3W, W] / [3W], attn_norm is the pre-norm, ffn_norm the pre-FFN norm. */
typedef struct enc_text_layer_weights {
    const float *attn_q_w, *attn_q_b, *attn_k_w, *attn_k_b, *attn_v_w, *attn_v_b;
    const float *attn_o_w, *attn_o_b, *attn_norm_w, *attn_norm_b;
    const float *cross_q_w, *cross_q_b, *cross_k_w, *cross_k_b, *cross_v_w, *cross_v_b;
    const float *cross_o_w, *cross_o_b, *cross_norm_w, *cross_norm_b; /* NULL below fusion */
    const float *fc1_w, *fc1_b, *fc2_w, *fc2_b, *ffn_norm_w, *ffn_norm_b;
} enc_text_layer_weights;

typedef struct enc_text_weights {
    const float *word, *pos, *type, *embed_norm_w, *embed_norm_b; /* type, embed_norm: BERT */
    enc_text_layer_weights *layers;
    const float *final_norm_w, *final_norm_b; /* MobileCLIP */
    const float *proj_w, *proj_b;             /* [E, W]; proj_b NULL for MobileCLIP */
    const float *itm_w, *itm_b;               /* [2, W] */
    const float *fproj_w, *fproj_b, *fproj_norm_w, *fproj_norm_b; /* s2-6B vision tokens */
} enc_text_weights;

const enc_text_weights *enc_model_text_weights(const enc_model *model);

typedef struct enc_audio_layer_weights {
    const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    const float *gate_w, *gate_b, *gate_a; /* gru_rel_pos: [8, W/H], [8], [H] */
    const float *attn_norm_w, *attn_norm_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    const float *ffn_norm_w, *ffn_norm_b;
} enc_audio_layer_weights;

typedef struct enc_audio_weights {
    const float *patch_w, *patch_b; /* [D0, 1, P, P] = [D0, P·P]; patch_b may be NULL */
    const float *patch_norm_w, *patch_norm_b, *in_proj_w, *in_proj_b;
    const float *pos_conv_w, *pos_conv_b; /* [W, W/G, K] (weight norm materialised) */
    const float *norm_w, *norm_b, *rel_bias; /* rel_bias [buckets, H] */
    enc_audio_layer_weights *layers;
    const float *proj_w, *proj_b, *fusion_w, *fusion_b;
} enc_audio_weights;

const enc_audio_weights *enc_model_audio_weights(const enc_model *model);

/* y: [m, o] = x: [m, k] · wᵀ + b (b may be NULL), rows in parallel (encoder/text.c). */
void enc_rows_linear(const float *x, int64_t m, int64_t k, const float *w, const float *b,
                     float *y, int64_t o);

/* The model's vision weights, all F32 (in the mapping or in the conversion buffer). */
const enc_vision_weights *enc_model_vision_weights(const enc_model *model);
int enc_model_head_kind(const enc_model *model);

#endif
