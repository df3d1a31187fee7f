/* web/ — the HTTP JSON API over libmicrohttpd: routing, the read-only store pool, JSON errors,
 * paging tokens, search through query/'s engine (text, clip upload, video range, similar),
 * media streaming with Range, thumbnails, libraries and reindex jobs (web_jobs.c), metrics and
 * the access token.
 * Every response is built here from catalog rows: no request text ever becomes a file path. */
#define _GNU_SOURCE
#include "web.h"

#include "media.h"
#include "qry.h"
#include "srch.h"
#include "st.h"
#include "web_jobs.h"
#include "web_ui.h" /* the static UI ("/", "/ui/<file>"): served without the token */

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- metrics ------------------------------------------------------------------------------ */

typedef enum route {
    R_HEALTHZ,
    R_METRICS,
    R_SEARCH,
    R_VIDEOS,
    R_VIDEO,
    R_STREAM,
    R_THUMBNAIL,
    R_SIMILAR,
    R_INFO,
    R_LIBRARIES,
    R_REINDEX,
    R_JOBS,
    R_OTHER,
    R_COUNT
} route;

static const char *const route_names[R_COUNT] = {
    "healthz", "metrics", "search",    "videos",  "video", "stream", "thumbnail",
    "similar", "info",    "libraries", "reindex", "jobs",  "other"};

static const int metric_statuses[] = {200, 202, 206, 304, 400, 401, 404, 405,
                                      409, 413, 415, 416, 422, 429, 500, 503};
#define N_STATUS ((int)(sizeof metric_statuses / sizeof metric_statuses[0]) + 1) /* + other */

static const double latency_buckets_s[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,   1,    2.5,   5,    10};
#define N_BUCKETS ((int)(sizeof latency_buckets_s / sizeof latency_buckets_s[0]))

/* ---- the server --------------------------------------------------------------------------- */

struct web_server {
    struct MHD_Daemon *daemon;
    int listen_fd;
    int port;
    char *token; /* NULL: none */
    size_t max_body_bytes;
    /* store pool: free handles on a stack; lock order: pool_lock only (never held with
     * metrics_lock) */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    st_store **stores;
    st_index_cache *index_cache; /* the workers' stores share one copy of each vector index */
    int store_count;
    int free_count;
    int *free_stack;
    /* metrics */
    pthread_mutex_t metrics_lock;
    uint64_t requests[R_COUNT][N_STATUS];
    uint64_t latency_bucket[N_BUCKETS]; /* non-cumulative counts */
    uint64_t latency_count;
    double latency_sum_s;
    /* query latency per modality that took part, and the query embedding's cost */
    uint64_t query_bucket[SRCH_MODALITY_COUNT][N_BUCKETS]; /* non-cumulative */
    uint64_t query_count[SRCH_MODALITY_COUNT];
    double query_sum_s[SRCH_MODALITY_COUNT];
    uint64_t embed_count, text_cache_hits;
    double embed_sum_s;
    atomic_int in_flight;
    /* bytes of uploaded clips held by all connections together, at most upload_budget: many
     * large uploads at once get 503 instead of exhausting memory */
    atomic_size_t upload_bytes;
    size_t upload_budget;
    /* what every worker shares; set at start, read-only after */
    qry_engine *engine;           /* thread-safe (qry.h) */
    web_jobs *jobs;               /* thread-safe (web_jobs.h) */
    media_play_cache *play_cache; /* thread-safe; NULL: files are served as they are */
    size_t max_upload_bytes;
    char *version;
    char *data_dir_name; /* the data directory's last component (never the full path) */
};

web_options web_options_default(void)
{
    web_options o = {0};
    o.listen = "127.0.0.1:8080";
    o.threads = 4;
    o.connection_limit = 256;
    o.timeout_s = 10;
    o.max_body_bytes = 64 * 1024;
    o.max_upload_bytes = (size_t)256 * 1024 * 1024;
    return o;
}

int web_server_port(const web_server *srv)
{
    return srv ? srv->port : 0;
}

int web_host_is_loopback(const char *host)
{
    if (!host) return 0;
    if (!strcmp(host, "localhost") || !strcmp(host, "::1")) return 1;
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
    return 0;
}

static st_store *store_borrow(web_server *srv, int *slot)
{
    pthread_mutex_lock(&srv->pool_lock);
    while (srv->free_count == 0)
        pthread_cond_wait(&srv->pool_cond, &srv->pool_lock);
    *slot = srv->free_stack[--srv->free_count];
    pthread_mutex_unlock(&srv->pool_lock);
    return srv->stores[*slot];
}

static void store_return(web_server *srv, int slot)
{
    pthread_mutex_lock(&srv->pool_lock);
    srv->free_stack[srv->free_count++] = slot;
    pthread_cond_signal(&srv->pool_cond);
    pthread_mutex_unlock(&srv->pool_lock);
}

static void metrics_record(web_server *srv, route r, int status, int64_t t0_ns)
{
    double took_s = (double)(vx_now_ns() - t0_ns) / 1e9;
    int si = N_STATUS - 1;
    for (int i = 0; i < N_STATUS - 1; i++)
        if (metric_statuses[i] == status) si = i;
    pthread_mutex_lock(&srv->metrics_lock);
    srv->requests[r][si]++;
    srv->latency_count++;
    srv->latency_sum_s += took_s;
    for (int b = 0; b < N_BUCKETS; b++)
        if (took_s <= latency_buckets_s[b]) {
            srv->latency_bucket[b]++;
            break;
        }
    pthread_mutex_unlock(&srv->metrics_lock);
}

static void metrics_query(web_server *srv, unsigned active_mask, double took_ms,
                          const qry_stats *qs)
{
    double took_s = took_ms / 1e3;
    int b = 0;
    while (b < N_BUCKETS && took_s > latency_buckets_s[b])
        b++;
    pthread_mutex_lock(&srv->metrics_lock);
    for (int m = 0; m < SRCH_MODALITY_COUNT; m++) {
        if (!(active_mask & (1u << m))) continue;
        if (b < N_BUCKETS) srv->query_bucket[m][b]++;
        srv->query_count[m]++;
        srv->query_sum_s[m] += took_s;
    }
    if (qs->embed_ms > 0 || qs->text_cache_hit) {
        srv->embed_count++;
        srv->embed_sum_s += qs->embed_ms / 1e3;
        srv->text_cache_hits += (uint64_t)(qs->text_cache_hit != 0);
    }
    pthread_mutex_unlock(&srv->metrics_lock);
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* Parses a whole decimal id > 0 (digits only: "../", "1x", "+1", "" are not ids). */
static int parse_id(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0) return 0;
    *out = v;
    return 1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Page tokens are opaque to clients: "p" + the offset in hex, xor-folded so nobody builds on
 * their form. */
#define PAGE_TOKEN_KEY 0x5a17c3e9u

static void page_token_make(int64_t offset, char out[32])
{
    snprintf(out, 32, "p%08x", (unsigned)((uint32_t)offset ^ PAGE_TOKEN_KEY));
}

static int page_token_parse(const char *tok, int64_t *offset)
{
    if (!tok || !*tok) {
        *offset = 0;
        return 1;
    }
    if (tok[0] != 'p' || strlen(tok) != 9) return 0;
    uint32_t v = 0;
    for (int i = 1; i < 9; i++) {
        char c = tok[i];
        int d = c >= 'A' && c <= 'F' ? -1 : hexval(c);
        if (d < 0) return 0;
        v = v << 4 | (uint32_t)d;
    }
    v ^= PAGE_TOKEN_KEY;
    if (v > 1000000) return 0;
    *offset = v;
    return 1;
}

/* ---- responses ---------------------------------------------------------------------------- */

typedef struct request {
    web_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    route route;
    int status;        /* what was queued */
    int retry_after_s; /* a 503's Retry-After (0: 1 s) */
} request;

static enum MHD_Result queue_buffer(request *rq, int status, const char *type, char *body,
                                    size_t len)
{
    /* body is malloc'd and handed to MHD (freed by it) */
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                rq->route == R_SEARCH    ? "GET, HEAD, POST"
                                : rq->route == R_REINDEX ? "POST"
                                                         : "GET, HEAD");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 503) {
        char retry[16];
        snprintf(retry, sizeof retry, "%d", rq->retry_after_s > 0 ? rq->retry_after_s : 1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    }
    enum MHD_Result ret = MHD_queue_response(rq->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    return ret;
}

static enum MHD_Result queue_json(request *rq, int status, cJSON *root)
{
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(rq->conn, 500, resp);
        MHD_destroy_response(resp);
        rq->status = 500;
        return ret;
    }
    size_t len = strlen(text);
    /* a newline ends the body, as `vidx search --json` ends its output */
    char *grown = realloc(text, len + 2);
    if (grown) {
        text = grown;
        text[len++] = '\n';
        text[len] = 0;
    }
    return queue_buffer(rq, status, "application/json", text, len);
}

