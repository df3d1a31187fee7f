/* indexer/ unit tests: name classification (hidden, temporary, non-media), the crawl
 * (symbolic-link loops, order, skipped files, unreadable roots), identity decisions, window
 * computation, the content hash (against an independent SHA-256: sha256sum), JPEG
 * thumbnails and the pipeline's bounded queue. */
#define _GNU_SOURCE
#include "media.h"
#include "idx.h"
#include "idx_queue.h"
#include "testlib.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_bytes(const char *dir, const char *rel, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    T_ASSERT(f);
    for (size_t i = 0; i < n; i++)
        fputc((int)((i * 131 + 7) & 255), f);
    fclose(f);
}

static void mkdir_in(const char *dir, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    T_EQ_INT(mkdir(path, 0755), 0);
}

/* ---- names ------------------------------------------------------------------------------- */

static void test_classify_names(void)
{
    T_EQ_INT(idx_classify_name("movie.mp4"), IDX_FILE_MEDIA);
    T_EQ_INT(idx_classify_name("MOVIE.MKV"), IDX_FILE_MEDIA);
    T_EQ_INT(idx_classify_name("song.m4a"), IDX_FILE_MEDIA);
    T_EQ_INT(idx_classify_name("clip"), IDX_FILE_UNKNOWN);
    T_EQ_INT(idx_classify_name("clip.bin"), IDX_FILE_UNKNOWN);
    T_EQ_INT(idx_classify_name("clip."), IDX_FILE_UNKNOWN);
    T_EQ_INT(idx_classify_name(".DS_Store"), IDX_FILE_HIDDEN);
    T_EQ_INT(idx_classify_name(".movie.mp4"), IDX_FILE_HIDDEN);
    T_EQ_INT(idx_classify_name("movie.mp4.part"), IDX_FILE_TEMPORARY);
    T_EQ_INT(idx_classify_name("movie.mp4.PART"), IDX_FILE_TEMPORARY);
    T_EQ_INT(idx_classify_name("movie.mkv.crdownload"), IDX_FILE_TEMPORARY);
    T_EQ_INT(idx_classify_name("movie.tmp"), IDX_FILE_TEMPORARY);
    T_EQ_INT(idx_classify_name("movie.mp4~"), IDX_FILE_TEMPORARY);
    T_EQ_INT(idx_classify_name("#movie.mp4#"), IDX_FILE_TEMPORARY);
    T_EQ_INT(idx_classify_name("notes.txt"), IDX_FILE_NOT_MEDIA);
    T_EQ_INT(idx_classify_name("cover.JPG"), IDX_FILE_NOT_MEDIA);
    T_EQ_INT(idx_classify_name("movie.srt"), IDX_FILE_NOT_MEDIA);
}

/* ---- crawl ------------------------------------------------------------------------------- */

typedef struct seen_list {
    char names[64][256];
    int kinds[64];
    int64_t sizes[64];
    int count;
    const char *root;
} seen_list;

static int remember(void *ctx, const idx_entry *e)
{
    seen_list *l = ctx;
    T_ASSERT(l->count < 64);
    size_t n = strlen(l->root);
    T_ASSERT(!strncmp(e->location, l->root, n));
    T_EQ_STR(e->location, e->local_path);
    snprintf(l->names[l->count], sizeof l->names[0], "%s", e->location + n + 1);
    l->kinds[l->count] = e->kind;
    l->sizes[l->count] = e->size_bytes;
    l->count++;
    return 0;
}

