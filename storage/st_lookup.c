/* storage/st_lookup.c — small read-only look-ups for the query path and the web server: whether a
 * vector space has vectors, the list of spaces, the latest index run and a library's counts.
 * Each is one cached statement whose cost does not grow with the whole catalog (st_stats_get
 * counts everything and is for `vidx status`). */
#include "st_internal.h"

#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of a text column ("" for NULL when keep_null is 0); *oom on failure. */
static char *text_dup(sqlite3_stmt *stmt, int i, int keep_null, int *oom)
{
    const char *text = (const char *)sqlite3_column_text(stmt, i);
    if (!text && keep_null) return NULL;
    char *copy = strdup(text ? text : "");
    if (!copy) *oom = 1;
    return copy;
}

vx_status st_space_exists(st_store *s, const char *model, const char *modality, int dim, int *out,
                          vx_err *err)
{
    *out = 0;
    if (!model || !modality) return VX_OK;
    /* EXISTS stops at the first row of the UNIQUE (space_id, segment_id) index. */
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT dim, EXISTS (SELECT 1 FROM embeddings e"
                                " WHERE e.space_id = spaces.id)"
                                " FROM spaces WHERE model = ? AND modality = ?",
                                &stmt, err);
    if (st) return st;
    sqlite3_bind_text(stmt, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, modality, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(stmt, 1) && (dim <= 0 || sqlite3_column_int(stmt, 0) == dim);
    else if (rc != SQLITE_DONE)
        st = st__db_fail(s, err, "looking up a vector space");
    st__stmt_put(s, stmt);
    return st;
}

vx_status st_space_list(st_store *s, st_space_info **out, size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT model, modality, dim, EXISTS (SELECT 1 FROM embeddings e"
                                " WHERE e.space_id = spaces.id)"
                                " FROM spaces ORDER BY model, modality",
                                &stmt, err);
    if (st) return st;
    st_space_info *list = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 8;
            st_space_info *grown = realloc(list, grown_cap * sizeof *grown);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory listing vector spaces");
                break;
            }
            list = grown;
            cap = grown_cap;
        }
        int oom = 0;
        st_space_info *sp = &list[n++];
        sp->model = text_dup(stmt, 0, 0, &oom);
        sp->modality = text_dup(stmt, 1, 0, &oom);
        sp->dim = sqlite3_column_int(stmt, 2);
        sp->has_vectors = sqlite3_column_int(stmt, 3) != 0;
        if (oom) {
            st = vx_fail(err, VX_ENOMEM, "out of memory listing vector spaces");
            break;
        }
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "listing vector spaces");
    st__stmt_put(s, stmt);
    if (st) {
        st_spaces_free(list, n);
        return st;
    }
    *out = list;
    *out_count = n;
    return VX_OK;
}

void st_spaces_free(st_space_info *spaces, size_t count)
{
    if (!spaces) return;
    for (size_t i = 0; i < count; i++) {
        free(spaces[i].model);
        free(spaces[i].modality);
    }
    free(spaces);
}

vx_status st_run_last(st_store *s, int64_t library_id, st_run *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt;
    /* ids rise with st_run_begin, so the largest id is the latest start even when two runs
     * began in the same millisecond */
    vx_status st = st__stmt_get(
        s,
        library_id ? "SELECT id, library_id, status, started_ms, finished_ms, videos_done,"
                     " videos_failed, message FROM index_runs WHERE library_id = ?"
                     " ORDER BY id DESC LIMIT 1"
                   : "SELECT id, library_id, status, started_ms, finished_ms, videos_done,"
                     " videos_failed, message FROM index_runs ORDER BY id DESC LIMIT 1",
        &stmt, err);
    if (st) return st;
    if (library_id) sqlite3_bind_int64(stmt, 1, library_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        int oom = 0;
        out->id = sqlite3_column_int64(stmt, 0);
        out->library_id = sqlite3_column_int64(stmt, 1); /* NULL reads as 0 */
        out->status = text_dup(stmt, 2, 0, &oom);
        out->started_ms = sqlite3_column_int64(stmt, 3);
        out->finished_ms = sqlite3_column_int64(stmt, 4);
        out->videos_done = sqlite3_column_int64(stmt, 5);
        out->videos_failed = sqlite3_column_int64(stmt, 6);
        out->message = text_dup(stmt, 7, 1, &oom);
        if (oom) {
            st_run_clear(out);
            st = vx_fail(err, VX_ENOMEM, "out of memory reading an index run");
        }
    } else if (rc == SQLITE_DONE) {
        st = library_id ? vx_fail(err, VX_ENOTFOUND, "library %lld has no index run in %s",
                                  (long long)library_id, s->catalog_path)
                        : vx_fail(err, VX_ENOTFOUND, "no index run in %s", s->catalog_path);
    } else {
        st = st__db_fail(s, err, "reading the latest index run");
    }
    st__stmt_put(s, stmt);
    return st;
}

