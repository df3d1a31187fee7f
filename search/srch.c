/* search/srch.c — lexical search: FTS5 matches over every text, grouped into ranges of adjacent
 * segments per video, ranked, with the best match's snippet; and the one result JSON schema.
 *
 * DESIGN
 *   1. srch_query_translate: user syntax -> a safe FTS5 expression.
 *   2. st_text_find: the best `candidates` text rows by BM25 (one row = one source's text of
 *      one segment), each with its segment, video and a marked snippet.
 *   3. Title rows describe a whole video: they boost that video's ranges (score and sources);
 *      a video matched only by its title becomes one range over the whole video.
 *   4. Other rows, by video then time: rows whose segments touch or overlap (within
 *      merge_gap_ms) form one range. A range scores its best row plus a tenth of the others,
 *      so more evidence ranks a little higher without drowning a strong single match.
 *      The match's time is its text's; with word times (speech), the time of the first words
 *      that match a query term.
 *   5. With a query vector (search by meaning): vector_join adds each vector space's best
 *      segments (vision, then speech) — joining touching ranges, else merged into ranges of
 *      their own — and fuse_ranges replaces each range's score by the fused one (normalisation
 *      and weights explained there).
 *   6. Ranges sorted by score (ties: video id, start); the page [offset, offset + limit) kept,
 *      ranked from offset + 1. A filter (segment ids) applies to every step's hits.
 *   Per-modality scores stay separate (scores[]). */
#include "srch.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MARK_OPEN "\x02"
#define MARK_CLOSE "\x03"
#define OTHER_HIT_WEIGHT 0.1
#define TITLE_WEIGHT 0.5

srch_options srch_options_default(void)
{
    srch_options o;
    memset(&o, 0, sizeof o);
    o.limit = 10;
    o.snippet_tokens = 16;
    return o;
}

const char *srch_modality_name(srch_modality m)
{
    switch (m) {
    case SRCH_LEXICAL:
        return "lexical";
    case SRCH_VISION:
        return "vision";
    case SRCH_AUDIO:
        return "audio";
    case SRCH_SPEECH:
        return "speech";
    case SRCH_MODALITY_COUNT:
        break;
    }
    return "unknown";
}

/* The file name without folders (path or URL) and without its extension. */
static char *title_of(const char *location)
{
    const char *base = strrchr(location, '/');
    base = base && base[1] ? base + 1 : location;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) n = (size_t)(dot - base);
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, base, n);
        t[n] = 0;
    }
    return t;
}

/* Takes the marks out of a snippet: plain text plus [start, end) spans in code points. */
static vx_status unmark_snippet(const char *marked, srch_result *r, vx_err *err)
{
    size_t n = strlen(marked), spans = 0;
    for (size_t i = 0; i < n; i++)
        if (marked[i] == MARK_OPEN[0]) spans++;
    r->snippet = malloc(n + 1);
    r->highlights = spans ? calloc(spans, sizeof *r->highlights) : NULL;
    if (!r->snippet || (spans && !r->highlights))
        return vx_fail(err, VX_ENOMEM, "out of memory for a snippet");
    size_t w = 0;
    int cp = 0, open = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)marked[i];
        if (c == (unsigned char)MARK_OPEN[0]) {
            open = cp;
            continue;
        }
        if (c == (unsigned char)MARK_CLOSE[0]) {
            if (open >= 0 && r->highlight_count < spans)
                r->highlights[r->highlight_count++] = (srch_span){open, cp};
            open = -1;
            continue;
        }
        r->snippet[w++] = (char)c;
        if ((c & 0xc0) != 0x80) cp++;
    }
    r->snippet[w] = 0;
    return VX_OK;
}

static int cmp_by_video_time(const void *a, const void *b)
{
    const st_text_match *x = *(st_text_match *const *)a, *y = *(st_text_match *const *)b;
    if (x->video_id != y->video_id) return x->video_id < y->video_id ? -1 : 1;
    if (x->seg_start_ms != y->seg_start_ms) return x->seg_start_ms < y->seg_start_ms ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->text_id < y->text_id ? -1 : x->text_id > y->text_id;
}

static int cmp_results(const void *a, const void *b)
{
    const srch_result *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->video.id != y->video.id) return x->video.id < y->video.id ? -1 : 1;
    return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void srch_result_clear(srch_result *r)
{
    free(r->video.path);
    free(r->video.title);
    free(r->match_source);
    free(r->snippet);
    free(r->highlights);
    for (size_t i = 0; i < r->source_count; i++)
        free(r->sources[i]);
    free(r->sources);
    free(r->segment_ids);
    memset(r, 0, sizeof *r);
}

void srch_results_free(srch_results *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->count; i++)
        srch_result_clear(&r->items[i]);
    free(r->items);
    free(r->query);
    free(r->lexical_query);
    memset(r, 0, sizeof *r);
}

static vx_status add_source(srch_result *r, const char *source, vx_err *err)
{
    for (size_t i = 0; i < r->source_count; i++)
        if (!strcmp(r->sources[i], source)) return VX_OK;
    char **grown = realloc(r->sources, (r->source_count + 1) * sizeof *grown);
    if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory");
    r->sources = grown;
    if (!(r->sources[r->source_count] = strdup(source)))
        return vx_fail(err, VX_ENOMEM, "out of memory");
    r->source_count++;
    return VX_OK;
}

static vx_status add_segment(srch_result *r, int64_t id, vx_err *err)
{
    for (size_t i = 0; i < r->segment_count; i++)
        if (r->segment_ids[i] == id) return VX_OK;
    int64_t *grown = realloc(r->segment_ids, (r->segment_count + 1) * sizeof *grown);
    if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory");
    r->segment_ids = grown;
    r->segment_ids[r->segment_count++] = id;
    return VX_OK;
}

/* ---- when inside a text the match was said ---------------------------------------------- */

