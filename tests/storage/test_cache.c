/* The shared index cache (st_index_cache): reader threads with their own handles search one
 * shared index while a writer adds and deletes vectors and commits; every answer is checked
 * against a brute-force search at a committed generation the handle may show (st.h: at least
 * its snapshot's, at most the latest when the call returned). Also: one index in memory for
 * all handles, a damaged file rebuilt once, and the cache bound to one data directory. */
#define _GNU_SOURCE
#include "st_internal.h"
#include "st_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL "tiny-1"
#define MODALITY "vision"
#define DIM 32
#define K 10
#define READERS 4
#define INITIAL_VIDEOS 15
#define ROUNDS 60
#define PER_VIDEO 20 /* vectors added per round (one video) */
#define MAX_VECTORS ((INITIAL_VIDEOS + ROUNDS) * 100)
#define MAX_GENERATIONS 4096

/* What the writer committed, by generation: readers compare with it. The vector arrays are
 * allocated once (never moved) and entries below a recorded count are never written again. */
typedef struct history {
    pthread_mutex_t mutex;
    pthread_cond_t grew;
    float *vecs;                    /* [MAX_VECTORS, DIM] */
    int64_t *ids;                   /* [MAX_VECTORS] segment ids */
    int64_t *videos;                /* [MAX_VECTORS] */
    size_t n;                       /* vectors ever added (writer's view) */
    int *alive;                     /* writer's current [MAX_VECTORS] */
    int *alive_at[MAX_GENERATIONS]; /* copy of alive (n_at entries) after each commit */
    size_t n_at[MAX_GENERATIONS];
    int64_t latest; /* highest recorded generation */
    int writer_done;
    const char *dir;
    st_index_cache *cache;
    long checks, snapshot_checks, newer_than_snapshot;
} history;

static void history_record(history *h, st_store *w)
{
    vx_err err = {0};
    int64_t g;
    T_OK(st_generation(w, &g, &err), &err);
    T_ASSERT(g >= 0 && g < MAX_GENERATIONS);
    int *copy = malloc((h->n ? h->n : 1) * sizeof *copy);
    T_ASSERT(copy);
    memcpy(copy, h->alive, h->n * sizeof *copy);
    pthread_mutex_lock(&h->mutex);
    free(h->alive_at[g]);
    h->alive_at[g] = copy;
    h->n_at[g] = h->n;
    if (g > h->latest) h->latest = g;
    pthread_cond_broadcast(&h->grew);
    pthread_mutex_unlock(&h->mutex);
}

/* Commits one video at location with `count` segments of step_ms each and their vectors
 * vecs[count, DIM]; the segment ids go to ids[count]. Returns the video id. */
static int64_t commit_video(st_store *w, int64_t lib, const char *location, const float *vecs,
                            size_t count, int64_t step_ms, int64_t *ids)
{
    vx_err err = {0};
    T_OK(st_begin(w, &err), &err);
    st_video v = {.library_id = lib, .location = (char *)location, .status = ST_VIDEO_INDEXED};
    int64_t video;
    T_OK(st_video_upsert(w, &v, &video, &err), &err);
    for (size_t i = 0; i < count; i++) {
        st_segment seg = {.video_id = video,
                          .start_ms = (int64_t)i * step_ms,
                          .end_ms = (int64_t)i * step_ms + step_ms};
        T_OK(st_segment_add(w, &seg, &ids[i], &err), &err);
        T_OK(st_embedding_put(w, ids[i], MODEL, MODALITY, DIM, vecs + i * DIM, &err), &err);
    }
    T_OK(st_commit(w, &err), &err);
    return video;
}

