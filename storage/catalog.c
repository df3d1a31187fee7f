/* The catalog's rows: transactions, libraries, videos, segments, embeddings, texts and index
 * runs. Each write runs inside a transaction (its own, or the caller's st_begin), so a video's
 * rows land together or not at all. SQLite errors become vx_err lines naming the catalog. */
#include "st_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------ */

vx_status st__db_fail_raw(sqlite3 *db, const char *path, vx_err *err, const char *doing)
{
    int code = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
    const char *msg = db ? sqlite3_errmsg(db) : "no connection";
    vx_status st = VX_EDB;
    switch (code & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        st = VX_ECORRUPT;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        st = VX_EBUSY;
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        st = VX_EIO;
        break;
    case SQLITE_CONSTRAINT:
        st = VX_EINVAL;
        break;
    }
    return vx_fail(err, st, "catalog %s: %s: %s", path, doing, msg);
}

vx_status st__db_fail(st_store *s, vx_err *err, const char *doing)
{
    return st__db_fail_raw(s->db, s->catalog_path, err, doing);
}

vx_status st__exec(st_store *s, const char *sql, vx_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK) return VX_OK;
    return st__db_fail(s, err, sql);
}

vx_status st__prepare(st_store *s, const char *sql, sqlite3_stmt **out, vx_err *err)
{
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) == SQLITE_OK)
        return VX_OK;
    *out = NULL;
    return st__db_fail(s, err, "preparing a statement");
}

vx_status st__stmt_get(st_store *s, const char *sql, sqlite3_stmt **out, vx_err *err)
{
    size_t i = 0;
    for (; i < s->stmt_cached; i++) {
        st_cached_stmt *c = &s->stmt_cache[i];
        if (c->sql != sql) continue;
        if (c->in_use) break; /* nested use of the same SQL: a private statement */
        c->in_use = 1;
        *out = c->stmt;
        return VX_OK;
    }
    /* PERSISTENT tells SQLite the statement lives long, so it skips its lookaside memory. */
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK) {
        *out = NULL;
        return st__db_fail(s, err, "preparing a statement");
    }
    if (i == s->stmt_cached && s->stmt_cached < ST_STMT_CACHE_MAX)
        s->stmt_cache[s->stmt_cached++] = (st_cached_stmt){sql, *out, 1};
    return VX_OK;
}

void st__stmt_put(st_store *s, sqlite3_stmt *stmt)
{
    if (!stmt) return;
    for (size_t i = 0; i < s->stmt_cached; i++) {
        if (s->stmt_cache[i].stmt != stmt) continue;
        /* reset ends the statement's implicit read transaction; its return value repeats the
         * last step's error, which the caller has already reported */
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        s->stmt_cache[i].in_use = 0;
        return;
    }
    sqlite3_finalize(stmt); /* a private statement (nested use, or the cache was full) */
}

void st__stmt_cache_free(st_store *s)
{
    for (size_t i = 0; i < s->stmt_cached; i++)
        sqlite3_finalize(s->stmt_cache[i].stmt);
    s->stmt_cached = 0;
}

vx_status st__query_int(st_store *s, const char *sql, int64_t *out, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s, sql, &stmt, err);
    if (st) return st;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    else
        st = st__db_fail(s, err, sql);
    st__stmt_put(s, stmt);
    return st;
}

static vx_status need_writer(st_store *s, vx_err *err)
{
    if (s->opts.mode != ST_WRITE)
        return vx_fail(err, VX_EINVAL, "catalog %s is open read-only: writing needs ST_WRITE",
                       s->catalog_path);
    return VX_OK;
}

/* Steps a statement that returns no rows, then finalizes it. */
static vx_status step_done(st_store *s, sqlite3_stmt *stmt, const char *doing, vx_err *err)
{
    int rc = sqlite3_step(stmt);
    vx_status st = rc == SQLITE_DONE ? VX_OK : st__db_fail(s, err, doing);
    st__stmt_put(s, stmt);
    return st;
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, i);
}

/* A malloc'd copy of a text column, NULL for SQL NULL; *oom set when the copy failed. */
static char *column_dup(sqlite3_stmt *stmt, int i, int *oom)
{
    const unsigned char *text = sqlite3_column_text(stmt, i);
    if (!text) return NULL;
    char *copy = strdup((const char *)text);
    if (!copy) *oom = 1;
    return copy;
}

/* ---- transactions ------------------------------------------------------------------------- */

/* The generation rises once per commit that logged an embedding change: the triggers wrote
 * those log rows with generation + 1 (migrate.c). */
static const char bump_generation_sql[] =
    "UPDATE state SET generation = generation + 1"
    " WHERE EXISTS (SELECT 1 FROM vec_log WHERE vec_log.generation > state.generation)";

static vx_status commit_now(st_store *s, vx_err *err)
{
    if (sqlite3_get_autocommit(s->db))
        return vx_fail(err, VX_EDB,
                       "catalog %s: the transaction was already rolled back by an earlier error",
                       s->catalog_path);
    vx_status st = st__exec(s, bump_generation_sql, err);
    if (!st) st = st__exec(s, "COMMIT", err);
    if (st) st__txn_reset(s);
    return st;
}

void st__txn_reset(st_store *s)
{
    if (!s->db || sqlite3_get_autocommit(s->db)) return;
    if (s->rollback_stmt) {
        sqlite3_step(s->rollback_stmt);
        sqlite3_reset(s->rollback_stmt);
    }
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (!sqlite3_get_autocommit(s->db))
        vx_log(VX_LOG_WARN, "catalog %s: a transaction could not be ended", s->catalog_path);
}

