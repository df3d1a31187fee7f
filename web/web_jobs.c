/* web/web_jobs.c — reindex jobs of `vidx serve`: a queue and a bounded history under one mutex,
 * one thread that runs idx_run for each queued job with its own writer store, and the
 * --reindex-every timer on the same thread (it queues "all libraries" when due).
 *
 * States: queued -> running -> done | failed | interrupted; queued -> interrupted when the
 * server stops first. The job thread is the only one that moves a job out of "queued". */
#define _GNU_SOURCE
#include "web_jobs.h"

#include "idx.h"
#include "st.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum job_state {
    JOB_QUEUED = 0,
    JOB_RUNNING,
    JOB_DONE,
    JOB_FAILED,
    JOB_INTERRUPTED,
    JOB_STATE_COUNT
} job_state;

static const char *const job_state_names[JOB_STATE_COUNT] = {"queued", "running", "done", "failed",
                                                             "interrupted"};

typedef struct job {
    int64_t id;
    char *library; /* NULL: every library */
    job_state state;
    int64_t created_ms, started_ms, finished_ms; /* 0: not yet */
    /* progress: the finished libraries of this job plus the one running */
    int64_t files_total, files_done, segments_done, videos_failed;
    char message[VX_ERR_MSG_MAX];
} job;

struct web_jobs {
    char *data_dir;
    char *model_dir;
    int64_t every_ms;
    pthread_t thread;
    int thread_started;
    /* lock order: lock only; never held while idx_run runs (progress takes it briefly) */
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* CLOCK_MONOTONIC */
    job jobs[WEB_JOBS_HISTORY]; /* ordered by id, oldest first */
    int count;
    int64_t next_id;
    volatile sig_atomic_t stop; /* idx_options.stop reads it between videos */
    /* progress of the library being indexed, added to the job's finished libraries */
    int64_t base_total, base_done, base_segments, base_failed;
    uint64_t finished_by_state[JOB_STATE_COUNT]; /* since start, for /metrics */
};

static int64_t mono_ms(void)
{
    return vx_now_ns() / 1000000;
}

/* Frees the oldest finished job to make room; 0 when every slot holds a live job. */
static int make_room(web_jobs *j)
{
    if (j->count < WEB_JOBS_HISTORY) return 1;
    for (int i = 0; i < j->count; i++) {
        if (j->jobs[i].state == JOB_QUEUED || j->jobs[i].state == JOB_RUNNING) continue;
        free(j->jobs[i].library);
        memmove(&j->jobs[i], &j->jobs[i + 1], (size_t)(j->count - i - 1) * sizeof(job));
        j->count--;
        return 1;
    }
    return 0;
}

