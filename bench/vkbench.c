/*
 * vkbench.c: the Lua module `vkbench` the benchmark runs beside VekterDB:
 * the lower bounds each figure is measured against (plain SQLite, bare FAISS,
 * the engine's batch API called from C), a wall clock, peak resident memory
 * and recall against the ground truth.
 *
 * The module links its own copy of the engine and of FAISS (static
 * libraries), so the bounds run the same code VekterDB runs, in the same
 * process, without going through VekterDB's Lua module.
 */
#include "lvk.h"   /* lvk_mat: the layout of vekterdb.Matrix */

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define VKB_GT "vkbench.GroundTruth"
#define VKB_LABELS "vkbench.Labels"
#define VKB_INDEX "vkbench.Index"

void openblas_set_num_threads(int n);
extern int omp_get_max_threads(void);

typedef struct gt_t {
    int64_t nq, k;
    int32_t ids[];
} gt_t;

typedef struct labels_t {
    int64_t nq, k;
    int64_t ids[];
} labels_t;

typedef struct index_t {
    FaissIndex *fi;
} index_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (every thread), user + system */
static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int b_now(lua_State *L)
{
    lua_pushnumber(L, now());
    return 1;
}

static int b_cpu(lua_State *L)
{
    lua_pushnumber(L, cpu());
    return 1;
}

static const lvk_mat *checkmat(lua_State *L, int idx)
{
    lvk_mat *m = luaL_testudata(L, idx, LVK_MATRIX);
    if (!m)
        m = luaL_checkudata(L, idx, LVK_VECTOR);
    return m;
}

/* ---------- memory ---------- */

/* resets the peak (VmHWM) to the current resident size; false when the
 * kernel does not allow it */
static int b_mem_reset(lua_State *L)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok = f && fputs("5", f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    lua_pushboolean(L, ok);
    return 1;
}

/* current and peak resident memory, in bytes */
static int b_mem(lua_State *L)
{
    FILE *f = fopen("/proc/self/status", "r");
    long long rss = -1, hwm = -1;
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6))
            rss = atoll(line + 6);
        else if (!strncmp(line, "VmHWM:", 6))
            hwm = atoll(line + 6);
    }
    if (f)
        fclose(f);
    lua_pushinteger(L, rss * 1024);
    lua_pushinteger(L, hwm * 1024);
    return 2;
}

/* ---------- machine ---------- */

static int b_machine(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, sysconf(_SC_NPROCESSORS_ONLN));
    lua_setfield(L, -2, "cores");
    lua_pushinteger(L, omp_get_max_threads());
    lua_setfield(L, -2, "omp_threads");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    int model = 0, flags = 0;
    while (f && fgets(line, sizeof line, f) && !(model && flags)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        char *v = colon + 1 + (colon[1] == ' ');
        v[strcspn(v, "\n")] = '\0';
        if (!model && !strncmp(line, "model name", 10)) {
            lua_pushstring(L, v);
            lua_setfield(L, -2, "cpu");
            model = 1;
        } else if (!flags && !strncmp(line, "flags", 5)) {
            /* the SIMD extensions FAISS's builds care about */
            static const char *const want[] = {"sse4_2", "popcnt", "avx", "avx2", "fma", "f16c",
                                               "avx512f"};
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                char pat[32];
                snprintf(pat, sizeof pat, " %s ", want[i]);
                char padded[sizeof line + 2];
                snprintf(padded, sizeof padded, " %s ", v);
                if (strstr(padded, pat)) {
                    luaL_addstring(&b, want[i]);
                    luaL_addchar(&b, ' ');
                }
            }
            luaL_pushresult(&b);
            lua_setfield(L, -2, "simd");
            flags = 1;
        }
    }
    if (f)
        fclose(f);
    return 1;
}

/* ---------- ground truth and recall ---------- */

/* gt(path): an .ivecs file of nq rows of k ids */
static int b_gt(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f)
        return luaL_error(L, "cannot open %s", path);
    int32_t k = 0;
    long size = 0;
    if (fread(&k, 4, 1, f) != 1 || k <= 0 || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0) {
        fclose(f);
        return luaL_error(L, "%s is not an .ivecs file", path);
    }
    int64_t row = 4 + 4 * (int64_t)k, nq = size / row;
    if (nq * row != size) {
        fclose(f);
        return luaL_error(L, "%s is not an .ivecs file", path);
    }
    gt_t *g = lua_newuserdatauv(L, sizeof(gt_t) + sizeof(int32_t) * (size_t)(nq * k), 0);
    g->nq = nq;
    g->k = k;
    luaL_setmetatable(L, VKB_GT);
    rewind(f);
    int ok = 1;
    for (int64_t i = 0; i < nq && ok; i++) {
        int32_t d;
        ok = fread(&d, 4, 1, f) == 1 && d == k && fread(g->ids + i * k, 4, (size_t)k, f) == (size_t)k;
    }
    fclose(f);
    if (!ok)
        return luaL_error(L, "%s: unreadable row", path);
    return 1;
}

/* the id at rank j (0-based) of query i's results, -1 when there is none */
typedef int64_t (*result_fn)(lua_State *L, int res, int64_t i, int64_t j, int64_t k);

