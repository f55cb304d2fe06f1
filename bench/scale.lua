-- bench/scale.lua: one phase of the large benchmark (make bench-10m), run by
-- bench/scale.sh as a process of its own, so that the peak resident memory
-- the phase reports (VmHWM at its end) is its own.
--   lua bench/scale.lua PHASE
-- PHASE: insert, index-pq, index-disk, search-pq, search-disk, report.
-- Each phase writes $BENCH_SCALE_WORK/<phase>.json; report gathers them into
-- bench/results/ and prints the table. The environment (set by scale.sh):
--   BENCH_SCALE_DATA   the dataset (train.fvecs, test.fvecs, gt.ivecs, spec.txt)
--   BENCH_SCALE_WORK   the table and the indexes
--   BENCH_RESULTS      where the JSON goes          BENCH_FAISS  the FAISS build
--   BENCH_SCALE_NLIST  inverted lists (default: sqrt(N) to the nearest power of two)
--   BENCH_SCALE_SAMPLE training sample (default 64 x nlist)
--   BENCH_SCALE_NPROBE the nprobe values searched (default nlist/256, /64, /32)
--   BENCH_SCALE_SINGLE queries searched one at a time (default: all of them)
--   BENCH_SCALE_NOTE   a remark kept in the results (which build ran which phase)
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local cjson = require "cjson"
local B = require "vkbench"

io.stdout:setvbuf("line")

local env = require("bench.common").env

local phase = assert(arg[1], "usage: scale.lua insert|index-pq|index-disk|search-pq|search-disk|report")
local data = assert(env("BENCH_SCALE_DATA"), "BENCH_SCALE_DATA is not set: run `make bench-10m`")
local work = assert(env("BENCH_SCALE_WORK"), "BENCH_SCALE_WORK is not set: run `make bench-10m`")
local results_dir = env("BENCH_RESULTS", "bench/results")

local function say(fmt, ...)
  io.stderr:write(string.format("[scale %s] " .. fmt .. "\n", phase, ...))
end

local spec = {}
for line in io.lines(data .. "/spec.txt") do
  local k, v = line:match("^(%w[%w_]*)=(.*)$")
  if k then spec[k] = tonumber(v) or v end
end
local N, D = math.tointeger(spec.n), math.tointeger(spec.d)

-- nlist: about sqrt(N) (the usual starting point: lists of sqrt(N) vectors,
-- so the coarse search and the scan of the lists cost alike), rounded to a
-- power of two: 1024 at 1M, 4096 at 10M
local nlist = math.tointeger(tonumber(env("BENCH_SCALE_NLIST",
  tostring(math.tointeger(2 ^ math.floor(math.log(math.sqrt(N), 2) + 0.5))))))
