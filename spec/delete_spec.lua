-- Deletes and updates: gone from select, search and nearest_neighbors at
-- once, in every handle and process; idx values are never reused; vectors
-- found by their new value; tombstones that survive reopening; every path
-- one transaction.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D = 8

local function records(n, first, seed)
  local r = H.rng(seed or 5)
  local out = {}
  for i = first or 0, (first or 0) + n - 1 do
    out[#out + 1] = { idx = i, vector = r.vector(D), name = "n" .. i, kind = i % 3 == 0 and "x" or "y" }
  end
  return out
end

local function new_db(opts)
  opts = opts or {}
  opts.columns = {
    { name = "name", type = "text", unique = true, nullable = false },
    { name = "kind", type = "text" },
  }
  return H.new(opts)
end

local function ids_of(iter)
  local out = {}
  for rec in iter do out[#out + 1] = rec.idx end
  table.sort(out)
  return out
end

local function neighbor_ids(res)
  local out = {}
  for _, n in ipairs(res.neighbors) do out[#out + 1] = n.idx end
  return out
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- a trigger that refuses the table's deletes (of old idx `idx`) or inserts,
-- in the backend's dialect; returns the statement that drops it
local function refuse(db, event, idx)
  local t = db.table_name
  if H.backend == "postgresql" then
    local cond = idx and ("OLD.idx = " .. idx) or "true"
    db:execute(("CREATE FUNCTION %s_refuse() RETURNS trigger AS $$ BEGIN IF %s THEN "
      .. "RAISE EXCEPTION 'refused by trigger'; END IF; RETURN NULL; END $$ LANGUAGE plpgsql")
      :format(t, cond))
    db:execute(("CREATE TRIGGER refuse BEFORE %s ON %s FOR EACH ROW EXECUTE FUNCTION %s_refuse()")
      :format(event, t, t))
    return ("DROP TRIGGER refuse ON %s"):format(t)
  end
  if H.backend == "mysql" then
    -- trigger names belong to the database there
    db:execute(("CREATE TRIGGER `%s_refuse` BEFORE %s ON `%s` FOR EACH ROW BEGIN IF %s THEN "
      .. "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by trigger'; END IF; END")
      :format(t, event, t, idx and ("OLD.idx = " .. idx) or "TRUE"))
    return ("DROP TRIGGER `%s_refuse`"):format(t)
  end
  local cond = idx and (" WHEN old.idx = " .. idx) or ""
  db:execute(("CREATE TRIGGER refuse BEFORE %s ON %s%s BEGIN SELECT RAISE(ABORT, "
    .. "'refused by trigger'); END"):format(event, t, cond))
  return "DROP TRIGGER refuse"
end

local lua_cpath, lua_path = package.cpath, package.path

-- runs a Lua chunk in a child lua5.4 process with this module's paths;
-- returns what it printed
local function child(code)
  local script = H.path("child.lua")
  local f = assert(io.open(script, "w"))
  f:write(("package.cpath = %q\npackage.path = %q\n"):format(lua_cpath, lua_path), code)
  f:close()
  local p = assert(io.popen("lua5.4 " .. script .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(script)
  return out
end

describe("delete", function()
  it("removes the matching records from select, count, search and nearest_neighbors at once", function()
    local db = new_db()
    local recs = records(60)
    db:insert(recs)
    local file = H.path("del.index")
    db:create_index(file, "Flat", { metric = "l2" })
    assert.are.equal(20, db:delete(db.Record.kind:eq("x")))
    assert.are.equal(40, db:count())
    assert.are.equal(20, db:deleted_count())
    assert.are.same({}, ids_of(db:select(db.Record.kind:eq("x"), "idx")))
    -- record 3's own vector: it is not found any more, 10 live neighbors are
    local res = db:search(recs[4].vector, 10, "idx", "kind")[1]
    assert.are.equal(10, #res.neighbors)
    for _, n in ipairs(res.neighbors) do assert.are.equal("y", n.kind) end
    local nn = db:nearest_neighbors(db.Record.idx:in_({ 1, 2 }), 39, "idx", "kind")
    assert.are.equal(2, #nn)
    for _, r in ipairs(nn) do
      assert.are.equal(39, #r.neighbors)
      for _, n in ipairs(r.neighbors) do assert.are.equal("y", n.kind) end
    end
    local plan = db:explain_search(recs[4].vector, 3)
    assert.are.equal("selector", plan.plan)
    assert.are.equal(20, plan.excluded)
    assert.are.equal(0, db:delete(db.Record.kind:eq("x")))
    db:close()
    os.remove(file)
  end)

  it("keeps the idx of every other record, and never gives a deleted idx out again", function()
    local db = new_db()
    db:insert(records(10))
    local file = H.path("seq.index")
    db:create_index(file, "Flat")
    assert.are.equal(2, db:delete(db.Record.idx:ge(8)))
    assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7 }, ids_of(db:select(nil, "idx")))
    db:insert({ { vector = records(1)[1].vector, name = "new" } })
    assert.are.same({ 10 }, ids_of(db:select(db.Record.name:eq("new"), "idx")))
    local err = H.error_of(db.insert, db, { { idx = 9, vector = records(1)[1].vector, name = "again" } })
    assert.truthy(err:find("idx 9 is not consecutive: the next record must have idx 11", 1, true))
    assert.are.equal(11, db.index.ntotal)
    assert.is_nil(db._h:find_gap())
    db:close()
    os.remove(file)
  end)

  it("treats deleted idx values as accounted for when syncing: the index gets placeholders", function()
    local db, url = new_db({ file = true })
    db:insert(records(20))
    local file = H.path("sync.index")
    db:create_index(file, "Flat", { metric = "l2" })
    db:close()
    -- records added and some deleted while nobody had the index open
    local plain = vekterdb.new(db.table_name, { url = url })
    plain:insert(records(10, 20, 9))
    assert.are.equal(3, plain:delete(db.Record.idx:in_({ 21, 25, 29 })))
    plain:close()
    local lines = {}
    local old = vekterdb.log.sink
    vekterdb.log.sink = function(level, msg) lines[#lines + 1] = level .. ": " .. msg end
    local again = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    vekterdb.log.sink = old
    assert.truthy(lines[1]:find("lacks 7 records of table " .. db.table_name, 1, true))
    assert.is_nil(again._h:find_gap())
    assert.are.equal(10, again:sync_index_to_db())
    assert.are.equal(30, again.index.ntotal)
    local found = {}
    for _, r in ipairs(again:search(records(30)[22].vector, 27, "idx")[1].neighbors) do found[r.idx] = true end
    assert.is_nil(found[21])
    assert.is_nil(found[25])
    assert.is_nil(found[29])
    assert.is_true(found[20] and found[22] and found[28])
    again:close()
    os.remove(file)
  end)

  it("is seen by a second handle on the same database at once", function()
    local db, url = new_db({ file = true })
    local recs = records(50)
    db:insert(recs)
    local file = H.path("shared.index")
    db:create_index(file, "Flat", { metric = "l2" })
    local other = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    assert.are.equal(7, neighbor_ids(other:search(recs[8].vector, 1, "idx")[1])[1])
    db:delete(db.Record.idx:eq(7))
    local res = other:search(recs[8].vector, 5, "idx")[1]
    assert.are.equal(5, #res.neighbors)
    assert.is_false(has(neighbor_ids(res), 7))
    assert.are.equal(49, other:count())
    other:close()
    db:close()
    os.remove(file)
  end)

  it("is seen by another process", function()
    local db, url = new_db({ file = true })
    if H.backend ~= "sqlite" then url = H.url() end
    local recs = records(50)
    db:insert(recs)
    local file = H.path("process.index")
    db:create_index(file, "Flat", { metric = "l2" })
    local config = H.path("process.json")
    db:save(config)
    -- the child prints the 5 neighbors of record 12's vector and the count
    local code = ([[
      local vekterdb = require "vekterdb"
      local db = vekterdb.load(%q, %q)
      local q = vekterdb.vector(%q)
      local out = {}
      for _, n in ipairs(db:search(q, 5, "idx")[1].neighbors) do out[#out + 1] = n.idx end
      print(table.concat(out, ","), db:count())
      db:close()
    ]]):format(config, url, recs[13].vector:tobytes())
    local before = child(code)
    assert.truthy(before:match("^12,"), before)
    db:delete(db.Record.idx:eq(12))
    local after = child(code)
    local list, count = after:match("^([%d,]+)%s+(%d+)")
    assert.truthy(list, after)
    assert.are.equal("49", count)
    local got = {}
    for v in list:gmatch("%d+") do got[#got + 1] = tonumber(v) end
    assert.are.equal(5, #got)
    assert.is_false(has(got, 12))
    db:close()
    os.remove(file)
    os.remove(config)
  end)

  it("survives close and reopen, and save and load", function()
    local db, url = new_db({ file = true })
    local recs = records(30)
    db:insert(recs)
    local file = H.path("reopen.index")
    db:create_index(file, "HNSW16", { metric = "l2" })
    local config = H.path("reopen.json")
    db:save(config)
    db:delete(db.Record.idx:in_({ 4, 5 }))
    db:close()
    local again = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    assert.are.equal(2, again:deleted_count())
    assert.is_false(has(neighbor_ids(again:search(recs[5].vector, 28, "idx")[1]), 4))
    again:close()
    local loaded = vekterdb.load(config, url)
    local res = loaded:search(recs[6].vector, 28, "idx")[1]
    assert.are.equal(28, #res.neighbors)
    assert.is_false(has(neighbor_ids(res), 5))
    assert.is_false(has(neighbor_ids(res), 4))
    loaded:close()
    os.remove(file)
    os.remove(config)
  end)

  it("needs a where-clause", function()
    local db = new_db()
    local err = H.error_of(db.delete, db)
    assert.truthy(err:find("delete: expected a where-clause", 1, true))
    db:close()
  end)

  it("changes nothing when it fails half way", function()
    local db = new_db()
    db:insert(records(12))
    db:create_index(H.path("fail.index"), "Flat")
    local drop = refuse(db, "DELETE", 5)
    local err = H.error_of(db.delete, db, db.Record.idx:le(6))
    assert.truthy(err:find("refused by trigger", 1, true))
    assert.are.equal(12, db:count())
    assert.are.equal(0, db:deleted_count())
    assert.are.equal(12, #db:search(records(1)[1].vector, 12, "idx")[1].neighbors)
    db:execute(drop)
    assert.are.equal(7, db:delete(db.Record.idx:le(6)))
    db:close()
  end)
end)

describe("update", function()
  it("changes other columns with plain SQL and returns the count", function()
    local db = new_db()
    db:insert(records(9))
    assert.are.equal(3, db:update(db.Record.kind:eq("x"), { kind = "z" }))
    assert.are.same({ 0, 3, 6 }, ids_of(db:select(db.Record.kind:eq("z"), "idx")))
    assert.are.equal(0, db:update(db.Record.kind:eq("x"), { kind = "w" }))
    db:close()
  end)

  it("changes nothing when it fails (a unique value taken twice)", function()
    local db = new_db()
    db:insert(records(4))
    local err = H.error_of(db.update, db, db.Record.idx:le(1), { name = "same" })
    assert.truthy(err:find("cannot update table", 1, true))
    assert.are.same({ 0, 1 }, ids_of(db:select(db.Record.name:in_({ "n0", "n1" }), "idx")))
    err = H.error_of(db.update, db, db.Record.idx:eq(1), { idx = 7 })
    assert.truthy(err:find("update: the idx column cannot be updated", 1, true))
    err = H.error_of(db.update, db, db.Record.idx:eq(1), { nope = 7 })
    assert.truthy(err:find("update: table " .. db.table_name .. " has no column 'nope'", 1, true))
    err = H.error_of(db.update, db, db.Record.idx:eq(1), { name = 12 })
    assert.truthy(err:find("column 'name' holds text values, got integer", 1, true))
    db:close()
  end)

  it("gives a record a new vector: found by the new value, not by the old one", function()
    local db = new_db()
    local recs = records(40)
    db:insert(recs)
    local file = H.path("upd.index")
    db:create_index(file, "Flat", { metric = "l2" })
    local far = vekterdb.vector(D)
    for j = 1, D do far[j] = 100 + j end
    local n, moved = db:update(db.Record.name:eq("n17"), { vector = far, kind = "moved" })
    assert.are.equal(1, n)
    assert.are.same({ [17] = 40 }, moved)
    assert.are.equal(41, db.index.ntotal)
    local best = db:search(far, 1, "idx", "name", "kind")[1].neighbors[1]
    assert.are.same({ idx = 40, name = "n17", kind = "moved", metric = 0 }, best)
    local old = db:search(recs[18].vector, 5, "idx", "name")[1]
    for _, nb in ipairs(old.neighbors) do assert.are_not.equal("n17", nb.name) end
    assert.are.equal(40, db:count())
    assert.are.equal(41, vekterdb.faiss.read_index(file).ntotal)
    -- several records: new idx values in the order of the old ones
    n, moved = db:update(db.Record.idx:in_({ 30, 5, 12 }), { vector = far })
    assert.are.equal(3, n)
    assert.are.same({ [5] = 41, [12] = 42, [30] = 43 }, moved)
    assert.are.equal("n12", db:fetch({ 42 }, "name")[1].name)
    -- no vector: a count only
    assert.are.same({ 1 }, { db:update(db.Record.idx:eq(41), { kind = "k" }) })
    db:close()
    os.remove(file)
  end)

  it("leaves table and index as they were when the new rows are refused", function()
    local db = new_db()
    local recs = records(10)
    db:insert(recs)
    db:create_index(H.path("upd-fail.index"), "Flat")
    local drop = refuse(db, "INSERT")
    local err = H.error_of(db.update, db, db.Record.idx:eq(3), { vector = recs[1].vector })
    assert.truthy(err:find("refused by trigger", 1, true))
    assert.are.equal(10, db.index.ntotal)
    assert.are.equal(10, db:count())
    assert.are.equal(0, db:deleted_count())
    assert.are.equal(3, db:search(recs[4].vector, 1, "idx")[1].neighbors[1].idx)
    db:execute(drop)
    local n, moved = db:update(db.Record.idx:eq(3), { vector = recs[1].vector })
    assert.are.equal(1, n)
    assert.are.same({ [3] = 10 }, moved)
    db:close()
  end)
end)

describe("rebuild_index", function()
  it("removes deleted vectors from an IVF index, keeps every idx, and the index stays in step", function()
    local db, url = new_db({ file = true })
    local recs = records(400)
    db:insert(recs)
    local file = H.path("ivf.index")
    db:create_index(file, "IVF4,Flat", { metric = "l2" })
    db:set_faiss_runtime_parameters("nprobe=4")
    assert.are.equal(100, db:delete(db.Record.idx:lt(100)))
    assert.are.equal(400, db.index.ntotal)
    local reclaimed, removed = db:rebuild_index()
    assert.are.equal(100, reclaimed)
    assert.are.equal(100, removed)
    assert.are.equal(300, db.index.ntotal)
    assert.are.equal(300, vekterdb.faiss.read_index(file).ntotal)
    assert.are.equal("index", db:explain_search(recs[1].vector, 3).plan)
    local res = db:search(recs[151].vector, 300, "idx")[1]
    assert.are.equal(300, #res.neighbors)
    assert.are.equal(150, res.neighbors[1].idx)
    for _, n in ipairs(res.neighbors) do assert.is_true(n.idx >= 100) end
    -- inserts continue after the largest idx ever used
    db:insert({ { vector = recs[1].vector, name = "late" } })
    assert.are.equal(301, db.index.ntotal)
    assert.are.equal(400, db:search(recs[1].vector, 1, "idx")[1].neighbors[1].idx)
    assert.are.same({ 0, 0 }, { db:rebuild_index() })
    db:save(H.path("ivf.json"))
    db:close()
    local lines = {}
    local old = vekterdb.log.sink
    vekterdb.log.sink = function(level, msg) lines[#lines + 1] = level .. ": " .. msg end
    local again = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    vekterdb.log.sink = old
    assert.are.same({}, lines)
    assert.are.equal(0, again:sync_index_to_db())
    assert.are.equal(100, again:deleted_count())
    again:close()
    os.remove(file)
  end)

  it("reclaims nothing from an index that numbers vectors by position", function()
    local db = new_db()
    db:insert(records(30))
    db:create_index(H.path("flat.index"), "Flat")
    db:delete(db.Record.idx:lt(10))
    assert.are.same({ 0, 0 }, { db:rebuild_index() })
    assert.are.equal(30, db.index.ntotal)
    assert.are.equal("selector", db:explain_search(records(1)[1].vector, 3).plan)
    db:close()
  end)

  it("create_index on a new file leaves deleted records out of an IVF index", function()
    local db = new_db()
    local recs = records(300)
    db:insert(recs)
    db:delete(db.Record.idx:ge(250))
    db:create_index(H.path("fresh.index"), "IVF2,Flat", { metric = "l2" })
    assert.are.equal(250, db.index.ntotal)
    assert.are.equal("index", db:explain_search(recs[1].vector, 3).plan)
    db:insert({ { vector = recs[1].vector, name = "next" } })
    local two = neighbor_ids(db:search(recs[1].vector, 2, "idx", { search_parameters = "nprobe=2" })[1])
    table.sort(two)
    assert.are.same({ 0, 300 }, two)
    db:close()
  end)
end)
