/* Vector index tests with real FAISS indexes: every answer is checked against a brute-force
 * search computed here; files that are deleted, truncated, damaged or stale are detected and
 * the answers stay right; verify finds and repairs what was broken. */
#define _GNU_SOURCE
#include "st_internal.h"
#include "st_test.h"

#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL "tiny-1"
#define MODALITY "vision"

/* A catalog filled with n random vectors: one video per 100 segments, one transaction per
 * video (as the indexer writes). */
typedef struct corpus {
    size_t n;
    int dim;
    float *vecs;
    int64_t *ids;    /* segment ids */
    int64_t *videos; /* video of each vector */
    int *alive;
} corpus;

static void corpus_fill(st_store *s, corpus *c, size_t n, int dim, uint64_t seed)
{
    vx_err err = {0};
    c->n = n;
    c->dim = dim;
    c->vecs = malloc(n * (size_t)dim * sizeof *c->vecs);
    c->ids = malloc(n * sizeof *c->ids);
    c->videos = malloc(n * sizeof *c->videos);
    c->alive = malloc(n * sizeof *c->alive);
    T_ASSERT(c->vecs && c->ids && c->videos && c->alive);
    t_random_vectors(c->vecs, n, dim, seed);
    int64_t lib;
    st_library found;
    if (st_library_find(s, "lib", &found, &err) == VX_OK) {
        lib = found.id;
        st_library_clear(&found);
    } else {
        T_OK(st_library_add(s, "lib", "/media", &lib, &err), &err);
    }
    int64_t video = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 100 == 0) {
            if (i) T_OK(st_commit(s, &err), &err);
            T_OK(st_begin(s, &err), &err);
            char location[64];
            snprintf(location, sizeof location, "/media/%llu-%zu.mp4", (unsigned long long)seed,
                     i / 100);
            st_video v = {.library_id = lib, .location = location, .status = ST_VIDEO_INDEXED};
            T_OK(st_video_upsert(s, &v, &video, &err), &err);
        }
        st_segment seg = {.video_id = video,
                          .start_ms = (int64_t)(i % 100) * 4000,
                          .end_ms = (int64_t)(i % 100) * 4000 + 4000};
        T_OK(st_segment_add(s, &seg, &c->ids[i], &err), &err);
        T_OK(st_embedding_put(s, c->ids[i], MODEL, MODALITY, dim, c->vecs + i * (size_t)dim, &err),
             &err);
        c->videos[i] = video;
        c->alive[i] = 1;
    }
    T_OK(st_commit(s, &err), &err);
}

static void corpus_free(corpus *c)
{
    free(c->vecs);
    free(c->ids);
    free(c->videos);
    free(c->alive);
}

/* Deletes a video and marks its vectors dead. */
static void corpus_delete_video(st_store *s, corpus *c, int64_t video)
{
    vx_err err = {0};
    T_OK(st_video_delete(s, video, &err), &err);
    for (size_t i = 0; i < c->n; i++)
        if (c->videos[i] == video) c->alive[i] = 0;
}

/* Checks `queries` random queries (optionally filtered) against brute force. */
static void check_queries(st_store *s, const corpus *c, int queries, int k, const int64_t *filter,
                          size_t n_filter, uint64_t seed)
{
    vx_err err = {0};
    float *q = malloc((size_t)c->dim * sizeof *q);
    st_hit *hits = malloc((size_t)k * sizeof *hits);
    int64_t *best = malloc((size_t)k * sizeof *best);
    double *scores = malloc((size_t)k * sizeof *scores);
    for (int t = 0; t < queries; t++) {
        t_random_vectors(q, 1, c->dim, seed * 1000 + (uint64_t)t);
        int n = 0;
        T_OK(st_search(s, MODEL, MODALITY, q, c->dim, k, filter, n_filter, hits, &n, &err), &err);
        int expected = t_brute_force(c->vecs, c->ids, c->alive, c->n, c->dim, q, k, filter,
                                     n_filter, best, scores);
        t_check_hits(hits, n, best, scores, expected);
    }
    free(q);
    free(hits);
    free(best);
    free(scores);
}

static char *index_file(const char *dir)
{
    return vx_asprintf(NULL, "%s/index/%s@%s.vxi", dir, MODEL, MODALITY);
}

