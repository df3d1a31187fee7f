// Our CUDA kernels behind kern.h: norms, bias + GELU, residual with LayerScale, flash-style
// attention, row mean, L2 normalisation, patch extraction, frame preprocessing, casts.
// Every kernel loads its inputs as f32 (from f32 or bf16) and accumulates in f32.
#include "kern_impl.h"

#include <cuda_bf16.h>
#include <math.h>

namespace {

__device__ __forceinline__ float load_f(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float load_f(const __nv_bfloat16 *p, size_t i)
{
    return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store_f(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f(__nv_bfloat16 *p, size_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ float block_sum(float v)
{
    __shared__ float partial[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < (int)(blockDim.x >> 5) ? partial[lane] : 0.f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    float r = total;
    __syncthreads(); // partial/total are reused by the next call
    return r;
}

// ---- casts --------------------------------------------------------------------------------

template <typename S, typename D> __global__ void cast_kernel(const S *x, D *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        store_f(y, i, load_f(x, i));
}

// ---- norms: one block per row ---------------------------------------------------------------

template <typename T>
__global__ void rmsnorm_kernel(const T *x, int x_stride, const float *w, T *y, int y_stride,
                               int cols, float eps)
{
    const T *xr = x + (size_t)blockIdx.x * x_stride;
    T *yr = y + (size_t)blockIdx.x * y_stride;
    float ss = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = load_f(xr, c);
        ss += v * v;
    }
    float inv = rsqrtf(block_sum(ss) / (float)cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) store_f(yr, c, w[c] * (load_f(xr, c) * inv));
}

template <typename T>
__global__ void layernorm_kernel(const T *x, int x_stride, const float *w, const float *b, T *y,
                                 int y_stride, int cols, float eps)
{
    const T *xr = x + (size_t)blockIdx.x * x_stride;
    T *yr = y + (size_t)blockIdx.x * y_stride;
    float s = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += load_f(xr, c);
    float mean = block_sum(s) / (float)cols;
    // Two passes (mean, then squared deviations) as PyTorch does: no cancellation.
    float sq = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = load_f(xr, c) - mean;
        sq += d * d;
    }
    float inv = rsqrtf(block_sum(sq) / (float)cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        store_f(yr, c, (load_f(xr, c) - mean) * inv * w[c] + b[c]);
}

// ---- elementwise ------------------------------------------------------------------------------

__device__ __forceinline__ float gelu_tanh(float x)
{
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.7071067811865476f)); }

template <typename T>
__global__ void bias_gelu_kernel(T *x, const float *bias, size_t rows, int cols, int gelu)
{
    size_t n = rows * (size_t)cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = load_f(x, i);
        if (bias) v += bias[i % cols];
        if (gelu == 1) v = gelu_tanh(v);
        else if (gelu == 2) v = gelu_erf(v);
        store_f(x, i, v);
    }
}

template <typename T>
__global__ void residual_kernel(T *y, const T *h, const float *bias, const float *gamma,
                                size_t rows, int cols)
{
    size_t n = rows * (size_t)cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % cols);
        float v = load_f(h, i) + (bias ? bias[c] : 0.f);
        if (gamma) v *= gamma[c];
        store_f(y, i, load_f(y, i) + v);
    }
}

// x: [rows, cols] -> y: [cols]; one thread per column, rows summed in order.
template <typename T> __global__ void mean_rows_kernel(const T *x, T *y, int rows, int cols)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += load_f(x, (size_t)r * cols + c);
    store_f(y, c, s / (float)rows);
}

__global__ void l2_normalize_kernel(float *x, int cols)
{
    float *xr = x + (size_t)blockIdx.x * cols;
    float ss = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) ss += xr[c] * xr[c];
    float norm = sqrtf(block_sum(ss));
    if (norm == 0.f) return;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) xr[c] /= norm;
}

// ---- attention ------------------------------------------------------------------------------
//
// One warp per query row, ATT_ROWS rows per block sharing K/V tiles of 32 keys in shared
// memory. Within a tile each lane scores one key; the online softmax keeps the running max m
// and sum l per row, rescaling the accumulator when the max grows; each lane accumulates
// head_dim/32 output channels. Memory is O(tile), never O(nq·nk).

constexpr int ATT_ROWS = 8;
constexpr int ATT_TILE = 32;
constexpr int ATT_MAX_DIM = 256;

