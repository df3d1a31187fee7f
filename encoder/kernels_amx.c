/* bf16 attention on AMX tiles (Intel Sapphire Rapids and later), for the bf16 speed mode: the
 * same online-softmax tiling as the AVX-512 kernels, but Q·Kᵀ and P·V run as 16×16 tile
 * products (_tile_dpbf16ps) over the operands packed by enc_attn_pack_{k,v}_bf16. Softmax,
 * the running max/sum and the output accumulation stay fp32.
 *
 * Operands padded to a multiple of 32 channels (zeros; enc_attn_bf16_dpad), so any even
 * head_dim runs here (the 1B's 88 as 96); q rows readable up to the next multiple of 16 past
 * nq. Key blocks are processed whole (the packs are zero-padded to BK), only the valid scores
 * enter the softmax.
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

#define AMX_FN                                                                                 \
    __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

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

/* 2^x on 16 lanes to ~1e-4 relative (the probabilities are rounded to bf16, 2^-9, right
 * after): 2^x = 2^n · 2^f with n = round(x), f in [-1/2, 1/2], 2^f by a cubic fitted for
 * relative error, 2^n by vscalefps (0 for very negative x, no clamping needed). */
AMX_FN static inline __m512 exp2_512(__m512 x) {
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.055171966f), f, _mm512_set1_ps(0.24261118f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.69326093f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.99992807f));
    return _mm512_scalef_ps(p, n);
}

/* The running max may lag the true one by this much (log2 units) before the row is rescaled:
 * probabilities then reach 2^8 at most, harmless in fp32 and bf16, and rescaling (a scalar
 * exp and a pass over the output row) happens about once per row instead of once per block. */
#define LAZY_MAX 8.0f

/* One row of scores s (bk valid of ENC_ATTN_BK) -> bf16 probabilities p (zero past bk), with
 * the online-softmax state: m (log2 units), the row sum as 16 partial lanes lv, the output row
 * o (d floats) rescaled when m moves. full: bk == ENC_ATTN_BK (no masks). */
AMX_FN static inline void softmax_row(const float *s, uint16_t *p, float *m, float *lv, float *o,
                                      int d, int bk, int full) {
    const __m512 l2e = _mm512_set1_ps(1.44269504088896341f);
    __m512 mx = _mm512_loadu_ps(s);
    if (full) {
        for (int j = 16; j < ENC_ATTN_BK; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + j));
    } else {
        mx = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(bk), s);
        for (int j = 16; j < bk; j += 16)
            mx = _mm512_mask_max_ps(mx, tail_mask(bk - j), mx, _mm512_loadu_ps(s + j));
    }
    mx = _mm512_mul_ps(mx, l2e);
    if (_mm512_cmp_ps_mask(mx, _mm512_set1_ps(*m + LAZY_MAX), _CMP_GT_OQ)) {
        float mnew = _mm512_reduce_max_ps(mx);
        float alpha = exp2f(*m - mnew); /* 0 on the first block (m = -inf) */
        __m512 va = _mm512_set1_ps(alpha);
        _mm512_storeu_ps(lv, _mm512_mul_ps(va, _mm512_loadu_ps(lv)));
        for (int c = 0; c < d; c += 16)
            _mm512_storeu_ps(o + c, _mm512_mul_ps(va, _mm512_loadu_ps(o + c)));
        *m = mnew;
    }
    __m512 vm = _mm512_set1_ps(*m), sum = _mm512_loadu_ps(lv);
    for (int j = 0; j < ENC_ATTN_BK; j += 32) {
        __m512 p0 = exp2_512(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), l2e, vm));
        __m512 p1 = exp2_512(_mm512_fmsub_ps(_mm512_loadu_ps(s + j + 16), l2e, vm));
        if (!full) {
            p0 = _mm512_maskz_mov_ps(tail_mask(bk - j > 0 ? bk - j : 0), p0);
            p1 = _mm512_maskz_mov_ps(tail_mask(bk - j - 16 > 0 ? bk - j - 16 : 0), p1);
        }
        sum = _mm512_add_ps(sum, _mm512_add_ps(p0, p1));
        _mm512_storeu_si512((void *)(p + j), (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
    }
    _mm512_storeu_ps(lv, sum);
}

