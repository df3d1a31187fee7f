/* media_video.c — video decoding and frame sampling: the "middle" rule on timestamps
 * (seek near the window, decode forward, keep the last frame whose pts <= each target), the
 * fact sheet's index rule over a frame range, and conversion of the chosen frames to upright
 * packed RGB24 through swscale (colour matrix and range from the frame, rotation from the
 * stream's display matrix).
 *
 * Interlaced sources are not deinterlaced: the frame is converted as woven fields. After the
 * encoder's squash to 224x224 the combing is below a pixel on typical content, and libavfilter
 * is not among our dependencies; media_video_info.interlaced says when this applies. */
#include "media_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

/* Beyond this gap from the last decoded frame, a seek is considered (when the index says a
 * keyframe lies in between, or the demuxer has no index). */
#define MEDIA_DENSE_GAP_MS 2000
#define MEDIA_MAX_FRAMES 4096
/* Consecutive decoder errors after which a stream is given up as damaged. */
#define MEDIA_MAX_CONSECUTIVE_ERRORS 1000

void media_frames_free(media_frames *f)
{
    if (!f) return;
    free(f->rgb);
    free(f->pts_ms);
    free(f->frame_index);
    memset(f, 0, sizeof *f);
}

/* Makes room for count frames of width x height, reusing the buffers when large enough. */
static vx_status frames_reserve(media_frames *f, int count, int width, int height, vx_err *err)
{
    size_t bytes = (size_t)count * (size_t)width * (size_t)height * 3u;
    if (bytes > f->capacity_bytes) {
        uint8_t *p = realloc(f->rgb, bytes);
        if (!p)
            return vx_fail(err, VX_ENOMEM, "out of memory for %d frames of %dx%d", count, width,
                           height);
        f->rgb = p;
        f->capacity_bytes = bytes;
    }
    if (count > f->capacity_frames) {
        int64_t *a = realloc(f->pts_ms, (size_t)count * sizeof *a);
        if (a) f->pts_ms = a;
        int64_t *b = a ? realloc(f->frame_index, (size_t)count * sizeof *b) : NULL;
        if (b) f->frame_index = b;
        if (!a || !b) return vx_fail(err, VX_ENOMEM, "out of memory for %d frames", count);
        f->capacity_frames = count;
    }
    f->count = count;
    f->width_px = width;
    f->height_px = height;
    return VX_OK;
}

/* ---- decoding --------------------------------------------------------------------------- */

/* Time of a decoded frame in the stream's time base (best effort, never NOPTS). */
static int64_t frame_ts(media_reader *r, const AVFrame *f)
{
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = f->pts;
    if (ts == AV_NOPTS_VALUE) {
        if (r->last_pts == AV_NOPTS_VALUE) {
            ts = media_origin_in(r, r->fmt->streams[r->vstream]->time_base);
        } else {
            int64_t step = f->pkt_duration > 0 ? f->pkt_duration : 1;
            ts = r->last_pts + step;
        }
    }
    r->last_pts = ts;
    return ts;
}

/* Decodes the next frame into r->scratch, its timestamp in scratch->pts. Returns 0, or
 * AVERROR_EOF when the stream has no more frames. */
static int decode_next(media_reader *r)
{
    int consecutive_errors = 0;
    for (;;) {
        if (r->video_eof) return AVERROR_EOF;
        int ret = avcodec_receive_frame(r->vdec, r->scratch);
        if (ret == 0) {
            r->scratch->pts = frame_ts(r, r->scratch);
            return 0;
        }
        if (ret == AVERROR_EOF) {
            r->video_eof = 1;
            return AVERROR_EOF;
        }
        if (ret != AVERROR(EAGAIN)) {
            media_warn_corrupt(r, "a video frame that failed to decode", ret);
            if (++consecutive_errors > MEDIA_MAX_CONSECUTIVE_ERRORS) {
                r->video_eof = 1;
                return AVERROR_EOF;
            }
            continue;
        }
        if (r->video_flushing) { /* EAGAIN after the flush packet: nothing more comes */
            r->video_eof = 1;
            return AVERROR_EOF;
        }
        ret = media_read_packet(r, r->vstream);
        if (ret < 0) {
            r->video_flushing = 1;
            avcodec_send_packet(r->vdec, NULL);
            continue;
        }
        ret = avcodec_send_packet(r->vdec, r->pkt);
        av_packet_unref(r->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) {
            media_warn_corrupt(r, "a damaged video packet", ret);
            if (++consecutive_errors > MEDIA_MAX_CONSECUTIVE_ERRORS) {
                r->video_eof = 1;
                return AVERROR_EOF;
            }
        }
    }
}