template <typename T>
__global__ void attention_kernel(const T *q, int q_stride, const T *k, const T *v, int kv_stride,
                                 T *out, int out_stride, int nq, int nk, int d, float scale)
{
    extern __shared__ float smem[];
    const int kpad = d + 1; // odd stride: lanes reading different keys hit different banks
    float *ks = smem;                       // [ATT_TILE][d + 1]
    float *vs = ks + ATT_TILE * kpad;       // [ATT_TILE][d]
    float *qs = vs + ATT_TILE * d;          // [ATT_ROWS][d]
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row = blockIdx.x * ATT_ROWS + warp;
    const int head = blockIdx.y;
    const bool active = row < nq;
    const size_t col0 = (size_t)head * d;

    for (int c = lane; c < d; c += 32)
        qs[warp * d + c] = active ? load_f(q, (size_t)row * q_stride + col0 + c) * scale : 0.f;

    float acc[ATT_MAX_DIM / 32];
#pragma unroll
    for (int i = 0; i < ATT_MAX_DIM / 32; i++) acc[i] = 0.f;
    float m = -INFINITY, l = 0.f;

    for (int start = 0; start < nk; start += ATT_TILE) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_TILE * d; idx += blockDim.x) {
            int j = idx / d, c = idx % d;
            int key = start + j;
            float kv = 0.f, vv = 0.f;
            if (key < nk) {
                kv = load_f(k, (size_t)key * kv_stride + col0 + c);
                vv = load_f(v, (size_t)key * kv_stride + col0 + c);
            }
            ks[j * kpad + c] = kv;
            vs[j * d + c] = vv;
        }
        __syncthreads();
        const int key = start + lane;
        float s = -INFINITY;
        if (key < nk) {
            s = 0.f;
            const float *qr = qs + warp * d, *kr = ks + lane * kpad;
            for (int c = 0; c < d; c++) s += qr[c] * kr[c];
        }
        float m_new = fmaxf(m, warp_max(s));
        float p = key < nk ? __expf(s - m_new) : 0.f;
        float corr = m == -INFINITY ? 0.f : __expf(m - m_new);
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int i = 0; i < ATT_MAX_DIM / 32; i++) acc[i] *= corr;
        const int keys_here = min(ATT_TILE, nk - start);
        for (int jj = 0; jj < keys_here; jj++) {
            float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int i = 0; i < ATT_MAX_DIM / 32; i++) {
                int c = lane + 32 * i;
                if (c < d) acc[i] += pj * vs[jj * d + c];
            }
        }
        m = m_new;
    }
    if (!active) return;
    float inv = 1.f / l;
#pragma unroll
    for (int i = 0; i < ATT_MAX_DIM / 32; i++) {
        int c = lane + 32 * i;
        if (c < d) store_f(out, (size_t)row * out_stride + col0 + c, acc[i] * inv);
    }
}

// ---- patches and preprocessing ----------------------------------------------------------

template <typename T>
__global__ void im2col_kernel(const float *pixels, T *patches, int t, int h, int w, int p)
{
    const int gh = h / p, gw = w / p, cols = 3 * p * p;
    const size_t n = (size_t)t * gh * gw * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int col = (int)(i % cols);
        size_t tok = i / cols;
        int gx = (int)(tok % gw), gy = (int)(tok / gw % gh), f = (int)(tok / ((size_t)gw * gh));
        int ch = col / (p * p), ky = col / p % p, kx = col % p;
        size_t src = (((size_t)ch * t + f) * h + (size_t)gy * p + ky) * w + (size_t)gx * p + kx;
        store_f(patches, i, pixels[src]);
    }
}

__device__ __forceinline__ float cubic1(float x, float a) { return ((a + 2.f) * x - (a + 3.f)) * x * x + 1.f; }
__device__ __forceinline__ float cubic2(float x, float a) { return ((a * x - 5.f * a) * x + 8.f * a) * x - 4.f * a; }

// One thread per output pixel and frame: 4×4 taps, rows interpolated along x first and the
// four results along y, the order PyTorch's upsample_bicubic2d uses.
__global__ void preprocess_kernel(const uint8_t *frames, int t, int h_in, int w_in, float *out,
                                  int h, int w, float m0, float m1, float m2, float s0, float s1,
                                  float s2)
{
    const size_t n = (size_t)t * h * w;
    const float a = -0.75f;
    const float sy = (float)h_in / (float)h, sx = (float)w_in / (float)w;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % w), oy = (int)(i / w % h), f = (int)(i / ((size_t)w * h));
        float fy = sy * (oy + 0.5f) - 0.5f, fx = sx * (ox + 0.5f) - 0.5f;
        int iy = (int)floorf(fy), ix = (int)floorf(fx);
        float ty = fy - iy, tx = fx - ix;
        float wy[4] = {cubic2(ty + 1.f, a), cubic1(ty, a), cubic1(1.f - ty, a), cubic2(2.f - ty, a)};
        float wx[4] = {cubic2(tx + 1.f, a), cubic1(tx, a), cubic1(1.f - tx, a), cubic2(2.f - tx, a)};
        const uint8_t *frame = frames + (size_t)f * h_in * w_in * 3;
        float mean[3] = {m0, m1, m2}, stdv[3] = {s0, s1, s2};
        for (int ch = 0; ch < 3; ch++) {
            float col = 0.f;
            for (int r = 0; r < 4; r++) {
                int yy = min(max(iy - 1 + r, 0), h_in - 1);
                float rowv = 0.f;
                for (int c = 0; c < 4; c++) {
                    int xx = min(max(ix - 1 + c, 0), w_in - 1);
                    rowv += wx[c] * (float)frame[((size_t)yy * w_in + xx) * 3 + ch];
                }
                col += wy[r] * rowv;
            }
            float q = rintf(fminf(fmaxf(col, 0.f), 255.f));
            out[(((size_t)ch * t + f) * h + oy) * w + ox] = (q / 255.f - mean[ch]) / stdv[ch];
        }
    }
}

