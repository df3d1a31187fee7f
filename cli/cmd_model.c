/* vidx model info DIR: what a model directory holds. */
#include "cli.h"
#include "enc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static cJSON *vision_json(const enc_vision_config *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "width", v->width);
    cJSON_AddNumberToObject(o, "depth", v->depth);
    cJSON_AddNumberToObject(o, "heads", v->heads);
    cJSON_AddNumberToObject(o, "mlp_hidden", v->mlp_hidden);
    cJSON_AddNumberToObject(o, "patch_size", v->patch_size);
    cJSON_AddNumberToObject(o, "image_size", v->image_size);
    cJSON_AddNumberToObject(o, "frames", v->frames);
    cJSON_AddStringToObject(o, "gelu", v->gelu_erf ? "erf" : "tanh");
    cJSON_AddBoolToObject(o, "img_pos_embed", v->img_pos_embed);
    cJSON_AddNumberToObject(o, "pool_heads", v->pool_heads);
    cJSON_AddNumberToObject(o, "pool_dim", v->pool_dim);
    cJSON_AddStringToObject(o, "head", v->head ? v->head : "");
    return o;
}

static cJSON *text_json(const enc_text_config *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", t->arch);
    cJSON_AddNumberToObject(o, "width", t->width);
    cJSON_AddNumberToObject(o, "layers", t->layers);
    cJSON_AddNumberToObject(o, "heads", t->heads);
    cJSON_AddNumberToObject(o, "ffn", t->ffn);
    cJSON_AddNumberToObject(o, "vocab_size", t->vocab_size);
    cJSON_AddNumberToObject(o, "max_len", t->max_len);
    cJSON_AddStringToObject(o, "tokenizer", t->tokenizer);
    cJSON_AddStringToObject(o, "vocab_file", t->vocab_file);
    if (!strcmp(t->arch, "bert")) {
        cJSON_AddNumberToObject(o, "query_layers", t->fusion_layer);
        cJSON_AddBoolToObject(o, "itm", t->itm);
        if (t->itm) {
            cJSON_AddNumberToObject(o, "fusion_layer", t->fusion_layer);
            cJSON_AddNumberToObject(o, "encoder_width", t->encoder_width);
            cJSON_AddNumberToObject(o, "vision_width", t->vision_width);
            cJSON_AddBoolToObject(o, "fusion_proj", t->fusion_proj);
        }
        cJSON_AddBoolToObject(o, "pre_text", t->pre_text);
    }
    return o;
}

static cJSON *audio_json(const enc_audio_config *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", a->arch);
    cJSON_AddNumberToObject(o, "width", a->width);
    cJSON_AddNumberToObject(o, "layers", a->layers);
    cJSON_AddNumberToObject(o, "heads", a->heads);
    cJSON_AddNumberToObject(o, "ffn", a->ffn);
    cJSON_AddNumberToObject(o, "patch_size", a->patch_size);
    cJSON_AddNumberToObject(o, "mel_bins", a->mel_bins);
    cJSON_AddNumberToObject(o, "frames", a->frames);
    cJSON_AddNumberToObject(o, "num_buckets", a->num_buckets);
    cJSON_AddNumberToObject(o, "max_distance", a->max_distance);
    cJSON_AddBoolToObject(o, "gru_rel_pos", a->gru_rel_pos);
    cJSON_AddBoolToObject(o, "deep_norm", a->deep_norm);
    cJSON_AddBoolToObject(o, "av_fusion", a->av_fusion);
    return o;
}

