/* Vector indexes: one FAISS index per (model, modality) "space", derived from the embedding
 * BLOBs and never served stale.
 *
 * Invariants:
 *  1. vi->index, when set, holds exactly the catalog's vectors of the space as of
 *     vi->generation (ids = segment ids, vectors L2-normalised).
 *  2. An index file holds, in one file (so one rename publishes both), a header naming the
 *     generation it reflects, its size and a hash of the FAISS bytes that follow.
 *  3. vec_log holds every embedding change with generation > state.log_floor, so an index at
 *     generation g >= log_floor reaches generation G by re-reading the segments touched in
 *     (g, G]. Below the floor only a rebuild from the BLOBs (or a newer file) helps.
 *  4. Every sync runs inside one read transaction: the generation, the log and the BLOBs it
 *     reads are one snapshot, whatever the writer commits meanwhile.
 *
 * Everything here goes through the FAISS C API except the filtered search
 * (faiss_filter.cpp, DECISIONS.md §5). */
#define _GNU_SOURCE
#include "st_internal.h"

#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rows read and added to FAISS per batch while rebuilding or replaying. */
#define BATCH_ROWS 4096

vx_status st__faiss_fail(vx_err *err, const char *fmt, ...)
{
    char what[VX_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *why = faiss_get_last_error();
    return vx_fail(err, VX_EINDEX, "%s: %s", what, why && *why ? why : "FAISS error");
}

/* ---- payload hash ------------------------------------------------------------------------- */

/* A streaming 64-bit hash in the manner of xxHash64 (4 lanes of multiply-rotate over 32-byte
 * blocks): several GB/s, so checking a large index file costs little next to reading it.
 * It guards against truncation and torn or flipped bytes, not against an attacker. */
#define H_P1 0x9E3779B185EBCA87ULL
#define H_P2 0xC2B2AE3D27D4EB4FULL
#define H_P3 0x165667B19E3779F9ULL

typedef struct vhash {
    uint64_t lane[4];
    unsigned char pending[32];
    size_t pending_len;
    uint64_t total;
} vhash;

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}
static uint64_t hash_round(uint64_t acc, uint64_t in)
{
    acc += in * H_P2;
    return rotl64(acc, 31) * H_P1;
}

static void vhash_init(vhash *h)
{
    memset(h, 0, sizeof *h);
    h->lane[0] = H_P1 + H_P2;
    h->lane[1] = H_P2;
    h->lane[2] = 0;
    h->lane[3] = (uint64_t)0 - H_P1;
}

static void vhash_block(vhash *h, const unsigned char *p)
{
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        h->lane[i] = hash_round(h->lane[i], w);
    }
}

static void vhash_update(vhash *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    h->total += len;
    if (h->pending_len) {
        size_t take = 32 - h->pending_len < len ? 32 - h->pending_len : len;
        memcpy(h->pending + h->pending_len, p, take);
        h->pending_len += take;
        p += take;
        len -= take;
        if (h->pending_len < 32) return;
        vhash_block(h, h->pending);
        h->pending_len = 0;
    }
    while (len >= 32) {
        vhash_block(h, p);
        p += 32;
        len -= 32;
    }
    memcpy(h->pending, p, len);
    h->pending_len = len;
}

static uint64_t vhash_final(const vhash *h)
{
    uint64_t x = rotl64(h->lane[0], 1) + rotl64(h->lane[1], 7) + rotl64(h->lane[2], 12) +
                 rotl64(h->lane[3], 18);
    x ^= h->total * H_P1;
    for (size_t i = 0; i < h->pending_len; i++)
        x = rotl64(x ^ (h->pending[i] * H_P3), 11) * H_P1;
    x ^= x >> 33;
    x *= H_P2;
    x ^= x >> 29;
    x *= H_P3;
    x ^= x >> 32;
    return x;
}

static uint64_t hash_bytes(const void *data, size_t len)
{
    vhash h;
    vhash_init(&h);
    vhash_update(&h, data, len);
    return vhash_final(&h);
}

/* ---- file format -------------------------------------------------------------------------- */

/* Native byte order (the file is a cache: a machine of the other endianness rebuilds it). */
#define VFILE_MAGIC "VXINDEX\0"
#define VFILE_VERSION 1u

typedef struct vfile_header {
    char magic[8];
    uint32_t version;
    uint32_t dim;
    int64_t generation;
    int64_t ntotal;
    uint64_t payload_bytes;
    uint64_t payload_hash;
    char factory[64];
    char model[104];
    char modality[32];
    uint64_t header_hash; /* of the 248 bytes above */
} vfile_header;
_Static_assert(sizeof(vfile_header) == 256, "index file header is 256 bytes");

char *st__vindex_path(const st_store *s, const char *model, const char *modality, vx_err *err)
{
    /* model and modality are restricted to file-name-safe characters (check_names). */
    return vx_asprintf(err, "%s/%s@%s.vxi", s->index_dir, model, modality);
}

/* Checks header fields and the file size; fills reason on failure. */
static int header_ok(const vfile_header *h, int64_t file_bytes, char *reason, size_t reason_size)
{
    if (memcmp(h->magic, VFILE_MAGIC, 8) != 0) {
        snprintf(reason, reason_size, "not a vidx index file (bad magic)");
        return 0;
    }
    if (h->version != VFILE_VERSION) {
        snprintf(reason, reason_size, "unknown index file version %u", h->version);
        return 0;
    }
    if (hash_bytes(h, offsetof(vfile_header, header_hash)) != h->header_hash) {
        snprintf(reason, reason_size, "damaged header (checksum mismatch)");
        return 0;
    }
    if ((uint64_t)file_bytes != sizeof *h + h->payload_bytes) {
        snprintf(reason, reason_size, "truncated or extended: %lld bytes, header says %llu",
                 (long long)file_bytes, (unsigned long long)(sizeof *h + h->payload_bytes));
        return 0;
    }
    return 1;
}

/* Hashes the payload of an open file (positioned anywhere); 0 on read error. */
static int payload_hash_ok(FILE *f, const vfile_header *h, char *reason, size_t reason_size)
{
    if (fseeko(f, (off_t)sizeof *h, SEEK_SET) != 0) {
        snprintf(reason, reason_size, "cannot seek: %s", strerror(errno));
        return 0;
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        snprintf(reason, reason_size, "out of memory");
        return 0;
    }
    vhash hs;
    vhash_init(&hs);
    uint64_t left = h->payload_bytes;
    while (left) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        size_t got = fread(buf, 1, want, f);
        if (got == 0) break;
        vhash_update(&hs, buf, got);
        left -= got;
    }
    free(buf);
    if (left) {
        snprintf(reason, reason_size, "short read of the index data");
        return 0;
    }
    if (vhash_final(&hs) != h->payload_hash) {
        snprintf(reason, reason_size, "index data damaged (checksum mismatch)");
        return 0;
    }
    return 1;
}

