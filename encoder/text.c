/* The text towers (INTERNVIDEO2.md §3.1, §3.3) on the CPU: BERT-large with its matching head
 * (s2-1B/6B) and the MobileCLIP-B text transformer (clip-S/B/L). Everything is fp32. The GEMMs
 * go through oneDNN (DECISIONS §1), created once for max_len rows and bound to the instance's
 * arena, so a query allocates nothing; the rows past the last real token are computed and never
 * read. The exact GELU and the residual adds are fused into the GEMMs' epilogues (oneDNN
 * post-ops); attention runs the vision tower's SIMD online-softmax kernel (heads in parallel,
 * one call per query row for MobileCLIP's causal mask), except BERT queries with padding inside
 * their L tokens (the kernel has no key mask: plain loops there); LayerNorm and the 1-row heads
 * are plain loops.
 *
 * Shapes: L tokens (the real ones: padding is masked out exactly, see enc.h), width W, heads h,
 * FFN F, vision tokens N of width Cv (encoder width K after the s2-6B fusion projection). */
#include "enc_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct enc_text {
    const enc_model *model;
    const enc_text_weights *w;
    enc_text_config cfg;
    int bert, threads;
    int64_t E;
    const enc_kernels *kern;
    enc_tok *tok;
    float *arena;
    float *x, *q, *k, *v, *att, *hid, *tmp; /* [max_len, W] each, hid [max_len, F] */
    float *add_mask;                        /* [max_len] */
    float *kt;                              /* [heads, blocked Kᵀ for max_len keys] */
    float *attn_scratch;                    /* [threads, attn_scratch_floats] */
    int64_t attn_scratch_floats;            /* per thread, a multiple of 16 */
    /* matching head: vision-side buffers, grown to the largest N seen */
    float *vis, *ck, *cv, *scores;
    float *kt_vis; /* [heads, blocked Kᵀ for vis_cap keys] (cross-attention) */
    int64_t vis_cap;
    /* GEMMs through oneDNN for all max_len rows (padding rows are computed and never read) */
    enc_gemm_ctx *gemm;
    struct text_linears {
        enc_linear *q, *k, *v, *o, *fc1, *fc2; /* MobileCLIP: q = fused qkv */
        enc_linear *cq, *co, *ck, *cv;         /* BERT cross-attention; ck, cv bound to vis */
    } * lin;
    enc_linear *fproj; /* s2-6B vision-token projection, bound to vis_in */
    float *vis_in;     /* [vis_cap, Cv] copy of the caller's tokens */
    int64_t lin_n;     /* the vision-token count ck/cv/fproj are made for */
    int prepack;
    char backend[128];
};

/* y: [m, o] = x: [m, k] · wᵀ (w: [o, k]) + b. Each thread takes a range of output columns and
 * streams its weight rows once for all m tokens. */
static void linear(const float *x, int64_t m, int64_t k, const float *w, const float *b, float *y,
                   int64_t o)
{
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < o; j++) {
        const float *wr = w + j * k;
        for (int64_t r = 0; r < m; r++) {
            const float *xr = x + r * k;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < k; i++)
                acc += xr[i] * wr[i];
            y[r * o + j] = acc + (b ? b[j] : 0.0f);
        }
    }
}

/* Larger m (the vision side of the matching head, the audio tower): rows in parallel. */
void enc_rows_linear(const float *x, int64_t m, int64_t k, const float *w, const float *b, float *y,
                     int64_t o)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; r++) {
        const float *xr = x + r * k;
        for (int64_t j = 0; j < o; j++) {
            const float *wr = w + j * k;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < k; i++)
                acc += xr[i] * wr[i];
            y[r * o + j] = acc + (b ? b[j] : 0.0f);
        }
    }
}

/* q: [lq, W] (row stride qs), k, v: [nk, W] (strides ks, vs) -> out: [lq, W].
 * add_mask: [nk] additive key mask or NULL; causal: key j > query i excluded.
 * scores: [threads, nk] scratch. */
