/* idx_shots.c — windows snapped to shot cuts: the pure planning behind
 * `vidx index --snap-to-shots` (the cuts come from media_detect_shots; idx_run.c runs it). */
#include "idx.h"

size_t idx_windows_snapped(int64_t duration_ms, int64_t window_ms, int64_t overlap_ms,
                           const int64_t *cuts_ms, size_t cut_count, idx_window *out, size_t cap)
{
    if (duration_ms <= 0 || window_ms <= 0 || overlap_ms < 0 || overlap_ms >= window_ms) return 0;
    if (!cuts_ms) cut_count = 0;
    const int64_t min_len = window_ms / 2 > 0 ? window_ms / 2 : 1;
    const int64_t max_len = window_ms + window_ms / 4;
    size_t n = 0, next_cut = 0;
    int64_t start = 0;
    while (start < duration_ms) {
        while (next_cut < cut_count && cuts_ms[next_cut] <= start)
            next_cut++;
        int64_t end = start + window_ms;
        int at_cut = 0;
        for (size_t k = next_cut; k < cut_count && cuts_ms[k] <= start + max_len; k++) {
            if (cuts_ms[k] < start + min_len) continue; /* too close to the start */
            if (duration_ms - cuts_ms[k] < IDX_MIN_LAST_WINDOW_MS) break;
            end = cuts_ms[k];
            at_cut = 1;
            break;
        }
        if (!at_cut) {
            /* A tail too short to keep joins this window when that stays within max_len. */
            if (end < duration_ms && duration_ms - end < IDX_MIN_LAST_WINDOW_MS &&
                duration_ms - start <= max_len)
                end = duration_ms;
            if (end > duration_ms) end = duration_ms;
        }
        int keep =
            at_cut || end - start >= window_ms || end - start >= IDX_MIN_LAST_WINDOW_MS || n == 0;
        if (keep) {
            if (n < cap) out[n] = (idx_window){start, end};
            n++;
        }
        if (end >= duration_ms) break;
        start = at_cut ? end : end - overlap_ms;
    }
    return n;
}
