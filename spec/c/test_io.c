/* test_io.c: vector files through engine/vk_io.h: round trips of every
 * format, reads across the staging buffer's edges, and malformed files,
 * each refused with a message that says what is wrong. */
#include "ctest.h"
#include "vk_io.h"

#ifndef VK_NO_HDF5
#include <hdf5.h>
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static const char *path_of(const char *name)
{
    static char buf[8][256];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
    return buf[slot];
}

static void put32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

/* copies the first n bytes of src to dst */
static void truncate_copy(const char *src, const char *dst, long n)
{
    FILE *in = fopen(src, "rb");
    char *buf = malloc((size_t)n);
    size_t got = fread(buf, 1, (size_t)n, in);
    fclose(in);
    write_bytes(dst, buf, got);
    free(buf);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* opening must fail with code and a message holding want */
static int refuses(const char *path, vk_vformat fmt, const char *dataset, int code, const char *want)
{
    vk_vfile *f = NULL;
    int rc = vk_vfile_open(&f, path, fmt, dataset);
    if (f)
        vk_vfile_close(f);
    if (rc != code || !strstr(vk_errmsg(), want)) {
        printf("#   got %d \"%s\", wanted %d \"...%s...\"\n", rc, vk_errmsg(), code, want);
        return 0;
    }
    return 1;
}

static float value(int64_t i, int64_t j) { return (float)i * 0.5f - (float)j * 0.25f; }

static void test_fvecs_round_trip(void)
{
    enum { N = 20000, D = 128 };   /* 10 MB: more than two staging buffers */
    float *x = malloc(sizeof(float) * N * D);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++)
            x[i * D + j] = value(i, j);
    const char *p = path_of("big.fvecs");
    vk_vwriter *w;
    CHECK(vk_vwriter_open(&w, p, VK_VF_AUTO, D) == VK_OK, "open an .fvecs writer");
    CHECK(vk_vwriter_write(w, x, 7) == VK_OK && vk_vwriter_write(w, x + 7 * D, N - 7) == VK_OK,
          "write rows in two calls");
    CHECK(access(p, F_OK) != 0, "the file is not there before close");
    CHECK(vk_vwriter_close(w) == VK_OK, "close the writer");
    CHECK(file_size(p) == (long)N * (4 + 4 * D), "file size is rows x (4 + 4d)");

    vk_vfile *f;
    CHECK(vk_vfile_open(&f, p, VK_VF_AUTO, NULL) == VK_OK, "open it by extension");
    CHECK(vk_vfile_rows(f) == N && vk_vfile_dim(f) == D, "rows and dimension from the file");
    CHECK(vk_vfile_format(f) == VK_VF_FVECS && vk_vfile_dtype(f) == VK_DT_F32, "format and dtype");
    float *y = malloc(sizeof(float) * N * D);
    int64_t got = 0;
    CHECK(vk_vfile_read(f, 0, N, y, &got) == VK_OK && got == N, "read every row at once");
    CHECK(memcmp(x, y, sizeof(float) * N * D) == 0, "same values back");
    CHECK(vk_vfile_read(f, 12345, 3, y, &got) == VK_OK && got == 3 &&
              memcmp(y, x + 12345 * D, sizeof(float) * 3 * D) == 0,
          "read a range in the middle");
    CHECK(vk_vfile_read(f, N - 2, 100, y, &got) == VK_OK && got == 2, "a range past the end is cut");
    CHECK(vk_vfile_read(f, N, 5, y, &got) == VK_OK && got == 0, "reading at the end gives no rows");
    CHECK(vk_vfile_read(f, N + 1, 1, y, &got) == VK_EINVAL && strstr(vk_errmsg(), "past the end"),
          "a first row past the end is refused");
    int64_t ids[4];
    CHECK(vk_vfile_read_i64(f, 0, 1, ids, &got) == VK_EINVAL && strstr(vk_errmsg(), "not integers"),
          "float rows are not read as ids");
    vk_vfile_close(f);

    /* a row header damaged in the middle: found while reading */
    FILE *fp = fopen(p, "r+b");
    fseek(fp, (long)(1000 * (4 + 4 * D)), SEEK_SET);
    put32(fp, 7);
    fclose(fp);
    CHECK(vk_vfile_open(&f, p, VK_VF_FVECS, NULL) == VK_OK, "header and size still agree");
    CHECK(vk_vfile_read(f, 0, N, y, &got) == VK_EINVAL &&
              strstr(vk_errmsg(), "row 1000 declares dimension 7"),
          "a damaged row header in the middle is found by the read");
    CHECK(vk_vfile_read(f, 0, 1000, y, &got) == VK_OK && got == 1000, "the rows before it still read");
    vk_vfile_close(f);
    free(x);
    free(y);
}

