/* vidx embed: one window of a video (or a ready tensor from a .npy file) through the vision
 * tower, a text query through the text tower (--text), or an audio window through the audio
 * tower (--audio, s2-6B); prints the vector as JSON. Used to check vidx against other
 * implementations. */
#include "cli.h"
#include "enc.h"
#include "media.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct embed_args {
    const char *video;
    const char *input_npy;
    const char *tokens_npy;
    const char *text;
    const char *audio;
    int64_t start_ms, end_ms;
    int have_end;
    int frames;
    int threads;
    enc_precision precision;
    int have_precision; /* --precision given; else the model's default on this CPU */
} embed_args;

static int parse_args(int argc, char **argv, embed_args *a)
{
    vx_err err = {0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (o[0] != '-') {
            if (a->video) return cli_usage_error("embed", "more than one video given");
            a->video = o;
            continue;
        }
        if (!val) return cli_usage_error("embed", "%s needs a value", o);
        i++;
        if (!strcmp(o, "--input")) a->input_npy = val;
        else if (!strcmp(o, "--tokens")) a->tokens_npy = val;
        else if (!strcmp(o, "--text")) a->text = val;
        else if (!strcmp(o, "--audio")) a->audio = val;
        else if (!strcmp(o, "--start") || !strcmp(o, "--end")) {
            if (vx_parse_duration_ms(val, &n, &err)) return cli_usage_error("embed", "%s: %s", o, err.msg);
            if (!strcmp(o, "--start")) a->start_ms = n;
            else a->end_ms = n, a->have_end = 1;
        } else if (!strcmp(o, "--frames")) {
            if (vx_parse_int(val, 1, 64, "--frames", &n, &err)) return cli_usage_error("embed", "%s", err.msg);
            a->frames = (int)n;
        } else if (!strcmp(o, "--threads")) {
            if (vx_parse_int(val, 1, 1024, "--threads", &n, &err)) return cli_usage_error("embed", "%s", err.msg);
            a->threads = (int)n;
        } else if (!strcmp(o, "--precision")) {
            if (enc_precision_parse(val, &a->precision, &err)) return cli_usage_error("embed", "%s", err.msg);
            a->have_precision = 1;
        } else
            return cli_usage_error("embed", "unknown option '%s'", o);
    }
    if (a->text) {
        if (a->video || a->input_npy || a->tokens_npy || a->audio)
            return cli_usage_error("embed", "--text does not go with a VIDEO, --input, --tokens or --audio");
        return 0;
    }
    if (a->audio) {
        if (a->video || a->input_npy || a->tokens_npy)
            return cli_usage_error("embed", "--audio does not go with a VIDEO, --input or --tokens");
        if (!a->have_end) a->end_ms = a->start_ms + 10000; /* the audio tower's 10 s window */
        if (a->end_ms <= a->start_ms)
            return cli_usage_error("embed", "--end must come after --start");
        return 0;
    }
    if (!a->video == !a->input_npy)
        return cli_usage_error("embed", "give either a VIDEO, --input TENSOR.npy or --text TEXT");
    if (!a->have_end) a->end_ms = a->start_ms + 4000;
    if (a->end_ms <= a->start_ms)
        return cli_usage_error("embed", "--end must come after --start");
    return 0;
}

/* Loads x.npy of shape (1, 3, T, H, W) (or (3, T, H, W)); returns T and H through the args. */
static vx_status load_input(const char *path, enc_npy *x, int *frames, int *size, vx_err *err)
{
    vx_status st = enc_npy_read(path, x, err);
    if (st) return st;
    int off = x->ndim == 5 ? 1 : 0;
    if (x->dtype != ENC_NPY_F32 || (x->ndim != 5 && x->ndim != 4) || (off && x->shape[0] != 1) ||
        x->shape[off] != 3 || x->shape[off + 2] != x->shape[off + 3])
        return vx_fail(err, VX_EINVAL,
                       "%s: expected float32 of shape (1, 3, T, H, H), got %d dimensions", path,
                       x->ndim);
    *frames = (int)x->shape[off + 1];
    *size = (int)x->shape[off + 2];
    return VX_OK;
}

/* text with each invalid UTF-8 sequence replaced by U+FFFD, for the JSON echo; free() it. */
static char *utf8_clean(const char *s, size_t len)
{
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = n > 0 && i + n <= len && !(n == 2 && c < 0xC2) && !(n == 4 && c > 0xF4);
        for (size_t k = 1; ok && k < n; k++) ok = (u[i + k] & 0xC0) == 0x80;
        if (ok && n == 3) {
            unsigned cp = ((c & 15) << 12) | ((u[i + 1] & 63) << 6) | (u[i + 2] & 63);
            ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (ok && n == 4) {
            unsigned cp = ((c & 7) << 18) | ((u[i + 1] & 63) << 12);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (ok && c != 0) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        }
    }
    out[o] = 0;
    return out;
}

