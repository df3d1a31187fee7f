/* Catalog tests on real SQLite files: rows, transactions, texts, migrations (from empty and
 * from older schemas built by the migration code stopped early) and the fault paths of
 * opening a data directory. */
#define _GNU_SOURCE
#include "st_internal.h"
#include "st_test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t add_video(st_store *s, int64_t library_id, const char *location)
{
    vx_err err = {0};
    st_video v = {0};
    v.library_id = library_id;
    v.location = (char *)location;
    v.size_bytes = 1234;
    v.mtime_ms = 1700000000000;
    v.content_hash = "abcdef";
    v.duration_ms = 60000;
    v.streams_json = "{\"video\":1}";
    int64_t id = 0;
    T_OK(st_video_upsert(s, &v, &id, &err), &err);
    T_ASSERT(id > 0);
    return id;
}

static int64_t add_segment(st_store *s, int64_t video_id, int64_t start_ms, const char *thumb)
{
    vx_err err = {0};
    st_segment seg = {.video_id = video_id,
                      .level = ST_LEVEL_WINDOW,
                      .start_ms = start_ms,
                      .end_ms = start_ms + 4000,
                      .thumb = (char *)thumb};
    int64_t id = 0;
    T_OK(st_segment_add(s, &seg, &id, &err), &err);
    return id;
}