static void test_ivecs_bvecs(void)
{
    const char *p = path_of("gt.ivecs");
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 3; i++) {
        put32(f, 4);
        for (int j = 0; j < 4; j++)
            put32(f, (uint32_t)(i * 100 + j));
    }
    fclose(f);
    vk_vfile *v;
    CHECK(vk_vfile_open(&v, p, VK_VF_AUTO, NULL) == VK_OK && vk_vfile_is_integer(v),
          "open an .ivecs file");
    int64_t ids[12], got;
    CHECK(vk_vfile_read_i64(v, 1, 2, ids, &got) == VK_OK && got == 2 && ids[0] == 100 &&
              ids[7] == 203,
          "ids read as int64");
    float fl[12];
    CHECK(vk_vfile_read(v, 0, 3, fl, &got) == VK_OK && fl[11] == 203.0f, "and as float32");
    vk_vfile_close(v);

    p = path_of("b.bvecs");
    f = fopen(p, "wb");
    for (int i = 0; i < 2; i++) {
        put32(f, 3);
        unsigned char b[3] = {(unsigned char)(250 + i), 0, 7};
        fwrite(b, 1, 3, f);
    }
    fclose(f);
    CHECK(vk_vfile_open(&v, p, VK_VF_AUTO, NULL) == VK_OK && vk_vfile_dtype(v) == VK_DT_U8 &&
              vk_vfile_rows(v) == 2 && vk_vfile_dim(v) == 3,
          "open a .bvecs file: 2 rows of 3 bytes");
    CHECK(vk_vfile_read(v, 0, 2, fl, &got) == VK_OK && fl[0] == 250.0f && fl[3] == 251.0f &&
              fl[5] == 7.0f,
          "bytes become floats");
    vk_vfile_close(v);
}

static void test_texmex_malformed(void)
{
    const char *p = path_of("empty.fvecs");
    write_bytes(p, "", 0);
    CHECK(refuses(p, VK_VF_AUTO, NULL, VK_EINVAL, "empty file"), "an empty file is refused");
    p = path_of("short.fvecs");
    write_bytes(p, "\x04\x00", 2);
    CHECK(refuses(p, VK_VF_AUTO, NULL, VK_EINVAL, "less than one row header"),
          "a file shorter than a row header is refused");
    p = path_of("zero.fvecs");
    write_bytes(p, "\x00\x00\x00\x00\x00\x00\x00\x00", 8);
    CHECK(refuses(p, VK_VF_AUTO, NULL, VK_EINVAL, "declares dimension 0"),
          "dimension 0 is refused");
    p = path_of("neg.fvecs");
    write_bytes(p, "\xff\xff\xff\xff\x00\x00\x00\x00", 8);
    CHECK(refuses(p, VK_VF_AUTO, NULL, VK_EINVAL, "declares dimension -1"),
          "a negative dimension is refused");

    /* 3 rows of d = 2, then cut inside the last row */
    p = path_of("whole.fvecs");
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 3; i++) {
        put32(f, 2);
        put32(f, 0x3f800000);
        put32(f, 0x40000000);
    }
    fclose(f);
    const char *t = path_of("trunc.fvecs");
    truncate_copy(p, t, 3 * 12 - 5);
    CHECK(refuses(t, VK_VF_AUTO, NULL, VK_EINVAL, "not a whole number of rows of 12 bytes"),
          "a truncated .fvecs file is refused, naming the row size");
    /* the same bytes read as .bvecs: rows of 6 bytes fit 36 bytes, but the
     * last row's header disagrees */
    const char *b = path_of("mixup.bvecs");
    truncate_copy(p, b, 36);
    CHECK(refuses(b, VK_VF_AUTO, NULL, VK_EINVAL, "row 5 declares dimension"),
          "an .fvecs file opened as .bvecs is caught by its last row header");
    CHECK(refuses(path_of("missing.fvecs"), VK_VF_AUTO, NULL, VK_ENOTFOUND, "No such file"),
          "a missing file is not found");
    CHECK(refuses(path_of("data.bin"), VK_VF_AUTO, NULL, VK_EINVAL, "cannot tell the format"),
          "an unknown extension needs an explicit format");
    CHECK(refuses(p, VK_VF_FVECS, "train", VK_EINVAL, "only applies to HDF5"),
          "a dataset name on an .fvecs file is refused");
    CHECK(refuses(dir, VK_VF_FVECS, NULL, VK_EIO, "directory"), "a directory is refused");
}

