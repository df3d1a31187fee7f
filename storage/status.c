/* What `vidx status` and `vidx verify [--repair]` show: counts, index freshness and disk
 * usage; and the consistency checks between the catalog, the index files and the folders,
 * with their repairs. The CLI only formats what these return. */
#define _GNU_SOURCE
#include "st_internal.h"

#include <faiss/c_api/Index_c.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- stats -------------------------------------------------------------------------------- */

/* Runs "SELECT key, count(*) … GROUP BY key" into counts[0..n). */
static vx_status count_by(st_store *s, const char *sql, int64_t *counts, int n, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s, sql, &stmt, err);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int key = sqlite3_column_int(stmt, 0);
        if (key >= 0 && key < n) counts[key] += sqlite3_column_int64(stmt, 1);
    }
    if (rc != SQLITE_DONE) st = st__db_fail(s, err, sql);
    st__stmt_put(s, stmt);
    return st;
}

static vx_status space_count(st_store *s, int64_t space_id, int valid_only, int64_t *out,
                             vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s,
        valid_only ? "SELECT count(*) FROM embeddings e JOIN spaces p ON p.id = e.space_id"
                     " WHERE e.space_id = ? AND length(e.vector) = p.dim * 4"
                   : "SELECT count(*) FROM embeddings WHERE space_id = ?",
        &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, space_id);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else
        st = st__db_fail(s, err, "counting vectors");
    st__stmt_put(s, stmt);
    return st;
}

static int cmp_space_stats(const void *a, const void *b)
{
    const st_space_stats *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    return c ? c : strcmp(x->modality, y->modality);
}

static vx_status stats_body(st_store *s, st_stats *out, vx_err *err)
{
    vx_status st;
    if ((st = st__query_int(s, "SELECT count(*) FROM libraries", &out->libraries, err)) ||
        (st = st__query_int(s, "SELECT count(*) FROM videos", &out->videos, err)) ||
        (st = st__query_int(s, "SELECT count(*) FROM segments", &out->segments, err)) ||
        (st = st__query_int(s, "SELECT count(*) FROM embeddings", &out->embeddings, err)) ||
        (st = st__query_int(s, "SELECT count(*) FROM texts", &out->texts, err)) ||
        (st = st__query_int(s, "SELECT count(*) FROM index_runs", &out->runs, err)) ||
        (st = st_generation(s, &out->catalog_generation, err)))
        return st;
    if ((st = count_by(s, "SELECT status, count(*) FROM videos GROUP BY status",
                       out->videos_by_status, ST_VIDEO_STATUS_COUNT, err)) ||
        (st = count_by(s, "SELECT level, count(*) FROM segments GROUP BY level",
                       out->segments_by_level, 3, err)))
        return st;
    if ((st = st__schema_version(s->db, s->catalog_path, &out->schema_version, err))) return st;
    if ((st = st__spaces_refresh(s, err))) return st;
    if (s->space_count) {
        out->spaces = vx_calloc_array(s->space_count, sizeof *out->spaces, err);
        if (!out->spaces) return VX_ENOMEM;
    }
    for (size_t i = 0; i < s->space_count; i++) {
        st_vindex *vi = s->spaces[i];
        st_space_stats *ss = &out->spaces[out->space_count++];
        ss->dim = vi->dim;
        if ((st = space_count(s, vi->space_id, 0, &ss->vectors, err))) return st;
        char *path = st__vindex_path(s, vi->model, vi->modality, err);
        if (!path) return VX_ENOMEM;
        st_vfile_info info;
        st__vfile_probe(path, out->catalog_generation, 0, &info);
        free(path);
        ss->file_vectors = info.ntotal;
        ss->file_generation = info.generation;
        ss->file_bytes = info.file_bytes;
        ss->model = strdup(vi->model);
        ss->modality = strdup(vi->modality);
        ss->file_state = strdup(info.state);
        ss->index_type = strdup(info.factory);
        if (!ss->model || !ss->modality || !ss->file_state || !ss->index_type)
            return vx_fail(err, VX_ENOMEM, "out of memory for index stats");
    }
    /* The in-memory list is in order of first use; the report is by model, modality. */
    if (out->space_count)
        qsort(out->spaces, out->space_count, sizeof *out->spaces, cmp_space_stats);
    return VX_OK;
}

