/* faiss_reader.c: mutated FAISS index files handed straight to FAISS's reader
 * (vk_index_read), the path a table never takes: see fuzz_index.c.  FAISS
 * 1.7.3 crashes on some (docs/reliability.md), so `make fuzz` leaves it out;
 * `make fuzz-faiss` runs it. */
#include "index_input.h"
#include "vekterdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = input_file(data, size);
    if (!path)
        return 0;
    vk_index *ix;
    fuzz_limit_new(1);
    if (vk_index_read(&ix, path, 0) == VK_OK)
        vk_index_release(ix);
    fuzz_limit_new(0);
    unlink(path);
    return 0;
}
