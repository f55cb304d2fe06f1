/* fuzz_index.c: mutated index files opened for a table (vk_db_read_index),
 * the way vekterdb.new and vekterdb.load open them.
 *
 * The table trusts the seed files (spec/fuzz/seeds/fuzz_index), recorded once
 * at start as trust_index_file records them; every input is then opened as
 * that table's index file.  An input equal to a seed is read by FAISS; any
 * other must be refused before FAISS reads it, with an error: a crash, or an
 * input that is neither a seed nor refused, ends the run. */
#include "index_input.h"
#include "vk_internal.h"

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

/* the table, and the seeds' digests recorded for it */
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
    int trusted = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        vk_index *ix = NULL;
        if (vk_db_read_index(db, path, 0, 1, &ix) == VK_OK) {
            trusted++;
            vk_index_release(ix);
        }
    }
    closedir(d);
    if (trusted == 0) {
        fprintf(stderr, "fuzz_index: no seed could be read\n");
        abort();
    }
}

/* the file's digest is one of the seeds' */
static int is_seed(const char *path)
{
    unsigned char digest[32];
    i64 bytes;
    FILE *f = fopen(path, "rb");
    int known = 0;
    if (f && vk_sha256_fd(fileno(f), digest, &bytes) == VK_OK) {
        char sql[200], hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM t__vekterdb_index_files WHERE sha256 = '%s'", hex);
        vk_rows *r = NULL;
        if (vk_db_execute(db, sql, NULL, 0, &r) == VK_OK && vk_rows_count(r) == 1)
            known = vk_rows_get(r, 0, 0)->i > 0;
        vk_rows_free(r);
    }
    if (f)
        fclose(f);
    return known;
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
    if ((rc == VK_OK) != is_seed(path)) {
        fprintf(stderr, "fuzz_index: %s a file %s\n", rc == VK_OK ? "read" : "refused",
                rc == VK_OK ? "the table did not save" : "the table saved");
        abort();
    }
    unlink(path);
    return 0;
}
