/* indexer/idx_http.c — HTTP(S) archives through libcurl: crawling generated directory
 * listings and fetching files to temporary local copies. See idx_http.h. */
#define _GNU_SOURCE /* strcasestr, mkstemps */
#include "idx_http.h"
#include "idx_library.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int idx__is_url(const char *s)
{
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

#ifndef VIDX_HAVE_CURL

vx_status idx__http_crawl(const char *root, const idx_crawl_options *co, idx_entry_fn fn, void *ctx,
                          idx_crawl_stats *stats, vx_err *err)
{
    (void)co, (void)fn, (void)ctx, (void)stats;
    return vx_fail(err, VX_EUNSUPPORTED,
                   "%s: this vidx was built without libcurl and cannot crawl HTTP(S) archives",
                   root);
}

vx_status idx__http_fetch(const char *url, int64_t expect_size, const idx__http_limits *lim,
                          char **out_path, vx_err *err)
{
    (void)expect_size, (void)lim;
    *out_path = NULL;
    return vx_fail(err, VX_EUNSUPPORTED, "%s: this vidx was built without libcurl", url);
}

vx_status idx__http_fetch_ends(const char *url, int64_t size, int64_t span,
                               const idx__http_limits *lim, char **out_path, vx_err *err)
{
    (void)size, (void)span;
    return idx__http_fetch(url, -1, lim, out_path, err);
}

#else

#include <curl/curl.h>

/* Listing pages larger than this are cut (a listing of ~100k files). */
#define LISTING_MAX_BYTES (16 * 1024 * 1024)
#define DEFAULT_TIMEOUT_MS 30000
#define RETRY_BASE_MS 250
#define RETRY_MAX_MS 8000

static idx__http_limits limits_or_default(const idx__http_limits *lim)
{
    idx__http_limits l = {DEFAULT_TIMEOUT_MS, 3, 0};
    if (lim) l = *lim;
    if (l.timeout_ms <= 0) l.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (l.retries < 0) l.retries = 0;
    return l;
}

/* download: a whole file of any size, limited by stalls (under 1 byte/s for the timeout)
 * rather than by a total time; otherwise a small request limited as a whole. */
static CURL *new_handle(const char *url, char *errbuf, const idx__http_limits *lim, int download)
{
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)lim->timeout_ms);
    if (download) {
        long stall_s = (long)((lim->timeout_ms + 999) / 1000);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
        if (lim->max_size_bytes > 0)
            curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)lim->max_size_bytes);
    } else {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)lim->timeout_ms);
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "vidx-indexer");
    return h;
}

/* Worth another try: the server's trouble (5xx, 429) or the network's (timeouts, resets). */
static int retryable(CURL *h, CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return 1;
    case CURLE_HTTP_RETURNED_ERROR: {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        return code >= 500 || code == 429;
    }
    default:
        return 0;
    }
}

/* curl_easy_perform with up to lim->retries more tries, waiting 250 ms, 500 ms, … (at most
 * 8 s) between them. reset (may be NULL) discards what a failed try wrote; nonzero stops. */
static CURLcode perform(CURL *h, const char *url, const idx__http_limits *lim, int (*reset)(void *),
                        void *arg)
{
    int64_t wait_ms = RETRY_BASE_MS;
    for (int attempt = 0;; attempt++) {
        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK || attempt >= lim->retries || !retryable(h, rc)) return rc;
        vx_log(VX_LOG_INFO, "%s: %s; try %d of %d in %lld ms", url, curl_easy_strerror(rc),
               attempt + 2, lim->retries + 1, (long long)wait_ms);
        struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        wait_ms = wait_ms * 2 < RETRY_MAX_MS ? wait_ms * 2 : RETRY_MAX_MS;
        if (reset && reset(arg)) return rc;
    }
}

