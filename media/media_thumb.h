/* media/media_thumb.h — two small media services the indexer needs: the content hash of a
 * file's head and tail (its identity when size and mtime are not enough) and JPEG thumbnails
 * through FFmpeg's mjpeg encoder. Written as part of media.h (prefix media_); kept in its own
 * file pair until the media owner merges it. Compiled into vx_indexer for now.
 *
 * Thread safety: media_content_hash is reentrant. A media_jpeg is used by one thread at a
 * time; different ones may be used from different threads at once. */
#ifndef VIDX_MEDIA_THUMB_H
#define VIDX_MEDIA_THUMB_H

#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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
