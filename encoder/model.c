/* Model directories: config.json (format_version 1, docs/model-format.md) and
 * model.safetensors. Everything is checked here, once, against the config — names, shapes,
 * dtypes, unknown vision tensors — so the towers can trust the weights afterwards. F32 tensors
 * are used in place in the read-only mapping; F16/BF16 tensors are widened once into a single
 * aligned buffer. */
#include "enc_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_BYTES ((size_t)1 << 20)

struct enc_model {
    enc_model_info info;
    char *dir;
    char *model_id;
    char *variant;
    char *head;
    enc_st *st;
    float *converted; /* F16/BF16 tensors widened to F32 */
    enc_vision_weights vw;
    int head_kind;
    char *text_arch, *text_tokenizer, *text_vocab_file;
    enc_text_weights tw;
    char *audio_arch;
    enc_audio_weights aw;
    int audio_patch_bias;
};

/* ---- config.json ----------------------------------------------------------------------- */

static vx_status cfg_int(const cJSON *obj, const char *section, const char *key, int min, int max,
                         int *out, vx_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *dot = section ? "." : "";
    if (!v)
        return vx_fail(err, VX_EFORMAT, "config.json: field %s%s%s is missing",
                       section ? section : "", dot, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max)
        return vx_fail(err, VX_EFORMAT,
                       "config.json: field %s%s%s must be a whole number in [%d, %d]",
                       section ? section : "", dot, key, min, max);
    *out = (int)v->valuedouble;
    return VX_OK;
}

static vx_status cfg_float(const cJSON *obj, const char *section, const char *key, double min,
                           double max, float *out, vx_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return vx_fail(err, VX_EFORMAT, "config.json: field %s.%s is missing", section, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min) || !(v->valuedouble <= max))
        return vx_fail(err, VX_EFORMAT, "config.json: field %s.%s must be a number in [%g, %g]",
                       section, key, min, max);
    *out = (float)v->valuedouble;
    return VX_OK;
}

static vx_status cfg_bool(const cJSON *obj, const char *section, const char *key, int *out,
                          vx_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return vx_fail(err, VX_EFORMAT, "config.json: field %s.%s is missing", section, key);
    if (!cJSON_IsBool(v))
        return vx_fail(err, VX_EFORMAT, "config.json: field %s.%s must be true or false", section,
                       key);
    *out = cJSON_IsTrue(v);
    return VX_OK;
}

static vx_status cfg_string(const cJSON *obj, const char *section, const char *key, char **out,
                            vx_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *dot = section ? "." : "";
    if (!v)
        return vx_fail(err, VX_EFORMAT, "config.json: field %s%s%s is missing",
                       section ? section : "", dot, key);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return vx_fail(err, VX_EFORMAT, "config.json: field %s%s%s must be a non-empty string",
                       section ? section : "", dot, key);
    *out = strdup(v->valuestring);
    if (!*out) return vx_fail(err, VX_ENOMEM, "out of memory");
    return VX_OK;
}

#define TRY(x)                                                                                 \
    do {                                                                                       \
        vx_status s_ = (x);                                                                    \
        if (s_ != VX_OK) return s_;                                                            \
    } while (0)

static vx_status parse_vision_config(const cJSON *v, enc_model *m, vx_err *err) {
    enc_vision_config *c = &m->info.vision;
    const char *sec = "vision";
    if (!cJSON_IsObject(v))
        return vx_fail(err, VX_EFORMAT, "config.json: field vision must be an object or null");
    TRY(cfg_int(v, sec, "width", 1, 16384, &c->width, err));
    TRY(cfg_int(v, sec, "depth", 1, 256, &c->depth, err));
    TRY(cfg_int(v, sec, "heads", 1, 1024, &c->heads, err));
    TRY(cfg_int(v, sec, "mlp_hidden", 1, 65536, &c->mlp_hidden, err));
    TRY(cfg_int(v, sec, "patch_size", 1, 256, &c->patch_size, err));
    TRY(cfg_int(v, sec, "tubelet", 1, 1, &c->tubelet, err));
    TRY(cfg_int(v, sec, "image_size", 1, 4096, &c->image_size, err));
    TRY(cfg_int(v, sec, "frames", 1, 256, &c->frames, err));
    TRY(cfg_float(v, sec, "norm_eps", 0, 1, &c->norm_eps, err));
    TRY(cfg_bool(v, sec, "qk_norm", &c->qk_norm, err));
    char *gelu = NULL;
    TRY(cfg_string(v, sec, "gelu", &gelu, err));
    int ok = strcmp(gelu, "tanh") == 0 || strcmp(gelu, "erf") == 0;
    c->gelu_erf = strcmp(gelu, "erf") == 0;
    free(gelu);
    if (!ok)
        return vx_fail(err, VX_EFORMAT, "config.json: field vision.gelu must be \"tanh\" or \"erf\"");
    TRY(cfg_bool(v, sec, "img_pos_embed", &c->img_pos_embed, err));
    TRY(cfg_int(v, sec, "pool_heads", 1, 1024, &c->pool_heads, err));
    TRY(cfg_int(v, sec, "pool_dim", 1, 65536, &c->pool_dim, err));
    TRY(cfg_float(v, sec, "pool_norm_eps", 0, 1, &c->pool_norm_eps, err));
    TRY(cfg_string(v, sec, "head", &m->head, err));
    c->head = m->head;
    if (strcmp(m->head, "proj") == 0) m->head_kind = ENC_HEAD_PROJ;
    else if (strcmp(m->head, "align") == 0) m->head_kind = ENC_HEAD_ALIGN;
    else if (strcmp(m->head, "none") == 0) m->head_kind = ENC_HEAD_NONE;
    else
        return vx_fail(err, VX_EFORMAT,
                       "config.json: field vision.head must be \"proj\", \"align\" or \"none\"");
    if (c->width % c->heads)
        return vx_fail(err, VX_EFORMAT, "config.json: vision.width %d not divisible by heads %d",
                       c->width, c->heads);
    if (c->width % c->pool_heads)
        return vx_fail(err, VX_EFORMAT,
                       "config.json: vision.width %d not divisible by pool_heads %d", c->width,
                       c->pool_heads);
    if (c->image_size % c->patch_size)
        return vx_fail(err, VX_EFORMAT,
                       "config.json: vision.image_size %d not a multiple of patch_size %d",
                       c->image_size, c->patch_size);
    int64_t g = c->image_size / c->patch_size;
    if ((int64_t)c->frames * g * g > 1000000)
        return vx_fail(err, VX_EFORMAT, "config.json: vision has too many tokens");
    if (m->head_kind == ENC_HEAD_NONE && m->info.embed_dim != c->pool_dim)
        return vx_fail(err, VX_EFORMAT,
                       "config.json: embed_dim %d must equal vision.pool_dim %d when head is none",
                       m->info.embed_dim, c->pool_dim);
    return VX_OK;
}

