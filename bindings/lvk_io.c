/* lvk_io.c: vector files for Lua (engine/vk_io.h).  A VectorFile hands out
 * float32 matrices by row range or in chunks, so a file larger than memory
 * can be streamed; a VectorWriter appends rows to an .fvecs or .npy file
 * that appears whole when it is closed.  Also the two helpers progress
 * reporting needs: isatty and a monotonic clock.
 *
 * Row numbers are 0-based (row r is the record with idx r when a file is
 * imported from its start); a bad argument raises, and so does a file that
 * cannot be opened or is malformed, with the engine's message. */
#include "lvk.h"
#include "vk_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Lua 5.1 and LuaJIT name it in lualib.h, which 5.4 does not need */
#ifndef LUA_FILEHANDLE
#define LUA_FILEHANDLE "FILE*"
#endif

#define LVK_VFILE "vekterdb.VectorFile"
#define LVK_VWRITER "vekterdb.VectorWriter"

typedef struct lvk_vfile {
    vk_vfile *f;
} lvk_vfile;

typedef struct lvk_vwriter {
    vk_vwriter *w;
    int64_t d, rows;
    int done;   /* closed or aborted */
} lvk_vwriter;

/* ---------- arguments ---------- */

static vk_vformat check_format(lua_State *L, int idx, vk_vformat dflt)
{
    if (lua_isnoneornil(L, idx))
        return dflt;
    vk_vformat f;
    if (vk_vformat_parse(luaL_checkstring(L, idx), &f))
        lvk_argerror(L, idx, vk_errmsg());
    return f;
}

static int64_t opt_int(lua_State *L, int idx, int64_t dflt, int64_t min, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return dflt;
    int64_t v;
    if (!lvk_tointeger(L, idx, &v) || v < min)
        lvk_argerror(L, idx, what);
    return v;
}

/* ---------- VectorFile ---------- */

static lvk_vfile *tovfile(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LVK_VFILE);
}

static vk_vfile *checkvfile(lua_State *L, int idx)
{
    lvk_vfile *p = tovfile(L, idx);
    if (!p->f)
        lvk_errorc(L, "state", "attempt to use a closed vector file");
    return p->f;
}

/* a closed handle first, then the file: an error leaves nothing open */
static vk_vfile *push_vfile(lua_State *L, const char *path, vk_vformat fmt, const char *dataset)
{
    lvk_vfile *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->f = NULL;
    luaL_getmetatable(L, LVK_VFILE);
    lua_setmetatable(L, -2);
    if (vk_vfile_open(&p->f, path, fmt, dataset))
        lvk_error(L);
    if (vk_vfile_format(p->f) == VK_VF_NPY && vk_vfile_dtype(p->f) == VK_DT_F64) {
        lua_pushfstring(L, "%s holds float64 values: they are read as float32 (VekterDB's vectors are float32)",
                        vk_vfile_path(p->f));
        lvk_warn(L, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return p->f;
}

/* open_vectors(path [, { format =, dataset = }]) -> VectorFile */
static int io_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    vk_vformat fmt = VK_VF_AUTO;
    const char *dataset = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "format");
        fmt = check_format(L, -1, VK_VF_AUTO);
        lua_getfield(L, 2, "dataset");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return lvk_argerror(L, 2, "dataset must be a string");
        dataset = lua_tostring(L, -1);   /* stays on the stack */
    }
    push_vfile(L, path, fmt, dataset);
    return 1;
}

static int vf_close(lua_State *L)
{
    lvk_vfile *p = tovfile(L, 1);
    vk_vfile_close(p->f);
    p->f = NULL;
    return 0;
}

/* [first, first + count) cut at the end of the file */
static void row_range(lua_State *L, vk_vfile *f, int i, int64_t *first, int64_t *count)
{
    int64_t rows = vk_vfile_rows(f);
    *first = opt_int(L, i, 0, 0, "first row must be a non-negative integer (0-based)");
    *count = opt_int(L, i + 1, rows, 0, "count must be a non-negative integer");
    if (*first > rows)
        lvk_errorf(L, "%s: row %lld is past the end: the file holds %lld rows", vk_vfile_path(f),
                   (long long)*first, (long long)rows);
    if (*count > rows - *first)
        *count = rows - *first;
}