static int64_t from_labels(lua_State *L, int res, int64_t i, int64_t j, int64_t k)
{
    const labels_t *lb = lua_touserdata(L, res);
    (void)k;
    return j < lb->k ? lb->ids[i * lb->k + j] : -1;
}

/* results of db:search: results[i+1].neighbors[j+1].idx */
static int64_t from_results(lua_State *L, int res, int64_t i, int64_t j, int64_t k)
{
    (void)k;
    int top = lua_gettop(L);
    int64_t id = -1;
    if (lua_rawgeti(L, res, (lua_Integer)i + 1) == LUA_TTABLE &&
        lua_getfield(L, -1, "neighbors") == LUA_TTABLE &&
        lua_rawgeti(L, -1, (lua_Integer)j + 1) == LUA_TTABLE &&
        lua_getfield(L, -1, "idx") == LUA_TNUMBER)
        id = (int64_t)lua_tointeger(L, -1);
    lua_settop(L, top);
    return id;
}

/* recall(gt, results, k) -> R@1, R@k (the true nearest neighbor among the
 * first k), k-recall@k (the share of the true k nearest found)
 * results: a Labels userdata or the table db:search returns */
static int b_recall(lua_State *L)
{
    gt_t *g = luaL_checkudata(L, 1, VKB_GT);
    int64_t k = luaL_checkinteger(L, 3);
    luaL_argcheck(L, k >= 1 && k <= g->k, 3, "k out of the ground truth's range");
    result_fn get;
    int64_t nq;
    if (luaL_testudata(L, 2, VKB_LABELS)) {
        get = from_labels;
        nq = ((labels_t *)lua_touserdata(L, 2))->nq;
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        get = from_results;
        nq = (int64_t)lua_rawlen(L, 2);
    }
    luaL_argcheck(L, nq == g->nq, 2, "not one result per ground-truth query");
    lua_settop(L, 3);
    int64_t r1 = 0, rk = 0, inter = 0;
    for (int64_t i = 0; i < nq; i++) {
        const int32_t *t = g->ids + i * g->k;
        for (int64_t j = 0; j < k; j++) {
            int64_t id = get(L, 2, i, j, k);
            lua_settop(L, 3);
            if (id < 0)
                break;
            if (id == t[0]) {
                rk++;
                if (j == 0)
                    r1++;
            }
            for (int64_t m = 0; m < k; m++)
                if (t[m] == id) {
                    inter++;
                    break;
                }
        }
    }
    lua_pushnumber(L, (double)r1 / (double)nq);
    lua_pushnumber(L, (double)rk / (double)nq);
    lua_pushnumber(L, (double)inter / (double)(nq * k));
    return 3;
}

/* ---------- SQLite: the insert bound ---------- */

typedef struct blobs {
    char *p;          /* all blobs, back to back */
    size_t *off;      /* n + 1 offsets */
    int64_t n;
} blobs;

static void blobs_free(blobs *b)
{
    free(b->p);
    free(b->off);
}

/* compresses every row of m the way VekterDB stores it */
static int compress_rows(const lvk_mat *m, int level, blobs *out)
{
    size_t bound = vk_codec_bound(m->d);
    out->n = m->n;
    out->p = malloc(bound * (size_t)(m->n ? m->n : 1));
    out->off = malloc(sizeof(size_t) * (size_t)(m->n + 1));
    if (!out->p || !out->off)
        return -1;
    size_t at = 0;
    for (int64_t i = 0; i < m->n; i++) {
        out->off[i] = at;
        size_t len = vk_encode(m->data + i * m->d, m->d, level, out->p + at, bound);
        if (!len)
            return -1;
        at += len;
    }
    out->off[m->n] = at;
    return 0;
}

/* names[1..n] as C strings (they stay referenced by the Lua table) */
static const char **check_names(lua_State *L, int idx, int64_t n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    luaL_argcheck(L, (int64_t)lua_rawlen(L, idx) >= n, idx, "fewer names than rows");
    const char **s = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (int64_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        s[i] = lua_tostring(L, -1);
        if (!s[i])
            luaL_error(L, "name %d is not a string", (int)i + 1);
        lua_pop(L, 1);
    }
    return s;
}

/* sqlite_bound(path, ddl, insert_sql, matrix, names, level)
 *   -> seconds to insert, seconds to compress (done first, not in the bound),
 *      CPU seconds to insert
 * Opens the file as VekterDB does (WAL, synchronous=FULL), runs the DDL
 * statements, then inserts every row (idx, blob, name) with one prepared
 * statement in one transaction. */
