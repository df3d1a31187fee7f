/* storage/st_libopts.c — a library's stored options (schema v6's library_options table):
 * plain key/value text, so the catalog never needs to know what the indexer's options mean;
 * the indexer owns their names and parsing (idx_library_options). */
#include "st_internal.h"

#include <stdlib.h>
#include <string.h>

vx_status st_library_option_set(st_store *s, int64_t library_id, const char *key, const char *value,
                                vx_err *err)
{
    if (!key || !*key) return vx_fail(err, VX_EINVAL, "a library option needs a name");
    int own;
    vx_status st = st__write_begin(s, &own, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    const char *sql = value ? "INSERT INTO library_options(library_id, key, value) VALUES (?, ?, ?)"
                              " ON CONFLICT(library_id, key) DO UPDATE SET value = excluded.value"
                            : "DELETE FROM library_options WHERE library_id = ? AND key = ?";
    if (!(st = st__stmt_get(s, sql, &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, library_id);
        sqlite3_bind_text(stmt, 2, key, -1, SQLITE_TRANSIENT);
        if (value) sqlite3_bind_text(stmt, 3, value, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) {
            /* The foreign key names a library that does not exist. */
            if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
                st = vx_fail(err, VX_ENOTFOUND, "no library with id %lld in %s",
                             (long long)library_id, s->catalog_path);
            else
                st = st__db_fail(s, err, "writing a library option");
        }
        st__stmt_put(s, stmt);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_library_options_get(st_store *s, int64_t library_id, st_library_option **out,
                                 size_t *out_count, vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s, "SELECT key, value FROM library_options WHERE library_id = ? ORDER BY key", &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, library_id);
    st_library_option *opts = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            st_library_option *grown = realloc(opts, ncap * sizeof *opts);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory reading library options");
                break;
            }
            opts = grown;
            cap = ncap;
        }
        const unsigned char *key = sqlite3_column_text(stmt, 0);
        const unsigned char *value = sqlite3_column_text(stmt, 1);
        opts[n].key = strdup(key ? (const char *)key : "");
        opts[n].value = strdup(value ? (const char *)value : "");
        n++;
        if (!opts[n - 1].key || !opts[n - 1].value) {
            st = vx_fail(err, VX_ENOMEM, "out of memory reading library options");
            break;
        }
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "reading library options");
    st__stmt_put(s, stmt);
    if (st) {
        st_library_options_free(opts, n);
        return st;
    }
    *out = opts;
    *out_count = n;
    return VX_OK;
}

void st_library_options_free(st_library_option *opts, size_t count)
{
    if (!opts) return;
    for (size_t i = 0; i < count; i++) {
        free(opts[i].key);
        free(opts[i].value);
    }
    free(opts);
}
