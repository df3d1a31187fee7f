/* Tests for browser playback (media_play_*): the decision for each sample, then the produced
 * file re-opened with media_open and checked against its source (container and codecs as
 * promised, duration, frame count, the same-time frames close in RGB, audio present and in
 * sync, rotation kept, 8-bit even-sized output), the cache (LRU eviction under a tiny limit,
 * too-large entries, remembered failures, a stop), broken sources leaving no file, two
 * threads asking for one file, and (with VIDX_CHROMIUM) headless Chromium loading the results.
 *
 * Needs VIDX_MEDIA_SAMPLES (scripts/make_sample_media.sh); makes a few more clips with the
 * FFmpeg CLI into a temporary folder. */
#include "media.h"
#include "testlib.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static char *sample(const char *name)
{
    static char paths[8][4096];
    static int next;
    const char *d = getenv("VIDX_MEDIA_SAMPLES");
    if (!d || !*d) T_FAIL("VIDX_MEDIA_SAMPLES is not set (run through ctest)");
    char *p = paths[next++ % 8];
    snprintf(p, 4096, "%s/%s", d, name);
    return p;
}

/* Runs the FFmpeg CLI (an independent tool) to make a test clip. */
static char *make_clip(const char *dir, const char *name, const char *args)
{
    char *path = malloc(4096);
    char cmd[8192];
    snprintf(path, 4096, "%s/%s", dir, name);
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -hide_banner -loglevel error -y %s '%s'", args,
             path);
    if (system(cmd) != 0) T_FAIL("ffmpeg failed: %s", cmd);
    return path;
}

static media_play_plan plan_of(const char *path)
{
    vx_err err = {0};
    media_reader *r = NULL;
    T_OK(media_open(path, 0, &r, &err), &err);
    media_play_plan plan;
    T_OK(media_play_plan_for(media_get_info(r), path, &plan, &err), &err);
    media_close(r);
    return plan;
}

/* Number of files in dir (hidden ones too), for "nothing was left behind". */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    T_ASSERT(d != NULL);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- decision --------------------------------------------------------------------------- */

typedef struct decision_case {
    const char *file;
    media_play_action action;
    media_play_container container;
    int copy_video, copy_audio;
    const char *mime;
} decision_case;

