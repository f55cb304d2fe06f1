/*
 * datagen.h: the benchmark's deterministic dataset, a mixture of gaussians.
 *
 * Each vector is x = W (mu_k + sigma_k z) + noise_scale * e: cluster k is
 * chosen uniformly among nclusters, mu_k and sigma_k are the cluster's
 * latent centre and spread, z is a standard normal latent vector of
 * dimension `latent`, W a fixed d x latent projection and e standard normal
 * noise in all d dimensions.  Real descriptors (SIFT) have a low intrinsic
 * dimension; so does this data, which keeps nearest neighbors meaningful
 * and PQ recall in the same range as on SIFT.
 *
 * Every value comes from a counter-based generator keyed by (seed, stream,
 * row): row r of a set never depends on how many rows are generated, so the
 * 100k train set is the first 100k rows of the 1M one, and any slice can be
 * generated on its own.
 */
#ifndef BENCH_DATAGEN_H
#define BENCH_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_spec {
    int64_t d;            /* dimension */
    int64_t nclusters;    /* gaussians in the mixture */
    int64_t latent;       /* intrinsic dimension */
    double centre_scale;  /* spread of the latent centres */
    double noise_scale;   /* isotropic noise in the full dimension */
    uint64_t seed;
} bench_spec;

/* the largest intrinsic dimension */
#define BENCH_MAX_LATENT 256

/* the sets a spec yields */
enum { BENCH_TRAIN = 1, BENCH_TEST = 2 };

/* the defaults the benchmark uses (d = 128, 1000 clusters) */
void bench_spec_default(bench_spec *s);

/* The model's fixed parts (projection, centres, spreads), built once. */
typedef struct bench_model bench_model;
/* NULL when out of memory or when the spec is out of range */
bench_model *bench_model_new(const bench_spec *s);
void bench_model_free(bench_model *m);

/* rows [first, first + n) of set `which` into out (n x d floats) */
void bench_generate(const bench_model *m, int which, int64_t first, int64_t n, float *out);

/* what both generators' command lines and files need: monotonic seconds,
 * a positive integer argument (-1 when s is not one), "dir/name suffix" */
double bench_now(void);
int bench_parse_i64(const char *s, int64_t *out);
void bench_path(char *buf, size_t cap, const char *dir, const char *name, const char *suffix);

#endif
