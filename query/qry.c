/* query/qry.c — the query engine: the model and its towers (created on first use), the cache of
 * query vectors, filters resolved to segment ids, and qry_run, which turns a request into a
 * search/ call (text, clip vector or segment) plus paging and optional re-ranking. */
#include "qry_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_CACHE_DEFAULT 1024
#define TOKEN_CACHE_DEFAULT ((size_t)256 << 20)
#define RERANK_BUDGET_DEFAULT_MS 2000.0
#define OFFSET_MAX 100000

qry_options qry_options_default(void)
{
    qry_options o;
    memset(&o, 0, sizeof o);
    return o;
}

qry_request qry_request_default(void)
{
    qry_request r;
    memset(&r, 0, sizeof r);
    r.kind = QRY_TEXT;
    r.limit = 10;
    return r;
}

vx_status qry_engine_open(const qry_options *opts, qry_engine **out, vx_err *err)
{
    *out = NULL;
    qry_options o = opts ? *opts : qry_options_default();
    qry_engine *e = calloc(1, sizeof *e);
    if (!e) return vx_fail(err, VX_ENOMEM, "out of memory for the query engine");
    if (pthread_mutex_init(&e->mu, NULL)) {
        free(e);
        return vx_fail(err, VX_ENOMEM, "cannot create the query engine's lock");
    }
    e->threads = o.threads > 0 ? o.threads : 0;
    e->text_cap = o.text_cache_entries ? o.text_cache_entries : TEXT_CACHE_DEFAULT;
    e->token_quota = o.token_cache_bytes ? o.token_cache_bytes : TOKEN_CACHE_DEFAULT;
    vx_status st = VX_OK;
    if (o.precision && (st = enc_precision_parse(o.precision, &e->precision, err))) goto fail;
    e->precision_given = o.precision != NULL;
    if (o.model_dir && o.model_dir[0]) {
        if ((st = enc_model_open(o.model_dir, &e->model, err))) goto fail;
        e->info = enc_model_get_info(e->model);
    }
    if (!(e->texts = calloc(e->text_cap, sizeof *e->texts))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory for the query cache");
        goto fail;
    }
    *out = e;
    return VX_OK;
fail:
    qry_engine_close(e);
    return st;
}

void qry_engine_close(qry_engine *e)
{
    if (!e) return;
    for (size_t i = 0; e->texts && i < e->text_count; i++)
        free(e->texts[i].text);
    free(e->texts);
    free(e->text_vecs);
    for (size_t i = 0; i < e->token_count; i++)
        free(e->tokens[i].tokens);
    free(e->tokens);
    free(e->tokens_buf);
    enc_text_free(e->text);
    enc_vision_free(e->vision);
    enc_model_close(e->model);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

const char *qry_engine_model_id(const qry_engine *e)
{
    return e && e->info ? e->info->model_id : NULL;
}

unsigned qry_engine_text_modalities(const qry_engine *e)
{
    unsigned m = 1u << SRCH_LEXICAL;
    if (!e || !e->info || !e->info->has_text) return m;
    m |= 1u << SRCH_SPEECH;
    if (e->info->has_vision) m |= 1u << SRCH_VISION;
    /* Audio stays off: s2-6B trained text against the joint audio-visual vector (avtc), not
     * against audio alone (atc = 0), and the catalog's "audio" space is audio alone. */
    return m;
}

int qry_engine_can_clip(const qry_engine *e)
{
    return e && e->info && e->info->has_vision;
}

int qry_engine_can_rerank(const qry_engine *e)
{
    return e && e->info && e->info->has_vision && e->info->has_text && e->info->text.itm;
}

vx_status qry__text_tower(qry_engine *e, vx_err *err)
{
    if (e->text) return VX_OK;
    if (!e->info || !e->info->has_text)
        return vx_fail(err, VX_EUNSUPPORTED, "the model has no text tower");
    enc_text *t = NULL;
    vx_status st = enc_text_create(e->model, e->threads, &t, err);
    if (st) return st;
    int dim = enc_text_embed_dim(t);
    if (!(e->text_vecs = malloc(e->text_cap * (size_t)dim * sizeof *e->text_vecs))) {
        enc_text_free(t);
        return vx_fail(err, VX_ENOMEM, "out of memory for the query cache");
    }
    e->dim = dim;
    e->text = t;
    return VX_OK;
}

vx_status qry__vision_tower(qry_engine *e, vx_err *err)
{
    if (e->vision) return VX_OK;
    if (!e->info || !e->info->has_vision)
        return vx_fail(err, VX_EUNSUPPORTED, "the model has no vision tower");
    /* frames and size 0: the model's own, as the indexer creates it */
    enc_vision *v = NULL;
    /* No precision asked for: the model's default on this CPU, as the indexer chooses it, so a
     * clip of an indexed window gets the very vector stored for it. */
    if (!e->precision_given) {
        vx_status dst = enc_default_precision(e->model, 1, &e->precision, NULL, NULL, err);
        if (dst) return dst;
    }
    vx_status st = enc_vision_create(e->model, 0, 0, e->threads, e->precision, &v, err);
    if (st) return st;
    size_t n = (size_t)enc_vision_token_count(v) * (size_t)enc_vision_width(v);
    if (!(e->tokens_buf = malloc(n * sizeof *e->tokens_buf))) {
        enc_vision_free(v);
        return vx_fail(err, VX_ENOMEM, "out of memory for the vision tokens");
    }
    e->vision = v;
    return VX_OK;
}

char *qry__vector_text(const char *q)
{
    size_t n = strlen(q);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t w = 0;
    const char *p = q;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p) break;
        int excluded = *p == '-';
        if (excluded) p++;
        /* one term: a quoted phrase (to its closing quote or the end) or a word */
        const char *start = p, *end;
        if (*p == '"') {
            start = ++p;
            end = strchr(p, '"');
            if (!end) end = p + strlen(p);
            p = *end ? end + 1 : end;
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                p++;
            end = p;
        }
        if (excluded) continue;
        if (end - start == 2 && !strncmp(start, "OR", 2)) continue;
        while (end > start && end[-1] == '*')
            end--;
        if (end == start) continue;
        if (w) out[w++] = ' ';
        for (const char *c = start; c < end; c++)
            out[w++] = *c == '"' ? ' ' : *c;
    }
    out[w] = 0;
    return out;
}

