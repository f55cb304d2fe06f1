/* lvk_core.c: the module vekterdb.core: codec, metric, and registration */
#include "lvk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- errors ---------- */

/* the engine's status codes, named once: the codes a program branches on */
const char *lvk_code_name(int vk_code)
{
    switch (vk_code) {
    case VK_EINVAL: return "invalid";
    case VK_ESQL: return "database";
    case VK_EFAISS: return "faiss";
    case VK_ENOMEM: return "nomem";
    case VK_ECODEC: return "corrupt";
    case VK_EIO: return "io";
    case VK_ESTATE: return "state";
    case VK_ECONSTRAINT: return "constraint";
    case VK_ELOCKED: return "locked";
    case VK_ECONN: return "connection";
    case VK_ENOTFOUND: return "not_found";
    default: return "internal";
    }
}

void lvk_pusherror(lua_State *L, const char *code, const char *call, const char *msg)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    if (call) {
        lua_pushstring(L, call);
        lua_setfield(L, -2, "call");
    }
    luaL_getmetatable(L, LVK_ERROR);
    lua_setmetatable(L, -2);
}

static int is_error(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, LVK_ERROR);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

void lvk_name_error(lua_State *L, const char *call)
{
    if (!call || !is_error(L, -1))
        return;
    lua_getfield(L, -1, "call");
    int named = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (named)
        return;
    lua_pushstring(L, call);
    lua_setfield(L, -2, "call");
    lua_getfield(L, -1, "message");
    const char *msg = lua_tostring(L, -1);
    size_t n = strlen(call);
    if (msg && !(strncmp(msg, call, n) == 0 && msg[n] == ':')) {
        lua_pushfstring(L, "%s: %s", call, msg);
        lua_setfield(L, -3, "message");
    }
    lua_pop(L, 1);
}

/* the name Lua called the running C function by, or NULL (a function run
 * by lua_pcall from C, a metamethod) */
static const char *running_name(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "n", &ar) || !ar.name || !ar.namewhat)
        return NULL;
    if (strcmp(ar.namewhat, "method") && strcmp(ar.namewhat, "field") && strcmp(ar.namewhat, "global") &&
        strcmp(ar.namewhat, "local") && strcmp(ar.namewhat, "upvalue"))
        return NULL;
    return ar.name;
}

static int raise(lua_State *L, const char *code, const char *msg)
{
    lvk_pusherror(L, code, NULL, msg);
    lvk_name_error(L, running_name(L));
    return lua_error(L);
}

int lvk_error(lua_State *L)
{
    return raise(L, lvk_code_name(vk_errcode()), vk_errmsg());
}

int lvk_errorf(lua_State *L, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return raise(L, "invalid", buf);
}

int lvk_errorc(lua_State *L, const char *code, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return raise(L, code, buf);
}

/* worded as luaL_argerror words it */
int lvk_argerror(lua_State *L, int arg, const char *msg)
{
    lua_Debug ar;
    const char *name = "?";
    if (lua_getstack(L, 0, &ar)) {
        lua_getinfo(L, "n", &ar);
        if (ar.namewhat && strcmp(ar.namewhat, "method") == 0 && --arg == 0)
            return lvk_errorf(L, "calling '%s' on bad self (%s)", ar.name ? ar.name : "?", msg);
        if (ar.name)
            name = ar.name;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "bad argument #%d to '%s' (%s)", arg, name, msg);
    lvk_pusherror(L, "invalid", NULL, buf);
    return lua_error(L);
}

/* Error values: tostring gives the message, and string methods and `..`
 * work on it as on the message, so programs that treated errors as strings
 * keep working */
static const char *error_text(lua_State *L, int idx)
{
    if (is_error(L, idx)) {
        lua_getfield(L, idx, "message");
        const char *s = lua_tostring(L, -1);
        lua_replace(L, idx);   /* (the message now sits at idx) */
        return s ? s : "";
    }
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
        return lua_tostring(L, idx);
    luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, idx));
    return NULL;
}

static int err_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1))
        lua_pushliteral(L, "(error without a message)");
    return 1;
}

static int err_concat(lua_State *L)
{
    error_text(L, 1);
    error_text(L, 2);
    lua_concat(L, 2);
    return 1;
}

