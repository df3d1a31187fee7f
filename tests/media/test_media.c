/* Tests for media/: probing many containers and codecs, clear errors on broken files, the
 * middle rule on timestamps (CFR and VFR, checked against frame numbers drawn into the video
 * and ffprobe's timestamps), the index rule (against numpy's values), colour matrices,
 * ranges, 10-bit, rotation, and the resize + normalisation against torchvision goldens.
 *
 * Needs VIDX_MEDIA_SAMPLES (a folder made by scripts/make_sample_media.sh) and
 * VIDX_MEDIA_GOLDEN (tests/media/golden, made by make_resize_golden.py); ctest sets both. */
#include "media.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <pthread.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static const char *samples_dir(void)
{
    const char *d = getenv("VIDX_MEDIA_SAMPLES");
    if (!d || !*d) T_FAIL("VIDX_MEDIA_SAMPLES is not set (run through ctest)");
    return d;
}

static char *sample(const char *name)
{
    static char paths[8][4096];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 4096, "%s/%s", samples_dir(), name);
    return p;
}

static media_reader *open_ok(const char *name, unsigned flags)
{
    vx_err err = {0};
    media_reader *r = NULL;
    T_OK(media_open(sample(name), flags, &r, &err), &err);
    T_ASSERT(r != NULL);
    return r;
}

/* ---- probe ------------------------------------------------------------------------------ */

typedef struct probe_case {
    const char *file, *codec, *container_part;
    int width, height, has_audio;
} probe_case;

static void test_probe_formats(void)
{
    static const probe_case cases[] = {
        {"grey_h264.mp4", "h264", "mp4", 64, 64, 0},
        {"grey_h264.mov", "h264", "mov", 64, 64, 0},
        {"grey_h264.ts", "h264", "mpegts", 64, 64, 0},
        {"grey_vp9.mkv", "vp9", "matroska", 64, 64, 0},
        {"grey_vp8.webm", "vp8", "matroska", 64, 64, 0},
        {"grey_mpeg4.avi", "mpeg4", "avi", 64, 64, 0},
        {"grey_ffv1.mkv", "ffv1", "matroska", 64, 64, 0},
        {"odd_317x239.webm", "vp9", "matroska", 317, 239, 0},
        {"av_h264_aac.mp4", "h264", "mp4", 96, 64, 1},
        {"av_mpeg2_mp2.ts", "mpeg2video", "mpegts", 96, 64, 1},
        {"av_theora_vorbis.ogv", "theora", "ogg", 96, 64, 1},
        {"av_prores_pcm.mov", "prores", "mov", 96, 64, 1},
        {"subs.mkv", "vp9", "matroska", 96, 64, 1},
        {"ünïcödé 視頻.mp4", "h264", "mp4", 64, 64, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const probe_case *c = &cases[i];
        media_reader *r = open_ok(c->file, MEDIA_NEED_VIDEO);
        const media_info *info = media_get_info(r);
        fprintf(
            stderr, "   %-22s %-10s %-24s %dx%d %.3f fps %s %s %d-bit, %d audio, %" PRId64 " ms\n",
            c->file, info->video.codec_name, info->container, info->video.width_px,
            info->video.height_px, info->video.avg_fps, info->video.pix_fmt,
            info->video.color_matrix, info->video.bit_depth, info->audio_count, info->duration_ms);
        T_ASSERT(info->has_video);
        T_EQ_STR(info->video.codec_name, c->codec);
        if (!strstr(info->container, c->container_part))
            T_FAIL("%s: container %s lacks %s", c->file, info->container, c->container_part);
        T_EQ_INT(info->video.width_px, c->width);
        T_EQ_INT(info->video.height_px, c->height);
        T_EQ_INT(info->video.upright_width_px, c->width);
        T_EQ_INT(info->video.rotation_deg, 0);
        T_EQ_INT(info->audio_count > 0, c->has_audio);
        T_ASSERT(info->video.avg_fps > 24.9 && info->video.avg_fps < 25.1);
        T_ASSERT(info->video.r_fps > 24.9 && info->video.r_fps < 25.1);
        T_ASSERT(info->duration_ms >= 900 && info->duration_ms <= 2600);
        T_ASSERT(info->video.bit_depth == 8 || !strcmp(c->codec, "prores"));
        if (c->has_audio) {
            T_ASSERT(info->audio[0].sample_rate_hz > 0);
            T_ASSERT(info->audio[0].channels >= 1);
        }
        media_close(r);
    }
}

static void test_probe_streams(void)
{
    media_reader *r = open_ok("av_h264_aac.mp4", MEDIA_NEED_VIDEO | MEDIA_NEED_AUDIO);
    const media_info *info = media_get_info(r);
    T_EQ_INT(info->audio_count, 1);
    T_EQ_STR(info->audio[0].codec_name, "aac");
    T_EQ_INT(info->audio[0].sample_rate_hz, 44100);
    T_EQ_INT(info->audio[0].channels, 2);
    T_EQ_INT(info->subtitle_count, 0);
    media_close(r);

    r = open_ok("subs.mkv", 0);
    info = media_get_info(r);
    T_EQ_INT(info->subtitle_count, 1);
    T_EQ_STR(info->subtitle[0].codec_name, "subrip");
    T_EQ_STR(info->subtitle[0].language, "eng");
    T_EQ_STR(info->audio[0].codec_name, "opus");
    media_close(r);

    r = open_ok("grey_h264_10bit.mkv", MEDIA_NEED_VIDEO);
    T_EQ_INT(media_get_info(r)->video.bit_depth, 10);
    T_EQ_STR(media_get_info(r)->video.pix_fmt, "yuv420p10le");
    media_close(r);

    r = open_ok("interlaced.mp4", MEDIA_NEED_VIDEO);
    T_EQ_INT(media_get_info(r)->video.interlaced, 1);
    media_close(r);
    r = open_ok("grey_h264.mp4", MEDIA_NEED_VIDEO);
    T_EQ_INT(media_get_info(r)->video.interlaced, 0);
    T_EQ_INT(media_get_info(r)->video.frame_count, 50);
    media_close(r);

    /* Audio only: fine without MEDIA_NEED_VIDEO, a clear error with it. */
    const char *audio_files[] = {"audio_only.m4a", "audio_only.wav"};
    for (int i = 0; i < 2; i++) {
        r = open_ok(audio_files[i], MEDIA_NEED_AUDIO);
        T_EQ_INT(media_get_info(r)->has_video, 0);
        T_EQ_INT(media_get_info(r)->audio_count, 1);
        vx_err err = {0};
        media_frames frames = {0};
        T_EQ_INT(media_sample_window(r, 0, 1000, 4, &frames, &err), VX_EUNSUPPORTED);
        T_ASSERT(strstr(err.msg, audio_files[i]) != NULL);
        media_close(r);
        media_reader *none = (media_reader *)1;
        T_EQ_INT(media_open(sample(audio_files[i]), MEDIA_NEED_VIDEO, &none, &err),
                 VX_EUNSUPPORTED);
        T_ASSERT(none == NULL);
        T_ASSERT(strstr(err.msg, audio_files[i]) && strstr(err.msg, "no video"));
        fprintf(stderr, "   error: %s\n", err.msg);
    }
    vx_err err = {0};
    media_reader *none = NULL;
    T_EQ_INT(media_open(sample("video_only.mp4"), MEDIA_NEED_AUDIO, &none, &err), VX_EUNSUPPORTED);
    T_ASSERT(strstr(err.msg, "video_only.mp4") && strstr(err.msg, "no audio"));
    media_close(NULL); /* NULL-safe */
}

/* ---- broken files ----------------------------------------------------------------------- */

static void expect_open_error(const char *path, vx_status expected)
{
    vx_err err = {0};
    media_reader *r = (media_reader *)1;
    vx_status st = media_open(path, MEDIA_NEED_VIDEO, &r, &err);
    fprintf(stderr, "   %s -> %s: %s\n", path, vx_strerror(st), err.msg);
    T_ASSERT(st != VX_OK);
    T_ASSERT(r == NULL);
    if (expected != VX_OK) T_EQ_INT(st, expected);
    T_ASSERT(err.msg[0] != '\0');
    T_ASSERT(strstr(err.msg, path) != NULL);
    T_ASSERT(strchr(err.msg, '\n') == NULL);
}

static void test_broken_files(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/broken/does-not-exist.mp4", samples_dir());
    expect_open_error(path, VX_ENOTFOUND);
    expect_open_error(sample("broken/empty.mp4"), VX_EFORMAT);
    expect_open_error(sample("broken/garbage.mp4"), VX_OK);
    expect_open_error(sample("broken/text.mkv"), VX_OK);
    expect_open_error(sample("broken/header_only.mp4"), VX_OK);
    expect_open_error(sample("broken/truncated_no_index.mp4"), VX_OK);
    expect_open_error(sample("broken"), VX_EINVAL);
    expect_open_error(sample("broken/unknown_codec.avi"), VX_EUNSUPPORTED);
    {
        vx_err err = {0};
        media_reader *r = NULL;
        T_EQ_INT(media_open(sample("broken/unknown_codec.avi"), MEDIA_NEED_VIDEO, &r, &err),
                 VX_EUNSUPPORTED);
        T_ASSERT(strstr(err.msg, "unknown video codec (tag QQQQ)"));
        /* without MEDIA_NEED_VIDEO it opens, without video */
        T_OK(media_open(sample("broken/unknown_codec.avi"), 0, &r, &err), &err);
        T_EQ_INT(media_get_info(r)->has_video, 0);
        media_close(r);
    }

    /* Damaged but openable: every call either works or fails with a message naming the file;
     * whatever decodes is returned, nothing crashes. */
    const char *damaged[] = {"broken/truncated_faststart.mp4", "broken/truncated.mkv",
                             "broken/truncated.ts", "broken/corrupt_middle.ts"};
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        const char *p = sample(damaged[i]);
        vx_err err = {0};
        media_reader *r = NULL;
        vx_status st = media_open(p, MEDIA_NEED_VIDEO, &r, &err);
        fprintf(stderr, "   %s -> open %s %s\n", damaged[i], vx_strerror(st), err.msg);
        if (st != VX_OK) {
            T_ASSERT(strstr(err.msg, p) != NULL);
            continue;
        }
        media_frames frames = {0};
        int64_t windows[][2] = {{0, 2000}, {1500, 2000}, {0, 400}, {1900, 60000}};
        for (int w = 0; w < 4; w++) {
            st = media_sample_window(r, windows[w][0], windows[w][1], 8, &frames, &err);
            if (st != VX_OK) {
                T_ASSERT(err.msg[0] && strstr(err.msg, p));
                fprintf(stderr, "     window %d: %s\n", w, err.msg);
            } else {
                T_EQ_INT(frames.count, 8);
            }
        }
        int64_t n = 0;
        st = media_count_frames(r, &n, &err);
        T_ASSERT(st == VX_OK);
        st = media_sample_frame_range(r, 0, n > 0 ? n : 1, 4, &frames, &err);
        if (st != VX_OK) T_ASSERT(strstr(err.msg, p));
        fprintf(stderr, "     %" PRId64 " packets, %" PRId64 " decode errors\n", n,
                media_decode_errors(r));
        media_frames_free(&frames);
        media_close(r);
    }
}