static vx_status parse_text_config(const cJSON *t, enc_model *m, vx_err *err) {
    enc_text_config *c = &m->info.text;
    const char *sec = "text";
    if (!cJSON_IsObject(t))
        return vx_fail(err, VX_EFORMAT, "config.json: field text must be an object or null");
    TRY(cfg_string(t, sec, "arch", &m->text_arch, err));
    c->arch = m->text_arch;
    int bert = strcmp(c->arch, "bert") == 0;
    if (!bert && strcmp(c->arch, "mobileclip") != 0)
        return vx_fail(err, VX_EUNSUPPORTED,
                       "config.json: text.arch \"%s\" not supported (bert or mobileclip)", c->arch);
    TRY(cfg_int(t, sec, "width", 1, 16384, &c->width, err));
    TRY(cfg_int(t, sec, "layers", 1, 256, &c->layers, err));
    TRY(cfg_int(t, sec, "heads", 1, 1024, &c->heads, err));
    TRY(cfg_int(t, sec, "ffn", 1, 65536, &c->ffn, err));
    TRY(cfg_int(t, sec, "vocab_size", 1, 1 << 22, &c->vocab_size, err));
    TRY(cfg_int(t, sec, "max_positions", 2, 65536, &c->max_positions, err));
    TRY(cfg_float(t, sec, "norm_eps", 0, 1, &c->norm_eps, err));
    TRY(cfg_string(t, sec, "tokenizer", &m->text_tokenizer, err));
    c->tokenizer = m->text_tokenizer;
    TRY(cfg_string(t, sec, "vocab_file", &m->text_vocab_file, err));
    c->vocab_file = m->text_vocab_file;
    if (strchr(c->vocab_file, '/') || strcmp(c->vocab_file, "..") == 0 ||
        strcmp(c->vocab_file, ".") == 0)
        return vx_fail(err, VX_EFORMAT, "config.json: text.vocab_file must be a plain file name");
    if (strcmp(c->tokenizer, bert ? "wordpiece" : "clip_bpe") != 0)
        return vx_fail(err, VX_EFORMAT, "config.json: text.tokenizer must be \"%s\" for arch %s",
                       bert ? "wordpiece" : "clip_bpe", c->arch);
    TRY(cfg_int(t, sec, "max_len", 2, c->max_positions, &c->max_len, err));
    if (c->width % c->heads)
        return vx_fail(err, VX_EFORMAT, "config.json: text.width %d not divisible by heads %d",
                       c->width, c->heads);
    if (bert) {
        TRY(cfg_int(t, sec, "type_vocab", 1, 1024, &c->type_vocab, err));
        TRY(cfg_int(t, sec, "fusion_layer", 1, c->layers, &c->fusion_layer, err));
        TRY(cfg_bool(t, sec, "itm", &c->itm, err));
        TRY(cfg_bool(t, sec, "pre_text", &c->pre_text, err));
        if (c->itm) {
            if (c->fusion_layer >= c->layers)
                return vx_fail(err, VX_EFORMAT,
                               "config.json: text.itm needs fusion_layer < layers");
            TRY(cfg_int(t, sec, "encoder_width", 1, 65536, &c->encoder_width, err));
            TRY(cfg_int(t, sec, "vision_width", 1, 65536, &c->vision_width, err));
            TRY(cfg_bool(t, sec, "fusion_proj", &c->fusion_proj, err));
            if (c->fusion_proj)
                TRY(cfg_float(t, sec, "fusion_proj_norm_eps", 0, 1, &c->fusion_proj_norm_eps, err));
            else if (c->encoder_width != c->vision_width)
                return vx_fail(err, VX_EFORMAT,
                               "config.json: text.encoder_width must equal vision_width without "
                               "fusion_proj");
        } else {
            c->fusion_layer = c->layers < c->fusion_layer ? c->layers : c->fusion_layer;
        }
    } else {
        c->fusion_layer = c->layers;
    }
    return VX_OK;
}

