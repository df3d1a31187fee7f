/* Fault injection (in the manner of SQLite's test_malloc.c): the Nth allocation SQLite makes
 * fails, with N walked over whole storage operations — opening and migrating, a video's
 * transaction, a search that loads the index. Each run must fail cleanly or succeed (never
 * crash or leak, as the sanitizer build checks), and afterwards the catalog must verify and
 * hold each video whole or not at all. */
#define _GNU_SOURCE
#include "st_internal.h"
#include "st_test.h"

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- a failing allocator wrapped around SQLite's own -------------------------------------- */

static sqlite3_mem_methods real_methods;
/* Test-only state, touched by this single-threaded program alone. */
static long fail_countdown; /* the allocation to fail: 1 = the next one; 0 = none */
static int fail_persist;    /* after the first failure, fail every later one too */
static long failures;

static int should_fail(void)
{
    if (fail_countdown <= 0) return 0;
    if (fail_countdown == 1) {
        failures++;
        if (!fail_persist) fail_countdown = 0;
        return 1;
    }
    fail_countdown--;
    return 0;
}

static void *fault_malloc(int n)
{
    return should_fail() ? NULL : real_methods.xMalloc(n);
}

static void *fault_realloc(void *p, int n)
{
    return should_fail() ? NULL : real_methods.xRealloc(p, n);
}

/* The next allocation point to try: every one at first, then spread out (an operation can
 * make thousands of allocations; the later ones exercise the same paths). */
static long next_point(long n)
{
    return n < 150 ? n + 1 : n + n / 12;
}

static void install_fault_allocator(void)
{
    T_ASSERT(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_methods) == SQLITE_OK);
    sqlite3_mem_methods methods = real_methods;
    methods.xMalloc = fault_malloc;
    methods.xRealloc = fault_realloc;
    T_ASSERT(sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) == SQLITE_OK);
    T_ASSERT(sqlite3_initialize() == SQLITE_OK);
}

static void faults_off(void)
{
    fail_countdown = 0;
    fail_persist = 0;
}

/* ---- checks ------------------------------------------------------------------------------- */

#define MODEL "fault-1"
#define DIM 8
#define SEGMENTS 10

/* Verify finds nothing but (possibly) an index file older than the catalog. */
static void expect_consistent(const char *dir)
{
    faults_off();
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    st_verify_report rep;
    T_OK(st_verify(s, 0, &rep, &err), &err);
    for (size_t i = 0; i < rep.count; i++)
        if (rep.problems[i].kind != ST_PROBLEM_INDEX_STALE)
            T_FAIL("%s: %s", st_problem_kind_name(rep.problems[i].kind), rep.problems[i].what);
    st_verify_report_free(&rep);
    st_close(s);
}

static vx_status write_video(st_store *s, const char *location, vx_err *err)
{
    vx_status st = st_begin(s, err);
    if (st) return st;
    st_video v = {.library_id = 1, .location = (char *)location, .status = ST_VIDEO_INDEXED};
    int64_t vid;
    if ((st = st_video_upsert(s, &v, &vid, err))) goto fail;
    float vec[DIM];
    for (int i = 0; i < SEGMENTS; i++) {
        st_segment seg = {.video_id = vid, .start_ms = i * 1000, .end_ms = i * 1000 + 1000};
        int64_t sid;
        if ((st = st_segment_add(s, &seg, &sid, err))) goto fail;
        t_random_vectors(vec, 1, DIM, (uint64_t)i + 1);
        if ((st = st_embedding_put(s, sid, MODEL, "vision", DIM, vec, err))) goto fail;
        if ((st = st_text_add(s, sid, "asr", 0, 1, "hello there", err))) goto fail;
    }
    if ((st = st_commit(s, err))) goto fail;
    return VX_OK;
fail:
    st_rollback(s);
    return st;
}

/* How many segments the video at location has (-1 when absent). */
static int video_segments(st_store *s, const char *location)
{
    vx_err err = {0};
    st_video v;
    if (st_video_find(s, 1, location, &v, &err) == VX_ENOTFOUND) return -1;
    T_EQ_INT(err.status, VX_OK);
    st_segment *segs;
    size_t n;
    T_OK(st_segment_list(s, v.id, -1, &segs, &n, &err), &err);
    st_segments_free(segs, n);
    st_video_clear(&v);
    return (int)n;
}

