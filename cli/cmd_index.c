/* vidx index: crawls folders into libraries and indexes their videos (indexer/), with a
 * summary in words or JSON; with --every, again and again on a schedule. Owns the SIGINT/SIGTERM
 * handler: it only sets a flag that the indexer polls between videos, so a stop commits the videos
 * in flight and nothing else. */
#include "cli.h"
#include "enc.h"
#include "idx.h"
#include "st.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by the signal handler; the indexer polls it. The program's one piece of global state,
 * as a signal handler needs. */
static volatile sig_atomic_t index_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    index_stop_requested = 1;
}

static void install_stop_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* A second Ctrl-C gets the default action: stop now. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Options given on the command line: they replace a library's stored ones (idx_library_options);
 * the others come from what is stored. */
enum {
    GIVEN_WINDOW = 1 << 0,
    GIVEN_OVERLAP = 1 << 1,
    GIVEN_ASR = 1 << 2,
    GIVEN_OCR = 1 << 3,
    GIVEN_SUBTITLES = 1 << 4,
    GIVEN_THUMBNAILS = 1 << 5,
    GIVEN_EVERY = 1 << 6,
    GIVEN_NO_MODEL = 1 << 7, /* --no-model: no vision even when the library stored a model */
    GIVEN_PRECISION = 1 << 8,
    GIVEN_SNAP = 1 << 9,
};

typedef struct index_args {
    unsigned given; /* GIVEN_* */
    const char **paths;
    int path_count;
    int64_t every_ms; /* 0: run once */
    int watch;        /* --watch: after the first round, re-crawl a library when it changes */
    int64_t settle_ms;
    char **roots;     /* each library's root, from the first round (for --watch) */
    char **libraries; /* names to re-crawl (--library, or what the first round created) */
    int library_count;
    idx_options o;
} index_args;

static void free_libraries(index_args *a)
{
    for (int i = 0; i < a->library_count; i++) {
        free(a->libraries[i]);
        free(a->roots[i]);
    }
    free(a->libraries);
    free(a->roots);
}