unsigned grid_for(size_t n, unsigned block)
{
    size_t g = (n + block - 1) / block;
    if (g > 65535u * 16u) g = 65535u * 16u;
    return g ? (unsigned)g : 1u;
}

} // namespace

// ---- C entry points -------------------------------------------------------------------------

extern "C" vx_status kern_cast(kern_ctx *ctx, kern_dtype from, const void *x, kern_dtype to, void *y,
                               size_t n, vx_err *err)
{
    unsigned g = grid_for(n, 256);
    if (from == KERN_F32 && to == KERN_BF16)
        cast_kernel<<<g, 256, 0, ctx->stream>>>((const float *)x, (__nv_bfloat16 *)y, n);
    else if (from == KERN_BF16 && to == KERN_F32)
        cast_kernel<<<g, 256, 0, ctx->stream>>>((const __nv_bfloat16 *)x, (float *)y, n);
    else if (from == to)
        return kern_check(cudaMemcpyAsync(y, x, n * kern_dtype_size(from), cudaMemcpyDeviceToDevice,
                                          ctx->stream), "cast copy", err);
    else
        return vx_fail(err, VX_EINVAL, "kern_cast: unknown dtypes %d -> %d", from, to);
    return kern_check(cudaGetLastError(), "cast", err);
}

extern "C" vx_status kern_rmsnorm(kern_ctx *ctx, kern_dtype dt, const void *x, int x_stride,
                                  const float *w, void *y, int y_stride, int rows, int cols,
                                  float eps, vx_err *err)
{
    if (rows <= 0) return VX_OK;
    if (dt == KERN_F32)
        rmsnorm_kernel<<<rows, 256, 0, ctx->stream>>>((const float *)x, x_stride, w, (float *)y,
                                                      y_stride, cols, eps);
    else
        rmsnorm_kernel<<<rows, 256, 0, ctx->stream>>>((const __nv_bfloat16 *)x, x_stride, w,
                                                      (__nv_bfloat16 *)y, y_stride, cols, eps);
    return kern_check(cudaGetLastError(), "rmsnorm", err);
}

extern "C" vx_status kern_layernorm(kern_ctx *ctx, kern_dtype dt, const void *x, int x_stride,
                                    const float *w, const float *b, void *y, int y_stride, int rows,
                                    int cols, float eps, vx_err *err)
{
    if (rows <= 0) return VX_OK;
    if (dt == KERN_F32)
        layernorm_kernel<<<rows, 256, 0, ctx->stream>>>((const float *)x, x_stride, w, b,
                                                        (float *)y, y_stride, cols, eps);
    else
        layernorm_kernel<<<rows, 256, 0, ctx->stream>>>((const __nv_bfloat16 *)x, x_stride, w, b,
                                                        (__nv_bfloat16 *)y, y_stride, cols, eps);
    return kern_check(cudaGetLastError(), "layernorm", err);
}

extern "C" vx_status kern_bias_gelu(kern_ctx *ctx, kern_dtype dt, void *x, const float *bias,
                                    int rows, int cols, int gelu, vx_err *err)
{
    unsigned g = grid_for((size_t)rows * cols, 256);
    if (dt == KERN_F32)
        bias_gelu_kernel<<<g, 256, 0, ctx->stream>>>((float *)x, bias, (size_t)rows, cols, gelu);
    else
        bias_gelu_kernel<<<g, 256, 0, ctx->stream>>>((__nv_bfloat16 *)x, bias, (size_t)rows, cols,
                                                     gelu);
    return kern_check(cudaGetLastError(), "bias_gelu", err);
}

extern "C" vx_status kern_residual(kern_ctx *ctx, kern_dtype dt, void *y, const void *h,
                                   const float *bias, const float *gamma, int rows, int cols,
                                   vx_err *err)
{
    unsigned g = grid_for((size_t)rows * cols, 256);
    if (dt == KERN_F32)
        residual_kernel<<<g, 256, 0, ctx->stream>>>((float *)y, (const float *)h, bias, gamma,
                                                    (size_t)rows, cols);
    else
        residual_kernel<<<g, 256, 0, ctx->stream>>>((__nv_bfloat16 *)y, (const __nv_bfloat16 *)h,
                                                    bias, gamma, (size_t)rows, cols);
    return kern_check(cudaGetLastError(), "residual", err);
}

