/* Kernels against naive loops written here (double precision), for every kernel table this
 * CPU supports (portable, AVX2, AVX-512); interpolation against hand-computed values; the
 * oneDNN GEMM against a naive one. Widths include odd sizes to hit every SIMD tail. */
#include "enc_internal.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
}
static float *rand_vec(int64_t n, float scale) {
    float *v = vx_aligned_alloc(64, (size_t)(n + 16) * sizeof(float), NULL);
    T_ASSERT(v);
    for (int64_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

static const int64_t widths[] = {1, 3, 7, 8, 15, 16, 17, 24, 33, 64, 88, 200, 384, 1408};
#define NW (sizeof(widths) / sizeof(widths[0]))

static void for_each_isa(void (*fn)(const enc_kernels *k)) {
    for (int isa = 0; isa < ENC_ISA_COUNT; isa++) {
        const enc_kernels *k = enc_kernels_for((enc_isa)isa);
        if (!k) {
            printf("  %s: not supported by this CPU, skipped\n", enc_isa_name((enc_isa)isa));
            continue;
        }
        printf("  %s\n", k->name);
        fn(k);
    }
}

static void check_norms(const enc_kernels *k) {
    for (size_t wi = 0; wi < NW; wi++) {
        int64_t n = widths[wi];
        float *x = rand_vec(n, 3), *w = rand_vec(n, 1), *b = rand_vec(n, 1), *y = rand_vec(n, 0);
        /* RMSNorm: y = scale · w · x / sqrt(mean(x²) + eps) */
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
        double inv = 0.125 / sqrt(ss / n + 1e-6);
        k->rmsnorm(x, w, y, n, 1e-6f, 0.125f);
        for (int64_t i = 0; i < n; i++) T_NEAR(y[i], w[i] * x[i] * inv, 1e-5);
        /* in place */
        memcpy(y, x, (size_t)n * sizeof(float));
        k->rmsnorm(y, w, y, n, 1e-6f, 0.125f);
        for (int64_t i = 0; i < n; i++) T_NEAR(y[i], w[i] * x[i] * inv, 1e-5);
        /* LayerNorm */
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++) mean += x[i];
        mean /= n;
        for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= n;
        k->layernorm(x, w, b, y, n, 1e-5f);
        for (int64_t i = 0; i < n; i++)
            T_NEAR(y[i], (x[i] - mean) / sqrt(var + 1e-5) * w[i] + b[i], 2e-5);
        /* LayerScale residual */
        float *acc = rand_vec(n, 1);
        float *ref = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) ref[i] = acc[i] + w[i] * x[i];
        k->add_scaled(acc, x, w, n);
        for (int64_t i = 0; i < n; i++) T_NEAR(acc[i], ref[i], 1e-6);
        free(ref);
        free(acc);
        free(x);
        free(w);
        free(b);
        free(y);
    }
}

static void check_gelu(const enc_kernels *k) {
    for (size_t wi = 0; wi < NW; wi++) {
        int64_t n = widths[wi];
        float *x = rand_vec(n, 6), *y = malloc((size_t)n * sizeof(float));
        memcpy(y, x, (size_t)n * sizeof(float));
        k->gelu_tanh(y, n);
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            double ref = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            T_NEAR(y[i], ref, 1e-6 * (1 + fabs(ref)));
        }
        free(x);
        free(y);
    }
    /* extremes stay finite and saturate */
    float e[6] = {-100, -20, 0, 20, 100, 1e-8f};
    k->gelu_tanh(e, 6);
    T_NEAR(e[0], 0, 1e-30);
    T_NEAR(e[1], 0, 1e-6);
    T_NEAR(e[2], 0, 0);
    T_NEAR(e[3], 20, 1e-5);
    T_NEAR(e[4], 100, 1e-4);
    T_NEAR(e[5], 5e-9, 1e-12);
}

