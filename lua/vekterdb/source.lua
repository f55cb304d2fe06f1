--- Record sources: vectors held in a matrix, a vector file or a stream of
-- matrices, plus optional column values, turned into the records iterator
-- that `db:insert` takes.
--
--     local source = require "vekterdb.source"
--     local vio = require "vekterdb.io"
--     db:insert(source.records(vio.open("base.fvecs"), {
--       first_idx = 0,
--       columns = { id = function(n, idx) return tostring(idx) end },
--     }))
--
-- A matrix already in memory with column arrays can go straight to
-- `db:insert_matrix(m, { idx = 0, columns = { id = ids } })`, which makes no
-- Lua table (and no garbage) per record; a source is the way for files
-- larger than memory, computed columns and streams.
-- @module vekterdb.source

local M = {}

local DEFAULT_CHUNK = 10000

-- raises an error value (code "invalid"), without a source position
local function raise(msg)
  error(require("vekterdb.core").error("invalid", msg), 0)
end

local OPTS = {
  first_idx = true, columns = true, idx_name = true, vector_name = true,
  chunk_size = true, first = true, count = true, progress = true,
}

-- the C module's userdata say what they are in their tostring
local function is_vector_file(x)
  return type(x) == "userdata" and tostring(x):find("^vekterdb%.VectorFile") ~= nil
end

local function is_matrix(x)
  return type(x) == "userdata" and tostring(x):find("^vekterdb%.matrix%(") ~= nil
end

-- a function returning the next matrix (nil at the end) and the total rows
-- (nil when unknown)
local function matrices(data, opts)
  if is_matrix(data) then
    local given = false
    return function()
      if given then return nil end
      given = true
      return data
    end, data.n
  elseif is_vector_file(data) then
    local it = data:chunks(opts.chunk_size or DEFAULT_CHUNK, opts.first, opts.count)
    local first = opts.first or 0
    local total = math.max(0, math.min(opts.count or math.huge, data.rows - first))
    return it, total
  elseif type(data) == "function" then
    return data, nil
  end
  raise("vekterdb.source: expected a vekterdb.matrix, a vector file or a function returning "
    .. "matrices, got " .. type(data))
end

--- An iterator of records for `db:insert`.
-- @param data a `vekterdb.matrix`, a `vekterdb.VectorFile` (read in chunks:
-- the whole file never sits in memory) or a function returning one matrix per
-- call and nil at the end
-- @tparam[opt] table opts
--
--  * `first_idx`: idx of the first record, then consecutive; nil leaves idx
--    out and the table assigns the next ones
--  * `columns`: `{ name = values }` where values is an array indexed by record
--    number (1 for the first record) or a function `(n, idx)` returning the value
--  * `idx_name`, `vector_name`: the table's column names ("idx", "vector")
--  * `chunk_size`, `first`, `count`: rows read per chunk from a vector file
--    (10000), the 0-based row to start at and how many rows to take
--  * `progress`: `function(done, total, phase)` called after each chunk, with
--    phase "records" (total nil when unknown), or true for `vekterdb.progress`
-- @return a function returning one record per call, nil at the end
function M.records(data, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not OPTS[k] then raise("vekterdb.source: unknown option '" .. tostring(k) .. "'") end
  end
  if opts.first_idx ~= nil and (type(opts.first_idx) ~= "number" or opts.first_idx % 1 ~= 0
                                or opts.first_idx < 0) then
    raise("vekterdb.source: first_idx must be a non-negative integer")
  end
  local columns = {}
  for name, values in pairs(opts.columns or {}) do
    if type(values) ~= "table" and type(values) ~= "function" then
      raise("vekterdb.source: column '" .. tostring(name) .. "' needs an array or a function, got "
        .. type(values))
    end
    columns[#columns + 1] = { name, values, type(values) == "function" }
  end
  local idx_name = opts.idx_name or "idx"
  local vector_name = opts.vector_name or "vector"
  local progress = opts.progress
  if progress == true then progress = require("vekterdb.progress").new() end
  local next_matrix, total = matrices(data, opts)
  local m, rows, row = nil, 0, 0     -- current matrix, its rows, the row last given
  local n = 0                          -- records given
  local started = false
  return function()
    if progress and not started then
      started = true
      progress(0, total, "records")
    end
    while row >= rows do
      if m and progress then progress(n, total, "records") end
      m = next_matrix()
      if m == nil then
        rows, row = 0, 0
        return nil
      end
      if not is_matrix(m) then
        raise("vekterdb.source: the matrix stream returned " .. tostring(m) .. ", expected a "
          .. "vekterdb.matrix")
      end
      rows, row = m.n, 0
    end
    row = row + 1
    n = n + 1
    local rec = { [vector_name] = m[row] }
    local idx
    if opts.first_idx then
      idx = opts.first_idx + n - 1
      rec[idx_name] = idx
    end
    for _, c in ipairs(columns) do
      if c[3] then
        rec[c[1]] = c[2](n, idx)
      else
        rec[c[1]] = c[2][n]
      end
    end
    return rec
  end
end

--- Inserts the records of `data` into `db`: `db:insert(records(data, opts), insert_opts)`.
-- @param db a vekterdb.DB
-- @param data as for `records`
-- @tparam[opt] table opts options of `records`
-- @tparam[opt] table insert_opts options of `db:insert` (batch_size, compression_level, ...)
-- @return the number of records inserted
function M.insert(db, data, opts, insert_opts)
  return db:insert(M.records(data, opts), insert_opts)
end

return M
