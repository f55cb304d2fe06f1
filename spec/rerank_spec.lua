-- The exact rerank of many candidates: the distinct candidates of a batch are
-- fetched in slices while other threads decode them and compute the metric
-- (engine/search_rerank.c). Whatever the number of threads, the results are
-- the exact ranking, deleted records stay out, and an error met on another
-- thread reaches the caller.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D, N, NQ, K = 8, 5000, 12, 10
-- every list probed, every record a candidate: more distinct candidates
-- than one slice (2048), so that several threads take part
local OPTS = { k_extra_neighbors = N, search_parameters = "nprobe=8" }

local function setup()
  local db = H.new({ columns = { { name = "name", type = "text" } } })
  local recs = H.records(N, D, 31)
  for _, r in ipairs(recs) do r.name = "n" .. r.idx end
  db:insert(recs)
  local file = H.path("rerank.index")
  db:create_index(file, "IVF8,PQ2x4", { metric = "l2" })
  local rng = H.rng(77)
  local q = vekterdb.matrix(NQ, D)
  for i = 1, NQ do q[i] = rng.vector(D) end
  return db, recs, q, file
end

-- the k nearest live records by the exact Euclidean distance
local function brute(recs, qv, live)
  local all = {}
  for _, r in ipairs(recs) do
    if not live or live[r.idx] then
      local s = 0
      for j = 1, D do
        local x = r.vector[j] - qv[j]
        s = s + x * x
      end
      all[#all + 1] = { idx = r.idx, metric = math.sqrt(s) }
    end
  end
  table.sort(all, function(a, b) return a.metric < b.metric end)
  local out = {}
  for i = 1, K do out[i] = all[i] end
  return out
end

local with_threads = H.with_threads

local function same_as_brute(res, recs, q, live)
  assert.are.equal(NQ, #res)
  for i = 1, NQ do
    local want = brute(recs, q[i], live)
    local got = res[i].neighbors
    assert.are.equal(K, #got)
    for j = 1, K do
      assert.are.equal(want[j].idx, got[j].idx)
      assert.are.equal("n" .. want[j].idx, got[j].name)
      assert.is_true(math.abs(want[j].metric - got[j].metric) <= 1e-4 * (1 + want[j].metric))
    end
  end
end

describe("the rerank of many candidates", function()
  it("gives the exact ranking with one thread and with several, the same", function()
    local db, recs, q, file = setup()
    local one = with_threads(1, function() return db:search(q, K, "idx", "name", OPTS) end)
    local two = with_threads(2, function() return db:search(q, K, "idx", "name", OPTS) end)
    same_as_brute(two, recs, q)
    assert.are.same(one, two)
    db:close()
    os.remove(file)
  end)

  it("leaves deleted records out, whichever slice holds them", function()
    local db, recs, q, file = setup()
    -- the nearest records of every query, and some spread over the idx range
    local gone, live = {}, {}
    for i = 1, NQ do
      for j = 1, 3 do gone[brute(recs, q[i])[j].idx] = true end
    end
    for i = 0, N - 1, 97 do gone[i] = true end
    local list = {}
    for idx in pairs(gone) do list[#list + 1] = idx end
    db:delete(db.Record.idx:in_(list))
    for _, r in ipairs(recs) do live[r.idx] = not gone[r.idx] end
    local res = with_threads(2, function() return db:search(q, K, "idx", "name", OPTS) end)
    same_as_brute(res, recs, q, live)
    db:close()
    os.remove(file)
  end)

  it("reports a corrupted vector met by another thread on the caller's, then searches again", function()
    local db, recs, q, file = setup()
    local set = "UPDATE " .. db.table_name .. " SET vector = " .. db:placeholder(1) .. " WHERE idx = "
      .. db:placeholder(2)
    -- one in each slice of the sorted candidates (ids 0-2047, 2048-4095, ...):
    -- whichever thread decodes first meets one
    local bad = { [3] = true, [2100] = true, [N - 3] = true }
    for idx in pairs(bad) do db:execute(set, { "garbage bytes", idx }) end
    for _ = 1, 5 do
      local err = with_threads(2, function() return H.error_of(db.search, db, q, K, "idx", OPTS) end)
      assert.truthy(err:find("corrupted vector", 1, true), err)
      assert.truthy(bad[tonumber(err:match("idx (%d+)"))], err)
    end
    for idx in pairs(bad) do
      db:execute(set, { vekterdb.serialize_vector(recs[idx + 1].vector), idx })
    end
    same_as_brute(with_threads(2, function() return db:search(q, K, "idx", "name", OPTS) end), recs, q)
    db:close()
    os.remove(file)
  end)
end)
