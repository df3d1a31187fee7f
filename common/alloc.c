/* Checked allocation and a growable buffer. */
#include "vx.h"

#include <stdlib.h>
#include <string.h>

void *vx_malloc(size_t size, vx_err *err)
{
    void *p = malloc(size ? size : 1);
    if (!p) vx_fail(err, VX_ENOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *vx_calloc_array(size_t count, size_t size, vx_err *err)
{
    if (size && count > SIZE_MAX / size) {
        vx_fail(err, VX_ENOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) vx_fail(err, VX_ENOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *vx_aligned_alloc(size_t alignment, size_t size, vx_err *err)
{
    void *p = NULL;
    if (posix_memalign(&p, alignment, size ? size : alignment) != 0) {
        vx_fail(err, VX_ENOMEM, "out of memory allocating %zu aligned bytes", size);
        return NULL;
    }
    return p;
}

char *vx_strdup(const char *s, vx_err *err)
{
    size_t n = strlen(s) + 1;
    char *p = vx_malloc(n, err);
    if (p) memcpy(p, s, n);
    return p;
}

char *vx_asprintf(vx_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        vx_fail(err, VX_EINVAL, "bad format string");
        return NULL;
    }
    char *p = vx_malloc((size_t)n + 1, err);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static vx_status buf_reserve(vx_buf *buf, size_t extra, vx_err *err)
{
    if (extra > SIZE_MAX - buf->len - 1) return vx_fail(err, VX_ENOMEM, "buffer too large");
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap) return VX_OK;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(buf->data, cap);
    if (!p) return vx_fail(err, VX_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
    buf->data = p;
    buf->cap = cap;
    return VX_OK;
}

vx_status vx_buf_append(vx_buf *buf, const void *bytes, size_t len, vx_err *err)
{
    vx_status st = buf_reserve(buf, len, err);
    if (st) return st;
    if (len) memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return VX_OK;
}

vx_status vx_buf_printf(vx_buf *buf, vx_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return vx_fail(err, VX_EINVAL, "bad format string");
    vx_status st = buf_reserve(buf, (size_t)n, err);
    if (st) return st;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return VX_OK;
}

void vx_buf_free(vx_buf *buf)
{
    if (!buf) return;
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