static int b_sqlite_bound(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *ins = luaL_checkstring(L, 3);
    const lvk_mat *m = checkmat(L, 4);
    int level = (int)luaL_optinteger(L, 6, 1);
    const char **names = check_names(L, 5, m->n);
    blobs b = {0};
    double t0 = now();
    if (compress_rows(m, level, &b)) {
        blobs_free(&b);
        return luaL_error(L, "compression failed: %s", vk_errmsg());
    }
    double t_compress = now() - t0;
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    char err[512] = "";
    int rc = sqlite3_open(path, &h);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL, NULL);
    for (int i = 1; rc == SQLITE_OK && i <= (int)lua_rawlen(L, 2); i++) {
        lua_rawgeti(L, 2, i);
        rc = sqlite3_exec(h, lua_tostring(L, -1), NULL, NULL, NULL);
        lua_pop(L, 1);
    }
    double t1 = now(), c1 = cpu();
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h, ins, -1, &st, NULL);
    for (int64_t i = 0; rc == SQLITE_OK && i < m->n; i++) {
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_blob(st, 2, b.p + b.off[i], (int)(b.off[i + 1] - b.off[i]), SQLITE_STATIC);
        sqlite3_bind_text(st, 3, names[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? sqlite3_reset(st) : rc;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    double t_insert = now() - t1, c_insert = cpu() - c1;
    if (rc != SQLITE_OK)
        snprintf(err, sizeof err, "%s", h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
    sqlite3_close(h);
    blobs_free(&b);
    if (*err)
        return luaL_error(L, "SQLite bound: %s", err);
    lua_pushnumber(L, t_insert);
    lua_pushnumber(L, t_compress);
    lua_pushnumber(L, c_insert);
    return 3;
}

/* ---------- PostgreSQL: the insert bound ---------- */

static void put_be16(char *p, int v)
{
    p[0] = (char)((v >> 8) & 0xff);
    p[1] = (char)(v & 0xff);
}

static void put_be32(char *p, int64_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)((v >> (24 - 8 * i)) & 0xff);
}

static void put_be64(char *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(((uint64_t)v >> (56 - 8 * i)) & 0xff);
}

/* runs one statement; fills err on failure */
static int pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN;
    if (!ok)
        snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

/* a MySQL connection from the table at index i: host, port, user, password, database */
static MYSQL *my_open(lua_State *L, int i, char *err, size_t errlen)
{
    luaL_checktype(L, i, LUA_TTABLE);
    const char *f[5];
    static const char *const keys[] = {"host", "port", "user", "password", "database"};
    for (int k = 0; k < 5; k++) {
        lua_getfield(L, i, keys[k]);
        f[k] = lua_tostring(L, -1);   /* kept alive by the table */
        lua_pop(L, 1);
    }
    MYSQL *my = mysql_init(NULL);
    mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(my, f[0], f[2], f[3], f[4], f[1] ? (unsigned)atoi(f[1]) : 0, NULL, 0)) {
        snprintf(err, errlen, "%s", mysql_error(my));
        mysql_close(my);
        return NULL;
    }
    return my;
}

/* my_exec(conn, sql): runs one statement on a MySQL connection of its own */
static int b_my_exec(lua_State *L)
{
    const char *sql = luaL_checkstring(L, 2);
    char err[512] = "";
    MYSQL *my = my_open(L, 1, err, sizeof err);
    if (my && mysql_query(my, sql))
        snprintf(err, sizeof err, "%s", mysql_error(my));
    mysql_close(my);
    if (*err)
        return luaL_error(L, "MySQL: %s", err);
    return 0;
}

#define MY_BOUND_ROWS 1000

/* my_bound(conn, ddl, table, matrix, names, level)
 *   -> seconds to insert, CPU seconds to insert (of this process)
 * Runs the DDL statements, then inserts every row (idx, blob, name),
 * compressed beforehand, with a prepared INSERT of 1000 rows bound straight
 * from the buffers, in one transaction over one connection. */
static int b_my_bound(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *table = luaL_checkstring(L, 3);
    const lvk_mat *m = checkmat(L, 4);
    int level = (int)luaL_optinteger(L, 6, 1);
    const char **names = check_names(L, 5, m->n);
    blobs b = {0};
    char err[512] = "";
    if (compress_rows(m, level, &b)) {
        blobs_free(&b);
        return luaL_error(L, "compression failed: %s", vk_errmsg());
    }
    MYSQL *my = my_open(L, 1, err, sizeof err);
    int rc = my ? 0 : -1;
    for (int i = 1; !rc && i <= (int)lua_rawlen(L, 2); i++) {
        lua_rawgeti(L, 2, i);
        if (mysql_query(my, lua_tostring(L, -1))) {
            snprintf(err, sizeof err, "%s", mysql_error(my));
            rc = -1;
        }
        lua_pop(L, 1);
    }
    /* the statement of a full block, and one for the rest */
    MYSQL_STMT *st[2] = {NULL, NULL};
    int64_t rows[2] = {MY_BOUND_ROWS, m->n % MY_BOUND_ROWS};
    for (int k = 0; k < 2 && !rc; k++) {
        if (!rows[k])
            continue;
        size_t cap = 128 + (size_t)rows[k] * 12;
        char *sql = malloc(cap);
        size_t n = (size_t)snprintf(sql, cap, "INSERT INTO `%s` (`idx`, `vector`, `name`) VALUES ", table);
        for (int64_t r = 0; r < rows[k]; r++)
            n += (size_t)snprintf(sql + n, cap - n, r ? ",(?,?,?)" : "(?,?,?)");
        st[k] = mysql_stmt_init(my);
        if (mysql_stmt_prepare(st[k], sql, n)) {
            snprintf(err, sizeof err, "%s", mysql_stmt_error(st[k]));
            rc = -1;
        }
        free(sql);
    }
    MYSQL_BIND *bind = calloc(3 * MY_BOUND_ROWS, sizeof *bind);
    unsigned long *lens = calloc(2 * MY_BOUND_ROWS, sizeof *lens);
    long long *ids = calloc(MY_BOUND_ROWS, sizeof *ids);
    double t0 = now(), c0 = cpu();
    if (!rc && mysql_query(my, "START TRANSACTION")) {
        snprintf(err, sizeof err, "%s", mysql_error(my));
        rc = -1;
    }
    for (int64_t from = 0; !rc && from < m->n; from += MY_BOUND_ROWS) {
        int k = m->n - from >= MY_BOUND_ROWS ? 0 : 1;
        for (int64_t r = 0; r < rows[k]; r++) {
            int64_t i = from + r;
            MYSQL_BIND *x = &bind[3 * r];
            ids[r] = i;
            x[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &ids[r]};
            lens[2 * r] = (unsigned long)(b.off[i + 1] - b.off[i]);
            x[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_BLOB, .buffer = b.p + b.off[i],
                                .buffer_length = lens[2 * r], .length = &lens[2 * r]};
            lens[2 * r + 1] = (unsigned long)strlen(names[i]);
            x[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = (void *)names[i],
                                .buffer_length = lens[2 * r + 1], .length = &lens[2 * r + 1]};
        }
        if (mysql_stmt_bind_param(st[k], bind) || mysql_stmt_execute(st[k])) {
            snprintf(err, sizeof err, "%s", mysql_stmt_error(st[k]));
            rc = -1;
        }
    }
    if (!rc && mysql_query(my, "COMMIT")) {
        snprintf(err, sizeof err, "%s", mysql_error(my));
        rc = -1;
    }
    double t = now() - t0, ct = cpu() - c0;
    for (int k = 0; k < 2; k++)
        if (st[k])
            mysql_stmt_close(st[k]);
    free(bind);
    free(lens);
    free(ids);
    mysql_close(my);
    blobs_free(&b);
    if (rc)
        return luaL_error(L, "MySQL bound: %s", err);
    lua_pushnumber(L, t);
    lua_pushnumber(L, ct);
    return 2;
}

/* pg_exec(conninfo, sql): runs one statement on a connection of its own */
static int b_pg_exec(lua_State *L)
{
    const char *conninfo = luaL_checkstring(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    char err[512] = "";
    PGconn *c = PQconnectdb(conninfo);
    int rc = PQstatus(c) == CONNECTION_OK ? 0 : -1;
    if (rc)
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
    else
        rc = pg_exec(c, sql, err, sizeof err);
    PQfinish(c);
    if (rc)
        return luaL_error(L, "PostgreSQL: %s", err);
    return 0;
}

/* pg_bound(conninfo, ddl, table, matrix, names, level)
 *   -> seconds to insert, CPU seconds to insert (of this process)
 * Runs the DDL statements, then sends every row (idx, blob, name), compressed
 * beforehand, with one binary COPY in one transaction over one connection:
 * the fastest way libpq has to load rows. */
static int b_pg_bound(lua_State *L)
{
    const char *conninfo = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *table = luaL_checkstring(L, 3);
    const lvk_mat *m = checkmat(L, 4);
    int level = (int)luaL_optinteger(L, 6, 1);
    const char **names = check_names(L, 5, m->n);
    blobs b = {0};
    char err[512] = "";
    if (compress_rows(m, level, &b)) {
        blobs_free(&b);
        return luaL_error(L, "compression failed: %s", vk_errmsg());
    }
    PGconn *c = PQconnectdb(conninfo);
    int rc = PQstatus(c) == CONNECTION_OK ? 0 : -1;
    if (rc)
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
    for (int i = 1; !rc && i <= (int)lua_rawlen(L, 2); i++) {
        lua_rawgeti(L, 2, i);
        rc = pg_exec(c, lua_tostring(L, -1), err, sizeof err);
        lua_pop(L, 1);
    }
    char sql[512];
    snprintf(sql, sizeof sql, "COPY \"%s\" (\"idx\", \"vector\", \"name\") FROM STDIN (FORMAT binary)",
             table);
    /* one COPY message per row: header bytes, then the three fields */
    size_t cap = 64 + (b.n ? b.off[b.n] / (size_t)b.n : 0) * 2 + 4096;
    char *row = malloc(cap);
    double t0 = now(), c0 = cpu();
    if (!rc)
        rc = pg_exec(c, "BEGIN", err, sizeof err);
    if (!rc)
        rc = pg_exec(c, sql, err, sizeof err);
    if (!rc) {
        static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
        rc = PQputCopyData(c, header, 19) == 1 ? 0 : -1;
    }
    for (int64_t i = 0; !rc && i < m->n; i++) {
        size_t blen = b.off[i + 1] - b.off[i], nlen = strlen(names[i]);
        size_t need = 2 + 4 + 8 + 4 + blen + 4 + nlen;
        if (need > cap) {
            char *bigger = realloc(row, need);
            if (!bigger) {
                rc = -1;
                snprintf(err, sizeof err, "out of memory");
                break;
            }
            row = bigger;
            cap = need;
        }
        char *p = row;
        put_be16(p, 3);
        p += 2;
        put_be32(p, 8);
        put_be64(p + 4, i);
        p += 12;
        put_be32(p, (int64_t)blen);
        memcpy(p + 4, b.p + b.off[i], blen);
        p += 4 + blen;
        put_be32(p, (int64_t)nlen);
        memcpy(p + 4, names[i], nlen);
        p += 4 + nlen;
        rc = PQputCopyData(c, row, (int)(p - row)) == 1 ? 0 : -1;
    }
    if (!rc) {
        char trailer[2];
        put_be16(trailer, -1);
        rc = PQputCopyData(c, trailer, 2) == 1 && PQputCopyEnd(c, NULL) == 1 ? 0 : -1;
    }
    if (!rc) {
        PGresult *r;
        while ((r = PQgetResult(c))) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && !rc) {
                rc = -1;
                snprintf(err, sizeof err, "%s", PQerrorMessage(c));
            }
            PQclear(r);
        }
    } else if (!*err) {
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
    }
    if (!rc)
        rc = pg_exec(c, "COMMIT", err, sizeof err);
    double t = now() - t0, ct = cpu() - c0;
    free(row);
    PQfinish(c);
    blobs_free(&b);
    if (rc)
        return luaL_error(L, "PostgreSQL bound: %s", err);
    lua_pushnumber(L, t);
    lua_pushnumber(L, ct);
    return 2;
}