vx_status st__read_begin(st_store *s, int *own, vx_err *err)
{
    *own = 0;
    if (s->in_txn || s->read_depth) return VX_OK;
    st__txn_reset(s);
    vx_status st = st__exec(s, "BEGIN", err);
    if (!st) *own = 1;
    return st;
}

void st__read_end(st_store *s, int own)
{
    /* Rolling back a read-only transaction just ends its snapshot. */
    if (own) st__txn_reset(s);
}

/* A write inside st_read_begin's snapshot could not commit on an old snapshot anyway. */
static vx_status no_snapshot(st_store *s, vx_err *err)
{
    if (!s->read_depth) return VX_OK;
    return vx_fail(err, VX_EINVAL,
                   "catalog %s: cannot write inside a read snapshot (st_read_end first)",
                   s->catalog_path);
}

vx_status st_read_begin(st_store *s, vx_err *err)
{
    if (s->read_depth) {
        s->read_depth++;
        return VX_OK;
    }
    int own;
    vx_status st = st__read_begin(s, &own, err);
    if (st) return st;
    /* BEGIN is deferred: the snapshot starts at the first read, so read now */
    int64_t generation;
    if (own && (st = st__query_int(s, "SELECT generation FROM state", &generation, err))) {
        st__read_end(s, own);
        return st;
    }
    s->read_own = own;
    s->read_depth = 1;
    return VX_OK;
}

void st_read_end(st_store *s)
{
    if (!s || !s->read_depth || --s->read_depth) return;
    st__read_end(s, s->read_own);
    s->read_own = 0;
}

vx_status st__write_begin(st_store *s, int *own, vx_err *err)
{
    *own = 0;
    vx_status st = need_writer(s, err);
    if (st) return st;
    if (s->in_txn) return VX_OK;
    if ((st = no_snapshot(s, err))) return st;
    st__txn_reset(s);
    /* IMMEDIATE: take the write lock now, so a busy catalog fails here, not mid-way. */
    if ((st = st__exec(s, "BEGIN IMMEDIATE", err))) return st;
    *own = 1;
    return VX_OK;
}

vx_status st__write_end(st_store *s, int own, vx_status st, vx_err *err)
{
    if (!own) return st;
    if (st) {
        st__txn_reset(s);
        return st;
    }
    return commit_now(s, err);
}

vx_status st_begin(st_store *s, vx_err *err)
{
    vx_status st = need_writer(s, err);
    if (st) return st;
    if (s->in_txn)
        return vx_fail(err, VX_EINVAL, "catalog %s: a transaction is already open",
                       s->catalog_path);
    if ((st = no_snapshot(s, err))) return st;
    st__txn_reset(s);
    if ((st = st__exec(s, "BEGIN IMMEDIATE", err))) return st;
    s->in_txn = 1;
    return VX_OK;
}

vx_status st_commit(st_store *s, vx_err *err)
{
    if (!s->in_txn)
        return vx_fail(err, VX_EINVAL, "catalog %s: no transaction is open", s->catalog_path);
    s->in_txn = 0;
    return commit_now(s, err);
}

void st_rollback(st_store *s)
{
    if (!s) return;
    s->in_txn = 0;
    s->read_depth = 0; /* ends a read snapshot too */
    s->read_own = 0;
    st__txn_reset(s);
}

vx_status st_generation(st_store *s, int64_t *out, vx_err *err)
{
    return st__query_int(s, "SELECT generation FROM state", out, err);
}

/* ---- libraries ---------------------------------------------------------------------------- */

vx_status st_library_add(st_store *s, const char *name, const char *root, int64_t *out_id,
                         vx_err *err)
{
    if (!name || !*name || !root || !*root)
        return vx_fail(err, VX_EINVAL, "a library needs a name and a root");
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s, "INSERT INTO libraries(name, root, created_ms) VALUES (?, ?, ?)",
                            &stmt, err))) {
        bind_text(stmt, 1, name);
        bind_text(stmt, 2, root);
        sqlite3_bind_int64(stmt, 3, vx_wall_ms());
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) {
            if (out_id) *out_id = sqlite3_last_insert_rowid(s->db);
        } else if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT) {
            st = vx_fail(err, VX_EINVAL, "catalog %s: a library named \"%s\" already exists",
                         s->catalog_path, name);
        } else {
            st = st__db_fail(s, err, "adding a library");
        }
        st__stmt_put(s, stmt);
    }
    return st__write_end(s, own, st, err);
}

static vx_status library_from_row(sqlite3_stmt *stmt, st_library *out, vx_err *err)
{
    int oom = 0;
    out->id = sqlite3_column_int64(stmt, 0);
    out->name = column_dup(stmt, 1, &oom);
    out->root = column_dup(stmt, 2, &oom);
    out->created_ms = sqlite3_column_int64(stmt, 3);
    if (oom) {
        st_library_clear(out);
        return vx_fail(err, VX_ENOMEM, "out of memory reading a library");
    }
    return VX_OK;
}

vx_status st_library_find(st_store *s, const char *name, st_library *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s, "SELECT id, name, root, created_ms FROM libraries WHERE name = ?", &stmt, err);
    if (st) return st;
    bind_text(stmt, 1, name);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        st = library_from_row(stmt, out, err);
    else if (rc == SQLITE_DONE)
        st = vx_fail(err, VX_ENOTFOUND, "no library named \"%s\" in %s", name, s->catalog_path);
    else
        st = st__db_fail(s, err, "finding a library");
    st__stmt_put(s, stmt);
    return st;
}