static void test_crawl_skips_and_loops(void)
{
    char *root = t_tempdir("idx-crawl");
    mkdir_in(root, "b");
    mkdir_in(root, "b/deep");
    mkdir_in(root, ".hidden");
    mkdir_in(root, "a");
    write_bytes(root, "b/deep/z.mp4", 10);
    write_bytes(root, "b/y.mkv", 20);
    write_bytes(root, "a/x.webm", 30);
    write_bytes(root, "a/unknown.bin", 40);
    write_bytes(root, "a/empty_unknown", 0);
    write_bytes(root, "a/empty.mp4", 0); /* a media name: reported, so the run records it */
    write_bytes(root, ".hidden/h.mp4", 10);
    write_bytes(root, "a/.h.mp4", 10);
    write_bytes(root, "a/dl.mp4.part", 10);
    write_bytes(root, "a/dl.mkv.crdownload", 10);
    write_bytes(root, "a/backup.mp4~", 10);
    write_bytes(root, "a/notes.txt", 10);
    write_bytes(root, "top.mov", 50);
    char link[4096];
    /* Two loops: a link to the root, and a link to a sibling folder's parent. */
    snprintf(link, sizeof link, "%s/b/deep/up", root);
    T_EQ_INT(symlink("../..", link), 0);
    snprintf(link, sizeof link, "%s/a/self", root);
    T_EQ_INT(symlink(".", link), 0);
    /* A dangling link is skipped quietly. */
    snprintf(link, sizeof link, "%s/a/dangling.mp4", root);
    T_EQ_INT(symlink("nowhere.mp4", link), 0);

    seen_list l = {.root = root};
    idx_crawl_stats stats;
    vx_err err = {0};
    T_OK(idx_crawl(root, remember, &l, &stats, &err), &err);
    /* A folder's files (in name order), then its subfolders (in name order). */
    const char *expect[] = {"top.mov",  "a/empty.mp4", "a/unknown.bin",
                            "a/x.webm", "b/y.mkv",     "b/deep/z.mp4"};
    T_EQ_INT(l.count, 6);
    for (int i = 0; i < 6; i++)
        T_EQ_STR(l.names[i], expect[i]);
    T_EQ_INT(l.kinds[2], IDX_FILE_UNKNOWN);
    T_EQ_INT(l.kinds[3], IDX_FILE_MEDIA);
    T_EQ_INT(l.sizes[3], 30);
    T_EQ_INT(stats.files, 6);
    T_EQ_INT(stats.loops_skipped, 2);
    T_EQ_INT(stats.hidden_skipped, 2);
    T_EQ_INT(stats.temp_skipped, 3);
    T_EQ_INT(stats.dirs, 4);            /* root, a, b, b/deep */
    T_ASSERT(stats.other_skipped >= 3); /* notes.txt, empty_unknown, dangling link */
    T_EQ_INT(stats.unreadable_count, 0);
    idx_crawl_stats_free(&stats);

    /* A root that is missing or not a folder is an error, never an empty library. */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/missing", root);
    T_EQ_INT(idx_crawl(missing, remember, &l, &stats, &err), VX_ENOTFOUND);
    idx_crawl_stats_free(&stats);
    snprintf(missing, sizeof missing, "%s/top.mov", root);
    T_EQ_INT(idx_crawl(missing, remember, &l, &stats, &err), VX_ENOTFOUND);
    idx_crawl_stats_free(&stats);
    /* A URL goes to the HTTP source: an unreachable server is an error, never an empty
     * library (port 1 refuses at once; no network needed). */
    vx_status http_st = idx_crawl("http://127.0.0.1:1/videos/", remember, &l, &stats, &err);
    T_ASSERT(http_st == VX_ENOTFOUND || http_st == VX_EUNSUPPORTED);
    idx_crawl_stats_free(&stats);
    t_rmtree(root);
    free(root);
}

static int stop_after_one(void *ctx, const idx_entry *e)
{
    (void)e;
    return ++*(int *)ctx >= 1;
}

static void test_crawl_stops_and_unreadable(void)
{
    char *root = t_tempdir("idx-crawl2");
    write_bytes(root, "a.mp4", 10);
    write_bytes(root, "b.mp4", 10);
    mkdir_in(root, "locked");
    write_bytes(root, "locked/c.mp4", 10);
    int n = 0;
    idx_crawl_stats stats;
    vx_err err = {0};
    T_EQ_INT(idx_crawl(root, stop_after_one, &n, &stats, &err), VX_EINTERRUPTED);
    T_EQ_INT(n, 1);
    idx_crawl_stats_free(&stats);
    if (geteuid() != 0) { /* root reads any folder */
        char locked[4096];
        snprintf(locked, sizeof locked, "%s/locked", root);
        chmod(locked, 0);
        seen_list l = {.root = root};
        T_OK(idx_crawl(root, remember, &l, &stats, &err), &err);
        T_EQ_INT(l.count, 2);
        T_EQ_INT(stats.unreadable_count, 1);
        T_EQ_STR(stats.unreadable[0], locked);
        idx_crawl_stats_free(&stats);
        chmod(locked, 0755);
    }
    t_rmtree(root);
    free(root);
}

/* ---- identity ---------------------------------------------------------------------------- */