vx_status st_stats_get(st_store *s, st_stats *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    /* One snapshot, so the counts agree with each other. */
    int own_snapshot;
    vx_status st = st__read_begin(s, &own_snapshot, err);
    if (st) return st;
    st = stats_body(s, out, err);
    st__read_end(s, own_snapshot);
    if (st) {
        st_stats_free(out);
        return st;
    }
    char *wal = vx_asprintf(err, "%s-wal", s->catalog_path);
    char *shm = vx_asprintf(err, "%s-shm", s->catalog_path);
    if (!wal || !shm) {
        free(wal);
        free(shm);
        st_stats_free(out);
        return VX_ENOMEM;
    }
    out->catalog_bytes =
        st__file_bytes(s->catalog_path) + st__file_bytes(wal) + st__file_bytes(shm);
    free(wal);
    free(shm);
    out->index_bytes = st__tree_bytes(s->index_dir);
    out->thumbs_bytes = st__tree_bytes(s->thumbs_dir);
    return VX_OK;
}

void st_stats_free(st_stats *stats)
{
    if (!stats) return;
    for (size_t i = 0; i < stats->space_count; i++) {
        st_space_stats *ss = &stats->spaces[i];
        free(ss->model);
        free(ss->modality);
        free(ss->file_state);
        free(ss->index_type);
    }
    free(stats->spaces);
    memset(stats, 0, sizeof *stats);
}

/* ---- verify ------------------------------------------------------------------------------- */

const char *st_problem_kind_name(st_problem_kind kind)
{
    switch (kind) {
    case ST_PROBLEM_INTEGRITY:
        return "integrity";
    case ST_PROBLEM_FOREIGN_KEY:
        return "foreign-key";
    case ST_PROBLEM_BAD_ROW:
        return "bad-row";
    case ST_PROBLEM_INDEX_MISSING:
        return "index-missing";
    case ST_PROBLEM_INDEX_CORRUPT:
        return "index-corrupt";
    case ST_PROBLEM_INDEX_STALE:
        return "index-stale";
    case ST_PROBLEM_INDEX_MISMATCH:
        return "index-mismatch";
    case ST_PROBLEM_ORPHAN_FILE:
        return "orphan-file";
    case ST_PROBLEM_KIND_COUNT:
        break;
    }
    return "unknown";
}

/* Integrity lines beyond this are summarised: a badly damaged file can list thousands. */
#define MAX_INTEGRITY_LINES 50

static vx_status add_problem(st_verify_report *r, st_problem_kind kind, vx_err *err,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static vx_status add_problem(st_verify_report *r, st_problem_kind kind, vx_err *err,
                             const char *fmt, ...)
{
    st_problem *grown = realloc(r->problems, (r->count + 1) * sizeof *grown);
    if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory listing problems");
    r->problems = grown;
    va_list ap;
    va_start(ap, fmt);
    char *what = NULL;
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0) return vx_fail(err, VX_ENOMEM, "out of memory listing problems");
    st_problem *p = &r->problems[r->count++];
    p->kind = kind;
    p->what = what;
    p->repaired = 0;
    return VX_OK;
}

static void mark_repaired(st_verify_report *r)
{
    r->problems[r->count - 1].repaired = 1;
    r->repaired++;
}

static vx_status check_integrity(st_store *s, st_verify_report *r, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s, "PRAGMA integrity_check", &stmt, err);
    if (st) return st;
    int rc, lines = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(stmt, 0);
        if (line && !strcmp(line, "ok")) continue;
        if (++lines > MAX_INTEGRITY_LINES) continue;
        if ((st = add_problem(r, ST_PROBLEM_INTEGRITY, err, "catalog %s: %s", s->catalog_path,
                              line ? line : "?")))
            break;
    }
    if (!st && rc != SQLITE_DONE) {
        /* A damaged file can fail the check itself: that is a finding, not an error. */
        st = add_problem(r, ST_PROBLEM_INTEGRITY, err, "catalog %s: integrity check failed: %s",
                         s->catalog_path, sqlite3_errmsg(s->db));
    }
    st__stmt_put(s, stmt);
    if (!st && lines > MAX_INTEGRITY_LINES)
        st = add_problem(r, ST_PROBLEM_INTEGRITY, err, "catalog %s: %d more integrity problems",
                         s->catalog_path, lines - MAX_INTEGRITY_LINES);
    return st;
}

