/* media_shots.c — hard-cut (shot boundary) detection on decoded frames, streaming in bounded
 * memory: a ring of tiny thumbnails and their differences, each frame judged once its
 * neighbourhood has been decoded. The method and its thresholds are documented in media.h. */
#include "media_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixdesc.h>

#define SHOT_W 64
#define SHOT_H 36
#define SHOT_PIXELS (SHOT_W * SHOT_H)
#define SHOT_BINS 16
#define SHOT_MAX_SPAN 24
/* Holds frames i - 1 - flash .. i + max(neighbourhood, flash) and the d of i +- neighbourhood. */
#define SHOT_RING 64

typedef struct shot_frame {
    uint8_t plane[3][SHOT_PIXELS]; /* Y, U, V at 64x36 */
    float hist[3][SHOT_BINS];      /* soft histograms, each summing to 1 */
    int64_t pts_ms;
    double d; /* difference to the previous frame (0 for the first) */
} shot_frame;

typedef struct shot_detector {
    media_shot_options o;
    shot_frame ring[SHOT_RING];
    int64_t count; /* frames pushed */
    int64_t next;  /* next frame to judge */
    struct SwsContext *sws;
    int64_t *cuts;
    double *strength; /* d of each kept cut */
    size_t ncuts, cap;
} shot_detector;

media_shot_options media_shot_options_default(void)
{
    return (media_shot_options){.min_difference = 0.10,
                                .outlier_ratio = 3.0,
                                .neighbourhood_frames = 8,
                                .flash_frames = 8,
                                .flash_similarity = 0.4,
                                .min_shot_ms = 500,
                                .reference_frames_only = 0};
}

static shot_frame *at(shot_detector *sd, int64_t i)
{
    return &sd->ring[i % SHOT_RING];
}

/* Soft binning: a value between two bin centres splits its weight between them, so a slow
 * brightness ramp moves histogram mass smoothly instead of in jumps of a whole bin. */
static void soft_histogram(const uint8_t *p, float *hist)
{
    const float width = 256.0f / SHOT_BINS;
    float acc[SHOT_BINS] = {0};
    for (int k = 0; k < SHOT_PIXELS; k++) {
        float x = ((float)p[k] + 0.5f) / width - 0.5f; /* position in bin-centre units */
        if (x <= 0.0f) {
            acc[0] += 1.0f;
        } else if (x >= SHOT_BINS - 1) {
            acc[SHOT_BINS - 1] += 1.0f;
        } else {
            int b = (int)x;
            float f = x - (float)b;
            acc[b] += 1.0f - f;
            acc[b + 1] += f;
        }
    }
    for (int b = 0; b < SHOT_BINS; b++)
        hist[b] = acc[b] / (float)SHOT_PIXELS;
}

/* Distance of two thumbnails in [0, 1] (media.h). */
static double frame_distance(const shot_frame *a, const shot_frame *b)
{
    int64_t sad = 0;
    for (int k = 0; k < SHOT_PIXELS; k++)
        sad += abs((int)a->plane[0][k] - (int)b->plane[0][k]);
    double pix = (double)sad / (255.0 * SHOT_PIXELS);
    double h = 0.0;
    for (int c = 0; c < 3; c++)
        for (int bin = 0; bin < SHOT_BINS; bin++)
            h += fabs((double)a->hist[c][bin] - (double)b->hist[c][bin]);
    return 0.5 * pix + 0.5 * (h / 6.0);
}

static vx_status add_cut(shot_detector *sd, int64_t pts_ms, double strength, vx_err *err)
{
    if (sd->ncuts > 0 && pts_ms - sd->cuts[sd->ncuts - 1] < sd->o.min_shot_ms) {
        /* Too close to the previous cut: the stronger one stands. */
        if (strength > sd->strength[sd->ncuts - 1]) {
            sd->cuts[sd->ncuts - 1] = pts_ms;
            sd->strength[sd->ncuts - 1] = strength;
        }
        return VX_OK;
    }
    if (sd->ncuts == sd->cap) {
        size_t cap = sd->cap ? sd->cap * 2 : 64;
        int64_t *c = realloc(sd->cuts, cap * sizeof *c);
        if (!c) return vx_fail(err, VX_ENOMEM, "out of memory");
        sd->cuts = c;
        double *s = realloc(sd->strength, cap * sizeof *s);
        if (!s) return vx_fail(err, VX_ENOMEM, "out of memory");
        sd->strength = s;
        sd->cap = cap;
    }
    sd->cuts[sd->ncuts] = pts_ms;
    sd->strength[sd->ncuts] = strength;
    sd->ncuts++;
    return VX_OK;
}

/* Judges frame i; frames up to sd->count - 1 are known (fewer than the full neighbourhood
 * only at the end of the video). */
