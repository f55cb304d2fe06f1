-- vekterdb.source: matrices, vector files and matrix streams as records.
local vekterdb = require "vekterdb"
local source = require "vekterdb.source"
local vio = require "vekterdb.io"
local H = require "spec.helper"

local function matrix(n, d, seed)
  local r = H.rng(seed or 11)
  local m = vekterdb.matrix(n, d)
  for i = 1, n do m[i] = r.vector(d) end
  return m
end

local function collect(it)
  local out = {}
  for rec in it do out[#out + 1] = rec end
  return out
end

describe("vekterdb.source.records", function()
  it("gives one record per matrix row, with idx and columns", function()
    local m = matrix(3, 4)
    local recs = collect(source.records(m, {
      first_idx = 10,
      columns = { name = { "a", "b", "c" }, id = function(n, idx) return n .. ":" .. idx end },
    }))
    assert.are.equal(3, #recs)
    assert.are.equal(10, recs[1].idx)
    assert.are.equal(12, recs[3].idx)
    assert.are.equal("b", recs[2].name)
    assert.are.equal("3:12", recs[3].id)
    assert.are.same(m[2]:totable(), recs[2].vector:totable())
  end)

  it("leaves idx out without first_idx and uses the table's column names", function()
    local recs = collect(source.records(matrix(2, 3), { idx_name = "key", vector_name = "emb" }))
    assert.is_nil(recs[1].key)
    assert.is_nil(recs[1].idx)
    assert.are.equal(3, #recs[1].emb)
  end)

  it("streams a vector file chunk by chunk, reporting progress", function()
    local p = H.path("src.fvecs")
    local m = matrix(25, 4)
    vio.write_fvecs(p, m)
    local f = vio.open(p)
    local reports = {}
    local recs = collect(source.records(f, {
      chunk_size = 10, first = 5, count = 17, first_idx = 0,
      progress = function(done, total, phase) reports[#reports + 1] = { done, total, phase } end,
    }))
    f:close()
    assert.are.equal(17, #recs)
    assert.are.same(m[6]:totable(), recs[1].vector:totable())
    assert.are.same({ { 0, 17, "records" }, { 10, 17, "records" }, { 17, 17, "records" } }, reports)
  end)

  it("takes a function returning matrices", function()
    local parts = { matrix(2, 3, 1), matrix(0, 3), matrix(3, 3, 2) }
    local i = 0
    local recs = collect(source.records(function() i = i + 1 return parts[i] end, { first_idx = 0 }))
    assert.are.equal(5, #recs)
    assert.are.equal(4, recs[5].idx)
  end)

  it("refuses what it cannot read", function()
    assert.matches("expected a vekterdb.matrix", H.error_of(source.records, { 1, 2 }))
    assert.matches("unknown option 'firstidx'", H.error_of(source.records, matrix(1, 2), { firstidx = 0 }))
    assert.matches("first_idx must be a non%-negative integer",
                   H.error_of(source.records, matrix(1, 2), { first_idx = -1 }))
    assert.matches("column 'id' needs an array or a function",
                   H.error_of(source.records, matrix(1, 2), { columns = { id = "x" } }))
    local it = source.records(function() return "nope" end)
    assert.matches("expected a vekterdb.matrix", H.error_of(it))
  end)
end)

describe("vekterdb.source.insert", function()
  it("inserts a vector file into a table with an extra column", function()
    local p = H.path("ins.npy")
    local m = matrix(120, 8)
    vio.write_npy(p, m)
    local db = H.new({ columns = { { name = "id", type = "text", unique = true } } })
    local f = vio.open(p)
    local n = source.insert(db, f, { first_idx = 0, chunk_size = 50,
                                     columns = { id = function(_, idx) return "r" .. idx end } },
                            { batch_size = 40 })
    f:close()
    assert.are.equal(120, n)
    assert.are.equal(120, db:count())
    local rec = db:fetch({ 77 }, "id", "vector")[1]
    assert.are.equal("r77", rec.id)
    assert.are.same(m[78]:totable(), rec.vector:totable())
    db:close()
  end)
end)
