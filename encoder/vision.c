/* The InternVideo2 vision tower (INTERNVIDEO2.md §2) on the CPU: an encoder instance per input
 * geometry (frames, image size) holds the interpolated pos_embed, the GEMM primitives bound to
 * one arena, and per-thread attention scratch, so enc_vision_forward() allocates nothing.
 *
 * Forward, shapes for N = 1 + T·G² tokens of width C:
 *   pixels [3, T, S, S] -> patches [T·G², 3P²] -> x [N, C] (CLS + patch GEMM + pos_embed)
 *   depth × { x += ls1 ⊙ proj(attn(qknorm(qkv(rms1(x)))));  x += ls2 ⊙ fc2(gelu(fc1(rms2(x)))) }
 *   tokens = x; pool: q = LNq(mean x), k = LNk(x)Wk+bk, v = LNv(x)Wv+bv, 16-head attention,
 *   proj -> [D]; head (proj | align | none) -> [E]; L2 normalise. */
#include "enc_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct block_linears {
    enc_linear *qkv, *proj, *fc1, *fc2;
} block_linears;

struct enc_vision {
    const enc_model *model;
    const enc_vision_weights *w;
    enc_vision_config cfg;
    int head_kind;
    enc_precision precision;
    const enc_kernels *kern;
    int T, S, G, threads;
    int64_t N, C, H, D, E, npatch, kpatch;

    enc_gemm_ctx *gemm;
    enc_linear *patch, *pool_k, *pool_v;
    block_linears *blk;

    void *arena;
    size_t arena_bytes;
    float *pos;     /* [N, C] interpolated pos_embed */
    float *x;       /* [N, C] residual stream */
    float *xn;      /* [N, C] normed input / GEMM output */
    float *qkv;     /* [N, 3C] */
    float *kt;      /* [heads, blocked Kᵀ] (enc_attn_pack_k) */
    float *vp;      /* [heads, N, hd] V packed per head */
    float *att;     /* [N, C] attention output */
    float *hid;     /* [N, H] */
    float *patches; /* [T·G², 3P²] */
    float *scratch; /* [threads, attn scratch] */
    int64_t scratch_stride;
    float *pool_vec; /* 4·C + 2·D + E + small */
    uint16_t *x_bf16; /* bf16 mode: [max m·k] */
    uint16_t *hid16;  /* bf16 mode, fused: [N, H] fc1's bf16 output = fc2's input */
    int attn_bf16;    /* bf16 mode with a bf16 attention kernel and an even head_dim */
    uint16_t *q16;    /* [N, C] bf16 queries */
    uint16_t *kt16;   /* [heads, blocked Kᵀ pairs] (enc_attn_pack_k_bf16) */
    uint16_t *v16;    /* [heads, blocked V pairs] (enc_attn_pack_v_bf16) */
    int prepack;      /* GEMM weights reordered into oneDNN's layout (a copy per instance) */
    int fuse;         /* GELU and LayerScale residuals in the GEMM epilogues */
    double prof_s[ENC_PROF_COUNT]; /* seconds per phase, summed over forwards */
    float last_norm;               /* L2 norm of the last embedding before normalisation */
    char backend[160];
};

const char *enc_vision_backend(const enc_vision *v) { return v->backend; }

void enc_vision_profile(const enc_vision *v, double out_s[ENC_PROF_COUNT]) {
    memcpy(out_s, v->prof_s, sizeof(v->prof_s));
}

static inline double prof_now(void) { return (double)vx_now_ns() * 1e-9; }
#define PROF(v, phase, t0)                                                                     \
    do {                                                                                       \
        double t1_ = prof_now();                                                               \
        (v)->prof_s[phase] += t1_ - (t0);                                                      \
        (t0) = t1_;                                                                            \
    } while (0)

const char *enc_precision_name(enc_precision p) { return p == ENC_PRECISION_BF16 ? "bf16" : "fp32"; }

vx_status enc_precision_parse(const char *text, enc_precision *out, vx_err *err) {
    if (text && strcmp(text, "fp32") == 0) *out = ENC_PRECISION_FP32;
    else if (text && strcmp(text, "bf16") == 0) *out = ENC_PRECISION_BF16;
    else
        return vx_fail(err, VX_EINVAL, "precision \"%s\": expected fp32 or bf16",
                       text ? text : "");
    return VX_OK;
}

