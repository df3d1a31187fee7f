/* Browser playback (DECISIONS.md §10): what a file needs to play in Chromium (as is, a remux or
 * a transcode), the producer that writes the playable MP4/WebM with FFmpeg's libraries, and
 * the size-limited cache of produced files with its background jobs (protocol in media.h). */
#define _GNU_SOURCE
#include "media_internal.h"

#include <libavutil/audio_fifo.h>
#include <libavutil/avstring.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

vx_status media_open_for_play(const char *path, media_reader **out, vx_err *err)
{
    vx_status st = media_open(path, 0, out, err);
    if (st || (*out)->info.has_video) return st;
    const AVFormatContext *fmt = (*out)->fmt;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *s = fmt->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(s->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            media_close(*out);
            *out = NULL;
            st = media_open(path, MEDIA_NEED_VIDEO, out, err);
            if (st == VX_OK) { /* cannot happen unless the file changed: be safe */
                media_close(*out);
                *out = NULL;
                st = vx_fail(err, VX_ESTALE, "%s: changed while being read", path);
            }
            return st;
        }
    }
    return VX_OK;
}

/* ---- the decision ----------------------------------------------------------------------- */

static int is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return 1;
    return 0;
}

static const char *const mp4_audio[] = {"aac", "mp3", NULL};
static const char *const webm_audio[] = {"opus", "vorbis", NULL};
/* 4:2:0 only: Chromium's H.264 decoder takes High 10 but not 4:2:2/4:4:4. */
static const char *const playable_pix[] = {"yuv420p", "yuvj420p", "yuv420p10le", NULL};

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

static int has_ext(const char *path, const char *ext)
{
    if (!path) return 0;
    size_t n = strlen(path), e = strlen(ext);
    return n > e && path[n - e - 1] == '.' && strcasecmp(path + n - e, ext) == 0;
}

static int have_encoder(const char *name)
{
    return avcodec_find_encoder_by_name(name) != NULL;
}

void media_play_plan_force_transcode(media_play_plan *plan, media_play_container target)
{
    int mp4 = target == MEDIA_PLAY_SOURCE ? have_encoder("libx264") && have_encoder("aac")
                                          : target == MEDIA_PLAY_MP4;
    plan->action = MEDIA_PLAY_TRANSCODE;
    plan->container = mp4 ? MEDIA_PLAY_MP4 : MEDIA_PLAY_WEBM;
    plan->copy_video = 0;
    plan->copy_audio = 0;
    copy_str(plan->video_encoder, sizeof plan->video_encoder,
             plan->video_stream >= 0 ? (mp4 ? "libx264" : "libvpx-vp9") : "");
    copy_str(plan->audio_encoder, sizeof plan->audio_encoder,
             plan->audio_stream >= 0 ? (mp4 ? "aac" : "libopus") : "");
    copy_str(plan->ext, sizeof plan->ext, mp4 ? "mp4" : "webm");
    copy_str(plan->mime, sizeof plan->mime,
             plan->video_stream >= 0 ? (mp4 ? "video/mp4" : "video/webm")
                                     : (mp4 ? "audio/mp4" : "audio/webm"));
    copy_str(plan->reason, sizeof plan->reason, "transcode forced");
}