static void attention(const enc_text *t, const float *q, int64_t qs, const float *k, int64_t ks,
                      const float *v, int64_t vs, float *out, int64_t lq, int64_t nk,
                      const float *add_mask, int causal, float *scores)
{
    int64_t W = t->cfg.width, heads = t->cfg.heads, d = W / heads;
    float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel for schedule(static)
    for (int64_t task = 0; task < heads * lq; task++) {
        int64_t h = task / lq, i = task % lq;
        float *s = scores + (int64_t)omp_get_thread_num() * nk;
        const float *qi = q + i * qs + h * d;
        int64_t n = causal ? i + 1 : nk;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            const float *kj = k + j * ks + h * d;
            float acc = 0.0f;
            for (int64_t c = 0; c < d; c++)
                acc += qi[c] * kj[c];
            acc *= scale;
            if (add_mask) acc += add_mask[j];
            s[j] = acc;
            if (acc > mx) mx = acc;
        }
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        float inv = (float)(1.0 / sum);
        float *o = out + i * W + h * d;
        for (int64_t c = 0; c < d; c++)
            o[c] = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            const float *vj = v + j * vs + h * d;
            float p = s[j] * inv;
            for (int64_t c = 0; c < d; c++)
                o[c] += p * vj[c];
        }
    }
}

/* The self-attention through the SIMD attention kernel (the vision tower's online-softmax
 * tiles), heads in parallel: q, k, v: [L, W] rows at qs, ks, vs -> out: [L, W]. q is scaled in
 * place by d^-0.5 (a power of two for d = 64: exactly as scaling the scores). Causal: one
 * kernel call per query row over its keys 0..i; else query blocks over all L keys (the caller
 * has checked that the additive mask is zero over them). */
static void attention_fast(const enc_text *t, float *q, int64_t qs, const float *k, int64_t ks,
                           const float *v, int64_t vs, float *out, int64_t L, int64_t nk,
                           int causal, float *kt_buf)
{
    int64_t W = t->cfg.width, heads = t->cfg.heads, d = W / heads;
    float scale = 1.0f / sqrtf((float)d);
    int64_t ktf = enc_attn_kt_floats(nk, (int)d);
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < heads; h++) {
        float *kt = kt_buf + h * ktf;
        float *scr = t->attn_scratch + (int64_t)omp_get_thread_num() * t->attn_scratch_floats;
        float *qh = q + h * d;
        for (int64_t i = 0; i < L; i++)
            for (int64_t c = 0; c < d; c++)
                qh[i * qs + c] *= scale;
        enc_attn_pack_k(k + h * d, ks, nk, (int)d, kt);
        if (causal) {
            for (int64_t i = 0; i < L; i++)
                t->kern->attention(qh + i * qs, qs, kt, v + h * d, vs, out + i * W + h * d, W, 1,
                                   i + 1, (int)d, scr);
        } else {
            for (int64_t i = 0; i < L; i += ENC_ATTN_BQ) {
                int nq = (int)(L - i < ENC_ATTN_BQ ? L - i : ENC_ATTN_BQ);
                t->kern->attention(qh + i * qs, qs, kt, v + h * d, vs, out + i * W + h * d, W, nq,
                                   nk, (int)d, scr);
            }
        }
    }
}

static void layernorm_rows(const enc_text *t, float *x, int64_t m, int64_t n, const float *w,
                           const float *b, float eps, float *y)
{
    for (int64_t r = 0; r < m; r++)
        t->kern->layernorm(x + r * n, w, b, y + r * n, n, eps);
}

/* x = LN(x + y) row-wise (BERT's post-LN residual). */
static void add_norm(const enc_text *t, float *x, const float *y, int64_t m, const float *w,
                     const float *b)
{
    int64_t W = t->cfg.width;
    for (int64_t i = 0; i < m * W; i++)
        x[i] += y[i];
    layernorm_rows(t, x, m, W, w, b, t->cfg.norm_eps, x);
}

