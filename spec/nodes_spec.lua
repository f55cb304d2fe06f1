-- Search nodes (README "Search nodes"): index files kept in the database as
-- PostgreSQL large objects, vekterdb.follow, change notices and
-- wait_for_changes.  The refusals on SQLite (and MySQL) run in every pass;
-- the rest in the postgresql pass.
local vekterdb = require "vekterdb"
local core = require "vekterdb.core"
local H = require "spec.helper"

local now = core.monotime
local LUA = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got none")
  assert(vekterdb.is_error(err), tostring(err))
  return err
end

local function records(n, first, d)
  local r = H.rng(first + 1)
  local out = {}
  for i = 1, n do out[i] = { name = "r" .. (first + i - 1), vector = r.vector(d or 8) } end
  return out
end

describe("search nodes where the database has no large objects", function()
  it("refuse keep_index_in_database and vekterdb.follow with code invalid on SQLite", function()
    local path = H.path("nodes.sqlite")
    local db = vekterdb.new("items", { url = "sqlite:///" .. path, columns = { { name = "name" } } })
    db:insert(records(20, 0))
    db:create_index(H.path("nodes.index"), "Flat", { metric = "l2" })
    local err = error_of(db.keep_index_in_database, db, 2)
    assert.are.equal("invalid", err.code)
    assert.truthy(tostring(err):find("sqlite, which has no large objects", 1, true), tostring(err))
    db:close()
    err = error_of(vekterdb.follow, "sqlite:///" .. path, "items", { cache_dir = H.path("cache") })
    assert.are.equal("invalid", err.code)
    assert.truthy(tostring(err):find("on PostgreSQL", 1, true), tostring(err))
  end)

  it("refuse them on MySQL too", function()
    if H.backend ~= "mysql" then
      pending("the mysql pass")
      return
    end
    local db = H.new({ columns = { { name = "name" } } })
    db:insert(records(10, 0))
    local err = error_of(db.keep_index_in_database, db, 2)
    assert.are.equal("invalid", err.code)
    err = error_of(vekterdb.follow, H.url(), db.table_name, { cache_dir = H.path("cache") })
    assert.are.equal("invalid", err.code)
    db:close()
  end)

  it("check follow's options and wait_for_changes' handle", function()
    local err = error_of(vekterdb.follow, "sqlite://", "items", {})
    assert.are.equal("invalid", err.code)
    assert.truthy(tostring(err):find("cache_dir", 1, true))
    local db = vekterdb.new("items", { url = "sqlite://" })
    err = error_of(db.wait_for_changes, db, 0)
    assert.are.equal("state", err.code)
    assert.truthy(tostring(err):find("vekterdb.follow", 1, true))
    db:close()
  end)
end)

if H.backend ~= "postgresql" then
  describe("search nodes following a PostgreSQL table", function()
    pending("runs only in the postgresql run of make test (VEKTERDB_TEST_BACKEND=postgresql)")
  end)
  return
end

-- a writer with an IVF index file whose table keeps its index in the database
local function writer(n, keep)
  local name = H.table_name("nodes")
  local db = vekterdb.new(name, { url = H.url(), columns = { { name = "name", index = true } } })
  db:insert(records(n, 0))
  db:create_index(H.path("writer.index"), "IVF2,Flat", { metric = "l2" })
  db:set_faiss_runtime_parameters("nprobe=2")
  if keep then db:keep_index_in_database(keep) end
  return db, name
end

local function objects(db)
  return db:execute(('SELECT seq, object, bytes FROM %s ORDER BY seq'):format(
    H.quote(db.table_name .. "__vekterdb_index_objects")))
end

local function top_name(db, v)
  local r = db:search(v, 1, "name", { search_parameters = "nprobe=2" })
  return r[1].neighbors[1] and r[1].neighbors[1].name
end