void st__vfile_probe(const char *path, int64_t catalog_generation, int deep, st_vfile_info *out)
{
    memset(out, 0, sizeof *out);
    out->generation = -1;
    out->ntotal = -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        out->state = errno == ENOENT ? "missing" : "corrupt";
        if (errno != ENOENT) snprintf(out->reason, sizeof out->reason, "%s", strerror(errno));
        return;
    }
    struct stat sb;
    vfile_header h;
    out->state = "corrupt";
    if (fstat(fileno(f), &sb) != 0) {
        snprintf(out->reason, sizeof out->reason, "cannot stat: %s", strerror(errno));
    } else if ((out->file_bytes = sb.st_size) < (int64_t)sizeof h ||
               fread(&h, sizeof h, 1, f) != 1) {
        snprintf(out->reason, sizeof out->reason, "shorter than its header (%lld bytes)",
                 (long long)sb.st_size);
    } else if (header_ok(&h, sb.st_size, out->reason, sizeof out->reason) &&
               (!deep || payload_hash_ok(f, &h, out->reason, sizeof out->reason))) {
        out->generation = h.generation;
        out->ntotal = h.ntotal;
        out->dim = (int)h.dim;
        memcpy(out->factory, h.factory, sizeof out->factory);
        memcpy(out->model, h.model, sizeof out->model);
        memcpy(out->modality, h.modality, sizeof out->modality);
        out->factory[sizeof out->factory - 1] = '\0';
        out->model[sizeof out->model - 1] = '\0';
        out->modality[sizeof out->modality - 1] = '\0';
        out->state = h.generation == catalog_generation ? "fresh" : "stale";
    }
    fclose(f);
}

vx_status st__vfile_load(const char *path, int dim, FaissIndex **out, int64_t *out_generation,
                         char factory[64], vx_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vx_fail(err, errno == ENOENT ? VX_ENOTFOUND : VX_EIO, "cannot open index %s: %s",
                       path, strerror(errno));
    vx_status st = VX_OK;
    char reason[160] = "";
    vfile_header h;
    struct stat sb;
    FaissIndex *index = NULL;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < (off_t)sizeof h ||
        fread(&h, sizeof h, 1, f) != 1) {
        st = vx_fail(err, VX_ECORRUPT, "index %s: shorter than its header", path);
        goto done;
    }
    /* Hash first: FAISS's reader trusts its input, so only intact bytes may reach it. */
    if (!header_ok(&h, sb.st_size, reason, sizeof reason) ||
        !payload_hash_ok(f, &h, reason, sizeof reason)) {
        st = vx_fail(err, VX_ECORRUPT, "index %s: %s", path, reason);
        goto done;
    }
    if ((int)h.dim != dim) {
        st = vx_fail(err, VX_ECORRUPT, "index %s: dim %u, the catalog says %d", path, h.dim, dim);
        goto done;
    }
    if (fseeko(f, (off_t)sizeof h, SEEK_SET) != 0 || faiss_read_index(f, 0, &index) != 0) {
        st = st__faiss_fail(err, "index %s: cannot read", path);
        goto done;
    }
    if (faiss_Index_d(index) != dim || faiss_Index_ntotal(index) != h.ntotal ||
        !faiss_IndexIVF_cast(index) || faiss_Index_metric_type(index) != METRIC_INNER_PRODUCT) {
        st = vx_fail(err, VX_ECORRUPT, "index %s: contents disagree with its header", path);
        goto done;
    }
    *out = index;
    index = NULL;
    *out_generation = h.generation;
    memcpy(factory, h.factory, 64);
    factory[63] = '\0';
done:
    if (index) faiss_Index_free(index);
    fclose(f);
    return st;
}

/* fopencookie sink for faiss_write_index: writes to fd and hashes what passes. */
typedef struct write_sink {
    int fd;
    vhash hash;
    uint64_t bytes;
    int error; /* errno of the first failed write */
} write_sink;

static ssize_t sink_write(void *cookie, const char *buf, size_t size)
{
    write_sink *w = cookie;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(w->fd, buf + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            w->error = n < 0 ? errno : EIO;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)n;
    }
    vhash_update(&w->hash, buf, size);
    w->bytes += size;
    return (ssize_t)size;
}