/* Garbage over the middle of an MP4's media data: damaged packets are skipped with a warning
 * (counted), the frames and audio around them still come, and the audio keeps its timeline. */
static void test_broken_corrupt_middle(void)
{
    media_reader *r = open_ok("broken/corrupt_middle.mp4", MEDIA_NEED_VIDEO | MEDIA_NEED_AUDIO);
    media_frames frames = {0};
    vx_err err = {0};
    T_OK(media_sample_window(r, 0, 2000, 8, &frames, &err), &err);
    T_EQ_INT(frames.count, 8);
    float *pcm = NULL;
    size_t n = 0;
    T_OK(media_read_audio_16k_mono(r, 0, 2000, &pcm, &n, &err), &err);
    fprintf(stderr, "   %" PRId64 " damaged packets skipped, %zu audio samples\n",
            media_decode_errors(r), n);
    T_ASSERT(media_decode_errors(r) > 0);
    T_ASSERT(n >= 31500 && n <= 32000); /* holes filled with silence, not dropped */
    free(pcm);
    media_frames_free(&frames);
    media_close(r);
}

/* ---- the middle rule on timestamps ------------------------------------------------------ */

/* Frame k of a grey_ clip has luma 20 + 4k (limited range) -> RGB (4 + 4k) * 255 / 219. */
static int frame_number_of(const media_frames *f, int t)
{
    const uint8_t *p = media_frames_at(f, t);
    int cx = f->width_px / 2, cy = f->height_px / 2;
    const uint8_t *px = p + ((size_t)cy * f->width_px + cx) * 3;
    int best = -1, best_diff = 1 << 30;
    for (int k = 0; k < 50; k++) {
        int expect = (int)lround((4.0 + 4.0 * k) * 255.0 / 219.0);
        int diff = abs(px[0] - expect) + abs(px[1] - expect) + abs(px[2] - expect);
        if (diff < best_diff) best_diff = diff, best = k;
    }
    if (best_diff > 9)
        T_FAIL("frame %d: pixel (%d,%d,%d) is no grey level of the test clip", t, px[0], px[1],
               px[2]);
    return best;
}

/* Reads truth/NAME.pts (seconds a line) minus truth/NAME.start into ms * 1000 (us). */
static int load_truth_us(const char *name, int64_t *pts_us, int max)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/truth/%s.start", samples_dir(), name);
    FILE *f = fopen(path, "r");
    if (!f) T_FAIL("cannot open %s", path);
    double start = 0;
    if (fscanf(f, "%lf", &start) != 1) T_FAIL("bad %s", path);
    fclose(f);
    snprintf(path, sizeof path, "%s/truth/%s.pts", samples_dir(), name);
    f = fopen(path, "r");
    if (!f) T_FAIL("cannot open %s", path);
    int n = 0;
    double s;
    while (n < max && fscanf(f, "%lf", &s) == 1)
        pts_us[n++] = llround((s - start) * 1e6);
    fclose(f);
    return n;
}