/* ---------- the engine's batch API from C: what a bulk binding reaches ---------- */

/* engine_bulk(url, table, matrix, names, batch_size, level) -> seconds, CPU seconds
 * Creates table (idx, vector, name TEXT indexed) and inserts every row
 * through vk_batch_* and vk_db_insert, batch_size rows per transaction:
 * no Lua value per record. */
static int b_engine_bulk(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    const char *table = luaL_checkstring(L, 2);
    const lvk_mat *m = checkmat(L, 3);
    int64_t batch = luaL_optinteger(L, 5, 10000);
    int level = (int)luaL_optinteger(L, 6, 1);
    const char **names = check_names(L, 4, m->n);
    vk_db *db = NULL;
    vk_batch *b = NULL;
    vk_column cols[1] = {{.name = "name", .type = VK_TEXT, .nullable = 1, .index = 1}};
    int rc = vk_db_open(&db, url, NULL, 0);
    if (rc == VK_OK)
        rc = vk_db_use_table(db, NULL, table, "idx", "vector", cols, 1);
    int name_col = rc == VK_OK ? vk_db_column_index(db, "name") : -1;
    int idx_col = rc == VK_OK ? vk_db_column_index(db, "idx") : -1;
    if (rc == VK_OK && !(b = vk_batch_new(db, level)))
        rc = vk_errcode();
    double t0 = now(), c0 = cpu();
    for (int64_t i = 0; rc == VK_OK && i < m->n; i++) {
        vk_value idx = {.type = VK_INT, .i = i};
        vk_value name = {.type = VK_TEXT, .s = names[i], .len = strlen(names[i])};
        vk_batch_begin_row(b);
        rc = vk_batch_set(b, idx_col, &idx);
        if (rc == VK_OK)
            rc = vk_batch_set(b, name_col, &name);
        if (rc == VK_OK)
            rc = vk_batch_set_vector(b, m->data + i * m->d, m->d);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);
        else
            vk_batch_abort_row(b);
        if (rc == VK_OK && (vk_batch_rows(b) >= batch || i == m->n - 1)) {
            rc = vk_db_insert(db, b);
            vk_batch_clear(b);
        }
    }
    double t = now() - t0, c = cpu() - c0;
    char err[512];
    snprintf(err, sizeof err, "%s", vk_errmsg());
    vk_batch_free(b);
    vk_db_close(db);
    if (rc)
        return luaL_error(L, "engine bulk insert: %s", err);
    lua_pushnumber(L, t);
    lua_pushnumber(L, c);
    return 2;
}