/* One committed video of `count` new vectors. */
static void add_video(history *h, st_store *w, int64_t lib, int tag, size_t count, uint64_t seed)
{
    T_ASSERT(h->n + count <= MAX_VECTORS);
    t_random_vectors(h->vecs + h->n * DIM, count, DIM, seed);
    char location[64];
    snprintf(location, sizeof location, "/media/v%d.mp4", tag);
    int64_t video =
        commit_video(w, lib, location, h->vecs + h->n * DIM, count, 4000, h->ids + h->n);
    for (size_t i = h->n; i < h->n + count; i++) {
        h->videos[i] = video;
        h->alive[i] = 1;
    }
    h->n += count;
    history_record(h, w);
}

static void delete_video(history *h, st_store *w, int64_t video)
{
    vx_err err = {0};
    T_OK(st_video_delete(w, video, &err), &err);
    for (size_t i = 0; i < h->n; i++)
        if (h->videos[i] == video) h->alive[i] = 0;
    history_record(h, w);
}

static void *writer_main(void *arg)
{
    history *h = arg;
    vx_err err = {0};
    st_store *w = t_open(h->dir, ST_WRITE);
    st_library lib;
    T_OK(st_library_find(w, "lib", &lib, &err), &err);
    uint64_t rng = 991;
    for (int round = 0; round < ROUNDS; round++) {
        add_video(h, w, lib.id, 1000 + round, PER_VIDEO, 5000 + (uint64_t)round);
        if (round % 3 == 1) {
            /* Delete a random video that still has vectors. */
            size_t at = (size_t)(t_rand(&rng) % h->n);
            while (!h->alive[at])
                at = (at + 1) % h->n;
            delete_video(h, w, h->videos[at]);
        }
        /* A flush prunes the change log: readers behind it reload the file. */
        if (round % 8 == 7) T_OK(st_flush(w, &err), &err);
        usleep(2000);
    }
    st_library_clear(&lib);
    st_close(w);
    pthread_mutex_lock(&h->mutex);
    h->writer_done = 1;
    pthread_cond_broadcast(&h->grew);
    pthread_mutex_unlock(&h->mutex);
    return NULL;
}

/* 1 when hits equal the brute-force answer over the state recorded at generation g. Ranks
 * whose scores tie within 1e-5 (the (K+1)th included: float32 in FAISS, double here) may
 * hold either id. */
static int hits_match(const history *h, int64_t g, const float *query, const int64_t *filter,
                      size_t n_filter, const st_hit *hits, int n)
{
    int64_t best_ids[K + 1];
    double best_scores[K + 1];
    int found = t_brute_force(h->vecs, h->ids, h->alive_at[g], h->n_at[g], DIM, query, K + 1,
                              filter, n_filter, best_ids, best_scores);
    if ((found < K ? found : K) != n) return 0;
    for (int i = 0; i < n; i++) {
        if (fabs(hits[i].score - best_scores[i]) > 1e-4) return 0;
        int tied = (i > 0 && fabs(best_scores[i] - best_scores[i - 1]) < 1e-5) ||
                   (i + 1 < found && fabs(best_scores[i] - best_scores[i + 1]) < 1e-5);
        if (!tied && hits[i].segment_id != best_ids[i]) return 0;
    }
    return 1;
}

/* Prints hits beside the brute-force answer at g (a failure's diagnosis). */
static void hits_print(const history *h, int64_t g, const float *query, const int64_t *filter,
                       size_t n_filter, const st_hit *hits, int n)
{
    int64_t best_ids[K + 1];
    double best_scores[K + 1];
    int found = t_brute_force(h->vecs, h->ids, h->alive_at[g], h->n_at[g], DIM, query, K + 1,
                              filter, n_filter, best_ids, best_scores);
    for (int i = 0; i < K + 1; i++)
        fprintf(stderr, "  rank %2d: got %6lld %.7f   generation %lld: %6lld %.7f\n", i,
                i < n ? (long long)hits[i].segment_id : -1LL, i < n ? hits[i].score : 0.0,
                (long long)g, i < found ? (long long)best_ids[i] : -1LL,
                i < found ? best_scores[i] : 0.0);
}

typedef struct reader_arg {
    history *h;
    int index;
} reader_arg;

