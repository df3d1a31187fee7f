/* Helpers shared by the storage tests: a data directory per case, random vectors, and the
 * brute-force search every index answer is checked against. */
#ifndef ST_TEST_H
#define ST_TEST_H

#include "st.h"
#include "testlib.h"

#include <math.h>

/* xorshift64*: deterministic across runs, so a failure reproduces. */
static inline uint64_t t_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [-1, 1). */
static inline float t_randf(uint64_t *state)
{
    return (float)((double)(t_rand(state) >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
}

static inline void t_random_vectors(float *out, size_t n, int dim, uint64_t seed)
{
    uint64_t state = seed * 2654435761ULL + 88172645463325252ULL;
    for (size_t i = 0; i < n * (size_t)dim; i++)
        out[i] = t_randf(&state);
}

static inline double t_cosine(const float *a, const float *b, int dim)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

/* The k best of `n` (ids[i], vecs[i]) whose alive[i] is set and that pass the filter (a list
 * of ids; NULL: all), by cosine. Returns how many; writes best ids and scores. */
static inline int t_brute_force(const float *vecs, const int64_t *ids, const int *alive, size_t n,
                                int dim, const float *query, int k, const int64_t *filter,
                                size_t n_filter, int64_t *best_ids, double *best_scores)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (alive && !alive[i]) continue;
        if (filter) {
            int in = 0;
            for (size_t f = 0; f < n_filter && !in; f++)
                in = filter[f] == ids[i];
            if (!in) continue;
        }
        double score = t_cosine(query, vecs + i * (size_t)dim, dim);
        int at = found < k ? found : k;
        while (at > 0 && best_scores[at - 1] < score) {
            if (at < k) {
                best_scores[at] = best_scores[at - 1];
                best_ids[at] = best_ids[at - 1];
            }
            at--;
        }
        if (at < k) {
            best_scores[at] = score;
            best_ids[at] = ids[i];
            if (found < k) found++;
        }
    }
    return found;
}

/* Asserts the index's hits equal the brute-force answer rank by rank (ids compared where the
 * scores are not tied within 1e-5). */
static inline void t_check_hits(const st_hit *hits, int n, const int64_t *best_ids,
                                const double *best_scores, int expected)
{
    T_EQ_INT(n, expected);
    for (int i = 0; i < n; i++) {
        T_NEAR(hits[i].score, best_scores[i], 1e-4);
        int tied = (i > 0 && fabs(best_scores[i] - best_scores[i - 1]) < 1e-5) ||
                   (i + 1 < n && fabs(best_scores[i] - best_scores[i + 1]) < 1e-5);
        if (!tied && hits[i].segment_id != best_ids[i])
            T_FAIL("rank %d: got segment %lld (%.6f), expected %lld (%.6f)", i,
                   (long long)hits[i].segment_id, hits[i].score, (long long)best_ids[i],
                   best_scores[i]);
    }
}

static inline st_store *t_open(const char *dir, st_mode mode)
{
    st_options o = st_options_default();
    o.mode = mode;
    st_store *s = NULL;
    vx_err err = {0};
    T_OK(st_open(dir, &o, &s, &err), &err);
    return s;
}

#endif