static enum MHD_Result queue_error(request *rq, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result queue_error(request *rq, int status, const char *code, const char *fmt, ...)
{
    char msg[VX_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "code", code);
    /* messages may quote a user's bytes: keep the JSON valid UTF-8 */
    if (!vx_utf8_valid((const char *)msg, strlen(msg))) snprintf(msg, sizeof msg, "%s", code);
    cJSON_AddStringToObject(e, "message", msg);
    return queue_json(rq, status, root);
}

/* Maps a vx_status from the store or search to an HTTP error. */
static enum MHD_Result queue_vx_error(request *rq, const vx_err *err)
{
    switch (err->status) {
    case VX_EINVAL:
    case VX_ELIMIT:
        return queue_error(rq, 400, "bad_request", "%s", err->msg);
    case VX_ENOTFOUND:
        return queue_error(rq, 404, "not_found", "%s", err->msg);
    case VX_EUNSUPPORTED:
        return queue_error(rq, 409, "no_vectors", "%s", err->msg);
    default:
        return queue_error(rq, 500, "internal", "%s", err->msg);
    }
}

/* ---- arguments ---------------------------------------------------------------------------- */

static const char *arg(request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Every query argument must be valid UTF-8 (MHD has percent-decoded it). */
static enum MHD_Result check_arg_utf8(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    int *bad = cls;
    if (!vx_utf8_valid((const char *)key, strlen(key)) ||
        (value && !vx_utf8_valid((const char *)value, strlen(value)))) {
        *bad = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* limit from text (NULL: dflt); 0 when invalid. */
static int parse_limit(const char *text, int dflt, int max)
{
    if (!text) return dflt;
    int64_t v;
    if (vx_parse_int(text, 1, max, "limit", &v, NULL)) return 0;
    return (int)v;
}

/* ---- /api/search -------------------------------------------------------------------------- */

static cJSON *page_info(int64_t next_offset, int64_t total)
{
    cJSON *pi = cJSON_CreateObject();
    if (next_offset >= 0) {
        char tok[32];
        page_token_make(next_offset, tok);
        cJSON_AddStringToObject(pi, "next_page_token", tok);
    } else {
        cJSON_AddNullToObject(pi, "next_page_token");
    }
    cJSON_AddNumberToObject(pi, "total", (double)total);
    return pi;
}

/* A search as the request spelled it (query arguments, JSON or form fields), before checks.
 * Strings are borrowed from the request. */
typedef struct search_args {
    qry_request q;     /* kind and its fields; limit/offset/filter/modalities set here */
    const char *limit; /* text forms; NULL: q.limit as given */
    const char *page_token;
    const char *modalities; /* comma list; NULL or "": all the server can do */
    const char *library;    /* name */
    const char *path_prefix;
    const char *num[5];            /* min/max duration, modified after/before, rerank: text forms */
    const char *start_ms, *end_ms; /* clip range, text forms (multipart) */
} search_args;

static const char *const num_arg_names[5] = {"min_duration_ms", "max_duration_ms",
                                             "modified_after_ms", "modified_before_ms", "rerank"};

static void search_args_init(search_args *a)
{
    memset(a, 0, sizeof *a);
    a->q = qry_request_default();
    a->q.limit = 10;
}

/* 422 for what needs a model (or a tower) this server lacks, saying how to get it. */
static enum MHD_Result queue_needs_model(request *rq, const char *what)
{
    if (!rq->srv->engine || !qry_engine_model_id(rq->srv->engine))
        return queue_error(rq, 422, "needs_model",
                           "%s needs a model: start vidx serve with --model DIR (or VIDX_MODEL) "
                           "naming an InternVideo2 model directory",
                           what);
    return queue_error(rq, 422, "needs_model", "%s: the model of this server (%s) cannot do it",
                       what, qry_engine_model_id(rq->srv->engine));
}

/* Parses a.modalities into bits; 0 with *bad set on an unknown name. */
static unsigned parse_modalities(const char *list, char *bad, size_t bad_size)
{
    unsigned bits = 0;
    const char *p = list;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int m = 0; m < SRCH_MODALITY_COUNT && n; m++) {
            const char *name = srch_modality_name((srch_modality)m);
            if (strlen(name) == n && !strncmp(p, name, n)) found = m;
        }
        if (found < 0 && n) {
            snprintf(bad, bad_size, "%.*s", (int)(n > 40 ? 40 : n), p);
            return 0;
        }
        if (found >= 0) bits |= 1u << found;
        p += n;
        if (*p == ',') p++;
    }
    return bits;
}

/* Checks a, runs it through the engine and queues the page with page_info (and rerank). */
static enum MHD_Result run_search(request *rq, st_store *s, search_args *a)
{
    web_server *srv = rq->srv;
    qry_request *q = &a->q;
    if (a->limit) q->limit = parse_limit(a->limit, 10, 1000);
    if (q->limit <= 0 || q->limit > 1000)
        return queue_error(rq, 400, "bad_request", "limit must be a number 1..1000");
    int64_t offset;
    if (!page_token_parse(a->page_token, &offset))
        return queue_error(rq, 400, "bad_page_token", "page_token is not one this server gave");
    q->offset = (int)offset;
    int64_t *nums[5] = {&q->filter.min_duration_ms, &q->filter.max_duration_ms,
                        &q->filter.modified_after_ms, &q->filter.modified_before_ms, NULL};
    int64_t rerank = q->rerank;
    nums[4] = &rerank;
    for (int i = 0; i < 5; i++) {
        if (!a->num[i] || !*a->num[i]) continue;
        if (vx_parse_int(a->num[i], 0, i == 4 ? 256 : INT64_MAX / 2, num_arg_names[i], nums[i],
                         NULL))
            return queue_error(rq, 400, "bad_request", "%s must be a whole number%s",
                               num_arg_names[i], i == 4 ? " 0..256" : " >= 0");
    }
    q->rerank = (int)rerank;
    const char *range[2] = {a->start_ms, a->end_ms};
    int64_t *range_out[2] = {&q->start_ms, &q->end_ms};
    for (int i = 0; i < 2; i++)
        if (range[i] && *range[i] &&
            vx_parse_int(range[i], 0, INT64_MAX / 2, "start_ms", range_out[i], NULL))
            return queue_error(rq, 400, "bad_request", "%s must be a whole number >= 0",
                               i ? "end_ms" : "start_ms");
    char bad[48] = "";
    q->modalities = parse_modalities(a->modalities, bad, sizeof bad);
    if (*bad)
        return queue_error(rq, 400, "bad_modality",
                           "unknown modality '%s' (lexical, vision, audio, speech)", bad);
    if (q->kind == QRY_TEXT) {
        if (!q->text || !*q->text)
            return queue_error(rq, 400, "bad_request", "give the words to search for (q)");
        unsigned can = qry_engine_text_modalities(srv->engine);
        if (q->modalities & ~can) {
            char name[48] = "";
            for (int m = 0; m < SRCH_MODALITY_COUNT && !*name; m++)
                if (q->modalities & ~can & (1u << m))
                    snprintf(name, sizeof name, "search by %s", srch_modality_name(m));
            return queue_needs_model(rq, name);
        }
        if (q->rerank > 0 && !qry_engine_can_rerank(srv->engine))
            return queue_needs_model(rq, "re-ranking (rerank)");
    } else if (q->kind != QRY_SEGMENT) {
        if (!qry_engine_can_clip(srv->engine)) return queue_needs_model(rq, "search by clip");
        if (q->rerank > 0)
            return queue_error(rq, 400, "bad_request", "rerank applies to text queries only");
        if (q->end_ms && q->end_ms <= q->start_ms)
            return queue_error(rq, 400, "bad_request", "end_ms must be after start_ms");
    }
    vx_err err = {0};
    if (a->library && *a->library) {
        st_library lib;
        if (st_library_find(s, a->library, &lib, &err))
            return err.status == VX_ENOTFOUND
                       ? queue_error(rq, 404, "not_found", "no library named '%.100s'", a->library)
                       : queue_vx_error(rq, &err);
        q->filter.library_id = lib.id;
        st_library_clear(&lib);
    }
    if (a->path_prefix && *a->path_prefix) q->filter.path_prefix = a->path_prefix;
    srch_results r;
    qry_stats qs;
    memset(&qs, 0, sizeof qs);
    if (qry_run(srv->engine, s, q, &r, &qs, &err)) {
        if (err.status == VX_ENOTFOUND) return queue_error(rq, 404, "not_found", "%s", err.msg);
        if (q->kind == QRY_CLIP_MEMORY && (err.status == VX_EFORMAT || err.status == VX_EIO))
            return queue_error(rq, 400, "bad_clip", "the uploaded clip cannot be read: %s",
                               err.msg);
        if (err.status == VX_EFORMAT) return queue_error(rq, 400, "bad_clip", "%s", err.msg);
        return queue_vx_error(rq, &err);
    }
    metrics_query(srv, r.active_mask, r.took_ms, &qs);
    char *text = srch_results_json(&r, 0, &err);
    int64_t got = (int64_t)r.count;
    srch_results_free(&r);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return queue_error(rq, 500, "internal", "cannot build the response");
    int64_t total = qs.total > offset + got ? qs.total : offset + got;
    int64_t next = offset + got;
    cJSON_AddItemToObject(root, "page_info", page_info(got && next < total ? next : -1, total));
    if (q->rerank > 0) {
        cJSON *rr = cJSON_AddObjectToObject(root, "rerank");
        cJSON_AddBoolToObject(rr, "ran", qs.reranked > 0);
        cJSON_AddNumberToObject(rr, "segments", qs.reranked);
        cJSON_AddNumberToObject(rr, "took_ms", qs.rerank_ms);
        cJSON_AddBoolToObject(rr, "budget_hit", qs.rerank_budget_hit != 0);
    }
    return queue_json(rq, 200, root);
}

/* The URL arguments GET /api/search and /similar share: paging, modalities, filters (the first
 * num_count of num_arg_names). */
static void search_args_from_url(request *rq, search_args *a, int num_count)
{
    search_args_init(a);
    a->limit = arg(rq, "limit");
    a->page_token = arg(rq, "page_token");
    a->modalities = arg(rq, "modalities");
    a->library = arg(rq, "library");
    a->path_prefix = arg(rq, "path_prefix");
    for (int i = 0; i < num_count; i++)
        a->num[i] = arg(rq, num_arg_names[i]);
}

static enum MHD_Result handle_search_get(request *rq, st_store *s)
{
    search_args a;
    search_args_from_url(rq, &a, 5);
    a.q.kind = QRY_TEXT;
    a.q.text = arg(rq, "q");
    return run_search(rq, s, &a);
}

/* A JSON whole number in [0, max] into *out; 0 when it is not one. */
static int json_int(const cJSON *v, double max, int64_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

static enum MHD_Result handle_search_post(request *rq, st_store *s, const char *body, size_t len)
{
    if (!vx_utf8_valid((const char *)body, len))
        return queue_error(rq, 400, "bad_json", "the request body is not valid UTF-8");
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return queue_error(rq, 400, "bad_json", "the request body is not a JSON object");
    }
    search_args a;
    search_args_init(&a);
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(query, "text");
    const cJSON *clip = cJSON_GetObjectItemCaseSensitive(query, "clip");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(root, "limit");
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(root, "page_token");
    const cJSON *library = cJSON_GetObjectItemCaseSensitive(root, "library");
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(root, "modalities");
    const cJSON *filters = cJSON_GetObjectItemCaseSensitive(root, "filters");
    const cJSON *rerank = cJSON_GetObjectItemCaseSensitive(root, "rerank");
    enum MHD_Result ret;
    char modbuf[256] = "";
    int64_t v;
    const char *bad = NULL;
    if (!cJSON_IsObject(query) || (!cJSON_IsString(text) && !cJSON_IsObject(clip)) ||
        (text && clip)) {
        bad = "give {\"query\": {\"text\": \"...\"}} or {\"query\": {\"clip\": {\"video_id\": N, "
              "\"start_ms\": S, \"end_ms\": E}}}";
    } else if (limit && !json_int(limit, 1000, &v)) {
        bad = "limit must be a number 1..1000";
    } else if ((token && !cJSON_IsString(token) && !cJSON_IsNull(token)) ||
               (library && !cJSON_IsString(library) && !cJSON_IsNull(library)) ||
               (mods && !cJSON_IsArray(mods)) || (filters && !cJSON_IsObject(filters))) {
        bad = "page_token and library are strings, modalities an array, filters an object";
    } else if (rerank && !json_int(rerank, 256, &v)) {
        bad = "rerank must be a number 0..256";
    }
    if (!bad) {
        if (limit) a.q.limit = (int)limit->valuedouble;
        if (rerank) a.q.rerank = (int)rerank->valuedouble;
        a.page_token = cJSON_IsString(token) ? token->valuestring : NULL;
        a.library = cJSON_IsString(library) ? library->valuestring : NULL;
        const cJSON *m;
        cJSON_ArrayForEach(m, mods)
        {
            if (!cJSON_IsString(m) || !*m->valuestring || strchr(m->valuestring, ',') ||
                strlen(modbuf) + strlen(m->valuestring) + 2 > sizeof modbuf) {
                bad = "modalities must be an array of names";
                break;
            }
            if (*modbuf) strcat(modbuf, ",");
            strcat(modbuf, m->valuestring);
        }
        a.modalities = modbuf;
    }
    if (!bad && filters) {
        int64_t *outs[4] = {&a.q.filter.min_duration_ms, &a.q.filter.max_duration_ms,
                            &a.q.filter.modified_after_ms, &a.q.filter.modified_before_ms};
        const cJSON *f;
        cJSON_ArrayForEach(f, filters)
        {
            int known = 0;
            for (int i = 0; i < 4; i++)
                if (!strcmp(f->string, num_arg_names[i])) {
                    known = 1;
                    if (!cJSON_IsNull(f) && !json_int(f, 9e15, outs[i]))
                        bad = "filters: durations and times are whole numbers of ms >= 0";
                }
            if (!strcmp(f->string, "path_prefix")) {
                known = 1;
                if (cJSON_IsString(f))
                    a.path_prefix = f->valuestring;
                else if (!cJSON_IsNull(f))
                    bad = "filters.path_prefix must be a string";
            }
            if (!strcmp(f->string, "library")) {
                known = 1;
                if (cJSON_IsString(f) && !a.library)
                    a.library = f->valuestring;
                else if (!cJSON_IsNull(f))
                    bad = "filters.library must be a string (once)";
            }
            if (!known)
                bad = "filters: unknown name (path_prefix, library, min_duration_ms, "
                      "max_duration_ms, modified_after_ms, modified_before_ms)";
            if (bad) break;
        }
    }
    if (!bad && clip) {
        const cJSON *vid = cJSON_GetObjectItemCaseSensitive(clip, "video_id");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(clip, "start_ms");
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(clip, "end_ms");
        a.q.kind = QRY_CLIP_VIDEO;
        if (!json_int(vid, 9e15, &a.q.video_id) || a.q.video_id <= 0)
            bad = "query.clip.video_id must be a video id";
        else if ((start && !json_int(start, 9e15, &a.q.start_ms)) ||
                 (end && !json_int(end, 9e15, &a.q.end_ms)))
            bad = "query.clip.start_ms and end_ms are whole numbers of ms >= 0";
    } else if (!bad) {
        a.q.kind = QRY_TEXT;
        a.q.text = text->valuestring;
    }
    ret = bad ? queue_error(rq, 400, "bad_request", "%s", bad) : run_search(rq, s, &a);
    cJSON_Delete(root);
    return ret;
}

/* ---- /api/videos -------------------------------------------------------------------------- */

static cJSON *video_json(const st_video *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)v->id);
    cJSON_AddNumberToObject(o, "library_id", (double)v->library_id);
    cJSON_AddStringToObject(o, "path", v->location ? v->location : "");
    const char *loc = v->location ? v->location : "";
    const char *base = strrchr(loc, '/');
    base = base ? base + 1 : loc;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *title = strndup(base, n);
    cJSON_AddStringToObject(o, "title", title ? title : "");
    free(title);
    cJSON_AddNumberToObject(o, "duration_ms", (double)v->duration_ms);
    cJSON_AddNumberToObject(o, "size_bytes", (double)v->size_bytes);
    cJSON_AddNumberToObject(o, "mtime_ms", (double)v->mtime_ms);
    cJSON_AddStringToObject(o, "status", st_video_status_name(v->status));
    if (v->last_error)
        cJSON_AddStringToObject(o, "last_error", v->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    char url[64];
    snprintf(url, sizeof url, "/api/videos/%" PRId64 "/stream", v->id);
    cJSON_AddStringToObject(o, "stream_url", url);
    return o;
}

typedef struct list_walk {
    int64_t skip, take, seen;
    cJSON *items;
} list_walk;

static int list_one(void *ctx, const st_video *v)
{
    list_walk *w = ctx;
    if (w->seen >= w->skip && w->seen < w->skip + w->take)
        cJSON_AddItemToArray(w->items, video_json(v));
    w->seen++;
    return 0;
}

static enum MHD_Result handle_videos(request *rq, st_store *s)
{
    int limit = parse_limit(arg(rq, "limit"), 50, 1000);
    if (limit <= 0) return queue_error(rq, 400, "bad_request", "limit must be a number 1..1000");
    int64_t offset;
    if (!page_token_parse(arg(rq, "page_token"), &offset))
        return queue_error(rq, 400, "bad_page_token", "page_token is not one this server gave");
    int64_t library_id = 0;
    vx_err err = {0};
    const char *library = arg(rq, "library");
    if (library && *library) {
        st_library lib;
        if (st_library_find(s, library, &lib, &err))
            return err.status == VX_ENOTFOUND
                       ? queue_error(rq, 404, "not_found", "no library named '%.100s'", library)
                       : queue_vx_error(rq, &err);
        library_id = lib.id;
        st_library_clear(&lib);
    }
    cJSON *root = cJSON_CreateObject();
    list_walk w = {offset, limit, 0, cJSON_AddArrayToObject(root, "videos")};
    if (st_video_each(s, library_id, list_one, &w, &err)) {
        cJSON_Delete(root);
        return queue_vx_error(rq, &err);
    }
    int64_t next = offset + limit;
    cJSON_AddNumberToObject(root, "count", cJSON_GetArraySize(w.items));
    cJSON_AddItemToObject(root, "page_info", page_info(next < w.seen ? next : -1, w.seen));
    return queue_json(rq, 200, root);
}

static const char *level_name(st_level l)
{
    switch (l) {
    case ST_LEVEL_WINDOW:
        return "window";
    case ST_LEVEL_SCENE:
        return "scene";
    case ST_LEVEL_VIDEO:
        return "video";
    }
    return "window";
}

static enum MHD_Result handle_video(request *rq, st_store *s, int64_t id)
{
    st_video v;
    vx_err err = {0};
    if (st_video_get(s, id, &v, &err))
        return err.status == VX_ENOTFOUND
                   ? queue_error(rq, 404, "not_found", "no video with id %" PRId64, id)
                   : queue_vx_error(rq, &err);
    cJSON *root = video_json(&v);
    if (v.streams_json) {
        cJSON *streams = cJSON_Parse(v.streams_json);
        if (streams) cJSON_AddItemToObject(root, "streams", streams);
    }
    st_video_clear(&v);
    st_segment *segs = NULL;
    size_t n = 0;
    if (st_segment_list(s, id, -1, &segs, &n, &err)) {
        cJSON_Delete(root);
        return queue_vx_error(rq, &err);
    }
    cJSON *arr = cJSON_AddArrayToObject(root, "segments");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)segs[i].id);
        cJSON_AddStringToObject(o, "level", level_name(segs[i].level));
        cJSON_AddNumberToObject(o, "start_ms", (double)segs[i].start_ms);
        cJSON_AddNumberToObject(o, "end_ms", (double)segs[i].end_ms);
        if (segs[i].thumb) {
            char url[80];
            snprintf(url, sizeof url, "/api/segments/%" PRId64 "/thumbnail", segs[i].id);
            cJSON_AddStringToObject(o, "thumbnail_url", url);
        } else {
            cJSON_AddNullToObject(o, "thumbnail_url");
        }
        cJSON_AddItemToArray(arr, o);
    }
    st_segments_free(segs, n);
    return queue_json(rq, 200, root);
}