/* ---------- bare FAISS ---------- */

static int faiss_error(lua_State *L, const char *what)
{
    const char *m = faiss_get_last_error();
    return luaL_error(L, "%s: %s", what, m ? m : "unknown FAISS error");
}

static int set_params(FaissIndex *fi, const char *params)
{
    if (!params || !*params)
        return 0;
    FaissParameterSpace *ps = NULL;
    int rc = faiss_ParameterSpace_new(&ps);
    if (rc == 0)
        rc = faiss_ParameterSpace_set_index_parameters(ps, fi, params);
    faiss_ParameterSpace_free(ps);
    return rc;
}

/* faiss_build(factory, metric, matrix, add_params [, path])
 *   -> seconds to train, seconds to add, seconds to write (path given),
 *      CPU seconds to train and add
 * FAISS alone, from memory: index_factory, train on every row, set
 * add_params (e.g. "quantizer_efSearch=25"), add every row. */
static int b_faiss_build(lua_State *L)
{
    const char *factory = luaL_checkstring(L, 1);
    const char *metric = luaL_checkstring(L, 2);
    const lvk_mat *m = checkmat(L, 3);
    const char *params = luaL_optstring(L, 4, NULL);
    const char *path = luaL_optstring(L, 5, NULL);
    FaissIndex *fi = NULL;
    if (faiss_index_factory(&fi, (int)m->d, factory,
                            !strcmp(metric, "l2") ? METRIC_L2 : METRIC_INNER_PRODUCT))
        return faiss_error(L, "index_factory");
    double t0 = now(), c0 = cpu();
    int rc = faiss_Index_train(fi, m->n, m->data);
    double t1 = now();
    if (rc == 0)
        rc = set_params(fi, params);
    if (rc == 0)
        rc = faiss_Index_add(fi, m->n, m->data);
    double t2 = now(), c2 = cpu();
    if (rc == 0 && path)
        rc = faiss_write_index_fname(fi, path);
    double t3 = now();
    faiss_Index_free(fi);
    if (rc)
        return faiss_error(L, "FAISS train + add");
    lua_pushnumber(L, t1 - t0);
    lua_pushnumber(L, t2 - t1);
    lua_pushnumber(L, path ? t3 - t2 : 0);
    lua_pushnumber(L, c2 - c0);
    return 4;
}

