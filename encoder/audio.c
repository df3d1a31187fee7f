/* The s2-6B audio tower (INTERNVIDEO2.md §4) on the CPU: Kaldi-compatible log-mel fbank (the
 * FFT is libavutil's av_tx, DECISIONS §4) and BEATs (patch conv, LN, projection, conv positional
 * embedding, post-norm deep-norm layers with a GRU-gated, bucketed relative position bias shared
 * by all layers), mean pooling, audio_proj; av_fusion joins audio and vision.
 *
 * Shapes: samples [n] at 16 kHz -> fbank [F = 998, M] -> tokens [T = (F/P)·(M/P), D0] -> [T, W]
 * -> pooled [W] -> [E]. The instance's arena is sized at creation; a forward allocates nothing. */
#include "enc_internal.h"

#include <libavutil/mem.h>
#include <libavutil/tx.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define FBANK_WINDOW 400 /* 25 ms at 16 kHz */
#define FBANK_SHIFT 160  /* 10 ms */
#define FBANK_FFT 512    /* the window padded to a power of two */
#define FBANK_BINS (FBANK_FFT / 2 + 1)

/* ---- fbank ---------------------------------------------------------------------------------- */

/* Computed in double: the fbank of a pure tone has bins whose energy sits at float32's rounding
 * floor, where two float32 FFTs (torch's, av_tx's) disagree by whole log units; in double, vidx
 * matches the exact math (torchaudio on float64 input) in every bin and torchaudio's float32
 * output wherever that is above its own noise floor. */
typedef struct fbank_plan {
    AVTXContext *tx;
    av_tx_fn fn;
    int mel_bins;
    double window[FBANK_WINDOW];
    double *mel;           /* [mel_bins, FBANK_FFT / 2] triangular filters */
    double *frame;         /* [FBANK_FFT] */
    AVComplexDouble *spec; /* [FBANK_BINS] */
} fbank_plan;

static double mel_scale(double f)
{
    return 1127.0 * log(1.0 + f / 700.0);
}

static void fbank_plan_free(fbank_plan *p)
{
    if (!p) return;
    av_tx_uninit(&p->tx);
    av_free(p->frame);
    av_free(p->spec);
    free(p->mel);
}