static int same_target(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Caller holds the lock. */
static vx_status queue_locked(web_jobs *j, const char *library, int64_t *job_id, int *reused,
                              vx_err *err)
{
    int queued = 0;
    for (int i = 0; i < j->count; i++) {
        if (j->jobs[i].state != JOB_QUEUED) continue;
        queued++;
        if (same_target(j->jobs[i].library, library)) {
            *job_id = j->jobs[i].id;
            *reused = 1;
            return VX_OK;
        }
    }
    if (queued >= WEB_JOBS_QUEUED_MAX || !make_room(j))
        return vx_fail(err, VX_ELIMIT, "%d reindex jobs are waiting already; try again later",
                       queued);
    job *x = &j->jobs[j->count];
    memset(x, 0, sizeof *x);
    if (library && !(x->library = strdup(library))) return vx_fail(err, VX_ENOMEM, "out of memory");
    x->id = ++j->next_id;
    x->state = JOB_QUEUED;
    x->created_ms = vx_wall_ms();
    j->count++;
    *job_id = x->id;
    *reused = 0;
    pthread_cond_signal(&j->wake);
    return VX_OK;
}

vx_status web_jobs_queue(web_jobs *j, const char *library, int64_t *job_id, int *reused,
                         vx_err *err)
{
    pthread_mutex_lock(&j->lock);
    vx_status st = j->stop ? vx_fail(err, VX_EINTERRUPTED, "the server is stopping")
                           : queue_locked(j, library, job_id, reused, err);
    pthread_mutex_unlock(&j->lock);
    return st;
}

static job *find_locked(web_jobs *j, int64_t id)
{
    for (int i = 0; i < j->count; i++)
        if (j->jobs[i].id == id) return &j->jobs[i];
    return NULL;
}

/* ---- running one job ---------------------------------------------------------------------- */

typedef struct run_ctx {
    web_jobs *j;
    int64_t job_id;
} run_ctx;

static void on_progress(void *ctx, const idx_progress *p)
{
    run_ctx *rc = ctx;
    web_jobs *j = rc->j;
    pthread_mutex_lock(&j->lock);
    job *x = find_locked(j, rc->job_id);
    if (x) {
        x->files_total = j->base_total + p->files_total;
        x->files_done = j->base_done + p->files_done;
        x->segments_done = j->base_segments + p->segments_done;
        x->videos_failed = j->base_failed + p->videos_failed;
    }
    pthread_mutex_unlock(&j->lock);
}

/* Runs job id (its library copied into target, NULL: all). Returns the final state and fills
 * msg. */
static job_state run_job(web_jobs *j, int64_t id, const char *target, char *msg, size_t msg_size)
{
    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_WRITE;
    if (st_open(j->data_dir, &so, &s, &err)) {
        snprintf(msg, msg_size, "%s", err.msg);
        return JOB_FAILED;
    }
    char **names = NULL;
    size_t n = 0;
    job_state state = JOB_DONE;
    if (target) {
        st_library lib;
        if (st_library_find(s, target, &lib, &err)) {
            snprintf(msg, msg_size, "%s",
                     err.status == VX_ENOTFOUND ? "no library of that name (removed?)" : err.msg);
            st_close(s);
            return JOB_FAILED;
        }
        st_library_clear(&lib);
        names = calloc(1, sizeof *names);
        if (names && (names[0] = strdup(target))) n = 1;
    } else {
        st_library *libs = NULL;
        size_t nl = 0;
        if (st_library_list(s, &libs, &nl, &err)) {
            snprintf(msg, msg_size, "%s", err.msg);
            st_close(s);
            return JOB_FAILED;
        }
        names = calloc(nl ? nl : 1, sizeof *names);
        for (size_t i = 0; names && i < nl; i++)
            if ((names[n] = strdup(libs[i].name))) n++;
        st_libraries_free(libs, nl);
    }
    if (!names) {
        snprintf(msg, msg_size, "out of memory");
        st_close(s);
        return JOB_FAILED;
    }
    int64_t indexed = 0, deleted = 0, failed = 0;
    run_ctx rc = {j, id};
    size_t done_libs = 0;
    for (size_t i = 0; i < n && state == JOB_DONE; i++) {
        /* the library's stored root and options, as `vidx index --library NAME` would run */
        idx_library_config cfg;
        memset(&cfg, 0, sizeof cfg);
        if (idx_library_options(s, names[i], &cfg, &err)) {
            idx_library_config_free(&cfg);
            state = JOB_FAILED;
            snprintf(msg, msg_size, "library '%.100s': %.380s", names[i], err.msg);
            break;
        }
        idx_options o = cfg.options;
        o.library = names[i];
        o.model_dir = j->model_dir ? j->model_dir : cfg.model_dir; /* the server's model */
        o.progress = 0;
        o.stop = &j->stop;
        o.on_progress = on_progress;
        o.progress_ctx = &rc;
        idx_summary sum;
        memset(&sum, 0, sizeof sum);
        vx_status st = idx_run(s, &o, &sum, &err);
        pthread_mutex_lock(&j->lock);
        j->base_total += sum.files;
        j->base_done += sum.files;
        j->base_segments += sum.segments;
        j->base_failed += sum.failed;
        job *x = find_locked(j, id);
        if (x) { /* the summary is the final word, also when no progress was reported */
            x->files_total = j->base_total;
            x->files_done = st == VX_OK ? j->base_done : x->files_done;
            x->segments_done = j->base_segments;
            x->videos_failed = j->base_failed;
        }
        pthread_mutex_unlock(&j->lock);
        indexed += sum.indexed;
        deleted += sum.deleted;
        failed += sum.failed;
        idx_summary_free(&sum);
        idx_library_config_free(&cfg);
        if (st == VX_EINTERRUPTED) {
            state = JOB_INTERRUPTED;
            snprintf(msg, msg_size, "stopped in library '%.100s' (the server is stopping)",
                     names[i]);
        } else if (st) {
            state = JOB_FAILED;
            snprintf(msg, msg_size, "library '%.100s': %.380s", names[i], err.msg);
        } else {
            done_libs++;
        }
    }
    if (state == JOB_DONE)
        snprintf(msg, msg_size,
                 "%zu librar%s: %" PRId64 " videos indexed, %" PRId64 " deleted, %" PRId64
                 " failed",
                 done_libs, done_libs == 1 ? "y" : "ies", indexed, deleted, failed);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    st_close(s);
    return state;
}

static void *job_thread(void *arg)
{
    web_jobs *j = arg;
    int64_t next_due_ms = mono_ms(); /* --reindex-every: the first one at start */
    pthread_mutex_lock(&j->lock);
    while (!j->stop) {
        job *x = NULL;
        for (int i = 0; i < j->count && !x; i++)
            if (j->jobs[i].state == JOB_QUEUED) x = &j->jobs[i];
        if (x) {
            int64_t id = x->id;
            char *target = x->library ? strdup(x->library) : NULL;
            int oom = x->library && !target; /* x may move once the lock is dropped */
            x->state = JOB_RUNNING;
            x->started_ms = vx_wall_ms();
            j->base_total = j->base_done = j->base_segments = j->base_failed = 0;
            pthread_mutex_unlock(&j->lock);
            char msg[VX_ERR_MSG_MAX];
            job_state end;
            if (oom) {
                snprintf(msg, sizeof msg, "out of memory");
                end = JOB_FAILED;
            } else {
                end = run_job(j, id, target, msg, sizeof msg);
            }
            free(target);
            if (end == JOB_FAILED) vx_log(VX_LOG_WARN, "reindex job %" PRId64 ": %s", id, msg);
            pthread_mutex_lock(&j->lock);
            if ((x = find_locked(j, id))) { /* running jobs are never evicted */
                x->state = end;
                x->finished_ms = vx_wall_ms();
                snprintf(x->message, sizeof x->message, "%s", msg);
            }
            j->finished_by_state[end]++;
            continue;
        }
        if (j->every_ms > 0 && mono_ms() >= next_due_ms) {
            int64_t id;
            int reused;
            vx_err err = {0};
            if (queue_locked(j, NULL, &id, &reused, &err))
                vx_log(VX_LOG_WARN, "--reindex-every: %s", err.msg);
            next_due_ms = mono_ms() + j->every_ms;
            continue;
        }
        if (j->every_ms > 0) {
            int64_t wait_ms = next_due_ms - mono_ms();
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait_ms / 1000);
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&j->wake, &j->lock, &ts);
        } else {
            pthread_cond_wait(&j->wake, &j->lock);
        }
    }
    for (int i = 0; i < j->count; i++)
        if (j->jobs[i].state == JOB_QUEUED) {
            j->jobs[i].state = JOB_INTERRUPTED;
            j->jobs[i].finished_ms = vx_wall_ms();
            snprintf(j->jobs[i].message, sizeof j->jobs[i].message,
                     "the server stopped before this job started");
        }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static void jobs_free(web_jobs *j)
{
    for (int i = 0; i < j->count; i++)
        free(j->jobs[i].library);
    free(j->data_dir);
    free(j->model_dir);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->wake);
    free(j);
}

