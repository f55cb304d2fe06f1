/* lvk_vector.c: float32 Vector and Matrix userdata */
#include "lvk.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMENTS ((int64_t)1 << 34)

lvk_mat *lvk_newmat(lua_State *L, int64_t n, int64_t d, int is_vector)
{
    if (d > INT_MAX)   /* FAISS keeps an index's dimension in an int */
        lvk_errorf(L, "dimension %lld is larger than FAISS takes (%d)", (long long)d, INT_MAX);
    if (n < 0 || d < 0 || (d && n > MAX_ELEMENTS / d))
        lvk_errorf(L, "matrix of %lld x %lld is too large", (long long)n, (long long)d);
    lvk_mat *m = lua_newuserdatauv(L, sizeof(lvk_mat) + sizeof(float) * (size_t)(n * d), 0);
    m->n = n;
    m->d = d;
    luaL_getmetatable(L, is_vector ? LVK_VECTOR : LVK_MATRIX);
    lua_setmetatable(L, -2);
    return m;
}

static lvk_mat *testud(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    int eq = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return eq ? p : NULL;
}

static lvk_mat *tovector(lua_State *L, int idx) { return testud(L, idx, LVK_VECTOR); }
static lvk_mat *tomatrix(lua_State *L, int idx) { return testud(L, idx, LVK_MATRIX); }

lvk_mat *lvk_tomat(lua_State *L, int idx)
{
    lvk_mat *m = tovector(L, idx);
    return m ? m : tomatrix(L, idx);
}

/* reads t[1..d] numbers into out; errors name the position */
static void read_numbers(lua_State *L, int t, int64_t d, float *out, int64_t row)
{
    for (int64_t j = 0; j < d; j++) {
        lua_rawgeti(L, t, (lua_Integer)j + 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            if (row > 0)
                lvk_errorf(L, "vector %lld: element %lld is %s, expected a number", (long long)row,
                           (long long)j + 1, luaL_typename(L, -1));
            lvk_errorf(L, "vector element %lld is %s, expected a number", (long long)j + 1,
                       luaL_typename(L, -1));
        }
        out[j] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
}

static void check_dim(lua_State *L, int64_t d, int64_t want)
{
    if (want > 0 && d != want)
        lvk_errorf(L, "vector has dimension %lld, expected %lld", (long long)d, (long long)want);
    if (d <= 0)
        lvk_errorf(L, "vector is empty");
}

lvk_mat *lvk_checkvector(lua_State *L, int idx, int64_t want)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lvk_mat *m = lvk_tomat(L, idx);
    if (m) {
        if (m->n != 1)
            lvk_errorf(L, "expected one vector, got a %lld x %lld matrix", (long long)m->n,
                       (long long)m->d);
        check_dim(L, m->d, want);
        lvk_mat *v = lvk_newmat(L, 1, m->d, 1);
        memcpy(v->data, m->data, sizeof(float) * (size_t)m->d);
        return v;
    }
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len % 4)
            lvk_errorf(L, "packed float32 string length %d is not a multiple of 4", (int)len);
        check_dim(L, (int64_t)len / 4, want);
        lvk_mat *v = lvk_newmat(L, 1, (int64_t)len / 4, 1);
        memcpy(v->data, s, len);
        return v;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        lvk_errorf(L, "expected a vector (vekterdb.vector or array of numbers), got %s",
                   luaL_typename(L, idx));
    int64_t d = (int64_t)lua_rawlen(L, idx);
    check_dim(L, d, want);
    lvk_mat *v = lvk_newmat(L, 1, d, 1);
    read_numbers(L, idx, d, v->data, 0);
    return v;
}

