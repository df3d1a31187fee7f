/* kernels/ — the CUDA side of the encoder's backend: our kernels (norms, GELU, flash-style
 * attention, patch extraction, frame preprocessing, casts) and GEMMs through cuBLASLt.
 * Plain C API so encoder/ (C) can call it; nothing here knows about models.
 *
 * Thread safety: a kern_ctx owns one CUDA stream and one cuBLASLt handle; use it from one
 * thread at a time. All op functions enqueue work on that stream and return at once; launch
 * errors are reported by the call, asynchronous faults by the next kern_sync().
 *
 * Data: every pointer passed to an op is device memory from kern_malloc (or a view into it),
 * row-major. Activations are KERN_F32 or KERN_BF16 (the `dt` argument); norm weights, biases
 * and LayerScale gammas are always f32; accumulation is always f32.
 *
 * Usage:
 *     kern_ctx *gpu;
 *     if (kern_open(0, 32 << 20, &gpu, &err)) { ...fall back to the CPU, say so once... }
 *     kern_malloc(gpu, bytes, &x, &err); kern_upload(gpu, x, host, bytes, &err);
 *     kern_rmsnorm(gpu, KERN_F32, x, C, w, x, C, rows, C, 1e-6f, &err);
 *     kern_sync(gpu, &err); kern_download(...); kern_free(gpu, x); kern_close(gpu);
 */
#ifndef VIDX_KERN_H
#define VIDX_KERN_H

#include "vx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kern_dtype { KERN_F32 = 0, KERN_BF16 = 1 } kern_dtype;

typedef struct kern_ctx kern_ctx;

/* Opens device `device` with a cuBLASLt workspace of workspace_bytes. Any CUDA initialisation
 * failure (no GPU, no driver: "CUDA driver version is insufficient") is VX_EUNSUPPORTED with
 * CUDA's message, so callers fall back to the CPU. *out is freed by kern_close. */
vx_status kern_open(int device, size_t workspace_bytes, kern_ctx **out, vx_err *err);
/* Waits for the stream, frees everything the context owns. NULL is fine. */
void kern_close(kern_ctx *ctx);
/* "NVIDIA H100 80GB HBM3 (sm_90)"; lives as long as ctx. */
const char *kern_device_name(const kern_ctx *ctx);

/* Device memory, owned by the caller; kern_free accepts NULL. */
vx_status kern_malloc(kern_ctx *ctx, size_t bytes, void **out, vx_err *err);
void kern_free(kern_ctx *ctx, void *dev);
/* Copies on the context's stream; the host buffer must stay valid until kern_sync. */
vx_status kern_upload(kern_ctx *ctx, void *dev_dst, const void *host_src, size_t bytes, vx_err *err);
vx_status kern_download(kern_ctx *ctx, void *host_dst, const void *dev_src, size_t bytes,
                        vx_err *err);
/* Waits for all work on the stream; reports any fault since the last sync. */
vx_status kern_sync(kern_ctx *ctx, vx_err *err);

/* x: [n] of type from -> y: [n] of type to (f32 -> bf16 rounds to nearest even). */
vx_status kern_cast(kern_ctx *ctx, kern_dtype from, const void *x, kern_dtype to, void *y,
                    size_t n, vx_err *err);

/* x: [rows, cols] (row stride x_stride) -> y: [rows, cols] (stride y_stride);
 * y = w ⊙ x / sqrt(mean(x²) + eps). In place allowed. The QK-norm is this op on the q and k
 * column ranges of the fused qkv matrix (stride 3C). */
vx_status kern_rmsnorm(kern_ctx *ctx, kern_dtype dt, const void *x, int x_stride, const float *w,
                       void *y, int y_stride, int rows, int cols, float eps, vx_err *err);

/* x: [rows, cols] -> y: [rows, cols]; y = (x − mean) / sqrt(var + eps) ⊙ w + b. In place ok. */
vx_status kern_layernorm(kern_ctx *ctx, kern_dtype dt, const void *x, int x_stride,
                         const float *w, const float *b, void *y, int y_stride, int rows, int cols,
                         float eps, vx_err *err);

/* x: [rows, cols] in place: x += bias (broadcast over rows), then GELU when gelu != 0
 * (1 = tanh approximation, 2 = erf). */
vx_status kern_bias_gelu(kern_ctx *ctx, kern_dtype dt, void *x, const float *bias, int rows,
                         int cols, int gelu, vx_err *err);

/* y: [rows, cols] += gamma ⊙ (h + bias): the residual add with LayerScale (gamma NULL = 1,
 * bias NULL = 0). */
vx_status kern_residual(kern_ctx *ctx, kern_dtype dt, void *y, const void *h, const float *bias,
                        const float *gamma, int rows, int cols, vx_err *err);

/* c: [m, n] = a: [m, k] · w: [n, k]ᵀ, through cuBLASLt with f32 accumulation. a, w and c share
 * dt. Weights keep PyTorch's (out, in) layout. */
vx_status kern_gemm(kern_ctx *ctx, kern_dtype dt, const void *a, const void *w, void *c, int m,
                    int n, int k, vx_err *err);

/* Flash-style attention, no N×N matrix: for each head h,
 *   out[i, h·d : (h+1)·d] = softmax_j(scale · q_i·k_j) · v_j
 * q: [nq, heads·d] (row stride q_stride), k, v: [nk, heads·d] (row stride kv_stride),
 * out: [nq, heads·d] (row stride out_stride). head_dim ≤ 256. */
vx_status kern_attention(kern_ctx *ctx, kern_dtype dt, const void *q, int q_stride, const void *k,
                         const void *v, int kv_stride, void *out, int out_stride, int nq, int nk,
                         int heads, int head_dim, float scale, vx_err *err);

/* x: [rows, cols] -> y: [cols] = mean over rows (the pooling head's query). */
vx_status kern_mean_rows(kern_ctx *ctx, kern_dtype dt, const void *x, void *y, int rows, int cols,
                         vx_err *err);

/* x: [rows, cols] in place: each row divided by its L2 norm (zero rows stay zero). f32 only. */
vx_status kern_l2_normalize(kern_ctx *ctx, float *x, int rows, int cols, vx_err *err);

/* pixels: [3, t, h, w] f32 -> patches: [t·(h/p)·(w/p), 3·p·p] of type dt, columns in the
 * Conv3d weight order (channel, ky, kx), rows time-major then row-major: the patch
 * embedding becomes one GEMM. h and w must be multiples of p. */
vx_status kern_im2col_patches(kern_ctx *ctx, kern_dtype dt, const float *pixels, void *patches,
                              int t, int h, int w, int p, vx_err *err);

/* frames: [t, h_in, w_in, 3] RGB24 -> out: [3, t, h, w] f32, as torchvision 0.14 tensor
 * Resize(BICUBIC, antialias=False): a = −0.75, align_corners=False, edge-clamped taps,
 * clamped to [0, 255] and rounded half to even back to integers; then (x/255 − mean) / std. */
vx_status kern_preprocess(kern_ctx *ctx, const uint8_t *frames, int t, int h_in, int w_in,
                          float *out, int h, int w, const float mean[3], const float std[3],
                          vx_err *err);

#ifdef __cplusplus
}
#endif
#endif