void st_run_clear(st_run *run)
{
    if (!run) return;
    free(run->status);
    free(run->message);
    memset(run, 0, sizeof *run);
}

vx_status st_library_counts(st_store *s, int64_t library_id, st_library_stats *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    /* One row per status; the correlated count walks segments_video(video_id, …) per video.
     * The row with a NULL status says whether the library exists, so an empty library (0
     * videos) and an unknown one are told apart in the same query. */
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s,
        library_id
            ? "SELECT NULL, count(*), 0 FROM libraries WHERE id = ?1"
              " UNION ALL SELECT v.status, count(*), coalesce(sum((SELECT count(*) FROM"
              " segments g WHERE g.video_id = v.id)), 0) FROM videos v WHERE v.library_id = ?1"
              " GROUP BY v.status"
            : "SELECT NULL, 1, 0"
              " UNION ALL SELECT v.status, count(*), coalesce(sum((SELECT count(*) FROM"
              " segments g WHERE g.video_id = v.id)), 0) FROM videos v GROUP BY v.status",
        &stmt, err);
    if (st) return st;
    if (library_id) sqlite3_bind_int64(stmt, 1, library_id);
    int found = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t videos = sqlite3_column_int64(stmt, 1);
        if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
            found = videos > 0;
            continue;
        }
        int status = sqlite3_column_int(stmt, 0);
        out->videos += videos;
        out->segments += sqlite3_column_int64(stmt, 2);
        /* a status this build does not know counts as failed, as st_video_get reads it */
        int known = status >= 0 && status < ST_VIDEO_STATUS_COUNT;
        out->videos_by_status[known ? status : ST_VIDEO_FAILED] += videos;
    }
    if (rc != SQLITE_DONE)
        st = st__db_fail(s, err, "counting a library's videos");
    else if (!found)
        st = vx_fail(err, VX_ENOTFOUND, "no library with id %lld in %s", (long long)library_id,
                     s->catalog_path);
    st__stmt_put(s, stmt);
    if (st) memset(out, 0, sizeof *out);
    return st;
}

vx_status st_segment_spans(st_store *s, const int64_t *segment_ids, size_t n, st_segment_span *out,
                           vx_err *err)
{
    if (!n) return VX_OK;
    /* The ids go in as one JSON array (json_each): SQLite has no array parameter, and one
     * statement beats n look-ups. At most 20 digits, a sign and a comma per id. */
    size_t need = n * 22 + 3;
    if (need > s->ids_json_cap) {
        char *grown = realloc(s->ids_json, need);
        if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory for %zu segment ids", n);
        s->ids_json = grown;
        s->ids_json_cap = need;
    }
    char *p = s->ids_json;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        out[i] = (st_segment_span){0, 0, 0};
        if (i) *p++ = ',';
        /* digits backwards into a small buffer, then copied: no printf per id */
        char digits[24];
        int len = 0;
        uint64_t v = segment_ids[i] < 0 ? -(uint64_t)segment_ids[i] : (uint64_t)segment_ids[i];
        do {
            digits[len++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (segment_ids[i] < 0) *p++ = '-';
        while (len)
            *p++ = digits[--len];
    }
    *p++ = ']';
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT j.key, g.video_id, g.start_ms, g.end_ms FROM json_each(?) j"
                                " JOIN segments g ON g.id = j.value",
                                &stmt, err);
    if (st) return st;
    sqlite3_bind_text(stmt, 1, s->ids_json, (int)(p - s->ids_json), SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t i = sqlite3_column_int64(stmt, 0);
        if (i < 0 || (size_t)i >= n) continue;
        out[i].video_id = sqlite3_column_int64(stmt, 1);
        out[i].start_ms = sqlite3_column_int64(stmt, 2);
        out[i].end_ms = sqlite3_column_int64(stmt, 3);
    }
    if (rc != SQLITE_DONE) st = st__db_fail(s, err, "reading segments");
    st__stmt_put(s, stmt);
    return st;
}
