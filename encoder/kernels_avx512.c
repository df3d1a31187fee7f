/* AVX-512F kernel table. Compiled with a target attribute (never -march), picked at run time
 * by enc_kernels_for() only when the CPU reports avx512f. Tails use lane masks, so any width
 * works (head_dim 24, 88, 200, odd test widths). */
#include "enc_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Every function here carries the target attribute (gcc and clang alike); callers reach them
 * only through the table, after enc_kernels_for() checked the CPU. */
#define AVX512_FN __attribute__((target("avx512f,avx2,fma")))

AVX512_FN static inline __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* e^x to about 2 ulp (Cephes polynomial), inputs clamped to [-87.3, 88.3]. */
AVX512_FN static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

AVX512_FN static void rmsnorm_avx512(const float *x, const float *w, float *y, int64_t n, float eps,
                           float scale) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        acc = _mm512_fmadd_ps(v, v, acc);
    }
    float inv = scale / sqrtf(_mm512_reduce_add_ps(acc) / (float)n + eps);
    __m512 vi = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        __m512 g = _mm512_maskz_loadu_ps(k, w + i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(g, _mm512_mul_ps(v, vi)));
    }
}

AVX512_FN static void layernorm_avx512(const float *x, const float *w, const float *b, float *y, int64_t n,
                             float eps) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    float mean = _mm512_reduce_add_ps(acc) / (float)n;
    __m512 vm = _mm512_set1_ps(mean);
    acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vm);
        acc = _mm512_fmadd_ps(d, d, acc);
    }
    __m512 vi = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(acc) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vi);
        __m512 r = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, w + i), _mm512_maskz_loadu_ps(k, b + i));
        _mm512_mask_storeu_ps(y + i, k, r);
    }
}

/* 0.5·x·(1 + tanh(u)) = x · sigmoid(2u), u = √(2/π)(x + 0.044715x³). */
AVX512_FN static void gelu_tanh_avx512(float *x, int64_t n) {
    const __m512 k2 = _mm512_set1_ps(-2.0f * 0.7978845608028654f);
    const __m512 c = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(c, v), _mm512_mul_ps(v, v), v);
        __m512 e = exp512(_mm512_mul_ps(k2, inner));
        _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
}

AVX512_FN static void add_scaled_avx512(float *x, const float *y, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, y + i),
                                   _mm512_maskz_loadu_ps(m, x + i));
        _mm512_mask_storeu_ps(x + i, m, r);
    }
}

#ifndef ATTN_ROWS
#define ATTN_ROWS 8
#endif

