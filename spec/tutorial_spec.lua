-- examples/tutorial.lua runs end to end, on generated data and on an
-- ann-benchmarks-shaped HDF5 file (small sizes, PQ8, so each run takes
-- seconds). #slow: left out of the sanitizer pass.
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local source = require "vekterdb.source"
local H = require "spec.helper"

local LUA = os.getenv("LUA") or "lua5.4"

local function run(args)
  local log = H.path("tutorial.log")
  local ok, _, code = os.execute(LUA .. " examples/tutorial.lua " .. args .. " > " .. log .. " 2>&1")
  local f = assert(io.open(log, "rb"))
  local out = f:read("a")
  f:close()
  return ok and code == 0, out
end

local function recalls(out)
  local r = {}
  for extra, value in out:gmatch("k_extra_neighbors = (%d+)%s+recall@1 = ([%d.]+)") do
    r[tonumber(extra)] = tonumber(value)
  end
  return r
end

describe("examples/tutorial.lua #slow", function()
  -- nothing here depends on the database backend: once, in the SQLite pass
  if H.backend ~= "sqlite" then
    it("runs in the SQLite pass only", function() pending("backend " .. H.backend) end)
    return
  end

  it("runs on a generated SIFT-shaped dataset", function()
    local ok, out = run("--n 10000 --queries 100 --pq 8 --workdir " .. H.path("gen"))
    assert(ok, out)
    assert.matches("Building IVF256_HNSW32,PQ8np", out)
    local r = recalls(out)
    assert.is_true(r[49] >= 0.9, out)
    assert.is_true(r[4] >= r[0], out)
    assert.matches("recall@1 = ([%d.]+) after loading", out)
    assert.matches("\ndone\n", out)
  end)

  it("runs on an ann-benchmarks HDF5 file", function()
    local file = H.path("small-128-euclidean.hdf5")
    local r = H.rng(17)
    local centres = {}
    for c = 1, 50 do centres[c] = r.vector(128, 30) end
    local function rows(n)
      local m = vekterdb.matrix(n, 128)
      for i = 1, n do
        local v, c = vekterdb.vector(128), centres[(i * 7) % 50 + 1]
        for j = 1, 128 do v[j] = c[j] + r.normal(8) end
        m[i] = v
      end
      return m
    end
    local train, test = rows(10000), rows(50)
    -- the true neighbors, from an exact Flat index
    local exact = vekterdb.new("truth")
    exact:insert(source.records(train, { first_idx = 0 }))
    exact:create_index(H.path("truth.index"), "Flat", { metric = "l2" })
    local ids, dist = {}, {}
    for i, res in ipairs(exact:search(test, 10, "idx")) do
      ids[i], dist[i] = {}, {}
      for j, nb in ipairs(res.neighbors) do ids[i][j], dist[i][j] = nb.idx, nb.metric end
    end
    exact:close()
    vio.write_hdf5(file, "train", train)
    vio.write_hdf5(file, "test", test, true)
    vio.write_hdf5(file, "neighbors", ids, true)
    vio.write_hdf5(file, "distances", vekterdb.matrix(dist), true)

    local ok, out = run(file .. " --pq 8 --workdir " .. H.path("ann"))
    assert(ok, out)
    assert.matches("train: 10000 x 128, test: 50 queries, ground truth: 10 neighbors each", out)
    assert.is_true(recalls(out)[49] >= 0.9, out)
    assert.matches("\ndone\n", out)
  end)
end)