/* The tables foreign_key_check may name; a repair deletes only from these. */
static int known_table(const char *t)
{
    static const char *const tables[] = {"videos", "segments", "embeddings", "texts", "index_runs"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (!strcmp(t, tables[i])) return 1;
    return 0;
}

static vx_status check_foreign_keys(st_store *s, int repair, st_verify_report *r, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s, "PRAGMA foreign_key_check", &stmt, err);
    if (st) return st;
    /* Collect first: deleting while the pragma runs would disturb it. */
    typedef struct {
        char table[32];
        int64_t rowid;
    } bad_row;
    bad_row *rows = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *table = (const char *)sqlite3_column_text(stmt, 0);
        const char *parent = (const char *)sqlite3_column_text(stmt, 2);
        int64_t rowid = sqlite3_column_int64(stmt, 1);
        if ((st = add_problem(r, ST_PROBLEM_FOREIGN_KEY, err,
                              "catalog %s: %s row %lld points to a missing %s row", s->catalog_path,
                              table ? table : "?", (long long)rowid, parent ? parent : "?")))
            break;
        bad_row *grown = realloc(rows, (n + 1) * sizeof *rows);
        if (!grown) {
            st = vx_fail(err, VX_ENOMEM, "out of memory checking foreign keys");
            break;
        }
        rows = grown;
        snprintf(rows[n].table, sizeof rows[n].table, "%s", table ? table : "");
        rows[n].rowid = rowid;
        n++;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "checking foreign keys");
    st__stmt_put(s, stmt);
    size_t first = r->count - n;
    for (size_t i = 0; !st && repair && i < n; i++) {
        if (!known_table(rows[i].table)) continue;
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid = ?", rows[i].table);
        int own;
        if ((st = st__write_begin(s, &own, err))) break;
        if (!(st = st__prepare(s, sql, &stmt, err))) { /* built here: not cacheable */
            sqlite3_bind_int64(stmt, 1, rows[i].rowid);
            if (sqlite3_step(stmt) != SQLITE_DONE) st = st__db_fail(s, err, "deleting a row");
            sqlite3_finalize(stmt);
        }
        if ((st = st__write_end(s, own, st, err))) break;
        r->problems[first + i].repaired = 1;
        r->repaired++;
    }
    free(rows);
    return st;
}

static vx_status check_bad_vectors(st_store *s, int repair, st_verify_report *r, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st =
        st__stmt_get(s,
                     "SELECT e.id, e.segment_id, p.model, p.modality, length(e.vector),"
                     " p.dim FROM embeddings e JOIN spaces p ON p.id = e.space_id"
                     " WHERE length(e.vector) != p.dim * 4 OR typeof(e.vector) != 'blob'",
                     &stmt, err);
    if (st) return st;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((st =
                 add_problem(r, ST_PROBLEM_BAD_ROW, err,
                             "catalog %s: the %s/%s vector of segment %lld has %d bytes,"
                             " expected %d",
                             s->catalog_path, sqlite3_column_text(stmt, 2),
                             sqlite3_column_text(stmt, 3), (long long)sqlite3_column_int64(stmt, 1),
                             sqlite3_column_int(stmt, 4), sqlite3_column_int(stmt, 5) * 4)))
            break;
        int64_t *grown = realloc(ids, (n + 1) * sizeof *ids);
        if (!grown) {
            st = vx_fail(err, VX_ENOMEM, "out of memory checking vectors");
            break;
        }
        ids = grown;
        ids[n++] = sqlite3_column_int64(stmt, 0);
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "checking vectors");
    st__stmt_put(s, stmt);
    size_t first = r->count - n;
    for (size_t i = 0; !st && repair && i < n; i++) {
        int own;
        if ((st = st__write_begin(s, &own, err))) break;
        if (!(st = st__stmt_get(s, "DELETE FROM embeddings WHERE id = ?", &stmt, err))) {
            sqlite3_bind_int64(stmt, 1, ids[i]);
            if (sqlite3_step(stmt) != SQLITE_DONE) st = st__db_fail(s, err, "deleting a vector");
            st__stmt_put(s, stmt);
        }
        if ((st = st__write_end(s, own, st, err))) break;
        r->problems[first + i].repaired = 1;
        r->repaired++;
    }
    free(ids);
    return st;
}

/* The FTS5 index must agree with the texts table; only a writer can run the check (it is an
 * INSERT command) and its repair ('rebuild'). */
