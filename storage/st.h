/* storage/ — the data directory of vidx: the SQLite catalog (the source of truth) and the
 * FAISS vector indexes derived from it (a cache that is never served stale).
 *
 * Layout owned here:
 *   <data>/catalog.db (+ -wal, -shm)   SQLite, WAL mode, foreign keys on
 *   <data>/index/<model>@<modality>.vxi one vector index per (model, modality): a small header
 *                                       (catalog generation, count, checksum) + FAISS bytes
 *   <data>/thumbs/…                     thumbnails, named by segments' thumb paths
 *   <data>/lock                         flock()ed by the one writer; holds its pid
 *
 * Usage:
 *   st_store *s; vx_err err;
 *   st_options o = st_options_default(); o.mode = ST_WRITE;
 *   if (st_open("/srv/vidx", &o, &s, &err)) { vx_log(VX_LOG_ERROR, "%s", err.msg); ... }
 *   st_begin(s, &err);                      // a video's rows commit together or not at all
 *   st_video_upsert(s, &video, &vid, &err); st_segment_add(s, &seg, &sid, &err);
 *   st_embedding_put(s, sid, "ivs2-1b", "vision", 512, vec, &err);
 *   st_commit(s, &err);                     // bumps the catalog generation
 *   st_search(s, "ivs2-1b", "vision", q, 512, 10, NULL, 0, hits, &n, &err);
 *   st_flush(s, &err);                      // saves changed indexes (writer only)
 *   st_close(s);
 *
 * Thread safety: an st_store is used by one thread at a time (the caller serialises). Any
 * number of st_store handles, in any threads or processes, may open the same data directory
 * read-only (ST_READ); at most one may open it as writer (ST_WRITE): a second writer gets
 * VX_EBUSY naming the holder's pid. Readers never block on the writer (WAL snapshots) and pick
 * up each newly committed generation at their next search. Each handle holds its own copy of
 * the indexes it has searched (memory: about 4·dim bytes per vector), unless read-only
 * handles share them through an st_index_cache (below). FAISS runs on OpenMP
 * (libgomp), whose threads do not survive fork(): a child of a process that has searched must
 * exec() before it uses storage.
 *
 * Ownership: strings passed in are copied or used only during the call. Structs filled by a
 * function own their strings (malloc'd) until the matching *_free / *_clear; arrays returned
 * through pointers are malloc'd and freed by the named free function. Every *_close / *_free
 * accepts NULL. Every function that can fail returns vx_status and fills the caller's vx_err
 * (may be NULL) with one line naming the path, row or index concerned.
 *
 * Vectors: inner product on L2-normalised vectors (scores are cosines). Stored BLOBs keep the
 * vector as given (float32, native byte order); the index holds the normalised copy. Index ids
 * are segment ids. A segment has at most one vector per (model, modality). */
#ifndef ST_H
#define ST_H

#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- opening ------------------------------------------------------------------------------ */

typedef struct st_store st_store;
/* Vector indexes shared by the read-only handles of one data directory (st_index_cache_create). */
typedef struct st_index_cache st_index_cache;

typedef enum st_mode {
    ST_READ = 0,  /* no lock; never writes; an older catalog schema is VX_ESTALE */
    ST_WRITE = 1, /* takes <data>/lock, creates the layout, migrates the schema */
} st_mode;

typedef struct st_options {
    st_mode mode;
    /* FAISS factory string for every index (e.g. "IVF4096,Flat"); NULL: chosen by size. Must
     * be an IVF type (filtered search and remove need it, see DECISIONS.md §5); with fewer
     * than 39 vectors per list to train on, IVF1,Flat is built instead. */
    const char *index_factory;
    /* Up to this many vectors an index is "IVF1,Flat" (exact); above, "IVF<sqrt(n)>,Flat".
     * The type is chosen when an index is built and re-chosen at st_flush when the size has
     * crossed the threshold (or fallen below half of it). 0: 100000. */
    int64_t flat_max_vectors;
    /* Lists probed by an unfiltered IVF search; 0: max(16, nlist/16). Filtered searches probe
     * every list, so they never lose results. */
    int nprobe;
    /* ST_READ: searches use the indexes of this cache, shared with every other handle opened
     * with it, instead of private copies (see st_index_cache_create). NULL: private copies.
     * Borrowed: the cache must outlive the handle. Ignored by ST_WRITE (a writer's index holds
     * its own changes). */
    st_index_cache *index_cache;
} st_options;

