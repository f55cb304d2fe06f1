/* fuzz_codec.c: arbitrary bytes as a stored vector blob */
#include "vekterdb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the dimension the caller expects */
    int64_t d = size ? (data[0] % 64) + 1 : 1;
    const uint8_t *blob = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0;
    float out[64];
    int rc = vk_decode(blob, len, out, d);
    int64_t hd = vk_decoded_dim(blob, len);
    if (rc == VK_OK) {
        /* a decoded vector re-encodes to a blob that decodes to the same floats */
        char enc[1024];
        float back[64];
        size_t n = vk_encode(out, d, 1, enc, sizeof enc);
        if (n == 0 || vk_decode(enc, n, back, d) != VK_OK || memcmp(out, back, sizeof(float) * (size_t)d))
            abort();
    }
    (void)hd;
    return 0;
}
