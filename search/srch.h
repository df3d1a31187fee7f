/* search/ — answers queries over a vidx catalog with ranked, timestamped ranges of videos.
 *
 * Today: lexical search (SQLite FTS5, BM25) over every stored text — speech transcripts
 * ("asr"), subtitles ("subtitle"), on-screen text ("ocr") and titles/file names ("title").
 * The user's query syntax is translated here into a safe FTS5 expression (srch_query_translate),
 * so nothing a user types reaches FTS5's parser unchecked. Hits of adjacent segments of one video
 * merge into one range. Each result keeps a score per modality (srch_modality). Search by meaning:
 * given a query vector (srch_options.query_vector: the text tower's for text, the vision
 * tower's for a clip; query/ computes it, so search/ stays free of encoder/), the nearest
 * segments of the model's "vision" and "speech" spaces join in and the modalities' normalised
 * scores are fused with weights from each range's presence and quality (srch_fuse_weighted:
 * DECISIONS §8, no learned parameters). Filters (segment ids) and paging (offset) apply to
 * every modality. The result type and its JSON stay the same (docs/api.md). Re-ranking with the
 * matching head needs the encoder: query/ does it on these results (srch_result.rerank_score).
 *
 * Usage (what `vidx search` does):
 *
 *     srch_options o = srch_options_default(); o.limit = 10;
 *     srch_results r; vx_err err = {0};
 *     if (srch_search(store, "\"red car\" -truck", &o, &r, &err)) { ... err.msg ... }
 *     char *json = srch_results_json(&r, 1, &err);   // the one result schema
 *     srch_results_free(&r); free(json);
 *
 * Thread safety: the functions are reentrant; srch_search uses the st_store from the calling
 * thread only (st.h's rule: one thread at a time per handle).
 *
 * Consistency and cost: srch_search and srch_similar each read the catalog in one snapshot
 * (st_read_begin), so a query never mixes two catalog generations; the handle must not be
 * inside a writer's st_begin transaction with uncommitted rows it expects to search.
 *
 * Ownership: srch_results owns every string and array in it until srch_results_free. */
#ifndef SRCH_H
#define SRCH_H

#include "st.h"
#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- query translation ------------------------------------------------------------------- */

/* Longest query accepted (bytes) and most terms in one query. */
#define SRCH_QUERY_MAX_BYTES 2048
#define SRCH_QUERY_MAX_TERMS 32

/* Translates what a user types into an FTS5 expression that cannot be a syntax error:
 *   words           all must occur (AND):            red car      -> "red" AND "car"
 *   "quoted phrase" the words in this order:         "red car"    -> "red car"
 *   prefix*         words that start so:             trans*       -> "trans"*
 *   -word, -"a b"   texts containing it are left out: car -truck  -> ("car") NOT ("truck")
 *   a OR b          either (OR in capitals, between two terms)
 * Everything else is text: FTS5's operators and punctuation (NEAR(, ^, :, +, (, ), *, -, lone
 * quotes) are quoted or dropped; an unbalanced quote runs to the end; control characters and
 * invalid UTF-8 are spaces. A query with no words is VX_EINVAL ("no words to search for"),
 * one with only excluded words too; longer than SRCH_QUERY_MAX_BYTES or with more than
 * SRCH_QUERY_MAX_TERMS terms is VX_ELIMIT. *out is malloc'd (free()). Pure. */
vx_status srch_query_translate(const char *query, char **out, vx_err *err);

/* ---- results ----------------------------------------------------------------------------- */

/* Modalities a result can be scored in. SRCH_LEXICAL, and with a query vector SRCH_VISION and
 * SRCH_SPEECH, are filled by srch_search; SRCH_AUDIO only by srch_similar (the "audio" space;
 * a text vector is never searched there: docs/api.md, "Audio"). */
typedef enum srch_modality {
    SRCH_LEXICAL = 0, /* FTS5 BM25 over transcripts, subtitles, OCR text, titles */
    SRCH_VISION = 1,  /* text-to-video embeddings (vision tower) */
    SRCH_AUDIO = 2,   /* audio-tower vectors (s2-6B); find-similar only */
    SRCH_SPEECH = 3,  /* speech and subtitle text through the text tower (semantic speech) */
    SRCH_MODALITY_COUNT
} srch_modality;

