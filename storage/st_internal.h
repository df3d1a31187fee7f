/* storage/ private header: the st_store struct and the helpers the storage files share.
 * Not part of the public API: only storage/ sources and tests/storage include it (the migration
 * test drives the migration code stopped early). */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include "st.h"

#include <faiss/c_api/Index_c.h>
#include <sqlite3.h>

/* The schema version this code writes; migrate.c holds one step per version. */
#define ST_SCHEMA_VERSION 6

/* Default size above which an index stops being exact IVF1,Flat. */
#define ST_FLAT_MAX_DEFAULT 100000

/* Statements kept prepared per handle (st__stmt_get / st__stmt_put): preparing costs more
 * than running most of our one-row look-ups. Beyond this many distinct SQL texts, statements
 * are prepared and finalized per call as before. */
#define ST_STMT_CACHE_MAX 96

typedef struct st_cached_stmt {
    const char *sql;    /* the key: the address of a static SQL string (see st__stmt_get) */
    sqlite3_stmt *stmt; /* prepared with SQLITE_PREPARE_PERSISTENT, finalized at st_close */
    int in_use;         /* handed out and not yet put back (a nested use prepares anew) */
} st_cached_stmt;

/* Which segments the replays of a shared index touched, so a handle whose read snapshot is
 * older than the index can still get its own generation's answer (st_cache.c). Every segment
 * changed in (floor, generation of the index] is listed, with the generation of the replay
 * that applied it; floor -1: nothing is known. Bounded by ST_CHANGES_MAX ids (the oldest are
 * dropped and the floor raised). */
#define ST_CHANGES_MAX 65536
typedef struct st_changes {
    int64_t floor;
    int64_t *to_generation; /* [n], non-decreasing */
    int64_t *ids;           /* [n] segment ids */
    size_t n, cap;
} st_changes;

/* One (model, modality) vector space and its in-memory FAISS index, loaded lazily. */
typedef struct st_vindex {
    int64_t space_id;
    char *model;
    char *modality;
    int dim;
    FaissIndex *index;       /* NULL until first use */
    char factory[64];        /* the factory string it was built with */
    int64_t generation;      /* catalog generation the in-memory index reflects */
    int64_t file_generation; /* generation of the file it was loaded from or saved to; -1 */
    int dirty;               /* 1 when it differs from its file */
    /* What happened to it (st_index_cache_stats): file loads, rebuilds, replays. */
    int64_t loads, rebuilds, replays;
    st_changes *changes; /* kept for shared indexes only (owned by the cache); NULL: not kept */
} st_vindex;

struct st_store {
    st_options opts;
    char *factory; /* owned copy of opts.index_factory */
    char *dir;
    char *catalog_path;
    char *index_dir;
    char *thumbs_dir;
    char *lock_path;
    int lock_fd; /* -1 for readers */
    sqlite3 *db;
    int in_txn;     /* an st_begin transaction is open */
    int read_depth; /* st_read_begin nesting; > 0: every read joins that snapshot */
    int read_own;   /* st_read_begin opened its own transaction (not st_begin's) */
    st_vindex **spaces;
    size_t space_count;
    /* "ROLLBACK", prepared at open: ending a transaction must work when memory is short. */
    sqlite3_stmt *rollback_stmt;
    /* "SELECT generation, log_floor FROM state", prepared once: every search reads it. */
    sqlite3_stmt *state_stmt;
    /* Prepared statements reused across calls; each is reset as it is put back, so no
     * statement keeps a read snapshot open between calls (readers see new generations). */
    st_cached_stmt stmt_cache[ST_STMT_CACHE_MAX];
    size_t stmt_cached;
    /* Scratch for st_segment_spans: the ids as a JSON array, grown as needed. */
    char *ids_json;
    size_t ids_json_cap;
    /* Scratch for st_search, grown as needed, so a query does not allocate. */
    float *query_buf;
    size_t query_cap;
    float *dist_buf;
    int64_t *label_buf;
    size_t result_cap;
};

/* ---- catalog helpers (catalog.c) ---------------------------------------------------------- */

/* Fills err from the connection's last error: VX_ECORRUPT for a damaged or foreign file,
 * VX_EBUSY for a lock, else VX_EDB; the message names the catalog path and what was done. */
vx_status st__db_fail(st_store *s, vx_err *err, const char *doing);
vx_status st__db_fail_raw(sqlite3 *db, const char *path, vx_err *err, const char *doing);
/* Runs SQL without results. */
vx_status st__exec(st_store *s, const char *sql, vx_err *err);
/* Prepares a statement the caller keeps and finalizes (rollback_stmt, state_stmt); fills err
 * on failure. Per-call statements use st__stmt_get / st__stmt_put. */
vx_status st__prepare(st_store *s, const char *sql, sqlite3_stmt **out, vx_err *err);
/* A statement for sql from the handle's cache (prepared on first use); give it back with
 * st__stmt_put, which resets it and clears its bindings (or finalizes one that is not
 * cached). sql must have static storage (a literal or a static array): its address is the
 * cache key, so a look-up costs a few pointer compares; SQL built at run time goes through
 * st__prepare and sqlite3_finalize instead. The same SQL asked for again while handed out
 * gets a fresh, uncached statement. */
vx_status st__stmt_get(st_store *s, const char *sql, sqlite3_stmt **out, vx_err *err);
void st__stmt_put(st_store *s, sqlite3_stmt *stmt);
/* Finalizes every cached statement (st_close). */
void st__stmt_cache_free(st_store *s);
/* Opens a write transaction unless st_begin already did; *own says whether to close it. */
vx_status st__write_begin(st_store *s, int *own, vx_err *err);
/* Commits a transaction opened by st__write_begin (when own), or rolls back on failure. */
vx_status st__write_end(st_store *s, int own, vx_status st, vx_err *err);
/* Ends whatever transaction the connection holds (a leftover of a failed COMMIT or ROLLBACK
 * included) without allocating. */