/* an .npy file: magic, version, header text, then data bytes */
static void npy_file(const char *path, int major, const char *dict, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    size_t hl = strlen(dict) + 1;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    if (major == 1) {
        fputc((int)(hl & 0xff), f);
        fputc((int)(hl >> 8), f);
    } else {
        put32(f, (uint32_t)hl);
    }
    fputs(dict, f);
    fputc('\n', f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static void test_npy(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6.5f};
    const char *p = path_of("w.npy");
    vk_vwriter *w;
    CHECK(vk_vwriter_open(&w, p, VK_VF_AUTO, 3) == VK_OK && vk_vwriter_write(w, x, 2) == VK_OK &&
              vk_vwriter_close(w) == VK_OK,
          "write a 2 x 3 .npy file");
    CHECK(file_size(p) == 128 + 24, "128-byte header, then the data");
    vk_vfile *f;
    float y[6];
    int64_t got;
    CHECK(vk_vfile_open(&f, p, VK_VF_AUTO, NULL) == VK_OK && vk_vfile_rows(f) == 2 &&
              vk_vfile_dim(f) == 3 && vk_vfile_read(f, 0, 2, y, &got) == VK_OK &&
              !memcmp(x, y, sizeof x),
          "read it back");
    vk_vfile_close(f);

    /* numpy's own spellings: double quotes, version 2, no trailing comma */
    p = path_of("v2.npy");
    npy_file(p, 2, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 2)}", x, 24);
    CHECK(vk_vfile_open(&f, p, VK_VF_NPY, NULL) == VK_OK && vk_vfile_rows(f) == 3 &&
              vk_vfile_dim(f) == 2,
          "format version 2.0 with double quotes");
    vk_vfile_close(f);
    int32_t ids[4] = {7, 8, 9, 10};
    p = path_of("ids.npy");
    npy_file(p, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", ids, 16);
    int64_t back[4];
    CHECK(vk_vfile_open(&f, p, VK_VF_NPY, NULL) == VK_OK &&
              vk_vfile_read_i64(f, 1, 1, back, &got) == VK_OK && back[0] == 9 && back[1] == 10,
          "an int32 .npy array reads as ids");
    vk_vfile_close(f);

    /* numpy's default dtype: read as float32, beyond its range infinite */
    p = path_of("f64.npy");
    double dx[3] = {1.5, -2.25, 1e300};
    npy_file(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3), }", dx, 24);
    float fx[3] = {0};
    CHECK(vk_vfile_open(&f, p, VK_VF_NPY, NULL) == VK_OK && vk_vfile_dtype(f) == VK_DT_F64 &&
              vk_vfile_read(f, 0, 1, fx, &got) == VK_OK && got == 1 && fx[0] == 1.5f && fx[1] == -2.25f &&
              isinf(fx[2]) && fx[2] > 0,
          "a float64 .npy array reads as float32");
    vk_vfile_close(f);
    p = path_of("bad.npy");
    npy_file(p, 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "unsupported .npy dtype '>f8'"),
          "big-endian float64 is refused, naming the dtype");
    npy_file(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "'>f4'"), "big-endian float32 is refused");
    npy_file(p, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "structured array"),
          "a structured dtype is refused");
    npy_file(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "Fortran"), "Fortran order is refused");
    npy_file(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "is 1-D"), "a 1-D array is refused");
    npy_file(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "is 3-D"), "a 3-D array is refused");
    npy_file(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "truncated .npy file"),
          "data shorter than the shape is refused");
    npy_file(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "12 bytes follow"),
          "data longer than the shape is refused");
    npy_file(p, 1, "{'descr': '<f4', 'shape': (2, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "no 'fortran_order'"),
          "a header without fortran_order is refused");
    npy_file(p, 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", x, 24);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "version 4.0"), "an unknown version is refused");
    write_bytes(p, "PK\x03\x04 this is a zip archive", 26);
    CHECK(refuses(p, VK_VF_NPY, NULL, VK_EINVAL, "not an .npy file"), "a wrong magic is refused");
    const char *t = path_of("cut.npy");
    npy_file(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", x, 24);
    truncate_copy(p, t, 40);
    CHECK(refuses(t, VK_VF_NPY, NULL, VK_EINVAL, "truncated .npy file"),
          "a file cut inside its header is refused");
}

static void test_writer(void)
{
    float x[4] = {1, 2, 3, 4};
    vk_vwriter *w;
    const char *p = path_of("aborted.fvecs");
    CHECK(vk_vwriter_open(&w, p, VK_VF_FVECS, 4) == VK_OK && vk_vwriter_write(w, x, 1) == VK_OK,
          "start a file");
    vk_vwriter_abort(w);
    CHECK(access(p, F_OK) != 0, "abort leaves no file behind");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "nor its temporary file");
    CHECK(vk_vwriter_open(&w, "/nonexistent-dir/x.fvecs", VK_VF_FVECS, 4) == VK_EIO,
          "a missing folder is an I/O error");
    CHECK(vk_vwriter_open(&w, path_of("x.bvecs"), VK_VF_AUTO, 4) == VK_EINVAL &&
              strstr(vk_errmsg(), "written as .fvecs or .npy"),
          "writers exist for .fvecs and .npy only");
    CHECK(vk_vwriter_open(&w, path_of("x.fvecs"), VK_VF_AUTO, 0) == VK_EINVAL,
          "dimension 0 is refused");
}