/* The query vector of text: from the cache, else through the text tower (cached then). */
static vx_status text_vector(qry_engine *e, const char *text, float *vec, int *hit,
                             double *embed_ms, vx_err *err)
{
    *hit = 0;
    pthread_mutex_lock(&e->mu);
    vx_status st = qry__text_tower(e, err);
    if (st) goto out;
    e->tick++;
    for (size_t i = 0; i < e->text_count; i++) {
        if (strcmp(e->texts[i].text, text)) continue;
        memcpy(vec, e->texts[i].vec, (size_t)e->dim * sizeof *vec);
        e->texts[i].used = e->tick;
        *hit = 1;
        goto out;
    }
    char *plain = qry__vector_text(text);
    if (!plain) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    int64_t t0 = vx_now_ns();
    st = enc_text_embed(e->text, plain, strlen(plain), vec, err);
    *embed_ms += (double)(vx_now_ns() - t0) / 1e6;
    free(plain);
    if (st) goto out;
    /* a free slot, else the least recently used */
    size_t slot = e->text_count;
    if (slot == e->text_cap) {
        slot = 0;
        for (size_t i = 1; i < e->text_count; i++)
            if (e->texts[i].used < e->texts[slot].used) slot = i;
        free(e->texts[slot].text);
        e->texts[slot].text = NULL;
    }
    char *key = strdup(text);
    if (!key) goto out; /* not cached: the vector is still right */
    qry_text_entry *t = &e->texts[slot];
    t->text = key;
    t->vec = e->text_vecs + slot * (size_t)e->dim;
    t->used = e->tick;
    memcpy(t->vec, vec, (size_t)e->dim * sizeof *vec);
    if (slot == e->text_count) e->text_count++;
out:
    pthread_mutex_unlock(&e->mu);
    return st;
}

static int catalog_has_space(st_store *s, const char *model, const char *modality, int dim,
                             vx_err *err, vx_status *st)
{
    int found = 0;
    *st = VX_OK;
    if (dim <= 0) return 0; /* st_space_exists reads dim 0 as "any" */
    *st = st_space_exists(s, model, modality, dim, &found, err);
    return !*st && found;
}

static int filter_set(const qry_filter *f)
{
    return f->library_id || (f->path_prefix && f->path_prefix[0]) || f->min_duration_ms ||
           f->max_duration_ms || f->modified_after_ms || f->modified_before_ms;
}

