-- examples/openresty/loadtest_build.lua DATA_DIR OUT_DIR
-- The load test's database: the benchmark's vectors (train.fvecs) in an
-- SQLite file with a name column, an IVF index over them, the configuration
-- the service loads, and queries.jsonl: POST /search bodies made from the
-- first 1,000 test vectors.  Kept in OUT_DIR and reused when present.
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local cjson = require "cjson"

local data, out = assert(arg[1], "usage: DATA_DIR OUT_DIR"), assert(arg[2], "usage: DATA_DIR OUT_DIR")
local NLIST = tonumber(os.getenv("LOADTEST_NLIST") or "1000")
local NPROBE = tonumber(os.getenv("LOADTEST_NPROBE") or "35")
local K = tonumber(os.getenv("LOADTEST_K") or "10")

local train = vio.read_fvecs(data .. "/train.fvecs")
local test = vio.read_fvecs(data .. "/test.fvecs")
local db = vekterdb.new("items", { url = "sqlite:///" .. out .. "/items.sqlite",
                                   columns = { { name = "name", type = "text", unique = true } } })
local i = -1
db:insert(function()
  i = i + 1
  if i >= train.n then return nil end
  return { idx = i, vector = train[i + 1], name = string.format("item-%08d", i) }
end)
db:create_index(out .. "/items.index", string.format("IVF%d,Flat", NLIST))
db:set_faiss_runtime_parameters(string.format("nprobe=%d", NPROBE))
db:save(out .. "/items.json")
db:close()

local f = assert(io.open(out .. "/queries.jsonl", "w"))
for q = 1, math.min(1000, test.n) do
  f:write(cjson.encode({ vector = test[q]:totable(), k = K, columns = { "idx", "name" } }), "\n")
end
f:close()
print(string.format("%d vectors of dimension %d, IVF%d,Flat, nprobe=%d", train.n, train.d, NLIST, NPROBE))