/* Expected frame: the last whose time <= start + (i + 0.5)(end - start)/T, in us (pts of the
 * clips are whole ms or 40 ms multiples, so us comparisons are exact except within 1 us). */
static int expected_frame(const int64_t *pts_us, int n, int64_t start_ms, int64_t end_ms, int T,
                          int i)
{
    /* target_us = (2T start + (2i+1)(end - start)) * 1000 / (2T) */
    int64_t num = (2 * (int64_t)T * start_ms + (int64_t)(2 * i + 1) * (end_ms - start_ms)) * 1000;
    int best = 0;
    for (int k = 0; k < n; k++)
        if (pts_us[k] * 2 * T <= num) best = k;
    return best;
}

typedef struct window {
    int64_t start_ms, end_ms;
    int frames;
} window;

static const window windows[] = {
    {0, 2000, 8},   {0, 2000, 16},   {500, 1500, 4},  {1230, 1370, 5}, /* denser than fps */
    {0, 80, 8},     {40, 120, 2},    {1960, 2000, 1}, {1900, 9000, 4}, /* past the end */
    {100, 300, 3},  {0, 2000, 50},   {600, 1000, 8},  {0, 1, 1},       /* backward seek */
    {960, 1040, 2}, {1800, 2000, 8},
};

static void check_windows(const char *name, const int64_t *pts_us, int n)
{
    media_reader *r = open_ok(name, MEDIA_NEED_VIDEO);
    media_frames frames = {0};
    vx_err err = {0};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        const window *win = &windows[w];
        T_OK(media_sample_window(r, win->start_ms, win->end_ms, win->frames, &frames, &err), &err);
        T_EQ_INT(frames.count, win->frames);
        for (int i = 0; i < win->frames; i++) {
            int want = expected_frame(pts_us, n, win->start_ms, win->end_ms, win->frames, i);
            int got = frame_number_of(&frames, i);
            if (got != want)
                T_FAIL("%s window [%" PRId64 ", %" PRId64 ") T=%d frame %d: got frame %d "
                       "(pts %" PRId64 " ms), expected %d (pts %.3f ms)",
                       name, win->start_ms, win->end_ms, win->frames, i, got, frames.pts_ms[i],
                       want, pts_us[want] / 1000.0);
            T_NEAR(frames.pts_ms[i], pts_us[want] / 1000.0, 1.0);
        }
    }
    media_frames_free(&frames);
    media_close(r);
}

static void test_sample_cfr(void)
{
    const char *files[] = {"grey_h264.mp4", "grey_h264.mov",       "grey_h264.ts",
                           "grey_vp9.mkv",  "grey_vp8.webm",       "grey_mpeg4.avi",
                           "grey_ffv1.mkv", "grey_h264_10bit.mkv", "ünïcödé 視頻.mp4"};
    int64_t pts_us[50];
    for (int k = 0; k < 50; k++)
        pts_us[k] = (int64_t)k * 40000;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        fprintf(stderr, "   %s\n", files[i]);
        check_windows(files[i], pts_us, 50);
    }
    /* ffprobe agrees with the 40 ms grid for the MP4 and the TS (whose start is 1.4 s). */
    int64_t truth[64];
    T_EQ_INT(load_truth_us("grey_h264.ts", truth, 64), 50);
    for (int k = 0; k < 50; k++)
        T_EQ_INT(truth[k], pts_us[k]);
}

/* 5 fps clips over 10 s: windows far apart (seeks forward and back, keyframes in between or
 * not) in one reader; frame k at 200k ms. */
static void test_sample_seek(void)
{
    const char *files[] = {"grey_5fps_h264.mp4", "grey_5fps_mpeg2.ts"};
    int64_t pts_us[50];
    for (int k = 0; k < 50; k++)
        pts_us[k] = (int64_t)k * 200000;
    static const window far[] = {
        {0, 1000, 4},   {8000, 10000, 4}, {2500, 2600, 1}, {2700, 7300, 3}, {9999, 10000, 1},
        {0, 10000, 16}, {4100, 4300, 2},  {6000, 9000, 2}, {1000, 1400, 8}, {3000, 10000, 2},
        {200, 9800, 7}, {7000, 7001, 1},  {0, 10000, 1},
    };
    for (int f = 0; f < 2; f++) {
        media_reader *r = open_ok(files[f], MEDIA_NEED_VIDEO);
        media_frames frames = {0};
        vx_err err = {0};
        for (int pass = 0; pass < 2; pass++) /* second pass: the reader is warm and elsewhere */
            for (size_t w = 0; w < sizeof far / sizeof far[0]; w++) {
                const window *win = &far[w];
                T_OK(media_sample_window(r, win->start_ms, win->end_ms, win->frames, &frames, &err),
                     &err);
                for (int i = 0; i < win->frames; i++) {
                    int want =
                        expected_frame(pts_us, 50, win->start_ms, win->end_ms, win->frames, i);
                    int got = frame_number_of(&frames, i);
                    if (got != want)
                        T_FAIL("%s window [%" PRId64 ", %" PRId64 ") T=%d frame %d: got %d, "
                               "expected %d",
                               files[f], win->start_ms, win->end_ms, win->frames, i, got, want);
                }
            }
        media_frames_free(&frames);
        media_close(r);
    }
}

static void test_sample_vfr(void)
{
    const char *files[] = {"grey_vfr.mkv", "grey_vfr.mp4"};
    for (int f = 0; f < 2; f++) {
        int64_t pts_us[64];
        int n = load_truth_us(files[f], pts_us, 64);
        T_EQ_INT(n, 50);
        int irregular = 0;
        for (int k = 2; k < n; k++)
            irregular |= (pts_us[k] - pts_us[k - 1]) != (pts_us[1] - pts_us[0]);
        T_ASSERT(irregular);
        fprintf(stderr, "   %s (last frame at %.3f s)\n", files[f], pts_us[n - 1] / 1e6);
        check_windows(files[f], pts_us, n);
    }
}

static void test_sample_errors(void)
{
    media_reader *r = open_ok("grey_h264.mp4", MEDIA_NEED_VIDEO);
    media_frames frames = {0};
    vx_err err = {0};
    T_EQ_INT(media_sample_window(r, 1000, 1000, 4, &frames, &err), VX_EINVAL);
    T_EQ_INT(media_sample_window(r, -5, 1000, 4, &frames, &err), VX_EINVAL);
    T_EQ_INT(media_sample_window(r, 0, 1000, 0, &frames, &err), VX_EINVAL);
    T_EQ_INT(media_sample_window(r, 0, 1000, 100000, &frames, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "grey_h264.mp4"));
    T_EQ_INT(media_sample_frame_range(r, 40, 20, 4, &frames, &err), VX_EINVAL);
    T_ASSERT(strstr(err.msg, "50 frames"));
    /* the reader still works after errors */
    T_OK(media_sample_window(r, 0, 1000, 2, &frames, &err), &err);
    T_EQ_INT(frame_number_of(&frames, 0), 6);
    media_frames_free(&frames);
    media_frames_free(&frames); /* twice is fine */
    media_close(r);
}

