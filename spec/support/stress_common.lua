-- spec/support/stress_common.lua: what spec/stress_spec.lua and its worker
-- processes (spec/support/stress_worker.lua) share: the vector of a record
-- derived from its id, the acknowledgement logs, the result files.
local vekterdb = require "vekterdb"

local S = {}

S.D = 16      -- dimension of every vector
S.K = 10      -- k of every search

-- a polynomial hash of a string as a Park-Miller seed (1 .. 2^31-2); plain
-- arithmetic on numbers below 2^53, so LuaJIT computes the same
local function seed_of(id)
  local h = 7
  for i = 1, #id do h = (h * 131 + id:byte(i)) % 2147483647 end
  if h == 0 then h = 1 end
  return h
end

--- The vector of the record named id: the same in every process.
function S.vector_of(id)
  local state = seed_of(id)
  local function uniform()
    state = (state * 48271) % 2147483647
    return state / 2147483647
  end
  local v = vekterdb.vector(S.D)
  for j = 1, S.D do
    local u1, u2 = uniform(), uniform()
    v[j] = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
  end
  return v
end

--- Appends one complete line to a log and flushes it. A line ends with " ."
-- so that a reader never takes a half-written line for a whole one.
function S.append(f, kind, ids)
  f:write(kind, " ", table.concat(ids, ","), " .\n")
  f:flush()
end

--- An incremental reader of log files: reader:poll() reads what was
-- appended since the last poll and calls on_line(kind, ids) per complete line.
function S.log_reader(paths, on_line)
  local pos = {}
  local r = {}
  function r.poll()
    for _, path in ipairs(paths) do
      local f = io.open(path, "rb")
      if f then
        f:seek("set", pos[path] or 0)
        local data = f:read("*a") or ""
        f:close()
        local consumed = 0
        for line, stop in data:gmatch("([^\n]*)\n()") do
          local kind, list = line:match("^(%S+) (%S*) %.$")
          if kind then
            local ids = {}
            for id in list:gmatch("[^,]+") do ids[#ids + 1] = id end
            on_line(kind, ids, path)
          end
          consumed = stop - 1
        end
        pos[path] = (pos[path] or 0) + consumed
      end
    end
  end
  return r
end

--- Writes counts (a table name -> number) and messages (an array of
-- strings) to path, atomically (temporary file + rename).
function S.write_result(path, counts, messages)
  local tmp = path .. ".part"
  local f = assert(io.open(tmp, "wb"))
  local keys = {}
  for k in pairs(counts) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do f:write("count ", k, " ", tostring(counts[k]), "\n") end
  for _, m in ipairs(messages) do f:write("message ", (tostring(m):gsub("\n", " ")), "\n") end
  f:close()
  assert(os.rename(tmp, path))
end

--- Reads a result file: counts, messages (nil when there is none).
function S.read_result(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local counts, messages = {}, {}
  for line in f:lines() do
    local k, v = line:match("^count (%S+) (%S+)$")
    if k then
      counts[k] = tonumber(v)
    else
      local m = line:match("^message (.*)$")
      if m then messages[#messages + 1] = m end
    end
  end
  f:close()
  return counts, messages
end

--- The failure kinds every worker reports (0 each for a pass).
S.FAILURES = {
  "failed_batch",          -- insert raised
  "failed_delete",         -- delete raised, or deleted fewer records than asked
  "failed_maintenance",    -- rebuild_index or sync_index_to_db raised
  "failed_search",         -- search or nearest_neighbors raised
  "failed_open",           -- vekterdb.new raised
  "missing_from_search",   -- an acknowledged live record is not its own top hit at distance 0
  "short_result",          -- fewer (or more) than k neighbors
  "deleted_returned",      -- a record whose delete was acknowledged came back
}

return S
