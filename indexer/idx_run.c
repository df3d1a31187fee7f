/* indexer/idx_run.c — one indexing run of one library: plan (what changed since the catalog
 * last saw the library), catalogue writes that need no decoding (deletions, moves, pending
 * rows), then the decode -> encode -> store pipeline, then the run record.
 *
 * DESIGN
 *   Phases, in the calling thread except the pipeline's workers:
 *   1. library: found by name, or created from root.
 *   2. known: every catalog video of the library, sorted by location.
 *   3. crawl + decide: each candidate against known by (size, mtime), then — only when those
 *      differ or the location is new — by the head+tail content hash. Over HTTP(S) the
 *      server's word comes first: a 304 to the conditional HEAD, or the same ETag, is
 *      unchanged; a new ETag means hashing the two ends (Range requests). Files over
 *      max_size_bytes are recorded as failed unread. An unchanged file costs
 *      the crawl's one stat (plus, with a model, a catalog look-up that its vectors exist).
 *   4. moves: a new location whose (size, hash) equals an indexed video the crawl did not see;
 *      the row moves in place (st_video_relocate), keeping its segment and vector ids.
 *   5. writes before decoding, one transaction: deletions; pending rows for new files;
 *      changed files lose their old segments and become pending (a crash can never leave old
 *      vectors under a new identity); touched files (same content) get their new mtime. Then
 *      each move in its own transaction.
 *   6. pipeline:
 *
 *        decoders (jobs threads) --clip queue--> encoder (1 thread) --result queue--> store
 *
 *      A decoder takes the next work item (an atomic counter; none once *stop is set), opens
 *      the file, sends BEGIN, one CLIP per window (the preprocessed tensor in a buffer from
 *      the tensor pool, the thumbnail's JPEG bytes), TEXT messages (the window's on-screen
 *      text, read from the thumbnail's frame as it is decoded; after the windows, the video's
 *      subtitle cues and recognised speech gathered per window: idx_text.c) and END (ok, or
 *      the error); a failing text engine is a warning, never the video's failure. The encoder
 *      embeds CLIPs (OpenMP inside enc_vision_forward) and forwards every message in order,
 *      so each video's messages reach the store in order. The store (the calling thread, the
 *      only one that touches st_store) keeps a video's results until its END and writes them
 *      in one transaction: a video is committed whole or not at all, so a killed run loses
 *      at most the videos in flight and the next run resumes from the pending rows.
 *      Memory is bounded: tensors live in a fixed pool of (clip queue capacity + jobs + 1)
 *      buffers; a decoder holds one media_reader and one frame batch; results are a vector
 *      and a small JPEG per window until their video's END.
 *   7. st_flush (vector indexes saved), st_run_finish.
 *
 * LOCK ORDER: each idx_queue has one mutex and no thread holds two; the tensor pool is an
 * idx_queue too. Shutdown: the last decoder to leave closes the clip queue; the encoder,
 * once that queue is drained, closes the result queue; the store loop ends when the result
 * queue is drained.
 *
 * Thumbnails: <thumbs>/v<video id>/<start ms>.jpg, one folder per video, so a video's
 * thumbnails are replaced or removed as a whole. */
#include "enc.h"
#include "idx.h"
#include "idx_http.h"
#include "idx_library.h"
#include "idx_queue.h"
#include "idx_text.h"
#include "media.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODALITY_VISION "vision"
#define MODALITY_SPEECH "speech"
#define MODALITY_AUDIO "audio"
/* How far before a window its newest frame may lie before the file counts as truncated
 * (generous: slideshows and variable frame rates have long gaps between frames). */
#define TRUNCATION_SLACK_MS 2000

idx_options idx_options_default(void)
{
    idx_options o;
    memset(&o, 0, sizeof o);
    o.window_ms = 4000;
    o.overlap_ms = 0;
    o.thumbnails = 1;
    o.thumb_max_px = 160;
    o.subtitles = 1;
    o.asr = 1;
    o.ocr = 1;
    o.ocr_min_confidence = 60;
    o.max_size_bytes = IDX_DEFAULT_MAX_SIZE_BYTES;
    o.http_timeout_ms = 30000;
    o.http_retries = 3;
    return o;
}

/* ---- plan ------------------------------------------------------------------------------- */

typedef struct known_video {
    char *location;
    char *content_hash;
    char *etag; /* HTTP(S) validator; NULL: none */
    int64_t id, size_bytes, mtime_ms;
    st_video_status status;
    int seen;    /* the crawl found its location */
    int claimed; /* a moved file took it over */
} known_video;

typedef enum action {
    ACT_UNCHANGED = 0,
    ACT_FAILED_UNCHANGED, /* failed before, same file: not retried */
    ACT_NEW,
    ACT_CHANGED,
    ACT_RESUME, /* pending (a run stopped before it): index in full */
    ACT_EMBED,  /* indexed, but no vectors for the active model */
    ACT_MOVED,
    ACT_NOT_VIDEO, /* unknown extension, probing found no video */
    ACT_FAILED,    /* could not even be hashed */
} action;

typedef struct plan_item {
    char *location;
    char *path;
    int64_t size_bytes, mtime_ms;
    idx_file_kind kind;
    char hash[MEDIA_CONTENT_HASH_HEX];
    int touched;      /* same content, new size/mtime (or ETag) to store */
    char *etag;       /* HTTP(S): the ETag the crawl saw; NULL: none */
    int not_modified; /* HTTP(S): the server said 304 to the conditional HEAD */
    action act;
    known_video *known; /* the catalog row (the source row for a move) */
    int64_t video_id;
    char *error; /* ACT_FAILED */
} plan_item;

/* ---- pipeline messages ---------------------------------------------------------------------- */

/* SPEECH: a window's subtitle + speech text for the text tower; AUDIO: a window's 16 kHz
 * samples for the audio tower. Both come back from the encoder with their embedding. */
typedef enum msg_kind { MSG_BEGIN, MSG_CLIP, MSG_TEXT, MSG_SPEECH, MSG_AUDIO, MSG_END } msg_kind;

typedef struct msg {
    msg_kind kind;
    size_t work;
    /* BEGIN */
    int64_t duration_ms;
    char *streams_json;
    size_t window_count;
    /* CLIP */
    size_t seg;
    int64_t start_ms, end_ms;
    float *pixels;    /* from the tensor pool; NULL without a model */
    float *embedding; /* filled by the encoder (CLIP, SPEECH, AUDIO) */
    /* AUDIO: the window's samples, 16 kHz mono (freed by the encoder once embedded) */
    float *samples;
    size_t nsamples;
    uint8_t *jpeg;
    size_t jpeg_len;
    /* TEXT: a text of window seg, from start_ms to end_ms */
    const char *source; /* static: "subtitle", "asr", "ocr" */
    char *body;
    st_word_time *times; /* per body word, or NULL */
    size_t ntimes;
    /* CLIP (encoder error) and END */
    vx_status status;
    char *error;
} msg;

typedef struct seg_result {
    int64_t start_ms, end_ms;
    float *embedding;
    float *speech; /* text tower, [text_dim]; NULL: no text in the window or no text tower */
    float *audio;  /* audio tower, [audio_dim]; NULL: no audio or no audio tower */
    uint8_t *jpeg;
    size_t jpeg_len;
    int have;
} seg_result;

typedef struct seg_text {
    size_t seg;
    const char *source;
    int64_t start_ms, end_ms;
    char *body;
    st_word_time *times;
    size_t ntimes;
} seg_text;

/* What a decoder measured of a video's text modalities (written by the decoder before END,
 * read by the store after it: ordered by the queues' mutexes). */
typedef struct text_stats {
    idx_asr_stats asr;
    int64_t cues, ocr_words, ocr_frames, ocr_ns;
} text_stats;

typedef struct work_item {
    plan_item *plan;
    int embed_only;
    st_segment *segs; /* embed_only: the stored segments */
    size_t seg_count;
    /* embed_only with a text tower: each stored segment's speech text (subtitle, then
     * speech) read from the catalog; NULL entries: none */
    char **speech_texts;
    /* store side */
    int64_t duration_ms;
    char *streams_json;
    seg_result *res;
    size_t res_count;
    seg_text *texts;
    size_t text_count, text_cap;
    text_stats tstats;
    media_shot_stats shots; /* snap_to_shots: the detection pass (written by the decoder) */
    int64_t shot_cuts;
    vx_status status;
    char *error;
} work_item;

typedef struct run_ctx {
    st_store *s;
    const idx_options *o;
    idx_summary *sum;
    int64_t library_id;
    int create_library; /* a new library: added after its first crawl */
    /* model */
    enc_model *model;
    enc_vision *vis;
    enc_text *txt;  /* the text tower, for "speech" vectors; NULL: the model has none */
    enc_audio *aud; /* the audio tower, for "audio" vectors; NULL: the model has none */
    int text_dim, audio_dim;
    int64_t audio_max_ms; /* what the audio tower looks at; longer windows are cut */
    const char *model_id;
    int frames, image_size, dim;
    size_t tensor_floats;
    /* text modalities that will run */
    int do_subtitles, do_asr, do_ocr;
    /* plan */
    known_video *known;
    size_t known_count, known_cap;
    int known_oom;
    plan_item *plan;
    size_t plan_count, plan_cap;
    /* pipeline */
    work_item *works;
    size_t work_count;
    atomic_size_t next_work;
    atomic_int decoders_left;
    atomic_int abandon; /* the store failed: decoders take no new work */
    idx_queue clips, results, pool;
    float **tensors;
    size_t tensor_count;
    vx_progress *progress;
    int64_t videos_done, clips_done;
    int64_t t0_ns;
    int64_t settled_before; /* plan items that never enter the pipeline */
} run_ctx;

static int stop_requested(const idx_options *o)
{
    return o->stop && *o->stop;
}

static vx_status add_failure(idx_summary *sum, const char *location, const char *reason,
                             vx_err *err)
{
    idx_failure *grown = realloc(sum->failures, (sum->failure_count + 1) * sizeof *grown);
    if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory");
    sum->failures = grown;
    idx_failure *f = &grown[sum->failure_count];
    /* The summary names the file already: drop it from the front of the reason. */
    size_t n = strlen(location);
    if (reason && !strncmp(reason, location, n) && !strncmp(reason + n, ": ", 2)) reason += n + 2;
    f->location = strdup(location);
    f->reason = strdup(reason ? reason : "unknown error");
    if (!f->location || !f->reason) {
        free(f->location);
        free(f->reason);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    sum->failure_count++;
    sum->failed++;
    return VX_OK;
}

/* ---- thumbnail folders ---------------------------------------------------------------------- */

static char *thumb_dir(run_ctx *c, int64_t video_id, vx_err *err)
{
    return vx_asprintf(err, "%s/v%" PRId64, st_thumbs_dir(c->s), video_id);
}

/* Removes a video's thumbnail folder and the files in it (best effort). */
static void remove_thumbs(run_ctx *c, int64_t video_id)
{
    vx_err err = {0};
    char *dir = thumb_dir(c, video_id, &err);
    if (!dir) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char *p = vx_asprintf(&err, "%s/%s", dir, de->d_name);
            if (p && unlink(p) != 0 && errno != ENOENT)
                vx_log(VX_LOG_WARN, "cannot remove thumbnail %s: %s", p, strerror(errno));
            free(p);
        }
        closedir(d);
        rmdir(dir);
    }
    free(dir);
}