static void make_base(const char *dir)
{
    faults_off();
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    T_OK(st_library_add(s, "lib", "/m", NULL, &err), &err);
    T_OK(write_video(s, "/m/base.mp4", &err), &err);
    T_OK(st_flush(s, &err), &err);
    st_close(s);
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_alloc_faults_in_open(void)
{
    char *dir = t_tempdir("st-fault-open");
    long n = 1;
    long tried = 0;
    for (int done = 0; !done && n < 100000; n = next_point(n), tried++) {
        t_rmtree(dir);
        st_store *s = NULL;
        vx_err err = {0};
        st_options o = st_options_default();
        o.mode = ST_WRITE;
        long before = failures;
        fail_countdown = n;
        vx_status st = st_open(dir, &o, &s, &err);
        faults_off();
        done = failures == before; /* no fault hit: the walk covered the whole open */
        if (st) {
            T_ASSERT(s == NULL);
            T_ASSERT(err.msg[0]);
        }
        st_close(s);
        /* Whatever happened, a later open succeeds and the catalog is sound. */
        expect_consistent(dir);
    }
    fprintf(stderr, "open: %ld allocation points tried (up to %ld)\n", tried, n);
    t_rmtree(dir);
    free(dir);
}

static void test_alloc_faults_in_video_transaction(void)
{
    char *dir = t_tempdir("st-fault-txn");
    make_base(dir);
    st_store *s = t_open(dir, ST_WRITE);
    long n = 1;
    int succeeded = 0, failed = 0;
    long tried = 0;
    for (int done = 0; !done && n < 100000; n = next_point(n), tried++) {
        char location[64];
        snprintf(location, sizeof location, "/m/v%ld.mp4", n);
        vx_err err = {0};
        long before = failures;
        fail_persist = n % 3 == 0; /* a third of the runs: every allocation fails after N */
        fail_countdown = n;
        vx_status st = write_video(s, location, &err);
        faults_off();
        done = failures == before;
        int segments = video_segments(s, location);
        if (st == VX_OK) {
            succeeded++;
            T_EQ_INT(segments, SEGMENTS);
        } else {
            failed++;
            T_ASSERT(err.msg[0]);
            if (failures == before) T_FAIL("no fault, yet: %s", err.msg);
            if (segments != -1)
                T_FAIL("allocation %ld failed (%s) but the video has %d segments", n, err.msg,
                       segments);
        }
        if (tried % 25 == 0) { /* now and then, the whole catalog from a fresh handle */
            st_close(s);
            expect_consistent(dir);
            s = t_open(dir, ST_WRITE);
        }
    }
    st_close(s);
    expect_consistent(dir);
    fprintf(stderr,
            "video transaction: %ld allocation points tried (up to %ld), %d failed cleanly,"
            " %d succeeded\n",
            tried, n, failed, succeeded);
    t_rmtree(dir);
    free(dir);
}

static void test_alloc_faults_in_search(void)
{
    char *dir = t_tempdir("st-fault-search");
    make_base(dir);
    /* The catalog moves past the saved file, so a search must load, then replay. */
    {
        st_store *w = t_open(dir, ST_WRITE);
        vx_err err = {0};
        T_OK(write_video(w, "/m/later.mp4", &err), &err);
        st_close(w);
    }
    float q[DIM];
    t_random_vectors(q, 1, DIM, 3); /* the vector of segment 2 of each video */
    long n = 1;
    long tried = 0;
    for (int done = 0; !done && n < 100000; n = next_point(n), tried++) {
        st_store *r = t_open(dir, ST_READ);
        vx_err err = {0};
        st_hit hits[4];
        int got = 0;
        long before = failures;
        fail_countdown = n;
        vx_status st = st_search(r, MODEL, "vision", q, DIM, 4, NULL, 0, hits, &got, &err);
        faults_off();
        done = failures == before;
        if (st == VX_OK) {
            T_EQ_INT(got, 4);
            T_NEAR(hits[0].score, 1.0, 1e-5);
            T_NEAR(hits[1].score, 1.0, 1e-5); /* base and later both hold that vector */
        } else {
            T_ASSERT(err.msg[0]);
        }
        /* The same handle recovers once memory is back. */
        T_OK(st_search(r, MODEL, "vision", q, DIM, 4, NULL, 0, hits, &got, &err), &err);
        T_EQ_INT(got, 4);
        T_NEAR(hits[1].score, 1.0, 1e-5);
        st_close(r);
    }
    fprintf(stderr, "search: %ld allocation points tried (up to %ld)\n", tried, n);
    t_rmtree(dir);
    free(dir);
}

/* Disk full, simulated with RLIMIT_FSIZE (writes past it fail with EFBIG): a commit that
 * cannot be written fails cleanly and leaves earlier videos intact; an index save that cannot
 * be written fails, keeps the old file and leaves no temp file behind. */
static void set_file_limit(rlim_t bytes)
{
    struct rlimit lim;
    T_ASSERT(getrlimit(RLIMIT_FSIZE, &lim) == 0);
    lim.rlim_cur = bytes;
    T_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);
}

