/* Fuzz target for config.json of model directories (encoder/model.c), with the text and audio
 * sections: the input is written as config.json next to the tiny fixture weights of each tower
 * (VIDX_FUZZ_MODELS: bert_6b_like, mobileclip_like, beats_like); enc_model_open must end in a
 * model or a message, never a crash, and a model it accepts must run its towers on a fixed query,
 * a short waveform and, for BERT, the matching head without failing on shapes. The first byte
 * picks the weights. */
#include "enc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const models[] = {"text/models/bert_6b_like", "text/models/mobileclip_like",
                                     "audio/models/beats_like"};
static char dirs[3][256];

static int mkdir_p(const char *d)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "%s", d);
    return mkdir(cmd, 0700) != 0 && access(cmd, F_OK) != 0;
}

static void cleanup(void)
{
    const char *names[] = {"config.json", "model.safetensors", "vocab.txt",
                           "bpe_simple_vocab_16e6.txt"};
    for (int i = 0; i < 3; i++) {
        char p[1024];
        for (int f = 0; f < 4; f++) {
            snprintf(p, sizeof p, "%s/%s", dirs[i], names[f]);
            unlink(p);
        }
        rmdir(dirs[i]);
    }
}

static void setup(void)
{
    static int done;
    if (done) return;
    done = 1;
    atexit(cleanup);
    for (int i = 0; i < 3; i++) {
        snprintf(dirs[i], sizeof dirs[i], "/tmp/vidx-fuzz-config-%d-%d", (int)getpid(), i);
        if (mkdir_p(dirs[i])) abort();
        const char *files[] = {"model.safetensors", "vocab.txt", "bpe_simple_vocab_16e6.txt"};
        for (int f = 0; f < 3; f++) {
            char src[512], dst[512];
            snprintf(src, sizeof src, "%s/%s/%s", VIDX_FUZZ_MODELS, models[i], files[f]);
            snprintf(dst, sizeof dst, "%s/%s", dirs[i], files[f]);
            if (access(src, R_OK) == 0 && access(dst, F_OK) != 0 && symlink(src, dst)) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0) return 0;
    const char *dir = dirs[data[0] % 3];
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    vx_err err;
    enc_model *model = NULL;
    if (enc_model_open(dir, &model, &err) != VX_OK) return 0;
    const enc_model_info *info = enc_model_get_info(model);
    float emb[4096];
    if (info->has_text && info->embed_dim <= 4096) {
        enc_text *text = NULL;
        if (enc_text_create(model, 1, &text, &err) == VX_OK) {
            (void)enc_text_embed(text, "a dog runs", 10, emb, &err);
            if (enc_text_has_itm(text) && info->text.vision_width <= 4096) {
                static float vis[4 * 4096];
                int32_t ids[1024], mask[1024];
                float logit;
                if (enc_text_max_len(text) <= 1024 &&
                    enc_text_tokenize(text, "dog", 3, ids, mask, NULL, NULL, &err) == VX_OK)
                    (void)enc_text_itm(text, ids, mask, vis, 4, &logit, &err);
            }
            enc_text_free(text);
        }
    }
    if (info->has_audio && info->embed_dim <= 4096) {
        enc_audio *audio = NULL;
        if (enc_audio_create(model, 1, &audio, &err) == VX_OK) {
            static float wave[4000];
            for (int i = 0; i < 4000; i++)
                wave[i] = (float)((i * 7919) % 200 - 100) / 400.0f;
            (void)enc_audio_forward(audio, wave, 4000, emb, NULL, NULL, &err);
            enc_audio_free(audio);
        }
    }
    enc_model_close(model);
    return 0;
}
