/* The `vidx` program: global options, the command table, help texts, exit codes. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef VIDX_VERSION
#define VIDX_VERSION "0.0.0"
#endif

static const char usage_text[] =
    "vidx — search hours of video by meaning\n"
    "\n"
    "Usage: vidx [--data DIR] [--model DIR] [--json] COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  index PATH|URL... crawl folders or web listings into libraries and index them\n"
    "  search WORDS      find where words are spoken, subtitled, shown on screen or in titles\n"
    "  similar ID        the segments most like an indexed segment (its stored vectors)\n"
    "  serve             the web UI and HTTP JSON API (search, playback, libraries, reindex)\n"
    "  status            libraries, videos, segments, vectors and index freshness\n"
    "  verify [--repair] check the catalog and every vector index; --repair fixes them\n"
    "  model info DIR    a model directory's variant, towers, tensors and parameter count\n"
    "  embed             embed a video window or a .npy tensor with a model (for checks)\n"
    "  help [COMMAND]    this text, or a command's own help\n"
    "  version           the version of vidx and of the libraries it uses\n"
    "\n"
    "Global options (before or after the command):\n"
    "  --data DIR        data directory (default: $VIDX_DATA, else ./vidx-data)\n"
    "  --model DIR       model directory (default: $VIDX_MODEL)\n"
    "  --json            machine-readable output on stdout\n"
    "  -h, --help        help\n"
    "\n"
    "Exit codes:\n"
    "  0    success\n"
    "  1    the command failed (one-line message on stderr)\n"
    "  2    bad command line\n"
    "  3    verify found problems and did not repair them\n"
    "  4    another vidx process holds the data directory's writer lock\n"
    "  130  interrupted\n"
    "\n"
    "Environment: VIDX_DATA, VIDX_MODEL, VIDX_TOKEN, VIDX_LOG (debug|info|warn|error|quiet).\n";

static const struct {
    const char *name;
    cli_command_fn fn;
    const char *help;
} commands[] = {
    {"index", cmd_index,
     "Usage: vidx index PATH|URL... [--library NAME] [--model DIR] [options]\n"
     "       vidx index --library NAME [options]      (re-crawl a library by name)\n"
     "\n"
     "Crawls each folder (recursively; symbolic-link loops, hidden and temporary files are\n"
     "skipped; videos are recognised by probing, not only by extension) into a library, cuts\n"
     "every video into fixed windows and stores them, each with a JPEG thumbnail and, with a\n"
     "model, its vision embedding (and, with a text tower, each window's speech and subtitle\n"
     "text embedded as its speech vector; with an audio tower, its audio vector). A re-run\n"
     "does only what changed: unchanged files cost one stat, moved files keep their segments\n"
     "and vectors, deleted files leave the catalog, a new model embeds only what lacks its\n"
     "vectors. Broken, audio-only and still-growing files are recorded as failed with the\n"
     "reason and retried when they change. Ctrl-C stops after the videos in flight; a re-run\n"
     "continues where it stopped. An http(s):// URL is crawled\n"
     "through the directory listing pages its server generates; each video is decoded from a\n"
     "temporary copy; a URL ending in .txt, .m3u or .m3u8 is a manifest: a text file with one\n"
     "video URL per line (# comments; relative URLs resolve against it). Over HTTP(S), a\n"
     "file's ETag and Last-Modified are stored and sent back (If-None-Match,\n"
     "If-Modified-Since): 304 means unchanged; content hashes read only the file's two ends\n"
     "(Range requests).\n"
     "\n"
     "A library remembers its options (window, overlap, shot snapping, text modalities,\n"
     "thumbnails, model, precision, --every): `vidx index --library NAME` re-crawls it with\n"
     "them, options given again replace them, and --model/VIDX_MODEL override the stored\n"
     "model for this run.\n"
     "\n"
     "  --library NAME   library name (default: the folder's name)\n"
     "  --window TIME    window length (default 4s); a last partial window is kept when it\n"
     "                   is at least 1 s long (a video shorter than one window gets one)\n"
     "  --overlap TIME   overlap between consecutive windows (default 0)\n"
     "  --snap-to-shots  detect shot cuts (one more decode of each new video) and move each\n"
     "                   window's end to the first cut from half a window before to a quarter\n"
     "                   after it, so segments do not straddle cuts; a long shot is still\n"
     "                   split every window (--no-snap-to-shots: fixed windows again).\n"
     "                   Videos already indexed keep their segments until they change\n"
     "  --jobs N         decoding threads (default: all cores)\n"
     "  --threads N      encoder threads (default: all cores)\n"
     "  --no-thumbnails  store no thumbnails\n"
     "  --no-asr         no speech recognition (on when pocketsphinx-en-us is installed)\n"
     "  --no-ocr         no on-screen text (on when tesseract-ocr-eng is installed)\n"
     "  --no-subtitles   ignore subtitle streams and sidecar files (name.srt, name.en.vtt)\n"
     "  --asr, --ocr, --subtitles, --thumbnails   turn a stored --no-... back on\n"
     "  --no-model       index without a model (and forget the library's stored model)\n"
     "  --precision P    the vision tower's arithmetic: fp32 (the fidelity path) or bf16\n"
     "                   (faster on CPUs with AVX512-BF16 or AMX; cosine >= 0.999 to fp32);\n"
     "                   default: the model's on this CPU, as `vidx model info` says\n"
     "  --dry-run        say what would be indexed, moved and deleted; change nothing\n"
     "  --every TIME     keep running: re-crawl every TIME (e.g. 6h, 30m) until Ctrl-C or\n"
     "                   SIGTERM; a stop while waiting exits 0\n"
     "  --watch          keep running: after the first run, watch the library folders\n"
     "                   (inotify, subfolders included) and re-index a library when files\n"
     "                   appear, change, move or go; until Ctrl-C or SIGTERM (exit 0 while\n"
     "                   waiting). Local folders only\n"
     "  --settle TIME    with --watch: a new or written file is taken once its size has not\n"
     "                   changed for TIME (default 5s)\n"
     "  --max-size SIZE  files larger than SIZE are recorded as failed (default 20GiB)\n"
     "  --http-timeout TIME  HTTP(S): connect timeout, limit of listing/HEAD/range requests,\n"
     "                   and how long a download may stall (default 30s)\n"
     "  --http-retries N HTTP(S): tries again on 5xx, 429 and timeouts, waiting 250ms,\n"
     "                   500ms, ... in between (default 3)\n"
     "  --json           print the run's summary as JSON\n"
     "\n"
     "Speech (pocketsphinx), on-screen text (tesseract), subtitles and file names are stored\n"
     "as texts that `vidx search` finds, with or without a model; without --model (or\n"
     "VIDX_MODEL) segments get no vectors. The summary says what each text modality cost.\n"
     "Exit code 0 when the run completed (files that failed are listed, not fatal), 1 when it\n"
     "could not run, 4 when another indexer holds the data directory, 130 when interrupted.\n"},
    {"search", cmd_search,
     "Usage: vidx search WORDS... [--model DIR] [--limit N] [--page N] [--json] [options]\n"
     "       vidx search --clip FILE [--start S] [--end E] --model DIR [options]\n"
     "       vidx search --video ID --start S [--end E] --model DIR [options]\n"
     "\n"
     "Finds the moments of your videos where the words are spoken (speech recognition),\n"
     "subtitled, shown on screen (OCR) or in the file name, ranked by relevance (BM25), as\n"
     "time ranges (adjacent matching segments merge) with a snippet of the matched text.\n"
     "With --model DIR (or VIDX_MODEL) naming a model with a text tower whose vectors were\n"
     "indexed, the query is also embedded and matched against what is *shown* (vision) and\n"
     "what is *said* (speech: transcripts and subtitles embedded by the indexer); the\n"
     "rankings are fused with weights from each range's streams (docs/api.md); results then\n"
     "carry scores.vision / scores.speech.\n"
     "\n"
     "  red car          both words, in the same segment's text\n"
     "  \"red car\"        the phrase\n"
     "  trans*           words starting with trans\n"
     "  car -truck       leave out texts that contain truck\n"
     "  red OR blue      either word\n"
     "Anything else is taken as text: nothing you type is a syntax error.\n"
     "\n"
     "  --limit N          at most N results per page (default 10, at most 1000)\n"
     "  --page N           the Nth page of N results (default 1)\n"
     "  --modalities LIST  only these, comma-separated: lexical, vision, speech\n"
     "  --library NAME     only videos of this library\n"
     "  --path-prefix P    only videos whose path (or URL) starts with P\n"
     "  --rerank K         re-rank the top K (1..256) with the model's matching head (s2\n"
     "                     models): decodes and encodes their windows again, so it is slow\n"
     "                     on the CPU; off by default\n"
     "  --rerank-budget T  stop re-ranking after this time (default 2s)\n"
     "  --clip FILE        search with a video clip instead of words: its window\n"
     "                     [--start, --end) (--end default: 4 s after --start) through the\n"
     "                     vision tower, matched against the indexed windows\n"
     "  --video ID         the same with a window of an indexed video\n"
     "  --start S, --end E seconds (12.5) or durations (1m30s) of the clip's window\n"
     "  --json             results in the JSON schema of docs/api.md\n"
     "\n"
     "Opens the catalog read-only; safe while an indexer runs. Exit code 0 also when nothing\n"
     "matches; 1 for a query with no words to search for, an unknown video or a bad range.\n"},
    {"similar", cmd_similar,
     "Usage: vidx similar SEGMENT_ID [--limit N] [--page N] [--json] [--data DIR]\n"
     "\n"
     "The segments most like segment SEGMENT_ID (an id from `vidx search --json`), by its\n"
     "stored vectors in every space it has (vision, speech): no model needed. Adjacent\n"
     "segments merge into ranges; the segment itself is left out. Exit code 1 for an unknown\n"
     "segment or one without vectors (index with --model DIR).\n"},
    {"serve", cmd_serve,
     "Usage: vidx [--model DIR] serve [--listen HOST:PORT] [--token T] [options]\n"
     "\n"
     "Serves the web UI at / and the HTTP JSON API of docs/api.md over the data directory\n"
     "(searches read it while an indexer may run beside it): /api/info, /api/search (text;\n"
     "clips by video range or upload), /api/videos, /api/videos/ID/stream (remuxed or\n"
     "transcoded when a browser cannot play the original), /api/segments/ID/thumbnail,\n"
     "/api/segments/ID/similar, /api/libraries, /api/reindex, /api/jobs, /healthz, /metrics.\n"
     "With --model DIR (or VIDX_MODEL) queries are also searched by meaning and clip search\n"
     "works. Prints the address it listens on; SIGTERM or Ctrl-C stops accepting, stops a\n"
     "reindex job after the video in flight, lets requests finish and exits 0.\n"
     "\n"
     "  --listen HOST:PORT    address (default 127.0.0.1:8080; port 0: any free port)\n"
     "  --threads N           worker threads, 1..64 (default 4)\n"
     "  --token T             require this token (Authorization: Bearer T or ?token=T) on\n"
     "                        everything but /healthz (default: $VIDX_TOKEN). Required when\n"
     "                        HOST is not a loopback address\n"
     "  --timeout TIME        close connections idle this long (default 10s)\n"
     "  --max-body SIZE       largest request body (default 64k); larger is 413\n"
     "  --max-connections N   open connections at most (default 256)\n"
     "  --max-upload SIZE     largest uploaded clip (default 256M); larger is 413\n"
     "  --reindex-every TIME  reindex every library with its stored options on this period\n"
     "                        (e.g. 6h), the first run at start; progress in /api/jobs\n"
     "  --play-cache DIR|-    where playable copies of videos the browser cannot play are\n"
     "                        kept (default DATA/playback; - : none, serve originals)\n"
     "  --play-cache-size SIZE  the cache's limit; least recently used copies go (default 10G)\n"},
    {"status", cmd_status,
     "Usage: vidx status [--data DIR] [--json]\n"
     "\n"
     "Shows the data directory's libraries, videos by status, segments, vectors per model and\n"
     "modality, whether each vector index reflects the catalog (fresh) or must be replayed,\n"
     "and disk usage. Opens the catalog read-only; safe while an indexer runs.\n"},
    {"verify", cmd_verify,
     "Usage: vidx verify [--repair] [--data DIR] [--json]\n"
     "\n"
     "Checks the catalog (SQLite integrity_check, foreign keys, orphan rows) and every vector\n"
     "index against the catalog (vector count and ids), and looks for orphan files.\n"
     "Exit code 0 when all is well, 3 when problems were found and not repaired.\n"
     "\n"
     "  --repair   rebuild wrong or missing indexes from the stored vectors, delete orphan\n"
     "             rows and files (takes the writer lock; exit 4 if an indexer holds it)\n"},
    {"model", cmd_model,
     "Usage: vidx model info DIR [--json]\n"
     "\n"
     "Prints a model directory's variant, model id, towers (vision, text, audio), architecture\n"
     "numbers, preprocessing, tensors and parameter count. The directory holds config.json and\n"
     "model.safetensors, made from official checkpoints by scripts/convert_internvideo2.py.\n"},
    {"embed", cmd_embed,
     "Usage: vidx embed --model DIR VIDEO [--start TIME] [--end TIME] [options]\n"
     "       vidx embed --model DIR --input TENSOR.npy [options]\n"
     "       vidx embed --model DIR --text \"a dog catching a frisbee\"\n"
     "       vidx embed --model DIR --audio FILE [--start TIME] [--end TIME]\n"
     "\n"
     "Prints one L2-normalised vector as JSON, to check vidx against other implementations:\n"
     "a video window (the model's frame count sampled by the middle rule over [--start, --end),\n"
     "default the first 4 s), an already-normalised input tensor of shape (1, 3, T, H, W), a\n"
     "text query (models with a text tower; English), or the audio of a window (s2-6B only).\n"
     "\n"
     "  --start TIME, --end TIME  window, e.g. 12s, 1m30s, 1500ms (default 0 and start+4s)\n"
     "  --frames N                frames per window (default: the model's)\n"
     "  --tokens FILE.npy         also write the raw token matrix (N, C)\n"
     "  --precision fp32|bf16     fp32 is the fidelity path; bf16 the faster speed mode\n"
     "                            (default: the model's on this CPU, see `vidx model info`)\n"
     "  --threads N               CPU threads (default: all cores)\n"},
};

int cli_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int cli_fail(const vx_err *err)
{
    fprintf(stderr, "vidx: error: %s\n", err->msg[0] ? err->msg : vx_strerror(err->status));
    switch (err->status) {
    case VX_EBUSY: return CLI_EXIT_BUSY;
    case VX_EINTERRUPTED: return CLI_EXIT_INTERRUPTED;
    default: return CLI_EXIT_FAILURE;
    }
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vidx: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (command)
        fprintf(stderr, "Try 'vidx help %s'.\n", command);
    else
        fprintf(stderr, "Try 'vidx help'.\n");
    return CLI_EXIT_USAGE;
}

static int print_command_help(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) {
            fputs(commands[i].help, stdout);
            return CLI_EXIT_OK;
        }
    return cli_usage_error(NULL, "unknown command '%s'", name);
}

static int print_version(void)
{
    printf("vidx %s\n", VIDX_VERSION);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    cli_globals g = {0};
    g.data_dir = getenv("VIDX_DATA");
    if (!g.data_dir || !*g.data_dir) g.data_dir = "./vidx-data";
    g.model_dir = getenv("VIDX_MODEL");
    if (g.model_dir && !*g.model_dir) g.model_dir = NULL;

    /* Global options may stand anywhere; what remains goes to the command. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) {
        fprintf(stderr, "vidx: error: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int nrest = 0, want_help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            g.json = 1;
        } else if (!strcmp(a, "--data") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) {
                free(rest);
                return cli_usage_error(NULL, "%s needs a directory", a);
            }
            if (!strcmp(a, "--data"))
                g.data_dir = argv[++i];
            else
                g.model_dir = argv[++i];
        } else if (!strncmp(a, "--data=", 7)) {
            g.data_dir = a + 7;
        } else if (!strncmp(a, "--model=", 8)) {
            g.model_dir = a + 8;
        } else if (nrest == 0 && cli_is_help(a)) {
            want_help = 1;
        } else if (nrest == 0 && !strcmp(a, "--version")) {
            free(rest);
            return print_version();
        } else if (nrest == 0 && a[0] == '-' && a[1]) {
            free(rest);
            return cli_usage_error(NULL, "unknown option '%s'", a);
        } else {
            rest[nrest++] = argv[i];
        }
    }
    int code;
    if (nrest == 0) {
        fputs(usage_text, want_help ? stdout : stderr);
        code = want_help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    } else if (!strcmp(rest[0], "help")) {
        if (nrest > 1)
            code = print_command_help(rest[1]);
        else {
            fputs(usage_text, stdout);
            code = CLI_EXIT_OK;
        }
    } else if (!strcmp(rest[0], "version")) {
        code = print_version();
    } else {
        code = -1;
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
            if (strcmp(commands[i].name, rest[0])) continue;
            int help = want_help;
            for (int j = 1; j < nrest; j++) help |= cli_is_help(rest[j]);
            code = help ? print_command_help(rest[0]) : commands[i].fn(&g, nrest, rest);
            break;
        }
        if (code < 0) code = cli_usage_error(NULL, "unknown command '%s'", rest[0]);
    }
    free(rest);
    fflush(stdout);
    return code;
}