/* Tile registers have no renaming: a load into the register a tile product is still reading
 * waits for it. So the operands alternate between two registers each (A: 4/5, B: 6/7) and the
 * loads overlap the products. */

/* S [16, BK] (row stride BK) = 16 q rows · the key block's Kᵀ pairs; 64 keys at a time in
 * tiles 0-3. */
AMX_FN static inline void qk_rows16(const uint16_t *qa, int64_t q_stride, const uint16_t *kblk,
                                    float *s, int d) {
    const int64_t kb_bytes = ENC_ATTN_BK * 4, q_bytes = q_stride * 2;
    for (int kg = 0; kg < ENC_ATTN_BK; kg += 64) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int ks = 0; ks < d / 32; ks += 2) {
            const uint16_t *kb = kblk + ((int64_t)ks * 16 * ENC_ATTN_BK + kg) * 2;
            _tile_loadd(4, qa + ks * 32, q_bytes);
            _tile_loadd(6, kb, kb_bytes);
            _tile_loadd(7, kb + 32, kb_bytes);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_loadd(6, kb + 64, kb_bytes);
            _tile_loadd(7, kb + 96, kb_bytes);
            _tile_dpbf16ps(2, 4, 6);
            _tile_dpbf16ps(3, 4, 7);
            if (ks + 1 == d / 32) break;
            kb += 16 * ENC_ATTN_BK * 2;
            _tile_loadd(5, qa + ks * 32 + 32, q_bytes);
            _tile_loadd(6, kb, kb_bytes);
            _tile_loadd(7, kb + 32, kb_bytes);
            _tile_dpbf16ps(0, 5, 6);
            _tile_dpbf16ps(1, 5, 7);
            _tile_loadd(6, kb + 64, kb_bytes);
            _tile_loadd(7, kb + 96, kb_bytes);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, s + kg, kb_bytes);
        _tile_stored(1, s + kg + 16, kb_bytes);
        _tile_stored(2, s + kg + 32, kb_bytes);
        _tile_stored(3, s + kg + 48, kb_bytes);
    }
}

/* O [16, d] (row stride dp) += P [16, BK] bf16 · the key block's V pairs; 64 channels at a time
 * in tiles 0-3 (d % 32 == 0: 2 or 4 tiles). Key pairs past bk are skipped (P is zero there). */
