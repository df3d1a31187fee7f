/* indexer/idx_text.c — the text modalities of a video: subtitle files beside it, speech
 * recognition with pocketsphinx behind an energy gate, on-screen text with tesseract in
 * sparse-text mode, and the cleaning that makes any of it safe to store and print.
 *
 * Both engines are optional at build time (VIDX_HAVE_POCKETSPHINX, VIDX_HAVE_TESSERACT) and at
 * run time (their model files); without them the functions say why, and the run goes on.
 *
 * Global state: sphinxbase logs through one process-wide stream, silenced once (err_set_logfp)
 * under asr_init_lock, which also serialises ps_init (it touches that stream). */
#include "idx_text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef VIDX_HAVE_POCKETSPHINX
#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#endif
#ifdef VIDX_HAVE_TESSERACT
#include <tesseract/capi.h>
#endif

/* ---- cleaning ----------------------------------------------------------------------------- */

/* Is p (n bytes) the start of a markup tag we drop: <i>, </font>, <b>, <c.yellow>, <00:01.000>
 * (WebVTT karaoke), {\an8}? Returns the tag's length, else 0. */
static size_t tag_len(const char *p, size_t n)
{
    char close;
    if (p[0] == '<' && n > 1 &&
        (isalpha((unsigned char)p[1]) || p[1] == '/' || isdigit((unsigned char)p[1])))
        close = '>';
    else if (p[0] == '{' && n > 1 && p[1] == '\\')
        close = '}';
    else
        return 0;
    for (size_t i = 1; i < n && i < 256; i++) {
        if (p[i] == close) return i + 1;
        if (p[i] == '<' || p[i] == '{' || p[i] == '\n') return 0;
    }
    return 0;
}

char *idx__text_clean(const char *text, size_t len, size_t max_bytes)
{
    const unsigned char *in = (const unsigned char *)text;
    int valid = 1;
    for (size_t i = 0; i < len;) {
        int l = vx_utf8_len(in + i, len - i);
        if (!l) {
            valid = 0;
            break;
        }
        i += (size_t)l;
    }
    /* Latin-1 doubles at most; cleaning only shrinks. */
    size_t cap = valid ? len : len * 2;
    char *dec = malloc(cap + 1);
    if (!dec) return NULL;
    size_t n = 0;
    if (valid) {
        memcpy(dec, text, len);
        n = len;
    } else {
        for (size_t i = 0; i < len; i++) {
            unsigned c = in[i];
            if (c < 0x80) {
                dec[n++] = (char)c;
            } else {
                dec[n++] = (char)(0xc0 | (c >> 6));
                dec[n++] = (char)(0x80 | (c & 0x3f));
            }
        }
    }
    char *out = malloc((n < max_bytes ? n : max_bytes) + 1);
    if (!out) {
        free(dec);
        return NULL;
    }
    size_t w = 0;
    int space = 0;
    for (size_t i = 0; i < n;) {
        size_t t = tag_len(dec + i, n - i);
        if (t) {
            space = w > 0;
            i += t;
            continue;
        }
        unsigned char c = (unsigned char)dec[i];
        int l = vx_utf8_len((const unsigned char *)dec + i, n - i);
        if (l == 0) l = 1; /* cannot happen after decoding; be safe */
        if (l == 1 && (c < 0x20 || c == 0x7f || c == ' ')) {
            space = w > 0;
            i++;
            continue;
        }
        /* U+FEFF (BOM) and U+00A0 (no-break space) */
        if (l == 3 && (unsigned char)dec[i] == 0xef && (unsigned char)dec[i + 1] == 0xbb &&
            (unsigned char)dec[i + 2] == 0xbf) {
            i += 3;
            continue;
        }
        if (l == 2 && c == 0xc2 && (unsigned char)dec[i + 1] == 0xa0) {
            space = w > 0;
            i += 2;
            continue;
        }
        size_t need = (size_t)l + (space ? 1 : 0);
        if (w + need > max_bytes) break;
        if (space) out[w++] = ' ';
        space = 0;
        memcpy(out + w, dec + i, (size_t)l);
        w += (size_t)l;
        i += (size_t)l;
    }
    out[w] = 0;
    free(dec);
    return out;
}

