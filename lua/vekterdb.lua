--- VekterDB: an SQL table of records paired with a FAISS index.
-- The heavy work (SQL, vector encoding, FAISS, exact reranking) happens in
-- the C module `vekterdb.core`; this file handles arguments and options.
-- @module vekterdb

local core = require "vekterdb.core"
-- wall-clock seconds for the log lines' times and rates (os.clock() counts
-- this process's CPU time, which leaves out waiting on the database)
local clock = core.monotime
local where = require "vekterdb.where"

local M = {
  _VERSION = core.version,
  vector = core.vector,
  matrix = core.matrix,
  and_ = where.and_,
  or_ = where.or_,
  not_ = where.not_,
  set_num_threads = core.set_num_threads,
  get_num_threads = core.get_num_threads,
}

-- When a FAISS IVF/PQ search asks for more candidates than a partition holds,
-- FAISS pads with -1: those never reach the caller.

---------------------------------------------------------------------------
-- logging
---------------------------------------------------------------------------

local LEVELS = { debug = 1, info = 2, warn = 3, error = 4, off = 5 }

--- Where log lines go: `vekterdb.log.sink(level, message)`; lines below
-- `vekterdb.log.level` are dropped.
M.log = {
  level = "warn",
  sink = function(level, msg)
    io.stderr:write("vekterdb ", level, ": ", msg, "\n")
  end,
}

local function log(level, fmt, ...)
  local want = LEVELS[M.log.level] or LEVELS.warn
  if LEVELS[level] >= want then
    M.log.sink(level, select("#", ...) > 0 and string.format(fmt, ...) or fmt)
  end