static lvk_mat *push_rows(lua_State *L, vk_vfile *f, int64_t first, int64_t count)
{
    lvk_mat *m = lvk_newmat(L, count, vk_vfile_dim(f), 0);
    int64_t got;
    if (vk_vfile_read(f, first, count, m->data, &got))
        lvk_error(L);
    return m;
}

static void push_ids(lua_State *L, vk_vfile *f, int64_t first, int64_t count)
{
    int64_t d = vk_vfile_dim(f);
    if (count == 0) {
        lua_newtable(L);
        return;
    }
    void **slot = lvk_box(L, free);
    int64_t got, *ids = malloc(sizeof(int64_t) * (size_t)(count * d));
    if (!ids)
        lvk_errorf(L, "out of memory reading %lld x %lld ids", (long long)count, (long long)d);
    *slot = ids;
    if (vk_vfile_read_i64(f, first, count, ids, &got))
        lvk_error(L);
    lua_createtable(L, (int)count, 0);
    for (int64_t i = 0; i < count; i++) {
        lua_createtable(L, (int)d, 0);
        for (int64_t j = 0; j < d; j++) {
            lvk_pushint64(L, ids[i * d + j]);
            lua_rawseti(L, -2, (lua_Integer)j + 1);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lvk_box_release(L, -2);
    lua_remove(L, -2);
}

/* vf:read([first [, count]]) -> matrix (float32) */
static int vf_read(lua_State *L)
{
    vk_vfile *f = checkvfile(L, 1);
    int64_t first, count;
    row_range(L, f, 2, &first, &count);
    push_rows(L, f, first, count);
    return 1;
}

/* vf:read_ids([first [, count]]) -> { {id, ...}, ... } for integer files */
static int vf_read_ids(lua_State *L)
{
    vk_vfile *f = checkvfile(L, 1);
    int64_t first, count;
    row_range(L, f, 2, &first, &count);
    if (!vk_vfile_is_integer(f))
        return lvk_errorf(L, "%s: holds %s values, not integer ids: use read()", vk_vfile_path(f),
                          vk_dtype_name(vk_vfile_dtype(f)));
    push_ids(L, f, first, count);
    return 1;
}

/* the iterator of vf:chunks(): upvalues file, next row, end row, size */
static int vf_chunk_next(lua_State *L)
{
    vk_vfile *f = checkvfile(L, lua_upvalueindex(1));
    int64_t next = (int64_t)lua_tointeger(L, lua_upvalueindex(2));
    int64_t end = (int64_t)lua_tointeger(L, lua_upvalueindex(3));
    int64_t size = (int64_t)lua_tointeger(L, lua_upvalueindex(4));
    if (next >= end)
        return 0;
    int64_t n = end - next < size ? end - next : size;
    push_rows(L, f, next, n);
    lua_pushinteger(L, (lua_Integer)(next + n));
    lua_replace(L, lua_upvalueindex(2));
    lvk_pushint64(L, next);
    return 2;
}

/* for m, first in vf:chunks(size [, first [, count]]) do ... end */
static int vf_chunks(lua_State *L)
{
    vk_vfile *f = checkvfile(L, 1);
    int64_t size = opt_int(L, 2, 10000, 1, "chunk size must be a positive integer");
    int64_t first, count;
    row_range(L, f, 3, &first, &count);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, (lua_Integer)first);
    lua_pushinteger(L, (lua_Integer)(first + count));
    lua_pushinteger(L, (lua_Integer)size);
    lua_pushcclosure(L, vf_chunk_next, 4);
    return 1;
}

static int vf_index(lua_State *L)
{
    lvk_vfile *p = tovfile(L, 1);
    const char *k = luaL_checkstring(L, 2);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, LVK_METHODS);
    lua_getfield(L, -1, k);
    if (!lua_isnil(L, -1))
        return 1;
    if (!p->f)
        return lvk_errorc(L, "state", "attempt to use a closed vector file");
    vk_vfile *f = p->f;
    if (!strcmp(k, "rows"))
        lvk_pushint64(L, vk_vfile_rows(f));
    else if (!strcmp(k, "dim") || !strcmp(k, "d"))
        lvk_pushint64(L, vk_vfile_dim(f));
    else if (!strcmp(k, "format"))
        lua_pushstring(L, vk_vformat_name(vk_vfile_format(f)));
    else if (!strcmp(k, "dtype"))
        lua_pushstring(L, vk_dtype_name(vk_vfile_dtype(f)));
    else if (!strcmp(k, "path"))
        lua_pushstring(L, vk_vfile_path(f));
    else if (!strcmp(k, "dataset"))
        lua_pushstring(L, vk_vfile_dataset(f));   /* nil unless HDF5 */
    else if (!strcmp(k, "is_integer"))
        lua_pushboolean(L, vk_vfile_is_integer(f));
    else
        lua_pushnil(L);
    return 1;
}