#define RUN(lin)                                                                                   \
    do {                                                                                           \
        vx_status s_ = enc_linear_run((lin), t->kern, err);                                        \
        if (s_ != VX_OK) return s_;                                                                \
    } while (0)

/* One post-LN BERT layer on x [L, W]; with_vision: cross-attention to the N keys/values the
 * ck/cv linears make from the bound vision buffer. */
static vx_status bert_layer(enc_text *t, int j, int64_t L, int with_vision, int64_t N, vx_err *err)
{
    const enc_text_layer_weights *lw = &t->w->layers[j];
    const struct text_linears *ln = &t->lin[j];
    int64_t W = t->cfg.width, Lm = t->cfg.max_len;
    RUN(ln->q);
    RUN(ln->k);
    RUN(ln->v);
    /* the SIMD kernel has no key mask: it runs when no key among the L is padding */
    int masked = 0;
    for (int64_t i = 0; i < L; i++)
        masked |= t->add_mask[i] != 0.0f;
    if (masked)
        attention(t, t->q, W, t->k, W, t->v, W, t->att, L, L, t->add_mask, 0, t->scores);
    else
        attention_fast(t, t->q, W, t->k, W, t->v, W, t->att, L, L, 0, t->kt);
    /* x += att·Woᵀ + b (fused residual), then LN over all max_len rows: the padding rows the
     * fused GEMMs accumulate into stay bounded (they are never read) */
    RUN(ln->o);
    layernorm_rows(t, t->x, Lm, W, lw->attn_norm_w, lw->attn_norm_b, t->cfg.norm_eps, t->x);
    if (with_vision) {
        RUN(ln->cq);
        RUN(ln->ck);
        RUN(ln->cv);
        attention_fast(t, t->q, W, t->ck, W, t->cv, W, t->att, L, N, 0, t->kt_vis);
        RUN(ln->co);
        add_norm(t, t->x, t->tmp, L, lw->cross_norm_w, lw->cross_norm_b);
    }
    RUN(ln->fc1); /* fused exact GELU */
    RUN(ln->fc2); /* x += hid·W2ᵀ + b (fused residual) */
    layernorm_rows(t, t->x, Lm, W, lw->ffn_norm_w, lw->ffn_norm_b, t->cfg.norm_eps, t->x);
    return VX_OK;
}

/* One pre-LN causal MobileCLIP layer on x [L, W]. */
static vx_status clip_layer(enc_text *t, int j, int64_t L, vx_err *err)
{
    const enc_text_layer_weights *lw = &t->w->layers[j];
    const struct text_linears *ln = &t->lin[j];
    int64_t W = t->cfg.width;
    float eps = t->cfg.norm_eps;
    layernorm_rows(t, t->x, L, W, lw->attn_norm_w, lw->attn_norm_b, eps, t->tmp);
    RUN(ln->q); /* fused qkv: tmp -> hid [rows, 3W] (hid holds max(F, 3W) per row) */
    attention_fast(t, t->hid, 3 * W, t->hid + W, 3 * W, t->hid + 2 * W, 3 * W, t->att, L, L, 1,
                   t->kt);
    RUN(ln->o); /* x += att·Woᵀ + b (fused residual) */
    layernorm_rows(t, t->x, L, W, lw->ffn_norm_w, lw->ffn_norm_b, eps, t->tmp);
    RUN(ln->fc1); /* hid = gelu_erf(tmp·W1ᵀ + b) (fused GELU) */
    RUN(ln->fc2); /* x += hid·W2ᵀ + b (fused residual) */
    return VX_OK;
}

static enc_gemm_weight gw(const float *w)
{
    return (enc_gemm_weight){w, 0};
}

