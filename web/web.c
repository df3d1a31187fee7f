/* web/ — the HTTP JSON API over libmicrohttpd: routing, the read-only store pool, JSON errors,
 * paging tokens, media streaming with Range, thumbnails, metrics and the access token.
 * Every response is built here from catalog rows: no request text ever becomes a file path. */
#define _GNU_SOURCE
#include "web.h"

#include "srch.h"
#include "st.h"

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
    R_OTHER,
    R_COUNT
} route;

static const char *const route_names[R_COUNT] = {
    "healthz", "metrics", "search", "videos", "video", "stream", "thumbnail", "similar", "other"};

static const int metric_statuses[] = {200, 206, 304, 400, 401, 404, 405, 409, 413, 416, 500};
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
    int store_count;
    int free_count;
    int *free_stack;
    /* metrics */
    pthread_mutex_t metrics_lock;
    uint64_t requests[R_COUNT][N_STATUS];
    uint64_t latency_bucket[N_BUCKETS]; /* non-cumulative counts */
    uint64_t latency_count;
    double latency_sum_s;
    atomic_int in_flight;
};

web_options web_options_default(void)
{
    web_options o = {0};
    o.listen = "127.0.0.1:8080";
    o.threads = 4;
    o.connection_limit = 256;
    o.timeout_s = 10;
    o.max_body_bytes = 64 * 1024;
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
    int status; /* what was queued */
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
                                rq->route == R_SEARCH ? "GET, HEAD, POST" : "GET, HEAD");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
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

/* Writes results [offset, offset+limit) of r as the one result schema plus page_info. */
static enum MHD_Result queue_results_page(request *rq, srch_results *r, int64_t offset, int limit)
{
    int64_t total = (int64_t)r->count;
    srch_results view = *r;
    view.items = r->items + (offset < total ? offset : total);
    view.count = (size_t)(offset < total ? (total - offset < limit ? total - offset : limit) : 0);
    vx_err err = {0};
    char *text = srch_results_json(&view, 0, &err);
    if (!text) return queue_error(rq, 500, "internal", "%s", err.msg);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return queue_error(rq, 500, "internal", "cannot build the response");
    int64_t next = offset + (int64_t)view.count;
    cJSON_AddItemToObject(root, "page_info", page_info(next < total ? next : -1, total));
    return queue_json(rq, 200, root);
}

/* Keeps only the results whose video is in library_id. */
static vx_status filter_library(st_store *s, srch_results *r, int64_t library_id, vx_err *err)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->count; i++) {
        st_video v;
        vx_status st = st_video_get(s, r->items[i].video.id, &v, err);
        if (st && st != VX_ENOTFOUND) return st;
        int keep = !st && v.library_id == library_id;
        if (!st) st_video_clear(&v);
        if (keep) {
            r->items[kept] = r->items[i];
            r->items[kept].rank = (int)kept + 1;
            kept++;
        } else {
            srch_result *x = &r->items[i];
            free(x->video.path);
            free(x->video.title);
            free(x->match_source);
            free(x->snippet);
            free(x->highlights);
            for (size_t k = 0; k < x->source_count; k++)
                free(x->sources[k]);
            free(x->sources);
            free(x->segment_ids);
        }
    }
    r->count = kept;
    return VX_OK;
}

static enum MHD_Result handle_search(request *rq, st_store *s, const char *q, const char *limit_s,
                                     int limit_n, const char *token, const char *modalities,
                                     const char *library)
{
    int limit = limit_s ? parse_limit(limit_s, 10, 1000) : limit_n;
    if (limit <= 0) return queue_error(rq, 400, "bad_request", "limit must be a number 1..1000");
    int64_t offset;
    if (!page_token_parse(token, &offset))
        return queue_error(rq, 400, "bad_page_token", "page_token is not one this server gave");
    if (!q || !*q) return queue_error(rq, 400, "bad_request", "give the words to search for (q)");
    if (modalities && *modalities) {
        /* comma-separated; only lexical search is served by this milestone */
        const char *p = modalities;
        while (*p) {
            size_t n = strcspn(p, ",");
            if (!(n == 7 && !strncmp(p, "lexical", 7)) && n > 0)
                return queue_error(rq, 400, "bad_modality",
                                   "modality '%.*s' is not available: this server searches "
                                   "lexical only",
                                   (int)(n > 40 ? 40 : n), p);
            p += n;
            if (*p == ',') p++;
        }
    }
    int64_t library_id = 0;
    vx_err err = {0};
    if (library && *library) {
        st_library lib;
        if (st_library_find(s, library, &lib, &err))
            return err.status == VX_ENOTFOUND
                       ? queue_error(rq, 404, "not_found", "no library named '%.100s'", library)
                       : queue_vx_error(rq, &err);
        library_id = lib.id;
        st_library_clear(&lib);
    }
    srch_options o = srch_options_default();
    o.limit = 1000; /* results are paged from the ranked list */
    srch_results r;
    if (srch_search(s, q, &o, &r, &err)) return queue_vx_error(rq, &err);
    if (library_id && filter_library(s, &r, library_id, &err)) {
        srch_results_free(&r);
        return queue_vx_error(rq, &err);
    }
    enum MHD_Result ret = queue_results_page(rq, &r, offset, limit);
    srch_results_free(&r);
    return ret;
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
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(query, "text");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(root, "limit");
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(root, "page_token");
    const cJSON *library = cJSON_GetObjectItemCaseSensitive(root, "library");
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(root, "modalities");
    enum MHD_Result ret;
    int limit_n = 10;
    if (!cJSON_IsObject(query) || !cJSON_IsString(text)) {
        ret = queue_error(rq, 400, "bad_request", "give {\"query\": {\"text\": \"...\"}}");
    } else if (limit &&
               (!cJSON_IsNumber(limit) || limit->valuedouble < 1 || limit->valuedouble > 1000 ||
                limit->valuedouble != (double)(int)limit->valuedouble)) {
        ret = queue_error(rq, 400, "bad_request", "limit must be a number 1..1000");
    } else if ((token && !cJSON_IsString(token) && !cJSON_IsNull(token)) ||
               (library && !cJSON_IsString(library)) || (mods && !cJSON_IsArray(mods))) {
        ret = queue_error(rq, 400, "bad_request",
                          "page_token and library are strings, modalities an array");
    } else {
        if (limit) limit_n = (int)limit->valuedouble;
        char modbuf[256] = "";
        const cJSON *m;
        int bad = 0;
        cJSON_ArrayForEach(m, mods)
        {
            if (!cJSON_IsString(m) || strlen(modbuf) + strlen(m->valuestring) + 2 > sizeof modbuf)
                bad = 1;
            else {
                if (*modbuf) strcat(modbuf, ",");
                strcat(modbuf, m->valuestring);
            }
        }
        if (bad)
            ret = queue_error(rq, 400, "bad_request", "modalities must be an array of names");
        else
            ret = handle_search(rq, s, text->valuestring, NULL, limit_n,
                                cJSON_IsString(token) ? token->valuestring : NULL, modbuf,
                                cJSON_IsString(library) ? library->valuestring : NULL);
    }
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
static enum MHD_Result queue_file(request *rq, int fd, const char *type)
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
    } else {
        int fd = open(v.location, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            ret = queue_error(rq, 404, "not_found", "video %" PRId64 "'s file is gone", id);
        else
            ret = queue_file(rq, fd, mime_of(v.location));
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
            ret = queue_file(rq, fd, "image/jpeg");
    }
    st_segment_clear(&seg);
    return ret;
}

