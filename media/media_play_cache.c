/* The playback cache: one background job per source that needs a remux or transcode, entries
 * named after the source's identity, LRU eviction under a size limit (protocol in media.h).
 *
 * Lock order: one mutex per cache (mu) guards the entry list, the counters and the job slots;
 * production runs without it. A job thread owns its entry's job fields until it sets done. */
#define _GNU_SOURCE
#include "media_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Sources remembered (plan, entry name, job state); the oldest idle ones are forgotten. */
#define PLAY_MEMO_MAX 1024
/* Jobs producing or queued at once; more requests get VX_EBUSY. */
#define PLAY_QUEUE_MAX 32

typedef enum entry_state { ENTRY_IDLE, ENTRY_RUNNING, ENTRY_DONE, ENTRY_FAILED } entry_state;

typedef struct play_entry {
    struct play_entry *next;
    media_play_cache *cache;
    char *src; /* source path */
    int64_t size_bytes, mtime_ns;
    media_play_plan plan;
    char *dst; /* cache entry path; NULL when AS_IS */
    entry_state state;
    vx_err job_err; /* the failure, when FAILED */
    volatile int stop;
    volatile double progress;
    int64_t started_ns, used_ns;
} play_entry;

struct media_play_cache {
    char *dir;
    media_play_cache_options opts;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a job finished, a slot freed, or closing */
    play_entry *entries;
    int memo_count;
    int threads;   /* job threads alive */
    int producing; /* jobs holding a slot */
    int closing;
    media_play_stats stats;
};

media_play_cache_options media_play_cache_defaults(void)
{
    media_play_cache_options o = {
        .limit_bytes = 10LL << 30, .max_jobs = 1, .job_timeout_ms = 2LL * 3600 * 1000};
    return o;
}

static int is_entry_name(const char *name)
{
    if (name[0] == '.') return 0;
    size_t n = strlen(name);
    return (n > 4 && strcmp(name + n - 4, ".mp4") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".webm") == 0);
}

/* Sum of the entries' sizes; with evict, removes the least recently used ones (never keep)
 * until the sum fits the limit. Called with mu held. */
static int64_t scan_and_evict(media_play_cache *c, const char *keep, int evict)
{
    DIR *d = opendir(c->dir);
    if (!d) return 0;
    typedef struct item {
        char name[256];
        int64_t size, mtime_ns;
    } item;
    item *items = NULL;
    size_t count = 0, cap = 0;
    int64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_entry_name(de->d_name) || strlen(de->d_name) >= sizeof items->name) continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode)) continue;
        total += sb.st_size;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            item *grown = realloc(items, ncap * sizeof *items);
            if (!grown) break; /* evict what we listed so far */
            items = grown;
            cap = ncap;
        }
        snprintf(items[count].name, sizeof items[count].name, "%s", de->d_name);
        items[count].size = sb.st_size;
        items[count].mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        count++;
    }
    while (evict && total > c->opts.limit_bytes) {
        size_t oldest = count;
        for (size_t i = 0; i < count; i++) {
            if (items[i].size < 0 || (keep && strcmp(items[i].name, keep) == 0)) continue;
            if (oldest == count || items[i].mtime_ns < items[oldest].mtime_ns) oldest = i;
        }
        if (oldest == count) break;
        if (unlinkat(dirfd(d), items[oldest].name, 0) == 0) {
            total -= items[oldest].size;
            c->stats.evicted++;
            vx_log(VX_LOG_INFO, "playback cache: evicted %s (%lld bytes)", items[oldest].name,
                   (long long)items[oldest].size);
        }
        items[oldest].size = -1;
    }
    closedir(d);
    free(items);
    return total;
}

/* Removes temp files of processes that are gone (a crash mid-production). */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = 0;
        if (sscanf(de->d_name, ".tmp-%ld-", &pid) != 1 || pid <= 0) continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;
        unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

vx_status media_play_cache_open(const char *dir, const media_play_cache_options *opts,
                                media_play_cache **out, vx_err *err)
{
    *out = NULL;
    media_play_cache_options o = opts ? *opts : media_play_cache_defaults();
    if (o.limit_bytes <= 0 || o.max_jobs < 1 || o.job_timeout_ms < 0)
        return vx_fail(err, VX_EINVAL,
                       "playback cache: limit_bytes and max_jobs must be positive, "
                       "job_timeout_ms not negative");
    /* Entry paths (dir + ~64 bytes of name) must fit media_play_result.path. */
    if (strlen(dir) > 3900)
        return vx_fail(err, VX_EINVAL, "playback cache: folder path too long (%zu bytes)",
                       strlen(dir));
    vx_status st = vx_mkdirs(dir, err);
    if (st) return st;
    media_play_cache *c = calloc(1, sizeof *c);
    if (!c) return vx_fail(err, VX_ENOMEM, "out of memory for the playback cache");
    c->dir = vx_strdup(dir, err);
    if (!c->dir) {
        free(c);
        return VX_ENOMEM;
    }
    c->opts = o;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->mu, NULL);
    remove_stale_temps(dir);
    c->stats.size_bytes = scan_and_evict(c, NULL, 0);
    *out = c;
    return VX_OK;
}