int cmd_model(const cli_globals *g, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "info") != 0)
        return cli_usage_error("model", argc < 2 ? "missing subcommand (try 'vidx model info DIR')"
                                                 : "unknown subcommand '%s'",
                               argc < 2 ? "" : argv[1]);
    const char *dir = NULL;
    int tensors = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--tensors"))
            tensors = 1;
        else if (argv[i][0] == '-')
            return cli_usage_error("model", "unknown option '%s'", argv[i]);
        else if (!dir)
            dir = argv[i];
        else
            return cli_usage_error("model", "unexpected argument '%s'", argv[i]);
    }
    if (!dir) dir = g->model_dir;
    if (!dir) return cli_usage_error("model", "name a model directory (or set VIDX_MODEL)");

    vx_err err = {0};
    enc_model *model = NULL;
    if (enc_model_open(dir, &model, &err)) return cli_fail(&err);
    const enc_model_info *info = enc_model_get_info(model);
    /* the vision tower's default precision on this CPU, measured on one synthetic clip */
    enc_precision prec = ENC_PRECISION_FP32;
    double prec_cos = -1;
    const char *prec_why = "";
    if (enc_default_precision(model, 1, &prec, &prec_cos, &prec_why, &err)) {
        enc_model_close(model);
        return cli_fail(&err);
    }
    char size[32];
    vx_format_size((int64_t)info->weights_bytes, size, sizeof size);

    if (g->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "dir", info->dir);
        cJSON_AddStringToObject(root, "model_id", info->model_id);
        cJSON_AddStringToObject(root, "variant", info->variant);
        cJSON_AddNumberToObject(root, "format_version", info->format_version);
        cJSON_AddNumberToObject(root, "embed_dim", info->embed_dim);
        cJSON *towers = cJSON_AddArrayToObject(root, "towers");
        if (info->has_vision) cJSON_AddItemToArray(towers, cJSON_CreateString("vision"));
        if (info->has_text) cJSON_AddItemToArray(towers, cJSON_CreateString("text"));
        if (info->has_audio) cJSON_AddItemToArray(towers, cJSON_CreateString("audio"));
        if (info->has_vision) cJSON_AddItemToObject(root, "vision", vision_json(&info->vision));
        if (info->has_text) cJSON_AddItemToObject(root, "text", text_json(&info->text));
        if (info->has_audio) cJSON_AddItemToObject(root, "audio", audio_json(&info->audio));
        cJSON_AddNumberToObject(root, "tensors", (double)info->tensor_count);
        cJSON_AddNumberToObject(root, "parameters", (double)info->param_count);
        cJSON_AddNumberToObject(root, "weights_bytes", (double)info->weights_bytes);
        cJSON_AddStringToObject(root, "weights_dtype", enc_dtype_name(info->weights_dtype));
        if (info->has_vision) {
            cJSON_AddStringToObject(root, "default_precision", enc_precision_name(prec));
            cJSON_AddStringToObject(root, "default_precision_reason", prec_why);
            if (prec_cos >= 0) cJSON_AddNumberToObject(root, "bf16_fp32_cosine", prec_cos);
        }
        if (tensors) {
            cJSON *list = cJSON_AddArrayToObject(root, "tensor_list");
            for (int64_t i = 0; i < info->tensor_count; i++) {
                const enc_tensor_info *t = enc_model_tensor(model, i);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", t->name);
                cJSON_AddStringToObject(o, "dtype", enc_dtype_name(t->dtype));
                cJSON *shape = cJSON_AddArrayToObject(o, "shape");
                for (int d = 0; d < t->ndim; d++)
                    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
                cJSON_AddItemToArray(list, o);
            }
        }
        char *text = cJSON_Print(root);
        if (text) puts(text);
        free(text);
        cJSON_Delete(root);
    } else {
        printf("model        %s\n", info->dir);
        printf("model id     %s\n", info->model_id);
        printf("variant      %s\n", info->variant);
        printf("towers       %s%s%s\n", info->has_vision ? "vision " : "",
               info->has_text ? "text " : "", info->has_audio ? "audio" : "");
        if (!info->has_text)
            printf("             (no text tower: clip-to-clip search only, no text queries)\n");
        printf("embedding    %d dimensions\n", info->embed_dim);
        if (info->has_vision) {
            const enc_vision_config *v = &info->vision;
            printf("vision       width %d, depth %d, heads %d, mlp %d, patch %d, %d frames at "
                   "%dx%d, GELU %s\n",
                   v->width, v->depth, v->heads, v->mlp_hidden, v->patch_size, v->frames,
                   v->image_size, v->image_size, v->gelu_erf ? "erf" : "tanh");
            printf("pool         %d heads -> %d, head '%s'%s\n", v->pool_heads, v->pool_dim,
                   v->head ? v->head : "?", v->img_pos_embed ? ", image pos_embed" : "");
        }
        if (info->has_text) {
            const enc_text_config *t = &info->text;
            int bert = !strcmp(t->arch, "bert");
            printf("text         %s: width %d, %d layers (query uses %d), heads %d, ffn %d\n",
                   bert ? "BERT" : "MobileCLIP", t->width, t->layers,
                   bert ? t->fusion_layer : t->layers, t->heads, t->ffn);
            printf("tokenizer    %s, %s, vocab %d, max %d tokens%s%s\n", t->tokenizer,
                   t->vocab_file, t->vocab_size, t->max_len, t->pre_text ? ", caption cleaning" : "",
                   bert ? " (English only)" : "");
            if (bert && t->itm)
                printf("matching     layers %d..%d cross-attend to %d-wide vision tokens%s\n",
                       t->fusion_layer, t->layers - 1, t->encoder_width,
                       t->fusion_proj ? " (after Linear + LayerNorm from the vision width)" : "");
        }
        if (info->has_audio) {
            const enc_audio_config *a = &info->audio;
            printf("audio        BEATs: width %d, %d layers, heads %d, ffn %d; fbank %d mel x %d "
                   "frames (10 s), %dx%d patches\n",
                   a->width, a->layers, a->heads, a->ffn, a->mel_bins, a->frames, a->patch_size,
                   a->patch_size);
            printf("             relative bias %d buckets to %d%s%s%s\n", a->num_buckets,
                   a->max_distance, a->gru_rel_pos ? ", GRU-gated" : "",
                   a->deep_norm ? ", deep norm" : "",
                   a->av_fusion ? "; av_fusion gives the joint audio-visual vector" : "");
        }
        printf("parameters   %lld in %lld tensors\n", (long long)info->param_count,
               (long long)info->tensor_count);
        printf("weights      %s, %s%s\n", size, enc_dtype_name(info->weights_dtype),
               info->converted_bytes ? " (widened to F32 at load)" : "");
        if (info->has_vision) {
            printf("precision    %s by default on this CPU: %s", enc_precision_name(prec),
                   prec_why);
            if (prec_cos >= 0) printf(" (measured %.6f)", prec_cos);
            printf("; --precision fp32|bf16 overrides\n");
        }
        if (tensors)
            for (int64_t i = 0; i < info->tensor_count; i++) {
                const enc_tensor_info *t = enc_model_tensor(model, i);
                printf("  %-48s %-5s (", t->name, enc_dtype_name(t->dtype));
                for (int d = 0; d < t->ndim; d++)
                    printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
                printf(")\n");
            }
    }
    enc_model_close(model);
    return CLI_EXIT_OK;
}
