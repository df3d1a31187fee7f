// The CUDA context behind kern.h (device, stream, cuBLASLt handle and workspace), memory,
// and the GEMM through cuBLASLt.
#include "kern_impl.h"

#include <stdio.h>
#include <stdlib.h>

static vx_status lt_check(cublasStatus_t s, const char *what, vx_err *err)
{
    if (s == CUBLAS_STATUS_SUCCESS) return VX_OK;
    return vx_fail(err, VX_EUNSUPPORTED, "cuBLASLt %s failed (status %d)", what, (int)s);
}

extern "C" vx_status kern_open(int device, size_t workspace_bytes, kern_ctx **out, vx_err *err)
{
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); // clear the sticky error so later calls start clean
        return vx_fail(err, VX_EUNSUPPORTED, "no usable CUDA device: %s", cudaGetErrorString(e));
    }
    if (device < 0 || device >= count)
        return vx_fail(err, VX_EUNSUPPORTED, "CUDA device %d does not exist (%d found)", device,
                       count);
    kern_ctx *ctx = (kern_ctx *)calloc(1, sizeof *ctx);
    if (!ctx) return vx_fail(err, VX_ENOMEM, "out of memory");
    ctx->device = device;
    vx_status st = kern_check(cudaSetDevice(device), "set device", err);
    if (!st) st = kern_check(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking),
                             "stream", err);
    if (!st) st = lt_check(cublasLtCreate(&ctx->lt), "handle", err);
    if (!st && workspace_bytes) {
        st = kern_check(cudaMalloc(&ctx->workspace, workspace_bytes), "workspace", err);
        if (!st) ctx->workspace_bytes = workspace_bytes;
    }
    if (st) {
        kern_close(ctx);
        return st;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) == cudaSuccess)
        snprintf(ctx->name, sizeof ctx->name, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
    else
        snprintf(ctx->name, sizeof ctx->name, "CUDA device %d", device);
    *out = ctx;
    return VX_OK;
}

extern "C" void kern_close(kern_ctx *ctx)
{
    if (!ctx) return;
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    cudaFree(ctx->workspace);
    if (ctx->lt) cublasLtDestroy(ctx->lt);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    free(ctx);
}

extern "C" const char *kern_device_name(const kern_ctx *ctx) { return ctx->name; }

extern "C" vx_status kern_malloc(kern_ctx *ctx, size_t bytes, void **out, vx_err *err)
{
    (void)ctx;
    *out = NULL;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e != cudaSuccess)
        return vx_fail(err, VX_ENOMEM, "cannot allocate %zu bytes on the GPU: %s", bytes,
                       cudaGetErrorString(e));
    return VX_OK;
}

extern "C" void kern_free(kern_ctx *ctx, void *dev)
{
    (void)ctx;
    if (dev) cudaFree(dev);
}

extern "C" vx_status kern_upload(kern_ctx *ctx, void *dst, const void *src, size_t bytes, vx_err *err)
{
    return kern_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream),
                      "upload", err);
}

extern "C" vx_status kern_download(kern_ctx *ctx, void *dst, const void *src, size_t bytes,
                                   vx_err *err)
{
    return kern_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream),
                      "download", err);
}

extern "C" vx_status kern_sync(kern_ctx *ctx, vx_err *err)
{
    return kern_check(cudaStreamSynchronize(ctx->stream), "stream", err);
}

// Row-major c[m,n] = a[m,k] · w[n,k]ᵀ is column-major cᵀ[n,m] = w · aᵀ: cuBLASLt's A is w
// (stored k×n column-major, transposed), B is a (k×m column-major), D is cᵀ (n×m).
extern "C" vx_status kern_gemm(kern_ctx *ctx, kern_dtype dt, const void *a, const void *w, void *c,
                               int m, int n, int k, vx_err *err)
{
    if (m <= 0 || n <= 0 || k <= 0) return vx_fail(err, VX_EINVAL, "gemm: empty shape");
    cudaDataType_t type = dt == KERN_F32 ? CUDA_R_32F : CUDA_R_16BF;
    // fp32 mode is the checking path: no TF32 shortcuts.
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    vx_status st = lt_check(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F), "desc", err);
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    if (!st) st = lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                          sizeof ta), "transa", err);
    if (!st) st = lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                          sizeof tb), "transb", err);
    if (!st) st = lt_check(cublasLtMatrixLayoutCreate(&la, type, k, n, k), "layout A", err);
    if (!st) st = lt_check(cublasLtMatrixLayoutCreate(&lb, type, k, m, k), "layout B", err);
    if (!st) st = lt_check(cublasLtMatrixLayoutCreate(&lc, type, n, m, n), "layout C", err);
    if (!st) st = lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference", err);
    if (!st)
        st = lt_check(cublasLtMatmulPreferenceSetAttribute(
                          pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ctx->workspace_bytes,
                          sizeof ctx->workspace_bytes), "workspace preference", err);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    if (!st) {
        st = lt_check(cublasLtMatmulAlgoGetHeuristic(ctx->lt, op, la, lb, lc, lc, pref, 1, &heur,
                                                     &found), "heuristic", err);
        if (!st && found == 0)
            st = vx_fail(err, VX_EUNSUPPORTED, "cuBLASLt has no algorithm for %dx%dx%d", m, n, k);
    }
    const float alpha = 1.f, beta = 0.f;
    if (!st)
        st = lt_check(cublasLtMatmul(ctx->lt, op, &alpha, w, la, a, lb, &beta, c, lc, c, lc,
                                     &heur.algo, ctx->workspace, ctx->workspace_bytes, ctx->stream),
                      "matmul", err);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return st;
}