/* Writes bytes to path (temp name + rename, no fsync: a thumbnail is a cache that
 * verify --repair can clean up, and fsyncing one per segment would dominate the run). */
static vx_status write_thumb(const char *path, const uint8_t *bytes, size_t len, vx_err *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return vx_fail(err, VX_EIO, "cannot write thumbnail %s: %s", tmp, strerror(errno));
    size_t n = fwrite(bytes, 1, len, f);
    int bad = n != len || fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        vx_status st = vx_fail(err, VX_EIO, "cannot write thumbnail %s: %s", path, strerror(errno));
        unlink(tmp);
        return st;
    }
    return VX_OK;
}

/* ---- phase 1: the library ------------------------------------------------------------------ */

static vx_status resolve_library(run_ctx *c, vx_err *err)
{
    const idx_options *o = c->o;
    idx_summary *sum = c->sum;
    st_library lib;
    vx_status st;
    if (o->root) {
        char abs[PATH_MAX];
        /* A URL library's root ends in '/' (a manifest's is its own name); the default name
         * is its last path component (or the host). */
        if ((st = idx__root_absolute(o->root, abs, sizeof abs, err))) return st;
        struct stat sb;
        if (!idx__is_url(abs) && (stat(abs, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return vx_fail(err, VX_EINVAL,
                           "%s is not a folder (give the folder that holds the "
                           "videos)",
                           o->root);
        const char *name = o->library;
        char url_name[256];
        if (!name && idx__is_url(abs)) {
            /* "http://host/a/b/" -> "b"; "http://host/" -> "host"; "http://host/a/list.txt"
             * -> "list.txt" */
            size_t end = strlen(abs) - (abs[strlen(abs) - 1] == '/'), start = end;
            while (start > 0 && abs[start - 1] != '/')
                start--;
            snprintf(url_name, sizeof url_name, "%.*s", (int)(end - start), abs + start);
            for (char *q = url_name; *q; q++)
                if (*q == ':') *q = '-'; /* host:port */
            name = url_name[0] ? url_name : "web";
        }
        if (!name) {
            name = strrchr(abs, '/');
            name = name && name[1] ? name + 1 : "root";
        }
        if (!(sum->library = vx_strdup(name, err)) || !(sum->root = vx_strdup(abs, err)))
            return VX_ENOMEM;
        st = st_library_find(c->s, name, &lib, err);
        if (st == VX_OK) {
            int same = strcmp(lib.root, abs) == 0;
            int64_t id = lib.id;
            char other[PATH_MAX];
            snprintf(other, sizeof other, "%s", lib.root);
            st_library_clear(&lib);
            if (!same)
                return vx_fail(err, VX_EINVAL,
                               "library '%s' already exists with the folder %s; choose another "
                               "name with --library",
                               name, other);
            c->library_id = id;
        } else if (st == VX_ENOTFOUND) {
            vx_err_clear(err);
            /* Created once its first crawl succeeded, so an unreachable root leaves no
             * empty library behind. */
            c->create_library = !o->dry_run;
        } else {
            return st;
        }
    } else {
        if (!o->library)
            return vx_fail(err, VX_EINVAL, "give a folder to index or --library NAME to re-crawl");
        st = st_library_find(c->s, o->library, &lib, err);
        if (st == VX_ENOTFOUND)
            return vx_fail(err, VX_ENOTFOUND, "no library named '%s'; give its folder to create it",
                           o->library);
        if (st) return st;
        c->library_id = lib.id;
        sum->library = lib.name;
        sum->root = lib.root;
        lib.name = lib.root = NULL;
        st_library_clear(&lib);
    }
    sum->library_id = c->library_id;
    return VX_OK;
}

/* ---- phase 2: what the catalog knows -------------------------------------------------------- */

static int collect_known(void *ctx, const st_video *v)
{
    run_ctx *c = ctx;
    if (c->known_count == c->known_cap) {
        size_t ncap = c->known_cap ? c->known_cap * 2 : 64;
        known_video *grown = realloc(c->known, ncap * sizeof *grown);
        if (!grown) return c->known_oom = 1;
        c->known = grown;
        c->known_cap = ncap;
    }
    known_video *k = &c->known[c->known_count];
    memset(k, 0, sizeof *k);
    k->location = strdup(v->location);
    k->content_hash = v->content_hash ? strdup(v->content_hash) : NULL;
    k->etag = v->etag ? strdup(v->etag) : NULL;
    if (!k->location || (v->content_hash && !k->content_hash) || (v->etag && !k->etag)) {
        free(k->location);
        free(k->content_hash);
        free(k->etag);
        return c->known_oom = 1;
    }
    k->id = v->id;
    k->size_bytes = v->size_bytes;
    k->mtime_ms = v->mtime_ms;
    k->status = v->status;
    c->known_count++;
    return 0;
}

static int cmp_known_location(const void *a, const void *b)
{
    return strcmp(((const known_video *)a)->location, ((const known_video *)b)->location);
}

static known_video *find_known(run_ctx *c, const char *location)
{
    if (c->known_count == 0) return NULL; /* bsearch wants a non-NULL base */
    known_video key = {.location = (char *)location};
    return bsearch(&key, c->known, c->known_count, sizeof *c->known, cmp_known_location);
}

static vx_status load_known(run_ctx *c, vx_err *err)
{
    if (!c->library_id) return VX_OK;
    vx_status st = st_video_each(c->s, c->library_id, collect_known, c, err);
    if (st) return st;
    if (c->known_oom) return vx_fail(err, VX_ENOMEM, "out of memory reading the catalog");
    if (c->known_count) qsort(c->known, c->known_count, sizeof *c->known, cmp_known_location);
    return VX_OK;
}

/* ---- phase 3: crawl and decide ------------------------------------------------------------ */

static int collect_entry(void *ctx, const idx_entry *e)
{
    run_ctx *c = ctx;
    if (stop_requested(c->o)) return 1;
    if (c->plan_count == c->plan_cap) {
        size_t ncap = c->plan_cap ? c->plan_cap * 2 : 64;
        plan_item *grown = realloc(c->plan, ncap * sizeof *grown);
        if (!grown) return 1;
        c->plan = grown;
        c->plan_cap = ncap;
    }
    plan_item *p = &c->plan[c->plan_count];
    memset(p, 0, sizeof *p);
    p->location = strdup(e->location);
    p->path = strdup(e->local_path);
    p->etag = e->etag ? strdup(e->etag) : NULL;
    if (!p->location || !p->path || (e->etag && !p->etag)) {
        free(p->location);
        free(p->path);
        free(p->etag);
        return 1;
    }
    p->not_modified = e->not_modified;
    p->size_bytes = e->size_bytes;
    p->mtime_ms = e->mtime_ms;
    p->kind = e->kind;
    c->plan_count++;
    return 0;
}

/* The crawl's conditional requests: what the catalog holds for a location. */
static int known_validators(void *ctx, const char *location, int64_t *size_bytes, int64_t *mtime_ms,
                            const char **etag)
{
    known_video *k = find_known(ctx, location);
    if (!k) return 0;
    *size_bytes = k->size_bytes;
    *mtime_ms = k->mtime_ms;
    *etag = k->etag;
    return 1;
}

/* The request limits of HTTP(S) work from the run's options. */
static idx__http_limits http_limits(const idx_options *o)
{
    idx__http_limits l = {o->http_timeout_ms, o->http_retries, o->max_size_bytes};
    return l;
}

/* With a model: does this indexed video lack vectors for it? Fills segs for embedding. A
 * video is committed whole, so its last window having a vector means all have one. */
static vx_status lacks_vectors(run_ctx *c, int64_t video_id, int *lacks, vx_err *err)
{
    *lacks = 0;
    st_segment *segs = NULL;
    size_t n = 0;
    vx_status st = st_segment_list(c->s, video_id, ST_LEVEL_WINDOW, &segs, &n, err);
    if (st) return st;
    if (n > 0) {
        float *v = vx_calloc_array((size_t)c->dim, sizeof *v, err);
        if (!v) {
            st_segments_free(segs, n);
            return VX_ENOMEM;
        }
        st = st_embedding_get(c->s, segs[n - 1].id, c->model_id, MODALITY_VISION, c->dim, v, err);
        free(v);
        if (st == VX_ENOTFOUND) {
            *lacks = 1;
            st = VX_OK;
            vx_err_clear(err);
        }
    }
    st_segments_free(segs, n);
    return st;
}

/* The content hash of a file or of a URL (through a temporary copy of its two ends, fetched
 * with Range requests: the hash reads no more). */
static vx_status content_hash(const idx_options *o, const char *path, int64_t expect_size,
                              char hex[MEDIA_CONTENT_HASH_HEX], vx_err *err)
{
    if (!idx__is_url(path)) return media_content_hash(path, NULL, hex, err);
    char *local = NULL;
    idx__http_limits lim = http_limits(o);
    vx_status st =
        idx__http_fetch_ends(path, expect_size, MEDIA_HASH_SPAN_BYTES, &lim, &local, err);
    if (st) return st;
    st = media_content_hash(local, NULL, hex, err);
    unlink(local);
    free(local);
    return st;
}

static vx_status hash_item(const idx_options *o, plan_item *p)
{
    vx_err herr = {0};
    vx_status st = content_hash(o, p->path, p->size_bytes, p->hash, &herr);
    if (st) {
        p->act = ACT_FAILED;
        p->error = strdup(herr.msg);
        return st;
    }
    return VX_OK;
}

/* Orders pointers to known videos by (size, content hash). */
static int cmp_content(const void *a, const void *b)
{
    const known_video *x = *(known_video *const *)a, *y = *(known_video *const *)b;
    if (x->size_bytes != y->size_bytes) return x->size_bytes < y->size_bytes ? -1 : 1;
    return strcmp(x->content_hash, y->content_hash);
}

/* Is there a move candidate of this size? (cand sorted by size, then hash) */
static int size_in(known_video *const *cand, size_t ncand, int64_t size_bytes)
{
    size_t lo = 0, hi = ncand;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cand[mid]->size_bytes < size_bytes)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ncand && cand[lo]->size_bytes == size_bytes;
}

/* Decides what to do with each crawled file:
 *   pass 1: pair each file with its catalog row by location (marks the rows seen);
 *   pass 2: the move candidates: indexed rows whose location the crawl did not see, sorted
 *           by (size, hash);
 *   pass 3: identity (one stat, a hash only when size or mtime differ) for known files;
 *           probing for new files of unknown type; new files are hashed here only when a
 *           candidate has their size — otherwise the decoder hashes them, in parallel;
 *   pass 4: a new file whose (size, hash) equals a candidate is that video, moved. */
static vx_status decide(run_ctx *c, vx_err *err)
{
    for (size_t i = 0; i < c->plan_count; i++) {
        plan_item *p = &c->plan[i];
        known_video *k = find_known(c, p->location);
        if (k) {
            k->seen = 1;
            p->known = k;
            p->video_id = k->id;
        }
    }
    size_t ncand = 0;
    for (size_t j = 0; j < c->known_count; j++) {
        known_video *k = &c->known[j];
        if (!k->seen && k->status == ST_VIDEO_INDEXED && k->content_hash) ncand++;
    }
    known_video **cand = vx_calloc_array(ncand ? ncand : 1, sizeof *cand, err);
    if (!cand) return VX_ENOMEM;
    ncand = 0;
    for (size_t j = 0; j < c->known_count; j++) {
        known_video *k = &c->known[j];
        if (!k->seen && k->status == ST_VIDEO_INDEXED && k->content_hash) cand[ncand++] = k;
    }
    if (ncand) qsort(cand, ncand, sizeof *cand, cmp_content);

    vx_status st = VX_OK;
    for (size_t i = 0; i < c->plan_count && !st; i++) {
        if (stop_requested(c->o)) {
            st = vx_fail(err, VX_EINTERRUPTED, "stopped while comparing files with the catalog");
            break;
        }
        plan_item *p = &c->plan[i];
        known_video *k = p->known;
        if (c->o->max_size_bytes > 0 && p->size_bytes > c->o->max_size_bytes) {
            if (k && k->status == ST_VIDEO_FAILED && k->size_bytes == p->size_bytes &&
                k->mtime_ms == p->mtime_ms) {
                p->act = ACT_FAILED_UNCHANGED;
                continue;
            }
            p->act = ACT_FAILED;
            p->error = vx_asprintf(
                NULL, "%s: %" PRId64 " bytes, over the size cap of %" PRId64 " bytes (--max-size)",
                p->location, p->size_bytes, c->o->max_size_bytes);
            continue;
        }
        if (k) {
            idx_identity stored = {k->size_bytes, k->mtime_ms, k->content_hash};
            idx_identity seen = {p->size_bytes, p->mtime_ms, NULL};
            int both_etags = k->etag && p->etag;
            idx_match m;
            if (p->not_modified || (both_etags && !strcmp(k->etag, p->etag)))
                m = IDX_MATCH_SAME; /* the server vouches for it */
            else if (both_etags)
                m = IDX_MATCH_NEEDS_HASH; /* a new validator: look at the bytes */
            else
                m = idx_identity_match(&stored, &seen);
            if (m == IDX_MATCH_NEEDS_HASH) {
                if (hash_item(c->o, p)) continue;
                m = k->content_hash && k->size_bytes == p->size_bytes &&
                            !strcmp(k->content_hash, p->hash)
                        ? IDX_MATCH_SAME
                        : IDX_MATCH_CHANGED;
                p->touched = m == IDX_MATCH_SAME;
            } else if (k->content_hash) {
                snprintf(p->hash, sizeof p->hash, "%s", k->content_hash);
            }
            if (m == IDX_MATCH_SAME &&
                (k->size_bytes != p->size_bytes || k->mtime_ms != p->mtime_ms ||
                 (p->etag && (!k->etag || strcmp(k->etag, p->etag)))))
                p->touched = 1;
            if (m == IDX_MATCH_CHANGED) {
                p->act = ACT_CHANGED;
            } else if (k->status == ST_VIDEO_FAILED) {
                p->act = ACT_FAILED_UNCHANGED;
            } else if (k->status == ST_VIDEO_INDEXED) {
                p->act = ACT_UNCHANGED;
                if (c->model_id) {
                    int lacks;
                    if ((st = lacks_vectors(c, k->id, &lacks, err))) break;
                    if (lacks) p->act = ACT_EMBED;
                }
            } else {
                p->act = ACT_RESUME; /* pending: hashed by the decoder if need be */
            }
            continue;
        }
        if (p->kind == IDX_FILE_UNKNOWN) {
            /* Recognised by probing, not by name. */
            media_reader *r = NULL;
            vx_err perr = {0};
            if (media_open(p->path, MEDIA_NEED_VIDEO, &r, &perr) != VX_OK) {
                vx_log(VX_LOG_DEBUG, "not a video: %s", perr.msg);
                p->act = ACT_NOT_VIDEO;
                continue;
            }
            media_close(r);
        }
        p->act = ACT_NEW;
        if (size_in(cand, ncand, p->size_bytes)) hash_item(c->o, p);
    }

    for (size_t i = 0; i < c->plan_count && !st; i++) {
        plan_item *p = &c->plan[i];
        if (p->act != ACT_NEW || !p->hash[0]) continue;
        known_video key = {.size_bytes = p->size_bytes, .content_hash = p->hash}, *kp = &key;
        known_video **hit = bsearch(&kp, cand, ncand, sizeof *cand, cmp_content);
        if (!hit) continue;
        /* Copies of one file: take the first unclaimed one of the equal run. */
        while (hit > cand && !cmp_content(hit - 1, &kp))
            hit--;
        for (; hit < cand + ncand && !cmp_content(hit, &kp); hit++) {
            if ((*hit)->claimed) continue;
            (*hit)->claimed = 1;
            p->known = *hit;
            p->act = ACT_MOVED;
            break;
        }
    }
    free(cand);
    return st;
}

/* A location under a folder the crawl could not read is kept, not deleted. */
static int under_unreadable(const idx_crawl_stats *cs, const char *location)
{
    for (size_t i = 0; i < cs->unreadable_count; i++) {
        size_t n = strlen(cs->unreadable[i]);
        if (!strncmp(location, cs->unreadable[i], n) &&
            (location[n] == '/' || !location[n] || (n && cs->unreadable[i][n - 1] == '/')))
            return 1;
    }
    return 0;
}

/* ---- phase 5: writes before decoding ------------------------------------------------------ */

static vx_status upsert_identity(run_ctx *c, plan_item *p, st_video_status status,
                                 const char *error, int64_t duration_ms, const char *streams,
                                 vx_err *err)
{
    st_video v;
    memset(&v, 0, sizeof v);
    v.library_id = c->library_id;
    v.location = p->location;
    v.size_bytes = p->size_bytes;
    v.mtime_ms = p->mtime_ms;
    v.content_hash = p->hash[0] ? p->hash : NULL;
    v.etag = p->etag;
    v.duration_ms = duration_ms;
    v.streams_json = (char *)streams;
    v.status = status;
    v.last_error = (char *)error;
    return st_video_upsert(c->s, &v, &p->video_id, err);
}

/* Same content, new size/mtime: store them so the next run decides with one stat. */
static vx_status store_touched(run_ctx *c, plan_item *p, vx_err *err)
{
    st_video v;
    vx_status st = st_video_get(c->s, p->video_id, &v, err);
    if (st) return st;
    v.size_bytes = p->size_bytes;
    v.mtime_ms = p->mtime_ms;
    if (p->etag) {
        char *etag = strdup(p->etag);
        if (!etag) {
            st_video_clear(&v);
            return vx_fail(err, VX_ENOMEM, "out of memory");
        }
        free(v.etag);
        v.etag = etag;
    }
    st = st_video_upsert(c->s, &v, NULL, err);
    st_video_clear(&v);
    return st;
}

static vx_status write_plan(run_ctx *c, vx_err *err)
{
    vx_status st = st_begin(c->s, err);
    if (st) return st;
    for (size_t i = 0; i < c->plan_count && !st; i++) {
        plan_item *p = &c->plan[i];
        switch (p->act) {
        case ACT_UNCHANGED:
        case ACT_FAILED_UNCHANGED:
        case ACT_EMBED:
            if (p->touched) st = store_touched(c, p, err);
            break;
        case ACT_CHANGED:
        case ACT_RESUME:
            if ((st = st_video_clear_segments(c->s, p->video_id, err))) break;
            st = upsert_identity(c, p, ST_VIDEO_PENDING, NULL, 0, NULL, err);
            break;
        case ACT_NEW:
            st = upsert_identity(c, p, ST_VIDEO_PENDING, NULL, 0, NULL, err);
            break;
        case ACT_FAILED:
            if (p->video_id && (st = st_video_clear_segments(c->s, p->video_id, err))) break;
            st = upsert_identity(c, p, ST_VIDEO_FAILED, p->error, 0, NULL, err);
            break;
        case ACT_MOVED:
        case ACT_NOT_VIDEO:
            break;
        }
    }
    for (size_t j = 0; j < c->known_count && !st; j++) {
        known_video *k = &c->known[j];
        if (k->seen || k->claimed || under_unreadable(&c->sum->crawl, k->location)) continue;
        st = st_video_delete(c->s, k->id, err);
    }
    if (!st) st = st_commit(c->s, err);
    if (st) {
        st_rollback(c->s);
        return vx_err_prefix(err, "recording what the crawl found");
    }
    /* After the commit: old thumbnails of changed and deleted videos. */
    for (size_t i = 0; i < c->plan_count; i++)
        if (c->plan[i].act == ACT_CHANGED || c->plan[i].act == ACT_RESUME ||
            (c->plan[i].act == ACT_FAILED && c->plan[i].video_id))
            remove_thumbs(c, c->plan[i].video_id);
    for (size_t j = 0; j < c->known_count; j++) {
        known_video *k = &c->known[j];
        if (k->seen || k->claimed || under_unreadable(&c->sum->crawl, k->location)) continue;
        remove_thumbs(c, k->id);
        c->sum->deleted++;
        vx_log(VX_LOG_DEBUG, "deleted: %s", k->location);
    }
    for (size_t i = 0; i < c->plan_count; i++)
        if (c->plan[i].act == ACT_FAILED) {
            vx_log(VX_LOG_WARN, "failed: %s", c->plan[i].error);
            if ((st = add_failure(c->sum, c->plan[i].location, c->plan[i].error, err))) return st;
        }
    return VX_OK;
}

/* Moves a video to its new location in place (st_video_relocate): its id, segments, vectors,
 * texts and thumbnails (named by video id) stay, so the generation and the indexes do not
 * change. The "title" texts, being the file name, take the new one; all in one transaction. */
static vx_status move_video(run_ctx *c, plan_item *p, vx_err *err)
{
    known_video *k = p->known;
    const char *base = strrchr(p->location, '/');
    base = base && base[1] ? base + 1 : p->location;
    char *title = idx__text_clean(base, strlen(base), IDX_TEXT_PIECE_MAX);
    if (!title) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status st = st_begin(c->s, err);
    if (!st) {
        if (!(st = st_video_relocate(c->s, k->id, c->library_id, p->location, p->size_bytes,
                                     p->mtime_ms, err)) &&
            !(st = st_text_rewrite(c->s, k->id, "title", title, err)))
            st = st_commit(c->s, err);
        if (st) st_rollback(c->s);
    }
    free(title);
    if (st) return vx_err_prefix(err, "moving %s to %s", k->location, p->location);
    p->video_id = k->id;
    c->sum->moved++;
    vx_log(VX_LOG_DEBUG, "moved: %s -> %s", k->location, p->location);
    return VX_OK;
}

/* ---- phase 6: the pipeline ---------------------------------------------------------------- */

/* A short JSON description of the streams for the catalog. */
static char *streams_json(const media_info *info, vx_err *err)
{
    const media_video_info *v = &info->video;
    return vx_asprintf(err,
                       "{\"container\":\"%s\",\"video\":{\"codec\":\"%s\",\"width\":%d,"
                       "\"height\":%d,\"fps\":%.3f,\"rotation\":%d},\"audio_streams\":%d,"
                       "\"subtitle_streams\":%d}",
                       info->container, v->codec_name, v->upright_width_px, v->upright_height_px,
                       v->avg_fps, v->rotation_deg, info->audio_count, info->subtitle_count);
}

static msg *msg_new(msg_kind kind, size_t work)
{
    msg *m = calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
        m->work = work;
    }
    return m;
}

static void msg_free(msg *m)
{
    if (!m) return;
    free(m->streams_json);
    free(m->embedding);
    free(m->samples);
    free(m->jpeg);
    free(m->body);
    free(m->times);
    free(m->error);
    free(m);
}

/* Sends END for work w (status ok or the error in err). Never fails: a message that cannot
 * be allocated is retried, since the store waits for every END. */
static void send_end(run_ctx *c, size_t w, vx_status status, const vx_err *err)
{
    msg *m;
    while (!(m = msg_new(MSG_END, w)))
        usleep(1000);
    m->status = status;
    if (status) m->error = strdup(err->msg[0] ? err->msg : vx_strerror(status));
    idx_queue_push(&c->clips, m);
}

/* ---- text modalities (decoder side) -------------------------------------------------------- */

/* A decoder's text engines, created when first needed. */
typedef struct decoder_text {
    idx_asr *asr;
    idx_ocr *ocr;
    int asr_failed, ocr_failed; /* creation failed: logged once, not retried */
} decoder_text;

/* Largest sidecar subtitle file read (a feature film's is well under 1 MB). */
#define SIDECAR_MAX_BYTES (64 * 1024 * 1024)

/* Texts of one source gathered per window before they are sent. */
typedef struct win_text {
    vx_buf buf;
    int64_t start_ms, end_ms;
} win_text;

static void win_texts_free(win_text *wt, size_t n)
{
    for (size_t i = 0; wt && i < n; i++)
        vx_buf_free(&wt[i].buf);
    free(wt);
}

/* Appends a cleaned piece to window i's text (skipped when the window already holds it, as a
 * cue repeated by a second subtitle track; cut at IDX_TEXT_BODY_MAX). */
static vx_status win_text_add(win_text *t, const char *piece, int64_t start_ms, int64_t end_ms,
                              int dedupe, vx_err *err)
{
    if (!*piece) return VX_OK;
    if (dedupe && t->buf.len && strstr(t->buf.data, piece)) return VX_OK;
    size_t n = strlen(piece);
    if (t->buf.len + n + 1 > IDX_TEXT_BODY_MAX) return VX_OK;
    if (t->buf.len == 0 || start_ms < t->start_ms) t->start_ms = start_ms;
    if (t->buf.len == 0 || end_ms > t->end_ms) t->end_ms = end_ms;
    return vx_buf_printf(&t->buf, err, "%s%s", t->buf.len ? " " : "", piece);
}

/* Sends a TEXT message (takes body). */
static vx_status send_text(run_ctx *c, size_t w, size_t seg, const char *source, int64_t start_ms,
                           int64_t end_ms, char *body, vx_err *err)
{
    msg *m = msg_new(MSG_TEXT, w);
    if (!m) {
        free(body);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    m->seg = seg;
    m->source = source;
    m->start_ms = start_ms;
    m->end_ms = end_ms;
    m->body = body;
    idx_queue_push(&c->clips, m);
    return VX_OK;
}

/* Appends every window's gathered text of one source to its speech text (speech may be NULL:
 * no text tower). */
static vx_status speech_add(win_text *speech, const win_text *wt, size_t nwin, vx_err *err)
{
    vx_status st = VX_OK;
    for (size_t i = 0; speech && i < nwin && !st; i++)
        if (wt[i].buf.len)
            st = win_text_add(&speech[i], wt[i].buf.data, wt[i].start_ms, wt[i].end_ms, 0, err);
    return st;
}

/* Sends every window's gathered text of one source. */
static vx_status send_win_texts(run_ctx *c, size_t w, win_text *wt, size_t nwin, const char *source,
                                vx_err *err)
{
    for (size_t i = 0; i < nwin; i++) {
        if (!wt[i].buf.len) continue;
        char *body = wt[i].buf.data;
        wt[i].buf.data = NULL;
        wt[i].buf.len = wt[i].buf.cap = 0;
        vx_status st = send_text(c, w, i, source, wt[i].start_ms, wt[i].end_ms, body, err);
        if (st) return st;
    }
    return VX_OK;
}

/* Adds the cues of one reader's text subtitle streams to the windows they overlap. Cues with
 * broken timing are repaired (end before start: a point; before 0: at 0) or, past the end of
 * the video, dropped. */
static vx_status add_cues(media_reader *sr, const char *what, const idx_window *wins, size_t nwin,
                          int64_t duration_ms, win_text *wt, text_stats *ts, vx_err *err)
{
    const media_info *info = media_get_info(sr);
    for (int k = 0; k < info->subtitle_count; k++) {
        media_subtitle_cues cues = {0};
        vx_err serr = {0};
        vx_status st = media_read_subtitles(sr, k, &cues, &serr);
        if (st == VX_ENOMEM) {
            media_subtitle_cues_free(&cues);
            *err = serr;
            return st;
        }
        if (st) {
            vx_log(st == VX_EUNSUPPORTED ? VX_LOG_DEBUG : VX_LOG_WARN, "subtitles of %s: %s", what,
                   serr.msg);
            media_subtitle_cues_free(&cues);
            continue;
        }
        for (int q = 0; q < cues.count && !st; q++) {
            const media_subtitle_cue *cue = &cues.cues[q];
            if (!cue->text) continue;
            int64_t s0 = cue->start_ms < 0 ? 0 : cue->start_ms;
            int64_t e0 = cue->end_ms < s0 ? s0 : cue->end_ms;
            if (s0 > duration_ms + 1000) continue;
            if (e0 > duration_ms) e0 = duration_ms > s0 ? duration_ms : s0;
            char *text = idx__text_clean(cue->text, strlen(cue->text), IDX_TEXT_PIECE_MAX);
            if (!text) {
                st = vx_fail(err, VX_ENOMEM, "out of memory");
                break;
            }
            ts->cues++;
            int64_t e1 = e0 > s0 ? e0 : s0 + 1;
            for (size_t i = 0; i < nwin && !st; i++) {
                if (s0 < wins[i].end_ms && e1 > wins[i].start_ms)
                    st = win_text_add(&wt[i], text, s0, e0, 1, err);
                /* a cue past the last window's end (timing slightly off) goes to the last */
                else if (i + 1 == nwin && s0 >= wins[i].end_ms)
                    st = win_text_add(&wt[i], text, s0, e0, 1, err);
            }
            free(text);
        }
        media_subtitle_cues_free(&cues);
        if (st) return st;
    }
    return VX_OK;
}

/* Subtitles: the video's own text streams, then sidecar files beside it (local files). */
static vx_status video_subtitles(run_ctx *c, size_t w, media_reader *r, const char *path, int local,
                                 const idx_window *wins, size_t nwin, int64_t duration_ms,
                                 text_stats *ts, win_text *speech, vx_err *err)
{
    win_text *wt = calloc(nwin ? nwin : 1, sizeof *wt);
    if (!wt) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status st = add_cues(r, path, wins, nwin, duration_ms, wt, ts, err);
    char **side = NULL;
    size_t nside = 0;
    if (!st && local) st = idx__sidecar_subtitles(path, &side, &nside, err);
    for (size_t i = 0; i < nside && !st; i++) {
        /* Read whole (bounded) so a legacy encoding can be converted before FFmpeg sees it. */
        media_reader *sr = NULL;
        vx_err oerr = {0};
        char *bytes = NULL, *utf8 = NULL;
        size_t len = 0, ulen = 0;
        if (vx_read_file(side[i], SIDECAR_MAX_BYTES, &bytes, &len, &oerr) ||
            idx__subtitle_bytes_utf8(bytes, len, &utf8, &ulen, &oerr) ||
            media_open_memory(utf8 ? utf8 : bytes, utf8 ? ulen : len, side[i], 0, &sr, &oerr)) {
            vx_log(VX_LOG_WARN, "subtitle file %s: %s", side[i], oerr.msg);
        } else {
            st = add_cues(sr, side[i], wins, nwin, duration_ms, wt, ts, err);
        }
        media_close(sr);
        free(bytes);
        free(utf8);
    }
    idx__strings_free(side, nside);
    if (!st) st = speech_add(speech, wt, nwin, err);
    if (!st) st = send_win_texts(c, w, wt, nwin, "subtitle", err);
    win_texts_free(wt, nwin);
    return st;
}

/* Speech: words recognised over the whole video, each in the windows its middle falls in. */
static vx_status video_speech(run_ctx *c, size_t w, media_reader *r, decoder_text *tx,
                              const idx_window *wins, size_t nwin, int64_t duration_ms,
                              text_stats *ts, win_text *speech, vx_err *err)
{
    if (!tx->asr && !tx->asr_failed) {
        vx_err aerr = {0};
        if (idx__asr_create(c->o->asr_model_dir, &tx->asr, &aerr)) {
            vx_log(VX_LOG_WARN, "%s", aerr.msg);
            tx->asr_failed = 1;
            if (aerr.status == VX_ENOMEM) return vx_fail(err, VX_ENOMEM, "%s", aerr.msg);
        }
    }
    if (!tx->asr) return VX_OK;
    idx_words words = {0};
    vx_err aerr = {0};
    vx_status st = idx__asr_video(tx->asr, r, duration_ms, &words, &ts->asr, &aerr);
    if (st) {
        idx__words_free(&words);
        if (st == VX_ENOMEM) {
            *err = aerr;
            return st;
        }
        vx_log(VX_LOG_WARN, "speech recognition: %s", aerr.msg);
        return VX_OK;
    }
    /* per window: the words joined by spaces, and their times (word i <-> times[i]) */
    win_text *wt = calloc(nwin ? nwin : 1, sizeof *wt);
    st_word_time **times = calloc(nwin ? nwin : 1, sizeof *times);
    size_t *ntimes = calloc(nwin ? nwin : 1, sizeof *ntimes);
    if (!wt || !times || !ntimes) {
        free(wt);
        free(times);
        free(ntimes);
        idx__words_free(&words);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    /* pass 1: how many words each window gets (sizes the time arrays); pass 2: fill */
    for (int pass = 0; pass < 2 && !st; pass++) {
        for (size_t i = 0; pass == 1 && i < nwin && !st; i++) {
            if (!ntimes[i]) continue;
            if (!(times[i] = vx_calloc_array(ntimes[i], sizeof **times, err))) st = VX_ENOMEM;
            ntimes[i] = 0;
        }
        for (size_t k = 0; k < words.count && !st; k++) {
            const idx_word *wd = &words.items[k];
            if (!wd->text[0] || strchr(wd->text, ' ')) continue;
            int64_t mid = (wd->start_ms + wd->end_ms) / 2;
            for (size_t i = 0; i < nwin && !st; i++) {
                if (!((mid >= wins[i].start_ms && mid < wins[i].end_ms) ||
                      (i + 1 == nwin && mid >= wins[i].end_ms)))
                    continue;
                if (pass == 0) {
                    ntimes[i]++;
                    continue;
                }
                size_t before = wt[i].buf.len;
                st = win_text_add(&wt[i], wd->text, wd->start_ms, wd->end_ms, 0, err);
                /* a full window (IDX_TEXT_BODY_MAX) takes no more words, nor their times */
                if (!st && wt[i].buf.len != before)
                    times[i][ntimes[i]++] = (st_word_time){wd->start_ms, wd->end_ms};
            }
        }
    }
    idx__words_free(&words);
    if (!st) st = speech_add(speech, wt, nwin, err);
    for (size_t i = 0; i < nwin && !st; i++) {
        if (!wt[i].buf.len) continue;
        msg *m = msg_new(MSG_TEXT, w);
        if (!m) {
            st = vx_fail(err, VX_ENOMEM, "out of memory");
            break;
        }
        m->seg = i;
        m->source = "asr";
        m->start_ms = wt[i].start_ms;
        m->end_ms = wt[i].end_ms;
        m->body = wt[i].buf.data;
        m->times = times[i];
        m->ntimes = ntimes[i];
        wt[i].buf.data = NULL;
        wt[i].buf.len = wt[i].buf.cap = 0;
        times[i] = NULL;
        idx_queue_push(&c->clips, m);
    }
    for (size_t i = 0; i < nwin; i++)
        free(times[i]);
    free(times);
    free(ntimes);
    win_texts_free(wt, nwin);
    return st;
}

/* On-screen text of one frame of window seg. */
static vx_status frame_text(run_ctx *c, size_t w, size_t seg, const idx_window *win,
                            const media_frames *frames, int t, decoder_text *tx, text_stats *ts,
                            vx_err *err)
{
    if (!tx->ocr) return VX_OK;
    int64_t t0 = vx_now_ns();
    char *text = NULL;
    int nwords = 0;
    vx_status st = idx__ocr_frame(tx->ocr, media_frames_at(frames, t), frames->width_px,
                                  frames->height_px, &text, &nwords, err);
    ts->ocr_ns += vx_now_ns() - t0;
    ts->ocr_frames++;
    if (st) return st;
    ts->ocr_words += nwords;
    if (!*text) {
        free(text);
        return VX_OK;
    }
    return send_text(c, w, seg, "ocr", win->start_ms, win->end_ms, text, err);
}

/* Sends a window's speech text to the text tower (copies text). */
static vx_status send_speech(run_ctx *c, size_t w, size_t seg, const char *text, vx_err *err)
{
    msg *m = msg_new(MSG_SPEECH, w);
    if (!m || !(m->body = strdup(text))) {
        msg_free(m);
        return vx_fail(err, VX_ENOMEM, "out of memory");
    }
    m->seg = seg;
    idx_queue_push(&c->clips, m);
    return VX_OK;
}

/* Each window's audio (at most what the audio tower looks at) to the audio tower. A window
 * past the end of the audio gets no vector; audio that cannot be decoded is a warning, never
 * the video's failure (its other modalities still count). */
static vx_status video_audio(run_ctx *c, size_t w, media_reader *r, const char *path,
                             const idx_window *wins, size_t nwin, vx_err *err)
{
    for (size_t i = 0; i < nwin; i++) {
        int64_t end_ms = wins[i].end_ms;
        if (end_ms - wins[i].start_ms > c->audio_max_ms)
            end_ms = wins[i].start_ms + c->audio_max_ms;
        float *samples = NULL;
        size_t n = 0;
        vx_err aerr = {0};
        vx_status st = media_read_audio_16k_mono(r, wins[i].start_ms, end_ms, &samples, &n, &aerr);
        if (st == VX_ENOMEM) return vx_fail(err, st, "%s", aerr.msg);
        if (st) {
            vx_log(VX_LOG_WARN, "audio of %s: %s; no audio vectors for it", path, aerr.msg);
            return VX_OK;
        }
        if (n == 0) continue;
        msg *m = msg_new(MSG_AUDIO, w);
        if (!m) {
            free(samples);
            return vx_fail(err, VX_ENOMEM, "out of memory");
        }
        m->seg = i;
        m->samples = samples;
        m->nsamples = n;
        idx_queue_push(&c->clips, m);
    }
    return VX_OK;
}

/* Decodes one work item into messages. */
static void decode_one(run_ctx *c, size_t w, media_frames *frames, media_preproc *pp,
                       media_jpeg *jpeg, decoder_text *tx)
{
    work_item *wi = &c->works[w];
    plan_item *p = wi->plan;
    vx_err err = {0};
    vx_status st;
    media_reader *r = NULL;
    idx_window *wins = NULL;
    size_t nwin = 0;
    msg *begin = NULL;
    char *fetched = NULL;    /* temporary copy of a URL */
    win_text *speech = NULL; /* per window: subtitle + speech text, for the text tower */

    const char *local = p->path;
    if (idx__is_url(p->path)) {
        /* FFmpeg reads plain files only: a temporary copy, removed when done. */
        idx__http_limits lim = http_limits(c->o);
        if ((st = idx__http_fetch(p->path, p->size_bytes > 0 ? p->size_bytes : -1, &lim, &fetched,
                                  &err)))
            goto end;
        local = fetched;
    }
    /* New files nobody could have moved are hashed here, in parallel, not while planning. The
     * store reads p->hash only after this video's END (ordered by the queues' mutexes). */
    if (!p->hash[0] && (st = media_content_hash(local, NULL, p->hash, &err))) goto end;
    if ((st = media_open(local, MEDIA_NEED_VIDEO, &r, &err))) goto end;
    const media_info *info = media_get_info(r);
    int64_t duration = info->video.duration_ms > 0 ? info->video.duration_ms : info->duration_ms;
    if (wi->embed_only) {
        nwin = wi->seg_count;
        if (!(wins = vx_calloc_array(nwin ? nwin : 1, sizeof *wins, &err))) {
            st = VX_ENOMEM;
            goto end;
        }
        for (size_t i = 0; i < nwin; i++)
            wins[i] = (idx_window){wi->segs[i].start_ms, wi->segs[i].end_ms};
    } else {
        if (duration <= 0) {
            st = vx_fail(&err, VX_EFORMAT, "%s: the file does not say how long it is", p->path);
            goto end;
        }
        int64_t *cuts = NULL;
        size_t ncuts = 0;
        if (c->o->snap_to_shots) {
            /* A pass of its own before the windows are known; cuts are few (a list of
             * int64), the frames are not kept. */
            vx_err serr = {0};
            st = media_detect_shots(r, NULL, &cuts, &ncuts, &wi->shots, &serr);
            if (st == VX_ENOMEM) {
                vx_fail(&err, st, "%s", serr.msg);
                goto end;
            }
            /* The frames the windows need may still decode: fixed windows, with a warning. */
            if (st) vx_log(VX_LOG_WARN, "%s; fixed windows for it", serr.msg);
            st = VX_OK;
            wi->shot_cuts = (int64_t)ncuts;
        }
        nwin = c->o->snap_to_shots
                   ? idx_windows_snapped(duration, c->o->window_ms, c->o->overlap_ms, cuts, ncuts,
                                         NULL, 0)
                   : idx_windows(duration, c->o->window_ms, c->o->overlap_ms, NULL, 0);
        if (!(wins = vx_calloc_array(nwin ? nwin : 1, sizeof *wins, &err))) {
            free(cuts);
            st = VX_ENOMEM;
            goto end;
        }
        if (c->o->snap_to_shots)
            idx_windows_snapped(duration, c->o->window_ms, c->o->overlap_ms, cuts, ncuts, wins,
                                nwin);
        else
            idx_windows(duration, c->o->window_ms, c->o->overlap_ms, wins, nwin);
        free(cuts);
    }
    if (!(begin = msg_new(MSG_BEGIN, w)) || !(begin->streams_json = streams_json(info, &err))) {
        st = vx_fail(&err, VX_ENOMEM, "out of memory");
        msg_free(begin);
        goto end;
    }
    begin->duration_ms = duration;
    begin->window_count = nwin;
    idx_queue_push(&c->clips, begin);

    int want_thumb = c->o->thumbnails && !wi->embed_only;
    int want_text = !wi->embed_only;
    if (want_text && c->do_ocr && !tx->ocr && !tx->ocr_failed) {
        vx_err oerr = {0};
        if (idx__ocr_create(c->o->ocr_min_confidence, &tx->ocr, &oerr)) {
            vx_log(VX_LOG_WARN, "%s", oerr.msg);
            tx->ocr_failed = 1;
        }
    }
    int want_ocr = want_text && tx->ocr;
    if (want_text && c->txt && !(speech = calloc(nwin ? nwin : 1, sizeof *speech))) {
        st = vx_fail(&err, VX_ENOMEM, "out of memory");
        goto end;
    }
    for (size_t i = 0; i < nwin; i++) {
        msg *m = msg_new(MSG_CLIP, w);
        if (!m) {
            st = vx_fail(&err, VX_ENOMEM, "out of memory");
            goto end;
        }
        m->seg = i;
        m->start_ms = wins[i].start_ms;
        m->end_ms = wins[i].end_ms;
        int thumb_frame = 0;
        if (c->vis) {
            st = media_sample_window(r, m->start_ms, m->end_ms, c->frames, frames, &err);
            if (!st) {
                m->pixels = idx_queue_pop(&c->pool);
                st = media_preproc_frames(pp, frames, m->pixels, &err);
            }
            /* The sampled frame nearest the window's middle. */
            thumb_frame = c->frames / 2;
        } else if (want_thumb || want_ocr) {
            st = media_sample_window(r, m->start_ms, m->end_ms, 1, frames, &err);
        }
        /* The middle rule shows the last frame for times past the end: a window whose
         * frames all come from well before it means the stream stops early (a truncated or
         * damaged file whose header promises more). */
        if (!st && (c->vis || want_thumb || want_ocr) && frames->count > 0 &&
            frames->pts_ms[frames->count - 1] < m->start_ms - TRUNCATION_SLACK_MS)
            st = vx_fail(&err, VX_ECORRUPT,
                         "truncated or damaged: the video stops at %.1f s of the %.1f s the "
                         "file announces",
                         (double)frames->pts_ms[frames->count - 1] / 1000.0,
                         (double)duration / 1000.0);
        if (!st && want_thumb) {
            const uint8_t *bytes;
            size_t len;
            st = media_jpeg_encode(jpeg, media_frames_at(frames, thumb_frame), frames->width_px,
                                   frames->height_px, &bytes, &len, &err);
            if (!st) {
                if (!(m->jpeg = malloc(len))) {
                    st = vx_fail(&err, VX_ENOMEM, "out of memory");
                } else {
                    memcpy(m->jpeg, bytes, len);
                    m->jpeg_len = len;
                }
            }
        }
        if (!st && want_ocr)
            st = frame_text(c, w, i, &wins[i], frames, thumb_frame, tx, &wi->tstats, &err);
        if (st) {
            if (m->pixels) idx_queue_push(&c->pool, m->pixels);
            m->pixels = NULL;
            msg_free(m);
            vx_err_prefix(&err, "window %" PRId64 "-%" PRId64 " ms", wins[i].start_ms,
                          wins[i].end_ms);
            goto end;
        }
        idx_queue_push(&c->clips, m);
    }
    if (want_text && c->do_subtitles)
        st = video_subtitles(c, w, r, local, !fetched, wins, nwin, duration, &wi->tstats, speech,
                             &err);
    if (!st && want_text && c->do_asr && info->audio_count > 0)
        st = video_speech(c, w, r, tx, wins, nwin, duration, &wi->tstats, speech, &err);
    /* Speech vectors: windows with text only. Embed-only videos use the stored texts. */
    for (size_t i = 0; !st && speech && i < nwin; i++)
        if (speech[i].buf.len) st = send_speech(c, w, i, speech[i].buf.data, &err);
    for (size_t i = 0; !st && wi->embed_only && c->txt && wi->speech_texts && i < nwin; i++)
        if (wi->speech_texts[i]) st = send_speech(c, w, i, wi->speech_texts[i], &err);
    if (!st && c->aud && info->audio_count > 0)
        st = video_audio(c, w, r, p->path, wins, nwin, &err);
    if (st) goto end;
    /* A file still being written changes under us: fail it now, retry when it settles. (A
     * URL's copy was checked against the crawled size when fetched.) */
    struct stat sb;
    if (fetched) {
        /* nothing more to check */
    } else if (stat(p->path, &sb) != 0) {
        st = vx_fail(&err, VX_ENOTFOUND, "%s disappeared while being indexed", p->path);
    } else {
        int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        if ((int64_t)sb.st_size != p->size_bytes || mtime != p->mtime_ms)
            st = vx_fail(&err, VX_ESTALE,
                         "%s changed while being indexed (still being written?); it is retried "
                         "when it changes again",
                         p->path);
    }
end:
    if (st && !err.msg[0]) vx_fail(&err, st, "%s: %s", p->path, vx_strerror(st));
    if (st && !strstr(err.msg, p->path)) vx_err_prefix(&err, "%s", p->path);
    free(wins);
    win_texts_free(speech, nwin);
    media_close(r);
    if (fetched) {
        unlink(fetched);
        free(fetched);
    }
    send_end(c, w, st, &err);
}

/* n decoders are done (or never started); the last one closes the clip queue. */
static void decoders_leave(run_ctx *c, int n)
{
    if (atomic_fetch_sub(&c->decoders_left, n) == n) idx_queue_close(&c->clips);
}

static void *decoder_main(void *arg)
{
    run_ctx *c = arg;
    media_frames frames = {0};
    media_preproc *pp = NULL;
    media_jpeg *jpeg = NULL;
    decoder_text tx = {0};
    vx_err err = {0};
    int ok = 1;
    if (c->vis && media_preproc_create(c->image_size, c->image_size, MEDIA_IMAGENET_MEAN,
                                       MEDIA_IMAGENET_STD, &pp, &err))
        ok = 0;
    if (ok && c->o->thumbnails && media_jpeg_create(c->o->thumb_max_px, 5, &jpeg, &err)) ok = 0;
    for (;;) {
        if (stop_requested(c->o) || atomic_load(&c->abandon)) break;
        size_t w = atomic_fetch_add(&c->next_work, 1);
        if (w >= c->work_count) break;
        if (!ok) {
            send_end(c, w, err.status ? err.status : VX_ENOMEM, &err);
            continue;
        }
        decode_one(c, w, &frames, pp, jpeg, &tx);
    }
    idx__asr_free(tx.asr);
    idx__ocr_free(tx.ocr);
    media_frames_free(&frames);
    media_preproc_free(pp);
    media_jpeg_free(jpeg);
    decoders_leave(c, 1);
    return NULL;
}

static void *encoder_main(void *arg)
{
    run_ctx *c = arg;
    msg *m;
    while ((m = idx_queue_pop(&c->clips))) {
        if (m->kind == MSG_CLIP && m->pixels) {
            vx_err err = {0};
            m->embedding = malloc((size_t)c->dim * sizeof(float));
            vx_status st = m->embedding
                               ? enc_vision_forward(c->vis, m->pixels, m->embedding, NULL, &err)
                               : vx_fail(&err, VX_ENOMEM, "out of memory");
            if (st) {
                m->status = st;
                m->error = strdup(err.msg);
                free(m->embedding);
                m->embedding = NULL;
            }
            idx_queue_push(&c->pool, m->pixels);
            m->pixels = NULL;
        } else if ((m->kind == MSG_SPEECH && c->txt) || (m->kind == MSG_AUDIO && c->aud)) {
            /* A tower that fails on one window costs that window's vector, not the video. */
            vx_err err = {0};
            int speech = m->kind == MSG_SPEECH;
            m->embedding = malloc((size_t)(speech ? c->text_dim : c->audio_dim) * sizeof(float));
            vx_status st =
                !m->embedding ? vx_fail(&err, VX_ENOMEM, "out of memory")
                : speech      ? enc_text_embed(c->txt, m->body, strlen(m->body), m->embedding, &err)
                         : enc_audio_forward(c->aud, m->samples, (int64_t)m->nsamples, m->embedding,
                                             NULL, NULL, &err);
            if (st) {
                vx_log(VX_LOG_WARN, "%s vector of window %zu: %s", speech ? "speech" : "audio",
                       m->seg, err.msg);
                free(m->embedding);
                m->embedding = NULL;
            }
            free(m->samples);
            m->samples = NULL;
        }
        idx_queue_push(&c->results, m);
    }
    idx_queue_close(&c->results);
    return NULL;
}

static void free_results(work_item *wi)
{
    for (size_t i = 0; i < wi->res_count; i++) {
        free(wi->res[i].embedding);
        free(wi->res[i].speech);
        free(wi->res[i].audio);
        free(wi->res[i].jpeg);
    }
    free(wi->res);
    wi->res = NULL;
    wi->res_count = 0;
    for (size_t i = 0; i < wi->text_count; i++) {
        free(wi->texts[i].body);
        free(wi->texts[i].times);
    }
    free(wi->texts);
    wi->texts = NULL;
    wi->text_count = wi->text_cap = 0;
    free(wi->streams_json);
    wi->streams_json = NULL;
}

/* A video's texts (subtitles, speech, on-screen text) and its title: the file name, on the
 * first window, timed as the whole video. (Their "speech" vectors are written with the
 * window's other vectors: put_window_vectors.) */
static vx_status commit_texts(run_ctx *c, work_item *wi, const int64_t *sids, int64_t *count,
                              vx_err *err)
{
    vx_status st = VX_OK;
    for (size_t i = 0; i < wi->text_count && !st; i++) {
        const seg_text *t = &wi->texts[i];
        if (t->seg >= wi->res_count || !t->body || !*t->body) continue;
        st = st_text_add_timed(c->s, sids[t->seg], t->source, t->start_ms, t->end_ms, t->body,
                               t->times, t->ntimes, err);
        if (!st) (*count)++;
    }
    if (st || wi->res_count == 0) return st;
    const char *loc = wi->plan->location;
    const char *base = strrchr(loc, '/');
    base = base && base[1] ? base + 1 : loc;
    char *title = idx__text_clean(base, strlen(base), IDX_TEXT_PIECE_MAX);
    if (!title) return vx_fail(err, VX_ENOMEM, "out of memory");
    if (*title) {
        st = st_text_add(c->s, sids[0], "title", 0, wi->duration_ms, title, err);
        if (!st) (*count)++;
    }
    free(title);
    return st;
}

/* A window's speech and audio vectors (the text and audio towers), beside its vision vector:
 * modalities "speech" (search/'s SRCH_SPEECH) and "audio". */
static vx_status put_window_vectors(run_ctx *c, int64_t sid, const seg_result *r, vx_err *err)
{
    vx_status st = VX_OK;
    if (r->speech) {
        st = st_embedding_put(c->s, sid, c->model_id, MODALITY_SPEECH, c->text_dim, r->speech, err);
        if (!st) c->sum->embeddings++;
    }
    if (!st && r->audio) {
        st = st_embedding_put(c->s, sid, c->model_id, MODALITY_AUDIO, c->audio_dim, r->audio, err);
        if (!st) c->sum->embeddings++;
    }
    return st;
}

/* Writes a finished video in one transaction. */
static vx_status commit_video(run_ctx *c, work_item *wi, vx_err *err)
{
    plan_item *p = wi->plan;
    vx_status st;
    char *dir = NULL;
    int64_t *sids = NULL, ntexts = 0;
    int wrote_thumbs = 0;
    if (!wi->embed_only && c->o->thumbnails) {
        remove_thumbs(c, p->video_id);
        if (!(dir = thumb_dir(c, p->video_id, err))) return VX_ENOMEM;
        if ((st = vx_mkdirs(dir, err))) {
            free(dir);
            return st;
        }
        wrote_thumbs = 1;
    }
    if ((st = st_begin(c->s, err))) goto out;
    if (wi->embed_only) {
        for (size_t i = 0; i < wi->res_count && !st; i++) {
            if (wi->res[i].embedding) {
                st = st_embedding_put(c->s, wi->segs[i].id, c->model_id, MODALITY_VISION, c->dim,
                                      wi->res[i].embedding, err);
                if (!st) c->sum->embeddings++;
            }
            if (!st) st = put_window_vectors(c, wi->segs[i].id, &wi->res[i], err);
        }
    } else {
        if ((st = st_video_clear_segments(c->s, p->video_id, err))) goto out;
        if ((st = upsert_identity(c, p, ST_VIDEO_INDEXED, NULL, wi->duration_ms, wi->streams_json,
                                  err)))
            goto out;
        if (!(sids = vx_calloc_array(wi->res_count ? wi->res_count : 1, sizeof *sids, err))) {
            st = VX_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < wi->res_count && !st; i++) {
            seg_result *r = &wi->res[i];
            char name[64];
            snprintf(name, sizeof name, "v%" PRId64 "/%09" PRId64 ".jpg", p->video_id, r->start_ms);
            if (r->jpeg) {
                char *path = vx_asprintf(err, "%s/%s", st_thumbs_dir(c->s), name);
                if (!path) {
                    st = VX_ENOMEM;
                    break;
                }
                st = write_thumb(path, r->jpeg, r->jpeg_len, err);
                free(path);
                if (st) break;
            }
            st_segment seg = {.video_id = p->video_id,
                              .level = ST_LEVEL_WINDOW,
                              .start_ms = r->start_ms,
                              .end_ms = r->end_ms,
                              .thumb = r->jpeg ? name : NULL};
            int64_t sid;
            if ((st = st_segment_add(c->s, &seg, &sid, err))) break;
            sids[i] = sid;
            c->sum->segments++;
            if (r->embedding) {
                st = st_embedding_put(c->s, sid, c->model_id, MODALITY_VISION, c->dim, r->embedding,
                                      err);
                c->sum->embeddings++;
            }
            if (!st) st = put_window_vectors(c, sid, r, err);
        }
    }
    if (!st && !wi->embed_only) st = commit_texts(c, wi, sids, &ntexts, err);
    if (!st) st = st_commit(c->s, err);
    if (!st) c->sum->texts += ntexts;
out:
    if (st) {
        st_rollback(c->s);
        if (wrote_thumbs) remove_thumbs(c, p->video_id);
    }
    free(sids);
    free(dir);
    return st;
}

static vx_status finish_video(run_ctx *c, work_item *wi, vx_err *err)
{
    plan_item *p = wi->plan;
    if (!wi->status) {
        for (size_t i = 0; i < wi->res_count; i++)
            if (!wi->res[i].have) {
                wi->status = VX_ECORRUPT;
                wi->error = vx_asprintf(NULL, "%s: window %zu never arrived", p->path, i);
                break;
            }
    }
    /* What the text modalities cost is spent whether or not the video commits. */
    idx_summary *sum = c->sum;
    sum->subtitle_cues += wi->tstats.cues;
    sum->asr_words += wi->tstats.asr.words;
    sum->ocr_words += wi->tstats.ocr_words;
    sum->ocr_frames += wi->tstats.ocr_frames;
    sum->audio_seconds += (double)wi->tstats.asr.audio_ms / 1000.0;
    sum->speech_seconds += (double)wi->tstats.asr.speech_ms / 1000.0;
    sum->asr_seconds += (double)wi->tstats.asr.ns / 1e9;
    sum->ocr_seconds += (double)wi->tstats.ocr_ns / 1e9;
    if (wi->shots.frames > 0) {
        sum->shot_videos++;
        sum->shot_frames += wi->shots.frames;
        sum->shot_cuts += wi->shot_cuts;
        sum->shot_seconds += wi->shots.seconds;
    }
    if (!wi->status) {
        vx_err cerr = {0};
        vx_status st = commit_video(c, wi, &cerr);
        if (st == VX_OK) {
            c->sum->indexed++;
            if (wi->embed_only) c->sum->embedded_only++;
            vx_log(VX_LOG_DEBUG, "indexed: %s (%zu segments)", p->location, wi->res_count);
            return VX_OK;
        }
        /* A catalog error is the run's failure, not the file's. */
        if (st == VX_EDB || st == VX_ENOMEM || st == VX_EINDEX) {
            *err = cerr;
            return st;
        }
        wi->status = st;
        wi->error = strdup(cerr.msg);
    }
    const char *reason = wi->error ? wi->error : vx_strerror(wi->status);
    vx_log(VX_LOG_WARN, "failed: %s", reason);
    vx_status st = st_video_set_status(c->s, p->video_id, ST_VIDEO_FAILED, reason, err);
    if (st) return st;
    return add_failure(c->sum, p->location, reason, err);
}

static double clips_per_s(const run_ctx *c)
{
    double secs = c->t0_ns ? (double)(vx_now_ns() - c->t0_ns) / 1e9 : 0.0;
    return secs > 0 ? (double)c->clips_done / secs : 0.0;
}

/* The caller's progress callback (idx_options.on_progress), from the calling thread. */
static void report_progress(run_ctx *c, const char *current)
{
    if (!c->o->on_progress) return;
    idx_progress p = {.files_total = (int64_t)c->plan_count,
                      .files_done = c->settled_before + c->videos_done,
                      .segments_done = c->sum->segments,
                      .videos_failed = c->sum->failed,
                      .clips_per_s = clips_per_s(c),
                      .current = current};
    if (p.files_done > p.files_total) p.files_done = p.files_total;
    c->o->on_progress(c->o->progress_ctx, &p);
}

static void update_progress(run_ctx *c, const char *current)
{
    report_progress(c, current);
    if (!c->progress) return;
    char text[96];
    snprintf(text, sizeof text, "%" PRId64 " segments, %.1f clips/s", c->sum->segments,
             clips_per_s(c));
    vx_progress_update(c->progress, c->videos_done, text);
}

/* The store loop: runs in the calling thread until the result queue is drained. A catalog
 * failure stops writing but keeps draining (the workers must be able to finish). */
static vx_status store_loop(run_ctx *c, vx_err *err)
{
    vx_status fatal = VX_OK;
    msg *m;
    while ((m = idx_queue_pop(&c->results))) {
        work_item *wi = &c->works[m->work];
        switch (m->kind) {
        case MSG_BEGIN:
            wi->duration_ms = m->duration_ms;
            wi->streams_json = m->streams_json;
            m->streams_json = NULL;
            wi->res = calloc(m->window_count ? m->window_count : 1, sizeof *wi->res);
            if (!wi->res && !wi->status) {
                wi->status = VX_ENOMEM;
                wi->error = strdup("out of memory");
            }
            wi->res_count = wi->res ? m->window_count : 0;
            break;
        case MSG_CLIP:
            c->clips_done++;
            if (m->status && !wi->status) {
                wi->status = m->status;
                wi->error = m->error;
                m->error = NULL;
            }
            if (wi->res && m->seg < wi->res_count) {
                seg_result *r = &wi->res[m->seg];
                r->start_ms = m->start_ms;
                r->end_ms = m->end_ms;
                r->embedding = m->embedding;
                r->jpeg = m->jpeg;
                r->jpeg_len = m->jpeg_len;
                r->have = 1;
                m->embedding = NULL;
                m->jpeg = NULL;
            }
            break;
        case MSG_SPEECH:
        case MSG_AUDIO:
            if (wi->res && m->seg < wi->res_count && m->embedding) {
                float **slot =
                    m->kind == MSG_SPEECH ? &wi->res[m->seg].speech : &wi->res[m->seg].audio;
                free(*slot);
                *slot = m->embedding;
                m->embedding = NULL;
            }
            break;
        case MSG_TEXT:
            if (wi->text_count == wi->text_cap) {
                size_t ncap = wi->text_cap ? wi->text_cap * 2 : 16;
                seg_text *grown = realloc(wi->texts, ncap * sizeof *grown);
                if (!grown) {
                    if (!wi->status) {
                        wi->status = VX_ENOMEM;
                        wi->error = strdup("out of memory");
                    }
                    break;
                }
                wi->texts = grown;
                wi->text_cap = ncap;
            }
            wi->texts[wi->text_count++] =
                (seg_text){m->seg, m->source, m->start_ms, m->end_ms, m->body, m->times, m->ntimes};
            m->body = NULL;
            m->times = NULL;
            break;
        case MSG_END:
            if (m->status && !wi->status) {
                wi->status = m->status;
                wi->error = m->error;
                m->error = NULL;
            }
            if (!fatal && (fatal = finish_video(c, wi, err))) atomic_store(&c->abandon, 1);
            free_results(wi);
            c->videos_done++;
            update_progress(c, wi->plan->location);
            break;
        }
        msg_free(m);
    }
    return fatal;
}

static vx_status run_pipeline(run_ctx *c, vx_err *err)
{
    if (c->work_count == 0) return VX_OK;
    int jobs = c->o->jobs > 0 ? c->o->jobs : vx_cpu_count();
    if ((size_t)jobs > c->work_count) jobs = (int)c->work_count;
    size_t clip_cap = (size_t)jobs * 2 + 2;
    vx_status st;
    if ((st = idx_queue_init(&c->clips, clip_cap, err))) return st;
    if ((st = idx_queue_init(&c->results, clip_cap * 2, err))) goto q1;
    c->tensor_count = c->vis ? clip_cap + (size_t)jobs + 1 : 0;
    if ((st = idx_queue_init(&c->pool, c->tensor_count ? c->tensor_count : 1, err))) goto q2;
    if (c->tensor_count) {
        if (!(c->tensors = vx_calloc_array(c->tensor_count, sizeof *c->tensors, err))) {
            st = VX_ENOMEM;
            goto q3;
        }
        for (size_t i = 0; i < c->tensor_count; i++) {
            if (!(c->tensors[i] = vx_aligned_alloc(64, c->tensor_floats * sizeof(float), err))) {
                st = VX_ENOMEM;
                goto q4;
            }
            idx_queue_push(&c->pool, c->tensors[i]);
        }
    }
    c->progress =
        c->o->progress ? vx_progress_create("videos", (int64_t)c->work_count, NULL) : NULL;
    c->t0_ns = vx_now_ns();
    atomic_store(&c->next_work, 0);
    atomic_store(&c->decoders_left, jobs);
    pthread_t *threads = calloc((size_t)jobs, sizeof *threads);
    pthread_t enc_thread;
    if (!threads) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto q4;
    }
    if (pthread_create(&enc_thread, NULL, encoder_main, c) != 0) {
        free(threads);
        st = vx_fail(err, VX_ENOMEM, "cannot start the encoder thread");
        goto q4;
    }
    int started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, decoder_main, c) != 0) break;
    /* Threads that did not start are not waited for; with none, close the queue here. */
    if (started < jobs) decoders_leave(c, jobs - started);
    if (started == 0) vx_log(VX_LOG_ERROR, "cannot start decoder threads");
    st = store_loop(c, err);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_join(enc_thread, NULL);
    free(threads);
    vx_progress_finish(c->progress);
    c->progress = NULL;
q4:
    for (size_t i = 0; c->tensors && i < c->tensor_count; i++)
        free(c->tensors[i]);
    free(c->tensors);
    c->tensors = NULL;
q3:
    idx_queue_destroy(&c->pool);
q2:
    idx_queue_destroy(&c->results);
q1:
    idx_queue_destroy(&c->clips);
    return st;
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Decides which text modalities run, says so once, and writes the summary's modalities. */
static vx_status choose_text_modalities(run_ctx *c, vx_err *err)
{
    const idx_options *o = c->o;
    c->do_subtitles = o->subtitles != 0;
    const char *asr_why = o->asr ? idx__asr_unavailable(o->asr_model_dir) : "--no-asr";
    const char *ocr_why = o->ocr ? idx__ocr_unavailable() : "--no-ocr";
    c->do_asr = asr_why == NULL;
    c->do_ocr = ocr_why == NULL;
    vx_log(VX_LOG_INFO, "text modalities: %s%s%stitles", c->do_asr ? "speech (pocketsphinx), " : "",
           c->do_ocr ? "on-screen text (tesseract), " : "", c->do_subtitles ? "subtitles, " : "");
    if (o->asr && asr_why) vx_log(VX_LOG_INFO, "speech recognition is off: %s", asr_why);
    if (o->ocr && ocr_why) vx_log(VX_LOG_INFO, "on-screen text is off: %s", ocr_why);
    vx_buf b = {0};
    vx_status st =
        vx_buf_printf(&b, err, "%s%s%s%s%s%stitle", c->o->model_dir ? MODALITY_VISION "," : "",
                      c->txt && (c->do_asr || c->do_subtitles) ? MODALITY_SPEECH "," : "",
                      c->aud ? MODALITY_AUDIO "," : "", c->do_asr ? "asr," : "",
                      c->do_ocr ? "ocr," : "", c->do_subtitles ? "subtitle," : "");
    if (st) return st;
    c->sum->modalities = b.data;
    return VX_OK;
}

/* Opens the model (also in a dry run, which needs its id to tell what lacks vectors) and,
 * for a real run, the one vision encoder instance. */
static vx_status open_model(run_ctx *c, vx_err *err)
{
    if (!c->o->model_dir) {
        vx_log(VX_LOG_INFO,
               "modalities: text only (found with `vidx search`); give --model DIR (or set "
               "VIDX_MODEL) to enable vision");
        return VX_OK;
    }
    vx_status st = enc_model_open(c->o->model_dir, &c->model, err);
    if (st) return st;
    const enc_model_info *info = enc_model_get_info(c->model);
    if (!info->has_vision)
        return vx_fail(err, VX_EUNSUPPORTED, "model %s has no vision tower", info->dir);
    c->model_id = info->model_id;
    c->dim = info->embed_dim;
    if (!(c->sum->model_id = vx_strdup(c->model_id, err))) return VX_ENOMEM;
    enc_precision precision = ENC_PRECISION_FP32;
    if (c->o->precision && (st = enc_precision_parse(c->o->precision, &precision, err))) return st;
    if (c->o->dry_run) return VX_OK;
    /* None asked for: the model's default on this CPU, as `vidx model info` states it. */
    if (!c->o->precision && (st = enc_default_precision(c->model, 1, &precision, NULL, NULL, err)))
        return st;
    if ((st = enc_vision_create(c->model, 0, 0, c->o->encoder_threads, precision, &c->vis, err)))
        return st;
    c->frames = enc_vision_frames(c->vis);
    c->image_size = enc_vision_image_size(c->vis);
    c->dim = enc_vision_embed_dim(c->vis);
    c->tensor_floats =
        (size_t)3 * (size_t)c->frames * (size_t)c->image_size * (size_t)c->image_size;
    vx_log(VX_LOG_INFO, "modalities: vision (model %s: %d frames of %dx%d per window, %d-d, %s)",
           c->model_id, c->frames, c->image_size, c->image_size, c->dim,
           enc_precision_name(precision));
    /* The other towers run in the one encoder thread too, so OpenMP is never oversubscribed.
     * A tower that cannot start costs its modality, not the run. */
    if (info->has_text) {
        vx_err terr = {0};
        if (enc_text_create(c->model, c->o->encoder_threads, &c->txt, &terr)) {
            vx_log(VX_LOG_WARN, "no speech vectors: %s", terr.msg);
        } else {
            c->text_dim = enc_text_embed_dim(c->txt);
            /* Longer texts are cut at the tower's max_len tokens: a window's words fit in
             * most, and the lexical index keeps every word anyway. */
            vx_log(VX_LOG_INFO,
                   "modalities: speech (subtitles and recognised speech through the text tower, "
                   "%d tokens at most, %d-d)",
                   enc_text_max_len(c->txt), c->text_dim);
        }
    }
    if (info->has_audio) {
        vx_err aerr = {0};
        if (enc_audio_create(c->model, c->o->encoder_threads, &c->aud, &aerr)) {
            vx_log(VX_LOG_WARN, "no audio vectors: %s", aerr.msg);
        } else {
            c->audio_dim = enc_audio_embed_dim(c->aud);
            c->audio_max_ms = enc_audio_max_samples(c->aud) * 1000 / 16000;
            if (c->audio_max_ms <= 0) c->audio_max_ms = 1;
            vx_log(VX_LOG_INFO,
                   "modalities: audio (the audio tower on each window's first %.1f s, %d-d)",
                   (double)c->audio_max_ms / 1000.0, c->audio_dim);
        }
    }
    return VX_OK;
}

/* An embed-only video's speech texts, from its stored "subtitle" and "asr" texts in the order
 * a full run joins them (subtitles, then speech). */
static vx_status stored_speech_texts(run_ctx *c, work_item *wi, vx_err *err)
{
    if (!wi->seg_count) return VX_OK;
    if (!(wi->speech_texts = vx_calloc_array(wi->seg_count, sizeof *wi->speech_texts, err)))
        return VX_ENOMEM;
    vx_status st = VX_OK;
    for (size_t i = 0; i < wi->seg_count && !st; i++) {
        st_text *texts = NULL;
        size_t n = 0;
        if ((st = st_text_list(c->s, wi->segs[i].id, &texts, &n, err))) break;
        win_text joined = {0};
        static const char *const order[] = {"subtitle", "asr"};
        for (size_t k = 0; k < 2 && !st; k++)
            for (size_t j = 0; j < n && !st; j++)
                if (!strcmp(texts[j].source, order[k]) && texts[j].body)
                    st = win_text_add(&joined, texts[j].body, 0, 0, 0, err);
        st_texts_free(texts, n);
        wi->speech_texts[i] = joined.buf.data; /* NULL when the window has none */
    }
    return st;
}

static vx_status build_work(run_ctx *c, vx_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < c->plan_count; i++) {
        action a = c->plan[i].act;
        if (a == ACT_NEW || a == ACT_CHANGED || a == ACT_RESUME || a == ACT_EMBED) n++;
    }
    c->works = vx_calloc_array(n ? n : 1, sizeof *c->works, err);
    if (!c->works) return VX_ENOMEM;
    for (size_t i = 0; i < c->plan_count; i++) {
        plan_item *p = &c->plan[i];
        if (p->act != ACT_NEW && p->act != ACT_CHANGED && p->act != ACT_RESUME &&
            p->act != ACT_EMBED)
            continue;
        work_item *wi = &c->works[c->work_count++];
        wi->plan = p;
        if (p->act == ACT_EMBED) {
            wi->embed_only = 1;
            vx_status st =
                st_segment_list(c->s, p->video_id, ST_LEVEL_WINDOW, &wi->segs, &wi->seg_count, err);
            if (!st && c->txt) st = stored_speech_texts(c, wi, err);
            if (st) return st;
        }
    }
    return VX_OK;
}