vx_status st__vindex_save(st_store *s, st_vindex *vi, vx_err *err)
{
    char *path = st__vindex_path(s, vi->model, vi->modality, err);
    if (!path) return VX_ENOMEM;
    char *tmp = vx_asprintf(err, "%s.tmp.%ld", path, (long)getpid());
    if (!tmp) {
        free(path);
        return VX_ENOMEM;
    }
    vx_status st = VX_OK;
    FILE *f = NULL;
    char *iobuf = NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = vx_fail(err, VX_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    write_sink sink = {.fd = fd};
    vhash_init(&sink.hash);
    /* The header goes in last, once the payload's size and hash are known. */
    if (lseek(fd, (off_t)sizeof(vfile_header), SEEK_SET) < 0) {
        st = vx_fail(err, VX_EIO, "cannot seek in %s: %s", tmp, strerror(errno));
        goto done;
    }
    cookie_io_functions_t io = {.write = sink_write};
    f = fopencookie(&sink, "w", io);
    if (!f) {
        st = vx_fail(err, VX_ENOMEM, "cannot create a stream for %s", tmp);
        goto done;
    }
    if ((iobuf = malloc(1 << 20))) setvbuf(f, iobuf, _IOFBF, 1 << 20);
    int rc = faiss_write_index(vi->index, f);
    int close_rc = fclose(f);
    f = NULL;
    if (rc != 0 || close_rc != 0 || sink.error) {
        if (sink.error)
            st = vx_fail(err, VX_EIO, "cannot write %s: %s", tmp, strerror(sink.error));
        else
            st = st__faiss_fail(err, "cannot write index %s", tmp);
        goto done;
    }
    vfile_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, VFILE_MAGIC, 8);
    h.version = VFILE_VERSION;
    h.dim = (uint32_t)vi->dim;
    h.generation = vi->generation;
    h.ntotal = faiss_Index_ntotal(vi->index);
    h.payload_bytes = sink.bytes;
    h.payload_hash = vhash_final(&sink.hash);
    snprintf(h.factory, sizeof h.factory, "%s", vi->factory);
    snprintf(h.model, sizeof h.model, "%s", vi->model);
    snprintf(h.modality, sizeof h.modality, "%s", vi->modality);
    h.header_hash = hash_bytes(&h, offsetof(vfile_header, header_hash));
    if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        st = vx_fail(err, VX_EIO, "cannot write the header of %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (fsync(fd) != 0) {
        st = vx_fail(err, VX_EIO, "cannot sync %s: %s", tmp, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = vx_fail(err, VX_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    if ((st = vx_fsync_dir(s->index_dir, err))) goto done;
    vi->file_generation = vi->generation;
    vi->dirty = 0;
    vx_log(VX_LOG_DEBUG, "saved %s (%lld vectors, generation %lld)", path, (long long)h.ntotal,
           (long long)h.generation);
done:
    if (f) fclose(f);
    free(iobuf);
    if (fd >= 0) close(fd);
    if (st) unlink(tmp);
    free(tmp);
    free(path);
    return st;
}

/* ---- spaces ------------------------------------------------------------------------------- */

void st__vindex_free(st_vindex *vi)
{
    if (!vi) return;
    if (vi->index) faiss_Index_free(vi->index);
    free(vi->model);
    free(vi->modality);
    free(vi);
}

/* The index was replaced (loaded, rebuilt, dropped): past changes no longer apply to it. */
static void changes_restart(st_vindex *vi)
{
    if (vi->changes) {
        vi->changes->n = 0;
        vi->changes->floor = vi->index ? vi->generation : -1;
    }
}

/* Records that a replay to `generation` touched ids[n]. Out of memory or over the bound, the
 * oldest entries go and the floor rises (a handle that old then sees a newer generation). */
static void changes_add(st_vindex *vi, int64_t generation, const int64_t *ids, size_t n)
{
    st_changes *c = vi->changes;
    if (!c || n == 0) return;
    if (n > ST_CHANGES_MAX) {
        c->n = 0;
        c->floor = generation;
        return;
    }
    if (c->n + n > ST_CHANGES_MAX) {
        /* Drop whole generations from the front until the new ids fit. */
        size_t drop = c->n + n - ST_CHANGES_MAX;
        while (drop < c->n && c->to_generation[drop] == c->to_generation[drop - 1])
            drop++;
        c->floor = c->to_generation[drop - 1];
        memmove(c->to_generation, c->to_generation + drop, (c->n - drop) * sizeof(int64_t));
        memmove(c->ids, c->ids + drop, (c->n - drop) * sizeof(int64_t));
        c->n -= drop;
    }
    if (c->n + n > c->cap) {
        size_t ncap = c->cap ? c->cap : 256;
        while (ncap < c->n + n)
            ncap *= 2;
        int64_t *g = realloc(c->to_generation, ncap * sizeof *g);
        if (g) c->to_generation = g;
        int64_t *i = realloc(c->ids, ncap * sizeof *i);
        if (i) c->ids = i;
        if (!g || !i) {
            c->n = 0;
            c->floor = generation;
            return;
        }
        c->cap = ncap;
    }
    for (size_t k = 0; k < n; k++) {
        c->to_generation[c->n] = generation;
        c->ids[c->n++] = ids[k];
    }
}

void st__vindex_drop(st_vindex *vi)
{
    if (vi->index) faiss_Index_free(vi->index);
    vi->index = NULL;
    vi->generation = -1;
    vi->file_generation = -1;
    vi->dirty = 0;
    changes_restart(vi);
    vi->factory[0] = '\0';
}

/* Names become file names: keep them to a safe alphabet. */
static vx_status check_names(const char *model, const char *modality, vx_err *err)
{
    size_t ml = model ? strlen(model) : 0, dl = modality ? strlen(modality) : 0;
    if (ml == 0 || ml > 100 ||
        strspn(model, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._-") != ml ||
        model[0] == '.')
        return vx_fail(err, VX_EINVAL, "invalid model id \"%s\" (1-100 of A-Z a-z 0-9 . _ -)",
                       model ? model : "");
    if (dl == 0 || dl > 31 || strspn(modality, "abcdefghijklmnopqrstuvwxyz0123456789_") != dl)
        return vx_fail(err, VX_EINVAL, "invalid modality \"%s\" (1-31 of a-z 0-9 _)",
                       modality ? modality : "");
    return VX_OK;
}

/* Finds or adds the in-memory entry for a catalog space row. */
static vx_status space_entry(st_store *s, int64_t id, const char *model, const char *modality,
                             int dim, st_vindex **out, vx_err *err)
{
    for (size_t i = 0; i < s->space_count; i++) {
        st_vindex *vi = s->spaces[i];
        if (strcmp(vi->model, model) || strcmp(vi->modality, modality)) continue;
        if (vi->space_id != id || vi->dim != dim) { /* re-created since (rolled back) */
            st__vindex_drop(vi);
            vi->space_id = id;
            vi->dim = dim;
        }
        *out = vi;
        return VX_OK;
    }
    st_vindex *vi = calloc(1, sizeof *vi);
    st_vindex **grown = realloc(s->spaces, (s->space_count + 1) * sizeof *grown);
    if (!vi || !grown || !(vi->model = strdup(model)) || !(vi->modality = strdup(modality))) {
        if (grown) s->spaces = grown;
        st__vindex_free(vi);
        return vx_fail(err, VX_ENOMEM, "out of memory for index %s/%s", model, modality);
    }
    s->spaces = grown;
    vi->space_id = id;
    vi->dim = dim;
    vi->generation = -1;
    vi->file_generation = -1;
    s->spaces[s->space_count++] = vi;
    *out = vi;
    return VX_OK;
}

vx_status st__spaces_refresh(st_store *s, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(
        s, "SELECT id, model, modality, dim FROM spaces ORDER BY model, modality", &stmt, err);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        st_vindex *vi;
        if ((st = space_entry(s, sqlite3_column_int64(stmt, 0),
                              (const char *)sqlite3_column_text(stmt, 1),
                              (const char *)sqlite3_column_text(stmt, 2),
                              sqlite3_column_int(stmt, 3), &vi, err)))
            break;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "listing vector spaces");
    st__stmt_put(s, stmt);
    return st;
}

vx_status st__space_find(st_store *s, const char *model, const char *modality, int dim, int create,
                         st_vindex **out, vx_err *err)
{
    vx_status st = check_names(model, modality, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if ((st = st__stmt_get(s, "SELECT id, dim FROM spaces WHERE model = ? AND modality = ?", &stmt,
                           err)))
        return st;
    sqlite3_bind_text(stmt, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, modality, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int64_t id = 0;
    int found_dim = 0;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(stmt, 0);
        found_dim = sqlite3_column_int(stmt, 1);
    } else if (rc != SQLITE_DONE) {
        st = st__db_fail(s, err, "finding a vector space");
    }
    st__stmt_put(s, stmt);
    if (st) return st;
    if (rc == SQLITE_DONE) {
        if (!create)
            return vx_fail(err, VX_ENOTFOUND, "no %s vectors of model %s in %s", modality, model,
                           s->catalog_path);
        if ((st = st__stmt_get(s, "INSERT INTO spaces(model, modality, dim) VALUES (?, ?, ?)",
                               &stmt, err)))
            return st;
        sqlite3_bind_text(stmt, 1, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, modality, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 3, dim);
        if (sqlite3_step(stmt) != SQLITE_DONE) st = st__db_fail(s, err, "adding a vector space");
        st__stmt_put(s, stmt);
        if (st) return st;
        id = sqlite3_last_insert_rowid(s->db);
        found_dim = dim;
    } else if (create && found_dim != dim) {
        return vx_fail(err, VX_EINVAL, "index %s/%s has dim %d; got a vector of dim %d", model,
                       modality, found_dim, dim);
    }
    return space_entry(s, id, model, modality, found_dim, out, err);
}

/* ---- building ----------------------------------------------------------------------------- */

static int ivf_nlist(FaissIndex *index)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(index);
    return ivf ? (int)faiss_IndexIVF_nlist(ivf) : 0;
}

static void apply_nprobe(st_store *s, FaissIndex *index)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(index);
    if (!ivf) return;
    size_t nlist = faiss_IndexIVF_nlist(ivf);
    size_t nprobe = s->opts.nprobe > 0 ? (size_t)s->opts.nprobe : nlist / 16;
    if (nprobe < 16) nprobe = 16;
    if (nprobe > nlist) nprobe = nlist;
    faiss_IndexIVF_set_nprobe(ivf, nprobe);
}

/* The factory string for n vectors: exact IVF1,Flat up to the threshold; above it IVF with
 * about sqrt(n) lists (enough lists to cut the scan, few enough to train on 2 cores in
 * seconds at 1M vectors). */
static void choose_factory(const st_store *s, int64_t n, char out[64])
{
    if (s->opts.index_factory) {
        snprintf(out, 64, "%s", s->opts.index_factory);
        return;
    }
    if (n <= s->opts.flat_max_vectors) {
        snprintf(out, 64, "IVF1,Flat");
        return;
    }
    int64_t nlist = (int64_t)sqrt((double)n);
    if (nlist > 65536) nlist = 65536;
    snprintf(out, 64, "IVF%lld,Flat", (long long)nlist);
}

/* Decodes a BLOB into dst[dim], L2-normalised; 0 when its size is wrong. */
static int blob_to_unit(const void *blob, int bytes, int dim, float *dst)
{
    if (!blob || bytes != dim * (int)sizeof(float)) return 0;
    memcpy(dst, blob, (size_t)bytes);
    double norm2 = 0;
    for (int i = 0; i < dim; i++)
        norm2 += (double)dst[i] * dst[i];
    if (!(norm2 > 0) || !isfinite(norm2)) return 0;
    float inv = (float)(1.0 / sqrt(norm2));
    for (int i = 0; i < dim; i++)
        dst[i] *= inv;
    return 1;
}

/* Streams rows (segment_id, vector) of a prepared statement into index in batches. */
static vx_status add_rows(st_store *s, st_vindex *vi, FaissIndex *index, sqlite3_stmt *stmt,
                          vx_err *err)
{
    float *vecs = vx_calloc_array((size_t)BATCH_ROWS * (size_t)vi->dim, sizeof *vecs, err);
    int64_t *ids = vx_calloc_array(BATCH_ROWS, sizeof *ids, err);
    if (!vecs || !ids) {
        free(vecs);
        free(ids);
        return VX_ENOMEM;
    }
    vx_status st = VX_OK;
    size_t n = 0;
    int rc;
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(stmt, 0);
            if (!blob_to_unit(sqlite3_column_blob(stmt, 1), sqlite3_column_bytes(stmt, 1), vi->dim,
                              vecs + n * (size_t)vi->dim)) {
                vx_log(VX_LOG_WARN,
                       "catalog %s: %s/%s vector of segment %lld is malformed;"
                       " left out of the index (vidx verify --repair removes it)",
                       s->catalog_path, vi->model, vi->modality, (long long)id);
                continue;
            }
            ids[n++] = id;
        }
        if (n == BATCH_ROWS || (rc != SQLITE_ROW && n > 0)) {
            if (faiss_Index_add_with_ids(index, (int64_t)n, vecs, ids) != 0) {
                st = st__faiss_fail(err, "index %s/%s: adding vectors", vi->model, vi->modality);
                break;
            }
            n = 0;
        }
        if (rc != SQLITE_ROW) break;
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "reading vectors");
    free(vecs);
    free(ids);
    return st;
}

