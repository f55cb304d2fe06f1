/* datagen.c: the benchmark's mixture of gaussians (see datagen.h) */
#include "datagen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* streams of the counter-based generator */
enum { S_PROJECTION = 1, S_CENTRES, S_SPREADS, S_TRAIN, S_TEST };

struct bench_model {
    bench_spec s;
    float *w;        /* d x latent, row-major */
    float *mu;       /* nclusters x latent */
    float *sigma;    /* nclusters */
};

typedef struct rng {
    uint64_t state;
    int has_spare;
    double spare;
} rng;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* the generator of one (stream, row): independent of every other row */
static rng rng_at(uint64_t seed, uint64_t stream, uint64_t row)
{
    uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ULL);
    uint64_t key = splitmix(&s);
    s = key ^ (row * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL);
    return (rng){.state = splitmix(&s)};
}

/* uniform in (0, 1): 53 random bits, never 0 */
static double uniform(rng *r)
{
    return ((double)(splitmix(&r->state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* standard normal, Box-Muller */
static double normal(rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = uniform(r), u2 = uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

void bench_spec_default(bench_spec *s)
{
    s->d = 128;
    s->nclusters = 1000;
    s->latent = 32;
    s->centre_scale = 1.0;
    s->noise_scale = 0.1;
    s->seed = 20240917;
}

bench_model *bench_model_new(const bench_spec *s)
{
    if (s->d <= 0 || s->nclusters <= 0 || s->latent <= 0 || s->latent > BENCH_MAX_LATENT)
        return NULL;
    bench_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->s = *s;
    int64_t d = s->d, l = s->latent, k = s->nclusters;
    m->w = malloc(sizeof(float) * (size_t)(d * l));
    m->mu = malloc(sizeof(float) * (size_t)(k * l));
    m->sigma = malloc(sizeof(float) * (size_t)k);
    if (!m->w || !m->mu || !m->sigma) {
        bench_model_free(m);
        return NULL;
    }
    double wscale = 1.0 / sqrt((double)l);
    for (int64_t i = 0; i < d; i++) {
        rng r = rng_at(s->seed, S_PROJECTION, (uint64_t)i);
        for (int64_t j = 0; j < l; j++)
            m->w[i * l + j] = (float)(normal(&r) * wscale);
    }
    for (int64_t c = 0; c < k; c++) {
        rng r = rng_at(s->seed, S_CENTRES, (uint64_t)c);
        for (int64_t j = 0; j < l; j++)
            m->mu[c * l + j] = (float)(normal(&r) * s->centre_scale);
        rng q = rng_at(s->seed, S_SPREADS, (uint64_t)c);
        /* clusters from tight to loose: 0.1 .. 0.4 of the centres' spread */
        m->sigma[c] = (float)(s->centre_scale * (0.1 + 0.3 * uniform(&q)));
    }
    return m;
}

void bench_model_free(bench_model *m)
{
    if (!m)
        return;
    free(m->w);
    free(m->mu);
    free(m->sigma);
    free(m);
}

void bench_generate(const bench_model *m, int which, int64_t first, int64_t n, float *out)
{
    const bench_spec *s = &m->s;
    int64_t d = s->d, l = s->latent;
    uint64_t stream = which == BENCH_TEST ? S_TEST : S_TRAIN;
    double lat[BENCH_MAX_LATENT];
    for (int64_t i = 0; i < n; i++) {
        rng r = rng_at(s->seed, stream, (uint64_t)(first + i));
        int64_t c = (int64_t)(uniform(&r) * (double)s->nclusters);
        if (c >= s->nclusters)
            c = s->nclusters - 1;
        for (int64_t j = 0; j < l; j++)
            lat[j] = m->mu[c * l + j] + m->sigma[c] * normal(&r);
        float *x = out + i * d;
        for (int64_t a = 0; a < d; a++) {
            double v = 0;
            for (int64_t j = 0; j < l; j++)
                v += m->w[a * l + j] * lat[j];
            x[a] = (float)(v + s->noise_scale * normal(&r));
        }
    }
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int bench_parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

void bench_path(char *buf, size_t cap, const char *dir, const char *name, const char *suffix)
{
    snprintf(buf, cap, "%s/%s%s", dir, name, suffix);
}