describe("search nodes following a PostgreSQL table", function()
  it("start from the URL alone: the newest generation, downloaded and checked", function()
    local w, name = writer(300, 2)
    local node = vekterdb.follow(H.url(), name, { cache_dir = H.path("cache") })
    assert.is_nil(node.faiss_index)     -- a node never writes an index file
    assert.are.equal(w.index_generation, node.index_generation)
    assert.are.equal(300, node.index.ntotal)
    assert.are.equal(w.index.ntotal, node.index.ntotal)
    local q = records(5, 1000)
    for _, r in ipairs(q) do assert.are.equal(top_name(w, r.vector), top_name(node, r.vector)) end
    -- then like any handle: what the writer commits is found, deletes vanish
    local more = records(3, 300)
    w:insert(more)
    assert.are.equal("r300", top_name(node, more[1].vector))
    w:delete(w.Record.name:eq("r300"))
    assert.are_not.equal("r300", top_name(node, more[1].vector))
    node:close()
    w:close()
  end)

  it("refuse an object that does not match its recorded digest (code corrupt)", function()
    local w, name = writer(200, 2)
    local rows = objects(w)
    local oid = rows[#rows][2]
    -- one byte changed inside the database
    w:execute("SELECT lo_put($1, 100, '\\xff')", { oid })
    local cache = H.path("cache")
    local err = error_of(vekterdb.follow, H.url(), name, { cache_dir = cache })
    assert.are.equal("corrupt", err.code)
    assert.truthy(tostring(err):find("does not match the SHA-256", 1, true), tostring(err))
    -- nothing of it is left in the cache
    assert.are.equal("", H.sh("ls " .. H.sh_quote(cache)))
    -- a new save stores a good generation
    w:sync_index_to_db()
    w:insert(records(1, 200))
    local node = vekterdb.follow(H.url(), name, { cache_dir = cache })
    assert.are.equal(201, node.index.ntotal)
    node:close()
    w:close()
  end)

  it("reuse a matching cached copy and download again over a damaged one", function()
    local w, name = writer(200, 2)
    local cache = H.path("cache")
    local node = vekterdb.follow(H.url(), name, { cache_dir = cache })
    node:close()
    local file = H.sh("ls " .. H.sh_quote(cache)):gsub("%s+$", "")
    assert.truthy(file:match("%.%d+%.faiss$"), file)
    local path = cache .. "/" .. file
    local size = #H.read_file(path)
    -- damaged on the node's disk: not read, fetched again
    local f = assert(io.open(path, "r+b"))
    f:seek("set", 100)
    f:write("\255\255\255\255")
    f:close()
    node = vekterdb.follow(H.url(), name, { cache_dir = cache })
    assert.are.equal(200, node.index.ntotal)
    assert.are.equal(size, #H.read_file(path))
    assert.are_not.equal("\255\255\255\255", H.read_file(path):sub(101, 104))
    node:close()
    w:close()
  end)

  it("start a node after a rebuild with the newest generation", function()
    local w, name = writer(300, 2)
    local first = w.index_generation
    w:delete(w.Record.name:in_({ "r1", "r2", "r3", "r4", "r5" }))
    w:rebuild_index()
    assert.is_true(w.index_generation > first)
    local node = vekterdb.follow(H.url(), name, { cache_dir = H.path("cache") })
    assert.are.equal(w.index_generation, node.index_generation)
    -- the rebuilt file: without the deleted vectors (the first generation held them)
    assert.are.equal(295, node.index.ntotal)
    node:close()
    w:close()
  end)

  it("let a reader's snapshot finish an object a writer unlinks meanwhile (the design of a download)", function()
    local w, name = writer(200, 2)
    local reader = vekterdb.new(name, { url = H.url() })
    local q = H.quote(name .. "__vekterdb_index_objects")
    -- what follow does: the newest row and its object, in one snapshot
    reader:execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    local row = reader:execute(("SELECT object, sha256 FROM %s ORDER BY seq DESC LIMIT 1"):format(q))[1]
    -- a writer removes every object meanwhile (a rebuild pruning does the same)
    w:keep_index_in_database(0)
    assert.are.equal(0, #objects(w))
    local got = reader:execute("SELECT encode(sha256(lo_get($1)), 'hex')", { row[1] })[1][1]
    assert.are.equal(row[2], got)
    reader:execute("COMMIT")
    -- gone for a new snapshot
    local ok = pcall(reader.execute, reader, "SELECT lo_get($1)", { row[1] })
    assert.is_false(ok)
    reader:close()
    w:close()
  end)

  it("keep only the newest generations' objects, and none once turned off", function()
    local w = writer(100, 2)
    for i = 1, 4 do w:insert(records(2, 100 + 2 * i)) end   -- each insert saves
    local rows = objects(w)
    assert.are.equal(2, #rows)
    assert.are.equal(w.index_generation, rows[2][1])
    -- the others' large objects are gone from the database
    local present = w:execute("SELECT COUNT(*) FROM pg_largeobject_metadata WHERE oid::bigint = ANY($1::bigint[])",
      { "{" .. rows[1][2] .. "," .. rows[2][2] .. "}" })
    assert.are.equal(2, present[1][1])
    local all = w:execute("SELECT COUNT(*) FROM pg_largeobject_metadata")[1][1]
    w:keep_index_in_database(1)
    assert.are.equal(1, #objects(w))
    assert.are.equal(all - 1, w:execute("SELECT COUNT(*) FROM pg_largeobject_metadata")[1][1])
    w:keep_index_in_database(0)
    assert.are.equal(0, #objects(w))
    assert.are.equal(all - 2, w:execute("SELECT COUNT(*) FROM pg_largeobject_metadata")[1][1])
    w:insert(records(1, 500))
    assert.are.equal(0, #objects(w))
    w:close()
  end)

  it("refuse to follow a table that keeps no index in the database (not_found)", function()
    local w, name = writer(50)
    local err = error_of(vekterdb.follow, H.url(), name, { cache_dir = H.path("cache") })
    assert.are.equal("not_found", err.code)
    assert.truthy(tostring(err):find("keep_index_in_database", 1, true))
    w:close()
  end)

  it("refuse to keep an index whose lists are on disk, and never store one another handle saves", function()
    local w, name = writer(300, 2)
    local gen = w.index_generation
    -- the same table, an on-disk index attached by another handle
    local od = vekterdb.new(name, { url = H.url() })
    od:create_index(H.path("ondisk.index"), "IVF2,Flat", { metric = "l2", on_disk = true })
    assert.is_true(od.index.on_disk)
    local err = error_of(od.keep_index_in_database, od, 2)
    assert.are.equal("invalid", err.code)
    assert.truthy(tostring(err):find("on disk", 1, true))
    local before = #objects(w)
    od:insert(records(3, 300))
    od:sync_index_to_db()
    assert.are.equal(before, #objects(w))
    -- a node still starts, from the newest generation it can read
    local node = vekterdb.follow(H.url(), name, { cache_dir = H.path("cache") })
    assert.are.equal(gen, node.index_generation)
    assert.are.equal("r301", top_name(node, records(3, 300)[2].vector))
    node:close()
    od:close()
    w:close()
  end)

  it("wake wait_for_changes when another process commits", function()
    local w, name = writer(100, 2)
    local node = vekterdb.follow(H.url(), name, { cache_dir = H.path("cache") })
    local t0 = now()
    assert.is_false(node:wait_for_changes(0.3))
    assert.is_true(now() - t0 >= 0.25)
    -- another process inserts in a second
    local script = H.path("insert.lua")
    local f = assert(io.open(script, "wb"))
    f:write(([[
      local vekterdb = require "vekterdb"
      os.execute("sleep 1")
      local db = vekterdb.new(%q, { url = %q })
      db:insert({ { name = "late", vector = vekterdb.vector({ 9, 9, 9, 9, 9, 9, 9, 9 }) } })
      db:close()
    ]]):format(name, H.url()))
    f:close()
    os.execute(("%s %s >/dev/null 2>&1 &"):format(LUA, H.sh_quote(script)))
    t0 = now()
    assert.is_true(node:wait_for_changes(20))
    local waited = now() - t0
    assert.is_true(waited >= 0.5 and waited < 15, "waited " .. waited)
    -- caught up by the wait itself
    assert.are.equal(0, node._h:index_lag())
    assert.are.equal("late", top_name(node, vekterdb.vector({ 9, 9, 9, 9, 9, 9, 9, 9 })))
    node:close()
    w:close()
  end)

  it("never miss a record when the node's connection is lost", function()
    local w, name = writer(100, 2)
    local node = vekterdb.follow(H.url(), name, { cache_dir = H.path("cache") })
    assert.is_false(node:wait_for_changes(0))   -- caught up, quiet
    local pid = node:execute("SELECT pg_backend_pid()")[1][1]
    w:execute("SELECT pg_terminate_backend($1)", { pid })
    -- committed while the node had no session: announced to nobody
    local v = records(1, 700)
    w:insert(v)
    os.execute("sleep 0.2")
    assert.are.equal("r700", top_name(node, v[1].vector))
    assert.are_not.equal(pid, node:execute("SELECT pg_backend_pid()")[1][1])
    -- and the new session listens again (its first look reports what it
    -- may have missed while it had none)
    node:wait_for_changes(0)
    assert.is_false(node:wait_for_changes(0))
    w:insert(records(1, 701))
    assert.is_true(node:wait_for_changes(10))
    node:close()
    w:close()
  end)

  it("measure: a node's search without the catch-up query, and the time a commit takes to reach it #slow", function()
    local w, name = writer(2000, 2)
    local node = vekterdb.follow(H.url(), name, { cache_dir = H.path("cache") })
    local plain = vekterdb.new(name, { url = H.url() })
    plain:attach(node.index)
    local q = records(1, 5000)[1].vector
    local function per_search(db)
      local t0, n = now(), 100
      for _ = 1, n do db:search(q, 5) end
      return (now() - t0) / n
    end
    -- rounds taken in turns, the best of each (the machine is shared)
    local t_node, t_plain = math.huge, math.huge
    for _ = 1, 5 do
      t_node = math.min(t_node, per_search(node))
      t_plain = math.min(t_plain, per_search(plain))
    end
    -- commit to node: a writer without an index file (its insert returns at COMMIT)
    local bare = vekterdb.new(name, { url = H.url() })
    local lat = {}
    for i = 1, 30 do
      local r = records(1, 3000 + i)
      bare:insert(r)
      local t0 = now()
      assert.is_true(node:wait_for_changes(10))
      lat[#lat + 1] = now() - t0
      assert.are.equal(r[1].name, top_name(node, r[1].vector))
    end
    table.sort(lat)
    print(("\nsearch nodes: one search of 2,000 vectors, k=5: %.3f ms on a node that heard of no commit, "
      .. "%.3f ms on a plain handle (catch-up query); commit to node caught up: median %.2f ms, max %.2f ms")
      :format(1000 * t_node, 1000 * t_plain, 1000 * lat[15], 1000 * lat[30]))
    assert.is_true(lat[30] < 2)
    bare:close()
    plain:close()
    node:close()
    w:close()
  end)
end)