/* ---- files: stream and thumbnail ---------------------------------------------------------- */

static const char *mime_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".mp4", "video/mp4"},        {".m4v", "video/mp4"},   {".mov", "video/quicktime"},
                 {".mkv", "video/x-matroska"}, {".webm", "video/webm"}, {".avi", "video/x-msvideo"},
                 {".ts", "video/mp2t"},        {".m2ts", "video/mp2t"}, {".mpg", "video/mpeg"},
                 {".mpeg", "video/mpeg"},      {".ogv", "video/ogg"},   {".flv", "video/x-flv"},
                 {".wmv", "video/x-ms-wmv"},   {".3gp", "video/3gpp"},  {".m4a", "audio/mp4"},
                 {".mp3", "audio/mpeg"},       {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"}};
    const char *base = strrchr(path, '/');
    const char *dot = strrchr(base ? base : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size. Returns 1 with
 * [*first, *last] for a satisfiable range, 0 for a range to ignore (several ranges: the whole
 * file is sent), -1 for a malformed or unsatisfiable one (416). */
static int parse_range(const char *h, int64_t size, int64_t *first, int64_t *last)
{
    if (strncmp(h, "bytes=", 6)) return -1;
    h += 6;
    while (*h == ' ')
        h++;
    if (strchr(h, ',')) return 0;
    const char *dash = strchr(h, '-');
    if (!dash) return -1;
    int64_t a = -1, b = -1;
    if (dash > h) {
        if (!parse_id(h, (size_t)(dash - h), &a)) {
            if (dash - h == 1 && *h == '0')
                a = 0;
            else if (dash - h > 1 && h[0] == '0' && h[strspn(h, "0")] == '-')
                a = 0;
            else
                return -1;
        }
    }
    const char *t = dash + 1;
    size_t tl = strlen(t);
    while (tl && t[tl - 1] == ' ')
        tl--;
    if (tl) {
        if (!parse_id(t, tl, &b)) {
            if (strspn(t, "0") == tl)
                b = 0;
            else
                return -1;
        }
    }
    if (a < 0 && b < 0) return -1;
    if (a < 0) { /* suffix: the last b bytes */
        if (b == 0 || size == 0) return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (a >= size) return -1;
    if (b >= 0 && b < a) return -1;
    *first = a;
    *last = b < 0 || b >= size ? size - 1 : b;
    return 1;
}

/* Sends an open file (fd is taken over) whole or by Range, with ETag and If-Range. Files are
 * opened O_NONBLOCK so a FIFO in place of a video cannot hang a worker; only regular files go. */
static enum MHD_Result queue_file(request *rq, int fd, const char *type, const char *playback)
{
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return queue_error(rq, 404, "not_found", "the file is not a regular file");
    }
    int64_t size = (int64_t)sb.st_size;
    char etag[64];
    snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)size,
             (uint64_t)sb.st_mtime);
    const char *range = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Range");
    const char *if_range = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "If-Range");
    if (range && if_range && strcmp(if_range, etag)) range = NULL; /* changed: send it all */
    int64_t first = 0, last = size - 1;
    int status = 200;
    if (range) {
        int r = parse_range(range, size, &first, &last);
        if (r < 0) {
            close(fd);
            char *body = strdup("{\"error\":{\"code\":\"range_not_satisfiable\",\"message\":"
                                "\"the requested range is not in the file\"}}\n");
            if (!body) return MHD_NO;
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
            if (!resp) return MHD_NO;
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%" PRId64, size);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            enum MHD_Result ret = MHD_queue_response(rq->conn, 416, resp);
            MHD_destroy_response(resp);
            rq->status = 416;
            return ret;
        }
        if (r > 0)
            status = 206;
        else
            first = 0, last = size - 1;
    }
    uint64_t len = size ? (uint64_t)(last - first + 1) : 0;
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, (uint64_t)first);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (playback) MHD_add_response_header(resp, "X-Vidx-Playback", playback);
    if (status == 206) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRId64 "-%" PRId64 "/%" PRId64, first, last, size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    enum MHD_Result ret = MHD_queue_response(rq->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    return ret;
}

