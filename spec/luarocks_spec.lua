-- The rockspecs, for every Lua LuaRocks targets here: `luarocks make` installs
-- VekterDB into a fresh tree for Lua 5.1, 5.3, 5.4 and LuaJIT 2.1 (from the
-- build folder of this run: only the binding is compiled per Lua, the engine
-- and FAISS objects are shared), and `make rock`'s .src.rock installs with
-- the Debian default `luarocks`, building everything from the rock with the
-- network shut. Each time the quick example and the command-line tool run
-- from another folder with only that tree's paths. #slow: make check only,
-- in the plain pass (about a minute, most of it the .src.rock's build).
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local cjson = require "cjson"
local H = require "spec.helper"

local quote = H.sh_quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- runs a shell command; returns whether it exited with 0 and what it printed
local function sh(cmd)
  local log = H.path("luarocks.log")
  local ok, _, code = os.execute("( " .. cmd .. " ) > " .. log .. " 2>&1")
  return ok and code == 0, read_file(log) or ""
end

-- nothing of this run's environment reaches luarocks or the installed code:
-- no module paths, no make variables of an enclosing make (MAKEFLAGS carries
-- its command-line variables), no LuaRocks configuration
local CLEAN_ENV = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT "
  .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u LUAROCKS_CONFIG "

-- any download fails at once
local NO_NETWORK = "http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 "
  .. "HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ftp_proxy=http://127.0.0.1:9 "

local ROOT = assert(io.popen("pwd")):read("l")   -- busted runs in the checkout's root

-- the build folder of this run, absolute: LUA_CPATH names its module (make
-- test exports it); `luarocks make` then builds there (BUILD=...)
local function build_dir()
  local cpath = os.getenv("LUA_CPATH") or ""
  for entry in cpath:gmatch("[^;]+") do
    local dir = entry:match("^(.*)/lua5%.4/%?%.so$")
    if dir and exists(dir .. "/lua5.4/vekterdb/core.so") then
      return dir:sub(1, 1) == "/" and dir or ROOT .. "/" .. dir
    end
  end
  return ROOT .. "/build"
end

-- vectors far enough apart that, under L2, each is its own nearest record
local function write_vectors(path, n, d)
  local r = H.rng(77)
  local m = vekterdb.matrix(n, d)
  for i = 1, n do m[i] = r.vector(d, 10) end
  vio.write_fvecs(path, m)
end

-- checks shared by every install: tree is the tree, lua the Lua version
-- LuaRocks used for it ("5.1"), interp the interpreter's path, rock_dir the
-- installed rock's folder (its examples/); where runs the programs
local function installed_tree_checks(t)
  it("installs the modules, the C library and the tool into the tree", function()
    local v = t.lua
    for _, f in ipairs({ "/share/lua/" .. v .. "/vekterdb.lua", "/share/lua/" .. v .. "/vekterdb/where.lua",
                         "/share/lua/" .. v .. "/vekterdb/io.lua", "/share/lua/" .. v .. "/vekterdb/source.lua",
                         "/share/lua/" .. v .. "/vekterdb/progress.lua", "/lib/lua/" .. v .. "/vekterdb/core.so",
                         "/bin/vekterdb" }) do
      assert.is_true(exists(t.tree .. f), "missing " .. f)
    end
  end)

  it("loads vekterdb from the tree alone under its interpreter", function()
    -- LUA_PATH and LUA_CPATH name the tree only (no default paths)
    local env = string.format("cd %s && %s LUA_PATH=%s LUA_CPATH=%s ", quote(t.where), CLEAN_ENV,
      quote(t.tree .. "/share/lua/" .. t.lua .. "/?.lua;" .. t.tree .. "/share/lua/" .. t.lua .. "/?/init.lua"),
      quote(t.tree .. "/lib/lua/" .. t.lua .. "/?.so"))
    local ok, out = sh(env .. quote(t.interp) .. [[ -e '
      local v = require "vekterdb"
      local m = v.matrix({ { 1, 2, 3 }, { 4, 5, 6 } })
      print("version " .. v._VERSION .. " on " .. (rawget(_G, "jit") and jit.version or _VERSION)
            .. ", rows " .. #m)']])
    assert(ok, out)
    assert.matches("version " .. vekterdb._VERSION:gsub("%.", "%%.") .. " on ", out)
    assert.matches("on " .. t.banner, out, 1, true)
    assert.matches("rows 2", out, 1, true)
  end)

  it("runs the quick example from the tree", function()
    local env = string.format("cd %s && %s LUA_PATH=%s LUA_CPATH=%s ", quote(t.where), CLEAN_ENV,
      quote(t.tree .. "/share/lua/" .. t.lua .. "/?.lua"), quote(t.tree .. "/lib/lua/" .. t.lua .. "/?.so"))
    local ok, out = sh(env .. quote(t.interp) .. " " .. quote(t.rock_dir .. "/examples/quickstart.lua"))
    assert(ok, out)
    assert.matches("inserted 10000 records of dimension 64", out, 1, true)
    assert.matches("records 0 and 1 found each other first", out, 1, true)
  end)

  it("runs the command-line tool under that interpreter", function()
    local tool = t.tree .. "/bin/vekterdb"
    -- LuaRocks' wrapper starts the tree's interpreter on the installed script
    assert.truthy((read_file(tool) or ""):find("'" .. t.interp .. "'", 1, true), read_file(tool))
    local run = string.format("cd %s && %s %s ", quote(t.where), CLEAN_ENV, quote(tool))
    local ok, out = sh(run .. "--help")
    assert(ok, out)
    assert.matches("usage: vekterdb COMMAND", out, 1, true)

    local db = "sqlite:///" .. t.where .. "/cli.sqlite"
    local fvecs = t.where .. "/cli.fvecs"
    write_vectors(fvecs, 60, 8)
    ok, out = sh(run .. "import " .. quote(fvecs) .. " --url " .. quote(db) .. " --table items -q")
    assert(ok, out)
    ok, out = sh(run .. "index Flat --metric l2 --url " .. quote(db) .. " --table items -o "
      .. quote(t.where .. "/cli.index") .. " --save " .. quote(t.where .. "/cli.json") .. " -q")
    assert(ok, out)
    local log = H.path("search.out")
    ok, out = sh(run .. "search " .. quote(fvecs) .. " --config " .. quote(t.where .. "/cli.json")
      .. " --url " .. quote(db) .. " -k 2 -q > " .. quote(log))
    assert(ok, out)
    local n = 0
    for line in (read_file(log) or ""):gmatch("[^\n]+") do
      local r = cjson.decode(line)
      assert.are.equal(r.query, r.neighbors[1].idx)   -- each vector finds itself first
      n = n + 1
    end
    assert.are.equal(60, n)
  end)
end

describe("luarocks #slow", function()
  -- nothing here depends on the database backend: once, in the SQLite pass
  if H.backend ~= "sqlite" then
    it("runs in the SQLite pass only", function() pending("backend " .. H.backend) end)
    return
  end

  -- the Luas LuaRocks targets here; LuaJIT through a configuration that names
  -- its interpreter and headers (LuaRocks would pick PUC Lua 5.1 for 5.1)
  local TARGETS = {
    { name = "Lua 5.1", lua = "5.1", interp = "/usr/bin/lua5.1", banner = "Lua 5.1", flavour = "lua5.1" },
    { name = "Lua 5.3", lua = "5.3", interp = "/usr/bin/lua5.3", banner = "Lua 5.3", flavour = "lua5.3" },
    { name = "Lua 5.4", lua = "5.4", interp = "/usr/bin/lua5.4", banner = "Lua 5.4", flavour = "lua5.4" },
    { name = "LuaJIT 2.1", lua = "5.1", interp = "/usr/bin/luajit", banner = "LuaJIT 2.1", flavour = "luajit",
      config = "examples/luarocks-luajit.lua" },
  }

  for _, target in ipairs(TARGETS) do
    describe("make for " .. target.name, function()
      local t = { lua = target.lua, interp = target.interp, banner = target.banner }

      setup(function()
        t.tree = H.path("tree")
        t.where = H.path("elsewhere")
        assert(os.execute("mkdir -p " .. quote(t.where)))
        t.rock_dir = t.tree .. "/lib/luarocks/rocks-" .. t.lua .. "/vekterdb/scm-1"
        local config = target.config and "LUAROCKS_CONFIG=" .. quote(ROOT .. "/" .. target.config) .. " " or ""
        local ok, out = sh(string.format("cd %s && %s %s %sBUILD=%s luarocks --lua-version %s --tree %s make vekterdb-scm-1.rockspec",
          quote(ROOT), CLEAN_ENV, NO_NETWORK, config, quote(build_dir()), t.lua, quote(t.tree)))
        assert(ok, "luarocks make failed:\n" .. out)
        t.make_log = out
      end)

      it("installs the binding built with that Lua's headers", function()
        -- the Makefile's folder for the Lua of LUA_INCDIR, then the same bytes in the tree
        local so = build_dir() .. "/" .. target.flavour .. "/vekterdb/core.so"
        assert.truthy(t.make_log:find("cp " .. so .. " ", 1, true), t.make_log)
        assert.are.equal(read_file(so), read_file(t.tree .. "/lib/lua/" .. t.lua .. "/vekterdb/core.so"))
      end)

      installed_tree_checks(t)
    end)
  end

  describe("make rock, then luarocks install ./vekterdb-<version>-1.src.rock", function()
    local rock = "vekterdb-" .. vekterdb._VERSION .. "-1.src.rock"
    local t = {}
    local dir, install_log

    setup(function()
      dir = H.path("rock")
      local ok, out = sh(string.format("cd %s && %s make --no-print-directory rock BUILD=%s ROCK_DIR=%s",
        quote(ROOT), CLEAN_ENV, quote(build_dir()), quote(dir)))
      assert(ok, "make rock failed:\n" .. out)
      -- the Lua Debian's `luarocks` targets without --lua-version
      local lv = assert(io.popen(CLEAN_ENV .. "luarocks config lua_version")):read("l")
      local interp = assert(io.popen(CLEAN_ENV .. "luarocks config variables.LUA")):read("l")
      t.lua, t.interp = lv, interp
      t.banner = "Lua " .. lv
      t.tree = H.path("tree")
      t.where = H.path("elsewhere")
      assert(os.execute("mkdir -p " .. quote(t.where)))
      t.rock_dir = t.tree .. "/lib/luarocks/rocks-" .. lv .. "/vekterdb/" .. vekterdb._VERSION .. "-1"
      -- from the rock's folder, as the README says; a fresh build folder
      -- inside LuaRocks' unpacked copy: the engine and FAISS's C API are
      -- compiled from the rock
      ok, install_log = sh(string.format("cd %s && %s %s luarocks install --tree %s ./%s",
        quote(dir), CLEAN_ENV, NO_NETWORK, quote(t.tree), rock))
      assert(ok, "luarocks install failed:\n" .. install_log)
    end)

    it("packs the versioned rockspec and a source archive with FAISS's source in it", function()
      local ok, out = sh("unzip -l " .. quote(dir .. "/" .. rock))
      assert(ok, out)
      local name = "vekterdb-" .. vekterdb._VERSION
      assert.truthy(out:find(name .. "-1.rockspec", 1, true), out)
      assert.truthy(out:find(name .. ".tar.gz", 1, true), out)
      ok, out = sh("cd " .. quote(dir) .. " && unzip -p " .. rock .. " " .. name .. ".tar.gz | tar -tzf -")
      assert(ok, out)
      assert.truthy(out:find(name .. "/Makefile\n", 1, true), out)
      assert.truthy(out:find(name .. "/bindings/compat.h\n", 1, true), out)
      local vendor = name:gsub("%p", "%%%0") .. "/vendor/faiss_[%d.]+"
      assert.truthy(out:find(vendor .. "%.orig%.tar%.gz\n"), out)
      assert.truthy(out:find(vendor .. "%-[%w.+~]+%.debian%.tar%.xz\n"), out)
      assert.falsy(out:find(name .. "/build/", 1, true), "the build folder is packed")
    end)

    it("built FAISS's C API from the bundled source, downloading nothing", function()
      assert.truthy(install_log:find("the bundled source", 1, true), install_log)
      assert.falsy(install_log:find("Downloading", 1, true), install_log)
    end)

    installed_tree_checks(t)
  end)

  it("the versioned rockspec builds as the scm one does", function()
    local function load_rockspec(file)
      local env = {}
      assert(loadfile(file, "t", env))()
      return env
    end
    local scm = load_rockspec("vekterdb-scm-1.rockspec")
    local rel = load_rockspec("vekterdb-" .. vekterdb._VERSION .. "-1.rockspec")
    assert.are.equal(vekterdb._VERSION .. "-1", rel.version)
    assert.are.equal("vekterdb-" .. vekterdb._VERSION .. ".tar.gz", rel.source.url)
    for _, k in ipairs({ "rockspec_format", "package", "description", "dependencies", "build" }) do
      assert.are.same(scm[k], rel[k], k)
    end
  end)
end)