static void entry_free(play_entry *e)
{
    if (!e) return;
    free(e->src);
    free(e->dst);
    free(e);
}

void media_play_cache_close(media_play_cache *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    for (play_entry *e = c->entries; e; e = e->next)
        if (e->state == ENTRY_RUNNING) __atomic_store_n(&e->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&c->changed);
    while (c->threads > 0)
        pthread_cond_wait(&c->changed, &c->mu);
    pthread_mutex_unlock(&c->mu);
    for (play_entry *e = c->entries, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->changed);
    free(c->dir);
    free(c);
}

static void *job_main(void *arg)
{
    play_entry *e = arg;
    media_play_cache *c = e->cache;
    pthread_mutex_lock(&c->mu);
    while (c->producing >= c->opts.max_jobs && !c->closing && !e->stop)
        pthread_cond_wait(&c->changed, &c->mu);
    int run = !c->closing && !e->stop;
    if (run) c->producing++;
    e->started_ns = vx_now_ns();
    pthread_mutex_unlock(&c->mu);

    vx_err err = {0};
    vx_status st = VX_EINTERRUPTED;
    if (run) {
        vx_log(VX_LOG_INFO, "playback: %s %s -> %s (%s)",
               e->plan.action == MEDIA_PLAY_REMUX ? "remuxing" : "transcoding", e->src, e->dst,
               e->plan.reason);
        st = media_play_produce(e->src, &e->plan, e->dst, &e->stop, c->opts.job_timeout_ms,
                                c->opts.limit_bytes, &e->progress, &err);
    } else {
        vx_fail(&err, VX_EINTERRUPTED, "%s: stopped before it started", e->src);
    }

    pthread_mutex_lock(&c->mu);
    if (run) c->producing--;
    if (st == VX_OK) {
        const char *base = strrchr(e->dst, '/');
        c->stats.produced++;
        c->stats.size_bytes = scan_and_evict(c, base ? base + 1 : e->dst, 1);
        e->state = ENTRY_DONE;
    } else {
        vx_log(VX_LOG_WARN, "playback: %s", err.msg);
        c->stats.failed++;
        e->job_err = err;
        /* A stop is not the file's fault: the next request tries again. */
        e->state = st == VX_EINTERRUPTED ? ENTRY_IDLE : ENTRY_FAILED;
    }
    c->threads--;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Forgets the oldest idle, done or failed entries beyond PLAY_MEMO_MAX. Called with mu held. */
static void trim_memo(media_play_cache *c)
{
    while (c->memo_count > PLAY_MEMO_MAX) {
        play_entry **oldest = NULL;
        for (play_entry **pe = &c->entries; *pe; pe = &(*pe)->next)
            if ((*pe)->state != ENTRY_RUNNING && (!oldest || (*pe)->used_ns < (*oldest)->used_ns))
                oldest = pe;
        if (!oldest) return;
        play_entry *e = *oldest;
        *oldest = e->next;
        entry_free(e);
        c->memo_count--;
    }
}

/* Probes src and builds its entry (plan, cache path). Without the lock: it reads the file. */
static vx_status make_entry(media_play_cache *c, const char *src, const struct stat *sb,
                            play_entry **out, vx_err *err)
{
    media_reader *r = NULL;
    vx_status st = media_open_for_play(src, &r, err);
    if (st) return st;
    play_entry *e = calloc(1, sizeof *e);
    if (!e) {
        media_close(r);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    e->cache = c;
    e->size_bytes = sb->st_size;
    e->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    st = media_play_plan_for(media_get_info(r), src, &e->plan, err);
    media_close(r);
    if (st == VX_OK) e->src = vx_strdup(src, err);
    if (st == VX_OK && !e->src) st = VX_ENOMEM;
    if (st == VX_OK && e->plan.action != MEDIA_PLAY_AS_IS) {
        char hash[MEDIA_CONTENT_HASH_HEX];
        st = media_content_hash(src, NULL, hash, err);
        if (st == VX_OK) {
            e->dst = vx_asprintf(err, "%s/%.16s-%lld-%lld.%s", c->dir, hash,
                                 (long long)e->size_bytes, (long long)e->mtime_ns, e->plan.ext);
            if (!e->dst) st = VX_ENOMEM;
        }
    }
    if (st) {
        entry_free(e);
        return st;
    }
    *out = e;
    return VX_OK;
}

static void fill_pending(const play_entry *e, media_play_result *out)
{
    out->state = MEDIA_PLAY_PENDING;
    double p;
    __atomic_load(&e->progress, &p, __ATOMIC_RELAXED); /* written by the job thread */
    out->progress = p;
    int retry = 2;
    if (e->state == ENTRY_RUNNING && e->started_ns && p > 0.02) {
        double elapsed_s = (double)(vx_now_ns() - e->started_ns) / 1e9;
        double left = elapsed_s * (1 - p) / p;
        retry = left < 1 ? 1 : left > 60 ? 60 : (int)(left + 0.5);
    }
    out->retry_after_s = retry;
}

vx_status media_play_get(media_play_cache *c, const char *src, int64_t wait_ms,
                         media_play_result *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    if (!c || !src) return vx_fail(err, VX_EINVAL, "media_play_get: NULL argument");
    if (strlen(src) >= sizeof out->path)
        return vx_fail(err, VX_EINVAL, "media_play_get: path longer than %zu bytes",
                       sizeof out->path - 1);
    struct stat sb;
    if (stat(src, &sb) != 0)
        return vx_fail(err, errno == ENOENT ? VX_ENOTFOUND : VX_EIO, "%s: %s", src,
                       strerror(errno));
    if (!S_ISREG(sb.st_mode)) return vx_fail(err, VX_EINVAL, "%s: not a regular file", src);
    int64_t mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;

    pthread_mutex_lock(&c->mu);
    play_entry *e = NULL;
    for (play_entry *it = c->entries; it; it = it->next)
        if (strcmp(it->src, src) == 0 && it->size_bytes == sb.st_size && it->mtime_ns == mtime_ns &&
            (!e || it->used_ns > e->used_ns))
            e = it;
    if (!e) {
        /* Probing reads the file: do it unlocked, then take the first one inserted. */
        pthread_mutex_unlock(&c->mu);
        play_entry *made = NULL;
        vx_status st = make_entry(c, src, &sb, &made, err);
        if (st) return st;
        pthread_mutex_lock(&c->mu);
        for (play_entry *it = c->entries; it && !e; it = it->next)
            if (strcmp(it->src, src) == 0 && it->size_bytes == sb.st_size &&
                it->mtime_ns == mtime_ns)
                e = it;
        if (e) {
            entry_free(made);
        } else {
            e = made;
            e->next = c->entries;
            c->entries = e;
            c->memo_count++;
        }
    }
    e->used_ns = vx_now_ns();
    vx_status st = VX_OK;
    out->action = e->plan.action;
    snprintf(out->mime, sizeof out->mime, "%s", e->plan.mime);
    if (e->plan.action == MEDIA_PLAY_AS_IS) {
        out->state = MEDIA_PLAY_READY;
        snprintf(out->path, sizeof out->path, "%s", src);
        goto done;
    }
    int64_t deadline_ns = vx_now_ns() + (wait_ms > 0 ? wait_ms : 0) * 1000000;
    for (;;) {
        if (e->state == ENTRY_FAILED) {
            st = vx_fail(err, e->job_err.status, "%s", e->job_err.msg);
            goto done;
        }
        if (e->state != ENTRY_RUNNING && access(e->dst, F_OK) == 0) {
            /* Marks it used for the LRU; it may come from an earlier run of the server. */
            utimensat(AT_FDCWD, e->dst, NULL, 0);
            if (e->state != ENTRY_DONE) e->state = ENTRY_DONE;
            c->stats.hits++;
            out->state = MEDIA_PLAY_READY;
            snprintf(out->path, sizeof out->path, "%s", e->dst);
            goto done;
        }
        if (e->state != ENTRY_RUNNING) { /* IDLE, or DONE but evicted since */
            if (c->closing) {
                st = vx_fail(err, VX_EINTERRUPTED, "playback cache is closing");
                goto done;
            }
            if (c->threads >= PLAY_QUEUE_MAX) {
                st = vx_fail(err, VX_EBUSY, "%s: %d videos are being prepared; try again later",
                             src, c->threads);
                goto done;
            }
            e->state = ENTRY_RUNNING;
            e->stop = 0;
            e->progress = 0;
            e->started_ns = 0;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            pthread_t tid;
            int rc = pthread_create(&tid, &attr, job_main, e);
            pthread_attr_destroy(&attr);
            if (rc != 0) {
                e->state = ENTRY_IDLE;
                st = vx_fail(err, VX_ENOMEM, "%s: cannot start a playback job: %s", src,
                             strerror(rc));
                goto done;
            }
            c->threads++;
        }
        int64_t now = vx_now_ns();
        if (now >= deadline_ns) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = deadline_ns - now;
        ts.tv_sec += left / 1000000000;
        ts.tv_nsec += left % 1000000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->changed, &c->mu, &ts);
    }
    fill_pending(e, out);
done:
    trim_memo(c);
    pthread_mutex_unlock(&c->mu);
    return st;
}

void media_play_cache_stats(media_play_cache *c, media_play_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->running = c->threads;
    pthread_mutex_unlock(&c->mu);
}