static void *reader_main(void *arg)
{
    reader_arg *ra = arg;
    history *h = ra->h;
    vx_err err = {0};
    st_options o = st_options_default();
    o.index_cache = h->cache;
    st_store *r = NULL;
    T_OK(st_open(h->dir, &o, &r, &err), &err);
    uint64_t rng = 77 + (uint64_t)ra->index;
    float query[DIM];
    int64_t filter[50];
    st_hit hits[K];
    for (int iter = 0;; iter++) {
        pthread_mutex_lock(&h->mutex);
        int done = h->writer_done;
        pthread_mutex_unlock(&h->mutex);
        if (done && iter >= 20) break;
        t_random_vectors(query, 1, DIM, t_rand(&rng));
        size_t n_filter = 0;
        if (iter % 3 == 2) {
            /* Any ids ever added, some dead, some not committed yet: the filter is exact. */
            pthread_mutex_lock(&h->mutex);
            size_t known = h->n_at[h->latest];
            pthread_mutex_unlock(&h->mutex);
            for (; n_filter < 50; n_filter++)
                filter[n_filter] = h->ids[t_rand(&rng) % known];
        }
        int snapshot = iter % 2;
        int64_t g0, g1;
        if (snapshot) T_OK(st_read_begin(r, &err), &err);
        T_OK(st_generation(r, &g0, &err), &err);
        int n = 0;
        T_OK(st_search(r, MODEL, MODALITY, query, DIM, K, n_filter ? filter : NULL, n_filter, hits,
                       &n, &err),
             &err);
        if (snapshot) st_read_end(r);
        T_OK(st_generation(r, &g1, &err), &err);
        T_ASSERT(g0 <= g1);
        /* The writer records a generation right after its commit returns. */
        pthread_mutex_lock(&h->mutex);
        while (h->latest < g1)
            pthread_cond_wait(&h->grew, &h->mutex);
        pthread_mutex_unlock(&h->mutex);
        int64_t shown = -1;
        for (int64_t g = g0; g <= g1 && shown < 0; g++)
            if (h->alive_at[g] &&
                hits_match(h, g, query, n_filter ? filter : NULL, n_filter, hits, n))
                shown = g;
        if (shown < 0) {
            for (int64_t g = 0; g <= h->latest; g++)
                if (h->alive_at[g] &&
                    hits_match(h, g, query, n_filter ? filter : NULL, n_filter, hits, n))
                    fprintf(stderr, "  (they match generation %lld)\n", (long long)g);
            hits_print(h, g0, query, n_filter ? filter : NULL, n_filter, hits, n);
            T_FAIL("reader %d, search %d (%s, %zu filter ids): %d hits match no committed"
                   " generation in [%lld, %lld]",
                   ra->index, iter, snapshot ? "snapshot" : "autocommit", n_filter, n,
                   (long long)g0, (long long)g1);
        }
        pthread_mutex_lock(&h->mutex);
        h->checks++;
        if (snapshot) h->snapshot_checks++;
        if (snapshot && shown > g0) h->newer_than_snapshot++;
        pthread_mutex_unlock(&h->mutex);
    }
    /* The handle never loaded a private copy. */
    for (size_t i = 0; i < r->space_count; i++)
        T_ASSERT(r->spaces[i]->index == NULL);
    st_close(r);
    return NULL;
}

