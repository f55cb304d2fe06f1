-- bench/bench.lua: VekterDB's overhead over raw SQLite and raw FAISS.
-- Run through `make bench` (bench/bench.mk), which builds the dataset and
-- the helper module `vkbench` (bench/vkbench.c) and sets:
--   BENCH_DATA_DIR  the dataset (train.fvecs, test.fvecs, gt.ivecs, spec.txt)
--   BENCH_WORK      a scratch folder (emptied first)
--   BENCH_RESULTS   where the JSON goes
--   BENCH_FAISS     which FAISS build this is ("debian", "avx2")
--   BENCH_REPEAT    rounds of the search figures, the fastest kept (default 3)
--   BENCH_INSERT_REPEAT  rounds of the insert figures (default 2)
--   BENCH_INDEX_REPEAT   rounds of create_index and its bound (default 2;
--                   about 6 minutes a round at 1M)
--   BENCH_THREADS   OpenMP threads (default: one per core)
--   BENCH_ONLY      phases to run, comma-separated (insert,bulk,index,open,search,
--                   nn,filtered,pg); default all (open, search, nn and filtered
--                   need index)
--   BENCH_PG_URL    a PostgreSQL database for the pg phase (make bench starts a
--                   throw-away cluster); without it the phase is left out
--   BENCH_FILTER_QUERIES  queries of the filtered-search phase (default 1000)
--   BENCH_FACTORIES the create_index variants, the first one searched (default
--                   "PQ32np"; "PQ32,PQ32np" adds polysemous training: slow)
-- Every figure is measured in this process, side by side with its bound,
-- and reported as a ratio; the table is printed at the end.
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local cjson = require "cjson"
local B = require "vkbench"

io.stdout:setvbuf("line")

local env = require("bench.common").env