static vx_status check_fts(st_store *s, int repair, st_verify_report *r, vx_err *err)
{
    if (s->opts.mode != ST_WRITE) return VX_OK;
    if (sqlite3_exec(s->db, "INSERT INTO texts_fts(texts_fts) VALUES ('integrity-check')", NULL,
                     NULL, NULL) == SQLITE_OK)
        return VX_OK;
    vx_status st = add_problem(r, ST_PROBLEM_INTEGRITY, err,
                               "catalog %s: the text search index disagrees with texts: %s",
                               s->catalog_path, sqlite3_errmsg(s->db));
    if (st || !repair) return st;
    if ((st = st__exec(s, "INSERT INTO texts_fts(texts_fts) VALUES ('rebuild')", err))) return st;
    mark_repaired(r);
    return VX_OK;
}

/* The catalog's valid ids of a space, sorted. */
static vx_status catalog_ids(st_store *s, st_vindex *vi, int64_t **out, size_t *out_count,
                             vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    int64_t n = 0;
    vx_status st = space_count(s, vi->space_id, 1, &n, err);
    if (st) return st;
    int64_t *ids = vx_calloc_array(n ? (size_t)n : 1, sizeof *ids, err);
    if (!ids) return VX_ENOMEM;
    sqlite3_stmt *stmt;
    if ((st = st__stmt_get(s,
                           "SELECT segment_id FROM embeddings WHERE space_id = ?"
                           " AND length(vector) = ? ORDER BY segment_id",
                           &stmt, err))) {
        free(ids);
        return st;
    }
    sqlite3_bind_int64(stmt, 1, vi->space_id);
    sqlite3_bind_int(stmt, 2, vi->dim * 4);
    size_t got = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && got < (size_t)n)
        ids[got++] = sqlite3_column_int64(stmt, 0);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) st = st__db_fail(s, err, "listing vector ids");
    st__stmt_put(s, stmt);
    if (st) {
        free(ids);
        return st;
    }
    *out = ids;
    *out_count = got;
    return VX_OK;
}

/* Compares two sorted id lists; describes the first difference. */
static int ids_differ(const int64_t *a, size_t na, const int64_t *b, size_t nb, char *why,
                      size_t why_size)
{
    size_t i = 0, j = 0, missing = 0, extra = 0;
    int64_t first_missing = -1, first_extra = -1;
    while (i < na || j < nb) {
        if (j >= nb || (i < na && a[i] < b[j])) {
            if (!missing++) first_missing = a[i];
            i++;
        } else if (i >= na || b[j] < a[i]) {
            if (!extra++) first_extra = b[j];
            j++;
        } else {
            i++, j++;
        }
    }
    if (!missing && !extra) return 0;
    char m[64] = "", e[64] = "";
    if (missing) snprintf(m, sizeof m, " (first: segment %lld)", (long long)first_missing);
    if (extra) snprintf(e, sizeof e, " (first: segment %lld)", (long long)first_extra);
    snprintf(why, why_size,
             "%zu vectors in the catalog, %zu in the index; %zu missing%s, %zu extra%s", na, nb,
             missing, m, extra, e);
    return 1;
}

/* Segment ids the change log touched in (from_generation, to_generation] for a space, sorted
 * and distinct: what a replay of a stale file removes and re-adds. */
static vx_status log_touched_ids(st_store *s, st_vindex *vi, int64_t from_generation,
                                 int64_t to_generation, int64_t **out, size_t *out_count,
                                 vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT DISTINCT segment_id FROM vec_log WHERE space_id = ?1"
                                " AND generation > ?2 AND generation <= ?3 ORDER BY segment_id",
                                &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, vi->space_id);
    sqlite3_bind_int64(stmt, 2, from_generation);
    sqlite3_bind_int64(stmt, 3, to_generation);
    vx_buf ids = {0};
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        if ((st = vx_buf_append(&ids, &id, sizeof id, err))) break;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "reading the index change log");
    st__stmt_put(s, stmt);
    if (st) {
        vx_buf_free(&ids);
        return st;
    }
    *out = (int64_t *)ids.data;
    *out_count = ids.len / sizeof(int64_t);
    return VX_OK;
}

/* What replaying the log over a file with ids file_ids yields: (file − touched) ∪
 * (touched ∩ catalog). All inputs sorted; *out is malloc'd, sorted. */