/* faiss_read(path [, mmap]) -> Index; mmap: FAISS 1.7.3's C++ IO_FLAG_MMAP,
 * as engine/faiss_index.c passes it */
static int b_faiss_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int flags = lua_toboolean(L, 2) ? (8 | 0x646f0000) : 0;
    index_t *ix = lua_newuserdatauv(L, sizeof *ix, 0);
    ix->fi = NULL;
    luaL_setmetatable(L, VKB_INDEX);
    if (faiss_read_index_fname(path, flags, &ix->fi))
        return faiss_error(L, path);
    return 1;
}

static index_t *checkindex(lua_State *L, int idx)
{
    index_t *ix = luaL_checkudata(L, idx, VKB_INDEX);
    if (!ix->fi)
        luaL_error(L, "attempt to use a closed index");
    return ix;
}

static int ix_gc(lua_State *L)
{
    index_t *ix = luaL_checkudata(L, 1, VKB_INDEX);
    if (ix->fi)
        faiss_Index_free(ix->fi);
    ix->fi = NULL;
    return 0;
}

/* ix:search(matrix, k [, params]) -> seconds, Labels, CPU seconds */
static int ix_search(lua_State *L)
{
    index_t *ix = checkindex(L, 1);
    const lvk_mat *q = checkmat(L, 2);
    int64_t k = luaL_checkinteger(L, 3);
    const char *params = luaL_optstring(L, 4, NULL);
    luaL_argcheck(L, k >= 1, 3, "k must be positive");
    if (set_params(ix->fi, params))
        return faiss_error(L, "search parameters");
    labels_t *lb = lua_newuserdatauv(L, sizeof(labels_t) + sizeof(int64_t) * (size_t)(q->n * k), 0);
    lb->nq = q->n;
    lb->k = k;
    luaL_setmetatable(L, VKB_LABELS);
    float *dist = malloc(sizeof(float) * (size_t)(q->n * k + 1));
    if (!dist)
        return luaL_error(L, "out of memory");
    double t0 = now(), c0 = cpu();
    int rc = faiss_Index_search(ix->fi, q->n, q->data, k, dist, lb->ids);
    double t = now() - t0, c = cpu() - c0;
    free(dist);
    if (rc)
        return faiss_error(L, "search");
    lua_pushnumber(L, t);
    lua_insert(L, -2);
    lua_pushnumber(L, c);
    return 3;
}

/* ---------- nearest_neighbors: the bound ---------- */

/* nn_bound(db_path, select_sql, names, ix, k, params) -> seconds, Labels, CPU seconds
 * For each name: one lookup with a prepared statement (select_sql takes the
 * name as ?1 and returns idx, vector), the vector decoded into one buffer;
 * then one FAISS search of all of them for k + 1 neighbors (the record
 * itself comes back first). */
static int b_nn_bound(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    index_t *ix = checkindex(L, 4);
    int64_t k = luaL_checkinteger(L, 5);
    const char *params = luaL_optstring(L, 6, NULL);
    int64_t n = (int64_t)lua_rawlen(L, 3);
    const char **names = check_names(L, 3, n);
    int64_t d = faiss_Index_d(ix->fi);
    if (set_params(ix->fi, params))
        return faiss_error(L, "search parameters");
    labels_t *lb = lua_newuserdatauv(L, sizeof(labels_t) + sizeof(int64_t) * (size_t)(n * (k + 1)), 0);
    lb->nq = n;
    lb->k = k + 1;
    luaL_setmetatable(L, VKB_LABELS);
    float *x = malloc(sizeof(float) * (size_t)(n * d + 1));
    float *dist = malloc(sizeof(float) * (size_t)(n * (k + 1) + 1));
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    double t0 = now(), c0 = cpu();
    int rc = x && dist ? sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) : SQLITE_NOMEM;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    int64_t got = 0;
    for (int64_t i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (got < n && vk_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                     x + got * d, d) == VK_OK)
                got++;
        }
        rc = rc == SQLITE_DONE ? sqlite3_reset(st) : rc;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    char err[512] = "";
    if (rc != SQLITE_OK)
        snprintf(err, sizeof err, "%s", h ? sqlite3_errmsg(h) : "out of memory");
    sqlite3_close(h);
    int frc = *err ? 0 : faiss_Index_search(ix->fi, got, x, k + 1, dist, lb->ids);
    double t = now() - t0, c = cpu() - c0;
    free(x);
    free(dist);
    if (*err)
        return luaL_error(L, "nearest_neighbors bound: %s", err);
    if (frc)
        return faiss_error(L, "search");
    if (got != n)
        return luaL_error(L, "nearest_neighbors bound: %d of %d names found", (int)got, (int)n);
    lua_pushnumber(L, t);
    lua_insert(L, -2);
    lua_pushnumber(L, c);
    return 3;
}