static void test_identity(void)
{
    const char *h1 = "aa", *h2 = "bb";
    idx_identity stored = {1000, 5000, h1};
    /* Same size and mtime: decided by one stat, no hash needed. */
    idx_identity seen = {1000, 5000, NULL};
    T_EQ_INT(idx_identity_match(&stored, &seen), IDX_MATCH_SAME);
    /* mtime differs: hash it. */
    seen.mtime_ms = 6000;
    T_EQ_INT(idx_identity_match(&stored, &seen), IDX_MATCH_NEEDS_HASH);
    seen.content_hash = h1; /* touched: same content */
    T_EQ_INT(idx_identity_match(&stored, &seen), IDX_MATCH_SAME);
    seen.content_hash = h2; /* rewritten */
    T_EQ_INT(idx_identity_match(&stored, &seen), IDX_MATCH_CHANGED);
    /* size differs: never the same, whatever the hash says. */
    idx_identity grown = {2000, 5000, NULL};
    T_EQ_INT(idx_identity_match(&stored, &grown), IDX_MATCH_NEEDS_HASH);
    grown.content_hash = h1;
    T_EQ_INT(idx_identity_match(&stored, &grown), IDX_MATCH_CHANGED);
    /* Nothing stored to compare a hash with: changed. */
    idx_identity nohash = {1000, 5000, NULL};
    idx_identity touched = {1000, 7000, h1};
    T_EQ_INT(idx_identity_match(&nohash, &touched), IDX_MATCH_CHANGED);
}

/* ---- windows ----------------------------------------------------------------------------- */

static void expect_windows(int64_t duration, int64_t window, int64_t overlap,
                           const int64_t *starts_ends, size_t n)
{
    idx_window w[64];
    size_t got = idx_windows(duration, window, overlap, w, 64);
    if (got != n)
        T_FAIL("idx_windows(%lld, %lld, %lld): %zu windows, expected %zu", (long long)duration,
               (long long)window, (long long)overlap, got, n);
    T_EQ_INT(idx_windows(duration, window, overlap, NULL, 0), n);
    for (size_t i = 0; i < n; i++) {
        T_EQ_INT(w[i].start_ms, starts_ends[2 * i]);
        T_EQ_INT(w[i].end_ms, starts_ends[2 * i + 1]);
    }
}

static void test_windows(void)
{
    expect_windows(8000, 4000, 0, (int64_t[]){0, 4000, 4000, 8000}, 2);
    /* Last partial window kept at >= 1 s, dropped below. */
    expect_windows(9000, 4000, 0, (int64_t[]){0, 4000, 4000, 8000, 8000, 9000}, 3);
    expect_windows(8999, 4000, 0, (int64_t[]){0, 4000, 4000, 8000}, 2);
    expect_windows(6000, 4000, 0, (int64_t[]){0, 4000, 4000, 6000}, 2);
    expect_windows(5000, 4000, 0, (int64_t[]){0, 4000, 4000, 5000}, 2);
    expect_windows(4999, 4000, 0, (int64_t[]){0, 4000}, 1);
    expect_windows(4000, 4000, 0, (int64_t[]){0, 4000}, 1);
    /* Shorter than a window: one window, even below 1 s. */
    expect_windows(2500, 4000, 0, (int64_t[]){0, 2500}, 1);
    expect_windows(400, 4000, 0, (int64_t[]){0, 400}, 1);
    /* Overlap: windows every 2 s, stopping at the first that reaches the end. */
    expect_windows(10000, 4000, 2000, (int64_t[]){0, 4000, 2000, 6000, 4000, 8000, 6000, 10000}, 4);
    expect_windows(9000, 4000, 2000, (int64_t[]){0, 4000, 2000, 6000, 4000, 8000, 6000, 9000}, 4);
    expect_windows(8500, 4000, 2000, (int64_t[]){0, 4000, 2000, 6000, 4000, 8000, 6000, 8500}, 4);
    expect_windows(3000, 4000, 1000, (int64_t[]){0, 3000}, 1);
    expect_windows(5000, 4000, 3000, (int64_t[]){0, 4000, 1000, 5000}, 2);
    /* Other window sizes. */
    expect_windows(3500, 1000, 0, (int64_t[]){0, 1000, 1000, 2000, 2000, 3000}, 3);
    expect_windows(7000, 2000, 500,
                   (int64_t[]){0, 2000, 1500, 3500, 3000, 5000, 4500, 6500, 6000, 7000}, 5);
    /* Invalid input: nothing. */
    T_EQ_INT(idx_windows(0, 4000, 0, NULL, 0), 0);
    T_EQ_INT(idx_windows(-5, 4000, 0, NULL, 0), 0);
    T_EQ_INT(idx_windows(5000, 0, 0, NULL, 0), 0);
    T_EQ_INT(idx_windows(5000, 4000, 4000, NULL, 0), 0);
    T_EQ_INT(idx_windows(5000, 4000, -1, NULL, 0), 0);
    /* A long video: the count is computed without storing. */
    T_EQ_INT(idx_windows(2LL * 3600 * 1000 + 500, 4000, 0, NULL, 0), 1800);
}

