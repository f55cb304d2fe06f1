-- luacheck configuration for `make lint` (bin/tools.mk).
-- The library runs on Lua 5.1/LuaJIT as well as 5.4: allow what any of them has.
std = "max"
max_line_length = 120
codes = true

-- the command-line tool has no .lua extension
files["bin/vekterdb"] = { std = "max" }

-- specs: busted's globals; test names and expected messages make long lines
files["spec"] = { std = "+busted", max_line_length = false }

-- the OpenResty example runs inside nginx, where ngx is the API (and handlers
-- set ngx.status, ngx.header, ngx.ctx fields)
files["examples/openresty"] = { globals = { "ngx" } }

-- wrk's script interface: wrk calls these globals, and `thread:set("id")`
-- makes `id` a global of each thread's interpreter
files["examples/openresty/wrk_search.lua"] = {
  globals = { "setup", "init", "request" },
  read_globals = { "wrk", "id" },
}

-- a LuaRocks configuration file: its settings are globals
files["examples/luarocks-luajit.lua"] = { globals = { "lua_interpreter", "variables" } }