static vx_status curl_fail(vx_err *err, CURLcode rc, const char *errbuf, const char *url)
{
    return vx_fail(err, rc == CURLE_OUT_OF_MEMORY ? VX_ENOMEM : VX_EIO, "%s: %s", url,
                   errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* ---- fetching a page into memory ---------------------------------------------------------- */

static size_t to_buf(char *data, size_t size, size_t n, void *arg)
{
    vx_buf *b = arg;
    size_t len = size * n;
    if (b->len + len > LISTING_MAX_BYTES) return 0; /* aborts the transfer */
    return vx_buf_append(b, data, len, NULL) == VX_OK ? len : 0;
}

static int reset_buf(void *arg)
{
    ((vx_buf *)arg)->len = 0;
    return 0;
}

static vx_status get_page(const char *url, const idx__http_limits *lim, vx_buf *out, vx_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = new_handle(url, errbuf, lim, 0);
    if (!h) return vx_fail(err, VX_ENOMEM, "%s: cannot create a libcurl handle", url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = perform(h, url, lim, reset_buf, out);
    vx_status st = rc == CURLE_OK ? VX_OK : curl_fail(err, rc, errbuf, url);
    curl_easy_cleanup(h);
    if (!st && vx_buf_append(out, "", 1, err)) st = VX_ENOMEM; /* NUL-terminate */
    return st;
}

/* What a HEAD learnt. */
typedef struct head_result {
    int64_t size;     /* -1 when the server does not say */
    int64_t mtime_ms; /* 0 when the server does not say */
    char *etag;       /* malloc'd; NULL when none */
    int not_modified; /* 304, or Last-Modified not after If-Modified-Since */
} head_result;

/* Keeps the ETag of the last response (a redirect's headers come first). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    head_result *r = arg;
    size_t len = size * n;
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
        free(r->etag);
        r->etag = NULL;
    } else if (len > 5 && !strncasecmp(data, "etag:", 5)) {
        const char *v = data + 5, *end = data + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        free(r->etag);
        r->etag = end > v && end - v < 512 ? strndup(v, (size_t)(end - v)) : NULL;
    }
    return len;
}

/* HEAD, conditional when the caller stored validators (stored_etag, else stored_mtime_ms). */
static vx_status head_file(const char *url, const idx__http_limits *lim, const char *stored_etag,
                           int64_t stored_mtime_ms, head_result *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    out->size = -1;
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = new_handle(url, errbuf, lim, 0);
    if (!h) return vx_fail(err, VX_ENOMEM, "%s: cannot create a libcurl handle", url);
    struct curl_slist *headers = NULL;
    char *inm = NULL;
    if (stored_etag) {
        if (!(inm = vx_asprintf(err, "If-None-Match: %s", stored_etag)) ||
            !(headers = curl_slist_append(NULL, inm))) {
            free(inm);
            curl_easy_cleanup(h);
            return vx_fail(err, VX_ENOMEM, "out of memory");
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    } else if (stored_mtime_ms > 0) {
        curl_easy_setopt(h, CURLOPT_TIMECONDITION, (long)CURL_TIMECOND_IFMODSINCE);
        curl_easy_setopt(h, CURLOPT_TIMEVALUE_LARGE, (curl_off_t)(stored_mtime_ms / 1000));
    }
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
    CURLcode rc = perform(h, url, lim, NULL, NULL);
    vx_status st = VX_OK;
    if (rc != CURLE_OK) {
        st = curl_fail(err, rc, errbuf, url);
        free(out->etag);
        out->etag = NULL;
    } else {
        curl_off_t len = -1, t = -1;
        long code = 0, unmet = 0;
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        curl_easy_getinfo(h, CURLINFO_FILETIME_T, &t);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_CONDITION_UNMET, &unmet);
        out->size = len >= 0 ? (int64_t)len : -1;
        out->mtime_ms = t >= 0 ? (int64_t)t * 1000 : 0;
        out->not_modified = code == 304 || ((stored_etag || stored_mtime_ms > 0) && unmet);
    }
    curl_slist_free_all(headers);
    free(inm);
    curl_easy_cleanup(h);
    return st;
}

/* Adds a location the crawl could not read to stats->unreadable (the run keeps its rows). */
static vx_status add_unreadable(idx_crawl_stats *stats, const char *location, vx_err *err)
{
    stats->errors++;
    char *copy = vx_strdup(location, err);
    char **grown =
        copy ? realloc(stats->unreadable, (stats->unreadable_count + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        return vx_fail(err, VX_ENOMEM, "out of memory crawling");
    }
    stats->unreadable = grown;
    stats->unreadable[stats->unreadable_count++] = copy;
    return VX_OK;
}

/* ---- listing pages ------------------------------------------------------------------------ */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The last path component of url (without a trailing '/'), percent-decoded, into out. */
static void last_name(const char *url, char *out, size_t size)
{
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && url[start - 1] != '/')
        start--;
    size_t o = 0;
    for (size_t i = start; i < len && o + 1 < size; i++) {
        if (url[i] == '%' && i + 2 < len && hexval(url[i + 1]) >= 0 && hexval(url[i + 2]) >= 0) {
            out[o++] = (char)(hexval(url[i + 1]) * 16 + hexval(url[i + 2]));
            i += 2;
        } else {
            out[o++] = url[i];
        }
    }
    out[o] = '\0';
}

/* scheme://host[:port] of url, as a length. */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p) return 0;
    p += 3;
    const char *slash = strchr(p, '/');
    return slash ? (size_t)(slash - url) : strlen(url);
}

/* Resolves href found on the page at dir_url (which ends in '/'); NULL when it is not a link
 * below root. Drops ?query and #fragment; decodes &amp;. */
static char *resolve(const char *root, const char *dir_url, const char *href, size_t href_len)
{
    char raw[4096];
    size_t n = 0;
    for (size_t i = 0; i < href_len && n + 1 < sizeof raw; i++) {
        if (href[i] == '?' || href[i] == '#') break;
        if (!strncmp(href + i, "&amp;", 5) && i + 5 <= href_len) {
            raw[n++] = '&';
            i += 4;
        } else {
            raw[n++] = href[i];
        }
    }
    raw[n] = '\0';
    if (!raw[0] || strstr(raw, "..") || !strncasecmp(raw, "mailto:", 7) ||
        !strncasecmp(raw, "javascript:", 11))
        return NULL;
    char *abs;
    if (idx__is_url(raw))
        abs = vx_asprintf(NULL, "%s", raw);
    else if (raw[0] == '/')
        abs = vx_asprintf(NULL, "%.*s%s", (int)origin_len(dir_url), dir_url, raw);
    else if (!strncmp(raw, "./", 2))
        abs = vx_asprintf(NULL, "%s%s", dir_url, raw + 2);
    else if (strchr(raw, ':'))
        return NULL; /* another scheme */
    else
        abs = vx_asprintf(NULL, "%s%s", dir_url, raw);
    if (!abs) return NULL;
    /* Only links strictly below root, and not back to the page itself. */
    if (strncmp(abs, root, strlen(root)) != 0 || !strcmp(abs, dir_url) ||
        strlen(abs) <= strlen(root)) {
        free(abs);
        return NULL;
    }
    return abs;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list;

static int list_has(const str_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return 1;
    return 0;
}

/* Takes ownership of s (freed on failure). */
static vx_status list_add(str_list *l, char *s, vx_err *err)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        char **grown = realloc(l->v, ncap * sizeof *grown);
        if (!grown) {
            free(s);
            return vx_fail(err, VX_ENOMEM, "out of memory crawling");
        }
        l->v = grown;
        l->cap = ncap;
    }
    l->v[l->n++] = s;
    return VX_OK;
}

