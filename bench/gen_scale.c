/*
 * gen_scale.c: the large benchmark's dataset (make bench-10m), streamed: no
 * more than one chunk of vectors is ever in memory, whatever N.
 *   train.fvecs  N vectors, generated chunk by chunk on every core
 *   test.fvecs   NQ query vectors
 *   spec.txt     the generator's parameters, and the seconds each step took
 *   gt.ivecs     for each query the row numbers of its K nearest train
 *                vectors, exact, by a streamed brute force over train.fvecs
 *                (scale_gt.c)
 * The rows are those of gen_data (bench/datagen.c): the first 1M rows of
 * the 10M set are the 1M set.  Files are written under temporary names and
 * renamed, gt.ivecs last: a folder holding gt.ivecs is complete.  When
 * train.fvecs and test.fvecs exist already (a run stopped during the ground
 * truth), they are kept.
 *   usage: gen_scale [-n N] [-q NQ] [-d D] [-k K] [-c CHUNK] OUTDIR
 */
#include "datagen.h"
#include "scale_gt.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* the FAISS searches run one per core: OpenBLAS must not start threads of
 * its own under them */
void openblas_set_num_threads(int n);

static int usage(void)
{
    fprintf(stderr, "usage: gen_scale [-n N] [-q NQ] [-d D] [-k K] [-c CHUNK] OUTDIR\n");
    return 2;
}

/* rows [first, first + n) of x (n x d, 4-byte values) appended to f with
 * their int32 dimension */
static int put_rows(FILE *f, const void *x, int64_t n, int64_t d, char *buf)
{
    size_t row = 4 + 4 * (size_t)d;
    int32_t dd = (int32_t)d;
    for (int64_t i = 0; i < n; i++) {
        memcpy(buf + (size_t)i * row, &dd, 4);
        memcpy(buf + (size_t)i * row + 4, (const char *)x + (size_t)(i * d) * 4, 4 * (size_t)d);
    }
    return fwrite(buf, row, (size_t)n, f) == (size_t)n ? 0 : -1;
}

/* writes rows [0, n) of set `which` to dir/name,
 * chunk by chunk, through name.tmp */
static int write_set(const char *dir, const char *name, const bench_model *m, int which, int64_t n,
                     int64_t d, int64_t chunk)
{
    char tmp[4096], final[4096];
    bench_path(tmp, sizeof tmp, dir, name, ".tmp");
    bench_path(final, sizeof final, dir, name, "");
    FILE *f = fopen(tmp, "wb");
    float *x = malloc(sizeof(float) * (size_t)(chunk * d));
    char *buf = malloc((4 + 4 * (size_t)d) * (size_t)chunk);
    int ok = f && x && buf;
    for (int64_t first = 0; ok && first < n; first += chunk) {
        int64_t c = n - first < chunk ? n - first : chunk;
#pragma omp parallel
        {
            int t = omp_get_thread_num(), tn = omp_get_num_threads();
            int64_t lo = c * t / tn, hi = c * (t + 1) / tn;
            bench_generate(m, which, first + lo, hi - lo, x + lo * d);
        }
        ok = put_rows(f, x, c, d, buf) == 0;
        if (ok && n >= 10 * chunk && (first / chunk) % 10 == 9)
            fprintf(stderr, "gen_scale: %s: %lld of %lld rows\n", name, (long long)(first + c),
                    (long long)n);
    }
    free(x);
    free(buf);
    if (!f || fclose(f) != 0 || !ok || rename(tmp, final) != 0) {
        perror(final);
        remove(tmp);
        return -1;
    }
    return 0;
}

/* dir/name exists with exactly `size` bytes */
static int has_file(const char *dir, const char *name, int64_t size)
{
    char p[4096];
    struct stat st;
    bench_path(p, sizeof p, dir, name, "");
    return stat(p, &st) == 0 && (int64_t)st.st_size == size;
}

/* this process's peak resident memory (VmHWM), in bytes; -1 when unknown */
static long long peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    long long kb = -1;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atoll(line + 6);
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

