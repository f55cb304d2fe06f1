/*
 * compat.h: the few Lua 5.4 names the bindings use, mapped onto the APIs of
 * Lua 5.3, Lua 5.1 and LuaJIT 2.1 (the 5.1 API with a few 5.2 additions).
 * One source builds for all four; the Makefile picks the headers
 * (LUA_INCDIR).  Lua 5.2 is not built or tested.
 */
#ifndef VEKTERDB_COMPAT_H
#define VEKTERDB_COMPAT_H

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>

#if LUA_VERSION_NUM == 503
/* user values: Lua 5.3 has one per userdata; a table holds the numbered ones */
static inline void *lvk_newuserdatauv(lua_State *L, size_t sz, int nuv)
{
    void *p = lua_newuserdata(L, sz);
    if (nuv > 0) {
        lua_createtable(L, nuv, 0);
        lua_setuservalue(L, -2);
    }
    return p;
}
#define lua_newuserdatauv lvk_newuserdatauv
static inline int lvk_setiuservalue(lua_State *L, int idx, int n)
{
    idx = lua_absindex(L, idx);
    lua_getuservalue(L, idx);
    lua_insert(L, -2);
    lua_rawseti(L, -2, n);
    lua_pop(L, 1);
    return 1;
}
#define lua_setiuservalue lvk_setiuservalue
static inline int lvk_getiuservalue(lua_State *L, int idx, int n)
{
    if (lua_getuservalue(L, idx) != LUA_TTABLE)
        return lua_type(L, -1); /* nil: created without user values */
    lua_rawgeti(L, -1, n);
    lua_remove(L, -2);
    return lua_type(L, -1);
}
#define lua_getiuservalue lvk_getiuservalue
/* 5.4's message: "bad argument #i to 'f' (T expected, got U)" */
static inline int lvk_typeerror(lua_State *L, int arg, const char *tname)
{
    const char *got = luaL_typename(L, arg);
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
        got = lua_tostring(L, -1);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
}
#define luaL_typeerror lvk_typeerror
#endif

#if LUA_VERSION_NUM < 502
/* user values: a table kept in the userdata's environment */
static inline void *lvk_newuserdatauv(lua_State *L, size_t sz, int nuv)
{
    void *p = lua_newuserdata(L, sz);
    if (nuv > 0) {
        lua_createtable(L, nuv, 0);
        lua_setfenv(L, -2);
    }
    return p;
}
#define lua_newuserdatauv lvk_newuserdatauv
static inline int lvk_setiuservalue(lua_State *L, int idx, int n)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lua_getfenv(L, idx);
    lua_insert(L, -2);
    lua_rawseti(L, -2, n);
    lua_pop(L, 1);
    return 1;
}
#define lua_setiuservalue lvk_setiuservalue
static inline int lvk_getiuservalue(lua_State *L, int idx, int n)
{
    lua_getfenv(L, idx);
    lua_rawgeti(L, -1, n);
    lua_remove(L, -2);
    return lua_type(L, -1);
}
#define lua_getiuservalue lvk_getiuservalue
#define lua_rawlen lua_objlen
#define luaL_typeerror luaL_typerror
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_register(L, NULL, l))
#endif
/* LuaJIT numbers are doubles: integers are exact up to 2^53 */
static inline int lvk_isinteger(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    lua_Number n = lua_tonumber(L, idx);
    return n == floor(n) && fabs(n) <= 9007199254740992.0;
}
#define lua_isinteger lvk_isinteger
#define LVK_INT_FROM_NUMBER 1
#ifndef luaL_newlibtable
/* PUC Lua 5.1 lacks luaL_testudata; LuaJIT 2.1 has it, with the rest of
 * Lua 5.2's lauxlib additions (of which luaL_newlibtable is a macro) */
static inline void *lvk_testudata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (p == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}
#define luaL_testudata lvk_testudata
#endif
#endif

/* a number that is an integer value (3 or 3.0) as int64 */
static inline int lvk_tointeger(lua_State *L, int idx, int64_t *out)
{
    *out = 0;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    if (lua_isinteger(L, idx)) {
#ifdef LVK_INT_FROM_NUMBER
        *out = (int64_t)lua_tonumber(L, idx);
#else
        *out = (int64_t)lua_tointeger(L, idx);
#endif
        return 1;
    }
    lua_Number n = lua_tonumber(L, idx);
    if (n != floor(n) || !(fabs(n) <= 9007199254740992.0))
        return 0;
    *out = (int64_t)n;
    return 1;
}

static inline void lvk_pushint64(lua_State *L, int64_t v)
{
#ifdef LVK_INT_FROM_NUMBER
    lua_pushnumber(L, (lua_Number)v);
#else
    lua_pushinteger(L, (lua_Integer)v);
#endif
}

#endif