static enum MHD_Result handle_similar(request *rq, st_store *s, int64_t id)
{
    int limit = parse_limit(arg(rq, "limit"), 10, 1000);
    if (limit <= 0) return queue_error(rq, 400, "bad_request", "limit must be a number 1..1000");
    int64_t offset;
    if (!page_token_parse(arg(rq, "page_token"), &offset))
        return queue_error(rq, 400, "bad_page_token", "page_token is not one this server gave");
    srch_options o = srch_options_default();
    /* as search: the best 1000 ranges are ranked and paged, drawn from the 2000 nearest
     * segments per index (bounds the catalog lookups of one request) */
    o.limit = 1000;
    o.candidates = 2000;
    srch_results r;
    vx_err err = {0};
    if (srch_similar(s, id, &o, &r, &err)) {
        if (err.status == VX_ENOTFOUND)
            return queue_error(rq, 404, "not_found", "no segment with id %" PRId64, id);
        return queue_vx_error(rq, &err);
    }
    enum MHD_Result ret = queue_results_page(rq, &r, offset, limit);
    srch_results_free(&r);
    return ret;
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
    if (err.status || !b.data) {
        vx_buf_free(&b);
        return queue_error(rq, 500, "internal", "%s", err.msg[0] ? err.msg : "out of memory");
    }
    return queue_buffer(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
}

/* ---- routing ------------------------------------------------------------------------------ */

typedef struct conn_state {
    vx_buf body;
    int too_large;
    int64_t t0_ns;
} conn_state;

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
    return R_OTHER;
}

static enum MHD_Result dispatch(request *rq, const char *url, int64_t id, conn_state *cs)
{
    web_server *srv = rq->srv;
    int is_get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
    int is_post = !strcmp(rq->method, "POST");
    if (rq->route == R_OTHER) return queue_error(rq, 404, "not_found", "no such endpoint");
    if (!(is_get || (is_post && rq->route == R_SEARCH)))
        return queue_error(rq, 405, "method_not_allowed", "%s is not allowed here", rq->method);
    if (cs->too_large)
        return queue_error(rq, 413, "body_too_large", "the request body is over %zu bytes",
                           srv->max_body_bytes);
    if (rq->route != R_HEALTHZ && !token_ok(srv, rq->conn))
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
        ret = is_post
                  ? handle_search_post(rq, s, cs->body.data ? cs->body.data : "", cs->body.len)
                  : handle_search(rq, s, arg(rq, "q"), arg(rq, "limit"), 10, arg(rq, "page_token"),
                                  arg(rq, "modalities"), arg(rq, "library"));
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
        /* refuse a declared oversized body before reading it */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && (size_t)strtoull(cl, NULL, 10) > srv->max_body_bytes) cs->too_large = 1;
        if (!cs->too_large) return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cs->too_large) {
            if (cs->body.len + *upload_data_size > srv->max_body_bytes) {
                cs->too_large = 1;
                vx_buf_free(&cs->body);
            } else if (vx_buf_append(&cs->body, upload_data, *upload_data_size, NULL)) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&srv->in_flight, 1);
    request rq = {srv, conn, method, R_OTHER, 0};
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
    vx_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void server_free(web_server *srv)
{
    if (!srv) return;
    for (int i = 0; i < srv->store_count; i++)
        st_close(srv->stores[i]);
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
    st_options so = st_options_default();
    so.mode = ST_READ;
    for (int i = 0; i < o.threads; i++) {
        if ((st = st_open(o.data_dir, &so, &srv->stores[i], err))) goto fail;
        srv->store_count++;
        srv->free_stack[srv->free_count++] = i;
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
