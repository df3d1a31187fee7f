/* media_preproc.c — the encoder's input: torchvision 0.14 tensor Resize((H, W), BICUBIC) on
 * uint8 RGB, reproduced bit for bit, then x/255 and per-channel mean/std into a [3, T, H, W]
 * float tensor.
 *
 * What Debian's torch 1.13 computes (upsample_bicubic2d on the float copy torchvision makes of
 * the uint8 image; measured against it, see tests/media/make_resize_golden.py), per axis:
 *   scale = (float)in / out; src = scale * (i + 0.5) - 0.5 evaluated in double;
 *   i0 = floorf((float)src); t = (float)(src - i0)   (t may be a hair below 0);
 *   taps i0-1 .. i0+2 clamped to the edge; weights from the a = -0.75 cubic convolution in
 *   float, with the first two steps of each polynomial fused (FMA), as the AVX2 build
 *   compiled them; each output pixel is sum_j wy_j * (sum_k wx_k * src[y_j][x_k]) where each
 *   4-term sum is fma(v3, w3, fma(v2, w2, fma(v0, w0, v1 * w1))).
 * The inner (width) sums do not depend on the output row, so we compute them once per input
 * row: a horizontal pass into a float buffer, then the vertical pass; both give the same
 * floats as torch. torchvision then clamps to [0, 255] and rounds half to even (rintf).
 * Matching needs exactly these roundings: this file is compiled with -ffp-contract=off and
 * every fusion is an explicit fmaf (exactly rounded whether the CPU has FMA or not; the
 * target_clones below only make it fast where it has). */
#include "media.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const float MEDIA_IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
const float MEDIA_IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

struct media_preproc {
    int out_w, out_h;
    float mean[3], std[3];
    int in_w, in_h;   /* the plan below is for this input size (0 = none yet) */
    int32_t *x_tap;   /* [out_w, 4] source columns, clamped */
    float *x_weight;  /* [out_w, 4] */
    int32_t *y_tap;   /* [out_h, 4] source rows, clamped */
    float *y_weight;  /* [out_h, 4] */
    float *rows;      /* [in_h, out_w, 3] horizontal pass */
    size_t rows_cap;  /* floats allocated in rows */
    uint8_t *resized; /* [out_h, out_w, 3] */
};

static float cubic_near(float x, float a) /* |x| <= 1 */
{
    return fmaf(a + 2, x, -(a + 3)) * x * x + 1;
}

static float cubic_far(float x, float a) /* 1 < |x| < 2 */
{
    return fmaf(fmaf(a, x, -5 * a), x, 8 * a) * x - 4 * a;
}

/* v0 w0 + v1 w1 + v2 w2 + v3 w3, rounded as torch's kernel rounds it */
static inline float dot4(float v0, float w0, float v1, float w1, float v2, float w2, float v3,
                         float w3)
{
    return fmaf(v3, w3, fmaf(v2, w2, fmaf(v0, w0, v1 * w1)));
}

/* One axis: out_size taps and weights for in_size -> out_size. */
static void plan_axis(int in_size, int out_size, int32_t *tap, float *weight)
{
    const float scale = (float)in_size / (float)out_size;
    const float a = -0.75f;
    for (int i = 0; i < out_size; i++) {
        double src = (double)scale * ((double)i + 0.5) - 0.5;
        int64_t i0 = (int64_t)floorf((float)src);
        float t = (float)(src - (double)i0);
        float x1 = t, x2 = 1.0f - t;
        weight[i * 4 + 0] = cubic_far(x1 + 1.0f, a);
        weight[i * 4 + 1] = cubic_near(x1, a);
        weight[i * 4 + 2] = cubic_near(x2, a);
        weight[i * 4 + 3] = cubic_far(x2 + 1.0f, a);
        for (int k = 0; k < 4; k++) {
            int64_t s = i0 - 1 + k;
            if (s < 0) s = 0;
            if (s > in_size - 1) s = in_size - 1;
            tap[i * 4 + k] = (int32_t)s;
        }
    }
}

