/* Private to media/: the reader's state shared by media_reader.c (open, probe, I/O),
 * media_video.c (decode, sampling, RGB) and media_audio.c (16 kHz mono). */
#ifndef VIDX_MEDIA_INTERNAL_H
#define VIDX_MEDIA_INTERNAL_H

#include "media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/* Warnings about corrupt packets per reader before they are only counted. */
#define MEDIA_MAX_WARNINGS 5

struct media_reader {
    char *name; /* path or caller's name, for messages */
    AVFormatContext *fmt;
    AVIOContext *avio; /* custom I/O (memory readers), else NULL */
    const uint8_t *mem_data;
    size_t mem_size;
    int64_t mem_pos;

    media_info info;
    int64_t origin_us; /* container start_time: time 0 of the media timeline */
    AVPacket *pkt;
    int64_t decode_errors;
    int warnings;

    /* video */
    int vstream;          /* -1 when none */
    AVCodecContext *vdec; /* NULL when no decodable video */
    AVFrame *prev;        /* last decoded frame whose time is <= the current target */
    AVFrame *pending;     /* the decoded frame after prev (time > target), or empty */
    AVFrame *scratch;     /* receive buffer */
    int64_t prev_serial, pending_serial, serial; /* decode order number of prev / pending */
    int has_prev, has_pending;
    int positioned;     /* decoder state follows a seek; prev/pending are meaningful */
    int video_eof;      /* the decoder returned its last frame */
    int video_flushing; /* the NULL packet was sent */
    int64_t last_pts;   /* for frames without a timestamp */
    struct SwsContext *sws;
    int sws_colorspace, sws_range; /* what sws was last set to (-1 = not set) */
    uint8_t *rot_buf;              /* coded-orientation RGB before rotation */
    size_t rot_cap;

    /* audio */
    int astream; /* -1 when none */
    AVCodecContext *adec;
    AVFrame *aframe;
    SwrContext *swr;
};

/* Logs a rate-limited warning about corrupt data and counts it. */
void media_warn_corrupt(media_reader *r, const char *what, int averr);

/* Seeks the container so that the next packets of stream_index start at or before
 * target_ts (stream time base); falls back to the start of the file. */
int media_seek_stream(media_reader *r, int stream_index, int64_t target_ts);

/* Reads the next packet of the given stream into r->pkt. Returns 0, AVERROR_EOF at the end,
 * or another negative AVERROR on a read failure (treated as the end by callers). */
int media_read_packet(media_reader *r, int stream_index);

/* media_open(path, 0) for playback: when the file has a video stream that cannot be decoded,
 * fails with the reason (as MEDIA_NEED_VIDEO would) instead of playing it as audio only. */
vx_status media_open_for_play(const char *path, media_reader **out, vx_err *err);

/* A forward pass over every video frame (media_shots.c): rewind to the first frame, then
 * media_video_next until it returns NULL (the end: the reader is left to seek on its next
 * sample), or media_video_pass_end to stop early. The frame returned is the reader's scratch
 * frame, valid until the next call; *out_pts_ms its time on the media timeline. */
vx_status media_video_rewind(media_reader *r, vx_err *err);
const AVFrame *media_video_next(media_reader *r, int64_t *out_pts_ms);
void media_video_pass_end(media_reader *r);

/* Origin of the media timeline in a stream's time base. */
int64_t media_origin_in(const media_reader *r, AVRational tb);

#endif