static vx_status parse_audio_config(const cJSON *a, enc_model *m, vx_err *err) {
    enc_audio_config *c = &m->info.audio;
    const char *sec = "audio";
    if (!cJSON_IsObject(a))
        return vx_fail(err, VX_EFORMAT, "config.json: field audio must be an object or null");
    TRY(cfg_string(a, sec, "arch", &m->audio_arch, err));
    c->arch = m->audio_arch;
    if (strcmp(c->arch, "beats") != 0)
        return vx_fail(err, VX_EUNSUPPORTED, "config.json: audio.arch \"%s\" not supported (beats)",
                       c->arch);
    TRY(cfg_int(a, sec, "width", 1, 16384, &c->width, err));
    TRY(cfg_int(a, sec, "layers", 1, 256, &c->layers, err));
    TRY(cfg_int(a, sec, "heads", 1, 1024, &c->heads, err));
    TRY(cfg_int(a, sec, "ffn", 1, 65536, &c->ffn, err));
    TRY(cfg_int(a, sec, "patch_dim", 1, 16384, &c->patch_dim, err));
    TRY(cfg_int(a, sec, "patch_size", 1, 64, &c->patch_size, err));
    TRY(cfg_int(a, sec, "mel_bins", 1, 256, &c->mel_bins, err));
    TRY(cfg_int(a, sec, "frames", 1, 100000, &c->frames, err));
    TRY(cfg_int(a, sec, "sample_rate", 16000, 16000, &c->sample_rate, err));
    TRY(cfg_float(a, sec, "fbank_mean", -1e6, 1e6, &c->fbank_mean, err));
    TRY(cfg_float(a, sec, "fbank_std", 1e-6, 1e6, &c->fbank_std, err));
    TRY(cfg_int(a, sec, "conv_pos", 1, 4096, &c->conv_pos, err));
    TRY(cfg_int(a, sec, "conv_pos_groups", 1, 16384, &c->conv_pos_groups, err));
    TRY(cfg_int(a, sec, "num_buckets", 4, 1 << 20, &c->num_buckets, err));
    TRY(cfg_int(a, sec, "max_distance", 2, 1 << 24, &c->max_distance, err));
    TRY(cfg_bool(a, sec, "gru_rel_pos", &c->gru_rel_pos, err));
    TRY(cfg_bool(a, sec, "deep_norm", &c->deep_norm, err));
    TRY(cfg_float(a, sec, "norm_eps", 0, 1, &c->norm_eps, err));
    TRY(cfg_bool(a, sec, "av_fusion", &c->av_fusion, err));
    if (c->width % c->heads || c->width % c->conv_pos_groups)
        return vx_fail(err, VX_EFORMAT,
                       "config.json: audio.width %d not divisible by heads %d / conv_pos_groups %d",
                       c->width, c->heads, c->conv_pos_groups);
    if (c->mel_bins % c->patch_size || c->frames < c->patch_size)
        return vx_fail(err, VX_EFORMAT,
                       "config.json: audio mel_bins %d / frames %d do not fit patch_size %d",
                       c->mel_bins, c->frames, c->patch_size);
    if (c->num_buckets / 4 >= c->max_distance)
        return vx_fail(err, VX_EFORMAT, "config.json: audio.max_distance must exceed num_buckets/4");
    if ((int64_t)(c->frames / c->patch_size) * (c->mel_bins / c->patch_size) > 100000)
        return vx_fail(err, VX_EFORMAT, "config.json: audio has too many tokens");
    return VX_OK;
}