/* Defaults: ST_READ, size-chosen index type. */
st_options st_options_default(void);

/* Opens the data directory data_dir. opts may be NULL (defaults). ST_WRITE creates the
 * folders and catalog when absent; ST_READ needs an existing catalog (VX_ENOTFOUND). A file
 * that is not a catalog is VX_ECORRUPT; a newer schema is VX_EUNSUPPORTED; a writer lock
 * held elsewhere is VX_EBUSY. Leftover temp files in index/ are removed by a writer. */
vx_status st_open(const char *data_dir, const st_options *opts, st_store **out, vx_err *err);
/* Closes the catalog, frees the in-memory indexes and releases the lock. Does NOT save
 * indexes (call st_flush): an unsaved change is replayed at the next open. NULL is fine. */
void st_close(st_store *s);

/* ---- shared index cache (storage/st_cache.c) ---------------------------------------------
 *
 * One in-memory index per (model, modality) for all the ST_READ handles of one data directory
 * in one process (e.g. a server's pool of per-thread handles): N handles hold one copy, not N.
 *
 *   st_index_cache *cache; st_index_cache_create(&cache, &err);
 *   st_options o = st_options_default(); o.index_cache = cache;
 *   for (i...) st_open(dir, &o, &stores[i], &err);   // each used by one thread at a time
 *   ... st_search(stores[i], ...) from any number of threads at once ...
 *   for (i...) st_close(stores[i]);
 *   st_index_cache_free(cache);                       // after the last handle is closed
 *
 * Thread safety: the cache may be used by any number of handles in any threads at once; each
 * handle still by one thread at a time. Searches of one index run concurrently under its
 * reader lock; bringing it to a newer generation (load, replay, rebuild) takes the writer
 * side, so it is done once, by the first handle that sees the newer generation, through that
 * handle's catalog connection. Lock order: the cache's table mutex is never held while waiting
 * for an index lock; an index lock is taken before (and held over) the handle's catalog reads.
 * The catalog's writer never takes a cache lock, and no lock is held between calls. While an
 * index is loaded or rebuilt, searches of that (model, modality) wait for it.
 *
 * Generations: a search never shows an uncommitted row nor a generation older than the
 * handle's. Without an st_read_begin snapshot it shows the latest generation the shared index
 * has reached (at least the one committed when the call began). Inside a snapshot it answers
 * as of the snapshot even when other handles have moved the shared index on: the segments
 * replayed since (the index remembers up to 65536 changed ids) are left out of the index's
 * answer and scored from the snapshot's own vectors. Only when the index cannot reach back
 * that far (it was loaded or rebuilt after the snapshot began, or more changed since) does the
 * search show the index's newer committed generation: its hits may then name segments the
 * snapshot does not have (st_segment_spans gives video_id 0: skip them) and miss segments
 * deleted since. A search of a snapshot the index has passed costs one more statement per
 * changed segment.
 *
 * Indexes are built with the options (factory, nprobe) of the handle that loads them: open
 * every handle of a cache with the same options. A catalog replaced by an older copy
 * (generation going back) needs a new cache. */

/* Creates an empty cache; it binds to the data directory of the first handle opened with it
 * (another directory is then VX_EINVAL at st_open). Free with st_index_cache_free. */
vx_status st_index_cache_create(st_index_cache **out, vx_err *err);
/* Frees the cache and its indexes. Every handle opened with it must be closed first. NULL ok. */
void st_index_cache_free(st_index_cache *cache);

typedef struct st_index_cache_stats {
    size_t indexes;   /* loaded in-memory indexes (at most one per (model, modality)) */
    int64_t vectors;  /* vectors they hold together */
    int64_t loads;    /* indexes read from their files */
    int64_t rebuilds; /* indexes rebuilt from the catalog (missing, damaged or too old file) */
    int64_t replays;  /* times an index was moved to a newer generation from the change log */
} st_index_cache_stats;
/* The cache's counters, each index's read under its lock (tests, `status`). NULL: zeros. */
void st_index_cache_stats_get(st_index_cache *cache, st_index_cache_stats *out);

/* Paths inside the data directory; owned by s, valid until st_close. */
const char *st_data_dir(const st_store *s);
const char *st_thumbs_dir(const st_store *s);

