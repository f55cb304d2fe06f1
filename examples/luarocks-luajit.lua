-- LuaRocks configuration for LuaJIT 2.1 on Debian (packages luajit2 and
-- libluajit2-5.1-dev). LuaRocks counts LuaJIT as Lua 5.1 but, given
-- --lua-version 5.1 alone, picks PUC Lua 5.1 (lua5.1 and its headers); this
-- names LuaJIT's interpreter and headers instead:
--   LUAROCKS_CONFIG=examples/luarocks-luajit.lua luarocks --lua-version 5.1 --tree TREE make
-- LuaJIT and PUC Lua 5.1 share the tree layout (share/lua/5.1, lib/lua/5.1)
-- but not the compiled module: give each its own tree.
lua_interpreter = "luajit"
variables = {
  LUA_DIR = "/usr",
  LUA_BINDIR = "/usr/bin",
  LUA_INCDIR = "/usr/include/luajit-2.1",
}