static vx_status replayed_ids(const int64_t *file_ids, size_t nfile, const int64_t *touched,
                              size_t ntouched, const int64_t *cat, size_t ncat, int64_t **out,
                              size_t *out_count, vx_err *err)
{
    int64_t *ids = vx_calloc_array(nfile + ntouched + 1, sizeof *ids, err);
    if (!ids) return VX_ENOMEM;
    size_t n = 0;
    for (size_t i = 0, t = 0; i < nfile; i++) {
        while (t < ntouched && touched[t] < file_ids[i])
            t++;
        if (t < ntouched && touched[t] == file_ids[i]) continue;
        ids[n++] = file_ids[i];
    }
    for (size_t t = 0, c = 0; t < ntouched; t++) {
        while (c < ncat && cat[c] < touched[t])
            c++;
        if (c < ncat && cat[c] == touched[t]) ids[n++] = touched[t];
    }
    qsort(ids, n, sizeof *ids, st__cmp_i64);
    *out = ids;
    *out_count = n;
    return VX_OK;
}

/* Checks one space's file against the catalog at `generation`, from a read snapshot. */
/* *action: 0 nothing to do, 1 replay and save (stale), 2 rebuild and save (broken). */
static vx_status check_space(st_store *s, st_vindex *vi, int64_t generation, st_verify_report *r,
                             int *action, vx_err *err)
{
    *action = 0;
    char *path = st__vindex_path(s, vi->model, vi->modality, err);
    if (!path) return VX_ENOMEM;
    st_vfile_info info;
    /* A fresh file is loaded below, which checks its data hash; others get the hash here. */
    st__vfile_probe(path, generation, 0, &info);
    if (!strcmp(info.state, "stale")) st__vfile_probe(path, generation, 1, &info);
    vx_status st = VX_OK;
    int broken = 0; /* needs a rebuild rather than a replay */
    if (!strcmp(info.state, "missing")) {
        st = add_problem(r, ST_PROBLEM_INDEX_MISSING, err, "index %s is missing", path);
        broken = 1;
    } else if (!strcmp(info.state, "corrupt")) {
        st = add_problem(r, ST_PROBLEM_INDEX_CORRUPT, err, "index %s: %s", path, info.reason);
        broken = 1;
    } else if (!strcmp(info.state, "stale")) {
        /* An older file is the normal state after a crash or before the writer's next flush:
         * every open replays the change log over it. It is a problem only when the log no
         * longer reaches back to it, or when file + log does not give the catalog's ids. */
        int64_t floor = 0;
        if ((st = st__query_int(s, "SELECT log_floor FROM state", &floor, err))) goto out;
        if (info.generation < floor) {
            st = add_problem(r, ST_PROBLEM_INDEX_STALE, err,
                             "index %s reflects generation %lld, the catalog is at %lld and its "
                             "change log starts at %lld: it must be rebuilt at every open",
                             path, (long long)info.generation, (long long)generation,
                             (long long)floor);
        } else {
            FaissIndex *index = NULL;
            int64_t file_generation;
            char factory[64];
            int64_t *cat = NULL, *idx = NULL, *touched = NULL, *replayed = NULL;
            size_t ncat = 0, nidx = 0, ntouched = 0, nreplayed = 0;
            vx_err load_err = {0};
            if (st__vfile_load(path, vi->dim, &index, &file_generation, factory, &load_err)) {
                st = add_problem(r, ST_PROBLEM_INDEX_CORRUPT, err, "%s", load_err.msg);
                broken = 1;
            } else if (!(st = catalog_ids(s, vi, &cat, &ncat, err)) &&
                       !(st = st__vindex_ids(index, path, &idx, &nidx, err)) &&
                       !(st = log_touched_ids(s, vi, file_generation, generation, &touched,
                                              &ntouched, err)) &&
                       !(st = replayed_ids(idx, nidx, touched, ntouched, cat, ncat, &replayed,
                                           &nreplayed, err))) {
                char why[256];
                if (ids_differ(cat, ncat, replayed, nreplayed, why, sizeof why)) {
                    st = add_problem(r, ST_PROBLEM_INDEX_MISMATCH, err,
                                     "index %s (generation %lld) with the change log: %s", path,
                                     (long long)file_generation, why);
                    broken = 1;
                } else {
                    vx_log(VX_LOG_DEBUG,
                           "index %s is at generation %lld, the catalog at %lld: replayable", path,
                           (long long)file_generation, (long long)generation);
                }
            }
            if (index) faiss_Index_free(index);
            free(cat), free(idx), free(touched), free(replayed);
            if (!st && !broken) {
                free(path);
                return VX_OK;
            }
        }
    } else if (strcmp(info.model, vi->model) || strcmp(info.modality, vi->modality) ||
               info.dim != vi->dim) {
        st = add_problem(r, ST_PROBLEM_INDEX_MISMATCH, err,
                         "index %s holds %s/%s of dim %d, expected %s/%s of dim %d", path,
                         info.model, info.modality, info.dim, vi->model, vi->modality, vi->dim);
        broken = 1;
    } else {
        /* Fresh: its id set must be the catalog's. */
        FaissIndex *index = NULL;
        int64_t file_generation;
        char factory[64];
        int64_t *cat = NULL, *idx = NULL;
        size_t ncat = 0, nidx = 0;
        vx_err load_err = {0};
        if (st__vfile_load(path, vi->dim, &index, &file_generation, factory, &load_err)) {
            st = add_problem(r, ST_PROBLEM_INDEX_CORRUPT, err, "%s", load_err.msg);
            broken = 1;
        } else if (!(st = catalog_ids(s, vi, &cat, &ncat, err)) &&
                   !(st = st__vindex_ids(index, path, &idx, &nidx, err))) {
            char why[256];
            if (ids_differ(cat, ncat, idx, nidx, why, sizeof why)) {
                st = add_problem(r, ST_PROBLEM_INDEX_MISMATCH, err, "index %s: %s", path, why);
                broken = 1;
            }
        }
        if (index) faiss_Index_free(index);
        free(cat);
        free(idx);
        if (!broken) {
            free(path);
            return st;
        }
    }
out:
    free(path);
    if (!st) *action = broken ? 2 : 1;
    return st;
}

