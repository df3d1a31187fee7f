/* media_reader.c — opening a file or memory buffer with libavformat, probing its streams into
 * media_info, the decoders' setup, and the packet-level helpers (seek, read) that the video
 * and audio paths share. */
#include "media_internal.h"

#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavutil/avstring.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

/* ---- FFmpeg's log --------------------------------------------------------------------- */

/* FFmpeg prints to stderr by default; a library of ours must not. Its messages (often several
 * per damaged packet) go to vx_log at debug level; what matters reaches the user as our own
 * one-line warnings and errors. The callback is process-wide, installed once. */
static void ffmpeg_log(void *avcl, int level, const char *fmt, va_list args)
{
    if (level > AV_LOG_WARNING || vx_log_threshold() > VX_LOG_DEBUG) return;
    static _Thread_local int print_prefix = 1;
    char line[1024];
    av_log_format_line2(avcl, level, fmt, args, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n > 0) vx_log(VX_LOG_DEBUG, "ffmpeg: %s", line);
}

static void install_log_once(void)
{
    av_log_set_callback(ffmpeg_log);
}

static void install_log(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_log_once);
}

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, MEDIA_NAME_MAX, "%s", src ? src : "");
}

static int64_t ts_to_ms(int64_t ts, AVRational tb)
{
    if (ts == AV_NOPTS_VALUE || ts <= 0) return 0;
    return av_rescale_q(ts, tb, (AVRational){1, 1000});
}

void media_warn_corrupt(media_reader *r, const char *what, int averr)
{
    r->decode_errors++;
    if (r->warnings < MEDIA_MAX_WARNINGS) {
        r->warnings++;
        vx_log(VX_LOG_WARN, "%s: skipped %s (%s)%s", r->name, what, av_err2str(averr),
               r->warnings == MEDIA_MAX_WARNINGS ? "; further errors are only counted" : "");
    }
}

int64_t media_origin_in(const media_reader *r, AVRational tb)
{
    return av_rescale_q(r->origin_us, AV_TIME_BASE_Q, tb);
}

int media_seek_stream(media_reader *r, int stream_index, int64_t target_ts)
{
    int ret = av_seek_frame(r->fmt, stream_index, target_ts, AVSEEK_FLAG_BACKWARD);
    if (ret >= 0) return 0;
    /* Some demuxers cannot seek by time: go back to the start (time, then byte 0). */
    int64_t start = r->fmt->start_time != AV_NOPTS_VALUE ? r->fmt->start_time : 0;
    ret = av_seek_frame(r->fmt, -1, start, AVSEEK_FLAG_BACKWARD);
    if (ret >= 0) return 0;
    ret = av_seek_frame(r->fmt, -1, 0, AVSEEK_FLAG_BYTE);
    return ret < 0 ? ret : 0;
}

int media_read_packet(media_reader *r, int stream_index)
{
    for (;;) {
        av_packet_unref(r->pkt);
        int ret = av_read_frame(r->fmt, r->pkt);
        if (ret == AVERROR(EAGAIN)) continue;
        if (ret < 0) {
            if (ret != AVERROR_EOF) media_warn_corrupt(r, "unreadable data at the end", ret);
            return ret == AVERROR_EOF ? ret : AVERROR_EOF;
        }
        if (r->pkt->stream_index == stream_index) return 0;
    }
}

/* ---- custom I/O over a memory buffer ---------------------------------------------------- */

static int mem_read(void *opaque, uint8_t *buf, int buf_size)
{
    media_reader *r = opaque;
    if (r->mem_pos >= (int64_t)r->mem_size) return AVERROR_EOF;
    size_t left = r->mem_size - (size_t)r->mem_pos;
    size_t n = (size_t)buf_size < left ? (size_t)buf_size : left;
    memcpy(buf, r->mem_data + r->mem_pos, n);
    r->mem_pos += (int64_t)n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    media_reader *r = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return (int64_t)r->mem_size;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = r->mem_pos;
        break;
    case SEEK_END:
        base = (int64_t)r->mem_size;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if ((offset > 0 && base > INT64_MAX - offset) || base + offset < 0) return AVERROR(EINVAL);
    r->mem_pos = base + offset;
    return r->mem_pos;
}

/* ---- probe ------------------------------------------------------------------------------ */

static int rotation_of(const AVStream *st)
{
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!m || size < 9 * sizeof(int32_t)) return 0;
    double theta = -av_display_rotation_get((const int32_t *)m);
    if (theta != theta) return 0; /* NaN: degenerate matrix */
    long quarter = lround(theta / 90.0);
    int deg = (int)(((quarter % 4) + 4) % 4) * 90;
    return deg;
}