/* The GEMMs of the query path, all for m = max_len rows. */
static vx_status make_linears(enc_text *t, vx_err *err)
{
    int64_t M = t->cfg.max_len, W = t->cfg.width, F = t->cfg.ffn;
    vx_status s = enc_gemm_ctx_create(&t->gemm, err);
    if (s != VX_OK) return s;
    t->lin = calloc((size_t)t->cfg.layers, sizeof(*t->lin));
    if (!t->lin) return vx_fail(err, VX_ENOMEM, "out of memory");
    /* fp32 weights are reordered into oneDNN's layout (a copy) when that copy is at most 1 GiB,
     * else read in place from the mapping (as the vision tower does) */
    int64_t floats = 0;
    for (int j = 0; j < t->cfg.layers; j++)
        floats += 4 * W * W + 2 * W * F;
    const char *env = getenv("VIDX_GEMM_PREPACK");
    t->prepack = env ? strcmp(env, "0") != 0 : floats * 4 <= ((int64_t)1 << 30);
    int pp = t->prepack;
#define MKP(out, x, w, b, y, k, o, post)                                                           \
    do {                                                                                           \
        s = enc_linear_create(t->gemm, M, (k), (o), (x), gw(w), (b), (y), 0, pp, NULL, (post),     \
                              &(out), err);                                                        \
        if (s != VX_OK) return s;                                                                  \
    } while (0)
#define MK(out, x, w, b, y, k, o) MKP(out, x, w, b, y, k, o, NULL)
    /* fused epilogues (oneDNN post-ops): the exact GELU after fc1, the residual add into x */
    static const enc_linear_post gelu_post = {ENC_GELU_ERF, NULL, 0, 0};
    static const enc_linear_post res_post = {ENC_GELU_NONE, NULL, 1, 0};
    for (int j = 0; j < t->cfg.layers; j++) {
        const enc_text_layer_weights *lw = &t->w->layers[j];
        struct text_linears *ln = &t->lin[j];
        if (t->bert) {
            MK(ln->q, t->x, lw->attn_q_w, lw->attn_q_b, t->q, W, W);
            MK(ln->k, t->x, lw->attn_k_w, lw->attn_k_b, t->k, W, W);
            MK(ln->v, t->x, lw->attn_v_w, lw->attn_v_b, t->v, W, W);
            MKP(ln->o, t->att, lw->attn_o_w, lw->attn_o_b, t->x, W, W, &res_post);
            MKP(ln->fc1, t->x, lw->fc1_w, lw->fc1_b, t->hid, W, F, &gelu_post);
            MKP(ln->fc2, t->hid, lw->fc2_w, lw->fc2_b, t->x, F, W, &res_post);
            if (lw->cross_q_w) {
                MK(ln->cq, t->x, lw->cross_q_w, lw->cross_q_b, t->q, W, W);
                MK(ln->co, t->att, lw->cross_o_w, lw->cross_o_b, t->tmp, W, W);
            }
        } else {
            MK(ln->q, t->tmp, lw->attn_q_w, lw->attn_q_b, t->hid, W, 3 * W);
            MKP(ln->o, t->att, lw->attn_o_w, lw->attn_o_b, t->x, W, W, &res_post);
            MKP(ln->fc1, t->tmp, lw->fc1_w, lw->fc1_b, t->hid, W, F, &gelu_post);
            MKP(ln->fc2, t->hid, lw->fc2_w, lw->fc2_b, t->x, F, W, &res_post);
        }
    }
#undef MK
#undef MKP
    return VX_OK;
}

static void free_cross_linears(enc_text *t)
{
    if (t->lin)
        for (int j = 0; j < t->cfg.layers; j++) {
            enc_linear_free(t->lin[j].ck);
            enc_linear_free(t->lin[j].cv);
            t->lin[j].ck = t->lin[j].cv = NULL;
        }
    enc_linear_free(t->fproj);
    t->fproj = NULL;
    t->lin_n = 0;
}

/* ---- creation ----------------------------------------------------------------------------- */

