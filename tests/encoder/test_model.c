/* Model directories and file readers under bad input: every broken directory (generated here
 * from a good fixture) must end in one clear error naming the tensor or field, never a crash.
 * Also the safetensors and .npy readers on hand-made edge cases, and model info. */
#include "enc.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GOOD_MODEL VIDX_FIXTURES "/models/s2_1b_like_f32"

static char *read_all(const char *path, size_t *len) {
    vx_err err;
    char *buf = NULL;
    T_OK(vx_read_file(path, (size_t)1 << 30, &buf, len, &err), &err);
    return buf;
}

static void write_all(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    T_ASSERT(f);
    if (len) T_ASSERT(fwrite(buf, 1, len, f) == len);
    fclose(f);
}

/* A safetensors edit: tensors are copied from the good file with these changes. */
typedef struct st_edit {
    const char *drop;          /* leave this tensor out */
    const char *reshape;       /* swap the two dims of this 2-D tensor */
    const char *as_i64;        /* relabel this tensor's dtype as I64 (size adjusted) */
    const char *extra;         /* add a tensor with this name */
    const char *as_bf16;       /* all tensors converted to BF16 when "*" */
} st_edit;

static uint16_t bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static void write_edited_st(const char *dst_path, const st_edit *e) {
    vx_err err;
    enc_st *st = NULL;
    T_OK(enc_st_open(GOOD_MODEL "/model.safetensors", &st, &err), &err);
    cJSON *hdr = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "vidx");
    vx_buf data = {0};
    int64_t n = enc_st_count(st);
    for (int64_t i = 0; i <= n; i++) {
        const enc_tensor_info *t = i < n ? enc_st_tensor(st, i) : NULL;
        const char *name = t ? t->name : e->extra;
        if (!name) continue;
        if (e->drop && strcmp(name, e->drop) == 0) continue;
        while (data.len % 64) T_OK(vx_buf_append(&data, "", 1, &err), &err);
        size_t begin = data.len;
        cJSON *ent = cJSON_AddObjectToObject(hdr, name);
        double shape[ENC_MAX_DIMS];
        int ndim = t ? t->ndim : 1;
        for (int d = 0; d < ndim; d++) shape[d] = t ? (double)t->shape[d] : 4;
        if (e->reshape && strcmp(name, e->reshape) == 0 && ndim == 2) {
            double tmp = shape[0];
            shape[0] = shape[1];
            shape[1] = tmp;
        }
        const char *dtype = "F32";
        if (!t) {
            float z[4] = {0};
            T_OK(vx_buf_append(&data, z, sizeof(z), &err), &err);
        } else if (e->as_i64 && strcmp(name, e->as_i64) == 0) {
            dtype = "I64";
            int64_t zero = 0;
            for (int64_t k = 0; k < t->numel; k++)
                T_OK(vx_buf_append(&data, &zero, 8, &err), &err);
        } else if (e->as_bf16) {
            dtype = "BF16";
            const float *f = t->data;
            for (int64_t k = 0; k < t->numel; k++) {
                uint16_t h = bf16_of(f[k]);
                T_OK(vx_buf_append(&data, &h, 2, &err), &err);
            }
        } else {
            T_OK(vx_buf_append(&data, t->data, t->size_bytes, &err), &err);
        }
        cJSON_AddStringToObject(ent, "dtype", dtype);
        cJSON_AddItemToObject(ent, "shape", cJSON_CreateDoubleArray(shape, ndim));
        double offs[2] = {(double)begin, (double)data.len};
        cJSON_AddItemToObject(ent, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
    }
    char *json = cJSON_PrintUnformatted(hdr);
    size_t jl = strlen(json);
    size_t padded = (8 + jl + 63) / 64 * 64 - 8;
    FILE *f = fopen(dst_path, "wb");
    T_ASSERT(f);
    uint64_t hl = padded;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(hl >> (8 * i));
    fwrite(lenb, 1, 8, f);
    fwrite(json, 1, jl, f);
    for (size_t i = jl; i < padded; i++) fputc(' ', f);
    fwrite(data.data, 1, data.len, f);
    fclose(f);
    free(json);
    cJSON_Delete(hdr);
    vx_buf_free(&data);
    enc_st_close(st);
}

