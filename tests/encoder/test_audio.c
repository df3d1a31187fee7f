/* Golden tests of the s2-6B audio tower (BEATs) against the independent PyTorch reference
 * (tests/reference/fixtures/audio/manifest.json): embedding, encoder tokens and the joint
 * audio-visual vector from the raw waveform (fbank included); bad input (silence, 10 ms, NaN,
 * longer than 10 s, a model without audio). `test_encoder_audio --fbank IN.npy OUT.npy` writes
 * the C fbank of a waveform for tests/reference/check_fbank.py (torchaudio comparison). */
#include "enc.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *audio_path(const char *rel)
{
    vx_err err;
    char *p = vx_asprintf(&err, "%s/audio/%s", VIDX_FIXTURES, rel);
    T_ASSERT(p);
    return p;
}

static enc_npy read_npy(const char *rel)
{
    vx_err err;
    enc_npy a;
    char *p = audio_path(rel);
    T_OK(enc_npy_read(p, &a, &err), &err);
    free(p);
    return a;
}

static cJSON *load_manifest(void)
{
    vx_err err;
    char *path = audio_path("manifest.json"), *text = NULL;
    size_t len = 0;
    T_OK(vx_read_file(path, 1 << 22, &text, &len, &err), &err);
    cJSON *m = cJSON_ParseWithLength(text, len);
    T_ASSERT(m);
    free(text);
    free(path);
    return m;
}

static void open_audio(int threads, enc_model **model, enc_audio **audio)
{
    vx_err err;
    char *dir = audio_path("models/beats_like");
    T_OK(enc_model_open(dir, model, &err), &err);
    T_OK(enc_audio_create(*model, threads, audio, &err), &err);
    free(dir);
}

static void run_goldens(int threads)
{
    vx_err err;
    cJSON *m = load_manifest();
    double tol = cJSON_GetObjectItem(m, "tolerance")->valuedouble;
    enc_model *model = NULL;
    enc_audio *audio = NULL;
    open_audio(threads, &model, &audio);
    int64_t E = enc_audio_embed_dim(audio),
            TW = enc_audio_token_count(audio) * enc_audio_width(audio);
    const cJSON *c;
    int n = 0;
    double worst = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        enc_npy wave = read_npy(cJSON_GetObjectItem(c, "input")->valuestring);
        enc_npy emb_ref = read_npy(cJSON_GetObjectItem(c, "embedding")->valuestring);
        enc_npy tok_ref = read_npy(cJSON_GetObjectItem(c, "tokens")->valuestring);
        enc_npy vproj = read_npy(cJSON_GetObjectItem(c, "vision_proj")->valuestring);
        enc_npy joint_ref = read_npy(cJSON_GetObjectItem(c, "joint")->valuestring);
        T_EQ_INT(emb_ref.numel, E);
        T_EQ_INT(tok_ref.numel, TW);
        float *emb = malloc(E * 4), *raw = malloc(E * 4), *tok = malloc(TW * 4),
              *joint = malloc(E * 4);
        T_OK(enc_audio_forward(audio, wave.data, wave.numel, emb, raw, tok, &err), &err);
        double ee = t_rel_err(emb, emb_ref.data, E), et = t_rel_err(tok, tok_ref.data, TW);
        T_OK(enc_audio_fuse(audio, raw, vproj.data, joint, &err), &err);
        double ej = t_rel_err(joint, joint_ref.data, E);
        printf("%s: embedding %.3g, tokens %.3g, joint %.3g\n", name, ee, et, ej);
        if (!(ee <= tol && et <= tol && ej <= tol))
            T_FAIL("%s: errors %.3g %.3g %.3g > %g", name, ee, et, ej, tol);
        worst = fmax(worst, fmax(ee, fmax(et, ej)));
        free(emb), free(raw), free(tok), free(joint);
        enc_npy_free(&wave), enc_npy_free(&emb_ref), enc_npy_free(&tok_ref);
        enc_npy_free(&vproj), enc_npy_free(&joint_ref);
        n++;
    }
    printf("%d audio cases (%d threads), worst error %.3g\n", n, threads, worst);
    T_ASSERT(n >= 2);
    enc_audio_free(audio);
    enc_model_close(model);
    cJSON_Delete(m);
}

static void test_golden_audio(void)
{
    run_goldens(2);
}
static void test_golden_audio_one_thread(void)
{
    run_goldens(1);
}