#ifndef VK_NO_HDF5
/* a dataset written with HDF5's own API, for shapes our writer refuses */
static void h5_raw(const char *path, const char *name, int rank, const hsize_t *dims, hid_t type,
                   const void *data)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(file);
}

static void test_hdf5(void)
{
    enum { N = 50, D = 8, K = 5 };
    float x[N * D];
    int32_t nb[N * K];
    for (int i = 0; i < N * D; i++)
        x[i] = (float)i / 7.0f;
    for (int i = 0; i < N * K; i++)
        nb[i] = i * 3;
    const char *p = path_of("ann.hdf5");
    CHECK(vk_hdf5_available(), "built with HDF5");
    CHECK(vk_hdf5_write(p, "train", VK_DT_F32, N, D, x, 0) == VK_OK, "write dataset train");
    CHECK(vk_hdf5_write(p, "test", VK_DT_F32, 10, D, x, 1) == VK_OK, "add dataset test");
    CHECK(vk_hdf5_write(p, "neighbors", VK_DT_I32, N, K, nb, 1) == VK_OK, "add dataset neighbors");
    CHECK(vk_hdf5_write(p, "test", VK_DT_F32, 1, D, x, 1) == VK_EINVAL &&
              strstr(vk_errmsg(), "already has a dataset 'test'"),
          "a dataset name already there is refused");

    vk_vfile *f;
    float y[N * D];
    int64_t got, ids[N * K];
    CHECK(vk_vfile_open(&f, p, VK_VF_AUTO, NULL) == VK_OK && vk_vfile_rows(f) == N &&
              vk_vfile_dim(f) == D && !strcmp(vk_vfile_dataset(f), "train"),
          "open: the dataset is train by default");
    CHECK(vk_vfile_read(f, 0, N, y, &got) == VK_OK && got == N && !memcmp(x, y, sizeof x),
          "train reads back");
    CHECK(vk_vfile_read(f, 45, 10, y, &got) == VK_OK && got == 5 && y[0] == x[45 * D],
          "a row range of a dataset, cut at its end");
    vk_vfile_close(f);
    CHECK(vk_vfile_open(&f, p, VK_VF_HDF5, "neighbors") == VK_OK && vk_vfile_is_integer(f) &&
              vk_vfile_read_i64(f, 0, N, ids, &got) == VK_OK && ids[N * K - 1] == nb[N * K - 1],
          "neighbors read as ids");
    vk_vfile_close(f);

    CHECK(refuses(p, VK_VF_HDF5, "distances", VK_EINVAL,
                  "has no dataset 'distances'; it holds: neighbors, test, train"),
          "a missing dataset is named, with what the file holds");
    hsize_t d3[3] = {2, 2, 2};
    h5_raw(p, "cube", 3, d3, H5T_NATIVE_FLOAT, x);
    CHECK(refuses(p, VK_VF_HDF5, "cube", VK_EINVAL, "is 3-D"), "a 3-D dataset is refused");
    hsize_t d2[2] = {2, 2};
    char text[4] = {'a', 'b', 'c', 'd'};
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 1);
    h5_raw(p, "names", 2, d2, str, text);
    H5Tclose(str);
    CHECK(refuses(p, VK_VF_HDF5, "names", VK_EINVAL, "holds string values"),
          "a string dataset is refused");
    hid_t file = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(file, "group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(file);
    CHECK(refuses(p, VK_VF_HDF5, "group", VK_EINVAL, "is not a dataset"), "a group is refused");

    const char *t = path_of("cut.hdf5");
    truncate_copy(p, t, file_size(p) / 2);
    CHECK(refuses(t, VK_VF_HDF5, "train", VK_EINVAL, "truncated or damaged"),
          "a truncated HDF5 file is refused");
    const char *junk = path_of("junk.hdf5");
    write_bytes(junk, "this is not HDF5 at all, only some text", 39);
    CHECK(refuses(junk, VK_VF_HDF5, NULL, VK_EINVAL, "not an HDF5 file"), "a non-HDF5 file is refused");
    CHECK(refuses(path_of("none.hdf5"), VK_VF_HDF5, NULL, VK_EIO, "No such file"),
          "a missing HDF5 file is an I/O error");
    CHECK(vk_hdf5_write(path_of("none.hdf5"), "x", VK_DT_F32, 1, D, x, 1) == VK_EIO,
          "adding to a missing file is an I/O error");
}
#endif

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/vk-test-io-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_fvecs_round_trip();
    test_ivecs_bvecs();
    test_texmex_malformed();
    test_npy();
    test_writer();
#ifndef VK_NO_HDF5
    test_hdf5();
#endif
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    CT_DONE();
}