/* ---- transactions ------------------------------------------------------------------------- */

/* Every write runs in a transaction. Without st_begin each write function commits on its own;
 * between st_begin and st_commit all writes commit together (or none, on st_rollback or a
 * crash). Writers only (VX_EINVAL on a reader). Nesting is VX_EINVAL. */
vx_status st_begin(st_store *s, vx_err *err);
/* Commits; when embeddings changed, the catalog generation goes up by one. */
vx_status st_commit(st_store *s, vx_err *err);
/* Undoes everything since st_begin. Safe to call when no transaction is open. */
void st_rollback(st_store *s);

/* Holds one read snapshot across several calls (e.g. every look-up of one search): they all
 * see the same catalog, and each skips taking and releasing the catalog's locks on its own,
 * which costs more than a one-row look-up. Nests (counted); between st_begin and st_commit it
 * joins the writer's transaction; otherwise writes inside it are VX_EINVAL. End it soon with
 * st_read_end (NULL or no snapshot: nothing happens): an open snapshot keeps the writer from
 * checkpointing the WAL past it and hides newer generations. st_rollback ends it too. */
vx_status st_read_begin(st_store *s, vx_err *err);
void st_read_end(st_store *s);

/* The catalog generation: it rises with every commit that changed an embedding. */
vx_status st_generation(st_store *s, int64_t *out, vx_err *err);

/* ---- libraries ---------------------------------------------------------------------------- */

typedef struct st_library {
    int64_t id;
    char *name; /* unique, e.g. "movies" */
    char *root; /* folder path or http(s) URL */
    int64_t created_ms;
} st_library;

/* Adds a library (VX_EINVAL when the name exists). */
vx_status st_library_add(st_store *s, const char *name, const char *root, int64_t *out_id,
                         vx_err *err);
/* Finds by name; VX_ENOTFOUND when absent. Free out with st_library_clear. */
vx_status st_library_find(st_store *s, const char *name, st_library *out, vx_err *err);
/* All libraries ordered by id; free with st_libraries_free. */
vx_status st_library_list(st_store *s, st_library **out, size_t *out_count, vx_err *err);
/* Removes a library with its videos, segments, embeddings and texts (thumbnail files become
 * orphans that st_verify repair deletes). */
vx_status st_library_remove(st_store *s, int64_t library_id, vx_err *err);
void st_library_clear(st_library *lib);
void st_libraries_free(st_library *libs, size_t count);

/* A library's stored options (st_libopts.c): free text the catalog does not interpret (the
 * indexer owns the names and values: idx_library_options). Removed with the library. */
typedef struct st_library_option {
    char *key;
    char *value;
} st_library_option;
/* Sets one option (value NULL: removes it). Writers only; VX_ENOTFOUND for an unknown library.
 * Joins an st_begin transaction when one is open. */
vx_status st_library_option_set(st_store *s, int64_t library_id, const char *key, const char *value,
                                vx_err *err);
/* All options of a library in key order (none: *out NULL, count 0); free with
 * st_library_options_free. */
vx_status st_library_options_get(st_store *s, int64_t library_id, st_library_option **out,
                                 size_t *out_count, vx_err *err);
void st_library_options_free(st_library_option *opts, size_t count);

/* ---- videos ------------------------------------------------------------------------------- */

typedef enum st_video_status {
    ST_VIDEO_PENDING = 0, /* found, not indexed yet */
    ST_VIDEO_INDEXED = 1, /* segments and embeddings committed */
    ST_VIDEO_FAILED = 2,  /* last_error says why */
    ST_VIDEO_MISSING = 3, /* the file or URL disappeared */
    ST_VIDEO_STATUS_COUNT
} st_video_status;

/* "pending", "indexed", "failed", "missing"; never NULL. */
const char *st_video_status_name(st_video_status status);

typedef struct st_video {
    int64_t id; /* set by the catalog */
    int64_t library_id;
    char *location;     /* path or URL; unique within its library */
    int64_t size_bytes; /* identity: location + size + mtime + content hash */
    int64_t mtime_ms;
    char *content_hash; /* hex hash of the head and tail bytes; may be NULL */
    int64_t duration_ms;
    char *streams_json; /* description of the streams (JSON text); may be NULL */
    st_video_status status;
    char *last_error;   /* may be NULL */
    int64_t updated_ms; /* set by the catalog on every write */
    char *etag;         /* HTTP(S) videos: the server's ETag (validator); NULL: none/local */
} st_video;