local data_dir = assert(env("BENCH_DATA_DIR"), "BENCH_DATA_DIR is not set: run `make bench`")
local work = env("BENCH_WORK", "build/bench-work")
local results_dir = env("BENCH_RESULTS", "bench/results")
local faiss_build = env("BENCH_FAISS", "debian")
local repeat_search = math.tointeger(tonumber(env("BENCH_REPEAT", "3")))
local repeat_insert = math.tointeger(tonumber(env("BENCH_INSERT_REPEAT", "2")))
local repeat_index = math.tointeger(tonumber(env("BENCH_INDEX_REPEAT", "2")))
local threads = math.tointeger(tonumber(env("BENCH_THREADS", "0")))
if threads and threads > 0 then vekterdb.set_num_threads(threads) end
local variants = {}
for v in env("BENCH_FACTORIES", "PQ32np"):gmatch("[^,%s]+") do variants[#variants + 1] = v end
local only = {}
for p in env("BENCH_ONLY", "insert,bulk,index,open,search,nn,filtered,pg,mysql"):gmatch("[^,%s]+") do only[p] = true end
-- what the phases build on: the table, then its index
if only.search or only.nn or only.open then only.index = true end
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
  -- what the phase keeps: garbage collected first (the Lua heap holds the
  -- dataset's matrices, so its collector lets tens of MB of garbage pile up
  -- before a cycle, and the peak says more about that pacing than about us)
  collectgarbage()
  collectgarbage()
  local rss1 = B.mem()
  memory[#memory + 1] = { phase = name, seconds = t, rss_before = rss0, retained = rss1 - rss0,
                          peak_added = reset and math.max(0, hwm - rss0) or nil }
  return t, table.unpack(r, 1, r.n)
end

-- the first round of a repeated case is also a phase whose memory is recorded
local function first_phase(round, name, fn)
  if round == 1 then return phase(name, fn) end
  return fn()
end

-- wall and CPU seconds of fn(), then what it returns
local function timed(fn)
  local c0, t0 = B.cpu(), B.now()
  local r = table.pack(fn())
  return B.now() - t0, B.cpu() - c0, table.unpack(r, 1, r.n)
end

-- The fastest of several rounds, the cases of a round run one after the
-- other so that a change of the machine's load hits every case alike.
-- cases: { { name, run = function(round) -> wall, cpu end }, ... }
local function rounds(n, cases)
  local best = {}
  for r = 1, n do
    for _, c in ipairs(cases) do
      local w, cpu = c.run(r)
      local b = best[c.name]
      if not b then
        best[c.name] = { wall = w, cpu = cpu, walls = { w } }
      else
        b.wall, b.cpu = math.min(b.wall, w), math.min(b.cpu, cpu)
        b.walls[#b.walls + 1] = w
      end
    end
  end
  return best
end

local figures = {}   -- every row of the table, in order
local function figure(f) figures[#figures + 1] = f; return f end

-- a figure comparing times (smaller is better): ratio = VekterDB / bound
local function time_figure(f, v, b)
  f.unit, f.vekterdb, f.bound = "s", v.wall, b.wall
  f.ratio, f.cpu_ratio = v.wall / b.wall, v.cpu / b.cpu
  f.seconds, f.cpu_seconds, f.bound_seconds, f.bound_cpu_seconds = v.wall, v.cpu, b.wall, b.cpu
  f.runs, f.bound_runs = v.walls, b.walls
  return figure(f)
end

-- a figure comparing rates of n records: ratio = VekterDB's rate / the bound's
local function rate_figure(f, n, v, b)
  f.unit, f.vekterdb, f.bound = "records/s", n / v.wall, n / b.wall
  f.ratio, f.cpu_ratio = b.wall / v.wall, b.cpu / v.cpu
  f.seconds, f.cpu_seconds, f.bound_seconds, f.bound_cpu_seconds = v.wall, v.cpu, b.wall, b.cpu
  f.runs, f.bound_runs = v.walls, b.walls
  return figure(f)
end

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
-- 2. bulk loads: no table per record
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
local ddl = {}
local insert_sql = string.format('INSERT INTO "%s" ("idx", "vector", "name") VALUES (?1, ?2, ?3)',
                                 table_name)
local n_first = math.max(1, N // 10)
local t_compress

local function remove_db(file)
  for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(work .. "/" .. file .. suffix) end
end

-- a case of an insert round: the first round's memory is recorded as a phase
local function insert_case(name, fn)
  return { name = name, run = function(round)
    local w, c
    first_phase(round, name, function() w, c = fn() end)
    return w, c
  end }
end

-- db:insert into a new table of its own
local function lua_insert(file, make, level)
  return function()
    remove_db(file)
    local h = vekterdb.new(table_name, { url = "sqlite:///" .. work .. "/" .. file, columns = columns })
    local w, c = timed(function() return h:insert(make(0, N), { compression_level = level }) end)
    h:close()
    remove_db(file)
    return w, c
  end
end

if only.insert then
  -- the table the other phases use, in three parts: 10%, then two halves of
  -- the rest. Does memory grow with N? Lua's collector lets garbage pile up
  -- to about the live heap (which holds the dataset's matrices) before a
  -- cycle, and freed memory stays with the process, so the first parts
  -- reach that plateau; a leak would go on adding in the last one.
  say("insert: %d records from a Lua generator into the table the index is built on", N)
  local n_mid = n_first + (N - n_first) // 2
  local wa, ca, wb, cb, wc, cc
  phase("insert, Lua generator, first 10%", function()
    wa, ca = timed(function() return db:insert(records(0, n_first)) end)
  end)
  phase("insert, Lua generator, next 45%", function()
    wb, cb = timed(function() return db:insert(records(n_first, n_mid)) end)
  end)
  phase("insert, Lua generator, last 45%", function()
    wc, cc = timed(function() return db:insert(records(n_mid, N)) end)
  end)
  wb, cb = wb + wc, cb + cc
  assert(db:count() == N)
  local pa, pb, pc = memory[#memory - 2].peak_added, memory[#memory - 1].peak_added, memory[#memory].peak_added
  for _, row in ipairs(db:execute("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL "
                                  .. "ORDER BY rowid", { table_name })) do
    ddl[#ddl + 1] = row[1]
  end
  local cases = {
    insert_case("insert, plain C bound", function()
      remove_db("bound.db")
      local w, tc, c = B.sqlite_bound(work .. "/bound.db", ddl, insert_sql, train, names, 1)
      t_compress = tc
      remove_db("bound.db")
      return w, c
    end),
  }
  -- the first round's Lua insert is the one above; later rounds use a new table
  cases[#cases + 1] = { name = "insert, Lua generator", run = function(round)
    if round == 1 then return wa + wb, ca + cb end
    return lua_insert("again.db", records, 1)()
  end }
  if only.bulk then
    cases[#cases + 1] = insert_case("insert, reused record table", lua_insert("reused.db", records_reused, 1))
    cases[#cases + 1] = insert_case("insert, db:insert_matrix", function()
      remove_db("matrix.db")
      local h = vekterdb.new(table_name, { url = "sqlite:///" .. work .. "/matrix.db", columns = columns })
      local w, c = timed(function() return h:insert_matrix(train, { idx = 0, columns = { name = names } }) end)
      h:close()
      remove_db("matrix.db")
      return w, c
    end)
    cases[#cases + 1] = insert_case("insert, engine batch API from C", function()
      remove_db("engine.db")
      local w, c = B.engine_bulk("sqlite:///" .. work .. "/engine.db", table_name, train, names, 10000, 1)
      remove_db("engine.db")
      return w, c
    end)
    -- zstd level 1 finds nothing to compress in float32 data but tries hard
    -- (Huffman tables for the literals): a negative level skips that
    cases[#cases + 1] = insert_case("insert, Lua generator, level -1", lua_insert("fast.db", records, -1))
    cases[#cases + 1] = insert_case("insert, engine batch API from C, level -1", function()
      remove_db("engine2.db")
      local w, c = B.engine_bulk("sqlite:///" .. work .. "/engine2.db", table_name, train, names, 10000, -1)
      remove_db("engine2.db")
      return w, c
    end)
  end
  say("insert: %d round(s) of %d cases", repeat_insert, #cases)
  local best = rounds(repeat_insert, cases)
  local bound = best["insert, plain C bound"]
  rate_figure({ group = "insert", name = "insert, Lua generator", target = ">= 0.75",
                note = string.format("bound: one prepared INSERT, one transaction, rows compressed "
                  .. "beforehand (compression alone: %.2f s)", t_compress) },
              N, best["insert, Lua generator"], bound)
  if pb and pc then
    figure({ group = "insert", name = "insert streams (peak added, last 45% vs next)", unit = "MB",
             vekterdb = pc / 2^20, bound = pb / 2^20, ratio = (pc + 2^20) / (pb + 2^20),
             target = "no growth", ok = pc <= pb + 8 * 2^20,
             note = string.format("peak resident memory each part added: %.1f MB (first %d records), %.1f MB "
               .. "(next %d), %.1f MB (last %d)", pa / 2^20, n_first,
               pb / 2^20, n_mid - n_first, pc / 2^20, N - n_mid) })
  end
  if only.bulk then
    rate_figure({ group = "insert", name = "bulk, Lua: one reused record table", target = ">= 0.8",
                  note = "db:insert(iterator) returning the same table each time: a vector userdata "
                    .. "per record remains" }, N, best["insert, reused record table"], bound)
    rate_figure({ group = "insert", name = "bulk, Lua: db:insert_matrix", target = ">= 0.9",
                  note = "a matrix plus column arrays: no Lua table per record" },
                N, best["insert, db:insert_matrix"], bound)
    rate_figure({ group = "insert", name = "bulk, C: vk_batch_* + vk_db_insert",
                  note = "the engine's batch API called from C: what insert_matrix costs above it" },
                N, best["insert, engine batch API from C"], bound)
    rate_figure({ group = "insert", name = "insert, Lua generator, compression_level=-1", target = ">= 0.5",
                  note = "zstd's fast mode: the same bytes for float data, far less CPU" },
                N, best["insert, Lua generator, level -1"], bound)
    rate_figure({ group = "insert", name = "bulk, C, compression_level=-1", target = ">= 0.8" },
                N, best["insert, engine batch API from C, level -1"], bound)
  end
  for _, f in ipairs(figures) do
    if f.group == "insert" and f.target and f.ok == nil then
      f.ok = f.ratio >= tonumber(f.target:match("[%d.]+"))
    end
  end
end

---------------------------------------------------------------------------
-- 3. create_index, against FAISS train + add from memory
---------------------------------------------------------------------------

local index_file = work .. "/" .. variants[1] .. ".index"
if only.index then
  for vi, v in ipairs(variants) do
    local fs = factory(v)
    local file = work .. "/" .. v .. ".index"
    say("create_index %s: %d round(s), alternating with FAISS train + add from memory", fs, repeat_index)
    local h = vi == 1 and db or vekterdb.new(table_name, { url = url })
    -- VekterDB's own share: create_index reads every vector twice (training
    -- sample, then the adds)
    local t_read = timed(function() return h:sample_vectors(0) end)
    collectgarbage()
    local tt, ta, tw
    local best = rounds(repeat_index, {
      -- later rounds build the same index again on a handle of their own
      { name = "vekterdb", run = function(round)
        local hr = round == 1 and h or vekterdb.new(table_name, { url = url })
        local fr = round == 1 and file or (work .. "/" .. v .. "-again.index")
        local w, c
        first_phase(round, "create_index " .. fs, function()
          w, c = timed(function()
            hr:create_index(fr, fs, { metric = "l2", faiss_runtime_params = add_params })
          end)
        end)
        if hr ~= h then hr:close(); os.remove(fr) end
        return w, c
      end },
      { name = "bound", run = function(round)
        local rt, ra, rw, cb
        first_phase(round, "FAISS train + add " .. fs, function()
          rt, ra, rw, cb = B.faiss_build(fs, "l2", train, add_params, work .. "/bare-" .. v .. ".index")
        end)
        os.remove(work .. "/bare-" .. v .. ".index")
        if not tt or rt + ra < tt + ta then tt, ta, tw = rt, ra, rw end
        return rt + ra, cb
      end },
    })
    if h ~= db then h:close() end
    local f = time_figure({ group = "index", name = "create_index " .. fs, target = "<= 1.05",
                            train_seconds = tt, add_seconds = ta, write_seconds = tw,
                            read_vectors_seconds = t_read,
                            note = string.format("FAISS: train %.1f s, add %.1f s; VekterDB reads the "
                              .. "%d vectors twice (%.2f s each) and writes the file (%.2f s)",
                              tt, ta, N, t_read, tw) },
                          best.vekterdb, best.bound)
    f.ok = f.ratio <= 1.05
  end
end

---------------------------------------------------------------------------
-- 3b. opening a table's index file (SHA-256 checked against the table's
-- record, then read), against FAISS reading the same file
---------------------------------------------------------------------------

if only.open and db.index then
  -- the searched index, and a Flat one: every byte of the vectors in the file
  local flat_file = work .. "/open-flat.index"
  local h = vekterdb.new(table_name, { url = url })
  say("create_index Flat (for the open figures)")
  h:create_index(flat_file, "Flat", { metric = "l2" })
  h:close()
  for _, c in ipairs({ { "IVF " .. factory(variants[1]), index_file }, { "Flat", flat_file } }) do
    local label, file = c[1], c[2]
    local fh = assert(io.open(file, "rb"))
    local size = fh:seek("end")
    fh:close()
    for _, mmap in ipairs({ false, true }) do
      local cases = {
        { name = "vekterdb", run = function()
          collectgarbage()
          return timed(function()
            local t = vekterdb.new(table_name, { url = url, faiss_index = file, mmap = mmap })
            t:close()
          end)
        end },
        { name = "faiss", run = function()
          collectgarbage()
          return timed(function() local ix = B.faiss_read(file, mmap); ix = nil end)
        end },
      }
      local best = rounds(repeat_search, cases)
      local f = time_figure({ group = "open",
                              name = string.format("open %s index%s", label, mmap and ", mmap" or ""),
                              bytes = size,
                              note = "vekterdb.new with faiss_index: connect, SHA-256 of the file, "
                                .. "the table's record, FAISS's read, the consistency checks" },
                            best.vekterdb, best.faiss)
      say("%s (%.1f MB): %.3f s against FAISS's %.3f s (ratio %.2f)", f.name, size / 2^20, f.seconds,
          f.bound_seconds, f.ratio)
    end
  end
  os.remove(flat_file)
end

---------------------------------------------------------------------------
-- 4. search every test vector, against bare FAISS on the same index
---------------------------------------------------------------------------

local bare
if (only.search or only.nn or only.filtered or only.pg or only.mysql) and db.index then
  bare = B.faiss_read(index_file)
end

local search_rows = {}
local breakdown
local EXTRAS = { 0, 4, 49 }
if only.search and bare then
  local cases, recall = {}, {}
  local function vk_case(k, extra, cols, name)
    local opts = { k_extra_neighbors = extra, search_parameters = search_params }
    return { name = name, run = function(round)
      collectgarbage()
      local w, c, res = timed(function() return db:search(test, k, table.unpack(cols), opts) end)
      if round == 1 and #cols == 2 then recall[name] = table.pack(B.recall(gt, res, k)) end
      res = nil
      collectgarbage()
      return w, c
    end }
  end
  local function bare_case(k, name, keep)
    return { name = name, run = function(round)
      local w, labels, c = bare:search(test, k, search_params)
      if round == 1 and keep then recall[name] = table.pack(B.recall(gt, labels, k)) end
      return w, c
    end }
  end
  local function engine_case(k, extra, name)
    return { name = name, run = function()
      return B.engine_search(url, table_name, index_file, test, k, extra, search_params)
    end }
  end
  for _, k in ipairs({ 1, 10 }) do
    cases[#cases + 1] = bare_case(k, "faiss k=" .. k, true)
    for _, extra in ipairs(EXTRAS) do
      cases[#cases + 1] = vk_case(k, extra, { "idx", "name" }, string.format("vekterdb k=%d e=%d", k, extra))
    end
    cases[#cases + 1] = bare_case(k + 49, "faiss k=" .. k .. "+49")
  end
  -- where the time of k=10, k_extra=49 goes
  cases[#cases + 1] = engine_case(10, 0, "engine k=10 e=0")
  cases[#cases + 1] = engine_case(10, 49, "engine k=10 e=49")
  cases[#cases + 1] = vk_case(10, 49, { "idx" }, "vekterdb k=10 e=49 idx")
  say("search: %d round(s) of %d cases, %d queries each", repeat_search, #cases, NQ)
  local best = rounds(repeat_search, cases)
  for _, k in ipairs({ 1, 10 }) do
    local fb = best["faiss k=" .. k]
    local f1, fk, fi = table.unpack(recall["faiss k=" .. k])
    local e0
    for _, extra in ipairs(EXTRAS) do
      local name = string.format("vekterdb k=%d e=%d", k, extra)
      local v = best[name]
      e0 = e0 or v
      local r1, rk, ri = table.unpack(recall[name])
      search_rows[#search_rows + 1] = {
        k = k, k_extra = extra, seconds = v.wall, cpu_seconds = v.cpu, qps = NQ / v.wall,
        r1 = r1, rk = rk, inter = ri, faiss_seconds = fb.wall, faiss_cpu_seconds = fb.cpu,
        faiss_qps = NQ / fb.wall, faiss_r1 = f1, faiss_rk = fk, faiss_inter = fi,
      }
      local f = time_figure({ group = "search", name = string.format("search k=%d k_extra=%d", k, extra),
                              vs_extra0 = v.wall / e0.wall, r1 = r1, rk = rk, faiss_r1 = f1, faiss_rk = fk },
                            v, fb)
      if extra == 0 then
        f.target, f.ok = "<= 1.15", f.ratio <= 1.15
      elseif extra == 49 then
        -- issue 17: the rerank of 49 extra candidates per query, fetched and
        -- decoded on both cores, costs at most 30% over k_extra=0
        f.target, f.ok = "<= 1.3 x k_extra=0", f.vs_extra0 <= 1.3
        f.note = string.format("%.2f x k_extra=0; FAISS alone at k=%d: %.3f s", f.vs_extra0, k + 49,
                               best["faiss k=" .. k .. "+49"].wall)
      end
    end
  end
  local _, labels = bare:search(test, 59, search_params)
  local pr = B.probe_rerank(work .. "/vekterdb.db", table_name, labels, test, work .. "/rowid.db")
  breakdown = {
    k = 10, k_extra = 49, candidates = NQ * 59,
    faiss_k = best["faiss k=10"].wall, faiss_kk = best["faiss k=10+49"].wall,
    engine_search_extra0 = best["engine k=10 e=0"].wall, engine_search = best["engine k=10 e=49"].wall,
    lua_search_idx = best["vekterdb k=10 e=49 idx"].wall, lua_search_idx_name = best["vekterdb k=10 e=49"].wall,
    engine_fetch = pr.engine_fetch, sqlite_fetch = pr.sqlite_fetch,
    sqlite_fetch_rowid = pr.sqlite_fetch_rowid, metric = pr.metric,
  }
  -- the memory of one search
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
  local sql = string.format('SELECT "idx", "vector" FROM "%s" WHERE "name" = ?1', table_name)
  say("nearest_neighbors of %d records", #sel)
  local best = rounds(repeat_search, {
    { name = "vekterdb", run = function()
      return timed(function()
        local r = db:nearest_neighbors("name", sel, k, "idx", "name", { search_parameters = search_params })
        assert(#r == #sel)
      end)
    end },
    { name = "bound", run = function()
      local w, _, c = B.nn_bound(work .. "/vekterdb.db", sql, sel, bare, k, search_params)
      return w, c
    end },
  })
  local f = time_figure({ group = "nn", name = "nearest_neighbors, 1000 records by name", target = "<= 1.1",
                          note = "bound: one prepared SELECT per name, decode, one FAISS search for k+1" },
                        best.vekterdb, best.bound)
  f.ok = f.ratio <= 1.1
end

---------------------------------------------------------------------------
-- 6. filtered search: the planner against post-filtering
---------------------------------------------------------------------------

local filtered_rows = {}
local filter_queries = math.min(NQ, math.tointeger(tonumber(env("BENCH_FILTER_QUERIES", "1000"))))
local POST_K = 40   -- pgvector's default hnsw.ef_search: what a WHERE after an ANN scan sees
if only.filtered and bare then
  local sub = vekterdb.matrix(filter_queries, D)
  for q = 1, filter_queries do sub[q] = test[q] end
  local function ids(neighbors, keep)
    local out = {}
    for _, n in ipairs(neighbors) do
      if #out == 10 then break end
      if not keep or keep(n.idx) then out[#out + 1] = n.idx end
    end
    return out
  end
  local function recall(got, want)
    local set, hit = {}, 0
    for _, v in ipairs(want) do set[v] = true end
    for _, v in ipairs(got) do if set[v] then hit = hit + 1 end end
    return #want > 0 and hit / #want or 1
  end
  -- the baseline: the same single queries without a filter (same index,
  -- same parameters, same k_extra); the planner's rows are measured against
  -- it (target: at least 0.5 of its queries/s, recall@10 at most 0.02 below)
  local base = {}
  do
    say("filtered search: the unfiltered baseline, %d single queries", filter_queries)
    local truth = db:search(sub, 10, "idx", { filter = db.Record.idx:ge(0), filter_plan = "exact" })
    for _, extra in ipairs({ 0, POST_K - 10 }) do
      local opts = { search_parameters = search_params, k_extra_neighbors = extra }
      local r, got = 0, 0
      local w, c = timed(function()
        for q = 1, filter_queries do
          local found = ids(db:search(sub[q], 10, "idx", opts)[1].neighbors)
          r, got = r + recall(found, ids(truth[q].neighbors)), got + #found
        end
      end)
      base[extra] = { qps = filter_queries / w, recall10 = r / filter_queries }
      filtered_rows[#filtered_rows + 1] = {
        selectivity = 1, matches = N, method = "no filter, k_extra=" .. extra, k_extra = extra,
        recall10 = r / filter_queries, returned = got / filter_queries, qps = filter_queries / w,
        seconds = w, cpu_seconds = c, plans = "index", vs_plain = 1, recall_vs_plain = 0,
      }
    end
  end
  for _, share in ipairs({ 0.001, 0.01, 0.1, 0.5 }) do
    -- idx values are in random order of the dataset's clusters: a range of
    -- them is a random subset of the table, counted through its primary key
    local m = math.floor(N * share + 0.5)
    local f = db.Record.idx:lt(m)
    say("filtered search: %g%% of the table (%d records), %d single queries", share * 100, m, filter_queries)
    local truth = db:search(sub, 10, "idx", { filter = f, filter_plan = "exact" })
    -- the planner with FAISS's own candidates only (k_extra 0), then with the
    -- candidate budget post-filtering gets (POST_K reranked exactly)
    for _, extra in ipairs({ 0, POST_K - 10 }) do
      local opts = { filter = f, search_parameters = search_params, k_extra_neighbors = extra }
      local r, got = 0, 0
      local w, c = timed(function()
        for q = 1, filter_queries do
          local found = ids(db:search(sub[q], 10, "idx", opts)[1].neighbors)
          r, got = r + recall(found, ids(truth[q].neighbors)), got + #found
        end
      end)
      local plans = {}
      for q = 1, math.min(filter_queries, 20) do
        local plan = db:explain_search(sub[q], 10, opts)
        plans[plan.plan] = (plans[plan.plan] or 0) + 1
      end
      local names_of = {}
      for name, n in pairs(plans) do names_of[#names_of + 1] = string.format("%s %d", name, n) end
      table.sort(names_of)
      filtered_rows[#filtered_rows + 1] = {
        selectivity = share, matches = m, method = "planner, k_extra=" .. extra, k_extra = extra,
        recall10 = r / filter_queries, returned = got / filter_queries, qps = filter_queries / w,
        seconds = w, cpu_seconds = c, plans = table.concat(names_of, ", ") .. " (of 20)",
        vs_plain = filter_queries / w / base[extra].qps, recall_vs_plain = r / filter_queries - base[extra].recall10,
      }
    end
    local r, got = 0, 0
    local w, c = timed(function()
      for q = 1, filter_queries do
        local found = ids(db:search(sub[q], POST_K, "idx", { search_parameters = search_params })[1].neighbors,
                          function(idx) return idx < m end)
        r, got = r + recall(found, ids(truth[q].neighbors)), got + #found
      end
    end)
    filtered_rows[#filtered_rows + 1] = {
      selectivity = share, matches = m, method = "post-filter, k=" .. POST_K, recall10 = r / filter_queries,
      returned = got / filter_queries, qps = filter_queries / w, seconds = w, cpu_seconds = c, plans = "",
    }
  end
end

---------------------------------------------------------------------------
-- 7. PostgreSQL: the same insert and search on a PostgreSQL table
---------------------------------------------------------------------------

local pg_url = env("BENCH_PG_URL")
if only.pg and pg_url then
  local pg_table, bound_table = table_name .. "_pg", table_name .. "_pg_bound"
  local function drop(name)
    B.pg_exec(pg_url, string.format('SET client_min_messages TO warning; '
      .. 'DROP TABLE IF EXISTS "%s", "%s__vekterdb_deleted"', name, name))
  end
  local pg_ddl = {
    string.format('CREATE TABLE "%s" ("idx" BIGINT PRIMARY KEY, "vector" BYTEA NOT NULL, "name" TEXT)',
                  bound_table),
    string.format('CREATE INDEX ON "%s" ("name")', bound_table),
  }
  say("PostgreSQL: %d round(s) of insert, %d records", repeat_insert, N)
  local best = rounds(repeat_insert, {
    insert_case("PostgreSQL insert, binary COPY bound", function()
      drop(bound_table)
      local w, c = B.pg_bound(pg_url, pg_ddl, bound_table, train, names, 1)
      drop(bound_table)
      return w, c
    end),
    insert_case("PostgreSQL insert, db:insert_matrix", function()
      drop(pg_table)
      local h = vekterdb.new(pg_table, { url = pg_url, columns = columns })
      local w, c = timed(function() return h:insert_matrix(train, { idx = 0, columns = { name = names } }) end)
      h:close()
      return w, c
    end),
    -- last: the search rows below use the table it filled
    insert_case("PostgreSQL insert, Lua generator", function()
      drop(pg_table)
      local h = vekterdb.new(pg_table, { url = pg_url, columns = columns })
      local w, c = timed(function() return h:insert(records(0, N)) end)
      h:close()
      return w, c
    end),
  })
  local f = rate_figure({ group = "postgresql", name = "PostgreSQL: insert, Lua generator", target = ">= 0.75",
                          note = "bound: one binary COPY of rows compressed beforehand, one transaction" },
                        N, best["PostgreSQL insert, Lua generator"], best["PostgreSQL insert, binary COPY bound"])
  f.ok = f.ratio >= 0.75
  f = rate_figure({ group = "postgresql", name = "PostgreSQL: insert, db:insert_matrix", target = ">= 0.9" },
                  N, best["PostgreSQL insert, db:insert_matrix"], best["PostgreSQL insert, binary COPY bound"])
  f.ok = f.ratio >= 0.9
  if bare then
    -- the table the last round filled, with the index built on the SQLite table
    -- the file was saved for the SQLite table: the PostgreSQL one trusts it once
    local pg = vekterdb.new(pg_table, { url = pg_url, faiss_index = index_file, trust_index_file = true })
    local cases = {
      { name = "faiss k=10", run = function() local w, _, c = bare:search(test, 10, search_params); return w, c end },
    }
    for _, extra in ipairs({ 0, 49 }) do
      cases[#cases + 1] = { name = "pg e=" .. extra, run = function()
        collectgarbage()
        return timed(function()
          return #pg:search(test, 10, "idx", "name", { k_extra_neighbors = extra, search_parameters = search_params })
        end)
      end }
    end
    say("PostgreSQL: %d round(s) of search, %d queries", repeat_search, NQ)
    local sb = rounds(repeat_search, cases)
    for _, extra in ipairs({ 0, 49 }) do
      time_figure({ group = "postgresql", name = string.format("PostgreSQL: search k=10 k_extra=%d", extra),
                    note = "bound: bare FAISS on the same index; the records from PostgreSQL" },
                  sb["pg e=" .. extra], sb["faiss k=10"])
    end
    pg:close()
  end
  drop(pg_table)
end

---------------------------------------------------------------------------
-- 8. MySQL / MariaDB: the same insert and search on a MySQL table
---------------------------------------------------------------------------

local my_url = env("BENCH_MYSQL_URL")
if only.mysql and my_url then
  local user, password, host, port, database =
    my_url:match("^%w+[+%w]*://([^:@/]*):?([^@/]*)@([^:/]*):?(%d*)/([^?]*)")
  local conn = { user = user, password = password, host = host, port = port ~= "" and port or nil,
                 database = database }
  local my_table, bound_table = table_name .. "_my", table_name .. "_my_bound"
  local function drop(name)
    B.my_exec(conn, string.format("DROP TABLE IF EXISTS `%s`, `%s__vekterdb_deleted`", name, name))
  end
  local my_ddl = {
    string.format("CREATE TABLE `%s` (`idx` BIGINT PRIMARY KEY, `vector` LONGBLOB NOT NULL, `name` TEXT) "
                  .. "ENGINE=InnoDB", bound_table),
    string.format("CREATE INDEX `ix_%s_name` ON `%s` (`name`(255))", bound_table, bound_table),
  }
  say("MySQL: %d round(s) of insert, %d records", repeat_insert, N)
  local best = rounds(repeat_insert, {
    insert_case("MySQL insert, prepared multi-row INSERT bound", function()
      drop(bound_table)
      local w, c = B.my_bound(conn, my_ddl, bound_table, train, names, 1)
      drop(bound_table)
      return w, c
    end),
    insert_case("MySQL insert, Lua generator", function()
      drop(my_table)
      local h = vekterdb.new(my_table, { url = my_url, columns = columns })
      local w, c = timed(function() return h:insert(records(0, N)) end)
      h:close()
      return w, c
    end),
  })
  local f = rate_figure({ group = "mysql", name = "MySQL: insert, Lua generator", target = ">= 0.5",
                          note = "bound: prepared INSERTs of 1000 rows compressed beforehand, one transaction" },
                        N, best["MySQL insert, Lua generator"], best["MySQL insert, prepared multi-row INSERT bound"])
  f.ok = f.ratio >= 0.5
  if bare then
    local my = vekterdb.new(my_table, { url = my_url, faiss_index = index_file, trust_index_file = true })
    local cases = {
      { name = "faiss k=10", run = function() local w, _, c = bare:search(test, 10, search_params); return w, c end },
    }
    for _, extra in ipairs({ 0, 49 }) do
      cases[#cases + 1] = { name = "my e=" .. extra, run = function()
        collectgarbage()
        return timed(function()
          return #my:search(test, 10, "idx", "name", { k_extra_neighbors = extra, search_parameters = search_params })
        end)
      end }
    end
    say("MySQL: %d round(s) of search, %d queries", repeat_search, NQ)
    local sb = rounds(repeat_search, cases)
    for _, extra in ipairs({ 0, 49 }) do
      time_figure({ group = "mysql", name = string.format("MySQL: search k=10 k_extra=%d", extra),
                    note = "bound: bare FAISS on the same index; the records from MySQL" },
                  sb["my e=" .. extra], sb["faiss k=10"])
    end
    my:close()
  end
  drop(my_table)
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
p("  %s; nprobe=%d, quantizer_efSearch=%d while searching, %s while adding; %d threads;",
  factory(variants[1]), nprobe, 2 * nprobe, add_params, vekterdb.get_num_threads())
p("  fastest of %d rounds (search, nearest_neighbors), %d rounds (insert) and %d rounds (create_index)",
  repeat_search, repeat_insert, repeat_index)
p("")
p("| %-46s | %12s | %12s | %6s | %6s | %-24s |", "figure", "VekterDB", "bound", "ratio", "CPU", "target")
p("|%s|%s|%s|%s|%s|%s|", ("-"):rep(48), ("-"):rep(14), ("-"):rep(14), ("-"):rep(8), ("-"):rep(8),
  ("-"):rep(26))
for _, f in ipairs(figures) do
  local target = f.target and (f.target .. (f.ok == nil and "" or (f.ok and "  ok" or "  MISSED"))) or ""
  p("| %-46s | %12s | %12s | %6.2f | %6s | %-24s |", f.name, fmt_value(f.vekterdb, f.unit),
    fmt_value(f.bound, f.unit), f.ratio, f.cpu_ratio and string.format("%.2f", f.cpu_ratio) or "",
    target)
end
p("(ratio: of wall times, VekterDB / bound, or of rates for records/s; CPU: the same from the"
  .. " process's CPU time)")
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
if #filtered_rows > 0 then
  p("")
  p("filtered search: k = 10, %d single queries, filter idx < m (a random subset of the table);", filter_queries)
  p("post-filter: an unfiltered search for %d neighbors (reranked), then the matching ones, as a WHERE after",
    POST_K)
  p("an ANN index scan does; recall@10 against the exact filtered neighbors; \"no filter\": the same single")
  p("queries unfiltered, the baseline; vs plain: q/s over the baseline's at the same k_extra (target >= 0.5),")
  p("dR@10: recall@10 minus the baseline's (target >= -0.02); the planner reuses what a filter read while the")
  p("table is unchanged (docs/filtered-search.md)")
  p("| %-6s | %7s | %-21s | %7s | %8s | %7s | %8s | %7s | %-28s |", "sel", "matches", "method", "R@10",
    "returned", "q/s", "vs plain", "dR@10", "plans")
  p("|%s|%s|%s|%s|%s|%s|%s|%s|%s|", ("-"):rep(8), ("-"):rep(9), ("-"):rep(23), ("-"):rep(9), ("-"):rep(10),
    ("-"):rep(9), ("-"):rep(10), ("-"):rep(9), ("-"):rep(30))
  for _, r in ipairs(filtered_rows) do
    p("| %-6s | %7d | %-21s | %7.4f | %8.2f | %7.0f | %8s | %7s | %-28s |", string.format("%g%%", r.selectivity * 100),
      r.matches, r.method, r.recall10, r.returned, r.qps,
      r.vs_plain and string.format("%.2f", r.vs_plain) or "", r.recall_vs_plain and string.format("%+.4f", r.recall_vs_plain) or "",
      r.plans)
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
p("| %-46s | %9s | %14s | %14s |", "phase: resident memory", "seconds", "peak added", "kept")
p("|%s|%s|%s|%s|", ("-"):rep(48), ("-"):rep(11), ("-"):rep(16), ("-"):rep(16))
for _, m in ipairs(memory) do
  p("| %-46s | %9.2f | %14s | %14s |", m.phase, m.seconds,
    m.peak_added and string.format("%.1f MB", m.peak_added / 2^20) or "-",
    string.format("%.1f MB", m.retained / 2^20))
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
    compression_level = 1, search_repeat = repeat_search, insert_repeat = repeat_insert, index_repeat = repeat_index,
    threads = vekterdb.get_num_threads(), search_columns = { "idx", "name" },
    nn_records = 1000, nn_k = 10, filter_queries = filter_queries, filter_post_k = POST_K,
    postgresql = pg_url and env("BENCH_PG_LABEL", "the server of BENCH_PG_URL") or nil,
    mysql = my_url and env("BENCH_MYSQL_LABEL", "the server of BENCH_MYSQL_URL") or nil,
  },
  figures = figures,
  search = search_rows,
  search_breakdown = breakdown,
  filtered = filtered_rows,
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