vx_status idx__subtitle_bytes_utf8(const char *bytes, size_t len, char **out, size_t *out_len,
                                   vx_err *err)
{
    *out = NULL;
    *out_len = 0;
    const unsigned char *b = (const unsigned char *)bytes;
    if (len >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff)))
        return VX_OK; /* UTF-16 with a BOM: FFmpeg converts it */
    size_t extra = 0;
    int valid = 1;
    for (size_t i = 0; i < len;) {
        int l = vx_utf8_len(b + i, len - i);
        if (!l) {
            valid = 0;
            break;
        }
        i += (size_t)l;
    }
    if (valid) return VX_OK;
    for (size_t i = 0; i < len; i++)
        extra += b[i] >= 0x80;
    char *u = malloc(len + extra + 1);
    if (!u) return vx_fail(err, VX_ENOMEM, "out of memory converting a subtitle file");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] < 0x80) {
            u[n++] = (char)b[i];
        } else {
            u[n++] = (char)(0xc0 | (b[i] >> 6));
            u[n++] = (char)(0x80 | (b[i] & 0x3f));
        }
    }
    u[n] = 0;
    *out = u;
    *out_len = n;
    return VX_OK;
}

/* ---- sidecar subtitle files ---------------------------------------------------------------- */

static int is_subtitle_ext(const char *ext)
{
    return !strcasecmp(ext, "srt") || !strcasecmp(ext, "vtt") || !strcasecmp(ext, "ass") ||
           !strcasecmp(ext, "ssa");
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void idx__strings_free(char **strings, size_t count)
{
    for (size_t i = 0; strings && i < count; i++)
        free(strings[i]);
    free(strings);
}

vx_status idx__sidecar_subtitles(const char *video_path, char ***out, size_t *out_count,
                                 vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    const char *slash = strrchr(video_path, '/');
    char dir[PATH_MAX];
    const char *base = slash ? slash + 1 : video_path;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - video_path == 0 ? 1 : slash - video_path),
                 video_path);
    else
        snprintf(dir, sizeof dir, ".");
    const char *dot = strrchr(base, '.');
    size_t stem_len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    DIR *d = opendir(dir);
    if (!d) return VX_OK; /* nothing beside it we can read: not an error for the video */
    char **names = NULL;
    size_t n = 0, cap = 0;
    vx_status st = VX_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (strncmp(name, base, stem_len) || name[stem_len] != '.') continue;
        const char *ext = strrchr(name, '.');
        if (!ext || !is_subtitle_ext(ext + 1)) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            if (ncap > 64) break; /* more is not a subtitle collection, it is a mistake */
            char **grown = realloc(names, ncap * sizeof *grown);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory");
                break;
            }
            names = grown;
            cap = ncap;
        }
        if (!(names[n] = vx_asprintf(err, "%s/%s", strcmp(dir, "/") ? dir : "", name))) {
            st = VX_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (st) {
        idx__strings_free(names, n);
        return st;
    }
    if (n > 1) qsort(names, n, sizeof *names, cmp_strings);
    *out = names;
    *out_count = n;
    return VX_OK;
}

/* ---- speech ----------------------------------------------------------------------------- */

void idx__words_free(idx_words *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->count; i++)
        free(w->items[i].text);
    free(w->items);
    memset(w, 0, sizeof *w);
}

#ifdef VIDX_HAVE_POCKETSPHINX

/* Energy gate: 10 ms frames above GATE_DB dBFS are speech; pauses shorter than GATE_BRIDGE
 * frames are bridged, regions shorter than GATE_MIN frames dropped, GATE_PAD frames of context
 * added on each side, regions longer than GATE_MAX frames split. */
#define FRAME_SAMPLES 160
#define GATE_DB (-45.0)
#define GATE_BRIDGE 30
#define GATE_MIN 15
#define GATE_PAD 20
#define GATE_MAX 2000
#define CHUNK_MS 30000

static pthread_mutex_t asr_init_lock = PTHREAD_MUTEX_INITIALIZER;

struct idx_asr {
    cmd_ln_t *config;
    ps_decoder_t *ps;
    int16_t *pcm;
    size_t pcm_cap;
    float *energy_db;
    size_t energy_cap;
};

static void model_paths(const char *dir, char hmm[PATH_MAX], char lm[PATH_MAX], char dict[PATH_MAX])
{
    snprintf(hmm, PATH_MAX, "%s/en-us", dir);
    snprintf(lm, PATH_MAX, "%s/en-us.lm.bin", dir);
    snprintf(dict, PATH_MAX, "%s/cmudict-en-us.dict", dir);
}

const char *idx__asr_unavailable(const char *model_dir)
{
    char hmm[PATH_MAX], lm[PATH_MAX], dict[PATH_MAX], mdef[PATH_MAX + 8];
    model_paths(model_dir ? model_dir : IDX_ASR_DEFAULT_MODEL, hmm, lm, dict);
    snprintf(mdef, sizeof mdef, "%s/mdef", hmm);
    if (access(mdef, R_OK) || access(lm, R_OK) || access(dict, R_OK))
        return "the English speech model is not installed (apt-get install pocketsphinx-en-us)";
    return NULL;
}