vx_status enc_text_create(const enc_model *model, int threads, enc_text **out, vx_err *err)
{
    *out = NULL;
    const enc_model_info *info = enc_model_get_info(model);
    if (!info || !info->has_text)
        return vx_fail(err, VX_EUNSUPPORTED,
                       "model %s has no text tower (video-only: clip-to-clip search, no text "
                       "queries)",
                       info ? info->dir : "(null)");
    if (threads < 0 || threads > 1024)
        return vx_fail(err, VX_EINVAL, "text: threads %d out of range", threads);
    enc_text *t = calloc(1, sizeof(*t));
    if (!t) return vx_fail(err, VX_ENOMEM, "out of memory");
    t->model = model;
    t->w = enc_model_text_weights(model);
    t->cfg = info->text;
    t->bert = strcmp(t->cfg.arch, "bert") == 0;
    t->threads = threads ? threads : omp_get_max_threads();
    t->E = info->embed_dim;
    t->kern = enc_kernels_best();
    vx_status s;
    char *path = vx_asprintf(err, "%s/%s", info->dir, t->cfg.vocab_file);
    if (!path) {
        s = VX_ENOMEM;
        goto fail;
    }
    s = t->bert ? enc_tok_wordpiece_load(path, &t->tok, err)
                : enc_tok_clip_load(path, &t->tok, err);
    free(path);
    if (s != VX_OK) {
        vx_err_prefix(err, "model %s: text tokenizer", info->dir);
        goto fail;
    }
    int64_t Lm = t->cfg.max_len, W = t->cfg.width, F = t->cfg.ffn;
    int64_t hidw = F > 3 * W ? F : 3 * W;
    int64_t d = W / t->cfg.heads;
    t->attn_scratch_floats = (enc_attn_scratch_floats((int)d) + 15) / 16 * 16;
    int64_t ktf = (t->cfg.heads * enc_attn_kt_floats(Lm, (int)d) + 15) / 16 * 16;
    int64_t floats = 6 * Lm * W + Lm * hidw + Lm + (int64_t)t->threads * Lm + 64 + ktf +
                     (int64_t)t->threads * t->attn_scratch_floats + 16;
    t->arena = vx_aligned_alloc(64, (size_t)floats * sizeof(float), err);
    if (!t->arena) {
        s = VX_ENOMEM;
        goto fail;
    }
    memset(t->arena, 0, (size_t)floats * sizeof(float));
    float *cur = t->arena;
    t->x = cur, cur += Lm * W;
    t->q = cur, cur += Lm * W;
    t->k = cur, cur += Lm * W;
    t->v = cur, cur += Lm * W;
    t->att = cur, cur += Lm * W;
    t->tmp = cur, cur += Lm * W;
    t->hid = cur, cur += Lm * hidw;
    t->add_mask = cur, cur += Lm;
    t->scores = cur, cur += (int64_t)t->threads * Lm + 64;
    cur = t->arena + (cur - t->arena + 15) / 16 * 16; /* 64-byte aligned from here */
    t->kt = cur, cur += ktf;
    t->attn_scratch = cur;
    if ((s = make_linears(t, err)) != VX_OK) goto fail;
    snprintf(t->backend, sizeof(t->backend), "%s, fp32 GEMMs (oneDNN, %s weights), %s kernels",
             t->cfg.arch, t->prepack ? "prepacked" : "mapped", t->kern->name);
    *out = t;
    return VX_OK;
fail:
    enc_text_free(t);
    return s;
}

void enc_text_free(enc_text *t)
{
    if (!t) return;
    free_cross_linears(t);
    if (t->lin)
        for (int j = 0; j < t->cfg.layers; j++) {
            struct text_linears *ln = &t->lin[j];
            enc_linear_free(ln->q), enc_linear_free(ln->k), enc_linear_free(ln->v);
            enc_linear_free(ln->o), enc_linear_free(ln->fc1), enc_linear_free(ln->fc2);
            enc_linear_free(ln->cq), enc_linear_free(ln->co);
        }
    free(t->lin);
    enc_gemm_ctx_free(t->gemm);
    free(t->vis_in);
    enc_tok_free(t->tok);
    free(t->arena);
    free(t->vis);
    free(t);
}

