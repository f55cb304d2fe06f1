-- Lua code the engine runs in the middle of a call (a records iterator, a
-- progress function, a record's __index, a finalizer) cannot close the
-- database under it nor call it again: both raise a clear error, the running
-- call goes on, and the handle works (and closes) afterwards.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D = 4

local function vec(i)
  return { i % 7 + 1, i % 5 + 1, i % 3 + 1, 1 }
end

local function records(n, first)
  local out = {}
  for i = 1, n do out[i] = { idx = (first or 0) + i - 1, vector = vec(i) } end
  return out
end

-- an iterator over records(n, first) that calls hook(i) before giving record i
local function generator(n, hook, first)
  local recs, i = records(n, first), 0
  return function()
    i = i + 1
    if recs[i] and hook then hook(i) end
    return recs[i]
  end
end

-- every way to close the handle: the Lua object's close and __close, the C
-- handle's close, __close and __gc (called by hand: the collector never
-- meets a running handle); returns the error each raised
local function close_attempts(db)
  local h = db._h
  local errs = {}
  local function try(name, fn, ...)
    local ok, err = pcall(fn, ...)
    errs[name] = ok and "closed!" or tostring(err)
  end
  try("db:close", db.close, db)
  try("__close", getmetatable(db).__close, db)
  try("h:close", h.close, h)
  try("h.__close", getmetatable(h).__close, h)
  try("h.__gc", getmetatable(h).__gc, h)
  return errs
end

local function assert_refused(errs, running)
  local want = "close: cannot close the database while " .. running .. " is running"
  for name, err in pairs(errs) do
    assert(err:find(want, 1, true), name .. ": " .. err)
  end
  assert.are.equal(5, (function() local n = 0 for _ in pairs(errs) do n = n + 1 end return n end)())
end