/* ---- the index rule --------------------------------------------------------------------- */

static void test_index_rule(void)
{
    /* Values from numpy (get_frame_indices, sample="middle"), see the test's history. */
    static const struct {
        int64_t vlen;
        int n;
        int64_t want[16];
    } cases[] = {
        {50, 8, {2, 8, 14, 21, 27, 33, 39, 46}},
        {300, 8, {18, 55, 93, 130, 168, 205, 243, 280}},
        {7, 8, {0, 1, 2, 3, 4, 5, 6, 6}},
        {1, 4, {0, 0, 0, 0}},
        {10, 3, {1, 4, 7}},
        {1000003,
         16,
         {31249, 93749, 156249, 218749, 281249, 343750, 406250, 468750, 531250, 593750, 656251,
          718751, 781251, 843751, 906251, 968752}},
        {49, 7, {3, 10, 17, 24, 31, 38, 45}},
        {4, 4, {0, 1, 2, 3}},
        {100, 1, {49}},
        {33, 6, {2, 7, 13, 18, 24, 29}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t got[16];
        media_middle_frame_indices(cases[c].vlen, cases[c].n, got);
        for (int i = 0; i < cases[c].n; i++)
            if (got[i] != cases[c].want[i])
                T_FAIL("vlen %" PRId64 ", n %d, index %d: got %" PRId64 ", expected %" PRId64,
                       cases[c].vlen, cases[c].n, i, got[i], cases[c].want[i]);
    }
}

static void test_index_sampler(void)
{
    const char *files[] = {"grey_h264.mp4", "grey_vfr.mp4",       "grey_h264.ts",
                           "grey_vp9.mkv",  "grey_5fps_mpeg2.ts", "grey_mpeg4.avi"};
    for (int f = 0; f < 6; f++) {
        media_reader *r = open_ok(files[f], MEDIA_NEED_VIDEO);
        vx_err err = {0};
        int64_t n = 0;
        T_OK(media_count_frames(r, &n, &err), &err);
        T_EQ_INT(n, 50);
        media_frames frames = {0};
        T_OK(media_sample_frame_range(r, 0, n, 8, &frames, &err), &err);
        static const int want[8] = {2, 8, 14, 21, 27, 33, 39, 46};
        for (int i = 0; i < 8; i++) {
            T_EQ_INT(frames.frame_index[i], want[i]);
            T_EQ_INT(frame_number_of(&frames, i), want[i]);
        }
        /* A sub-range, with repeats: 3 frames from [45, 48) picked 4 times. */
        T_OK(media_sample_frame_range(r, 45, 3, 4, &frames, &err), &err);
        static const int want2[4] = {45, 46, 47, 47};
        for (int i = 0; i < 4; i++)
            T_EQ_INT(frame_number_of(&frames, i), want2[i]);
        /* The timestamp sampler still works after the index sampler. */
        T_OK(media_sample_window(r, 0, 2000, 4, &frames, &err), &err);
        media_frames_free(&frames);
        media_close(r);
    }
}

/* ---- colour, depth, rotation, odd sizes, interlacing ------------------------------------ */

static void test_colour(void)
{
    static const struct {
        const char *file, *matrix;
        int full, depth;
    } cases[] = {
        {"solid_bt601_tv.mp4", "smpte170m", 0, 8},      {"solid_bt709_tv.mp4", "bt709", 0, 8},
        {"solid_bt709_pc.mp4", "bt709", 1, 8},          {"solid_bt709_10bit.mp4", "bt709", 0, 10},
        {"solid_bt2020_hevc10.mp4", "bt2020nc", 0, 10},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        media_reader *r = open_ok(cases[c].file, MEDIA_NEED_VIDEO);
        const media_video_info *v = &media_get_info(r)->video;
        T_EQ_STR(v->color_matrix, cases[c].matrix);
        T_EQ_INT(v->color_range_full, cases[c].full);
        T_EQ_INT(v->bit_depth, cases[c].depth);
        media_frames frames = {0};
        vx_err err = {0};
        T_OK(media_sample_window(r, 0, 1000, 2, &frames, &err), &err);
        const uint8_t *px = media_frames_at(&frames, 1) + ((size_t)24 * 64 + 32) * 3;
        fprintf(stderr, "   %-24s %s %s -> %d %d %d\n", cases[c].file, v->color_matrix, v->pix_fmt,
                px[0], px[1], px[2]);
        /* The clip is RGB (200, 120, 40) encoded with the named matrix: decoding with the
         * wrong matrix or range is off by 10 or more in some channel. */
        T_NEAR(px[0], 200, 3);
        T_NEAR(px[1], 120, 3);
        T_NEAR(px[2], 40, 3);
        media_frames_free(&frames);
        media_close(r);
    }
}

static void test_rotation(void)
{
    media_reader *r = open_ok("rotated90.mp4", MEDIA_NEED_VIDEO);
    const media_video_info *v = &media_get_info(r)->video;
    T_EQ_INT(v->rotation_deg, 90);
    T_EQ_INT(v->width_px, 64);
    T_EQ_INT(v->height_px, 48);
    T_EQ_INT(v->upright_width_px, 48);
    T_EQ_INT(v->upright_height_px, 64);
    media_frames frames = {0};
    vx_err err = {0};
    T_OK(media_sample_window(r, 0, 1000, 1, &frames, &err), &err);
    T_EQ_INT(frames.width_px, 48);
    T_EQ_INT(frames.height_px, 64);
    /* Stored: left half white. Turned 90° clockwise: top half white, bottom black. */
    const uint8_t *p = media_frames_at(&frames, 0);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 48; x++) {
            int g = p[((size_t)y * 48 + x) * 3 + 1];
            if (y < 30 && g < 230) T_FAIL("pixel (%d,%d) = %d, expected white", x, y, g);
            if (y >= 34 && g > 25) T_FAIL("pixel (%d,%d) = %d, expected black", x, y, g);
        }
    media_frames_free(&frames);
    media_close(r);
}

static void test_odd_and_interlaced(void)
{
    const char *files[] = {"odd_317x239.webm",     "interlaced.mp4",  "av_prores_pcm.mov",
                           "av_theora_vorbis.ogv", "av_mpeg2_mp2.ts", "subs.mkv"};
    for (int f = 0; f < 6; f++) {
        media_reader *r = open_ok(files[f], MEDIA_NEED_VIDEO);
        media_frames frames = {0};
        vx_err err = {0};
        T_OK(media_sample_window(r, 0, 1000, 4, &frames, &err), &err);
        T_EQ_INT(frames.width_px, media_get_info(r)->video.width_px);
        T_EQ_INT(frames.height_px, media_get_info(r)->video.height_px);
        /* testsrc has colour everywhere: the frame must not be blank */
        const uint8_t *p = media_frames_at(&frames, 3);
        long sum = 0;
        for (size_t i = 0; i < (size_t)frames.width_px * frames.height_px * 3; i++)
            sum += p[i];
        T_ASSERT(sum > 1000);
        media_preproc *pp = NULL;
        T_OK(media_preproc_create(224, 224, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp, &err),
             &err);
        float *x = malloc(media_preproc_tensor_floats(pp, 4) * sizeof(float));
        T_OK(media_preproc_frames(pp, &frames, x, &err), &err);
        free(x);
        media_preproc_free(pp);
        media_frames_free(&frames);
        media_close(r);
    }
}

