/* media/ — everything vidx reads out of video files through FFmpeg: opening and probing a file
 * (or a memory buffer), frame sampling by timestamps (DECISIONS.md §3) and by the fact sheet's
 * constant-frame-rate index rule, conversion to upright RGB24 through swscale honouring the
 * stream's colour matrix and range, the encoder's 224x224 bicubic resize + normalisation
 * (matching torchvision 0.14 bit for bit), audio resampled to 16 kHz mono, text subtitles
 * (streams and sidecar files) as timed cues, and shot cuts found on the decoded frames.
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

/* ---- shot cuts ---------------------------------------------------------------------------
 *
 * media_detect_shots decodes the video once from its first frame and finds hard cuts: each
 * decoded frame is reduced (swscale, area average) to a 64x36 YUV 4:4:4 thumbnail, and the
 * difference d between consecutive frames is the mean of (a) the mean absolute luma
 * difference / 255 and (b) the L1 distance of 16-bin Y, U and V histograms (soft binning, so
 * a gradual brightness change moves mass gradually) / 6; both in [0, 1]. Frame i starts a new
 * shot when d[i] is a clear outlier in its neighbourhood:
 *   - d[i] >= min_difference, and the largest d within neighbourhood_frames on each side
 *     (ties: the earlier frame), and d[i] >= outlier_ratio x the mean of those neighbours'
 *     d (so a fade, whose frames all change a little, is not cut, nor is steady motion);
 *   - not a flash: no frame of the flash_frames after i looks like frame i - 1, and no frame
 *     of the flash_frames before i - 1 looks like frame i ("looks like": distance below
 *     flash_similarity x d[i]); a flash's onset and its return are both rejected so;
 *   - at least min_shot_ms after the previous cut, else the stronger of the two is kept.
 * The cut's time is the new shot's first frame's time (ms from file start), so a cut is
 * exact to the frame. Memory is bounded (a ring of the last 64 thumbnails, about 450 KB, plus
 * the cut list)
 * whatever the length; the result is deterministic (integer thumbnails, fixed-order sums).
 * Cost: one decode of every frame, without the deblocking filter (the thumbnails do not need
 * it), plus the thumbnail (8-bit planar YUV: a subsampled box average of the planes; other
 * formats: swscale's area filter) and its analysis. Measured on 20 s of 1080p30 H.264 (x264
 * veryfast, B-frames), one core, CPU time on a busy shared machine (+-20%): plain decode
 * 6.2 ms/frame; this pass 5.5 ms/frame (6x real time), of which about 0.8 ms is the thumbnail
 * and analysis; the samplers' 4 s windows of 8 frames 6.4-7.5 ms per frame of video (as the
 * indexer reads them, with RGB conversion). So snapping costs about as much again as the
 * decoding an indexer already does (the encoder costs far more). With
 * reference_frames_only, frames no other frame refers to (most B-frames) are not decoded
 * (AVDISCARD_NONREF): 3.2 ms/frame (10x real time) on the same file, at the price of cut
 * times exact only to the next decoded frame (a cut on a B-frame is found up to a few frames
 * late). No global state. */

typedef struct media_shot_options {
    double min_difference;     /* default 0.10 */
    double outlier_ratio;      /* default 3.0 */
    int neighbourhood_frames;  /* default 8, 1..24 */
    int flash_frames;          /* default 8, 0..24 */
    double flash_similarity;   /* default 0.4 */
    int64_t min_shot_ms;       /* default 500 */
    int reference_frames_only; /* default 0 (see above) */
} media_shot_options;

media_shot_options media_shot_options_default(void);

typedef struct media_shot_stats {
    int64_t frames; /* frames decoded and analysed */
    double seconds; /* wall time of the pass (decode + analysis) */
} media_shot_stats;

/* Finds the hard cuts of reader's video (see above). opts may be NULL (defaults); stats may be
 * NULL. *out_cuts_ms is a malloc'd ascending array of cut times the caller frees with free()
 * (NULL when *out_count is 0). Damaged packets are skipped as by the samplers; a video that
 * cannot be converted fails with VX_EUNSUPPORTED naming the file. Leaves the reader to seek on
 * its next read. Options out of range are VX_EINVAL. */
vx_status media_detect_shots(media_reader *reader, const media_shot_options *opts,
                             int64_t **out_cuts_ms, size_t *out_count, media_shot_stats *stats,
                             vx_err *err);

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

