/* .npy reader and writer for float32 and uint8 arrays in C order: the fixtures of the golden
 * tests and `vidx embed --input/--tokens`. The header is a Python dict literal; we accept exactly
 * what numpy writes for these dtypes and reject everything else with a message. enc_npy_parse()
 * is the fuzz entry (tests/fuzz/fuzz_npy.c). */
#include "enc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NPY_FILE_MAX ((size_t)1 << 36)
#define NPY_NUMEL_MAX ((int64_t)1 << 36)

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Finds 'key' (single or double quoted) followed by ':' in the header; returns the position
 * after the colon, or NULL. */
static const char *find_key(const char *h, const char *end, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 2 <= end; p++) {
        if ((*p == '\'' || *p == '"') && (size_t)(end - p) >= kl + 2 &&
            memcmp(p + 1, key, kl) == 0 && p[kl + 1] == *p) {
            const char *q = skip_ws(p + kl + 2, end);
            if (q < end && *q == ':') return skip_ws(q + 1, end);
        }
    }
    return NULL;
}

vx_status enc_npy_parse(const void *buf, size_t len, const char *name, enc_npy *out,
                        vx_err *err) {
    memset(out, 0, sizeof(*out));
    const char *label = name ? name : "<memory>";
    const unsigned char *b = buf;
    if (!b || len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return vx_fail(err, VX_EFORMAT, "%s: not a .npy file (bad magic)", label);
    int major = b[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | ((size_t)b[9] << 8);
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return vx_fail(err, VX_EFORMAT, "%s: truncated .npy header", label);
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        hoff = 12;
    } else {
        return vx_fail(err, VX_EUNSUPPORTED, "%s: .npy version %d not supported", label, major);
    }
    if (hlen > len - hoff)
        return vx_fail(err, VX_EFORMAT, "%s: header length %zu beyond the file (%zu bytes)",
                       label, hlen, len);
    const char *h = (const char *)b + hoff, *hend = h + hlen;

    const char *p = find_key(h, hend, "descr");
    if (!p || p >= hend || (*p != '\'' && *p != '"'))
        return vx_fail(err, VX_EFORMAT, "%s: header has no 'descr'", label);
    char quote = *p++;
    const char *q = memchr(p, quote, (size_t)(hend - p));
    if (!q) return vx_fail(err, VX_EFORMAT, "%s: unterminated 'descr'", label);
    size_t dl = (size_t)(q - p);
    int esize;
    if (dl == 3 && memcmp(p, "<f4", 3) == 0) {
        out->dtype = ENC_NPY_F32;
        esize = 4;
    } else if (dl == 3 && (memcmp(p, "|u1", 3) == 0 || memcmp(p, "<u1", 3) == 0)) {
        out->dtype = ENC_NPY_U8;
        esize = 1;
    } else {
        return vx_fail(err, VX_EUNSUPPORTED,
                       "%s: dtype '%.*s' not supported (float32 '<f4' or uint8 '|u1')", label,
                       (int)(dl > 16 ? 16 : dl), p);
    }

    p = find_key(h, hend, "fortran_order");
    if (!p) return vx_fail(err, VX_EFORMAT, "%s: header has no 'fortran_order'", label);
    if ((size_t)(hend - p) >= 4 && memcmp(p, "True", 4) == 0)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: Fortran-order arrays not supported", label);
    if ((size_t)(hend - p) < 5 || memcmp(p, "False", 5) != 0)
        return vx_fail(err, VX_EFORMAT, "%s: bad 'fortran_order' value", label);

    p = find_key(h, hend, "shape");
    if (!p || p >= hend || *p != '(')
        return vx_fail(err, VX_EFORMAT, "%s: header has no 'shape' tuple", label);
    p++;
    int ndim = 0;
    int64_t numel = 1;
    for (;;) {
        p = skip_ws(p, hend);
        if (p >= hend) return vx_fail(err, VX_EFORMAT, "%s: unterminated 'shape'", label);
        if (*p == ')') break;
        if (!isdigit((unsigned char)*p))
            return vx_fail(err, VX_EFORMAT, "%s: bad 'shape' entry", label);
        int64_t v = 0;
        while (p < hend && isdigit((unsigned char)*p)) {
            v = v * 10 + (*p - '0');
            if (v > NPY_NUMEL_MAX)
                return vx_fail(err, VX_ELIMIT, "%s: dimension too large", label);
            p++;
        }
        if (ndim >= ENC_MAX_DIMS)
            return vx_fail(err, VX_EUNSUPPORTED, "%s: more than %d dimensions", label,
                           ENC_MAX_DIMS);
        out->shape[ndim++] = v;
        if (__builtin_mul_overflow(numel, v, &numel) || numel > NPY_NUMEL_MAX)
            return vx_fail(err, VX_ELIMIT, "%s: array too large", label);
        p = skip_ws(p, hend);
        if (p < hend && *p == ',') p++;
        else if (p < hend && *p != ')')
            return vx_fail(err, VX_EFORMAT, "%s: bad 'shape' separator", label);
    }
    out->ndim = ndim;
    out->numel = numel;
    size_t data_off = hoff + hlen;
    size_t need = (size_t)numel * (size_t)esize;
    if (len - data_off != need) {
        memset(out, 0, sizeof(*out));
        return vx_fail(err, VX_ECORRUPT, "%s: %zu data bytes, expected %zu for this shape%s",
                       label, len - data_off, need,
                       len - data_off < need ? " (truncated)" : "");
    }
    out->data = vx_aligned_alloc(64, need ? need : 64, err);
    if (!out->data) {
        memset(out, 0, sizeof(*out));
        return VX_ENOMEM;
    }
    if (need) memcpy(out->data, b + data_off, need);
    return VX_OK;
}

vx_status enc_npy_read(const char *path, enc_npy *out, vx_err *err) {
    memset(out, 0, sizeof(*out));
    char *bytes = NULL;
    size_t len = 0;
    vx_status s = vx_read_file(path, NPY_FILE_MAX, &bytes, &len, err);
    if (s != VX_OK) return s;
    s = enc_npy_parse(bytes, len, path, out, err);
    free(bytes);
    return s;
}

vx_status enc_npy_write(const char *path, enc_npy_dtype dtype, int ndim, const int64_t *shape,
                        const void *data, vx_err *err) {
    if (ndim < 0 || ndim > ENC_MAX_DIMS)
        return vx_fail(err, VX_EINVAL, "%s: %d dimensions not supported", path, ndim);
    char header[512];
    int n = snprintf(header, sizeof(header), "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtype == ENC_NPY_F32 ? "<f4" : "|u1");
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return vx_fail(err, VX_EINVAL, "%s: negative dimension", path);
        numel *= shape[i];
        n += snprintf(header + n, sizeof(header) - (size_t)n, "%lld%s", (long long)shape[i],
                      ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    }
    n += snprintf(header + n, sizeof(header) - (size_t)n, "), }");
    size_t esize = dtype == ENC_NPY_F32 ? 4 : 1;
    size_t total_header = 10 + (size_t)n + 1;
    size_t pad = (64 - total_header % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    size_t data_bytes = (size_t)numel * esize;
    size_t total = 10 + hlen + data_bytes;
    unsigned char *buf = malloc(total);
    if (!buf) return vx_fail(err, VX_ENOMEM, "%s: out of memory", path);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    if (data_bytes) memcpy(buf + 10 + hlen, data, data_bytes);
    vx_status s = vx_write_file_atomic(path, buf, total, err);
    free(buf);
    return s;
}

void enc_npy_free(enc_npy *npy) {
    if (!npy) return;
    free(npy->data);
    memset(npy, 0, sizeof(*npy));
}