static void count_plan(run_ctx *c)
{
    idx_summary *sum = c->sum;
    for (size_t i = 0; i < c->plan_count; i++) {
        switch (c->plan[i].act) {
        case ACT_UNCHANGED:
            sum->unchanged++;
            break;
        case ACT_FAILED_UNCHANGED:
            sum->unchanged++;
            sum->failed_unchanged++;
            break;
        case ACT_NOT_VIDEO:
            sum->not_video++;
            break;
        default:
            break;
        }
    }
}

static void free_ctx(run_ctx *c)
{
    for (size_t i = 0; i < c->known_count; i++) {
        free(c->known[i].location);
        free(c->known[i].content_hash);
        free(c->known[i].etag);
    }
    free(c->known);
    for (size_t i = 0; i < c->plan_count; i++) {
        free(c->plan[i].location);
        free(c->plan[i].path);
        free(c->plan[i].etag);
        free(c->plan[i].error);
    }
    free(c->plan);
    for (size_t i = 0; i < c->work_count; i++) {
        for (size_t k = 0; c->works[i].speech_texts && k < c->works[i].seg_count; k++)
            free(c->works[i].speech_texts[k]);
        free(c->works[i].speech_texts);
        st_segments_free(c->works[i].segs, c->works[i].seg_count);
        free_results(&c->works[i]);
        free(c->works[i].error);
    }
    free(c->works);
    enc_vision_free(c->vis);
    enc_text_free(c->txt);
    enc_audio_free(c->aud);
    enc_model_close(c->model);
}

