/* fuzz_url.c: arbitrary text as a database URL */
#include "vk_base.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    vk_url u;
    if (vk_url_parse(s, &u) == VK_OK) {
        /* what parsed is consistent: a scheme, and options in pairs */
        if (!u.scheme || (u.nopts && (!u.keys || !u.values)))
            abort();
        for (int i = 0; i < u.nopts; i++)
            if (!u.keys[i] || !u.values[i] || !u.keys[i][0])
                abort();
        vk_url_free(&u);
    } else if (!vk_errmsg()[0]) {
        abort();   /* every refusal says why */
    }
    free(s);
    return 0;
}