static int parse_args(int argc, char **argv, index_args *a)
{
    vx_err err = {0};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (opt[0] != '-' || !opt[1]) {
            a->paths[a->path_count++] = opt;
            continue;
        }
        if (!strcmp(opt, "--dry-run")) {
            a->o.dry_run = 1;
            continue;
        }
        /* --no-X / --X: a text modality or thumbnails off or (back) on */
        static const struct {
            const char *name;
            unsigned given;
            size_t offset;
        } toggles[] = {
            {"thumbnails", GIVEN_THUMBNAILS, offsetof(idx_options, thumbnails)},
            {"asr", GIVEN_ASR, offsetof(idx_options, asr)},
            {"ocr", GIVEN_OCR, offsetof(idx_options, ocr)},
            {"subtitles", GIVEN_SUBTITLES, offsetof(idx_options, subtitles)},
            {"snap-to-shots", GIVEN_SNAP, offsetof(idx_options, snap_to_shots)},
        };
        int toggled = 0;
        for (size_t t = 0; t < sizeof toggles / sizeof *toggles && !toggled; t++) {
            int off = !strncmp(opt, "--no-", 5) && !strcmp(opt + 5, toggles[t].name);
            int on = !strncmp(opt, "--", 2) && !strcmp(opt + 2, toggles[t].name);
            if (!off && !on) continue;
            *(int *)((char *)&a->o + toggles[t].offset) = on;
            a->given |= toggles[t].given;
            toggled = 1;
        }
        if (toggled) continue;
        if (!strcmp(opt, "--no-model")) {
            a->given |= GIVEN_NO_MODEL;
            continue;
        }
        if (!strcmp(opt, "--watch")) {
            a->watch = 1;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) return cli_usage_error("index", "%s needs a value", opt);
        i++;
        int64_t n;
        if (!strcmp(opt, "--library")) {
            if (!*val) return cli_usage_error("index", "--library needs a name");
            a->o.library = val;
        } else if (!strcmp(opt, "--window") || !strcmp(opt, "--overlap")) {
            if (vx_parse_duration_ms(val, &n, &err))
                return cli_usage_error("index", "%s: %s", opt, err.msg);
            if (!strcmp(opt, "--window")) {
                if (n < 500 || n > 3600000)
                    return cli_usage_error("index", "--window must be between 500ms and 1h");
                a->o.window_ms = n;
                a->given |= GIVEN_WINDOW;
            } else {
                a->o.overlap_ms = n;
                a->given |= GIVEN_OVERLAP;
            }
        } else if (!strcmp(opt, "--every")) {
            if (vx_parse_duration_ms(val, &n, &err))
                return cli_usage_error("index", "--every: %s", err.msg);
            if (n < 1000) return cli_usage_error("index", "--every must be at least 1s");
            a->every_ms = n;
            a->o.every_ms = n;
            a->given |= GIVEN_EVERY;
        } else if (!strcmp(opt, "--settle")) {
            if (vx_parse_duration_ms(val, &n, &err))
                return cli_usage_error("index", "--settle: %s", err.msg);
            if (n < 100 || n > 3600000)
                return cli_usage_error("index", "--settle must be between 100ms and 1h");
            a->settle_ms = n;
        } else if (!strcmp(opt, "--max-size")) {
            if (vx_parse_size_bytes(val, &n, &err))
                return cli_usage_error("index", "--max-size: %s", err.msg);
            if (n < 1) return cli_usage_error("index", "--max-size must be at least 1 byte");
            a->o.max_size_bytes = n;
        } else if (!strcmp(opt, "--http-timeout")) {
            if (vx_parse_duration_ms(val, &n, &err))
                return cli_usage_error("index", "--http-timeout: %s", err.msg);
            if (n < 100 || n > 3600000)
                return cli_usage_error("index", "--http-timeout must be between 100ms and 1h");
            a->o.http_timeout_ms = n;
        } else if (!strcmp(opt, "--http-retries")) {
            if (vx_parse_int(val, 0, 10, "--http-retries", &n, &err))
                return cli_usage_error("index", "%s", err.msg);
            a->o.http_retries = (int)n;
        } else if (!strcmp(opt, "--precision")) {
            enc_precision precision;
            if (enc_precision_parse(val, &precision, &err))
                return cli_usage_error("index", "--precision: %s", err.msg);
            a->o.precision = enc_precision_name(precision);
            a->given |= GIVEN_PRECISION;
        } else if (!strcmp(opt, "--jobs")) {
            if (vx_parse_int(val, 1, 256, "--jobs", &n, &err))
                return cli_usage_error("index", "%s", err.msg);
            a->o.jobs = (int)n;
        } else if (!strcmp(opt, "--threads")) {
            if (vx_parse_int(val, 1, 1024, "--threads", &n, &err))
                return cli_usage_error("index", "%s", err.msg);
            a->o.encoder_threads = (int)n;
        } else {
            return cli_usage_error("index", "unknown option '%s'", opt);
        }
    }
    /* Against --window, else the default: an overlap given alone must suit a new library. */
    if ((a->given & GIVEN_OVERLAP) && a->o.overlap_ms >= a->o.window_ms)
        return cli_usage_error("index", "--overlap must be shorter than --window");
    if (a->path_count == 0 && !a->o.library)
        return cli_usage_error("index", "give a folder to index, or --library NAME to re-crawl");
    if (a->every_ms && a->o.dry_run)
        return cli_usage_error("index", "--every and --dry-run do not go together");
    if (a->watch && a->o.dry_run)
        return cli_usage_error("index", "--watch and --dry-run do not go together");
    if (a->watch && a->every_ms)
        return cli_usage_error("index", "--watch and --every do not go together");
    if (a->settle_ms && !a->watch) return cli_usage_error("index", "--settle goes with --watch");
    if (a->path_count > 1 && a->o.library)
        return cli_usage_error("index", "--library names one library: give one folder with it");
    return 0;
}