static void probe_video(media_reader *r, const AVStream *st)
{
    media_video_info *v = &r->info.video;
    const AVCodecParameters *par = st->codecpar;
    v->stream_index = st->index;
    copy_name(v->codec_name, avcodec_get_name(par->codec_id));
    v->width_px = par->width;
    v->height_px = par->height;
    v->rotation_deg = rotation_of(st);
    int swap = v->rotation_deg == 90 || v->rotation_deg == 270;
    v->upright_width_px = swap ? par->height : par->width;
    v->upright_height_px = swap ? par->width : par->height;
    v->avg_fps = st->avg_frame_rate.den ? av_q2d(st->avg_frame_rate) : 0.0;
    v->r_fps = st->r_frame_rate.den ? av_q2d(st->r_frame_rate) : 0.0;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get((enum AVPixelFormat)par->format);
    copy_name(v->pix_fmt, desc ? desc->name : "unknown");
    v->bit_depth = desc ? desc->comp[0].depth : 0;
    const char *cs = av_color_space_name(par->color_space);
    copy_name(v->color_matrix, cs ? cs : "unknown");
    v->color_range_full =
        par->color_range == AVCOL_RANGE_JPEG || (desc && strncmp(desc->name, "yuvj", 4) == 0);
    v->interlaced =
        par->field_order != AV_FIELD_UNKNOWN && par->field_order != AV_FIELD_PROGRESSIVE;
    v->duration_ms = st->duration != AV_NOPTS_VALUE ? ts_to_ms(st->duration, st->time_base)
                                                    : r->info.duration_ms;
    v->frame_count = st->nb_frames > 0 ? st->nb_frames : 0;
}

static void probe_streams(media_reader *r)
{
    AVFormatContext *fmt = r->fmt;
    media_info *info = &r->info;
    copy_name(info->container, fmt->iformat ? fmt->iformat->name : "unknown");
    info->duration_ms = fmt->duration > 0 ? fmt->duration / 1000 : 0;
    info->bit_rate_bps = fmt->bit_rate > 0 ? fmt->bit_rate : 0;
    /* Time 0 is the container's start when that is positive (MPEG-TS/PS clocks start
     * anywhere); a negative start comes from codec priming (Opus pre-skip, AAC padding) that
     * is not content, so the timeline stays at the stored timestamps then. */
    r->origin_us = fmt->start_time != AV_NOPTS_VALUE && fmt->start_time > 0 ? fmt->start_time : 0;

    r->vstream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (r->vstream >= 0 && (fmt->streams[r->vstream]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        r->vstream = -1; /* cover art is not video */
    if (r->vstream >= 0) {
        info->has_video = 1;
        probe_video(r, fmt->streams[r->vstream]);
    }
    r->astream = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, r->vstream, NULL, 0);
    if (r->astream < 0) r->astream = -1;

    /* The best audio stream first, then the others in file order. */
    if (r->astream >= 0) {
        const AVStream *st = fmt->streams[r->astream];
        media_audio_info *a = &info->audio[info->audio_count++];
        a->stream_index = st->index;
        copy_name(a->codec_name, avcodec_get_name(st->codecpar->codec_id));
        a->sample_rate_hz = st->codecpar->sample_rate;
        a->channels = st->codecpar->ch_layout.nb_channels;
        const AVDictionaryEntry *lang = av_dict_get(st->metadata, "language", NULL, 0);
        copy_name(a->language, lang ? lang->value : "");
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        const AVDictionaryEntry *lang = av_dict_get(st->metadata, "language", NULL, 0);
        if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && (int)i != r->astream &&
            info->audio_count < MEDIA_MAX_AUDIO_STREAMS) {
            media_audio_info *a = &info->audio[info->audio_count++];
            a->stream_index = (int)i;
            copy_name(a->codec_name, avcodec_get_name(st->codecpar->codec_id));
            a->sample_rate_hz = st->codecpar->sample_rate;
            a->channels = st->codecpar->ch_layout.nb_channels;
            copy_name(a->language, lang ? lang->value : "");
        } else if (st->codecpar->codec_type == AVMEDIA_TYPE_SUBTITLE &&
                   info->subtitle_count < MEDIA_MAX_SUBTITLE_STREAMS) {
            media_subtitle_info *s = &info->subtitle[info->subtitle_count++];
            s->stream_index = (int)i;
            copy_name(s->codec_name, avcodec_get_name(st->codecpar->codec_id));
            copy_name(s->language, lang ? lang->value : "");
        }
    }
}

