/* test_trust.c: index files a table trusts (trust.c), through C only */
#include "ctest.h"
#include "vk_account.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N = 200, D = 8 };

static void test_sha256(void)
{
    /* FIPS 180-2's example: SHA-256("abc") */
    char path[] = "/tmp/vk-test-sha-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "a file to digest");
    unsigned char d[32];
    i64 bytes = 0;
    CHECK(vk_sha256_fd(fd, d, &bytes) == VK_OK && bytes == 3, "vk_sha256_fd reads the whole file");
    static const unsigned char want[4] = {0xba, 0x78, 0x16, 0xbf};
    CHECK(memcmp(d, want, 4) == 0 && d[31] == 0xad, "SHA-256 of \"abc\" is ba7816bf...15ad");
    close(fd);
    unlink(path);
}

static vk_db *table(const char *name)
{
    vk_db *db = NULL;
    if (vk_db_open(&db, "sqlite://", NULL, 0) || vk_db_use_table(db, NULL, name, "idx", "vector", NULL, 0))
        return NULL;
    vk_batch *b = vk_batch_new(db, 1);
    float v[D];
    int rc = VK_OK;
    for (int i = 0; i < N && rc == VK_OK; i++) {
        for (int j = 0; j < D; j++)
            v[j] = (float)((i * 31 + j * 7) % 17) - 8.0f;
        vk_batch_begin_row(b);
        rc = vk_batch_set_vector(b, v, D);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);
    }
    if (rc == VK_OK)
        rc = vk_db_insert(db, b);
    vk_batch_free(b);
    vk_index *ix = NULL;
    int64_t added = 0;
    if (rc == VK_OK && (rc = vk_index_factory(&ix, D, "Flat", VK_METRIC_L2)) == VK_OK) {
        vk_db_attach(db, ix, NULL);
        vk_index_release(ix);
        rc = vk_db_sync_index(db, 64, NULL, NULL, NULL, NULL, &added);
    }
    if (rc) {
        vk_db_close(db);
        return NULL;
    }
    return db;
}

static int64_t recorded(vk_db *db, const char *name)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s__vekterdb_index_files", name);
    vk_rows *r = NULL;
    int64_t n = -1;
    if (vk_db_execute(db, sql, NULL, 0, &r) == VK_OK && vk_rows_count(r) == 1)
        n = vk_rows_get(r, 0, 0)->i;
    vk_rows_free(r);
    return n;
}

static void test_files(void)
{
    vk_db *db = table("t");
    CHECK(db != NULL, "a table of 200 records with a Flat index");
    if (!db)
        return;
    char path[] = "/tmp/vk-test-trust-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    vk_index *ix = NULL;
    CHECK(vk_db_read_index(db, path, 0, 0, &ix) == VK_EINVAL && ix == NULL &&
              strstr(vk_errmsg(), "records no index file"),
          "a table that saved no index file reads none");
    CHECK(vk_db_write_index(db, path) == VK_OK && recorded(db, "t") == 1, "saving records one digest");
    CHECK(vk_db_write_index(db, path) == VK_OK && recorded(db, "t") == 1,
          "saving the same file again keeps one digest");
    CHECK(vk_db_read_index(db, path, 0, 0, &ix) == VK_OK && vk_index_ntotal(ix) == N,
          "the saved file reads back");
    vk_index_release(ix);
    ix = NULL;

    /* the digest is recorded before the rename: when recording fails, the
     * old file stays in place, and it is still trusted */
    vk_rows *r = NULL;
    CHECK(vk_db_execute(db, "CREATE TRIGGER no_record BEFORE INSERT ON t__vekterdb_index_files "
                            "BEGIN SELECT RAISE(ABORT, 'recording refused'); END", NULL, 0, &r) == VK_OK,
          "a trigger that refuses new digests");
    vk_rows_free(r);
    r = NULL;
    vk_index *more = NULL;
    float extra[D] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(vk_index_factory(&more, D, "Flat", VK_METRIC_L2) == VK_OK && vk_index_add(more, 1, extra, 0) == VK_OK,
          "a different index");
    vk_db_attach(db, more, NULL);
    CHECK(vk_db_write_index(db, path) != VK_OK && strstr(vk_errmsg(), "recording refused"),
          "saving fails when its digest cannot be recorded");
    CHECK(vk_db_read_index(db, path, 0, 0, &ix) == VK_OK && vk_index_ntotal(ix) == N,
          "and the old file is still in place, and trusted");
    vk_db_attach(db, ix, NULL);
    vk_index_release(more);
    vk_index_release(ix);
    ix = NULL;
    CHECK(vk_db_execute(db, "DROP TRIGGER no_record", NULL, 0, &r) == VK_OK, "drop the trigger");
    vk_rows_free(r);

    /* one byte changed: refused, and FAISS never sees it */
    fd = open(path, O_RDWR);
    unsigned char c = 0;
    CHECK(fd >= 0 && pread(fd, &c, 1, 100) == 1, "read a byte of the file");
    c ^= 0x40;
    CHECK(pwrite(fd, &c, 1, 100) == 1, "change it");
    close(fd);
    CHECK(vk_db_read_index(db, path, 0, 0, &ix) == VK_EINVAL && ix == NULL &&
              strstr(vk_errmsg(), "matches none recorded"),
          "a changed file is refused");

    /* not an index at all, and trusted: FAISS refuses it, nothing is
     * recorded (a file cut short would do too, but FAISS leaks what it read
     * of one: docs/reliability.md) */
    FILE *junk = fopen(path, "wb");
    CHECK(junk && fputs("this is not a FAISS index", junk) >= 0 && fclose(junk) == 0, "write junk over it");
    CHECK(vk_db_read_index(db, path, 0, 1, &ix) == VK_EFAISS && ix == NULL && recorded(db, "t") == 1,
          "an unreadable trusted file is an error and is not recorded");

    /* another table's file */
    vk_db *other = table("u");
    char path2[] = "/tmp/vk-test-trust-XXXXXX";
    fd = mkstemp(path2);
    close(fd);
    CHECK(other && vk_db_write_index(db, path2) == VK_OK, "t saves a second file");
    CHECK(other && vk_db_read_index(other, path2, 0, 0, &ix) == VK_EINVAL,
          "table u does not read t's file");
    CHECK(other && vk_db_read_index(other, path2, 0, 1, &ix) == VK_OK && recorded(other, "u") == 1,
          "trusted, it is read and recorded");
    vk_index_release(ix);
    ix = NULL;
    CHECK(other && vk_db_read_index(other, path2, 0, 0, &ix) == VK_OK, "then u reads it unasked");
    vk_index_release(ix);
    vk_db_close(other);
    CHECK(vk_db_read_index(db, "/nonexistent/x.index", 0, 0, &ix) == VK_ENOTFOUND,
          "a missing file is VK_ENOTFOUND");
    vk_db_close(db);
    unlink(path);
    unlink(path2);
}

int main(void)
{
    test_sha256();
    test_files();
    CT_DONE();
}
