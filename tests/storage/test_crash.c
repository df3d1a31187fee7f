/* Crash safety: a child process writes large transactions (a video with hundreds of segments,
 * vectors and texts each) and saves the index between them; the parent SIGKILLs it at random
 * points, many times. Afterwards the catalog must verify clean, hold every video the child
 * reported committed (it reports only after st_commit returned), hold no half-written video,
 * and searches must be right. A second child does nothing but save the index, so that kills
 * land inside saves: the published file must always be whole. */
#define _GNU_SOURCE
#include "st_internal.h"
#include "st_test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODEL "crash-1"
#define DIM 64
#define SEGMENTS_PER_VIDEO 200
#define ROUNDS 30

/* The vector of segment `i` of a video: derived from the video's location hash, so the parent
 * can recompute what must be stored. */
static void video_vector(int64_t seed, int i, float *out)
{
    t_random_vectors(out, 1, DIM, (uint64_t)seed * 1000003u + (uint64_t)i);
}

/* Writes one whole video in one transaction; returns its id. */
static int64_t write_video(st_store *s, int64_t lib, int64_t seed, vx_err *err)
{
    char location[64];
    snprintf(location, sizeof location, "/media/v%lld.mp4", (long long)seed);
    if (st_begin(s, err)) return -1;
    st_video v = {
        .library_id = lib, .location = location, .duration_ms = seed, .status = ST_VIDEO_INDEXED};
    int64_t vid;
    if (st_video_upsert(s, &v, &vid, err)) goto fail;
    float vec[DIM];
    for (int i = 0; i < SEGMENTS_PER_VIDEO; i++) {
        st_segment seg = {.video_id = vid, .start_ms = i * 2000, .end_ms = i * 2000 + 2000};
        int64_t sid;
        if (st_segment_add(s, &seg, &sid, err)) goto fail;
        video_vector(seed, i, vec);
        if (st_embedding_put(s, sid, MODEL, "vision", DIM, vec, err)) goto fail;
        if (st_text_add(s, sid, "asr", seg.start_ms, seg.end_ms, "words spoken in the segment",
                        err))
            goto fail;
    }
    if (st_commit(s, err)) goto fail;
    return vid;
fail:
    st_rollback(s);
    return -1;
}

/* The child: writes videos forever, reporting each committed id and saving the index after
 * each (so kills land in saves as often as in transactions). */
static void child_main(const char *dir, int report_fd, int64_t first_seed)
{
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    st_store *s = NULL;
    vx_err err = {0};
    if (st_open(dir, &o, &s, &err)) {
        fprintf(stderr, "child: %s\n", err.msg);
        _exit(2);
    }
    st_library lib;
    if (st_library_find(s, "lib", &lib, &err)) _exit(3);
    for (int64_t seed = first_seed;; seed++) {
        int64_t vid = write_video(s, lib.id, seed, &err);
        if (vid < 0) {
            fprintf(stderr, "child: %s\n", err.msg);
            _exit(4);
        }
        int64_t report[2] = {vid, seed};
        if (write(report_fd, report, sizeof report) != sizeof report) _exit(5);
        if (st_flush(s, &err)) {
            fprintf(stderr, "child: %s\n", err.msg);
            _exit(6);
        }
    }
}

/* The second child: saves the same index over and over, reporting each completed save. */
static void saver_main(const char *dir, int report_fd)
{
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    st_store *s = NULL;
    vx_err err = {0};
    st_vindex *vi;
    if (st_open(dir, &o, &s, &err) || st__space_find(s, MODEL, "vision", DIM, 0, &vi, &err) ||
        st__vindex_sync(s, vi, &err)) {
        fprintf(stderr, "saver: %s\n", err.msg);
        _exit(2);
    }
    for (;;) {
        if (st__vindex_save(s, vi, &err)) {
            fprintf(stderr, "saver: %s\n", err.msg);
            _exit(3);
        }
        int64_t one = 1;
        if (write(report_fd, &one, sizeof one) != sizeof one) _exit(4);
    }
}

static int leftover_temps(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* This program's path, to exec the child. */
static const char *self_path;

typedef struct seen {
    int64_t *ids, *seeds;
    size_t n, cap;
} seen;

static void seen_add(seen *s, int64_t id, int64_t seed)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        s->seeds = realloc(s->seeds, s->cap * sizeof *s->seeds);
        T_ASSERT(s->ids && s->seeds);
    }
    s->ids[s->n] = id;
    s->seeds[s->n] = seed;
    s->n++;
}