/* Inserts or updates (by library_id + location) every field but id and updated_ms. */
vx_status st_video_upsert(st_store *s, const st_video *v, int64_t *out_id, vx_err *err);
/* VX_ENOTFOUND when absent. Free out with st_video_clear. */
vx_status st_video_get(st_store *s, int64_t video_id, st_video *out, vx_err *err);
vx_status st_video_find(st_store *s, int64_t library_id, const char *location, st_video *out,
                        vx_err *err);
vx_status st_video_set_status(st_store *s, int64_t video_id, st_video_status status,
                              const char *last_error, vx_err *err);
/* Moves a video to new_location in library_id (a file renamed or moved between libraries),
 * setting its size and mtime; its id, content hash, segments, embeddings and texts stay, so
 * the catalog generation and the vector indexes do not change. A location already held by
 * another video is VX_EINVAL naming that video; an unknown video_id is VX_ENOTFOUND; an
 * unknown library_id fails on the foreign key (VX_EDB). */
vx_status st_video_relocate(st_store *s, int64_t video_id, int64_t library_id,
                            const char *new_location, int64_t size_bytes, int64_t mtime_ms,
                            vx_err *err);
/* Calls fn for each video of a library (library_id 0: all) in id order; a nonzero return
 * stops the walk (st_video_each then returns VX_OK). v is valid during the call only. */
typedef int (*st_video_fn)(void *ctx, const st_video *v);
vx_status st_video_each(st_store *s, int64_t library_id, st_video_fn fn, void *ctx, vx_err *err);
/* Deletes a video with its segments, embeddings and texts; its vectors leave the indexes at
 * the next generation. */
vx_status st_video_delete(st_store *s, int64_t video_id, vx_err *err);
/* Deletes a video's segments (with embeddings and texts) but keeps the video: for reindexing. */
vx_status st_video_clear_segments(st_store *s, int64_t video_id, vx_err *err);
void st_video_clear(st_video *v);

/* ---- segments ----------------------------------------------------------------------------- */

typedef enum st_level {
    ST_LEVEL_WINDOW = 0,
    ST_LEVEL_SCENE = 1,
    ST_LEVEL_VIDEO = 2,
} st_level;

typedef struct st_segment {
    int64_t id; /* set by the catalog; the vector id in every index */
    int64_t video_id;
    st_level level;
    int64_t start_ms, end_ms; /* [start, end) */
    char *thumb;              /* path relative to st_thumbs_dir(); may be NULL */
} st_segment;

vx_status st_segment_add(st_store *s, const st_segment *seg, int64_t *out_id, vx_err *err);
vx_status st_segment_get(st_store *s, int64_t segment_id, st_segment *out, vx_err *err);
/* A video's segments of one level (level < 0: all), ordered by level then start; free with
 * st_segments_free. */
vx_status st_segment_list(st_store *s, int64_t video_id, int level, st_segment **out,
                          size_t *out_count, vx_err *err);
/* Where a segment lies, for many at once (st_segment_spans). */
typedef struct st_segment_span {
    int64_t video_id; /* 0: no such segment */
    int64_t start_ms, end_ms;
} st_segment_span;
/* Fills out[i] for segment_ids[i], i < n, with one statement (a search's candidates: cheaper
 * than n st_segment_get calls). An id with no segment gets video_id 0. n 0 is fine. */
vx_status st_segment_spans(st_store *s, const int64_t *segment_ids, size_t n, st_segment_span *out,
                           vx_err *err);
void st_segment_clear(st_segment *seg);
void st_segments_free(st_segment *segs, size_t count);

/* ---- embeddings --------------------------------------------------------------------------- */

/* model: [A-Za-z0-9._-]{1,100}; modality: [a-z0-9_]{1,31} ("vision", "audio", "speech",
 * "text"). The first vector of a (model, modality) fixes its dim; another dim is VX_EINVAL. */
vx_status st_embedding_put(st_store *s, int64_t segment_id, const char *model, const char *modality,
                           int dim, const float *vec, vx_err *err);
