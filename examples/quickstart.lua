-- The quick example: 10,000 random 64-d vectors in an in-memory SQLite
-- table, vector 1 made close to vector 0, a Flat index, and the nearest
-- neighbors of records 0 and 1, which find each other first.
local vekterdb = require "vekterdb"

-- Box-Muller normal numbers from Lua's seeded generator
local function normal(scale)
  local u1, u2 = 1 - math.random(), math.random()
  return (scale or 1) * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
end

local function generate_data(n, d, seed)
  math.randomseed(seed)
  local v0
  local i = -1
  return function()
    i = i + 1
    if i >= n then return nil end
    local v = vekterdb.vector(d)
    for j = 1, d do
      v[j] = i == 1 and v0[j] + normal(0.2) or normal()
    end
    if i == 0 then v0 = v end
    return { idx = i, vector = v }
  end
end

local db = vekterdb.new("my_table")                  -- in-memory SQLite
local n = db:insert(generate_data(10000, 64, 1024))
print(("inserted %d records of dimension %d"):format(n, db.d))

db:create_index("my_table.index", "Flat")
local results = db:nearest_neighbors("idx", { 0, 1 }, 3, "idx")
for _, r in ipairs(results) do
  local parts = {}
  for _, nb in ipairs(r.neighbors) do
    parts[#parts + 1] = ("{idx=%d, metric=%.4f}"):format(nb.idx, nb.metric)
  end
  print(("idx %d -> %s"):format(r.idx, table.concat(parts, ", ")))
end
os.remove("my_table.index")
assert(results[1].neighbors[1].idx == 1 and results[2].neighbors[1].idx == 0,
       "records 0 and 1 should be each other's nearest neighbor")
print("records 0 and 1 found each other first")
