/* faiss_index.c: the FAISS index, through FAISS's C API: reading, writing,
 * adding, searching, runtime parameters */
#include "vk_faiss.h"

#include <dirent.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <errno.h>
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct vk_index {
    FaissIndex *fi;
    int refs;
    int mapped;   /* read with the mmap flag, or lists on disk: read-only */
    int ondisk;   /* IVF lists in a lists file of their own */
};

/* ---------- the CPU the linked FAISS needs ---------- */

const char *vk_faiss_build(void)
{
#ifdef VK_FAISS_AVX2
    return "avx2";
#else
    return "generic";
#endif
}

unsigned vk_faiss_needs(void)
{
#ifdef VK_FAISS_AVX2
    /* FAISS's avx2 level: -mavx2 -mfma -mf16c -mpopcnt */
    return VK_CPU_AVX2 | VK_CPU_FMA | VK_CPU_F16C | VK_CPU_POPCNT;
#else
    return 0;
#endif
}

unsigned vk_cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    int os_avx = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        if (c & bit_FMA)
            f |= VK_CPU_FMA;
        if (c & bit_F16C)
            f |= VK_CPU_F16C;
        if (c & bit_POPCNT)
            f |= VK_CPU_POPCNT;
        if ((c & bit_OSXSAVE) && (c & bit_AVX)) {
            unsigned lo, hi;
            __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            os_avx = (lo & 6) == 6;   /* the OS saves the XMM and YMM registers */
        }
    }
    if (!os_avx)
        f &= ~(unsigned)(VK_CPU_FMA | VK_CPU_F16C);
    if (os_avx && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2))
        f |= VK_CPU_AVX2;
#endif
    return f;
}

int vk_cpu_missing(unsigned need, unsigned have, char *buf, size_t n)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {VK_CPU_AVX2, "avx2"}, {VK_CPU_FMA, "fma"}, {VK_CPU_F16C, "f16c"}, {VK_CPU_POPCNT, "popcnt"}};
    int missing = 0;
    size_t len = 0;
    if (n)
        buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(need & names[i].bit) || (have & names[i].bit))
            continue;
        if (len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", missing ? " " : "", names[i].name);
        missing++;
    }
    return missing;
}

int vk_faiss_check_cpu(void)
{
    char lack[64];
    if (!vk_cpu_missing(vk_faiss_needs(), vk_cpu_features(), lack, sizeof lack))
        return VK_OK;
    return vk_fail(VK_ESTATE, "this VekterDB was built with FAISS's %s level, which this CPU cannot "
                   "run (it lacks %s): build it with `make FAISS_BUILD=generic`",
                   vk_faiss_build(), lack);
}

/* FAISS's messages read "Error in <signature> at <file>:<line>: <text>";
 * keep the text, first line only */
int vk_faiss_error(const char *what, const char *msg)
{
    const char *m = msg ? msg : "unknown FAISS error";
    const char *at = strstr(m, " at ");
    if (strncmp(m, "Error in ", 9) == 0 && at) {
        const char *colon = strstr(at, ": ");
        if (colon)
            m = colon + 2;
    }
    size_t n = strcspn(m, "\n");
    /* FAISS sometimes glues the next message on without a newline */
    const char *glued = strstr(m, "Error in ");
    if (glued && (size_t)(glued - m) < n && glued != m)
        n = (size_t)(glued - m);
    return vk_fail(VK_EFAISS, "%s: %.*s", what, (int)n, m);
}

/* the C API's last error */
static int faiss_fail(const char *what) { return vk_faiss_error(what, faiss_get_last_error()); }

static vk_index *wrap(FaissIndex *fi)
{
    vk_index *ix = vk_calloc(1, sizeof *ix);
    if (!ix) {
        faiss_Index_free(fi);
        return NULL;
    }
    ix->fi = fi;
    ix->refs = 1;
    return ix;
}

int vk_index_factory(vk_index **out, int d, const char *description, vk_metric metric)
{
    *out = NULL;
    if (d <= 0)
        return vk_fail(VK_EINVAL, "index dimension must be positive, got %d", d);
    if (!description || !*description)
        return vk_fail(VK_EINVAL, "empty FAISS factory string");
    FaissIndex *fi = NULL;
    if (faiss_index_factory(&fi, d, description,
                            metric == VK_METRIC_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT))
        return faiss_fail("FAISS rejected the factory string");
    return (*out = wrap(fi)) ? VK_OK : VK_ENOMEM;
}

int vk_index_read_fd(vk_index **out, int fd, const char *name, int mmap)
{
    *out = NULL;
    FaissIndex *fi = NULL;
    int rc = vk_faiss_read(fd, name, mmap, &fi);
    if (rc)
        return rc;
    if (!(*out = wrap(fi)))
        return VK_ENOMEM;
    (*out)->ondisk = vk_faiss_ondisk(fi);
    (*out)->mapped = mmap != 0 || (*out)->ondisk;
    if ((*out)->mapped)
        vk_faiss_mapped(fi);
    return VK_OK;
}