int enc_text_embed_dim(const enc_text *t)
{
    return (int)t->E;
}
int enc_text_max_len(const enc_text *t)
{
    return t->cfg.max_len;
}
int enc_text_has_itm(const enc_text *t)
{
    return t->bert && t->cfg.itm;
}
const enc_tok *enc_text_tokenizer(const enc_text *t)
{
    return t->tok;
}
const char *enc_text_backend(const enc_text *t)
{
    return t->backend;
}

vx_status enc_text_tokenize(const enc_text *t, const char *utf8, size_t len, int32_t *ids,
                            int32_t *mask, size_t *n_tokens, int *truncated, vx_err *err)
{
    if (!t || (!utf8 && len) || !ids) return vx_fail(err, VX_EINVAL, "text: bad argument");
    if (!utf8) utf8 = "";
    if (!t->cfg.pre_text)
        return enc_tok_encode(t->tok, utf8, len, (size_t)t->cfg.max_len, ids, mask, n_tokens,
                              truncated, err);
    char *clean = NULL;
    size_t clean_len = 0;
    vx_status s = enc_tok_pre_text(utf8, len, 0, &clean, &clean_len, err);
    if (s != VX_OK) return s;
    s = enc_tok_encode(t->tok, clean, clean_len, (size_t)t->cfg.max_len, ids, mask, n_tokens,
                       truncated, err);
    free(clean);
    return s;
}

/* Checks ids and builds the embeddings into x; returns L (tokens up to the last real one). */
static vx_status embed_tokens(enc_text *t, const int32_t *ids, const int32_t *mask, int64_t *L_out,
                              vx_err *err)
{
    int64_t Lm = t->cfg.max_len, W = t->cfg.width;
    int32_t pad = enc_tok_get_specials(t->tok).pad;
    int64_t L = 0;
    for (int64_t i = 0; i < Lm; i++) {
        if (ids[i] < 0 || ids[i] >= t->cfg.vocab_size)
            return vx_fail(err, VX_EINVAL, "text: token id %d at %lld outside the vocabulary (%d)",
                           ids[i], (long long)i, t->cfg.vocab_size);
        int real = mask ? mask[i] != 0 : ids[i] != pad;
        t->add_mask[i] = real ? 0.0f : -10000.0f;
        if (real) L = i + 1;
    }
    if (!t->bert) {
        /* the feature sits at argmax(id) (first maximum, as torch.argmax); causal attention
         * means later tokens never matter */
        int64_t am = 0;
        for (int64_t i = 1; i < Lm; i++)
            if (ids[i] > ids[am]) am = i;
        L = am + 1;
    }
    if (L == 0) L = 1; /* an all-padding input still has a defined output */
    /* rows past L: computed, never read; zeroed so what the fused residual GEMMs add up in them
     * stays bounded */
    memset(t->x + L * W, 0, (size_t)((Lm - L) * W) * sizeof(float));
    const enc_text_weights *w = t->w;
    for (int64_t i = 0; i < L; i++) {
        float *xr = t->x + i * W;
        const float *we = w->word + (int64_t)ids[i] * W, *pe = w->pos + i * W;
        for (int64_t c = 0; c < W; c++)
            xr[c] = we[c] + pe[c] + (t->bert ? w->type[c] : 0.0f);
        if (t->bert)
            t->kern->layernorm(xr, w->embed_norm_w, w->embed_norm_b, xr, W, t->cfg.norm_eps);
    }
    *L_out = L;
    return VX_OK;
}

static vx_status l2_out(const float *y, int64_t E, float *out, vx_err *err)
{
    double ss = 0;
    for (int64_t i = 0; i < E; i++)
        ss += (double)y[i] * y[i];
    if (!isfinite(ss)) return vx_fail(err, VX_EINVAL, "text: the embedding is not finite");
    float inv = (float)(1.0 / (ss > 0 ? sqrt(ss) : 1e-12));
    for (int64_t i = 0; i < E; i++)
        out[i] = y[i] * inv;
    return VX_OK;
}

