/* scale_gt.c: streamed exact ground truth (see scale_gt.h) */
#include "scale_gt.h"

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* reads up to n rows of an .fvecs file (d floats each, after its int32
 * header) into x; the number read, or -1 when a row header is not d */
static int64_t read_rows(FILE *f, int64_t d, int64_t n, float *x, char *buf)
{
    size_t row = 4 + 4 * (size_t)d;
    size_t got = fread(buf, row, (size_t)n, f);
    for (size_t i = 0; i < got; i++) {
        int32_t dd;
        memcpy(&dd, buf + i * row, 4);
        if (dd != d)
            return -1;
        memcpy(x + i * d, buf + i * row + 4, 4 * (size_t)d);
    }
    return (int64_t)got;
}

/* merges the sorted lists (la, da) and (lb, db) of k entries each into the
 * best k of both, in (la, da); an empty slot has label -1 and dist +inf */
static void merge_k(int64_t k, int64_t *la, float *da, const int64_t *lb, const float *db,
                    int64_t *tl, float *td)
{
    int64_t i = 0, j = 0;
    for (int64_t o = 0; o < k; o++) {
        /* ties: the smaller row number first, as a Flat index does */
        int take_a = j >= k || (i < k && (da[i] < db[j] || (da[i] == db[j] &&
                     (lb[j] < 0 || (la[i] >= 0 && la[i] <= lb[j])))));
        if (take_a) {
            tl[o] = la[i];
            td[o] = da[i++];
        } else {
            tl[o] = lb[j];
            td[o] = db[j++];
        }
    }
    memcpy(la, tl, sizeof(int64_t) * (size_t)k);
    memcpy(da, td, sizeof(float) * (size_t)k);
}

int64_t scale_gt(const char *path, const float *q, int64_t nq, int64_t d, int64_t k,
                 int64_t chunk, int64_t *labels, float *dist)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    int nt = omp_get_max_threads();
    if (nt < 1)
        nt = 1;
    float *x = malloc(sizeof(float) * (size_t)(chunk * d));
    char *buf = malloc((4 + 4 * (size_t)d) * (size_t)chunk);
    float *bd = malloc(sizeof(float) * (size_t)(nq * k));
    float *pd = malloc(sizeof(float) * (size_t)(nt * nq * k));
    int64_t *pl = malloc(sizeof(int64_t) * (size_t)(nt * nq * k));
    int64_t *tl = malloc(sizeof(int64_t) * (size_t)(nt * k));
    float *td = malloc(sizeof(float) * (size_t)(nt * k));
    int64_t total = -1;
    if (!x || !buf || !bd || !pd || !pl || !tl || !td) {
        fprintf(stderr, "scale_gt: out of memory\n");
        goto done;
    }
    for (int64_t i = 0; i < nq * k; i++) {
        labels[i] = -1;
        bd[i] = INFINITY;
    }
    int64_t first = 0;
    for (;;) {
        int64_t n = read_rows(f, d, chunk, x, buf);
        if (n < 0) {
            fprintf(stderr, "scale_gt: %s: a row of another dimension than %lld near row %lld\n", path,
                    (long long)d, (long long)first);
            goto done;
        }
        if (n == 0)
            break;
        int failed = 0;
        /* each thread its share of the chunk's rows, all queries */
#pragma omp parallel num_threads(nt) reduction(| : failed)
        {
            int t = omp_get_thread_num(), tn = omp_get_num_threads();
            int64_t lo = n * t / tn, hi = n * (t + 1) / tn;
            int64_t *l = pl + (int64_t)t * nq * k;
            float *dd = pd + (int64_t)t * nq * k;
            for (int64_t i = 0; i < nq * k; i++) {
                l[i] = -1;
                dd[i] = INFINITY;
            }
            if (hi > lo) {
                FaissIndexFlatL2 *flat = NULL;
                if (faiss_IndexFlatL2_new_with(&flat, d) || faiss_Index_add(flat, hi - lo, x + lo * d) ||
                    faiss_Index_search(flat, nq, q, k, dd, l)) {
                    fprintf(stderr, "scale_gt: FAISS: %s\n", faiss_get_last_error());
                    failed = 1;
                }
                if (flat)
                    faiss_Index_free(flat);
                for (int64_t i = 0; i < nq * k; i++) {
                    if (l[i] >= 0)
                        l[i] += first + lo;
                    else
                        dd[i] = INFINITY;
                }
            }
        }
        if (failed)
            goto done;
        /* the threads' results into the running best, query by query (in the
         * threads' order, so that ties keep the smaller row number) */
#pragma omp parallel for num_threads(nt)
        for (int64_t i = 0; i < nq; i++) {
            int me = omp_get_thread_num();
            for (int t = 0; t < nt; t++)
                merge_k(k, labels + i * k, bd + i * k, pl + ((int64_t)t * nq + i) * k,
                        pd + ((int64_t)t * nq + i) * k, tl + (int64_t)me * k, td + (int64_t)me * k);
        }
        first += n;
        if (n < chunk)
            break;
    }
    if (ferror(f)) {
        perror(path);
        goto done;
    }
    if (dist)
        memcpy(dist, bd, sizeof(float) * (size_t)(nq * k));
    total = first;
done:
    fclose(f);
    free(x);
    free(buf);
    free(bd);
    free(pd);
    free(pl);
    free(tl);
    free(td);
    return total;
}
