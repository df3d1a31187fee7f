/* indexer/ — turns media archives into a searchable catalog: crawls a library's folders (or
 * an HTTP(S) listing or manifest of URLs), tells new, changed, unchanged, moved and deleted
 * files apart, cuts videos into fixed windows (optionally snapped to shot cuts), embeds each
 * window with the vision tower and stores it through storage/, one transaction per video, with the
 * window's texts: subtitles (streams and sidecar files), recognised speech (pocketsphinx) and
 * on-screen text (tesseract), and the file name as a title, which search/ finds through FTS5. Where
 * the model has them, the text tower embeds each window's subtitle + speech text ("speech" vectors)
 * and the audio tower its 16 kHz audio ("audio" vectors), in the same transaction. A library's
 * options are stored with it (idx_library_options).
 *
 * Usage (what `vidx index` does):
 *
 *     st_store *s; vx_err err = {0};
 *     st_options so = st_options_default(); so.mode = ST_WRITE;
 *     if (st_open(data_dir, &so, &s, &err)) { ... VX_EBUSY: another indexer holds the lock }
 *     idx_options o = idx_options_default();
 *     o.root = "/srv/videos"; o.library = "videos"; o.model_dir = "models/s2-1b";
 *     o.stop = &stop_flag;                 // set by the program's SIGINT handler
 *     idx_summary sum;
 *     vx_status st = idx_run(s, &o, &sum, &err);   // VX_EINTERRUPTED: stopped by *stop
 *     ... sum.indexed, sum.unchanged, sum.moved, sum.deleted, sum.failed ...
 *     idx_summary_free(&sum); st_close(s);
 *
 * Thread safety: idx_run uses the st_store from the calling thread only and starts its own
 * decode and encode threads, joined before it returns. The pure helpers (idx_windows,
 * idx_windows_snapped, idx_identity_match, idx_classify_name) are reentrant. No global mutable
 * state: the stop request is a flag the caller owns.
 *
 * Ownership: strings in idx_options are borrowed for the call. An idx_summary owns its
 * strings and arrays until idx_summary_free. */
#ifndef IDX_H
#define IDX_H

#include "st.h"
#include "vx.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- file names ------------------------------------------------------------------------- */

typedef enum idx_file_kind {
    IDX_FILE_MEDIA = 0,     /* a known video or audio extension: always a candidate */
    IDX_FILE_UNKNOWN = 1,   /* no or unknown extension: a candidate if probing finds video */
    IDX_FILE_HIDDEN = 2,    /* ".name": skipped (files and folders) */
    IDX_FILE_TEMPORARY = 3, /* "*.part", "*.tmp", "*.crdownload", "*~", …: skipped */
    IDX_FILE_NOT_MEDIA = 4, /* a known non-media extension (.txt, .jpg, .srt, …): skipped */
} idx_file_kind;

/* Classifies a file name (the last path component) by its spelling alone. Pure. */
idx_file_kind idx_classify_name(const char *name);

/* ---- crawling --------------------------------------------------------------------------- */

/* One file a crawl found. Valid during the callback only. */
typedef struct idx_entry {
    const char *location;   /* what the catalog stores: an absolute path or a URL */
    const char *local_path; /* where it is read from (the same string for both sources) */
    int64_t size_bytes;
    int64_t mtime_ms;
    idx_file_kind kind; /* IDX_FILE_MEDIA or IDX_FILE_UNKNOWN */
    const char *etag;   /* HTTP(S): the server's ETag (quotes included); NULL: none, or local */
    /* HTTP(S): the server answered a conditional HEAD with 304 Not Modified; size, mtime and
     * etag are then the ones the validator callback gave. */
    int not_modified;
} idx_entry;

typedef struct idx_crawl_stats {
    int64_t files;          /* candidates reported */
    int64_t dirs;           /* folders read */
    int64_t hidden_skipped; /* hidden files and folders */
    int64_t temp_skipped;   /* temporary and partial files */
    int64_t other_skipped;  /* known non-media extensions, empty unknown files, devices */
    int64_t loops_skipped;  /* folders reached again through a symbolic link */
    int64_t errors;         /* folders or files that could not be read (logged) */
    /* Folders that could not be read: the run keeps catalog videos under them instead of
     * deleting them. malloc'd strings (free with idx_crawl_stats_free). */
    char **unreadable;
    size_t unreadable_count;
} idx_crawl_stats;