static void list_free(str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The links of one listing page below root: files and folders, each sorted. */
static vx_status parse_listing(const char *root, const char *dir_url, const char *html,
                               str_list *files, str_list *dirs, vx_err *err)
{
    const char *p = html;
    while ((p = strcasestr(p, "href="))) {
        p += 5;
        char quote = *p == '"' || *p == '\'' ? *p++ : 0;
        const char *end = p;
        while (*end && (quote ? *end != quote : (*end != ' ' && *end != '>')))
            end++;
        char *abs = resolve(root, dir_url, p, (size_t)(end - p));
        p = end;
        if (!abs) continue;
        str_list *l = abs[strlen(abs) - 1] == '/' ? dirs : files;
        if (list_has(l, abs)) {
            free(abs);
            continue;
        }
        vx_status st = list_add(l, abs, err);
        if (st) return st;
    }
    if (files->n) qsort(files->v, files->n, sizeof *files->v, cmp_str);
    if (dirs->n) qsort(dirs->v, dirs->n, sizeof *dirs->v, cmp_str);
    return VX_OK;
}

/* One file a listing or a manifest names: classified by its name (media extensions only: no
 * probing over the network), then a HEAD (conditional with the caller's validators) and the
 * callback. A HEAD that fails keeps the file as the catalog has it (listed as unreadable). */
static vx_status crawl_file(const char *url, const idx_crawl_options *co,
                            const idx__http_limits *lim, idx_entry_fn fn, void *ctx,
                            idx_crawl_stats *stats, vx_err *err)
{
    char name[1024], path[4096];
    /* the name is in the path: a signed URL's ?query is not part of it */
    snprintf(path, sizeof path, "%.*s", (int)strcspn(url, "?#"), url);
    last_name(path, name, sizeof name);
    idx_file_kind kind = idx_classify_name(name);
    if (kind == IDX_FILE_HIDDEN) {
        stats->hidden_skipped++;
        return VX_OK;
    }
    if (kind == IDX_FILE_TEMPORARY) {
        stats->temp_skipped++;
        return VX_OK;
    }
    if (kind != IDX_FILE_MEDIA) {
        stats->other_skipped++;
        return VX_OK;
    }
    int64_t known_size = 0, known_mtime_ms = 0;
    const char *known_etag = NULL;
    int known = co && co->validator &&
                co->validator(co->validator_ctx, url, &known_size, &known_mtime_ms, &known_etag);
    head_result hr;
    vx_err herr = {0};
    if (head_file(url, lim, known ? known_etag : NULL, known ? known_mtime_ms : 0, &hr, &herr)) {
        vx_log(VX_LOG_WARN, "skipping %s", herr.msg);
        return add_unreadable(stats, url, err);
    }
    idx_entry e = {.location = url,
                   .local_path = url,
                   .size_bytes = hr.size < 0 ? 0 : hr.size,
                   .mtime_ms = hr.mtime_ms,
                   .kind = kind,
                   .etag = hr.etag};
    if (known && hr.not_modified) {
        e.size_bytes = known_size;
        e.mtime_ms = known_mtime_ms;
        e.etag = known_etag;
        e.not_modified = 1;
    }
    stats->files++;
    vx_status st = VX_OK;
    if (fn && fn(ctx, &e)) st = vx_fail(err, VX_EINTERRUPTED, "crawl stopped");
    free(hr.etag);
    return st;
}

/* url with the bytes a URL may not hold raw (blanks, controls, non-ASCII, "<>\^`{|}) written
 * as %XX, so "my film.mp4" in a manifest is fetched as "my%20film.mp4"; an existing %XX stays.
 * Takes url (freed); NULL when out of memory. */
static char *escape_unsafe(char *url)
{
    if (!url) return NULL;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        n += *p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}", *p) ? 3 : 1;
    char *out = malloc(n + 1), *o = out;
    if (out)
        for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
            if (*p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}", *p))
                o += sprintf(o, "%%%02X", *p);
            else
                *o++ = (char)*p;
        }
    if (out) *o = '\0';
    free(url);
    return out;
}

