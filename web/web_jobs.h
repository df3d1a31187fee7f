/* web/web_jobs.h — private to web/: the reindex jobs of `vidx serve` (POST /api/reindex,
 * GET /api/jobs, --reindex-every). One background thread runs queued jobs one at a time; each
 * job opens the data directory as the writer (ST_WRITE) for its run only, so a `vidx index`
 * started by hand between jobs is not locked out, and one holding the lock fails the job with
 * the holder named. A bounded history of jobs is kept in memory (most recent first).
 *
 * Thread safety: every function may be called from any thread (one mutex inside; the job runs
 * without it held and publishes progress under it). Ownership: web_jobs_start's object is freed
 * by web_jobs_stop; JSON returned is the caller's (cJSON_Delete). */
#ifndef WEB_JOBS_H
#define WEB_JOBS_H

#include "vx.h"

#include <cjson/cJSON.h>
#include <stdint.h>

typedef struct web_jobs web_jobs;

typedef struct web_jobs_options {
    const char *data_dir;  /* copied */
    const char *model_dir; /* the model jobs embed with; NULL: none (copied) */
    int64_t every_ms;      /* > 0: queue "all libraries" this often, the first at start */
} web_jobs_options;

/* Jobs kept in the history (finished ones beyond this are forgotten, oldest first), and jobs
 * waiting at most (a further request is VX_ELIMIT). */
#define WEB_JOBS_HISTORY 64
#define WEB_JOBS_QUEUED_MAX 16

vx_status web_jobs_start(const web_jobs_options *o, web_jobs **out, vx_err *err);
/* Asks the running job to stop after the video in flight; returns at once. */
void web_jobs_request_stop(web_jobs *j);
/* Requests the stop, joins the thread (the job in flight ends "interrupted", queued ones too)
 * and frees. NULL is fine. */
void web_jobs_stop(web_jobs *j);

/* Queues a reindex of one library (its stored root and options) or, with library NULL, of
 * every library. A job for the same target that is still queued is returned instead of a new
 * one (*reused = 1). VX_ELIMIT when WEB_JOBS_QUEUED_MAX jobs wait. */
vx_status web_jobs_queue(web_jobs *j, const char *library, int64_t *job_id, int *reused,
                         vx_err *err);

/* {"id","state"} of job_id, or NULL when it is not in the history. */
cJSON *web_jobs_job_brief(web_jobs *j, int64_t job_id);
/* The history as an array of job objects (docs/api.md, GET /api/jobs), most recent first. */
cJSON *web_jobs_list_json(web_jobs *j);
/* The most recent finished job that covered library (by name, or an "all libraries" job),
 * as a job object; NULL when none. */
cJSON *web_jobs_last_run_json(web_jobs *j, const char *library);
/* Appends Prometheus text: jobs by state and the progress of the running job. */
void web_jobs_metrics(web_jobs *j, vx_buf *b, vx_err *err);

#endif
