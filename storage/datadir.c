/* The data directory: its layout, the writer lock, and opening/closing the catalog.
 * One writer per directory: flock() on <data>/lock, which also holds the writer's pid so a
 * second writer can be told who holds it. flock() locks belong to the open file description,
 * so they vanish with the holder's process (crash included) and also exclude a second
 * writer inside the same process. */
#define _GNU_SOURCE
#include "st_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

st_options st_options_default(void)
{
    st_options o;
    memset(&o, 0, sizeof o);
    o.mode = ST_READ;
    return o;
}

const char *st_data_dir(const st_store *s)
{
    return s->dir;
}
const char *st_thumbs_dir(const st_store *s)
{
    return s->thumbs_dir;
}

int64_t st__file_bytes(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static int add_bytes(void *ctx, const char *path, const char *rel, int64_t bytes)
{
    (void)path, (void)rel;
    *(int64_t *)ctx += bytes;
    return 0;
}

int64_t st__tree_bytes(const char *dir)
{
    int64_t sum = 0;
    st__walk_files(dir, add_bytes, &sum);
    return sum;
}

/* Recursion with an explicit relative path, because nftw() has no context pointer. */
static int walk_rec(const char *root, const char *rel, st_file_fn fn, void *ctx, int depth)
{
    if (depth > 32) return 0; /* a symlink loop cannot happen (lstat), but stay bounded */
    char *dir = rel[0] ? vx_asprintf(NULL, "%s/%s", root, rel) : vx_strdup(root, NULL);
    if (!dir) return -1;
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return 0;
    }
    int stop = 0;
    struct dirent *e;
    while (!stop && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *child_rel =
            rel[0] ? vx_asprintf(NULL, "%s/%s", rel, e->d_name) : vx_strdup(e->d_name, NULL);
        char *child = child_rel ? vx_asprintf(NULL, "%s/%s", root, child_rel) : NULL;
        struct stat sb;
        if (child && lstat(child, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                stop = walk_rec(root, child_rel, fn, ctx, depth + 1);
            else
                stop = fn(ctx, child, child_rel, (int64_t)sb.st_size);
        }
        free(child);
        free(child_rel);
    }
    closedir(d);
    free(dir);
    return stop;
}

void st__walk_files(const char *root, st_file_fn fn, void *ctx)
{
    walk_rec(root, "", fn, ctx, 0);
}

/* Takes the writer lock, then writes our pid into the file for the next one to read. */
static vx_status take_lock(st_store *s, vx_err *err)
{
    int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return vx_fail(err, VX_EIO, "cannot open the lock file %s: %s", s->lock_path,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[32] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return vx_fail(err, VX_EBUSY,
                           "data directory %s is in use by another indexer (pid %s, lock %s)",
                           s->dir, holder[0] ? holder : "unknown", s->lock_path);
        return vx_fail(err, VX_EIO, "cannot lock %s: %s", s->lock_path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        vx_log(VX_LOG_WARN, "cannot write the pid into %s: %s", s->lock_path, strerror(errno));
    s->lock_fd = fd;
    return VX_OK;
}

/* A writer removes temp files that a crash left in index/ (a save that never renamed). */
static void remove_leftover_temps(st_store *s)
{
    DIR *d = opendir(s->index_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        char *path = vx_asprintf(NULL, "%s/%s", s->index_dir, e->d_name);
        if (path && unlink(path) == 0) vx_log(VX_LOG_INFO, "removed leftover %s", path);
        free(path);
    }
    closedir(d);
}

static vx_status set_paths(st_store *s, const char *data_dir, vx_err *err)
{
    size_t len = strlen(data_dir);
    while (len > 1 && data_dir[len - 1] == '/')
        len--;
    s->dir = vx_asprintf(err, "%.*s", (int)len, data_dir);
    if (!s->dir) return VX_ENOMEM;
    s->catalog_path = vx_asprintf(err, "%s/catalog.db", s->dir);
    s->index_dir = vx_asprintf(err, "%s/index", s->dir);
    s->thumbs_dir = vx_asprintf(err, "%s/thumbs", s->dir);
    s->lock_path = vx_asprintf(err, "%s/lock", s->dir);
    if (!s->catalog_path || !s->index_dir || !s->thumbs_dir || !s->lock_path) return VX_ENOMEM;
    return VX_OK;
}

static vx_status open_catalog(st_store *s, vx_err *err)
{
    int writer = s->opts.mode == ST_WRITE;
    if (!writer && access(s->catalog_path, F_OK) != 0)
        return vx_fail(err, VX_ENOTFOUND, "no vidx data in %s (%s is missing)", s->dir,
                       s->catalog_path);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(s->catalog_path, &s->db, flags, NULL);
    if (rc != SQLITE_OK && !writer) {
        /* A reader without write permission on the folder still reads a WAL catalog whose
         * -shm exists; fall back to a read-only connection. */
        sqlite3_close(s->db);
        s->db = NULL;
        rc = sqlite3_open_v2(s->catalog_path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             NULL);
    }
    if (rc != SQLITE_OK) return st__db_fail(s, err, "opening");
    sqlite3_extended_result_codes(s->db, 1);
    /* The indexer and the server may briefly contend (checkpoints, schema reads). */
    sqlite3_busy_timeout(s->db, 5000);
    vx_status st;
    /* The first real read: a file that is not a catalog fails here (SQLITE_NOTADB). */
    int version = 0;
    if ((st = st__schema_version(s->db, s->catalog_path, &version, err))) return st;
    if (writer) {
        /* WAL: readers never block on the writer. synchronous=FULL: a commit that returned
         * survives power loss too, not only a process crash; the indexer commits per video,
         * so the fsync is cheap next to the encoding. */
        if ((st = st__exec(s, "PRAGMA journal_mode = WAL", err))) return st;
        if ((st = st__exec(s, "PRAGMA synchronous = FULL", err))) return st;
    }
    if ((st = st__exec(s, "PRAGMA foreign_keys = ON", err))) return st;
    if ((st = st__prepare(s, "ROLLBACK", &s->rollback_stmt, err))) return st;
    if (writer) {
        if ((st = st__migrate(s->db, s->catalog_path, ST_SCHEMA_VERSION, err))) return st;
    } else {
        if (version > ST_SCHEMA_VERSION)
            return vx_fail(err, VX_EUNSUPPORTED,
                           "catalog %s has schema v%d, newer than this vidx (v%d): upgrade vidx",
                           s->catalog_path, version, ST_SCHEMA_VERSION);
        if (version < ST_SCHEMA_VERSION)
            return vx_fail(err, VX_ESTALE,
                           "catalog %s has schema v%d, older than this vidx (v%d): open it once"
                           " as writer (vidx index) to upgrade it",
                           s->catalog_path, version, ST_SCHEMA_VERSION);
        if ((st = st__exec(s, "PRAGMA query_only = ON", err))) return st;
    }
    return VX_OK;
}

vx_status st_open(const char *data_dir, const st_options *opts, st_store **out, vx_err *err)
{
    *out = NULL;
    if (!data_dir || !*data_dir) return vx_fail(err, VX_EINVAL, "no data directory given");
    st_store *s = calloc(1, sizeof *s);
    if (!s) return vx_fail(err, VX_ENOMEM, "out of memory opening %s", data_dir);
    s->lock_fd = -1;
    s->opts = opts ? *opts : st_options_default();
    vx_status st = VX_OK;
    if (s->opts.mode != ST_READ && s->opts.mode != ST_WRITE) {
        st = vx_fail(err, VX_EINVAL, "invalid open mode %d for %s", (int)s->opts.mode, data_dir);
        goto fail;
    }
    if (s->opts.flat_max_vectors <= 0) s->opts.flat_max_vectors = ST_FLAT_MAX_DEFAULT;
    if (s->opts.index_factory) {
        if (!(s->factory = vx_strdup(s->opts.index_factory, err))) {
            st = VX_ENOMEM;
            goto fail;
        }
        if (strlen(s->factory) >= sizeof(((st_vindex *)0)->factory)) {
            st = vx_fail(err, VX_EINVAL, "index factory string \"%s\" is too long", s->factory);
            goto fail;
        }
        s->opts.index_factory = s->factory;
    }
    if ((st = set_paths(s, data_dir, err))) goto fail;
    /* A writer's index holds its own changes: it never shares. */
    if (s->opts.mode == ST_WRITE) s->opts.index_cache = NULL;
    if (s->opts.mode == ST_WRITE) {
        if ((st = vx_mkdirs(s->dir, err))) goto fail;
        if ((st = take_lock(s, err))) goto fail;
        if ((st = vx_mkdirs(s->index_dir, err))) goto fail;
        if ((st = vx_mkdirs(s->thumbs_dir, err))) goto fail;
        remove_leftover_temps(s);
    }
    if ((st = open_catalog(s, err))) goto fail;
    if (s->opts.index_cache && (st = st__cache_bind(s->opts.index_cache, s->dir, err))) goto fail;
    if ((st = st__spaces_refresh(s, err))) goto fail;
    *out = s;
    return VX_OK;
fail:
    st_close(s);
    return st;
}

void st_close(st_store *s)
{
    if (!s) return;
    if (s->db) {
        st_rollback(s);
        sqlite3_finalize(s->rollback_stmt);
        sqlite3_finalize(s->state_stmt);
        st__stmt_cache_free(s);
        /* sqlite3_close_v2 defers the close until statements are finalized; every statement
         * is finalized by now (the cached ones just above), so this closes now. */
        if (sqlite3_close_v2(s->db) != SQLITE_OK)
            vx_log(VX_LOG_WARN, "catalog %s did not close cleanly", s->catalog_path);
    }
    for (size_t i = 0; i < s->space_count; i++)
        st__vindex_free(s->spaces[i]);
    free(s->spaces);
    free(s->query_buf);
    free(s->ids_json);
    free(s->dist_buf);
    free(s->label_buf);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    free(s->factory);
    free(s->dir);
    free(s->catalog_path);
    free(s->index_dir);
    free(s->thumbs_dir);
    free(s->lock_path);
    free(s);
}