/* A fresh model dir: the good config.json (optionally edited) + the given safetensors. */
static char *make_dir(const char *name) {
    char *dir = t_tempdir(name);
    size_t len;
    char *cfg = read_all(GOOD_MODEL "/config.json", &len);
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    write_all(path, cfg, len);
    free(cfg);
    return dir;
}

static void expect_open_fails(const char *dir, const char *needle1, const char *needle2) {
    vx_err err;
    vx_err_clear(&err);
    enc_model *m = (enc_model *)1;
    vx_status s = enc_model_open(dir, &m, &err);
    printf("  -> %s\n", err.msg);
    T_ASSERT(s != VX_OK);
    T_ASSERT(m == NULL);
    if (needle1 && !strstr(err.msg, needle1)) T_FAIL("message lacks \"%s\": %s", needle1, err.msg);
    if (needle2 && !strstr(err.msg, needle2)) T_FAIL("message lacks \"%s\": %s", needle2, err.msg);
}

static char *st_path(const char *dir) {
    vx_err err;
    char *p = vx_asprintf(&err, "%s/model.safetensors", dir);
    T_ASSERT(p);
    return p;
}

static void test_good_model_info(void) {
    vx_err err;
    enc_model *m = NULL;
    T_OK(enc_model_open(GOOD_MODEL, &m, &err), &err);
    const enc_model_info *info = enc_model_get_info(m);
    T_EQ_STR(info->variant, "custom");
    T_EQ_INT(info->format_version, 1);
    T_EQ_INT(info->embed_dim, 24);
    T_EQ_INT(info->has_vision, 1);
    T_EQ_INT(info->has_text, 0);
    T_EQ_INT(info->vision.width, 64);
    T_EQ_INT(info->vision.depth, 2);
    T_EQ_INT(info->vision.img_pos_embed, 1);
    T_EQ_STR(info->vision.head, "proj");
    T_EQ_INT(info->weights_dtype, ENC_DTYPE_F32);
    T_EQ_INT(info->converted_bytes, 0);
    T_ASSERT(info->tensor_count > 10);
    int64_t params = 0;
    for (int64_t i = 0; i < info->tensor_count; i++) params += enc_model_tensor(m, i)->numel;
    T_EQ_INT(params, info->param_count);
    T_ASSERT(enc_model_tensor(m, info->tensor_count) == NULL);
    T_ASSERT(info->weights_bytes > 0);
    enc_model_close(m);
    enc_model_close(NULL);
    enc_vision_free(NULL);
}

