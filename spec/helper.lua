-- spec/helper.lua: what the backend-neutral specs share.
-- VEKTERDB_TEST_BACKEND selects the database ("sqlite", the default, or
-- "postgresql", which needs VEKTERDB_TEST_PG_URL, or "mysql", which needs
-- VEKTERDB_TEST_MYSQL_URL).
local vekterdb = require "vekterdb"

local H = {}

H.backend = os.getenv("VEKTERDB_TEST_BACKEND") or "sqlite"
H.pg_url = os.getenv("VEKTERDB_TEST_PG_URL")
H.mysql_url = os.getenv("VEKTERDB_TEST_MYSQL_URL")

local counter = 0
local tmpdir

--- A private folder for this process's files (index files, SQLite files).
function H.tmpdir()
  if not tmpdir then
    local base = os.getenv("VEKTERDB_TEST_TMP") or "/tmp"
    tmpdir = string.format("%s/vekterdb-spec-%d-%d", base, os.time(), math.random(1, 1e9))
    assert(os.execute("mkdir -p '" .. tmpdir .. "'"))
  end
  return tmpdir
end

--- A path inside tmpdir that does not exist yet.
function H.path(name)
  counter = counter + 1
  return string.format("%s/%d-%s", H.tmpdir(), counter, name)
end

--- The whole content of a file.
function H.read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

--- A table name not used before in this run.
function H.table_name(prefix)
  counter = counter + 1
  return string.format("%s_%d_%d", prefix or "t", counter, math.random(1, 1e6))
end

--- The URL of the backend under test. For SQLite: a fresh in-memory
-- database unless a file is asked for.
function H.url(file)
  if H.backend == "postgresql" then
    assert(H.pg_url, "VEKTERDB_TEST_PG_URL is not set")
    return H.pg_url
  end
  if H.backend == "mysql" then
    assert(H.mysql_url, "VEKTERDB_TEST_MYSQL_URL is not set")
    return H.mysql_url
  end
  if file then return "sqlite:///" .. H.path("db.sqlite") end
  return "sqlite://"
end

--- A table or column name quoted for raw SQL on the backend under test.
function H.quote(name)
  local q = H.backend == "mysql" and "`" or '"'
  return q .. name:gsub(q, q .. q) .. q
end

--- The name of the MySQL lock the writers of table `name` take turns with
-- (store_mysql.c: FNV-1a over the database and the quoted table name).
-- (64-bit integers and `~`: Lua 5.3 and later, where the MySQL pass runs; the
-- chunk is compiled there only, so this file still loads under LuaJIT)
if math.type then
  H.mysql_lock_name = assert(load([[
    local url, name = ...
    local database = url:match("^[^:]+://[^/]*/([^?]*)") or ""
    local h = 1469598103934665603
    for _, part in ipairs({ database, "`" .. name:gsub("`", "``") .. "`" }) do
      for i = 1, #part do h = (h ~ part:byte(i)) * 1099511628211 end
      h = (h ~ 46) * 1099511628211   -- "."
    end
    return ("vekterdb_%016x"):format(h)
  ]], "=mysql_lock_name"))
end

--- vekterdb.new on the backend under test, with a fresh table name.
function H.new(opts, name)
  opts = opts or {}
  opts.url = opts.url or H.url(opts.file)
  opts.file = nil
  return vekterdb.new(name or H.table_name(), opts), opts.url
end

--- Deterministic normal numbers (Box-Muller over the Park-Miller generator),
-- the same under Lua 5.4 and LuaJIT, independent of math.random.
function H.rng(seed)
  local state = (seed or 1) % 2147483647
  if state <= 0 then state = state + 2147483646 end
  local function uniform()
    state = (state * 48271) % 2147483647
    return state / 2147483647
  end
  local r = {}
  function r.uniform() return uniform() end
  function r.normal(scale)
    local u1, u2 = uniform(), uniform()
    return (scale or 1) * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
  end
  function r.vector(d, scale)
    local v = vekterdb.vector(d)
    for j = 1, d do v[j] = r.normal(scale) end
    return v
  end
  return r
end

--- n records { idx, vector } of random normal d-d vectors.
function H.records(n, d, seed)
  local r = H.rng(seed or 7)
  local out = {}
  for i = 0, n - 1 do out[#out + 1] = { idx = i, vector = r.vector(d) } end
  return out
end

function H.normalize(v)
  local s = 0
  for j = 1, #v do s = s + v[j] * v[j] end
  s = math.sqrt(s)
  for j = 1, #v do v[j] = v[j] / s end
  return v
end

--- runs fn and returns the error message it raised (fails if it did not)
--- A string quoted for the shell.
function H.sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command and returns what it printed.
function H.sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

--- Whether process pid is running.
function H.alive(pid)
  local ok = os.execute("kill -0 " .. pid .. " 2>/dev/null")
  return ok == true or ok == 0
end

--- fn() with vekterdb.set_num_threads(n), the count restored after (also on error)
function H.with_threads(n, fn)
  local before = vekterdb.get_num_threads()
  vekterdb.set_num_threads(n)
  local ok, r = pcall(fn)
  vekterdb.set_num_threads(before)
  if not ok then error(r, 0) end
  return r
end

function H.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got none")
  return tostring(err)
end

return H