/* ---- resize and normalise against torchvision ------------------------------------------- */

/* A tiny .npy reader (v1/v2, little-endian u1 or f4, C order). Returns the data (free()). */
static void *npy_read(const char *path, const char *descr, int64_t *shape, int *ndim)
{
    char *buf = NULL;
    size_t len = 0;
    vx_err err = {0};
    T_OK(vx_read_file(path, (size_t)64 << 20, &buf, &len, &err), &err);
    if (len < 12 || memcmp(buf, "\x93NUMPY", 6) != 0) T_FAIL("%s: not a .npy file", path);
    size_t header_len, header_at;
    if (buf[6] == 1) {
        header_len = (uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8;
        header_at = 10;
    } else {
        header_len = (uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8 |
                     (size_t)(uint8_t)buf[10] << 16 | (size_t)(uint8_t)buf[11] << 24;
        header_at = 12;
    }
    if (header_at + header_len > len) T_FAIL("%s: header past the end", path);
    char header[1024];
    snprintf(header, sizeof header, "%.*s", (int)header_len, buf + header_at);
    char want[64];
    snprintf(want, sizeof want, "'descr': '%s'", descr);
    if (!strstr(header, want)) T_FAIL("%s: expected %s in %s", path, descr, header);
    if (!strstr(header, "'fortran_order': False")) T_FAIL("%s: not C order", path);
    const char *s = strstr(header, "'shape': (");
    if (!s) T_FAIL("%s: no shape", path);
    s += 10;
    *ndim = 0;
    int64_t count = 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')') break;
        shape[(*ndim)++] = strtoll(s, (char **)&s, 10);
        count *= shape[*ndim - 1];
    }
    size_t elem = strcmp(descr, "|u1") == 0 ? 1 : 4;
    size_t bytes = (size_t)count * elem;
    if (header_at + header_len + bytes != len) T_FAIL("%s: size mismatch", path);
    void *data = malloc(bytes ? bytes : 1);
    memcpy(data, buf + header_at + header_len, bytes);
    free(buf);
    return data;
}

static const char *golden_dir(void)
{
    const char *d = getenv("VIDX_MEDIA_GOLDEN");
    if (!d || !*d) T_FAIL("VIDX_MEDIA_GOLDEN is not set (run through ctest)");
    return d;
}

static void test_resize_golden(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", golden_dir());
    FILE *mf = fopen(path, "r");
    if (!mf) T_FAIL("cannot open %s", path);
    media_preproc *pp = NULL;
    vx_err err = {0};
    T_OK(media_preproc_create(224, 224, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp, &err), &err);
    uint8_t *out = malloc(224 * 224 * 3);
    char name[256];
    int frames = 0;
    while (fscanf(mf, "%255s", name) == 1) {
        int64_t in_shape[4], out_shape[4];
        int in_ndim, out_ndim;
        snprintf(path, sizeof path, "%s/%s.in.npy", golden_dir(), name);
        uint8_t *in = npy_read(path, "|u1", in_shape, &in_ndim);
        snprintf(path, sizeof path, "%s/%s.out.npy", golden_dir(), name);
        uint8_t *want = npy_read(path, "|u1", out_shape, &out_ndim);
        T_EQ_INT(in_ndim, 3);
        T_EQ_INT(in_shape[2], 3);
        T_EQ_INT(out_shape[0], 224);
        T_EQ_INT(out_shape[1], 224);
        int w = (int)in_shape[1], h = (int)in_shape[0];
        T_OK(media_resize_rgb24(pp, in, w, h, (size_t)w * 3, out, &err), &err);
        int max_diff = 0, differ = 0;
        for (size_t i = 0; i < 224 * 224 * 3; i++) {
            int d = abs(out[i] - want[i]);
            if (d > max_diff) max_diff = d;
            differ += d != 0;
        }
        fprintf(stderr, "   %s (%dx%d): %d of %d values differ, max %d\n", name, w, h, differ,
                224 * 224 * 3, max_diff);
        T_ASSERT(max_diff <= 1);
        T_EQ_INT(differ, 0); /* we aim for exact, and are */
        free(in);
        free(want);
        frames++;
    }
    fclose(mf);
    T_ASSERT(frames >= 3);

    /* Normalisation: every level against torchvision's Normalize(x.float().div(255)). */
    int64_t shape[4];
    int ndim;
    snprintf(path, sizeof path, "%s/normalize_lut.npy", golden_dir());
    float *lut = npy_read(path, "<f4", shape, &ndim);
    T_EQ_INT(shape[0], 3);
    T_EQ_INT(shape[1], 256);
    uint8_t levels[256 * 3];
    for (int i = 0; i < 256; i++)
        levels[i * 3] = levels[i * 3 + 1] = levels[i * 3 + 2] = (uint8_t)i;
    float x[3 * 256];
    media_normalize_rgb24(levels, 256, 1, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, 1, 0, x);
    float worst = 0;
    for (int i = 0; i < 3 * 256; i++)
        worst = fmaxf(worst, fabsf(x[i] - lut[i]));
    fprintf(stderr, "   normalisation: max |diff| %g\n", (double)worst);
    T_ASSERT(worst <= 1e-6f);
    free(lut);
    free(out);
    media_preproc_free(pp);
}

/* The preprocessing golden set of tests/reference/ (another reference, made independently):
 * resized exactly, normalised within 1e-6. Skipped when the set is absent. */