/* Serves what a browser can play of path (media_play_get: the file itself, or a remuxed or
 * transcoded copy from the cache; DECISIONS §10). */
static enum MHD_Result queue_playable(request *rq, const char *path, int64_t id)
{
    static const char *const action_names[] = {"as-is", "remux", "transcode"};
    vx_err err = {0};
    for (int attempt = 0; attempt < 2; attempt++) {
        media_play_result res;
        /* a worker waits a little for a short job, then the client is told to come back */
        if (media_play_get(rq->srv->play_cache, path, 2000, &res, &err)) {
            switch (err.status) {
            case VX_ENOTFOUND:
                return queue_error(rq, 404, "not_found", "video %" PRId64 "'s file is gone", id);
            case VX_EUNSUPPORTED:
                return queue_error(rq, 415, "not_playable", "video %" PRId64 ": %s", id, err.msg);
            case VX_EFORMAT:
            case VX_ECORRUPT:
            case VX_ELIMIT:
                return queue_error(rq, 422, "not_playable", "video %" PRId64 ": %s", id, err.msg);
            default:
                return queue_vx_error(rq, &err);
            }
        }
        if (res.state == MEDIA_PLAY_PENDING) {
            rq->retry_after_s = res.retry_after_s;
            return queue_error(rq, 503, "preparing",
                               "video %" PRId64 " is being converted for the browser (%d%%)", id,
                               (int)(res.progress * 100));
        }
        int fd = open(res.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
            unsigned a = (unsigned)res.action;
            return queue_file(rq, fd, res.mime,
                              a < sizeof action_names / sizeof action_names[0] ? action_names[a]
                                                                               : NULL);
        }
        if (errno != ENOENT || res.action == MEDIA_PLAY_AS_IS) break;
        /* the cache entry was evicted between the two calls: ask again once */
    }
    return queue_error(rq, 404, "not_found", "video %" PRId64 "'s file is gone", id);
}