vx_status web_jobs_start(const web_jobs_options *o, web_jobs **out, vx_err *err)
{
    *out = NULL;
    web_jobs *j = calloc(1, sizeof *j);
    if (!j) return vx_fail(err, VX_ENOMEM, "out of memory");
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &ca);
    pthread_condattr_destroy(&ca);
    j->every_ms = o->every_ms;
    j->data_dir = strdup(o->data_dir);
    if (o->model_dir && *o->model_dir) j->model_dir = strdup(o->model_dir);
    if (!j->data_dir || (o->model_dir && *o->model_dir && !j->model_dir)) {
        jobs_free(j);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    int e = pthread_create(&j->thread, NULL, job_thread, j);
    if (e) {
        jobs_free(j);
        return vx_fail(err, VX_EIO, "cannot start the reindex thread: %s", strerror(e));
    }
    j->thread_started = 1;
    *out = j;
    return VX_OK;
}

void web_jobs_request_stop(web_jobs *j)
{
    if (!j) return;
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

void web_jobs_stop(web_jobs *j)
{
    if (!j) return;
    web_jobs_request_stop(j);
    if (j->thread_started) pthread_join(j->thread, NULL);
    jobs_free(j);
}

/* ---- views -------------------------------------------------------------------------------- */

static void add_ms(cJSON *o, const char *name, int64_t ms)
{
    if (ms)
        cJSON_AddNumberToObject(o, name, (double)ms);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *job_json(const job *x)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)x->id);
    if (x->library)
        cJSON_AddStringToObject(o, "library", x->library);
    else
        cJSON_AddNullToObject(o, "library");
    cJSON_AddStringToObject(o, "state", job_state_names[x->state]);
    add_ms(o, "created_ms", x->created_ms);
    add_ms(o, "started_ms", x->started_ms);
    add_ms(o, "finished_ms", x->finished_ms);
    cJSON_AddNumberToObject(o, "files_total", (double)x->files_total);
    cJSON_AddNumberToObject(o, "files_done", (double)x->files_done);
    cJSON_AddNumberToObject(o, "segments_done", (double)x->segments_done);
    cJSON_AddNumberToObject(o, "videos_failed", (double)x->videos_failed);
    /* catalog text (library names, paths in messages) may hold any bytes */
    if (x->message[0] && vx_utf8_valid(x->message, strlen(x->message)))
        cJSON_AddStringToObject(o, "message", x->message);
    else
        cJSON_AddNullToObject(o, "message");
    return o;
}

