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
#include <string.h>
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

/* ---- windows snapped to shot cuts ----------------------------------------------------------- */

static void expect_snapped(int64_t duration, int64_t window, int64_t overlap, const int64_t *cuts,
                           size_t ncuts, const int64_t *starts_ends, size_t n)
{
    idx_window w[64];
    size_t got = idx_windows_snapped(duration, window, overlap, cuts, ncuts, w, 64);
    T_EQ_INT(idx_windows_snapped(duration, window, overlap, cuts, ncuts, NULL, 0), got);
    int same = got == n;
    for (size_t i = 0; same && i < n; i++)
        same = w[i].start_ms == starts_ends[2 * i] && w[i].end_ms == starts_ends[2 * i + 1];
    for (size_t i = 0; !same && i < got && i < 64; i++) /* what it planned, to compare */
        fprintf(stderr, "  [%lld, %lld)\n", (long long)w[i].start_ms, (long long)w[i].end_ms);
    if (got != n)
        T_FAIL("idx_windows_snapped(%lld, %lld, %lld, %zu cuts): %zu windows, expected %zu",
               (long long)duration, (long long)window, (long long)overlap, ncuts, got, n);
    for (size_t i = 0; i < n; i++) {
        T_EQ_INT(w[i].start_ms, starts_ends[2 * i]);
        T_EQ_INT(w[i].end_ms, starts_ends[2 * i + 1]);
    }
}

/* The documented guarantees, on any cut list: windows start at 0 and leave no gap; every
 * window but the last lasts window/2 .. window*5/4; no window holds a usable cut more than
 * window/2 after its start; a window that ends at a cut is followed by one starting there. */
static void check_snapped_invariants(int64_t duration, int64_t window, int64_t overlap,
                                     const int64_t *cuts, size_t ncuts)
{
    static idx_window w[4096];
    size_t n = idx_windows_snapped(duration, window, overlap, cuts, ncuts, w, 4096);
    T_ASSERT(n >= 1 && n <= 4096);
    T_EQ_INT(w[0].start_ms, 0);
    T_ASSERT(w[n - 1].end_ms <= duration && w[n - 1].end_ms > duration - 1000);
    for (size_t i = 0; i < n; i++) {
        int64_t len = w[i].end_ms - w[i].start_ms;
        T_ASSERT(len > 0 && len <= window + window / 4);
        if (i + 1 < n) {
            T_ASSERT(len >= window / 2);
            T_ASSERT(w[i + 1].start_ms > w[i].start_ms && w[i + 1].start_ms <= w[i].end_ms);
        }
        for (size_t k = 0; k < ncuts; k++) {
            int64_t c = cuts[k];
            if (c <= 0 || duration - c < IDX_MIN_LAST_WINDOW_MS) continue;
            if (c >= w[i].start_ms + window / 2 && c < w[i].end_ms)
                T_FAIL("window [%lld, %lld) holds cut %lld", (long long)w[i].start_ms,
                       (long long)w[i].end_ms, (long long)c);
            if (c == w[i].end_ms && i + 1 < n) T_EQ_INT(w[i + 1].start_ms, c);
        }
    }
}

