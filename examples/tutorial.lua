-- The VekterDB tutorial, end to end, in Lua:
--   lua5.4 examples/tutorial.lua                      a generated SIFT-shaped dataset (20,000 x 128)
--   lua5.4 examples/tutorial.lua sift-128-euclidean.hdf5   the real SIFT-1M of ann-benchmarks
-- Options: --n N and --queries Q (generated data), --pq M (PQ sub-quantizers:
-- 32 as in the original for SIFT-1M, 16 on generated data so that training
-- takes seconds), --workdir DIR (where the SQLite file, the index and the
-- configuration go; default a new folder under /tmp, removed at the end
-- unless --keep).
--
-- Steps: a table with an extra text column "id"; insert the train vectors;
-- an IVF<nlist>_HNSW32,PQ32 index with the L2 metric; one query with the
-- default runtime parameters, then with nprobe at 3.5% of nlist; recall@1 over
-- every query with k_extra_neighbors 0, 4 and 49; the test vectors inserted,
-- nearest_neighbors by idx and by id; save, load, and the same recall again.
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local source = require "vekterdb.source"
local progress = require "vekterdb.progress"
local core = require "vekterdb.core"

local clock = core.monotime
io.stdout:setvbuf("line")

---------------------------------------------------------------------------
-- arguments
---------------------------------------------------------------------------

local opts = { n = 20000, queries = 1000, keep = false }
do
  local i = 1
  while arg and i <= #arg do
    local a = arg[i]
    if a == "--n" or a == "--queries" or a == "--pq" then
      opts[a:sub(3)] = assert(math.tointeger(tonumber(arg[i + 1])), a .. " needs an integer")
      i = i + 1
    elseif a == "--workdir" then
      opts.workdir = arg[i + 1]
      i = i + 1
    elseif a == "--keep" then
      opts.keep = true
    elseif a:sub(1, 1) == "-" then
      io.stderr:write("usage: lua5.4 examples/tutorial.lua [sift-128-euclidean.hdf5] [--n N] "
        .. "[--queries Q] [--pq M] [--workdir DIR] [--keep]\n")
      os.exit(2)
    else
      opts.hdf5 = a
    end
    i = i + 1
  end
end

local workdir = opts.workdir
if not workdir then
  workdir = string.format("/tmp/vekterdb-tutorial-%d-%d", os.time(), math.random(1, 1e6))
end
assert(os.execute("mkdir -p '" .. workdir .. "'"), "cannot create " .. workdir)
local url = "sqlite:///" .. workdir .. "/sift.db"
local index_file = workdir .. "/ivf_hnsw.index"
local config_file = workdir .. "/tutorial.json"

local function say(fmt, ...) print(string.format(fmt, ...)) end
local function heading(text) print("\n== " .. text) end

---------------------------------------------------------------------------
-- the data: train vectors, test vectors, the true nearest neighbor of each test
---------------------------------------------------------------------------

