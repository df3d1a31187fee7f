/* Fuzz target for the safetensors header parser (encoder/safetensors.c): any byte string must
 * end in VX_OK or a message, never a crash, leak or out-of-bounds read. With clang and
 * -DVIDX_FUZZ=ON this links against libFuzzer; otherwise fuzz_main.c replays a corpus. */
#include "enc.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vx_err err;
    enc_st *st = NULL;
    if (enc_st_parse(data, size, "fuzz", &st, &err) == VX_OK) {
        /* Touch every tensor's bytes: offsets were validated, so this must stay in bounds. */
        volatile uint8_t sink = 0;
        for (int64_t i = 0; i < enc_st_count(st); i++) {
            const enc_tensor_info *t = enc_st_tensor(st, i);
            const uint8_t *p = t->data;
            if (t->size_bytes) sink ^= p[0] ^ p[t->size_bytes - 1];
            if (enc_st_find(st, t->name) != t) __builtin_trap();
        }
        (void)enc_st_metadata(st, "format");
        (void)sink;
        enc_st_close(st);
    }
    return 0;
}