static void test_bad_audio_input(void)
{
    vx_err err;
    enc_model *model = NULL;
    enc_audio *audio = NULL;
    open_audio(2, &model, &audio);
    int64_t E = enc_audio_embed_dim(audio), max_n = enc_audio_max_samples(audio);
    T_EQ_INT(max_n, 159920); /* 998 frames of 25 ms every 10 ms: the first 10 s */
    float *emb = malloc(E * 4), *emb2 = malloc(E * 4);
    float *x = calloc((size_t)max_n + 32000, sizeof(float));
    /* silence, nothing, 10 ms: all defined (all-padding input) and equal to each other */
    T_OK(enc_audio_forward(audio, x, 16000, emb, NULL, NULL, &err), &err);
    for (int64_t i = 0; i < E; i++)
        T_ASSERT(isfinite(emb[i]));
    T_OK(enc_audio_forward(audio, NULL, 0, emb2, NULL, NULL, &err), &err);
    T_OK(enc_audio_forward(audio, x, 160, emb2, NULL, NULL, &err), &err);
    /* longer than 10 s: only the first 10 s count */
    for (int64_t i = 0; i < max_n + 32000; i++)
        x[i] = 0.3f * sinf(0.05f * (float)i);
    T_OK(enc_audio_forward(audio, x, max_n, emb, NULL, NULL, &err), &err);
    for (int64_t i = max_n; i < max_n + 32000; i++)
        x[i] = 1.0f;
    T_OK(enc_audio_forward(audio, x, max_n + 32000, emb2, NULL, NULL, &err), &err);
    T_ASSERT(memcmp(emb, emb2, E * 4) == 0);
    /* NaN / inf samples */
    x[5000] = NAN;
    T_ASSERT(enc_audio_forward(audio, x, 16000, emb, NULL, NULL, &err) == VX_EINVAL);
    T_ASSERT(strstr(err.msg, "not finite"));
    x[5000] = INFINITY;
    T_ASSERT(enc_audio_forward(audio, x, 16000, emb, NULL, NULL, &err) == VX_EINVAL);
    T_ASSERT(enc_audio_forward(audio, x, -1, emb, NULL, NULL, &err) == VX_EINVAL);
    T_ASSERT(enc_audio_forward(NULL, x, 10, emb, NULL, NULL, &err) == VX_EINVAL);
    float raw[64] = {0}, vis[64] = {0};
    vis[0] = NAN;
    T_ASSERT(enc_audio_fuse(audio, raw, vis, emb, &err) == VX_EINVAL);
    /* fbank: short input gives no frames; NaN refused */
    int64_t frames = -1;
    T_OK(enc_fbank(x, 399, 64, NULL, &frames, &err), &err);
    T_EQ_INT(frames, 0);
    T_EQ_INT(enc_fbank_frames(400), 1);
    T_EQ_INT(enc_fbank_frames(160000), 998);
    free(x), free(emb), free(emb2);
    enc_audio_free(audio);
    enc_model_close(model);
    enc_audio_free(NULL);
    /* models without audio */
    char *dir = vx_asprintf(&err, "%s/models/distilled_like_f32", VIDX_FIXTURES);
    T_OK(enc_model_open(dir, &model, &err), &err);
    T_ASSERT(enc_audio_create(model, 1, &audio, &err) == VX_EUNSUPPORTED);
    T_ASSERT(strstr(err.msg, "no audio tower"));
    enc_model_close(model);
    free(dir);
}

/* --fbank IN OUT: the C fbank (64 bins) of a float32 waveform in [-1, 1] (scaled by 2^15). */
static int fbank_tool(const char *in, const char *out)
{
    vx_err err;
    enc_npy x;
    if (enc_npy_read(in, &x, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    float *s = x.data;
    for (int64_t i = 0; i < x.numel; i++)
        s[i] *= 32768.0f;
    int64_t frames = enc_fbank_frames(x.numel);
    float *fb = calloc((size_t)(frames > 0 ? frames : 1) * 64, sizeof(float));
    if (enc_fbank(s, x.numel, 64, fb, &frames, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    int64_t shape[2] = {frames, 64};
    if (enc_npy_write(out, ENC_NPY_F32, 2, shape, fb, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    free(fb);
    enc_npy_free(&x);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--fbank") == 0) return fbank_tool(argv[2], argv[3]);
    static const t_case cases[] = {
        {"golden_audio", test_golden_audio},
        {"golden_audio_one_thread", test_golden_audio_one_thread},
        {"bad_audio_input", test_bad_audio_input},
    };
    return T_RUN(argc, argv, cases);
}