/* Trains a new IVF index. One list: a fixed unit vector as the centroid, so an empty space
 * trains too and the result does not depend on the data (one list makes any centroid exact).
 * More lists: an evenly spread sample of the catalog's vectors. */
static vx_status train_index(st_store *s, st_vindex *vi, FaissIndex *index, int64_t n, vx_err *err)
{
    int nlist = ivf_nlist(index);
    if (nlist <= 1) {
        /* 39 copies: FAISS warns on stderr below 39 points per centroid. */
        enum { COPIES = 39 };
        float *unit = vx_calloc_array((size_t)vi->dim * COPIES, sizeof *unit, err);
        if (!unit) return VX_ENOMEM;
        for (int c = 0; c < COPIES; c++)
            unit[(size_t)c * vi->dim] = 1;
        int rc = faiss_Index_train(index, COPIES, unit);
        free(unit);
        return rc ? st__faiss_fail(err, "index %s/%s: training", vi->model, vi->modality) : VX_OK;
    }
    int64_t want = (int64_t)nlist * 64;
    if (want > n) want = n;
    int64_t step = n / want > 0 ? n / want : 1;
    float *sample = vx_calloc_array((size_t)want * (size_t)vi->dim, sizeof *sample, err);
    if (!sample) return VX_ENOMEM;
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT vector FROM embeddings WHERE space_id = ?"
                                " ORDER BY segment_id",
                                &stmt, err);
    int64_t got = 0, row = 0;
    if (!st) {
        sqlite3_bind_int64(stmt, 1, vi->space_id);
        int rc;
        while (got < want && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            if (row++ % step) continue;
            if (blob_to_unit(sqlite3_column_blob(stmt, 0), sqlite3_column_bytes(stmt, 0), vi->dim,
                             sample + got * vi->dim))
                got++;
        }
        st__stmt_put(s, stmt);
    }
    if (!st && got < nlist)
        st = vx_fail(err, VX_EINDEX, "index %s/%s: %lld vectors cannot train %d lists", vi->model,
                     vi->modality, (long long)got, nlist);
    if (!st && faiss_Index_train(index, got, sample) != 0)
        st = st__faiss_fail(err, "index %s/%s: training", vi->model, vi->modality);
    free(sample);
    return st;
}