/* Runs the unimodal part; x holds the hidden states [L, W] afterwards. */
static vx_status text_trunk(enc_text *t, const int32_t *ids, const int32_t *mask, int64_t *L,
                            vx_err *err)
{
    vx_status s = embed_tokens(t, ids, mask, L, err);
    if (s != VX_OK) return s;
    if (t->bert) {
        for (int j = 0; j < t->cfg.fusion_layer; j++)
            if ((s = bert_layer(t, j, *L, 0, 0, err))) return s;
    } else {
        for (int j = 0; j < t->cfg.layers; j++)
            if ((s = clip_layer(t, j, *L, err))) return s;
    }
    return VX_OK;
}

vx_status enc_text_forward_ids(enc_text *t, const int32_t *ids, const int32_t *mask,
                               float *embedding_out, vx_err *err)
{
    if (!t || !ids || !embedding_out)
        return vx_fail(err, VX_EINVAL, "enc_text_forward_ids: NULL argument");
    int saved = omp_get_max_threads();
    omp_set_num_threads(t->threads);
    int64_t L = 0, W = t->cfg.width;
    vx_status s = text_trunk(t, ids, mask, &L, err);
    if (s == VX_OK) {
        const float *feat = t->x; /* BERT: [CLS] */
        if (!t->bert) {
            feat = t->x + (L - 1) * W; /* the argmax token */
            t->kern->layernorm(feat, t->w->final_norm_w, t->w->final_norm_b, t->tmp, W,
                               t->cfg.norm_eps);
            feat = t->tmp;
        }
        float *y = t->q;
        linear(feat, 1, W, t->w->proj_w, t->w->proj_b, y, t->E);
        s = l2_out(y, t->E, embedding_out, err);
    }
    omp_set_num_threads(saved);
    return s;
}

vx_status enc_text_embed(enc_text *t, const char *utf8, size_t len, float *embedding_out,
                         vx_err *err)
{
    if (!t) return vx_fail(err, VX_EINVAL, "enc_text_embed: NULL argument");
    int32_t ids[1024], mask[1024];
    if (t->cfg.max_len > 1024)
        return vx_fail(err, VX_ELIMIT, "text: max_len %d over 1024", t->cfg.max_len);
    vx_status s = enc_text_tokenize(t, utf8, len, ids, mask, NULL, NULL, err);
    if (s != VX_OK) return s;
    return enc_text_forward_ids(t, ids, mask, embedding_out, err);
}

/* (Re)makes the vision-side buffers and GEMMs for n vision tokens: vis_in [n, Cv] (a copy of the
 * caller's tokens), vis [n, K] (s2-6B projection), ck, cv [n, W], scores [threads, max(n, L)].
 * Only when n changes; repeated calls with one token count allocate nothing. */