static int64_t ts_to_ms_rel(const media_reader *r, int64_t ts);
static int64_t ms_to_ts(const media_reader *r, int64_t ms);

/* Forgets the decoder's frames after the demuxer moved. */
static void reset_video(media_reader *r, int seek_ret)
{
    avcodec_flush_buffers(r->vdec);
    av_frame_unref(r->prev);
    av_frame_unref(r->pending);
    r->has_prev = r->has_pending = 0;
    r->video_eof = r->video_flushing = 0;
    r->last_pts = AV_NOPTS_VALUE;
    r->positioned = seek_ret >= 0;
}

/* Positions the decoder so the next decoded frames start at a keyframe at or before ts. */
static int video_seek(media_reader *r, int64_t ts)
{
    vx_log(VX_LOG_DEBUG, "%s: seeking video to %" PRId64 " ms", r->name, ts_to_ms_rel(r, ts));
    int ret = media_seek_stream(r, r->vstream, ts);
    reset_video(r, ret);
    return ret;
}

/* Positions the decoder at the very first frame. Containers with timestamp discontinuities
 * (MPEG-TS/PS) seek by time only approximately, and may land a GOP late even for time 0:
 * those go to byte 0 instead. */
static int video_seek_start(media_reader *r)
{
    const AVInputFormat *ifmt = r->fmt->iformat;
    if ((ifmt->flags & AVFMT_TS_DISCONT) && !(ifmt->flags & AVFMT_NO_BYTE_SEEK)) {
        vx_log(VX_LOG_DEBUG, "%s: seeking video to byte 0", r->name);
        int ret = av_seek_frame(r->fmt, -1, 0, AVSEEK_FLAG_BYTE);
        if (ret >= 0) {
            reset_video(r, ret);
            return ret;
        }
    }
    return video_seek(r, ms_to_ts(r, 0));
}

/* Is the frame time ts (stream time base) <= target_num / target_den milliseconds? Exact,
 * in 128-bit integers. */
static int ts_at_or_before(const media_reader *r, int64_t ts, __int128 target_num,
                           int64_t target_den)
{
    AVRational tb = r->fmt->streams[r->vstream]->time_base;
    __int128 rel = (__int128)ts - media_origin_in(r, tb);
    const __int128 limit = (__int128)1 << 62;
    if (rel > limit) rel = limit;
    if (rel < -limit) rel = -limit;
    return rel * tb.num * 1000 * target_den <= target_num * tb.den;
}

/* Stream timestamp of a time in milliseconds (rounded down). */
static int64_t ms_to_ts(const media_reader *r, int64_t ms)
{
    AVRational tb = r->fmt->streams[r->vstream]->time_base;
    return media_origin_in(r, tb) +
           av_rescale_q_rnd(ms, (AVRational){1, 1000}, tb, AV_ROUND_DOWN | AV_ROUND_PASS_MINMAX);
}

static int64_t ts_to_ms_rel(const media_reader *r, int64_t ts)
{
    AVRational tb = r->fmt->streams[r->vstream]->time_base;
    return av_rescale_q(ts - media_origin_in(r, tb), tb, (AVRational){1, 1000});
}