vx_status media_play_plan_for(const media_info *info, const char *path, media_play_plan *out,
                              vx_err *err)
{
    memset(out, 0, sizeof *out);
    const char *name = path ? path : "media";
    int has_v = info->has_video, has_a = info->audio_count > 0;
    out->video_stream = has_v ? info->video.stream_index : -1;
    out->audio_stream = has_a ? info->audio[0].stream_index : -1;
    if (!has_v && !has_a)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: no video or audio stream to play", name);
    const char *vc = has_v ? info->video.codec_name : "";
    const char *ac = has_a ? info->audio[0].codec_name : "";
    int mp4_enc = have_encoder("libx264") && have_encoder("aac");
    int webm_enc = have_encoder("libvpx-vp9") && have_encoder("libopus");
    int pix_ok = has_v && is_one_of(info->video.pix_fmt, playable_pix);

    /* The container follows the stream we can keep: copied video decides, else copied audio
     * (audio only), else the encoders we have. */
    media_play_container c;
    if (has_v) {
        if (strcmp(vc, "h264") == 0 && pix_ok) {
            c = MEDIA_PLAY_MP4;
            out->copy_video = 1;
        } else if ((strcmp(vc, "vp9") == 0 || strcmp(vc, "vp8") == 0) && pix_ok &&
                   info->video.rotation_deg == 0) { /* WebM cannot carry a rotation */
            c = MEDIA_PLAY_WEBM;
            out->copy_video = 1;
        } else if (mp4_enc || webm_enc) {
            c = mp4_enc ? MEDIA_PLAY_MP4 : MEDIA_PLAY_WEBM;
            snprintf(out->reason, sizeof out->reason, "video codec %s (%s) is not browser-playable",
                     vc, info->video.pix_fmt);
        } else {
            return vx_fail(err, VX_EUNSUPPORTED,
                           "%s: video codec %s is not browser-playable and this FFmpeg has no "
                           "libx264 or libvpx-vp9 encoder",
                           name, vc);
        }
    } else if (is_one_of(ac, mp4_audio)) {
        c = MEDIA_PLAY_MP4;
    } else if (is_one_of(ac, webm_audio)) {
        c = MEDIA_PLAY_WEBM;
    } else if (have_encoder("aac") || have_encoder("libopus")) {
        c = have_encoder("aac") ? MEDIA_PLAY_MP4 : MEDIA_PLAY_WEBM;
    } else {
        return vx_fail(err, VX_EUNSUPPORTED, "%s: audio codec %s is not browser-playable", name,
                       ac);
    }
    if (has_a) {
        out->copy_audio = is_one_of(ac, c == MEDIA_PLAY_MP4 ? mp4_audio : webm_audio);
        if (!out->copy_audio) {
            const char *enc = c == MEDIA_PLAY_MP4 ? "aac" : "libopus";
            if (!have_encoder(enc))
                return vx_fail(err, VX_EUNSUPPORTED,
                               "%s: audio codec %s needs the %s encoder, missing in this FFmpeg",
                               name, ac, enc);
            copy_str(out->audio_encoder, sizeof out->audio_encoder, enc);
            if (!out->reason[0])
                snprintf(out->reason, sizeof out->reason,
                         "audio codec %s is not playable with video %s", ac, has_v ? vc : "-");
        }
    }
    if (has_v && !out->copy_video)
        copy_str(out->video_encoder, sizeof out->video_encoder,
                 c == MEDIA_PLAY_MP4 ? "libx264" : "libvpx-vp9");
    out->container = c;
    copy_str(out->ext, sizeof out->ext, c == MEDIA_PLAY_MP4 ? "mp4" : "webm");
    copy_str(out->mime, sizeof out->mime,
             has_v ? (c == MEDIA_PLAY_MP4 ? "video/mp4" : "video/webm")
                   : (c == MEDIA_PLAY_MP4 ? "audio/mp4" : "audio/webm"));
    int all_copy = (!has_v || out->copy_video) && (!has_a || out->copy_audio);

    /* As is: the source's container is one the browser reads with these codecs. A Matroska
     * file counts as WebM only by its name (the demuxer does not tell the doctype). */
    const char *fmt = info->container;
    int src_mp4 = strncmp(fmt, "mov,mp4", 7) == 0;
    int src_mkv = strncmp(fmt, "matroska", 8) == 0;
    if (!has_v && has_a && strcmp(fmt, "wav") == 0 &&
        (strcmp(ac, "pcm_s16le") == 0 || strcmp(ac, "pcm_u8") == 0 ||
         strcmp(ac, "pcm_f32le") == 0)) {
        memset(out->audio_encoder, 0, sizeof out->audio_encoder);
        out->copy_audio = 1;
        all_copy = 1;
        out->action = MEDIA_PLAY_AS_IS;
        copy_str(out->mime, sizeof out->mime, "audio/wav");
    } else if (all_copy && c == MEDIA_PLAY_MP4 && src_mp4) {
        out->action = MEDIA_PLAY_AS_IS;
    } else if (all_copy && c == MEDIA_PLAY_WEBM && src_mkv && has_ext(path, "webm")) {
        out->action = MEDIA_PLAY_AS_IS;
    } else if (all_copy && !has_v && strcmp(fmt, "mp3") == 0 && strcmp(ac, "mp3") == 0) {
        out->action = MEDIA_PLAY_AS_IS;
        copy_str(out->mime, sizeof out->mime, "audio/mpeg");
    } else if (all_copy && !has_v && strcmp(fmt, "ogg") == 0 && c == MEDIA_PLAY_WEBM) {
        out->action = MEDIA_PLAY_AS_IS;
        copy_str(out->mime, sizeof out->mime, "audio/ogg");
    } else if (all_copy) {
        out->action = MEDIA_PLAY_REMUX;
        snprintf(out->reason, sizeof out->reason, "container %s is not browser-playable", fmt);
    } else {
        out->action = MEDIA_PLAY_TRANSCODE;
    }
    if (out->action == MEDIA_PLAY_AS_IS) {
        out->container = MEDIA_PLAY_SOURCE;
        out->ext[0] = '\0';
        copy_str(out->reason, sizeof out->reason, "playable as is");
    }
    return VX_OK;
}

/* ---- the producer ----------------------------------------------------------------------- */