/* The entries of a manifest: one URL per line (absolute http(s), or relative to the
 * manifest's folder), blank lines and '#' lines (comments, M3U's #EXTM3U/#EXTINF) skipped,
 * surrounding blanks and a UTF-8 BOM trimmed; sorted and without duplicates, so the crawl
 * order is stable like a listing's. Other schemes and ".." are skipped (counted). */
static vx_status parse_manifest(const char *manifest_url, const char *text, str_list *out,
                                idx_crawl_stats *stats, vx_err *err)
{
    size_t dir_len = strcspn(manifest_url, "?#");
    while (dir_len > 0 && manifest_url[dir_len - 1] != '/')
        dir_len--;
    if (!strncmp(text, "\xEF\xBB\xBF", 3)) text += 3;
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\r\n");
        const char *next = line + n + (line[n] ? 1 : 0);
        while (n > 0 && (*line == ' ' || *line == '\t')) {
            line++;
            n--;
        }
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
            n--;
        if (n > 0 && *line != '#') {
            /* absolute http(s), or a plain relative path; anything else is skipped */
            int absolute = n < 4096 && idx__is_url(line);
            int relative = !absolute && n < 4096 && !memchr(line, ':', n) && line[0] != '/' &&
                           !memmem(line, n, "..", 2);
            char *url = escape_unsafe(
                absolute   ? strndup(line, n)
                : relative ? vx_asprintf(NULL, "%.*s%.*s", (int)dir_len, manifest_url, (int)n, line)
                           : NULL);
            if (!absolute && !relative) {
                stats->other_skipped++;
            } else if (!url) {
                return vx_fail(err, VX_ENOMEM, "out of memory reading %s", manifest_url);
            } else {
                vx_status st = list_add(out, url, err);
                if (st) return st;
            }
        }
        line = next;
    }
    if (!out->n) return VX_OK;
    /* sorted, then duplicates dropped (list_has per line would be quadratic) */
    qsort(out->v, out->n, sizeof *out->v, cmp_str);
    size_t kept = 1;
    for (size_t i = 1; i < out->n; i++) {
        if (!strcmp(out->v[i], out->v[kept - 1]))
            free(out->v[i]);
        else
            out->v[kept++] = out->v[i];
    }
    out->n = kept;
    return VX_OK;
}