static void test_missing_tensor(void) {
    char *dir = make_dir("enc_missing_tensor");
    char *p = st_path(dir);
    write_edited_st(p, &(st_edit){.drop = "vision.blocks.1.mlp.fc2.bias"});
    expect_open_fails(dir, "vision.blocks.1.mlp.fc2.bias", "missing");
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_wrong_shape(void) {
    char *dir = make_dir("enc_wrong_shape");
    char *p = st_path(dir);
    write_edited_st(p, &(st_edit){.reshape = "vision.blocks.0.attn.qkv.weight"});
    expect_open_fails(dir, "vision.blocks.0.attn.qkv.weight", "shape (64, 192), expected (192, 64)");
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_wrong_dtype(void) {
    char *dir = make_dir("enc_wrong_dtype");
    char *p = st_path(dir);
    write_edited_st(p, &(st_edit){.as_i64 = "vision.cls_token"});
    expect_open_fails(dir, "vision.cls_token", "I64");
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_unknown_tensor(void) {
    char *dir = make_dir("enc_unknown_tensor");
    char *p = st_path(dir);
    write_edited_st(p, &(st_edit){.extra = "vision.blocks.7.norm1.weight"});
    expect_open_fails(dir, "vision.blocks.7.norm1.weight", "unknown");
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_truncated(void) {
    char *dir = make_dir("enc_truncated");
    char *p = st_path(dir);
    size_t len;
    char *buf = read_all(GOOD_MODEL "/model.safetensors", &len);
    write_all(p, buf, len - 1000);
    expect_open_fails(dir, "truncated", "tensor");
    write_all(p, buf, 5);
    expect_open_fails(dir, "too short", NULL);
    write_all(p, buf, 0);
    expect_open_fails(dir, "too short", NULL);
    free(buf);
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_bad_header(void) {
    char *dir = make_dir("enc_bad_header");
    char *p = st_path(dir);
    size_t len;
    char *buf = read_all(GOOD_MODEL "/model.safetensors", &len);
    /* Header length larger than the file. */
    char *bad = malloc(len);
    memcpy(bad, buf, len);
    uint64_t huge = (uint64_t)len * 4;
    for (int i = 0; i < 8; i++) bad[i] = (char)(huge >> (8 * i));
    write_all(p, bad, len);
    expect_open_fails(dir, "header length", "larger than the file");
    /* Garbage JSON. */
    memcpy(bad, buf, len);
    memset(bad + 8, '#', 40);
    write_all(p, bad, len);
    expect_open_fails(dir, "not a JSON object", NULL);
    /* JSON that is an array. */
    memcpy(bad, buf, len);
    bad[8] = '[';
    write_all(p, bad, len);
    expect_open_fails(dir, "model.safetensors", NULL);
    /* Header length 2^64-1. */
    memcpy(bad, buf, len);
    memset(bad, 0xff, 8);
    write_all(p, bad, len);
    expect_open_fails(dir, "header length", NULL);
    free(bad);
    free(buf);
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void write_config(const char *dir, cJSON *cfg) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    char *s = cJSON_Print(cfg);
    write_all(path, s, strlen(s));
    free(s);
}

static cJSON *good_config(void) {
    size_t len;
    char *text = read_all(GOOD_MODEL "/config.json", &len);
    cJSON *c = cJSON_ParseWithLength(text, len);
    free(text);
    T_ASSERT(c);
    return c;
}

static void test_bad_config(void) {
    char *dir = make_dir("enc_bad_config");
    char *p = st_path(dir);
    size_t len;
    char *buf = read_all(GOOD_MODEL "/model.safetensors", &len);
    write_all(p, buf, len);
    free(buf);
    vx_err err;
    enc_model *m = NULL;
    T_OK(enc_model_open(dir, &m, &err), &err); /* the copy itself is good */
    enc_model_close(m);

    static const char *fields[] = {"width", "depth", "heads", "mlp_hidden", "patch_size",
                                   "image_size", "frames", "norm_eps", "qk_norm", "gelu",
                                   "img_pos_embed", "pool_heads", "pool_dim", "pool_norm_eps",
                                   "head"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        cJSON *c = good_config();
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(c, "vision"), fields[i]);
        write_config(dir, c);
        char needle[64];
        snprintf(needle, sizeof(needle), "vision.%s", fields[i]);
        expect_open_fails(dir, needle, "missing");
        cJSON_Delete(c);
    }
    static const char *top[] = {"model_id", "embed_dim", "format_version", "vision"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        cJSON *c = good_config();
        cJSON_DeleteItemFromObject(c, top[i]);
        write_config(dir, c);
        expect_open_fails(dir, top[i], "config.json");
        cJSON_Delete(c);
    }
    /* Wrong types and values. */
    cJSON *c = good_config();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "vision"), "width", cJSON_CreateString("64"));
    write_config(dir, c);
    expect_open_fails(dir, "vision.width", NULL);
    cJSON_Delete(c);
    c = good_config();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "vision"), "heads", cJSON_CreateNumber(5));
    write_config(dir, c);
    expect_open_fails(dir, "heads", NULL);
    cJSON_Delete(c);
    c = good_config();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "vision"), "gelu", cJSON_CreateString("relu"));
    write_config(dir, c);
    expect_open_fails(dir, "vision.gelu", NULL);
    cJSON_Delete(c);
    c = good_config();
    cJSON_ReplaceItemInObject(c, "format_version", cJSON_CreateNumber(2));
    write_config(dir, c);
    expect_open_fails(dir, "format_version 2", NULL);
    cJSON_Delete(c);
    /* A config that disagrees with the weights: the tensor is named. */
    c = good_config();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "vision"), "mlp_hidden", cJSON_CreateNumber(280));
    write_config(dir, c);
    expect_open_fails(dir, "vision.blocks.0.mlp.fc1.weight", "expected (280, 64)");
    cJSON_Delete(c);
    /* Garbage. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    write_all(path, "{\"format\": \"vidx-model\", \"format_version\": 1, ", 45);
    expect_open_fails(dir, "config.json", "JSON");
    write_all(path, "\x00\x01\x02garbage", 10);
    expect_open_fails(dir, "config.json", NULL);
    write_all(path, "", 0);
    expect_open_fails(dir, "config.json", NULL);
    write_all(path, "[1,2,3]", 7);
    expect_open_fails(dir, "config.json", NULL);
    /* Missing files. */
    remove(path);
    expect_open_fails(dir, "config.json", NULL);
    expect_open_fails("/nonexistent/vidx/model", "config.json", NULL);
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_missing_weights_file(void) {
    char *dir = make_dir("enc_missing_weights");
    expect_open_fails(dir, "model.safetensors", NULL);
    t_rmtree(dir);
    free(dir);
}