static vx_status parse_config(const char *text, size_t len, enc_model *m, vx_err *err) {
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return vx_fail(err, VX_EFORMAT, "config.json: not valid JSON");
    vx_status s = VX_OK;
    if (!cJSON_IsObject(root)) {
        s = vx_fail(err, VX_EFORMAT, "config.json: not a JSON object");
        goto done;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "vidx-model") != 0) {
        s = vx_fail(err, VX_EFORMAT, "config.json: field format must be \"vidx-model\"");
        goto done;
    }
    if ((s = cfg_int(root, NULL, "format_version", 0, 1000000, &m->info.format_version, err)))
        goto done;
    if (m->info.format_version != 1) {
        s = vx_fail(err, VX_EUNSUPPORTED,
                    "config.json: format_version %d not supported (this vidx reads 1)",
                    m->info.format_version);
        goto done;
    }
    if ((s = cfg_string(root, NULL, "model_id", &m->model_id, err))) goto done;
    if ((s = cfg_string(root, NULL, "variant", &m->variant, err))) goto done;
    if ((s = cfg_int(root, NULL, "embed_dim", 1, 65536, &m->info.embed_dim, err))) goto done;
    m->info.model_id = m->model_id;
    m->info.variant = m->variant;
    const cJSON *vision = cJSON_GetObjectItemCaseSensitive(root, "vision");
    if (!vision) {
        s = vx_fail(err, VX_EFORMAT, "config.json: field vision is missing");
        goto done;
    }
    if (!cJSON_IsNull(vision)) {
        m->info.has_vision = 1;
        if ((s = parse_vision_config(vision, m, err))) goto done;
    }
    const cJSON *text_cfg = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *audio_cfg = cJSON_GetObjectItemCaseSensitive(root, "audio");
    m->info.has_text = text_cfg && !cJSON_IsNull(text_cfg);
    m->info.has_audio = audio_cfg && !cJSON_IsNull(audio_cfg);
    if (m->info.has_text && (s = parse_text_config(text_cfg, m, err))) goto done;
    if (m->info.has_audio && (s = parse_audio_config(audio_cfg, m, err))) goto done;
done:
    cJSON_Delete(root);
    return s;
}

/* ---- tensors --------------------------------------------------------------------------- */

typedef struct expect {
    char name[96];
    int ndim;
    int64_t shape[5];
    const float **dst;
    enc_gemm_weight *gemm; /* GEMM weights: may stay bf16 as stored (instead of dst) */
} expect;

typedef struct expect_list {
    expect *items;
    int count, cap;
} expect_list;

static vx_status want(expect_list *l, const float **dst, int ndim, const int64_t *shape,
                      vx_err *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static vx_status want(expect_list *l, const float **dst, int ndim, const int64_t *shape,
                      vx_err *err, const char *fmt, ...) {
    if (l->count == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        expect *n = realloc(l->items, (size_t)cap * sizeof(*n));
        if (!n) return vx_fail(err, VX_ENOMEM, "out of memory");
        l->items = n;
        l->cap = cap;
    }
    expect *e = &l->items[l->count++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof(e->name), fmt, ap);
    va_end(ap);
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof(int64_t));
    e->dst = dst;
    e->gemm = NULL;
    return VX_OK;
}

/* A GEMM weight [o, k]: bound as enc_gemm_weight (f32, or bf16 kept as stored). */
static vx_status want_gemm(expect_list *l, enc_gemm_weight *dst, int ndim, const int64_t *shape,
                           vx_err *err, const char *name) {
    vx_status s = want(l, NULL, ndim, shape, err, "%s", name);
    if (s == VX_OK) l->items[l->count - 1].gemm = dst;
    return s;
}

#define W1(dst, a, ...) TRY(want(&l, &(dst), 1, (int64_t[]){a}, err, __VA_ARGS__))
#define W2(dst, a, b, ...) TRY(want(&l, &(dst), 2, (int64_t[]){a, b}, err, __VA_ARGS__))
#define W3(dst, a, b, c, ...) TRY(want(&l, &(dst), 3, (int64_t[]){a, b, c}, err, __VA_ARGS__))