/* ---------- where a search's time goes ---------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* engine_search(url, table, index_path, queries, k, k_extra, params) -> seconds, CPU seconds
 * vk_db_search alone (FAISS, fetch, rerank), without the Lua binding's
 * result tables */
static int b_engine_search(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    const char *table = luaL_checkstring(L, 2);
    const char *path = luaL_checkstring(L, 3);
    const lvk_mat *q = checkmat(L, 4);
    int64_t k = luaL_checkinteger(L, 5);
    vk_search_opts o = {.k_extra = luaL_checkinteger(L, 6), .rerank = 1,
                        .params = luaL_optstring(L, 7, NULL)};
    vk_db *db = NULL;
    vk_index *ix = NULL;
    vk_hits h = {0};
    double t = 0, c = 0;
    int rc = vk_db_open(&db, url, NULL, 0);
    if (rc == VK_OK)
        rc = vk_db_use_table(db, NULL, table, "idx", "vector", NULL, 0);
    if (rc == VK_OK)
        rc = vk_index_read(&ix, path, 0);
    if (rc == VK_OK) {
        vk_db_attach(db, ix, NULL);
        double t0 = now(), c0 = cpu();
        rc = vk_db_search(db, q->data, q->n, k, &o, &h);
        t = now() - t0;
        c = cpu() - c0;
    }
    char err[512];
    snprintf(err, sizeof err, "%s", vk_errmsg());
    vk_hits_free(&h);
    vk_index_release(ix);
    vk_db_close(db);
    if (rc)
        return luaL_error(L, "engine search: %s", err);
    lua_pushnumber(L, t);
    lua_pushnumber(L, c);
    return 2;
}

/* the unique candidate ids of queries [q0, q1), sorted, as rerank takes them */
static int64_t chunk_ids(const labels_t *lb, int64_t q0, int64_t q1, int64_t *u)
{
    int64_t n = 0;
    for (int64_t i = q0 * lb->k; i < q1 * lb->k; i++)
        if (lb->ids[i] >= 0)
            u[n++] = lb->ids[i];
    qsort(u, (size_t)n, sizeof(int64_t), cmp_i64);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (m == 0 || u[m - 1] != u[i])
            u[m++] = u[i];
    return m;
}

#define PROBE_CHUNK 1024   /* queries per rerank chunk, as engine/search_rerank.c */

