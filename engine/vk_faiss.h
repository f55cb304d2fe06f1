/*
 * vk_faiss.h: the faiss layer, the only code that unwraps a FAISS handle:
 * the index object through FAISS's C API (faiss_index.c) and what that API
 * lacks, in C++ (faiss_ext.cpp).  Uses the base layer only.
 */
#ifndef VK_FAISS_H
#define VK_FAISS_H

#include "vk_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sets the error "<what>: <text of FAISS's message msg>" and returns VK_EFAISS
 * (the C API's last error and C++ exceptions alike) */
int vk_faiss_error(const char *what, const char *msg);
struct FaissIndex_H;
struct FaissIndex_H *vk_index_faiss(const vk_index *ix);

enum { VK_FAISS_OTHER = 0, VK_FAISS_FLAT, VK_FAISS_IVF, VK_FAISS_HNSW };
/* vk_faiss_search: this index type takes no search parameters (no selector) */
#define VK_FAISS_NOSEL 1

int vk_faiss_kind(const struct FaissIndex_H *fi);
/* an index just read with the mmap flag: no prefetch threads per search */
void vk_faiss_mapped(struct FaissIndex_H *fi);
/* 1: the index keeps the ids it is given (IVF family, IDMap); 0: ids are positions */
int vk_faiss_explicit_ids(const struct FaissIndex_H *fi);
/* 1 for an IVF index (under transforms): its nlist and current nprobe */
int vk_faiss_ivf_lists(const struct FaissIndex_H *fi, int64_t *nlist, int64_t *nprobe);
/* explicit-id indexes only: *max, the largest stored id (-1 when empty);
 * with bits, also sets bit id of bits for every stored id below nbits */
int vk_faiss_ids(const struct FaissIndex_H *fi, int64_t *max, unsigned char *bits, int64_t nbits);
int vk_faiss_add_ids(struct FaissIndex_H *fi, int64_t n, const float *x, const int64_t *ids);
/* explicit-id indexes only: VK_ESTATE for the others */
int vk_faiss_remove_ids(struct FaissIndex_H *fi, const int64_t *ids, int64_t n, int64_t *removed);
/* Searches with per-call parameters: bits (may be NULL) selects the ids
 * whose bit is set, or with invert those whose bit is clear; nprobe and
 * efsearch override the index's values when > 0.  VK_OK, VK_FAISS_NOSEL
 * (nothing searched), or a VK_E* code with the message set. */
int vk_faiss_search(const struct FaissIndex_H *fi, int64_t n, const float *x, int64_t k,
                    const uint8_t *bits, int64_t nbits, int invert, int64_t nprobe,
                    int64_t efsearch, float *distances, int64_t *labels);

#ifdef __cplusplus
}
#endif

#ifndef __cplusplus
/* ---------- index files and accounting (faiss_index.c) ---------- */
/* read with the mmap flag (read-only) */
int vk_index_is_mapped(const vk_index *ix);
/* reads an index from an open file: the very file whose digest was checked
 * (name is for messages) */
int vk_index_read_fd(vk_index **out, int fd, const char *name, int mmap);
/* called with the written and synced temporary file, before the rename;
 * an error leaves the old file in place; VK_INDEX_NO_RENAME: the file is
 * not wanted (a newer one is being saved), removed, and the write succeeds */
enum { VK_INDEX_NO_RENAME = 1 };
typedef int (*vk_index_seal_fn)(void *ud, int fd);
int vk_index_write_sealed(vk_index *ix, const char *path, vk_index_seal_fn seal, void *ud);
/* removes temporary files a killed save of path left behind */
void vk_index_clean_temps(const char *path);
/* the ids an index accounts for: positions 0..ntotal-1, or, for
 * explicit-id indexes, 0..(largest stored id) */
i64 vk_index_covered(vk_index *ix);
#endif

#endif