extern "C" vx_status kern_attention(kern_ctx *ctx, kern_dtype dt, const void *q, int q_stride,
                                    const void *k, const void *v, int kv_stride, void *out,
                                    int out_stride, int nq, int nk, int heads, int head_dim,
                                    float scale, vx_err *err)
{
    if (head_dim <= 0 || head_dim > ATT_MAX_DIM)
        return vx_fail(err, VX_EUNSUPPORTED, "attention: head_dim %d is outside 1..%d", head_dim,
                       ATT_MAX_DIM);
    if (nq <= 0 || nk <= 0 || heads <= 0) return vx_fail(err, VX_EINVAL, "attention: empty shape");
    size_t smem = sizeof(float) * ((size_t)ATT_TILE * (head_dim + 1) + (size_t)ATT_TILE * head_dim +
                                   (size_t)ATT_ROWS * head_dim);
    dim3 grid((unsigned)((nq + ATT_ROWS - 1) / ATT_ROWS), (unsigned)heads);
    cudaError_t e;
    if (dt == KERN_F32) {
        auto fn = attention_kernel<float>;
        e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e == cudaSuccess)
            fn<<<grid, ATT_ROWS * 32, smem, ctx->stream>>>((const float *)q, q_stride,
                                                          (const float *)k, (const float *)v,
                                                          kv_stride, (float *)out, out_stride, nq,
                                                          nk, head_dim, scale);
    } else {
        auto fn = attention_kernel<__nv_bfloat16>;
        e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e == cudaSuccess)
            fn<<<grid, ATT_ROWS * 32, smem, ctx->stream>>>(
                (const __nv_bfloat16 *)q, q_stride, (const __nv_bfloat16 *)k,
                (const __nv_bfloat16 *)v, kv_stride, (__nv_bfloat16 *)out, out_stride, nq, nk,
                head_dim, scale);
    }
    if (e != cudaSuccess) return kern_check(e, "attention shared memory", err);
    return kern_check(cudaGetLastError(), "attention", err);
}

extern "C" vx_status kern_mean_rows(kern_ctx *ctx, kern_dtype dt, const void *x, void *y, int rows,
                                    int cols, vx_err *err)
{
    unsigned g = (unsigned)((cols + 255) / 256);
    if (dt == KERN_F32)
        mean_rows_kernel<<<g, 256, 0, ctx->stream>>>((const float *)x, (float *)y, rows, cols);
    else
        mean_rows_kernel<<<g, 256, 0, ctx->stream>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y,
                                                     rows, cols);
    return kern_check(cudaGetLastError(), "mean_rows", err);
}

extern "C" vx_status kern_l2_normalize(kern_ctx *ctx, float *x, int rows, int cols, vx_err *err)
{
    if (rows <= 0) return VX_OK;
    l2_normalize_kernel<<<rows, 256, 0, ctx->stream>>>(x, cols);
    return kern_check(cudaGetLastError(), "l2_normalize", err);
}

extern "C" vx_status kern_im2col_patches(kern_ctx *ctx, kern_dtype dt, const float *pixels,
                                         void *patches, int t, int h, int w, int p, vx_err *err)
{
    if (p <= 0 || h % p || w % p)
        return vx_fail(err, VX_EINVAL, "im2col: %dx%d is not a multiple of the patch size %d", h,
                       w, p);
    size_t n = (size_t)t * (h / p) * (w / p) * 3 * p * p;
    unsigned g = grid_for(n, 256);
    if (dt == KERN_F32)
        im2col_kernel<<<g, 256, 0, ctx->stream>>>(pixels, (float *)patches, t, h, w, p);
    else
        im2col_kernel<<<g, 256, 0, ctx->stream>>>(pixels, (__nv_bfloat16 *)patches, t, h, w, p);
    return kern_check(cudaGetLastError(), "im2col", err);
}

extern "C" vx_status kern_preprocess(kern_ctx *ctx, const uint8_t *frames, int t, int h_in,
                                     int w_in, float *out, int h, int w, const float mean[3],
                                     const float stdv[3], vx_err *err)
{
    if (t <= 0 || h_in <= 0 || w_in <= 0 || h <= 0 || w <= 0)
        return vx_fail(err, VX_EINVAL, "preprocess: empty frame size");
    unsigned g = grid_for((size_t)t * h * w, 256);
    preprocess_kernel<<<g, 256, 0, ctx->stream>>>(frames, t, h_in, w_in, out, h, w, mean[0], mean[1],
                                                  mean[2], stdv[0], stdv[1], stdv[2]);
    return kern_check(cudaGetLastError(), "preprocess", err);
}