/* torchaudio.compliance.kaldi.fbank defaults: povey window, 20 Hz .. Nyquist mel filters. */
static vx_status fbank_plan_init(fbank_plan *p, int mel_bins, vx_err *err)
{
    memset(p, 0, sizeof(*p));
    if (mel_bins < 1 || mel_bins > 256)
        return vx_fail(err, VX_EINVAL, "fbank: %d mel bins out of range [1, 256]", mel_bins);
    p->mel_bins = mel_bins;
    double scale = 1.0;
    if (av_tx_init(&p->tx, &p->fn, AV_TX_DOUBLE_RDFT, 0, FBANK_FFT, &scale, 0) < 0)
        return vx_fail(err, VX_EUNSUPPORTED, "fbank: libavutil has no real FFT of %d", FBANK_FFT);
    p->frame = av_mallocz(FBANK_FFT * sizeof(double) + 64);
    p->spec = av_mallocz((FBANK_BINS + 2) * sizeof(AVComplexDouble));
    p->mel = calloc((size_t)mel_bins * (FBANK_FFT / 2), sizeof(double));
    if (!p->frame || !p->spec || !p->mel) {
        fbank_plan_free(p);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    for (int i = 0; i < FBANK_WINDOW; i++)
        p->window[i] = pow(0.5 - 0.5 * cos(2.0 * M_PI * i / (FBANK_WINDOW - 1)), 0.85);
    double low = 20.0, high = 8000.0, fft_bin_width = 16000.0 / FBANK_FFT;
    double mel_low = mel_scale(low), mel_high = mel_scale(high);
    double delta = (mel_high - mel_low) / (mel_bins + 1);
    for (int b = 0; b < mel_bins; b++) {
        double left = mel_low + b * delta, center = mel_low + (b + 1) * delta,
               right = mel_low + (b + 2) * delta;
        for (int k = 0; k < FBANK_FFT / 2; k++) { /* the Nyquist bin has weight 0 */
            double mel = mel_scale(fft_bin_width * k);
            double up = (mel - left) / (center - left), down = (right - mel) / (right - center);
            double w = up < down ? up : down;
            p->mel[(size_t)b * (FBANK_FFT / 2) + k] = w > 0 ? w : 0;
        }
    }
    return VX_OK;
}

int64_t enc_fbank_frames(int64_t n_samples)
{
    return n_samples < FBANK_WINDOW ? 0 : 1 + (n_samples - FBANK_WINDOW) / FBANK_SHIFT;
}

/* One frame (FBANK_WINDOW samples, Kaldi scale) -> out: [mel_bins] log-mel energies. */
static void fbank_frame(fbank_plan *p, const float *x, float *out)
{
    double *f = p->frame;
    double mean = 0;
    for (int i = 0; i < FBANK_WINDOW; i++)
        mean += x[i];
    mean /= FBANK_WINDOW;
    for (int i = 0; i < FBANK_WINDOW; i++)
        f[i] = x[i] - mean;
    /* pre-emphasis 0.97, the first sample against itself (replicate padding) */
    for (int i = FBANK_WINDOW - 1; i > 0; i--)
        f[i] -= 0.97 * f[i - 1];
    f[0] -= 0.97 * f[0];
    for (int i = 0; i < FBANK_WINDOW; i++)
        f[i] *= p->window[i];
    for (int i = FBANK_WINDOW; i < FBANK_FFT; i++)
        f[i] = 0;
    p->fn(p->tx, p->spec, f, sizeof(AVComplexDouble));
    /* bins 0 .. N/2 - 1 only: the Nyquist bin carries no mel weight */
    double power[FBANK_FFT / 2];
    for (int k = 0; k < FBANK_FFT / 2; k++)
        power[k] = p->spec[k].re * p->spec[k].re + p->spec[k].im * p->spec[k].im;
    const double eps = 1.1920928955078125e-07; /* torch.finfo(float32).eps, the float32 floor */
    for (int b = 0; b < p->mel_bins; b++) {
        const double *w = p->mel + (size_t)b * (FBANK_FFT / 2);
        double acc = 0;
        for (int k = 0; k < FBANK_FFT / 2; k++)
            acc += w[k] * power[k];
        out[b] = (float)log(acc > eps ? acc : eps);
    }
}

static vx_status check_finite(const float *x, int64_t n, vx_err *err)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return vx_fail(err, VX_EINVAL, "audio: sample %lld is not finite", (long long)i);
    return VX_OK;
}

vx_status enc_fbank(const float *samples, int64_t n, int mel_bins, float *out, int64_t *frames_out,
                    vx_err *err)
{
    if ((!samples && n) || n < 0 || (!out && enc_fbank_frames(n)))
        return vx_fail(err, VX_EINVAL, "fbank: bad argument");
    vx_status s = check_finite(samples, n, err);
    if (s != VX_OK) return s;
    fbank_plan p;
    if ((s = fbank_plan_init(&p, mel_bins, err))) return s;
    int64_t frames = enc_fbank_frames(n);
    for (int64_t t = 0; t < frames; t++)
        fbank_frame(&p, samples + t * FBANK_SHIFT, out + t * mel_bins);
    fbank_plan_free(&p);
    if (frames_out) *frames_out = frames;
    return VX_OK;
}

/* ---- BEATs ---------------------------------------------------------------------------------- */

struct enc_audio {
    const enc_model *model;
    const enc_audio_weights *w;
    enc_audio_config cfg;
    int threads;
    int64_t E, T, W, F, D0, P, grid_t, grid_m;
    int prepack;
    const enc_kernels *kern;
    fbank_plan fb;
    float alpha;
    int32_t *bucket; /* [2T - 1]: bucket of (key - query) + T - 1 */
    float *arena;
    float *fbank;                     /* [frames, M] normalised, zero-padded */
    float *patches;                   /* [T, P·P] */
    float *tok0;                      /* [T, D0] */
    float *x, *q, *k, *v, *att, *tmp; /* [T, W] */
    float *hid;                       /* [T, F] */
    float *scores;                    /* [threads, T] */
    float *pooled, *proj;             /* [W], [E] */
    enc_gemm_ctx *gemm;               /* oneDNN GEMMs bound to the arena, m = T rows */
    enc_linear *patch, *in_proj;
    enc_linear **pos_conv; /* [groups]: im2col [T, cg·K] -> pos_out [T, cg] */
    float *im2col, *pos_out;
    /* attention per head through two GEMMs: qh, kh [T, d], vt [d, T], sc [T, T], oh [T, d]
     * (one head's Q, K, Vᵀ, scores / probabilities and output); qk: sc = qh·khᵀ, pv: oh = sc·vt */
    float *attn_buf, *qh, *kh, *vt, *sc, *oh;
    enc_linear *qk, *pv;
    struct audio_linears {
        enc_linear *q, *k, *v, *o, *fc1, *fc2;
    } * lin;
    char backend[96];
};

