-- bench/proposed/check.lua: the proposed insert_matrix binding, checked and
-- timed against the same bound as `make bench` (run by `make bench-proposed`,
-- which loads a private copy of vekterdb.core that has it).
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local B = require "vkbench"

local dir = assert(os.getenv("BENCH_DATA_DIR"), "run through `make bench-proposed`")
local work = os.getenv("BENCH_WORK") or "build/bench-work-proposed"
assert(os.execute("rm -rf '" .. work .. "' && mkdir -p '" .. work .. "'"))
local train = vio.read_fvecs(dir .. "/train.fvecs")
local N = train.n
local names = {}
for i = 1, N do names[i] = string.format("item-%08d", i - 1) end
local columns = { { name = "name", type = "text", index = true } }

local function fresh(file)
  for _, s in ipairs({ "", "-wal", "-shm" }) do os.remove(work .. "/" .. file .. s) end
  return vekterdb.new("items", { url = "sqlite:///" .. work .. "/" .. file, columns = columns })
end

-- correctness
local db = fresh("check.db")
assert(db._h.insert_matrix, "this vekterdb.core has no insert_matrix: run `make bench-proposed`")
local n = db._h:insert_matrix(train, 0, { "name" }, { names }, 10000, 1)
assert(n == N and db:count() == N, "every row inserted")
local probe = math.min(N - 1, 12345)
local rec = db:fetch({ probe }, "idx", "name", "vector")[1]
assert(rec.idx == probe and rec.name == names[probe + 1], "columns stored")
assert(rec.vector == train[probe + 1], "vector stored")
local ok, err = pcall(db._h.insert_matrix, db._h, train, nil, { "name" }, { { "a", {} } }, 10, 1)
assert(not ok and err:find("record 2: column 'name' cannot hold a table"), err)
assert(db:count() == N, "a refused record inserts nothing of its batch")
db:close()
print("insert_matrix: records, columns and errors as db:insert")

-- speed, against the bound of `make bench`
local d2 = fresh("bulk.db")
local t0 = B.now()
d2._h:insert_matrix(train, 0, { "name" }, { names }, 10000, 1)
local tm = B.now() - t0
local d3 = fresh("bulk-fast.db")
t0 = B.now()
d3._h:insert_matrix(train, 0, { "name" }, { names }, 10000, -1)
local tf = B.now() - t0
local ddl = {}
for _, row in ipairs(d2:execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'items' AND sql IS NOT NULL "
                                .. "ORDER BY rowid")) do ddl[#ddl + 1] = row[1] end
d2:close()
d3:close()
os.remove(work .. "/bound.db")
local tb = B.sqlite_bound(work .. "/bound.db", ddl,
  'INSERT INTO "items" ("idx", "vector", "name") VALUES (?1, ?2, ?3)', train, names, 1)
print(string.format("insert_matrix of %d records: %.2f s (%.0f/s), level -1: %.2f s (%.0f/s); "
  .. "bound %.2f s (%.0f/s): ratios %.2f and %.2f", N, tm, N / tm, tf, N / tf, tb, N / tb, tb / tm, tb / tf))
assert(os.execute("rm -rf '" .. work .. "'"))
