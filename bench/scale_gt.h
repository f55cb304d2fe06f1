/*
 * scale_gt.h: exact nearest neighbours of a few queries in a vector file far
 * larger than memory.  The file (.fvecs) is read chunk by chunk; each chunk
 * is split between the OpenMP threads, each searching its share with a FAISS
 * Flat index, and the per-query best k are merged into the running best k.
 * Memory: one chunk plus nq x k results per thread, whatever the file's size.
 */
#ifndef BENCH_SCALE_GT_H
#define BENCH_SCALE_GT_H

#include <stdint.h>

/* The k nearest rows (squared L2, nearest first) of file `path` to each of
 * the nq queries q (nq x d floats): labels (nq x k, row numbers from 0) and
 * dist (nq x k, may be NULL).  chunk: rows read at a time.  Returns the rows
 * read, or -1 with a message on stderr.  When the file has fewer than k rows,
 * the missing labels are -1. */
int64_t scale_gt(const char *path, const float *q, int64_t nq, int64_t d, int64_t k,
                 int64_t chunk, int64_t *labels, float *dist);

#endif
