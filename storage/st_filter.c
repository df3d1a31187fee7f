/* storage/st_filter.c — the catalog queries the query service's filters need: the segment ids
 * of the videos that match a filter (library, location prefix, duration, file mtime), which
 * search/ hands to st_search as its id selector and applies to lexical hits. */
#include "st_internal.h"

#include <stdlib.h>
#include <string.h>

vx_status st_filter_segments(st_store *s, const st_segment_filter *f, int64_t **out,
                             size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    if (!f) return vx_fail(err, VX_EINVAL, "no filter given");
    /* Each condition is off when its parameter is 0 / NULL, so one statement serves all. The
     * prefix is compared with substr(), not LIKE or GLOB: a location's '%', '_', '*' or '['
     * must match only itself. */
    static const char sql[] = "SELECT s.id FROM segments s JOIN videos v ON v.id = s.video_id"
                              " WHERE (?1 = 0 OR v.library_id = ?1)"
                              "   AND (?2 IS NULL OR substr(v.location, 1, length(?2)) = ?2)"
                              "   AND (?3 = 0 OR v.duration_ms >= ?3)"
                              "   AND (?4 = 0 OR v.duration_ms <= ?4)"
                              "   AND (?5 = 0 OR v.mtime_ms >= ?5)"
                              "   AND (?6 = 0 OR v.mtime_ms < ?6)"
                              " ORDER BY s.id";
    sqlite3_stmt *stmt = NULL;
    vx_status st = st__stmt_get(s, sql, &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, f->library_id);
    if (f->path_prefix && f->path_prefix[0])
        sqlite3_bind_text(stmt, 2, f->path_prefix, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, 2);
    sqlite3_bind_int64(stmt, 3, f->min_duration_ms);
    sqlite3_bind_int64(stmt, 4, f->max_duration_ms);
    sqlite3_bind_int64(stmt, 5, f->modified_after_ms);
    sqlite3_bind_int64(stmt, 6, f->modified_before_ms);
    int own = 0;
    if ((st = st__read_begin(s, &own, err))) {
        st__stmt_put(s, stmt);
        return st;
    }
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 256;
            int64_t *grown = realloc(ids, grown_cap * sizeof *grown);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory for %zu filtered segment ids", n);
                break;
            }
            ids = grown;
            cap = grown_cap;
        }
        ids[n++] = sqlite3_column_int64(stmt, 0);
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "filtering segments");
    st__stmt_put(s, stmt);
    st__read_end(s, own);
    if (st) {
        free(ids);
        return st;
    }
    *out = ids;
    *out_count = n;
    return VX_OK;
}