AMX_FN static inline void pv_rows16(const uint16_t *pa, const uint16_t *vblk, float *o, int dp,
                                    int d, int bk) {
    const int64_t o_bytes = (int64_t)dp * 4, v_bytes = (int64_t)d * 4;
    const int64_t p_bytes = ENC_ATTN_BK * 2;
    int nks = (bk + 31) / 32;
    for (int cg = 0; cg < d; cg += 64) {
        float *oc = o + cg;
        _tile_loadd(0, oc, o_bytes);
        _tile_loadd(1, oc + 16, o_bytes);
        if (d - cg >= 64) {
            _tile_loadd(2, oc + 32, o_bytes);
            _tile_loadd(3, oc + 48, o_bytes);
            for (int ks = 0; ks < nks; ks++) {
                const uint16_t *vb = vblk + ((int64_t)ks * 16 * d + cg) * 2;
                if (ks & 1) _tile_loadd(5, pa + ks * 32, p_bytes);
                else _tile_loadd(4, pa + ks * 32, p_bytes);
                _tile_loadd(6, vb, v_bytes);
                _tile_loadd(7, vb + 32, v_bytes);
                if (ks & 1) {
                    _tile_dpbf16ps(0, 5, 6);
                    _tile_dpbf16ps(1, 5, 7);
                } else {
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                }
                _tile_loadd(6, vb + 64, v_bytes);
                _tile_loadd(7, vb + 96, v_bytes);
                if (ks & 1) {
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                } else {
                    _tile_dpbf16ps(2, 4, 6);
                    _tile_dpbf16ps(3, 4, 7);
                }
            }
            _tile_stored(2, oc + 32, o_bytes);
            _tile_stored(3, oc + 48, o_bytes);
        } else { /* the last 32 channels (d % 64 == 32) */
            for (int ks = 0; ks < nks; ks++) {
                const uint16_t *vb = vblk + ((int64_t)ks * 16 * d + cg) * 2;
                if (ks & 1) {
                    _tile_loadd(5, pa + ks * 32, p_bytes);
                    _tile_loadd(7, vb, v_bytes);
                    _tile_loadd(3, vb + 32, v_bytes);
                    _tile_dpbf16ps(0, 5, 7);
                    _tile_dpbf16ps(1, 5, 3);
                } else {
                    _tile_loadd(4, pa + ks * 32, p_bytes);
                    _tile_loadd(6, vb, v_bytes);
                    _tile_loadd(2, vb + 32, v_bytes);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 2);
                }
            }
        }
        _tile_stored(0, oc, o_bytes);
        _tile_stored(1, oc + 16, o_bytes);
    }
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

    const int d32 = (d + 31) & ~31; /* the operands' padded head width */
    const int dp = d32 + 16;
    /* Only 16 rows of scores and probabilities live at a time: with the key block's K and V
     * (2 × 16 KB at d = 64) they stay in L1; a [BQ, BK] score tile (32 KB) evicted them. */
    float *s = scratch;                                       /* [2][16, BK] scores, ping-pong */
    uint16_t *p16 = (uint16_t *)(s + 2 * 16 * ENC_ATTN_BK);   /* [16, BK] bf16 probabilities */
    float *o = s + 2 * 16 * ENC_ATTN_BK + 8 * ENC_ATTN_BK;    /* [BQ, dp] output */
    float *m = o + (int64_t)ENC_ATTN_BQ * dp;                 /* [BQ] max, log2 units */
    float *lv = m + ENC_ATTN_BQ;                              /* [BQ, 16] partial sums */
    int rows16 = (nq + 15) / 16;
    /* rows past nq (the last block's padding) keep zero probabilities */
    memset(p16, 0, 16 * ENC_ATTN_BK * sizeof(uint16_t));
    for (int r = 0; r < rows16 * 16; r++) {
        m[r] = -INFINITY;
        memset(lv + r * 16, 0, 16 * sizeof(float));
        memset(o + (int64_t)r * dp, 0, (size_t)dp * sizeof(float));
    }
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        const uint16_t *kblk = kt + (j0 / ENC_ATTN_BK) * d32 * ENC_ATTN_BK;
        const uint16_t *vblk = v + (j0 / ENC_ATTN_BK) * d32 * ENC_ATTN_BK;
        /* Per 16 query rows: S = Q·Kᵀ (tiles), the softmax (vectors), O += P·V (tiles). The
         * scores of the next 16 rows are issued before this block's softmax, so the tile unit
         * works while the vector units run the exponentials. */
        qk_rows16(q, q_stride, kblk, s, d32);
        for (int rb = 0; rb < rows16; rb++) {
            float *sb = s + (rb & 1) * 16 * ENC_ATTN_BK;
            if (rb + 1 < rows16)
                qk_rows16(q + (int64_t)(rb + 1) * 16 * q_stride, q_stride, kblk,
                          s + ((rb + 1) & 1) * 16 * ENC_ATTN_BK, d32);
            int nr = nq - rb * 16 < 16 ? nq - rb * 16 : 16;
            float *ob = o + (int64_t)rb * 16 * dp;
            if (bk == ENC_ATTN_BK) {
                for (int r = 0; r < nr; r++)
                    softmax_row(sb + r * ENC_ATTN_BK, p16 + r * ENC_ATTN_BK, m + rb * 16 + r,
                                lv + (rb * 16 + r) * 16, ob + (int64_t)r * dp, d32, bk, 1);
            } else {
                for (int r = 0; r < nr; r++)
                    softmax_row(sb + r * ENC_ATTN_BK, p16 + r * ENC_ATTN_BK, m + rb * 16 + r,
                                lv + (rb * 16 + r) * 16, ob + (int64_t)r * dp, d32, bk, 0);
            }
            pv_rows16(p16, vblk, ob, dp, d32, bk);
        }
    }
    _tile_release();
    for (int r = 0; r < nq; r++) {
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_loadu_ps(lv + r * 16)));
        const float *or_ = o + (int64_t)r * dp;
        for (int c = 0; c < d; c += 16) {
            __mmask16 k = tail_mask(d - c);
            _mm512_mask_storeu_ps(out + r * out_stride + c, k,
                                  _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(k, or_ + c)));
        }
    }
}
/* [a0..a15 | b0..b15] bf16 -> a0 b0 a1 b1 ... (vpermw). */
AMX_FN static inline __m512i interleave16(__m512i ab) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    return _mm512_permutexvar_epi16(idx, ab);
}

