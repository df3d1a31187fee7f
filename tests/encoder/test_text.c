/* Golden tests of the text towers against the independent PyTorch reference
 * (tests/reference/fixtures/text/manifest.json): BERT query vectors and matching-head logits,
 * MobileCLIP query vectors, within the manifest's tolerance; the C tokenizer reproduces the
 * fixture's ids; bad input (empty, huge, invalid UTF-8, bad ids, non-finite vision tokens, models
 * without a text tower) gives defined results or clear errors. */
#include "enc.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *fixture_path(const char *rel)
{
    vx_err err;
    char *p = vx_asprintf(&err, "%s/%s", VIDX_FIXTURES, rel);
    T_ASSERT(p);
    return p;
}

/* manifest paths are relative to fixtures/text */
static char *text_path(const char *rel)
{
    vx_err err;
    char *p = vx_asprintf(&err, "%s/text/%s", VIDX_FIXTURES, rel);
    T_ASSERT(p);
    return p;
}

static cJSON *load_manifest(void)
{
    vx_err err;
    char *path = fixture_path("text/manifest.json"), *text = NULL;
    size_t len = 0;
    T_OK(vx_read_file(path, 1 << 22, &text, &len, &err), &err);
    cJSON *m = cJSON_ParseWithLength(text, len);
    T_ASSERT(m);
    free(text);
    free(path);
    return m;
}

static enc_npy read_npy(const char *rel)
{
    vx_err err;
    enc_npy a;
    char *p = text_path(rel);
    T_OK(enc_npy_read(p, &a, &err), &err);
    free(p);
    return a;
}

static void open_text(const char *model_rel, int threads, enc_model **model, enc_text **text)
{
    vx_err err;
    char *dir = text_path(model_rel);
    T_OK(enc_model_open(dir, model, &err), &err);
    T_OK(enc_text_create(*model, threads, text, &err), &err);
    free(dir);
}

static void run_goldens(int threads)
{
    vx_err err;
    cJSON *m = load_manifest();
    double tol = cJSON_GetObjectItem(m, "tolerance")->valuedouble;
    const cJSON *c;
    int n = 0;
    double worst_emb = 0, worst_logit = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        enc_model *model = NULL;
        enc_text *text = NULL;
        open_text(cJSON_GetObjectItem(c, "model")->valuestring, threads, &model, &text);
        int L = enc_text_max_len(text), E = enc_text_embed_dim(text);
        enc_npy ids_f = read_npy(cJSON_GetObjectItem(c, "ids")->valuestring);
        enc_npy emb_ref = read_npy(cJSON_GetObjectItem(c, "embedding")->valuestring);
        T_EQ_INT(ids_f.numel, 2 * L);
        T_EQ_INT(emb_ref.numel, E);
        int32_t ids[1024], mask[1024];
        const float *f = ids_f.data;
        for (int i = 0; i < L; i++)
            ids[i] = (int32_t)f[i], mask[i] = (int32_t)f[L + i];
        const cJSON *txt = cJSON_GetObjectItem(c, "text");
        if (cJSON_IsString(txt)) {
            /* the C tokenizer gives the reference's ids */
            int32_t ids2[1024], mask2[1024];
            T_OK(enc_text_tokenize(text, txt->valuestring, strlen(txt->valuestring), ids2, mask2,
                                   NULL, NULL, &err),
                 &err);
            for (int i = 0; i < L; i++) {
                if (ids2[i] != ids[i] || mask2[i] != mask[i])
                    T_FAIL("%s: token %d: id %d mask %d, reference %d %d", name, i, ids2[i],
                           mask2[i], ids[i], mask[i]);
            }
        }
        float emb[4096];
        T_OK(enc_text_forward_ids(text, ids, mask, emb, &err), &err);
        double e = t_rel_err(emb, emb_ref.data, E);
        if (e > worst_emb) worst_emb = e;
        if (!(e <= tol)) T_FAIL("%s: embedding error %.3g > %g", name, e, tol);
        if (cJSON_IsString(txt)) {
            float emb2[4096];
            T_OK(enc_text_embed(text, txt->valuestring, strlen(txt->valuestring), emb2, &err),
                 &err);
            T_ASSERT(memcmp(emb, emb2, (size_t)E * 4) == 0);
        }
        const cJSON *lg = cJSON_GetObjectItem(c, "itm_logit");
        if (cJSON_IsNumber(lg)) {
            T_ASSERT(enc_text_has_itm(text));
            enc_npy vis = read_npy(cJSON_GetObjectItem(c, "vision_tokens")->valuestring);
            const enc_model_info *info = enc_model_get_info(model);
            T_EQ_INT(vis.shape[1], info->text.vision_width);
            float logit = 0;
            T_OK(enc_text_itm(text, ids, mask, vis.data, vis.shape[0], &logit, &err), &err);
            double ref = lg->valuedouble;
            double d = fabs(logit - ref) / fmax(1.0, fabs(ref));
            if (d > worst_logit) worst_logit = d;
            if (!(d <= tol)) T_FAIL("%s: itm logit %.7g, reference %.7g", name, logit, ref);
            /* the matching head leaves the query path untouched */
            float emb3[4096];
            T_OK(enc_text_forward_ids(text, ids, mask, emb3, &err), &err);
            T_ASSERT(memcmp(emb, emb3, (size_t)E * 4) == 0);
            enc_npy_free(&vis);
        }
        enc_npy_free(&ids_f);
        enc_npy_free(&emb_ref);
        enc_text_free(text);
        enc_model_close(model);
        n++;
    }
    printf("%d text cases (%d threads), worst embedding error %.3g, worst logit error %.3g\n", n,
           threads, worst_emb, worst_logit);
    T_ASSERT(n >= 10);
    cJSON_Delete(m);
}