/* BF16 written here from the F32 fixture loads and runs; its weights are widened once. */
static void test_bf16_file_loads(void) {
    char *dir = make_dir("enc_bf16_file");
    char *p = st_path(dir);
    write_edited_st(p, &(st_edit){.as_bf16 = "*"});
    vx_err err;
    enc_model *m = NULL;
    T_OK(enc_model_open(dir, &m, &err), &err);
    const enc_model_info *info = enc_model_get_info(m);
    T_EQ_INT(info->weights_dtype, ENC_DTYPE_BF16);
    T_ASSERT(info->converted_bytes >= (uint64_t)info->param_count * 4);
    enc_vision *v = NULL;
    T_OK(enc_vision_create(m, 0, 0, 1, ENC_PRECISION_FP32, &v, &err), &err);
    T_EQ_INT(enc_vision_token_count(v), 1 + 4 * 9);
    enc_vision_free(v);
    enc_model_close(m);
    free(p);
    t_rmtree(dir);
    free(dir);
}

static void test_vision_create_args(void) {
    vx_err err;
    enc_model *m = NULL;
    T_OK(enc_model_open(GOOD_MODEL, &m, &err), &err);
    enc_vision *v = NULL;
    T_ASSERT(enc_vision_create(m, 4, 50, 1, ENC_PRECISION_FP32, &v, &err) == VX_EINVAL);
    T_ASSERT(strstr(err.msg, "multiple of the patch size"));
    T_ASSERT(enc_vision_create(m, 0, 7, 1, ENC_PRECISION_FP32, &v, &err) == VX_EINVAL);
    T_ASSERT(enc_vision_create(m, -1, 0, 1, ENC_PRECISION_FP32, &v, &err) == VX_EINVAL);
    T_ASSERT(enc_vision_create(m, 0, 0, -3, ENC_PRECISION_FP32, &v, &err) == VX_EINVAL);
    T_ASSERT(v == NULL);
    T_OK(enc_vision_create(m, 0, 0, 0, ENC_PRECISION_FP32, &v, &err), &err);
    T_EQ_INT(enc_vision_frames(v), 4);
    T_EQ_INT(enc_vision_image_size(v), 42);
    T_EQ_INT(enc_vision_width(v), 64);
    T_EQ_INT(enc_vision_embed_dim(v), 24);
    T_ASSERT(enc_vision_arena_bytes(v) > 0);
    printf("  backend: %s\n", enc_vision_backend(v));
    T_ASSERT(strstr(enc_vision_backend(v), "fp32 GEMMs"));
    /* Non-finite pixels are reported, not returned as an embedding. */
    int64_t n = 3 * 4 * 42 * 42;
    float *px = calloc((size_t)n, sizeof(float));
    float emb[24];
    px[100] = NAN;
    T_ASSERT(enc_vision_forward(v, px, emb, NULL, &err) == VX_EINVAL);
    px[100] = 0;
    T_OK(enc_vision_forward(v, px, emb, NULL, &err), &err);
    double ss = 0;
    for (int i = 0; i < 24; i++) ss += emb[i] * emb[i];
    T_NEAR(ss, 1.0, 1e-5);
    free(px);
    enc_vision_free(v);
    enc_precision pr;
    T_OK(enc_precision_parse("bf16", &pr, &err), &err);
    T_EQ_INT(pr, ENC_PRECISION_BF16);
    T_ASSERT(enc_precision_parse("fp16", &pr, &err) == VX_EINVAL);
    T_EQ_STR(enc_precision_name(ENC_PRECISION_FP32), "fp32");
    enc_model_close(m);
}

