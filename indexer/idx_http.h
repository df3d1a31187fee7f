/* indexer/idx_http.h — HTTP(S) archives through libcurl (private to indexer/): crawling the
 * directory listings web servers generate (Apache, nginx, lighttpd, python -m http.server),
 * and fetching one file to a temporary local copy for FFmpeg, which reads plain files only.
 * Built when libcurl is found (VIDX_HAVE_CURL); otherwise every call is VX_EUNSUPPORTED.
 *
 * Thread safety: idx__http_crawl runs in the calling thread and initialises libcurl's global
 * state first (curl_global_init), so it must run before any thread calls idx__http_fetch;
 * after that, fetches may run in any number of threads at once (one easy handle each). */
#ifndef IDX_HTTP_H
#define IDX_HTTP_H

#include "idx.h"

/* 1 when s starts with http:// or https:// (any case). */
int idx__is_url(const char *s);

/* Walks the listing pages under root (a URL ending in '/'; links that leave root are
 * ignored, each listing page is read once), reporting each file with its size
 * (Content-Length) and mtime (Last-Modified) from a HEAD request. Names are classified as
 * local ones; files of unknown type are skipped (no probing over the network). A listing
 * that cannot be read is logged, counted and listed in stats->unreadable. */
vx_status idx__http_crawl(const char *root, idx_entry_fn fn, void *ctx, idx_crawl_stats *stats,
                          vx_err *err);

/* Downloads url into a new temporary file (under $TMPDIR or /tmp) and returns its path in
 * *out_path (malloc'd; the caller unlinks and frees it). A size other than expect_size
 * (when >= 0) is VX_ESTALE: the file changed since the crawl. */
vx_status idx__http_fetch(const char *url, int64_t expect_size, char **out_path, vx_err *err);

#endif