static void print_summary(const idx_summary *s)
{
    printf("%s '%s' (%s): %s%" PRId64 " indexed, %" PRId64 " unchanged, %" PRId64 " moved, %" PRId64
           " deleted, %" PRId64 " failed",
           s->dry_run ? "dry run of library" : "library", s->library ? s->library : "?",
           s->root ? s->root : "?", s->dry_run ? "would be " : "", s->indexed, s->unchanged,
           s->moved, s->deleted, s->failed);
    if (!s->dry_run)
        printf("; %" PRId64 " segments, %" PRId64 " vectors in %.1f s", s->segments, s->embeddings,
               s->seconds);
    printf("%s\n", s->interrupted ? " (interrupted: run again to continue)" : "");
    if (!s->dry_run && (s->texts || s->asr_seconds > 0 || s->ocr_seconds > 0)) {
        printf("  %" PRId64 " texts: %" PRId64 " subtitle cues", s->texts, s->subtitle_cues);
        if (s->audio_seconds > 0)
            printf("; speech %" PRId64 " words in %.1f s of audio (%.1f s past the silence gate), "
                   "%.1f s of ASR (%.2fx real time)",
                   s->asr_words, s->audio_seconds, s->speech_seconds, s->asr_seconds,
                   s->asr_seconds / s->audio_seconds);
        if (s->ocr_frames)
            printf("; on-screen %" PRId64 " words in %" PRId64 " frames, %.1f s of OCR",
                   s->ocr_words, s->ocr_frames, s->ocr_seconds);
        printf("\n");
    }
    if (!s->dry_run && s->shot_videos)
        printf("  shots: %" PRId64 " cuts found in %" PRId64 " video(s), %" PRId64
               " frames decoded for them in %.1f s (%.0f frames/s)\n",
               s->shot_cuts, s->shot_videos, s->shot_frames, s->shot_seconds,
               s->shot_seconds > 0 ? (double)s->shot_frames / s->shot_seconds : 0.0);
    if (s->embedded_only)
        printf("  %" PRId64 " of the indexed videos kept their segments and got vectors for %s\n",
               s->embedded_only, s->model_id ? s->model_id : "the model");
    if (s->failed_unchanged)
        printf("  %" PRId64 " unchanged files failed before and were skipped (retried when they "
               "change)\n",
               s->failed_unchanged);
    for (size_t i = 0; i < s->failure_count; i++)
        printf("  failed: %s: %s\n", s->failures[i].location, s->failures[i].reason);
}