vx_status enc_default_precision(const enc_model *model, int measure, enc_precision *out,
                                double *cosine, const char **why, vx_err *err) {
    const enc_model_info *info = enc_model_get_info(model);
    const enc_kernels *k = enc_kernels_best();
    const char *reason;
    double cs = -1;
    *out = ENC_PRECISION_FP32;
    /* the tables with a bf16 attention are the ones whose CPU has bf16 dot products */
    if (!info->has_vision) {
        reason = "no vision tower";
    } else if (!k->attention_bf16) {
        reason = "this CPU has no bf16 hardware (AVX512-BF16 or AMX); bf16 would be emulated";
    } else if (info->gemm_weights_bf16) {
        *out = ENC_PRECISION_BF16;
        reason = "bf16 weights kept as stored (too big for fp32)";
    } else if (!measure) {
        *out = ENC_PRECISION_BF16;
        reason = "the CPU has bf16 hardware (agreement with fp32 not measured)";
    } else {
        enc_vision *a = NULL, *b = NULL;
        int64_t S = info->vision.image_size, E = info->embed_dim;
        size_t npx = (size_t)(3 * S * S);
        float *px = malloc(npx * sizeof(float)), *ea = malloc((size_t)E * 2 * sizeof(float));
        vx_status s = px && ea ? VX_OK : vx_fail(err, VX_ENOMEM, "precision check: out of memory");
        if (s == VX_OK) {
            /* a fixed pseudo-random clip, about the scale of normalised pixels */
            uint32_t r = 0x9e3779b9u;
            for (size_t i = 0; i < npx; i++) {
                r ^= r << 13, r ^= r >> 17, r ^= r << 5;
                px[i] = (float)(r >> 8) * (4.0f / 16777216.0f) - 2.0f;
            }
            s = enc_vision_create(model, 1, 0, 0, ENC_PRECISION_FP32, &a, err);
        }
        if (s == VX_OK) s = enc_vision_create(model, 1, 0, 0, ENC_PRECISION_BF16, &b, err);
        if (s == VX_OK) s = enc_vision_forward(a, px, ea, NULL, err);
        if (s == VX_OK) s = enc_vision_forward(b, px, ea + E, NULL, err);
        if (s == VX_OK) {
            double ab = 0, aa = 0, bb = 0;
            for (int64_t i = 0; i < E; i++) {
                ab += (double)ea[i] * ea[E + i];
                aa += (double)ea[i] * ea[i];
                bb += (double)ea[E + i] * ea[E + i];
            }
            cs = ab / sqrt(aa * bb);
        }
        enc_vision_free(a);
        enc_vision_free(b);
        free(px);
        free(ea);
        if (s != VX_OK) return s;
        if (cs >= 0.999) {
            *out = ENC_PRECISION_BF16;
            reason = "the CPU has bf16 hardware and bf16 agrees with fp32 (cosine >= 0.999)";
        } else {
            reason = "bf16 disagrees with fp32 on this model (cosine < 0.999)";
        }
    }
    if (cosine) *cosine = cs;
    if (why) *why = reason;
    return VX_OK;
}

int enc_vision_frames(const enc_vision *v) { return v->T; }
int enc_vision_image_size(const enc_vision *v) { return v->S; }
int64_t enc_vision_token_count(const enc_vision *v) { return v->N; }
int enc_vision_width(const enc_vision *v) { return (int)v->C; }
int enc_vision_embed_dim(const enc_vision *v) { return (int)v->E; }
size_t enc_vision_arena_bytes(const enc_vision *v) { return v->arena_bytes; }
float enc_vision_embedding_norm(const enc_vision *v) { return v ? v->last_norm : 0.0f; }

/* ---- pos_embed for (T, G) ---------------------------------------------------------------- */

/* Builds vis->pos [1 + T·G², C] from the checkpoint's table [1 + T0·G0², C] (INTERNVIDEO2.md
 * §2.3): T = 1 uses img_pos_embed when present, else CLS row + temporal mean; otherwise linear
 * in time; then bicubic in space per frame. tmp holds [max(T, T0)·G0², C]. */
static void build_pos(enc_vision *v, float *tmp) {
    const enc_vision_weights *w = v->w;
    int64_t C = v->C, T0 = v->cfg.frames, G0 = v->cfg.image_size / v->cfg.patch_size;
    int64_t P0 = G0 * G0, T = v->T, G = v->G;
    const float *src_cls;
    if (T == 1) {
        if (v->cfg.img_pos_embed && w->img_pos) {
            src_cls = w->img_pos;
            memcpy(tmp, w->img_pos + C, (size_t)(P0 * C) * sizeof(float));
        } else {
            src_cls = w->pos;
            for (int64_t i = 0; i < P0 * C; i++) {
                float s = 0;
                for (int64_t t = 0; t < T0; t++) s += w->pos[C + t * P0 * C + i];
                tmp[i] = s / (float)T0;
            }
        }
    } else {
        src_cls = w->pos;
        if (T == T0) {
            memcpy(tmp, w->pos + C, (size_t)(T0 * P0 * C) * sizeof(float));
        } else {
            /* Each (spatial position, channel) is a series over time: rows are P0·C apart. */
            enc_interp_linear(w->pos + C, T0, tmp, T, P0 * C, P0 * C, P0 * C);
        }
    }
    memcpy(v->pos, src_cls, (size_t)C * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
        float *dst = v->pos + C + t * G * G * C;
        if (G == G0) memcpy(dst, tmp + t * P0 * C, (size_t)(P0 * C) * sizeof(float));
        else enc_interp_bicubic(tmp + t * P0 * C, G0, dst, G, C);
    }
}