/* --text: the query vector of the text tower. */
static int embed_text(const cli_globals *g, const embed_args *a)
{
    vx_err err = {0};
    vx_status st;
    enc_model *model = NULL;
    enc_text *text = NULL;
    float *embedding = NULL;
    int32_t *ids = NULL;
    if ((st = enc_model_open(g->model_dir, &model, &err))) goto done;
    const enc_model_info *info = enc_model_get_info(model);
    if ((st = enc_text_create(model, a->threads, &text, &err))) goto done;
    int dim = enc_text_embed_dim(text), max_len = enc_text_max_len(text);
    embedding = vx_calloc_array((size_t)dim, sizeof(float), &err);
    ids = vx_calloc_array((size_t)max_len * 2, sizeof(int32_t), &err);
    if (!embedding || !ids) { st = err.status; goto done; }
    size_t n_tokens = 0;
    int truncated = 0;
    size_t len = strlen(a->text);
    if ((st = enc_text_tokenize(text, a->text, len, ids, ids + max_len, &n_tokens, &truncated,
                                &err)))
        goto done;
    int64_t t0 = vx_now_ns();
    if ((st = enc_text_forward_ids(text, ids, ids + max_len, embedding, &err))) goto done;
    double ms = (double)(vx_now_ns() - t0) / 1e6;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_id", info->model_id);
    cJSON_AddStringToObject(root, "modality", "text");
    cJSON_AddStringToObject(root, "source", "text");
    char *clean = utf8_clean(a->text, len);
    cJSON_AddStringToObject(root, "text", clean ? clean : "");
    free(clean);
    cJSON_AddNumberToObject(root, "tokens", (double)n_tokens);
    cJSON_AddBoolToObject(root, "truncated", truncated);
    cJSON *idl = cJSON_AddArrayToObject(root, "token_ids");
    for (size_t i = 0; i < n_tokens; i++) cJSON_AddItemToArray(idl, cJSON_CreateNumber(ids[i]));
    cJSON_AddStringToObject(root, "precision", "fp32");
    cJSON_AddStringToObject(root, "backend", enc_text_backend(text));
    cJSON_AddNumberToObject(root, "forward_ms", ms);
    cJSON_AddNumberToObject(root, "dim", dim);
    cJSON *vec = cJSON_AddArrayToObject(root, "embedding");
    for (int i = 0; i < dim; i++) cJSON_AddItemToArray(vec, cJSON_CreateNumber(embedding[i]));
    char *out = cJSON_PrintUnformatted(root);
    if (out) puts(out);
    free(out);
    cJSON_Delete(root);
done:
    free(embedding);
    free(ids);
    enc_text_free(text);
    enc_model_close(model);
    return st ? cli_fail(&err) : CLI_EXIT_OK;
}

/* --audio FILE: the audio vector of [start, end) (s2-6B; at most the first 10 s of it count). */
static int embed_audio(const cli_globals *g, const embed_args *a)
{
    vx_err err = {0};
    vx_status st;
    enc_model *model = NULL;
    enc_audio *audio = NULL;
    media_reader *reader = NULL;
    float *samples = NULL, *embedding = NULL;
    size_t n = 0;
    if ((st = enc_model_open(g->model_dir, &model, &err))) goto done;
    const enc_model_info *info = enc_model_get_info(model);
    if ((st = enc_audio_create(model, a->threads, &audio, &err))) goto done;
    if ((st = media_open(a->audio, MEDIA_NEED_AUDIO, &reader, &err))) goto done;
    if ((st = media_read_audio_16k_mono(reader, a->start_ms, a->end_ms, &samples, &n, &err)))
        goto done;
    int dim = enc_audio_embed_dim(audio);
    embedding = vx_calloc_array((size_t)dim, sizeof(float), &err);
    if (!embedding) { st = err.status; goto done; }
    int64_t t0 = vx_now_ns();
    if ((st = enc_audio_forward(audio, samples, (int64_t)n, embedding, NULL, NULL, &err)))
        goto done;
    double ms = (double)(vx_now_ns() - t0) / 1e6;
    int64_t used = (int64_t)n < enc_audio_max_samples(audio) ? (int64_t)n : enc_audio_max_samples(audio);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_id", info->model_id);
    cJSON_AddStringToObject(root, "modality", "audio");
    cJSON_AddStringToObject(root, "source", a->audio);
    cJSON_AddNumberToObject(root, "start_ms", (double)a->start_ms);
    cJSON_AddNumberToObject(root, "end_ms", (double)a->end_ms);
    cJSON_AddNumberToObject(root, "samples", (double)n);
    cJSON_AddNumberToObject(root, "samples_used", (double)used);
    cJSON_AddNumberToObject(root, "sample_rate", 16000);
    cJSON_AddStringToObject(root, "precision", "fp32");
    cJSON_AddNumberToObject(root, "forward_ms", ms);
    cJSON_AddNumberToObject(root, "dim", dim);
    cJSON *vec = cJSON_AddArrayToObject(root, "embedding");
    for (int i = 0; i < dim; i++) cJSON_AddItemToArray(vec, cJSON_CreateNumber(embedding[i]));
    char *out = cJSON_PrintUnformatted(root);
    if (out) puts(out);
    free(out);
    cJSON_Delete(root);
done:
    free(samples);
    free(embedding);
    media_close(reader);
    enc_audio_free(audio);
    enc_model_close(model);
    return st ? cli_fail(&err) : CLI_EXIT_OK;
}