vx_status st_library_list(st_store *s, st_library **out, size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    sqlite3_stmt *stmt;
    vx_status st =
        st__stmt_get(s, "SELECT id, name, root, created_ms FROM libraries ORDER BY id", &stmt, err);
    if (st) return st;
    st_library *libs = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            st_library *grown = realloc(libs, ncap * sizeof *libs);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory listing libraries");
                break;
            }
            libs = grown;
            cap = ncap;
        }
        if ((st = library_from_row(stmt, &libs[n], err))) break;
        n++;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "listing libraries");
    st__stmt_put(s, stmt);
    if (st) {
        st_libraries_free(libs, n);
        return st;
    }
    *out = libs;
    *out_count = n;
    return VX_OK;
}

vx_status st_library_remove(st_store *s, int64_t library_id, vx_err *err)
{
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s, "DELETE FROM libraries WHERE id = ?", &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, library_id);
        st = step_done(s, stmt, "removing a library", err);
        if (!st && sqlite3_changes(s->db) == 0)
            st = vx_fail(err, VX_ENOTFOUND, "no library with id %lld in %s", (long long)library_id,
                         s->catalog_path);
    }
    return st__write_end(s, own, st, err);
}

void st_library_clear(st_library *lib)
{
    if (!lib) return;
    free(lib->name);
    free(lib->root);
    memset(lib, 0, sizeof *lib);
}

void st_libraries_free(st_library *libs, size_t count)
{
    if (!libs) return;
    for (size_t i = 0; i < count; i++)
        st_library_clear(&libs[i]);
    free(libs);
}

/* ---- videos ------------------------------------------------------------------------------- */

const char *st_video_status_name(st_video_status status)
{
    switch (status) {
    case ST_VIDEO_PENDING:
        return "pending";
    case ST_VIDEO_INDEXED:
        return "indexed";
    case ST_VIDEO_FAILED:
        return "failed";
    case ST_VIDEO_MISSING:
        return "missing";
    case ST_VIDEO_STATUS_COUNT:
        break;
    }
    return "unknown";
}

#define VIDEO_COLUMNS                                                                              \
    "id, library_id, location, size_bytes, mtime_ms, content_hash, duration_ms, streams_json, "    \
    "status, last_error, updated_ms, etag"

/* Fills v from a row of VIDEO_COLUMNS. With copy, strings are malloc'd; without, they point
 * into the statement (valid until the next step). */
static vx_status video_from_row(sqlite3_stmt *stmt, st_video *v, int copy, vx_err *err)
{
    int oom = 0;
    v->id = sqlite3_column_int64(stmt, 0);
    v->library_id = sqlite3_column_int64(stmt, 1);
    v->size_bytes = sqlite3_column_int64(stmt, 3);
    v->mtime_ms = sqlite3_column_int64(stmt, 4);
    v->duration_ms = sqlite3_column_int64(stmt, 6);
    int status = sqlite3_column_int(stmt, 8);
    v->status =
        status >= 0 && status < ST_VIDEO_STATUS_COUNT ? (st_video_status)status : ST_VIDEO_FAILED;
    v->updated_ms = sqlite3_column_int64(stmt, 10);
    if (copy) {
        v->location = column_dup(stmt, 2, &oom);
        v->content_hash = column_dup(stmt, 5, &oom);
        v->streams_json = column_dup(stmt, 7, &oom);
        v->last_error = column_dup(stmt, 9, &oom);
        v->etag = column_dup(stmt, 11, &oom);
    } else {
        v->location = (char *)sqlite3_column_text(stmt, 2);
        v->content_hash = (char *)sqlite3_column_text(stmt, 5);
        v->streams_json = (char *)sqlite3_column_text(stmt, 7);
        v->last_error = (char *)sqlite3_column_text(stmt, 9);
        v->etag = (char *)sqlite3_column_text(stmt, 11);
    }
    if (oom) {
        st_video_clear(v);
        return vx_fail(err, VX_ENOMEM, "out of memory reading video %lld", (long long)v->id);
    }
    return VX_OK;
}

vx_status st_video_upsert(st_store *s, const st_video *v, int64_t *out_id, vx_err *err)
{
    if (!v->location || !*v->location) return vx_fail(err, VX_EINVAL, "a video needs a location");
    if ((int)v->status < 0 || v->status >= ST_VIDEO_STATUS_COUNT)
        return vx_fail(err, VX_EINVAL, "video %s: invalid status %d", v->location, (int)v->status);
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(
              s,
              "INSERT INTO videos(library_id, location, size_bytes, mtime_ms, content_hash,"
              " duration_ms, streams_json, status, last_error, updated_ms, etag)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
              " ON CONFLICT(library_id, location) DO UPDATE SET size_bytes = excluded.size_bytes,"
              " mtime_ms = excluded.mtime_ms, content_hash = excluded.content_hash,"
              " duration_ms = excluded.duration_ms, streams_json = excluded.streams_json,"
              " status = excluded.status, last_error = excluded.last_error,"
              " updated_ms = excluded.updated_ms, etag = excluded.etag"
              " RETURNING id",
              &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, v->library_id);
        bind_text(stmt, 2, v->location);
        sqlite3_bind_int64(stmt, 3, v->size_bytes);
        sqlite3_bind_int64(stmt, 4, v->mtime_ms);
        bind_text(stmt, 5, v->content_hash);
        sqlite3_bind_int64(stmt, 6, v->duration_ms);
        bind_text(stmt, 7, v->streams_json);
        sqlite3_bind_int(stmt, 8, (int)v->status);
        bind_text(stmt, 9, v->last_error);
        sqlite3_bind_int64(stmt, 10, vx_wall_ms());
        bind_text(stmt, 11, v->etag);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            if (out_id) *out_id = sqlite3_column_int64(stmt, 0);
            rc = sqlite3_step(stmt);
        }
        if (rc != SQLITE_DONE) {
            char doing[256];
            snprintf(doing, sizeof doing, "writing video %.200s", v->location);
            st = st__db_fail(s, err, doing);
        }
        st__stmt_put(s, stmt);
    }
    return st__write_end(s, own, st, err);
}