typedef struct producer {
    const char *src;
    const media_play_plan *plan;
    media_reader *r;
    AVFormatContext *oc;
    AVPacket *opkt;
    const volatile int *stop;
    volatile double *progress;
    int64_t deadline_ns, max_bytes, timeout_ms, duration_ms;
    int64_t end_ms; /* latest time written, for progress and the truncation check */

    /* video */
    int vin, vout; /* input / output stream indices, -1 when none */
    AVCodecContext *venc;
    AVFrame *vframe; /* scaler output, yuv420p at the coded orientation */
    AVFrame *rframe; /* vframe turned upright (WebM cannot store a display matrix), or NULL */
    int rotate_deg;  /* clockwise turn applied to the pixels: 0, 90, 180, 270 */
    struct SwsContext *sws;
    int64_t v_last_pts;
    int64_t v_origin; /* container start in the video stream's time base */

    /* audio */
    int ain, aout;
    AVCodecContext *aenc;
    SwrContext *swr;
    AVAudioFifo *fifo;
    AVFrame *aframe;    /* encoder input */
    uint8_t **conv;     /* swr output planes */
    int conv_cap;       /* samples per channel conv holds */
    int64_t a_next_pts; /* in 1/sample_rate; AV_NOPTS_VALUE until the first frame */
    int a_frame_size;
} producer;

static vx_status check_limits(producer *p, vx_err *err)
{
    if (p->stop && __atomic_load_n(p->stop, __ATOMIC_RELAXED))
        return vx_fail(err, VX_EINTERRUPTED, "%s: playback version stopped on request", p->src);
    if (p->deadline_ns && vx_now_ns() > p->deadline_ns)
        return vx_fail(err, VX_ELIMIT, "%s: playback version took longer than %lld ms; gave up",
                       p->src, (long long)p->timeout_ms);
    if (p->max_bytes > 0 && p->oc->pb && avio_tell(p->oc->pb) > p->max_bytes)
        return vx_fail(err, VX_ELIMIT, "%s: playback version exceeds the cache limit (%lld bytes)",
                       p->src, (long long)p->max_bytes);
    return VX_OK;
}

/* Writes a packet in the time base tb to output stream out_index. */
static vx_status write_packet(producer *p, AVPacket *pkt, AVRational tb, int out_index, int copied,
                              vx_err *err)
{
    AVStream *st = p->oc->streams[out_index];
    pkt->stream_index = out_index;
    av_packet_rescale_ts(pkt, tb, st->time_base);
    pkt->pos = -1;
    int64_t t = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    if (t != AV_NOPTS_VALUE) {
        int64_t end = av_rescale_q(t + pkt->duration, st->time_base, (AVRational){1, 1000});
        if (end > p->end_ms) p->end_ms = end;
        if (p->progress && p->duration_ms > 0) {
            double f = (double)p->end_ms / (double)p->duration_ms;
            f = f < 0 ? 0 : f > 1 ? 1 : f;
            __atomic_store(p->progress, &f, __ATOMIC_RELAXED); /* read by other threads */
        }
    }
    int ret = av_interleaved_write_frame(p->oc, pkt);
    if (ret == AVERROR(EINVAL) && copied) {
        /* A damaged source's packet with timestamps out of order: skip it, as a decoder would
         * skip a damaged packet. */
        media_warn_corrupt(p->r, "a packet with invalid timestamps", ret);
        return VX_OK;
    }
    if (ret < 0)
        return vx_fail(err, VX_EIO, "%s: cannot write the playback version: %s", p->src,
                       av_err2str(ret));
    return VX_OK;
}

static vx_status drain_encoder(producer *p, AVCodecContext *enc, int out_index, vx_err *err)
{
    for (;;) {
        int ret = avcodec_receive_packet(enc, p->opkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return VX_OK;
        if (ret < 0)
            return vx_fail(err, VX_EIO, "%s: encoder %s failed: %s", p->src, enc->codec->name,
                           av_err2str(ret));
        vx_status st = write_packet(p, p->opkt, enc->time_base, out_index, 0, err);
        av_packet_unref(p->opkt);
        if (st) return st;
    }
}

static void copy_display_matrix(const AVStream *in, AVStream *out)
{
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(in, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!m || size < 9 * sizeof(int32_t)) return;
    uint8_t *dst = av_stream_new_side_data(out, AV_PKT_DATA_DISPLAYMATRIX, size);
    if (dst) memcpy(dst, m, size);
}

static int sws_matrix(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709:
        return SWS_CS_ITU709;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        return SWS_CS_BT2020;
    case AVCOL_SPC_SMPTE240M:
        return SWS_CS_SMPTE240M;
    case AVCOL_SPC_FCC:
        return SWS_CS_FCC;
    default:
        return SWS_CS_ITU601;
    }
}

static vx_status open_encoder(producer *p, const char *name, AVCodecContext *enc,
                              AVDictionary **opts, vx_err *err)
{
    if (p->oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int ret = avcodec_open2(enc, enc->codec, opts);
    av_dict_free(opts);
    if (ret < 0)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot open the %s encoder: %s", p->src, name,
                       av_err2str(ret));
    return VX_OK;
}