static void test_resize_reference(void)
{
    const char *dir = getenv("VIDX_REFERENCE_PREPROCESS");
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir ? dir : "");
    char *text = NULL;
    size_t len = 0;
    vx_err err = {0};
    if (!dir || vx_read_file(path, 1 << 20, &text, &len, &err) != VX_OK) {
        fprintf(stderr, "   skipped: no %s\n", path);
        return;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) T_FAIL("%s: not JSON", path);
    const cJSON *mean_j = cJSON_GetObjectItem(root, "mean"),
                *std_j = cJSON_GetObjectItem(root, "std");
    T_ASSERT(cJSON_GetArraySize(mean_j) == 3 && cJSON_GetArraySize(std_j) == 3);
    float mean[3], std[3];
    for (int c = 0; c < 3; c++) {
        mean[c] = (float)cJSON_GetArrayItem(mean_j, c)->valuedouble;
        std[c] = (float)cJSON_GetArrayItem(std_j, c)->valuedouble;
    }
    int size = cJSON_GetObjectItem(root, "size")->valueint;
    media_preproc *pp = NULL;
    T_OK(media_preproc_create(size, size, mean, std, &pp, &err), &err);
    uint8_t *out = malloc((size_t)size * size * 3);
    float *norm = malloc((size_t)size * size * 3 * sizeof(float));
    int cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int64_t shape[4];
        int ndim;
        snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetObjectItem(c, "input")->valuestring);
        uint8_t *in = npy_read(path, "|u1", shape, &ndim);
        int h = (int)shape[0], w = (int)shape[1];
        snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetObjectItem(c, "resized")->valuestring);
        uint8_t *want = npy_read(path, "|u1", shape, &ndim);
        T_OK(media_resize_rgb24(pp, in, w, h, (size_t)w * 3, out, &err), &err);
        int differ = 0, max_diff = 0;
        for (size_t i = 0; i < (size_t)size * size * 3; i++) {
            int d = abs(out[i] - want[i]);
            differ += d != 0;
            if (d > max_diff) max_diff = d;
        }
        fprintf(stderr, "   %s (%dx%d): %d values differ (max %d); the fixture allows %d\n", name,
                w, h, differ, max_diff, cJSON_GetObjectItem(c, "near_half")->valueint);
        T_ASSERT(max_diff <= 1);
        T_EQ_INT(differ, 0);
        const cJSON *nj = cJSON_GetObjectItem(c, "normalized");
        if (nj) {
            snprintf(path, sizeof path, "%s/%s", dir, nj->valuestring);
            float *nwant = npy_read(path, "<f4", shape, &ndim);
            T_EQ_INT(shape[0], 3);
            media_normalize_rgb24(out, size, size, mean, std, 1, 0, norm);
            float worst = 0;
            for (size_t i = 0; i < (size_t)size * size * 3; i++)
                worst = fmaxf(worst, fabsf(norm[i] - nwant[i]));
            fprintf(stderr, "     normalised: max |diff| %g\n", (double)worst);
            T_ASSERT(worst <= 1e-6f);
            free(nwant);
        }
        free(in);
        free(want);
        cases++;
    }
    T_ASSERT(cases > 0);
    free(out);
    free(norm);
    cJSON_Delete(root);
    media_preproc_free(pp);
}

static void test_preproc_layout(void)
{
    /* Two 4x2 frames, identity resize: out[c][t][y][x] must be frame t's channel c. */
    media_preproc *pp = NULL;
    vx_err err = {0};
    const float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    T_OK(media_preproc_create(4, 2, mean, std, &pp, &err), &err);
    T_EQ_INT(media_preproc_tensor_floats(pp, 2), 3 * 2 * 2 * 4);
    media_frames f = {0};
    f.count = 2, f.width_px = 4, f.height_px = 2;
    uint8_t rgb[2 * 2 * 4 * 3];
    for (int i = 0; i < (int)sizeof rgb; i++)
        rgb[i] = (uint8_t)(i * 5);
    f.rgb = rgb;
    float out[48];
    T_OK(media_preproc_frames(pp, &f, out, &err), &err);
    for (int c = 0; c < 3; c++)
        for (int t = 0; t < 2; t++)
            for (int p = 0; p < 8; p++)
                T_NEAR(out[(c * 2 + t) * 8 + p], rgb[(t * 8 + p) * 3 + c] / 255.0f, 1e-7);
    /* bad arguments */
    media_preproc *bad = (media_preproc *)1;
    T_EQ_INT(media_preproc_create(0, 224, mean, std, &bad, &err), VX_EINVAL);
    T_ASSERT(bad == NULL);
    const float zero_std[3] = {1, 0, 1};
    T_EQ_INT(media_preproc_create(224, 224, mean, zero_std, &bad, &err), VX_EINVAL);
    T_ASSERT(bad == NULL);
    media_preproc_free(pp);
    media_preproc_free(NULL);
}

/* ---- audio ------------------------------------------------------------------------------ */

static void test_audio(void)
{
    const char *files[] = {"av_h264_aac.mp4", "audio_only.m4a", "audio_only.wav",
                           "av_mpeg2_mp2.ts", "subs.mkv",       "av_prores_pcm.mov"};
    for (int f = 0; f < 6; f++) {
        media_reader *r = open_ok(files[f], MEDIA_NEED_AUDIO);
        vx_err err = {0};
        float *pcm = NULL;
        size_t n = 0;
        T_OK(media_read_audio_16k_mono(r, 250, 750, &pcm, &n, &err), &err);
        /* 0.5 s of a 440 Hz sine: 8000 samples, amplitude ~1/8 (lavfi's sine), 440 zero
         * crossings a second. */
        double energy = 0;
        int crossings = 0;
        for (size_t i = 0; i < n; i++) {
            energy += (double)pcm[i] * pcm[i];
            if (i && (pcm[i - 1] < 0) != (pcm[i] < 0)) crossings++;
        }
        double rms = n ? sqrt(energy / (double)n) : 0;
        fprintf(stderr, "   %-22s %zu samples, rms %.4f, %d zero crossings\n", files[f], n, rms,
                crossings);
        T_ASSERT(n >= 7900 && n <= 8000);
        T_ASSERT(rms > 0.05 && rms < 0.2);
        T_ASSERT(crossings >= 430 && crossings <= 450);
        free(pcm);
        /* whole file; the video sampler still works afterwards */
        T_OK(media_read_audio_16k_mono(r, 0, 0, &pcm, &n, &err), &err);
        T_ASSERT(n >= 15000 && n <= 33000);
        free(pcm);
        if (media_get_info(r)->has_video) {
            media_frames frames = {0};
            T_OK(media_sample_window(r, 0, 1000, 2, &frames, &err), &err);
            media_frames_free(&frames);
        }
        media_close(r);
    }
    media_reader *r = open_ok("grey_h264.mp4", MEDIA_NEED_VIDEO);
    vx_err err = {0};
    float *pcm = (float *)1;
    size_t n = 7;
    T_EQ_INT(media_read_audio_16k_mono(r, 0, 1000, &pcm, &n, &err), VX_EUNSUPPORTED);
    T_ASSERT(pcm == NULL && n == 0 && strstr(err.msg, "grey_h264.mp4"));
    media_close(r);
}

/* ---- subtitles -------------------------------------------------------------------------- */

