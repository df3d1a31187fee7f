/* media_audio.c — the best audio stream over a time window, mixed down to mono (the plain
 * mean of the channels, set as swresample's matrix) and resampled to 16 kHz float. */
#include "media_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/opt.h>

#define MEDIA_AUDIO_RATE 16000

/* Makes room for n more samples after len in *buf (growing geometrically). */
static vx_status reserve(float **buf, size_t len, size_t *cap, size_t n, vx_err *err)
{
    if (len + n <= *cap) return VX_OK;
    size_t c = *cap ? *cap : 16000;
    while (c < len + n)
        c *= 2;
    float *p = realloc(*buf, c * sizeof *p);
    if (!p) return vx_fail(err, VX_ENOMEM, "out of memory for %zu audio samples", c);
    *buf = p;
    *cap = c;
    return VX_OK;
}

/* Runs the resampler on in_samples input samples (NULL input: drain) into buf at len. */
static vx_status resample(media_reader *r, const uint8_t **in, int in_samples, float **buf,
                          size_t *len, size_t *cap, vx_err *err)
{
    int room = swr_get_out_samples(r->swr, in_samples);
    if (room < 0) return vx_fail(err, VX_EUNSUPPORTED, "%s: resampler failed", r->name);
    room += 32;
    vx_status st = reserve(buf, *len, cap, (size_t)room, err);
    if (st != VX_OK) return st;
    uint8_t *dst = (uint8_t *)(*buf + *len);
    int n = swr_convert(r->swr, &dst, room, in, in_samples);
    if (n < 0)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: resampling failed: %s", r->name, av_err2str(n));
    *len += (size_t)n;
    return VX_OK;
}

/* (Re)builds the resampler for the frame's format, rate and layout. */
#define MEDIA_MIN_AUDIO_RATE 1000
#define MEDIA_MAX_AUDIO_RATE 768000