/* sql: a static SELECT of VIDEO_COLUMNS with ?1 = id and ?2 = text (when text). */
static vx_status video_get_where(st_store *s, const char *sql, int64_t id, const char *text,
                                 st_video *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s, sql, &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, id);
    if (text) bind_text(stmt, 2, text);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        st = video_from_row(stmt, out, 1, err);
    else if (rc == SQLITE_DONE && text)
        st = vx_fail(err, VX_ENOTFOUND, "no video %.250s in library %lld in %s", text,
                     (long long)id, s->catalog_path);
    else if (rc == SQLITE_DONE)
        st = vx_fail(err, VX_ENOTFOUND, "no video with id %lld in %s", (long long)id,
                     s->catalog_path);
    else
        st = st__db_fail(s, err, "reading a video");
    st__stmt_put(s, stmt);
    return st;
}

vx_status st_video_get(st_store *s, int64_t video_id, st_video *out, vx_err *err)
{
    return video_get_where(s, "SELECT " VIDEO_COLUMNS " FROM videos WHERE id = ?", video_id, NULL,
                           out, err);
}

vx_status st_video_find(st_store *s, int64_t library_id, const char *location, st_video *out,
                        vx_err *err)
{
    return video_get_where(
        s, "SELECT " VIDEO_COLUMNS " FROM videos WHERE library_id = ? AND location = ?", library_id,
        location, out, err);
}