static vx_status setup_video(producer *p, vx_err *err)
{
    AVStream *in = p->r->fmt->streams[p->vin];
    AVStream *out = avformat_new_stream(p->oc, NULL);
    if (!out) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    p->vout = out->index;
    p->v_origin = media_origin_in(p->r, in->time_base);
    p->v_last_pts = AV_NOPTS_VALUE;
    /* MP4 keeps the display matrix; a WebM transcode turns the pixels instead. */
    int rot = p->r->info.video.rotation_deg;
    if (!p->plan->copy_video && p->plan->container == MEDIA_PLAY_WEBM)
        p->rotate_deg = rot;
    else
        copy_display_matrix(in, out);
    if (p->plan->copy_video) {
        int ret = avcodec_parameters_copy(out->codecpar, in->codecpar);
        if (ret < 0) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
        out->codecpar->codec_tag = 0;
        out->time_base = in->time_base;
        out->avg_frame_rate = in->avg_frame_rate;
        return VX_OK;
    }
    AVCodecContext *dec = p->r->vdec;
    if (!dec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: video codec %s cannot be decoded", p->src,
                       avcodec_get_name(in->codecpar->codec_id));
    const AVCodec *codec = avcodec_find_encoder_by_name(p->plan->video_encoder);
    if (!codec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: no %s encoder in this FFmpeg", p->src,
                       p->plan->video_encoder);
    AVCodecContext *enc = p->venc = avcodec_alloc_context3(codec);
    if (!enc) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    /* H.264 4:2:0 needs even sizes: round odd ones up (the scaler stretches by one pixel). */
    int coded_w = (dec->width + 1) & ~1, coded_h = (dec->height + 1) & ~1;
    int turned = p->rotate_deg == 90 || p->rotate_deg == 270;
    enc->width = turned ? coded_h : coded_w;
    enc->height = turned ? coded_w : coded_h;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->sample_aspect_ratio = dec->sample_aspect_ratio;
    out->sample_aspect_ratio = dec->sample_aspect_ratio;
    /* The source's own time base keeps every timestamp (VFR stays VFR). */
    enc->time_base = in->time_base;
    AVRational fr = av_guess_frame_rate(p->r->fmt, in, NULL);
    if (fr.num > 0 && fr.den > 0) enc->framerate = fr;
    double fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 25.0;
    enc->gop_size = (int)(fps * 2 + 0.5) > 1 ? (int)(fps * 2 + 0.5) : 2; /* seekable every 2 s */
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(dec->pix_fmt);
    int src_rgb = d && (d->flags & AV_PIX_FMT_FLAG_RGB);
    int src_full = dec->color_range == AVCOL_RANGE_JPEG || dec->pix_fmt == AV_PIX_FMT_YUVJ420P ||
                   dec->pix_fmt == AV_PIX_FMT_YUVJ422P || dec->pix_fmt == AV_PIX_FMT_YUVJ444P;
    enc->color_range = src_rgb ? AVCOL_RANGE_MPEG : src_full ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    enc->colorspace = src_rgb ? AVCOL_SPC_BT709 : dec->colorspace;
    enc->color_primaries = src_rgb ? AVCOL_PRI_BT709 : dec->color_primaries;
    enc->color_trc = src_rgb ? AVCOL_TRC_BT709 : dec->color_trc;
    enc->thread_count = 0;
    AVDictionary *opts = NULL;
    if (strcmp(p->plan->video_encoder, "libx264") == 0) {
        av_dict_set(&opts, "preset", "veryfast", 0);
        av_dict_set(&opts, "crf", "23", 0);
        av_dict_set(&opts, "profile", "high", 0);
    } else {
        av_dict_set(&opts, "deadline", "realtime", 0);
        av_dict_set(&opts, "cpu-used", "8", 0);
        av_dict_set(&opts, "crf", "32", 0);
        av_dict_set(&opts, "b", "0", 0);
        av_dict_set(&opts, "row-mt", "1", 0);
    }
    vx_status st = open_encoder(p, codec->name, enc, &opts, err);
    if (st) return st;
    if (avcodec_parameters_from_context(out->codecpar, enc) < 0)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    out->time_base = enc->time_base;
    if (fr.num > 0) out->avg_frame_rate = fr;

    p->vframe = av_frame_alloc();
    if (!p->vframe) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    p->vframe->format = enc->pix_fmt;
    p->vframe->width = coded_w;
    p->vframe->height = coded_h;
    if (av_frame_get_buffer(p->vframe, 0) < 0)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory for a frame", p->src);
    if (p->rotate_deg) {
        p->rframe = av_frame_alloc();
        if (!p->rframe) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
        p->rframe->format = enc->pix_fmt;
        p->rframe->width = enc->width;
        p->rframe->height = enc->height;
        if (av_frame_get_buffer(p->rframe, 0) < 0)
            return vx_fail(err, VX_ENOMEM, "%s: out of memory for a frame", p->src);
    }
    return VX_OK;
}

