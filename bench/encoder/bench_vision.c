/* Vision-tower benchmark: ms per clip for S/14 and B/14 shapes (random weights, written here
 * as a model directory) at 8 frames × 224 px, fp32 and bf16, with the GFLOP/s reached and its
 * fraction of the best GEMM rate measured first in the same run (oneDNN matmul at the tower's
 * own shapes, through the same wrapper). Not a test: prints numbers.
 *
 *   bench_vision [S14|B14|L14 ...] [--frames T] [--threads N] [--iters K] [--precision fp32|bf16|both]
 *   bench_vision --model DIR ...   the same on an existing model directory (bench/encoder/
 *                                  compare_torch.py uses it to time C and PyTorch on the same
 *                                  weights)
 */
#include "enc_internal.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct variant {
    const char *name;
    int width, depth, heads, mlp;
} variant;

static const variant variants[] = {
    {"S14", 384, 12, 6, 1536},
    {"B14", 768, 12, 12, 3072},
    {"L14", 1024, 24, 16, 4096},
};

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
}

typedef struct writer {
    cJSON *hdr;
    vx_buf data;
} writer;

static void add_tensor(writer *w, const char *name, int ndim, const int64_t *shape, float center,
                       float spread) {
    vx_err err;
    int64_t n = 1;
    double dims[8];
    for (int i = 0; i < ndim; i++) {
        n *= shape[i];
        dims[i] = (double)shape[i];
    }
    while (w->data.len % 64) vx_buf_append(&w->data, "", 1, &err);
    size_t begin = w->data.len;
    for (int64_t i = 0; i < n; i++) {
        float v = center + spread * frand();
        vx_buf_append(&w->data, &v, 4, &err);
    }
    cJSON *e = cJSON_AddObjectToObject(w->hdr, name);
    cJSON_AddStringToObject(e, "dtype", "F32");
    cJSON_AddItemToObject(e, "shape", cJSON_CreateDoubleArray(dims, ndim));
    double offs[2] = {(double)begin, (double)w->data.len};
    cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
}

#define T1(name, a, c, s) add_tensor(&w, name, 1, (int64_t[]){a}, c, s)
#define T2(name, a, b, c, s) add_tensor(&w, name, 2, (int64_t[]){a, b}, c, s)

/* Writes config.json + model.safetensors for v into dir. */
static int write_model(const char *dir, const variant *v) {
    int64_t C = v->width, H = v->mlp, D = 768, N = 1 + 8 * 256;
    writer w = {cJSON_CreateObject(), {0}};
    char name[128];
    float ws = 1.0f / 16; /* keeps activations O(1) */
    add_tensor(&w, "vision.patch_embed.weight", 5, (int64_t[]){C, 3, 1, 14, 14}, 0, 0.05f);
    T1("vision.patch_embed.bias", C, 0, 0.1f);
    add_tensor(&w, "vision.cls_token", 3, (int64_t[]){1, 1, C}, 0, 1);
    add_tensor(&w, "vision.pos_embed", 3, (int64_t[]){1, N, C}, 0, 1);
    for (int i = 0; i < v->depth; i++) {
#define B(suffix) (snprintf(name, sizeof(name), "vision.blocks.%d.%s", i, suffix), name)
        T1(B("norm1.weight"), C, 1, 0.1f);
        T2(B("attn.qkv.weight"), 3 * C, C, 0, ws);
        T1(B("attn.q_norm.weight"), C, 1, 0.1f);
        T1(B("attn.k_norm.weight"), C, 1, 0.1f);
        T2(B("attn.proj.weight"), C, C, 0, ws);
        T1(B("attn.proj.bias"), C, 0, 0.1f);
        T1(B("ls1"), C, 0.1f, 0.05f);
        T1(B("norm2.weight"), C, 1, 0.1f);
        T2(B("mlp.fc1.weight"), H, C, 0, ws);
        T1(B("mlp.fc1.bias"), H, 0, 0.1f);
        T2(B("mlp.fc2.weight"), C, H, 0, ws / 2);
        T1(B("mlp.fc2.bias"), C, 0, 0.1f);
        T1(B("ls2"), C, 0.1f, 0.05f);
#undef B
    }
    const char *norms[] = {"vision.pool.norm_q", "vision.pool.norm_k", "vision.pool.norm_v"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s.weight", norms[i]);
        T1(name, C, 1, 0.1f);
        snprintf(name, sizeof(name), "%s.bias", norms[i]);
        T1(name, C, 0, 0.1f);
    }
    const char *lin[] = {"vision.pool.q", "vision.pool.k", "vision.pool.v"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s.weight", lin[i]);
        T2(name, C, C, 0, ws);
        snprintf(name, sizeof(name), "%s.bias", lin[i]);
        T1(name, C, 0, 0.1f);
    }
    T2("vision.pool.proj.weight", D, C, 0, ws);
    T1("vision.pool.proj.bias", D, 0, 0.1f);
    char *json = cJSON_PrintUnformatted(w.hdr);
    size_t jl = strlen(json), padded = (8 + jl + 63) / 64 * 64 - 8;
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    fwrite(lenb, 1, 8, f);
    fwrite(json, 1, jl, f);
    for (size_t i = jl; i < padded; i++) fputc(' ', f);
    fwrite(w.data.data, 1, w.data.len, f);
    fclose(f);
    free(json);
    cJSON_Delete(w.hdr);
    vx_buf_free(&w.data);
    snprintf(path, sizeof(path), "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"format\": \"vidx-model\", \"format_version\": 1, \"model_id\": \"bench-%s\","
            " \"variant\": \"%s\", \"embed_dim\": 768, \"vision\": {\"width\": %d, \"depth\": %d,"
            " \"heads\": %d, \"mlp_hidden\": %d, \"patch_size\": 14, \"tubelet\": 1,"
            " \"image_size\": 224, \"frames\": 8, \"norm_eps\": 1e-6, \"qk_norm\": true,"
            " \"gelu\": \"tanh\", \"img_pos_embed\": false, \"pool_heads\": 16, \"pool_dim\": 768,"
            " \"pool_norm_eps\": 1e-5, \"head\": \"none\"}, \"text\": null, \"audio\": null}\n",
            v->name, v->name, v->width, v->depth, v->heads, v->mlp);
    fclose(f);
    return 0;
}

