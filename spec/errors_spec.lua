-- Bad input gets a clear Lua error and changes nothing.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D = 4

local function fresh(n, opts)
  opts = opts or {}
  opts.columns = opts.columns or { { name = "id", type = "text", unique = true, nullable = false } }
  local db, url = H.new(opts)
  local r = H.rng(11)
  local recs = {}
  for i = 0, (n or 10) - 1 do recs[#recs + 1] = { idx = i, vector = r.vector(D), id = "r" .. i } end
  if #recs > 0 then db:insert(recs) end
  return db, url
end

local function expect_error(fragment, fn, ...)
  local err = H.error_of(fn, ...)
  assert(err:find(fragment, 1, true), "expected an error containing '" .. fragment .. "', got: " .. err)
  return err
end

describe("bad records", function()
  local db, file

  before_each(function()
    db = fresh(10)
    file = H.path("bad.index")
    db:create_index(file, "Flat")
  end)

  after_each(function()
    db:close()
    os.remove(file)
  end)

  local function unchanged()
    assert.are.equal(10, db:count())
    assert.are.equal(10, db.index.ntotal)
  end

  it("refuses a vector of the wrong dimension", function()
    expect_error("record 2: vector has dimension 3, expected 4", db.insert, db,
      { { idx = 10, id = "a", vector = { 1, 2, 3, 4 } }, { idx = 11, id = "b", vector = { 1, 2, 3 } } })
    unchanged()
  end)

  it("refuses NaN and infinite values", function()
    expect_error("record 1: vector holds a NaN or infinite value at position 2", db.insert, db,
      { { idx = 10, id = "a", vector = { 1, 0 / 0, 3, 4 } } })
    expect_error("record 1: vector holds a NaN or infinite value at position 4", db.insert, db,
      { { idx = 10, id = "a", vector = { 1, 2, 3, math.huge } } })
    unchanged()
  end)

  it("refuses idx values that are not consecutive, or duplicated", function()
    expect_error("record 1: idx 12 is not consecutive: the next record must have idx 10", db.insert, db,
      { { idx = 12, id = "a", vector = { 1, 2, 3, 4 } } })
    expect_error("record 2: idx 10 is not consecutive: the next record must have idx 11", db.insert, db,
      { { idx = 10, id = "a", vector = { 1, 2, 3, 4 } }, { idx = 10, id = "b", vector = { 1, 2, 3, 4 } } })
    expect_error("record 1: idx 3 is not consecutive", db.insert, db,
      { { idx = 3, id = "a", vector = { 1, 2, 3, 4 } } })
    unchanged()
  end)

  it("refuses records missing a required column or the vector", function()
    expect_error("record 1: record lacks required column 'id'", db.insert, db,
      { { idx = 10, vector = { 1, 2, 3, 4 } } })
    expect_error("record 1: record has no vector in column 'vector'", db.insert, db,
      { { idx = 10, id = "x" } })
    unchanged()
  end)

  it("refuses unknown columns", function()
    expect_error("record 1: unknown column 'colour' in table " .. db.table_name, db.insert, db,
      { { idx = 10, id = "x", vector = { 1, 2, 3, 4 }, colour = "red" } })
    expect_error("search: table " .. db.table_name .. " has no column 'colour'", db.search, db,
      { 1, 2, 3, 4 }, 1, "colour")
    expect_error("table " .. db.table_name .. " has no column 'colour'", function() return db.Record.colour end)
    unchanged()
  end)

  it("refuses values of the wrong type", function()
    expect_error("record 1: column 'id' holds text values, got integer", db.insert, db,
      { { idx = 10, id = 5, vector = { 1, 2, 3, 4 } } })
    expect_error("record 1: the vector is boolean", db.insert, db, { { idx = 10, id = "x", vector = true } })
    unchanged()
  end)

  it("rolls back the whole batch on a unique violation, table and index", function()
    local err = H.error_of(db.insert, db, { { idx = 10, id = "new", vector = { 1, 2, 3, 4 } },
                                            { idx = 11, id = "r3", vector = { 1, 2, 3, 4 } } })
    assert.truthy(err:find("cannot insert the record with idx 11", 1, true) or err:find("r3", 1, true)
      or err:lower():find("unique", 1, true), err)
    unchanged()
    assert.are.equal(10, vekterdb.faiss.read_index(file).ntotal)
    -- and the next insert goes on from idx 10
    assert.are.equal(1, db:insert({ { idx = 10, id = "new", vector = { 1, 2, 3, 4 } } }))
  end)

  it("keeps earlier batches when a generator raises half way, and drops the batch in flight", function()
    local i = 9
    local err = H.error_of(db.insert, db, function()
      i = i + 1
      if i == 17 then error("source broke") end
      return { idx = i, id = "g" .. i, vector = { i, 1, 1, 1 } }
    end, { batch_size = 4 })
    assert.truthy(err:find("source broke", 1, true))
    assert.are.equal(14, db:count())            -- the batch 10..13 was committed
    assert.are.equal(14, db.index.ntotal)       -- and added to the index
    assert.are.equal(14, vekterdb.faiss.read_index(file).ntotal)   -- which was saved
  end)
end)

describe("bad index requests", function()
  it("passes on FAISS's message for a factory string it rejects", function()
    local db = fresh(5)
    expect_error("FAISS rejected the factory string: could not parse index string IVF-oops", db.create_index,
      db, H.path("x.index"), "IVF-oops")
    assert.is_nil(db.index)
    db:close()
  end)

  it("refuses to search before an index exists", function()
    local db = fresh(5)
    expect_error("search: no FAISS index: create_index or attach one first", db.search, db, { 1, 2, 3, 4 }, 1)
    expect_error("nearest_neighbors: no FAISS index", db.nearest_neighbors, db, "idx", { 1 }, 1)
    db:close()
  end)

  it("refuses a query of the wrong dimension and bad k", function()
    local db = fresh(5)
    local file = H.path("q.index")
    db:create_index(file, "Flat")
    expect_error("vector has dimension 3, expected 4", db.search, db, { 1, 2, 3 }, 1)
    expect_error("search: k must be a positive integer, got 0", db.search, db, { 1, 2, 3, 4 }, 0)
    expect_error("search: k must be a positive integer, got -2", db.search, db, { 1, 2, 3, 4 }, -2)
    expect_error("search: k must be a positive integer, got 1.5", db.search, db, { 1, 2, 3, 4 }, 1.5)
    expect_error('search: k must be a positive integer, got "3" (a string)', db.search, db, { 1, 2, 3, 4 }, "3")
    expect_error("k = 1099511627776 is larger than the limit of 100000", db.search, db, { 1, 2, 3, 4 }, 2 ^ 40)
    expect_error("k_extra_neighbors must be a non-negative integer", db.search, db, { 1, 2, 3, 4 }, 1,
      { k_extra_neighbors = -1 })
    expect_error("search: unknown option 'nprobe'", db.search, db, { 1, 2, 3, 4 }, 1, { nprobe = 3 })
    -- k larger than the table: every record, once
    assert.are.equal(5, #db:search({ 1, 2, 3, 4 }, 50, "idx")[1].neighbors)
    db:close()
    os.remove(file)
  end)

  it("refuses an unreadable or mismatched index file", function()
    local db, url = fresh(5, { file = true })
    local missing = H.path("missing.index")
    expect_error("cannot read index file " .. missing, vekterdb.new, db.table_name,
      { url = url, faiss_index = missing })
    local junk = H.path("junk.index")
    local f = io.open(junk, "wb")
    f:write("this is not a FAISS index")
    f:close()
    -- files the table never saved are refused before FAISS reads them
    -- (spec/trust_spec.lua); trusted, they still meet every check
    expect_error("was not saved by VekterDB for table " .. db.table_name, vekterdb.new, db.table_name,
      { url = url, faiss_index = junk })
    local trusted = { url = url, faiss_index = junk, trust_index_file = true }
    expect_error("unreadable index file " .. junk, vekterdb.new, db.table_name, trusted)
    local other = H.path("other.index")
    local ix = vekterdb.faiss.index_factory(8, "Flat")
    ix:write(other)
    trusted.faiss_index = other
    expect_error("index file " .. other .. " has dimension 8 but table " .. db.table_name
      .. " holds 4-d vectors", vekterdb.new, db.table_name, trusted)
    local bigger = H.path("bigger.index")
    ix = vekterdb.faiss.index_factory(4, "Flat")
    ix:add(vekterdb.matrix(9, 4))
    ix:write(bigger)
    trusted.faiss_index = bigger
    expect_error("holds 9 vectors but table " .. db.table_name .. " only 5 records", vekterdb.new,
      db.table_name, trusted)
    db:close()
    os.remove(junk)
    os.remove(other)
    os.remove(bigger)
  end)
end)

describe("a configuration that does not match its index", function()
  -- a table with an L2 Flat index, its configuration saved to name.json and
  -- one field of it changed: returns the configuration, the URL, the index file
  local function edited_config(name, from, to)
    local db, url = fresh(5, { file = true })
    local file = H.path(name .. ".index")
    db:create_index(file, "Flat", { metric = "l2" })
    local config = H.path(name .. ".json")
    db:save(config)
    db:close()
    -- as older versions wrote it: with the metric (they always wrote both keys)
    local text = io.open(config):read("a")
    if not text:find('"faiss_runtime_parameters"', 1, true) then
      text = text:gsub("}%s*$", ',"faiss_runtime_parameters":null}')
    end
    text = text:gsub("}%s*$", ',"metric":"l2"}')
    local n
    text, n = text:gsub(from, to)
    assert(n == 1, "the saved configuration holds " .. from)
    local f = io.open(config, "w")
    f:write(text)
    f:close()
    return config, url, file
  end

  it("is refused when the metric differs", function()
    local config, url, file = edited_config("metric", '"metric":"l2"', '"metric":"inner_product"')
    expect_error("says metric inner_product but index file " .. file .. " uses l2", vekterdb.load, config, url)
    os.remove(file)
  end)

  it("is refused, naming the file, when its runtime parameters do not apply to the index", function()
    local config, url, file = edited_config("params", '"faiss_runtime_parameters":null',
                                            '"faiss_runtime_parameters":"nprobe=4"')
    expect_error("vekterdb.load: " .. config .. ": faiss_runtime_parameters: ", vekterdb.load, config, url)
    os.remove(file)
  end)
end)

describe("corrupted stored vectors", function()
  it("are reported, not returned", function()
    local db = fresh(5)
    local file = H.path("corrupt.index")
    db:create_index(file, "Flat", { metric = "l2" })
    db:execute("UPDATE " .. db.table_name .. " SET vector = " .. db:placeholder(1) .. " WHERE idx = 2",
      { "garbage bytes" })
    local recs = H.rng(11)
    local v0 = recs.vector(D)
    expect_error("corrupted vector", db.search, db, v0, 5, "idx")
    expect_error("corrupted vector", function()
      for _ in db:select(db.Record.idx:eq(2), "vector") do end
    end)
    db:close()
    os.remove(file)
  end)
end)

describe("bad URLs and options", function()
  it("refuses an unsupported URL", function()
    expect_error("unsupported database URL scheme 'oracle': use sqlite://, postgresql:// or mysql://",
      vekterdb.new, "t", { url = "oracle://u:p@h/db" })
    expect_error("invalid database URL: expected scheme://", vekterdb.new, "t", { url = "just-a-file.db" })
    expect_error("invalid SQLite URL", vekterdb.new, "t", { url = "sqlite://relative.db" })
  end)

  it("refuses unknown options and bad names", function()
    expect_error("vekterdb.new: unknown option 'colums'", vekterdb.new, "t", { colums = {} })
    expect_error("table name is empty", vekterdb.new, "", {})
    expect_error("column 'idx' is already the idx or vector column", vekterdb.new, "t",
      { columns = { { name = "idx", type = "integer" } } })
    expect_error("unknown type 'decimal'", vekterdb.new, "t", { columns = { { name = "p", type = "decimal" } } })
  end)

  it("never writes a password in a config file", function()
    local db = fresh(2)
    local config = H.path("nopw.json")
    db:save(config)
    local text = io.open(config):read("a")
    assert.is_nil(text:find("url", 1, true))
    db:close()
  end)
end)

-- Error values: a stable code, the message as their text, the call named
describe("error values", function()
  local PG = H.backend == "postgresql"

  -- runs fn and returns the error value it raised (fails if it did not)
  local function err_of(fn, ...)
    local ok, err = pcall(fn, ...)
    assert(not ok, "expected an error, got none")
    assert(vekterdb.is_error(err), "not an error value: " .. tostring(err))
    return err
  end

  local function expect_code(code, fragment, fn, ...)
    local err = err_of(fn, ...)
    assert.are.equal(code, err.code, tostring(err))
    assert(tostring(err):find(fragment, 1, true), "expected '" .. fragment .. "' in: " .. tostring(err))
    assert.is_nil(tostring(err):find("vekterdb[%w/]*%.lua:%d+:"), "a source position: " .. tostring(err))
    return err
  end

  it("are tables with a shared metatable, whose text is the message", function()
    local db = fresh(3)
    local err = err_of(db.search, db, { 1, 2, 3, 4 }, 1)
    assert.are.equal(vekterdb.Error, getmetatable(err))
    assert.are.equal("state", err.code)
    assert.are.equal("search", err.call)
    assert.are.equal("search: no FAISS index: create_index or attach one first", err.message)
    assert.are.equal(err.message, tostring(err))
    -- string methods and concatenation work on the message
    assert.are.equal("no FAISS index", err:match("no FAISS index"))
    assert.are.equal(1, (err:find("search: ", 1, true)))
    assert.are.equal("x: " .. err.message, "x: " .. err)
    assert.are.equal(err.message .. "!", err .. "!")
    assert.are.equal(err.message:upper(), err:upper())
    -- busted's has_error compares the text
    assert.has_error(function() db:search({ 1, 2, 3, 4 }, 1) end,
      "search: no FAISS index: create_index or attach one first")
    assert.is_false(vekterdb.is_error("search: no FAISS index"))
    -- a message keeps every byte of what it quotes, NUL included
    local ok, nul = pcall(db.select, db, db.Record.idx:eq(1), "a\0b")
    assert.is_false(ok)
    assert.are.equal("select: table " .. db.table_name .. " has no column 'a\0b'", tostring(nul))
    db:close()
  end)

  it("name the public call, for errors raised in C as in Lua, without a source position", function()
    local db = fresh(3)
    db:create_index(H.path("named.index"), "Flat")
    -- raised in C, under a method the Lua module calls by another name
    local err = expect_code("invalid", "nearest_neighbors: k_extra_neighbors must be a non-negative integer",
      db.nearest_neighbors, db, db.Record.idx:eq(0), 1, { k_extra_neighbors = -1 })
    assert.are.equal("nearest_neighbors", err.call)
    err = expect_code("invalid", "search: vector has dimension 3, expected 4", db.search, db, { 1, 2, 3 }, 1)
    assert.are.equal("search", err.call)
    err = expect_code("invalid", "fetch: idx values must be integers", db.fetch, db, { "a" })
    assert.are.equal("fetch", err.call)
    -- raised in C, called directly
    local vio = require "vekterdb.io"
    err = expect_code("not_found", "read_npy: cannot open", function()
      local m = vio.read_npy(H.path("none.npy"))
      return m
    end)
    assert.are.equal("read_npy", err.call)
    -- raised in C, under a Lua function of the io module
    err = expect_code("not_found", "open: cannot open", vio.open, H.path("none.fvecs"))
    assert.are.equal("open", err.call)
    err = expect_code("invalid", "read: ", vio.read, H.path("none.xyz"))
    assert.are.equal("read", err.call)
    -- raised in Lua
    err = expect_code("invalid", "vekterdb.new: unknown option 'colums'", vekterdb.new, "t", { colums = {} })
    assert.are.equal("vekterdb.new", err.call)
    db:close()
  end)

  it("invalid: a bad argument, option or record", function()
    local db = fresh(3)
    expect_code("invalid", "insert: record 1: idx 9 is not consecutive", db.insert, db,
      { { idx = 9, id = "x", vector = { 1, 2, 3, 4 } } })
    expect_code("invalid", 'search: k must be a positive integer, got "3" (a string)', db.search, db,
      { 1, 2, 3, 4 }, "3")
    db:close()
  end)

  it("constraint: a unique violation, and a duplicate idx written through SQL", function()
    local db = fresh(3)
    local err = expect_code("constraint", "insert: ", db.insert, db, { { idx = 3, id = "r1", vector = { 1, 2, 3, 4 } } })
    assert.are.equal("insert", err.call)
    expect_code("constraint", "execute: ", db.execute, db, "INSERT INTO " .. db.table_name
      .. " (idx, vector, id) VALUES (" .. db:placeholder(1) .. ", " .. db:placeholder(2) .. ", 'dup')",
      { 0, vekterdb.serialize_vector({ 1, 2, 3, 4 }) })
    assert.are.equal(3, db:count())
    db:close()
  end)

  it("locked: another process holds the write lock past the timeout", function()
    local db, url = fresh(2, { file = true })
    local name = db.table_name
    local short
    if PG then
      short = vekterdb.new(name, { url = url, connect_args = { options = "-c lock_timeout=200" } })
    elseif H.backend == "mysql" then
      short = vekterdb.new(name, { url = url, connect_args = { lock_timeout = 0.2 } })
    else
      short = vekterdb.new(name, { url = url .. "?timeout=0.2" })
    end
    local mark = H.path("locked.mark")
    local script = H.path("hold_lock.lua")
    local lock = PG and ('BEGIN; LOCK TABLE "%s" IN EXCLUSIVE MODE'):format(name) or "BEGIN IMMEDIATE"
    if H.backend == "mysql" then
      lock = ("START TRANSACTION; SELECT GET_LOCK('%s', 10)"):format(H.mysql_lock_name(url, name))
    end
    local f = assert(io.open(script, "w"))
    -- (the child is Lua 5.4: under LuaJIT it keeps LUA_CPATH_5_4, as spec/run.sh sets it)
    f:write(("package.path = %q\n"):format(package.path))
    if _VERSION == "Lua 5.4" and not os.getenv("LUA_CPATH_5_4") then
      f:write(("package.cpath = %q\n"):format(package.cpath))
    end
    f:write(([[
      local vekterdb = require "vekterdb"
      local db = vekterdb.new(%q, { url = %q })
      for stmt in (%q):gmatch("[^;]+") do db:execute(stmt) end
      io.open(%q, "w"):close()
      os.execute("sleep 1.5")
      db:execute("COMMIT")
      db:close()
    ]]):format(name, url, lock, mark))
    f:close()
    local lua = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"
    local pid = tonumber(H.sh(("%s %s >/dev/null 2>&1 & echo $!"):format(lua, H.sh_quote(script))):match("%d+"))
    local held = false
    for _ = 1, 500 do
      local m = io.open(mark)
      if m then m:close() held = true break end
      H.sh("sleep 0.02")
    end
    assert(held, "the child did not take the lock")
    local err = err_of(short.insert, short, { { idx = 2, id = "late", vector = { 1, 2, 3, 4 } } })
    assert.are.equal("locked", err.code, tostring(err))
    assert.are.equal("insert", err.call)
    for _ = 1, 250 do
      if not H.alive(pid) then break end
      H.sh("sleep 0.02")
    end
    assert.are.equal(2, db:count())
    short:close()
    db:close()
  end)

  it("connection: a refused PostgreSQL URL, an SQLite file that cannot be opened", function()
    local err = expect_code("connection", "vekterdb.new: cannot connect to PostgreSQL",
      vekterdb.new, "t", { url = "postgresql://app:s3cret@127.0.0.1:1/db?connect_timeout=2" })
    assert.is_nil(tostring(err):find("s3cret", 1, true))
    expect_code("connection", "cannot open SQLite database", vekterdb.new, "t",
      { url = "sqlite:///" .. H.path("no-such-folder") .. "/x.db" })
  end)

  it("not_found: a missing index file, configuration or table", function()
    local db, url = fresh(3, { file = true })
    local missing = H.path("missing.index")
    local err = expect_code("not_found", "vekterdb.new: cannot read index file " .. missing, vekterdb.new,
      db.table_name, { url = url, faiss_index = missing })
    assert.are.equal("vekterdb.new", err.call)
    expect_code("not_found", "vekterdb.load: " .. H.path("none.json"):match("^(.*)/") , vekterdb.load,
      H.path("none.json"), url)
    db:close()
  end)

  it("state: a closed database, no index", function()
    local db = fresh(2)
    expect_code("state", "rebuild_index: no index attached", db.rebuild_index, db)
    db:close()
    expect_code("state", "count: attempt to use a closed database", db.count, db)
  end)

  it("database, faiss, io and corrupt", function()
    local db = fresh(3)
    expect_code("database", "execute: ", db.execute, db, "SELEC nonsense")
    expect_code("faiss", "create_index: FAISS rejected the factory string", db.create_index, db,
      H.path("f.index"), "IVF-oops")
    expect_code("io", "save: ", db.save, db, H.path("no-such-folder") .. "/x.json")
    db:create_index(H.path("c.index"), "Flat")
    db:execute("UPDATE " .. db.table_name .. " SET vector = " .. db:placeholder(1) .. " WHERE idx = 1",
      { "garbage bytes" })
    local err = expect_code("corrupt", "select: corrupted vector", function()
      for _ in db:select(db.Record.idx:eq(1), "vector") do end
    end)
    assert.are.equal("select", err.call)
    db:close()
  end)
end)

describe("configurations", function()
  local cjson = require "cjson"

  local function keys_of(file)
    local cfg = cjson.decode(H.read_file(file))
    local keys = {}
    for k in pairs(cfg) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys, cfg
  end

  local function write(file, text)
    local f = assert(io.open(file, "w"))
    f:write(text)
    f:close()
  end

  it("load requires the URL: the configuration never holds one", function()
    local db = fresh(2)
    local config = H.path("nourl.json")
    db:save(config)
    db:close()
    local err = H.error_of(vekterdb.load, config)
    assert.are.equal("vekterdb.load: no database URL: a configuration never holds one (it may carry a "
      .. "password); call vekterdb.load(" .. config .. ", url)", err)
    local ok, e = pcall(vekterdb.load, config)
    assert.is_false(ok)
    assert.are.equal("invalid", e.code)
  end)

  it("load never creates a table: it says which table is missing at which URL", function()
    local db, url = fresh(2, { file = true })
    local config = H.path("gone.json")
    db:save(config)
    db:close()
    local text = H.read_file(config):gsub(db.table_name, db.table_name .. "_gone")
    write(config, text)
    -- the URL as given, with a password when it has one
    local shown = url
    if H.backend == "postgresql" then
      url = url:gsub("^(postgres%w*://[^:/@]+)@", "%1:hunter2@")
      shown = url:gsub(":hunter2@", "@")
    elseif H.backend == "mysql" then
      shown = url:gsub("^(mysql://[^:/@]+):[^@]*@", "%1@")
    end
    local ok, err = pcall(vekterdb.load, config, url)
    assert.is_false(ok)
    assert.are.equal("not_found", err.code)
    assert.are.equal("vekterdb.load", err.call)
    assert.are.equal("vekterdb.load: table " .. db.table_name .. "_gone does not exist at " .. shown
      .. " (loading never creates a table)", tostring(err))
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    -- and it was not created
    local check = vekterdb.new(db.table_name, { url = H.url() == "sqlite://" and url or H.url() })
    local catalog = {
      postgresql = "SELECT 1 FROM information_schema.tables WHERE table_name = $1",
      mysql = "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?1",
      sqlite = "SELECT 1 FROM sqlite_master WHERE name = ?1",
    }
    local rows = check:execute(catalog[H.backend], { db.table_name .. "_gone" })
    assert.are.equal(0, #rows)
    check:close()
  end)

  it("save writes exactly the keys the Python VekterDB's constructor takes", function()
    local db, url = fresh(4, { file = true })
    local config = H.path("keys.json")
    db:save(config)
    assert.are.same({ "faiss_index", "idx_name", "table_name", "vector_name" }, keys_of(config))
    local file = H.path("keys.index")
    db:create_index(file, "IVF2,Flat", { metric = "l2" })
    db:set_faiss_runtime_parameters("nprobe=2")
    db:save(config)
    local keys, cfg = keys_of(config)
    assert.are.same({ "faiss_index", "faiss_runtime_parameters", "idx_name", "table_name", "vector_name" }, keys)
    assert.are.equal(file, cfg.faiss_index)
    assert.are.equal("nprobe=2", cfg.faiss_runtime_parameters)
    db:close()
    -- and it loads back, the metric read from the index file
    local again = vekterdb.load(config, url)
    assert.are.equal("l2", again.metric)
    assert.are.equal("nprobe=2", again.faiss_runtime_parameters)
    again:close()
    -- a Python function with the constructor's signature accepts it, as
    -- VekterDB.load does: faiss_runtime_parameters popped, the rest passed
    local py = io.open("/usr/bin/python3")
    if not py then
      pending("/usr/bin/python3 is missing: the key set was checked above")
      return
    end
    py:close()
    local script = H.path("accepts.py")
    write(script, [[
import json, sys
def VekterDB(table_name, idx_name="idx", vector_name="vector", columns_dict={}, url="sqlite:///:memory:",
             connect_args={}, faiss_index=None):
    return table_name
config = json.load(open(sys.argv[1]))
config.pop("faiss_runtime_parameters", None)
print("accepted", VekterDB(**config, url="sqlite:///x.db"))
]])
    local out = H.sh("/usr/bin/python3 " .. H.sh_quote(script) .. " " .. H.sh_quote(config) .. " 2>&1")
    assert.are.equal("accepted " .. db.table_name .. "\n", out)
  end)

  it("load reads a configuration as the Python VekterDB writes it, and our older ones", function()
    local db, url = fresh(4, { file = true })
    local file = H.path("py.index")
    db:create_index(file, "IVF2,Flat", { metric = "l2" })
    db:close()
    local config = H.path("py.json")
    write(config, cjson.encode({ table_name = db.table_name, idx_name = "idx", vector_name = "vector",
                                 faiss_index = file, faiss_runtime_parameters = "nprobe=2" }))
    local again = vekterdb.load(config, url)
    assert.are.equal("nprobe=2", again.faiss_runtime_parameters)
    assert.are.equal(4, again.index.ntotal)
    again:close()
    -- ours before: metric (checked against the index) and schema; null values
    write(config, '{"table_name":"' .. db.table_name .. '","idx_name":"idx","vector_name":"vector",'
      .. '"faiss_index":"' .. file .. '","faiss_runtime_parameters":null,"metric":"l2"'
      .. (H.backend == "postgresql" and ',"schema":"public"' or "") .. "}")
    again = vekterdb.load(config, url)
    assert.are.equal("l2", again.metric)
    assert.is_nil(again.faiss_runtime_parameters)
    again:close()
  end)
end)

describe("tombstones and rebuild_index", function()
  it("deleted_count counts every deleted record; rebuild_index what this rebuild reclaimed", function()
    local db = fresh(20)
    local file = H.path("tomb.index")
    db:create_index(file, "IVF2,Flat", { metric = "l2" })
    assert.are.equal(11, db:delete(db.Record.idx:lt(11)))
    assert.are.equal(11, db:deleted_count())
    local reclaimed, removed = db:rebuild_index()
    assert.are.same({ 11, 11 }, { reclaimed, removed })
    -- the tombstones stay (their idx values are never given out again)
    assert.are.equal(11, db:deleted_count())
    assert.are.same({ 0, 0 }, { db:rebuild_index() })
    assert.are.equal(9, db.index.ntotal)
    assert.are.equal(20, db:insert({ { id = "next", vector = { 1, 2, 3, 4 } } }) + 19)
    assert.are.equal(20, db:fetch({ 20 }, "idx")[1].idx)
    db:close()
  end)
end)