static void test_subtitles(void)
{
    const char *files[] = {"subs.mkv", "subs.srt"};
    for (int f = 0; f < 2; f++) {
        media_reader *r = open_ok(files[f], 0);
        T_EQ_INT(media_get_info(r)->subtitle_count, 1);
        media_subtitle_cues cues = {0};
        vx_err err = {0};
        T_OK(media_read_subtitles(r, 0, &cues, &err), &err);
        T_EQ_INT(cues.count, 2);
        fprintf(stderr,
                "   %s: [%" PRId64 ", %" PRId64 ") \"%s\", [%" PRId64 ", %" PRId64 ") \"%s\"\n",
                files[f], cues.cues[0].start_ms, cues.cues[0].end_ms, cues.cues[0].text,
                cues.cues[1].start_ms, cues.cues[1].end_ms, cues.cues[1].text);
        /* The Matroska muxer shifts every stream by Opus's 7 ms pre-skip. */
        T_NEAR(cues.cues[0].start_ms, 0, 10);
        T_EQ_INT(cues.cues[0].end_ms - cues.cues[0].start_ms, 1000);
        T_EQ_STR(cues.cues[0].text, "hello vidx");
        T_NEAR(cues.cues[1].start_ms, 1000, 10);
        T_EQ_INT(cues.cues[1].end_ms - cues.cues[1].start_ms, 1000);
        T_EQ_STR(cues.cues[1].text, "second line\nand a third");
        T_EQ_INT(media_read_subtitles(r, 1, &cues, &err), VX_ENOTFOUND);
        T_EQ_INT(cues.count, 0);
        if (media_get_info(r)->has_video) { /* the video sampler still works afterwards */
            media_frames frames = {0};
            T_OK(media_sample_window(r, 0, 2000, 2, &frames, &err), &err);
            media_frames_free(&frames);
        }
        media_subtitle_cues_free(&cues);
        media_subtitle_cues_free(NULL);
        media_close(r);
    }
}

/* ---- threads ---------------------------------------------------------------------------- */

/* Readers on different threads at once (each reader on one thread), as the indexer runs them. */
static void *sample_on_thread(void *arg)
{
    const char *name = arg;
    media_reader *r = open_ok(name, MEDIA_NEED_VIDEO);
    media_frames frames = {0};
    vx_err err = {0};
    for (int round = 0; round < 5; round++) {
        T_OK(media_sample_window(r, 0, 2000, 8, &frames, &err), &err);
        static const int want[8] = {3, 9, 15, 21, 28, 34, 40, 46}; /* 250 ms steps at 25 fps */
        for (int i = 0; i < 8; i++)
            T_EQ_INT(frame_number_of(&frames, i), want[i]);
    }
    media_frames_free(&frames);
    media_close(r);
    return NULL;
}