vx_status idx__asr_create(const char *model_dir, idx_asr **out, vx_err *err)
{
    *out = NULL;
    const char *why = idx__asr_unavailable(model_dir);
    if (why) return vx_fail(err, VX_EUNSUPPORTED, "speech recognition: %s", why);
    char hmm[PATH_MAX], lm[PATH_MAX], dict[PATH_MAX];
    model_paths(model_dir ? model_dir : IDX_ASR_DEFAULT_MODEL, hmm, lm, dict);
    idx_asr *a = calloc(1, sizeof *a);
    if (!a) return vx_fail(err, VX_ENOMEM, "out of memory");
    pthread_mutex_lock(&asr_init_lock);
    err_set_logfp(NULL);
    a->config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict, NULL);
    if (a->config) a->ps = ps_init(a->config);
    pthread_mutex_unlock(&asr_init_lock);
    if (!a->ps) {
        idx__asr_free(a);
        return vx_fail(err, VX_EFORMAT, "speech recognition: cannot load the model in %s", hmm);
    }
    *out = a;
    return VX_OK;
}

void idx__asr_free(idx_asr *a)
{
    if (!a) return;
    if (a->ps) ps_free(a->ps);
    if (a->config) cmd_ln_free_r(a->config);
    free(a->pcm);
    free(a->energy_db);
    free(a);
}

static int is_filler(const char *w)
{
    return w[0] == '<' || w[0] == '[' || w[0] == '+' || !w[0];
}

/* Decodes samples [from, to) of x (16 kHz), whose first sample is at offset_ms. */
static vx_status decode_region(idx_asr *a, const float *x, size_t from, size_t to,
                               int64_t offset_ms, idx_words *out, idx_asr_stats *stats, vx_err *err)
{
    size_t n = to - from;
    if (n > a->pcm_cap) {
        int16_t *grown = realloc(a->pcm, n * sizeof *grown);
        if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory for speech");
        a->pcm = grown;
        a->pcm_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        float v = x[from + i] * 32767.0f;
        a->pcm[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : lrintf(v));
    }
    stats->speech_ms += (int64_t)(n / 16);
    if (ps_start_utt(a->ps) < 0) return vx_fail(err, VX_EFORMAT, "speech recognition failed");
    ps_process_raw(a->ps, a->pcm, n, FALSE, TRUE);
    ps_end_utt(a->ps);
    int64_t region_ms = offset_ms + (int64_t)(from / 16);
    logmath_t *lmath = ps_get_logmath(a->ps);
    for (ps_seg_t *seg = ps_seg_iter(a->ps); seg; seg = ps_seg_next(seg)) {
        const char *word = ps_seg_word(seg);
        if (!word || is_filler(word)) continue;
        int sf, ef;
        ps_seg_frames(seg, &sf, &ef);
        int32 ascr, lscr, lback;
        int32 post = ps_seg_prob(seg, &ascr, &lscr, &lback);
        if (out->count == out->cap) {
            size_t ncap = out->cap ? out->cap * 2 : 64;
            idx_word *grown = realloc(out->items, ncap * sizeof *grown);
            if (!grown) {
                ps_seg_free(seg);
                return vx_fail(err, VX_ENOMEM, "out of memory for words");
            }
            out->items = grown;
            out->cap = ncap;
        }
        /* "read(2)": an alternative pronunciation of "read" */
        size_t len = strcspn(word, "(");
        char *text = malloc(len + 1);
        if (!text) {
            ps_seg_free(seg);
            return vx_fail(err, VX_ENOMEM, "out of memory for words");
        }
        memcpy(text, word, len);
        text[len] = 0;
        idx_word *w = &out->items[out->count++];
        w->text = text;
        w->start_ms = region_ms + (int64_t)sf * 10;
        w->end_ms = region_ms + (int64_t)(ef + 1) * 10;
        double p = logmath_exp(lmath, post);
        w->confidence = (float)(p > 1.0 ? 1.0 : p < 0.0 ? 0.0 : p);
        stats->words++;
    }
    return VX_OK;
}

