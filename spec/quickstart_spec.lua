-- The README's first example, on the backend under test.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

describe("the quick example", function()
  local db, index_file

  setup(function()
    db = H.new()
    local r = H.rng(1024)
    local v0
    local i = -1
    local n = db:insert(function()
      i = i + 1
      if i >= 10000 then return nil end
      local v = vekterdb.vector(64)
      for j = 1, 64 do v[j] = (i == 1) and (v0[j] + r.normal(0.2)) or r.normal() end
      if i == 0 then v0 = v end
      return { idx = i, vector = v }
    end)
    assert.are.equal(10000, n)
    index_file = H.path("my_table.index")
    db:create_index(index_file, "Flat")
  end)

  teardown(function()
    db:close()
    os.remove(index_file)
  end)

  it("inserts 10,000 records of dimension 64 and indexes them all", function()
    assert.are.equal(64, db.d)
    assert.are.equal(10000, db:count())
    assert.are.equal(10000, db.index.ntotal)
    assert.is_true(db.index.is_trained)
    assert.are.equal("inner_product", db.metric)
  end)

  it("finds records 0 and 1 as each other's nearest neighbor", function()
    local res = db:nearest_neighbors("idx", { 0, 1 }, 3, "idx")
    assert.are.equal(2, #res)
    table.sort(res, function(a, b) return a.idx < b.idx end)
    assert.are.same({ "idx", "neighbors" }, (function()
      local keys = {}
      for k in pairs(res[1]) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    assert.are.equal(0, res[1].idx)
    assert.are.equal(1, res[1].neighbors[1].idx)
    assert.are.equal(1, res[2].idx)
    assert.are.equal(0, res[2].neighbors[1].idx)
    assert.are.equal(3, #res[1].neighbors)
    -- the same pair, the same exact inner product both ways
    assert.is_true(math.abs(res[1].neighbors[1].metric - res[2].neighbors[1].metric) < 1e-3)
    -- sorted nearest (largest inner product) first, and never the record itself
    for _, r in ipairs(res) do
      for j, nb in ipairs(r.neighbors) do
        assert.are_not.equal(r.idx, nb.idx)
        if j > 1 then assert.is_true(r.neighbors[j - 1].metric >= nb.metric) end
      end
    end
  end)

  it("reports the exact inner product of the stored vectors", function()
    local recs = db:fetch({ 0, 1 }, "vector")
    local res = db:nearest_neighbors("idx", { 0 }, 1, "idx")
    local want = 0
    for j = 1, 64 do want = want + recs[1].vector[j] * recs[2].vector[j] end
    assert.is_true(math.abs(res[1].neighbors[1].metric - want) < 1e-3 * math.abs(want))
  end)
end)
