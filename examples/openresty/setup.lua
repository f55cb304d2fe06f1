-- examples/openresty/setup.lua: lays out the search service under one folder
-- and writes its nginx configuration from nginx.conf.in.  Any Lua runs it
-- (it only copies files and fills in the template):
--
--     lua5.4 examples/openresty/setup.lua --prefix /srv/vekterdb [options]
--
-- (`make openresty-example PREFIX=/srv/vekterdb` builds the LuaJIT module
-- first and runs this.)  Under PREFIX:
--     nginx.conf             the configuration, every path in it absolute
--     lua/                   vekterdb.lua, vekterdb/*.lua, vekterdb_http.lua
--     lib/vekterdb/core.so   the LuaJIT build of the C module
--     run/                   nginx's pid file, error log and request bodies
--     data/                  where the service looks for items.json and
--                            items.sqlite unless --config and --url say otherwise
-- Options:
--     --core FILE            the LuaJIT build (default BUILD/luajit/vekterdb/core.so
--                            of this checkout, BUILD from the environment or "build")
--     --config FILE          the JSON file db:save() wrote (PREFIX/data/items.json)
--     --url URL              the database (sqlite:///PREFIX/data/items.sqlite?mode=ro)
--     --listen ADDR          address and port (127.0.0.1:8080)
--     --workers N            worker processes (auto: one per core)
--     --user NAME            the workers' user (www-data)
--     --reload-interval S    seconds between checks of the files (5)
--     --openresty            for OpenResty, which has the lua module built in
--                            (Debian's nginx loads it: the default)
--     --conf-only            write nginx.conf only
-- Prints the command that starts nginx.

local function fail(fmt, ...)
  io.stderr:write("setup.lua: ", string.format(fmt, ...), "\n")
  os.exit(2)
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(cmd)
  local ok, _, code = os.execute(cmd)
  if not (ok == true and (code == nil or code == 0) or ok == 0) then fail("failed: %s", cmd) end
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then fail("%s", err) end
  local s = f:read("*a")
  f:close()
  return s
end

-- the checkout's root, from this script's path
local script = arg and arg[0] or "examples/openresty/setup.lua"
local here = script:match("^(.*)/[^/]*$") or "."
local root = here .. "/../.."

-- the command line
local FLAGS = { openresty = true, ["conf-only"] = true }
local VALUES = { prefix = true, core = true, config = true, url = true, listen = true, workers = true,
                 user = true, ["reload-interval"] = true }
local opts = {}
do
  local i = 1
  while arg and arg[i] do
    local name = arg[i]:match("^%-%-(.+)$")
    if name and FLAGS[name] then
      opts[name] = true
    elseif name and VALUES[name] then
      i = i + 1
      if not arg[i] then fail("--%s needs a value", name) end
      opts[name] = arg[i]
    else
      fail("unknown argument '%s' (see the comment at the top of %s)", arg[i], script)
    end
    i = i + 1
  end
end
if not opts.prefix then fail("--prefix DIR is required: the folder to set the service up in") end

-- absolute paths: nginx and the workers do not run in this folder
local cwd = io.popen("pwd"):read("*l") or "."
local function absolute(p)
  if p:sub(1, 1) == "/" then return p end
  return cwd .. "/" .. p
end
local prefix = absolute(opts.prefix):gsub("/+$", "")
if prefix == "" then fail("--prefix must not be /") end

-- values written into nginx's syntax: nothing that would end a string or
-- start a variable there
local function nginx_safe(what, s)
  if s:find("[%s\"'\\;{}$#]") then fail("%s must not hold spaces, quotes, \\, ;, {, }, $ or #: %s", what, s) end
  return s
end
nginx_safe("--prefix", prefix)

local workers = opts.workers or "auto"
if workers ~= "auto" and not workers:match("^[1-9]%d*$") then
  fail("--workers must be auto or a count, got %s", workers)
end
local reload = opts["reload-interval"] or "5"
if not reload:match("^%d+%.?%d*$") then fail("--reload-interval must be a number of seconds, got %s", reload) end
local listen = opts.listen or "127.0.0.1:8080"
if not listen:match("^[%w%.:%[%]]+$") then fail("--listen must be ADDRESS:PORT or PORT, got %s", listen) end
local user = opts.user or "www-data"
if not user:match("^[%w_%-%.]+$") then fail("--user must be a user name, got %s", user) end

local values = {
  load_modules = opts.openresty and "# OpenResty: the lua module is built in" or table.concat({
    "# Debian's nginx loads the lua module (OpenResty has it built in: setup.lua --openresty)",
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;" }, "\n"),
  user = user,
  workers = workers,
  run = prefix .. "/run",
  lua_dir = prefix .. "/lua",
  lib_dir = prefix .. "/lib",
  -- Lua string literals (the init_by_lua_block's code)
  config = string.format("%q", absolute(opts.config or prefix .. "/data/items.json")),
  url = string.format("%q", opts.url or "sqlite:///" .. prefix .. "/data/items.sqlite?mode=ro"),
  reload_interval = reload,
  listen = listen,
}

-- the template: every {{name}} is known, every value is used
local template = read_file(here .. "/nginx.conf.in")
local used = {}
local conf = template:gsub("{{([%w_]+)}}", function(name)
  if not values[name] then fail("nginx.conf.in: unknown {{%s}}", name) end
  used[name] = true
  return values[name]
end)
for name in pairs(values) do
  if not used[name] then fail("nginx.conf.in has no {{%s}}", name) end
end

run("mkdir -p " .. quote(prefix .. "/run") .. " " .. quote(prefix .. "/data"))
if not opts["conf-only"] then
  local core = opts.core or root .. "/" .. (os.getenv("BUILD") or "build") .. "/luajit/vekterdb/core.so"
  local f = io.open(core, "rb")
  if not f then fail("%s is missing: build it with `make luajit` (or name it with --core)", core) end
  f:close()
  run("mkdir -p " .. quote(prefix .. "/lua/vekterdb") .. " " .. quote(prefix .. "/lib/vekterdb"))
  run("cp " .. quote(core) .. " " .. quote(prefix .. "/lib/vekterdb/core.so"))
  run("cp " .. quote(root .. "/lua/vekterdb.lua") .. " " .. quote(here .. "/vekterdb_http.lua") .. " "
      .. quote(prefix .. "/lua/"))
  run("cp " .. quote(root .. "/lua/vekterdb") .. "/*.lua " .. quote(prefix .. "/lua/vekterdb/"))
end
local out = assert(io.open(prefix .. "/nginx.conf.tmp", "wb"))
out:write(conf)
out:close()
assert(os.rename(prefix .. "/nginx.conf.tmp", prefix .. "/nginx.conf"))

print(string.format("wrote %s/nginx.conf; start nginx with\n    nginx -p %s -c %s/nginx.conf -e %s/run/error.log",
  prefix, prefix, prefix, prefix))