int vk_index_read(vk_index **out, const char *path, int mmap)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vk_fail(errno == ENOENT ? VK_ENOTFOUND : VK_EIO, "cannot read index file %s: %s", path,
                       strerror(errno));
    int rc = vk_index_read_fd(out, fd, path, mmap);
    close(fd);
    return rc;
}

int vk_index_is_mapped(const vk_index *ix) { return ix->mapped; }
int vk_index_is_ondisk(const vk_index *ix) { return ix->ondisk; }

void vk_index_lists_moved(vk_index *ix)
{
    ix->ondisk = vk_faiss_ondisk(ix->fi);
    ix->mapped = ix->mapped || ix->ondisk;
}

int vk_index_check_writable(const vk_index *ix)
{
    if (ix->ondisk)
        return vk_fail(VK_ESTATE, "the index's inverted lists are on disk, mapped read-only: "
                                  "sync_index_to_db writes a new generation of them with the new "
                                  "records");
    /* FAISS throws from inside its OpenMP loops when it adds to mapped
     * lists, which ends the process: refuse before calling it */
    if (ix->mapped)
        return vk_fail(VK_ESTATE, "the index was opened with mmap and is read-only: open it without "
                                  "mmap to train it or to add or remove vectors");
    return VK_OK;
}

int vk_index_write(vk_index *ix, const char *path) { return vk_index_write_sealed(ix, path, NULL, NULL); }

/* Temporary files are "<path>.tmp.<pid>.<n>", created exclusively and
 * flock'ed while written: one that nobody locks and whose process is gone
 * was left by a killed save. */
#define TMP_MARK ".tmp."

/* removes name from dir unless another process holds its flock */
static void remove_unlocked(DIR *dir, const char *name)
{
    int fd = openat(dirfd(dir), name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        unlinkat(dirfd(dir), name, 0);
    close(fd);
}

void vk_index_clean_temps(const char *path)
{
    char *dirc = vk_strdup(path), *basec = vk_strdup(path);
    DIR *dir = dirc && basec ? opendir(dirname(dirc)) : NULL;
    const char *base = basec ? basename(basec) : NULL;
    size_t blen = base ? strlen(base) : 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, base, blen) != 0 || strncmp(e->d_name + blen, TMP_MARK, 5) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + blen + 5, &end, 10);
        if (end == e->d_name + blen + 5 || (*end != '.' && *end != '\0') || pid <= 0)
            continue;
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
            continue;   /* its process is alive: maybe still saving */
        remove_unlocked(dir, e->d_name);
    }
    if (dir)
        closedir(dir);
    free(dirc);
    free(basec);
}

/* ---------- lists files of on-disk indexes ---------- */

#define LISTS_MARK ".ivfdata."

char *vk_index_lists_name(const char *path)
{
    unsigned char r[8];
    if (getentropy(r, sizeof r) != 0) {
        /* no entropy: time, pid and a counter still differ per save */
        static _Atomic unsigned n;
        u64 v = (u64)time(NULL) * 1000003u ^ (u64)getpid() << 20 ^ n++;
        memcpy(r, &v, sizeof r);
    }
    size_t len = strlen(path) + sizeof LISTS_MARK + 17;
    char *s = vk_malloc(len);
    if (!s)
        return NULL;
    int o = snprintf(s, len, "%s" LISTS_MARK, path);
    for (int i = 0; i < 8; i++)
        o += snprintf(s + o, len - (size_t)o, "%02x", r[i]);
    return s;
}

static int is_lists_name(const char *name, const char *base, size_t blen)
{
    if (strncmp(name, base, blen) != 0 || strncmp(name + blen, LISTS_MARK, sizeof LISTS_MARK - 1) != 0)
        return 0;
    const char *h = name + blen + sizeof LISTS_MARK - 1;
    for (int i = 0; i < 16; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return h[16] == '\0';
}

void vk_index_clean_lists(const char *path, const char *keep)
{
    char *dirc = vk_strdup(path), *basec = vk_strdup(path), *keepc = keep ? vk_strdup(keep) : NULL;
    DIR *dir = dirc && basec ? opendir(dirname(dirc)) : NULL;
    const char *base = basec ? basename(basec) : NULL;
    const char *kb = keepc ? basename(keepc) : NULL;
    size_t blen = base ? strlen(base) : 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        if (!is_lists_name(e->d_name, base, blen) || (kb && strcmp(e->d_name, kb) == 0))
            continue;
        /* unlinking a mapped file is safe: mappings keep it until unmapped */
        remove_unlocked(dir, e->d_name);
    }
    if (dir)
        closedir(dir);
    free(dirc);
    free(basec);
    free(keepc);
}