typedef struct walk {
    st_store *s;
    int64_t videos;
} walk;

/* Every video in the catalog is whole: all its segments, each with its vector. */
static int check_video_whole(void *ctx, const st_video *v)
{
    walk *w = ctx;
    vx_err err = {0};
    st_segment *segs;
    size_t n;
    T_OK(st_segment_list(w->s, v->id, -1, &segs, &n, &err), &err);
    if (n != SEGMENTS_PER_VIDEO)
        T_FAIL("video %lld (%s) has %zu segments, expected %d: a torn transaction",
               (long long)v->id, v->location, n, SEGMENTS_PER_VIDEO);
    float got[DIM], want[DIM];
    for (size_t i = 0; i < n; i += 37) {
        T_OK(st_embedding_get(w->s, segs[i].id, MODEL, "vision", DIM, got, &err), &err);
        video_vector(v->duration_ms, (int)i, want);
        T_ASSERT(memcmp(got, want, sizeof got) == 0);
    }
    st_segments_free(segs, n);
    w->videos++;
    return 0;
}

static void check_after_crash(const char *dir, const seen *committed, int round)
{
    vx_err err = {0};
    st_store *s = t_open(dir, ST_WRITE); /* also removes a save's leftover temp file */
    /* The only finding allowed right after a crash: an index file older than the catalog. */
    st_verify_report rep;
    T_OK(st_verify(s, 0, &rep, &err), &err);
    for (size_t i = 0; i < rep.count; i++)
        if (rep.problems[i].kind != ST_PROBLEM_INDEX_STALE)
            T_FAIL("round %d: %s: %s", round, st_problem_kind_name(rep.problems[i].kind),
                   rep.problems[i].what);
    st_verify_report_free(&rep);
    /* Every reported video is there, whole. */
    for (size_t i = 0; i < committed->n; i++) {
        st_video v;
        T_OK(st_video_get(s, committed->ids[i], &v, &err), &err);
        T_EQ_INT(v.duration_ms, committed->seeds[i]);
        st_video_clear(&v);
    }
    walk w = {.s = s};
    T_OK(st_video_each(s, 0, check_video_whole, &w, &err), &err);
    T_ASSERT(w.videos >= (int64_t)committed->n);
    /* Search finds the last reported video's vectors (index replayed or rebuilt). */
    if (committed->n) {
        float q[DIM];
        int64_t seed = committed->seeds[committed->n - 1];
        video_vector(seed, 5, q);
        st_hit hit;
        int n;
        T_OK(st_search(s, MODEL, "vision", q, DIM, 1, NULL, 0, &hit, &n, &err), &err);
        T_EQ_INT(n, 1);
        T_NEAR(hit.score, 1.0, 1e-4);
        st_segment seg;
        T_OK(st_segment_get(s, hit.segment_id, &seg, &err), &err);
        T_EQ_INT(seg.video_id, committed->ids[committed->n - 1]);
        T_EQ_INT(seg.start_ms, 5 * 2000);
        st_segment_clear(&seg);
    }
    st_close(s);
}