/* Opens a decoder for stream index; fills err naming the codec when it cannot. */
static vx_status open_decoder(media_reader *r, int index, int threads, AVCodecContext **out,
                              vx_err *err)
{
    const AVStream *st = r->fmt->streams[index];
    const char *kind = st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ? "video" : "audio";
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec && st->codecpar->codec_id == AV_CODEC_ID_NONE)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: unknown %s codec (tag %s), not supported",
                       r->name, kind, av_fourcc2str(st->codecpar->codec_tag));
    if (!codec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: %s codec %s is not supported", r->name, kind,
                       avcodec_get_name(st->codecpar->codec_id));
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    if (!ctx) return vx_fail(err, VX_ENOMEM, "%s: out of memory for a decoder", r->name);
    int ret = avcodec_parameters_to_context(ctx, st->codecpar);
    if (ret >= 0) {
        ctx->pkt_timebase = st->time_base;
        ctx->thread_count = threads;
        ret = avcodec_open2(ctx, codec, NULL);
    }
    if (ret < 0) {
        avcodec_free_context(&ctx);
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot open the %s decoder %s: %s", r->name, kind,
                       codec->name, av_err2str(ret));
    }
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        (ctx->width <= 0 || ctx->height <= 0 || ctx->pix_fmt == AV_PIX_FMT_NONE)) {
        avcodec_free_context(&ctx);
        return vx_fail(err, VX_ECORRUPT,
                       "%s: the %s video stream has no usable frame size or pixel format "
                       "(truncated or damaged file?)",
                       r->name, avcodec_get_name(st->codecpar->codec_id));
    }
    *out = ctx;
    return VX_OK;
}

static vx_status finish_open(media_reader *r, unsigned flags, vx_err *err)
{
    AVDictionary *opts = NULL;
    /* Only plain files (and, for custom I/O, nothing): a playlist in a video file must not
     * make us open network URLs or other local files. */
    av_dict_set(&opts, "protocol_whitelist", r->avio ? "none" : "file", 0);
    const char *url = r->avio ? r->name : NULL;
    char *file_url = NULL;
    if (!r->avio) {
        file_url = av_asprintf("file:%s", r->name); /* "file:" so ':' in names is harmless */
        if (!file_url) {
            av_dict_free(&opts);
            return vx_fail(err, VX_ENOMEM, "%s: out of memory", r->name);
        }
        url = file_url;
    }
    int ret = avformat_open_input(&r->fmt, url, NULL, &opts);
    av_dict_free(&opts);
    av_free(file_url);
    if (ret < 0) {
        r->fmt = NULL; /* freed by avformat_open_input on failure */
        if (ret == AVERROR(ENOENT)) return vx_fail(err, VX_ENOTFOUND, "%s: no such file", r->name);
        if (ret == AVERROR_INVALIDDATA)
            return vx_fail(err, VX_EFORMAT,
                           "%s: not a media file FFmpeg can read (unknown format, or damaged)",
                           r->name);
        return vx_fail(err, VX_EFORMAT, "%s: cannot open as media: %s", r->name, av_err2str(ret));
    }
    ret = avformat_find_stream_info(r->fmt, NULL);
    if (ret < 0)
        return vx_fail(err, VX_ECORRUPT,
                       "%s: cannot read stream information (%s); truncated or damaged file?",
                       r->name, av_err2str(ret));
    if (r->fmt->nb_streams == 0)
        return vx_fail(err, VX_EFORMAT, "%s: no audio or video streams (not a media file?)",
                       r->name);
    probe_streams(r);

    r->pkt = av_packet_alloc();
    r->prev = av_frame_alloc();
    r->pending = av_frame_alloc();
    r->scratch = av_frame_alloc();
    r->aframe = av_frame_alloc();
    if (!r->pkt || !r->prev || !r->pending || !r->scratch || !r->aframe)
        return vx_fail(err, VX_ENOMEM, "%s: out of memory", r->name);

    if (r->vstream >= 0) {
        /* Memory readers (fuzzing, uploads) decode on the calling thread only. */
        vx_status st = open_decoder(r, r->vstream, r->avio ? 1 : 0, &r->vdec, err);
        if (st != VX_OK) {
            if (flags & MEDIA_NEED_VIDEO) return st;
            vx_log(VX_LOG_WARN, "%s", err->msg);
            vx_err_clear(err);
            r->info.has_video = 0;
            r->vstream = -1;
        }
    }
    if ((flags & MEDIA_NEED_VIDEO) && r->vstream < 0) {
        if (r->astream >= 0)
            return vx_fail(err, VX_EUNSUPPORTED, "%s: has no video stream (audio only)", r->name);
        return vx_fail(err, VX_EUNSUPPORTED, "%s: has no video stream", r->name);
    }
    if (r->astream >= 0) {
        vx_status st = open_decoder(r, r->astream, 1, &r->adec, err);
        if (st != VX_OK) {
            if (flags & MEDIA_NEED_AUDIO) return st;
            vx_log(VX_LOG_WARN, "%s", err->msg);
            vx_err_clear(err);
            r->astream = -1;
        }
    }
    if ((flags & MEDIA_NEED_AUDIO) && r->astream < 0)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: has no audio stream", r->name);
    r->sws_colorspace = -1;
    r->sws_range = -1;
    r->last_pts = AV_NOPTS_VALUE;
    return VX_OK;
}