int main(int argc, char **argv)
{
    int64_t n = 10000000, nq = 1000, k = 100, chunk = 100000;
    bench_spec spec;
    bench_spec_default(&spec);
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        int64_t *dst = !strcmp(argv[i], "-n")   ? &n
                       : !strcmp(argv[i], "-q") ? &nq
                       : !strcmp(argv[i], "-d") ? &spec.d
                       : !strcmp(argv[i], "-k") ? &k
                       : !strcmp(argv[i], "-c") ? &chunk
                                                : NULL;
        if (!dst || bench_parse_i64(argv[i + 1], dst))
            return usage();
    }
    if (i != argc - 1)
        return usage();
    const char *dir = argv[i];
    if (k > n)
        k = n;
    openblas_set_num_threads(1);
    int64_t d = spec.d, row = 4 + 4 * d;
    bench_model *m = bench_model_new(&spec);
    float *q = malloc(sizeof(float) * (size_t)(nq * d));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)(nq * k));
    int32_t *gt = malloc(sizeof(int32_t) * (size_t)(nq * k));
    int rc = 1;
    if (!m || !q || !lab || !gt) {
        fprintf(stderr, "gen_scale: out of memory\n");
        goto done;
    }
    double t0 = bench_now();
    int reused = has_file(dir, "train.fvecs", n * row) && has_file(dir, "test.fvecs", nq * row);
    if (!reused && (write_set(dir, "train.fvecs", m, BENCH_TRAIN, n, d, chunk) ||
                    write_set(dir, "test.fvecs", m, BENCH_TEST, nq, d, chunk)))
        goto done;
    double t1 = bench_now();
    bench_generate(m, BENCH_TEST, 0, nq, q);
    char path[4096];
    bench_path(path, sizeof path, dir, "train.fvecs", "");
    int64_t rows = scale_gt(path, q, nq, d, k, chunk, lab, NULL);
    if (rows < 0)
        goto done;
    if (rows != n) {
        fprintf(stderr, "gen_scale: %s holds %lld rows, not %lld\n", path, (long long)rows, (long long)n);
        goto done;
    }
    double t2 = bench_now();
    for (int64_t j = 0; j < nq * k; j++)
        gt[j] = (int32_t)lab[j];
    bench_path(path, sizeof path, dir, "spec.txt", "");
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        goto done;
    }
    fprintf(f, "n=%lld\nnq=%lld\nd=%lld\nk=%lld\nclusters=%lld\nlatent=%lld\n"
            "centre_scale=%g\nnoise_scale=%g\nseed=%llu\nthreads=%d\n",
            (long long)n, (long long)nq, (long long)d, (long long)k, (long long)spec.nclusters,
            (long long)spec.latent, spec.centre_scale, spec.noise_scale,
            (unsigned long long)spec.seed, omp_get_max_threads());
    if (!reused)
        fprintf(f, "generate_seconds=%.2f\n", t1 - t0);
    fprintf(f, "ground_truth_seconds=%.2f\npeak_rss_bytes=%lld\n", t2 - t1, peak_rss());
    if (fclose(f) != 0) {
        perror(path);
        goto done;
    }
    char tmp[4096], final[4096];
    bench_path(tmp, sizeof tmp, dir, "gt.ivecs", ".tmp");
    bench_path(final, sizeof final, dir, "gt.ivecs", "");
    char *buf = malloc((4 + 4 * (size_t)k) * (size_t)nq);
    f = fopen(tmp, "wb");
    int ok = buf && f && put_rows(f, gt, nq, k, buf) == 0;
    free(buf);
    if (!f || fclose(f) != 0 || !ok || rename(tmp, final) != 0) {
        perror(final);
        remove(tmp);
        goto done;
    }
    printf("bench data: %lld train + %lld test vectors, d=%lld, in %s (%s in %.1f s, "
           "exact top-%lld by streamed brute force in %.1f s)\n",
           (long long)n, (long long)nq, (long long)d, dir, reused ? "kept" : "generated", t1 - t0,
           (long long)k, t2 - t1);
    rc = 0;
done:
    bench_model_free(m);
    free(q);
    free(lab);
    free(gt);
    return rc;
}
