/* The portable kernel table (plain C, the reference every SIMD table is tested against), the
 * run-time choice of table by CPU features, half-float conversions and the pos_embed
 * interpolation (PyTorch F.interpolate 'linear' / 'bicubic', align_corners=False). */
#include "enc_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const enc_kernels enc_kernels_avx2;
extern const enc_kernels enc_kernels_avx512;
extern const enc_kernels enc_kernels_avx512_bf16;
extern const enc_kernels enc_kernels_avx512_amx;

/* ---- portable kernels ------------------------------------------------------------------- */

static void rmsnorm_portable(const float *x, const float *w, float *y, int64_t n, float eps,
                             float scale) {
    float ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    float inv = scale / sqrtf(ss / (float)n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = w[i] * (x[i] * inv);
}

static void layernorm_portable(const float *x, const float *w, const float *b, float *y,
                               int64_t n, float eps) {
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    float mean = sum / (float)n;
    float var = 0;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    float inv = 1.0f / sqrtf(var / (float)n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

static void gelu_tanh_portable(float *x, int64_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

static void add_scaled_portable(float *x, const float *y, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += g[i] * y[i];
}

void enc_attn_pack_k(const float *k, int64_t k_stride, int64_t nk, int d, float *kt) {
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        float *blk = kt + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK;
        int64_t bk = nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK;
        if (bk < ENC_ATTN_BK) memset(blk, 0, (size_t)d * ENC_ATTN_BK * sizeof(float));
        for (int64_t j = 0; j < bk; j++) {
            const float *kr = k + (j0 + j) * k_stride;
            for (int c = 0; c < d; c++) blk[c * ENC_ATTN_BK + j] = kr[c];
        }
    }
}

static inline uint16_t bf16_round(float f);

void enc_attn_pack_k_bf16(const float *k, int64_t k_stride, int64_t nk, int d, int dp,
                          uint16_t *kt) {
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        uint16_t *blk = kt + (j0 / ENC_ATTN_BK) * dp * ENC_ATTN_BK;
        int64_t bk = nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK;
        if (bk < ENC_ATTN_BK) memset(blk, 0, (size_t)dp * ENC_ATTN_BK * sizeof(uint16_t));
        else if (dp > d)
            memset(blk + (int64_t)d * ENC_ATTN_BK, 0, (size_t)(dp - d) * ENC_ATTN_BK * 2);
        /* pair-row outer, keys inner: the writes run contiguously (two halves per key) */
        for (int cp = 0; cp < d / 2; cp++) {
            uint16_t *row = blk + (int64_t)cp * ENC_ATTN_BK * 2;
            const float *src = k + j0 * k_stride + 2 * cp;
            for (int64_t j = 0; j < bk; j++, src += k_stride) {
                row[2 * j] = bf16_round(src[0]);
                row[2 * j + 1] = bf16_round(src[1]);
            }
        }
    }
}

void enc_attn_pack_v_bf16(const float *v, int64_t v_stride, int64_t nk, int d, int dp,
                          uint16_t *vp) {
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        uint16_t *blk = vp + (j0 / ENC_ATTN_BK) * dp * ENC_ATTN_BK;
        int64_t bk = nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK;
        if (bk < ENC_ATTN_BK || dp > d)
            memset(blk, 0, (size_t)dp * ENC_ATTN_BK * sizeof(uint16_t));
        for (int64_t j = 0; j < bk; j++) {
            const float *vr = v + (j0 + j) * v_stride;
            uint16_t *dst = blk + (j / 2) * dp * 2 + (j & 1);
            for (int c = 0; c < d; c++) dst[c * 2] = bf16_round(vr[c]);
        }
    }
}

static void attention_portable(const float *q, int64_t q_stride, const float *kt, const float *v,
                               int64_t v_stride, float *out, int64_t out_stride, int nq,
                               int64_t nk, int d, float *scratch) {
    float *s = scratch;                          /* [BQ, BK] scores, then probabilities */
    float *o = s + ENC_ATTN_BQ * ENC_ATTN_BK;    /* [BQ, d] running output */
    float *m = o + (int64_t)ENC_ATTN_BQ * (d + 16); /* [BQ] running max */
    float *l = m + ENC_ATTN_BQ;                  /* [BQ] running sum */
    for (int r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
        memset(o + (int64_t)r * d, 0, (size_t)d * sizeof(float));
    }
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        for (int r = 0; r < nq; r++) {
            float *sr = s + r * ENC_ATTN_BK;
            const float *qr = q + r * q_stride;
            for (int j = 0; j < bk; j++) sr[j] = 0;
            for (int c = 0; c < d; c++) {
                const float *kc = kt + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK + c * ENC_ATTN_BK;
                float qc = qr[c];
                for (int j = 0; j < bk; j++) sr[j] += qc * kc[j];
            }
            float mx = m[r];
            for (int j = 0; j < bk; j++) mx = sr[j] > mx ? sr[j] : mx;
            float alpha = expf(m[r] - mx); /* exp(-inf) = 0 on the first block */
            float sum = 0;
            for (int j = 0; j < bk; j++) {
                sr[j] = expf(sr[j] - mx);
                sum += sr[j];
            }
            l[r] = l[r] * alpha + sum;
            m[r] = mx;
            float *or_ = o + (int64_t)r * d;
            for (int c = 0; c < d; c++) or_[c] *= alpha;
            for (int j = 0; j < bk; j++) {
                const float *vj = v + (j0 + j) * v_stride;
                float p = sr[j];
                for (int c = 0; c < d; c++) or_[c] += p * vj[c];
            }
        }
    }
    for (int r = 0; r < nq; r++) {
        float inv = 1.0f / l[r];
        for (int c = 0; c < d; c++) out[r * out_stride + c] = o[(int64_t)r * d + c] * inv;
    }
}

