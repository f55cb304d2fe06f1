/* lua_host.h: the Lua 5.4 interpreter the Lua-hosting fuzz targets share.
 * lua_host_start runs the target's driver chunk with the given strings as
 * its arguments and keeps what it returns (the function each input is
 * handed to) in the registry; any failure here is the harness's own, so it
 * aborts. */
#ifndef VK_FUZZ_LUA_HOST_H
#define VK_FUZZ_LUA_HOST_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>

static int lua_host_start(lua_State **out, const char *name, const char *driver, size_t len,
                          const char *const *args, int nargs)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, driver, len, name) != LUA_OK) {
        fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
        abort();
    }
    for (int i = 0; i < nargs; i++)
        lua_pushstring(L, args[i]);
    if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
        fprintf(stderr, "%s: setting up: %s\n", name, lua_tostring(L, -1));
        abort();
    }
    *out = L;
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

#endif
