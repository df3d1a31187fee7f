/* common/ — the ground every vidx module stands on: status codes and caller-owned error
 * messages, logging, allocation helpers, durations and sizes, a progress reporter, a small
 * thread pool.
 *
 * Thread safety: every function here is safe to call from any thread; objects (vx_pool,
 * vx_progress) are used by the threads their owner hands them to, as documented below.
 * Nothing here keeps global mutable state: the log threshold is read from the environment. */
#ifndef VX_H
#define VX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and error ------------------------------------------------------------------- */

/* One enum for the whole project (as curl's CURLcode). vx_strerror() maps each in a switch
 * without default: so the compiler flags a code that has no text. */
typedef enum vx_status {
    VX_OK = 0,
    VX_EINVAL,       /* a caller's argument or a user's input is invalid */
    VX_ENOMEM,       /* an allocation failed */
    VX_EIO,          /* reading or writing a file failed */
    VX_ENOTFOUND,    /* a named thing (file, row, tensor, id) does not exist */
    VX_ECORRUPT,     /* stored data is damaged or inconsistent */
    VX_EFORMAT,      /* a file or message is not in the expected format */
    VX_EBUSY,        /* a lock is held by someone else */
    VX_EUNSUPPORTED, /* valid, but not something vidx can do */
    VX_EDB,          /* the SQLite catalog reported an error */
    VX_EINDEX,       /* FAISS reported an error */
    VX_EINTERRUPTED, /* stopped on request (signal) */
    VX_ELIMIT,       /* a size or time limit was exceeded */
    VX_ESTALE,       /* derived data no longer matches its source */
    VX_STATUS_COUNT
} vx_status;

#define VX_ERR_MSG_MAX 512

/* A caller-owned error: the callee writes a one-line message naming what failed. The message
 * lives as long as the struct; a later failure overwrites it. */
typedef struct vx_err {
    vx_status status;
    char msg[VX_ERR_MSG_MAX];
} vx_err;

/* Short text for a status ("invalid argument"); never NULL. */
const char *vx_strerror(vx_status status);

/* Fills err (when not NULL) with status and a printf-style message, and returns status, so a
 * failing path reads `return vx_fail(err, VX_EIO, "cannot open %s: %s", path, strerror(e));`. */