static vx_status new_index(st_store *s, st_vindex *vi, int64_t n, FaissIndex **out,
                           char factory[64], vx_err *err)
{
    *out = NULL;
    choose_factory(s, n, factory);
    /* A requested type with lists that this few vectors cannot train falls back to exact. */
    FaissIndex *index = NULL;
    if (faiss_index_factory(&index, vi->dim, factory, METRIC_INNER_PRODUCT) != 0)
        return st__faiss_fail(err, "index %s/%s: factory \"%s\"", vi->model, vi->modality, factory);
    if (!faiss_IndexIVF_cast(index)) {
        faiss_Index_free(index);
        return vx_fail(err, VX_EUNSUPPORTED,
                       "index %s/%s: \"%s\" is not an IVF index (filtered search and removal"
                       " need IVF, e.g. \"IVF1024,Flat\")",
                       vi->model, vi->modality, factory);
    }
    if (ivf_nlist(index) > 1 && n < (int64_t)ivf_nlist(index) * 39) {
        vx_log(VX_LOG_INFO, "index %s/%s: %lld vectors are too few for %s; using IVF1,Flat",
               vi->model, vi->modality, (long long)n, factory);
        faiss_Index_free(index);
        snprintf(factory, 64, "IVF1,Flat");
        if (faiss_index_factory(&index, vi->dim, factory, METRIC_INNER_PRODUCT) != 0)
            return st__faiss_fail(err, "index %s/%s: factory \"%s\"", vi->model, vi->modality,
                                  factory);
    }
    vx_status st = train_index(s, vi, index, n, err);
    if (st) {
        faiss_Index_free(index);
        return st;
    }
    apply_nprobe(s, index);
    *out = index;
    return VX_OK;
}

/* Reads the generation and log floor; call inside the sync's read transaction. */
static vx_status read_state(st_store *s, int64_t *generation, int64_t *floor, vx_err *err)
{
    if (!s->state_stmt) {
        vx_status st =
            st__prepare(s, "SELECT generation, log_floor FROM state", &s->state_stmt, err);
        if (st) return st;
    }
    vx_status st = VX_OK;
    int rc = sqlite3_step(s->state_stmt);
    if (rc == SQLITE_ROW) {
        *generation = sqlite3_column_int64(s->state_stmt, 0);
        *floor = sqlite3_column_int64(s->state_stmt, 1);
    } else if (rc == SQLITE_DONE) {
        st = vx_fail(err, VX_ECORRUPT, "catalog %s: the state row is missing", s->catalog_path);
    } else {
        st = st__db_fail(s, err, "reading the catalog generation");
    }
    /* Reset at once: a statement left running would hold its read snapshot open. */
    sqlite3_reset(s->state_stmt);
    return st;
}

vx_status st__state_read(st_store *s, int64_t *generation, int64_t *floor, vx_err *err)
{
    return read_state(s, generation, floor, err);
}

/* Rebuild body; the caller holds the read snapshot whose generation is `generation`. */
static vx_status rebuild_at(st_store *s, st_vindex *vi, int64_t generation, vx_err *err)
{
    int64_t n = 0;
    sqlite3_stmt *stmt;
    vx_status st =
        st__stmt_get(s, "SELECT count(*) FROM embeddings WHERE space_id = ?", &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, vi->space_id);
    if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
    st__stmt_put(s, stmt);
    FaissIndex *index;
    char factory[64];
    if ((st = new_index(s, vi, n, &index, factory, err))) return st;
    if ((st = st__stmt_get(s,
                           "SELECT segment_id, vector FROM embeddings WHERE space_id = ?"
                           " ORDER BY segment_id",
                           &stmt, err))) {
        faiss_Index_free(index);
        return st;
    }
    sqlite3_bind_int64(stmt, 1, vi->space_id);
    st = add_rows(s, vi, index, stmt, err);
    st__stmt_put(s, stmt);
    if (st) {
        faiss_Index_free(index);
        return st;
    }
    if (vi->index) faiss_Index_free(vi->index);
    vi->index = index;
    memcpy(vi->factory, factory, sizeof vi->factory);
    vi->generation = generation;
    vi->dirty = 1;
    vi->rebuilds++;
    changes_restart(vi);
    vx_log(VX_LOG_INFO, "index %s/%s rebuilt from the catalog: %lld vectors, %s, generation %lld",
           vi->model, vi->modality, (long long)faiss_Index_ntotal(index), factory,
           (long long)generation);
    return VX_OK;
}

/* Moves vi->index from vi->generation to `generation`: every segment touched in between is
 * removed, then added back when it still has a vector. Idempotent, so the order of the log
 * rows does not matter. */