AVX512_FN static void attention_avx512(const float *q, int64_t q_stride, const float *kt,
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
        /* S = Q·Kᵀ: ATTN_ROWS query rows × 32 key columns per step (2·ATTN_ROWS
         * accumulators; rows past nq alias the first row and are not stored). */
        const float *kblk = kt + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK;
        for (int r = 0; r < nq; r += ATTN_ROWS) {
            int rr = nq - r < ATTN_ROWS ? nq - r : ATTN_ROWS;
            const float *qr[ATTN_ROWS];
#pragma GCC unroll 8
            for (int i = 0; i < ATTN_ROWS; i++) qr[i] = q + (r + (i < rr ? i : 0)) * q_stride;
            for (int j = 0; j < bk; j += 32) {
                __mmask16 ka = tail_mask(bk - j), kb = tail_mask(bk - j - 16 > 0 ? bk - j - 16 : 0);
                __m512 acc_a[ATTN_ROWS], acc_b[ATTN_ROWS];
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++) acc_a[i] = acc_b[i] = _mm512_setzero_ps();
                const float *kc = kblk + j;
                for (int c = 0; c < d; c++, kc += ENC_ATTN_BK) {
                    /* blocks are padded to BK with zeros: full loads stay inside */
                    __m512 kav = _mm512_loadu_ps(kc), kbv = _mm512_loadu_ps(kc + 16);
#pragma GCC unroll 8
                    for (int i = 0; i < ATTN_ROWS; i++) {
                        __m512 x = _mm512_set1_ps(qr[i][c]);
                        acc_a[i] = _mm512_fmadd_ps(x, kav, acc_a[i]);
                        acc_b[i] = _mm512_fmadd_ps(x, kbv, acc_b[i]);
                    }
                }
                float *sr = s + r * ENC_ATTN_BK + j;
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++)
                    if (i < rr) {
                        _mm512_mask_storeu_ps(sr + i * ENC_ATTN_BK, ka, acc_a[i]);
                        _mm512_mask_storeu_ps(sr + i * ENC_ATTN_BK + 16, kb, acc_b[i]);
                    }
            }
        }
        /* Online softmax per row: new max, rescale the running output and sum. */
        for (int r = 0; r < nq; r++) {
            float *sr = s + r * ENC_ATTN_BK;
            __m512 mx = _mm512_set1_ps(m[r]);
            for (int j = 0; j < bk; j += 16)
                mx = _mm512_mask_max_ps(mx, tail_mask(bk - j), mx, _mm512_maskz_loadu_ps(tail_mask(bk - j), sr + j));
            float mnew = _mm512_reduce_max_ps(mx);
            float alpha = expf(m[r] - mnew);
            __m512 vm = _mm512_set1_ps(mnew), sum = _mm512_setzero_ps();
            for (int j = 0; j < bk; j += 16) {
                __mmask16 k = tail_mask(bk - j);
                __m512 p = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sr + j), vm));
                p = _mm512_maskz_mov_ps(k, p);
                _mm512_mask_storeu_ps(sr + j, k, p);
                sum = _mm512_add_ps(sum, p);
            }
            l[r] = l[r] * alpha + _mm512_reduce_add_ps(sum);
            m[r] = mnew;
            if (alpha != 1.0f) {
                __m512 va = _mm512_set1_ps(alpha);
                float *or_ = o + (int64_t)r * dp;
                for (int c = 0; c < d; c += 16)
                    _mm512_storeu_ps(or_ + c, _mm512_mul_ps(va, _mm512_loadu_ps(or_ + c)));
            }
        }
        /* O += P·V: ATTN_ROWS rows × 32 output channels per step. */
        for (int r = 0; r < nq; r += ATTN_ROWS) {
            int rr = nq - r < ATTN_ROWS ? nq - r : ATTN_ROWS;
            const float *pr[ATTN_ROWS];
#pragma GCC unroll 8
            for (int i = 0; i < ATTN_ROWS; i++) pr[i] = s + (r + (i < rr ? i : 0)) * ENC_ATTN_BK;
            for (int c = 0; c < d; c += 32) {
                __mmask16 ka = tail_mask(d - c), kb = tail_mask(d - c - 16 > 0 ? d - c - 16 : 0);
                __m512 acc_a[ATTN_ROWS], acc_b[ATTN_ROWS];
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++) {
                    float *oi = o + (int64_t)(r + (i < rr ? i : 0)) * dp + c;
                    acc_a[i] = _mm512_maskz_loadu_ps(ka, oi);
                    acc_b[i] = _mm512_maskz_loadu_ps(kb, oi + 16);
                }
                const float *vr = v + j0 * v_stride + c;
                for (int j = 0; j < bk; j++, vr += v_stride) {
                    __m512 va = _mm512_maskz_loadu_ps(ka, vr), vb = _mm512_maskz_loadu_ps(kb, vr + 16);
#pragma GCC unroll 8
                    for (int i = 0; i < ATTN_ROWS; i++) {
                        __m512 x = _mm512_set1_ps(pr[i][j]);
                        acc_a[i] = _mm512_fmadd_ps(x, va, acc_a[i]);
                        acc_b[i] = _mm512_fmadd_ps(x, vb, acc_b[i]);
                    }
                }
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++)
                    if (i < rr) {
                        float *oi = o + (int64_t)(r + i) * dp + c;
                        _mm512_mask_storeu_ps(oi, ka, acc_a[i]);
                        _mm512_mask_storeu_ps(oi + 16, kb, acc_b[i]);
                    }
            }
        }
    }
    for (int r = 0; r < nq; r++) {
        __m512 inv = _mm512_set1_ps(1.0f / l[r]);
        const float *or_ = o + (int64_t)r * dp;
        for (int c = 0; c < d; c += 16) {
            __mmask16 k = tail_mask(d - c);
            _mm512_mask_storeu_ps(out + r * out_stride + c, k, _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(k, or_ + c)));
        }
    }
}

/* ---- bf16 attention (AVX512-BF16 dot products; the bf16 speed mode) ---------------------- */

#define BF16_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

BF16_FN static inline __m512bh pair_bcast(const uint16_t *p) {
    int32_t t;
    memcpy(&t, p, 4);
    return (__m512bh)_mm512_set1_epi32(t);
}

/* Same tiling as attention_avx512; each dpbf16 instruction consumes a pair of channels (Q·Kᵀ)
 * or a pair of keys (P·V), so half the instructions of the fp32 kernel. Softmax and all
 * accumulation stay fp32. */
