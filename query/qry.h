/* query/ — the query engine behind `vidx search`, `vidx similar` and `vidx serve`: it turns a
 * request (text, a clip file or upload, a range of an indexed video, a segment) into ranked,
 * timestamped ranges (search/'s srch_results, one JSON schema: docs/api.md). It owns what a
 * query needs from a model: the tokenizer and text tower (text → vector, with a cache of recent
 * query vectors), the vision tower for clip queries (audio: not yet, see below) and the matching
 * head for opt-in re-ranking (DECISIONS §7). search/ stays free of encoder/; this module joins
 * encoder/, media/, search/ and storage/.
 *
 * Usage:
 *
 *     qry_options o = qry_options_default(); o.model_dir = getenv("VIDX_MODEL"); // NULL: lexical
 *     qry_engine *e; vx_err err = {0};
 *     if (qry_engine_open(&o, &e, &err)) { ... err.msg ... }
 *     qry_request rq = qry_request_default(); rq.kind = QRY_TEXT; rq.text = "a dog on a beach";
 *     srch_results r;
 *     if (qry_run(e, store, &rq, &r, &err)) { ... }      // store: an st_store of this thread
 *     char *json = srch_results_json(&r, 0, &err); ... srch_results_free(&r);
 *     qry_engine_close(e);
 *
 * Thread safety: one engine serves many threads (the web server's workers): qry_run may be called
 * concurrently with different stores; the towers are used one request at a time inside (a mutex
 * in the engine; the towers parallelise internally with OpenMP). No global state.
 *
 * Ownership: the engine owns the model and caches; requests are borrowed for the call; results
 * belong to the caller (srch_results_free). */
#ifndef QRY_H
#define QRY_H

#include "srch.h"
#include "st.h"
#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qry_options {
    const char *model_dir;     /* a vidx model directory; NULL or "": lexical search only */
    const char *precision;     /* "fp32", "bf16" or NULL (the model's default) */
    int threads;               /* encoder threads; 0: all cores */
    size_t text_cache_entries; /* query vectors kept (LRU); 0: 1024 */
    size_t token_cache_bytes;  /* re-ranking: vision tokens kept (LRU by bytes); 0: 256 MiB */
} qry_options;

qry_options qry_options_default(void);

typedef struct qry_engine qry_engine;

/* Opens the model (if any) and creates its towers lazily on first use. A bad model directory is
 * an error naming the problem (enc_model_open's). *out freed by qry_engine_close. */
vx_status qry_engine_open(const qry_options *opts, qry_engine **out, vx_err *err);
void qry_engine_close(qry_engine *e); /* NULL is fine */

/* The model id vectors of this model are stored under, or NULL without a model. */
const char *qry_engine_model_id(const qry_engine *e);
/* Bits (1u << srch_modality) a text query can use with this engine: lexical always; vision
 * with a vision and a text tower; speech with a text tower. Audio: never yet — s2-6B trained
 * text against the joint audio-visual vector only (avtc; atc = 0), which the catalog does not
 * hold (its "audio" space is audio alone): docs/api.md, "Audio"; DECISIONS §6. */
unsigned qry_engine_text_modalities(const qry_engine *e);
/* 1 when clip queries work (a vision tower). */
int qry_engine_can_clip(const qry_engine *e);
/* 1 when re-ranking works (a text tower with the matching head and a vision tower). */
int qry_engine_can_rerank(const qry_engine *e);

typedef enum qry_kind {
    QRY_TEXT = 0,        /* text: user query syntax (srch_query_translate) */
    QRY_CLIP_FILE = 1,   /* clip_path: a video file on this machine (the CLI) */
    QRY_CLIP_MEMORY = 2, /* clip_data/clip_size: an uploaded clip (the HTTP API) */
    QRY_CLIP_VIDEO = 3,  /* video_id + [start_ms, end_ms): a range of an indexed video */
    QRY_SEGMENT = 4,     /* segment_id: find similar, from its stored vectors */
} qry_kind;

/* Filters: applied inside the vector search as an id selector and to the lexical hits, so a
 * narrow filter never drops matches. 0 / NULL: no filter. */
typedef struct qry_filter {
    int64_t library_id;
    const char *path_prefix;                       /* the video's location starts so */
    int64_t min_duration_ms, max_duration_ms;      /* the video's duration */
    int64_t modified_after_ms, modified_before_ms; /* the video file's mtime, Unix ms */
} qry_filter;

typedef struct qry_request {
    qry_kind kind;
    const char *text;      /* QRY_TEXT */
    const char *clip_path; /* QRY_CLIP_FILE */
    const void *clip_data; /* QRY_CLIP_MEMORY */
    size_t clip_size;
    int64_t video_id;         /* QRY_CLIP_VIDEO */
    int64_t start_ms, end_ms; /* clip kinds: the range to embed; end_ms 0: start +
                                 the default window (4 s), clamped to the video */
    int64_t segment_id;       /* QRY_SEGMENT */
    unsigned modalities;      /* bits (1u << srch_modality) wanted; 0: all the
                                 engine and the catalog have */
    int limit;                /* results, 1..1000 (default 10) */
    int offset;               /* results skipped (paging), 0.. */
    qry_filter filter;
    int rerank;              /* QRY_TEXT: re-rank the top K with the matching head;
                                0: off (the default on the CPU), 1..256 */
    double rerank_budget_ms; /* stop re-ranking after this (0: 2000); the rest keep
                                their fused order */
} qry_request;

qry_request qry_request_default(void);

/* What the run did besides its results (for the response and /metrics). */
typedef struct qry_stats {
    double embed_ms;    /* time in the towers for the query itself */
    int text_cache_hit; /* 1 when the query vector came from the cache */
    int reranked;       /* segments re-ranked (0: re-ranking did not run) */
    double rerank_ms;
    int rerank_budget_hit; /* 1 when the budget stopped it early */
    int rerank_cache_hits; /* of reranked: vision tokens taken from the token cache */
    int64_t total;         /* results before paging (for page_info.total) */
} qry_stats;

/* Runs one request against s (a store of the calling thread). Errors: VX_EINVAL with a message
 * fit for the user (bad query text, bad range, a clip kind without a vision tower, rerank
 * without the matching head), VX_ENOTFOUND (unknown video or segment id), VX_EUNSUPPORTED (the
 * catalog has no vectors for what the request needs), VX_EFORMAT/VX_EIO from decoding a
 * clip. out is filled on success (srch_results_free) and zeroed on failure; stats may be NULL. */
vx_status qry_run(qry_engine *e, st_store *s, const qry_request *req, srch_results *out,
                  qry_stats *stats, vx_err *err);

#ifdef __cplusplus
}
#endif
#endif
