/* vk_io_impl.h: what io_vecs.c and io_hdf5.c share; not part of the API */
#ifndef VK_IO_IMPL_H
#define VK_IO_IMPL_H

#include "vk_base.h"
#include "vk_io.h"

struct vk_vfile {
    vk_vformat fmt;
    vk_dtype dtype;
    char *path;
    char *dataset;          /* HDF5 only */
    int fd;                 /* TEXMEX and npy, -1 otherwise */
    int64_t rows, dim;
    int64_t data_off;       /* byte offset of row 0 */
    int64_t row_bytes;      /* bytes of one row in the file, its header included */
    int64_t head_bytes;     /* 4 for TEXMEX (the row's dimension), 0 otherwise */
    unsigned char *stage;   /* staging buffer for raw rows */
    size_t stage_cap;
    void *h5;               /* io_hdf5.c's state */
};

/* io_hdf5.c: fills rows, dim, dtype and h5 of f, whose path and dataset are set */
int vk_h5_open(vk_vfile *f);
/* rows [first, first + n) as float32 (as_float) or int64 into out */
int vk_h5_read(vk_vfile *f, int64_t first, int64_t n, void *out, int as_float);
void vk_h5_close(vk_vfile *f);

#endif
