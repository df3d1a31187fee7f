/* GEMMs through oneDNN's matmul primitive (DECISIONS.md §1): y = x·Wᵀ + b with W in PyTorch's
 * (out, in) layout. Either W is read in place as a transposed (in, out) matrix, or (prepack)
 * it is reordered once into the blocked layout the primitive prefers — in bf16 for the bf16
 * mode, converting on the way — which measured 15-20% faster for fp32 and ~1.8x for bf16 at
 * transformer shapes. A primitive is created once per distinct shape per encoder instance and
 * shared by every linear of that shape; each linear binds its own buffers at creation, so a
 * run is one dnnl_primitive_execute and no allocation. */
#include "enc_internal.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#define GEMM_CACHE_MAX 32

typedef struct gemm_prim {
    int64_t m, k, o;
    int has_bias, bf16, prepack, w_bf16;
    int gelu, has_scale, accumulate; /* fused post-ops */
    int y_bf16;                      /* bf16 output */
    dnnl_primitive_t prim;
    dnnl_memory_desc_t wei_md;     /* the layout the primitive wants its weights in */
    dnnl_memory_desc_t scratch_md; /* its scratchpad (user mode: we provide it) */
    size_t scratch_bytes;
} gemm_prim;

/* Scratchpads are in oneDNN's user mode: one buffer per context, grown while linears are
 * created and shared by all of them (they run one at a time on the context's stream), so
 * executing never makes oneDNN allocate. */
struct enc_gemm_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    gemm_prim cache[GEMM_CACHE_MAX];
    int count;
    void *scratch;
    size_t scratch_bytes;
};

struct enc_linear {
    enc_gemm_ctx *ctx;
    dnnl_primitive_t prim; /* borrowed from ctx->cache */
    dnnl_memory_t mem[6];
    dnnl_exec_arg_t args[6];
    dnnl_memory_t scratch_mem; /* = one of mem[], bound to ctx->scratch at run */
    void *scratch_bound;
    int nargs;
    const float *x;
    uint16_t *x_bf16;
    int64_t x_count;
    void *packed; /* prepacked weights, owned */
    size_t packed_bytes;
};

static vx_status dnnl_fail(vx_err *err, dnnl_status_t st, const char *what) {
    return vx_fail(err, st == dnnl_out_of_memory ? VX_ENOMEM : VX_EUNSUPPORTED,
                   "oneDNN: %s failed (status %d)", what, (int)st);
}

vx_status enc_gemm_ctx_create(enc_gemm_ctx **out, vx_err *err) {
    *out = NULL;
    enc_gemm_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return vx_fail(err, VX_ENOMEM, "out of memory");
    dnnl_status_t st = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0);
    if (st != dnnl_success) {
        free(ctx);
        return dnnl_fail(err, st, "engine creation");
    }
    st = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        dnnl_engine_destroy(ctx->engine);
        free(ctx);
        return dnnl_fail(err, st, "stream creation");
    }
    *out = ctx;
    return VX_OK;
}

size_t enc_gemm_ctx_scratch_bytes(const enc_gemm_ctx *ctx) { return ctx ? ctx->scratch_bytes : 0; }

void enc_gemm_ctx_free(enc_gemm_ctx *ctx) {
    if (!ctx) return;
    for (int i = 0; i < ctx->count; i++) dnnl_primitive_destroy(ctx->cache[i].prim);
    dnnl_stream_destroy(ctx->stream);
    dnnl_engine_destroy(ctx->engine);
    free(ctx->scratch);
    free(ctx);
}

/* wei: the plain (o, k) PyTorch matrix (f32, or bf16 when w_bf16) seen as (k, o) with strides
 * (1, k); with prepack the primitive is created for format "any" in the compute type instead. */