/* ---- content hash and thumbnails ---------------------------------------------------------- */

/* The expected hash from the coreutils sha256sum of the same byte sequence, built here. */
static void expect_hash(const char *dir, size_t size)
{
    char name[64], path[1024], blob[1024], cmd[8192];
    snprintf(name, sizeof name, "f%zu.bin", size);
    write_bytes(dir, name, size);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(blob, sizeof blob, "%s/blob%zu", dir, size);
    /* blob = 8-byte little-endian size + head + tail. */
    FILE *f = fopen(blob, "wb");
    T_ASSERT(f);
    for (int i = 0; i < 8; i++)
        fputc((int)((uint64_t)size >> (8 * i)) & 255, f);
    fclose(f);
    size_t span = MEDIA_HASH_SPAN_BYTES;
    size_t head = size < span ? size : span;
    size_t tail = size < span ? size : span;
    snprintf(cmd, sizeof cmd, "head -c %zu '%s' >> '%s' && tail -c %zu '%s' >> '%s'", head, path,
             blob, tail, path, blob);
    T_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", blob);
    FILE *p = popen(cmd, "r");
    T_ASSERT(p);
    char want[80] = "";
    T_ASSERT(fscanf(p, "%64s", want) == 1);
    pclose(p);
    char got[MEDIA_CONTENT_HASH_HEX];
    int64_t got_size = -1;
    vx_err err = {0};
    T_OK(media_content_hash(path, &got_size, got, &err), &err);
    T_EQ_INT(got_size, (int64_t)size);
    T_EQ_STR(got, want);
}

static void test_content_hash(void)
{
    char *dir = t_tempdir("idx-hash");
    expect_hash(dir, 0);
    expect_hash(dir, 1000);
    expect_hash(dir, MEDIA_HASH_SPAN_BYTES);
    expect_hash(dir, MEDIA_HASH_SPAN_BYTES + 1);
    expect_hash(dir, 3 * MEDIA_HASH_SPAN_BYTES + 17);
    char got[MEDIA_CONTENT_HASH_HEX];
    vx_err err = {0};
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/none", dir);
    T_EQ_INT(media_content_hash(missing, NULL, got, &err), VX_ENOTFOUND);
    T_ASSERT(strstr(err.msg, missing));
    t_rmtree(dir);
    free(dir);
}

static void test_jpeg(void)
{
    media_jpeg *j = NULL;
    vx_err err = {0};
    T_OK(media_jpeg_create(160, 5, &j, &err), &err);
    for (int round = 0; round < 3; round++) {
        int w = round == 1 ? 33 : 320, h = round == 1 ? 17 : 180;
        uint8_t *rgb = malloc((size_t)w * h * 3);
        for (int i = 0; i < w * h * 3; i++)
            rgb[i] = (uint8_t)(i * 7 + round);
        const uint8_t *bytes;
        size_t len;
        T_OK(media_jpeg_encode(j, rgb, w, h, &bytes, &len, &err), &err);
        T_ASSERT(len > 100);
        T_EQ_INT(bytes[0], 0xFF); /* SOI */
        T_EQ_INT(bytes[1], 0xD8);
        T_EQ_INT(bytes[len - 2], 0xFF); /* EOI */
        T_EQ_INT(bytes[len - 1], 0xD9);
        free(rgb);
    }
    const uint8_t *bytes;
    size_t len;
    T_EQ_INT(media_jpeg_encode(j, NULL, 0, 0, &bytes, &len, &err), VX_EINVAL);
    media_jpeg_free(j);
    media_jpeg_free(NULL);
    T_EQ_INT(media_jpeg_create(1, 5, &j, &err), VX_EINVAL);
}

/* ---- the pipeline's bounded queue ---------------------------------------------------------- */

#define Q_PRODUCERS 3
#define Q_ITEMS 2000

typedef struct q_producer {
    idx_queue *q;
    int id;
} q_producer;