/* plain SQLite: one prepared statement, the blob decoded where it lies */
static int sqlite_fetch(sqlite3 *h, const char *sql, const labels_t *lb, int64_t d, int64_t *u,
                        float *x, double *t)
{
    sqlite3_stmt *st = NULL;
    double t0 = now();
    int rc = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    for (int64_t q0 = 0; rc == SQLITE_OK && q0 < lb->nq; q0 += PROBE_CHUNK) {
        int64_t q1 = q0 + PROBE_CHUNK < lb->nq ? q0 + PROBE_CHUNK : lb->nq;
        int64_t m = chunk_ids(lb, q0, q1, u);
        for (int64_t i = 0; rc == SQLITE_OK && i < m; i++) {
            sqlite3_bind_int64(st, 1, u[i]);
            if ((rc = sqlite3_step(st)) == SQLITE_ROW)
                rc = vk_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                               x + i * d, d) == VK_OK ? SQLITE_OK : SQLITE_CORRUPT;
            else if (rc == SQLITE_DONE)
                rc = SQLITE_NOTFOUND;
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    *t = now() - t0;
    return rc;
}

/* probe_rerank(db_path, table, labels, queries, copy_path) -> table of seconds
 * The steps of a rerank, each timed over every candidate of labels (the
 * FAISS results at k + k_extra), in chunks of 1024 queries:
 *   engine_fetch      vk_db_fetch_vectors (the engine's driver fetch + decode)
 *   sqlite_fetch      one prepared SELECT per id, decoded in place
 *   sqlite_fetch_rowid  the same on a copy whose idx is INTEGER PRIMARY KEY
 *                     (the rowid: one B-tree instead of index + table)
 *   metric            vk_metric_value for as many (query, vector) pairs */
static int b_probe_rerank(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *table = luaL_checkstring(L, 2);
    const labels_t *lb = luaL_checkudata(L, 3, VKB_LABELS);
    const lvk_mat *q = checkmat(L, 4);
    const char *copy = luaL_checkstring(L, 5);
    luaL_argcheck(L, q->n == lb->nq, 4, "one query per row of labels");
    int64_t d = q->d, per = PROBE_CHUNK * lb->k;
    int64_t *u = malloc(sizeof(int64_t) * (size_t)per);
    float *x = malloc(sizeof(float) * (size_t)(per * d));
    if (!u || !x) {
        free(u);
        free(x);
        return luaL_error(L, "out of memory");
    }
    char url[4200], sql[1024], err[512] = "";
    double te = 0, ts = 0, tr = 0, tm = 0;
    /* the engine */
    snprintf(url, sizeof url, "sqlite:///%s", path);
    vk_db *db = NULL;
    int rc = vk_db_open(&db, url, NULL, 0);
    if (rc == VK_OK)
        rc = vk_db_use_table(db, NULL, table, "idx", "vector", NULL, 0);
    double t0 = now();
    for (int64_t q0 = 0; rc == VK_OK && q0 < lb->nq; q0 += PROBE_CHUNK) {
        int64_t q1 = q0 + PROBE_CHUNK < lb->nq ? q0 + PROBE_CHUNK : lb->nq;
        int64_t m = chunk_ids(lb, q0, q1, u);
        rc = vk_db_fetch_vectors(db, u, m, x);
    }
    te = now() - t0;
    if (rc)
        snprintf(err, sizeof err, "engine fetch: %s", vk_errmsg());
    vk_db_close(db);
    /* plain SQLite, the same table, then a rowid copy */
    sqlite3 *h = NULL;
    if (!*err && sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        snprintf(sql, sizeof sql, "SELECT \"vector\" FROM \"%s\" WHERE \"idx\" = ?1", table);
        if (sqlite_fetch(h, sql, lb, d, u, x, &ts) != SQLITE_OK)
            snprintf(err, sizeof err, "SQLite fetch: %s", sqlite3_errmsg(h));
    }
    sqlite3_close(h);
    h = NULL;
    remove(copy);
    if (!*err && sqlite3_open(copy, &h) == SQLITE_OK) {
        char ddl[5000];
        snprintf(ddl, sizeof ddl,
                 "ATTACH '%s' AS src; CREATE TABLE \"%s\" (\"idx\" INTEGER PRIMARY KEY, "
                 "\"vector\" BLOB); INSERT INTO \"%s\" SELECT \"idx\", \"vector\" FROM src.\"%s\"; "
                 "DETACH src",
                 path, table, table, table);
        if (sqlite3_exec(h, ddl, NULL, NULL, NULL) != SQLITE_OK)
            snprintf(err, sizeof err, "SQLite rowid copy: %s", sqlite3_errmsg(h));
    }
    sqlite3_close(h);
    h = NULL;
    /* a new connection, as for the table: no page of the copy cached */
    if (!*err && sqlite3_open_v2(copy, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite_fetch(h, sql, lb, d, u, x, &tr) != SQLITE_OK)
        snprintf(err, sizeof err, "SQLite rowid copy: %s", sqlite3_errmsg(h));
    sqlite3_close(h);
    remove(copy);
    /* the exact metric, every (query, candidate) pair, from x's first rows */
    if (!*err) {
        volatile float sink = 0;
        t0 = now();
        for (int64_t i = 0; i < lb->nq; i++)
            for (int64_t j = 0; j < lb->k; j++)
                sink += vk_metric_value(VK_METRIC_L2, q->data + i * d, x + j * d, d);
        tm = now() - t0;
        (void)sink;
    }
    free(u);
    free(x);
    if (*err)
        return luaL_error(L, "probe_rerank: %s", err);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, te);
    lua_setfield(L, -2, "engine_fetch");
    lua_pushnumber(L, ts);
    lua_setfield(L, -2, "sqlite_fetch");
    lua_pushnumber(L, tr);
    lua_setfield(L, -2, "sqlite_fetch_rowid");
    lua_pushnumber(L, tm);
    lua_setfield(L, -2, "metric");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"now", b_now},
    {"cpu", b_cpu},
    {"mem_reset", b_mem_reset},
    {"mem", b_mem},
    {"machine", b_machine},
    {"gt", b_gt},
    {"recall", b_recall},
    {"sqlite_bound", b_sqlite_bound},
    {"pg_bound", b_pg_bound},
    {"pg_exec", b_pg_exec},
    {"my_bound", b_my_bound},
    {"my_exec", b_my_exec},
    {"engine_bulk", b_engine_bulk},
    {"faiss_build", b_faiss_build},
    {"faiss_read", b_faiss_read},
    {"nn_bound", b_nn_bound},
    {"engine_search", b_engine_search},
    {"probe_rerank", b_probe_rerank},
    {NULL, NULL}};

static const luaL_Reg index_methods[] = {{"search", ix_search}, {NULL, NULL}};

int luaopen_vkbench(lua_State *L);

__attribute__((visibility("default"))) int luaopen_vkbench(lua_State *L)
{
    /* as VekterDB's module does: OpenBLAS's threads fight FAISS's OpenMP
     * threads, so one BLAS thread unless OPENBLAS_NUM_THREADS says otherwise */
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    luaL_newmetatable(L, VKB_GT);
    luaL_newmetatable(L, VKB_LABELS);
    luaL_newmetatable(L, VKB_INDEX);
    lua_pushcfunction(L, ix_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, index_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 3);
    luaL_newlib(L, funcs);
    return 1;
}
