/* Decode+segment throughput, the indexer's decoder work without the encoder: for each 4 s
 * window of a video (idx_windows), 8 frames by the middle rule (media_sample_window, seeking
 * to the window), each resized and normalised to the model's 3×8×224×224 tensor
 * (media_preproc_frames), and the thumbnail's JPEG. Prints seconds and × real time; the
 * baseline (the FFmpeg CLI decoding every frame of the same file) is timed by
 * bench_indexer.py in the same run. Not a test: prints numbers.
 *
 *   bench_decode FILE [--window-ms 4000] [--frames 8] [--size 224] [--iters 2] */
#include "idx.h"
#include "media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* CPU seconds of the process (all threads): on a shared, busy machine a steadier figure than
 * the wall time. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int64_t window_ms = 4000;
    int frames_per_window = 8, size = 224, iters = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--window-ms") && i + 1 < argc)
            window_ms = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames_per_window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else
            path = argv[i];
    }
    if (!path || window_ms <= 0 || frames_per_window < 1 || size < 16 || iters < 1) {
        fprintf(stderr, "usage: bench_decode FILE [--window-ms MS] [--frames T] [--size S] "
                        "[--iters K]\n");
        return 2;
    }
    vx_err err = {0};
    media_preproc *pp = NULL;
    media_jpeg *jpeg = NULL;
    if (media_preproc_create(size, size, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp, &err) ||
        media_jpeg_create(160, 5, &jpeg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    float *tensor = malloc(media_preproc_tensor_floats(pp, frames_per_window) * sizeof(float));
    media_frames frames = {0};
    double best = 1e30, best_cpu = 1e30;
    int64_t duration_ms = 0;
    size_t nwin = 0;
    for (int it = 0; it < iters; it++) {
        int64_t t0 = vx_now_ns();
        double c0 = cpu_seconds();
        media_reader *r = NULL;
        if (media_open(path, MEDIA_NEED_VIDEO, &r, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        const media_info *info = media_get_info(r);
        duration_ms = info->video.duration_ms > 0 ? info->video.duration_ms : info->duration_ms;
        nwin = idx_windows(duration_ms, window_ms, 0, NULL, 0);
        idx_window *wins = calloc(nwin ? nwin : 1, sizeof *wins);
        idx_windows(duration_ms, window_ms, 0, wins, nwin);
        for (size_t w = 0; w < nwin; w++) {
            const uint8_t *bytes;
            size_t len;
            if (media_sample_window(r, wins[w].start_ms, wins[w].end_ms, frames_per_window, &frames,
                                    &err) ||
                media_preproc_frames(pp, &frames, tensor, &err) ||
                media_jpeg_encode(jpeg, media_frames_at(&frames, frames_per_window / 2),
                                  frames.width_px, frames.height_px, &bytes, &len, &err)) {
                fprintf(stderr, "window %zu: %s\n", w, err.msg);
                return 1;
            }
        }
        free(wins);
        media_close(r);
        double secs = (double)(vx_now_ns() - t0) / 1e9, cpu = cpu_seconds() - c0;
        if (secs < best) best = secs;
        if (cpu < best_cpu) best_cpu = cpu;
    }
    printf("decode+segment: %zu windows of %lld ms, %d frames each at %dx%d, in %.2f s "
           "(best of %d; %.2f CPU-s) for %.1f s of video: %.1fx real time, %.1f windows/s\n",
           nwin, (long long)window_ms, frames_per_window, size, size, best, iters, best_cpu,
           (double)duration_ms / 1000.0, (double)duration_ms / 1000.0 / best, (double)nwin / best);
    media_frames_free(&frames);
    media_preproc_free(pp);
    media_jpeg_free(jpeg);
    free(tensor);
    return 0;
}
