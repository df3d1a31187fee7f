/* Parsing and formatting of durations, sizes and integers typed by users. */
#include "vx.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

vx_status vx_parse_duration_ms(const char *text, int64_t *out_ms, vx_err *err)
{
    if (!text || !*text) return vx_fail(err, VX_EINVAL, "empty duration");
    const char *p = text;
    int64_t total = 0;
    int parts = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return vx_fail(err, VX_EINVAL, "bad duration '%s' (expected e.g. 90s, 4m, 6h, 1h30m)",
                           text);
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0 || v > 1e15)
            return vx_fail(err, VX_EINVAL, "bad duration '%s'", text);
        p = end;
        double unit_ms;
        if (!strncmp(p, "ms", 2)) { unit_ms = 1; p += 2; }
        else if (*p == 's') { unit_ms = 1000; p++; }
        else if (*p == 'm') { unit_ms = 60000; p++; }
        else if (*p == 'h') { unit_ms = 3600000; p++; }
        else if (*p == 'd') { unit_ms = 86400000; p++; }
        else if (*p == '\0' && parts == 0) unit_ms = 1000; /* a bare number means seconds */
        else return vx_fail(err, VX_EINVAL, "bad unit in duration '%s' (use ms, s, m, h or d)", text);
        double ms = v * unit_ms;
        if (ms > 9.0e15 || (double)total + ms > 9.0e15)
            return vx_fail(err, VX_EINVAL, "duration '%s' is too long", text);
        total += (int64_t)(ms + 0.5);
        parts++;
    }
    *out_ms = total;
    return VX_OK;
}

vx_status vx_parse_size_bytes(const char *text, int64_t *out_bytes, vx_err *err)
{
    if (!text || !*text) return vx_fail(err, VX_EINVAL, "empty size");
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || v < 0 || !isdigit((unsigned char)text[0]))
        return vx_fail(err, VX_EINVAL, "bad size '%s' (expected e.g. 512, 64k, 10MB, 2GiB)", text);
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B': break;
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return vx_fail(err, VX_EINVAL, "bad unit in size '%s'", text);
    }
    if (mul > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return vx_fail(err, VX_EINVAL, "bad size '%s'", text);
    double bytes = v * mul;
    if (bytes > 9.0e18) return vx_fail(err, VX_EINVAL, "size '%s' is too large", text);
    *out_bytes = (int64_t)bytes;
    return VX_OK;
}

vx_status vx_parse_int(const char *text, int64_t min, int64_t max, const char *what, int64_t *out,
                       vx_err *err)
{
    if (!text || !*text) return vx_fail(err, VX_EINVAL, "%s: empty value", what);
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end || errno)
        return vx_fail(err, VX_EINVAL, "%s: '%s' is not a whole number", what, text);
    if (v < min || v > max)
        return vx_fail(err, VX_EINVAL, "%s: %lld is outside %lld..%lld", what, v, (long long)min,
                       (long long)max);
    *out = v;
    return VX_OK;
}

void vx_format_duration(int64_t ms, char *out, size_t out_size)
{
    if (ms < 0) ms = 0;
    if (ms < 60000) {
        snprintf(out, out_size, "%.1fs", (double)ms / 1000.0);
        return;
    }
    int64_t s = ms / 1000;
    if (s < 3600)
        snprintf(out, out_size, "%dm%02ds", (int)(s / 60), (int)(s % 60));
    else
        snprintf(out, out_size, "%lldh%02dm%02ds", (long long)(s / 3600), (int)(s / 60 % 60),
                 (int)(s % 60));
}

void vx_format_size(int64_t bytes, char *out, size_t out_size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, out_size, "%lld B", (long long)bytes);
    else
        snprintf(out, out_size, "%.1f %s", v, units[u]);
}

int vx_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int len;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int vx_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (p[i] == 0) return 0;
        int n = vx_utf8_len(p + i, len - i);
        if (!n) return 0;
        i += (size_t)n;
    }
    return 1;
}