static cJSON *summary_json(const idx_summary *s, vx_status st, const vx_err *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "library", s->library ? s->library : "");
    cJSON_AddStringToObject(o, "root", s->root ? s->root : "");
    cJSON_AddNumberToObject(o, "library_id", (double)s->library_id);
    cJSON_AddNumberToObject(o, "run_id", (double)s->run_id);
    cJSON_AddStringToObject(o, "status",
                            st == VX_OK             ? "ok"
                            : st == VX_EINTERRUPTED ? "interrupted"
                                                    : "failed");
    if (st && err->msg[0]) cJSON_AddStringToObject(o, "error", err->msg);
    cJSON_AddBoolToObject(o, "dry_run", s->dry_run);
    if (s->model_id)
        cJSON_AddStringToObject(o, "model_id", s->model_id);
    else
        cJSON_AddNullToObject(o, "model_id");
    cJSON *mods = cJSON_AddArrayToObject(o, "modalities");
    for (const char *p = s->modalities ? s->modalities : ""; *p;) {
        size_t n = strcspn(p, ",");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        if (n) cJSON_AddItemToArray(mods, cJSON_CreateString(name));
        p += n + (p[n] == ',');
    }
    cJSON_AddNumberToObject(o, "files", (double)s->files);
    cJSON_AddNumberToObject(o, "indexed", (double)s->indexed);
    cJSON_AddNumberToObject(o, "embedded_only", (double)s->embedded_only);
    cJSON_AddNumberToObject(o, "unchanged", (double)s->unchanged);
    cJSON_AddNumberToObject(o, "failed_unchanged", (double)s->failed_unchanged);
    cJSON_AddNumberToObject(o, "moved", (double)s->moved);
    cJSON_AddNumberToObject(o, "deleted", (double)s->deleted);
    cJSON_AddNumberToObject(o, "failed", (double)s->failed);
    cJSON_AddNumberToObject(o, "not_video", (double)s->not_video);
    cJSON_AddNumberToObject(o, "segments", (double)s->segments);
    cJSON_AddNumberToObject(o, "embeddings", (double)s->embeddings);
    cJSON_AddNumberToObject(o, "seconds", s->seconds);
    cJSON_AddNumberToObject(o, "texts", (double)s->texts);
    cJSON *text = cJSON_AddObjectToObject(o, "text");
    cJSON_AddNumberToObject(text, "subtitle_cues", (double)s->subtitle_cues);
    cJSON_AddNumberToObject(text, "asr_words", (double)s->asr_words);
    cJSON_AddNumberToObject(text, "audio_seconds", s->audio_seconds);
    cJSON_AddNumberToObject(text, "speech_seconds", s->speech_seconds);
    cJSON_AddNumberToObject(text, "asr_seconds", s->asr_seconds);
    cJSON_AddNumberToObject(text, "ocr_frames", (double)s->ocr_frames);
    cJSON_AddNumberToObject(text, "ocr_words", (double)s->ocr_words);
    cJSON_AddNumberToObject(text, "ocr_seconds", s->ocr_seconds);
    cJSON *shots = cJSON_AddObjectToObject(o, "shots");
    cJSON_AddNumberToObject(shots, "videos", (double)s->shot_videos);
    cJSON_AddNumberToObject(shots, "frames", (double)s->shot_frames);
    cJSON_AddNumberToObject(shots, "cuts", (double)s->shot_cuts);
    cJSON_AddNumberToObject(shots, "seconds", s->shot_seconds);
    cJSON_AddBoolToObject(o, "interrupted", s->interrupted);
    cJSON *crawl = cJSON_AddObjectToObject(o, "crawl");
    cJSON_AddNumberToObject(crawl, "folders", (double)s->crawl.dirs);
    cJSON_AddNumberToObject(crawl, "hidden_skipped", (double)s->crawl.hidden_skipped);
    cJSON_AddNumberToObject(crawl, "temporary_skipped", (double)s->crawl.temp_skipped);
    cJSON_AddNumberToObject(crawl, "other_skipped", (double)s->crawl.other_skipped);
    cJSON_AddNumberToObject(crawl, "loops_skipped", (double)s->crawl.loops_skipped);
    cJSON_AddNumberToObject(crawl, "errors", (double)s->crawl.errors);
    cJSON *fails = cJSON_AddArrayToObject(o, "failures");
    for (size_t i = 0; i < s->failure_count; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "location", s->failures[i].location);
        cJSON_AddStringToObject(f, "reason", s->failures[i].reason);
        cJSON_AddItemToArray(fails, f);
    }
    return o;
}

/* The options of one run: for a library that exists (by name, else by root), its stored
 * options with those given on the command line over them; else the command line's. cfg holds
 * the strings o points to (free it after the run). */
static vx_status run_options(const cli_globals *g, st_store *s, const index_args *a,
                             const char *root, const char *library, idx_options *o,
                             idx_library_config *cfg, vx_err *err)
{
    *o = a->o;
    if (a->given & GIVEN_NO_MODEL) o->model_dir = NULL;
    o->root = root;
    o->library = library;
    memset(cfg, 0, sizeof *cfg);
    char *by_root = NULL;
    vx_status st = VX_OK;
    if (!library && root && (st = idx_library_for_root(s, root, &by_root, err))) return st;
    const char *name = library ? library : by_root;
    if (!name) return VX_OK; /* a new library: the command line's options */
    st = idx_library_options(s, name, cfg, err);
    free(by_root);
    if (st == VX_ENOTFOUND && root) { /* a new library named by --library */
        idx_library_config_free(cfg);
        vx_err_clear(err);
        return VX_OK;
    }
    if (st) return st;
    const idx_options *stored = &cfg->options;
    o->library = cfg->name;
    if (!root) o->root = NULL; /* idx_run re-crawls the stored root */
    if (!g->model_dir && !(a->given & GIVEN_NO_MODEL)) o->model_dir = cfg->model_dir;
    if (!(a->given & GIVEN_WINDOW)) o->window_ms = stored->window_ms;
    if (!(a->given & GIVEN_OVERLAP)) o->overlap_ms = stored->overlap_ms;
    if (!(a->given & GIVEN_ASR)) o->asr = stored->asr;
    if (!(a->given & GIVEN_OCR)) o->ocr = stored->ocr;
    if (!(a->given & GIVEN_SUBTITLES)) o->subtitles = stored->subtitles;
    if (!(a->given & GIVEN_THUMBNAILS)) o->thumbnails = stored->thumbnails;
    if (!(a->given & GIVEN_SNAP)) o->snap_to_shots = stored->snap_to_shots;
    if (!(a->given & GIVEN_EVERY)) o->every_ms = stored->every_ms;
    if (!(a->given & GIVEN_PRECISION)) o->precision = stored->precision;
    /* A window given alone may be shorter than the stored overlap: the overlap gives way. */
    if (o->overlap_ms >= o->window_ms && !(a->given & GIVEN_OVERLAP)) o->overlap_ms = 0;
    return VX_OK;
}