lvk_mat *lvk_checkmatrix(lua_State *L, int idx, int64_t want)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lvk_mat *m = lvk_tomat(L, idx);
    if (m) {
        check_dim(L, m->d, want);
        lvk_mat *c = lvk_newmat(L, m->n, m->d, 0);
        memcpy(c->data, m->data, sizeof(float) * (size_t)(m->n * m->d));
        return c;
    }
    if (lua_type(L, idx) == LUA_TSTRING) {
        if (want <= 0)
            lvk_errorf(L, "a packed float32 string needs a known dimension");
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len == 0 || len % (4 * (size_t)want))
            lvk_errorf(L, "packed float32 string of %d bytes is not a whole number of %lld-d vectors",
                       (int)len, (long long)want);
        lvk_mat *c = lvk_newmat(L, (int64_t)(len / (4 * (size_t)want)), want, 0);
        memcpy(c->data, s, len);
        return c;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        lvk_errorf(L, "expected a vector or a matrix, got %s", luaL_typename(L, idx));
    lua_rawgeti(L, idx, 1);
    int first = lua_type(L, -1);
    lua_pop(L, 1);
    if (first == LUA_TNUMBER) {  /* one vector as an array of numbers */
        lvk_mat *v = lvk_checkvector(L, idx, want);
        v = lvk_newmat(L, 1, v->d, 0);
        memcpy(v->data, ((lvk_mat *)lua_touserdata(L, -2))->data, sizeof(float) * (size_t)v->d);
        lua_remove(L, -2);
        return v;
    }
    int64_t n = (int64_t)lua_rawlen(L, idx);
    if (n == 0)
        lvk_errorf(L, "no query vectors given");
    int64_t d = want;
    if (d <= 0) {
        lua_rawgeti(L, idx, 1);
        lvk_mat *r = lvk_tomat(L, -1);
        d = r ? r->d : (lua_type(L, -1) == LUA_TTABLE ? (int64_t)lua_rawlen(L, -1) : 0);
        lua_pop(L, 1);
        check_dim(L, d, 0);
    }
    lvk_mat *c = lvk_newmat(L, n, d, 0);
    int top = lua_gettop(L);
    for (int64_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        lvk_mat *r = lvk_tomat(L, -1);
        if (r) {
            if (r->n != 1 || r->d != d)
                lvk_errorf(L, "vector %lld has dimension %lld, expected %lld", (long long)i + 1,
                           (long long)r->d, (long long)d);
            memcpy(c->data + i * d, r->data, sizeof(float) * (size_t)d);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            if ((int64_t)lua_rawlen(L, -1) != d)
                lvk_errorf(L, "vector %lld has dimension %lld, expected %lld", (long long)i + 1,
                           (long long)lua_rawlen(L, -1), (long long)d);
            read_numbers(L, lua_gettop(L), d, c->data + i * d, i + 1);
        } else {
            lvk_errorf(L, "vector %lld is %s, expected a vector", (long long)i + 1,
                       luaL_typename(L, -1));
        }
        lua_settop(L, top);
    }
    return c;
}

/* ---------- constructors ---------- */

/* vector(table | packed string | n) */
static int v_new(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        int64_t n;
        if (!lvk_tointeger(L, 1, &n) || n <= 0)
            return lvk_argerror(L, 1, "dimension must be a positive integer");
        lvk_mat *v = lvk_newmat(L, 1, n, 1);
        memset(v->data, 0, sizeof(float) * (size_t)n);
        return 1;
    }
    lvk_checkvector(L, 1, 0);
    return 1;
}

/* matrix(n, d) | matrix(array of vectors) | matrix(packed string, d) */
static int m_new(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        int64_t n, d;
        if (!lvk_tointeger(L, 1, &n) || n < 0)
            return lvk_argerror(L, 1, "row count must be a non-negative integer");
        if (!lvk_tointeger(L, 2, &d) || d <= 0)
            return lvk_argerror(L, 2, "dimension must be a positive integer");
        lvk_mat *m = lvk_newmat(L, n, d, 0);
        memset(m->data, 0, sizeof(float) * (size_t)(n * d));
        return 1;
    }
    int64_t d = 0;
    if (!lua_isnoneornil(L, 2) && (!lvk_tointeger(L, 2, &d) || d <= 0))
        return lvk_argerror(L, 2, "dimension must be a positive integer");
    lvk_checkmatrix(L, 1, d);
    return 1;
}

/* ---------- methods ---------- */

static lvk_mat *checkany(lua_State *L, int idx)
{
    lvk_mat *m = lvk_tomat(L, idx);
    if (!m)
        luaL_typeerror(L, idx, "vekterdb.vector or vekterdb.matrix");
    return m;
}

static int64_t checkpos(lua_State *L, int idx, int64_t max, const char *what)
{
    int64_t i;
    if (!lvk_tointeger(L, idx, &i))
        lvk_errorf(L, "%s must be an integer", what);
    if (i < 1 || i > max)
        lvk_errorf(L, "%s %lld out of range 1..%lld", what, (long long)i, (long long)max);
    return i - 1;
}

static int v_index(lua_State *L)
{
    lvk_mat *v = tovector(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int64_t i;
        if (!lvk_tointeger(L, 2, &i) || i < 1 || i > v->d)
            return lua_pushnil(L), 1;
        lua_pushnumber(L, v->data[i - 1]);
        return 1;
    }
    luaL_getmetatable(L, LVK_VECTOR);
    lua_getfield(L, -1, LVK_METHODS);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1) && lua_type(L, 2) == LUA_TSTRING && !strcmp(lua_tostring(L, 2), "d"))
        lvk_pushint64(L, v->d);
    return 1;
}

static int v_newindex(lua_State *L)
{
    lvk_mat *v = tovector(L, 1);
    int64_t i = checkpos(L, 2, v->d, "vector index");
    v->data[i] = (float)luaL_checknumber(L, 3);
    return 0;
}