/* err:method(...): the string method run on the message */
static int err_method(lua_State *L)
{
    if (is_error(L, 1))
        error_text(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int err_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    lua_pushliteral(L, "");
    if (!lua_getmetatable(L, -1))
        return 0;
    lua_getfield(L, -1, "__index");
    if (!lua_istable(L, -1))
        return 0;
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    if (!lua_isfunction(L, -1))
        return 0;
    lua_pushcclosure(L, err_method, 1);
    return 1;
}

/* error(code, message[, call]): a new error value, for the Lua module */
static int c_error(lua_State *L)
{
    const char *code = luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lvk_pusherror(L, code, luaL_optstring(L, 3, NULL), "");
    lua_pushvalue(L, 2);   /* the message as given: it may hold NUL bytes */
    lua_setfield(L, -2, "message");
    return 1;
}

static void open_error(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__tostring", err_tostring}, {"__concat", err_concat},
                                    {"__index", err_index}, {NULL, NULL}};
    luaL_newmetatable(L, LVK_ERROR);
    lua_pushliteral(L, LVK_ERROR);
    lua_setfield(L, -2, "__name");
    lvk_setfuncs(L, meta);
    lua_pop(L, 1);
}

void lvk_setfuncs(lua_State *L, const luaL_Reg *l)
{
    for (; l->name; l++) {
        lua_pushcfunction(L, l->func);
        lua_setfield(L, -2, l->name);
    }
}

void lvk_newclass(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods,
                  lua_CFunction wrap)
{
    int own_index = 0;
    luaL_newmetatable(L, name);   /* (it exists when the module is loaded again) */
    lua_pushstring(L, name);      /* Lua 5.1 and LuaJIT do not set it */
    lua_setfield(L, -2, "__name");
    for (const luaL_Reg *l = meta; l && l->name; l++)
        own_index |= !strcmp(l->name, "__index");
    if (meta)
        lvk_setfuncs(L, meta);
    lua_newtable(L);
    for (const luaL_Reg *l = methods; l && l->name; l++) {
        lua_pushcfunction(L, l->func);
        if (wrap) {
            lua_pushlightuserdata(L, (void *)l);
            lua_pushcclosure(L, wrap, 2);
        }
        lua_setfield(L, -2, l->name);
    }
    if (!own_index) {
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "__index");
    }
    lua_setfield(L, -2, LVK_METHODS);
    lua_pop(L, 1);
}

void lvk_warn(lua_State *L, const char *msg)
{
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "vekterdb");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "_log");
            if (lua_isfunction(L, -1)) {
                lua_pushliteral(L, "warn");
                lua_pushstring(L, msg);
                if (lua_pcall(L, 2, 0, 0) == 0) {
                    lua_settop(L, top);
                    return;
                }
            }
        }
    }
    lua_settop(L, top);
    fprintf(stderr, "vekterdb warn: %s\n", msg);
}

/* ---------- boxes: C memory owned by a userdata until released ---------- */

typedef struct lvk_boxed {
    void *p;
    void (*fn)(void *);
} lvk_boxed;

static int box_gc(lua_State *L)
{
    lvk_boxed *b = luaL_checkudata(L, 1, LVK_BOX);
    if (b->p && b->fn)
        b->fn(b->p);
    b->p = NULL;
    return 0;
}

void **lvk_box(lua_State *L, void (*fn)(void *))
{
    lvk_boxed *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->fn = fn;
    luaL_getmetatable(L, LVK_BOX);
    lua_setmetatable(L, -2);
    return &b->p;
}

void lvk_box_release(lua_State *L, int idx)
{
    lvk_boxed *b = luaL_checkudata(L, idx, LVK_BOX);
    if (b->p && b->fn)
        b->fn(b->p);
    b->p = NULL;
}

/* ---------- codec ---------- */

static int c_serialize(lua_State *L)
{
    lvk_mat *v = lvk_checkvector(L, 1, 0);
    int64_t level = 1;
    if (!lua_isnoneornil(L, 2) && !lvk_tointeger(L, 2, &level))
        return lvk_argerror(L, 2, "compression level must be an integer");
    int64_t bad = vk_first_nonfinite(v->data, v->d);
    if (bad >= 0)
        return lvk_errorf(L, "vector holds a NaN or infinite value at position %d", (int)bad + 1);
    size_t cap = vk_codec_bound(v->d);
    void **slot = lvk_box(L, free);
    if (!(*slot = malloc(cap)))
        return lvk_errorc(L, "nomem", "out of memory");
    size_t n = vk_encode(v->data, v->d, (int)level, *slot, cap);
    if (!n)
        return lvk_error(L);
    lua_pushlstring(L, *slot, n);
    lvk_box_release(L, -2);
    return 1;
}

