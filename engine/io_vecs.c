/* io_vecs.c: TEXMEX (.fvecs, .ivecs, .bvecs) and NumPy (.npy) vector files,
 * read by row ranges through a fixed staging buffer, and their writers.
 * Values are little-endian on disk; they are assembled byte by byte, so the
 * code does not depend on the host's byte order. */
#include "vk_io_impl.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* raw bytes read per system call: the memory a read needs beyond its output */
#define STAGE_BYTES ((int64_t)4 << 20)
/* the longest .npy header accepted; numpy writes under 256 bytes */
#define NPY_HEADER_MAX (64 << 10)
/* .npy files we write: a header padded to this size, so close() can rewrite
 * the row count in place */
#define NPY_HEADER_WRITTEN 128
#define NPY_MAGIC "\x93NUMPY"

typedef long long ll;

/* ---------- names ---------- */

const char *vk_vformat_name(vk_vformat f)
{
    switch (f) {
    case VK_VF_FVECS: return "fvecs";
    case VK_VF_IVECS: return "ivecs";
    case VK_VF_BVECS: return "bvecs";
    case VK_VF_NPY: return "npy";
    case VK_VF_HDF5: return "hdf5";
    case VK_VF_AUTO: break;
    }
    return "auto";
}

const char *vk_dtype_name(vk_dtype t)
{
    switch (t) {
    case VK_DT_F32: return "float32";
    case VK_DT_F64: return "float64";
    case VK_DT_I32: return "int32";
    case VK_DT_I64: return "int64";
    case VK_DT_U8: return "uint8";
    }
    return "unknown";
}

static size_t dtype_size(vk_dtype t)
{
    switch (t) {
    case VK_DT_F64:
    case VK_DT_I64: return 8;
    case VK_DT_U8: return 1;
    case VK_DT_F32:
    case VK_DT_I32: break;
    }
    return 4;
}

static int dtype_is_integer(vk_dtype t)
{
    return t == VK_DT_I32 || t == VK_DT_I64 || t == VK_DT_U8;
}

int vk_vformat_parse(const char *name, vk_vformat *out)
{
    static const struct {
        const char *name;
        vk_vformat f;
    } names[] = {{"fvecs", VK_VF_FVECS}, {"ivecs", VK_VF_IVECS}, {"bvecs", VK_VF_BVECS},
                 {"npy", VK_VF_NPY},     {"hdf5", VK_VF_HDF5},   {"h5", VK_VF_HDF5},
                 {"auto", VK_VF_AUTO}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].f;
            return VK_OK;
        }
    return vk_fail(VK_EINVAL, "unknown vector file format '%s': expected fvecs, ivecs, bvecs, npy or hdf5",
                   name ? name : "(null)");
}

vk_vformat vk_vformat_from_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    vk_vformat f = VK_VF_AUTO;
    if (!dot || (slash && dot < slash) || !strcmp(dot + 1, "auto"))
        return VK_VF_AUTO;
    if (vk_vformat_parse(dot + 1, &f) != VK_OK) {
        vk_clear_error();
        return VK_VF_AUTO;
    }
    return f;
}

