/* bench/web: the synthetic catalog behind bench/web/run.sh, and the baseline of that benchmark.
 *
 *   bench_web_catalog fill DATA MODEL_ID DIM SEGMENTS   adds SEGMENTS segments (100 per video,
 *       4 s each, a title text per video) with random unit vectors of MODEL_ID's "vision" space
 *       to the data directory DATA (whose model id and dim come from a real `vidx index` run),
 *       then saves the index;
 *   bench_web_catalog faiss DATA MODEL_ID DIM QUERIES K  times st_search (FAISS on the very
 *       index the server searches, brought up to date first) for QUERIES random queries, k = K,
 *       one at a time, and prints p50/p99 in ms and QPS as "faiss p50_ms=… p99_ms=… qps=…". */
#define _GNU_SOURCE
#include "st.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENTS_PER_VIDEO 100
#define SEGMENT_MS 4000

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* v: [dim], uniform in [-1, 1) then scaled to unit length */
static void random_unit(float *v, int dim, uint64_t *s)
{
    double n = 0;
    for (int i = 0; i < dim; i++) {
        v[i] = (float)((double)(rng_next(s) >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
        n += (double)v[i] * v[i];
    }
    n = sqrt(n) + 1e-12;
    for (int i = 0; i < dim; i++)
        v[i] = (float)(v[i] / n);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const vx_err *err)
{
    fprintf(stderr, "bench_web_catalog: %s\n", err->msg);
    return 1;
}

static int fill(const char *data, const char *model, int dim, int64_t segments)
{
    vx_err err = {0};
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    st_store *s;
    if (st_open(data, &o, &s, &err)) return fail(&err);
    int64_t lib;
    if (st_library_add(s, "bench", "/bench-synthetic", &lib, &err)) return fail(&err);
    float *v = malloc((size_t)dim * sizeof *v);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    static const char *const words[] = {"harbor", "lantern", "zebra",  "forest", "parade",
                                        "walrus", "sunset",  "market", "river",  "canyon"};
    int64_t videos = (segments + SEGMENTS_PER_VIDEO - 1) / SEGMENTS_PER_VIDEO;
    for (int64_t vi = 0; vi < videos; vi++) {
        if (vi % 100 == 0 && st_begin(s, &err)) return fail(&err);
        char loc[64];
        snprintf(loc, sizeof loc, "/bench-synthetic/v%06" PRId64 ".mp4", vi);
        st_video vid;
        memset(&vid, 0, sizeof vid);
        vid.library_id = lib;
        vid.location = loc;
        vid.size_bytes = 1000000 + vi;
        vid.mtime_ms = 1700000000000LL + vi * 1000;
        vid.duration_ms = (int64_t)SEGMENTS_PER_VIDEO * SEGMENT_MS;
        vid.status = ST_VIDEO_INDEXED;
        int64_t video_id;
        if (st_video_upsert(s, &vid, &video_id, &err)) return fail(&err);
        for (int k = 0; k < SEGMENTS_PER_VIDEO && vi * SEGMENTS_PER_VIDEO + k < segments; k++) {
            st_segment seg = {0,
                              video_id,
                              ST_LEVEL_WINDOW,
                              (int64_t)k * SEGMENT_MS,
                              (int64_t)(k + 1) * SEGMENT_MS,
                              NULL};
            int64_t sid;
            if (st_segment_add(s, &seg, &sid, &err)) return fail(&err);
            random_unit(v, dim, &rng);
            if (st_embedding_put(s, sid, model, "vision", dim, v, &err)) return fail(&err);
            if (k == 0) {
                char title[96];
                snprintf(title, sizeof title, "v%06" PRId64 " %s %s", vi, words[vi % 10],
                         words[(vi / 10) % 10]);
                if (st_text_add(s, sid, "title", 0, SEGMENT_MS, title, &err)) return fail(&err);
            }
        }
        if ((vi % 100 == 99 || vi == videos - 1) && st_commit(s, &err)) return fail(&err);
    }
    free(v);
    if (st_flush(s, &err)) return fail(&err);
    st_close(s);
    printf("filled %" PRId64 " segments in %" PRId64 " videos (%s, dim %d)\n", segments, videos,
           model, dim);
    return 0;
}

static int faiss_time(const char *data, const char *model, int dim, int queries, int k)
{
    vx_err err = {0};
    st_store *s;
    if (st_open(data, NULL, &s, &err)) return fail(&err);
    float *q = malloc((size_t)dim * sizeof *q);
    st_hit *hits = malloc((size_t)k * sizeof *hits);
    double *ms = malloc((size_t)queries * sizeof *ms);
    uint64_t rng = 0x243f6a8885a308d3ULL;
    int n;
    random_unit(q, dim, &rng); /* the first search loads the index: not timed */
    if (st_search(s, model, "vision", q, dim, k, NULL, 0, hits, &n, &err)) return fail(&err);
    double total = 0;
    for (int i = 0; i < queries; i++) {
        random_unit(q, dim, &rng);
        int64_t t0 = vx_now_ns();
        if (st_search(s, model, "vision", q, dim, k, NULL, 0, hits, &n, &err)) return fail(&err);
        ms[i] = (double)(vx_now_ns() - t0) / 1e6;
        total += ms[i];
    }
    qsort(ms, (size_t)queries, sizeof *ms, cmp_double);
    printf("faiss p50_ms=%.3f p99_ms=%.3f qps=%.1f k=%d queries=%d\n", ms[queries / 2],
           ms[(int)(queries * 0.99)], queries / (total / 1e3), k, queries);
    free(q);
    free(hits);
    free(ms);
    st_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "fill"))
        return fill(argv[2], argv[3], atoi(argv[4]), atoll(argv[5]));
    if (argc == 7 && !strcmp(argv[1], "faiss"))
        return faiss_time(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    fprintf(stderr, "usage: bench_web_catalog fill DATA MODEL_ID DIM SEGMENTS\n"
                    "       bench_web_catalog faiss DATA MODEL_ID DIM QUERIES K\n");
    return 2;
}