/* ---- browser playback: play as is, remux or transcode (DECISIONS.md §10) ----------------
 *
 * Debian's Chromium plays H.264 (8-bit 4:2:0, also High 10), VP8 and VP9 video and AAC, Opus,
 * Vorbis and MP3 audio in MP4 and WebM, but not MPEG-4 Part 2/AVI, MPEG-TS or HEVC.
 * media_play_plan_for says what a file needs; a media_play_cache produces the playable version
 * (FFmpeg's libraries, never the CLI) into a cache folder under a size limit, in the background.
 *
 * Usage (what GET /api/videos/{id}/stream does; path comes from the catalog, never the request):
 *
 *     // once, at server start (several worker threads share one cache):
 *     media_play_cache_options o = media_play_cache_defaults();
 *     o.limit_bytes = 20LL << 30;
 *     media_play_cache *cache = NULL;
 *     if (media_play_cache_open(cache_dir, &o, &cache, &err)) { ... }
 *     // per request:
 *     media_play_result res;
 *     vx_status st = media_play_get(cache, path, 2000, &res, &err); // waits up to 2 s
 *     if (st != VX_OK)                      -> 415 (VX_EUNSUPPORTED), 422 (VX_EFORMAT,
 *                                              VX_ECORRUPT), 404 (VX_ENOTFOUND), 503 (VX_EBUSY:
 *                                              too many jobs queued), else 500 (VX_ELIMIT:
 *                                              too large or too slow for the cache, ...)
 *     else if (res.state == MEDIA_PLAY_PENDING) -> 503, "Retry-After: res.retry_after_s"
 *     else open(res.path) and serve it with Range as res.mime (on ENOENT, evicted between
 *          the two calls: call media_play_get again)
 *     // at shutdown (stops and joins running jobs, leaves no half file):
 *     media_play_cache_close(cache);
 *
 * Thread safety: media_play_get and media_play_cache_stats are safe from any number of threads
 * at once (one mutex per cache; production runs on the cache's own threads without it);
 * media_play_cache_close comes last, after every other call has returned. media_play_plan_for is
 * pure. media_play_produce is safe from several threads on different destination paths.
 *
 * Same file asked twice: one request starts the job, every request (the first included) waits
 * up to its wait_ms for it, then gets MEDIA_PLAY_PENDING (answer 503 + Retry-After) until the
 * entry is ready. Jobs run in the background, at most max_jobs at a time (the others queue), so
 * a huge file never blocks a worker longer than its wait_ms; a job that runs past job_timeout_ms
 * or would not fit the cache fails with VX_ELIMIT, and a failure is remembered (returned
 * without retrying) until the source changes or the cache is reopened. Two processes sharing
 * one folder may both produce an entry; the rename makes the last one win, never a mix.
 *
 * Cache entries: "<first 16 hex of media_content_hash>-<size>-<mtime ns>.<mp4|webm>", so a
 * changed source gets a new entry. Written as ".tmp-<pid>-<tid>-<name>" and renamed when
 * complete; a crash leaves only a temp file, removed by the next media_play_cache_open when its
 * process is gone. Right after each new entry, the least recently used others (mtime, touched
 * on each hit) are evicted until the total fits; an entry larger than the whole limit fails
 * with VX_ELIMIT while being written. An evicted entry that is still open keeps serving its
 * reader (unlinked files live on while open). */

typedef enum media_play_action {
    MEDIA_PLAY_AS_IS = 0,     /* serve the source file itself */
    MEDIA_PLAY_REMUX = 1,     /* copy the streams into MP4 (faststart) or WebM */
    MEDIA_PLAY_TRANSCODE = 2, /* re-encode video and/or audio (a playable stream is copied) */
} media_play_action;

typedef enum media_play_container {
    MEDIA_PLAY_SOURCE = 0, /* AS_IS: the source's own container */
    MEDIA_PLAY_MP4 = 1,    /* H.264 + AAC/MP3 */
    MEDIA_PLAY_WEBM = 2,   /* VP8/VP9 + Opus/Vorbis */
} media_play_container;

#define MEDIA_MIME_MAX 32

/* What a file needs to play in the browser. */
typedef struct media_play_plan {
    media_play_action action;
    media_play_container container;
    int video_stream;                   /* FFmpeg stream index kept, -1 when none (audio-only) */
    int audio_stream;                   /* -1 when none */
    int copy_video;                     /* 1: the video packets are copied, 0: re-encoded */
    int copy_audio;                     /* 1: the audio packets are copied, 0: re-encoded */
    char video_encoder[MEDIA_NAME_MAX]; /* "libx264" or "libvpx-vp9" when re-encoded */
    char audio_encoder[MEDIA_NAME_MAX]; /* "aac" or "libopus" when re-encoded */
    char mime[MEDIA_MIME_MAX];          /* to serve: "video/mp4", "audio/webm", ... */
    char ext[8];                        /* cache entry extension: "mp4", "webm"; "" AS_IS */
    char reason[128];                   /* why, for logs: "video codec mpeg4 is not ..." */
} media_play_plan;

