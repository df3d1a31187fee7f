/* query/qry_clip.c — clip queries: a clip (a file, an upload, or a range of an indexed video)
 * decoded and preprocessed exactly as the indexer treats a window, then through the vision
 * tower: its vector searches the catalog's vision vectors (video-to-video, one shared space). */
#include "qry_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

size_t qry__pixel_floats(const qry_engine *e)
{
    size_t t = (size_t)enc_vision_frames(e->vision), px = (size_t)enc_vision_image_size(e->vision);
    return 3 * t * px * px;
}

vx_status qry__window_pixels(const qry_engine *e, media_reader *r, int64_t start_ms, int64_t end_ms,
                             media_frames *frames, media_preproc *pp, float *pixels, vx_err *err)
{
    /* indexer/idx_run.c: media_sample_window(r, start, end, enc_vision_frames(vis)), then
     * media_preproc_frames at enc_vision_image_size with ImageNet mean/std */
    vx_status st =
        media_sample_window(r, start_ms, end_ms, enc_vision_frames(e->vision), frames, err);
    if (!st) st = media_preproc_frames(pp, frames, pixels, err);
    return st;
}

static int is_url(const char *location)
{
    return !strncmp(location, "http://", 7) || !strncmp(location, "https://", 8);
}

vx_status qry__clip_vector(qry_engine *e, st_store *s, const qry_request *req, float **vec,
                           int *dim, char **what, double *embed_ms, vx_err *err)
{
    *vec = NULL;
    *what = NULL;
    *dim = 0;
    pthread_mutex_lock(&e->mu);
    vx_status st = qry__vision_tower(e, err);
    pthread_mutex_unlock(&e->mu);
    if (st) return st;
    int size_px = enc_vision_image_size(e->vision), edim = enc_vision_embed_dim(e->vision);
    if (req->start_ms < 0 || req->end_ms < 0)
        return vx_fail(err, VX_EINVAL, "bad range: times must not be negative");
    if (req->start_ms > QRY_MAX_TIME_MS || req->end_ms > QRY_MAX_TIME_MS)
        return vx_fail(err, VX_EINVAL, "bad range: times beyond %d days", QRY_MAX_TIME_MS_DAYS);
    if (req->end_ms && req->end_ms <= req->start_ms)
        return vx_fail(err, VX_EINVAL,
                       "bad range: the end (%.3f s) must come after the start "
                       "(%.3f s)",
                       (double)req->end_ms / 1000, (double)req->start_ms / 1000);
    media_reader *r = NULL;
    st_video video = {0};
    const char *name = "upload";
    switch (req->kind) {
    case QRY_CLIP_FILE:
        name = req->clip_path;
        st = media_open(req->clip_path, MEDIA_NEED_VIDEO, &r, err);
        break;
    case QRY_CLIP_MEMORY:
        st = media_open_memory(req->clip_data, req->clip_size, name, MEDIA_NEED_VIDEO, &r, err);
        break;
    case QRY_CLIP_VIDEO:
        if ((st = st_video_get(s, req->video_id, &video, err))) break;
        name = video.location ? video.location : "";
        if (is_url(name)) {
            st = vx_fail(err, VX_EUNSUPPORTED,
                         "video %" PRId64 " is a remote file (%s): upload the clip instead",
                         req->video_id, name);
            break;
        }
        st = media_open(name, MEDIA_NEED_VIDEO, &r, err);
        break;
    default:
        st = vx_fail(err, VX_EINVAL, "not a clip query");
    }
    media_frames frames = {0};
    media_preproc *pp = NULL;
    float *pixels = NULL;
    if (st) goto out;
    int64_t duration = media_get_info(r)->duration_ms;
    if (!duration) duration = video.duration_ms;
    int64_t start = req->start_ms, end = req->end_ms;
    if (duration > 0 && start >= duration) {
        st = vx_fail(err, VX_EINVAL, "bad range: it starts at %.3f s, after the end of %s (%.3f s)",
                     (double)start / 1000, name, (double)duration / 1000);
        goto out;
    }
    if (!end) end = start + QRY_DEFAULT_WINDOW_MS;
    if (duration > 0 && end > duration) end = duration;
    if (!(*vec = malloc((size_t)edim * sizeof **vec))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = media_preproc_create(size_px, size_px, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp,
                                   err)))
        goto out;
    if (!(pixels = malloc(qry__pixel_floats(e) * sizeof *pixels))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory for the clip's pixels");
        goto out;
    }
    if ((st = qry__window_pixels(e, r, start, end, &frames, pp, pixels, err))) goto out;
    int64_t t0 = vx_now_ns();
    pthread_mutex_lock(&e->mu);
    st = enc_vision_forward(e->vision, pixels, *vec, NULL, err);
    pthread_mutex_unlock(&e->mu);
    *embed_ms += (double)(vx_now_ns() - t0) / 1e6;
    if (st) goto out;
    if (req->kind == QRY_CLIP_VIDEO)
        *what = vx_asprintf(err, "clip:video/%" PRId64 "@%" PRId64 "-%" PRId64, req->video_id,
                            start, end);
    else
        *what = vx_asprintf(err, "clip:%s@%" PRId64 "-%" PRId64, name, start, end);
    if (!*what) st = VX_ENOMEM;
    *dim = edim;
out:
    if (st) {
        free(*vec);
        *vec = NULL;
    }
    free(pixels);
    media_preproc_free(pp);
    media_frames_free(&frames);
    media_close(r);
    st_video_clear(&video);
    return st;
}