/* ---- creation ----------------------------------------------------------------------------- */

static float *carve(char **cur, int64_t count) {
    float *p = (float *)*cur;
    *cur += ((size_t)count * sizeof(float) + 63) & ~(size_t)63;
    return p;
}

static size_t carve_bytes(int64_t count) { return ((size_t)count * sizeof(float) + 63) & ~(size_t)63; }

static vx_status make_linear(enc_vision *v, int64_t *used, int64_t m, int64_t k, int64_t o,
                             const float *x, enc_gemm_weight w, const float *b, float *y,
                             const enc_linear_post *post, enc_linear **out, vx_err *err) {
    int bf16 = v->precision == ENC_PRECISION_BF16;
    vx_status s = enc_linear_create(v->gemm, m, k, o, x, w, b, y, bf16, v->prepack, v->x_bf16,
                                    post, out, err);
    if (s == VX_OK) *used += (int64_t)enc_linear_packed_bytes(*out);
    return s;
}

vx_status enc_vision_create(const enc_model *model, int frames, int image_size, int threads,
                            enc_precision precision, enc_vision **out, vx_err *err) {
    *out = NULL;
    const enc_model_info *info = enc_model_get_info(model);
    if (!info || !info->has_vision)
        return vx_fail(err, VX_EUNSUPPORTED, "model %s has no vision tower",
                       info ? info->dir : "(null)");
    const enc_vision_config *cfg = &info->vision;
    if (frames == 0) frames = cfg->frames;
    if (image_size == 0) image_size = cfg->image_size;
    if (frames < 1 || frames > 256)
        return vx_fail(err, VX_EINVAL, "vision: frames %d out of range [1, 256]", frames);
    if (image_size < cfg->patch_size || image_size > 4096 || image_size % cfg->patch_size)
        return vx_fail(err, VX_EINVAL,
                       "vision: image size %d must be a multiple of the patch size %d (<= 4096)",
                       image_size, cfg->patch_size);
    int64_t g = image_size / cfg->patch_size;
    if ((int64_t)frames * g * g > 1000000)
        return vx_fail(err, VX_ELIMIT, "vision: %d frames of %d px is too many tokens", frames,
                       image_size);
    if (threads < 0 || threads > 1024)
        return vx_fail(err, VX_EINVAL, "vision: threads %d out of range", threads);
    if (precision != ENC_PRECISION_FP32 && precision != ENC_PRECISION_BF16)
        return vx_fail(err, VX_EINVAL, "vision: unknown precision %d", (int)precision);

    enc_vision *v = calloc(1, sizeof(*v));
    if (!v) return vx_fail(err, VX_ENOMEM, "out of memory");
    v->model = model;
    v->w = enc_model_vision_weights(model);
    v->cfg = *cfg;
    v->head_kind = enc_model_head_kind(model);
    v->precision = precision;
    v->kern = enc_kernels_best();
    v->T = frames;
    v->S = image_size;
    v->G = (int)g;
    v->threads = threads ? threads : omp_get_max_threads();
    v->C = cfg->width;
    v->H = cfg->mlp_hidden;
    v->D = cfg->pool_dim;
    v->E = info->embed_dim;
    v->npatch = (int64_t)frames * g * g;
    v->N = 1 + v->npatch;
    v->kpatch = 3LL * cfg->patch_size * cfg->patch_size;
    int64_t N = v->N, C = v->C, H = v->H, D = v->D, E = v->E;
    int64_t G0 = cfg->image_size / cfg->patch_size;
    int64_t T0 = cfg->frames;
    int64_t hd = C / cfg->heads, phd = C / cfg->pool_heads;
    int64_t maxhd = hd > phd ? hd : phd;
    if (maxhd < ((hd + 31) & ~31LL)) maxhd = (hd + 31) & ~31LL; /* bf16 attention's padding */
    v->scratch_stride = (enc_attn_scratch_floats((int)maxhd) + 15) & ~15LL;
    int64_t tmp_floats = (T0 > frames ? T0 : frames) * G0 * G0 * C;
    int64_t pool_floats = 4 * C + 2 * D + E + 64;

    int64_t kt_floats = cfg->heads * enc_attn_kt_floats(N, (int)hd);
    if (cfg->pool_heads * enc_attn_kt_floats(N, (int)phd) > kt_floats)
        kt_floats = cfg->pool_heads * enc_attn_kt_floats(N, (int)phd);
    size_t bytes = carve_bytes(N * C) * 5 /* pos x xn att vp */ + carve_bytes(kt_floats) +
                   carve_bytes(N * 3 * C) + carve_bytes(N * H) +
                   carve_bytes(v->npatch * v->kpatch) +
                   carve_bytes(v->threads * v->scratch_stride) + carve_bytes(pool_floats);
    vx_status s = VX_OK;
    float *tmp = NULL;
    v->arena_bytes = bytes;
    v->arena = vx_aligned_alloc(64, bytes, err);
    if (!v->arena) {
        s = VX_ENOMEM;
        goto fail;
    }
    memset(v->arena, 0, bytes);
    char *cur = v->arena;
    v->pos = carve(&cur, N * C);
    v->x = carve(&cur, N * C);
    v->xn = carve(&cur, N * C);
    v->kt = carve(&cur, kt_floats);
    v->vp = carve(&cur, N * C);
    v->att = carve(&cur, N * C);
    v->qkv = carve(&cur, N * 3 * C);
    v->hid = carve(&cur, N * H);
    v->patches = carve(&cur, v->npatch * v->kpatch);
    v->scratch = carve(&cur, v->threads * v->scratch_stride);
    v->pool_vec = carve(&cur, pool_floats);

    tmp = vx_aligned_alloc(64, (size_t)tmp_floats * sizeof(float), err);
    if (!tmp) {
        s = VX_ENOMEM;
        goto fail;
    }
    build_pos(v, tmp);
    free(tmp);
    tmp = NULL;

    /* fp32 GEMM weights are reordered into oneDNN's blocked layout (15-20% faster) when that
     * copy is modest; big models read the mapped weights in place (DECISIONS.md §8). bf16
     * packs (converting f32 weights, ~1.8x faster GEMMs) unless the model keeps its bf16
     * weights as stored, which are then read in place. A weight whose type differs from the
     * compute type is always converted once (enc_linear_create). */
    {
        int64_t gemm_weights = C * v->kpatch + 2 * C * C +
                               (int64_t)cfg->depth * (4 * C * C + 2 * H * C);
        const char *env = getenv("VIDX_GEMM_PREPACK");
        if (env) v->prepack = strcmp(env, "0") != 0;
        else if (precision == ENC_PRECISION_BF16) v->prepack = !info->gemm_weights_bf16;
        else v->prepack = gemm_weights * 4 <= ((int64_t)1 << 30);
    }
    {
        const char *env = getenv("VIDX_FUSE");
        v->fuse = !(env && strcmp(env, "0") == 0);
    }
    if (precision == ENC_PRECISION_BF16) {
        int64_t xcount = N * (H > v->kpatch ? H : v->kpatch);
        if (xcount < N * C) xcount = N * C;
        v->x_bf16 = vx_aligned_alloc(64, (size_t)xcount * 2, err);
        if (!v->x_bf16) {
            s = VX_ENOMEM;
            goto fail;
        }
        v->arena_bytes += (size_t)xcount * 2;
        if (v->fuse) {
            v->hid16 = vx_aligned_alloc(64, (size_t)(N * H) * 2, err);
            if (!v->hid16) {
                s = VX_ENOMEM;
                goto fail;
            }
            v->arena_bytes += (size_t)(N * H) * 2;
        }
        /* bf16 attention where it beats the fp32 kernel (AMX tiles); the AVX512-BF16 one ran
         * 1.6x slower than fp32 on the Xeon we measured, so it is opt-in (VIDX_ATTN_BF16=1);
         * VIDX_ATTN_BF16=0 keeps the attention in fp32. */
        const char *env = getenv("VIDX_ATTN_BF16");
        const enc_kernels *k = v->kern;
        int usable = k->attention_bf16 && hd % 2 == 0;
        v->attn_bf16 = usable && (env ? strcmp(env, "1") == 0 : k->attention_bf16_fast);
        if (v->attn_bf16) {
            /* head_dim padded with zero channels to what the kernel takes (AMX: 88 -> 96) */
            int64_t dq = enc_attn_bf16_dpad(k, (int)hd);
            int64_t kv = cfg->heads * enc_attn_kt_floats(N, (int)dq);
            /* rows padded to a whole query block: tile loads read up to 16 rows past nq */
            size_t q16_bytes = (size_t)((N + ENC_ATTN_BQ) * cfg->heads * dq) * 2;
            v->q16 = vx_aligned_alloc(64, q16_bytes, err);
            if (v->q16) memset(v->q16, 0, q16_bytes); /* the padding channels stay zero */
            v->kt16 = v->q16 ? vx_aligned_alloc(64, (size_t)kv * 2, err) : NULL;
            v->v16 = v->kt16 ? vx_aligned_alloc(64, (size_t)kv * 2, err) : NULL;
            if (!v->v16) {
                s = VX_ENOMEM;
                goto fail;
            }
            v->arena_bytes += q16_bytes + (size_t)(2 * kv) * 2;
        }
    }

    s = enc_gemm_ctx_create(&v->gemm, err);
    if (s != VX_OK) goto fail;
    int64_t used = 0;
    const enc_vision_weights *w = v->w;
    s = make_linear(v, &used, v->npatch, v->kpatch, C, v->patches, w->patch_w, w->patch_b,
                    v->x + C, NULL, &v->patch, err);
    if (s != VX_OK) goto fail;
    v->blk = calloc((size_t)cfg->depth, sizeof(*v->blk));
    if (!v->blk) {
        s = vx_fail(err, VX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->depth; i++) {
        const enc_block_weights *b = &w->blocks[i];
        block_linears *bl = &v->blk[i];
        /* Fused: proj and fc2 write x += ls ⊙ (…) straight into the residual stream, fc1 applies
         * GELU in its epilogue (VIDX_FUSE=0 runs the same steps as separate passes). */
        enc_linear_post p_proj = {0, b->ls1, 1, 0},
                        p_fc1 = {cfg->gelu_erf ? ENC_GELU_ERF : ENC_GELU_TANH, NULL, 0,
                                 v->hid16 != NULL},
                        p_fc2 = {0, b->ls2, 1, 0};
        /* bf16: the norms before qkv and fc1 write their bf16 input rows themselves (x NULL) */
        const float *xin = precision == ENC_PRECISION_BF16 ? NULL : v->xn;
        if ((s = make_linear(v, &used, N, C, 3 * C, xin, b->qkv, NULL, v->qkv, NULL, &bl->qkv,
                             err)) ||
            (s = make_linear(v, &used, N, C, C, v->attn_bf16 ? NULL : v->att, b->proj_w, b->proj_b,
                             v->fuse ? v->x : v->xn, v->fuse ? &p_proj : NULL, &bl->proj, err)) ||
            (s = make_linear(v, &used, N, C, H, xin, b->fc1_w, b->fc1_b,
                             v->hid16 ? (float *)v->hid16 : v->hid, v->fuse ? &p_fc1 : NULL,
                             &bl->fc1, err)))
            goto fail;
        if (v->hid16) {
            /* bf16, fused: fc1 emits GELU(…) as bf16, which fc2 reads directly */
            s = enc_linear_create(v->gemm, N, H, C, NULL, b->fc2_w, b->fc2_b, v->x, 1, v->prepack,
                                  v->hid16, &p_fc2, &bl->fc2, err);
            if (s == VX_OK) used += (int64_t)enc_linear_packed_bytes(bl->fc2);
        } else {
            s = make_linear(v, &used, N, H, C, v->hid, b->fc2_w, b->fc2_b, v->fuse ? v->x : v->xn,
                            v->fuse ? &p_fc2 : NULL, &bl->fc2, err);
        }
        if (s) goto fail;
    }
    /* Pool K and V land in the qkv buffer: K at [0, N·C), V at [N·C, 2·N·C). */
    if ((s = make_linear(v, &used, N, C, C, v->xn, w->pool_k_w, w->pool_k_b, v->qkv, NULL,
                         &v->pool_k, err)) ||
        (s = make_linear(v, &used, N, C, C, v->att, w->pool_v_w, w->pool_v_b, v->qkv + N * C,
                         NULL, &v->pool_v, err)))
        goto fail;
    v->arena_bytes += (size_t)used + enc_gemm_ctx_scratch_bytes(v->gemm);
    snprintf(v->backend, sizeof(v->backend), "%s, %s GEMMs (oneDNN, %s weights%s), %s attention",
             v->kern->name, enc_precision_name(precision), v->prepack ? "prepacked" : "in-place",
             v->fuse ? ", fused epilogues" : "", v->attn_bf16 ? "bf16" : "fp32");
    vx_log(VX_LOG_DEBUG,
           "vision encoder: %d frames, %d px, %lld tokens, %d threads, %s, kernels %s, %s GEMM "
           "weights, %.1f MiB scratch and packed weights",
           frames, image_size, (long long)N, v->threads, enc_precision_name(precision),
           v->kern->name, v->prepack ? "prepacked" : "in-place", v->arena_bytes / 1048576.0);
    *out = v;
    return VX_OK;
fail:
    free(tmp);
    vx_err_prefix(err, "vision encoder (%d frames, %d px)", frames, image_size);
    enc_vision_free(v);
    return s;
}

void enc_vision_free(enc_vision *v) {
    if (!v) return;
    if (v->blk)
        for (int i = 0; i < v->cfg.depth; i++) {
            enc_linear_free(v->blk[i].qkv);
            enc_linear_free(v->blk[i].proj);
            enc_linear_free(v->blk[i].fc1);
            enc_linear_free(v->blk[i].fc2);
        }
    free(v->blk);
    enc_linear_free(v->patch);
    enc_linear_free(v->pool_k);
    enc_linear_free(v->pool_v);
    enc_gemm_ctx_free(v->gemm);
    free(v->arena);
    free(v->x_bf16);
    free(v->hid16);
    free(v->q16);
    free(v->kt16);
    free(v->v16);
    free(v);
}

/* ---- forward pieces ----------------------------------------------------------------------- */

/* pixels [3, T, S, S] -> patches [T·G², 3·P·P], columns ordered (channel, row, col) as the
 * Conv3d weight (C, 3, 1, P, P) flattens. */
static void extract_patches(const enc_vision *v, const float *pixels) {
    int64_t P = v->cfg.patch_size, G = v->G, S = v->S, T = v->T;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < v->npatch; p++) {
        int64_t t = p / (G * G), gy = (p / G) % G, gx = p % G;
        float *dst = v->patches + p * v->kpatch;
        for (int64_t c = 0; c < 3; c++)
            for (int64_t py = 0; py < P; py++) {
                const float *row = pixels + ((c * T + t) * S + gy * P + py) * S + gx * P;
                memcpy(dst + (c * P + py) * P, row, (size_t)P * sizeof(float));
            }
    }
}

