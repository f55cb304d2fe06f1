--- VekterDB: an SQL table of records paired with a FAISS index.
-- The heavy work (SQL, vector encoding, FAISS, exact reranking) happens in
-- the C module `vekterdb.core`; this file handles arguments and options.
--
--     local vekterdb = require "vekterdb"
--     local db = vekterdb.new("items", { url = "sqlite:///items.db" })
--     db:insert({ { idx = 0, vector = { 0.1, 0.2 } }, { idx = 1, vector = { 0.3, 0.1 } } })
--     db:create_index("items.index", "Flat")
--     local res = db:search({ 0.1, 0.2 }, 1, "idx")   -- res[1].neighbors[1].idx == 0
--
-- `vekterdb.new` and `vekterdb.load` give a `DB` (below). Where-clauses
-- (`db.Record.<column>:<op>(...)`) are in `vekterdb.where`; vector files in
-- `vekterdb.io`; record iterators for `insert` in `vekterdb.source`; progress
-- bars in `vekterdb.progress`. Every error is raised (with `error`), never
-- returned: @{errors.md|Errors} says what an error value holds and lists
-- its codes.
--
-- The module's version is `vekterdb._VERSION`.
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

-- -------------------------------------------------------------------------
-- errors
-- -------------------------------------------------------------------------

local Error = core.Error

--- The metatable of every error value VekterDB raises.
-- An error is a table `{ code = ..., message = ..., call = ... }`:
-- `message` is the text (`tostring(err)` gives it, and string methods such
-- as `err:find(...)` and `..` work on it as on the text), `call` the public
-- function that failed (`"search"`, `"vekterdb.load"`, ...), and `code` one
-- of these stable names:
--
-- * `invalid`: a bad argument, option, record, configuration or query
-- * `not_found`: a table, configuration file, index file or vector file that does not exist
-- * `constraint`: a unique, not-null or primary key violation
-- * `locked`: another writer held the table past the busy/lock timeout
-- * `connection`: the database cannot be reached (refused, bad login, SQLite file that cannot
--   be opened) or the connection was lost
-- * `database`: any other refusal or failure of the database (SQL errors of `execute`)
-- * `state`: the call is not valid now (closed handle, no index attached, called from a callback)
-- * `faiss`: FAISS refused or failed (its message follows)
-- * `io`: reading or writing a file failed
-- * `corrupt`: stored vectors or a file that do not hold what they should
-- * `nomem`: out of memory
-- * `internal`: a failure VekterDB has no code for (a bug: please report it)
--
-- Errors carry no source position. Argument type errors that Lua's own
-- auxiliary library raises (`bad argument #1 to 'normalize' (number expected)`)
-- stay strings, and an error your own iterator or callback raises comes
-- back as you raised it.
M.Error = Error

--- Whether `e` is an error value raised by VekterDB.
-- @param e any value, such as the error `pcall` returned
-- @treturn bool true for a `vekterdb.Error` value
function M.is_error(e)
  return getmetatable(e) == Error
end

-- raises an error value: msg, code (default "invalid"); the public function
-- the caller called names it (see public below)
local function raise(msg, code)
  error(core.error(code or "invalid", msg), 0)
end

-- the code of an error value, or nil
local function code_of(e)
  return getmetatable(e) == Error and e.code or nil
end