static vx_status build_vision_expectations(enc_model *m, expect_list *lp, vx_err *err) {
    expect_list l = *lp;
    const enc_vision_config *c = &m->info.vision;
    int64_t C = c->width, H = c->mlp_hidden, P = c->patch_size, D = c->pool_dim,
            E = m->info.embed_dim;
    int64_t g = c->image_size / P;
    int64_t N = 1 + (int64_t)c->frames * g * g;
    enc_vision_weights *w = &m->vw;
    w->blocks = calloc((size_t)c->depth, sizeof(*w->blocks));
    if (!w->blocks) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status s = VX_OK;
#undef TRY
#define TRY(x)                                                                                 \
    do {                                                                                       \
        s = (x);                                                                               \
        if (s != VX_OK) goto out;                                                              \
    } while (0)
    char name[96];
#define WG(dst, a, b, ...)                                                                     \
    do {                                                                                       \
        snprintf(name, sizeof(name), __VA_ARGS__);                                             \
        TRY(want_gemm(&l, &(dst), 2, (int64_t[]){a, b}, err, name));                           \
    } while (0)
    TRY(want_gemm(&l, &w->patch_w, 5, (int64_t[]){C, 3, 1, P, P}, err,
                  "vision.patch_embed.weight"));
    W1(w->patch_b, C, "vision.patch_embed.bias");
    W3(w->cls, 1, 1, C, "vision.cls_token");
    W3(w->pos, 1, N, C, "vision.pos_embed");
    if (c->img_pos_embed) W3(w->img_pos, 1, 1 + g * g, C, "vision.img_pos_embed");
    for (int i = 0; i < c->depth; i++) {
        enc_block_weights *b = &w->blocks[i];
        W1(b->norm1, C, "vision.blocks.%d.norm1.weight", i);
        WG(b->qkv, 3 * C, C, "vision.blocks.%d.attn.qkv.weight", i);
        if (c->qk_norm) {
            W1(b->q_norm, C, "vision.blocks.%d.attn.q_norm.weight", i);
            W1(b->k_norm, C, "vision.blocks.%d.attn.k_norm.weight", i);
        }
        WG(b->proj_w, C, C, "vision.blocks.%d.attn.proj.weight", i);
        W1(b->proj_b, C, "vision.blocks.%d.attn.proj.bias", i);
        W1(b->ls1, C, "vision.blocks.%d.ls1", i);
        W1(b->norm2, C, "vision.blocks.%d.norm2.weight", i);
        WG(b->fc1_w, H, C, "vision.blocks.%d.mlp.fc1.weight", i);
        W1(b->fc1_b, H, "vision.blocks.%d.mlp.fc1.bias", i);
        WG(b->fc2_w, C, H, "vision.blocks.%d.mlp.fc2.weight", i);
        W1(b->fc2_b, C, "vision.blocks.%d.mlp.fc2.bias", i);
        W1(b->ls2, C, "vision.blocks.%d.ls2", i);
    }
    W1(w->pool_nq_w, C, "vision.pool.norm_q.weight");
    W1(w->pool_nq_b, C, "vision.pool.norm_q.bias");
    W1(w->pool_nk_w, C, "vision.pool.norm_k.weight");
    W1(w->pool_nk_b, C, "vision.pool.norm_k.bias");
    W1(w->pool_nv_w, C, "vision.pool.norm_v.weight");
    W1(w->pool_nv_b, C, "vision.pool.norm_v.bias");
    W2(w->pool_q_w, C, C, "vision.pool.q.weight");
    W1(w->pool_q_b, C, "vision.pool.q.bias");
    WG(w->pool_k_w, C, C, "vision.pool.k.weight");
    W1(w->pool_k_b, C, "vision.pool.k.bias");
    WG(w->pool_v_w, C, C, "vision.pool.v.weight");
    W1(w->pool_v_b, C, "vision.pool.v.bias");
    W2(w->pool_proj_w, D, C, "vision.pool.proj.weight");
    W1(w->pool_proj_b, D, "vision.pool.proj.bias");
    if (m->head_kind == ENC_HEAD_PROJ) {
        W2(w->head_w, E, D, "vision.proj.weight");
        W1(w->head_b, E, "vision.proj.bias");
    } else if (m->head_kind == ENC_HEAD_ALIGN) {
        W1(w->head_norm_w, D, "vision.align.norm.weight");
        W1(w->head_norm_b, D, "vision.align.norm.bias");
        W2(w->head_w, E, D, "vision.align.proj.weight");
        W1(w->head_b, E, "vision.align.proj.bias");
    }
out:
    *lp = l;
    return s;
#undef WG
#undef TRY
}

static vx_status build_text_expectations(enc_model *m, expect_list *lp, vx_err *err) {
    expect_list l = *lp;
    const enc_text_config *c = &m->info.text;
    int64_t W = c->width, F = c->ffn, V = c->vocab_size, E = m->info.embed_dim;
    int bert = strcmp(c->arch, "bert") == 0;
    enc_text_weights *w = &m->tw;
    w->layers = calloc((size_t)c->layers, sizeof(*w->layers));
    if (!w->layers) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status s = VX_OK;
#undef TRY
#define TRY(x)                                                                                 \
    do {                                                                                       \
        s = (x);                                                                               \
        if (s != VX_OK) goto out;                                                              \
    } while (0)
    W2(w->word, V, W, "text.embed.word");
    W2(w->pos, c->max_positions, W, "text.embed.pos");
    if (bert) {
        W2(w->type, c->type_vocab, W, "text.embed.type");
        W1(w->embed_norm_w, W, "text.embed.norm.weight");
        W1(w->embed_norm_b, W, "text.embed.norm.bias");
    }
    for (int j = 0; j < c->layers; j++) {
        enc_text_layer_weights *L = &w->layers[j];
        if (bert) {
            W2(L->attn_q_w, W, W, "text.layers.%d.attn.q.weight", j);
            W1(L->attn_q_b, W, "text.layers.%d.attn.q.bias", j);
            W2(L->attn_k_w, W, W, "text.layers.%d.attn.k.weight", j);
            W1(L->attn_k_b, W, "text.layers.%d.attn.k.bias", j);
            W2(L->attn_v_w, W, W, "text.layers.%d.attn.v.weight", j);
            W1(L->attn_v_b, W, "text.layers.%d.attn.v.bias", j);
            if (c->itm && j >= c->fusion_layer) {
                int64_t K = c->encoder_width;
                W2(L->cross_q_w, W, W, "text.layers.%d.cross.q.weight", j);
                W1(L->cross_q_b, W, "text.layers.%d.cross.q.bias", j);
                W2(L->cross_k_w, W, K, "text.layers.%d.cross.k.weight", j);
                W1(L->cross_k_b, W, "text.layers.%d.cross.k.bias", j);
                W2(L->cross_v_w, W, K, "text.layers.%d.cross.v.weight", j);
                W1(L->cross_v_b, W, "text.layers.%d.cross.v.bias", j);
                W2(L->cross_o_w, W, W, "text.layers.%d.cross.o.weight", j);
                W1(L->cross_o_b, W, "text.layers.%d.cross.o.bias", j);
                W1(L->cross_norm_w, W, "text.layers.%d.cross_norm.weight", j);
                W1(L->cross_norm_b, W, "text.layers.%d.cross_norm.bias", j);
            }
        } else {
            W2(L->attn_q_w, 3 * W, W, "text.layers.%d.attn.qkv.weight", j);
            W1(L->attn_q_b, 3 * W, "text.layers.%d.attn.qkv.bias", j);
        }
        W2(L->attn_o_w, W, W, "text.layers.%d.attn.o.weight", j);
        W1(L->attn_o_b, W, "text.layers.%d.attn.o.bias", j);
        W1(L->attn_norm_w, W, "text.layers.%d.attn_norm.weight", j);
        W1(L->attn_norm_b, W, "text.layers.%d.attn_norm.bias", j);
        W2(L->fc1_w, F, W, "text.layers.%d.fc1.weight", j);
        W1(L->fc1_b, F, "text.layers.%d.fc1.bias", j);
        W2(L->fc2_w, W, F, "text.layers.%d.fc2.weight", j);
        W1(L->fc2_b, W, "text.layers.%d.fc2.bias", j);
        W1(L->ffn_norm_w, W, "text.layers.%d.ffn_norm.weight", j);
        W1(L->ffn_norm_b, W, "text.layers.%d.ffn_norm.bias", j);
    }
    W2(w->proj_w, E, W, "text.proj.weight");
    if (bert) {
        W1(w->proj_b, E, "text.proj.bias");
        if (c->itm) {
            W2(w->itm_w, 2, W, "text.itm.weight");
            W1(w->itm_b, 2, "text.itm.bias");
            if (c->fusion_proj) {
                int64_t K = c->encoder_width, Cv = c->vision_width;
                W2(w->fproj_w, K, Cv, "text.fusion_proj.weight");
                W1(w->fproj_b, K, "text.fusion_proj.bias");
                W1(w->fproj_norm_w, K, "text.fusion_proj_norm.weight");
                W1(w->fproj_norm_b, K, "text.fusion_proj_norm.bias");
            }
        }
    } else {
        W1(w->final_norm_w, W, "text.final_norm.weight");
        W1(w->final_norm_b, W, "text.final_norm.bias");
    }
out:
    *lp = l;
    return s;
#undef TRY
}