/* Copies the stored vector (as given to put) into out[dim]; VX_ENOTFOUND when absent. */
vx_status st_embedding_get(st_store *s, int64_t segment_id, const char *model, const char *modality,
                           int dim, float *out, vx_err *err);

/* ---- texts (FTS5): transcripts, subtitles, OCR, titles ------------------------------------ */

typedef struct st_text_hit {
    int64_t segment_id;
    char *source; /* "asr", "subtitle", "ocr", "title", … */
    int64_t start_ms, end_ms;
    char *body;
    double score; /* higher is better (negated bm25) */
} st_text_hit;

vx_status st_text_add(st_store *s, int64_t segment_id, const char *source, int64_t start_ms,
                      int64_t end_ms, const char *body, vx_err *err);

/* When one word of a text was said (or shown). */
typedef struct st_word_time {
    int64_t start_ms, end_ms;
} st_word_time;

/* As st_text_add, with the times of the body's words: word i of the body split at single
 * spaces has times[i] (so the body is the words joined by single spaces). word_count 0: none
 * (as st_text_add). */
vx_status st_text_add_timed(st_store *s, int64_t segment_id, const char *source, int64_t start_ms,
                            int64_t end_ms, const char *body, const st_word_time *times,
                            size_t word_count, vx_err *err);
/* Replaces the body of every text of one source on a video's segments (e.g. its "title" when
 * the file is renamed), dropping their word times. No text of that source is fine (VX_OK). */
vx_status st_text_rewrite(st_store *s, int64_t video_id, const char *source, const char *body,
                          vx_err *err);
/* FTS5 query syntax ("red car", "red OR blue"); at most limit hits, best first; free with
 * st_text_hits_free. A malformed query is VX_EINVAL. */
vx_status st_text_search(st_store *s, const char *query, int limit, st_text_hit **out,
                         size_t *out_count, vx_err *err);
void st_text_hits_free(st_text_hit *hits, size_t count);

/* A text hit with what a search result needs: its segment's and video's place and a snippet.
 * Added for search/ (lexical search); st_text_search stays as it was. */
typedef struct st_text_match {
    int64_t text_id;
    int64_t segment_id;
    int64_t video_id;
    char *location;                   /* the video's path or URL */
    int64_t duration_ms;              /* the video's */
    int64_t seg_start_ms, seg_end_ms; /* the segment's [start, end) */
    int64_t start_ms, end_ms;         /* the text's own times */
    char *source;                     /* "asr", "subtitle", "ocr", "title", … */
    /* Up to snippet_tokens tokens of the body around the best match, each matched token
     * between mark_open and mark_close, cut text shown as "…". */
    char *snippet;
    double score;             /* higher is better (negated bm25) */
    char *body;               /* the whole text */
    st_word_time *word_times; /* [word_count] per body word (split at spaces); NULL: none */
    size_t word_count;
} st_text_match;

/* Runs an FTS5 expression (build it with srch_query_translate: user syntax is not FTS5) over
 * every text and returns at most limit matches, best first (BM25). mark_open/mark_close:
 * strings put around matched tokens in the snippet (NULL: none); snippet_tokens 1..64. A
 * malformed expression is VX_EINVAL. Free *out with st_text_matches_free. Readers and writers. */
vx_status st_text_find(st_store *s, const char *fts_expr, int limit, const char *mark_open,
                       const char *mark_close, int snippet_tokens, st_text_match **out,
                       size_t *out_count, vx_err *err);
void st_text_matches_free(st_text_match *matches, size_t count);

/* One stored text (st_text_list). */
typedef struct st_text {
    int64_t segment_id;
    char *source;
    int64_t start_ms, end_ms;
    char *body;
    st_word_time *word_times; /* NULL when the text has none */
    size_t word_count;
} st_text;

/* Every text of a segment in insertion order. Free with
 * st_texts_free. */
vx_status st_text_list(st_store *s, int64_t segment_id, st_text **out, size_t *out_count,
                       vx_err *err);
void st_texts_free(st_text *texts, size_t count);

/* ---- index runs --------------------------------------------------------------------------- */

/* Records one indexing pass (library_id 0: all libraries). */
vx_status st_run_begin(st_store *s, int64_t library_id, int64_t *out_run_id, vx_err *err);
/* status: "ok", "failed", "interrupted"; message may be NULL. */
vx_status st_run_finish(st_store *s, int64_t run_id, const char *status, int64_t videos_done,
                        int64_t videos_failed, const char *message, vx_err *err);