/* ---------- little-endian values ---------- */

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static float get_f32(const unsigned char *p)
{
    uint32_t u = get_u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = get_u64(p);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* n values of type t at src into out as float32 or int64 */
static void convert(const unsigned char *src, vk_dtype t, int64_t n, void *out, int as_float)
{
    float *of = out;
    int64_t *oi = out;
    for (int64_t j = 0; j < n; j++) {
        switch (t) {
        case VK_DT_F32:
            of[j] = get_f32(src + 4 * j);
            break;
        case VK_DT_F64: {
            /* beyond float32's range: infinite, as numpy's astype('float32')
             * (a plain cast of such a value is undefined in C) */
            double v = get_f64(src + 8 * j);
            of[j] = v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
            break;
        }
        case VK_DT_I32: {
            int32_t v = (int32_t)get_u32(src + 4 * j);
            if (as_float)
                of[j] = (float)v;
            else
                oi[j] = v;
            break;
        }
        case VK_DT_I64: {
            int64_t v = (int64_t)get_u64(src + 8 * j);
            if (as_float)
                of[j] = (float)v;
            else
                oi[j] = v;
            break;
        }
        case VK_DT_U8:
            if (as_float)
                of[j] = (float)src[j];
            else
                oi[j] = src[j];
            break;
        }
    }
}

/* ---------- reading ---------- */

/* reads n bytes at off; returns the count read (short only at end of file) or -1 */
static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int read_at(vk_vfile *f, void *buf, size_t n, int64_t off, const char *what)
{
    ssize_t r = pread_full(f->fd, buf, n, (off_t)off);
    if (r < 0)
        return vk_fail(VK_EIO, "%s: cannot read %s: %s", f->path, what, strerror(errno));
    if ((size_t)r < n)
        return vk_fail(VK_EINVAL, "%s: truncated file: it ends inside %s (byte %lld)", f->path, what,
                       (ll)(off + r));
    return VK_OK;
}

static int open_texmex(vk_vfile *f, int64_t size)
{
    const char *fmt = vk_vformat_name(f->fmt);
    size_t es = dtype_size(f->dtype);
    unsigned char h[4];
    if (size == 0)
        return vk_fail(VK_EINVAL, "%s: empty file: an .%s file holds at least one row", f->path, fmt);
    if (size < 4)
        return vk_fail(VK_EINVAL, "%s: truncated .%s file: %lld bytes, less than one row header",
                       f->path, fmt, (ll)size);
    int rc = read_at(f, h, 4, 0, "the first row header");
    if (rc)
        return rc;
    int32_t d = (int32_t)get_u32(h);
    if (d <= 0 || d > VK_IO_MAX_DIM)
        return vk_fail(VK_EINVAL,
                       "%s: not an .%s file: its first row declares dimension %d (expected 1 to %d)",
                       f->path, fmt, (int)d, VK_IO_MAX_DIM);
    f->dim = d;
    f->head_bytes = 4;
    f->row_bytes = 4 + (int64_t)es * d;
    f->data_off = 0;
    if (size % f->row_bytes)
        return vk_fail(VK_EINVAL,
                       "%s: truncated or not an .%s file: %lld bytes is not a whole number of rows "
                       "of %lld bytes (dimension %d, %zu-byte values)",
                       f->path, fmt, (ll)size, (ll)f->row_bytes, (int)d, es);
    f->rows = size / f->row_bytes;
    /* the last row's header must agree too: catches most format mix-ups at once */
    rc = read_at(f, h, 4, (f->rows - 1) * f->row_bytes, "the last row header");
    if (rc)
        return rc;
    int32_t last = (int32_t)get_u32(h);
    if (last != d)
        return vk_fail(VK_EINVAL,
                       "%s: corrupted or not an .%s file: row %lld declares dimension %d, the first "
                       "row %d",
                       f->path, fmt, (ll)(f->rows - 1), (int)last, (int)d);
    return VK_OK;
}

/* ---------- .npy header: a Python dict literal ---------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* the value after key ('key' or "key") and its colon, or NULL */
static const char *npy_value(const char *h, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 2 <= end; p++) {
        if ((*p == '\'' || *p == '"') && p[kl + 1] == *p && !memcmp(p + 1, key, kl)) {
            const char *q = skip_ws(p + kl + 2, end);
            if (q < end && *q == ':')
                return skip_ws(q + 1, end);
            return NULL;
        }
    }
    return NULL;
}