/* "lexical", "vision", "audio", "speech"; never NULL. */
const char *srch_modality_name(srch_modality m);

/* A highlighted span of a snippet: [start, end) in Unicode code points of the snippet text. */
typedef struct srch_span {
    int start, end;
} srch_span;

typedef struct srch_video {
    int64_t id;
    char *path;  /* the catalog's location: a path or URL */
    char *title; /* the file name without folder and extension */
    int64_t duration_ms;
} srch_video;

typedef struct srch_result {
    int rank; /* 1 = best */
    double score;
    double scores[SRCH_MODALITY_COUNT]; /* valid where bit m of scored_mask is set */
    unsigned scored_mask;
    srch_video video;
    int64_t start_ms, end_ms; /* the range: merged adjacent matching segments */
    /* The best match inside the range. */
    char *match_source; /* "asr", "subtitle", "ocr", "title" */
    int64_t match_start_ms, match_end_ms;
    char *snippet; /* plain text around the match ("…" where cut) */
    srch_span *highlights;
    size_t highlight_count;
    char **sources; /* every source that matched in the range, sorted, unique */
    size_t source_count;
    int64_t *segment_ids; /* the matching segments, by time */
    size_t segment_count;
    /* Re-ranking (query/, rerank=K): the matching head's logit for the query and the range's
     * best segment; valid when reranked is 1. Re-ranked ranges come first, ordered by it. */
    int reranked;
    double rerank_score;
} srch_result;

typedef struct srch_results {
    char *query;         /* as typed */
    char *lexical_query; /* the FTS5 expression it became */
    srch_result *items;
    size_t count;
    unsigned active_mask;  /* modalities that took part (bit per srch_modality) */
    unsigned missing_mask; /* modalities asked for whose vectors the catalog lacks (nothing
                              indexed with that model): those parts did not run. With
                              srch_options.modalities 0, only vision counts as asked for
                              (speech vectors exist only where there was speech) */
    double took_ms;
    int64_t total; /* ranges found among the candidates read, before paging: every range
                      when the matches are fewer than the candidates (always for lexical
                      search with fewer matching texts), else a lower bound that grows with
                      offset + limit (vector spaces rank every vector) */
    int offset;    /* ranges skipped (the request's offset) */
} srch_results;

/* Most candidates read per modality, whatever the page asks for. */
#define SRCH_MAX_CANDIDATES 50000

typedef struct srch_options {
    int limit;            /* results wanted, 1..1000 (default 10) */
    int candidates;       /* hits read per modality before merging; 0: max(200, 20 * (offset
                             + limit)), at most SRCH_MAX_CANDIDATES */
    int64_t merge_gap_ms; /* hits of one video at most this far apart merge (default 0:
                             touching or overlapping segments) */
    int snippet_tokens;   /* tokens in a snippet, 1..64 (default 16) */
    /* Search by meaning: the query through a model's text tower (enc_text_embed: the shared
     * text-video space), searched in the catalog's (vision_model, "vision") index. NULL/0:
     * lexical only. The caller embeds, so search/ does not depend on encoder/. */
    const float *query_vector;
    int query_dim;
    const char *vision_model; /* the model id the vectors were indexed with */
    /* ---- added for the query service (query/) ---- */
    /* Modalities wanted (bits 1u << srch_modality); 0: every one the catalog has. With a query
     * vector, SRCH_SPEECH searches the (vision_model, "speech") space (segments' speech and
     * subtitle text through the same text tower) with the same vector. */
    unsigned modalities;
    /* Filter: with filter_active, only segments in filter_ids (sorted ascending, unique;
     * filter_count 0 = none match) are considered, in the vector search (st_search's id
     * selector: exact best among them) and in the lexical search (over-fetch until the
     * matches are exhausted), so a narrow filter never drops matches. */
    const int64_t *filter_ids;
    size_t filter_count;
    int filter_active;
    int offset; /* ranges skipped before the limit (paging), 0..100000 */
} srch_options;

srch_options srch_options_default(void);