int enc_audio_embed_dim(const enc_audio *a)
{
    return (int)a->E;
}
int64_t enc_audio_token_count(const enc_audio *a)
{
    return a->T;
}
int enc_audio_width(const enc_audio *a)
{
    return (int)a->W;
}
int enc_audio_has_fusion(const enc_audio *a)
{
    return a->cfg.av_fusion;
}
const char *enc_audio_backend(const enc_audio *a)
{
    return a->backend;
}
int64_t enc_audio_max_samples(const enc_audio *a)
{
    return (int64_t)(a->cfg.frames - 1) * FBANK_SHIFT + FBANK_WINDOW;
}

/* T5 bucket in float32, as the reference computes it. */
static int32_t rel_bucket(int64_t rel, int num_buckets, int max_distance)
{
    int nb = num_buckets / 2;
    int32_t out = rel > 0 ? nb : 0;
    int64_t n = rel < 0 ? -rel : rel;
    int max_exact = nb / 2;
    if (n < max_exact) return out + (int32_t)n;
    float r = logf((float)n / (float)max_exact) / (float)log((double)max_distance / max_exact) *
              (float)(nb - max_exact);
    int64_t large = max_exact + (int64_t)r;
    if (large > nb - 1) large = nb - 1;
    return out + (int32_t)large;
}

static enc_gemm_weight gw(const float *w)
{
    return (enc_gemm_weight){w, 0};
}

/* The T-row GEMMs: weights prepacked into oneDNN's layout when the copy is at most 1 GiB. */
static vx_status make_linears(enc_audio *a, vx_err *err)
{
    const enc_audio_weights *w = a->w;
    int64_t T = a->T, W = a->W, F = a->F, D0 = a->D0, PP = a->P * a->P;
    vx_status s = enc_gemm_ctx_create(&a->gemm, err);
    if (s != VX_OK) return s;
    a->lin = calloc((size_t)a->cfg.layers, sizeof(*a->lin));
    if (!a->lin) return vx_fail(err, VX_ENOMEM, "out of memory");
    int64_t floats = (int64_t)a->cfg.layers * (4 * W * W + 2 * W * F);
    const char *env = getenv("VIDX_GEMM_PREPACK");
    a->prepack = env ? strcmp(env, "0") != 0 : floats * 4 <= ((int64_t)1 << 30);
    int pp = a->prepack;
#define MK(out, x, wt, b, y, k, o)                                                                 \
    do {                                                                                           \
        s = enc_linear_create(a->gemm, T, (k), (o), (x), gw(wt), (b), (y), 0, pp, NULL, NULL,      \
                              &(out), err);                                                        \
        if (s != VX_OK) return s;                                                                  \
    } while (0)
    MK(a->patch, a->patches, w->patch_w, w->patch_b, a->tok0, PP, D0);
    /* the grouped conv positional embedding as one GEMM per group over an im2col buffer whose
     * columns are ordered (channel, tap) like the weight rows (W/G·K each) */
    int64_t G = a->cfg.conv_pos_groups, cg = W / G, K = a->cfg.conv_pos;
    a->pos_conv = calloc((size_t)G, sizeof(*a->pos_conv));
    a->im2col = vx_aligned_alloc(64, (size_t)(T * cg * K) * sizeof(float), err);
    a->pos_out = a->im2col ? vx_aligned_alloc(64, (size_t)(T * cg) * sizeof(float), err) : NULL;
    if (!a->pos_conv || !a->pos_out)
        return err && err->status ? err->status : vx_fail(err, VX_ENOMEM, "out of memory");
    for (int64_t g = 0; g < G; g++)
        MK(a->pos_conv[g], a->im2col, w->pos_conv_w + g * cg * cg * K, w->pos_conv_b + g * cg,
           a->pos_out, cg * K, cg);
    MK(a->in_proj, a->tok0, w->in_proj_w, w->in_proj_b, a->x, D0, W);
    int64_t d = W / a->cfg.heads;
    a->attn_buf =
        vx_aligned_alloc(64, (size_t)(3 * T * d + T * d + T * T + 64) * sizeof(float), err);
    if (!a->attn_buf) return err && err->status ? err->status : VX_ENOMEM;
    a->qh = a->attn_buf;
    a->kh = a->qh + T * d;
    a->vt = a->kh + T * d;
    a->oh = a->vt + T * d;
    a->sc = a->oh + T * d;
    /* K and Vᵀ change every head: read in place (no prepack) */
    s = enc_linear_create(a->gemm, T, d, T, a->qh, gw(a->kh), NULL, a->sc, 0, 0, NULL, NULL, &a->qk,
                          err);
    if (s != VX_OK) return s;
    s = enc_linear_create(a->gemm, T, T, d, a->sc, gw(a->vt), NULL, a->oh, 0, 0, NULL, NULL, &a->pv,
                          err);
    if (s != VX_OK) return s;
    for (int j = 0; j < a->cfg.layers; j++) {
        const enc_audio_layer_weights *lw = &w->layers[j];
        struct audio_linears *ln = &a->lin[j];
        MK(ln->q, a->x, lw->q_w, lw->q_b, a->q, W, W);
        MK(ln->k, a->x, lw->k_w, lw->k_b, a->k, W, W);
        MK(ln->v, a->x, lw->v_w, lw->v_b, a->v, W, W);
        MK(ln->o, a->att, lw->o_w, lw->o_b, a->tmp, W, W);
        /* the exact GELU fused into fc1's epilogue (a oneDNN post-op) */
        static const enc_linear_post gelu_post = {ENC_GELU_ERF, NULL, 0, 0};
        s = enc_linear_create(a->gemm, T, W, F, a->x, gw(lw->fc1_w), lw->fc1_b, a->hid, 0, pp, NULL,
                              &gelu_post, &ln->fc1, err);
        if (s != VX_OK) return s;
        MK(ln->fc2, a->hid, lw->fc2_w, lw->fc2_b, a->tmp, F, W);
    }
#undef MK
    return VX_OK;
}