/* A manifest root: read it (failing is VX_ENOTFOUND, like an unreachable listing), then each
 * entry as a listing's file. */
static vx_status crawl_manifest(const char *root, const idx_crawl_options *co,
                                const idx__http_limits *lim, idx_entry_fn fn, void *ctx,
                                idx_crawl_stats *stats, vx_err *err)
{
    vx_buf page = {0};
    vx_err perr = {0};
    if (get_page(root, lim, &page, &perr)) {
        vx_buf_free(&page);
        return vx_fail(err, VX_ENOTFOUND, "library %s", perr.msg);
    }
    stats->dirs++;
    str_list urls = {0};
    vx_status st = parse_manifest(root, page.data, &urls, stats, err);
    for (size_t i = 0; i < urls.n && !st; i++)
        st = crawl_file(urls.v[i], co, lim, fn, ctx, stats, err);
    list_free(&urls);
    vx_buf_free(&page);
    return st;
}

vx_status idx__http_crawl(const char *root_in, const idx_crawl_options *co, idx_entry_fn fn,
                          void *ctx, idx_crawl_stats *stats, vx_err *err)
{
    idx__http_limits given = {co ? co->http_timeout_ms : 0, co ? co->http_retries : 3, 0};
    idx__http_limits lim = limits_or_default(&given);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return vx_fail(err, VX_EIO, "cannot initialise libcurl");
    if (idx__is_manifest_url(root_in))
        return crawl_manifest(root_in, co, &lim, fn, ctx, stats, err);
    size_t rlen = strlen(root_in);
    char *root = vx_asprintf(err, "%s%s", root_in, rlen && root_in[rlen - 1] == '/' ? "" : "/");
    if (!root) return VX_ENOMEM;
    str_list todo = {0}, seen = {0};
    vx_status st = VX_OK;
    vx_buf page = {0};
    char *first = vx_strdup(root, err);
    if (!first || (st = list_add(&todo, first, err))) {
        st = first ? st : VX_ENOMEM;
        goto done;
    }
    /* The root must be readable: an unreachable server is not a library whose files were all
     * deleted. */
    int at_root = 1;
    while (todo.n > 0 && !st) {
        char *dir = todo.v[--todo.n]; /* LIFO: depth first, folders pushed in reverse order */
        if ((st = list_add(&seen, dir, err))) break;
        page.len = 0;
        vx_err perr = {0};
        if (get_page(dir, &lim, &page, &perr)) {
            if (at_root) {
                st = vx_fail(err, VX_ENOTFOUND, "library %s", perr.msg);
                break;
            }
            vx_log(VX_LOG_WARN, "cannot read listing %s", perr.msg);
            st = add_unreadable(stats, dir, err);
            continue;
        }
        at_root = 0;
        stats->dirs++;
        str_list files = {0}, dirs = {0};
        st = parse_listing(root, dir, page.data, &files, &dirs, err);
        char name[1024];
        for (size_t i = 0; i < files.n && !st; i++)
            st = crawl_file(files.v[i], co, &lim, fn, ctx, stats, err);
        for (size_t i = dirs.n; i-- > 0 && !st;) {
            last_name(dirs.v[i], name, sizeof name);
            if (idx_classify_name(name) == IDX_FILE_HIDDEN) {
                stats->hidden_skipped++;
                continue;
            }
            if (list_has(&seen, dirs.v[i]) || list_has(&todo, dirs.v[i])) {
                stats->loops_skipped++;
                continue;
            }
            st = list_add(&todo, dirs.v[i], err);
            dirs.v[i] = NULL;
        }
        list_free(&files);
        list_free(&dirs);
    }
done:
    list_free(&todo);
    list_free(&seen);
    vx_buf_free(&page);
    free(root);
    return st;
}

