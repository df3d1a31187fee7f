/* media/ — everything vidx reads out of video files through FFmpeg: opening and probing a file
 * (or a memory buffer), frame sampling by timestamps (DECISIONS.md §3) and by the fact sheet's
 * constant-frame-rate index rule, conversion to upright RGB24 through swscale honouring the
 * stream's colour matrix and range, the encoder's 224x224 bicubic resize + normalisation
 * (matching torchvision 0.14 bit for bit), audio resampled to 16 kHz mono, and text subtitles
 * (streams and sidecar files) as timed cues.
 *
 * Thread safety: a media_reader is used by one thread at a time (it holds decoder state and
 * scratch buffers); different readers may be used from different threads at once. A
 * media_preproc is likewise used by one thread at a time. The free functions that take no
 * reader or context (media_middle_frame_indices, media_normalize_rgb24) are pure.
 *
 * Logging: nothing here prints. Our warnings (damaged packets skipped, a file that ends early)
 * go through vx_log; FFmpeg's own messages are forwarded to vx_log at debug level by a
 * process-wide av_log callback that the first media_open* installs (once, thread-safe).
 *
 * Timeline: all times are milliseconds from the file's start (the container's start_time when
 * positive, as in MPEG-TS; else the stored timestamps, since a negative start is codec priming),
 * one clock for video, audio and subtitles; a frame's time is its best-effort presentation
 * timestamp.
 *
 * Usage (what `vidx embed VIDEO --start S --end E` does):
 *
 *     media_reader *r = NULL;
 *     vx_err err = {0};
 *     if (media_open(path, MEDIA_NEED_VIDEO, &r, &err)) { report(err.msg); }
 *     media_frames frames = {0};
 *     media_sample_window(r, start_ms, end_ms, 8, &frames, &err);  // 8 upright RGB24 frames
 *     media_preproc *pp = NULL;
 *     media_preproc_create(224, 224, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp, &err);
 *     float *x = malloc(media_preproc_tensor_floats(pp, frames.count) * sizeof(float));
 *     media_preproc_frames(pp, &frames, x, &err);                   // x: [3, 8, 224, 224]
 *     media_frames_free(&frames); media_preproc_free(pp); media_close(r); free(x);
 */
#ifndef VIDX_MEDIA_H
#define VIDX_MEDIA_H

#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- open and probe --------------------------------------------------------------------- */

typedef struct media_reader media_reader;

/* Flags for media_open. */
enum {
    MEDIA_NEED_VIDEO = 1 << 0, /* fail (VX_EUNSUPPORTED) when no decodable video stream */
    MEDIA_NEED_AUDIO = 1 << 1, /* fail (VX_EUNSUPPORTED) when no decodable audio stream */
};

#define MEDIA_NAME_MAX 32
#define MEDIA_MAX_AUDIO_STREAMS 8
#define MEDIA_MAX_SUBTITLE_STREAMS 16

typedef struct media_video_info {
    int stream_index;                /* FFmpeg stream index */
    char codec_name[MEDIA_NAME_MAX]; /* "h264", "vp9", ... */
    int width_px, height_px;         /* coded size, before rotation */
    int upright_width_px;            /* size of the frames media_sample_* return (rotated) */
    int upright_height_px;
    double avg_fps;               /* stream avg_frame_rate (0 when unknown) */
    double r_fps;                 /* stream r_frame_rate, the lowest rate that fits pts */
    char pix_fmt[MEDIA_NAME_MAX]; /* "yuv420p", "yuv420p10le", ... */
    int bit_depth;                /* bits per component of the first component */
    /* 0, 90, 180, 270: the clockwise turn applied for display (from the display matrix; a
     * mirrored matrix is applied as its turn only) */
    int rotation_deg;
    char color_matrix[MEDIA_NAME_MAX]; /* "bt709", "bt470bg", "bt2020nc", "unknown" */
    int color_range_full;              /* 1 = full (JPEG) range, 0 = limited or unknown */
    int interlaced;                    /* 1 when the container says fields are interlaced */
    int64_t duration_ms;               /* stream duration, else the container's; 0 if unknown */
    int64_t frame_count;               /* container's frame count; 0 when not stored */
} media_video_info;