static void test_golden_text(void)
{
    run_goldens(2);
}
static void test_golden_text_one_thread(void)
{
    run_goldens(1);
}

static void test_bad_text_input(void)
{
    vx_err err;
    const char *models[] = {"models/bert_1b_like", "models/mobileclip_like"};
    for (int mi = 0; mi < 2; mi++) {
        enc_model *model = NULL;
        enc_text *text = NULL;
        open_text(models[mi], 2, &model, &text);
        int E = enc_text_embed_dim(text), L = enc_text_max_len(text);
        float emb[4096];
        /* empty text: [CLS][SEP] / <sot><eot>, a unit vector */
        T_OK(enc_text_embed(text, "", 0, emb, &err), &err);
        double ss = 0;
        for (int i = 0; i < E; i++)
            ss += (double)emb[i] * emb[i];
        T_NEAR(ss, 1.0, 1e-5);
        T_OK(enc_text_embed(text, NULL, 0, emb, &err), &err);
        /* 100k characters: truncated to max_len, defined */
        size_t big = 100000;
        char *s = malloc(big + 1);
        for (size_t i = 0; i < big; i++)
            s[i] = "the dog runs "[i % 13];
        s[big] = 0;
        size_t ntok = 0;
        int trunc = 0;
        int32_t ids[1024], mask[1024];
        T_OK(enc_text_tokenize(text, s, big, ids, mask, &ntok, &trunc, &err), &err);
        T_EQ_INT(ntok, L);
        T_EQ_INT(trunc, 1);
        T_OK(enc_text_embed(text, s, big, emb, &err), &err);
        free(s);
        /* invalid UTF-8 */
        const char bad[] = "\xff\xfe dog \xc3\x28 \xe2\x82 runs \xed\xa0\x80";
        T_OK(enc_text_embed(text, bad, sizeof(bad) - 1, emb, &err), &err);
        for (int i = 0; i < E; i++)
            T_ASSERT(isfinite(emb[i]));
        /* ids outside the vocabulary are refused */
        for (int i = 0; i < L; i++)
            ids[i] = 0, mask[i] = 0;
        ids[0] = 1 << 30;
        mask[0] = 1;
        T_ASSERT(enc_text_forward_ids(text, ids, mask, emb, &err) == VX_EINVAL);
        T_ASSERT(strstr(err.msg, "vocabulary"));
        ids[0] = -5;
        T_ASSERT(enc_text_forward_ids(text, ids, mask, emb, &err) == VX_EINVAL);
        /* all padding: defined */
        ids[0] = 0;
        mask[0] = 0;
        T_OK(enc_text_forward_ids(text, ids, NULL, emb, &err), &err);
        T_ASSERT(enc_text_forward_ids(NULL, ids, NULL, emb, &err) == VX_EINVAL);
        if (enc_text_has_itm(text)) {
            const enc_model_info *info = enc_model_get_info(model);
            int Cv = info->text.vision_width;
            float *vis = calloc((size_t)3 * Cv, sizeof(float));
            float logit;
            T_OK(enc_text_tokenize(text, "a dog", 5, ids, mask, NULL, NULL, &err), &err);
            T_OK(enc_text_itm(text, ids, mask, vis, 3, &logit, &err), &err);
            T_ASSERT(isfinite(logit));
            vis[Cv + 1] = NAN;
            T_ASSERT(enc_text_itm(text, ids, mask, vis, 3, &logit, &err) == VX_EINVAL);
            T_ASSERT(strstr(err.msg, "not finite"));
            T_ASSERT(enc_text_itm(text, ids, mask, vis, 0, &logit, &err) == VX_EINVAL);
            /* a bigger token count after a smaller one grows the buffers */
            float *vis2 = calloc((size_t)50 * Cv, sizeof(float));
            T_OK(enc_text_itm(text, ids, mask, vis2, 50, &logit, &err), &err);
            free(vis2);
            free(vis);
        } else {
            float logit;
            float vis[64] = {0};
            T_ASSERT(enc_text_itm(text, ids, mask, vis, 1, &logit, &err) == VX_EUNSUPPORTED);
        }
        enc_text_free(text);
        enc_model_close(model);
    }
    enc_text_free(NULL);
}