static vx_status prepare_vision(enc_text *t, int64_t n, vx_err *err)
{
    if (n == t->lin_n) return VX_OK;
    free_cross_linears(t);
    int64_t W = t->cfg.width, K = t->cfg.encoder_width, Cv = t->cfg.vision_width;
    int64_t Lm = t->cfg.max_len, nk = n > Lm ? n : Lm;
    if (n > t->vis_cap) {
        free(t->vis);
        free(t->vis_in);
        t->vis = NULL;
        t->vis_cap = 0;
        int64_t d = W / t->cfg.heads;
        size_t floats = (size_t)(n * K + 2 * n * W + t->threads * nk + 64 + 16 +
                                 t->cfg.heads * enc_attn_kt_floats(n, (int)d));
        t->vis = vx_aligned_alloc(64, floats * sizeof(float), err);
        t->vis_in = t->vis ? vx_aligned_alloc(64, (size_t)(n * Cv) * sizeof(float), err) : NULL;
        if (!t->vis_in) return VX_ENOMEM;
        t->vis_cap = n;
    }
    t->ck = t->vis + t->vis_cap * K;
    t->cv = t->ck + t->vis_cap * W;
    {
        int64_t cap = t->vis_cap, nk_cap = cap > Lm ? cap : Lm;
        int64_t off = t->cv + cap * W + t->threads * nk_cap + 64 - t->vis;
        t->kt_vis = t->vis + (off + 15) / 16 * 16; /* 64-byte aligned */
    }
    const float *kv_in = t->vis_in;
    vx_status s;
    if (t->cfg.fusion_proj) {
        s = enc_linear_create(t->gemm, n, Cv, K, t->vis_in, gw(t->w->fproj_w), t->w->fproj_b,
                              t->vis, 0, 0, NULL, NULL, &t->fproj, err);
        if (s != VX_OK) return s;
        kv_in = t->vis;
    }
    for (int j = t->cfg.fusion_layer; j < t->cfg.layers; j++) {
        const enc_text_layer_weights *lw = &t->w->layers[j];
        struct text_linears *ln = &t->lin[j];
        if ((s = enc_linear_create(t->gemm, n, K, W, kv_in, gw(lw->cross_k_w), lw->cross_k_b, t->ck,
                                   0, 0, NULL, NULL, &ln->ck, err)) ||
            (s = enc_linear_create(t->gemm, n, K, W, kv_in, gw(lw->cross_v_w), lw->cross_v_b, t->cv,
                                   0, 0, NULL, NULL, &ln->cv, err)))
            return s;
    }
    t->lin_n = n;
    return VX_OK;
}

vx_status enc_text_itm(enc_text *t, const int32_t *ids, const int32_t *mask,
                       const float *vision_tokens, int64_t n_tokens, float *logit_out, vx_err *err)
{
    if (!t || !ids || !vision_tokens || !logit_out)
        return vx_fail(err, VX_EINVAL, "enc_text_itm: NULL argument");
    if (!enc_text_has_itm(t))
        return vx_fail(err, VX_EUNSUPPORTED, "text: this model has no matching head");
    if (n_tokens < 1 || n_tokens > 1000000)
        return vx_fail(err, VX_EINVAL, "text: %lld vision tokens", (long long)n_tokens);
    int64_t W = t->cfg.width, K = t->cfg.encoder_width, Cv = t->cfg.vision_width;
    for (int64_t i = 0; i < n_tokens * Cv; i++)
        if (!isfinite(vision_tokens[i]))
            return vx_fail(err, VX_EINVAL, "text: vision token %lld is not finite",
                           (long long)(i / Cv));
    vx_status s = prepare_vision(t, n_tokens, err);
    if (s != VX_OK) return s;
    memcpy(t->vis_in, vision_tokens, (size_t)(n_tokens * Cv) * sizeof(float));
    float *own_scores = t->scores;
    t->scores = t->cv + t->vis_cap * W; /* room for max(N, L) keys per thread */
    int saved = omp_get_max_threads();
    omp_set_num_threads(t->threads);
    int64_t L = 0;
    s = text_trunk(t, ids, mask, &L, err);
    if (s == VX_OK && t->cfg.fusion_proj) {
        s = enc_linear_run(t->fproj, t->kern, err);
        if (s == VX_OK)
            layernorm_rows(t, t->vis, n_tokens, K, t->w->fproj_norm_w, t->w->fproj_norm_b,
                           t->cfg.fusion_proj_norm_eps, t->vis);
    }
    for (int j = t->cfg.fusion_layer; s == VX_OK && j < t->cfg.layers; j++)
        s = bert_layer(t, j, L, 1, n_tokens, err);
    if (s == VX_OK) {
        float y[2];
        linear(t->x, 1, W, t->w->itm_w, t->w->itm_b, y, 2);
        *logit_out = y[1];
        if (!isfinite(y[1])) s = vx_fail(err, VX_EINVAL, "text: the match logit is not finite");
    }
    omp_set_num_threads(saved);
    t->scores = own_scores;
    return s;
}
