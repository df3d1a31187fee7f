/* Logging to stderr with a threshold from VIDX_LOG; one write per line so threads do not
 * interleave. */
#include "vx.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

vx_log_level vx_log_threshold(void)
{
    const char *v = getenv("VIDX_LOG");
    if (!v || !*v) return VX_LOG_INFO;
    if (!strcasecmp(v, "debug")) return VX_LOG_DEBUG;
    if (!strcasecmp(v, "info")) return VX_LOG_INFO;
    if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning")) return VX_LOG_WARN;
    if (!strcasecmp(v, "error")) return VX_LOG_ERROR;
    if (!strcasecmp(v, "quiet") || !strcasecmp(v, "off")) return VX_LOG_QUIET;
    return VX_LOG_INFO;
}

void vx_log(vx_log_level level, const char *fmt, ...)
{
    if (level < vx_log_threshold()) return;
    static const char *const names[] = {"debug", "info", "warning", "error", ""};
    char line[2048];
    int n = snprintf(line, sizeof line, "vidx: %s: ", names[level <= VX_LOG_QUIET ? level : 3]);
    if (level == VX_LOG_INFO) n = snprintf(line, sizeof line, "vidx: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    /* A single write(2) keeps concurrent lines whole. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