/* ---- safetensors parser edge cases ------------------------------------------------------- */

/* Builds 8-byte length + json (space-padded to 8 bytes unless raw) + zeroed data, parses it. */
static vx_status parse_st_opt(const char *json, size_t data_len, int raw, vx_err *err) {
    size_t jl0 = strlen(json);
    size_t jl = raw ? jl0 : (jl0 + 7) / 8 * 8;
    size_t len = 8 + jl + data_len;
    unsigned char *buf = calloc(1, len);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(buf + 8, json, jl0);
    memset(buf + 8 + jl0, ' ', jl - jl0);
    enc_st *st = NULL;
    vx_status s = enc_st_parse(buf, len, "t.safetensors", &st, err);
    if (s == VX_OK) {
        T_ASSERT(st);
        enc_st_close(st);
    } else {
        T_ASSERT(st == NULL);
        printf("  -> %s\n", err->msg);
    }
    free(buf);
    return s;
}

static vx_status parse_st(const char *json, size_t data_len, vx_err *err) {
    return parse_st_opt(json, data_len, 0, err);
}

static void test_safetensors_edges(void) {
    vx_err err;
    /* header 8 + 56 = 64, so data offset 0 is 64-aligned */
    T_OK(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}      ", 16, &err), &err);
    T_OK(parse_st("{}", 0, &err), &err);
    T_OK(parse_st("{\"__metadata__\":{\"format\":\"vidx\"}}", 0, &err), &err);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}      ", 16, &err) == VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "tensor a"));
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}       ", 16, &err) == VX_EUNSUPPORTED);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, &err) == VX_ECORRUPT);
    /* overlap */
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}       ", 16, &err) == VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "overlaps"));
    /* duplicate names */
    T_ASSERT(parse_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &err) == VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "twice"));
    /* misaligned F32: data starts at an odd file offset */
    T_ASSERT(parse_st_opt("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} ", 4, 1, &err) == VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "aligned"));
    T_ASSERT(parse_st("{\"a\":5}", 0, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"__metadata__\":5}", 0, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("{\"a\":{}} x", 0, &err) == VX_EFORMAT);
    T_ASSERT(parse_st("[]", 0, &err) == VX_EFORMAT);
    enc_st *st = NULL;
    T_ASSERT(enc_st_parse("", 0, NULL, &st, &err) == VX_EFORMAT);
    T_ASSERT(enc_st_open("/nonexistent.safetensors", &st, &err) == VX_ENOTFOUND);
    T_ASSERT(enc_st_open("/tmp", &st, &err) != VX_OK);
    enc_st_close(NULL);
    /* lookup and metadata on the good fixture */
    T_OK(enc_st_open(GOOD_MODEL "/model.safetensors", &st, &err), &err);
    const enc_tensor_info *t = enc_st_find(st, "vision.cls_token");
    T_ASSERT(t && t->ndim == 3 && t->shape[2] == 64 && t->dtype == ENC_DTYPE_F32);
    T_ASSERT(((uintptr_t)t->data % 4) == 0);
    T_ASSERT(enc_st_find(st, "nope") == NULL);
    T_EQ_STR(enc_st_metadata(st, "format"), "vidx");
    T_ASSERT(enc_st_metadata(st, "nope") == NULL);
    T_EQ_STR(enc_dtype_name(ENC_DTYPE_BF16), "BF16");
    enc_st_close(st);
}

/* ---- .npy ------------------------------------------------------------------------------- */