/* Return nonzero to stop the crawl (idx_crawl then returns VX_EINTERRUPTED). */
typedef int (*idx_entry_fn)(void *ctx, const idx_entry *entry);

/* Crawls root, calling fn for each candidate file in a stable order (a folder's files in
 * bytewise name order, then its subfolders in name order). The source is chosen by root's
 * form behind a small table of backends:
 *   - a local folder: recursive; follows symbolic links, remembering the (device, inode) of
 *     every folder read, so a loop is read once; hidden and temporary names skipped; known
 *     non-media extensions skipped without a stat; unknown ones reported as IDX_FILE_UNKNOWN
 *     for the caller to probe;
 *   - an http:// or https:// URL (libcurl): the directory listings web servers generate,
 *     links below root only, each listing read once; size, mtime and ETag from a HEAD
 *     request (conditional with idx_crawl_with's validator);
 *     only known media extensions (no probing over the network). location and local_path
 *     are the URL; the run decodes a temporary copy.
 *   - a manifest: an http(s) URL whose path ends in ".txt", ".m3u" or ".m3u8" (decided by the
 *     name alone, so a root's kind never depends on a server's mood) is a text file of URLs,
 *     one a line: absolute http(s) URLs (any host) or paths relative to the manifest's
 *     folder; blank lines and '#' lines (comments, #EXTM3U, #EXTINF) skipped; other schemes
 *     and ".." skipped; duplicates once. Each entry is then treated as a listing's file.
 * A root that is missing, not a folder or unreachable is VX_ENOTFOUND, so a run never
 * mistakes an unmounted disk or a server that is down for a library whose files were all
 * deleted. stats is filled (free with idx_crawl_stats_free). */
vx_status idx_crawl(const char *root, idx_entry_fn fn, void *ctx, idx_crawl_stats *stats,
                    vx_err *err);
void idx_crawl_stats_free(idx_crawl_stats *stats);

/* What the caller last stored for a location, for conditional requests: return 1 and fill
 * the values (etag may be NULL; it must stay valid until the crawl returns), or 0 when the
 * location is unknown. */
typedef int (*idx_validator_fn)(void *ctx, const char *location, int64_t *size_bytes,
                                int64_t *mtime_ms, const char **etag);

/* HTTP(S) settings of a crawl (ignored by local folders). */
typedef struct idx_crawl_options {
    int64_t http_timeout_ms; /* connect timeout, and whole-request limit of listings and HEADs;
                                <= 0: 30000 */
    int http_retries;        /* extra tries on 5xx, 429 and timeouts, with exponential backoff
                                from 250 ms; < 0: none */
    /* With it, each HEAD is conditional (If-None-Match with the stored ETag, else
     * If-Modified-Since with the stored mtime); a 304 reports the stored values with
     * not_modified set. May be NULL. */
    idx_validator_fn validator;
    void *validator_ctx;
} idx_crawl_options;

/* idx_crawl with options (NULL: defaults, no conditional requests). */
vx_status idx_crawl_with(const char *root, const idx_crawl_options *co, idx_entry_fn fn, void *ctx,
                         idx_crawl_stats *stats, vx_err *err);

/* ---- identity ----------------------------------------------------------------------------- */

typedef struct idx_identity {
    int64_t size_bytes;
    int64_t mtime_ms;
    const char *content_hash; /* hex; NULL when not computed (or not stored) */
} idx_identity;

typedef enum idx_match {
    IDX_MATCH_SAME = 0,       /* same file: size and mtime (or size and content hash) agree */
    IDX_MATCH_NEEDS_HASH = 1, /* size or mtime differ: hash the seen file to decide */
    IDX_MATCH_CHANGED = 2,    /* the content differs */
} idx_match;

/* Compares what the catalog stored with what the crawl saw. Size and mtime equal: SAME
 * (one stat decides). Otherwise, without seen->content_hash: NEEDS_HASH; with it: SAME when
 * the size and hash agree (a touched file), else CHANGED. Pure. */
idx_match idx_identity_match(const idx_identity *stored, const idx_identity *seen);

/* ---- windows ------------------------------------------------------------------------------ */

/* A partial last window is kept when it is at least this long (or when it is the only one). */
#define IDX_MIN_LAST_WINDOW_MS 1000

typedef struct idx_window {
    int64_t start_ms, end_ms; /* [start, end) */
} idx_window;