static double now_s(void) { return (double)vx_now_ns() * 1e-9; }

/* CPU seconds of the whole process: on a shared machine, with --threads 1 and
 * OMP_WAIT_POLICY=passive, this is the time the work would take on an idle core. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best GFLOP/s of oneDNN matmul over the tower's GEMM shapes (fp32 or bf16), on the wall
 * clock; *cpu_rate gets the same on the process CPU clock (with one thread, what an idle core
 * would give: the ratio to use on a loaded machine). */
static double gemm_rate(int64_t m, int64_t c, int64_t h, int bf16, int iters, double *cpu_rate) {
    vx_err err;
    enc_gemm_ctx *ctx = NULL;
    if (enc_gemm_ctx_create(&ctx, &err) != VX_OK) return 0;
    int64_t shapes[3][2] = {{c, 3 * c}, {c, h}, {h, c}};
    double best = 0;
    for (int s = 0; s < 3; s++) {
        int64_t k = shapes[s][0], o = shapes[s][1];
        float *x = vx_aligned_alloc(64, (size_t)(m * k) * 4, &err);
        float *w = vx_aligned_alloc(64, (size_t)(o * k) * 4, &err);
        float *y = vx_aligned_alloc(64, (size_t)(m * o) * 4, &err);
        uint16_t *xb = bf16 ? vx_aligned_alloc(64, (size_t)(m * k) * 2, &err) : NULL;

        for (int64_t i = 0; i < m * k; i++) x[i] = frand();
        for (int64_t i = 0; i < o * k; i++) w[i] = frand();
        enc_linear *lin = NULL;
        if (enc_linear_create(ctx, m, k, o, x, (enc_gemm_weight){w, 0}, NULL, y, bf16, 1, xb, NULL, &lin, &err) == VX_OK) {
            enc_linear_run(lin, enc_kernels_best(), &err);
            for (int it = 0; it < iters; it++) {
                double t0 = now_s(), c0 = cpu_s();
                enc_linear_run(lin, enc_kernels_best(), &err);
                double r = 2.0 * m * k * o / (now_s() - t0) * 1e-9;
                double rc = 2.0 * m * k * o / (cpu_s() - c0) * 1e-9;
                if (r > best) best = r;
                if (rc > *cpu_rate) *cpu_rate = rc;
            }
            enc_linear_free(lin);
        }
        free(x);
        free(w);
        free(y);
        free(xb);
    }
    enc_gemm_ctx_free(ctx);
    return best;
}

static double tower_flops(const variant *v, int frames) {
    double C = v->width, H = v->mlp, P = frames * 256.0, N = 1 + P;
    double per_block = 2 * N * C * (3 * C + C + 2 * H) + 4 * N * N * C;
    return P * 588 * C * 2 + v->depth * per_block + 2 * 2 * N * C * C + 2 * N * C * 2;
}

