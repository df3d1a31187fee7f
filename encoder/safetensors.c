/* safetensors reader: maps the file read-only, parses the JSON header with cJSON and checks
 * every entry (dtype, shape, offsets inside the data, no overlap, element alignment) before
 * anyone reads a byte of tensor data. Hostile input must end in a message, never a crash:
 * enc_st_parse() is the fuzz entry (tests/fuzz/fuzz_safetensors.c). */
#include "enc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A real header is a few hundred bytes per tensor; 100 MB means a broken or hostile file. */
#define ST_HEADER_MAX ((uint64_t)100 << 20)
/* Counts and sizes beyond this are not plausible and keep all arithmetic far from overflow. */
#define ST_DIM_MAX ((int64_t)1 << 40)

struct enc_st {
    void *map;
    size_t map_len;
    char *label;
    cJSON *root;
    enc_tensor_info *tensors;
    int64_t count;
};

const char *enc_dtype_name(enc_dtype dtype) {
    switch (dtype) {
    case ENC_DTYPE_F32: return "F32";
    case ENC_DTYPE_F16: return "F16";
    case ENC_DTYPE_BF16: return "BF16";
    case ENC_DTYPE_I64: return "I64";
    }
    return "?";
}

static int dtype_from_name(const char *s, enc_dtype *out, int *esize) {
    if (strcmp(s, "F32") == 0) { *out = ENC_DTYPE_F32; *esize = 4; return 1; }
    if (strcmp(s, "F16") == 0) { *out = ENC_DTYPE_F16; *esize = 2; return 1; }
    if (strcmp(s, "BF16") == 0) { *out = ENC_DTYPE_BF16; *esize = 2; return 1; }
    if (strcmp(s, "I64") == 0) { *out = ENC_DTYPE_I64; *esize = 8; return 1; }
    return 0;
}

/* A JSON number that is a whole number in [0, max]. */
static int json_uint(const cJSON *item, int64_t max, int64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0) || v > (double)max || v != (double)(int64_t)v) return 0;
    *out = (int64_t)v;
    return 1;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const enc_tensor_info *)a)->name, ((const enc_tensor_info *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const enc_tensor_info *x = *(const enc_tensor_info *const *)a;
    const enc_tensor_info *y = *(const enc_tensor_info *const *)b;
    if (x->offset_bytes != y->offset_bytes) return x->offset_bytes < y->offset_bytes ? -1 : 1;
    return x->size_bytes < y->size_bytes ? -1 : (x->size_bytes > y->size_bytes);
}

/* Validates one header entry into t. Returns VX_OK or fills err naming the tensor. */
static vx_status parse_entry(const cJSON *entry, const char *label, const uint8_t *data,
                             uint64_t data_len, uint64_t data_base, enc_tensor_info *t,
                             vx_err *err) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return vx_fail(err, VX_EFORMAT, "%s: tensor %s: header entry is not an object", label,
                       name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return vx_fail(err, VX_EFORMAT, "%s: tensor %s: missing or non-string \"dtype\"", label,
                       name);
    int esize = 0;
    if (!dtype_from_name(dtype->valuestring, &t->dtype, &esize))
        return vx_fail(err, VX_EUNSUPPORTED,
                       "%s: tensor %s: dtype %.16s not supported (F32, F16, BF16, I64)", label,
                       name, dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return vx_fail(err, VX_EFORMAT, "%s: tensor %s: missing or non-array \"shape\"", label,
                       name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ENC_MAX_DIMS)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: tensor %s: %d dimensions (at most %d)", label,
                       name, ndim, ENC_MAX_DIMS);
    t->ndim = ndim;
    int64_t numel = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        int64_t v;
        if (!json_uint(d, ST_DIM_MAX, &v))
            return vx_fail(err, VX_EFORMAT, "%s: tensor %s: shape[%d] is not a valid size", label,
                           name, i);
        t->shape[i] = v;
        if (__builtin_mul_overflow(numel, v, &numel) || numel > ST_DIM_MAX)
            return vx_fail(err, VX_EFORMAT, "%s: tensor %s: shape too large", label, name);
    }
    t->numel = numel;
    int64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(offs->child, ST_DIM_MAX * 8, &begin) ||
        !json_uint(offs->child->next, ST_DIM_MAX * 8, &end))
        return vx_fail(err, VX_EFORMAT,
                       "%s: tensor %s: \"data_offsets\" must be two whole numbers [begin, end]",
                       label, name);
    if (end < begin)
        return vx_fail(err, VX_EFORMAT, "%s: tensor %s: data_offsets end %lld before begin %lld",
                       label, name, (long long)end, (long long)begin);
    if ((uint64_t)end > data_len)
        return vx_fail(err, VX_ECORRUPT,
                       "%s: tensor %s: data [%lld, %lld) beyond the end of the data (%llu bytes): "
                       "file truncated?",
                       label, name, (long long)begin, (long long)end,
                       (unsigned long long)data_len);
    if ((uint64_t)(end - begin) != (uint64_t)numel * (uint64_t)esize)
        return vx_fail(err, VX_EFORMAT,
                       "%s: tensor %s: %lld bytes of data for %lld elements of %s (expected %lld)",
                       label, name, (long long)(end - begin), (long long)numel,
                       dtype->valuestring, (long long)(numel * esize));
    t->offset_bytes = data_base + (uint64_t)begin;
    t->size_bytes = (uint64_t)(end - begin);
    if (t->offset_bytes % (uint64_t)esize != 0)
        return vx_fail(err, VX_EFORMAT,
                       "%s: tensor %s: file offset %llu not aligned to its %d-byte elements", label,
                       name, (unsigned long long)t->offset_bytes, esize);
    t->name = name;
    t->data = data + begin;
    return VX_OK;
}

