/*
 * gen_data.c: writes the benchmark's dataset into a folder:
 *   train.fvecs  N vectors          test.fvecs  NQ vectors
 *   gt.ivecs     for each test vector the idx of its K nearest train vectors
 *                (exact L2, FAISS Flat index through the C API)
 *   spec.txt     the generator's parameters
 * Files are written under temporary names and renamed, gt.ivecs last: a
 * folder holding gt.ivecs is complete.
 *   usage: gen_data [-n N] [-q NQ] [-d D] [-k K] OUTDIR
 */
#include "datagen.h"

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: gen_data [-n N] [-q NQ] [-d D] [-k K] OUTDIR\n");
    return 2;
}

/* path of name in dir, with an optional suffix */
/* rows of 4-byte values, each preceded by its int32 dimension (fvecs/ivecs) */
static int write_vecs(const char *dir, const char *name, const void *data, int64_t n, int64_t d)
{
    char tmp[4096], final[4096];
    bench_path(tmp, sizeof tmp, dir, name, ".tmp");
    bench_path(final, sizeof final, dir, name, "");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        perror(tmp);
        return -1;
    }
    int32_t dd = (int32_t)d;
    const char *p = data;
    int ok = 1;
    for (int64_t i = 0; i < n && ok; i++)
        ok = fwrite(&dd, 4, 1, f) == 1 && fwrite(p + i * d * 4, 4, (size_t)d, f) == (size_t)d;
    if (fclose(f) != 0 || !ok || rename(tmp, final) != 0) {
        perror(final);
        remove(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int64_t n = 100000, nq = 10000, k = 100;
    bench_spec spec;
    bench_spec_default(&spec);
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        int64_t *dst = !strcmp(argv[i], "-n")   ? &n
                       : !strcmp(argv[i], "-q") ? &nq
                       : !strcmp(argv[i], "-d") ? &spec.d
                       : !strcmp(argv[i], "-k") ? &k
                                                : NULL;
        if (!dst || bench_parse_i64(argv[i + 1], dst))
            return usage();
    }
    if (i != argc - 1)
        return usage();
    const char *dir = argv[i];
    if (k > n)
        k = n;
    bench_model *m = bench_model_new(&spec);
    float *x = malloc(sizeof(float) * (size_t)(n * spec.d));
    float *q = malloc(sizeof(float) * (size_t)(nq * spec.d));
    float *dist = malloc(sizeof(float) * (size_t)(nq * k));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)(nq * k));
    int32_t *gt = malloc(sizeof(int32_t) * (size_t)(nq * k));
    int rc = 1;
    FaissIndexFlatL2 *flat = NULL;
    if (!m || !x || !q || !dist || !lab || !gt) {
        fprintf(stderr, "gen_data: out of memory\n");
        goto done;
    }
    double t0 = bench_now();
    bench_generate(m, BENCH_TRAIN, 0, n, x);
    bench_generate(m, BENCH_TEST, 0, nq, q);
    double t1 = bench_now();
    if (faiss_IndexFlatL2_new_with(&flat, spec.d) || faiss_Index_add(flat, n, x) ||
        faiss_Index_search(flat, nq, q, k, dist, lab)) {
        fprintf(stderr, "gen_data: FAISS: %s\n", faiss_get_last_error());
        goto done;
    }
    double t2 = bench_now();
    for (int64_t j = 0; j < nq * k; j++)
        gt[j] = (int32_t)lab[j];
    if (write_vecs(dir, "train.fvecs", x, n, spec.d) || write_vecs(dir, "test.fvecs", q, nq, spec.d))
        goto done;
    char sp[4096];
    bench_path(sp, sizeof sp, dir, "spec.txt", "");
    FILE *f = fopen(sp, "w");
    if (!f) {
        perror(sp);
        goto done;
    }
    fprintf(f, "n=%lld\nnq=%lld\nd=%lld\nk=%lld\nclusters=%lld\nlatent=%lld\n"
            "centre_scale=%g\nnoise_scale=%g\nseed=%llu\n",
            (long long)n, (long long)nq, (long long)spec.d, (long long)k,
            (long long)spec.nclusters, (long long)spec.latent, spec.centre_scale,
            spec.noise_scale, (unsigned long long)spec.seed);
    if (fclose(f) != 0 || write_vecs(dir, "gt.ivecs", gt, nq, k))
        goto done;
    printf("bench data: %lld train + %lld test vectors, d=%lld, in %s "
           "(generated in %.1f s, exact top-%lld in %.1f s)\n",
           (long long)n, (long long)nq, (long long)spec.d, dir, t1 - t0, (long long)k, t2 - t1);
    rc = 0;
done:
    if (flat)
        faiss_Index_free(flat);
    bench_model_free(m);
    free(x);
    free(q);
    free(dist);
    free(lab);
    free(gt);
    return rc;
}