/* Turns one plane clockwise by deg (90, 180, 270), as media_video.c turns RGB frames.
 * src: [h][w] with src_stride -> dst: [w][h] for 90/270, [h][w] for 180, with dst_stride. */
static void rotate_plane(const uint8_t *src, int src_stride, int w, int h, int deg, uint8_t *dst,
                         int dst_stride)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * src_stride;
        if (deg == 180) {
            uint8_t *d = dst + (size_t)(h - 1 - y) * dst_stride + (w - 1);
            for (int x = 0; x < w; x++)
                d[-x] = row[x];
        } else if (deg == 90) { /* dst[x][h-1-y] = src[y][x] */
            for (int x = 0; x < w; x++)
                dst[(size_t)x * dst_stride + (h - 1 - y)] = row[x];
        } else { /* 270: dst[w-1-x][y] = src[y][x] */
            for (int x = 0; x < w; x++)
                dst[(size_t)(w - 1 - x) * dst_stride + y] = row[x];
        }
    }
}

/* Scales one decoded frame to the encoder's format and sends it. */
static vx_status encode_video_frame(producer *p, const AVFrame *f, vx_err *err)
{
    AVCodecContext *enc = p->venc;
    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE)
        pts = p->v_last_pts == AV_NOPTS_VALUE ? 0 : p->v_last_pts + 1;
    else
        pts -= p->v_origin;
    /* A repeated timestamp would make the encoder refuse the frame: drop the duplicate. */
    if (p->v_last_pts != AV_NOPTS_VALUE && pts <= p->v_last_pts) return VX_OK;
    p->v_last_pts = pts;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    AVFrame *vf = p->vframe;
    p->sws = sws_getCachedContext(p->sws, f->width, f->height, f->format, vf->width, vf->height,
                                  enc->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
    if (!p->sws)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot convert %dx%d %s frames", p->src, f->width,
                       f->height, d ? d->name : "?");
    int src_rgb = d && (d->flags & AV_PIX_FMT_FLAG_RGB);
    /* Same matrix and range out as in (tagged on the stream), so the colours stay; only RGB
     * sources are converted, to BT.709 limited range. */
    int full = enc->color_range == AVCOL_RANGE_JPEG;
    const int *src_tab =
        sws_getCoefficients(sws_matrix(src_rgb ? AVCOL_SPC_BT709 : enc->colorspace));
    const int *dst_tab = sws_getCoefficients(sws_matrix(enc->colorspace));
    sws_setColorspaceDetails(p->sws, src_tab, src_rgb ? 1 : full, dst_tab, full, 0, 1 << 16,
                             1 << 16);
    if (av_frame_make_writable(p->vframe) < 0)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory for a frame", p->src);
    sws_scale(p->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, vf->data,
              vf->linesize);
    if (p->rotate_deg) {
        if (av_frame_make_writable(p->rframe) < 0)
            return vx_fail(err, VX_ENOMEM, "%s: out of memory for a frame", p->src);
        for (int plane = 0; plane < 3; plane++) {
            int shift = plane ? 1 : 0; /* 4:2:0 chroma */
            rotate_plane(vf->data[plane], vf->linesize[plane], vf->width >> shift,
                         vf->height >> shift, p->rotate_deg, p->rframe->data[plane],
                         p->rframe->linesize[plane]);
        }
        vf = p->rframe;
    }
    vf->pts = pts;
    vf->pict_type = AV_PICTURE_TYPE_NONE;
    int ret = avcodec_send_frame(enc, vf);
    if (ret < 0)
        return vx_fail(err, VX_EIO, "%s: video encoder failed: %s", p->src, av_err2str(ret));
    return drain_encoder(p, enc, p->vout, err);
}