static void test_disk_full(void)
{
    char *dir = t_tempdir("st-fault-full");
    make_base(dir);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit saved;
    T_ASSERT(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    st_store *s = t_open(dir, ST_WRITE);
    vx_err err = {0};
    /* The catalog: write until the limit bites. */
    set_file_limit(256 * 1024);
    int written = 0;
    vx_status st = VX_OK;
    char location[64];
    for (; written < 2000; written++) {
        snprintf(location, sizeof location, "/m/full%d.mp4", written);
        if ((st = write_video(s, location, &err))) break;
    }
    set_file_limit(saved.rlim_cur);
    T_ASSERT(st != VX_OK);
    T_ASSERT(strstr(err.msg, "catalog.db"));
    fprintf(stderr, "disk full after %d videos: %s (%s)\n", written, err.msg, vx_strerror(st));
    T_EQ_INT(video_segments(s, location), -1);
    snprintf(location, sizeof location, "/m/full%d.mp4", written - 1);
    T_EQ_INT(video_segments(s, location), SEGMENTS);
    /* With room again, the same handle writes on. */
    T_OK(write_video(s, "/m/after.mp4", &err), &err);
    T_OK(st_flush(s, &err), &err);

    /* The index: more vectors make the next file bigger than the limit. */
    char path[4200];
    snprintf(path, sizeof path, "%s/index/%s@vision.vxi", dir, MODEL);
    struct stat before;
    T_ASSERT(stat(path, &before) == 0);
    for (int i = 0; i < 20; i++) {
        snprintf(location, sizeof location, "/m/more%d.mp4", i);
        T_OK(write_video(s, location, &err), &err);
    }
    set_file_limit((rlim_t)before.st_size);
    st = st_flush(s, &err);
    set_file_limit(saved.rlim_cur);
    T_EQ_INT(st, VX_EIO);
    T_ASSERT(strstr(err.msg, ".vxi.tmp."));
    struct stat after;
    T_ASSERT(stat(path, &after) == 0);
    T_EQ_INT(after.st_size, before.st_size); /* the old file is untouched */
    snprintf(path, sizeof path, "%s/index", dir);
    DIR *d = opendir(path);
    T_ASSERT(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) T_FAIL("temp file %s left behind", e->d_name);
    closedir(d);
    st_close(s);
    expect_consistent(dir); /* stale index allowed, nothing else */
    s = t_open(dir, ST_WRITE);
    T_OK(st_flush(s, &err), &err);
    st_verify_report rep;
    T_OK(st_verify(s, 0, &rep, &err), &err);
    T_EQ_INT(rep.count, 0);
    st_verify_report_free(&rep);
    st_close(s);
    signal(SIGXFSZ, SIG_DFL);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    install_fault_allocator();
    static const t_case cases[] = {
        {"alloc_faults_in_open", test_alloc_faults_in_open},
        {"alloc_faults_in_video_transaction", test_alloc_faults_in_video_transaction},
        {"alloc_faults_in_search", test_alloc_faults_in_search},
        {"disk_full", test_disk_full},
    };
    return T_RUN(argc, argv, cases);
}