static void test_threads(void)
{
    const char *files[] = {"grey_h264.mp4", "grey_vp9.mkv", "grey_h264.ts", "grey_mpeg4.avi"};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        T_ASSERT(pthread_create(&threads[i], NULL, sample_on_thread, (void *)files[i]) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
}

/* ---- memory input ----------------------------------------------------------------------- */

static void test_memory_reader(void)
{
    char *data = NULL;
    size_t len = 0;
    vx_err err = {0};
    T_OK(vx_read_file(sample("grey_vfr.mp4"), 1 << 24, &data, &len, &err), &err);
    media_reader *r = NULL;
    T_OK(media_open_memory(data, len, "upload.mp4", MEDIA_NEED_VIDEO, &r, &err), &err);
    int64_t pts_us[64];
    int n = load_truth_us("grey_vfr.mp4", pts_us, 64);
    media_frames frames = {0};
    T_OK(media_sample_window(r, 0, 2000, 8, &frames, &err), &err);
    for (int i = 0; i < 8; i++)
        T_EQ_INT(frame_number_of(&frames, i), expected_frame(pts_us, n, 0, 2000, 8, i));
    media_frames_free(&frames);
    media_close(r);
    T_EQ_INT(media_open_memory(data, 100, "cut.mp4", MEDIA_NEED_VIDEO, &r, &err) != VX_OK, 1);
    T_ASSERT(strstr(err.msg, "cut.mp4"));
    T_EQ_INT(media_open_memory(data, 0, "zero.mp4", 0, &r, &err), VX_EFORMAT);
    free(data);
}

/* ---- shot cuts ----------------------------------------------------------------------------
 * The clip (make_shot_clip.sh): cuts at 2.60, 6.20, 10.44 and 14.00 s (25 fps); a 2-frame white
 * flash at 4.00 s and a fade to black and back at 11.44-12.64 s that are not cuts. */

static const int64_t shot_truth_ms[] = {2600, 6200, 10440, 14000};
#define SHOT_FRAME_MS 40

/* The clip, or with ten_bit its 10-bit twin (thumbnails through swscale, not the 8-bit path). */
static media_reader *open_shot_clip_variant(int ten_bit)
{
    const char *path = getenv("VIDX_SHOT_CLIP");
    if (!path || !*path) T_FAIL("VIDX_SHOT_CLIP is not set (run through ctest)");
    char name[4096];
    size_t len = strlen(path);
    T_ASSERT(len > 4 && len < sizeof name - 16);
    if (ten_bit)
        snprintf(name, sizeof name, "%.*s_10bit.mp4", (int)(len - 4), path);
    else
        snprintf(name, sizeof name, "%s", path);
    vx_err err = {0};
    media_reader *r = NULL;
    T_OK(media_open(name, MEDIA_NEED_VIDEO, &r, &err), &err);
    T_EQ_INT(media_get_info(r)->video.bit_depth, ten_bit ? 10 : 8);
    return r;
}

static media_reader *open_shot_clip(void)
{
    return open_shot_clip_variant(0);
}

/* Each expected cut found within tolerance_ms, and nothing else. */
static void expect_cuts(const int64_t *cuts, size_t n, int64_t tolerance_ms)
{
    size_t want = sizeof shot_truth_ms / sizeof *shot_truth_ms;
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  cut at %lld ms\n", (long long)cuts[i]);
    T_EQ_INT(n, want);
    for (size_t i = 0; i < want; i++)
        if (llabs(cuts[i] - shot_truth_ms[i]) > tolerance_ms)
            T_FAIL("cut %zu at %lld ms, expected %lld +- %lld", i, (long long)cuts[i],
                   (long long)shot_truth_ms[i], (long long)tolerance_ms);
}

static size_t cuts_between(const int64_t *cuts, size_t n, int64_t from_ms, int64_t to_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += cuts[i] >= from_ms && cuts[i] <= to_ms;
    return k;
}

static void test_shots_detect(void)
{
    for (int ten_bit = 0; ten_bit < 2; ten_bit++) {
        media_reader *r = open_shot_clip_variant(ten_bit);
        vx_err err = {0};
        int64_t *cuts = NULL;
        size_t n = 0;
        media_shot_stats stats;
        T_OK(media_detect_shots(r, NULL, &cuts, &n, &stats, &err), &err);
        expect_cuts(cuts, n, SHOT_FRAME_MS);
        T_EQ_INT(stats.frames, 425);
        T_ASSERT(stats.seconds > 0);
        /* Deterministic: the same cuts again, on the same reader. */
        int64_t *again = NULL;
        size_t n2 = 0;
        T_OK(media_detect_shots(r, NULL, &again, &n2, NULL, &err), &err);
        T_EQ_INT(n2, n);
        for (size_t i = 0; i < n; i++)
            T_EQ_INT(again[i], cuts[i]);
        /* The reader samples as before afterwards (frames 25..64 of testsrc, then the bars). */
        media_frames frames = {0};
        T_OK(media_sample_window(r, 1000, 5000, 8, &frames, &err), &err);
        T_EQ_INT(frames.count, 8);
        for (int i = 0; i < 8; i++)
            T_EQ_INT(frames.pts_ms[i], (1000 + (2 * i + 1) * 250) / SHOT_FRAME_MS * SHOT_FRAME_MS);
        media_frames_free(&frames);
        free(cuts);
        free(again);
        media_close(r);
    }
}

/* The flash and the fade are really there: the rules that reject them are what keeps them out. */
static void test_shots_rules(void)
{
    media_reader *r = open_shot_clip();
    vx_err err = {0};
    int64_t *cuts = NULL;
    size_t n = 0;
    media_shot_options o = media_shot_options_default();
    o.flash_frames = 0; /* no flash check: the flash's onset counts as a cut */
    T_OK(media_detect_shots(r, &o, &cuts, &n, NULL, &err), &err);
    T_EQ_INT(cuts_between(cuts, n, 4000 - SHOT_FRAME_MS, 4080 + SHOT_FRAME_MS), 1);
    free(cuts);
    /* A bare threshold on consecutive differences, no neighbourhood: the fade is cut. */
    o = media_shot_options_default();
    o.neighbourhood_frames = 1;
    o.outlier_ratio = 1.0;
    o.min_difference = 0.01;
    o.min_shot_ms = 0;
    o.flash_frames = 0;
    T_OK(media_detect_shots(r, &o, &cuts, &n, NULL, &err), &err);
    T_ASSERT(cuts_between(cuts, n, 11440, 12640) > 0);
    free(cuts);
    /* The minimum shot length: at 5 s only the first of two cuts 3.6 s apart stays unless the
     * later one is stronger; either way no two cuts are closer than 5 s. */
    o = media_shot_options_default();
    o.min_shot_ms = 5000;
    T_OK(media_detect_shots(r, &o, &cuts, &n, NULL, &err), &err);
    T_ASSERT(n >= 1 && n < 4);
    for (size_t i = 1; i < n; i++)
        T_ASSERT(cuts[i] - cuts[i - 1] >= 5000);
    free(cuts);
    /* Reference frames only: fewer frames decoded, each cut found at most 3 frames late. */
    o = media_shot_options_default();
    o.reference_frames_only = 1;
    media_shot_stats stats;
    T_OK(media_detect_shots(r, &o, &cuts, &n, &stats, &err), &err);
    T_ASSERT(stats.frames < 425);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  reference frames only: cut at %lld ms\n", (long long)cuts[i]);
    T_EQ_INT(n, 4);
    for (size_t i = 0; i < n; i++)
        T_ASSERT(cuts[i] >= shot_truth_ms[i] && cuts[i] <= shot_truth_ms[i] + 3 * SHOT_FRAME_MS);
    free(cuts);
    media_close(r);
}

/* 150 shots of 1.2 s (4500 frames: the detector's ring wraps around 70 times, its cut list
 * grows past its first allocation): every cut found, to the frame, nothing else. */
static void test_shots_long(void)
{
    const char *path = getenv("VIDX_SHOT_CLIP");
    if (!path || !*path) T_FAIL("VIDX_SHOT_CLIP is not set (run through ctest)");
    char name[4096];
    size_t len = strlen(path);
    T_ASSERT(len > 4 && len < sizeof name - 16);
    snprintf(name, sizeof name, "%.*s_long.mkv", (int)(len - 4), path);
    vx_err err = {0};
    media_reader *r = NULL;
    T_OK(media_open(name, MEDIA_NEED_VIDEO, &r, &err), &err);
    int64_t *cuts = NULL;
    size_t n = 0;
    media_shot_stats stats;
    T_OK(media_detect_shots(r, NULL, &cuts, &n, &stats, &err), &err);
    T_EQ_INT(stats.frames, 4500);
    T_EQ_INT(n, 149);
    for (size_t i = 0; i < n; i++)
        if (llabs(cuts[i] - (int64_t)(i + 1) * 1200) > SHOT_FRAME_MS)
            T_FAIL("cut %zu at %lld ms, expected %lld", i, (long long)cuts[i],
                   (long long)(i + 1) * 1200);
    free(cuts);
    media_close(r);
}

static void test_shots_errors(void)
{
    media_reader *r = open_shot_clip();
    vx_err err = {0};
    int64_t *cuts = (int64_t *)&err; /* must be reset to NULL on failure */
    size_t n = 7;
    media_shot_options o = media_shot_options_default();
    o.neighbourhood_frames = 0;
    T_EQ_INT(media_detect_shots(r, &o, &cuts, &n, NULL, &err), VX_EINVAL);
    T_ASSERT(cuts == NULL && n == 0);
    o = media_shot_options_default();
    o.flash_frames = 25;
    T_EQ_INT(media_detect_shots(r, &o, &cuts, &n, NULL, &err), VX_EINVAL);
    o = media_shot_options_default();
    o.min_difference = NAN;
    T_EQ_INT(media_detect_shots(r, &o, &cuts, &n, NULL, &err), VX_EINVAL);
    T_EQ_INT(media_detect_shots(r, NULL, NULL, &n, NULL, &err), VX_EINVAL);
    media_close(r);
    /* No video: refused, naming the file. */
    T_OK(media_open(sample("audio_only.m4a"), 0, &r, &err), &err);
    T_ASSERT(media_detect_shots(r, NULL, &cuts, &n, NULL, &err) != VX_OK);
    T_ASSERT(strstr(err.msg, "audio_only.m4a"));
    media_close(r);
    /* A single static shot, a variable frame rate and a damaged file: no cuts, no crash. */
    const char *files[] = {"solid_bt709_tv.mp4", "grey_vfr.mkv", "broken/truncated.mkv"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (media_open(sample(files[i]), MEDIA_NEED_VIDEO, &r, &err) != VX_OK) {
            T_ASSERT(i == 2); /* only the damaged file may be refused */
            continue;
        }
        vx_status st = media_detect_shots(r, NULL, &cuts, &n, NULL, &err);
        if (st == VX_OK) {
            if (i == 0) T_EQ_INT(n, 0);
            free(cuts);
        }
        media_close(r);
    }
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"probe_formats", test_probe_formats},
        {"probe_streams", test_probe_streams},
        {"broken_files", test_broken_files},
        {"broken_corrupt_middle", test_broken_corrupt_middle},
        {"sample_cfr", test_sample_cfr},
        {"sample_vfr", test_sample_vfr},
        {"sample_seek", test_sample_seek},
        {"sample_errors", test_sample_errors},
        {"index_rule", test_index_rule},
        {"index_sampler", test_index_sampler},
        {"colour", test_colour},
        {"rotation", test_rotation},
        {"odd_and_interlaced", test_odd_and_interlaced},
        {"resize_golden", test_resize_golden},
        {"resize_reference", test_resize_reference},
        {"resize_layout", test_preproc_layout},
        {"audio", test_audio},
        {"memory_reader", test_memory_reader},
        {"subtitles", test_subtitles},
        {"threads", test_threads},
        {"shots_detect", test_shots_detect},
        {"shots_rules", test_shots_rules},
        {"shots_long", test_shots_long},
        {"shots_errors", test_shots_errors},
    };
    return T_RUN(argc, argv, cases);
}