static int c_deserialize(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int64_t d = vk_decoded_dim(s, len);
    if (d <= 0)
        return lvk_errorc(L, "corrupt", "corrupted vector: the bytes are not one zstd frame of float32 values");
    if (!lua_isnoneornil(L, 2)) {
        int64_t want;
        if (!lvk_tointeger(L, 2, &want) || want != d)
            return lvk_errorf(L, "vector has dimension %d, expected %d", (int)d,
                              (int)luaL_checkinteger(L, 2));
    }
    lvk_mat *v = lvk_newmat(L, 1, d, 1);
    if (vk_decode(s, len, v->data, d))
        return lvk_error(L);
    return 1;
}

/* metric(a, b, "inner_product" | "l2") */
static int c_metric(lua_State *L)
{
    lvk_mat *a = lvk_checkvector(L, 1, 0);
    lvk_mat *b = lvk_checkvector(L, 2, a->d);
    lua_pushnumber(L, vk_metric_value(lvk_optmetric(L, 3), a->data, b->data, a->d));
    return 1;
}

/* metric_name(name) -> "inner_product" or "l2": the engine reads metric names */
static int c_metric_name(lua_State *L)
{
    lua_pushstring(L, vk_metric_name(lvk_optmetric(L, 1)));
    return 1;
}

/* OpenBLAS's threads fight FAISS's OpenMP threads: one BLAS thread unless
 * the user asked otherwise through OPENBLAS_NUM_THREADS */
void openblas_set_num_threads(int n);
extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int n);

static int c_set_threads(lua_State *L)
{
    int64_t n;
    if (!lvk_tointeger(L, 1, &n) || n < 1)
        return lvk_argerror(L, 1, "thread count must be a positive integer");
    omp_set_num_threads((int)n);
    return 0;
}

static int c_get_threads(lua_State *L)
{
    lua_pushinteger(L, omp_get_max_threads());
    return 1;
}

static const luaL_Reg core_funcs[] = {
    {"serialize_vector", c_serialize}, {"deserialize_vector", c_deserialize},
    {"metric", c_metric}, {"metric_name", c_metric_name}, {"set_num_threads", c_set_threads},
    {"get_num_threads", c_get_threads}, {NULL, NULL}};

#if defined(_WIN32)
#define LVK_EXPORT __declspec(dllexport)
#else
#define LVK_EXPORT __attribute__((visibility("default")))
#endif

LVK_EXPORT int luaopen_vekterdb_core(lua_State *L);

LVK_EXPORT int luaopen_vekterdb_core(lua_State *L)
{
    /* a FAISS built for AVX2 on a CPU without it would die on its first
     * search: refuse here, with the way out */
    if (vk_faiss_check_cpu())
        return luaL_error(L, "vekterdb: %s", vk_errmsg());
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    static const luaL_Reg box_meta[] = {{"__gc", box_gc}, {NULL, NULL}};
    lvk_newclass(L, LVK_BOX, box_meta, NULL, NULL);
    open_error(L);
    lvk_open_vector(L);
    lvk_open_index(L);
    lvk_open_db(L);
    lvk_open_io(L);
    lua_newtable(L);
    lvk_setfuncs(L, core_funcs);
    lvk_setfuncs(L, lvk_vector_funcs);
    lvk_setfuncs(L, lvk_index_funcs);
    lvk_setfuncs(L, lvk_db_funcs);
    lvk_setfuncs(L, lvk_io_funcs);
    lua_pushliteral(L, VK_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushcfunction(L, c_error);
    lua_setfield(L, -2, "error");
    luaL_getmetatable(L, LVK_ERROR);
    lua_setfield(L, -2, "Error");
    lua_pushstring(L, vk_faiss_build());
    lua_setfield(L, -2, "faiss_build");
    return 1;
}
