/* test_scale_gt.c: the large benchmark's streamed ground truth
 * (bench/scale_gt.c), read chunk by chunk and merged across threads, equals
 * a FAISS Flat index's exact answer over the whole file at once. */
#include "../../bench/datagen.c"
#include "../../bench/scale_gt.c"

#include "ctest.h"
#include "vekterdb.h"

#include <unistd.h>

#define N 5003
#define NQ 37
#define D 32
#define K 20

void openblas_set_num_threads(int n);

static float x[N * D], q[NQ * D], fd[NQ * K], sd[NQ * K];
static int64_t fl[NQ * K], sl[NQ * K];

/* the streamed answer equals Flat's: same labels, or (a tie) same distance */
static int same(void)
{
    for (int i = 0; i < NQ * K; i++) {
        if (sl[i] == fl[i])
            continue;
        if (fabsf(sd[i] - fd[i]) > 1e-5f * (1 + fd[i]))
            return 0;
    }
    return 1;
}

int main(void)
{
    openblas_set_num_threads(1);
    bench_spec s;
    bench_spec_default(&s);
    s.d = D;
    s.latent = 8;
    bench_model *m = bench_model_new(&s);
    CHECK(m != NULL, "a model");
    if (!m)
        CT_DONE();
    bench_generate(m, BENCH_TRAIN, 0, N, x);
    bench_generate(m, BENCH_TEST, 0, NQ, q);
    bench_model_free(m);
    char path[] = "/tmp/vk_scale_gt_XXXXXX";
    int fdesc = mkstemp(path);
    FILE *f = fdesc >= 0 ? fdopen(fdesc, "wb") : NULL;
    CHECK(f != NULL, "a scratch file");
    if (!f)
        CT_DONE();
    int32_t dd = D;
    for (int i = 0; i < N; i++) {
        fwrite(&dd, 4, 1, f);
        fwrite(x + i * D, 4, D, f);
    }
    fclose(f);

    FaissIndexFlatL2 *flat = NULL;
    int err = faiss_IndexFlatL2_new_with(&flat, D) || faiss_Index_add(flat, N, x) ||
              faiss_Index_search(flat, NQ, q, K, fd, fl);
    CHECK(!err, "the Flat index's exact answer");
    if (flat)
        faiss_Index_free(flat);

    /* chunks that do not divide N, small ones, and one chunk for all */
    int64_t chunks[] = { 700, 97, N + 10 };
    int threads[] = { 1, 2, 3 };
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
            omp_set_num_threads(threads[t]);
            memset(sl, 0xff, sizeof sl);
            int64_t rows = scale_gt(path, q, NQ, D, K, chunks[c], sl, sd);
            char name[160];
            snprintf(name, sizeof name, "chunks of %lld rows, %d thread(s): every row read",
                     (long long)chunks[c], threads[t]);
            CHECK(rows == N, name);
            snprintf(name, sizeof name, "chunks of %lld rows, %d thread(s): Flat's top %d", (long long)chunks[c],
                     threads[t], K);
            CHECK(same(), name);
        }
    }
    /* a Flat search sees rows in order: our labels are row numbers of the file */
    int in_range = 1;
    for (int i = 0; i < NQ * K; i++)
        in_range &= sl[i] >= 0 && sl[i] < N;
    CHECK(in_range, "labels are row numbers");

    /* fewer rows than k: the rest is -1 */
    int64_t few[3 * 4];
    f = fopen(path, "wb");
    for (int i = 0; i < 3; i++) {
        fwrite(&dd, 4, 1, f);
        fwrite(x + i * D, 4, D, f);
    }
    fclose(f);
    CHECK(scale_gt(path, q, 3, D, 4, 2, few, NULL) == 3, "a file of 3 rows");
    CHECK(few[3] == -1 && few[7] == -1 && few[11] == -1 && few[0] >= 0 && few[2] >= 0,
          "k = 4 of 3 rows: the 4th label is -1");

    /* a row of another dimension is refused */
    f = fopen(path, "ab");
    int32_t bad = D + 1;
    fwrite(&bad, 4, 1, f);
    fwrite(x, 4, D + 1, f);
    fclose(f);
    CHECK(scale_gt(path, q, NQ, D, K, 700, sl, sd) == -1, "a row of another dimension is an error");
    unlink(path);
    CHECK(scale_gt(path, q, NQ, D, K, 700, sl, sd) == -1, "a missing file is an error");
    CT_DONE();
}