static int vf_len(lua_State *L)
{
    lvk_pushint64(L, vk_vfile_rows(checkvfile(L, 1)));
    return 1;
}

static int vf_tostring(lua_State *L)
{
    lvk_vfile *p = tovfile(L, 1);
    if (!p->f) {
        lua_pushliteral(L, "vekterdb.VectorFile (closed)");
        return 1;
    }
    const char *ds = vk_vfile_dataset(p->f);
    lua_pushfstring(L, "vekterdb.VectorFile(%s%s%s%s, %s, %d x %d)", vk_vfile_path(p->f),
                    ds ? " [" : "", ds ? ds : "", ds ? "]" : "",
                    vk_dtype_name(vk_vfile_dtype(p->f)), (int)vk_vfile_rows(p->f),
                    (int)vk_vfile_dim(p->f));
    return 1;
}

/* ---------- whole-file readers ---------- */

/* read_<fmt>(path [, first [, count]]) */
static int read_whole(lua_State *L, vk_vformat fmt, int ids)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 3);
    vk_vfile *f = push_vfile(L, path, fmt, NULL);
    int h = lua_gettop(L);
    int64_t first, count;
    row_range(L, f, 2, &first, &count);
    if (ids)
        push_ids(L, f, first, count);
    else
        push_rows(L, f, first, count);
    lua_pushcfunction(L, vf_close);
    lua_pushvalue(L, h);
    lua_call(L, 1, 0);
    return 1;
}

static int io_read_fvecs(lua_State *L) { return read_whole(L, VK_VF_FVECS, 0); }
static int io_read_bvecs(lua_State *L) { return read_whole(L, VK_VF_BVECS, 0); }
static int io_read_ivecs(lua_State *L) { return read_whole(L, VK_VF_IVECS, 1); }
static int io_read_npy(lua_State *L) { return read_whole(L, VK_VF_NPY, 0); }

/* read_hdf5(path, dataset [, first [, count]]): a matrix, or arrays of
 * integers for an integer dataset ("neighbors") */
static int io_read_hdf5(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *dataset = luaL_checkstring(L, 2);
    lua_settop(L, 4);
    vk_vfile *f = push_vfile(L, path, VK_VF_HDF5, dataset);
    int h = lua_gettop(L);
    int64_t first, count;
    row_range(L, f, 3, &first, &count);
    if (vk_vfile_is_integer(f))
        push_ids(L, f, first, count);
    else
        push_rows(L, f, first, count);
    lua_pushcfunction(L, vf_close);
    lua_pushvalue(L, h);
    lua_call(L, 1, 0);
    return 1;
}

/* ---------- VectorWriter ---------- */

static lvk_vwriter *tovwriter(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LVK_VWRITER);
}

static lvk_vwriter *checkvwriter(lua_State *L, int idx)
{
    lvk_vwriter *p = tovwriter(L, idx);
    if (p->done)
        lvk_errorc(L, "state", "attempt to use a closed vector writer");
    return p;
}

/* vector_writer(path, d [, format]) -> VectorWriter */
static int io_writer(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int64_t d;
    if (!lvk_tointeger(L, 2, &d) || d < 1)
        return lvk_argerror(L, 2, "dimension must be a positive integer");
    vk_vformat fmt = check_format(L, 3, VK_VF_AUTO);
    lvk_vwriter *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->w = NULL;
    p->d = d;
    p->rows = 0;
    p->done = 1;
    luaL_getmetatable(L, LVK_VWRITER);
    lua_setmetatable(L, -2);
    if (vk_vwriter_open(&p->w, path, fmt, d))
        return lvk_error(L);
    p->done = 0;
    return 1;
}