static vx_status replay_to(st_store *s, st_vindex *vi, int64_t generation, vx_err *err)
{
    sqlite3_stmt *stmt;
    vx_status st = st__stmt_get(s,
                                "SELECT DISTINCT segment_id FROM vec_log"
                                " WHERE generation > ?1 AND generation <= ?2 AND space_id = ?3",
                                &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, vi->generation);
    sqlite3_bind_int64(stmt, 2, generation);
    sqlite3_bind_int64(stmt, 3, vi->space_id);
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            int64_t *grown = realloc(ids, ncap * sizeof *ids);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory replaying index %s/%s", vi->model,
                             vi->modality);
                break;
            }
            ids = grown;
            cap = ncap;
        }
        ids[n++] = sqlite3_column_int64(stmt, 0);
    }
    if (!st && rc != SQLITE_DONE) st = st__db_fail(s, err, "reading the index change log");
    st__stmt_put(s, stmt);
    if (!st && n > 0) {
        FaissIDSelectorBatch *sel = NULL;
        size_t removed = 0;
        if (faiss_IDSelectorBatch_new(&sel, n, ids) != 0 ||
            faiss_Index_remove_ids(vi->index, (FaissIDSelector *)sel, &removed) != 0)
            st = st__faiss_fail(err, "index %s/%s: removing %zu changed ids", vi->model,
                                vi->modality, n);
        if (sel) faiss_IDSelector_free((FaissIDSelector *)sel);
    }
    if (!st && n > 0 &&
        !(st = st__stmt_get(s,
                            "SELECT segment_id, vector FROM embeddings WHERE space_id = ?1 AND"
                            " segment_id IN (SELECT segment_id FROM vec_log WHERE generation > ?2"
                            " AND generation <= ?3 AND space_id = ?1) ORDER BY segment_id",
                            &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, vi->space_id);
        sqlite3_bind_int64(stmt, 2, vi->generation);
        sqlite3_bind_int64(stmt, 3, generation);
        st = add_rows(s, vi, vi->index, stmt, err);
        st__stmt_put(s, stmt);
    }
    if (!st) changes_add(vi, generation, ids, n);
    free(ids);
    if (st) {
        /* A half-applied replay breaks invariant 1: forget the index. */
        st__vindex_drop(vi);
        return st;
    }
    if (n)
        vx_log(VX_LOG_DEBUG, "index %s/%s: replayed %zu changes, generation %lld -> %lld",
               vi->model, vi->modality, n, (long long)vi->generation, (long long)generation);
    if (generation != vi->generation) vi->replays++;
    vi->generation = generation;
    if (vi->generation != vi->file_generation) vi->dirty = 1;
    return VX_OK;
}

/* The body of a sync, inside the read transaction. */
static vx_status sync_locked(st_store *s, st_vindex *vi, int force_rebuild, vx_err *err)
{
    int64_t generation = 0, floor = 0;
    vx_status st = read_state(s, &generation, &floor, err);
    if (st) return st;
    if (force_rebuild) return rebuild_at(s, vi, generation, err);
    if (vi->index && vi->generation == generation) return VX_OK;
    if (vi->index && vi->generation >= floor && vi->generation < generation)
        return replay_to(s, vi, generation, err);
    /* Not loaded, or too far behind (or ahead: a restored catalog): start from the file. */
    st__vindex_drop(vi);
    char *path = st__vindex_path(s, vi->model, vi->modality, err);
    if (!path) return VX_ENOMEM;
    vx_err load_err = {0};
    int64_t file_generation = -1;
    FaissIndex *index = NULL;
    vx_status load =
        st__vfile_load(path, vi->dim, &index, &file_generation, vi->factory, &load_err);
    if (!load && (file_generation < floor || file_generation > generation)) {
        vx_log(VX_LOG_INFO,
               "index %s is at generation %lld, the catalog at %lld (log from %lld):"
               " rebuilding",
               path, (long long)file_generation, (long long)generation, (long long)floor);
        faiss_Index_free(index);
        load = VX_ESTALE;
    } else if (load == VX_ENOTFOUND) {
        vx_log(VX_LOG_INFO, "index %s is missing: rebuilding from the catalog", path);
    } else if (load) {
        vx_log(VX_LOG_WARN, "%s: rebuilding from the catalog", load_err.msg);
    }
    free(path);
    if (load) return rebuild_at(s, vi, generation, err);
    vi->index = index;
    apply_nprobe(s, index);
    vi->generation = vi->file_generation = file_generation;
    vi->dirty = 0;
    vi->loads++;
    changes_restart(vi);
    if (file_generation < generation) return replay_to(s, vi, generation, err);
    return VX_OK;
}

static vx_status sync_space(st_store *s, st_vindex *vi, int force_rebuild, vx_err *err)
{
    if (s->in_txn) {
        /* Inside the writer's open transaction the snapshot holds uncommitted rows: never
         * build from it. The loaded index (as of the last sync) serves meanwhile. */
        if (vi->index && !force_rebuild) return VX_OK;
        return vx_fail(err, VX_EINVAL,
                       "index %s/%s cannot be loaded or rebuilt inside an open transaction",
                       vi->model, vi->modality);
    }
    int own;
    vx_status st = st__read_begin(s, &own, err);
    if (st) return st;
    st = sync_locked(s, vi, force_rebuild, err);
    st__read_end(s, own);
    return st;
}

vx_status st__vindex_sync(st_store *s, st_vindex *vi, vx_err *err)
{
    /* Fast path for every search: one cached statement tells whether anything changed. */
    if (vi->index && !s->in_txn) {
        /* Autocommit is expected here (a leftover transaction would pin an old snapshot),
         * unless the caller holds an st_read_begin snapshot on purpose. */
        if (!s->read_depth) st__txn_reset(s);
        int64_t generation = 0, floor = 0;
        vx_status st = read_state(s, &generation, &floor, err);
        if (st) return st;
        if (generation == vi->generation) return VX_OK;
    }
    return sync_space(s, vi, 0, err);
}

vx_status st__vindex_rebuild(st_store *s, st_vindex *vi, vx_err *err)
{
    return sync_space(s, vi, 1, err);
}

vx_status st__vindex_ids(FaissIndex *index, const char *what, int64_t **out, size_t *out_count,
                         vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(index);
    if (!ivf) return vx_fail(err, VX_EINDEX, "index %s is not IVF", what);
    size_t nlist = faiss_IndexIVF_nlist(ivf), total = 0;
    for (size_t l = 0; l < nlist; l++)
        total += faiss_IndexIVF_get_list_size(ivf, l);
    int64_t *ids = vx_calloc_array(total ? total : 1, sizeof *ids, err);
    if (!ids) return VX_ENOMEM;
    size_t at = 0;
    for (size_t l = 0; l < nlist; l++) {
        size_t len = faiss_IndexIVF_get_list_size(ivf, l);
        if (len) faiss_IndexIVF_invlists_get_ids(ivf, l, ids + at);
        at += len;
    }
    /* Sorted so the caller compares with the catalog's ORDER BY segment_id in one pass. */
    qsort(ids, total, sizeof *ids, st__cmp_i64);
    *out = ids;
    *out_count = total;
    return VX_OK;
}