static vx_status build_audio_expectations(enc_model *m, expect_list *lp, vx_err *err) {
    expect_list l = *lp;
    const enc_audio_config *c = &m->info.audio;
    int64_t W = c->width, F = c->ffn, D0 = c->patch_dim, P = c->patch_size, H = c->heads;
    int64_t E = m->info.embed_dim;
    enc_audio_weights *w = &m->aw;
    w->layers = calloc((size_t)c->layers, sizeof(*w->layers));
    if (!w->layers) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status s = VX_OK;
#define TRY(x)                                                                                 \
    do {                                                                                       \
        s = (x);                                                                               \
        if (s != VX_OK) goto out;                                                              \
    } while (0)
    TRY(want(&l, &w->patch_w, 4, (int64_t[]){D0, 1, P, P}, err, "audio.patch.weight"));
    if (enc_st_find(m->st, "audio.patch.bias")) W1(w->patch_b, D0, "audio.patch.bias");
    W1(w->patch_norm_w, D0, "audio.patch_norm.weight");
    W1(w->patch_norm_b, D0, "audio.patch_norm.bias");
    W2(w->in_proj_w, W, D0, "audio.in_proj.weight");
    W1(w->in_proj_b, W, "audio.in_proj.bias");
    W3(w->pos_conv_w, W, W / c->conv_pos_groups, c->conv_pos, "audio.pos_conv.weight");
    W1(w->pos_conv_b, W, "audio.pos_conv.bias");
    W1(w->norm_w, W, "audio.norm.weight");
    W1(w->norm_b, W, "audio.norm.bias");
    W2(w->rel_bias, c->num_buckets, H, "audio.rel_bias");
    for (int j = 0; j < c->layers; j++) {
        enc_audio_layer_weights *L = &w->layers[j];
        W2(L->q_w, W, W, "audio.layers.%d.attn.q.weight", j);
        W1(L->q_b, W, "audio.layers.%d.attn.q.bias", j);
        W2(L->k_w, W, W, "audio.layers.%d.attn.k.weight", j);
        W1(L->k_b, W, "audio.layers.%d.attn.k.bias", j);
        W2(L->v_w, W, W, "audio.layers.%d.attn.v.weight", j);
        W1(L->v_b, W, "audio.layers.%d.attn.v.bias", j);
        W2(L->o_w, W, W, "audio.layers.%d.attn.o.weight", j);
        W1(L->o_b, W, "audio.layers.%d.attn.o.bias", j);
        if (c->gru_rel_pos) {
            W2(L->gate_w, 8, W / H, "audio.layers.%d.attn.gate.weight", j);
            W1(L->gate_b, 8, "audio.layers.%d.attn.gate.bias", j);
            W1(L->gate_a, H, "audio.layers.%d.attn.gate_a", j);
        }
        W1(L->attn_norm_w, W, "audio.layers.%d.attn_norm.weight", j);
        W1(L->attn_norm_b, W, "audio.layers.%d.attn_norm.bias", j);
        W2(L->fc1_w, F, W, "audio.layers.%d.fc1.weight", j);
        W1(L->fc1_b, F, "audio.layers.%d.fc1.bias", j);
        W2(L->fc2_w, W, F, "audio.layers.%d.fc2.weight", j);
        W1(L->fc2_b, W, "audio.layers.%d.fc2.bias", j);
        W1(L->ffn_norm_w, W, "audio.layers.%d.ffn_norm.weight", j);
        W1(L->ffn_norm_b, W, "audio.layers.%d.ffn_norm.bias", j);
    }
    W2(w->proj_w, E, W, "audio.proj.weight");
    W1(w->proj_b, E, "audio.proj.bias");
    if (c->av_fusion) {
        W2(w->fusion_w, E, 2 * E, "audio.av_fusion.weight");
        W1(w->fusion_b, E, "audio.av_fusion.bias");
    }
out:
    *lp = l;
    return s;
#undef TRY
}

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "(");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, ")");
}

