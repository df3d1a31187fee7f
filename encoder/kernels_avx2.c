/* AVX2+FMA kernel table, for CPUs without AVX-512 (and tested against the portable table on
 * every CPU that has AVX2). Compiled with a target attribute, picked at run time. Tails use
 * maskload/maskstore, which never touch the masked-off lanes' memory. */
#include "enc_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Every function here carries the target attribute (gcc and clang alike); callers reach them
 * only through the table, after enc_kernels_for() checked the CPU. */
#define AVX2_FN __attribute__((target("avx2,fma")))

static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes [0, min(n, 8)) on; n <= 0 gives no lanes. */
AVX2_FN static inline __m256i tail8(int64_t n) {
    if (n >= 8) return _mm256_set1_epi32(-1);
    if (n <= 0) return _mm256_setzero_si256();
    return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - n));
}

AVX2_FN static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_FN static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_FN static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

#define LD(p, m) _mm256_maskload_ps((p), (m))
#define ST(p, m, v) _mm256_maskstore_ps((p), (m), (v))

AVX2_FN static void rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, float eps,
                         float scale) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256 v = LD(x + i, tail8(n - i));
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    __m256 vi = _mm256_set1_ps(scale / sqrtf(hsum8(acc) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail8(n - i);
        ST(y + i, k, _mm256_mul_ps(LD(w + i, k), _mm256_mul_ps(LD(x + i, k), vi)));
    }
}

AVX2_FN static void layernorm_avx2(const float *x, const float *w, const float *b, float *y, int64_t n,
                           float eps) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) acc = _mm256_add_ps(acc, LD(x + i, tail8(n - i)));
    float mean = hsum8(acc) / (float)n;
    __m256 vm = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail8(n - i);
        __m256 d = _mm256_and_ps(_mm256_sub_ps(LD(x + i, k), vm), _mm256_castsi256_ps(k));
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    __m256 vi = _mm256_set1_ps(1.0f / sqrtf(hsum8(acc) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail8(n - i);
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(LD(x + i, k), vm), vi);
        ST(y + i, k, _mm256_fmadd_ps(d, LD(w + i, k), LD(b + i, k)));
    }
}

AVX2_FN static void gelu_tanh_avx2(float *x, int64_t n) {
    const __m256 k2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
    const __m256 c = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail8(n - i);
        __m256 v = LD(x + i, m);
        __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
        __m256 e = exp256(_mm256_mul_ps(k2, inner));
        ST(x + i, m, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
}

AVX2_FN static void add_scaled_avx2(float *x, const float *y, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail8(n - i);
        ST(x + i, m, _mm256_fmadd_ps(LD(g + i, m), LD(y + i, m), LD(x + i, m)));
    }
}

