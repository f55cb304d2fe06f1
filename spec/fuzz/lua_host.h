/* lua_host.h: the Lua 5.4 interpreter the Lua-hosting fuzz targets share.
 * lua_host_start points package.path at the source tree's lua/ and
 * package.cpath at the fuzz build of vekterdb.core (VK_SRC_DIR, VK_CMOD_DIR,
 * given by spec/support/reliability.mk), runs the target's driver chunk with
 * the given strings as its arguments and keeps what it returns (the function
 * each input is handed to) in the registry; any failure here is the
 * harness's own, so it aborts. */
#ifndef VK_FUZZ_LUA_HOST_H
#define VK_FUZZ_LUA_HOST_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef VK_SRC_DIR
#error "build with -DVK_SRC_DIR=\"/path/to/the/source\""
#endif
#ifndef VK_CMOD_DIR
#error "build with -DVK_CMOD_DIR=\"folder holding vekterdb/core.so\""
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lua_host_start(lua_State **out, const char *name, const char *driver, size_t len,
                          const char *const *args, int nargs)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, VK_SRC_DIR "/lua/?.lua;" VK_SRC_DIR "/lua/?/init.lua;");
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, VK_CMOD_DIR "/?.so;");
    lua_getfield(L, -2, "cpath");
    lua_concat(L, 2);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
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