static vx_status check_request(const qry_engine *e, const qry_request *req, vx_err *err)
{
    if (req->limit < 1 || req->limit > 1000)
        return vx_fail(err, VX_EINVAL, "the result limit must be 1..1000 (got %d)", req->limit);
    if (req->offset < 0 || req->offset > OFFSET_MAX)
        return vx_fail(err, VX_EINVAL, "the offset must be 0..%d (got %d)", OFFSET_MAX,
                       req->offset);
    if (req->modalities & ~((1u << SRCH_MODALITY_COUNT) - 1))
        return vx_fail(err, VX_EINVAL, "unknown modality bits 0x%x", req->modalities);
    if (req->rerank < 0 || req->rerank > 256)
        return vx_fail(err, VX_EINVAL, "rerank must be 0..256 (got %d)", req->rerank);
    if (req->rerank_budget_ms < 0)
        return vx_fail(err, VX_EINVAL, "the re-ranking budget must not be negative");
    if (req->rerank && req->kind != QRY_TEXT)
        return vx_fail(err, VX_EINVAL, "re-ranking applies to text queries only");
    if (req->rerank && !qry_engine_can_rerank(e))
        return vx_fail(err, VX_EINVAL,
                       "re-ranking needs a model with a vision tower and a text tower with the "
                       "matching head (s2 models)%s",
                       e->model ? "" : ": none is configured (--model DIR or VIDX_MODEL)");
    const qry_filter *f = &req->filter;
    if (f->library_id < 0 || f->min_duration_ms < 0 || f->max_duration_ms < 0 ||
        f->modified_after_ms < 0 || f->modified_before_ms < 0)
        return vx_fail(err, VX_EINVAL, "filter values must not be negative");
    if (f->max_duration_ms && f->min_duration_ms > f->max_duration_ms)
        return vx_fail(err, VX_EINVAL, "the minimum duration exceeds the maximum");
    switch (req->kind) {
    case QRY_TEXT:
        if (!req->text) return vx_fail(err, VX_EINVAL, "give the words to search for");
        /* as the lexical translator: a bound on what the cache and the tokenizer see */
        if (strlen(req->text) > SRCH_QUERY_MAX_BYTES)
            return vx_fail(err, VX_ELIMIT, "the query is longer than %d bytes",
                           SRCH_QUERY_MAX_BYTES);
        break;
    case QRY_CLIP_FILE:
        if (!req->clip_path || !req->clip_path[0])
            return vx_fail(err, VX_EINVAL, "give the clip's file");
        break;
    case QRY_CLIP_MEMORY:
        if (!req->clip_data || !req->clip_size)
            return vx_fail(err, VX_EINVAL, "the uploaded clip is empty");
        break;
    case QRY_CLIP_VIDEO:
        if (req->video_id <= 0) return vx_fail(err, VX_EINVAL, "give the video's id");
        break;
    case QRY_SEGMENT:
        if (req->segment_id <= 0) return vx_fail(err, VX_EINVAL, "give the segment's id");
        break;
    default:
        return vx_fail(err, VX_EINVAL, "unknown request kind %d", (int)req->kind);
    }
    return VX_OK;
}

/* Keeps items [offset, offset + limit) of r, ranked from offset + 1. */
static void page(srch_results *r, int offset, int limit)
{
    size_t from = (size_t)offset < r->count ? (size_t)offset : r->count;
    size_t to = r->count - from > (size_t)limit ? from + (size_t)limit : r->count;
    for (size_t i = 0; i < r->count; i++)
        if (i < from || i >= to) srch_result_clear(&r->items[i]);
    memmove(r->items, r->items + from, (to - from) * sizeof *r->items);
    r->count = to - from;
    for (size_t i = 0; i < r->count; i++)
        r->items[i].rank = offset + (int)i + 1;
    r->offset = offset;
}

/* The text tower's embedding size (creating the tower). */
static vx_status text_dim(qry_engine *e, int *dim, vx_err *err)
{
    pthread_mutex_lock(&e->mu);
    vx_status st = qry__text_tower(e, err);
    *dim = e->dim;
    pthread_mutex_unlock(&e->mu);
    return st;
}