vx_status vx_fail(vx_err *err, vx_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "context: " in front of err's message (keeps status); returns the status. */
vx_status vx_err_prefix(vx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets err to VX_OK with an empty message. */
void vx_err_clear(vx_err *err);

/* ---- logging ---------------------------------------------------------------------------- */

typedef enum vx_log_level {
    VX_LOG_DEBUG = 0,
    VX_LOG_INFO = 1,
    VX_LOG_WARN = 2,
    VX_LOG_ERROR = 3,
    VX_LOG_QUIET = 4
} vx_log_level;

/* Logs one line to stderr as "vidx: level: message" when level is at or above the threshold
 * in VIDX_LOG (debug|info|warn|error|quiet; default info). Libraries log through this and
 * never print to stdout. Lines from different threads are not interleaved. */
void vx_log(vx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
vx_log_level vx_log_threshold(void);

/* ---- allocation ------------------------------------------------------------------------- */

/* Checked allocation helpers: on failure they fill err and return NULL. vx_calloc_array
 * rejects count*size overflow. Free with free(). */
void *vx_malloc(size_t size, vx_err *err);
void *vx_calloc_array(size_t count, size_t size, vx_err *err);
/* Aligned allocation (alignment a power of two, >= sizeof(void*)); free with free(). */
void *vx_aligned_alloc(size_t alignment, size_t size, vx_err *err);
/* strdup that fills err. */
char *vx_strdup(const char *s, vx_err *err);
/* printf into a new string (free with free()); NULL and err filled on failure. */
char *vx_asprintf(vx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable byte buffer; the struct is caller-owned, data is freed by vx_buf_free. */
typedef struct vx_buf {
    char *data;
    size_t len;
    size_t cap;
} vx_buf;
vx_status vx_buf_append(vx_buf *buf, const void *bytes, size_t len, vx_err *err);
vx_status vx_buf_printf(vx_buf *buf, vx_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vx_buf_free(vx_buf *buf);

/* ---- parsing of user-typed values ------------------------------------------------------- */

/* "90", "90s", "1500ms", "4m", "6h", "1h30m", "2d" -> milliseconds. Rejects negatives, empty
 * strings, unknown units and overflow with a message naming the text. */
vx_status vx_parse_duration_ms(const char *text, int64_t *out_ms, vx_err *err);
/* "512", "64k", "10MB", "2GiB" (k/M/G/T, base 1024) -> bytes. */
vx_status vx_parse_size_bytes(const char *text, int64_t *out_bytes, vx_err *err);
/* A whole number in [min, max]; what names the option in the message. */
vx_status vx_parse_int(const char *text, int64_t min, int64_t max, const char *what,
                       int64_t *out, vx_err *err);
/* Writes a duration like "1h02m03s" or "4.5s" into out (size >= 32). */
void vx_format_duration(int64_t ms, char *out, size_t out_size);
/* Writes a size like "1.5 MiB" into out (size >= 32). */
void vx_format_size(int64_t bytes, char *out, size_t out_size);

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Length (1-4) of the valid UTF-8 sequence at p (n > 0 bytes left), or 0 when invalid:
 * overlong forms, surrogates, code points above U+10FFFF and truncated sequences are invalid. */
int vx_utf8_len(const unsigned char *p, size_t n);
/* 1 when s[0..len) is valid UTF-8 with no NUL byte. */
int vx_utf8_valid(const char *s, size_t len);

/* ---- time and files --------------------------------------------------------------------- */

/* Monotonic clock in nanoseconds (for durations) and wall clock in milliseconds since the
 * epoch (for stored timestamps). */
int64_t vx_now_ns(void);
int64_t vx_wall_ms(void);

/* Writes bytes to path atomically: a temp file beside it, fsync, rename, fsync of the folder.
 * Readers see the old content or the new one, never a mix. */
vx_status vx_write_file_atomic(const char *path, const void *bytes, size_t len, vx_err *err);
/* fsyncs a directory so a rename in it is durable. */
vx_status vx_fsync_dir(const char *dir, vx_err *err);
/* Creates a directory and its parents (mode 0755); ok when it exists. */
vx_status vx_mkdirs(const char *path, vx_err *err);
/* Reads a whole file (at most max_bytes) into a new NUL-terminated buffer; free with free(). */
vx_status vx_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len,
                       vx_err *err);

/* ---- progress --------------------------------------------------------------------------- */

/* Progress of long work: on a terminal a bar redrawn at most 10 times a second on stderr;
 * otherwise a log line every interval (default 10 s). Owned by one thread at a time. */
typedef struct vx_progress vx_progress;
/* label: what is counted ("files"); total may be 0 when unknown. */
vx_progress *vx_progress_create(const char *label, int64_t total, vx_err *err);
/* Updates done (absolute) and an optional short status text, e.g. "12.3 clips/s". */
void vx_progress_update(vx_progress *p, int64_t done, const char *status_text);
void vx_progress_set_total(vx_progress *p, int64_t total);
/* Clears the bar (on a terminal) and frees p. NULL is fine. */
void vx_progress_finish(vx_progress *p);

/* ---- thread pool ------------------------------------------------------------------------ */

/* A fixed set of workers on one bounded queue (as libuv's threadpool). Lock order: the pool
 * has one mutex; jobs run without it held. vx_pool_submit blocks while the queue is full, so
 * producers are throttled instead of memory growing. */
typedef struct vx_pool vx_pool;
typedef void (*vx_job_fn)(void *arg);
vx_pool *vx_pool_create(int threads, int queue_capacity, vx_err *err);
vx_status vx_pool_submit(vx_pool *pool, vx_job_fn fn, void *arg, vx_err *err);
/* Waits until every submitted job has finished. */
void vx_pool_wait(vx_pool *pool);
/* Waits for the queue to drain, joins the workers and frees the pool. NULL is fine. */
void vx_pool_destroy(vx_pool *pool);
/* Number of online CPUs (at least 1). */
int vx_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