vx_status st_video_set_status(st_store *s, int64_t video_id, st_video_status status,
                              const char *last_error, vx_err *err)
{
    if ((int)status < 0 || status >= ST_VIDEO_STATUS_COUNT)
        return vx_fail(err, VX_EINVAL, "video %lld: invalid status %d", (long long)video_id,
                       (int)status);
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(
              s, "UPDATE videos SET status = ?, last_error = ?, updated_ms = ? WHERE id = ?", &stmt,
              err))) {
        sqlite3_bind_int(stmt, 1, (int)status);
        bind_text(stmt, 2, last_error);
        sqlite3_bind_int64(stmt, 3, vx_wall_ms());
        sqlite3_bind_int64(stmt, 4, video_id);
        st = step_done(s, stmt, "setting a video's status", err);
        if (!st && sqlite3_changes(s->db) == 0)
            st = vx_fail(err, VX_ENOTFOUND, "no video with id %lld in %s", (long long)video_id,
                         s->catalog_path);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_video_relocate(st_store *s, int64_t video_id, int64_t library_id,
                            const char *new_location, int64_t size_bytes, int64_t mtime_ms,
                            vx_err *err)
{
    if (!new_location || !*new_location)
        return vx_fail(err, VX_EINVAL, "video %lld: a move needs a new location",
                       (long long)video_id);
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    /* Look for the holder first so the message names it (the UNIQUE constraint would only
     * say "constraint failed"). */
    if (!(st = st__stmt_get(s, "SELECT id FROM videos WHERE library_id = ? AND location = ?", &stmt,
                            err))) {
        sqlite3_bind_int64(stmt, 1, library_id);
        bind_text(stmt, 2, new_location);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            int64_t holder = sqlite3_column_int64(stmt, 0);
            if (holder == video_id)
                st = VX_OK; /* already there: only size and mtime change */
            else
                st = vx_fail(err, VX_EINVAL,
                             "cannot move video %lld to %.250s: that location is taken by video "
                             "%lld in library %lld",
                             (long long)video_id, new_location, (long long)holder,
                             (long long)library_id);
        } else if (rc != SQLITE_DONE) {
            st = st__db_fail(s, err, "looking up a video's new location");
        }
        st__stmt_put(s, stmt);
    }
    if (!st && !(st = st__stmt_get(s,
                                   "UPDATE videos SET library_id = ?, location = ?, size_bytes = ?,"
                                   " mtime_ms = ?, updated_ms = ? WHERE id = ?",
                                   &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, library_id);
        bind_text(stmt, 2, new_location);
        sqlite3_bind_int64(stmt, 3, size_bytes);
        sqlite3_bind_int64(stmt, 4, mtime_ms);
        sqlite3_bind_int64(stmt, 5, vx_wall_ms());
        sqlite3_bind_int64(stmt, 6, video_id);
        st = step_done(s, stmt, "moving a video", err);
        if (!st && sqlite3_changes(s->db) == 0)
            st = vx_fail(err, VX_ENOTFOUND, "no video with id %lld in %s", (long long)video_id,
                         s->catalog_path);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_video_each(st_store *s, int64_t library_id, st_video_fn fn, void *ctx, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                library_id ? "SELECT " VIDEO_COLUMNS
                                             " FROM videos WHERE library_id = ? ORDER BY id"
                                           : "SELECT " VIDEO_COLUMNS " FROM videos ORDER BY id",
                                &stmt, err);
    if (st) return st;
    if (library_id) sqlite3_bind_int64(stmt, 1, library_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        st_video v;
        video_from_row(stmt, &v, 0, NULL);
        if (fn(ctx, &v)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) st = st__db_fail(s, err, "listing videos");
    st__stmt_put(s, stmt);
    return st;
}

static vx_status delete_by_id(st_store *s, const char *sql, int64_t id, const char *doing,
                              int must_exist, vx_err *err)
{
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s, sql, &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, id);
        st = step_done(s, stmt, doing, err);
        if (!st && must_exist && sqlite3_changes(s->db) == 0)
            st = vx_fail(err, VX_ENOTFOUND, "%s: no row with id %lld in %s", doing, (long long)id,
                         s->catalog_path);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_video_delete(st_store *s, int64_t video_id, vx_err *err)
{
    return delete_by_id(s, "DELETE FROM videos WHERE id = ?", video_id, "deleting a video", 1, err);
}

vx_status st_video_clear_segments(st_store *s, int64_t video_id, vx_err *err)
{
    return delete_by_id(s, "DELETE FROM segments WHERE video_id = ?", video_id,
                        "deleting a video's segments", 0, err);
}

void st_video_clear(st_video *v)
{
    if (!v) return;
    free(v->location);
    free(v->content_hash);
    free(v->streams_json);
    free(v->last_error);
    free(v->etag);
    memset(v, 0, sizeof *v);
}

/* ---- segments ----------------------------------------------------------------------------- */

vx_status st_segment_add(st_store *s, const st_segment *seg, int64_t *out_id, vx_err *err)
{
    if (seg->end_ms < seg->start_ms || seg->start_ms < 0)
        return vx_fail(err, VX_EINVAL, "segment of video %lld: bad range [%lld, %lld) ms",
                       (long long)seg->video_id, (long long)seg->start_ms, (long long)seg->end_ms);
    if (seg->thumb && (seg->thumb[0] == '/' || strstr(seg->thumb, "..")))
        return vx_fail(err, VX_EINVAL,
                       "segment of video %lld: thumbnail path %s must be relative to thumbs/",
                       (long long)seg->video_id, seg->thumb);
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s,
                            "INSERT INTO segments(video_id, level, start_ms, end_ms, thumb)"
                            " VALUES (?, ?, ?, ?, ?)",
                            &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, seg->video_id);
        sqlite3_bind_int(stmt, 2, (int)seg->level);
        sqlite3_bind_int64(stmt, 3, seg->start_ms);
        sqlite3_bind_int64(stmt, 4, seg->end_ms);
        bind_text(stmt, 5, seg->thumb);
        if (sqlite3_step(stmt) == SQLITE_DONE) {
            if (out_id) *out_id = sqlite3_last_insert_rowid(s->db);
        } else {
            char doing[64];
            snprintf(doing, sizeof doing, "adding a segment of video %lld",
                     (long long)seg->video_id);
            st = st__db_fail(s, err, doing);
        }
        st__stmt_put(s, stmt);
    }
    return st__write_end(s, own, st, err);
}

static vx_status segment_from_row(sqlite3_stmt *stmt, st_segment *out, vx_err *err)
{
    int oom = 0;
    out->id = sqlite3_column_int64(stmt, 0);
    out->video_id = sqlite3_column_int64(stmt, 1);
    out->level = (st_level)sqlite3_column_int(stmt, 2);
    out->start_ms = sqlite3_column_int64(stmt, 3);
    out->end_ms = sqlite3_column_int64(stmt, 4);
    out->thumb = column_dup(stmt, 5, &oom);
    if (oom) return vx_fail(err, VX_ENOMEM, "out of memory reading a segment");
    return VX_OK;
}

vx_status st_segment_get(st_store *s, int64_t segment_id, st_segment *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s, "SELECT id, video_id, level, start_ms, end_ms, thumb FROM segments WHERE id = ?", &stmt,
        err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, segment_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        st = segment_from_row(stmt, out, err);
    else if (rc == SQLITE_DONE)
        st = vx_fail(err, VX_ENOTFOUND, "no segment with id %lld in %s", (long long)segment_id,
                     s->catalog_path);
    else
        st = st__db_fail(s, err, "reading a segment");
    st__stmt_put(s, stmt);
    return st;
}

vx_status st_segment_list(st_store *s, int64_t video_id, int level, st_segment **out,
                          size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT id, video_id, level, start_ms, end_ms, thumb FROM segments"
                                " WHERE video_id = ?1 AND (?2 < 0 OR level = ?2)"
                                " ORDER BY level, start_ms, id",
                                &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, video_id);
    sqlite3_bind_int(stmt, 2, level);
    st_segment *segs = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            st_segment *grown = realloc(segs, ncap * sizeof *segs);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory listing segments");
                break;
            }
            segs = grown;
            cap = ncap;
        }
        if ((st = segment_from_row(stmt, &segs[n], err))) break;
        n++;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "listing segments");
    st__stmt_put(s, stmt);
    if (st) {
        st_segments_free(segs, n);
        return st;
    }
    *out = segs;
    *out_count = n;
    return VX_OK;
}

void st_segment_clear(st_segment *seg)
{
    if (!seg) return;
    free(seg->thumb);
    memset(seg, 0, sizeof *seg);
}

void st_segments_free(st_segment *segs, size_t count)
{
    if (!segs) return;
    for (size_t i = 0; i < count; i++)
        st_segment_clear(&segs[i]);
    free(segs);
}

