/* Catalog schema and its versioned migrations. The version lives in PRAGMA user_version; each
 * step runs in its own transaction that also writes the new version, so a crash leaves the
 * catalog at the old version or the new one, never between. Steps are append-only: a released
 * step is never edited, a change is a new step. */
#include "st_internal.h"

#include <string.h>

/* v1: the core rows. embeddings keep a rowid so foreign_key_check can name a bad row. */
static const char schema_v1[] =
    "CREATE TABLE state("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  generation INTEGER NOT NULL,"
    "  log_floor INTEGER NOT NULL);"
    "INSERT INTO state(id, generation, log_floor) VALUES (1, 0, 0);"
    "CREATE TABLE libraries("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  root TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE videos("
    "  id INTEGER PRIMARY KEY,"
    "  library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,"
    "  location TEXT NOT NULL,"
    "  size_bytes INTEGER NOT NULL DEFAULT 0,"
    "  mtime_ms INTEGER NOT NULL DEFAULT 0,"
    "  content_hash TEXT,"
    "  duration_ms INTEGER NOT NULL DEFAULT 0,"
    "  streams_json TEXT,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  updated_ms INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (library_id, location));"
    "CREATE INDEX videos_status ON videos(status);"
    "CREATE TABLE segments("
    "  id INTEGER PRIMARY KEY,"
    "  video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,"
    "  level INTEGER NOT NULL,"
    "  start_ms INTEGER NOT NULL,"
    "  end_ms INTEGER NOT NULL,"
    "  thumb TEXT,"
    "  CHECK (end_ms >= start_ms));"
    "CREATE INDEX segments_video ON segments(video_id, level, start_ms);"
    "CREATE TABLE spaces("
    "  id INTEGER PRIMARY KEY,"
    "  model TEXT NOT NULL,"
    "  modality TEXT NOT NULL,"
    "  dim INTEGER NOT NULL CHECK (dim > 0),"
    "  UNIQUE (model, modality));"
    "CREATE TABLE embeddings("
    "  id INTEGER PRIMARY KEY,"
    "  space_id INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,"
    "  segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,"
    "  vector BLOB NOT NULL,"
    "  UNIQUE (space_id, segment_id));"
    "CREATE INDEX embeddings_segment ON embeddings(segment_id);";

/* v2: the change log the indexes replay. Triggers (not the C code) write it so that every
 * path that touches embeddings — cascades from a deleted video included — is logged. A row
 * carries the generation its transaction will commit as (current + 1, see st_commit).
 * Indexes saved before this step cannot be replayed: the floor moves past them. */
static const char schema_v2[] =
    "CREATE TABLE vec_log("
    "  seq INTEGER PRIMARY KEY,"
    "  generation INTEGER NOT NULL,"
    "  space_id INTEGER NOT NULL,"
    "  segment_id INTEGER NOT NULL,"
    "  op INTEGER NOT NULL);" /* 1 = add or replace, 0 = remove */
    "CREATE INDEX vec_log_generation ON vec_log(generation);"
    "CREATE TRIGGER embeddings_log_insert AFTER INSERT ON embeddings BEGIN"
    "  INSERT INTO vec_log(generation, space_id, segment_id, op)"
    "    SELECT generation + 1, NEW.space_id, NEW.segment_id, 1 FROM state;"
    "END;"
    "CREATE TRIGGER embeddings_log_update AFTER UPDATE ON embeddings BEGIN"
    "  INSERT INTO vec_log(generation, space_id, segment_id, op)"
    "    SELECT generation + 1, OLD.space_id, OLD.segment_id, 0 FROM state;"
    "  INSERT INTO vec_log(generation, space_id, segment_id, op)"
    "    SELECT generation + 1, NEW.space_id, NEW.segment_id, 1 FROM state;"
    "END;"
    "CREATE TRIGGER embeddings_log_delete AFTER DELETE ON embeddings BEGIN"
    "  INSERT INTO vec_log(generation, space_id, segment_id, op)"
    "    SELECT generation + 1, OLD.space_id, OLD.segment_id, 0 FROM state;"
    "END;"
    "UPDATE state SET generation = generation + 1, log_floor = generation + 1;";

/* v3: texts with an external-content FTS5 index kept in step by triggers, and index runs. */
static const char schema_v3[] =
    "CREATE TABLE texts("
    "  id INTEGER PRIMARY KEY,"
    "  segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,"
    "  source TEXT NOT NULL,"
    "  start_ms INTEGER NOT NULL,"
    "  end_ms INTEGER NOT NULL,"
    "  body TEXT NOT NULL);"
    "CREATE INDEX texts_segment ON texts(segment_id);"
    "CREATE VIRTUAL TABLE texts_fts USING fts5(body, content='texts', content_rowid='id',"
    "  tokenize='unicode61 remove_diacritics 2');"
    "CREATE TRIGGER texts_ai AFTER INSERT ON texts BEGIN"
    "  INSERT INTO texts_fts(rowid, body) VALUES (NEW.id, NEW.body);"
    "END;"
    "CREATE TRIGGER texts_ad AFTER DELETE ON texts BEGIN"
    "  INSERT INTO texts_fts(texts_fts, rowid, body) VALUES ('delete', OLD.id, OLD.body);"
    "END;"
    "CREATE TRIGGER texts_au AFTER UPDATE ON texts BEGIN"
    "  INSERT INTO texts_fts(texts_fts, rowid, body) VALUES ('delete', OLD.id, OLD.body);"
    "  INSERT INTO texts_fts(rowid, body) VALUES (NEW.id, NEW.body);"
    "END;"
    "CREATE TABLE index_runs("
    "  id INTEGER PRIMARY KEY,"
    "  library_id INTEGER REFERENCES libraries(id) ON DELETE SET NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  status TEXT NOT NULL DEFAULT 'running',"
    "  videos_done INTEGER NOT NULL DEFAULT 0,"
    "  videos_failed INTEGER NOT NULL DEFAULT 0,"
    "  message TEXT);";

/* v4: the times of a text's words (speech: when each recognised word was said), so a search
 * can say when inside a segment its match was spoken. NULL for texts without word times. */
static const char schema_v4[] = "ALTER TABLE texts ADD COLUMN word_times TEXT;";

/* v5: the HTTP validator (ETag) of a video fetched from an HTTP(S) archive, for conditional
 * requests and change detection; NULL for local files (Last-Modified is mtime_ms). */
static const char schema_v5[] = "ALTER TABLE videos ADD COLUMN etag TEXT;";

/* v6: a library's options (window, overlap, text modalities, model, …) as key/value text, so
 * `vidx index --library NAME` re-crawls with what the library was created with. */
static const char schema_v6[] =
    "CREATE TABLE library_options("
    "  library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (library_id, key)) WITHOUT ROWID;";

/* steps[i] takes the schema from version i to i + 1. */
static const char *const steps[ST_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                     schema_v4, schema_v5, schema_v6};

vx_status st__schema_version(sqlite3 *db, const char *path, int *out, vx_err *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
        return st__db_fail_raw(db, path, err, "reading the schema version");
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        vx_status st = st__db_fail_raw(db, path, err, "reading the schema version");
        sqlite3_finalize(stmt);
        return st;
    }
    *out = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return VX_OK;
}

