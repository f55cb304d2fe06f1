-- bench/filtered.lua: filtered search, the planner against post-filtering.
--
--   lua5.4 bench/filtered.lua [N] [D] [QUERIES] [FACTORIES]
--   (defaults 100000 64 100 "HNSW32;IVF256,Flat"; LUA_PATH / LUA_CPATH as for the specs)
--
-- A generated dataset (N normal D-d vectors, L2, in an in-memory SQLite
-- table) whose integer column `bucket` = idx % 1000 is indexed; "bucket < s"
-- matches s/10 % of the table.  For each index type and selectivity 0.1%, 1%,
-- 10%, 50% it runs QUERIES single queries two ways:
--   planner      db:search(q, 10, { filter = ... })
--   post-filter  an unfiltered search for 40 neighbors (pgvector's default
--                hnsw.ef_search), then the ones that match, at most 10:
--                what an SQL `ORDER BY v <-> q LIMIT 10` with a WHERE does on
--                an approximate index
-- and prints recall@10 against the exact filtered neighbors (a Flat index
-- with the filter, which is exact), the mean number of neighbors returned,
-- queries/s and the plans the planner took.  FAISS runs on one thread:
-- numbers for a quiet, comparable baseline.
-- Each index type first gets its baseline row, "no filter": the same single
-- queries without a filter (same index, same parameters), recall@10 against
-- the exact unfiltered neighbors.  The "vs plain" column is the planner's
-- queries/s over that row's, measured in this run (target: at least 0.5),
-- and "R@10 - plain" its recall minus the baseline's (target: at least -0.02).
-- The planner reuses what a filter read while the table is unchanged
-- (docs/filtered-search.md); "planner, cold" gives every query a filter it
-- has not seen (the same matches and an always-true "idx >= -q"), so each
-- pays the whole evaluation, as after every write to the table.
local vekterdb = require "vekterdb"
local core = require "vekterdb.core"

local N = tonumber(arg[1]) or 100000
local D = tonumber(arg[2]) or 64
local NQ = tonumber(arg[3]) or 100
local FACTORIES = arg[4] or "HNSW32;IVF256,Flat"
local PARAMS = { HNSW32 = "efSearch=64", ["IVF256,Flat"] = "nprobe=16" }
local K, POST_K = 10, 40
local SELECTIVITY = { { "0.1%", 1 }, { "1%", 10 }, { "10%", 100 }, { "50%", 500 } }

io.stdout:setvbuf("line")
vekterdb.set_num_threads(1)
local now = core.monotime

-- normal numbers from a fixed-seed generator (Park-Miller + Box-Muller)
local state = 12345
local function uniform()
  state = (state * 48271) % 2147483647
  return state / 2147483647
end
local function vector()
  local v = vekterdb.vector(D)
  for j = 1, D, 2 do
    local r, t = math.sqrt(-2 * math.log(uniform())), 2 * math.pi * uniform()
    v[j] = r * math.cos(t)
    if j < D then v[j + 1] = r * math.sin(t) end
  end
  return v
end

local t0 = now()
local db = vekterdb.new("filtered", { columns = { { name = "bucket", type = "integer", index = true } } })
local i = -1
db:insert(function()
  i = i + 1
  if i >= N then return nil end
  return { idx = i, vector = vector(), bucket = i % 1000 }
end, { batch_size = 20000 })
local queries = {}
for q = 1, NQ do queries[q] = vector() end
io.stderr:write(string.format("[filtered] %d x %d-d vectors in %.1fs\n", N, D, now() - t0))

local tmp = os.tmpname()
os.remove(tmp)
local function build(factory)
  local t = now()
  local file = tmp .. "-" .. factory:gsub("[^%w]", "_") .. ".index"
  os.remove(file)
  db:create_index(file, factory, { metric = "l2", sample_size = 50000 })
  if PARAMS[factory] then db:set_faiss_runtime_parameters(PARAMS[factory]) end
  io.stderr:write(string.format("[filtered] %s built in %.1fs\n", factory, now() - t))
  return file
end

local function detach(file)
  db._h:attach(nil)
  db.index, db.faiss_index = nil, nil
  os.remove(file)
end