static vx_status setup_audio(producer *p, vx_err *err)
{
    AVStream *in = p->r->fmt->streams[p->ain];
    AVStream *out = avformat_new_stream(p->oc, NULL);
    if (!out) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    p->aout = out->index;
    p->a_next_pts = AV_NOPTS_VALUE;
    if (p->plan->copy_audio) {
        if (avcodec_parameters_copy(out->codecpar, in->codecpar) < 0)
            return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
        out->codecpar->codec_tag = 0;
        out->time_base = in->time_base;
        return VX_OK;
    }
    AVCodecContext *dec = p->r->adec;
    if (!dec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: audio codec %s cannot be decoded", p->src,
                       avcodec_get_name(in->codecpar->codec_id));
    const AVCodec *codec = avcodec_find_encoder_by_name(p->plan->audio_encoder);
    if (!codec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: no %s encoder in this FFmpeg", p->src,
                       p->plan->audio_encoder);
    AVCodecContext *enc = p->aenc = avcodec_alloc_context3(codec);
    if (!enc) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    /* Keep the source's rate when the encoder takes it, else 48 kHz (Opus: always). */
    int rate = 48000;
    if (codec->supported_samplerates)
        for (const int *s = codec->supported_samplerates; *s; s++)
            if (*s == dec->sample_rate) rate = dec->sample_rate;
    int channels = dec->ch_layout.nb_channels >= 2 ? 2 : 1;
    av_channel_layout_default(&enc->ch_layout, channels);
    enc->sample_rate = rate;
    enc->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
    enc->bit_rate = channels == 2 ? 128000 : 64000;
    enc->time_base = (AVRational){1, rate};
    AVDictionary *opts = NULL;
    vx_status st = open_encoder(p, codec->name, enc, &opts, err);
    if (st) return st;
    if (avcodec_parameters_from_context(out->codecpar, enc) < 0)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    out->time_base = enc->time_base;
    p->a_frame_size = enc->frame_size > 0 ? enc->frame_size : 1024;

    AVChannelLayout in_layout;
    if (dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in_layout, dec->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in_layout, &dec->ch_layout) < 0)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    int ret = swr_alloc_set_opts2(&p->swr, &enc->ch_layout, enc->sample_fmt, rate, &in_layout,
                                  dec->sample_fmt, dec->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    if (ret < 0 || swr_init(p->swr) < 0)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot resample %d Hz %d-channel audio", p->src,
                       dec->sample_rate, dec->ch_layout.nb_channels);
    p->fifo = av_audio_fifo_alloc(enc->sample_fmt, channels, p->a_frame_size * 4);
    p->aframe = av_frame_alloc();
    if (!p->fifo || !p->aframe) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    p->aframe->nb_samples = p->a_frame_size;
    p->aframe->format = enc->sample_fmt;
    p->aframe->sample_rate = rate;
    if (av_channel_layout_copy(&p->aframe->ch_layout, &enc->ch_layout) < 0 ||
        av_frame_get_buffer(p->aframe, 0) < 0)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    return VX_OK;
}

/* Sends full frames from the fifo to the encoder (and the rest when flushing). */
static vx_status encode_audio_fifo(producer *p, int flush, vx_err *err)
{
    AVCodecContext *enc = p->aenc;
    while (av_audio_fifo_size(p->fifo) >= p->a_frame_size ||
           (flush && av_audio_fifo_size(p->fifo) > 0)) {
        int n = av_audio_fifo_size(p->fifo);
        if (n > p->a_frame_size) n = p->a_frame_size;
        if (av_frame_make_writable(p->aframe) < 0)
            return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
        p->aframe->nb_samples = n;
        if (av_audio_fifo_read(p->fifo, (void **)p->aframe->data, n) < n)
            return vx_fail(err, VX_EIO, "%s: audio buffer underrun", p->src);
        p->aframe->pts = p->a_next_pts;
        p->a_next_pts += n;
        int ret = avcodec_send_frame(enc, p->aframe);
        if (ret < 0)
            return vx_fail(err, VX_EIO, "%s: audio encoder failed: %s", p->src, av_err2str(ret));
        vx_status st = drain_encoder(p, enc, p->aout, err);
        if (st) return st;
    }
    return VX_OK;
}

/* Resamples one decoded frame (NULL: the resampler's tail) into the fifo. */
static vx_status push_audio(producer *p, const AVFrame *f, vx_err *err)
{
    AVCodecContext *enc = p->aenc;
    if (f && p->a_next_pts == AV_NOPTS_VALUE) {
        /* The first sample keeps its source time, so audio stays in sync with video. */
        AVStream *in = p->r->fmt->streams[p->ain];
        int64_t t = f->best_effort_timestamp;
        t = t == AV_NOPTS_VALUE ? 0 : t - media_origin_in(p->r, in->time_base);
        t = av_rescale_q(t, in->time_base, enc->time_base);
        p->a_next_pts = t > 0 ? t : 0;
    }
    if (p->a_next_pts == AV_NOPTS_VALUE) return VX_OK; /* no audio was decoded at all */
    int want = swr_get_out_samples(p->swr, f ? f->nb_samples : 0);
    if (want <= 0) return VX_OK;
    if (want > p->conv_cap) {
        if (p->conv) av_freep(&p->conv[0]);
        av_freep(&p->conv);
        if (av_samples_alloc_array_and_samples(&p->conv, NULL, enc->ch_layout.nb_channels, want,
                                               enc->sample_fmt, 0) < 0)
            return vx_fail(err, VX_ENOMEM, "%s: out of memory for audio", p->src);
        p->conv_cap = want;
    }
    int got = swr_convert(p->swr, p->conv, p->conv_cap,
                          f ? (const uint8_t **)f->extended_data : NULL, f ? f->nb_samples : 0);
    if (got < 0) return vx_fail(err, VX_EIO, "%s: audio resampling failed", p->src);
    if (got > 0 && av_audio_fifo_write(p->fifo, (void **)p->conv, got) < got)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory for audio", p->src);
    return encode_audio_fifo(p, 0, err);
}