/* The latest index run (st_run_last). */
typedef struct st_run {
    int64_t id;
    int64_t library_id;  /* 0: the library was removed since (or the run covered all) */
    char *status;        /* "running", "ok", "failed", "interrupted" (malloc'd) */
    int64_t started_ms;  /* wall clock, ms since the epoch */
    int64_t finished_ms; /* 0 while running (or when the run was killed) */
    int64_t videos_done, videos_failed;
    char *message; /* may be NULL (malloc'd) */
} st_run;

/* The latest run of library_id (0: of any library), by start; VX_ENOTFOUND when it has none.
 * Free out's strings with st_run_clear. Readers and writers; O(runs of that library). */
vx_status st_run_last(st_store *s, int64_t library_id, st_run *out, vx_err *err);
void st_run_clear(st_run *run);

/* ---- cheap look-ups for the query path (no cost that grows with the catalog) ------------- */

/* *out = 1 when the catalog holds at least one vector of (model, modality) of this dim (dim
 * <= 0: of any dim), else 0. An unknown or malformed name is simply 0. Reads the spaces row
 * and one index probe: unlike st_stats_get, it does not count the catalog. */
vx_status st_space_exists(st_store *s, const char *model, const char *modality, int dim, int *out,
                          vx_err *err);

/* One vector space as st_space_list sees it. */
typedef struct st_space_info {
    char *model;    /* malloc'd */
    char *modality; /* malloc'd */
    int dim;
    int has_vectors; /* 1 when the catalog holds at least one of its vectors */
} st_space_info;

/* Every (model, modality) space ordered by model then modality (none: *out NULL, count 0);
 * free with st_spaces_free. O(spaces), whatever the catalog's size. */
vx_status st_space_list(st_store *s, st_space_info **out, size_t *out_count, vx_err *err);
void st_spaces_free(st_space_info *spaces, size_t count);

/* A library's counts (st_library_counts). */
typedef struct st_library_stats {
    int64_t videos;
    int64_t videos_by_status[ST_VIDEO_STATUS_COUNT]; /* indexed by st_video_status */
    int64_t segments;                                /* all levels */
} st_library_stats;

/* Counts the videos (by status) and segments of library_id (0: of every library) in one
 * query; an unknown library is VX_ENOTFOUND. Cost: the library's videos and segments (index
 * look-ups), not the whole catalog. */
vx_status st_library_counts(st_store *s, int64_t library_id, st_library_stats *out, vx_err *err);

/* ---- vector search ------------------------------------------------------------------------ */

typedef struct st_hit {
    int64_t segment_id;
    float score; /* inner product of normalised vectors: cosine in [-1, 1] */
} st_hit;

/* The k best segments for query[dim] (normalised here) in the (model, modality) index, best
 * first. With filter_ids (n_filter > 0) only those segment ids are considered and the result
 * is exactly the best k among them (fewer when fewer exist). Writes *out_count ≤ k hits to
 * out[k]. Brings the index up to the catalog generation first (load, replay or rebuild).
 * An unknown (model, modality) is VX_ENOTFOUND; a wrong dim VX_EINVAL. Between st_begin and
 * st_commit the writer's index stays as of its last search (never showing uncommitted rows);
 * an index not loaded yet cannot be built then (VX_EINVAL). A handle opened with an
 * st_index_cache searches the shared index: see the generation rule there. */
vx_status st_search(st_store *s, const char *model, const char *modality, const float *query,
                    int dim, int k, const int64_t *filter_ids, size_t n_filter, st_hit *out,
                    int *out_count, vx_err *err);

/* Writer: saves every index that differs from its file (atomically: temp file, fsync,
 * rename), first bringing each to the catalog generation; prunes the change log that all
 * saved files have passed. Readers: VX_EINVAL. */
vx_status st_flush(st_store *s, vx_err *err);
/* Writer: rebuilds one index (model, modality) from the embedding BLOBs and saves it; with
 * model NULL, all of them. */
vx_status st_index_rebuild(st_store *s, const char *model, const char *modality, vx_err *err);

/* ---- status ------------------------------------------------------------------------------- */