vx_status enc_audio_create(const enc_model *model, int threads, enc_audio **out, vx_err *err)
{
    *out = NULL;
    const enc_model_info *info = enc_model_get_info(model);
    if (!info || !info->has_audio)
        return vx_fail(err, VX_EUNSUPPORTED, "model %s has no audio tower (only s2-6B has one)",
                       info ? info->dir : "(null)");
    if (threads < 0 || threads > 1024)
        return vx_fail(err, VX_EINVAL, "audio: threads %d out of range", threads);
    enc_audio *a = calloc(1, sizeof(*a));
    if (!a) return vx_fail(err, VX_ENOMEM, "out of memory");
    a->model = model;
    a->w = enc_model_audio_weights(model);
    a->cfg = info->audio;
    a->threads = threads ? threads : omp_get_max_threads();
    a->kern = enc_kernels_best();
    a->E = info->embed_dim;
    a->W = a->cfg.width;
    a->F = a->cfg.ffn;
    a->D0 = a->cfg.patch_dim;
    a->P = a->cfg.patch_size;
    a->grid_t = a->cfg.frames / a->P;
    a->grid_m = a->cfg.mel_bins / a->P;
    a->T = a->grid_t * a->grid_m;
    a->alpha = a->cfg.deep_norm ? powf(2.0f * (float)a->cfg.layers, 0.25f) : 1.0f;
    vx_status s = fbank_plan_init(&a->fb, a->cfg.mel_bins, err);
    if (s != VX_OK) {
        free(a);
        return s;
    }
    int64_t T = a->T, W = a->W;
    int64_t floats = (int64_t)a->cfg.frames * a->cfg.mel_bins + T * a->P * a->P + T * a->D0 +
                     6 * T * W + T * a->F + (int64_t)a->threads * T + W + a->E + 64;
    a->arena = vx_aligned_alloc(64, (size_t)floats * sizeof(float), err);
    a->bucket = calloc((size_t)(2 * T), sizeof(int32_t));
    if (!a->arena || !a->bucket) {
        enc_audio_free(a);
        return err && err->status ? err->status : vx_fail(err, VX_ENOMEM, "out of memory");
    }
    float *cur = a->arena;
    a->fbank = cur, cur += (int64_t)a->cfg.frames * a->cfg.mel_bins;
    a->patches = cur, cur += T * a->P * a->P;
    a->tok0 = cur, cur += T * a->D0;
    a->x = cur, cur += T * W;
    a->q = cur, cur += T * W;
    a->k = cur, cur += T * W;
    a->v = cur, cur += T * W;
    a->att = cur, cur += T * W;
    a->tmp = cur, cur += T * W;
    a->hid = cur, cur += T * a->F;
    a->scores = cur, cur += (int64_t)a->threads * T;
    a->pooled = cur, cur += W;
    a->proj = cur;
    for (int64_t d = -(T - 1); d <= T - 1; d++)
        a->bucket[d + T - 1] = rel_bucket(d, a->cfg.num_buckets, a->cfg.max_distance);
    if ((s = make_linears(a, err)) != VX_OK) {
        enc_audio_free(a);
        return s;
    }
    snprintf(a->backend, sizeof(a->backend), "beats, fp32 GEMMs (oneDNN, %s weights), %s kernels",
             a->prepack ? "prepacked" : "mapped", a->kern->name);
    *out = a;
    return VX_OK;
}