int main(int argc, char **argv) {
    int frames = 8, threads = 0, iters = 3;
    const char *prec = "both";
    const char *model_dir = NULL;
    const char *names[8];
    int nnames = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) frames = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc) prec = argv[++i];
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model_dir = argv[++i];
        else if (nnames < 8) names[nnames++] = argv[i];
    }
    if (model_dir) {
        names[0] = model_dir;
        nnames = 1;
    } else if (nnames == 0) {
        names[0] = "S14";
        names[1] = "B14";
        nnames = 2;
    }
    if (threads > 0) omp_set_num_threads(threads);
    printf("kernels: %s, threads: %d, frames: %d, 224 px\n", enc_kernels_best()->name,
           omp_get_max_threads(), frames);
    for (int ni = 0; ni < nnames; ni++) {
        const variant *v = NULL;
        variant given;
        char dir[4096] = "/tmp/vidx-bench-XXXXXX";
        vx_err err;
        enc_model *model = NULL;
        if (model_dir) {
            snprintf(dir, sizeof dir, "%s", model_dir);
            if (enc_model_open(dir, &model, &err) != VX_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            const enc_model_info *info = enc_model_get_info(model);
            given = (variant){info->variant, info->vision.width, info->vision.depth,
                              info->vision.heads, info->vision.mlp_hidden};
            v = &given;
        } else {
            for (size_t k = 0; k < sizeof(variants) / sizeof(variants[0]); k++)
                if (strcmp(variants[k].name, names[ni]) == 0) v = &variants[k];
            if (!v) {
                fprintf(stderr, "unknown variant %s (S14, B14, L14)\n", names[ni]);
                return 2;
            }
            if (!mkdtemp(dir) || write_model(dir, v) != 0) {
                fprintf(stderr, "cannot write a model under /tmp\n");
                return 1;
            }
            if (enc_model_open(dir, &model, &err) != VX_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
        }
        int64_t N = 1 + frames * 256;
        float emb_fp32[4096];
        const int embed_dim = enc_model_get_info(model)->embed_dim;
        int have_fp32 = 0;
        for (int pb = 0; pb < 2; pb++) {
            if ((pb == 0 && strcmp(prec, "bf16") == 0) || (pb == 1 && strcmp(prec, "fp32") == 0))
                continue;
            double peak_cpu = 0;
            double peak = gemm_rate(N, v->width, v->mlp, pb, iters < 5 ? 5 : iters, &peak_cpu);
            enc_vision *vis = NULL;
            if (enc_vision_create(model, frames, 224, threads, pb ? ENC_PRECISION_BF16 : ENC_PRECISION_FP32, &vis, &err) != VX_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            size_t npx = (size_t)3 * frames * 224 * 224;
            float *px = malloc(npx * sizeof(float)), emb[4096];
            rng = 0x2545F4914F6CDD1Dull; /* the same clip for fp32 and bf16 */
            for (size_t i = 0; i < npx; i++) px[i] = frand();
            enc_vision_forward(vis, px, emb, NULL, &err); /* warm-up */
            double best = 1e30, best_cpu = 1e30;
            for (int it = 0; it < iters; it++) {
                double t0 = now_s(), c0 = cpu_s();
                if (enc_vision_forward(vis, px, emb, NULL, &err) != VX_OK) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                double t = now_s() - t0, c = cpu_s() - c0;
                if (t < best) best = t;
                if (c < best_cpu) best_cpu = c;
            }
            /* the GEMM rate again after the clips: on a shared machine take the better one */
            double peak2 = gemm_rate(N, v->width, v->mlp, pb, iters, &peak_cpu);
            if (peak2 > peak) peak = peak2;
            double gf = tower_flops(v, frames) / best * 1e-9;
            double gf_cpu = tower_flops(v, frames) / best_cpu * 1e-9;
            printf("%s %s: %.1f ms/clip (%.1f CPU-ms), %.0f GFLOP/s, best GEMM %.0f GFLOP/s "
                   "(%.0f%%), arena %.1f MiB\n",
                   v->name, pb ? "bf16" : "fp32", best * 1e3, best_cpu * 1e3, gf, peak,
                   100 * gf / peak, enc_vision_arena_bytes(vis) / 1048576.0);
            /* on CPU time (meaningful with --threads 1 on a loaded machine) */
            printf("    on CPU time: %.0f GFLOP/s, best GEMM %.0f GFLOP/s (%.0f%%)\n", gf_cpu,
                   peak_cpu, 100 * gf_cpu / peak_cpu);
            if (pb == 0) {
                memcpy(emb_fp32, emb, sizeof(emb));
                have_fp32 = 1;
            } else if (have_fp32) {
                double dot = 0;
                for (int i = 0; i < embed_dim && i < 4096; i++) dot += (double)emb[i] * emb_fp32[i];
                printf("    bf16 vs fp32 embedding cosine %.6f\n", dot);
            }
            printf("    %s\n", enc_vision_backend(vis));
            double prof[ENC_PROF_COUNT];
            enc_vision_profile(vis, prof);
            double tot = prof[0] + prof[1] + prof[2] + prof[3];
            printf("    share of time: GEMM %.0f%%, attention %.0f%%, norms/GELU/residual %.0f%%, pool %.0f%%\n",
                   100 * prof[0] / tot, 100 * prof[1] / tot, 100 * prof[2] / tot, 100 * prof[3] / tot);
            free(px);
            enc_vision_free(vis);
        }
        enc_model_close(model);
        if (model_dir) continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/model.safetensors", dir);
        remove(path);
        snprintf(path, sizeof(path), "%s/config.json", dir);
        remove(path);
        rmdir(dir);
    }
    return 0;
}