/* ---- embeddings --------------------------------------------------------------------------- */

vx_status st_embedding_put(st_store *s, int64_t segment_id, const char *model, const char *modality,
                           int dim, const float *vec, vx_err *err)
{
    if (dim <= 0 || !vec)
        return vx_fail(err, VX_EINVAL, "segment %lld: embedding needs dim > 0 and a vector",
                       (long long)segment_id);
    double norm2 = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(vec[i]))
            return vx_fail(err, VX_EINVAL, "segment %lld: %s/%s vector has a non-finite value",
                           (long long)segment_id, model, modality);
        norm2 += (double)vec[i] * vec[i];
    }
    if (norm2 == 0)
        return vx_fail(err, VX_EINVAL, "segment %lld: %s/%s vector is all zeros",
                       (long long)segment_id, model, modality);
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    st_vindex *vi;
    if ((st = st__space_find(s, model, modality, dim, 1, &vi, err)))
        return st__write_end(s, own, st, err);
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s,
                            "INSERT INTO embeddings(space_id, segment_id, vector) VALUES (?, ?, ?)"
                            " ON CONFLICT(space_id, segment_id) DO UPDATE"
                            " SET vector = excluded.vector",
                            &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, vi->space_id);
        sqlite3_bind_int64(stmt, 2, segment_id);
        sqlite3_bind_blob(stmt, 3, vec, dim * (int)sizeof(float), SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            char doing[200];
            snprintf(doing, sizeof doing, "storing the %s/%s vector of segment %lld", model,
                     modality, (long long)segment_id);
            st = st__db_fail(s, err, doing);
        }
        st__stmt_put(s, stmt);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_embedding_get(st_store *s, int64_t segment_id, const char *model, const char *modality,
                           int dim, float *out, vx_err *err)
{
    st_vindex *vi;
    vx_status st = st__space_find(s, model, modality, dim, 0, &vi, err);
    if (st) return st;
    if (vi->dim != dim)
        return vx_fail(err, VX_EINVAL, "index %s/%s has dim %d, not %d", model, modality, vi->dim,
                       dim);
    sqlite3_stmt *stmt;
    if ((st = st__stmt_get(s, "SELECT vector FROM embeddings WHERE space_id = ? AND segment_id = ?",
                           &stmt, err)))
        return st;
    sqlite3_bind_int64(stmt, 1, vi->space_id);
    sqlite3_bind_int64(stmt, 2, segment_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(stmt, 0);
        int bytes = sqlite3_column_bytes(stmt, 0);
        if (bytes != dim * (int)sizeof(float) || !blob)
            st = vx_fail(err, VX_ECORRUPT,
                         "catalog %s: %s/%s vector of segment %lld has %d bytes,"
                         " expected %d",
                         s->catalog_path, model, modality, (long long)segment_id, bytes,
                         dim * (int)sizeof(float));
        else
            memcpy(out, blob, (size_t)bytes);
    } else if (rc == SQLITE_DONE) {
        st = vx_fail(err, VX_ENOTFOUND, "segment %lld has no %s/%s vector", (long long)segment_id,
                     model, modality);
    } else {
        st = st__db_fail(s, err, "reading a vector");
    }
    st__stmt_put(s, stmt);
    return st;
}

/* ---- texts -------------------------------------------------------------------------------- */

/* Word times are stored as text "start,end;start,end;…" (compact, and readable in sqlite3). */
static char *word_times_format(const st_word_time *times, size_t n, vx_err *err)
{
    vx_buf b = {0};
    for (size_t i = 0; i < n; i++)
        if (vx_buf_printf(&b, err, "%s%lld,%lld", i ? ";" : "", (long long)times[i].start_ms,
                          (long long)times[i].end_ms)) {
            vx_buf_free(&b);
            return NULL;
        }
    return b.data;
}

/* Parses what word_times_format wrote; a damaged value reads as no times (*n = 0). */
static st_word_time *word_times_parse(const char *text, size_t *n, int *oom)
{
    *n = 0;
    if (!text || !*text) return NULL;
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ';';
    st_word_time *t = malloc(count * sizeof *t);
    if (!t) {
        *oom = 1;
        return NULL;
    }
    const char *p = text;
    for (size_t i = 0; i < count; i++) {
        char *end;
        long long a = strtoll(p, &end, 10);
        if (*end != ',') goto bad;
        long long b = strtoll(end + 1, &end, 10);
        if (*end != (i + 1 < count ? ';' : '\0')) goto bad;
        t[i].start_ms = a;
        t[i].end_ms = b;
        p = end + 1;
    }
    *n = count;
    return t;
bad:
    free(t);
    return NULL;
}

vx_status st_text_add(st_store *s, int64_t segment_id, const char *source, int64_t start_ms,
                      int64_t end_ms, const char *body, vx_err *err)
{
    return st_text_add_timed(s, segment_id, source, start_ms, end_ms, body, NULL, 0, err);
}

