/* query/qry_rerank.c — opt-in re-ranking with the matching head (DECISIONS §7). The head needs
 * a candidate's full vision tokens, too big to store, so the top K ranges' windows are decoded
 * again and run through the vision tower with its tokens out; recent tokens are kept in an LRU
 * cache bounded in bytes. A time budget stops the work; what ran is reported in qry_stats.
 *
 * Order: the ranges re-ranked come first, by the head's logit (srch_result.rerank_score, best
 * first; ties keep the fused order); the rest follow in fused order. `score` stays the fused
 * score, so a re-ranked range may rank above one with a higher fused score. */
#include "qry_internal.h"

#include <stdlib.h>
#include <string.h>

/* The cached tokens of segment_id, or NULL (call with e->mu held). */
static const float *token_lookup(qry_engine *e, int64_t segment_id)
{
    for (size_t i = 0; i < e->token_count; i++) {
        if (e->tokens[i].segment_id != segment_id) continue;
        e->tokens[i].used = ++e->tick;
        return e->tokens[i].tokens;
    }
    return NULL;
}

/* Keeps a copy of tokens under the byte quota, evicting the least recently used; a failed
 * allocation or an entry over the quota just is not cached (call with e->mu held). */
static void token_insert(qry_engine *e, int64_t segment_id, const float *tokens, size_t bytes)
{
    if (bytes > e->token_quota) return;
    while (e->token_count && e->token_bytes + bytes > e->token_quota) {
        size_t lru = 0;
        for (size_t i = 1; i < e->token_count; i++)
            if (e->tokens[i].used < e->tokens[lru].used) lru = i;
        e->token_bytes -= e->tokens[lru].bytes;
        free(e->tokens[lru].tokens);
        e->tokens[lru] = e->tokens[--e->token_count];
    }
    if (e->token_count == e->token_cap) {
        size_t cap = e->token_cap ? e->token_cap * 2 : 16;
        qry_token_entry *grown = realloc(e->tokens, cap * sizeof *grown);
        if (!grown) return;
        e->tokens = grown;
        e->token_cap = cap;
    }
    float *copy = malloc(bytes);
    if (!copy) return;
    memcpy(copy, tokens, bytes);
    e->tokens[e->token_count++] = (qry_token_entry){segment_id, copy, bytes, ++e->tick};
    e->token_bytes += bytes;
}

/* The range's segment that overlaps its best match most (the first on ties). */
static vx_status best_segment(st_store *s, const srch_result *x, st_segment *out, vx_err *err)
{
    int64_t best_overlap = -1;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < x->segment_count; i++) {
        st_segment seg;
        vx_status st = st_segment_get(s, x->segment_ids[i], &seg, err);
        if (st) {
            st_segment_clear(out);
            return st;
        }
        int64_t lo = seg.start_ms > x->match_start_ms ? seg.start_ms : x->match_start_ms;
        int64_t hi = seg.end_ms < x->match_end_ms ? seg.end_ms : x->match_end_ms;
        int64_t overlap = hi > lo ? hi - lo : 0;
        if (overlap > best_overlap) {
            st_segment_clear(out);
            *out = seg;
            best_overlap = overlap;
        } else {
            st_segment_clear(&seg);
        }
    }
    return best_overlap < 0 ? vx_fail(err, VX_ENOTFOUND, "a result without segments") : VX_OK;
}