static vx_status parse_into(enc_st *st, const uint8_t *buf, size_t len, vx_err *err) {
    const char *label = st->label;
    if (len < 8)
        return vx_fail(err, VX_EFORMAT, "%s: %zu bytes, too short for a safetensors header",
                       label, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen == 0) return vx_fail(err, VX_EFORMAT, "%s: header length is 0", label);
    if (hlen > len - 8)
        return vx_fail(err, VX_ECORRUPT,
                       "%s: header length %llu larger than the file (%zu bytes): truncated or not "
                       "safetensors",
                       label, (unsigned long long)hlen, len);
    if (hlen > ST_HEADER_MAX)
        return vx_fail(err, VX_EFORMAT, "%s: header length %llu exceeds the %llu-byte limit",
                       label, (unsigned long long)hlen, (unsigned long long)ST_HEADER_MAX);
    const char *json = (const char *)buf + 8;
    if (memchr(json, '\0', hlen))
        return vx_fail(err, VX_EFORMAT, "%s: header contains a NUL byte", label);
    const char *end = NULL;
    st->root = cJSON_ParseWithLengthOpts(json, hlen, &end, 0);
    if (!st->root || !cJSON_IsObject(st->root))
        return vx_fail(err, VX_EFORMAT, "%s: header is not a JSON object (parse error near byte %lld)",
                       label, end ? (long long)(end - json) : (st->root ? 0LL : -1LL));
    for (const char *p = end; p && p < json + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            return vx_fail(err, VX_EFORMAT, "%s: trailing bytes after the header JSON", label);

    uint64_t data_base = 8 + hlen;
    uint64_t data_len = len - data_base;
    const uint8_t *data = buf + data_base;
    int64_t n = 0;
    for (const cJSON *e = st->root->child; e; e = e->next) {
        if (!e->string) return vx_fail(err, VX_EFORMAT, "%s: header entry without a name", label);
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e))
                return vx_fail(err, VX_EFORMAT, "%s: __metadata__ is not an object", label);
            continue;
        }
        n++;
    }
    st->tensors = n ? calloc((size_t)n, sizeof(*st->tensors)) : NULL;
    if (n && !st->tensors) return vx_fail(err, VX_ENOMEM, "%s: out of memory", label);
    int64_t i = 0;
    for (const cJSON *e = st->root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        if (e->string[0] == '\0')
            return vx_fail(err, VX_EFORMAT, "%s: tensor with an empty name", label);
        vx_status s = parse_entry(e, label, data, data_len, data_base, &st->tensors[i], err);
        if (s != VX_OK) return s;
        i++;
    }
    st->count = n;
    if (n == 0) return VX_OK;
    qsort(st->tensors, (size_t)n, sizeof(*st->tensors), cmp_by_name);
    for (i = 1; i < n; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return vx_fail(err, VX_EFORMAT, "%s: tensor %s appears twice in the header", label,
                           st->tensors[i].name);
    const enc_tensor_info **by_off = malloc((size_t)n * sizeof(*by_off));
    if (!by_off) return vx_fail(err, VX_ENOMEM, "%s: out of memory", label);
    for (i = 0; i < n; i++) by_off[i] = &st->tensors[i];
    qsort(by_off, (size_t)n, sizeof(*by_off), cmp_by_offset);
    vx_status s = VX_OK;
    const enc_tensor_info *prev = NULL;
    for (i = 0; i < n; i++) {
        const enc_tensor_info *t = by_off[i];
        if (t->size_bytes == 0) continue;
        if (prev && t->offset_bytes < prev->offset_bytes + prev->size_bytes) {
            s = vx_fail(err, VX_EFORMAT, "%s: tensor %s overlaps tensor %s", label, t->name,
                        prev->name);
            break;
        }
        prev = t;
    }
    free(by_off);
    return s;
}