-- the text of an error without the name of the call that raised it, to be
-- wrapped in another message
local function bare(e)
  if getmetatable(e) ~= Error then return tostring(e) end
  local call, msg = e.call, e.message
  if call and msg:sub(1, #call + 2) == call .. ": " then return msg:sub(#call + 3) end
  return msg
end

-- the errors a public call has named: an outer public call (one whose
-- callback made the call that failed) leaves them as they are
local named = setmetatable({}, { __mode = "k" })

-- names error value e after the public call that failed: its message
-- starts "call: " (replacing the name of a lower call, C's included)
local function name_error(e, call)
  if getmetatable(e) ~= Error or named[e] then return e end
  named[e] = true
  if e.call == call then return e end
  local msg = bare(e)
  if msg:sub(1, #call + 2) ~= call .. ": " then msg = call .. ": " .. msg end
  e.message, e.call = msg, call
  return e
end

local function finish(call, ok, ...)
  if ok then return ... end
  error(name_error((...), call), 0)
end

-- fn as a public function named call: its errors are named after it
local function public(call, fn)
  return function(...) return finish(call, pcall(fn, ...)) end
end

-- -------------------------------------------------------------------------
-- logging
-- -------------------------------------------------------------------------

local LEVELS = { debug = 1, info = 2, warn = 3, error = 4, off = 5 }

--- Where log lines go: `vekterdb.log.sink(level, message)`; lines below
-- `vekterdb.log.level` are dropped. The library logs warnings it does not
-- raise (an index file that lags behind its table, an index file that could
-- not be saved after its rows were committed) and, at "info", the time and
-- rate of inserts, training, `sync_index_to_db` and `rebuild_index`.
--
--     vekterdb.log.level = "info"
--     vekterdb.log.sink = function(level, msg) ngx.log(ngx.WARN, msg) end
-- @table log
-- @field level the lowest level written: "debug", "info", "warn" (the
-- default), "error" or "off"
-- @field sink `function(level, message)` that writes one line; the default
-- writes `vekterdb LEVEL: MESSAGE` to `io.stderr`
M.log = {
  level = "warn",
  sink = function(level, msg)
    io.stderr:write("vekterdb ", level, ": ", msg, "\n")
  end,
}

-- how a message tells the reader to run a fix (bin/vekterdb names its commands)
M._hints = { sync = "db:sync_index_to_db()" }

local function log(level, fmt, ...)
  local want = LEVELS[M.log.level] or LEVELS.warn
  if LEVELS[level] >= want then
    M.log.sink(level, select("#", ...) > 0 and string.format(fmt, ...) or fmt)
  end
end
M._log = log

-- -------------------------------------------------------------------------
-- helpers
-- -------------------------------------------------------------------------

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local function check_opts(opts, allowed, fn)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    raise(fn .. ": options must be a table, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then
      raise(fn .. ": unknown option '" .. tostring(k) .. "'")
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
  if not ok then raise(bare(name)) end
  return name
end

-- "a=1,b=2" -> ordered list of { name, value }
local function parse_params(s)
  if type(s) ~= "string" then
    raise("FAISS runtime parameters must be a string such as \"nprobe=16\", got " .. type(s))
  end
  local list = {}
  for tok in s:gmatch("[^,%s]+") do
    local name, value = tok:match("^([^=]+)=(.+)$")
    if not name or not tonumber(value) then
      raise("could not interpret FAISS parameter '" .. tok .. "': expected name=number")
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
      raise(fn .. ": column names must be strings, got " .. type(name) .. " at " .. pos)
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

-- -------------------------------------------------------------------------
-- codec and FAISS
-- -------------------------------------------------------------------------

--- Compresses a vector the way VekterDB stores it: one zstd frame of float32.
-- These are the bytes of the vector column, the same as the Python
-- VekterDB's; use them with `insert`'s `serialize_vectors = false`.
-- @param v a vector: a `vekterdb.vector`, an array of numbers or a packed
-- float32 string; a NaN or infinite value is refused
-- @int[opt=1] level zstd compression level
-- @treturn string the compressed bytes
function M.serialize_vector(v, level)
  return core.serialize_vector(v, level or 1)
end

--- Inverse of `serialize_vector`: a `vekterdb.vector`.
-- @string bytes one zstd frame of float32 values, as stored in the vector
-- column
-- @int[opt] d the dimension expected; a different one raises an error
-- @treturn Vector the vector; corrupted bytes raise an error
function M.deserialize_vector(bytes, d)
  return core.deserialize_vector(bytes, d)
end

--- Marks bytes to be bound as a BLOB (PostgreSQL: bytea), never as text:
-- for `db:execute` parameters and where-clause values. A string that is
-- not UTF-8 text (a serialized vector) is bound as a BLOB already; this
-- is for bytes that happen to be valid text. In a record, a blob in the
-- vector column is taken as serialized bytes.
-- @param bytes a string (or a blob, returned as it is)
-- @return a `vekterdb.Blob` userdata: `#b` is its length, `b:bytes()` the string
function M.blob(bytes)
  return core.blob(bytes)
end

local BLOB_MT = getmetatable(core.blob(""))
where._is_blob = function(x) return getmetatable(x) == BLOB_MT end

M.faiss = {
  --- A new, empty FAISS index from a factory string, to pair with a table
  -- through `DB:attach` (`DB:create_index` does all of it in one call).
  -- @function faiss.index_factory
  -- @int d dimension
  -- @string description a FAISS factory string: "Flat", "HNSW32",
  -- "IVF300,PQ16", "OPQ8,IVF300_HNSW32,PQ8", ...
  -- @string[opt="inner_product"] metric "inner_product" or "l2"
  -- @treturn Index the index, untrained unless its type needs no training
  index_factory = function(d, description, metric)
    return core.index_factory(d, description, normalize_metric(metric))
  end,
  --- Reads any FAISS index file, believing what it states as FAISS does:
  -- only for files you trust (a table's own index files are opened with
  -- vekterdb.new's faiss_index, which checks them first). mmap = true maps
  -- it read-only where FAISS can.
  -- @function faiss.read_index
  -- @string path the index file
  -- @bool[opt=false] mmap map the file read-only instead of reading it (IVF
  -- lists; other index types are read). An index whose lists are on disk
  -- (`DB:create_index`'s `on_disk`) is always mapped read-only, its lists
  -- file looked up beside `path`.
  -- @treturn Index the index; an index whose metric is neither inner product
  -- nor L2 raises an error
  read_index = function(path, mmap)
    return core.read_index(path, mmap)
  end,
}

-- -------------------------------------------------------------------------
-- the DB object
-- -------------------------------------------------------------------------

local DB = {}
-- (the methods before they were made public, for calls inside the module: filled at the end)
local RAW = {}
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
  if k == "index_generation" then return h:generation() end
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
        raise("columns[" .. i .. "] must be a table with a name")
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

-- where-clause values compared with DateTime and Date columns take the
-- stored form of their time; with blob columns, a string becomes a blob
local CONVERTED = { datetime = true, date = true, blob = true }
local function where_converter(h, columns)
  local convert = {}
  for _, c in ipairs(columns) do
    if CONVERTED[c.type] then convert[c.name] = true end
  end
  if next(convert) == nil then return nil end
  return function(name, v)
    if convert[name] then return h:store_value(name, v) end
    return v
  end
end

local function connect_list(args)
  local list = {}
  if args == nil then return list end
  if type(args) ~= "table" then raise("connect_args must be a table") end
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do list[#list + 1] = k .. "=" .. tostring(args[k]) end
  return list
end

-- a URL without its password, for messages
local function redact_url(url)
  url = url:gsub("^(%w+://[^/?#@:]*):[^/?#@]*@", "%1@")
  return (url:gsub("([?&]password=)[^&]*", "%1***"))
end

-- vekterdb.new's work; fn names the public call in messages; with
-- must_exist the table is never created
local function open_table(fn, table_name, opts, must_exist)
  if type(table_name) ~= "string" then
    raise(fn .. ": table name must be a string, got " .. type(table_name))
  end
  opts = check_opts(opts, NEW_OPTS, fn)
  local url = opts.url or "sqlite://"
  if type(url) ~= "string" then raise(fn .. ": url must be a string") end
  for _, flag in ipairs({ "mmap", "trust_index_file" }) do
    if opts[flag] ~= nil and type(opts[flag]) ~= "boolean" then
      raise(fn .. ": " .. flag .. " must be true or false, got " .. type(opts[flag]))
    end
  end
  local h = core.open(url, connect_list(opts.connect_args))
  local ok, err = pcall(function()
    if must_exist and not h:table_exists(opts.schema, table_name) then
      raise(string.format("%s: table %s does not exist at %s (loading never creates a table)", fn,
        opts.schema and opts.schema .. "." .. table_name or table_name, redact_url(url)), "not_found")
    end
    h:use_table(opts.schema, table_name, opts.idx_name or "idx", opts.vector_name or "vector",
                columns_from_opts(opts))
  end)
  if not ok then
    h:close()
    error(err, 0)
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
  self._convert = where_converter(h, self.columns)
  if opts.faiss_index then
    ok, err = pcall(self._open_index, self, opts.faiss_index)
    if not ok then
      h:close()
      error(err, 0)
    end
  end
  return self
end

--- Opens (or creates) a table of records.
-- An existing table is described from the database (its columns, whatever
-- `columns` says); a missing one is created with `idx` (BIGINT primary key),
-- the vector (BLOB/BYTEA) and `columns`.
--
--     local db = vekterdb.new("items", {
--       url = "sqlite:///items.db",
--       columns = { { name = "title", type = "text", unique = true, index = true } },
--       faiss_index = "items.index",
--     })
-- @string table_name name of the table
-- @tparam[opt] table opts
--
--  * `url`: where the table lives: "sqlite://" (the default: an in-memory
--    database), "sqlite:///relative/path.db", "sqlite:////absolute/path.db",
--    "postgresql://user:password@host:5432/database?sslmode=require" (or
--    "postgres://"; `?host=/var/run/postgresql` for a Unix socket)
--  * `schema`: the PostgreSQL schema ("public")
--  * `connect_args`: `{ key = value }` connection settings: any libpq setting
--    on PostgreSQL; `timeout` (seconds a writer waits for another, 5) and
--    `mode` ("ro", "rw", "rwc") on SQLite. The URL's query may hold them
--    too (`sqlite:///items.db?mode=ro`)
--  * `idx_name`: the idx column ("idx")
--  * `vector_name`: the vector column ("vector")
--  * `columns`: the other columns of a new table, in order, each
--    `{ name = "...", type = "text", unique = false, nullable = true, index = false }`;
--    types: "integer" ("int", "bigint"), "real" ("float", "double",
--    "number"), "text" ("string", "varchar"; the default), "blob" ("bytes",
--    "binary"), "boolean" ("bool")
--  * `columns_dict`: the Python VekterDB's form of `columns`,
--    `{ name = { type = ..., ... } }`, created in the order of the names
--  * `faiss_index`: an index file this table saved, opened and paired with
--    it; one that lacks records of the table is caught up from it (and a
--    warning logged), one that holds more is refused
--  * `trust_index_file`: true to open a `faiss_index` the table has no
--    record of saving (made by the Python VekterDB, by FAISS, an older copy)
--    and record it from then on: see docs/reliability.md
--  * `mmap`: true to map an IVF index's lists from the file, read-only
--    (shared by processes; other index types are read into memory)
-- @treturn DB the table; an unknown option, an unreadable database or index
-- file, or a column that does not fit raise an error
function M.new(table_name, opts)
  return open_table("vekterdb.new", table_name, opts)
end

-- opens an index file the table saved (or trusts) and pairs it with the table
function DB:_open_index(path)
  local h = self._h
  local d = h:dim()
  local ix = h:open_index(path, self._mmap, self._trust)
  if d > 0 and ix.d ~= d then
    h:attach(nil)
    raise(string.format("index file %s has dimension %d but table %s holds %d-d vectors",
      path, ix.d, self.table_name, d))
  end
  -- deleted records count as held: their idx values are never reused
  local ok, lag, excess = pcall(h.index_lag, h)
  if not ok or excess > 0 then
    h:attach(nil)
    if not ok then error(lag, 0) end
    raise(string.format("index file %s holds %d vectors but table %s only %d records: "
      .. "the index belongs to another table", path, ix.ntotal, self.table_name, h:next_idx()))
  end
  if lag > 0 and ix.on_disk then
    -- read-only lists: every search scans the missing records exactly
    log("info", "index file %s lacks %d records of table %s: its lists are on disk, so searches "
      .. "scan them exactly until %s writes a new generation", path, lag, self.table_name,
      M._hints.sync)
  elseif lag > 0 then
    -- every search and insert adds them from the table first
    log("warn", "index file %s lacks %d records of table %s: this handle adds them from the table "
      .. "before it searches or inserts; %s saves them", path, lag, self.table_name, M._hints.sync)
  end
end

local function check_open(self)
  if not rawget(self, "_h") then raise("attempt to use a closed database", "state") end
end

--- A table of records and the FAISS index paired with it, from
-- `vekterdb.new` or `vekterdb.load`.
--
-- Methods that take column names (`search`, `explain_search`,
-- `nearest_neighbors`, `select`, `fetch`) take them one by one
-- (`"idx", "title"`) or as one array (`{ "idx", "title" }`); with none they
-- return every column, the vector included (as a `vekterdb.vector`). Such a
-- method's options table, when given, comes last. A record is a Lua table
-- `{ column = value, ... }`: integers come back as Lua integers, NULL as a
-- missing field.
--
-- A DB is also a to-be-closed value (`local db <close> = vekterdb.new(...)`).
-- Fields (for reading only):
--
--  * `table_name`: the table's name
--  * `schema`: the PostgreSQL schema given to `vekterdb.new` (nil for the
--    default)
--  * `idx_name`, `vector_name`: the idx and vector columns' names
--  * `columns`: every column, in table order: an array of
--    `{ name =, type =, unique =, nullable =, index = }`, with
--    `primary_key = true` on the idx column and `vector = true` on the
--    vector column
--  * `Record`: the where-clause builder: `db.Record.<column>` is a
--    `vekterdb.where` Column (`db.Record.price:lt(10)`); an unknown column
--    raises an error
--  * `d`: the vectors' dimension (nil while the table is empty and has no
--    index)
--  * `metric`: "inner_product" or "l2", the attached index's metric
--    ("inner_product" without one)
--  * `index`: the attached FAISS `Index` (nil when none)
--  * `faiss_index`: the attached index's file name (nil when none)
--  * `faiss_runtime_parameters`: the sticky FAISS parameters, such as
--    "nprobe=16" (nil when none)
--  * `index_generation`: the generation (the save's number) of the index
--    file the attached index was read from; 0 when none
--
-- `tostring(db)` is "vekterdb.DB(table_name)".
-- @type DB

--- Closes the connection; the object cannot be used afterwards (a call
-- then raises "attempt to use a closed database"). Closing twice is allowed.
-- @return nothing
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
  raise("progress must be true, false or a function(done, total, phase)")
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
    raise(fn .. ": faiss_runtime_params must be a string such as \"nprobe=16\", got " .. type(p))
  end
  return p
end

-- runs an insert of the C module (fn(self._h, ...), the runtime parameters
-- last); the engine saves the index file whatever happened, so an error
-- is reported with the committed batches in place
local function run_insert(self, fn, ...)
  local t = clock()
  local ok, n = pcall(fn, self._h, ...)
  warn_unsaved(self)
  -- (our errors are named by the public call; one raised by the caller's
  -- own iterator or callback goes back unchanged)
  if not ok then error(n, 0) end
  local dt = clock() - t
  log("info", "inserted %d records in %.2fs (%.0f records/s)", n, dt, dt > 0 and n / dt or 0)
  return n
end

--- Inserts records (an array, or an iterator function returning one record
-- per call). Each batch is one transaction; with an index attached the
-- vectors go into it too and the index file is saved at the end.
--
-- A record without the idx column gets the table's next idx (leave idx out
-- when several processes insert); a record whose idx is not the next one is
-- refused, since FAISS ids are the idx values. When an iterator raises an
-- error half way, the batches already committed stay; the batch in flight is
-- dropped.
--
--     db:insert({ { vector = { 0.1, 0.2 }, title = "a" }, { vector = { 0.3, 0.4 }, title = "b" } })
-- @param records an array of records, or a function returning the next
-- record per call and nil at the end (such as `vekterdb.source.records`).
-- A record is `{ idx = i, vector = v, column = value, ... }`, the vector a
-- `vekterdb.vector`, an array of numbers or a packed float32 string
-- (compressed bytes with `serialize_vectors = false`)
-- @tparam[opt] table opts
--
--  * `batch_size`: records per transaction (10000)
--  * `serialize_vectors`: false when the vectors are already compressed
--    (`vekterdb.serialize_vector`'s bytes) (true)
--  * `compression_level`: zstd level (1)
--  * `faiss_runtime_params`: FAISS parameters while adding, such as
--    "nprobe=16", set back afterwards
--  * `progress`: true for a `vekterdb.progress` bar, or a
--    `function(done, total, phase)` called after each batch (phase
--    "insert"; total nil when unknown)
-- @treturn int the number of records inserted
function DB:insert(records, opts)
  check_open(self)
  opts = check_opts(opts, INSERT_OPTS, "insert")
  local batch_size = opts.batch_size or 10000
  local serialize = opts.serialize_vectors ~= false
  local level = opts.compression_level or 1
  -- (not a tail call: run_insert's errors point at insert's caller)
  local n = run_insert(self, self._h.insert, records, batch_size, level, serialize,
                       progress_fn(opts.progress), call_params(opts, "insert"))
  return n
end

local MATRIX_OPTS = set_of({ "idx", "columns", "batch_size", "compression_level", "faiss_runtime_params",
                             "progress" })

--- Inserts one record per row of a matrix: the bulk path, with no Lua table
-- per record. Each batch is one transaction, as in `insert`.
--
--     db:insert_matrix(m, { columns = { title = titles } })   -- titles[i] for row i
-- @param vectors a `vekterdb.matrix` (or vector) of the table's dimension
-- @tparam[opt] table opts
--
--  * `idx`: idx of the first row, the next rows following (default: the
--    table's next idx values)
--  * `columns`: `{ name = array }`, one value per row (`array[i]` for row
--    i); a missing value is NULL
--  * `batch_size`, `compression_level`, `faiss_runtime_params`, `progress`:
--    as in `insert`
-- @treturn int the number of records inserted
function DB:insert_matrix(vectors, opts)
  check_open(self)
  opts = check_opts(opts, MATRIX_OPTS, "insert_matrix")
  if type(vectors) ~= "userdata" then
    raise("insert_matrix: expected a vekterdb.matrix, got " .. type(vectors))
  end
  local names, arrays = {}, {}
  if opts.columns ~= nil then
    if type(opts.columns) ~= "table" then
      raise("insert_matrix: columns must be a table { name = array of values }")
    end
    for name in pairs(opts.columns) do
      if type(name) ~= "string" then raise("insert_matrix: column names must be strings") end
      names[#names + 1] = name
    end
    table.sort(names)
    for i, name in ipairs(names) do arrays[i] = opts.columns[name] end
  end
  local n = run_insert(self, self._h.insert_matrix, vectors, opts.idx, names,
                       arrays, opts.batch_size or 10000, opts.compression_level or 1, progress_fn(opts.progress),
                       call_params(opts, "insert_matrix"))
  return n
end

--- Builds a new index from a factory string, trains it, adds every record
-- and saves it to `faiss_index`; the index is then attached.
-- It refuses when an index is attached already, when the file exists, and
-- when the table is empty; on a failure the file is removed and no index
-- stays attached.
--
--     db:create_index("items.index", "IVF1000,PQ16", { metric = "l2", sample_size = 50000 })
-- @function DB:create_index
-- @string faiss_index the index file to write
-- @string faiss_factory_str a FAISS factory string: "Flat", "HNSW32",
-- "IVF300,PQ16", ...
-- @tparam[opt] table opts
--
--  * `metric`: "inner_product" (the default) or "l2"
--  * `sample_size`: records to train on, drawn at random (0, the default:
--    all)
--  * `batch_size`: vectors read from the table per batch while adding
--    (10000)
--  * `faiss_runtime_params`: FAISS parameters while adding only
--  * `progress`: as in `insert` (phases "train" and "add")
--  * `on_disk`: true to keep the inverted lists of an IVF index in a
--    lists file beside `faiss_index` (`<faiss_index>.ivfdata.<16 hex
--    digits>`, a new one per generation), mapped read-only instead of held
--    in memory: for lists larger than memory. The records are read from
--    the table `batch_size` at a time and never all held at once. Any IVF
--    factory string works; another one is refused (code "invalid"). The
--    index is then read-only (`db.index.on_disk` is true): records inserted
--    later are scanned exactly by searches until `sync_index_to_db` (or
--    `rebuild_index`) writes a new generation. See docs/ondisk.md.
-- @treturn Index the new index (also `db.index`)
local CREATE_OPTS = set_of({ "metric", "sample_size", "batch_size", "faiss_runtime_params",
                             "progress", "on_disk" })

function DB:create_index(faiss_index, faiss_factory_str, opts)
  check_open(self)
  if type(faiss_index) ~= "string" or faiss_index == "" then
    raise("create_index: the index file name must be a non-empty string")
  end
  if type(faiss_factory_str) ~= "string" then
    raise("create_index: the FAISS factory string must be a string")
  end
  opts = check_opts(opts, CREATE_OPTS, "create_index")
  if self.index then
    raise("create_index: an index is already attached (" .. tostring(self.faiss_index)
      .. "); open the table without it to build another", "state")
  end
  if file_exists(faiss_index) then
    raise("create_index: file " .. faiss_index .. " already exists; refusing to overwrite it")
  end
  local d = self.d
  if not d then raise("create_index: table " .. self.table_name .. " holds no records yet", "state") end
  local metric = normalize_metric(opts.metric)
  local ix = core.index_factory(d, faiss_factory_str, metric)
  if opts.on_disk then ix:_check_on_disk() end
  RAW.attach(self, ix, faiss_index)
  local ok, err = pcall(function()
    if not ix.is_trained then RAW.train_index(self, opts.sample_size or 0, opts) end
    if opts.on_disk then
      -- the lists go to disk as they are filled; deleted records are never added
      local t = clock()
      local added = self._h:ondisk(opts.batch_size or 10000, faiss_index, progress_fn(opts.progress),
                                   call_params(opts, "create_index"))
      log("info", "wrote %d vectors to on-disk inverted lists in %.2fs", added, clock() - t)
      return
    end
    RAW.sync_index_to_db(self, { batch_size = opts.batch_size,
                            faiss_runtime_params = opts.faiss_runtime_params,
                            progress = opts.progress })
    -- an index that keeps explicit ids never took the deleted records
    if self._h:deleted() > 0 then self._h:rebuild(faiss_index) end
  end)
  if not ok then
    self._h:attach(nil)
    os.remove(faiss_index)
    error(err, 0)
  end
  return ix
end

--- Pairs an index object with the table; `faiss_index` is the file it is
-- saved to. Follow with
-- `train_index` and `sync_index_to_db` when the index is new.
-- @tparam Index index from `vekterdb.faiss.index_factory` or
-- `vekterdb.faiss.read_index`, of the table's dimension
-- @string[opt] faiss_index the file the table's methods save it to
-- @return nothing
function DB:attach(index, faiss_index)
  check_open(self)
  if type(index) ~= "userdata" or index.ntotal == nil then
    raise("attach: expected an index from vekterdb.faiss.index_factory or read_index")
  end
  if faiss_index ~= nil and type(faiss_index) ~= "string" then
    raise("attach: the index file name must be a string")
  end
  local d = self._h:dim()
  if d > 0 and index.d ~= d then
    raise(string.format("attach: index dimension %d does not match the table's %d", index.d, d))
  end
  self._h:attach(index, faiss_index)
end


--- Trains the attached index on `sample_size` random records (0: all).
-- @int[opt=0] sample_size records drawn at random to train on (0: all)
-- @tparam[opt] table opts `progress`, as in `insert` (phase "train")
-- @return nothing
function DB:train_index(sample_size, opts)
  check_open(self)
  opts = opts or {}
  if not self.index then raise("train_index: no index attached", "state") end
  sample_size = sample_size or 0
  if math.type and math.type(sample_size) ~= "integer" and sample_size % 1 ~= 0 then
    raise("train_index: sample_size must be an integer")
  end
  local t = clock()
  self._h:train(sample_size, progress_fn(opts.progress))
  log("info", "trained the index in %.2fs", clock() - t)
end

local SYNC_OPTS = set_of({ "batch_size", "faiss_runtime_params", "progress" })

--- Adds to the index every record it does not hold yet, then saves it:
-- after records were written by other means (`execute`, another program),
-- or when an index file lags behind its table.
-- @tparam[opt] table opts `batch_size` (10000), `faiss_runtime_params`
-- and `progress` as in `insert` (phase "add")
-- @treturn int the number of vectors added
function DB:sync_index_to_db(opts)
  check_open(self)
  opts = check_opts(opts, SYNC_OPTS, "sync_index_to_db")
  if not self.index then raise("sync_index_to_db: no index attached", "state") end
  local t = clock()
  local added = self._h:sync(opts.batch_size or 10000, self.faiss_index, progress_fn(opts.progress),
                             call_params(opts, "sync_index_to_db"))
  local dt = clock() - t
  log("info", "added %d vectors to the index in %.2fs (%.0f vectors/s)", added, dt,
      dt > 0 and added / dt or 0)
  return added
end

--- Sets FAISS search parameters that stay until changed ("nprobe=16,...").
-- They are saved by `save`. For one search only, use `search`'s
-- `search_parameters` option instead.
-- @string params comma-separated name=number pairs, such as
-- "nprobe=16,quantizer_efSearch=32"; an unknown name raises an error and
-- changes nothing
-- @return nothing
function DB:set_faiss_runtime_parameters(params)
  check_open(self)
  if not self.index then raise("set_faiss_runtime_parameters: no index attached", "state") end
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
      raise(fn .. ": table " .. self.table_name .. " has no column '" .. c .. "'")
    end
  end
  return cols
end

local function check_k(k, fn)
  if type(k) ~= "number" then
    raise(string.format("%s: k must be a positive integer, got %s (a %s)", fn,
      type(k) == "string" and string.format("%q", k) or tostring(k), type(k)))
  end
  if k % 1 ~= 0 or k < 1 then
    raise(fn .. ": k must be a positive integer, got " .. tostring(k))
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
      raise(fn .. ": filter must be a where-clause (db.Record.<column>:<op>(...)), got "
        .. type(opts.filter))
    end
    local info = self._h:info()
    local ok, sql, params = pcall(where.compile, opts.filter, info.placeholder, self._known,
                                  self._convert, info.quote)
    if not ok then raise(fn .. ": filter: " .. bare(sql), code_of(sql)) end
    out.filter_sql, out.filter_params = sql, params
  end
  out.explain = explain or nil
  return out
end

--- Nearest records to query vectors.
-- FAISS proposes `k + k_extra_neighbors` candidates per query; their stored
-- vectors are read back from the table, the exact metric computed, and the
-- best k kept, nearest first. Deleted records never come back.
--
--     local res = db:search(q, 10, "idx", "title", { filter = db.Record.price:lt(100) })
--     for _, nb in ipairs(res[1].neighbors) do print(nb.idx, nb.title, nb.metric) end
--
-- The metric is the index's: inner product (larger is nearer) or the
-- Euclidean distance (not squared; smaller is nearer).
-- @param query one vector (a `vekterdb.vector`, an array of numbers or a
-- packed float32 string), a `vekterdb.matrix` (one query per row) or an array
-- of vectors
-- @int k neighbors per query, 1 to 100000
-- @param ... column names to return with each neighbor (one by one or as one
-- array; none: every column), then optionally the options table:
--
--  * `k_extra_neighbors`: more candidates asked of FAISS and reranked (0);
--    raises recall for approximate indexes
--  * `rerank`: false keeps FAISS's order (the metric is still exact) (true)
--  * `threshold`: keep only neighbors whose metric is >= threshold (inner
--    product) or <= threshold (L2); fewer than k may then come back
--  * `search_parameters`: FAISS parameters for this call only, such as
--    "nprobe=64"; the index's own are set back afterwards
--  * `batch_size`: queries searched together (10000)
--  * `filter`: a where-clause (`db.Record.<column>:<op>(...)`): only records
--    it matches can be neighbors; whenever at least k records match, k come
--    back (docs/filtered-search.md)
--  * `filter_plan`: "exact", "selector", "widen" or "check": overrides the
--    planner's choice for a filter (for benchmarks and tests)
-- @treturn {table,...} one result per query, in order:
-- `{ neighbors = { { column = value, ..., metric = m }, ... } }`, the
-- neighbors nearest first, each with the columns asked for and `metric`
function DB:search(query, k, ...)
  check_open(self)
  check_k(k, "search")
  local cols, opts = split_args("search", ...)
  opts = check_opts(opts, SEARCH_OPTS, "search")
  if not self.index then raise("search: no FAISS index: create_index or attach one first", "state") end
  return self._h:search(query, k, core_opts(self, opts, "search"), self:_columns(cols, "search"))
end

--- How `search(query, k, ..., opts)` runs: the plan it takes and its
-- figures, then the results.
--
--     local plan, res = db:explain_search(q, 10, { filter = db.Record.category:eq("shoes") })
--     print(plan.plan, plan.matches)   --> "exact"  812
-- @param query as in `search`
-- @int k as in `search`
-- @param ... column names and options, as in `search`
-- @treturn table the plan: `plan` is "index" (no filter: FAISS alone),
-- "exact" (the few matching records scanned exactly), "selector" (FAISS
-- visits allowed ids only), "widen" (FAISS asked for more, its results
-- filtered) or "check" (a broad filter: the database checks FAISS's
-- candidates, more asked until k match); and the figures `matches` (when
-- counted), `estimated_matches` ("check"), `excluded` (tombstones left
-- out), `rounds` (wider searches), `widened` (queries searched again),
-- `exact_fallback`, `max_k` (the largest k asked of FAISS), `missing`
-- (records deleted while searching) and `exact_max` (the largest match
-- count the "exact" plan scans)
-- @treturn {table,...} the results, as `search` returns them
function DB:explain_search(query, k, ...)
  check_open(self)
  check_k(k, "explain_search")
  local cols, opts = split_args("explain_search", ...)
  opts = check_opts(opts, SEARCH_OPTS, "explain_search")
  if not self.index then raise("explain_search: no FAISS index: create_index or attach one first", "state") end
  local res, plan = self._h:search(query, k, core_opts(self, opts, "explain_search", true),
                                   self:_columns(cols, "explain_search"))
  return plan, res
end

local IN_CHUNK = 30000

-- where argument -> sql, params (nil for everything)
function DB:_where(expr, fn)
  if expr == nil then return nil, {} end
  if not where.is_expr(expr) then
    raise(fn .. ": expected a where-clause (db.Record.<column>:<op>(...)), got " .. type(expr))
  end
  local info = self._h:info()
  local ok, sql, params = pcall(where.compile, expr, info.placeholder, self._known, self._convert, info.quote)
  if not ok then raise(fn .. ": " .. bare(sql), code_of(sql)) end
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
--
--     db:nearest_neighbors(db.Record.idx:in_({ 0, 1 }), 3, "idx")
--     db:nearest_neighbors("idx", { 0, 1 }, 3, "idx")      -- the same
--     --> { { idx = 0, neighbors = { { idx = 1, metric = 62.57 }, ... } },
--     --    { idx = 1, neighbors = { { idx = 0, metric = 62.57 }, ... } } }
-- @param first a where-clause choosing the records, or a column name
-- followed by an array of values of that column:
-- `nearest_neighbors(where, k, [col...], [opts])` or
-- `nearest_neighbors(column, values, k, [col...], [opts])`
-- @param ... (values), k, column names and options, as in `search`
-- @treturn {table,...} one result per chosen record (in no promised
-- order): the record's columns asked for and `neighbors`, as in `search`
function DB:nearest_neighbors(first, ...)
  check_open(self)
  local expr, k
  local rest
  if type(first) == "string" then
    local values
    values, k = ...
    if type(values) ~= "table" then
      raise("nearest_neighbors: expected an array of values after the column name")
    end
    if not self._known[first] then
      raise("nearest_neighbors: table " .. self.table_name .. " has no column '" .. first .. "'")
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
    raise("nearest_neighbors: no FAISS index: create_index or attach one first", "state")
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
-- table `<table>__vekterdb_deleted`. Their vectors stay in the index file
-- until `rebuild_index`.
-- @tparam Expr expr a where-clause; to delete every record pass
-- `db.Record.idx:is_not_null()` (nil is refused)
-- @treturn int the number of records deleted
function DB:delete(expr)
  check_open(self)
  if expr == nil then
    raise("delete: expected a where-clause; to delete every record pass db.Record."
      .. self.idx_name .. ":is_not_null()")
  end
  local sql, params = self:_where(expr, "delete")
  return self._h:delete(sql, params)
end

--- Changes the records a where-clause matches, in one transaction.
-- A new vector (under the vector column's name) deletes each record and
-- inserts it again under a new idx, since FAISS ids are idx values.
--
--     db:update(db.Record.idx:eq(7), { price = 12.5 })   --> 1
--     db:update(db.Record.idx:eq(7), { vector = v })     --> 1, { [7] = 10001 }
-- @tparam Expr expr a where-clause (nil is refused, as in `delete`)
-- @tparam table values `{ column = new value, ... }`; the idx column cannot
-- be changed
-- @treturn int the number of records updated
-- @treturn[opt] table with a new vector: `{ [old idx] = new idx }`
function DB:update(expr, values)
  check_open(self)
  if expr == nil then
    raise("update: expected a where-clause; to update every record pass db.Record."
      .. self.idx_name .. ":is_not_null()")
  end
  if type(values) ~= "table" or next(values) == nil then
    raise("update: expected a table of { column = new value }")
  end
  for name in pairs(values) do
    if type(name) ~= "string" or not self._known[name] then
      raise("update: table " .. self.table_name .. " has no column '" .. tostring(name) .. "'")
    end
    if name == self.idx_name then raise("update: the idx column cannot be updated") end
  end
  local sql, params = self:_where(expr, "update")
  local ok, n, moved = pcall(self._h.update, self._h, sql, params, values)
  warn_unsaved(self)
  if not ok then error(n, 0) end
  return n, moved
end

--- Number of deleted records the table remembers (tombstones).
-- Tombstones are never removed (they keep idx values from being reused), so
-- the count does not go down after `rebuild_index`.
-- @treturn int the number of tombstones
function DB:deleted_count()
  check_open(self)
  return self._h:deleted()
end

--- Removes deleted records' vectors from the attached index and saves it.
-- Only index types that keep explicit ids can (the IVF family; indexes
-- numbered by position, such as Flat and HNSW, cannot drop a vector without
-- renumbering the others). This handle's searches then stop consulting the
-- tombstones its index no longer needs (other handles' indexes keep theirs:
-- docs/concurrency.md).
-- @treturn int the number of tombstones reclaimed by this call (marked as
-- no longer needed by this index; they stay in `deleted_count`)
-- @treturn int the number of vectors removed from the index
function DB:rebuild_index()
  check_open(self)
  if not self.index then raise("rebuild_index: no index attached", "state") end
  local reclaimed, removed = self._h:rebuild(self.faiss_index)
  log("info", "rebuild_index: %d vectors removed, %d tombstones reclaimed", removed, reclaimed)
  return reclaimed, removed
end

--- Iterates over records: `for rec in db:select(where, col, ...) do`.
-- With no column names every column is returned. `where` may be nil.
-- Records are read in blocks through a cursor, so a large table does not sit
-- in memory.
--
--     for rec in db:select(db.Record.price:lt(10), "idx", "title", { order_by = "idx", limit = 5 }) do
--       print(rec.idx, rec.title)
--     end
-- @tparam[opt] Expr expr a where-clause, or nil for every record
-- @param ... column names (one by one or as one array), then optionally
-- `{ order_by = column, limit = n }`
-- @treturn function an iterator returning one record per call, nil at the end
-- @return the cursor: `cursor:close()` ends an iteration early and frees it
function DB:select(expr, ...)
  check_open(self)
  local cols, opts = split_args("select", ...)
  opts = check_opts(opts, set_of({ "order_by", "limit" }), "select")
  cols = self:_columns(cols, "select")
  local tail
  if opts.order_by then
    if not self._known[opts.order_by] then
      raise("select: table " .. self.table_name .. " has no column '" .. tostring(opts.order_by) .. "'")
    end
    tail = "ORDER BY " .. where.quote_ident(opts.order_by, self._h:info().quote)
  end
  if opts.limit then
    if type(opts.limit) ~= "number" or opts.limit % 1 ~= 0 or opts.limit < 0 then
      raise("select: limit must be a non-negative integer")
    end
    tail = (tail and tail .. " " or "") .. string.format("LIMIT %d", opts.limit)
  end
  local sql, params = self:_where(expr, "select")
  local cur = self._h:select(cols, sql, params, tail)
  return function() return cur:next() end, cur
end

--- The exact metric between two vectors (inner product or L2 distance, as
-- the index uses); nil when it misses the threshold.
-- @param v1 a vector (or array of numbers, or packed float32 string)
-- @param v2 a vector of the same dimension
-- @number[opt] threshold the least inner product, or the largest L2 distance,
-- that counts
-- @treturn number|nil the metric, or nil when it misses the threshold
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
-- @int[opt=0] sample_size how many (0, or more than the table holds: all)
-- @int[opt] seed the random seed; the same seed draws the same records
-- @treturn Matrix one vector per row
function DB:sample_vectors(sample_size, seed)
  check_open(self)
  return self._h:sample(sample_size or 0, seed)
end

--- Number of records in the table (deleted records are not counted).
-- @treturn int the record count
function DB:count()
  check_open(self)
  return self._h:count()
end

--- Runs an SQL statement on the table's connection, its values bound.
-- Placeholders are ?1 ?2 ... on SQLite, $1 $2 ... on PostgreSQL
-- (`placeholder`); the rows come back as arrays. Writing to the table this
-- way bypasses the index: call sync_index_to_db() afterwards.
--
--     db:execute("SELECT count(*) FROM items WHERE price < " .. db:placeholder(1), { 10 })
--     --> { { 42 } }
-- @string sql one SQL statement
-- @tparam[opt] table params an array of values for the placeholders:
-- numbers, strings (bound as text), booleans
-- @treturn {table,...} the rows, each an array of its values (NULL as nil);
-- an empty array for a statement that returns no rows
function DB:execute(sql, params)
  check_open(self)
  if type(sql) ~= "string" then raise("execute: sql must be a string") end
  if params ~= nil and type(params) ~= "table" then raise("execute: params must be an array") end
  return self._h:execute(sql, params or {})
end

--- The placeholder for the n-th bound value on this database ("?1" or "$1").
-- @int n the position of the value in `execute`'s params
-- @treturn string the placeholder
function DB:placeholder(n)
  check_open(self)
  return self._h:info().placeholder .. tostring(n)
end

--- Records by idx, in the order asked: a sequence whose entry for an idx
-- the table does not hold (never inserted, or deleted) is false.
--
--     db:fetch({ 0, 1, 37 }, "idx", "title")   --> { { idx = 0, title = "a" }, false, { idx = 37, ... } }
-- @tparam {int,...} ids idx values
-- @param ... column names (one by one or as one array; none: every column)
-- @treturn {table|false,...} one entry per id: the record, or false
function DB:fetch(ids, ...)
  check_open(self)
  local cols = split_args("fetch", ...)
  return self._h:fetch(ids, self:_columns(cols, "fetch"))
end

-- -------------------------------------------------------------------------
-- save / load
-- -------------------------------------------------------------------------

--- Writes the settings needed to reopen this VekterDB to a JSON file
-- (default `<table_name>.json`), in the form the Python VekterDB's `load`
-- reads: the keys `table_name`, `idx_name`, `vector_name`, `faiss_index`
-- (null without an index) and `faiss_runtime_parameters` (only when set),
-- written to a temporary file and renamed into place. The metric is not
-- written (the index file holds it), nor the URL (it may hold a password),
-- nor a PostgreSQL schema (the Python library has no such argument: give
-- `schema` to `vekterdb.load` again).
-- @string[opt] config_file the file to write (`<table_name>.json`)
-- @treturn string the file written
function DB:save(config_file)
  check_open(self)
  local cjson = require "cjson"
  config_file = config_file or (self.table_name .. ".json")
  if type(config_file) ~= "string" then raise("save: the file name must be a string") end
  local cfg = {
    table_name = self.table_name,
    idx_name = self.idx_name,
    vector_name = self.vector_name,
    faiss_index = self.faiss_index or cjson.null,
    faiss_runtime_parameters = self.faiss_runtime_parameters,
  }
  local tmp = config_file .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then raise("save: " .. tostring(err), "io") end
  f:write(cjson.encode(cfg), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, config_file)
  if not ok then raise("save: " .. tostring(rerr), "io") end
  return config_file
end

--- Keeps the table's index files in the database, for search nodes
-- (`vekterdb.follow`): from now on every save of the index by any handle
-- of the table also stores the file as a PostgreSQL large object, in the
-- transaction that records its digest, and the same transaction removes
-- the objects of older generations beyond the newest `keep`. The setting
-- belongs to the table (the side table `<table>__vekterdb_settings`), so
-- every writer follows it. When this handle has an index file, it is saved
-- at once, so the database holds a generation from the start. PostgreSQL
-- only: elsewhere the call raises an error with code `invalid`.
--
--     writer:keep_index_in_database(2)
-- @int[opt=2] keep the generations to keep (nodes take the newest; an
-- older one is there for recovery by hand, and a node downloading it is
-- safe anyway: docs/concurrency.md; 0 turns the setting off and removes
-- the objects)
-- @return nothing
function DB:keep_index_in_database(keep)
  check_open(self)
  if keep == nil then keep = 2 end
  if type(keep) ~= "number" or keep % 1 ~= 0 then
    raise("keep_index_in_database: keep must be an integer, got " .. tostring(keep))
  end
  local h = self._h
  h:keep_index_objects(keep)
  local ix = h:index()
  if keep > 0 and ix and h:index_file() and not self._mmap then h:write_index(h:index_file()) end
end

--- Waits until another handle commits a change to the table (an insert,
-- update, delete, rebuild or index save), then catches up with it; for a
-- node from `vekterdb.follow`, in a worker loop between searches. The
-- node's searches would catch up anyway: waiting only moves that work out
-- of the next search.
--
--     while running do node:wait_for_changes(5) end
-- @number timeout seconds to wait at most (0: only what already arrived)
-- @treturn boolean true when a change arrived, false when the time ran out
function DB:wait_for_changes(timeout)
  check_open(self)
  if type(timeout) ~= "number" or timeout < 0 or timeout ~= timeout then
    raise("wait_for_changes: timeout must be a number of seconds >= 0, got " .. tostring(timeout))
  end
  return self._h:wait_for_changes(math.floor(math.min(timeout, 2e6) * 1000 + 0.5))
end

local FOLLOW_OPTS = set_of({ "cache_dir", "schema", "idx_name", "vector_name", "connect_args" })

--- Search nodes.
-- @section follow

--- Opens a search node on a PostgreSQL table, from the database alone: no
-- index file needs to be shared. The newest generation of the index file
-- that the table keeps in the database (`DB:keep_index_in_database`) is
-- downloaded into `cache_dir` in chunks, its SHA-256 checked against the
-- digest recorded when it was saved (a mismatch raises an error with code
-- `corrupt`), and read. From then on the node is a DB like any other: it
-- catches up with the records committed after that file from the table,
-- and leaves deleted ones out. It listens for the table's changes
-- (PostgreSQL `LISTEN`/`NOTIFY`): a search skips the catch-up query while
-- no other handle committed anything (deleted records are read by every
-- search, so a delete vanishes at once), and `DB:wait_for_changes` waits
-- for a commit. The node never writes an index file; newer generations saved
-- later are not downloaded again (catching up from the table is cheaper),
-- a node started later gets the newest.
--
--     local node = vekterdb.follow("postgresql://app@db/items", "items",
--       { cache_dir = "/var/cache/items" })
-- @string url the database, as in `vekterdb.new`
-- @string table_name the table
-- @tparam table opts
--
--  * `cache_dir`: the directory the index file is downloaded to (created
--    when missing); a copy of the same generation already there is used
--    without downloading it again
--  * `schema`, `idx_name`, `vector_name`, `connect_args`: as in
--    `vekterdb.new`
-- @treturn DB the node; a missing table, a table that keeps no index file in
-- the database (`not_found`), or a database without large objects
-- (SQLite, MySQL: `invalid`) raise an error
function M.follow(url, table_name, opts)
  local fn = "vekterdb.follow"
  if type(url) ~= "string" then raise(fn .. ": url must be a string, got " .. type(url)) end
  opts = check_opts(opts, FOLLOW_OPTS, fn)
  if type(opts.cache_dir) ~= "string" or opts.cache_dir == "" then
    raise(fn .. ": opts.cache_dir (the directory the index file is downloaded to) is required")
  end
  local db = open_table(fn, table_name, {
    url = url,
    schema = opts.schema,
    idx_name = opts.idx_name,
    vector_name = opts.vector_name,
    connect_args = opts.connect_args,
  }, true)
  local ok, err = pcall(db._h.follow, db._h, opts.cache_dir)
  if not ok then
    db:close()
    error(err, 0)
  end
  return db
end

local LOAD_OPTS = set_of({ "connect_args", "mmap", "trust_index_file", "schema" })

--- Reopening a saved table.
-- @section load

--- Reopens a VekterDB from a JSON configuration, against the database at
-- `url`: a file written by `DB:save` or by the Python VekterDB (older files
-- of ours with `metric` and `schema` keys are read too; other keys are
-- ignored). The file's `faiss_index` is opened as `vekterdb.new` opens one,
-- and its `faiss_runtime_parameters` are set. Loading never creates a
-- table: a table missing at `url` is an error with code `not_found` that
-- names the table and the URL (without its password).
--
--     local db = vekterdb.load("items.json", "sqlite:///items.db")
-- @string config_file a JSON file written by `DB:save`
-- @string url the database, as in `vekterdb.new`: required, as in the
-- Python library (the file never holds it)
-- @tparam[opt] table opts `connect_args`, `mmap`, `trust_index_file`, as in
-- `vekterdb.new`; `schema` (PostgreSQL), which a saved file does not hold
-- @treturn DB the table; a missing table or file, a file that is not a
-- configuration, a metric that disagrees with the index file, or bad
-- parameters raise an error
function M.load(config_file, url, opts)
  local fn = "vekterdb.load"
  if type(config_file) ~= "string" then
    raise(fn .. ": the configuration file name must be a string, got " .. type(config_file))
  end
  if url == nil then
    raise(fn .. ": no database URL: a configuration never holds one (it may carry a password); "
      .. "call vekterdb.load(" .. config_file .. ", url)")
  end
  if type(url) ~= "string" then raise(fn .. ": url must be a string, got " .. type(url)) end
  opts = check_opts(opts, LOAD_OPTS, fn)
  local cjson = require "cjson"
  local f, err, errno = io.open(config_file, "rb")
  if not f then raise(fn .. ": " .. tostring(err), errno == 2 and "not_found" or "io") end
  local text = f:read("*a")
  f:close()
  local ok, cfg = pcall(cjson.decode, text)
  if not ok or type(cfg) ~= "table" then
    raise(fn .. ": " .. config_file .. " is not a VekterDB configuration (invalid JSON)")
  end
  if type(cfg.table_name) ~= "string" then
    raise(fn .. ": " .. config_file .. " has no table_name")
  end
  local function str(v) return type(v) == "string" and v or nil end
  local db = open_table(fn, cfg.table_name, {
    url = url,
    idx_name = str(cfg.idx_name),
    vector_name = str(cfg.vector_name),
    faiss_index = str(cfg.faiss_index),
    schema = opts.schema or str(cfg.schema),
    connect_args = opts.connect_args,
    mmap = opts.mmap,
    trust_index_file = opts.trust_index_file,
  }, true)
  local metric = db.metric
  if str(cfg.metric) and db.index then
    local mok, want = pcall(normalize_metric, cfg.metric)
    if not mok or want ~= metric then
      db:close()
      raise(string.format("%s: %s says metric %s but index file %s uses %s", fn, config_file,
        cfg.metric, cfg.faiss_index, metric))
    end
  end
  if str(cfg.faiss_runtime_parameters) and db.index then
    -- bad parameters in the file: close the connection before reporting them
    local ok2, perr = pcall(RAW.set_faiss_runtime_parameters, db, cfg.faiss_runtime_parameters)
    if not ok2 then
      db:close()
      raise(string.format("%s: %s: faiss_runtime_parameters: %s", fn, config_file, bare(perr)))
    end
  end
  return db
end

-- -------------------------------------------------------------------------
-- the public functions: their errors name them
-- -------------------------------------------------------------------------

-- the methods as written stay in RAW, for calls from inside the module
for name, fn in pairs(DB) do
  RAW[name] = fn
  if name:sub(1, 1) ~= "_" then DB[name] = public(name, fn) end
end

M.new = public("vekterdb.new", M.new)
M.load = public("vekterdb.load", M.load)
M.follow = public("vekterdb.follow", M.follow)
M.serialize_vector = public("serialize_vector", M.serialize_vector)
M.deserialize_vector = public("deserialize_vector", M.deserialize_vector)
M.faiss.index_factory = public("index_factory", M.faiss.index_factory)
M.faiss.read_index = public("read_index", M.faiss.read_index)

return M