/* Decides from a probe result (media_get_info) and the file's path (only its extension is
 * read: a Matroska file plays as is only when named .webm; NULL is fine). Targets: H.264/AAC
 * MP4 when the linked FFmpeg has libx264, else VP9/Opus WebM. Fails with VX_EUNSUPPORTED when
 * there is neither playable video nor audio and no encoder to make one. Pure. */
vx_status media_play_plan_for(const media_info *info, const char *path, media_play_plan *out,
                              vx_err *err);

/* Forces a transcode of whatever plan_for chose (both streams re-encoded), into target
 * (MEDIA_PLAY_SOURCE: the default, MP4 when libx264 is there); for tests and for sources a
 * browser rejects despite their codecs. */
void media_play_plan_force_transcode(media_play_plan *plan, media_play_container target);

/* Produces plan's output from src_path into dst_path synchronously (plan from this file's
 * probe; action REMUX or TRANSCODE). Writes dst_path + a temp suffix and renames it into place
 * only when complete; on any failure nothing is left under dst_path nor the temp name. stop
 * (may be NULL) is polled between packets: non-zero -> VX_EINTERRUPTED. timeout_ms > 0 -> past
 * it, VX_ELIMIT; max_bytes > 0 -> an output growing past it, VX_ELIMIT. *progress (may be NULL)
 * receives 0..1 as the output advances. Video: odd sizes are scaled to even, 10-bit and other
 * formats become 8-bit yuv420p, rotation is kept (MP4: the display matrix; WebM, which cannot
 * store one in FFmpeg 5.1: the pixels are turned upright), timestamps are the source's (VFR stays
 * VFR). Audio keeps sync (first sample at its source time), at most two channels. Subtitle and data
 * streams are dropped. */
vx_status media_play_produce(const char *src_path, const media_play_plan *plan,
                             const char *dst_path, const volatile int *stop, int64_t timeout_ms,
                             int64_t max_bytes, volatile double *progress, vx_err *err);

typedef struct media_play_cache media_play_cache;

typedef struct media_play_cache_options {
    int64_t limit_bytes;    /* total size of the entries (default 10 GiB) */
    int max_jobs;           /* productions at once (default 1) */
    int64_t job_timeout_ms; /* one production's limit (default 2 h) */
} media_play_cache_options;

media_play_cache_options media_play_cache_defaults(void);

/* Opens (creating) the cache folder dir; removes temp files left by dead processes. opts may
 * be NULL (defaults). Free with media_play_cache_close. */
vx_status media_play_cache_open(const char *dir, const media_play_cache_options *opts,
                                media_play_cache **out, vx_err *err);

/* Stops the running jobs (their temp files are removed), joins them and frees the cache.
 * No media_play_get may be in progress or follow. NULL is fine. */
void media_play_cache_close(media_play_cache *cache);

typedef enum media_play_state {
    MEDIA_PLAY_READY = 0,   /* serve path as mime */
    MEDIA_PLAY_PENDING = 1, /* being produced (or queued): retry after retry_after_s */
} media_play_state;

/* Caller-owned result of media_play_get. */
typedef struct media_play_result {
    media_play_state state;
    media_play_action action;
    char path[4096];           /* READY: the source itself (AS_IS) or the cache entry */
    char mime[MEDIA_MIME_MAX]; /* READY and PENDING: what will be served */
    double progress;           /* PENDING: 0..1 */
    int retry_after_s;         /* PENDING: a guess from progress and elapsed time (>= 1) */
} media_play_result;

/* The playable version of src_path: probes it (errors name the file: missing, not media,
 * nothing playable), then AS_IS -> READY at once; a cache hit -> READY (and marks it used);
 * else starts or joins the background job and waits up to wait_ms (0: not at all) for it ->
 * READY or PENDING. A failed job's error is returned (VX_ELIMIT for timeout / too large). */
vx_status media_play_get(media_play_cache *cache, const char *src_path, int64_t wait_ms,
                         media_play_result *out, vx_err *err);

/* Counters since open, for /metrics and tests. */
typedef struct media_play_stats {
    int64_t produced;   /* entries written */
    int64_t failed;     /* jobs that failed */
    int64_t evicted;    /* entries removed to make room */
    int64_t hits;       /* media_play_get answered from an existing entry */
    int64_t size_bytes; /* entries' total size after the last job or eviction */
    int running;        /* jobs producing or queued now */
} media_play_stats;
void media_play_cache_stats(media_play_cache *cache, media_play_stats *out);

#ifdef __cplusplus
}
#endif
#endif