cJSON *web_jobs_job_brief(web_jobs *j, int64_t job_id)
{
    cJSON *o = NULL;
    pthread_mutex_lock(&j->lock);
    job *x = find_locked(j, job_id);
    if (x && (o = cJSON_CreateObject())) {
        cJSON_AddNumberToObject(o, "id", (double)x->id);
        cJSON_AddStringToObject(o, "state", job_state_names[x->state]);
    }
    pthread_mutex_unlock(&j->lock);
    return o;
}

cJSON *web_jobs_list_json(web_jobs *j)
{
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&j->lock);
    for (int i = j->count - 1; arr && i >= 0; i--)
        cJSON_AddItemToArray(arr, job_json(&j->jobs[i]));
    pthread_mutex_unlock(&j->lock);
    return arr;
}

cJSON *web_jobs_last_run_json(web_jobs *j, const char *library)
{
    cJSON *o = NULL;
    pthread_mutex_lock(&j->lock);
    for (int i = j->count - 1; i >= 0 && !o; i--) {
        const job *x = &j->jobs[i];
        if (x->state == JOB_QUEUED || x->state == JOB_RUNNING || !x->started_ms) continue;
        if (!x->library || (library && !strcmp(x->library, library))) o = job_json(x);
    }
    pthread_mutex_unlock(&j->lock);
    return o;
}

void web_jobs_metrics(web_jobs *j, vx_buf *b, vx_err *err)
{
    uint64_t by_state[JOB_STATE_COUNT];
    int64_t waiting = 0, running = 0, files_total = 0, files_done = 0, segments = 0, failed = 0;
    pthread_mutex_lock(&j->lock);
    memcpy(by_state, j->finished_by_state, sizeof by_state);
    for (int i = 0; i < j->count; i++) {
        const job *x = &j->jobs[i];
        if (x->state == JOB_QUEUED) waiting++;
        if (x->state != JOB_RUNNING) continue;
        running = 1;
        files_total = x->files_total;
        files_done = x->files_done;
        segments = x->segments_done;
        failed = x->videos_failed;
    }
    pthread_mutex_unlock(&j->lock);
    vx_buf_printf(b, err,
                  "# HELP vidx_reindex_jobs_finished_total Reindex jobs finished, by end state.\n"
                  "# TYPE vidx_reindex_jobs_finished_total counter\n");
    for (int s = JOB_DONE; s < JOB_STATE_COUNT; s++)
        vx_buf_printf(b, err, "vidx_reindex_jobs_finished_total{state=\"%s\"} %" PRIu64 "\n",
                      job_state_names[s], by_state[s]);
    vx_buf_printf(
        b, err,
        "# HELP vidx_reindex_jobs_queued Reindex jobs waiting.\n"
        "# TYPE vidx_reindex_jobs_queued gauge\nvidx_reindex_jobs_queued %" PRId64 "\n"
        "# HELP vidx_reindex_running 1 while a reindex job runs.\n"
        "# TYPE vidx_reindex_running gauge\nvidx_reindex_running %" PRId64 "\n"
        "# HELP vidx_reindex_files Files of the running job: found and settled.\n"
        "# TYPE vidx_reindex_files gauge\n"
        "vidx_reindex_files{kind=\"total\"} %" PRId64 "\n"
        "vidx_reindex_files{kind=\"done\"} %" PRId64 "\n"
        "# HELP vidx_reindex_segments_done Segments written by the running job.\n"
        "# TYPE vidx_reindex_segments_done gauge\nvidx_reindex_segments_done %" PRId64 "\n"
        "# HELP vidx_reindex_videos_failed Videos failed in the running job.\n"
        "# TYPE vidx_reindex_videos_failed gauge\nvidx_reindex_videos_failed %" PRId64 "\n",
        waiting, running, files_total, files_done, segments, failed);
}