typedef struct media_audio_info {
    int stream_index;
    char codec_name[MEDIA_NAME_MAX];
    int sample_rate_hz;
    int channels;
    char language[MEDIA_NAME_MAX]; /* from the "language" tag; "" when absent */
} media_audio_info;

typedef struct media_subtitle_info {
    int stream_index;
    char codec_name[MEDIA_NAME_MAX]; /* "subrip", "ass", "mov_text", "dvd_subtitle", ... */
    char language[MEDIA_NAME_MAX];
} media_subtitle_info;

typedef struct media_info {
    char container[MEDIA_NAME_MAX]; /* demuxer name, e.g. "matroska,webm" cut to fit */
    int64_t duration_ms;            /* container duration; 0 when unknown */
    int64_t bit_rate_bps;           /* 0 when unknown */
    int has_video;                  /* video below is valid only when 1 */
    media_video_info video;         /* the best video stream (av_find_best_stream) */
    int audio_count;                /* streams listed (at most MEDIA_MAX_AUDIO_STREAMS) */
    media_audio_info audio[MEDIA_MAX_AUDIO_STREAMS]; /* audio[0] is the best one */
    int subtitle_count;
    media_subtitle_info subtitle[MEDIA_MAX_SUBTITLE_STREAMS];
} media_info;

/* Opens and probes path (any UTF-8 path; no URL protocols other than plain files). flags:
 * MEDIA_NEED_*. On failure *out is NULL and err says what is wrong with which file
 * (missing, empty, not a media file, truncated, no video, unsupported codec). */
vx_status media_open(const char *path, unsigned flags, media_reader **out, vx_err *err);

/* As media_open, from a memory buffer (data must stay valid and unchanged until
 * media_close); name is used in messages only. */
vx_status media_open_memory(const void *data, size_t size_bytes, const char *name, unsigned flags,
                            media_reader **out, vx_err *err);

/* Frees the reader and everything it holds. NULL is fine. */
void media_close(media_reader *reader);

/* The probe result; owned by the reader, valid until media_close. */
const media_info *media_get_info(const media_reader *reader);

/* Packets the reader dropped because they failed to decode (each logged once as a warning,
 * rate-limited); corrupt data mid-stream is skipped, never fatal. */
int64_t media_decode_errors(const media_reader *reader);

/* ---- frames ----------------------------------------------------------------------------- */

/* A batch of upright RGB24 frames, caller-owned: zero-initialise it, pass it to the samplers
 * as often as you like (its buffers grow when needed and are reused otherwise), and release
 * it with media_frames_free. */
typedef struct media_frames {
    int count;             /* T, the frames held */
    int width_px;          /* upright width of every frame */
    int height_px;         /* upright height */
    uint8_t *rgb;          /* [T, height_px, width_px, 3], packed, no row padding */
    int64_t *pts_ms;       /* [T] time each chosen frame is shown from (ms from file start) */
    int64_t *frame_index;  /* [T] index of the frame in presentation order when known (the
                              index-rule sampler), else -1 */
    size_t capacity_bytes; /* allocated size of rgb */
    int capacity_frames;   /* allocated length of pts_ms and frame_index */
} media_frames;

/* Frees the buffers of frames (not the struct) and zeroes it. NULL is fine. */
void media_frames_free(media_frames *frames);

/* Pointer to frame t's pixels, [height_px, width_px, 3]. */
static inline uint8_t *media_frames_at(const media_frames *frames, int t)
{
    return frames->rgb + (size_t)t * (size_t)frames->width_px * (size_t)frames->height_px * 3u;
}

/* The "middle" rule on timestamps (DECISIONS.md §3): frame i of num_frames is the frame shown
 * at start_ms + (i + 0.5) * (end_ms - start_ms) / num_frames, i.e. the last frame whose pts is
 * <= that time (the first frame when the time precedes every frame; the last frame past the
 * end). Seeks to the window instead of decoding from the start and decodes forward; frames of
 * the batch are decoded in one forward pass when dense. Requires start_ms < end_ms,
 * 1 <= num_frames <= 4096. out receives num_frames frames. */