static int npy_header(vk_vfile *f, const char *h, size_t len)
{
    const char *end = h + len;
    const char *p = skip_ws(h, end);
    if (p >= end || *p != '{')
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: expected a dictionary, found '%.20s'",
                       f->path, p < end ? p : "");
    /* descr */
    char descr[16] = "";
    p = npy_value(h, end, "descr");
    if (!p)
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: no 'descr' (dtype) entry", f->path);
    if (*p == '[')
        return vk_fail(VK_EINVAL, "%s: unsupported .npy dtype: a structured array; expected float32 "
                       "('<f4')", f->path);
    if (*p != '\'' && *p != '"')
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: 'descr' is not a string", f->path);
    const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
    if (!q || q - p - 1 >= (ptrdiff_t)sizeof descr)
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: unterminated or overlong 'descr'", f->path);
    memcpy(descr, p + 1, (size_t)(q - p - 1));
    descr[q - p - 1] = '\0';
    if (!strcmp(descr, "<f4"))
        f->dtype = VK_DT_F32;
    else if (!strcmp(descr, "<f8"))   /* numpy's default: read as float32 */
        f->dtype = VK_DT_F64;
    else if (!strcmp(descr, "<i4"))
        f->dtype = VK_DT_I32;
    else if (!strcmp(descr, "<i8"))
        f->dtype = VK_DT_I64;
    else if (!strcmp(descr, "|u1") || !strcmp(descr, "<u1"))
        f->dtype = VK_DT_U8;
    else
        return vk_fail(VK_EINVAL,
                       "%s: unsupported .npy dtype '%s': VekterDB reads float32 ('<f4') and float64 ('<f8', read as "
                       "float32), and for ids '<i4', '<i8' or '|u1'",
                       f->path, descr);
    /* fortran_order */
    p = npy_value(h, end, "fortran_order");
    if (!p)
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: no 'fortran_order' entry", f->path);
    if (end - p >= 4 && !memcmp(p, "True", 4))
        return vk_fail(VK_EINVAL, "%s: the .npy array is in Fortran (column-major) order; save it in "
                       "C order (numpy.ascontiguousarray)", f->path);
    if (end - p < 5 || memcmp(p, "False", 5))
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: 'fortran_order' is neither True nor False",
                       f->path);
    /* shape */
    p = npy_value(h, end, "shape");
    if (!p || *p != '(')
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: no 'shape' tuple", f->path);
    int64_t dims[3];
    int nd = 0;
    p = skip_ws(p + 1, end);
    while (p < end && *p != ')') {
        if (*p < '0' || *p > '9')
            return vk_fail(VK_EINVAL, "%s: damaged .npy header: bad 'shape' tuple", f->path);
        int64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return vk_fail(VK_EINVAL, "%s: damaged .npy header: a 'shape' entry overflows", f->path);
            v = v * 10 + (*p++ - '0');
        }
        if (nd < 3)
            dims[nd] = v;
        nd++;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    if (p >= end)
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: unterminated 'shape' tuple", f->path);
    if (nd != 2)
        return vk_fail(VK_EINVAL, "%s: the .npy array is %d-D; expected a 2-D array of shape (rows, "
                       "dimension)", f->path, nd);
    if (dims[1] < 1 || dims[1] > VK_IO_MAX_DIM)
        return vk_fail(VK_EINVAL, "%s: the .npy array's dimension %lld is out of range (1 to %d)",
                       f->path, (ll)dims[1], VK_IO_MAX_DIM);
    if (dims[0] > INT64_MAX / (dims[1] * 8))
        return vk_fail(VK_EINVAL, "%s: damaged .npy header: shape (%lld, %lld) is too large",
                       f->path, (ll)dims[0], (ll)dims[1]);
    f->rows = dims[0];
    f->dim = dims[1];
    return VK_OK;
}