/* The positive terms of a translated query: its "strings" before a top-level ") NOT (" (which
 * cannot occur inside a string: the translator keeps no parentheses there), each with its
 * trailing '*'. Pointers into expr; at most SRCH_QUERY_MAX_TERMS. */
typedef struct qterm {
    const char *text; /* words separated by single spaces */
    size_t len;
    int prefix;
} qterm;

static int query_terms(const char *expr, qterm *out)
{
    const char *stop = strstr(expr, ") NOT (");
    if (!stop) stop = expr + strlen(expr);
    int n = 0;
    for (const char *p = expr; p < stop && n < SRCH_QUERY_MAX_TERMS; p++) {
        if (*p != '"') continue;
        const char *end = strchr(p + 1, '"');
        if (!end) break;
        out[n].text = p + 1;
        out[n].len = (size_t)(end - p - 1);
        out[n].prefix = end[1] == '*';
        n++;
        p = end;
    }
    return n;
}

/* Does body word [w, w+wlen) equal query word [q, q+qlen) (ASCII case folded; with prefix,
 * start with it)? Speech words are plain lowercase ASCII, which is what this must match. */
static int word_matches(const char *w, size_t wlen, const char *q, size_t qlen, int prefix)
{
    if (prefix ? wlen < qlen : wlen != qlen) return 0;
    for (size_t i = 0; i < qlen; i++) {
        unsigned char a = (unsigned char)w[i], b = (unsigned char)q[i];
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b - 'A' + 'a');
        if (a != b) return 0;
    }
    return 1;
}

/* With word times, narrows the match to the first place a query term occurs in the body:
 * from its first word's start to its last word's end. Leaves r as it is otherwise. */
static void match_word_times(srch_result *r, const st_text_match *h, const char *expr)
{
    if (!h->word_times || !h->word_count || !h->body || !expr) return;
    /* word starts of the body (split at single spaces, as the indexer joined them) */
    size_t nwords = 1;
    for (const char *p = h->body; *p; p++)
        nwords += *p == ' ';
    if (nwords != h->word_count) return; /* not the shape the times describe */
    qterm terms[SRCH_QUERY_MAX_TERMS];
    int nterms = query_terms(expr, terms);
    const char *word = h->body;
    for (size_t i = 0; i < nwords; i++) {
        for (int t = 0; t < nterms; t++) {
            /* match the term's words against body words i, i+1, … */
            const char *q = terms[t].text, *qend = q + terms[t].len, *b = word;
            size_t j = i;
            int ok = 1;
            while (q < qend) {
                const char *qsp = memchr(q, ' ', (size_t)(qend - q));
                size_t qlen = qsp ? (size_t)(qsp - q) : (size_t)(qend - q);
                const char *bsp = strchr(b, ' ');
                size_t blen = bsp ? (size_t)(bsp - b) : strlen(b);
                if (j >= nwords || !word_matches(b, blen, q, qlen, terms[t].prefix && !qsp)) {
                    ok = 0;
                    break;
                }
                q += qlen + (qsp ? 1 : 0);
                if (q < qend) {
                    if (!bsp) {
                        ok = 0;
                        break;
                    }
                    b = bsp + 1;
                    j++;
                }
            }
            if (ok) {
                r->match_start_ms = h->word_times[i].start_ms;
                r->match_end_ms = h->word_times[j].end_ms;
                return;
            }
        }
        const char *sp = strchr(word, ' ');
        if (!sp) break;
        word = sp + 1;
    }
}

/* Starts a result from its best match h. */
static vx_status result_init(srch_result *r, const st_text_match *h, vx_err *err)
{
    memset(r, 0, sizeof *r);
    r->video.id = h->video_id;
    r->video.duration_ms = h->duration_ms;
    r->video.path = strdup(h->location ? h->location : "");
    r->video.title = title_of(h->location ? h->location : "");
    r->match_source = strdup(h->source ? h->source : "");
    if (!r->video.path || !r->video.title || !r->match_source)
        return vx_fail(err, VX_ENOMEM, "out of memory");
    r->match_start_ms = h->start_ms;
    r->match_end_ms = h->end_ms;
    r->score = h->score;
    return unmark_snippet(h->snippet ? h->snippet : "", r, err);
}

static vx_status vector_join(st_store *s, const srch_options *o, int candidates, int m,
                             srch_result **resp, size_t *nresp, double *lo, double *hi,
                             int *nfound_out, vx_err *err);
static vx_status fuse_ranges(st_store *s, const srch_options *o, unsigned active,
                             const double lo[SRCH_MODALITY_COUNT],
                             const double hi[SRCH_MODALITY_COUNT], srch_result *res, size_t nres,
                             vx_err *err);

