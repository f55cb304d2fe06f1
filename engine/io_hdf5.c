/* io_hdf5.c: 2-D datasets of HDF5 files, the layout of the ann-benchmarks
 * files ("train", "test", "neighbors", "distances").  HDF5 converts the
 * stored type to float32 or int64 as it reads a hyperslab of rows.
 * HDF5's automatic error printing is switched off around every call
 * (H5E_BEGIN_TRY), and restored after: the caller gets our message. */
#include "vk_io_impl.h"

#ifdef VK_NO_HDF5

int vk_hdf5_available(void) { return 0; }

int vk_h5_open(vk_vfile *f)
{
    return vk_fail(VK_EINVAL, "%s: this VekterDB was built without HDF5 (VK_NO_HDF5)", f->path);
}

int vk_h5_read(vk_vfile *f, int64_t first, int64_t n, void *out, int as_float)
{
    (void)first, (void)n, (void)out, (void)as_float;
    return vk_fail(VK_EINVAL, "%s: this VekterDB was built without HDF5 (VK_NO_HDF5)", f->path);
}

void vk_h5_close(vk_vfile *f) { (void)f; }

int vk_hdf5_write(const char *path, const char *dataset, vk_dtype t, int64_t n, int64_t d,
                  const void *data, int append)
{
    (void)dataset, (void)t, (void)n, (void)d, (void)data, (void)append;
    return vk_fail(VK_EINVAL, "%s: this VekterDB was built without HDF5 (VK_NO_HDF5)", path);
}

#else

#include <hdf5.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef long long ll;

typedef struct h5state {
    hid_t file, dset, space;
} h5state;

int vk_hdf5_available(void) { return 1; }

static void close_ids(hid_t file, hid_t dset, hid_t space)
{
    H5E_BEGIN_TRY
    {
        if (space >= 0)
            H5Sclose(space);
        if (dset >= 0)
            H5Dclose(dset);
        if (file >= 0)
            H5Fclose(file);
    }
    H5E_END_TRY;
}

/* "a, b, c": the root group's members, for an error message */
static void list_members(hid_t file, char *buf, size_t cap)
{
    H5G_info_t info;
    buf[0] = '\0';
    herr_t rc;
    H5E_BEGIN_TRY { rc = H5Gget_info(file, &info); }
    H5E_END_TRY;
    if (rc < 0)
        return;
    size_t len = 0;
    for (hsize_t i = 0; i < info.nlinks && len + 8 < cap; i++) {
        char name[128];
        ssize_t n;
        H5E_BEGIN_TRY
        {
            n = H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                   H5P_DEFAULT);
        }
        H5E_END_TRY;
        if (n < 0)
            break;
        int w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", name);
        if (w < 0 || (size_t)w >= cap - len) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)w;
    }
}

static int is_hdf5(const char *path)
{
    htri_t r;
    H5E_BEGIN_TRY
    {
#if H5_VERSION_GE(1, 12, 0)
        r = H5Fis_accessible(path, H5P_DEFAULT);
#else
        r = H5Fis_hdf5(path);
#endif
    }
    H5E_END_TRY;
    return r > 0;
}