/* Cuts [0, duration_ms) into windows of window_ms starting every window_ms - overlap_ms:
 * full windows, then a last partial window [start, duration) when it is at least
 * IDX_MIN_LAST_WINDOW_MS long and not already covered (with overlap, the windows stop at the
 * first one that reaches the end). A video shorter than one window gets one window
 * [0, duration) whatever its length (it would be unsearchable otherwise). Writes at most cap
 * windows to out (out may be NULL with cap 0) and returns how many there are; 0 for
 * duration <= 0 or invalid sizes (window_ms <= 0, overlap_ms < 0 or >= window_ms). Pure. */
size_t idx_windows(int64_t duration_ms, int64_t window_ms, int64_t overlap_ms, idx_window *out,
                   size_t cap);

/* Windows snapped to shot cuts (`vidx index --snap-to-shots`; cuts from media_detect_shots).
 * Walks as idx_windows does, but each window [start, ...) ends at the first cut c with
 * start + window_ms/2 <= c <= start + window_ms + window_ms/4, i.e. its nominal end moves to a
 * cut up to half a window earlier or a quarter window later; a window that ends at a cut is
 * followed by one that starts exactly there (overlap never crosses a cut). Without such a cut
 * the window keeps its fixed length (a long shot is still split every window_ms, overlap as
 * configured). So every window but the last is between window_ms/2 and window_ms*5/4 long,
 * and no window holds a cut more than half a window after its start (cuts closer to a
 * window's start than that are kept inside it: no tiny segments). Cuts at or before 0, within
 * IDX_MIN_LAST_WINDOW_MS of the end or past it are ignored (a cut there would leave a tail too
 * short to keep). Last window: as idx_windows, except that a tail shorter than
 * IDX_MIN_LAST_WINDOW_MS after a fixed-length window joins it when the joined window stays
 * within window_ms*5/4 (so 4.8 s gives one window, not 4 s and a dropped 0.8 s). cuts_ms:
 * ascending (duplicates fine), may be NULL with cut_count 0. Writes at most cap windows and
 * returns how many there are; 0 for invalid sizes as idx_windows. Pure. */
size_t idx_windows_snapped(int64_t duration_ms, int64_t window_ms, int64_t overlap_ms,
                           const int64_t *cuts_ms, size_t cut_count, idx_window *out, size_t cap);

/* ---- the run ------------------------------------------------------------------------------ */

/* Where a run stands, for a caller's own progress display (the web server's job list).
 * Valid during the callback only. */
typedef struct idx_progress {
    /* Candidate files the crawl found (0 until the crawl is done), and of them those settled:
     * unchanged, moved, not video, failed before decoding, and videos indexed or failed by
     * the pipeline. Equal at the end of a run that was not interrupted. */
    int64_t files_total, files_done;
    int64_t segments_done; /* segments written in this run */
    int64_t videos_failed; /* files that failed in this run */
    double clips_per_s;    /* windows through the pipeline per second of pipeline time */
    const char *current;   /* the location just settled; NULL in the first and last calls */
} idx_progress;

/* Called by idx_run in the thread that called idx_run (never concurrently, never from the
 * decode or encode threads): once when the crawl and the plan are done, once after each
 * video the pipeline settles, and once at the end (also after an interruption or a failure
 * once the crawl ran). It must return quickly: the store waits for it. */
typedef void (*idx_progress_fn)(void *ctx, const idx_progress *p);