/* pre_text in config.json: the caption cleaning runs before tokenising. */
static void test_pre_text(void)
{
    vx_err err;
    char dir[] = "/tmp/vidx-pretext-XXXXXX";
    T_ASSERT(mkdtemp(dir));
    char *src = text_path("models/bert_1b_like"), *text = NULL;
    size_t len = 0;
    char *p = vx_asprintf(&err, "%s/config.json", src);
    T_OK(vx_read_file(p, 1 << 20, &text, &len, &err), &err);
    free(p);
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cfg, "text"), "pre_text", cJSON_CreateTrue());
    char *out = cJSON_Print(cfg);
    const char *names[] = {"model.safetensors", "vocab.txt"};
    char *dst = vx_asprintf(&err, "%s/config.json", dir);
    FILE *f = fopen(dst, "w");
    T_ASSERT(f);
    fputs(out, f);
    fclose(f);
    free(dst);
    for (int i = 0; i < 2; i++) {
        char *a = vx_asprintf(&err, "%s/%s", src, names[i]),
             *b = vx_asprintf(&err, "%s/%s", dir, names[i]);
        T_ASSERT(symlink(a, b) == 0);
        free(a), free(b);
    }
    enc_model *model = NULL;
    enc_text *t = NULL;
    T_OK(enc_model_open(dir, &model, &err), &err);
    T_ASSERT(enc_model_get_info(model)->text.pre_text == 1);
    T_OK(enc_text_create(model, 1, &t, &err), &err);
    int32_t a[64], b[64], ma[64], mb[64];
    const char *raw = "  A Man, \"Playing\" guitar!!  ", *clean = "a man playing guitar";
    T_OK(enc_text_tokenize(t, raw, strlen(raw), a, ma, NULL, NULL, &err), &err);
    T_OK(enc_text_tokenize(t, clean, strlen(clean), b, mb, NULL, NULL, &err), &err);
    T_ASSERT(memcmp(a, b, (size_t)enc_text_max_len(t) * 4) == 0);
    enc_text_free(t);
    enc_model_close(model);
    for (int i = 0; i < 3; i++) {
        char *b = vx_asprintf(&err, "%s/%s", dir, i < 2 ? names[i] : "config.json");
        unlink(b);
        free(b);
    }
    rmdir(dir);
    free(out);
    free(src);
    cJSON_Delete(cfg);
}

static void test_no_text_tower(void)
{
    vx_err err;
    char *dir = fixture_path("models/distilled_like_f32");
    enc_model *model = NULL;
    T_OK(enc_model_open(dir, &model, &err), &err);
    T_ASSERT(!enc_model_get_info(model)->has_text);
    enc_text *text = NULL;
    T_ASSERT(enc_text_create(model, 1, &text, &err) == VX_EUNSUPPORTED);
    T_ASSERT(strstr(err.msg, "no text tower"));
    T_ASSERT(text == NULL);
    enc_model_close(model);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"golden_text", test_golden_text},
        {"golden_text_one_thread", test_golden_text_one_thread},
        {"bad_text_input", test_bad_text_input},
        {"no_text_tower", test_no_text_tower},
        {"pre_text", test_pre_text},
    };
    return T_RUN(argc, argv, cases);
}
