-- The rockspec: `luarocks make` installs VekterDB into a fresh tree (no
-- network: the build is the one `make build` made), and the quick example and
-- the command-line tool run from that tree alone. #slow: it runs in the plain
-- pass of make test, not again under the sanitizers.
local H = require "spec.helper"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local log = H.path("luarocks.log")
  local ok, _, code = os.execute(cmd .. " > " .. log .. " 2>&1")
  local f = io.open(log, "rb")
  local out = f and f:read("a") or ""
  if f then f:close() end
  return ok and code == 0, out
end

-- the build folder of this run: LUA_CPATH names its module (make test
-- exports it); the Makefile's BUILD then points `luarocks make` at it
local function build_dir()
  local cpath = os.getenv("LUA_CPATH") or ""
  for entry in cpath:gmatch("[^;]+") do
    local dir = entry:match("^(.*)/lua5%.4/%?%.so$")
    if dir then
      local f = io.open(dir .. "/lua5.4/vekterdb/core.so", "rb")
      if f then f:close() return dir end
    end
  end
  return "build"
end

describe("luarocks make #slow", function()
  -- nothing here depends on the database backend: once, in the SQLite pass
  if H.backend ~= "sqlite" then
    it("runs in the SQLite pass only", function() pending("backend " .. H.backend) end)
    return
  end

  local tree, env

  setup(function()
    tree = H.path("tree")
    -- run where busted runs: the checkout's root
    local ok, out = sh(string.format("BUILD=%s luarocks --lua-version 5.4 --tree %s make vekterdb-scm-1.rockspec",
      quote(build_dir()), quote(tree)))
    assert(ok, "luarocks make failed:\n" .. out)
    -- the tree's paths and the system's, nothing from the checkout
    local lpath = string.format("%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;", tree, tree)
    local cpath = string.format("%s/lib/lua/5.4/?.so;;", tree)
    env = string.format("cd %s && LUA_PATH=%s LUA_CPATH=%s ", quote(H.tmpdir()), quote(lpath), quote(cpath))
  end)

  it("installs the modules and the C library into the tree", function()
    for _, f in ipairs({ "/share/lua/5.4/vekterdb.lua", "/share/lua/5.4/vekterdb/where.lua",
                         "/share/lua/5.4/vekterdb/io.lua", "/share/lua/5.4/vekterdb/source.lua",
                         "/share/lua/5.4/vekterdb/progress.lua", "/lib/lua/5.4/vekterdb/core.so",
                         "/bin/vekterdb" }) do
      assert.is_not_nil(io.open(tree .. f, "rb"), "missing " .. f)
    end
  end)

  it("lets lua5.4 require vekterdb from the tree", function()
    local ok, out = sh(env .. [[lua5.4 -e 'local v = require "vekterdb"
      assert(package.searchpath("vekterdb", package.path):find("/share/lua/5.4/", 1, true))
      assert(package.searchpath("vekterdb.core", package.cpath):find("/lib/lua/5.4/", 1, true))
      print("version " .. v._VERSION)']])
    assert(ok, out)
    assert.matches("version %d+%.%d+%.%d+", out)
  end)

  it("runs the quick example from the tree", function()
    local ok, out = sh(env .. "lua5.4 " .. quote(tree .. "/lib/luarocks/rocks-5.4/vekterdb/scm-1/examples/quickstart.lua"))
    assert(ok, out)
    assert.matches("inserted 10000 records of dimension 64", out)
    assert.matches("records 0 and 1 found each other first", out)
  end)

  it("installs the command-line tool", function()
    local ok, out = sh("env -u LUA_PATH -u LUA_CPATH " .. quote(tree .. "/bin/vekterdb") .. " --help")
    assert(ok, out)
    assert.matches("usage: vekterdb COMMAND", out)
  end)
end)