vx_status idx__asr_video(idx_asr *a, media_reader *reader, int64_t duration_ms, idx_words *out,
                         idx_asr_stats *stats, vx_err *err)
{
    int64_t t0 = vx_now_ns();
    vx_status st = VX_OK;
    int64_t t = 0;
    while (t < duration_ms && !st) {
        int64_t chunk_end = t + CHUNK_MS < duration_ms ? t + CHUNK_MS : duration_ms;
        float *x = NULL;
        size_t n = 0;
        if ((st = media_read_audio_16k_mono(reader, t, chunk_end, &x, &n, err))) break;
        stats->audio_ms += (int64_t)(n / 16);
        size_t frames = n / FRAME_SAMPLES;
        if (frames > a->energy_cap) {
            float *grown = realloc(a->energy_db, frames * sizeof *grown);
            if (!grown) {
                free(x);
                st = vx_fail(err, VX_ENOMEM, "out of memory for speech");
                break;
            }
            a->energy_db = grown;
            a->energy_cap = frames;
        }
        for (size_t f = 0; f < frames; f++) {
            double e = 0;
            for (size_t k = 0; k < FRAME_SAMPLES; k++) {
                double v = x[f * FRAME_SAMPLES + k];
                e += v * v;
            }
            a->energy_db[f] = (float)(10.0 * log10(e / FRAME_SAMPLES + 1e-12));
        }
        int64_t next_t = chunk_end;
        size_t f = 0;
        while (f < frames && !st) {
            while (f < frames && a->energy_db[f] < GATE_DB)
                f++;
            if (f >= frames) break;
            size_t start = f, last = f;
            /* extend while speech resumes within GATE_BRIDGE frames */
            for (size_t g = f + 1; g < frames && g - last <= GATE_BRIDGE && g - start < GATE_MAX;
                 g++)
                if (a->energy_db[g] >= GATE_DB) last = g;
            f = last + 1;
            if (last + 1 - start < GATE_MIN) continue;
            /* a region that runs into the chunk's end continues in the next chunk, unless it
             * began the chunk (then it is as long as a chunk: decode it here) */
            if (chunk_end < duration_ms && last + GATE_BRIDGE >= frames && start > GATE_PAD) {
                next_t = t + (int64_t)(start - GATE_PAD) * 10;
                break;
            }
            size_t from = start > GATE_PAD ? start - GATE_PAD : 0;
            size_t to = last + 1 + GATE_PAD < frames ? last + 1 + GATE_PAD : frames;
            st = decode_region(a, x, from * FRAME_SAMPLES, to * FRAME_SAMPLES, t, out, stats, err);
        }
        free(x);
        t = next_t > t ? next_t : chunk_end;
    }
    stats->ns += vx_now_ns() - t0;
    return st;
}

#else /* no pocketsphinx at build time */

struct idx_asr {
    int unused;
};
const char *idx__asr_unavailable(const char *model_dir)
{
    (void)model_dir;
    return "this vidx was built without pocketsphinx (libpocketsphinx-dev)";
}
vx_status idx__asr_create(const char *model_dir, idx_asr **out, vx_err *err)
{
    *out = NULL;
    return vx_fail(err, VX_EUNSUPPORTED, "speech recognition: %s", idx__asr_unavailable(model_dir));
}
void idx__asr_free(idx_asr *a)
{
    free(a);
}
vx_status idx__asr_video(idx_asr *a, media_reader *reader, int64_t duration_ms, idx_words *out,
                         idx_asr_stats *stats, vx_err *err)
{
    return vx_fail(err, VX_EUNSUPPORTED, "speech recognition: %s", idx__asr_unavailable(NULL));
}
#endif

/* ---- on-screen text ------------------------------------------------------------------------- */

#ifdef VIDX_HAVE_TESSERACT

struct idx_ocr {
    TessBaseAPI *api;
    int min_confidence;
};

static vx_status ocr_open(TessBaseAPI **out, vx_err *err)
{
    TessBaseAPI *api = TessBaseAPICreate();
    if (!api) return vx_fail(err, VX_ENOMEM, "out of memory");
    /* tesseract prints warnings to stderr unless told where to write them */
    TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    if (TessBaseAPIInit3(api, NULL, "eng") != 0) {
        TessBaseAPIDelete(api);
        return vx_fail(err, VX_EUNSUPPORTED,
                       "on-screen text: the English OCR data is not installed (apt-get install "
                       "tesseract-ocr-eng)");
    }
    TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    TessBaseAPISetPageSegMode(api, PSM_SPARSE_TEXT);
    *out = api;
    return VX_OK;
}

/* Looks for eng.traineddata where tesseract looks (TESSDATA_PREFIX, then Debian's folders)
 * instead of loading it: loading costs a third of a second, and a run that finds no text
 * should start at once. A file that is there but does not load is reported by the decoder. */