/* Searches s for query (user syntax, see srch_query_translate; NULL: no lexical part, then a
 * query vector is required). Results are ranges, best first: items [offset, offset + limit) of
 * the ranked list (ranks from offset + 1; total counts the list); none is not an error. A query
 * the translator refuses is VX_EINVAL/VX_ELIMIT with a message fit to show the user.
 * With opts->query_vector, each wanted vector space (vision_model, "vision" / "speech") adds its
 * best `candidates` segments (inside the filter): every modality's scores are normalised within
 * its candidate set and fused with per-range weights (srch_fuse_weighted); a hit touching a
 * range of its video joins that range, the others merge into ranges as lexical hits do. The
 * lexical part failing (a query of only excluded words, text FTS5 refuses) then means "no
 * lexical results", not an error. If the catalog has no vectors of vision_model, that part does
 * not run and missing_mask says so. out is filled (free with srch_results_free) on success and
 * zeroed on failure. */
vx_status srch_search(st_store *s, const char *query, const srch_options *opts, srch_results *out,
                      vx_err *err);
void srch_results_free(srch_results *r);
/* Frees what one result owns and zeroes it (for callers that page or reorder items). */
void srch_result_clear(srch_result *r);

/* Fusion of one candidate, pure. norm[m]: its score in modality m normalised to [0, 1] within
 * the query's candidates (lexical: score / best score; vision: min-max of the cosines), valid
 * where bit m of has is set. active: the modalities that ran and found something for the query.
 * Every active modality weighs the same (1 / their count: presence, no learned parameters); a
 * modality the candidate was not found in counts 0, so evidence from more modalities ranks
 * higher. Returns 0 when active is 0. */
double srch_fuse(const double norm[SRCH_MODALITY_COUNT], unsigned has, unsigned active);
/* Fusion with weights per modality, pure: sum over active m with weight[m] > 0 of
 * weight[m] * (bit m of has ? norm[m] : 0), divided by the sum of those weights (0 when none).
 * A modality with weight 0 for this candidate (a stream it does not have) leaves both sums, so
 * it neither helps nor penalises; srch_fuse is the case of all weights 1.
 * srch_search's weights, computed per range at query time (DECISIONS §8, no learned
 * parameters): lexical 1; vision 1 when a segment of the range has a vision vector of the model,
 * else 0; speech srch_speech_quality(words of its subtitles, words of its ASR transcript) when a
 * segment has a speech vector, else 0 (audio: never, see qry.h). */
double srch_fuse_weighted(const double norm[SRCH_MODALITY_COUNT],
                          const double weight[SRCH_MODALITY_COUNT], unsigned has, unsigned active);
/* How far a range's speech vector can be trusted: 1 with subtitle text (written by people);
 * ASR text alone: words / SRCH_SPEECH_FULL_WORDS clamped to [SRCH_SPEECH_MIN_WEIGHT, 1] (a few
 * recognised words are often noise); 0 with neither. Pure. */
#define SRCH_SPEECH_FULL_WORDS 8.0
#define SRCH_SPEECH_MIN_WEIGHT 0.25
double srch_speech_quality(int subtitle_words, int asr_words);
/* Min-max normalisation of x within [lo, hi] to [0, 1]; 1 when hi <= lo (one candidate). */
double srch_norm_minmax(double x, double lo, double hi);

/* Segments like segment_id: for every (model, modality) vector space in which the segment has
 * a stored vector (st_embedding_get), its nearest neighbours by cosine (st_search), the segment
 * itself left out. Spaces map to modalities by name ("vision", "audio", "speech"; others are
 * skipped); of several models in one modality the best cosine counts. A neighbour's fused score
 * is the mean of its cosines over the modalities that took part (0 where it has none). Hits of
 * adjacent segments of one video merge into one range as in srch_search (range score: its best
 * segment's). Results have match_source = the best modality's name, no snippet; query is
 * "segment:<id>", lexical_query "". opts->limit, offset and the filter (filter_ids) as for
 * srch_search; the rest of opts is not used.
 * VX_ENOTFOUND: no such segment; VX_EUNSUPPORTED: the catalog holds no vector for it (index with
 * a model). out is filled (srch_results_free) on success and zeroed on failure. */
vx_status srch_similar(st_store *s, int64_t segment_id, const srch_options *opts, srch_results *out,
                       vx_err *err);

/* The results as JSON text in the one result schema (docs/api.md), shared by `vidx search
 * --json` and the HTTP API. pretty: indented. malloc'd (free()); NULL and err on failure. */
char *srch_results_json(const srch_results *r, int pretty, vx_err *err);

#ifdef __cplusplus
}
#endif
#endif