/* Should reaching target (ms) from the decoder's position take a seek? */
static int needs_seek(media_reader *r, int64_t target_ms, __int128 tnum, int64_t tden)
{
    if (!r->positioned) return 1;
    if (r->has_prev && !ts_at_or_before(r, r->prev->pts, tnum, tden)) return 1;       /* backward */
    if (r->has_pending && !ts_at_or_before(r, r->pending->pts, tnum, tden)) return 0; /* here */
    if (r->video_eof) return 0;
    const AVFrame *latest = r->has_pending ? r->pending : r->has_prev ? r->prev : NULL;
    if (!latest) return 0; /* just seeked */
    int64_t gap_ms = target_ms - ts_to_ms_rel(r, latest->pts);
    if (gap_ms <= MEDIA_DENSE_GAP_MS) return 0;
    AVStream *st = r->fmt->streams[r->vstream];
    int idx = av_index_search_timestamp(st, ms_to_ts(r, target_ms), AVSEEK_FLAG_BACKWARD);
    if (idx >= 0) {
        const AVIndexEntry *e = avformat_index_get_entry(st, idx);
        if (e && e->timestamp <= latest->pts) return 0; /* no keyframe in between */
    }
    return 1;
}

/* Seeks for target and makes sure the decoder starts at or before it: a demuxer may land
 * after the requested time, so back off further (1 s, 2 s, 4 s, ...) and finally to the start. */
static void seek_for_target(media_reader *r, int64_t target_ms, __int128 tnum, int64_t tden)
{
    int64_t back_ms = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        int64_t seek_ms = target_ms - back_ms;
        if (seek_ms < 0) seek_ms = 0;
        if (seek_ms == 0) {
            video_seek_start(r);
            return;
        }
        video_seek(r, ms_to_ts(r, seek_ms));
        if (decode_next(r) < 0) { /* nothing after the seek point: try earlier */
            back_ms = back_ms ? back_ms * 2 : 1000;
            continue;
        }
        if (ts_at_or_before(r, r->scratch->pts, tnum, tden)) {
            av_frame_move_ref(r->prev, r->scratch);
            r->has_prev = 1;
            r->prev_serial = ++r->serial;
            return;
        }
        /* Landed after the target: only fine when this is the stream's first frame. */
        AVStream *st = r->fmt->streams[r->vstream];
        int64_t first =
            st->start_time != AV_NOPTS_VALUE ? st->start_time : media_origin_in(r, st->time_base);
        if (r->scratch->pts <= first) {
            av_frame_move_ref(r->pending, r->scratch);
            r->has_pending = 1;
            r->pending_serial = ++r->serial;
            return;
        }
        back_ms = back_ms ? back_ms * 2 : 1000;
    }
    video_seek_start(r);
}

/* Advances until prev is the last frame with time <= target (or the first frame when every
 * frame is later). Returns the chosen frame, or NULL when the stream has no frame at all. */
static const AVFrame *advance_to(media_reader *r, int64_t target_ms, __int128 tnum, int64_t tden,
                                 int64_t *serial)
{
    if (needs_seek(r, target_ms, tnum, tden)) seek_for_target(r, target_ms, tnum, tden);
    for (;;) {
        if (r->has_pending) {
            if (!ts_at_or_before(r, r->pending->pts, tnum, tden)) break;
            av_frame_unref(r->prev);
            av_frame_move_ref(r->prev, r->pending);
            r->has_prev = 1;
            r->has_pending = 0;
            r->prev_serial = r->pending_serial;
        }
        if (decode_next(r) < 0) break;
        av_frame_move_ref(r->pending, r->scratch);
        r->has_pending = 1;
        r->pending_serial = ++r->serial;
    }
    if (r->has_prev) {
        *serial = r->prev_serial;
        return r->prev;
    }
    if (r->has_pending) { /* target before the first frame */
        *serial = r->pending_serial;
        return r->pending;
    }
    return NULL;
}

/* ---- RGB conversion --------------------------------------------------------------------- */

