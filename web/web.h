/* web/ — the HTTP JSON API of vidx (`vidx serve`): a libmicrohttpd server with a thread pool
 * that answers search (text, clip by upload or by video range, find similar: query/'s engine),
 * video, stream, thumbnail, library and job requests from a data directory opened read-only,
 * and runs reindex jobs on one background thread with its own writer store (docs/api.md lists
 * every endpoint).
 *
 * Usage (what `vidx serve` does):
 *
 *     web_options o = web_options_default();
 *     o.data_dir = "/srv/vidx"; o.listen = "127.0.0.1:8080";
 *     web_server *srv; vx_err err = {0};
 *     if (web_server_start(&o, &srv, &err)) { ... err.msg ... }
 *     printf("port %d\n", web_server_port(srv));
 *     ... wait for SIGTERM ...
 *     web_server_stop(srv);   // stops accepting, lets requests in flight finish, frees
 *
 * Threads: MHD runs `threads` worker threads; each request borrows one read-only st_store
 * from a pool of `threads` handles (st.h: one thread at a time per handle), so requests never
 * share a handle; the handles share one in-memory copy of each vector index (st_index_cache).
 * One qry_engine (thread-safe, qry.h) serves every worker. Reindex jobs run one
 * at a time on the jobs thread (web_jobs.c), which opens the data directory as writer only while
 * a job runs. Nothing here keeps global state; the server object owns everything.
 *
 * Security: media is served only by catalog id, never by a path taken from a request. A
 * server listening beyond loopback refuses to start without a token; with a token every
 * endpoint but /healthz needs `Authorization: Bearer TOKEN` or `?token=TOKEN`. */
#ifndef WEB_H
#define WEB_H

#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct web_options {
    const char *data_dir;  /* the data directory (must hold a catalog) */
    const char *listen;    /* "HOST:PORT" (IPv4 or [IPv6]); port 0 picks a free one.
                              NULL: "127.0.0.1:8080" */
    const char *token;     /* NULL or "": none (only allowed on loopback) */
    int threads;           /* worker threads, 1..64 (0: 4) */
    int connection_limit;  /* open connections at most (0: 256) */
    int timeout_s;         /* an idle connection is closed after this (0: 10) */
    size_t max_body_bytes; /* request bodies above are 413 (0: 64 KiB) */
    /* multipart/form-data uploads (POST /api/search with a clip) above are 413, refused from
       Content-Length before the body is read when it is declared (0: 256 MiB) */
    size_t max_upload_bytes;
    const char *model_dir;    /* query model (text by meaning, clips, re-ranking) and the model
                                 reindex jobs embed with; NULL or "": lexical search only */
    const char *version;      /* shown by /api/info; NULL: "unknown" */
    int64_t reindex_every_ms; /* > 0: queue a reindex of every library this often, the first
                                 at start; 0: only on POST /api/reindex */
    /* Where versions a browser can play (remuxed or transcoded: DECISIONS §10) are cached;
       NULL: <data_dir>/playback; "-": none (files are streamed as they are) */
    const char *play_cache_dir;
    int64_t play_cache_bytes; /* the cache's size limit; 0: media's default (10 GiB) */
} web_options;

web_options web_options_default(void);

typedef struct web_server web_server;

/* Opens the store pool, binds and starts serving. Fails (VX_EINVAL) on a bad listen address,
 * on a non-loopback address without a token, (VX_EIO) when the address cannot be bound, and as
 * st_open does for the data directory. *out is freed by web_server_stop. */
vx_status web_server_start(const web_options *opts, web_server **out, vx_err *err);
/* The port actually bound (useful with port 0). */
int web_server_port(const web_server *srv);
/* Stops accepting connections, asks a running reindex job to stop after the video in flight
 * (idx_options.stop), waits (at most a few seconds) for requests in flight, joins the threads
 * and frees everything. NULL is fine. */
void web_server_stop(web_server *srv);

/* True for a loopback listen host ("127.x.x.x", "localhost", "::1"). Pure. */
int web_host_is_loopback(const char *host);

#ifdef __cplusplus
}
#endif
#endif
