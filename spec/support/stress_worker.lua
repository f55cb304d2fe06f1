-- spec/support/stress_worker.lua ROLE NUM URL TABLE INDEX_FILE DIR DEADLINE
-- One process of spec/stress_spec.lua, working on TABLE until os.time()
-- reaches DEADLINE. ROLE is
--   writer      inserts batches of 20-50 (or 65-300) new records (no idx: the engine
--               assigns it) and, after insert returned, appends their ids to
--               DIR/writerNUM.log ("ack id,id,... .")
--   deleter     deletes a few acknowledged deletable records at a time and,
--               after delete returned, appends their ids to DIR/deleted.log
--   maintainer  rebuild_index, then sync_index_to_db, over and over
--   searcher    searches acknowledged records' own vectors and checks the
--               answers against the logs read before each search
-- INDEX_FILE "-" opens the table without an index (writers only).
-- Every failure is counted in DIR/ROLENUM.result (rewritten every second
-- and at the end) with the first messages: see spec/support/stress_common.lua.
local vekterdb = require "vekterdb"
local S = require "spec.support.stress_common"

local role, num, url, name, index_file, dir, deadline = table.unpack(arg, 1, 7)
num, deadline = tonumber(num), tonumber(deadline)
vekterdb.log.level = "error"     -- an index lagging behind the table is expected here
math.randomseed(os.time() * 100 + num * 7 + #role)

local K = S.K
local PARAMS = "nprobe=4"        -- IVF4 with nprobe 4: every list visited, exact answers

local counts = {}
for _, kind in ipairs(S.FAILURES) do counts[kind] = 0 end
local messages = {}
local result_path = ("%s/%s%d.result"):format(dir, role, num)

local function report()
  S.write_result(result_path, counts, messages)
end

local function fail(kind, msg)
  counts[kind] = counts[kind] + 1
  if #messages < 25 then
    messages[#messages + 1] = ("%s%d %s: %s"):format(role, num, kind, tostring(msg))
  end
end

local function bump(key, n)
  counts[key] = (counts[key] or 0) + (n or 1)
end

local function sleep(s)
  os.execute(("sleep %.3f"):format(s))
end

local last_report = os.time()
local function running()
  local now = os.time()
  if now ~= last_report then
    report()
    last_report = now
  end
  return now < deadline
end

report()
local opts = { url = url }
if index_file ~= "-" then opts.faiss_index = index_file end
local ok, db = pcall(vekterdb.new, name, opts)
if not ok then
  fail("failed_open", db)
  report()
  os.exit(0)
end

-- what the logs say: acknowledged ids (non-deletable ones in live, the
-- deletable ones in pool until deleted), deleted ids
local live, pool, deleted = {}, {}, {}
local deleted_list = {}
local logs = { dir .. "/seed.log", dir .. "/deleted.log" }
for w = 1, 3 do logs[#logs + 1] = ("%s/writer%d.log"):format(dir, w) end
local reader = S.log_reader(logs, function(kind, ids)
  for _, id in ipairs(ids) do
    if kind == "ack" then
      if id:sub(-1) == "d" then pool[#pool + 1] = id else live[#live + 1] = id end
    elseif kind == "del" then
      deleted[id] = true
      deleted_list[#deleted_list + 1] = id
    end
  end
end)

local roles = {}

function roles.writer()
  local log = assert(io.open(("%s/writer%d.log"):format(dir, num), "ab"))
  local seq = 0
  while running() do
    -- one batch in four spans several of the chunks the engine encodes on
    -- another thread while the database writes the first rows
    local n = math.random(4) == 1 and math.random(65, 300) or math.random(20, 50)
    local recs, ids = {}, {}
    for i = 1, n do
      seq = seq + 1
      local deletable = math.random() < 0.3
      local id = ("w%d-%d%s"):format(num, seq, deletable and "d" or "")
      recs[i] = { id = id, deletable = deletable and 1 or 0, vector = S.vector_of(id) }
      ids[i] = id
    end
    local done, res = pcall(db.insert, db, recs)
    if not done then
      fail("failed_batch", res)
    elseif res ~= n then
      fail("failed_batch", ("insert of %d records returned %s"):format(n, tostring(res)))
    else
      S.append(log, "ack", ids)
      bump("batches")
      bump("records", n)
    end
  end
  log:close()
end

function roles.deleter()
  local log = assert(io.open(dir .. "/deleted.log", "ab"))
  local seen = 0     -- ids of pool already taken (pool only grows)
  local candidates = {}
  while running() do
    reader.poll()
    for i = seen + 1, #pool do candidates[#candidates + 1] = pool[i] end
    seen = #pool
    local pick = {}
    -- leave some deletable records alive: they are searched at the end
    local want = math.min(math.random(1, 4), #candidates // 2)
    for _ = 1, want do
      local i = math.random(1, #candidates)
      pick[#pick + 1] = candidates[i]
      candidates[i] = candidates[#candidates]
      candidates[#candidates] = nil
    end
    if #pick > 0 then
      local done, n = pcall(db.delete, db, db.Record.id:in_(pick))
      if not done then
        -- their state is unknown now: not logged, never checked again
        fail("failed_delete", n)
        S.append(log, "unknown", pick)
      else
        if n ~= #pick then
          fail("failed_delete", ("delete of %d acknowledged records (%s) deleted %s")
            :format(#pick, table.concat(pick, ","), tostring(n)))
        end
        S.append(log, "del", pick)
        bump("deletes")
        bump("deleted_records", n)
      end
    end
    sleep(0.05)
  end
  log:close()
end

function roles.maintainer()
  while running() do
    local done, err = pcall(db.rebuild_index, db)
    if done then bump("rebuilds") else fail("failed_maintenance", "rebuild_index: " .. tostring(err)) end
    sleep(0.2)
    if not running() then break end
    done, err = pcall(db.sync_index_to_db, db)
    if done then bump("syncs") else fail("failed_maintenance", "sync_index_to_db: " .. tostring(err)) end
    sleep(0.2)
  end
end

-- checks one list of neighbors against the snapshot; want: the id that must
-- come first at distance 0 (nil: none), what: for messages
local function check_neighbors(neighbors, want, what)
  if #neighbors ~= K then
    fail("short_result", ("%s: %d neighbors, k = %d, at least %d live records"):format(what, #neighbors, K, #live))
  end
  if want then
    local top = neighbors[1]
    if not top or top.id ~= want or top.metric > 1e-5 then
      fail("missing_from_search", ("%s: acknowledged record %s missing from search (top hit %s at %s)")
        :format(what, want, top and tostring(top.id) or "none", top and tostring(top.metric) or "-"))
    end
  end
  for _, n in ipairs(neighbors) do
    if deleted[n.id] then
      fail("deleted_returned", ("%s: deleted record %s returned"):format(what, tostring(n.id)))
    end
  end
end

function roles.searcher()
  local round = 0
  while running() do
    round = round + 1
    reader.poll()     -- the snapshot: taken before the search call
    local id = live[math.random(1, #live)]
    local done, res = pcall(db.search, db, S.vector_of(id), K, "id", { search_parameters = PARAMS })
    if not done then
      fail("failed_search", "search: " .. tostring(res))
    else
      check_neighbors(res[1].neighbors, id, "search " .. id)
      bump("searches")
    end
    if round % 3 == 0 and #deleted_list > 0 then
      -- a deleted record's own vector: it must not come back
      local gone = deleted_list[math.random(1, #deleted_list)]
      done, res = pcall(db.search, db, S.vector_of(gone), K, "id", { search_parameters = PARAMS })
      if not done then
        fail("failed_search", "search: " .. tostring(res))
      else
        check_neighbors(res[1].neighbors, nil, "search of deleted " .. gone)
        bump("searches")
      end
    end
    if round % 5 == 0 then
      done, res = pcall(db.nearest_neighbors, db, "id", { id }, K, "id", { search_parameters = PARAMS })
      if not done then
        fail("failed_search", "nearest_neighbors: " .. tostring(res))
      elseif #res == 0 then
        fail("missing_from_search", "nearest_neighbors: acknowledged record " .. id .. " not found")
      else
        for _, r in ipairs(res) do
          -- the record itself is left out: k other records
          check_neighbors(r.neighbors, nil, "nearest_neighbors of " .. id)
          for _, n in ipairs(r.neighbors) do
            if n.id == id then fail("missing_from_search", "nearest_neighbors of " .. id .. " holds itself") end
          end
        end
        bump("nearest_neighbors")
      end
    end
  end
end

local run = roles[role]
if not run then error("unknown role " .. tostring(role)) end
local done, err = pcall(run)
if not done then fail("failed_" .. (role == "writer" and "batch" or role == "deleter" and "delete"
                        or role == "maintainer" and "maintenance" or "search"), "worker raised: " .. tostring(err)) end
report()
db:close()