vx_status qry_run(qry_engine *e, st_store *s, const qry_request *req, srch_results *out,
                  qry_stats *stats, vx_err *err)
{
    memset(out, 0, sizeof *out);
    qry_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!e || !s || !req) return vx_fail(err, VX_EINVAL, "no engine, store or request");
    vx_status st = check_request(e, req, err);
    if (st) return st;
    int64_t t0 = vx_now_ns();
    srch_options o = srch_options_default();
    o.limit = req->limit;
    o.offset = req->offset;
    o.modalities = req->modalities;
    int64_t *ids = NULL;
    size_t nids = 0;
    float *vec = NULL;
    char *what = NULL;
    if (filter_set(&req->filter)) {
        st_segment_filter f = {req->filter.library_id,        req->filter.path_prefix,
                               req->filter.min_duration_ms,   req->filter.max_duration_ms,
                               req->filter.modified_after_ms, req->filter.modified_before_ms};
        if ((st = st_filter_segments(s, &f, &ids, &nids, err))) return st;
        o.filter_ids = ids;
        o.filter_count = nids;
        o.filter_active = 1;
    }
    /* re-ranking needs the head of the whole list: fetch it unpaged, page after */
    int rerank = req->rerank;
    if (rerank) {
        int want = req->offset + req->limit;
        o.limit = want > rerank ? want : rerank;
        if (o.limit > 1000) o.limit = 1000;
        o.offset = 0;
    }
    switch (req->kind) {
    case QRY_TEXT: {
        unsigned can = qry_engine_text_modalities(e);
        unsigned wanted = req->modalities ? req->modalities : can;
        unsigned missing = wanted & ~can;
        unsigned vector_mods = wanted & can & ((1u << SRCH_VISION) | (1u << SRCH_SPEECH));
        if (!(wanted & can)) {
            st = vx_fail(err, VX_EINVAL, "none of the modalities asked for can run: %s",
                         e->model ? "the model lacks the towers they need"
                                  : "semantic modalities need a model with a text tower "
                                    "(--model DIR or VIDX_MODEL)");
            break;
        }
        if (vector_mods) {
            /* the vector only matters when the catalog has one of its spaces */
            int dim = 0;
            if ((st = text_dim(e, &dim, err))) break;
            int any = 0;
            for (int m = SRCH_VISION; m < SRCH_MODALITY_COUNT && !st; m++)
                if ((vector_mods & (1u << m)) &&
                    catalog_has_space(s, e->info->model_id, srch_modality_name((srch_modality)m),
                                      dim, err, &st))
                    any = 1;
            if (st) break;
            if (any) {
                if (!(vec = malloc((size_t)dim * sizeof *vec))) {
                    st = vx_fail(err, VX_ENOMEM, "out of memory");
                    break;
                }
                if ((st = text_vector(e, req->text, vec, &stats->text_cache_hit, &stats->embed_ms,
                                      err)))
                    break;
                o.query_vector = vec;
                o.query_dim = dim;
            } else {
                /* as srch_search: unless named, speech is optional */
                missing |= req->modalities ? vector_mods : vector_mods & (1u << SRCH_VISION);
            }
            o.vision_model = e->info->model_id;
        }
        o.modalities = wanted & can;
        st = srch_search(s, req->text, &o, out, err);
        if (!st) out->missing_mask |= missing & ~out->active_mask;
        break;
    }
    case QRY_CLIP_FILE:
    case QRY_CLIP_MEMORY:
    case QRY_CLIP_VIDEO: {
        if (req->modalities && !(req->modalities & (1u << SRCH_VISION))) {
            st = vx_fail(err, VX_EINVAL, "clip queries search the vision modality only");
            break;
        }
        if (!qry_engine_can_clip(e)) {
            st = vx_fail(err, VX_EINVAL, "clip queries need a model with a vision tower%s",
                         e->model ? "" : " (--model DIR or VIDX_MODEL)");
            break;
        }
        int dim = 0;
        if ((st = qry__clip_vector(e, s, req, &vec, &dim, &what, &stats->embed_ms, err))) break;
        vx_status has = VX_OK;
        if (!catalog_has_space(s, e->info->model_id, "vision", dim, err, &has)) {
            st = has ? has
                     : vx_fail(err, VX_EUNSUPPORTED,
                               "the catalog has no vision vectors of model %s: index with it "
                               "first",
                               e->info->model_id);
            break;
        }
        o.query_vector = vec;
        o.query_dim = dim;
        o.vision_model = e->info->model_id;
        o.modalities = 1u << SRCH_VISION;
        if ((st = srch_search(s, NULL, &o, out, err))) break;
        free(out->query);
        out->query = what;
        what = NULL;
        break;
    }
    case QRY_SEGMENT:
        st = srch_similar(s, req->segment_id, &o, out, err);
        break;
    }
    if (!st && rerank) {
        st = qry__rerank(e, s, req->text, rerank,
                         req->rerank_budget_ms > 0 ? req->rerank_budget_ms
                                                   : RERANK_BUDGET_DEFAULT_MS,
                         out, stats, err);
        if (!st) page(out, req->offset, req->limit);
    }
    free(ids);
    free(vec);
    free(what);
    if (st) {
        srch_results_free(out);
        return st;
    }
    stats->total = out->total;
    out->took_ms = (double)(vx_now_ns() - t0) / 1e6;
    return VX_OK;
}