int cmd_embed(const cli_globals *g, int argc, char **argv)
{
    embed_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (!g->model_dir) return cli_usage_error("embed", "--model DIR is required (or set VIDX_MODEL)");
    if (a.text) return embed_text(g, &a);
    if (a.audio) return embed_audio(g, &a);

    vx_err err = {0};
    vx_status st = VX_OK;
    enc_model *model = NULL;
    enc_vision *vis = NULL;
    media_reader *reader = NULL;
    media_preproc *pp = NULL;
    media_frames frames = {0};
    enc_npy input = {0};
    float *pixels = NULL, *embedding = NULL, *tokens = NULL;

    if ((st = enc_model_open(g->model_dir, &model, &err))) goto done;
    const enc_model_info *info = enc_model_get_info(model);
    if (!info->has_vision) {
        st = vx_fail(&err, VX_EUNSUPPORTED, "model %s has no vision tower", info->dir);
        goto done;
    }
    int t = a.frames, size = 0;
    if (a.input_npy) {
        int nt = 0;
        if ((st = load_input(a.input_npy, &input, &nt, &size, &err))) goto done;
        if (t && t != nt) {
            st = vx_fail(&err, VX_EINVAL, "--frames %d but %s holds %d frames", t, a.input_npy, nt);
            goto done;
        }
        t = nt;
        pixels = input.data;
    }
    /* No --precision: what `vidx model info` states as the default (DECISIONS §1). */
    if (!a.have_precision &&
        (st = enc_default_precision(model, 1, &a.precision, NULL, NULL, &err)))
        goto done;
    if ((st = enc_vision_create(model, t, size, a.threads, a.precision, &vis, &err))) goto done;
    t = enc_vision_frames(vis);
    size = enc_vision_image_size(vis);

    if (a.video) {
        if ((st = media_open(a.video, MEDIA_NEED_VIDEO, &reader, &err))) goto done;
        if ((st = media_sample_window(reader, a.start_ms, a.end_ms, t, &frames, &err))) goto done;
        if ((st = media_preproc_create(size, size, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp,
                                       &err)))
            goto done;
        pixels = vx_calloc_array(media_preproc_tensor_floats(pp, t), sizeof(float), &err);
        if (!pixels) { st = err.status; goto done; }
        if ((st = media_preproc_frames(pp, &frames, pixels, &err))) goto done;
    }
    int dim = enc_vision_embed_dim(vis);
    int64_t n_tokens = enc_vision_token_count(vis);
    embedding = vx_calloc_array((size_t)dim, sizeof(float), &err);
    if (!embedding) { st = err.status; goto done; }
    if (a.tokens_npy) {
        tokens = vx_calloc_array((size_t)n_tokens * (size_t)enc_vision_width(vis), sizeof(float), &err);
        if (!tokens) { st = err.status; goto done; }
    }
    int64_t t0 = vx_now_ns();
    if ((st = enc_vision_forward(vis, pixels, embedding, tokens, &err))) goto done;
    double ms = (double)(vx_now_ns() - t0) / 1e6;
    if (tokens) {
        int64_t shape[2] = {n_tokens, enc_vision_width(vis)};
        if ((st = enc_npy_write(a.tokens_npy, ENC_NPY_F32, 2, shape, tokens, &err))) goto done;
    }

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_id", info->model_id);
    cJSON_AddStringToObject(root, "modality", "vision");
    cJSON_AddStringToObject(root, "source", a.video ? a.video : a.input_npy);
    if (a.video) {
        cJSON_AddNumberToObject(root, "start_ms", (double)a.start_ms);
        cJSON_AddNumberToObject(root, "end_ms", (double)a.end_ms);
        cJSON *pts = cJSON_AddArrayToObject(root, "frame_pts_ms");
        for (int i = 0; i < frames.count; i++)
            cJSON_AddItemToArray(pts, cJSON_CreateNumber((double)frames.pts_ms[i]));
    }
    cJSON_AddNumberToObject(root, "frames", t);
    cJSON_AddNumberToObject(root, "image_size", size);
    cJSON_AddStringToObject(root, "precision", enc_precision_name(a.precision));
    cJSON_AddNumberToObject(root, "forward_ms", ms);
    cJSON_AddNumberToObject(root, "dim", dim);
    cJSON *vec = cJSON_AddArrayToObject(root, "embedding");
    for (int i = 0; i < dim; i++) cJSON_AddItemToArray(vec, cJSON_CreateNumber(embedding[i]));
    if (a.tokens_npy) cJSON_AddStringToObject(root, "tokens", a.tokens_npy);
    char *text = cJSON_PrintUnformatted(root);
    if (text) puts(text);
    free(text);
    cJSON_Delete(root);

done:
    if (pixels != input.data) free(pixels);
    enc_npy_free(&input);
    free(embedding);
    free(tokens);
    media_frames_free(&frames);
    media_preproc_free(pp);
    media_close(reader);
    enc_vision_free(vis);
    enc_model_close(model);
    return st ? cli_fail(&err) : CLI_EXIT_OK;
}