static void describe(int64_t m, int64_t k, int64_t o, int bf16, int prepack, int w_bf16,
                     int y_bf16, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei,
                     dnnl_memory_desc_t *bias, dnnl_memory_desc_t *dst) {
    dnnl_data_type_t in_type = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t src_dims = {m, k}, wei_dims = {k, o}, bias_dims = {1, o}, dst_dims = {m, o};
    dnnl_dims_t wei_strides = {1, k};
    dnnl_memory_desc_init_by_tag(src, 2, src_dims, in_type, dnnl_ab);
    if (prepack) dnnl_memory_desc_init_by_tag(wei, 2, wei_dims, in_type, dnnl_format_tag_any);
    else dnnl_memory_desc_init_by_strides(wei, 2, wei_dims, w_bf16 ? dnnl_bf16 : dnnl_f32, wei_strides);
    dnnl_memory_desc_init_by_tag(bias, 2, bias_dims, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(dst, 2, dst_dims, y_bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
}

static void describe_scale(int64_t o, dnnl_memory_desc_t *md) {
    dnnl_dims_t dims = {1, o};
    dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_ab);
}

/* Post-ops in order: GELU, per-column multiply, accumulate into dst. */
static dnnl_status_t make_attr(const enc_linear_post *post, int64_t o, dnnl_primitive_attr_t *out) {
    *out = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(out);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(*out, dnnl_scratchpad_mode_user);
    if (st != dnnl_success || !post || (!post->gelu && !post->col_scale && !post->accumulate))
        return st;
    dnnl_post_ops_t po = NULL;
    st = dnnl_post_ops_create(&po);
    if (st == dnnl_success && post->gelu)
        st = dnnl_post_ops_append_eltwise(
            po, 1.0f, post->gelu == ENC_GELU_ERF ? dnnl_eltwise_gelu_erf : dnnl_eltwise_gelu_tanh,
            0.0f, 0.0f);
    if (st == dnnl_success && post->col_scale) {
        dnnl_memory_desc_t md;
        describe_scale(o, &md);
        st = dnnl_post_ops_append_binary(po, dnnl_binary_mul, &md);
    }
    if (st == dnnl_success && post->accumulate) st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*out, po);
    if (po) dnnl_post_ops_destroy(po);
    return st;
}