int vk_h5_open(vk_vfile *f)
{
    if (access(f->path, R_OK) != 0)
        return vk_fail(VK_EIO, "cannot open %s: %s", f->path, strerror(errno));
    if (!is_hdf5(f->path))
        return vk_fail(VK_EINVAL, "%s: not an HDF5 file (no HDF5 signature found)", f->path);
    hid_t file, dset = -1, space = -1, type = -1;
    H5E_BEGIN_TRY { file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    if (file < 0)
        return vk_fail(VK_EINVAL, "%s: HDF5 cannot open the file: truncated or damaged", f->path);
    htri_t exists;
    H5E_BEGIN_TRY { exists = H5Lexists(file, f->dataset, H5P_DEFAULT); }
    H5E_END_TRY;
    if (exists <= 0) {
        char names[512];
        list_members(file, names, sizeof names);
        close_ids(file, dset, space);
        return vk_fail(VK_EINVAL, "%s has no dataset '%s'; it holds: %s", f->path, f->dataset,
                       names[0] ? names : "nothing");
    }
    H5E_BEGIN_TRY { dset = H5Dopen2(file, f->dataset, H5P_DEFAULT); }
    H5E_END_TRY;
    if (dset < 0) {
        close_ids(file, dset, space);
        return vk_fail(VK_EINVAL, "%s: '%s' is not a dataset (a group?) or is damaged", f->path,
                       f->dataset);
    }
    int rc = VK_OK, rank = -1;
    hsize_t dims[2] = {0, 0};
    H5T_class_t cls = H5T_NO_CLASS;
    size_t size = 0;
    H5T_sign_t sign = H5T_SGN_2;
    H5E_BEGIN_TRY
    {
        space = H5Dget_space(dset);
        if (space >= 0)
            rank = H5Sget_simple_extent_ndims(space);
        type = H5Dget_type(dset);
        if (type >= 0) {
            cls = H5Tget_class(type);
            size = H5Tget_size(type);
            if (cls == H5T_INTEGER)
                sign = H5Tget_sign(type);
            H5Tclose(type);
        }
    }
    H5E_END_TRY;
    if (space < 0 || rank < 0 || type < 0)
        rc = vk_fail(VK_EINVAL, "%s: dataset '%s' is damaged (its shape or type cannot be read)",
                     f->path, f->dataset);
    else if (rank != 2)
        rc = vk_fail(VK_EINVAL, "%s: dataset '%s' is %d-D; expected a 2-D dataset (rows, dimension)",
                     f->path, f->dataset, rank);
    if (rc == VK_OK) {
        H5Sget_simple_extent_dims(space, dims, NULL);
        if (dims[1] < 1 || dims[1] > VK_IO_MAX_DIM)
            rc = vk_fail(VK_EINVAL, "%s: dataset '%s' has dimension %lld, out of range (1 to %d)",
                         f->path, f->dataset, (ll)dims[1], VK_IO_MAX_DIM);
        else if (cls == H5T_FLOAT && (size == 4 || size == 8))
            f->dtype = size == 4 ? VK_DT_F32 : VK_DT_F64;
        else if (cls == H5T_INTEGER && size == 1 && sign == H5T_SGN_NONE)
            f->dtype = VK_DT_U8;
        else if (cls == H5T_INTEGER && size <= 4)
            f->dtype = VK_DT_I32;
        else if (cls == H5T_INTEGER && size == 8 && sign != H5T_SGN_NONE)
            f->dtype = VK_DT_I64;
        else
            rc = vk_fail(VK_EINVAL, "%s: dataset '%s' holds %s values of %zu bytes; expected "
                         "float32 vectors or integer ids", f->path, f->dataset,
                         cls == H5T_STRING ? "string" : cls == H5T_COMPOUND ? "compound"
                         : cls == H5T_INTEGER ? "unsigned integer" : cls == H5T_FLOAT ? "float"
                         : "non-numeric", size);
    }
    h5state *h = rc == VK_OK ? vk_malloc(sizeof *h) : NULL;
    if (!h) {
        close_ids(file, dset, space);
        return rc ? rc : VK_ENOMEM;
    }
    h->file = file;
    h->dset = dset;
    h->space = space;
    f->h5 = h;
    f->rows = (int64_t)dims[0];
    f->dim = (int64_t)dims[1];
    return VK_OK;
}

int vk_h5_read(vk_vfile *f, int64_t first, int64_t n, void *out, int as_float)
{
    h5state *h = f->h5;
    hsize_t start[2] = {(hsize_t)first, 0}, count[2] = {(hsize_t)n, (hsize_t)f->dim};
    herr_t rc = -1;
    hid_t mem = -1;
    H5E_BEGIN_TRY
    {
        if (H5Sselect_hyperslab(h->space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
            (mem = H5Screate_simple(2, count, NULL)) >= 0)
            rc = H5Dread(h->dset, as_float ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, mem, h->space,
                         H5P_DEFAULT, out);
        if (mem >= 0)
            H5Sclose(mem);
    }
    H5E_END_TRY;
    if (rc < 0)
        return vk_fail(VK_EIO, "%s: HDF5 could not read rows %lld to %lld of dataset '%s' "
                       "(truncated or damaged file?)", f->path, (ll)first, (ll)(first + n - 1),
                       f->dataset);
    return VK_OK;
}

void vk_h5_close(vk_vfile *f)
{
    h5state *h = f->h5;
    if (!h)
        return;
    close_ids(h->file, h->dset, h->space);
    free(h);
    f->h5 = NULL;
}

int vk_hdf5_write(const char *path, const char *dataset, vk_dtype t, int64_t n, int64_t d,
                  const void *data, int append)
{
    hid_t ftype, mtype;
    switch (t) {
    case VK_DT_F32: ftype = H5T_IEEE_F32LE; mtype = H5T_NATIVE_FLOAT; break;
    case VK_DT_I32: ftype = H5T_STD_I32LE; mtype = H5T_NATIVE_INT32; break;
    case VK_DT_I64: ftype = H5T_STD_I64LE; mtype = H5T_NATIVE_INT64; break;
    default:
        return vk_fail(VK_EINVAL, "%s: HDF5 datasets are written as float32, int32 or int64, not %s",
                       path, vk_dtype_name(t));
    }
    if (!dataset || !*dataset || strchr(dataset, '/'))
        return vk_fail(VK_EINVAL, "%s: dataset name '%s' must be non-empty and hold no '/'", path,
                       dataset ? dataset : "");
    if (n < 0 || d < 1 || d > VK_IO_MAX_DIM)
        return vk_fail(VK_EINVAL, "%s: cannot write a %lld x %lld dataset", path, (ll)n, (ll)d);
    hid_t file, space = -1, dset = -1;
    H5E_BEGIN_TRY
    {
        file = append ? H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT)
                      : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (file < 0) {
        if (append && access(path, F_OK) != 0)
            return vk_fail(VK_EIO, "cannot open %s to add dataset '%s': %s", path, dataset,
                           strerror(errno));
        return vk_fail(VK_EIO, "HDF5 cannot %s %s", append ? "open for writing" : "create", path);
    }
    htri_t exists;
    H5E_BEGIN_TRY { exists = H5Lexists(file, dataset, H5P_DEFAULT); }
    H5E_END_TRY;
    if (exists > 0) {
        close_ids(file, dset, space);
        return vk_fail(VK_EINVAL, "%s already has a dataset '%s'", path, dataset);
    }
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)d};
    herr_t wrc = -1, crc = -1;
    H5E_BEGIN_TRY
    {
        space = H5Screate_simple(2, dims, NULL);
        if (space >= 0)
            dset = H5Dcreate2(file, dataset, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (dset >= 0)
            wrc = n ? H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
        if (dset >= 0)
            H5Dclose(dset);
        if (space >= 0)
            H5Sclose(space);
        crc = H5Fclose(file);
    }
    H5E_END_TRY;
    if (wrc < 0 || crc < 0)
        return vk_fail(VK_EIO, "HDF5 could not write dataset '%s' (%lld x %lld) to %s", dataset,
                       (ll)n, (ll)d, path);
    return VK_OK;
}

#endif