-- A SIFT-shaped dataset: 128-d vectors of small non-negative integers drawn
-- around 200 cluster centres, like SIFT descriptors' histogram bins.
local function generate(n, nq, d, seed)
  math.randomseed(seed)
  local function normal()
    local u1, u2 = 1 - math.random(), math.random()
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
  end
  local centres = {}
  for c = 1, 200 do
    local v = {}
    for j = 1, d do v[j] = math.random() < 0.3 and 0 or math.random() * 60 end
    centres[c] = v
  end
  local function rows(count)
    local m = vekterdb.matrix(count, d)
    local v = vekterdb.vector(d)
    for i = 1, count do
      local c = centres[math.random(#centres)]
      for j = 1, d do
        local x = c[j] + 12 * normal()
        v[j] = x > 0 and math.floor(x + 0.5) or 0
      end
      m[i] = v
    end
    return m
  end
  return rows(n), rows(nq)
end

-- exact top-1 neighbors of the queries among the train vectors, from a
-- second, in-memory VekterDB with a Flat index
local function ground_truth(train, test)
  local exact = vekterdb.new("truth")
  exact:insert(source.records(train, { first_idx = 0 }))
  exact:create_index(workdir .. "/truth.index", "Flat", { metric = "l2" })
  local res = exact:search(test, 1, "idx")
  local ids, dist = {}, {}
  for i, r in ipairs(res) do
    ids[i] = { r.neighbors[1].idx }
    dist[i] = { r.neighbors[1].metric }
  end
  exact:close()
  os.remove(workdir .. "/truth.index")
  return ids, dist
end

local train, test, true_ids, true_dist
local t0 = clock()
if opts.hdf5 then
  heading("Reading " .. opts.hdf5)
  train = vio.open(opts.hdf5, { dataset = "train" })     -- streamed: never whole in memory
  test = vio.read_hdf5(opts.hdf5, "test")
  true_ids = vio.read_hdf5(opts.hdf5, "neighbors")
  true_dist = vio.read_hdf5(opts.hdf5, "distances"):totable()
  say("train: %d x %d, test: %d queries, ground truth: %d neighbors each",
      train.rows, train.dim, #test, #true_ids[1])
else
  heading(string.format("Generating a SIFT-shaped dataset: %d train and %d test vectors of 128-d",
                        opts.n, opts.queries))
  train, test = generate(opts.n, opts.queries, 128, 2024)
  true_ids, true_dist = ground_truth(train, test)
  say("generated and computed the exact nearest neighbors in %.1f s", clock() - t0)
end
local n_train = opts.hdf5 and train.rows or #train
local n_test = #test

---------------------------------------------------------------------------
-- 1. a table with an extra column
---------------------------------------------------------------------------

heading("Creating table 'tutorial' in " .. url)
local db = vekterdb.new("tutorial", {
  idx_name = "idx",
  vector_name = "vector",
  columns = { { name = "id", type = "text", unique = true, nullable = false, index = true } },
  url = url,
})

---------------------------------------------------------------------------
-- 2. insert the train vectors, with id = idx as text
---------------------------------------------------------------------------

heading("Inserting the train vectors")
t0 = clock()
local n = db:insert(source.records(train, {
  first_idx = 0,
  columns = { id = function(_, idx) return tostring(idx) end },
  progress = progress.new({ label = "insert" }),
}), { batch_size = 50000 })
say("inserted %d records in %.1f s", n, clock() - t0)

---------------------------------------------------------------------------
-- 3. the index: IVF partitions found through HNSW, vectors compressed by PQ
---------------------------------------------------------------------------

-- 5 x sqrt(N) partitions as the original does (5,000 for SIFT-1M), but no
-- more than N / 39: FAISS wants 39 training points per centroid
local nlist = math.min(math.floor(5 * math.sqrt(n_train) + 0.5), math.floor(n_train / 39))
-- "np": no polysemous training. FAISS's factory does it for IVF..,PQ.. by
-- default, but searches only use it when polysemous_ht is set, and with
-- Debian's generic FAISS build it takes minutes.
local pq = opts.pq or (opts.hdf5 and 32 or 16)
local factory = string.format("IVF%d_HNSW32,PQ%dnp", nlist, pq)
heading("Building " .. factory .. " (metric L2)")
t0 = clock()
db:create_index(index_file, factory, {
  metric = "l2",
  batch_size = 50000,
  faiss_runtime_params = "quantizer_efSearch=25",   -- while adding: 25 candidate centroids
  progress = progress.new({ label = "create_index" }),
})
say("trained and filled the index (%d vectors) in %.1f s", db.index.ntotal, clock() - t0)

---------------------------------------------------------------------------
-- 4. one query, with the default and then with tuned runtime parameters
---------------------------------------------------------------------------

local function first_query()
  local nb = db:search(test[1], 5, "idx")[1].neighbors[1]
  say("  found idx %d at distance %.2f; the true nearest neighbor is idx %d at %.2f",
      nb.idx, nb.metric, true_ids[1][1], true_dist[1][1])
end

heading("The first test vector, default runtime parameters (nprobe=1, quantizer_efSearch=16)")
first_query()
local nprobe = math.max(1, math.floor(nlist * 0.035 + 0.5))
local params = string.format("nprobe=%d,quantizer_efSearch=%d", nprobe, 2 * nprobe)
heading("The same with " .. params .. " (nprobe = 3.5% of nlist)")
db:set_faiss_runtime_parameters(params)
first_query()

---------------------------------------------------------------------------
-- 5. recall@1 over every query
---------------------------------------------------------------------------

local function recall_at_1(results, offset)
  local found = 0
  for i, r in ipairs(results) do
    if r.neighbors[1] and r.neighbors[1].idx == true_ids[i + (offset or 0)][1] then found = found + 1 end
  end
  return found / #results
end

heading(string.format("recall@1 over the %d queries", n_test))
local recalls = {}
for _, extra in ipairs({ 0, 4, 49 }) do
  t0 = clock()
  local res = db:search(test, 1, "idx", { k_extra_neighbors = extra })
  recalls[extra] = recall_at_1(res)
  say("  k_extra_neighbors = %-2d  recall@1 = %.4f  (%.2f s)", extra, recalls[extra], clock() - t0)
end

---------------------------------------------------------------------------
-- 6. the test vectors join the table; neighbors of stored records
---------------------------------------------------------------------------

heading("Inserting the test vectors (idx from " .. n_train .. ")")
db:insert(source.records(test, {
  first_idx = n_train,
  columns = { id = function(_, idx) return tostring(idx) end },
}), { batch_size = 50000, faiss_runtime_params = "quantizer_efSearch=25" })
say("the table and the index now hold %d records", db.index.ntotal)

local nb = db:nearest_neighbors(db.Record.idx:eq(n_train), 5, "idx")[1].neighbors[1]
if nb.idx == true_ids[1][1] then
  say("nearest_neighbors of idx %d finds the true nearest neighbor: idx %d at %.2f",
      n_train, nb.idx, nb.metric)
else
  say("nearest_neighbors of idx %d finds idx %d at %.2f, not the true idx %d at %.2f: "
      .. "raise k_extra_neighbors or nprobe", n_train, nb.idx, nb.metric, true_ids[1][1], true_dist[1][1])
end

local ids = {}
for i = 1, n_test do ids[i] = tostring(n_train + i - 1) end

-- results come back in the table's order of the selected records: sort by idx
local function nn_recall(d)
  local res = d:nearest_neighbors(d.Record.id:in_(ids), 1, "idx", { k_extra_neighbors = 4 })
  table.sort(res, function(a, b) return a.idx < b.idx end)
  local found = 0
  for i, r in ipairs(res) do
    if r.neighbors[1] and r.neighbors[1].idx == true_ids[i][1] then found = found + 1 end
  end
  return found / #res
end

heading("recall@1 of nearest_neighbors for the test records, chosen by id (k_extra_neighbors = 4)")
local before = nn_recall(db)
say("  recall@1 = %.4f (the test records are now candidates for each other too)", before)

---------------------------------------------------------------------------
-- 7. save, load, and the same query again
---------------------------------------------------------------------------

heading("Saving the configuration and loading it back")
db:save(config_file)
db:close()
local again = vekterdb.load(config_file, url)
say("loaded table %s: %d records, index %s with %s", again.table_name, again:count(),
    again.faiss_index, again.faiss_runtime_parameters)
local after = nn_recall(again)
say("  recall@1 = %.4f after loading", after)
again:close()

if opts.hdf5 then train:close() end
if not opts.keep and not opts.workdir then os.execute("rm -rf '" .. workdir .. "'") end
assert(after == before, "loading gave another recall")
assert(recalls[49] >= recalls[0], "more candidates should not lower recall@1")
print("\ndone")
