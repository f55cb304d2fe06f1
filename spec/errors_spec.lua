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
    local text, n = io.open(config):read("a"):gsub(from, to)
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