static void test_npy_roundtrip(void) {
    vx_err err;
    char *dir = t_tempdir("enc_npy");
    char path[4096];
    snprintf(path, sizeof(path), "%s/a.npy", dir);
    float data[6] = {1, -2, 3.5f, 0, 1e-30f, 7};
    T_OK(enc_npy_write(path, ENC_NPY_F32, 2, (int64_t[]){2, 3}, data, &err), &err);
    enc_npy a;
    T_OK(enc_npy_read(path, &a, &err), &err);
    T_EQ_INT(a.ndim, 2);
    T_EQ_INT(a.shape[0], 2);
    T_EQ_INT(a.shape[1], 3);
    T_EQ_INT(a.dtype, ENC_NPY_F32);
    T_ASSERT(memcmp(a.data, data, sizeof(data)) == 0);
    enc_npy_free(&a);
    uint8_t u[5] = {0, 1, 2, 254, 255};
    T_OK(enc_npy_write(path, ENC_NPY_U8, 1, (int64_t[]){5}, u, &err), &err);
    T_OK(enc_npy_read(path, &a, &err), &err);
    T_EQ_INT(a.ndim, 1);
    T_EQ_INT(a.numel, 5);
    T_EQ_INT(a.dtype, ENC_NPY_U8);
    T_ASSERT(memcmp(a.data, u, 5) == 0);
    enc_npy_free(&a);
    /* header length multiple of 64, as numpy writes */
    size_t len;
    char *raw = read_all(path, &len);
    T_EQ_INT((len - 5) % 64, 0);
    /* hostile variants */
    enc_npy b;
    T_ASSERT(enc_npy_parse(raw, len - 1, "x", &b, &err) == VX_ECORRUPT);
    T_ASSERT(b.data == NULL);
    T_ASSERT(enc_npy_parse(raw, 9, "x", &b, &err) == VX_EFORMAT);
    raw[8] = (char)0xff; /* header length beyond the file */
    raw[9] = (char)0x7f;
    T_ASSERT(enc_npy_parse(raw, len, "x", &b, &err) == VX_EFORMAT);
    free(raw);
    const char *hdrs[] = {
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, x), }",
        "{'descr': '<f4', 'fortran_order': False }",
        "{'descr': '<f4', 'shape': (1,), }",
        "{'descr: '<f4",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
    };
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        char buf[256];
        size_t hl = strlen(hdrs[i]);
        memcpy(buf, "\x93NUMPY\x01\x00", 8);
        buf[8] = (char)hl;
        buf[9] = 0;
        memcpy(buf + 10, hdrs[i], hl);
        memset(buf + 10 + hl, 0, 4);
        vx_status s = enc_npy_parse(buf, 10 + hl + 4, "h", &b, &err);
        printf("  -> %s\n", err.msg);
        T_ASSERT(s != VX_OK);
    }
    /* 0-d and version 2 headers */
    {
        const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
        char buf[128];
        size_t hl = strlen(h);
        memcpy(buf, "\x93NUMPY\x02\x00", 8);
        buf[8] = (char)hl;
        buf[9] = buf[10] = buf[11] = 0;
        memcpy(buf + 12, h, hl);
        float one = 1;
        memcpy(buf + 12 + hl, &one, 4);
        T_OK(enc_npy_parse(buf, 12 + hl + 4, "v2", &b, &err), &err);
        T_EQ_INT(b.ndim, 0);
        T_EQ_INT(b.numel, 1);
        enc_npy_free(&b);
    }
    T_ASSERT(enc_npy_read("/nonexistent.npy", &b, &err) != VX_OK);
    enc_npy_free(NULL);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv) {
    static const t_case cases[] = {
        {"good_model_info", test_good_model_info},
        {"missing_tensor", test_missing_tensor},
        {"wrong_shape", test_wrong_shape},
        {"wrong_dtype", test_wrong_dtype},
        {"unknown_tensor", test_unknown_tensor},
        {"truncated", test_truncated},
        {"bad_header", test_bad_header},
        {"bad_config", test_bad_config},
        {"missing_weights_file", test_missing_weights_file},
        {"bf16_file_loads", test_bf16_file_loads},
        {"vision_create_args", test_vision_create_args},
        {"safetensors_edges", test_safetensors_edges},
        {"npy_roundtrip", test_npy_roundtrip},
    };
    return T_RUN(argc, argv, cases);
}