static int open_npy(vk_vfile *f, int64_t size)
{
    unsigned char pre[12];
    if (size < 10)
        return vk_fail(VK_EINVAL, "%s: not an .npy file: %lld bytes, too short for the header",
                       f->path, (ll)size);
    int rc = read_at(f, pre, size >= 12 ? 12 : 10, 0, "the .npy preamble");
    if (rc)
        return rc;
    if (memcmp(pre, NPY_MAGIC, 6))
        return vk_fail(VK_EINVAL, "%s: not an .npy file: it does not start with \\x93NUMPY", f->path);
    int major = pre[6];
    int64_t hlen, hoff;
    if (major == 1) {
        hlen = pre[8] | pre[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return vk_fail(VK_EINVAL, "%s: truncated .npy file: it ends inside the header", f->path);
        hlen = get_u32(pre + 8);
        hoff = 12;
    } else {
        return vk_fail(VK_EINVAL, "%s: unsupported .npy format version %d.%d (1.0 to 3.0 are read)",
                       f->path, major, pre[7]);
    }
    if (hlen > NPY_HEADER_MAX)
        return vk_fail(VK_EINVAL, "%s: damaged .npy file: header length %lld is implausible",
                       f->path, (ll)hlen);
    if (hoff + hlen > size)
        return vk_fail(VK_EINVAL, "%s: truncated .npy file: the header needs %lld bytes, the file "
                       "has %lld", f->path, (ll)(hoff + hlen), (ll)size);
    char *h = vk_malloc((size_t)hlen + 1);
    if (!h)
        return VK_ENOMEM;
    rc = read_at(f, h, (size_t)hlen, hoff, "the .npy header");
    if (rc == VK_OK) {
        h[hlen] = '\0';
        rc = npy_header(f, h, (size_t)hlen);
    }
    free(h);
    if (rc)
        return rc;
    f->data_off = hoff + hlen;
    f->head_bytes = 0;
    f->row_bytes = (int64_t)dtype_size(f->dtype) * f->dim;
    int64_t need = f->rows * f->row_bytes, have = size - f->data_off;
    if (have < need)
        return vk_fail(VK_EINVAL, "%s: truncated .npy file: shape (%lld, %lld) of %s needs %lld data "
                       "bytes, the file holds %lld", f->path, (ll)f->rows, (ll)f->dim,
                       vk_dtype_name(f->dtype), (ll)need, (ll)have);
    if (have > need)
        return vk_fail(VK_EINVAL, "%s: damaged .npy file: %lld bytes follow the %lld data bytes its "
                       "shape (%lld, %lld) describes", f->path, (ll)(have - need), (ll)need,
                       (ll)f->rows, (ll)f->dim);
    return VK_OK;
}

int vk_vfile_open(vk_vfile **out, const char *path, vk_vformat fmt, const char *dataset)
{
    *out = NULL;
    if (!path || !*path)
        return vk_fail(VK_EINVAL, "vector file: empty path");
    if (fmt == VK_VF_AUTO) {
        fmt = vk_vformat_from_path(path);
        if (fmt == VK_VF_AUTO)
            return vk_fail(VK_EINVAL, "%s: cannot tell the format from the file name: name it "
                           ".fvecs, .ivecs, .bvecs, .npy or .hdf5, or give the format", path);
    }
    if (dataset && fmt != VK_VF_HDF5)
        return vk_fail(VK_EINVAL, "%s: a dataset name ('%s') only applies to HDF5 files, not .%s",
                       path, dataset, vk_vformat_name(fmt));
    vk_vfile *f = vk_calloc(1, sizeof *f);
    if (!f)
        return VK_ENOMEM;
    f->fd = -1;
    f->fmt = fmt;
    f->path = vk_strdup(path);
    if (!f->path) {
        free(f);
        return VK_ENOMEM;
    }
    int rc;
    if (fmt == VK_VF_HDF5) {
        f->dataset = vk_strdup(dataset ? dataset : "train");
        rc = f->dataset ? vk_h5_open(f) : VK_ENOMEM;
    } else {
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (f->fd < 0)
            rc = vk_fail(errno == ENOENT ? VK_ENOTFOUND : VK_EIO, "cannot open %s: %s", path, strerror(errno));
        else if (fstat(f->fd, &st) != 0)
            rc = vk_fail(VK_EIO, "cannot stat %s: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = vk_fail(VK_EIO, "cannot read %s: it is a directory", path);
        else if (fmt == VK_VF_NPY)
            rc = open_npy(f, (int64_t)st.st_size);
        else {
            f->dtype = fmt == VK_VF_FVECS ? VK_DT_F32 : fmt == VK_VF_IVECS ? VK_DT_I32 : VK_DT_U8;
            rc = open_texmex(f, (int64_t)st.st_size);
        }
    }
    if (rc) {
        vk_vfile_close(f);
        return rc;
    }
    *out = f;
    return VK_OK;
}

void vk_vfile_close(vk_vfile *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->h5)
        vk_h5_close(f);
    free(f->stage);
    free(f->path);
    free(f->dataset);
    free(f);
}

int64_t vk_vfile_rows(const vk_vfile *f) { return f->rows; }
int64_t vk_vfile_dim(const vk_vfile *f) { return f->dim; }
vk_vformat vk_vfile_format(const vk_vfile *f) { return f->fmt; }
vk_dtype vk_vfile_dtype(const vk_vfile *f) { return f->dtype; }
int vk_vfile_is_integer(const vk_vfile *f) { return dtype_is_integer(f->dtype); }
const char *vk_vfile_path(const vk_vfile *f) { return f->path; }
const char *vk_vfile_dataset(const vk_vfile *f) { return f->dataset; }

/* rows [first, first + n) of a TEXMEX or .npy file into out */
static int read_plain(vk_vfile *f, int64_t first, int64_t n, void *out, int as_float)
{
    int64_t per = f->row_bytes;
    int64_t chunk = STAGE_BYTES / per;
    if (chunk < 1)
        chunk = 1;
    if (chunk > n)
        chunk = n;
    size_t need = (size_t)(chunk * per);
    if (f->stage_cap < need) {
        unsigned char *p = vk_realloc(f->stage, need);
        if (!p)
            return VK_ENOMEM;
        f->stage = p;
        f->stage_cap = need;
    }
    size_t osize = as_float ? sizeof(float) : sizeof(int64_t);
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < chunk ? n - done : chunk;
        int64_t off = f->data_off + (first + done) * per;
        ssize_t r = pread_full(f->fd, f->stage, (size_t)(m * per), (off_t)off);
        if (r < 0)
            return vk_fail(VK_EIO, "%s: cannot read rows %lld to %lld: %s", f->path, (ll)(first + done),
                           (ll)(first + done + m - 1), strerror(errno));
        if (r < m * per)
            return vk_fail(VK_EIO, "%s: the file ended at byte %lld while reading row %lld: it was "
                           "truncated after it was opened", f->path, (ll)(off + r),
                           (ll)(first + done + r / per));
        for (int64_t i = 0; i < m; i++) {
            const unsigned char *row = f->stage + i * per;
            if (f->head_bytes) {
                int32_t d = (int32_t)get_u32(row);
                if (d != f->dim)
                    return vk_fail(VK_EINVAL,
                                   "%s: corrupted .%s file: row %lld declares dimension %d, the first "
                                   "row %lld", f->path, vk_vformat_name(f->fmt),
                                   (ll)(first + done + i), (int)d, (ll)f->dim);
            }
            convert(row + f->head_bytes, f->dtype, f->dim,
                    (char *)out + (size_t)((done + i) * f->dim) * osize, as_float);
        }
        done += m;
    }
    return VK_OK;
}