static enum MHD_Result handle_stream(request *rq, st_store *s, int64_t id)
{
    st_video v;
    vx_err err = {0};
    if (st_video_get(s, id, &v, &err))
        return err.status == VX_ENOTFOUND
                   ? queue_error(rq, 404, "not_found", "no video with id %" PRId64, id)
                   : queue_vx_error(rq, &err);
    enum MHD_Result ret;
    if (!v.location || v.location[0] != '/') {
        ret = queue_error(rq, 404, "not_local",
                          "video %" PRId64 " is not a local file (web archives are not streamed)",
                          id);
    } else if (!rq->srv->play_cache) {
        int fd = open(v.location, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            ret = queue_error(rq, 404, "not_found", "video %" PRId64 "'s file is gone", id);
        else
            ret = queue_file(rq, fd, mime_of(v.location), NULL);
    } else {
        ret = queue_playable(rq, v.location, id);
    }
    st_video_clear(&v);
    return ret;
}

static enum MHD_Result handle_thumbnail(request *rq, st_store *s, int64_t id)
{
    st_segment seg;
    vx_err err = {0};
    if (st_segment_get(s, id, &seg, &err))
        return err.status == VX_ENOTFOUND
                   ? queue_error(rq, 404, "not_found", "no segment with id %" PRId64, id)
                   : queue_vx_error(rq, &err);
    enum MHD_Result ret;
    /* the catalog's relative name, never one with ".." or an absolute path */
    if (!seg.thumb || !*seg.thumb || seg.thumb[0] == '/' || strstr(seg.thumb, "..")) {
        ret = queue_error(rq, 404, "not_found", "segment %" PRId64 " has no thumbnail", id);
    } else {
        char *path = vx_asprintf(NULL, "%s/%s", st_thumbs_dir(s), seg.thumb);
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
        free(path);
        if (fd < 0)
            ret = queue_error(rq, 404, "not_found", "segment %" PRId64 " has no thumbnail", id);
        else
            ret = queue_file(rq, fd, "image/jpeg", NULL);
    }
    st_segment_clear(&seg);
    return ret;
}

static enum MHD_Result handle_similar(request *rq, st_store *s, int64_t id)
{
    search_args a;
    search_args_from_url(rq, &a, 4);
    a.q.kind = QRY_SEGMENT;
    a.q.segment_id = id;
    return run_search(rq, s, &a);
}

/* ---- /metrics ----------------------------------------------------------------------------- */

static enum MHD_Result handle_metrics(request *rq, st_store *s)
{
    web_server *srv = rq->srv;
    vx_buf b = {0};
    vx_err err = {0};
    uint64_t req[R_COUNT][N_STATUS], buckets[N_BUCKETS], count;
    double sum;
    pthread_mutex_lock(&srv->metrics_lock);
    memcpy(req, srv->requests, sizeof req);
    memcpy(buckets, srv->latency_bucket, sizeof buckets);
    count = srv->latency_count;
    sum = srv->latency_sum_s;
    pthread_mutex_unlock(&srv->metrics_lock);
    vx_buf_printf(&b, &err,
                  "# HELP vidx_http_requests_total HTTP requests answered, by endpoint and "
                  "status.\n# TYPE vidx_http_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int k = 0; k < N_STATUS; k++) {
            if (!req[r][k]) continue;
            char code[8];
            if (k < N_STATUS - 1)
                snprintf(code, sizeof code, "%d", metric_statuses[k]);
            else
                snprintf(code, sizeof code, "other");
            vx_buf_printf(&b, &err,
                          "vidx_http_requests_total{endpoint=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                          route_names[r], code, req[r][k]);
        }
    vx_buf_printf(&b, &err,
                  "# HELP vidx_http_request_duration_seconds Time to build a response.\n"
                  "# TYPE vidx_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += buckets[i];
        vx_buf_printf(&b, &err,
                      "vidx_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                      latency_buckets_s[i], cum);
    }
    vx_buf_printf(&b, &err,
                  "vidx_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                  "vidx_http_request_duration_seconds_sum %.6f\n"
                  "vidx_http_request_duration_seconds_count %" PRIu64 "\n",
                  count, sum, count);
    st_stats stats;
    if (!st_stats_get(s, &stats, &err)) {
        vx_buf_printf(&b, &err,
                      "# HELP vidx_catalog_libraries Libraries in the catalog.\n"
                      "# TYPE vidx_catalog_libraries gauge\nvidx_catalog_libraries %" PRId64 "\n"
                      "# HELP vidx_catalog_videos Videos in the catalog, by status.\n"
                      "# TYPE vidx_catalog_videos gauge\n",
                      stats.libraries);
        for (int k = 0; k < ST_VIDEO_STATUS_COUNT; k++)
            vx_buf_printf(&b, &err, "vidx_catalog_videos{status=\"%s\"} %" PRId64 "\n",
                          st_video_status_name((st_video_status)k), stats.videos_by_status[k]);
        vx_buf_printf(&b, &err,
                      "# HELP vidx_catalog_segments Segments in the catalog.\n"
                      "# TYPE vidx_catalog_segments gauge\nvidx_catalog_segments %" PRId64 "\n"
                      "# HELP vidx_catalog_embeddings Stored vectors.\n"
                      "# TYPE vidx_catalog_embeddings gauge\nvidx_catalog_embeddings %" PRId64 "\n"
                      "# HELP vidx_catalog_texts Stored texts (speech, subtitles, OCR, titles).\n"
                      "# TYPE vidx_catalog_texts gauge\nvidx_catalog_texts %" PRId64 "\n"
                      "# HELP vidx_catalog_generation The catalog generation.\n"
                      "# TYPE vidx_catalog_generation gauge\nvidx_catalog_generation %" PRId64 "\n"
                      "# HELP vidx_index_vectors Vectors per index (model, modality).\n"
                      "# TYPE vidx_index_vectors gauge\n",
                      stats.segments, stats.embeddings, stats.texts, stats.catalog_generation);
        for (size_t i = 0; i < stats.space_count; i++)
            vx_buf_printf(&b, &err,
                          "vidx_index_vectors{model=\"%s\",modality=\"%s\"} %" PRId64 "\n",
                          stats.spaces[i].model, stats.spaces[i].modality, stats.spaces[i].vectors);
        vx_buf_printf(&b, &err,
                      "# HELP vidx_index_file_bytes Size of each saved index file.\n"
                      "# TYPE vidx_index_file_bytes gauge\n");
        for (size_t i = 0; i < stats.space_count; i++)
            vx_buf_printf(
                &b, &err, "vidx_index_file_bytes{model=\"%s\",modality=\"%s\"} %" PRId64 "\n",
                stats.spaces[i].model, stats.spaces[i].modality, stats.spaces[i].file_bytes);
        vx_buf_printf(&b, &err,
                      "# HELP vidx_disk_bytes Disk used, by part of the data directory.\n"
                      "# TYPE vidx_disk_bytes gauge\n"
                      "vidx_disk_bytes{part=\"catalog\"} %" PRId64 "\n"
                      "vidx_disk_bytes{part=\"index\"} %" PRId64 "\n"
                      "vidx_disk_bytes{part=\"thumbs\"} %" PRId64 "\n",
                      stats.catalog_bytes, stats.index_bytes, stats.thumbs_bytes);
        st_stats_free(&stats);
    }
    uint64_t qb[SRCH_MODALITY_COUNT][N_BUCKETS], qn[SRCH_MODALITY_COUNT], embeds, hits;
    double qsum[SRCH_MODALITY_COUNT], embed_sum;
    pthread_mutex_lock(&srv->metrics_lock);
    memcpy(qb, srv->query_bucket, sizeof qb);
    memcpy(qn, srv->query_count, sizeof qn);
    memcpy(qsum, srv->query_sum_s, sizeof qsum);
    embeds = srv->embed_count;
    hits = srv->text_cache_hits;
    embed_sum = srv->embed_sum_s;
    pthread_mutex_unlock(&srv->metrics_lock);
    vx_buf_printf(&b, &err,
                  "# HELP vidx_query_duration_seconds Time of a search, by modality that took "
                  "part.\n# TYPE vidx_query_duration_seconds histogram\n");
    for (int m = 0; m < SRCH_MODALITY_COUNT; m++) {
        const char *name = srch_modality_name((srch_modality)m);
        uint64_t cum = 0;
        for (int i = 0; i < N_BUCKETS; i++) {
            cum += qb[m][i];
            vx_buf_printf(&b, &err,
                          "vidx_query_duration_seconds_bucket{modality=\"%s\",le=\"%g\"} %" PRIu64
                          "\n",
                          name, latency_buckets_s[i], cum);
        }
        vx_buf_printf(&b, &err,
                      "vidx_query_duration_seconds_bucket{modality=\"%s\",le=\"+Inf\"} %" PRIu64
                      "\n"
                      "vidx_query_duration_seconds_sum{modality=\"%s\"} %.6f\n"
                      "vidx_query_duration_seconds_count{modality=\"%s\"} %" PRIu64 "\n",
                      name, qn[m], name, qsum[m], name, qn[m]);
    }
    vx_buf_printf(&b, &err,
                  "# HELP vidx_query_embeddings_total Queries that needed a query vector.\n"
                  "# TYPE vidx_query_embeddings_total counter\nvidx_query_embeddings_total %" PRIu64
                  "\n"
                  "# HELP vidx_query_embedding_cache_hits_total Query vectors from the cache.\n"
                  "# TYPE vidx_query_embedding_cache_hits_total counter\n"
                  "vidx_query_embedding_cache_hits_total %" PRIu64 "\n"
                  "# HELP vidx_query_embed_seconds_total Time in the towers for query vectors.\n"
                  "# TYPE vidx_query_embed_seconds_total counter\n"
                  "vidx_query_embed_seconds_total %.6f\n",
                  embeds, hits, embed_sum);
    web_jobs_metrics(srv->jobs, &b, &err);
    if (err.status || !b.data) {
        vx_buf_free(&b);
        return queue_error(rq, 500, "internal", "%s", err.msg[0] ? err.msg : "out of memory");
    }
    return queue_buffer(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
}

/* ---- /api/info, /api/libraries, /api/reindex, /api/jobs ----------------------------------- */

/* Answered without the token too (a UI learns from it that it must ask for one), but then
 * says nothing of the data directory or the model. */
static enum MHD_Result handle_info(request *rq, int authorized)
{
    web_server *srv = rq->srv;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", srv->version ? srv->version : "unknown");
    if (authorized && vx_utf8_valid(srv->data_dir_name, strlen(srv->data_dir_name)))
        cJSON_AddStringToObject(root, "data_dir_name", srv->data_dir_name);
    else
        cJSON_AddNullToObject(root, "data_dir_name");
    const char *model = authorized ? qry_engine_model_id(srv->engine) : NULL;
    if (model) {
        cJSON *m = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(m, "id", model);
        cJSON *mods = cJSON_AddArrayToObject(m, "modalities");
        unsigned bits = qry_engine_text_modalities(srv->engine);
        for (int k = 0; k < SRCH_MODALITY_COUNT; k++)
            if (bits & (1u << k))
                cJSON_AddItemToArray(mods,
                                     cJSON_CreateString(srch_modality_name((srch_modality)k)));
        cJSON_AddBoolToObject(m, "clip", qry_engine_can_clip(srv->engine));
        cJSON_AddBoolToObject(m, "rerank", qry_engine_can_rerank(srv->engine));
    } else {
        cJSON_AddNullToObject(root, "model");
    }
    cJSON_AddBoolToObject(root, "token_required", srv->token != NULL);
    cJSON_AddBoolToObject(root, "authorized", authorized);
    cJSON_AddNumberToObject(root, "max_upload_bytes", (double)srv->max_upload_bytes);
    return queue_json(rq, 200, root);
}

static void add_string_or_null(cJSON *o, const char *name, const char *text)
{
    if (text && vx_utf8_valid(text, strlen(text)))
        cJSON_AddStringToObject(o, name, text);
    else
        cJSON_AddNullToObject(o, name);
}

static enum MHD_Result handle_libraries(request *rq, st_store *s)
{
    st_library *libs = NULL;
    size_t n = 0;
    vx_err err = {0};
    if (st_library_list(s, &libs, &n, &err)) return queue_vx_error(rq, &err);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "libraries");
    vx_status st = VX_OK;
    for (size_t i = 0; i < n && !st; i++) {
        st_library_stats counts;
        if ((st = st_library_counts(s, libs[i].id, &counts, &err))) break;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)libs[i].id);
        add_string_or_null(o, "name", libs[i].name);
        add_string_or_null(o, "root", libs[i].root);
        cJSON *vids = cJSON_AddObjectToObject(o, "videos");
        for (int k = 0; k < ST_VIDEO_STATUS_COUNT; k++)
            cJSON_AddNumberToObject(vids, st_video_status_name((st_video_status)k),
                                    (double)counts.videos_by_status[k]);
        cJSON_AddNumberToObject(o, "segments", (double)counts.segments);
        cJSON *last = web_jobs_last_run_json(rq->srv->jobs, libs[i].name);
        if (last)
            cJSON_AddItemToObject(o, "last_run", last);
        else
            cJSON_AddNullToObject(o, "last_run");
        /* the catalog's record: runs of `vidx index` too, and of earlier servers */
        st_run run;
        vx_status rst = st_run_last(s, libs[i].id, &run, &err);
        if (rst == VX_OK) {
            cJSON *r = cJSON_AddObjectToObject(o, "last_index_run");
            add_string_or_null(r, "status", run.status);
            cJSON_AddNumberToObject(r, "started_ms", (double)run.started_ms);
            if (run.finished_ms)
                cJSON_AddNumberToObject(r, "finished_ms", (double)run.finished_ms);
            else
                cJSON_AddNullToObject(r, "finished_ms");
            cJSON_AddNumberToObject(r, "videos_done", (double)run.videos_done);
            cJSON_AddNumberToObject(r, "videos_failed", (double)run.videos_failed);
            add_string_or_null(r, "message", run.message);
            st_run_clear(&run);
        } else if (rst == VX_ENOTFOUND) {
            cJSON_AddNullToObject(o, "last_index_run");
        } else {
            st = rst;
        }
        cJSON_AddItemToArray(arr, o);
    }
    st_libraries_free(libs, n);
    if (st) {
        cJSON_Delete(root);
        return queue_vx_error(rq, &err);
    }
    return queue_json(rq, 200, root);
}

static enum MHD_Result handle_reindex(request *rq, st_store *s, const char *body, size_t len)
{
    /* JSON only: a cross-site form or text/plain POST (which browsers send without asking)
     * cannot start work on a loopback server */
    const char *type =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!type || strncasecmp(type, "application/json", 16) ||
        (type[16] && type[16] != ';' && type[16] != ' '))
        return queue_error(rq, 415, "unsupported_media_type",
                           "send the request as Content-Type: application/json");
    const char *library = NULL;
    cJSON *root = NULL;
    if (len) {
        if (!vx_utf8_valid(body, len) || !(root = cJSON_ParseWithLength(body, len)) ||
            !cJSON_IsObject(root)) {
            cJSON_Delete(root);
            return queue_error(rq, 400, "bad_json", "give {\"library\": \"NAME\"} or {} for all");
        }
        const cJSON *lib = cJSON_GetObjectItemCaseSensitive(root, "library");
        if (lib && !cJSON_IsString(lib) && !cJSON_IsNull(lib)) {
            cJSON_Delete(root);
            return queue_error(rq, 400, "bad_request", "library must be a library's name");
        }
        if (cJSON_IsString(lib)) library = lib->valuestring;
    }
    vx_err err = {0};
    enum MHD_Result ret;
    st_library found;
    int64_t job_id;
    int reused;
    if (library && st_library_find(s, library, &found, &err)) {
        ret = err.status == VX_ENOTFOUND
                  ? queue_error(rq, 404, "not_found", "no library named '%.100s'", library)
                  : queue_vx_error(rq, &err);
    } else {
        if (library) st_library_clear(&found);
        if (web_jobs_queue(rq->srv->jobs, library, &job_id, &reused, &err)) {
            ret = err.status == VX_ELIMIT ? queue_error(rq, 429, "too_many_jobs", "%s", err.msg)
                                          : queue_vx_error(rq, &err);
        } else {
            cJSON *out = cJSON_CreateObject();
            cJSON *brief = web_jobs_job_brief(rq->srv->jobs, job_id);
            if (!brief) { /* evicted already: it can only have finished */
                brief = cJSON_CreateObject();
                cJSON_AddNumberToObject(brief, "id", (double)job_id);
                cJSON_AddStringToObject(brief, "state", "done");
            }
            cJSON_AddItemToObject(out, "job", brief);
            ret = queue_json(rq, 202, out);
        }
    }
    cJSON_Delete(root);
    return ret;
}

