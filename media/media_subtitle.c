/* media_subtitle.c — text subtitle streams (in a container or a sidecar .srt/.ass/.vtt file)
 * decoded by libavcodec into plain-text cues on the media timeline. */
#include "media_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void media_subtitle_cues_free(media_subtitle_cues *c)
{
    if (!c) return;
    for (int i = 0; i < c->count; i++)
        free(c->cues[i].text);
    free(c->cues);
    memset(c, 0, sizeof *c);
}

/* An ASS dialogue event as FFmpeg decodes it: "ReadOrder,Layer,Style,Name,MarginL,MarginR,
 * MarginV,Effect,Text". Appends the plain text of Text to buf: {...} override blocks dropped,
 * \N and \n as newlines, \h as a space. */
static vx_status ass_to_text(const char *ass, vx_buf *buf, vx_err *err)
{
    const char *p = ass;
    for (int commas = 0; commas < 8 && p; commas++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p) p = ass; /* not an event line: keep it all */
    if (buf->len > 0 && vx_buf_append(buf, "\n", 1, err) != VX_OK) return err->status;
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close) {
                p = close + 1;
                continue;
            }
        }
        if (p[0] == '\\' && (p[1] == 'N' || p[1] == 'n' || p[1] == 'h')) {
            if (vx_buf_append(buf, p[1] == 'h' ? " " : "\n", 1, err) != VX_OK) return err->status;
            p += 2;
            continue;
        }
        if (*p != '\r' && vx_buf_append(buf, p, 1, err) != VX_OK) return err->status;
        p++;
    }
    return VX_OK;
}

static vx_status add_cue(media_subtitle_cues *out, int *cap, int64_t start_ms, int64_t end_ms,
                         char *text, vx_err *err)
{
    if (out->count == *cap) {
        int c = *cap ? *cap * 2 : 64;
        media_subtitle_cue *p = realloc(out->cues, (size_t)c * sizeof *p);
        if (!p) {
            free(text);
            return vx_fail(err, VX_ENOMEM, "out of memory for %d subtitle cues", c);
        }
        out->cues = p;
        *cap = c;
    }
    out->cues[out->count++] = (media_subtitle_cue){start_ms, end_ms, text};
    return VX_OK;
}

vx_status media_read_subtitles(media_reader *r, int which, media_subtitle_cues *out, vx_err *err)
{
    if (!r || !out) return vx_fail(err, VX_EINVAL, "subtitles: NULL argument");
    media_subtitle_cues_free(out);
    if (which < 0 || which >= r->info.subtitle_count)
        return vx_fail(err, VX_ENOTFOUND, "%s: no subtitle stream %d (the file has %d)", r->name,
                       which, r->info.subtitle_count);
    const media_subtitle_info *si = &r->info.subtitle[which];
    AVStream *st = r->fmt->streams[si->stream_index];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: subtitle codec %s is not supported", r->name,
                       si->codec_name);
    const AVCodecDescriptor *desc = avcodec_descriptor_get(st->codecpar->codec_id);
    if (desc && (desc->props & AV_CODEC_PROP_BITMAP_SUB))
        return vx_fail(err, VX_EUNSUPPORTED,
                       "%s: subtitle stream %d (%s) holds images, not text (needs OCR)", r->name,
                       which, si->codec_name);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    if (!dec) return vx_fail(err, VX_ENOMEM, "%s: out of memory", r->name);
    int ret = avcodec_parameters_to_context(dec, st->codecpar);
    if (ret >= 0) {
        dec->pkt_timebase = st->time_base;
        ret = avcodec_open2(dec, codec, NULL);
    }
    if (ret < 0) {
        avcodec_free_context(&dec);
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot open the subtitle decoder %s: %s", r->name,
                       codec->name, av_err2str(ret));
    }
    /* Subtitles are sparse: read the whole file from the start. */
    if (av_seek_frame(r->fmt, -1, r->fmt->start_time != AV_NOPTS_VALUE ? r->fmt->start_time : 0,
                      AVSEEK_FLAG_BACKWARD) < 0)
        av_seek_frame(r->fmt, -1, 0, AVSEEK_FLAG_BYTE);
    r->positioned = 0; /* the video decoder no longer follows the demuxer */
    AVRational ms = {1, 1000};
    int64_t origin = media_origin_in(r, st->time_base);
    int cap = 0;
    vx_status status = VX_OK;
    vx_buf text = {0};
    while (status == VX_OK && media_read_packet(r, si->stream_index) == 0) {
        AVSubtitle sub;
        int got = 0;
        int64_t pts = r->pkt->pts != AV_NOPTS_VALUE ? r->pkt->pts : r->pkt->dts;
        int64_t duration = r->pkt->duration;
        ret = avcodec_decode_subtitle2(dec, &sub, &got, r->pkt);
        if (ret < 0) {
            media_warn_corrupt(r, "a damaged subtitle packet", ret);
            continue;
        }
        if (!got) continue;
        text.len = 0;
        for (unsigned i = 0; i < sub.num_rects && status == VX_OK; i++) {
            const AVSubtitleRect *rect = sub.rects[i];
            if (rect->type == SUBTITLE_ASS && rect->ass)
                status = ass_to_text(rect->ass, &text, err);
            else if (rect->type == SUBTITLE_TEXT && rect->text)
                status = ass_to_text(rect->text, &text, err);
        }
        if (status == VX_OK && text.len > 0 && pts != AV_NOPTS_VALUE) {
            int64_t start_ms =
                av_rescale_q(pts - origin, st->time_base, ms) + sub.start_display_time;
            int64_t end_ms = start_ms;
            if (duration > 0)
                end_ms = start_ms + av_rescale_q(duration, st->time_base, ms);
            else if (sub.end_display_time > sub.start_display_time &&
                     sub.end_display_time != UINT32_MAX)
                end_ms = start_ms + (sub.end_display_time - sub.start_display_time);
            char *copy = malloc(text.len + 1);
            if (!copy) {
                status = vx_fail(err, VX_ENOMEM, "%s: out of memory", r->name);
            } else {
                memcpy(copy, text.data, text.len);
                copy[text.len] = '\0';
                status = add_cue(out, &cap, start_ms, end_ms, copy, err);
            }
        }
        avsubtitle_free(&sub);
    }
    av_packet_unref(r->pkt);
    vx_buf_free(&text);
    avcodec_free_context(&dec);
    if (status != VX_OK) media_subtitle_cues_free(out);
    return status;
}