vx_status media_sample_window(media_reader *reader, int64_t start_ms, int64_t end_ms,
                              int num_frames, media_frames *out, vx_err *err);

/* The fact sheet's constant-frame-rate index rule (INTERNVIDEO2.md §6): splits [0, vlen)
 * by linspace(0, vlen, n+1).astype(int) and picks (a_i + a_{i+1} - 1) // 2 for each of the n
 * intervals; when vlen < n the list is padded with the last index (vlen - 1). Writes n indices
 * (vlen >= 1, n >= 1). Pure. */
void media_middle_frame_indices(int64_t vlen, int n, int64_t *out_indices);

/* Number of video frames: packets of the video stream, counted by demuxing without decoding
 * (milliseconds even for hours of video). For streams that code each field in its own packet
 * this counts fields. Leaves the reader to seek on its next read. */
vx_status media_count_frames(media_reader *reader, int64_t *out_count, vx_err *err);

/* The index rule over the frame range [first_frame, first_frame + frame_count) in
 * presentation order (frame 0 = the first frame decoded): picks media_middle_frame_indices
 * (frame_count, num_frames) offset by first_frame and decodes exactly those frames (forward
 * from the start of the file; frames are counted, not inferred from timestamps). A range past
 * the end fails with VX_EINVAL naming the frame count. */
vx_status media_sample_frame_range(media_reader *reader, int64_t first_frame, int64_t frame_count,
                                   int num_frames, media_frames *out, vx_err *err);

/* ---- resize and normalise (the encoder's input) ----------------------------------------- */

extern const float MEDIA_IMAGENET_MEAN[3]; /* 0.485, 0.456, 0.406 */
extern const float MEDIA_IMAGENET_STD[3];  /* 0.229, 0.224, 0.225 */

/* Caller-owned preprocessing context: output size, mean/std, and the resize plan and scratch
 * for the last input size (rebuilt only when the input size changes, so the per-frame path
 * does not allocate). */
typedef struct media_preproc media_preproc;

vx_status media_preproc_create(int out_width_px, int out_height_px, const float mean[3],
                               const float std[3], media_preproc **out, vx_err *err);
void media_preproc_free(media_preproc *pp);

/* Floats media_preproc_frames writes for num_frames frames: 3 * num_frames * H * W. */
size_t media_preproc_tensor_floats(const media_preproc *pp, int num_frames);

/* torchvision 0.14 tensor Resize((out_h, out_w), BICUBIC) on uint8 RGB: bicubic a = -0.75,
 * align_corners=False, no antialias, edge-clamped taps, clamped to [0, 255] and rounded half
 * to even. Bit for bit what Debian's torch 1.13 computes (its float roundings and fused
 * multiply-adds reproduced; media_preproc.c says which), on any CPU.
 * rgb: [in_h, in_w, 3] with in_stride_bytes per row -> out_rgb: [out_h, out_w, 3] packed. */
vx_status media_resize_rgb24(media_preproc *pp, const uint8_t *rgb, int in_width_px,
                             int in_height_px, size_t in_stride_bytes, uint8_t *out_rgb,
                             vx_err *err);

/* x / 255 then (x - mean[c]) / std[c], as torchvision (float32 throughout).
 * rgb: [h, w, 3] packed -> writes channel c of frame t at
 * out[((c * num_frames + t) * h * w) ...], i.e. one frame of a [3, num_frames, h, w] tensor. */
void media_normalize_rgb24(const uint8_t *rgb, int width_px, int height_px, const float mean[3],
                           const float std[3], int num_frames, int t, float *out);

/* frames: T upright RGB24 frames of any size -> out: [3, T, out_h, out_w] float (resize, then
 * normalise). out holds media_preproc_tensor_floats(pp, T) floats, caller-owned. */
vx_status media_preproc_frames(media_preproc *pp, const media_frames *frames, float *out,
                               vx_err *err);