static void test_add_search_remove_save_load(void)
{
    char *dir = t_tempdir("st-vi");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    corpus c;
    corpus_fill(s, &c, 3000, 48, 1);
    check_queries(s, &c, 20, 10, NULL, 0, 1);
    check_queries(s, &c, 3, 5000, NULL, 0, 2); /* k beyond the count: everything, in order */
    /* Remove videos (cascade) and replace one vector: the index follows. */
    corpus_delete_video(s, &c, c.videos[0]);
    corpus_delete_video(s, &c, c.videos[1500]);
    float *v = c.vecs + 2999 * (size_t)c.dim;
    for (int i = 0; i < c.dim; i++)
        v[i] = -v[i];
    T_OK(st_embedding_put(s, c.ids[2999], MODEL, MODALITY, c.dim, v, &err), &err);
    check_queries(s, &c, 20, 10, NULL, 0, 3);
    /* Save, reopen as a reader: same answers from the file. */
    T_OK(st_flush(s, &err), &err);
    st_close(s);
    st_store *r = t_open(dir, ST_READ);
    check_queries(r, &c, 20, 10, NULL, 0, 4);
    T_EQ_INT(st_flush(r, &err), VX_EINVAL);
    /* Errors: unknown space, wrong dim, zero query. */
    float q[48] = {0};
    st_hit hits[4];
    int n;
    T_EQ_INT(st_search(r, MODEL, "audio", q, 48, 4, NULL, 0, hits, &n, &err), VX_ENOTFOUND);
    T_EQ_INT(st_search(r, MODEL, MODALITY, q, 47, 4, NULL, 0, hits, &n, &err), VX_EINVAL);
    T_EQ_INT(st_search(r, MODEL, MODALITY, q, 48, 4, NULL, 0, hits, &n, &err), VX_EINVAL);
    st_close(r);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

static void test_reader_follows_writer(void)
{
    char *dir = t_tempdir("st-follow");
    st_store *w = t_open(dir, ST_WRITE);
    vx_err err = {0};
    corpus c;
    corpus_fill(w, &c, 500, 16, 5);
    T_OK(st_flush(w, &err), &err);
    st_store *r = t_open(dir, ST_READ);
    check_queries(r, &c, 5, 10, NULL, 0, 1);
    /* The writer commits without saving: the reader replays from the log. */
    corpus_delete_video(w, &c, c.videos[0]);
    corpus_delete_video(w, &c, c.videos[200]);
    check_queries(r, &c, 10, 10, NULL, 0, 2);
    /* The writer saves and prunes the log: the reader, now below the floor after more
     * changes, reloads the newer file. */
    corpus_delete_video(w, &c, c.videos[300]);
    T_OK(st_flush(w, &err), &err);
    check_queries(r, &c, 10, 10, NULL, 0, 3);
    st_close(r);
    st_close(w);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

static void check_filters(st_store *s, const corpus *c)
{
    uint64_t rng = 99;
    int64_t filter[200];
    for (int i = 0; i < 200; i++)
        filter[i] = c->ids[t_rand(&rng) % c->n];
    check_queries(s, c, 10, 10, filter, 5, 11);   /* 5 ids of 20k, k = 10 */
    check_queries(s, c, 10, 10, filter, 200, 12); /* best 10 of 200 */
    check_queries(s, c, 3, 1, filter + 7, 1, 13); /* a single id */
    int64_t nobody = 987654321;
    check_queries(s, c, 1, 10, &nobody, 1, 14); /* nothing matches */
}

static void expect_file(st_store *s, int64_t vectors, const char *type)
{
    vx_err err = {0};
    st_stats stats;
    T_OK(st_stats_get(s, &stats, &err), &err);
    T_EQ_INT(stats.space_count, 1);
    T_EQ_INT(stats.spaces[0].vectors, vectors);
    T_EQ_INT(stats.spaces[0].file_vectors, vectors);
    T_EQ_STR(stats.spaces[0].file_state, "fresh");
    T_EQ_STR(stats.spaces[0].index_type, type);
    st_stats_free(&stats);
}

static void test_filtered_search_narrow(void)
{
    char *dir = t_tempdir("st-filter");
    vx_err err = {0};
    /* Exact IVF1,Flat (20k is below the threshold): the filtered answer is exact. */
    st_store *s = t_open(dir, ST_WRITE);
    corpus c;
    corpus_fill(s, &c, 20000, 32, 7);
    check_filters(s, &c);
    T_OK(st_flush(s, &err), &err);
    expect_file(s, 20000, "IVF1,Flat");
    st_close(s);
    /* With a lower threshold the next flush finds the type wrong for the size and rebuilds
     * it as IVF with many lists: filtered answers stay exact (every list is probed). */
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    o.flat_max_vectors = 1000;
    T_OK(st_open(dir, &o, &s, &err), &err);
    T_OK(st_flush(s, &err), &err);
    expect_file(s, 20000, "IVF141,Flat");
    check_filters(s, &c);
    /* Unfiltered IVF is approximate: check recall@10 is sane, not exact. */
    float q[32];
    st_hit hits[10];
    int64_t best[10];
    double scores[10];
    int agree = 0, n;
    for (int t = 0; t < 20; t++) {
        t_random_vectors(q, 1, 32, 500 + (uint64_t)t);
        T_OK(st_search(s, MODEL, MODALITY, q, 32, 10, NULL, 0, hits, &n, &err), &err);
        t_brute_force(c.vecs, c.ids, c.alive, c.n, 32, q, 10, NULL, 0, best, scores);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 10; j++)
                agree += hits[i].segment_id == best[j];
    }
    fprintf(stderr, "IVF141 recall@10 (nprobe 16) on uniform random data: %.2f\n", agree / 200.0);
    T_ASSERT(agree >= 100);
    st_close(s);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

static void expect_state(st_store *s, const char *state)
{
    vx_err err = {0};
    st_stats stats;
    T_OK(st_stats_get(s, &stats, &err), &err);
    T_EQ_INT(stats.space_count, 1);
    T_EQ_STR(stats.spaces[0].file_state, state);
    st_stats_free(&stats);
}

static int count_kind(const st_verify_report *rep, st_problem_kind kind)
{
    int n = 0;
    for (size_t i = 0; i < rep->count; i++)
        n += rep->problems[i].kind == kind;
    return n;
}

static void expect_verify(st_store *s, st_problem_kind kind, int repair)
{
    vx_err err = {0};
    st_verify_report rep;
    T_OK(st_verify(s, repair, &rep, &err), &err);
    for (size_t i = 0; i < rep.count; i++)
        fprintf(stderr, "  %s: %s%s\n", st_problem_kind_name(rep.problems[i].kind),
                rep.problems[i].what, rep.problems[i].repaired ? " (repaired)" : "");
    if ((int)kind < 0) {
        T_EQ_INT(rep.count, 0);
    } else {
        T_EQ_INT(count_kind(&rep, kind), 1);
        T_EQ_INT(rep.count, 1);
        if (repair) T_EQ_INT(rep.repaired, 1);
    }
    st_verify_report_free(&rep);
}

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;
    vx_err err = {0};
    T_OK(vx_read_file(from, (size_t)1 << 30, &data, &len, &err), &err);
    T_OK(vx_write_file_atomic(to, data, len, &err), &err);
    free(data);
}

static void test_damaged_files_are_rebuilt(void)
{
    char *dir = t_tempdir("st-damage");
    st_store *w = t_open(dir, ST_WRITE);
    vx_err err = {0};
    corpus c;
    corpus_fill(w, &c, 2000, 24, 9);
    T_OK(st_flush(w, &err), &err);
    expect_state(w, "fresh");
    expect_verify(w, (st_problem_kind)-1, 0);
    char *path = index_file(dir);
    char old[4200];
    snprintf(old, sizeof old, "%s/old-copy", dir);
    copy_file(path, old);

    /* Deleted. */
    T_ASSERT(unlink(path) == 0);
    expect_state(w, "missing");
    st_store *r = t_open(dir, ST_READ);
    check_queries(r, &c, 5, 10, NULL, 0, 1);
    st_close(r);
    expect_verify(w, ST_PROBLEM_INDEX_MISSING, 1);
    expect_state(w, "fresh");

    /* Truncated. */
    struct stat sb;
    T_ASSERT(stat(path, &sb) == 0);
    T_ASSERT(truncate(path, sb.st_size / 2) == 0);
    expect_state(w, "corrupt");
    r = t_open(dir, ST_READ);
    check_queries(r, &c, 5, 10, NULL, 0, 2);
    st_close(r);
    expect_verify(w, ST_PROBLEM_INDEX_CORRUPT, 1);

    /* One flipped byte inside the FAISS data: only the checksum can tell. */
    int fd = open(path, O_RDWR);
    T_ASSERT(fd >= 0);
    unsigned char byte;
    off_t at = sb.st_size - 1000;
    T_ASSERT(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x40;
    T_ASSERT(pwrite(fd, &byte, 1, at) == 1);
    close(fd);
    expect_state(w, "fresh"); /* the header alone looks fine… */
    r = t_open(dir, ST_READ);
    check_queries(r, &c, 5, 10, NULL, 0, 3); /* …but loading checks the data */
    st_close(r);
    expect_verify(w, ST_PROBLEM_INDEX_CORRUPT, 1);

    /* Garbage of the right size. */
    T_ASSERT(stat(path, &sb) == 0);
    char *junk = calloc(1, (size_t)sb.st_size);
    T_OK(vx_write_file_atomic(path, junk, (size_t)sb.st_size, &err), &err);
    free(junk);
    expect_state(w, "corrupt");
    expect_verify(w, ST_PROBLEM_INDEX_CORRUPT, 1);

    /* Stale, with the log still there (changes committed, not flushed): replayed. */
    corpus_delete_video(w, &c, c.videos[0]);
    float *v = c.vecs + 100 * (size_t)c.dim;
    for (int i = 0; i < c.dim; i++)
        v[i] *= -1;
    T_OK(st_embedding_put(w, c.ids[100], MODEL, MODALITY, c.dim, v, &err), &err);
    expect_state(w, "stale");
    r = t_open(dir, ST_READ);
    check_queries(r, &c, 10, 10, NULL, 0, 4);
    st_close(r);
    /* Replayable (file + change log = catalog): the normal state after a crash, not a
     * problem; the next flush makes it fresh. */
    expect_verify(w, (st_problem_kind)-1, 0);
    expect_state(w, "stale");
    T_OK(st_flush(w, &err), &err);
    expect_state(w, "fresh");

    /* Stale below the log floor (an old file put back after a flush pruned the log): the
     * reader cannot replay and rebuilds. */
    corpus_delete_video(w, &c, c.videos[1900]);
    T_OK(st_flush(w, &err), &err);
    copy_file(old, path);
    expect_state(w, "stale");
    r = t_open(dir, ST_READ);
    check_queries(r, &c, 10, 10, NULL, 0, 5);
    st_close(r);
    expect_verify(w, ST_PROBLEM_INDEX_STALE, 1);
    expect_verify(w, (st_problem_kind)-1, 0);
    unlink(old);

    /* The writer's own in-memory index after its file was removed: flush writes it back. */
    check_queries(w, &c, 3, 10, NULL, 0, 6);
    T_ASSERT(unlink(path) == 0);
    T_OK(st_flush(w, &err), &err);
    expect_state(w, "fresh");

    /* A forced rebuild gives the same answers. */
    T_OK(st_index_rebuild(w, NULL, NULL, &err), &err);
    check_queries(w, &c, 5, 10, NULL, 0, 7);
    T_OK(st_index_rebuild(w, MODEL, MODALITY, &err), &err);
    T_EQ_INT(st_index_rebuild(w, MODEL, "audio", &err), VX_ENOTFOUND);
    free(path);
    st_close(w);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

/* An index file whose header is fine and fresh but whose ids disagree with the catalog. */
static void test_verify_catalog_problems(void)
{
    char *dir = t_tempdir("st-verify");
    st_store *w = t_open(dir, ST_WRITE);
    vx_err err = {0};
    corpus c;
    corpus_fill(w, &c, 300, 8, 3);
    T_OK(st_flush(w, &err), &err);
    char path[4200];

    /* Orphan files in thumbs/ and index/ (a referenced thumbnail is kept). */
    snprintf(path, sizeof path, "%s/thumbs/1", dir);
    T_OK(vx_mkdirs(path, &err), &err);
    snprintf(path, sizeof path, "%s/thumbs/1/orphan.jpg", dir);
    T_OK(vx_write_file_atomic(path, "jpg", 3, &err), &err);
    st_segment seg = {.video_id = c.videos[0], .start_ms = 0, .end_ms = 1, .thumb = "1/kept.jpg"};
    T_OK(st_segment_add(w, &seg, NULL, &err), &err);
    snprintf(path, sizeof path, "%s/thumbs/1/kept.jpg", dir);
    T_OK(vx_write_file_atomic(path, "jpg", 3, &err), &err);
    expect_verify(w, ST_PROBLEM_ORPHAN_FILE, 1);
    T_ASSERT(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/index/gone-model@vision.vxi", dir);
    T_OK(vx_write_file_atomic(path, "x", 1, &err), &err);
    expect_verify(w, ST_PROBLEM_ORPHAN_FILE, 1);
    T_ASSERT(access(path, F_OK) != 0);

    /* Rows written behind our back with foreign keys off, and a vector of the wrong size. */
    char db_path[4200];
    snprintf(db_path, sizeof db_path, "%s/catalog.db", dir);
    sqlite3 *db;
    T_ASSERT(sqlite3_open(db_path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    T_ASSERT(sqlite3_exec(db,
                          "INSERT INTO segments(video_id, level, start_ms, end_ms)"
                          " VALUES (99999, 0, 0, 10)",
                          NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    expect_verify(w, ST_PROBLEM_FOREIGN_KEY, 1);
    expect_verify(w, (st_problem_kind)-1, 0);

    T_ASSERT(sqlite3_open(db_path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE embeddings SET vector = X'00' WHERE segment_id = %lld",
             (long long)c.ids[5]);
    T_ASSERT(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    c.alive[5] = 0;
    /* The update was logged (trigger) but the generation did not rise (no st_commit): the
     * file looks fresh, yet its id set disagrees once the bad row is left out. Verify finds
     * the bad row; repairing deletes it, which brings index and catalog together. */
    {
        st_verify_report rep;
        T_OK(st_verify(w, 1, &rep, &err), &err);
        T_ASSERT(count_kind(&rep, ST_PROBLEM_BAD_ROW) == 1);
        T_EQ_INT(rep.repaired, rep.count);
        st_verify_report_free(&rep);
    }
    T_OK(st_flush(w, &err), &err);
    expect_verify(w, (st_problem_kind)-1, 0);
    check_queries(w, &c, 5, 10, NULL, 0, 1);

    /* A fresh-looking index with the wrong ids (a lost vector): only the id set tells. */
    st_vindex *vi;
    T_OK(st__space_find(w, MODEL, MODALITY, 0, 0, &vi, &err), &err);
    T_OK(st__vindex_sync(w, vi, &err), &err);
    FaissIDSelectorRange *range;
    size_t removed = 0;
    T_ASSERT(faiss_IDSelectorRange_new(&range, c.ids[10], c.ids[10] + 1) == 0);
    T_ASSERT(faiss_Index_remove_ids(vi->index, (FaissIDSelector *)range, &removed) == 0);
    faiss_IDSelector_free((FaissIDSelector *)range);
    T_EQ_INT(removed, 1);
    T_OK(st__vindex_save(w, vi, &err), &err);
    expect_state(w, "fresh");
    expect_verify(w, ST_PROBLEM_INDEX_MISMATCH, 1);
    expect_verify(w, (st_problem_kind)-1, 0);
    check_queries(w, &c, 5, 10, NULL, 0, 2);
    st_close(w);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

static void test_stats(void)
{
    char *dir = t_tempdir("st-stats");
    st_store *w = t_open(dir, ST_WRITE);
    vx_err err = {0};
    corpus c;
    corpus_fill(w, &c, 250, 8, 2);
    T_OK(st_video_set_status(w, c.videos[0], ST_VIDEO_FAILED, "boom", &err), &err);
    float v[4] = {1, 1, 1, 1};
    T_OK(st_embedding_put(w, c.ids[0], MODEL, "audio", 4, v, &err), &err);
    st_stats stats;
    T_OK(st_stats_get(w, &stats, &err), &err);
    T_EQ_INT(stats.libraries, 1);
    T_EQ_INT(stats.videos, 3);
    T_EQ_INT(stats.videos_by_status[ST_VIDEO_INDEXED], 2);
    T_EQ_INT(stats.videos_by_status[ST_VIDEO_FAILED], 1);
    T_EQ_INT(stats.segments, 250);
    T_EQ_INT(stats.segments_by_level[ST_LEVEL_WINDOW], 250);
    T_EQ_INT(stats.embeddings, 251);
    T_EQ_INT(stats.space_count, 2);
    T_EQ_STR(stats.spaces[0].modality, "audio"); /* ordered by model, modality */
    T_EQ_INT(stats.spaces[0].dim, 4);
    T_EQ_INT(stats.spaces[0].vectors, 1);
    T_EQ_STR(stats.spaces[0].file_state, "missing");
    T_EQ_INT(stats.spaces[1].vectors, 250);
    T_ASSERT(stats.catalog_bytes > 0);
    T_EQ_INT(stats.index_bytes, 0);
    st_stats_free(&stats);
    T_OK(st_flush(w, &err), &err);
    T_OK(st_stats_get(w, &stats, &err), &err);
    T_EQ_STR(stats.spaces[0].file_state, "fresh");
    T_EQ_STR(stats.spaces[1].file_state, "fresh");
    T_EQ_INT(stats.spaces[1].file_generation, stats.catalog_generation);
    T_ASSERT(stats.index_bytes > 250 * 8 * 4);
    T_ASSERT(stats.index_bytes == stats.spaces[0].file_bytes + stats.spaces[1].file_bytes);
    st_stats_free(&stats);
    /* The reader sees the same. */
    st_store *r = t_open(dir, ST_READ);
    T_OK(st_stats_get(r, &stats, &err), &err);
    T_EQ_INT(stats.embeddings, 251);
    st_stats_free(&stats);
    st_verify_report rep;
    T_EQ_INT(st_verify(r, 1, &rep, &err), VX_EINVAL);
    T_OK(st_verify(r, 0, &rep, &err), &err);
    T_EQ_INT(rep.count, 0);
    st_verify_report_free(&rep);
    st_close(r);
    st_close(w);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

/* Readers never block on the writer: with a write transaction open (and uncommitted rows in
 * the WAL), a reader loads, searches and counts at once, seeing the last committed state. */
static void test_readers_do_not_block(void)
{
    char *dir = t_tempdir("st-noblock");
    st_store *w = t_open(dir, ST_WRITE);
    vx_err err = {0};
    corpus c;
    corpus_fill(w, &c, 1000, 16, 21);
    T_OK(st_flush(w, &err), &err);
    T_OK(st_begin(w, &err), &err);
    st_video v = {.library_id = 1, .location = "/media/uncommitted.mp4"};
    int64_t vid, sid;
    T_OK(st_video_upsert(w, &v, &vid, &err), &err);
    st_segment seg = {.video_id = vid, .end_ms = 1};
    T_OK(st_segment_add(w, &seg, &sid, &err), &err);
    T_OK(st_embedding_put(w, sid, MODEL, MODALITY, 16, c.vecs, &err), &err);
    int64_t started = vx_now_ns();
    st_store *r = t_open(dir, ST_READ);
    check_queries(r, &c, 5, 10, NULL, 0, 1); /* the uncommitted vector is not seen */
    st_stats stats;
    T_OK(st_stats_get(r, &stats, &err), &err);
    T_EQ_INT(stats.embeddings, 1000);
    st_stats_free(&stats);
    double waited_s = (vx_now_ns() - started) / 1e9;
    if (waited_s > 2.0) T_FAIL("the reader took %.1f s beside an open write transaction", waited_s);
    T_OK(st_commit(w, &err), &err);
    T_OK(st_stats_get(r, &stats, &err), &err);
    T_EQ_INT(stats.embeddings, 1001);
    st_stats_free(&stats);
    st_close(r);
    st_close(w);
    corpus_free(&c);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"add_search_remove_save_load", test_add_search_remove_save_load},
        {"reader_follows_writer", test_reader_follows_writer},
        {"filtered_search_narrow", test_filtered_search_narrow},
        {"damaged_files_are_rebuilt", test_damaged_files_are_rebuilt},
        {"verify_catalog_problems", test_verify_catalog_problems},
        {"stats", test_stats},
        {"readers_do_not_block", test_readers_do_not_block},
    };
    return T_RUN(argc, argv, cases);
}