vx_status media_preproc_create(int out_width_px, int out_height_px, const float mean[3],
                               const float std[3], media_preproc **out, vx_err *err)
{
    if (!out) return vx_fail(err, VX_EINVAL, "media_preproc_create: out is NULL");
    *out = NULL;
    if (out_width_px < 1 || out_height_px < 1 || out_width_px > 16384 || out_height_px > 16384)
        return vx_fail(err, VX_EINVAL, "preprocessing: output size %dx%d is invalid", out_width_px,
                       out_height_px);
    if (!mean || !std) return vx_fail(err, VX_EINVAL, "preprocessing: mean or std is NULL");
    for (int c = 0; c < 3; c++)
        if (!(std[c] > 0) || !isfinite(mean[c]))
            return vx_fail(err, VX_EINVAL, "preprocessing: channel %d has std %g, mean %g", c,
                           (double)std[c], (double)mean[c]);
    media_preproc *pp = vx_calloc_array(1, sizeof *pp, err);
    if (!pp) return err ? err->status : VX_ENOMEM;
    pp->out_w = out_width_px;
    pp->out_h = out_height_px;
    memcpy(pp->mean, mean, sizeof pp->mean);
    memcpy(pp->std, std, sizeof pp->std);
    pp->x_tap = vx_calloc_array((size_t)out_width_px * 4, sizeof *pp->x_tap, err);
    pp->x_weight = vx_calloc_array((size_t)out_width_px * 4, sizeof *pp->x_weight, err);
    pp->y_tap = vx_calloc_array((size_t)out_height_px * 4, sizeof *pp->y_tap, err);
    pp->y_weight = vx_calloc_array((size_t)out_height_px * 4, sizeof *pp->y_weight, err);
    pp->resized = vx_calloc_array((size_t)out_width_px * out_height_px, 3, err);
    if (!pp->x_tap || !pp->x_weight || !pp->y_tap || !pp->y_weight || !pp->resized) {
        media_preproc_free(pp);
        return err ? err->status : VX_ENOMEM;
    }
    *out = pp;
    return VX_OK;
}

void media_preproc_free(media_preproc *pp)
{
    if (!pp) return;
    free(pp->x_tap);
    free(pp->x_weight);
    free(pp->y_tap);
    free(pp->y_weight);
    free(pp->rows);
    free(pp->resized);
    free(pp);
}

size_t media_preproc_tensor_floats(const media_preproc *pp, int num_frames)
{
    if (!pp || num_frames < 1) return 0;
    return (size_t)3 * (size_t)num_frames * (size_t)pp->out_h * (size_t)pp->out_w;
}

/* Builds the plan for in_w x in_h (only when the input size changes). */
static vx_status ensure_plan(media_preproc *pp, int in_w, int in_h, vx_err *err)
{
    if (pp->in_w == in_w && pp->in_h == in_h) return VX_OK;
    size_t need = (size_t)in_h * (size_t)pp->out_w * 3u;
    if (need > pp->rows_cap) {
        float *p = realloc(pp->rows, need * sizeof *p);
        if (!p)
            return vx_fail(err, VX_ENOMEM, "preprocessing: out of memory for %dx%d input", in_w,
                           in_h);
        pp->rows = p;
        pp->rows_cap = need;
    }
    plan_axis(in_w, pp->out_w, pp->x_tap, pp->x_weight);
    plan_axis(in_h, pp->out_h, pp->y_tap, pp->y_weight);
    pp->in_w = in_w;
    pp->in_h = in_h;
    return VX_OK;
}

/* The two passes of media_resize_rgb24; cloned so that CPUs with FMA run fmaf as one
 * instruction (the results are identical either way: fmaf is exactly rounded). */
