/* test_engine.c: the engine through its public C header, without Lua */
#include "ctest.h"
#include "vekterdb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static void test_codec(void)
{
    float v[64], back[64];
    unsigned s = 1;
    for (int i = 0; i < 64; i++)
        v[i] = frand(&s);
    unsigned char blob[1024];
    size_t n = vk_encode(v, 64, 1, blob, sizeof blob);
    CHECK(n > 0, "encode a 64-d vector");
    CHECK(vk_decoded_dim(blob, n) == 64, "frame header tells the dimension");
    CHECK(vk_decode(blob, n, back, 64) == VK_OK && memcmp(v, back, sizeof v) == 0,
          "decode gives the same floats back");
    CHECK(vk_decode(blob, n, back, 32) == VK_ECODEC, "decode refuses a wrong dimension");
    CHECK(vk_decode(blob, n - 3, back, 64) == VK_ECODEC, "a truncated blob is a codec error");
    CHECK(vk_decode("abc", 3, back, 64) == VK_ECODEC, "garbage is a codec error");
    CHECK(strstr(vk_errmsg(), "corrupted vector") != NULL, "the message says corrupted vector");
    CHECK(vk_encode(v, 64, 99, blob, sizeof blob) == 0, "an out-of-range level is refused");
}

static void test_metric(void)
{
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    CHECK(fabsf(vk_metric_value(VK_METRIC_IP, a, b, 3) - 32.0f) < 1e-5f, "inner product 1*4+2*5+3*6");
    CHECK(fabsf(vk_metric_value(VK_METRIC_L2, a, b, 3) - sqrtf(27.0f)) < 1e-5f,
          "L2 is the true distance, not squared");
    float bad[2] = {1, NAN};
    CHECK(vk_first_nonfinite(bad, 2) == 1, "NaN found at its position");
}

static void test_db(void)
{
    vk_db *db;
    CHECK(vk_db_open(&db, "oracle://x", NULL, 0) == VK_EINVAL, "unsupported scheme refused");
    CHECK(strstr(vk_errmsg(), "unsupported database URL scheme") != NULL, "message names the scheme problem");
    CHECK(vk_db_open(&db, "sqlite://", NULL, 0) == VK_OK, "open an in-memory SQLite database");
    vk_column cols[] = {{.name = "id", .type = VK_TEXT, .unique = 1, .index = 1}};
    CHECK(vk_db_use_table(db, NULL, "t", "idx", "vector", cols, 1) == VK_OK, "create a table");
    CHECK(vk_db_ncolumns(db) == 3, "idx, vector and id columns");
    CHECK(vk_db_dim(db) == 0 && vk_db_next_idx(db) == 0, "empty table: no dimension, next idx 0");

    enum { N = 500, D = 16 };
    float *x = malloc(sizeof(float) * N * D);
    unsigned s = 7;
    for (int i = 0; i < N * D; i++)
        x[i] = frand(&s);
    vk_batch *b = vk_batch_new(db, 1);
    int rc = VK_OK;
    char id[32];
    for (int i = 0; i < N && rc == VK_OK; i++) {
        vk_batch_begin_row(b);
        snprintf(id, sizeof id, "r%d", i);
        vk_value v = {.type = VK_TEXT, .s = id, .len = strlen(id)};
        rc = vk_batch_set(b, 2, &v);
        if (rc == VK_OK)
            rc = vk_batch_set_vector(b, x + i * D, D);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);
    }
    CHECK(rc == VK_OK && vk_batch_rows(b) == N, "build a batch of 500 rows");
    CHECK(vk_db_insert(db, b) == VK_OK, "insert it");
    vk_batch_clear(b);
    CHECK(vk_db_count(db) == N && vk_db_dim(db) == D, "count and dimension read back");

    vk_batch_begin_row(b);
    vk_value dup = {.type = VK_TEXT, .s = "r3", .len = 2};
    vk_batch_set(b, 2, &dup);
    vk_batch_set_vector(b, x, D);
    CHECK(vk_batch_end_row(b) == VK_OK, "a row with a duplicate id is accepted into the batch");
    CHECK(vk_db_insert(db, b) == VK_ECONSTRAINT, "the unique violation fails the insert");
    vk_batch_clear(b);
    CHECK(vk_db_count(db) == N, "and nothing was written");

    vk_batch_begin_row(b);
    vk_value wrong = {.type = VK_INT, .i = 9};
    CHECK(vk_batch_set(b, 0, &wrong) == VK_OK && vk_batch_set_vector(b, x, D) == VK_OK &&
              vk_batch_end_row(b) == VK_EINVAL,
          "a non-consecutive idx is refused");
    vk_batch_free(b);

    /* vectors by idx: a dense sorted run is read by one range scan that
     * decodes each row straight into the output, anything else by lookups */
    int64_t ids[N];
    float *got = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N; i++)
        ids[i] = i;
    CHECK(vk_db_fetch_vectors(db, ids, N, got) == VK_OK && memcmp(got, x, sizeof(float) * N * D) == 0,
          "every vector by one range scan, as inserted");
    for (int i = 0; i < 100; i++)
        ids[i] = 3 * i + 7;
    rc = vk_db_fetch_vectors(db, ids, 100, got);
    int same = rc == VK_OK;
    for (int i = 0; same && i < 100; i++)
        same = memcmp(got + i * D, x + ids[i] * D, sizeof(float) * D) == 0;
    CHECK(same, "every third vector, skipping the rows between");
    ids[0] = 50, ids[1] = 10, ids[2] = 50;
    CHECK(vk_db_fetch_vectors(db, ids, 3, got) == VK_OK && memcmp(got, x + 50 * D, sizeof(float) * D) == 0 &&
              memcmp(got + D, x + 10 * D, sizeof(float) * D) == 0 &&
              memcmp(got + 2 * D, x + 50 * D, sizeof(float) * D) == 0,
          "unsorted and repeated ids by lookups, in the order asked");

    vk_index *ix;
    CHECK(vk_index_factory(&ix, D, "NotAnIndex", VK_METRIC_L2) == VK_EFAISS, "bad factory string refused");
    CHECK(strstr(vk_errmsg(), "could not parse index string") != NULL, "with FAISS's own message");
    CHECK(vk_index_factory(&ix, D, "IVF8,Flat", VK_METRIC_L2) == VK_OK, "IVF8,Flat index");
    vk_db_attach(db, ix, NULL);
    vk_index_release(ix);
    CHECK(vk_db_train_index(db, 0, NULL, NULL) == VK_OK, "train on every record");
    char path[] = "/tmp/vk-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    int64_t added = 0;
    CHECK(vk_db_sync_index(db, 128, path, NULL, NULL, NULL, &added) == VK_OK && added == N,
          "sync adds every record, in batches");
    double nprobe;
    CHECK(vk_index_get_param(vk_db_index(db), "nprobe", &nprobe) == VK_OK && nprobe == 1,
          "nprobe reads back as FAISS's default 1");
    CHECK(vk_index_set_params(vk_db_index(db), "nprobe=4,bogus=1") == VK_EINVAL &&
              vk_index_get_param(vk_db_index(db), "nprobe", &nprobe) == VK_OK && nprobe == 1,
          "an unknown parameter changes nothing");

    vk_search_opts o = {.rerank = 1, .k_extra = 5, .params = "nprobe=8"};
    vk_hits h;
    CHECK(vk_db_search(db, x + 42 * D, 1, 3, &o, &h) == VK_OK, "search");
    CHECK(h.count[0] == 3 && h.ids[0] == 42 && h.metric[0] == 0.0f, "a stored vector finds itself at distance 0");
    CHECK(h.metric[1] >= h.metric[0] && h.metric[2] >= h.metric[1], "reranked nearest first");
    vk_hits_free(&h);
    CHECK(vk_index_get_param(vk_db_index(db), "nprobe", &nprobe) == VK_OK && nprobe == 1,
          "per-call parameters do not stick");
    int64_t self = 42;
    o.exclude = &self;
    CHECK(vk_db_search(db, x + 42 * D, 1, 3, &o, &h) == VK_OK && h.count[0] == 3 &&
              h.ids[0] != 42 && h.ids[1] != 42 && h.ids[2] != 42,
          "an excluded id never comes back");
    vk_hits_free(&h);

    vk_index *back;
    CHECK(vk_index_read(&back, path, 0) == VK_OK && vk_index_ntotal(back) == N, "index file reads back");
    vk_index_release(back);
    unlink(path);
    CHECK(vk_index_read(&back, path, 0) == VK_ENOTFOUND, "a missing index file is not found");

    vk_rows *none = NULL;
    CHECK(vk_db_execute(db, "DELETE FROM t WHERE idx = 120", NULL, 0, &none) == VK_OK,
          "a row goes behind VekterDB's back");
    vk_rows_free(none);
    for (int i = 0; i < 200; i++)
        ids[i] = 100 + i;
    CHECK(vk_db_fetch_vectors(db, ids, 200, got) == VK_ESTATE && strstr(vk_errmsg(), "idx 120 is in the index") != NULL,
          "a dense run with a row missing names the first missing idx");
    free(got);
    free(x);
    vk_db_close(db);
}