vx_status idx_run(st_store *s, const idx_options *opts, idx_summary *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    idx_options o = opts ? *opts : idx_options_default();
    if (o.window_ms <= 0) o.window_ms = 4000;
    if (o.thumb_max_px <= 0) o.thumb_max_px = 160;
    if (o.overlap_ms < 0 || o.overlap_ms >= o.window_ms)
        return vx_fail(err, VX_EINVAL,
                       "the overlap (%" PRId64 " ms) must be shorter than the "
                       "window (%" PRId64 " ms)",
                       o.overlap_ms, o.window_ms);
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.o = &o;
    c.sum = out;
    out->dry_run = o.dry_run;
    int64_t t0 = vx_now_ns();
    int64_t run_id = 0;
    int crawled = 0; /* the final progress report needs the crawl's total */
    vx_status st;
    if ((st = resolve_library(&c, err))) goto done;
    if ((st = open_model(&c, err))) goto done;
    if ((st = choose_text_modalities(&c, err))) goto done;
    if (!o.dry_run && !c.create_library) {
        if ((st = st_run_begin(s, c.library_id, &run_id, err))) goto done;
        out->run_id = run_id;
        if (o.store_options && (st = idx__library_options_save(s, c.library_id, &o, err)))
            goto done;
    }
    if ((st = load_known(&c, err))) goto done;
    idx_crawl_options co = {.http_timeout_ms = o.http_timeout_ms,
                            .http_retries = o.http_retries,
                            .validator = known_validators,
                            .validator_ctx = &c};
    st = idx_crawl_with(out->root, &co, collect_entry, &c, &out->crawl, err);
    crawled = 1;
    if (st == VX_EINTERRUPTED && !stop_requested(&o))
        st = vx_fail(err, VX_ENOMEM, "out of memory crawling %s", out->root);
    if (st) goto done;
    if (c.create_library) {
        if ((st = st_library_add(s, out->library, out->root, &c.library_id, err))) goto done;
        out->library_id = c.library_id;
        vx_log(VX_LOG_INFO, "new library '%s' at %s", out->library, out->root);
        if ((st = st_run_begin(s, c.library_id, &run_id, err))) goto done;
        out->run_id = run_id;
        if (o.store_options && (st = idx__library_options_save(s, c.library_id, &o, err)))
            goto done;
    }
    out->files = (int64_t)c.plan_count;
    if ((st = decide(&c, err))) goto done;
    count_plan(&c);
    if (o.dry_run) {
        for (size_t i = 0; i < c.plan_count; i++) {
            action a = c.plan[i].act;
            if (a == ACT_NEW || a == ACT_CHANGED || a == ACT_RESUME || a == ACT_EMBED)
                out->indexed++;
            if (a == ACT_MOVED) out->moved++;
            if (a == ACT_FAILED &&
                (st = add_failure(out, c.plan[i].location, c.plan[i].error, err)))
                goto done;
        }
        for (size_t j = 0; j < c.known_count; j++)
            if (!c.known[j].seen && !c.known[j].claimed &&
                !under_unreadable(&out->crawl, c.known[j].location))
                out->deleted++;
        goto done;
    }
    if ((st = write_plan(&c, err))) goto done;
    /* Moves, each in its own transaction; one that fails is indexed as a new file instead. */
    for (size_t i = 0; i < c.plan_count; i++) {
        plan_item *p = &c.plan[i];
        if (p->act != ACT_MOVED) continue;
        vx_err merr = {0};
        p->video_id = 0;
        if (move_video(&c, p, &merr)) {
            vx_log(VX_LOG_WARN, "%s; indexing it as a new file", merr.msg);
            p->act = ACT_NEW;
            if ((st = upsert_identity(&c, p, ST_VIDEO_PENDING, NULL, 0, NULL, err))) break;
        }
    }
    if (st) goto done;
    if ((st = build_work(&c, err))) goto done;
    c.settled_before = (int64_t)(c.plan_count - c.work_count);
    report_progress(&c, NULL);
    if (c.work_count)
        vx_log(
            VX_LOG_INFO,
            "%zu video%s to index (%" PRId64 " unchanged, %" PRId64 " moved, %" PRId64 " deleted)",
            c.work_count, c.work_count == 1 ? "" : "s", out->unchanged, out->moved, out->deleted);
    if (!stop_requested(&o)) st = run_pipeline(&c, err);
    if (!st) {
        vx_err ferr = {0};
        if (st_flush(s, &ferr)) {
            st = ferr.status;
            *err = ferr;
            vx_err_prefix(err, "saving the vector indexes");
        }
    }
done:
    if (!st && stop_requested(&o) && (size_t)c.videos_done < c.work_count) {
        st = vx_fail(err, VX_EINTERRUPTED,
                     "interrupted: %" PRId64 " of %zu videos done; run "
                     "again to continue",
                     c.videos_done, c.work_count);
    }
    if (st == VX_EINTERRUPTED) {
        out->interrupted = 1;
        /* Save what was committed so readers need not replay it. */
        vx_err ferr = {0};
        if (!o.dry_run && run_id) st_flush(s, &ferr);
    }
    out->seconds = (double)(vx_now_ns() - t0) / 1e9;
    if (crawled) {
        /* A completed run (a dry run too) has settled every file it found. */
        if (!st) c.settled_before = (int64_t)c.plan_count;
        report_progress(&c, NULL);
    }
    if (run_id) {
        char message[1024];
        snprintf(message, sizeof message,
                 "indexed %" PRId64 ", unchanged %" PRId64 ", moved %" PRId64 ", deleted %" PRId64
                 ", failed %" PRId64 "%s%.500s",
                 out->indexed, out->unchanged, out->moved, out->deleted, out->failed,
                 st && st != VX_EINTERRUPTED ? "; " : "",
                 st && st != VX_EINTERRUPTED ? err->msg : "");
        vx_err rerr = {0};
        if (st_run_finish(s, run_id,
                          st == VX_OK             ? "ok"
                          : st == VX_EINTERRUPTED ? "interrupted"
                                                  : "failed",
                          out->indexed + out->moved, out->failed, message, &rerr))
            vx_log(VX_LOG_WARN, "recording the run: %s", rerr.msg);
    }
    free_ctx(&c);
    return st;
}

void idx_summary_free(idx_summary *sum)
{
    if (!sum) return;
    free(sum->library);
    free(sum->root);
    free(sum->model_id);
    free(sum->modalities);
    for (size_t i = 0; i < sum->failure_count; i++) {
        free(sum->failures[i].location);
        free(sum->failures[i].reason);
    }
    free(sum->failures);
    idx_crawl_stats_free(&sum->crawl);
    memset(sum, 0, sizeof *sum);
}