static enum MHD_Result handle_jobs(request *rq)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "jobs", web_jobs_list_json(rq->srv->jobs));
    return queue_json(rq, 200, root);
}

/* ---- routing ------------------------------------------------------------------------------ */

/* The fields of a multipart search (POST /api/search with a clip), as text; the clip's
 * bytes go to conn_state.body. */
typedef struct form_fields {
    char start_ms[24], end_ms[24], limit[24], rerank[24], page_token[32];
    char modalities[128], library[256];
    int has_clip;
} form_fields;

typedef struct conn_state {
    vx_buf body;
    int too_large;
    int64_t t0_ns;
    size_t cap;         /* body bytes allowed: max_body_bytes, or max_upload_bytes for forms */
    size_t received;    /* body bytes seen (also those discarded) */
    int multipart;      /* POST /api/search as multipart/form-data */
    int bad_form;       /* the form could not be parsed (or a field was too long) */
    int busy;           /* the server's upload budget was spent: 503 */
    size_t reserved;    /* this upload's share of web_server.upload_bytes */
    char bad_field[48]; /* the field that was, for the message */
    struct MHD_PostProcessor *pp;
    form_fields form;
} conn_state;

/* MHD's multipart parser calls this with pieces of each field (off: where the piece goes). */
static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    conn_state *cs = cls;
    if (!key) return MHD_YES;
    if (!strcmp(key, "clip")) {
        cs->form.has_clip = 1;
        if (size && vx_buf_append(&cs->body, data, size, NULL)) {
            cs->too_large = 1; /* out of memory: as good as too large for this server */
            return MHD_NO;
        }
        return MHD_YES;
    }
    static const struct {
        const char *name;
        size_t offset, size;
    } fields[] = {
        {"start_ms", offsetof(form_fields, start_ms), sizeof(((form_fields *)0)->start_ms)},
        {"end_ms", offsetof(form_fields, end_ms), sizeof(((form_fields *)0)->end_ms)},
        {"limit", offsetof(form_fields, limit), sizeof(((form_fields *)0)->limit)},
        {"rerank", offsetof(form_fields, rerank), sizeof(((form_fields *)0)->rerank)},
        {"page_token", offsetof(form_fields, page_token), sizeof(((form_fields *)0)->page_token)},
        {"modalities", offsetof(form_fields, modalities), sizeof(((form_fields *)0)->modalities)},
        {"library", offsetof(form_fields, library), sizeof(((form_fields *)0)->library)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(key, fields[i].name)) continue;
        char *dst = (char *)&cs->form + fields[i].offset;
        if (off + size >= fields[i].size || memchr(data, 0, size)) {
            cs->bad_form = 1;
            snprintf(cs->bad_field, sizeof cs->bad_field, "%s", fields[i].name);
            return MHD_NO;
        }
        memcpy(dst + off, data, size);
        dst[off + size] = 0;
        return MHD_YES;
    }
    return MHD_YES; /* unknown fields are ignored, as unknown JSON fields are */
}