-- 64 training points per centroid: well above FAISS's floor of 39 (below
-- it k-means warns), a quarter of its cap of 256 (above it FAISS samples
-- anyway); 262,144 vectors (128 MB) at 4096 lists
local sample = math.tointeger(tonumber(env("BENCH_SCALE_SAMPLE", tostring(math.min(N, 64 * nlist)))))
local nprobes = {}
-- nprobe: 1/256, 1/64 and 1/32 of the lists (16, 64 and 128 at 4096)
for p in env("BENCH_SCALE_NPROBE", string.format("%d,%d,%d", math.max(1, nlist // 256), nlist // 64,
                                                 nlist // 32)):gmatch("%d+") do
  nprobes[#nprobes + 1] = math.tointeger(tonumber(p))
end
local batch = 100000
local url = "sqlite:///" .. work .. "/scale.db"
local INDEXES = {
  pq = { file = work .. "/pq.index", factory = string.format("IVF%d_HNSW32,PQ32np", nlist),
         opts = { faiss_runtime_params = "quantizer_efSearch=25" },
         -- the HNSW quantizer's search width follows nprobe, as the tutorial does
         params = function(p) return string.format("nprobe=%d,quantizer_efSearch=%d", p, 2 * p) end },
  disk = { file = work .. "/sq8.index", factory = string.format("IVF%d,SQ8", nlist),
           opts = { on_disk = true },
           params = function(p) return string.format("nprobe=%d", p) end },
}

-- /proc/self/status, in bytes: VmRSS, VmHWM, RssAnon, RssFile
local function status()
  local s = {}
  for line in io.lines("/proc/self/status") do
    local k, v = line:match("^(%w+):%s+(%d+) kB")
    if k then s[k] = tonumber(v) * 1024 end
  end
  return { rss = s.VmRSS, peak_rss = s.VmHWM, rss_anon = s.RssAnon, rss_file = s.RssFile }
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return nil end
  local l = f:read("l")
  f:close()
  return l
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- the files of the work folder whose names start with prefix, and their sizes
local function files_of(prefix)
  local out, total = {}, 0
  local p = io.popen("ls -1 '" .. work .. "' 2>/dev/null")
  for name in p:lines() do
    if name:sub(1, #prefix) == prefix then
      local n = file_size(work .. "/" .. name) or 0
      out[name] = n
      total = total + n
    end
  end
  p:close()
  return out, total
end

local function write_json(path, t)
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(cjson.encode(t), "\n")
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

local function read_json(path)
  local f = io.open(path)
  if not f then return nil end
  local t = cjson.decode(f:read("a"))
  f:close()
  return t
end

local out = { phase = phase, n = N, d = D, loadavg_start = loadavg() }
local t_start = B.now()

-- the phase's figures go to work/<phase>.json at the end, with the process's
-- peak resident memory
local function finish()
  out.seconds = B.now() - t_start
  out.loadavg_end = loadavg()
  out.memory = status()
  write_json(work .. "/" .. phase .. ".json", out)
  say("done in %.1f s, peak RSS %.0f MB", out.seconds, out.memory.peak_rss / 2^20)
end

---------------------------------------------------------------------------
-- insert: train.fvecs streamed into the table, a chunk at a time
---------------------------------------------------------------------------
if phase == "insert" then
  os.remove(work .. "/scale.db")
  local db = vekterdb.new("items", { url = url })
  local f = vio.open(data .. "/train.fvecs")
  local done, t_last = 0, B.now()
  for m in f:chunks(batch) do
    done = done + db:insert_matrix(m, { batch_size = batch })
    if done % (10 * batch) == 0 or done == N then
      say("%d of %d records (%.0f records/s)", done, N, 10 * batch / (B.now() - t_last))
      t_last = B.now()
    end
  end
  f:close()
  out.records = db:count()
  db:close()
  assert(out.records == N, "the table holds " .. tostring(out.records) .. " records, not " .. N)
  out.batch_size = batch
  out.table_bytes = file_size(work .. "/scale.db")
  out.table_files = files_of("scale.db")
  finish()
  out.records_per_second = N / out.seconds
  write_json(work .. "/" .. phase .. ".json", out)
  return
end

---------------------------------------------------------------------------
-- index-pq, index-disk: create_index from the table, trained on a sample,
-- added in batches
---------------------------------------------------------------------------
local which = phase:match("^index%-(%a+)$")
if which then
  local ix = INDEXES[which]
  local prefix = ix.file:match("[^/]+$")
  for name in pairs(files_of(prefix)) do os.remove(work .. "/" .. name) end
  local db = vekterdb.new("items", { url = url })
  local opts = { metric = "l2", sample_size = sample, batch_size = batch }
  for k, v in pairs(ix.opts) do opts[k] = v end
  local marks, t0, t_said = {}, B.now(), B.now()
  opts.progress = function(done, total, what)
    local t = B.now() - t0
    if what == "train" and done == 0 then marks.sampled = t end
    if what == "train" and total and done == total then marks.trained = t end
    if what == "add" and done == 0 then marks.add_start = t end
    if what == "add" and B.now() - t_said > 60 then
      say("added %d of %s (%.0f s)", done, tostring(total), t)
      t_said = B.now()
    end
  end
  out.factory, out.nlist, out.sample_size, out.batch_size = ix.factory, nlist, sample, batch
  out.options = {}
  for k, v in pairs(opts) do if k ~= "progress" then out.options[k] = v end end
  say("create_index %s, sample %d, batches of %d", ix.factory, sample, batch)
  local ok, err = pcall(db.create_index, db, ix.file, ix.factory, opts)
  if not ok then
    local msg = tostring(type(err) == "table" and err.message or err)
    if which == "disk" and msg:find("unknown option 'on_disk'", 1, true) then
      -- (the option lands from another branch; until then the phase is left out)
      say("skipped: this build's create_index refuses the on_disk option (%s)", msg)
      out.skipped = "create_index refuses the on_disk option: " .. msg
      db:close()
      finish()
      return
    end
    error(err, 0)
  end
  out.create_seconds = B.now() - t0
  out.sample_seconds = marks.sampled
  out.train_seconds = marks.trained and marks.sampled and marks.trained - marks.sampled
  out.add_seconds = marks.add_start and out.create_seconds - marks.add_start
  out.ntotal = db.index.ntotal
  db:close()
  out.files, out.index_bytes = files_of(prefix)
  out.index_file_bytes = file_size(ix.file)
  finish()
  return
end

---------------------------------------------------------------------------
-- search-pq, search-disk: recall@10 of the 1,000 queries, batched and one at
-- a time, k_extra_neighbors 0 and 49, for each nprobe; in a fresh process
---------------------------------------------------------------------------
which = phase:match("^search%-(%a+)$")
if which then
  local ix = INDEXES[which]
  local idx_phase = read_json(work .. "/index-" .. which .. ".json")
  if not idx_phase or idx_phase.skipped or not file_size(ix.file) then
    out.skipped = "no " .. ix.factory .. " index (its create_index phase was "
      .. (idx_phase and idx_phase.skipped and "skipped" or "not run") .. ")"
    say("skipped: %s", out.skipped)
    finish()
    return
  end
  local test = vio.read_fvecs(data .. "/test.fvecs")
  local gt = B.gt(data .. "/gt.ivecs")
  local nq = test.n
  local nsingle = math.min(nq, math.tointeger(tonumber(env("BENCH_SCALE_SINGLE", tostring(nq)))))
  out.factory, out.queries, out.single_queries, out.k = ix.factory, nq, nsingle, 10
  out.memory_before_open = status()
  local t0 = B.now()
  local db = vekterdb.new("items", { url = url, faiss_index = ix.file })
  out.open_seconds = B.now() - t0
  out.memory_after_open = status()
  out.runs = {}
  local rows = {}
  for i = 1, nsingle do rows[i] = test:row(i) end
  -- what a few queries make resident (the on-disk index's lists are mapped:
  -- only the pages of the lists they visit are read)
  for i = 1, math.min(10, nsingle) do db:search(rows[i], 10, "idx", { search_parameters = ix.params(nprobes[1]) }) end
  out.memory_after_10_queries = status()
  for _, p in ipairs(nprobes) do
    for _, extra in ipairs({ 0, 49 }) do
      local opts = { k_extra_neighbors = extra, search_parameters = ix.params(p) }
      collectgarbage()
      local tb = B.now()
      local res = db:search(test, 10, "idx", opts)
      local batched = B.now() - tb
      local _, _, recall = B.recall(gt, res, 10)
      res = nil
      -- one at a time
      local lat, single = {}, {}
      for i = 1, nsingle do
        local ts = B.now()
        local r = db:search(rows[i], 10, "idx", opts)
        lat[i] = B.now() - ts
        single[i] = r[1]
      end
      local single_recall
      if nsingle == nq then _, _, single_recall = B.recall(gt, single, 10) end
      single = nil
      local sorted = {}
      for i = 1, nsingle do sorted[i] = lat[i] end
      table.sort(sorted)
      local sum = 0
      for i = 1, nsingle do sum = sum + lat[i] end
      local run = {
        nprobe = p, k_extra_neighbors = extra, search_parameters = opts.search_parameters,
        recall_at_10 = recall, batched_seconds = batched, batched_qps = nq / batched,
        batched_ms_per_query = 1000 * batched / nq,
        single_recall_at_10 = single_recall,
        single_ms_median = 1000 * sorted[(nsingle + 1) // 2],
        single_ms_p99 = 1000 * sorted[math.max(1, math.ceil(0.99 * nsingle))],
        single_ms_mean = 1000 * sum / nsingle,
      }
      out.runs[#out.runs + 1] = run
      say("nprobe=%d k_extra=%d: recall@10 %.4f; batched %.3f s (%.2f ms/query); one at a time "
          .. "median %.2f ms, p99 %.2f ms", p, extra, recall, batched, run.batched_ms_per_query,
          run.single_ms_median, run.single_ms_p99)
    end
  end
  out.memory_after_search = status()
  out.index_files, out.index_bytes = files_of(ix.file:match("[^/]+$"))
  db:close()
  finish()
  return
end

---------------------------------------------------------------------------
-- report: the phases' JSON gathered, the table printed
---------------------------------------------------------------------------
assert(phase == "report", "unknown phase " .. phase)

local function mb(b) return b and string.format("%.0f MB", b / 2^20) or "-" end
local function gb(b) return b and string.format("%.2f GB", b / 1e9) or "-" end
local function sec(s) return s and string.format("%.0f s", s) or "-" end

local report = {
  benchmark = "bench-10m", n = N, d = D, queries = spec.nq, nlist = nlist, sample_size = sample,
  nprobe = nprobes, faiss = env("BENCH_FAISS", "debian"), machine = B.machine(),
  omp_threads = vekterdb.get_num_threads(), openblas_threads = "1 (set by the module)",
  date = os.date("!%Y-%m-%dT%H:%M:%SZ"), dataset = spec,
  data_bytes = { train = file_size(data .. "/train.fvecs"), test = file_size(data .. "/test.fvecs"),
                 gt = file_size(data .. "/gt.ivecs") },
  memory_budget = 4 * 2^30, phases = {}, note = env("BENCH_SCALE_NOTE"),
}
-- the generator's figures, from its spec.txt (those of the run that made the
-- cached dataset)
local gen = spec.ground_truth_seconds and {
  seconds = (spec.generate_seconds or 0) + spec.ground_truth_seconds, generate_seconds = spec.generate_seconds,
  ground_truth_seconds = spec.ground_truth_seconds, ground_truth_k = spec.k,
  memory = { peak_rss = spec.peak_rss_bytes },
}
local order = { "data", "insert", "index-pq", "index-disk", "search-pq", "search-disk" }
for _, p in ipairs(order) do
  local t = p == "data" and gen or read_json(work .. "/" .. p .. ".json")
  if t then report.phases[p] = t end
end
local within = true
for _, t in pairs(report.phases) do
  if t.memory and t.memory.peak_rss and t.memory.peak_rss >= report.memory_budget then within = false end
end
report.all_phases_within_budget = within

local stamp = os.date("!%Y%m%dT%H%M%SZ")
local label = N % 1000000 == 0 and (N // 1000000) .. "m" or tostring(N)
os.execute("mkdir -p '" .. results_dir .. "'")
local path = string.format("%s/scale-%s-%s-%s.json", results_dir, label, stamp, report.faiss)
write_json(path, report)
write_json(string.format("%s/latest-%s-%s.json", results_dir, label, report.faiss), report)

print(string.format("\n%d x %d vectors, FAISS %s, %d cores, nlist %d, training sample %d",
  N, D, report.faiss, report.machine.cores, nlist, sample))
print(string.format("%-34s %9s %12s %12s  %s", "phase", "wall", "peak RSS", "on disk", "load average"))
local function row(name, t, bytes)
  if not t then return end
  if t.skipped then
    print(string.format("%-34s skipped: %s", name, t.skipped))
    return
  end
  print(string.format("%-34s %9s %12s %12s  %s", name, sec(t.seconds), mb(t.memory and t.memory.peak_rss),
    gb(bytes), (t.loadavg_end or ""):match("^%S+ %S+ %S+") or ""))
end
local ph = report.phases
if gen then
  print(string.format("%-34s %9s %12s %12s  (generate %s, exact top-%d %s)", "data + ground truth",
    sec(gen.seconds), mb(gen.memory and gen.memory.peak_rss), gb(report.data_bytes.train),
    sec(gen.generate_seconds), spec.k, sec(gen.ground_truth_seconds)))
end
row("insert (SQLite)", ph.insert, ph.insert and ph.insert.table_bytes)
row("create_index " .. (ph["index-pq"] and ph["index-pq"].factory or "pq"), ph["index-pq"],
  ph["index-pq"] and ph["index-pq"].index_bytes)
row("create_index " .. (ph["index-disk"] and ph["index-disk"].factory or "disk") .. " on disk",
  ph["index-disk"], ph["index-disk"] and ph["index-disk"].index_bytes)
row("search (PQ index)", ph["search-pq"])
row("search (on-disk index)", ph["search-disk"])
for _, p in ipairs({ "search-pq", "search-disk" }) do
  local t = ph[p]
  if t and t.runs then
    print(string.format("\n%s (%s), %d queries, k = 10, open %.1f s", p, t.factory, t.queries, t.open_seconds))
    print(string.format("  %-7s %-8s %10s %14s %14s %12s", "nprobe", "k_extra", "recall@10", "batched ms/q",
      "single median", "single p99"))
    for _, r in ipairs(t.runs) do
      print(string.format("  %-7d %-8d %10.4f %14.3f %14.2f %12.2f", r.nprobe, r.k_extra_neighbors,
        r.recall_at_10, r.batched_ms_per_query, r.single_ms_median, r.single_ms_p99))
    end
    for _, w in ipairs({ { "open", t.memory_after_open }, { "10 queries", t.memory_after_10_queries },
                         { "every search", t.memory_after_search } }) do
      local m = w[2]
      print(string.format("  resident after %-13s %8s (%s anonymous, %s of mapped files)", w[1] .. ":", mb(m.rss),
        mb(m.rss_anon), mb(m.rss_file)))
    end
    print(string.format("  index files %s, peak RSS %s", gb(t.index_bytes), mb(t.memory.peak_rss)))
  end
end
print(string.format("\nevery phase's peak RSS under 4 GiB: %s", within and "yes" or "NO"))
print("results: " .. path)