BF16_FN static void attention_bf16_avx512(const uint16_t *q, int64_t q_stride,
                                          const uint16_t *kt, const uint16_t *v, float *out,
                                          int64_t out_stride, int nq, int64_t nk, int d,
                                          float *scratch) {
    const int dp = d + 16;
    float *s = scratch;
    uint16_t *p16 = (uint16_t *)(s + ENC_ATTN_BQ * ENC_ATTN_BK);
    float *o = s + ENC_ATTN_BQ * ENC_ATTN_BK * 3 / 2;
    float *m = o + (int64_t)ENC_ATTN_BQ * dp;
    float *l = m + ENC_ATTN_BQ;
    for (int r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
        memset(o + (int64_t)r * dp, 0, (size_t)dp * sizeof(float));
    }
    const int dh = d / 2;
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        const uint16_t *kblk = kt + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK;
        const uint16_t *vblk = v + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK;
        for (int r = 0; r < nq; r += ATTN_ROWS) {
            int rr = nq - r < ATTN_ROWS ? nq - r : ATTN_ROWS;
            const uint16_t *qr[ATTN_ROWS];
#pragma GCC unroll 8
            for (int i = 0; i < ATTN_ROWS; i++) qr[i] = q + (r + (i < rr ? i : 0)) * q_stride;
            for (int j = 0; j < bk; j += 32) {
                __mmask16 ka = tail_mask(bk - j), kb = tail_mask(bk - j - 16 > 0 ? bk - j - 16 : 0);
                __m512 acc_a[ATTN_ROWS], acc_b[ATTN_ROWS];
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++) acc_a[i] = acc_b[i] = _mm512_setzero_ps();
                const uint16_t *kc = kblk + (int64_t)j * 2;
                for (int cp = 0; cp < dh; cp++, kc += 2 * ENC_ATTN_BK) {
                    __m512bh kav = (__m512bh)_mm512_loadu_si512(kc);
                    __m512bh kbv = (__m512bh)_mm512_loadu_si512(kc + 32);
#pragma GCC unroll 8
                    for (int i = 0; i < ATTN_ROWS; i++) {
                        __m512bh x = pair_bcast(qr[i] + 2 * cp);
                        acc_a[i] = _mm512_dpbf16_ps(acc_a[i], x, kav);
                        acc_b[i] = _mm512_dpbf16_ps(acc_b[i], x, kbv);
                    }
                }
                float *sr = s + r * ENC_ATTN_BK + j;
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++)
                    if (i < rr) {
                        _mm512_mask_storeu_ps(sr + i * ENC_ATTN_BK, ka, acc_a[i]);
                        _mm512_mask_storeu_ps(sr + i * ENC_ATTN_BK + 16, kb, acc_b[i]);
                    }
            }
        }
        for (int r = 0; r < nq; r++) {
            float *sr = s + r * ENC_ATTN_BK;
            uint16_t *pr = p16 + r * ENC_ATTN_BK;
            __m512 mx = _mm512_set1_ps(m[r]);
            for (int j = 0; j < bk; j += 16)
                mx = _mm512_mask_max_ps(mx, tail_mask(bk - j), mx, _mm512_maskz_loadu_ps(tail_mask(bk - j), sr + j));
            float mnew = _mm512_reduce_max_ps(mx);
            float alpha = expf(m[r] - mnew);
            __m512 vm = _mm512_set1_ps(mnew), sum = _mm512_setzero_ps();
            for (int j = 0; j < bk; j += 16) {
                __mmask16 k = tail_mask(bk - j);
                __m512 p = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sr + j), vm));
                p = _mm512_maskz_mov_ps(k, p);
                sum = _mm512_add_ps(sum, p);
                /* round to bf16 (nearest even) and store 16 halves */
                __m512i u = _mm512_castps_si512(p);
                u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                         _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
                _mm256_mask_storeu_epi16(pr + j, k, _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
            }
            if (bk & 1) pr[bk] = 0; /* the pair (p[bk-1], p[bk]) is read whole */
            l[r] = l[r] * alpha + _mm512_reduce_add_ps(sum);
            m[r] = mnew;
            if (alpha != 1.0f) {
                __m512 va = _mm512_set1_ps(alpha);
                float *or_ = o + (int64_t)r * dp;
                for (int c = 0; c < d; c += 16)
                    _mm512_storeu_ps(or_ + c, _mm512_mul_ps(va, _mm512_loadu_ps(or_ + c)));
            }
        }
        int bkp = (bk + 1) / 2;
        for (int r = 0; r < nq; r += ATTN_ROWS) {
            int rr = nq - r < ATTN_ROWS ? nq - r : ATTN_ROWS;
            const uint16_t *pr[ATTN_ROWS];
#pragma GCC unroll 8
            for (int i = 0; i < ATTN_ROWS; i++) pr[i] = p16 + (r + (i < rr ? i : 0)) * ENC_ATTN_BK;
            for (int c = 0; c < d; c += 32) {
                __mmask16 ka = tail_mask(d - c), kb = tail_mask(d - c - 16 > 0 ? d - c - 16 : 0);
                __m512 acc_a[ATTN_ROWS], acc_b[ATTN_ROWS];
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++) {
                    float *oi = o + (int64_t)(r + (i < rr ? i : 0)) * dp + c;
                    acc_a[i] = _mm512_maskz_loadu_ps(ka, oi);
                    acc_b[i] = _mm512_maskz_loadu_ps(kb, oi + 16);
                }
                const uint16_t *vr = vblk + (int64_t)c * 2;
                for (int jp = 0; jp < bkp; jp++, vr += 2 * d) {
                    __m512bh va = (__m512bh)_mm512_maskz_loadu_epi32(ka, vr);
                    __m512bh vb = (__m512bh)_mm512_maskz_loadu_epi32(kb, vr + 32);
#pragma GCC unroll 8
                    for (int i = 0; i < ATTN_ROWS; i++) {
                        __m512bh x = pair_bcast(pr[i] + 2 * jp);
                        acc_a[i] = _mm512_dpbf16_ps(acc_a[i], x, va);
                        acc_b[i] = _mm512_dpbf16_ps(acc_b[i], x, vb);
                    }
                }
#pragma GCC unroll 8
                for (int i = 0; i < ATTN_ROWS; i++)
                    if (i < rr) {
                        float *oi = o + (int64_t)(r + i) * dp + c;
                        _mm512_mask_storeu_ps(oi, ka, acc_a[i]);
                        _mm512_mask_storeu_ps(oi + 16, kb, acc_b[i]);
                    }
            }
        }
    }
    for (int r = 0; r < nq; r++) {
        __m512 inv = _mm512_set1_ps(1.0f / l[r]);
        const float *or_ = o + (int64_t)r * dp;
        for (int c = 0; c < d; c += 16) {
            __mmask16 k = tail_mask(d - c);
            _mm512_mask_storeu_ps(out + r * out_stride + c, k, _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(k, or_ + c)));
        }
    }
}

