/* bench_text_audio: latency of the text and audio towers on a model directory.
 *
 *   bench_text_audio text  MODEL_DIR [iters] [threads]   query vector, max_len tokens (all real)
 *   bench_text_audio audio MODEL_DIR [iters] [threads]   10 s of audio (fbank included)
 *   bench_text_audio itm   MODEL_DIR [iters] [threads]   matching head: 32 tokens against 1025
 *                                                        vision tokens (4 frames), query path
 * included
 *
 * Prints one JSON line: {"tower", "iters", "threads", "p50_ms", "min_ms", "mean_ms", "backend"}.
 * Driven by bench_text_audio.py, which builds the models and times PyTorch on the same weights. */
#include "enc.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s text|audio MODEL_DIR [iters] [threads]\n", argv[0]);
        return 2;
    }
    int iters = argc > 3 ? atoi(argv[3]) : 20, threads = argc > 4 ? atoi(argv[4]) : 0;
    if (iters < 1) iters = 1;
    vx_err err = {0};
    enc_model *model = NULL;
    if (enc_model_open(argv[2], &model, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double *ms = calloc((size_t)iters, sizeof(double));
    const char *backend = "";
    enc_text *text = NULL;
    enc_audio *audio = NULL;
    float emb[4096];
    int32_t ids[1024], mask[1024];
    float *wave = NULL;
    int64_t n = 0;
    float *vis = NULL;
    int64_t nvis = 1025;
    int itm = !strcmp(argv[1], "itm");
    if (!strcmp(argv[1], "text") || itm) {
        if (enc_text_create(model, threads, &text, &err))
            return fprintf(stderr, "%s\n", err.msg), 1;
        int L = enc_text_max_len(text);
        enc_tok_specials sp = enc_tok_get_specials(enc_text_tokenizer(text));
        for (int i = 0; i < L; i++)
            ids[i] = 1000 + (i * 37) % 20000, mask[i] = 1;
        ids[0] = sp.begin;
        ids[L - 1] = sp.end; /* MobileCLIP: the largest id, so the feature is the last token */
        backend = enc_text_backend(text);
        if (itm) {
            int64_t cv = enc_model_get_info(model)->text.vision_width;
            vis = malloc((size_t)(nvis * cv) * sizeof(float));
            for (int64_t i = 0; i < nvis * cv; i++)
                vis[i] = sinf(0.001f * (float)i);
        }
    } else {
        if (enc_audio_create(model, threads, &audio, &err))
            return fprintf(stderr, "%s\n", err.msg), 1;
        n = enc_audio_max_samples(audio);
        wave = malloc((size_t)n * sizeof(float));
        unsigned r = 12345;
        for (int64_t i = 0; i < n; i++) {
            r = r * 1664525u + 1013904223u;
            wave[i] =
                0.3f * sinf(0.07f * (float)i) + 0.05f * ((float)(r >> 8) / 16777216.0f - 0.5f);
        }
        backend = enc_audio_backend(audio);
    }
    for (int it = -2; it < iters; it++) { /* two warm-up runs */
        int64_t t0 = vx_now_ns();
        vx_status s = itm    ? enc_text_itm(text, ids, mask, vis, nvis, emb, &err)
                      : text ? enc_text_forward_ids(text, ids, mask, emb, &err)
                             : enc_audio_forward(audio, wave, n, emb, NULL, NULL, &err);
        if (s) return fprintf(stderr, "%s\n", err.msg), 1;
        if (it >= 0) ms[it] = (double)(vx_now_ns() - t0) / 1e6;
    }
    double sum = 0;
    for (int i = 0; i < iters; i++)
        sum += ms[i];
    qsort(ms, (size_t)iters, sizeof(double), cmp_double);
    printf("{\"tower\":\"%s\",\"iters\":%d,\"threads\":%d,\"p50_ms\":%.3f,\"min_ms\":%.3f,"
           "\"mean_ms\":%.3f,\"backend\":\"%s\"}\n",
           argv[1], iters, threads ? threads : omp_get_max_threads(), ms[iters / 2], ms[0],
           sum / iters, backend);
    enc_text_free(text);
    enc_audio_free(audio);
    enc_model_close(model);
    free(wave);
    free(vis);
    free(ms);
    return 0;
}