static inline uint16_t f32_to_bf16_one(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline uint16_t bf16_round(float f) { return f32_to_bf16_one(f); }

static void f32_to_bf16_portable(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16_one(x[i]);
}

static const enc_kernels enc_kernels_portable = {
    .name = "portable",
    .rmsnorm = rmsnorm_portable,
    .layernorm = layernorm_portable,
    .gelu_tanh = gelu_tanh_portable,
    .add_scaled = add_scaled_portable,
    .attention = attention_portable,
    .attention_bf16 = NULL,
    .attention_bf16_dmul = 0,
    .attention_bf16_fast = 0,
    .f32_to_bf16 = f32_to_bf16_portable,
    .pack_k_bf16 = enc_attn_pack_k_bf16,
    .pack_v_bf16 = enc_attn_pack_v_bf16,
};

/* ---- dispatch ---------------------------------------------------------------------------- */

const char *enc_isa_name(enc_isa isa) {
    switch (isa) {
    case ENC_ISA_PORTABLE: return "portable";
    case ENC_ISA_AVX2: return "avx2";
    case ENC_ISA_AVX512: return "avx512";
    case ENC_ISA_AMX: return "amx";
    case ENC_ISA_COUNT: break;
    }
    return "?";
}

const enc_kernels *enc_kernels_for(enc_isa isa) {
    switch (isa) {
    case ENC_ISA_PORTABLE: return &enc_kernels_portable;
#if defined(__x86_64__)
    case ENC_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &enc_kernels_avx2
                                                                              : NULL;
    case ENC_ISA_AVX512:
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512f")) return NULL;
        if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl"))
            return &enc_kernels_avx512_bf16;
        return &enc_kernels_avx512;
    case ENC_ISA_AMX:
        __builtin_cpu_init();
        /* the AMX kernels use AVX512-BF16 conversions too (every AMX CPU has them) */
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16") &&
            enc_amx_available())
            return &enc_kernels_avx512_amx;
        return NULL;
#else
    case ENC_ISA_AVX2:
    case ENC_ISA_AVX512:
    case ENC_ISA_AMX: return NULL;
#endif
    case ENC_ISA_COUNT: break;
    }
    return NULL;
}

