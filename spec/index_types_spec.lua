-- 100,000 normalised 64-d vectors; record 2 is built from records 0 and 1.
-- Under each index type of the original's test list, searching with record
-- 2's vector finds record 2 itself, then 0 and 1; a threshold keeps exactly
-- those three (search) or two (nearest_neighbors, which leaves the record out).
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local N, D = 100000, 64
local THRESHOLD = 0.8

describe("index types on 100,000 vectors #slow", function()
  local url, name, query

  setup(function()
    local db
    db, url = H.new({ file = true })
    name = db.table_name
    local r = H.rng(2024)
    local v0 = H.normalize(r.vector(D))
    local v1 = vekterdb.vector(D)
    for j = 1, D do v1[j] = v0[j] + r.normal(0.05) end
    H.normalize(v1)
    query = vekterdb.vector(D)
    for j = 1, D do query[j] = v0[j] + v1[j] end
    H.normalize(query)
    local i = -1
    db:insert(function()
      i = i + 1
      if i >= N then return nil end
      if i == 0 then return { idx = 0, vector = v0 } end
      if i == 1 then return { idx = 1, vector = v1 } end
      if i == 2 then return { idx = 2, vector = query } end
      return { idx = i, vector = r.vector(D):normalize() }
    end, { batch_size = 20000 })
    assert.are.equal(N, db:count())
    db:close()
  end)

  local cases = {
    { factory = "Flat" },
    { factory = "IVF300,PQ16", params = "nprobe=15" },
    { factory = "HNSW32", params = "efSearch=60" },
    { factory = "OPQ8,IVF300_HNSW32,PQ8", params = "nprobe=15,quantizer_efSearch=45", k_extra = 30 },
  }

  for _, case in ipairs(cases) do
    it(case.factory .. " finds the query record, then 0 and 1", function()
      local db = vekterdb.new(name, { url = url })
      local file = H.path(case.factory:gsub("[^%w]", "_") .. ".index")
      -- 30,000 training vectors: 100 per IVF list, enough for PQ and OPQ
      db:create_index(file, case.factory, { sample_size = 30000, batch_size = 25000 })
      assert.are.equal(N, db.index.ntotal)
      if case.params then db:set_faiss_runtime_parameters(case.params) end
      local opts = { k_extra_neighbors = case.k_extra or 0 }

      local res = db:search(query, 5, "idx", opts)[1].neighbors
      assert.are.equal(5, #res)
      assert.are.equal(2, res[1].idx)
      local next_two = { res[2].idx, res[3].idx }
      table.sort(next_two)
      assert.are.same({ 0, 1 }, next_two)
      assert.is_true(math.abs(res[1].metric - 1) < 1e-5)

      opts.threshold = THRESHOLD
      assert.are.equal(3, #db:search(query, 5, "idx", opts)[1].neighbors)

      local nn = db:nearest_neighbors(db.Record.idx:eq(2), 5, "idx", opts)
      assert.are.equal(1, #nn)
      assert.are.equal(2, #nn[1].neighbors)
      local ids = { nn[1].neighbors[1].idx, nn[1].neighbors[2].idx }
      table.sort(ids)
      assert.are.same({ 0, 1 }, ids)
      db:close()
      os.remove(file)
    end)
  end
end)