local function ids(neighbors, limit)
  local out = {}
  for _, n in ipairs(neighbors) do
    if #out == limit then break end
    out[#out + 1] = n.idx
  end
  return out
end

-- exact filtered neighbors of every query, per selectivity; truth[0]: unfiltered
local truth = {}
do
  local file = build("Flat")
  truth[0] = {}
  for q = 1, NQ do truth[0][q] = ids(db:search(queries[q], K, "idx")[1].neighbors, K) end
  for _, s in ipairs(SELECTIVITY) do
    local f = db.Record.bucket:lt(s[2])
    truth[s[2]] = {}
    for q = 1, NQ do
      truth[s[2]][q] = ids(db:search(queries[q], K, "idx", { filter = f })[1].neighbors, K)
    end
  end
  detach(file)
end

local function recall(got, want)
  local set, hit = {}, 0
  for _, v in ipairs(want) do set[v] = true end
  for _, v in ipairs(got) do if set[v] then hit = hit + 1 end end
  return hit / #want
end

print(string.format("filtered search, %d x %d-d (L2), %d queries one at a time, k = %d, FAISS on 1 thread",
  N, D, NQ, K))
print(string.format("%-14s %-12s %-6s %-12s %9s %9s %10s %8s %12s  %s", "index", "params", "sel", "method",
  "recall@10", "returned", "queries/s", "vs plain", "R@10 - plain", "plan"))
for factory in FACTORIES:gmatch("[^;]+") do
  local file = build(factory)
  -- the baseline: the same single queries without a filter
  local base_r, base_got = 0, 0
  local t0b = now()
  for q = 1, NQ do
    local found = ids(db:search(queries[q], K, "idx")[1].neighbors, K)
    base_r, base_got = base_r + recall(found, truth[0][q]), base_got + #found
  end
  local base_qps = NQ / (now() - t0b)
  base_r = base_r / NQ
  print(string.format("%-14s %-12s %-6s %-12s %9.3f %9.1f %10.1f %8s %12s  %s", factory,
    PARAMS[factory] or "-", "100%", "no filter", base_r, base_got / NQ, base_qps, "1.00", "0.000", "index"))
  for _, s in ipairs(SELECTIVITY) do
    local f = db.Record.bucket:lt(s[2])
    -- the planner
    local r, got, plans = 0, 0, {}
    local t = now()
    for q = 1, NQ do
      local res = db:search(queries[q], K, "idx", { filter = f })[1].neighbors
      local found = ids(res, K)
      r, got = r + recall(found, truth[s[2]][q]), got + #found
    end
    local dt = now() - t
    for q = 1, math.min(NQ, 5) do
      local plan = db:explain_search(queries[q], K, { filter = f })
      plans[plan.plan] = (plans[plan.plan] or 0) + 1
    end
    local pl = {}
    for k in pairs(plans) do pl[#pl + 1] = k end
    table.sort(pl)
    print(string.format("%-14s %-12s %-6s %-12s %9.3f %9.1f %10.1f %8.2f %12.3f  %s", factory,
      PARAMS[factory] or "-", s[1], "planner", r / NQ, got / NQ, NQ / dt, NQ / dt / base_qps,
      r / NQ - base_r, table.concat(pl, ",")))
    -- the planner, every query a filter never seen before
    r, got = 0, 0
    t = now()
    for q = 1, NQ do
      local cold = db.Record.bucket:lt(s[2]) & db.Record.idx:ge(-q)
      local found = ids(db:search(queries[q], K, "idx", { filter = cold })[1].neighbors, K)
      r, got = r + recall(found, truth[s[2]][q]), got + #found
    end
    dt = now() - t
    print(string.format("%-14s %-12s %-6s %-12s %9.3f %9.1f %10.1f %8.2f %12.3f  %s", factory,
      PARAMS[factory] or "-", s[1], "planner,cold", r / NQ, got / NQ, NQ / dt, NQ / dt / base_qps,
      r / NQ - base_r, ""))
    -- post-filtering an unfiltered search
    r, got = 0, 0
    t = now()
    for q = 1, NQ do
      local res = db:search(queries[q], POST_K, "idx", "bucket")[1].neighbors
      local found = {}
      for _, n in ipairs(res) do
        if n.bucket < s[2] and #found < K then found[#found + 1] = n.idx end
      end
      r, got = r + recall(found, truth[s[2]][q]), got + #found
    end
    dt = now() - t
    print(string.format("%-14s %-12s %-6s %-12s %9.3f %9.1f %10.1f %8.2f %12.3f  %s", factory,
      PARAMS[factory] or "-", s[1], "post-filter", r / NQ, got / NQ, NQ / dt, NQ / dt / base_qps,
      r / NQ - base_r, "k=" .. POST_K))
  end
  detach(file)
end
db:close()