int st__cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- public ------------------------------------------------------------------------------- */

static vx_status grow_scratch(st_store *s, int dim, int k, vx_err *err)
{
    if ((size_t)dim > s->query_cap) {
        float *q = realloc(s->query_buf, (size_t)dim * sizeof *q);
        if (!q) return vx_fail(err, VX_ENOMEM, "out of memory for a query of dim %d", dim);
        s->query_buf = q;
        s->query_cap = (size_t)dim;
    }
    if ((size_t)k > s->result_cap) {
        float *d = realloc(s->dist_buf, (size_t)k * sizeof *d);
        if (d) s->dist_buf = d;
        int64_t *l = realloc(s->label_buf, (size_t)k * sizeof *l);
        if (l) s->label_buf = l;
        if (!d || !l) return vx_fail(err, VX_ENOMEM, "out of memory for %d results", k);
        s->result_cap = (size_t)k;
    }
    return VX_OK;
}

/* Searches vi->index, at most k hits into s->dist_buf / s->label_buf (grown by the caller). */
static vx_status index_search(st_store *s, const st_vindex *vi, int k, const int64_t *filter_ids,
                              size_t n_filter, vx_err *err)
{
    if (n_filter) {
        char msg[256];
        if (st__faiss_search_filtered(vi->index, s->query_buf, k, filter_ids, n_filter, s->dist_buf,
                                      s->label_buf, msg, sizeof msg) != 0)
            return vx_fail(err, VX_EINDEX, "search %s/%s: %s", vi->model, vi->modality, msg);
    } else if (faiss_Index_search(vi->index, 1, s->query_buf, k, s->dist_buf, s->label_buf) != 0) {
        return st__faiss_fail(err, "search %s/%s", vi->model, vi->modality);
    }
    return VX_OK;
}

static int by_score_desc(const void *a, const void *b)
{
    const st_hit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->segment_id > y->segment_id) - (x->segment_id < y->segment_id);
}

/* A shared index newer than the handle's snapshot `generation`, answered as of that snapshot:
 * the segments replayed since (vi->changes, which must cover `generation`) are left out of the
 * index's answer and scored instead from their vectors as the snapshot sees them. Every other
 * vector is the same at both generations, so asking the index for k more hits than there are
 * such segments keeps the best k exact. Runs with the index lock held, in the snapshot. */
static vx_status search_as_of(st_store *s, const st_vindex *vi, int64_t generation, int k,
                              const int64_t *filter_ids, size_t n_filter, st_hit *out,
                              int *out_count, vx_err *err)
{
    const st_changes *c = vi->changes;
    size_t first = c->n;
    while (first > 0 && c->to_generation[first - 1] > generation)
        first--;
    size_t nd = c->n - first;
    if ((size_t)k + nd > INT32_MAX)
        return vx_fail(err, VX_EINVAL, "search %s/%s: %d results are too many", vi->model,
                       vi->modality, k);
    int k2 = k + (int)nd;
    vx_status st = grow_scratch(s, vi->dim, k2, err);
    if (st) return st;
    int64_t *changed = vx_calloc_array(nd ? nd : 1, sizeof *changed, err);
    int64_t *filter = vx_calloc_array(n_filter ? n_filter : 1, sizeof *filter, err);
    st_hit *cand = vx_calloc_array((size_t)k2 + nd, sizeof *cand, err);
    float *vec = vx_calloc_array((size_t)vi->dim, sizeof *vec, err);
    if (!changed || !filter || !cand || !vec) {
        st = VX_ENOMEM;
        goto done;
    }
    memcpy(changed, c->ids + first, nd * sizeof *changed);
    qsort(changed, nd, sizeof *changed, st__cmp_i64);
    if (n_filter) {
        memcpy(filter, filter_ids, n_filter * sizeof *filter);
        qsort(filter, n_filter, sizeof *filter, st__cmp_i64);
    }
    if ((st = index_search(s, vi, k2, filter_ids, n_filter, err))) goto done;
    size_t m = 0;
    for (int i = 0; i < k2; i++) {
        if (s->label_buf[i] < 0 ||
            bsearch(&s->label_buf[i], changed, nd, sizeof *changed, st__cmp_i64))
            continue;
        cand[m].segment_id = s->label_buf[i];
        cand[m++].score = s->dist_buf[i];
    }
    sqlite3_stmt *stmt;
    if ((st = st__stmt_get(s, "SELECT vector FROM embeddings WHERE space_id = ? AND segment_id = ?",
                           &stmt, err)))
        goto done;
    for (size_t i = 0; i < nd; i++) {
        if (i > 0 && changed[i] == changed[i - 1]) continue;
        if (n_filter && !bsearch(&changed[i], filter, n_filter, sizeof *filter, st__cmp_i64))
            continue;
        sqlite3_bind_int64(stmt, 1, vi->space_id);
        sqlite3_bind_int64(stmt, 2, changed[i]);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && blob_to_unit(sqlite3_column_blob(stmt, 0),
                                             sqlite3_column_bytes(stmt, 0), vi->dim, vec)) {
            float score = 0;
            for (int d = 0; d < vi->dim; d++)
                score += s->query_buf[d] * vec[d];
            cand[m].segment_id = changed[i];
            cand[m++].score = score;
        } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            st = st__db_fail(s, err, "reading a changed vector");
        }
        sqlite3_reset(stmt);
        if (st) break;
    }
    st__stmt_put(s, stmt);
    if (st) goto done;
    qsort(cand, m, sizeof *cand, by_score_desc);
    int n = m < (size_t)k ? (int)m : k;
    memcpy(out, cand, (size_t)n * sizeof *out);
    *out_count = n;
done:
    free(changed);
    free(filter);
    free(cand);
    free(vec);
    return st;
}

