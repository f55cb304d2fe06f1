/*
 * mmap_check.c: which FAISS index types really share their data between
 * processes when read with an mmap flag.  For each factory string it builds
 * a small index, writes it, then reads it back in a freshly executed copy of
 * this program with three io_flags values and reports whether the file is
 * mapped (/proc/self/maps) and how much private memory the read cost (RssAnon).
 * "np" after PQ turns off polysemous training, which is slow and does not
 * change how the codes are stored.
 *
 *   make mmap-check          (see openresty.mk)
 *   mmap_check [DIR [N [FACTORY]]]   DIR for the index files, N vectors
 *                                    (20000), only FACTORY if given
 */
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIM 64

/* FAISS's C++ IO_FLAG_MMAP in 1.7.3 (index_io.h): IO_FLAG_SKIP_IVF_DATA | 0x646f0000.
 * The C API's FAISS_IO_FLAG_MMAP is 1, a bit the 1.7.3 reader never tests. */
#define CXX_IO_FLAG_MMAP (8 | 0x646f0000)

static const char *factories[] = {"Flat",        "HNSW32",          "PQ16np",
                                  "SQ8",         "IVF128,Flat",     "IVF128,PQ16np",
                                  "IVF128,SQ8",  "OPQ8,IVF128,PQ8np", "IVF128_HNSW32,PQ16np",
                                  NULL};

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static int is_mapped(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, path))
            found = 1;
    if (f)
        fclose(f);
    return found;
}

/* runs in a fresh process: read, search once, report */
static int probe(const char *path, int flags)
{
    float q[DIM] = {0};
    long before = status_kb("RssAnon");
    FaissIndex *ix = NULL;
    if (faiss_read_index_fname(path, flags, &ix)) {
        printf("  read failed: %.120s", faiss_get_last_error());
        return 1;
    }
    long after = status_kb("RssAnon");
    float dist[10];
    idx_t ids[10];
    int ok = faiss_Index_search(ix, 1, q, 10, dist, ids) == 0;
    printf("  mapped=%-3s private=%6ld kB  search=%s", is_mapped(path) ? "yes" : "no",
           after - before, ok ? "ok" : "FAILED");
    faiss_Index_free(ix);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--probe")) {
        int rc = probe(argv[2], (int)strtol(argv[3], NULL, 0));
        printf("\n");
        return rc;
    }
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    long n = argc > 2 ? atol(argv[2]) : 20000;
    float *x = malloc(sizeof(float) * (size_t)n * DIM);
    if (!x)
        return 1;
    unsigned s = 12345;
    for (long i = 0; i < n * DIM; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    const struct {
        const char *name;
        int flags;
    } modes[] = {{"0", 0}, {"FAISS_IO_FLAG_MMAP", FAISS_IO_FLAG_MMAP}, {"C++ IO_FLAG_MMAP", CXX_IO_FLAG_MMAP}};
    int failures = 0;
    printf("%ld vectors of dimension %d\n", n, DIM);
    for (int f = 0; factories[f]; f++) {
        if (argc > 3 && strcmp(argv[3], factories[f]))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/mmap-check-%d.index", dir, f);
        FaissIndex *ix = NULL;
        if (faiss_index_factory(&ix, DIM, factories[f], METRIC_L2) ||
            faiss_Index_train(ix, n, x) || faiss_Index_add(ix, n, x) ||
            faiss_write_index_fname(ix, path)) {
            printf("%s: %s\n", factories[f], faiss_get_last_error());
            failures++;
            continue;
        }
        faiss_Index_free(ix);
        printf("%s\n", factories[f]);
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            printf("  %-20s", modes[m].name);
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                char flags[32];
                snprintf(flags, sizeof flags, "%d", modes[m].flags);
                execl("/proc/self/exe", argv[0], "--probe", path, flags, (char *)NULL);
                _exit(127);
            }
            int st = 0;
            waitpid(pid, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st))
                failures++;
        }
        unlink(path);
    }
    free(x);
    return failures ? 1 : 0;
}