static void test_url(void)
{
    vk_db *db;
    CHECK(vk_db_open(&db, "sqlite:///%zz", NULL, 0) == VK_EINVAL, "bad percent escape refused");
    CHECK(vk_db_open(&db, "nonsense", NULL, 0) == VK_EINVAL, "text without a scheme refused");
    CHECK(vk_db_open(&db, "sqlite://?bogus=1", NULL, 0) == VK_EINVAL &&
              strstr(vk_errmsg(), "unknown SQLite connection option") != NULL,
          "unknown SQLite option refused");
}

/* the CPU check that keeps an AVX2 FAISS off a CPU without AVX2 */
static void test_cpu(void)
{
    char buf[64];
    unsigned all = VK_CPU_AVX2 | VK_CPU_FMA | VK_CPU_F16C | VK_CPU_POPCNT;
    CHECK(vk_cpu_missing(all, all, buf, sizeof buf) == 0 && buf[0] == 0, "nothing missing");
    CHECK(vk_cpu_missing(all, VK_CPU_POPCNT, buf, sizeof buf) == 3 && strcmp(buf, "avx2 fma f16c") == 0,
          "missing features named in order");
    CHECK(vk_cpu_missing(0, 0, buf, sizeof buf) == 0, "a generic build needs nothing");
    CHECK(vk_cpu_missing(all, 0, buf, 6) == 4 && strcmp(buf, "avx2 ") == 0, "a short buffer is cut");
    int avx2 = strcmp(vk_faiss_build(), "avx2") == 0;
    CHECK(avx2 ? vk_faiss_needs() == all : vk_faiss_needs() == 0, "the build's needs match its name");
    /* this machine runs the tests, so it runs the build: the check passes */
    CHECK(vk_faiss_check_cpu() == VK_OK, "this CPU runs the linked FAISS");
}

int main(void)
{
    test_cpu();
    test_codec();
    test_metric();
    test_url();
    test_db();
    CT_DONE();
}