/* w:write(matrix | vector | array of vectors) -> rows written so far */
static int vw_write(lua_State *L)
{
    lvk_vwriter *p = checkvwriter(L, 1);
    lvk_mat *m = lvk_checkmatrix(L, 2, p->d);
    if (vk_vwriter_write(p->w, m->data, m->n))
        return lvk_error(L);
    p->rows = vk_vwriter_rows(p->w);
    lvk_pushint64(L, p->rows);
    return 1;
}

/* w:close() -> rows: the file appears under its name */
static int vw_close(lua_State *L)
{
    lvk_vwriter *p = checkvwriter(L, 1);
    vk_vwriter *w = p->w;
    p->w = NULL;
    p->done = 1;
    if (vk_vwriter_close(w))
        return lvk_error(L);
    lvk_pushint64(L, p->rows);
    return 1;
}

/* w:abort(): drops what was written; idempotent */
static int vw_abort(lua_State *L)
{
    lvk_vwriter *p = tovwriter(L, 1);
    vk_vwriter_abort(p->w);
    p->w = NULL;
    p->done = 1;
    return 0;
}

/* to-be-closed: keeps the file on a normal exit, drops it on an error */
static int vw_toclose(lua_State *L)
{
    lvk_vwriter *p = tovwriter(L, 1);
    if (p->done)
        return 0;
    if (!lua_isnoneornil(L, 2))
        return vw_abort(L);
    lua_settop(L, 1);
    return vw_close(L);
}

static int vw_index(lua_State *L)
{
    lvk_vwriter *p = tovwriter(L, 1);
    const char *k = luaL_checkstring(L, 2);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, LVK_METHODS);
    lua_getfield(L, -1, k);
    if (!lua_isnil(L, -1))
        return 1;
    if (!strcmp(k, "rows"))
        lvk_pushint64(L, p->rows);
    else if (!strcmp(k, "dim") || !strcmp(k, "d"))
        lvk_pushint64(L, p->d);
    else
        lua_pushnil(L);
    return 1;
}

static int vw_tostring(lua_State *L)
{
    lvk_vwriter *p = tovwriter(L, 1);
    lua_pushfstring(L, "vekterdb.VectorWriter(%d x %d%s)", (int)p->rows, (int)p->d,
                    p->done ? ", closed" : "");
    return 1;
}

/* write_fvecs(path, m) / write_npy(path, m) -> rows */
static int write_whole(lua_State *L, vk_vformat fmt)
{
    luaL_checkstring(L, 1);
    lvk_mat *m = lvk_checkmatrix(L, 2, 0);
    lua_pushcfunction(L, io_writer);
    lua_pushvalue(L, 1);
    lvk_pushint64(L, m->d);
    lua_pushstring(L, vk_vformat_name(fmt));
    lua_call(L, 3, 1);
    lvk_vwriter *p = tovwriter(L, -1);
    if (vk_vwriter_write(p->w, m->data, m->n)) {
        int code = vk_errcode();
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vk_errmsg());
        vk_vwriter_abort(p->w);
        p->w = NULL;
        p->done = 1;
        vk_set_error(code, "%s", msg);
        return lvk_error(L);
    }
    p->rows = m->n;
    lua_replace(L, 1);
    lua_settop(L, 1);
    return vw_close(L);
}

static int io_write_fvecs(lua_State *L) { return write_whole(L, VK_VF_FVECS); }
static int io_write_npy(lua_State *L) { return write_whole(L, VK_VF_NPY); }

/* true when every value of the array of arrays at idx is an integer */
static int all_integers(lua_State *L, int idx, int64_t *n, int64_t *d, int *fits32)
{
    *n = (int64_t)lua_rawlen(L, idx);
    *d = 0;
    *fits32 = 1;
    for (int64_t i = 1; i <= *n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TTABLE) {
            lua_pop(L, 1);
            return 0;
        }
        int64_t len = (int64_t)lua_rawlen(L, -1);
        if (i == 1)
            *d = len;
        if (len != *d)
            lvk_errorf(L, "row %lld has %lld values, row 1 has %lld", (long long)i, (long long)len,
                       (long long)*d);
        for (int64_t j = 1; j <= len; j++) {
            lua_rawgeti(L, -1, (lua_Integer)j);
            int64_t v;
            int ok = lvk_tointeger(L, -1, &v);
            lua_pop(L, 1);
            if (!ok) {
                lua_pop(L, 1);
                return 0;
            }
            if (v < INT32_MIN || v > INT32_MAX)
                *fits32 = 0;
        }
        lua_pop(L, 1);
    }
    return *n > 0 && *d > 0;
}