static void test_windows_snapped(void)
{
    /* No cuts: the fixed windows (tails of >= 1 s or none). */
    const int64_t durations[] = {400, 2500, 4000, 5000, 6000, 8000, 9000, 10000, 12345, 3600000};
    const int64_t overlaps[] = {0, 1000, 2000, 3000};
    static idx_window a[2000], b[2000];
    for (size_t i = 0; i < sizeof durations / sizeof *durations; i++)
        for (size_t j = 0; j < sizeof overlaps / sizeof *overlaps; j++) {
            size_t na = idx_windows(durations[i], 4000, overlaps[j], a, 2000);
            size_t nb = idx_windows_snapped(durations[i], 4000, overlaps[j], NULL, 0, b, 2000);
            int tiny_tail = 0; /* a fixed window ends under 1 s before the end */
            for (size_t k = 0; k < na && k < 2000; k++)
                tiny_tail |= a[k].end_ms < durations[i] && durations[i] - a[k].end_ms < 1000;
            if (tiny_tail) { /* the tail joins that window instead (below) */
                T_EQ_INT(b[nb - 1].end_ms, durations[i]);
                continue;
            }
            if (nb != na)
                T_FAIL("duration %lld overlap %lld: %zu windows, fixed %zu",
                       (long long)durations[i], (long long)overlaps[j], nb, na);
            for (size_t k = 0; k < na && k < 2000; k++) {
                T_EQ_INT(b[k].start_ms, a[k].start_ms);
                T_EQ_INT(b[k].end_ms, a[k].end_ms);
            }
        }
    /* A tail under 1 s joins the last window when it stays within 5 s (idx_windows drops it). */
    expect_snapped(4800, 4000, 0, NULL, 0, (int64_t[]){0, 4800}, 1);
    expect_snapped(8999, 4000, 0, NULL, 0, (int64_t[]){0, 4000, 4000, 8999}, 2);
    /* A cut a little after a boundary: the window stretches to it, the next starts there. */
    expect_snapped(12000, 4000, 0, (int64_t[]){4500}, 1,
                   (int64_t[]){0, 4500, 4500, 8500, 8500, 12000}, 3);
    /* A little before: the window ends early; the shift carries on to the end. */
    expect_snapped(12000, 4000, 0, (int64_t[]){3700}, 1,
                   (int64_t[]){0, 3700, 3700, 7700, 7700, 12000}, 3);
    /* Half a window after the start is the earliest a window may end ... */
    expect_snapped(12000, 4000, 0, (int64_t[]){2000}, 1,
                   (int64_t[]){0, 2000, 2000, 6000, 6000, 10000, 10000, 12000}, 4);
    /* ... a cut before that stays inside (no tiny segment), as does one past window * 5/4. */
    expect_snapped(12000, 4000, 0, (int64_t[]){1999}, 1,
                   (int64_t[]){0, 4000, 4000, 8000, 8000, 12000}, 3);
    expect_snapped(12000, 4000, 0, (int64_t[]){5001}, 1,
                   (int64_t[]){0, 4000, 4000, 8000, 8000, 12000}, 3);
    /* Two cuts in reach: the first one ends the window. */
    expect_snapped(12000, 4000, 0, (int64_t[]){3200, 4100}, 2,
                   (int64_t[]){0, 3200, 3200, 7200, 7200, 12000}, 3);
    /* Cuts at 0, at the end, within 1 s of the end and past it are ignored. */
    expect_snapped(8000, 4000, 0, (int64_t[]){0, 7500, 8000, 9000}, 4,
                   (int64_t[]){0, 4000, 4000, 8000}, 2);
    /* Many cuts (every 700 ms): windows of at least half a window, each ending at a cut. */
    int64_t many[40];
    for (int i = 0; i < 40; i++)
        many[i] = 700 * (i + 1);
    expect_snapped(28500, 4000, 0, many, 40,
                   (int64_t[]){0,     2100,  2100,  4200,  4200,  6300,  6300,  8400,  8400,  10500,
                               10500, 12600, 12600, 14700, 14700, 16800, 16800, 18900, 18900, 21000,
                               21000, 23100, 23100, 25200, 25200, 27300, 27300, 28500},
                   14);
    /* Overlap: kept inside a shot, never across a cut (the window after a cut starts at it). */
    expect_snapped(12000, 4000, 2000, (int64_t[]){6000}, 1,
                   (int64_t[]){0, 4000, 2000, 6000, 6000, 10000, 8000, 12000}, 4);
    expect_snapped(12000, 4000, 2000, (int64_t[]){5000}, 1,
                   (int64_t[]){0, 5000, 5000, 9000, 7000, 11000, 9000, 12000}, 4);
    /* A long shot is still split by the fixed window. */
    expect_snapped(
        20000, 4000, 0, (int64_t[]){2600, 19500}, 2,
        (int64_t[]){0, 2600, 2600, 6600, 6600, 10600, 10600, 14600, 14600, 18600, 18600, 20000}, 6);
    /* Invalid sizes. */
    T_EQ_INT(idx_windows_snapped(0, 4000, 0, many, 40, NULL, 0), 0);
    T_EQ_INT(idx_windows_snapped(5000, 0, 0, many, 40, NULL, 0), 0);
    T_EQ_INT(idx_windows_snapped(5000, 4000, 4000, many, 40, NULL, 0), 0);
    /* Invariants on pseudo-random cut lists (a fixed LCG: reproducible). */
    uint64_t x = 12345;
    static int64_t cuts[600];
    for (int round = 0; round < 300; round++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t duration = 500 + (int64_t)(x >> 33) % 120000;
        size_t ncuts = (size_t)((x >> 20) % 600);
        int64_t t = 0;
        for (size_t k = 0; k < ncuts; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            t += (int64_t)((x >> 33) % 6000); /* duplicates (0 gaps) included */
            cuts[k] = t;
        }
        int64_t window = 1000 + (int64_t)((x >> 13) % 8000);
        int64_t overlap = (round % 3) ? 0 : (int64_t)((x >> 7) % (uint64_t)window);
        check_snapped_invariants(duration, window, overlap, cuts, ncuts);
    }
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

/* ---- a run's progress and its stored options --------------------------------------------- */

typedef struct progress_log {
    pthread_t caller;
    int calls, other_thread, went_back;
    int64_t first_total, first_done, last_done, last_total, last_failed, last_segments;
    int named; /* calls with a current location */
    const char *last_current;
} progress_log;

static void on_progress(void *ctx, const idx_progress *p)
{
    progress_log *log = ctx;
    if (!pthread_equal(pthread_self(), log->caller)) log->other_thread++;
    if (log->calls == 0) {
        log->first_total = p->files_total;
        log->first_done = p->files_done;
    } else if (p->files_done < log->last_done) {
        log->went_back++;
    }
    log->calls++;
    log->last_done = p->files_done;
    log->last_total = p->files_total;
    log->last_failed = p->videos_failed;
    log->last_segments = p->segments_done;
    log->last_current = p->current;
    if (p->current) log->named++;
}

/* A library of one real clip (FFmpeg's lavfi) and two broken files: the callback runs in the
 * calling thread, once after the plan, once per video, once at the end, never going back. */
static void test_progress_callback(void)
{
    if (system("ffmpeg -version > /dev/null 2>&1") != 0) {
        printf("skipped: no ffmpeg to make the clip\n");
        return;
    }
    char *dir = t_tempdir("idx-progress");
    char lib[4096], data[4096], cmd[8192];
    snprintf(lib, sizeof lib, "%s/lib", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    T_EQ_INT(mkdir(lib, 0755), 0);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "
             "testsrc=size=64x48:rate=10:duration=5 -pix_fmt yuv420p '%s/a.mp4'",
             lib);
    T_EQ_INT(system(cmd), 0);
    write_bytes(lib, "b.mp4", 3000);
    write_bytes(lib, "c.mkv", 100);
    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_WRITE;
    T_OK(st_open(data, &so, &s, &err), &err);
    progress_log log = {.caller = pthread_self()};
    idx_options o = idx_options_default();
    o.root = lib;
    o.library = "p";
    o.asr = o.ocr = 0;
    o.thumbnails = 0;
    o.jobs = 2;
    o.window_ms = 2000;
    o.on_progress = on_progress;
    o.progress_ctx = &log;
    o.store_options = 1;
    idx_summary sum;
    T_OK(idx_run(s, &o, &sum, &err), &err);
    T_EQ_INT(sum.indexed, 1);
    T_EQ_INT(sum.failed, 2);
    T_EQ_INT(log.other_thread, 0);
    T_EQ_INT(log.went_back, 0);
    T_EQ_INT(log.calls, 1 + 3 + 1);
    T_EQ_INT(log.named, 3);
    T_EQ_INT(log.first_total, 3);
    T_EQ_INT(log.first_done, 0);
    T_EQ_INT(log.last_total, 3);
    T_EQ_INT(log.last_done, 3);
    T_EQ_INT(log.last_failed, 2);
    T_EQ_INT(log.last_segments, sum.segments);
    T_EQ_INT(sum.segments, 3); /* 2 s windows over 5 s: 0-2, 2-4, 4-5 */
    T_ASSERT(log.last_current == NULL);
    idx_summary_free(&sum);

    /* The run stored its options with the library. */
    idx_library_config cfg;
    T_OK(idx_library_options(s, "p", &cfg, &err), &err);
    T_EQ_STR(cfg.root, lib);
    T_EQ_STR(cfg.options.root, lib);
    T_EQ_STR(cfg.options.library, "p");
    T_EQ_INT(cfg.options.window_ms, 2000);
    T_EQ_INT(cfg.options.asr, 0);
    T_EQ_INT(cfg.options.ocr, 0);
    T_EQ_INT(cfg.options.subtitles, 1);
    T_EQ_INT(cfg.options.thumbnails, 0);
    T_ASSERT(cfg.model_dir == NULL && cfg.options.model_dir == NULL);
    idx_library_config_free(&cfg);
    char *name = NULL;
    T_OK(idx_library_for_root(s, lib, &name, &err), &err);
    T_EQ_STR(name, "p");
    free(name);

    /* A re-run by name from the stored options: all unchanged (one stat each), and progress
     * still ends with every file settled. */
    T_OK(idx_library_options(s, "p", &cfg, &err), &err);
    memset(&log, 0, sizeof log);
    log.caller = pthread_self();
    cfg.options.on_progress = on_progress;
    cfg.options.progress_ctx = &log;
    cfg.options.root = NULL;
    T_OK(idx_run(s, &cfg.options, &sum, &err), &err);
    T_EQ_INT(sum.unchanged, 3);
    T_EQ_INT(log.calls, 2);
    T_EQ_INT(log.last_done, 3);
    idx_summary_free(&sum);
    idx_library_config_free(&cfg);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

/* idx_library_options over values written straight into the catalog: overrides, defaults for
 * what is absent, unknown keys ignored, bad values named. */
static void test_library_options(void)
{
    char *dir = t_tempdir("idx-libopts");
    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_WRITE;
    T_OK(st_open(dir, &so, &s, &err), &err);
    int64_t id;
    T_OK(st_library_add(s, "films", "/srv/films", &id, &err), &err);
    idx_library_config cfg;
    T_OK(idx_library_options(s, "films", &cfg, &err), &err); /* nothing stored: defaults */
    idx_options def = idx_options_default();
    T_EQ_INT(cfg.options.window_ms, def.window_ms);
    T_EQ_INT(cfg.options.asr, def.asr);
    T_EQ_INT(cfg.options.snap_to_shots, 0);
    T_EQ_STR(cfg.options.root, "/srv/films");
    idx_library_config_free(&cfg);
    T_OK(st_library_option_set(s, id, "window_ms", "6000", &err), &err);
    T_OK(st_library_option_set(s, id, "overlap_ms", "1000", &err), &err);
    T_OK(st_library_option_set(s, id, "ocr", "0", &err), &err);
    T_OK(st_library_option_set(s, id, "snap_to_shots", "1", &err), &err);
    T_OK(st_library_option_set(s, id, "every_ms", "21600000", &err), &err);
    T_OK(st_library_option_set(s, id, "model_dir", "/models/s2", &err), &err);
    T_OK(st_library_option_set(s, id, "from_a_newer_vidx", "x", &err), &err);
    T_OK(idx_library_options(s, "films", &cfg, &err), &err);
    T_EQ_INT(cfg.options.window_ms, 6000);
    T_EQ_INT(cfg.options.overlap_ms, 1000);
    T_EQ_INT(cfg.options.ocr, 0);
    T_EQ_INT(cfg.options.asr, 1);
    T_EQ_INT(cfg.options.snap_to_shots, 1);
    T_EQ_INT(cfg.options.every_ms, 21600000);
    T_EQ_STR(cfg.options.model_dir, "/models/s2");
    idx_library_config_free(&cfg);
    T_OK(st_library_option_set(s, id, "asr", "yes", &err), &err);
    T_EQ_INT(idx_library_options(s, "films", &cfg, &err), VX_ECORRUPT);
    T_ASSERT(strstr(err.msg, "asr") && strstr(err.msg, "films"));
    idx_library_config_free(&cfg);
    T_OK(st_library_option_set(s, id, "asr", "1", &err), &err);
    T_OK(st_library_option_set(s, id, "overlap_ms", "6000", &err), &err);
    T_EQ_INT(idx_library_options(s, "films", &cfg, &err), VX_ECORRUPT);
    idx_library_config_free(&cfg);
    T_EQ_INT(idx_library_options(s, "nope", &cfg, &err), VX_ENOTFOUND);
    T_ASSERT(strstr(err.msg, "nope"));
    idx_library_config_free(&cfg);
    char *name = (char *)"x";
    T_OK(idx_library_for_root(s, "/no/such/folder", &name, &err), &err);
    T_ASSERT(name == NULL);
    st_close(s);
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
        {"windows_snapped", test_windows_snapped},
        {"content_hash", test_content_hash},
        {"jpeg", test_jpeg},
        {"queue", test_queue},
        {"watch", test_watch},
        {"progress_callback", test_progress_callback},
        {"library_options", test_library_options},
    };
    return T_RUN(argc, argv, cases);
}