static vx_status check_indexes(st_store *s, int repair, st_verify_report *r, vx_err *err)
{
    vx_status st = st__spaces_refresh(s, err);
    if (st) return st;
    int *action = vx_calloc_array(s->space_count ? s->space_count : 1, sizeof *action, err);
    size_t *problem_at =
        vx_calloc_array(s->space_count ? s->space_count : 1, sizeof *problem_at, err);
    if (!action || !problem_at) {
        free(action);
        free(problem_at);
        return VX_ENOMEM;
    }
    /* One snapshot for all checks, so each file is compared with one catalog state. */
    int own_snapshot;
    if ((st = st__read_begin(s, &own_snapshot, err))) goto done;
    int64_t generation = 0;
    if (!(st = st_generation(s, &generation, err))) {
        for (size_t i = 0; i < s->space_count; i++) {
            problem_at[i] = r->count;
            if ((st = check_space(s, s->spaces[i], generation, r, &action[i], err))) break;
        }
    }
    st__read_end(s, own_snapshot);
    /* Repairs run after the snapshot ended: they need the catalog's current state. */
    for (size_t i = 0; !st && repair && i < s->space_count; i++) {
        st_vindex *vi = s->spaces[i];
        if (!action[i]) continue;
        if (action[i] == 1) { /* stale: replay (or rebuild when the log cannot) and save */
            if ((st = st__vindex_sync(s, vi, err))) break;
            int64_t *cat = NULL, *idx = NULL;
            size_t ncat = 0, nidx = 0;
            char why[256];
            int differ = 1;
            int own;
            if (!(st = st__read_begin(s, &own, err))) {
                if (!(st = catalog_ids(s, vi, &cat, &ncat, err)) &&
                    !(st = st__vindex_ids(vi->index, vi->model, &idx, &nidx, err)))
                    differ = ids_differ(cat, ncat, idx, nidx, why, sizeof why);
                st__read_end(s, own);
            }
            free(cat);
            free(idx);
            if (st) break;
            if (differ) {
                vx_log(VX_LOG_WARN, "index %s/%s after replay: %s; rebuilding", vi->model,
                       vi->modality, why);
                if ((st = st__vindex_rebuild(s, vi, err))) break;
            }
        } else if ((st = st__vindex_rebuild(s, vi, err))) {
            break;
        }
        if ((st = st__vindex_save(s, vi, err))) break;
        r->problems[problem_at[i]].repaired = 1;
        r->repaired++;
    }
done:
    free(action);
    free(problem_at);
    return st;
}

