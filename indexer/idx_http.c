/* indexer/idx_http.c — HTTP(S) archives through libcurl: crawling generated directory
 * listings and fetching files to temporary local copies. See idx_http.h. */
#define _GNU_SOURCE /* strcasestr, mkstemps */
#include "idx_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int idx__is_url(const char *s)
{
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

#ifndef VIDX_HAVE_CURL

vx_status idx__http_crawl(const char *root, idx_entry_fn fn, void *ctx, idx_crawl_stats *stats,
                          vx_err *err)
{
    return vx_fail(err, VX_EUNSUPPORTED,
                   "%s: this vidx was built without libcurl and cannot crawl HTTP(S) archives",
                   root);
}

vx_status idx__http_fetch(const char *url, int64_t expect_size, char **out_path, vx_err *err)
{
    *out_path = NULL;
    return vx_fail(err, VX_EUNSUPPORTED, "%s: this vidx was built without libcurl", url);
}

#else

#include <curl/curl.h>

/* Listing pages larger than this are cut (a listing of ~100k files). */
#define LISTING_MAX_BYTES (16 * 1024 * 1024)

static CURL *new_handle(const char *url, char *errbuf)
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
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled server (under 1 byte/s for a minute) fails instead of hanging the run. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "vidx-indexer");
    return h;
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

static vx_status get_page(const char *url, vx_buf *out, vx_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = new_handle(url, errbuf);
    if (!h) return vx_fail(err, VX_ENOMEM, "%s: cannot create a libcurl handle", url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    vx_status st = rc == CURLE_OK ? VX_OK : curl_fail(err, rc, errbuf, url);
    curl_easy_cleanup(h);
    if (!st && vx_buf_append(out, "", 1, err)) st = VX_ENOMEM; /* NUL-terminate */
    return st;
}

/* HEAD: size and mtime (-1 / 0 when the server does not say). */
static vx_status head_file(const char *url, int64_t *size, int64_t *mtime_ms, vx_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = new_handle(url, errbuf);
    if (!h) return vx_fail(err, VX_ENOMEM, "%s: cannot create a libcurl handle", url);
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    CURLcode rc = curl_easy_perform(h);
    vx_status st = VX_OK;
    if (rc != CURLE_OK) {
        st = curl_fail(err, rc, errbuf, url);
    } else {
        curl_off_t len = -1, t = -1;
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        curl_easy_getinfo(h, CURLINFO_FILETIME_T, &t);
        *size = len >= 0 ? (int64_t)len : -1;
        *mtime_ms = t >= 0 ? (int64_t)t * 1000 : 0;
    }
    curl_easy_cleanup(h);
    return st;
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

vx_status idx__http_crawl(const char *root_in, idx_entry_fn fn, void *ctx, idx_crawl_stats *stats,
                          vx_err *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return vx_fail(err, VX_EIO, "cannot initialise libcurl");
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
        if (get_page(dir, &page, &perr)) {
            if (at_root) {
                st = vx_fail(err, VX_ENOTFOUND, "library %s", perr.msg);
                break;
            }
            vx_log(VX_LOG_WARN, "cannot read listing %s", perr.msg);
            stats->errors++;
            char *copy = vx_strdup(dir, err);
            char **grown =
                copy ? realloc(stats->unreadable, (stats->unreadable_count + 1) * sizeof *grown)
                     : NULL;
            if (!grown) {
                free(copy);
                st = vx_fail(err, VX_ENOMEM, "out of memory crawling");
                break;
            }
            stats->unreadable = grown;
            stats->unreadable[stats->unreadable_count++] = copy;
            continue;
        }
        at_root = 0;
        stats->dirs++;
        str_list files = {0}, dirs = {0};
        st = parse_listing(root, dir, page.data, &files, &dirs, err);
        char name[1024];
        for (size_t i = 0; i < files.n && !st; i++) {
            last_name(files.v[i], name, sizeof name);
            idx_file_kind kind = idx_classify_name(name);
            if (kind == IDX_FILE_HIDDEN) {
                stats->hidden_skipped++;
                continue;
            }
            if (kind == IDX_FILE_TEMPORARY) {
                stats->temp_skipped++;
                continue;
            }
            if (kind != IDX_FILE_MEDIA) { /* no probing over the network */
                stats->other_skipped++;
                continue;
            }
            int64_t size = -1, mtime_ms = 0;
            vx_err herr = {0};
            if (head_file(files.v[i], &size, &mtime_ms, &herr)) {
                vx_log(VX_LOG_WARN, "skipping %s", herr.msg);
                stats->errors++;
                continue;
            }
            idx_entry e = {.location = files.v[i],
                           .local_path = files.v[i],
                           .size_bytes = size < 0 ? 0 : size,
                           .mtime_ms = mtime_ms,
                           .kind = kind};
            stats->files++;
            if (fn && fn(ctx, &e)) st = vx_fail(err, VX_EINTERRUPTED, "crawl stopped");
        }
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

vx_status idx__http_fetch(const char *url, int64_t expect_size, char **out_path, vx_err *err)
{
    *out_path = NULL;
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    /* Keep the extension: a few demuxers are chosen by it. */
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
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(path);
        free(path);
        return vx_fail(err, VX_EIO, "cannot write a temporary file: %s", strerror(errno));
    }
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = new_handle(url, errbuf);
    vx_status st = VX_OK;
    if (!h) {
        st = vx_fail(err, VX_ENOMEM, "%s: cannot create a libcurl handle", url);
    } else {
        curl_easy_setopt(h, CURLOPT_WRITEDATA, f); /* the default callback fwrites */
        CURLcode rc = curl_easy_perform(h);
        if (rc != CURLE_OK) st = curl_fail(err, rc, errbuf, url);
        curl_easy_cleanup(h);
    }
    long got = ftell(f);
    if (fclose(f) != 0 && !st) st = vx_fail(err, VX_EIO, "writing %s: %s", path, strerror(errno));
    if (!st && expect_size >= 0 && got != expect_size)
        st = vx_fail(err, VX_ESTALE,
                     "%s: %ld bytes downloaded, %lld when crawled (changing on the server?)", url,
                     got, (long long)expect_size);
    if (st) {
        unlink(path);
        free(path);
        return st;
    }
    *out_path = path;
    return VX_OK;
}

#endif