/* One pass over the libraries named in a (folders or --library), or only library number
 * `only` (>= 0; --watch). Returns the exit code. */
static int index_round(const cli_globals *g, st_store *s, index_args *a, int only)
{
    vx_err err = {0};
    vx_status st;
    cJSON *runs = g->json ? cJSON_CreateArray() : NULL;
    int code = CLI_EXIT_OK;
    int n = a->path_count ? a->path_count : a->library_count;
    for (int i = 0; i < n; i++) {
        if (only >= 0 && i != only) continue;
        idx_options o;
        idx_library_config cfg;
        idx_summary sum;
        memset(&sum, 0, sizeof sum);
        vx_err_clear(&err);
        st = run_options(g, s, a, a->path_count ? a->paths[i] : NULL,
                         a->path_count ? a->o.library : a->libraries[i], &o, &cfg, &err);
        if (!st) st = idx_run(s, &o, &sum, &err);
        idx_library_config_free(&cfg);
        if (runs) {
            cJSON_AddItemToArray(runs, summary_json(&sum, st, &err));
        } else if (st == VX_OK || st == VX_EINTERRUPTED) {
            print_summary(&sum);
        }
        /* Remember the library by name for later rounds of --every. */
        /* With its root, for --watch (roots[k] goes with libraries[k]). */
        if (a->path_count && sum.library && a->library_count < a->path_count) {
            a->roots[a->library_count] = sum.root ? strdup(sum.root) : NULL;
            a->libraries[a->library_count++] = strdup(sum.library);
        } else if (!a->path_count && !a->roots[i] && sum.root) {
            a->roots[i] = strdup(sum.root);
        }
        idx_summary_free(&sum);
        if (st == VX_EINTERRUPTED) {
            fprintf(stderr, "vidx: interrupted; the videos in flight were committed, run again "
                            "to continue\n");
            code = CLI_EXIT_INTERRUPTED;
            break;
        }
        if (st) {
            int c = cli_fail(&err);
            if (code == CLI_EXIT_OK) code = c;
        }
        if (index_stop_requested) {
            code = CLI_EXIT_INTERRUPTED;
            break;
        }
    }
    if (runs) {
        cJSON *root = n > 1 && only < 0 ? runs : cJSON_DetachItemFromArray(runs, 0);
        char *text = root ? cJSON_Print(root) : NULL;
        if (text) puts(text);
        free(text);
        if (root != runs) cJSON_Delete(root);
        cJSON_Delete(runs);
    }
    fflush(stdout); /* with --every, each round's summary shows when it ends */
    return code;
}

typedef struct watch_ctx {
    const cli_globals *g;
    st_store *s;
    index_args *a;
    int *local_index; /* watched root i -> library number */
    int code;
} watch_ctx;

static int on_library_changed(void *ctx, size_t root_index)
{
    watch_ctx *w = ctx;
    int code = index_round(w->g, w->s, w->a, w->local_index[root_index]);
    if (code == CLI_EXIT_INTERRUPTED || index_stop_requested) {
        w->code = code;
        return 1;
    }
    return 0;
}

/* --watch: after the first round, each local library is re-crawled when its files change
 * (idx_watch); a stop while waiting exits 0, one during a run 130. */