static int cmp_expect(const void *a, const void *b) {
    return strcmp(((const expect *)a)->name, ((const expect *)b)->name);
}

/* bf16 GEMM weights stay as stored (no widening) when VIDX_KEEP_BF16=1, or when widening them
 * would take more than VIDX_WIDEN_LIMIT_GB (default 8) GiB (DECISIONS.md §8: a model that does
 * not fit in fp32 computes in bf16 from the weights as stored). */
static int keep_bf16_decision(const enc_model *m, const expect_list *l) {
    const char *keep = getenv("VIDX_KEEP_BF16");
    if (keep) return strcmp(keep, "0") != 0;
    uint64_t widened = 0;
    for (int i = 0; i < l->count; i++) {
        const enc_tensor_info *t = enc_st_find(m->st, l->items[i].name);
        if (l->items[i].gemm && t && t->dtype == ENC_DTYPE_BF16) widened += (uint64_t)t->numel * 4;
    }
    const char *lim = getenv("VIDX_WIDEN_LIMIT_GB");
    double limit_gb = lim ? atof(lim) : 8.0;
    return (double)widened > limit_gb * 1073741824.0;
}

static vx_status bind_tensors(enc_model *m, expect_list *l, vx_err *err) {
    const char *file = "model.safetensors";
    int keep_bf16 = 0;
    /* Every expected tensor present, with its shape and a float dtype. */
    uint64_t convert_floats = 0;
    for (int i = 0; i < l->count; i++) {
        const expect *e = &l->items[i];
        const enc_tensor_info *t = enc_st_find(m->st, e->name);
        if (!t)
            return vx_fail(err, VX_ENOTFOUND, "%s: tensor %s is missing", file, e->name);
        int same = t->ndim == e->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = t->shape[d] == e->shape[d];
        if (!same) {
            char got[160], exp[160];
            shape_str(t->shape, t->ndim, got, sizeof(got));
            shape_str(e->shape, e->ndim, exp, sizeof(exp));
            return vx_fail(err, VX_EFORMAT, "%s: tensor %s: shape %s, expected %s", file,
                           e->name, got, exp);
        }
        if (t->dtype == ENC_DTYPE_I64)
            return vx_fail(err, VX_EFORMAT, "%s: tensor %s: dtype I64, expected F32, F16 or BF16",
                           file, e->name);
    }
    keep_bf16 = keep_bf16_decision(m, l);
    for (int i = 0; i < l->count; i++) {
        const enc_tensor_info *t = enc_st_find(m->st, l->items[i].name);
        if (t->dtype == ENC_DTYPE_F32) continue;
        if (keep_bf16 && l->items[i].gemm && t->dtype == ENC_DTYPE_BF16) {
            m->info.gemm_weights_bf16 = 1;
            continue;
        }
        convert_floats += (uint64_t)((t->numel + 15) & ~15LL);
    }
    /* No vision.* tensor the config does not explain. */
    qsort(l->items, (size_t)l->count, sizeof(*l->items), cmp_expect);
    for (int64_t i = 0; i < enc_st_count(m->st); i++) {
        const enc_tensor_info *t = enc_st_tensor(m->st, i);
        if (strncmp(t->name, "vision.", 7) != 0 && strncmp(t->name, "text.", 5) != 0 &&
            strncmp(t->name, "audio.", 6) != 0)
            continue;
        expect key;
        snprintf(key.name, sizeof(key.name), "%s", t->name);
        if (strlen(t->name) >= sizeof(key.name) ||
            !bsearch(&key, l->items, (size_t)l->count, sizeof(*l->items), cmp_expect))
            return vx_fail(err, VX_EFORMAT, "%s: unknown tensor %s (not in this config)", file,
                           t->name);
    }
    if (convert_floats) {
        m->converted = vx_aligned_alloc(64, convert_floats * sizeof(float), err);
        if (!m->converted) return vx_err_prefix(err, "%s: converting weights", file);
        m->info.converted_bytes = convert_floats * sizeof(float);
    }
    float *cur = m->converted;
    for (int i = 0; i < l->count; i++) {
        const expect *e = &l->items[i];
        const enc_tensor_info *t = enc_st_find(m->st, e->name);
        if (t->dtype == ENC_DTYPE_F32) {
            if (e->gemm) *e->gemm = (enc_gemm_weight){t->data, 0};
            else *e->dst = t->data;
            continue;
        }
        if (keep_bf16 && e->gemm && t->dtype == ENC_DTYPE_BF16) {
            *e->gemm = (enc_gemm_weight){t->data, 1};
            continue;
        }
        const uint16_t *src = t->data;
        float *dst = cur;
        int64_t n = t->numel;
        if (t->dtype == ENC_DTYPE_BF16) {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (int64_t j = 0; j < n; j++) dst[j] = enc_bf16_to_f32(src[j]);
        } else {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (int64_t j = 0; j < n; j++) dst[j] = enc_f16_to_f32(src[j]);
        }
        if (e->gemm) *e->gemm = (enc_gemm_weight){cur, 0};
        else *e->dst = cur;
        cur += (t->numel + 15) & ~15LL;
    }
    return VX_OK;
}

