/* bench/vecindex: st_search against calling FAISS directly on the same index, for the exact
 * index (IVF1,Flat) and IVF, on random vectors stored through the catalog.
 *
 * Prints per index type: p50/p99 latency and QPS of one-query searches through st_search
 * and through faiss_Index_search (C API) on the very same FAISS index with pre-normalised
 * queries, interleaved query by query so drift hits both alike; the ratio of the two is our
 * overhead (goal <= 1.05x). Also recall@10 of IVF against the exact answer, filtered search
 * latency, and the time to store and to build.
 *
 *   bench_vecindex [--n 100000] [--dim 512] [--queries 200] [--k 10] [--nlist 0 (sqrt n)]
 *                  [--nprobe 0 (default)] [--filter 1000] [--clusters 0 (uniform)]
 *                  [--dir PATH] */
#define _GNU_SOURCE
#include "st_internal.h"

#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/error_c.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL "bench"
#define MODALITY "vision"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void random_vectors(float *out, size_t n, int dim, uint64_t seed)
{
    uint64_t s = seed * 2654435761ULL + 88172645463325252ULL;
    for (size_t i = 0; i < n * (size_t)dim; i++)
        out[i] = (float)((double)(rng_next(&s) >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
}

/* Clustered data, closer to real embeddings than uniform noise (which has no structure for
 * IVF to find): vector = one of `clusters` random centres + noise of the same scale. */
static void clustered_vectors(float *out, size_t n, int dim, long clusters, uint64_t seed)
{
    uint64_t s = seed * 2654435761ULL + 1442695040888963407ULL;
    float *centre = malloc((size_t)dim * sizeof *centre);
    for (size_t i = 0; i < n; i++) {
        long c = (long)(rng_next(&s) % (uint64_t)clusters);
        random_vectors(centre, 1, dim, 1000000007ULL + (uint64_t)c);
        for (int j = 0; j < dim; j++)
            out[i * (size_t)dim + j] =
                centre[j] +
                1.0f * (float)((double)(rng_next(&s) >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
    }
    free(centre);
}

static void make_vectors(float *out, size_t n, int dim, long clusters, uint64_t seed)
{
    if (clusters > 0)
        clustered_vectors(out, n, dim, clusters, seed);
    else
        random_vectors(out, n, dim, seed);
}

static void normalise(float *v, int dim)
{
    double n2 = 0;
    for (int i = 0; i < dim; i++)
        n2 += (double)v[i] * v[i];
    float inv = (float)(1.0 / sqrt(n2));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *sorted, int n, double p)
{
    int at = (int)ceil(p * n) - 1;
    if (at < 0) at = 0;
    if (at >= n) at = n - 1;
    return sorted[at];
}

static void die(const vx_err *err)
{
    fprintf(stderr, "bench_vecindex: %s\n", err->msg);
    exit(1);
}

typedef struct timing {
    double p50_ms, p99_ms, qps;
} timing;

static timing summarise(double *ms, int n)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += ms[i];
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    timing t = {percentile(ms, n, 0.50), percentile(ms, n, 0.99), n / (total / 1000.0)};
    return t;
}

/* Opens a reader whose indexes are built with `factory` (no file exists, so it builds). */
static st_store *open_reader(const char *dir, const char *factory, int nprobe)
{
    st_options o = st_options_default();
    o.mode = ST_READ;
    o.index_factory = factory;
    o.nprobe = nprobe;
    st_store *s;
    vx_err err = {0};
    if (st_open(dir, &o, &s, &err)) die(&err);
    return s;
}

/* Runs the queries through st_search and faiss_Index_search alternately; fills ids[q*k]. */
static void run(st_store *s, const char *name, const float *queries, int nq, int dim, int k,
                int64_t *ids, timing *ours, timing *direct)
{
    vx_err err = {0};
    st_vindex *vi;
    if (st__space_find(s, MODEL, MODALITY, dim, 0, &vi, &err)) die(&err);
    st_hit *hits = calloc((size_t)k, sizeof *hits);
    float *d = calloc((size_t)k, sizeof *d), *qn = calloc((size_t)dim, sizeof *qn);
    int64_t *labels = calloc((size_t)k, sizeof *labels);
    double *ms_ours = calloc((size_t)nq, sizeof(double));
    double *ms_direct = calloc((size_t)nq, sizeof(double));
    /* Build (from the BLOBs) and warm up outside the timing. */
    int64_t t0 = vx_now_ns();
    int n;
    if (st_search(s, MODEL, MODALITY, queries, dim, k, NULL, 0, hits, &n, &err)) die(&err);
    printf("%-10s built from the catalog in %.1f s (%lld vectors)\n", name,
           (vx_now_ns() - t0) / 1e9, (long long)faiss_Index_ntotal(vi->index));
    for (int q = 0; q < nq; q++) {
        const float *query = queries + (size_t)q * dim;
        memcpy(qn, query, (size_t)dim * sizeof *qn);
        normalise(qn, dim);
        /* Alternate which goes first so cache warmth favours neither. */
        for (int pass = 0; pass < 2; pass++) {
            int do_ours = (pass == 0) == (q % 2 == 0);
            int64_t a = vx_now_ns();
            if (do_ours) {
                if (st_search(s, MODEL, MODALITY, query, dim, k, NULL, 0, hits, &n, &err))
                    die(&err);
                ms_ours[q] = (vx_now_ns() - a) / 1e6;
                for (int i = 0; i < k; i++)
                    ids[(size_t)q * k + i] = i < n ? hits[i].segment_id : -1;
            } else {
                if (faiss_Index_search(vi->index, 1, qn, k, d, labels)) {
                    fprintf(stderr, "faiss: %s\n", faiss_get_last_error());
                    exit(1);
                }
                ms_direct[q] = (vx_now_ns() - a) / 1e6;
            }
        }
    }
    *ours = summarise(ms_ours, nq);
    *direct = summarise(ms_direct, nq);
    printf("%-10s st_search     p50 %8.3f ms  p99 %8.3f ms  %8.1f QPS\n", name, ours->p50_ms,
           ours->p99_ms, ours->qps);
    printf("%-10s faiss direct  p50 %8.3f ms  p99 %8.3f ms  %8.1f QPS\n", name, direct->p50_ms,
           direct->p99_ms, direct->qps);
    printf("%-10s overhead      p50 %.3fx  p99 %.3fx  QPS %.3fx\n", name,
           ours->p50_ms / direct->p50_ms, ours->p99_ms / direct->p99_ms, direct->qps / ours->qps);
    free(hits);
    free(d);
    free(qn);
    free(labels);
    free(ms_ours);
    free(ms_direct);
}

static void run_filtered(st_store *s, const char *name, const float *queries, int nq, int dim,
                         int k, const int64_t *seg_ids, size_t n, size_t n_filter)
{
    vx_err err = {0};
    int64_t *filter = calloc(n_filter, sizeof *filter);
    uint64_t rng = 77;
    for (size_t i = 0; i < n_filter; i++)
        filter[i] = seg_ids[rng_next(&rng) % n];
    st_hit *hits = calloc((size_t)k, sizeof *hits);
    double *ms = calloc((size_t)nq, sizeof(double));
    for (int q = 0; q < nq; q++) {
        int got;
        int64_t a = vx_now_ns();
        if (st_search(s, MODEL, MODALITY, queries + (size_t)q * dim, dim, k, filter, n_filter, hits,
                      &got, &err))
            die(&err);
        ms[q] = (vx_now_ns() - a) / 1e6;
    }
    timing t = summarise(ms, nq);
    printf("%-10s filtered (%zu ids, all lists) p50 %8.3f ms  p99 %8.3f ms  %8.1f QPS\n", name,
           n_filter, t.p50_ms, t.p99_ms, t.qps);
    free(filter);
    free(hits);
    free(ms);
}

int main(int argc, char **argv)
{
    long n = 100000, queries = 200, dim = 512, k = 10, nlist = 0, nprobe = 0, n_filter = 1000;
    long clusters = 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows even when redirected */
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *target = !strcmp(a, "--n")          ? &n
                       : !strcmp(a, "--queries")  ? &queries
                       : !strcmp(a, "--dim")      ? &dim
                       : !strcmp(a, "--k")        ? &k
                       : !strcmp(a, "--nlist")    ? &nlist
                       : !strcmp(a, "--nprobe")   ? &nprobe
                       : !strcmp(a, "--filter")   ? &n_filter
                       : !strcmp(a, "--clusters") ? &clusters
                                                  : NULL;
        if (!strcmp(a, "--dir") && v) {
            dir_arg = v;
            i++;
        } else if (target && v) {
            *target = atol(v);
            i++;
        } else {
            fprintf(stderr,
                    "usage: %s [--n N] [--dim D] [--queries Q] [--k K] [--nlist L]"
                    " [--nprobe P] [--filter F] [--clusters C] [--dir PATH]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1000 || dim < 1 || queries < 1 || k < 1) {
        fprintf(stderr, "bench_vecindex: need --n >= 1000 and positive --dim/--queries/--k\n");
        return 2;
    }
    if (!nlist) nlist = (long)sqrt((double)n);
    char dir[4096];
    if (dir_arg) {
        snprintf(dir, sizeof dir, "%s", dir_arg);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vidx-bench-vecindex-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    printf("vecindex: n=%ld dim=%ld queries=%ld k=%ld nlist=%ld threads=%d vectors=%s data=%s\n", n,
           dim, queries, k, nlist, vx_cpu_count(), clusters ? "clustered" : "uniform random", dir);

    /* Store the vectors as the indexer would: a video per 1000 segments, one transaction each. */
    vx_err err = {0};
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    st_store *w;
    if (st_open(dir, &o, &w, &err)) die(&err);
    float *vecs = malloc((size_t)1000 * (size_t)dim * sizeof *vecs);
    int64_t *seg_ids = malloc((size_t)n * sizeof *seg_ids);
    int64_t lib;
    if (st_library_add(w, "bench", "/bench", &lib, &err)) die(&err);
    int64_t t0 = vx_now_ns();
    for (long base = 0; base < n; base += 1000) {
        long m = n - base < 1000 ? n - base : 1000;
        make_vectors(vecs, (size_t)m, (int)dim, clusters, (uint64_t)base + 1);
        char location[64];
        snprintf(location, sizeof location, "/bench/%ld.mp4", base / 1000);
        if (st_begin(w, &err)) die(&err);
        st_video v = {.library_id = lib, .location = location, .status = ST_VIDEO_INDEXED};
        int64_t vid;
        if (st_video_upsert(w, &v, &vid, &err)) die(&err);
        for (long i = 0; i < m; i++) {
            st_segment seg = {.video_id = vid, .start_ms = i * 1000, .end_ms = i * 1000 + 1000};
            if (st_segment_add(w, &seg, &seg_ids[base + i], &err)) die(&err);
            if (st_embedding_put(w, seg_ids[base + i], MODEL, MODALITY, (int)dim,
                                 vecs + (size_t)i * dim, &err))
                die(&err);
        }
        if (st_commit(w, &err)) die(&err);
    }
    printf("stored %ld vectors in the catalog in %.1f s\n", n, (vx_now_ns() - t0) / 1e9);
    st_close(w); /* no flush: each reader below builds its own index type from the BLOBs */
    free(vecs);

    float *qs = malloc((size_t)queries * (size_t)dim * sizeof *qs);
    make_vectors(qs, (size_t)queries, (int)dim, clusters, 424242);
    int64_t *exact = malloc((size_t)queries * (size_t)k * sizeof *exact);
    int64_t *approx = malloc((size_t)queries * (size_t)k * sizeof *approx);
    timing ours, direct;

    st_store *flat = open_reader(dir, "IVF1,Flat", 0);
    run(flat, "IVF1,Flat", qs, (int)queries, (int)dim, (int)k, exact, &ours, &direct);
    run_filtered(flat, "IVF1,Flat", qs, (int)(queries < 50 ? queries : 50), (int)dim, (int)k,
                 seg_ids, (size_t)n, (size_t)n_filter);
    st_close(flat);

    char factory[64];
    snprintf(factory, sizeof factory, "IVF%ld,Flat", nlist);
    st_store *ivf = open_reader(dir, factory, (int)nprobe);
    st_vindex *vi;
    if (st__space_find(ivf, MODEL, MODALITY, (int)dim, 0, &vi, &err)) die(&err);
    run(ivf, factory, qs, (int)queries, (int)dim, (int)k, approx, &ours, &direct);
    size_t agree = 0;
    for (long q = 0; q < queries; q++)
        for (long i = 0; i < k; i++)
            for (long j = 0; j < k; j++)
                agree += approx[q * k + i] >= 0 && approx[q * k + i] == exact[q * k + j];
    printf("%-10s nprobe %zu: recall@%ld against IVF1,Flat %.3f\n", factory,
           faiss_IndexIVF_nprobe(faiss_IndexIVF_cast(vi->index)), k,
           (double)agree / (double)(queries * k));
    run_filtered(ivf, factory, qs, (int)(queries < 50 ? queries : 50), (int)dim, (int)k, seg_ids,
                 (size_t)n, (size_t)n_filter);
    /* Recall against latency for other nprobe values (random data is IVF's worst case:
     * no clusters to find; real embeddings recall better at the same nprobe). */
    FaissIndexIVF *ivf_index = faiss_IndexIVF_cast(vi->index);
    for (size_t probe = 8; probe <= (size_t)nlist && probe <= 256; probe *= 2) {
        faiss_IndexIVF_set_nprobe(ivf_index, probe);
        st_hit *hits = calloc((size_t)k, sizeof *hits);
        double *ms = calloc((size_t)queries, sizeof(double));
        size_t hit = 0;
        for (long q = 0; q < queries; q++) {
            int got;
            int64_t a = vx_now_ns();
            if (st_search(ivf, MODEL, MODALITY, qs + (size_t)q * dim, (int)dim, (int)k, NULL, 0,
                          hits, &got, &err))
                die(&err);
            ms[q] = (vx_now_ns() - a) / 1e6;
            for (int i = 0; i < got; i++)
                for (long j = 0; j < k; j++)
                    hit += hits[i].segment_id == exact[q * k + j];
        }
        timing t = summarise(ms, (int)queries);
        printf("%-10s nprobe %3zu: recall@%ld %.3f  p50 %8.3f ms  p99 %8.3f ms  %8.1f QPS\n",
               factory, probe, k, (double)hit / (double)(queries * k), t.p50_ms, t.p99_ms, t.qps);
        free(hits);
        free(ms);
    }
    st_close(ivf);

    free(qs);
    free(exact);
    free(approx);
    free(seg_ids);
    if (!dir_arg) {
        /* Remove what we made: catalog and its WAL files, and the folders. */
        const char *names[] = {"catalog.db", "catalog.db-wal", "catalog.db-shm", "lock"};
        char path[4200];
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            unlink(path);
        }
        snprintf(path, sizeof path, "%s/index", dir);
        rmdir(path);
        snprintf(path, sizeof path, "%s/thumbs", dir);
        rmdir(path);
        rmdir(dir);
    }
    return 0;
}