/* ---- audio ------------------------------------------------------------------------------ */

/* Decodes the best audio stream over [start_ms, end_ms) (end_ms <= 0: to the end; the caller
 * bounds memory by its window), mixed to mono (the mean of the channels) and resampled to
 * 16 kHz float in [-1, 1] through swresample. Sample rates outside 1 kHz..768 kHz are refused. *out
 * is a new buffer the caller frees with free() (NULL when *out_samples is 0). A file without audio
 * fails with VX_EUNSUPPORTED naming the file. */
vx_status media_read_audio_16k_mono(media_reader *reader, int64_t start_ms, int64_t end_ms,
                                    float **out, size_t *out_samples, vx_err *err);

/* ---- subtitles -------------------------------------------------------------------------- */

typedef struct media_subtitle_cue {
    int64_t start_ms; /* shown from (ms from file start) */
    int64_t end_ms;   /* hidden at; start_ms when the stream gives no end */
    char *text;       /* UTF-8 plain text: ASS override tags removed, \N as newline */
} media_subtitle_cue;

/* Caller-owned list of cues; zero-initialise, free with media_subtitle_cues_free. */
typedef struct media_subtitle_cues {
    int count;
    media_subtitle_cue *cues; /* [count], in stream order */
} media_subtitle_cues;

/* Reads every cue of text subtitle stream info.subtitle[which] (subrip, ass, mov_text,
 * webvtt, ...). A sidecar file (.srt, .ass, .vtt) opens with media_open(path, 0, ...) and is
 * read the same way, which = 0. Image subtitles (dvd_subtitle, hdmv_pgs, dvb) fail with
 * VX_EUNSUPPORTED naming the codec (they would need OCR). Replaces out's previous content. */
vx_status media_read_subtitles(media_reader *reader, int which, media_subtitle_cues *out,
                               vx_err *err);
/* Frees the cues and their texts and zeroes the struct. NULL is fine. */
void media_subtitle_cues_free(media_subtitle_cues *cues);

/* ---- content hash ----------------------------------------------------------------------- */

/* Bytes hashed at each end of a file. */
#define MEDIA_HASH_SPAN_BYTES (64 * 1024)
/* 64 hex digits and a NUL. */
#define MEDIA_CONTENT_HASH_HEX 65

/* SHA-256 (libavutil's av_sha) over: the file size as 8 bytes little-endian, then bytes
 * [0, min(size, 64 KiB)), then bytes [max(0, size - 64 KiB), size) — so a file that grows,
 * shrinks or changes at either end gets another hash, while reading at most 128 KiB. Writes
 * lowercase hex into out_hex and the size it hashed into *out_size_bytes (may be NULL).
 * A file that changes size while being read is VX_ESTALE. */
vx_status media_content_hash(const char *path, int64_t *out_size_bytes,
                             char out_hex[MEDIA_CONTENT_HASH_HEX], vx_err *err);

/* ---- JPEG thumbnails -------------------------------------------------------------------- */

/* A reusable JPEG encoder (mjpeg through libavcodec, swscale for the resize to full-range
 * YUV 4:2:0). The codec is reopened only when the output size changes. */
typedef struct media_jpeg media_jpeg;

/* max_side_px: the longer side of the thumbnail (the shorter keeps the aspect ratio, both
 * even, at least 2); quality: mjpeg qscale 2 (best) .. 31. Free with media_jpeg_free. */
vx_status media_jpeg_create(int max_side_px, int quality, media_jpeg **out, vx_err *err);
/* NULL is fine. */
void media_jpeg_free(media_jpeg *jpeg);

/* rgb: [height_px, width_px, 3] packed RGB24 -> a JPEG image. *out_bytes points into the
 * encoder and stays valid until the next encode or media_jpeg_free. */
vx_status media_jpeg_encode(media_jpeg *jpeg, const uint8_t *rgb, int width_px, int height_px,
                            const uint8_t **out_bytes, size_t *out_len, vx_err *err);

#ifdef __cplusplus
}
#endif
#endif