/* write_hdf5(path, dataset, data [, append]): data a matrix (float32) or
 * arrays of integers (int32, or int64 when a value needs it) */
static int io_write_hdf5(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *dataset = luaL_checkstring(L, 2);
    int append = lua_toboolean(L, 4);
    int64_t n, d;
    int fits32;
    if (lua_type(L, 3) == LUA_TTABLE && all_integers(L, 3, &n, &d, &fits32)) {
        size_t es = fits32 ? sizeof(int32_t) : sizeof(int64_t);
        void **slot = lvk_box(L, free);
        if (!(*slot = malloc(es * (size_t)(n * d))))
            return lvk_errorc(L, "nomem", "out of memory");
        for (int64_t i = 0; i < n; i++) {
            lua_rawgeti(L, 3, (lua_Integer)i + 1);
            for (int64_t j = 0; j < d; j++) {
                int64_t v;
                lua_rawgeti(L, -1, (lua_Integer)j + 1);
                lvk_tointeger(L, -1, &v);
                lua_pop(L, 1);
                if (fits32)
                    ((int32_t *)*slot)[i * d + j] = (int32_t)v;
                else
                    ((int64_t *)*slot)[i * d + j] = v;
            }
            lua_pop(L, 1);
        }
        if (vk_hdf5_write(path, dataset, fits32 ? VK_DT_I32 : VK_DT_I64, n, d, *slot, append))
            return lvk_error(L);
        lvk_box_release(L, -1);
    } else {
        lvk_mat *m = lvk_checkmatrix(L, 3, 0);
        n = m->n;
        if (vk_hdf5_write(path, dataset, VK_DT_F32, m->n, m->d, m->data, append))
            return lvk_error(L);
    }
    lvk_pushint64(L, n);
    return 1;
}

/* ---------- progress helpers ---------- */

/* isatty(file): true when the Lua file handle is a terminal */
static int io_isatty(lua_State *L)
{
    FILE **fp = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    lua_pushboolean(L, *fp && isatty(fileno(*fp)));
    return 1;
}

/* monotime(): seconds of a monotonic clock, for rates and ETAs */
static int io_monotime(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static int io_hdf5_available(lua_State *L)
{
    lua_pushboolean(L, vk_hdf5_available());
    return 1;
}

/* ---------- registration ---------- */

static const luaL_Reg vfile_methods[] = {{"read", vf_read},     {"read_ids", vf_read_ids},
                                         {"chunks", vf_chunks}, {"close", vf_close},
                                         {NULL, NULL}};

static const luaL_Reg vwriter_methods[] = {
    {"write", vw_write}, {"close", vw_close}, {"abort", vw_abort}, {NULL, NULL}};

static const luaL_Reg vfile_meta[] = {{"__index", vf_index},       {"__gc", vf_close},
                                      {"__close", vf_close},       {"__tostring", vf_tostring},
                                      {"__len", vf_len},           {NULL, NULL}};

static const luaL_Reg vwriter_meta[] = {{"__index", vw_index},     {"__gc", vw_abort},
                                        {"__close", vw_toclose},   {"__tostring", vw_tostring},
                                        {NULL, NULL}};

void lvk_open_io(lua_State *L)
{
    lvk_newclass(L, LVK_VFILE, vfile_meta, vfile_methods, NULL);
    lvk_newclass(L, LVK_VWRITER, vwriter_meta, vwriter_methods, NULL);
}

const luaL_Reg lvk_io_funcs[] = {
    {"open_vectors", io_open},     {"read_fvecs", io_read_fvecs},
    {"read_ivecs", io_read_ivecs}, {"read_bvecs", io_read_bvecs},
    {"read_npy", io_read_npy},     {"read_hdf5", io_read_hdf5},
    {"vector_writer", io_writer},  {"write_fvecs", io_write_fvecs},
    {"write_npy", io_write_npy},   {"write_hdf5", io_write_hdf5},
    {"isatty", io_isatty},         {"monotime", io_monotime},
    {"hdf5_available", io_hdf5_available}, {NULL, NULL}};