void enc_audio_free(enc_audio *a)
{
    if (!a) return;
    if (a->lin)
        for (int j = 0; j < a->cfg.layers; j++) {
            struct audio_linears *ln = &a->lin[j];
            enc_linear_free(ln->q), enc_linear_free(ln->k), enc_linear_free(ln->v);
            enc_linear_free(ln->o), enc_linear_free(ln->fc1), enc_linear_free(ln->fc2);
        }
    free(a->lin);
    if (a->pos_conv)
        for (int g = 0; g < a->cfg.conv_pos_groups; g++)
            enc_linear_free(a->pos_conv[g]);
    free(a->pos_conv);
    free(a->im2col);
    free(a->pos_out);
    enc_linear_free(a->patch);
    enc_linear_free(a->in_proj);
    enc_linear_free(a->qk);
    enc_linear_free(a->pv);
    free(a->attn_buf);
    enc_gemm_ctx_free(a->gemm);
    fbank_plan_free(&a->fb);
    free(a->arena);
    free(a->bucket);
    free(a);
}

/* x: [T, W] -> x + GELU(conv1d(x)) (kernel K, padding K/2, groups G, the first T outputs: the
 * even kernel's extra step is what SamePad drops). Per group: im2col [T, cg·K] (zero outside the
 * sequence), one GEMM with the group's weight rows -> [T, cg] -> tmp's columns. */
static vx_status pos_conv(enc_audio *a, vx_err *err)
{
    int64_t T = a->T, W = a->W, K = a->cfg.conv_pos, G = a->cfg.conv_pos_groups, cg = W / G;
    int64_t pad = K / 2;
    for (int64_t g = 0; g < G; g++) {
        int64_t c0 = g * cg;
#pragma omp parallel for schedule(static)
        for (int64_t t = 0; t < T; t++) {
            float *row = a->im2col + t * cg * K;
            for (int64_t c = 0; c < cg; c++)
                for (int64_t k = 0; k < K; k++) {
                    int64_t src = t + k - pad;
                    row[c * K + k] = src >= 0 && src < T ? a->x[src * W + c0 + c] : 0.0f;
                }
        }
        vx_status s = enc_linear_run(a->pos_conv[g], a->kern, err);
        if (s != VX_OK) return s;
        for (int64_t t = 0; t < T; t++)
            memcpy(a->tmp + t * W + c0, a->pos_out + t * cg, (size_t)cg * sizeof(float));
    }
    enc_gelu_erf(a->tmp, T * W);
    for (int64_t i = 0; i < T * W; i++)
        a->x[i] += a->tmp[i];
    return VX_OK;
}

/* Multi-head self-attention with the gated relative position bias: per head, S = Q·Kᵀ and
 * O = P·V through oneDNN (bound to the per-head buffers), the bias and the softmax in between
 * (rows in parallel, the same operations as the reference's). */