typedef struct idx_options {
    /* Library name. With root: the library to create or crawl (its stored root must match);
     * NULL: named after root's last component. Without root: the library to re-crawl. */
    const char *library;
    const char *root;      /* folder (made absolute) or http(s) URL; NULL: the stored root */
    const char *model_dir; /* model directory for the vision modality; NULL: none */
    int64_t window_ms;     /* default 4000 */
    int64_t overlap_ms;    /* default 0; < window_ms */
    int jobs;              /* decode threads; 0: CPU count */
    int encoder_threads;   /* OpenMP threads of the encoder; 0: OpenMP's default */
    int dry_run;           /* classify and report; write nothing */
    int progress;          /* 1: progress bar on a terminal, else periodic log lines */
    int thumbnails;        /* 1: a JPEG per segment under st_thumbs_dir() (default 1) */
    int thumb_max_px;      /* longer side of thumbnails; default 160 */
    /* Polled between videos: when it becomes nonzero the run hands out no new video,
     * finishes and commits the ones in flight, and returns VX_EINTERRUPTED. May be NULL. */
    const volatile sig_atomic_t *stop;
    /* Text modalities, each stored as texts (st_text_add) that `vidx search` finds:
     * subtitles: text subtitle streams and sidecar files ("<name>.srt", "<name>.en.vtt", …)
     *            -> source "subtitle" (default 1);
     * asr:       speech recognition (pocketsphinx) on the audio, silence skipped by an energy
     *            gate -> source "asr"; on by default, used when the model files are installed
     *            (a run says once when they are not);
     * ocr:       on-screen text (tesseract, sparse text) on one frame per window -> "ocr";
     *            likewise on by default when the English data is installed.
     * Every indexed video also gets its file name as a "title" text. */
    int subtitles;
    int asr;
    int ocr;
    const char *asr_model_dir; /* pocketsphinx model folder; NULL: Debian's en-us */
    int ocr_min_confidence;    /* 0..100; words below are dropped (default 60) */
    /* Files larger than this are recorded as failed, never read (default 20 GiB; <= 0: no
     * cap). */
    int64_t max_size_bytes;
    /* HTTP(S) archives: connect timeout and per-request limit for listings, HEADs and range
     * reads; a download fails when it stalls (under 1 byte/s) this long (default 30000). */
    int64_t http_timeout_ms;
    int http_retries; /* extra tries on 5xx, 429 and timeouts, backoff 250 ms doubling (3) */
    /* Progress reports (see idx_progress_fn); NULL: none. Independent of `progress`. */
    idx_progress_fn on_progress;
    void *progress_ctx;
    /* The vision tower's precision: "fp32" (the fidelity path) or "bf16" (speed mode,
     * embedding cosine >= 0.999 against fp32; enc.h); NULL: the model's default on this CPU
     * (enc_default_precision, what `vidx model info` states). */
    const char *precision;
    /* How often the library should be re-crawled (0: no schedule). Stored with the library
     * for schedulers (`vidx index --every`, the server); idx_run itself runs once. */
    int64_t every_ms;
    /* 1: store this run's options with its library (see "stored library options"; what
     * `vidx index` does); 0 (default): leave what is stored alone, so a caller that runs a
     * library with options of its own never overwrites the user's. */
    int store_options;
    /* 1: detect shot cuts on the decoded frames (media_detect_shots, one extra decode pass
     * per new or changed video) and plan the windows with idx_windows_snapped, so segments do
     * not straddle a cut; 0 (default): fixed windows (idx_windows). Stored with the library
     * as "snap_to_shots". Videos that only get vectors for a new model keep their segments. */
    int snap_to_shots;
} idx_options;

#define IDX_DEFAULT_MAX_SIZE_BYTES (20LL * 1024 * 1024 * 1024)

/* Defaults as documented above. */
idx_options idx_options_default(void);

typedef struct idx_failure {
    char *location;
    char *reason;
} idx_failure;

typedef struct idx_summary {
    char *library; /* name */
    char *root;
    int64_t library_id; /* 0 in a dry run of a new library */
    int64_t run_id;     /* 0 in a dry run */
    char *model_id;     /* NULL without a model */
    /* Comma-separated modalities the run produced: "vision", "asr", "ocr", "subtitle",
     * "title" (e.g. "vision,asr,ocr,subtitle,title"); "" in a dry run without a model. */
    char *modalities;
    int dry_run;
    int interrupted;
    int64_t files;            /* candidates the crawl found */
    int64_t indexed;          /* new or changed videos committed (in a dry run: to index) */
    int64_t embedded_only;    /* of indexed: kept their segments, got vectors for the model */
    int64_t unchanged;        /* nothing to do (includes touched files, same content) */
    int64_t failed_unchanged; /* of unchanged: failed before and not changed since */
    int64_t moved;            /* same content at a new location; segments and vectors kept */
    int64_t deleted;          /* gone from the library; removed from the catalog */
    int64_t failed;           /* failed in this run (failures lists them) */
    int64_t not_video;        /* unknown-extension files that probing found not to be video */
    int64_t segments;         /* segments written */
    int64_t embeddings;       /* vectors written */
    double seconds;
    /* Text modalities: texts stored (one per segment and source, plus a title per video),
     * subtitle cues read, words recognised and read on screen, and what they cost. */
    int64_t texts;
    int64_t subtitle_cues;
    int64_t asr_words;
    int64_t ocr_words;
    int64_t ocr_frames;
    double audio_seconds;  /* audio examined by ASR */
    double speech_seconds; /* of which the energy gate passed to the recogniser */
    double asr_seconds;    /* wall time in ASR, summed over decoder threads */
    double ocr_seconds;    /* wall time in OCR, summed over decoder threads */
    /* snap_to_shots: videos analysed, frames decoded for it, cuts found, and the wall time
     * of those passes summed over decoder threads (the cost of snapping). */
    int64_t shot_videos;
    int64_t shot_frames;
    int64_t shot_cuts;
    double shot_seconds;
    idx_crawl_stats crawl;
    idx_failure *failures;
    size_t failure_count;
} idx_summary;

