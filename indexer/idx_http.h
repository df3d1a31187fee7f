/* indexer/idx_http.h — HTTP(S) archives through libcurl (private to indexer/): crawling the
 * directory listings web servers generate (Apache, nginx, lighttpd, python -m http.server),
 * and fetching one file to a temporary local copy for FFmpeg, which reads plain files only.
 * Built when libcurl is found (VIDX_HAVE_CURL); otherwise every call is VX_EUNSUPPORTED.
 * Every request has a connect timeout and either a whole-request limit (listings, HEADs,
 * ranges) or a stall limit (downloads), and is tried again on 5xx, 429 and network timeouts
 * with exponential backoff (bounded by idx__http_limits.retries). Change detection uses the
 * server's validators: the crawl's HEADs are conditional (If-None-Match with the stored ETag,
 * else If-Modified-Since), and a content hash needs only the file's two ends (Range).
 *
 * Thread safety: idx__http_crawl runs in the calling thread and initialises libcurl's global
 * state first (curl_global_init), so it must run before any thread calls idx__http_fetch;
 * after that, fetches may run in any number of threads at once (one easy handle each). */
#ifndef IDX_HTTP_H
#define IDX_HTTP_H

#include "idx.h"

/* 1 when s starts with http:// or https:// (any case). */
int idx__is_url(const char *s);

/* Limits of one request (filled from idx_options / idx_crawl_options). */
typedef struct idx__http_limits {
    int64_t timeout_ms;     /* connect; whole request for small ones; stall time of downloads */
    int retries;            /* extra tries on 5xx, 429 and timeouts (backoff 250 ms doubling) */
    int64_t max_size_bytes; /* downloads larger than this fail (VX_ELIMIT); <= 0: none */
} idx__http_limits;

/* Walks the listing pages under root (a URL ending in '/'; links that leave root are
 * ignored, each listing page is read once), reporting each file with its size
 * (Content-Length), mtime (Last-Modified) and ETag from a HEAD request — conditional when
 * co->validator knows the file (a 304 reports the stored values, not_modified set). Names
 * are classified as local ones; files of unknown type are skipped (no probing over the
 * network). A listing or HEAD that fails after the retries is logged, counted and listed in
 * stats->unreadable (so the run keeps what it had). co may be NULL. */
vx_status idx__http_crawl(const char *root, const idx_crawl_options *co, idx_entry_fn fn, void *ctx,
                          idx_crawl_stats *stats, vx_err *err);

/* Downloads url into a new temporary file (under $TMPDIR or /tmp) and returns its path in
 * *out_path (malloc'd; the caller unlinks and frees it). A size other than expect_size
 * (when >= 0) is VX_ESTALE: the file changed since the crawl; a file over
 * lim->max_size_bytes is VX_ELIMIT. lim may be NULL (defaults). */
vx_status idx__http_fetch(const char *url, int64_t expect_size, const idx__http_limits *lim,
                          char **out_path, vx_err *err);

/* Like idx__http_fetch, but fetches only bytes [0, span) and [size - span, size) with Range
 * requests into a sparse temporary file of size bytes: enough for media_content_hash, which
 * reads no more. A server that ignores Range gets the whole file (the same result). */
vx_status idx__http_fetch_ends(const char *url, int64_t size, int64_t span,
                               const idx__http_limits *lim, char **out_path, vx_err *err);

#endif
