/* fuzz_index.c: mutated index files opened for a table (vk_db_read_index),
 * the way vekterdb.new and vekterdb.load open them.
 *
 * The table trusts the seed files (spec/fuzz/seeds/fuzz_index), recorded once
 * at start as trust_index_file records them; every input is then opened as
 * that table's index file.  An input equal to a seed is read by FAISS; any
 * other must be refused before FAISS reads it, with an error: a crash, or an
 * input that is neither a seed nor refused, ends the run. */
#include "index_input.h"
#include "vekterdb.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VK_SRC_DIR
#error "VK_SRC_DIR: the checkout, for the seed files"
#endif

static vk_db *db;

/* the seed files' bytes: the oracle compares inputs with them directly,
 * not through the engine's digests */
enum { MAX_SEEDS = 32 };
static struct {
    unsigned char *data;
    size_t size;
} seeds[MAX_SEEDS];
static int nseeds;

static void keep_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || nseeds == MAX_SEEDS)
        abort();
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    seeds[nseeds].data = malloc((size_t)n + 1);
    if (!seeds[nseeds].data || fread(seeds[nseeds].data, 1, (size_t)n, f) != (size_t)n)
        abort();
    seeds[nseeds++].size = (size_t)n;
    fclose(f);
}

/* the table, trusting the seeds */
static void setup(void)
{
    if (vk_db_open(&db, "sqlite://", NULL, 0) || vk_db_use_table(db, NULL, "t", "idx", "vector", NULL, 0)) {
        fprintf(stderr, "fuzz_index: cannot make the table: %s\n", vk_errmsg());
        abort();
    }
    const char *dir = VK_SRC_DIR "/spec/fuzz/seeds/fuzz_index";
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_index: no seeds in %s\n", dir);
        abort();
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        vk_index *ix = NULL;
        if (vk_db_read_index(db, path, 0, 1, &ix) == VK_OK) {
            keep_seed(path);
            vk_index_release(ix);
        }
    }
    closedir(d);
    if (nseeds == 0) {
        fprintf(stderr, "fuzz_index: no seed could be read\n");
        abort();
    }
}

static int is_seed(const uint8_t *data, size_t size)
{
    for (int i = 0; i < nseeds; i++)
        if (seeds[i].size == size && memcmp(seeds[i].data, data, size) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        setup();
    const char *path = input_file(data, size);
    if (!path)
        return 0;
    vk_index *ix = NULL;
    fuzz_limit_new(1);
    int rc = vk_db_read_index(db, path, 0, 0, &ix);
    fuzz_limit_new(0);
    if (rc == VK_OK)
        vk_index_release(ix);
    else if (rc != VK_EINVAL || strstr(vk_errmsg(), "is not one VekterDB saved") == NULL) {
        fprintf(stderr, "fuzz_index: unexpected error %d: %s\n", rc, vk_errmsg());
        abort();
    }
    if ((rc == VK_OK) != is_seed(data, size)) {
        fprintf(stderr, "fuzz_index: %s a file %s\n", rc == VK_OK ? "read" : "refused",
                rc == VK_OK ? "the table did not save" : "the table saved");
        abort();
    }
    unlink(path);
    return 0;
}