vx_status st_text_add_timed(st_store *s, int64_t segment_id, const char *source, int64_t start_ms,
                            int64_t end_ms, const char *body, const st_word_time *times,
                            size_t word_count, vx_err *err)
{
    if (!source || !*source || !body)
        return vx_fail(err, VX_EINVAL, "segment %lld: a text needs a source and a body",
                       (long long)segment_id);
    char *times_text = NULL;
    if (word_count && !(times_text = word_times_format(times, word_count, err))) return VX_ENOMEM;
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) {
        free(times_text);
        return st;
    }
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(
              s,
              "INSERT INTO texts(segment_id, source, start_ms, end_ms, body, word_times)"
              " VALUES (?, ?, ?, ?, ?, ?)",
              &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, segment_id);
        bind_text(stmt, 2, source);
        sqlite3_bind_int64(stmt, 3, start_ms);
        sqlite3_bind_int64(stmt, 4, end_ms);
        bind_text(stmt, 5, body);
        bind_text(stmt, 6, times_text);
        char doing[96];
        snprintf(doing, sizeof doing, "adding a %.20s text to segment %lld", source,
                 (long long)segment_id);
        st = step_done(s, stmt, doing, err);
    }
    free(times_text);
    return st__write_end(s, own, st, err);
}

vx_status st_text_rewrite(st_store *s, int64_t video_id, const char *source, const char *body,
                          vx_err *err)
{
    if (!source || !body)
        return vx_fail(err, VX_EINVAL, "rewriting texts needs a source and a body");
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    /* texts_au keeps the FTS index in step; no embedding changes, so no new generation. */
    if (!(st = st__stmt_get(s,
                            "UPDATE texts SET body = ?, word_times = NULL WHERE source = ?"
                            " AND segment_id IN (SELECT id FROM segments WHERE video_id = ?)",
                            &stmt, err))) {
        bind_text(stmt, 1, body);
        bind_text(stmt, 2, source);
        sqlite3_bind_int64(stmt, 3, video_id);
        st = step_done(s, stmt, "rewriting a video's texts", err);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_text_search(st_store *s, const char *query, int limit, st_text_hit **out,
                         size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    if (!query || !*query || limit <= 0)
        return vx_fail(err, VX_EINVAL, "a text search needs a query and a limit > 0");
    st_text_hit *hits = calloc((size_t)limit, sizeof *hits);
    if (!hits) return vx_fail(err, VX_ENOMEM, "out of memory for %d text hits", limit);
    sqlite3_stmt *stmt;
    vx_status st =
        st__stmt_get(s,
                     "SELECT t.segment_id, t.source, t.start_ms, t.end_ms, t.body, -bm25(texts_fts)"
                     " FROM texts_fts JOIN texts t ON t.id = texts_fts.rowid"
                     " WHERE texts_fts MATCH ? ORDER BY bm25(texts_fts) LIMIT ?",
                     &stmt, err);
    if (st) {
        free(hits);
        return st;
    }
    bind_text(stmt, 1, query);
    sqlite3_bind_int(stmt, 2, limit);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n < (size_t)limit) {
        int oom = 0;
        st_text_hit *h = &hits[n++];
        h->segment_id = sqlite3_column_int64(stmt, 0);
        h->source = column_dup(stmt, 1, &oom);
        h->start_ms = sqlite3_column_int64(stmt, 2);
        h->end_ms = sqlite3_column_int64(stmt, 3);
        h->body = column_dup(stmt, 4, &oom);
        h->score = sqlite3_column_double(stmt, 5);
        if (oom) {
            st = vx_fail(err, VX_ENOMEM, "out of memory reading text hits");
            break;
        }
    }
    if (!st && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        /* FTS5 reports a malformed query as a plain SQLITE_ERROR. */
        st =
            (sqlite3_errcode(s->db) == SQLITE_ERROR)
                ? vx_fail(err, VX_EINVAL, "text query \"%.200s\": %s", query, sqlite3_errmsg(s->db))
                : st__db_fail(s, err, "searching texts");
    }
    st__stmt_put(s, stmt);
    if (st) {
        st_text_hits_free(hits, n);
        return st;
    }
    *out = hits;
    *out_count = n;
    return VX_OK;
}

void st_text_hits_free(st_text_hit *hits, size_t count)
{
    if (!hits) return;
    for (size_t i = 0; i < count; i++) {
        free(hits[i].source);
        free(hits[i].body);
    }
    free(hits);
}

vx_status st_text_find(st_store *s, const char *fts_expr, int limit, const char *mark_open,
                       const char *mark_close, int snippet_tokens, st_text_match **out,
                       size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    if (!fts_expr || !*fts_expr || limit <= 0 || snippet_tokens < 1 || snippet_tokens > 64)
        return vx_fail(err, VX_EINVAL,
                       "a text match needs an expression, a limit > 0 and 1..64 snippet tokens");
    st_text_match *hits = calloc((size_t)limit, sizeof *hits);
    if (!hits) return vx_fail(err, VX_ENOMEM, "out of memory for %d text matches", limit);
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s,
        "SELECT t.id, t.segment_id, g.video_id, v.location, v.duration_ms, g.start_ms, g.end_ms,"
        " t.start_ms, t.end_ms, t.source, snippet(texts_fts, 0, ?, ?, '…', ?), -bm25(texts_fts),"
        " t.body, t.word_times"
        " FROM texts_fts JOIN texts t ON t.id = texts_fts.rowid"
        " JOIN segments g ON g.id = t.segment_id JOIN videos v ON v.id = g.video_id"
        " WHERE texts_fts MATCH ? ORDER BY bm25(texts_fts), t.id LIMIT ?",
        &stmt, err);
    if (st) {
        free(hits);
        return st;
    }
    bind_text(stmt, 1, mark_open ? mark_open : "");
    bind_text(stmt, 2, mark_close ? mark_close : "");
    sqlite3_bind_int(stmt, 3, snippet_tokens);
    bind_text(stmt, 4, fts_expr);
    sqlite3_bind_int(stmt, 5, limit);
    size_t n = 0;
    int rc;
    int own;
    if ((st = st__read_begin(s, &own, err))) {
        st__stmt_put(s, stmt);
        free(hits);
        return st;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n < (size_t)limit) {
        int oom = 0;
        st_text_match *h = &hits[n++];
        h->text_id = sqlite3_column_int64(stmt, 0);
        h->segment_id = sqlite3_column_int64(stmt, 1);
        h->video_id = sqlite3_column_int64(stmt, 2);
        h->location = column_dup(stmt, 3, &oom);
        h->duration_ms = sqlite3_column_int64(stmt, 4);
        h->seg_start_ms = sqlite3_column_int64(stmt, 5);
        h->seg_end_ms = sqlite3_column_int64(stmt, 6);
        h->start_ms = sqlite3_column_int64(stmt, 7);
        h->end_ms = sqlite3_column_int64(stmt, 8);
        h->source = column_dup(stmt, 9, &oom);
        h->snippet = column_dup(stmt, 10, &oom);
        h->score = sqlite3_column_double(stmt, 11);
        h->body = column_dup(stmt, 12, &oom);
        h->word_times =
            word_times_parse((const char *)sqlite3_column_text(stmt, 13), &h->word_count, &oom);
        if (oom) {
            st = vx_fail(err, VX_ENOMEM, "out of memory reading text matches");
            break;
        }
    }
    if (!st && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        st = (sqlite3_errcode(s->db) == SQLITE_ERROR)
                 ? vx_fail(err, VX_EINVAL, "text query \"%.200s\": %s", fts_expr,
                           sqlite3_errmsg(s->db))
                 : st__db_fail(s, err, "searching texts");
    }
    st__stmt_put(s, stmt);
    st__read_end(s, own);
    if (st) {
        st_text_matches_free(hits, n);
        return st;
    }
    *out = hits;
    *out_count = n;
    return VX_OK;
}