-- the handle is whole: it counts, searches when it can, then closes
local function still_works(db, count)
  assert.are.equal(count, db:count())
  if db.index then
    local res = db:search({ vec(1) }, 1, "idx")
    assert.are.equal(1, #res[1].neighbors)
  end
  db:close()
  assert.truthy(H.error_of(db.count, db):find("closed database", 1, true))
  db:close()   -- twice is fine
end

describe("callbacks", function()
  it("the records iterator of insert cannot close the database", function()
    local db = H.new()
    local errs
    local n = db:insert(generator(10, function(i) if i == 5 then errs = close_attempts(db) end end),
                        { batch_size = 3 })
    assert.are.equal(10, n)
    assert_refused(errs, "insert")
    still_works(db, 10)
  end)

  it("an iterator's uncaught close error ends insert and frees the handle", function()
    local db = H.new()
    db:insert(records(2))
    local err = H.error_of(db.insert, db, generator(10, function(i) if i == 4 then db:close() end end, 2),
                           { batch_size = 2 })
    assert.truthy(err:find("close: cannot close the database while insert is running", 1, true), err)
    still_works(db, 2 + 2)   -- the batch committed before the error stays
  end)

  it("a record's __index cannot close the database", function()
    local db = H.new()
    local errs
    local recs = records(6)
    recs[3] = setmetatable({}, { __index = function(_, k)
      if k == "vector" then
        errs = errs or close_attempts(db)
        return vec(3)
      end
      if k == "idx" then return 2 end
    end })
    assert.are.equal(6, db:insert(recs))
    assert_refused(errs, "insert")
    assert.are.equal(1, #db:fetch({ 2 }, "idx"))
    still_works(db, 6)
  end)

  it("the progress function of insert and insert_matrix cannot close the database", function()
    local db = H.new()
    local calls, errs = 0, nil
    local progress = function()
      calls = calls + 1
      errs = errs or close_attempts(db)
    end
    db:insert(records(10), { batch_size = 4, progress = progress })
    assert.are.equal(3, calls)
    assert_refused(errs, "insert")
    errs = nil
    local m = vekterdb.matrix(5, D)
    assert.are.equal(5, db:insert_matrix(m, { batch_size = 2, progress = progress }))
    assert_refused(errs, "insert_matrix")
    still_works(db, 15)
  end)

  it("the progress function of create_index, train_index and sync_index_to_db cannot close the database", function()
    local db = H.new()
    db:insert(records(300))
    local phases, errs = {}, {}
    local function progress(_, _, phase)
      if not errs[phase] then
        phases[#phases + 1] = phase
        errs[phase] = close_attempts(db)
      end
    end
    db:create_index(H.path("cb.index"), "IVF4,Flat", { metric = "l2", batch_size = 100, progress = progress })
    assert.are.same({ "train", "add" }, phases)
    assert_refused(errs.train, "train")
    assert_refused(errs.add, "sync")
    still_works(db, 300)
    -- the same, called one by one
    db = H.new()
    db:insert(records(300))
    db:attach(vekterdb.faiss.index_factory(D, "IVF4,Flat", "l2"), H.path("cb1.index"))
    phases, errs = {}, {}
    db:train_index(0, { progress = progress })
    assert_refused(errs.train, "train")
    assert.are.equal(300, db:sync_index_to_db({ batch_size = 100, progress = progress }))
    assert_refused(errs.add, "sync")
    assert.are.same({ "train", "add" }, phases)
    still_works(db, 300)
  end)

  it("a callback cannot call the database it runs in", function()
    local db = H.new()
    db:insert(records(3))
    db:create_index(H.path("nested.index"), "Flat", { metric = "l2" })
    local errs = {}
    local function try(name, fn, ...)
      local ok, err = pcall(fn, ...)
      errs[#errs + 1] = { name, ok, tostring(err) }
    end
    local n = db:insert(generator(4, function(i)
      if i == 2 then
        try("insert", db.insert, db, records(1, 900))
        try("count", db.count, db)
        try("delete", db.delete, db, db.Record.idx:ge(0))
        try("search", db.search, db, { vec(1) }, 1, "idx")
        try("C insert", db._h.insert, db._h, records(1, 901), 10, 1, true)
      end
    end, 3), { progress = function()
      if #errs < 6 then try("execute", db.execute, db, "DELETE FROM " .. db.table_name) end
    end })
    assert.are.equal(4, n)
    local want = { insert = "insert", count = "count", delete = "delete", search = "search",
                   ["C insert"] = "insert", execute = "execute" }
    assert.are.equal(6, #errs)
    for _, e in ipairs(errs) do
      assert.is_false(e[2], e[1])
      assert.truthy(e[3]:find(want[e[1]] .. ": cannot use the database while insert is running", 1, true), e[3])
    end
    -- reading what the handle already knows is fine
    local seen
    db:insert(generator(1, function()
      seen = { #db.columns, type(db._h:info().driver), #db._h:columns() }
    end, 7))
    assert.are.same({ 2, "string", 2 }, seen)
    still_works(db, 3 + 4 + 1)
  end)

  it("a callback can read a cursor of its database, which stays open until the call ends", function()
    local db = H.new()
    db:insert(records(5))
    local it, cur = db:select(nil, "idx", { order_by = "idx" })
    local read, errs = {}, nil
    db:insert(generator(3, function()
      read[#read + 1] = it().idx
      errs = errs or close_attempts(db)
    end, 5), { progress = function() read[#read + 1] = it().idx end })
    assert.are.same({ 0, 1, 2, 3 }, read)
    assert_refused(errs, "insert")
    assert.are.equal(4, it().idx)
    cur:close()
    still_works(db, 8)
  end)

  it("a callback can search with another handle on the same table", function()
    if H.backend ~= "sqlite" then pending("needs a shared SQLite file") return end
    local db, url = H.new({ file = true })
    db:insert(records(50))
    db:create_index(H.path("cb2.index"), "Flat", { metric = "l2" })
    local other = vekterdb.new(db.table_name, { url = url, faiss_index = db.faiss_index })
    local found
    db:insert(generator(3, nil, 50), { progress = function()
      found = other:search({ vec(1) }, 1, "idx")[1].neighbors[1]
    end })
    assert.is_not_nil(found)
    other:close()
    still_works(db, 53)
  end)

  it("a finalizer closing the database during a call is refused or safe", function()
    local db = H.new()
    db:insert(records(200))
    db:create_index(H.path("cb3.index"), "Flat", { metric = "l2" })
    local results = {}
    -- finalizers run at allocations, some inside the engine's calls
    for _ = 1, 50 do
      local function finalize()
        results[#results + 1] = pcall(db._h.close, db._h) and "closed" or "refused"
      end
      if newproxy then   -- Lua 5.1 and LuaJIT call __gc of userdata only
        getmetatable(newproxy(true)).__gc = finalize
      else
        setmetatable({}, { __gc = finalize })
      end
      local ok = pcall(function()
        for _ = 1, 5 do
          db._h:search(vekterdb.matrix(20, D), 10, {}, { "idx", "vector" })
          local it = db:select(nil, "idx", "vector")
          for _ in it do end
        end
      end)
      collectgarbage()
      if not ok or results[#results] == "closed" then break end
    end
    assert.is_true(#results > 0)
    if results[#results] == "refused" then still_works(db, 200) end
  end)
end)