void st__txn_reset(st_store *s);
/* A read snapshot: BEGIN unless st_begin's transaction is open (*own says which); end it
 * with st__read_end. */
vx_status st__read_begin(st_store *s, int *own, vx_err *err);
void st__read_end(st_store *s, int own);
/* Reads one integer from a query with no parameters. */
vx_status st__query_int(st_store *s, const char *sql, int64_t *out, vx_err *err);

/* ---- migrations (migrate.c) --------------------------------------------------------------- */

/* Brings db from its user_version up to target (each step in its own transaction, the
 * version written in that transaction). A version newer than ST_SCHEMA_VERSION is
 * VX_EUNSUPPORTED. Tests pass target < ST_SCHEMA_VERSION to build older catalogs. */
vx_status st__migrate(sqlite3 *db, const char *path, int target, vx_err *err);
vx_status st__schema_version(sqlite3 *db, const char *path, int *out, vx_err *err);

/* ---- vector spaces and indexes (vindex.c) ------------------------------------------------- */

/* Finds the space (model, modality); with create, adds it with dim (writers, inside a
 * transaction). VX_ENOTFOUND when absent and !create. */
vx_status st__space_find(st_store *s, const char *model, const char *modality, int dim, int create,
                         st_vindex **out, vx_err *err);
/* Brings vi's in-memory index to the catalog generation (load file, replay, or rebuild). */
vx_status st__vindex_sync(st_store *s, st_vindex *vi, vx_err *err);
/* Rebuilds vi from the BLOBs at the catalog generation (in memory only). */
vx_status st__vindex_rebuild(st_store *s, st_vindex *vi, vx_err *err);
/* Saves vi atomically with its generation. */
vx_status st__vindex_save(st_store *s, st_vindex *vi, vx_err *err);
/* Reloads the list of spaces from the catalog (keeps loaded indexes). */
vx_status st__spaces_refresh(st_store *s, vx_err *err);
void st__vindex_free(st_vindex *vi);
/* The file of a space: <index_dir>/<model>@<modality>.vxi (malloc'd). */
char *st__vindex_path(const st_store *s, const char *model, const char *modality, vx_err *err);

/* What the header of an index file says; state is "fresh"/"stale"/"missing"/"corrupt"
 * relative to catalog_generation, or "corrupt" when the header or size is wrong. */
typedef struct st_vfile_info {
    const char *state;
    int64_t generation;
    int64_t ntotal;
    int64_t file_bytes;
    int dim;
    char factory[64];
    char model[104];
    char modality[32];
    char reason[160]; /* why it is corrupt */
} st_vfile_info;
/* Reads and checks only the header (and the file size). deep: also checks the payload hash. */
void st__vfile_probe(const char *path, int64_t catalog_generation, int deep, st_vfile_info *out);
/* Loads an index file (header, payload hash, FAISS bytes). */
vx_status st__vfile_load(const char *path, int dim, FaissIndex **out, int64_t *out_generation,
                         char factory[64], vx_err *err);
/* Sorted ids held by an IVF index (malloc'd). */
vx_status st__vindex_ids(FaissIndex *index, const char *what, int64_t **out, size_t *out_count,
                         vx_err *err);

/* Reads the catalog generation and log floor (one cached statement, reset at once). */
vx_status st__state_read(st_store *s, int64_t *generation, int64_t *floor, vx_err *err);
/* Drops vi's in-memory index (generation -1). */
void st__vindex_drop(st_vindex *vi);

/* ---- shared index cache (st_cache.c) ------------------------------------------------------ */

/* Binds cache to the data directory dir (the first call) or checks that dir is the one bound. */
vx_status st__cache_bind(st_index_cache *cache, const char *dir, vx_err *err);
/* The shared index of own's (model, modality), at a generation at least the handle's snapshot
 * generation (*out_generation), returned with its lock held (reader or writer side): search
 * it, then call st__cache_release. (*out)->index is set on success. */
vx_status st__cache_acquire(st_store *s, const st_vindex *own, st_vindex **out,
                            int64_t *out_generation, vx_err *err);
void st__cache_release(st_vindex *shared);

/* ---- filtered search (faiss_filter.cpp; the 1.7.3 C API has no search parameters) -------- */

/* Searches one query with an IDSelectorBatch of ids and every IVF list probed. Returns 0, or
 * -1 with msg filled. */
int st__faiss_search_filtered(FaissIndex *index, const float *query, int64_t k, const int64_t *ids,
                              size_t n_ids, float *distances, int64_t *labels, char *msg,
                              size_t msg_size);

/* Fills err from faiss_get_last_error() for a failed C API call. */
vx_status st__faiss_fail(vx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- misc --------------------------------------------------------------------------------- */

/* qsort comparator for int64_t. */
int st__cmp_i64(const void *a, const void *b);
/* Size of a file, 0 when absent; total size of a folder tree. */
int64_t st__file_bytes(const char *path);
int64_t st__tree_bytes(const char *dir);
/* Calls fn for every file (not folder) under root, depth first; rel is the path below root.
 * A nonzero return stops the walk. */
typedef int (*st_file_fn)(void *ctx, const char *path, const char *rel, int64_t bytes);
void st__walk_files(const char *root, st_file_fn fn, void *ctx);

#endif