static void *produce(void *arg)
{
    q_producer *p = arg;
    /* Items encode (producer, sequence) and are never NULL. */
    for (intptr_t i = 0; i < Q_ITEMS; i++)
        idx_queue_push(p->q, (void *)(p->id * 100000 + i + 1));
    return NULL;
}

static void test_queue(void)
{
    idx_queue q;
    vx_err err = {0};
    T_OK(idx_queue_init(&q, 4, &err), &err);
    pthread_t threads[Q_PRODUCERS];
    q_producer producers[Q_PRODUCERS];
    for (int i = 0; i < Q_PRODUCERS; i++) {
        producers[i] = (q_producer){&q, i};
        T_EQ_INT(pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
    }
    /* One consumer: each producer's items arrive in order, none lost or doubled. */
    intptr_t next[Q_PRODUCERS] = {0};
    for (int n = 0; n < Q_PRODUCERS * Q_ITEMS; n++) {
        intptr_t v = (intptr_t)idx_queue_pop(&q) - 1;
        int who = (int)(v / 100000);
        T_ASSERT(who >= 0 && who < Q_PRODUCERS);
        T_EQ_INT(v % 100000, next[who]);
        next[who]++;
    }
    for (int i = 0; i < Q_PRODUCERS; i++)
        pthread_join(threads[i], NULL);
    /* Closed: what is left drains, then NULL. */
    idx_queue_push(&q, (void *)7);
    idx_queue_close(&q);
    T_EQ_INT((intptr_t)idx_queue_pop(&q), 7);
    T_ASSERT(idx_queue_pop(&q) == NULL);
    T_ASSERT(idx_queue_pop(&q) == NULL);
    idx_queue_destroy(&q);
}

/* idx_watch's edges: only local folders; the initial call back; a new subfolder's file
 * settles and calls back; the stop flag ends it. (The CLI test drives the whole loop.) */
typedef struct watch_probe {
    int calls;
    const char *write_path; /* written at the first call */
    volatile sig_atomic_t *stop;
} watch_probe;

static int on_watch(void *ctx, size_t root)
{
    watch_probe *p = ctx;
    T_EQ_INT(root, 0);
    if (++p->calls == 1) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s", p->write_path);
        *strrchr(sub, '/') = '\0';
        T_ASSERT(mkdir(sub, 0755) == 0);
        FILE *f = fopen(p->write_path, "wb");
        T_ASSERT(f != NULL);
        fputs("not really a video", f);
        fclose(f);
        return 0;
    }
    return 1; /* the settled file: done */
}

static int stop_now(void *ctx, size_t root)
{
    (void)root;
    *((watch_probe *)ctx)->stop = 1;
    ((watch_probe *)ctx)->calls++;
    return 0;
}

static void test_watch(void)
{
    vx_err err = {0};
    const char *url[] = {"http://127.0.0.1:1/videos/"};
    watch_probe probe = {0};
    T_EQ_INT(idx_watch(url, 1, NULL, on_watch, &probe, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "local folders"));
    const char *relative[] = {"videos"};
    T_EQ_INT(idx_watch(relative, 1, NULL, on_watch, &probe, &err), VX_EINVAL);

    char *dir = t_tempdir("idx-watch");
    char file[4096];
    snprintf(file, sizeof file, "%s/new/clip.mp4", dir);
    const char *roots[] = {dir};
    probe.write_path = file;
    idx_watch_options o = {.settle_ms = 200, .initial_crawl = 1};
    int64_t t0 = vx_now_ns();
    T_OK(idx_watch(roots, 1, &o, on_watch, &probe, &err), &err);
    T_EQ_INT(probe.calls, 2);
    T_ASSERT(vx_now_ns() - t0 >= 200 * 1000000LL); /* the file settled first */

    volatile sig_atomic_t stop = 0;
    watch_probe stopper = {.stop = &stop};
    o.stop = &stop;
    T_OK(idx_watch(roots, 1, &o, stop_now, &stopper, &err), &err);
    T_EQ_INT(stopper.calls, 1);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"classify_names", test_classify_names},
        {"crawl_skips_and_loops", test_crawl_skips_and_loops},
        {"crawl_stops_and_unreadable", test_crawl_stops_and_unreadable},
        {"identity", test_identity},
        {"windows", test_windows},
        {"content_hash", test_content_hash},
        {"jpeg", test_jpeg},
        {"queue", test_queue},
        {"watch", test_watch},
    };
    return T_RUN(argc, argv, cases);
}
