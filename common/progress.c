/* Progress of long work: a bar on a terminal, periodic log lines otherwise (CI, pipes). */
#include "vx.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vx_progress {
    char label[64];
    int64_t total;
    int64_t done;
    int64_t start_ns;
    int64_t last_draw_ns;
    int64_t log_interval_ns;
    int tty;
    int drawn;
};

vx_progress *vx_progress_create(const char *label, int64_t total, vx_err *err)
{
    vx_progress *p = vx_calloc_array(1, sizeof *p, err);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start_ns = vx_now_ns();
    p->last_draw_ns = p->start_ns;
    p->tty = isatty(STDERR_FILENO) && vx_log_threshold() <= VX_LOG_INFO;
    p->log_interval_ns = 10LL * 1000000000LL;
    return p;
}

void vx_progress_set_total(vx_progress *p, int64_t total)
{
    if (p) p->total = total;
}

static void eta_text(const vx_progress *p, int64_t now, char *out, size_t size)
{
    out[0] = '\0';
    if (p->total <= 0 || p->done <= 0 || p->done >= p->total) return;
    double elapsed = (double)(now - p->start_ns) / 1e9;
    double left = elapsed / (double)p->done * (double)(p->total - p->done);
    char d[32];
    vx_format_duration((int64_t)(left * 1000), d, sizeof d);
    snprintf(out, size, " ETA %s", d);
}

void vx_progress_update(vx_progress *p, int64_t done, const char *status_text)
{
    if (!p) return;
    p->done = done;
    int64_t now = vx_now_ns();
    char eta[48];
    if (p->tty) {
        if (now - p->last_draw_ns < 100000000LL && done != p->total) return;
        p->last_draw_ns = now;
        char bar[31];
        int filled = p->total > 0 ? (int)(30 * (done > p->total ? p->total : done) / p->total) : 0;
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        eta_text(p, now, eta, sizeof eta);
        char line[256];
        int n;
        if (p->total > 0)
            n = snprintf(line, sizeof line, "\r[%s] %lld/%lld %s %s%s\033[K", bar, (long long)done,
                         (long long)p->total, p->label, status_text ? status_text : "", eta);
        else
            n = snprintf(line, sizeof line, "\r%lld %s %s\033[K", (long long)done, p->label,
                         status_text ? status_text : "");
        if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
        p->drawn = 1;
    } else if (now - p->last_draw_ns >= p->log_interval_ns) {
        p->last_draw_ns = now;
        eta_text(p, now, eta, sizeof eta);
        if (p->total > 0)
            vx_log(VX_LOG_INFO, "progress: %lld/%lld %s %s%s", (long long)done,
                   (long long)p->total, p->label, status_text ? status_text : "", eta);
        else
            vx_log(VX_LOG_INFO, "progress: %lld %s %s", (long long)done, p->label,
                   status_text ? status_text : "");
    }
}

void vx_progress_finish(vx_progress *p)
{
    if (!p) return;
    if (p->tty && p->drawn) {
        ssize_t w = write(STDERR_FILENO, "\r\033[K", 4);
        (void)w;
    }
    free(p);
}