/* Naive attention with the full score matrix, in double. */
static void attention_naive(const float *q, const float *k, const float *v, double *out,
                            int64_t nq, int64_t nk, int d) {
    double *s = malloc((size_t)nk * sizeof(double));
    for (int64_t i = 0; i < nq; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < nk; j++) {
            double acc = 0;
            for (int c = 0; c < d; c++) acc += (double)q[i * d + c] * k[j * d + c];
            s[j] = acc;
            mx = acc > mx ? acc : mx;
        }
        for (int64_t j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
        for (int c = 0; c < d; c++) {
            double acc = 0;
            for (int64_t j = 0; j < nk; j++) acc += s[j] * v[j * d + c];
            out[i * d + c] = acc / sum;
        }
    }
    free(s);
}

static void check_attention(const enc_kernels *kern) {
    static const int dims[] = {1, 5, 16, 24, 33, 64, 88};
    static const int64_t nks[] = {1, 7, 128, 129, 300};
    static const int nqs[] = {1, 3, 4, 5, 32};
    for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
        for (size_t ki = 0; ki < sizeof(nks) / sizeof(nks[0]); ki++)
            for (size_t qi = 0; qi < sizeof(nqs) / sizeof(nqs[0]); qi++) {
                int d = dims[di], nq = nqs[qi];
                int64_t nk = nks[ki];
                float *q = rand_vec(nq * d, 2), *k = rand_vec(nk * d, 2), *v = rand_vec(nk * d, 1);
                /* a few large scores so the running max changes between key blocks */
                if (nk > 200) k[250 * d] = 6;
                float *kt = rand_vec(enc_attn_kt_floats(nk, d), 0);
                enc_attn_pack_k(k, d, nk, d, kt);
                /* the blocked layout, checked by hand for the last key */
                T_EQ_INT(kt[((nk - 1) / ENC_ATTN_BK) * d * ENC_ATTN_BK + (d - 1) * ENC_ATTN_BK +
                            (nk - 1) % ENC_ATTN_BK] == k[(nk - 1) * d + d - 1], 1);
                float *out = rand_vec(nq * d, 0);
                float *scratch = vx_aligned_alloc(64, (size_t)enc_attn_scratch_floats(d) * 4, NULL);
                double *ref = malloc((size_t)(nq * d) * sizeof(double));
                kern->attention(q, d, kt, v, d, out, d, nq, nk, d, scratch);
                attention_naive(q, k, v, ref, nq, nk, d);
                for (int64_t i = 0; i < (int64_t)nq * d; i++)
                    if (!(fabs(out[i] - ref[i]) <= 1e-5)) /* v in [-1, 1] */
                        T_FAIL("%s attention d=%d nk=%lld nq=%d: [%lld] %.9g vs %.9g", kern->name,
                               d, (long long)nk, nq, (long long)i, out[i], ref[i]);
                free(q);
                free(k);
                free(v);
                free(kt);
                free(out);
                free(scratch);
                free(ref);
            }
}

/* bf16 attention: against the naive attention of the bf16-rounded q, k, v (the probabilities
 * are rounded to bf16 too, so the bound is bf16's 2^-8 relative on the output scale). */
