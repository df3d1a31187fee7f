/* The shared index cache: one in-memory FAISS index per (model, modality) for every read-only
 * handle of one data directory in a process, instead of one copy per handle.
 *
 * DESIGN
 *  Objects. The cache owns a table of entries, one per (model, modality), each an st_vindex
 *  (the same struct a private handle uses, so vindex.c's load/replay/rebuild code serves both)
 *  and a reader/writer lock. Entries are created on first use and live until
 *  st_index_cache_free; the table is an array of pointers, so an entry's address is stable
 *  once the table mutex is released.
 *
 *  Locks, in the only order they are ever taken:
 *   1. cache->mutex: guards the table (entries, count), the bound directory and nothing else.
 *      Held only to find or add an entry (or to read counters), never while waiting for 2.
 *   2. entry->lock (pthread rwlock, writers preferred so a sync is not starved by a stream of
 *      searches): the reader side for searching the index; the writer side for changing it
 *      (load, replay, rebuild, reset after a space was re-created).
 *   3. the handle's own SQLite connection: read while entry->lock is held on the writer side
 *      (a sync reads the change log and BLOBs through the handle that found the index behind).
 *  The catalog's writer process/handle never takes 1 or 2, and WAL readers never wait for the
 *  writer, so holding 2 over 3 cannot deadlock.
 *
 *  Invariants:
 *   a. entry->vi.index, when set, holds exactly the catalog's committed vectors of the space at
 *      entry->vi.generation (vindex.c invariant 1; syncs run inside one read snapshot).
 *   b. entry->vi.generation only rises while the space id stays the same: a handle whose
 *      snapshot is older than the entry searches the newer committed state instead of moving
 *      the index back; a handle whose snapshot is newer moves it forward under the writer lock.
 *   c. Nothing uncommitted is ever in an entry: only ST_READ handles (which cannot write) sync
 *      entries, so every snapshot they read from is committed data.
 *   d. entry->changes lists every segment replayed into the entry after changes.floor (with
 *      the generation each replay reached); a load or rebuild restarts it at the new
 *      generation. So for a snapshot at G >= floor, the entry differs from the catalog at G
 *      only in the segments listed with a generation > G: st_search (search_as_of) leaves
 *      those out of the index's answer and scores them from the snapshot's own BLOBs, which
 *      gives exactly the answer at G. A listed segment that did not change in (G, entry] is
 *      harmless: its BLOB at G equals its indexed vector.
 *  Hence a search through the cache shows one committed generation >= the handle's generation
 *  at the call, exactly the snapshot's inside st_read_begin when d covers it (st.h states
 *  this for callers).
 *
 *  FAISS: IndexIVF::search and the IDSelectorBatch search in faiss_filter.cpp only read the
 *  index (the selector and the search parameters live on the caller's stack; nprobe is set
 *  at load under the writer lock), so concurrent searches under the reader lock are safe. */
#define _GNU_SOURCE
#include "st_internal.h"

#include <faiss/c_api/Index_c.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct cache_entry {
    st_vindex vi; /* first member: st__cache_release gets the entry back from &vi */
    pthread_rwlock_t lock;
    st_changes changes; /* vi.changes points here */
} cache_entry;

struct st_index_cache {
    pthread_mutex_t mutex;
    char *dir; /* canonical path of the bound data directory; NULL until the first open */
    cache_entry **entries;
    size_t count, cap;
};

vx_status st_index_cache_create(st_index_cache **out, vx_err *err)
{
    *out = NULL;
    st_index_cache *c = calloc(1, sizeof *c);
    if (!c) return vx_fail(err, VX_ENOMEM, "out of memory for an index cache");
    if (pthread_mutex_init(&c->mutex, NULL) != 0) {
        free(c);
        return vx_fail(err, VX_ENOMEM, "cannot create the index cache's mutex");
    }
    *out = c;
    return VX_OK;
}

void st_index_cache_free(st_index_cache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->count; i++) {
        cache_entry *e = c->entries[i];
        pthread_rwlock_destroy(&e->lock);
        if (e->vi.index) faiss_Index_free(e->vi.index);
        free(e->changes.to_generation);
        free(e->changes.ids);
        free(e->vi.model);
        free(e->vi.modality);
        free(e);
    }
    free(c->entries);
    free(c->dir);
    pthread_mutex_destroy(&c->mutex);
    free(c);
}

void st_index_cache_stats_get(st_index_cache *c, st_index_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c) return;
    /* Entries are never removed before st_index_cache_free, so the first `count` stay valid
     * after the mutex is released (lock order: never wait for an entry under the mutex). */
    pthread_mutex_lock(&c->mutex);
    size_t count = c->count;
    pthread_mutex_unlock(&c->mutex);
    for (size_t i = 0; i < count; i++) {
        pthread_mutex_lock(&c->mutex);
        cache_entry *e = c->entries[i];
        pthread_mutex_unlock(&c->mutex);
        /* Counters and the index pointer change under the entry's writer lock. */
        pthread_rwlock_rdlock(&e->lock);
        if (e->vi.index) {
            out->indexes++;
            out->vectors += faiss_Index_ntotal(e->vi.index);
        }
        out->loads += e->vi.loads;
        out->rebuilds += e->vi.rebuilds;
        out->replays += e->vi.replays;
        pthread_rwlock_unlock(&e->lock);
    }
}