end
M._log = log

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local function check_opts(opts, allowed, fn)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(fn .. ": options must be a table, got " .. type(opts), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error(fn .. ": unknown option '" .. tostring(k) .. "'", 3)
    end
  end
  return opts
end

local function set_of(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- the engine reads metric names (vk_metric_parse)
local function normalize_metric(m)
  local ok, name = pcall(core.metric_name, type(m) == "string" and m or m ~= nil and tostring(m) or nil)
  if not ok then error(name, 3) end
  return name
end

-- "a=1,b=2" -> ordered list of { name, value }
local function parse_params(s)
  if type(s) ~= "string" then
    error("FAISS runtime parameters must be a string such as \"nprobe=16\", got " .. type(s), 3)
  end
  local list = {}
  for tok in s:gmatch("[^,%s]+") do
    local name, value = tok:match("^([^=]+)=(.+)$")
    if not name or not tonumber(value) then
      error("could not interpret FAISS parameter '" .. tok .. "': expected name=number", 3)
    end
    list[#list + 1] = { name, tonumber(value) }
  end
  return list
end

local function format_params(list)
  local out = {}
  for i, p in ipairs(list) do
    out[i] = string.format("%s=%s", p[1], (math.type and math.type(p[2]) == "integer" or p[2] % 1 == 0)
      and string.format("%d", p[2]) or tostring(p[2]))
  end
  return table.concat(out, ",")
end

-- Splits search-like varargs: column names, then an optional options table.
-- Column names come one by one or as one array ({ "idx", "cat" }); an
-- options table (string keys only) may end the list.
local function split_args(fn, ...)
  local n = select("#", ...)
  local args = { ... }
  local opts
  if n > 0 and type(args[n]) == "table" and args[n][1] == nil then
    opts = args[n]
    n = n - 1
  elseif n > 0 and args[n] == nil then
    n = n - 1
  end
  local cols = {}
  local function add(name, pos)
    if type(name) ~= "string" then
      error(fn .. ": column names must be strings, got " .. type(name) .. " at " .. pos, 4)
    end
    cols[#cols + 1] = name
  end
  for i = 1, n do
    if type(args[i]) == "table" then
      for j, name in ipairs(args[i]) do add(name, "position " .. i .. "[" .. j .. "]") end
    else
      add(args[i], "position " .. i)
    end
  end
  return cols, opts
end

---------------------------------------------------------------------------
-- codec and FAISS
---------------------------------------------------------------------------

--- Compresses a vector the way VekterDB stores it: one zstd frame of float32.
function M.serialize_vector(v, level)
  return core.serialize_vector(v, level or 1)
end

--- Inverse of serialize_vector: a vekterdb.vector.
function M.deserialize_vector(bytes, d)
  return core.deserialize_vector(bytes, d)
end

M.faiss = {
  --- A new, empty FAISS index from a factory string.
  index_factory = function(d, description, metric)
    return core.index_factory(d, description, normalize_metric(metric))
  end,
  --- Reads any FAISS index file, believing what it states as FAISS does:
  -- only for files you trust (a table's own index files are opened with
  -- vekterdb.new's faiss_index, which checks them first). mmap = true maps
  -- it read-only where FAISS can.
  read_index = function(path, mmap)
    return core.read_index(path, mmap)
  end,
}

---------------------------------------------------------------------------
-- the DB object
---------------------------------------------------------------------------

local DB = {}
local DB_mt = { __name = "vekterdb.DB" }

DB_mt.__index = function(self, k)
  local m = DB[k]
  if m ~= nil then return m end
  -- what the engine owns is read from it, never copied here
  local h = rawget(self, "_h")
  if not h then return nil end
  if k == "index" then return h:index() end
  if k == "faiss_index" then return h:index_file() end
  if k == "metric" then
    local ix = h:index()
    return ix and ix.metric or "inner_product"
  end
  if k == "faiss_runtime_parameters" then
    local p = h:params()
    return p ~= "" and p or nil
  end
  if k == "d" then
    local ix = h:index()
    if ix then return ix.d end
    local d = h:dim()
    return d > 0 and d or nil
  end
  return nil
end

DB_mt.__tostring = function(self)
  return string.format("vekterdb.DB(%s)", self.table_name)
end

DB_mt.__close = function(self) self:close() end
DB_mt.__gc = nil

local NEW_OPTS = set_of({ "idx_name", "vector_name", "columns", "url", "faiss_index", "schema",
                          "connect_args", "mmap", "columns_dict", "trust_index_file" })

local function columns_from_opts(opts)
  local cols = {}
  if opts.columns then
    for i, c in ipairs(opts.columns) do
      if type(c) ~= "table" or type(c.name) ~= "string" then
        error("vekterdb.new: columns[" .. i .. "] must be a table with a name", 3)
      end
      cols[#cols + 1] = c
    end
  end
  if opts.columns_dict then  -- the Python form: { name = { type = ..., ... } }, sorted by name
    local names = {}
    for name in pairs(opts.columns_dict) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local c = {}
      for k, v in pairs(opts.columns_dict[name]) do c[k] = v end
      c.name = name
      cols[#cols + 1] = c
    end
  end
  return cols
end

local function connect_list(args)
  local list = {}
  if args == nil then return list end
  if type(args) ~= "table" then error("connect_args must be a table", 3) end
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do list[#list + 1] = k .. "=" .. tostring(args[k]) end
  return list
end

--- Opens (or creates) a table of records.
-- @param table_name name of the table
-- @param opts idx_name, vector_name, columns, url, schema, connect_args, faiss_index, mmap,
-- trust_index_file (read faiss_index even if the table has no record of
-- saving it, and record it: see docs/reliability.md)
function M.new(table_name, opts)
  if type(table_name) ~= "string" then
    error("vekterdb.new: table name must be a string, got " .. type(table_name), 2)
  end
  opts = check_opts(opts, NEW_OPTS, "vekterdb.new")
  local url = opts.url or "sqlite://"
  if type(url) ~= "string" then error("vekterdb.new: url must be a string", 2) end
  for _, flag in ipairs({ "mmap", "trust_index_file" }) do
    if opts[flag] ~= nil and type(opts[flag]) ~= "boolean" then
      error("vekterdb.new: " .. flag .. " must be true or false, got " .. type(opts[flag]), 2)
    end
  end
  local h = core.open(url, connect_list(opts.connect_args))
  local ok, err = pcall(h.use_table, h, opts.schema, table_name, opts.idx_name or "idx",
                        opts.vector_name or "vector", columns_from_opts(opts))
  if not ok then
    h:close()
    error(err, 2)
  end
  local self = setmetatable({
    _h = h,
    table_name = table_name,
    schema = opts.schema,
    idx_name = opts.idx_name or "idx",
    vector_name = opts.vector_name or "vector",
    _mmap = opts.mmap,
    _trust = opts.trust_index_file,
  }, DB_mt)
  self.columns = h:columns()
  self.Record = where.record(self.columns, table_name)
  self._known = {}
  for _, c in ipairs(self.columns) do self._known[c.name] = true end
  if opts.faiss_index then
    ok, err = pcall(self._open_index, self, opts.faiss_index)
    if not ok then
      h:close()
      error(err, 2)
    end
  end
  return self
end

-- opens an index file the table saved (or trusts) and pairs it with the table
function DB:_open_index(path)
  local h = self._h
  local d = h:dim()
  local ix = h:open_index(path, self._mmap, self._trust)
  if d > 0 and ix.d ~= d then
    h:attach(nil)
    error(string.format("index file %s has dimension %d but table %s holds %d-d vectors",
      path, ix.d, self.table_name, d), 0)
  end
  -- deleted records count as held: their idx values are never reused
  local ok, lag, excess = pcall(h.index_lag, h)
  if not ok or excess > 0 then
    h:attach(nil)
    if not ok then error(lag, 0) end
    error(string.format("index file %s holds %d vectors but table %s only %d records: "
      .. "the index belongs to another table", path, ix.ntotal, self.table_name, h:next_idx()), 0)
  end
  if lag > 0 then
    -- every search and insert adds them from the table first
    log("warn", "index file %s lacks %d records of table %s: this handle adds them from the table "
      .. "before it searches or inserts; sync_index_to_db() saves them", path, lag, self.table_name)
  end
end

local function check_open(self)
  if not rawget(self, "_h") then error("attempt to use a closed database", 3) end
end

--- Closes the connection; the object cannot be used afterwards.
function DB:close()
  local h = rawget(self, "_h")
  if h then
    h:close()
    self._h = nil
  end
end

-- the `progress` option: nil/false for none, a function(done, total, phase)
-- (total is nil when unknown), or true for vekterdb.progress's bar or lines
local function progress_fn(p)
  if p == nil or p == false then return nil end
  if type(p) == "function" then return p end
  if p == true then return require("vekterdb.progress").new() end
  error("progress must be true, false or a function(done, total, phase)", 3)
end

local INSERT_OPTS = set_of({ "batch_size", "serialize_vectors", "compression_level",
                             "faiss_runtime_params", "progress" })

-- After a write, the engine saves the index file when it changed. The rows
-- are committed by then: a failed save is a warning, never an error that
-- would make a caller insert them again; the next save, or any handle's
-- catch-up from the table, repairs it.
local function warn_unsaved(self)
  local w = self._h:warning()
  if w then
    log("warn", "the records are committed, but index file %s could not be saved (%s): "
      .. "the next insert, sync_index_to_db or rebuild_index saves it, and every handle adds "
      .. "what it lacks from the table", tostring(self._h:index_file()), w)
  end
end

-- the faiss_runtime_params option: a string the engine checks, sets while
-- it adds vectors and then puts back
local function call_params(opts, fn)
  local p = opts.faiss_runtime_params
  if p ~= nil and type(p) ~= "string" then
    error(fn .. ": faiss_runtime_params must be a string such as \"nprobe=16\", got " .. type(p), 3)
  end
  return p
end

-- runs an insert of the C module (fn(self._h, ...), the runtime parameters
-- last); the engine saves the index file whatever happened, so an error
-- is reported (prefixed with prefix) with the committed batches in place
local function run_insert(self, prefix, fn, ...)
  local t = clock()
  local ok, n = pcall(fn, self._h, ...)
  warn_unsaved(self)
  if not ok then error(prefix .. tostring(n), 3) end
  local dt = clock() - t
  log("info", "inserted %d records in %.2fs (%.0f records/s)", n, dt, dt > 0 and n / dt or 0)
  return n
end

--- Inserts records (an array, or an iterator function returning one record
-- per call). Each batch is one transaction; with an index attached the
-- vectors go into it too and the index file is saved at the end.
-- @return number of records inserted
function DB:insert(records, opts)
  check_open(self)
  opts = check_opts(opts, INSERT_OPTS, "insert")
  local batch_size = opts.batch_size or 10000
  local serialize = opts.serialize_vectors ~= false
  local level = opts.compression_level or 1
  -- (not a tail call: run_insert's errors point at insert's caller)
  local n = run_insert(self, "", self._h.insert, records, batch_size, level, serialize,
                       progress_fn(opts.progress), call_params(opts, "insert"))
  return n
end

local MATRIX_OPTS = set_of({ "idx", "columns", "batch_size", "compression_level", "faiss_runtime_params",
                             "progress" })

--- Inserts one record per row of a matrix: the bulk path, with no Lua table
-- per record. Each batch is one transaction, as in insert().
-- @param vectors a vekterdb.matrix (or vector) of the table's dimension
-- @param opts idx: idx of the first row, the next rows following (default:
-- the table's next idx values); columns: { name = array of one value per
-- row } (a missing value is NULL); batch_size, compression_level,
-- faiss_runtime_params and progress as in insert()
-- @return number of records inserted
function DB:insert_matrix(vectors, opts)
  check_open(self)
  opts = check_opts(opts, MATRIX_OPTS, "insert_matrix")
  if type(vectors) ~= "userdata" then
    error("insert_matrix: expected a vekterdb.matrix, got " .. type(vectors), 2)
  end
  local names, arrays = {}, {}
  if opts.columns ~= nil then
    if type(opts.columns) ~= "table" then
      error("insert_matrix: columns must be a table { name = array of values }", 2)
    end
    for name in pairs(opts.columns) do
      if type(name) ~= "string" then error("insert_matrix: column names must be strings", 2) end
      names[#names + 1] = name
    end
    table.sort(names)
    for i, name in ipairs(names) do arrays[i] = opts.columns[name] end
  end
  local n = run_insert(self, "insert_matrix: ", self._h.insert_matrix, vectors, opts.idx, names,
                       arrays, opts.batch_size or 10000, opts.compression_level or 1, progress_fn(opts.progress),
                       call_params(opts, "insert_matrix"))
  return n
end

--- Builds a new index from a factory string, trains it, adds every record
-- and saves it to `faiss_index`.
local CREATE_OPTS = set_of({ "metric", "sample_size", "batch_size", "faiss_runtime_params",
                             "progress" })

function DB:create_index(faiss_index, faiss_factory_str, opts)
  check_open(self)
  if type(faiss_index) ~= "string" or faiss_index == "" then
    error("create_index: the index file name must be a non-empty string", 2)
  end
  if type(faiss_factory_str) ~= "string" then
    error("create_index: the FAISS factory string must be a string", 2)
  end
  opts = check_opts(opts, CREATE_OPTS, "create_index")
  if self.index then
    error("create_index: an index is already attached (" .. tostring(self.faiss_index)
      .. "); open the table without it to build another", 2)
  end
  if file_exists(faiss_index) then
    error("create_index: file " .. faiss_index .. " already exists; refusing to overwrite it", 2)
  end
  local d = self.d
  if not d then error("create_index: table " .. self.table_name .. " holds no records yet", 2) end
  local metric = normalize_metric(opts.metric)
  local ix = core.index_factory(d, faiss_factory_str, metric)
  self:attach(ix, faiss_index)
  local ok, err = pcall(function()
    if not ix.is_trained then self:train_index(opts.sample_size or 0, opts) end
    self:sync_index_to_db({ batch_size = opts.batch_size,
                            faiss_runtime_params = opts.faiss_runtime_params,
                            progress = opts.progress })
    -- an index that keeps explicit ids never took the deleted records
    if self._h:deleted() > 0 then self._h:rebuild(faiss_index) end
  end)
  if not ok then
    self._h:attach(nil)
    os.remove(faiss_index)
    error(err, 2)
  end
  return ix
end

--- Pairs an index object with the table; `faiss_index` is the file it is
-- saved to.
function DB:attach(index, faiss_index)
  check_open(self)
  if type(index) ~= "userdata" or index.ntotal == nil then
    error("attach: expected an index from vekterdb.faiss.index_factory or read_index", 2)
  end
  if faiss_index ~= nil and type(faiss_index) ~= "string" then
    error("attach: the index file name must be a string", 2)
  end
  local d = self._h:dim()
  if d > 0 and index.d ~= d then
    error(string.format("attach: index dimension %d does not match the table's %d", index.d, d), 2)
  end
  self._h:attach(index, faiss_index)
end


--- Trains the attached index on `sample_size` random records (0: all).
function DB:train_index(sample_size, opts)
  check_open(self)
  opts = opts or {}
  if not self.index then error("train_index: no index attached", 2) end
  sample_size = sample_size or 0
  if math.type and math.type(sample_size) ~= "integer" and sample_size % 1 ~= 0 then
    error("train_index: sample_size must be an integer", 2)
  end
  local t = clock()
  self._h:train(sample_size, progress_fn(opts.progress))
  log("info", "trained the index in %.2fs", clock() - t)
end

local SYNC_OPTS = set_of({ "batch_size", "faiss_runtime_params", "progress" })

--- Adds to the index every record it does not hold yet, then saves it.
-- @return number of vectors added
function DB:sync_index_to_db(opts)
  check_open(self)
  opts = check_opts(opts, SYNC_OPTS, "sync_index_to_db")
  if not self.index then error("sync_index_to_db: no index attached", 2) end
  local t = clock()
  local added = self._h:sync(opts.batch_size or 10000, self.faiss_index, progress_fn(opts.progress),
                             call_params(opts, "sync_index_to_db"))
  local dt = clock() - t
  log("info", "added %d vectors to the index in %.2fs (%.0f vectors/s)", added, dt,
      dt > 0 and added / dt or 0)
  return added
end

--- Sets FAISS search parameters that stay until changed ("nprobe=16,...").
-- They are saved by save().
function DB:set_faiss_runtime_parameters(params)
  check_open(self)
  if not self.index then error("set_faiss_runtime_parameters: no index attached", 2) end
  self._h:set_params(format_params(parse_params(params)))
end

local SEARCH_OPTS = set_of({ "k_extra_neighbors", "rerank", "threshold", "search_parameters",
                             "batch_size", "filter", "filter_plan" })

-- requested columns (all when none) after checking them
function DB:_columns(cols, fn)
  if #cols == 0 then
    local all = {}
    for i, c in ipairs(self.columns) do all[i] = c.name end
    return all
  end
  for _, c in ipairs(cols) do
    if not self._known[c] then
      error(fn .. ": table " .. self.table_name .. " has no column '" .. c .. "'", 3)
    end
  end
  return cols
end

local function check_k(k, fn)
  if type(k) ~= "number" then
    error(string.format("%s: k must be a positive integer, got %s (a %s)", fn,
      type(k) == "string" and string.format("%q", k) or tostring(k), type(k)), 3)
  end
  if k % 1 ~= 0 or k < 1 then
    error(fn .. ": k must be a positive integer, got " .. tostring(k), 3)
  end
end

-- the options handed to the C module: opts.filter compiled to SQL
local function core_opts(self, opts, fn, explain)
  if opts.filter == nil and not explain then return opts end
  local out = {}
  for key, v in pairs(opts) do out[key] = v end
  out.filter = nil
  if opts.filter ~= nil then
    if not where.is_expr(opts.filter) then
      error(fn .. ": filter must be a where-clause (db.Record.<column>:<op>(...)), got "
        .. type(opts.filter), 3)
    end
    local info = self._h:info()
    local ok, sql, params = pcall(where.compile, opts.filter, info.placeholder, self._known, info.quote)
    if not ok then error(fn .. ": filter: " .. tostring(sql), 3) end
    out.filter_sql, out.filter_params = sql, params
  end
  out.explain = explain or nil
  return out
end

--- Nearest records to query vectors.
-- search(query, k, [col, ...], [opts]) -> { { neighbors = { {col=..., metric=...}, ... } }, ... }
-- opts.filter (a where-clause): only records it matches can be neighbors;
-- whenever at least k records match, k neighbors come back. opts.filter_plan
-- ("exact", "selector", "widen", "check") overrides the planner's choice.
function DB:search(query, k, ...)
  check_open(self)
  check_k(k, "search")
  local cols, opts = split_args("search", ...)
  opts = check_opts(opts, SEARCH_OPTS, "search")
  if not self.index then error("search: no FAISS index: create_index or attach one first", 2) end
  return self._h:search(query, k, core_opts(self, opts, "search"), self:_columns(cols, "search"))
end

--- How search(query, k, ..., opts) runs: the plan it takes and its figures,
-- then the results. plan: "index" (FAISS alone), "exact" (the few matching
-- records scanned exactly), "selector" (FAISS visits allowed ids only),
-- "widen" (FAISS asked for more, its results filtered), "check" (a broad
-- filter: the database checks FAISS's candidates, more asked until k match).
function DB:explain_search(query, k, ...)
  check_open(self)
  check_k(k, "explain_search")
  local cols, opts = split_args("explain_search", ...)
  opts = check_opts(opts, SEARCH_OPTS, "explain_search")
  if not self.index then error("explain_search: no FAISS index: create_index or attach one first", 2) end
  local res, plan = self._h:search(query, k, core_opts(self, opts, "explain_search", true),
                                   self:_columns(cols, "explain_search"))
  return plan, res
end

local IN_CHUNK = 30000

-- where argument -> sql, params (nil for everything)
function DB:_where(expr, fn)
  if expr == nil then return nil, {} end
  if not where.is_expr(expr) then
    error(fn .. ": expected a where-clause (db.Record.<column>:<op>(...)), got " .. type(expr), 3)
  end
  local info = self._h:info()
  local ok, sql, params = pcall(where.compile, expr, info.placeholder, self._known, info.quote)
  if not ok then error(fn .. ": " .. tostring(sql), 3) end
  return sql, params
end

-- a long in_ list is run as several queries: databases cap bound values
local function split_in(self, expr)
  if where.is_expr(expr) and expr.op == "in" and type(expr.values) == "table" and #expr.values > IN_CHUNK then
    local parts = {}
    for s = 1, #expr.values, IN_CHUNK do
      local chunk = {}
      for i = s, math.min(s + IN_CHUNK - 1, #expr.values) do chunk[#chunk + 1] = expr.values[i] end
      parts[#parts + 1] = self.Record[expr.col]:in_(chunk)
    end
    return parts
  end
  return { expr }
end

--- Nearest neighbors of records already in the table, chosen by a
-- where-clause or by a column name and a list of values. The record itself
-- is left out of its own neighbors.
-- nearest_neighbors(where, k, [col...], [opts]) or
-- nearest_neighbors(column, values, k, [col...], [opts])
function DB:nearest_neighbors(first, ...)
  check_open(self)
  local expr, k
  local rest
  if type(first) == "string" then
    local values
    values, k = ...
    if type(values) ~= "table" then
      error("nearest_neighbors: expected an array of values after the column name", 2)
    end
    if not self._known[first] then
      error("nearest_neighbors: table " .. self.table_name .. " has no column '" .. first .. "'", 2)
    end
    expr = self.Record[first]:in_(values)
    rest = pack(select(3, ...))
  else
    expr = first
    k = ...
    rest = pack(select(2, ...))
  end
  check_k(k, "nearest_neighbors")
  local cols, opts = split_args("nearest_neighbors", unpack(rest, 1, rest.n))
  opts = check_opts(opts, SEARCH_OPTS, "nearest_neighbors")
  if not self.index then
    error("nearest_neighbors: no FAISS index: create_index or attach one first", 2)
  end
  cols = self:_columns(cols, "nearest_neighbors")
  local out = {}
  local copts = core_opts(self, opts, "nearest_neighbors")
  for _, part in ipairs(split_in(self, expr)) do
    local sql, params = self:_where(part, "nearest_neighbors")
    local res = self._h:nearest(sql, params, k, copts, cols)
    for i = 1, #res do out[#out + 1] = res[i] end
  end
  return out
end

--- Deletes the records a where-clause matches, in one transaction.
-- They are gone from select, search and nearest_neighbors at once, in every
-- process; their idx values are remembered (never given out again) in the
-- table "<table>__vekterdb_deleted".
-- @return number of records deleted
function DB:delete(expr)
  check_open(self)
  if expr == nil then
    error("delete: expected a where-clause; to delete every record pass db.Record."
      .. self.idx_name .. ":is_not_null()", 2)
  end
  local sql, params = self:_where(expr, "delete")
  return self._h:delete(sql, params)
end

--- Changes the records a where-clause matches, in one transaction.
-- values: { column = value, ... }; a new vector (under the vector column's
-- name) deletes each record and inserts it again under a new idx.
-- @return number of records updated, and with a new vector a table
-- { [old idx] = new idx }
function DB:update(expr, values)
  check_open(self)
  if expr == nil then
    error("update: expected a where-clause; to update every record pass db.Record."
      .. self.idx_name .. ":is_not_null()", 2)
  end
  if type(values) ~= "table" or next(values) == nil then
    error("update: expected a table of { column = new value }", 2)
  end
  for name in pairs(values) do
    if type(name) ~= "string" or not self._known[name] then
      error("update: table " .. self.table_name .. " has no column '" .. tostring(name) .. "'", 2)
    end
    if name == self.idx_name then error("update: the idx column cannot be updated", 2) end
  end
  local sql, params = self:_where(expr, "update")
  local ok, n, moved = pcall(self._h.update, self._h, sql, params, values)
  warn_unsaved(self)
  if not ok then error(n, 2) end
  return n, moved
end

--- Number of deleted records the table remembers (tombstones).
function DB:deleted_count()
  check_open(self)
  return self._h:deleted()
end

--- Removes deleted records' vectors from the attached index where its type
-- keeps explicit ids (the IVF family; indexes numbered by position, such as
-- Flat and HNSW, cannot drop a vector without renumbering the others) and
-- saves it; this handle's searches stop consulting the tombstones its index
-- no longer needs (other handles' indexes keep theirs: docs/concurrency.md).
-- @return number of tombstones reclaimed, number of vectors removed
function DB:rebuild_index()
  check_open(self)
  if not self.index then error("rebuild_index: no index attached", 2) end
  local reclaimed, removed = self._h:rebuild(self.faiss_index)
  log("info", "rebuild_index: %d vectors removed, %d tombstones reclaimed", removed, reclaimed)
  return reclaimed, removed
end

--- Iterates over records: `for rec in db:select(where, col, ...) do`.
-- With no column names every column is returned. `where` may be nil.
function DB:select(expr, ...)
  check_open(self)
  local cols, opts = split_args("select", ...)
  opts = check_opts(opts, set_of({ "order_by", "limit" }), "select")
  cols = self:_columns(cols, "select")
  local tail
  if opts.order_by then
    if not self._known[opts.order_by] then
      error("select: table " .. self.table_name .. " has no column '" .. tostring(opts.order_by) .. "'", 2)
    end
    tail = "ORDER BY " .. where.quote_ident(opts.order_by, self._h:info().quote)
  end
  if opts.limit then
    if type(opts.limit) ~= "number" or opts.limit % 1 ~= 0 or opts.limit < 0 then
      error("select: limit must be a non-negative integer", 2)
    end
    tail = (tail and tail .. " " or "") .. string.format("LIMIT %d", opts.limit)
  end
  local sql, params = self:_where(expr, "select")
  local cur = self._h:select(cols, sql, params, tail)
  return function() return cur:next() end, cur
end

--- The exact metric between two vectors (inner product or L2 distance, as
-- the index uses); nil when it misses the threshold.
function DB:similarity(v1, v2, threshold)
  local m = core.metric(v1, v2, self.metric)
  if threshold ~= nil then
    if self.metric == "l2" then
      if m > threshold then return nil end
    elseif m < threshold then
      return nil
    end
  end
  return m
end

--- A matrix of `sample_size` random stored vectors (0: all of them).
function DB:sample_vectors(sample_size, seed)
  check_open(self)
  return self._h:sample(sample_size or 0, seed)
end

--- Number of records in the table.
function DB:count()
  check_open(self)
  return self._h:count()
end

--- Runs an SQL statement on the table's connection with bound values
-- (placeholders ?1 ?2 ... on SQLite, $1 $2 ... on PostgreSQL) and returns
-- its rows as arrays. Writing to the table this way bypasses the index:
-- call sync_index_to_db() afterwards.
function DB:execute(sql, params)
  check_open(self)
  if type(sql) ~= "string" then error("execute: sql must be a string", 2) end
  if params ~= nil and type(params) ~= "table" then error("execute: params must be an array", 2) end
  return self._h:execute(sql, params or {})
end

--- The placeholder for the n-th bound value on this database ("?1" or "$1").
function DB:placeholder(n)
  check_open(self)
  return self._h:info().placeholder .. tostring(n)
end

--- Records by idx, in the order asked: a sequence whose entry for an idx
-- the table does not hold (never inserted, or deleted) is false.
function DB:fetch(ids, ...)
  check_open(self)
  local cols = split_args("fetch", ...)
  return self._h:fetch(ids, self:_columns(cols, "fetch"))
end

---------------------------------------------------------------------------
-- save / load
---------------------------------------------------------------------------

--- Writes the settings needed to reopen this VekterDB to a JSON file
-- (default "<table_name>.json"). The URL is never written: it may hold a password.
function DB:save(config_file)
  check_open(self)
  local cjson = require "cjson"
  config_file = config_file or (self.table_name .. ".json")
  local cfg = {
    table_name = self.table_name,
    idx_name = self.idx_name,
    vector_name = self.vector_name,
    faiss_index = self.faiss_index or cjson.null,
    faiss_runtime_parameters = self.faiss_runtime_parameters or cjson.null,
    metric = self.metric,
    schema = self.schema,
  }
  local tmp = config_file .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then error("save: " .. tostring(err), 2) end
  f:write(cjson.encode(cfg), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, config_file)
  if not ok then error("save: " .. tostring(rerr), 2) end
  return config_file
end

--- Reopens a VekterDB from a file written by save(), against the database
-- at `url`. opts: connect_args, mmap, trust_index_file (as for vekterdb.new).
function M.load(config_file, url, opts)
  local cjson = require "cjson"
  local f, err = io.open(config_file, "rb")
  if not f then error("vekterdb.load: " .. tostring(err), 2) end
  local text = f:read("a") or f:read("*a")
  f:close()
  local ok, cfg = pcall(cjson.decode, text)
  if not ok or type(cfg) ~= "table" then
    error("vekterdb.load: " .. config_file .. " is not a VekterDB configuration (invalid JSON)", 2)
  end
  if type(cfg.table_name) ~= "string" then
    error("vekterdb.load: " .. config_file .. " has no table_name", 2)
  end
  local function str(v) return type(v) == "string" and v or nil end
  opts = opts or {}
  local db = M.new(cfg.table_name, {
    url = url,
    idx_name = str(cfg.idx_name),
    vector_name = str(cfg.vector_name),
    faiss_index = str(cfg.faiss_index),
    schema = str(cfg.schema),
    connect_args = opts.connect_args,
    mmap = opts.mmap,
    trust_index_file = opts.trust_index_file,
  })
  local metric = db.metric
  if str(cfg.metric) and db.index and normalize_metric(cfg.metric) ~= metric then
    db:close()
    error(string.format("vekterdb.load: %s says metric %s but index file %s uses %s", config_file,
      cfg.metric, cfg.faiss_index, metric), 2)
  end
  if str(cfg.faiss_runtime_parameters) and db.index then
    -- bad parameters in the file: close the connection before reporting them
    local ok2, perr = pcall(db.set_faiss_runtime_parameters, db, cfg.faiss_runtime_parameters)
    if not ok2 then
      db:close()
      error(string.format("vekterdb.load: %s: faiss_runtime_parameters: %s", config_file, tostring(perr)), 2)
    end
  end
  return db
end

return M