static vx_status setup_swr(media_reader *r, const AVFrame *f, vx_err *err)
{
    /* A damaged header can claim any rate; a resampler for 2 GHz takes seconds to build. */
    if (f->sample_rate < MEDIA_MIN_AUDIO_RATE || f->sample_rate > MEDIA_MAX_AUDIO_RATE)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: audio sample rate %d Hz is outside %d..%d Hz",
                       r->name, f->sample_rate, MEDIA_MIN_AUDIO_RATE, MEDIA_MAX_AUDIO_RATE);
    swr_free(&r->swr);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    AVChannelLayout in_layout = {0}; /* av_channel_layout_copy uninits dst first */
    if (f->ch_layout.nb_channels > 0 && av_channel_layout_check(&f->ch_layout))
        av_channel_layout_copy(&in_layout, &f->ch_layout);
    else
        av_channel_layout_default(&in_layout, 1);
    int in_ch = in_layout.nb_channels;
    int ret = swr_alloc_set_opts2(&r->swr, &mono, AV_SAMPLE_FMT_FLT, MEDIA_AUDIO_RATE, &in_layout,
                                  (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
    if (ret >= 0 && in_ch > 1) {
        double matrix[64];
        int n = in_ch < 64 ? in_ch : 64;
        for (int i = 0; i < n; i++)
            matrix[i] = 1.0 / n;
        ret = swr_set_matrix(r->swr, matrix, n);
    }
    av_channel_layout_uninit(&in_layout);
    if (ret >= 0) ret = swr_init(r->swr);
    if (ret < 0) {
        swr_free(&r->swr);
        return vx_fail(err, VX_EUNSUPPORTED, "%s: cannot resample audio (%d Hz, %d channels): %s",
                       r->name, f->sample_rate, in_ch, av_err2str(ret));
    }
    return VX_OK;
}

vx_status media_read_audio_16k_mono(media_reader *r, int64_t start_ms, int64_t end_ms, float **out,
                                    size_t *out_samples, vx_err *err)
{
    if (!r || !out || !out_samples) return vx_fail(err, VX_EINVAL, "audio: NULL argument");
    *out = NULL;
    *out_samples = 0;
    if (r->astream < 0 || !r->adec)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: has no decodable audio stream", r->name);
    const int64_t max_ms = (int64_t)1 << 40;
    if (start_ms < 0 || start_ms > max_ms || end_ms > max_ms || (end_ms > 0 && end_ms <= start_ms))
        return vx_fail(err, VX_EINVAL, "%s: invalid audio window [%" PRId64 ", %" PRId64 ") ms",
                       r->name, start_ms, end_ms);
    AVStream *st = r->fmt->streams[r->astream];
    AVRational tb = st->time_base;
    int64_t origin = media_origin_in(r, tb);
    media_seek_stream(r, r->astream, origin + av_rescale_q(start_ms, (AVRational){1, 1000}, tb));
    r->positioned = 0; /* the video decoder no longer follows the demuxer */
    avcodec_flush_buffers(r->adec);
    swr_free(&r->swr);

    float *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t first_sample = INT64_MIN; /* 16 kHz sample index of buf[0] on the timeline */
    int64_t end_sample = end_ms > 0 ? av_rescale(end_ms, MEDIA_AUDIO_RATE, 1000) : INT64_MAX;
    int64_t start_sample = av_rescale(start_ms, MEDIA_AUDIO_RATE, 1000);
    int flushing = 0, done = 0, in_rate = 0, in_fmt = -1, in_ch = 0;
    vx_status status = VX_OK;
    while (!done) {
        int ret = avcodec_receive_frame(r->adec, r->aframe);
        if (ret == AVERROR(EAGAIN)) {
            if (flushing) break;
            if (media_read_packet(r, r->astream) < 0) {
                flushing = 1;
                avcodec_send_packet(r->adec, NULL);
                continue;
            }
            ret = avcodec_send_packet(r->adec, r->pkt);
            av_packet_unref(r->pkt);
            if (ret < 0 && ret != AVERROR(EAGAIN))
                media_warn_corrupt(r, "a damaged audio packet", ret);
            continue;
        }
        if (ret == AVERROR_EOF) break;
        if (ret < 0) {
            media_warn_corrupt(r, "an audio frame that failed to decode", ret);
            continue;
        }
        AVFrame *f = r->aframe;
        if (f->sample_rate <= 0 || f->nb_samples <= 0) {
            av_frame_unref(f);
            continue;
        }
        if (first_sample == INT64_MIN) {
            int64_t ts =
                f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : origin;
            first_sample = av_rescale_q(ts - origin, tb, (AVRational){1, MEDIA_AUDIO_RATE});
        }
        if (!r->swr || f->sample_rate != in_rate || f->format != in_fmt ||
            f->ch_layout.nb_channels != in_ch) {
            if (r->swr) /* format change mid-stream: drain the old resampler first */
                status = resample(r, NULL, 0, &buf, &len, &cap, err);
            if (status == VX_OK) status = setup_swr(r, f, err);
            if (status != VX_OK) break;
            in_rate = f->sample_rate;
            in_fmt = f->format;
            in_ch = f->ch_layout.nb_channels;
        }
        if (f->best_effort_timestamp != AV_NOPTS_VALUE) {
            /* A hole (packets lost to damage) becomes silence, so later audio stays on the
             * timeline; the resampler's few buffered samples make the fill ~2 ms early. */
            int64_t at = av_rescale_q(f->best_effort_timestamp - origin, tb,
                                      (AVRational){1, MEDIA_AUDIO_RATE});
            int64_t expected =
                first_sample + (int64_t)len + swr_get_delay(r->swr, MEDIA_AUDIO_RATE);
            int64_t gap = at - expected;
            if (gap > MEDIA_AUDIO_RATE / 100 && gap < (int64_t)MEDIA_AUDIO_RATE * 600) {
                status = reserve(&buf, len, &cap, (size_t)gap, err);
                if (status != VX_OK) break;
                memset(buf + len, 0, (size_t)gap * sizeof *buf);
                len += (size_t)gap;
            }
        }
        status =
            resample(r, (const uint8_t **)f->extended_data, f->nb_samples, &buf, &len, &cap, err);
        av_frame_unref(f);
        if (status != VX_OK) break;
        if (end_sample != INT64_MAX && first_sample + (int64_t)len >= end_sample) done = 1;
    }
    if (status == VX_OK && r->swr && !done) /* what the resampler still holds */
        status = resample(r, NULL, 0, &buf, &len, &cap, err);
    if (status != VX_OK) {
        free(buf);
        return status;
    }
    if (first_sample == INT64_MIN || len == 0) {
        free(buf);
        return VX_OK; /* no audio in the window */
    }
    /* Trim to [start_sample, end_sample) on the timeline; pad nothing. */
    int64_t skip = start_sample - first_sample;
    if (skip < 0) skip = 0;
    if ((size_t)skip >= len) {
        free(buf);
        return VX_OK;
    }
    int64_t stop =
        end_sample == INT64_MAX
            ? (int64_t)len
            : (end_sample - first_sample < (int64_t)len ? end_sample - first_sample : (int64_t)len);
    if (stop <= skip) {
        free(buf);
        return VX_OK;
    }
    size_t count = (size_t)(stop - skip);
    memmove(buf, buf + skip, count * sizeof *buf);
    *out = buf;
    *out_samples = count;
    return VX_OK;
}