static void check_attention_bf16(const enc_kernels *kern) {
    if (!kern->attention_bf16) {
        printf("    no bf16 attention in this table\n");
        return;
    }
    /* 24, 34 and 88 (the 1B's head width) are padded with zero channels on AMX (to 32, 64,
     * 96); nq = 17 leaves a partial 16-row tile; nk = 300 a partial key block */
    static const int dims[] = {2, 16, 24, 34, 64, 88, 96, 128};
    static const int64_t nks[] = {1, 7, 128, 129, 300};
    static const int nqs[] = {1, 5, 8, 17, 64};
    for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
        for (size_t ki = 0; ki < sizeof(nks) / sizeof(nks[0]); ki++)
            for (size_t qi = 0; qi < sizeof(nqs) / sizeof(nqs[0]); qi++) {
                int d = dims[di], nq = nqs[qi], dp = enc_attn_bf16_dpad(kern, d);
                int64_t nk = nks[ki];
                float *q = rand_vec(nq * d, 2), *k = rand_vec(nk * d, 2), *v = rand_vec(nk * d, 1);
                /* rows of dp channels (zero past d), readable up to 16 past nq (the contract) */
                uint16_t *q16 = calloc((size_t)((nq + 16) * dp), 2);
                for (int i = 0; i < nq; i++)
                    for (int c = 0; c < d; c++) {
                        kern->f32_to_bf16(&q[i * d + c], &q16[i * dp + c], 1);
                        q[i * d + c] = enc_bf16_to_f32(q16[i * dp + c]);
                    }
                for (int64_t i = 0; i < nk * d; i++) {
                    uint16_t h;
                    kern->f32_to_bf16(&k[i], &h, 1);
                    k[i] = enc_bf16_to_f32(h);
                    kern->f32_to_bf16(&v[i], &h, 1);
                    v[i] = enc_bf16_to_f32(h);
                }
                size_t pack_bytes = (size_t)enc_attn_kt_floats(nk, dp) * 2;
                uint16_t *kt = malloc(pack_bytes), *vp = malloc(pack_bytes);
                uint16_t *kt_ref = malloc(pack_bytes), *vp_ref = malloc(pack_bytes);
                memset(kt, 0xff, pack_bytes); /* every element must be written */
                memset(vp, 0xff, pack_bytes);
                kern->pack_k_bf16(k, d, nk, d, dp, kt);
                kern->pack_v_bf16(v, d, nk, d, dp, vp);
                enc_attn_pack_k_bf16(k, d, nk, d, dp, kt_ref);
                enc_attn_pack_v_bf16(v, d, nk, d, dp, vp_ref);
                if (memcmp(kt, kt_ref, pack_bytes) || memcmp(vp, vp_ref, pack_bytes))
                    T_FAIL("%s bf16 packs d=%d dp=%d nk=%lld differ from the portable ones",
                           kern->name, d, dp, (long long)nk);
                float *out = rand_vec(nq * d, 0);
                float *scratch =
                    vx_aligned_alloc(64, (size_t)enc_attn_scratch_floats(dp) * 4, NULL);
                double *ref = malloc((size_t)(nq * d) * sizeof(double));
                kern->attention_bf16(q16, dp, kt, vp, out, d, nq, nk, d, scratch);
                attention_naive(q, k, v, ref, nq, nk, d);
                for (int64_t i = 0; i < (int64_t)nq * d; i++)
                    if (!(fabs(out[i] - ref[i]) <= 1e-2)) /* v in [-1, 1] */
                        T_FAIL("%s bf16 attention d=%d nk=%lld nq=%d: [%lld] %.9g vs %.9g",
                               kern->name, d, (long long)nk, nq, (long long)i, out[i], ref[i]);
                free(q); free(k); free(v); free(q16); free(kt); free(vp); free(kt_ref);
                free(vp_ref); free(out); free(scratch); free(ref);
            }
}

/* Peaked softmax rows whose maximum rises block after block (by more than the AMX kernel's lazy
 * rescaling threshold) and tied scores: the online rescaling must follow. */
static void check_attention_bf16_rising(const enc_kernels *kern) {
    if (!kern->attention_bf16) return;
    int d = 64, nq = 16, dp = enc_attn_bf16_dpad(kern, d);
    int64_t nk = 600;
    float *q = calloc((size_t)nq * d, 4), *k = calloc((size_t)nk * d, 4), *v = rand_vec(nk * d, 1);
    for (int i = 0; i < nq; i++) q[i * d] = (float)(i % 4); /* row 0: all scores tie */
    for (int64_t j = 0; j < nk; j++) k[j * d] = (float)j / 16.0f; /* score = q0 · j / 16 */
    uint16_t *q16 = calloc((size_t)((nq + 16) * dp), 2);
    for (int i = 0; i < nq; i++) {
        kern->f32_to_bf16(&q[i * d], &q16[i * dp], d);
        for (int c = 0; c < d; c++) q[i * d + c] = enc_bf16_to_f32(q16[i * dp + c]);
    }
    for (int64_t i = 0; i < nk * d; i++) {
        uint16_t h;
        kern->f32_to_bf16(&k[i], &h, 1);
        k[i] = enc_bf16_to_f32(h);
        kern->f32_to_bf16(&v[i], &h, 1);
        v[i] = enc_bf16_to_f32(h);
    }
    size_t pack_bytes = (size_t)enc_attn_kt_floats(nk, dp) * 2;
    uint16_t *kt = malloc(pack_bytes), *vp = malloc(pack_bytes);
    kern->pack_k_bf16(k, d, nk, d, dp, kt);
    kern->pack_v_bf16(v, d, nk, d, dp, vp);
    float *out = calloc((size_t)nq * d, 4);
    float *scratch = vx_aligned_alloc(64, (size_t)enc_attn_scratch_floats(dp) * 4, NULL);
    double *ref = malloc((size_t)(nq * d) * sizeof(double));
    kern->attention_bf16(q16, dp, kt, vp, out, d, nq, nk, d, scratch);
    attention_naive(q, k, v, ref, nq, nk, d);
    for (int64_t i = 0; i < (int64_t)nq * d; i++)
        if (!(fabs(out[i] - ref[i]) <= 1e-2))
            T_FAIL("%s bf16 attention, rising max: [%lld] %.9g vs %.9g", kern->name,
                   (long long)i, out[i], ref[i]);
    free(q); free(k); free(v); free(q16); free(kt); free(vp); free(out); free(scratch); free(ref);
}

