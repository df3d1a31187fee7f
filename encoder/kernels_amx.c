/* bf16 attention on AMX tiles (Intel Sapphire Rapids and later), for the bf16 speed mode: the
 * same online-softmax tiling as the AVX-512 kernels, but Q·Kᵀ and P·V run as 16×16 tile
 * products (_tile_dpbf16ps) over the operands packed by enc_attn_pack_{k,v}_bf16. Softmax,
 * the running max/sum and the output accumulation stay fp32.
 *
 * Limits (the caller falls back to the AVX-512 kernels otherwise): head_dim a multiple of 32;
 * q rows readable up to the next multiple of 16 past nq. Key blocks are processed whole (the
 * packs are zero-padded to BK), only the valid scores enter the softmax.
 *
 * Every tile register is configured 16 rows × 64 bytes: an A tile is 16 rows × 32 bf16, a B
 * tile 16 pair-rows × 16 columns × 2 bf16, a C tile 16 × 16 fp32. */
#include "enc_internal.h"

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx2,fma")))

typedef struct tile_config {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* CPUID says AMX-BF16 and AMX-TILE, and Linux grants this process the tile state. */
int enc_amx_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return 0;
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18); idempotent per process */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

AMX_FN static inline __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

AMX_FN static inline __m512 exp512(__m512 x) {
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

AMX_FN void enc_attention_bf16_amx(const uint16_t *q, int64_t q_stride, const uint16_t *kt,
                                   const uint16_t *v, float *out, int64_t out_stride, int nq,
                                   int64_t nk, int d, float *scratch) {
    _Static_assert(ENC_ATTN_BK % 64 == 0 && ENC_ATTN_BQ % 16 == 0, "tile sizes");
    tile_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette_id = 1;
    for (int i = 0; i < 8; i++) {
        cfg.rows[i] = 16;
        cfg.colsb[i] = 64;
    }
    _tile_loadconfig(&cfg);

    const int dp = d + 16;
    float *s = scratch;                                            /* [BQ, BK] scores */
    uint16_t *p16 = (uint16_t *)(s + ENC_ATTN_BQ * ENC_ATTN_BK);   /* [BQ, BK] bf16 probs */
    float *o = s + ENC_ATTN_BQ * ENC_ATTN_BK * 3 / 2;              /* [BQ, dp] output */
    float *m = o + (int64_t)ENC_ATTN_BQ * dp;
    float *l = m + ENC_ATTN_BQ;
    int rows16 = (nq + 15) / 16;
    for (int r = 0; r < rows16 * 16; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
        memset(o + (int64_t)r * dp, 0, (size_t)dp * sizeof(float));
        memset(p16 + (int64_t)r * ENC_ATTN_BK, 0, ENC_ATTN_BK * sizeof(uint16_t));
    }
    const int64_t q_bytes = q_stride * 2, kt_bytes = ENC_ATTN_BK * 4, v_bytes = (int64_t)d * 4;
    const int64_t s_bytes = ENC_ATTN_BK * 4, p_bytes = ENC_ATTN_BK * 2, o_bytes = (int64_t)dp * 4;
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        const uint16_t *kblk = kt + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK;
        const uint16_t *vblk = v + (j0 / ENC_ATTN_BK) * d * ENC_ATTN_BK;
        /* S = Q·Kᵀ: per 16 query rows, 64 keys at a time in tiles 0-3; A in 4, B in 5. */
        for (int rb = 0; rb < rows16; rb++) {
            const uint16_t *qa = q + (int64_t)rb * 16 * q_stride;
            for (int kg = 0; kg < ENC_ATTN_BK; kg += 64) {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int ks = 0; ks < d / 32; ks++) {
                    _tile_loadd(4, qa + ks * 32, q_bytes);
                    const uint16_t *kb = kblk + ((int64_t)ks * 16 * ENC_ATTN_BK + kg) * 2;
                    _tile_loadd(5, kb, kt_bytes);
                    _tile_dpbf16ps(0, 4, 5);
                    _tile_loadd(5, kb + 32, kt_bytes);
                    _tile_dpbf16ps(1, 4, 5);
                    _tile_loadd(5, kb + 64, kt_bytes);
                    _tile_dpbf16ps(2, 4, 5);
                    _tile_loadd(5, kb + 96, kt_bytes);
                    _tile_dpbf16ps(3, 4, 5);
                }
                float *sr = s + (int64_t)rb * 16 * ENC_ATTN_BK + kg;
                _tile_stored(0, sr, s_bytes);
                _tile_stored(1, sr + 16, s_bytes);
                _tile_stored(2, sr + 32, s_bytes);
                _tile_stored(3, sr + 48, s_bytes);
            }
        }
        /* Online softmax over the bk valid scores; P rows as bf16, zero past bk. */
        for (int r = 0; r < nq; r++) {
            float *sr = s + r * ENC_ATTN_BK;
            uint16_t *pr = p16 + r * ENC_ATTN_BK;
            __m512 mx = _mm512_set1_ps(m[r]);
            for (int j = 0; j < bk; j += 16)
                mx = _mm512_mask_max_ps(mx, tail_mask(bk - j), mx,
                                        _mm512_maskz_loadu_ps(tail_mask(bk - j), sr + j));
            float mnew = _mm512_reduce_max_ps(mx);
            float alpha = expf(m[r] - mnew);
            __m512 vm = _mm512_set1_ps(mnew), sum = _mm512_setzero_ps();
            for (int j = 0; j < ENC_ATTN_BK; j += 16) {
                __mmask16 k = tail_mask(bk - j > 0 ? bk - j : 0);
                __m512 p = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_loadu_ps(sr + j), vm)));
                sum = _mm512_add_ps(sum, p);
                __m512i u = _mm512_castps_si512(p);
                u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                         _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
                _mm256_storeu_si256((__m256i *)(pr + j), _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
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
        /* O += P·V: per 16 rows, 64 channels at a time in tiles 0-3; P in 4, V pairs in 5. */
        for (int rb = 0; rb < rows16; rb++) {
            const uint16_t *pa = p16 + (int64_t)rb * 16 * ENC_ATTN_BK;
            for (int cg = 0; cg < d; cg += 64) {
                float *oc = o + (int64_t)rb * 16 * dp + cg;
                int nct = d - cg >= 64 ? 4 : (d - cg) / 16; /* d % 32 == 0: 2 or 4 tiles */
                _tile_loadd(0, oc, o_bytes);
                _tile_loadd(1, oc + 16, o_bytes);
                if (nct == 4) {
                    _tile_loadd(2, oc + 32, o_bytes);
                    _tile_loadd(3, oc + 48, o_bytes);
                }
                for (int ks = 0; ks < ENC_ATTN_BK / 32; ks++) {
                    if (ks * 32 >= bk) break; /* the rest of P is zero */
                    _tile_loadd(4, pa + ks * 32, p_bytes);
                    const uint16_t *vb = vblk + ((int64_t)ks * 16 * d + cg) * 2;
                    _tile_loadd(5, vb, v_bytes);
                    _tile_dpbf16ps(0, 4, 5);
                    _tile_loadd(5, vb + 32, v_bytes);
                    _tile_dpbf16ps(1, 4, 5);
                    if (nct == 4) {
                        _tile_loadd(5, vb + 64, v_bytes);
                        _tile_dpbf16ps(2, 4, 5);
                        _tile_loadd(5, vb + 96, v_bytes);
                        _tile_dpbf16ps(3, 4, 5);
                    }
                }
                _tile_stored(0, oc, o_bytes);
                _tile_stored(1, oc + 16, o_bytes);
                if (nct == 4) {
                    _tile_stored(2, oc + 32, o_bytes);
                    _tile_stored(3, oc + 48, o_bytes);
                }
            }
        }
    }
    _tile_release();
    for (int r = 0; r < nq; r++) {
        __m512 inv = _mm512_set1_ps(1.0f / l[r]);
        const float *or_ = o + (int64_t)r * dp;
        for (int c = 0; c < d; c += 16) {
            __mmask16 k = tail_mask(d - c);
            _mm512_mask_storeu_ps(out + r * out_stride + c, k,
                                  _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(k, or_ + c)));
        }
    }
}
#else
int enc_amx_available(void) { return 0; }
void enc_attention_bf16_amx(const uint16_t *q, int64_t q_stride, const uint16_t *kt,
                            const uint16_t *v, float *out, int64_t out_stride, int nq, int64_t nk,
                            int d, float *scratch) {
    (void)q, (void)q_stride, (void)kt, (void)v, (void)out, (void)out_stride, (void)nq, (void)nk,
        (void)d, (void)scratch;
}
#endif