typedef struct st_space_stats {
    char *model;
    char *modality;
    int dim;
    int64_t vectors;         /* embeddings in the catalog */
    int64_t file_vectors;    /* vectors in the saved index file; -1 when no valid file */
    int64_t file_generation; /* generation the file reflects; -1 when no valid file */
    int64_t file_bytes;      /* 0 when absent */
    char *file_state;        /* "fresh", "stale", "missing", "corrupt" */
    char *index_type;        /* factory string of the saved file, e.g. "IVF1,Flat" */
} st_space_stats;

typedef struct st_stats {
    int64_t libraries;
    int64_t videos;
    int64_t videos_by_status[ST_VIDEO_STATUS_COUNT];
    int64_t segments;
    int64_t segments_by_level[3];
    int64_t embeddings;
    int64_t texts;
    int64_t runs;
    int64_t catalog_generation;
    int schema_version;
    st_space_stats *spaces; /* one per (model, modality), ordered by model then modality */
    size_t space_count;
    int64_t catalog_bytes; /* catalog.db + -wal + -shm */
    int64_t index_bytes;   /* everything under index/ */
    int64_t thumbs_bytes;  /* everything under thumbs/ */
} st_stats;

/* Fills out (free with st_stats_free). Reads only file headers, never loads an index. */
vx_status st_stats_get(st_store *s, st_stats *out, vx_err *err);
void st_stats_free(st_stats *stats);

/* ---- verify ------------------------------------------------------------------------------- */

typedef enum st_problem_kind {
    ST_PROBLEM_INTEGRITY = 0,   /* PRAGMA integrity_check or the FTS5 index reported damage */
    ST_PROBLEM_FOREIGN_KEY = 1, /* a row points to a missing parent */
    ST_PROBLEM_BAD_ROW = 2,     /* a row that cannot be right (e.g. vector BLOB of wrong size) */
    ST_PROBLEM_INDEX_MISSING = 3,
    ST_PROBLEM_INDEX_CORRUPT = 4,  /* truncated, bad checksum, unreadable */
    ST_PROBLEM_INDEX_STALE = 5,    /* older generation than the catalog */
    ST_PROBLEM_INDEX_MISMATCH = 6, /* count or id set differs from the catalog */
    ST_PROBLEM_ORPHAN_FILE = 7,    /* a file in index/ or thumbs/ that nothing refers to */
    ST_PROBLEM_KIND_COUNT
} st_problem_kind;

/* "integrity", "foreign-key", "bad-row", "index-missing", "index-corrupt", "index-stale",
 * "index-mismatch", "orphan-file"; never NULL. */
const char *st_problem_kind_name(st_problem_kind kind);

typedef struct st_problem {
    st_problem_kind kind;
    char *what;   /* one line naming the table/row, index or file */
    int repaired; /* 1 when repair fixed it */
} st_problem;

typedef struct st_verify_report {
    st_problem *problems;
    size_t count;
    size_t repaired; /* how many of them were fixed */
} st_verify_report;

/* Checks the catalog (integrity_check, foreign_key_check, vector BLOB sizes and, for writers
 * only since it is an INSERT command, FTS5 integrity), each index file against the catalog
 * (present, readable, generation, count and id set) and index/ and thumbs/ for orphan files
 * (a reader skips temp files: the writer may be saving). With repair (writer only, else VX_EINVAL):
 * deletes orphan and bad rows and orphan files, rebuilds and saves indexes. Returns VX_OK when the
 * checks ran, whatever they found; free out with st_verify_report_free. */
vx_status st_verify(st_store *s, int repair, st_verify_report *out, vx_err *err);
void st_verify_report_free(st_verify_report *report);

/* ---- filters (query service) ---- */

/* Which videos a search may return; a field at 0 / NULL does not filter. */
typedef struct st_segment_filter {
    int64_t library_id;
    const char *path_prefix;                       /* the location starts so (byte-exact) */
    int64_t min_duration_ms, max_duration_ms;      /* the video's duration, inclusive */
    int64_t modified_after_ms, modified_before_ms; /* the file's mtime: [after, before) */
} st_segment_filter;

/* The ids of every segment (all levels) of the videos matching f, ascending. *out is malloc'd
 * (free()), NULL when none match (*out_count 0). Readers and writers (storage/st_filter.c). */
vx_status st_filter_segments(st_store *s, const st_segment_filter *f, int64_t **out,
                             size_t *out_count, vx_err *err);

#ifdef __cplusplus
}
#endif
#endif