static vx_status attention_rel(enc_audio *a, const enc_audio_layer_weights *lw, vx_err *err)
{
    int64_t T = a->T, W = a->W, H = a->cfg.heads, d = W / H;
    float scale = 1.0f / sqrtf((float)d);
    const float *rel = a->w->rel_bias; /* [buckets, H] */
    for (int64_t h = 0; h < H; h++) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < T; i++) {
            memcpy(a->qh + i * d, a->q + i * W + h * d, (size_t)d * sizeof(float));
            memcpy(a->kh + i * d, a->k + i * W + h * d, (size_t)d * sizeof(float));
        }
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < d; c++)
            for (int64_t j = 0; j < T; j++)
                a->vt[c * T + j] = a->v[j * W + h * d + c];
        vx_status s = enc_linear_run(a->qk, a->kern, err);
        if (s != VX_OK) return s;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < T; i++) {
            float *sr = a->sc + i * T;
            const float *qi = a->qh + i * d;
            float gate = 1.0f;
            if (a->cfg.gru_rel_pos) {
                float g8[8];
                for (int r = 0; r < 8; r++) {
                    float acc = lw->gate_b[r];
                    for (int64_t c = 0; c < d; c++)
                        acc += lw->gate_w[r * d + c] * qi[c];
                    g8[r] = acc;
                }
                float ga = 1.0f / (1.0f + expf(-(g8[0] + g8[1] + g8[2] + g8[3])));
                float gb = 1.0f / (1.0f + expf(-(g8[4] + g8[5] + g8[6] + g8[7])));
                gate = ga * (gb * lw->gate_a[h] - 1.0f) + 2.0f;
            }
            float mx = -INFINITY;
            for (int64_t j = 0; j < T; j++) {
                float v = sr[j] * scale + gate * rel[(int64_t)a->bucket[j - i + T - 1] * H + h];
                sr[j] = v;
                if (v > mx) mx = v;
            }
            double sum = 0;
            for (int64_t j = 0; j < T; j++) {
                sr[j] = expf(sr[j] - mx);
                sum += sr[j];
            }
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j < T; j++)
                sr[j] *= inv;
        }
        if ((s = enc_linear_run(a->pv, a->kern, err)) != VX_OK) return s;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < T; i++)
            memcpy(a->att + i * W + h * d, a->oh + i * d, (size_t)d * sizeof(float));
    }
    return VX_OK;
}

/* x = LN(alpha·x + y) row-wise. */
static void deep_add_norm(enc_audio *a, const float *y, const float *w, const float *b)
{
    int64_t T = a->T, W = a->W;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < T; r++) {
        float *xr = a->x + r * W;
        for (int64_t c = 0; c < W; c++)
            xr[c] = a->alpha * xr[c] + y[r * W + c];
        a->kern->layernorm(xr, w, b, xr, W, a->cfg.norm_eps);
    }
}