static int read_rows(vk_vfile *f, int64_t first, int64_t count, void *out, int64_t *got,
                     int as_float)
{
    *got = 0;
    if (first < 0 || count < 0)
        return vk_fail(VK_EINVAL, "%s: row range must not be negative (first %lld, count %lld)",
                       f->path, (ll)first, (ll)count);
    if (first > f->rows)
        return vk_fail(VK_EINVAL, "%s: row %lld is past the end: the file holds %lld rows", f->path,
                       (ll)first, (ll)f->rows);
    if (count > f->rows - first)
        count = f->rows - first;
    if (count == 0)
        return VK_OK;
    int rc = f->fmt == VK_VF_HDF5 ? vk_h5_read(f, first, count, out, as_float)
                                  : read_plain(f, first, count, out, as_float);
    if (rc == VK_OK)
        *got = count;
    return rc;
}

int vk_vfile_read(vk_vfile *f, int64_t first, int64_t count, float *out, int64_t *got)
{
    return read_rows(f, first, count, out, got, 1);
}

int vk_vfile_read_i64(vk_vfile *f, int64_t first, int64_t count, int64_t *out, int64_t *got)
{
    *got = 0;
    if (!dtype_is_integer(f->dtype))
        return vk_fail(VK_EINVAL, "%s%s%s%s: holds %s values, not integers", f->path,
                       f->dataset ? " (dataset '" : "", f->dataset ? f->dataset : "",
                       f->dataset ? "')" : "", vk_dtype_name(f->dtype));
    return read_rows(f, first, count, out, got, 0);
}

/* ---------- writing ---------- */

struct vk_vwriter {
    vk_vformat fmt;
    int64_t d, rows;
    char *path, *tmp;
    FILE *fp;
    int created;          /* tmp exists and is ours to remove */
    unsigned char *row;   /* one row in file layout */
};