/* vcvtne2ps2bf16 rounds to nearest even like bf16_round in kernels.c (finite input). */
AMX_FN void enc_attn_pack_k_bf16_amx(const float *k, int64_t k_stride, int64_t nk, int d, int dp,
                                     uint16_t *kt) {
    const __m512i vidx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                                             5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)k_stride));
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        uint16_t *blk = kt + (j0 / ENC_ATTN_BK) * dp * ENC_ATTN_BK;
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        if (bk < ENC_ATTN_BK) memset(blk, 0, (size_t)dp * ENC_ATTN_BK * sizeof(uint16_t));
        else if (dp > d)
            memset(blk + (int64_t)d * ENC_ATTN_BK, 0, (size_t)(dp - d) * ENC_ATTN_BK * 2);
        for (int cp = 0; cp < d / 2; cp++) {
            uint16_t *row = blk + (int64_t)cp * ENC_ATTN_BK * 2;
            for (int j = 0; j < bk; j += 16) {
                __mmask16 m = tail_mask(bk - j);
                const float *src = k + (j0 + j) * k_stride + 2 * cp;
                __m512 e = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, vidx, src, 4);
                __m512 o = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, vidx, src + 1, 4);
                __m512i p = interleave16((__m512i)_mm512_cvtne2ps_pbh(o, e));
                unsigned keep = bk - j >= 16 ? ~0u : (1u << (2 * (bk - j))) - 1;
                _mm512_mask_storeu_epi16(row + 2 * j, _cvtu32_mask32(keep), p);
            }
        }
    }
}

AMX_FN void enc_attn_pack_v_bf16_amx(const float *v, int64_t v_stride, int64_t nk, int d, int dp,
                                     uint16_t *vp) {
    for (int64_t j0 = 0; j0 < nk; j0 += ENC_ATTN_BK) {
        uint16_t *blk = vp + (j0 / ENC_ATTN_BK) * dp * ENC_ATTN_BK;
        int bk = (int)(nk - j0 < ENC_ATTN_BK ? nk - j0 : ENC_ATTN_BK);
        if (bk < ENC_ATTN_BK) memset(blk, 0, (size_t)dp * ENC_ATTN_BK * sizeof(uint16_t));
        for (int j = 0; j < bk; j += 2) {
            const float *a = v + (j0 + j) * v_stride;
            const float *b = a + v_stride;
            int has_b = j + 1 < bk;
            uint16_t *dst = blk + (int64_t)(j / 2) * dp * 2;
            for (int c = 0; c < d; c += 16) {
                __mmask16 m = tail_mask(d - c);
                __m512 va = _mm512_maskz_loadu_ps(m, a + c);
                __m512 vb = has_b ? _mm512_maskz_loadu_ps(m, b + c) : _mm512_setzero_ps();
                __m512i p = interleave16((__m512i)_mm512_cvtne2ps_pbh(vb, va));
                unsigned keep = d - c >= 16 ? ~0u : (1u << (2 * (d - c))) - 1;
                _mm512_mask_storeu_epi16(dst + 2 * c, _cvtu32_mask32(keep), p);
            }
            if (dp > d) memset(dst + 2 * d, 0, (size_t)(dp - d) * 2 * sizeof(uint16_t));
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
void enc_attn_pack_k_bf16_amx(const float *k, int64_t k_stride, int64_t nk, int d, int dp,
                              uint16_t *kt) {
    enc_attn_pack_k_bf16(k, k_stride, nk, d, dp, kt);
}
void enc_attn_pack_v_bf16_amx(const float *v, int64_t v_stride, int64_t nk, int d, int dp,
                              uint16_t *vp) {
    enc_attn_pack_v_bf16(v, v_stride, nk, d, dp, vp);
}
#endif
