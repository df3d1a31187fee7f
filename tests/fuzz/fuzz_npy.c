/* Fuzz target for the .npy reader (encoder/npy.c): hostile headers and sizes must end in a
 * message, never a crash. Built like fuzz_safetensors.c. */
#include "enc.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vx_err err;
    enc_npy npy;
    if (enc_npy_parse(data, size, "fuzz", &npy, &err) == VX_OK) {
        size_t esize = npy.dtype == ENC_NPY_F32 ? 4 : 1;
        volatile uint8_t sink = 0;
        if (npy.numel) sink ^= ((const uint8_t *)npy.data)[(size_t)npy.numel * esize - 1];
        (void)sink;
        enc_npy_free(&npy);
    }
    return 0;
}