const enc_kernels *enc_kernels_best(void) {
    enc_isa cap = ENC_ISA_AMX;
    const char *env = getenv("VIDX_ISA");
    if (env && strcmp(env, "portable") == 0) cap = ENC_ISA_PORTABLE;
    else if (env && strcmp(env, "avx2") == 0) cap = ENC_ISA_AVX2;
    else if (env && strcmp(env, "avx512") == 0) cap = ENC_ISA_AVX512;
    for (int isa = cap; isa > ENC_ISA_PORTABLE; isa--) {
        const enc_kernels *k = enc_kernels_for((enc_isa)isa);
        if (k) return k;
    }
    return &enc_kernels_portable;
}

/* ---- scalar helpers -------------------------------------------------------------------- */

void enc_gelu_erf(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

float enc_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float enc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- interpolation ----------------------------------------------------------------------- */

void enc_interp_linear(const float *src, int64_t t_in, float *dst, int64_t t_out, int64_t c,
                       int64_t row_stride_src, int64_t row_stride_dst) {
    /* PyTorch upsample_linear1d, align_corners=False: src = (i + 0.5)·in/out − 0.5, clamped
     * at 0; the right neighbour is clamped at in − 1. */
    float scale = (float)t_in / (float)t_out;
    for (int64_t i = 0; i < t_out; i++) {
        float pos = scale * ((float)i + 0.5f) - 0.5f;
        if (pos < 0) pos = 0;
        int64_t i0 = (int64_t)pos;
        int64_t i1 = i0 + (i0 < t_in - 1 ? 1 : 0);
        float l1 = pos - (float)i0, l0 = 1.0f - l1;
        const float *a = src + i0 * row_stride_src, *b = src + i1 * row_stride_src;
        float *d = dst + i * row_stride_dst;
        for (int64_t k = 0; k < c; k++) d[k] = l0 * a[k] + l1 * b[k];
    }
}

static void cubic_weights(float t, float w[4]) {
    const float a = -0.75f;
    /* PyTorch's cubic_convolution1 (|x| <= 1) and cubic_convolution2 (1 < |x| < 2). */
    float x1 = t + 1.0f, x2 = t, x3 = 1.0f - t, x4 = 2.0f - t;
    w[0] = ((a * x1 - 5.0f * a) * x1 + 8.0f * a) * x1 - 4.0f * a;
    w[1] = ((a + 2.0f) * x2 - (a + 3.0f)) * x2 * x2 + 1.0f;
    w[2] = ((a + 2.0f) * x3 - (a + 3.0f)) * x3 * x3 + 1.0f;
    w[3] = ((a * x4 - 5.0f * a) * x4 + 8.0f * a) * x4 - 4.0f * a;
}

static int64_t clampi(int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

void enc_interp_bicubic(const float *src, int64_t g_in, float *dst, int64_t g_out, int64_t c) {
    float scale = (float)g_in / (float)g_out;
    for (int64_t oy = 0; oy < g_out; oy++) {
        float sy = scale * ((float)oy + 0.5f) - 0.5f; /* not clamped for cubic */
        int64_t iy = (int64_t)floorf(sy);
        float wy[4];
        cubic_weights(sy - (float)iy, wy);
        for (int64_t ox = 0; ox < g_out; ox++) {
            float sx = scale * ((float)ox + 0.5f) - 0.5f;
            int64_t ix = (int64_t)floorf(sx);
            float wx[4];
            cubic_weights(sx - (float)ix, wx);
            float *d = dst + (oy * g_out + ox) * c;
            for (int64_t k = 0; k < c; k++) d[k] = 0;
            /* Rows first, then the column blend, as PyTorch's upsample_bicubic2d does. */
            for (int jy = 0; jy < 4; jy++) {
                const float *row = src + clampi(iy - 1 + jy, g_in - 1) * g_in * c;
                for (int64_t k = 0; k < c; k++) {
                    float v = 0;
                    for (int jx = 0; jx < 4; jx++)
                        v += wx[jx] * row[clampi(ix - 1 + jx, g_in - 1) * c + k];
                    d[k] += wy[jy] * v;
                }
            }
        }
    }
}