const char *idx__ocr_unavailable(void)
{
    static const char *const dirs[] = {"/usr/share/tesseract-ocr/5/tessdata",
                                       "/usr/share/tesseract-ocr/4.00/tessdata",
                                       "/usr/share/tessdata", "/usr/local/share/tessdata"};
    char path[PATH_MAX];
    const char *prefix = getenv("TESSDATA_PREFIX");
    if (prefix && *prefix) {
        snprintf(path, sizeof path, "%s/eng.traineddata", prefix);
        if (access(path, R_OK) == 0) return NULL;
        snprintf(path, sizeof path, "%s/tessdata/eng.traineddata", prefix);
        if (access(path, R_OK) == 0) return NULL;
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/eng.traineddata", dirs[i]);
        if (access(path, R_OK) == 0) return NULL;
    }
    return "the English OCR data is not installed (apt-get install tesseract-ocr-eng)";
}

vx_status idx__ocr_create(int min_confidence, idx_ocr **out, vx_err *err)
{
    *out = NULL;
    idx_ocr *o = calloc(1, sizeof *o);
    if (!o) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status st = ocr_open(&o->api, err);
    if (st) {
        free(o);
        return st;
    }
    o->min_confidence = min_confidence;
    *out = o;
    return VX_OK;
}

void idx__ocr_free(idx_ocr *o)
{
    if (!o) return;
    TessBaseAPIEnd(o->api);
    TessBaseAPIDelete(o->api);
    free(o);
}

/* A word worth keeping: at least two letters or digits, or one digit (a lone letter is mostly
 * noise from edges and textures). */
static int plausible_word(const char *w)
{
    int alnum = 0, digit = 0;
    for (const unsigned char *p = (const unsigned char *)w; *p; p++) {
        if (isalnum(*p) || *p >= 0x80) alnum++;
        if (isdigit(*p)) digit++;
    }
    return alnum >= 2 || digit >= 1;
}

vx_status idx__ocr_frame(idx_ocr *o, const uint8_t *rgb, int width_px, int height_px, char **out,
                         int *out_words, vx_err *err)
{
    *out = NULL;
    *out_words = 0;
    vx_buf b = {0};
    vx_status st = vx_buf_append(&b, "", 1, err);
    if (st) return st;
    b.len = 0;
    if (width_px >= 16 && height_px >= 16) {
        TessBaseAPISetImage(o->api, rgb, width_px, height_px, 3, width_px * 3);
        TessBaseAPISetSourceResolution(o->api, 70);
        if (TessBaseAPIRecognize(o->api, NULL) == 0) {
            TessResultIterator *it = TessBaseAPIGetIterator(o->api);
            if (it) {
                do {
                    char *word = TessResultIteratorGetUTF8Text(it, RIL_WORD);
                    if (!word) continue;
                    float conf = TessResultIteratorConfidence(it, RIL_WORD);
                    if (conf >= (float)o->min_confidence && plausible_word(word) &&
                        b.len < IDX_TEXT_PIECE_MAX) {
                        st = vx_buf_printf(&b, err, "%s%s", b.len ? " " : "", word);
                        (*out_words)++;
                    }
                    TessDeleteText(word);
                } while (!st && TessResultIteratorNext(it, RIL_WORD));
                TessResultIteratorDelete(it);
            }
        }
        TessBaseAPIClear(o->api);
    }
    if (st) {
        vx_buf_free(&b);
        return st;
    }
    *out = idx__text_clean(b.data, b.len, IDX_TEXT_PIECE_MAX);
    vx_buf_free(&b);
    if (!*out) return vx_fail(err, VX_ENOMEM, "out of memory");
    return VX_OK;
}

#else /* no tesseract at build time */

struct idx_ocr {
    int unused;
};
const char *idx__ocr_unavailable(void)
{
    return "this vidx was built without tesseract (libtesseract-dev)";
}
vx_status idx__ocr_create(int min_confidence, idx_ocr **out, vx_err *err)
{
    *out = NULL;
    return vx_fail(err, VX_EUNSUPPORTED, "on-screen text: %s", idx__ocr_unavailable());
}
void idx__ocr_free(idx_ocr *o)
{
    free(o);
}
vx_status idx__ocr_frame(idx_ocr *o, const uint8_t *rgb, int width_px, int height_px, char **out,
                         int *out_words, vx_err *err)
{
    *out = NULL;
    *out_words = 0;
    return vx_fail(err, VX_EUNSUPPORTED, "on-screen text: %s", idx__ocr_unavailable());
}
#endif
