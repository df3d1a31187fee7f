/* Fuzz target for the text tokenizers (encoder/tokenizer.c): any bytes, as text or as a
 * vocabulary/merges file, must give well-formed ids or a message, never a crash. The first byte
 * picks what the rest is fed to and max_len; ids are checked against the vocabulary size, the
 * mask and n_tokens against each other.
 *   0: WordPiece encode   1: CLIP BPE encode   2: pre_text
 *   3: the rest is a vocab.txt, then a fixed text is encoded
 *   4: the rest is a merges file, then a fixed text is encoded
 * Needs encoder/tokenizer.c and encoder/unicode_tables.c linked in. */
#include "enc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\na\ndog\nrun\n##s\n##ning\n"
                            "caf\n##e\n\xc3\xa9\n##\xc3\xa9\n\xe4\xb8\x96\n\xe7\x95\x8c\n!\n,\n.\n"
                            "##\n#\n[\n]\n\xcf\x83\n\xce\xb9\n##\xce\xb9\nx\n##x\n";
static const char merges[] = "#version: 0.2\ni n\nt h\na n\nth e</w>\nin g</w>\no u\na </w>\n"
                             "d o\ndo g</w>\n\xc3 \xa9\n";
static const char fixed_text[] = "The dog's r\xc3\xa9sum\xc3\xa9, \xe4\xb8\x96\xe7\x95\x8c! [SEP] "
                                 "&amp; \xce\xa3 \xff\xfe x";

static void check(const enc_tok *tok, const char *text, size_t len, size_t max_len)
{
    int32_t *ids = malloc(max_len * sizeof(int32_t)), *mask = malloc(max_len * sizeof(int32_t));
    if (!ids || !mask) abort();
    vx_err err;
    size_t n = 0;
    int truncated = -1;
    if (enc_tok_encode(tok, text, len, max_len, ids, mask, &n, &truncated, &err) == VX_OK) {
        if (n < 2 || n > max_len || (truncated != 0 && truncated != 1)) abort();
        enc_tok_specials sp = enc_tok_get_specials(tok);
        if (ids[0] != sp.begin || ids[n - 1] != sp.end) abort();
        for (size_t k = 0; k < max_len; k++) {
            if (ids[k] < 0 || (size_t)ids[k] >= enc_tok_vocab_size(tok)) abort();
            if (mask[k] != (k < n ? 1 : 0)) abort();
            if (k >= n && ids[k] != sp.pad) abort();
        }
    }
    free(ids);
    free(mask);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    unsigned mode = data[0] % 5;
    size_t max_len = 2 + (size_t)(data[0] / 5) % 80;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    vx_err err;
    enc_tok *tok = NULL;
    switch (mode) {
    case 0:
        if (enc_tok_wordpiece_from_memory(vocab, sizeof(vocab) - 1, &tok, &err) != VX_OK) abort();
        check(tok, text, len, max_len);
        break;
    case 1:
        if (enc_tok_clip_from_memory(merges, sizeof(merges) - 1, &tok, &err) != VX_OK) abort();
        check(tok, text, len, max_len);
        break;
    case 2: {
        char *out = NULL;
        size_t out_len = 0;
        if (enc_tok_pre_text(text, len, max_len % 4, &out, &out_len, &err) == VX_OK) {
            if (strlen(out) > out_len) abort();
            free(out);
        }
        break;
    }
    case 3:
        if (enc_tok_wordpiece_from_memory(text, len, &tok, &err) == VX_OK)
            check(tok, fixed_text, sizeof(fixed_text) - 1, max_len);
        break;
    case 4:
        if (enc_tok_clip_from_memory(text, len, &tok, &err) == VX_OK)
            check(tok, fixed_text, sizeof(fixed_text) - 1, max_len);
        break;
    }
    enc_tok_free(tok);
    return 0;
}