static void test_libraries(void)
{
    char *dir = t_tempdir("st-lib");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t a, b;
    T_OK(st_library_add(s, "movies", "/srv/movies", &a, &err), &err);
    T_OK(st_library_add(s, "talks", "https://example.org/talks/", &b, &err), &err);
    T_EQ_INT(st_library_add(s, "movies", "/elsewhere", NULL, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "movies"));
    st_library lib;
    T_OK(st_library_find(s, "talks", &lib, &err), &err);
    T_EQ_INT(lib.id, b);
    T_EQ_STR(lib.root, "https://example.org/talks/");
    T_ASSERT(lib.created_ms > 0);
    st_library_clear(&lib);
    T_EQ_INT(st_library_find(s, "nope", &lib, &err), VX_ENOTFOUND);
    st_library *libs;
    size_t n;
    T_OK(st_library_list(s, &libs, &n, &err), &err);
    T_EQ_INT(n, 2);
    T_EQ_STR(libs[0].name, "movies");
    T_EQ_STR(libs[1].name, "talks");
    st_libraries_free(libs, n);
    /* Removing a library removes its videos (cascade). */
    int64_t v = add_video(s, a, "/srv/movies/a.mp4");
    T_OK(st_library_remove(s, a, &err), &err);
    st_video got;
    T_EQ_INT(st_video_get(s, v, &got, &err), VX_ENOTFOUND);
    T_EQ_INT(st_library_remove(s, a, &err), VX_ENOTFOUND);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static int count_videos(void *ctx, const st_video *v)
{
    (void)v;
    (*(int *)ctx)++;
    return 0;
}

static void test_videos_and_segments(void)
{
    char *dir = t_tempdir("st-video");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t lib;
    T_OK(st_library_add(s, "lib", "/media", &lib, &err), &err);
    int64_t v1 = add_video(s, lib, "/media/one.mkv");
    int64_t v2 = add_video(s, lib, "/media/two.mkv");
    T_ASSERT(v1 != v2);
    /* Upsert by location keeps the id and updates the fields. */
    st_video v = {0};
    v.library_id = lib;
    v.location = "/media/one.mkv";
    v.size_bytes = 999;
    v.status = ST_VIDEO_INDEXED;
    int64_t again;
    T_OK(st_video_upsert(s, &v, &again, &err), &err);
    T_EQ_INT(again, v1);
    st_video got;
    T_OK(st_video_get(s, v1, &got, &err), &err);
    T_EQ_INT(got.size_bytes, 999);
    T_EQ_INT(got.status, ST_VIDEO_INDEXED);
    T_ASSERT(got.content_hash == NULL);
    st_video_clear(&got);
    T_OK(st_video_set_status(s, v2, ST_VIDEO_FAILED, "decoder: no video stream", &err), &err);
    T_OK(st_video_find(s, lib, "/media/two.mkv", &got, &err), &err);
    T_EQ_INT(got.id, v2);
    T_EQ_STR(got.last_error, "decoder: no video stream");
    T_EQ_STR(got.streams_json, "{\"video\":1}");
    T_EQ_STR(st_video_status_name(got.status), "failed");
    T_ASSERT(got.etag == NULL);
    st_video_clear(&got);
    /* The ETag (schema v5) round-trips and is replaced by the next upsert. */
    st_video web = {.library_id = lib, .location = "http://h/w.mp4", .etag = "\"abc-1\""};
    int64_t wid;
    T_OK(st_video_upsert(s, &web, &wid, &err), &err);
    T_OK(st_video_get(s, wid, &got, &err), &err);
    T_EQ_STR(got.etag, "\"abc-1\"");
    st_video_clear(&got);
    web.etag = NULL;
    T_OK(st_video_upsert(s, &web, &wid, &err), &err);
    T_OK(st_video_get(s, wid, &got, &err), &err);
    T_ASSERT(got.etag == NULL);
    st_video_clear(&got);
    T_OK(st_video_delete(s, wid, &err), &err);
    T_EQ_INT(st_video_find(s, lib, "/media/none.mkv", &got, &err), VX_ENOTFOUND);
    T_ASSERT(strstr(err.msg, "/media/none.mkv"));
    int count = 0;
    T_OK(st_video_each(s, lib, count_videos, &count, &err), &err);
    T_EQ_INT(count, 2);

    /* Segments, their order and levels. */
    int64_t s2 = add_segment(s, v1, 4000, "1/2.jpg");
    int64_t s1 = add_segment(s, v1, 0, "1/1.jpg");
    st_segment scene = {.video_id = v1, .level = ST_LEVEL_SCENE, .start_ms = 0, .end_ms = 8000};
    int64_t s3;
    T_OK(st_segment_add(s, &scene, &s3, &err), &err);
    st_segment bad = {.video_id = v1, .start_ms = 10, .end_ms = 5};
    T_EQ_INT(st_segment_add(s, &bad, NULL, &err), VX_EINVAL);
    st_segment escape = {.video_id = v1, .end_ms = 5, .thumb = "../etc/passwd"};
    T_EQ_INT(st_segment_add(s, &escape, NULL, &err), VX_EINVAL);
    st_segment orphan = {.video_id = 424242, .end_ms = 5};
    T_ASSERT(st_segment_add(s, &orphan, NULL, &err) != VX_OK); /* foreign key */
    st_segment *segs;
    size_t n;
    T_OK(st_segment_list(s, v1, -1, &segs, &n, &err), &err);
    T_EQ_INT(n, 3);
    T_EQ_INT(segs[0].id, s1);
    T_EQ_INT(segs[1].id, s2);
    T_EQ_INT(segs[2].id, s3);
    T_EQ_STR(segs[0].thumb, "1/1.jpg");
    st_segments_free(segs, n);
    T_OK(st_segment_list(s, v1, ST_LEVEL_SCENE, &segs, &n, &err), &err);
    T_EQ_INT(n, 1);
    st_segments_free(segs, n);
    st_segment one;
    T_OK(st_segment_get(s, s2, &one, &err), &err);
    T_EQ_INT(one.start_ms, 4000);
    T_EQ_INT(one.end_ms, 8000);
    st_segment_clear(&one);

    /* Embeddings: round trip, dim fixed per space, names checked. */
    float vec[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8];
    T_OK(st_embedding_put(s, s1, "m-1.0", "vision", 8, vec, &err), &err);
    T_OK(st_embedding_get(s, s1, "m-1.0", "vision", 8, back, &err), &err);
    T_ASSERT(memcmp(vec, back, sizeof vec) == 0);
    T_EQ_INT(st_embedding_put(s, s2, "m-1.0", "vision", 4, vec, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "dim 8"));
    T_EQ_INT(st_embedding_put(s, s2, "../x", "vision", 8, vec, &err), VX_EINVAL);
    T_EQ_INT(st_embedding_put(s, s2, "m", "Vision!", 8, vec, &err), VX_EINVAL);
    float zero[8] = {0};
    T_EQ_INT(st_embedding_put(s, s2, "m-1.0", "vision", 8, zero, &err), VX_EINVAL);
    T_EQ_INT(st_embedding_get(s, s2, "m-1.0", "vision", 8, back, &err), VX_ENOTFOUND);
    T_EQ_INT(st_embedding_get(s, s1, "m-1.0", "audio", 8, back, &err), VX_ENOTFOUND);

    /* Clearing a video's segments removes their embeddings too, and keeps the video. */
    T_OK(st_video_clear_segments(s, v1, &err), &err);
    T_OK(st_segment_list(s, v1, -1, &segs, &n, &err), &err);
    T_EQ_INT(n, 0);
    st_segments_free(segs, n);
    T_EQ_INT(st_embedding_get(s, s1, "m-1.0", "vision", 8, back, &err), VX_ENOTFOUND);
    T_OK(st_video_get(s, v1, &got, &err), &err);
    st_video_clear(&got);
    T_OK(st_video_delete(s, v1, &err), &err);
    T_EQ_INT(st_video_delete(s, v1, &err), VX_ENOTFOUND);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void test_transactions_and_generation(void)
{
    char *dir = t_tempdir("st-txn");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t lib, gen0, gen;
    T_OK(st_library_add(s, "lib", "/m", &lib, &err), &err);
    T_OK(st_generation(s, &gen0, &err), &err);
    /* A rolled-back video leaves nothing. */
    T_OK(st_begin(s, &err), &err);
    T_EQ_INT(st_begin(s, &err), VX_EINVAL);
    int64_t v = add_video(s, lib, "/m/a.mp4");
    int64_t seg = add_segment(s, v, 0, NULL);
    float vec[4] = {1, 0, 0, 0};
    T_OK(st_embedding_put(s, seg, "m", "vision", 4, vec, &err), &err);
    st_rollback(s);
    st_video got;
    T_EQ_INT(st_video_get(s, v, &got, &err), VX_ENOTFOUND);
    T_OK(st_generation(s, &gen, &err), &err);
    T_EQ_INT(gen, gen0);
    /* A committed one is all there, and the generation rose once. */
    T_OK(st_begin(s, &err), &err);
    v = add_video(s, lib, "/m/a.mp4");
    for (int i = 0; i < 5; i++) {
        seg = add_segment(s, v, i * 4000, NULL);
        T_OK(st_embedding_put(s, seg, "m", "vision", 4, vec, &err), &err);
    }
    T_OK(st_commit(s, &err), &err);
    T_EQ_INT(st_commit(s, &err), VX_EINVAL);
    T_OK(st_generation(s, &gen, &err), &err);
    T_EQ_INT(gen, gen0 + 1);
    st_segment *segs;
    size_t n;
    T_OK(st_segment_list(s, v, -1, &segs, &n, &err), &err);
    T_EQ_INT(n, 5);
    st_segments_free(segs, n);
    /* A write that changes no vector leaves the generation alone. */
    T_OK(st_video_set_status(s, v, ST_VIDEO_INDEXED, NULL, &err), &err);
    T_OK(st_generation(s, &gen, &err), &err);
    T_EQ_INT(gen, gen0 + 1);
    /* Deleting the video (cascade to embeddings) is a vector change. */
    T_OK(st_video_delete(s, v, &err), &err);
    T_OK(st_generation(s, &gen, &err), &err);
    T_EQ_INT(gen, gen0 + 2);
    /* Readers cannot write. */
    st_store *r = t_open(dir, ST_READ);
    T_EQ_INT(st_library_add(r, "x", "/x", NULL, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "read-only"));
    T_EQ_INT(st_begin(r, &err), VX_EINVAL);
    st_close(r);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

/* A move keeps the video's id, segments, vectors and texts, and the generation. */
static void test_video_relocate(void)
{
    char *dir = t_tempdir("st-move");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t lib, lib2, gen0, gen;
    T_OK(st_library_add(s, "lib", "/m", &lib, &err), &err);
    T_OK(st_library_add(s, "other", "/o", &lib2, &err), &err);
    int64_t v = add_video(s, lib, "/m/a.mp4");
    int64_t taken = add_video(s, lib, "/m/b.mp4");
    int64_t seg = add_segment(s, v, 0, NULL);
    float vec[4] = {1, 0, 0, 0}, back[4];
    T_OK(st_embedding_put(s, seg, "m", "vision", 4, vec, &err), &err);
    T_OK(st_text_add(s, seg, "title", 0, 4000, "a", &err), &err);
    st_hit hits[2];
    int nhits = 0;
    T_OK(st_search(s, "m", "vision", vec, 4, 2, NULL, 0, hits, &nhits, &err), &err);
    T_EQ_INT(nhits, 1);
    T_OK(st_generation(s, &gen0, &err), &err);

    T_OK(st_video_relocate(s, v, lib, "/m/sub/a.mp4", 4321, 1800000000000, &err), &err);
    st_video got;
    T_OK(st_video_find(s, lib, "/m/sub/a.mp4", &got, &err), &err);
    T_EQ_INT(got.id, v);
    T_EQ_INT(got.size_bytes, 4321);
    T_EQ_INT(got.mtime_ms, 1800000000000);
    T_EQ_STR(got.content_hash, "abcdef");
    T_EQ_INT(got.duration_ms, 60000);
    st_video_clear(&got);
    T_EQ_INT(st_video_find(s, lib, "/m/a.mp4", &got, &err), VX_ENOTFOUND);
    st_segment *segs;
    size_t n;
    T_OK(st_segment_list(s, v, -1, &segs, &n, &err), &err);
    T_EQ_INT(n, 1);
    T_EQ_INT(segs[0].id, seg);
    st_segments_free(segs, n);
    T_OK(st_embedding_get(s, seg, "m", "vision", 4, back, &err), &err);
    st_text *texts;
    T_OK(st_text_list(s, seg, &texts, &n, &err), &err);
    T_EQ_INT(n, 1);
    st_texts_free(texts, n);
    T_OK(st_generation(s, &gen, &err), &err);
    T_EQ_INT(gen, gen0);
    T_OK(st_search(s, "m", "vision", vec, 4, 2, NULL, 0, hits, &nhits, &err), &err);
    T_EQ_INT(nhits, 1);
    T_EQ_INT(hits[0].segment_id, seg);

    /* Into another library, inside a transaction that is rolled back: nothing moved. */
    T_OK(st_begin(s, &err), &err);
    T_OK(st_video_relocate(s, v, lib2, "/o/a.mp4", 1, 2, &err), &err);
    st_rollback(s);
    T_OK(st_video_get(s, v, &got, &err), &err);
    T_EQ_INT(got.library_id, lib);
    T_EQ_STR(got.location, "/m/sub/a.mp4");
    st_video_clear(&got);
    T_OK(st_video_relocate(s, v, lib2, "/o/a.mp4", 1, 2, &err), &err);
    T_OK(st_video_get(s, v, &got, &err), &err);
    T_EQ_INT(got.library_id, lib2);
    st_video_clear(&got);
    /* Same place again: only size and mtime change. */
    T_OK(st_video_relocate(s, v, lib2, "/o/a.mp4", 5, 6, &err), &err);

    /* A taken location fails, naming the holder, and changes nothing. */
    T_EQ_INT(st_video_relocate(s, v, lib, "/m/b.mp4", 1, 2, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "taken"));
    T_ASSERT(strstr(err.msg, "/m/b.mp4"));
    T_OK(st_video_get(s, taken, &got, &err), &err);
    T_EQ_STR(got.location, "/m/b.mp4");
    st_video_clear(&got);
    T_OK(st_video_get(s, v, &got, &err), &err);
    T_EQ_STR(got.location, "/o/a.mp4");
    T_EQ_INT(got.size_bytes, 5);
    st_video_clear(&got);
    /* Unknown video, empty location, unknown library, a reader. */
    T_EQ_INT(st_video_relocate(s, 424242, lib, "/m/z.mp4", 1, 2, &err), VX_ENOTFOUND);
    T_EQ_INT(st_video_relocate(s, v, lib, "", 1, 2, &err), VX_EINVAL);
    T_ASSERT(st_video_relocate(s, v, 424242, "/m/z.mp4", 1, 2, &err) != VX_OK);
    st_store *r = t_open(dir, ST_READ);
    T_EQ_INT(st_video_relocate(r, v, lib, "/m/z.mp4", 1, 2, &err), VX_EINVAL);
    st_close(r);
    T_OK(st_generation(s, &gen, &err), &err);
    T_EQ_INT(gen, gen0);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void test_texts_and_runs(void)
{
    char *dir = t_tempdir("st-text");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t lib, run;
    T_OK(st_library_add(s, "lib", "/m", &lib, &err), &err);
    T_OK(st_run_begin(s, lib, &run, &err), &err);
    int64_t v = add_video(s, lib, "/m/a.mp4");
    int64_t s1 = add_segment(s, v, 0, NULL), s2 = add_segment(s, v, 4000, NULL);
    T_OK(st_text_add(s, s1, "asr", 0, 3000, "the red car drives away", &err), &err);
    T_OK(st_text_add(s, s2, "ocr", 4000, 8000, "EXIT 12 Café", &err), &err);
    T_OK(st_text_add(s, s2, "subtitle", 4500, 6000, "a blue car, a red boat", &err), &err);
    st_text_hit *hits;
    size_t n;
    T_OK(st_text_search(s, "red car", 10, &hits, &n, &err), &err);
    T_EQ_INT(n, 2);
    T_EQ_INT(hits[0].segment_id, s1); /* both words, shorter text */
    T_EQ_STR(hits[0].source, "asr");
    T_ASSERT(hits[0].score >= hits[1].score);
    st_text_hits_free(hits, n);
    T_OK(st_text_search(s, "cafe", 10, &hits, &n, &err), &err); /* diacritics folded */
    T_EQ_INT(n, 1);
    T_EQ_INT(hits[0].start_ms, 4000);
    st_text_hits_free(hits, n);
    T_EQ_INT(st_text_search(s, "\"unbalanced", 10, &hits, &n, &err), VX_EINVAL);
    /* Texts leave with their segment (and the FTS index follows). */
    T_OK(st_video_clear_segments(s, v, &err), &err);
    T_OK(st_text_search(s, "car", 10, &hits, &n, &err), &err);
    T_EQ_INT(n, 0);
    st_text_hits_free(hits, n);
    T_OK(st_run_finish(s, run, "ok", 1, 0, NULL, &err), &err);
    T_EQ_INT(st_run_finish(s, run + 100, "ok", 1, 0, NULL, &err), VX_ENOTFOUND);
    st_stats stats;
    T_OK(st_stats_get(s, &stats, &err), &err);
    T_EQ_INT(stats.runs, 1);
    T_EQ_INT(stats.texts, 0);
    T_EQ_INT(stats.schema_version, ST_SCHEMA_VERSION);
    st_stats_free(&stats);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

/* Builds a catalog at `version` through the migration code stopped early, with raw rows. */
static void build_old_catalog(const char *dir, int version)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    sqlite3 *db;
    T_ASSERT(sqlite3_open(path, &db) == SQLITE_OK);
    vx_err err = {0};
    T_OK(st__migrate(db, path, version, &err), &err);
    int got = 0;
    T_OK(st__schema_version(db, path, &got, &err), &err);
    T_EQ_INT(got, version);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    const char *rows =
        "INSERT INTO libraries(id, name, root, created_ms) VALUES (1, 'old', '/old', 5);"
        "INSERT INTO videos(id, library_id, location, status) VALUES (7, 1, '/old/v.mp4', 1);"
        "INSERT INTO segments(id, video_id, level, start_ms, end_ms) VALUES (70, 7, 0, 0, 4000);"
        "INSERT INTO segments(id, video_id, level, start_ms, end_ms) VALUES (71, 7, 0, 4000, 8000);"
        "INSERT INTO spaces(id, model, modality, dim) VALUES (1, 'old-model', 'vision', 4);"
        "INSERT INTO embeddings(space_id, segment_id, vector)"
        "  VALUES (1, 70, X'0000803F000000000000000000000000');" /* (1, 0, 0, 0) */
        "INSERT INTO embeddings(space_id, segment_id, vector)"
        "  VALUES (1, 71, X'000000000000803F0000000000000000');"; /* (0, 1, 0, 0) */
    char *msg = NULL;
    if (sqlite3_exec(db, rows, NULL, NULL, &msg) != SQLITE_OK) T_FAIL("insert: %s", msg);
    sqlite3_close(db);
}

static void check_migrated(const char *dir)
{
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    st_library lib;
    T_OK(st_library_find(s, "old", &lib, &err), &err);
    T_EQ_STR(lib.root, "/old");
    st_library_clear(&lib);
    st_video v;
    T_OK(st_video_get(s, 7, &v, &err), &err);
    T_EQ_STR(v.location, "/old/v.mp4");
    T_EQ_INT(v.status, ST_VIDEO_INDEXED);
    st_video_clear(&v);
    float back[4];
    T_OK(st_embedding_get(s, 71, "old-model", "vision", 4, back, &err), &err);
    T_NEAR(back[1], 1.0, 0);
    /* The old vectors are searchable, and new-schema tables work. */
    float q[4] = {0.1f, 0.9f, 0, 0};
    st_hit hits[2];
    int n;
    T_OK(st_search(s, "old-model", "vision", q, 4, 2, NULL, 0, hits, &n, &err), &err);
    T_EQ_INT(n, 2);
    T_EQ_INT(hits[0].segment_id, 71);
    T_OK(st_text_add(s, 70, "title", 0, 4000, "old video", &err), &err);
    /* v6: an old library takes options. */
    T_OK(st_library_option_set(s, 1, "window_ms", "2000", &err), &err);
    st_library_option *opts;
    size_t nopts;
    T_OK(st_library_options_get(s, 1, &opts, &nopts, &err), &err);
    T_EQ_INT(nopts, 1);
    T_EQ_STR(opts[0].value, "2000");
    st_library_options_free(opts, nopts);
    st_stats stats;
    T_OK(st_stats_get(s, &stats, &err), &err);
    T_EQ_INT(stats.schema_version, ST_SCHEMA_VERSION);
    T_EQ_INT(stats.segments, 2);
    T_EQ_INT(stats.embeddings, 2);
    st_stats_free(&stats);
    st_verify_report rep;
    T_OK(st_flush(s, &err), &err);
    T_OK(st_verify(s, 0, &rep, &err), &err);
    for (size_t i = 0; i < rep.count; i++)
        fprintf(stderr, "problem: %s\n", rep.problems[i].what);
    T_EQ_INT(rep.count, 0);
    st_verify_report_free(&rep);
    st_close(s);
}

/* Library options (schema v6): set, replace, list in key order, remove, cascade. */
static void test_library_options(void)
{
    char *dir = t_tempdir("st-libopts");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t a, b;
    T_OK(st_library_add(s, "movies", "/srv/movies", &a, &err), &err);
    T_OK(st_library_add(s, "talks", "/srv/talks", &b, &err), &err);
    T_OK(st_library_option_set(s, a, "window_ms", "4000", &err), &err);
    T_OK(st_library_option_set(s, a, "asr", "0", &err), &err);
    T_OK(st_library_option_set(s, a, "window_ms", "2000", &err), &err); /* replaces */
    T_OK(st_library_option_set(s, b, "ocr", "1", &err), &err);
    st_library_option *opts;
    size_t n;
    T_OK(st_library_options_get(s, a, &opts, &n, &err), &err);
    T_EQ_INT(n, 2);
    T_EQ_STR(opts[0].key, "asr");
    T_EQ_STR(opts[0].value, "0");
    T_EQ_STR(opts[1].key, "window_ms");
    T_EQ_STR(opts[1].value, "2000");
    st_library_options_free(opts, n);
    T_OK(st_library_option_set(s, a, "asr", NULL, &err), &err); /* removes */
    T_OK(st_library_options_get(s, a, &opts, &n, &err), &err);
    T_EQ_INT(n, 1);
    T_EQ_STR(opts[0].key, "window_ms");
    st_library_options_free(opts, n);
    T_EQ_INT(st_library_option_set(s, 999, "asr", "1", &err), VX_ENOTFOUND);
    T_EQ_INT(st_library_option_set(s, a, "", "1", &err), VX_EINVAL);
    /* Inside a caller's transaction, rolled back with it. */
    T_OK(st_begin(s, &err), &err);
    T_OK(st_library_option_set(s, a, "every", "6h", &err), &err);
    st_rollback(s);
    T_OK(st_library_options_get(s, a, &opts, &n, &err), &err);
    T_EQ_INT(n, 1);
    st_library_options_free(opts, n);
    /* Removing a library removes its options, and only its. */
    T_OK(st_library_remove(s, a, &err), &err);
    T_OK(st_library_options_get(s, a, &opts, &n, &err), &err);
    T_EQ_INT(n, 0);
    T_ASSERT(opts == NULL);
    T_OK(st_library_options_get(s, b, &opts, &n, &err), &err);
    T_EQ_INT(n, 1);
    T_EQ_STR(opts[0].value, "1");
    st_library_options_free(opts, n);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void test_migrate_from_previous_versions(void)
{
    for (int version = 1; version < ST_SCHEMA_VERSION; version++) {
        char *dir = t_tempdir("st-migrate");
        build_old_catalog(dir, version);
        /* A reader refuses an old schema with a clear message; a writer upgrades it. */
        st_options o = st_options_default();
        st_store *r = NULL;
        vx_err err = {0};
        T_EQ_INT(st_open(dir, &o, &r, &err), VX_ESTALE);
        T_ASSERT(strstr(err.msg, "older"));
        check_migrated(dir);
        t_rmtree(dir);
        free(dir);
    }
}

static void test_migrate_empty_and_newer(void)
{
    char *dir = t_tempdir("st-empty");
    st_store *s = t_open(dir, ST_WRITE); /* empty folder -> current schema */
    st_close(s);
    s = t_open(dir, ST_WRITE); /* reopening migrates nothing */
    st_close(s);
    char path[4096];
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    sqlite3 *db;
    T_ASSERT(sqlite3_open(path, &db) == SQLITE_OK);
    T_ASSERT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    st_options o = st_options_default();
    vx_err err = {0};
    for (int mode = 0; mode < 2; mode++) {
        o.mode = (st_mode)mode;
        T_EQ_INT(st_open(dir, &o, &s, &err), VX_EUNSUPPORTED);
        T_ASSERT(strstr(err.msg, "v99"));
        T_ASSERT(s == NULL);
    }
    t_rmtree(dir);
    free(dir);
}

static void test_fault_paths(void)
{
    vx_err err = {0};
    st_options o = st_options_default();
    st_store *s = NULL;
    /* A reader on a folder without a catalog. */
    char *dir = t_tempdir("st-fault");
    T_EQ_INT(st_open(dir, &o, &s, &err), VX_ENOTFOUND);
    T_ASSERT(strstr(err.msg, dir));
    /* An unusable data directory: below a regular file (works as root too). */
    char path[4096];
    snprintf(path, sizeof path, "%s/file", dir);
    FILE *f = fopen(path, "w");
    T_ASSERT(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/file/data", dir);
    o.mode = ST_WRITE;
    T_EQ_INT(st_open(path, &o, &s, &err), VX_EIO);
    T_ASSERT(strstr(err.msg, "file"));
    if (geteuid() != 0) { /* permissions do not stop root */
        snprintf(path, sizeof path, "%s/ro", dir);
        T_ASSERT(mkdir(path, 0555) == 0);
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/data", path);
        T_EQ_INT(st_open(sub, &o, &s, &err), VX_EIO);
        T_EQ_INT(st_open(path, &o, &s, &err), VX_EIO);
        chmod(path, 0755);
    }
    /* A garbage file as catalog.db: writer and reader both refuse it, naming it. */
    char *bad = t_tempdir("st-garbage");
    snprintf(path, sizeof path, "%s/catalog.db", bad);
    f = fopen(path, "w");
    T_ASSERT(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    for (int mode = 0; mode < 2; mode++) {
        o.mode = (st_mode)mode;
        T_EQ_INT(st_open(bad, &o, &s, &err), VX_ECORRUPT);
        T_ASSERT(strstr(err.msg, "catalog.db"));
        T_ASSERT(s == NULL);
    }
    t_rmtree(bad);
    free(bad);
    t_rmtree(dir);
    free(dir);
}

static void test_second_writer(void)
{
    char *dir = t_tempdir("st-lock");
    vx_err err = {0};
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    st_store *a = t_open(dir, ST_WRITE), *b = NULL;
    /* In the same process: flock is per open file, so this conflicts too. */
    T_EQ_INT(st_open(dir, &o, &b, &err), VX_EBUSY);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    T_ASSERT(strstr(err.msg, pid));
    /* Readers open fine beside the writer. */
    st_store *r = t_open(dir, ST_READ);
    st_close(r);
    st_close(a);
    /* Held by another process: its pid is named; once it dies, the lock is free. */
    int ready[2];
    T_ASSERT(pipe(ready) == 0);
    pid_t child = fork();
    T_ASSERT(child >= 0);
    if (child == 0) {
        close(ready[0]);
        st_store *c = NULL;
        if (st_open(dir, &o, &c, NULL)) _exit(1);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    char x;
    T_EQ_INT(read(ready[0], &x, 1), 1);
    close(ready[0]);
    T_EQ_INT(st_open(dir, &o, &b, &err), VX_EBUSY);
    snprintf(pid, sizeof pid, "pid %ld", (long)child);
    if (!strstr(err.msg, pid)) T_FAIL("message \"%s\" does not name %s", err.msg, pid);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    b = t_open(dir, ST_WRITE);
    st_close(b);
    t_rmtree(dir);
    free(dir);
}

/* ---- look-ups for the query path and the web server ------------------------------------- */

static void set_status(st_store *s, int64_t video_id, st_video_status status)
{
    vx_err err = {0};
    T_OK(st_video_set_status(s, video_id, status, status == ST_VIDEO_FAILED ? "bad" : NULL, &err),
         &err);
}

static void test_library_counts(void)
{
    char *dir = t_tempdir("st-counts");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t a, b;
    T_OK(st_library_add(s, "a", "/a", &a, &err), &err);
    T_OK(st_library_add(s, "b", "/b", &b, &err), &err);
    st_library_stats c;
    T_OK(st_library_counts(s, a, &c, &err), &err); /* empty but known */
    T_EQ_INT(c.videos, 0);
    T_EQ_INT(c.segments, 0);
    T_EQ_INT(st_library_counts(s, 9999, &c, &err), VX_ENOTFOUND);
    T_ASSERT(strstr(err.msg, "9999") != NULL);
    int64_t v1 = add_video(s, a, "/a/1.mp4"), v2 = add_video(s, a, "/a/2.mp4");
    int64_t v3 = add_video(s, a, "/a/3.mp4"), v4 = add_video(s, b, "/b/4.mp4");
    for (int i = 0; i < 3; i++)
        add_segment(s, v1, i * 4000, NULL);
    add_segment(s, v3, 0, NULL);
    add_segment(s, v4, 0, NULL);
    add_segment(s, v4, 4000, NULL);
    set_status(s, v1, ST_VIDEO_INDEXED);
    set_status(s, v2, ST_VIDEO_FAILED);
    set_status(s, v4, ST_VIDEO_MISSING);
    T_OK(st_library_counts(s, a, &c, &err), &err);
    T_EQ_INT(c.videos, 3);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_PENDING], 1);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_INDEXED], 1);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_FAILED], 1);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_MISSING], 0);
    T_EQ_INT(c.segments, 4);
    T_OK(st_library_counts(s, b, &c, &err), &err);
    T_EQ_INT(c.videos, 1);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_MISSING], 1);
    T_EQ_INT(c.segments, 2);
    T_OK(st_library_counts(s, 0, &c, &err), &err); /* every library */
    T_EQ_INT(c.videos, 4);
    T_EQ_INT(c.segments, 6);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_PENDING], 1);
    /* a reader sees the same, and a video removed later */
    st_store *r = t_open(dir, ST_READ);
    T_OK(st_library_counts(r, a, &c, &err), &err);
    T_EQ_INT(c.segments, 4);
    T_OK(st_video_delete(s, v1, &err), &err);
    T_OK(st_library_counts(r, a, &c, &err), &err);
    T_EQ_INT(c.videos, 2);
    T_EQ_INT(c.videos_by_status[ST_VIDEO_INDEXED], 0);
    T_EQ_INT(c.segments, 1);
    st_close(r);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void test_run_last(void)
{
    char *dir = t_tempdir("st-runlast");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t a, b, r1, r2, r3;
    T_OK(st_library_add(s, "a", "/a", &a, &err), &err);
    T_OK(st_library_add(s, "b", "/b", &b, &err), &err);
    st_run run;
    T_EQ_INT(st_run_last(s, a, &run, &err), VX_ENOTFOUND);
    T_EQ_INT(st_run_last(s, 0, &run, &err), VX_ENOTFOUND);
    int64_t before = vx_wall_ms();
    T_OK(st_run_begin(s, a, &r1, &err), &err);
    T_OK(st_run_finish(s, r1, "ok", 3, 1, "done", &err), &err);
    T_OK(st_run_begin(s, b, &r2, &err), &err);
    T_OK(st_run_begin(s, a, &r3, &err), &err); /* same millisecond as r1, most likely */
    T_OK(st_run_last(s, a, &run, &err), &err);
    T_EQ_INT(run.id, r3);
    T_EQ_INT(run.library_id, a);
    T_EQ_STR(run.status, "running");
    T_EQ_INT(run.finished_ms, 0);
    T_ASSERT(run.message == NULL);
    T_ASSERT(run.started_ms >= before && run.started_ms <= vx_wall_ms());
    st_run_clear(&run);
    T_OK(st_run_last(s, b, &run, &err), &err);
    T_EQ_INT(run.id, r2);
    st_run_clear(&run);
    T_OK(st_run_last(s, 0, &run, &err), &err);
    T_EQ_INT(run.id, r3);
    st_run_clear(&run);
    T_OK(st_run_finish(s, r3, "failed", 2, 5, "disk full", &err), &err);
    st_store *rd = t_open(dir, ST_READ);
    T_OK(st_run_last(rd, a, &run, &err), &err);
    T_EQ_INT(run.id, r3);
    T_EQ_STR(run.status, "failed");
    T_EQ_INT(run.videos_done, 2);
    T_EQ_INT(run.videos_failed, 5);
    T_EQ_STR(run.message, "disk full");
    T_ASSERT(run.finished_ms >= run.started_ms);
    st_run_clear(&run);
    st_run_clear(&run); /* cleared twice and NULL: fine */
    st_run_clear(NULL);
    /* a removed library's runs stay, without their library */
    T_OK(st_library_remove(s, b, &err), &err);
    T_EQ_INT(st_run_last(rd, b, &run, &err), VX_ENOTFOUND);
    st_close(rd);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void test_space_lookups(void)
{
    char *dir = t_tempdir("st-spaces");
    st_store *s = t_open(dir, ST_WRITE);
    st_store *r = t_open(dir, ST_READ);
    vx_err err = {0};
    int64_t lib;
    T_OK(st_library_add(s, "a", "/a", &lib, &err), &err);
    int64_t v = add_video(s, lib, "/a/1.mp4"), w = add_video(s, lib, "/a/2.mp4");
    int64_t g1 = add_segment(s, v, 0, NULL), g2 = add_segment(s, w, 0, NULL);
    int has = -1;
    T_OK(st_space_exists(r, "m1", "vision", 4, &has, &err), &err);
    T_EQ_INT(has, 0);
    const float vec[4] = {1, 0, 0, 0};
    T_OK(st_embedding_put(s, g1, "m1", "vision", 4, vec, &err), &err);
    T_OK(st_embedding_put(s, g2, "m1", "speech", 4, vec, &err), &err);
    /* the reader's cached statements see the writer's new commit */
    T_OK(st_space_exists(r, "m1", "vision", 4, &has, &err), &err);
    T_EQ_INT(has, 1);
    T_OK(st_space_exists(r, "m1", "vision", 0, &has, &err), &err);
    T_EQ_INT(has, 1);
    T_OK(st_space_exists(r, "m1", "vision", 8, &has, &err), &err);
    T_EQ_INT(has, 0);
    T_OK(st_space_exists(r, "m1", "audio", 4, &has, &err), &err);
    T_EQ_INT(has, 0);
    T_OK(st_space_exists(r, "m2", "vision", 4, &has, &err), &err);
    T_EQ_INT(has, 0);
    T_OK(st_space_exists(r, "", "../x'; DROP", 4, &has, &err), &err);
    T_EQ_INT(has, 0);
    T_OK(st_space_exists(r, NULL, "vision", 4, &has, &err), &err);
    T_EQ_INT(has, 0);
    st_space_info *sp;
    size_t n;
    T_OK(st_space_list(r, &sp, &n, &err), &err);
    T_EQ_INT(n, 2);
    T_EQ_STR(sp[0].model, "m1");
    T_EQ_STR(sp[0].modality, "speech");
    T_EQ_STR(sp[1].modality, "vision");
    T_EQ_INT(sp[1].dim, 4);
    T_EQ_INT(sp[0].has_vectors, 1);
    T_EQ_INT(sp[1].has_vectors, 1);
    st_spaces_free(sp, n);
    /* the space stays when its last vector goes, but holds no vectors */
    T_OK(st_video_delete(s, v, &err), &err);
    T_OK(st_space_exists(r, "m1", "vision", 4, &has, &err), &err);
    T_EQ_INT(has, 0);
    T_OK(st_space_list(r, &sp, &n, &err), &err);
    T_EQ_INT(n, 2);
    T_EQ_INT(sp[0].has_vectors, 1);
    T_EQ_INT(sp[1].has_vectors, 0);
    st_spaces_free(sp, n);
    /* the same answers as st_stats_get, which counts everything */
    st_stats stats;
    T_OK(st_stats_get(r, &stats, &err), &err);
    T_EQ_INT(stats.space_count, 2);
    T_EQ_INT(stats.spaces[0].vectors, 1);
    T_EQ_INT(stats.spaces[1].vectors, 0);
    st_stats_free(&stats);
    st_close(r);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

typedef struct nested_walk {
    st_store *s;
    int outer, inner;
    vx_status st;
} nested_walk;

static int count_inner(void *ctx, const st_video *v)
{
    (void)v;
    ((nested_walk *)ctx)->inner++;
    return 0;
}

/* The callback runs the very statement that is walking: the cache must hand out another. */
static int walk_again(void *ctx, const st_video *v)
{
    nested_walk *w = ctx;
    w->outer++;
    vx_err err = {0};
    w->st |= st_video_each(w->s, v->library_id, count_inner, w, &err);
    return 0;
}

static void test_statement_cache_and_snapshots(void)
{
    char *dir = t_tempdir("st-stmtcache");
    st_store *s = t_open(dir, ST_WRITE);
    st_store *r = t_open(dir, ST_READ);
    vx_err err = {0};
    int64_t lib;
    T_OK(st_library_add(s, "a", "/a", &lib, &err), &err);
    int64_t v1 = add_video(s, lib, "/a/1.mp4");
    add_video(s, lib, "/a/2.mp4");
    add_video(s, lib, "/a/3.mp4");
    nested_walk w = {r, 0, 0, VX_OK};
    T_OK(st_video_each(r, lib, walk_again, &w, &err), &err);
    T_EQ_INT(w.st, VX_OK);
    T_EQ_INT(w.outer, 3);
    T_EQ_INT(w.inner, 9);
    /* the same cached statement, run again and again, follows the writer's commits */
    st_video got;
    for (int round = 0; round < 3; round++) {
        st_video_status want = round == 1 ? ST_VIDEO_FAILED : ST_VIDEO_INDEXED;
        set_status(s, v1, want);
        T_OK(st_video_get(r, v1, &got, &err), &err);
        T_EQ_INT(got.status, want);
        st_video_clear(&got);
    }
    /* a snapshot: nothing committed after it shows until it ends (nested: the outer end) */
    int64_t gen0, gen;
    T_OK(st_generation(r, &gen0, &err), &err);
    T_OK(st_read_begin(r, &err), &err);
    T_OK(st_read_begin(r, &err), &err);
    int64_t v4 = add_video(s, lib, "/a/4.mp4");
    int64_t seg = add_segment(s, v4, 0, NULL);
    const float vec[4] = {0, 1, 0, 0};
    T_OK(st_embedding_put(s, seg, "m", "vision", 4, vec, &err), &err);
    T_EQ_INT(st_video_get(r, v4, &got, &err), VX_ENOTFOUND);
    T_OK(st_generation(r, &gen, &err), &err);
    T_EQ_INT(gen, gen0);
    st_read_end(r);
    T_EQ_INT(st_video_get(r, v4, &got, &err), VX_ENOTFOUND); /* still inside the outer one */
    st_hit hits[2];
    int nhits = -1;
    T_EQ_INT(st_search(r, "m", "vision", vec, 4, 2, NULL, 0, hits, &nhits, &err), VX_ENOTFOUND);
    st_read_end(r);
    st_read_end(r); /* unbalanced: nothing happens */
    T_OK(st_video_get(r, v4, &got, &err), &err);
    st_video_clear(&got);
    T_OK(st_generation(r, &gen, &err), &err);
    T_EQ_INT(gen, gen0 + 1);
    T_OK(st_search(r, "m", "vision", vec, 4, 2, NULL, 0, hits, &nhits, &err), &err);
    T_EQ_INT(nhits, 1);
    T_EQ_INT(hits[0].segment_id, seg);
    /* a writer cannot write inside its own read snapshot; after it, it can */
    T_OK(st_read_begin(s, &err), &err);
    st_video nv = {.library_id = lib, .location = "/a/5.mp4"};
    T_EQ_INT(st_video_upsert(s, &nv, NULL, &err), VX_EINVAL);
    T_EQ_INT(st_begin(s, &err), VX_EINVAL);
    st_read_end(s);
    T_OK(st_video_upsert(s, &nv, NULL, &err), &err);
    st_read_end(NULL);
    st_close(r);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void test_segment_spans(void)
{
    char *dir = t_tempdir("st-spans");
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    int64_t lib;
    T_OK(st_library_add(s, "a", "/a", &lib, &err), &err);
    int64_t v = add_video(s, lib, "/a/1.mp4"), w = add_video(s, lib, "/a/2.mp4");
    enum { N = 700 };
    static int64_t ids[N + 4];
    for (int i = 0; i < N; i++)
        ids[i] = add_segment(s, i % 3 ? v : w, (int64_t)i * 1000, NULL);
    /* in a different order, with a repeat, an unknown id and extreme values */
    int64_t ask[] = {ids[5], ids[0], ids[5], 999999, INT64_MIN, INT64_MAX, ids[N - 1]};
    size_t nask = sizeof ask / sizeof ask[0];
    st_segment_span spans[sizeof ask / sizeof ask[0]];
    st_store *r = t_open(dir, ST_READ);
    T_OK(st_segment_spans(r, ask, nask, spans, &err), &err);
    for (size_t i = 0; i < nask; i++) {
        st_segment seg;
        vx_status got = st_segment_get(r, ask[i], &seg, &err);
        if (got == VX_ENOTFOUND) {
            T_EQ_INT(spans[i].video_id, 0);
            continue;
        }
        T_OK(got, &err);
        T_EQ_INT(spans[i].video_id, seg.video_id);
        T_EQ_INT(spans[i].start_ms, seg.start_ms);
        T_EQ_INT(spans[i].end_ms, seg.end_ms);
        st_segment_clear(&seg);
    }
    T_EQ_INT(spans[1].video_id, w); /* ids[0]: i = 0 */
    T_EQ_INT(spans[0].start_ms, 5000);
    T_EQ_INT(spans[3].video_id, 0);
    /* all of them at once (the scratch buffer grows), and none */
    static st_segment_span all[N];
    T_OK(st_segment_spans(r, ids, N, all, &err), &err);
    for (int i = 0; i < N; i++) {
        T_EQ_INT(all[i].video_id, i % 3 ? v : w);
        T_EQ_INT(all[i].start_ms, (int64_t)i * 1000);
    }
    T_OK(st_segment_spans(r, ids, 0, all, &err), &err);
    st_close(r);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"libraries", test_libraries},
        {"library_options", test_library_options},
        {"videos_and_segments", test_videos_and_segments},
        {"transactions_and_generation", test_transactions_and_generation},
        {"video_relocate", test_video_relocate},
        {"texts_and_runs", test_texts_and_runs},
        {"migrate_from_previous_versions", test_migrate_from_previous_versions},
        {"migrate_empty_and_newer", test_migrate_empty_and_newer},
        {"fault_paths", test_fault_paths},
        {"second_writer", test_second_writer},
        {"library_counts", test_library_counts},
        {"run_last", test_run_last},
        {"space_lookups", test_space_lookups},
        {"statement_cache_and_snapshots", test_statement_cache_and_snapshots},
        {"segment_spans", test_segment_spans},
    };
    return T_RUN(argc, argv, cases);
}