int vk_index_write_sealed(vk_index *ix, const char *path, vk_index_seal_fn seal, void *ud)
{
    static _Atomic unsigned counter;
    vk_index_clean_temps(path);
    size_t n = strlen(path);
    char *tmp = vk_malloc(n + 48);
    if (!tmp)
        return VK_ENOMEM;
    snprintf(tmp, n + 48, "%s" TMP_MARK "%ld.%u", path, (long)getpid(), counter++);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f = NULL;
    if (fd >= 0 && flock(fd, LOCK_EX) == 0)
        f = fdopen(fd, "w+b");
    if (!f) {
        int rc = vk_fail(VK_EIO, "cannot write index file %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return rc;
    }
    int rc = VK_OK;
    if (faiss_write_index(ix->fi, f))
        rc = faiss_fail("writing the index failed");
    else if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = vk_fail(VK_EIO, "cannot write index file %s: %s", tmp, strerror(errno));
    if (rc == VK_OK && seal)
        rc = seal(ud, fileno(f));
    int keep = rc == VK_OK;
    if (rc == VK_INDEX_NO_RENAME)
        rc = VK_OK;
    /* renamed while still locked: nobody can take it for a leftover */
    if (keep && rename(tmp, path) != 0)
        rc = vk_fail(VK_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (!keep || rc != VK_OK)
        unlink(tmp);
    if (fclose(f) != 0 && rc == VK_OK)
        rc = vk_fail(VK_EIO, "cannot write index file %s: %s", path, strerror(errno));
    if (rc == VK_OK && keep) {
        /* make the rename itself durable */
        char *dirc = vk_strdup(path);
        if (dirc) {
            int dfd = open(dirname(dirc), O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dirc);
        }
    }
    free(tmp);
    return rc;
}

void vk_index_retain(vk_index *ix)
{
    if (ix)
        ix->refs++;
}

void vk_index_release(vk_index *ix)
{
    if (ix && --ix->refs == 0) {
        faiss_Index_free(ix->fi);
        free(ix);
    }
}

struct FaissIndex_H *vk_index_faiss(const vk_index *ix) { return ix->fi; }
int vk_index_d(const vk_index *ix) { return faiss_Index_d(ix->fi); }
int64_t vk_index_ntotal(const vk_index *ix) { return faiss_Index_ntotal(ix->fi); }
int vk_index_is_trained(const vk_index *ix) { return faiss_Index_is_trained(ix->fi); }

vk_metric vk_index_metric(const vk_index *ix)
{
    return faiss_Index_metric_type(ix->fi) == METRIC_L2 ? VK_METRIC_L2 : VK_METRIC_IP;
}

int vk_index_metric_supported(const vk_index *ix)
{
    FaissMetricType m = faiss_Index_metric_type(ix->fi);
    return m == METRIC_L2 || m == METRIC_INNER_PRODUCT;
}

int vk_index_train(vk_index *ix, int64_t n, const float *x)
{
    if (n <= 0)
        return vk_fail(VK_EINVAL, "cannot train an index on no vectors");
    if (vk_index_check_writable(ix))
        return vk_errcode();
    if (faiss_Index_train(ix->fi, n, x))
        return faiss_fail("training the index failed");
    return VK_OK;
}

int vk_index_add(vk_index *ix, int64_t n, const float *x, int64_t first_id)
{
    if (n <= 0)
        return VK_OK;
    if (vk_index_check_writable(ix))
        return vk_errcode();
    if (!faiss_Index_is_trained(ix->fi))
        return vk_fail(VK_ESTATE, "the index is not trained: train it before adding vectors");
    int rc;
    /* IVF and IDMap keep the ids they are given: after removals their
     * ntotal no longer tells the next id */
    if (vk_faiss_explicit_ids(ix->fi)) {
        idx_t *ids = vk_malloc(sizeof(idx_t) * (size_t)n);
        if (!ids)
            return VK_ENOMEM;
        for (int64_t i = 0; i < n; i++)
            ids[i] = first_id + i;
        rc = faiss_Index_add_with_ids(ix->fi, n, x, ids);
        free(ids);
    } else {
        if (first_id != faiss_Index_ntotal(ix->fi))
            return vk_fail(VK_ESTATE, "index holds %lld vectors, cannot add idx %lld next",
                           (long long)faiss_Index_ntotal(ix->fi), (long long)first_id);
        rc = faiss_Index_add(ix->fi, n, x);
    }
    return rc ? faiss_fail("adding vectors to the index failed") : VK_OK;
}

int vk_index_truncate(vk_index *ix, int64_t first_id)
{
    if (vk_index_check_writable(ix))
        return vk_errcode();
    FaissIDSelectorRange *sel = NULL;
    if (faiss_IDSelectorRange_new(&sel, first_id, INT64_MAX))
        return faiss_fail("cannot undo the add");
    size_t removed = 0;
    int rc = faiss_Index_remove_ids(ix->fi, (FaissIDSelector *)sel, &removed);
    faiss_IDSelector_free((FaissIDSelector *)sel);
    return rc ? faiss_fail("cannot undo the add") : VK_OK;
}

int vk_index_search(vk_index *ix, int64_t n, const float *x, int64_t k,
                    float *distances, int64_t *labels)
{
    if (faiss_Index_search(ix->fi, n, x, k, distances, (idx_t *)labels))
        return faiss_fail("search failed");
    return VK_OK;
}

/* ---------- runtime parameters ---------- */

/* implemented in faiss_ext.cpp: reads what ParameterSpace would set */
int vk_faiss_get_param(const FaissIndex *fi, const char *name, double *out);

typedef struct param_item {
    char name[100];
    double value;
} param_item;

struct vk_param_undo {
    int n;
    param_item items[];
};

/* splits "a=1,b=2" (also spaces) the way FAISS does, into items */
static int parse_params(const char *params, param_item **items, int *n)
{
    *items = NULL;
    *n = 0;
    size_t len = strlen(params);
    char *copy = vk_strndup(params, len);
    if (!copy)
        return VK_ENOMEM;
    param_item *arr = vk_calloc(len / 2 + 1, sizeof *arr);
    if (!arr) {
        free(copy);
        return VK_ENOMEM;
    }
    int count = 0, rc = VK_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof arr[0].name) {
            rc = vk_fail(VK_EINVAL, "could not interpret FAISS parameter '%.80s': expected name=value", tok);
            break;
        }
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || *end) {
            rc = vk_fail(VK_EINVAL, "could not interpret FAISS parameter '%.80s': value is not a number", tok);
            break;
        }
        memcpy(arr[count].name, tok, (size_t)(eq - tok));
        arr[count].name[eq - tok] = '\0';
        arr[count].value = v;
        count++;
    }
    free(copy);
    if (rc) {
        free(arr);
        return rc;
    }
    *items = arr;
    *n = count;
    return VK_OK;
}

