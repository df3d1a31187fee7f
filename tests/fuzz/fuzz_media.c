/* Fuzz target for media/: any bytes, opened from memory through a custom AVIOContext, probed,
 * sampled (timestamps and index rule), resized and read as audio. Nothing may crash, leak or
 * hang; every failure must come with a message. Decoding is bounded by short windows and few
 * frames so one input runs in milliseconds. Seed corpus: tests/fuzz/corpus/media/ (tiny
 * clips from scripts/make_sample_media.sh cut to a few KB, plus damaged ones). */
#include "media.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failure(vx_status st, const vx_err *err)
{
    if (st != VX_OK && err->msg[0] == '\0') abort(); /* a failure without a message */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        setenv("VIDX_LOG", "error", 0); /* warnings about damaged packets are expected */
        quiet = 1;
    }
    vx_err err = {0};
    media_reader *r = NULL;
    vx_status st = media_open_memory(data, size, "fuzz-input", 0, &r, &err);
    check_failure(st, &err);
    if (st != VX_OK) return 0;
    const media_info *info = media_get_info(r);
    /* Bound memory: a header may claim an enormous frame; FFmpeg decodes it only as far as the
     * data goes, but our batches would still be allocated at full size. */
    if (info->has_video &&
        (int64_t)info->video.width_px * info->video.height_px <= (int64_t)4096 * 4096) {
        media_frames frames = {0};
        st = media_sample_window(r, 0, 400, 3, &frames, &err);
        check_failure(st, &err);
        if (st == VX_OK && frames.width_px <= 4096 && frames.height_px <= 4096) {
            media_preproc *pp = NULL;
            if (media_preproc_create(16, 16, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp, &err) ==
                VX_OK) {
                float *x = malloc(media_preproc_tensor_floats(pp, frames.count) * sizeof(float));
                if (x) check_failure(media_preproc_frames(pp, &frames, x, &err), &err);
                free(x);
                media_preproc_free(pp);
            }
        }
        st = media_sample_window(r, 100, 200, 2, &frames, &err); /* backward seek */
        check_failure(st, &err);
        st = media_sample_frame_range(r, 0, 4, 2, &frames, &err);
        check_failure(st, &err);
        media_frames_free(&frames);
    }
    if (info->audio_count > 0) {
        float *pcm = NULL;
        size_t n = 0;
        st = media_read_audio_16k_mono(r, 0, 300, &pcm, &n, &err);
        check_failure(st, &err);
        free(pcm);
    }
    for (int i = 0; i < info->subtitle_count && i < 2; i++) {
        media_subtitle_cues cues = {0};
        check_failure(media_read_subtitles(r, i, &cues, &err), &err);
        media_subtitle_cues_free(&cues);
    }
    media_close(r);
    return 0;
}