static enum MHD_Result handle_search_form(request *rq, st_store *s, conn_state *cs)
{
    form_fields *f = &cs->form;
    if (cs->bad_form)
        return queue_error(rq, 400, "bad_form",
                           *cs->bad_field ? "the form field '%s' is too long or not text"
                                          : "the multipart/form-data body is malformed%s",
                           cs->bad_field);
    if (!f->has_clip || !cs->body.len)
        return queue_error(rq, 400, "bad_form", "give the clip as a file field named 'clip'");
    const char *texts[] = {f->start_ms,   f->end_ms,     f->limit,  f->rerank,
                           f->page_token, f->modalities, f->library};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!vx_utf8_valid(texts[i], strlen(texts[i])))
            return queue_error(rq, 400, "bad_encoding", "a form field is not valid UTF-8");
    search_args a;
    search_args_init(&a);
    a.q.kind = QRY_CLIP_MEMORY;
    a.q.clip_data = cs->body.data;
    a.q.clip_size = cs->body.len;
    a.start_ms = f->start_ms;
    a.end_ms = f->end_ms;
    a.limit = *f->limit ? f->limit : NULL;
    a.num[4] = f->rerank;
    a.page_token = f->page_token;
    a.modalities = f->modalities;
    a.library = f->library;
    return run_search(rq, s, &a);
}

/* Matches "/api/<kind>/<id>[/<tail>]" exactly; returns 1 with *id. */
static int match_id_route(const char *url, const char *prefix, const char *tail, int64_t *id)
{
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl)) return 0;
    const char *p = url + pl;
    size_t n = strcspn(p, "/");
    if (!parse_id(p, n, id)) return 0;
    p += n;
    if (!tail) return *p == 0;
    return !strcmp(p, tail);
}

static int token_ok(web_server *srv, struct MHD_Connection *conn)
{
    if (!srv->token) return 1;
    const char *given = NULL;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth && !strncasecmp(auth, "Bearer ", 7)) given = auth + 7;
    if (!given) given = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    if (!given) return 0;
    /* compare without an early exit, so timing says nothing of the token */
    size_t a = strlen(given), b = strlen(srv->token);
    unsigned diff = (unsigned)(a != b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned)(unsigned char)(i < a ? given[i] : 0) ^ (unsigned char)srv->token[i];
    return diff == 0;
}

static route route_of(const char *url, int64_t *id)
{
    if (!strcmp(url, "/healthz")) return R_HEALTHZ;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    if (!strcmp(url, "/api/search")) return R_SEARCH;
    if (!strcmp(url, "/api/videos")) return R_VIDEOS;
    if (match_id_route(url, "/api/videos/", NULL, id)) return R_VIDEO;
    if (match_id_route(url, "/api/videos/", "/stream", id)) return R_STREAM;
    if (match_id_route(url, "/api/segments/", "/thumbnail", id)) return R_THUMBNAIL;
    if (match_id_route(url, "/api/segments/", "/similar", id)) return R_SIMILAR;
    if (!strcmp(url, "/api/info")) return R_INFO;
    if (!strcmp(url, "/api/libraries")) return R_LIBRARIES;
    if (!strcmp(url, "/api/reindex")) return R_REINDEX;
    if (!strcmp(url, "/api/jobs")) return R_JOBS;
    return R_OTHER;
}


static enum MHD_Result dispatch(request *rq, const char *url, int64_t id, conn_state *cs)
{
    web_server *srv = rq->srv;
    int is_get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
    int is_post = !strcmp(rq->method, "POST");
    enum MHD_Result ui_ret;
    if (rq->route == R_OTHER && is_get && (rq->status = web_ui_serve(rq->conn, url, &ui_ret)))
        return ui_ret;
    if (rq->route == R_OTHER) return queue_error(rq, 404, "not_found", "no such endpoint");
    if (rq->route == R_REINDEX ? !is_post : !(is_get || (is_post && rq->route == R_SEARCH)))
        return queue_error(rq, 405, "method_not_allowed", "%s is not allowed here", rq->method);
    if (cs->too_large)
        return queue_error(rq, 413, "body_too_large", "the request body is over %zu bytes%s",
                           cs->cap,
                           cs->multipart ? " (vidx serve --max-upload sets the clip limit)" : "");
    if (cs->busy) {
        rq->retry_after_s = 5;
        return queue_error(rq, 503, "busy",
                           "too many clips are being uploaded at once; try again shortly");
    }
    if (cs->pp) {
        /* MHD_NO here: the body ended inside a part */
        if (MHD_destroy_post_processor(cs->pp) != MHD_YES) cs->bad_form = 1;
        cs->pp = NULL;
    }
    int authorized = token_ok(srv, rq->conn);
    if (rq->route == R_INFO) return handle_info(rq, authorized);
    if (rq->route != R_HEALTHZ && !authorized)
        return queue_error(rq, 401, "unauthorized",
                           "this server needs a token: Authorization: Bearer TOKEN");
    if (rq->route == R_HEALTHZ) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "status", "ok");
        return queue_json(rq, 200, root);
    }
    int bad = 0;
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, check_arg_utf8, &bad);
    if (bad) return queue_error(rq, 400, "bad_encoding", "a query argument is not valid UTF-8");
    int slot;
    st_store *s = store_borrow(srv, &slot);
    enum MHD_Result ret;
    switch (rq->route) {
    case R_METRICS:
        ret = handle_metrics(rq, s);
        break;
    case R_SEARCH:
        ret = !is_post ? handle_search_get(rq, s)
              : cs->multipart
                  ? handle_search_form(rq, s, cs)
                  : handle_search_post(rq, s, cs->body.data ? cs->body.data : "", cs->body.len);
        break;
    case R_LIBRARIES:
        ret = handle_libraries(rq, s);
        break;
    case R_REINDEX:
        ret = handle_reindex(rq, s, cs->body.data ? cs->body.data : "", cs->body.len);
        break;
    case R_JOBS:
        ret = handle_jobs(rq);
        break;
    case R_VIDEOS:
        ret = handle_videos(rq, s);
        break;
    case R_VIDEO:
        ret = handle_video(rq, s, id);
        break;
    case R_STREAM:
        ret = handle_stream(rq, s, id);
        break;
    case R_THUMBNAIL:
        ret = handle_thumbnail(rq, s, id);
        break;
    case R_SIMILAR:
        ret = handle_similar(rq, s, id);
        break;
    default:
        ret = queue_error(rq, 404, "not_found", "no such endpoint");
        break;
    }
    store_return(srv, slot);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    web_server *srv = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs))) return MHD_NO;
        cs->t0_ns = vx_now_ns();
        *con_cls = cs;
        cs->cap = srv->max_body_bytes;
        const char *type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!strcmp(method, "POST") && !strcmp(url, "/api/search") && type &&
            !strncasecmp(type, "multipart/form-data", 19)) {
            /* a clip upload: its own (larger) cap, parsed as it arrives so only the clip's
             * bytes are kept */
            cs->multipart = 1;
            cs->cap = srv->max_upload_bytes;
            cs->pp = MHD_create_post_processor(conn, 16 * 1024, form_field, cs);
            if (!cs->pp) cs->bad_form = 1; /* no boundary */
        }
        /* refuse a declared oversized body before reading it */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)cs->cap) cs->too_large = 1;
        /* nor hold an upload for a client that may not search: answer 401 at once */
        if (!cs->too_large && !(cs->multipart && !token_ok(srv, conn))) return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        cs->received += n;
        if (!cs->too_large && cs->received > cs->cap) {
            cs->too_large = 1; /* the rest is read and dropped, then 413 */
            vx_buf_free(&cs->body);
            if (cs->pp) MHD_destroy_post_processor(cs->pp);
            cs->pp = NULL;
        }
        if (!cs->too_large && cs->multipart && !cs->busy) {
            if (atomic_fetch_add(&srv->upload_bytes, n) + n > srv->upload_budget) {
                atomic_fetch_sub(&srv->upload_bytes, n + cs->reserved);
                cs->reserved = 0;
                cs->busy = 1; /* the rest is read and dropped, then 503 */
                vx_buf_free(&cs->body);
                if (cs->pp) MHD_destroy_post_processor(cs->pp);
                cs->pp = NULL;
            } else {
                cs->reserved += n;
                if (cs->pp && !cs->bad_form && MHD_post_process(cs->pp, upload_data, n) != MHD_YES)
                    cs->bad_form = 1;
            }
        } else if (cs->multipart) {
            /* dropped */
        } else if (!cs->too_large && vx_buf_append(&cs->body, upload_data, n, NULL)) {
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&srv->in_flight, 1);
    request rq = {.srv = srv, .conn = conn, .method = method, .route = R_OTHER};
    int64_t id = 0;
    /* MHD hands the path percent-decoded; routes accept digits only where an id goes */
    rq.route = route_of(url, &id);
    if (!vx_utf8_valid((const char *)url, strlen(url))) rq.route = R_OTHER;
    enum MHD_Result ret = dispatch(&rq, url, id, cs);
    metrics_record(srv, rq.route, rq.status ? rq.status : 500, cs->t0_ns);
    atomic_fetch_sub(&srv->in_flight, 1);
    return ret;
}