/* Sends pkt (NULL: flush) to a decoder and passes every frame on. */
static vx_status decode_and_encode(producer *p, AVCodecContext *dec, const AVPacket *pkt, int video,
                                   vx_err *err)
{
    int ret = avcodec_send_packet(dec, pkt);
    if (ret < 0 && ret != AVERROR_EOF) {
        media_warn_corrupt(p->r, video ? "a damaged video packet" : "a damaged audio packet", ret);
        return VX_OK;
    }
    AVFrame *f = p->r->scratch;
    for (;;) {
        ret = avcodec_receive_frame(dec, f);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return VX_OK;
        if (ret < 0) { /* the next packet's loop receives what follows */
            media_warn_corrupt(p->r, "an undecodable frame", ret);
            return VX_OK;
        }
        vx_status st = video ? encode_video_frame(p, f, err) : push_audio(p, f, err);
        av_frame_unref(f);
        if (st) return st;
    }
}

static vx_status copy_packet(producer *p, AVPacket *pkt, int out_index, vx_err *err)
{
    AVStream *in = p->r->fmt->streams[pkt->stream_index];
    int64_t origin = media_origin_in(p->r, in->time_base);
    if (pkt->pts != AV_NOPTS_VALUE) pkt->pts -= origin;
    if (pkt->dts != AV_NOPTS_VALUE) pkt->dts -= origin;
    return write_packet(p, pkt, in->time_base, out_index, 1, err);
}

static vx_status run_producer(producer *p, const char *tmp, vx_err *err)
{
    const media_play_plan *plan = p->plan;
    const char *muxer = plan->container == MEDIA_PLAY_MP4 ? "mp4" : "webm";
    int ret = avformat_alloc_output_context2(&p->oc, NULL, muxer, NULL);
    if (ret < 0 || !p->oc) return vx_fail(err, VX_ENOMEM, "%s: no %s muxer", p->src, muxer);
    p->opkt = av_packet_alloc();
    if (!p->opkt) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    vx_status st;
    if (p->vin >= 0 && (st = setup_video(p, err))) return st;
    if (p->ain >= 0 && (st = setup_audio(p, err))) return st;

    char *url = av_asprintf("file:%s", tmp); /* "file:" so ':' in names is harmless */
    if (!url) return vx_fail(err, VX_ENOMEM, "%s: out of memory", p->src);
    ret = avio_open(&p->oc->pb, url, AVIO_FLAG_WRITE);
    /* faststart reopens the file by this name to move the index to the front. */
    av_freep(&p->oc->url);
    p->oc->url = url;
    if (ret < 0) return vx_fail(err, VX_EIO, "cannot create %s: %s", tmp, av_err2str(ret));
    AVDictionary *opts = NULL;
    /* moov first, so the browser can start before the whole file arrives. */
    if (plan->container == MEDIA_PLAY_MP4) av_dict_set(&opts, "movflags", "+faststart", 0);
    ret = avformat_write_header(p->oc, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot start the %s file: %s", p->src, muxer,
                       av_err2str(ret));

    AVPacket *pkt = p->r->pkt;
    int read_error = 0;
    for (;;) {
        if ((st = check_limits(p, err))) return st;
        av_packet_unref(pkt);
        ret = av_read_frame(p->r->fmt, pkt);
        if (ret == AVERROR(EAGAIN)) continue;
        if (ret < 0) {
            read_error = ret != AVERROR_EOF ? ret : 0;
            break;
        }
        if (pkt->stream_index == p->vin) {
            st = plan->copy_video ? copy_packet(p, pkt, p->vout, err)
                                  : decode_and_encode(p, p->r->vdec, pkt, 1, err);
        } else if (pkt->stream_index == p->ain) {
            st = plan->copy_audio ? copy_packet(p, pkt, p->aout, err)
                                  : decode_and_encode(p, p->r->adec, pkt, 0, err);
        } else {
            continue;
        }
        if (st) return st;
    }
    av_packet_unref(pkt);
    /* Flush: decoders, the resampler and the fifo's last partial frame, then the encoders. */
    if (p->venc) {
        if ((st = decode_and_encode(p, p->r->vdec, NULL, 1, err))) return st;
        avcodec_send_frame(p->venc, NULL);
        if ((st = drain_encoder(p, p->venc, p->vout, err))) return st;
    }
    if (p->aenc) {
        if ((st = decode_and_encode(p, p->r->adec, NULL, 0, err))) return st;
        if ((st = push_audio(p, NULL, err))) return st;
        if ((st = encode_audio_fifo(p, 1, err))) return st;
        avcodec_send_frame(p->aenc, NULL);
        if ((st = drain_encoder(p, p->aenc, p->aout, err))) return st;
    }
    if ((st = check_limits(p, err))) return st;
    /* A source that ends well before its stated duration is truncated: refuse to cache a
     * half video that would look complete. */
    if (read_error) media_warn_corrupt(p->r, "unreadable data at the end", read_error);
    if (p->end_ms <= 0 || (p->duration_ms > 0 && p->end_ms < p->duration_ms * 9 / 10 - 500))
        return vx_fail(err, VX_ECORRUPT,
                       "%s: only %.1f s of %.1f s could be read (truncated or damaged file)",
                       p->src, (double)p->end_ms / 1000.0, (double)p->duration_ms / 1000.0);
    ret = av_write_trailer(p->oc);
    if (ret < 0)
        return vx_fail(err, VX_EIO, "%s: cannot finish %s: %s", p->src, tmp, av_err2str(ret));
    ret = avio_closep(&p->oc->pb);
    if (ret < 0) return vx_fail(err, VX_EIO, "cannot write %s: %s", tmp, av_err2str(ret));
    return VX_OK;
}