static void test_decision(void)
{
    static const decision_case cases[] = {
        {"grey_h264.mp4", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 1, 0, "video/mp4"},
        {"av_h264_aac.mp4", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 1, 1, "video/mp4"},
        {"rotated90.mp4", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 1, 0, "video/mp4"},
        {"grey_vp8.webm", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 1, 0, "video/webm"},
        {"odd_317x239.webm", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 1, 0, "video/webm"},
        {"audio_only.m4a", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 0, 1, "audio/mp4"},
        {"audio_only.wav", MEDIA_PLAY_AS_IS, MEDIA_PLAY_SOURCE, 0, 1, "audio/wav"},
        /* container only: MPEG-TS and Matroska */
        {"grey_h264.ts", MEDIA_PLAY_REMUX, MEDIA_PLAY_MP4, 1, 0, "video/mp4"},
        {"grey_h264_10bit.mkv", MEDIA_PLAY_REMUX, MEDIA_PLAY_MP4, 1, 0, "video/mp4"},
        {"grey_vp9.mkv", MEDIA_PLAY_REMUX, MEDIA_PLAY_WEBM, 1, 0, "video/webm"},
        /* codecs Chromium lacks */
        {"grey_mpeg4.avi", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
        {"grey_ffv1.mkv", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
        {"solid_bt2020_hevc10.mp4", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
        {"av_mpeg2_mp2.ts", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
        {"av_prores_pcm.mov", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
        {"av_theora_vorbis.ogv", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
        /* VP9 coded as RGB (gbrp, profile 1) is not in our playable list: Opus goes too */
        {"subs.mkv", MEDIA_PLAY_TRANSCODE, MEDIA_PLAY_MP4, 0, 0, "video/mp4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const decision_case *c = &cases[i];
        media_play_plan p = plan_of(sample(c->file));
        printf("  %-26s action %d container %d copy v%d a%d %s (%s)\n", c->file, p.action,
               p.container, p.copy_video, p.copy_audio, p.mime, p.reason);
        T_EQ_INT(p.action, c->action);
        T_EQ_INT(p.container, c->container);
        if (p.video_stream >= 0) T_EQ_INT(p.copy_video, c->copy_video);
        if (p.audio_stream >= 0) T_EQ_INT(p.copy_audio, c->copy_audio);
        T_EQ_STR(p.mime, c->mime);
        if (p.action == MEDIA_PLAY_TRANSCODE && !p.copy_video)
            T_EQ_STR(p.video_encoder, "libx264"); /* Debian's FFmpeg has it */
        if (p.action == MEDIA_PLAY_TRANSCODE && p.audio_stream >= 0 && !p.copy_audio)
            T_EQ_STR(p.audio_encoder, "aac");
    }
    /* H.264 + AAC in MPEG-TS: a remux keeping both streams. */
    char *dir = t_tempdir("play_decision");
    char *ts = make_clip(dir, "h264_aac.ts",
                         "-f lavfi -i testsrc=s=96x64:r=25:d=1 -f lavfi -i "
                         "sine=frequency=440:sample_rate=44100:duration=1 -c:v libx264 "
                         "-pix_fmt yuv420p -c:a aac -shortest");
    media_play_plan p = plan_of(ts);
    T_EQ_INT(p.action, MEDIA_PLAY_REMUX);
    T_EQ_INT(p.copy_video, 1);
    T_EQ_INT(p.copy_audio, 1);
    T_EQ_STR(p.ext, "mp4");
    /* 4:4:4 H.264 does not play in Chromium: transcode the video, copy the audio. */
    char *yuv444 = make_clip(dir, "h264_444.mp4",
                             "-f lavfi -i testsrc=s=96x64:r=25:d=1 -f lavfi -i "
                             "sine=frequency=440:sample_rate=44100:duration=1 -c:v libx264 "
                             "-pix_fmt yuv444p -c:a aac -shortest");
    p = plan_of(yuv444);
    T_EQ_INT(p.action, MEDIA_PLAY_TRANSCODE);
    T_EQ_INT(p.copy_video, 0);
    T_EQ_INT(p.copy_audio, 1);
    /* No streams at all: a clear refusal. */
    media_info empty;
    memset(&empty, 0, sizeof empty);
    snprintf(empty.container, sizeof empty.container, "mp4");
    vx_err err = {0};
    T_EQ_INT(media_play_plan_for(&empty, "x.mp4", &p, &err), VX_EUNSUPPORTED);
    T_ASSERT(strstr(err.msg, "x.mp4") != NULL);
    t_rmtree(dir);
    free(dir);
    free(ts);
    free(yuv444);
}

/* ---- produce and verify ----------------------------------------------------------------- */

/* Mean absolute RGB difference between the frames shown at t_ms in a and b, sampling b at
 * a's pixel positions scaled to b's size (outputs may be one pixel larger). */
static double frame_mad_at(const char *a_path, int64_t a_ms, const char *b_path, int64_t b_ms)
{
    vx_err err = {0};
    media_reader *ra = NULL, *rb = NULL;
    T_OK(media_open(a_path, MEDIA_NEED_VIDEO, &ra, &err), &err);
    T_OK(media_open(b_path, MEDIA_NEED_VIDEO, &rb, &err), &err);
    media_frames fa = {0}, fb = {0};
    T_OK(media_sample_window(ra, a_ms, a_ms + 1, 1, &fa, &err), &err);
    T_OK(media_sample_window(rb, b_ms, b_ms + 1, 1, &fb, &err), &err);
    const uint8_t *pa = media_frames_at(&fa, 0), *pb = media_frames_at(&fb, 0);
    double sum = 0;
    for (int y = 0; y < fa.height_px; y++)
        for (int x = 0; x < fa.width_px; x++) {
            int by = (int)((y + 0.5) * fb.height_px / fa.height_px);
            int bx = (int)((x + 0.5) * fb.width_px / fa.width_px);
            for (int c = 0; c < 3; c++)
                sum += abs(pa[((size_t)y * fa.width_px + x) * 3 + c] -
                           pb[((size_t)by * fb.width_px + bx) * 3 + c]);
        }
    double mad = sum / ((double)fa.width_px * fa.height_px * 3);
    media_frames_free(&fa);
    media_frames_free(&fb);
    media_close(ra);
    media_close(rb);
    return mad;
}

static double frame_mad(const char *a_path, const char *b_path, int64_t t_ms)
{
    return frame_mad_at(a_path, t_ms, b_path, t_ms);
}

/* Time (ms) of the first 16 kHz sample louder than 0.1, or -1. */
static int64_t audio_onset_ms(const char *path)
{
    vx_err err = {0};
    media_reader *r = NULL;
    T_OK(media_open(path, MEDIA_NEED_AUDIO, &r, &err), &err);
    float *pcm = NULL;
    size_t n = 0;
    T_OK(media_read_audio_16k_mono(r, 0, 0, &pcm, &n, &err), &err);
    int64_t onset = -1;
    for (size_t i = 0; i < n && onset < 0; i++)
        if (fabsf(pcm[i]) > 0.1f) onset = (int64_t)(i / 16);
    free(pcm);
    media_close(r);
    return onset;
}

typedef struct produce_case {
    const char *file;
    int force_transcode; /* 0: as planned, 1: forced transcode, 2: forced into WebM */
    double mad_max;      /* bound on the mean abs RGB difference of same-time frames */
} produce_case;

/* Produces src's playable version into dir and checks it against src. */
static void produce_and_check(const char *src, const char *dir, int force_transcode, double mad_max)
{
    vx_err err = {0};
    media_play_plan plan = plan_of(src);
    if (force_transcode)
        media_play_plan_force_transcode(&plan,
                                        force_transcode == 2 ? MEDIA_PLAY_WEBM : MEDIA_PLAY_SOURCE);
    T_ASSERT(plan.action != MEDIA_PLAY_AS_IS);
    char dst[4096];
    const char *base = strrchr(src, '/');
    snprintf(dst, sizeof dst, "%s/%s.%d.%s", dir, base ? base + 1 : src, force_transcode, plan.ext);
    volatile double progress = -1;
    int64_t t0 = vx_now_ns();
    T_OK(media_play_produce(src, &plan, dst, NULL, 60000, 0, &progress, &err), &err);
    T_NEAR(progress, 1.0, 0);

    media_reader *rs = NULL, *ro = NULL;
    T_OK(media_open(src, 0, &rs, &err), &err);
    T_OK(media_open(dst, 0, &ro, &err), &err);
    /* Copies: the infos die with their readers. */
    const media_info si_copy = *media_get_info(rs), oi_copy = *media_get_info(ro);
    const media_info *si = &si_copy, *oi = &oi_copy;
    printf("  %-26s -> %s %s %s %dx%d %lld ms (%.0f ms)\n", base ? base + 1 : src, oi->container,
           oi->has_video ? oi->video.codec_name : "-",
           oi->audio_count ? oi->audio[0].codec_name : "-", oi->video.width_px, oi->video.height_px,
           (long long)oi->duration_ms, (double)(vx_now_ns() - t0) / 1e6);
    /* Container and codecs as promised. */
    if (plan.container == MEDIA_PLAY_MP4)
        T_ASSERT(strncmp(oi->container, "mov,mp4", 7) == 0);
    else
        T_ASSERT(strncmp(oi->container, "matroska", 8) == 0);
    T_EQ_INT(oi->has_video, si->has_video);
    if (si->has_video) {
        if (plan.copy_video) {
            T_EQ_STR(oi->video.codec_name, si->video.codec_name);
            T_EQ_STR(oi->video.pix_fmt, si->video.pix_fmt);
            T_EQ_INT(oi->video.width_px, si->video.width_px);
        } else {
            T_EQ_STR(oi->video.codec_name, plan.container == MEDIA_PLAY_MP4 ? "h264" : "vp9");
            T_EQ_STR(oi->video.pix_fmt, "yuv420p"); /* 8-bit 4:2:0 */
        }
        /* Upright sizes match: MP4 keeps the matrix, WebM turns the pixels. */
        T_EQ_INT(oi->video.upright_width_px, (si->video.upright_width_px + 1) & ~1);
        T_EQ_INT(oi->video.upright_height_px, (si->video.upright_height_px + 1) & ~1);
        if (plan.container == MEDIA_PLAY_MP4)
            T_EQ_INT(oi->video.rotation_deg, si->video.rotation_deg);
        else
            T_EQ_INT(oi->video.rotation_deg, 0);
        /* Every frame, at its time. */
        int64_t ns = 0, no = 0;
        T_OK(media_count_frames(rs, &ns, &err), &err);
        T_OK(media_count_frames(ro, &no, &err), &err);
        T_EQ_INT(no, ns);
    }
    T_EQ_INT(oi->audio_count > 0, si->audio_count > 0);
    if (si->audio_count > 0) {
        if (plan.copy_audio)
            T_EQ_STR(oi->audio[0].codec_name, si->audio[0].codec_name);
        else
            T_EQ_STR(oi->audio[0].codec_name, plan.container == MEDIA_PLAY_MP4 ? "aac" : "opus");
    }
    double frame_ms = si->has_video && si->video.avg_fps > 0 ? 1000.0 / si->video.avg_fps : 0;
    T_NEAR(oi->duration_ms, si->duration_ms, frame_ms > 100 ? frame_ms : 100);
    media_close(rs);
    media_close(ro);
    if (si->has_video) {
        int64_t times[2] = {0, si->duration_ms / 2};
        for (int i = 0; i < 2; i++) {
            double mad = frame_mad(src, dst, times[i]);
            printf("    frame at %lld ms: mean abs diff %.2f\n", (long long)times[i], mad);
            T_ASSERT(mad <= mad_max);
        }
    }
}

static void test_produce(void)
{
    /* The grey clips show frame k as luma 20 + 4k, so a frame off by one differs by 4 and the
     * bound of 2.5 proves the same-time frame came back. */
    static const produce_case cases[] = {
        {"grey_mpeg4.avi", 0, 2.5},       /* transcode, no audio */
        {"grey_h264.ts", 0, 0.01},        /* remux: bit-exact frames */
        {"grey_vp9.mkv", 0, 0.01},        /* remux to WebM */
        {"grey_h264_10bit.mkv", 0, 0.01}, /* High 10 plays: remux */
        {"grey_h264_10bit.mkv", 1, 2.5},  /* forced: 10-bit -> 8-bit yuv420p High */
        {"grey_vfr.mkv", 0, 2.5},         /* ffv1, variable frame rate kept */
        {"solid_bt2020_hevc10.mp4", 0, 3.0},
        {"rotated90.mp4", 1, 6.0},     /* display matrix kept, frames compared upright */
        {"odd_317x239.webm", 1, 16.0}, /* 317x239 -> 318x240 (busy test pattern) */
        {"subs.mkv", 0, 12.0},         /* RGB VP9 + Opus + subtitles -> H.264/AAC MP4 */
        {"av_mpeg2_mp2.ts", 0, 12.0},  /* both streams re-encoded */
        {"av_h264_aac.mp4", 1, 12.0},
        {"audio_only.wav", 1, 0}, /* audio only -> AAC in MP4 */
        /* the VP9/Opus WebM target (used when FFmpeg lacks libx264) */
        {"av_h264_aac.mp4", 2, 12.0},
        {"grey_h264_10bit.mkv", 2, 2.5},
        {"odd_317x239.webm", 2, 16.0},
        {"audio_only.m4a", 2, 0},
        {"rotated90.mp4", 2, 6.0}, /* pixels turned upright */
    };
    char *dir = t_tempdir("play_produce");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        produce_and_check(sample(cases[i].file), dir, cases[i].force_transcode, cases[i].mad_max);

    /* The metric can fail: frames one apart differ by 4 (above the 2.5 bound), ten by 40. */
    char dst[4096];
    snprintf(dst, sizeof dst, "%s/grey_mpeg4.avi.0.mp4", dir);
    T_ASSERT(frame_mad_at(sample("grey_mpeg4.avi"), 400, dst, 440) > 3.5);
    T_ASSERT(frame_mad_at(sample("grey_mpeg4.avi"), 400, dst, 800) > 30);

    /* Audio sync: a beep at 1.0 s in MPEG-TS (start time 1.4 s), re-encoded from MP2 to AAC,
     * and remuxed from AAC, starts within 30 ms of where it did. */
    char *beep_args = "-f lavfi -i testsrc=s=96x64:r=25:d=3 -f lavfi -i "
                      "aevalsrc='if(between(t\\,1\\,1.3)\\,0.8*sin(2*PI*440*t)\\,0)':s=44100:d=3 "
                      "-c:v mpeg2video -c:a mp2 -shortest";
    char *beep = make_clip(dir, "beep_mpeg2_mp2.ts", beep_args);
    produce_and_check(beep, dir, 0, 12.0);
    char out[4096];
    snprintf(out, sizeof out, "%s/beep_mpeg2_mp2.ts.0.mp4", dir);
    int64_t on_src = audio_onset_ms(beep), on_out = audio_onset_ms(out);
    printf("  beep onset: source %lld ms, output %lld ms\n", (long long)on_src, (long long)on_out);
    T_NEAR(on_src, 1000, 30);
    T_NEAR(on_out, on_src, 30);
    produce_and_check(beep, dir, 2, 12.0); /* Opus in WebM (pre-skip) keeps sync too */
    snprintf(out, sizeof out, "%s/beep_mpeg2_mp2.ts.2.webm", dir);
    T_NEAR(audio_onset_ms(out), on_src, 30);
    char *beep_ts = make_clip(dir, "beep_h264_aac.ts",
                              "-f lavfi -i testsrc=s=96x64:r=25:d=3 -f lavfi -i "
                              "aevalsrc='if(between(t\\,1\\,1.3)\\,0.8*sin(2*PI*440*t)\\,0)':"
                              "s=44100:d=3 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest");
    produce_and_check(beep_ts, dir, 0, 0.01);
    snprintf(out, sizeof out, "%s/beep_h264_aac.ts.0.mp4", dir);
    T_NEAR(audio_onset_ms(out), audio_onset_ms(beep_ts), 30);
    t_rmtree(dir);
    free(dir);
    free(beep);
    free(beep_ts);
}

/* ---- broken sources, stop and timeout --------------------------------------------------- */

static void expect_produce_fails(const char *src, int force, const volatile int *stop,
                                 int64_t timeout_ms, int64_t max_bytes, vx_status want)
{
    vx_err err = {0};
    media_play_plan plan = plan_of(src);
    if (force) media_play_plan_force_transcode(&plan, MEDIA_PLAY_SOURCE);
    char *dir = t_tempdir("play_broken");
    char dst[4096];
    snprintf(dst, sizeof dst, "%s/out.%s", dir, plan.ext);
    vx_status st = media_play_produce(src, &plan, dst, stop, timeout_ms, max_bytes, NULL, &err);
    printf("  %s: %s (%s)\n", strrchr(src, '/') + 1, err.msg, vx_strerror(st));
    T_EQ_INT(st, want);
    T_ASSERT(strstr(err.msg, strrchr(src, '/') + 1) != NULL); /* names the file */
    T_EQ_INT(count_files(dir), 0);                            /* no final file and no temp file */
    t_rmtree(dir);
    free(dir);
}

static void test_broken(void)
{
    /* Half of the media data missing: detected, not cached as a short video. */
    expect_produce_fails(sample("broken/truncated.mkv"), 0, NULL, 0, 0, VX_ECORRUPT);
    expect_produce_fails(sample("broken/truncated.mkv"), 1, NULL, 0, 0, VX_ECORRUPT);
    /* Stop flag, timeout, size limit. */
    volatile int stop = 1;
    expect_produce_fails(sample("grey_mpeg4.avi"), 0, &stop, 0, 0, VX_EINTERRUPTED);
    expect_produce_fails(sample("grey_mpeg4.avi"), 0, NULL, 1, 0, VX_ELIMIT);
    expect_produce_fails(sample("av_mpeg2_mp2.ts"), 0, NULL, 0, 2000, VX_ELIMIT);

    /* Through the cache: a clear error, no entry, and the failure is remembered. */
    char *dir = t_tempdir("play_broken_cache");
    media_play_cache *cache = NULL;
    vx_err err = {0};
    T_OK(media_play_cache_open(dir, NULL, &cache, &err), &err);
    media_play_result res;
    T_EQ_INT(media_play_get(cache, sample("broken/garbage.mp4"), 1000, &res, &err), VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "garbage.mp4") != NULL);
    T_EQ_INT(media_play_get(cache, sample("broken/no_such_file.mp4"), 1000, &res, &err),
             VX_ENOTFOUND);
    /* The index promises frames whose data is gone: refused, not served as audio only. */
    vx_status st =
        media_play_get(cache, sample("broken/truncated_faststart.mp4"), 30000, &res, &err);
    printf("  truncated_faststart.mp4: %s (%s)\n", err.msg, vx_strerror(st));
    T_ASSERT(st == VX_ECORRUPT || st == VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "truncated_faststart.mp4") != NULL);
    st = media_play_get(cache, sample("broken/header_only.mp4"), 1000, &res, &err);
    printf("  header_only.mp4: %s (%s)\n", err.msg, vx_strerror(st));
    T_ASSERT(st != VX_OK);
    T_ASSERT(strstr(err.msg, "header_only.mp4") != NULL);
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(media_play_get(cache, sample("broken/truncated.mkv"), 30000, &res, &err),
                 VX_ECORRUPT);
        T_ASSERT(strstr(err.msg, "truncated.mkv") != NULL);
    }
    media_play_stats stats;
    media_play_cache_stats(cache, &stats);
    T_EQ_INT(stats.failed, 1); /* asked twice, tried once */
    T_EQ_INT(stats.produced, 0);
    T_EQ_INT(count_files(dir), 0);

    /* Every broken sample: an error naming it, or a version that opens; never a crash. */
    DIR *d = opendir(sample("broken"));
    T_ASSERT(d != NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", sample("broken"), de->d_name);
        vx_err e2 = {0};
        st = media_play_get(cache, path, 30000, &res, &e2);
        printf("  %-26s %s\n", de->d_name, st ? e2.msg : res.path);
        if (st != VX_OK) {
            T_ASSERT(strstr(e2.msg, de->d_name) != NULL);
            continue;
        }
        T_EQ_INT(res.state, MEDIA_PLAY_READY);
        media_reader *r = NULL;
        T_OK(media_open(res.path, 0, &r, &e2), &e2);
        media_close(r);
    }
    closedir(d);
    media_play_cache_close(cache);
    t_rmtree(dir);
    free(dir);
}

/* ---- cache ------------------------------------------------------------------------------ */

static int64_t file_size(const char *path)
{
    struct stat sb;
    T_ASSERT(stat(path, &sb) == 0);
    return sb.st_size;
}

static void get_ready(media_play_cache *cache, const char *src, media_play_result *res)
{
    vx_err err = {0};
    T_OK(media_play_get(cache, src, 60000, res, &err), &err);
    T_EQ_INT(res->state, MEDIA_PLAY_READY);
    T_ASSERT(file_exists(res->path));
}

static void test_cache(void)
{
    vx_err err = {0};
    char *dir = t_tempdir("play_cache");
    const char *a = sample("grey_mpeg4.avi"), *b = sample("grey_h264.ts"),
               *c = sample("grey_vp9.mkv");
    media_play_result ra, rb, rc;

    /* As is: the source itself, nothing written. */
    media_play_cache *cache = NULL;
    T_OK(media_play_cache_open(dir, NULL, &cache, &err), &err);
    get_ready(cache, sample("av_h264_aac.mp4"), &ra);
    T_EQ_STR(ra.path, sample("av_h264_aac.mp4"));
    T_EQ_STR(ra.mime, "video/mp4");
    T_EQ_INT(count_files(dir), 0);
    /* A path that would not fit the result: refused, not cut. */
    char *long_path = malloc(5000);
    memset(long_path, 'a', 4999);
    long_path[0] = '/';
    long_path[4999] = '\0';
    T_EQ_INT(media_play_get(cache, long_path, 0, &ra, &err), VX_EINVAL);
    free(long_path);
    /* Sizes of the three entries under no pressure; a second get is a hit. */
    get_ready(cache, a, &ra);
    get_ready(cache, b, &rb);
    get_ready(cache, c, &rc);
    T_EQ_STR(rc.mime, "video/webm");
    int64_t sa = file_size(ra.path), sb = file_size(rb.path), sc = file_size(rc.path);
    get_ready(cache, a, &ra);
    media_play_stats stats;
    media_play_cache_stats(cache, &stats);
    T_EQ_INT(stats.produced, 3);
    T_EQ_INT(stats.evicted, 0);
    T_EQ_INT(stats.size_bytes, sa + sb + sc);
    media_play_cache_close(cache);

    /* Reopened with room for two: entries from the last run are hits, not re-made. Then the
     * least recently used goes: a, b, touch a, c -> b evicted, a and c stay. */
    t_rmtree(dir);
    media_play_cache_options o = media_play_cache_defaults();
    int64_t big = sa > sb ? sa : sb;
    big = big > sc ? big : sc;
    o.limit_bytes = sa + sb + sc - 1 < 2 * big ? sa + sb + sc - 1 : 2 * big;
    T_OK(media_play_cache_open(dir, &o, &cache, &err), &err);
    get_ready(cache, a, &ra);
    get_ready(cache, b, &rb);
    usleep(20000); /* distinct mtimes */
    get_ready(cache, a, &ra);
    usleep(20000);
    get_ready(cache, c, &rc);
    media_play_cache_stats(cache, &stats);
    printf("  limit %lld: produced %lld evicted %lld size %lld\n", (long long)o.limit_bytes,
           (long long)stats.produced, (long long)stats.evicted, (long long)stats.size_bytes);
    T_EQ_INT(stats.produced, 3);
    T_ASSERT(stats.evicted >= 1);
    T_ASSERT(stats.size_bytes <= o.limit_bytes);
    T_ASSERT(file_exists(rc.path)); /* never the new one */
    T_ASSERT(!file_exists(rb.path));
    T_ASSERT(file_exists(ra.path) || stats.evicted == 2);
    /* An evicted entry is made again on demand. */
    get_ready(cache, b, &rb);
    media_play_cache_close(cache);

    /* Reopen: existing entries are hits. */
    T_OK(media_play_cache_open(dir, &o, &cache, &err), &err);
    get_ready(cache, b, &rb);
    media_play_cache_stats(cache, &stats);
    T_EQ_INT(stats.produced, 0);
    T_EQ_INT(stats.hits, 1);
    media_play_cache_close(cache);

    /* An entry larger than the whole limit: VX_ELIMIT, nothing written. */
    t_rmtree(dir);
    o.limit_bytes = 1000;
    T_OK(media_play_cache_open(dir, &o, &cache, &err), &err);
    T_EQ_INT(media_play_get(cache, a, 60000, &ra, &err), VX_ELIMIT);
    T_EQ_INT(count_files(dir), 0);
    media_play_cache_close(cache);

    /* A temp file of a dead process is removed at open; a finished entry is kept. */
    char path[4096];
    snprintf(path, sizeof path, "%s/.tmp-999999999-1-deadbeef-1-2.mp4", dir);
    FILE *f = fopen(path, "w");
    T_ASSERT(f != NULL);
    fputs("half", f);
    fclose(f);
    o.limit_bytes = 1LL << 30;
    T_OK(media_play_cache_open(dir, &o, &cache, &err), &err);
    T_ASSERT(!file_exists(path));
    media_play_cache_close(cache);

    /* A changed source gets a new entry. */
    char *src_dir = t_tempdir("play_cache_src");
    char *clip =
        make_clip(src_dir, "clip.avi", "-f lavfi -i testsrc=s=64x48:r=25:d=1 -c:v mpeg4 -q:v 2");
    T_OK(media_play_cache_open(dir, &o, &cache, &err), &err);
    get_ready(cache, clip, &ra);
    char first[4096];
    snprintf(first, sizeof first, "%s", ra.path);
    char *clip2 =
        make_clip(src_dir, "clip.avi", "-f lavfi -i testsrc=s=64x48:r=25:d=2 -c:v mpeg4 -q:v 2");
    get_ready(cache, clip, &ra);
    T_ASSERT(strcmp(first, ra.path) != 0);
    media_play_cache_close(cache);
    t_rmtree(src_dir);
    t_rmtree(dir);
    free(clip);
    free(clip2);
    free(src_dir);
    free(dir);
}

/* ---- threads ---------------------------------------------------------------------------- */

typedef struct get_arg {
    pthread_barrier_t *start;
    media_play_cache *cache;
    const char *src;
    media_play_result res;
    vx_status st;
    vx_err err;
} get_arg;

static void *get_thread(void *p)
{
    get_arg *g = p;
    pthread_barrier_wait(g->start); /* both ask at the same moment */
    g->st = media_play_get(g->cache, g->src, 60000, &g->res, &g->err);
    return NULL;
}

static void test_threads(void)
{
    vx_err err = {0};
    char *dir = t_tempdir("play_threads");
    media_play_cache *cache = NULL;
    T_OK(media_play_cache_open(dir, NULL, &cache, &err), &err);
    /* Two requests for one file at once: one job, both answered with the same entry. */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    get_arg g[2] = {{.start = &start, .cache = cache, .src = sample("av_mpeg2_mp2.ts")},
                    {.start = &start, .cache = cache, .src = sample("av_mpeg2_mp2.ts")}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        T_ASSERT(pthread_create(&t[i], NULL, get_thread, &g[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
        T_OK(g[i].st, &g[i].err);
        T_EQ_INT(g[i].res.state, MEDIA_PLAY_READY);
    }
    T_EQ_STR(g[0].res.path, g[1].res.path);
    media_play_stats stats;
    media_play_cache_stats(cache, &stats);
    T_EQ_INT(stats.produced, 1);

    /* Not waiting: "pending" with a Retry-After, then ready. */
    media_play_result res;
    T_OK(media_play_get(cache, sample("grey_mpeg4.avi"), 0, &res, &err), &err);
    T_EQ_INT(res.state, MEDIA_PLAY_PENDING);
    T_ASSERT(res.retry_after_s >= 1);
    T_EQ_STR(res.mime, "video/mp4");
    T_OK(media_play_get(cache, sample("grey_mpeg4.avi"), 60000, &res, &err), &err);
    T_EQ_INT(res.state, MEDIA_PLAY_READY);

    /* Closing while a long job runs stops it at once and leaves no half file. */
    char *src_dir = t_tempdir("play_threads_src");
    char *big = make_clip(src_dir, "long.avi",
                          "-f lavfi -i testsrc=s=320x240:r=25:d=120 -c:v mpeg4 -q:v 5");
    int before = count_files(dir);
    T_OK(media_play_get(cache, big, 0, &res, &err), &err);
    T_EQ_INT(res.state, MEDIA_PLAY_PENDING);
    for (int i = 0; i < 600 && res.progress <= 0; i++) {
        T_OK(media_play_get(cache, big, 20, &res, &err), &err);
        T_EQ_INT(res.state, MEDIA_PLAY_PENDING); /* two minutes of video take longer */
    }
    printf("  long job at %.0f%%, retry after %d s; closing\n", res.progress * 100,
           res.retry_after_s);
    T_ASSERT(res.progress > 0 && res.progress < 1);
    int64_t t0 = vx_now_ns();
    media_play_cache_close(cache);
    T_ASSERT(vx_now_ns() - t0 < 2000000000LL);
    T_EQ_INT(count_files(dir), before); /* neither the temp file nor an entry */
    t_rmtree(src_dir);
    t_rmtree(dir);
    free(big);
    free(src_dir);
    free(dir);
}

/* ---- Chromium ---------------------------------------------------------------------------- */

typedef struct browser_case {
    const char *file;
    int produce;      /* 1: the playable version is produced and loaded, 0: the file itself */
    const char *want; /* "ok WxH" (the size the browser shows, rotation applied) or "ERROR" */
} browser_case;

/* Loads each file in headless Chromium (VIDX_CHROMIUM) and reads back what it decoded. The
 * untouched MPEG-TS and AVI must fail there: that is the premise of the decision. */
static void test_chromium(void)
{
    static const browser_case cases[] = {
        {"grey_h264.ts", 0, "ERROR"},
        {"grey_mpeg4.avi", 0, "ERROR"},
        {"grey_h264.mp4", 0, "ok 64x64"},
        {"audio_only.m4a", 0, "ok 0x0"},
        {"solid_bt2020_hevc10.mp4", 0, "ERROR"},
        {"grey_vp8.webm", 0, "ok 64x64"},
        {"odd_317x239.webm", 0, "ok 317x239"},
        {"rotated90.mp4", 0, "ok 48x64"},
        {"audio_only.wav", 0, "ok 0x0"},
        {"av_theora_vorbis.ogv", 1, "ok 96x64"},
        {"grey_h264.ts", 1, "ok 64x64"},
        {"grey_mpeg4.avi", 1, "ok 64x64"},
        {"grey_vp9.mkv", 1, "ok 64x64"},
        {"grey_h264_10bit.mkv", 1, "ok 64x64"},
        {"solid_bt2020_hevc10.mp4", 1, "ok 64x48"},
        {"av_mpeg2_mp2.ts", 1, "ok 96x64"},
        {"av_prores_pcm.mov", 1, "ok 96x64"},
        {"subs.mkv", 1, "ok 96x64"},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    const char *chromium = getenv("VIDX_CHROMIUM");
    if (!chromium || !*chromium) T_FAIL("VIDX_CHROMIUM is not set (run through ctest)");
    char *dir = t_tempdir("play_chromium");
    char urls[N][4096];
    vx_err err = {0};
    for (int i = 0; i < N; i++) {
        if (!cases[i].produce) {
            snprintf(urls[i], sizeof urls[i], "file://%s", sample(cases[i].file));
            continue;
        }
        media_play_plan plan = plan_of(sample(cases[i].file));
        T_ASSERT(plan.action != MEDIA_PLAY_AS_IS);
        char out[2048];
        snprintf(out, sizeof out, "%s/%d.%s", dir, i, plan.ext);
        T_OK(media_play_produce(sample(cases[i].file), &plan, out, NULL, 60000, 0, NULL, &err),
             &err);
        snprintf(urls[i], sizeof urls[i], "file://%s", out);
    }
    /* Our rotated sample, transcoded: the browser must show it turned (48x64). */
    char rotated[4096];
    {
        media_play_plan plan = plan_of(sample("rotated90.mp4"));
        media_play_plan_force_transcode(&plan, MEDIA_PLAY_SOURCE);
        snprintf(rotated, sizeof rotated, "%s/rotated.mp4", dir);
        T_OK(
            media_play_produce(sample("rotated90.mp4"), &plan, rotated, NULL, 60000, 0, NULL, &err),
            &err);
    }
    char html_path[4096], dom_path[4096];
    snprintf(html_path, sizeof html_path, "%s/t.html", dir);
    snprintf(dom_path, sizeof dom_path, "%s/dom.txt", dir);
    FILE *f = fopen(html_path, "w");
    T_ASSERT(f != NULL);
    fputs("<html><body>", f);
    for (int i = 0; i < N; i++)
        fprintf(f, "<video id=v%d src=\"%s\" preload=auto muted></video>", i, urls[i]);
    fprintf(f, "<video id=v%d src=\"file://%s\" preload=auto muted></video>", N, rotated);
    fputs("<pre id=out></pre><script>\n"
          "const vs=[...document.querySelectorAll('video')], res={};\n"
          "vs.forEach(v=>{v.addEventListener('loadeddata',()=>{res[v.id]='ok '+v.videoWidth+"
          "'x'+v.videoHeight});v.addEventListener('error',()=>{res[v.id]='ERROR'})});\n"
          "setTimeout(()=>{document.getElementById('out').textContent=vs.map(v=>'['+v.id+"
          "'] '+(res[v.id]||'pending')+';').join(' ')},5000);\n"
          "</script></body></html>\n",
          f);
    fclose(f);
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "timeout 90 '%s' --headless --no-sandbox --disable-gpu --no-first-run "
             "--user-data-dir='%s/profile' --allow-file-access-from-files "
             "--virtual-time-budget=10000 --dump-dom 'file://%s' >'%s' 2>/dev/null",
             chromium, dir, html_path, dom_path);
    T_EQ_INT(system(cmd), 0);
    char *dom = NULL;
    size_t len = 0;
    T_OK(vx_read_file(dom_path, 1 << 20, &dom, &len, &err), &err);
    for (int i = 0; i <= N; i++) {
        char key[32], want[64];
        snprintf(key, sizeof key, "[v%d] ", i);
        snprintf(want, sizeof want, "%s;", i < N ? cases[i].want : "ok 48x64");
        const char *at = strstr(dom, key);
        T_ASSERT(at != NULL);
        at += strlen(key);
        const char *end = strchr(at, ';');
        printf("  %-26s %-8s -> %.*s\n", i < N ? cases[i].file : "rotated90.mp4",
               i < N && !cases[i].produce ? "as is" : "produced", end ? (int)(end - at) : 0, at);
        if (strncmp(at, want, strlen(want)) != 0)
            T_FAIL("%s: Chromium says \"%.40s\", expected \"%s\"",
                   i < N ? cases[i].file : "rotated", at, want);
    }
    free(dom);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"play_decision", test_decision}, {"play_produce", test_produce},
        {"play_broken", test_broken},     {"play_cache", test_cache},
        {"play_threads", test_threads},   {"play_chromium", test_chromium},
    };
    setvbuf(stdout, NULL, _IOLBF, 0); /* case output survives an abort */
    return T_RUN(argc, argv, cases);
}
