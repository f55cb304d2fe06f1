--- vekterdb_http: a VekterDB search service inside nginx workers (nginx's lua
-- module or OpenResty).  Each worker opens the database read-only once, in
-- init_worker_by_lua, and answers:
--
--   POST /search      {"vector": [...], "k": 10, "columns": [...], "k_extra_neighbors": 4}
--                     or {"vectors": [[...], ...], ...} for a small batch
--   GET  /neighbors   ?column=id&value=abc&k=10[&value=...][&columns=a,b][&k_extra_neighbors=n]
--   GET  /health
--   POST /admin/reload  (keep it to loopback in nginx.conf)
--
-- A request the service cannot answer because of what the client sent gets
-- a 400 and {"error": "..."}; only a fault of the server itself gives a 500.
-- See README.md for the deployment shape and nginx.conf for the wiring.
local M = {}

local DEFAULTS = {
  config = nil,            -- JSON file written by db:save() (table, index file, runtime parameters)
  url = nil,               -- database URL, e.g. "sqlite:////srv/db.sqlite?mode=ro"
  mmap = true,             -- map IVF inverted lists instead of copying them into each worker
  threads = 1,             -- OpenMP threads per worker
  max_k = 100,
  max_k_extra = 100,
  max_batch = 16,          -- query vectors per POST /search, values per GET /neighbors
  columns = nil,           -- default columns of each neighbor (nil: all but the vector)
  reload_interval = 5,     -- seconds between cheap stat checks of the files (0: never)
  shared_dict = "vekterdb", -- lua_shared_dict carrying the reload generation (optional)
}

local settings
local state = {          -- this worker's database and what it was loaded from
  db = nil,
  error = "not initialised",
  stamp = nil,           -- identity of the files it was loaded from
  generation = 0,
  loaded_at = nil,
  records = nil,
}

local cjson = require("cjson.safe").new()
cjson.decode_invalid_numbers(false)   -- no NaN, Infinity or hex in requests
cjson.decode_max_depth(8)

local floor, huge, format, concat = math.floor, math.huge, string.format, table.concat
local unpack = table.unpack or unpack
local TWO53 = 9007199254740992

---------------------------------------------------------------------------
-- configuration (init_by_lua: the master process; nothing native is loaded)
---------------------------------------------------------------------------

--- Stores the settings; call from init_by_lua*.
function M.configure(opts)
  local s = {}
  for k, v in pairs(DEFAULTS) do s[k] = v end
  for k, v in pairs(opts or {}) do
    if DEFAULTS[k] == nil and k ~= "config" and k ~= "url" and k ~= "columns" then
      error("vekterdb_http.configure: unknown setting '" .. tostring(k) .. "'", 2)
    end
    s[k] = v
  end
  if type(s.config) ~= "string" then error("vekterdb_http.configure: config (a file from db:save()) is required", 2) end
  if type(s.url) ~= "string" then error("vekterdb_http.configure: url is required", 2) end
  for _, k in ipairs({ "threads", "max_k", "max_batch" }) do
    if type(s[k]) ~= "number" or s[k] < 1 or s[k] % 1 ~= 0 then
      error("vekterdb_http.configure: " .. k .. " must be a positive integer", 2)
    end
  end
  settings = s
end

---------------------------------------------------------------------------
-- loading and reloading (per worker)
---------------------------------------------------------------------------

local lfs_ok, lfs = pcall(require, "lfs")

-- identity of a file: inode, size and change time; nil when it is missing
local function file_stamp(path)
  if not lfs_ok or not path then return "" end
  local a = lfs.attributes(path)
  if not a then return nil end
  return format("%s:%s:%s:%s", tostring(a.ino), tostring(a.size), tostring(a.modification),
                tostring(a.change))
end

local function files_stamp(db)
  local c = file_stamp(settings.config)
  local i = file_stamp(db and db.faiss_index)
  if not c or not i then return nil end
  return c .. "|" .. i
end