static void producer_free(producer *p)
{
    if (p->oc) {
        if (p->oc->pb) avio_closep(&p->oc->pb);
        avformat_free_context(p->oc);
    }
    av_packet_free(&p->opkt);
    avcodec_free_context(&p->venc);
    avcodec_free_context(&p->aenc);
    av_frame_free(&p->vframe);
    av_frame_free(&p->rframe);
    av_frame_free(&p->aframe);
    sws_freeContext(p->sws);
    swr_free(&p->swr);
    if (p->fifo) av_audio_fifo_free(p->fifo);
    if (p->conv) av_freep(&p->conv[0]);
    av_freep(&p->conv);
    media_close(p->r);
}

/* dir/.tmp-<pid>-<tid>-<base>: unique per thread, recognisable by the cache's cleanup. */
static char *temp_path_for(const char *dst, vx_err *err)
{
    const char *slash = strrchr(dst, '/');
    int dir_len = slash ? (int)(slash - dst + 1) : 0;
    return vx_asprintf(err, "%.*s.tmp-%ld-%ld-%s", dir_len, dst, (long)getpid(),
                       (long)syscall(SYS_gettid), dst + dir_len);
}

vx_status media_play_produce(const char *src_path, const media_play_plan *plan,
                             const char *dst_path, const volatile int *stop, int64_t timeout_ms,
                             int64_t max_bytes, volatile double *progress, vx_err *err)
{
    if (!src_path || !plan || !dst_path)
        return vx_fail(err, VX_EINVAL, "media_play_produce: NULL argument");
    if (plan->action != MEDIA_PLAY_REMUX && plan->action != MEDIA_PLAY_TRANSCODE)
        return vx_fail(err, VX_EINVAL, "%s: plays as is; nothing to produce", src_path);
    producer p = {.src = src_path,
                  .plan = plan,
                  .stop = stop,
                  .progress = progress,
                  .max_bytes = max_bytes,
                  .timeout_ms = timeout_ms,
                  .vin = -1,
                  .vout = -1,
                  .ain = -1,
                  .aout = -1};
    if (timeout_ms > 0) p.deadline_ns = vx_now_ns() + timeout_ms * 1000000;
    double zero = 0, one = 1;
    if (progress) __atomic_store(progress, &zero, __ATOMIC_RELAXED);
    vx_status st = media_open_for_play(src_path, &p.r, err);
    if (st) return st;
    const media_info *info = media_get_info(p.r);
    int nb = (int)p.r->fmt->nb_streams;
    if (plan->video_stream >= nb || plan->audio_stream >= nb ||
        (plan->video_stream >= 0 && plan->video_stream != info->video.stream_index) ||
        (plan->video_stream < 0 && plan->audio_stream < 0)) {
        media_close(p.r);
        return vx_fail(err, VX_ESTALE, "%s: the playback plan does not match the file (changed?)",
                       src_path);
    }
    p.vin = plan->video_stream;
    p.ain = plan->audio_stream;
    p.duration_ms = info->duration_ms;
    char *tmp = temp_path_for(dst_path, err);
    if (!tmp) {
        media_close(p.r);
        return err ? err->status : VX_ENOMEM;
    }
    st = run_producer(&p, tmp, err);
    producer_free(&p);
    if (st == VX_OK) {
        /* Durable before it becomes visible under its final name. */
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
            st = vx_fail(err, VX_EIO, "cannot sync %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (st == VX_OK && rename(tmp, dst_path) != 0)
        st = vx_fail(err, VX_EIO, "cannot rename %s to %s: %s", tmp, dst_path, strerror(errno));
    if (st != VX_OK) unlink(tmp);
    free(tmp);
    if (st == VX_OK && progress) __atomic_store(progress, &one, __ATOMIC_RELAXED);
    return st;
}
