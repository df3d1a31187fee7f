/* bench/text/bench_lexical: lexical query latency over n segments of generated text.
 *
 * Stores n window segments (25 per video) with one "asr"-like text each: 12-30 words drawn
 * from a Zipf(1.0) vocabulary of 20,000 made-up words (like speech: a few words very common,
 * most rare), and a title per video. Then times one-query searches, interleaved query by query:
 *   srch_search    what `vidx search` runs: translation, BM25 over FTS5 joined with segments
 *                  and videos, snippets with highlights, merging into ranges (limit 10);
 *   st_text_search the baseline: the bare FTS5 MATCH ... ORDER BY bm25 LIMIT 10 on the same
 *                  expression (no joins, no snippets).
 * for query shapes: a common word, a rare word, two words, a phrase, a prefix, an exclusion,
 * an OR. Prints p50/p95 per shape and the ratio of the medians.
 *
 * Usage: bench_lexical [--n 100000] [--queries 200] [--dir PATH] */
#include "srch.h"
#include "st.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCAB 20000
#define PER_VIDEO 25

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* word i of the vocabulary: consonant-vowel syllables from its number */
static void word(int i, char *out)
{
    static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou";
    int n = 0;
    i += 1;
    do {
        out[n++] = cons[i % 14];
        i /= 14;
        out[n++] = vow[i % 5];
        i /= 5;
    } while (i > 0);
    out[n] = 0;
}

static double *zipf_cdf(void)
{
    double *cdf = malloc(VOCAB * sizeof *cdf), sum = 0;
    for (int i = 0; i < VOCAB; i++)
        cdf[i] = (sum += 1.0 / (i + 1));
    for (int i = 0; i < VOCAB; i++)
        cdf[i] /= sum;
    return cdf;
}

static int draw(const double *cdf)
{
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int64_t n = 100000;
    int queries = 200;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries"))
            queries = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    char tmp[] = "/tmp/vidx-bench-lexical-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) return 1;
    setenv("VIDX_LOG", "warn", 0);
    vx_err err = {0};
    st_store *s;
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    if (st_open(dir, &o, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double *cdf = zipf_cdf();
    int64_t lib;
    st_library_add(s, "bench", "/bench", &lib, &err);
    int64_t t0 = vx_now_ns();
    char body[1024], w[32];
    for (int64_t i = 0; i < n; i++) {
        if (i % 1000 == 0) st_begin(s, &err);
        static int64_t vid;
        if (i % PER_VIDEO == 0) {
            char loc[64];
            snprintf(loc, sizeof loc, "/bench/video_%06" PRId64 ".mp4", i / PER_VIDEO);
            st_video v = {0};
            v.library_id = lib;
            v.location = loc;
            v.duration_ms = PER_VIDEO * 4000;
            v.status = ST_VIDEO_INDEXED;
            st_video_upsert(s, &v, &vid, &err);
        }
        st_segment g = {.video_id = vid,
                        .level = ST_LEVEL_WINDOW,
                        .start_ms = (i % PER_VIDEO) * 4000,
                        .end_ms = (i % PER_VIDEO + 1) * 4000};
        int64_t sid;
        if (st_segment_add(s, &g, &sid, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        int words = 12 + (int)(rnd() % 19);
        size_t len = 0;
        for (int k = 0; k < words; k++) {
            word(draw(cdf), w);
            len += (size_t)snprintf(body + len, sizeof body - len, "%s%s", k ? " " : "", w);
        }
        st_text_add(s, sid, "asr", g.start_ms, g.end_ms, body, &err);
        if (i % PER_VIDEO == 0) {
            snprintf(body, sizeof body, "video_%06" PRId64 ".mp4", i / PER_VIDEO);
            st_text_add(s, sid, "title", 0, PER_VIDEO * 4000, body, &err);
        }
        if (i % 1000 == 999 || i == n - 1) st_commit(s, &err);
    }
    double store_s = (double)(vx_now_ns() - t0) / 1e9;
    printf("stored %" PRId64 " segments with texts in %.1f s (%.0f/s)\n", n, store_s,
           (double)n / store_s);
    /* query shapes; words by rank: 0 is the most common */
    char common[32], mid1[32], mid2[32], rare[32], pre[32];
    word(0, common);
    word(50, mid1);
    word(51, mid2);
    word(5000, rare);
    word(300, pre);
    pre[strlen(pre) > 3 ? 3 : strlen(pre)] = 0;
    char q[7][96];
    const char *names[7] = {"common word", "rare word", "two words", "phrase",
                            "prefix*",     "exclusion", "OR"};
    snprintf(q[0], sizeof q[0], "%s", common);
    snprintf(q[1], sizeof q[1], "%s", rare);
    snprintf(q[2], sizeof q[2], "%s %s", mid1, mid2);
    snprintf(q[3], sizeof q[3], "\"%s %s\"", common, mid1);
    snprintf(q[4], sizeof q[4], "%s*", pre);
    snprintf(q[5], sizeof q[5], "%s -%s", mid1, common);
    snprintf(q[6], sizeof q[6], "%s OR %s", rare, mid2);
    double *ta = malloc((size_t)queries * sizeof *ta), *tb = malloc((size_t)queries * sizeof *tb);
    printf("%-12s %-22s %8s %8s %10s %10s %7s %8s\n", "shape", "query", "ours p50", "p95",
           "FTS5 p50", "p95", "ratio", "results");
    for (int k = 0; k < 7; k++) {
        char *fts = NULL;
        if (srch_query_translate(q[k], &fts, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        size_t nres = 0;
        for (int r = 0; r < queries; r++) {
            int64_t a = vx_now_ns();
            srch_results res;
            srch_options so = srch_options_default();
            if (srch_search(s, q[k], &so, &res, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            nres = res.count;
            srch_results_free(&res);
            int64_t b = vx_now_ns();
            st_text_hit *hits;
            size_t nh;
            st_text_search(s, fts, 10, &hits, &nh, &err);
            st_text_hits_free(hits, nh);
            int64_t c = vx_now_ns();
            ta[r] = (double)(b - a) / 1e6;
            tb[r] = (double)(c - b) / 1e6;
        }
        qsort(ta, (size_t)queries, sizeof *ta, cmp_double);
        qsort(tb, (size_t)queries, sizeof *tb, cmp_double);
        int p95 = (int)(queries * 0.95);
        if (p95 >= queries) p95 = queries - 1;
        printf("%-12s %-22.22s %6.2f ms %5.2f ms %7.2f ms %5.2f ms %6.2fx %8zu\n", names[k], q[k],
               ta[queries / 2], ta[p95], tb[queries / 2], tb[p95],
               ta[queries / 2] / tb[queries / 2], nres);
        free(fts);
    }
    free(ta);
    free(tb);
    free(cdf);
    st_close(s);
    return 0;
}
