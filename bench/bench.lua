-- bench/bench.lua: VekterDB's overhead over raw SQLite and raw FAISS.
-- Run through `make bench` (bench/bench.mk), which builds the dataset and
-- the helper module `vkbench` (bench/vkbench.c) and sets:
--   BENCH_DATA_DIR  the dataset (train.fvecs, test.fvecs, gt.ivecs, spec.txt)
--   BENCH_WORK      a scratch folder (emptied first)
--   BENCH_RESULTS   where the JSON goes
--   BENCH_FAISS     which FAISS build this is ("debian", "avx2")
--   BENCH_REPEAT    runs of each search figure, the fastest kept (default 2)
--   BENCH_ONLY      phases to run, comma-separated (insert,bulk,index,search,nn);
--                   default all (search and nn need index)
--   BENCH_FACTORIES the create_index variants (default "PQ32,PQ32np")
-- Every figure is measured in this process, side by side with its bound,
-- and reported as a ratio; the table is printed at the end.
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local cjson = require "cjson"
local B = require "vkbench"

io.stdout:setvbuf("line")

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local data_dir = assert(env("BENCH_DATA_DIR"), "BENCH_DATA_DIR is not set: run `make bench`")
local work = env("BENCH_WORK", "build/bench-work")
local results_dir = env("BENCH_RESULTS", "bench/results")
local faiss_build = env("BENCH_FAISS", "debian")
local repeat_search = math.tointeger(tonumber(env("BENCH_REPEAT", "2")))
local variants = {}
for v in env("BENCH_FACTORIES", "PQ32,PQ32np"):gmatch("[^,%s]+") do variants[#variants + 1] = v end
local only = {}
for p in env("BENCH_ONLY", "insert,bulk,index,search,nn"):gmatch("[^,%s]+") do only[p] = true end
-- what the phases build on: the table, then its index
if only.search or only.nn then only.index = true end
if only.index or only.bulk then only.insert = true end

local function say(fmt, ...)
  io.stderr:write(string.format("[bench] " .. fmt .. "\n", ...))
end

-- the generator's parameters, from spec.txt
local spec = {}
for line in io.lines(data_dir .. "/spec.txt") do
  local k, v = line:match("^(%w+)=(.*)$")
  if k then spec[k] = tonumber(v) or v end
end

assert(os.execute("rm -rf '" .. work .. "' && mkdir -p '" .. work .. "' '" .. results_dir .. "'"))
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or io.popen("pwd"):read("l")
  return pwd .. "/" .. p
end
work = abspath(work)

---------------------------------------------------------------------------
-- measuring
---------------------------------------------------------------------------

local machine = B.machine()
machine.omp_threads = vekterdb.get_num_threads()
machine.openblas_threads = env("OPENBLAS_NUM_THREADS", "1 (set by the modules)")
do
  local f = io.open("/proc/loadavg")
  if f then machine.loadavg_start = f:read("l"); f:close() end
end

local memory = {}   -- phase -> { peak_added = bytes, rss_before = bytes }

-- runs fn() as a phase: wall time and the peak resident memory it added
local function phase(name, fn)
  collectgarbage()
  collectgarbage()
  local reset = B.mem_reset()
  local rss0 = B.mem()
  local t0 = B.now()
  local r = table.pack(fn())
  local t = B.now() - t0
  local _, hwm = B.mem()
  memory[#memory + 1] = { phase = name, seconds = t, rss_before = rss0,
                          peak_added = reset and math.max(0, hwm - rss0) or nil }
  return t, table.unpack(r, 1, r.n)
end

local function fastest(n, fn)
  local best
  local res
  for _ = 1, n do
    local r = table.pack(fn())
    if not best or r[1] < best then best, res = r[1], r end
  end
  return table.unpack(res, 1, res.n)
end

local figures = {}   -- every row of the table, in order
local function figure(f) figures[#figures + 1] = f; return f end

---------------------------------------------------------------------------
-- the data
---------------------------------------------------------------------------

local t_load = B.now()
local train = vio.read_fvecs(data_dir .. "/train.fvecs")
local test = vio.read_fvecs(data_dir .. "/test.fvecs")
local gt = B.gt(data_dir .. "/gt.ivecs")
local N, NQ, D = train.n, test.n, train.d
local names = {}
for i = 1, N do names[i] = string.format("item-%08d", i - 1) end
say("%d train and %d test vectors of dimension %d loaded in %.1f s", N, NQ, D, B.now() - t_load)

local nlist = math.tointeger(tonumber(env("BENCH_NLIST", N >= 1000000 and "5000" or "1000")))
local nprobe = math.max(1, math.floor(0.035 * nlist + 0.5))
local search_params = string.format("nprobe=%d,quantizer_efSearch=%d", nprobe, 2 * nprobe)
local add_params = "quantizer_efSearch=25"
local function factory(v) return string.format("IVF%d_HNSW32,%s", nlist, v) end

local url = "sqlite:///" .. work .. "/vekterdb.db"
local table_name = "items"
local columns = { { name = "name", type = "text", index = true } }

---------------------------------------------------------------------------
-- 1. insert from a Lua generator, against a plain C loop
---------------------------------------------------------------------------

-- records first..last-1, one new table (and vector) per record
local function records(first, last)
  local i = first - 1
  return function()
    i = i + 1
    if i >= last then return nil end
    return { idx = i, vector = train[i + 1], name = names[i + 1] }
  end
end

-- the same records through one reused table: no table per record
local function records_reused(first, last)
  local i = first - 1
  local rec = {}
  return function()
    i = i + 1
    if i >= last then return nil end
    rec.idx, rec.vector, rec.name = i, train[i + 1], names[i + 1]
    return rec
  end
end

local db = vekterdb.new(table_name, { url = url, columns = columns })
local ddl, insert_sql = {}, nil
local n_first = math.max(1, N // 10)

local function sqlite_bound(file)
  os.remove(file)
  local t, t_compress = B.sqlite_bound(file, ddl, insert_sql, train, names, 1)
  os.remove(file)
  os.remove(file .. "-wal")
  os.remove(file .. "-shm")
  return t, t_compress
end

if only.insert then
  say("insert: %d records from a Lua generator", N)
  local ta = phase("insert, Lua generator, first 10%", function() return db:insert(records(0, n_first)) end)
  local tb = phase("insert, Lua generator, other 90%", function() return db:insert(records(n_first, N)) end)
  assert(db:count() == N)
  for _, row in ipairs(db:execute("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL "
                                  .. "ORDER BY rowid", { table_name })) do
    ddl[#ddl + 1] = row[1]
  end
  insert_sql = string.format('INSERT INTO "%s" ("idx", "vector", "name") VALUES (?1, ?2, ?3)', table_name)
  say("insert: the C bound")
  local tc, t_compress = 0, 0
  phase("insert, plain C bound", function() tc, t_compress = sqlite_bound(work .. "/bound.db") end)
  local tv = ta + tb
  figure({ group = "insert", name = "insert, Lua generator", unit = "records/s",
           vekterdb = N / tv, bound = N / tc, ratio = tc / tv, target = ">= 0.5",
           ok = tc / tv >= 0.5, seconds = tv, bound_seconds = tc,
           note = string.format("bound: one prepared INSERT, one transaction, rows compressed "
             .. "beforehand (compression alone: %.2f s)", t_compress) })
  local pa, pb = memory[#memory - 2].peak_added, memory[#memory - 1].peak_added
  if pa and pb then
    figure({ group = "insert", name = "insert streams (peak RSS, 90% vs first 10%)", unit = "MB",
             vekterdb = pb / 2^20, bound = pa / 2^20, ratio = pb / math.max(pa, 1),
             target = "no growth", ok = pb <= 2 * pa + 16 * 2^20,
             note = string.format("peak added: %.1f MB for %d records, %.1f MB for %d records",
               pa / 2^20, n_first, pb / 2^20, N - n_first) })
  end
end

---------------------------------------------------------------------------
-- 2. bulk loads: no table per record
---------------------------------------------------------------------------

if only.bulk then
  say("bulk: one reused record table")
  local u2 = "sqlite:///" .. work .. "/reused.db"
  local d2 = vekterdb.new(table_name, { url = u2, columns = columns })
  local tr = phase("insert, reused record table", function() return d2:insert(records_reused(0, N)) end)
  d2:close()
  say("bulk: the engine's batch API called from C")
  local _, te = phase("insert, engine batch API from C", function()
    return B.engine_bulk("sqlite:///" .. work .. "/engine.db", table_name, train, names, 10000, 1)
  end)
  -- zstd level 1 finds nothing to compress in float32 data but tries hard
  -- (Huffman tables for the literals): a negative level skips that
  say("bulk: the same two paths with compression_level=-1")
  local u3 = "sqlite:///" .. work .. "/fast.db"
  local d3 = vekterdb.new(table_name, { url = u3, columns = columns })
  local tl = phase("insert, Lua generator, compression_level=-1", function()
    return d3:insert(records(0, N), { compression_level = -1 })
  end)
  d3:close()
  local _, tf = phase("insert, engine batch API from C, level -1", function()
    return B.engine_bulk("sqlite:///" .. work .. "/engine2.db", table_name, train, names, 10000, -1)
  end)
  local _, tc = phase("insert, plain C bound (again)", function()
    return sqlite_bound(work .. "/bound2.db")
  end)
  for _, f in ipairs({ "reused.db", "engine.db", "fast.db", "engine2.db" }) do
    for _, s in ipairs({ "", "-wal", "-shm" }) do os.remove(work .. "/" .. f .. s) end
  end
  figure({ group = "insert", name = "bulk, Lua: one reused record table", unit = "records/s",
           vekterdb = N / tr, bound = N / tc, ratio = tc / tr, target = ">= 0.8", ok = tc / tr >= 0.8,
           seconds = tr, bound_seconds = tc,
           note = "db:insert(iterator) returning the same table each time: a vector userdata per record remains" })
  figure({ group = "insert", name = "bulk, C: vk_batch_* + vk_db_insert", unit = "records/s",
           vekterdb = N / te, bound = N / tc, ratio = tc / te, target = ">= 0.8", ok = tc / te >= 0.8,
           seconds = te, bound_seconds = tc,
           note = "what a matrix + column arrays binding would run (no Lua value per record)" })
  figure({ group = "insert", name = "insert, Lua generator, compression_level=-1", unit = "records/s",
           vekterdb = N / tl, bound = N / tc, ratio = tc / tl, target = ">= 0.5", ok = tc / tl >= 0.5,
           seconds = tl, bound_seconds = tc,
           note = "zstd's fast mode: same bytes stored for float data (nothing to compress), 4x less CPU" })
  figure({ group = "insert", name = "bulk, C, compression_level=-1", unit = "records/s",
           vekterdb = N / tf, bound = N / tc, ratio = tc / tf, target = ">= 0.8", ok = tc / tf >= 0.8,
           seconds = tf, bound_seconds = tc })
end

---------------------------------------------------------------------------
-- 3. create_index, against FAISS train + add from memory
---------------------------------------------------------------------------

local index_file = work .. "/" .. variants[1] .. ".index"
if only.index then
  for vi, v in ipairs(variants) do
    local fs = factory(v)
    local file = work .. "/" .. v .. ".index"
    say("create_index %s (VekterDB)", fs)
    local h = vi == 1 and db or vekterdb.new(table_name, { url = url })
    local tv = phase("create_index " .. fs, function()
      h:create_index(file, fs, { metric = "l2", faiss_runtime_params = add_params })
    end)
    if h ~= db then h:close() end
    say("create_index %s: %.1f s; FAISS train + add from memory", fs, tv)
    local tt, ta, tw
    phase("FAISS train + add " .. fs, function()
      tt, ta, tw = B.faiss_build(fs, "l2", train, add_params, work .. "/bare-" .. v .. ".index")
    end)
    os.remove(work .. "/bare-" .. v .. ".index")
    figure({ group = "index", name = "create_index " .. fs, unit = "s", vekterdb = tv, bound = tt + ta,
             ratio = tv / (tt + ta), target = "<= 1.1", ok = tv / (tt + ta) <= 1.1,
             seconds = tv, bound_seconds = tt + ta, train_seconds = tt, add_seconds = ta,
             write_seconds = tw, note = string.format("FAISS: train %.1f s, add %.1f s; "
               .. "writing the file %.2f s is in VekterDB's time only", tt, ta, tw) })
  end
end

---------------------------------------------------------------------------
-- 4. search every test vector, against bare FAISS on the same index
---------------------------------------------------------------------------

local bare
if (only.search or only.nn) and db.index then
  bare = B.faiss_read(index_file)
end

local search_rows = {}
local breakdown
if only.search and bare then
  for _, k in ipairs({ 1, 10 }) do
    say("search k=%d: bare FAISS", k)
    local tf, labels = fastest(repeat_search, function() return bare:search(test, k, search_params) end)
    local f1, fk, fi = B.recall(gt, labels, k)
    local base = { k = k, faiss_seconds = tf, faiss_qps = NQ / tf, faiss_r1 = f1, faiss_rk = fk,
                   faiss_inter = fi }
    local t0
    for _, extra in ipairs({ 0, 4, 49 }) do
      say("search k=%d k_extra_neighbors=%d", k, extra)
      local opts = { k_extra_neighbors = extra, search_parameters = search_params }
      local tv, res = fastest(repeat_search, function()
        collectgarbage()
        local s = B.now()
        local r = db:search(test, k, "idx", "name", opts)
        return B.now() - s, r
      end)
      local r1, rk, ri = B.recall(gt, res, k)
      res = nil
      collectgarbage()
      -- FAISS alone at the k VekterDB asks it for
      local tkk = extra > 0 and fastest(repeat_search, function()
        return bare:search(test, k + extra, search_params)
      end) or tf
      t0 = t0 or tv
      local row = { k = k, k_extra = extra, seconds = tv, qps = NQ / tv, r1 = r1, rk = rk, inter = ri,
                    faiss_kk_seconds = tkk }
      for key, v in pairs(base) do row[key] = v end
      search_rows[#search_rows + 1] = row
      figure({ group = "search", name = string.format("search k=%d k_extra=%d", k, extra), unit = "s",
               vekterdb = tv, bound = tf, ratio = tv / tf,
               target = extra == 0 and "<= 1.15" or (extra == 49 and "<= 1.5 x k_extra=0" or nil),
               ok = extra == 0 and tv / tf <= 1.15 or (extra == 49 and tv / t0 <= 1.5 or nil),
               vs_extra0 = tv / t0, qps = NQ / tv, bound_qps = NQ / tf, r1 = r1, rk = rk,
               faiss_r1 = f1, faiss_rk = fk, faiss_kk_seconds = tkk })
    end
  end
  -- where the time of k=10, k_extra=49 goes
  do
    local k, extra = 10, 49
    say("search k=%d k_extra_neighbors=%d: where the time goes", k, extra)
    local row
    for _, r in ipairs(search_rows) do if r.k == k and r.k_extra == extra then row = r end end
    local te = fastest(repeat_search, function()
      return B.engine_search(url, table_name, index_file, test, k, extra, search_params)
    end)
    local te0 = fastest(repeat_search, function()
      return B.engine_search(url, table_name, index_file, test, k, 0, search_params)
    end)
    local tidx = fastest(repeat_search, function()
      collectgarbage()
      local s = B.now()
      local _ = db:search(test, k, "idx", { k_extra_neighbors = extra, search_parameters = search_params })
      return B.now() - s
    end)
    local _, labels = bare:search(test, k + extra, search_params)
    local pr = B.probe_rerank(work .. "/vekterdb.db", table_name, labels, test, work .. "/rowid.db")
    breakdown = {
      k = k, k_extra = extra,
      faiss_k = row.faiss_seconds, faiss_kk = row.faiss_kk_seconds,
      engine_search = te, engine_search_extra0 = te0,
      lua_search_idx = tidx, lua_search_idx_name = row.seconds,
      engine_fetch = pr.engine_fetch, sqlite_fetch = pr.sqlite_fetch,
      sqlite_fetch_rowid = pr.sqlite_fetch_rowid, metric = pr.metric,
      candidates = NQ * (k + extra),
    }
  end
  -- the memory of one search phase
  phase("search k=10 k_extra=49", function()
    return #db:search(test, 10, "idx", "name", { k_extra_neighbors = 49, search_parameters = search_params })
  end)
end

---------------------------------------------------------------------------
-- 5. nearest_neighbors of 1,000 records chosen by an indexed text column
---------------------------------------------------------------------------

if only.nn and bare then
  local sel = {}
  for i = 0, 999 do sel[#sel + 1] = names[(i * N) // 1000 + 1] end
  local k = 10
  say("nearest_neighbors of %d records", #sel)
  local tv = fastest(repeat_search, function()
    local s = B.now()
    local r = db:nearest_neighbors("name", sel, k, "idx", "name", { search_parameters = search_params })
    assert(#r == #sel)
    return B.now() - s
  end)
  local tb = fastest(repeat_search, function()
    return B.nn_bound(work .. "/vekterdb.db",
                      string.format('SELECT "idx", "vector" FROM "%s" WHERE "name" = ?1', table_name),
                      sel, bare, k, search_params)
  end)
  figure({ group = "nn", name = "nearest_neighbors, 1000 records by name", unit = "s",
           vekterdb = tv, bound = tb, ratio = tv / tb, seconds = tv, bound_seconds = tb,
           note = "bound: one prepared SELECT per name, decode, one FAISS search for k+1" })
end

db:close()

---------------------------------------------------------------------------
-- report
---------------------------------------------------------------------------

do
  local f = io.open("/proc/loadavg")
  if f then machine.loadavg_end = f:read("l"); f:close() end
end

local function fmt_value(v, unit)
  if v == nil then return "-" end
  if unit == "records/s" then return string.format("%.0f/s", v) end
  if unit == "MB" then return string.format("%.1f MB", v) end
  if v >= 100 then return string.format("%.0f s", v) end
  return string.format("%.3f s", v)
end

local out = {}
local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
p("VekterDB benchmark: %d x %d train, %d queries, %s FAISS, %d cores (%s), %s", N, D, NQ, faiss_build,
  machine.cores, machine.simd or "?", os.date("!%Y-%m-%d %H:%M UTC"))
p("  %s; nprobe=%d, quantizer_efSearch=%d while searching, %s while adding", factory(variants[1]),
  nprobe, 2 * nprobe, add_params)
p("")
p("| %-46s | %12s | %12s | %6s | %-20s |", "figure", "VekterDB", "bound", "ratio", "target")
p("|%s|%s|%s|%s|%s|", ("-"):rep(48), ("-"):rep(14), ("-"):rep(14), ("-"):rep(8), ("-"):rep(22))
for _, f in ipairs(figures) do
  local target = f.target and (f.target .. (f.ok == nil and "" or (f.ok and "  ok" or "  MISSED"))) or ""
  p("| %-46s | %12s | %12s | %6.2f | %-20s |", f.name, fmt_value(f.vekterdb, f.unit),
    fmt_value(f.bound, f.unit), f.ratio, target)
end
if #search_rows > 0 then
  p("")
  p("| %-5s | %-7s | %9s | %9s | %6s | %6s | %7s | %9s | %9s | %6s | %6s |", "k", "k_extra",
    "VekterDB", "q/s", "R@1", "R@k", "k-R@k", "FAISS", "q/s", "R@1", "R@k")
  p("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|", ("-"):rep(7), ("-"):rep(9), ("-"):rep(11), ("-"):rep(11),
    ("-"):rep(8), ("-"):rep(8), ("-"):rep(9), ("-"):rep(11), ("-"):rep(11), ("-"):rep(8), ("-"):rep(8))
  for _, r in ipairs(search_rows) do
    p("| %-5d | %-7d | %7.3f s | %9.0f | %6.4f | %6.4f | %7.4f | %7.3f s | %9.0f | %6.4f | %6.4f |", r.k,
      r.k_extra, r.seconds, r.qps, r.r1, r.rk, r.inter, r.faiss_seconds, r.faiss_qps, r.faiss_r1,
      r.faiss_rk)
  end
end
if breakdown then
  local b = breakdown
  p("")
  p("where the time of search k=%d, k_extra=%d goes (%d candidates reranked):", b.k, b.k_extra, b.candidates)
  local rows = {
    { "FAISS search at k", b.faiss_k },
    { "FAISS search at k + k_extra", b.faiss_kk },
    { "engine vk_db_search, k_extra=0 (C, no Lua)", b.engine_search_extra0 },
    { "engine vk_db_search (FAISS + fetch + rerank)", b.engine_search },
    { "  its vector fetch alone (vk_db_fetch_vectors)", b.engine_fetch },
    { "  plain SQLite fetch + decode of the same ids", b.sqlite_fetch },
    { "  the same, idx INTEGER PRIMARY KEY (rowid)", b.sqlite_fetch_rowid },
    { "  exact metric, as many pairs (vk_metric_value)", b.metric },
    { "db:search, column idx", b.lua_search_idx },
    { "db:search, columns idx and name", b.lua_search_idx_name },
  }
  for _, r in ipairs(rows) do p("| %-48s | %8.3f s |", r[1], r[2]) end
end
p("")
p("| %-46s | %9s | %14s |", "phase: peak resident memory", "seconds", "peak added")
p("|%s|%s|%s|", ("-"):rep(48), ("-"):rep(11), ("-"):rep(16))
for _, m in ipairs(memory) do
  p("| %-46s | %9.2f | %14s |", m.phase, m.seconds,
    m.peak_added and string.format("%.1f MB", m.peak_added / 2^20) or "-")
end
p("")
p("load average: %s at the start, %s at the end (2 cores shared: timings are noisy, ratios less so)",
  (machine.loadavg_start or "?"):match("^(%S+ %S+ %S+)") or "?",
  (machine.loadavg_end or "?"):match("^(%S+ %S+ %S+)") or "?")
local text = table.concat(out, "\n")
print(text)

local stamp = os.date("!%Y%m%dT%H%M%SZ")
local result = {
  date = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  machine = machine,
  faiss_build = faiss_build,
  vekterdb_version = vekterdb._VERSION,
  sizes = { n = N, nq = NQ, d = D, gt_k = gt and 100 },
  dataset = spec,
  parameters = {
    factories = (function() local t = {} for i, v in ipairs(variants) do t[i] = factory(v) end return t end)(),
    metric = "l2", nlist = nlist, nprobe = nprobe, quantizer_efSearch = 2 * nprobe,
    add_params = add_params, search_parameters = search_params, insert_batch_size = 10000,
    compression_level = 1, search_repeat = repeat_search, search_columns = { "idx", "name" },
    nn_records = 1000, nn_k = 10,
  },
  figures = figures,
  search = search_rows,
  search_breakdown = breakdown,
  memory = memory,
  table = text,
}
local name = string.format("%s/%s-n%d-%s.json", results_dir, stamp, N, faiss_build)
local f = assert(io.open(name, "w"))
f:write(cjson.encode(result), "\n")
f:close()
local latest = string.format("%s/latest-n%d-%s.json", results_dir, N, faiss_build)
f = assert(io.open(latest, "w"))
f:write(cjson.encode(result), "\n")
f:close()
say("results written to %s (and %s)", name, latest)
