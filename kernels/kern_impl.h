// Private to kernels/: the context and the CUDA error bridge.
#ifndef VIDX_KERN_IMPL_H
#define VIDX_KERN_IMPL_H

#include "kern.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

struct kern_ctx {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    char name[160];
};

// Turns a CUDA error into a vx_err naming what failed ("attention: invalid argument").
static inline vx_status kern_check(cudaError_t e, const char *what, vx_err *err)
{
    if (e == cudaSuccess) return VX_OK;
    return vx_fail(err, VX_EUNSUPPORTED, "CUDA %s: %s", what, cudaGetErrorString(e));
}

static inline size_t kern_dtype_size(kern_dtype dt) { return dt == KERN_F32 ? 4 : 2; }

#endif