static vx_status judge(shot_detector *sd, int64_t i, vx_err *err)
{
    if (i < 1) return VX_OK; /* the first frame starts the first shot: no cut */
    const media_shot_options *o = &sd->o;
    double di = at(sd, i)->d;
    if (di < o->min_difference) return VX_OK;
    int64_t lo = i - o->neighbourhood_frames, hi = i + o->neighbourhood_frames;
    if (lo < 1) lo = 1;
    if (hi > sd->count - 1) hi = sd->count - 1;
    double sum = 0.0;
    int n = 0;
    for (int64_t j = lo; j <= hi; j++) {
        if (j == i) continue;
        double dj = at(sd, j)->d;
        if (dj > di || (j < i && dj == di)) return VX_OK; /* not the local maximum */
        sum += dj;
        n++;
    }
    if (n > 0 && di < o->outlier_ratio * (sum / n)) return VX_OK;
    double similar = o->flash_similarity * di;
    const shot_frame *before = at(sd, i - 1), *after = at(sd, i);
    for (int k = 1; k <= o->flash_frames; k++) {
        if (i + k < sd->count && frame_distance(before, at(sd, i + k)) < similar)
            return VX_OK; /* the old picture comes back: a flash begins at i */
        if (i - 1 - k >= 0 && frame_distance(after, at(sd, i - 1 - k)) < similar)
            return VX_OK; /* the new picture was there just before: a flash ends at i */
    }
    return add_cut(sd, after->pts_ms, di, err);
}

/* Frames that can be judged now: those whose whole neighbourhood has been decoded. */
static vx_status judge_ready(shot_detector *sd, int at_end, vx_err *err)
{
    int ahead = sd->o.neighbourhood_frames > sd->o.flash_frames ? sd->o.neighbourhood_frames
                                                                : sd->o.flash_frames;
    while (sd->next < sd->count && (at_end || sd->next + ahead < sd->count)) {
        vx_status st = judge(sd, sd->next, err);
        if (st != VX_OK) return st;
        sd->next++;
    }
    return VX_OK;
}

/* The thumbnail of an 8-bit planar YUV frame (what most decoders give): each cell the mean of
 * every other pixel of every other row of its area, rounded. About 10x cheaper than swscale's
 * area filter at 1080p, which cost as much as decoding. Returns 0 for other formats. */
static int thumbnail_planar_yuv8(const AVFrame *f, shot_frame *cur)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)f->format);
    const uint64_t unsuitable = AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_PAL |
                                AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM |
                                AV_PIX_FMT_FLAG_FLOAT;
    if (!d || (d->flags & unsuitable) || !(d->flags & AV_PIX_FMT_FLAG_PLANAR) ||
        d->nb_components < 3)
        return 0;
    for (int c = 0; c < 3; c++)
        if (d->comp[c].depth != 8 || d->comp[c].plane != c || d->comp[c].step != 1 ||
            d->comp[c].shift != 0 || d->comp[c].offset != 0)
            return 0;
    for (int c = 0; c < 3; c++) {
        int pw = c ? AV_CEIL_RSHIFT(f->width, d->log2_chroma_w) : f->width;
        int ph = c ? AV_CEIL_RSHIFT(f->height, d->log2_chroma_h) : f->height;
        if (pw < SHOT_W || ph < SHOT_H || !f->data[c]) return 0;
    }
    for (int c = 0; c < 3; c++) {
        int pw = c ? AV_CEIL_RSHIFT(f->width, d->log2_chroma_w) : f->width;
        int ph = c ? AV_CEIL_RSHIFT(f->height, d->log2_chroma_h) : f->height;
        const uint8_t *base = f->data[c];
        ptrdiff_t stride = f->linesize[c];
        for (int cy = 0; cy < SHOT_H; cy++) {
            int y0 = (int)((int64_t)cy * ph / SHOT_H), y1 = (int)((int64_t)(cy + 1) * ph / SHOT_H);
            for (int cx = 0; cx < SHOT_W; cx++) {
                int x0 = (int)((int64_t)cx * pw / SHOT_W);
                int x1 = (int)((int64_t)(cx + 1) * pw / SHOT_W);
                uint32_t sum = 0, n = 0;
                for (int y = y0; y < y1; y += 2) {
                    const uint8_t *row = base + (ptrdiff_t)y * stride;
                    for (int x = x0; x < x1; x += 2)
                        sum += row[x];
                    n += (uint32_t)(x1 - x0 + 1) / 2;
                }
                cur->plane[c][cy * SHOT_W + cx] = (uint8_t)((sum + n / 2) / n);
            }
        }
    }
    return 1;
}