void st_text_matches_free(st_text_match *matches, size_t count)
{
    if (!matches) return;
    for (size_t i = 0; i < count; i++) {
        free(matches[i].location);
        free(matches[i].source);
        free(matches[i].snippet);
        free(matches[i].body);
        free(matches[i].word_times);
    }
    free(matches);
}

vx_status st_text_list(st_store *s, int64_t segment_id, st_text **out, size_t *out_count,
                       vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT source, start_ms, end_ms, body, word_times FROM texts"
                                " WHERE segment_id = ? ORDER BY id",
                                &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, segment_id);
    st_text *texts = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            st_text *grown = realloc(texts, ncap * sizeof *grown);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory listing texts");
                break;
            }
            texts = grown;
            cap = ncap;
        }
        int oom = 0;
        st_text *t = &texts[n++];
        t->segment_id = segment_id;
        t->source = column_dup(stmt, 0, &oom);
        t->start_ms = sqlite3_column_int64(stmt, 1);
        t->end_ms = sqlite3_column_int64(stmt, 2);
        t->body = column_dup(stmt, 3, &oom);
        t->word_times =
            word_times_parse((const char *)sqlite3_column_text(stmt, 4), &t->word_count, &oom);
        if (oom) {
            st = vx_fail(err, VX_ENOMEM, "out of memory listing texts");
            break;
        }
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "listing a segment's texts");
    st__stmt_put(s, stmt);
    if (st) {
        st_texts_free(texts, n);
        return st;
    }
    *out = texts;
    *out_count = n;
    return VX_OK;
}

void st_texts_free(st_text *texts, size_t count)
{
    if (!texts) return;
    for (size_t i = 0; i < count; i++) {
        free(texts[i].source);
        free(texts[i].body);
        free(texts[i].word_times);
    }
    free(texts);
}

/* ---- index runs --------------------------------------------------------------------------- */

vx_status st_run_begin(st_store *s, int64_t library_id, int64_t *out_run_id, vx_err *err)
{
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s, "INSERT INTO index_runs(library_id, started_ms) VALUES (?, ?)",
                            &stmt, err))) {
        if (library_id)
            sqlite3_bind_int64(stmt, 1, library_id);
        else
            sqlite3_bind_null(stmt, 1);
        sqlite3_bind_int64(stmt, 2, vx_wall_ms());
        st = step_done(s, stmt, "recording an index run", err);
        if (!st && out_run_id) *out_run_id = sqlite3_last_insert_rowid(s->db);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_run_finish(st_store *s, int64_t run_id, const char *status, int64_t videos_done,
                        int64_t videos_failed, const char *message, vx_err *err)
{
    if (!status || !*status)
        return vx_fail(err, VX_EINVAL, "index run %lld: no status", (long long)run_id);
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s,
                            "UPDATE index_runs SET finished_ms = ?, status = ?, videos_done = ?,"
                            " videos_failed = ?, message = ? WHERE id = ?",
                            &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, vx_wall_ms());
        bind_text(stmt, 2, status);
        sqlite3_bind_int64(stmt, 3, videos_done);
        sqlite3_bind_int64(stmt, 4, videos_failed);
        bind_text(stmt, 5, message);
        sqlite3_bind_int64(stmt, 6, run_id);
        st = step_done(s, stmt, "finishing an index run", err);
        if (!st && sqlite3_changes(s->db) == 0)
            st = vx_fail(err, VX_ENOTFOUND, "no index run %lld in %s", (long long)run_id,
                         s->catalog_path);
    }
    return st__write_end(s, own, st, err);
}