static int sws_colorspace_of(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709:
        return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
        return SWS_CS_FCC;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
        return SWS_CS_ITU601;
    case AVCOL_SPC_SMPTE240M:
        return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        return SWS_CS_BT2020;
    default:
        return SWS_CS_DEFAULT; /* unspecified: BT.601, as FFmpeg (and decord) assume */
    }
}

/* Rotates a packed RGB24 image clockwise by deg (90, 180, 270).
 * src: [h, w, 3] -> dst: [w, h, 3] for 90/270, [h, w, 3] for 180. */
static void rotate_rgb24(const uint8_t *src, int w, int h, int deg, uint8_t *dst)
{
    if (deg == 180) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                memcpy(dst + ((size_t)(h - 1 - y) * w + (w - 1 - x)) * 3,
                       src + ((size_t)y * w + x) * 3, 3);
    } else if (deg == 90) { /* dst (width h, height w): dst[x][h-1-y] = src[y][x] */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                memcpy(dst + ((size_t)x * h + (h - 1 - y)) * 3, src + ((size_t)y * w + x) * 3, 3);
    } else { /* 270: dst[w-1-x][y] = src[y][x] */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                memcpy(dst + ((size_t)(w - 1 - x) * h + y) * 3, src + ((size_t)y * w + x) * 3, 3);
    }
}

/* frame -> dst: [upright_h, upright_w, 3] packed RGB24. */
static vx_status convert_frame(media_reader *r, const AVFrame *f, uint8_t *dst, vx_err *err)
{
    const media_video_info *v = &r->info.video;
    int w = v->width_px, h = v->height_px;
    if (f->width <= 0 || f->height <= 0 || f->format < 0)
        return vx_fail(err, VX_ECORRUPT, "%s: decoded a frame without size or format", r->name);
    struct SwsContext *sws = sws_getCachedContext(
        r->sws, f->width, f->height, (enum AVPixelFormat)f->format, w, h, AV_PIX_FMT_RGB24,
        SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!sws)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot convert %s %dx%d frames to RGB", r->name,
                       av_get_pix_fmt_name((enum AVPixelFormat)f->format), f->width, f->height);
    if (sws != r->sws) r->sws_colorspace = r->sws_range = -1;
    r->sws = sws;
    int cs = sws_colorspace_of(f->colorspace);
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get((enum AVPixelFormat)f->format);
    int full = f->color_range == AVCOL_RANGE_JPEG || (desc && strncmp(desc->name, "yuvj", 4) == 0);
    if (cs != r->sws_colorspace || full != r->sws_range) {
        /* Fails harmlessly for RGB sources, where no matrix applies. */
        sws_setColorspaceDetails(sws, sws_getCoefficients(cs), full,
                                 sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
        r->sws_colorspace = cs;
        r->sws_range = full;
    }
    uint8_t *target = dst;
    if (v->rotation_deg) {
        size_t need = (size_t)w * (size_t)h * 3u;
        if (need > r->rot_cap) { /* once per reader (frame size is fixed per stream) */
            uint8_t *p = realloc(r->rot_buf, need);
            if (!p) return vx_fail(err, VX_ENOMEM, "%s: out of memory", r->name);
            r->rot_buf = p;
            r->rot_cap = need;
        }
        target = r->rot_buf;
    }
    uint8_t *planes[4] = {target, NULL, NULL, NULL};
    int strides[4] = {w * 3, 0, 0, 0};
    int rows =
        sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, planes, strides);
    if (rows != h)
        return vx_fail(err, VX_ECORRUPT, "%s: RGB conversion produced %d of %d rows", r->name, rows,
                       h);
    if (v->rotation_deg) rotate_rgb24(target, w, h, v->rotation_deg, dst);
    return VX_OK;
}

/* ---- the middle rule on timestamps ------------------------------------------------------ */