/* ---- orphan files ------------------------------------------------------------------------- */

typedef struct orphan_walk {
    st_store *s;
    st_verify_report *r;
    int repair;
    char **known; /* sorted */
    size_t known_count;
    int skip_temps; /* a reader may see the writer's save in progress */
    vx_err *err;
    vx_status st;
} orphan_walk;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int orphan_visit(void *ctx, const char *path, const char *rel, int64_t bytes)
{
    orphan_walk *w = ctx;
    if (w->known_count && bsearch(&rel, w->known, w->known_count, sizeof *w->known, cmp_str))
        return 0;
    if (w->skip_temps && strstr(rel, ".tmp.")) return 0;
    if ((w->st = add_problem(w->r, ST_PROBLEM_ORPHAN_FILE, w->err,
                             "%s (%lld bytes) belongs to nothing in the catalog", path,
                             (long long)bytes)))
        return 1;
    if (w->repair) {
        if (unlink(path) == 0)
            mark_repaired(w->r);
        else
            vx_log(VX_LOG_WARN, "cannot remove %s", path);
    }
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static vx_status check_orphans(st_store *s, int repair, st_verify_report *r, vx_err *err)
{
    orphan_walk w = {
        .s = s, .r = r, .repair = repair, .err = err, .skip_temps = s->opts.mode != ST_WRITE};
    /* index/: the files of the known spaces. */
    w.known = vx_calloc_array(s->space_count ? s->space_count : 1, sizeof *w.known, err);
    if (!w.known) return VX_ENOMEM;
    for (size_t i = 0; i < s->space_count; i++) {
        w.known[i] = vx_asprintf(err, "%s@%s.vxi", s->spaces[i]->model, s->spaces[i]->modality);
        if (!w.known[i]) {
            free_strings(w.known, i);
            return VX_ENOMEM;
        }
        w.known_count++;
    }
    if (w.known_count) qsort(w.known, w.known_count, sizeof *w.known, cmp_str);
    st__walk_files(s->index_dir, orphan_visit, &w);
    free_strings(w.known, w.known_count);
    if (w.st) return w.st;
    /* thumbs/: the files that segments name. */
    w.known = NULL;
    w.known_count = 0;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s, "SELECT DISTINCT thumb FROM segments WHERE thumb IS NOT NULL ORDER BY thumb", &stmt,
        err);
    if (st) return st;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (w.known_count == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            char **grown = realloc(w.known, ncap * sizeof *grown);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory listing thumbnails");
                break;
            }
            w.known = grown;
            cap = ncap;
        }
        if (!(w.known[w.known_count] = strdup((const char *)sqlite3_column_text(stmt, 0)))) {
            st = vx_fail(err, VX_ENOMEM, "out of memory listing thumbnails");
            break;
        }
        w.known_count++;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "listing thumbnails");
    st__stmt_put(s, stmt);
    if (!st) {
        /* SQL's ORDER BY is bytewise like strcmp for UTF-8, but sort anyway: cheap and sure. */
        if (w.known_count) qsort(w.known, w.known_count, sizeof *w.known, cmp_str);
        st__walk_files(s->thumbs_dir, orphan_visit, &w);
        st = w.st;
    }
    free_strings(w.known, w.known_count);
    return st;
}

vx_status st_verify(st_store *s, int repair, st_verify_report *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    if (repair && s->opts.mode != ST_WRITE)
        return vx_fail(err, VX_EINVAL,
                       "verify --repair needs the data directory %s open as"
                       " writer",
                       s->dir);
    if (s->in_txn)
        return vx_fail(err, VX_EINVAL, "verify: commit or roll back the open transaction first");
    vx_status st;
    if ((st = check_integrity(s, out, err)) || (st = check_foreign_keys(s, repair, out, err)) ||
        (st = check_bad_vectors(s, repair, out, err)) || (st = check_fts(s, repair, out, err)) ||
        (st = check_indexes(s, repair, out, err)) || (st = check_orphans(s, repair, out, err))) {
        st_verify_report_free(out);
        return st;
    }
    return VX_OK;
}

void st_verify_report_free(st_verify_report *report)
{
    if (!report) return;
    for (size_t i = 0; i < report->count; i++)
        free(report->problems[i].what);
    free(report->problems);
    memset(report, 0, sizeof *report);
}