AVX512_FN static void f32_to_bf16_avx512(const float *x, uint16_t *y, int64_t n) {
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i));
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(u), _mm512_castsi512_ps(u), _CMP_UNORD_Q);
        r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) y[i] = (uint16_t)((u >> 16) | 0x40);
        else y[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}


const enc_kernels enc_kernels_avx512 = {
    .name = "avx512",
    .rmsnorm = rmsnorm_avx512,
    .layernorm = layernorm_avx512,
    .gelu_tanh = gelu_tanh_avx512,
    .add_scaled = add_scaled_avx512,
    .attention = attention_avx512,
    .attention_bf16 = NULL,
    .f32_to_bf16 = f32_to_bf16_avx512,
    .pack_k_bf16 = enc_attn_pack_k_bf16,
    .pack_v_bf16 = enc_attn_pack_v_bf16,
};

/* The same table on CPUs with AVX512-BF16 (chosen by enc_kernels_for). */
const enc_kernels enc_kernels_avx512_bf16 = {
    .name = "avx512+bf16",
    .rmsnorm = rmsnorm_avx512,
    .layernorm = layernorm_avx512,
    .gelu_tanh = gelu_tanh_avx512,
    .add_scaled = add_scaled_avx512,
    .attention = attention_avx512,
    .attention_bf16 = attention_bf16_avx512,
    .attention_bf16_dmul = 2,
    .attention_bf16_fast = 0, /* 1.6x slower than the fp32 kernel on the Xeon we measured */
    .f32_to_bf16 = f32_to_bf16_avx512,
    .pack_k_bf16 = enc_attn_pack_k_bf16,
    .pack_v_bf16 = enc_attn_pack_v_bf16,
};

/* AVX-512 with the bf16 attention on AMX tiles (chosen by enc_kernels_for(ENC_ISA_AMX)). */
const enc_kernels enc_kernels_avx512_amx = {
    .name = "avx512+amx",
    .rmsnorm = rmsnorm_avx512,
    .layernorm = layernorm_avx512,
    .gelu_tanh = gelu_tanh_avx512,
    .add_scaled = add_scaled_avx512,
    .attention = attention_avx512,
    .attention_bf16 = enc_attention_bf16_amx,
    .attention_bf16_dmul = 32,
    .attention_bf16_fast = 1,
    .f32_to_bf16 = f32_to_bf16_avx512,
    .pack_k_bf16 = enc_attn_pack_k_bf16_amx,
    .pack_v_bf16 = enc_attn_pack_v_bf16_amx,
};
#endif