static vx_status need_video(media_reader *r, vx_err *err)
{
    if (!r) return vx_fail(err, VX_EINVAL, "media: reader is NULL");
    if (r->vstream < 0 || !r->vdec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: has no decodable video stream", r->name);
    return VX_OK;
}

vx_status media_sample_window(media_reader *r, int64_t start_ms, int64_t end_ms, int num_frames,
                              media_frames *out, vx_err *err)
{
    vx_status st = need_video(r, err);
    if (st != VX_OK) return st;
    if (!out) return vx_fail(err, VX_EINVAL, "%s: frames output is NULL", r->name);
    const int64_t max_ms = (int64_t)1 << 40;
    if (start_ms < 0 || end_ms <= start_ms || end_ms > max_ms)
        return vx_fail(err, VX_EINVAL, "%s: invalid window [%" PRId64 ", %" PRId64 ") ms", r->name,
                       start_ms, end_ms);
    if (num_frames < 1 || num_frames > MEDIA_MAX_FRAMES)
        return vx_fail(err, VX_EINVAL, "%s: frame count %d outside [1, %d]", r->name, num_frames,
                       MEDIA_MAX_FRAMES);
    const media_video_info *v = &r->info.video;
    st = frames_reserve(out, num_frames, v->upright_width_px, v->upright_height_px, err);
    if (st != VX_OK) return vx_err_prefix(err, "%s", r->name);

    const int64_t tden = 2 * (int64_t)num_frames;
    int64_t last_serial = -1, last_ms = -1;
    for (int i = 0; i < num_frames; i++) {
        /* target = start + (i + 0.5)(end - start)/T = tnum / tden ms */
        __int128 tnum = (__int128)start_ms * tden + (__int128)(2 * i + 1) * (end_ms - start_ms);
        int64_t target_ms = (int64_t)(tnum / tden);
        int64_t serial = -1;
        const AVFrame *f = advance_to(r, target_ms, tnum, tden, &serial);
        if (!f)
            return vx_fail(err, VX_ECORRUPT,
                           "%s: no video frame could be decoded (truncated or damaged file)",
                           r->name);
        if (r->video_eof && !r->has_pending && i == num_frames - 1 &&
            target_ms - ts_to_ms_rel(r, f->pts) > 5000 && r->info.duration_ms > target_ms)
            vx_log(VX_LOG_WARN,
                   "%s: video ends at %" PRId64 " ms, before %" PRId64
                   " ms (truncated file?); using the last frame",
                   r->name, ts_to_ms_rel(r, f->pts), target_ms);
        uint8_t *dst = media_frames_at(out, i);
        if (serial == last_serial && i > 0) {
            memcpy(dst, media_frames_at(out, i - 1), (size_t)out->width_px * out->height_px * 3);
        } else {
            st = convert_frame(r, f, dst, err);
            if (st != VX_OK) return st;
            last_ms = ts_to_ms_rel(r, f->pts);
        }
        last_serial = serial;
        out->pts_ms[i] = last_ms;
        out->frame_index[i] = -1;
    }
    return VX_OK;
}

/* ---- the index rule --------------------------------------------------------------------- */

void media_middle_frame_indices(int64_t vlen, int n, int64_t *out)
{
    /* As get_frame_indices(sample="middle"): acc = min(n, vlen) intervals from
     * np.linspace(0, vlen, acc + 1).astype(int), which evaluates k * (vlen / acc) in double,
     * truncates, and sets the last point to vlen exactly; then padding with the last index. */
    if (n < 1) return;
    if (vlen < 1) {
        for (int i = 0; i < n; i++)
            out[i] = 0;
        return;
    }
    int acc = vlen < (int64_t)n ? (int)vlen : n;
    double step = (double)vlen / (double)acc;
    int64_t a_prev = 0;
    for (int i = 0; i < acc; i++) {
        int64_t a_next = (i + 1 == acc) ? vlen : (int64_t)((double)(i + 1) * step);
        out[i] = (a_prev + a_next - 1) / 2; /* >= 0 since a_next >= 1 */
        a_prev = a_next;
    }
    for (int i = acc; i < n; i++)
        out[i] = out[acc - 1];
}

static vx_status rewind_video(media_reader *r, vx_err *err)
{
    int ret = video_seek_start(r);
    if (ret < 0)
        return vx_fail(err, VX_EIO, "%s: cannot seek to the start: %s", r->name, av_err2str(ret));
    return VX_OK;
}

vx_status media_count_frames(media_reader *r, int64_t *out_count, vx_err *err)
{
    vx_status st = need_video(r, err);
    if (st != VX_OK) return st;
    st = rewind_video(r, err);
    if (st != VX_OK) return st;
    int64_t n = 0;
    while (media_read_packet(r, r->vstream) == 0)
        n++;
    av_packet_unref(r->pkt);
    r->positioned = 0; /* the demuxer is at the end; the next sampler seeks */
    *out_count = n;
    return VX_OK;
}

vx_status media_sample_frame_range(media_reader *r, int64_t first_frame, int64_t frame_count,
                                   int num_frames, media_frames *out, vx_err *err)
{
    vx_status st = need_video(r, err);
    if (st != VX_OK) return st;
    if (!out) return vx_fail(err, VX_EINVAL, "%s: frames output is NULL", r->name);
    if (first_frame < 0 || frame_count < 1 || first_frame > INT64_MAX - frame_count)
        return vx_fail(err, VX_EINVAL, "%s: invalid frame range %" PRId64 " + %" PRId64, r->name,
                       first_frame, frame_count);
    if (num_frames < 1 || num_frames > MEDIA_MAX_FRAMES)
        return vx_fail(err, VX_EINVAL, "%s: frame count %d outside [1, %d]", r->name, num_frames,
                       MEDIA_MAX_FRAMES);
    const media_video_info *v = &r->info.video;
    st = frames_reserve(out, num_frames, v->upright_width_px, v->upright_height_px, err);
    if (st != VX_OK) return vx_err_prefix(err, "%s", r->name);
    media_middle_frame_indices(frame_count, num_frames, out->frame_index);
    for (int i = 0; i < num_frames; i++)
        out->frame_index[i] += first_frame;

    st = rewind_video(r, err);
    if (st != VX_OK) return st;
    int64_t decoded = 0; /* frames decoded so far; scratch holds frame decoded - 1 */
    for (int i = 0; i < num_frames; i++) {
        int64_t want = out->frame_index[i];
        if (i > 0 && want == out->frame_index[i - 1]) {
            memcpy(media_frames_at(out, i), media_frames_at(out, i - 1),
                   (size_t)out->width_px * out->height_px * 3);
            out->pts_ms[i] = out->pts_ms[i - 1];
            continue;
        }
        while (decoded <= want) {
            if (decode_next(r) < 0) {
                r->positioned = 0;
                return vx_fail(err, VX_EINVAL,
                               "%s: frame %" PRId64 " requested but the video has %" PRId64
                               " frames",
                               r->name, want, decoded);
            }
            decoded++;
        }
        st = convert_frame(r, r->scratch, media_frames_at(out, i), err);
        if (st != VX_OK) return st;
        out->pts_ms[i] = ts_to_ms_rel(r, r->scratch->pts);
    }
    av_frame_unref(r->scratch);
    r->positioned = 0; /* prev/pending were not maintained */
    return VX_OK;
}

/* ---- for media_shots.c: a plain forward pass over every frame ---------------------------- */

vx_status media_video_rewind(media_reader *r, vx_err *err)
{
    vx_status st = need_video(r, err);
    if (st != VX_OK) return st;
    return rewind_video(r, err);
}

const AVFrame *media_video_next(media_reader *r, int64_t *out_pts_ms)
{
    if (decode_next(r) < 0) {
        av_frame_unref(r->scratch);
        r->positioned = 0; /* prev/pending were not maintained: the next sampler seeks */
        return NULL;
    }
    *out_pts_ms = ts_to_ms_rel(r, r->scratch->pts);
    return r->scratch;
}

void media_video_pass_end(media_reader *r)
{
    av_frame_unref(r->scratch);
    r->positioned = 0;
}