static vx_status get_prim(enc_gemm_ctx *ctx, int64_t m, int64_t k, int64_t o, int has_bias,
                          int bf16, int prepack, int w_bf16, const enc_linear_post *post,
                          const gemm_prim **out, vx_err *err) {
    if (prepack) w_bf16 = 0; /* the source type does not matter to a packed primitive */
    int gelu = post ? post->gelu : 0, has_scale = post && post->col_scale;
    int accumulate = post ? post->accumulate : 0, y_bf16 = post ? post->y_bf16 : 0;
    for (int i = 0; i < ctx->count; i++) {
        gemm_prim *p = &ctx->cache[i];
        if (p->m == m && p->k == k && p->o == o && p->has_bias == has_bias && p->bf16 == bf16 &&
            p->prepack == prepack && p->w_bf16 == w_bf16 && p->gelu == gelu &&
            p->has_scale == has_scale && p->accumulate == accumulate && p->y_bf16 == y_bf16) {
            *out = p;
            return VX_OK;
        }
    }
    if (ctx->count == GEMM_CACHE_MAX)
        return vx_fail(err, VX_ELIMIT, "oneDNN: too many GEMM shapes");
    dnnl_memory_desc_t src, wei, bias, dst;
    describe(m, k, o, bf16, prepack, w_bf16, y_bf16, &src, &wei, &bias, &dst);
    dnnl_matmul_desc_t md;
    dnnl_status_t st = dnnl_matmul_desc_init(&md, &src, &wei, has_bias ? &bias : NULL, &dst);
    if (st != dnnl_success) return dnnl_fail(err, st, "matmul descriptor");
    dnnl_primitive_attr_t attr = NULL;
    st = make_attr(post, o, &attr);
    if (st != dnnl_success) {
        if (attr) dnnl_primitive_attr_destroy(attr);
        return dnnl_fail(err, st, "matmul attributes");
    }
    dnnl_primitive_desc_t pd;
    st = dnnl_primitive_desc_create(&pd, &md, attr, ctx->engine, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return dnnl_fail(err, st, bf16 ? "bf16 matmul (CPU without bf16?)" : "matmul");
    dnnl_primitive_t prim;
    dnnl_memory_desc_t wei_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch_bytes = dnnl_memory_desc_get_size(&scratch_md);
    st = dnnl_primitive_create(&prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return dnnl_fail(err, st, "matmul primitive");
    if (scratch_bytes > ctx->scratch_bytes) { /* grown here, at creation, never in a run */
        void *grown = vx_aligned_alloc(64, scratch_bytes, err);
        if (!grown) {
            dnnl_primitive_destroy(prim);
            return VX_ENOMEM;
        }
        free(ctx->scratch);
        ctx->scratch = grown;
        ctx->scratch_bytes = scratch_bytes;
    }
    gemm_prim *p = &ctx->cache[ctx->count++];
    *p = (gemm_prim){m, k, o, has_bias, bf16, prepack, w_bf16, gelu, has_scale, accumulate,
                     y_bf16, prim, wei_md, scratch_md, scratch_bytes};
    *out = p;
    return VX_OK;
}

/* Reorders the plain weights (o, k) into the primitive's layout and type, once. */
static vx_status prepack_weights(enc_linear *lin, const gemm_prim *p, enc_gemm_weight w,
                                 vx_err *err) {
    enc_gemm_ctx *ctx = lin->ctx;
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {p->k, p->o}, strides = {1, p->k};
    dnnl_memory_desc_init_by_strides(&plain, 2, dims, w.bf16 ? dnnl_bf16 : dnnl_f32, strides);
    lin->packed_bytes = dnnl_memory_desc_get_size(&p->wei_md);
    lin->packed = vx_aligned_alloc(64, lin->packed_bytes ? lin->packed_bytes : 64, err);
    if (!lin->packed) return VX_ENOMEM;
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_status_t st = dnnl_memory_create(&from, &plain, ctx->engine, (void *)w.data);
    if (st == dnnl_success) st = dnnl_memory_create(&to, &p->wei_md, ctx->engine, lin->packed);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&rpd, &plain, ctx->engine, &p->wei_md,
                                                ctx->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&reorder, rpd);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        st = dnnl_primitive_execute(reorder, ctx->stream, 2, args);
        if (st == dnnl_success) st = dnnl_stream_wait(ctx->stream);
    }
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    return st == dnnl_success ? VX_OK : dnnl_fail(err, st, "weight reorder");
}