local function open_db()
  local vekterdb = require "vekterdb"
  local db = vekterdb.load(settings.config, settings.url, { mmap = settings.mmap })
  if not db.index then
    db:close()
    error("configuration " .. settings.config .. " names no FAISS index", 0)
  end
  local info = {
    db = db,
    records = db:count(),
    stamp = files_stamp(db),
    known = {},
    vector = db.vector_name,
    default_columns = {},
  }
  for _, c in ipairs(db.columns) do info.known[c.name] = c end
  if settings.columns then
    for _, name in ipairs(settings.columns) do
      if not info.known[name] then
        db:close()
        error("configured column '" .. tostring(name) .. "' is not in table " .. db.table_name, 0)
      end
      info.default_columns[#info.default_columns + 1] = name
    end
  else
    for _, c in ipairs(db.columns) do
      if not c.vector then info.default_columns[#info.default_columns + 1] = c.name end
    end
  end
  return info
end

-- (re)opens the database; on failure the previous one, if any, stays in use
local function load(reason)
  local ok, info = pcall(open_db)
  if not ok then
    state.error = tostring(info)
    ngx.log(ngx.ERR, "vekterdb: ", reason, ": cannot open the database: ", state.error)
    return false
  end
  local old = state.db
  for k, v in pairs(info) do state[k] = v end
  state.error = nil
  state.loaded_at = ngx.now()
  if old then
    old:close()
    ngx.log(ngx.NOTICE, "vekterdb: reloaded (", reason, ")")
  end
  return true
end

local function shared()
  return settings.shared_dict and ngx.shared[settings.shared_dict]
end

-- reloads when an admin asked for it (a new generation in the shared dict)
local function follow_generation()
  local dict = shared()
  local g = dict and dict:get("generation") or 0
  if g ~= state.generation then
    state.generation = g
    load("generation " .. g)
  end
end

local function check_files(premature)
  if premature then return end
  follow_generation()
  local stamp = state.db and files_stamp(state.db)
  if stamp and stamp ~= state.stamp then load("index or configuration file changed") end
end

--- Opens this worker's database; call from init_worker_by_lua*.
function M.init_worker()
  if not settings then
    state.error = "vekterdb_http.configure was not called in init_by_lua"
    ngx.log(ngx.ERR, "vekterdb: ", state.error)
    return
  end
  local vekterdb = require "vekterdb"
  vekterdb.set_num_threads(settings.threads)
  local dict = shared()
  state.generation = dict and dict:get("generation") or 0
  load("start")
  if settings.reload_interval and settings.reload_interval > 0 then
    local ok, err = ngx.timer.every(settings.reload_interval, check_files)
    if not ok then ngx.log(ngx.ERR, "vekterdb: cannot start the reload timer: ", err) end
  end
end

---------------------------------------------------------------------------
-- JSON out: numbers written exactly (ids up to 2^53, full double precision),
-- arrays always as arrays, fields in the requested column order
---------------------------------------------------------------------------

local is_integer
if math.type then
  is_integer = function(x) return math.type(x) == "integer" end
else
  is_integer = function(x) return x == floor(x) and x >= -TWO53 and x <= TWO53 end
end

local function number_json(x)
  if x ~= x or x == huge or x == -huge then return "null" end
  if is_integer(x) then return format("%d", x) end
  return format("%.17g", x)
end

local function value_json(v)
  local t = type(v)
  if t == "number" then return number_json(v) end
  if t == "string" then return cjson.encode(v) end
  if t == "boolean" then return v and "true" or "false" end
  if t == "userdata" and v.totable then      -- a vekterdb.vector
    local out = {}
    for i, x in ipairs(v:totable()) do out[i] = number_json(x) end
    return "[" .. concat(out, ",") .. "]"
  end
  return "null"
end

local function record_json(rec, cols, extra)
  local parts = {}
  for i, name in ipairs(cols) do parts[i] = cjson.encode(name) .. ":" .. value_json(rec[name]) end
  if extra then parts[#parts + 1] = extra end
  return "{" .. concat(parts, ",") .. "}"
end

local function neighbors_json(list, cols)
  local parts = {}
  for i, nb in ipairs(list) do
    parts[i] = record_json(nb, cols, '"metric":' .. number_json(nb.metric))
  end
  return '"neighbors":[' .. concat(parts, ",") .. "]"
end

---------------------------------------------------------------------------
-- request handling
---------------------------------------------------------------------------

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(body, "\n")
end

local function reply_error(status, msg)
  reply(status, '{"error":' .. cjson.encode(msg) .. "}")
end

-- a client error: raised as a table, turned into a 400 by run()
local function bad(msg, status)
  error({ status = status or 400, message = msg }, 0)
end

local function run(handler, method)
  if method and ngx.req.get_method() ~= method then
    ngx.header["Allow"] = method
    return reply_error(405, "use " .. method .. " for " .. ngx.var.uri)
  end
  follow_generation()
  if not state.db then
    return reply_error(503, "database not available: " .. tostring(state.error))
  end
  local ok, err = xpcall(handler, function(e)
    if type(e) == "table" then return e end
    return { status = 500, message = tostring(e), trace = debug.traceback() }
  end)
  if ok then return end
  if err.status == 500 then
    ngx.log(ngx.ERR, "vekterdb: ", err.message, "\n", err.trace)
    return reply_error(500, "internal error")
  end
  return reply_error(err.status, err.message)
end

local function check_int(v, name, lo, hi)
  if type(v) ~= "number" or v ~= v or v % 1 ~= 0 then
    bad(name .. " must be an integer")
  end
  if v < lo or v > hi then
    bad(format("%s must be between %d and %d, got %s", name, lo, hi, number_json(v)))
  end
  return v
end

-- a JSON array: a table whose keys are exactly 1..n
local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function check_vector(v, name, d)
  if not is_array(v) then bad(name .. " must be an array of numbers") end
  if #v ~= d then bad(format("%s has dimension %d, expected %d", name, #v, d)) end
  for i = 1, d do
    local x = v[i]
    if type(x) ~= "number" or x ~= x or x == huge or x == -huge then
      bad(format("%s[%d] must be a finite number", name, i))
    end
  end
  return v
end

local function check_columns(list, where)
  if list == nil then return state.default_columns end
  if not is_array(list) or #list == 0 then bad(where .. " must be a non-empty array of column names") end
  if #list > 64 then bad(where .. " names more than 64 columns") end
  for i = 1, #list do
    if type(list[i]) ~= "string" then bad(where .. " must hold column names (strings)") end
    if not state.known[list[i]] then
      bad("unknown column '" .. list[i] .. "' in " .. where)
    end
  end
  return list
end

local SEARCH_FIELDS = { vector = true, vectors = true, k = true, columns = true,
                        k_extra_neighbors = true }

local function read_json_body()
  ngx.req.read_body()
  local text = ngx.req.get_body_data()
  if not text then
    if ngx.req.get_body_file() then bad("request body too large", 413) end
    bad("missing JSON request body")
  end
  local body, err = cjson.decode(text)
  if body == nil then bad("malformed JSON: " .. tostring(err)) end
  if type(body) ~= "table" then bad("the request body must be a JSON object") end
  for k in pairs(body) do
    if type(k) ~= "string" then bad("the request body must be a JSON object") end
    if not SEARCH_FIELDS[k] then bad("unknown field '" .. k .. "'") end
  end
  return body
end

local function search_handler()
  local body = read_json_body()
  local db, d = state.db, state.db.index.d
  local k = check_int(body.k == nil and 10 or body.k, "k", 1, settings.max_k)
  local extra = body.k_extra_neighbors
  if extra ~= nil then extra = check_int(extra, "k_extra_neighbors", 0, settings.max_k_extra) end
  local cols = check_columns(body.columns, "columns")
  local queries, single
  if body.vector ~= nil and body.vectors ~= nil then bad("give either vector or vectors, not both") end
  if body.vector ~= nil then
    queries, single = { check_vector(body.vector, "vector", d) }, true
  elseif body.vectors ~= nil then
    if not is_array(body.vectors) or #body.vectors == 0 then
      bad("vectors must be a non-empty array of vectors")
    end
    if #body.vectors > settings.max_batch then
      bad(format("vectors holds %d queries, the limit is %d", #body.vectors, settings.max_batch))
    end
    queries = {}
    for i, v in ipairs(body.vectors) do queries[i] = check_vector(v, format("vectors[%d]", i), d) end
  else
    bad("vector is required")
  end
  local opts = { k_extra_neighbors = extra }
  local args = { unpack(cols) }
  args[#args + 1] = opts
  local res = db:search(queries, k, unpack(args, 1, #cols + 1))
  if single then return reply(200, "{" .. neighbors_json(res[1].neighbors, cols) .. "}") end
  local parts = {}
  for i, r in ipairs(res) do parts[i] = "{" .. neighbors_json(r.neighbors, cols) .. "}" end
  reply(200, '{"results":[' .. concat(parts, ",") .. "]}")
end

local NEIGHBOR_ARGS = { column = true, value = true, k = true, columns = true,
                        k_extra_neighbors = true }

-- a query-string value as the column's type
local function typed_value(col, s)
  local t = col.type
  if t == "integer" then
    if not s:match("^[-+]?%d+$") then bad("value '" .. s .. "' is not an integer") end
    local n = tonumber(s)
    if not n or n < -TWO53 or n > TWO53 then bad("value '" .. s .. "' is out of range") end
    return n
  elseif t == "real" then
    local n = tonumber(s)
    if not n or n ~= n or n == huge or n == -huge then bad("value '" .. s .. "' is not a number") end
    return n
  elseif t == "boolean" then
    if s == "true" or s == "1" then return true end
    if s == "false" or s == "0" then return false end
    bad("value '" .. s .. "' is not a boolean (true or false)")
  end
  return s
end

local function int_arg(s, name, lo, hi, default)
  if s == nil then return default end
  if type(s) ~= "string" or not s:match("^[-+]?%d+$") or #s > 16 then
    bad(name .. " must be an integer")
  end
  return check_int(tonumber(s), name, lo, hi)
end

local function neighbors_handler()
  local args, err = ngx.req.get_uri_args(settings.max_batch + 8)
  if err == "truncated" then bad("too many query parameters") end
  for k, v in pairs(args) do
    if not NEIGHBOR_ARGS[k] then bad("unknown query parameter '" .. tostring(k) .. "'") end
    if k ~= "value" and type(v) ~= "string" then bad("query parameter '" .. k .. "' needs one value") end
  end
  local name = args.column
  if not name or name == "" then bad("column is required") end
  local col = state.known[name]
  if not col then bad("unknown column '" .. name .. "'") end
  if not col.unique or col.vector then
    bad("column '" .. name .. "' is not unique: look records up by a unique column")
  end
  local values = args.value
  if values == nil then bad("value is required") end
  if type(values) ~= "table" then values = { values } end
  if #values > settings.max_batch then
    bad(format("%d values given, the limit is %d", #values, settings.max_batch))
  end
  local typed = {}
  for i, v in ipairs(values) do
    if type(v) ~= "string" then bad("value needs a value") end
    typed[i] = typed_value(col, v)
  end
  local k = int_arg(args.k, "k", 1, settings.max_k, 10)
  local extra = int_arg(args.k_extra_neighbors, "k_extra_neighbors", 0, settings.max_k_extra, nil)
  local cols = state.default_columns
  if args.columns then
    local list = {}
    for c in args.columns:gmatch("[^,]+") do list[#list + 1] = c end
    cols = check_columns(list, "columns")
  end
  local call = { unpack(cols) }
  call[#call + 1] = { k_extra_neighbors = extra }
  local res = state.db:nearest_neighbors(name, typed, k, unpack(call, 1, #cols + 1))
  local parts = {}
  for i, r in ipairs(res) do parts[i] = record_json(r, cols, neighbors_json(r.neighbors, cols)) end
  reply(200, '{"results":[' .. concat(parts, ",") .. "]}")
end

local function health_handler()
  local db = state.db
  reply(200, format('{"status":"ok","table":%s,"records":%s,"ntotal":%s,"d":%s,"mmap":%s,'
    .. '"threads":%s,"generation":%s,"loaded_at":%s,"worker":%s}',
    cjson.encode(db.table_name), number_json(state.records), number_json(db.index.ntotal),
    number_json(db.index.d), settings.mmap and "true" or "false",
    number_json(require("vekterdb").get_num_threads()), number_json(state.generation),
    number_json(state.loaded_at), number_json(ngx.worker.id() or -1)))
end

function M.search() return run(search_handler, "POST") end
function M.neighbors() return run(neighbors_handler, "GET") end

function M.health()
  if ngx.req.get_method() ~= "GET" and ngx.req.get_method() ~= "HEAD" then
    return reply_error(405, "use GET for /health")
  end
  follow_generation()
  if not state.db then
    return reply_error(503, "database not available: " .. tostring(state.error))
  end
  return health_handler()
end

--- POST /admin/reload: every worker reopens the database (this one now, the
-- others on their next request or timer tick).
function M.reload()
  if ngx.req.get_method() ~= "POST" then return reply_error(405, "use POST for /admin/reload") end
  local dict = shared()
  local g = dict and dict:incr("generation", 1, 0) or state.generation + 1
  state.generation = g
  if not load("admin request") then
    return reply_error(503, "reload failed: " .. tostring(state.error))
  end
  reply(200, format('{"status":"ok","generation":%s}', number_json(g)))
end

--- Any other path, and errors nginx raises itself (error_page).
function M.not_found() reply_error(404, "no such endpoint: " .. ngx.var.uri) end

local STATUS_TEXT = { [400] = "bad request", [403] = "forbidden", [413] = "request body too large" }

function M.status_error()
  local status = ngx.status >= 400 and ngx.status or 400
  reply_error(status, STATUS_TEXT[status] or "bad request")
end

return M