static void check_bf16(const enc_kernels *k) {
    const enc_kernels *p = enc_kernels_for(ENC_ISA_PORTABLE);
    int64_t n = 1000;
    float *x = rand_vec(n, 100);
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = -0.0f;
    x[3] = 1.00390625f; /* exactly halfway between two bf16 values: rounds to even */
    uint16_t *a = malloc((size_t)n * 2), *b = malloc((size_t)n * 2);
    k->f32_to_bf16(x, a, n);
    p->f32_to_bf16(x, b, n);
    T_ASSERT(memcmp(a, b, (size_t)n * 2) == 0);
    T_EQ_INT(a[3], 0x3f80);
    T_ASSERT(isnan(enc_bf16_to_f32(a[0])));
    T_ASSERT(isinf(enc_bf16_to_f32(a[1])));
    for (int64_t i = 4; i < n; i++) T_NEAR(enc_bf16_to_f32(a[i]), x[i], fabs(x[i]) / 128);
    free(x);
    free(a);
    free(b);
}

static void test_norms(void) { for_each_isa(check_norms); }
static void test_gelu(void) { for_each_isa(check_gelu); }
static void test_attention(void) { for_each_isa(check_attention); }
static void test_bf16(void) { for_each_isa(check_bf16); }
static void test_attention_bf16(void) {
    for_each_isa(check_attention_bf16);
    for_each_isa(check_attention_bf16_rising);
}

static void test_gelu_erf_and_halves(void) {
    float x[3] = {-1, 0, 2};
    enc_gelu_erf(x, 3);
    T_NEAR(x[0], -0.15865525393145707, 1e-7);
    T_NEAR(x[1], 0, 0);
    T_NEAR(x[2], 1.9544997361036416, 1e-6);
    T_NEAR(enc_f16_to_f32(0x3c00), 1.0, 0);
    T_NEAR(enc_f16_to_f32(0xc000), -2.0, 0);
    T_NEAR(enc_f16_to_f32(0x0001), 5.960464477539063e-08, 0); /* smallest subnormal */
    T_NEAR(enc_f16_to_f32(0x7bff), 65504.0, 0);
    T_ASSERT(isinf(enc_f16_to_f32(0x7c00)));
    T_ASSERT(isnan(enc_f16_to_f32(0x7e00)));
    T_NEAR(enc_bf16_to_f32(0x3f80), 1.0, 0);
}