vx_status enc_audio_forward(enc_audio *a, const float *samples, int64_t n, float *embedding_out,
                            float *proj_raw_out, float *tokens_out, vx_err *err)
{
    if (!a || (!samples && n) || n < 0 || !embedding_out)
        return vx_fail(err, VX_EINVAL, "enc_audio_forward: bad argument");
    int64_t max_n = enc_audio_max_samples(a);
    if (n > max_n) n = max_n; /* the first 10 s (the model's window) */
    vx_status s = check_finite(samples, n, err);
    if (s != VX_OK) return s;
    int saved = omp_get_max_threads();
    omp_set_num_threads(a->threads);
    const enc_audio_weights *w = a->w;
    int64_t M = a->cfg.mel_bins, T = a->T, W = a->W, P = a->P, D0 = a->D0;
    /* fbank of the samples scaled to 16-bit range, normalised, zero rows after the end */
    int64_t frames = enc_fbank_frames(n);
    memset(a->fbank, 0, (size_t)(a->cfg.frames * M) * sizeof(float));
    float mean = a->cfg.fbank_mean, inv_std = 1.0f / (2.0f * a->cfg.fbank_std);
    float frame[FBANK_WINDOW];
    for (int64_t t = 0; t < frames; t++) {
        for (int i = 0; i < FBANK_WINDOW; i++)
            frame[i] = samples[t * FBANK_SHIFT + i] * 32768.0f;
        float *row = a->fbank + t * M;
        fbank_frame(&a->fb, frame, row);
        for (int64_t b = 0; b < M; b++)
            row[b] = (row[b] - mean) * inv_std;
    }
    /* patches [T, P·P]: token (ti, mi) holds rows ti·P.., columns mi·P.. */
    for (int64_t ti = 0; ti < a->grid_t; ti++)
        for (int64_t mi = 0; mi < a->grid_m; mi++) {
            float *dst = a->patches + (ti * a->grid_m + mi) * P * P;
            for (int64_t py = 0; py < P; py++)
                memcpy(dst + py * P, a->fbank + (ti * P + py) * M + mi * P,
                       (size_t)P * sizeof(float));
        }
#define RUN(lin)                                                                                   \
    do {                                                                                           \
        if ((s = enc_linear_run((lin), a->kern, err)) != VX_OK) goto done;                         \
    } while (0)
    RUN(a->patch);
    for (int64_t r = 0; r < T; r++)
        a->kern->layernorm(a->tok0 + r * D0, w->patch_norm_w, w->patch_norm_b, a->tok0 + r * D0, D0,
                           a->cfg.norm_eps);
    RUN(a->in_proj);
    if ((s = pos_conv(a, err)) != VX_OK) goto done;
    for (int64_t r = 0; r < T; r++)
        a->kern->layernorm(a->x + r * W, w->norm_w, w->norm_b, a->x + r * W, W, a->cfg.norm_eps);
    for (int j = 0; j < a->cfg.layers; j++) {
        const enc_audio_layer_weights *lw = &w->layers[j];
        const struct audio_linears *ln = &a->lin[j];
        RUN(ln->q);
        RUN(ln->k);
        RUN(ln->v);
        if ((s = attention_rel(a, lw, err)) != VX_OK) goto done;
        RUN(ln->o);
        deep_add_norm(a, a->tmp, lw->attn_norm_w, lw->attn_norm_b);
        RUN(ln->fc1); /* fused exact GELU */
        RUN(ln->fc2);
        deep_add_norm(a, a->tmp, lw->ffn_norm_w, lw->ffn_norm_b);
    }
    if (tokens_out) memcpy(tokens_out, a->x, (size_t)(T * W) * sizeof(float));
    for (int64_t c = 0; c < W; c++) {
        double acc = 0;
        for (int64_t r = 0; r < T; r++)
            acc += a->x[r * W + c];
        a->pooled[c] = (float)(acc / (double)T);
    }
    enc_rows_linear(a->pooled, 1, W, w->proj_w, w->proj_b, a->proj, a->E);
    if (proj_raw_out) memcpy(proj_raw_out, a->proj, (size_t)a->E * sizeof(float));
    double ss = 0;
    for (int64_t i = 0; i < a->E; i++)
        ss += (double)a->proj[i] * a->proj[i];
    if (!isfinite(ss)) {
        s = vx_fail(err, VX_EINVAL, "audio: the embedding is not finite");
    } else {
        float inv = (float)(1.0 / (ss > 0 ? sqrt(ss) : 1e-12));
        for (int64_t i = 0; i < a->E; i++)
            embedding_out[i] = a->proj[i] * inv;
    }
#undef RUN
done:
    omp_set_num_threads(saved);
    return s;
}

vx_status enc_audio_fuse(const enc_audio *a, const float *audio_proj_raw,
                         const float *vision_proj_raw, float *joint_out, vx_err *err)
{
    if (!a || !audio_proj_raw || !vision_proj_raw || !joint_out)
        return vx_fail(err, VX_EINVAL, "enc_audio_fuse: NULL argument");
    if (!a->cfg.av_fusion)
        return vx_fail(err, VX_EUNSUPPORTED, "audio: this model has no av_fusion layer");
    int64_t E = a->E;
    double ss = 0;
    for (int64_t o = 0; o < E; o++) {
        const float *wr = a->w->fusion_w + o * 2 * E;
        double acc = a->w->fusion_b[o];
        for (int64_t i = 0; i < E; i++)
            acc += (double)wr[i] * audio_proj_raw[i];
        for (int64_t i = 0; i < E; i++)
            acc += (double)wr[E + i] * vision_proj_raw[i];
        joint_out[o] = (float)acc;
        ss += acc * acc;
    }
    if (!isfinite(ss)) return vx_fail(err, VX_EINVAL, "audio: the joint vector is not finite");
    float inv = (float)(1.0 / (ss > 0 ? sqrt(ss) : 1e-12));
    for (int64_t o = 0; o < E; o++)
        joint_out[o] *= inv;
    return VX_OK;
}