/* Indexes one library into s (opened ST_WRITE). Creates the library when root is given and
 * no library has that name. Records the run (st_run_begin/st_run_finish), saves the vector
 * indexes (st_flush) at the end. Files that fail are recorded (status failed, last_error)
 * and listed in out; they do not fail the run. Returns VX_OK when the run completed,
 * VX_EINTERRUPTED when *stop ended it early (out is filled in both cases), or another status
 * when it could not run (out is then filled as far as it got). Free out with
 * idx_summary_free. */
vx_status idx_run(st_store *s, const idx_options *opts, idx_summary *out, vx_err *err);
void idx_summary_free(idx_summary *sum);

/* ---- stored library options (idx_library.c) ---------------------------------------------- */

/* A run with store_options that writes (not a dry run) stores its options with its library:
 * window_ms, overlap_ms, asr, ocr, subtitles, thumbnails, snap_to_shots, model_dir and
 * precision (removed when the run has none) and every_ms, as key/value text
 * (st_library_option_set). A later run
 * builds its options from them (idx_library_options), so `vidx index --library NAME`
 * re-crawls the stored root as it was first indexed, and options given again replace the
 * stored ones. */

/* A library's stored root and options. options.library, options.root, options.model_dir and
 * options.precision point into this struct (valid until idx_library_config_free); the other fields
 * start from idx_options_default() with the stored values over them. The caller adds its own stop
 * flag, progress callback, jobs and threads before idx_run. */
typedef struct idx_library_config {
    idx_options options;
    char *name, *root, *model_dir, *precision; /* owned; NULL when none is stored */
} idx_library_config;

/* Fills out for the library named name (VX_ENOTFOUND naming it when there is none; a stored
 * value that does not parse is VX_ECORRUPT naming the key). Readers and writers. Free out
 * with idx_library_config_free (also after a failure). */
vx_status idx_library_options(st_store *s, const char *name, idx_library_config *out, vx_err *err);
/* NULL is fine. */
void idx_library_config_free(idx_library_config *cfg);

/* The library a root would be indexed into: the one whose stored root is root (made absolute
 * as idx_run does; URLs end in '/'). *out_name is malloc'd, NULL when no library has that
 * root (VX_OK). */
vx_status idx_library_for_root(st_store *s, const char *root, char **out_name, vx_err *err);

/* ---- watching (idx_watch.c) -------------------------------------------------------------- */

#define IDX_DEFAULT_SETTLE_MS 5000

typedef struct idx_watch_options {
    /* A new or written file is taken once its size has not changed for this long (<= 0:
     * IDX_DEFAULT_SETTLE_MS); its library is re-crawled only when none of its files is
     * still settling. */
    int64_t settle_ms;
    /* An absolute folder whose changes are not library changes (the data directory, when it
     * lies inside a library); NULL: none. */
    const char *ignore_dir;
    /* 1: call back once for every root as soon as its watches are in place, so that nothing
     * changed between an earlier crawl and the watch is missed. */
    int initial_crawl;
    /* Polled every 250 ms (and after each callback): nonzero ends the watch. May be NULL. */
    const volatile sig_atomic_t *stop;
} idx_watch_options;

/* Called, in the watching thread, when library roots[root_index] should be re-crawled (files
 * settled, deleted or moved). Return nonzero to end the watch. */
typedef int (*idx_watch_fn)(void *ctx, size_t root_index);

/* Watches the local folders roots[0..root_count) (absolute paths) and everything below them
 * with inotify, folders created later included, until *stop or the callback ends it: VX_OK.
 * A root that is not a local folder is VX_EINVAL; running out of inotify watches is
 * VX_ELIMIT. Does no indexing itself (the callback does). Not thread-safe per call; no global
 * state. */
vx_status idx_watch(const char *const *roots, size_t root_count, const idx_watch_options *opts,
                    idx_watch_fn fn, void *ctx, vx_err *err);

#ifdef __cplusplus
}
#endif
#endif