/* PyTorch F.interpolate(mode='linear', align_corners=False), hand-computed. */
static void test_interp_linear(void) {
    /* 4 -> 8: src = i/2 − 0.25 clamped at 0: weights for i = 0..7 */
    float src[4] = {0, 10, 20, 40}, dst[8];
    enc_interp_linear(src, 4, dst, 8, 1, 1, 1);
    const float want[8] = {0, 2.5f, 7.5f, 12.5f, 17.5f, 25, 35, 40};
    for (int i = 0; i < 8; i++) T_NEAR(dst[i], want[i], 1e-5);
    /* 8 -> 4: src = 2i + 0.5 */
    float s8[8] = {0, 1, 2, 3, 4, 5, 6, 7}, d4[4];
    enc_interp_linear(s8, 8, d4, 4, 1, 1, 1);
    for (int i = 0; i < 4; i++) T_NEAR(d4[i], 2 * i + 0.5, 1e-6);
    /* 1 -> 3: all copies; 2 channels with strides */
    float s1[2] = {3, -4}, d3[6];
    enc_interp_linear(s1, 1, d3, 3, 2, 2, 2);
    for (int i = 0; i < 3; i++) {
        T_NEAR(d3[2 * i], 3, 0);
        T_NEAR(d3[2 * i + 1], -4, 0);
    }
    /* 2 -> 3: src = (i+0.5)·2/3 − 0.5 = −1/6 (→0), 1/2, 7/6 (right neighbour clamped) */
    float s2[2] = {0, 6}, dd[3];
    enc_interp_linear(s2, 2, dd, 3, 1, 1, 1);
    T_NEAR(dd[0], 0, 1e-6);
    T_NEAR(dd[1], 3, 1e-6);
    T_NEAR(dd[2], 6, 1e-6);
}