static void test_readers_share_while_writer_commits(void)
{
    char *dir = t_tempdir("st-cache-rw");
    history h;
    memset(&h, 0, sizeof h);
    pthread_mutex_init(&h.mutex, NULL);
    pthread_cond_init(&h.grew, NULL);
    h.dir = dir;
    h.vecs = malloc((size_t)MAX_VECTORS * DIM * sizeof *h.vecs);
    h.ids = malloc(MAX_VECTORS * sizeof *h.ids);
    h.videos = malloc(MAX_VECTORS * sizeof *h.videos);
    h.alive = calloc(MAX_VECTORS, sizeof *h.alive);
    T_ASSERT(h.vecs && h.ids && h.videos && h.alive);
    vx_err err = {0};
    {
        st_store *w = t_open(dir, ST_WRITE);
        int64_t lib;
        T_OK(st_library_add(w, "lib", "/media", &lib, &err), &err);
        for (int v = 0; v < INITIAL_VIDEOS; v++)
            add_video(&h, w, lib, v, 100, 100 + (uint64_t)v);
        T_OK(st_flush(w, &err), &err);
        st_close(w);
    }
    T_OK(st_index_cache_create(&h.cache, &err), &err);
    pthread_t writer, readers[READERS];
    reader_arg args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (reader_arg){.h = &h, .index = i};
        T_ASSERT(pthread_create(&readers[i], NULL, reader_main, &args[i]) == 0);
    }
    T_ASSERT(pthread_create(&writer, NULL, writer_main, &h) == 0);
    T_ASSERT(pthread_join(writer, NULL) == 0);
    for (int i = 0; i < READERS; i++)
        T_ASSERT(pthread_join(readers[i], NULL) == 0);
    fprintf(stderr,
            "  %ld checked searches (%ld in snapshots, %ld of them showed a newer"
            " generation)\n",
            h.checks, h.snapshot_checks, h.newer_than_snapshot);
    T_ASSERT(h.checks >= READERS * 20);

    /* One index for all the handles, holding the final generation's vectors once one more
     * handle has searched after the last commit (the readers may have stopped before it). */
    st_options o = st_options_default();
    o.index_cache = h.cache;
    st_store *last = NULL;
    T_OK(st_open(dir, &o, &last, &err), &err);
    float query[DIM];
    t_random_vectors(query, 1, DIM, 4242);
    st_hit hits[K];
    int n = 0;
    T_OK(st_search(last, MODEL, MODALITY, query, DIM, K, NULL, 0, hits, &n, &err), &err);
    T_ASSERT(hits_match(&h, h.latest, query, NULL, 0, hits, n));
    st_close(last);
    st_index_cache_stats cs;
    st_index_cache_stats_get(h.cache, &cs);
    T_EQ_INT(cs.indexes, 1);
    T_ASSERT(cs.loads >= 1);
    T_ASSERT(cs.replays >= 1);
    int64_t alive = 0;
    for (size_t i = 0; i < h.n; i++)
        alive += h.alive[i];
    T_EQ_INT(cs.vectors, alive);

    st_index_cache_free(h.cache);
    for (int g = 0; g < MAX_GENERATIONS; g++)
        free(h.alive_at[g]);
    free(h.vecs);
    free(h.ids);
    free(h.videos);
    free(h.alive);
    pthread_cond_destroy(&h.grew);
    pthread_mutex_destroy(&h.mutex);
    t_rmtree(dir);
    free(dir);
}

/* ---- a damaged file, many readers at once ------------------------------------------------ */

typedef struct damage_ctx {
    const char *dir;
    st_index_cache *cache;
    pthread_barrier_t start;
    const history *h;
    int64_t generation;
} damage_ctx;

static void *damage_reader(void *arg)
{
    damage_ctx *d = arg;
    vx_err err = {0};
    st_options o = st_options_default();
    o.index_cache = d->cache;
    st_store *r = NULL;
    T_OK(st_open(d->dir, &o, &r, &err), &err);
    float query[DIM];
    t_random_vectors(query, 1, DIM, (uint64_t)pthread_self());
    st_hit hits[K];
    int n = 0;
    pthread_barrier_wait(&d->start); /* every handle finds the index unloaded */
    T_OK(st_search(r, MODEL, MODALITY, query, DIM, K, NULL, 0, hits, &n, &err), &err);
    if (!hits_match(d->h, d->generation, query, NULL, 0, hits, n))
        T_FAIL("a search over the rebuilt index differs from brute force");
    st_close(r);
    return NULL;
}