static vx_status push_frame(media_reader *r, shot_detector *sd, const AVFrame *f, int64_t pts_ms,
                            vx_err *err)
{
    shot_frame *cur = at(sd, sd->count);
    if (thumbnail_planar_yuv8(f, cur)) goto analyse;
    sd->sws = sws_getCachedContext(sd->sws, f->width, f->height, (enum AVPixelFormat)f->format,
                                   SHOT_W, SHOT_H, AV_PIX_FMT_YUV444P, SWS_AREA, NULL, NULL, NULL);
    if (!sd->sws)
        return vx_fail(err, VX_EUNSUPPORTED,
                       "%s: cannot convert %dx%d %s frames for shot detection", r->name, f->width,
                       f->height,
                       av_get_pix_fmt_name((enum AVPixelFormat)f->format)
                           ? av_get_pix_fmt_name((enum AVPixelFormat)f->format)
                           : "?");
    uint8_t *dst[4] = {cur->plane[0], cur->plane[1], cur->plane[2], NULL};
    int dst_stride[4] = {SHOT_W, SHOT_W, SHOT_W, 0};
    if (sws_scale(sd->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                  dst_stride) != SHOT_H)
        return vx_fail(err, VX_EUNSUPPORTED, "%s: frame conversion failed in shot detection",
                       r->name);
analyse:
    for (int c = 0; c < 3; c++)
        soft_histogram(cur->plane[c], cur->hist[c]);
    cur->pts_ms = pts_ms;
    cur->d = sd->count > 0 ? frame_distance(at(sd, sd->count - 1), cur) : 0.0;
    sd->count++;
    return judge_ready(sd, 0, err);
}

static vx_status check_options(const media_reader *r, const media_shot_options *o, vx_err *err)
{
    if (!(o->min_difference >= 0.0 && o->min_difference <= 1.0) ||
        !(o->outlier_ratio >= 1.0 && o->outlier_ratio <= 1000.0) ||
        !(o->flash_similarity >= 0.0 && o->flash_similarity <= 1.0))
        return vx_fail(err, VX_EINVAL, "%s: shot detection thresholds out of range", r->name);
    if (o->neighbourhood_frames < 1 || o->neighbourhood_frames > SHOT_MAX_SPAN ||
        o->flash_frames < 0 || o->flash_frames > SHOT_MAX_SPAN)
        return vx_fail(err, VX_EINVAL,
                       "%s: shot detection neighbourhood %d / flash %d frames outside [1|0, %d]",
                       r->name, o->neighbourhood_frames, o->flash_frames, SHOT_MAX_SPAN);
    if (o->min_shot_ms < 0)
        return vx_fail(err, VX_EINVAL, "%s: negative minimum shot length", r->name);
    return VX_OK;
}

vx_status media_detect_shots(media_reader *r, const media_shot_options *opts, int64_t **out_cuts_ms,
                             size_t *out_count, media_shot_stats *stats, vx_err *err)
{
    if (!r || !out_cuts_ms || !out_count)
        return vx_fail(err, VX_EINVAL, "media_detect_shots: NULL argument");
    *out_cuts_ms = NULL;
    *out_count = 0;
    if (stats) *stats = (media_shot_stats){0};
    media_shot_options o = opts ? *opts : media_shot_options_default();
    vx_status st = check_options(r, &o, err);
    if (st != VX_OK) return st;
    int64_t t0 = vx_now_ns();
    st = media_video_rewind(r, err);
    if (st != VX_OK) return st;
    shot_detector *sd = calloc(1, sizeof *sd);
    if (!sd) return vx_fail(err, VX_ENOMEM, "out of memory");
    sd->o = o;
    /* Decoder shortcuts for this pass only; the samplers get the full decode back. */
    enum AVDiscard skip_frame = r->vdec->skip_frame, skip_loop = r->vdec->skip_loop_filter;
    r->vdec->skip_loop_filter = AVDISCARD_ALL;
    if (o.reference_frames_only) r->vdec->skip_frame = AVDISCARD_NONREF;
    const AVFrame *f;
    int64_t pts_ms = 0;
    while ((f = media_video_next(r, &pts_ms)) != NULL) {
        if ((st = push_frame(r, sd, f, pts_ms, err)) != VX_OK) break;
    }
    if (f) media_video_pass_end(r);
    r->vdec->skip_frame = skip_frame;
    r->vdec->skip_loop_filter = skip_loop;
    /* The flags take effect from the next frame decoded: start the samplers clean. */
    avcodec_flush_buffers(r->vdec);
    if (st == VX_OK) st = judge_ready(sd, 1, err);
    if (st == VX_OK) {
        *out_cuts_ms = sd->cuts;
        *out_count = sd->ncuts;
        sd->cuts = NULL;
        if (stats) {
            stats->frames = sd->count;
            stats->seconds = (double)(vx_now_ns() - t0) / 1e9;
        }
    }
    sws_freeContext(sd->sws);
    free(sd->cuts);
    free(sd->strength);
    free(sd);
    return st;
}