static int npy_write_header(vk_vwriter *w)
{
    char h[NPY_HEADER_WRITTEN];
    int n = snprintf(h + 10, sizeof h - 10,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (ll)w->rows, (ll)w->d);
    if (n < 0 || n >= (int)sizeof h - 11)
        return vk_fail(VK_EINVAL, "%s: .npy header does not fit", w->path);
    memset(h + 10 + n, ' ', sizeof h - 10 - (size_t)n);
    h[sizeof h - 1] = '\n';
    memcpy(h, NPY_MAGIC, 6);
    h[6] = 1;
    h[7] = 0;
    h[8] = (char)((sizeof h - 10) & 0xff);
    h[9] = (char)((sizeof h - 10) >> 8);
    if (fwrite(h, 1, sizeof h, w->fp) != sizeof h)
        return vk_fail(VK_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
    return VK_OK;
}

int vk_vwriter_open(vk_vwriter **out, const char *path, vk_vformat fmt, int64_t d)
{
    *out = NULL;
    if (fmt == VK_VF_AUTO)
        fmt = vk_vformat_from_path(path);
    if (fmt != VK_VF_FVECS && fmt != VK_VF_NPY)
        return vk_fail(VK_EINVAL, "%s: vectors are written as .fvecs or .npy, not %s", path,
                       fmt == VK_VF_AUTO ? "a file without one of those extensions"
                                         : vk_vformat_name(fmt));
    if (d < 1 || d > VK_IO_MAX_DIM)
        return vk_fail(VK_EINVAL, "%s: dimension %lld is out of range (1 to %d)", path, (ll)d,
                       VK_IO_MAX_DIM);
    vk_vwriter *w = vk_calloc(1, sizeof *w);
    if (!w)
        return VK_ENOMEM;
    w->fmt = fmt;
    w->d = d;
    size_t n = strlen(path);
    w->path = vk_strdup(path);
    w->tmp = vk_malloc(n + 32);
    w->row = vk_malloc(4 + 4 * (size_t)d);
    if (!w->path || !w->tmp || !w->row) {
        vk_vwriter_abort(w);
        return VK_ENOMEM;
    }
    snprintf(w->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    w->fp = fopen(w->tmp, "wb");
    if (!w->fp) {
        int rc = vk_fail(VK_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
        vk_vwriter_abort(w);
        return rc;
    }
    w->created = 1;
    if (fmt == VK_VF_NPY) {
        int rc = npy_write_header(w);
        if (rc) {
            vk_vwriter_abort(w);
            return rc;
        }
    }
    *out = w;
    return VK_OK;
}

int vk_vwriter_write(vk_vwriter *w, const float *x, int64_t n)
{
    size_t head = w->fmt == VK_VF_FVECS ? 4 : 0;
    size_t len = head + 4 * (size_t)w->d;
    for (int64_t i = 0; i < n; i++) {
        const float *v = x + i * w->d;
        if (head)
            put_u32(w->row, (uint32_t)w->d);
        for (int64_t j = 0; j < w->d; j++) {
            uint32_t u;
            memcpy(&u, &v[j], sizeof u);
            put_u32(w->row + head + 4 * j, u);
        }
        if (fwrite(w->row, 1, len, w->fp) != len)
            return vk_fail(VK_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
        w->rows++;
    }
    return VK_OK;
}

int64_t vk_vwriter_rows(const vk_vwriter *w) { return w->rows; }

static void sync_dir(const char *path)
{
    char *dirc = vk_strdup(path);
    if (!dirc)
        return;
    int fd = open(dirname(dirc), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dirc);
}

int vk_vwriter_close(vk_vwriter *w)
{
    int rc = VK_OK;
    if (w->fmt == VK_VF_NPY) {
        if (fseek(w->fp, 0, SEEK_SET) != 0)
            rc = vk_fail(VK_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
        else
            rc = npy_write_header(w);
    }
    if (rc == VK_OK && (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0))
        rc = vk_fail(VK_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
    int closed = fclose(w->fp);
    w->fp = NULL;
    if (closed != 0 && rc == VK_OK)
        rc = vk_fail(VK_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
    if (rc == VK_OK && rename(w->tmp, w->path) != 0)
        rc = vk_fail(VK_EIO, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
    if (rc == VK_OK) {
        sync_dir(w->path);
        w->created = 0;   /* renamed: nothing left to remove */
    }
    vk_vwriter_abort(w);
    return rc;
}

void vk_vwriter_abort(vk_vwriter *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    if (w->created && w->tmp)
        unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w->row);
    free(w);
}