static int set_one(FaissIndex *fi, const char *name, double value)
{
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps))
        return faiss_fail("cannot set FAISS parameters");
    int rc = faiss_ParameterSpace_set_index_parameter(ps, fi, name, value);
    faiss_ParameterSpace_free(ps);
    if (rc)
        return faiss_fail("cannot set FAISS parameter");
    return VK_OK;
}

int vk_index_push_params(vk_index *ix, const char *params, vk_param_undo **undo)
{
    *undo = NULL;
    param_item *items;
    int n, rc = parse_params(params ? params : "", &items, &n);
    if (rc)
        return rc;
    vk_param_undo *u = vk_malloc(sizeof *u + sizeof(param_item) * (size_t)n);
    if (!u) {
        free(items);
        return VK_ENOMEM;
    }
    u->n = 0;
    /* every name is checked before anything changes */
    for (int i = 0; i < n; i++) {
        double old;
        if (vk_faiss_get_param(ix->fi, items[i].name, &old)) {
            rc = vk_fail(VK_EINVAL, "unknown FAISS runtime parameter '%s' for this index type",
                         items[i].name);
            break;
        }
        memcpy(u->items[i].name, items[i].name, sizeof items[i].name);
        u->items[i].value = old;
        u->n = i + 1;
    }
    for (int i = 0; rc == VK_OK && i < n; i++)
        rc = set_one(ix->fi, items[i].name, items[i].value);
    free(items);
    if (rc) {
        vk_index_pop_params(ix, u);
        return rc;
    }
    *undo = u;
    return VK_OK;
}

void vk_index_pop_params(vk_index *ix, vk_param_undo *undo)
{
    if (!undo)
        return;
    for (int i = undo->n - 1; i >= 0; i--)
        set_one(ix->fi, undo->items[i].name, undo->items[i].value);
    free(undo);
}

int vk_index_set_params(vk_index *ix, const char *params)
{
    vk_param_undo *u;
    int rc = vk_index_push_params(ix, params, &u);
    free(u);
    return rc;
}

int vk_index_get_param(const vk_index *ix, const char *name, double *out)
{
    if (vk_faiss_get_param(ix->fi, name, out))
        return vk_fail(VK_EINVAL, "unknown FAISS runtime parameter '%s' for this index type", name);
    return VK_OK;
}

i64 vk_index_covered(vk_index *ix)
{
    struct FaissIndex_H *fi = vk_index_faiss(ix);
    int64_t mx;
    if (!vk_faiss_explicit_ids(fi) || vk_faiss_ids(fi, &mx, NULL, 0))
        return vk_index_ntotal(ix);
    return mx + 1;
}