vx_status st__cache_bind(st_index_cache *c, const char *dir, vx_err *err)
{
    /* Canonical, so "data", "./data" and "/srv/data/" are one directory. */
    char *canon = realpath(dir, NULL);
    if (!canon)
        return vx_fail(err, VX_EIO, "cannot resolve data directory %s: %s", dir, strerror(errno));
    vx_status st = VX_OK;
    pthread_mutex_lock(&c->mutex);
    if (!c->dir) {
        c->dir = canon;
        canon = NULL;
    } else if (strcmp(c->dir, canon) != 0) {
        st = vx_fail(err, VX_EINVAL, "index cache of %s cannot serve data directory %s", c->dir,
                     canon);
    }
    pthread_mutex_unlock(&c->mutex);
    free(canon);
    return st;
}

/* The entry of (model, modality), added when absent. */
static vx_status entry_get(st_index_cache *c, const st_vindex *own, cache_entry **out, vx_err *err)
{
    vx_status st = VX_OK;
    pthread_mutex_lock(&c->mutex);
    cache_entry *found = NULL;
    for (size_t i = 0; i < c->count && !found; i++)
        if (!strcmp(c->entries[i]->vi.model, own->model) &&
            !strcmp(c->entries[i]->vi.modality, own->modality))
            found = c->entries[i];
    if (!found) {
        cache_entry *e = calloc(1, sizeof *e);
        if (c->count == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 8;
            cache_entry **grown = realloc(c->entries, ncap * sizeof *grown);
            if (grown) {
                c->entries = grown;
                c->cap = ncap;
            }
        }
        pthread_rwlockattr_t attr;
        int lock_ok = 0;
        if (e && c->count < c->cap && !pthread_rwlockattr_init(&attr)) {
            pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
            lock_ok = !pthread_rwlock_init(&e->lock, &attr);
            pthread_rwlockattr_destroy(&attr);
        }
        if (lock_ok && (e->vi.model = strdup(own->model)) &&
            (e->vi.modality = strdup(own->modality))) {
            e->vi.space_id = own->space_id;
            e->vi.dim = own->dim;
            e->vi.generation = -1;
            e->vi.file_generation = -1;
            e->changes.floor = -1;
            e->vi.changes = &e->changes;
            c->entries[c->count++] = e;
            found = e;
        } else {
            if (lock_ok) pthread_rwlock_destroy(&e->lock);
            if (e) {
                free(e->vi.model);
                free(e->vi.modality);
            }
            free(e);
            st = vx_fail(err, VX_ENOMEM, "out of memory for shared index %s/%s", own->model,
                         own->modality);
        }
    }
    pthread_mutex_unlock(&c->mutex);
    *out = found;
    return st;
}

/* The entry serves a handle whose snapshot is at `generation` (invariants a, b). */
static int entry_serves(const cache_entry *e, const st_vindex *own, int64_t generation)
{
    return e->vi.index && e->vi.space_id == own->space_id && e->vi.dim == own->dim &&
           e->vi.generation >= generation;
}

vx_status st__cache_acquire(st_store *s, const st_vindex *own, st_vindex **out,
                            int64_t *out_generation, vx_err *err)
{
    *out = NULL;
    cache_entry *e;
    vx_status st = entry_get(s->opts.index_cache, own, &e, err);
    if (st) return st;
    /* The handle's generation: its st_read_begin snapshot's, or the latest committed one
     * (autocommit; a leftover transaction would pin an old snapshot, as in vindex.c). */
    if (!s->read_depth) st__txn_reset(s);
    int64_t generation = 0, floor = 0;
    if ((st = st__state_read(s, &generation, &floor, err))) return st;
    *out_generation = generation;
    pthread_rwlock_rdlock(&e->lock);
    if (entry_serves(e, own, generation)) {
        *out = &e->vi;
        return VX_OK;
    }
    pthread_rwlock_unlock(&e->lock);
    /* Behind (or not loaded): the first handle to get the writer lock brings it forward; the
     * others find it done when they get the lock. The search that follows stays under the
     * writer lock: this happens once per generation, and downgrading would need a re-check. */
    pthread_rwlock_wrlock(&e->lock);
    if (e->vi.space_id != own->space_id || e->vi.dim != own->dim) {
        /* The space was re-created under another id since the entry was made. */
        st__vindex_drop(&e->vi);
        e->vi.space_id = own->space_id;
        e->vi.dim = own->dim;
    }
    if (!entry_serves(e, own, generation)) st = st__vindex_sync(s, &e->vi, err);
    if (!st && !e->vi.index)
        st = vx_fail(err, VX_EINDEX, "shared index %s/%s could not be loaded", own->model,
                     own->modality);
    if (st) {
        pthread_rwlock_unlock(&e->lock);
        return st;
    }
    *out = &e->vi;
    return VX_OK;
}

void st__cache_release(st_vindex *shared)
{
    if (!shared) return;
    cache_entry *e = (cache_entry *)shared; /* vi is the first member */
    pthread_rwlock_unlock(&e->lock);
}