/* ---- fetching a file ---------------------------------------------------------------------- */

/* A new temporary file for url's bytes, keeping its extension (a few demuxers go by it). */
static vx_status make_temp(const char *url, char **out_path, int *out_fd, vx_err *err)
{
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    char name[1024], ext[16] = "";
    last_name(url, name, sizeof name);
    const char *dot = strrchr(name, '.');
    if (dot && strlen(dot) < sizeof ext && !strpbrk(dot, "/ \t\n"))
        snprintf(ext, sizeof ext, "%s", dot);
    char *path = vx_asprintf(err, "%s/vidx-fetch-XXXXXX%s", tmpdir, ext);
    if (!path) return VX_ENOMEM;
    int fd = mkstemps(path, (int)strlen(ext));
    if (fd < 0) {
        vx_status st = vx_fail(err, VX_EIO, "cannot create a temporary file in %s: %s", tmpdir,
                               strerror(errno));
        free(path);
        return st;
    }
    *out_path = path;
    *out_fd = fd;
    return VX_OK;
}

/* Where downloaded bytes go: fd at offset, at most limit bytes (then the transfer stops). */
typedef struct sink {
    int fd;
    int64_t start, offset, limit;
    int over_limit, write_failed, range_ignored;
    CURL *h;
    int want_partial; /* a Range request: a 200 answer means the server ignored it */
} sink;

static size_t to_sink(char *data, size_t size, size_t n, void *arg)
{
    sink *k = arg;
    size_t len = size * n;
    if (k->want_partial && k->offset == k->start) {
        long code = 0;
        curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &code);
        if (code != 206) {
            k->range_ignored = 1;
            return 0;
        }
    }
    if (k->limit > 0 && k->offset - k->start + (int64_t)len > k->limit) {
        k->over_limit = 1;
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = pwrite(k->fd, data + done, len - done, (off_t)(k->offset + (int64_t)done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            k->write_failed = errno ? errno : EIO;
            return 0;
        }
        done += (size_t)w;
    }
    k->offset += (int64_t)len;
    return len;
}

static int reset_sink(void *arg)
{
    sink *k = arg;
    k->offset = k->start;
    k->over_limit = k->write_failed = 0;
    /* A whole-file try starts over: a shorter retry must not leave the longer one's tail. */
    if (!k->want_partial && ftruncate(k->fd, 0) != 0) return 1;
    return k->range_ignored; /* no use trying again */
}