vx_status st_search(st_store *s, const char *model, const char *modality, const float *query,
                    int dim, int k, const int64_t *filter_ids, size_t n_filter, st_hit *out,
                    int *out_count, vx_err *err)
{
    *out_count = 0;
    if (!model || !modality || k <= 0 || dim <= 0 || !query || (n_filter && !filter_ids))
        return vx_fail(err, VX_EINVAL, "search %s/%s: needs k > 0, dim > 0 and a query",
                       model ? model : "", modality ? modality : "");
    /* A space, once known, keeps its id (spaces are never deleted): skip the catalog. */
    st_vindex *vi = NULL;
    vx_status st = VX_OK;
    for (size_t i = 0; i < s->space_count && !vi; i++)
        if (!strcmp(s->spaces[i]->model, model) && !strcmp(s->spaces[i]->modality, modality))
            vi = s->spaces[i];
    if (!vi && (st = st__space_find(s, model, modality, dim, 0, &vi, err))) return st;
    if (vi->dim != dim)
        return vx_fail(err, VX_EINVAL, "search %s/%s: query has dim %d, the index %d", model,
                       modality, dim, vi->dim);
    if ((st = grow_scratch(s, dim, k, err))) return st;
    double norm2 = 0;
    for (int i = 0; i < dim; i++)
        norm2 += (double)query[i] * query[i];
    if (!(norm2 > 0) || !isfinite(norm2))
        return vx_fail(err, VX_EINVAL, "search %s/%s: the query vector is zero or not finite",
                       model, modality);
    float inv = (float)(1.0 / sqrt(norm2));
    for (int i = 0; i < dim; i++)
        s->query_buf[i] = query[i] * inv;
    /* A shared index is searched under its lock (FAISS searches a const index from many
     * threads at once); a private one needs none (one thread per handle). */
    st_index_cache *cache = s->opts.index_cache;
    st_vindex *use = vi;
    int64_t snapshot_generation = -1;
    if ((st = cache ? st__cache_acquire(s, vi, &use, &snapshot_generation, err)
                    : st__vindex_sync(s, vi, err)))
        return st;
    /* Inside st_read_begin the answer must match the snapshot (its look-ups must find every
     * hit): a shared index moved on since is answered as of the snapshot when its change
     * list reaches back that far. */
    if (cache && s->read_depth && use->generation > snapshot_generation && use->changes &&
        use->changes->floor >= 0 && snapshot_generation >= use->changes->floor) {
        st =
            search_as_of(s, use, snapshot_generation, k, filter_ids, n_filter, out, out_count, err);
        st__cache_release(use);
        return st;
    }
    st = index_search(s, use, k, filter_ids, n_filter, err);
    if (cache) st__cache_release(use);
    if (st) return st;
    int n = 0;
    for (int i = 0; i < k; i++) {
        if (s->label_buf[i] < 0) continue; /* fewer than k candidates */
        out[n].segment_id = s->label_buf[i];
        out[n].score = s->dist_buf[i];
        n++;
    }
    *out_count = n;
    return VX_OK;
}

/* An automatically typed index whose size moved across the threshold is rebuilt at save.
 * Judged from the factory string and count, so a file's header is enough. */
static int wrong_type_for_size(const st_store *s, const char *factory, int64_t n)
{
    if (s->opts.index_factory || strncmp(factory, "IVF", 3) != 0) return 0;
    long nlist = atol(factory + 3);
    if (nlist <= 1) return n > s->opts.flat_max_vectors;
    return n <= s->opts.flat_max_vectors / 2;
}

static vx_status need_writer_no_txn(st_store *s, const char *what, vx_err *err)
{
    if (s->opts.mode != ST_WRITE)
        return vx_fail(err, VX_EINVAL, "%s needs the data directory %s open as writer", what,
                       s->dir);
    if (s->in_txn)
        return vx_fail(err, VX_EINVAL, "%s: commit or roll back the open transaction first", what);
    return VX_OK;
}

vx_status st_flush(st_store *s, vx_err *err)
{
    vx_status st = need_writer_no_txn(s, "saving indexes", err);
    if (st) return st;
    if ((st = st__spaces_refresh(s, err))) return st;
    int64_t generation;
    if ((st = st_generation(s, &generation, err))) return st;
    for (size_t i = 0; i < s->space_count; i++) {
        st_vindex *vi = s->spaces[i];
        /* The header tells whether the file is there and current (someone may have removed
         * or replaced it since we loaded it). */
        char *path = st__vindex_path(s, vi->model, vi->modality, err);
        if (!path) return VX_ENOMEM;
        st_vfile_info info;
        st__vfile_probe(path, generation, 0, &info);
        free(path);
        int file_ok = !strcmp(info.state, "fresh");
        if (!vi->index && file_ok && !wrong_type_for_size(s, info.factory, info.ntotal))
            continue; /* not loaded, nothing to do */
        if ((st = st__vindex_sync(s, vi, err))) return st;
        if (wrong_type_for_size(s, vi->factory, faiss_Index_ntotal(vi->index)) &&
            (st = st__vindex_rebuild(s, vi, err)))
            return st;
        if (vi->dirty || vi->file_generation != vi->generation || !file_ok)
            if ((st = st__vindex_save(s, vi, err))) return st;
    }
    /* Every file is at least at `generation` now: the log below it is no longer needed. */
    int own;
    if ((st = st__write_begin(s, &own, err))) return st;
    sqlite3_stmt *stmt;
    if (!(st = st__stmt_get(s, "DELETE FROM vec_log WHERE generation <= ?", &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, generation);
        if (sqlite3_step(stmt) != SQLITE_DONE) st = st__db_fail(s, err, "pruning the change log");
        st__stmt_put(s, stmt);
    }
    if (!st &&
        !(st = st__stmt_get(s, "UPDATE state SET log_floor = ? WHERE log_floor < ?", &stmt, err))) {
        sqlite3_bind_int64(stmt, 1, generation);
        sqlite3_bind_int64(stmt, 2, generation);
        if (sqlite3_step(stmt) != SQLITE_DONE) st = st__db_fail(s, err, "moving the log floor");
        st__stmt_put(s, stmt);
    }
    return st__write_end(s, own, st, err);
}

vx_status st_index_rebuild(st_store *s, const char *model, const char *modality, vx_err *err)
{
    vx_status st = need_writer_no_txn(s, "rebuilding indexes", err);
    if (st) return st;
    if (model) {
        st_vindex *vi;
        if ((st = st__space_find(s, model, modality, 0, 0, &vi, err))) return st;
        if ((st = st__vindex_rebuild(s, vi, err))) return st;
        return st__vindex_save(s, vi, err);
    }
    if ((st = st__spaces_refresh(s, err))) return st;
    for (size_t i = 0; i < s->space_count; i++) {
        if ((st = st__vindex_rebuild(s, s->spaces[i], err))) return st;
        if ((st = st__vindex_save(s, s->spaces[i], err))) return st;
    }
    return VX_OK;
}