static vx_status exec_raw(sqlite3 *db, const char *path, const char *sql, const char *doing,
                          vx_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return VX_OK;
    vx_status st = st__db_fail_raw(db, path, err, doing);
    sqlite3_free(msg);
    return st;
}

vx_status st__migrate(sqlite3 *db, const char *path, int target, vx_err *err)
{
    if (target < 0 || target > ST_SCHEMA_VERSION)
        return vx_fail(err, VX_EINVAL, "no catalog schema v%d (this vidx knows v1..v%d)", target,
                       ST_SCHEMA_VERSION);
    int version = 0;
    vx_status st = st__schema_version(db, path, &version, err);
    if (st) return st;
    if (version > ST_SCHEMA_VERSION)
        return vx_fail(err, VX_EUNSUPPORTED,
                       "catalog %s has schema v%d, newer than this vidx (v%d): upgrade vidx", path,
                       version, ST_SCHEMA_VERSION);
    int created_new = version == 0;
    while (version < target) {
        char doing[64];
        snprintf(doing, sizeof doing, "migrating the schema to v%d", version + 1);
        /* IMMEDIATE: take the write lock before reading, so the version cannot move under us. */
        if ((st = exec_raw(db, path, "BEGIN IMMEDIATE", doing, err))) return st;
        int now = 0;
        if ((st = st__schema_version(db, path, &now, err))) goto fail;
        if (now != version) { /* someone else migrated meanwhile: start over from there */
            exec_raw(db, path, "ROLLBACK", doing, NULL);
            version = now;
            continue;
        }
        if ((st = exec_raw(db, path, steps[version], doing, err))) goto fail;
        char set_version[48];
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", version + 1);
        if ((st = exec_raw(db, path, set_version, doing, err))) goto fail;
        if ((st = exec_raw(db, path, "COMMIT", doing, err))) goto fail;
        if (!created_new)
            vx_log(VX_LOG_INFO, "catalog %s: schema migrated to v%d", path, version + 1);
        version++;
    }
    if (created_new && target > 0)
        vx_log(VX_LOG_INFO, "catalog %s created (schema v%d)", path, target);
    return VX_OK;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