static void fill_counts(enc_model *m) {
    int64_t n = enc_st_count(m->st);
    uint64_t per_dtype[4] = {0};
    m->info.tensor_count = n;
    for (int64_t i = 0; i < n; i++) {
        const enc_tensor_info *t = enc_st_tensor(m->st, i);
        m->info.param_count += t->numel;
        per_dtype[t->dtype] += (uint64_t)t->numel;
    }
    int best = 0;
    for (int d = 1; d < 4; d++)
        if (per_dtype[d] > per_dtype[best]) best = d;
    m->info.weights_dtype = (enc_dtype)best;
}

vx_status enc_model_open(const char *dir, enc_model **out, vx_err *err) {
    *out = NULL;
    enc_model *m = calloc(1, sizeof(*m));
    if (!m) return vx_fail(err, VX_ENOMEM, "out of memory");
    vx_status s;
    char *path = NULL, *text = NULL;
    size_t text_len = 0;
    expect_list l = {0};
    m->dir = strdup(dir);
    if (!m->dir) {
        s = vx_fail(err, VX_ENOMEM, "out of memory");
        goto fail;
    }
    m->info.dir = m->dir;
    path = vx_asprintf(err, "%s/config.json", dir);
    if (!path) {
        s = VX_ENOMEM;
        goto fail;
    }
    s = vx_read_file(path, CONFIG_MAX_BYTES, &text, &text_len, err);
    if (s != VX_OK) goto fail;
    s = parse_config(text, text_len, m, err);
    if (s != VX_OK) goto fail;
    free(path);
    path = vx_asprintf(err, "%s/model.safetensors", dir);
    if (!path) {
        s = VX_ENOMEM;
        goto fail;
    }
    s = enc_st_open(path, &m->st, err);
    if (s != VX_OK) goto fail;
    {
        struct stat sb;
        if (stat(path, &sb) == 0) m->info.weights_bytes = (uint64_t)sb.st_size;
    }
    if (m->info.has_vision) {
        s = build_vision_expectations(m, &l, err);
        if (s != VX_OK) goto fail;
    }
    if (m->info.has_text) {
        s = build_text_expectations(m, &l, err);
        if (s != VX_OK) goto fail;
    }
    if (m->info.has_audio) {
        s = build_audio_expectations(m, &l, err);
        if (s != VX_OK) goto fail;
    }
    s = bind_tensors(m, &l, err);
    if (s != VX_OK) goto fail;
    fill_counts(m);
    free(l.items);
    free(path);
    free(text);
    *out = m;
    return VX_OK;
fail:
    vx_err_prefix(err, "model %s", dir);
    free(l.items);
    free(path);
    free(text);
    enc_model_close(m);
    return s;
}

void enc_model_close(enc_model *m) {
    if (!m) return;
    enc_st_close(m->st);
    free(m->converted);
    free(m->vw.blocks);
    free(m->tw.layers);
    free(m->text_arch);
    free(m->text_tokenizer);
    free(m->text_vocab_file);
    free(m->aw.layers);
    free(m->audio_arch);
    free(m->dir);
    free(m->model_id);
    free(m->variant);
    free(m->head);
    free(m);
}

const enc_model_info *enc_model_get_info(const enc_model *m) { return m ? &m->info : NULL; }

const enc_tensor_info *enc_model_tensor(const enc_model *m, int64_t i) {
    return m ? enc_st_tensor(m->st, i) : NULL;
}

const enc_vision_weights *enc_model_vision_weights(const enc_model *m) {
    return m && m->info.has_vision ? &m->vw : NULL;
}

int enc_model_head_kind(const enc_model *m) { return m->head_kind; }

const enc_text_weights *enc_model_text_weights(const enc_model *m) {
    return m && m->info.has_text ? &m->tw : NULL;
}

const enc_audio_weights *enc_model_audio_weights(const enc_model *m) {
    return m && m->info.has_audio ? &m->aw : NULL;
}