/* Per head h of width hd = C / heads: K rows (stride ld) -> kt + h·kt_head, blocked Kᵀ
 * (enc_attn_pack_k), and V rows (stride ld) -> vp [heads, n, hd], contiguous per head. */
static void pack_kv(const enc_vision *v, const float *k, const float *vv, int64_t ld, int64_t n,
                    int heads) {
    int64_t hd = v->C / heads, kt_head = enc_attn_kt_floats(n, (int)hd);
    const int64_t rows = 256;
    int64_t chunks = (n + rows - 1) / rows;
#pragma omp parallel for schedule(static)
    for (int64_t task = 0; task < heads * (chunks + 1); task++) {
        int64_t h = task / (chunks + 1), part = task % (chunks + 1);
        if (part == chunks) {
            enc_attn_pack_k(k + h * hd, ld, n, (int)hd, v->kt + h * kt_head);
        } else {
            int64_t j1 = (part + 1) * rows < n ? (part + 1) * rows : n;
            for (int64_t j = part * rows; j < j1; j++)
                memcpy(v->vp + (h * n + j) * hd, vv + j * ld + h * hd, (size_t)hd * sizeof(float));
        }
    }
}

/* All heads of one attention over the packed K/V (pack_kv): q rows at q_ld -> out [nq, C]. */
static void attention_all(const enc_vision *v, const float *q, int64_t q_ld, float *out,
                          int64_t nq, int64_t nk, int heads) {
    int64_t hd = v->C / heads, kt_head = enc_attn_kt_floats(nk, (int)hd);
    int64_t qblocks = (nq + ENC_ATTN_BQ - 1) / ENC_ATTN_BQ;
    const enc_kernels *kern = v->kern;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < heads * qblocks; task++) {
        int64_t h = task / qblocks, i0 = (task % qblocks) * ENC_ATTN_BQ;
        int nrows = (int)(nq - i0 < ENC_ATTN_BQ ? nq - i0 : ENC_ATTN_BQ);
        float *scratch = v->scratch + (int64_t)omp_get_thread_num() * v->scratch_stride;
        kern->attention(q + i0 * q_ld + h * hd, q_ld, v->kt + h * kt_head, v->vp + h * nk * hd,
                        hd, out + i0 * v->C + h * hd, v->C, nrows, nk, (int)hd, scratch);
    }
}

