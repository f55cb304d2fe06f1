-- The concurrency contract, one deterministic spec per promise: several
-- handles (and processes) on one table and one index file. Each runs on the
-- backend under test (VEKTERDB_TEST_BACKEND); on SQLite the database is a
-- file, since two connections must share it. spec/stress_spec.lua checks
-- the same promises under load.
local vekterdb = require "vekterdb"
local H = require "spec.helper"
local S = require "spec.support.stress_common"

local LUA = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"
local PG = H.backend == "postgresql"
local MY = H.backend == "mysql"
local HUGE = math.maxinteger or 2 ^ 53   -- (LuaJIT has no math.maxinteger)

local vec = S.vector_of     -- a record's vector, derived from its id (16-d)
local clock = require("vekterdb.core").monotime   -- wall-clock seconds

-- this file's own folder (removed at the end) and paths in it
local folder
local counter = 0
local function path(name)
  if not folder then
    folder = H.path("concurrency")
    assert(os.execute("mkdir -p '" .. folder .. "'"))
  end
  counter = counter + 1
  return ("%s/%d-%s"):format(folder, counter, name)
end

local sh_quote, sh, alive = H.sh_quote, H.sh, H.alive

-- records { id = prefix .. i, vector = vec(id) } for i = first .. first + n - 1
local function recs(prefix, n, first)
  local out = {}
  for i = first or 1, (first or 1) + n - 1 do
    local id = prefix .. i
    out[#out + 1] = { id = id, vector = vec(id) }
  end
  return out
end

-- a new table (column id: text, not unique) in a database two handles can
-- share; returns handle A, the url and the table name
local function setup(url)
  url = url or (H.backend ~= "sqlite" and H.url() or ("sqlite:///" .. path("conc.db")))
  local name = H.table_name("conc")
  local a = vekterdb.new(name, { url = url, columns = { { name = "id", type = "text", index = true } } })
  return a, url, name
end

-- another handle on the same table
local function open(url, name, file, extra)
  local opts = { url = url, faiss_index = file }
  for k, v in pairs(extra or {}) do opts[k] = v end
  vekterdb.log.level = "error"    -- an index file lagging behind the table is what these specs make
  local ok, db = pcall(vekterdb.new, name, opts)
  vekterdb.log.level = "warn"
  if not ok then error(db, 2) end
  return db
end

-- the table's rows as { id = count }
local function id_counts(db)
  local out = {}
  for _, row in ipairs(db:execute("SELECT id, COUNT(*) FROM " .. H.quote(db.table_name) .. " GROUP BY id")) do
    out[row[1]] = tonumber(row[2])
  end
  return out
end

local function idx_of(db, id)
  local rows = db:execute("SELECT idx FROM " .. H.quote(db.table_name) .. " WHERE id = " .. db:placeholder(1), { id })
  assert(#rows == 1, ("%d rows for id %s"):format(#rows, id))
  return tonumber(rows[1][1])
end

-- asserts that db's search finds each record (by its id) first, at distance 0
local function assert_found(db, ids, who, opts)
  for _, id in ipairs(ids) do
    local nb = db:search(vec(id), 3, "id", opts)[1].neighbors
    assert(nb[1] and nb[1].id == id and nb[1].metric < 1e-5,
      ("%s: record %s missing from search (top hit %s)"):format(who, id, nb[1] and tostring(nb[1].id) or "none"))
  end
end

local function ids_of(list, prefix, n, first)
  list = list or {}
  for i = first or 1, (first or 1) + n - 1 do list[#list + 1] = prefix .. i end
  return list
end

-- Runs `code` in a child lua5.4 process with this module's Lua path (the C
-- module comes from LUA_CPATH_5_4 / LUA_CPATH, so this works under LuaJIT's
-- busted too). Returns its pid and the file holding its output.
local function spawn(code)
  local script = path("child.lua")
  local log = script .. ".log"
  local f = assert(io.open(script, "w"))
  f:write(("package.path = %q\n"):format(package.path))
  if _VERSION == "Lua 5.4" and not os.getenv("LUA_CPATH_5_4") then
    f:write(("package.cpath = %q\n"):format(package.cpath))
  end
  f:write(code)
  f:close()
  local out = sh(("%s %s >%s 2>&1 & echo $!"):format(LUA, sh_quote(script), sh_quote(log)))
  return assert(tonumber(out:match("%d+")), out), log
end

local function wait_for_file(file, seconds, log)
  for _ = 1, seconds * 50 do
    local f = io.open(file)
    if f then f:close() return end
    sh("sleep 0.02")
  end
  error("the child did not get there in time; its output: " .. (log and sh("cat " .. sh_quote(log)) or ""), 2)
end

local function wait_exit(pid, seconds)
  for _ = 1, seconds * 50 do
    if not alive(pid) then return end
    sh("sleep 0.02")
  end
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  error("the child did not finish in time", 2)
end

-- a child that opens the table, takes the write lock (SQLite: BEGIN
-- IMMEDIATE; PostgreSQL: a transaction holding an EXCLUSIVE lock on the
-- table, which every insert waits for), creates `mark`, holds the lock for
-- `hold` seconds, then commits
local function hold_write_lock(url, name, hold)
  local mark = path("locked")
  local lock = PG and ('BEGIN; LOCK TABLE "%s" IN EXCLUSIVE MODE'):format(name) or "BEGIN IMMEDIATE"
  if MY then
    -- the named lock VekterDB's writers of the table take turns with
    lock = ("START TRANSACTION; SELECT GET_LOCK('%s', 10)"):format(H.mysql_lock_name(url, name))
  end
  local pid, log = spawn(([[
    local vekterdb = require "vekterdb"
    local db = vekterdb.new(%q, { url = %q })
    for stmt in (%q):gmatch("[^;]+") do db:execute(stmt) end
    io.open(%q, "w"):close()
    os.execute("sleep %s")
    db:execute("COMMIT")
    db:close()   -- (MySQL: the end of the session releases the named lock)
    print("released")
  ]]):format(name, url, lock, mark, tostring(hold)))
  wait_for_file(mark, 10, log)
  return pid, log
end

-- a trigger that makes every INSERT into table `t` fail; returns the SQL that drops it
local function refuse_inserts(db, t)
  if PG then
    local fn = db.table_name .. "_simulated"
    db:execute(('CREATE FUNCTION "%s"() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION \'simulated\'; END $$ '
      .. "LANGUAGE plpgsql"):format(fn))
    db:execute(('CREATE TRIGGER simulated BEFORE INSERT ON "%s" FOR EACH ROW EXECUTE FUNCTION "%s"()'):format(t, fn))
    return ('DROP TRIGGER simulated ON "%s"'):format(t)
  end
  if MY then
    db:execute(("CREATE TRIGGER `%s_simulated` BEFORE INSERT ON `%s` FOR EACH ROW "
      .. "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'simulated'"):format(t, t))
    return ("DROP TRIGGER `%s_simulated`"):format(t)
  end
  db:execute(('CREATE TRIGGER simulated BEFORE INSERT ON "%s" BEGIN SELECT RAISE(ABORT, \'simulated\'); END'):format(t))
  return "DROP TRIGGER simulated"
end

-- the files in file's folder whose names start with file's name .. ".tmp."
local function temp_files(file)
  local dir, base = file:match("^(.*)/([^/]+)$")
  local out = {}
  for line in sh("ls -1a " .. sh_quote(dir)):gmatch("[^\n]+") do
    if line:sub(1, #base + 5) == base .. ".tmp." then out[#out + 1] = line end
  end
  return out
end

describe("concurrency contract", function()
  teardown(function()
    if folder then os.execute("rm -rf " .. sh_quote(folder)) end
  end)

  -- a. writers wait for each other
  it("a: an insert waits for another connection's write transaction, and a short timeout names itself", function()
    local a, url, name = setup()
    a:insert(recs("seed", 5))
    -- a handle with a short wait, opened before the lock is taken
    local short
    if PG then
      short = vekterdb.new(name, { url = url, connect_args = { options = "-c lock_timeout=200" } })
    elseif MY then
      short = vekterdb.new(name, { url = url, connect_args = { lock_timeout = "0.2" } })
    else
      short = vekterdb.new(name, { url = url .. "?timeout=0.2" })
    end

    local pid = hold_write_lock(url, name, 0.8)
    local t0 = clock()
    assert.are.equal(10, a:insert(recs("a", 10)))
    local waited = clock() - t0
    assert(waited > 0.3, ("the insert did not wait for the lock (%.3f s)"):format(waited))
    wait_exit(pid, 10)

    pid = hold_write_lock(url, name, 0.8)
    t0 = clock()
    local err = H.error_of(short.insert, short, recs("short", 3))
    local failed_after = clock() - t0
    wait_exit(pid, 10)
    if PG then
      assert.matches("lock timeout", err)
    else
      assert.matches("database is locked", err, 1, true)
      -- needs: the message names the busy timeout that ran out, e.g. "(timeout 0.2 s)" or "after 200 ms"
      assert(err:find("timeout", 1, true) and (err:find("0%.2 ?s") or err:find("200 ?ms")),
        "the error does not name the timeout: " .. err)
    end
    assert(failed_after < 0.7, ("the short timeout was not used (failed after %.3f s)"):format(failed_after))
    local counts = id_counts(a)
    assert.are.equal(nil, counts.short1)
    for _, id in ipairs(ids_of({}, "a", 10)) do assert.are.equal(1, counts[id]) end
    short:close()
    a:close()
  end)

  -- b. idx is assigned inside the write transaction and never reused
  it("b: a record gets a fresh idx even when another handle inserts and deletes one while it is generated", function()
    local a, url, name = setup()
    a:insert(recs("seed", 20))
    local file = path("b.index")
    a:create_index(file, "Flat", { metric = "l2" })
    local b = open(url, name, file)
    local deleted_idx
    local calls = 0
    local function gen()
      calls = calls + 1
      if calls == 1 then
        -- before A's first record exists: B takes the next idx and deletes it
        assert.are.equal(1, b:insert({ { id = "b-1", vector = vec("b-1") } }))
        deleted_idx = idx_of(b, "b-1")
        assert.are.equal(1, b:delete(b.Record.id:eq("b-1")))
        return { id = "a-1", vector = vec("a-1") }
      end
      return nil
    end
    assert.are.equal(1, a:insert(gen))
    local got = idx_of(a, "a-1")
    assert(got ~= deleted_idx, ("A's record got idx %d, the idx of B's deleted record"):format(got))
    assert(got > deleted_idx, ("A's record got idx %d, below B's %d"):format(got, deleted_idx))
    local rows = {}
    for rec in a:select(a.Record.id:eq("a-1"), "idx", "id") do rows[#rows + 1] = rec end
    assert.are.same({ { idx = got, id = "a-1" } }, rows)
    assert_found(a, { "a-1" }, "A")
    assert_found(b, { "a-1" }, "B")
    -- and the deleted one is found by neither
    for who, db in pairs({ A = a, B = b }) do
      for _, n in ipairs(db:search(vec("b-1"), 5, "id")[1].neighbors) do
        assert(n.id ~= "b-1", who .. " returned the deleted record")
      end
    end
    b:close()
    a:close()
  end)

  -- c. a handle catches up with what another handle inserted
  it("c: two handles insert in turn on one index file, and each finds the other's records", function()
    local a, url, name = setup()
    a:insert(recs("seed", 30))
    local file = path("c.index")
    a:create_index(file, "Flat", { metric = "l2" })
    local b = open(url, name, file)
    assert.are.equal(50, b:insert(recs("b", 50)))
    -- today: "the index holds N vectors but the table's next idx is M: run sync_index_to_db first"
    assert.are.equal(50, a:insert(recs("a", 50)))
    assert_found(a, ids_of({}, "b", 50), "A")
    assert_found(b, ids_of({}, "a", 50), "B")
    assert_found(a, ids_of({}, "a", 50), "A")
    local counts = id_counts(a)
    for _, id in ipairs(ids_of(ids_of({}, "a", 50), "b", 50)) do assert.are.equal(1, counts[id]) end
    b:close()
    a:close()
  end)

  -- d. another handle's rebuild_index
  it("d: after another handle deletes most records and rebuilds, search and nearest_neighbors return full results", function()
    local a, url, name = setup()
    a:insert(recs("r", 500))
    local file = path("d.index")
    a:create_index(file, "IVF4,Flat", { metric = "l2" })
    a:set_faiss_runtime_parameters("nprobe=4")
    local b = open(url, name, file)
    assert.are.equal(400, b:delete(b.Record.idx:lt(400)))
    b:rebuild_index()
    local function live(id) return tonumber(id:match("%d+")) > 400 end     -- r401 .. r500 have idx 400 .. 499
    for _, q in ipairs({ "r1", "r250", "r401", "r500" }) do
      local nb = a:search(vec(q), 10, "id")[1].neighbors
      assert(#nb == 10, ("A:search(%s, 10): %d neighbors"):format(q, #nb))
      for _, n in ipairs(nb) do assert(live(n.id), "A:search returned deleted record " .. n.id) end
    end
    local nn = a:nearest_neighbors("id", { "r401", "r450" }, 10, "id")
    assert.are.equal(2, #nn)
    for _, r in ipairs(nn) do
      assert(#r.neighbors == 10, ("A:nearest_neighbors(%s, 10): %d neighbors"):format(r.id, #r.neighbors))
      for _, n in ipairs(r.neighbors) do assert(live(n.id), "A:nearest_neighbors returned deleted record " .. n.id) end
    end
    b:close()
    a:close()
  end)

  -- e. another handle's delete
  it("e: records another handle deleted never come back, and the result is not short", function()
    local a, url, name = setup()
    a:insert(recs("e", 100))
    local file = path("e.index")
    a:create_index(file, "Flat", { metric = "l2" })
    local b = open(url, name, file)
    local top = {}
    for _, n in ipairs(a:search(vec("e7"), 10, "id")[1].neighbors) do top[#top + 1] = n.id end
    assert.are.equal(10, #top)
    assert.are.equal(10, b:delete(b.Record.id:in_(top)))
    local gone = {}
    for _, id in ipairs(top) do gone[id] = true end
    local nb = a:search(vec("e7"), 10, "id")[1].neighbors
    assert.are.equal(10, #nb)
    for _, n in ipairs(nb) do assert(not gone[n.id], "A returned " .. n.id .. ", deleted by B") end
    b:close()
    a:close()
  end)

  -- f. a mapped (read-only) handle reads the newer index file another handle saved
  it("f: a handle opened with mmap finds records another handle inserted since, and none it deleted", function()
    local a0, url, name = setup()
    a0:insert(recs("m", 300))
    local file = path("f.index")
    a0:create_index(file, "IVF4,Flat", { metric = "l2" })
    a0:close()
    local a = open(url, name, file, { mmap = true })
    local p = { search_parameters = "nprobe=4" }
    assert_found(a, { "m1", "m300" }, "A (mmap)", p)
    local b = open(url, name, file)
    assert.are.equal(30, b:insert(recs("new", 30)))          -- saves a newer index file
    assert.are.equal(5, b:delete(b.Record.id:in_({ "m1", "m2", "m3", "m4", "m5" })))
    assert_found(a, ids_of({}, "new", 30), "A (mmap)", p)
    for i = 1, 5 do
      local nb = a:search(vec("m" .. i), 10, "id", p)[1].neighbors
      assert.are.equal(10, #nb)
      for _, n in ipairs(nb) do
        assert(not n.id:match("^m[1-5]$"), "A (mmap) returned " .. n.id .. ", deleted by B")
      end
    end
    b:close()
    a:close()
  end)

  -- g. rows committed, the index file's digest not recorded
  it("g: an insert whose index save cannot be recorded reports the rows, which are there once and findable", function()
    local a, url, name = setup()
    a:insert(recs("seed", 20))
    local file = path("g.index")
    a:create_index(file, "Flat", { metric = "l2" })       -- the side table exists from here on
    local drop = refuse_inserts(a, name .. "__vekterdb_index_files")
    local ok, res = pcall(a.insert, a, recs("g", 10))
    if ok then
      assert.are.equal(10, res)
    else
      -- needs: an error saying the records were inserted (so that nobody retries them)
      assert(tostring(res):lower():find("inserted", 1, true),
        "the error does not say the 10 records were inserted: " .. tostring(res))
    end
    local counts = id_counts(a)
    for _, id in ipairs(ids_of({}, "g", 10)) do
      assert(counts[id] == 1, ("record %s is in the table %s times"):format(id, tostring(counts[id])))
    end
    assert.are.equal(30, a:count())
    assert_found(a, ids_of({}, "g", 10), "A")
    a:execute(drop)
    -- the handle goes on working, and a fresh one finds every record
    assert.are.equal(5, a:insert(recs("h", 5)))
    local c = open(url, name, file)
    c:sync_index_to_db()     -- the contract allows the records to need a sync here
    assert_found(c, ids_of(ids_of({}, "g", 10), "h", 5), "a fresh handle")
    c:close()
    a:close()
  end)

  -- h. temporary index files left by a killed save
  it("h: a temporary index file left by a killed save is removed by the next open or save", function()
    local a, url, name = setup()
    a:insert(recs("t", 20))
    local file = path("h.index")
    a:create_index(file, "Flat", { metric = "l2" })
    a:close()
    -- engine/faiss_index.c names them "<file>.tmp.<pid>.<n>" (older versions "<file>.tmp.<pid>"); 999999 runs no process
    local stale = file .. ".tmp.999999"
    local f = assert(io.open(stale, "wb"))
    f:write(string.rep("\0", 4096))
    f:close()
    assert.are.same({ (stale:match("[^/]+$")) }, temp_files(file))
    local b = open(url, name, file)
    assert.are.equal(5, b:insert(recs("u", 5)))             -- saves the index file
    assert.are.same({}, temp_files(file))
    assert_found(b, { "u1", "t20" }, "B")
    b:close()
  end)

  -- i. huge k_extra_neighbors, with and without a filter
  it("i: search with k_extra_neighbors = math.maxinteger returns k neighbors, filtered or not", function()
    local a = setup()
    local records = recs("i", 100)
    for n, r in ipairs(records) do r.id = (n % 4 == 0 and "keep-" or "other-") .. n end
    a:insert(records)
    a:create_index(path("i.index"), "Flat", { metric = "l2" })
    local q = records[10].vector
    local nb = a:search(q, 5, "id", { k_extra_neighbors = HUGE })[1].neighbors
    assert.are.equal(5, #nb)
    assert.are.equal(records[10].id, nb[1].id)
    local filter = a.Record.id:like("keep-%")
    nb = a:search(q, 5, "id", { k_extra_neighbors = HUGE, filter = filter })[1].neighbors
    assert(#nb == 5, ("a filtered search with k_extra_neighbors = math.maxinteger returned %d neighbors"):format(#nb))
    for _, n in ipairs(nb) do assert.matches("^keep%-", n.id) end
    -- the same 5 as with a modest k_extra_neighbors
    local want = a:search(q, 5, "id", { k_extra_neighbors = 20, filter = filter })[1].neighbors
    assert.are.same(want, nb)
    a:close()
  end)

  -- j. every write saves the index file: writers in several processes save
  -- one file name at once
  it("j: processes saving one index file at once leave on disk a file the table trusts", function()
    local a, url, name = setup()
    a:insert(recs("seed", 20))
    local file = path("j.index")
    a:create_index(file, "Flat", { metric = "l2" })
    local pids, logs = {}, {}
    for w = 1, 3 do
      local done = path("j-done-" .. w)
      pids[w], logs[w] = spawn(([[
        local vekterdb = require "vekterdb"
        local S = require "spec.support.stress_common"
        local warned = {}
        vekterdb.log.sink = function(level, msg) warned[#warned + 1] = level .. ": " .. msg end
        local db = vekterdb.new(%q, { url = %q, faiss_index = %q })
        for i = 1, 25 do
          local id = "w%d-" .. i
          db:insert({ { id = id, vector = S.vector_of(id) } })
        end
        for _, w in ipairs(warned) do
          -- an index that lags the table is what other writers make; a save that fails is not
          assert(not w:find("could not be saved", 1, true) and not w:find("SHA-256", 1, true), w)
        end
        db:close()
        io.open(%q, "w"):close()
      ]]):format(name, url, file, w, done))
      logs[w] = { log = logs[w], done = done }
    end
    for w = 1, 3 do
      wait_exit(pids[w], 120)
      local f = io.open(logs[w].done)
      assert(f, "writer " .. w .. " failed: " .. sh("cat " .. sh_quote(logs[w].log)))
      f:close()
    end
    -- whatever order the saves ended in, the file on disk opens untrusted
    local b = open(url, name, file)
    assert.are.equal(95, b:count())
    assert_found(b, ids_of(ids_of(ids_of({}, "w1-", 25), "w2-", 25), "w3-", 25), "B")
    b:close()
    a:close()
  end)
end)
