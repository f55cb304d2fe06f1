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

/* ---------- reading; IVF lists on disk (faiss_ext.cpp) ---------- */
/* reads the index in the open file fd (path: its name, for messages and
 * as the directory an on-disk index's lists file is looked up in); mmap:
 * map in-memory IVF lists from the file read-only.  On-disk lists are
 * always mapped read-only. */
int vk_faiss_read(int fd, const char *path, int mmap, struct FaissIndex_H **out);
/* 1: the index's IVF lists live in a lists file of their own */
int vk_faiss_ondisk(const struct FaissIndex_H *fi);
/* that lists file's name (as read: beside the index file), or NULL */
const char *vk_faiss_ondisk_file(const struct FaissIndex_H *fi);
/* VK_OK when the index's lists can move to disk (an IVF index, not fast
 * scan, not refined), VK_EINVAL with the reason otherwise */
int vk_faiss_ondisk_check(const struct FaissIndex_H *fi);
/* A new lists file for the trained IVF index fi, created (exclusively,
 * flock'ed until vk_faiss_ondisk_end) at path: put encodes vectors with
 * their ids; finish writes the index's current lists (less the ids set in
 * drop, counted in *removed) and the new vectors to the file and maps it
 * read-only in place of fi's lists; end closes it (and removes it unless
 * finish succeeded). */
typedef struct vk_ondisk_build vk_ondisk_build;
int vk_faiss_ondisk_begin(struct FaissIndex_H *fi, const char *path, vk_ondisk_build **out);
int vk_faiss_ondisk_put(vk_ondisk_build *b, int64_t n, const float *x, const int64_t *ids);
int vk_faiss_ondisk_finish(vk_ondisk_build *b, const uint8_t *drop, int64_t ndrop, int64_t *removed);
void vk_faiss_ondisk_end(vk_ondisk_build *b);

#ifdef __cplusplus
}
#endif

#ifndef __cplusplus
/* ---------- index files and accounting (faiss_index.c) ---------- */
/* read with the mmap flag, or with its lists on disk: read-only */
int vk_index_is_mapped(const vk_index *ix);
/* after vk_faiss_ondisk_finish moved its lists to disk */
void vk_index_lists_moved(vk_index *ix);
/* a new name for a lists file of index file path:
 * "<path>.ivfdata.<16 hex digits>" (free it) */
char *vk_index_lists_name(const char *path);
/* removes the lists files of index file path ("<path>.ivfdata.*") except
 * keep (a path, may be NULL) and those locked by a save in progress */
void vk_index_clean_lists(const char *path, const char *keep);
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