/* bf16 attention: one scaled q row (C floats) -> row r of q16 [N, heads·dq] (dq: head_dim
 * padded for the kernel; the padding channels stay zero). */
static inline void q_to_bf16(const enc_vision *v, const float *q, int64_t r) {
    int heads = v->cfg.heads;
    int64_t hd = v->C / heads, dq = enc_attn_bf16_dpad(v->kern, (int)hd);
    if (dq == hd) {
        v->kern->f32_to_bf16(q, v->q16 + r * v->C, v->C);
    } else {
        for (int h = 0; h < heads; h++)
            v->kern->f32_to_bf16(q + h * hd, v->q16 + r * heads * dq + h * dq, hd);
    }
}

/* bf16 mode, q16 filled (q_to_bf16): K, V per head (rows at stride 3C in qkv) -> kt16, v16
 * packs; then all heads of the bf16 attention -> out [N, C] and, as bf16, x_bf16 [N, C]. */
static void attention_bf16_all(const enc_vision *v, const float *qkv, float *out, int64_t n) {
    int64_t C = v->C;
    int heads = v->cfg.heads;
    const enc_kernels *kern = v->kern;
    int64_t hd = C / heads, dq = enc_attn_bf16_dpad(kern, (int)hd);
    int64_t kv_head = enc_attn_kt_floats(n, (int)dq), q_ld = heads * dq;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < 2 * heads; t++) {
        int64_t h = t / 2;
        if (t % 2 == 0)
            kern->pack_k_bf16(qkv + C + h * hd, 3 * C, n, (int)hd, (int)dq, v->kt16 + h * kv_head);
        else
            kern->pack_v_bf16(qkv + 2 * C + h * hd, 3 * C, n, (int)hd, (int)dq,
                              v->v16 + h * kv_head);
    }
    int64_t qblocks = (n + ENC_ATTN_BQ - 1) / ENC_ATTN_BQ;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < heads * qblocks; task++) {
        int64_t h = task / qblocks, i0 = (task % qblocks) * ENC_ATTN_BQ;
        int nrows = (int)(n - i0 < ENC_ATTN_BQ ? n - i0 : ENC_ATTN_BQ);
        float *scratch = v->scratch + (int64_t)omp_get_thread_num() * v->scratch_stride;
        float *o = out + i0 * C + h * hd;
        kern->attention_bf16(v->q16 + i0 * q_ld + h * dq, q_ld, v->kt16 + h * kv_head,
                             v->v16 + h * kv_head, o, C, nrows, n, (int)hd, scratch);
        /* proj's bf16 input, converted while the rows are in cache (proj has x NULL) */
        for (int r = 0; r < nrows; r++)
            kern->f32_to_bf16(o + (int64_t)r * C, v->x_bf16 + (i0 + r) * C + h * hd, hd);
    }
}