/* PyTorch F.interpolate(mode='bicubic', align_corners=False), a = −0.75. */
static void test_interp_bicubic(void) {
    /* Same size is the identity. */
    float g[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, out[16];
    enc_interp_bicubic(g, 3, out, 3, 1);
    for (int i = 0; i < 9; i++) T_NEAR(out[i], g[i], 1e-6);
    /* A constant stays constant (weights sum to 1, edges clamped). */
    float c[4] = {5, 5, 5, 5}, oc[9];
    enc_interp_bicubic(c, 2, oc, 3, 1);
    for (int i = 0; i < 9; i++) T_NEAR(oc[i], 5, 1e-5);
    /* 2x2 -> 4x4 on a ramp in x only: rows identical; src x for ox = 0..3 is
     * −0.25, 0.25, 0.75, 1.25. For ox = 1: t = 0.25, taps at −1,0,1,2 clamped to 0,0,1,1:
     * w = [-0.75·(1.25)... ] computed by hand from the cubic-convolution formulas:
     * w0 = −0.10546875, w1 = 0.87890625, w2 = 0.26171875, w3 = −0.03515625
     * value = (w0 + w1)·0 + (w2 + w3)·1 = 0.2265625 */
    float r[4] = {0, 1, 0, 1}, o4[16];
    enc_interp_bicubic(r, 2, o4, 4, 1);
    T_NEAR(o4[1], 0.2265625, 1e-6);
    T_NEAR(o4[5], 0.2265625, 1e-6);
    /* ox = 0: t = 0.75 (floor −1), taps −2,−1,0,1 → 0,0,0,1:
     * w = [−0.03515625, 0.26171875, 0.87890625, −0.10546875] → value −0.10546875 */
    T_NEAR(o4[0], -0.10546875, 1e-6);
    T_NEAR(o4[3], 1.10546875, 1e-6);
    T_NEAR(o4[2], 0.7734375, 1e-6);
}

static void test_gemm_vs_naive(void) {
    vx_err err;
    enc_gemm_ctx *ctx = NULL;
    T_OK(enc_gemm_ctx_create(&ctx, &err), &err);
    static const int64_t shapes[][3] = {{1, 1, 1}, {37, 64, 192}, {5, 279, 64}, {129, 33, 17}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int64_t m = shapes[s][0], k = shapes[s][1], o = shapes[s][2];
        float *x = rand_vec(m * k, 1), *w = rand_vec(o * k, 1), *b = rand_vec(o, 1);
        float *y = rand_vec(m * o, 0), *ref = rand_vec(m * o, 0);
        for (int mode = 0; mode < 4; mode++) {
            int with_bias = mode & 1, prepack = mode >> 1;
            enc_linear *lin = NULL;
            T_OK(enc_linear_create(ctx, m, k, o, x, (enc_gemm_weight){w, 0}, with_bias ? b : NULL,
                                   y, 0, prepack, NULL,
                                   NULL, &lin, &err),
                 &err);
            T_OK(enc_linear_run(lin, enc_kernels_best(), &err), &err);
            enc_linear_ref(m, k, o, x, w, with_bias ? b : NULL, ref);
            for (int64_t i = 0; i < m * o; i++) T_NEAR(y[i], ref[i], 1e-5 * (1 + sqrt((double)k)));
            enc_linear_free(lin);
        }
        free(x);
        free(w);
        free(b);
        free(y);
        free(ref);
    }
    enc_gemm_ctx_free(ctx);
}

/* Weights given as bf16 (kept as stored): fp32 compute (converted copy) and bf16 compute (in
 * place, and prepacked), against the naive GEMM of the same bf16 weights. */
static void test_gemm_bf16_weights(void) {
    vx_err err;
    enc_gemm_ctx *ctx = NULL;
    T_OK(enc_gemm_ctx_create(&ctx, &err), &err);
    int64_t m = 37, k = 64, o = 96;
    float *x = rand_vec(m * k, 1), *w = rand_vec(o * k, 0.5f), *b = rand_vec(o, 1);
    float *y = rand_vec(m * o, 0), *ref = rand_vec(m * o, 0);
    uint16_t *w16 = malloc((size_t)(o * k) * 2), *x16 = malloc((size_t)(m * k) * 2);
    enc_kernels_best()->f32_to_bf16(w, w16, o * k);
    for (int64_t i = 0; i < o * k; i++) w[i] = enc_bf16_to_f32(w16[i]);
    enc_linear_ref(m, k, o, x, w, b, ref);
    for (int mode = 0; mode < 3; mode++) {
        int bf16 = mode > 0, prepack = mode == 2;
        enc_linear *lin = NULL;
        T_OK(enc_linear_create(ctx, m, k, o, x, (enc_gemm_weight){w16, 1}, b, y, bf16, prepack,
                               x16, NULL, &lin, &err),
             &err);
        T_EQ_INT(enc_linear_packed_bytes(lin) > 0, mode != 1);
        T_OK(enc_linear_run(lin, enc_kernels_best(), &err), &err);
        double tol = bf16 ? 0.05 : 1e-5; /* bf16 activations: 2^-8 relative per term */
        for (int64_t i = 0; i < m * o; i++) T_NEAR(y[i], ref[i], tol * (1 + sqrt((double)k)));
        enc_linear_free(lin);
    }
    free(x); free(w); free(b); free(y); free(ref); free(w16); free(x16);
    enc_gemm_ctx_free(ctx);
}

/* Fused epilogues: y = acc ? y + s ⊙ gelu(xWᵀ + b) : ... against the naive GEMM + kernels. */
static void test_gemm_post_ops(void) {
    vx_err err;
    enc_gemm_ctx *ctx = NULL;
    T_OK(enc_gemm_ctx_create(&ctx, &err), &err);
    int64_t m = 37, k = 64, o = 96;
    float *x = rand_vec(m * k, 1), *w = rand_vec(o * k, 0.5f), *b = rand_vec(o, 1);
    float *sc = rand_vec(o, 1), *y0 = rand_vec(m * o, 1);
    float *y = rand_vec(m * o, 0), *ref = rand_vec(m * o, 0);
    for (int mode = 0; mode < 12; mode++) {
        enc_linear_post post = {mode % 3, (mode / 3) & 1 ? sc : NULL, (mode / 6) & 1, 0};
        memcpy(y, y0, (size_t)(m * o) * sizeof(float));
        enc_linear *lin = NULL;
        T_OK(enc_linear_create(ctx, m, k, o, x, (enc_gemm_weight){w, 0}, b, y, 0, 1, NULL, &post,
                               &lin, &err),
             &err);
        T_OK(enc_linear_run(lin, enc_kernels_best(), &err), &err);
        enc_linear_ref(m, k, o, x, w, b, ref);
        if (post.gelu == ENC_GELU_TANH) enc_kernels_for(ENC_ISA_PORTABLE)->gelu_tanh(ref, m * o);
        if (post.gelu == ENC_GELU_ERF) enc_gelu_erf(ref, m * o);
        for (int64_t i = 0; i < m * o; i++) {
            double r = ref[i];
            if (post.col_scale) r *= sc[i % o];
            if (post.accumulate) r += y0[i];
            if (!(fabs(y[i] - r) <= 1e-5 * (1 + fabs(r))))
                T_FAIL("post-ops mode %d: [%lld] %.9g vs %.9g", mode, (long long)i, y[i], r);
        }
        enc_linear_free(lin);
    }
    free(x); free(w); free(b); free(sc); free(y0); free(y); free(ref);
    enc_gemm_ctx_free(ctx);
}

/* bf16 GEMM fed by the caller (x NULL: x_bf16 written beforehand) with GELU and a bf16 output
 * (the vision tower's fc1 -> fc2 chain), against the naive GEMM on the bf16-rounded inputs. */
static void test_gemm_bf16_chain(void) {
    vx_err err;
    enc_gemm_ctx *ctx = NULL;
    T_OK(enc_gemm_ctx_create(&ctx, &err), &err);
    int64_t m = 37, k = 64, o = 96;
    const enc_kernels *kern = enc_kernels_best();
    float *x = rand_vec(m * k, 1), *w = rand_vec(o * k, 0.5f), *b = rand_vec(o, 1);
    float *ref = rand_vec(m * o, 0);
    uint16_t *x16 = malloc((size_t)(m * k) * 2), *y16 = malloc((size_t)(m * o) * 2);
    kern->f32_to_bf16(x, x16, m * k);
    for (int64_t i = 0; i < m * k; i++) x[i] = enc_bf16_to_f32(x16[i]);
    uint16_t *w16 = malloc((size_t)(o * k) * 2);
    kern->f32_to_bf16(w, w16, o * k);
    for (int64_t i = 0; i < o * k; i++) w[i] = enc_bf16_to_f32(w16[i]);
    enc_linear_post post = {ENC_GELU_TANH, NULL, 0, 1};
    enc_linear *lin = NULL;
    vx_status st = enc_linear_create(ctx, m, k, o, NULL, (enc_gemm_weight){w, 0}, b, (float *)y16,
                                     1, 1, x16, &post, &lin, &err);
    if (st == VX_EUNSUPPORTED) { /* no bf16 matmul on this CPU */
        printf("    skipped: %s\n", err.msg);
    } else {
        T_OK(st, &err);
        memset(y16, 0xff, (size_t)(m * o) * 2); /* NaN: every element must be written */
        T_OK(enc_linear_run(lin, kern, &err), &err);
        enc_linear_ref(m, k, o, x, w, b, ref);
        enc_kernels_for(ENC_ISA_PORTABLE)->gelu_tanh(ref, m * o);
        for (int64_t i = 0; i < m * o; i++) {
            float yi = enc_bf16_to_f32(y16[i]);
            if (!(fabs(yi - ref[i]) <= 1e-2 * (1 + fabs(ref[i]))))
                T_FAIL("bf16 chain: [%lld] %.9g vs %.9g", (long long)i, yi, ref[i]);
        }
        enc_linear_free(lin);
    }
    /* fp32 needs its x */
    enc_linear *bad = NULL;
    T_EQ_INT(enc_linear_create(ctx, m, k, o, NULL, (enc_gemm_weight){w, 0}, b, ref, 0, 1, NULL,
                               NULL, &bad, &err),
             VX_EINVAL);
    T_ASSERT(bad == NULL);
    free(x); free(w); free(b); free(ref); free(x16); free(y16); free(w16);
    enc_gemm_ctx_free(ctx);
}

int main(int argc, char **argv) {
    static const t_case cases[] = {
        {"gemm_bf16_chain", test_gemm_bf16_chain},
        {"norms", test_norms},
        {"gelu", test_gelu},
        {"attention", test_attention},
        {"bf16", test_bf16},
        {"attention_bf16", test_attention_bf16},
        {"gelu_erf_and_halves", test_gelu_erf_and_halves},
        {"interp_linear", test_interp_linear},
        {"interp_bicubic", test_interp_bicubic},
        {"gemm_vs_naive", test_gemm_vs_naive},
        {"gemm_post_ops", test_gemm_post_ops},
        {"gemm_bf16_weights", test_gemm_bf16_weights},
    };
    return T_RUN(argc, argv, cases);
}
