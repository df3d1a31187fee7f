/* query/ private header: the engine struct and what qry.c, qry_clip.c and qry_rerank.c share.
 * Not part of the public API.
 *
 * Locking: e->mu guards the towers (one forward at a time: they own their scratch), the caches
 * and the scratch buffers below. Decoding a clip or a window happens outside the lock (its
 * reader and preprocessing context belong to the request). Lock order: e->mu only. */
#ifndef QRY_INTERNAL_H
#define QRY_INTERNAL_H

#include "enc.h"
#include "media.h"
#include "qry.h"

#include <pthread.h>

/* The window a clip query embeds when the request gives no end (the indexer's default). */
#define QRY_DEFAULT_WINDOW_MS 4000
/* Times beyond this are no video's (and adding a window to them cannot overflow). */
#define QRY_MAX_TIME_MS_DAYS 365
#define QRY_MAX_TIME_MS ((int64_t)QRY_MAX_TIME_MS_DAYS * 86400 * 1000)

typedef struct qry_text_entry {
    char *text;    /* the query exactly as given */
    float *vec;    /* [dim] into e->text_vecs */
    uint64_t used; /* e->tick at the last use: the smallest is evicted */
} qry_text_entry;

typedef struct qry_token_entry {
    int64_t segment_id;
    float *tokens; /* [n_tokens, width] malloc'd */
    size_t bytes;
    uint64_t used;
} qry_token_entry;

struct qry_engine {
    pthread_mutex_t mu;
    enc_model *model; /* NULL: lexical only */
    const enc_model_info *info;
    enc_precision precision;
    int precision_given; /* 0: enc_default_precision at the vision tower's creation */
    int threads;
    /* towers, created on first use under mu */
    enc_text *text;
    enc_vision *vision;
    int dim;           /* the text tower's embedding size */
    float *tokens_buf; /* [N, C] the vision tower's tokens (re-ranking) */
    /* query vectors by exact text (LRU) */
    qry_text_entry *texts;
    size_t text_count, text_cap;
    float *text_vecs; /* [text_cap, dim], allocated with the text tower */
    /* vision tokens by segment (LRU by bytes) */
    qry_token_entry *tokens;
    size_t token_count, token_cap;
    size_t token_bytes, token_quota;
    uint64_t tick;
};

/* Creates the text / vision tower unless there (call with e->mu held). */
vx_status qry__text_tower(qry_engine *e, vx_err *err);
vx_status qry__vision_tower(qry_engine *e, vx_err *err);

/* The query text without the lexical syntax (excluded terms, OR, quotes, '*'): what the text
 * tower sees. malloc'd; "" when nothing remains. */
char *qry__vector_text(const char *query);

/* Frames and preprocessing of one window exactly as the indexer does it (indexer/idx_run.c:
 * media_sample_window with the model's frame count, middle rule; media_preproc_frames at the
 * model's image size with ImageNet mean/std). pixels: [3, T, S, S], T and S the model's. */
vx_status qry__window_pixels(const qry_engine *e, media_reader *r, int64_t start_ms, int64_t end_ms,
                             media_frames *frames, media_preproc *pp, float *pixels, vx_err *err);
/* Floats in one window's pixel tensor for this model. */
size_t qry__pixel_floats(const qry_engine *e);

/* Embeds the clip of req (a QRY_CLIP_* kind) with the vision tower: *vec malloc'd [*dim];
 * *what a malloc'd description for srch_results.query ("clip:…"). Both NULL on failure. */
vx_status qry__clip_vector(qry_engine *e, st_store *s, const qry_request *req, float **vec,
                           int *dim, char **what, double *embed_ms, vx_err *err);

/* Re-ranks the first min(k, r->count) results with the matching head (see qry_rerank.c). */
vx_status qry__rerank(qry_engine *e, st_store *s, const char *text, int k, double budget_ms,
                      srch_results *r, qry_stats *stats, vx_err *err);

#endif