static int watch_libraries(const cli_globals *g, st_store *s, index_args *a)
{
    /* The first round filled libraries[] and roots[] side by side. */
    int n = a->library_count;
    const char **roots = calloc((size_t)n + 1, sizeof *roots);
    int *local_index = calloc((size_t)n + 1, sizeof *local_index);
    size_t count = 0;
    for (int i = 0; roots && local_index && i < n; i++) {
        if (!a->roots[i]) continue; /* its first run failed */
        if (strstr(a->roots[i], "://")) {
            vx_log(VX_LOG_WARN, "not watching %s: only local folders can be watched (use --every)",
                   a->roots[i]);
            continue;
        }
        roots[count] = a->roots[i];
        local_index[count++] = i;
    }
    int code = CLI_EXIT_OK;
    if (!roots || !local_index) {
        fprintf(stderr, "vidx: error: out of memory\n");
        code = CLI_EXIT_FAILURE;
    } else if (count == 0) {
        fprintf(stderr, "vidx: error: --watch: no local library folder to watch\n");
        code = CLI_EXIT_FAILURE;
    } else {
        /* Later runs re-crawl by name, like --every's rounds. */
        a->path_count = 0;
        char *data_real = realpath(st_data_dir(s), NULL);
        idx_watch_options wo = {.settle_ms = a->settle_ms ? a->settle_ms : IDX_DEFAULT_SETTLE_MS,
                                .ignore_dir = data_real,
                                /* what changed since the first round's crawl */
                                .initial_crawl = 1,
                                .stop = &index_stop_requested};
        watch_ctx w = {g, s, a, local_index, CLI_EXIT_OK};
        vx_err err = {0};
        vx_log(VX_LOG_INFO, "watching for changes (Ctrl-C stops)");
        if (idx_watch(roots, count, &wo, on_library_changed, &w, &err))
            code = cli_fail(&err);
        else
            code = w.code;
        free(data_real);
    }
    free(roots);
    free(local_index);
    return code;
}

int cmd_index(const cli_globals *g, int argc, char **argv)
{
    index_args a;
    memset(&a, 0, sizeof a);
    a.o = idx_options_default();
    a.paths = calloc((size_t)argc + 1, sizeof *a.paths);
    a.libraries = calloc((size_t)argc + 1, sizeof *a.libraries);
    a.roots = calloc((size_t)argc + 1, sizeof *a.roots);
    if (!a.paths || !a.libraries || !a.roots) {
        free(a.paths);
        free(a.libraries);
        free(a.roots);
        fprintf(stderr, "vidx: error: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        free(a.paths);
        free(a.libraries);
        free(a.roots);
        return rc;
    }
    if (!a.path_count) a.libraries[a.library_count++] = strdup(a.o.library);
    a.o.model_dir = g->model_dir;
    a.o.progress = !g->json;
    a.o.stop = &index_stop_requested;
    a.o.store_options = 1; /* what this command line says is what the library keeps */

    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_WRITE;
    vx_status st = st_open(g->data_dir, &so, &s, &err);
    if (st) {
        free(a.paths);
        free_libraries(&a);
        return cli_fail(&err);
    }
    install_stop_handler();

    int code = CLI_EXIT_OK;
    for (int round = 0;; round++) {
        /* With --every, later rounds re-crawl by name the libraries of the first one. */
        if (round > 0) a.path_count = 0;
        code = index_round(g, s, &a, -1);
        if (a.watch && code != CLI_EXIT_INTERRUPTED && !index_stop_requested) {
            code = watch_libraries(g, s, &a);
            break;
        }
        if (!a.every_ms || code == CLI_EXIT_INTERRUPTED || index_stop_requested) break;
        int64_t next = vx_now_ns() / 1000000 + a.every_ms;
        char when[32];
        vx_format_duration(a.every_ms, when, sizeof when);
        vx_log(VX_LOG_INFO, "next run in %s (Ctrl-C stops)", when);
        /* Sleep in short steps so a signal ends the wait at once: a stop between runs is a
         * clean shutdown (exit 0). */
        while (!index_stop_requested && vx_now_ns() / 1000000 < next)
            usleep(100 * 1000);
        if (index_stop_requested) break;
    }
    st_close(s);
    free(a.paths);
    free_libraries(&a);
    return code;
}
