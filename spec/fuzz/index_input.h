/* index_input.h: what the two index-file targets (fuzz_index, faiss_reader)
 * share: the input as a file, and the allocation cap while FAISS reads */
#ifndef VK_FUZZ_INDEX_INPUT_H
#define VK_FUZZ_INDEX_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* new_limit.cpp: while on, operator new refuses more than 16 MiB at once */
void fuzz_limit_new(int on);

/* writes the input to this process's scratch file; its path, or NULL */
static const char *input_file(const uint8_t *data, size_t size)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/vk-fuzz-index-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t n = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || n != size) {
        unlink(path);
        return NULL;
    }
    return path;
}

#endif
