/* test_bench_data.c: the benchmark's dataset generator (bench/datagen.c) is
 * deterministic and counter-based: a row never depends on which other rows
 * are generated, so the cached 100k set is the start of the 1M one. */
#include "../../bench/datagen.c"

#include "ctest.h"
#include "vekterdb.h"

#include <math.h>

#define ROWS 64

int main(void)
{
    bench_spec s;
    bench_spec_default(&s);
    bench_model *m = bench_model_new(&s), *m2 = bench_model_new(&s);
    CHECK(m && m2, "a model from the default spec");
    if (!m || !m2)
        CT_DONE();
    int64_t d = s.d;
    static float a[ROWS * 128], b[ROWS * 128], t[ROWS * 128];
    CHECK(d == 128, "d = 128 by default");
    bench_generate(m, BENCH_TRAIN, 0, ROWS, a);
    bench_generate(m2, BENCH_TRAIN, 0, ROWS, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "two models of one spec generate the same rows");
    bench_generate(m, BENCH_TRAIN, ROWS / 2, ROWS / 2, b);
    CHECK(memcmp(a + (ROWS / 2) * d, b, sizeof(float) * (size_t)(ROWS / 2 * d)) == 0,
          "a slice generated alone equals the same rows of a longer run");
    bench_generate(m, BENCH_TEST, 0, ROWS, t);
    CHECK(memcmp(a, t, sizeof a) != 0, "the test set is not the train set");
    double sum = 0, sq = 0;
    int finite = 1;
    for (int64_t i = 0; i < ROWS * d; i++) {
        finite &= isfinite(a[i]) != 0;
        sum += a[i];
        sq += (double)a[i] * a[i];
    }
    double mean = sum / (double)(ROWS * d), var = sq / (double)(ROWS * d) - mean * mean;
    CHECK(finite, "every value is finite");
    CHECK(fabs(mean) < 0.5 && var > 0.1 && var < 10, "values centred, of unit order");
    bench_spec other = s;
    other.seed++;
    bench_model *m3 = bench_model_new(&other);
    if (m3) {
        bench_generate(m3, BENCH_TRAIN, 0, ROWS, b);
        CHECK(memcmp(a, b, sizeof a) != 0, "another seed, other data");
    }
    other = s;
    other.latent = BENCH_MAX_LATENT + 1;
    CHECK(bench_model_new(&other) == NULL, "a latent dimension above the limit is refused");
    bench_model_free(m);
    bench_model_free(m2);
    bench_model_free(m3);
    CT_DONE();
}
