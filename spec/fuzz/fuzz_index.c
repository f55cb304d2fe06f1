/* fuzz_index.c: mutated FAISS index files handed to vk_index_read */
#include "vekterdb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_limit_new(int on);   /* new_limit.cpp */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/vk-fuzz-index-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    vk_index *ix;
    fuzz_limit_new(1);
    if (vk_index_read(&ix, path, 0) == VK_OK)
        vk_index_release(ix);
    fuzz_limit_new(0);
    unlink(path);
    return 0;
}