/* y: [out] = W [out, in] · x [in] + b (the pool's single-row linears). */
static void gemv(const float *w, const float *b, const float *x, float *y, int64_t out,
                 int64_t in) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; o++) {
        const float *wr = w + o * in;
        double acc = b ? b[o] : 0.0;
        for (int64_t i = 0; i < in; i++) acc += (double)wr[i] * x[i];
        y[o] = (float)acc;
    }
}

static vx_status block_forward(enc_vision *v, int i, vx_err *err) {
    const enc_block_weights *b = &v->w->blocks[i];
    const block_linears *bl = &v->blk[i];
    const enc_kernels *kern = v->kern;
    int64_t N = v->N, C = v->C, H = v->H;
    float eps = v->cfg.norm_eps;
    float scale = 1.0f / sqrtf((float)(C / v->cfg.heads));
    vx_status s;
    double t0 = prof_now();
    uint16_t *xb = v->precision == ENC_PRECISION_BF16 ? v->x_bf16 : NULL;
    /* bf16: each normed row goes to bf16 while it is in L1 (the GEMM's input, see xin) */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
        kern->rmsnorm(v->x + r * C, b->norm1, v->xn + r * C, C, eps, 1.0f);
        if (xb) kern->f32_to_bf16(v->xn + r * C, xb + r * C, C);
    }
    PROF(v, ENC_PROF_ROWS, t0);
    if ((s = enc_linear_run(bl->qkv, kern, err))) return s;
    PROF(v, ENC_PROF_GEMM, t0);
    /* QK-norm over the full width before the head split; the softmax scale rides on q. */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
        float *q = v->qkv + r * 3 * C, *k = q + C;
        if (v->cfg.qk_norm) {
            kern->rmsnorm(q, b->q_norm, q, C, eps, scale);
            kern->rmsnorm(k, b->k_norm, k, C, eps, 1.0f);
        } else {
            for (int64_t c = 0; c < C; c++) q[c] *= scale;
        }
        if (v->attn_bf16) q_to_bf16(v, q, r);
    }
    if (v->attn_bf16) {
        attention_bf16_all(v, v->qkv, v->att, N);
    } else {
        pack_kv(v, v->qkv + C, v->qkv + 2 * C, 3 * C, N, v->cfg.heads);
        PROF(v, ENC_PROF_ROWS, t0);
        attention_all(v, v->qkv, 3 * C, v->att, N, N, v->cfg.heads);
    }
    PROF(v, ENC_PROF_ATTN, t0);
    if ((s = enc_linear_run(bl->proj, kern, err))) return s;
    PROF(v, ENC_PROF_GEMM, t0);
    int fuse = v->fuse;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
        if (!fuse) kern->add_scaled(v->x + r * C, v->xn + r * C, b->ls1, C);
        kern->rmsnorm(v->x + r * C, b->norm2, v->xn + r * C, C, eps, 1.0f);
        if (xb) kern->f32_to_bf16(v->xn + r * C, xb + r * C, C);
    }
    PROF(v, ENC_PROF_ROWS, t0);
    if ((s = enc_linear_run(bl->fc1, kern, err))) return s;
    PROF(v, ENC_PROF_GEMM, t0);
    if (!fuse) {
        int erf = v->cfg.gelu_erf;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < N; r++) {
            if (erf) enc_gelu_erf(v->hid + r * H, H);
            else kern->gelu_tanh(v->hid + r * H, H);
        }
        PROF(v, ENC_PROF_ROWS, t0);
    }
    if ((s = enc_linear_run(bl->fc2, kern, err))) return s;
    PROF(v, ENC_PROF_GEMM, t0);
    if (!fuse) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < N; r++) kern->add_scaled(v->x + r * C, v->xn + r * C, b->ls2, C);
        PROF(v, ENC_PROF_ROWS, t0);
    }
    return VX_OK;
}