static media_reader *reader_new(const char *name, vx_err *err)
{
    install_log();
    media_reader *r = vx_calloc_array(1, sizeof *r, err);
    if (!r) return NULL;
    r->vstream = -1;
    r->astream = -1;
    r->name = vx_strdup(name ? name : "(unnamed)", err);
    if (!r->name) {
        free(r);
        return NULL;
    }
    return r;
}

vx_status media_open(const char *path, unsigned flags, media_reader **out, vx_err *err)
{
    if (!out) return vx_fail(err, VX_EINVAL, "media_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return vx_fail(err, VX_EINVAL, "media_open: empty path");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        if (e == ENOENT) return vx_fail(err, VX_ENOTFOUND, "%s: no such file", path);
        return vx_fail(err, VX_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode))
        return vx_fail(err, VX_EINVAL, "%s: is a folder, not a media file", path);
    if (S_ISREG(sb.st_mode) && sb.st_size == 0)
        return vx_fail(err, VX_EFORMAT, "%s: empty file (0 bytes), not a media file", path);

    media_reader *r = reader_new(path, err);
    if (!r) return err ? err->status : VX_ENOMEM;
    vx_status st = finish_open(r, flags, err);
    if (st != VX_OK) {
        media_close(r);
        return st;
    }
    *out = r;
    return VX_OK;
}

vx_status media_open_memory(const void *data, size_t size_bytes, const char *name, unsigned flags,
                            media_reader **out, vx_err *err)
{
    if (!out) return vx_fail(err, VX_EINVAL, "media_open_memory: out is NULL");
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data || size_bytes == 0)
        return vx_fail(err, VX_EFORMAT, "%s: empty buffer (0 bytes), not a media file", name);
    media_reader *r = reader_new(name, err);
    if (!r) return err ? err->status : VX_ENOMEM;
    r->mem_data = data;
    r->mem_size = size_bytes;
    const int io_size = 4096;
    uint8_t *io_buf = av_malloc(io_size);
    r->fmt = avformat_alloc_context();
    if (io_buf) r->avio = avio_alloc_context(io_buf, io_size, 0, r, mem_read, NULL, mem_seek);
    if (!io_buf || !r->fmt || !r->avio) {
        if (!r->avio) av_free(io_buf);
        media_close(r);
        return vx_fail(err, VX_ENOMEM, "%s: out of memory", name);
    }
    r->fmt->pb = r->avio;
    r->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    vx_status st = finish_open(r, flags, err);
    if (st != VX_OK) {
        media_close(r);
        return st;
    }
    *out = r;
    return VX_OK;
}

void media_close(media_reader *r)
{
    if (!r) return;
    avcodec_free_context(&r->vdec);
    avcodec_free_context(&r->adec);
    av_frame_free(&r->prev);
    av_frame_free(&r->pending);
    av_frame_free(&r->scratch);
    av_frame_free(&r->aframe);
    av_packet_free(&r->pkt);
    sws_freeContext(r->sws);
    swr_free(&r->swr);
    avformat_close_input(&r->fmt);
    if (r->avio) {
        av_freep(&r->avio->buffer);
        avio_context_free(&r->avio);
    }
    free(r->rot_buf);
    free(r->name);
    free(r);
}

const media_info *media_get_info(const media_reader *r)
{
    return r ? &r->info : NULL;
}

int64_t media_decode_errors(const media_reader *r)
{
    return r ? r->decode_errors : 0;
}