__attribute__((target_clones("fma", "default"))) static void
resize_passes(const media_preproc *pp, const uint8_t *rgb, int in_h, size_t in_stride,
              uint8_t *out_rgb)
{
    const int ow = pp->out_w, oh = pp->out_h;

    /* Horizontal: rows[y][x][c] = sum_k wx_k * src[y][tap_k][c]: [in_h, in_w, 3] -> [in_h, ow, 3]
     */
    for (int y = 0; y < in_h; y++) {
        const uint8_t *src = rgb + (size_t)y * in_stride;
        float *dst = pp->rows + (size_t)y * ow * 3;
        for (int x = 0; x < ow; x++) {
            const int32_t *tap = pp->x_tap + x * 4;
            const float *w = pp->x_weight + x * 4;
            for (int c = 0; c < 3; c++)
                dst[x * 3 + c] = dot4(src[tap[0] * 3 + c], w[0], src[tap[1] * 3 + c], w[1],
                                      src[tap[2] * 3 + c], w[2], src[tap[3] * 3 + c], w[3]);
        }
    }
    /* Vertical, clamp, round half to even: [in_h, ow, 3] -> [oh, ow, 3] */
    const size_t row_floats = (size_t)ow * 3;
    for (int y = 0; y < oh; y++) {
        const int32_t *tap = pp->y_tap + y * 4;
        const float *w = pp->y_weight + y * 4;
        const float *r0 = pp->rows + (size_t)tap[0] * row_floats;
        const float *r1 = pp->rows + (size_t)tap[1] * row_floats;
        const float *r2 = pp->rows + (size_t)tap[2] * row_floats;
        const float *r3 = pp->rows + (size_t)tap[3] * row_floats;
        uint8_t *dst = out_rgb + (size_t)y * row_floats;
        for (size_t i = 0; i < row_floats; i++) {
            float acc = dot4(r0[i], w[0], r1[i], w[1], r2[i], w[2], r3[i], w[3]);
            if (!(acc > 0.0f)) acc = 0.0f; /* also maps NaN to 0 */
            if (acc > 255.0f) acc = 255.0f;
            dst[i] = (uint8_t)rintf(acc);
        }
    }
}

vx_status media_resize_rgb24(media_preproc *pp, const uint8_t *rgb, int in_w, int in_h,
                             size_t in_stride, uint8_t *out_rgb, vx_err *err)
{
    if (!pp || !rgb || !out_rgb) return vx_fail(err, VX_EINVAL, "resize: NULL argument");
    if (in_w < 1 || in_h < 1 || in_w > 65536 || in_h > 65536 || in_stride < (size_t)in_w * 3)
        return vx_fail(err, VX_EINVAL, "resize: invalid input %dx%d (stride %zu bytes)", in_w, in_h,
                       in_stride);
    vx_status st = ensure_plan(pp, in_w, in_h, err);
    if (st != VX_OK) return st;
    resize_passes(pp, rgb, in_h, in_stride, out_rgb);
    return VX_OK;
}

void media_normalize_rgb24(const uint8_t *rgb, int width_px, int height_px, const float mean[3],
                           const float std[3], int num_frames, int t, float *out)
{
    const size_t plane = (size_t)width_px * (size_t)height_px;
    for (int c = 0; c < 3; c++) {
        float *dst = out + ((size_t)c * (size_t)num_frames + (size_t)t) * plane;
        const float m = mean[c], s = std[c];
        for (size_t i = 0; i < plane; i++) {
            float x = (float)rgb[i * 3 + c] / 255.0f;
            dst[i] = (x - m) / s;
        }
    }
}

vx_status media_preproc_frames(media_preproc *pp, const media_frames *frames, float *out,
                               vx_err *err)
{
    if (!pp || !frames || !out) return vx_fail(err, VX_EINVAL, "preprocessing: NULL argument");
    if (frames->count < 1 || !frames->rgb)
        return vx_fail(err, VX_EINVAL, "preprocessing: no frames");
    for (int t = 0; t < frames->count; t++) {
        vx_status st =
            media_resize_rgb24(pp, media_frames_at(frames, t), frames->width_px, frames->height_px,
                               (size_t)frames->width_px * 3, pp->resized, err);
        if (st != VX_OK) return st;
        media_normalize_rgb24(pp->resized, pp->out_w, pp->out_h, pp->mean, pp->std, frames->count,
                              t, out);
    }
    return VX_OK;
}