static int m_index(lua_State *L)
{
    lvk_mat *m = tomatrix(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int64_t i;
        if (!lvk_tointeger(L, 2, &i) || i < 1 || i > m->n)
            return lua_pushnil(L), 1;
        lvk_mat *v = lvk_newmat(L, 1, m->d, 1);
        memcpy(v->data, m->data + (i - 1) * m->d, sizeof(float) * (size_t)m->d);
        return 1;
    }
    const char *k = lua_tostring(L, 2);
    if (k && !strcmp(k, "n"))
        return lvk_pushint64(L, m->n), 1;
    if (k && !strcmp(k, "d"))
        return lvk_pushint64(L, m->d), 1;
    luaL_getmetatable(L, LVK_MATRIX);
    lua_getfield(L, -1, LVK_METHODS);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int m_newindex(lua_State *L)
{
    lvk_mat *m = tomatrix(L, 1);
    int64_t i = checkpos(L, 2, m->n, "matrix row");
    lvk_mat *v = lvk_checkvector(L, 3, m->d);
    memcpy(m->data + i * m->d, v->data, sizeof(float) * (size_t)m->d);
    return 0;
}

static int mat_len(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    lvk_pushint64(L, tovector(L, 1) ? m->d : m->n);
    return 1;
}

static void push_row(lua_State *L, const float *x, int64_t d)
{
    lua_createtable(L, (int)d, 0);
    for (int64_t j = 0; j < d; j++) {
        lua_pushnumber(L, x[j]);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
}

static int mat_totable(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    if (tovector(L, 1)) {
        push_row(L, m->data, m->d);
        return 1;
    }
    lua_createtable(L, (int)m->n, 0);
    for (int64_t i = 0; i < m->n; i++) {
        push_row(L, m->data + i * m->d, m->d);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int mat_tobytes(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    lua_pushlstring(L, (const char *)m->data, sizeof(float) * (size_t)(m->n * m->d));
    return 1;
}

static int mat_tostring(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    char buf[96];
    if (tovector(L, 1))
        snprintf(buf, sizeof buf, "vekterdb.vector(%lld)", (long long)m->d);
    else
        snprintf(buf, sizeof buf, "vekterdb.matrix(%lld x %lld)", (long long)m->n, (long long)m->d);
    lua_pushfstring(L, "%s: %p", buf, (void *)m);
    return 1;
}

static int mat_eq(lua_State *L)
{
    lvk_mat *a = lvk_tomat(L, 1), *b = lvk_tomat(L, 2);
    lua_pushboolean(L, a && b && a->n == b->n && a->d == b->d &&
                           memcmp(a->data, b->data, sizeof(float) * (size_t)(a->n * a->d)) == 0);
    return 1;
}

static int mat_get(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    int64_t i = checkpos(L, 2, m->n, "row");
    int64_t j = checkpos(L, 3, m->d, "column");
    lua_pushnumber(L, m->data[i * m->d + j]);
    return 1;
}

static int mat_set(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    int64_t i = checkpos(L, 2, m->n, "row");
    int64_t j = checkpos(L, 3, m->d, "column");
    m->data[i * m->d + j] = (float)luaL_checknumber(L, 4);
    return 0;
}

static int mat_row(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    int64_t i = checkpos(L, 2, m->n, "row");
    lvk_mat *v = lvk_newmat(L, 1, m->d, 1);
    memcpy(v->data, m->data + i * m->d, sizeof(float) * (size_t)m->d);
    return 1;
}

/* norm of a vector, or of each row */
static int mat_normalize(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    for (int64_t i = 0; i < m->n; i++) {
        float *x = m->data + i * m->d;
        double s = 0;
        for (int64_t j = 0; j < m->d; j++)
            s += (double)x[j] * x[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int64_t j = 0; j < m->d; j++)
                x[j] *= inv;
        }
    }
    lua_settop(L, 1);
    return 1;
}

static int mat_clone(lua_State *L)
{
    lvk_mat *m = checkany(L, 1);
    lvk_mat *c = lvk_newmat(L, m->n, m->d, tovector(L, 1) != NULL);
    memcpy(c->data, m->data, sizeof(float) * (size_t)(m->n * m->d));
    return 1;
}

static const luaL_Reg mat_methods[] = {
    {"totable", mat_totable}, {"tobytes", mat_tobytes}, {"get", mat_get}, {"set", mat_set},
    {"row", mat_row}, {"normalize", mat_normalize}, {"clone", mat_clone}, {NULL, NULL}};

const luaL_Reg lvk_vector_funcs[] = {{"vector", v_new}, {"matrix", m_new}, {NULL, NULL}};

static const luaL_Reg v_meta[] = {{"__index", v_index},       {"__newindex", v_newindex},
                                  {"__len", mat_len},         {"__tostring", mat_tostring},
                                  {"__eq", mat_eq},           {NULL, NULL}};

static const luaL_Reg m_meta[] = {{"__index", m_index},       {"__newindex", m_newindex},
                                  {"__len", mat_len},         {"__tostring", mat_tostring},
                                  {"__eq", mat_eq},           {NULL, NULL}};

void lvk_open_vector(lua_State *L)
{
    lvk_newclass(L, LVK_VECTOR, v_meta, mat_methods, NULL);
    lvk_newclass(L, LVK_MATRIX, m_meta, mat_methods, NULL);
    /* Lua 5.1 and LuaJIT compare a Vector with a Matrix only when both hold
     * the same __eq function object */
    luaL_getmetatable(L, LVK_VECTOR);
    luaL_getmetatable(L, LVK_MATRIX);
    lua_getfield(L, -2, "__eq");
    lua_setfield(L, -2, "__eq");
    lua_pop(L, 2);
}