static vx_status pool_forward(enc_vision *v, float *embedding, vx_err *err) {
    const enc_vision_weights *w = v->w;
    const enc_kernels *kern = v->kern;
    int64_t N = v->N, C = v->C, D = v->D, E = v->E;
    float eps = v->cfg.pool_norm_eps;
    float *qmean = v->pool_vec, *qn = qmean + C, *qv = qn + C, *pooled = qv + C;
    float *pout = pooled + C, *hnorm = pout + D;
    vx_status s;
    /* Query = mean over all N raw tokens (CLS included), accumulated in double. */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double acc = 0;
        for (int64_t r = 0; r < N; r++) acc += v->x[r * C + c];
        qmean[c] = (float)(acc / (double)N);
    }
    kern->layernorm(qmean, w->pool_nq_w, w->pool_nq_b, qn, C, eps);
    gemv(w->pool_q_w, w->pool_q_b, qn, qv, C, C);
    int heads = v->cfg.pool_heads;
    float scale = 1.0f / sqrtf((float)(C / heads));
    for (int64_t c = 0; c < C; c++) qv[c] *= scale;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
        kern->layernorm(v->x + r * C, w->pool_nk_w, w->pool_nk_b, v->xn + r * C, C, eps);
        kern->layernorm(v->x + r * C, w->pool_nv_w, w->pool_nv_b, v->att + r * C, C, eps);
    }
    if ((s = enc_linear_run(v->pool_k, kern, err))) return s;
    if ((s = enc_linear_run(v->pool_v, kern, err))) return s;
    const float *K = v->qkv, *V = v->qkv + N * C;
    pack_kv(v, K, V, C, N, heads);
    attention_all(v, qv, C, pooled, 1, N, heads);
    gemv(w->pool_proj_w, w->pool_proj_b, pooled, pout, D, C);
    if (v->head_kind == ENC_HEAD_PROJ) {
        gemv(w->head_w, w->head_b, pout, embedding, E, D);
    } else if (v->head_kind == ENC_HEAD_ALIGN) {
        kern->layernorm(pout, w->head_norm_w, w->head_norm_b, hnorm, D, eps);
        gemv(w->head_w, w->head_b, hnorm, embedding, E, D);
    } else {
        memcpy(embedding, pout, (size_t)E * sizeof(float));
    }
    double ss = 0;
    for (int64_t i = 0; i < E; i++) ss += (double)embedding[i] * embedding[i];
    if (!isfinite(ss))
        return vx_fail(err, VX_EINVAL, "vision: the embedding is not finite (bad input pixels?)");
    double norm = sqrt(ss);
    v->last_norm = (float)norm;
    float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
    for (int64_t i = 0; i < E; i++) embedding[i] *= inv;
    return VX_OK;
}

vx_status enc_vision_forward(enc_vision *v, const float *pixels, float *embedding_out,
                             float *tokens_out, vx_err *err) {
    if (!v || !pixels || !embedding_out)
        return vx_fail(err, VX_EINVAL, "enc_vision_forward: NULL argument");
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(v->threads);
    int64_t N = v->N, C = v->C;
    vx_status s;
    extract_patches(v, pixels);
    if ((s = enc_linear_run(v->patch, v->kern, err))) goto done;
    memcpy(v->x, v->w->cls, (size_t)C * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++)
        for (int64_t c = 0; c < C; c++) v->x[r * C + c] += v->pos[r * C + c];
    for (int i = 0; i < v->cfg.depth; i++)
        if ((s = block_forward(v, i, err))) goto done;
    double t0 = prof_now();
    if (tokens_out) memcpy(tokens_out, v->x, (size_t)(N * C) * sizeof(float));
    s = pool_forward(v, embedding_out, err);
    PROF(v, ENC_PROF_POOL, t0);
done:
    omp_set_num_threads(saved_threads);
    return s;
}