/* Is segment id inside the filter (always without one)? filter_ids is sorted. */
static int in_filter(const srch_options *o, int64_t id)
{
    if (!o->filter_active) return 1;
    size_t lo = 0, hi = o->filter_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->filter_ids[mid] == id) return 1;
        if (o->filter_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int wanted(const srch_options *o, int m)
{
    return !o->modalities || (o->modalities & (1u << m));
}

/* The lexical candidates: the best `candidates` text rows inside the filter. With a filter,
 * rows are over-fetched (4x at a time) until enough pass or the matches run out, so a narrow
 * filter never loses a match that exists. */
static vx_status lexical_hits(st_store *s, const srch_options *o, const char *expr, int candidates,
                              st_text_match **hits, size_t *nhits, vx_err *err)
{
    int fetch = candidates;
    for (;;) {
        vx_status st = st_text_find(s, expr, fetch, MARK_OPEN, MARK_CLOSE, o->snippet_tokens, hits,
                                    nhits, err);
        if (st || !o->filter_active) return st;
        size_t kept = 0;
        for (size_t i = 0; i < *nhits; i++)
            kept += in_filter(o, (*hits)[i].segment_id);
        if (kept >= (size_t)candidates || *nhits < (size_t)fetch || fetch >= (1 << 28))
            return VX_OK;
        st_text_matches_free(*hits, *nhits);
        *hits = NULL;
        *nhits = 0;
        fetch *= 4;
    }
}

static vx_status search_body(st_store *s, const char *query, const srch_options *opts,
                             srch_results *out, vx_err *err);
static vx_status similar_body(st_store *s, int64_t segment_id, const srch_options *opts,
                              srch_results *out, vx_err *err);

/* One read snapshot per query: every look-up of the query sees the same catalog, and the
 * hundreds of per-candidate reads skip their own lock round-trips (most of a query's time
 * before). Nothing slow (no encoder) runs inside it. */
vx_status srch_search(st_store *s, const char *query, const srch_options *opts, srch_results *out,
                      vx_err *err)
{
    memset(out, 0, sizeof *out);
    vx_status st = st_read_begin(s, err);
    if (st) return st;
    st = search_body(s, query, opts, out, err);
    st_read_end(s);
    return st;
}

vx_status srch_similar(st_store *s, int64_t segment_id, const srch_options *opts, srch_results *out,
                       vx_err *err)
{
    memset(out, 0, sizeof *out);
    vx_status st = st_read_begin(s, err);
    if (st) return st;
    st = similar_body(s, segment_id, opts, out, err);
    st_read_end(s);
    return st;
}

/* Where the n hits lie, read with one statement; *out (malloc'd) is in the hits' order. A hit
 * whose segment this snapshot does not hold has video_id 0 and the caller drops it: with an
 * index shared between handles (st_index_cache) a reader may see a generation committed after
 * its snapshot began (st.h's rule), so such a hit is rare but legitimate, never an error. */
static vx_status hit_spans(st_store *s, const st_hit *hits, size_t n, st_segment_span **out,
                           vx_err *err)
{
    *out = NULL;
    int64_t *ids = calloc(n ? n : 1, sizeof *ids);
    st_segment_span *spans = malloc((n ? n : 1) * sizeof *spans);
    if (!ids || !spans) {
        free(ids);
        free(spans);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = hits[i].segment_id;
    vx_status st = st_segment_spans(s, ids, n, spans, err);
    free(ids);
    if (st) {
        free(spans);
        return st;
    }
    *out = spans;
    return VX_OK;
}

/* Vector-only ranges carry just their video's id until the page is cut: the video row is
 * read for the results returned, not for every candidate range (most never show). */
static vx_status fill_videos(st_store *s, srch_result *res, size_t n, vx_err *err)
{
    for (size_t k = 0; k < n; k++) {
        srch_result *r = &res[k];
        if (r->video.path) continue;
        st_video video;
        vx_status st = st_video_get(s, r->video.id, &video, err);
        if (st) return st;
        r->video.duration_ms = video.duration_ms;
        r->video.path = strdup(video.location ? video.location : "");
        r->video.title = title_of(video.location ? video.location : "");
        st_video_clear(&video);
        if (!r->video.path || !r->video.title) return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    return VX_OK;
}

/* Orders the ranges best first, records the total, keeps the page [offset, offset + limit)
 * (the others cleared), ranks it and reads its videos; *nres becomes the page's size. */
static vx_status cut_page(st_store *s, const srch_options *o, srch_result *res, size_t *nres,
                          srch_results *out, vx_err *err)
{
    size_t n = *nres;
    qsort(res, n, sizeof *res, cmp_results);
    out->total = (int64_t)n;
    out->offset = o->offset;
    size_t from = (size_t)o->offset < n ? (size_t)o->offset : n;
    while (n > from + (size_t)o->limit)
        srch_result_clear(&res[--n]);
    for (size_t k = 0; k < from; k++)
        srch_result_clear(&res[k]);
    memmove(res, res + from, (n - from) * sizeof *res);
    n -= from;
    for (size_t k = 0; k < n; k++)
        res[k].rank = o->offset + (int)k + 1;
    *nres = n;
    return fill_videos(s, res, n, err);
}

static vx_status search_body(st_store *s, const char *query, const srch_options *opts,
                             srch_results *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    srch_options o = opts ? *opts : srch_options_default();
    if (o.limit < 1 || o.limit > 1000)
        return vx_fail(err, VX_EINVAL, "the result limit must be 1..1000 (got %d)", o.limit);
    if (o.offset < 0 || o.offset > 100000)
        return vx_fail(err, VX_EINVAL, "the offset must be 0..100000 (got %d)", o.offset);
    if (o.snippet_tokens < 1 || o.snippet_tokens > 64) o.snippet_tokens = 16;
    if (o.merge_gap_ms < 0) o.merge_gap_ms = 0;
    int want = o.limit + o.offset;
    int candidates = o.candidates > 0 ? o.candidates : (want * 20 > 200 ? want * 20 : 200);
    if (candidates > SRCH_MAX_CANDIDATES) candidates = SRCH_MAX_CANDIDATES;
    int64_t t0 = vx_now_ns();
    vx_status st = VX_OK;
    int have_vector = o.query_vector && o.query_dim > 0 && o.vision_model;
    if (!query && !have_vector)
        return vx_fail(err, VX_EINVAL, "nothing to search for: no query text and no vector");
    /* A vector modality runs when asked for and the catalog holds vectors of that model and
     * size; one asked for that the catalog lacks is reported in missing_mask. */
    unsigned vec_active = 0;
    for (int m = SRCH_VISION; m < SRCH_MODALITY_COUNT && have_vector; m++) {
        if (m == SRCH_AUDIO || !wanted(&o, m)) continue; /* audio: no text-side vector */
        int has = 0;
        if ((st = st_space_exists(s, o.vision_model, srch_modality_name((srch_modality)m),
                                  o.query_dim, &has, err)))
            return st;
        if (has)
            vec_active |= 1u << m;
        else if (o.modalities || m == SRCH_VISION)
            out->missing_mask |= 1u << m; /* speech is optional unless asked for by name */
    }
    int lexical = query && wanted(&o, SRCH_LEXICAL);
    if (lexical) {
        st = srch_query_translate(query, &out->lexical_query, err);
        if (st) {
            if (!vec_active) return st;
            /* the vector part still answers: no lexical results */
            free(out->lexical_query);
            out->lexical_query = NULL;
            lexical = 0;
            st = VX_OK;
        }
    }
    if (!out->lexical_query && !(out->lexical_query = strdup("")))
        return vx_fail(err, VX_ENOMEM, "out of memory");
    if (!(out->query = strdup(query ? query : ""))) {
        srch_results_free(out);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    /* a filter nothing passes: nothing to search */
    if (o.filter_active && !o.filter_count) {
        lexical = 0;
        vec_active = 0;
    }
    st_text_match *hits = NULL;
    size_t nhits = 0;
    if (lexical && (st = lexical_hits(s, &o, out->lexical_query, candidates, &hits, &nhits, err))) {
        if (!vec_active) {
            srch_results_free(out);
            return st;
        }
        lexical = 0;
        hits = NULL;
        nhits = 0;
        st = VX_OK;
    }
    out->active_mask = (lexical ? 1u << SRCH_LEXICAL : 0) | vec_active;
    st_text_match **order = calloc(nhits ? nhits : 1, sizeof *order);
    srch_result *res = calloc(nhits ? nhits : 1, sizeof *res);
    size_t nres = 0;
    if (!order || !res) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    size_t norder = 0;
    for (size_t i = 0; i < nhits; i++)
        if (strcmp(hits[i].source, "title") && in_filter(&o, hits[i].segment_id))
            order[norder++] = &hits[i];
    qsort(order, norder, sizeof *order, cmp_by_video_time);
    /* ranges of touching segments, per video */
    for (size_t i = 0; i < norder && !st;) {
        size_t j = i;
        int64_t end = order[i]->seg_end_ms;
        const st_text_match *best = order[i];
        while (j + 1 < norder && order[j + 1]->video_id == order[i]->video_id &&
               order[j + 1]->seg_start_ms <= end + o.merge_gap_ms) {
            j++;
            if (order[j]->seg_end_ms > end) end = order[j]->seg_end_ms;
            if (order[j]->score > best->score) best = order[j];
        }
        srch_result *r = &res[nres++];
        if ((st = result_init(r, best, err))) break;
        match_word_times(r, best, out->lexical_query);
        r->start_ms = order[i]->seg_start_ms;
        r->end_ms = end;
        double score = best->score;
        for (size_t k = i; k <= j && !st; k++) {
            if (order[k] != best) score += OTHER_HIT_WEIGHT * order[k]->score;
            st = add_source(r, order[k]->source, err);
            if (!st) st = add_segment(r, order[k]->segment_id, err);
        }
        r->score = score;
        i = j + 1;
    }
    /* titles: boost the video's ranges, or stand for the whole video */
    for (size_t i = 0; i < nhits && !st; i++) {
        const st_text_match *h = &hits[i];
        if (strcmp(h->source, "title") || !in_filter(&o, h->segment_id)) continue;
        int found = 0;
        for (size_t k = 0; k < nres && !st; k++) {
            if (res[k].video.id != h->video_id) continue;
            found = 1;
            res[k].score += TITLE_WEIGHT * h->score;
            st = add_source(&res[k], "title", err);
        }
        if (found || st) continue;
        srch_result *r = &res[nres++];
        if ((st = result_init(r, h, err))) break;
        r->start_ms = 0;
        r->end_ms = h->duration_ms > 0 ? h->duration_ms : h->seg_end_ms;
        r->match_start_ms = 0;
        r->match_end_ms = r->end_ms;
        if (!(st = add_source(r, "title", err))) st = add_segment(r, h->segment_id, err);
    }
    if (st) goto out;
    for (size_t k = 0; k < nres; k++) {
        res[k].scores[SRCH_LEXICAL] = res[k].score;
        res[k].scored_mask = 1u << SRCH_LEXICAL;
        if (res[k].source_count > 1)
            qsort(res[k].sources, res[k].source_count, sizeof *res[k].sources, cmp_str);
    }
    if (vec_active) {
        double lo[SRCH_MODALITY_COUNT] = {0}, hi[SRCH_MODALITY_COUNT] = {0};
        unsigned active = nres ? 1u << SRCH_LEXICAL : 0;
        for (int m = SRCH_VISION; m < SRCH_MODALITY_COUNT && !st; m++) {
            if (!(vec_active & (1u << m))) continue;
            int nfound = 0;
            st = vector_join(s, &o, candidates, m, &res, &nres, &lo[m], &hi[m], &nfound, err);
            if (nfound) active |= 1u << m;
        }
        if (!st) st = fuse_ranges(s, &o, active, lo, hi, res, nres, err);
        if (st) goto out;
    }
    if ((st = cut_page(s, &o, res, &nres, out, err))) goto out;
    out->items = res;
    out->count = nres;
    res = NULL;
    nres = 0;
out:
    for (size_t k = 0; res && k < nres; k++)
        srch_result_clear(&res[k]);
    free(res);
    free(order);
    st_text_matches_free(hits, nhits);
    out->took_ms = (double)(vx_now_ns() - t0) / 1e6;
    if (st) srch_results_free(out);
    return st;
}

/* ---- JSON -------------------------------------------------------------------------------- */

char *srch_results_json(const srch_results *r, int pretty, vx_err *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    cJSON_AddStringToObject(root, "query", r->query ? r->query : "");
    cJSON_AddStringToObject(root, "lexical_query", r->lexical_query ? r->lexical_query : "");
    cJSON *mods = cJSON_AddArrayToObject(root, "modalities");
    for (int m = 0; m < SRCH_MODALITY_COUNT; m++)
        if (r->active_mask & (1u << m))
            cJSON_AddItemToArray(mods, cJSON_CreateString(srch_modality_name((srch_modality)m)));
    cJSON_AddNumberToObject(root, "took_ms", r->took_ms);
    cJSON_AddNumberToObject(root, "count", (double)r->count);
    cJSON_AddNumberToObject(root, "total", (double)r->total);
    cJSON_AddNumberToObject(root, "offset", r->offset);
    cJSON *items = cJSON_AddArrayToObject(root, "results");
    for (size_t i = 0; items && i < r->count; i++) {
        const srch_result *x = &r->items[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) goto oom;
        cJSON_AddItemToArray(items, o);
        cJSON_AddNumberToObject(o, "rank", x->rank);
        cJSON_AddNumberToObject(o, "score", x->score);
        if (x->reranked) cJSON_AddNumberToObject(o, "rerank_score", x->rerank_score);
        cJSON *scores = cJSON_AddObjectToObject(o, "scores");
        for (int m = 0; m < SRCH_MODALITY_COUNT; m++)
            if (x->scored_mask & (1u << m))
                cJSON_AddNumberToObject(scores, srch_modality_name((srch_modality)m), x->scores[m]);
        cJSON *v = cJSON_AddObjectToObject(o, "video");
        cJSON_AddNumberToObject(v, "id", (double)x->video.id);
        cJSON_AddStringToObject(v, "path", x->video.path ? x->video.path : "");
        cJSON_AddStringToObject(v, "title", x->video.title ? x->video.title : "");
        cJSON_AddNumberToObject(v, "duration_ms", (double)x->video.duration_ms);
        cJSON_AddNumberToObject(o, "start_ms", (double)x->start_ms);
        cJSON_AddNumberToObject(o, "end_ms", (double)x->end_ms);
        cJSON *m = cJSON_AddObjectToObject(o, "match");
        cJSON_AddStringToObject(m, "source", x->match_source ? x->match_source : "");
        cJSON_AddNumberToObject(m, "start_ms", (double)x->match_start_ms);
        cJSON_AddNumberToObject(m, "end_ms", (double)x->match_end_ms);
        cJSON_AddStringToObject(m, "snippet", x->snippet ? x->snippet : "");
        cJSON *hl = cJSON_AddArrayToObject(m, "highlights");
        for (size_t k = 0; hl && k < x->highlight_count; k++) {
            int pair[2] = {x->highlights[k].start, x->highlights[k].end};
            cJSON_AddItemToArray(hl, cJSON_CreateIntArray(pair, 2));
        }
        cJSON *srcs = cJSON_AddArrayToObject(o, "sources");
        for (size_t k = 0; srcs && k < x->source_count; k++)
            cJSON_AddItemToArray(srcs, cJSON_CreateString(x->sources[k]));
        cJSON *segs = cJSON_AddArrayToObject(o, "segment_ids");
        for (size_t k = 0; segs && k < x->segment_count; k++)
            cJSON_AddItemToArray(segs, cJSON_CreateNumber((double)x->segment_ids[k]));
    }
    char *text = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return vx_fail(err, VX_ENOMEM, "out of memory writing JSON"), NULL;
    return text;
oom:
    cJSON_Delete(root);
    vx_fail(err, VX_ENOMEM, "out of memory writing JSON");
    return NULL;
}

/* ---- similar segments ---------------------------------------------------------------------- */

typedef struct similar_hit {
    int64_t segment_id;
    int64_t video_id, start_ms, end_ms;
    double scores[SRCH_MODALITY_COUNT];
    unsigned mask;
    double fused;
} similar_hit;

static int modality_of_space(const char *name)
{
    if (!strcmp(name, "vision")) return SRCH_VISION;
    if (!strcmp(name, "audio")) return SRCH_AUDIO;
    if (!strcmp(name, "speech")) return SRCH_SPEECH;
    return -1;
}

static int cmp_similar_by_video_time(const void *a, const void *b)
{
    const similar_hit *x = a, *y = b;
    if (x->video_id != y->video_id) return x->video_id < y->video_id ? -1 : 1;
    if (x->start_ms != y->start_ms) return x->start_ms < y->start_ms ? -1 : 1;
    return x->segment_id < y->segment_id ? -1 : x->segment_id > y->segment_id;
}

/* Adds (or raises) the cosine of segment id in modality m; hits grows as needed. */
static vx_status similar_note(similar_hit **hits, size_t *n, size_t *cap, int64_t id, int m,
                              double score, vx_err *err)
{
    for (size_t i = 0; i < *n; i++) {
        similar_hit *h = &(*hits)[i];
        if (h->segment_id != id) continue;
        if (!(h->mask & (1u << m)) || score > h->scores[m]) h->scores[m] = score;
        h->mask |= 1u << m;
        return VX_OK;
    }
    if (*n == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 64;
        similar_hit *grown = realloc(*hits, grown_cap * sizeof *grown);
        if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory");
        *hits = grown;
        *cap = grown_cap;
    }
    similar_hit *h = &(*hits)[(*n)++];
    memset(h, 0, sizeof *h);
    h->segment_id = id;
    h->scores[m] = score;
    h->mask = 1u << m;
    return VX_OK;
}

static vx_status similar_body(st_store *s, int64_t segment_id, const srch_options *opts,
                              srch_results *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    srch_options o = opts ? *opts : srch_options_default();
    if (o.limit < 1 || o.limit > 1000)
        return vx_fail(err, VX_EINVAL, "the result limit must be 1..1000 (got %d)", o.limit);
    if (o.offset < 0 || o.offset > 100000)
        return vx_fail(err, VX_EINVAL, "the offset must be 0..100000 (got %d)", o.offset);
    if (o.merge_gap_ms < 0) o.merge_gap_ms = 0;
    int want = o.limit + o.offset;
    int k = (o.candidates > 0 ? o.candidates : (want * 20 > 200 ? want * 20 : 200));
    if (k > SRCH_MAX_CANDIDATES) k = SRCH_MAX_CANDIDATES;
    k++; /* the segment itself comes back too */
    int64_t t0 = vx_now_ns();
    st_segment self;
    vx_status st = st_segment_get(s, segment_id, &self, err);
    if (st) return st;
    st_segment_clear(&self);
    st_space_info *spaces = NULL;
    size_t space_count = 0;
    if ((st = st_space_list(s, &spaces, &space_count, err))) return st;
    similar_hit *hits = NULL;
    size_t nhits = 0, cap = 0;
    srch_result *res = NULL;
    size_t nres = 0;
    float *vec = NULL;
    st_hit *found = calloc((size_t)k, sizeof *found);
    if (!found) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    unsigned used = 0;
    for (size_t i = 0; i < space_count && !st; i++) {
        const st_space_info *sp = &spaces[i];
        int m = modality_of_space(sp->modality);
        if (m < 0 || sp->dim <= 0 || !sp->has_vectors) continue;
        float *grown = realloc(vec, (size_t)sp->dim * sizeof *grown);
        if (!grown) {
            st = vx_fail(err, VX_ENOMEM, "out of memory");
            break;
        }
        vec = grown;
        vx_err e2 = {0};
        vx_status got = st_embedding_get(s, segment_id, sp->model, sp->modality, sp->dim, vec, &e2);
        if (got == VX_ENOTFOUND) continue;
        if (got) {
            st = vx_fail(err, got, "%s", e2.msg);
            break;
        }
        int nfound = 0;
        used |= 1u << m;
        if (o.filter_active && !o.filter_count) continue; /* nothing passes the filter */
        if ((st = st_search(s, sp->model, sp->modality, vec, sp->dim, k,
                            o.filter_active ? o.filter_ids : NULL,
                            o.filter_active ? o.filter_count : 0, found, &nfound, err)))
            break;
        for (int j = 0; j < nfound && !st; j++)
            if (found[j].segment_id != segment_id)
                st = similar_note(&hits, &nhits, &cap, found[j].segment_id, m, found[j].score, err);
    }
    if (st) goto out;
    if (!used) {
        st = vx_fail(err, VX_EUNSUPPORTED,
                     "segment %" PRId64 " has no stored vectors: index with a model (--model DIR)",
                     segment_id);
        goto out;
    }
    int nused = 0;
    for (int m = 0; m < SRCH_MODALITY_COUNT; m++)
        nused += (used >> m) & 1;
    /* where the hits lie: one statement for all of them */
    st_hit *as_hits = calloc(nhits ? nhits : 1, sizeof *as_hits);
    st_segment_span *spans = NULL;
    if (!as_hits) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nhits; i++)
        as_hits[i] = (st_hit){hits[i].segment_id, 0};
    st = hit_spans(s, as_hits, nhits, &spans, err);
    free(as_hits);
    if (st) goto out;
    size_t kept = 0;
    for (size_t i = 0; i < nhits; i++) {
        if (!spans[i].video_id) continue; /* not in this snapshot: see hit_spans */
        double sum = 0;
        for (int m = 0; m < SRCH_MODALITY_COUNT; m++)
            if (hits[i].mask & (1u << m)) sum += hits[i].scores[m];
        hits[kept] = hits[i];
        hits[kept].fused = sum / nused;
        hits[kept].video_id = spans[i].video_id;
        hits[kept].start_ms = spans[i].start_ms;
        hits[kept].end_ms = spans[i].end_ms;
        kept++;
    }
    nhits = kept;
    free(spans);
    qsort(hits, nhits, sizeof *hits, cmp_similar_by_video_time);
    if (!(res = calloc(nhits ? nhits : 1, sizeof *res))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nhits && !st;) {
        size_t j = i;
        int64_t end = hits[i].end_ms;
        const similar_hit *best = &hits[i];
        while (j + 1 < nhits && hits[j + 1].video_id == hits[i].video_id &&
               hits[j + 1].start_ms <= end + o.merge_gap_ms) {
            j++;
            if (hits[j].end_ms > end) end = hits[j].end_ms;
            if (hits[j].fused > best->fused) best = &hits[j];
        }
        srch_result *r = &res[nres++];
        r->video.id = best->video_id; /* the rest: fill_videos, for the page only */
        int best_m = -1;
        for (int m = 0; m < SRCH_MODALITY_COUNT; m++)
            if ((best->mask & (1u << m)) && (best_m < 0 || best->scores[m] > best->scores[best_m]))
                best_m = m;
        r->match_source = strdup(srch_modality_name((srch_modality)(best_m < 0 ? 0 : best_m)));
        r->snippet = strdup("");
        if (!r->match_source || !r->snippet) {
            st = vx_fail(err, VX_ENOMEM, "out of memory");
            break;
        }
        r->start_ms = hits[i].start_ms;
        r->end_ms = end;
        r->match_start_ms = best->start_ms;
        r->match_end_ms = best->end_ms;
        r->score = best->fused;
        for (size_t q = i; q <= j && !st; q++) {
            for (int m = 0; m < SRCH_MODALITY_COUNT && !st; m++) {
                if (!(hits[q].mask & (1u << m))) continue;
                if (!(r->scored_mask & (1u << m)) || hits[q].scores[m] > r->scores[m])
                    r->scores[m] = hits[q].scores[m];
                r->scored_mask |= 1u << m;
                st = add_source(r, srch_modality_name((srch_modality)m), err);
            }
            if (!st) st = add_segment(r, hits[q].segment_id, err);
        }
        if (r->source_count > 1) qsort(r->sources, r->source_count, sizeof *r->sources, cmp_str);
        i = j + 1;
    }
    if (st) goto out;
    if ((st = cut_page(s, &o, res, &nres, out, err))) goto out;
    out->query = vx_asprintf(err, "segment:%" PRId64, segment_id);
    out->lexical_query = strdup("");
    if (!out->query || !out->lexical_query) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    out->active_mask = used;
    out->items = res;
    out->count = nres;
    res = NULL;
    nres = 0;
out:
    for (size_t q = 0; res && q < nres; q++)
        srch_result_clear(&res[q]);
    free(res);
    free(hits);
    free(found);
    free(vec);
    st_spaces_free(spaces, space_count);
    out->took_ms = (double)(vx_now_ns() - t0) / 1e6;
    if (st) srch_results_free(out);
    return st;
}

/* ---- search by meaning: vision hits joined with the lexical ranges, then fused ------------- */

double srch_norm_minmax(double x, double lo, double hi)
{
    if (!(hi > lo)) return 1.0;
    double v = (x - lo) / (hi - lo);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

double srch_fuse(const double norm[SRCH_MODALITY_COUNT], unsigned has, unsigned active)
{
    double weight[SRCH_MODALITY_COUNT] = {1, 1, 1, 1};
    return srch_fuse_weighted(norm, weight, has, active);
}

double srch_fuse_weighted(const double norm[SRCH_MODALITY_COUNT],
                          const double weight[SRCH_MODALITY_COUNT], unsigned has, unsigned active)
{
    double sum = 0, wsum = 0;
    for (int m = 0; m < SRCH_MODALITY_COUNT; m++) {
        if (!(active & (1u << m)) || !(weight[m] > 0)) continue;
        wsum += weight[m];
        if (has & (1u << m)) sum += weight[m] * norm[m];
    }
    return wsum > 0 ? sum / wsum : 0;
}

double srch_speech_quality(int subtitle_words, int asr_words)
{
    if (subtitle_words > 0) return 1.0;
    if (asr_words <= 0) return 0.0;
    double q = (double)asr_words / SRCH_SPEECH_FULL_WORDS;
    return q < SRCH_SPEECH_MIN_WEIGHT ? SRCH_SPEECH_MIN_WEIGHT : q > 1 ? 1 : q;
}

/* Adds modality m's nearest segments (inside the filter) to the ranges: a hit touching a range
 * of its video joins it; the others merge into ranges of their own, as lexical hits do.
 * scores[m] keeps the raw cosine (the range's best); *lo / *hi: the cosines' span. */
static vx_status vector_join(st_store *s, const srch_options *o, int candidates, int m,
                             srch_result **resp, size_t *nresp, double *lo, double *hi,
                             int *nfound_out, vx_err *err)
{
    vx_status st = VX_OK;
    size_t nold = *nresp;
    const char *name = srch_modality_name((srch_modality)m);
    st_hit *found = calloc((size_t)candidates, sizeof *found);
    similar_hit *vh = NULL;
    int nfound = 0;
    *nfound_out = 0;
    if (!found) return vx_fail(err, VX_ENOMEM, "out of memory");
    if ((st = st_search(s, o->vision_model, name, o->query_vector, o->query_dim, candidates,
                        o->filter_active ? o->filter_ids : NULL,
                        o->filter_active ? o->filter_count : 0, found, &nfound, err)))
        goto out;
    if (!(vh = calloc(nfound ? (size_t)nfound : 1, sizeof *vh))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    st_segment_span *spans = NULL;
    if ((st = hit_spans(s, found, (size_t)nfound, &spans, err))) goto out;
    int kept = 0; /* hits of segments this snapshot holds (see hit_spans) */
    for (int i = 0; i < nfound; i++)
        if (spans[i].video_id) {
            found[kept] = found[i];
            spans[kept++] = spans[i];
        }
    nfound = kept;
    for (int i = 0; i < nfound; i++) {
        vh[i].segment_id = found[i].segment_id;
        vh[i].video_id = spans[i].video_id;
        vh[i].start_ms = spans[i].start_ms;
        vh[i].end_ms = spans[i].end_ms;
        vh[i].scores[m] = found[i].score;
        vh[i].mask = 1u << m;
        if (!i || found[i].score < *lo) *lo = found[i].score;
        if (!i || found[i].score > *hi) *hi = found[i].score;
    }
    free(spans);
    srch_result *grown = realloc(*resp, (nold + (size_t)nfound + 1) * sizeof *grown);
    if (!grown) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    *resp = grown;
    srch_result *res = grown;
    /* a hit touching a range of its video joins it */
    for (int i = 0; i < nfound && !st; i++) {
        for (size_t k = 0; k < nold && !st; k++) {
            srch_result *r = &res[k];
            if (r->video.id != vh[i].video_id || vh[i].start_ms > r->end_ms + o->merge_gap_ms ||
                vh[i].end_ms < r->start_ms - o->merge_gap_ms)
                continue;
            double c = vh[i].scores[m];
            if (!(r->scored_mask & (1u << m)) || c > r->scores[m]) r->scores[m] = c;
            r->scored_mask |= 1u << m;
            if (vh[i].start_ms < r->start_ms) r->start_ms = vh[i].start_ms;
            if (vh[i].end_ms > r->end_ms) r->end_ms = vh[i].end_ms;
            if (!(st = add_source(r, name, err))) st = add_segment(r, vh[i].segment_id, err);
            vh[i].mask = 0; /* used */
            break;
        }
    }
    if (st) goto out;
    /* the others: ranges of touching segments per video, as lexical hits merge */
    size_t nv = 0;
    for (int i = 0; i < nfound; i++)
        if (vh[i].mask) vh[nv++] = vh[i];
    qsort(vh, nv, sizeof *vh, cmp_similar_by_video_time);
    size_t nres = nold;
    for (size_t i = 0; i < nv && !st;) {
        size_t j = i;
        int64_t end = vh[i].end_ms;
        const similar_hit *best = &vh[i];
        while (j + 1 < nv && vh[j + 1].video_id == vh[i].video_id &&
               vh[j + 1].start_ms <= end + o->merge_gap_ms) {
            j++;
            if (vh[j].end_ms > end) end = vh[j].end_ms;
            if (vh[j].scores[m] > best->scores[m]) best = &vh[j];
        }
        srch_result *r = &res[nres++];
        memset(r, 0, sizeof *r);
        r->video.id = best->video_id; /* path, title, duration: fill_videos, for the page only */
        r->match_source = strdup(name);
        r->snippet = strdup("");
        if (!r->match_source || !r->snippet) {
            st = vx_fail(err, VX_ENOMEM, "out of memory");
            break;
        }
        r->start_ms = vh[i].start_ms;
        r->end_ms = end;
        r->match_start_ms = best->start_ms;
        r->match_end_ms = best->end_ms;
        r->scores[m] = best->scores[m];
        r->scored_mask = 1u << m;
        st = add_source(r, name, err);
        for (size_t q = i; q <= j && !st; q++)
            st = add_segment(r, vh[q].segment_id, err);
        i = j + 1;
    }
    *nresp = nres;
    *nfound_out = nfound;
out:
    free(vh);
    free(found);
    return st;
}

/* Weight of modality m for range r (DECISIONS §8: presence and quality, no learned
 * parameters). Lexical: 1 (every video has at least its title). Vision: 1 when a segment of
 * the range has a vision vector of the model, else 0 (no video stream, or not indexed with this
 * model: the modality does not apply). Speech: srch_speech_quality of the range's speech and
 * subtitle words when a segment has a speech vector, else 0 (no speech: no penalty). */
static vx_status range_weights(st_store *s, const srch_options *o, unsigned active,
                               const srch_result *r, float *scratch, double w[SRCH_MODALITY_COUNT],
                               vx_err *err)
{
    w[SRCH_LEXICAL] = 1;
    w[SRCH_AUDIO] = 0;
    w[SRCH_VISION] = w[SRCH_SPEECH] = 0;
    for (int m = SRCH_VISION; m < SRCH_MODALITY_COUNT; m++) {
        if (!(active & (1u << m)) || m == SRCH_AUDIO) continue;
        int present = (r->scored_mask >> m) & 1;
        for (size_t i = 0; i < r->segment_count && !present; i++) {
            vx_err e2 = {0};
            vx_status got =
                st_embedding_get(s, r->segment_ids[i], o->vision_model,
                                 srch_modality_name((srch_modality)m), o->query_dim, scratch, &e2);
            if (!got)
                present = 1;
            else if (got != VX_ENOTFOUND && got != VX_EINVAL)
                return vx_fail(err, got, "%s", e2.msg);
        }
        if (!present) continue;
        if (m == SRCH_VISION) {
            w[m] = 1;
            continue;
        }
        int sub = 0, asr = 0;
        for (size_t i = 0; i < r->segment_count; i++) {
            st_text *texts = NULL;
            size_t nt = 0;
            vx_status st = st_text_list(s, r->segment_ids[i], &texts, &nt, err);
            if (st) return st;
            for (size_t k = 0; k < nt; k++) {
                int words = 0, in_word = 0;
                for (const char *p = texts[k].body ? texts[k].body : ""; *p; p++) {
                    int space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
                    if (!space && !in_word) words++;
                    in_word = !space;
                }
                if (!strcmp(texts[k].source, "subtitle")) sub += words;
                if (!strcmp(texts[k].source, "asr")) asr += words;
            }
            st_texts_free(texts, nt);
        }
        w[m] = srch_speech_quality(sub, asr);
        /* a speech vector exists, so some speech was there even if its text is gone */
        if (!(w[m] > 0)) w[m] = SRCH_SPEECH_MIN_WEIGHT;
    }
    return VX_OK;
}

/* Normalisation, chosen per modality:
 *   lexical: score / the best range's score. BM25 has no fixed scale (it grows with term count
 *     and rarity), but 0 means "no evidence", so a ratio to the best keeps that zero meaningful
 *     and the relative strength of matches.
 *   vision, speech: min-max of the cosines within the candidate set. Raw cosines of a text query
 *     against stored vectors sit in a narrow band whose place differs per model, so only their
 *     spread within this query's candidates says anything; min-max keeps the gaps (a rank-based
 *     mapping would make a near-tie look like a full step). scores[m] keeps the raw cosine.
 * Then srch_fuse_weighted with range_weights. */
static vx_status fuse_ranges(st_store *s, const srch_options *o, unsigned active,
                             const double lo[SRCH_MODALITY_COUNT],
                             const double hi[SRCH_MODALITY_COUNT], srch_result *res, size_t nres,
                             vx_err *err)
{
    double lex_best = 0;
    for (size_t k = 0; k < nres; k++)
        if ((res[k].scored_mask & 1u << SRCH_LEXICAL) && res[k].scores[SRCH_LEXICAL] > lex_best)
            lex_best = res[k].scores[SRCH_LEXICAL];
    float *scratch = malloc((size_t)o->query_dim * sizeof *scratch);
    if (!scratch) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status st = VX_OK;
    for (size_t k = 0; k < nres && !st; k++) {
        srch_result *r = &res[k];
        double norm[SRCH_MODALITY_COUNT] = {0}, w[SRCH_MODALITY_COUNT];
        if (r->scored_mask & (1u << SRCH_LEXICAL))
            norm[SRCH_LEXICAL] = lex_best > 0 ? r->scores[SRCH_LEXICAL] / lex_best : 1.0;
        for (int m = SRCH_VISION; m < SRCH_MODALITY_COUNT; m++)
            if (r->scored_mask & (1u << m)) norm[m] = srch_norm_minmax(r->scores[m], lo[m], hi[m]);
        if ((st = range_weights(s, o, active, r, scratch, w, err))) break;
        r->score = srch_fuse_weighted(norm, w, r->scored_mask, active);
        if (r->source_count > 1) qsort(r->sources, r->source_count, sizeof *r->sources, cmp_str);
        if (r->segment_count > 1)
            qsort(r->segment_ids, r->segment_count, sizeof *r->segment_ids, cmp_i64);
    }
    free(scratch);
    return st;
}