/* The logit of one range: tokens from the cache, else decoded and encoded. 1 when it ran. */
static vx_status score_one(qry_engine *e, st_store *s, const srch_result *x, const int32_t *ids,
                           const int32_t *mask, media_frames *frames, media_preproc *pp,
                           float *pixels, float *emb, float *logit, int *ran, int *hit, vx_err *err)
{
    *ran = 0;
    *hit = 0;
    st_segment seg;
    vx_status st = best_segment(s, x, &seg, err);
    if (st) return st;
    int64_t n_tokens = enc_vision_token_count(e->vision);
    size_t bytes = (size_t)n_tokens * (size_t)enc_vision_width(e->vision) * sizeof(float);
    pthread_mutex_lock(&e->mu);
    const float *cached = token_lookup(e, seg.id);
    if (cached) {
        st = enc_text_itm(e->text, ids, mask, cached, n_tokens, logit, err);
        pthread_mutex_unlock(&e->mu);
        *ran = *hit = !st;
        st_segment_clear(&seg);
        return st;
    }
    pthread_mutex_unlock(&e->mu);
    /* A window that cannot be decoded now (file moved, remote) is not re-ranked. */
    const char *path = x->video.path ? x->video.path : "";
    media_reader *r = NULL;
    vx_err derr = {0};
    if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8) ||
        media_open(path, MEDIA_NEED_VIDEO, &r, &derr) ||
        qry__window_pixels(e, r, seg.start_ms, seg.end_ms, frames, pp, pixels, &derr)) {
        vx_log(VX_LOG_WARN, "re-ranking skips segment %lld: %s", (long long)seg.id,
               derr.msg[0] ? derr.msg : "a remote video");
        media_close(r);
        st_segment_clear(&seg);
        return VX_OK;
    }
    media_close(r);
    pthread_mutex_lock(&e->mu);
    st = enc_vision_forward(e->vision, pixels, emb, e->tokens_buf, err);
    if (!st) st = enc_text_itm(e->text, ids, mask, e->tokens_buf, n_tokens, logit, err);
    if (!st) token_insert(e, seg.id, e->tokens_buf, bytes);
    pthread_mutex_unlock(&e->mu);
    *ran = !st;
    st_segment_clear(&seg);
    return st;
}

static int cmp_rerank(const void *a, const void *b)
{
    const srch_result *x = a, *y = b;
    if (x->reranked != y->reranked) return x->reranked ? -1 : 1;
    if (x->reranked && x->rerank_score != y->rerank_score)
        return x->rerank_score > y->rerank_score ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank; /* the fused order */
}

vx_status qry__rerank(qry_engine *e, st_store *s, const char *text, int k, double budget_ms,
                      srch_results *r, qry_stats *stats, vx_err *err)
{
    int64_t t0 = vx_now_ns();
    size_t n = r->count < (size_t)k ? r->count : (size_t)k;
    if (!n) return VX_OK;
    char *plain = qry__vector_text(text ? text : "");
    if (!plain) return vx_fail(err, VX_ENOMEM, "out of memory");
    pthread_mutex_lock(&e->mu);
    vx_status st = qry__text_tower(e, err);
    if (!st) st = qry__vision_tower(e, err);
    int max_len = st ? 0 : enc_text_max_len(e->text);
    pthread_mutex_unlock(&e->mu);
    int32_t *ids = NULL, *mask = NULL;
    float *pixels = NULL, *emb = NULL;
    media_preproc *pp = NULL;
    media_frames frames = {0};
    if (st) goto out;
    int size_px = enc_vision_image_size(e->vision);
    ids = malloc((size_t)max_len * sizeof *ids);
    mask = malloc((size_t)max_len * sizeof *mask);
    pixels = malloc(qry__pixel_floats(e) * sizeof *pixels);
    emb = malloc((size_t)enc_vision_embed_dim(e->vision) * sizeof *emb);
    if (!ids || !mask || !pixels || !emb) {
        st = vx_fail(err, VX_ENOMEM, "out of memory for re-ranking");
        goto out;
    }
    pthread_mutex_lock(&e->mu); /* the text instance is one thread's at a time */
    st = enc_text_tokenize(e->text, plain, strlen(plain), ids, mask, NULL, NULL, err);
    pthread_mutex_unlock(&e->mu);
    if (st) goto out;
    if ((st = media_preproc_create(size_px, size_px, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp,
                                   err)))
        goto out;
    int done = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if ((double)(vx_now_ns() - t0) / 1e6 > budget_ms) {
            stats->rerank_budget_hit = 1;
            break;
        }
        float logit = 0;
        int ran = 0, hit = 0;
        st = score_one(e, s, &r->items[i], ids, mask, &frames, pp, pixels, emb, &logit, &ran, &hit,
                       err);
        if (!st && ran) {
            r->items[i].reranked = 1;
            r->items[i].rerank_score = logit;
            done++;
            stats->rerank_cache_hits += hit;
        }
    }
    if (st) goto out;
    qsort(r->items, r->count, sizeof *r->items, cmp_rerank);
    for (size_t i = 0; i < r->count; i++)
        r->items[i].rank = (int)i + 1;
    stats->reranked = done;
out:
    stats->rerank_ms = (double)(vx_now_ns() - t0) / 1e6;
    free(plain);
    free(ids);
    free(mask);
    free(pixels);
    free(emb);
    media_preproc_free(pp);
    media_frames_free(&frames);
    return st;
}