/* Percent-decoding of the path and arguments, as MHD's own except that %00 becomes the byte
 * 0xff: an escaped NUL must not cut a path or argument short ("/api/videos/1%00/x" would read
 * as "/api/videos/1"); 0xff is never valid UTF-8, so such a path is 404 and an argument 400. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            unsigned char c = (unsigned char)(hi << 4 | lo);
            *w++ = (char)(c ? c : 0xff);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_state *cs = *con_cls;
    if (!cs) return;
    web_server *srv = cls;
    atomic_fetch_sub(&srv->upload_bytes, cs->reserved);
    if (cs->pp) MHD_destroy_post_processor(cs->pp);
    vx_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void server_free(web_server *srv)
{
    if (!srv) return;
    web_jobs_stop(srv->jobs);
    media_play_cache_close(srv->play_cache);
    qry_engine_close(srv->engine);
    free(srv->version);
    free(srv->data_dir_name);
    for (int i = 0; i < srv->store_count; i++)
        st_close(srv->stores[i]);
    st_index_cache_free(srv->index_cache); /* after the last store that used it */
    free(srv->stores);
    free(srv->free_stack);
    free(srv->token);
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    pthread_mutex_destroy(&srv->pool_lock);
    pthread_cond_destroy(&srv->pool_cond);
    pthread_mutex_destroy(&srv->metrics_lock);
    free(srv);
}

/* Binds "HOST:PORT" / "[HOST]:PORT"; a host beyond loopback needs a token. */
static vx_status bind_listen(const char *listen_at, int has_token, int *fd_out, int *port_out,
                             int *ipv6, vx_err *err)
{
    char host[256];
    const char *colon;
    if (listen_at[0] == '[') {
        const char *close_b = strchr(listen_at, ']');
        if (!close_b || close_b[1] != ':' || (size_t)(close_b - listen_at - 1) >= sizeof host)
            return vx_fail(err, VX_EINVAL, "--listen '%s': give [IPV6]:PORT", listen_at);
        memcpy(host, listen_at + 1, (size_t)(close_b - listen_at - 1));
        host[close_b - listen_at - 1] = 0;
        colon = close_b + 1;
    } else {
        colon = strrchr(listen_at, ':');
        if (!colon || (size_t)(colon - listen_at) >= sizeof host || colon == listen_at)
            return vx_fail(err, VX_EINVAL, "--listen '%s': give HOST:PORT, e.g. 127.0.0.1:8080",
                           listen_at);
        memcpy(host, listen_at, (size_t)(colon - listen_at));
        host[colon - listen_at] = 0;
    }
    int64_t port;
    if (vx_parse_int(colon + 1, 0, 65535, "--listen port", &port, err))
        return err ? err->status : VX_EINVAL;
    if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof *a4;
        *ipv6 = 0;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof *a6;
        *ipv6 = 1;
    } else {
        return vx_fail(err, VX_EINVAL, "--listen '%s': the host must be an IP address or localhost",
                       listen_at);
    }
    if (!web_host_is_loopback(host) && !has_token)
        return vx_fail(err, VX_EINVAL,
                       "--listen %s is beyond loopback: give a token (--token or VIDX_TOKEN) so "
                       "only those who know it can search and watch",
                       listen_at);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return vx_fail(err, VX_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128)) {
        int e = errno;
        close(fd);
        return vx_fail(err, VX_EIO, "cannot listen on %s: %s", listen_at, strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &gl);
    *port_out = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port);
    *fd_out = fd;
    return VX_OK;
}

vx_status web_server_start(const web_options *opts, web_server **out, vx_err *err)
{
    *out = NULL;
    web_options o = opts ? *opts : web_options_default();
    web_options d = web_options_default();
    if (!o.listen) o.listen = d.listen;
    if (o.threads <= 0) o.threads = d.threads;
    if (o.threads > 64)
        return vx_fail(err, VX_EINVAL, "--threads must be 1..64 (got %d)", o.threads);
    if (o.connection_limit <= 0) o.connection_limit = d.connection_limit;
    if (o.timeout_s <= 0) o.timeout_s = d.timeout_s;
    if (!o.max_body_bytes) o.max_body_bytes = d.max_body_bytes;
    if (!o.data_dir) return vx_fail(err, VX_EINVAL, "no data directory");
    if (o.token && !*o.token) o.token = NULL;
    web_server *srv = calloc(1, sizeof *srv);
    if (!srv) return vx_fail(err, VX_ENOMEM, "out of memory");
    srv->listen_fd = -1;
    pthread_mutex_init(&srv->pool_lock, NULL);
    pthread_cond_init(&srv->pool_cond, NULL);
    pthread_mutex_init(&srv->metrics_lock, NULL);
    srv->max_body_bytes = o.max_body_bytes;
    srv->max_upload_bytes = o.max_upload_bytes ? o.max_upload_bytes : d.max_upload_bytes;
    srv->upload_budget =
        srv->max_upload_bytes > SIZE_MAX / 4 ? SIZE_MAX : srv->max_upload_bytes * 4;
    vx_status st;
    int ipv6 = 0;
    if ((st = bind_listen(o.listen, o.token != NULL, &srv->listen_fd, &srv->port, &ipv6, err)))
        goto fail;
    if (o.token && !(srv->token = strdup(o.token))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto fail;
    }
    srv->stores = calloc((size_t)o.threads, sizeof *srv->stores);
    srv->free_stack = calloc((size_t)o.threads, sizeof *srv->free_stack);
    if (!srv->stores || !srv->free_stack) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto fail;
    }
    if ((st = st_index_cache_create(&srv->index_cache, err))) goto fail;
    st_options so = st_options_default();
    so.mode = ST_READ;
    so.index_cache = srv->index_cache;
    for (int i = 0; i < o.threads; i++) {
        if ((st = st_open(o.data_dir, &so, &srv->stores[i], err))) goto fail;
        srv->store_count++;
        srv->free_stack[srv->free_count++] = i;
    }
    {
        /* /api/info names the data directory by its last component only */
        const char *end = o.data_dir + strlen(o.data_dir);
        while (end > o.data_dir + 1 && end[-1] == '/')
            end--;
        const char *base = end;
        while (base > o.data_dir && base[-1] != '/')
            base--;
        srv->data_dir_name = strndup(base, (size_t)(end - base));
        srv->version = strdup(o.version ? o.version : "unknown");
        if (!srv->data_dir_name || !srv->version) {
            st = vx_fail(err, VX_ENOMEM, "out of memory");
            goto fail;
        }
    }
    qry_options qo = qry_options_default();
    qo.model_dir = o.model_dir && *o.model_dir ? o.model_dir : NULL;
    if ((st = qry_engine_open(&qo, &srv->engine, err))) goto fail;
    web_jobs_options jo = {o.data_dir, qo.model_dir, o.reindex_every_ms};
    if ((st = web_jobs_start(&jo, &srv->jobs, err))) goto fail;
    if (!o.play_cache_dir || strcmp(o.play_cache_dir, "-")) {
        char *dir = o.play_cache_dir ? strdup(o.play_cache_dir)
                                     : vx_asprintf(NULL, "%s/playback", o.data_dir);
        media_play_cache_options mo = media_play_cache_defaults();
        if (o.play_cache_bytes > 0) mo.limit_bytes = o.play_cache_bytes;
        vx_err perr = {0};
        if (!dir || media_play_cache_open(dir, &mo, &srv->play_cache, &perr)) {
            /* a read-only data directory still serves the files browsers play as they are */
            vx_log(VX_LOG_WARN, "no playback cache (%s): videos are streamed as they are",
                   dir ? perr.msg : "out of memory");
            srv->play_cache = NULL;
        }
        free(dir);
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    if (ipv6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o.threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o.connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o.timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        st = vx_fail(err, VX_EIO, "cannot start the HTTP server on %s", o.listen);
        goto fail;
    }
    srv->listen_fd = -1; /* MHD owns it now (until MHD_quiesce_daemon hands it back) */
    *out = srv;
    return VX_OK;
fail:
    server_free(srv);
    return st;
}

void web_server_stop(web_server *srv)
{
    if (!srv) return;
    web_jobs_request_stop(srv->jobs); /* the job in flight winds down meanwhile */
    if (srv->daemon) {
        /* stop accepting; requests in flight finish (bounded wait), then the threads stop */
        MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
        if (fd != MHD_INVALID_SOCKET) close(fd);
        for (int i = 0; i < 500; i++) {
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
            if (atomic_load(&srv->in_flight) == 0 && (!info || info->num_connections == 0)) break;
            usleep(10 * 1000);
        }
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    server_free(srv);
}