static void test_damaged_file_rebuilt_once(void)
{
    char *dir = t_tempdir("st-cache-damage");
    history h;
    memset(&h, 0, sizeof h);
    pthread_mutex_init(&h.mutex, NULL);
    pthread_cond_init(&h.grew, NULL);
    h.vecs = malloc((size_t)MAX_VECTORS * DIM * sizeof *h.vecs);
    h.ids = malloc(MAX_VECTORS * sizeof *h.ids);
    h.videos = malloc(MAX_VECTORS * sizeof *h.videos);
    h.alive = calloc(MAX_VECTORS, sizeof *h.alive);
    T_ASSERT(h.vecs && h.ids && h.videos && h.alive);
    vx_err err = {0};
    st_store *w = t_open(dir, ST_WRITE);
    int64_t lib;
    T_OK(st_library_add(w, "lib", "/media", &lib, &err), &err);
    for (int v = 0; v < 8; v++)
        add_video(&h, w, lib, v, 100, 300 + (uint64_t)v);
    T_OK(st_flush(w, &err), &err);
    int64_t generation;
    T_OK(st_generation(w, &generation, &err), &err);
    char *path = st__vindex_path(w, MODEL, MODALITY, &err);
    T_ASSERT(path);
    st_close(w);

    /* One flipped byte inside the FAISS data: only the payload checksum can tell. */
    int fd = open(path, O_RDWR);
    T_ASSERT(fd >= 0);
    struct stat sb;
    T_ASSERT(fstat(fd, &sb) == 0);
    off_t at = sb.st_size - 1000;
    unsigned char byte;
    T_ASSERT(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x40;
    T_ASSERT(pwrite(fd, &byte, 1, at) == 1);
    close(fd);

    damage_ctx d = {.dir = dir, .h = &h, .generation = generation};
    T_OK(st_index_cache_create(&d.cache, &err), &err);
    T_ASSERT(pthread_barrier_init(&d.start, NULL, READERS) == 0);
    pthread_t threads[READERS];
    for (int i = 0; i < READERS; i++)
        T_ASSERT(pthread_create(&threads[i], NULL, damage_reader, &d) == 0);
    for (int i = 0; i < READERS; i++)
        T_ASSERT(pthread_join(threads[i], NULL) == 0);
    pthread_barrier_destroy(&d.start);
    st_index_cache_stats cs;
    st_index_cache_stats_get(d.cache, &cs);
    T_EQ_INT(cs.rebuilds, 1);
    T_EQ_INT(cs.loads, 0);
    T_EQ_INT(cs.indexes, 1);
    T_EQ_INT(cs.vectors, 800);
    st_index_cache_free(d.cache);

    free(path);
    for (int g = 0; g < MAX_GENERATIONS; g++)
        free(h.alive_at[g]);
    free(h.vecs);
    free(h.ids);
    free(h.videos);
    free(h.alive);
    pthread_cond_destroy(&h.grew);
    pthread_mutex_destroy(&h.mutex);
    t_rmtree(dir);
    free(dir);
}

/* ---- a snapshot older than the shared index ------------------------------------------------ */

/* The catalog as a flat list: a changed vector is a new entry with the same id (the old one
 * dies), so a copy of `alive` is a whole generation. */
typedef struct flat {
    float vecs[1200 * DIM];
    int64_t ids[1200];
    int64_t videos[1200];
    int alive[1200];
    size_t n;
} flat;

static void flat_check(st_store *s, const flat *f, const int *alive, int queries, uint64_t seed,
                       int snapshot_lookups)
{
    vx_err err = {0};
    uint64_t rng = seed;
    for (int q = 0; q < queries; q++) {
        float query[DIM];
        t_random_vectors(query, 1, DIM, t_rand(&rng));
        int64_t filter[60];
        size_t n_filter = 0;
        if (q % 2) /* changed, deleted and new ids among others */
            for (; n_filter < 60; n_filter++)
                filter[n_filter] = f->ids[t_rand(&rng) % f->n];
        st_hit hits[K];
        int n = 0;
        T_OK(st_search(s, MODEL, MODALITY, query, DIM, K, n_filter ? filter : NULL, n_filter, hits,
                       &n, &err),
             &err);
        int64_t best_ids[K];
        double best_scores[K];
        int want = t_brute_force(f->vecs, f->ids, alive, f->n, DIM, query, K,
                                 n_filter ? filter : NULL, n_filter, best_ids, best_scores);
        t_check_hits(hits, n, best_ids, best_scores, want);
        if (snapshot_lookups) {
            /* What search/ does next inside the same snapshot: every hit must be there. */
            int64_t ids[K];
            st_segment_span spans[K];
            for (int i = 0; i < n; i++)
                ids[i] = hits[i].segment_id;
            T_OK(st_segment_spans(s, ids, (size_t)n, spans, &err), &err);
            for (int i = 0; i < n; i++)
                T_ASSERT(spans[i].video_id != 0);
        }
    }
}

static void flat_add_video(st_store *w, flat *f, int64_t lib, int tag, size_t count)
{
    t_random_vectors(f->vecs + f->n * DIM, count, DIM, 7000 + (uint64_t)tag);
    char location[64];
    snprintf(location, sizeof location, "/media/f%d.mp4", tag);
    int64_t video =
        commit_video(w, lib, location, f->vecs + f->n * DIM, count, 1000, f->ids + f->n);
    for (size_t i = f->n; i < f->n + count; i++) {
        f->videos[i] = video;
        f->alive[i] = 1;
    }
    f->n += count;
}

/* Commits new vectors for `count` live segments (each becomes a new flat entry). */
static void flat_change_vectors(st_store *w, flat *f, size_t count, uint64_t seed)
{
    vx_err err = {0};
    uint64_t rng = seed;
    T_OK(st_begin(w, &err), &err);
    for (size_t c = 0; c < count; c++) {
        size_t at = (size_t)(t_rand(&rng) % f->n);
        while (!f->alive[at])
            at = (at + 1) % f->n;
        size_t to = f->n++;
        t_random_vectors(f->vecs + to * DIM, 1, DIM, seed * 31 + c);
        f->ids[to] = f->ids[at];
        f->videos[to] = f->videos[at];
        f->alive[at] = 0;
        f->alive[to] = 1;
        T_OK(st_embedding_put(w, f->ids[to], MODEL, MODALITY, DIM, f->vecs + to * DIM, &err), &err);
    }
    T_OK(st_commit(w, &err), &err);
}

static void flat_delete_video(st_store *w, flat *f, int64_t video)
{
    vx_err err = {0};
    T_OK(st_video_delete(w, video, &err), &err);
    for (size_t i = 0; i < f->n; i++)
        if (f->videos[i] == video) f->alive[i] = 0;
}

static void test_snapshot_sees_its_generation(void)
{
    char *dir = t_tempdir("st-cache-snap");
    static flat f;
    memset(&f, 0, sizeof f);
    vx_err err = {0};
    st_store *w = t_open(dir, ST_WRITE);
    int64_t lib;
    T_OK(st_library_add(w, "lib", "/media", &lib, &err), &err);
    for (int v = 0; v < 6; v++)
        flat_add_video(w, &f, lib, v, 100);
    T_OK(st_flush(w, &err), &err);

    st_index_cache *cache;
    T_OK(st_index_cache_create(&cache, &err), &err);
    st_options o = st_options_default();
    o.index_cache = cache;
    st_store *a = NULL, *b = NULL;
    T_OK(st_open(dir, &o, &a, &err), &err);
    T_OK(st_open(dir, &o, &b, &err), &err);
    flat_check(a, &f, f.alive, 5, 1, 0); /* loads the shared index */
    static int alive_then[1200];
    memcpy(alive_then, f.alive, sizeof alive_then);

    /* a holds a snapshot; the writer moves on; b brings the shared index forward. */
    T_OK(st_read_begin(a, &err), &err);
    int64_t g_then, g_now;
    T_OK(st_generation(a, &g_then, &err), &err);
    flat_add_video(w, &f, lib, 10, 100);
    flat_change_vectors(w, &f, 40, 99);
    flat_delete_video(w, &f, f.videos[0]);
    flat_delete_video(w, &f, f.videos[250]);
    T_OK(st_generation(w, &g_now, &err), &err);
    T_ASSERT(g_now > g_then);
    flat_check(b, &f, f.alive, 20, 2, 0);
    st_index_cache_stats cs;
    st_index_cache_stats_get(cache, &cs);
    T_EQ_INT(cs.indexes, 1);
    T_ASSERT(cs.replays >= 1);

    /* a still answers as of its snapshot, and its look-ups find every hit. */
    flat_check(a, &f, alive_then, 40, 3, 1);
    st_read_end(a);
    flat_check(a, &f, f.alive, 20, 4, 0);

    /* A snapshot older than what the shared index remembers (it was loaded afresh after a
     * flush) gets the newer committed generation: the documented weaker rule. */
    T_OK(st_flush(w, &err), &err);
    st_index_cache *fresh;
    T_OK(st_index_cache_create(&fresh, &err), &err);
    o.index_cache = fresh;
    st_store *c = NULL, *d = NULL;
    T_OK(st_open(dir, &o, &c, &err), &err);
    T_OK(st_open(dir, &o, &d, &err), &err);
    T_OK(st_read_begin(c, &err), &err);
    memcpy(alive_then, f.alive, sizeof alive_then);
    flat_change_vectors(w, &f, 30, 123);
    T_OK(st_flush(w, &err), &err);
    flat_check(d, &f, f.alive, 5, 5, 0); /* loads the new file: nothing older is known */
    flat_check(c, &f, f.alive, 20, 6, 0);
    st_read_end(c);

    st_close(a);
    st_close(b);
    st_close(c);
    st_close(d);
    st_close(w);
    st_index_cache_free(cache);
    st_index_cache_free(fresh);
    t_rmtree(dir);
    free(dir);
}

/* ---- binding ----------------------------------------------------------------------------- */

static void test_cache_binds_one_directory(void)
{
    char *dir1 = t_tempdir("st-cache-bind1");
    char *dir2 = t_tempdir("st-cache-bind2");
    vx_err err = {0};
    st_close(t_open(dir1, ST_WRITE));
    st_close(t_open(dir2, ST_WRITE));
    st_index_cache *cache;
    T_OK(st_index_cache_create(&cache, &err), &err);
    st_options o = st_options_default();
    o.index_cache = cache;
    st_store *a = NULL, *b = NULL, *c = NULL;
    T_OK(st_open(dir1, &o, &a, &err), &err);
    /* The same directory spelt differently is the same directory. */
    char *again = vx_asprintf(&err, "%s/./", dir1);
    T_ASSERT(again);
    T_OK(st_open(again, &o, &b, &err), &err);
    T_EQ_INT(st_open(dir2, &o, &c, &err), VX_EINVAL);
    T_ASSERT(c == NULL);
    T_ASSERT(strstr(err.msg, "index cache") != NULL);
    /* A writer ignores the cache (it never shares its index). */
    o.mode = ST_WRITE;
    T_OK(st_open(dir2, &o, &c, &err), &err);
    st_close(c);
    st_index_cache_stats cs;
    st_index_cache_stats_get(cache, &cs);
    T_EQ_INT(cs.indexes, 0);
    st_close(a);
    st_close(b);
    st_index_cache_free(cache);
    st_index_cache_free(NULL);
    free(again);
    t_rmtree(dir1);
    t_rmtree(dir2);
    free(dir1);
    free(dir2);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"readers_share_while_writer_commits", test_readers_share_while_writer_commits},
        {"damaged_file_rebuilt_once", test_damaged_file_rebuilt_once},
        {"snapshot_sees_its_generation", test_snapshot_sees_its_generation},
        {"cache_binds_one_directory", test_cache_binds_one_directory},
    };
    return T_RUN(argc, argv, cases);
}