static enc_st *st_new(const char *label, vx_err *err) {
    enc_st *st = calloc(1, sizeof(*st));
    if (!st) {
        vx_fail(err, VX_ENOMEM, "out of memory");
        return NULL;
    }
    st->label = strdup(label ? label : "<memory>");
    if (!st->label) {
        free(st);
        vx_fail(err, VX_ENOMEM, "out of memory");
        return NULL;
    }
    return st;
}

vx_status enc_st_parse(const void *buf, size_t len, const char *name, enc_st **out, vx_err *err) {
    *out = NULL;
    if (!buf && len) return vx_fail(err, VX_EINVAL, "enc_st_parse: NULL buffer");
    enc_st *st = st_new(name, err);
    if (!st) return VX_ENOMEM;
    vx_status s = parse_into(st, buf ? buf : "", len, err);
    if (s != VX_OK) {
        enc_st_close(st);
        return s;
    }
    *out = st;
    return VX_OK;
}

vx_status enc_st_open(const char *path, enc_st **out, vx_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return vx_fail(err, e == ENOENT ? VX_ENOTFOUND : VX_EIO, "cannot open %s: %s", path,
                       strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return vx_fail(err, VX_EIO, "%s: not a regular file", path);
    }
    enc_st *st = st_new(path, err);
    if (!st) {
        close(fd);
        return VX_ENOMEM;
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            enc_st_close(st);
            return vx_fail(err, VX_EIO, "cannot map %s: %s", path, strerror(e));
        }
        st->map = map;
        st->map_len = len;
    }
    close(fd);
    vx_status s = parse_into(st, map ? map : (const void *)"", len, err);
    if (s != VX_OK) {
        enc_st_close(st);
        return s;
    }
    *out = st;
    return VX_OK;
}

void enc_st_close(enc_st *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->map_len);
    cJSON_Delete(st->root);
    free(st->tensors);
    free(st->label);
    free(st);
}

int64_t enc_st_count(const enc_st *st) { return st ? st->count : 0; }

const enc_tensor_info *enc_st_tensor(const enc_st *st, int64_t i) {
    if (!st || i < 0 || i >= st->count) return NULL;
    return &st->tensors[i];
}

const enc_tensor_info *enc_st_find(const enc_st *st, const char *name) {
    if (!st || !name) return NULL;
    int64_t lo = 0, hi = st->count;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *enc_st_metadata(const enc_st *st, const char *key) {
    if (!st || !st->root) return NULL;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(st->root, "__metadata__");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