/* GETs url (or its bytes [from, to] when range is set) into fd at offset from. */
static vx_status download(const char *url, const idx__http_limits *lim, int fd, int range,
                          int64_t from, int64_t to, sink *k, vx_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = new_handle(url, errbuf, lim, !range);
    if (!h) return vx_fail(err, VX_ENOMEM, "%s: cannot create a libcurl handle", url);
    memset(k, 0, sizeof *k);
    k->fd = fd;
    k->start = k->offset = range ? from : 0;
    k->limit = range ? to - from + 1 : lim->max_size_bytes;
    k->h = h;
    k->want_partial = range;
    char spec[64];
    if (range) {
        snprintf(spec, sizeof spec, "%lld-%lld", (long long)from, (long long)to);
        curl_easy_setopt(h, CURLOPT_RANGE, spec);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    CURLcode rc = perform(h, url, lim, reset_sink, k);
    vx_status st = VX_OK;
    if (rc == CURLE_FILESIZE_EXCEEDED || k->over_limit)
        st = range ? vx_fail(err, VX_ESTALE, "%s: more bytes than asked for in a range", url)
                   : vx_fail(err, VX_ELIMIT, "%s: larger than the size cap of %lld bytes", url,
                             (long long)lim->max_size_bytes);
    else if (k->write_failed)
        st = vx_fail(err, VX_EIO, "writing a temporary copy of %s: %s", url,
                     strerror(k->write_failed));
    else if (rc != CURLE_OK && !k->range_ignored)
        st = curl_fail(err, rc, errbuf, url);
    curl_easy_cleanup(h);
    return st;
}

vx_status idx__http_fetch(const char *url, int64_t expect_size, const idx__http_limits *lim_in,
                          char **out_path, vx_err *err)
{
    *out_path = NULL;
    idx__http_limits lim = limits_or_default(lim_in);
    if (lim.max_size_bytes > 0 && expect_size > lim.max_size_bytes)
        return vx_fail(err, VX_ELIMIT, "%s: %lld bytes, over the size cap of %lld bytes", url,
                       (long long)expect_size, (long long)lim.max_size_bytes);
    char *path;
    int fd;
    vx_status st = make_temp(url, &path, &fd, err);
    if (st) return st;
    sink k;
    st = download(url, &lim, fd, 0, 0, 0, &k, err);
    if (close(fd) != 0 && !st) st = vx_fail(err, VX_EIO, "writing %s: %s", path, strerror(errno));
    if (!st && expect_size >= 0 && k.offset != expect_size)
        st = vx_fail(err, VX_ESTALE,
                     "%s: %lld bytes downloaded, %lld when crawled (changing on the server?)", url,
                     (long long)k.offset, (long long)expect_size);
    if (st) {
        unlink(path);
        free(path);
        return st;
    }
    *out_path = path;
    return VX_OK;
}

vx_status idx__http_fetch_ends(const char *url, int64_t size, int64_t span,
                               const idx__http_limits *lim_in, char **out_path, vx_err *err)
{
    *out_path = NULL;
    idx__http_limits lim = limits_or_default(lim_in);
    /* Small files (or unknown sizes): the whole file is about as cheap. */
    if (size <= 0 || span <= 0 || size <= 2 * span)
        return idx__http_fetch(url, size, lim_in, out_path, err);
    char *path;
    int fd;
    vx_status st = make_temp(url, &path, &fd, err);
    if (st) return st;
    if (ftruncate(fd, (off_t)size) != 0)
        st = vx_fail(err, VX_EIO, "sizing %s: %s", path, strerror(errno));
    int ignored = 0;
    const int64_t ranges[2][2] = {{0, span - 1}, {size - span, size - 1}};
    for (int r = 0; r < 2 && !st && !ignored; r++) {
        sink k;
        st = download(url, &lim, fd, 1, ranges[r][0], ranges[r][1], &k, err);
        ignored = k.range_ignored;
        if (!st && !ignored && k.offset != ranges[r][1] + 1)
            st = vx_fail(err, VX_ESTALE,
                         "%s: bytes %lld-%lld: %lld received (changing on the server?)", url,
                         (long long)ranges[r][0], (long long)ranges[r][1],
                         (long long)(k.offset - ranges[r][0]));
    }
    close(fd);
    if (st || ignored) {
        unlink(path);
        free(path);
        if (ignored && !st) {
            vx_log(VX_LOG_DEBUG, "%s: the server ignores Range; fetching it whole", url);
            return idx__http_fetch(url, size, lim_in, out_path, err);
        }
        return st;
    }
    *out_path = path;
    return VX_OK;
}

#endif