vx_status enc_linear_create(enc_gemm_ctx *ctx, int64_t m, int64_t k, int64_t o, const float *x,
                            enc_gemm_weight w, const float *b, float *y, int bf16, int prepack,
                            uint16_t *x_bf16, const enc_linear_post *post, enc_linear **out,
                            vx_err *err) {
    *out = NULL;
    if (bf16 != w.bf16) prepack = 1; /* oneDNN wants weights in the compute type: convert once */
    if (bf16 && !x_bf16) return vx_fail(err, VX_EINVAL, "enc_linear_create: bf16 needs x_bf16");
    if (!bf16 && !x) return vx_fail(err, VX_EINVAL, "enc_linear_create: fp32 needs x");
    enc_linear *lin = calloc(1, sizeof(*lin));
    if (!lin) return vx_fail(err, VX_ENOMEM, "out of memory");
    lin->ctx = ctx;
    lin->x = x;
    lin->x_bf16 = bf16 ? x_bf16 : NULL;
    lin->x_count = m * k;
    const gemm_prim *p = NULL;
    vx_status s = get_prim(ctx, m, k, o, b != NULL, bf16, prepack, w.bf16, post, &p, err);
    if (s == VX_OK) {
        lin->prim = p->prim;
        if (prepack) s = prepack_weights(lin, p, w, err);
    }
    if (s != VX_OK) {
        enc_linear_free(lin);
        return s;
    }
    dnnl_memory_desc_t src, wei, bias, dst;
    describe(m, k, o, bf16, 0, w.bf16, post ? post->y_bf16 : 0, &src, &wei, &bias, &dst);
    if (prepack) wei = p->wei_md;
    /* oneDNN takes non-const handles; it never writes src, weights or bias. */
    void *handles[4] = {bf16 ? (void *)x_bf16 : (void *)x, prepack ? lin->packed : (void *)w.data,
                        (void *)y, (void *)b};
    const dnnl_memory_desc_t *descs[4] = {&src, &wei, &dst, &bias};
    const int arg_ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    int n = b ? 4 : 3;
    for (int i = 0; i < n; i++) {
        dnnl_status_t st = dnnl_memory_create(&lin->mem[i], descs[i], ctx->engine, handles[i]);
        if (st != dnnl_success) {
            enc_linear_free(lin);
            return dnnl_fail(err, st, "memory creation");
        }
        lin->args[i] = (dnnl_exec_arg_t){arg_ids[i], lin->mem[i]};
    }
    if (post && post->col_scale) {
        dnnl_memory_desc_t md;
        describe_scale(o, &md);
        dnnl_status_t st =
            dnnl_memory_create(&lin->mem[n], &md, ctx->engine, (void *)post->col_scale);
        if (st != dnnl_success) {
            enc_linear_free(lin);
            return dnnl_fail(err, st, "memory creation");
        }
        /* the binary post-op is the second one when GELU comes first */
        int idx = post->gelu ? 1 : 0;
        lin->args[n] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1,
                                         lin->mem[n]};
        n++;
    }
    if (p->scratch_bytes) {
        dnnl_status_t st = dnnl_memory_create(&lin->mem[n], &p->scratch_md, ctx->engine,
                                              DNNL_MEMORY_NONE);
        if (st != dnnl_success) {
            enc_linear_free(lin);
            return dnnl_fail(err, st, "memory creation");
        }
        lin->scratch_mem = lin->mem[n];
        lin->args[n] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, lin->mem[n]};
        n++;
    }
    lin->nargs = n;
    *out = lin;
    return VX_OK;
}

size_t enc_linear_packed_bytes(const enc_linear *lin) { return lin ? lin->packed_bytes : 0; }

vx_status enc_linear_run(enc_linear *lin, const enc_kernels *kern, vx_err *err) {
    if (lin->x_bf16 && lin->x) { /* x NULL: the caller wrote x_bf16 */
        const int64_t chunk = 4096;
        int64_t nchunks = (lin->x_count + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t beg = c * chunk, len = lin->x_count - beg < chunk ? lin->x_count - beg : chunk;
            kern->f32_to_bf16(lin->x + beg, lin->x_bf16 + beg, len);
        }
    }
    dnnl_status_t st = dnnl_success;
    if (lin->scratch_mem && lin->scratch_bound != lin->ctx->scratch) {
        st = dnnl_memory_set_data_handle(lin->scratch_mem, lin->ctx->scratch);
        if (st != dnnl_success) return dnnl_fail(err, st, "scratchpad binding");
        lin->scratch_bound = lin->ctx->scratch;
    }
    st = dnnl_primitive_execute(lin->prim, lin->ctx->stream, lin->nargs, lin->args);
    if (st == dnnl_success) st = dnnl_stream_wait(lin->ctx->stream);
    if (st != dnnl_success) return dnnl_fail(err, st, "matmul execution");
    return VX_OK;
}

void enc_linear_free(enc_linear *lin) {
    if (!lin) return;
    for (int i = 0; i < 6; i++)
        if (lin->mem[i]) dnnl_memory_destroy(lin->mem[i]);
    free(lin->packed);
    free(lin);
}

void enc_linear_ref(int64_t m, int64_t k, int64_t o, const float *x, const float *w,
                    const float *b, float *y) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < o; j++) {
            double acc = b ? b[j] : 0.0;
            for (int64_t t = 0; t < k; t++) acc += (double)x[i * k + t] * w[j * k + t];
            y[i * o + j] = (float)acc;
        }
}