static void test_kill_during_writes_and_saves(void)
{
    char *dir = t_tempdir("st-crash");
    vx_err err = {0};
    /* A base of 20k vectors, so each index save writes a few MB and takes a while. */
    st_store *s = t_open(dir, ST_WRITE);
    int64_t lib;
    T_OK(st_library_add(s, "lib", "/media", &lib, &err), &err);
    int64_t seed = 1;
    for (; seed <= 100; seed++)
        T_ASSERT(write_video(s, lib, seed, &err) > 0);
    T_OK(st_flush(s, &err), &err);
    st_close(s);

    seen committed = {0};
    uint64_t rng = 12345;
    int killed_in_save = 0;
    int64_t started = vx_now_ns();
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        T_ASSERT(pipe(fds) == 0);
        pid_t child = fork();
        T_ASSERT(child >= 0);
        if (child == 0) {
            /* exec a fresh image: after the parent ran FAISS, libgomp's thread pool does not
             * survive fork() and the child's first parallel region would hang. */
            close(fds[0]);
            char fd_text[16], seed_text[32];
            snprintf(fd_text, sizeof fd_text, "%d", fds[1]);
            snprintf(seed_text, sizeof seed_text, "%lld", (long long)seed);
            execl(self_path, self_path, "--child", dir, fd_text, seed_text, (char *)NULL);
            _exit(7);
        }
        close(fds[1]);
        /* Wait for the child's first commit, then kill it at a random point. */
        int64_t report[2];
        ssize_t got = read(fds[0], report, sizeof report);
        if (got == sizeof report) {
            seen_add(&committed, report[0], report[1]);
            struct timespec delay = {0, (long)(t_rand(&rng) % 150) * 1000000L};
            nanosleep(&delay, NULL);
        }
        kill(child, SIGKILL);
        int status;
        T_ASSERT(waitpid(child, &status, 0) == child);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            T_FAIL("round %d: the child exited by itself (status %d)", round, status);
        while (read(fds[0], report, sizeof report) == sizeof report)
            seen_add(&committed, report[0], report[1]);
        close(fds[0]);
        if (committed.n) seed = committed.seeds[committed.n - 1] + 1;
        seed += 1; /* a video committed but not reported keeps its seed: skip past it */
        killed_in_save += leftover_temps(dir) > 0;
        check_after_crash(dir, &committed, round);
    }
    fprintf(stderr,
            "%d rounds in %.1f s: %zu videos reported committed, %d kills during an"
            " index save\n",
            ROUNDS, (vx_now_ns() - started) / 1e9, committed.n, killed_in_save);
    /* Finally a clean save: verify finds nothing at all. */
    s = t_open(dir, ST_WRITE);
    T_OK(st_flush(s, &err), &err);
    st_verify_report rep;
    T_OK(st_verify(s, 0, &rep, &err), &err);
    T_EQ_INT(rep.count, 0);
    st_verify_report_free(&rep);
    st_close(s);
    free(committed.ids);
    free(committed.seeds);
    t_rmtree(dir);
    free(dir);
}

static void test_kill_during_index_saves(void)
{
    char *dir = t_tempdir("st-crash-save");
    vx_err err = {0};
    st_store *s = t_open(dir, ST_WRITE);
    int64_t lib;
    T_OK(st_library_add(s, "lib", "/media", &lib, &err), &err);
    for (int64_t seed = 1; seed <= 50; seed++)
        T_ASSERT(write_video(s, lib, seed, &err) > 0);
    T_OK(st_flush(s, &err), &err);
    st_close(s);
    uint64_t rng = 777;
    int in_save = 0;
    long saves = 0;
    for (int round = 0; round < 10; round++) {
        int fds[2];
        T_ASSERT(pipe(fds) == 0);
        pid_t child = fork();
        T_ASSERT(child >= 0);
        if (child == 0) {
            close(fds[0]);
            char fd_text[16];
            snprintf(fd_text, sizeof fd_text, "%d", fds[1]);
            execl(self_path, self_path, "--saver", dir, fd_text, (char *)NULL);
            _exit(7);
        }
        close(fds[1]);
        int64_t one;
        if (read(fds[0], &one, sizeof one) == sizeof one) {
            saves++;
            struct timespec delay = {0, (long)(t_rand(&rng) % 100) * 1000000L};
            nanosleep(&delay, NULL);
        }
        kill(child, SIGKILL);
        T_ASSERT(waitpid(child, NULL, 0) == child);
        while (read(fds[0], &one, sizeof one) == sizeof one)
            saves++;
        close(fds[0]);
        in_save += leftover_temps(dir) > 0;
        /* The published file is whole and current: no finding at all. */
        s = t_open(dir, ST_WRITE);
        st_verify_report rep;
        T_OK(st_verify(s, 0, &rep, &err), &err);
        for (size_t i = 0; i < rep.count; i++)
            T_FAIL("round %d: %s: %s", round, st_problem_kind_name(rep.problems[i].kind),
                   rep.problems[i].what);
        st_verify_report_free(&rep);
        st_close(s);
    }
    fprintf(stderr, "10 rounds: %ld saves completed, %d kills inside a save\n", saves, in_save);
    T_ASSERT(in_save >= 1);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--child")) {
        child_main(argv[2], atoi(argv[3]), atoll(argv[4]));
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--saver")) {
        saver_main(argv[2], atoi(argv[3]));
        return 0;
    }
    self_path = "/proc/self/exe";
    static const t_case cases[] = {
        {"kill_during_writes_and_saves", test_kill_during_writes_and_saves},
        {"kill_during_index_saves", test_kill_during_index_saves},
    };
    return T_RUN(argc, argv, cases);
}