AVX2_FN static void attention_avx2(const float *q, int64_t q_stride, const float *kt,
                           const float *v, int64_t v_stride, float *out, int64_t out_stride,
                           int nq, int64_t nk, int d, float *scratch) {
    const int dp = d + 16;
    float *s = scratch;
    float *o = s + ENC_ATTN_BQ * ENC_ATTN_BK;
    float *m = o + (int64_t)ENC_ATTN_BQ * dp;
    float *l = m + ENC_ATTN_BQ;
    for (int r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
        memset(o + (int64_t)r * dp, 0, (size_t)dp * sizeof(float));
    }
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        /* S = Q·Kᵀ: 4 rows × 16 key columns per step (8 accumulators). */
        for (int r = 0; r < nq; r += 4) {
            int rr = nq - r < 4 ? nq - r : 4;
            const float *q0 = q + r * q_stride;
            const float *q1 = rr > 1 ? q0 + q_stride : q0;
            const float *q2 = rr > 2 ? q0 + 2 * q_stride : q0;
            const float *q3 = rr > 3 ? q0 + 3 * q_stride : q0;
            for (int j = 0; j < bk; j += 16) {
                __m256i ka = tail8(bk - j), kb = tail8(bk - j - 8);
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
                const float *kc = kt + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK + j;
                for (int c = 0; c < d; c++, kc += ENC_ATTN_BK) {
                    __m256 kav = LD(kc, ka), kbv = LD(kc + 8, kb);
                    __m256 x0 = _mm256_broadcast_ss(q0 + c), x1 = _mm256_broadcast_ss(q1 + c);
                    __m256 x2 = _mm256_broadcast_ss(q2 + c), x3 = _mm256_broadcast_ss(q3 + c);
                    a0 = _mm256_fmadd_ps(x0, kav, a0);
                    b0 = _mm256_fmadd_ps(x0, kbv, b0);
                    a1 = _mm256_fmadd_ps(x1, kav, a1);
                    b1 = _mm256_fmadd_ps(x1, kbv, b1);
                    a2 = _mm256_fmadd_ps(x2, kav, a2);
                    b2 = _mm256_fmadd_ps(x2, kbv, b2);
                    a3 = _mm256_fmadd_ps(x3, kav, a3);
                    b3 = _mm256_fmadd_ps(x3, kbv, b3);
                }
                float *sr = s + r * ENC_ATTN_BK + j;
                ST(sr, ka, a0);
                ST(sr + 8, kb, b0);
                if (rr > 1) { ST(sr + ENC_ATTN_BK, ka, a1); ST(sr + ENC_ATTN_BK + 8, kb, b1); }
                if (rr > 2) { ST(sr + 2 * ENC_ATTN_BK, ka, a2); ST(sr + 2 * ENC_ATTN_BK + 8, kb, b2); }
                if (rr > 3) { ST(sr + 3 * ENC_ATTN_BK, ka, a3); ST(sr + 3 * ENC_ATTN_BK + 8, kb, b3); }
            }
        }
        for (int r = 0; r < nq; r++) {
            float *sr = s + r * ENC_ATTN_BK;
            __m256 mx = _mm256_set1_ps(m[r]);
            for (int j = 0; j < bk; j += 8) {
                __m256i k = tail8(bk - j);
                __m256 val = _mm256_blendv_ps(mx, LD(sr + j, k), _mm256_castsi256_ps(k));
                mx = _mm256_max_ps(mx, val);
            }
            float mnew = hmax8(mx);
            float alpha = expf(m[r] - mnew);
            __m256 vm = _mm256_set1_ps(mnew), sum = _mm256_setzero_ps();
            for (int j = 0; j < bk; j += 8) {
                __m256i k = tail8(bk - j);
                __m256 p = exp256(_mm256_sub_ps(LD(sr + j, k), vm));
                p = _mm256_and_ps(p, _mm256_castsi256_ps(k));
                ST(sr + j, k, p);
                sum = _mm256_add_ps(sum, p);
            }
            l[r] = l[r] * alpha + hsum8(sum);
            m[r] = mnew;
            if (alpha != 1.0f) {
                __m256 va = _mm256_set1_ps(alpha);
                float *or_ = o + (int64_t)r * dp;
                for (int c = 0; c < d; c += 8)
                    _mm256_storeu_ps(or_ + c, _mm256_mul_ps(va, _mm256_loadu_ps(or_ + c)));
            }
        }
        for (int r = 0; r < nq; r += 4) {
            int rr = nq - r < 4 ? nq - r : 4;
            const float *p0 = s + r * ENC_ATTN_BK;
            const float *p1 = rr > 1 ? p0 + ENC_ATTN_BK : p0;
            const float *p2 = rr > 2 ? p0 + 2 * ENC_ATTN_BK : p0;
            const float *p3 = rr > 3 ? p0 + 3 * ENC_ATTN_BK : p0;
            for (int c = 0; c < d; c += 16) {
                __m256i ka = tail8(d - c), kb = tail8(d - c - 8);
                float *o0 = o + (int64_t)r * dp + c;
                float *o1 = rr > 1 ? o0 + dp : o0;
                float *o2 = rr > 2 ? o0 + 2 * dp : o0;
                float *o3 = rr > 3 ? o0 + 3 * dp : o0;
                __m256 a0 = LD(o0, ka), b0 = LD(o0 + 8, kb);
                __m256 a1 = LD(o1, ka), b1 = LD(o1 + 8, kb);
                __m256 a2 = LD(o2, ka), b2 = LD(o2 + 8, kb);
                __m256 a3 = LD(o3, ka), b3 = LD(o3 + 8, kb);
                const float *vr = v + j0 * v_stride + c;
                for (int j = 0; j < bk; j++, vr += v_stride) {
                    __m256 va = LD(vr, ka), vb = LD(vr + 8, kb);
                    __m256 x0 = _mm256_broadcast_ss(p0 + j), x1 = _mm256_broadcast_ss(p1 + j);
                    __m256 x2 = _mm256_broadcast_ss(p2 + j), x3 = _mm256_broadcast_ss(p3 + j);
                    a0 = _mm256_fmadd_ps(x0, va, a0);
                    b0 = _mm256_fmadd_ps(x0, vb, b0);
                    a1 = _mm256_fmadd_ps(x1, va, a1);
                    b1 = _mm256_fmadd_ps(x1, vb, b1);
                    a2 = _mm256_fmadd_ps(x2, va, a2);
                    b2 = _mm256_fmadd_ps(x2, vb, b2);
                    a3 = _mm256_fmadd_ps(x3, va, a3);
                    b3 = _mm256_fmadd_ps(x3, vb, b3);
                }
                if (rr > 3) { ST(o3, ka, a3); ST(o3 + 8, kb, b3); }
                if (rr > 2) { ST(o2, ka, a2); ST(o2 + 8, kb, b2); }
                if (rr > 1) { ST(o1, ka, a1); ST(o1 + 8, kb, b1); }
                ST(o0, ka, a0);
                ST(o0 + 8, kb, b0);
            }
        }
    }
    for (int r = 0; r < nq; r++) {
        __m256 inv = _mm256_set1_ps(1.0f / l[r]);
        const float *or_ = o + (int64_t)r * dp;
        for (int c = 0; c < d; c += 8) {
            __m256i k = tail8(d - c);
            ST(out + r * out_stride + c, k, _mm256_mul_ps(inv, LD(or_ + c, k)));
        }
    }
}

AVX2_FN static void f32_to_bf16_avx2(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) y[i] = (uint16_t)((u >> 16) | 0x40);
        else y[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}


const enc_kernels enc_kernels_avx2 = {
    .name = "avx2",
    .rmsnorm = rmsnorm_avx2,
    .layernorm = layernorm_avx2,
    .gelu_tanh = gelu_tanh_avx2,
    .add_scaled = add_scaled_avx2,
    .attention = attention_avx2,
    .attention_bf16 = NULL,
    .f32_to_bf16 = f32_to_bf16_avx2,
    .pack_k_bf16 = enc_attn_pack_k_bf16,
    .pack_v_bf16 = enc_attn_pack_v_bf16,
};
#endif
