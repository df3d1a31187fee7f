/* media/media_thumb.c — content hash of a file's head and tail (libavutil's SHA-256) and JPEG
 * thumbnails (swscale to full-range YUV 4:2:0, then FFmpeg's mjpeg encoder). See
 * media.h. */
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>
#include <libswscale/swscale.h>

/* ---- content hash ----------------------------------------------------------------------- */

/* Reads exactly len bytes at offset (short only at a premature end of file). */
static vx_status read_span(int fd, const char *path, int64_t offset, uint8_t *buf, size_t len,
                           vx_err *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)offset + (off_t)got);
        if (n < 0) {
            if (errno == EINTR) continue;
            return vx_fail(err, VX_EIO, "cannot read %s: %s", path, strerror(errno));
        }
        if (n == 0)
            return vx_fail(err, VX_ESTALE, "%s: shrank while being read (still being written?)",
                           path);
        got += (size_t)n;
    }
    return VX_OK;
}

vx_status media_content_hash(const char *path, int64_t *out_size_bytes,
                             char out_hex[MEDIA_CONTENT_HASH_HEX], vx_err *err)
{
    out_hex[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vx_fail(err, errno == ENOENT ? VX_ENOTFOUND : VX_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    vx_status st = VX_OK;
    struct AVSHA *sha = NULL;
    uint8_t *buf = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = vx_fail(err, VX_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    int64_t size = (int64_t)sb.st_size;
    sha = av_sha_alloc();
    buf = malloc(MEDIA_HASH_SPAN_BYTES);
    if (!sha || !buf) {
        st = vx_fail(err, VX_ENOMEM, "out of memory hashing %s", path);
        goto done;
    }
    av_sha_init(sha, 256);
    uint8_t size_le[8];
    for (int i = 0; i < 8; i++)
        size_le[i] = (uint8_t)((uint64_t)size >> (8 * i));
    av_sha_update(sha, size_le, sizeof size_le);
    size_t head = size < MEDIA_HASH_SPAN_BYTES ? (size_t)size : MEDIA_HASH_SPAN_BYTES;
    if ((st = read_span(fd, path, 0, buf, head, err))) goto done;
    av_sha_update(sha, buf, head);
    int64_t tail_at = size > MEDIA_HASH_SPAN_BYTES ? size - MEDIA_HASH_SPAN_BYTES : 0;
    if ((st = read_span(fd, path, tail_at, buf, (size_t)(size - tail_at), err))) goto done;
    av_sha_update(sha, buf, (size_t)(size - tail_at));
    struct stat after;
    if (fstat(fd, &after) == 0 && after.st_size != sb.st_size) {
        st = vx_fail(err, VX_ESTALE, "%s: size changed while being hashed (still being written?)",
                     path);
        goto done;
    }
    uint8_t digest[32];
    av_sha_final(sha, digest);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out_hex[2 * i] = hex[digest[i] >> 4];
        out_hex[2 * i + 1] = hex[digest[i] & 15];
    }
    out_hex[64] = '\0';
    if (out_size_bytes) *out_size_bytes = size;
done:
    av_free(sha);
    free(buf);
    close(fd);
    return st;
}

/* ---- JPEG thumbnails -------------------------------------------------------------------- */

struct media_jpeg {
    int max_side_px;
    int quality;
    int in_w, in_h;   /* the input size sws was made for */
    int out_w, out_h; /* the codec's size */
    AVCodecContext *codec;
    struct SwsContext *sws;
    AVFrame *frame;
    AVPacket *packet;
    uint8_t *bytes; /* the last image, owned here */
    size_t len, cap;
    int64_t next_pts; /* encoders want increasing timestamps even for stills */
};

static vx_status av_fail(vx_err *err, int averr, const char *what)
{
    char text[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(averr, text, sizeof text);
    return vx_fail(err, averr == AVERROR(ENOMEM) ? VX_ENOMEM : VX_EIO, "%s: %s", what, text);
}

vx_status media_jpeg_create(int max_side_px, int quality, media_jpeg **out, vx_err *err)
{
    *out = NULL;
    if (max_side_px < 2 || max_side_px > 4096 || quality < 2 || quality > 31)
        return vx_fail(err, VX_EINVAL, "thumbnail size %d or quality %d out of range", max_side_px,
                       quality);
    media_jpeg *j = vx_calloc_array(1, sizeof *j, err);
    if (!j) return VX_ENOMEM;
    j->max_side_px = max_side_px;
    j->quality = quality;
    j->frame = av_frame_alloc();
    j->packet = av_packet_alloc();
    if (!j->frame || !j->packet) {
        media_jpeg_free(j);
        return vx_fail(err, VX_ENOMEM, "out of memory creating the JPEG encoder");
    }
    *out = j;
    return VX_OK;
}

void media_jpeg_free(media_jpeg *j)
{
    if (!j) return;
    avcodec_free_context(&j->codec);
    sws_freeContext(j->sws);
    av_frame_free(&j->frame);
    av_packet_free(&j->packet);
    free(j->bytes);
    free(j);
}

/* (Re)opens the codec and frame for out_w x out_h. */
static vx_status open_codec(media_jpeg *j, int out_w, int out_h, vx_err *err)
{
    avcodec_free_context(&j->codec);
    av_frame_unref(j->frame);
    const AVCodec *mjpeg = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!mjpeg) return vx_fail(err, VX_EUNSUPPORTED, "this FFmpeg has no mjpeg encoder");
    j->codec = avcodec_alloc_context3(mjpeg);
    if (!j->codec) return vx_fail(err, VX_ENOMEM, "out of memory creating the JPEG encoder");
    j->codec->width = out_w;
    j->codec->height = out_h;
    j->codec->time_base = (AVRational){1, 25};
    /* Full-range 4:2:0 marked as JPEG range: what the deprecated yuvj420p meant. */
    j->codec->pix_fmt = AV_PIX_FMT_YUV420P;
    j->codec->color_range = AVCOL_RANGE_JPEG;
    j->codec->flags |= AV_CODEC_FLAG_QSCALE;
    j->codec->global_quality = FF_QP2LAMBDA * j->quality;
    j->codec->thread_count = 1;
    int rc = avcodec_open2(j->codec, mjpeg, NULL);
    if (rc < 0) return av_fail(err, rc, "cannot open the mjpeg encoder");
    j->frame->format = AV_PIX_FMT_YUV420P;
    j->frame->width = out_w;
    j->frame->height = out_h;
    j->frame->color_range = AVCOL_RANGE_JPEG;
    if ((rc = av_frame_get_buffer(j->frame, 0)) < 0)
        return av_fail(err, rc, "cannot allocate a thumbnail frame");
    j->out_w = out_w;
    j->out_h = out_h;
    return VX_OK;
}

vx_status media_jpeg_encode(media_jpeg *j, const uint8_t *rgb, int width_px, int height_px,
                            const uint8_t **out_bytes, size_t *out_len, vx_err *err)
{
    *out_bytes = NULL;
    *out_len = 0;
    if (!rgb || width_px < 1 || height_px < 1)
        return vx_fail(err, VX_EINVAL, "thumbnail of an empty image (%dx%d)", width_px, height_px);
    /* Fit the longer side to max_side_px (never upscale), both sides even and >= 2. */
    double scale = (double)j->max_side_px / (double)(width_px > height_px ? width_px : height_px);
    if (scale > 1.0) scale = 1.0;
    int out_w = ((int)(width_px * scale + 0.5)) & ~1, out_h = ((int)(height_px * scale + 0.5)) & ~1;
    if (out_w < 2) out_w = 2;
    if (out_h < 2) out_h = 2;
    vx_status st;
    if (!j->codec || out_w != j->out_w || out_h != j->out_h)
        if ((st = open_codec(j, out_w, out_h, err))) return st;
    if (!j->sws || width_px != j->in_w || height_px != j->in_h) {
        j->sws = sws_getCachedContext(j->sws, width_px, height_px, AV_PIX_FMT_RGB24, out_w, out_h,
                                      AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
        if (!j->sws)
            return vx_fail(err, VX_EUNSUPPORTED, "cannot scale %dx%d to %dx%d", width_px, height_px,
                           out_w, out_h);
        /* RGB in, full-range BT.601 out (JPEG's convention). */
        const int *coefs = sws_getCoefficients(SWS_CS_ITU601);
        sws_setColorspaceDetails(j->sws, coefs, 1, coefs, 1, 0, 1 << 16, 1 << 16);
        j->in_w = width_px;
        j->in_h = height_px;
    }
    int rc = av_frame_make_writable(j->frame);
    if (rc < 0) return av_fail(err, rc, "thumbnail frame");
    const uint8_t *src[1] = {rgb};
    int src_stride[1] = {width_px * 3};
    sws_scale(j->sws, src, src_stride, 0, height_px, j->frame->data, j->frame->linesize);
    j->frame->quality = j->codec->global_quality;
    j->frame->pict_type = AV_PICTURE_TYPE_I;
    j->frame->pts = j->next_pts++;
    if ((rc = avcodec_send_frame(j->codec, j->frame)) < 0)
        return av_fail(err, rc, "encoding a thumbnail (send)");
    rc = avcodec_receive_packet(j->codec, j->packet);
    if (rc < 0) return av_fail(err, rc, "encoding a thumbnail (receive)");
    if ((size_t)j->packet->size > j->cap) {
        uint8_t *grown = realloc(j->bytes, (size_t)j->packet->size);
        if (!grown) {
            av_packet_unref(j->packet);
            return vx_fail(err, VX_ENOMEM, "out of memory encoding a thumbnail");
        }
        j->bytes = grown;
        j->cap = (size_t)j->packet->size;
    }
    memcpy(j->bytes, j->packet->data, (size_t)j->packet->size);
    j->len = (size_t)j->packet->size;
    av_packet_unref(j->packet);
    *out_bytes = j->bytes;
    *out_len = j->len;
    return VX_OK;
}
