/*
 * vk_io.h: vector files, read by row ranges so a file never has to fit in
 * memory: TEXMEX .fvecs/.ivecs/.bvecs, NumPy .npy and ann-benchmarks HDF5
 * datasets ("train", "test", "neighbors", "distances").  Writers for .fvecs
 * and .npy (and HDF5 datasets, to make ann-benchmarks-shaped files).
 *
 * Errors follow vekterdb.h: VK_OK or a negative VK_E* code, the message in
 * vk_errmsg().  A file that does not hold what its format promises (wrong
 * magic, truncated, inconsistent row headers, unsupported dtype) is VK_EINVAL
 * with a message naming the file and what is wrong; a file that cannot be
 * opened or read is VK_EIO.
 *
 * Row numbers are 0-based: row r of a file is the record whose idx is r
 * when the file is imported from its start.
 */
#ifndef VK_IO_H
#define VK_IO_H

#include "vekterdb.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VK_VF_AUTO = 0,   /* from the file name's extension */
    VK_VF_FVECS,      /* per row: int32 d, then d float32 */
    VK_VF_IVECS,      /* per row: int32 d, then d int32 */
    VK_VF_BVECS,      /* per row: int32 d, then d uint8 */
    VK_VF_NPY,        /* NumPy format 1.0-3.0, 2-D, C order */
    VK_VF_HDF5        /* one 2-D dataset of an HDF5 file */
} vk_vformat;

/* element types as stored in a file */
typedef enum { VK_DT_F32 = 1, VK_DT_F64, VK_DT_I32, VK_DT_I64, VK_DT_U8 } vk_dtype;

/* the largest dimension a file may declare: a larger one is taken as damage */
#define VK_IO_MAX_DIM (1 << 20)

const char *vk_vformat_name(vk_vformat f);     /* "fvecs", ..., "auto" */
const char *vk_dtype_name(vk_dtype t);         /* "float32", "int32", ... */
/* "fvecs", "ivecs", "bvecs", "npy", "hdf5" (also "h5") -> format; VK_EINVAL otherwise */
int vk_vformat_parse(const char *name, vk_vformat *out);
/* the format a file name's extension says, or VK_VF_AUTO when it says none */
vk_vformat vk_vformat_from_path(const char *path);

/* ---------- reading ---------- */
typedef struct vk_vfile vk_vfile;

/* Opens a file and checks its header and size against each other.
 * fmt VK_VF_AUTO: from the extension.  dataset: the HDF5 dataset to read
 * (NULL: "train"); must be NULL for the other formats. */
int vk_vfile_open(vk_vfile **out, const char *path, vk_vformat fmt, const char *dataset);
void vk_vfile_close(vk_vfile *f);   /* idempotent on NULL */

int64_t vk_vfile_rows(const vk_vfile *f);
int64_t vk_vfile_dim(const vk_vfile *f);
vk_vformat vk_vfile_format(const vk_vfile *f);
vk_dtype vk_vfile_dtype(const vk_vfile *f);
int vk_vfile_is_integer(const vk_vfile *f);
const char *vk_vfile_path(const vk_vfile *f);
const char *vk_vfile_dataset(const vk_vfile *f);   /* NULL unless HDF5 */

/* Rows [first, first + count) into out (count x dim), converted to float32;
 * count is cut at the end of the file and *got says how many rows were read.
 * Integer files convert too (exact up to 2^24). */
int vk_vfile_read(vk_vfile *f, int64_t first, int64_t count, float *out, int64_t *got);
/* The same for integer files (.ivecs, integer .npy/HDF5), as int64;
 * a float file is refused. */
int vk_vfile_read_i64(vk_vfile *f, int64_t first, int64_t count, int64_t *out, int64_t *got);

/* ---------- writing ---------- */
typedef struct vk_vwriter vk_vwriter;

/* Starts path (fvecs or npy, float32, d columns).  Rows go to a temporary
 * file beside it that close() syncs and renames into place, so a reader
 * never sees half a file. */
int vk_vwriter_open(vk_vwriter **out, const char *path, vk_vformat fmt, int64_t d);
int vk_vwriter_write(vk_vwriter *w, const float *x, int64_t n);
int64_t vk_vwriter_rows(const vk_vwriter *w);
/* finishes the file (the .npy header gets the row count) and frees w */
int vk_vwriter_close(vk_vwriter *w);
/* frees w and removes the temporary file; idempotent on NULL */
void vk_vwriter_abort(vk_vwriter *w);

/* ---------- HDF5 ---------- */
/* 1 when the engine was built with HDF5 (the default), 0 for VK_NO_HDF5 */
int vk_hdf5_available(void);
/* Writes one 2-D dataset of n x d values of type t (VK_DT_F32, VK_DT_I32 or
 * VK_DT_I64).  append = 0 creates (or truncates) the file; append = 1 adds
 * the dataset to an existing file and refuses a name already there. */
int vk_hdf5_write(const char *path, const char *dataset, vk_dtype t, int64_t n, int64_t d,
                  const void *data, int append);

#ifdef __cplusplus
}
#endif
#endif
